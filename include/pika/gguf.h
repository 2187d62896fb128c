/* gguf.h — read-only access to GGUF v2/v3 files (llama.cpp's model format).
 *
 * The file is mmapped; keys, strings and tensor data point into the mapping and stay valid
 * until pika_gguf_close(). Every count, offset and size is validated against the file length
 * at open time, so a truncated or corrupt file fails in pika_gguf_open() with one clear error.
 *
 * Tensor shapes follow GGUF/ggml order: ne[0] is the fastest-varying (row length), so a 2-D
 * weight with ne = [n_in, n_out] is n_out rows of n_in elements (numpy shape [n_out, n_in]).
 */
#ifndef PIKA_GGUF_H
#define PIKA_GGUF_H

#include <stdbool.h>
#include <stdint.h>

#include "pika/util.h"

/* Metadata value types (GGUF spec numbering). */
enum pika_gguf_vtype {
    PIKA_GGUF_UINT8 = 0, PIKA_GGUF_INT8 = 1, PIKA_GGUF_UINT16 = 2, PIKA_GGUF_INT16 = 3,
    PIKA_GGUF_UINT32 = 4, PIKA_GGUF_INT32 = 5, PIKA_GGUF_FLOAT32 = 6, PIKA_GGUF_BOOL = 7,
    PIKA_GGUF_STRING = 8, PIKA_GGUF_ARRAY = 9, PIKA_GGUF_UINT64 = 10, PIKA_GGUF_INT64 = 11,
    PIKA_GGUF_FLOAT64 = 12,
};

/* A string inside the file: NOT NUL-terminated. */
typedef struct {
    const char *ptr;
    uint64_t len;
} pika_str;

typedef struct pika_gguf_value pika_gguf_value;
struct pika_gguf_value {
    uint32_t type; /* enum pika_gguf_vtype */
    union {
        uint64_t u64;   /* UINT8..UINT64 (zero-extended) */
        int64_t i64;    /* INT8..INT64 (sign-extended) */
        double f64;     /* FLOAT32/FLOAT64 */
        bool b;
        pika_str str;
        struct {
            uint32_t type;          /* element type */
            uint64_t n;             /* element count */
            const void *data;       /* raw little-endian elements, for fixed-size element types */
            pika_gguf_value *items; /* parsed elements, for STRING and nested ARRAY elements; else NULL */
        } arr;
    } v;
};

typedef struct {
    pika_str key;
    pika_gguf_value val;
} pika_gguf_kv;

#define PIKA_MAX_DIMS 4

typedef struct {
    char *name;                /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[PIKA_MAX_DIMS]; /* unused dims are 1 */
    uint32_t type;             /* enum pika_type (quant.h) */
    uint64_t offset;           /* relative to the data section */
    const void *data;          /* pointer into the mapping */
    uint64_t nbytes;
    int64_t n_elements;
} pika_gguf_tensor;

typedef struct {
    char *path;
    pika_mmap map;
    uint32_t version;
    uint64_t n_kv;
    pika_gguf_kv *kv;
    uint64_t n_tensors;
    pika_gguf_tensor *tensors;
    uint64_t alignment;   /* general.alignment or 32 */
    uint64_t data_offset; /* start of the tensor data section in the file */
} pika_gguf;

/* Open and validate. Returns NULL and sets the error ("<path>: <what is wrong>") on failure. */
pika_gguf *pika_gguf_open(const char *path);
void pika_gguf_close(pika_gguf *g);

/* Metadata lookup. NULL when absent. */
const pika_gguf_value *pika_gguf_get(const pika_gguf *g, const char *key);
/* Typed getters: return the value, or def when the key is absent or has a non-convertible type. */
int64_t pika_gguf_get_int(const pika_gguf *g, const char *key, int64_t def);
double pika_gguf_get_float(const pika_gguf *g, const char *key, double def);
bool pika_gguf_get_bool(const pika_gguf *g, const char *key, bool def);
/* malloc'ed NUL-terminated copy of a string value, or NULL when absent / not a string. */
char *pika_gguf_get_string(const pika_gguf *g, const char *key);
/* Array value (type ARRAY) or NULL. */
const pika_gguf_value *pika_gguf_get_array(const pika_gguf *g, const char *key);
/* Element i of a numeric array as double / int64 (caller checks bounds). pika_gguf_arr_int
 * truncates float elements toward zero, saturating at INT64_MIN/INT64_MAX; NaN gives 0. */
double pika_gguf_arr_float(const pika_gguf_value *arr, uint64_t i);
int64_t pika_gguf_arr_int(const pika_gguf_value *arr, uint64_t i);

/* Tensor lookup by name, NULL when absent. */
const pika_gguf_tensor *pika_gguf_find_tensor(const pika_gguf *g, const char *name);

/* Name of a metadata value type ("uint32", "array", ...). */
const char *pika_gguf_vtype_name(uint32_t t);

#endif
