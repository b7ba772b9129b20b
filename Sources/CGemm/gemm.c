/* libmixflow's single-precision GEMM: one sequential FMA chain per element of C (see mixflow_gemm.h).
 *
 * The structure is the usual one of BLIS/GotoBLAS, kept small: C is cut into blocks of NC columns and K into
 * blocks of KC; B's block is packed into panels of NR columns, A's rows into panels of MR rows (alpha folded
 * in), and a register-blocked micro-kernel multiplies one MR×KC panel of A by one KC×NR panel of B into an
 * MR×NR tile of C. Only the micro-kernel (and nothing that changes a value) differs between the paths.
 * K blocks are visited in order and each starts from the float the previous one stored in C, so the chain
 * is never split. Edge tiles run the full-size kernel on a copy of the tile and copy back the valid part:
 * the padding rows/columns are zeros in the packed panels and never touch a valid element's chain.
 *
 * Compiled with -ffp-contract=off (Package.swift): the only fused operations are the explicit fmaf / FMA
 * intrinsics, identical in every path. */
#include "mixflow_gemm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFX_X86 1
#endif

enum { KC = 256, NC = 1024, MR_MAX = 16, NR_MAX = 32, MC_PANELS = 16 };

/* Multiplies the packed panels ap (MR×kc, k-major) and bp (kc×NR, k-major) into the MR×NR tile c. The
 * chain of each element starts from 0 (beta == 0), c (beta == 1) or beta·c. */
typedef void (*micro_kernel)(ptrdiff_t kc, const float *ap, const float *bp, float *c, ptrdiff_t ldc, float beta);

/* ---- portable path: plain C, fmaf (correctly rounded on every platform) ---- */

enum { MR_P = 4, NR_P = 16 };

static void kernel_portable(ptrdiff_t kc, const float *ap, const float *bp, float *c, ptrdiff_t ldc, float beta) {
    float acc[MR_P][NR_P];
    for (int i = 0; i < MR_P; i++)
        for (int j = 0; j < NR_P; j++)
            acc[i][j] = beta == 0 ? 0 : beta == 1 ? c[i * ldc + j] : beta * c[i * ldc + j];
    for (ptrdiff_t p = 0; p < kc; p++, ap += MR_P, bp += NR_P)
        for (int i = 0; i < MR_P; i++)
            for (int j = 0; j < NR_P; j++) acc[i][j] = fmaf(ap[i], bp[j], acc[i][j]);
    for (int i = 0; i < MR_P; i++)
        for (int j = 0; j < NR_P; j++) c[i * ldc + j] = acc[i][j];
}

#if MFX_X86
/* ---- AVX2 + FMA: 6 rows × 16 columns = 12 ymm accumulators ---- */

enum { MR_2 = 6, NR_2 = 16 };

__attribute__((target("avx2,fma")))
static void kernel_avx2(ptrdiff_t kc, const float *ap, const float *bp, float *c, ptrdiff_t ldc, float beta) {
    __m256 acc[MR_2][2];
    const __m256 vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR_2; i++)
        for (int j = 0; j < 2; j++) {
            __m256 v = beta == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(c + i * ldc + 8 * j);
            acc[i][j] = beta == 0 || beta == 1 ? v : _mm256_mul_ps(vb, v);
        }
    for (ptrdiff_t p = 0; p < kc; p++, ap += MR_2, bp += NR_2) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        for (int i = 0; i < MR_2; i++) {
            const __m256 a = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR_2; i++)
        for (int j = 0; j < 2; j++) _mm256_storeu_ps(c + i * ldc + 8 * j, acc[i][j]);
}

/* ---- AVX-512F: 12 rows × 32 columns = 24 zmm accumulators ---- */

enum { MR_5 = 12, NR_5 = 32 };

__attribute__((target("avx512f,avx2,fma")))
static void kernel_avx512(ptrdiff_t kc, const float *ap, const float *bp, float *c, ptrdiff_t ldc, float beta) {
    __m512 acc[MR_5][2];
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR_5; i++)
        for (int j = 0; j < 2; j++) {
            __m512 v = beta == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * ldc + 16 * j);
            acc[i][j] = beta == 0 || beta == 1 ? v : _mm512_mul_ps(vb, v);
        }
    for (ptrdiff_t p = 0; p < kc; p++, ap += MR_5, bp += NR_5) {
        const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
        for (int i = 0; i < MR_5; i++) {
            const __m512 a = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR_5; i++)
        for (int j = 0; j < 2; j++) _mm512_storeu_ps(c + i * ldc + 16 * j, acc[i][j]);
}
#endif

struct path {
    int mr, nr;
    micro_kernel kernel;
    const char *tile;
};

static const struct path paths[] = {
    {MR_P, NR_P, kernel_portable, "4x16"},
#if MFX_X86
    {MR_2, NR_2, kernel_avx2, "6x16"},
    {MR_5, NR_5, kernel_avx512, "12x32"},
#else
    {MR_P, NR_P, kernel_portable, "4x16"},
    {MR_P, NR_P, kernel_portable, "4x16"},
#endif
};

int mfx_gemm_supported(int path) {
    if (path == MFX_GEMM_PORTABLE) return 1;
#if MFX_X86
    __builtin_cpu_init(); /* idempotent; the checks below include the OS's saved register state */
    if (path == MFX_GEMM_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (path == MFX_GEMM_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

const char *mfx_gemm_tile(int path) {
    return path >= 0 && path <= MFX_GEMM_AVX512 ? paths[path].tile : "";
}

/* ---- packing (pure data movement, plus the one alpha multiply: identical for every path) ---- */

/* rows × kc of op(A) at (i0, p0) → panels of mr rows, each kc × mr (k-major), rows past `rows` zero. */
static void pack_a(const float *a, ptrdiff_t lda, int trans, ptrdiff_t i0, ptrdiff_t p0, ptrdiff_t rows,
                   ptrdiff_t kc, int mr, float alpha, float *ap) {
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += mr, ap += mr * kc) {
        const ptrdiff_t valid = rows - r0 < mr ? rows - r0 : mr;
        if (trans) {
            for (ptrdiff_t p = 0; p < kc; p++) {
                const float *src = a + (p0 + p) * lda + i0 + r0;
                float *dst = ap + p * mr;
                for (ptrdiff_t i = 0; i < valid; i++) dst[i] = alpha == 1 ? src[i] : alpha * src[i];
                for (ptrdiff_t i = valid; i < mr; i++) dst[i] = 0;
            }
        } else {
            for (ptrdiff_t i = 0; i < valid; i++) {
                const float *src = a + (i0 + r0 + i) * lda + p0;
                for (ptrdiff_t p = 0; p < kc; p++) ap[p * mr + i] = alpha == 1 ? src[p] : alpha * src[p];
            }
            for (ptrdiff_t i = valid; i < mr; i++)
                for (ptrdiff_t p = 0; p < kc; p++) ap[p * mr + i] = 0;
        }
    }
}

/* kc × cols of op(B) at (p0, j0) → panels of nr columns, each kc × nr (k-major), columns past `cols` zero. */
static void pack_b(const float *b, ptrdiff_t ldb, int trans, ptrdiff_t p0, ptrdiff_t j0, ptrdiff_t kc,
                   ptrdiff_t cols, int nr, float *bp) {
    for (ptrdiff_t c0 = 0; c0 < cols; c0 += nr, bp += nr * kc) {
        const ptrdiff_t valid = cols - c0 < nr ? cols - c0 : nr;
        if (trans) {
            for (ptrdiff_t j = 0; j < valid; j++) {
                const float *src = b + (j0 + c0 + j) * ldb + p0;
                for (ptrdiff_t p = 0; p < kc; p++) bp[p * nr + j] = src[p];
            }
            for (ptrdiff_t j = valid; j < nr; j++)
                for (ptrdiff_t p = 0; p < kc; p++) bp[p * nr + j] = 0;
        } else {
            for (ptrdiff_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + c0;
                float *dst = bp + p * nr;
                memcpy(dst, src, (size_t)valid * sizeof(float));
                for (ptrdiff_t j = valid; j < nr; j++) dst[j] = 0;
            }
        }
    }
}

/* ---- the driver ---- */

static ptrdiff_t min_pd(ptrdiff_t x, ptrdiff_t y) { return x < y ? x : y; }

static void *alloc_aligned(size_t floats) {
    size_t bytes = (floats * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes ? bytes : 64);
}

int mfx_sgemm(int path, int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
              const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) { /* an empty chain: C = beta·C (0 when beta == 0, whatever C held) */
        for (ptrdiff_t i = 0; i < m; i++)
            for (ptrdiff_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return 0;
    }
    const struct path *pt = &paths[path < 0 || path > MFX_GEMM_AVX512 ? 0 : path];
    const int mr = pt->mr, nr = pt->nr;
    const ptrdiff_t mc = (ptrdiff_t)mr * MC_PANELS;
    const ptrdiff_t kc_max = min_pd(k, KC);
    const ptrdiff_t nc_max = min_pd((n + nr - 1) / nr * nr, NC);
    const ptrdiff_t mc_max = min_pd((m + mr - 1) / mr * mr, mc);
    float *ap = alloc_aligned((size_t)(mc_max * kc_max));
    float *bp = alloc_aligned((size_t)(nc_max * kc_max));
    if (!ap || !bp) { free(ap); free(bp); return -1; }
    _Alignas(64) float tile[MR_MAX * NR_MAX];

    for (ptrdiff_t jc = 0; jc < n; jc += NC) {
        const ptrdiff_t nc = min_pd(NC, n - jc);
        for (ptrdiff_t pc = 0; pc < k; pc += KC) {
            const ptrdiff_t kc = min_pd(KC, k - pc);
            const float bt = pc == 0 ? beta : 1; /* later K blocks continue the chain stored in C */
            pack_b(b, ldb, trans_b, pc, jc, kc, nc, nr, bp);
            for (ptrdiff_t ic = 0; ic < m; ic += mc) {
                const ptrdiff_t mcur = min_pd(mc, m - ic);
                pack_a(a, lda, trans_a, ic, pc, mcur, kc, mr, alpha, ap);
                for (ptrdiff_t jr = 0; jr < nc; jr += nr) {
                    const ptrdiff_t cols = min_pd(nr, nc - jr);
                    for (ptrdiff_t ir = 0; ir < mcur; ir += mr) {
                        const ptrdiff_t rows = min_pd(mr, mcur - ir);
                        float *ct = c + (ic + ir) * ldc + jc + jr;
                        const float *apanel = ap + ir * kc, *bpanel = bp + jr * kc;
                        if (rows == mr && cols == nr) {
                            pt->kernel(kc, apanel, bpanel, ct, ldc, bt);
                            continue;
                        }
                        memset(tile, 0, sizeof tile);
                        if (bt != 0)
                            for (ptrdiff_t i = 0; i < rows; i++) memcpy(tile + i * nr, ct + i * ldc, (size_t)cols * sizeof(float));
                        pt->kernel(kc, apanel, bpanel, tile, nr, bt);
                        for (ptrdiff_t i = 0; i < rows; i++) memcpy(ct + i * ldc, tile + i * nr, (size_t)cols * sizeof(float));
                    }
                }
            }
        }
    }
    free(ap);
    free(bp);
    return 0;
}
