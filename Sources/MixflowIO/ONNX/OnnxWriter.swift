#if canImport(Glibc)
import Glibc
#endif
import MixflowCore
internal import OnnxShim

/// Writes named float32 tensors and metadata as an ONNX model (IR 8, opset 17, a graph with initializers and
/// no nodes), streaming large tensors to one external-data file next to the model.
///
/// Tensors are copied out when added (external ones straight to the data file), so a caller can free its
/// buffers immediately and peak memory stays near the inline tensors' size. Nothing is visible before `finish`.
///
/// A model and its data file are one save even though they are two files (a kill between their two renames
/// must neither mix two saves nor lose the previous one):
/// - the data file never replaces the one the current model uses: it is `<model name>.data` when no such file
///   exists, else `<model name>.<save id>.data`; it is put in place first, the model (which names it) last,
///   then the data files of earlier saves are removed. A kill at any point leaves the previous pair loadable
///   (or the new one), and the next save removes what the kill left;
/// - the data file ends with a trailer `mixflow-save-id:<16 hex digits>` and the model records the same id
///   as metadata `mixflow.save_id`; `OnnxReader` refuses a pair whose ids differ (files copied from two saves).
public final class OnnxWriter {
    public let path: String
    /// Tensors of at least this many bytes go to external data; a negative value keeps everything inline.
    public let externalThreshold: Int64
    /// 16 hex digits, unique per save.
    public let saveID: String
    /// The data file's name (relative to the model's folder), chosen when the first external tensor arrives.
    public private(set) var dataLocation: String?
    let modelFile: AtomicFile.Stream
    var dataFile: AtomicFile.Stream?
    var writer: OpaquePointer
    var names: Set<String> = []
    var keys: Set<String> = []
    var finished = false

    /// External tensors start on 64-byte boundaries so a reader may map them with aligned SIMD loads.
    static let alignment: Int64 = 64
    /// The metadata key holding the save id, and the data file's trailer (prefix + the id).
    public static let saveIDKey = "mixflow.save_id"
    static let trailerPrefix = Array("mixflow-save-id:".utf8)
    static let trailerLength = trailerPrefix.count + 16

    /// - Throws: `.invalidArgument` (empty path), `.io` (folder not writable).
    public init(path: String, externalThreshold: Int64, graphName: String = "mixflow") throws {
        self.path = try checkedPath(path, "path")
        self.externalThreshold = externalThreshold
        let id = UInt64.random(in: 0...UInt64.max)
        saveID = (0..<16).map { k in String((id >> (60 - 4 * UInt64(k))) & 0xF, radix: 16) }.joined()
        modelFile = try AtomicFile.Stream(path: path)
        guard let w = mfx_onnx_writer_create(graphName) else { throw MixflowError.outOfMemory("\(path): writer") }
        writer = w
    }

    deinit { mfx_onnx_writer_free(writer) }

    /// Adds metadata `key` = `value` (`metadata_props`). Keys must be non-empty and unique.
    public func setMetadata(_ key: String, _ value: String) throws {
        try checkOpen()
        guard !key.isEmpty, !key.utf8.contains(0) else {
            throw MixflowError.invalidArgument("metadata key must be non-empty and NUL-free")
        }
        guard !keys.contains(key) else { throw MixflowError.invalidArgument("metadata key \"\(key)\" was already set") }
        guard key != Self.saveIDKey else { throw MixflowError.invalidArgument("metadata key \"\(key)\" is set by the writer") }
        try setMetadataUnchecked(key, value)
        keys.insert(key)
    }

    private func setMetadataUnchecked(_ key: String, _ value: String) throws {
        var k = key, v = value
        let rc = k.withUTF8 { kb in
            v.withUTF8 { vb in
                kb.withMemoryRebound(to: CChar.self) { kp in
                    vb.withMemoryRebound(to: CChar.self) { vp in
                        mfx_onnx_writer_add_metadata(writer, kp.baseAddress, kp.count, vp.baseAddress, vp.count)
                    }
                }
            }
        }
        try check(rc, "metadata \"\(key)\"")
    }

    /// Adds a float32 tensor named `name` with shape `dims` (every dim > 0; [] is a scalar).
    public func add(_ name: String, dims: [Int64], data: UnsafeBufferPointer<Float>) throws {
        try add(name, dims: dims, dataType: OnnxDataType.float, bytes: UnsafeRawBufferPointer(data), allowEmpty: false)
    }

    /// Adds a tensor of ONNX element type `dataType` (any type `OnnxReader.elementSize` knows: float16/32/64,
    /// bfloat16, 8- to 64-bit integers, bool) whose values are `bytes`, little-endian, C order. With `allowEmpty`,
    /// dims of 0 (an empty tensor, as converted state dicts may hold) are allowed.
    public func add(_ name: String, dims: [Int64], dataType: Int32, bytes data: UnsafeRawBufferPointer,
                    allowEmpty: Bool = true) throws {
        try checkOpen()
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw MixflowError.invalidArgument("tensor name must be non-empty and NUL-free")
        }
        guard !names.contains(name) else { throw MixflowError.invalidArgument("tensor \"\(name)\" was already added") }
        let size = OnnxReader.elementSize(dataType)
        guard size > 0 else {
            throw MixflowError.invalidArgument("tensor \"\(name)\": element type \(OnnxDataType.describe(dataType)) cannot be written")
        }
        let count = dims.isEmpty ? 1 : try checkedCount(dims, "tensor \"\(name)\" shape", allowEmpty: allowEmpty)
        guard count <= Int.max / size, data.count == count * size else {
            let held = data.count % size == 0 ? "\(data.count / size)" : "\(data.count) bytes"
            throw MixflowError.invalidArgument("tensor \"\(name)\" has shape \(dims) (\(count) elements), the buffer holds \(held)")
        }
        let bytes = Int64(data.count)
        var nameCopy = name
        let rc: Int32
        if externalThreshold >= 0 && bytes >= externalThreshold {
            let file = try dataFile ?? openDataFile()
            dataFile = file
            let pad = (Self.alignment - file.offset % Self.alignment) % Self.alignment
            if pad > 0 { try file.write([UInt8](repeating: 0, count: Int(pad))) }
            let offset = file.offset
            try file.write(data)
            rc = nameCopy.withUTF8 { nb in
                nb.withMemoryRebound(to: CChar.self) { np in
                    dims.withUnsafeBufferPointer { d in
                        mfx_onnx_writer_add_external(writer, np.baseAddress, np.count, d.baseAddress, Int32(dims.count),
                                                     dataType, dataLocation!, offset, bytes)
                    }
                }
            }
        } else {
            rc = nameCopy.withUTF8 { nb in
                nb.withMemoryRebound(to: CChar.self) { np in
                    dims.withUnsafeBufferPointer { d in
                        mfx_onnx_writer_add_raw(writer, np.baseAddress, np.count, d.baseAddress, Int32(dims.count),
                                                dataType, data.baseAddress, bytes)
                    }
                }
            }
        }
        try check(rc, "tensor \"\(name)\"")
        names.insert(name)
    }

    /// Serialises the model, puts the data file, then the model, in place atomically, and removes the data
    /// files of earlier saves of this model.
    /// - Throws: `.format` if the inline part exceeds protobuf's 2 GiB limit (lower the threshold), `.io`.
    public func finish() throws {
        try checkOpen()
        finished = true
        var err = [CChar](repeating: 0, count: 512)
        var size: Int64 = 0
        do {
            if let dataFile {
                try dataFile.write(Self.trailerPrefix + Array(saveID.utf8))
                try setMetadataUnchecked(Self.saveIDKey, saveID)
            }
            try check(mfx_onnx_writer_size(writer, &size, &err, err.count), String(cString: err))
            var bytes = [UInt8](repeating: 0, count: Int(size))
            let rc = bytes.withUnsafeMutableBytes { mfx_onnx_writer_serialize(writer, $0.baseAddress, size, &err, err.count) }
            try check(rc, String(cString: err))
            try modelFile.write(bytes)
            try dataFile?.commit()
            try modelFile.commit()
        } catch {
            dataFile?.discard()
            modelFile.discard()
            throw error
        }
        removeEarlierDataFiles()
    }

    /// The data file of this save: a name the current model at `path` does not use (see the type's comment).
    private func openDataFile() throws -> AtomicFile.Stream {
        let folder = parentFolder(path), plain = baseName(path) + ".data"
        let location = access(folder + "/" + plain, F_OK) != 0 ? plain : baseName(path) + ".\(saveID).data"
        let file = try AtomicFile.Stream(path: folder + "/" + location, replaceExisting: false)
        dataLocation = location
        return file
    }

    /// Removes `<name>.data` and `<name>.<16 hex>.data` next to the model, except this save's (best effort:
    /// what a kill leaves here is removed by the next save).
    private func removeEarlierDataFiles() {
        let folder = parentFolder(path), base = baseName(path)
        AtomicFile.forEachEntry(in: folder) { name in
            guard name != dataLocation else { return }
            let id = name.utf8.dropFirst(base.utf8.count + 1).prefix(16)
            let isSaveID = name.hasPrefix(base + ".") && name.hasSuffix(".data") && name.utf8.count == base.utf8.count + 22
                && id.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
            if name == base + ".data" || isSaveID { unlink(folder + "/" + name) }
        }
    }

    /// Reads the save id recorded in a data file's trailer, or nil when it has none.
    static func trailerID(of file: ReadableFile) throws -> String? {
        guard file.size >= Int64(trailerLength) else { return nil }
        var tail = [UInt8](repeating: 0, count: trailerLength)
        try tail.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: trailerLength, at: file.size - Int64(trailerLength)) }
        guard tail.starts(with: trailerPrefix) else { return nil }
        return String(decoding: tail[trailerPrefix.count...], as: UTF8.self)
    }

    /// Abandons the write; nothing appears on disk. Called implicitly when an unfinished writer is released.
    public func discard() {
        finished = true
        dataFile?.discard()
        modelFile.discard()
    }

    private func checkOpen() throws {
        guard !finished else { throw MixflowError.invalidArgument("\(path): the writer was already finished or discarded") }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc != MFX_ONNX_OK else { return }
        throw OnnxReader.shimError(rc, "\(path): \(what)")
    }
}
