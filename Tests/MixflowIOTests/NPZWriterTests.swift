import Testing
@testable import MixflowIO
import MixflowCore
#if canImport(Glibc)
import Glibc
#endif

// The standard CRC-32 check value (IEEE): crc32("123456789") = 0xCBF43926.
@Test func crc32MatchesTheStandardCheckValue() {
    var c = CRC32()
    c.update(Array("123456789".utf8))
    #expect(c.value == 0xCBF4_3926)
}

@Test func npyHeaderIsPaddedToSixtyFourBytes() {
    let h = NPZWriter.npyHeader(shape: [2, 3, 4, 1])
    #expect(h.count % 64 == 0 && h[0] == 0x93 && h[6] == 1 && h[7] == 0 && h.last == 0x0A)
    #expect(String(decoding: h[10...], as: UTF8.self).hasPrefix("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4, 1), }"))
    #expect(Int(h[8]) + Int(h[9]) * 256 == h.count - 10)
}

@Test func plainNPYHoldsTheHeaderAndTheLittleEndianValues() throws {
    let path = "/tmp/mixflow-npy-\(getpid()).npy"
    defer { unlink(path) }
    try NPZWriter.writeNPY(path: path, shape: [2, 1], values: [Float(1.5), -2])
    guard let f = fopen(path, "rb") else { Issue.record("cannot open \(path)"); return }
    var bytes = [UInt8](repeating: 0, count: 256)
    let n = fread(&bytes, 1, 256, f)
    fclose(f)
    let header = NPZWriter.npyHeader(shape: [2, 1], descr: "<f4")
    #expect(n == header.count + 8 && Array(bytes[0..<header.count]) == header)
    #expect(String(decoding: header, as: UTF8.self).contains("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }"))
    #expect(Array(bytes[header.count..<(header.count + 8)]) == [0, 0, 0xC0, 0x3F, 0, 0, 0, 0xC0])   // 1.5, -2
    #expect(throws: MixflowError.invalidArgument("shape [3] does not match 2 values")) {
        try NPZWriter.writeNPY(path: path, shape: [3], values: [Int32(1), 2])
    }
}
