/*
 * posttrain.c — MixFlow post-training end to end from C, no Python (the same steps as
 * examples/python/posttrain.py): load a base model, measure its Slow Flow and derive gamma, post-train it on
 * Fashion-MNIST with MixFlow through the C API, sample, evaluate with the FD (Fashion-MNIST classifier
 * features), and save the post-trained model as ONNX.
 *
 *   build/posttrain [BASE.onnx|-] [STEPS]
 *
 * BASE.onnx defaults to the shipped base model, models/fmnist-base/base.onnx; "-" creates a small SiT from
 * scratch instead (every call is still exercised). Data: /usr/share/datasets/fashion-mnist
 * (Debian's dataset-fashion-mnist). Feature net: share/featnet/ (run from the repository root or set
 * MIXFLOW_ROOT). Without the Fashion-MNIST package it prints "skipped: ..." and exits with 77.
 */
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

enum { BATCH = 32, DIM = 28 * 28, EVAL = 200, FEAT_MAX = 512 };

static const char *root(void) { const char *r = getenv("MIXFLOW_ROOT"); return r ? r : "."; }

static double fd_of(mixflow_featnet *net, const float *images, int64_t n, const double *ref_mean, const double *ref_cov,
                    int64_t fdim) {
    float *features = malloc((size_t)n * (size_t)fdim * sizeof *features);
    double *mean = malloc((size_t)fdim * sizeof *mean), *cov = malloc((size_t)(fdim * fdim) * sizeof *cov);
    double fd = 0;
    if (!features || !mean || !cov) { fprintf(stderr, "out of memory\n"); exit(1); }
    CHECK(mixflow_featnet_features(net, images, n, DIM, features));
    CHECK(mixflow_feature_stats_compute(features, n, fdim, mean, cov));
    CHECK(mixflow_frechet_distance_from_stats(mean, cov, ref_mean, ref_cov, fdim, &fd));
    free(features); free(mean); free(cov);
    return fd;
}

/* gamma from the model's Slow Flow: Euler trajectories of the first 64 noise rows on 20 grid points, matched
 * to the nearest of `num_data` training images (docs/slow-flow.md), then suggest_gamma at 95 % coverage. */
static double slow_flow_gamma(mixflow_model *model, const float *noise, const int32_t *labels, const float *data,
                              int64_t num_data) {
    enum { SF = 64 };
    mixflow_sampler_params sp;
    mixflow_sampler *sampler = NULL;
    CHECK(mixflow_sampler_default_params(&sp, sizeof sp));
    sp.method = MIXFLOW_SAMPLER_EULER;
    sp.num_steps = 20;
    sp.null_class = 10;
    CHECK(mixflow_sampler_create(&sp, &sampler));
    int64_t k = 0;
    CHECK(mixflow_sampler_timesteps(sampler, NULL, 0, &k));
    double *t = malloc((size_t)k * sizeof *t), *t_paper = malloc((size_t)k * sizeof *t_paper);
    double *m = malloc((size_t)(k * SF) * sizeof *m);
    float *trajectory = malloc((size_t)(k * SF * DIM) * sizeof *trajectory), *x = malloc((size_t)(SF * DIM) * sizeof *x);
    if (!t || !t_paper || !m || !trajectory || !x) { fprintf(stderr, "out of memory\n"); exit(1); }
    CHECK(mixflow_sampler_timesteps(sampler, t, k, &k));
    CHECK(mixflow_sample_model(sampler, model, NULL, noise, SF, DIM, labels, 0, x, trajectory, NULL));
    CHECK(mixflow_slow_flow_measure(MIXFLOW_SLOW_FLOW_NEAREST_DATA, MIXFLOW_PATH_LINEAR, MIXFLOW_CONVENTION_SIT, t, k,
                                    trajectory, noise, SF, DIM, data, num_data, t_paper, m));
    double gamma = 0;
    CHECK(mixflow_slow_flow_suggest_gamma(t_paper, m, SF, k, 0.95, &gamma));
    mixflow_sampler_free(sampler);
    free(t); free(t_paper); free(m); free(trajectory); free(x);
    return gamma;
}

/* Samples EVAL images with Euler on `points` grid points; labels i mod 10; the same noise for every call. */
static void sample(mixflow_model *model, int32_t points, const float *noise, const int32_t *labels, float *out) {
    mixflow_sampler_params sp;
    mixflow_sampler *sampler = NULL;
    CHECK(mixflow_sampler_default_params(&sp, sizeof sp));
    sp.method = MIXFLOW_SAMPLER_EULER;
    sp.num_steps = points;
    sp.null_class = 10;
    CHECK(mixflow_sampler_create(&sp, &sampler));
    CHECK(mixflow_sample_model(sampler, model, NULL, noise, EVAL, DIM, labels, 0, out, NULL, NULL));
    mixflow_sampler_free(sampler);
}

int main(int argc, char **argv) {
    char path[1024], base_path[1024];
    snprintf(base_path, sizeof base_path, "%s/models/fmnist-base/base.onnx", root());
    const char *base = argc > 1 ? (strcmp(argv[1], "-") != 0 ? argv[1] : NULL) : base_path;
    int64_t steps = argc > 2 ? atoll(argv[2]) : 30;
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) { fprintf(stderr, "ABI mismatch\n"); return 1; }

    /* Data. */
    mixflow_idx *images = NULL, *labels = NULL;
    if (mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &images) != MIXFLOW_OK) {
        printf("skipped: %s (apt-get install dataset-fashion-mnist)\n", mixflow_last_error());
        return 77;
    }
    CHECK(mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &labels));
    int64_t shape[3];
    int32_t ndim = 0;
    mixflow_idx_dtype dtype;
    CHECK(mixflow_idx_info(images, &dtype, &ndim, shape, 3));
    int64_t n = shape[0];
    float *x = malloc((size_t)(n * DIM) * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) return 1;
    CHECK(mixflow_idx_read_f32(images, MIXFLOW_PIXEL_SCALING_SYMMETRIC, x, n * DIM));
    CHECK(mixflow_idx_read_i32(labels, y, n));
    printf("Fashion-MNIST: %lld images\n", (long long)n);

    /* Base model. */
    mixflow_model *model = NULL;
    if (base) {
        CHECK(mixflow_model_load_onnx(base, NULL, &model));
    } else {
        mixflow_model_params mp;
        CHECK(mixflow_model_default_params(&mp, sizeof mp));
        mp.arch[0] = '\0';
        mp.depth = 2; mp.hidden = 64; mp.heads = 4; mp.patch = 4;
        mp.input_size = 28; mp.in_channels = 1; mp.num_classes = 10; mp.learn_sigma = 0;
        CHECK(mixflow_model_create(&mp, &model));
    }
    printf("model: %lld parameters (%s)\n", (long long)mixflow_model_num_params(model), base ? base : "from scratch");

    /* Evaluation tools: feature net and the test set's reference statistics. */
    mixflow_featnet *net = NULL;
    snprintf(path, sizeof path, "%s/share/featnet/fmnist-cnn.mxfnet", root());
    CHECK(mixflow_featnet_load(path, &net));
    int64_t in_dim, fdim, classes, count;
    CHECK(mixflow_featnet_info(net, &in_dim, &fdim, &classes));
    if (fdim > FEAT_MAX) return 1;
    double *ref_mean = malloc((size_t)fdim * sizeof *ref_mean), *ref_cov = malloc((size_t)(fdim * fdim) * sizeof *ref_cov);
    snprintf(path, sizeof path, "%s/share/featnet/fmnist-test-stats.mxfstat", root());
    CHECK(mixflow_feature_stats_load(path, fdim, ref_mean, ref_cov, &count));

    float *noise = malloc((size_t)(EVAL * DIM) * sizeof *noise), *samples = malloc((size_t)(EVAL * DIM) * sizeof *samples);
    int32_t eval_labels[EVAL];
    for (int i = 0; i < EVAL; i++) eval_labels[i] = i % 10;
    {   /* Reproducible starting noise: the transport's x0 for a zero batch is standard normal. */
        mixflow_transport *tr = NULL;
        mixflow_transport_params tp;
        CHECK(mixflow_transport_default_params(&tp, sizeof tp));
        CHECK(mixflow_transport_create(&tp, &tr));
        float *zeros = calloc((size_t)(EVAL * DIM), sizeof *zeros), *tmp = malloc((size_t)(EVAL * DIM) * sizeof *tmp);
        float t[EVAL];
        CHECK(mixflow_transport_prepare(tr, zeros, EVAL, DIM, 1234, 0, 0, tmp, t, NULL, noise, samples));
        free(zeros); free(tmp);
        mixflow_transport_free(tr);
    }
    sample(model, 20, noise, eval_labels, samples);
    printf("before: FD %.2f (Euler, 19 steps, %d samples)\n", fd_of(net, samples, EVAL, ref_mean, ref_cov, fdim), EVAL);

    /* MixFlow post-training: SiT preset (Beta(2,1) times, slowed mixture), AdamW + EMA. The preset's gamma 0.8
     * is ImageNet SiT's; the shipped base lags far less, so gamma comes from its measured Slow Flow. A model
     * trained for 30 steps from scratch has no meaningful Slow Flow: it keeps the preset's 0.8. */
    double gamma = base ? slow_flow_gamma(model, noise, eval_labels, x, 2000) : 0.8;
    printf("gamma = %.3f (%s)\n", gamma, base ? "suggest_gamma of the nearest-data Slow Flow" : "the SiT preset");
    mixflow_transport_params tp;
    mixflow_transport *transport = NULL;
    CHECK(mixflow_transport_preset_params("sit", 0, &tp, sizeof tp));
    tp.gamma = (float)gamma;
    CHECK(mixflow_transport_create(&tp, &transport));
    mixflow_trainer_params trp;
    mixflow_trainer *trainer = NULL;
    CHECK(mixflow_trainer_default_params(&trp, sizeof trp));
    trp.lr = base ? 1e-4f : 1e-3f;
    trp.ema_decay = 0.9f;
    CHECK(mixflow_trainer_create(model, transport, &trp, &trainer));
    float *xb = malloc((size_t)(BATCH * DIM) * sizeof *xb);
    int32_t yb[BATCH];
    unsigned rng = 12345;
    for (int64_t step = 0; step < steps; step++) {
        for (int i = 0; i < BATCH; i++) {
            rng = rng * 1103515245u + 12345u;
            int64_t j = (int64_t)(rng >> 8) % n;
            memcpy(xb + i * DIM, x + j * DIM, DIM * sizeof *xb);
            yb[i] = y[j];
        }
        float loss = 0;
        CHECK(mixflow_trainer_step(trainer, xb, yb, BATCH, 0, &loss));
        if (step % 10 == 0 || step == steps - 1) printf("step %3lld  MixFlow loss %.4f\n", (long long)step, loss);
    }

    /* Evaluate the EMA weights and save them as a runnable ONNX model. */
    mixflow_model *ema = NULL;
    CHECK(mixflow_trainer_get_model(trainer, 1, &ema));
    sample(ema, 20, noise, eval_labels, samples);
    printf("after:  FD %.2f (same noise and labels)\n", fd_of(net, samples, EVAL, ref_mean, ref_cov, fdim));
    if (base == base_path)
        printf("expected: on the shipped base MixFlow makes the FD worse, not better (results/fmnist/README.md)\n");
    mixflow_model_save_params save;
    CHECK(mixflow_model_save_default_params(&save, sizeof save));
    save.step = steps;
    save.transport = transport;
    CHECK(mixflow_model_save_onnx(ema, "build/posttrained.onnx", &save));
    printf("wrote build/posttrained.onnx\n");

    mixflow_model_free(ema); mixflow_trainer_free(trainer); mixflow_transport_free(transport); mixflow_model_free(model);
    mixflow_featnet_free(net); mixflow_idx_free(images); mixflow_idx_free(labels);
    free(x); free(y); free(xb); free(noise); free(samples); free(ref_mean); free(ref_cov);
    return 0;
}
