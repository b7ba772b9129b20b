import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import MixflowModels

/// torch.optim.AdamW's update written from its documentation, in double precision.
struct ReferenceAdamW {
    var lr: Double, b1: Double, b2: Double, eps: Double, wd: Double
    var m: [Double], v: [Double], k = 0
    mutating func update(_ p: inout [Double], _ g: [Double]) {
        k += 1
        for i in p.indices {
            p[i] *= 1 - lr * wd
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            let mHat = m[i] / (1 - pow(b1, Double(k))), vHat = v[i] / (1 - pow(b2, Double(k)))
            p[i] -= lr * mHat / (vHat.squareRoot() + eps)
        }
    }
}

func pseudoRandom(_ n: Int, seed: UInt64) -> [Float] {
    var s = seed
    return (0..<n).map { _ in
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: s >> 11) % 2000 - 1000) / 500
    }
}

@Test(arguments: [0.0, 0.05])
func adamWMatchesTheDocumentedUpdate(weightDecay: Double) throws {
    let n = 1000
    var cfg = AdamWConfig()
    cfg.weightDecay = weightDecay; cfg.beta2 = 0.95
    let frozen = 100..<200
    let opt = try AdamW(count: n, trainable: [0..<100, 200..<n], config: cfg, threads: 2)
    var params = pseudoRandom(n, seed: 1)
    var ref = ReferenceAdamW(lr: 1e-2, b1: 0.9, b2: 0.95, eps: 1e-8, wd: weightDecay,
                             m: .init(repeating: 0, count: n), v: .init(repeating: 0, count: n))
    var refParams = params.map(Double.init)
    for step in 0..<20 {
        let grads = pseudoRandom(n, seed: UInt64(100 + step))
        params.withUnsafeMutableBufferPointer { p in
            grads.withUnsafeBufferPointer { g in opt.update(params: p.baseAddress!, grads: g.baseAddress!, lr: 1e-2) }
        }
        var masked = grads.map(Double.init)
        for i in frozen { masked[i] = 0 }
        let before = refParams
        ref.update(&refParams, masked)
        for i in frozen { refParams[i] = before[i] }   // untouched: not in the optimiser
    }
    #expect(opt.step == 20)
    for i in 0..<n {
        // float32 state vs double reference over 20 steps: a few ulp of the parameter scale.
        #expect(abs(Double(params[i]) - refParams[i]) < 2e-6 * max(1, abs(refParams[i])), "element \(i)")
    }
    let original = pseudoRandom(n, seed: 1)
    #expect(Array(params[frozen]) == Array(original[frozen]))
}

@Test func emaFollowsItsDefinition() {
    var ema: [Float] = [1, 2, 3, 4]
    let p: [Float] = [0, 0, 10, 4]
    ema.withUnsafeMutableBufferPointer { e in EMA.update(ema: e.baseAddress!, params: p, count: 4, decay: 0.9) }
    #expect(ema.enumerated().allSatisfy { abs($0.element - [0.9, 1.8, 3.7, 4][$0.offset]) < 1e-6 })
}

@Test func gradientClippingMatchesTorchSemantics() {
    var g = pseudoRandom(100_003, seed: 7)
    let reference = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    let norm = g.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: $0.count, maxNorm: 1.0, threads: 2) }
    #expect(abs(norm - reference) < 1e-6 * reference)
    let after = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    #expect(abs(after - reference / (reference + 1e-6)) < 1e-5)
    // Below the threshold nothing changes.
    var small: [Float] = [0.1, 0.2]
    _ = small.withUnsafeMutableBufferPointer { GradientClipping.clip($0.baseAddress!, count: 2, maxNorm: 1.0) }
    #expect(small == [0.1, 0.2])
}

@Test func gradientNormIsIndependentOfThreads() {
    let g = pseudoRandom(300_001, seed: 3)
    let a = GradientClipping.norm(g, count: g.count, threads: 1)
    let b = GradientClipping.norm(g, count: g.count, threads: 2)
    #expect(a == b)
}

@Test func raeLinearScheduleMatchesItsRecipe() {
    // RAE: 2e-4 constant for 40 epochs, linear to 2e-5 at epoch 800, constant after (steps = epochs here).
    let s = LearningRateSchedule.linearDecay(base: 2e-4, final: 2e-5, decayStart: 40, decayEnd: 800, warmup: 0)
    #expect(s.rate(at: 0) == 2e-4 && s.rate(at: 40) == 2e-4)
    #expect(abs(s.rate(at: 420) - 1.1e-4) < 1e-12)
    #expect(s.rate(at: 800) == 2e-5 && s.rate(at: 5000) == 2e-5)
    #expect(LearningRateSchedule.constant(1e-4).rate(at: 123) == 1e-4)
    let w = LearningRateSchedule.linearDecay(base: 1, final: 0, decayStart: 10, decayEnd: 20, warmup: 4)
    #expect(w.rate(at: 0) == 0.25 && w.rate(at: 3) == 1)
}
