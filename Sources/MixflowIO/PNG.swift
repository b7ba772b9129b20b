import CZlib
import MixflowCore

/// A PNG writer for sample grids (8-bit grey or RGB): scanlines without filters, deflated by the system zlib
/// (already linked for .gz IDX files). Written atomically.
public enum PNG {
    /// Writes `pixels` ([height, width, channels] uint8, row-major) to `path`. channels is 1 or 3.
    public static func write(path: String, pixels: [UInt8], width: Int, height: Int, channels: Int) throws {
        guard channels == 1 || channels == 3 else { throw MixflowError.invalidArgument("channels must be 1 or 3, got \(channels)") }
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else {
            throw MixflowError.invalidArgument("image size must be positive, got \(width)x\(height)")
        }
        guard pixels.count == width * height * channels else {
            throw MixflowError.invalidArgument("pixels has \(pixels.count) bytes, expected \(width * height * channels)")
        }
        // Raw scanlines: filter byte 0 (None) + row.
        let rowBytes = width * channels
        var raw = [UInt8]()
        raw.reserveCapacity(height * (rowBytes + 1))
        for y in 0..<height {
            raw.append(0)
            raw += pixels[(y * rowBytes)..<((y + 1) * rowBytes)]
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        appendBE(&header, UInt32(width)); appendBE(&header, UInt32(height))
        header += [8, channels == 1 ? 0 : 2, 0, 0, 0]   // bit depth 8, grey or RGB, deflate, filter 0, no interlace
        chunk(&png, "IHDR", header)
        chunk(&png, "IDAT", try zlibCompressed(raw))
        chunk(&png, "IEND", [])
        let bytes = png
        try AtomicFile.write(to: path) { w in try bytes.withUnsafeBytes { try w.write($0) } }
    }

    /// A zlib stream (RFC 1950: deflate at zlib's best level, with its Adler-32) of `data`.
    static func zlibCompressed(_ data: [UInt8]) throws -> [UInt8] {
        var size = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(size))
        let status = out.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { compress2(o.baseAddress!, &size, $0.baseAddress, uLong($0.count), Z_BEST_COMPRESSION) }
        }
        guard status == Z_OK else { throw MixflowError.internal("zlib compress2 failed with status \(status)") }
        return Array(out.prefix(Int(size)))
    }

    static func chunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBE(&out, UInt32(data.count))
        let body = Array(type.utf8) + data
        out += body
        appendBE(&out, crc32(body))
    }

    static func appendBE(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    /// The zip/PNG CRC-32 (shared with the NPZ writer).
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c = CRC32()
        c.update(bytes)
        return c.value
    }

    /// Tiles `images` ([n, channels, size, size] floats in [-1, 1]) into a grid of `columns` columns with a
    /// 2-pixel border; returns (pixels, width, height) ready for `write`. Values are mapped with
    /// SiT's rule clamp(127.5·x + 128, 0, 255) truncated.
    public static func grid(_ images: UnsafeBufferPointer<Float>, count n: Int, channels: Int, size: Int,
                            columns: Int) -> (pixels: [UInt8], width: Int, height: Int) {
        let cols = max(1, min(columns, n)), rows = (n + cols - 1) / cols
        let pad = 2
        let width = cols * (size + pad) + pad, height = rows * (size + pad) + pad
        var pixels = [UInt8](repeating: 255, count: width * height * channels)
        for k in 0..<n {
            let gx = pad + (k % cols) * (size + pad), gy = pad + (k / cols) * (size + pad)
            for c in 0..<channels {
                for y in 0..<size {
                    for x in 0..<size {
                        let v = images[((k * channels + c) * size + y) * size + x]
                        let q = v.isNaN ? 128 : UInt8(max(0, min(255, 127.5 * v + 128)))
                        pixels[((gy + y) * width + gx + x) * channels + c] = q
                    }
                }
            }
        }
        return (pixels, width, height)
    }
    /// Tiles uint8 images ([n, height, width, channels], NHWC as `ImageQuantization.toNHWC` writes them) into a
    /// grid of `columns` columns (clamped to [1, n]) with a 2-pixel white border, ready for `write`.
    /// - Throws: `.invalidArgument` when a size is not positive, channels is not 1 or 3, or the grid would be
    ///   wider or taller than 2^24 pixels.
    public static func grid(bytes images: UnsafePointer<UInt8>, count n: Int, height h: Int, width w: Int, channels: Int,
                            columns: Int) throws -> (pixels: [UInt8], width: Int, height: Int) {
        guard n > 0, h > 0, w > 0 else { throw MixflowError.invalidArgument("batch, height and width must be > 0, got \(n), \(h), \(w)") }
        guard channels == 1 || channels == 3 else { throw MixflowError.invalidArgument("channels must be 1 or 3, got \(channels)") }
        guard columns > 0 else { throw MixflowError.invalidArgument("columns must be > 0, got \(columns)") }
        let pad = 2, limit = 1 << 24
        let cols = min(columns, n), rows = (n + cols - 1) / cols
        guard w <= limit, h <= limit, cols <= limit / (w + pad), rows <= limit / (h + pad) else {
            throw MixflowError.invalidArgument("the grid of \(rows) x \(cols) images of \(h) x \(w) is larger than 2^24 pixels on a side")
        }
        let width = cols * (w + pad) + pad, height = rows * (h + pad) + pad
        let (bytes, overflow) = (width * height).multipliedReportingOverflow(by: channels)
        guard !overflow, bytes <= Int(Int32.max) else {
            throw MixflowError.invalidArgument("the grid of \(width) x \(height) pixels is larger than 2 GiB")
        }
        var pixels = [UInt8](repeating: 255, count: bytes)
        let row = w * channels
        pixels.withUnsafeMutableBufferPointer { out in
            for k in 0..<n {
                let gx = pad + (k % cols) * (w + pad), gy = pad + (k / cols) * (h + pad)
                for y in 0..<h {
                    (out.baseAddress! + ((gy + y) * width + gx) * channels).update(from: images + (k * h + y) * row, count: row)
                }
            }
        }
        return (pixels, width, height)
    }
}
