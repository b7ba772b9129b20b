/// Vectorised elementary functions for the Gaussian generator (Cephes-style minimax polynomials).
///
/// Box–Muller needs a logarithm and a sine/cosine per pair of normals; scalar libm calls (or Swift's
/// generic SIMD conversions and rounding, which do not lower to vector instructions) would make noise
/// generation, not memory traffic, the cost of a training step. So everything here is bit manipulation
/// and multiply-adds. Accuracy: about 2 ulp on the ranges used, far below the float32 noise level.
public enum SIMDMath {
    /// Natural logarithm of positive, normal floats. Write x = 2^e · m with m in [√½, √2) using integer
    /// arithmetic only (musl's logf trick: subtracting the bits of √½ puts the exponent change exactly where
    /// m crosses √½), turn e into a float with the 1.5·2^23 magic number, then a degree-9 polynomial in
    /// f = m − 1 (`GaussianKernel.log`, which holds the code).
    public static func log(_ x: SIMD8<Float>) -> SIMD8<Float> {
        GaussianKernel.log(BaselineISA.self, x)
    }

    /// (sin 2πθ, cos 2πθ) for θ = k / 2^24 turns, k in [0, 2^24) (24-bit fixed point).
    ///
    /// The quadrant comes straight from the top bits of k, so there is no floating-point range reduction:
    /// with k' = k + 2^21, q = (k' >> 22) mod 4 and x = ((k' mod 2^22) − 2^21)·(π/2)/2^22 in [−π/4, π/4),
    /// the angle is q·π/2 + x.
    public static func sinCosTurns24(_ k: SIMD8<UInt32>) -> (sin: SIMD8<Float>, cos: SIMD8<Float>) {
        GaussianKernel.sinCosTurns24(BaselineISA.self, k)
    }
}
