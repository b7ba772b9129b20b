internal import CKernels
import MixflowCore

// MARK: - Multi-head self-attention on a fused qkv (timm Attention, no q/k norm, no dropout)
// qkv row of a token: [q (D) | k (D) | v (D)], head h = columns [h·hd, (h+1)·hd) of each part, hd = D/H.
// O_h = softmax(Q_h K_hᵀ / √hd) V_h; heads concatenated in order.
// Only one [T, T] score matrix (plus its gradient in backward) exists per worker thread: scores are
// recomputed in backward instead of saved, which keeps training memory linear in T.

/// Runs `body(sample, head, p, dp)` for every (sample, head) pair, the pairs shared among `threads`
/// workers, each with its own two [T, T] scratch matrices. Each pair is computed by the same
/// single-threaded GEMM calls whatever the split, so results do not depend on `threads`.
func forEachHead(b: Int, heads: Int, t: Int, threads: Int,
                 _ body: (Int, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    Parallel.forRanges(b * heads, threads: threads) { pairs in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 2 * t * t)
        defer { p.deallocate() }
        for pair in pairs { body(pair / heads, pair % heads, p, p + t * t) }
    }
}

/// qkv: [B, T, 3D] → out: [B, T, D] (overwritten).
public func attentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, b: Int, t: Int, d: Int, heads: Int, threads: Int
) {
    let hd = d / heads
    let scale = 1 / Float(hd).squareRoot()
    forEachHead(b: b, heads: heads, t: t, threads: threads) { s, h, p, _ in
        let q = qkv + s * t * 3 * d + h * hd
        scores(p, q: q, k: q + d, t: t, hd: hd, ld: 3 * d, scale: scale)
        BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: q + 2 * d, ldb: 3 * d,
                   beta: 0, c: out + s * t * d + h * hd, ldc: d)
    }
}

/// dout: [B, T, D] → dqkv: [B, T, 3D] (+=).
///
/// `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dQ = dS K / √hd`, `dK = dSᵀ Q / √hd`.
/// P is recomputed from Q and K rather than saved.
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    b: Int, t: Int, d: Int, heads: Int, threads: Int
) {
    let hd = d / heads
    let scale = 1 / Float(hd).squareRoot()
    forEachHead(b: b, heads: heads, t: t, threads: threads) { s, h, p, dp in
        let q = qkv + s * t * 3 * d + h * hd, k = q + d, v = q + 2 * d
        let dq = dqkv + s * t * 3 * d + h * hd, dk = dq + d, dv = dq + 2 * d
        let dO = dout + s * t * d + h * hd
        scores(p, q: q, k: k, t: t, hd: hd, ld: 3 * d, scale: scale)
        BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, a: p, lda: t, b: dO, ldb: d,
                   beta: 1, c: dv, ldc: 3 * d)
        BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, a: dO, lda: d, b: v, ldb: 3 * d,
                   beta: 0, c: dp, ldc: t)
        mfx_softmax_backward_rows(kernelISA, dp, p, t, t)
        BLAS.sgemm(transA: false, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: k,
                   ldb: 3 * d, beta: 1, c: dq, ldc: 3 * d)
        BLAS.sgemm(transA: true, transB: false, m: t, n: hd, k: t, alpha: scale, a: dp, lda: t, b: q,
                   ldb: 3 * d, beta: 1, c: dk, ldc: 3 * d)
    }
}

/// p = row-softmax(scale · Q Kᵀ) for one (sample, head); q, k: [T, hd] with row stride ld → p: [T, T].
func scores(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, t: Int, hd: Int,
            ld: Int, scale: Float) {
    BLAS.sgemm(transA: false, transB: true, m: t, n: t, k: hd, alpha: scale, a: q, lda: ld, b: k, ldb: ld,
               beta: 0, c: p, ldc: t)
    mfx_softmax_rows(kernelISA, p, t, t)
}
