/// Standard normal numbers from a `RandomStream`, by Box–Muller over Philox words.
///
/// Element layout (part of the reproducibility contract, so a reference can recompute it): elements are
/// grouped in chunks of 32; chunk k uses Philox blocks 8k … 8k+7 (lane l = block 8k+l, words w0…w3).
/// Words (w0, w1) give the pair (z_a, z_b) and (w2, w3) the pair (z_c, z_d) with
/// `r = sqrt(-2 ln u)`, `u = 1 − (w0 >> 9) / 2^23` in (0, 1], `θ = 2π (w1 >> 8) / 2^24`,
/// `z_a = r cos θ`, `z_b = r sin θ` (likewise c, d from w2, w3).
/// Inside the chunk, element `8q + l` holds z_a, z_b, z_c, z_d for q = 0, 1, 2, 3 of lane l.
/// A stream therefore yields the same numbers for an element whatever range is generated around it.
public enum Gaussian {
    public static let chunk = 32

    /// Writes the elements [start, start + out.count) of `stream` into `out`. `start` must be a multiple of 32.
    @inlinable
    public static func fill(_ out: UnsafeMutableBufferPointer<Float>, stream: RandomStream, start: Int) {
        precondition(start % chunk == 0, "Gaussian.fill: start must be chunk-aligned")
        let n = out.count
        guard let base = out.baseAddress, n > 0 else { return }
        let raw = UnsafeMutableRawPointer(base)
        var i = 0
        var k = UInt32(truncatingIfNeeded: start / chunk)
        while i + chunk <= n {
            let z = chunk32(stream, k)
            raw.storeBytes(of: z.0, toByteOffset: (i + 0) * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: z.1, toByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: z.2, toByteOffset: (i + 16) * 4, as: SIMD8<Float>.self)
            raw.storeBytes(of: z.3, toByteOffset: (i + 24) * 4, as: SIMD8<Float>.self)
            i += chunk
            k &+= 1
        }
        if i < n {
            let z = chunk32(stream, k)
            withUnsafeBytes(of: z) { bytes in
                let tail = bytes.bindMemory(to: Float.self)
                for j in 0..<(n - i) { base[i + j] = tail[j] }
            }
        }
    }

    /// The 32 normals of chunk `k` as four vectors (q = 0…3).
    @inlinable
    public static func chunk32(_ stream: RandomStream, _ k: UInt32)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
    {
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ SIMD8(repeating: k &* 8)
        let (w0, w1, w2, w3) = Philox.block8(lanes, stream.c1, stream.c2, stream.c3, key: stream.key)
        let (za, zb) = boxMuller(w0, w1)
        let (zc, zd) = boxMuller(w2, w3)
        return (za, zb, zc, zd)
    }

    @inlinable
    static func boxMuller(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>) {
        // u = 2 − [1, 2) = 1 − (a >> 9)/2^23 in (0, 1], built from the mantissa bits without a conversion.
        let u = 2 - unsafeBitCast((a &>> 9) | 0x3F80_0000, to: SIMD8<Float>.self)
        let r = (-2 * SIMDMath.log(u)).squareRoot()
        let (s, c) = SIMDMath.sinCosTurns24(b &>> 8)
        return (r * c, r * s)
    }
}
