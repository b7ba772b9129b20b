import Foundation
import Testing
@testable import MixflowModels

// Conformance against Tests/Fixtures/ditdh/*, written by an independent PyTorch re-implementation of DiT^DH
// from docs/exactness.md §6 (Tests/Fixtures/make_ditdh_fixtures.py, float64 reference on float32 weights and inputs).

let ditdhFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/ditdh")

extension Fixture {
    var ditdhConfig: DiTDHConfig {
        DiTDHConfig(encoderDepth: config["depth"]!, encoderHidden: config["hidden"]!, encoderHeads: config["heads"]!,
                    headDepth: config["head_depth"]!, headHidden: config["head_hidden"]!, headHeads: config["head_heads"]!,
                    inputSize: config["input"]!, inChannels: config["channels"]!, numClasses: config["classes"]!)
    }
}

/// Loads every tensor by name (checking names, order and shapes against the table), runs forward and the
/// backward of L = mean((out − target)²); returns the model, its output and dL/dx.
func runDiTDHFixture(_ fx: Fixture, threads: Int = 2) throws -> (DiTDHModel, [Float], [Float]) {
    let model = try DiTDHModel(fx.ditdhConfig, seed: 0, threads: threads)
    #expect(model.table.entries.count == fx.floats.keys.filter { $0.hasPrefix("param:") }.count)
    for e in model.table.entries {
        let w = try #require(fx.floats["param:" + e.name], "fixture lacks \(e.name)")
        #expect(fx.shapes["param:" + e.name]! == e.shape, "shape of \(e.name)")
        (model.params + e.offset).update(from: w, count: e.count)
    }
    let b = fx.config["batch"]!, n = b * fx.ditdhConfig.sampleSize
    var out = [Float](repeating: 0, count: n)
    try model.forward(x: fx.floats["x"]!, t: fx.floats["t"]!, y: fx.ints["y"]!, batch: b, out: &out)
    let target = fx.floats["target"]!
    let dout = (0..<n).map { 2 * (out[$0] - target[$0]) / Float(n) }
    var dx = [Float](repeating: 0, count: n)
    model.zeroGradients()
    try model.backward(dout: dout, batch: b, dx: &dx)
    return (model, out, dx)
}

@Test(arguments: ["tiny", "tiny_identity"])
func ditdhMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name, directory: ditdhFixtures)
    let (model, out, dx) = try runDiTDHFixture(fx)
    #expect(model.table.sProjW == nil ? name == "tiny_identity" : name == "tiny")
    let ref = fx.floats["out"]!
    let e = out.withUnsafeBufferPointer { a in ref.withUnsafeBufferPointer { relativeError(a, $0) } }
    #expect(e <= fixtureTolerance, "output relative error \(e)")
    let target = fx.floats["target"]!
    var loss = 0.0
    for i in 0..<out.count { loss += Double(out[i] - target[i]) * Double(out[i] - target[i]) }
    loss /= Double(out.count)
    #expect(abs(loss - Double(fx.floats["loss"]![0])) <= 1e-5 * loss)
    let ex = dx.withUnsafeBufferPointer { a in fx.floats["grad:x"]!.withUnsafeBufferPointer { relativeError(a, $0) } }
    #expect(ex <= fixtureTolerance, "dL/dx relative error \(ex)")
    for entry in model.table.entries {
        let g = UnsafeBufferPointer(start: model.grads + entry.offset, count: entry.count)
        guard entry.trainable else {
            #expect(g.allSatisfy { $0 == 0 }, "\(entry.name) is fixed and must get no gradient")
            continue
        }
        let r = try #require(fx.floats["grad:" + entry.name], "fixture lacks the gradient of \(entry.name)")
        let err = r.withUnsafeBufferPointer { relativeError(g, $0) }
        #expect(err <= fixtureTolerance, "\(entry.name): gradient relative error \(err)")
    }
}

/// The fixed tables the model computes at init against the generator's float64 numpy tables: 1e-6 absolute
/// (float32 rounding of values in [−1, 1], plus the float32 angle the official code forms).
@Test(arguments: ["tiny", "tiny_identity"])
func fixedTablesEqualTheReference(_ name: String) throws {
    let fx = try Fixture(name, directory: ditdhFixtures)
    let model = try DiTDHModel(fx.ditdhConfig, seed: 9)
    let tb = model.table
    for k in [tb.posEmbed, tb.encCos, tb.encSin, tb.decCos, tb.decSin] {
        let e = tb.entries[k]
        let ref = try #require(fx.floats["param:" + e.name])
        var worst: Float = 0
        for i in 0..<e.count { worst = max(worst, abs(model.params[e.offset + i] - ref[i])) }
        #expect(worst <= 1e-6, "\(e.name): max error \(worst)")
    }
}
