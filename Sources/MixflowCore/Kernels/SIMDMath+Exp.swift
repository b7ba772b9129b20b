extension SIMDMath {
    /// e^x for SIMD8 floats (Cephes expf polynomial, about 1 ulp on [-87, 88]); clamps outside that range,
    /// so exp(-inf) = e^-87.3 ≈ 1e-38 (≈ 0 for softmax) and no lane produces NaN from overflow.
    ///
    /// Softmax and GELU-tanh call this for every attention score and MLP activation; libm's scalar expf
    /// would dominate those kernels.
    @inlinable
    public static func exp(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
        let x = xIn.clamped(lowerBound: SIMD8(repeating: -87.33), upperBound: SIMD8(repeating: 88.37))
        // x = n·ln2 + r, |r| <= ln2/2; ln2 split in a high and a low part for an exact reduction.
        let n = (x * 1.44269504088896341).rounded(.toNearestOrEven)
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        let r2 = r * r
        var p = SIMD8<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let e = p * r2 + r + 1
        // 2^n by building the exponent bits (n in [-126, 127] after the clamp).
        let bits = (SIMD8<Int32>(n) &+ 127) &<< 23
        return e * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}
