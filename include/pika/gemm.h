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
 * buffers, ~320 KB per thread, allocated on first use and freed when the thread exits).
 */
#ifndef PIKA_GEMM_H
#define PIKA_GEMM_H

void pika_sgemm_nt(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

/* 1 when pika_sgemm_nt uses its AVX-512 kernel, 0 when it falls back to cblas_sgemm. */
int pika_sgemm_nt_avx512(void);
/* 1 when it uses its AVX2/FMA kernel (AVX2 level and the kernel turned on), 0 otherwise. */
int pika_sgemm_nt_avx2(void);
/* Turn pika's AVX2 kernel on or off for the AVX2 level (default: off unless PIKA_GEMM_AVX2=1). */
void pika_sgemm_use_avx2_kernel(int on);

#endif
