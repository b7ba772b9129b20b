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
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFX_X86 1
#endif

/* Cache blocking: a KC×NR panel of B (32 KiB for AVX-512) stays in L1 while the MC×KC block of A (MC =
 * MC_PANELS·MR rows) streams from L2. N is cut into equal blocks of at most NC columns (2048 → 2 × 1024, not
 * 1536 + 512); A is packed once per N block, so NC covers the widest layers of the models (1536: SiT-S's
 * qkv and fc1 pack A once, not twice: SiT-S/2 forward −3.2 % at 1 thread, −1.3 % at 2 on a Xeon). KC 192..384
 * measured within noise. */
enum { KC = 256, NC = 1536, MR_MAX = 16, NR_MAX = 32, MC_PANELS = 16 };

/* Multiplies the packed panels ap (MR×kc, k-major) and bp (kc×NR, k-major) into the MR×NR tile c. The
 * chain of element (i, j) starts from 0 (beta == 0), s[i·lds + j] (beta == 1) or beta·s[i·lds + j]: s is the
 * tile itself (s = c, lds = ldc) or a bias row repeated (lds = 0). `next` (or NULL) is the tile the driver
 * computes next (same ldc): a hint to prefetch, never read as a value. */
typedef void (*micro_kernel)(ptrdiff_t kc, const float *ap, const float *bp, const float *s, ptrdiff_t lds,
                             float beta, float *c, ptrdiff_t ldc, const float *next);
/* The same product with A read in place: a points at A's element (row 0, k 0) of the tile, rows lda apart
 * (row-major A, alpha 1: what packing would copy unchanged). */
typedef void (*micro_kernel_rows)(ptrdiff_t kc, const float *a, ptrdiff_t lda, const float *bp, const float *s,
                                  ptrdiff_t lds, float beta, float *c, ptrdiff_t ldc, const float *next);
/* Packing (see pack_a and pack_b): a path may move the data faster, never change a value. */
typedef void (*packer_a)(const float *a, ptrdiff_t lda, int trans, ptrdiff_t i0, ptrdiff_t p0, ptrdiff_t rows,
                         ptrdiff_t kc, int mr, float alpha, float *ap);
typedef void (*packer_b)(const float *b, ptrdiff_t ldb, int trans, ptrdiff_t p0, ptrdiff_t j0, ptrdiff_t kc,
                         ptrdiff_t cols, int nr, float *bp);

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

/* ---- portable path: plain C, fmaf (correctly rounded on every platform) ---- */

enum { MR_P = 4, NR_P = 16 };

static void kernel_portable(ptrdiff_t kc, const float *ap, const float *bp, const float *s, ptrdiff_t lds,
                            float beta, float *c, ptrdiff_t ldc, const float *next) {
    (void)next;
    float acc[MR_P][NR_P];
    for (int i = 0; i < MR_P; i++)
        for (int j = 0; j < NR_P; j++)
            acc[i][j] = beta == 0 ? 0 : beta == 1 ? s[i * lds + j] : beta * s[i * lds + j];
    for (ptrdiff_t p = 0; p < kc; p++, ap += MR_P, bp += NR_P)
        for (int i = 0; i < MR_P; i++)
            for (int j = 0; j < NR_P; j++) acc[i][j] = fmaf(ap[i], bp[j], acc[i][j]);
    for (int i = 0; i < MR_P; i++)
        for (int j = 0; j < NR_P; j++) c[i * ldc + j] = acc[i][j];
}

#if MFX_X86
/* ---- AVX2 + FMA: 6 rows × 16 columns = 12 ymm accumulators ---- */

enum { MR_2 = 6, NR_2 = 16 };

/* The body of both AVX2 kernels: A's element (i, p) is read at ap[i·ars + p·aks]. Inlined with the strides as
 * constants for packed panels (ars 1, aks MR_2) and with A's row stride for A read in place (ars lda, aks 1). */
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_body(ptrdiff_t kc, const float *ap, ptrdiff_t ars, ptrdiff_t aks, const float *bp,
                                    const float *s, ptrdiff_t lds, float beta, float *c, ptrdiff_t ldc) {
    __m256 acc[MR_2][2];
    const __m256 vb = _mm256_set1_ps(beta);
    for (int i = 0; i < MR_2; i++)
        for (int j = 0; j < 2; j++) {
            __m256 v = beta == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(s + i * lds + 8 * j);
            acc[i][j] = beta == 0 || beta == 1 ? v : _mm256_mul_ps(vb, v);
        }
    for (ptrdiff_t p = 0; p < kc; p++, ap += aks, bp += NR_2) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
        for (int i = 0; i < MR_2; i++) {
            const __m256 a = _mm256_broadcast_ss(ap + i * ars);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
    }
    for (int i = 0; i < MR_2; i++)
        for (int j = 0; j < 2; j++) _mm256_storeu_ps(c + i * ldc + 8 * j, acc[i][j]);
}

__attribute__((target("avx2,fma")))
static void kernel_avx2(ptrdiff_t kc, const float *ap, const float *bp, const float *s, ptrdiff_t lds, float beta,
                        float *c, ptrdiff_t ldc, const float *next) {
    (void)next;
    kernel_avx2_body(kc, ap, 1, MR_2, bp, s, lds, beta, c, ldc);
}

__attribute__((target("avx2,fma")))
static void kernel_avx2_rows(ptrdiff_t kc, const float *a, ptrdiff_t lda, const float *bp, const float *s,
                             ptrdiff_t lds, float beta, float *c, ptrdiff_t ldc, const float *next) {
    (void)next;
    kernel_avx2_body(kc, a, lda, 1, bp, s, lds, beta, c, ldc);
}

/* 8×8 transpose in registers: r[i] holds row i on entry and column i on return. */
__attribute__((target("avx2,fma")))
static inline void transpose8(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; i++) r[i] = t[i];
}

/* The lane mask selecting the first `count` (0..8) floats. */
__attribute__((target("avx2,fma")))
static inline __m256i first8(ptrdiff_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Loads up to 8 rows of 8 floats (row stride ld), `rows` real rows and `count` real columns (the rest zero),
 * then transposes. */
__attribute__((target("avx2,fma")))
static inline void load_transposed8(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t count, __m256 r[8]) {
    const __m256i mask = first8(count);
    for (ptrdiff_t i = 0; i < 8; i++) r[i] = i < rows ? _mm256_maskload_ps(src + i * ld, mask) : _mm256_setzero_ps();
    transpose8(r);
}

/* pack_a for AVX2 (the AVX-512 version with 8-float vectors). */
__attribute__((target("avx2,fma")))
static void pack_a_avx2(const float *a, ptrdiff_t lda, int trans, ptrdiff_t i0, ptrdiff_t p0, ptrdiff_t rows,
                        ptrdiff_t kc, int mr, float alpha, float *ap) {
    if (mr > 8) { pack_a(a, lda, trans, i0, p0, rows, kc, mr, alpha, ap); return; }
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256i keep = first8(mr);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += mr, ap += mr * kc) {
        const ptrdiff_t valid = rows - r0 < mr ? rows - r0 : mr;
        if (trans) {
            const __m256i load = first8(valid);
            const float *src = a + p0 * lda + i0 + r0;
            for (ptrdiff_t p = 0; p < kc; p++) {
                const __m256 v = _mm256_maskload_ps(src + p * lda, load);
                _mm256_maskstore_ps(ap + p * mr, keep, alpha == 1 ? v : _mm256_mul_ps(va, v));
            }
            continue;
        }
        const float *src = a + (i0 + r0) * lda + p0;
        for (ptrdiff_t p = 0; p < kc; p += 8) {
            const ptrdiff_t count = kc - p < 8 ? kc - p : 8;
            __m256 r[8];
            load_transposed8(src + p, lda, valid, count, r);
            for (ptrdiff_t q = 0; q < count; q++)
                _mm256_maskstore_ps(ap + (p + q) * mr, keep, alpha == 1 ? r[q] : _mm256_mul_ps(va, r[q]));
        }
    }
}

/* pack_b for AVX2 (the AVX-512 version with 8-float vectors). */
__attribute__((target("avx2,fma")))
static void pack_b_avx2(const float *b, ptrdiff_t ldb, int trans, ptrdiff_t p0, ptrdiff_t j0, ptrdiff_t kc,
                        ptrdiff_t cols, int nr, float *bp) {
    if (nr % 8 != 0) { pack_b(b, ldb, trans, p0, j0, kc, cols, nr, bp); return; }
    for (ptrdiff_t c0 = 0; c0 < cols; c0 += nr, bp += nr * kc)
        for (ptrdiff_t h = 0; h < nr; h += 8) {
            const ptrdiff_t valid = cols - c0 - h < 0 ? 0 : cols - c0 - h < 8 ? cols - c0 - h : 8;
            if (!trans) {
                const __m256i load = first8(valid);
                const float *src = b + p0 * ldb + j0 + c0 + h;
                for (ptrdiff_t p = 0; p < kc; p++) _mm256_store_ps(bp + p * nr + h, _mm256_maskload_ps(src + p * ldb, load));
                continue;
            }
            const float *src = b + (j0 + c0 + h) * ldb + p0;
            for (ptrdiff_t p = 0; p < kc; p += 8) {
                const ptrdiff_t count = kc - p < 8 ? kc - p : 8;
                __m256 r[8];
                load_transposed8(src + p, ldb, valid, count, r);
                for (ptrdiff_t q = 0; q < count; q++) _mm256_store_ps(bp + (p + q) * nr + h, r[q]);
            }
        }
}

/* ---- AVX-512F: 12 rows × 32 columns = 24 zmm accumulators ---- */

enum { MR_5 = 12, NR_5 = 32 };

__attribute__((target("avx512f,avx2,fma")))
static void kernel_avx512(ptrdiff_t kc, const float *ap, const float *bp, const float *s, ptrdiff_t lds,
                          float beta, float *c, ptrdiff_t ldc, const float *next) {
    __m512 acc[MR_5][2];
    const __m512 vb = _mm512_set1_ps(beta);
    for (int i = 0; i < MR_5; i++)
        for (int j = 0; j < 2; j++) {
            __m512 v = beta == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(s + i * lds + 16 * j);
            acc[i][j] = beta == 0 || beta == 1 ? v : _mm512_mul_ps(vb, v);
        }
    for (ptrdiff_t p = 0; p < kc; p++, ap += MR_5, bp += NR_5) {
        /* The next tile's chains start from its C, often far beyond L2: fetch its 24 lines, one every 4 steps,
         * while this tile computes (all at once would stall on the line-fill buffers). */
        if (next && (p & 3) == 0 && p < 4 * 2 * MR_5) __builtin_prefetch(next + (p >> 3) * ldc + ((p >> 2) & 1) * 16, 1, 3);
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

/* 16×16 transpose in registers: r[i] holds row i on entry and column i on return. */
__attribute__((target("avx512f,avx2,fma")))
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
}

/* Loads up to 16 rows of 16 floats (row stride ld) into r, `rows` real rows (the rest zero) and `count` real
 * columns (the rest zero), then transposes. */
__attribute__((target("avx512f,avx2,fma")))
static inline void load_transposed16(const float *src, ptrdiff_t ld, ptrdiff_t rows, ptrdiff_t count, __m512 r[16]) {
    const __mmask16 mask = (__mmask16)(count >= 16 ? 0xFFFF : (1u << count) - 1);
    for (ptrdiff_t i = 0; i < 16; i++) r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, src + i * ld) : _mm512_setzero_ps();
    transpose16(r);
}

/* pack_a for AVX-512: rows of a transposed A are copied as masked vectors; the row-major case moves 16×16
 * blocks through registers. */
__attribute__((target("avx512f,avx2,fma")))
static void pack_a_avx512(const float *a, ptrdiff_t lda, int trans, ptrdiff_t i0, ptrdiff_t p0, ptrdiff_t rows,
                          ptrdiff_t kc, int mr, float alpha, float *ap) {
    if (mr > 16) { pack_a(a, lda, trans, i0, p0, rows, kc, mr, alpha, ap); return; }
    const __m512 va = _mm512_set1_ps(alpha);
    const __mmask16 keep = (__mmask16)((1u << mr) - 1);
    for (ptrdiff_t r0 = 0; r0 < rows; r0 += mr, ap += mr * kc) {
        const ptrdiff_t valid = rows - r0 < mr ? rows - r0 : mr;
        if (trans) {
            const __mmask16 load = (__mmask16)((1u << valid) - 1);
            const float *src = a + p0 * lda + i0 + r0;
            for (ptrdiff_t p = 0; p < kc; p++) {
                const __m512 v = _mm512_maskz_loadu_ps(load, src + p * lda);
                _mm512_mask_storeu_ps(ap + p * mr, keep, alpha == 1 ? v : _mm512_mul_ps(va, v));
            }
            continue;
        }
        const float *src = a + (i0 + r0) * lda + p0;
        for (ptrdiff_t p = 0; p < kc; p += 16) {
            const ptrdiff_t count = kc - p < 16 ? kc - p : 16;
            __m512 r[16];
            load_transposed16(src + p, lda, valid, count, r);
            for (ptrdiff_t q = 0; q < count; q++)
                _mm512_mask_storeu_ps(ap + (p + q) * mr, keep, alpha == 1 ? r[q] : _mm512_mul_ps(va, r[q]));
        }
    }
}

/* pack_b for AVX-512: rows of an untransposed B are copied as masked vectors; the transposed case (B stored
 * [n, k], as nn.Linear weights) moves 16×16 blocks through registers. */
__attribute__((target("avx512f,avx2,fma")))
static void pack_b_avx512(const float *b, ptrdiff_t ldb, int trans, ptrdiff_t p0, ptrdiff_t j0, ptrdiff_t kc,
                          ptrdiff_t cols, int nr, float *bp) {
    if (nr % 16 != 0) { pack_b(b, ldb, trans, p0, j0, kc, cols, nr, bp); return; }
    for (ptrdiff_t c0 = 0; c0 < cols; c0 += nr, bp += nr * kc)
        for (ptrdiff_t h = 0; h < nr; h += 16) {
            const ptrdiff_t valid = cols - c0 - h < 0 ? 0 : cols - c0 - h < 16 ? cols - c0 - h : 16;
            if (!trans) {
                const __mmask16 load = (__mmask16)((1u << valid) - 1);
                const float *src = b + p0 * ldb + j0 + c0 + h;
                for (ptrdiff_t p = 0; p < kc; p++) _mm512_store_ps(bp + p * nr + h, _mm512_maskz_loadu_ps(load, src + p * ldb));
                continue;
            }
            const float *src = b + (j0 + c0 + h) * ldb + p0;
            for (ptrdiff_t p = 0; p < kc; p += 16) {
                const ptrdiff_t count = kc - p < 16 ? kc - p : 16;
                __m512 r[16];
                load_transposed16(src + p, ldb, valid, count, r);
                for (ptrdiff_t q = 0; q < count; q++) _mm512_store_ps(bp + (p + q) * nr + h, r[q]);
            }
        }
}
#endif

struct path {
    int mr, nr;
    micro_kernel kernel;
    micro_kernel_rows kernel_rows; /* NULL: A is always packed */
    packer_a pack_a;
    packer_b pack_b;
};

static const struct path paths[] = {
    {MR_P, NR_P, kernel_portable, NULL, pack_a, pack_b},
#if MFX_X86
    {MR_2, NR_2, kernel_avx2, kernel_avx2_rows, pack_a_avx2, pack_b_avx2},
    {MR_5, NR_5, kernel_avx512, NULL, pack_a_avx512, pack_b_avx512},
#else
    {MR_P, NR_P, kernel_portable, NULL, pack_a, pack_b},
    {MR_P, NR_P, kernel_portable, NULL, pack_a, pack_b},
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

void mfx_gemm_tile(int path, int *rows, int *cols) {
    const struct path *pt = &paths[path < 0 || path > MFX_GEMM_AVX512 ? 0 : path];
    *rows = pt->mr;
    *cols = pt->nr;
}

/* ---- the driver ---- */

static ptrdiff_t min_pd(ptrdiff_t x, ptrdiff_t y) { return x < y ? x : y; }

/* Each thread keeps its packing buffers (at most ~1.7 MiB) from call to call: a training step makes thousands
 * of calls, and a fresh buffer per call cost an mmap, page faults and the kernel clearing pages every time.
 * Grown on demand; freed when the thread exits (the key's destructor). */
struct workspace {
    float *data;
    size_t floats;
};
static pthread_key_t workspace_key;
static pthread_once_t workspace_once = PTHREAD_ONCE_INIT;
static int workspace_ready;

static void workspace_free(void *w) {
    free(((struct workspace *)w)->data);
    free(w);
}

static void workspace_create_key(void) { workspace_ready = pthread_key_create(&workspace_key, workspace_free) == 0; }

/* If the library is unloaded, no thread may later run the destructor from unmapped code: forget the key (the
 * buffers of threads still alive leak, once). */
__attribute__((destructor)) static void workspace_delete_key(void) {
    if (workspace_ready) pthread_key_delete(workspace_key);
    workspace_ready = 0;
}

/* The calling thread's buffer of at least `floats` floats, 64-byte aligned; NULL when out of memory. */
static float *workspace(size_t floats) {
    pthread_once(&workspace_once, workspace_create_key);
    if (!workspace_ready) return NULL;
    struct workspace *w = pthread_getspecific(workspace_key);
    if (!w) {
        if (!(w = calloc(1, sizeof *w))) return NULL;
        if (pthread_setspecific(workspace_key, w) != 0) { free(w); return NULL; }
    }
    if (w->floats < floats) {
        float *data = aligned_alloc(64, (floats * sizeof(float) + 63) & ~(size_t)63);
        if (!data) return NULL;
        free(w->data);
        w->data = data;
        w->floats = floats;
    }
    return w->data;
}

int mfx_sgemm(int path, int trans_a, int trans_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
              const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, const float *bias, float *c,
              ptrdiff_t ldc, mfx_epilogue_fn epilogue, const void *ctx, ptrdiff_t row0, ptrdiff_t col0) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) { /* an empty chain: C = its start (bias, or beta·C: 0 when beta == 0, whatever C held) */
        for (ptrdiff_t i = 0; i < m; i++)
            for (ptrdiff_t j = 0; j < n; j++) c[i * ldc + j] = bias ? bias[j] : beta == 0 ? 0 : beta * c[i * ldc + j];
        if (epilogue) epilogue(ctx, c, ldc, row0, col0, m, n);
        return 0;
    }
    const struct path *pt = &paths[path < 0 || path > MFX_GEMM_AVX512 ? 0 : path];
    const int mr = pt->mr, nr = pt->nr;
    const ptrdiff_t mc = (ptrdiff_t)mr * MC_PANELS;
    const ptrdiff_t kc_max = min_pd(k, KC);
    const ptrdiff_t n_blocks = (n + NC - 1) / NC;
    const ptrdiff_t nc_max = ((n + n_blocks - 1) / n_blocks + nr - 1) / nr * nr; /* equal blocks, whole panels */
    const ptrdiff_t mc_max = min_pd((m + mr - 1) / mr * mr, mc);
    const ptrdiff_t a_floats = (mc_max * kc_max + 15) & ~(ptrdiff_t)15; /* keeps bp 64-byte aligned */
    float *ap = workspace((size_t)(a_floats + nc_max * kc_max));
    if (!ap) return -1;
    float *bp = ap + a_floats;
    _Alignas(64) float tile[MR_MAX * NR_MAX];
    /* Row-major A with alpha 1 is read in place by paths that can (packing would copy it unchanged; it was
     * ~9 % of the time sampling a small SiT on an AMD EPYC); only a last partial row panel, which the kernel
     * reads as zero-padded, is packed. Same values in the same chains: same bits. */
    const int in_place = !trans_a && alpha == 1 && pt->kernel_rows;

    for (ptrdiff_t jc = 0; jc < n; jc += nc_max) {
        const ptrdiff_t nc = min_pd(nc_max, n - jc);
        for (ptrdiff_t pc = 0; pc < k; pc += KC) {
            const ptrdiff_t kc = min_pd(KC, k - pc);
            /* The first K block starts the chains from the bias row or beta·C; later ones continue from C. */
            const int from_bias = pc == 0 && bias;
            const float bt = from_bias || pc > 0 ? 1 : beta;
            pt->pack_b(b, ldb, trans_b, pc, jc, kc, nc, nr, bp);
            for (ptrdiff_t ic = 0; ic < m; ic += mc) {
                const ptrdiff_t mcur = min_pd(mc, m - ic);
                const ptrdiff_t whole = in_place ? mcur / mr * mr : 0; /* rows read in place */
                if (whole < mcur) pt->pack_a(a, lda, trans_a, ic + whole, pc, mcur - whole, kc, mr, alpha, ap + whole * kc);
                for (ptrdiff_t jr = 0; jr < nc; jr += nr) {
                    const ptrdiff_t cols = min_pd(nr, nc - jr);
                    for (ptrdiff_t ir = 0; ir < mcur; ir += mr) {
                        const ptrdiff_t rows = min_pd(mr, mcur - ir);
                        float *ct = c + (ic + ir) * ldc + jc + jr;
                        const float *st = from_bias ? bias + jc + jr : ct;
                        const ptrdiff_t lds = from_bias ? 0 : ldc;
                        const float *apanel = ap + ir * kc, *bpanel = bp + jr * kc;
                        if (rows == mr && cols == nr) {
                            /* the tile computed next: below this one, else the top of the next column */
                            const float *next = ir + 2 * mr <= mcur ? ct + mr * ldc
                                                : jr + 2 * nr <= nc ? c + ic * ldc + jc + jr + nr : NULL;
                            if (ir < whole) pt->kernel_rows(kc, a + (ic + ir) * lda + pc, lda, bpanel, st, lds, bt, ct, ldc, next);
                            else pt->kernel(kc, apanel, bpanel, st, lds, bt, ct, ldc, next);
                            continue;
                        }
                        memset(tile, 0, sizeof tile);
                        if (bt != 0)
                            for (ptrdiff_t i = 0; i < rows; i++) memcpy(tile + i * nr, st + i * lds, (size_t)cols * sizeof(float));
                        if (ir < whole) pt->kernel_rows(kc, a + (ic + ir) * lda + pc, lda, bpanel, tile, nr, bt, tile, nr, NULL);
                        else pt->kernel(kc, apanel, bpanel, tile, nr, bt, tile, nr, NULL);
                        for (ptrdiff_t i = 0; i < rows; i++) memcpy(ct + i * ldc, tile + i * nr, (size_t)cols * sizeof(float));
                    }
                }
                /* The last K block finished this block of C (mcur × nc, in L2): hand it on. */
                if (epilogue && pc + kc == k) epilogue(ctx, c + ic * ldc + jc, ldc, row0 + ic, col0 + jc, mcur, nc);
            }
        }
    }
    return 0;
}
