import MixflowCore
internal import OnnxShim

/// Writes named float32 tensors and metadata as an ONNX model (IR 8, opset 17, a graph with initializers and
/// no nodes), streaming large tensors to one external-data file `<model name>.data` next to the model.
///
/// Tensors are copied out when added (external ones straight to the data file), so a caller can free its
/// buffers immediately and peak memory stays near the inline tensors' size. Both files are written through
/// `AtomicFile.Stream`: the data file is put in place first, the model last, so a crash never leaves a
/// half-written file (at worst a new data file next to the previous model). Nothing is visible before `finish`.
public final class OnnxWriter {
    public let path: String
    /// Tensors of at least this many bytes go to external data; a negative value keeps everything inline.
    public let externalThreshold: Int64
    let modelFile: AtomicFile.Stream
    var dataFile: AtomicFile.Stream?
    var writer: OpaquePointer
    var names: Set<String> = []
    var keys: Set<String> = []
    var finished = false

    /// External tensors start on 64-byte boundaries so a reader may map them with aligned SIMD loads.
    static let alignment: Int64 = 64

    public var dataLocation: String { baseName(path) + ".data" }

    /// - Throws: `.invalidArgument` (empty path), `.io` (folder not writable).
    public init(path: String, externalThreshold: Int64, graphName: String = "mixflow") throws {
        self.path = try checkedPath(path, "path")
        self.externalThreshold = externalThreshold
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
        keys.insert(key)
    }

    /// Adds a float32 tensor named `name` with shape `dims` (every dim > 0; [] is a scalar).
    public func add(_ name: String, dims: [Int64], data: UnsafeBufferPointer<Float>) throws {
        try checkOpen()
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw MixflowError.invalidArgument("tensor name must be non-empty and NUL-free")
        }
        guard !names.contains(name) else { throw MixflowError.invalidArgument("tensor \"\(name)\" was already added") }
        let count = dims.isEmpty ? 1 : try checkedCount(dims, "tensor \"\(name)\" shape")
        guard data.count == count, let base = data.baseAddress else {
            throw MixflowError.invalidArgument("tensor \"\(name)\" has shape \(dims) (\(count) elements), "
                                               + "the buffer holds \(data.count)")
        }
        let bytes = Int64(count) * 4
        var nameCopy = name
        let rc: Int32
        if externalThreshold >= 0 && bytes >= externalThreshold {
            let file = try dataFile ?? AtomicFile.Stream(path: parentFolder(path) + "/" + dataLocation)
            dataFile = file
            let pad = (Self.alignment - file.offset % Self.alignment) % Self.alignment
            if pad > 0 { try file.write([UInt8](repeating: 0, count: Int(pad))) }
            let offset = file.offset
            try file.write(UnsafeRawBufferPointer(start: base, count: Int(bytes)))
            rc = nameCopy.withUTF8 { nb in
                nb.withMemoryRebound(to: CChar.self) { np in
                    dims.withUnsafeBufferPointer { d in
                        mfx_onnx_writer_add_external(writer, np.baseAddress, np.count, d.baseAddress, Int32(dims.count),
                                                     dataLocation, offset, bytes)
                    }
                }
            }
        } else {
            rc = nameCopy.withUTF8 { nb in
                nb.withMemoryRebound(to: CChar.self) { np in
                    dims.withUnsafeBufferPointer { d in
                        mfx_onnx_writer_add_raw(writer, np.baseAddress, np.count, d.baseAddress, Int32(dims.count),
                                                base, Int64(count))
                    }
                }
            }
        }
        try check(rc, "tensor \"\(name)\"")
        names.insert(name)
    }

    /// Serialises the model and atomically puts the data file, then the model, in place.
    /// - Throws: `.format` if the inline part exceeds protobuf's 2 GiB limit (lower the threshold), `.io`.
    public func finish() throws {
        try checkOpen()
        finished = true
        var err = [CChar](repeating: 0, count: 512)
        var size: Int64 = 0
        do {
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
