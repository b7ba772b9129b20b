import Testing
@testable import MixflowIO

@Test func pngChecksumsMatchTheirStandards() {
    // The CRC of an empty IEND chunk is in every PNG file: AE 42 60 82.
    #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)
    // Adler-32("Wikipedia") = 0x11E60398 (RFC 1950's algorithm, the classic example).
    let z = PNG.zlibStored(Array("Wikipedia".utf8))
    #expect(Array(z.suffix(4)) == [0x11, 0xE6, 0x03, 0x98])
    // Stored block header: final bit, LEN and its one's complement.
    #expect(Array(z[2..<7]) == [1, 9, 0, 0xF6, 0xFF])
}

@Test func gridMapsValuesWithSiTsRule() {
    let img: [Float] = [-1, 0, 1, .nan]   // one 2x2 grey image
    let g = img.withUnsafeBufferPointer { PNG.grid($0, count: 1, channels: 1, size: 2, columns: 1) }
    #expect(g.width == 6 && g.height == 6)
    #expect(g.pixels[2 * 6 + 2] == 0 && g.pixels[2 * 6 + 3] == 128 && g.pixels[3 * 6 + 2] == 255 && g.pixels[3 * 6 + 3] == 128)
}
