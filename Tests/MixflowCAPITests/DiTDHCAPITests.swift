import CMixflow
import Foundation
import Mixflow
import Testing

// DiT^DH through the C API: creation by arch string (named and custom), the appended params fields and the
// old struct size, the torch fixture end to end by tensor name, and a MixFlow-RAE trainer with resume.

func ditdhParams(_ cfg: [String: Int]) -> mixflow_model_params {
    var p = defaultModelParams()
    setArch(&p, "DiTDH")
    p.depth = Int32(cfg["depth"]!); p.hidden = Int32(cfg["hidden"]!); p.heads = Int32(cfg["heads"]!)
    p.head_depth = Int32(cfg["head_depth"]!); p.head_hidden = Int32(cfg["head_hidden"]!); p.head_heads = Int32(cfg["head_heads"]!)
    p.input_size = Int32(cfg["input"]!); p.in_channels = Int32(cfg["channels"]!); p.num_classes = Int32(cfg["classes"]!)
    return p
}

let tinyDiTDHShape = ["depth": 1, "hidden": 16, "heads": 2, "head_depth": 1, "head_hidden": 24, "head_heads": 2,
                      "input": 4, "channels": 4, "classes": 3]

@Test func ditdhParamsAreValidatedWithMessages() {
    let cases: [(String, (inout mixflow_model_params) -> Void)] = [
        ("params->arch must be DiTDH-XL or DiTDH-S, got \"DiTDH-B\"", {
            setArch(&$0, "DiTDH-B"); $0.depth = 0; $0.hidden = 0; $0.heads = 0; $0.head_depth = 0; $0.head_hidden = 0; $0.head_heads = 0 }),
        ("params->depth, hidden, heads, patch and head_* must be 0 when params->arch names a model (arch \"DiTDH-S\")", { setArch(&$0, "DiTDH-S") }),
        ("params->patch must be 0 or 1 for DiT^DH (patch size 1), got 2", { $0.patch = 2 }),
        ("params->head_hidden / head_heads must be a multiple of 4 (2-D RoPE), got head_hidden 24 and head_heads 4", { $0.head_heads = 4 }),
        ("params->head_depth must be in [1, 1024], got 0", { $0.head_depth = 0 }),
        ("params->head_heads must be >= 0, got -1", { $0.head_heads = -1 }),
        ("params->reserved0 must be 0, got 7", { $0.reserved0 = 7 }),
        ("params->head_depth, head_hidden and head_heads are for DiT^DH and must be 0 for a SiT (got 1, 24, 2)", { setArch(&$0, "") }),
    ]
    for (message, edit) in cases {
        var p = ditdhParams(tinyDiTDHShape)
        edit(&p)
        var h: UnsafeMutablePointer<mixflow_model>?
        #expect(mixflow_model_create(&p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT && h == nil)
        #expect(lastError() == "mixflow_model_create: " + message)
    }
}

@Test func theFirstReleasedParamsSizeStillCreatesASiT() throws {
    // A caller built against the 88-byte struct: the appended DiT^DH fields take their defaults (0), and
    // whatever lies beyond its struct is never read.
    var p = tinyModelParams()
    p.struct_size = 88
    p.head_depth = 99; p.reserved0 = 5   // garbage past the old caller's struct
    var h: UnsafeMutablePointer<mixflow_model>?
    #expect(mixflow_model_create(&p, &h) == MIXFLOW_OK)
    defer { mixflow_model_free(h) }
    #expect(mixflow_model_num_tensors(h) == 8 + 10 + 4)
    var q = mixflow_model_params()
    q.head_depth = 42
    #expect(mixflow_model_get_params(h, &q, 88) == MIXFLOW_OK && q.struct_size == 88 && q.head_depth == 42)
}

@Test func customDiTDHRoundTripsItsParamsAndListsTheStateDict() throws {
    var p = ditdhParams(tinyDiTDHShape)
    p.seed = 7
    let m = try #require(makeModel(p))
    defer { mixflow_model_free(m) }
    var q = mixflow_model_params()
    #expect(mixflow_model_get_params(m, &q, modelParamsSize) == MIXFLOW_OK)
    #expect(q.head_depth == 1 && q.head_hidden == 24 && q.head_heads == 2 && q.depth == 1 && q.patch == 1 && q.seed == 7)
    #expect(mixflow_model_num_tensors(m) == 22 + 2 * 12)
    var name: UnsafePointer<CChar>?, shape = [Int64](repeating: 0, count: 4), ndim: Int32 = 0, trainable: Int32 = 0
    var fixed: [String] = []
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, &trainable) == MIXFLOW_OK)
        if trainable == 0 { fixed.append(String(cString: name!)) }
    }
    #expect(fixed == ["pos_embed", "t_embedder.W", "enc_feat_rope.freqs_cos", "enc_feat_rope.freqs_sin",
                      "dec_feat_rope.freqs_cos", "dec_feat_rope.freqs_sin"])
    var s: [Int64] = [4, 8]
    var rope = [Float](repeating: 0, count: 32)
    #expect(mixflow_model_get_tensor(m, "enc_feat_rope.freqs_cos", &s, 2, &rope) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_get_tensor: shape must be [16, 8] for \"enc_feat_rope.freqs_cos\", got [4, 8]")
}

@Test(arguments: ["tiny", "tiny_identity"])
func ditdhGradientsThroughTheCAPIMatchTheTorchReference(_ fixture: String) throws {
    let (cfg, ts, _) = try loadFixture(fixture, folder: "ditdh")
    let m = try #require(makeModel(ditdhParams(cfg)))
    defer { mixflow_model_free(m) }
    try expectCAPIMatchesDenoisingFixture(m, ts)
}

@Test func ditdhTrainsWithTheRAEPresetsAndResumesThroughTheCAPI() throws {
    let m = try #require(makeModel(ditdhParams(tinyDiTDHShape)))
    defer { mixflow_model_free(m) }
    let dim = 4 * 4 * 4
    let (tr, trainer) = presetTrainer(m, "rae", dim: Int64(dim), decay: (10, 100))
    defer { mixflow_trainer_free(trainer); mixflow_transport_free(tr) }
    #expect(trainer != nil)
    let b = 4
    var x1 = (0..<(b * dim)).map { Float(($0 * 37) % 19) / 9 - 1 }, y: [Int32] = [0, 1, 2, 4]
    var loss: Float = 0
    #expect(mixflow_trainer_step(trainer, &x1, &y, Int64(b), 0, &loss) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_trainer_step: y[3] must be in [0, 3] (3 = null class), got 4")
    y[3] = 3   // the null class is a valid label
    for _ in 0..<2 { #expect(mixflow_trainer_step(trainer, &x1, &y, Int64(b), 0, &loss) == MIXFLOW_OK && loss.isFinite) }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ditdh-capi-\(getpid()).mixflow").path
    defer { unlink(path) }
    #expect(mixflow_trainer_save(trainer, path) == MIXFLOW_OK)
    var resumed: UnsafeMutablePointer<mixflow_trainer>?
    #expect(mixflow_trainer_resume(path, 1, &resumed) == MIXFLOW_OK)
    defer { mixflow_trainer_free(resumed) }
    var l1: Float = 0, l2: Float = 0
    for _ in 0..<2 {
        #expect(mixflow_trainer_step(trainer, &x1, &y, Int64(b), 0, &l1) == MIXFLOW_OK)
        #expect(mixflow_trainer_step(resumed, &x1, &y, Int64(b), 0, &l2) == MIXFLOW_OK)
        #expect(l1 == l2)
    }
    // Both trainers' models (and EMA copies) are bit-identical, read by name through model handles.
    var a: UnsafeMutablePointer<mixflow_model>?, e: UnsafeMutablePointer<mixflow_model>?
    #expect(mixflow_trainer_get_model(resumed, 0, &a) == MIXFLOW_OK && mixflow_trainer_get_model(resumed, 1, &e) == MIXFLOW_OK)
    defer { mixflow_model_free(a); mixflow_model_free(e) }
    var q = mixflow_model_params()
    #expect(mixflow_model_get_params(a, &q, modelParamsSize) == MIXFLOW_OK && q.head_hidden == 24)
    var shape: [Int64] = [24 * 3, 24], w1 = [Float](repeating: 0, count: 24 * 72), w2 = w1, we = w1
    #expect(mixflow_model_get_tensor(m, "blocks.1.attn.qkv.weight", &shape, 2, &w1) == MIXFLOW_OK)
    #expect(mixflow_model_get_tensor(a, "blocks.1.attn.qkv.weight", &shape, 2, &w2) == MIXFLOW_OK)
    #expect(mixflow_model_get_tensor(e, "blocks.1.attn.qkv.weight", &shape, 2, &we) == MIXFLOW_OK)
    #expect(w1 == w2 && we != w2)
}

@Test(arguments: [Int32(1), Int32(0)])
func ditdhSavesWithOrWithoutTheGraphAndLoadsBackThroughTheCAPI(graph: Int32) throws {
    var p = ditdhParams(tinyDiTDHShape)
    p.seed = 11
    let m = try #require(makeModel(p))
    defer { mixflow_model_free(m) }
    let dir = NSTemporaryDirectory() + "mixflow-ditdh-capi-\(getpid())-\(graph)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/dh.onnx"
    var s = mixflow_model_save_params()
    _ = mixflow_model_save_default_params(&s, UInt32(MemoryLayout<mixflow_model_save_params>.size))
    #expect(s.graph == 1)  // the default is the runnable graph, for a DiT^DH too
    s.graph = 2
    #expect(mixflow_model_save_onnx(m, path, &s) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_save_onnx: params->graph must be 0 or 1, got 2")
    #expect(!FileManager.default.fileExists(atPath: path))
    s.graph = graph; s.external_threshold = 256; s.step = 3
    #expect(mixflow_model_save_onnx(m, path, &s) == MIXFLOW_OK, "\(lastError())")
    var loaded: UnsafeMutablePointer<mixflow_model>?
    #expect(mixflow_model_load_onnx(path, nil, &loaded) == MIXFLOW_OK, "\(lastError())")
    let back = try #require(loaded)
    defer { mixflow_model_free(back) }
    #expect(mixflow_model_num_tensors(back) == mixflow_model_num_tensors(m))
    #expect(mixflow_model_num_params(back) == mixflow_model_num_params(m))
    var q = mixflow_model_params()
    #expect(mixflow_model_get_params(back, &q, modelParamsSize) == MIXFLOW_OK)
    #expect(q.depth == 1 && q.hidden == 16 && q.heads == 2 && q.head_depth == 1 && q.head_hidden == 24 && q.head_heads == 2)
    #expect(q.input_size == 4 && q.in_channels == 4 && q.num_classes == 3)
    var name: UnsafePointer<CChar>?, shape = [Int64](repeating: 0, count: 4), ndim: Int32 = 0, trainable: Int32 = 0
    for i in 0..<mixflow_model_num_tensors(m) {
        #expect(mixflow_model_tensor_info(m, i, &name, &shape, &ndim, &trainable) == MIXFLOW_OK)
        let n = shape[..<Int(ndim)].reduce(1, *)
        var a = [Float](repeating: 0, count: Int(n)), b = a
        #expect(mixflow_model_get_tensor(m, name, shape, ndim, &a) == MIXFLOW_OK)
        #expect(mixflow_model_get_tensor(back, name, shape, ndim, &b) == MIXFLOW_OK)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "\(String(cString: name!))")
    }
    // The file says which it is; a graph's nodes leave no ignored initializers behind.
    var len: UInt = 0
    #expect(mixflow_model_metadata(back, nil, 0, &len) == MIXFLOW_OK)
    var buf = [CChar](repeating: 0, count: Int(len) + 1)
    #expect(mixflow_model_metadata(back, &buf, UInt(buf.count), &len) == MIXFLOW_OK)
    let meta = String(cString: buf)
    #expect(meta.contains("mixflow.format=" + (graph == 1 ? "ditdh-forward" : "ditdh-checkpoint") + "\n"))
    #expect(meta.contains("mixflow.step=3\n") && meta.hasPrefix("model.arch=DiTDH\n"))
    #expect(mixflow_model_ignored_tensors(back, nil, 0, &len) == MIXFLOW_OK && len == 0)
    try FileManager.default.removeItem(atPath: dir)
}

@Test func trainerParamsCanBeReadAndReplacedWithValidation() throws {
    let m = try #require(makeModel(ditdhParams(tinyDiTDHShape)))
    defer { mixflow_model_free(m) }
    let size = UInt32(MemoryLayout<mixflow_trainer_params>.size)
    let (tr, trainer) = presetTrainer(m, "rae", dim: 64, decay: (10, 100))
    defer { mixflow_trainer_free(trainer); mixflow_transport_free(tr) }
    #expect(trainer != nil)

    var got = mixflow_trainer_params()
    #expect(mixflow_trainer_get_params(nil, &got, size) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_trainer_get_params: trainer must not be NULL")
    #expect(mixflow_trainer_get_params(trainer, nil, size) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_trainer_get_params(trainer, &got, 4) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_trainer_get_params(trainer, &got, size) == MIXFLOW_OK)
    #expect(got.decay_start == 10 && got.decay_end == 100 && got.beta2 == 0.95 && got.max_grad_norm == 1)

    var edit = got
    edit.final_lr = 0; edit.decay_start = 20; edit.decay_end = 50; edit.ema_decay = 0.999
    #expect(mixflow_trainer_set_params(trainer, &edit) == MIXFLOW_OK)
    #expect(mixflow_trainer_get_params(trainer, &got, size) == MIXFLOW_OK)
    #expect(got.final_lr == 0 && got.decay_start == 20 && got.decay_end == 50 && got.ema_decay == 0.999)

    let bad: [(String, (inout mixflow_trainer_params) -> Void)] = [
        ("params->beta1 must be finite, got nan", { $0.beta1 = .nan }),
        ("params->decay_start/decay_end/warmup must satisfy 0 <= decay_start < decay_end and warmup >= 0, got 9, 3, 0",
         { $0.decay_start = 9; $0.decay_end = 3 }),
        ("ema_decay cannot change between 0 (no EMA) and > 0 on an existing trainer, got 0.0 for a trainer with ema_decay",
         { $0.ema_decay = 0 }),
    ]
    for (message, change) in bad {
        var p = got
        change(&p)
        #expect(mixflow_trainer_set_params(trainer, &p) == MIXFLOW_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains(message))
        var after = mixflow_trainer_params()
        #expect(mixflow_trainer_get_params(trainer, &after, size) == MIXFLOW_OK)
        #expect(after.decay_start == 20 && after.ema_decay == 0.999)     // nothing changed
    }
    #expect(mixflow_trainer_set_params(trainer, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_trainer_set_params: params must not be NULL")
    var tooNew = got
    tooNew.struct_size = 4096
    #expect(mixflow_trainer_set_params(trainer, &tooNew) == MIXFLOW_ERR_ABI_MISMATCH)
}
