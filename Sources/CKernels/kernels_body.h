/* The kernels of mixflow_kernels.h, written once and included three times by kernels.c, each time inside a
 * `#pragma clang attribute` region that compiles it for one instruction set, with K(name) giving the name a
 * suffix (gelu_forward_avx512, ...). Nothing here depends on the instruction set.
 *
 * All arithmetic is on vf, sixteen float lanes, whatever the build; an operation on vf is the same sixteen
 * IEEE float32 operations in every build, and -ffp-contract=off keeps multiplies and adds separate. Reductions
 * accumulate lane-wise and finish with the fixed tree of hsum. Row tails shorter than 16 are computed by the
 * same vector code on a zero-padded copy, so an element's bits never depend on its position in the row.
 * This file has no include guard on purpose. */

/* ---- vector helpers ---- */

INLINE vf K(load)(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
INLINE void K(store)(float *p, vf v) { memcpy(p, &v, sizeof v); }
INLINE vf K(splat)(float x) { return (vf){0} + x; }
/* mask ? a : b, lane-wise, with bit operations. */
INLINE vf K(select)(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/* Lanes below k all ones. */
INLINE vi K(below)(ptrdiff_t k) {
    vi lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    return lane < (int)k;
}
#if K_MASKED == 256
/* Half h (0: lanes 0-7, 1: lanes 8-15) of a 16-lane mask, as the mask of an AVX2 masked move. */
INLINE __m256i K(half_mask)(vi m, int h) {
    return h ? (__m256i)__builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15)
             : (__m256i)__builtin_shufflevector(m, m, 0, 1, 2, 3, 4, 5, 6, 7);
}
#endif
/* The first k (< 16) floats of p, the other lanes `pad`; never reads past p + k. Masked moves where the build
 * has them (a variable-length memcpy is a library call per row tail); pure data movement either way. */
INLINE vf K(load_tail)(const float *p, ptrdiff_t k, float pad) {
    vf padv;
    for (int i = 0; i < W; i++) padv[i] = pad;
#if K_MASKED == 512
    return (vf)_mm512_mask_loadu_ps((__m512)padv, (__mmask16)((1u << k) - 1), p);
#elif K_MASKED == 256
    const vi m = K(below)(k);
    const v8 a = (v8)_mm256_maskload_ps(p, K(half_mask)(m, 0)), b = (v8)_mm256_maskload_ps(p + 8, K(half_mask)(m, 1));
    return K(select)(m, __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), padv);
#else
    memcpy(&padv, p, (size_t)k * sizeof(float));
    return padv;
#endif
}
INLINE void K(store_tail)(float *p, vf v, ptrdiff_t k) {
#if K_MASKED == 512
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << k) - 1), (__m512)v);
#elif K_MASKED == 256
    const vi m = K(below)(k);
    _mm256_maskstore_ps(p, K(half_mask)(m, 0), (__m256)__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
    _mm256_maskstore_ps(p + 8, K(half_mask)(m, 1), (__m256)__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
#else
    memcpy(p, &v, (size_t)k * sizeof(float));
#endif
}
/* Σ lanes in a fixed tree: halves added lane-wise until one lane is left. */
INLINE float K(hsum)(vf v) {
    v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (b[0] + b[2]) + (b[1] + b[3]);
}
INLINE float K(hmax)(vf v) {
    float m = v[0];
    for (int i = 1; i < W; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* e^x (Cephes expf polynomial, about 1 ulp on [−87, 88]; the same constants and operation order as
 * SIMDMath.exp). Inputs are clamped to [−87.33, 88.37]: e^−inf ≈ 1.2e−38, nothing overflows. NaN stays NaN. */
INLINE vf K(exp)(vf x) {
    const vf lo = K(splat)(-87.33f), hi = K(splat)(88.37f), magic = K(splat)(12582912.0f);
    x = K(select)(x < lo, lo, x);
    x = K(select)(x > hi, hi, x);
    vf shifted = x * 1.44269504088896341f + magic;       /* round(x / ln2) in the low mantissa bits */
    vf n = shifted - magic;
    vi ni = (vi)shifted - 0x4B400000;
    vf r = x - n * 0.693359375f;                         /* x − n·ln2, ln2 split in two for an exact reduction */
    r = r - n * -2.12194440e-4f;
    vf r2 = r * r;
    vf p = K(splat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    vf e = p * r2 + r + 1.0f;
    return e * (vf)((ni + 127) << 23);                   /* · 2^n from the exponent bits */
}
INLINE vf K(tanh)(vf u) { return 1.0f - 2.0f / (K(exp)(2.0f * u) + 1.0f); }
INLINE vf K(sigmoid)(vf x) { return 1.0f / (1.0f + K(exp)(-x)); }

/* Runs BODY on i = 0, 16, ... over n elements; the tail goes through the same BODY on padded copies
 * (LOADn(p) loads lanes i.. of p, STOREn(p, v) stores them). */
#define ELEMENTWISE(n, ...)                                                                                   \
    do {                                                                                                      \
        ptrdiff_t i_ = 0;                                                                                     \
        for (; i_ + W <= (n); i_ += W) { const ptrdiff_t k_ = W; __VA_ARGS__ }                                \
        if (i_ < (n)) { const ptrdiff_t k_ = (n) - i_; __VA_ARGS__ }                                          \
    } while (0)
#define LOADn(p) (k_ == W ? K(load)((p) + i_) : K(load_tail)((p) + i_, k_, 0.0f))
#define STOREn(p, v) (k_ == W ? K(store)((p) + i_, (v)) : K(store_tail)((p) + i_, (v), k_))

/* ---- GELU (tanh), SiLU, SwiGLU ---- */

#define GELU_C 0.7978845608028654f /* √(2/π) */
#define GELU_A 0.044715f

static void K(gelu_forward)(float *out, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, {
        vf v = LOADn(x);
        vf th = K(tanh)(GELU_C * (v + GELU_A * v * v * v));
        STOREn(out, 0.5f * v * (1.0f + th));
    });
}

INLINE vf K(gelu_slope_of)(vf v, vf th) {
    vf du = GELU_C * (1.0f + 3.0f * GELU_A * v * v);
    return 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
}

static void K(gelu_forward_slope)(float *act, float *slope, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, {
        vf v = LOADn(x);
        vf th = K(tanh)(GELU_C * (v + GELU_A * v * v * v));
        STOREn(act, 0.5f * v * (1.0f + th));
        STOREn(slope, K(gelu_slope_of)(v, th));
    });
}

static void K(gelu_backward)(float *dx, const float *dout, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, {
        vf v = LOADn(x);
        vf th = K(tanh)(GELU_C * (v + GELU_A * v * v * v));
        STOREn(dx, LOADn(dx) + K(gelu_slope_of)(v, th) * LOADn(dout));
    });
}

static void K(silu_forward)(float *out, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, { vf v = LOADn(x); STOREn(out, v * K(sigmoid)(v)); });
}

static void K(silu_backward)(float *dx, const float *dout, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, {
        vf v = LOADn(x), s = K(sigmoid)(v);
        STOREn(dx, LOADn(dx) + LOADn(dout) * s * (1.0f + v * (1.0f - s)));
    });
}

static void K(swiglu_forward)(float *out, const float *inp, ptrdiff_t rows, ptrdiff_t h) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *a = inp + r * 2 * h, *b = a + h;
        float *o = out + r * h;
        ELEMENTWISE(h, { vf v = LOADn(a); STOREn(o, v * K(sigmoid)(v) * LOADn(b)); });
    }
}

static void K(swiglu_backward)(float *dinp, const float *dout, const float *inp, ptrdiff_t rows, ptrdiff_t h) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *a = inp + r * 2 * h, *b = a + h, *g = dout + r * h;
        float *da = dinp + r * 2 * h, *db = da + h;
        ELEMENTWISE(h, {
            vf v = LOADn(a), s = K(sigmoid)(v), gv = LOADn(g);
            STOREn(da, LOADn(da) + gv * LOADn(b) * s * (1.0f + v * (1.0f - s)));
            STOREn(db, LOADn(db) + gv * v * s);
        });
    }
}

static void K(multiply)(float *y, const float *x, ptrdiff_t n) {
    ELEMENTWISE(n, { STOREn(y, LOADn(y) * LOADn(x)); });
}

static void K(gated_residual)(float *out, const float *x, const float *g, const float *y, ptrdiff_t n) {
    ELEMENTWISE(n, { STOREn(out, LOADn(x) + LOADn(g) * LOADn(y)); });
}

/* ---- softmax ---- */

static void K(softmax_rows)(float *p, ptrdiff_t rows, ptrdiff_t n) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *x = p + r * n;
        vf mv = K(splat)(-INFINITY);
        ptrdiff_t i = 0;
        for (; i + W <= n; i += W) { vf v = K(load)(x + i); mv = K(select)(v > mv, v, mv); }
        if (i < n) { vf v = K(load_tail)(x + i, n - i, -INFINITY); mv = K(select)(v > mv, v, mv); }
        const vf m = K(splat)(K(hmax)(mv));
        vf acc = {0};
        for (i = 0; i + W <= n; i += W) { vf e = K(exp)(K(load)(x + i) - m); K(store)(x + i, e); acc += e; }
        if (i < n) {
            vf e = K(exp)(K(load_tail)(x + i, n - i, 0.0f) - m);
            K(store_tail)(x + i, e, n - i);
            acc += (vf)((vi)e & K(below)(n - i));
        }
        const vf inv = K(splat)(1.0f / K(hsum)(acc));
        ELEMENTWISE(n, { STOREn(x, LOADn(x) * inv); });
    }
}

static void K(softmax_backward_rows)(float *dp, const float *p, ptrdiff_t rows, ptrdiff_t n) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *d = dp + r * n;
        const float *pr = p + r * n;
        vf acc = {0};
        ELEMENTWISE(n, { acc += LOADn(pr) * LOADn(d); });
        const vf c = K(splat)(K(hsum)(acc));
        ELEMENTWISE(n, { STOREn(d, LOADn(pr) * (LOADn(d) - c)); });
    }
}

/* ---- LayerNorm / RMSNorm with adaLN modulation ---- */

/* One body for both norms: LayerNorm when `mean` is given (x centred, no weight: w is NULL), RMSNorm when it is
 * NULL (x not centred, weight w). RMSNorm's operations are LayerNorm's with the mean 0 and the extra weight
 * product, and x − 0 = x exactly, so each norm keeps the bits of a body of its own. */
static void K(norm_modulate_forward)(float *out, float *mean, float *rstd, const float *x, const float *w,
                                     const mfx_modulation *m, float eps, ptrdiff_t row0, ptrdiff_t row1,
                                     ptrdiff_t d) {
    for (ptrdiff_t row = row0; row < row1; row++) {
        const float *xr = x + row * d, *base = m->mod + (row / m->tokens) * m->stride;
        const float *shift = base + m->shift, *scale = base + m->scale;
        float *o = out + row * d;
        float mu = 0;
        vf acc = {0};
        if (mean) {
            ELEMENTWISE(d, { acc += LOADn(xr); });
            mu = K(hsum)(acc) / (float)d;
            acc = (vf){0};
        }
        const vf muv = K(splat)(mu);
        ELEMENTWISE(d, {
            vf c = (vf)((vi)(LOADn(xr) - muv) & K(below)(k_));    /* padding lanes add 0, not mu² */
            acc += c * c;
        });
        const float rs = 1.0f / sqrtf(K(hsum)(acc) / (float)d + eps);
        if (mean) mean[row] = mu;
        rstd[row] = rs;
        const vf rsv = K(splat)(rs);
        ELEMENTWISE(d, {
            vf n = (LOADn(xr) - muv) * rsv;
            if (w) n = n * LOADn(w);
            STOREn(o, n * (1.0f + LOADn(scale)) + LOADn(shift));
        });
    }
}

static void K(norm_modulate_backward)(float *dx, const float *dout, const float *x, const float *w,
                                      const float *mean, const float *rstd, const mfx_modulation *m, ptrdiff_t row0,
                                      ptrdiff_t row1, ptrdiff_t d) {
    for (ptrdiff_t row = row0; row < row1; row++) {
        const float *xr = x + row * d, *gr = dout + row * d;
        const float *scale = m->mod + (row / m->tokens) * m->stride + m->scale;
        float *dxr = dx + row * d;
        const vf muv = K(splat)(mean ? mean[row] : 0), rsv = K(splat)(rstd[row]);
        vf a1 = {0}, a2 = {0};
        ELEMENTWISE(d, {
            vf dn = LOADn(gr) * (1.0f + LOADn(scale));             /* zero in padding lanes */
            if (w) dn = dn * LOADn(w);
            if (mean) a1 += dn;
            a2 += dn * (LOADn(xr) - muv) * rsv;
        });
        const vf mdn = K(splat)(mean ? K(hsum)(a1) / (float)d : 0), mdnn = K(splat)(K(hsum)(a2) / (float)d);
        ELEMENTWISE(d, {
            vf nv = (LOADn(xr) - muv) * rsv;
            vf dn = LOADn(gr) * (1.0f + LOADn(scale));
            if (w) dn = dn * LOADn(w);
            STOREn(dxr, LOADn(dxr) + rsv * (dn - mdn - nv * mdnn));
        });
    }
}

/* ---- column sums (bias and adaLN gradients) ---- */

/* Runs BODY for each 16-column chunk c_ of [0, cols) with k_ valid lanes; LOADc(p) loads the chunk of row
 * pointer p. */
#define COLUMN_CHUNKS(cols, ...)                                                                              \
    for (ptrdiff_t c_ = 0; c_ < (cols); c_ += W) {                                                            \
        const ptrdiff_t k_ = (cols) - c_ < W ? (cols) - c_ : W;                                               \
        __VA_ARGS__                                                                                           \
    }
#define LOADc(p) (k_ == W ? K(load)((p) + c_) : K(load_tail)((p) + c_, k_, 0.0f))
#define STOREc(p, v) (k_ == W ? K(store)((p) + c_, (v)) : K(store_tail)((p) + c_, (v), k_))

/* Row by row (sequential memory), each column's running sum kept in `out` (L1-resident): the same additions in
 * the same order as summing each column alone. */
static void K(column_sums)(float *out, const float *a, ptrdiff_t rows, ptrdiff_t ld, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) COLUMN_CHUNKS(cols, { STOREc(out, LOADc(out) + LOADc(a + r * ld)); })
}

static void K(product_column_sums)(float *out, const float *a, const float *b, ptrdiff_t rows, ptrdiff_t ld,
                                   ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++)
        COLUMN_CHUNKS(cols, { STOREc(out, LOADc(out) + LOADc(a + r * ld) * LOADc(b + r * ld)); })
}

static void K(layernorm_modulation_sums)(float *dshift, float *dscale, const float *dout, const float *x,
                                         const float *mean, const float *rstd, ptrdiff_t rows, ptrdiff_t ld,
                                         ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++)
        COLUMN_CHUNKS(cols, {
            vf g = LOADc(dout + r * ld);
            STOREc(dshift, LOADc(dshift) + g);
            STOREc(dscale, LOADc(dscale) + g * (LOADc(x + r * ld) - mean[r]) * rstd[r]);
        })
}

#undef COLUMN_CHUNKS
#undef LOADc
#undef STOREc

/* ---- optimiser ---- */

static void K(adamw)(float *p, const float *g, float *m, float *v, ptrdiff_t n, float decay, float beta1,
                     float beta2, float step_size, float bias2_sqrt, float eps) {
    const float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
    ELEMENTWISE(n, {
        vf gv = LOADn(g), pv = LOADn(p);
        if (decay != 1.0f) pv = pv * decay;
        vf mi = beta1 * LOADn(m) + c1 * gv;
        vf vi_ = beta2 * LOADn(v) + c2 * gv * gv;
        STOREn(m, mi);
        STOREn(v, vi_);
        vf denom = __builtin_elementwise_sqrt(vi_) / bias2_sqrt + eps;
        STOREn(p, pv - step_size * (mi / denom));
    });
}

static void K(ema)(float *ema, const float *p, ptrdiff_t n, float decay, float weight) {
    ELEMENTWISE(n, { STOREn(ema, decay * LOADn(ema) + weight * LOADn(p)); });
}

#undef LOADn
#undef STOREn
#undef ELEMENTWISE
#undef GELU_C
#undef GELU_A
