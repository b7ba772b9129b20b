import MixflowCore

/// A minimal writer of numpy `.npz` archives holding one uint8 array `arr_0` (the ADM evaluation suite's
/// sample format: [N, H, W, C] uint8). The archive is a stored (uncompressed) zip with Zip64 records, as
/// `numpy.savez` writes it, so arrays beyond 4 GiB (50k 256-px images are 9.8 GB) are valid.
///
/// .npy v1.0: magic `\x93NUMPY`, version 1 0, header length (uint16 LE), then the header dict
/// `{'descr': '|u1', 'fortran_order': False, 'shape': (...), }` padded with spaces and a final newline so that
/// the data starts at a multiple of 64 bytes.
public enum NPZWriter {
    /// The .npy v1.0 header of a C-order array; `descr` is numpy's type string ('|u1' uint8, '<f4' float32, '<i4' int32).
    public static func npyHeader(shape: [Int], descr: String = "|u1") -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        let fixed = 10, total = ((fixed + dict.utf8.count + 1 + 63) / 64) * 64
        dict += String(repeating: " ", count: total - fixed - dict.utf8.count - 1) + "\n"
        let len = dict.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(len & 0xFF), UInt8(len >> 8)] + Array(dict.utf8)
    }

    /// Writes `arr_0` with the given shape from `count` bytes produced chunk by chunk by `fill`
    /// (`fill(offset, buffer)` fills the buffer with bytes [offset, offset + buffer.count)).
    /// The bytes are produced twice (the CRC-32 in the local header precedes the data, and the atomic stream
    /// writes sequentially): once for the checksum, once for the file.
    public static func write(path: String, shape: [Int], fill: (Int, UnsafeMutableBufferPointer<UInt8>) throws -> Void) throws {
        let count = shape.reduce(1, *)
        let name = Array("arr_0.npy".utf8)
        let header = npyHeader(shape: shape)
        let size = UInt64(header.count + count)
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: min(chunk, max(count, 1)))
        func forEachChunk(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
            var done = 0
            while done < count {
                let n = min(chunk, count - done)
                try buffer.withUnsafeMutableBufferPointer { try fill(done, UnsafeMutableBufferPointer(rebasing: $0[0..<n])) }
                try buffer.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<n])) }
                done += n
            }
        }
        var crc = CRC32()
        crc.update(header)
        try forEachChunk { crc.update($0) }
        let file = try AtomicFile.Stream(path: path)
        // Local file header with a Zip64 extra field (sizes in the extra, 0xFFFFFFFF in the fixed fields).
        var local: [UInt8] = le32(0x0403_4B50) + le16(45) + le16(0) + le16(0) + le16(0) + le16(0x21)
        local += le32(crc.value) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(name.count) + le16(20) + name
        local += le16(0x0001) + le16(16) + le64(size) + le64(size)
        try file.write(local)
        try file.write(header)
        try forEachChunk { try file.write(UnsafeRawBufferPointer($0)) }
        let centralOffset = UInt64(file.offset)
        var central: [UInt8] = le32(0x0201_4B50) + le16(45) + le16(45) + le16(0) + le16(0) + le16(0) + le16(0x21)
        central += le32(crc.value) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(name.count) + le16(28) + le16(0)
        central += le16(0) + le16(0) + le32(0o100644 << 16) + le32(0xFFFF_FFFF) + name
        central += le16(0x0001) + le16(24) + le64(size) + le64(size) + le64(0)
        try file.write(central)
        let zip64End = UInt64(file.offset)
        var tail: [UInt8] = le32(0x0606_4B50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0) + le64(1) + le64(1)
        tail += le64(UInt64(central.count)) + le64(centralOffset)
        tail += le32(0x0706_4B50) + le32(0) + le64(zip64End) + le32(1)
        tail += le32(0x0605_4B50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0)
        try file.write(tail)
        try file.commit()
    }

    /// Writes one float32 (or, below, int32) array as a plain `.npy` file (C order, the machine's little-endian
    /// bytes), atomically.
    public static func writeNPY(path: String, shape: [Int], values: [Float]) throws {
        try writeNPY(path: path, shape: shape, descr: "<f4", values: values)
    }

    public static func writeNPY(path: String, shape: [Int], values: [Int32]) throws {
        try writeNPY(path: path, shape: shape, descr: "<i4", values: values)
    }

    static func writeNPY<T>(path: String, shape: [Int], descr: String, values: [T]) throws {
        guard shape.reduce(1, *) == values.count else {
            throw MixflowError.invalidArgument("shape \(shape) does not match \(values.count) values")
        }
        let header = npyHeader(shape: shape, descr: descr)
        try AtomicFile.write(to: path) { w in
            try header.withUnsafeBytes { try w.write($0) }
            try values.withUnsafeBytes { try w.write($0) }
        }
    }

    static func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    static func le32(_ v: Int) -> [UInt8] { le32(UInt32(truncatingIfNeeded: v)) }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip requires.
public struct CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    var state: UInt32 = 0xFFFF_FFFF
    public init() {}
    public var value: UInt32 { state ^ 0xFFFF_FFFF }
    public mutating func update(_ bytes: UnsafeBufferPointer<UInt8>) {
        var c = state
        Self.table.withUnsafeBufferPointer { t in for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) } }
        state = c
    }
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { update($0) } }
}
