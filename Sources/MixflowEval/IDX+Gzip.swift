import CZlib
import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

// gzip through the system zlib (Debian zlib1g-dev): a hand-written inflater would be more code to get
// right for hostile input than this one well-tested library, which also checks the CRC-32 and ISIZE trailer.

enum Gzip {
    /// Deflate cannot expand data by more than about 1032:1, so a claimed size beyond that is a lie and
    /// is rejected before anything is allocated.
    static let maximumRatio = 1032

    /// Inflates a single-member gzip IDX file: first the header (to learn and validate the dims), then
    /// exactly the payload those dims need into one allocation, then checks that the stream ends there.
    static func inflateIDX(_ bytes: [UInt8], name: String) throws -> (IDXHeader, [UInt8]) {
        guard bytes.count >= 18 else {
            throw MixflowError.format("\(name): truncated gzip at byte offset \(bytes.count): a gzip member needs at least 18 bytes")
        }
        let inflater = try Inflater(bytes, name: name)
        defer { inflater.end() }
        var head = [UInt8](repeating: 0, count: 4)
        var got = try inflater.read(into: &head, 0, 4)
        guard got == 4 else { throw MixflowError.format("\(name): truncated at decompressed byte offset \(got): the IDX magic needs 4 bytes") }
        let headerLength = IDXHeader.length(magic: head[0..<4])
        // Validate the magic before reading the dims, so a non-IDX gzip gets the magic message.
        if head[0] != 0 || head[1] != 0 || IDXType(rawValue: head[2]) == nil || head[3] == 0 {
            _ = try IDXHeader.parse(prefix: head, name: name, sourceLength: 4, compressed: true)
        }
        head += [UInt8](repeating: 0, count: headerLength - 4)
        got = try inflater.read(into: &head, 4, headerLength - 4)
        head.removeLast(headerLength - 4 - got)
        let header = try IDXHeader.parse(prefix: head, name: name, sourceLength: head.count, compressed: true)
        let total = header.length + header.payloadBytes

        // ISIZE (the last 4 bytes, little-endian) is the uncompressed length mod 2^32.
        let n = bytes.count
        let isize = Int(bytes[n - 4]) | Int(bytes[n - 3]) << 8 | Int(bytes[n - 2]) << 16 | Int(bytes[n - 1]) << 24
        guard total / maximumRatio <= n else {
            throw MixflowError.format("\(name): dims \(header.shape) need \(total) bytes, more than a \(n)-byte gzip file can hold")
        }
        guard isize == total & 0xFFFF_FFFF else {
            throw MixflowError.format("\(name): dims \(header.shape) need \(total) decompressed bytes but the gzip trailer "
                + "at byte offset \(n - 4) says \(isize) (mod 2^32): the file is corrupt, truncated or has data after the gzip member")
        }
        try MemoryBudget.check(header.payloadBytes, "\(name): dims \(header.shape)")
        // The payload grows with what the stream really holds (4 MiB at a time), so a header that claims more
        // than the stream holds costs at most twice the real size before it is refused.
        var payload = [UInt8]()
        payload.reserveCapacity(min(header.payloadBytes, 1 << 22))
        while payload.count < header.payloadBytes {
            let start = payload.count, want = min(1 << 22, header.payloadBytes - start)
            payload.append(contentsOf: repeatElement(0, count: want))
            got = try inflater.read(into: &payload, start, want)
            guard got == want else {
                throw MixflowError.format("\(name): truncated at decompressed byte offset \(header.length + start + got): dims \(header.shape) need \(total) bytes")
            }
        }
        // The stream must end exactly here (this also verifies the CRC-32 and the length trailer).
        var extra = [UInt8](repeating: 0, count: 1)
        if try inflater.read(into: &extra, 0, 1) != 0 {
            throw MixflowError.format("\(name): more data than dims \(header.shape) say, from decompressed byte offset \(total)")
        }
        guard inflater.consumed == n else {
            throw MixflowError.format("\(name): \(n - inflater.consumed) unexpected bytes after the gzip member at byte offset \(inflater.consumed) "
                + "(multi-member gzip is not supported)")
        }
        return (header, payload)
    }
}

/// A zlib inflate stream over an in-memory gzip file. The z_stream lives on the heap because zlib's
/// state keeps a pointer back to it and rejects a stream that has moved (inflateStateCheck).
final class Inflater {
    private let strm: UnsafeMutablePointer<z_stream>
    private var stream: z_stream {
        get { strm.pointee }
        _modify { yield &strm.pointee }
    }
    private let input: UnsafeMutableBufferPointer<UInt8>
    private let name: String
    private var finished = false

    init(_ bytes: [UInt8], name: String) throws {
        self.name = name
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        input = .allocate(capacity: bytes.count)
        _ = input.initialize(from: bytes)
        stream.next_in = input.baseAddress
        stream.avail_in = UInt32(clamping: bytes.count)
        // windowBits 15 + 16: gzip wrapper only (no raw deflate, no zlib header).
        let rc = inflateInit2_(strm, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else {
            input.deallocate()
            strm.deallocate()
            throw MixflowError.outOfMemory("\(name): zlib inflateInit2 failed with \(rc)")
        }
    }

    /// Compressed bytes consumed so far.
    var consumed: Int { Int(stream.total_in) }

    func end() {
        inflateEnd(strm)
        input.deallocate()
        strm.deallocate()
    }

    /// Inflates up to `count` bytes into `out[offset...]`; returns how many were produced (fewer only when
    /// the gzip member ended).
    func read(into out: inout [UInt8], _ offset: Int, _ count: Int) throws -> Int {
        var produced = 0
        try out.withUnsafeMutableBufferPointer { buffer in
            while produced < count && !finished {
                // avail_out is 32-bit: feed at most 1 GiB per call.
                let chunk = min(count - produced, 1 << 30)
                stream.next_out = buffer.baseAddress! + offset + produced
                stream.avail_out = UInt32(chunk)
                let inputStart = consumed
                let rc = inflate(strm, Z_NO_FLUSH)
                produced += chunk - Int(stream.avail_out)
                switch rc {
                case Z_STREAM_END:
                    finished = true
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw MixflowError.format("\(name): truncated gzip stream at byte offset \(consumed)")
                case Z_BUF_ERROR:
                    continue
                case Z_MEM_ERROR:
                    throw MixflowError.outOfMemory("\(name): zlib ran out of memory")
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                    // zlib reports the byte where it stopped; at a CRC/length trailer that is the trailer's end.
                    throw MixflowError.format("\(name): corrupt gzip data near byte offset \(max(inputStart, consumed)): \(message)")
                }
            }
        }
        return produced
    }
}

// MARK: - Files

/// Reads a whole regular file. Its size comes from fstat, so the allocation matches the real file.
func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw MixflowError.io("\(path): cannot open: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw MixflowError.io("\(path): cannot stat: \(String(cString: strerror(errno)))") }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw MixflowError.io("\(path): not a regular file") }
    let size = Int(st.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    try bytes.withUnsafeMutableBytes { buffer in
        while done < size {
            let r = read(fd, buffer.baseAddress! + done, size - done)
            if r < 0 && errno == EINTR { continue }
            guard r >= 0 else { throw MixflowError.io("\(path): read failed at byte offset \(done): \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            done += r
        }
    }
    guard done == size else { throw MixflowError.io("\(path): file shrank while reading (\(done) of \(size) bytes)") }
    return bytes
}
