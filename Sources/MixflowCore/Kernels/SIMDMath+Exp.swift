extension SIMDMath {
    /// e^x for SIMD8 floats (Cephes expf polynomial, about 1 ulp on [-87, 88]); inputs are clamped to
    /// [-87.33, 88.37], so e^-inf ≈ 1.2e-38 (≈ 0 for softmax) and no lane overflows to inf or NaN.
    ///
    /// Softmax, GELU-tanh and SiLU call this for every attention score and MLP activation. Like `log`,
    /// it avoids Swift's generic SIMD rounding, conversions, min/max and `replacing`, which lower to
    /// per-lane loops: rounding and float→int use the 1.5·2^23 magic number, clamping uses bit masks.
    @inlinable
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(lowHalf: exp4(x.lowHalf), highHalf: exp4(x.highHalf))
    }

    @inlinable
    public static func exp4(_ xIn: SIMD4<Float>) -> SIMD4<Float> {
        typealias V = SIMD4<Float>
        typealias I = SIMD4<Int32>
        let lo = V(repeating: -87.33), hi = V(repeating: 88.37)
        var x = select(xIn .< lo, lo, xIn)
        x = select(x .> hi, hi, x)
        // n = round(x / ln2) via the magic number: adding 1.5·2^23 leaves the integer in the low mantissa bits.
        let magic = V(repeating: 12_582_912)
        let shifted = x * V(repeating: 1.44269504088896341) + magic
        let n = shifted - magic
        let ni = unsafeBitCast(shifted, to: I.self) &- I(repeating: 0x4B40_0000)
        // x = n·ln2 + r, |r| <= ln2/2; ln2 split in a high and a low part for an exact reduction.
        var r = x - n * V(repeating: 0.693359375)
        r = r - n * V(repeating: -2.12194440e-4)
        let r2 = r * r
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + V(repeating: 1.3981999507e-3)
        p = p * r + V(repeating: 8.3334519073e-3)
        p = p * r + V(repeating: 4.1665795894e-2)
        p = p * r + V(repeating: 1.6666665459e-1)
        p = p * r + V(repeating: 5.0000001201e-1)
        let e = p * r2 + r + V(repeating: 1)
        // 2^n from the exponent bits (n in [-126, 127] after the clamp).
        let scale = unsafeBitCast((ni &+ I(repeating: 127)) &<< I(repeating: 23), to: V.self)
        return e * scale
    }

    /// Lane-wise `mask ? a : b` with bit operations (Swift's `replacing(with:where:)` is a per-lane loop).
    @inlinable
    public static func select(_ mask: SIMDMask<SIMD4<Int32>>, _ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
        let m = unsafeBitCast(mask, to: SIMD4<Int32>.self)
        let ai = unsafeBitCast(a, to: SIMD4<Int32>.self), bi = unsafeBitCast(b, to: SIMD4<Int32>.self)
        return unsafeBitCast((ai & m) | (bi & ~m), to: SIMD4<Float>.self)
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
