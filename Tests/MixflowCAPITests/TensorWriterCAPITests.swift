#if canImport(Glibc)
import Glibc
#endif
import CMixflow
import Mixflow
import Testing

// Writer statuses and a write -> load round trip through the C API (pip onnx checks the same files in
// bindings/python/tests/test_tensor_file.py).

private func tempDir() -> String {
    var template = Array("/tmp/mixflow-capi-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

@Test func writerRoundTripsThroughTheCAPI() {
    let dir = tempDir()
    var w: UnsafeMutablePointer<mixflow_tensor_writer>?
    #expect(mixflow_tensor_writer_create(dir + "/m.onnx", 32, &w) == MIXFLOW_OK)
    let weight = (0..<24).map { Float($0) - 11.5 }
    let shape: [Int64] = [4, 6]
    #expect(mixflow_tensor_writer_add(w, "blocks.0.mlp.fc1.weight", weight, shape, 2) == MIXFLOW_OK)
    var scalar: Float = 0.25
    #expect(mixflow_tensor_writer_add(w, "gamma", &scalar, nil, 0) == MIXFLOW_OK)
    #expect(mixflow_tensor_writer_set_metadata(w, "mixflow.step", "4000") == MIXFLOW_OK)
    #expect(mixflow_tensor_writer_finish(w) == MIXFLOW_OK)
    #expect(mixflow_tensor_writer_add(w, "late", &scalar, nil, 0) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().hasSuffix("the writer was already finished or discarded"))
    mixflow_tensor_writer_free(w)

    var f: UnsafeMutablePointer<mixflow_tensor_file>?
    #expect(mixflow_tensor_file_load(dir + "/m.onnx", &f) == MIXFLOW_OK)
    defer { mixflow_tensor_file_free(f) }
    var back = [Float](repeating: 0, count: 24)
    var storage: Int32 = -1
    #expect(mixflow_tensor_file_read(f, "blocks.0.mlp.fc1.weight", &back, 24) == MIXFLOW_OK && back == weight)
    #expect(mixflow_tensor_file_tensor_info(f, 0, nil, nil, nil, 0, nil, &storage) == MIXFLOW_OK)
    #expect(storage == Int32(MIXFLOW_TENSOR_STORAGE_EXTERNAL.rawValue))
    #expect(mixflow_tensor_file_read(f, "gamma", &back, 1) == MIXFLOW_OK && back[0] == 0.25)
    var buf = [CChar](repeating: 0, count: 16)
    var n: UInt = 0
    #expect(mixflow_tensor_file_metadata(f, "mixflow.step", &buf, 16, &n) == MIXFLOW_OK && String(cString: buf) == "4000")
}

@Test func writerBadArguments() {
    let dir = tempDir()
    var w: UnsafeMutablePointer<mixflow_tensor_writer>? = UnsafeMutablePointer(bitPattern: 0x1234)
    #expect(mixflow_tensor_writer_create(nil, 0, &w) == MIXFLOW_ERR_INVALID_ARGUMENT && w == nil)
    #expect(mixflow_tensor_writer_create(dir + "/m.onnx", 0, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_create(dir + "/m.onnx", -2, &w) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_writer_create: external_threshold_bytes must be >= -1 (-1 = all inline), got -2")
    #expect(mixflow_tensor_writer_create(dir + "/missing/m.onnx", 0, &w) == MIXFLOW_ERR_IO)
    #expect(mixflow_tensor_writer_create(dir + "/m.onnx", -1, &w) == MIXFLOW_OK)
    let v: [Float] = [1, 2, 3, 4]
    let shape: [Int64] = [2, 2], bad: [Int64] = [2, -2], huge: [Int64] = [Int64.max, 4]
    #expect(mixflow_tensor_writer_add(w, nil, v, shape, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_add(w, "x", nil, shape, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_writer_add: data must not be NULL")
    #expect(mixflow_tensor_writer_add(w, "x", v, nil, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_writer_add: shape must not be NULL")
    #expect(mixflow_tensor_writer_add(w, "x", v, bad, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_writer_add: shape dimension 1 must be > 0, got -2")
    #expect(mixflow_tensor_writer_add(w, "x", v, huge, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().contains("overflows a 64-bit size"))
    #expect(mixflow_tensor_writer_add(w, "x", v, shape, -1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_add(w, "x", v, shape, 65) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_writer_add: ndim must be in [0, 64], got 65")
    #expect(mixflow_tensor_writer_add(w, "", v, shape, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_add(w, "x", v, shape, 2) == MIXFLOW_OK)
    #expect(mixflow_tensor_writer_add(w, "x", v, shape, 2) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_set_metadata(w, "", "v") == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_set_metadata(w, "k", nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_writer_finish(nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    // Freed unfinished: nothing is written.
    mixflow_tensor_writer_free(w)
    #expect(access(dir + "/m.onnx", F_OK) != 0)
    mixflow_tensor_writer_free(nil)
}
