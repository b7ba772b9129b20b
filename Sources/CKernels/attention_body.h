/* Attention O = softmax(scale·Q Kᵀ) V for one (sample, head), forward and backward, blocked over query rows.
 * Included by kernels.c after kernels_body.h, three times like it (same rules: vf arithmetic, no contraction).
 *
 * Every product element is the GEMM's chain (docs/gemm.md): acc = 0 or C, then acc = fma(a, b, acc) over the
 * inner index in ascending order, with alpha folded into `a` by one rounded multiply. The rows are cut into
 * blocks of MFX_ATTENTION_ROWS queries; a chain over query rows (dV, dK) continues from the float the
 * previous block stored, so blocking, tile shapes and the build change no bit, and the results equal those
 * of BLAS.sgemm plus the softmax kernels (the unfused path, KernelBuildTests). What this saves over that path:
 * the [T, T] score matrix (only a block of rows exists), the packing copies of each small product (only Kᵀ
 * and Vᵀ, [hd, T], are transposed once per head) and the per-call allocations.
 *
 * ATT_MR × ATT_NV vectors is the register tile of the build, defined by kernels.c. */

/* Every lane *p (a broadcast load; K(splat)'s 0 + x would also turn −0 into +0, which the GEMM does not). */
INLINE vf K(att_broadcast)(const float *p) {
    vf v;
    for (int i = 0; i < W; i++) v[i] = *p;
    return v;
}

/* Rows r < R, vectors v < NV (16 floats each; when `partial`, NV is 1 and only `cols` lanes are valid) of
 * c[r·ldc + j]: acc = accumulate ? c : 0; for p < kc: acc = fma(a[r·ar + p·ap], b[p·ldb + j], acc). */
INLINE void K(att_tile)(const int R, const int NV, const int partial, ptrdiff_t cols, ptrdiff_t kc,
                        const float *a, ptrdiff_t ar, ptrdiff_t ap, const float *b, ptrdiff_t ldb, float *c,
                        ptrdiff_t ldc, int accumulate) {
    vf acc[ATT_MR][ATT_NV];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            const float *cp = c + r * ldc + v * W;
            acc[r][v] = !accumulate ? (vf){0} : partial ? K(load_tail)(cp, cols, 0.0f) : K(load)(cp);
        }
    for (ptrdiff_t p = 0; p < kc; p++) {
        vf bv[ATT_NV];
        for (int v = 0; v < NV; v++)
            bv[v] = partial ? K(load_tail)(b + p * ldb, cols, 0.0f) : K(load)(b + p * ldb + v * W);
        for (int r = 0; r < R; r++) {
            const vf av = K(att_broadcast)(a + r * ar + p * ap);
            for (int v = 0; v < NV; v++) acc[r][v] = __builtin_elementwise_fma(av, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) {
            float *cp = c + r * ldc + v * W;
            if (partial) K(store_tail)(cp, acc[r][v], cols);
            else K(store)(cp, acc[r][v]);
        }
}

/* c (m × n, row stride ldc) = or += A·B, A(r, p) = a[r·ar + p·ap] (m × kc), B = b (kc × n, row stride ldb). */
static void K(att_product)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t kc, const float *a, ptrdiff_t ar, ptrdiff_t ap,
                           const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc, int accumulate) {
#define ATT_ROWS(NV, partial, cols)                                                                           \
    do {                                                                                                      \
        ptrdiff_t r = 0;                                                                                      \
        for (; r + ATT_MR <= m; r += ATT_MR)                                                                  \
            K(att_tile)(ATT_MR, NV, partial, cols, kc, a + r * ar, ar, ap, b + j, ldb, c + r * ldc + j, ldc,  \
                        accumulate);                                                                          \
        for (; r < m; r++)                                                                                    \
            K(att_tile)(1, NV, partial, cols, kc, a + r * ar, ar, ap, b + j, ldb, c + r * ldc + j, ldc,       \
                        accumulate);                                                                          \
    } while (0)
    ptrdiff_t j = 0;
    for (; j + ATT_NV * W <= n; j += ATT_NV * W) ATT_ROWS(ATT_NV, 0, W);
    for (; j + W <= n; j += W) ATT_ROWS(1, 0, W);
    if (j < n) ATT_ROWS(1, 1, n - j);
#undef ATT_ROWS
}

/* kt[p·tp + j] = k[j·ld + p] for j < t, zero for t ≤ j < tp: Kᵀ as the B operand of Q Kᵀ. In blocks of 16
 * rows of k, so the reads stay in a few cache lines. */
static void K(att_transpose)(float *kt, const float *k, ptrdiff_t ld, ptrdiff_t t, ptrdiff_t tp, ptrdiff_t hd) {
    for (ptrdiff_t j0 = 0; j0 < tp; j0 += W)
        for (ptrdiff_t p = 0; p < hd; p++)
            for (ptrdiff_t j = j0; j < j0 + W; j++) kt[p * tp + j] = j < t ? k[j * ld + p] : 0;
}

/* The t rows of hd floats of x (row stride ld) packed with stride hd: the B operands read row after row, and
 * rows ld = 3·D floats apart (4.5 KiB for D = 384) map to few L1 sets. */
static void K(att_copy)(float *dst, const float *x, ptrdiff_t ld, ptrdiff_t t, ptrdiff_t hd) {
    for (ptrdiff_t j = 0; j < t; j++) memcpy(dst + j * hd, x + j * ld, (size_t)hd * sizeof(float));
}

/* Rows [i0, i0 + rows) of P = softmax(scale·Q Kᵀ) into p (row stride tp); sq: rows × hd scratch. */
static void K(att_probabilities)(float *p, float *sq, const float *q, ptrdiff_t ld, const float *kt, ptrdiff_t i0,
                                 ptrdiff_t rows, ptrdiff_t t, ptrdiff_t tp, ptrdiff_t hd, float scale) {
    for (ptrdiff_t r = 0; r < rows; r++)
        for (ptrdiff_t e = 0; e < hd; e++) sq[r * hd + e] = scale * q[(i0 + r) * ld + e];
    K(att_product)(rows, tp, hd, sq, hd, 1, kt, tp, p, tp, 0);
    for (ptrdiff_t r = 0; r < rows; r++) K(softmax_rows)(p + r * tp, 1, t);
}

static void K(attention_forward)(float *out, ptrdiff_t ldo, const float *q, const float *k, const float *v,
                                 ptrdiff_t ld, ptrdiff_t t, ptrdiff_t hd, float scale, float *scratch) {
    const ptrdiff_t tp = (t + W - 1) / W * W, rb = MFX_ATTENTION_ROWS;
    float *kt = scratch, *vc = kt + hd * tp, *p = vc + hd * tp, *sq = p + rb * tp;
    K(att_transpose)(kt, k, ld, t, tp, hd);
    K(att_copy)(vc, v, ld, t, hd);
    for (ptrdiff_t i0 = 0; i0 < t; i0 += rb) {
        const ptrdiff_t rows = t - i0 < rb ? t - i0 : rb;
        K(att_probabilities)(p, sq, q, ld, kt, i0, rows, t, tp, hd, scale);
        K(att_product)(rows, hd, t, p, tp, 1, vc, hd, out + i0 * ldo, ldo, 0); /* O = P V */
    }
}

static void K(attention_backward)(float *dq, float *dk, float *dv, ptrdiff_t ldg, const float *dout, ptrdiff_t ldo,
                                  const float *q, const float *k, const float *v, ptrdiff_t ld, ptrdiff_t t,
                                  ptrdiff_t hd, float scale, float *scratch) {
    const ptrdiff_t tp = (t + W - 1) / W * W, rb = MFX_ATTENTION_ROWS;
    float *kt = scratch, *vt = kt + hd * tp, *kc = vt + hd * tp, *qc = kc + hd * tp;
    float *p = qc + hd * tp, *ds = p + rb * tp, *sq = ds + rb * tp;
    K(att_transpose)(kt, k, ld, t, tp, hd);
    K(att_transpose)(vt, v, ld, t, tp, hd);
    K(att_copy)(kc, k, ld, t, hd);
    K(att_copy)(qc, q, ld, t, hd);
    for (ptrdiff_t i0 = 0; i0 < t; i0 += rb) {
        const ptrdiff_t rows = t - i0 < rb ? t - i0 : rb;
        const float *g = dout + i0 * ldo;
        K(att_probabilities)(p, sq, q, ld, kt, i0, rows, t, tp, hd, scale);
        K(att_product)(t, hd, rows, p, 1, tp, g, ldo, dv, ldg, 1);   /* dV += Pᵀ dO (these rows' terms) */
        K(att_product)(rows, tp, hd, g, ldo, 1, vt, tp, ds, tp, 0);  /* dP = dO Vᵀ */
        for (ptrdiff_t r = 0; r < rows; r++) {
            float *d = ds + r * tp;
            K(softmax_backward_rows)(d, p + r * tp, 1, t);           /* dS = P ⊙ (dP − rowsum(P ⊙ dP)) */
            for (ptrdiff_t j = 0; j < t; j++) d[j] = scale * d[j];
        }
        K(att_product)(rows, hd, t, ds, tp, 1, kc, hd, dq + i0 * ldg, ldg, 1);    /* dQ += scale·dS K */
        K(att_product)(t, hd, rows, ds, 1, tp, qc + i0 * hd, hd, dk, ldg, 1);   /* dK += scale·dSᵀ Q */
    }
}
