/* quant.h — ggml tensor types: sizes, dequantization and dot-product kernels.
 *
 * Block layouts are those of ggml (llama.cpp); see src/engine/quant.c for each struct.
 * Every row length n passed here must be a multiple of the type's block size.
 * Kernels have an AVX2/AVX-512 path chosen at run time and a portable path; the
 * *_ref functions are plain scalar code written independently, used by tests.
 */
#ifndef PIKA_QUANT_H
#define PIKA_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum pika_type {
    PIKA_TYPE_F32 = 0, PIKA_TYPE_F16 = 1, PIKA_TYPE_Q4_0 = 2, PIKA_TYPE_Q4_1 = 3,
    PIKA_TYPE_Q5_0 = 6, PIKA_TYPE_Q5_1 = 7, PIKA_TYPE_Q8_0 = 8, PIKA_TYPE_Q8_1 = 9,
    PIKA_TYPE_Q2_K = 10, PIKA_TYPE_Q3_K = 11, PIKA_TYPE_Q4_K = 12, PIKA_TYPE_Q5_K = 13,
    PIKA_TYPE_Q6_K = 14, PIKA_TYPE_Q8_K = 15, PIKA_TYPE_BF16 = 30,
    PIKA_TYPE_COUNT = 40
};

/* "F32", "Q4_K", ... or "type<N>" for unknown ids (static buffer for unknown ones is not used:
 * unknown ids return "unknown"). */
const char *pika_type_name(uint32_t type);
/* Elements per block (1 for F32/F16/BF16); 0 for unknown types. */
int pika_type_block_elems(uint32_t type);
/* Bytes per block; 0 for unknown types. */
size_t pika_type_block_bytes(uint32_t type);
/* 1 when pika can dequantize and multiply this type. */
int pika_type_supported(uint32_t type);
/* Bytes taken by a row of n elements (n multiple of the block size). */
size_t pika_row_bytes(uint32_t type, int64_t n);

/* dst[0..n) = dequantized src row. Fast path (SIMD when available). */
void pika_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);
/* Same, scalar reference code written independently of the fast kernels (tests only). */
void pika_dequantize_row_ref(uint32_t type, const void *src, float *dst, int64_t n);

/* Dot product of one weight row (type) with an F32 vector x, n elements, computed in F32 as
 * if the row had been dequantized first (exact-F32 semantics, up to summation order). */
float pika_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n);

/* y[r] = dot(row r of W, x) for r in [r0, r1): W has rows of n elements of the given type,
 * row stride pika_row_bytes(type, n). The matvec used by decode. */
void pika_matvec(uint32_t type, const void *W, const float *x, float *y, int64_t n, int64_t r0, int64_t r1);

/* ---- integer dot products against 8-bit activations (the fast decode path) ----
 * The activation row x (n floats, n a multiple of 32) is quantized once per matmul into blocks of
 * 32: scale d = max|x|/127, q = round(x/d) in [-127, 127], plus the block's sums of q (ggml's Q8_0 with
 * sums, one scale per 32 elements for every weight type, also K-quants). Weight rows of Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K are then multiplied with integer dot products (AVX2
 * maddubs/madd, AVX-512 VNNI vpdpbusd where present) and the block scales applied in F32. This
 * approximates the exact-F32 dot (pika_vec_dot_f32) by the activation rounding error only
 * (README: accuracy). pika_type_has_q8_dot(type) says which weight types have these kernels. */
int pika_type_has_q8_dot(uint32_t type);
/* 1 when the decode matvec should use the q8 kernels for this type on the current SIMD level: they
 * exist and are faster than the exact kernel there (the exception: Q4_K on AVX-512, whose exact
 * kernel is faster). */
int pika_q8_preferred(uint32_t type);
/* Bytes of the quantized form of an n-element activation row. */
size_t pika_q8_act_bytes(int64_t n);
/* Quantize x[0..n) into xq (pika_q8_act_bytes(n) bytes). */
void pika_quantize_act_q8(const float *x, void *xq, int64_t n);
/* Dot product of one weight row with a quantized activation row (fast path chosen at run time). */
float pika_vec_dot_q8(uint32_t type, const void *row, const void *xq, int64_t n);
/* Same, plain scalar code written independently of the SIMD kernels (tests only; the scalar path). */
float pika_vec_dot_q8_ref(uint32_t type, const void *row, const void *xq, int64_t n);
/* y[r] = pika_vec_dot_q8(row r of W, xq) for r in [r0, r1) (decode matvec, quantized activations). */
void pika_matvec_q8(uint32_t type, const void *W, const void *xq, float *y, int64_t n, int64_t r0, int64_t r1);
/* Force a kernel family of the q8 dots (tests): 0 auto, 1 AVX2 maddubs even where VNNI exists. */
void pika_q8_force_no_vnni(int on);
/* Name of the q8 dot kernels pika_vec_dot_q8 uses now: "avx512-vnni", "avx2", "scalar". */
const char *pika_q8_path(void);

/* ---- 8-bit levels for the integer prefill GEMM (pika_sgemm_nt_typed_q8) ----
 * A row of Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q4_K/Q5_K/Q6_K as signed levels v[n] (int8) with one scale per
 * group of G elements (G = pika_type_levels_group: 32, or 16 for Q6_K) and one offset per 32
 * elements (0 unless pika_type_levels_have_min): w[e] = d[e/G] * v[e] + m[e/32], exactly the
 * dequantized value up to F32 rounding of the scale products. n: whole blocks of the type. */
int pika_type_levels_group(uint32_t type);
int pika_type_levels_have_min(uint32_t type);
/* the offset between the stored unsigned level and v (8 Q4_0, 16 Q5_0, 32 Q6_K, else 0): v + offset >= 0 */
int pika_type_levels_offset(uint32_t type);
void pika_unpack_levels(uint32_t type, const void *row, int64_t n, int8_t *v, float *d, float *m);
/* Same, plain scalar code from the block layouts (tests). */
void pika_unpack_levels_ref(uint32_t type, const void *row, int64_t n, int8_t *v, float *d, float *m);
/* pika_quantize_act_q8 as separate arrays: q[n] levels, d[n/32] scales, s16[n/16] sums of the levels
 * over each 16 elements (n a multiple of 32). */
void pika_quantize_act_q8_levels(const float *x, int64_t n, int8_t *q, float *d, int32_t *s16);

/* Quantize a float row into the given type (round-to-nearest like ggml's reference quantizers).
 * Supported targets: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Returns 0, or -1
 * + error for an unsupported type. Used by the GGUF writer (tests, benchmarks, trainer). */
int pika_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Name of the SIMD path selected at run time: "avx512", "avx2" or "scalar". The environment
 * variable PIKA_SIMD=avx2|scalar, read once, caps the automatic choice. */
const char *pika_simd_path(void);
/* Force the portable path (tests compare paths). 0 = auto. */
void pika_simd_force_scalar(int on);
/* Select a path by name: "avx512", "avx2", "scalar", or NULL/"auto" for the best one this CPU
 * has. Returns 0, or -1 + error when the CPU cannot run it (tests and benchmarks loop over paths).
 * Process-wide; not meant to be changed while other threads run kernels. */
int pika_simd_set_path(const char *name);

#endif
