import MixflowCore

/// Element types of the IDX format (LeCun's MNIST container): the third byte of the magic number.
public enum IDXType: UInt8, Sendable, CaseIterable {
    case uint8 = 0x08
    case int8 = 0x09
    case int16 = 0x0B
    case int32 = 0x0C
    case float32 = 0x0D
    case float64 = 0x0E

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    public var isInteger: Bool { self != .float32 && self != .float64 }
}

/// How `readFloat` maps stored values to float32.
public enum PixelScaling: Int32, Sendable {
    /// The stored value as a float (any type).
    case none = 0
    /// uint8 only: `x / 127.5 - 1`, so 0 → -1 and 255 → 1 (the range flow-matching models are trained on).
    case symmetric = 1
    /// uint8 only: `x / 255`, so 0 → 0 and 255 → 1.
    case unit = 2
}

/// An IDX array read fully into memory and validated.
///
/// Layout: two zero bytes, the type byte, the number of dimensions (1...255), then one big-endian UInt32
/// per dimension, then the elements, big-endian, row-major. The file may be gzip-compressed (detected from
/// its first two bytes, 1f 8b). Every inconsistency (wrong magic, a zero or overflowing dimension, a
/// payload longer or shorter than the dimensions say, corrupt gzip) throws `MixflowError.format` with the
/// path and the byte offset, and nothing is allocated from a size the file claims before that size has
/// been checked against the real file.
public final class IDXArray {
    public let name: String
    public let type: IDXType
    public let shape: [Int]
    /// Number of elements (the product of `shape`).
    public let count: Int
    /// The elements exactly as stored (big-endian).
    let payload: [UInt8]

    /// Reads and validates an IDX file (plain or .gz).
    /// - Throws: `MixflowError.io` when the file cannot be read, `.format` when its contents are invalid.
    public convenience init(path: String) throws {
        let bytes = try readWholeFile(path)
        try self.init(bytes: bytes, name: path)
    }

    /// Parses IDX bytes held in memory (plain or gzip); `name` is used in error messages.
    public init(bytes: [UInt8], name: String) throws {
        self.name = name
        let header: Header
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            (header, payload) = try Gzip.inflateIDX(bytes, name: name)
        } else {
            header = try Header.parse(prefix: bytes, name: name, sourceLength: bytes.count, compressed: false)
            let end = header.length + header.payloadBytes
            guard bytes.count == end else {
                throw MixflowError.format("\(name): dims \(header.shape) need \(end) bytes but the file has \(bytes.count)"
                    + (bytes.count < end ? " (truncated at byte offset \(bytes.count))" : " (\(bytes.count - end) extra bytes from byte offset \(end))"))
            }
            payload = Array(bytes[header.length..<end])
        }
        type = header.type
        shape = header.shape
        count = header.count
    }

    // MARK: - Conversions (all produce native-endian data)

    /// Copies the elements, converted to native endianness, into `out` (`count * type.size` bytes).
    public func readRaw(into out: UnsafeMutableRawPointer) {
        payload.withUnsafeBytes { src in
            let s = src.baseAddress!
            switch type.size {
            case 1: out.copyMemory(from: s, byteCount: count)
            case 2: for i in 0..<count { out.storeBytes(of: UInt16(bigEndian: s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)), toByteOffset: 2 * i, as: UInt16.self) }
            case 4: for i in 0..<count { out.storeBytes(of: UInt32(bigEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)), toByteOffset: 4 * i, as: UInt32.self) }
            default: for i in 0..<count { out.storeBytes(of: UInt64(bigEndian: s.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)), toByteOffset: 8 * i, as: UInt64.self) }
            }
        }
    }

    /// Writes `count` floats: the values scaled as `scaling` says (uint8 images to [-1, 1] or [0, 1]).
    /// - Throws: `MixflowError.invalidArgument` when a scaling other than `.none` is asked of a non-uint8 array.
    public func readFloat(into out: UnsafeMutablePointer<Float>, scaling: PixelScaling) throws {
        if scaling != .none && type != .uint8 {
            throw MixflowError.invalidArgument("scaling \(scaling) needs uint8 data, but \(name) holds \(type)")
        }
        if type == .uint8 {
            // A 256-entry table makes the mapping exact and identical to the documented formula.
            var table = [Float](repeating: 0, count: 256)
            for v in 0..<256 {
                switch scaling {
                case .none: table[v] = Float(v)
                case .symmetric: table[v] = Float(v) / 127.5 - 1
                case .unit: table[v] = Float(v) / 255
                }
            }
            payload.withUnsafeBufferPointer { p in
                table.withUnsafeBufferPointer { t in for i in 0..<count { out[i] = t[Int(p[i])] } }
            }
            return
        }
        try withNative { raw in
            for i in 0..<count {
                switch type {
                case .int8: out[i] = Float(raw.load(fromByteOffset: i, as: Int8.self))
                case .int16: out[i] = Float(raw.load(fromByteOffset: 2 * i, as: Int16.self))
                case .int32: out[i] = Float(raw.load(fromByteOffset: 4 * i, as: Int32.self))
                case .float32: out[i] = raw.load(fromByteOffset: 4 * i, as: Float.self)
                case .float64: out[i] = Float(raw.load(fromByteOffset: 8 * i, as: Double.self))
                case .uint8: break
                }
            }
        }
    }

    /// Writes `count` int32 values (labels). Only integer types convert.
    /// - Throws: `MixflowError.invalidArgument` for float32/float64 arrays.
    public func readInt32(into out: UnsafeMutablePointer<Int32>) throws {
        guard type.isInteger else {
            throw MixflowError.invalidArgument("\(name) holds \(type), not integers; read it as float instead")
        }
        try withNative { raw in
            for i in 0..<count {
                switch type {
                case .uint8: out[i] = Int32(raw.load(fromByteOffset: i, as: UInt8.self))
                case .int8: out[i] = Int32(raw.load(fromByteOffset: i, as: Int8.self))
                case .int16: out[i] = Int32(raw.load(fromByteOffset: 2 * i, as: Int16.self))
                default: out[i] = raw.load(fromByteOffset: 4 * i, as: Int32.self)
                }
            }
        }
    }

    private func withNative(_ body: (UnsafeRawPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * type.size), alignment: 8)
        defer { buffer.deallocate() }
        readRaw(into: buffer)
        try body(UnsafeRawPointer(buffer))
    }
}

// MARK: - Header

struct IDXHeader {
    var type: IDXType
    var shape: [Int]
    var count: Int
    /// Header length in bytes: 4 + 4 * ndim.
    var length: Int
    var payloadBytes: Int
}

extension IDXArray {
    typealias Header = IDXHeader
}

extension IDXHeader {
    /// The header length announced by the first 4 bytes (call with at least 4 bytes).
    static func length(magic: ArraySlice<UInt8>) -> Int { 4 + 4 * Int(magic[magic.startIndex + 3]) }

    /// Parses and validates the header at the start of `prefix`. `sourceLength` is the length of the file
    /// (decompressed length bound for gzip) used in messages; offsets are into the decompressed stream.
    static func parse(prefix: [UInt8], name: String, sourceLength: Int, compressed: Bool) throws -> IDXHeader {
        let what = compressed ? "decompressed byte offset" : "byte offset"
        guard prefix.count >= 4 else {
            throw MixflowError.format("\(name): truncated at \(what) \(prefix.count): the IDX magic needs 4 bytes")
        }
        guard prefix[0] == 0, prefix[1] == 0 else {
            throw MixflowError.format("\(name): bad IDX magic at \(what) 0: expected 00 00 <type> <ndim>, got "
                + prefix[0..<4].map { hex($0) }.joined(separator: " "))
        }
        guard let type = IDXType(rawValue: prefix[2]) else {
            throw MixflowError.format("\(name): unknown IDX element type 0x\(hex(prefix[2])) at \(what) 2; "
                + "expected 08 (uint8), 09, 0B, 0C, 0D or 0E")
        }
        let ndim = Int(prefix[3])
        guard ndim >= 1 else { throw MixflowError.format("\(name): IDX ndim is 0 at \(what) 3; expected 1...255") }
        let length = 4 + 4 * ndim
        guard prefix.count >= length else {
            throw MixflowError.format("\(name): truncated at \(what) \(prefix.count): \(ndim) dims need a \(length)-byte header")
        }
        var shape: [Int] = []
        var count = 1
        for k in 0..<ndim {
            let o = 4 + 4 * k
            let d = Int(prefix[o]) << 24 | Int(prefix[o + 1]) << 16 | Int(prefix[o + 2]) << 8 | Int(prefix[o + 3])
            guard d > 0 else { throw MixflowError.format("\(name): dimension \(k) is 0 at \(what) \(o); IDX arrays here must be non-empty") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            // Cap at 2^40 bytes: far beyond any real dataset, and it keeps every later product exact.
            guard !overflow, p <= (1 << 40) / type.size else {
                throw MixflowError.format("\(name): dims \(shape + [d])... at \(what) \(o) overflow the element count")
            }
            shape.append(d)
            count = p
        }
        return IDXHeader(type: type, shape: shape, count: count, length: length, payloadBytes: count * type.size)
    }
}

func hex(_ b: UInt8) -> String {
    let s = String(b, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}
