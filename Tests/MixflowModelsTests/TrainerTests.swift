import Testing
import MixflowCore
import MixflowMethod
@testable import MixflowModels

/// A per-element linear velocity model v = a·x + b + c·t with a hand-written backward: small enough that
/// the trainer's orchestration (transport, hook, clipping, AdamW, EMA, checkpoints) is what is tested.
final class ToyModel: TrainableModel {
    let sampleDim: Int
    var storage: [Float]
    var grads: [Float]
    var lastX: [Float] = [], lastT: [Float] = []
    init(dim: Int) {
        sampleDim = dim
        storage = (0..<(3 * dim)).map { Float($0 % 7) * 0.01 }
        grads = .init(repeating: 0, count: 3 * dim)
    }
    var parameterCount: Int { storage.count }
    var trainableRanges: [Range<Int>] { [0..<(3 * sampleDim)] }
    var parameters: UnsafeMutablePointer<Float> { storage.withUnsafeMutableBufferPointer { $0.baseAddress! } }
    var gradients: UnsafeMutablePointer<Float> { grads.withUnsafeMutableBufferPointer { $0.baseAddress! } }
    var architectureMetadata: [(key: String, value: String)] { [("model.arch", "toy"), ("model.dim", "\(sampleDim)")] }

    func forwardTraining(x: UnsafePointer<Float>, t: UnsafePointer<Float>, y: UnsafePointer<Int32>?, batch: Int,
                         seed: UInt64, step: UInt64, firstSample: UInt64, out: UnsafeMutablePointer<Float>) throws {
        let d = sampleDim
        lastX = Array(UnsafeBufferPointer(start: x, count: batch * d))
        lastT = Array(UnsafeBufferPointer(start: t, count: batch))
        for i in 0..<batch { for j in 0..<d { out[i * d + j] = storage[j] * x[i * d + j] + storage[d + j] + storage[2 * d + j] * t[i] } }
    }

    func backward(gradOutput g: UnsafePointer<Float>) throws {
        let d = sampleDim, batch = lastT.count
        for j in 0..<(3 * d) { grads[j] = 0 }
        for i in 0..<batch { for j in 0..<d {
            grads[j] += g[i * d + j] * lastX[i * d + j]
            grads[d + j] += g[i * d + j]
            grads[2 * d + j] += g[i * d + j] * lastT[i]
        } }
    }
}

func data(batch: Int, dim: Int, step: Int) -> [Float] {
    (0..<(batch * dim)).map { Float(($0 * 31 + step * 7) % 17) / 8 - 1 }
}

func makeTrainer(threads: Int = 0, clip: Double? = nil) throws -> Trainer {
    var config = TrainerConfig()
    config.schedule = .constant(1e-2)
    config.emaDecay = 0.9
    config.maxGradNorm = clip
    config.seed = 5
    config.threads = threads
    var tc = TransportConfig(); tc.threads = threads
    return try Trainer(model: ToyModel(dim: 48), transport: try Transport(tc), config: config)
}

@Test func trainingReducesTheLoss() throws {
    let trainer = try makeTrainer()
    var losses: [Double] = []
    for s in 0..<300 {
        let x = data(batch: 16, dim: 48, step: s % 4)
        losses.append(try trainer.trainStep(x1: x, y: nil, batch: 16))
    }
    let first = losses.prefix(20).reduce(0, +) / 20, last = losses.suffix(20).reduce(0, +) / 20
    #expect(last < 0.8 * first)
    #expect(trainer.step == 300 && trainer.optimizer.step == 300)
}

@Test func trainingIsDeterministicAcrossThreadCounts() throws {
    let a = try makeTrainer(threads: 1), b = try makeTrainer(threads: 2)
    for s in 0..<10 {
        let x = data(batch: 8, dim: 48, step: s)
        let la = try a.trainStep(x1: x, y: nil, batch: 8), lb = try b.trainStep(x1: x, y: nil, batch: 8)
        #expect(la == lb)
    }
    #expect((a.model as! ToyModel).storage == (b.model as! ToyModel).storage)
    #expect(a.ema == b.ema)
}

@Test func resumingContinuesBitIdentically() throws {
    let path = temporaryPath("trainer.mixflow")
    let straight = try makeTrainer(clip: 0.5)
    for s in 0..<5 { try straight.trainStep(x1: data(batch: 8, dim: 48, step: s), y: nil, batch: 8) }
    try straight.save(to: path)
    for s in 5..<10 { try straight.trainStep(x1: data(batch: 8, dim: 48, step: s), y: nil, batch: 8) }

    let resumed = try Trainer.resume(from: path) { meta in
        guard meta.first(where: { $0.key == "model.arch" })?.value == "toy",
              let d = meta.first(where: { $0.key == "model.dim" }).flatMap({ Int($0.value) }) else {
            throw MixflowError.format("not a toy model")
        }
        return ToyModel(dim: d)
    }
    #expect(resumed.step == 5)
    #expect(resumed.config == straight.config, "\(resumed.config) vs \(straight.config)")
    for s in 5..<10 { try resumed.trainStep(x1: data(batch: 8, dim: 48, step: s), y: nil, batch: 8) }
    #expect((resumed.model as! ToyModel).storage == (straight.model as! ToyModel).storage)
    #expect(resumed.ema == straight.ema && resumed.optimizer.m == straight.optimizer.m && resumed.optimizer.v == straight.optimizer.v)
}

@Test func gradientHookSeesGradientsAndCanAbortTheStep() throws {
    let trainer = try makeTrainer()
    var seen: [Float] = []
    trainer.gradientHook = { g, n, step in
        seen = Array(UnsafeBufferPointer(start: g, count: n))
        #expect(step == 0)
    }
    try trainer.trainStep(x1: data(batch: 4, dim: 48, step: 0), y: nil, batch: 4)
    #expect(seen == (trainer.model as! ToyModel).grads && seen.contains { $0 != 0 })
    // A hook that fails (say, an all-reduce) aborts the step before any parameter or counter changes.
    let before = (trainer.model as! ToyModel).storage
    trainer.gradientHook = { _, _, _ in throw MixflowError.callback("all-reduce failed") }
    #expect(throws: MixflowError.callback("all-reduce failed")) {
        try trainer.trainStep(x1: data(batch: 4, dim: 48, step: 1), y: nil, batch: 4)
    }
    #expect((trainer.model as! ToyModel).storage == before && trainer.step == 1)
}

@Test func trainerPresetsFollowTheRecipes() throws {
    let sit = try TrainerConfig.preset("sit")
    #expect(sit.schedule == .constant(1e-4) && sit.optimizer.beta2 == 0.999 && sit.emaDecay == 0.9999 && sit.maxGradNorm == nil)
    let rae = try TrainerConfig.preset("rae")
    #expect(rae.schedule.rate(at: 0) == 2e-4 && rae.optimizer.beta2 == 0.95 && rae.emaDecay == 0.9995 && rae.maxGradNorm == 1.0)
    #expect(rae.schedule.rate(at: 800) == 2e-5)
    #expect(throws: MixflowError.self) { try TrainerConfig.preset("dit") }
}
