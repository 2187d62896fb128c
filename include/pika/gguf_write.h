/* gguf_write.h — build and write GGUF v3 files (metadata + tensors), e.g. random-weight models
 * for benchmarks, test fixtures made at test time, and checkpoints of pika's own trainer.
 * Output uses llama.cpp's conventions (alignment 32, standard key and tensor names), so
 * llama.cpp can load what pika writes. Files are written atomically (tmp + rename).
 */
#ifndef PIKA_GGUF_WRITE_H
#define PIKA_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pika_gguf_writer pika_gguf_writer;

pika_gguf_writer *pika_gguf_writer_new(void);
void pika_gguf_writer_free(pika_gguf_writer *w);

/* Metadata (a key set twice keeps the last value). Strings are copied. */
void pika_gguf_set_u32(pika_gguf_writer *w, const char *key, uint32_t v);
void pika_gguf_set_i32(pika_gguf_writer *w, const char *key, int32_t v);
void pika_gguf_set_u64(pika_gguf_writer *w, const char *key, uint64_t v);
void pika_gguf_set_f32(pika_gguf_writer *w, const char *key, float v);
void pika_gguf_set_bool(pika_gguf_writer *w, const char *key, bool v);
void pika_gguf_set_str(pika_gguf_writer *w, const char *key, const char *v);
void pika_gguf_set_arr_str(pika_gguf_writer *w, const char *key, const char *const *v, size_t n);
void pika_gguf_set_arr_f32(pika_gguf_writer *w, const char *key, const float *v, size_t n);
void pika_gguf_set_arr_i32(pika_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* The remaining scalar types, and arrays of any fixed-size element type (elem_type = enum
 * pika_gguf_vtype other than STRING/ARRAY; data holds n little-endian elements). */
void pika_gguf_set_u8(pika_gguf_writer *w, const char *key, uint8_t v);
void pika_gguf_set_i8(pika_gguf_writer *w, const char *key, int8_t v);
void pika_gguf_set_u16(pika_gguf_writer *w, const char *key, uint16_t v);
void pika_gguf_set_i16(pika_gguf_writer *w, const char *key, int16_t v);
void pika_gguf_set_i64(pika_gguf_writer *w, const char *key, int64_t v);
void pika_gguf_set_f64(pika_gguf_writer *w, const char *key, double v);
void pika_gguf_set_arr(pika_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, size_t n);
/* Number of tensors added so far. */
size_t pika_gguf_writer_n_tensors(const pika_gguf_writer *w);

/* Add a tensor from float data, converted to `type` (enum pika_type) with pika_quantize_row.
 * ne in ggml order (ne[0] = row length). Data is copied/quantized immediately. */
int pika_gguf_add_tensor(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                         const float *data);
/* Add a tensor whose bytes are already in `type` layout (nbytes must match the shape). */
int pika_gguf_add_tensor_raw(pika_gguf_writer *w, const char *name, uint32_t type, int n_dims, const int64_t *ne,
                             const void *raw, size_t nbytes);

/* Write the file (tensors in the order added, each aligned to general.alignment, default 32).
 * A setter misused earlier (NULL key, bad element type) makes this fail. Returns 0 or -1 + error. */
int pika_gguf_writer_write(pika_gguf_writer *w, const char *path);

#endif
