#if canImport(Glibc)
import Glibc
#endif
import MixflowCore

// MARK: - 2-D rotary position embedding (VisionRotaryEmbeddingFast, docs/exactness.md §6.4)
// Tables [T, hd] (hd = head_dim): for token (row i, col j) the angles are [row angles (hd/2) | col angles (hd/2)],
// each half [p·θ_0, p·θ_0, p·θ_1, p·θ_1, …] with θ_k = 10000^(−2k/(hd/2)) — the FIRST half rotates with the
// ROW index. Applied to q and k of every head: pairs (2m, 2m+1) map
// (a, b) ↦ (a·cos[2m] − b·sin[2m], b·cos[2m+1] + a·sin[2m+1]) (t·cos + rotate_half(t)·sin).
// Rotation happens in place on the fused qkv, after the qkv Linear and before attention; the attention
// kernel then needs no hook, and backward rotates dq and dk back with the transposed map.

/// Fills the cos and sin tables [grid², hd] the way the official float32 code computes them: θ_k in float32
/// (`1 / 10000^(2k/dim)`), positions `p / G · G` in float32, angle = position·θ in float32, then cos/sin
/// (here in double, rounded: within 1 ulp of torch's float32 cos/sin).
/// Requires hd % 4 == 0 (each half holds whole (θ, θ) pairs).
public func ropeTables(cos cosOut: UnsafeMutablePointer<Float>, sin sinOut: UnsafeMutablePointer<Float>,
                       grid g: Int, headDim hd: Int) {
    let dim = hd / 2, nf = dim / 2
    let freqs: [Float] = (0..<nf).map { k in 1 / powf(10000, Float(2 * k) / Float(dim)) }
    let positions: [Float] = (0..<g).map { Float($0) / Float(g) * Float(g) }
    for i in 0..<g {
        for j in 0..<g {
            let n = i * g + j
            for half in 0..<2 {
                let p = half == 0 ? positions[i] : positions[j]
                for k in 0..<nf {
                    let angle = Double(p * freqs[k])
                    let c = Float(Glibc.cos(angle)), s = Float(Glibc.sin(angle))
                    let col = half * dim + 2 * k
                    cosOut[n * hd + col] = c; cosOut[n * hd + col + 1] = c
                    sinOut[n * hd + col] = s; sinOut[n * hd + col + 1] = s
                }
            }
        }
    }
}

/// qkv: [B, T, 3D] (q and k parts rotated in place), cos, sin: [T, hd], hd = D / heads.
/// `inverse` applies the transposed map (the backward pass on dq, dk).
public func ropeApply(qkv: UnsafeMutablePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                      b: Int, t: Int, d: Int, heads: Int, inverse: Bool, threads: Int) {
    let hd = d / heads
    parallelFor(b * t, threads: threads, grain: max(1, elementGrain / (4 * d))) { rows in
        for row in rows {
            let c = cos + (row % t) * hd, s = sin + (row % t) * hd
            for part in 0..<2 {
                let base = qkv + row * 3 * d + part * d
                for h in 0..<heads {
                    let v = base + h * hd
                    var m = 0
                    while m < hd {
                        let a = v[m], bb = v[m + 1]
                        if inverse {
                            v[m] = a * c[m] + bb * s[m + 1]
                            v[m + 1] = bb * c[m + 1] - a * s[m]
                        } else {
                            v[m] = a * c[m] - bb * s[m]
                            v[m + 1] = bb * c[m + 1] + a * s[m + 1]
                        }
                        m += 2
                    }
                }
            }
        }
    }
}

// MARK: - Gaussian Fourier timestep features (GaussianFourierEmbedding, docs/exactness.md §6.2)
// e(τ) = [sin(2π·τ·W), cos(2π·τ·W)] (SIN first), W: [256] stored in the checkpoint (N(0, 1) at init).

public let fourierFeatures = 256

/// t: [B], w: [256] → out: [B, 512] (overwritten). The angle is formed in float32 in the official order
/// ((τ·W)·2)·π; sin/cos of it are evaluated in double and rounded.
public func fourierFeaturesForward(out: UnsafeMutablePointer<Float>, t: UnsafePointer<Float>, w: UnsafePointer<Float>,
                                   b: Int) {
    for s in 0..<b {
        for k in 0..<fourierFeatures {
            let angle = Double(t[s] * w[k] * 2 * Float.pi)
            out[s * 2 * fourierFeatures + k] = Float(Glibc.sin(angle))
            out[s * 2 * fourierFeatures + fourierFeatures + k] = Float(Glibc.cos(angle))
        }
    }
}
