#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import MixflowModels
import Testing

// DiT^DH checkpoints through ONNX: bit identity with and without metadata and graph, the graph's ops, the one-message
// error list and the metadata-less inference limits.

private let tinyDH = DiTDHConfig(encoderDepth: 2, encoderHidden: 16, encoderHeads: 2, headDepth: 1, headHidden: 24,
                                 headHeads: 2, inputSize: 4, inChannels: 3, numClasses: 5)

private func randomDiTDH(_ c: DiTDHConfig = tinyDH) throws -> DiTDHModel {
    let m = try DiTDHModel(c, seed: 5, threads: 1)
    m.randomizeConstantInitialized(seed: 6, bound: 0.3)
    return m
}

private func bytes(_ m: DiTDHModel) -> [UInt8] { Array(UnsafeRawBufferPointer(start: m.params, count: m.table.count * 4)) }

private func dhTensors(_ m: DiTDHModel) -> [(String, [Int64], [Float])] {
    m.table.entries.map { e in
        (e.name, e.shape.map(Int64.init), Array(UnsafeBufferPointer(start: m.params + e.offset, count: e.count)))
    }
}

private func tempPath(_ name: String) -> String {
    var template = Array("/tmp/mixflow-ditdh-onnx-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return dir + "/" + name
}

private func formatMessage(_ body: () throws -> Void) -> String? {
    do { try body() } catch let MixflowError.format(m) { return m } catch { return "other error: \(error)" }
    return nil
}

@Test(arguments: [Int64(-1), Int64(64)])
func ditdhCheckpointRoundTripsBitForBit(threshold: Int64) throws {
    let m = try randomDiTDH()
    let path = tempPath("dh.onnx")
    try ModelONNX.export(m, to: path, options: .init(graph: false, externalThreshold: threshold,
                                                     metadata: [(key: "run.name", value: "tiny")]))
    let loaded = try ModelONNX.loadNative(path: path, threads: 1)
    let back = try #require(loaded.model as? DiTDHModel)
    #expect(back.config == m.config)
    #expect(bytes(back) == bytes(m))
    #expect(!loaded.inferred)
    #expect(loaded.metadata.first?.key == "model.arch" && loaded.metadata.first?.value == "DiTDH")
    #expect(loaded.metadata.contains(where: { $0.key == "mixflow.format" && $0.value == "ditdh-checkpoint" }))
    #expect(loaded.metadata.last.map { $0.key == "run.name" && $0.value == "tiny" } == true)
    // The RoPE buffers and t_embedder.W are in the file and come back as stored, not recomputed.
    let reader = try OnnxReader(path: path)
    for name in ["t_embedder.W", "enc_feat_rope.freqs_cos", "dec_feat_rope.freqs_sin"] { #expect(reader.index(of: name) != nil) }
    #expect(reader.tensors.count == m.table.entries.count && reader.numNodes == 0)
}

@Test(arguments: [(tinyDH, Int64(-1)), (tinyDH, Int64(64)),
                  // equal widths: s_projector is Identity (absent from the file and the graph)
                  (DiTDHConfig(encoderDepth: 1, encoderHidden: 16, encoderHeads: 2, headDepth: 2, headHidden: 16,
                               headHeads: 4, inputSize: 3, inChannels: 2, numClasses: 1), Int64(-1))])
func ditdhGraphExportRoundTripsBitForBit(config: DiTDHConfig, threshold: Int64) throws {
    let m = try randomDiTDH(config)
    let path = tempPath("dh.onnx")
    try ModelONNX.export(m, to: path, options: .init(graph: true, externalThreshold: threshold,
                                                     metadata: [(key: "run.name", value: "tiny")]))
    let loaded = try ModelONNX.loadNative(path: path, threads: 1)
    let back = try #require(loaded.model as? DiTDHModel)
    #expect(back.config == m.config && bytes(back) == bytes(m))
    #expect(!loaded.inferred && loaded.ignored.isEmpty)
    #expect(loaded.metadata.contains(where: { $0.key == "mixflow.format" && $0.value == "ditdh-forward" }))
    // The graph adds nodes only: the initializers are exactly the state dict, and the ops are standard opset 17.
    let reader = try OnnxReader(path: path)
    #expect(reader.tensors.map(\.name) == m.table.entries.map(\.name))
    #expect(reader.numNodes > 0)
    let nodes = reader.nodes()
    let standard: Set = ["Conv", "Reshape", "Transpose", "Add", "Unsqueeze", "Mul", "Concat", "Cos", "Sin", "Gemm",
                         "Sigmoid", "Gather", "ReduceMean", "Sqrt", "Reciprocal", "Split", "Neg", "Squeeze", "MatMul",
                         "Softmax", "Identity", "Constant"]
    let ops = Set(nodes.map(\.opType))
    #expect(ops.isSubset(of: standard), "unexpected ops \(ops.subtracting(standard))")
    // Every stored tensor is read by the graph (RoPE tables and t_embedder.W included), and the output is `out`.
    let read = Set(nodes.flatMap(\.inputs))
    #expect(m.table.entries.filter { !read.contains($0.name) }.map(\.name) == [])
    #expect(nodes.last?.outputs == ["out"])
    // Without the graph the same model is a checkpoint with no nodes.
    try ModelONNX.export(m, to: path, options: .init(graph: false, externalThreshold: threshold))
    #expect(try OnnxReader(path: path).numNodes == 0)
}

@Test(arguments: [tinyDH,
                  DiTDHConfig(encoderDepth: 1, encoderHidden: 32, encoderHeads: 8, headDepth: 2, headHidden: 16,
                              headHeads: 1, inputSize: 3, inChannels: 2, numClasses: 1)])
func ditdhWithoutMetadataIsInferredFromShapes(config: DiTDHConfig) throws {
    var c = config
    c.classDropout = 0.1
    let m = try randomDiTDH(c)
    let path = tempPath("plain.onnx")
    try writePlain(path, dhTensors(m))
    let loaded = try ModelONNX.loadNative(path: path, threads: 1)
    let back = try #require(loaded.model as? DiTDHModel)
    #expect(loaded.inferred)
    #expect(back.config == c)
    #expect(bytes(back) == bytes(m))
}

@Test func ditdhWithEqualWidthsAndNoMetadataAsksForMetadata() throws {
    let c = DiTDHConfig(encoderDepth: 1, encoderHidden: 16, encoderHeads: 2, headDepth: 1, headHidden: 16, headHeads: 2,
                        inputSize: 2, inChannels: 3, numClasses: 2)
    let m = try randomDiTDH(c)
    let path = tempPath("plain.onnx")
    // Without s_projector the file is recognised by the decoder RoPE table.
    try writePlain(path, dhTensors(m))
    let msg = formatMessage { _ = try ModelONNX.loadNative(path: path) }
    #expect(msg?.contains("the encoder and head widths are both 16") == true)
    #expect(msg?.contains("add the model.* metadata") == true)
    // With the metadata it loads.
    try writePlain(path, dhTensors(m), metadata: m.architectureMetadata.map { ($0.key, $0.value) })
    #expect(bytes(try #require(try ModelONNX.loadNative(path: path).model as? DiTDHModel)) == bytes(m))
}

@Test func ditdhErrorsListMissingUnexpectedAndMisShapedTogether() throws {
    let m = try randomDiTDH()
    var t = dhTensors(m)
    t.removeAll { $0.0 == "dec_feat_rope.freqs_sin" || $0.0 == "blocks.1.mlp.w3.bias" }
    t.append(("blocks.9.extra.weight", [2], [1, 2]))
    let i = t.firstIndex { $0.0 == "t_embedder.W" }!
    t[i] = ("t_embedder.W", [128, 2], t[i].2)
    let path = tempPath("bad.onnx")
    try writePlain(path, t, metadata: m.architectureMetadata.map { ($0.key, $0.value) })
    let msg = try #require(formatMessage { _ = try ModelONNX.loadNative(path: path) })
    #expect(msg.contains("missing (2): blocks.1.mlp.w3.bias, dec_feat_rope.freqs_sin"))
    #expect(msg.contains("unexpected (1): blocks.9.extra.weight"))
    #expect(msg.contains("mis-shaped (1): t_embedder.W is [128, 2], DiT^DH needs [256]"))
    #expect(msg.hasPrefix(path + ": the initializers do not fit DiT^DH(depth 2, hidden 16"))
}

@Test func ditdhNonFiniteWeightAndBadMetadataAreFormatErrors() throws {
    let m = try randomDiTDH()
    var t = dhTensors(m)
    t[3].2[0] = .nan
    let meta = m.architectureMetadata.map { ($0.key, $0.value) }
    let path = tempPath("nan.onnx")
    try writePlain(path, t, metadata: meta)
    #expect(formatMessage { _ = try ModelONNX.loadNative(path: path) }?.contains("\"\(t[3].0)\" element 0 is nan") == true)
    try writePlain(path, dhTensors(m), metadata: meta.map { $0.0 == "model.depth" ? ($0.0, "many") : $0 })
    #expect(formatMessage { _ = try ModelONNX.loadNative(path: path) } == path + ": model.depth is missing or not an integer")
    try writePlain(path, dhTensors(m), metadata: meta.map { $0.0 == "model.class_dropout" ? ($0.0, "x") : $0 })
    #expect(formatMessage { _ = try ModelONNX.loadNative(path: path) }?.contains("model.class_dropout is \"x\"") == true)
}

@Test func loadNativeStillLoadsSiT() throws {
    let m = try randomModel()
    let path = tempPath("sit.onnx")
    try ModelONNX.export(m, to: path, options: .init(graph: false))
    let back = try #require(try ModelONNX.loadNative(path: path, threads: 1).model as? SiTModel)
    #expect(paramBytes(back) == paramBytes(m))
}
