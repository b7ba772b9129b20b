/*
 * model_demo.c — the native SiT from C: create a tiny model, list its state dict, run a forward pass and
 * fit it to a fixed velocity target with plain gradient descent through mixflow_model_gradients.
 *
 * (The AdamW/EMA trainer comes with the trainer API; this loop only shows the tensor-level calls.)
 * Build: make -C examples/c   (after `swift build -c release`)
 */
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

enum { BATCH = 4, C = 2, S = 8, N = BATCH * C * S * S, STEPS = 40 };

int main(void) {
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) return 1;
    mixflow_model_params p;
    CHECK(mixflow_model_default_params(&p, sizeof p));
    p.arch[0] = '\0';               /* a custom shape instead of "SiT-XL/2" */
    p.depth = 2; p.hidden = 32; p.heads = 4; p.patch = 2;
    p.input_size = S; p.in_channels = C; p.num_classes = 10; p.seed = 42; p.num_threads = 2;
    mixflow_model *m = NULL;
    CHECK(mixflow_model_create(&p, &m));
    printf("model: %d tensors, %lld floats\n", (int)mixflow_model_num_tensors(m), (long long)mixflow_model_num_params(m));

    static float x[N], target[N], out[N];
    float t[BATCH] = {0.1f, 0.4f, 0.7f, 0.95f};
    int32_t y[BATCH] = {0, 3, 7, 10}; /* 10 = the null class */
    for (int i = 0; i < N; i++) {
        x[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
        target[i] = 0.5f * x[i] + (float)(i % 5) / 10.0f;
    }
    CHECK(mixflow_model_forward(m, x, t, y, BATCH, out));

    /* Gradient descent on every trainable tensor, read and written by its official name. */
    float loss = 0, first = 0;
    float *w = NULL, *g = NULL;
    for (int step = 0; step < STEPS; step++) {
        CHECK(mixflow_model_gradients(m, x, t, y, target, BATCH, &loss, NULL));
        if (step == 0) first = loss;
        for (int32_t k = 0; k < mixflow_model_num_tensors(m); k++) {
            const char *name; int64_t shape[MIXFLOW_MODEL_MAX_NDIM]; int32_t ndim, trainable;
            CHECK(mixflow_model_tensor_info(m, k, &name, shape, &ndim, &trainable));
            if (!trainable) continue;
            int64_t n = 1;
            for (int d = 0; d < ndim; d++) n *= shape[d];
            w = realloc(w, (size_t)n * sizeof *w); g = realloc(g, (size_t)n * sizeof *g);
            CHECK(mixflow_model_get_tensor(m, name, shape, ndim, w));
            CHECK(mixflow_model_get_grad(m, name, shape, ndim, g));
            for (int64_t i = 0; i < n; i++) w[i] -= 0.5f * g[i];
            CHECK(mixflow_model_set_tensor(m, name, w, shape, ndim));
        }
        if (step % 10 == 0) printf("step %2d  loss %.5f\n", step, loss);
    }
    printf("loss %.5f -> %.5f\n", first, loss);
    free(w); free(g);
    mixflow_model_free(m);
    return loss < 0.5f * first ? 0 : 1;   /* the fit must at least halve the loss */
}
