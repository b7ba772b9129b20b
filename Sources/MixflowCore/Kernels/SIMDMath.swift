/// Vectorised elementary functions for the Gaussian generator (Cephes-style minimax polynomials).
///
/// Box–Muller needs a logarithm and a sine/cosine per pair of normals; scalar libm calls (or Swift's
/// generic SIMD conversions and rounding, which do not lower to vector instructions) would make noise
/// generation, not memory traffic, the cost of a training step. So everything here is bit manipulation
/// and multiply-adds. Accuracy: about 2 ulp on the ranges used, far below the float32 noise level.
public enum SIMDMath {
    /// Natural logarithm of positive, normal floats.
    @inlinable
    public static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let lo = log4(x.lowHalf), hi = log4(x.highHalf)
        return SIMD8(lowHalf: lo, highHalf: hi)
    }

    @inlinable
    public static func log4(_ x: SIMD4<Float>) -> SIMD4<Float> {
        // Write x = 2^e · m with m in [√½, √2) using integer arithmetic only (musl's logf trick):
        // subtracting the bits of √½ puts the exponent change exactly where m crosses √½.
        let ix = unsafeBitCast(x, to: SIMD4<Int32>.self) &- 0x3F35_04F3
        let ei = ix &>> 23                                            // arithmetic shift: signed exponent
        let m = unsafeBitCast((ix & 0x007F_FFFF) &+ 0x3F35_04F3, to: SIMD4<Float>.self)
        // A small signed integer as a float without a conversion instruction: 1.5·2^23 + e.
        let e = unsafeBitCast(ei &+ SIMD4(repeating: 0x4B40_0000), to: SIMD4<Float>.self) - SIMD4(repeating: 12_582_912)
        let f = m - SIMD4(repeating: 1)
        let z = f * f
        // Explicit vector constants: mixing scalar literals into SIMD expressions made LLVM scalarise lanes.
        typealias V = SIMD4<Float>
        var p = V(repeating: 7.0376836292e-2)
        p = p * f + V(repeating: -1.1514610310e-1)
        p = p * f + V(repeating: 1.1676998740e-1)
        p = p * f + V(repeating: -1.2420140846e-1)
        p = p * f + V(repeating: 1.4249322787e-1)
        p = p * f + V(repeating: -1.6668057665e-1)
        p = p * f + V(repeating: 2.0000714765e-1)
        p = p * f + V(repeating: -2.4999993993e-1)
        p = p * f + V(repeating: 3.3333331174e-1)
        var y = p * f * z
        y += e * V(repeating: -2.12194440e-4)
        y += V(repeating: -0.5) * z
        return f + y + e * V(repeating: 0.693359375)
    }

    /// (sin 2πθ, cos 2πθ) for θ = k / 2^24 turns, k in [0, 2^24) (24-bit fixed point).
    ///
    /// The quadrant comes straight from the top bits of k, so there is no floating-point range reduction:
    /// with k' = k + 2^21, q = (k' >> 22) mod 4 and x = ((k' mod 2^22) − 2^21)·(π/2)/2^22 in [−π/4, π/4),
    /// the angle is q·π/2 + x.
    @inlinable
    public static func sinCosTurns24(_ k: SIMD8<UInt32>) -> (sin: SIMD8<Float>, cos: SIMD8<Float>) {
        let lo = sinCosTurns24x4(k.lowHalf), hi = sinCosTurns24x4(k.highHalf)
        return (SIMD8(lowHalf: lo.sin, highHalf: hi.sin), SIMD8(lowHalf: lo.cos, highHalf: hi.cos))
    }

    @inlinable
    public static func sinCosTurns24x4(_ k: SIMD4<UInt32>) -> (sin: SIMD4<Float>, cos: SIMD4<Float>) {
        let shifted = (k &+ (1 << 21)) & 0x00FF_FFFF
        let q = shifted &>> 22
        let r = shifted & 0x003F_FFFF                          // [0, 2^22), exact in a float
        let rf = unsafeBitCast(r | 0x4B00_0000, to: SIMD4<Float>.self) - 8_388_608
        let x = (rf - 2_097_152) * Float(Double.pi / 2 / 4_194_304)
        let x2 = x * x
        var s = SIMD4<Float>(repeating: -1.9515295891e-4)
        s = s * x2 + 8.3321608736e-3
        s = s * x2 + -1.6666654611e-1
        s = s * x2 * x + x
        var c = SIMD4<Float>(repeating: 2.443315711809948e-5)
        c = c * x2 + -1.388731625493765e-3
        c = c * x2 + 4.166664568298827e-2
        c = c * x2 * x2 - 0.5 * x2 + 1
        // Rotate by q quarter turns: q = 1 → (c, −s), 2 → (−s, −c), 3 → (−c, s). Done with bit masks:
        // Swift's SIMD `replacing(with:where:)` is a per-lane loop, not a blend instruction.
        let sBits = unsafeBitCast(s, to: SIMD4<UInt32>.self), cBits = unsafeBitCast(c, to: SIMD4<UInt32>.self)
        let swap = 0 &- (q & 1)                                        // all ones for odd quadrants
        let sinBits = (cBits & swap) | (sBits & ~swap)
        let cosBits = (sBits & swap) | (cBits & ~swap)
        let sinSign = (q &>> 1) &<< 31                                 // negative for q = 2, 3
        let cosSign = ((q ^ (q &>> 1)) & 1) &<< 31                     // negative for q = 1, 2
        let sinOut = unsafeBitCast(sinBits ^ sinSign, to: SIMD4<Float>.self)
        let cosOut = unsafeBitCast(cosBits ^ cosSign, to: SIMD4<Float>.self)
        return (sinOut, cosOut)
    }
}
