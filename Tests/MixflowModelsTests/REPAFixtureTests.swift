import Foundation
import Testing
@testable import MixflowModels

// Conformance against Tests/Fixtures/repa/*, written by Tests/Fixtures/make_repa_fixtures.py: a float64 PyTorch
// re-implementation of REPA's official models/sit.py and loss.py (SILoss) on float32 weights and inputs,
// with non-zero weights everywhere.

extension Fixture {
    var repaConfig: REPAConfig {
        let sit = SiTConfig(depth: config["depth"]!, hidden: config["hidden"]!, heads: config["heads"]!,
                            patch: config["patch"]!, inputSize: config["input"]!, inChannels: config["channels"]!,
                            numClasses: config["classes"]!, learnSigma: false)
        return REPAConfig(sit: sit, encoderDepth: config["encoder_depth"]!, projectorDim: config["projector_dim"]!,
                          zDims: rawConfig["z_dims"]!.split(separator: ",").map { Int($0)! })
    }
}

let repaFixtures = Fixture.directory.deletingLastPathComponent().appendingPathComponent("repa")

/// Loads the weights by name, runs forward, the alignment loss and backward of denoise + λ·proj.
func runREPAFixture(_ fx: Fixture, threads: Int = 2, lambda: Float? = nil)
    throws -> (model: REPAModel, out: [Float], dx: [Float], denoise: Double, proj: Float) {
    let c = fx.repaConfig
    let model = try REPAModel(c, seed: 0, threads: threads)
    try loadFixtureWeights(fx, into: model)
    let b = fx.config["batch"]!, n = b * c.sit.sampleSize
    var out = [Float](repeating: 0, count: n)
    try model.forward(x: fx.floats["x"]!, t: fx.floats["t"]!, y: fx.ints["y"]!, batch: b, out: &out)
    let target = fx.floats["target"]!
    var denoise = 0.0
    for i in 0..<n { denoise += Double(out[i] - target[i]) * Double(out[i] - target[i]) }
    denoise /= Double(n)
    // Sample-major: sample j holds encoder 0's [T, z_0], then encoder 1's [T, z_1], …
    let tk = c.sit.tokens
    let z = (0..<b).flatMap { j in
        c.zDims.indices.flatMap { k in fx.floats["z\(k)"]![(j * tk * c.zDims[k])..<((j + 1) * tk * c.zDims[k])] }
    }
    let proj = try model.alignmentLoss(features: z, batch: b, weight: lambda ?? Float(fx.rawConfig["proj_coeff"]!)!)
    let dout = (0..<n).map { lambda == nil ? 2 * (out[$0] - target[$0]) / Float(n) : 0 }
    var dx = [Float](repeating: 0, count: n)
    model.zeroGradients()
    try model.backward(dout: dout, batch: b, dx: &dx)
    return (model, out, dx, denoise, proj)
}

@Test(arguments: ["tiny_two_encoders", "tiny_one_encoder"])
func repaMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name, directory: repaFixtures)
    let r = try runREPAFixture(fx)
    let c = fx.repaConfig, b = fx.config["batch"]!
    let eOut = relativeError(r.out, fx.floats["out"]!)
    #expect(eOut <= fixtureTolerance, "output relative error \(eOut)")
    for k in 0..<c.zDims.count {
        let zt = Array(UnsafeBufferPointer(start: try r.model.projectorOutput(k, batch: b), count: b * c.sit.tokens * c.zDims[k]))
        let e = relativeError(zt, fx.floats["ztilde\(k)"]!)
        #expect(e <= fixtureTolerance, "projector \(k) output relative error \(e)")
    }
    let denoiseRef = Double(fx.floats["denoise"]![0]), projRef = Double(fx.floats["proj"]![0])
    #expect(abs(r.denoise - denoiseRef) <= 1e-5 * denoiseRef)
    #expect(abs(Double(r.proj) - projRef) <= 1e-5, "proj \(r.proj) vs \(projRef)")
    let ex = relativeError(r.dx, fx.floats["grad:x"]!)
    #expect(ex <= fixtureTolerance, "d(total)/dx relative error \(ex)")
    var worst = 0.0
    for e in r.model.tensorEntries {
        let g = Array(UnsafeBufferPointer(start: r.model.grads + e.offset, count: e.count))
        guard e.trainable else { #expect(g.allSatisfy { $0 == 0 }); continue }
        let err = relativeError(g, fx.floats["grad:" + e.name]!)
        worst = max(worst, err)
        #expect(err <= fixtureTolerance, "d(total)/d(\(e.name)) relative error \(err)")
    }
    print("REPA \(name): output \(eOut), worst parameter gradient \(worst) (relative to each tensor's max)")
}

/// The alignment term's gradient alone (λ = 1, no denoising gradient) against d(proj)/dθ: a wrong projector
/// backward cannot hide in the tolerance of the (much larger) denoising gradient of the trunk.
@Test(arguments: ["tiny_two_encoders", "tiny_one_encoder"])
func repaAlignmentGradientMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name, directory: repaFixtures)
    let r = try runREPAFixture(fx, lambda: 1)
    for e in r.model.tensorEntries where e.trainable && e.name != "final_layer.linear.weight" {
        let ref = fx.floats["pgrad:" + e.name]!
        let g = Array(UnsafeBufferPointer(start: r.model.grads + e.offset, count: e.count))
        let err = relativeError(g, ref)
        #expect(err <= fixtureTolerance, "d(proj)/d(\(e.name)) relative error \(err)")
    }
}

/// Finite differences of denoise-like Σ r·out + λ·proj on a tiny REPA model with every tensor non-zero.
@Test func repaGradientsMatchFiniteDifferences() throws {
    let sit = SiTConfig(depth: 2, hidden: 16, heads: 2, patch: 2, inputSize: 4, inChannels: 2, numClasses: 3,
                        learnSigma: false)
    let c = REPAConfig(sit: sit, encoderDepth: 1, projectorDim: 8, zDims: [5, 3])
    let m = try REPAModel(c, seed: 7, threads: 1)
    m.trunk.randomizeZeroInitialized(seed: 8, bound: 0.3)
    let b = 2, n = b * sit.sampleSize, lambda: Float = 0.5
    let z = randomArray(b * c.featureSize, seed: 72)
    let (bad, grads) = try finiteDifferenceMismatches(m, x: randomArray(n, seed: 70), t: [0.2, 0.7], y: [1, 3],
                                                      r: randomArray(n, seed: 71)) {
        Double(lambda) * Double(try m.alignmentLoss(features: z, batch: b, weight: lambda))
    }
    #expect(bad.isEmpty, "\(bad)")
    for (name, g) in grads where name.hasPrefix("projectors.") {
        #expect(g.contains { $0 != 0 }, "\(name) received no gradient")
    }
}

/// Without `alignmentLoss` the projectors get no gradient and the trunk's gradient is SiT's.
@Test func repaWithoutFeaturesTrainsTheDenoisingLossAlone() throws {
    let fx = try Fixture("tiny_one_encoder", directory: repaFixtures)
    let c = fx.repaConfig, b = fx.config["batch"]!, n = b * c.sit.sampleSize
    let repa = try REPAModel(c, seed: 3, threads: 1)
    repa.trunk.randomizeZeroInitialized(seed: 4)
    let sit = try SiTModel(c.sit, seed: 0, threads: 1)
    for e in sit.table.entries {
        (sit.params + e.offset).update(from: repa.params + repa.tensorIndex(of: e.name).map { repa.tensorEntries[$0].offset }!,
                                       count: e.count)
    }
    let r = randomArray(n, seed: 5)
    var o1 = [Float](repeating: 0, count: n), o2 = o1
    for (m, o) in [(repa as NativeModel, 1), (sit as NativeModel, 2)] {
        var out = [Float](repeating: 0, count: n)
        try m.forward(x: fx.floats["x"]!, t: fx.floats["t"]!, y: fx.ints["y"]!, batch: b, out: &out, dropout: nil,
                      saveForBackward: true)
        if o == 1 { o1 = out } else { o2 = out }
        m.zeroGradients()
        try m.backward(dout: r, batch: b, dx: nil)
    }
    #expect(o1 == o2)
    for e in repa.tensorEntries {
        let g = Array(UnsafeBufferPointer(start: repa.grads + e.offset, count: e.count))
        if let i = sit.tensorIndex(of: e.name) {
            #expect(g == Array(UnsafeBufferPointer(start: sit.grads + sit.tensorEntries[i].offset, count: e.count)), "\(e.name)")
        } else {
            #expect(g.allSatisfy { $0 == 0 }, "\(e.name) must get no gradient without features")
        }
    }
}
