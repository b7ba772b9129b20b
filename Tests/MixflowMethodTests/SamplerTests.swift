import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowMethod
import MixflowCore

// MARK: - Grids

// docs/exactness.md §4.1: RAE 256 px, 50 points, s = √48.
@Test func raeGridMatchesSpecAppendixB() {
    let g = TimeGrid.rae(numPoints: 50, shift: 48.0.squareRoot())
    let expected: [(Int, Float)] = [(0, 1.0), (1, 0.997005), (2, 0.993902), (47, 0.231979), (48, 0.131505), (49, 0.006887)]
    for (i, v) in expected { #expect(abs(g[i] - v) < 1.5e-6, "grid[\(i)] = \(g[i]), expected \(v)") }
    #expect(g.count == 50)
}

@Test func sitGridsFollowCheckInterval() throws {
    var c = SamplerConfig()
    c.method = .sdeEuler; c.numSteps = 250
    let g = TimeGrid.integrationGrid(c)
    // docs/exactness.md §4.1: default SDE dt = 0.96/249 = 0.0038554, last step 0.04 at t = 0.96.
    #expect(g.count == 250 && g[0] == 0 && abs(g[249] - 0.96) < 1e-7)
    #expect(abs((g[1] - g[0]) - 0.0038554) < 1e-7)
    #expect(TimeGrid.outputTimes(c).count == 251 && abs(TimeGrid.outputTimes(c)[250] - 1) < 1e-7)
    // SBDM moves t0 to sample_eps, which SiT forces to 0 for Linear velocity (SBDM is then singular at t0).
    c.diffusionForm = .sbdm
    #expect(TimeGrid.integrationGrid(c)[0] == 0)
    c.sampleEps = 1e-3
    #expect(abs(TimeGrid.integrationGrid(c)[0] - 1e-3) < 1e-7)
    c.method = .euler; c.prediction = .noise
    let ode = TimeGrid.integrationGrid(c)
    #expect(abs(ode[0] - 1e-3) < 1e-7 && abs(ode[249] - 0.999) < 1e-7)
    c.prediction = .velocity; c.path = .vp
    #expect(abs(TimeGrid.integrationGrid(c)[249] - 0.999) < 1e-7)
    c = SamplerConfig(); c.convention = .repa; c.numSteps = 4
    #expect(TimeGrid.integrationGrid(c) == [1, 0.75, 0.5, 0.25, 0])
    c.method = .sdeEuler
    let r = TimeGrid.integrationGrid(c)
    #expect(r.count == 5 && r[0] == 1 && abs(r[3] - 0.04) < 1e-15 && r[4] == 0)
}

@Test func linspaceCountsDownFromTheEndInTheSecondHalf() {
    // torch's rule: the second half is end − step·(n − 1 − i), so the last point is exactly `end`.
    let g = TimeGrid.linspaceFloat32(0, 0.96, 250)
    #expect(g[249] == Float(0.96) && g[0] == 0)
    let step = Float(0.96) / 249
    #expect(g[10] == step * 10 && g[200] == Float(0.96) - step * 49)
}

// MARK: - Convergence orders on the exact Gaussian flow

// Error ratios when the step halves: 2 (order 1), 4 (order 2), 16 (order 4), with bands for the pre-asymptotic
// regime. Midpoint is only required to be at least second order: on this flow (linear in x) its leading error
// term cancels and it converges at order 3 (ratio ≈ 8), which a float64 numpy run of the same formula shows too.
// RK4 uses a stiffer flow so that its error stays well above float32 round-off on the finest grid.
@Test(arguments: [(SamplerMethod.euler, 2.0, 1.7, 2.4, 21), (.heun, 4.0, 3.2, 5.0, 11), (.midpoint, 4.0, 3.2, 9.0, 11), (.rk4, 16.0, 11.0, 24.0, 5)])
func fixedGridErrorsShrinkAtTheirOrder(method: SamplerMethod, _ nominal: Double, lo: Double, hi: Double, points: Int) throws {
    let flow = method == .rk4 ? GaussianFlow(mu: 2, s: 0.15) : GaussianFlow(mu: 1, s: 0.6)
    let z = normals(64, seed: 7)
    let exact = z.map { flow.exact(Double($0), at: 1) }
    var errors: [Double] = []
    for k in 0..<3 {
        var c = SamplerConfig(); c.method = method; c.numSteps = (points - 1) * (1 << k) + 1
        let r = try runSampler(c, flow.model(.sit), z, batch: 64)
        errors.append(maxAbsError(r.x, exact))
        let perStep = [SamplerMethod.euler: 1, .heun: 2, .midpoint: 2, .rk4: 4][method]!
        #expect(r.nfe == perStep * (c.numSteps - 1))
    }
    for k in 0..<2 {
        let ratio = errors[k] / errors[k + 1]
        #expect(ratio > lo && ratio < hi, "\(method): error ratio \(ratio) (nominal \(nominal)), errors \(errors)")
    }
}

@Test func dopri5MeetsItsToleranceAndReportsNFE() throws {
    let flow = GaussianFlow(mu: 2, s: 0.3)
    let z = normals(64, seed: 8)
    let exact = z.map { flow.exact(Double($0), at: 1) }
    var nfes: [Int] = []
    for rtol in [1e-3, 1e-5] {
        var c = SamplerConfig(); c.method = .dopri5; c.numSteps = 5; c.rtol = rtol; c.atol = 1e-6
        let r = try runSampler(c, flow.model(.sit), z, batch: 64, trajectory: true)
        // Global error of a 5th-order pair stays within a small multiple of the local tolerance on this smooth flow.
        #expect(maxAbsError(r.x, exact) < 10 * (rtol * 3 + 1e-6), "rtol \(rtol): error \(maxAbsError(r.x, exact))")
        // Interpolated outputs on the requested grid (t = 0.5) are exact too.
        let mid = Array(r.traj[(2 * 64)..<(3 * 64)])
        #expect(maxAbsError(mid, z.map { flow.exact(Double($0), at: 0.5) }) < 10 * (rtol * 3 + 1e-6))
        // 1 (f0) + 1 (first-step probe) + 6 per attempted step.
        #expect((r.nfe - 2) % 6 == 0 && r.nfe > 8)
        nfes.append(r.nfe)
    }
    #expect(nfes[1] > nfes[0])
}

@Test(arguments: [TimeConvention.rae, .repa])
func noiseAtOneConventionsIntegrateTheReversedFlow(convention: TimeConvention) throws {
    let flow = GaussianFlow(mu: -1, s: 0.5)
    let z = normals(32, seed: 9)
    var c = SamplerConfig(); c.convention = convention; c.method = .rk4; c.numSteps = 40
    c.timeShift = convention == .rae ? 2 : 1
    let r = try runSampler(c, flow.model(convention), z, batch: 32)
    let sEnd = convention.sitTime(TimeGrid.integrationGrid(c).last!)
    #expect(maxAbsError(r.x, z.map { flow.exact(Double($0), at: sEnd) }) < 2e-5)
}

@Test(arguments: [Prediction.noise, .score])
func noiseAndScoreModelsGoThroughThePathConversions(prediction: Prediction) throws {
    let flow = GaussianFlow(mu: 1.5, s: 0.4)
    let z = normals(32, seed: 10)
    var c = SamplerConfig(); c.method = .rk4; c.numSteps = 60; c.prediction = prediction
    let (t0, t1) = TimeGrid.sitODEInterval(c)
    #expect(t0 == 1e-3 && t1 == 1 - 1e-3)
    // Start on the exact marginal at t0: x(t0) = t0 μ + √V(t0)·z.
    let start = z.map { Float(flow.exact(Double($0), at: Double(Float(t0)))) }
    let r = try runSampler(c, flow.model(.sit, prediction), start, batch: 32)
    #expect(maxAbsError(r.x, z.map { flow.exact(Double($0), at: Double(Float(t1))) }) < 1e-4)
}

/// Point data x1 = μ on any path: x_t = α_t·μ + σ_t·x0, so the exact score is −(x − α_t μ)/σ_t², the exact
/// noise (x − α_t μ)/σ_t, and the probability-flow ODE maps x(t0) = α(t0)μ + σ(t0)z to α(t1)μ + σ(t1)z.
@Test(arguments: [(InterpolationPath.gvp, Prediction.score), (.gvp, .noise), (.vp, .score), (.vp, .noise), (.linear, .noise)])
func curvedPathsConvertNoiseAndScoreModelsExactly(path: InterpolationPath, prediction: Prediction) throws {
    let mu: Float = 0.8
    let model = ClosureModel { x, t, _, out in
        let dim = x.count / t.count
        for i in 0..<x.count {
            let c = path.coefficients(sitTime: Double(t[i / dim]))
            let r = (Double(x[i]) - c.alpha * Double(mu)) / c.sigma
            out[i] = Float(prediction == .noise ? r : -r / c.sigma)
        }
    }
    var c = SamplerConfig(); c.path = path; c.prediction = prediction; c.method = .rk4; c.numSteps = 200; c.sampleEps = 0.05
    let grid = TimeGrid.integrationGrid(c)
    let z = normals(16, seed: 12)
    let c0 = path.coefficients(sitTime: grid[0]), c1 = path.coefficients(sitTime: grid[grid.count - 1])
    let start = z.map { Float(c0.alpha) * mu + Float(c0.sigma) * $0 }
    let r = try runSampler(c, model, start, batch: 16)
    #expect(maxAbsError(r.x, z.map { c1.alpha * Double(mu) + c1.sigma * Double($0) }) < 5e-5, "\(path) \(prediction)")
}

@Test func dopri5IntegratesADecreasingRAEGrid() throws {
    let flow = GaussianFlow(mu: 0.5, s: 0.6)
    let z = normals(32, seed: 13)
    var c = SamplerConfig(); c.convention = .rae; c.method = .dopri5; c.numSteps = 10; c.rtol = 1e-5
    let r = try runSampler(c, flow.model(.rae), z, batch: 32)
    let sEnd = TimeConvention.rae.sitTime(TimeGrid.integrationGrid(c).last!)
    #expect(maxAbsError(r.x, z.map { flow.exact(Double($0), at: sEnd) }) < 1e-4)
}
