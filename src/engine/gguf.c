/* gguf.c — GGUF v2/v3 reader: mmap the file, parse metadata (all value types, nested arrays)
 * and tensor infos, and validate every count, offset and size against the file length.
 *
 * File layout (little-endian):
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv × { string key | u32 type | value }          string = u64 len + bytes
 *   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to `general.alignment` (default 32) | tensor data (each offset aligned)
 */
#include "pika/gguf.h"

#include <stdlib.h>
#include <string.h>

#include "pika/quant.h"

#define MAX_ARRAY_DEPTH 4
#define MAX_ALIGNMENT (1 << 20) /* llama.cpp writes 32; anything past 1 MiB is corruption */

typedef struct {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    int failed;
} reader;

static int rfail(reader *r, const char *what) {
    if (!r->failed) pika_set_error("%s: corrupt or truncated GGUF: %s (at byte %llu of %llu)", r->path, what,
                                   (unsigned long long)r->pos, (unsigned long long)r->size);
    r->failed = 1;
    return -1;
}

static int need(reader *r, uint64_t n, const char *what) {
    if (r->failed) return -1;
    if (n > r->size - r->pos) return rfail(r, what);
    return 0;
}

static uint32_t rd_u32(reader *r, const char *what) {
    uint32_t v = 0;
    if (need(r, 4, what) == 0) { memcpy(&v, r->base + r->pos, 4); r->pos += 4; }
    return v;
}

static uint64_t rd_u64(reader *r, const char *what) {
    uint64_t v = 0;
    if (need(r, 8, what) == 0) { memcpy(&v, r->base + r->pos, 8); r->pos += 8; }
    return v;
}

static pika_str rd_str(reader *r, const char *what) {
    pika_str s = {"", 0};
    uint64_t n = rd_u64(r, what);
    if (need(r, n, what) == 0) { s.ptr = (const char *)r->base + r->pos; s.len = n; r->pos += n; }
    return s;
}

/* Size in bytes of a fixed-size scalar type; 0 for STRING/ARRAY; -1 unknown. */
static int scalar_size(uint32_t t) {
    switch (t) {
    case PIKA_GGUF_UINT8: case PIKA_GGUF_INT8: case PIKA_GGUF_BOOL: return 1;
    case PIKA_GGUF_UINT16: case PIKA_GGUF_INT16: return 2;
    case PIKA_GGUF_UINT32: case PIKA_GGUF_INT32: case PIKA_GGUF_FLOAT32: return 4;
    case PIKA_GGUF_UINT64: case PIKA_GGUF_INT64: case PIKA_GGUF_FLOAT64: return 8;
    case PIKA_GGUF_STRING: case PIKA_GGUF_ARRAY: return 0;
    }
    return -1;
}

static void decode_scalar(uint32_t t, const uint8_t *p, pika_gguf_value *v) {
    v->type = t;
    switch (t) {
    case PIKA_GGUF_UINT8: v->v.u64 = p[0]; break;
    case PIKA_GGUF_INT8: v->v.i64 = (int8_t)p[0]; break;
    case PIKA_GGUF_BOOL: v->v.b = p[0] != 0; break;
    case PIKA_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->v.u64 = x; break; }
    case PIKA_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->v.i64 = x; break; }
    case PIKA_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->v.u64 = x; break; }
    case PIKA_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v->v.i64 = x; break; }
    case PIKA_GGUF_FLOAT32: { float x; memcpy(&x, p, 4); v->v.f64 = x; break; }
    case PIKA_GGUF_UINT64: memcpy(&v->v.u64, p, 8); break;
    case PIKA_GGUF_INT64: memcpy(&v->v.i64, p, 8); break;
    case PIKA_GGUF_FLOAT64: memcpy(&v->v.f64, p, 8); break;
    }
}

static int value_int(const pika_gguf_value *v, int64_t *out);

static void free_value(pika_gguf_value *v) {
    if (v->type != PIKA_GGUF_ARRAY || !v->v.arr.items) return;
    if (v->v.arr.type == PIKA_GGUF_ARRAY)
        for (uint64_t i = 0; i < v->v.arr.n; i++) free_value(&v->v.arr.items[i]);
    free(v->v.arr.items);
    v->v.arr.items = NULL;
}

static int read_value(reader *r, uint32_t t, pika_gguf_value *v, int depth) {
    memset(v, 0, sizeof *v);
    v->type = t;
    int sz = scalar_size(t);
    if (sz < 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "unknown metadata value type %u", t);
        return rfail(r, msg);
    }
    if (sz > 0) {
        if (need(r, (uint64_t)sz, "metadata value")) return -1;
        decode_scalar(t, r->base + r->pos, v);
        r->pos += (uint64_t)sz;
        return 0;
    }
    if (t == PIKA_GGUF_STRING) {
        v->v.str = rd_str(r, "string value");
        return r->failed ? -1 : 0;
    }
    /* array */
    if (depth >= MAX_ARRAY_DEPTH) return rfail(r, "arrays nested too deeply");
    uint32_t et = rd_u32(r, "array element type");
    uint64_t n = rd_u64(r, "array length");
    if (r->failed) return -1;
    int esz = scalar_size(et);
    if (esz < 0) return rfail(r, "unknown array element type");
    v->v.arr.type = et;
    v->v.arr.n = n;
    if (esz > 0) {
        if (n > (r->size - r->pos) / (uint64_t)esz) return rfail(r, "array longer than the file");
        v->v.arr.data = r->base + r->pos;
        r->pos += n * (uint64_t)esz;
        return 0;
    }
    /* strings (>= 8 bytes each) or nested arrays (>= 12 bytes each): bound n by the bytes left */
    uint64_t min_elem = et == PIKA_GGUF_STRING ? 8 : 12;
    if (n > (r->size - r->pos) / min_elem) return rfail(r, "array longer than the file");
    v->v.arr.data = r->base + r->pos;
    v->v.arr.items = pika_calloc((size_t)(n ? n : 1), sizeof(pika_gguf_value));
    for (uint64_t i = 0; i < n; i++) {
        if (et == PIKA_GGUF_STRING) {
            v->v.arr.items[i].type = PIKA_GGUF_STRING;
            v->v.arr.items[i].v.str = rd_str(r, "string array element");
            if (r->failed) return -1;
        } else {
            /* a nested element is a whole array value: {u32 elem_type, u64 n, elems} */
            if (read_value(r, PIKA_GGUF_ARRAY, &v->v.arr.items[i], depth + 1)) return -1;
        }
    }
    return 0;
}

void pika_gguf_close(pika_gguf *g) {
    if (!g) return;
    if (g->kv) {
        for (uint64_t i = 0; i < g->n_kv; i++) free_value(&g->kv[i].val);
        free(g->kv);
    }
    if (g->tensors) {
        for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
        free(g->tensors);
    }
    pika_mmap_close(&g->map);
    free(g->path);
    free(g);
}

static const pika_gguf *sort_g;
static int by_offset(const void *a, const void *b) {
    uint64_t x = sort_g->tensors[*(const uint64_t *)a].offset, y = sort_g->tensors[*(const uint64_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Tensor data ranges [offset, offset + nbytes) must not overlap (every tensor has >= 1 byte). */
static int check_overlap(const pika_gguf *g) {
    if (g->n_tensors < 2) return 0;
    uint64_t *ix = pika_malloc((size_t)g->n_tensors * sizeof *ix);
    for (uint64_t i = 0; i < g->n_tensors; i++) ix[i] = i;
    sort_g = g;
    qsort(ix, (size_t)g->n_tensors, sizeof *ix, by_offset);
    int rc = 0;
    for (uint64_t i = 1; i < g->n_tensors; i++) {
        const pika_gguf_tensor *a = &g->tensors[ix[i - 1]], *b = &g->tensors[ix[i]];
        if (b->offset < a->offset + a->nbytes) {
            rc = pika_set_error("%s: corrupt GGUF: tensor '%s' (%llu bytes at data offset %llu) overlaps tensor '%s' "
                                "(at data offset %llu)",
                                g->path, a->name, (unsigned long long)a->nbytes, (unsigned long long)a->offset, b->name,
                                (unsigned long long)b->offset);
            break;
        }
    }
    free(ix);
    return rc;
}

pika_gguf *pika_gguf_open(const char *path) {
    pika_gguf *g = pika_calloc(1, sizeof *g);
    g->path = pika_strdup(path);
    if (pika_mmap_open(&g->map, path)) { pika_gguf_close(g); return NULL; }
    reader r = {g->map.data, g->map.size, 0, path, 0};
    if (r.size < 24 || memcmp(r.base, "GGUF", 4) != 0) {
        pika_set_error("%s: not a GGUF file (bad magic or shorter than a header)", path);
        pika_gguf_close(g);
        return NULL;
    }
    r.pos = 4;
    g->version = rd_u32(&r, "version");
    if (g->version != 2 && g->version != 3) {
        pika_set_error("%s: unsupported GGUF version %u (need 2 or 3)", path, g->version);
        pika_gguf_close(g);
        return NULL;
    }
    uint64_t n_tensors = rd_u64(&r, "tensor count");
    uint64_t n_kv = rd_u64(&r, "metadata count");
    /* each kv takes >= 8+4+1 bytes, each tensor info >= 8+4+8+4+8 */
    if (n_kv > (r.size - r.pos) / 13 || n_tensors > (r.size - r.pos) / 32) {
        pika_set_error("%s: corrupt GGUF: absurd counts (%llu tensors, %llu metadata keys) for a %llu-byte file", path,
                       (unsigned long long)n_tensors, (unsigned long long)n_kv, (unsigned long long)r.size);
        pika_gguf_close(g);
        return NULL;
    }
    g->kv = pika_calloc((size_t)(n_kv ? n_kv : 1), sizeof(pika_gguf_kv));
    for (uint64_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1;
        g->kv[i].key = rd_str(&r, "metadata key");
        uint32_t t = rd_u32(&r, "metadata type");
        if (r.failed || read_value(&r, t, &g->kv[i].val, 0)) { pika_gguf_close(g); return NULL; }
    }
    g->alignment = 32;
    const pika_gguf_value *al = pika_gguf_get(g, "general.alignment");
    if (al) {
        int64_t a;
        if (value_int(al, &a) != 0 || al->type == PIKA_GGUF_BOOL) {
            pika_set_error("%s: corrupt GGUF: general.alignment has type %s (need an integer)", path,
                           pika_gguf_vtype_name(al->type));
            pika_gguf_close(g);
            return NULL;
        }
        /* unsigned types are read as such, so 2^63 is "too large", not negative */
        int is_unsigned = al->type == PIKA_GGUF_UINT8 || al->type == PIKA_GGUF_UINT16 || al->type == PIKA_GGUF_UINT32 ||
                          al->type == PIKA_GGUF_UINT64;
        uint64_t ua = is_unsigned ? al->v.u64 : (uint64_t)a;
        if ((!is_unsigned && a <= 0) || ua == 0 || (ua & (ua - 1))) {
            if (is_unsigned) pika_set_error("%s: corrupt GGUF: general.alignment %llu is not a power of two", path,
                                            (unsigned long long)ua);
            else pika_set_error("%s: corrupt GGUF: general.alignment %lld is not a power of two", path, (long long)a);
            pika_gguf_close(g);
            return NULL;
        }
        if (ua > MAX_ALIGNMENT) {
            pika_set_error("%s: corrupt GGUF: general.alignment %llu is too large (at most %d)", path,
                           (unsigned long long)ua, MAX_ALIGNMENT);
            pika_gguf_close(g);
            return NULL;
        }
        g->alignment = ua;
    }
    g->tensors = pika_calloc((size_t)(n_tensors ? n_tensors : 1), sizeof(pika_gguf_tensor));
    for (uint64_t i = 0; i < n_tensors; i++) {
        pika_gguf_tensor *t = &g->tensors[i];
        g->n_tensors = i + 1;
        pika_str name = rd_str(&r, "tensor name");
        t->name = pika_strndup(name.ptr, (size_t)name.len);
        t->n_dims = rd_u32(&r, "tensor n_dims");
        if (r.failed) { pika_gguf_close(g); return NULL; }
        if (t->n_dims == 0 || t->n_dims > PIKA_MAX_DIMS) {
            pika_set_error("%s: corrupt GGUF: tensor '%s' has %u dims", path, t->name, t->n_dims);
            pika_gguf_close(g);
            return NULL;
        }
        for (int d = 0; d < PIKA_MAX_DIMS; d++) t->ne[d] = 1;
        t->n_elements = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne = rd_u64(&r, "tensor dims");
            if (r.failed) { pika_gguf_close(g); return NULL; }
            if (ne == 0 || ne > (1ull << 40) || (uint64_t)t->n_elements > (1ull << 50) / ne) {
                pika_set_error("%s: corrupt GGUF: tensor '%s' has absurd dimension %llu", path, t->name,
                               (unsigned long long)ne);
                pika_gguf_close(g);
                return NULL;
            }
            t->ne[d] = (int64_t)ne;
            t->n_elements *= (int64_t)ne;
        }
        t->type = rd_u32(&r, "tensor type");
        t->offset = rd_u64(&r, "tensor offset");
        if (r.failed) { pika_gguf_close(g); return NULL; }
        int be = pika_type_block_elems(t->type);
        size_t bb = pika_type_block_bytes(t->type);
        if (be <= 0 || bb == 0) {
            pika_set_error("%s: tensor '%s' has unknown tensor type %u", path, t->name, t->type);
            pika_gguf_close(g);
            return NULL;
        }
        if (t->ne[0] % be != 0) {
            pika_set_error("%s: corrupt GGUF: tensor '%s' row length %lld is not a multiple of the %s block size %d",
                           path, t->name, (long long)t->ne[0], pika_type_name(t->type), be);
            pika_gguf_close(g);
            return NULL;
        }
        t->nbytes = (uint64_t)(t->n_elements / be) * bb;
    }
    uint64_t data_off = (r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (data_off > r.size) data_off = r.size;
    g->data_offset = data_off;
    uint64_t data_size = r.size - data_off;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        pika_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0) {
            pika_set_error("%s: corrupt GGUF: tensor '%s' offset %llu is not aligned to %llu", path, t->name,
                           (unsigned long long)t->offset, (unsigned long long)g->alignment);
            pika_gguf_close(g);
            return NULL;
        }
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            pika_set_error("%s: truncated or corrupt GGUF: tensor '%s' (%llu bytes at data offset %llu) lies past the "
                           "end of the file (data section is %llu bytes)",
                           path, t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                           (unsigned long long)data_size);
            pika_gguf_close(g);
            return NULL;
        }
        t->data = (const uint8_t *)g->map.data + data_off + t->offset;
    }
    if (check_overlap(g)) { pika_gguf_close(g); return NULL; }
    return g;
}

const pika_gguf_value *pika_gguf_get(const pika_gguf *g, const char *key) {
    size_t kl = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key.len == kl && !memcmp(g->kv[i].key.ptr, key, kl)) return &g->kv[i].val;
    return NULL;
}

static int value_int(const pika_gguf_value *v, int64_t *out) {
    switch (v->type) {
    case PIKA_GGUF_UINT8: case PIKA_GGUF_UINT16: case PIKA_GGUF_UINT32: case PIKA_GGUF_UINT64:
        *out = (int64_t)v->v.u64; return 0;
    case PIKA_GGUF_INT8: case PIKA_GGUF_INT16: case PIKA_GGUF_INT32: case PIKA_GGUF_INT64:
        *out = v->v.i64; return 0;
    case PIKA_GGUF_BOOL: *out = v->v.b; return 0;
    }
    return -1;
}

int64_t pika_gguf_get_int(const pika_gguf *g, const char *key, int64_t def) {
    const pika_gguf_value *v = pika_gguf_get(g, key);
    int64_t x;
    return v && value_int(v, &x) == 0 ? x : def;
}

double pika_gguf_get_float(const pika_gguf *g, const char *key, double def) {
    const pika_gguf_value *v = pika_gguf_get(g, key);
    if (!v) return def;
    if (v->type == PIKA_GGUF_FLOAT32 || v->type == PIKA_GGUF_FLOAT64) return v->v.f64;
    int64_t x;
    return value_int(v, &x) == 0 ? (double)x : def;
}

bool pika_gguf_get_bool(const pika_gguf *g, const char *key, bool def) {
    const pika_gguf_value *v = pika_gguf_get(g, key);
    int64_t x;
    return v && value_int(v, &x) == 0 ? x != 0 : def;
}

char *pika_gguf_get_string(const pika_gguf *g, const char *key) {
    const pika_gguf_value *v = pika_gguf_get(g, key);
    if (!v || v->type != PIKA_GGUF_STRING) return NULL;
    return pika_strndup(v->v.str.ptr, (size_t)v->v.str.len);
}

const pika_gguf_value *pika_gguf_get_array(const pika_gguf *g, const char *key) {
    const pika_gguf_value *v = pika_gguf_get(g, key);
    return v && v->type == PIKA_GGUF_ARRAY ? v : NULL;
}

double pika_gguf_arr_float(const pika_gguf_value *arr, uint64_t i) {
    pika_gguf_value e;
    int sz = scalar_size(arr->v.arr.type);
    if (sz <= 0) return 0;
    decode_scalar(arr->v.arr.type, (const uint8_t *)arr->v.arr.data + i * (uint64_t)sz, &e);
    if (e.type == PIKA_GGUF_FLOAT32 || e.type == PIKA_GGUF_FLOAT64) return e.v.f64;
    int64_t x = 0;
    value_int(&e, &x);
    return (double)x;
}

int64_t pika_gguf_arr_int(const pika_gguf_value *arr, uint64_t i) {
    pika_gguf_value e;
    int sz = scalar_size(arr->v.arr.type);
    if (sz <= 0) return 0;
    decode_scalar(arr->v.arr.type, (const uint8_t *)arr->v.arr.data + i * (uint64_t)sz, &e);
    if (e.type == PIKA_GGUF_FLOAT32 || e.type == PIKA_GGUF_FLOAT64) {
        /* truncate toward zero, saturating: converting a double outside int64's range is UB */
        double f = e.v.f64;
        if (f != f) return 0;
        if (f >= 9223372036854775808.0) return INT64_MAX;
        if (f < -9223372036854775808.0) return INT64_MIN;
        return (int64_t)f;
    }
    int64_t x = 0;
    value_int(&e, &x);
    return x;
}

const pika_gguf_tensor *pika_gguf_find_tensor(const pika_gguf *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

const char *pika_gguf_vtype_name(uint32_t t) {
    static const char *names[] = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
                                  "bool", "string", "array", "uint64", "int64", "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}
