/*
 * sampler_demo.c — sampling and the Slow Flow diagnostic from C, with the model as a callback.
 *
 * The "model" is the exact velocity field of Gaussian data N(mu, s^2) on the Linear path (SiT convention):
 *   v(x, t) = mu + (t s^2 - (1 - t)) / V(t) * (x - t mu),  V(t) = t^2 s^2 + (1 - t)^2,
 * whose flow maps noise z to mu + s z exactly, so the Heun sample can be checked against the truth.
 * Then a deliberately slow model (velocity c (x1 - x0)) is sampled with its trajectory, its Slow Flow is
 * measured against the data, and suggest_gamma returns 1 - c.
 *
 * Build: make -C examples/c   (after `swift build -c release`)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mixflow.h"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        mixflow_status s_ = (call);                                                            \
        if (s_ != MIXFLOW_OK) {                                                                \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, mixflow_status_name(s_), mixflow_last_error()); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

enum { BATCH = 8, DIM = 16 };

typedef struct { float mu, s; } gaussian;

static int32_t gaussian_velocity(void *user, int64_t batch, int64_t dim, const float *x, const float *t,
                                 const int32_t *y, float *out) {
    const gaussian *g = user;
    (void)y;
    for (int64_t i = 0; i < batch; i++) {
        double tt = t[i], v = tt * tt * g->s * g->s + (1 - tt) * (1 - tt);
        for (int64_t j = 0; j < dim; j++)
            out[i * dim + j] = (float)(g->mu + (tt * g->s * g->s - (1 - tt)) / v * (x[i * dim + j] - tt * g->mu));
    }
    return 0;
}

typedef struct { float c; const float *x0, *x1; } slowed;

static int32_t slowed_velocity(void *user, int64_t batch, int64_t dim, const float *x, const float *t,
                               const int32_t *y, float *out) {
    const slowed *m = user;
    (void)x; (void)t; (void)y;
    for (int64_t i = 0; i < batch * dim; i++) out[i] = m->c * (m->x1[i] - m->x0[i]);
    return 0;
}

static float demo_normal(unsigned *state) { /* a small LCG + Box-Muller, only for the demo's data */
    double u1, u2;
    *state = *state * 1664525u + 1013904223u; u1 = (*state >> 8) / 16777216.0 + 1e-9;
    *state = *state * 1664525u + 1013904223u; u2 = (*state >> 8) / 16777216.0;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

int main(void) {
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) { fprintf(stderr, "ABI mismatch\n"); return 1; }
    static float z[BATCH * DIM], x[BATCH * DIM], x1[BATCH * DIM];
    unsigned rng = 1;
    for (int i = 0; i < BATCH * DIM; i++) { z[i] = demo_normal(&rng); x1[i] = 2 * demo_normal(&rng) + 0.5f; }

    /* 1. Heun (torchdiffeq heun2) on a 50-point SiT grid against the exact sample mu + s z. */
    mixflow_sampler_params p;
    CHECK(mixflow_sampler_default_params(&p, sizeof p));
    p.method = MIXFLOW_SAMPLER_HEUN;
    p.num_steps = 50;
    mixflow_sampler *sampler = NULL;
    CHECK(mixflow_sampler_create(&p, &sampler));
    gaussian g = {1.0f, 0.5f};
    int64_t nfe = 0;
    CHECK(mixflow_sample(sampler, gaussian_velocity, &g, NULL, NULL, z, BATCH, DIM, NULL, 0, x, NULL, &nfe));
    double err = 0;
    for (int i = 0; i < BATCH * DIM; i++) err = fmax(err, fabs(x[i] - (g.mu + g.s * z[i])));
    printf("heun, 50 points: %lld model calls, max |x - (mu + s z)| = %.2e\n", (long long)nfe, err);
    mixflow_sampler_free(sampler);

    /* 2. Slow Flow of a model that moves at 70 % of the true speed, and the gamma it suggests. */
    p.method = MIXFLOW_SAMPLER_EULER;
    p.num_steps = 11;
    CHECK(mixflow_sampler_create(&p, &sampler));
    int64_t k = 0;
    CHECK(mixflow_sampler_timesteps(sampler, NULL, 0, &k));
    double *t = malloc(sizeof(double) * (size_t)k), *t_paper = malloc(sizeof(double) * (size_t)k);
    double *m = malloc(sizeof(double) * (size_t)(k * BATCH));
    float *trajectory = malloc(sizeof(float) * (size_t)(k * BATCH * DIM));
    CHECK(mixflow_sampler_timesteps(sampler, t, k, &k));
    slowed slow = {0.7f, z, x1};
    CHECK(mixflow_sample(sampler, slowed_velocity, &slow, NULL, NULL, z, BATCH, DIM, NULL, 0, x, trajectory, NULL));
    CHECK(mixflow_slow_flow_measure(MIXFLOW_SLOW_FLOW_NEAREST_DATA, MIXFLOW_PATH_LINEAR, MIXFLOW_CONVENTION_SIT, t, k,
                                    trajectory, z, BATCH, DIM, x1, BATCH, t_paper, m));
    double gamma = 0;
    CHECK(mixflow_slow_flow_suggest_gamma(t_paper, m, BATCH, k, 0.95, &gamma));
    printf("slowed model (c = 0.7): m/t at t = 0.5 is %.4f, suggest_gamma = %.4f (expected 0.3)\n", m[5] / t_paper[5], gamma);
    mixflow_sampler_free(sampler);
    free(t); free(t_paper); free(m); free(trajectory);
    return fabs(gamma - 0.3) < 1e-4 && err < 1e-3 ? 0 : 1;
}
