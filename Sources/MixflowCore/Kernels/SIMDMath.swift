/// Vectorised elementary functions for the Gaussian generator (Cephes-style minimax polynomials).
///
/// Box–Muller needs a logarithm and a sine/cosine per pair of normals; the scalar libm calls would make
/// noise generation, not memory traffic, the cost of a training step. Accuracy: about 2 ulp on the
/// ranges used (log on (0, 1], sin/cos of 2π·v for v in [0, 1)), far below the float32 noise level.
public enum SIMDMath {
    /// Natural logarithm of positive, normal floats.
    @inlinable
    public static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        // Split x = 2^e · m with m in [0.5, 1), then move m into [√½, √2).
        var e = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: (bits &>> 23) & 0xFF) &- 126)
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: SIMD8<Float>.self)
        let small = m .< 0.70710678118654752
        e = e.replacing(with: e - 1, where: small)
        m = m.replacing(with: m + m, where: small)
        let f = m - 1
        let z = f * f
        var p = SIMD8<Float>(repeating: 7.0376836292e-2)
        p = p * f + -1.1514610310e-1
        p = p * f + 1.1676998740e-1
        p = p * f + -1.2420140846e-1
        p = p * f + 1.4249322787e-1
        p = p * f + -1.6668057665e-1
        p = p * f + 2.0000714765e-1
        p = p * f + -2.4999993993e-1
        p = p * f + 3.3333331174e-1
        var y = p * f * z
        y += e * -2.12194440e-4
        y += -0.5 * z
        return f + y + e * 0.693359375
    }

    /// (sin 2πv, cos 2πv) for any finite v (used with v in [0, 1)).
    @inlinable
    public static func sinCosTwoPi(_ v: SIMD8<Float>) -> (sin: SIMD8<Float>, cos: SIMD8<Float>) {
        // Reduce to w in [-1/2, 1/2], then to a quarter turn r in [-1/8, 1/8] turns and a quadrant q.
        let w = v - v.rounded(.toNearestOrEven)
        let y = w * 4
        let q = y.rounded(.toNearestOrEven)
        let x = (y - q) * (Float.pi / 2)
        let x2 = x * x
        var s = SIMD8<Float>(repeating: -1.9515295891e-4)
        s = s * x2 + 8.3321608736e-3
        s = s * x2 + -1.6666654611e-1
        s = s * x2 * x + x
        var c = SIMD8<Float>(repeating: 2.443315711809948e-5)
        c = c * x2 + -1.388731625493765e-3
        c = c * x2 + 4.166664568298827e-2
        c = c * x2 * x2 - 0.5 * x2 + 1
        // Rotate by q quarter turns: q mod 4 = 1 → (c, -s), 2 → (-s, -c), 3 → (-c, s).
        let qi = SIMD8<Int32>(q) & 3
        let swap = (qi & 1) .== 1
        var sinOut = s.replacing(with: c, where: swap)
        var cosOut = c.replacing(with: s, where: swap)
        sinOut = sinOut.replacing(with: -sinOut, where: qi .>= 2)
        cosOut = cosOut.replacing(with: -cosOut, where: (qi .== 1) .| (qi .== 2))
        return (sinOut, cosOut)
    }
}
