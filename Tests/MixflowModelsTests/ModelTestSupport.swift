import Foundation
import MixflowCore
import Testing
@testable import MixflowModels

// What the tests of every native architecture share: the fixture reader (files written by
// Tests/Fixtures/make_*_fixtures.py, format in Tests/Fixtures/fixture_common.py), loading a fixture's weights,
// the conformance check of a denoising fixture, whole-model finite differences, and inference-vs-training.

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
}

/// 1e-4 relative (to each tensor's max magnitude): float32 arithmetic through a depth-2 transformer
/// accumulates ~1e-6 relative error; a wrong formula or index is off by O(1).
let fixtureTolerance = 1e-4


/// `relativeError` of two arrays.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { relativeError(x, $0) } }
}

/// Copies every `param:` tensor of `fx` into `model` by name, checking that the model's table holds exactly the
/// fixture's tensors, in the fixture's (the official state dict's) order and shapes.
func loadFixtureWeights(_ fx: Fixture, into model: some NativeArchitecture) throws {
    let names = fx.shapes.keys.filter { $0.hasPrefix("param:") }.sorted { fx.order[$0]! < fx.order[$1]! }
    #expect(model.tensorEntries.map { "param:" + $0.name } == names, "table order = the official state dict's")
    for e in model.tensorEntries {
        let w = try #require(fx.floats["param:" + e.name], "fixture lacks \(e.name)")
        #expect(fx.shapes["param:" + e.name]! == e.shape, "shape of \(e.name)")
        (model.params + e.offset).update(from: w, count: e.count)
    }
}

/// A fixture of L = mean((out − target)²) (SiT, DiT^DH): loads its weights into `model`, runs forward and
/// backward, and expects the output, L, dL/dx and every parameter gradient (none for fixed tensors) to match.
func expectMatchesDenoisingFixture(_ fx: Fixture, _ model: some NativeArchitecture) throws {
    try loadFixtureWeights(fx, into: model)
    let b = fx.config["batch"]!, n = b * model.sampleDim
    var out = [Float](repeating: 0, count: n), dx = out
    try model.forward(x: fx.floats["x"]!, t: fx.floats["t"]!, y: fx.ints["y"]!, batch: b, out: &out, dropout: nil,
                      saveForBackward: true)
    let target = fx.floats["target"]!
    var loss = 0.0
    for i in 0..<n { loss += Double(out[i] - target[i]) * Double(out[i] - target[i]) }
    loss /= Double(n)
    let dout = (0..<n).map { 2 * (out[$0] - target[$0]) / Float(n) }
    model.zeroGradients()
    try model.backward(dout: dout, batch: b, dx: &dx)
    let e = relativeError(out, fx.floats["out"]!)
    #expect(e <= fixtureTolerance, "output relative error \(e)")
    #expect(abs(loss - Double(fx.floats["loss"]![0])) <= 1e-5 * loss)
    let ex = relativeError(dx, fx.floats["grad:x"]!)
    #expect(ex <= fixtureTolerance, "dL/dx relative error \(ex)")
    for entry in model.tensorEntries {
        let g = Array(UnsafeBufferPointer(start: model.grads + entry.offset, count: entry.count))
        guard entry.trainable else {
            #expect(g.allSatisfy { $0 == 0 }, "\(entry.name) is fixed and must get no gradient")
            continue
        }
        let r = try #require(fx.floats["grad:" + entry.name], "fixture lacks the gradient of \(entry.name)")
        let err = relativeError(g, r)
        #expect(err <= fixtureTolerance, "\(entry.name): gradient relative error \(err)")
    }
}

/// Central finite differences of L = Σ r·out(x) + `extra()` (called after every forward: REPA's λ·proj) against
/// the model's backward, on x and on up to 12 entries of each trainable tensor named in `tensors` (all when
/// nil). Returns the mismatches and the analytic gradient of every tensor checked.
func finiteDifferenceMismatches(_ m: some NativeArchitecture, x: [Float], t: [Float], y: [Int32], r: [Float],
                                tensors: [String]? = nil, eps: Float = 5e-3, tol: Double = 3e-2, xSamples: Int = 40,
                                extra: () throws -> Double = { 0 }) throws
    -> (mismatches: [GradientMismatch], gradients: [String: [Float]]) {
    let b = t.count, n = x.count
    var out = [Float](repeating: 0, count: n), dx = out
    try m.forward(x: x, t: t, y: y, batch: b, out: &out, dropout: nil, saveForBackward: true)
    _ = try extra()
    m.zeroGradients()
    try m.backward(dout: r, batch: b, dx: &dx)
    func loss(_ x: [Float]) -> Double {
        var o = [Float](repeating: 0, count: n)
        try! m.forward(x: x, t: t, y: y, batch: b, out: &o, dropout: nil, saveForBackward: true)
        return weightedSum(o, r) + (try! extra())
    }
    var xs = x
    var bad = checkGradient("x", &xs, analytic: dx, eps: eps, tol: tol, samples: xSamples) { loss($0) }
    var gradients: [String: [Float]] = [:]
    let checked = m.tensorEntries.filter { e in e.trainable && (tensors.map { $0.contains(e.name) } ?? true) }
    #expect(checked.count == tensors?.count ?? checked.count, "every named tensor exists and is trainable")
    for e in checked { gradients[e.name] = Array(UnsafeBufferPointer(start: m.grads + e.offset, count: e.count)) }
    for e in checked {
        var w = Array(UnsafeBufferPointer(start: m.params + e.offset, count: e.count))
        bad += checkGradient(e.name, &w, analytic: gradients[e.name]!, eps: eps, tol: tol, samples: 12) { w in
            (m.params + e.offset).update(from: w, count: e.count)
            return loss(x)
        }
        (m.params + e.offset).update(from: w, count: e.count)
    }
    return (bad, gradients)
}

/// An inference pass (`saveForBackward` false) leaves backward unavailable, gives the training pass's output
/// bit for bit and needs less than half its activation memory.
func expectInferenceMatchesTraining(_ m: some NativeArchitecture, x: [Float], t: [Float], y: [Int32]) throws {
    let b = t.count
    var train = [Float](repeating: 0, count: x.count), eval = train
    try m.forward(x: x, t: t, y: y, batch: b, out: &eval, dropout: nil, saveForBackward: false)
    #expect(throws: MixflowError.self) { try m.backward(dout: x, batch: b, dx: nil) }   // nothing saved yet
    try m.forward(x: x, t: t, y: y, batch: b, out: &train, dropout: nil, saveForBackward: true)
    #expect(train == eval)
    #expect(m.activationFloats(batch: b, training: false) * 2 < m.activationFloats(batch: b, training: true))
}
