import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowMethod
import MixflowCore

/// A model whose slowdown is known by construction: in the SiT convention it returns c·(x1 − x0) for the
/// sample's own data point x1 and noise x0, so the Euler trajectory (exact for a constant velocity) is
/// x(t) = x0 + c·t·(x1 − x0) = x_{c·t}: the state at grid time t is the true interpolant at m = c·t.
struct SlowedModel {
    let c: Float, x0: [Float], x1: [Float], dim: Int
    var model: ClosureModel {
        ClosureModel { [c, x0, x1] _, _, _, out in for i in 0..<out.count { out[i] = c * (x1[i] - x0[i]) } }
    }
}

func slowedSetup(batch: Int, dim: Int, c: Float, steps: Int) throws -> (t: [Double], traj: [Float], x0: [Float], x1: [Float]) {
    let x0 = normals(batch * dim, seed: 21)
    let x1 = normals(batch * dim, seed: 22).map { 2 * $0 + 0.5 }   // second moment ≈ 4.25
    var cfg = SamplerConfig(); cfg.method = .euler; cfg.numSteps = steps
    let r = try runSampler(cfg, SlowedModel(c: c, x0: x0, x1: x1, dim: dim).model, x0, batch: batch, trajectory: true)
    return (TimeGrid.integrationGrid(cfg), r.traj, x0, x1)
}

func measure(_ ref: SlowFlowReference, _ path: InterpolationPath = .linear, t: [Double], traj: [Float], x0: [Float],
             data: [Float], batch: Int, dim: Int, convention: TimeConvention = .sit) throws -> (t: [Double], m: [Double]) {
    try traj.withUnsafeBufferPointer { tp in try x0.withUnsafeBufferPointer { xp in try data.withUnsafeBufferPointer { dp in
        try SlowFlow.measure(reference: ref, path: path, convention: convention, times: t, trajectory: tp.baseAddress!,
                             noise: xp.baseAddress!, batch: batch, dim: dim, data: dp.baseAddress, numData: data.count / dim)
    } } }
}

@Test func nearestDataRecoversAKnownSlowdownAndItsGamma() throws {
    let (b, d, c) = (6, 64, Float(0.7))
    let s = try slowedSetup(batch: b, dim: d, c: c, steps: 11)
    // The data set: every sample's own x1 plus decoys far from the trajectories.
    let decoys = normals(20 * d, seed: 23).map { 3 * $0 - 4 }
    let r = try measure(.nearestData, t: s.t, traj: s.traj, x0: s.x0, data: s.x1 + decoys, batch: b, dim: d)
    for g in 0..<s.t.count { for i in 0..<b { #expect(abs(r.m[i * s.t.count + g] - Double(c) * s.t[g]) < 1e-5) } }
    let gamma = try SlowFlowStatistics.suggestGamma(t: r.t, m: r.m, batch: b, coverage: 0.95)
    #expect(abs(gamma - 0.3) < 1e-5)
    let stats = try SlowFlowStatistics(t: r.t, m: r.m, batch: b)
    #expect(abs(stats.rows[5][9] - 0.7) < 1e-5)   // median ratio at t = 0.5
    #expect(stats.rows[5][13] == 1)                 // every m ≤ t
    #expect(stats.rows[0][7].isNaN)                 // ratio undefined at t = 0
}

@Test func endpointReferenceSeesNoSlowdownOfAUniformlySlowedFlow() throws {
    // x(t) = x0 + t·(x_c − x0): measured against its own end point the same trajectory runs on time (m = t).
    let (b, d) = (4, 32)
    let s = try slowedSetup(batch: b, dim: d, c: 0.6, steps: 6)
    let r = try measure(.endpoint, t: s.t, traj: s.traj, x0: s.x0, data: [], batch: b, dim: d)
    for g in 0..<s.t.count { #expect(abs(r.m[g] - s.t[g]) < 1e-5) }
    #expect(try SlowFlowStatistics.suggestGamma(t: r.t, m: r.m, batch: b, coverage: 0.95) < 1e-5)
}

@Test func noiseLevelReferenceMatchesSecondMoments() throws {
    // |x_{ct}|²/D ≈ (ct)²·μ2 + (1 − ct)² for large D; the root nearest t is ct for t ≥ 0.4 here, and from t = 0.6 the moment curve is steep enough (slope > 2) that the 2% moment noise moves m by < 0.03 (the other
    // root of 4.25m² + (1 − m)² lies below 0.2). Sampling error of the moments over D = 4096: ~2%.
    let (b, d, c) = (4, 4096, Float(0.7))
    let s = try slowedSetup(batch: b, dim: d, c: c, steps: 6)
    let r = try measure(.noiseLevel, t: s.t, traj: s.traj, x0: s.x0, data: s.x1, batch: b, dim: d)
    for g in 0..<s.t.count where s.t[g] >= 0.6 {
        for i in 0..<b { #expect(abs(r.m[i * s.t.count + g] - Double(c) * s.t[g]) < 0.03, "t \(s.t[g])") }
    }
}

@Test(arguments: [InterpolationPath.gvp, .vp])
func oneDimensionalSearchRecoversMOnCurvedPaths(path: InterpolationPath) throws {
    let (b, d) = (3, 16)
    let x0 = normals(b * d, seed: 31), x1 = normals(b * d, seed: 32).map { $0 + 1 }
    let t = [0.1, 0.35, 0.6, 0.9]
    let mTrue = t.map { 0.8 * $0 + 0.05 }
    var traj = [Float](repeating: 0, count: t.count * b * d)
    for g in 0..<t.count {
        let co = path.coefficients(sitTime: mTrue[g])
        for j in 0..<(b * d) { traj[g * b * d + j] = Float(co.alpha) * x1[j] + Float(co.sigma) * x0[j] }
    }
    let r = try measure(.nearestData, path, t: t, traj: traj, x0: x0, data: x1, batch: b, dim: d)
    for g in 0..<t.count { for i in 0..<b { #expect(abs(r.m[i * t.count + g] - mTrue[g]) < 1e-4, "\(path) t \(t[g])") } }
}

@Test func timesAreReportedInThePaperConvention() throws {
    // A RAE-convention grid τ = [1, 0.5, 0] is t = [0, 0.5, 1] in the paper's convention.
    let x0: [Float] = [1, 0], x1: [Float] = [0, 1]
    let traj: [Float] = x0 + [0.5, 0.5] + x1
    let r = try measure(.endpoint, t: [1, 0.5, 0], traj: traj, x0: x0, data: [], batch: 1, dim: 2, convention: .rae)
    #expect(r.t == [0, 0.5, 1] && r.m.enumerated().allSatisfy { abs($0.element - r.t[$0.offset]) < 1e-12 })
}

@Test func statisticsQuantilesFollowNumpysLinearRule() throws {
    // m at one grid time t = 0.5 for 5 samples: 0.1 … 0.5; numpy.quantile([.1,.2,.3,.4,.5], .25) = 0.2, (.05) = 0.12.
    let m = [0.1, 0.2, 0.3, 0.4, 0.6]
    let st = try SlowFlowStatistics(t: [0.5], m: m, batch: 5)
    let row = st.rows[0]
    #expect(abs(row[1] - 0.32) < 1e-12 && abs(row[2] - 0.12) < 1e-12 && abs(row[3] - 0.2) < 1e-12 && abs(row[6] - 0.56) < 1e-12)
    #expect(abs(row[8] - 0.24) < 1e-12 && row[13] == 0.8)
    #expect(st.csv().hasPrefix("t,mean_m,q05_m,q25_m,q50_m,q75_m,q95_m,mean_ratio,"))
    #expect(st.json(reference: "endpoint").contains("\"frac_m_le_t\": [0.8]"))
    // γ: ratios min(1, m/t) = [.2, .4, .6, .8, 1]; Q_0.2 = 0.36 → γ = 0.64 at 80% coverage.
    #expect(abs(try! SlowFlowStatistics.suggestGamma(t: [0.5], m: m, batch: 5, coverage: 0.8) - 0.64) < 1e-12)
    #expect(throws: MixflowError.invalidArgument("coverage must be in (0, 1], got 0.0")) {
        try SlowFlowStatistics.suggestGamma(t: [0.5], m: m, batch: 5, coverage: 0)
    }
}
