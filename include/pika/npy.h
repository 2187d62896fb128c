/* npy.h — NumPy .npy files (format 1.0/2.0/3.0): write float32/float16 arrays, and read any
 * little-endian numeric array either mmapped (zero-copy) or converted to float32.
 * Only C-order arrays are accepted on read; Fortran order is a clear error.
 */
#ifndef PIKA_NPY_H
#define PIKA_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "pika/util.h"

#define PIKA_NPY_MAX_DIMS 8

enum pika_npy_dtype {
    PIKA_NPY_F32, PIKA_NPY_F16, PIKA_NPY_F64, PIKA_NPY_I32, PIKA_NPY_I64,
    PIKA_NPY_U8, PIKA_NPY_I8, PIKA_NPY_BOOL,
};

typedef struct {
    int dtype;                       /* enum pika_npy_dtype */
    int ndim;
    int64_t shape[PIKA_NPY_MAX_DIMS];
    int64_t count;                   /* product of shape */
    size_t elem_size;                /* bytes per element */
    pika_mmap map;
    const void *data;                /* first element, inside the mapping */
} pika_npy;

/* mmap and validate (header, dtype, file length >= header + count*elem_size). */
int pika_npy_open(pika_npy *a, const char *path);
void pika_npy_close(pika_npy *a);
/* Element i converted to float (any dtype). */
float pika_npy_get_f32(const pika_npy *a, int64_t i);
/* Convert elements [start, start+n) to float32 into dst. */
void pika_npy_read_f32(const pika_npy *a, int64_t start, int64_t n, float *dst);
/* Load a whole array as malloc'ed float32 (shape into shape/ndim when non-NULL). */
float *pika_npy_load_f32(const char *path, int *ndim, int64_t *shape);

/* Write a whole float32 array atomically. */
int pika_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* Streaming writer for arrays whose first dimension grows (datasets written row by row):
 * the header reserves room so the first dimension can be patched on close/flush. */
typedef struct {
    FILE *f;
    char *path;
    int dtype;              /* PIKA_NPY_F32 or PIKA_NPY_F16 */
    int ndim;
    int64_t shape[PIKA_NPY_MAX_DIMS]; /* shape[0] = rows written so far */
    int64_t row_elems;      /* product of shape[1..] */
    size_t header_len;
} pika_npy_writer;
/* Create (truncate) path; rows of shape tail[0..ndim_tail). */
int pika_npy_writer_open(pika_npy_writer *w, const char *path, int dtype, int ndim_tail, const int64_t *tail);
/* Reopen an existing file written by this writer to append more rows (resume). The file is
 * truncated to its last complete row. */
int pika_npy_writer_reopen(pika_npy_writer *w, const char *path);
/* Append n rows of float32 (converted to the writer's dtype). */
int pika_npy_writer_append(pika_npy_writer *w, const float *rows, int64_t n);
/* Patch the header with the current row count and fflush/fsync. */
int pika_npy_writer_flush(pika_npy_writer *w);
int pika_npy_writer_close(pika_npy_writer *w);

#endif
