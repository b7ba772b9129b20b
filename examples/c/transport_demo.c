/*
 * transport_demo.c — MixFlow training maths from C, with the model living in the caller.
 *
 * The "model" here is a stand-in with two parameters per pixel, v(x, t) = a * x + b, trained by plain
 * gradient descent on MixFlow batches: libmixflow draws (t, m, x0), builds the slowed input x_m and the
 * velocity target, and returns the loss gradient with respect to the model output; the caller
 * backpropagates it through its own model. The data are 8x8 "images" of two blobs.
 *
 * Build: make -C examples/c   (after `swift build -c release`)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mixflow.h"

#define CHECK(call)                                                                            \
    do {                                                                                       \
        mixflow_status s_ = (call);                                                            \
        if (s_ != MIXFLOW_OK) {                                                                \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, mixflow_status_name(s_), mixflow_last_error()); \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

enum { BATCH = 32, DIM = 64, STEPS = 300 };

static void make_data(float *x1, int batch, unsigned step) {
    /* Deterministic toy data: a bright blob whose position depends on the sample, plus a ramp. */
    for (int i = 0; i < batch; i++) {
        int cx = (int)((i * 7 + step) % 8), cy = (int)((i * 3 + step / 2) % 8);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                float d2 = (float)((x - cx) * (x - cx) + (y - cy) * (y - cy));
                x1[i * DIM + y * 8 + x] = 2.0f * expf(-d2 / 4.0f) - 0.5f + 0.05f * (float)x;
            }
    }
}

int main(void) {
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) {
        fprintf(stderr, "libmixflow ABI %u, header ABI %d\n", mixflow_abi_version(), MIXFLOW_ABI_VERSION);
        return 1;
    }
    printf("libmixflow %s\n", mixflow_version());

    mixflow_transport_params params;
    CHECK(mixflow_transport_preset_params("sit", 0, &params, sizeof params));
    params.gamma = 0.8f; /* MixFlow's SiT default */

    mixflow_transport *tr = NULL;
    CHECK(mixflow_transport_create(&params, &tr));

    /* Bad input is a status and a message, never a crash. */
    mixflow_transport_params bad = params;
    bad.gamma = 1.7f;
    mixflow_transport *unused = NULL;
    mixflow_status s = mixflow_transport_create(&bad, &unused);
    printf("gamma = 1.7 -> %s: %s\n", mixflow_status_name(s), mixflow_last_error());
    if (s != MIXFLOW_ERR_INVALID_ARGUMENT || unused != NULL) return 1;

    size_t n = (size_t)BATCH * DIM;
    float *x1 = malloc(n * sizeof *x1), *x_in = malloc(n * sizeof *x_in), *target = malloc(n * sizeof *target);
    float *pred = malloc(n * sizeof *pred), *grad = malloc(n * sizeof *grad);
    float t[BATCH], m[BATCH], per_sample[BATCH];
    float a[DIM], b[DIM];
    if (!x1 || !x_in || !target || !pred || !grad) return 1;
    for (int j = 0; j < DIM; j++) { a[j] = 0.0f; b[j] = 0.0f; }

    float first = 0.0f, last = 0.0f;
    for (unsigned step = 0; step < STEPS; step++) {
        make_data(x1, BATCH, step);
        CHECK(mixflow_transport_prepare(tr, x1, BATCH, DIM, /*seed*/ 42, step, /*first_sample*/ 0,
                                        x_in, t, m, /*out_noise*/ NULL, target));
        for (int i = 0; i < BATCH; i++)
            for (int j = 0; j < DIM; j++) pred[i * DIM + j] = a[j] * x_in[i * DIM + j] + b[j];
        float loss = 0.0f;
        CHECK(mixflow_transport_loss(tr, pred, target, t, m, BATCH, DIM, per_sample, &loss, grad));
        /* Backpropagate d(loss)/d(pred) through v = a x + b and take a gradient step. */
        for (int j = 0; j < DIM; j++) {
            float ga = 0.0f, gb = 0.0f;
            for (int i = 0; i < BATCH; i++) { ga += grad[i * DIM + j] * x_in[i * DIM + j]; gb += grad[i * DIM + j]; }
            a[j] -= 0.5f * DIM * ga;
            b[j] -= 0.5f * DIM * gb;
        }
        if (step == 0) first = loss;
        last = loss;
        if (step % 100 == 0 || step == STEPS - 1)
            printf("step %3u  loss %.4f  (t[0] = %.3f, m[0] = %.3f)\n", step, loss, t[0], m[0]);
    }
    printf("loss %.4f -> %.4f\n", first, last);

    free(x1); free(x_in); free(target); free(pred); free(grad);
    mixflow_transport_free(tr);
    return last < first ? 0 : 1;
}
