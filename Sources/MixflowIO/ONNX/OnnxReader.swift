#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MixflowCore
internal import OnnxShim

/// Reads named tensors and metadata from an ONNX model (or a single serialised TensorProto `.pb`), treating
/// the file as hostile: every dim, length, offset and external location is validated when the file is
/// opened, and values are read straight into the caller's buffer (external data with `pread`, no
/// intermediate copy for float32/float16/bfloat16 and 8-bit/16-bit types; float64 and 64-bit integers
/// through a 1 MiB window).
///
/// Thread safety: one reader per thread; the value is immutable after `init` except for its shim handle,
/// which is only read.
public final class OnnxReader {
    public enum Kind { case model, tensorProto }

    public let path: String
    public let tensors: [OnnxTensorInfo]
    /// `metadata_props` in file order, as raw byte strings (keys may repeat in hostile files: first wins on lookup).
    public let metadata: [(key: [UInt8], value: [UInt8])]
    /// Number of graph nodes (0 for a pure tensor file).
    public let numNodes: Int
    let folder: String
    let model: OpaquePointer
    let indexByName: [String: Int]

    /// The largest ONNX file we parse: protobuf's own message limit.
    public static let maxMessageBytes: Int64 = Int64(Int32.max)

    /// Opens and validates `path`.
    /// - Throws: `MixflowError.io` (missing, unreadable, not a regular file), `.format` (not ONNX, truncated,
    ///   inconsistent tensors, bad external references), `.unsupported` (segmented tensors).
    public init(path: String, kind: Kind = .model) throws {
        self.path = try checkedPath(path, "path")
        // External locations are resolved against the canonical folder, so `..` tricks through symlinked
        // parents cannot move the root.
        guard let folder = realPath(parentFolder(path)) else {
            throw MixflowError.io("\(path): cannot resolve its folder: \(errnoMessage())")
        }
        self.folder = folder
        var handle: OpaquePointer?
        var err = [CChar](repeating: 0, count: 512)
        let rc = mfx_onnx_open(path, kind == .model ? Int32(MFX_ONNX_KIND_MODEL) : Int32(MFX_ONNX_KIND_TENSOR),
                               Self.maxMessageBytes, &handle, &err, err.count)
        guard rc == MFX_ONNX_OK, let handle else {
            throw Self.shimError(rc, "\(path): \(String(cString: err))")
        }
        model = handle
        do {
            var resolver = ExternalResolver(modelPath: path, folder: folder)
            var infos: [OnnxTensorInfo] = []
            var names: [String: Int] = [:]
            let n = Int(mfx_onnx_num_tensors(handle))
            infos.reserveCapacity(n)
            for i in 0..<n {
                let info = try Self.validatedTensor(handle, index: i, path: path, resolver: &resolver)
                guard names[info.name] == nil else {
                    throw MixflowError.format("\(path): initializer \"\(info.name)\" appears twice (initializer \(i))")
                }
                names[info.name] = i
                infos.append(info)
            }
            let meta = Self.readMetadata(handle)
            // Before the last property is set: a throwing init that initialised everything would run deinit,
            // closing `handle` a second time.
            try Self.checkSaveID(metadata: meta, tensors: infos, resolver: resolver, path: path)
            tensors = infos
            indexByName = names
            // The save id is the writer's integrity record, not the caller's metadata.
            let idKey = Array(OnnxWriter.saveIDKey.utf8)
            metadata = meta.filter { $0.key != idKey }
            numNodes = Int(mfx_onnx_num_nodes(handle))
        } catch {
            mfx_onnx_close(handle)
            throw error
        }
    }

    deinit { mfx_onnx_close(model) }

    public func index(of name: String) -> Int? { indexByName[name] }

    /// The first metadata value stored under `key`, as bytes.
    public func metadataValue(_ key: String) -> [UInt8]? {
        let k = Array(key.utf8)
        return metadata.first(where: { $0.key == k })?.value
    }

    /// Bytes per element in raw/external storage for types we convert to float32; 0 otherwise.
    public static func elementSize(_ dataType: Int32) -> Int { Int(mfx_onnx_element_size(dataType)) }

    // MARK: - Reading values

    /// Reads tensor `index` into `destination` (exactly `count` floats), converting to float32.
    /// - Throws: `.invalidArgument` (wrong count), `.unsupported` (a type with no float32 conversion),
    ///   `.io`/`.format` (external file changed, vanished or shrank since `init`).
    public func read(_ index: Int, into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(index >= 0 && index < tensors.count, "tensor index out of range")
        let t = tensors[index]
        guard destination.count == t.count else {
            throw MixflowError.invalidArgument("tensor \"\(t.name)\" has \(t.count) elements (dims \(t.dims)), "
                                               + "the buffer holds \(destination.count)")
        }
        try requireConvertible(t)
        let size = Self.elementSize(t.dataType)
        guard t.count > 0, let base = destination.baseAddress else { return }
        try copyData(t, bytes: t.count * size, inline: { mfx_onnx_copy_inline_f32(model, Int64(index), base, Int64(t.count), $0, $1) },
                     external: { file, offset in
            if size <= 4 {
                // Straight into the destination, then widened in place (back to front).
                try file.read(into: UnsafeMutableRawPointer(base), count: t.count * size, at: offset)
                _ = mfx_onnx_convert_inplace_f32(t.dataType, base, Int64(t.count))
            } else {
                let window = 1 << 17  // elements per chunk: 1 MiB of 8-byte values
                let scratch = UnsafeMutableRawPointer.allocate(byteCount: window * size, alignment: 16)
                defer { scratch.deallocate() }
                var done = 0
                while done < t.count {
                    let n = min(window, t.count - done)
                    try file.read(into: scratch, count: n * size, at: offset + Int64(done * size))
                    _ = mfx_onnx_convert_f32(t.dataType, scratch, Int64(n), base + done)
                    done += n
                }
            }
        })
    }

    /// Reads tensor `index` as stored, without conversion: `count × elementSize(dataType)` little-endian bytes
    /// of its own element type (what a converter needs to keep integer tensors exact).
    /// - Throws: `.invalidArgument` (wrong size), `.unsupported` (a type `elementSize` does not know),
    ///   `.io`/`.format` (external file changed, vanished or shrank since `init`).
    public func readStored(_ index: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        precondition(index >= 0 && index < tensors.count, "tensor index out of range")
        let t = tensors[index]
        try requireConvertible(t)
        let size = Self.elementSize(t.dataType)
        guard destination.count == t.count * size else {
            throw MixflowError.invalidArgument("tensor \"\(t.name)\" has \(t.count) elements of \(size) bytes (dims \(t.dims)), "
                                               + "the buffer holds \(destination.count) bytes")
        }
        guard t.count > 0, let base = destination.baseAddress else { return }
        try copyData(t, bytes: destination.count,
                     inline: { mfx_onnx_copy_inline_raw(model, Int64(index), base, Int64(destination.count), $0, $1) },
                     external: { file, offset in try file.read(into: base, count: destination.count, at: offset) })
    }

    /// Reads tensor `name` into a new array (its size is justified by bytes present in the files).
    public func read(_ name: String) throws -> [Float] {
        guard let i = index(of: name) else {
            throw MixflowError.invalidArgument("\(path) has no tensor named \"\(name)\"")
        }
        // Checked before allocating: only convertible tensors have a count the file's bytes vouch for
        // (a raw FLOAT8 tensor's dims are not checked against its data, since it is never read).
        try requireConvertible(tensors[i])
        let n = tensors[i].count
        return try [Float](unsafeUninitializedCapacity: n) { buffer, initialized in
            try read(i, into: buffer)
            initialized = n
        }
    }

    private func requireConvertible(_ t: OnnxTensorInfo) throws {
        guard t.isConvertibleToFloat else {
            throw MixflowError.unsupported("\(path): initializer \"\(t.name)\" has element type "
                                           + "\(OnnxDataType.describe(t.dataType)), which has no float32 conversion")
        }
    }

    /// The one copy of a tensor's `bytes` from where it is stored: `inline` runs the shim's copy of raw/typed data
    /// (given an error buffer and its capacity), `external` reads from the data file at the tensor's offset once
    /// the file is re-opened and checked to still hold the bytes.
    private func copyData(_ t: OnnxTensorInfo, bytes: Int,
                          inline: (UnsafeMutablePointer<CChar>, Int) -> Int32,
                          external: (ReadableFile, Int64) throws -> Void) throws {
        switch t.storage {
        case .empty:
            // Validated in init: only zero-element tensors may be empty.
            throw MixflowError.internal("tensor \"\(t.name)\" has no data")
        case .raw, .typed:
            var err = [CChar](repeating: 0, count: 512)
            let rc = err.withUnsafeMutableBufferPointer { inline($0.baseAddress!, $0.count) }
            guard rc == MFX_ONNX_OK else {
                throw Self.shimError(rc, "\(path): initializer \"\(t.name)\": \(String(cString: err))")
            }
        case .external(let ext):
            // Re-resolve: the folder may have changed since init (a link swapped in); the check must hold at read time.
            let file = try ExternalResolver(modelPath: path, folder: folder).open(ext.location, tensor: t.name)
            guard ext.offset <= file.size, Int64(bytes) <= file.size - ext.offset else {
                throw MixflowError.format("\(path): initializer \"\(t.name)\": \(ext.location) is now \(file.size) bytes, "
                                          + "too short for \(bytes) bytes at byte offset \(ext.offset)")
            }
            try external(file, ext.offset)
        }
    }

    /// A model written by `OnnxWriter` with external data records its save id; each data file it names must
    /// end with the same id, or the two files come from different saves (an interrupted save by an older
    /// version, or files copied from two saves) and the model is refused instead of silently mixed.
    static func checkSaveID(metadata: [(key: [UInt8], value: [UInt8])], tensors: [OnnxTensorInfo],
                            resolver: ExternalResolver, path: String) throws {
        let key = Array(OnnxWriter.saveIDKey.utf8)
        guard let id = metadata.first(where: { $0.key == key }).map({ String(decoding: $0.value, as: UTF8.self) }) else { return }
        var checked: Set<String> = []
        for t in tensors {
            guard case .external(let ext) = t.storage, checked.insert(ext.location).inserted else { continue }
            let found = try OnnxWriter.trailerID(of: try resolver.open(ext.location, tensor: t.name))
            guard found == id else {
                throw MixflowError.format("\(path): its data file \(ext.location) belongs to another save (the model's "
                    + "save id is \(id), the data file's \(found ?? "missing")): the two files do not form one save")
            }
        }
    }

    static func shimError(_ rc: Int32, _ message: String) -> MixflowError {
        switch rc {
        case Int32(MFX_ONNX_ERR_IO): return .io(message)
        case Int32(MFX_ONNX_ERR_FORMAT): return .format(message)
        case Int32(MFX_ONNX_ERR_NOMEM): return .outOfMemory(message)
        case Int32(MFX_ONNX_ERR_UNSUPPORTED): return .unsupported(message)
        default: return .internal(message)
        }
    }

    static func readMetadata(_ model: OpaquePointer) -> [(key: [UInt8], value: [UInt8])] {
        var out: [(key: [UInt8], value: [UInt8])] = []
        for i in 0..<mfx_onnx_num_metadata(model) {
            var k: UnsafePointer<CChar>?, v: UnsafePointer<CChar>?
            var kl = 0, vl = 0
            guard mfx_onnx_metadata_at(model, i, &k, &kl, &v, &vl) == MFX_ONNX_OK else { continue }
            out.append((bytes(k, kl), bytes(v, vl)))
        }
        return out
    }

    static func bytes(_ p: UnsafePointer<CChar>?, _ n: Int) -> [UInt8] {
        guard let p, n > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}
