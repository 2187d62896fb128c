/* quant.c — owns the ggml tensor types: block layouts and sizes, dequantization (fast path with
 * AVX2/AVX-512 kernels chosen at run time, a portable scalar path, and an independent scalar
 * reference), quantization (ggml's reference algorithms), dot products and the decode matvec.
 *
 * Layouts (ggml-common.h; all little-endian, fp16 = IEEE half):
 *   Q4_0  32 elems, 18 B: d(f16) qs[16]            x = (nibble - 8) * d; elem j<16 low nibble of qs[j], j>=16 high
 *   Q4_1  32 elems, 20 B: d m(f16) qs[16]          x = nibble * d + m
 *   Q5_0  32 elems, 22 B: d qh[4] qs[16]           5th bit of elem j = bit j of qh; x = (q - 16) * d
 *   Q5_1  32 elems, 24 B: d m qh[4] qs[16]         x = q * d + m
 *   Q8_0  32 elems, 34 B: d qs[32] (int8)          x = q * d
 *   Q4_K 256 elems, 144 B: d dmin scales[12] qs[128]       8 sub-blocks of 32 with 6-bit scale/min
 *   Q5_K 256 elems, 176 B: d dmin scales[12] qh[32] qs[128]
 *   Q6_K 256 elems, 210 B: ql[128] qh[64] scales[16](int8) d   16 sub-blocks of 16
 * The fast and reference dequantizers perform the same float operations in the same order
 * (e.g. Q4_K: (d*sc)*q - (dmin*m), no FMA), so their outputs are bit-identical (and equal to
 * ggml's dequantize_row_*; tests check llama.cpp's own output). Dot products are F32 sums of
 * weight*x computed from the same values in a different order (K-quants factor the scales out:
 * sum_s d*sc_s*sum(q*x) - dmin*m_s*sum(x)).
 *
 * Quantizers follow ggml's reference code (quantize_row_*_ref): round-to-nearest for the 32-blocks,
 * make_qkx2_quants scale/min search for Q4_K/Q5_K, make_qx_quants (rmse_type 1) for Q6_K; no
 * importance matrix. Requantizing llama.cpp's Q8_0/Q4_K blocks reproduces them (tests).
 *
 * Paths: PATH_AVX512 (F+BW+VL+DQ), PATH_AVX2 (AVX2+FMA+F16C), PATH_SCALAR, chosen once with
 * pika_simd_level() in core/util.c (the one CPU check; PIKA_SIMD=avx512|avx2|scalar caps it); the SIMD
 * functions carry target attributes, so no -march is needed. Built as ISO C11, which implies
 * -ffp-contract=off: the scalar code must not be contracted into FMAs (tests would catch it).
 */
#include "pika/quant.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/util.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define PIKA_X86 1
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- block structs */

typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K");

/* 8-bit activation block (pika_quantize_act_q8): x ~= d * qs; sd = d * sum(qs); s16 = sums of qs
 * over elements 0-15 and 16-31 (Q6_K's 16-element sub-blocks). */
typedef struct { float d; float sd; int16_t s16[2]; int8_t qs[32]; } blk_q8a;
_Static_assert(sizeof(blk_q8a) == 44, "q8a");

/* ---------------------------------------------------------------- type table */

typedef struct {
    const char *name;
    int blck;     /* elements per block */
    size_t bytes; /* bytes per block */
    int supported;
} type_info;

static const type_info TYPES[PIKA_TYPE_COUNT] = {
    [0] = {"F32", 1, 4, 1},        [1] = {"F16", 1, 2, 1},        [2] = {"Q4_0", 32, 18, 1},
    [3] = {"Q4_1", 32, 20, 1},     [6] = {"Q5_0", 32, 22, 1},     [7] = {"Q5_1", 32, 24, 1},
    [8] = {"Q8_0", 32, 34, 1},     [9] = {"Q8_1", 32, 36, 0},     [10] = {"Q2_K", 256, 84, 0},
    [11] = {"Q3_K", 256, 110, 0},  [12] = {"Q4_K", 256, 144, 1},  [13] = {"Q5_K", 256, 176, 1},
    [14] = {"Q6_K", 256, 210, 1},  [15] = {"Q8_K", 256, 292, 0},  [16] = {"IQ2_XXS", 256, 66, 0},
    [17] = {"IQ2_XS", 256, 74, 0}, [18] = {"IQ3_XXS", 256, 98, 0}, [19] = {"IQ1_S", 256, 50, 0},
    [20] = {"IQ4_NL", 32, 18, 0},  [21] = {"IQ3_S", 256, 110, 0}, [22] = {"IQ2_S", 256, 82, 0},
    [23] = {"IQ4_XS", 256, 136, 0}, [24] = {"I8", 1, 1, 0},       [25] = {"I16", 1, 2, 0},
    [26] = {"I32", 1, 4, 0},       [27] = {"I64", 1, 8, 0},       [28] = {"F64", 1, 8, 0},
    [29] = {"IQ1_M", 256, 56, 0},  [30] = {"BF16", 1, 2, 1},      [34] = {"TQ1_0", 256, 54, 0},
    [35] = {"TQ2_0", 256, 66, 0},  [39] = {"MXFP4", 32, 17, 0},
};

const char *pika_type_name(uint32_t type) {
    return type < PIKA_TYPE_COUNT && TYPES[type].name ? TYPES[type].name : "unknown";
}
int pika_type_block_elems(uint32_t type) { return type < PIKA_TYPE_COUNT ? TYPES[type].blck : 0; }
size_t pika_type_block_bytes(uint32_t type) { return type < PIKA_TYPE_COUNT ? TYPES[type].bytes : 0; }
int pika_type_supported(uint32_t type) { return type < PIKA_TYPE_COUNT && TYPES[type].supported; }
size_t pika_row_bytes(uint32_t type, int64_t n) {
    if (type >= PIKA_TYPE_COUNT || !TYPES[type].blck || n <= 0) return 0;
    return (size_t)(n / TYPES[type].blck) * TYPES[type].bytes;
}

/* ---------------------------------------------------------------- run-time path selection */

/* the one CPU-feature check lives in core/util.c (pika_simd_*) */
enum { PATH_SCALAR = PIKA_SIMD_SCALAR, PATH_AVX2 = PIKA_SIMD_AVX2, PATH_AVX512 = PIKA_SIMD_AVX512 };

static int cur_path(void) { return pika_simd_level(); }

void pika_simd_force_scalar(int on) { pika_simd_override(on ? PIKA_SIMD_SCALAR : -1); }

int pika_simd_set_path(const char *name) {
    int p = pika_simd_parse(name);
    if (p == -2) return pika_set_error("unknown SIMD path '%s' (avx512, avx2, scalar, auto)", name);
    if (p > pika_simd_detected()) return pika_set_error("this CPU cannot run the %s path", name);
    return pika_simd_override(p);
}

const char *pika_simd_path(void) { return pika_simd_name(cur_path()); }

/* fp16 -> fp32 by bits: exact (subnormals, inf, nan payloads). Fills the table below. */
static float f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, em = h & 0x7fffu, bits;
    float f;
    if (em >= 0x400 && em < 0x7c00) {
        bits = sign | ((em << 13) + 0x38000000u); /* rebias exponent 15 -> 127 */
    } else if (em >= 0x7c00) {
        bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13); /* inf / nan (payload kept) */
    } else {
        f = (float)em * 5.9604644775390625e-8f; /* subnormal or zero: em * 2^-24, exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    memcpy(&f, &bits, 4);
    return f;
}

/* All 65536 halves as floats (256 KB, like ggml's table): block scales are converted with one
 * load instead of a conversion + shuffle. Filled before main() runs. */
static float g_f16_table[65536];
__attribute__((constructor)) static void init_f16_table(void) {
    for (uint32_t i = 0; i < 65536; i++) g_f16_table[i] = f16_bits_to_f32((uint16_t)i);
}
static inline float h2f(uint16_t h) { return g_f16_table[h]; }

/* ================================================================ reference dequantization
 * Written element by element straight from the layout descriptions above, independently of the
 * block loops below. Slow; tests use it as the oracle. */

static float rd_f16(const uint8_t *p) { return pika_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8))); }

/* Scale and min of sub-block k (0..7) of Q4_K/Q5_K from the 12 packed bytes s:
 * bytes 0-3: bits 0-5 = scale k (k<4), bits 6-7 = bits 4-5 of scale k+4;
 * bytes 4-7: bits 0-5 = min k (k<4), bits 6-7 = bits 4-5 of min k+4;
 * bytes 8-11: low nibble = bits 0-3 of scale k+4, high nibble = bits 0-3 of min k+4. */
static void ref_k_scale(const uint8_t *s, int k, int *sc, int *mn) {
    if (k < 4) {
        *sc = s[k] % 64;
        *mn = s[4 + k] % 64;
    } else {
        int i = k - 4;
        *sc = s[8 + i] % 16 + 16 * (s[i] / 64);
        *mn = s[8 + i] / 16 + 16 * (s[4 + i] / 64);
    }
}

/* Element e of the block starting at b. */
static float ref_elem(uint32_t type, const uint8_t *b, int e) {
    switch (type) {
    case PIKA_TYPE_F32: { float f; memcpy(&f, b, 4); return f; }
    case PIKA_TYPE_F16: return rd_f16(b);
    case PIKA_TYPE_BF16: return pika_bf16_to_fp32((uint16_t)(b[0] | (b[1] << 8)));
    case PIKA_TYPE_Q4_0: {
        int byte = b[2 + e % 16], q = e < 16 ? byte % 16 : byte / 16;
        return (float)(q - 8) * rd_f16(b);
    }
    case PIKA_TYPE_Q4_1: {
        int byte = b[4 + e % 16], q = e < 16 ? byte % 16 : byte / 16;
        return (float)q * rd_f16(b) + rd_f16(b + 2);
    }
    case PIKA_TYPE_Q5_0: {
        uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
        int byte = b[6 + e % 16], q = (e < 16 ? byte % 16 : byte / 16) + 16 * (int)((qh >> e) & 1);
        return (float)(q - 16) * rd_f16(b);
    }
    case PIKA_TYPE_Q5_1: {
        uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        int byte = b[8 + e % 16], q = (e < 16 ? byte % 16 : byte / 16) + 16 * (int)((qh >> e) & 1);
        return (float)q * rd_f16(b) + rd_f16(b + 2);
    }
    case PIKA_TYPE_Q8_0: return (float)(int8_t)b[2 + e] * rd_f16(b);
    case PIKA_TYPE_Q4_K:
    case PIKA_TYPE_Q5_K: {
        /* 4 chunks of 64: elems 0-31 of a chunk are the low nibbles of its 32 qs bytes, 32-63 the high. */
        int chunk = e / 64, r = e % 64, sub = e / 32, sc, mn;
        ref_k_scale(b + 4, sub, &sc, &mn);
        const uint8_t *qs = b + (type == PIKA_TYPE_Q4_K ? 16 : 48);
        int byte = qs[32 * chunk + r % 32], q = r < 32 ? byte % 16 : byte / 16;
        if (type == PIKA_TYPE_Q5_K) q += 16 * ((b[16 + r % 32] >> sub) & 1); /* qh bit `sub` */
        float d1 = rd_f16(b) * (float)sc, m1 = rd_f16(b + 2) * (float)mn;
        return d1 * (float)q - m1;
    }
    case PIKA_TYPE_Q6_K: {
        /* 2 halves of 128; in a half, group g (0..3) of 32: g0 = low nibble of ql[l], g1 = low of
         * ql[l+32], g2 = high of ql[l], g3 = high of ql[l+32]; 2 high bits from qh[l] bits 2g..2g+1. */
        int half = e / 128, r = e % 128, g = r / 32, l = r % 32;
        const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
        int byte = ql[l + (g % 2) * 32], lo = g < 2 ? byte % 16 : byte / 16;
        int hi = (qh[l] >> (2 * g)) & 3, q = lo + 16 * hi - 32;
        int sc = (int8_t)b[192 + 8 * half + l / 16 + 2 * g];
        float d = rd_f16(b + 208);
        return d * (float)sc * (float)q;
    }
    default: return 0.0f;
    }
}

void pika_dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n) {
    if (n <= 0) return;
    if (!pika_type_supported(type)) { memset(dst, 0, (size_t)n * sizeof(float)); return; }
    int bl = TYPES[type].blck;
    size_t bb = TYPES[type].bytes;
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ref_elem(type, p + (size_t)(i / bl) * bb, (int)(i % bl));
}

/* ================================================================ portable block dequantizers */

static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void dq_q4_0(const blk_q4_0 *b, float *y) {
    float d = h2f(b->d);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b->qs[j] & 0xF) - 8) * d;
        y[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
    }
}
static void dq_q4_1(const blk_q4_1 *b, float *y) {
    float d = h2f(b->d), m = h2f(b->m);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b->qs[j] & 0xF) * d + m;
        y[j + 16] = (float)(b->qs[j] >> 4) * d + m;
    }
}
static void dq_q5_0(const blk_q5_0 *b, float *y) {
    float d = h2f(b->d);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)(((b->qs[j] & 0xF) | h0) - 16) * d;
        y[j + 16] = (float)(((b->qs[j] >> 4) | h1) - 16) * d;
    }
}
static void dq_q5_1(const blk_q5_1 *b, float *y) {
    float d = h2f(b->d), m = h2f(b->m);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < 16; j++) {
        int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (float)((b->qs[j] & 0xF) | h0) * d + m;
        y[j + 16] = (float)((b->qs[j] >> 4) | h1) * d + m;
    }
}
static void dq_q8_0(const blk_q8_0 *b, float *y) {
    float d = h2f(b->d);
    for (int j = 0; j < 32; j++) y[j] = (float)b->qs[j] * d;
}
static void dq_q4_K(const blk_q4_K *b, float *y) {
    float d = h2f(b->d), dmin = h2f(b->dmin);
    const uint8_t *q = b->qs;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, q += 32) {
        uint8_t sc, m;
        get_scale_min_k4(is, b->scales, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        get_scale_min_k4(is + 1, b->scales, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
    }
}
static void dq_q5_K(const blk_q5_K *b, float *y) {
    float d = h2f(b->d), dmin = h2f(b->dmin);
    const uint8_t *ql = b->qs;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        uint8_t sc, m;
        get_scale_min_k4(is, b->scales, &sc, &m);
        float d1 = d * sc, m1 = dmin * m;
        get_scale_min_k4(is + 1, b->scales, &sc, &m);
        float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) y[j + l] = d1 * (float)((ql[l] & 0xF) + (b->qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) y[j + 32 + l] = d2 * (float)((ql[l] >> 4) + (b->qh[l] & u2 ? 16 : 0)) - m2;
    }
}
static void dq_q6_K(const blk_q6_K *b, float *y) {
    float d = h2f(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * (float)q1;
            y[l + 32] = d * sc[is + 2] * (float)q2;
            y[l + 64] = d * sc[is + 4] * (float)q3;
            y[l + 96] = d * sc[is + 6] * (float)q4;
        }
    }
}

/* Dequantize nb blocks (portable). */
static void dequant_scalar(uint32_t type, const void *src, float *y, int64_t n) {
    int64_t nb = n / TYPES[type].blck;
    switch (type) {
    case PIKA_TYPE_F32: memcpy(y, src, (size_t)n * 4); break;
    case PIKA_TYPE_F16: { const uint16_t *s = src; for (int64_t i = 0; i < n; i++) y[i] = h2f(s[i]); } break;
    case PIKA_TYPE_BF16: { const uint16_t *s = src; for (int64_t i = 0; i < n; i++) y[i] = pika_bf16_to_fp32(s[i]); } break;
    case PIKA_TYPE_Q4_0: for (int64_t i = 0; i < nb; i++) dq_q4_0((const blk_q4_0 *)src + i, y + 32 * i); break;
    case PIKA_TYPE_Q4_1: for (int64_t i = 0; i < nb; i++) dq_q4_1((const blk_q4_1 *)src + i, y + 32 * i); break;
    case PIKA_TYPE_Q5_0: for (int64_t i = 0; i < nb; i++) dq_q5_0((const blk_q5_0 *)src + i, y + 32 * i); break;
    case PIKA_TYPE_Q5_1: for (int64_t i = 0; i < nb; i++) dq_q5_1((const blk_q5_1 *)src + i, y + 32 * i); break;
    case PIKA_TYPE_Q8_0: for (int64_t i = 0; i < nb; i++) dq_q8_0((const blk_q8_0 *)src + i, y + 32 * i); break;
    case PIKA_TYPE_Q4_K: for (int64_t i = 0; i < nb; i++) dq_q4_K((const blk_q4_K *)src + i, y + 256 * i); break;
    case PIKA_TYPE_Q5_K: for (int64_t i = 0; i < nb; i++) dq_q5_K((const blk_q5_K *)src + i, y + 256 * i); break;
    case PIKA_TYPE_Q6_K: for (int64_t i = 0; i < nb; i++) dq_q6_K((const blk_q6_K *)src + i, y + 256 * i); break;
    default: memset(y, 0, (size_t)n * sizeof(float)); break;
    }
}

/* Portable dot: dequantize 256-element chunks into a stack buffer, then multiply-add. */
static float dot_f32_scalar(const float *a, const float *x, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * x[i];
        s1 += a[i + 1] * x[i + 1];
        s2 += a[i + 2] * x[i + 2];
        s3 += a[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

static float vec_dot_scalar(uint32_t type, const void *row, const float *x, int64_t n) {
    if (type == PIKA_TYPE_F32) return dot_f32_scalar(row, x, n);
    float buf[256];
    int64_t chunk = 256; /* multiple of every block size */
    size_t cb = pika_row_bytes(type, chunk);
    const uint8_t *p = row;
    float s = 0;
    for (int64_t i = 0; i < n; i += chunk, p += cb) {
        int64_t m = n - i < chunk ? n - i : chunk;
        dequant_scalar(type, p, buf, m);
        s += dot_f32_scalar(buf, x + i, m);
    }
    return s;
}

#ifdef PIKA_X86
/* ================================================================ AVX2 + FMA + F16C */
#define T256 __attribute__((target("avx2,fma,f16c")))

static inline T256 float hsum256(__m256 v) {
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
static inline T256 float f16_avx2(uint16_t h) { return g_f16_table[h]; }
static inline T256 __m256i u8x8i(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline T256 __m256i i8x8i(const int8_t *p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)); }

/* Q6_K levels (q - 32, int8) of 16 consecutive l in one half: out[g] = group g (elements l,
 * l+32, l+64, l+96), computed with 16-byte ops (cheaper than 32-bit lanes). */
static inline T256 void q6_levels16(const uint8_t *ql, const uint8_t *qh, __m128i out[4]) {
    const __m128i a = _mm_loadu_si128((const __m128i *)ql), c = _mm_loadu_si128((const __m128i *)(ql + 32));
    const __m128i h = _mm_loadu_si128((const __m128i *)qh);
    const __m128i m0f = _mm_set1_epi8(0x0F), m30 = _mm_set1_epi8(0x30), o32 = _mm_set1_epi8(32);
    out[0] = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(a, m0f), _mm_and_si128(_mm_slli_epi16(h, 4), m30)), o32);
    out[1] = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(c, m0f), _mm_and_si128(_mm_slli_epi16(h, 2), m30)), o32);
    out[2] = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), m0f), _mm_and_si128(h, m30)), o32);
    out[3] = _mm_sub_epi8(_mm_or_si128(_mm_and_si128(_mm_srli_epi16(c, 4), m0f), _mm_and_si128(_mm_srli_epi16(h, 2), m30)), o32);
}

/* All 8 scales and mins of a Q4_K/Q5_K block at once: dsc[k] = d * sc_k, dmn[k] = dmin * m_k
 * (the same float products as the scalar code), via 32-bit word masks instead of 8 calls of
 * get_scale_min_k4. Returns dmn as a vector too. */
static inline T256 __m256 k_scales8(const uint8_t *scales, float d, float dmin, float *dsc, float *dmn) {
    uint32_t u[3], w[4];
    memcpy(u, scales, 12);
    w[0] = u[0] & 0x3f3f3f3fu;                                                  /* sc 0-3 */
    w[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);           /* sc 4-7 */
    w[2] = u[1] & 0x3f3f3f3fu;                                                  /* m 0-3 */
    w[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);    /* m 4-7 */
    __m128i v = _mm_loadu_si128((const __m128i *)w);
    __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    __m256 mn = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
    __m256 dm = _mm256_mul_ps(_mm256_set1_ps(dmin), mn);
    _mm256_storeu_ps(dsc, _mm256_mul_ps(_mm256_set1_ps(d), sc));
    _mm256_storeu_ps(dmn, dm);
    return dm;
}

/* d * scale for the 16 int8 sub-block scales of a Q6_K block (same products as the scalar code). */
static inline T256 void q6_scales16(const int8_t *sc, float d, float *out) {
    __m128i v = _mm_loadu_si128((const __m128i *)sc);
    __m256 dv = _mm256_set1_ps(d);
    _mm256_storeu_ps(out, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8)))));
}

/* 32-element blocks into 4 vectors of 8 (elements 0-7, 8-15, 16-23, 24-31), with the same float
 * operations as the scalar code so results are bit-identical. */
static inline T256 void dq8_q4_0(const blk_q4_0 *b, __m256 v[4]) {
    const __m256 d = _mm256_set1_ps(f16_avx2(b->d));
    const __m256i m4 = _mm256_set1_epi32(0xF), o8 = _mm256_set1_epi32(8);
    for (int k = 0; k < 2; k++) {
        __m256i q = u8x8i(b->qs + 8 * k);
        v[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(q, m4), o8)), d);
        v[k + 2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(q, 4), o8)), d);
    }
}
static inline T256 void dq8_q4_1(const blk_q4_1 *b, __m256 v[4]) {
    const __m256 d = _mm256_set1_ps(f16_avx2(b->d)), m = _mm256_set1_ps(f16_avx2(b->m));
    const __m256i m4 = _mm256_set1_epi32(0xF);
    for (int k = 0; k < 2; k++) {
        __m256i q = u8x8i(b->qs + 8 * k);
        v[k] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q, m4)), d), m);
        v[k + 2] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4)), d), m);
    }
}
/* 5th bits of elements base..base+7 from qh, as 0 or 16 */
static inline T256 __m256i qh_bits8(__m256i qhv, int base) {
    const __m256i sh = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i b = _mm256_srlv_epi32(qhv, _mm256_add_epi32(sh, _mm256_set1_epi32(base)));
    return _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(1)), 4);
}
static inline T256 void dq8_q5_0(const blk_q5_0 *b, __m256 v[4]) {
    const __m256 d = _mm256_set1_ps(f16_avx2(b->d));
    const __m256i m4 = _mm256_set1_epi32(0xF), o16 = _mm256_set1_epi32(16);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    __m256i qhv = _mm256_set1_epi32((int)qh);
    for (int k = 0; k < 2; k++) {
        __m256i q = u8x8i(b->qs + 8 * k);
        __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), qh_bits8(qhv, 8 * k));
        __m256i hi = _mm256_or_si256(_mm256_srli_epi32(q, 4), qh_bits8(qhv, 8 * k + 16));
        v[k] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(lo, o16)), d);
        v[k + 2] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(hi, o16)), d);
    }
}
static inline T256 void dq8_q5_1(const blk_q5_1 *b, __m256 v[4]) {
    const __m256 d = _mm256_set1_ps(f16_avx2(b->d)), m = _mm256_set1_ps(f16_avx2(b->m));
    const __m256i m4 = _mm256_set1_epi32(0xF);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    __m256i qhv = _mm256_set1_epi32((int)qh);
    for (int k = 0; k < 2; k++) {
        __m256i q = u8x8i(b->qs + 8 * k);
        __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), qh_bits8(qhv, 8 * k));
        __m256i hi = _mm256_or_si256(_mm256_srli_epi32(q, 4), qh_bits8(qhv, 8 * k + 16));
        v[k] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(lo), d), m);
        v[k + 2] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(hi), d), m);
    }
}
/* Q5_K: the 64 elements of chunk j (0..3) into 8 vectors; dsc/dmn from k_scales8. */
static inline T256 void dq8_q5_K(const blk_q5_K *b, const float *dsc, const float *dmn, int j, __m256 v[8]) {
    __m256 d1 = _mm256_set1_ps(dsc[2 * j]), m1 = _mm256_set1_ps(dmn[2 * j]);
    __m256 d2 = _mm256_set1_ps(dsc[2 * j + 1]), m2 = _mm256_set1_ps(dmn[2 * j + 1]);
    const __m256i m4 = _mm256_set1_epi32(0xF), one = _mm256_set1_epi32(1);
    for (int l = 0; l < 32; l += 8) {
        __m256i q = u8x8i(b->qs + 32 * j + l), h = u8x8i(b->qh + l);
        __m256i hlo = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * j), one), 4);
        __m256i hhi = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h, 2 * j + 1), one), 4);
        __m256 lo = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_and_si256(q, m4), hlo));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(q, 4), hhi));
        v[l / 8] = _mm256_sub_ps(_mm256_mul_ps(d1, lo), m1);
        v[4 + l / 8] = _mm256_sub_ps(_mm256_mul_ps(d2, hi), m2);
    }
}

#define DQ8_LOOP(BT, FN)                                                                                \
    for (int64_t i = 0; i < nb; i++) {                                                                  \
        __m256 v_[4];                                                                                   \
        FN((const BT *)src + i, v_);                                                                    \
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(y + 32 * i + 8 * k, v_[k]);                        \
    }
#define DOT8_LOOP(BT, FN)                                                                               \
    do {                                                                                                \
        const BT *b_ = row;                                                                             \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                                      \
        for (int64_t i = 0; i < nb; i++, b_++, x += 32) {                                               \
            __m256 v_[4];                                                                               \
            FN(b_, v_);                                                                                 \
            a0 = _mm256_fmadd_ps(v_[0], _mm256_loadu_ps(x), a0);                                        \
            a1 = _mm256_fmadd_ps(v_[1], _mm256_loadu_ps(x + 8), a1);                                    \
            a0 = _mm256_fmadd_ps(v_[2], _mm256_loadu_ps(x + 16), a0);                                   \
            a1 = _mm256_fmadd_ps(v_[3], _mm256_loadu_ps(x + 24), a1);                                   \
        }                                                                                               \
        return hsum256(_mm256_add_ps(a0, a1));                                                          \
    } while (0)

static T256 void dequant_avx2(uint32_t type, const void *src, float *y, int64_t n) {
    int64_t nb = n / TYPES[type].blck;
    switch (type) {
    case PIKA_TYPE_F16: {
        const uint16_t *s = src;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
        for (; i < n; i++) y[i] = f16_avx2(s[i]);
        return;
    }
    case PIKA_TYPE_BF16: {
        const uint16_t *s = src;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
            _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
        for (; i < n; i++) y[i] = pika_bf16_to_fp32(s[i]);
        return;
    }
    case PIKA_TYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q8_0 *b = (const blk_q8_0 *)src + i;
            __m256 d = _mm256_set1_ps(f16_avx2(b->d));
            for (int k = 0; k < 32; k += 8)
                _mm256_storeu_ps(y + 32 * i + k, _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8i(b->qs + k)), d));
        }
        return;
    case PIKA_TYPE_Q4_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q4_K *b = (const blk_q4_K *)src + i;
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_avx2(b->d), f16_avx2(b->dmin), dsc, dmn);
            float *yb = y + 256 * i;
            const __m256i m4 = _mm256_set1_epi32(0xF);
            for (int j = 0; j < 4; j++) {
                __m256 d1 = _mm256_set1_ps(dsc[2 * j]), m1 = _mm256_set1_ps(dmn[2 * j]);
                __m256 d2 = _mm256_set1_ps(dsc[2 * j + 1]), m2 = _mm256_set1_ps(dmn[2 * j + 1]);
                for (int l = 0; l < 32; l += 8) {
                    __m256i q = u8x8i(b->qs + 32 * j + l);
                    __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(q, m4));
                    __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4));
                    _mm256_storeu_ps(yb + 64 * j + l, _mm256_sub_ps(_mm256_mul_ps(d1, lo), m1));
                    _mm256_storeu_ps(yb + 64 * j + 32 + l, _mm256_sub_ps(_mm256_mul_ps(d2, hi), m2));
                }
            }
        }
        return;
    case PIKA_TYPE_Q6_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q6_K *b = (const blk_q6_K *)src + i;
            float ds16[16];
            q6_scales16(b->scales, f16_avx2(b->d), ds16);
            for (int h = 0; h < 2; h++) {
                const float *dsh = ds16 + 8 * h;
                float *yb = y + 256 * i + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    int is = l / 16;
                    __m128i q[4];
                    q6_levels16(b->ql + 64 * h + l, b->qh + 32 * h + l, q);
                    for (int g = 0; g < 4; g++) {
                        __m256 ds = _mm256_set1_ps(dsh[is + 2 * g]);
                        _mm256_storeu_ps(yb + l + 32 * g, _mm256_mul_ps(ds, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q[g]))));
                        _mm256_storeu_ps(yb + l + 32 * g + 8,
                                         _mm256_mul_ps(ds, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q[g], 8)))));
                    }
                }
            }
        }
        return;
    case PIKA_TYPE_Q4_0: DQ8_LOOP(blk_q4_0, dq8_q4_0); return;
    case PIKA_TYPE_Q4_1: DQ8_LOOP(blk_q4_1, dq8_q4_1); return;
    case PIKA_TYPE_Q5_0: DQ8_LOOP(blk_q5_0, dq8_q5_0); return;
    case PIKA_TYPE_Q5_1: DQ8_LOOP(blk_q5_1, dq8_q5_1); return;
    case PIKA_TYPE_Q5_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q5_K *b = (const blk_q5_K *)src + i;
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_avx2(b->d), f16_avx2(b->dmin), dsc, dmn);
            for (int j = 0; j < 4; j++) {
                __m256 v[8];
                dq8_q5_K(b, dsc, dmn, j, v);
                for (int k = 0; k < 8; k++) _mm256_storeu_ps(y + 256 * i + 64 * j + 8 * k, v[k]);
            }
        }
        return;
    default: dequant_scalar(type, src, y, n); return;
    }
}

static T256 float dot_f32_avx2(const float *a, const float *x, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(x + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(x + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(x + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(x + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * x[i];
    return s;
}

static T256 float vec_dot_avx2(uint32_t type, const void *row, const float *x, int64_t n) {
    int64_t nb = n / TYPES[type].blck;
    switch (type) {
    case PIKA_TYPE_F32: return dot_f32_avx2(row, x, n);
    case PIKA_TYPE_F16: {
        const uint16_t *s = row;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        int64_t i = 0;
        /* 32-byte weight loads split in registers (as the AVX-512 case: fewer loads per cache line) */
        for (; i + 32 <= n; i += 32) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(s + i)), w1 = _mm256_loadu_si256((const __m256i *)(s + i + 16));
            s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(w0)), _mm256_loadu_ps(x + i), s0);
            s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(w0, 1)), _mm256_loadu_ps(x + i + 8), s1);
            s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(w1)), _mm256_loadu_ps(x + i + 16), s2);
            s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(w1, 1)), _mm256_loadu_ps(x + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))), _mm256_loadu_ps(x + i), s0);
        float r = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        for (; i < n; i++) r += f16_avx2(s[i]) * x[i];
        return r;
    }
    case PIKA_TYPE_Q8_0: {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        const blk_q8_0 *b = row;
        for (int64_t i = 0; i < nb; i++, b++, x += 32) {
            __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(i8x8i(b->qs)), _mm256_loadu_ps(x));
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8x8i(b->qs + 8)), _mm256_loadu_ps(x + 8), p);
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8x8i(b->qs + 16)), _mm256_loadu_ps(x + 16), p);
            p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i8x8i(b->qs + 24)), _mm256_loadu_ps(x + 24), p);
            if (i & 1) acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16_avx2(b->d)), p, acc1);
            else acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16_avx2(b->d)), p, acc0);
        }
        return hsum256(_mm256_add_ps(acc0, acc1));
    }
    case PIKA_TYPE_Q4_K: {
        /* sum over sub-blocks s: (d*sc_s) * sum(q*x) - (dmin*m_s) * sum(x) */
        __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi32(0xF);
        const blk_q4_K *b = row;
        for (int64_t i = 0; i < nb; i++, b++, x += 256) {
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_avx2(b->d), f16_avx2(b->dmin), dsc, dmn);
            for (int j = 0; j < 4; j++) {
                const float *xj = x + 64 * j;
                __m256 plo = _mm256_setzero_ps(), phi = _mm256_setzero_ps(), sxlo = _mm256_setzero_ps(), sxhi = _mm256_setzero_ps();
                for (int l = 0; l < 32; l += 8) {
                    __m256i q = u8x8i(b->qs + 32 * j + l);
                    __m256 xa = _mm256_loadu_ps(xj + l), xb = _mm256_loadu_ps(xj + 32 + l);
                    plo = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(q, m4)), xa, plo);
                    phi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(q, 4)), xb, phi);
                    sxlo = _mm256_add_ps(sxlo, xa);
                    sxhi = _mm256_add_ps(sxhi, xb);
                }
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dsc[2 * j]), plo, acc);
                accm = _mm256_fmadd_ps(_mm256_set1_ps(dmn[2 * j]), sxlo, accm);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(dsc[2 * j + 1]), phi, acc);
                accm = _mm256_fmadd_ps(_mm256_set1_ps(dmn[2 * j + 1]), sxhi, accm);
            }
        }
        return hsum256(_mm256_sub_ps(acc, accm));
    }
    case PIKA_TYPE_Q6_K: {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        const blk_q6_K *b = row;
        for (int64_t i = 0; i < nb; i++, b++) {
            float ds16[16];
            q6_scales16(b->scales, f16_avx2(b->d), ds16);
            for (int h = 0; h < 2; h++) {
                const float *dsh = ds16 + 8 * h;
                const float *xh = x + 256 * i + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    int is = l / 16;
                    __m128i q[4];
                    q6_levels16(b->ql + 64 * h + l, b->qh + 32 * h + l, q);
                    for (int g = 0; g < 4; g++) {
                        const float *xg = xh + l + 32 * g;
                        __m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q[g])), _mm256_loadu_ps(xg));
                        p = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q[g], 8))),
                                            _mm256_loadu_ps(xg + 8), p);
                        if (g & 1) acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dsh[is + 2 * g]), p, acc1);
                        else acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dsh[is + 2 * g]), p, acc0);
                    }
                }
            }
        }
        return hsum256(_mm256_add_ps(acc0, acc1));
    }
    case PIKA_TYPE_BF16: {
        const uint16_t *s = row;
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            __m256i v0 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i))), 16);
            __m256i v1 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i + 8))), 16);
            s0 = _mm256_fmadd_ps(_mm256_castsi256_ps(v0), _mm256_loadu_ps(x + i), s0);
            s1 = _mm256_fmadd_ps(_mm256_castsi256_ps(v1), _mm256_loadu_ps(x + i + 8), s1);
        }
        float r = hsum256(_mm256_add_ps(s0, s1));
        for (; i < n; i++) r += pika_bf16_to_fp32(s[i]) * x[i];
        return r;
    }
    case PIKA_TYPE_Q4_0: DOT8_LOOP(blk_q4_0, dq8_q4_0);
    case PIKA_TYPE_Q4_1: DOT8_LOOP(blk_q4_1, dq8_q4_1);
    case PIKA_TYPE_Q5_0: DOT8_LOOP(blk_q5_0, dq8_q5_0);
    case PIKA_TYPE_Q5_1: DOT8_LOOP(blk_q5_1, dq8_q5_1);
    case PIKA_TYPE_Q5_K: {
        const blk_q5_K *b = row;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int64_t i = 0; i < nb; i++, b++, x += 256) {
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_avx2(b->d), f16_avx2(b->dmin), dsc, dmn);
            for (int j = 0; j < 4; j++) {
                __m256 v[8];
                dq8_q5_K(b, dsc, dmn, j, v);
                for (int k = 0; k < 8; k += 2) {
                    a0 = _mm256_fmadd_ps(v[k], _mm256_loadu_ps(x + 64 * j + 8 * k), a0);
                    a1 = _mm256_fmadd_ps(v[k + 1], _mm256_loadu_ps(x + 64 * j + 8 * k + 8), a1);
                }
            }
        }
        return hsum256(_mm256_add_ps(a0, a1));
    }
    default: {
        float buf[256];
        size_t cb = pika_row_bytes(type, 256);
        const uint8_t *p = row;
        float s = 0;
        for (int64_t i = 0; i < n; i += 256, p += cb) {
            int64_t m = n - i < 256 ? n - i : 256;
            dequant_scalar(type, p, buf, m);
            s += dot_f32_avx2(buf, x + i, m);
        }
        return s;
    }
    }
}

/* ================================================================ AVX-512 (F, BW, VL, DQ) */
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))

static inline T512 float hsum512(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 lo = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
static inline T512 float f16_512(uint16_t h) { return g_f16_table[h]; }
static inline T512 __m512i u8x16(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline T512 __m512i i8x16(const int8_t *p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)); }

/* 32-element blocks into 2 vectors of 16 (elements 0-15, 16-31), same float operations as the
 * scalar code. */
/* Q4_0 levels (nibble - 8) of elements 0-15 and 16-31 as int32 lanes. */
static inline T512 void lv16_q4_0(const blk_q4_0 *b, __m512i v[2]) {
    const __m512i q = u8x16(b->qs), m4 = _mm512_set1_epi32(0xF), o8 = _mm512_set1_epi32(8);
    v[0] = _mm512_sub_epi32(_mm512_and_si512(q, m4), o8);
    v[1] = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), o8);
}
static inline T512 void dq16_q4_0(const blk_q4_0 *b, __m512 v[2]) {
    const __m512 d = _mm512_set1_ps(f16_512(b->d));
    __m512i l[2];
    lv16_q4_0(b, l);
    v[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(l[0]), d);
    v[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(l[1]), d);
}
static inline T512 void dq16_q4_1(const blk_q4_1 *b, __m512 v[2]) {
    const __m512 d = _mm512_set1_ps(f16_512(b->d)), m = _mm512_set1_ps(f16_512(b->m));
    const __m512i q = u8x16(b->qs), m4 = _mm512_set1_epi32(0xF);
    v[0] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, m4)), d), m);
    v[1] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4)), d), m);
}
/* Q5_0/Q5_1: the 5th bit of element e is bit e of qh; lanes whose bit is set get +16 (one masked
 * add per 16 lanes, using qh directly as the lane mask). */
static inline T512 void lv16_q5_0(const blk_q5_0 *b, __m512i v[2]) {
    const __m512i q = u8x16(b->qs), m4 = _mm512_set1_epi32(0xF), o16 = _mm512_set1_epi32(16);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_srli_epi32(q, 4);
    /* (q | bit << 4) - 16 == bit ? q : q - 16 */
    v[0] = _mm512_mask_sub_epi32(lo, (__mmask16)~qh, lo, o16);
    v[1] = _mm512_mask_sub_epi32(hi, (__mmask16)~(qh >> 16), hi, o16);
}
static inline T512 void dq16_q5_0(const blk_q5_0 *b, __m512 v[2]) {
    const __m512 d = _mm512_set1_ps(f16_512(b->d));
    __m512i l[2];
    lv16_q5_0(b, l);
    v[0] = _mm512_mul_ps(_mm512_cvtepi32_ps(l[0]), d);
    v[1] = _mm512_mul_ps(_mm512_cvtepi32_ps(l[1]), d);
}
static inline T512 void dq16_q5_1(const blk_q5_1 *b, __m512 v[2]) {
    const __m512 d = _mm512_set1_ps(f16_512(b->d)), m = _mm512_set1_ps(f16_512(b->m));
    const __m512i q = u8x16(b->qs), m4 = _mm512_set1_epi32(0xF), o16 = _mm512_set1_epi32(16);
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_srli_epi32(q, 4);
    lo = _mm512_mask_add_epi32(lo, (__mmask16)qh, lo, o16);
    hi = _mm512_mask_add_epi32(hi, (__mmask16)(qh >> 16), hi, o16);
    v[0] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(lo), d), m);
    v[1] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(hi), d), m);
}
/* Q5_K: the 64 elements of chunk j (0..3) into 4 vectors; dsc/dmn from k_scales8. */
static inline T512 void dq16_q5_K(const blk_q5_K *b, const float *dsc, const float *dmn, int j, __m512 v[4]) {
    __m512 d1 = _mm512_set1_ps(dsc[2 * j]), m1 = _mm512_set1_ps(dmn[2 * j]);
    __m512 d2 = _mm512_set1_ps(dsc[2 * j + 1]), m2 = _mm512_set1_ps(dmn[2 * j + 1]);
    const __m512i m4 = _mm512_set1_epi32(0xF), o16 = _mm512_set1_epi32(16);
    const __m512i blo = _mm512_set1_epi32(1 << (2 * j)), bhi = _mm512_set1_epi32(2 << (2 * j));
    for (int l = 0; l < 32; l += 16) {
        __m512i q = u8x16(b->qs + 32 * j + l), h = u8x16(b->qh + l);
        __m512i ql = _mm512_and_si512(q, m4), qhi = _mm512_srli_epi32(q, 4);
        ql = _mm512_mask_add_epi32(ql, _mm512_test_epi32_mask(h, blo), ql, o16);
        qhi = _mm512_mask_add_epi32(qhi, _mm512_test_epi32_mask(h, bhi), qhi, o16);
        __m512 lo = _mm512_cvtepi32_ps(ql), hi = _mm512_cvtepi32_ps(qhi);
        v[l / 16] = _mm512_sub_ps(_mm512_mul_ps(d1, lo), m1);
        v[2 + l / 16] = _mm512_sub_ps(_mm512_mul_ps(d2, hi), m2);
    }
}

#define DQ16_LOOP(BT, FN)                                                                               \
    for (int64_t i = 0; i < nb; i++) {                                                                  \
        __m512 v_[2];                                                                                   \
        FN((const BT *)src + i, v_);                                                                    \
        _mm512_storeu_ps(y + 32 * i, v_[0]);                                                            \
        _mm512_storeu_ps(y + 32 * i + 16, v_[1]);                                                       \
    }
#define DOT16_LOOP(BT, FN)                                                                              \
    do {                                                                                                \
        const BT *b_ = row;                                                                             \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                      \
        for (int64_t i = 0; i < nb; i++, b_++, x += 32) {                                               \
            __m512 v_[2];                                                                               \
            FN(b_, v_);                                                                                 \
            a0 = _mm512_fmadd_ps(v_[0], _mm512_loadu_ps(x), a0);                                        \
            a1 = _mm512_fmadd_ps(v_[1], _mm512_loadu_ps(x + 16), a1);                                   \
        }                                                                                               \
        return hsum512(_mm512_add_ps(a0, a1));                                                          \
    } while (0)

/* Dot for the scale-only 32-blocks (Q4_0, Q5_0): sum over blocks of d * sum(level * x). */
#define DOT16_D_LOOP(BT, LV)                                                                            \
    do {                                                                                                \
        const BT *b_ = row;                                                                             \
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();                                      \
        int64_t i = 0;                                                                                  \
        for (; i + 2 <= nb; i += 2, b_ += 2, x += 64) {                                                 \
            __m512i l_[2], k_[2];                                                                       \
            LV(b_, l_);                                                                                 \
            LV(b_ + 1, k_);                                                                             \
            __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(l_[0]), _mm512_loadu_ps(x));                    \
            __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(k_[0]), _mm512_loadu_ps(x + 32));               \
            p = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l_[1]), _mm512_loadu_ps(x + 16), p);                 \
            r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(k_[1]), _mm512_loadu_ps(x + 48), r);                 \
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b_[0].d)), p, a0);                              \
            a1 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b_[1].d)), r, a1);                              \
        }                                                                                               \
        for (; i < nb; i++, b_++, x += 32) {                                                            \
            __m512i l_[2];                                                                              \
            LV(b_, l_);                                                                                 \
            __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(l_[0]), _mm512_loadu_ps(x));                    \
            p = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l_[1]), _mm512_loadu_ps(x + 16), p);                 \
            a0 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b_->d)), p, a0);                                \
        }                                                                                               \
        return hsum512(_mm512_add_ps(a0, a1));                                                          \
    } while (0)

static T512 void dequant_avx512(uint32_t type, const void *src, float *y, int64_t n) {
    int64_t nb = n / TYPES[type].blck;
    switch (type) {
    case PIKA_TYPE_F16: {
        const uint16_t *s = src;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))));
        for (; i < n; i++) y[i] = f16_512(s[i]);
        return;
    }
    case PIKA_TYPE_BF16: {
        const uint16_t *s = src;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i)));
            _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
        }
        for (; i < n; i++) y[i] = pika_bf16_to_fp32(s[i]);
        return;
    }
    case PIKA_TYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q8_0 *b = (const blk_q8_0 *)src + i;
            __m512 d = _mm512_set1_ps(f16_512(b->d));
            _mm512_storeu_ps(y + 32 * i, _mm512_mul_ps(_mm512_cvtepi32_ps(i8x16(b->qs)), d));
            _mm512_storeu_ps(y + 32 * i + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(i8x16(b->qs + 16)), d));
        }
        return;
    case PIKA_TYPE_Q4_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q4_K *b = (const blk_q4_K *)src + i;
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_512(b->d), f16_512(b->dmin), dsc, dmn);
            float *yb = y + 256 * i;
            const __m512i m4 = _mm512_set1_epi32(0xF);
            for (int j = 0; j < 4; j++) {
                __m512 d1 = _mm512_set1_ps(dsc[2 * j]), m1 = _mm512_set1_ps(dmn[2 * j]);
                __m512 d2 = _mm512_set1_ps(dsc[2 * j + 1]), m2 = _mm512_set1_ps(dmn[2 * j + 1]);
                for (int l = 0; l < 32; l += 16) {
                    __m512i q = u8x16(b->qs + 32 * j + l);
                    __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(q, m4));
                    __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(q, 4));
                    _mm512_storeu_ps(yb + 64 * j + l, _mm512_sub_ps(_mm512_mul_ps(d1, lo), m1));
                    _mm512_storeu_ps(yb + 64 * j + 32 + l, _mm512_sub_ps(_mm512_mul_ps(d2, hi), m2));
                }
            }
        }
        return;
    case PIKA_TYPE_Q6_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q6_K *b = (const blk_q6_K *)src + i;
            float ds16[16];
            q6_scales16(b->scales, f16_512(b->d), ds16);
            for (int h = 0; h < 2; h++) {
                const float *dsh = ds16 + 8 * h;
                float *yb = y + 256 * i + 128 * h;
                for (int l = 0; l < 32; l += 16) {
                    int is = l / 16;
                    __m128i q[4];
                    q6_levels16(b->ql + 64 * h + l, b->qh + 32 * h + l, q);
                    for (int g = 0; g < 4; g++)
                        _mm512_storeu_ps(yb + l + 32 * g, _mm512_mul_ps(_mm512_set1_ps(dsh[is + 2 * g]),
                                                                        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q[g]))));
                }
            }
        }
        return;
    case PIKA_TYPE_Q4_0: DQ16_LOOP(blk_q4_0, dq16_q4_0); return;
    case PIKA_TYPE_Q4_1: DQ16_LOOP(blk_q4_1, dq16_q4_1); return;
    case PIKA_TYPE_Q5_0: DQ16_LOOP(blk_q5_0, dq16_q5_0); return;
    case PIKA_TYPE_Q5_1: DQ16_LOOP(blk_q5_1, dq16_q5_1); return;
    case PIKA_TYPE_Q5_K:
        for (int64_t i = 0; i < nb; i++) {
            const blk_q5_K *b = (const blk_q5_K *)src + i;
            float dsc[8], dmn[8];
            k_scales8(b->scales, f16_512(b->d), f16_512(b->dmin), dsc, dmn);
            for (int j = 0; j < 4; j++) {
                __m512 v[4];
                dq16_q5_K(b, dsc, dmn, j, v);
                for (int k = 0; k < 4; k++) _mm512_storeu_ps(y + 256 * i + 64 * j + 16 * k, v[k]);
            }
        }
        return;
    default: dequant_scalar(type, src, y, n); return;
    }
}

static T512 float dot_f32_avx512(const float *a, const float *x, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(x + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(x + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(x + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(x + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(x + i), s0);
    float s = hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * x[i];
    return s;
}

/* Q4_K dot; xs[k] = sum of x over sub-block k (32 elements) when the caller precomputed it, else NULL. */
static T512 float dot_q4_K_avx512(const blk_q4_K *b, const float *x, const float *xs, int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    __m256 accm8 = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi32(0xF);
    for (int64_t i = 0; i < nb; i++, b++, x += 256) {
        float dsc[8], dmn[8];
        __m256 dm = k_scales8(b->scales, f16_512(b->d), f16_512(b->dmin), dsc, dmn);
        for (int j = 0; j < 4; j++) {
            const float *xj = x + 64 * j;
            __m512i q0 = u8x16(b->qs + 32 * j), q1 = u8x16(b->qs + 32 * j + 16);
            __m512 xa = _mm512_loadu_ps(xj), xb = _mm512_loadu_ps(xj + 16);
            __m512 xc = _mm512_loadu_ps(xj + 32), xd = _mm512_loadu_ps(xj + 48);
            __m512 plo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q0, m4)), xa);
            plo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q1, m4)), xb, plo);
            __m512 phi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q0, 4)), xc);
            phi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(q1, 4)), xd, phi);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j]), plo, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j + 1]), phi, acc1);
            if (!xs) {
                accm = _mm512_fmadd_ps(_mm512_set1_ps(dmn[2 * j]), _mm512_add_ps(xa, xb), accm);
                accm = _mm512_fmadd_ps(_mm512_set1_ps(dmn[2 * j + 1]), _mm512_add_ps(xc, xd), accm);
            }
        }
        if (xs) accm8 = _mm256_fmadd_ps(dm, _mm256_loadu_ps(xs + 8 * i), accm8);
    }
    return hsum512(_mm512_sub_ps(_mm512_add_ps(acc0, acc1), accm)) - hsum256(accm8);
}

/* Q5_K dot, factored like Q4_K; xs as there. */
static T512 float dot_q5_K_avx512(const blk_q5_K *b, const float *x, const float *xs, int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    __m256 accm8 = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi32(0xF), o16 = _mm512_set1_epi32(16);
    for (int64_t i = 0; i < nb; i++, b++, x += 256) {
        float dsc[8], dmn[8];
        __m256 dm = k_scales8(b->scales, f16_512(b->d), f16_512(b->dmin), dsc, dmn);
        const __m512i h0 = u8x16(b->qh), h1 = u8x16(b->qh + 16);
        for (int j = 0; j < 4; j++) {
            const float *xj = x + 64 * j;
            const __m512i blo = _mm512_set1_epi32(1 << (2 * j)), bhi = _mm512_set1_epi32(2 << (2 * j));
            __m512i q0 = u8x16(b->qs + 32 * j), q1 = u8x16(b->qs + 32 * j + 16);
            __m512i l0 = _mm512_and_si512(q0, m4), l1 = _mm512_and_si512(q1, m4);
            __m512i u0 = _mm512_srli_epi32(q0, 4), u1 = _mm512_srli_epi32(q1, 4);
            l0 = _mm512_mask_add_epi32(l0, _mm512_test_epi32_mask(h0, blo), l0, o16);
            l1 = _mm512_mask_add_epi32(l1, _mm512_test_epi32_mask(h1, blo), l1, o16);
            u0 = _mm512_mask_add_epi32(u0, _mm512_test_epi32_mask(h0, bhi), u0, o16);
            u1 = _mm512_mask_add_epi32(u1, _mm512_test_epi32_mask(h1, bhi), u1, o16);
            __m512 xa = _mm512_loadu_ps(xj), xb = _mm512_loadu_ps(xj + 16);
            __m512 xc = _mm512_loadu_ps(xj + 32), xd = _mm512_loadu_ps(xj + 48);
            __m512 plo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(l1), xb, _mm512_mul_ps(_mm512_cvtepi32_ps(l0), xa));
            __m512 phi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(u1), xd, _mm512_mul_ps(_mm512_cvtepi32_ps(u0), xc));
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j]), plo, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(dsc[2 * j + 1]), phi, acc1);
            if (!xs) {
                accm = _mm512_fmadd_ps(_mm512_set1_ps(dmn[2 * j]), _mm512_add_ps(xa, xb), accm);
                accm = _mm512_fmadd_ps(_mm512_set1_ps(dmn[2 * j + 1]), _mm512_add_ps(xc, xd), accm);
            }
        }
        if (xs) accm8 = _mm256_fmadd_ps(dm, _mm256_loadu_ps(xs + 8 * i), accm8);
    }
    return hsum512(_mm512_sub_ps(_mm512_add_ps(acc0, acc1), accm)) - hsum256(accm8);
}

static T512 float dot_q6_K_avx512(const blk_q6_K *b, const float *x, int64_t nb) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++, b++) {
        float ds16[16];
        q6_scales16(b->scales, f16_512(b->d), ds16);
        for (int h = 0; h < 2; h++) {
            const float *dsh = ds16 + 8 * h;
            const float *xh = x + 256 * i + 128 * h;
            for (int l = 0; l < 32; l += 16) {
                int is = l / 16;
                __m128i q[4];
                q6_levels16(b->ql + 64 * h + l, b->qh + 32 * h + l, q);
                __m512 p1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q[0])), _mm512_loadu_ps(xh + l));
                __m512 p2 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q[1])), _mm512_loadu_ps(xh + l + 32));
                __m512 p3 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q[2])), _mm512_loadu_ps(xh + l + 64));
                __m512 p4 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q[3])), _mm512_loadu_ps(xh + l + 96));
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(dsh[is]), p1, acc0);
                acc1 = _mm512_fmadd_ps(_mm512_set1_ps(dsh[is + 2]), p2, acc1);
                acc0 = _mm512_fmadd_ps(_mm512_set1_ps(dsh[is + 4]), p3, acc0);
                acc1 = _mm512_fmadd_ps(_mm512_set1_ps(dsh[is + 6]), p4, acc1);
            }
        }
    }
    return hsum512(_mm512_add_ps(acc0, acc1));
}

static T512 float vec_dot_avx512(uint32_t type, const void *row, const float *x, int64_t n) {
    int64_t nb = n / TYPES[type].blck;
    switch (type) {
    case PIKA_TYPE_F32: return dot_f32_avx512(row, x, n);
    case PIKA_TYPE_F16: {
        const uint16_t *s = row;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
        int64_t i = 0;
        /* one 64-byte load per cache line of weights, split in registers: with two 32-byte loads per
         * line a core streams F16 rows at ~19 GB/s, with one at ~26 (Zen 4; decode is this loop) */
        for (; i + 64 <= n; i += 64) {
            __m512i w0 = _mm512_loadu_si512((const void *)(s + i)), w1 = _mm512_loadu_si512((const void *)(s + i + 32));
            s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(w0)), _mm512_loadu_ps(x + i), s0);
            s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(w0, 1)), _mm512_loadu_ps(x + i + 16), s1);
            s2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(w1)), _mm512_loadu_ps(x + i + 32), s2);
            s3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(w1, 1)), _mm512_loadu_ps(x + i + 48), s3);
        }
        for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + i))), _mm512_loadu_ps(x + i), s0);
        float r = hsum512(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
        for (; i < n; i++) r += f16_512(s[i]) * x[i];
        return r;
    }
    case PIKA_TYPE_BF16: {
        const uint16_t *s = row;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + 32 <= n; i += 32) {
            __m512i v0 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i))), 16);
            __m512i v1 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + i + 16))), 16);
            s0 = _mm512_fmadd_ps(_mm512_castsi512_ps(v0), _mm512_loadu_ps(x + i), s0);
            s1 = _mm512_fmadd_ps(_mm512_castsi512_ps(v1), _mm512_loadu_ps(x + i + 16), s1);
        }
        float r = hsum512(_mm512_add_ps(s0, s1));
        for (; i < n; i++) r += pika_bf16_to_fp32(s[i]) * x[i];
        return r;
    }
    case PIKA_TYPE_Q8_0: {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const blk_q8_0 *b = row;
        int64_t i = 0;
        for (; i + 2 <= nb; i += 2, b += 2, x += 64) {
            __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(i8x16(b[0].qs)), _mm512_loadu_ps(x));
            p = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i8x16(b[0].qs + 16)), _mm512_loadu_ps(x + 16), p);
            __m512 r = _mm512_mul_ps(_mm512_cvtepi32_ps(i8x16(b[1].qs)), _mm512_loadu_ps(x + 32));
            r = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i8x16(b[1].qs + 16)), _mm512_loadu_ps(x + 48), r);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b[0].d)), p, acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b[1].d)), r, acc1);
        }
        for (; i < nb; i++, b++, x += 32) {
            __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(i8x16(b->qs)), _mm512_loadu_ps(x));
            p = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i8x16(b->qs + 16)), _mm512_loadu_ps(x + 16), p);
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(f16_512(b->d)), p, acc0);
        }
        return hsum512(_mm512_add_ps(acc0, acc1));
    }
    case PIKA_TYPE_Q4_K: return dot_q4_K_avx512(row, x, NULL, nb);
    case PIKA_TYPE_Q6_K: return dot_q6_K_avx512(row, x, nb);
    case PIKA_TYPE_Q4_0: DOT16_D_LOOP(blk_q4_0, lv16_q4_0);
    case PIKA_TYPE_Q4_1: DOT16_LOOP(blk_q4_1, dq16_q4_1);
    case PIKA_TYPE_Q5_0: DOT16_D_LOOP(blk_q5_0, lv16_q5_0);
    case PIKA_TYPE_Q5_1: DOT16_LOOP(blk_q5_1, dq16_q5_1);
    case PIKA_TYPE_Q5_K: return dot_q5_K_avx512(row, x, NULL, nb);
    default: {
        float buf[256];
        size_t cb = pika_row_bytes(type, 256);
        const uint8_t *p = row;
        float s = 0;
        for (int64_t i = 0; i < n; i += 256, p += cb) {
            int64_t m = n - i < 256 ? n - i : 256;
            dequant_avx512(type, p, buf, m);
            s += dot_f32_avx512(buf, x + i, m);
        }
        return s;
    }
    }
}

/* Q4_K/Q5_K matvec with the per-sub-block sums of x computed once for all rows. */
static T512 void matvec_k_avx512(uint32_t type, const uint8_t *W, const float *x, float *y, int64_t n, int64_t r0,
                                 int64_t r1, float *xs) {
    int64_t nsub = n / 32, nb = n / 256;
    for (int64_t k = 0; k < nsub; k++) {
        __m512 s = _mm512_add_ps(_mm512_loadu_ps(x + 32 * k), _mm512_loadu_ps(x + 32 * k + 16));
        xs[k] = hsum512(s);
    }
    size_t rb = pika_row_bytes(type, n);
    if (type == PIKA_TYPE_Q4_K)
        for (int64_t r = r0; r < r1; r++) y[r] = dot_q4_K_avx512((const blk_q4_K *)(W + (size_t)r * rb), x, xs, nb);
    else
        for (int64_t r = r0; r < r1; r++) y[r] = dot_q5_K_avx512((const blk_q5_K *)(W + (size_t)r * rb), x, xs, nb);
}
#endif /* PIKA_X86 */

/* ================================================================ public kernels */

void pika_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    if (n <= 0) return;
    if (!pika_type_supported(type)) { memset(dst, 0, (size_t)n * sizeof(float)); return; }
#ifdef PIKA_X86
    switch (cur_path()) {
    case PATH_AVX512: dequant_avx512(type, src, dst, n); return;
    case PATH_AVX2: dequant_avx2(type, src, dst, n); return;
    default: break;
    }
#endif
    dequant_scalar(type, src, dst, n);
}

float pika_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n) {
    if (!pika_type_supported(type) || n <= 0) return 0.0f;
#ifdef PIKA_X86
    switch (cur_path()) {
    case PATH_AVX512: return vec_dot_avx512(type, row, x, n);
    case PATH_AVX2: return vec_dot_avx2(type, row, x, n);
    default: break;
    }
#endif
    return vec_dot_scalar(type, row, x, n);
}

void pika_matvec(uint32_t type, const void *W, const float *x, float *y, int64_t n, int64_t r0, int64_t r1) {
    if (!pika_type_supported(type) || n <= 0) {
        for (int64_t r = r0; r < r1; r++) y[r] = 0.0f;
        return;
    }
    size_t rb = pika_row_bytes(type, n);
    const uint8_t *w = W;
    int path = cur_path();
#ifdef PIKA_X86
    if (path == PATH_AVX512 && (type == PIKA_TYPE_Q4_K || type == PIKA_TYPE_Q5_K) && n <= 65536) {
        float xs[2048];
        matvec_k_avx512(type, w, x, y, n, r0, r1, xs);
        return;
    }
    if (path == PATH_AVX512) {
        for (int64_t r = r0; r < r1; r++) y[r] = vec_dot_avx512(type, w + (size_t)r * rb, x, n);
        return;
    }
    if (path == PATH_AVX2) {
        for (int64_t r = r0; r < r1; r++) y[r] = vec_dot_avx2(type, w + (size_t)r * rb, x, n);
        return;
    }
#endif
    (void)path;
    for (int64_t r = r0; r < r1; r++) y[r] = vec_dot_scalar(type, w + (size_t)r * rb, x, n);
}

/* ================================================================ 8-bit activations, integer dots */

int pika_type_has_q8_dot(uint32_t type) {
    switch (type) {
    case PIKA_TYPE_Q4_0: case PIKA_TYPE_Q4_1: case PIKA_TYPE_Q5_0: case PIKA_TYPE_Q5_1:
    case PIKA_TYPE_Q8_0: case PIKA_TYPE_Q4_K: case PIKA_TYPE_Q5_K: case PIKA_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

int pika_q8_preferred(uint32_t type) {
    if (!pika_type_has_q8_dot(type)) return 0;
    /* measured (bench_kernels, Zen 4): on the AVX-512 level the exact Q4_K kernel (precomputed
     * sub-block sums of x) streams faster than the integer one, 15.3 vs 11.9 GB/s */
    if (type == PIKA_TYPE_Q4_K && cur_path() == PATH_AVX512) return 0;
    return 1;
}

size_t pika_q8_act_bytes(int64_t n) { return n > 0 ? (size_t)(n / 32) * sizeof(blk_q8a) : 0; }

/* Round to nearest, ties away from zero (|v| <= 127.5 here). */
static inline int q8_round(float v) { return (int)lroundf(v); }

static void quantize_act_scalar(const float *x, blk_q8a *a, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
        int s0 = 0, s1 = 0;
        for (int j = 0; j < 32; j++) {
            int q = q8_round(x[j] * id);
            if (q > 127) q = 127;
            if (q < -127) q = -127;
            a[i].qs[j] = (int8_t)q;
            if (j < 16) s0 += q; else s1 += q;
        }
        a[i].d = d;
        a[i].s16[0] = (int16_t)s0;
        a[i].s16[1] = (int16_t)s1;
        a[i].sd = d * (float)(s0 + s1);
    }
}

#ifdef PIKA_X86
/* Same values as quantize_act_scalar (same scale, rounding half away from zero, same sums). */
static T256 void quantize_act_avx2(const float *x, blk_q8a *a, int64_t nb) {
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 half = _mm256_set1_ps(0.5f), sgn = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    for (int64_t i = 0; i < nb; i++, x += 32) {
        __m256 v[4], mx = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            mx = _mm256_max_ps(mx, _mm256_and_ps(v[k], absm));
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = d > 0 ? 127.0f / amax : 0.0f;
        __m256 idv = _mm256_set1_ps(id);
        __m256i qi[4];
        for (int k = 0; k < 4; k++) {
            __m256 t = _mm256_mul_ps(v[k], idv);
            /* round half away from zero: trunc(t + copysign(0.5, t)) */
            __m256 r = _mm256_add_ps(t, _mm256_or_ps(half, _mm256_and_ps(t, sgn)));
            qi[k] = _mm256_cvttps_epi32(r);
            qi[k] = _mm256_min_epi32(_mm256_max_epi32(qi[k], _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
        }
        /* pack 32 int32 -> 32 int8 in element order */
        __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]), p23 = _mm256_packs_epi32(qi[2], qi[3]);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)a[i].qs, p);
        __m256i s01 = _mm256_add_epi32(qi[0], qi[1]), s23 = _mm256_add_epi32(qi[2], qi[3]);
        __m128i h0 = _mm_add_epi32(_mm256_castsi256_si128(s01), _mm256_extracti128_si256(s01, 1));
        __m128i h1 = _mm_add_epi32(_mm256_castsi256_si128(s23), _mm256_extracti128_si256(s23, 1));
        h0 = _mm_hadd_epi32(h0, h1);
        h0 = _mm_hadd_epi32(h0, h0);
        int s0 = _mm_cvtsi128_si32(h0), s1 = _mm_extract_epi32(h0, 1);
        a[i].d = d;
        a[i].s16[0] = (int16_t)s0;
        a[i].s16[1] = (int16_t)s1;
        a[i].sd = d * (float)(s0 + s1);
    }
}

#define QK_TGT T256
#define QK(name) name##_q8avx2
#define QK_DOT(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "quant_q8.inc"
#undef QK_TGT
#undef QK
#undef QK_DOT

#define TVNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QK_TGT TVNNI
#define QK(name) name##_q8vnni
#define QK_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "quant_q8.inc"
#undef QK_TGT
#undef QK
#undef QK_DOT
#endif

void pika_quantize_act_q8(const float *x, void *xq, int64_t n) {
#ifdef PIKA_X86
    if (cur_path() >= PATH_AVX2) { quantize_act_avx2(x, xq, n / 32); return; }
#endif
    quantize_act_scalar(x, xq, n / 32);
}

/* --- scalar reference: element levels straight from the layouts (ref_elem's decoding), integer
 * sums per 32-element activation block, scales applied per block. */

/* Integer level of element e of a block and the block-level offset it is measured from: the weight
 * value is scale * (level - off) for Q4_0/Q5_0/Q8_0/Q6_K, scale * level + min for Q4_1/Q5_1,
 * scale_s * level - min_s for Q4_K/Q5_K. */
static int ref_level(uint32_t type, const uint8_t *b, int e) {
    switch (type) {
    case PIKA_TYPE_Q4_0: { int byte = b[2 + e % 16]; return e < 16 ? byte % 16 : byte / 16; }
    case PIKA_TYPE_Q4_1: { int byte = b[4 + e % 16]; return e < 16 ? byte % 16 : byte / 16; }
    case PIKA_TYPE_Q5_0:
    case PIKA_TYPE_Q5_1: {
        int o = type == PIKA_TYPE_Q5_0 ? 2 : 4;
        uint32_t qh = (uint32_t)b[o] | (uint32_t)b[o + 1] << 8 | (uint32_t)b[o + 2] << 16 | (uint32_t)b[o + 3] << 24;
        int byte = b[o + 4 + e % 16];
        return (e < 16 ? byte % 16 : byte / 16) + 16 * (int)((qh >> e) & 1);
    }
    case PIKA_TYPE_Q8_0: return (int8_t)b[2 + e];
    case PIKA_TYPE_Q4_K:
    case PIKA_TYPE_Q5_K: {
        int chunk = e / 64, r = e % 64, sub = e / 32;
        const uint8_t *qs = b + (type == PIKA_TYPE_Q4_K ? 16 : 48);
        int byte = qs[32 * chunk + r % 32], q = r < 32 ? byte % 16 : byte / 16;
        if (type == PIKA_TYPE_Q5_K) q += 16 * ((b[16 + r % 32] >> sub) & 1);
        return q;
    }
    case PIKA_TYPE_Q6_K: {
        int half = e / 128, r = e % 128, g = r / 32, l = r % 32;
        const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
        int byte = ql[l + (g % 2) * 32], lo = g < 2 ? byte % 16 : byte / 16;
        return lo + 16 * ((qh[l] >> (2 * g)) & 3);
    }
    default: return 0;
    }
}

float pika_vec_dot_q8_ref(uint32_t type, const void *row, const void *xq, int64_t n) {
    if (!pika_type_has_q8_dot(type) || n <= 0) return 0.0f;
    const blk_q8a *a = xq;
    const uint8_t *w = row;
    const int bl = TYPES[type].blck;
    const size_t bb = TYPES[type].bytes;
    double sum = 0;
    for (int64_t k = 0; k < n / 32; k++) { /* activation block k = elements 32k .. 32k+31 */
        const uint8_t *b = w + (size_t)(32 * k / bl) * bb;
        int e0 = (int)(32 * k % bl);
        long dotq = 0, sumq = 0;
        for (int j = 0; j < 32; j++) {
            dotq += (long)ref_level(type, b, e0 + j) * a[k].qs[j];
            sumq += a[k].qs[j];
        }
        double dx = a[k].d, part;
        switch (type) {
        case PIKA_TYPE_Q4_0: part = rd_f16(b) * dx * (double)(dotq - 8 * sumq); break;
        case PIKA_TYPE_Q5_0: part = rd_f16(b) * dx * (double)(dotq - 16 * sumq); break;
        case PIKA_TYPE_Q8_0: part = rd_f16(b) * dx * (double)dotq; break;
        case PIKA_TYPE_Q4_1:
        case PIKA_TYPE_Q5_1: part = rd_f16(b) * dx * (double)dotq + rd_f16(b + 2) * dx * (double)sumq; break;
        case PIKA_TYPE_Q4_K:
        case PIKA_TYPE_Q5_K: {
            int sc, mn;
            ref_k_scale(b + 4, e0 / 32, &sc, &mn);
            part = rd_f16(b) * sc * dx * (double)dotq - rd_f16(b + 2) * mn * dx * (double)sumq;
            break;
        }
        case PIKA_TYPE_Q6_K: { /* two 16-element sub-blocks with their own int8 scales */
            part = 0;
            for (int hh = 0; hh < 2; hh++) {
                int e = e0 + 16 * hh;
                long dq = 0, sq = 0;
                for (int j = 0; j < 16; j++) {
                    dq += (long)(ref_level(type, b, e + j) - 32) * a[k].qs[16 * hh + j];
                    sq += a[k].qs[16 * hh + j];
                }
                (void)sq;
                part += (double)(int8_t)b[192 + e / 16] * (double)dq;
            }
            part *= rd_f16(b + 208) * dx;
            break;
        }
        default: part = 0;
        }
        sum += part;
    }
    return (float)sum;
}

static int g_q8_no_vnni = 0;
void pika_q8_force_no_vnni(int on) { g_q8_no_vnni = on; }

/* 2 = VNNI family, 1 = AVX2 family, 0 = scalar reference */
static int q8_family(void) {
    int p = cur_path();
    if (p == PATH_AVX512 && !g_q8_no_vnni && pika_simd_has_vnni()) return 2;
    return p >= PATH_AVX2 ? 1 : 0;
}

const char *pika_q8_path(void) {
    int f = q8_family();
    return f == 2 ? "avx512-vnni" : f == 1 ? "avx2" : "scalar";
}

float pika_vec_dot_q8(uint32_t type, const void *row, const void *xq, int64_t n) {
    if (!pika_type_has_q8_dot(type) || n <= 0) return 0.0f;
#ifdef PIKA_X86
    switch (q8_family()) {
    case 2: return vec_dot_q8vnni(type, row, xq, n);
    case 1: return vec_dot_q8avx2(type, row, xq, n);
    default: break;
    }
#endif
    return pika_vec_dot_q8_ref(type, row, xq, n);
}

void pika_matvec_q8(uint32_t type, const void *W, const void *xq, float *y, int64_t n, int64_t r0, int64_t r1) {
    if (!pika_type_has_q8_dot(type) || n <= 0) {
        for (int64_t r = r0; r < r1; r++) y[r] = 0.0f;
        return;
    }
#ifdef PIKA_X86
    switch (q8_family()) {
    case 2: matvec_q8vnni(type, W, xq, y, n, r0, r1); return;
    case 1: matvec_q8avx2(type, W, xq, y, n, r0, r1); return;
    default: break;
    }
#endif
    size_t rb = pika_row_bytes(type, n);
    for (int64_t r = r0; r < r1; r++) y[r] = pika_vec_dot_q8_ref(type, (const uint8_t *)W + (size_t)r * rb, xq, n);
}

/* ================================================================ weight levels (the integer GEMM's packer)
 * A row of a quantized type as signed 8-bit levels v with one scale per group of G elements and,
 * for the types with a minimum, one offset per 32: w[e] = d[e/G] * v[e] + m[e/32]. */

int pika_type_levels_group(uint32_t type) {
    switch (type) {
    case PIKA_TYPE_Q4_0: case PIKA_TYPE_Q4_1: case PIKA_TYPE_Q5_0: case PIKA_TYPE_Q5_1:
    case PIKA_TYPE_Q8_0: case PIKA_TYPE_Q4_K: case PIKA_TYPE_Q5_K: return 32;
    case PIKA_TYPE_Q6_K: return 16;
    default: return 0;
    }
}

int pika_type_levels_have_min(uint32_t type) {
    return type == PIKA_TYPE_Q4_1 || type == PIKA_TYPE_Q5_1 || type == PIKA_TYPE_Q4_K || type == PIKA_TYPE_Q5_K;
}

/* level offset of each type's stored level (ref_level) */
static int level_off(uint32_t type) {
    return type == PIKA_TYPE_Q4_0 ? 8 : type == PIKA_TYPE_Q5_0 ? 16 : type == PIKA_TYPE_Q6_K ? 32 : 0;
}
int pika_type_levels_offset(uint32_t type) { return pika_type_levels_group(type) ? level_off(type) : 0; }

/* plain code from ref_level and the block layouts (tests; the scalar level) */
void pika_unpack_levels_ref(uint32_t type, const void *row, int64_t n, int8_t *v, float *d, float *m) {
    const int bl = TYPES[type].blck, G = pika_type_levels_group(type), off = level_off(type);
    const size_t bb = TYPES[type].bytes;
    const uint8_t *w = row;
    for (int64_t e = 0; e < n; e++) v[e] = (int8_t)(ref_level(type, w + (size_t)(e / bl) * bb, (int)(e % bl)) - off);
    for (int64_t g = 0; g < n / G; g++) {
        const uint8_t *b = w + (size_t)(g * G / bl) * bb;
        int eb = (int)(g * G % bl), sc, mn;
        switch (type) {
        case PIKA_TYPE_Q4_K: case PIKA_TYPE_Q5_K: ref_k_scale(b + 4, eb / 32, &sc, &mn); d[g] = (float)rd_f16(b) * (float)sc; break;
        case PIKA_TYPE_Q6_K: d[g] = (float)rd_f16(b + 208) * (float)(int8_t)b[192 + eb / 16]; break;
        default: d[g] = (float)rd_f16(b); break;
        }
    }
    for (int64_t g = 0; g < n / 32; g++) {
        const uint8_t *b = w + (size_t)(g * 32 / bl) * bb;
        int eb = (int)(g * 32 % bl), sc, mn;
        switch (type) {
        case PIKA_TYPE_Q4_1: case PIKA_TYPE_Q5_1: m[g] = (float)rd_f16(b + 2); break;
        case PIKA_TYPE_Q4_K: case PIKA_TYPE_Q5_K: ref_k_scale(b + 4, eb / 32, &sc, &mn); m[g] = -(float)rd_f16(b + 2) * (float)mn; break;
        default: m[g] = 0.0f; break;
        }
    }
}

#ifdef PIKA_X86
/* The same levels and scales as pika_unpack_levels_ref, 32 levels per vector step (the q8 decode
 * kernels' unpacking: nib32, bits16, kscales). */
static T256 void unpack_levels_avx2(uint32_t type, const void *row, int64_t n, int8_t *v, float *d, float *m) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    switch (type) {
    case PIKA_TYPE_Q8_0: {
        const blk_q8_0 *b = row;
        for (int64_t i = 0; i < n / 32; i++) {
            memcpy(v + 32 * i, b[i].qs, 32);
            d[i] = h2f(b[i].d);
            m[i] = 0.0f;
        }
        return;
    }
    case PIKA_TYPE_Q4_0: case PIKA_TYPE_Q4_1: {
        const int mn = type == PIKA_TYPE_Q4_1;
        const __m256i off = _mm256_set1_epi8(mn ? 0 : 8);
        for (int64_t i = 0; i < n / 32; i++) {
            const uint8_t *b = (const uint8_t *)row + (size_t)i * (mn ? sizeof(blk_q4_1) : sizeof(blk_q4_0));
            __m256i q = _mm256_sub_epi8(nib32_q8avx2(b + (mn ? 4 : 2)), off);
            _mm256_storeu_si256((__m256i *)(v + 32 * i), q);
            d[i] = rd_f16(b);
            m[i] = mn ? rd_f16(b + 2) : 0.0f;
        }
        return;
    }
    case PIKA_TYPE_Q5_0: case PIKA_TYPE_Q5_1: {
        const int mn = type == PIKA_TYPE_Q5_1;
        const __m256i off = _mm256_set1_epi8(mn ? 0 : 16);
        for (int64_t i = 0; i < n / 32; i++) {
            const uint8_t *b = (const uint8_t *)row + (size_t)i * (mn ? sizeof(blk_q5_1) : sizeof(blk_q5_0));
            const uint8_t *qh = b + (mn ? 4 : 2);
            __m256i q = _mm256_sub_epi8(_mm256_or_si256(nib32_q8avx2(qh + 4), bits16_q8avx2(qh)), off);
            _mm256_storeu_si256((__m256i *)(v + 32 * i), q);
            d[i] = rd_f16(b);
            m[i] = mn ? rd_f16(b + 2) : 0.0f;
        }
        return;
    }
    case PIKA_TYPE_Q4_K: case PIKA_TYPE_Q5_K: {
        const int five = type == PIKA_TYPE_Q5_K;
        const __m256i one = _mm256_set1_epi8(1);
        for (int64_t i = 0; i < n / 256; i++) {
            const uint8_t *b = (const uint8_t *)row + (size_t)i * (five ? sizeof(blk_q5_K) : sizeof(blk_q4_K));
            uint8_t sc[8], mn[8];
            kscales_q8avx2(b + 4, sc, mn);
            float dk = rd_f16(b), dmin = rd_f16(b + 2);
            const uint8_t *qs = b + (five ? 48 : 16);
            __m256i hb = five ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
                __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (five) {
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
                }
                _mm256_storeu_si256((__m256i *)(v + 256 * i + 64 * j), lo);
                _mm256_storeu_si256((__m256i *)(v + 256 * i + 64 * j + 32), hi);
            }
            for (int s = 0; s < 8; s++) {
                d[8 * i + s] = dk * (float)sc[s];
                m[8 * i + s] = -dmin * (float)mn[s];
            }
        }
        return;
    }
    case PIKA_TYPE_Q6_K: {
        const __m256i m3 = _mm256_set1_epi8(0x30), off = _mm256_set1_epi8(32);
        for (int64_t i = 0; i < n / 256; i++) {
            const blk_q6_K *b = (const blk_q6_K *)row + i;
            const float dk = h2f(b->d);
            for (int h = 0; h < 2; h++) {
                __m256i qa = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
                __m256i qc = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
                __m256i lv[4];
                lv[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m3));
                lv[1] = _mm256_or_si256(_mm256_and_si256(qc, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m3));
                lv[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), _mm256_and_si256(qh, m3));
                lv[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qc, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m3));
                for (int g = 0; g < 4; g++)
                    _mm256_storeu_si256((__m256i *)(v + 256 * i + 128 * h + 32 * g), _mm256_sub_epi8(lv[g], off));
            }
            for (int s = 0; s < 16; s++) d[16 * i + s] = dk * (float)b->scales[s];
            for (int s = 0; s < 8; s++) m[8 * i + s] = 0.0f;
        }
        return;
    }
    default: return;
    }
}
#endif

void pika_unpack_levels(uint32_t type, const void *row, int64_t n, int8_t *v, float *d, float *m) {
    if (!pika_type_levels_group(type) || n <= 0) return;
#ifdef PIKA_X86
    if (cur_path() >= PATH_AVX2) { unpack_levels_avx2(type, row, n, v, d, m); return; }
#endif
    pika_unpack_levels_ref(type, row, n, v, d, m);
}

void pika_quantize_act_q8_levels(const float *x, int64_t n, int8_t *q, float *d, int32_t *s16) {
    blk_q8a buf[8];
    for (int64_t b0 = 0; b0 < n / 32; b0 += 8) {
        int64_t nb = n / 32 - b0 < 8 ? n / 32 - b0 : 8;
        pika_quantize_act_q8(x + 32 * b0, buf, 32 * nb);
        for (int64_t b = 0; b < nb; b++) {
            memcpy(q + 32 * (b0 + b), buf[b].qs, 32);
            d[b0 + b] = buf[b].d;
            s16[2 * (b0 + b)] = buf[b].s16[0];
            s16[2 * (b0 + b) + 1] = buf[b].s16[1];
        }
    }
}

/* ================================================================ quantization (ggml reference algorithms) */

/* Round to nearest, ties to even (ggml's nearest_int; valid for |f| < 2^22). */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static void q_q4_0(const float *x, blk_q4_0 *y) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    float d = max / -8, id = d ? 1.0f / d : 0.0f;
    y->d = pika_fp32_to_fp16(d);
    for (int j = 0; j < 16; j++) {
        int a = (int)(int8_t)(x[j] * id + 8.5f), b = (int)(int8_t)(x[j + 16] * id + 8.5f);
        a = a > 15 ? 15 : a;
        b = b > 15 ? 15 : b;
        y->qs[j] = (uint8_t)(a | (b << 4));
    }
}
static void q_q4_1(const float *x, blk_q4_1 *y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
    y->d = pika_fp32_to_fp16(d);
    y->m = pika_fp32_to_fp16(min);
    for (int j = 0; j < 16; j++) {
        int a = (int)(int8_t)((x[j] - min) * id + 0.5f), b = (int)(int8_t)((x[j + 16] - min) * id + 0.5f);
        a = a > 15 ? 15 : a;
        b = b > 15 ? 15 : b;
        y->qs[j] = (uint8_t)(a | (b << 4));
    }
}
static void q_q5_0(const float *x, blk_q5_0 *y) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
        if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
    float d = max / -16, id = d ? 1.0f / d : 0.0f;
    y->d = pika_fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int a = (int)(int8_t)(x[j] * id + 16.5f), b = (int)(int8_t)(x[j + 16] * id + 16.5f);
        a = a > 31 ? 31 : a;
        b = b > 31 ? 31 : b;
        y->qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
        qh |= (uint32_t)((a >> 4) & 1) << j;
        qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}
static void q_q5_1(const float *x, blk_q5_1 *y) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < 32; j++) {
        if (x[j] < min) min = x[j];
        if (x[j] > max) max = x[j];
    }
    float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
    y->d = pika_fp32_to_fp16(d);
    y->m = pika_fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        int a = (int)(uint8_t)((x[j] - min) * id + 0.5f), b = (int)(uint8_t)((x[j + 16] - min) * id + 0.5f);
        y->qs[j] = (uint8_t)((a & 0xF) | ((b & 0xF) << 4));
        qh |= (uint32_t)((a >> 4) & 1) << j;
        qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
    }
    memcpy(y->qh, &qh, 4);
}
static void q_q8_0(const float *x, blk_q8_0 *y) {
    float amax = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    y->d = pika_fp32_to_fp16(d);
    for (int j = 0; j < 32; j++) y->qs[j] = (int8_t)roundf(x[j] * id);
}

/* ggml make_qkx2_quants: asymmetric quantization of n values to [0, nmax] with a scale and a
 * min, searching nstep+1 candidate scales for the lowest weighted error. Returns the scale;
 * *the_min receives -min (>= 0). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        l = l < 0 ? 0 : l > nmax ? nmax : l;
        L[i] = (uint8_t)l;
        float diff = scale * l + min - x[i];
        best += w[i] * diff * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * diff * diff;
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-sub-block scales/mins, packed 6-bit, then
 * the final levels L[256] recomputed from the rounded scales. Writes d, dmin, scales[12]. */
static void quant_k_scales(const float *x, int nmax, uint16_t *yd, uint16_t *ydmin, uint8_t *ysc, uint8_t *L) {
    uint8_t Laux[32];
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    float rmin = nmax == 15 ? -1.0f : -0.5f;
    int nstep = nmax == 15 ? 20 : 15;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f, inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(ysc, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = nearest_int(inv_scale * scales[j]), lm = nearest_int(inv_min * mins[j]);
        ls = ls > 63 ? 63 : ls < 0 ? 0 : ls;
        lm = lm > 63 ? 63 : lm < 0 ? 0 : lm;
        if (j < 4) {
            ysc[j] = (uint8_t)ls;
            ysc[j + 4] = (uint8_t)lm;
        } else {
            ysc[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            ysc[j - 4] |= (uint8_t)((ls >> 4) << 6);
            ysc[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *yd = pika_fp32_to_fp16(max_scale / 63.f);
    *ydmin = pika_fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, ysc, &sc, &m);
        float d = h2f(*yd) * sc;
        if (!d) continue;
        float dm = h2f(*ydmin) * m;
        for (int ii = 0; ii < 32; ii++) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

static void q_q4_K(const float *x, blk_q4_K *y) {
    uint8_t L[256];
    quant_k_scales(x, 15, &y->d, &y->dmin, y->scales, L);
    for (int j = 0; j < 256; j += 64)
        for (int l = 0; l < 32; l++) y->qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

static void q_q5_K(const float *x, blk_q5_K *y) {
    uint8_t L[256];
    quant_k_scales(x, 31, &y->d, &y->dmin, y->scales, L);
    memset(y->qh, 0, 32);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64, m1 <<= 2, m2 <<= 2) {
        for (int j = 0; j < 32; j++) {
            int l1 = L[n + j], l2 = L[n + j + 32];
            if (l1 > 15) { l1 -= 16; y->qh[j] |= m1; }
            if (l2 > 15) { l2 -= 16; y->qh[j] |= m2; }
            y->qs[n / 2 + j] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

/* ggml make_qx_quants with rmse_type 1 (weights x^2): symmetric levels in [-nmax, nmax-1],
 * stored as L = level + nmax; returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void q_q6_K(const float *x, blk_q6_K *y) {
    int8_t L[256];
    float scales[16], max_scale = 0, max_abs = 0;
    for (int ib = 0; ib < 16; ib++) {
        scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        if (fabsf(scales[ib]) > max_abs) { max_abs = fabsf(scales[ib]); max_scale = scales[ib]; }
    }
    if (max_abs < 1e-15f) {
        memset(y, 0, sizeof *y);
        return;
    }
    float iscale = -128.f / max_scale;
    y->d = pika_fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < 16; ib++) {
        int s = nearest_int(iscale * scales[ib]);
        y->scales[ib] = (int8_t)(s > 127 ? 127 : s < -128 ? -128 : s);
    }
    for (int j = 0; j < 16; j++) {
        float d = h2f(y->d) * y->scales[j];
        if (!d) continue;
        for (int ii = 0; ii < 16; ii++) {
            int l = nearest_int(x[16 * j + ii] / d);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            L[16 * j + ii] = (int8_t)(l + 32);
        }
    }
    for (int j = 0; j < 256; j += 128) {
        uint8_t *ql = y->ql + j / 2, *qh = y->qh + j / 4;
        for (int l = 0; l < 32; l++) {
            int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
            ql[l] = (uint8_t)(q1 | (q3 << 4));
            ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
            qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                              ((L[j + l + 96] >> 4) << 6));
        }
    }
}

int pika_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    if (!pika_type_supported(type)) return pika_set_error("cannot quantize to type %s (%u)", pika_type_name(type), type);
    int bl = TYPES[type].blck;
    if (n < 0 || n % bl) return pika_set_error("row of %lld elements is not a multiple of the %s block size %d", (long long)n, TYPES[type].name, bl);
    int64_t nb = n / bl;
    switch (type) {
    case PIKA_TYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case PIKA_TYPE_F16: { uint16_t *d = dst; for (int64_t i = 0; i < n; i++) d[i] = pika_fp32_to_fp16(src[i]); } break;
    case PIKA_TYPE_BF16: { uint16_t *d = dst; for (int64_t i = 0; i < n; i++) d[i] = pika_fp32_to_bf16(src[i]); } break;
    case PIKA_TYPE_Q4_0: for (int64_t i = 0; i < nb; i++) q_q4_0(src + 32 * i, (blk_q4_0 *)dst + i); break;
    case PIKA_TYPE_Q4_1: for (int64_t i = 0; i < nb; i++) q_q4_1(src + 32 * i, (blk_q4_1 *)dst + i); break;
    case PIKA_TYPE_Q5_0: for (int64_t i = 0; i < nb; i++) q_q5_0(src + 32 * i, (blk_q5_0 *)dst + i); break;
    case PIKA_TYPE_Q5_1: for (int64_t i = 0; i < nb; i++) q_q5_1(src + 32 * i, (blk_q5_1 *)dst + i); break;
    case PIKA_TYPE_Q8_0: for (int64_t i = 0; i < nb; i++) q_q8_0(src + 32 * i, (blk_q8_0 *)dst + i); break;
    case PIKA_TYPE_Q4_K: for (int64_t i = 0; i < nb; i++) q_q4_K(src + 256 * i, (blk_q4_K *)dst + i); break;
    case PIKA_TYPE_Q5_K: for (int64_t i = 0; i < nb; i++) q_q5_K(src + 256 * i, (blk_q5_K *)dst + i); break;
    case PIKA_TYPE_Q6_K: for (int64_t i = 0; i < nb; i++) q_q6_K(src + 256 * i, (blk_q6_K *)dst + i); break;
    default: return pika_set_error("cannot quantize to type %s", pika_type_name(type));
    }
    return 0;
}
