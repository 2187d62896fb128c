/* npy.c — NumPy .npy reader (mmap, any little-endian numeric dtype) and writers
 * (whole-array float32, and a row-streaming writer with a patchable header for resumable jobs). */
#include "pika/npy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct { const char *descr; int dtype; size_t size; } DTYPES[] = {
    {"<f4", PIKA_NPY_F32, 4}, {"<f2", PIKA_NPY_F16, 2}, {"<f8", PIKA_NPY_F64, 8},
    {"<i4", PIKA_NPY_I32, 4}, {"<i8", PIKA_NPY_I64, 8}, {"|u1", PIKA_NPY_U8, 1},
    {"|i1", PIKA_NPY_I8, 1},  {"|b1", PIKA_NPY_BOOL, 1},
};

#define PIKA_NPY_MAX_HEADER (1u << 20) /* numpy itself writes a few hundred bytes */

static const char *descr_of(int dtype) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dtype == dtype) return DTYPES[i].descr;
    return NULL;
}

/* Find the value text following 'key': in a header dict. */
static const char *dict_find(const char *h, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 2 < n; i++) {
        if ((h[i] == '\'' || h[i] == '"') && !memcmp(h + i + 1, key, kl) && h[i + 1 + kl] == h[i]) {
            const char *p = h + i + kl + 2;
            while (p < h + n && (*p == ' ' || *p == ':')) p++;
            return p;
        }
    }
    return NULL;
}

/* allow_short: accept a file whose data is shorter than the header's shape says (a streaming
 * writer killed mid-row); the caller then counts the complete rows itself. */
static int npy_open(pika_npy *a, const char *path, int allow_short) {
    memset(a, 0, sizeof *a);
    if (pika_mmap_open(&a->map, path)) return -1;
    const unsigned char *b = a->map.data;
    size_t size = a->map.size;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        pika_mmap_close(&a->map);
        return pika_set_error("%s: not a .npy file (bad magic)", path);
    }
    int major = b[6];
    size_t hlen, hstart;
    if (major == 1) { hlen = (size_t)b[8] | ((size_t)b[9] << 8); hstart = 10; }
    else if (major == 2 || major == 3) {
        if (size < 12) goto trunc;
        hlen = (size_t)b[8] | ((size_t)b[9] << 8) | ((size_t)b[10] << 16) | ((size_t)b[11] << 24);
        hstart = 12;
    } else {
        pika_mmap_close(&a->map);
        return pika_set_error("%s: unsupported .npy version %d", path, major);
    }
    if (hstart + hlen > size) goto trunc;
    /* Parse a NUL-terminated copy of the header: the header in the file is not NUL-terminated,
     * and every scan below (strtoll, the shape's '(' and the fortran_order value) must stop at
     * its end rather than run on into the data or past the mapping. */
    if (hlen > PIKA_NPY_MAX_HEADER) {
        pika_mmap_close(&a->map);
        return pika_set_error("%s: .npy header of %zu bytes is too large", path, hlen);
    }
    char *h = pika_malloc(hlen + 1);
    memcpy(h, b + hstart, hlen);
    h[hlen] = 0;
    const char *err = NULL;
    const char *d = dict_find(h, hlen, "descr");
    const char *fo = dict_find(h, hlen, "fortran_order");
    const char *sh = dict_find(h, hlen, "shape");
    if (!d || !fo || !sh) { err = "malformed .npy header"; goto bad; }
    a->dtype = -1;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++) {
        const char *want = DTYPES[i].descr;
        if ((size_t)(h + hlen - d) > 5 && (d[0] == '\'' || d[0] == '"') && !memcmp(d + 1, want, 3) && d[4] == d[0]) {
            a->dtype = DTYPES[i].dtype;
            a->elem_size = DTYPES[i].size;
        }
    }
    if (a->dtype < 0) {
        int l = 0;
        while (d[l] && l < 8 && d[l] != ',') l++;
        pika_set_error("%s: unsupported dtype %.*s (need little-endian numeric)", path, l, d);
        free(h);
        pika_mmap_close(&a->map);
        return -1;
    }
    if (!strncmp(fo, "True", 4)) { err = "Fortran-order arrays are not supported"; goto bad; }
    if (strncmp(fo, "False", 5) != 0) { err = "malformed fortran_order in .npy header"; goto bad; }
    if (*sh != '(') { err = "malformed shape in .npy header"; goto bad; }
    const char *p = sh + 1;
    a->ndim = 0;
    a->count = 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *q;
        errno = 0;
        long long v = strtoll(p, &q, 10);
        if (q == p || errno || v < 0 || a->ndim >= PIKA_NPY_MAX_DIMS) { err = "malformed shape in .npy header"; goto bad; }
        a->shape[a->ndim++] = v;
        if (v > 0 && a->count > INT64_MAX / v) { err = "absurd shape in .npy header"; goto bad; }
        a->count *= v;
        p = q;
        if (*p != ',' && *p != ' ' && *p != ')') { err = "malformed shape in .npy header"; goto bad; }
    }
    free(h);
    h = NULL;
    size_t need = hstart + hlen;
    if ((uint64_t)a->count > (SIZE_MAX - need) / a->elem_size) goto trunc;
    if (need > size || (!allow_short && need + (size_t)a->count * a->elem_size > size)) goto trunc;
    a->data = b + need;
    return 0;
bad:
    free(h);
    pika_mmap_close(&a->map);
    return pika_set_error("%s: %s", path, err);
trunc:
    pika_mmap_close(&a->map);
    return pika_set_error("%s: truncated .npy file (%zu bytes)", path, size);
}

int pika_npy_open(pika_npy *a, const char *path) { return npy_open(a, path, 0); }

void pika_npy_close(pika_npy *a) { pika_mmap_close(&a->map); memset(a, 0, sizeof *a); }

float pika_npy_get_f32(const pika_npy *a, int64_t i) {
    const unsigned char *p = (const unsigned char *)a->data + (size_t)i * a->elem_size;
    switch (a->dtype) {
    case PIKA_NPY_F32: { float v; memcpy(&v, p, 4); return v; }
    case PIKA_NPY_F16: { uint16_t v; memcpy(&v, p, 2); return pika_fp16_to_fp32(v); }
    case PIKA_NPY_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case PIKA_NPY_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case PIKA_NPY_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case PIKA_NPY_U8: case PIKA_NPY_BOOL: return (float)p[0];
    case PIKA_NPY_I8: return (float)(int8_t)p[0];
    }
    return 0;
}

void pika_npy_read_f32(const pika_npy *a, int64_t start, int64_t n, float *dst) {
    if (a->dtype == PIKA_NPY_F32) { memcpy(dst, (const float *)a->data + start, (size_t)n * 4); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = pika_npy_get_f32(a, start + i);
}

float *pika_npy_load_f32(const char *path, int *ndim, int64_t *shape) {
    pika_npy a;
    if (pika_npy_open(&a, path)) return NULL;
    float *out = pika_malloc((size_t)(a.count ? a.count : 1) * sizeof(float));
    pika_npy_read_f32(&a, 0, a.count, out);
    if (ndim) *ndim = a.ndim;
    if (shape) memcpy(shape, a.shape, sizeof(int64_t) * (size_t)a.ndim);
    pika_npy_close(&a);
    return out;
}

/* Header of exactly `total` bytes (magic..'\n'), version 1.0. Returns bytes written into buf. */
static size_t make_header(char *buf, size_t total, int dtype, int ndim, const int64_t *shape) {
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr_of(dtype));
    for (int i = 0; i < ndim; i++) n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if (total == 0) { total = 10 + (size_t)n + 1; total = (total + 63) / 64 * 64; }
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10;
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', total - 10 - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}

int pika_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape) {
    char hdr[640];
    size_t hl = make_header(hdr, 0, PIKA_NPY_F32, ndim, shape);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    size_t len = hl + (size_t)count * 4;
    char *buf = pika_malloc(len);
    memcpy(buf, hdr, hl);
    memcpy(buf + hl, data, (size_t)count * 4);
    int rc = pika_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}

#define STREAM_HEADER 256 /* fixed header size so the row count can be patched in place */

int pika_npy_writer_open(pika_npy_writer *w, const char *path, int dtype, int ndim_tail, const int64_t *tail) {
    memset(w, 0, sizeof *w);
    if ((dtype != PIKA_NPY_F32 && dtype != PIKA_NPY_F16) || ndim_tail + 1 > PIKA_NPY_MAX_DIMS)
        return pika_set_error("npy writer: unsupported dtype or rank");
    w->f = fopen(path, "w+b");
    if (!w->f) return pika_set_error("cannot write %s: %s", path, strerror(errno));
    w->path = pika_strdup(path);
    w->dtype = dtype;
    w->ndim = ndim_tail + 1;
    w->shape[0] = 0;
    w->row_elems = 1;
    for (int i = 0; i < ndim_tail; i++) { w->shape[i + 1] = tail[i]; w->row_elems *= tail[i]; }
    w->header_len = STREAM_HEADER;
    return pika_npy_writer_flush(w);
}

int pika_npy_writer_reopen(pika_npy_writer *w, const char *path) {
    memset(w, 0, sizeof *w);
    pika_npy a;
    if (npy_open(&a, path, 1)) return -1;
    size_t hl = (size_t)((const char *)a.data - (const char *)a.map.data);
    int dtype = a.dtype, ndim = a.ndim;
    int64_t shape[PIKA_NPY_MAX_DIMS];
    memcpy(shape, a.shape, sizeof shape);
    size_t esz = a.elem_size, fsize = a.map.size;
    pika_npy_close(&a);
    if (hl != STREAM_HEADER || ndim < 1 || (dtype != PIKA_NPY_F32 && dtype != PIKA_NPY_F16))
        return pika_set_error("%s: not written by pika's streaming writer; cannot resume", path);
    w->f = fopen(path, "r+b");
    if (!w->f) return pika_set_error("cannot open %s: %s", path, strerror(errno));
    w->path = pika_strdup(path);
    w->dtype = dtype;
    w->ndim = ndim;
    memcpy(w->shape, shape, sizeof shape);
    w->row_elems = 1;
    for (int i = 1; i < ndim; i++) w->row_elems *= shape[i];
    w->header_len = hl;
    /* rows actually present on disk may exceed the header count if killed after writing but before flush */
    int64_t row_bytes = w->row_elems * (int64_t)esz;
    int64_t rows_on_disk = row_bytes ? (int64_t)(fsize - hl) / row_bytes : 0;
    if (rows_on_disk < w->shape[0]) w->shape[0] = rows_on_disk;
    if (ftruncate(fileno(w->f), (off_t)(hl + (size_t)(w->shape[0] * row_bytes))) != 0)
        return pika_set_error("cannot truncate %s: %s", path, strerror(errno));
    return pika_npy_writer_flush(w);
}

int pika_npy_writer_append(pika_npy_writer *w, const float *rows, int64_t n) {
    size_t esz = w->dtype == PIKA_NPY_F32 ? 4 : 2;
    int64_t cnt = n * w->row_elems;
    if (fseeko(w->f, (off_t)(w->header_len + (size_t)(w->shape[0] * w->row_elems) * esz), SEEK_SET) != 0)
        return pika_set_error("seek failed on %s", w->path);
    size_t wrote;
    if (w->dtype == PIKA_NPY_F32) {
        wrote = fwrite(rows, 4, (size_t)cnt, w->f);
    } else {
        uint16_t *tmp = pika_malloc((size_t)cnt * 2);
        for (int64_t i = 0; i < cnt; i++) tmp[i] = pika_fp32_to_fp16(rows[i]);
        wrote = fwrite(tmp, 2, (size_t)cnt, w->f);
        free(tmp);
    }
    if (wrote != (size_t)cnt) return pika_set_error("write failed on %s: %s", w->path, strerror(errno));
    w->shape[0] += n;
    return 0;
}

int pika_npy_writer_flush(pika_npy_writer *w) {
    char hdr[STREAM_HEADER];
    make_header(hdr, w->header_len, w->dtype, w->ndim, w->shape);
    if (fflush(w->f) != 0 || fseeko(w->f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, w->header_len, w->f) != w->header_len ||
        fflush(w->f) != 0)
        return pika_set_error("write failed on %s: %s", w->path, strerror(errno));
    fsync(fileno(w->f));
    return 0;
}

int pika_npy_writer_close(pika_npy_writer *w) {
    if (!w->f) return 0;
    int rc = pika_npy_writer_flush(w);
    if (fclose(w->f) != 0 && rc == 0) rc = pika_set_error("close failed on %s", w->path);
    w->f = NULL;
    free(w->path);
    w->path = NULL;
    return rc;
}
