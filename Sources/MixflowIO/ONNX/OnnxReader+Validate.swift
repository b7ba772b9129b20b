import MixflowCore
internal import OnnxShim

// MARK: - Per-tensor validation (everything the file says is hostile until checked here)

extension OnnxReader {
    static func validatedTensor(_ model: OpaquePointer, index: Int, path: String,
                                resolver: inout ExternalResolver) throws -> OnnxTensorInfo {
        var t = mfx_onnx_tensor()
        guard mfx_onnx_tensor_at(model, Int64(index), &t) == MFX_ONNX_OK else {
            throw MixflowError.internal("\(path): initializer \(index) vanished")
        }
        let nameBytes = bytes(t.name, t.name_len)
        guard !nameBytes.contains(0), let name = String(validating: nameBytes, as: UTF8.self) else {
            throw MixflowError.format("\(path): initializer \(index) has a name that is not NUL-free UTF-8")
        }
        let what = "\(path): initializer \"\(name)\""
        guard t.has_segment == 0 else {
            throw MixflowError.unsupported("\(what) is a segmented tensor, which libmixflow does not read")
        }
        let dims = (0..<Int(t.ndim)).map { t.dims[$0] }
        var count: Int64 = 1
        for (k, d) in dims.enumerated() {
            guard d >= 0 else { throw MixflowError.format("\(what): dim \(k) is \(d), dims must be >= 0 (dims \(dims))") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            // 8 bytes per element must still fit, so byte counts below never overflow either.
            guard !overflow, p <= Int64.max / 8 else {
                throw MixflowError.format("\(what): dims \(dims) have more elements than a 64-bit size can count")
            }
            count = p
        }
        let type = t.data_type
        let size = Int64(elementSize(type))
        guard t.num_fields_set <= 1 else {
            throw MixflowError.format("\(what) stores values in \(t.num_fields_set) places (raw_data and typed fields); "
                                      + "exactly one is allowed")
        }
        let storage: OnnxStorage
        switch Int(t.storage) {
        case MFX_ONNX_STORAGE_EMPTY:
            guard count == 0 else {
                throw MixflowError.format("\(what) has dims \(dims) (\(count) elements) but no data")
            }
            storage = .empty
        case MFX_ONNX_STORAGE_RAW:
            if size > 0, t.raw_bytes != count * size {
                throw MixflowError.format("\(what): raw_data has \(t.raw_bytes) bytes, but dims \(dims) of "
                                          + "\(OnnxDataType.describe(type)) need \(count * size)")
            }
            storage = .raw(byteCount: Int(t.raw_bytes))
        case MFX_ONNX_STORAGE_TYPED:
            if size > 0 {
                let expected = mfx_onnx_expected_field(type)
                guard t.typed_field == expected else {
                    throw MixflowError.format("\(what): \(OnnxDataType.describe(type)) values are stored in the "
                                              + "\(fieldName(t.typed_field)) field, onnx.proto requires \(fieldName(expected))")
                }
            }
            guard t.typed_count == count else {
                throw MixflowError.format("\(what): \(fieldName(t.typed_field)) has \(t.typed_count) values, "
                                          + "but dims \(dims) need \(count)")
            }
            storage = .typed
        default:
            guard t.has_raw_data_field == 0, t.num_fields_set == 0 else {
                throw MixflowError.format("\(what) is marked EXTERNAL but also stores values inline")
            }
            let entries = try externalEntries(model, index: index, count: Int(t.num_external), what: what)
            storage = .external(try resolver.validate(entries, tensor: name, count: count, elementSize: size))
        }
        return OnnxTensorInfo(name: name, dataType: type, dims: dims, count: Int(count), storage: storage)
    }

    static func fieldName(_ field: Int32) -> String {
        switch Int(field) {
        case MFX_ONNX_FIELD_FLOAT: return "float_data"
        case MFX_ONNX_FIELD_INT32: return "int32_data"
        case MFX_ONNX_FIELD_INT64: return "int64_data"
        case MFX_ONNX_FIELD_DOUBLE: return "double_data"
        case MFX_ONNX_FIELD_UINT64: return "uint64_data"
        case MFX_ONNX_FIELD_STRING: return "string_data"
        default: return "no typed"
        }
    }

    static func externalEntries(_ model: OpaquePointer, index: Int, count: Int, what: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for e in 0..<count {
            var k: UnsafePointer<CChar>?, v: UnsafePointer<CChar>?
            var kl = 0, vl = 0
            guard mfx_onnx_external_entry(model, Int64(index), Int32(e), &k, &kl, &v, &vl) == MFX_ONNX_OK else { continue }
            let kb = bytes(k, kl), vb = bytes(v, vl)
            guard !kb.contains(0), !vb.contains(0), let key = String(validating: kb, as: UTF8.self),
                  let value = String(validating: vb, as: UTF8.self) else {
                throw MixflowError.format("\(what): external_data entry \(e) is not NUL-free UTF-8")
            }
            guard out[key] == nil else { throw MixflowError.format("\(what): external_data key \"\(key)\" appears twice") }
            out[key] = value
        }
        return out
    }
}

// MARK: - External data: locations must stay inside the model's folder

struct ExternalResolver {
    let modelPath: String
    let folder: String
    /// location -> canonical path and size, so 300 tensors in one file cost one realpath.
    var cache: [String: (path: String, size: Int64)] = [:]

    init(modelPath: String, folder: String) {
        self.modelPath = modelPath
        self.folder = folder
    }

    /// Checks the entries of one tensor against its element count and the data file.
    mutating func validate(_ entries: [String: String], tensor: String, count: Int64,
                           elementSize: Int64) throws -> ExternalData {
        let what = "\(modelPath): initializer \"\(tensor)\""
        guard let location = entries["location"] else {
            throw MixflowError.format("\(what) is EXTERNAL but has no \"location\"")
        }
        let offset = try Self.number(entries["offset"] ?? "0", key: "offset", what: what)
        let declared = try entries["length"].map { try Self.number($0, key: "length", what: what) }
        let file = try resolve(location, tensor: tensor)
        let needed: Int64
        if elementSize > 0 {
            needed = count * elementSize
            if let declared, declared != needed {
                throw MixflowError.format("\(what): external length is \(declared) bytes, but its dims need \(needed)")
            }
        } else {
            // A type we cannot convert: only its declared span is checked (it is never read).
            needed = declared ?? 0
        }
        guard offset <= file.size, needed <= file.size - offset else {
            throw MixflowError.format("\(what): external data [byte offset \(offset), \(needed) bytes] runs past the end "
                                      + "of \(location) (\(file.size) bytes)")
        }
        return ExternalData(location: location, path: file.path, offset: offset, length: needed)
    }

    /// A strict non-negative decimal (no sign, no spaces, no hex): anything else is a hostile value.
    static func number(_ text: String, key: String, what: String) throws -> Int64 {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int64(text) else {
            throw MixflowError.format("\(what): external \(key) \"\(text)\" is not a non-negative byte count")
        }
        return v
    }

    /// Resolves `location` to a canonical regular file inside `folder`.
    mutating func resolve(_ location: String, tensor: String) throws -> (path: String, size: Int64) {
        if let hit = cache[location] { return hit }
        let file = try open(location, tensor: tensor)
        cache[location] = (file.path, file.size)
        return (file.path, file.size)
    }

    func open(_ location: String, tensor: String) throws -> ReadableFile {
        let what = "\(modelPath): initializer \"\(tensor)\": external location \"\(location)\""
        guard !location.isEmpty else { throw MixflowError.format("\(what) is empty") }
        guard !location.hasPrefix("/") && !location.hasPrefix("\\") else {
            throw MixflowError.format("\(what) is absolute; it must be relative to the model's folder")
        }
        // Windows-written files may use backslashes; `..` is refused under either separator.
        let parts = location.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "/" || $0 == "\\" })
        guard !parts.contains("..") else {
            throw MixflowError.format("\(what) contains \"..\"; it must stay inside the model's folder")
        }
        guard let canonical = realPath(folder + "/" + location) else {
            throw MixflowError.io("\(what) cannot be opened: \(errnoMessage())")
        }
        guard canonical.hasPrefix(folder == "/" ? "/" : folder + "/") else {
            throw MixflowError.format("\(what) resolves to \(canonical), outside the model's folder \(folder)")
        }
        do {
            return try ReadableFile(canonical, noFollow: true)
        } catch let e as MixflowError {
            throw MixflowError.io("\(what): \(e.message)")
        }
    }
}
