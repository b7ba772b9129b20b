import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowMethod
import MixflowCore

/// A nonlinear toy velocity f(x, t) = sin(x)·t + 0.5 (evaluated in float32 like a network).
func toyModel(_ calls: UnsafeMutablePointer<Int>? = nil) -> ClosureModel {
    ClosureModel { x, t, _, out in
        calls?.pointee += 1
        let dim = x.count / t.count
        for i in 0..<x.count { out[i] = sin(x[i]) * t[i / dim] + 0.5 }
    }
}
func toy(_ x: Double, _ t: Double) -> Double { sin(x) * t + 0.5 }

// MARK: - Step formulas re-implemented from docs/exactness.md §4.2–§4.3 in float64

@Test func officialStepFormulasMatchAFloat64Reimplementation() throws {
    let x0: [Float] = [0.3, -1.2, 2.0, 0.7, -0.1, 1.1]
    for method in [SamplerMethod.euler, .midpoint, .heun, .rk4] {
        var c = SamplerConfig(); c.method = method; c.numSteps = 4
        let r = try runSampler(c, toyModel(), x0, batch: 2)
        let g = [0.0, 1.0 / 3, 2.0 / 3, 1.0]
        let ref = x0.map { x -> Double in
            var y = Double(x)
            for k in 0..<3 {
                let t = g[k], h = g[k + 1] - g[k]
                switch method {
                case .euler: y += h * toy(y, t)
                case .midpoint: y += h * toy(y + h / 2 * toy(y, t), t + h / 2)
                case .heun: let k1 = toy(y, t), k2 = toy(y + h * k1, t + h); y += h * (k1 + k2) / 2
                default:
                    let k1 = toy(y, t), k2 = toy(y + h * k1 / 3, t + h / 3)
                    let k3 = toy(y + h * (k2 - k1 / 3), t + 2 * h / 3), k4 = toy(y + h * (k1 - k2 + k3), t + h)
                    y += h * (k1 + 3 * (k2 + k3) + k4) / 8
                }
            }
            return y
        }
        // float32 state and float32 grid against float64: a few ulps per step.
        #expect(maxAbsError(r.x, ref) < 2e-6, "\(method)")
    }
}

@Test func repaHeunSkipsTheCorrectorOnTheLastStep() throws {
    var calls = 0
    let x0: [Float] = [0.4, -0.9]
    var c = SamplerConfig(); c.convention = .repa; c.method = .heun; c.numSteps = 3
    let r = try withUnsafeMutablePointer(to: &calls) { try runSampler(c, toyModel($0), x0, batch: 2) }
    #expect(r.nfe == 5 && calls == 5)   // docs/exactness.md §4.7: 2N − 1
    let g = [1.0, 2.0 / 3, 1.0 / 3, 0]
    let ref = x0.map { x -> Double in
        var y = Double(x)
        for k in 0..<3 {
            let h = g[k + 1] - g[k], d = toy(y, g[k])
            if k < 2 { y += h * (d + toy(y + h * d, g[k + 1])) / 2 } else { y += h * d }
        }
        return y
    }
    #expect(maxAbsError(r.x, ref) < 2e-6)
}

@Test func sitEulerMaruyamaMatchesTheOfficialStepWithTheDocumentedNoise() throws {
    let flow = GaussianFlow(mu: 0.5, s: 0.8)
    var c = SamplerConfig(); c.method = .sdeEuler; c.numSteps = 5; c.seed = 42
    let x0: [Float] = [0.2, -0.4, 1.3]
    let r = try runSampler(c, flow.model(.sit), x0, batch: 3)
    let grid = TimeGrid.integrationGrid(c)
    let dt = grid[1] - grid[0]
    var ref = x0.map(Double.init)
    for k in 0..<4 {
        let t = grid[k]
        for i in 0..<3 {
            var xi: [Float] = [0]
            xi.withUnsafeMutableBufferPointer {
                Gaussian.fill($0, stream: RandomStream(seed: 42, step: UInt64(k), sample: UInt32(i), tag: .sampler), start: 0)
            }
            let w = 1 - t   // sigma form, Linear: σ_t = 1 − t
            let drift = flow.velocity(ref[i], t) + w * flow.score(ref[i], t)
            ref[i] = ref[i] + drift * dt + (2 * w).squareRoot() * dt.squareRoot() * Double(xi[0])
        }
    }
    let t1 = grid[4]
    ref = ref.map { $0 + (flow.velocity($0, t1) + (1 - t1) * flow.score($0, t1)) * 0.04 }   // Mean last step
    #expect(maxAbsError(r.x, ref) < 2e-5)
}

@Test(arguments: [(TimeConvention.sit, SamplerMethod.sdeEuler), (.sit, .sdeHeun), (.repa, .sdeEuler)])
func sdeSamplesHaveTheExactDataDistribution(convention: TimeConvention, method: SamplerMethod) throws {
    let flow = GaussianFlow(mu: 1, s: 0.5)
    // Every element is an independent draw (the field acts per element): 8 samples × 1024 elements, which keeps
    // the number of 32-normal noise chunks per step small for the debug build.
    let b = 8 * 1024
    var c = SamplerConfig(); c.convention = convention; c.method = method; c.numSteps = 100; c.seed = 3
    let r = try runSampler(c, flow.model(convention), normals(b, seed: 11), batch: 8)
    let mean = r.x.reduce(0.0) { $0 + Double($1) } / Double(b)
    let sd = (r.x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(b)).squareRoot()
    // Standard error of the mean 0.5/√8192 = 0.0055 (sd: 0.004); discretisation of 100 steps adds ~1e-2.
    #expect(abs(mean - 1) < 0.03 && abs(sd - 0.5) < 0.03, "mean \(mean), sd \(sd)")
}

// MARK: - Guidance

@Test func classifierFreeGuidanceFollowsTheThreeChannelRuleAndTheInterval() throws {
    // model: conditional output = element index j, unconditional (null class 1000) = −1
    let model = ClosureModel { x, t, y, out in
        let dim = x.count / t.count
        for i in 0..<x.count { out[i] = y![i / dim] == 1000 ? -1 : Float(i % dim) }
    }
    var c = SamplerConfig(); c.guidance = .classifierFree; c.guidanceScale = 3; c.channels = 4; c.guidedChannels = 3
    c.guidanceInterval = 0.2...0.8
    var labels: [Int32] = [5, 7]
    let field = try labels.withUnsafeBufferPointer {
        try GuidedField(config: c, model: model, labels: $0.baseAddress, batch: 2, dim: 8)
    }
    let x = [Float](repeating: 0, count: 16)
    try x.withUnsafeBufferPointer { try field.predict($0.baseAddress!, tau: 0.5) }
    for i in 0..<16 {
        let j = i % 8
        #expect(field.prediction[i] == (j < 6 ? -1 + 3 * (Float(j) + 1) : Float(j)))
    }
    try x.withUnsafeBufferPointer { try field.predict($0.baseAddress!, tau: 0.9) }   // outside: conditional only
    #expect(Array(field.prediction) == (0..<16).map { Float($0 % 8) })
    labels[0] = 0
}

@Test func repaHeunTestsTheGuidanceIntervalOnTheCurrentTime() throws {
    // REPA grid for 5 steps: 1, .8, .6, .4, .2, 0; interval [0, 0.7]. The corrector of the step 0.8 → 0.6 is
    // evaluated at 0.6 but, as in REPA's samplers.py, guided only if τ_cur = 0.8 is inside: it is not.
    var guidedTimes: [Float] = []
    let model = ClosureModel { _, t, y, out in
        let dim = out.count / t.count
        if t.count == 2 { guidedTimes.append(t[0]) }   // doubled batch = a guided evaluation
        for i in 0..<out.count { out[i] = y![i / dim] == 1000 ? 0 : 1 }
    }
    var c = SamplerConfig(); c.convention = .repa; c.method = .heun; c.numSteps = 5
    c.guidance = .classifierFree; c.guidanceScale = 2; c.guidanceInterval = 0...0.7
    _ = try runSampler(c, model, [0], batch: 1, labels: [3])
    // Guided: step .6 → .4 (d at .6, d' at .4), step .4 → .2 (.4, .2), last step .2 → 0 (.2, no corrector).
    #expect(guidedTimes == [Float(0.6), Float(0.4), Float(0.4), Float(0.2), Float(0.2)])
}

@Test func autoguidanceExtrapolatesFromTheGuideModel() throws {
    let main = ClosureModel { _, _, _, out in for i in 0..<out.count { out[i] = 2 } }
    let weak = ClosureModel { _, _, _, out in for i in 0..<out.count { out[i] = 1.5 } }
    var c = SamplerConfig(); c.guidance = .autoguidance; c.guidanceScale = 1.42
    let field = try GuidedField(config: c, model: main, guide: weak, labels: nil, batch: 1, dim: 3)
    try [Float](repeating: 0, count: 3).withUnsafeBufferPointer { try field.predict($0.baseAddress!, tau: 0.3) }
    #expect(field.prediction.allSatisfy { abs($0 - (1.5 + 1.42 * 0.5)) < 1e-6 })
}

// MARK: - Exposure-bias baselines

@Test func epsilonScalingDividesTheLinearPathNoiseByLambda() {
    // Linear SiT, velocity model: ε̂ = x − s·v, x̂1 = x + (1 − s)·v; with ε̂/λ: v' = (x̂1' − ε̂/λ), x̂1' = (x − (1−s)ε̂/λ)/s.
    let s = 0.3, lambda = 1.05, x = 0.8, v = -0.4
    let eps = x - s * v
    let x1 = (x - (1 - s) * eps / lambda) / s
    let expected = x1 - eps / lambda
    let m = VelocityMap.make(path: .linear, convention: .sit, prediction: .velocity, modelTime: s, epsScale: lambda)
    #expect(abs(m.a * x + m.b * v - expected) < 1e-12)
    let id = VelocityMap.make(path: .linear, convention: .sit, prediction: .velocity, modelTime: s)
    #expect(id == VelocityMap(a: 0, b: 1))
}

@Test func timeShiftedQueriesMoveTheNetworkTimeTowardNoise() throws {
    var seen: [Float] = []
    let model = ClosureModel { _, t, _, out in seen.append(t[0]); for i in 0..<out.count { out[i] = 0 } }
    var c = SamplerConfig(); c.method = .euler; c.numSteps = 3; c.queryShiftConstant = 0.1
    _ = try runSampler(c, model, [0], batch: 1)
    #expect(seen == [Float(0), Float(0.4)])   // SiT times 0, 0.5 → noise levels 1 (clamped), 0.5 + 0.1
    c.convention = .repa; seen = []
    _ = try runSampler(c, model, [0], batch: 1)
    // REPA 3 steps: τ = 1, 2/3, 1/3 (noise levels themselves) → +0.1, clamped at 1
    #expect(seen == [Float(1), Float(2.0 / 3 + 0.1), Float(1.0 / 3 + 0.1)])
}

// MARK: - Failures, determinism, step-wise API

@Test func modelFailuresNameTheStepAndTheTime() throws {
    var calls = 0
    let failing = ClosureModel { _, _, _, out in
        calls += 1
        if calls == 3 { throw ModelCallbackFailure(code: 7) }
        for i in 0..<out.count { out[i] = 0 }
    }
    var c = SamplerConfig(); c.method = .euler; c.numSteps = 5
    #expect(throws: MixflowError.callback("model returned 7 at step 2 (t = 0.5)")) { try runSampler(c, failing, [0], batch: 1) }
    let nan = ClosureModel { _, _, _, out in out[0] = .nan }
    #expect(throws: MixflowError.callback("model produced a non-finite value at step 0 (t = 0.0): output[0] is nan; every element must be finite")) {
        try runSampler(c, nan, [0], batch: 1)
    }
}

@Test func sdeSamplesDoNotDependOnTheBatchSplit() throws {
    let flow = GaussianFlow(mu: 0, s: 1)
    var c = SamplerConfig(); c.method = .sdeHeun; c.numSteps = 10; c.seed = 5
    let z = normals(4 * 6, seed: 1)
    let whole = try runSampler(c, flow.model(.sit), z, batch: 4).x
    let sampler = try Sampler(c)
    var second = Array(z[12...])
    try second.withUnsafeMutableBufferPointer {
        try sampler.sample(model: flow.model(.sit), labels: nil, x: $0.baseAddress!, batch: 2, dim: 6, firstSample: 2)
    }
    #expect(Array(whole[12...]) == second)
}

@Test(arguments: [(TimeConvention.sit, SamplerMethod.euler), (.rae, .euler), (.sit, .sdeEuler), (.repa, .sdeEuler), (.repa, .euler)])
func stepWiseLoopReproducesTheWholeSampler(convention: TimeConvention, method: SamplerMethod) throws {
    let flow = GaussianFlow(mu: 0.3, s: 0.7)
    var c = SamplerConfig(); c.convention = convention; c.method = method; c.numSteps = 8; c.seed = 9
    c.epsScaleBase = 1.01
    let z = normals(12, seed: 2)
    let whole = try runSampler(c, flow.model(convention), z, batch: 3).x
    let sampler = try Sampler(c)
    var x = z, out = z, pred = z
    let model = flow.model(convention)
    for i in 0..<sampler.numSteps {
        let t = [Float](repeating: Float(sampler.stepTime(i)), count: 3)
        try x.withUnsafeBufferPointer { xp in try t.withUnsafeBufferPointer { tp in try pred.withUnsafeMutableBufferPointer { pp in
            try model.evaluate(x: xp.baseAddress!, t: tp.baseAddress!, y: nil, batch: 3, dim: 4, out: pp.baseAddress!) } } }
        try sampler.step(modelOutput: pred, index: i, x: x, out: &out, batch: 3, dim: 4)
        x = out
    }
    #expect(x == whole)
}
