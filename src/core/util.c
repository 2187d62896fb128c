/* util.c — errors, checked allocation, file I/O, mmap, timing, progress and
 * fp16/bf16 conversion helpers used by every other module. */
#include "pika/util.h"

#include <errno.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_err[1024];

int pika_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -1;
}

int pika_error_context(const char *fmt, ...) {
    char prev[sizeof g_err], ctx[512];
    snprintf(prev, sizeof prev, "%s", g_err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    size_t n = strlen(ctx);
    if (n + 2 < sizeof g_err) {
        memcpy(g_err, ctx, n);
        memcpy(g_err + n, ": ", 2);
        size_t rest = sizeof g_err - n - 3, pl = strlen(prev);
        if (pl > rest) pl = rest;
        memcpy(g_err + n + 2, prev, pl);
        g_err[n + 2 + pl] = 0;
    }
    return -1;
}

const char *pika_last_error(void) { return g_err; }

void pika_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("pika: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    /* A fatal error: flush what was written and leave without exit-time handlers (memory still held
     * by the caller's frames is not a leak worth a sanitizer report, and must not change the status). */
    fflush(NULL);
    _exit(2);
}

static void oom(size_t n) {
    fprintf(stderr, "pika: out of memory allocating %zu bytes\n", n);
    abort();
}

void *pika_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *pika_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) oom(count * size);
    return p;
}

void *pika_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *pika_strdup(const char *s) { return pika_strndup(s, strlen(s)); }

char *pika_strndup(const char *s, size_t n) {
    char *d = pika_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void pika_buf_add(pika_buf *b, const char *p, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = pika_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}

void pika_buf_addc(pika_buf *b, char c) { pika_buf_add(b, &c, 1); }
void pika_buf_puts(pika_buf *b, const char *p) { pika_buf_add(b, p, strlen(p)); }

char *pika_read_stream(FILE *f, size_t *len_out) {
    size_t cap = 1 << 16, len = 0;
    char *buf = pika_malloc(cap);
    for (;;) {
        if (len + 1 >= cap) { cap *= 2; buf = pika_realloc(buf, cap); }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    if (ferror(f)) { free(buf); pika_set_error("read error: %s", strerror(errno)); return NULL; }
    buf[len] = 0;
    if (len_out) *len_out = len;
    return buf;
}

char *pika_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) { pika_set_error("cannot open %s: %s", path, strerror(errno)); return NULL; }
    char *buf = pika_read_stream(f, len_out);
    fclose(f);
    if (!buf) pika_set_error("error reading %s", path);
    return buf;
}

int pika_write_file_atomic(const char *path, const void *buf, size_t len) {
    size_t n = strlen(path) + 8;
    char *tmp = pika_malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) { pika_set_error("cannot write %s: %s", tmp, strerror(errno)); free(tmp); return -1; }
    int ok = fwrite(buf, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    if (ok) fsync(fileno(f));
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        pika_set_error("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int pika_mkdir_p(const char *path) {
    char *p = pika_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
            *s = '/';
        }
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) goto fail;
    free(p);
    return 0;
fail:
    pika_set_error("cannot create directory %s: %s", p, strerror(errno));
    free(p);
    return -1;
}

int pika_mmap_open(pika_mmap *m, const char *path) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pika_set_error("cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return pika_set_error("cannot stat %s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) { close(fd); return pika_set_error("%s is not a regular file", path); }
    m->size = (size_t)st.st_size;
    if (m->size > 0) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return pika_set_error("cannot mmap %s: %s", path, strerror(errno));
        }
        m->data = p;
    }
    close(fd);
    return 0;
}

void pika_mmap_close(pika_mmap *m) {
    if (m->data) munmap(m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

double pika_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int pika_n_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void pika_progress_begin(pika_progress *p, const char *label, int64_t total, int64_t already_done) {
    p->label = label;
    p->total = total;
    p->start_done = already_done;
    p->t_start = pika_now();
    p->t_last = 0;
    p->tty = isatty(STDERR_FILENO);
}

static void progress_print(pika_progress *p, int64_t done, int final) {
    double t = pika_now(), el = t - p->t_start;
    double rate = el > 0 ? (double)(done - p->start_done) / el : 0;
    char eta[32] = "?";
    if (rate > 0 && p->total > 0) {
        double s = (double)(p->total - done) / rate;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(s / 60), (int)s % 60);
    }
    fprintf(stderr, "\r%s %lld/%lld  %.1f/s  ETA %s   %s", p->label, (long long)done, (long long)p->total,
            rate, final ? "0m00s" : eta, final ? "\n" : "");
    fflush(stderr);
}

void pika_progress_update(pika_progress *p, int64_t done) {
    if (!p->tty) return;
    double t = pika_now();
    if (t - p->t_last < 0.2) return;
    p->t_last = t;
    progress_print(p, done, 0);
}

void pika_progress_end(pika_progress *p, int64_t done) {
    if (p->tty) progress_print(p, done, 1);
}

int pika_ids_common_prefix(const int32_t *a, int na, const int32_t *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

int pika_parse_int_list(const char *s, int32_t **out) {
    int cap = 16, n = 0;
    int32_t *v = pika_malloc(sizeof(int32_t) * (size_t)cap);
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX) {
            free(v);
            return pika_set_error("not an integer list: '%s'", s);
        }
        if (n == cap) { cap *= 2; v = pika_realloc(v, sizeof(int32_t) * (size_t)cap); }
        v[n++] = (int32_t)x;
        p = end;
    }
    *out = v;
    return n;
}

int pika_utf8_char_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int k;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; }
    else return 0;
    if ((size_t)k >= n) return 0;
    for (int j = 1; j <= k; j++) {
        if ((p[j] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[j] & 0x3F);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return k + 1;
}

int pika_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int k = pika_utf8_char_len(p + i, n - i);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

char *pika_utf8_repair(const char *s, size_t n, size_t *out_len) {
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int k = pika_utf8_char_len(p + i, n - i);
        if (k) {
            pika_buf_add(&b, s + i, (size_t)k);
            i += (size_t)k;
        } else {
            pika_buf_add(&b, "\xEF\xBF\xBD", 3); /* U+FFFD for each byte that starts no valid character */
            i++;
        }
    }
    if (out_len) *out_len = b.n;
    return b.s;
}

float pika_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pika_fp32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exponent: correct */
    return (uint16_t)(sign | h);
}

float pika_bf16_to_fp32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t pika_fp32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 64); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---------------------------------------------------------------- string map */

uint64_t pika_hash_bytes(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    return h;
}

uint64_t pika_hash_str(const char *s) { return pika_hash_bytes(s, strlen(s), PIKA_HASH_SEED); }

static uint64_t fnv1a(const char *s) { return pika_hash_str(s); }

void pika_fingerprint(const char *s, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)fnv1a(s)); }

void pika_strmap_init(pika_strmap *m) { memset(m, 0, sizeof *m); }

void pika_strmap_free(pika_strmap *m) {
    for (int64_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

int64_t pika_strmap_get(const pika_strmap *m, const char *key) {
    if (!m->cap) return -1;
    for (uint64_t i = fnv1a(key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        if (!m->keys[i]) return -1;
        if (!strcmp(m->keys[i], key)) return m->vals[i];
    }
}

static void strmap_grow(pika_strmap *m) {
    pika_strmap n = {0};
    n.cap = m->cap ? m->cap * 2 : 64;
    n.keys = pika_calloc((size_t)n.cap, sizeof(char *));
    n.vals = pika_calloc((size_t)n.cap, sizeof(int64_t));
    for (int64_t j = 0; j < m->cap; j++) {
        if (!m->keys[j]) continue;
        uint64_t i = fnv1a(m->keys[j]) & (uint64_t)(n.cap - 1);
        while (n.keys[i]) i = (i + 1) & (uint64_t)(n.cap - 1);
        n.keys[i] = m->keys[j];
        n.vals[i] = m->vals[j];
    }
    n.len = m->len;
    free(m->keys);
    free(m->vals);
    *m = n;
}

int64_t pika_strmap_put(pika_strmap *m, const char *key, int64_t val) {
    if ((m->len + 1) * 2 > m->cap) strmap_grow(m);
    uint64_t i = fnv1a(key) & (uint64_t)(m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (uint64_t)(m->cap - 1)) {
        if (!strcmp(m->keys[i], key)) {
            int64_t old = m->vals[i];
            m->vals[i] = val;
            return old;
        }
    }
    m->keys[i] = pika_strdup(key);
    m->vals[i] = val;
    m->len++;
    return -1;
}

/* ---------------------------------------------------------------- CPU features */

static int g_simd_detected = -1; /* -1 = not yet detected */
static int g_simd_override = -1; /* -1 = none */

int pika_simd_parse(const char *name) {
    if (!name || !*name || !strcmp(name, "auto")) return -1;
    if (!strcmp(name, "avx512")) return PIKA_SIMD_AVX512;
    if (!strcmp(name, "avx2")) return PIKA_SIMD_AVX2;
    if (!strcmp(name, "scalar")) return PIKA_SIMD_SCALAR;
    return -2;
}

const char *pika_simd_name(int level) {
    return level == PIKA_SIMD_AVX512 ? "avx512" : level == PIKA_SIMD_AVX2 ? "avx2" : "scalar";
}

int pika_simd_detected(void) {
    int p = __atomic_load_n(&g_simd_detected, __ATOMIC_RELAXED);
    if (p >= 0) return p;
    p = PIKA_SIMD_SCALAR;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0; /* F16C from CPUID leaf 1 (clang 14 has no "f16c" builtin name) */
    int f16c = __get_cpuid(1, &a1, &b1, &c1, &d1) && (c1 & bit_F16C);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) p = PIKA_SIMD_AVX2;
    if (p == PIKA_SIMD_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        p = PIKA_SIMD_AVX512;
#endif
    int env = pika_simd_parse(getenv("PIKA_SIMD"));
    if (env >= 0 && env < p) p = env;
    __atomic_store_n(&g_simd_detected, p, __ATOMIC_RELAXED);
    return p;
}

int pika_simd_level(void) {
    int o = __atomic_load_n(&g_simd_override, __ATOMIC_RELAXED);
    return o >= 0 ? o : pika_simd_detected();
}

int pika_simd_has_vnni(void) {
    static int v = -1;
    int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
    if (r < 0) {
        r = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        r = __builtin_cpu_supports("avx512vnni") ? 1 : 0;
#endif
        __atomic_store_n(&v, r, __ATOMIC_RELAXED);
    }
    return r && pika_simd_level() == PIKA_SIMD_AVX512;
}

int pika_simd_has_avx512_bf16(void) {
    static int v = -1;
    int r = __atomic_load_n(&v, __ATOMIC_RELAXED);
    if (r < 0) {
        r = 0;
#if defined(__x86_64__) && defined(__GNUC__)
        unsigned a, b, c, d;
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) r = (a >> 5) & 1; /* CPUID.(7,1):EAX bit 5 = AVX512_BF16 */
#endif
        __atomic_store_n(&v, r, __ATOMIC_RELAXED);
    }
    return r && pika_simd_level() == PIKA_SIMD_AVX512;
}

int pika_simd_override(int level) {
    if (level < 0) { __atomic_store_n(&g_simd_override, -1, __ATOMIC_RELAXED); return 0; }
    if (level > PIKA_SIMD_AVX512) return pika_set_error("unknown SIMD level %d", level);
    if (level > pika_simd_detected()) return pika_set_error("this CPU (or PIKA_SIMD) does not allow the %s path", pika_simd_name(level));
    __atomic_store_n(&g_simd_override, level, __ATOMIC_RELAXED);
    return 0;
}

/* ---------------------------------------------------------------- base64 */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pika_base64_encode(const void *p, size_t n) {
    const unsigned char *b = p;
    char *out = pika_malloc((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

void *pika_base64_decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    while (len && s[len - 1] == '=') len--;
    if (len % 4 == 1) { pika_set_error("base64: bad length"); return NULL; }
    unsigned char *out = pika_malloc(len / 4 * 3 + 3), *o = out;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *q = strchr(B64, s[i]);
        if (!q || !s[i]) { free(out); pika_set_error("base64: bad character at %zu", i); return NULL; }
        v = v << 6 | (uint32_t)(q - B64);
        bits += 6;
        if (bits >= 8) { bits -= 8; *o++ = (unsigned char)(v >> bits); }
    }
    *n = (size_t)(o - out);
    return out;
}

/* ---------------------------------------------------------------- report files */

FILE *pika_fopen_in(const char *dir, const char *name) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f) pika_set_error("cannot write %s", p);
    return f;
}

int pika_gnuplot_run(const char *dir, const char *script) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot '%s' >/dev/null 2>&1", dir, script);
    return system(cmd) == 0 ? 0 : pika_set_error("gnuplot failed on %s/%s", dir, script);
}
