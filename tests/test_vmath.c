/* test_vmath.c — the forward pass's vector math (src/engine/vmath.c): exp accuracy against libm's
 * double exp, and bit-identity of every SIMD path (AVX-512, AVX2, scalar) with the scalar formula at
 * every position of a row (vector lanes and tails alike) — what keeps batched decode bit-identical to
 * single decode. */
#include <stdint.h>

#include "engine/vmath.h"
#include "pika/util.h"
#include "test.h"

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static float frand(float lo, float hi) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((double)(rs >> 40) / (double)(1ull << 24));
}

static void test_exp_accuracy(void) {
    double worst = 0;
    float at = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double want = exp((double)x), got = pika_vm_expf(x);
        double e = fabs(got - want) / want;
        if (e > worst) worst = e, at = x;
    }
    CHECK(worst < 5e-7, "exp relative error %.3g at x = %g", worst, (double)at);
    /* clamped outside [-87, 88]: finite, positive, monotone at the ends */
    CHECK(pika_vm_expf(-1000.0f) > 0 && pika_vm_expf(-1000.0f) == pika_vm_expf(-87.0f), "low clamp");
    CHECK(isfinite(pika_vm_expf(1000.0f)) && pika_vm_expf(1000.0f) == pika_vm_expf(88.0f), "high clamp");
    CHECK(pika_vm_expf(0.0f) == 1.0f, "exp(0) = %g", (double)pika_vm_expf(0.0f));
}

/* Every level this CPU has gives, for every n and offset, exactly the scalar formula. */
static void test_paths_bit_identical(void) {
    static const int levels[] = {PIKA_SIMD_AVX512, PIKA_SIMD_AVX2, PIKA_SIMD_SCALAR};
    enum { N = 77 };
    float g0[N], u[N], s0[N];
    for (int i = 0; i < N; i++) g0[i] = frand(-30, 30), u[i] = frand(-2, 2), s0[i] = frand(-40, 5);
    float sums[3][N + 1];
    int have[3] = {0};
    for (int l = 0; l < 3; l++) {
        if (pika_simd_override(levels[l]) != 0) {
            printf("note: the %s level is not available on this CPU: not checked\n", pika_simd_name(levels[l]));
            continue;
        }
        have[l] = 1;
        for (int n = 0; n <= N; n++) {
            float g[N], s[N];
            memcpy(g, g0, sizeof g);
            memcpy(s, s0, sizeof s);
            pika_vm_swiglu(g, u, (size_t)n);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                float want = g0[i] / (1.0f + pika_vm_expf(-g0[i])) * u[i];
                bad += memcmp(&g[i], &want, sizeof want) != 0;
            }
            for (int i = n; i < N; i++) bad += g[i] != g0[i]; /* past n: untouched */
            CHECK(bad == 0, "%s swiglu n=%d: %d elements differ from the scalar formula", pika_simd_name(levels[l]), n, bad);
            float mx = pika_vm_max(s, n);
            sums[l][n] = pika_vm_exp_shift_sum(s, n, mx);
            bad = 0;
            double ref = 0;
            for (int i = 0; i < n; i++) {
                float want = pika_vm_expf(s0[i] - mx);
                bad += memcmp(&s[i], &want, sizeof want) != 0;
                ref += want;
            }
            for (int i = n; i < N; i++) bad += s[i] != s0[i];
            CHECK(bad == 0, "%s exp_shift_sum n=%d: %d values differ", pika_simd_name(levels[l]), n, bad);
            CHECK(fabs(sums[l][n] - ref) <= 1e-6 * (ref + 1e-30), "%s sum n=%d: %g vs %g", pika_simd_name(levels[l]), n,
                  (double)sums[l][n], ref);
        }
        pika_simd_override(-1);
    }
    /* the sums use one order on every path */
    for (int l = 1; l < 3; l++)
        for (int n = 0; n <= N; n++)
            if (have[0] && have[l])
                CHECK(memcmp(&sums[0][n], &sums[l][n], sizeof(float)) == 0, "sum n=%d differs between %s and %s", n,
                      pika_simd_name(levels[0]), pika_simd_name(levels[l]));
}

int main(void) {
    RUN(test_exp_accuracy);
    RUN(test_paths_bit_identical);
    return test_summary("vmath");
}
