/*
 * posttrain_mpi.c — data-parallel MixFlow post-training through the C API on MPI: every rank trains on its
 * slice of each global minibatch and the gradient hook averages the gradients with MPI_Allreduce before the
 * update, so all replicas apply the same step. libmixflow itself knows nothing about MPI: the hook is the
 * whole integration.
 *
 *   mpirun -n 2 build/posttrain_mpi CHECKPOINT.mixflow STEPS [BASE.onnx|-]
 *
 * Trains to STEPS optimiser steps and saves CHECKPOINT (rank 0 writes it, atomically). When CHECKPOINT exists
 * it resumes from it, with any number of ranks: the checkpoint does not depend on the split. BASE defaults to
 * the shipped models/fmnist-base/base.onnx; "-" creates a small SiT from scratch. Data: Debian's
 * dataset-fashion-mnist. Ctrl-C / SIGTERM on any rank: all ranks stop after the current step, rank 0 saves.
 *
 * Why the split is exact: row i of minibatch k is chosen from (k, i) alone, each rank passes first_sample =
 * the global index of its first row (so t, m, noise and class dropout of every row are what one process would
 * draw), and rank r weights its mean-loss gradient by rows_r / BATCH before the sum: the result is the gradient
 * of the global mean loss, up to float summation order. At the end the ranks compare weight checksums.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "mixflow.h"

#define CHECK(call)                                                                                      \
    do {                                                                                                 \
        mixflow_status s_ = (call);                                                                      \
        if (s_ != MIXFLOW_OK) {                                                                          \
            fprintf(stderr, "rank %d: %s:%d %s failed: %s (%s)\n", rank, __FILE__, __LINE__, #call,       \
                    mixflow_status_name(s_), mixflow_last_error());                                      \
            MPI_Abort(MPI_COMM_WORLD, 1); /* the other ranks may be waiting in a collective */           \
        }                                                                                                \
    } while (0)

enum { BATCH = 32, DIM = 28 * 28 };

static int rank, size;
static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

/* The gradient hook: this rank's gradient (of its mean loss over `rows` rows) weighted by rows / BATCH, summed
 * over the ranks. Only the thread that called mixflow_trainer_step runs it (MPI_THREAD_FUNNELED is enough). */
static int32_t allreduce(void *user_data, float *grads, int64_t count, int64_t step) {
    const float weight = (float)(*(const int64_t *)user_data) / (float)BATCH;
    (void)step;
    for (int64_t i = 0; i < count; i++) grads[i] *= weight;
    for (int64_t done = 0; done < count;) { /* MPI counts are int */
        int piece = count - done > 1 << 30 ? 1 << 30 : (int)(count - done);
        if (MPI_Allreduce(MPI_IN_PLACE, grads + done, piece, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS) return 1;
        done += piece;
    }
    return 0;
}

/* Row i of minibatch `step`: a function of (step, i) only (splitmix64), so every split sees the same rows. */
static int64_t row_index(int64_t step, int64_t i, int64_t n) {
    uint64_t z = (uint64_t)step * BATCH + (uint64_t)i + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (int64_t)((z ^ (z >> 31)) % (uint64_t)n);
}

/* FNV-1a over the bytes of every tensor of the trainer's weights. */
static uint64_t weights_checksum(mixflow_trainer *trainer) {
    mixflow_model *m = NULL;
    uint64_t h = 0xcbf29ce484222325u;
    CHECK(mixflow_trainer_get_model(trainer, 0, &m));
    for (int32_t k = 0; k < mixflow_model_num_tensors(m); k++) {
        const char *name = NULL;
        int64_t shape[8], n = 1;
        int32_t ndim = 0;
        CHECK(mixflow_model_tensor_info(m, k, &name, shape, &ndim, NULL));
        for (int32_t d = 0; d < ndim; d++) n *= shape[d];
        float *v = malloc((size_t)n * sizeof *v);
        if (!v) MPI_Abort(MPI_COMM_WORLD, 1);
        CHECK(mixflow_model_get_tensor(m, name, shape, ndim, v));
        const unsigned char *b = (const unsigned char *)v;
        for (size_t i = 0; i < (size_t)n * sizeof *v; i++) h = (h ^ b[i]) * 0x100000001b3u;
        free(v);
    }
    mixflow_model_free(m);
    return h;
}

static mixflow_trainer *create_trainer(const char *base) {
    mixflow_model *model = NULL;
    if (base) {
        CHECK(mixflow_model_load_onnx(base, NULL, &model));
    } else {
        mixflow_model_params mp;
        CHECK(mixflow_model_default_params(&mp, sizeof mp));
        mp.arch[0] = '\0';
        mp.depth = 2; mp.hidden = 64; mp.heads = 4; mp.patch = 4;
        mp.input_size = 28; mp.in_channels = 1; mp.num_classes = 10; mp.learn_sigma = 0;
        CHECK(mixflow_model_create(&mp, &model));   /* seed 0: the same weights on every rank */
    }
    mixflow_transport_params tp;
    mixflow_transport *transport = NULL;
    CHECK(mixflow_transport_preset_params("sit", 0, &tp, sizeof tp));
    tp.gamma = 0.12f;   /* suggest_gamma of the shipped base (README, Results) */
    CHECK(mixflow_transport_create(&tp, &transport));
    mixflow_trainer_params trp;
    mixflow_trainer *trainer = NULL;
    CHECK(mixflow_trainer_default_params(&trp, sizeof trp));
    trp.lr = base ? 1e-4f : 1e-3f;
    trp.ema_decay = 0.99f;
    trp.num_threads = 1;   /* one thread per rank: run one rank per core */
    CHECK(mixflow_trainer_create(model, transport, &trp, &trainer));
    mixflow_model_free(model);             /* the trainer keeps what it needs */
    mixflow_transport_free(transport);
    return trainer;
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3 || atoll(argv[2]) < 0 || size > BATCH) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -n N (N <= %d) %s CHECKPOINT.mixflow STEPS [BASE.onnx|-]\n", BATCH, argv[0]);
        MPI_Finalize();
        return 2;
    }
    const char *checkpoint = argv[1];
    const int64_t steps = atoll(argv[2]);
    char base_path[1024];
    const char *root = getenv("MIXFLOW_ROOT");
    snprintf(base_path, sizeof base_path, "%s/models/fmnist-base/base.onnx", root ? root : ".");
    const char *base = argc > 3 ? (strcmp(argv[3], "-") != 0 ? argv[3] : NULL) : base_path;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Data (every rank reads it; it is a Debian package on every machine). */
    mixflow_idx *images = NULL, *labels = NULL;
    CHECK(mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &images));
    CHECK(mixflow_idx_load("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", &labels));
    int64_t shape[3];
    int32_t ndim = 0;
    mixflow_idx_dtype dtype;
    CHECK(mixflow_idx_info(images, &dtype, &ndim, shape, 3));
    const int64_t n = shape[0];
    float *x = malloc((size_t)(n * DIM) * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    if (!x || !y) MPI_Abort(MPI_COMM_WORLD, 1);
    CHECK(mixflow_idx_read_f32(images, MIXFLOW_PIXEL_SCALING_SYMMETRIC, x, n * DIM));
    CHECK(mixflow_idx_read_i32(labels, y, n));

    /* Resume (all ranks read the same file: CHECKPOINT must be on a filesystem every rank sees) or start. */
    mixflow_trainer *trainer = NULL;
    if (access(checkpoint, F_OK) == 0) {
        CHECK(mixflow_trainer_resume(checkpoint, 1, &trainer));
    } else {
        trainer = create_trainer(base);
    }
    /* This rank's rows of every global batch: the first BATCH % size ranks take one more. */
    int64_t rows = BATCH / size + (rank < BATCH % size), first = rank * (BATCH / size) + (rank < BATCH % size ? rank : BATCH % size);
    CHECK(mixflow_trainer_set_gradient_hook(trainer, allreduce, &rows));
    if (rank == 0) printf("%d ranks x %lld-%lld rows of a %d-sample batch, from step %lld to %lld\n", size,
                          (long long)(BATCH / size), (long long)(BATCH / size + (BATCH % size != 0)), BATCH,
                          (long long)mixflow_trainer_step_count(trainer), (long long)steps);

    float *xb = malloc((size_t)(rows * DIM) * sizeof *xb);
    int32_t yb[BATCH];
    if (!xb) MPI_Abort(MPI_COMM_WORLD, 1);
    while (mixflow_trainer_step_count(trainer) < steps) {
        int stop = interrupted;   /* any rank's signal stops every rank at the same step */
        MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (stop) { interrupted = 1; break; }
        int64_t step = mixflow_trainer_step_count(trainer);
        for (int64_t i = 0; i < rows; i++) {
            int64_t j = row_index(step, first + i, n);
            memcpy(xb + i * DIM, x + j * DIM, DIM * sizeof *xb);
            yb[i] = y[j];
        }
        float loss = 0;
        CHECK(mixflow_trainer_step(trainer, xb, yb, rows, (uint64_t)first, &loss));
        double weighted = (double)loss * (double)rows / BATCH, global = 0;   /* summed: the global batch's mean loss */
        MPI_Reduce(&weighted, &global, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
        if (rank == 0 && (step % 10 == 0 || step == steps - 1)) printf("step %4lld  loss %.4f\n", (long long)step, global);
    }

    /* The replicas must hold the same bits; then rank 0 saves. */
    uint64_t sum[2];
    sum[0] = sum[1] = weights_checksum(trainer);
    MPI_Allreduce(MPI_IN_PLACE, &sum[0], 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &sum[1], 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("replicas bit-identical: %s (weights checksum %016llx)\n", sum[0] == sum[1] ? "yes" : "NO",
               (unsigned long long)sum[0]);
        CHECK(mixflow_trainer_save(trainer, checkpoint));
        printf("wrote %s at step %lld%s\n", checkpoint, (long long)mixflow_trainer_step_count(trainer),
               interrupted ? " (interrupted: rerun to resume)" : "");
    }
    mixflow_trainer_free(trainer);
    mixflow_idx_free(images); mixflow_idx_free(labels);
    free(x); free(y); free(xb);
    MPI_Finalize();
    return sum[0] != sum[1] ? 1 : interrupted ? 130 : 0;
}
