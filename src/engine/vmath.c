/* vmath.c — owns the forward pass's elementwise math (vmath.h): exp, SwiGLU, softmax pieces, in
 * AVX-512, AVX2 and scalar forms that compute the same IEEE operations in the same order per
 * element (so results never depend on the path or on where an element falls in a vector).
 *
 * exp(x): x := clamp(x, -87, 88); n := round-to-nearest-even(x · log2 e);
 *         r := x - n·ln2_hi - n·ln2_lo (two fmas); p := degree-5 polynomial (Cephes expf);
 *         e^r := fma(p, r², r) + 1;  exp(x) := e^r · 2^n (n + 127 into the exponent bits).
 */
#include "engine/vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pika/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define VM_X86 1
#include <immintrin.h>
#endif

#define EXP_LO (-87.0f)
#define EXP_HI 88.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO (-2.12194440e-4f)
#define P0 1.9875691500E-4f
#define P1 1.3981999507E-3f
#define P2 8.3334519073E-3f
#define P3 4.1665795894E-2f
#define P4 1.6666665459E-1f
#define P5 5.0000001201E-1f

float pika_vm_expf(float x) {
    x = x < EXP_LO ? EXP_LO : x;
    x = x > EXP_HI ? EXP_HI : x;
    float n = nearbyintf(x * LOG2E);
    float r = fmaf(n, -LN2_HI, x);
    r = fmaf(n, -LN2_LO, r);
    float p = fmaf(P0, r, P1);
    p = fmaf(p, r, P2);
    p = fmaf(p, r, P3);
    p = fmaf(p, r, P4);
    p = fmaf(p, r, P5);
    float e = fmaf(p, r * r, r) + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float s;
    memcpy(&s, &bits, sizeof s);
    return e * s;
}

static inline float silu_mul(float g, float u) { return g / (1.0f + pika_vm_expf(-g)) * u; }

#ifdef VM_X86
#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define T256 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) __m512
exp512(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_LO));
    x = _mm512_min_ps(x, _mm512_set1_ps(EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_HI), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-LN2_LO), r);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(P0), r, _mm512_set1_ps(P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(P5));
    __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(e, _mm512_castsi512_ps(bits));
}

static inline __attribute__((always_inline, target("avx2,fma"))) __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LO));
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_HI), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-LN2_LO), r);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(P0), r, _mm256_set1_ps(P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(P5));
    __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(e, _mm256_castsi256_ps(bits));
}

T512 static void swiglu512(float *g, const float *u, size_t n) {
    size_t i = 0;
    const __m512 one = _mm512_set1_ps(1.0f);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(g + i);
        __m512 d = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x)));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(x, d), _mm512_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = silu_mul(g[i], u[i]);
}

T256 static void swiglu256(float *g, const float *u, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 d = _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x)));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, d), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = silu_mul(g[i], u[i]);
}

/* Sums: 8 float lanes, lane j accumulates elements i ≡ j (mod 8) in order, then lanes are added
 * 0 + 1 + ... + 7 in order: the same on every path (the AVX-512 path folds its 16 lanes to 8 per step). */
T512 static float exp_shift_sum512(float *s, int n, float mx) {
    __m256 acc = _mm256_setzero_ps();
    const __m512 m = _mm512_set1_ps(mx);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + i), m));
        _mm512_storeu_ps(s + i, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    if (i < n) { /* masked tail: the lanes and order of the scalar tail, zeros added elsewhere (x + 0 = x) */
        __mmask16 mk = (__mmask16)((1u << (n - i)) - 1u);
        __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + i), m)));
        _mm512_mask_storeu_ps(s + i, mk, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        if (n - i > 8) acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
    }
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += lane[j];
    return sum;
}

T256 static float exp_shift_sum256(float *s, int n, float mx) {
    __m256 acc = _mm256_setzero_ps();
    const __m256 m = _mm256_set1_ps(mx);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), m));
        __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i + 8), m));
        _mm256_storeu_ps(s + i, e0);
        _mm256_storeu_ps(s + i + 8, e1);
        acc = _mm256_add_ps(acc, e0);
        acc = _mm256_add_ps(acc, e1);
    }
    float lane[8];
    _mm256_storeu_ps(lane, acc);
    for (; i < n; i++) {
        s[i] = pika_vm_expf(s[i] - mx);
        lane[i & 7] += s[i];
    }
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += lane[j];
    return sum;
}
#endif

void pika_vm_swiglu(float *g, const float *u, size_t n) {
#ifdef VM_X86
    int lv = pika_simd_level();
    if (lv >= PIKA_SIMD_AVX512) { swiglu512(g, u, n); return; }
    if (lv >= PIKA_SIMD_AVX2) { swiglu256(g, u, n); return; }
#endif
    for (size_t i = 0; i < n; i++) g[i] = silu_mul(g[i], u[i]);
}

float pika_vm_exp_shift_sum(float *s, int n, float mx) {
#ifdef VM_X86
    int lv = pika_simd_level();
    if (lv >= PIKA_SIMD_AVX512) return exp_shift_sum512(s, n, mx);
    if (lv >= PIKA_SIMD_AVX2) return exp_shift_sum256(s, n, mx);
#endif
    /* the same lanes and order as the vector paths: blocks of 16 fold into 8 lanes */
    float lane[8] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        float e[16];
        for (int j = 0; j < 16; j++) s[i + j] = e[j] = pika_vm_expf(s[i + j] - mx);
        for (int j = 0; j < 8; j++) lane[j] = (lane[j] + e[j]) + e[8 + j];
    }
    for (; i < n; i++) {
        s[i] = pika_vm_expf(s[i] - mx);
        lane[i & 7] += s[i];
    }
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += lane[j];
    return sum;
}

void pika_vm_scale(float *s, int n, float f) {
    for (int i = 0; i < n; i++) s[i] *= f;
}

float pika_vm_max(const float *s, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = s[i] > mx ? s[i] : mx;
    return mx;
}

void pika_vm_softmax(float *s, int n) {
    float sum = pika_vm_exp_shift_sum(s, n, pika_vm_max(s, n));
    pika_vm_scale(s, n, 1.0f / sum);
}
