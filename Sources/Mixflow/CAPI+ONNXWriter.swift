import CMixflow
import MixflowCore
import MixflowIO

/// Starts writing an ONNX tensor file at `path`: a model with named float32 initializers, metadata and an
/// empty graph (IR 8, opset 17), readable by pip onnx, onnxruntime tools and `mixflow_tensor_file_load`.
/// Tensors of at least `external_threshold_bytes` bytes go to one external-data file next to the model
/// (64-byte aligned), which keeps the model under protobuf's 2 GiB limit: `<file name>.data`, or
/// `<file name>.<save id>.data` while an earlier save's data file is still in use. Nothing appears on disk
/// until `mixflow_tensor_writer_finish`; the data file, then the model, are then put in place atomically, so
/// a kill at any moment leaves the previous pair or the new one, and the reader refuses a model and data file
/// from different saves (docs/reliability.md). Free the handle with `mixflow_tensor_writer_free`, which
/// abandons an unfinished write.
///
/// - Parameters:
///   - path: UTF-8 path of the `.onnx` file; its folder must exist and be writable.
///   - external_threshold_bytes: -1 = keep every tensor inline; 0 = every tensor external; must be >= -1.
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, empty path, threshold < -1) or
///   `MIXFLOW_ERR_IO` (folder missing or not writable).
@c public func mixflow_tensor_writer_create(
    _ path: UnsafePointer<CChar>?, _ external_threshold_bytes: Int64,
    _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_tensor_writer>?>?
) -> mixflow_status {
    capi("mixflow_tensor_writer_create") {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try string(path, "path")
        guard external_threshold_bytes >= -1 else {
            throw MixflowError.invalidArgument("external_threshold_bytes must be >= -1 (-1 = all inline), got \(external_threshold_bytes)")
        }
        let writer = try OnnxWriter(path: p, externalThreshold: external_threshold_bytes)
        out.pointee = Handle.make(writer, kind: .tensorWriter, as: mixflow_tensor_writer.self)
    }
}

/// Frees a writer; an unfinished write is abandoned and its temporary files removed. NULL is a no-op.
@c public func mixflow_tensor_writer_free(_ writer: UnsafeMutablePointer<mixflow_tensor_writer>?) {
    if let w = try? Handle.get(writer, kind: .tensorWriter, "writer", as: OnnxWriter.self) { w.discard() }
    Handle.free(writer, kind: .tensorWriter)
}

/// Adds a float32 tensor. The values are copied (external ones straight to the data file) before the call
/// returns; `data` is not kept.
///
/// - Parameters:
///   - name: non-empty, NUL-terminated UTF-8, unique in the file (e.g. an official state-dict name).
///   - data: the values, C-contiguous, product(shape) floats (1 for a scalar).
///   - shape: `ndim` dims, each > 0; may be NULL when `ndim` is 0 (a scalar).
///   - ndim: 0 ... 64.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, empty or repeated name, dim <= 0, overflowing
///   size, bad ndim, writer already finished), `MIXFLOW_ERR_IO` or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_writer_add(
    _ writer: UnsafeMutablePointer<mixflow_tensor_writer>?, _ name: UnsafePointer<CChar>?,
    _ data: UnsafePointer<Float>?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32
) -> mixflow_status {
    capi("mixflow_tensor_writer_add") {
        let w = try Handle.get(writer, kind: .tensorWriter, "writer", as: OnnxWriter.self)
        let n = try string(name, "name")
        guard ndim >= 0, ndim <= 64 else { throw MixflowError.invalidArgument("ndim must be in [0, 64], got \(ndim)") }
        let dims: [Int64] = ndim == 0 ? [] : Array(UnsafeBufferPointer(start: try require(shape, "shape"), count: Int(ndim)))
        let count = ndim == 0 ? 1 : try checkedCount(dims, "shape")
        let data = try require(data, "data")
        try w.add(n, dims: dims, data: UnsafeBufferPointer(start: data, count: count))
    }
}

/// Adds a tensor of any `mixflow_dtype` the library reads (float16/32/64, bfloat16, 8- to 64-bit integers,
/// bool), given as its little-endian bytes: what a converter uses to keep integer tensors exact. The bytes are
/// copied before the call returns.
///
/// - Parameters:
///   - dtype: a `mixflow_dtype` value other than STRING, COMPLEX and FLOAT8.
///   - data: product(shape) elements of `dtype`, C-contiguous (1 element for a scalar).
///   - shape, ndim: as for `mixflow_tensor_writer_add`, except that dims of 0 (an empty tensor) are allowed.
/// - Returns: as `mixflow_tensor_writer_add` (an unsupported dtype is `MIXFLOW_ERR_INVALID_ARGUMENT`).
@c public func mixflow_tensor_writer_add_typed(
    _ writer: UnsafeMutablePointer<mixflow_tensor_writer>?, _ name: UnsafePointer<CChar>?, _ dtype: Int32,
    _ data: UnsafeRawPointer?, _ shape: UnsafePointer<Int64>?, _ ndim: Int32
) -> mixflow_status {
    capi("mixflow_tensor_writer_add_typed") {
        let w = try Handle.get(writer, kind: .tensorWriter, "writer", as: OnnxWriter.self)
        let n = try string(name, "name")
        guard ndim >= 0, ndim <= 64 else { throw MixflowError.invalidArgument("ndim must be in [0, 64], got \(ndim)") }
        let size = OnnxReader.elementSize(dtype)
        guard size > 0 else { throw MixflowError.invalidArgument("dtype \(dtype) is not a type the library writes") }
        let dims: [Int64] = ndim == 0 ? [] : Array(UnsafeBufferPointer(start: try require(shape, "shape"), count: Int(ndim)))
        let count = ndim == 0 ? 1 : try checkedCount(dims, "shape", allowEmpty: true)
        guard count <= Int.max / size else { throw MixflowError.invalidArgument("shape \(dims) has too many bytes") }
        let data = try require(data?.assumingMemoryBound(to: UInt8.self), "data")
        try w.add(n, dims: dims, dataType: dtype, bytes: UnsafeRawBufferPointer(start: data, count: count * size))
    }
}

/// Sets metadata `key` = `value` (ONNX `metadata_props`), e.g. "mixflow.arch" = "SiT-XL/2".
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, empty or repeated key, writer already
///   finished) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_writer_set_metadata(
    _ writer: UnsafeMutablePointer<mixflow_tensor_writer>?, _ key: UnsafePointer<CChar>?,
    _ value: UnsafePointer<CChar>?
) -> mixflow_status {
    capi("mixflow_tensor_writer_set_metadata") {
        let w = try Handle.get(writer, kind: .tensorWriter, "writer", as: OnnxWriter.self)
        try w.setMetadata(try string(key, "key"), try string(value, "value"))
    }
}

/// Writes the model and puts the data file, then the model, in place atomically. The writer accepts no
/// further calls except `mixflow_tensor_writer_free`. On failure nothing is left behind and the files at
/// the destination are unchanged.
///
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (already finished), `MIXFLOW_ERR_FORMAT` (the inline
///   tensors exceed 2 GiB: lower the threshold), `MIXFLOW_ERR_IO` or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_tensor_writer_finish(_ writer: UnsafeMutablePointer<mixflow_tensor_writer>?) -> mixflow_status {
    capi("mixflow_tensor_writer_finish") {
        let w = try Handle.get(writer, kind: .tensorWriter, "writer", as: OnnxWriter.self)
        try w.finish()
    }
}
