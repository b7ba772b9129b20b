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

    // The entry points below are deliberately not @inlinable: the kernels are specialised and compiled in
    // this module, whose build flags they need (-fno-math-errno, see GaussianKernel).

    /// Writes the elements [start, start + out.count) of `stream` into `out`. `start` must be a multiple of 32.
    public static func fill(_ out: UnsafeMutableBufferPointer<Float>, stream: RandomStream, start: Int) {
        precondition(start % chunk == 0, "Gaussian.fill: start must be chunk-aligned")
        guard let base = out.baseAddress, out.count > 0 else { return }
        GaussianKernel.fill(BaselineISA.self, base, count: out.count, stream: stream, start: start)
    }

    /// The 32 normals of chunk `k` as four vectors (q = 0…3).
    public static func chunk32(_ stream: RandomStream, _ k: UInt32)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>)
    {
        GaussianKernel.chunk32(BaselineISA.self, stream, k)
    }

    /// The normals (r cos θ, r sin θ) of the words (a, b).
    static func boxMuller(_ a: SIMD8<UInt32>, _ b: SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>) {
        GaussianKernel.boxMuller(BaselineISA.self, a, b)
    }

    /// The fused transport kernel (`GaussianKernel.affineSpan`) for the baseline instruction set.
    public static func affineSpan(
        x1: UnsafePointer<Float>, xIn: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>,
        noise: UnsafeMutablePointer<Float>?, start: Int, count: Int, c: AffineNoiseCoefficients,
        noiseStream: RandomStream, perturbationStream: RandomStream
    ) -> Bool {
        GaussianKernel.affineSpan(BaselineISA.self, x1: x1, xIn: xIn, target: target, noise: noise, start: start,
                                  count: count, c: c, noiseStream: noiseStream, perturbationStream: perturbationStream)
    }
}
