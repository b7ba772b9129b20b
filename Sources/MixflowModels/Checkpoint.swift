import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

/// A training checkpoint: text metadata plus named float32 sections (parameters, EMA, AdamW moments).
///
/// File layout (little-endian), designed to be validated before anything is allocated:
/// ```
/// "MIXFLOW-CKPT\n"  (13 bytes)   magic
/// UInt32 version = 1
/// UInt32 metadata length M (≤ 1 MiB), then M bytes of UTF-8 "key=value\n" lines
/// UInt32 section count S (≤ 64); per section: UInt32 name length (≤ 256), name, UInt64 element count
/// the sections' float32 data, in order
/// UInt64 hash of every preceding byte (FNV-1a over 64-bit words, see `FNV1a`)
/// ```
/// The total size must equal what the header announces, so truncation and appended garbage are caught
/// before the data are read; the hash catches corruption inside the data.
public struct Checkpoint: Equatable {
    public var metadata: [(key: String, value: String)]
    public var sections: [(name: String, values: [Float])]

    public init(metadata: [(key: String, value: String)] = [], sections: [(name: String, values: [Float])] = []) {
        self.metadata = metadata
        self.sections = sections
    }

    public static func == (a: Checkpoint, b: Checkpoint) -> Bool {
        a.metadata.elementsEqual(b.metadata, by: { $0 == $1 })
            && a.sections.elementsEqual(b.sections, by: { x, y in
                // Bitwise, so NaN payloads and signed zeros count.
                x.name == y.name && x.values.withUnsafeBytes { bx in y.values.withUnsafeBytes { by in bx.elementsEqual(by) } }
            })
    }

    public func value(_ key: String) -> String? { metadata.first(where: { $0.key == key })?.value }
    public func section(_ name: String) -> [Float]? { sections.first(where: { $0.name == name })?.values }

    static let magic = Array("MIXFLOW-CKPT\n".utf8)
    static let version: UInt32 = 1
    static let maxMetadata = 1 << 20
    static let maxSections = 64

    // MARK: - Writing

    /// Writes atomically (temporary file, fsync, rename): a crash never corrupts an existing checkpoint.
    public func write(to path: String) throws {
        var keys = Set<String>()
        for (k, v) in metadata {
            guard !k.contains("="), !k.contains("\n"), !v.contains("\n") else {
                throw MixflowError.invalidArgument("checkpoint metadata \"\(k)\" may not contain '=' in the key or newlines")
            }
            guard keys.insert(k).inserted else {
                throw MixflowError.invalidArgument("checkpoint metadata key \"\(k)\" appears twice; a reader could not tell which value holds")
            }
        }
        var text = ""
        for (k, v) in metadata { text += "\(k)=\(v)\n" }
        var header = [UInt8]()
        header += Self.magic
        append(&header, Self.version)
        append(&header, UInt32(text.utf8.count))
        header += Array(text.utf8)
        append(&header, UInt32(sections.count))
        for (name, values) in sections {
            append(&header, UInt32(name.utf8.count))
            header += Array(name.utf8)
            append(&header, UInt64(values.count))
        }
        var hash = FNV1a()
        try AtomicFile.write(to: path) { w in
            try header.withUnsafeBytes { hash.add($0); try w.write($0) }
            for (_, values) in sections {
                try values.withUnsafeBytes { hash.add($0); try w.write($0) }
            }
            try w.write(littleEndian: hash.value)
        }
    }

    private func append<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }

    // MARK: - Reading

    /// Reads and fully validates a checkpoint; every problem is a `.format` error naming the byte offset.
    public static func read(from path: String) throws -> Checkpoint {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MixflowError.io("\(path): cannot open: \(errnoString())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw MixflowError.io("\(path): not a regular file")
        }
        var reader = Reader(fd: fd, path: path, size: Int(st.st_size))
        let magic = try reader.bytes(Self.magic.count)
        guard magic == Self.magic else { throw MixflowError.format("\(path): not a libmixflow checkpoint (bad magic at byte 0)") }
        let version: UInt32 = try reader.integer()
        guard version == Self.version else {
            throw MixflowError.format("\(path): checkpoint version \(version) is not supported (this library reads \(Self.version))")
        }
        let metadataLength = Int(try reader.integer() as UInt32)
        guard metadataLength <= maxMetadata else {
            throw MixflowError.format("\(path): metadata length \(metadataLength) at byte \(reader.offset - 4) exceeds \(maxMetadata)")
        }
        let text = try reader.bytes(metadataLength)
        guard let string = String(validating: text, as: UTF8.self) else {
            throw MixflowError.format("\(path): metadata is not UTF-8")
        }
        var metadata: [(key: String, value: String)] = []
        var keys = Set<String>()
        for line in string.split(separator: "\n", omittingEmptySubsequences: true) {
            guard let eq = line.firstIndex(of: "=") else { throw MixflowError.format("\(path): metadata line \"\(line)\" has no '='") }
            let key = String(line[..<eq])
            // One value per key: readers look keys up first-wins or last-wins, and must never disagree.
            guard keys.insert(key).inserted else { throw MixflowError.format("\(path): metadata key \"\(key)\" appears twice") }
            metadata.append((key, String(line[line.index(after: eq)...])))
        }
        let count = Int(try reader.integer() as UInt32)
        guard count <= maxSections else { throw MixflowError.format("\(path): \(count) sections exceeds \(maxSections)") }
        var shapes: [(String, Int)] = []
        var total = 0
        for _ in 0..<count {
            let nameLength = Int(try reader.integer() as UInt32)
            guard nameLength <= 256 else { throw MixflowError.format("\(path): section name length \(nameLength) at byte \(reader.offset - 4) exceeds 256") }
            guard let name = String(validating: try reader.bytes(nameLength), as: UTF8.self) else {
                throw MixflowError.format("\(path): section name is not UTF-8 at byte \(reader.offset - nameLength)")
            }
            let n: UInt64 = try reader.integer()
            // The data must fit in what is left of the file: checked before any allocation.
            guard n <= UInt64(reader.size / 4), total + Int(n) * 4 <= reader.size else {
                throw MixflowError.format("\(path): section \"\(name)\" announces \(n) floats, more than the file holds")
            }
            total += Int(n) * 4
            shapes.append((name, Int(n)))
        }
        guard reader.offset + total + 8 == reader.size else {
            throw MixflowError.format("\(path): file is \(reader.size) bytes but its header announces \(reader.offset + total + 8) (truncated or extended)")
        }
        var sections: [(name: String, values: [Float])] = []
        for (name, n) in shapes {
            var values = [Float](repeating: 0, count: n)
            try values.withUnsafeMutableBytes { try reader.read(into: $0) }
            sections.append((name, values))
        }
        let stored: UInt64 = try reader.integer()
        guard stored == reader.hashBeforeLast else {
            throw MixflowError.format("\(path): checksum mismatch (the file is corrupt)")
        }
        return Checkpoint(metadata: metadata, sections: sections)
    }
}

/// FNV-1a's mixing step over the stream's 64-bit little-endian words (the last 0–7 bytes one by one):
/// a dependency-free corruption check at memory speed, not a cryptographic hash. Streaming: the value
/// depends only on the bytes, not on how they are split across `add` calls.
package struct FNV1a {
    private var h: UInt64 = 0xCBF2_9CE4_8422_2325
    private var pending: UInt64 = 0
    private var pendingCount = 0
    static let prime: UInt64 = 0x0000_0100_0000_01B3

    package init() {}

    package mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var i = 0
        let n = bytes.count
        // Complete a partial word first.
        while pendingCount > 0 && pendingCount < 8 && i < n {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingCount))
            pendingCount += 1
            i += 1
        }
        if pendingCount == 8 { h = (h ^ pending) &* Self.prime; pending = 0; pendingCount = 0 }
        while i + 8 <= n {
            h = (h ^ UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* Self.prime
            i += 8
        }
        while i < n {
            pending |= UInt64(bytes[i]) << (8 * UInt64(pendingCount))
            pendingCount += 1
            i += 1
        }
    }

    /// The hash of everything added so far (the pending tail mixed byte by byte).
    package var value: UInt64 {
        var v = h
        for k in 0..<pendingCount { v = (v ^ ((pending >> (8 * UInt64(k))) & 0xFF)) &* Self.prime }
        return v
    }
}

/// Bounds-checked sequential reads with pread; hashes everything it reads.
struct Reader {
    let fd: Int32
    let path: String
    let size: Int
    var offset = 0
    var hash = FNV1a()
    var hashBeforeLast: UInt64 = 0

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count <= size - offset else {
            throw MixflowError.format("\(path): truncated: needed \(buffer.count) bytes at byte \(offset), file has \(size)")
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw MixflowError.io("\(path): read failed at byte \(offset + done): \(errnoString())") }
            done += n
        }
        hashBeforeLast = hash.value
        hash.add(UnsafeRawBufferPointer(buffer))
        offset += buffer.count
    }

    mutating func bytes(_ n: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        try out.withUnsafeMutableBytes { try read(into: $0) }
        return out
    }

    mutating func integer<T: FixedWidthInteger>() throws -> T {
        var v = T.zero
        try withUnsafeMutableBytes(of: &v) { try read(into: $0) }
        return T(littleEndian: v)
    }
}
