import CMixflow
import MixflowCore
import MixflowIO

// MARK: - Reading

/// Opens an ONNX model as a tensor file: parses it and validates every initializer (dims, data lengths,
/// external-data locations and spans). Values are read later, on demand, with `mixflow_tensor_file_read`.
/// Free the handle with `mixflow_tensor_file_free`.
///
/// Hostile files are expected: truncated or corrupt protobuf, dims whose product overflows, lengths that
/// disagree with dims, negative or out-of-file offsets, and external locations that are absolute, contain
/// `..`, or resolve (symlinks followed) outside the model's folder are all refused with a message naming
/// the file, the tensor and the byte offset. Memory use is bounded by the file's size.
///
/// - Parameters:
///   - path: UTF-8 path of the `.onnx` file; external data is looked up relative to its folder.
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, empty path), `MIXFLOW_ERR_IO` (missing,
///   unreadable, not a regular file), `MIXFLOW_ERR_FORMAT` (not ONNX or inconsistent), `MIXFLOW_ERR_UNSUPPORTED`
///   (segmented tensors) or `MIXFLOW_ERR_OUT_OF_MEMORY`.
@c public func mixflow_tensor_file_load(
    _ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_tensor_file>?>?
) -> mixflow_status {
    capi("mixflow_tensor_file_load") {
        let out = try require(out, "out")
        out.pointee = nil
        let reader = try OnnxReader(path: try string(path, "path"))
        out.pointee = Handle.make(reader, kind: .tensorFile, as: mixflow_tensor_file.self)
    }
}

/// Frees a tensor file. NULL is a no-op.
@c public func mixflow_tensor_file_free(_ file: UnsafeMutablePointer<mixflow_tensor_file>?) {
    Handle.free(file, kind: .tensorFile)
}

/// The number of tensors (ONNX initializers) in the file, or -1 if `file` is not a valid handle.
@c public func mixflow_tensor_file_num_tensors(_ file: UnsafeMutablePointer<mixflow_tensor_file>?) -> Int64 {
    (try? Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)).map { Int64($0.tensors.count) } ?? -1
}

/// Copies the name of tensor `index` (in file order) into `buf` as a NUL-terminated UTF-8 string, in the
/// two-call form: with `buf` NULL only `*out_len` is set.
///
/// - Parameters:
///   - index: 0 ..< `mixflow_tensor_file_num_tensors`.
///   - buf: may be NULL; otherwise `cap` bytes, at least `*out_len + 1`.
///   - out_len: receives the name's length in bytes, without the NUL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (index out of range, NULL out_len, cap too small:
///   `*out_len` is still set) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_file_tensor_name(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ index: Int64,
    _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt, _ out_len: UnsafeMutablePointer<UInt>?
) -> mixflow_status {
    capi("mixflow_tensor_file_tensor_name") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        let t = try tensor(r, index)
        try copyOut(Array(t.name.utf8), buf, cap, out_len, "name")
    }
}

/// Describes tensor `index`: its element type as stored, its shape, element count and storage.
///
/// - Parameters:
///   - out_dtype: receives a `mixflow_dtype` value (an ONNX TensorProto.DataType code); may be NULL.
///   - out_ndim: receives the number of dims (0 for a scalar); may be NULL.
///   - out_dims: receives the dims; may be NULL (then `dims_cap` is ignored), else it holds `dims_cap` values.
///   - out_count: receives the number of elements (product of the dims); may be NULL.
///   - out_storage: receives a `mixflow_tensor_storage` value; may be NULL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (index out of range, `dims_cap` smaller than the
///   tensor's ndim: `*out_ndim` is still set) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_file_tensor_info(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ index: Int64,
    _ out_dtype: UnsafeMutablePointer<Int32>?, _ out_ndim: UnsafeMutablePointer<Int32>?,
    _ out_dims: UnsafeMutablePointer<Int64>?, _ dims_cap: Int32,
    _ out_count: UnsafeMutablePointer<Int64>?, _ out_storage: UnsafeMutablePointer<Int32>?
) -> mixflow_status {
    capi("mixflow_tensor_file_tensor_info") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        let t = try tensor(r, index)
        out_ndim?.pointee = Int32(t.dims.count)
        if let out_dims {
            guard dims_cap >= 0, Int(dims_cap) >= t.dims.count else {
                throw MixflowError.invalidArgument("dims_cap is \(dims_cap), tensor \"\(t.name)\" has \(t.dims.count) dims")
            }
            for (k, d) in t.dims.enumerated() { out_dims[k] = d }
        }
        out_dtype?.pointee = t.dataType
        out_count?.pointee = Int64(t.count)
        out_storage?.pointee = Int32(bitPattern: storageCode(t.storage).rawValue)
    }
}

/// Finds a tensor by name: `*out_index` is its index, or -1 when the file has no tensor of that name
/// (absence is not an error).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_file_find(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ name: UnsafePointer<CChar>?,
    _ out_index: UnsafeMutablePointer<Int64>?
) -> mixflow_status {
    capi("mixflow_tensor_file_find") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        let n = try string(name, "name")
        let out = try require(out_index, "out_index")
        out.pointee = r.index(of: n).map(Int64.init) ?? -1
    }
}

/// Reads tensor `name`'s values into `out` as float32, C-contiguous in the tensor's shape, converting
/// float16, bfloat16, float64, bool and integer types (int64/uint64 above 2^24 round to nearest float32).
/// External data is read straight into `out`.
///
/// - Parameters:
///   - name: a tensor name (NUL-terminated UTF-8).
///   - out: `count` floats, caller-allocated.
///   - count: must equal the tensor's element count (`mixflow_tensor_file_tensor_info`); 0 for an empty tensor.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, unknown name, wrong count),
///   `MIXFLOW_ERR_UNSUPPORTED` (STRING, COMPLEX or FLOAT8 elements), `MIXFLOW_ERR_IO` / `MIXFLOW_ERR_FORMAT`
///   (external data changed or vanished since load) or `MIXFLOW_ERR_INVALID_HANDLE`. On failure `out` is unspecified.
@c public func mixflow_tensor_file_read(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ name: UnsafePointer<CChar>?,
    _ out: UnsafeMutablePointer<Float>?, _ count: Int64
) -> mixflow_status {
    capi("mixflow_tensor_file_read") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        let n = try string(name, "name")
        guard let i = r.index(of: n) else {
            throw MixflowError.invalidArgument("\(r.path) has no tensor named \"\(n)\"")
        }
        try readTensor(r, i, out, count)
    }
}

/// The same as `mixflow_tensor_file_read` with the tensor given by its index.
///
/// - Returns: as `mixflow_tensor_file_read` (index out of range is `MIXFLOW_ERR_INVALID_ARGUMENT`).
@c public func mixflow_tensor_file_read_index(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ index: Int64,
    _ out: UnsafeMutablePointer<Float>?, _ count: Int64
) -> mixflow_status {
    capi("mixflow_tensor_file_read_index") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        _ = try tensor(r, index)
        try readTensor(r, Int(index), out, count)
    }
}

/// Reads tensor `index`'s values as stored, without conversion: `nbytes` = element count × element size
/// little-endian bytes of its own `mixflow_dtype` (what a converter needs to keep int64 tensors exact).
///
/// - Parameters:
///   - out: `nbytes` bytes, caller-allocated.
///   - nbytes: must equal the element count times the size of the tensor's dtype (`mixflow_tensor_file_tensor_info`).
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, index out of range, wrong size),
///   `MIXFLOW_ERR_UNSUPPORTED` (STRING, COMPLEX or FLOAT8 elements), `MIXFLOW_ERR_IO` / `MIXFLOW_ERR_FORMAT`
///   (external data changed or vanished since load) or `MIXFLOW_ERR_INVALID_HANDLE`. On failure `out` is unspecified.
@c public func mixflow_tensor_file_read_stored(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ index: Int64, _ out: UnsafeMutableRawPointer?, _ nbytes: UInt64
) -> mixflow_status {
    capi("mixflow_tensor_file_read_stored") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        _ = try tensor(r, index)
        guard nbytes <= UInt64(Int.max) else { throw MixflowError.invalidArgument("nbytes \(nbytes) is too large") }
        let out = nbytes == 0 ? nil : UnsafeMutableRawPointer(try require(out?.assumingMemoryBound(to: UInt8.self), "out"))
        try r.readStored(Int(index), into: UnsafeMutableRawBufferPointer(start: out, count: Int(nbytes)))
    }
}

/// The number of metadata entries (ONNX `metadata_props`), or -1 if `file` is not a valid handle.
@c public func mixflow_tensor_file_num_metadata(_ file: UnsafeMutablePointer<mixflow_tensor_file>?) -> Int64 {
    (try? Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)).map { Int64($0.metadata.count) } ?? -1
}

/// Copies the key of metadata entry `index` into `buf` (two-call form, as `mixflow_tensor_file_tensor_name`).
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (index out of range, NULL out_len, cap too small)
///   or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_file_metadata_key(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ index: Int64,
    _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt, _ out_len: UnsafeMutablePointer<UInt>?
) -> mixflow_status {
    capi("mixflow_tensor_file_metadata_key") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        guard index >= 0, index < Int64(r.metadata.count) else {
            throw MixflowError.invalidArgument("index must be in [0, \(r.metadata.count)), got \(index)")
        }
        try copyOut(r.metadata[Int(index)].key, buf, cap, out_len, "key")
    }
}

/// Copies the value stored under metadata `key` (the first entry if a file repeats a key) into `buf`, in
/// the two-call form. Values are byte strings: `*out_len` counts them; a NUL is appended.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, no such key, cap too small) or
///   `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_file_metadata(
    _ file: UnsafeMutablePointer<mixflow_tensor_file>?, _ key: UnsafePointer<CChar>?,
    _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt, _ out_len: UnsafeMutablePointer<UInt>?
) -> mixflow_status {
    capi("mixflow_tensor_file_metadata") {
        let r = try Handle.get(file, kind: .tensorFile, "file", as: OnnxReader.self)
        let k = try string(key, "key")
        guard let value = r.metadataValue(k) else {
            throw MixflowError.invalidArgument("\(r.path) has no metadata key \"\(k)\"")
        }
        try copyOut(value, buf, cap, out_len, "value")
    }
}

// MARK: - Helpers

func tensor(_ r: OnnxReader, _ index: Int64) throws -> OnnxTensorInfo {
    guard index >= 0, index < Int64(r.tensors.count) else {
        throw MixflowError.invalidArgument("index must be in [0, \(r.tensors.count)), got \(index)")
    }
    return r.tensors[Int(index)]
}

func readTensor(_ r: OnnxReader, _ i: Int, _ out: UnsafeMutablePointer<Float>?, _ count: Int64) throws {
    let t = r.tensors[i]
    guard count == Int64(t.count) else {
        throw MixflowError.invalidArgument("count must be \(t.count) for tensor \"\(t.name)\" (dims \(t.dims)), got \(count)")
    }
    if t.count == 0 { return }
    let out = try require(out, "out")
    try r.read(i, into: UnsafeMutableBufferPointer(start: out, count: t.count))
}

func storageCode(_ s: OnnxStorage) -> mixflow_tensor_storage {
    switch s {
    case .empty: return MIXFLOW_TENSOR_STORAGE_EMPTY
    case .raw: return MIXFLOW_TENSOR_STORAGE_RAW
    case .typed: return MIXFLOW_TENSOR_STORAGE_TYPED
    case .external: return MIXFLOW_TENSOR_STORAGE_EXTERNAL
    }
}

/// The two-call string form: `*out_len` = byte length; with a buffer, copies the bytes and a NUL.
func copyOut(_ bytes: [UInt8], _ buf: UnsafeMutablePointer<CChar>?, _ cap: UInt,
             _ outLen: UnsafeMutablePointer<UInt>?, _ what: String) throws {
    let outLen = try require(outLen, "out_len")
    outLen.pointee = UInt(bytes.count)
    guard let buf else { return }
    guard cap > UInt(bytes.count) else {
        throw MixflowError.invalidArgument("cap is \(cap), the \(what) needs \(bytes.count + 1) bytes with its NUL")
    }
    if !bytes.isEmpty {
        bytes.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
    buf[bytes.count] = 0
}
