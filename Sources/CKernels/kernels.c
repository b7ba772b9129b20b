/* The three builds of kernels_body.h and the per-call dispatch of mixflow_kernels.h. Compiled with
 * -ffp-contract=off (Package.swift), which is what makes the builds bit-identical. */
#include "mixflow_kernels.h"

#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef float vf __attribute__((vector_size(64)));   /* the 16 lanes every build computes on */
typedef int vi __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v4 __attribute__((vector_size(16)));
enum { W = 16 };

/* Helpers take and return vf by value: always inlined, so the vector ABI of a build (-Wpsabi) never matters. */
#define INLINE static inline __attribute__((always_inline))
#pragma clang diagnostic ignored "-Wpsabi"

#define K_(name, suffix) name##_##suffix
#define K2(name, suffix) K_(name, suffix)
#define K(name) K2(name, K_SUFFIX)

/* Register tiles of the attention products (attention_body.h): rows × 16-float vectors, sized to the build's
 * registers. The tile changes no bit, only the speed. */
#define K_SUFFIX portable
#define K_MASKED 0 /* row tails: memcpy (no masked moves) */
#define ATT_MR 4
#define ATT_NV 1
#include "kernels_body.h"
#include "attention_body.h"
#undef ATT_MR
#undef ATT_NV
#undef K_SUFFIX
#undef K_MASKED

#if defined(__x86_64__)
#define MFX_X86 1

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define K_SUFFIX avx2
#define K_MASKED 256 /* row tails: AVX2 masked moves */
#define ATT_MR 6 /* 6 × 16 floats: 12 ymm accumulators */
#define ATT_NV 1
#include "kernels_body.h"
#include "attention_body.h"
#undef ATT_MR
#undef ATT_NV
#undef K_SUFFIX
#undef K_MASKED
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#define K_SUFFIX avx512
#define K_MASKED 512 /* row tails: AVX-512 masked moves */
#define ATT_MR 6 /* 6 × 64 floats: 24 zmm accumulators */
#define ATT_NV 4
#include "kernels_body.h"
#include "attention_body.h"
#undef ATT_MR
#undef ATT_NV
#undef K_SUFFIX
#undef K_MASKED
#pragma clang attribute pop
#endif

int mfx_kernels_supported(int isa) {
    switch (isa) {
    case MFX_ISA_PORTABLE: return 1;
#if MFX_X86
    case MFX_ISA_AVX2:
        __builtin_cpu_init(); /* idempotent; the checks include the OS's saved register state */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case MFX_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    default: return 0;
    }
}

/* Calls the build of `fn` for `isa`; an unknown or unavailable isa on this architecture runs the portable build
 * (the Swift caller only passes supported ones). */
#if MFX_X86
#define DISPATCH(isa, fn, args)                                                                               \
    do {                                                                                                      \
        if ((isa) == MFX_ISA_AVX512) fn##_avx512 args;                                                        \
        else if ((isa) == MFX_ISA_AVX2) fn##_avx2 args;                                                       \
        else fn##_portable args;                                                                              \
    } while (0)
#else
#define DISPATCH(isa, fn, args) ((void)(isa), fn##_portable args)
#endif

void mfx_gelu_forward(int isa, float *out, const float *x, ptrdiff_t n) { DISPATCH(isa, gelu_forward, (out, x, n)); }
void mfx_gelu_forward_slope(int isa, float *act, float *slope, const float *x, ptrdiff_t n) {
    DISPATCH(isa, gelu_forward_slope, (act, slope, x, n));
}
void mfx_gelu_backward(int isa, float *dx, const float *dout, const float *x, ptrdiff_t n) {
    DISPATCH(isa, gelu_backward, (dx, dout, x, n));
}
void mfx_silu_forward(int isa, float *out, const float *x, ptrdiff_t n) { DISPATCH(isa, silu_forward, (out, x, n)); }
void mfx_silu_backward(int isa, float *dx, const float *dout, const float *x, ptrdiff_t n) {
    DISPATCH(isa, silu_backward, (dx, dout, x, n));
}
void mfx_swiglu_forward(int isa, float *out, const float *inp, ptrdiff_t rows, ptrdiff_t h) {
    DISPATCH(isa, swiglu_forward, (out, inp, rows, h));
}
void mfx_swiglu_backward(int isa, float *dinp, const float *dout, const float *inp, ptrdiff_t rows, ptrdiff_t h) {
    DISPATCH(isa, swiglu_backward, (dinp, dout, inp, rows, h));
}
void mfx_multiply(int isa, float *y, const float *x, ptrdiff_t n) { DISPATCH(isa, multiply, (y, x, n)); }
void mfx_gated_residual(int isa, float *out, const float *x, const float *g, const float *y, ptrdiff_t n) {
    DISPATCH(isa, gated_residual, (out, x, g, y, n));
}
void mfx_gelu_epilogue(const void *ctx, const float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t j0, ptrdiff_t rows,
                       ptrdiff_t cols) {
    const mfx_gelu_epilogue_ctx *e = ctx;
    for (ptrdiff_t r = 0; r < rows; r++) mfx_gelu_forward(e->isa, e->out + (i0 + r) * e->ldo + j0, c + r * ldc, cols);
}
void mfx_gated_residual_epilogue(const void *ctx, const float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t j0,
                                 ptrdiff_t rows, ptrdiff_t cols) {
    const mfx_gated_residual_epilogue_ctx *e = ctx;
    for (ptrdiff_t r = 0, i = i0; r < rows; r++, i++)
        mfx_gated_residual(e->isa, e->out + i * e->ld + j0, e->x + i * e->ld + j0,
                           e->gate + i / e->tokens * e->gate_stride + j0, c + r * ldc, cols);
}
void mfx_softmax_rows(int isa, float *p, ptrdiff_t rows, ptrdiff_t n) { DISPATCH(isa, softmax_rows, (p, rows, n)); }
void mfx_softmax_backward_rows(int isa, float *dp, const float *p, ptrdiff_t rows, ptrdiff_t n) {
    DISPATCH(isa, softmax_backward_rows, (dp, p, rows, n));
}
void mfx_layernorm_modulate_forward(int isa, float *out, float *mean, float *rstd, const float *x,
                                    const mfx_modulation *m, float eps, ptrdiff_t row0, ptrdiff_t row1, ptrdiff_t d) {
    DISPATCH(isa, norm_modulate_forward, (out, mean, rstd, x, NULL, m, eps, row0, row1, d));
}
void mfx_layernorm_modulate_backward(int isa, float *dx, const float *dout, const float *x, const float *mean,
                                     const float *rstd, const mfx_modulation *m, ptrdiff_t row0, ptrdiff_t row1,
                                     ptrdiff_t d) {
    DISPATCH(isa, norm_modulate_backward, (dx, dout, x, NULL, mean, rstd, m, row0, row1, d));
}
void mfx_rmsnorm_modulate_forward(int isa, float *out, float *rstd, const float *x, const float *w,
                                  const mfx_modulation *m, float eps, ptrdiff_t row0, ptrdiff_t row1, ptrdiff_t d) {
    DISPATCH(isa, norm_modulate_forward, (out, NULL, rstd, x, w, m, eps, row0, row1, d));
}
void mfx_rmsnorm_modulate_backward(int isa, float *dx, const float *dout, const float *x, const float *w,
                                   const float *rstd, const mfx_modulation *m, ptrdiff_t row0, ptrdiff_t row1,
                                   ptrdiff_t d) {
    DISPATCH(isa, norm_modulate_backward, (dx, dout, x, w, NULL, rstd, m, row0, row1, d));
}
void mfx_column_sums(int isa, float *out, const float *a, ptrdiff_t rows, ptrdiff_t ld, ptrdiff_t cols) {
    DISPATCH(isa, column_sums, (out, a, rows, ld, cols));
}
void mfx_product_column_sums(int isa, float *out, const float *a, const float *b, ptrdiff_t rows, ptrdiff_t ld,
                             ptrdiff_t cols) {
    DISPATCH(isa, product_column_sums, (out, a, b, rows, ld, cols));
}
void mfx_layernorm_modulation_sums(int isa, float *dshift, float *dscale, const float *dout, const float *x,
                                   const float *mean, const float *rstd, ptrdiff_t rows, ptrdiff_t ld, ptrdiff_t cols) {
    DISPATCH(isa, layernorm_modulation_sums, (dshift, dscale, dout, x, mean, rstd, rows, ld, cols));
}
void mfx_adamw(int isa, float *p, const float *g, float *m, float *v, ptrdiff_t n, float decay, float beta1,
               float beta2, float step_size, float bias2_sqrt, float eps) {
    DISPATCH(isa, adamw, (p, g, m, v, n, decay, beta1, beta2, step_size, bias2_sqrt, eps));
}
void mfx_ema(int isa, float *ema, const float *p, ptrdiff_t n, float decay, float weight) {
    DISPATCH(isa, ema, (ema, p, n, decay, weight));
}
size_t mfx_attention_scratch(ptrdiff_t t, ptrdiff_t hd) {
    const size_t tp = (size_t)(t + W - 1) / W * W, rows = MFX_ATTENTION_ROWS;
    return 4 * (size_t)hd * tp + 2 * rows * tp + rows * (size_t)hd;
}
void mfx_attention_forward(int isa, float *out, ptrdiff_t ldo, const float *q, const float *k, const float *v,
                           ptrdiff_t ld, ptrdiff_t t, ptrdiff_t hd, float scale, float *scratch) {
    DISPATCH(isa, attention_forward, (out, ldo, q, k, v, ld, t, hd, scale, scratch));
}
void mfx_attention_backward(int isa, float *dq, float *dk, float *dv, ptrdiff_t ldg, const float *dout,
                            ptrdiff_t ldo, const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                            ptrdiff_t hd, float scale, float *scratch) {
    DISPATCH(isa, attention_backward, (dq, dk, dv, ldg, dout, ldo, q, k, v, ld, t, hd, scale, scratch));
}
