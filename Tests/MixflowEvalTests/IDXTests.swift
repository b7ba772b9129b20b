import CZlib
import MixflowCore
@testable import MixflowEval
import Testing

// IDX bytes are built by hand here from the format's definition (the independent reference), and gzip is
// produced by zlib's *deflate* side, so the reader's inflate path is checked against an encoder it does not share.

func idxBytes(type: UInt8, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
    var b: [UInt8] = [0, 0, type, UInt8(dims.count)]
    for d in dims { b += [UInt8(d >> 24), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
    return b + payload
}

/// gzip-compresses `data` with zlib's deflate (windowBits 31 = gzip wrapper).
func gzip(_ data: [UInt8]) -> [UInt8] {
    var s = z_stream()
    precondition(deflateInit2_(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    var input = data
    var out = [UInt8](repeating: 0, count: data.count + 1024)
    let produced: Int = input.withUnsafeMutableBufferPointer { i in
        out.withUnsafeMutableBufferPointer { o in
            s.next_in = i.baseAddress; s.avail_in = UInt32(i.count)
            s.next_out = o.baseAddress; s.avail_out = UInt32(o.count)
            precondition(deflate(&s, Z_FINISH) == Z_STREAM_END)
            return o.count - Int(s.avail_out)
        }
    }
    deflateEnd(&s)
    return Array(out[0..<produced])
}

func formatError(_ body: () throws -> Void) -> String? {
    do { try body() } catch let MixflowError.format(m) { return m } catch { return "unexpected \(error)" }
    return nil
}

@Test func readsEveryElementTypeInNativeOrder() throws {
    let u8 = try IDXArray(bytes: idxBytes(type: 0x08, dims: [2, 3], payload: [0, 1, 127, 128, 254, 255]), name: "u8")
    #expect(u8.type == .uint8 && u8.shape == [2, 3] && u8.count == 6)
    var f = [Float](repeating: 9, count: 6)
    try u8.readFloat(into: &f, scaling: .symmetric)
    #expect(f == [-1, Float(1) / 127.5 - 1, Float(127) / 127.5 - 1, Float(128) / 127.5 - 1, Float(254) / 127.5 - 1, 1])
    try u8.readFloat(into: &f, scaling: .unit)
    #expect(f[0] == 0 && f[5] == 1 && f[2] == Float(127) / 255)
    try u8.readFloat(into: &f, scaling: .none)
    #expect(f == [0, 1, 127, 128, 254, 255])
    var labels = [Int32](repeating: 0, count: 6)
    try u8.readInt32(into: &labels)
    #expect(labels == [0, 1, 127, 128, 254, 255])

    let i16 = try IDXArray(bytes: idxBytes(type: 0x0B, dims: [2], payload: [0xFF, 0xFE, 0x01, 0x02]), name: "i16")
    var l2 = [Int32](repeating: 0, count: 2)
    try i16.readInt32(into: &l2)
    #expect(l2 == [-2, 258])
    let i8 = try IDXArray(bytes: idxBytes(type: 0x09, dims: [1], payload: [0x80]), name: "i8")
    var l1: [Int32] = [0]
    try i8.readInt32(into: &l1)
    #expect(l1 == [-128])
    let i32 = try IDXArray(bytes: idxBytes(type: 0x0C, dims: [1], payload: [0x80, 0, 0, 1]), name: "i32")
    try i32.readInt32(into: &l1)
    #expect(l1 == [Int32.min + 1])
    // 1.5f = 0x3FC00000 and -2.25 (double) = 0xC002000000000000, both big-endian on disk.
    let f32 = try IDXArray(bytes: idxBytes(type: 0x0D, dims: [1], payload: [0x3F, 0xC0, 0, 0]), name: "f32")
    var one: [Float] = [0]
    try f32.readFloat(into: &one, scaling: .none)
    #expect(one == [1.5])
    let f64 = try IDXArray(bytes: idxBytes(type: 0x0E, dims: [1], payload: [0xC0, 0x02, 0, 0, 0, 0, 0, 0]), name: "f64")
    var raw = [Double](repeating: 0, count: 1)
    raw.withUnsafeMutableBytes { f64.readRaw(into: $0.baseAddress!) }
    #expect(raw == [-2.25])
    #expect(throws: MixflowError.self) { try f32.readInt32(into: &l1) }
    #expect(throws: MixflowError.self) { try f32.readFloat(into: &one, scaling: .symmetric) }
}

@Test func hostilePlainFilesGiveFormatErrorsWithOffsets() {
    let cases: [([UInt8], String)] = [
        ([0, 0], "bad.idx: truncated at byte offset 2: the IDX magic needs 4 bytes"),
        ([1, 0, 8, 1, 0, 0, 0, 1, 7], "bad.idx: bad IDX magic at byte offset 0: expected 00 00 <type> <ndim>, got 01 00 08 01"),
        ([0, 0, 0x0A, 1, 0, 0, 0, 1, 7], "bad.idx: unknown IDX element type 0x0A at byte offset 2"),
        ([0, 0, 8, 0], "bad.idx: IDX ndim is 0 at byte offset 3"),
        ([0, 0, 8, 2, 0, 0, 0, 1], "bad.idx: truncated at byte offset 8: 2 dims need a 12-byte header"),
        (idxBytes(type: 8, dims: [3, 0], payload: []), "bad.idx: dimension 1 is 0 at byte offset 8"),
        (idxBytes(type: 8, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: []), "overflow the element count"),
        (idxBytes(type: 0x0E, dims: [1 << 20, 1 << 18], payload: []), "overflow the element count"),
        (idxBytes(type: 8, dims: [2, 2], payload: [1, 2, 3]), "bad.idx: dims [2, 2] need 16 bytes but the file has 15 (truncated at byte offset 15)"),
        (idxBytes(type: 8, dims: [2, 2], payload: [1, 2, 3, 4, 5]), "(1 extra bytes from byte offset 16)"),
        // Claims 4 GiB of data in a 12-byte file: rejected before any allocation.
        (idxBytes(type: 8, dims: [65536, 65536], payload: []), "need 4294967308 bytes but the file has 12"),
    ]
    for (bytes, message) in cases {
        let m = formatError { _ = try IDXArray(bytes: bytes, name: "bad.idx") }
        #expect(m?.contains(message) == true, "\(message) vs \(m ?? "no error")")
    }
}

@Test func gzipFilesRoundTripAndCorruptionIsDetected() throws {
    let payload = (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let plain = idxBytes(type: 8, dims: [6, 10, 10], payload: payload)
    let gz = gzip(plain)
    let a = try IDXArray(bytes: gz, name: "x.gz")
    #expect(a.shape == [6, 10, 10])
    var raw = [UInt8](repeating: 0, count: 600)
    raw.withUnsafeMutableBytes { a.readRaw(into: $0.baseAddress!) }
    #expect(raw == payload)

    var badCRC = gz
    badCRC[gz.count - 8] ^= 0xFF   // first byte of the CRC-32 trailer
    #expect(formatError { _ = try IDXArray(bytes: badCRC, name: "x.gz") }?.contains("x.gz: corrupt gzip data near byte offset") == true)
    #expect(formatError { _ = try IDXArray(bytes: badCRC, name: "x.gz") }?.contains("incorrect data check") == true)
    var badSize = gz
    badSize[gz.count - 4] ^= 0x01  // ISIZE no longer matches the dims
    #expect(formatError { _ = try IDXArray(bytes: badSize, name: "x.gz") }?.contains("but the gzip trailer at byte offset \(gz.count - 4) says") == true)
    var badData = gz
    badData[gz.count / 2] ^= 0x55  // inside the deflate stream
    #expect(formatError { _ = try IDXArray(bytes: badData, name: "x.gz") } != nil)
    let cut = Array(gz[0..<(gz.count - 12)])
    let m = formatError { _ = try IDXArray(bytes: cut, name: "x.gz") }
    #expect(m?.hasPrefix("x.gz: ") == true && m?.contains("offset") == true, "\(m ?? "no error")")
    #expect(formatError { _ = try IDXArray(bytes: gz + [0, 1, 2], name: "x.gz") }?.contains("or has data after the gzip member") == true)
    // A gzip whose data is longer than its dims say, and one that is shorter.
    #expect(formatError { _ = try IDXArray(bytes: gzip(plain + [9]), name: "x.gz") } != nil)
    #expect(formatError { _ = try IDXArray(bytes: gzip(Array(plain.dropLast())), name: "x.gz") } != nil)
    // A gzip of something that is not IDX.
    #expect(formatError { _ = try IDXArray(bytes: gzip(Array("hello world".utf8)), name: "x.gz") }?.contains("bad IDX magic") == true)
    // A huge claim in a small gzip is refused before allocation.
    let liar = gzip(idxBytes(type: 8, dims: [1 << 16, 1 << 16], payload: [1, 2, 3]))
    #expect(formatError { _ = try IDXArray(bytes: liar, name: "x.gz") }?.contains("more than a") == true)
}

@Test func missingFilesAreIOErrors() {
    #expect(throws: MixflowError.io("/nonexistent/x.idx: cannot open: No such file or directory")) {
        _ = try IDXArray(path: "/nonexistent/x.idx")
    }
    #expect(throws: MixflowError.io("/tmp: not a regular file")) { _ = try IDXArray(path: "/tmp") }
}

let fashionRoot = "/usr/share/datasets/fashion-mnist"

func fashionAvailable() -> Bool {
    (try? readWholeFile(fashionRoot + "/t10k-labels-idx1-ubyte.gz")) != nil
}

@Test(.enabled(if: fashionAvailable(), "Fashion-MNIST is absent: apt-get install dataset-fashion-mnist"))
func fashionMNISTTestSetHasTheDocumentedShapeAndBalance() throws {
    let images = try IDXArray(path: fashionRoot + "/t10k-images-idx3-ubyte.gz")
    let labels = try IDXArray(path: fashionRoot + "/t10k-labels-idx1-ubyte.gz")
    #expect(images.type == .uint8 && images.shape == [10000, 28, 28])
    #expect(labels.type == .uint8 && labels.shape == [10000])
    var y = [Int32](repeating: -1, count: 10000)
    try labels.readInt32(into: &y)
    // The Fashion-MNIST test set holds exactly 1000 images per class (Zalando's README).
    #expect((0..<10).map { c in y.filter { $0 == c }.count } == Array(repeating: 1000, count: 10))
}
