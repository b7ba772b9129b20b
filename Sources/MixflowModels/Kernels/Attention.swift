internal import CKernels
import MixflowCore

// MARK: - Multi-head self-attention on a fused qkv (timm Attention, no q/k norm, no dropout)
// qkv row of a token: [q (D) | k (D) | v (D)], head h = columns [h·hd, (h+1)·hd) of each part, hd = D/H.
// O_h = softmax(Q_h K_hᵀ / √hd) V_h; heads concatenated in order.
// Each (sample, head) is one call of the fused C kernel (Sources/CKernels/attention_body.h), which computes the
// probabilities a block of query rows at a time and recomputes them in backward: no [T, T] matrix is ever
// whole, and training memory stays linear in T. Its products are the GEMM's FMA chains, so the bits are those
// of BLAS.sgemm + softmax and do not depend on the build, the thread count or the batch split.

/// Runs `body(sample, head, scratch)` for every (sample, head) pair, the pairs shared among `threads`
/// workers, each with its own scratch of `mfx_attention_scratch(t, hd)` floats.
func forEachHead(b: Int, heads: Int, t: Int, hd: Int, threads: Int,
                 _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
    Parallel.forRanges(b * heads, threads: threads) { pairs in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: mfx_attention_scratch(t, hd))
        defer { scratch.deallocate() }
        for pair in pairs { body(pair / heads, pair % heads, scratch) }
    }
}

/// qkv: [B, T, 3D] → out: [B, T, D] (overwritten).
public func attentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, b: Int, t: Int, d: Int, heads: Int, threads: Int
) {
    let hd = d / heads
    let scale = 1 / Float(hd).squareRoot()
    forEachHead(b: b, heads: heads, t: t, hd: hd, threads: threads) { s, h, scratch in
        let q = qkv + s * t * 3 * d + h * hd
        mfx_attention_forward(kernelISA, out + s * t * d + h * hd, d, q, q + d, q + 2 * d, 3 * d, t, hd, scale, scratch)
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
    forEachHead(b: b, heads: heads, t: t, hd: hd, threads: threads) { s, h, scratch in
        let q = qkv + s * t * 3 * d + h * hd
        let dq = dqkv + s * t * 3 * d + h * hd
        mfx_attention_backward(kernelISA, dq, dq + d, dq + 2 * d, 3 * d, dout + s * t * d + h * hd, d,
                               q, q + d, q + 2 * d, 3 * d, t, hd, scale, scratch)
    }
}
