/* bench_peak.c — the machine's FP32 FMA peak: each thread runs 12 independent FMA chains (enough
 * to cover the FMA latency on every x86 core of the last decade) for a fixed number of iterations,
 * AVX2 (8 lanes) and AVX-512 (16 lanes) where the CPU has them. GFLOP/s = 2 flops per lane per FMA.
 *   bench_peak [threads=2] [seconds=1]
 * Prints one line per path: "peak avx2 threads 2: 199.8 GFLOP/s" (best of 3 runs). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "pika/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define CHAINS(OP, T, SET, ADD)                                                                  \
    T a0 = SET(1.0f), a1 = SET(1.1f), a2 = SET(1.2f), a3 = SET(1.3f), a4 = SET(1.4f), a5 = SET(1.5f); \
    T a6 = SET(1.6f), a7 = SET(1.7f), a8 = SET(1.8f), a9 = SET(1.9f), a10 = SET(2.0f), a11 = SET(2.1f); \
    const T m = SET(0.999999f), c = SET(1e-7f);                                                  \
    for (long i = 0; i < iters; i++) {                                                           \
        a0 = OP(a0, m, c); a1 = OP(a1, m, c); a2 = OP(a2, m, c); a3 = OP(a3, m, c);              \
        a4 = OP(a4, m, c); a5 = OP(a5, m, c); a6 = OP(a6, m, c); a7 = OP(a7, m, c);              \
        a8 = OP(a8, m, c); a9 = OP(a9, m, c); a10 = OP(a10, m, c); a11 = OP(a11, m, c);          \
    }                                                                                            \
    T s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                     \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));

__attribute__((target("avx2,fma"))) static float run_avx2(long iters) {
    CHAINS(_mm256_fmadd_ps, __m256, _mm256_set1_ps, _mm256_add_ps)
    float o[8];
    _mm256_storeu_ps(o, s);
    return o[0] + o[7];
}
__attribute__((target("avx512f"))) static float run_avx512(long iters) {
    CHAINS(_mm512_fmadd_ps, __m512, _mm512_set1_ps, _mm512_add_ps)
    return _mm512_reduce_add_ps(s);
}

typedef struct { int wide; long iters; float sink; } job;
static volatile float g_sink; /* keeps the compiler from dropping the loops */
static void *worker(void *arg) {
    job *j = arg;
    j->sink = j->wide ? run_avx512(j->iters) : run_avx2(j->iters);
    g_sink = j->sink;
    return NULL;
}

static double measure(int wide, int nt, long iters) {
    pthread_t th[64];
    job jobs[64];
    double t0 = pika_now();
    for (int t = 0; t < nt; t++) {
        jobs[t] = (job){wide, iters, 0};
        pthread_create(&th[t], NULL, worker, &jobs[t]);
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
    double dt = pika_now() - t0;
    return 12.0 * (wide ? 16 : 8) * 2.0 * (double)iters * nt / dt / 1e9;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    if (nt < 1 || nt > 64) nt = 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    __builtin_cpu_init();
    for (int wide = 0; wide < 2; wide++) {
        if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) continue;
        if (wide && !__builtin_cpu_supports("avx512f")) { printf("peak avx512: not on this CPU\n"); continue; }
        /* calibrate: iterations for ~secs on one thread */
        long iters = 20000000;
        double t0 = pika_now();
        job j = {wide, iters, 0};
        worker(&j);
        double dt = pika_now() - t0;
        iters = (long)((double)iters * secs / (dt > 1e-6 ? dt : 1e-6));
        double best = 0;
        for (int r = 0; r < 3; r++) {
            double g = measure(wide, nt, iters);
            if (g > best) best = g;
        }
        printf("peak %s threads %d: %.1f GFLOP/s\n", wide ? "avx512" : "avx2", nt, best);
    }
    return 0;
}
#else
int main(void) { printf("peak: x86-64 only\n"); return 0; }
#endif
