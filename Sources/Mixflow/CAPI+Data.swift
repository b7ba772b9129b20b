import CMixflow
import MixflowCore
import MixflowEval

// MARK: - IDX arrays (Fashion-MNIST and other MNIST-format files)

/// Reads an IDX file (plain or gzip-compressed, detected from its first bytes) fully into memory and
/// validates it. Free the handle with `mixflow_idx_free`.
///
/// Supported element types: uint8 (0x08), int8 (0x09), int16 (0x0B), int32 (0x0C), float32 (0x0D),
/// float64 (0x0E). Hostile files (wrong magic, truncated data, dims that overflow or disagree with the file
/// length, corrupt gzip with a bad CRC-32 or length) fail with `MIXFLOW_ERR_FORMAT` and a message giving the
/// path and the byte offset; the library never allocates from a size the file claims before checking it.
///
/// - Parameters:
///   - path: UTF-8 file path, e.g. "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz".
///   - out: receives the new handle; set to NULL on failure.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL), `MIXFLOW_ERR_IO` (cannot open or read),
///   `MIXFLOW_ERR_FORMAT` (invalid contents) or `MIXFLOW_ERR_OUT_OF_MEMORY`.
@c public func mixflow_idx_load(
    _ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<mixflow_idx>?>?
) -> mixflow_status {
    capi("mixflow_idx_load") {
        let out = try require(out, "out")
        out.pointee = nil
        let array = try IDXArray(path: try string(path, "path"))
        out.pointee = Handle.make(array, kind: .idx, as: mixflow_idx.self)
    }
}

/// Frees an IDX handle. NULL is a no-op.
@c public func mixflow_idx_free(_ idx: UnsafeMutablePointer<mixflow_idx>?) {
    Handle.free(idx, kind: .idx)
}

/// The element type and shape of an IDX array.
///
/// - Parameters:
///   - out_dtype: may be NULL. out_ndim: number of dimensions (1...255), may be NULL.
///   - out_shape: [shape_capacity], receives the ndim dimensions; may be NULL.
///   - shape_capacity: length of out_shape; must be >= ndim when out_shape is not NULL.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (capacity too small) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_idx_info(
    _ idx: UnsafeMutablePointer<mixflow_idx>?, _ out_dtype: UnsafeMutablePointer<mixflow_idx_dtype>?,
    _ out_ndim: UnsafeMutablePointer<Int32>?, _ out_shape: UnsafeMutablePointer<Int64>?, _ shape_capacity: Int32
) -> mixflow_status {
    capi("mixflow_idx_info") {
        let array = try Handle.get(idx, kind: .idx, "idx", as: IDXArray.self)
        if let out_shape {
            guard Int(shape_capacity) >= array.shape.count else {
                throw MixflowError.invalidArgument("shape_capacity must be >= ndim = \(array.shape.count), got \(shape_capacity)")
            }
            for (k, d) in array.shape.enumerated() { out_shape[k] = Int64(d) }
        }
        out_dtype?.pointee = mixflow_idx_dtype(rawValue: UInt32(array.type.rawValue))
        out_ndim?.pointee = Int32(array.shape.count)
    }
}

/// Copies the elements as stored, converted to native byte order, in the file's own element type
/// (uint8 images come out as raw bytes 0..255).
///
/// - Parameters:
///   - out: [count × element size] bytes. out_bytes: its size; must equal count × element size.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, wrong size) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_idx_read_raw(
    _ idx: UnsafeMutablePointer<mixflow_idx>?, _ out: UnsafeMutableRawPointer?, _ out_bytes: Int64
) -> mixflow_status {
    capi("mixflow_idx_read_raw") {
        let array = try Handle.get(idx, kind: .idx, "idx", as: IDXArray.self)
        let out = try requireRaw(out, "out")
        let need = array.count * array.type.size
        guard out_bytes == Int64(need) else {
            throw MixflowError.invalidArgument("out_bytes must be \(need) (\(array.count) elements of \(array.type.size) bytes), got \(out_bytes)")
        }
        array.readRaw(into: out)
    }
}

/// Reads the elements as float32: the raw value (`MIXFLOW_PIXEL_SCALING_NONE`, any dtype), or, for uint8
/// images, `x / 127.5 - 1` in [-1, 1] (`_SYMMETRIC`, what the feature net and the models expect) or
/// `x / 255` in [0, 1] (`_UNIT`). An image array [N, 28, 28] becomes N rows of 784 floats.
///
/// - Parameters:
///   - scaling: a `mixflow_pixel_scaling`.
///   - out: [count]. count: must equal the number of elements (the product of the shape).
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, wrong count, unknown scaling, scaling on a
///   non-uint8 array) or `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_idx_read_f32(
    _ idx: UnsafeMutablePointer<mixflow_idx>?, _ scaling: mixflow_pixel_scaling,
    _ out: UnsafeMutablePointer<Float>?, _ count: Int64
) -> mixflow_status {
    capi("mixflow_idx_read_f32") {
        let array = try Handle.get(idx, kind: .idx, "idx", as: IDXArray.self)
        guard let mode = PixelScaling(rawValue: Int32(bitPattern: scaling.rawValue)) else {
            throw MixflowError.invalidArgument("scaling has unknown value \(Int32(bitPattern: scaling.rawValue))")
        }
        let out = try require(out, "out")
        guard count == Int64(array.count) else {
            throw MixflowError.invalidArgument("count must be the number of elements \(array.count) (shape \(array.shape)), got \(count)")
        }
        try array.readFloat(into: out, scaling: mode)
    }
}

/// Reads an integer array (labels) as int32. Float arrays are rejected.
///
/// - Parameters:
///   - out: [count]. count: must equal the number of elements.
/// - Returns: `MIXFLOW_OK`, `MIXFLOW_ERR_INVALID_ARGUMENT` (NULL, wrong count, float dtype) or
///   `MIXFLOW_ERR_INVALID_HANDLE`.
@c public func mixflow_idx_read_i32(
    _ idx: UnsafeMutablePointer<mixflow_idx>?, _ out: UnsafeMutablePointer<Int32>?, _ count: Int64
) -> mixflow_status {
    capi("mixflow_idx_read_i32") {
        let array = try Handle.get(idx, kind: .idx, "idx", as: IDXArray.self)
        let out = try require(out, "out")
        guard count == Int64(array.count) else {
            throw MixflowError.invalidArgument("count must be the number of elements \(array.count) (shape \(array.shape)), got \(count)")
        }
        try array.readInt32(into: out)
    }
}

func requireRaw(_ pointer: UnsafeMutableRawPointer?, _ name: String) throws -> UnsafeMutableRawPointer {
    guard let pointer else { throw MixflowError.invalidArgument("\(name) must not be NULL") }
    return pointer
}
