import MixflowCore

// MARK: - RMSNorm with a learnable weight, then adaLN modulation (DiT^DH, docs/exactness.md §6.3)
// n = x·r, r = 1/√(mean(x²) + eps) (eps 1e-6, float32 as the official `_norm(x.float())`); y = n ⊙ w;
// out = y·(1 + scale) + shift. The modulation row of token row `row` is row / t: pass (b: B, t: T) for one
// row per sample (the encoder's adaLN) and (b: B·T, t: 1) for one row per token (the head and final layer).

public let rmsNormEps: Float = 1e-6

/// x: [b·t, D], w: [D], modulation rows [b, ·] → out: [b·t, D] (overwritten), rstd: [b·t] (saved for backward).
public func rmsNormModulateForward(
    out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, modulation m: Modulation, b: Int, t: Int, d: Int, threads: Int
) {
    parallelFor(b * t, threads: threads, grain: max(1, elementGrain / (4 * d))) { rows in
        for row in rows {
            let xr = x + row * d, or = out + row * d
            let base = m.mod + (row / t) * m.stride
            let shift = base + m.shift, scale = base + m.scale
            let r = 1 / (dot(xr, xr, d) / Float(d) + rmsNormEps).squareRoot()
            rstd[row] = r
            let rv = SIMD8<Float>(repeating: r)
            var i = 0
            while i + 8 <= d {
                let y = xr.simd8(i) * rv * weight.simd8(i)
                or.store8(y * (1 + scale.simd8(i)) + shift.simd8(i), i)
                i += 8
            }
            while i < d { or[i] = xr[i] * r * weight[i] * (1 + scale[i]) + shift[i]; i += 1 }
        }
    }
}

/// dout: [b·t, D] → dx: [b·t, D] (+=), dweight: [D] (+=), dmod at the shift and scale offsets (+=).
///
/// `dy = g ⊙ (1 + scale)`, `dn = dy ⊙ w`, `dx = r·(dn − n·mean(dn ⊙ n))`, `dw = Σ_rows dy ⊙ n`,
/// `dshift = Σ g`, `dscale = Σ g ⊙ y` (sums over the rows sharing a modulation row). The weight and
/// modulation sums run over column blocks, each block summing its rows in row order, so the result does
/// not depend on `threads`.
public func rmsNormModulateBackward(
    dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dmod: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    modulation m: Modulation, b: Int, t: Int, d: Int, threads: Int
) {
    parallelFor(b * t, threads: threads, grain: max(1, elementGrain / (4 * d))) { rows in
        for row in rows {
            let xr = x + row * d, gr = dout + row * d, dxr = dx + row * d
            let scale = m.mod + (row / t) * m.stride + m.scale
            let r = rstd[row]
            let rv = SIMD8<Float>(repeating: r)
            // c = mean(dn ⊙ n) with dn = g ⊙ (1 + scale) ⊙ w.
            var acc = SIMD8<Float>()
            var i = 0
            while i + 8 <= d {
                acc += gr.simd8(i) * (1 + scale.simd8(i)) * weight.simd8(i) * xr.simd8(i) * rv
                i += 8
            }
            var s = acc.sum()
            while i < d { s += gr[i] * (1 + scale[i]) * weight[i] * xr[i] * r; i += 1 }
            let c = SIMD8<Float>(repeating: s / Float(d)), cs = s / Float(d)
            i = 0
            while i + 8 <= d {
                let n = xr.simd8(i) * rv
                let dn = gr.simd8(i) * (1 + scale.simd8(i)) * weight.simd8(i)
                dxr.store8(dxr.simd8(i) + rv * (dn - n * c), i)
                i += 8
            }
            while i < d {
                let n = xr[i] * r, dn = gr[i] * (1 + scale[i]) * weight[i]
                dxr[i] += r * (dn - n * cs)
                i += 1
            }
        }
    }
    let block = 64, blocks = (d + block - 1) / block
    parallelFor(blocks, threads: b * t * d < elementGrain ? 1 : threads) { items in
        for blk in items {
            let lo = blk * block, w = min(d, lo + block) - lo
            let dw = dweight + lo, wv = weight + lo
            for row in 0..<(b * t) {
                let base = (row / t) * m.stride
                let dshift = dmod + base + m.shift + lo, dscale = dmod + base + m.scale + lo
                let scale = m.mod + base + m.scale + lo
                let xr = x + row * d + lo, gr = dout + row * d + lo
                let r = rstd[row]
                for j in 0..<w {
                    let n = xr[j] * r
                    dshift[j] += gr[j]
                    dscale[j] += gr[j] * n * wv[j]
                    dw[j] += gr[j] * (1 + scale[j]) * n
                }
            }
        }
    }
}
