/* Evaluates a set of images with "FD (Fashion-MNIST classifier features)", KID and conditional accuracy,
 * through the C API only. Here the "generated" set is 2000 real training images, with and without Gaussian noise,
 * scored against the shipped statistics of the 10k test set.
 *   usage: fmnist_eval [fashion-mnist dir] [share/featnet dir]      (defaults: Debian's dir, ../../share/featnet) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "mixflow.h"

#define CHECK(call)                                                                             \
    do {                                                                                        \
        mixflow_status s_ = (call);                                                             \
        if (s_ != MIXFLOW_OK) {                                                                 \
            fprintf(stderr, "%s failed: %s\n", mixflow_status_name(s_), mixflow_last_error());  \
            return 1;                                                                           \
        }                                                                                       \
    } while (0)

enum { N = 2000, DIM = 784, FEAT = 128 };

int main(int argc, char **argv) {
    const char *data = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    const char *share = argc > 2 ? argv[2] : "../../share/featnet";
    char path[1024];
    if (mixflow_abi_version() != MIXFLOW_ABI_VERSION) return 1;

    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", data);
    mixflow_idx *images_file = NULL;
    if (mixflow_idx_load(path, &images_file) == MIXFLOW_ERR_IO) {
        printf("skipped: %s (apt-get install dataset-fashion-mnist)\n", mixflow_last_error());
        return 77;
    }
    int32_t ndim = 0;
    int64_t shape[3] = {0, 0, 0};
    CHECK(mixflow_idx_info(images_file, NULL, &ndim, shape, 3));
    float *all = malloc(sizeof(float) * (size_t)(shape[0] * shape[1] * shape[2]));
    CHECK(mixflow_idx_read_f32(images_file, MIXFLOW_PIXEL_SCALING_SYMMETRIC, all, shape[0] * shape[1] * shape[2]));
    mixflow_idx_free(images_file);

    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", data);
    mixflow_idx *labels_file = NULL;
    CHECK(mixflow_idx_load(path, &labels_file));
    int32_t *labels = malloc(sizeof(int32_t) * (size_t)shape[0]);
    CHECK(mixflow_idx_read_i32(labels_file, labels, shape[0]));
    mixflow_idx_free(labels_file);

    mixflow_featnet *net = NULL;
    snprintf(path, sizeof path, "%s/fmnist-cnn.mxfnet", share);
    CHECK(mixflow_featnet_load(path, &net));
    double *ref_mean = malloc(sizeof(double) * FEAT), *ref_cov = malloc(sizeof(double) * FEAT * FEAT);
    double *mean = malloc(sizeof(double) * FEAT), *cov = malloc(sizeof(double) * FEAT * FEAT);
    snprintf(path, sizeof path, "%s/fmnist-test-stats.mxfstat", share);
    CHECK(mixflow_feature_stats_load(path, FEAT, ref_mean, ref_cov, NULL));

    float *noisy = malloc(sizeof(float) * N * DIM), *features = malloc(sizeof(float) * N * FEAT);
    srand(1);
    for (int i = 0; i < N * DIM; i++) {   /* Box-Muller, sigma = 0.1 */
        double u1 = (rand() + 1.0) / (RAND_MAX + 2.0), u2 = (rand() + 1.0) / (RAND_MAX + 2.0);
        noisy[i] = all[i] + (float)(0.1 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
    const float *sets[2] = {all, noisy};
    const char *names[2] = {"real train images", "+ noise sigma 0.1"};
    for (int k = 0; k < 2; k++) {
        double fd = 0, accuracy = 0;
        CHECK(mixflow_featnet_features(net, sets[k], N, DIM, features));
        CHECK(mixflow_feature_stats_compute(features, N, FEAT, mean, cov));
        CHECK(mixflow_frechet_distance_from_stats(mean, cov, ref_mean, ref_cov, FEAT, &fd));
        CHECK(mixflow_featnet_accuracy(net, sets[k], labels, N, DIM, &accuracy));
        printf("%-20s n=%d  FD (Fashion-MNIST classifier features) %8.2f  conditional accuracy %.3f\n",
               names[k], N, fd, accuracy);
    }
    printf("expected: real images score a few points (FD is biased upwards at n = %d), noise sigma 0.1 far more;\n"
           "          accuracy near 0.91 for both (share/featnet/README.md)\n", N);
    free(all); free(labels); free(noisy); free(features);
    free(ref_mean); free(ref_cov); free(mean); free(cov);
    mixflow_featnet_free(net);
    return 0;
}
