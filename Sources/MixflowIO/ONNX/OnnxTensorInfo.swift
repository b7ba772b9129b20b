/// ONNX `TensorProto.DataType` codes and their names (onnx.proto); the values are frozen by ONNX.
public enum OnnxDataType {
    public static let float: Int32 = 1, uint8: Int32 = 2, int8: Int32 = 3, uint16: Int32 = 4, int16: Int32 = 5
    public static let int32: Int32 = 6, int64: Int32 = 7, string: Int32 = 8, bool: Int32 = 9, float16: Int32 = 10
    public static let double: Int32 = 11, uint32: Int32 = 12, uint64: Int32 = 13, bfloat16: Int32 = 16

    static let names: [Int32: String] = [
        0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING",
        9: "BOOL", 10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128",
        16: "BFLOAT16", 17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ",
        21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1",
    ]

    /// "FLOAT16 (10)"; unknown codes print as "data type 99".
    public static func describe(_ code: Int32) -> String {
        if let n = names[code] { return "\(n) (\(code))" }
        return "data type \(code)"
    }
}

/// Where a tensor's values live.
public enum OnnxStorage: Equatable {
    /// No data at all: only valid for a tensor with zero elements.
    case empty
    /// `raw_data`, little-endian, `byteCount` bytes.
    case raw(byteCount: Int)
    /// A typed repeated field (`float_data`, `int32_data`, …).
    case typed
    /// External data, already validated: `path` is the canonical file inside the model's folder.
    case external(ExternalData)
}

/// A validated external-data reference. `length` is the byte count to read (the declared length, or the
/// size implied by the dims when `length` was absent).
public struct ExternalData: Equatable {
    public let location: String
    public let path: String
    public let offset: Int64
    public let length: Int64
}

/// One initializer (or the tensor of a `.pb` TensorProto file), validated against the file.
public struct OnnxTensorInfo: Equatable {
    public let name: String
    /// ONNX `TensorProto.DataType`.
    public let dataType: Int32
    public let dims: [Int64]
    /// Product of `dims` (1 for a scalar, 0 if any dim is 0).
    public let count: Int
    public let storage: OnnxStorage

    /// Whether `read` can convert this tensor's element type to float32.
    public var isConvertibleToFloat: Bool { OnnxReader.elementSize(dataType) > 0 }
}
