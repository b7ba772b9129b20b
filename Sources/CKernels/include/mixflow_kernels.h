/* libmixflow's element-wise and row-wise model kernels (private: mfx_* symbols are not exported, see mixflow.map).
 *
 * Every kernel exists in three builds of ONE source (kernels_body.h): portable (the compiler's baseline: SSE2 on
 * x86-64, NEON on aarch64), AVX2 and AVX-512, chosen per call by `isa`. All three compute the same float32
 * operations in the same order on 16-lane vectors (the AVX2 build runs each as two 8-lane halves, the portable
 * build as four 4-lane quarters), reductions included, and nothing is contracted into an FMA
 * (-ffp-contract=off, Package.swift). The three builds therefore give the same bits; only the speed differs.
 *
 * Layout: row-major float32; a "row" is the last dimension. Sizes are non-negative and already validated by the
 * caller. "+=" marks outputs that are accumulated into, everything else is overwritten. */
#ifndef MIXFLOW_KERNELS_H
#define MIXFLOW_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The instruction-set builds, lowest first (the numbers of ISALevel in Sources/MixflowCore/ISA.swift). */
enum {
    MFX_ISA_PORTABLE = 0, /* baseline target of the compiler */
    MFX_ISA_AVX2 = 1,     /* AVX2 (x86-64 only) */
    MFX_ISA_AVX512 = 2,   /* AVX-512 F/BW/DQ/VL (x86-64 only) */
};

/* 1 when this CPU and its operating system can run the `isa` build (CPUID and the saved register state). */
int mfx_kernels_supported(int isa);

/* Where the adaLN shift and scale of a token row live: row `row / tokens` of `mod` (row stride `stride`), at
 * column offsets `shift` and `scale`. */
typedef struct mfx_modulation {
    const float *mod;
    ptrdiff_t stride, shift, scale, tokens;
} mfx_modulation;

/* GELU, tanh approximation: g(x) = ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), tanh(u) = 1 − 2/(e^{2u} + 1). */
void mfx_gelu_forward(int isa, float *out, const float *x, ptrdiff_t n);
/* act = g(x), slope = g'(x) (for backward: one tanh per element instead of two). */
void mfx_gelu_forward_slope(int isa, float *act, float *slope, const float *x, ptrdiff_t n);
/* dx += g'(x)·dout. */
void mfx_gelu_backward(int isa, float *dx, const float *dout, const float *x, ptrdiff_t n);

/* SiLU s(x) = x·σ(x), σ(x) = 1/(1 + e^{−x}); backward dx += dout·σ(x)·(1 + x·(1 − σ(x))). */
void mfx_silu_forward(int isa, float *out, const float *x, ptrdiff_t n);
void mfx_silu_backward(int isa, float *dx, const float *dout, const float *x, ptrdiff_t n);
/* SwiGLU over `rows` rows of [a (h) | b (h)]: out[r] = s(a)·b ([rows, h]); backward da += dout·b·s'(a),
 * db += dout·s(a) into dinp ([rows, 2h]). */
void mfx_swiglu_forward(int isa, float *out, const float *inp, ptrdiff_t rows, ptrdiff_t h);
void mfx_swiglu_backward(int isa, float *dinp, const float *dout, const float *inp, ptrdiff_t rows, ptrdiff_t h);

/* y = y ⊙ x over n floats. */
void mfx_multiply(int isa, float *y, const float *x, ptrdiff_t n);
/* out = x + g ⊙ y over n floats: the adaLN gated residual of one token row (out may alias x). */
void mfx_gated_residual(int isa, float *out, const float *x, const float *g, const float *y, ptrdiff_t n);

/* GEMM epilogues (mfx_epilogue_fn, Sources/CGemm/include/mixflow_gemm.h): a kernel above applied to a finished
 * block of a linear layer's output C while the GEMM has it in cache, instead of in a pass of its own over C.
 * Each output element is computed from the same inputs by the same operations as the kernel, so the bits are
 * the kernel's. `ctx` points to the struct named after the function. */
typedef struct mfx_gelu_epilogue_ctx {
    int isa;
    float *out; /* [rows of C, columns of C], row stride ldo: out = g(C) */
    ptrdiff_t ldo;
} mfx_gelu_epilogue_ctx;
void mfx_gelu_epilogue(const void *ctx, const float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t j0, ptrdiff_t rows,
                       ptrdiff_t cols);
typedef struct mfx_gated_residual_epilogue_ctx {
    int isa;
    float *out;       /* out = x + gate ⊙ C, row stride ld (may alias x) */
    const float *x;   /* row stride ld */
    ptrdiff_t ld;
    const float *gate; /* row i of C reads gate row i / tokens, rows gate_stride apart */
    ptrdiff_t gate_stride, tokens;
} mfx_gated_residual_epilogue_ctx;
void mfx_gated_residual_epilogue(const void *ctx, const float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t j0,
                                 ptrdiff_t rows, ptrdiff_t cols);

/* In-place softmax of each of `rows` rows of n floats (max subtracted). */
void mfx_softmax_rows(int isa, float *p, ptrdiff_t rows, ptrdiff_t n);
/* Softmax backward in place: dp = p ⊙ (dp − Σ_j p_j·dp_j), row by row. */
void mfx_softmax_backward_rows(int isa, float *dp, const float *p, ptrdiff_t rows, ptrdiff_t n);

/* LayerNorm (no affine, biased variance, two passes) then adaLN modulation, token rows [row0, row1) of width d:
 * out = (x − mean)·rstd·(1 + scale) + shift; mean and rstd ([rows]) are saved for backward. */
void mfx_layernorm_modulate_forward(int isa, float *out, float *mean, float *rstd, const float *x,
                                    const mfx_modulation *m, float eps, ptrdiff_t row0, ptrdiff_t row1, ptrdiff_t d);
/* dx += rstd·(dn − mean(dn) − n·mean(dn ⊙ n)), dn = dout·(1 + scale), n = (x − mean)·rstd. */
void mfx_layernorm_modulate_backward(int isa, float *dx, const float *dout, const float *x, const float *mean,
                                     const float *rstd, const mfx_modulation *m, ptrdiff_t row0, ptrdiff_t row1,
                                     ptrdiff_t d);

/* RMSNorm with weight w then adaLN modulation: out = x·r·w·(1 + scale) + shift, r = 1/√(mean(x²) + eps) (saved). */
void mfx_rmsnorm_modulate_forward(int isa, float *out, float *rstd, const float *x, const float *w,
                                  const mfx_modulation *m, float eps, ptrdiff_t row0, ptrdiff_t row1, ptrdiff_t d);
/* dx += r·(dn − n·mean(dn ⊙ n)), dn = dout·(1 + scale)·w, n = x·r. */
void mfx_rmsnorm_modulate_backward(int isa, float *dx, const float *dout, const float *x, const float *w,
                                   const float *rstd, const mfx_modulation *m, ptrdiff_t row0, ptrdiff_t row1,
                                   ptrdiff_t d);

/* Column sums, each column over its rows in row order (so the result is the same however columns are split):
 * out[j] += Σ_r a[r·ld + j]; with b, out[j] += Σ_r a[r·ld + j]·b[r·ld + j]; j < cols. */
void mfx_column_sums(int isa, float *out, const float *a, ptrdiff_t rows, ptrdiff_t ld, ptrdiff_t cols);
void mfx_product_column_sums(int isa, float *out, const float *a, const float *b, ptrdiff_t rows, ptrdiff_t ld,
                             ptrdiff_t cols);
/* The adaLN gradients of a LayerNorm-modulate over `rows` token rows of one sample, in row order:
 * dshift[j] += Σ dout, dscale[j] += Σ dout·(x − mean)·rstd; j < cols, rows ld apart. */
void mfx_layernorm_modulation_sums(int isa, float *dshift, float *dscale, const float *dout, const float *x,
                                   const float *mean, const float *rstd, ptrdiff_t rows, ptrdiff_t ld, ptrdiff_t cols);

/* AdamW over n elements (torch.optim.AdamW, non-fused): p ← p·decay (when decay ≠ 1); m ← β1·m + (1 − β1)·g;
 * v ← β2·v + (1 − β2)·g²; p ← p − step_size·m / (√v / bias2_sqrt + eps). */
void mfx_adamw(int isa, float *p, const float *g, float *m, float *v, ptrdiff_t n, float decay, float beta1,
               float beta2, float step_size, float bias2_sqrt, float eps);
/* ema ← decay·ema + weight·p. */
void mfx_ema(int isa, float *ema, const float *p, ptrdiff_t n, float decay, float weight);

/* Attention of one (sample, head): O = softmax(scale·Q Kᵀ) V. q, k, v: [t, hd] with row stride ld (the head's
 * columns of a fused qkv); out: [t, hd], row stride ldo (overwritten). Computed in blocks of
 * MFX_ATTENTION_ROWS query rows, so only a block of the [t, t] probabilities exists; every product element is
 * one sequential FMA chain as in BLAS.sgemm (docs/gemm.md), which makes the bits equal to sgemm + softmax_rows.
 * scratch: mfx_attention_scratch(t, hd) floats, not shared with another call running at the same time. */
enum { MFX_ATTENTION_ROWS = 48 };
size_t mfx_attention_scratch(ptrdiff_t t, ptrdiff_t hd);
void mfx_attention_forward(int isa, float *out, ptrdiff_t ldo, const float *q, const float *k, const float *v,
                           ptrdiff_t ld, ptrdiff_t t, ptrdiff_t hd, float scale, float *scratch);
/* Its backward, probabilities recomputed from q and k: with dout [t, hd] (row stride ldo),
 * dv += Pᵀ dout, dS = P ⊙ (dP − rowsum(P ⊙ dP)) with dP = dout Vᵀ, dq += scale·dS K, dk += scale·dSᵀ Q;
 * dq, dk, dv: [t, hd], row stride ldg. */
void mfx_attention_backward(int isa, float *dq, float *dk, float *dv, ptrdiff_t ldg, const float *dout,
                            ptrdiff_t ldo, const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                            ptrdiff_t hd, float scale, float *scratch);

#ifdef __cplusplus
}
#endif
#endif
