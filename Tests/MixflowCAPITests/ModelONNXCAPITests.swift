#if canImport(Glibc)
import Glibc
#endif
import CMixflow
import Mixflow
import Testing

// mixflow_model_{load,save}_onnx and friends: statuses, messages, params structs, and a save -> load round
// trip through the C API (onnxruntime and torch parity are in bindings/python/tests/test_model_onnx.py).

private func onnxTempDir() -> String {
    var template = Array("/tmp/mixflow-capi-onnx-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

private let loadSize = UInt32(MemoryLayout<mixflow_model_load_params>.size)
private let saveSize = UInt32(MemoryLayout<mixflow_model_save_params>.size)

private func text(_ m: UnsafeMutablePointer<mixflow_model>?,
                  _ fn: (UnsafeMutablePointer<mixflow_model>?, UnsafeMutablePointer<CChar>?, UInt, UnsafeMutablePointer<UInt>?) -> mixflow_status) -> String? {
    var n: UInt = 0
    guard fn(m, nil, 0, &n) == MIXFLOW_OK else { return nil }
    var buf = [CChar](repeating: 0, count: Int(n) + 1)
    guard fn(m, &buf, UInt(buf.count), &n) == MIXFLOW_OK else { return nil }
    return String(cString: buf)
}

@Test func modelOnnxParamsHaveDocumentedDefaults() {
    var l = mixflow_model_load_params(), s = mixflow_model_save_params()
    #expect(mixflow_model_load_default_params(&l, loadSize) == MIXFLOW_OK)
    #expect(l.struct_size == 12 && l.heads == 0 && l.num_threads == 0)
    #expect(mixflow_model_save_default_params(&s, saveSize) == MIXFLOW_OK)
    #expect(s.struct_size == 56 && s.graph == 1 && s.external_threshold == 1 << 20 && s.step == -1)
    #expect(s.transport == nil && s.metadata_keys == nil && s.metadata_values == nil && s.num_metadata == 0)
    #expect(mixflow_model_load_default_params(nil, loadSize) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_load_default_params: out must not be NULL")
    #expect(mixflow_model_save_default_params(&s, 8) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_model_save_default_params(&s, saveSize + 8) == MIXFLOW_ERR_ABI_MISMATCH)
}

@Test func modelSaveThenLoadRoundTripsThroughTheCAPI() throws {
    let dir = onnxTempDir()
    let m = makeModel(tinyModelParams())
    defer { mixflow_model_free(m) }
    let tr = makeTransport { $0.gamma = 0.5 }
    defer { mixflow_transport_free(tr) }
    var s = mixflow_model_save_params()
    _ = mixflow_model_save_default_params(&s, saveSize)
    s.graph = 0; s.external_threshold = 64; s.step = 42; s.transport = UnsafePointer(tr)
    let keys = [strdup("run.name"), strdup("run.seed")], values = [strdup("tiny"), strdup("7")]
    defer { (keys + values).forEach { free($0) } }
    var k = keys.map { UnsafePointer($0) }, v = values.map { UnsafePointer($0) }
    k.withUnsafeMutableBufferPointer { kp in
        v.withUnsafeMutableBufferPointer { vp in
            s.metadata_keys = UnsafePointer(kp.baseAddress); s.metadata_values = UnsafePointer(vp.baseAddress); s.num_metadata = 2
            #expect(mixflow_model_save_onnx(m, dir + "/m.onnx", &s) == MIXFLOW_OK)
        }
    }
    var back: UnsafeMutablePointer<mixflow_model>?
    #expect(mixflow_model_load_onnx(dir + "/m.onnx", nil, &back) == MIXFLOW_OK)
    defer { mixflow_model_free(back) }
    #expect(mixflow_model_num_params(back) == mixflow_model_num_params(m))
    var p = mixflow_model_params()
    #expect(mixflow_model_get_params(back, &p, UInt32(MemoryLayout<mixflow_model_params>.size)) == MIXFLOW_OK)
    #expect(p.depth == 1 && p.hidden == 16 && p.heads == 2 && p.patch == 2 && p.input_size == 4 && p.in_channels == 2)
    for i in 0..<mixflow_model_num_tensors(m) {
        var name: UnsafePointer<CChar>?
        var shape = [Int64](repeating: 0, count: 4)
        var ndim: Int32 = 0
        _ = mixflow_model_tensor_info(m, i, &name, &shape, &ndim, nil)
        let n = Int(shape.prefix(Int(ndim)).reduce(1, *))
        var a = [Float](repeating: 0, count: n), b = [Float](repeating: 1, count: n)
        _ = mixflow_model_get_tensor(m, name, shape, ndim, &a)
        _ = mixflow_model_get_tensor(back, name, shape, ndim, &b)
        #expect(a.withUnsafeBytes { Array($0) } == b.withUnsafeBytes { Array($0) }, "\(String(cString: name!))")
    }
    let meta = try #require(text(back, mixflow_model_metadata))
    #expect(meta.contains("model.heads=2\n") && meta.contains("mixflow.step=42\n") && meta.contains("transport.gamma=0.5\n"))
    #expect(meta.contains("run.name=tiny\nrun.seed=7\n") && meta.contains("mixflow.format=sit-checkpoint\n"))
    #expect(text(back, mixflow_model_ignored_tensors) == "")
    #expect(text(m, mixflow_model_metadata)?.hasPrefix("model.arch=SiT\nmodel.depth=1\n") == true)
    var n: UInt = 0
    var small = [CChar](repeating: 0, count: 4)
    #expect(mixflow_model_metadata(back, &small, 4, &n) == MIXFLOW_ERR_INVALID_ARGUMENT && n > 4)
    #expect(mixflow_model_metadata(back, nil, 0, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
}

@Test func modelSaveOnnxRejectsBadArguments() {
    let dir = onnxTempDir()
    let m = makeModel(tinyModelParams())
    defer { mixflow_model_free(m) }
    #expect(mixflow_model_save_onnx(nil, dir + "/a.onnx", nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_save_onnx: model must not be NULL")
    #expect(mixflow_model_save_onnx(m, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_save_onnx: path must not be NULL")
    let tr = makeTransport()
    defer { mixflow_transport_free(tr) }
    let key = strdup("model.depth")!, value = strdup("3")!
    defer { free(key); free(value) }
    var keys: [UnsafePointer<CChar>?] = [UnsafePointer(key)], values: [UnsafePointer<CChar>?] = [UnsafePointer(value)]
    let cases: [(mixflow_status, String, (inout mixflow_model_save_params) -> Void)] = [
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->graph must be 0 or 1, got 2", { $0.graph = 2 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->external_threshold must be >= -1 (-1 = all inline), got -2", { $0.external_threshold = -2 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->step must be >= -1 (-1 = not recorded), got -5", { $0.step = -5 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->num_metadata must be in [0, 4096], got -1", { $0.num_metadata = -1 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->num_metadata must be in [0, 4096], got 5000", { $0.num_metadata = 5000 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->metadata_keys must not be NULL", { $0.num_metadata = 1 }),
        (MIXFLOW_ERR_INVALID_HANDLE, "params->transport is not a live Transport handle",
         { $0.transport = UnsafePointer(OpaquePointer(m)) }),
        (MIXFLOW_ERR_ABI_MISMATCH, "params->struct_size is 4096", { $0.struct_size = 4096 }),
        (MIXFLOW_ERR_INVALID_ARGUMENT, "params->struct_size must be between 56", { $0.struct_size = 12 }),
    ]
    for (status, message, edit) in cases {
        var s = mixflow_model_save_params()
        _ = mixflow_model_save_default_params(&s, saveSize)
        edit(&s)
        #expect(mixflow_model_save_onnx(m, dir + "/a.onnx", &s) == status)
        #expect(lastError().hasPrefix("mixflow_model_save_onnx: " + message), "\(lastError())")
    }
    keys.withUnsafeMutableBufferPointer { kp in
        values.withUnsafeMutableBufferPointer { vp in
            var s = mixflow_model_save_params()
            _ = mixflow_model_save_default_params(&s, saveSize)
            s.metadata_keys = UnsafePointer(kp.baseAddress); s.metadata_values = UnsafePointer(vp.baseAddress); s.num_metadata = 1
            #expect(mixflow_model_save_onnx(m, dir + "/a.onnx", &s) == MIXFLOW_ERR_INVALID_ARGUMENT)
            #expect(lastError().contains("metadata key \"model.depth\" is reserved"))
        }
    }
    #expect(access(dir + "/a.onnx", F_OK) != 0)   // nothing was written by any failed call
    #expect(mixflow_model_save_onnx(m, "/nonexistent-folder/a.onnx", nil) == MIXFLOW_ERR_IO)
}

@Test func modelLoadOnnxRejectsBadArguments() {
    let dir = onnxTempDir()
    var h: UnsafeMutablePointer<mixflow_model>? = UnsafeMutablePointer(bitPattern: 0x1234)
    #expect(mixflow_model_load_onnx(nil, nil, &h) == MIXFLOW_ERR_INVALID_ARGUMENT && h == nil)
    #expect(lastError() == "mixflow_model_load_onnx: path must not be NULL")
    #expect(mixflow_model_load_onnx(dir + "/x.onnx", nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_load_onnx: out must not be NULL")
    #expect(mixflow_model_load_onnx(dir + "/missing.onnx", nil, &h) == MIXFLOW_ERR_IO && h == nil)
    #expect(lastError().contains("missing.onnx"))
    var p = mixflow_model_load_params()
    _ = mixflow_model_load_default_params(&p, loadSize)
    p.heads = -1
    #expect(mixflow_model_load_onnx(dir + "/x.onnx", &p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_model_load_onnx: params->heads must be >= 0 (0 = from the file), got -1")
    p.heads = 0; p.num_threads = -3
    #expect(mixflow_model_load_onnx(dir + "/x.onnx", &p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT)
    p.num_threads = 0; p.struct_size = 999
    #expect(mixflow_model_load_onnx(dir + "/x.onnx", &p, &h) == MIXFLOW_ERR_ABI_MISMATCH)
    // heads that do not divide hidden (16) are refused with the file named
    let m = makeModel(tinyModelParams())
    defer { mixflow_model_free(m) }
    #expect(mixflow_model_save_onnx(m, dir + "/t.onnx", nil) == MIXFLOW_OK)
    _ = mixflow_model_load_default_params(&p, loadSize)
    p.heads = 3
    #expect(mixflow_model_load_onnx(dir + "/t.onnx", &p, &h) == MIXFLOW_ERR_INVALID_ARGUMENT && h == nil)
    #expect(lastError() == "mixflow_model_load_onnx: \(dir)/t.onnx: heads must divide hidden 16, got 3")
    #expect(mixflow_model_metadata(nil, nil, 0, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    var n: UInt = 0
    let tr = makeTransport()
    defer { mixflow_transport_free(tr) }
    #expect(mixflow_model_ignored_tensors(UnsafeMutablePointer(OpaquePointer(tr)), nil, 0, &n) == MIXFLOW_ERR_INVALID_HANDLE)
}
