/* dataset.h — benchmark loaders: JSONL, JSONL.gz and CSV files with a field mapping, plus presets
 * for the benchmarks in ../shared/data (math, math500, gsm8k, aime, aime24, amc23, humaneval, mbpp).
 *
 * Every loaded row becomes a pika_example with the fields a grader needs. Files are read from a data
 * dir: pika_data_dir() = the --data-dir given to pika_dataset_load_preset, else $PIKA_DATA, else
 * $PIKA_SHARED/data, else "../shared/data". Also exposes the line reader and JSON-line helpers the
 * graders share.
 */
#ifndef PIKA_DATASET_H
#define PIKA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "pika/util.h" /* pika_strmap */

/* What kind of grading a row needs. */
typedef enum {
    PIKA_TASK_MATH = 0,      /* gold is an answer string */
    PIKA_TASK_HUMANEVAL = 1, /* prefix + completion + test + check(entry_point) */
    PIKA_TASK_MBPP = 2,      /* setup + program + asserts */
    PIKA_TASK_STDIO = 3,     /* program run on each stdin, stdout compared (LiveCodeBench style) */
} pika_task_kind;

typedef struct {
    char *id;          /* row id as text (row index when the file has none) */
    char *problem;     /* question / task text */
    char *gold;        /* math: gold answer; code: reference solution (may be NULL) */
    int level;         /* human difficulty 1..5 (MATH); 0 = none or unknown */
    char *subject;     /* MATH subject, NULL otherwise */
    char *split;       /* a file's own split label (e.g. "train"/"test" for probes), NULL when none */
    /* code tasks (NULL when unused) */
    char *prefix;      /* HumanEval prompt: prepended to the completion */
    char *test;        /* HumanEval test code (defines check) / MBPP asserts, one per line */
    char *entry_point; /* HumanEval function name */
    char *setup;       /* MBPP test_setup_code */
    char *tests_json;  /* STDIO: {"inputs":[..],"outputs":[..]} */
} pika_example;

typedef struct {
    char *name;      /* preset name or file path */
    pika_task_kind kind;
    int n;
    pika_example *rows; /* [n] */
    pika_strmap index;  /* private: id -> row (built by the first pika_dataset_find) */
    int index_built;
} pika_dataset;

/* Field mapping for a generic file: JSON keys (or CSV header names). NULL = not present.
 * gold_after: if set, gold = the text after the last occurrence of this marker (GSM8K "####"). */
typedef struct {
    const char *id, *problem, *gold, *level, *subject, *split;
    const char *prefix, *test, *entry_point, *setup, *tests;
    const char *gold_after;
    pika_task_kind kind;
} pika_field_map;

/* Names of the presets, NULL-terminated. */
extern const char *const pika_dataset_presets[];

/* Resolve the data dir: dir if non-NULL and non-empty, else $PIKA_DATA, else $PIKA_SHARED/data, else
 * "../shared/data". */
const char *pika_data_dir(const char *dir);

/* Load a preset "NAME" or "NAME:SPLIT" (math, gsm8k: test|train; mbpp: all|test|train|validation|
 * fewshot; others: test). Returns NULL + error on failure. */
pika_dataset *pika_dataset_load_preset(const char *spec, const char *data_dir);
/* Load a .jsonl, .jsonl.gz or .csv file with a field mapping (fm->problem may be NULL).
 * Missing required fields (id falls back to the row index) and bad lines are errors with the line. */
pika_dataset *pika_dataset_load_file(const char *path, const pika_field_map *fm);
/* True if s names a preset (with or without :SPLIT). */
int pika_dataset_is_preset(const char *spec);
/* Row with this id, or NULL. Linear the first time, hashed afterwards. */
const pika_example *pika_dataset_find(pika_dataset *d, const char *id);
void pika_dataset_free(pika_dataset *d);

/* ---- shared line / JSON helpers ---- */

/* Line reader over a plain or gzip file (zlib gzopen reads both). Strips "\n" and "\r\n". */
typedef struct pika_lines pika_lines;
pika_lines *pika_lines_open(const char *path); /* "-" = stdin */
/* 1 = *line set (valid until the next call), 0 = end of file, -1 = read error. */
int pika_lines_next(pika_lines *r, char **line, size_t *len);
long pika_lines_lineno(const pika_lines *r); /* 1-based number of the last line returned */
int pika_lines_torn(const pika_lines *r);   /* 1 when the last line returned had no newline after it */
void pika_lines_close(pika_lines *r);

/* (pika_utf8_valid, used to check lines, is in util.h) */

/* Parse one JSONL line into a cJSON object (returned as void* to keep cJSON out of this header).
 * Errors ("where:LINE: invalid UTF-8" / "...: malformed JSON" / "...: not a JSON object") → NULL. */
void *pika_json_parse_line(const char *line, size_t len, const char *where, long lineno);

/* The one JSON-id rule of pika (labels, rollouts, predictions, datasets, textsets): a non-empty
 * string is the id as is; a finite number that is an integer of magnitude <= 2^53 is printed as an
 * integer ("7", "-3"); any other finite number is printed in its shortest round-trip form ("1.5",
 * "0.1", "1e+300"). Anything else (absent, null, bool, "", NaN, arrays, objects) has no id: NULL.
 * v is a cJSON item; the result points into v or into buf. */
const char *pika_json_id(const void *v, char buf[40]);

/* The one JSONL reader of pika. Calls fn(obj, path, lineno, ctx) for every non-blank line that
 * parses as a JSON object (obj is a cJSON *, owned by the reader: fn may modify or detach items but
 * must not delete it). Bad lines (read error, NUL, invalid UTF-8, malformed JSON, not an object, or
 * fn returning < 0 after pika_set_error) are handled by mode:
 *   bad == NULL  strict: stop at the first, return -1 with the error "path:LINE: ..."
 *   bad != NULL  lenient: call bad(message, bad_ctx) and go on; returns the number of bad lines.
 * *n_objects (may be NULL) = lines given to fn that it accepted. A file that cannot be opened is -1.
 * An empty file (no object lines) is not an error here: each caller decides. */
typedef int (*pika_jsonl_fn)(void *obj, const char *path, long lineno, void *ctx);
typedef void (*pika_jsonl_bad_fn)(const char *message, void *bad_ctx);
int64_t pika_jsonl_read(const char *path, pika_jsonl_fn fn, void *ctx, pika_jsonl_bad_fn bad, void *bad_ctx,
                        int64_t *n_objects);
/* The same with flags: PIKA_JSONL_SKIP_TORN_TAIL ignores a last line that has no newline after it (the
 * line a run killed by SIGKILL was writing; resumable writers end every line with '\n'). */
enum { PIKA_JSONL_SKIP_TORN_TAIL = 1 };
int64_t pika_jsonl_read_ex(const char *path, int flags, pika_jsonl_fn fn, void *ctx, pika_jsonl_bad_fn bad,
                           void *bad_ctx, int64_t *n_objects);

/* Read a CSV file (RFC 4180: quotes, "" escapes, newlines inside quotes, CRLF). Returns the number of
 * records (header included) or -1. *cells[r][c] malloc'ed; *ncols[r] per record. */
int pika_csv_read(const char *path, char ****cells, int **ncols);
void pika_csv_free(char ***cells, int *ncols, int nrec);

#endif
