/* test_cpu.c — the one CPU-feature check (pika_simd_* in util.h, used by quant.c, gemm.c, model.c),
 * the PIKA_SIMD environment cap, and that building a context / running a forward pass leaves the
 * process-wide OpenBLAS thread count as the caller set it. */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pika/gemm.h"
#include "pika/gguf_write.h"
#include "pika/model.h"
#include "pika/quant.h"
#include "pika/util.h"
#include "test.h"
#include "tiny_model.h"

static void test_simd_levels(void) {
    CHECK(pika_simd_parse("avx512") == PIKA_SIMD_AVX512 && pika_simd_parse("avx2") == PIKA_SIMD_AVX2 &&
              pika_simd_parse("scalar") == PIKA_SIMD_SCALAR && pika_simd_parse("auto") == -1 && pika_simd_parse(NULL) == -1 &&
              pika_simd_parse("neon") == -2, "parse");
    int det = pika_simd_detected();
    printf("detected SIMD level: %s\n", pika_simd_name(det));
    CHECK(pika_simd_level() == det, "no override: level = detected");
    CHECK(!strcmp(pika_simd_path(), pika_simd_name(det)), "quant reports the same level: %s", pika_simd_path());
    CHECK(pika_sgemm_nt_avx512() == (det == PIKA_SIMD_AVX512), "gemm follows the same check");
    CHECK(pika_simd_override(PIKA_SIMD_SCALAR) == 0 && pika_simd_level() == PIKA_SIMD_SCALAR, "override scalar");
    CHECK(!strcmp(pika_simd_path(), "scalar") && !pika_sgemm_nt_avx512(), "quant and gemm both scalar");
    CHECK(pika_simd_override(-1) == 0 && pika_simd_level() == det, "cleared");
    if (det < PIKA_SIMD_AVX512) CHECK(pika_simd_override(PIKA_SIMD_AVX512) == -1, "above the CPU is an error");
    CHECK(pika_simd_override(7) == -1, "unknown level");
}

/* PIKA_SIMD is read once per process: check it in a child that sets it before anything asks. */
static int child_level(const char *env) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("PIKA_SIMD", env, 1);
        int lv = pika_simd_level();
        int ok = !strcmp(pika_simd_path(), pika_simd_name(lv)) && pika_sgemm_nt_avx512() == (lv == PIKA_SIMD_AVX512);
        _exit(ok ? 10 + lv : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) - 10 : -99;
}

/* Runs first: the parent has not detected yet, so each child detects on its own. */
static void test_simd_env(void) {
    int det = child_level("auto");
    CHECK(child_level("scalar") == PIKA_SIMD_SCALAR, "PIKA_SIMD=scalar");
    CHECK(child_level("avx2") == (det < PIKA_SIMD_AVX2 ? det : PIKA_SIMD_AVX2), "PIKA_SIMD=avx2");
    CHECK(child_level("avx512") == det, "PIKA_SIMD=avx512 (never above the CPU)");
    CHECK(child_level("bogus") == det, "unknown value = auto");
}

static void test_no_blas_side_effect(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/tiny.gguf", test_tmpdir());
    write_tiny(p);
    pika_model *m = pika_model_load(p);
    REQUIRE(m, "%s", pika_last_error());
    openblas_set_num_threads(3);
    int before = openblas_get_num_threads();
    if (before != 3) { pika_model_free(m); SKIP_TEST("*** OpenBLAS here cannot run 3 threads (%d) ***", before); }
    pika_ctx *c = pika_ctx_new(m, 2);
    CHECK(openblas_get_num_threads() == 3, "pika_ctx_new changed the OpenBLAS thread count to %d", openblas_get_num_threads());
    int32_t ids[6] = {1, 5, 9, 3, 17, 2};
    REQUIRE(pika_forward(c, ids, 6, NULL) == 0, "%s", pika_last_error());
    CHECK(openblas_get_num_threads() == 3, "pika_forward left the OpenBLAS thread count at %d", openblas_get_num_threads());
    pika_ctx_free(c);
    pika_model_free(m);
}

/* Several threads running forward passes at once (as pika serve's reader contexts do) give the same
 * logits as one thread alone, and leave OpenBLAS's thread count as the caller set it. Before the forward
 * calls shared a counted guard, two of them could set OpenBLAS's thread count at the same time. */
typedef struct {
    pika_model *m;
    const float *want; /* [V] */
    int V, ok;
} fwd_job;

static void *fwd_worker(void *arg) {
    fwd_job *j = arg;
    pika_ctx *c = pika_ctx_new(j->m, 1);
    float *lg = malloc(sizeof(float) * (size_t)j->V);
    int32_t ids[6] = {1, 5, 9, 3, 17, 2};
    pika_forward_req req = {-1, NULL, -1, NULL, NULL, lg};
    j->ok = c && lg;
    for (int it = 0; it < 50 && j->ok; it++) {
        pika_ctx_reset(c);
        j->ok = pika_forward(c, ids, 6, &req) == 0 && !memcmp(lg, j->want, sizeof(float) * (size_t)j->V);
    }
    free(lg);
    pika_ctx_free(c);
    return NULL;
}

static void test_concurrent_forwards(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/tiny2.gguf", test_tmpdir());
    write_tiny(p);
    pika_model *m = pika_model_load(p);
    REQUIRE(m, "%s", pika_last_error());
    openblas_set_num_threads(2);
    int before = openblas_get_num_threads();
    int V = pika_model_hparams(m)->n_vocab;
    float *want = malloc(sizeof(float) * (size_t)V);
    pika_ctx *c = pika_ctx_new(m, 1);
    int32_t ids[6] = {1, 5, 9, 3, 17, 2};
    pika_forward_req req = {-1, NULL, -1, NULL, NULL, want};
    REQUIRE(pika_forward(c, ids, 6, &req) == 0, "%s", pika_last_error());
    pika_ctx_free(c);
    fwd_job jobs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        jobs[i] = (fwd_job){m, want, V, 0};
        pthread_create(&th[i], NULL, fwd_worker, &jobs[i]);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) CHECK(jobs[i].ok, "thread %d: concurrent forward differs from the single-thread logits", i);
    CHECK(openblas_get_num_threads() == before, "OpenBLAS thread count %d after concurrent forwards (was %d)",
          openblas_get_num_threads(), before);
    free(want);
    pika_model_free(m);
}

int main(void) {
    RUN(test_simd_env);
    RUN(test_simd_levels);
    RUN(test_no_blas_side_effect);
    RUN(test_concurrent_forwards);
    return test_summary("cpu");
}
