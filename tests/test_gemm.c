/* test_gemm.c — pika_sgemm_nt (src/engine/gemm.c) against a double-precision reference and cblas_sgemm:
 * edge sizes around the micro-tile (14 x 32) and block (k 256, n 280) sizes and the small-n path
 * (n < 4: 3 x 8 dot tiles, k blocks of 1024), leading dimensions
 * larger than the minimum (padding must be neither read as data nor written), k = 0, the real
 * prefill shapes (sampled entries vs double, all entries vs cblas), concurrent calls from
 * several threads (bit-identical to sequential calls), and the typed product (weights in each ggml
 * type, dequantized into the panels) against the reference dequantizer, and the optional BF16 product. */
#include <pthread.h>
#include <stdint.h>

#include <cblas.h>

#include "pika/gemm.h"
#include "pika/quant.h"
#include "pika/util.h"
#include "test.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* Matrices with padding columns (ld > cols) filled with NaN, so any read of padding shows up. */
static float *make(int rows, int cols, int ld) {
    float *x = malloc(sizeof(float) * ((size_t)rows * ld + 1));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < ld; j++) x[(size_t)i * ld + j] = j < cols ? frand() : NAN;
    return x;
}

/* |C[i,j] - ref| / Σ_p |a||b| with the reference summed in double; INFINITY for NaN. */
static double check_entry(int i, int j, int k, const float *A, int lda, const float *B, int ldb, const float *C, int ldc) {
    double s = 0, sa = 0;
    for (int p = 0; p < k; p++) {
        double a = A[(size_t)i * lda + p], b = B[(size_t)j * ldb + p];
        s += a * b;
        sa += fabs(a * b);
    }
    double c = C[(size_t)i * ldc + j];
    if (c != c) return INFINITY;
    return fabs(c - s) / (sa + 1e-30);
}

/* One shape: all entries vs double (samples <= 0) or `samples` random entries, and all vs cblas;
 * failures are reported through CHECK. */
static void one_shape(int n, int m, int k, int pad, int samples) {
    int lda = k + pad, ldb = k + 2 * pad, ldc = m + 3 * pad;
    float *A = make(n, k, lda), *B = make(m, k, ldb);
    float *C = malloc(sizeof(float) * ((size_t)n * ldc + 1)), *R = malloc(sizeof(float) * ((size_t)n * m + 1));
    for (size_t i = 0; i < (size_t)n * ldc; i++) C[i] = NAN; /* beta = 0: everything must be overwritten */
    for (int i = 0; i < n; i++)
        for (int j = m; j < ldc; j++) C[(size_t)i * ldc + j] = -7.0f;
    pika_sgemm_nt(n, m, k, A, lda, B, ldb, C, ldc);

    double worst = 0;
    int wi = -1, wj = -1;
    if (samples <= 0) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
                double e = check_entry(i, j, k, A, lda, B, ldb, C, ldc);
                if (!(e <= worst)) worst = e, wi = i, wj = j;
            }
    } else {
        for (int s = 0; s < samples; s++) {
            int i = (int)((frand() + 1.0f) * 0.5f * n), j = (int)((frand() + 1.0f) * 0.5f * m);
            if (i >= n) i = n - 1;
            if (j >= m) j = m - 1;
            double e = check_entry(i, j, k, A, lda, B, ldb, C, ldc);
            if (!(e <= worst)) worst = e, wi = i, wj = j;
        }
    }
    CHECK(worst <= 1e-5, "n=%d m=%d k=%d pad=%d: rel err %.3g at (%d,%d)", n, m, k, pad, worst, wi, wj);

    int pad_ok = 1;
    for (int i = 0; i < n; i++)
        for (int j = m; j < ldc; j++) pad_ok &= C[(size_t)i * ldc + j] == -7.0f;
    CHECK(pad_ok, "n=%d m=%d k=%d pad=%d: C padding written", n, m, k, pad);

    /* vs cblas: same tolerance relative to Σ|a||b| (here bounded by k since |a|,|b| < 1) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, A, lda, B, ldb, 0.0f, R, m);
    double worst_blas = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            double d = fabs((double)C[(size_t)i * ldc + j] - (double)R[(size_t)i * m + j]);
            if (!(d <= worst_blas)) worst_blas = d;
        }
    CHECK(worst_blas <= 2e-5 * k + 1e-6, "n=%d m=%d k=%d: max |pika - cblas| = %.3g", n, m, k, worst_blas);
    free(A);
    free(B);
    free(C);
    free(R);
}

static void test_edge_sizes(void) {
    static const int sz[] = {1, 2, 3, 7, 15, 16, 17, 31, 33, 64, 100, 255, 257};
    const int ns = (int)(sizeof sz / sizeof sz[0]);
    for (int a = 0; a < ns; a++)
        for (int b = 0; b < ns; b++)
            for (int c = 0; c < ns; c++) {
                int n = sz[a], m = sz[b], k = sz[c];
                /* keep the double reference cheap: full check below ~2M multiply-adds */
                int samples = (double)n * m * k > 2e6 ? 300 : 0;
                one_shape(n, m, k, (a + b + c) % 3 == 0 ? 0 : 5, samples);
                if (t_cur_failed > 20) return;
            }
}

static void test_block_edges(void) {
    /* around the micro-tile (14 rows, 32 columns) and blocks (k 256, n 280) */
    static const int shapes[][3] = {
        {13, 32, 256}, {14, 31, 255}, {15, 33, 257}, {28, 64, 512}, {29, 65, 513}, {279, 48, 300},
        {280, 40, 256}, {281, 40, 257}, {300, 100, 600}, {560, 33, 70}, {561, 96, 1}, {1, 1000, 1000},
        {20, 16, 16}, {42, 47, 129}, {512, 64, 896},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int pad = 0; pad <= 3; pad += 3) one_shape(shapes[s][0], shapes[s][1], shapes[s][2], pad, 2000);
}

static void test_real_shapes(void) {
    static const int ms[] = {448, 2432, 64}, ks[] = {896, 4864};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) one_shape(256, ms[a], ks[b], 0, 500);
    one_shape(16, 448, 896, 0, 0);
    one_shape(3, 2432, 4864, 0, 1000); /* small-n path, several k blocks */
    one_shape(2, 100, 2049, 2, 0);
    one_shape(4, 2432, 4864, 0, 1000); /* smallest n on the packed path */
    one_shape(9, 100, 2049, 2, 0);
    one_shape(17, 2432, 896, 1, 1000);
}

static void test_degenerate(void) {
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 1, 1, 1, 1, 1}, C[4] = {9, 9, 9, 9};
    pika_sgemm_nt(2, 2, 0, A, 3, B, 3, C, 2); /* k = 0: C = 0 */
    CHECK(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0, "k=0 did not zero C");
    C[0] = 5;
    pika_sgemm_nt(0, 2, 3, A, 3, B, 3, C, 2); /* n = 0: nothing written */
    pika_sgemm_nt(2, 0, 3, A, 3, B, 3, C, 2);
    CHECK(C[0] == 5, "n=0 or m=0 wrote C");
    pika_sgemm_nt(2, 2, 3, A, 3, B, 3, C, 2); /* exact small integers */
    CHECK(C[0] == 6 && C[1] == 6 && C[2] == 15 && C[3] == 15, "2x2x3: %g %g %g %g", C[0], C[1], C[2], C[3]);
    printf("pika_sgemm_nt path: %s\n", pika_sgemm_nt_avx512() ? "avx512" : pika_sgemm_nt_avx2() ? "avx2" : "cblas");
}

/* ---------------------------------------------------------------- concurrency */

typedef struct {
    int n, m, k;
    const float *A, *B;
    float *C;
    int reps;
} cjob;

static void *cthread(void *arg) {
    cjob *j = arg;
    for (int r = 0; r < j->reps; r++) pika_sgemm_nt(j->n, j->m, j->k, j->A, j->k, j->B, j->k, j->C, j->m);
    return NULL;
}

static void test_concurrent(void) {
    enum { NT = 4 };
    static const int shp[NT][3] = {{64, 448, 896}, {100, 257, 513}, {256, 96, 300}, {31, 640, 1000}};
    cjob jobs[NT];
    float *seq[NT];
    for (int t = 0; t < NT; t++) {
        int n = shp[t][0], m = shp[t][1], k = shp[t][2];
        jobs[t] = (cjob){n, m, k, make(n, k, k), make(m, k, k), malloc(sizeof(float) * (size_t)n * m), 3};
        seq[t] = malloc(sizeof(float) * (size_t)n * m);
        pika_sgemm_nt(n, m, k, jobs[t].A, k, jobs[t].B, k, seq[t], m);
    }
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) REQUIRE(pthread_create(&th[t], NULL, cthread, &jobs[t]) == 0, "pthread_create");
    for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < NT; t++) {
        size_t cnt = (size_t)shp[t][0] * shp[t][1];
        CHECK(memcmp(seq[t], jobs[t].C, sizeof(float) * cnt) == 0, "thread %d result differs from sequential", t);
        free((void *)jobs[t].A);
        free((void *)jobs[t].B);
        free(jobs[t].C);
        free(seq[t]);
    }
}

/* ---------------------------------------------------------------- typed B (weights in a ggml type) */

/* pika_sgemm_nt_typed on quantized rows == the product with the rows dequantized by the reference
 * dequantizer (within F32 rounding, vs double), for every weight type, k with and without a partial
 * last k block, n around the tile and block sizes, m with a partial panel. */
static void test_typed(void) {
    static const uint32_t types[] = {PIKA_TYPE_F16, PIKA_TYPE_BF16, PIKA_TYPE_Q8_0, PIKA_TYPE_Q4_0, PIKA_TYPE_Q4_1,
                                     PIKA_TYPE_Q5_0, PIKA_TYPE_Q5_1, PIKA_TYPE_Q4_K, PIKA_TYPE_Q5_K, PIKA_TYPE_Q6_K};
    static const int shapes[][3] = {{4, 33, 256}, {17, 70, 768}, {313, 32, 512}, {5, 1, 256}};
    if (!pika_sgemm_nt_typed_native()) {
        float a = 1, c = 0;
        uint16_t h = 0;
        CHECK(pika_sgemm_nt_typed(1, 1, 1, &a, 1, PIKA_TYPE_F16, &h, 2, &c, 1) == -1,
              "typed product must refuse where pika's kernels do not run");
        printf("note: pika_sgemm_nt_typed does not run at this level (cblas fallback): refused as documented\n");
        return;
    }
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const uint32_t ty = types[ti];
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes + 1; si++) {
            /* the last case: k = 96 (a partial k block of whole 32-blocks), 32-element block types only */
            int n = si < 4 ? shapes[si][0] : 29, m = si < 4 ? shapes[si][1] : 47, k = si < 4 ? shapes[si][2] : 96;
            if (k % pika_type_block_elems(ty)) continue;
            size_t rb = pika_row_bytes(ty, k);
            uint8_t *W = malloc(rb * (size_t)m);
            float *Wf = malloc(sizeof(float) * (size_t)m * k), *row = malloc(sizeof(float) * (size_t)k);
            for (int j = 0; j < m; j++) {
                for (int p = 0; p < k; p++) row[p] = frand();
                REQUIRE(pika_quantize_row(ty, row, W + rb * (size_t)j, k) == 0, "quantize %s", pika_type_name(ty));
                pika_dequantize_row_ref(ty, W + rb * (size_t)j, Wf + (size_t)j * k, k);
            }
            float *A = make(n, k, k), *C = malloc(sizeof(float) * (size_t)n * m);
            for (size_t i = 0; i < (size_t)n * m; i++) C[i] = NAN;
            CHECK(pika_sgemm_nt_typed(n, m, k, A, k, ty, W, rb, C, m) == 0, "%s typed product refused", pika_type_name(ty));
            double worst = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < m; j++) {
                    double e = check_entry(i, j, k, A, k, Wf, k, C, m);
                    if (!(e <= worst)) worst = e;
                }
            CHECK(worst < 1e-5, "%s n=%d m=%d k=%d: worst relative error %.3g", pika_type_name(ty), n, m, k, worst);
            free(W); free(Wf); free(row); free(A); free(C);
        }
    }
}

/* The BF16 product: on inputs BF16 holds exactly (multiples of 1/16 in [-1, 1]) it must equal the exact
 * product up to F32 summation (every packing slip would show); on random inputs of every weight type its
 * error stays within BF16's input rounding (each product within ~2^-8 relative). */
static void test_typed_bf16(void) {
    if (!pika_simd_has_avx512_bf16()) {
        float a = 1, c = 0, b = 1;
        CHECK(pika_sgemm_nt_typed_bf16(1, 1, 1, &a, 1, PIKA_TYPE_F32, &b, 4, &c, 1) == -1, "must refuse without AVX512_BF16");
        printf("note: this CPU (or level) has no AVX512_BF16: the BF16 product is not checked, only refused\n");
        return;
    }
    static const int shapes[][3] = {{4, 33, 256}, {17, 70, 768}, {313, 32, 512}, {29, 47, 96}, {14, 16, 33}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int n = shapes[si][0], m = shapes[si][1], k = shapes[si][2];
        float *A = malloc(sizeof(float) * (size_t)n * k), *B = malloc(sizeof(float) * (size_t)m * k);
        uint16_t *Bh = malloc(sizeof(uint16_t) * (size_t)m * k);
        for (size_t i = 0; i < (size_t)n * k; i++) A[i] = (float)((int)(frand() * 16.0f)) / 16.0f;
        for (size_t i = 0; i < (size_t)m * k; i++) {
            B[i] = (float)((int)(frand() * 16.0f)) / 16.0f;
            Bh[i] = pika_fp32_to_fp16(B[i]);
        }
        float *C = malloc(sizeof(float) * (size_t)n * m);
        for (int f16 = 0; f16 < 2; f16++) {
            for (size_t i = 0; i < (size_t)n * m; i++) C[i] = NAN;
            int rc = f16 ? pika_sgemm_nt_typed_bf16(n, m, k, A, k, PIKA_TYPE_F16, Bh, sizeof(uint16_t) * (size_t)k, C, m)
                         : pika_sgemm_nt_typed_bf16(n, m, k, A, k, PIKA_TYPE_F32, B, sizeof(float) * (size_t)k, C, m);
            CHECK(rc == 0, "bf16 product refused");
            double worst = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < m; j++) {
                    double e = check_entry(i, j, k, A, k, B, k, C, m);
                    if (!(e <= worst)) worst = e;
                }
            CHECK(worst < 1e-6, "bf16 %s n=%d m=%d k=%d exact inputs: worst relative error %.3g", f16 ? "F16" : "F32", n, m,
                  k, worst);
        }
        free(A); free(B); free(Bh); free(C);
    }
    static const uint32_t types[] = {PIKA_TYPE_F32, PIKA_TYPE_F16, PIKA_TYPE_Q8_0, PIKA_TYPE_Q4_K, PIKA_TYPE_Q6_K, PIKA_TYPE_Q5_0};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const uint32_t ty = types[ti];
        int n = 37, m = 45, k = 512;
        size_t rb = pika_row_bytes(ty, k);
        uint8_t *W = malloc(rb * (size_t)m);
        float *Wf = malloc(sizeof(float) * (size_t)m * k), *row = malloc(sizeof(float) * (size_t)k);
        for (int j = 0; j < m; j++) {
            for (int p = 0; p < k; p++) row[p] = frand();
            REQUIRE(pika_quantize_row(ty, row, W + rb * (size_t)j, k) == 0, "quantize");
            pika_dequantize_row_ref(ty, W + rb * (size_t)j, Wf + (size_t)j * k, k);
        }
        float *A = make(n, k, k), *C = malloc(sizeof(float) * (size_t)n * m);
        CHECK(pika_sgemm_nt_typed_bf16(n, m, k, A, k, ty, W, rb, C, m) == 0, "refused");
        double worst = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
                double e = check_entry(i, j, k, A, k, Wf, k, C, m);
                if (!(e <= worst)) worst = e;
            }
        CHECK(worst < 8e-3 && worst > 0, "bf16 %s: worst error relative to sum |a b| %.3g (want within BF16 rounding)",
              pika_type_name(ty), worst);
        free(W); free(Wf); free(row); free(A); free(C);
    }
}

/* The 8-bit integer product (pika_sgemm_nt_typed_q8): the weight levels its packer reads
 * (pika_unpack_levels) equal the scalar reference's bit for bit and rebuild the dequantized weights; the
 * product equals the scalar q8 reference dot (pika_vec_dot_q8_ref: the same quantized activations,
 * integer sums, scales per block) up to F32 rounding, for every weight type it takes, at shapes around
 * its tiles (VNNI 6 x 32, AVX2 4 x 16), n blocks (288) and k block (256); and it stays within the
 * activations' 8-bit rounding of the exact product. */
static void test_typed_q8(void) {
    static const uint32_t types[] = {PIKA_TYPE_Q4_0, PIKA_TYPE_Q4_1, PIKA_TYPE_Q5_0, PIKA_TYPE_Q5_1,
                                     PIKA_TYPE_Q8_0, PIKA_TYPE_Q4_K, PIKA_TYPE_Q5_K, PIKA_TYPE_Q6_K};
    static const int shapes[][3] = {{37, 45, 512}, {4, 32, 256}, {7, 1, 768}, {300, 70, 256}, {13, 33, 1280}};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        const uint32_t ty = types[ti];
        const int G = pika_type_levels_group(ty);
        CHECK(G == 32 || G == 16, "%s: levels group %d", pika_type_name(ty), G);
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            int n = shapes[si][0], m = shapes[si][1], k = shapes[si][2];
            size_t rb = pika_row_bytes(ty, k), ab = pika_q8_act_bytes(k);
            uint8_t *W = malloc(rb * (size_t)m), *Aq = malloc(ab * (size_t)n);
            float *Wf = malloc(sizeof(float) * (size_t)m * k), *row = malloc(sizeof(float) * (size_t)k);
            int8_t *v = malloc((size_t)k), *vr = malloc((size_t)k);
            float *d = malloc(sizeof(float) * (size_t)k / 16), *dr = malloc(sizeof(float) * (size_t)k / 16);
            float *mn = malloc(sizeof(float) * (size_t)k / 32), *mr = malloc(sizeof(float) * (size_t)k / 32);
            int lv_bad = 0;
            double rebuild = 0;
            for (int j = 0; j < m; j++) {
                for (int p = 0; p < k; p++) row[p] = frand() * (1.0f + (float)(p % 97) / 16.0f);
                REQUIRE(pika_quantize_row(ty, row, W + rb * (size_t)j, k) == 0, "quantize");
                pika_dequantize_row_ref(ty, W + rb * (size_t)j, Wf + (size_t)j * k, k);
                pika_unpack_levels(ty, W + rb * (size_t)j, k, v, d, mn);
                pika_unpack_levels_ref(ty, W + rb * (size_t)j, k, vr, dr, mr);
                lv_bad += memcmp(v, vr, (size_t)k) != 0 || memcmp(d, dr, sizeof(float) * (size_t)(k / G)) != 0 ||
                          memcmp(mn, mr, sizeof(float) * (size_t)(k / 32)) != 0;
                for (int p = 0; p < k; p++) {
                    double e = fabs(d[p / G] * (double)v[p] + mn[p / 32] - Wf[(size_t)j * k + p]);
                    if (!(e <= rebuild)) rebuild = e;
                }
            }
            CHECK(lv_bad == 0, "%s k=%d: SIMD levels differ from the reference in %d rows", pika_type_name(ty), k, lv_bad);
            CHECK(rebuild < 1e-5, "%s: d * v + m misses the dequantized weight by %.3g", pika_type_name(ty), rebuild);
            float *A = make(n, k, k + 5), *C = malloc(sizeof(float) * ((size_t)n * (m + 3) + 1));
            for (int i = 0; i < n; i++) pika_quantize_act_q8(A + (size_t)i * (k + 5), Aq + ab * (size_t)i, k);
            for (size_t i = 0; i < (size_t)n * (m + 3); i++) C[i] = NAN;
            int rc = pika_sgemm_nt_typed_q8(n, m, k, A, k + 5, ty, W, rb, C, m + 3);
            if (!pika_sgemm_nt_q8_native(ty)) {
                CHECK(rc == -1, "q8 product must refuse where it cannot run");
            } else {
                CHECK(rc == 0, "q8 product refused");
                double worst = 0, worst_exact = 0;
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < m; j++) {
                        double r = pika_vec_dot_q8_ref(ty, W + rb * (size_t)j, Aq + ab * (size_t)i, k), sa = 0;
                        for (int p = 0; p < k; p++) sa += fabs((double)A[(size_t)i * (k + 5) + p] * Wf[(size_t)j * k + p]);
                        double c = C[(size_t)i * (m + 3) + j];
                        double e = c == c ? fabs(c - r) / (sa + 1e-30) : INFINITY;
                        if (!(e <= worst)) worst = e;
                        double ex = check_entry(i, j, k, A, k + 5, Wf, k, C, m + 3);
                        if (!(ex <= worst_exact)) worst_exact = ex;
                    }
                CHECK(worst < 2e-6, "q8 %s n=%d m=%d k=%d: worst error vs the scalar q8 dot %.3g", pika_type_name(ty), n, m, k,
                      worst);
                CHECK(worst_exact < 2e-2, "q8 %s n=%d m=%d k=%d: worst error vs the exact product %.3g", pika_type_name(ty),
                      n, m, k, worst_exact);
                int pad_bad = 0;
                for (int i = 0; i < n; i++)
                    for (int j = m; j < m + 3; j++) pad_bad += C[(size_t)i * (m + 3) + j] == C[(size_t)i * (m + 3) + j];
                CHECK(pad_bad == 0, "q8 %s: %d padding entries of C written", pika_type_name(ty), pad_bad);
            }
            free(W); free(Aq); free(Wf); free(row); free(v); free(vr); free(d); free(dr); free(mn); free(mr);
            free(A); free(C);
        }
    }
    float a = 1, c = 0, b = 1;
    CHECK(pika_sgemm_nt_typed_q8(1, 1, 32, &a, 32, PIKA_TYPE_F32, &b, 128, &c, 1) == -1, "q8 product must refuse F32 weights");
    if (!pika_sgemm_nt_q8_native(PIKA_TYPE_Q8_0))
        printf("note: no AVX512_VNNI at this level: the integer product is not checked, only refused (levels checked)\n");
}

/* The fixed-order products of attention: right (vs double) with B in two segments, and every entry
 * independent of n, m and the other rows — rows and columns computed alone or in any block are the
 * same bits, and a k range padded with zero-weighted rows (a longer key range with masked scores)
 * changes nothing. */
static void test_split_fixed_order(void) {
    const int n = 37, m = 70, k = 300, split = 45, ld = 80;
    float *A = make(n, k, k), *B1 = make(k, ld, ld), *B2 = make(k, ld, ld);
    /* nt: B rows j < split from B1, the rest from B2 (rows of k floats, ld >= k apart: use k) */
    float *Bt1 = make(m, k, k + 3), *Bt2 = make(m, k, k + 3);
    float *C = malloc(sizeof(float) * (size_t)n * m), *C2 = malloc(sizeof(float) * (size_t)n * m);
    pika_sgemm_nt_split(n, m, k, A, k, Bt1, split, Bt2, k + 3, C, m);
    double worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            const float *b = j < split ? Bt1 + (size_t)j * (k + 3) : Bt2 + (size_t)(j - split) * (k + 3);
            double r = 0, sa = 0;
            for (int p = 0; p < k; p++) r += (double)A[(size_t)i * k + p] * b[p], sa += fabs((double)A[(size_t)i * k + p] * b[p]);
            double e = fabs(C[(size_t)i * m + j] - r) / (sa + 1e-30);
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst < 1e-5, "nt split: worst relative error %.3g", worst);
    /* rows 5..8 alone (n = 4 and n = 1), columns 40..69 alone (the split moves to 5) */
    pika_sgemm_nt_split(4, m, k, A + 5 * k, k, Bt1, split, Bt2, k + 3, C2, m);
    CHECK(!memcmp(C2, C + 5 * m, sizeof(float) * 4 * (size_t)m), "nt: rows computed alone differ");
    pika_sgemm_nt_split(1, m, k, A + 9 * k, k, Bt1, split, Bt2, k + 3, C2, m);
    CHECK(!memcmp(C2, C + 9 * m, sizeof(float) * (size_t)m), "nt: one row alone differs");
    pika_sgemm_nt_split(n, 30, k, A, k, Bt1 + (size_t)40 * (k + 3), 5, Bt2, k + 3, C2, 30);
    int bad = 0;
    for (int i = 0; i < n; i++) bad += memcmp(C2 + (size_t)i * 30, C + (size_t)i * m + 40, sizeof(float) * 30) != 0;
    CHECK(bad == 0, "nt: columns computed alone differ in %d rows", bad);
    /* nn: C[n, ld] = A[n, k] · B, B's k rows p < split from B1, the rest from B2 */
    float *D = malloc(sizeof(float) * (size_t)n * ld), *D2 = malloc(sizeof(float) * (size_t)n * ld);
    pika_sgemm_nn_split(n, ld, k, A, k, B1, split, B2, ld, D, ld);
    worst = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ld; j++) {
            double r = 0, sa = 0;
            for (int p = 0; p < k; p++) {
                double b = p < split ? B1[(size_t)p * ld + j] : B2[(size_t)(p - split) * ld + j];
                r += (double)A[(size_t)i * k + p] * b, sa += fabs((double)A[(size_t)i * k + p] * b);
            }
            double e = fabs(D[(size_t)i * ld + j] - r) / (sa + 1e-30);
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst < 1e-5, "nn split: worst relative error %.3g", worst);
    pika_sgemm_nn_split(3, ld, k, A + 20 * k, k, B1, split, B2, ld, D2, ld);
    CHECK(!memcmp(D2, D + 20 * ld, sizeof(float) * 3 * (size_t)ld), "nn: rows computed alone differ");
    /* zero weights past k (a longer key range, masked): the same bits */
    const int k2 = k + 200;
    float *Az = calloc((size_t)n * k2, sizeof(float)), *B2z = make(k2, ld, ld);
    for (int i = 0; i < n; i++) memcpy(Az + (size_t)i * k2, A + (size_t)i * k, sizeof(float) * (size_t)k);
    for (int p = 0; p < k - split; p++) memcpy(B2z + (size_t)p * ld, B2 + (size_t)p * ld, sizeof(float) * (size_t)ld);
    pika_sgemm_nn_split(n, ld, k2, Az, k2, B1, split, B2z, ld, D2, ld);
    CHECK(!memcmp(D2, D, sizeof(float) * (size_t)n * ld), "nn: zero-weighted extra rows change the result");
    free(A); free(B1); free(B2); free(Bt1); free(Bt2); free(C); free(C2); free(D); free(D2); free(Az); free(B2z);
}

int main(void) {
    /* every kernel this CPU has: AVX-512, AVX2 (forced with the SIMD level), then the default */
    static const int LEVELS[] = {PIKA_SIMD_AVX512, PIKA_SIMD_AVX2};
    pika_sgemm_use_avx2_kernel(1);
    for (int l = 0; l < 2; l++) {
        if (pika_simd_override(LEVELS[l]) != 0) {
            printf("note: the %s level is not available on this CPU: its kernel is not checked\n", pika_simd_name(LEVELS[l]));
            continue;
        }
        RUN(test_edge_sizes);
        RUN(test_block_edges);
        RUN(test_real_shapes);
        RUN(test_concurrent);
        RUN(test_typed);
        RUN(test_typed_q8);
        RUN(test_split_fixed_order);
        pika_simd_override(-1);
    }
    pika_sgemm_use_avx2_kernel(0);
    RUN(test_degenerate);
    RUN(test_edge_sizes);
    RUN(test_block_edges);
    RUN(test_real_shapes);
    RUN(test_concurrent);
    RUN(test_typed);
    RUN(test_typed_bf16);
    RUN(test_split_fixed_order);
    if (pika_simd_override(PIKA_SIMD_SCALAR) == 0) {
        RUN(test_split_fixed_order);
        pika_simd_override(-1);
    }
    return test_summary("gemm");
}
