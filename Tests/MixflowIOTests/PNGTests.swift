import Testing
@testable import MixflowIO
import MixflowCore

@Test func pngChecksumsMatchTheirStandards() throws {
    // The CRC of an empty IEND chunk is in every PNG file: AE 42 60 82.
    #expect(PNG.crc32(Array("IEND".utf8)) == 0xAE42_6082)
    // A zlib stream: CMF 0x78 (deflate, 32 KiB window), a header check that divides by 31, and
    // Adler-32("Wikipedia") = 0x11E60398 at the end (RFC 1950's classic example).
    let z = try PNG.zlibCompressed(Array("Wikipedia".utf8))
    #expect(z[0] == 0x78 && (UInt16(z[0]) << 8 | UInt16(z[1])) % 31 == 0)
    #expect(Array(z.suffix(4)) == [0x11, 0xE6, 0x03, 0x98])
}

@Test func gridsAreCompressed() throws {
    // 100 smooth 28x28 images in a 10-column grid: deflate must beat the raw scanlines (the Python CLI test
    // decodes such a file with Python's own zlib).
    let n = 100, size = 28
    let images = (0..<(n * size * size)).map { i in Float(i % size) / Float(size) * 2 - 1 }
    let g = images.withUnsafeBufferPointer { PNG.grid($0, count: n, channels: 1, size: size, columns: 10) }
    let z = try PNG.zlibCompressed(g.pixels)
    #expect(z.count * 4 < g.pixels.count)
}

@Test func gridMapsValuesWithSiTsRule() {
    let img: [Float] = [-1, 0, 1, .nan]   // one 2x2 grey image
    let g = img.withUnsafeBufferPointer { PNG.grid($0, count: 1, channels: 1, size: 2, columns: 1) }
    #expect(g.width == 6 && g.height == 6)
    #expect(g.pixels[2 * 6 + 2] == 0 && g.pixels[2 * 6 + 3] == 128 && g.pixels[3 * 6 + 2] == 255 && g.pixels[3 * 6 + 3] == 128)
}

@Test func byteGridPlacesEveryImageAndChannel() throws {
    // 3 RGB images of 2x3 pixels, 2 per row: a 2x2 grid cell layout with a white border and an empty cell.
    let n = 3, h = 2, w = 3, c = 3
    let images = (0..<(n * h * w * c)).map { UInt8($0) }
    let g = try images.withUnsafeBufferPointer { try PNG.grid(bytes: $0.baseAddress!, count: n, height: h, width: w, channels: c, columns: 2) }
    #expect(g.width == 2 * (w + 2) + 2 && g.height == 2 * (h + 2) + 2)
    for k in 0..<n {
        let gx = 2 + (k % 2) * (w + 2), gy = 2 + (k / 2) * (h + 2)
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            #expect(g.pixels[((gy + y) * g.width + gx + x) * c + ch] == images[((k * h + y) * w + x) * c + ch])
        } } }
    }
    #expect(g.pixels[0] == 255 && g.pixels[(g.width * g.height - 1) * c] == 255)   // border, empty cell
    #expect(throws: MixflowError.invalidArgument("channels must be 1 or 3, got 2")) {
        _ = try images.withUnsafeBufferPointer { try PNG.grid(bytes: $0.baseAddress!, count: 1, height: 1, width: 1, channels: 2, columns: 1) }
    }
    #expect(throws: MixflowError.self) {
        _ = try images.withUnsafeBufferPointer { try PNG.grid(bytes: $0.baseAddress!, count: 1 << 20, height: 1 << 10, width: 1 << 10, channels: 1, columns: 1 << 20) }
    }
}
