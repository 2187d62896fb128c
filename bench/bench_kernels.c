/* bench_kernels.c — throughput of the tensor-type kernels (src/engine/quant.c): the decode matvec
 * (weight GB/s and Gelem/s, 1 and 2 threads; exact F32 dot, and "q8 GB/s": the 8-bit-activation integer
 * dots of the default decode path, 1 thread, activation quantization included) and dequantize_row (Gelem/s of F32 output), per
 * type and SIMD path. 1-thread and dequant rates use this thread's CPU time (steadier on a
 * shared machine); 2-thread rates use wall time. The weight matrix is large (default 16384 x 4864, like a stack of
 * Qwen2.5-0.5B ffn_down matrices) so the matvec streams from memory as decode does.
 *
 *   bench_kernels [--rows N] [--n N] [--types F16,Q8_0,...] [--paths avx512,avx2,scalar] [--seconds S]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pika/quant.h"
#include "pika/util.h"

typedef struct {
    uint32_t type;
    const uint8_t *W;
    const float *x;
    float *y;
    int64_t n, r0, r1;
} mv_job;

static void *mv_thread(void *arg) {
    mv_job *j = arg;
    pika_matvec(j->type, j->W, j->x, j->y, j->n, j->r0, j->r1);
    return NULL;
}

static void matvec_mt(uint32_t type, const uint8_t *W, const float *x, float *y, int64_t n, int64_t rows, int nt) {
    if (nt == 1) { pika_matvec(type, W, x, y, n, 0, rows); return; }
    pthread_t th[16];
    mv_job jobs[16];
    for (int t = 0; t < nt; t++) {
        jobs[t] = (mv_job){type, W, x, y, n, rows * t / nt, rows * (t + 1) / nt};
        pthread_create(&th[t], NULL, mv_thread, &jobs[t]);
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
}

/* CPU seconds used by this thread: on a busy shared machine this is steadier than wall time. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int in_list(const char *list, const char *name) {
    if (!list) return 1;
    size_t l = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == ',') && (p[l] == 0 || p[l] == ',')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    int64_t rows = 16384, n = 4864;
    const char *types = NULL, *paths = "avx512,avx2,scalar";
    double secs = 0.5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows")) rows = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--n")) n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--types")) types = argv[i + 1];
        else if (!strcmp(argv[i], "--paths")) paths = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else pika_die("unknown option %s", argv[i]);
    }
    if (n % 256 || rows < 1) pika_die("--n must be a multiple of 256");
    static const uint32_t T[] = {PIKA_TYPE_F32, PIKA_TYPE_F16, PIKA_TYPE_BF16, PIKA_TYPE_Q8_0, PIKA_TYPE_Q4_0,
                                 PIKA_TYPE_Q4_1, PIKA_TYPE_Q5_0, PIKA_TYPE_Q5_1, PIKA_TYPE_Q4_K, PIKA_TYPE_Q5_K,
                                 PIKA_TYPE_Q6_K};
    float *row = pika_malloc((size_t)n * sizeof(float)), *x = pika_malloc((size_t)n * sizeof(float));
    float *y = pika_malloc((size_t)rows * sizeof(float));
    const int64_t tile = 64;
    float *deq = pika_malloc((size_t)(tile * n) * sizeof(float));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    printf("matrix %lld x %lld, cores %d, best path %s\n", (long long)rows, (long long)n, pika_n_cores(), pika_simd_path());
    printf("%-5s %-7s %12s %12s %12s %12s %14s %12s\n", "type", "path", "mv1 GB/s", "mv1 Gel/s", "mv2 GB/s", "mv2 Gel/s",
           "dequant Gel/s", "q8 mv1 GB/s");
    void *xq = pika_malloc(pika_q8_act_bytes(n));
    for (size_t ti = 0; ti < sizeof T / sizeof T[0]; ti++) {
        uint32_t type = T[ti];
        if (!in_list(types, pika_type_name(type))) continue;
        size_t rb = pika_row_bytes(type, n);
        uint8_t *W = pika_malloc(rb * (size_t)rows);
        /* quantize one random row per 64 and copy it: fast setup, same memory traffic */
        for (int64_t r = 0; r < rows; r++) {
            if (r % 64 == 0) {
                for (int64_t i = 0; i < n; i++) {
                    s = s * 6364136223846793005ull + 1442695040888963407ull;
                    row[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.05f;
                }
                pika_quantize_row(type, row, W + (size_t)r * rb, n);
            } else {
                memcpy(W + (size_t)r * rb, W + (size_t)(r / 64 * 64) * rb, rb);
            }
        }
        const char *P[] = {"avx512", "avx2", "scalar"};
        for (int p = 0; p < 3; p++) {
            if (!in_list(paths, P[p]) || pika_simd_set_path(P[p]) != 0) continue;
            double res[2];
            for (int nt = 1; nt <= 2; nt++) {
                matvec_mt(type, W, x, y, n, rows, nt); /* warm up */
                int iters = 0;
                double t0 = pika_now(), c0 = cpu_now(), t;
                do {
                    matvec_mt(type, W, x, y, n, rows, nt);
                    iters++;
                    t = pika_now() - t0;
                } while (t < secs);
                /* 1 thread: CPU time of this thread; 2 threads: wall time */
                res[nt - 1] = (nt == 1 ? cpu_now() - c0 : t) / iters;
            }
            double t0 = pika_now(), c0 = cpu_now(), t;
            int64_t done = 0;
            do {
                for (int64_t r = 0; r < tile; r++) pika_dequantize_row(type, W + (size_t)((done + r) % rows) * rb, deq + r * n, n);
                done += tile;
            } while (pika_now() - t0 < secs / 2);
            t = cpu_now() - c0;
            double bytes = (double)rb * rows, el = (double)n * rows, q8 = 0;
            if (pika_type_has_q8_dot(type)) {
                pika_quantize_act_q8(x, xq, n);
                pika_matvec_q8(type, W, xq, y, n, 0, rows); /* warm up */
                int iters = 0;
                double w0 = pika_now(), q0 = cpu_now();
                do {
                    pika_quantize_act_q8(x, xq, n);
                    pika_matvec_q8(type, W, xq, y, n, 0, rows);
                    iters++;
                } while (pika_now() - w0 < secs);
                q8 = bytes / ((cpu_now() - q0) / iters) / 1e9;
            }
            printf("%-5s %-7s %12.2f %12.2f %12.2f %12.2f %14.2f %12.2f\n", pika_type_name(type), P[p], bytes / res[0] / 1e9,
                   el / res[0] / 1e9, bytes / res[1] / 1e9, el / res[1] / 1e9, (double)done * n / t / 1e9, q8);
            fflush(stdout);
        }
        pika_simd_set_path(NULL);
        free(W);
    }
    free(row);
    free(x);
    free(y);
    free(deq);
    free(xq);
    return 0;
}
