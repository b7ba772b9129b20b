import Testing
@testable import MixflowIO

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
