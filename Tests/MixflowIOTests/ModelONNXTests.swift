#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
@testable import MixflowIO
import MixflowModels
import Testing

// SiT <-> ONNX in Swift. onnxruntime parity of the graph and pip-onnx readings of the files are in
// bindings/python/tests/test_model_onnx.py; here: bit identity, inference from shapes, name matching,
// the torch.onnx.export fixture against torch's stored output, error lists and hostile variants.

let tinyConfig = SiTConfig(depth: 2, hidden: 32, heads: 4, patch: 2, inputSize: 8, inChannels: 3, numClasses: 5)

/// A tiny SiT whose official-init zeros (adaLN, final layer, biases) are replaced by random values.
func randomModel(_ c: SiTConfig = tinyConfig, seed: UInt64 = 3) throws -> SiTModel {
    let m = try SiTModel(c, seed: seed, threads: 1)
    m.randomizeZeroInitialized(seed: seed + 1, bound: 0.2)
    return m
}

func paramBytes(_ m: SiTModel) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: m.params, count: m.table.count * 4))
}

/// Writes `tensors` (name, dims, values) with no metadata and no graph, like a plain converted state dict.
func writePlain(_ path: String, _ tensors: [(String, [Int64], [Float])], metadata: [(String, String)] = []) throws {
    let w = try OnnxWriter(path: path, externalThreshold: -1)
    for (k, v) in metadata { try w.setMetadata(k, v) }
    for (n, d, v) in tensors { try v.withUnsafeBufferPointer { try w.add(n, dims: d, data: $0) } }
    try w.finish()
}

func tensors(of m: SiTModel, rename: (String) -> String = { $0 }) -> [(String, [Int64], [Float])] {
    m.table.entries.map { e in
        (rename(e.name), e.shape.map(Int64.init), Array(UnsafeBufferPointer(start: m.params + e.offset, count: e.count)))
    }
}

@Test(arguments: [(true, Int64(-1)), (false, Int64(0)), (true, Int64(1024))])
func exportThenImportIsBitIdentical(graph: Bool, threshold: Int64) throws {
    let tmp = TempFolder()
    let m = try randomModel()
    try ModelONNX.export(m, to: tmp.file("m.onnx"), options: .init(graph: graph, externalThreshold: threshold,
                                                                   metadata: [("transport.gamma", "0.8")]))
    let back = try ModelONNX.load(path: tmp.file("m.onnx"), threads: 1)
    #expect(back.model.config == m.config && !back.inferred && back.ignored.isEmpty)
    #expect(paramBytes(back.model) == paramBytes(m))
    #expect(back.metadata.contains(where: { $0 == ("transport.gamma", "0.8") }))
    // The file holds exactly the official names and shapes, in state-dict order.
    let r = try OnnxReader(path: tmp.file("m.onnx"))
    #expect(r.tensors.map(\.name) == m.table.entries.map(\.name))
    #expect(r.tensors.map(\.dims) == m.table.entries.map { $0.shape.map(Int64.init) })
    #expect((r.numNodes > 0) == graph)
}

@Test func graphUsesOnlyStandardOpsAndNoExtraInitializers() throws {
    let tmp = TempFolder()
    try ModelONNX.export(try randomModel(), to: tmp.file("g.onnx"))
    let r = try OnnxReader(path: tmp.file("g.onnx"))
    let ops = Set(r.nodes().map(\.opType))
    let standard: Set = ["Conv", "Reshape", "Transpose", "Add", "Unsqueeze", "Mul", "Concat", "Cos", "Sin", "Gemm",
                         "Sigmoid", "Gather", "LayerNormalization", "Split", "Squeeze", "MatMul", "Softmax", "Tanh",
                         "Slice", "Identity", "Constant"]
    #expect(ops.isSubset(of: standard), "unexpected ops \(ops.subtracting(standard))")
    #expect(r.tensors.count == SiTParameterTable(tinyConfig).entries.count)
}

@Test func architectureIsInferredFromShapes() throws {
    var c = SiTConfig(depth: 3, hidden: 384, heads: 6, patch: 4, inputSize: 16, inChannels: 2, numClasses: 7,
                      learnSigma: false)
    c.mlpRatio = 2
    let shapes = Dictionary(uniqueKeysWithValues: SiTParameterTable(c).entries.map { ($0.name, $0.shape.map(Int64.init)) })
    var inferred = try ModelONNX.inferConfig(shapes)   // heads 6 from the official table for width 384
    inferred.classDropout = c.classDropout
    #expect(inferred == c)
    #expect(try ModelONNX.inferConfig(shapes, heads: 12).heads == 12)
    // Width 32 is not official: heads must come from the caller.
    let tiny = Dictionary(uniqueKeysWithValues: SiTParameterTable(tinyConfig).entries.map { ($0.name, $0.shape.map(Int64.init)) })
    #expect(throws: MixflowError.self) { try ModelONNX.inferConfig(tiny) }
    #expect(try ModelONNX.inferConfig(tiny, heads: 4) == tinyConfig)
    var broken = tiny
    broken["pos_embed"] = [1, 15, 32]
    #expect(throws: MixflowError.self) { try ModelONNX.inferConfig(broken, heads: 4) }
    broken = tiny
    broken["final_layer.linear.weight"] = [20, 32]
    #expect(throws: MixflowError.self) { try ModelONNX.inferConfig(broken, heads: 4) }
    broken = tiny
    for k in broken.keys where k.hasPrefix("blocks.0.") { broken[k] = nil }
    #expect(throws: MixflowError.self) { try ModelONNX.inferConfig(broken, heads: 4) }
}

@Test func officialNamesAreFoundBehindPrefixes() {
    #expect(ModelONNX.officialName("blocks.10.attn.qkv.weight") == "blocks.10.attn.qkv.weight")
    #expect(ModelONNX.officialName("model.module.final_layer.adaLN_modulation.1.bias") == "final_layer.adaLN_modulation.1.bias")
    #expect(ModelONNX.officialName("net.pos_embed") == "pos_embed")
    #expect(ModelONNX.officialName("ema.projectors.0.2.weight") == "projectors.0.2.weight")
    for bad in ["blocks.01.attn.qkv.weight", "blocks.x.mlp.fc1.bias", "blocks.0.mlp.fc3.weight", "val_26",
                "t_embedder.mlp.1.weight", "pos_embed.weight", "onnx::MatMul_12"] {
        #expect(ModelONNX.officialName(bad) == nil, "\(bad)")
    }
}

@Test func plainStateDictWithPrefixLoadsWithInferredArchitecture() throws {
    let tmp = TempFolder()
    let m = try randomModel()
    var list = tensors(of: m, rename: { "module." + $0 })
    list.append(("module.projectors.0.0.weight", [4, 32], [Float](repeating: 1, count: 128)))
    try writePlain(tmp.file("p.onnx"), list)
    let back = try ModelONNX.load(path: tmp.file("p.onnx"), heads: 4)
    #expect(back.inferred && back.model.config == m.config && paramBytes(back.model) == paramBytes(m))
    #expect(back.ignored == ["module.projectors.0.0.weight"])
    #expect(throws: MixflowError.self) { try ModelONNX.load(path: tmp.file("p.onnx")) }  // no heads for width 32
}

@Test func mismatchesAreListedTogether() throws {
    let tmp = TempFolder()
    var list = tensors(of: try randomModel())
    list.removeAll { $0.0 == "blocks.1.mlp.fc2.bias" }
    list = list.map { $0.0 == "blocks.0.attn.proj.weight" ? ($0.0, [32, 31], [Float](repeating: 0, count: 992)) : $0 }
    list.append(("blocks.0.attn.extra.weight", [2], [1, 2]))
    try writePlain(tmp.file("bad.onnx"), list, metadata: tinyConfig.metadata.map { ($0.key, $0.value) })
    do {
        _ = try ModelONNX.load(path: tmp.file("bad.onnx"))
        Issue.record("loaded a mismatched file")
    } catch MixflowError.format(let m) {
        #expect(m.contains("bad.onnx") && m.contains("missing (1): blocks.1.mlp.fc2.bias"))
        #expect(m.contains("unexpected (1): blocks.0.attn.extra.weight"))
        #expect(m.contains("mis-shaped (1): blocks.0.attn.proj.weight is [32, 31], SiT needs [32, 32]"))
    }
}

@Test func nonFiniteWeightsAndHostileFilesAreRefused() throws {
    let tmp = TempFolder()
    var list = tensors(of: try randomModel())
    list[5].2[2] = .nan
    try writePlain(tmp.file("nan.onnx"), list)
    #expect(throws: MixflowError.self) { try ModelONNX.load(path: tmp.file("nan.onnx"), heads: 4) }
    // A truncated export, and an export whose data file lost its tail.
    try ModelONNX.export(try randomModel(), to: tmp.file("m.onnx"), options: .init(graph: true, externalThreshold: 512))
    let model = readBytes(tmp.file("m.onnx")), data = readBytes(tmp.file("m.onnx.data"))
    writeBytes(tmp.file("cut.onnx"), Array(model.prefix(model.count / 3)))
    #expect(throws: MixflowError.self) { try ModelONNX.load(path: tmp.file("cut.onnx")) }
    writeBytes(tmp.file("m.onnx.data"), Array(data.prefix(data.count - 100)))
    do {
        _ = try ModelONNX.load(path: tmp.file("m.onnx"))
        Issue.record("loaded a model with a short data file")
    } catch MixflowError.format(let m) {
        #expect(m.contains("m.onnx") && m.contains("offset"))
    }
    // Reserved metadata and a bad threshold are refused before anything is written.
    #expect(throws: MixflowError.self) {
        try ModelONNX.export(try randomModel(), to: tmp.file("r.onnx"), options: .init(metadata: [("model.depth", "9")]))
    }
    #expect(throws: MixflowError.self) {
        try ModelONNX.export(try randomModel(), to: tmp.file("r.onnx"), options: .init(externalThreshold: -2))
    }
    #expect(access(tmp.file("r.onnx"), F_OK) != 0)
}

@Test func torchOnnxExportFixtureMatchesTorchOutput() throws {
    // Written by Tests/Fixtures/sit_torch_onnx/make_torch_onnx_fixture.py (torch.onnx.export, dynamo): names
    // carry the prefix "net.", Linear weights on tokens are folded into transposed "val_N" initializers.
    let folder = String(#filePath).split(separator: "/").dropLast(2).joined(separator: "/")
    let dir = "/" + folder + "/Fixtures/sit_torch_onnx/"
    #expect(throws: MixflowError.self) { try ModelONNX.load(path: dir + "sit_torch.onnx") }  // hidden 32: no heads
    let loaded = try ModelONNX.load(path: dir + "sit_torch.onnx", heads: 4, threads: 1)
    let c = loaded.model.config
    #expect(loaded.inferred && c.depth == 2 && c.hidden == 32 && c.patch == 2 && c.inputSize == 8 && c.inChannels == 4
            && c.numClasses == 10 && c.learnSigma)
    #expect(!loaded.ignored.contains(where: { $0.hasPrefix("net.") }))
    let expected = try OnnxReader(path: dir + "expected.onnx")
    let x = try expected.read("x"), t = try expected.read("t"), y = try expected.read("y").map { Int32($0) }
    let ref = try expected.read("out")
    var out = [Float](repeating: 0, count: ref.count)
    try loaded.model.forward(x: x, t: t, y: y, batch: t.count, out: &out)
    let scale = ref.map(abs).max()!
    let err = zip(out, ref).map { abs($0 - $1) }.max()!
    // float32 on both sides, different summation orders: 1e-4 of the output scale.
    #expect(err <= 1e-4 * scale, "max error \(err), scale \(scale)")
}
