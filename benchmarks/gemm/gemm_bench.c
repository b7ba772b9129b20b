/* GFLOP/s of libmixflow's GEMM (Sources/CGemm, called the way BLAS.sgemm calls it: cut along the longer side
 * into one run of whole register tiles per worker, one call each, on persistent worker threads) or of OpenBLAS's
 * cblas_sgemm, for the shapes given on the command line. Built and run by bench.py; not part of the library.
 *
 *   gemm_bench ours|openblas PATH THREADS SECONDS  TA TB M N K ALPHA  [TA TB M N K ALPHA ...]
 * prints one line per shape: "GFLOP/s" (the best of repeated timed runs within SECONDS per shape). */
#include "mixflow_gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { WORK_PER_THREAD = 1 << 21, MAX_THREADS = 64 }; /* BLAS.workPerThread */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* One worker's call: rows (split_rows) or columns [lo, lo + len) of the product. */
struct job {
    int path, ta, tb, split_rows;
    long m, n, k, lo, len;
    float alpha;
    const float *a, *b;
    float *c;
};

static void run_job(const struct job *j) {
    if (j->len <= 0) return;
    const long lda = j->ta ? j->m : j->k, ldb = j->tb ? j->k : j->n, ldc = j->n;
    if (j->split_rows)
        mfx_sgemm(j->path, j->ta, j->tb, j->len, j->n, j->k, j->alpha, j->ta ? j->a + j->lo : j->a + j->lo * lda, lda,
                  j->b, ldb, 0, NULL, j->c + j->lo * ldc, ldc, NULL, NULL, 0, 0);
    else
        mfx_sgemm(j->path, j->ta, j->tb, j->m, j->len, j->k, j->alpha, j->a, lda,
                  j->tb ? j->b + j->lo * ldb : j->b + j->lo, ldb, 0, NULL, j->c + j->lo, ldc, NULL, NULL, 0, 0);
}

/* Persistent workers (as libdispatch's): each keeps its packing buffers between calls. */
static struct job jobs[MAX_THREADS];
static pthread_barrier_t start, done;

static void *worker(void *arg) {
    const struct job *j = &jobs[(intptr_t)arg];
    for (;;) {
        pthread_barrier_wait(&start);
        run_job(j);
        pthread_barrier_wait(&done);
    }
    return NULL;
}

/* BLAS.sgemm: split along the longer side (rows when m >= n) into `parts` runs of whole register tiles, parts =
 * min(threads, tiles, m·n·k / WORK_PER_THREAD), at least 1. */
static void ours(int path, int threads, int ta, int tb, long m, long n, long k, float alpha, const float *a,
                 const float *b, float *c) {
    int mr, nr;
    mfx_gemm_tile(path, &mr, &nr);
    const int split_rows = m >= n;
    const long side = split_rows ? m : n, unit = split_rows ? mr : nr, units = (side + unit - 1) / unit;
    long parts = (long)((double)m * n * (k > 1 ? k : 1) / WORK_PER_THREAD);
    parts = parts < units ? parts : units;
    parts = parts < threads ? parts : threads;
    parts = parts < 1 ? 1 : parts;
    const long chunk = (units + parts - 1) / parts * unit;
    for (int p = 0; p < threads; p++) {
        jobs[p] = (struct job){path, ta, tb, split_rows, m, n, k, p * chunk, 0, alpha, a, b, c};
        if (p < parts) jobs[p].len = side - p * chunk < chunk ? side - p * chunk : chunk;
    }
    if (threads > 1) pthread_barrier_wait(&start);
    run_job(&jobs[0]);
    if (threads > 1) pthread_barrier_wait(&done);
}

int main(int argc, char **argv) {
    if (argc < 11 || (argc - 5) % 6 != 0) {
        fprintf(stderr, "usage: gemm_bench ours|openblas PATH THREADS SECONDS TA TB M N K ALPHA ...\n");
        return 2;
    }
    const int use_ours = strcmp(argv[1], "ours") == 0, path = atoi(argv[2]), threads = atoi(argv[3]);
    const double seconds = atof(argv[4]);
    if (use_ours && !mfx_gemm_supported(path)) { printf("unsupported\n"); return 0; }
    if (threads < 1 || threads > MAX_THREADS) { fprintf(stderr, "THREADS must be 1..%d\n", MAX_THREADS); return 2; }
    if (use_ours && threads > 1) {
        pthread_barrier_init(&start, NULL, (unsigned)threads);
        pthread_barrier_init(&done, NULL, (unsigned)threads);
        for (intptr_t p = 1; p < threads; p++) {
            pthread_t t;
            pthread_create(&t, NULL, worker, (void *)p);
        }
    }
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
