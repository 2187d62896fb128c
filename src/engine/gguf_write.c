/* gguf_write.c — owns writing GGUF v3 files: metadata key/values (every GGUF value type, arrays
 * of fixed-size elements and of strings), tensor infos and aligned tensor data, written to
 * PATH.tmp, fsynced and renamed over PATH. Float tensors are converted with pika_quantize_row.
 *
 * Each metadata value is serialised to its final bytes (u32 type + payload) when it is set, so
 * writing is a plain concatenation. Tensor bytes are held in memory until pika_gguf_writer_write.
 */
#include "pika/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pika/gguf.h"
#include "pika/quant.h"
#include "pika/util.h"

typedef struct {
    char *key;
    uint8_t *val; /* u32 value type followed by the payload, exactly as in the file */
    size_t len;
} wkv;

typedef struct {
    char *name;
    uint32_t n_dims, type;
    int64_t ne[4];
    uint8_t *data;
    size_t nbytes;
} wtensor;

struct pika_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    char err[256]; /* first misuse of a void setter, reported by pika_gguf_writer_write */
};

/* ---------------------------------------------------------------- growable byte buffer */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf;

static void b_put(buf *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n) c *= 2;
        b->p = pika_realloc(b->p, c);
        b->cap = c;
    }
    if (n) memcpy(b->p + b->len, d, n);
    b->len += n;
}
static void b_u32(buf *b, uint32_t v) { b_put(b, &v, 4); } /* little-endian hosts only (x86, arm64) */
static void b_u64(buf *b, uint64_t v) { b_put(b, &v, 8); }
static void b_str(buf *b, const char *s, size_t n) {
    b_u64(b, n);
    b_put(b, s, n);
}

/* ---------------------------------------------------------------- writer */

pika_gguf_writer *pika_gguf_writer_new(void) { return pika_calloc(1, sizeof(pika_gguf_writer)); }

void pika_gguf_writer_free(pika_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

size_t pika_gguf_writer_n_tensors(const pika_gguf_writer *w) { return w->n_t; }

static void misuse(pika_gguf_writer *w, const char *msg, const char *key) {
    if (!w->err[0]) snprintf(w->err, sizeof w->err, "gguf writer: %s (key '%s')", msg, key ? key : "(null)");
}

/* Store the serialised value b (taken over) under key, replacing an earlier value. */
static void put_kv(pika_gguf_writer *w, const char *key, buf *b) {
    if (!key || !*key) {
        misuse(w, "empty metadata key", key);
        free(b->p);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].len = b->len;
            return;
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 32;
        w->kv = pika_realloc(w->kv, w->cap_kv * sizeof(wkv));
    }
    w->kv[w->n_kv].key = pika_strdup(key);
    w->kv[w->n_kv].val = b->p;
    w->kv[w->n_kv].len = b->len;
    w->n_kv++;
}

static void set_scalar(pika_gguf_writer *w, const char *key, uint32_t vtype, const void *v, size_t sz) {
    buf b = {0};
    b_u32(&b, vtype);
    b_put(&b, v, sz);
    put_kv(w, key, &b);
}

void pika_gguf_set_u8(pika_gguf_writer *w, const char *key, uint8_t v) { set_scalar(w, key, PIKA_GGUF_UINT8, &v, 1); }
void pika_gguf_set_i8(pika_gguf_writer *w, const char *key, int8_t v) { set_scalar(w, key, PIKA_GGUF_INT8, &v, 1); }
void pika_gguf_set_u16(pika_gguf_writer *w, const char *key, uint16_t v) { set_scalar(w, key, PIKA_GGUF_UINT16, &v, 2); }
void pika_gguf_set_i16(pika_gguf_writer *w, const char *key, int16_t v) { set_scalar(w, key, PIKA_GGUF_INT16, &v, 2); }
void pika_gguf_set_u32(pika_gguf_writer *w, const char *key, uint32_t v) { set_scalar(w, key, PIKA_GGUF_UINT32, &v, 4); }
void pika_gguf_set_i32(pika_gguf_writer *w, const char *key, int32_t v) { set_scalar(w, key, PIKA_GGUF_INT32, &v, 4); }
void pika_gguf_set_u64(pika_gguf_writer *w, const char *key, uint64_t v) { set_scalar(w, key, PIKA_GGUF_UINT64, &v, 8); }
void pika_gguf_set_i64(pika_gguf_writer *w, const char *key, int64_t v) { set_scalar(w, key, PIKA_GGUF_INT64, &v, 8); }
void pika_gguf_set_f32(pika_gguf_writer *w, const char *key, float v) { set_scalar(w, key, PIKA_GGUF_FLOAT32, &v, 4); }
void pika_gguf_set_f64(pika_gguf_writer *w, const char *key, double v) { set_scalar(w, key, PIKA_GGUF_FLOAT64, &v, 8); }
void pika_gguf_set_bool(pika_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    set_scalar(w, key, PIKA_GGUF_BOOL, &b, 1);
}

void pika_gguf_set_str(pika_gguf_writer *w, const char *key, const char *v) {
    if (!v) { misuse(w, "NULL string value", key); return; }
    buf b = {0};
    b_u32(&b, PIKA_GGUF_STRING);
    b_str(&b, v, strlen(v));
    put_kv(w, key, &b);
}

static size_t elem_size(uint32_t t) {
    switch (t) {
    case PIKA_GGUF_UINT8: case PIKA_GGUF_INT8: case PIKA_GGUF_BOOL: return 1;
    case PIKA_GGUF_UINT16: case PIKA_GGUF_INT16: return 2;
    case PIKA_GGUF_UINT32: case PIKA_GGUF_INT32: case PIKA_GGUF_FLOAT32: return 4;
    case PIKA_GGUF_UINT64: case PIKA_GGUF_INT64: case PIKA_GGUF_FLOAT64: return 8;
    }
    return 0;
}

void pika_gguf_set_arr(pika_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, size_t n) {
    size_t es = elem_size(elem_type);
    if (!es) { misuse(w, "array element type must be a fixed-size type", key); return; }
    if (n && !data) { misuse(w, "NULL array data", key); return; }
    buf b = {0};
    b_u32(&b, PIKA_GGUF_ARRAY);
    b_u32(&b, elem_type);
    b_u64(&b, n);
    b_put(&b, data, n * es);
    put_kv(w, key, &b);
}

void pika_gguf_set_arr_f32(pika_gguf_writer *w, const char *key, const float *v, size_t n) {
    pika_gguf_set_arr(w, key, PIKA_GGUF_FLOAT32, v, n);
}
void pika_gguf_set_arr_i32(pika_gguf_writer *w, const char *key, const int32_t *v, size_t n) {
    pika_gguf_set_arr(w, key, PIKA_GGUF_INT32, v, n);
}

void pika_gguf_set_arr_str(pika_gguf_writer *w, const char *key, const char *const *v, size_t n) {
    if (n && !v) { misuse(w, "NULL string array", key); return; }
    buf b = {0};
    b_u32(&b, PIKA_GGUF_ARRAY);
    b_u32(&b, PIKA_GGUF_STRING);
    b_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        const char *s = v[i] ? v[i] : "";
        b_str(&b, s, strlen(s));
    }
    put_kv(w, key, &b);
}

/* ---------------------------------------------------------------- tensors */

static int check_shape(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                       size_t *nbytes) {
    if (!name || !*name) return pika_set_error("gguf writer: tensor without a name");
    if (strlen(name) >= 64) return pika_set_error("gguf writer: tensor name '%s' is longer than 63 bytes", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return pika_set_error("gguf writer: duplicate tensor '%s'", name);
    if (n_dims < 1 || n_dims > 4) return pika_set_error("gguf writer: tensor '%s' has %d dims (1..4)", name, n_dims);
    int be = pika_type_block_elems(type);
    if (be <= 0) return pika_set_error("gguf writer: tensor '%s' has unknown type %u", name, type);
    int64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || ne[d] > (1ll << 40)) return pika_set_error("gguf writer: tensor '%s' dim %d is %lld", name, d, (long long)ne[d]);
        nel *= ne[d];
    }
    if (ne[0] % be) return pika_set_error("gguf writer: tensor '%s' row length %lld is not a multiple of the %s block size %d",
                                          name, (long long)ne[0], pika_type_name(type), be);
    *nbytes = pika_row_bytes(type, ne[0]) * (size_t)(nel / ne[0]);
    return 0;
}

static void push_tensor(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                        uint8_t *data, size_t nbytes) {
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        w->t = pika_realloc(w->t, w->cap_t * sizeof(wtensor));
    }
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    t->name = pika_strdup(name);
    t->n_dims = (uint32_t)n_dims;
    t->type = type;
    for (int d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
}

int pika_gguf_add_tensor(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                         const float *data) {
    size_t nbytes;
    if (check_shape(w, name, type, n_dims, ne, &nbytes)) return -1;
    if (!pika_type_supported(type)) return pika_set_error("gguf writer: cannot convert tensor '%s' to type %s", name, pika_type_name(type));
    int64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= ne[d];
    size_t rb = pika_row_bytes(type, ne[0]);
    uint8_t *q = pika_malloc(nbytes ? nbytes : 1);
    for (int64_t r = 0; r < rows; r++)
        if (pika_quantize_row(type, data + r * ne[0], q + (size_t)r * rb, ne[0])) { free(q); return -1; }
    push_tensor(w, name, type, n_dims, ne, q, nbytes);
    return 0;
}

int pika_gguf_add_tensor_raw(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                             const void *raw, size_t nbytes) {
    size_t want;
    if (check_shape(w, name, type, n_dims, ne, &want)) return -1;
    if (want != nbytes)
        return pika_set_error("gguf writer: tensor '%s' of type %s needs %zu bytes, got %zu", name, pika_type_name(type), want, nbytes);
    uint8_t *q = pika_malloc(nbytes ? nbytes : 1);
    memcpy(q, raw, nbytes);
    push_tensor(w, name, type, n_dims, ne, q, nbytes);
    return 0;
}

/* ---------------------------------------------------------------- file */

static uint64_t alignment_of(const pika_gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t vt, a;
        memcpy(&vt, w->kv[i].val, 4);
        if (vt != PIKA_GGUF_UINT32) return 0;
        memcpy(&a, w->kv[i].val + 4, 4);
        return a && !(a & (a - 1)) ? a : 0;
    }
    return 32;
}

int pika_gguf_writer_write(pika_gguf_writer *w, const char *path) {
    if (w->err[0]) return pika_set_error("%s", w->err);
    uint64_t align = alignment_of(w);
    if (!align) return pika_set_error("gguf writer: general.alignment must be a uint32 power of two");
    buf h = {0};
    b_put(&h, "GGUF", 4);
    b_u32(&h, 3);
    b_u64(&h, w->n_t);
    b_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        b_str(&h, w->kv[i].key, strlen(w->kv[i].key));
        b_put(&h, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        b_str(&h, t->name, strlen(t->name));
        b_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) b_u64(&h, (uint64_t)t->ne[d]);
        b_u32(&h, t->type);
        b_u64(&h, off);
        off += (t->nbytes + align - 1) / align * align;
    }
    static const uint8_t zeros[64] = {0};
    while (h.len % align) b_put(&h, zeros, (size_t)((align - h.len % align) < 64 ? align - h.len % align : 64));

    size_t pl = strlen(path);
    char *tmp = pika_malloc(pl + 5);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        pika_set_error("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(h.p);
        return -1;
    }
    int ok = fwrite(h.p, 1, h.len, f) == h.len;
    free(h.p);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
        size_t pad = (size_t)((t->nbytes + align - 1) / align * align - t->nbytes);
        while (ok && pad) {
            size_t k = pad < sizeof zeros ? pad : sizeof zeros;
            ok = fwrite(zeros, 1, k, f) == k;
            pad -= k;
        }
    }
    if (ok) ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) { ok = 0; err = errno; }
    if (ok && rename(tmp, path) != 0) { ok = 0; err = errno; }
    if (!ok) {
        pika_set_error("%s: cannot write GGUF: %s", path, strerror(err));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
