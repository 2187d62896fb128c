/* util.h — errors, memory, files, timing and progress shared by every pika module.
 *
 * Error convention: library functions return 0 (or a valid pointer) on success and
 * -1 (or NULL) on failure after recording a one-line message with pika_set_error().
 * The CLI prints pika_last_error() and exits with status 2.
 */
#ifndef PIKA_UTIL_H
#define PIKA_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define PIKA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PIKA_PRINTF(a, b)
#endif

/* Record the current error (thread-local, overwrites the previous one). Always returns -1. */
int pika_set_error(const char *fmt, ...) PIKA_PRINTF(1, 2);
/* Prepend context to the current error: "<context>: <previous error>". Always returns -1. */
int pika_error_context(const char *fmt, ...) PIKA_PRINTF(1, 2);
/* The last recorded error message of this thread ("" when none). */
const char *pika_last_error(void);
/* Print "pika: <msg>" to stderr, flush all streams and _exit(2). For the CLI only. */
void pika_die(const char *fmt, ...) PIKA_PRINTF(1, 2) __attribute__((noreturn));

/* malloc/calloc/realloc that abort with a message on out-of-memory. */
void *pika_malloc(size_t n);
void *pika_calloc(size_t count, size_t size);
void *pika_realloc(void *p, size_t n);
char *pika_strdup(const char *s);
char *pika_strndup(const char *s, size_t n);

/* A growable byte string, always NUL-terminated once anything was added. Start with {0}; free(b.s). */
typedef struct {
    char *s;
    size_t n, cap;
} pika_buf;
void pika_buf_add(pika_buf *b, const char *p, size_t n);
void pika_buf_addc(pika_buf *b, char c);
void pika_buf_puts(pika_buf *b, const char *p);

/* Read a whole file into a NUL-terminated buffer. Returns NULL + error on failure. */
char *pika_read_file(const char *path, size_t *len_out);
/* Read a stream to its end (binary-safe, NUL-terminated). NULL + error on a read error. */
char *pika_read_stream(FILE *f, size_t *len_out);
/* Write buf to path atomically (write to path.tmp, fsync, rename). */
int pika_write_file_atomic(const char *path, const void *buf, size_t len);
/* mkdir -p. */
int pika_mkdir_p(const char *path);

/* Read-only memory map of a whole file. */
typedef struct {
    void *data;   /* NULL for an empty file */
    size_t size;  /* bytes */
} pika_mmap;
int pika_mmap_open(pika_mmap *m, const char *path);
void pika_mmap_close(pika_mmap *m);

/* Monotonic time in seconds. */
double pika_now(void);

/* Number of online CPU cores (>= 1). */
int pika_n_cores(void);

/* Progress line for long jobs: "label  done/total  rate/s  ETA". Printed (with \r) only when
 * stderr is a TTY; silent otherwise. Call pika_progress_update as often as you like. */
typedef struct {
    const char *label;
    int64_t total;
    int64_t start_done; /* items already done at start (resume) */
    double t_start;
    double t_last;
    int tty;
} pika_progress;
void pika_progress_begin(pika_progress *p, const char *label, int64_t total, int64_t already_done);
void pika_progress_update(pika_progress *p, int64_t done);
void pika_progress_end(pika_progress *p, int64_t done);

/* Parse a whitespace/comma separated list of integers ("1 2 3"). Returns count, -1 on error.
 * *out is malloc'ed. */
int pika_parse_int_list(const char *s, int32_t **out);
/* Length of the common prefix of token ids a[0..na) and b[0..nb) (what a cached prompt shares). */
int pika_ids_common_prefix(const int32_t *a, int na, const int32_t *b, int nb);

/* UTF-8: byte length of the valid character starting at p (1-4), or 0 when p[0..n) does not start
 * one (overlong, surrogate, out of range, truncated). pika_utf8_valid: the whole string is valid.
 * pika_utf8_repair: a malloc'ed valid copy, each invalid byte replaced by U+FFFD. */
int pika_utf8_char_len(const unsigned char *p, size_t n);
int pika_utf8_valid(const char *s, size_t n);
char *pika_utf8_repair(const char *s, size_t n, size_t *out_len);

/* Standard base64 (RFC 4648, with padding) of n bytes: malloc'ed, NUL-terminated. */
char *pika_base64_encode(const void *p, size_t n);
/* Decode (padding optional, no white space): malloc'ed bytes and *n, or NULL + error. */
void *pika_base64_decode(const char *s, size_t *n);

/* Report files: fopen(dir/name, "w") (NULL + error "cannot write PATH"), and gnuplot run on dir/script
 * from inside dir (0, or -1 + error when gnuplot is missing or fails). */
FILE *pika_fopen_in(const char *dir, const char *name);
int pika_gnuplot_run(const char *dir, const char *script);

/* Half-precision and bfloat16 conversions (exact, round-to-nearest-even for the narrowing ones). */
float pika_fp16_to_fp32(uint16_t h);
uint16_t pika_fp32_to_fp16(float f);
float pika_bf16_to_fp32(uint16_t h);
uint16_t pika_fp32_to_bf16(float f);

/* ---- the one CPU-feature check of pika (quant.c, gemm.c and model.c all use it) ----
 * Levels: PIKA_SIMD_AVX512 (AVX-512 F+BW+VL+DQ with AVX2+FMA+F16C), PIKA_SIMD_AVX2 (AVX2+FMA+F16C),
 * PIKA_SIMD_SCALAR. pika_simd_detected(): what this CPU supports, capped by the environment variable
 * PIKA_SIMD=avx512|avx2|scalar|auto (read once; a level the CPU lacks, or an unknown value, means
 * auto). pika_simd_level(): the level the kernels use now = the override when set, else detected.
 * pika_simd_override(level): -1 clears it; a level above pika_simd_detected() is an error. */
enum { PIKA_SIMD_SCALAR = 0, PIKA_SIMD_AVX2 = 1, PIKA_SIMD_AVX512 = 2 };
int pika_simd_detected(void);
int pika_simd_level(void);
int pika_simd_override(int level);
/* "avx512" | "avx2" | "scalar" -> level; "auto" or NULL -> -1; anything else -> -2. */
int pika_simd_parse(const char *name);
const char *pika_simd_name(int level);
/* 1 when the level in use is PIKA_SIMD_AVX512 and the CPU has AVX-512 VNNI (vpdpbusd): the integer
 * dot kernels of quant.c then use it instead of AVX2's maddubs/madd pair. */
int pika_simd_has_vnni(void);
/* 1 when the level in use is PIKA_SIMD_AVX512 and the CPU has AVX512_BF16 (vdpbf16ps): the optional
 * BF16 prefill product of gemm.c (pika_sgemm_nt_typed_bf16) can run. */
int pika_simd_has_avx512_bf16(void);

/* ---- the one string hash and string -> int64 map of pika ----
 * pika_hash_bytes: 64-bit FNV-1a (prime 1099511628211) over n bytes, continuing from h (start with
 * PIKA_HASH_SEED: pika's historical seed, not FNV's standard offset basis; kept so that the
 * fingerprints recorded in existing stores and probe files stay valid);
 * pika_hash_str: the same over a NUL-terminated string. Every hash table in the library uses it. */
#define PIKA_HASH_SEED 1469598103934665603ULL
uint64_t pika_hash_bytes(const void *p, size_t n, uint64_t h);
uint64_t pika_hash_str(const char *s);
/* String -> int64 map (open addressing, keys copied). Start with pika_strmap_init. */
typedef struct {
    char **keys;     /* [cap], NULL = empty slot */
    int64_t *vals;   /* [cap] */
    int64_t cap, len;
} pika_strmap;
void pika_strmap_init(pika_strmap *m);
void pika_strmap_free(pika_strmap *m);
/* Value of key, or -1 when absent. */
int64_t pika_strmap_get(const pika_strmap *m, const char *key);
/* Insert key -> val; returns the previous value or -1 when the key was new. */
int64_t pika_strmap_put(pika_strmap *m, const char *key, int64_t val);
/* 64-bit FNV-1a hash of a byte string, as 16 hex digits into out[17]. */
void pika_fingerprint(const char *s, char out[17]);

#endif
