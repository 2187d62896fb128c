/* gemm.h — single-threaded F32 matrix product for prefill: C = A · Bᵀ ("NT"), row-major.
 *
 *   C[i*ldc + j] = sum_p A[i*lda + p] * B[j*ldb + p]     i < n, j < m, p < k
 *
 * A is [n, k] (activations), B is [m, k] (weights, one row per output), C is [n, m] and is
 * overwritten (beta = 0). Same result as cblas_sgemm(RowMajor, NoTrans, Trans, n, m, k, 1, A, lda,
 * B, ldb, 0, C, ldc) up to rounding (the sum order differs). On CPUs with AVX-512 it runs a
 * packed AVX-512 kernel; on AVX2-only CPUs (or PIKA_SIMD=avx2) cblas_sgemm, or with PIKA_GEMM_AVX2=1
 * pika's packed AVX2/FMA kernel (6 x 16 tiles; slower than OpenBLAS's so far); with PIKA_SIMD=scalar
 * cblas_sgemm. Thread-safe: several threads may call it at once (each uses its own packing
 * buffers, ~350 KB per thread, allocated on first use and freed when the thread exits).
 */
#ifndef PIKA_GEMM_H
#define PIKA_GEMM_H

#include <stddef.h>
#include <stdint.h>

void pika_sgemm_nt(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

/* The same product with B's rows stored in a ggml type (quant.h; F32 included): B row j starts at
 * (const char *)B + j * row_bytes, k is a multiple of the type's block size. Each packed panel of B is
 * dequantized straight from those rows (per k block of 256, into an L1-sized buffer), so the weights are
 * read once in their own format and never copied whole to F32. Only pika's own kernels do this
 * (pika_sgemm_nt_typed_native): returns 0, or -1 when they cannot run here (no AVX2/AVX-512 kernel,
 * an unsupported type) and the caller must dequantize and call pika_sgemm_nt. */
int pika_sgemm_nt_typed(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B, size_t row_bytes,
                        float *C, int ldc);
/* The typed product in BF16: A and B rounded to BF16 (8-bit mantissa, round to nearest even) inside
 * the packers, products summed in F32 by vdpbf16ps (AVX512_BF16: pika_simd_has_avx512_bf16), twice the
 * multiply rate of the F32 kernel. An approximation (relative error of each product ~2^-8), used for
 * prefill only when asked (pika_ctx_set_prefill_bf16). 0, or -1 when the CPU cannot run it. */
int pika_sgemm_nt_typed_bf16(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B,
                             size_t row_bytes, float *C, int ldc);
/* The typed product in 8-bit integers: A's rows quantized to blocks of 32 (pika_quantize_act_q8: the
 * q8 decode path's activations), B's rows (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) as their
 * integer levels, products summed in int32 (AVX512_VNNI vpdpbusd, else AVX2 vpmaddubsw + vpmaddwd, Q8_0
 * as int16 pairs by vpmaddwd: the same exact integer sums) and the block scales applied in F32
 * (pika_sgemm_nt_q8_native says where it runs). An approximation by the activations' 8-bit rounding,
 * used for prefill only when asked (pika_ctx_set_prefill). 0, or -1 when it cannot run here. */
int pika_sgemm_nt_typed_q8(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B, size_t row_bytes,
                           float *C, int ldc);
/* The same with A already quantized (what a caller multiplying one A by several weights does once):
 * row i's levels at Aq + i*k, its k/32 scales at Ad + i*(k/32), its k/16 level sums at As16 + i*(k/16),
 * as pika_quantize_act_q8_levels writes them. */
int pika_sgemm_nt_typed_q8a(int n, int m, int k, const int8_t *Aq, const float *Ad, const int32_t *As16, uint32_t type,
                            const void *B, size_t row_bytes, float *C, int ldc);
/* 1 when pika_sgemm_nt_typed_q8 runs for weights of this type: a quantized type and the AVX2 level or
 * above (the VNNI kernel where the level is AVX-512 and the CPU has AVX512_VNNI, the AVX2 kernel else). */
int pika_sgemm_nt_q8_native(uint32_t type);
/* Attention's products, in a fixed summation order (each C element: k in blocks of 256 from k = 0, each
 * block in k order, blocks added in order; never a shape-dependent kernel), so a value depends only on
 * its own row, column and k: what makes prefill attention independent of how a sequence is split or
 * packed. B has two segments of F32 rows ldb floats apart: rows r < split at B1 + r*ldb, the rest at
 * B2 + (r - split)*ldb (a cached prefix and a sequence's own rows).
 *   nt: C[n, m] = A[n, k] · Bᵀ, B = [m, k] (e.g. scores = Q · Kᵀ)
 *   nn: C[n, m] = A[n, k] · B,  B = [k, m] (e.g. out = P · V) */
void pika_sgemm_nt_split(int n, int m, int k, const float *A, int lda, const float *B1, int split, const float *B2,
                         int ldb, float *C, int ldc);
void pika_sgemm_nn_split(int n, int m, int k, const float *A, int lda, const float *B1, int split, const float *B2,
                         int ldb, float *C, int ldc);
/* 1 when pika_sgemm_nt_typed runs: AVX-512, or AVX2 with pika's AVX2 kernel turned on (PIKA_GEMM_AVX2=1). */
int pika_sgemm_nt_typed_native(void);

/* 1 when pika_sgemm_nt uses its AVX-512 kernel, 0 when it falls back to cblas_sgemm. */
int pika_sgemm_nt_avx512(void);
/* 1 when it uses its AVX2/FMA kernel (AVX2 level and the kernel turned on), 0 otherwise. */
int pika_sgemm_nt_avx2(void);
/* Turn pika's AVX2 kernel on or off for the AVX2 level (default: off unless PIKA_GEMM_AVX2=1). */
void pika_sgemm_use_avx2_kernel(int on);

#endif
