/* gemm.h — single-threaded F32 matrix product for prefill: C = A · Bᵀ ("NT"), row-major.
 *
 *   C[i*ldc + j] = sum_p A[i*lda + p] * B[j*ldb + p]     i < n, j < m, p < k
 *
 * A is [n, k] (activations), B is [m, k] (weights, one row per output), C is [n, m] and is
 * overwritten (beta = 0). Same result as cblas_sgemm(RowMajor, NoTrans, Trans, n, m, k, 1, A, lda,
 * B, ldb, 0, C, ldc) up to rounding (the sum order differs). On CPUs with AVX-512 it runs a
 * packed AVX-512 kernel; elsewhere, or with PIKA_SIMD=avx2|scalar in the environment, it calls
 * cblas_sgemm. Thread-safe: several threads may call it at once (each uses its own packing
 * buffers, ~320 KB per thread, allocated on first use and freed when the thread exits).
 */
#ifndef PIKA_GEMM_H
#define PIKA_GEMM_H

void pika_sgemm_nt(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc);

/* 1 when pika_sgemm_nt uses its AVX-512 kernel, 0 when it falls back to cblas_sgemm. */
int pika_sgemm_nt_avx512(void);

#endif
