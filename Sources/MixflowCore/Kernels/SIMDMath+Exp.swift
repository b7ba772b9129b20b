extension SIMDMath {
    /// e^x for SIMD8 floats (Cephes expf polynomial, about 1 ulp on [-87, 88]); clamps outside that range,
    /// so exp(-inf) = e^-87.3 ≈ 1e-38 (≈ 0 for softmax) and no lane produces NaN from overflow.
    ///
    /// Softmax and GELU-tanh call this for every attention score and MLP activation; libm's scalar expf
    /// would dominate those kernels.
    @inlinable
    public static func exp(_ xIn: SIMD8<Float>) -> SIMD8<Float> {
        let x = maximum(minimum(xIn, SIMD8(repeating: 88.37)), SIMD8(repeating: -87.33))
        // x = n·ln2 + r, |r| <= ln2/2; ln2 split in a high and a low part for an exact reduction.
        // Round-to-nearest and float→int without conversion instructions (Swift's SIMD versions are
        // per-lane loops): adding 1.5·2^23 leaves round(x·log2 e) in the low mantissa bits.
        let shifted = x * SIMD8(repeating: 1.44269504088896341) + SIMD8(repeating: 12_582_912)
        let n = shifted - SIMD8(repeating: 12_582_912)
        let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
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
        let bits = (ni &+ 127) &<< 23
        return e * unsafeBitCast(bits, to: SIMD8<Float>.self)
    }
}

extension SIMDMath {
    /// Lane-wise max of non-NaN floats with integer operations only (Swift's `pointwiseMax` and
    /// `replacing(with:where:)` are per-lane loops): the sign of a − b selects the lane.
    @inlinable
    public static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        let aBelow = unsafeBitCast(a - b, to: SIMD8<Int32>.self) &>> 31        // all ones where a < b
        let ai = unsafeBitCast(a, to: SIMD8<Int32>.self), bi = unsafeBitCast(b, to: SIMD8<Int32>.self)
        return unsafeBitCast((bi & aBelow) | (ai & ~aBelow), to: SIMD8<Float>.self)
    }

    /// Lane-wise min of non-NaN floats (see `maximum`).
    @inlinable
    public static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        let aBelow = unsafeBitCast(a - b, to: SIMD8<Int32>.self) &>> 31
        let ai = unsafeBitCast(a, to: SIMD8<Int32>.self), bi = unsafeBitCast(b, to: SIMD8<Int32>.self)
        return unsafeBitCast((ai & aBelow) | (bi & ~aBelow), to: SIMD8<Float>.self)
    }
}
