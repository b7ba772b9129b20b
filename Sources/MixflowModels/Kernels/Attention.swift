import MixflowCore

// MARK: - Multi-head self-attention on a fused qkv (timm Attention, no q/k norm, no dropout)
// qkv row of a token: [q (D) | k (D) | v (D)], head h = columns [h·hd, (h+1)·hd) of each part, hd = D/H.
// O_h = softmax(Q_h K_hᵀ / √hd) V_h; heads concatenated in order.
// Only one [T, T] score matrix (plus its gradient in backward) exists at a time: scores are recomputed
// in backward instead of saved, which keeps training memory linear in T.

/// Reusable [T, T] scratch for attention (two matrices).
public final class AttentionScratch {
    public private(set) var capacity = 0
    var p: UnsafeMutablePointer<Float>
    var dp: UnsafeMutablePointer<Float>
    public init() { p = .allocate(capacity: 1); dp = .allocate(capacity: 1) }
    deinit { p.deallocate(); dp.deallocate() }
    func reserve(_ t: Int) {
        guard t * t > capacity else { return }
        p.deallocate(); dp.deallocate()
        capacity = t * t
        p = .allocate(capacity: capacity); dp = .allocate(capacity: capacity)
    }
}

/// qkv: [B, T, 3D] → out: [B, T, D] (overwritten).
public func attentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, b: Int, t: Int, d: Int, heads: Int,
    scratch: AttentionScratch, threads: Int
) {
    let hd = d / heads
    let scale = 1 / Float(hd).squareRoot()
    scratch.reserve(t)
    let p = scratch.p
    for s in 0..<b {
        for h in 0..<heads {
            let q = qkv + s * t * 3 * d + h * hd
            scores(p, q: q, k: q + d, t: t, hd: hd, ld: 3 * d, scale: scale, threads: threads)
            BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: q + 2 * d, ldb: 3 * d,
                       beta: 0, c: out + s * t * d + h * hd, ldc: d)
        }
    }
}

/// dout: [B, T, D] → dqkv: [B, T, 3D] (+=).
///
/// `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = dS K / √hd`, `dK = dSᵀ Q / √hd`.
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    b: Int, t: Int, d: Int, heads: Int, scratch: AttentionScratch, threads: Int
) {
    let hd = d / heads
    let scale = 1 / Float(hd).squareRoot()
    scratch.reserve(t)
    let p = scratch.p, dp = scratch.dp
    for s in 0..<b {
        for h in 0..<heads {
            let q = qkv + s * t * 3 * d + h * hd, k = q + d, v = q + 2 * d
            let dq = dqkv + s * t * 3 * d + h * hd, dk = dq + d, dv = dq + 2 * d
            let dO = dout + s * t * d + h * hd
            scores(p, q: q, k: k, t: t, hd: hd, ld: 3 * d, scale: scale, threads: threads)
            BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: dO, ldb: d,
                       beta: 1, c: dv, ldc: 3 * d)
            BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, a: dO, lda: d, b: v, ldb: 3 * d,
                       beta: 0, c: dp, ldc: t)
            parallelFor(t, threads: threads, grain: max(1, elementGrain / (2 * t))) { rows in
                for r in rows {
                    let pr = p + r * t, dr = dp + r * t
                    let c = dot(pr, dr, t)
                    var j = 0
                    let cv = SIMD8<Float>(repeating: c)
                    while j + 8 <= t { dr.store8(pr.simd8(j) * (dr.simd8(j) - cv), j); j += 8 }
                    while j < t { dr[j] = pr[j] * (dr[j] - c); j += 1 }
                }
            }
            BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: k,
                       ldb: 3 * d, beta: 1, c: dq, ldc: 3 * d)
            BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: q,
                       ldb: 3 * d, beta: 1, c: dk, ldc: 3 * d)
        }
    }
}

/// p = row-softmax(scale · Q Kᵀ) for one (sample, head); q, k: [T, hd] with row stride ld → p: [T, T].
func scores(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, t: Int, hd: Int,
            ld: Int, scale: Float, threads: Int) {
    BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, alpha: scale, a: q, lda: ld, b: k, ldb: ld,
               beta: 0, c: p, ldc: t)
    parallelFor(t, threads: threads, grain: max(1, elementGrain / (4 * t))) { rows in
        for r in rows { softmaxRow(p + r * t, t) }
    }
}

/// In-place softmax of n floats (max-subtracted; SIMD exp; sums in a fixed order).
@inlinable
func softmaxRow(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    var mx = -Float.infinity
    var i = 0
    var mv = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n { mv = SIMDMath.maximum(mv, x.simd8(i)); i += 8 }
    mx = mv.max()
    while i < n { mx = Swift.max(mx, x[i]); i += 1 }
    let m8 = SIMD8<Float>(repeating: mx)
    var acc = SIMD8<Float>()
    i = 0
    while i + 8 <= n { let e = SIMDMath.exp(x.simd8(i) - m8); x.store8(e, i); acc += e; i += 8 }
    var s = acc.sum()
    while i < n {
        var v = SIMD8<Float>(repeating: 0); v[0] = x[i] - mx
        let e = SIMDMath.exp(v)[0]; x[i] = e; s += e; i += 1
    }
    let inv = SIMD8<Float>(repeating: 1 / s)
    i = 0
    while i + 8 <= n { x.store8(x.simd8(i) * inv, i); i += 8 }
    while i < n { x[i] *= inv[0]; i += 1 }
}
