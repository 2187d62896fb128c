/* gemm.c — owns pika_sgemm_nt: C[n, m] = A[n, k] · B[m, k]ᵀ in F32, single-threaded, for prefill, and
 * its typed forms: B's rows in a ggml weight type (pika_sgemm_nt_typed), optionally in BF16
 * (pika_sgemm_nt_typed_bf16).
 *
 * AVX-512 path (GotoBLAS-style blocking, all sizes in floats):
 *   for pc over k in blocks of KC (256):                       C += A[:, pc..] · B[:, pc..]ᵀ
 *     for ic over n in blocks of MC (280 = 20 · MR):
 *       pack A[ic.., pc..] into Ap: panels of <= MR (14) rows, k-major Ap[panel][p][0..MR) (≤ 280 KB, L2)
 *       for jr over m in panels of NR (32):
 *         pack B[jr.., pc..] into Bp, k-major, zero-padded            Bp[p][0..NR)          (32 KB, L1)
 *         (typed B: F16 rows converted in the packer's loads; other types dequantized per k block
 *          into Bt [NR, KC] first; the next panel's rows are prefetched while this one is multiplied)
 *         for each row panel of Ap: micro-kernel
 * The micro-kernel keeps a 14 x 32 tile of C in 28 zmm accumulators; each k step loads two zmm
 * of Bp and broadcasts 14 floats of Ap (one FMA pair per row). The first k block stores the
 * tile, later blocks add to C. Panels of fewer rows use kernels specialized for 1..13 rows; column
 * edges (m % 32) use masked loads/stores; k edges are handled by the packers (any kc). B
 * and A are packed with 16 x 16 in-register transposes. The rows of an n block are split into
 * panels of balanced height (16 -> 8 + 8). For n < 4 packing B would cost more than the product, so a
 * second kernel (sgemm_dot) computes 3 x 8 tiles of dot products straight from A and B.
 * The BF16 path (AVX512_BF16) has the same blocking with k pairs as 32-bit units and vdpbf16ps.
 * Packing buffers are per thread (pthread key, freed at thread exit), so concurrent calls are safe.
 * AVX2 level (no AVX-512, or PIKA_SIMD=avx2): cblas_sgemm by default, because OpenBLAS's Haswell
 * kernel is still faster than pika's own 6 x 16 AVX2/FMA kernel below, even with the typed B's
 * dequantization into the panels (bench_engine with PIKA_SIMD=avx2); PIKA_GEMM_AVX2=1 (or
 * pika_sgemm_use_avx2_kernel) selects pika's. Scalar: cblas.
 * 8-bit integer products (pika_sgemm_nt_typed_q8, q8 prefill): AVX512_VNNI vpdpbusd kernel (6 x 32 tile)
 * where the level is AVX-512 and the CPU has VNNI, else an AVX2 vpmaddubsw + vpmaddwd kernel (4 x 16).
 */
#include "pika/gemm.h"
#include "pika/quant.h"
#include "pika/util.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define PIKA_X86 1
#include <immintrin.h>
#endif

static void sgemm_blas(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
}

#ifdef PIKA_X86

enum {
    MR = 14,          /* rows of C per micro-tile (broadcasts from Ap) */
    NR = 32,          /* columns of C per micro-tile (two zmm of Bp) */
    KC = 256,         /* k block */
    MC = 20 * MR,     /* n block (rows of A packed at once) */
    AP_FLOATS = MC * KC,
    BP_FLOATS = NR * KC,
    BT_FLOATS = NR * KC, /* dequantized rows of one B panel before packing (typed B) */
};

/* ---------------------------------------------------------------- per-thread buffers */

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static int g_key_ok;

static void key_init(void) { g_key_ok = pthread_key_create(&g_key, free) == 0; }

/* Ap (AP_FLOATS), Bp (BP_FLOATS), then Bt (BT_FLOATS), 64-byte aligned; NULL when unavailable. */
static float *thread_buf(void) {
    pthread_once(&g_key_once, key_init);
    if (!g_key_ok) return NULL;
    float *buf = pthread_getspecific(g_key);
    if (buf) return buf;
    buf = aligned_alloc(64, sizeof(float) * (AP_FLOATS + BP_FLOATS + BT_FLOATS));
    if (!buf) return NULL;
    if (pthread_setspecific(g_key, buf) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---------------------------------------------------------------- the B operand
 * B is either F32 rows (type PIKA_TYPE_F32, row stride ldb floats) or rows of a ggml type (quant.h)
 * with a byte stride: a panel's rows are then dequantized, k block by k block, into Bt (NR x KC,
 * L1/L2-resident) and packed from there, so no F32 copy of the whole B ever exists. k blocks start
 * at multiples of KC (256), a multiple of every block size, so each slice is whole blocks. */
typedef struct {
    uint32_t type;
    const uint8_t *data;
    size_t row_bytes;
    /* two-segment F32 operands of attention (pika_sgemm_nt_split / _nn_split), else kind BK_TYPED:
     * row r of B (NT: the j rows; NN: the k rows) is seg1 + r*ld for r < split, seg2 + (r-split)*ld after */
    int kind, split, ld;
    const float *seg1, *seg2;
} bsrc;

enum { BK_TYPED = 0, BK_NT2 = 1, BK_NN2 = 2 };

static inline const float *seg_row(const bsrc *b, int r) {
    return r < b->split ? b->seg1 + (size_t)r * b->ld : b->seg2 + (size_t)(r - b->split) * b->ld;
}

/* Rows jr..jr+nr of B, k range [pc, pc+kc), as F32 rows: returns the pointer and sets *ld; typed
 * rows are dequantized into bt (rows KC floats apart), two-segment rows copied there. */
static const float *b_rows(const bsrc *b, int jr, int nr, int pc, int kc, float *bt, int *ld) {
    if (b->kind == BK_NT2) {
        for (int j = 0; j < nr; j++) memcpy(bt + (size_t)j * KC, seg_row(b, jr + j) + pc, sizeof(float) * (size_t)kc);
        *ld = KC;
        return bt;
    }
    if (b->type == PIKA_TYPE_F32) {
        *ld = (int)(b->row_bytes / sizeof(float));
        return (const float *)(b->data + (size_t)jr * b->row_bytes) + pc;
    }
    const size_t off = pika_row_bytes(b->type, pc);
    for (int j = 0; j < nr; j++)
        pika_dequantize_row(b->type, b->data + (size_t)(jr + j) * b->row_bytes + off, bt + (size_t)j * KC, kc);
    *ld = KC;
    return bt;
}

/* NN operand (BK_NN2): Bp[p*nrp + j] = B[pc+p][jr+j] for j < nr (0 up to nrp): rows copied, no transpose */
static void pack_nn(const bsrc *b, int jr, int nr, int pc, int kc, float *Bp, int nrp) {
    for (int p = 0; p < kc; p++) {
        float *d = Bp + (size_t)p * nrp;
        memcpy(d, seg_row(b, pc + p) + jr, sizeof(float) * (size_t)nr);
        if (nr < nrp) memset(d + nr, 0, sizeof(float) * (size_t)(nrp - nr));
    }
}

/* Ask for the next panel's rows of B (their slice [pc, pc+kc)) while this panel is multiplied: the
 * slices are short runs far apart (one per weight row), which the hardware prefetchers start late.
 * Rows [nr*part/parts, nr*(part+1)/parts) of the panel: the requests are spread over the kernel calls. */
static void b_prefetch(const bsrc *b, int jr, int nr, int pc, int kc, int part, int parts) {
    if (b->kind != BK_TYPED) return;
    size_t off, len;
    if (b->type == PIKA_TYPE_F32) {
        off = (size_t)pc * sizeof(float);
        len = (size_t)kc * sizeof(float);
    } else {
        off = pika_row_bytes(b->type, pc);
        len = pika_row_bytes(b->type, kc);
    }
    for (int j = nr * part / parts; j < nr * (part + 1) / parts; j++) {
        const char *r = (const char *)b->data + (size_t)(jr + j) * b->row_bytes + off;
        for (size_t q = 0; q < len; q += 64) __builtin_prefetch(r + q, 0, 3);
    }
}

/* ---------------------------------------------------------------- AVX-512 kernels */

#define T512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#define INLINE512 static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

/* 16 x 16 transpose: on return r[j] holds column j of the input rows r[0..15]. */
INLINE512 void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
#pragma GCC unroll 16
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c], lane L: rows 4g..4g+3 of column 4L + c */
#pragma GCC unroll 16
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
#pragma GCC unroll 16
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);      /* column c      (lane 0) */
        r[8 + c] = _mm512_shuffle_f32x4(v0, v2, 0xDD);  /* column 8 + c  (lane 2) */
        r[4 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);  /* column 4 + c  (lane 1) */
        r[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xDD); /* column 12 + c (lane 3) */
    }
}

/* d[q*stride + lane] = r[q][lane] for q < w, lanes in mask. Full blocks (w == 16) index r only with
 * constants, so r stays in registers; the k tail goes through a stack copy. */
INLINE512 void store_cols(const __m512 r[16], int w, float *d, int stride, __mmask16 mask) {
    if (w == 16) {
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(d + (size_t)q * stride, mask, r[q]);
        return;
    }
    float tmp[16][16] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) _mm512_store_ps(tmp[q], r[q]);
    for (int q = 0; q < w; q++) _mm512_mask_storeu_ps(d + (size_t)q * stride, mask, _mm512_load_ps(tmp[q]));
}

/* Ap[p*MR + ii] = A[ii*lda + p] for ii < mr (<= MR), p < kc; rows mr..MR-1 of Ap are left unset (the
 * kernel for mr rows never reads them). 16 x 16 transposes, each column stored as 14 lanes. */
T512 static void pack_a(int mr, int kc, const float *A, int lda, float *Ap) {
    for (int p0 = 0; p0 < kc; p0 += 16) {
        int w = kc - p0 < 16 ? kc - p0 : 16;
        __mmask16 mk = (__mmask16)((1u << w) - 1u);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < mr ? _mm512_maskz_loadu_ps(mk, A + (size_t)i * lda + p0) : _mm512_setzero_ps();
        transpose16(r);
        float *d = Ap + (size_t)p0 * MR;
        store_cols(r, w, d, MR, (__mmask16)((1u << MR) - 1u));
    }
}

/* 16 elements of a row from p0 (lanes in mk, 0 elsewhere) as floats: F32 rows, or F16 rows converted
 * in the register (vcvtph2ps). f16 is a constant at every call site. */
INLINE512 __m512 load16(const void *row, int f16, int p0, __mmask16 mk) {
    return f16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, (const uint16_t *)row + p0))
               : _mm512_maskz_loadu_ps(mk, (const float *)row + p0);
}

/* Bp[p*NR + jj] = B[jj*ld + p] for jj < nr, p < kc; 0 for nr <= jj < NR. B's rows are F32, or F16 (f16 = 1:
 * F16 weights go from the mmapped file into Bp in one step); ld in elements. */
INLINE512 void pack_b_rows(int nr, int kc, const void *B, int ld, int f16, float *Bp) {
    const size_t esz = f16 ? 2 : 4;
    for (int g = 0; g < NR / 16; g++) {
        int rows = nr - 16 * g; /* valid rows in this half */
        if (rows <= 0) {
            for (int p = 0; p < kc; p++) _mm512_store_ps(Bp + (size_t)p * NR + 16 * g, _mm512_setzero_ps());
            continue;
        }
        if (rows > 16) rows = 16;
        const char *b = (const char *)B + (size_t)16 * g * ld * esz;
        for (int p0 = 0; p0 < kc; p0 += 16) {
            int w = kc - p0 < 16 ? kc - p0 : 16;
            __mmask16 mk = (__mmask16)((1u << w) - 1u);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? load16(b + (size_t)i * ld * esz, f16, p0, mk) : _mm512_setzero_ps();
            transpose16(r);
            store_cols(r, w, Bp + (size_t)p0 * NR + 16 * g, NR, 0xFFFF);
        }
    }
}

T512 static void pack_b(int nr, int kc, const float *B, int ldb, float *Bp) { pack_b_rows(nr, kc, B, ldb, 0, Bp); }
T512 static void pack_b_f16(int nr, int kc, const uint16_t *B, int ldh, float *Bp) { pack_b_rows(nr, kc, B, ldh, 1, Bp); }

/* C[ROWS x 32] := (C +) the tile's accumulators c0 (columns 0..15) and c1 (16..31); m0/m1 mask the
 * columns of a partial panel. Shared by the F32 and BF16 kernels. */
INLINE512 void store_tile(const int ROWS, __m512 *c0, __m512 *c1, float *C, int ldc, __mmask16 m0, __mmask16 m1,
                          int accum) {
    if (m0 == 0xFFFF && m1 == 0xFFFF) {
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            float *c = C + (size_t)i * ldc;
            if (accum) {
                c0[i] = _mm512_add_ps(c0[i], _mm512_loadu_ps(c));
                c1[i] = _mm512_add_ps(c1[i], _mm512_loadu_ps(c + 16));
            }
            _mm512_storeu_ps(c, c0[i]);
            _mm512_storeu_ps(c + 16, c1[i]);
        }
    } else {
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            float *c = C + (size_t)i * ldc;
            if (accum) {
                c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, c));
                c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, c + 16));
            }
            _mm512_mask_storeu_ps(c, m0, c0[i]);
            _mm512_mask_storeu_ps(c + 16, m1, c1[i]);
        }
    }
}

/* C[ROWS x nr tile] (+)= Ap-panel · Bp over kc. ROWS is a compile-time constant at every call
 * site, so the loops unroll and the 2·ROWS accumulators live in registers. m0/m1: column masks
 * for the two 16-column halves (all ones when nr == 32). */
INLINE512 void kernel(const int ROWS, int kc, const float *Ap, const float *Bp, float *C, int ldc, __mmask16 m0,
                      __mmask16 m1, int accum) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    const float *a = Ap, *b = Bp;
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            __m512 av = _mm512_set1_ps(a[i]);
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
    store_tile(ROWS, c0, c1, C, ldc, m0, m1, accum);
}

#define KCASE(r) \
    case r: kernel(r, kc, Ap, Bp, C, ldc, m0, m1, accum); break;

T512 static void kernel_rows(int rows, int kc, const float *Ap, const float *Bp, float *C, int ldc, __mmask16 m0,
                             __mmask16 m1, int accum) {
    switch (rows) {
        KCASE(14) KCASE(13) KCASE(12) KCASE(11) KCASE(10) KCASE(9) KCASE(8)
        KCASE(7) KCASE(6) KCASE(5) KCASE(4) KCASE(3) KCASE(2) KCASE(1)
        default: break;
    }
}

/* ---------------------------------------------------------------- AVX512_BF16 path (optional)
 * The same blocking with both operands rounded to BF16 (round to nearest even) and multiplied by
 * vdpbf16ps, which adds the products of a pair of k values into each F32 lane: twice the multiplies
 * per instruction of the F32 kernel. Panels hold k pairs as 32-bit units: Ap[pp*MR + i] = (A[i][2pp],
 * A[i][2pp+1]), Bp[pp*NR + j] = (B[j][2pp], B[j][2pp+1]); odd k ends are padded with 0. Converting a
 * row's 32 floats to BF16 gives its 16 pairs in k order, so packing is the same 16 x 16 transpose
 * of 32-bit units as the F32 packers. Accumulation stays F32; the error is BF16's rounding of the inputs
 * (8-bit mantissa), an opt-in precision for prefill (pika_ctx_set_prefill_bf16). */

#define TBF __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma")))
#define INLINEBF static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,avx512bw,avx512bf16,avx2,fma")))

/* k values [0, 16) in lo and [16, 32) in hi -> 16 BF16 pairs as the bits of one zmm */
INLINEBF __m512 bf_pairs(__m512 lo, __m512 hi) { return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, lo)); }

INLINEBF __mmask16 kmask(int w) { return w >= 16 ? (__mmask16)0xFFFF : w <= 0 ? (__mmask16)0 : (__mmask16)((1u << w) - 1u); }

/* rows r < rows of a 16-row group, k block [0, kc) of F32 (f16 = 0) or F16 (f16 = 1) rows, ld elements
 * apart -> pairs into d (stride floats between k pairs, lanes in mask) */
INLINEBF void bf_pack16(int rows, int kc, const void *X, int ld, int f16, float *d, int stride, __mmask16 lanes) {
    const size_t esz = f16 ? 2 : 4;
    for (int p0 = 0; p0 < kc; p0 += 32) {
        int w = kc - p0 < 32 ? kc - p0 : 32;
        __mmask16 m0 = kmask(w), m1 = kmask(w - 16);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            const char *x = (const char *)X + (size_t)i * ld * esz;
            r[i] = i < rows ? bf_pairs(load16(x, f16, p0, m0), load16(x, f16, p0 + 16, m1)) : _mm512_setzero_ps();
        }
        transpose16(r);
        store_cols(r, (w + 1) / 2, d + (size_t)(p0 / 2) * stride, stride, lanes);
    }
}

TBF static void pack_a_bf(int mr, int kc, const float *A, int lda, float *Ap) {
    bf_pack16(mr, kc, A, lda, 0, Ap, MR, (__mmask16)((1u << MR) - 1u));
}

/* B panel rows jr..jr+nr (nr <= NR), k block [pc, pc+kc) -> Bp pairs; columns nr..NR-1 are 0 */
TBF static void pack_b_bf(const bsrc *B, int jr, int nr, int pc, int kc, float *Bt, float *Bp) {
    const int kc2 = (kc + 1) / 2;
    const float *Bs = NULL;
    int ldb = 0;
    if (B->type != PIKA_TYPE_F16) Bs = b_rows(B, jr, nr, pc, kc, Bt, &ldb);
    for (int g = 0; g < NR / 16; g++) {
        int rows = nr - 16 * g;
        if (rows <= 0) {
            for (int p = 0; p < kc2; p++) _mm512_store_ps(Bp + (size_t)p * NR + 16 * g, _mm512_setzero_ps());
            continue;
        }
        if (rows > 16) rows = 16;
        if (B->type == PIKA_TYPE_F16) {
            const uint16_t *h = (const uint16_t *)(B->data + (size_t)(jr + 16 * g) * B->row_bytes) + pc;
            bf_pack16(rows, kc, h, (int)(B->row_bytes / 2), 1, Bp + 16 * g, NR, 0xFFFF);
        } else {
            bf_pack16(rows, kc, Bs + (size_t)16 * g * ldb, ldb, 0, Bp + 16 * g, NR, 0xFFFF);
        }
    }
}

INLINEBF void kernel_bf(const int ROWS, int kc2, const float *Ap, const float *Bp, float *C, int ldc, __mmask16 m0,
                        __mmask16 m1, int accum) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    const int32_t *a = (const int32_t *)Ap;
    const float *b = Bp;
    for (int p = 0; p < kc2; p++) {
        __m512bh b0 = (__m512bh)_mm512_castps_si512(_mm512_load_ps(b));
        __m512bh b1 = (__m512bh)_mm512_castps_si512(_mm512_load_ps(b + 16));
#pragma GCC unroll 14
        for (int i = 0; i < ROWS; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(a[i]);
            c0[i] = _mm512_dpbf16_ps(c0[i], av, b0);
            c1[i] = _mm512_dpbf16_ps(c1[i], av, b1);
        }
        a += MR;
        b += NR;
    }
    store_tile(ROWS, c0, c1, C, ldc, m0, m1, accum);
}

#define KCASEBF(r) \
    case r: kernel_bf(r, kc2, Ap, Bp, C, ldc, m0, m1, accum); break;

TBF static void kernel_bf_rows(int rows, int kc2, const float *Ap, const float *Bp, float *C, int ldc, __mmask16 m0,
                               __mmask16 m1, int accum) {
    switch (rows) {
        KCASEBF(14) KCASEBF(13) KCASEBF(12) KCASEBF(11) KCASEBF(10) KCASEBF(9) KCASEBF(8)
        KCASEBF(7) KCASEBF(6) KCASEBF(5) KCASEBF(4) KCASEBF(3) KCASEBF(2) KCASEBF(1)
        default: break;
    }
}

/* The AVX-512 driver of both kernels (bf16 = 0: F32, 1: BF16 pairs; a k block of kc then takes
 * kc2 = kc or (kc + 1) / 2 panel rows). */
T512 static void sgemm_avx512(int n, int m, int k, const float *A, int lda, const bsrc *B, float *C, int ldc,
                              float *buf, int bf16) {
    float *Ap = buf, *Bp = buf + AP_FLOATS, *Bt = Bp + BP_FLOATS;
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC, kc2 = bf16 ? (kc + 1) / 2 : kc;
        int accum = pc > 0;
        for (int ic = 0; ic < n; ic += MC) {
            int mc = n - ic < MC ? n - ic : MC;
            /* np panels of balanced height (<= MR): e.g. 16 rows -> 8 + 8, not 14 + 2 (a 2-row
             * kernel has too few independent FMA chains to keep both FMA pipes busy) */
            int np = (mc + MR - 1) / MR;
            for (int q = 0; q < np; q++) {
                int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                const float *a = A + (size_t)(ic + r0) * lda + pc;
                if (bf16) pack_a_bf(r1 - r0, kc, a, lda, Ap + (size_t)q * MR * kc2);
                else pack_a(r1 - r0, kc, a, lda, Ap + (size_t)q * MR * kc2);
            }
            for (int jr = 0; jr < m; jr += NR) {
                int nr = m - jr < NR ? m - jr : NR, ldb;
                if (bf16) {
                    pack_b_bf(B, jr, nr, pc, kc, Bt, Bp);
                } else if (B->kind == BK_NN2) {
                    pack_nn(B, jr, nr, pc, kc, Bp, NR);
                } else if (B->kind == BK_TYPED && B->type == PIKA_TYPE_F16) {
                    pack_b_f16(nr, kc, (const uint16_t *)(B->data + (size_t)jr * B->row_bytes) + pc,
                               (int)(B->row_bytes / 2), Bp);
                } else {
                    const float *Bs = b_rows(B, jr, nr, pc, kc, Bt, &ldb);
                    pack_b(nr, kc, Bs, ldb, Bp);
                }
                const int nnext = jr + NR >= m ? 0 : m - jr - NR < NR ? m - jr - NR : NR;
                __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1u);
                __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u);
                for (int q = 0; q < np; q++) {
                    int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                    if (nnext) b_prefetch(B, jr + NR, nnext, pc, kc, q, np);
                    float *c = C + (size_t)(ic + r0) * ldc + jr;
                    if (bf16) kernel_bf_rows(r1 - r0, kc2, Ap + (size_t)q * MR * kc2, Bp, c, ldc, m0, m1, accum);
                    else kernel_rows(r1 - r0, kc, Ap + (size_t)q * MR * kc, Bp, c, ldc, m0, m1, accum);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- 8-bit integer path (AVX512_VNNI, optional)
 * A's rows quantized to 8-bit blocks of 32 (pika_quantize_act_q8: d = max|x|/127, levels in [-127, 127]),
 * B's rows unpacked to their 8-bit levels (pika_unpack_levels: w = d_g * v + m_b), products summed in
 * int32 by vpdpbusd (four u8 x s8 products per 32-bit lane per instruction), the scales applied in
 * F32 once per group of G k values (32; 16 for Q6_K). The blocking is the F32 path's, with k quads as
 * 32-bit units (as the BF16 path's pairs). Lanes are 16 columns of C, so an int32 accumulator sums a
 * whole group of one column before its scale: per group, G/4 vpdpbusd per (row, 16 columns) and one
 * cvt + mul + fma, against G/16 F32 FMAs (four times the multiply rate, less the scale work).
 * vpdpbusd wants one unsigned operand: B's levels are stored biased (v + 128, as u8) and the bias is
 * removed through A's level sums (each group's int32 accumulator starts at -128 * sum of A's levels).
 *   A panel (MRQ rows, k block kc; units of 32 bits):  Aq[t*MRQ + i]: levels 4t..4t+3 of row i
 *       Ad[b*MRQ + i] = d of block b;  Asd[b*MRQ + i] = d * sum of its levels (for m)
 *       A32[b*MRQ + i] = -128 * sum of block b's levels;  A16[h*MRQ + i]: the same per 16
 *   B panel (32 columns):  Bq[t*32 + j]: biased levels 4t..4t+3 of row j;  Bd[g*32 + j];  Bm[b*32 + j]
 * The error is the activations' rounding to 8 bits (ggml's Q8_0 activations), as the q8 decode path. */

#define TQ8 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx512vnni,avx2,fma")))
#define INLINEQ8 static inline __attribute__((always_inline, target("avx512f,avx512vl,avx512dq,avx512bw,avx512vnni,avx2,fma")))

enum {
    MRQ = 6,                                /* rows of C per micro-tile: 2 x 6 F32 + 2 x 6 int32 accumulators */
    MCQ = 48 * MRQ,                         /* n block */
    QA_UNITS = (KC / 4 + 3 * (KC / 32) + KC / 16) * MRQ, /* one A panel */
    QB_Q = 0, QB_D = KC / 4 * NR, QB_M = QB_D + KC / 16 * NR, QB_UNITS = QB_M + KC / 32 * NR,
};
_Static_assert((int)(MCQ / MRQ) * (int)QA_UNITS <= (int)AP_FLOATS && (int)QB_UNITS <= (int)BP_FLOATS, "q8 panels fit the buffers");
_Static_assert((int)(NR * KC / 4 + NR * (KC / 16 + KC / 32)) <= (int)BT_FLOATS, "q8 unpacked rows fit Bt");

/* The parts of the q8 panels both integer kernels (VNNI, AVX2) share. */

/* rows < mr of pre-quantized A (pika_quantize_act_q8_levels rows: levels q, row i at q + i*k; scales d,
 * k/32 per row; sums s16, k/16 per row), k block [pc, pc+kc) (multiples of 32), panel of `rows` rows:
 * aq[t*rows + i] = levels 4t..4t+3 of row i, ad[b*rows + i] = d, asd[b*rows + i] = d * sum of block b */
static void pack_a_q8_levels(int mr, int rows, int k, int pc, int kc, const int8_t *q, const float *d,
                             const int32_t *s16, int32_t *aq, float *ad, float *asd) {
    for (int i = 0; i < mr; i++) {
        const int8_t *qi = q + (size_t)i * k + pc;
        const float *di = d + (size_t)i * (k / 32) + pc / 32;
        const int32_t *si = s16 + (size_t)i * (k / 16) + pc / 16;
        for (int t = 0; t < kc / 4; t++) memcpy(aq + t * rows + i, qi + 4 * t, 4);
        for (int b = 0; b < kc / 32; b++) {
            ad[b * rows + i] = di[b];
            asd[b * rows + i] = di[b] * (float)(si[2 * b] + si[2 * b + 1]);
        }
    }
}

/* B rows jr..jr+nr of a panel of ncols columns, k block [pc, pc+kc), unpacked into Bt: levels
 * lv[ncols][KC], scales dt[ncols][KC/16], offsets mt[ncols][KC/32]; columns nr.. get level pad, 0, 0 */
static void unpack_b_q8(const bsrc *B, int jr, int nr, int ncols, int pc, int kc, int pad, float *Bt) {
    int8_t *lv = (int8_t *)Bt;
    float *dt = Bt + ncols * KC / 4, *mt = dt + ncols * (KC / 16);
    const size_t off = pika_row_bytes(B->type, pc);
    for (int j = 0; j < ncols; j++) {
        if (j < nr) {
            pika_unpack_levels(B->type, B->data + (size_t)(jr + j) * B->row_bytes + off, kc, lv + (size_t)j * KC,
                               dt + j * (KC / 16), mt + j * (KC / 32));
        } else {
            memset(lv + (size_t)j * KC, pad, (size_t)kc);
            memset(dt + j * (KC / 16), 0, sizeof(float) * (KC / 16));
            memset(mt + j * (KC / 32), 0, sizeof(float) * (KC / 32));
        }
    }
}

/* unpack_b_q8's scales and offsets, k-major: bd[g*ncols + j] per group of G, bm[b*ncols + j] per 32 */
static void pack_b_q8_scales(int G, int ncols, int kc, const float *Bt, float *bd, float *bm) {
    const float *dt = Bt + ncols * KC / 4, *mt = dt + ncols * (KC / 16);
    for (int g = 0; g < kc / G; g++)
        for (int j = 0; j < ncols; j++) bd[g * ncols + j] = dt[j * (KC / 16) + g];
    for (int b = 0; b < kc / 32; b++)
        for (int j = 0; j < ncols; j++) bm[b * ncols + j] = mt[j * (KC / 32) + b];
}

/* one VNNI A panel (layout above), k block [pc, pc+kc) */
static void pack_a_q8(int mr, int k, int pc, int kc, const int8_t *q, const float *d, const int32_t *s16, int32_t *P) {
    int32_t *a32 = P + (KC / 4 + 2 * (KC / 32)) * MRQ, *a16 = a32 + (KC / 32) * MRQ;
    float *ad = (float *)(P + (KC / 4) * MRQ);
    pack_a_q8_levels(mr, MRQ, k, pc, kc, q, d, s16, P, ad, ad + (KC / 32) * MRQ);
    for (int i = 0; i < mr; i++) {
        const int32_t *si = s16 + (size_t)i * (k / 16) + pc / 16;
        for (int b = 0; b < kc / 32; b++) a32[b * MRQ + i] = -128 * (si[2 * b] + si[2 * b + 1]);
        for (int h = 0; h < kc / 16; h++) a16[h * MRQ + i] = -128 * si[h];
    }
}

/* B panel rows jr..jr+nr (nr <= NR), k block [pc, pc+kc) -> Bq, Bd, Bm; columns nr..NR-1 are 0 */
TQ8 static void pack_b_q8(const bsrc *B, int jr, int nr, int pc, int kc, float *Bt, float *Bp) {
    const int8_t *lv = (const int8_t *)Bt; /* [NR][KC] levels */
    unpack_b_q8(B, jr, nr, NR, pc, kc, 0, Bt);
    const __m512i bias = _mm512_set1_epi32((int)0x80808080u);
    int32_t *bq = (int32_t *)Bp + QB_Q;
    for (int g = 0; g < NR / 16; g++)
        for (int t0 = 0; t0 < kc / 4; t0 += 16) {
            int w = kc / 4 - t0 < 16 ? kc / 4 - t0 : 16;
            __mmask16 mk = (__mmask16)((1u << w) - 1u);
            __m512 r[16];
#pragma GCC unroll 16
            for (int i = 0; i < 16; i++)
                r[i] = _mm512_castsi512_ps(_mm512_xor_si512(
                    _mm512_maskz_loadu_epi32(mk, (const int32_t *)(lv + (size_t)(16 * g + i) * KC) + t0), bias));
            transpose16(r);
            store_cols(r, w, (float *)bq + (size_t)t0 * NR + 16 * g, NR, 0xFFFF);
        }
    pack_b_q8_scales(pika_type_levels_group(B->type), NR, kc, Bt, Bp + QB_D, Bp + QB_M);
}

/* C[ROWS x 32 tile] (+)= the A panel P · the B panel over kc; G (32 or 16) and MIN (offsets m) are
 * constants at each call site. */
INLINEQ8 void kernel_q8(const int ROWS, const int G, const int MIN, int kc, const int32_t *P, const float *Bp, float *C,
                        int ldc, __mmask16 m0, __mmask16 m1, int accum) {
    const int32_t *aq = P, *a32 = P + (KC / 4 + 2 * (KC / 32)) * MRQ, *a16 = a32 + (KC / 32) * MRQ;
    const float *ad = (const float *)(P + (KC / 4) * MRQ), *asd = ad + (KC / 32) * MRQ;
    const int32_t *bq = (const int32_t *)Bp + QB_Q;
    const float *bd = Bp + QB_D, *bm = Bp + QB_M;
    __m512 c0[MRQ], c1[MRQ];
#pragma GCC unroll 8
    for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    const int QG = G / 4;
    for (int g = 0; g < kc / G; g++) {
        __m512i s0[MRQ], s1[MRQ];
        const int32_t *bias = (G == 32 ? a32 : a16) + g * MRQ;
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; i++) s0[i] = s1[i] = _mm512_set1_epi32(bias[i]);
#pragma GCC unroll 8
        for (int t = 0; t < QG; t++) {
            const int32_t *b = bq + (size_t)(g * QG + t) * NR, *a = aq + (g * QG + t) * MRQ;
            __m512i w0 = _mm512_load_si512(b), w1 = _mm512_load_si512(b + 16);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) {
                __m512i av = _mm512_set1_epi32(a[i]);
                s0[i] = _mm512_dpbusd_epi32(s0[i], w0, av);
                s1[i] = _mm512_dpbusd_epi32(s1[i], w1, av);
            }
        }
        __m512 d0 = _mm512_load_ps(bd + g * NR), d1 = _mm512_load_ps(bd + g * NR + 16);
        const float *da = ad + (g * G / 32) * MRQ;
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; i++) {
            __m512 sa = _mm512_set1_ps(da[i]);
            c0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0[i]), _mm512_mul_ps(d0, sa), c0[i]);
            c1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1[i]), _mm512_mul_ps(d1, sa), c1[i]);
        }
        if (MIN) {
            __m512 n0 = _mm512_load_ps(bm + g * NR), n1 = _mm512_load_ps(bm + g * NR + 16);
#pragma GCC unroll 8
            for (int i = 0; i < ROWS; i++) {
                __m512 sd = _mm512_set1_ps(asd[g * MRQ + i]);
                c0[i] = _mm512_fmadd_ps(n0, sd, c0[i]);
                c1[i] = _mm512_fmadd_ps(n1, sd, c1[i]);
            }
        }
    }
    store_tile(ROWS, c0, c1, C, ldc, m0, m1, accum);
}

#define KQ8(r, G, MIN) kernel_q8(r, G, MIN, kc, P, Bp, C, ldc, m0, m1, accum)
#define KCASEQ8(r) \
    case r: if (G == 16) KQ8(r, 16, 0); else if (MIN) KQ8(r, 32, 1); else KQ8(r, 32, 0); break;

TQ8 static void kernel_q8_rows(int rows, int G, int MIN, int kc, const int32_t *P, const float *Bp, float *C, int ldc,
                               __mmask16 m0, __mmask16 m1, int accum) {
    switch (rows) {
        KCASEQ8(6) KCASEQ8(5) KCASEQ8(4) KCASEQ8(3) KCASEQ8(2) KCASEQ8(1)
        default: break;
    }
}

TQ8 static void sgemm_q8_avx512(int n, int m, int k, const int8_t *Aq, const float *Ad, const int32_t *As16, const bsrc *B,
                                float *C, int ldc, float *buf) {
    int32_t *Ap = (int32_t *)buf;
    float *Bp = buf + AP_FLOATS, *Bt = Bp + BP_FLOATS;
    const int G = pika_type_levels_group(B->type), MIN = pika_type_levels_have_min(B->type);
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC, accum = pc > 0;
        for (int ic = 0; ic < n; ic += MCQ) {
            int mc = n - ic < MCQ ? n - ic : MCQ, np = (mc + MRQ - 1) / MRQ;
            for (int q = 0; q < np; q++) {
                int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                size_t row = (size_t)(ic + r0);
                pack_a_q8(r1 - r0, k, pc, kc, Aq + row * k, Ad + row * (k / 32), As16 + row * (k / 16),
                          Ap + (size_t)q * QA_UNITS);
            }
            for (int jr = 0; jr < m; jr += NR) {
                int nr = m - jr < NR ? m - jr : NR;
                pack_b_q8(B, jr, nr, pc, kc, Bt, Bp);
                const int nnext = jr + NR >= m ? 0 : m - jr - NR < NR ? m - jr - NR : NR;
                __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1u);
                __mmask16 m1 = nr >= 32 ? 0xFFFF : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u);
                for (int q = 0; q < np; q++) {
                    int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                    if (nnext) b_prefetch(B, jr + NR, nnext, pc, kc, q, np);
                    kernel_q8_rows(r1 - r0, G, MIN, kc, Ap + (size_t)q * QA_UNITS, Bp, C + (size_t)(ic + r0) * ldc + jr,
                                   ldc, m0, m1, accum);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- small n: dot products, no packing
 * For 1..3 rows of A, packing B costs more than the multiply. Instead each 3 x 8 tile of C is 24
 * dot products kept as zmm partial sums over k (16 lanes each): per 16 k, 3 loads of A + 8 loads of
 * B feed 24 FMAs. k is cut into blocks of KD so the tile's 8 rows of B (32 KB) stay in L1; each
 * block's sums are reduced to 8 floats per row and stored (first block) or added to C. Tiles at
 * the n and m edges point their missing rows at row 0 of the tile and do not store them. */

enum { DI = 3, DJ = 8, KD = 1024, SMALL_N = 4 }; /* this path for n < SMALL_N (measured crossover) */

/* The 8 horizontal sums of v[0..7], as one ymm (lane j = sum of v[j]). */
INLINE512 __m256 hsum8(const __m512 v[8]) {
    __m256 h[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        h[j] = _mm256_add_ps(_mm512_castps512_ps256(v[j]),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[j]), 1)));
    __m256 a = _mm256_hadd_ps(h[0], h[1]), b = _mm256_hadd_ps(h[2], h[3]);
    __m256 c = _mm256_hadd_ps(h[4], h[5]), d = _mm256_hadd_ps(h[6], h[7]);
    __m256 x = _mm256_hadd_ps(a, b), y = _mm256_hadd_ps(c, d); /* x: sums 0..3 split over both 128-bit halves */
    return _mm256_add_ps(_mm256_permute2f128_ps(x, y, 0x20), _mm256_permute2f128_ps(x, y, 0x31));
}

/* C[DI x DJ tile] (+)= A rows a[0..2] · B rows b[0..7] over kd; rows i >= ri and columns j >= rj are
 * computed on duplicate rows and not stored. */
T512 static void dot_tile(int kd, const float *const a[DI], const float *const b[DJ], int ri, int rj, float *C, int ldc,
                          int accum) {
    __m512 acc[DI][DJ];
#pragma GCC unroll 8
    for (int i = 0; i < DI; i++)
#pragma GCC unroll 8
        for (int j = 0; j < DJ; j++) acc[i][j] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 16 <= kd; p += 16) {
        __m512 av[DI];
#pragma GCC unroll 8
        for (int i = 0; i < DI; i++) av[i] = _mm512_loadu_ps(a[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < DJ; j++) {
            __m512 bv = _mm512_loadu_ps(b[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < DI; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (p < kd) {
        __mmask16 mk = (__mmask16)((1u << (kd - p)) - 1u);
        __m512 av[DI];
#pragma GCC unroll 8
        for (int i = 0; i < DI; i++) av[i] = _mm512_maskz_loadu_ps(mk, a[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < DJ; j++) {
            __m512 bv = _mm512_maskz_loadu_ps(mk, b[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < DI; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    __mmask8 ms = (__mmask8)((1u << rj) - 1u);
#pragma GCC unroll 8
    for (int i = 0; i < DI; i++) {
        if (i >= ri) break;
        __m256 sum = hsum8(acc[i]);
        float *c = C + (size_t)i * ldc;
        if (accum) sum = _mm256_add_ps(sum, _mm256_maskz_loadu_ps(ms, c));
        _mm256_mask_storeu_ps(c, ms, sum);
    }
}

T512 static void sgemm_dot(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    for (int pc = 0; pc < k; pc += KD) {
        int kd = k - pc < KD ? k - pc : KD;
        for (int j0 = 0; j0 < m; j0 += DJ) {
            int rj = m - j0 < DJ ? m - j0 : DJ;
            const float *b[DJ];
            for (int j = 0; j < DJ; j++) b[j] = B + (size_t)(j0 + (j < rj ? j : 0)) * ldb + pc;
            for (int i0 = 0; i0 < n; i0 += DI) {
                int ri = n - i0 < DI ? n - i0 : DI;
                const float *a[DI];
                for (int i = 0; i < DI; i++) a[i] = A + (size_t)(i0 + (i < ri ? i : 0)) * lda + pc;
                dot_tile(kd, a, b, ri, rj, C + (size_t)i0 * ldc + j0, ldc, pc > 0);
            }
        }
    }
}


/* ---------------------------------------------------------------- AVX2 + FMA path
 * The same blocking with a 6 x 16 micro-tile (12 ymm accumulators, 2 ymm of Bp, 1 broadcast: 15 of
 * the 16 ymm registers). Ap panels of MR2 (6) rows, Bp panels of NR2 (16) columns, k-major; packing
 * B transposes 8 x 8 blocks in registers. */

enum { MR2 = 6, NR2 = 16, MC2 = 46 * MR2 }; /* MC2 * KC floats of Ap = 276 KB (fits AP_FLOATS): n = 256 is one block */
_Static_assert(MC2 * KC <= AP_FLOATS && NR2 * KC <= BP_FLOATS, "AVX2 panels fit the buffers");

#define T256G __attribute__((target("avx2,fma")))
#define INLINE256 static inline __attribute__((always_inline, target("avx2,fma")))

/* 8 x 8 transpose of r[0..7] in place */
INLINE256 void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g + 0] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
        r[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
    }
}

/* Ap[p*MR2 + i] = A[i*lda + p], i < mr (rows mr..MR2-1 zero), p < kc */
T256G static void pack_a2(int mr, int kc, const float *A, int lda, float *Ap) {
    for (int p = 0; p < kc; p++) {
        float *d = Ap + (size_t)p * MR2;
        for (int i = 0; i < MR2; i++) d[i] = i < mr ? A[(size_t)i * lda + p] : 0.0f;
    }
}

/* Bp[p*NR2 + j] = B[j*ldb + p] for j < nr, 0 for nr <= j < NR2 */
T256G static void pack_b2(int nr, int kc, const float *B, int ldb, float *Bp) {
    int p0 = 0;
    if (nr == NR2)
        for (; p0 + 8 <= kc; p0 += 8)
            for (int g = 0; g < NR2 / 8; g++) {
                __m256 r[8];
                for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(B + (size_t)(8 * g + i) * ldb + p0);
                transpose8(r);
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(Bp + (size_t)(p0 + q) * NR2 + 8 * g, r[q]);
            }
    for (int p = p0; p < kc; p++)
        for (int j = 0; j < NR2; j++) Bp[(size_t)p * NR2 + j] = j < nr ? B[(size_t)j * ldb + p] : 0.0f;
}

/* C[ROWS x nr] (+)= Ap-panel · Bp over kc; ROWS (<= MR2) is a constant at each call site, so the
 * 2·ROWS accumulators stay in registers (every loop over ROWS is unrolled: an indexed one would put
 * the accumulator arrays in memory). */
INLINE256 void kernel2(const int ROWS, int kc, const float *Ap, const float *Bp, float *C, int ldc, int nr, int accum) {
    __m256 c0[MR2], c1[MR2];
#pragma GCC unroll 8
    for (int i = 0; i < ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    const float *a = Ap, *b = Bp;
    for (int p = 0; p < kc; p++, a += MR2, b += NR2) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; i++) {
            __m256 av = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
        }
    }
    if (nr == NR2) {
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; i++) {
            float *c = C + (size_t)i * ldc;
            __m256 v0 = c0[i], v1 = c1[i];
            if (accum) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
            }
            _mm256_storeu_ps(c, v0);
            _mm256_storeu_ps(c + 8, v1);
        }
    } else {
        float tmp[NR2] __attribute__((aligned(32)));
#pragma GCC unroll 8
        for (int i = 0; i < ROWS; i++) {
            float *c = C + (size_t)i * ldc;
            _mm256_store_ps(tmp, c0[i]);
            _mm256_store_ps(tmp + 8, c1[i]);
            for (int j = 0; j < nr; j++) c[j] = accum ? c[j] + tmp[j] : tmp[j];
        }
    }
}

#define KCASE2(r) \
    case r: kernel2(r, kc, Ap, Bp, C, ldc, nr, accum); break;

T256G static void kernel2_rows(int rows, int kc, const float *Ap, const float *Bp, float *C, int ldc, int nr, int accum) {
    switch (rows) {
        KCASE2(6) KCASE2(5) KCASE2(4) KCASE2(3) KCASE2(2) KCASE2(1)
        default: break;
    }
}

T256G static void sgemm_avx2(int n, int m, int k, const float *A, int lda, const bsrc *B, float *C, int ldc,
                             float *buf) {
    float *Ap = buf, *Bp = buf + AP_FLOATS, *Bt = Bp + BP_FLOATS;
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC;
        int accum = pc > 0;
        for (int ic = 0; ic < n; ic += MC2) {
            int mc = n - ic < MC2 ? n - ic : MC2;
            int np = (mc + MR2 - 1) / MR2;
            for (int q = 0; q < np; q++) {
                int r0 = q * MR2, r1 = r0 + MR2 < mc ? r0 + MR2 : mc;
                pack_a2(r1 - r0, kc, A + (size_t)(ic + r0) * lda + pc, lda, Ap + (size_t)q * MR2 * kc);
            }
            for (int jr = 0; jr < m; jr += NR2) {
                int nr = m - jr < NR2 ? m - jr : NR2, ldb;
                if (B->kind == BK_NN2) {
                    pack_nn(B, jr, nr, pc, kc, Bp, NR2);
                } else {
                    const float *Bs = b_rows(B, jr, nr, pc, kc, Bt, &ldb);
                    pack_b2(nr, kc, Bs, ldb, Bp);
                }
                for (int q = 0; q < np; q++) {
                    int r0 = q * MR2, r1 = r0 + MR2 < mc ? r0 + MR2 : mc;
                    kernel2_rows(r1 - r0, kc, Ap + (size_t)q * MR2 * kc, Bp, C + (size_t)(ic + r0) * ldc + jr, ldc, nr, accum);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- 8-bit integer path, AVX2 (maddubs)
 * For CPUs without AVX512_VNNI (and the AVX2 level). vpmaddubsw multiplies u8 x s8 pairs into int16
 * pair sums (saturating) and vpmaddwd by ones widens them to int32: vpdpbusd in two instructions, exact
 * while each pair sum fits int16. The u8 operand is B's, chosen per type so that it does:
 *   - small levels (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): the stored unsigned level u = v + off
 *     (off = pika_type_levels_offset: 8, 16, 32, or 0 for the types with a minimum), u <= 63, against
 *     A's signed levels (|a| <= 127): pair sums <= 2 * 63 * 127 = 16002, so two k quads are added in
 *     int16 before one vpmaddwd. The offset is removed through A's level sums (each group's int32
 *     accumulator starts at -off * the sum of A's levels in the group).
 *   - Q8_0 (levels in [-128, 127]) does not fit u8: both sides are widened to int16 in the panels and
 *     vpmaddwd alone multiplies 8 columns x 2 k values (one instruction per 16 products, against the
 *     three of ggml's sign trick |v| x sign(a, v) per 32: vpsignb, vpmaddubsw and vpmaddwd share the
 *     same two pipes on the CPUs measured). Both take four instructions per 32 products with the int32
 *     adds, which bound the loop; measured on Zen 4 at the AVX2 level, one thread, 256 x 1792 x 1024:
 *     124 (sign trick) -> 140 GOP/s.
 * Tile: MRQ2 (4) rows x NRQ2 (16) columns; 8 ymm int32 accumulators live for one group of G k values,
 * then are scaled (F32, cvt + mul + fma) into the tile's F32 sums, kept in a 256-byte L1 buffer.
 *   A panel (MRQ2 rows, k block kc; 32-bit units): Aq[t*MRQ2 + i]: levels 4t..4t+3 of row i;
 *       Ad[b*MRQ2 + i]: d of block b; Asd[b*MRQ2 + i]: d * sum of its levels; Ab[g*MRQ2 + i]: -off * sum of
 *       group g's levels
 *   B panel (16 columns): Bq[t*16 + j]: levels 4t..4t+3 of row j (u); Bd[g*16 + j]; Bm[b*16 + j]
 *   Q8_0 (int16): A panel Aw[t*MRQ2 + i]: levels 2t, 2t+1 of row i as two int16; Ad as above;
 *       B panel Bw[t*16 + j]: levels 2t, 2t+1 of row j as two int16; Bd at QW_D
 * Results equal the VNNI kernel's up to F32 rounding of the scale sums (the integer sums are exact). */

#define TQ2 __attribute__((target("avx2,fma")))
#define INLINEQ2 static inline __attribute__((always_inline, target("avx2,fma")))

enum {
    MRQ2 = 4, NRQ2 = 16, MCQ2 = 72 * MRQ2,
    QA2_Q = 0, QA2_D = KC / 4 * MRQ2, QA2_SD = QA2_D + KC / 32 * MRQ2, QA2_B = QA2_SD + KC / 32 * MRQ2,
    QA2_UNITS = QA2_B + KC / 16 * MRQ2,
    QB2_D = KC / 4 * NRQ2, QB2_M = QB2_D + KC / 16 * NRQ2, QB2_UNITS = QB2_M + KC / 32 * NRQ2,
    /* Q8_0's int16 panels: A levels then Ad (per 32); B levels then Bd (per 32) */
    QW_AD = KC / 2 * MRQ2, QW_A_UNITS = QW_AD + KC / 32 * MRQ2,
    QW_D = KC / 2 * NRQ2, QW_B_UNITS = QW_D + KC / 32 * NRQ2,
};
_Static_assert((int)(MCQ2 / MRQ2) * (int)QA2_UNITS <= (int)AP_FLOATS && (int)QB2_UNITS <= (int)BP_FLOATS,
               "AVX2 q8 panels fit the buffers");
_Static_assert((int)(MCQ2 / MRQ2) * (int)QW_A_UNITS <= (int)AP_FLOATS && (int)QW_B_UNITS <= (int)BP_FLOATS,
               "AVX2 int16 panels fit the buffers");

/* one A panel from rows < mr of pre-quantized A (as pack_a_q8), group biases for (G, off) */
static void pack_a_q8_2(int mr, int k, int pc, int kc, int G, int off, const int8_t *q, const float *d,
                        const int32_t *s16, int32_t *P) {
    int32_t *ab = P + QA2_B;
    pack_a_q8_levels(mr, MRQ2, k, pc, kc, q, d, s16, P + QA2_Q, (float *)(P + QA2_D), (float *)(P + QA2_SD));
    for (int i = 0; i < mr; i++) {
        const int32_t *si = s16 + (size_t)i * (k / 16) + pc / 16;
        for (int g = 0; g < kc / G; g++)
            ab[g * MRQ2 + i] = -off * (G == 32 ? si[2 * g] + si[2 * g + 1] : si[g]);
    }
}

/* B panel rows jr..jr+nr (nr <= NRQ2), k block [pc, pc+kc) -> Bq (levels + off), Bd, Bm; columns nr.. are 0 */
TQ2 static void pack_b_q8_2(const bsrc *B, int jr, int nr, int pc, int kc, int off, float *Bt, float *Bp) {
    const int8_t *lv = (const int8_t *)Bt; /* [NRQ2][KC] levels */
    unpack_b_q8(B, jr, nr, NRQ2, pc, kc, -off, Bt); /* padding: level -off, stored 0 */
    const __m256i bias = _mm256_set1_epi8((char)off);
    int32_t *bq = (int32_t *)Bp;
    for (int g = 0; g < NRQ2 / 8; g++)
        for (int t0 = 0; t0 < kc / 4; t0 += 8) { /* kc is a multiple of 32: whole 8-quad steps */
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_castsi256_ps(_mm256_add_epi8(
                    _mm256_loadu_si256((const __m256i *)(lv + (size_t)(8 * g + i) * KC + 4 * t0)), bias));
            transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_store_ps((float *)bq + (size_t)(t0 + q) * NRQ2 + 8 * g, r[q]);
        }
    pack_b_q8_scales(pika_type_levels_group(B->type), NRQ2, kc, Bt, Bp + QB2_D, Bp + QB2_M);
}

/* Q8_0's int16 A panel from rows < mr of pre-quantized A: Aw[t*MRQ2 + i] = levels 2t, 2t+1 of row i (rows
 * mr.. 0), Ad. Per 8 k pairs: each row's 16 levels widened (one ymm of 8 pairs), the 4 x 8 pairs transposed. */
TQ2 static void pack_a_q8_w(int mr, int k, int pc, int kc, const int8_t *q, const float *d, int32_t *P) {
    float *ad = (float *)(P + QW_AD);
    const int8_t *src[MRQ2];
    for (int i = 0; i < MRQ2; i++) src[i] = i < mr ? q + (size_t)i * k + pc : NULL;
    for (int t0 = 0; t0 < kc / 2; t0 += 8) {
        __m256i r[MRQ2];
        for (int i = 0; i < MRQ2; i++)
            r[i] = src[i] ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src[i] + 2 * t0))) : _mm256_setzero_si256();
        /* r[i] lanes: pairs t0..t0+7 of row i -> out[t][i] */
        __m256i a = _mm256_unpacklo_epi32(r[0], r[1]), b = _mm256_unpackhi_epi32(r[0], r[1]);
        __m256i c = _mm256_unpacklo_epi32(r[2], r[3]), e = _mm256_unpackhi_epi32(r[2], r[3]);
        __m256i x0 = _mm256_unpacklo_epi64(a, c), x1 = _mm256_unpackhi_epi64(a, c); /* pairs 0|4, 1|5 */
        __m256i x2 = _mm256_unpacklo_epi64(b, e), x3 = _mm256_unpackhi_epi64(b, e); /* pairs 2|6, 3|7 */
        __m256i *o = (__m256i *)(P + (size_t)t0 * MRQ2);
        _mm256_store_si256(o + 0, _mm256_permute2x128_si256(x0, x1, 0x20));
        _mm256_store_si256(o + 1, _mm256_permute2x128_si256(x2, x3, 0x20));
        _mm256_store_si256(o + 2, _mm256_permute2x128_si256(x0, x1, 0x31));
        _mm256_store_si256(o + 3, _mm256_permute2x128_si256(x2, x3, 0x31));
    }
    for (int i = 0; i < mr; i++) {
        const float *di = d + (size_t)i * (k / 32) + pc / 32;
        for (int b = 0; b < kc / 32; b++) ad[b * MRQ2 + i] = di[b];
    }
}

/* Q8_0's int16 B panel straight from the blocks (no level buffer), rows jr..jr+nr (nr <= NRQ2), k block
 * [pc, pc+kc) -> Bw, Bd (k/32 x 16); columns nr.. are 0. Per block and 8 columns: two steps of 8 pairs. */
__attribute__((target("avx2,fma,f16c"))) static void pack_b_q8_w(const bsrc *B, int jr, int nr, int pc, int kc, float *Bp) {
    float *bd = Bp + QW_D;
    const size_t bsz = pika_row_bytes(PIKA_TYPE_Q8_0, 32); /* 34: F16 d, then 32 int8 levels */
    for (int g = 0; g < NRQ2 / 8; g++) {
        const uint8_t *row[8];
        for (int i = 0; i < 8; i++)
            row[i] = 8 * g + i < nr ? B->data + (size_t)(jr + 8 * g + i) * B->row_bytes + (size_t)(pc / 32) * bsz : NULL;
        for (int b = 0; b < kc / 32; b++) {
            for (int h = 0; h < 2; h++) {
                __m256 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = row[i] ? _mm256_castsi256_ps(_mm256_cvtepi8_epi16(
                                        _mm_loadu_si128((const __m128i *)(row[i] + (size_t)b * bsz + 2 + 16 * h))))
                                  : _mm256_setzero_ps();
                transpose8(r);
                for (int q = 0; q < 8; q++) _mm256_store_ps(Bp + (size_t)(16 * b + 8 * h + q) * NRQ2 + 8 * g, r[q]);
            }
            for (int i = 0; i < 8; i++) {
                uint16_t h16 = 0; /* F16 zero for the padding columns */
                if (row[i]) memcpy(&h16, row[i] + (size_t)b * bsz, 2);
                bd[b * NRQ2 + 8 * g + i] = _cvtsh_ss(h16);
            }
        }
    }
}

/* C[ROWS x nr] (+)= the A panel P · the B panel over kc; G, MIN and W16 (Q8_0 in int16) are
 * constants at each call site */
INLINEQ2 void kernel_q8_2(const int ROWS, const int G, const int MIN, const int W16, int kc, const int32_t *P,
                          const float *Bp, float *C, int ldc, int nr, int accum) {
    const int32_t *aq = P + QA2_Q, *ab = P + QA2_B;
    const float *ad = (const float *)(P + (W16 ? QW_AD : QA2_D)), *asd = (const float *)(P + QA2_SD);
    const int32_t *bq = (const int32_t *)Bp;
    const float *bd = Bp + (W16 ? QW_D : QB2_D), *bm = Bp + QB2_M;
    float acc[MRQ2 * NRQ2] __attribute__((aligned(32)));
    const __m256i ones = _mm256_set1_epi16(1);
    const int QG = G / 4;
    /* named accumulators (arrays of vectors get spilled by GCC here); row i is live when ROWS > i */
    __m256i s00, s01, s10, s11, s20, s21, s30, s31;
    s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = _mm256_setzero_si256();
#define Q2_INIT(i, a0, a1) if (ROWS > i) a0 = a1 = W16 ? _mm256_setzero_si256() : _mm256_set1_epi32(ab[g * MRQ2 + i]);
/* Q8_0, one k pair of all four rows: vpmaddwd of row i's two levels (broadcast) by 8 columns' pairs, added
 * into the int32 sums. Written as one asm block: GCC's allocation of this loop (12 live ymm of 16) added
 * a register copy per accumulator and step (measured 8 copies to 8 multiplies). */
#define Q2_W4(b, a)                                                                                                    \
    __asm__("vmovdqa %[b0], %[w]\n\tvmovdqa %[b1], %[x]\n\t"                                                          \
            "vpbroadcastd %[a0], %[av]\n\tvpmaddwd %[w], %[av], %[t]\n\tvpaddd %[t], %[s00], %[s00]\n\t"            \
            "vpmaddwd %[x], %[av], %[av]\n\tvpaddd %[av], %[s01], %[s01]\n\t"                                         \
            "vpbroadcastd %[a1], %[av]\n\tvpmaddwd %[w], %[av], %[t]\n\tvpaddd %[t], %[s10], %[s10]\n\t"            \
            "vpmaddwd %[x], %[av], %[av]\n\tvpaddd %[av], %[s11], %[s11]\n\t"                                         \
            "vpbroadcastd %[a2], %[av]\n\tvpmaddwd %[w], %[av], %[t]\n\tvpaddd %[t], %[s20], %[s20]\n\t"            \
            "vpmaddwd %[x], %[av], %[av]\n\tvpaddd %[av], %[s21], %[s21]\n\t"                                         \
            "vpbroadcastd %[a3], %[av]\n\tvpmaddwd %[w], %[av], %[t]\n\tvpaddd %[t], %[s30], %[s30]\n\t"            \
            "vpmaddwd %[x], %[av], %[av]\n\tvpaddd %[av], %[s31], %[s31]"                                               \
            : [s00] "+x"(s00), [s01] "+x"(s01), [s10] "+x"(s10), [s11] "+x"(s11), [s20] "+x"(s20), [s21] "+x"(s21),   \
              [s30] "+x"(s30), [s31] "+x"(s31), [w] "=&x"(w), [x] "=&x"(x), [av] "=&x"(av), [t] "=&x"(tmp)            \
            : [b0] "m"(*(const __m256i *)(b)), [b1] "m"(*(const __m256i *)((b) + 8)), [a0] "m"((a)[0]),               \
              [a1] "m"((a)[1]), [a2] "m"((a)[2]), [a3] "m"((a)[3]));
/* the same for row i alone (tiles of fewer rows) */
#define Q2_W(i, a0, a1)                                                                                                \
    if (ROWS > i) {                                                                                                    \
        __m256i av = _mm256_set1_epi32(a[i]);                                                                          \
        a0 = _mm256_add_epi32(_mm256_madd_epi16(av, w), a0);                                                           \
        a1 = _mm256_add_epi32(_mm256_madd_epi16(av, x), a1);                                                           \
    }
#define Q2_OFF(i, a0, w, x)                                                                                            \
    if (ROWS > i) {                                                                                                    \
        __m256i av = _mm256_set1_epi32(a[i]), bv = _mm256_set1_epi32(a[MRQ2 + i]);                                     \
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(w, av),                      \
                                                                     _mm256_maddubs_epi16(x, bv)), ones));             \
    }
/* one 8-column half of the tile per pass, the broadcasts reloaded for the second half (the barrier keeps
 * GCC from holding them across: 16 ymm registers) */
#define Q2_SCALE(i, a0, a1)                                                                                            \
    if (ROWS > i) {                                                                                                    \
        __m256 sa = _mm256_set1_ps(da[i]);                                                                             \
        float *c = acc + i * NRQ2;                                                                                     \
        __m256 c0 = g ? _mm256_load_ps(c) : _mm256_setzero_ps(), c1 = g ? _mm256_load_ps(c + 8) : _mm256_setzero_ps(); \
        c0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a0), _mm256_mul_ps(d0, sa), c0);                                       \
        c1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a1), _mm256_mul_ps(d1, sa), c1);                                       \
        if (MIN) {                                                                                                     \
            __m256 sd = _mm256_set1_ps(asd[g * MRQ2 + i]);                                                             \
            c0 = _mm256_fmadd_ps(_mm256_load_ps(bm + g * NRQ2), sd, c0);                                               \
            c1 = _mm256_fmadd_ps(_mm256_load_ps(bm + g * NRQ2 + 8), sd, c1);                                           \
        }                                                                                                              \
        _mm256_store_ps(c, c0);                                                                                        \
        _mm256_store_ps(c + 8, c1);                                                                                    \
    }
    for (int g = 0; g < kc / G; g++) {
        Q2_INIT(0, s00, s01) Q2_INIT(1, s10, s11) Q2_INIT(2, s20, s21) Q2_INIT(3, s30, s31)
        if (W16) {
#pragma GCC unroll 1
            for (int t = 0; t < G / 2; t++) { /* k pairs of the group */
                const int32_t *b = bq + (size_t)(g * G / 2 + t) * NRQ2, *a = aq + (g * G / 2 + t) * MRQ2;
                __m256i w, x;
                if (ROWS == 4) {
                    __m256i av, tmp;
                    Q2_W4(b, a)
                } else {
                    w = _mm256_load_si256((const __m256i *)b), x = _mm256_load_si256((const __m256i *)(b + 8));
                    Q2_W(0, s00, s01) Q2_W(1, s10, s11) Q2_W(2, s20, s21) Q2_W(3, s30, s31)
                }
            }
        } else {
#pragma GCC unroll 1
            for (int t = 0; t < QG; t += 2) {
                const int32_t *b = bq + (size_t)(g * QG + t) * NRQ2, *a = aq + (g * QG + t) * MRQ2;
                __m256i w = _mm256_load_si256((const __m256i *)b), x = _mm256_load_si256((const __m256i *)(b + NRQ2));
                Q2_OFF(0, s00, w, x) Q2_OFF(1, s10, w, x) Q2_OFF(2, s20, w, x) Q2_OFF(3, s30, w, x)
                __asm__ volatile("" ::: "memory");
                w = _mm256_load_si256((const __m256i *)(b + 8)), x = _mm256_load_si256((const __m256i *)(b + NRQ2 + 8));
                Q2_OFF(0, s01, w, x) Q2_OFF(1, s11, w, x) Q2_OFF(2, s21, w, x) Q2_OFF(3, s31, w, x)
            }
        }
        __m256 d0 = _mm256_load_ps(bd + g * NRQ2), d1 = _mm256_load_ps(bd + g * NRQ2 + 8);
        const float *da = ad + (g * G / 32) * MRQ2;
        Q2_SCALE(0, s00, s01) Q2_SCALE(1, s10, s11) Q2_SCALE(2, s20, s21) Q2_SCALE(3, s30, s31)
    }
#undef Q2_INIT
#undef Q2_W
#undef Q2_W4
#undef Q2_OFF
#undef Q2_SCALE
    for (int i = 0; i < ROWS; i++) {
        float *c = C + (size_t)i * ldc;
        const float *s = acc + i * NRQ2;
        if (nr == NRQ2) {
            __m256 v0 = _mm256_load_ps(s), v1 = _mm256_load_ps(s + 8);
            if (accum) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
            }
            _mm256_storeu_ps(c, v0);
            _mm256_storeu_ps(c + 8, v1);
        } else {
            for (int j = 0; j < nr; j++) c[j] = accum ? c[j] + s[j] : s[j];
        }
    }
}

#define KQ2(r, G, MIN, W16) kernel_q8_2(r, G, MIN, W16, kc, P, Bp, C, ldc, nr, accum)
#define KCASEQ2(r) \
    case r: if (W16) KQ2(r, 32, 0, 1); else if (G == 16) KQ2(r, 16, 0, 0); else if (MIN) KQ2(r, 32, 1, 0); else KQ2(r, 32, 0, 0); break;

TQ2 static void kernel_q8_2_rows(int rows, int G, int MIN, int W16, int kc, const int32_t *P, const float *Bp, float *C,
                                 int ldc, int nr, int accum) {
    switch (rows) {
        KCASEQ2(4) KCASEQ2(3) KCASEQ2(2) KCASEQ2(1)
        default: break;
    }
}

TQ2 static void sgemm_q8_avx2(int n, int m, int k, const int8_t *Aq, const float *Ad, const int32_t *As16, const bsrc *B,
                              float *C, int ldc, float *buf) {
    int32_t *Ap = (int32_t *)buf;
    float *Bp = buf + AP_FLOATS, *Bt = Bp + BP_FLOATS;
    const int G = pika_type_levels_group(B->type), MIN = pika_type_levels_have_min(B->type);
    const int W16 = B->type == PIKA_TYPE_Q8_0, off = W16 ? 0 : pika_type_levels_offset(B->type);
    const size_t AU = W16 ? QW_A_UNITS : QA2_UNITS; /* one A panel */
    for (int pc = 0; pc < k; pc += KC) {
        int kc = k - pc < KC ? k - pc : KC, accum = pc > 0;
        for (int ic = 0; ic < n; ic += MCQ2) {
            int mc = n - ic < MCQ2 ? n - ic : MCQ2, np = (mc + MRQ2 - 1) / MRQ2;
            for (int q = 0; q < np; q++) {
                int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                size_t row = (size_t)(ic + r0);
                if (W16)
                    pack_a_q8_w(r1 - r0, k, pc, kc, Aq + row * k, Ad + row * (k / 32), Ap + (size_t)q * AU);
                else
                    pack_a_q8_2(r1 - r0, k, pc, kc, G, off, Aq + row * k, Ad + row * (k / 32), As16 + row * (k / 16),
                                Ap + (size_t)q * AU);
            }
            for (int jr = 0; jr < m; jr += NRQ2) {
                int nr = m - jr < NRQ2 ? m - jr : NRQ2;
                if (W16)
                    pack_b_q8_w(B, jr, nr, pc, kc, Bp);
                else
                    pack_b_q8_2(B, jr, nr, pc, kc, off, Bt, Bp);
                for (int q = 0; q < np; q++) {
                    int r0 = mc * q / np, r1 = mc * (q + 1) / np;
                    kernel_q8_2_rows(r1 - r0, G, MIN, W16, kc, Ap + (size_t)q * AU, Bp,
                                     C + (size_t)(ic + r0) * ldc + jr, ldc, nr, accum);
                }
            }
        }
    }
}

/* pika's AVX2 kernel: -1 = not decided yet (PIKA_GEMM_AVX2=1 turns it on), 0 off, 1 on. Off by default:
 * OpenBLAS's Haswell kernel on a dequantized copy is still faster than pika's 6 x 16 kernel with
 * dequantization into the panels, F32 and typed B alike (bench_engine with PIKA_SIMD=avx2 on Zen 5). */
static int g_avx2_kernel = -1;
void pika_sgemm_use_avx2_kernel(int on) { __atomic_store_n(&g_avx2_kernel, on ? 1 : 0, __ATOMIC_RELAXED); }
int pika_sgemm_nt_avx2(void) {
    int on = __atomic_load_n(&g_avx2_kernel, __ATOMIC_RELAXED);
    if (on < 0) {
        const char *e = getenv("PIKA_GEMM_AVX2");
        on = e && !strcmp(e, "1");
        __atomic_store_n(&g_avx2_kernel, on, __ATOMIC_RELAXED);
    }
    return on && pika_simd_level() == PIKA_SIMD_AVX2;
}

/* the one CPU-feature check (core/util.c): AVX-512 level, PIKA_SIMD and overrides included */
int pika_sgemm_nt_avx512(void) { return pika_simd_level() >= PIKA_SIMD_AVX512; }

#else /* not x86-64 */

int pika_sgemm_nt_avx512(void) { return 0; }
int pika_sgemm_nt_avx2(void) { return 0; }
void pika_sgemm_use_avx2_kernel(int on) { (void)on; }

#endif

void pika_sgemm_nt(int n, int m, int k, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (n <= 0 || m <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < n; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)m);
        return;
    }
#ifdef PIKA_X86
    if (pika_sgemm_nt_avx512() && n < SMALL_N) {
        sgemm_dot(n, m, k, A, lda, B, ldb, C, ldc);
        return;
    }
    if (pika_sgemm_nt_avx512() || pika_sgemm_nt_avx2()) {
        float *buf = thread_buf();
        bsrc b = {.type = PIKA_TYPE_F32, .data = (const uint8_t *)B, .row_bytes = (size_t)ldb * sizeof(float)};
        if (buf && pika_sgemm_nt_avx512()) {
            sgemm_avx512(n, m, k, A, lda, &b, C, ldc, buf, 0);
            return;
        }
        if (buf) {
            sgemm_avx2(n, m, k, A, lda, &b, C, ldc, buf);
            return;
        }
    }
#endif
    sgemm_blas(n, m, k, A, lda, B, ldb, C, ldc);
}

int pika_sgemm_nt_typed_native(void) {
#ifdef PIKA_X86
    return pika_sgemm_nt_avx512() || pika_sgemm_nt_avx2();
#else
    return 0;
#endif
}

/* B's type can be multiplied and k is whole blocks of it */
static int typed_ok(uint32_t type, int k) {
    int be = pika_type_block_elems(type);
    return be > 0 && pika_type_supported(type) && k > 0 && k % be == 0;
}

int pika_sgemm_nt_typed(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B, size_t row_bytes,
                        float *C, int ldc) {
    if (type == PIKA_TYPE_F32) {
        pika_sgemm_nt(n, m, k, A, lda, B, (int)(row_bytes / sizeof(float)), C, ldc);
        return 0;
    }
    if (n <= 0 || m <= 0) return 0;
    if (!typed_ok(type, k)) return -1;
#ifdef PIKA_X86
    if (pika_sgemm_nt_typed_native()) {
        float *buf = thread_buf();
        bsrc b = {.type = type, .data = (const uint8_t *)B, .row_bytes = row_bytes};
        if (buf && pika_sgemm_nt_avx512()) {
            sgemm_avx512(n, m, k, A, lda, &b, C, ldc, buf, 0);
            return 0;
        }
        if (buf) {
            sgemm_avx2(n, m, k, A, lda, &b, C, ldc, buf);
            return 0;
        }
    }
#endif
    return -1;
}

int pika_sgemm_nt_typed_bf16(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B,
                             size_t row_bytes, float *C, int ldc) {
    if (n <= 0 || m <= 0) return 0;
    if (!typed_ok(type, k)) return -1;
#ifdef PIKA_X86
    if (pika_simd_has_avx512_bf16()) {
        float *buf = thread_buf();
        bsrc b = {.type = type, .data = (const uint8_t *)B, .row_bytes = row_bytes};
        if (buf) {
            sgemm_avx512(n, m, k, A, lda, &b, C, ldc, buf, 1);
            return 0;
        }
    }
#endif
    (void)A; (void)lda; (void)B; (void)row_bytes; (void)C; (void)ldc;
    return -1;
}

int pika_sgemm_nt_q8_native(uint32_t type) {
#ifdef PIKA_X86
    return pika_type_levels_group(type) > 0 && pika_simd_level() >= PIKA_SIMD_AVX2;
#else
    (void)type;
    return 0;
#endif
}

int pika_sgemm_nt_typed_q8a(int n, int m, int k, const int8_t *Aq, const float *Ad, const int32_t *As16, uint32_t type,
                            const void *B, size_t row_bytes, float *C, int ldc) {
    if (n <= 0 || m <= 0) return 0;
    if (!typed_ok(type, k) || k % 32 != 0 || !pika_sgemm_nt_q8_native(type)) return -1;
#ifdef PIKA_X86
    float *buf = thread_buf();
    bsrc b = {.type = type, .data = (const uint8_t *)B, .row_bytes = row_bytes};
    if (buf && pika_simd_has_vnni()) { /* the AVX-512 level with VNNI */
        sgemm_q8_avx512(n, m, k, Aq, Ad, As16, &b, C, ldc, buf);
        return 0;
    }
    if (buf) {
        sgemm_q8_avx2(n, m, k, Aq, Ad, As16, &b, C, ldc, buf);
        return 0;
    }
#endif
    (void)Aq; (void)Ad; (void)As16; (void)B; (void)row_bytes; (void)C; (void)ldc;
    return -1;
}

int pika_sgemm_nt_typed_q8(int n, int m, int k, const float *A, int lda, uint32_t type, const void *B, size_t row_bytes,
                           float *C, int ldc) {
    if (n <= 0 || m <= 0) return 0;
    if (!typed_ok(type, k) || k % 32 != 0 || !pika_sgemm_nt_q8_native(type)) return -1;
    int8_t *q = pika_malloc((size_t)n * k);
    float *d = pika_malloc(sizeof(float) * (size_t)n * (k / 32));
    int32_t *s16 = pika_malloc(sizeof(int32_t) * (size_t)n * (k / 16));
    for (int i = 0; i < n; i++)
        pika_quantize_act_q8_levels(A + (size_t)i * lda, k, q + (size_t)i * k, d + (size_t)i * (k / 32),
                                    s16 + (size_t)i * (k / 16));
    int rc = pika_sgemm_nt_typed_q8a(n, m, k, q, d, s16, type, B, row_bytes, C, ldc);
    free(q); free(d); free(s16);
    return rc;
}

/* ---------------------------------------------------------------- fixed-order products (attention)
 * Every C element is the sum over k in blocks of KC from k = 0, each block summed in k order by one
 * micro-kernel row (FMA chain), blocks added in order: the value depends on its A row, its B column and
 * k only, never on n, m or the other rows (no small-n kernel, no BLAS). Scalar level: the same order in
 * plain C. */
static void fixed_order(int n, int m, int k, const float *A, int lda, const bsrc *b, float *C, int ldc) {
    if (n <= 0 || m <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < n; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)m);
        return;
    }
#ifdef PIKA_X86
    float *buf = pika_simd_level() >= PIKA_SIMD_AVX2 ? thread_buf() : NULL;
    if (buf && pika_simd_level() >= PIKA_SIMD_AVX512) { sgemm_avx512(n, m, k, A, lda, b, C, ldc, buf, 0); return; }
    if (buf) { sgemm_avx2(n, m, k, A, lda, b, C, ldc, buf); return; }
#endif
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m; j++) {
            float c = 0.0f;
            for (int p0 = 0; p0 < k; p0 += KC) {
                float blk = 0.0f;
                for (int p = p0; p < k && p < p0 + KC; p++)
                    blk += A[(size_t)i * lda + p] * (b->kind == BK_NN2 ? seg_row(b, p)[j] : seg_row(b, j)[p]);
                c = p0 ? c + blk : blk;
            }
            C[(size_t)i * ldc + j] = c;
        }
}

void pika_sgemm_nt_split(int n, int m, int k, const float *A, int lda, const float *B1, int split, const float *B2,
                         int ldb, float *C, int ldc) {
    bsrc b = {PIKA_TYPE_F32, NULL, 0, BK_NT2, split, ldb, B1, B2};
    fixed_order(n, m, k, A, lda, &b, C, ldc);
}

void pika_sgemm_nn_split(int n, int m, int k, const float *A, int lda, const float *B1, int split, const float *B2,
                         int ldb, float *C, int ldc) {
    bsrc b = {PIKA_TYPE_F32, NULL, 0, BK_NN2, split, ldb, B1, B2};
    fixed_order(n, m, k, A, lda, &b, C, ldc);
}
