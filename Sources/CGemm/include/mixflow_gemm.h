/* libmixflow's own single-precision GEMM (private: mfx_* symbols are not exported, see mixflow.map).
 *
 * C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] + beta · C, row-major, op = identity or transpose.
 *
 * Every element of C is ONE sequential chain of fused multiply-adds over k = 0, 1, ..., K-1:
 *     acc = (bias ? bias[j] : beta == 0 ? 0 : beta == 1 ? C[i,j] : beta · C[i,j])
 *     acc = fma(alpha · A[i,p], B[p,j], acc)    for p = 0 .. K-1, in order
 * (a bias row is the chain's start value, as if it had been copied into every row of C with beta 1, without
 * that pass over C).
 * K is never split into partial sums that are added afterwards: when K is blocked for the caches, the
 * accumulator is carried through C in memory, which holds exactly the float the register held. A row of C
 * therefore depends only on its row of A, the columns of B and K: not on the row's position in the call,
 * the shape of the call, the tiling, the thread count, or the instruction set. The AVX-512, AVX2 and
 * portable (C fmaf, correctly rounded) paths give the same bits on every x86-64 and ARM CPU. */
#ifndef MIXFLOW_GEMM_H
#define MIXFLOW_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The instruction-set paths of the GEMM, lowest first. */
enum {
    MFX_GEMM_PORTABLE = 0, /* plain C with fmaf (any CPU) */
    MFX_GEMM_AVX2 = 1,     /* AVX2 + FMA, 6×16 register tile */
    MFX_GEMM_AVX512 = 2,   /* AVX-512F, 12×32 register tile */
};

/* 1 when this CPU and its operating system can run `path` (checks CPUID and the saved register state). */
int mfx_gemm_supported(int path);

/* The micro-kernel's register tile of `path`: rows × columns of C computed at once. */
void mfx_gemm_tile(int path, int *rows, int *cols);

/* A GEMM epilogue: work done on finished parts of C while they are still in cache, instead of in a second pass
 * over C after the product (GELU of a linear layer's output, a gated residual). `apply` is called exactly once
 * for every element of C, a block at a time: rows × cols at `c` (row stride ldc), every chain in the block
 * complete; (i0, j0) is the block's position in the whole product (the offsets `row0`, `col0` of a split call
 * added). It reads the block and writes elsewhere; it must not write C. `ctx` is passed through. */
typedef void (*mfx_epilogue_fn)(const void *ctx, const float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t j0,
                                ptrdiff_t rows, ptrdiff_t cols);

/* The GEMM on `path` (which must be supported). Sizes are non-negative and the leading dimensions valid for
 * the row-major layout (lda >= k or m, ...); the caller checks them. beta == 0 overwrites C (C may hold
 * garbage). `bias` (n floats) or NULL: when given, every row's chains start from it and beta is not used.
 * `epilogue` (or NULL) with `ctx`, `row0`, `col0`: see mfx_epilogue_fn.
 * Returns 0, or -1 when the packing buffers (at most ~1.7 MiB, kept by the calling thread for its next calls)
 * cannot be allocated; C is then unchanged only if the failure happened before the first write, so
 * the caller treats -1 as fatal. */
int mfx_sgemm(int path, int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
              const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, const float *bias, float *c,
              ptrdiff_t ldc, mfx_epilogue_fn epilogue, const void *ctx, ptrdiff_t row0, ptrdiff_t col0);

#ifdef __cplusplus
}
#endif
#endif
