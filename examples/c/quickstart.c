/* quickstart.c: 20 MixFlow steps on the shipped base with Fashion-MNIST, then 16 samples as a PNG grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "mixflow.h"
#define CHECK(call) do { if ((call) != MIXFLOW_OK) { fprintf(stderr, "%s\n", mixflow_last_error()); return 1; } } while (0)
enum { N = 60000, D = 28 * 28, B = 32, S = 16 };
static float x[N * D], noise[S * D], out[S * D]; static int32_t y[N], labels[S]; static uint8_t png[S * D];

int main(void) {
    mixflow_idx *xf = NULL, *yf = NULL;              /* apt-get install dataset-fashion-mnist */
    if (mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &xf) != MIXFLOW_OK)
        { printf("skipped: %s\n", mixflow_last_error()); return 77; }
    CHECK(mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &yf));
    CHECK(mixflow_idx_read_f32(xf, MIXFLOW_PIXEL_SCALING_SYMMETRIC, x, N * D));      /* pixels in [-1, 1] */
    CHECK(mixflow_idx_read_i32(yf, y, N));

    mixflow_model *model = NULL, *ema = NULL; mixflow_transport *tr = NULL; mixflow_trainer *trainer = NULL;
    CHECK(mixflow_model_load_onnx("models/fmnist-base/base.onnx", NULL, &model));
    mixflow_transport_params tp; CHECK(mixflow_transport_preset_params("sit", 0, &tp, sizeof tp));
    tp.gamma = 0.12f;                                /* MixFlow's slowing; 0 = standard flow matching */
    CHECK(mixflow_transport_create(&tp, &tr));
    mixflow_trainer_params rp; CHECK(mixflow_trainer_default_params(&rp, sizeof rp));
    CHECK(mixflow_trainer_create(model, tr, &rp, &trainer));
    for (int step = 0; step < 20; step++) {          /* consecutive minibatches of 32 images */
        float loss; CHECK(mixflow_trainer_step(trainer, x + step * B * D, y + step * B, B, 0, &loss));
        if (step % 5 == 0) printf("step %2d  loss %.4f\n", step, loss);
    }

    mixflow_sampler_params sp; mixflow_sampler *sampler = NULL;
    CHECK(mixflow_sampler_default_params(&sp, sizeof sp)); sp.num_steps = 20;   /* Heun on 20 grid points */
    CHECK(mixflow_sampler_create(&sp, &sampler));
    for (int i = 0; i < S * D; i++)                  /* standard normal noise (Box-Muller), labels 0..9 */
        noise[i] = (float)(sqrt(-2 * log((rand() + 1.0) / (RAND_MAX + 2.0))) * cos(6.283185307 * rand() / RAND_MAX));
    for (int i = 0; i < S; i++) labels[i] = i % 10;
    CHECK(mixflow_trainer_get_model(trainer, 1, &ema));                        /* the EMA weights */
    CHECK(mixflow_sample_model(sampler, ema, NULL, noise, S, D, labels, 0, out, NULL, NULL));
    CHECK(mixflow_samples_to_uint8(MIXFLOW_CONVENTION_SIT, out, S, 1, 28, 28, png));
    CHECK(mixflow_samples_write_png("quickstart.png", png, S, 28, 28, 1, 8));
    printf("wrote quickstart.png (after 20 steps the samples look like the base's; see results/fmnist)\n");
    return 0;
}
