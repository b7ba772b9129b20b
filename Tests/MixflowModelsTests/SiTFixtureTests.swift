import Foundation
import Testing
@testable import MixflowModels

// Conformance against Tests/Fixtures/sit/*, written by an independent PyTorch re-implementation of the
// official SiT (Tests/Fixtures/make_sit_fixtures.py, float64 reference on float32 weights and inputs).

struct Fixture {
    var config: [String: Int] = [:]
    /// Every config value as written (lists and reals, which `config` leaves out).
    var rawConfig: [String: String] = [:]
    var floats: [String: [Float]] = [:]
    var ints: [String: [Int32]] = [:]
    var shapes: [String: [Int]] = [:]
    /// Position of each tensor in the manifest.
    var order: [String: Int] = [:]

    static let directory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/sit")

    init(_ name: String, directory: URL = Fixture.directory) throws {
        let text = try String(contentsOf: directory.appendingPathComponent(name + ".txt"), encoding: .utf8)
        let data = try Data(contentsOf: directory.appendingPathComponent(name + ".bin"))
        var offset = 0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: " ").map(String.init)
            if f[0] == "config" {
                for kv in f.dropFirst() {
                    let p = kv.split(separator: "=")
                    config[String(p[0])] = Int(p[1])
                    rawConfig[String(p[0])] = String(p[1])
                }
                continue
            }
            let n = Int(f[2])!
            shapes[f[0]] = f.dropFirst(3).map { Int($0)! }
            order[f[0]] = order.count
            let bytes = data.subdata(in: offset..<(offset + 4 * n))
            if f[1] == "f32" {
                floats[f[0]] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            } else {
                ints[f[0]] = bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            }
            offset += 4 * n
        }
        precondition(offset == data.count, "fixture \(name): manifest and data disagree")
    }

    var sitConfig: SiTConfig {
        SiTConfig(depth: config["depth"]!, hidden: config["hidden"]!, heads: config["heads"]!, patch: config["patch"]!,
                  inputSize: config["input"]!, inChannels: config["channels"]!, numClasses: config["classes"]!,
                  learnSigma: config["learn_sigma"]! != 0)
    }
}

/// Loads the fixture's weights by name (checking every name and shape against the table), runs forward and
/// backward of L = mean((out − target)²), and returns the model, its output and dL/dx.
func runFixture(_ fx: Fixture, threads: Int = 2) throws -> (SiTModel, [Float], [Float]) {
    let model = try SiTModel(fx.sitConfig, seed: 0, threads: threads)
    #expect(model.table.entries.count == fx.floats.keys.filter { $0.hasPrefix("param:") }.count)
    for e in model.table.entries {
        let w = try #require(fx.floats["param:" + e.name], "fixture lacks \(e.name)")
        #expect(fx.shapes["param:" + e.name]! == e.shape, "shape of \(e.name)")
        (model.params + e.offset).update(from: w, count: e.count)
    }
    let b = fx.config["batch"]!, n = b * fx.sitConfig.sampleSize
    var out = [Float](repeating: 0, count: n)
    try model.forward(x: fx.floats["x"]!, t: fx.floats["t"]!, y: fx.ints["y"]!, batch: b, out: &out)
    let target = fx.floats["target"]!
    let dout = (0..<n).map { 2 * (out[$0] - target[$0]) / Float(n) }
    var dx = [Float](repeating: 0, count: n)
    model.zeroGradients()
    try model.backward(dout: dout, batch: b, dx: &dx)
    return (model, out, dx)
}

/// 1e-4 relative (to each tensor's max magnitude): float32 arithmetic through a depth-2 transformer
/// accumulates ~1e-6 relative error; a wrong formula or index is off by O(1).
let fixtureTolerance = 1e-4

@Test(arguments: ["tiny_sigma", "tiny_nosigma"])
func sitMatchesTheTorchReference(_ name: String) throws {
    let fx = try Fixture(name)
    let (model, out, dx) = try runFixture(fx)
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
        let r = try #require(fx.floats["grad:" + entry.name])
        let err = r.withUnsafeBufferPointer { relativeError(g, $0) }
        #expect(err <= fixtureTolerance, "\(entry.name): gradient relative error \(err)")
    }
}

@Test func posEmbedEqualsTheReferenceTable() throws {
    // The fixture's pos_embed comes from the generator's numpy sin-cos (first half = column index).
    let fx = try Fixture("tiny_sigma")
    let model = try SiTModel(fx.sitConfig, seed: 3)
    let ref = fx.floats["param:pos_embed"]!
    let e = model.table.entries[0]
    for i in 0..<e.count { #expect(abs(model.params[e.offset + i] - ref[i]) <= 1e-6) }
}
