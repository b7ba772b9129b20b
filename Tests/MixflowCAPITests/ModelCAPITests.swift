import CMixflow
import Foundation
import Mixflow
import Testing

let modelParamsSize = UInt32(MemoryLayout<mixflow_model_params>.size)

func defaultModelParams() -> mixflow_model_params {
    var p = mixflow_model_params()
    precondition(mixflow_model_default_params(&p, modelParamsSize) == MIXFLOW_OK)
    return p
}

func setArch(_ p: inout mixflow_model_params, _ s: String) {
    withUnsafeMutableBytes(of: &p.arch) { raw in
        for i in 0..<raw.count { raw[i] = 0 }
        for (i, ch) in s.utf8.enumerated() where i < raw.count { raw[i] = ch }
    }
}

/// A tiny custom model: depth 1, hidden 16, 2 heads, patch 2, 4×4×2 inputs, 3 classes.
func tinyModelParams() -> mixflow_model_params {
    var p = defaultModelParams()
    setArch(&p, "")
    p.depth = 1; p.hidden = 16; p.heads = 2; p.patch = 2; p.input_size = 4; p.in_channels = 2; p.num_classes = 3
    return p
}

func makeModel(_ p: mixflow_model_params) -> UnsafeMutablePointer<mixflow_model>? {
    var p = p
    var h: UnsafeMutablePointer<mixflow_model>?
    return mixflow_model_create(&p, &h) == MIXFLOW_OK ? h : nil
}

@Test func modelDefaultParamsAreTheOfficialSiTXL2() {
    let p = defaultModelParams()
    #expect(p.struct_size == 104 && p.input_size == 32 && p.in_channels == 4 && p.num_classes == 1000)
    #expect(p.learn_sigma == 1 && p.class_dropout == 0.1 && p.seed == 0 && p.num_threads == 0 && p.depth == 0)
    let arch = withUnsafeBytes(of: p.arch) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    #expect(arch == "SiT-XL/2")
    var q = mixflow_model_params()
    #expect(mixflow_model_default_params(nil, modelParamsSize) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_default_params: out must not be NULL")
    #expect(mixflow_model_default_params(&q, 8) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("struct_size must be between 88 and 104, got 8"))
    #expect(mixflow_model_default_params(&q, 112) == MIXFLOW_ERR_ABI_MISMATCH)
}

@Test func modelCreateRejectsBadParams() {
    var h: UnsafeMutablePointer<mixflow_model>? = UnsafeMutablePointer(bitPattern: 0x1234)
    #expect(mixflow_model_create(nil, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(h == nil && lastError() == "mixflow_model_create: params must not be NULL")
    var p = tinyModelParams()
    #expect(mixflow_model_create(&p, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_create: out must not be NULL")
    let cases: [(String, (inout mixflow_model_params) -> Void)] = [
        ("params->arch must be one of SiT-{S,B,L,XL}/{2,4,8}, got \"SiT-M/2\"", { setArch(&$0, "SiT-M/2"); $0.depth = 0; $0.hidden = 0; $0.heads = 0; $0.patch = 0 }),
        ("params->depth, hidden, heads and patch must be 0 when params->arch is set (got 1, 16, 2, 2 with arch \"SiT-S/2\")", { setArch(&$0, "SiT-S/2") }),
        ("params->arch must be NUL-terminated within 32 bytes", { p in withUnsafeMutableBytes(of: &p.arch) { for i in 0..<$0.count { $0[i] = 65 } } }),
        ("params->hidden must be a multiple of heads, got hidden 16 and heads 3", { $0.heads = 3 }),
        ("params->depth must be in [1, 1024], got 0", { $0.depth = 0 }),
        ("params->patch must be >= 0, got -2", { $0.patch = -2 }),
        ("params->input_size must be a multiple of patch, got input_size 5 and patch 2", { $0.input_size = 5 }),
        ("params->num_classes must be in [1, 16777216], got 0", { $0.num_classes = 0 }),
        ("params->learn_sigma must be 0 or 1, got 2", { $0.learn_sigma = 2 }),
        ("params->class_dropout must be in [0, 1), got nan", { $0.class_dropout = .nan }),
        ("params->class_dropout must be in [0, 1), got 1.0", { $0.class_dropout = 1 }),
        ("params->num_threads must be >= 0 (0 = all cores), got -1", { $0.num_threads = -1 }),
    ]
    for (message, edit) in cases {
        p = tinyModelParams()
        edit(&p)
        #expect(mixflow_model_create(&p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError() == "mixflow_model_create: " + message)
        #expect(h == nil)
    }
    p = tinyModelParams()
    p.struct_size = 4096
    #expect(mixflow_model_create(&p, &h) == MIXFLOW_ERR_ABI_MISMATCH)
    p = tinyModelParams()
    #expect(mixflow_model_create(&p, &h) == MIXFLOW_OK && h != nil)
    var back = mixflow_model_params()
    #expect(mixflow_model_get_params(h, &back, modelParamsSize) == MIXFLOW_OK)
    #expect(back.depth == 1 && back.hidden == 16 && back.input_size == 4 && back.num_classes == 3)
    mixflow_model_free(h)
}

@Test func tensorInfoListsTheStateDictAndTensorsRoundTrip() {
    let m = makeModel(tinyModelParams())!
    defer { mixflow_model_free(m) }
    #expect(mixflow_model_num_tensors(m) == 8 + 10 + 4)
    #expect(mixflow_model_num_tensors(nil) == -1 && mixflow_model_num_params(nil) == -1)
    var name: UnsafePointer<CChar>?
    var shape = [Int64](repeating: 0, count: Int(MIXFLOW_MODEL_MAX_NDIM))
    var ndim: Int32 = 0, trainable: Int32 = -1
    var total: Int64 = 0
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, &trainable) == MIXFLOW_OK)
        total += shape[0..<Int(ndim)].reduce(1, *)
        if i == 0 { #expect(String(cString: name!) == "pos_embed" && trainable == 0 && shape[0..<3] == [1, 4, 16]) }
        if i == 1 { #expect(String(cString: name!) == "x_embedder.proj.weight" && ndim == 4 && shape == [16, 2, 2, 2]) }
    }
    #expect(total == mixflow_model_num_params(m))
    #expect(mixflow_model_tensor_info(m, 22, &name, &shape, &ndim, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_tensor_info: index must be in [0, 22), got 22")
    #expect(mixflow_model_tensor_info(m, -1, &name, &shape, &ndim, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_tensor_info(m, 0, nil, &shape, &ndim, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_tensor_info: out_name must not be NULL")

    var w = (0..<(48 * 16)).map { Float($0) / 100 }
    var qkvShape: [Int64] = [48, 16]
    #expect(mixflow_model_set_tensor(m, "blocks.0.attn.qkv.weight", &w, &qkvShape, 2) == MIXFLOW_OK)
    var back = [Float](repeating: 0, count: w.count)
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", &qkvShape, 2, &back) == MIXFLOW_OK)
    #expect(back == w)
    var wrong: [Int64] = [48, 15]
    #expect(mixflow_model_set_tensor(m, "blocks.0.attn.qkv.weight", &w, &wrong, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_set_tensor: shape must be [48, 16] for \"blocks.0.attn.qkv.weight\", got [48, 15]")
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", &qkvShape, 1, &back) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", &qkvShape, 5, &back) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_get_tensor: ndim must be in [1, 4], got 5")
    #expect(mixflow_model_get_tensor(m, "blocks.9.attn.qkv.weight", &qkvShape, 2, &back) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_get_tensor: name \"blocks.9.attn.qkv.weight\" is not a tensor of this model (see mixflow_model_tensor_info)")
    #expect(mixflow_model_get_tensor(m, nil, &qkvShape, 2, &back) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", nil, 2, &back) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", &qkvShape, 2, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_get_grad(m, "blocks.0.attn.qkv.weight", &qkvShape, 2, &back) == MIXFLOW_OK)
    #expect(back.allSatisfy { $0 == 0 })
    w[5] = .infinity
    #expect(mixflow_model_set_tensor(m, "blocks.0.attn.qkv.weight", &w, &qkvShape, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_set_tensor: data[5] is inf; every element must be finite")
    #expect(mixflow_model_get_tensor(m, "blocks.0.attn.qkv.weight", &qkvShape, 2, &back) == MIXFLOW_OK)
    #expect(back[5] == 0.05)   // unchanged by the rejected call
}

@Test func modelForwardAndGradientsValidateEveryArgument() {
    let m = makeModel(tinyModelParams())!
    defer { mixflow_model_free(m) }
    let n = 2 * 2 * 4 * 4
    var x = [Float](repeating: 0.5, count: n), target = x, out = x, dx = x
    var t: [Float] = [0.2, 0.8]
    var y: [Int32] = [0, 3]
    var loss: Float = -1
    #expect(mixflow_model_forward(m, &x, &t, &y, 2, &out) == MIXFLOW_OK && lastError() == "")
    #expect(mixflow_model_forward(nil, &x, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: model must not be NULL")
    #expect(mixflow_model_forward(m, nil, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: x must not be NULL")
    #expect(mixflow_model_forward(m, &x, nil, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_forward(m, &x, &t, nil, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_forward(m, &x, &t, &y, 2, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: out must not be NULL")
    #expect(mixflow_model_forward(m, &x, &t, &y, 0, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: batch must be > 0, got 0")
    #expect(mixflow_model_forward(m, &x, &t, &y, -3, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_forward(m, &x, &t, &y, Int64.max / 4, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("overflows"))
    y[1] = 4
    #expect(mixflow_model_forward(m, &x, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: y[1] must be in [0, 3] (3 = null class), got 4")
    y[1] = -1
    #expect(mixflow_model_forward(m, &x, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    y[1] = 3
    x[9] = .nan
    #expect(mixflow_model_forward(m, &x, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_forward: x[9] is nan; every element must be finite")
    x[9] = 0.5
    t[0] = -.infinity
    #expect(mixflow_model_gradients(m, &x, &t, &y, &target, 2, &loss, &dx) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_gradients: t[0] is -inf; every element must be finite")
    t[0] = 0.2
    #expect(mixflow_model_gradients(m, &x, &t, &y, nil, 2, &loss, &dx) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_gradients: target must not be NULL")
    target[0] = .nan
    #expect(mixflow_model_gradients(m, &x, &t, &y, &target, 2, &loss, &dx) == MIXFLOW_ERR_INVALID_ARGUMENT)
    target[0] = 0.5
    #expect(mixflow_model_gradients(m, &x, &t, &y, &target, 2, nil, nil) == MIXFLOW_OK)
    #expect(mixflow_model_gradients(m, &x, &t, &y, &target, 2, &loss, &dx) == MIXFLOW_OK)
    // Official init: the final layer is zero, so the output is 0 and L = mean(target²) = 0.25.
    #expect(loss == 0.25)

    let bogus = UnsafeMutablePointer<UInt64>.allocate(capacity: 4)
    bogus.initialize(repeating: 0xDEAD_BEEF, count: 4)
    defer { bogus.deallocate() }
    let fake = UnsafeMutableRawPointer(bogus).assumingMemoryBound(to: mixflow_model.self)
    #expect(mixflow_model_forward(fake, &x, &t, &y, 2, &out) == MIXFLOW_ERR_INVALID_HANDLE)
    #expect(lastError() == "mixflow_model_forward: model is not a live Model handle")
    mixflow_model_free(fake)   // ignored
    let tr = makeTransport()!
    defer { mixflow_transport_free(tr) }
    #expect(mixflow_model_num_params(UnsafeMutableRawPointer(tr).assumingMemoryBound(to: mixflow_model.self)) == -1)
}

/// A Tests/Fixtures/<folder> fixture (format: Tests/Fixtures/fixture_common.py): its integer config values, and its
/// tensors as raw float32/int32 with their shapes.
func loadFixture(_ name: String, folder: String = "sit") throws
    -> (config: [String: Int], tensors: [String: Data], shapes: [String: [Int64]]) {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/" + folder)
    let text = try String(contentsOf: dir.appendingPathComponent(name + ".txt"), encoding: .utf8)
    let data = try Data(contentsOf: dir.appendingPathComponent(name + ".bin"))
    var config: [String: Int] = [:], tensors: [String: Data] = [:], shapes: [String: [Int64]] = [:], offset = 0
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: " ").map(String.init)
        if f[0] == "config" {
            for kv in f.dropFirst() { let p = kv.split(separator: "="); config[String(p[0])] = Int(p[1]) }
        } else {
            let bytes = 4 * Int(f[2])!
            tensors[f[0]] = data.subdata(in: offset..<(offset + bytes))
            shapes[f[0]] = f.dropFirst(3).map { Int64($0)! }
            offset += bytes
        }
    }
    return (config, tensors, shapes)
}

func floats(_ d: Data) -> [Float] { d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }

/// Max |a − b| / max |b|.
func relErr(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! / b.map(abs).max()! }

/// Sets every tensor of `m` from the fixture's `param:<name>`, by name through the C API.
func setFixtureWeights(_ m: UnsafeMutablePointer<mixflow_model>?, _ ts: [String: Data]) throws {
    var name: UnsafePointer<CChar>?, shape = [Int64](repeating: 0, count: 4), ndim: Int32 = 0
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, nil) == MIXFLOW_OK)
        var w = floats(try #require(ts["param:" + String(cString: name!)]))
        #expect(mixflow_model_set_tensor(m, name, &w, &shape, ndim) == MIXFLOW_OK)
    }
}

/// End to end through the C layer against a fixture of L = mean((out − target)²): weights in by name, L, dL/dx,
/// every trainable tensor's gradient and the forward output out.
func expectCAPIMatchesDenoisingFixture(_ m: UnsafeMutablePointer<mixflow_model>?, _ ts: [String: Data]) throws {
    try setFixtureWeights(m, ts)
    var x = floats(ts["x"]!), t = floats(ts["t"]!), target = floats(ts["target"]!)
    var y = ts["y"]!.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
    var dx = [Float](repeating: 0, count: x.count), loss: Float = 0
    #expect(mixflow_model_gradients(m, &x, &t, &y, &target, Int64(y.count), &loss, &dx) == MIXFLOW_OK)
    let refLoss = floats(ts["loss"]!)[0]
    #expect(abs(loss - refLoss) <= 1e-5 * refLoss)
    #expect(relErr(dx, floats(ts["grad:x"]!)) <= 1e-4)
    var name: UnsafePointer<CChar>?, shape = [Int64](repeating: 0, count: 4), ndim: Int32 = 0, trainable: Int32 = 0
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, &trainable) == MIXFLOW_OK)
        guard trainable == 1 else { continue }
        let ref = floats(try #require(ts["grad:" + String(cString: name!)]))
        var g = [Float](repeating: 0, count: ref.count)
        #expect(mixflow_model_get_grad(m, name, &shape, ndim, &g) == MIXFLOW_OK)
        #expect(relErr(g, ref) <= 1e-4, "\(String(cString: name!))")
    }
    var out = [Float](repeating: 0, count: x.count)
    #expect(mixflow_model_forward(m, &x, &t, &y, Int64(y.count), &out) == MIXFLOW_OK)
    #expect(relErr(out, floats(ts["out"]!)) <= 1e-4)
}

@Test func gradientsThroughTheCAPIMatchTheTorchReference() throws {
    let (cfg, ts, _) = try loadFixture("tiny_sigma")
    var p = defaultModelParams()
    setArch(&p, "")
    p.depth = Int32(cfg["depth"]!); p.hidden = Int32(cfg["hidden"]!); p.heads = Int32(cfg["heads"]!)
    p.patch = Int32(cfg["patch"]!); p.input_size = Int32(cfg["input"]!); p.in_channels = Int32(cfg["channels"]!)
    p.num_classes = Int32(cfg["classes"]!); p.learn_sigma = Int32(cfg["learn_sigma"]!)
    let m = try #require(makeModel(p))
    defer { mixflow_model_free(m) }
    try expectCAPIMatchesDenoisingFixture(m, ts)
}
