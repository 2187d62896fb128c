/* bench_gemm.c — GFLOP/s of pika_sgemm_nt (src/engine/gemm.c) vs cblas_sgemm(RowMajor, NoTrans, Trans)
 * on prefill shapes: C[n, m] = X[n, k] · W[m, k]ᵀ. "1t" runs one call on this thread; "2t" runs two
 * threads at once, each on its own half of m (as src/engine/model.c's matmul_worker does), and reports
 * the summed rate. Per-call CPU time (CLOCK_THREAD_CPUTIME_ID) is printed next to wall time: the
 * machine may be shared, and CPU time is the steadier number. Both routines run single-threaded
 * per call (openblas_set_num_threads(1), as src/engine/model.c does).
 *
 *   bench_gemm [--n N] [--seconds S] [--shape MxK ...]
 * Default shapes (m x k): 448x896 896x896 2432x896 448x4864 4864x896 896x4864, n = 256.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "pika/gemm.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    int which; /* 0 pika, 1 cblas */
    int n, m, k, ldb, ldc;
    const float *A, *B;
    float *C;
    int iters;
    double cpu, wall; /* seconds for all iters */
} job;

static void one_call(const job *j) {
    if (j->which == 0) pika_sgemm_nt(j->n, j->m, j->k, j->A, j->k, j->B, j->ldb, j->C, j->ldc);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->n, j->m, j->k, 1.0f, j->A, j->k, j->B, j->ldb, 0.0f,
                    j->C, j->ldc);
}

static void *run_job(void *arg) {
    job *j = arg;
    one_call(j); /* warm-up (first-use buffers, page faults) */
    double c0 = cpu_now(), w0 = wall_now();
    for (int it = 0; it < j->iters; it++) one_call(j);
    j->cpu = cpu_now() - c0;
    j->wall = wall_now() - w0;
    return NULL;
}

/* Runs nt threads, thread t on columns [m*t/nt, m*(t+1)/nt). Prints the line for this case. */
static void bench(const char *name, int which, int nt, int n, int m, int k, const float *A, const float *B, float *C,
                  double seconds) {
    double flop = 2.0 * n * (double)m * k;
    /* calibrate: iterations for ~seconds, assuming ~50 GFLOP/s */
    int iters = (int)(seconds * 50e9 / flop);
    if (iters < 3) iters = 3;
    job jobs[8];
    pthread_t th[8];
    for (int t = 0; t < nt; t++) {
        int j0 = (int)((long)m * t / nt), j1 = (int)((long)m * (t + 1) / nt);
        jobs[t] = (job){which, n, j1 - j0, k, k, m, A, B + (size_t)j0 * k, C + j0, iters, 0, 0};
    }
    double w0 = wall_now();
    if (nt == 1) run_job(&jobs[0]);
    else {
        for (int t = 0; t < nt; t++) pthread_create(&th[t], NULL, run_job, &jobs[t]);
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    }
    double wall = wall_now() - w0;
    double cpu = 0, wmax = 0;
    for (int t = 0; t < nt; t++) {
        cpu += jobs[t].cpu;
        if (jobs[t].wall > wmax) wmax = jobs[t].wall;
    }
    (void)wall;
    /* per call: CPU seconds of one thread (mean over threads) and wall seconds (slowest thread);
     * rates are the whole call's flops over those times, so "2t" rates add both threads */
    double cpu_call = cpu / iters / nt, wall_call = wmax / iters;
    printf("%-6s %dt n=%d m=%-5d k=%-5d  cpu %8.3f ms/call %7.1f GFLOP/s   wall %8.3f ms/call %7.1f GFLOP/s\n", name,
           nt, n, m, k, 1e3 * cpu_call, flop / cpu_call / 1e9, 1e3 * wall_call, flop / wall_call / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int n = 256;
    double seconds = 1.0;
    int shapes[32][2], ns = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && ns < 32) {
            if (sscanf(argv[++i], "%dx%d", &shapes[ns][0], &shapes[ns][1]) == 2) ns++;
        } else {
            fprintf(stderr, "usage: bench_gemm [--n N] [--seconds S] [--shape MxK ...]\n");
            return 2;
        }
    }
    if (ns == 0) {
        static const int def[][2] = {{448, 896}, {896, 896}, {2432, 896}, {448, 4864}, {4864, 896}, {896, 4864}};
        ns = (int)(sizeof def / sizeof def[0]);
        memcpy(shapes, def, sizeof def);
    }
    openblas_set_num_threads(1);
    printf("pika_sgemm_nt AVX-512 path: %s; OPENBLAS_CORETYPE=%s\n", pika_sgemm_nt_avx512() ? "yes" : "no (cblas)",
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(unset)");
    for (int s = 0; s < ns; s++) {
        int m = shapes[s][0], k = shapes[s][1];
        float *A = malloc(sizeof(float) * (size_t)n * k), *B = malloc(sizeof(float) * (size_t)m * k);
        float *C = malloc(sizeof(float) * (size_t)n * m);
        if (!A || !B || !C) return 1;
        srand(1);
        for (size_t i = 0; i < (size_t)n * k; i++) A[i] = (float)rand() / RAND_MAX - 0.5f;
        for (size_t i = 0; i < (size_t)m * k; i++) B[i] = (float)rand() / RAND_MAX - 0.5f;
        /* 1 thread on the full m, and on the per-thread half m (what one of 2 threads sees) */
        bench("pika", 0, 1, n, m, k, A, B, C, seconds);
        bench("cblas", 1, 1, n, m, k, A, B, C, seconds);
        bench("pika", 0, 2, n, m, k, A, B, C, seconds);
        bench("cblas", 1, 2, n, m, k, A, B, C, seconds);
        free(A);
        free(B);
        free(C);
    }
    return 0;
}
