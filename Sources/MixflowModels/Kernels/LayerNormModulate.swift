internal import CKernels
import MixflowCore

// MARK: - LayerNorm without affine parameters, then adaLN modulation
// n = (x − mean)·rstd, rstd = 1/√(var + eps) (biased variance, eps 1e-6, as nn.LayerNorm(elementwise_affine=False));
// out = n·(1 + scale) + shift, with shift and scale one row per sample (broadcast over tokens).

/// Where a sample's shift and scale live: row b of `mod` ([B, stride]) at the given column offsets.
public struct Modulation {
    public var mod: UnsafePointer<Float>
    public var stride: Int
    public var shift: Int
    public var scale: Int
    public init(mod: UnsafePointer<Float>, stride: Int, shift: Int, scale: Int) {
        self.mod = mod; self.stride = stride; self.shift = shift; self.scale = scale
    }

    /// The C kernels' form, with `tokens` token rows per modulation row.
    func c(tokens: Int) -> mfx_modulation {
        mfx_modulation(mod: mod, stride: stride, shift: shift, scale: scale, tokens: tokens)
    }
}

public let layerNormEps: Float = 1e-6

/// x: [B, T, D], modulation rows [B, ·] → out: [B, T, D] (overwritten), mean, rstd: [B, T] (saved for backward).
public func layerNormModulateForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
    x: UnsafePointer<Float>, modulation m: Modulation, b: Int, t: Int, d: Int, threads: Int
) {
    withUnsafePointer(to: m.c(tokens: t)) { cm in
        parallelFor(b * t, threads: threads, grain: max(1, elementGrain / (4 * d))) { rows in
            mfx_layernorm_modulate_forward(kernelISA, out, mean, rstd, x, cm, layerNormEps, rows.lowerBound,
                                           rows.upperBound, d)
        }
    }
}

/// dout: [B, T, D] → dx: [B, T, D] (+=), dmod: rows [B, ·] at the shift/scale offsets (+=).
///
/// `dn = dout·(1 + scale)`, `dx = rstd·(dn − mean(dn) − n·mean(dn·n))`, `dshift = Σ_t dout`,
/// `dscale = Σ_t dout·n`. The token sums run in token order per (sample, 64-column block).
public func layerNormModulateBackward(
    dx: UnsafeMutablePointer<Float>, dmod: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    modulation m: Modulation, b: Int, t: Int, d: Int, threads: Int
) {
    withUnsafePointer(to: m.c(tokens: t)) { cm in
        parallelFor(b * t, threads: threads, grain: max(1, elementGrain / (4 * d))) { rows in
            mfx_layernorm_modulate_backward(kernelISA, dx, dout, x, mean, rstd, cm, rows.lowerBound, rows.upperBound, d)
        }
    }
    let block = 64, blocks = (d + block - 1) / block
    parallelFor(b * blocks, threads: b * t * d < elementGrain ? 1 : threads) { items in
        for item in items {
            let s = item / blocks, lo = (item % blocks) * block, w = min(d, lo + block) - lo
            let row = s * t
            mfx_layernorm_modulation_sums(kernelISA, dmod + s * m.stride + m.shift + lo, dmod + s * m.stride + m.scale + lo,
                                          dout + row * d + lo, x + row * d + lo, mean + row, rstd + row, t, d, w)
        }
    }
}

// MARK: - Gated residual: out = x + gate ⊙ y (gate one row per sample)

/// x, y: [B, T, D], gate at column offset `gate` of mod rows [B, stride] → out: [B, T, D] (may alias x).
public func gatedResidualForward(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
    mod: UnsafePointer<Float>, stride: Int, gate: Int, b: Int, t: Int, d: Int, threads: Int
) {
    // The GEMM epilogue of the same name does this on a linear layer's output blocks: one place maps a row to
    // its gate row.
    var ctx = mfx_gated_residual_epilogue_ctx(isa: kernelISA, out: out, x: x, ld: d, gate: mod + gate,
                                              gate_stride: stride, tokens: t)
    withUnsafePointer(to: &ctx) { ctx in
        parallelFor(b * t, threads: threads, grain: max(1, elementGrain / d)) { rows in
            mfx_gated_residual_epilogue(ctx, y + rows.lowerBound * d, d, rows.lowerBound, 0, rows.count, d)
        }
    }
}

/// dout: [B, T, D] → dy: [B, T, D] (+=), dmod at the gate offset (+=). The residual branch's gradient is
/// dout itself (identity), which the caller keeps flowing in its own buffer.
public func gatedResidualBackward(
    dy: UnsafeMutablePointer<Float>, dmod: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
    y: UnsafePointer<Float>, mod: UnsafePointer<Float>, stride: Int, gate: Int, b: Int, t: Int, d: Int, threads: Int
) {
    parallelFor(b * t, threads: threads, grain: max(1, elementGrain / d)) { rows in
        for row in rows {
            let g = mod + (row / t) * stride + gate
            axpyProduct(dy + row * d, g, dout + row * d, d)
        }
    }
    let block = 64, blocks = (d + block - 1) / block
    parallelFor(b * blocks, threads: b * t * d < elementGrain ? 1 : threads) { items in
        for item in items {
            let s = item / blocks, lo = (item % blocks) * block, w = min(d, lo + block) - lo
            let off = s * t * d + lo
            mfx_product_column_sums(kernelISA, dmod + s * stride + gate + lo, dout + off, y + off, t, d, w)
        }
    }
}

/// y += a ⊙ x over n floats.
@inlinable
func axpyProduct(_ y: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n { y.store8(y.simd8(i) + a.simd8(i) * x.simd8(i), i); i += 8 }
    while i < n { y[i] += a[i] * x[i]; i += 1 }
}
