/*
 * rae_mixflow.c — MixFlow-RAE end to end from C through the native DiT^DH, in about a minute on 2 cores (the
 * same steps as examples/python/rae_mixflow.py):
 *
 *   1. data as an RAE-style latent: Fashion-MNIST 1x28x28 (in [-1, 1]) pixel-unshuffled 4x4 into 16x7x7;
 *   2. a small custom DiT^DH (the main model) and a smaller one (the autoguidance guide, RAE's DiT^DH-S role);
 *   3. MixFlow-RAE training of both: the "rae" transport preset for this latent (noise at t = 1, Beta(2,1)
 *      times before the dimension shift, gamma 0.4) and the "rae" trainer preset (AdamW betas (0.9, 0.95),
 *      clip 1.0) with a constant lr 3e-3 and EMA 0.98 (RAE's 2e-4 / 0.9995 are for 1400 ImageNet epochs);
 *   4. sampling the RAE way: Euler on RAE's grid (50 points -> 49 steps, from 1 down to shifted(0.001)),
 *      "equal" labels, autoguidance G + w (main - G) with w = 1.42;
 *   5. depth-to-space back to 28x28, checks, and a PNG grid.
 *
 *   build/rae_mixflow [--quick] [OUT.png]          (default build/rae_samples.png)
 *
 * Be warned: this is not RAE. RAE's latents are normalised DINOv2-B features (768x16x16 at 256 px) that only its
 * encoder can make and its decoder can turn back into pixels; we cannot ship those, so the "latent" here is an
 * invertible space-to-depth of the pixels (exactly PyTorch's pixel_unshuffle) and its "decoder" is the inverse.
 * A 784-float latent makes the dimension shift sqrt(784/4096) < 1, which the preset clamps to 1 (RAE asserts
 * s >= 1): no shift. One minute
 * of training from scratch gives poor samples: blurry garments at best. The value is the exact pipeline.
 * Data: /usr/share/datasets/fashion-mnist. Feature net: share/featnet/ (repository root or MIXFLOW_ROOT).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixflow.h"

#define CHECK(call)                                                                                      \
    do {                                                                                                 \
        mixflow_status s_ = (call);                                                                      \
        if (s_ != MIXFLOW_OK) {                                                                          \
            fprintf(stderr, "%s:%d %s failed: %s (%s)\n", __FILE__, __LINE__, #call, mixflow_status_name(s_), \
                    mixflow_last_error());                                                               \
            exit(1);                                                                                     \
        }                                                                                                \
    } while (0)

enum { R = 4, C = 16, S = 7, DIM = C * S * S, PIX = 28 * 28, CLASSES = 10, BATCH = 64, NMAX = 100 };
static const float SCALE = 1.42f;   /* RAE's autoguidance scale at 256 px */

static const char *root(void) { const char *r = getenv("MIXFLOW_ROOT"); return r ? r : "."; }

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    return p;
}

/* PyTorch's pixel_unshuffle: [1, 28, 28] -> [16, 7, 7], out[i*R + j][h][w] = in[h*R + i][w*R + j]. */
static void pixel_unshuffle(const float *in, float *out) {
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++)
            for (int h = 0; h < S; h++)
                for (int w = 0; w < S; w++) out[((i * R + j) * S + h) * S + w] = in[(h * R + i) * (S * R) + w * R + j];
}

/* pixel_shuffle, its inverse: [16, 7, 7] -> [1, 28, 28]. */
static void pixel_shuffle(const float *in, float *out) {
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++)
            for (int h = 0; h < S; h++)
                for (int w = 0; w < S; w++) out[(h * R + i) * (S * R) + w * R + j] = in[((i * R + j) * S + h) * S + w];
}

static mixflow_model *make_model(int32_t depth, int32_t hidden, int32_t heads, int32_t head_hidden, uint64_t seed) {
    mixflow_model_params mp;
    mixflow_model *m = NULL;
    CHECK(mixflow_model_default_params(&mp, sizeof mp));
    strcpy(mp.arch, "DiTDH");                                  /* a custom DiT^DH shape */
    mp.depth = depth; mp.hidden = hidden; mp.heads = heads;
    mp.head_depth = 1; mp.head_hidden = head_hidden; mp.head_heads = 4;
    mp.input_size = S; mp.in_channels = C; mp.num_classes = CLASSES; mp.seed = seed;
    CHECK(mixflow_model_create(&mp, &m));
    return m;
}

/* MixFlow-RAE training; returns a new model with the EMA weights. */
static mixflow_model *train(const char *name, mixflow_model *model, mixflow_transport *transport, const float *latents,
                            const int32_t *labels, int64_t n, int64_t steps, unsigned rng) {
    mixflow_trainer_params tp;
    mixflow_trainer *trainer = NULL;
    mixflow_model *ema = NULL;
    float *xb = xmalloc((size_t)BATCH * DIM * sizeof *xb);
    int32_t yb[BATCH];
    CHECK(mixflow_trainer_preset_params("rae", 40, 800, &tp, sizeof tp));
    tp.lr = 3e-3f; tp.final_lr = 3e-3f; tp.decay_end = 0;    /* constant lr for a short run */
    tp.ema_decay = 0.98f;
    CHECK(mixflow_trainer_create(model, transport, &tp, &trainer));
    for (int64_t step = 0; step < steps; step++) {
        for (int i = 0; i < BATCH; i++) {
            rng = rng * 1103515245u + 12345u;
            int64_t j = (int64_t)(rng >> 8) % n;
            memcpy(xb + i * DIM, latents + j * DIM, DIM * sizeof *xb);
            yb[i] = labels[j];
        }
        float loss = 0;
        CHECK(mixflow_trainer_step(trainer, xb, yb, BATCH, 0, &loss));
        if (step % (steps / 4 > 0 ? steps / 4 : 1) == 0 || step == steps - 1)
            printf("  %s step %4lld  MixFlow-RAE loss %.4f\n", name, (long long)step, loss);
    }
    CHECK(mixflow_trainer_get_model(trainer, 1, &ema));
    mixflow_trainer_free(trainer);
    free(xb);
    return ema;
}

static mixflow_sampler *rae_sampler(float shift, mixflow_guidance guidance) {
    mixflow_sampler_params sp;
    mixflow_sampler *s = NULL;
    CHECK(mixflow_sampler_default_params(&sp, sizeof sp));
    sp.method = MIXFLOW_SAMPLER_EULER;
    sp.convention = MIXFLOW_CONVENTION_RAE;
    sp.num_steps = 50;                                         /* grid points: 49 Euler steps */
    sp.time_shift = shift;
    sp.guidance = guidance;
    sp.guidance_scale = SCALE;
    sp.guidance_t_min = 0; sp.guidance_t_max = 1;              /* RAE's interval [0, 1]: always */
    sp.null_class = CLASSES;
    CHECK(mixflow_sampler_create(&sp, &s));
    return s;
}

static void pixel_stats(const char *name, const float *x, int64_t count) {
    double sum = 0, sq = 0, lo = x[0], hi = x[0];
    for (int64_t i = 0; i < count; i++) {
        sum += x[i]; sq += (double)x[i] * x[i];
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    double mean = sum / (double)count;
    printf("%s pixels: mean %+.3f, std %.3f, min %+.2f, max %+.2f\n", name, mean, sqrt(sq / (double)count - mean * mean), lo, hi);
}

int main(int argc, char **argv) {
    int quick = 0;
    const char *png = "build/rae_samples.png";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else png = argv[i];
    }
    int64_t steps = quick ? 20 : 200, guide_steps = quick ? 10 : 80, ns = quick ? 20 : NMAX;
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) { fprintf(stderr, "ABI mismatch\n"); return 1; }

    /* 1. Data as a 16x7x7 "latent". */
    mixflow_idx *images = NULL, *labels_file = NULL;
    if (mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &images) != MIXFLOW_OK) {
        printf("skipped: %s (apt-get install dataset-fashion-mnist)\n", mixflow_last_error());
        return 77;
    }
    CHECK(mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &labels_file));
    int64_t shape[3];
    int32_t ndim = 0;
    mixflow_idx_dtype dtype;
    CHECK(mixflow_idx_info(images, &dtype, &ndim, shape, 3));
    int64_t n = shape[0];
    float *pixels = xmalloc((size_t)(n * PIX) * sizeof *pixels), *latents = xmalloc((size_t)(n * DIM) * sizeof *latents);
    int32_t *labels = xmalloc((size_t)n * sizeof *labels);
    CHECK(mixflow_idx_read_f32(images, MIXFLOW_PIXEL_SCALING_SYMMETRIC, pixels, n * PIX));
    CHECK(mixflow_idx_read_i32(labels_file, labels, n));
    for (int64_t k = 0; k < n; k++) pixel_unshuffle(pixels + k * PIX, latents + k * DIM);
    printf("data: Fashion-MNIST %lld x 28 x 28 -> latent 16 x 7 x 7 (pixel_unshuffle 4x4; a stand-in for RAE's DINOv2 latent)\n",
           (long long)n);

    /* 2-3. Models and MixFlow-RAE training. */
    mixflow_transport_params trp;
    mixflow_transport *transport = NULL;
    CHECK(mixflow_transport_preset_params("rae", DIM, &trp, sizeof trp));
    CHECK(mixflow_transport_create(&trp, &transport));
    printf("transport: RAE preset, gamma %.1f, dimension shift %.4f (sqrt(784/4096) = 0.4375 < 1: the preset clamps it to 1, RAE asserts s >= 1)\n",
           trp.gamma, trp.time_shift);
    mixflow_model *main_init = make_model(2, 64, 4, 96, 0), *guide_init = make_model(1, 32, 2, 64, 1);
    printf("main DiT^DH %lld parameters; guide DiT^DH %lld parameters\n", (long long)mixflow_model_num_params(main_init),
           (long long)mixflow_model_num_params(guide_init));
    mixflow_model *main_model = train("main ", main_init, transport, latents, labels, n, steps, 12345u);
    mixflow_model *guide_model = train("guide", guide_init, transport, latents, labels, n, guide_steps, 777u);

    /* 4. RAE sampling: equal labels, Euler on the shifted grid, autoguidance. */
    int32_t y[NMAX], counts[CLASSES] = {0};
    CHECK(mixflow_equal_labels(ns, CLASSES, 0, y));
    for (int64_t i = 0; i < ns; i++) counts[y[i]]++;
    float *noise = xmalloc((size_t)(NMAX * DIM) * sizeof *noise), *guided = xmalloc((size_t)(NMAX * DIM) * sizeof *guided);
    float *plain = xmalloc((size_t)(NMAX * DIM) * sizeof *plain), *same = xmalloc((size_t)(NMAX * DIM) * sizeof *same);
    {   /* Reproducible starting noise: the transport's x0 for a zero batch is standard normal. */
        float *zeros = calloc((size_t)(NMAX * DIM), sizeof *zeros), *tmp = xmalloc((size_t)(NMAX * DIM) * sizeof *tmp);
        float t[NMAX];
        if (!zeros) return 1;
        CHECK(mixflow_transport_prepare(transport, zeros, ns, DIM, 1234, 0, 0, tmp, t, NULL, noise, same));
        free(zeros); free(tmp);
    }
    mixflow_sampler *auto_sampler = rae_sampler(trp.time_shift, MIXFLOW_GUIDANCE_AUTO);
    mixflow_sampler *plain_sampler = rae_sampler(trp.time_shift, MIXFLOW_GUIDANCE_NONE);
    double grid[64];
    int64_t points = 0;
    CHECK(mixflow_sampler_timesteps(auto_sampler, grid, 64, &points));
    printf("grid: %lld points -> %lld Euler steps, t = %.6f, %.6f, ..., %.6f\n", (long long)points, (long long)points - 1,
           grid[0], grid[1], grid[points - 1]);
    int64_t nfe = 0;
    CHECK(mixflow_sample_model(auto_sampler, main_model, guide_model, noise, ns, DIM, y, 0, guided, NULL, &nfe));
    CHECK(mixflow_sample_model(plain_sampler, main_model, NULL, noise, ns, DIM, y, 0, plain, NULL, NULL));
    CHECK(mixflow_sample_model(auto_sampler, main_model, main_model, noise, ns, DIM, y, 0, same, NULL, NULL));
    printf("NFE: %lld (autoguidance, scale %.2f); per-class label counts:", (long long)nfe, SCALE);
    for (int c = 0; c < CLASSES; c++) printf(" %d", counts[c]);
    printf(" (equal: floor(%lld/%d) or +1)\n", (long long)ns, CLASSES);
    printf("check: autoguidance with guide = main equals unguided sampling: %s\n",
           memcmp(same, plain, (size_t)(ns * DIM) * sizeof *same) == 0 ? "yes" : "NO");

    /* 5. Back to pixels; compare with the data; a PNG grid. */
    float *out = xmalloc((size_t)(NMAX * PIX) * sizeof *out);
    uint8_t *bytes = xmalloc((size_t)(NMAX * PIX));
    pixel_stats("data    ", pixels, 10000 * PIX);
    for (int64_t k = 0; k < ns; k++) pixel_shuffle(plain + k * DIM, out + k * PIX);
    pixel_stats("unguided", out, ns * PIX);
    for (int64_t k = 0; k < ns; k++) pixel_shuffle(guided + k * DIM, out + k * PIX);
    pixel_stats("guided  ", out, ns * PIX);
    {
        mixflow_featnet *net = NULL;
        char path[1024];
        double acc = 0;
        float *clipped = xmalloc((size_t)(NMAX * PIX) * sizeof *clipped);
        for (int64_t i = 0; i < ns * PIX; i++) clipped[i] = out[i] < -1 ? -1 : (out[i] > 1 ? 1 : out[i]);
        snprintf(path, sizeof path, "%s/share/featnet/fmnist-cnn.mxfnet", root());
        CHECK(mixflow_featnet_load(path, &net));
        CHECK(mixflow_featnet_accuracy(net, clipped, y, ns, PIX, &acc));
        printf("class accuracy of the guided samples (Fashion-MNIST classifier): %.2f (chance 0.10; real images 0.91)\n", acc);
        mixflow_featnet_free(net);
        free(clipped);
    }
    /* Pixels are in [-1, 1]: SiT's uint8 rule clamp(127.5 x + 128). */
    CHECK(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, out, ns, 1, 28, 28, bytes));
    CHECK(mixflow_samples_write_png(png, bytes, ns, 28, 28, 1, 10));
    printf("wrote %s (%lld samples, row-major)\n", png, (long long)ns);
    printf("Note: a one-minute training from scratch gives poor samples; what this shows is the exact pipeline.\n");

    mixflow_sampler_free(auto_sampler); mixflow_sampler_free(plain_sampler);
    mixflow_model_free(main_model); mixflow_model_free(guide_model); mixflow_model_free(main_init); mixflow_model_free(guide_init);
    mixflow_transport_free(transport); mixflow_idx_free(images); mixflow_idx_free(labels_file);
    free(pixels); free(latents); free(labels); free(noise); free(guided); free(plain); free(same); free(out); free(bytes);
    return 0;
}
