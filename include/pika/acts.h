/* acts.h — the activation store (a directory: meta.json + ids.txt + layer_XX.npy), its streaming
 * writer. (The labels JSONL reader is in labels.h; the string map in util.h.)
 *
 * Store layout (format "pika-acts", version 1):
 *   meta.json   {"format":"pika-acts","version":1,"n":N,"d_model":D,"layers":[0,..],
 *                "positions":[-5,..,-1],"dtype":"float16"|"float32","model":<any JSON>,"prompt":<any JSON>}
 *   ids.txt     one example id per line, row order (N lines)
 *   layer_XX.npy  one per entry of "layers" (XX = layer number, 2+ digits), shape [N, P, D],
 *               float16 or float32. Layer 0 = token embeddings, layer i = residual stream after block i.
 *               Positions are negative offsets from the prompt end (-1 = last prompt token).
 * Readers mmap one layer file at a time (opened lazily, released with pika_acts_release_layer);
 * the store is never loaded whole.
 */
#ifndef PIKA_ACTS_H
#define PIKA_ACTS_H

#include <stdint.h>

#include "pika/npy.h"
#include "pika/util.h" /* pika_strmap, pika_fingerprint */

#define PIKA_ACTS_VERSION 1

/* ---- reader ---- */
typedef struct {
    char *dir;
    int64_t n;             /* examples (rows) */
    int d_model;
    int n_layers;
    int32_t *layers;       /* [n_layers] layer numbers */
    int n_pos;
    int32_t *positions;    /* [n_pos] negative offsets */
    int dtype;             /* PIKA_NPY_F16 or PIKA_NPY_F32 */
    char *model_json;      /* "model" value printed unformatted ("null" when absent) */
    char *prompt_json;     /* "prompt" value printed unformatted ("null" when absent) */
    char fingerprint[17];  /* FNV-1a of model_json + "\n" + prompt_json */
    char **ids;            /* [n] */
    pika_strmap id_index;  /* id -> row */
    pika_npy *npy;         /* [n_layers], opened lazily */
    int *opened;           /* [n_layers] */
} pika_acts;

/* Open a store: parse meta.json, read ids.txt (count must equal n, ids unique and non-empty).
 * Layer files are validated when first used. */
int pika_acts_open(pika_acts *a, const char *dir);
void pika_acts_close(pika_acts *a);
/* Index of a layer number / position offset in the store, -1 (+ error) if absent. */
int pika_acts_layer_index(const pika_acts *a, int layer);
int pika_acts_pos_index(const pika_acts *a, int position);
/* Copy features of (layer index li, position index pi) for rows[0..m) into dst [m x d_model] as
 * double. rows == NULL means rows 0..m-1. Fails on NaN/Inf (naming the row id) or a bad layer file. */
int pika_acts_read(pika_acts *a, int li, int pi, const int64_t *rows, int64_t m, double *dst);
/* Unmap a layer file (it is reopened on the next read). */
void pika_acts_release_layer(pika_acts *a, int li);

/* ---- writer (streaming, resumable) ---- */
typedef struct {
    char *dir;
    int d_model, n_layers, n_pos, dtype;
    int32_t *layers, *positions;
    char *model_json, *prompt_json;
    pika_npy_writer *w;    /* [n_layers] */
    FILE *ids;
    int64_t n;
} pika_acts_writer;

/* Create a store in dir (created if missing). model_json / prompt_json are JSON texts (NULL -> null).
 * With resume != 0 and an existing store of the same layout, reopen it and keep its complete rows
 * (rows present in every layer file and in ids.txt); otherwise start empty. */
int pika_acts_writer_open(pika_acts_writer *w, const char *dir, int d_model, int n_layers, const int32_t *layers,
                          int n_pos, const int32_t *positions, int dtype, const char *model_json,
                          const char *prompt_json, int resume);
/* Append one example: x is [n_layers][n_pos][d_model] float32 in the writer's layer/position order. */
int pika_acts_writer_append(pika_acts_writer *w, const char *id, const float *x);
/* Make everything written so far durable (npy headers, ids, meta.json with the current n). */
int pika_acts_writer_flush(pika_acts_writer *w);
int pika_acts_writer_close(pika_acts_writer *w);

/* ---- shards ---- */
/* Join stores written by `pika extract --shard I/N` (given in shard order) into out_dir: the rows of
 * each in turn, so the result is byte for byte the store one run over the whole dataset writes.
 * The inputs must share layout (d_model, layers, positions, dtype), model and prompt JSON, and hold
 * distinct ids. out_dir must not hold a store unless force. Returns 0 or -1 + error. */
int pika_acts_merge(const char *out_dir, int n_in, const char *const *in_dirs, int force);

#endif
