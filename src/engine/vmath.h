/* vmath.h — engine-internal vector math for the forward pass: exp, SwiGLU, softmax rows.
 *
 * One exp formula (range reduction by ln 2, degree-5 polynomial, exponent bits; ~2 ulp on
 * [-87, 88], arguments clamped there) computed with the same IEEE operations on every path (AVX-512
 * lanes, AVX2 lanes, scalar fmaf tails), so a value gets bit for bit the same result wherever it sits
 * in a row and whichever SIMD level runs: batched decode stays bit-identical to single decode.
 */
#ifndef PIKA_ENGINE_VMATH_H
#define PIKA_ENGINE_VMATH_H

#include <stddef.h>

/* exp(x), x clamped to [-87, 88] (the scalar form of the vector kernels). */
float pika_vm_expf(float x);
/* g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i], i < n. */
void pika_vm_swiglu(float *g, const float *u, size_t n);
/* s[i] = exp(s[i] - mx) for i < n; returns their sum (float lanes, fixed order for a given n). */
float pika_vm_exp_shift_sum(float *s, int n, float mx);
/* In place: s[i] = exp(s[i] - max) / sum over i < n (the softmax of attention rows). */
void pika_vm_softmax(float *s, int n);
/* s[i] *= f, i < n. */
void pika_vm_scale(float *s, int n, float f);
/* max of s[0..n) (-INFINITY for n = 0). */
float pika_vm_max(const float *s, int n);

#endif
