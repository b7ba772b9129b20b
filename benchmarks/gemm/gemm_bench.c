/* GFLOP/s of libmixflow's GEMM (Sources/CGemm, called the way BLAS.sgemm calls it: shape-fixed tiles of 256
 * rows or columns shared among threads) or of OpenBLAS's cblas_sgemm, for the shapes given on the command line.
 * Built and run by bench.py; not part of the library.
 *
 *   gemm_bench ours|openblas PATH THREADS SECONDS  TA TB M N K ALPHA  [TA TB M N K ALPHA ...]
 * prints one line per shape: "GFLOP/s" (the best of repeated timed runs within SECONDS per shape). */
#include "mixflow_gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TILE = 256 }; /* BLAS.tile */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

struct job {
    int path, ta, tb, split_m, first, last; /* tiles [first, last) */
    long m, n, k;
    float alpha;
    const float *a, *b;
    float *c;
};

static void *run_tiles(void *arg) {
    const struct job *j = arg;
    const long lda = j->ta ? j->m : j->k, ldb = j->tb ? j->k : j->n, ldc = j->n;
    for (int t = j->first; t < j->last; t++) {
        if (j->split_m) {
            long r0 = (long)t * TILE, rows = j->m - r0 < TILE ? j->m - r0 : TILE;
            mfx_sgemm(j->path, j->ta, j->tb, rows, j->n, j->k, j->alpha, j->ta ? j->a + r0 : j->a + r0 * lda, lda,
                      j->b, ldb, 0, j->c + r0 * ldc, ldc);
        } else if (j->last > 1) {
            long c0 = (long)t * TILE, cols = j->n - c0 < TILE ? j->n - c0 : TILE;
            mfx_sgemm(j->path, j->ta, j->tb, j->m, cols, j->k, j->alpha, j->a, lda, j->tb ? j->b + c0 * ldb : j->b + c0,
                      ldb, 0, j->c + c0, ldc);
        } else {
            mfx_sgemm(j->path, j->ta, j->tb, j->m, j->n, j->k, j->alpha, j->a, lda, j->b, ldb, 0, j->c, ldc);
        }
    }
    return NULL;
}

/* BLAS.sgemm: tiles of 256 rows when m >= 512, else of 256 columns when n >= 512, else one call; the tiles are
 * cut into `threads` contiguous ranges (Parallel.forRanges). */
static void ours(int path, int threads, int ta, int tb, long m, long n, long k, float alpha, const float *a,
                 const float *b, float *c) {
    struct job base = {path, ta, tb, m >= 2 * TILE, 0, 1, m, n, k, alpha, a, b, c};
    int tiles = base.split_m ? (int)((m + TILE - 1) / TILE) : n >= 2 * TILE ? (int)((n + TILE - 1) / TILE) : 1;
    int parts = threads < tiles ? threads : tiles;
    pthread_t th[64];
    struct job jobs[64];
    for (int p = 0; p < parts; p++) {
        jobs[p] = base;
        jobs[p].first = tiles * p / parts;
        jobs[p].last = tiles * (p + 1) / parts;
        if (!base.split_m && tiles == 1) jobs[p].last = 1;
        if (p > 0) pthread_create(&th[p], NULL, run_tiles, &jobs[p]);
    }
    run_tiles(&jobs[0]);
    for (int p = 1; p < parts; p++) pthread_join(th[p], NULL);
}

int main(int argc, char **argv) {
    if (argc < 11 || (argc - 5) % 6 != 0) {
        fprintf(stderr, "usage: gemm_bench ours|openblas PATH THREADS SECONDS TA TB M N K ALPHA ...\n");
        return 2;
    }
    const int use_ours = strcmp(argv[1], "ours") == 0, path = atoi(argv[2]), threads = atoi(argv[3]);
    const double seconds = atof(argv[4]);
    if (use_ours && !mfx_gemm_supported(path)) { printf("unsupported\n"); return 0; }
    if (!use_ours) openblas_set_num_threads(threads);
    for (int s = 5; s < argc; s += 6) {
        const int ta = atoi(argv[s]), tb = atoi(argv[s + 1]);
        const long m = atol(argv[s + 2]), n = atol(argv[s + 3]), k = atol(argv[s + 4]);
        const float alpha = (float)atof(argv[s + 5]);
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
        for (long i = 0; i < m * k; i++) a[i] = (float)((i * 7919 % 1000) / 1000.0 - 0.5);
        for (long i = 0; i < k * n; i++) b[i] = (float)((i * 104729 % 1000) / 1000.0 - 0.5);
        double best = 1e30, start = now();
        int runs = 0;
        while (runs < 3 || now() - start < seconds) {
            double t = now();
            if (use_ours)
                ours(path, threads, ta, tb, m, n, k, alpha, a, b, c);
            else
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                            (int)k, alpha, a, (int)(ta ? m : k), b, (int)(tb ? k : n), 0, c, (int)n);
            t = now() - t;
            if (t < best) best = t;
            runs++;
        }
        printf("%.1f\n", 2.0 * m * n * k / best / 1e9);
        free(a); free(b); free(c);
    }
    if (!use_ours) fprintf(stderr, "core %s\n", openblas_get_corename());
    return 0;
}
