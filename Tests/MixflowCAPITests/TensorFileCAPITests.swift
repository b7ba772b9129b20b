#if canImport(Glibc)
import Glibc
#endif
import CMixflow
import Mixflow
import Testing

// The C API of tensor files: statuses and messages for every bad input, and values against the fixtures
// whose expected contents come from pip onnx (Tests/Fixtures/onnx/make_fixtures.py).

private let onnxFixtures: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)   // …/Tests/MixflowCAPITests/TensorFileCAPITests.swift -> …/Tests
    return parts.joined(separator: "/") + "/Fixtures/onnx"
}()

private func load(_ rel: String) -> UnsafeMutablePointer<mixflow_tensor_file>? {
    var f: UnsafeMutablePointer<mixflow_tensor_file>?
    let s = mixflow_tensor_file_load(onnxFixtures + "/" + rel, &f)
    precondition(s == MIXFLOW_OK, lastError())
    return f
}

private func name(_ f: UnsafeMutablePointer<mixflow_tensor_file>?, _ i: Int64) -> String? {
    var n: UInt = 0
    guard mixflow_tensor_file_tensor_name(f, i, nil, 0, &n) == MIXFLOW_OK else { return nil }
    var buf = [CChar](repeating: 1, count: Int(n) + 1)
    guard mixflow_tensor_file_tensor_name(f, i, &buf, UInt(buf.count), &n) == MIXFLOW_OK else { return nil }
    return String(cString: buf)
}

@Test func tensorFileListsAndReadsTensors() throws {
    let f = load("good/raw.onnx")
    defer { mixflow_tensor_file_free(f) }
    #expect(mixflow_tensor_file_num_tensors(f) == 5)
    #expect((0..<5).map { name(f, $0) } == ["W", "scalar", "special", "empty", "b"])
    var dtype: Int32 = 0, ndim: Int32 = 0, count: Int64 = 0, storage: Int32 = -1
    var dims = [Int64](repeating: 0, count: 4)
    #expect(mixflow_tensor_file_tensor_info(f, 0, &dtype, &ndim, &dims, 4, &count, &storage) == MIXFLOW_OK)
    #expect(dtype == Int32(MIXFLOW_DTYPE_FLOAT32.rawValue) && ndim == 2 && dims.prefix(2) == [4, 3] && count == 12)
    #expect(storage == Int32(MIXFLOW_TENSOR_STORAGE_RAW.rawValue))
    #expect(mixflow_tensor_file_tensor_info(f, 4, nil, nil, nil, 0, nil, &storage) == MIXFLOW_OK)
    #expect(storage == Int32(MIXFLOW_TENSOR_STORAGE_TYPED.rawValue))
    var b = [Float](repeating: 0, count: 3)
    #expect(mixflow_tensor_file_read(f, "b", &b, 3) == MIXFLOW_OK && b == [0.5, -1.25, 2.0])
    #expect(mixflow_tensor_file_read_index(f, 4, &b, 3) == MIXFLOW_OK && b == [0.5, -1.25, 2.0])
    #expect(mixflow_tensor_file_read(f, "empty", nil, 0) == MIXFLOW_OK)
    var index: Int64 = 0
    #expect(mixflow_tensor_file_find(f, "special", &index) == MIXFLOW_OK && index == 2)
    #expect(mixflow_tensor_file_find(f, "nope", &index) == MIXFLOW_OK && index == -1)
    #expect(lastError() == "")
}

@Test func tensorFileReadsExternalAndConvertedTypes() throws {
    let f = load("good/ext_single/model.onnx")
    defer { mixflow_tensor_file_free(f) }
    var storage: Int32 = -1, dtype: Int32 = 0
    #expect(mixflow_tensor_file_tensor_info(f, 2, &dtype, nil, nil, 0, nil, &storage) == MIXFLOW_OK)
    #expect(storage == Int32(MIXFLOW_TENSOR_STORAGE_EXTERNAL.rawValue) && dtype == Int32(MIXFLOW_DTYPE_FLOAT16.rawValue))
    var half = [Float](repeating: 0, count: 16)
    #expect(mixflow_tensor_file_read(f, "half", &half, 16) == MIXFLOW_OK)
    // Float16 values widen exactly: every value is representable in half precision.
    #expect(half.allSatisfy { Float(Float16($0)) == $0 } && half.contains { $0 != 0 })
}

@Test func tensorFileMetadataTwoCallForm() {
    let f = load("good/raw.onnx")
    defer { mixflow_tensor_file_free(f) }
    #expect(mixflow_tensor_file_num_metadata(f) == 3)
    var n: UInt = 0
    #expect(mixflow_tensor_file_metadata(f, "note", nil, 0, &n) == MIXFLOW_OK && n == 5)   // "café": é is 2 bytes in UTF-8
    var small = [CChar](repeating: 0, count: 5)
    #expect(mixflow_tensor_file_metadata(f, "note", &small, 5, &n) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_metadata: cap is 5, the value needs 6 bytes with its NUL")
    var buf = [CChar](repeating: 0, count: 6)
    #expect(mixflow_tensor_file_metadata(f, "note", &buf, 6, &n) == MIXFLOW_OK && String(cString: buf) == "café")
    #expect(mixflow_tensor_file_metadata_key(f, 0, &buf, 6, &n) == MIXFLOW_ERR_INVALID_ARGUMENT)  // "mixflow.arch" is 12
    var key = [CChar](repeating: 0, count: 32)
    #expect(mixflow_tensor_file_metadata_key(f, 0, &key, 32, &n) == MIXFLOW_OK && String(cString: key) == "mixflow.arch")
    #expect(mixflow_tensor_file_metadata_key(f, 3, &key, 32, &n) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_metadata_key: index must be in [0, 3), got 3")
    #expect(mixflow_tensor_file_metadata(f, "missing", nil, 0, &n) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().hasSuffix("has no metadata key \"missing\""))
    #expect(mixflow_tensor_file_metadata(f, "note", nil, 0, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_metadata: out_len must not be NULL")
}

@Test func tensorFileBadArguments() {
    var f: UnsafeMutablePointer<mixflow_tensor_file>? = UnsafeMutablePointer(bitPattern: 0x1234)
    #expect(mixflow_tensor_file_load(nil, &f) == MIXFLOW_ERR_INVALID_ARGUMENT && f == nil)
    #expect(lastError() == "mixflow_tensor_file_load: path must not be NULL")
    #expect(mixflow_tensor_file_load("x.onnx", nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_load: out must not be NULL")
    #expect(mixflow_tensor_file_load("", &f) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_file_load("/nonexistent/x.onnx", &f) == MIXFLOW_ERR_IO && f == nil)
    #expect(mixflow_tensor_file_load(onnxFixtures + "/hostile/overflow_dims.onnx", &f) == MIXFLOW_ERR_FORMAT)
    #expect(lastError().contains("more elements than a 64-bit size"))
    #expect(mixflow_tensor_file_load(onnxFixtures + "/hostile/segment.onnx", &f) == MIXFLOW_ERR_UNSUPPORTED)
    #expect(mixflow_tensor_file_load(onnxFixtures + "/hostile/ext_absolute/model.onnx", &f) == MIXFLOW_ERR_FORMAT)
    #expect(lastError().hasPrefix("mixflow_tensor_file_load: ") && lastError().contains("is absolute"))

    let good = load("good/raw.onnx")
    defer { mixflow_tensor_file_free(good) }
    var buf = [Float](repeating: 0, count: 12)
    #expect(mixflow_tensor_file_read(good, "W", &buf, 11) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_read: count must be 12 for tensor \"W\" (dims [4, 3]), got 11")
    #expect(mixflow_tensor_file_read(good, "W", &buf, -1) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_file_read(good, "W", nil, 12) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_read: out must not be NULL")
    #expect(mixflow_tensor_file_read(good, nil, &buf, 12) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_file_read(good, "X", &buf, 12) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError().hasSuffix("has no tensor named \"X\""))
    #expect(mixflow_tensor_file_read_index(good, 5, &buf, 12) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_read_index: index must be in [0, 5), got 5")
    #expect(mixflow_tensor_file_read_index(good, -1, &buf, 12) == MIXFLOW_ERR_INVALID_ARGUMENT)
    var ndim: Int32 = 0
    var dims = [Int64](repeating: 0, count: 1)
    #expect(mixflow_tensor_file_tensor_info(good, 0, nil, &ndim, &dims, 1, nil, nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(ndim == 2 && lastError() == "mixflow_tensor_file_tensor_info: dims_cap is 1, tensor \"W\" has 2 dims")
    var n: UInt = 0
    var small = [CChar](repeating: 0, count: 1)
    #expect(mixflow_tensor_file_tensor_name(good, 0, &small, 1, &n) == MIXFLOW_ERR_INVALID_ARGUMENT && n == 1)
    #expect(mixflow_tensor_file_tensor_name(good, 9, nil, 0, &n) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(mixflow_tensor_file_find(good, "W", nil) == MIXFLOW_ERR_INVALID_ARGUMENT)
}

@Test func tensorFileRejectsWrongHandles() {
    var index: Int64 = 0
    #expect(mixflow_tensor_file_num_tensors(nil) == -1 && mixflow_tensor_file_num_metadata(nil) == -1)
    #expect(mixflow_tensor_file_find(nil, "W", &index) == MIXFLOW_ERR_INVALID_ARGUMENT)
    #expect(lastError() == "mixflow_tensor_file_find: file must not be NULL")
    // A transport handle passed as a tensor file.
    var p = defaultTransportParams()
    var tr: UnsafeMutablePointer<mixflow_transport>?
    #expect(mixflow_transport_create(&p, &tr) == MIXFLOW_OK)
    defer { mixflow_transport_free(tr) }
    let wrong = UnsafeMutableRawPointer(tr!).assumingMemoryBound(to: mixflow_tensor_file.self)
    #expect(mixflow_tensor_file_find(wrong, "W", &index) == MIXFLOW_ERR_INVALID_HANDLE)
    #expect(mixflow_tensor_file_num_tensors(wrong) == -1)
    mixflow_tensor_file_free(wrong)   // ignored: not a tensor file
    let w = UnsafeMutableRawPointer(tr!).assumingMemoryBound(to: mixflow_tensor_writer.self)
    #expect(mixflow_tensor_writer_finish(w) == MIXFLOW_ERR_INVALID_HANDLE)
}
