/* acts.c — the activation store (reader: meta.json + ids.txt + lazily mmapped layer_XX.npy;
 * writer: streaming + resumable via pika_npy_writer). The labels JSONL reader lives in labels.c,
 * the string map in core/util.c. Layout documented in include/pika/acts.h. */
#include "pika/acts.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- reader */

static int read_int_array(const cJSON *arr, const char *name, int32_t **out, const char *path) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1)
        return pika_set_error("%s: \"%s\" must be a non-empty array of integers", path, name);
    int n = cJSON_GetArraySize(arr);
    *out = pika_malloc(sizeof(int32_t) * (size_t)n);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int32_t)it->valuedouble) {
            free(*out);
            *out = NULL;
            return pika_set_error("%s: \"%s\" must contain integers", path, name);
        }
        (*out)[i++] = (int32_t)it->valuedouble;
    }
    return n;
}

static char *print_or_null(const cJSON *v) {
    if (!v) return pika_strdup("null");
    char *s = cJSON_PrintUnformatted(v);
    char *r = pika_strdup(s ? s : "null");
    free(s);
    return r;
}

int pika_acts_open(pika_acts *a, const char *dir) {
    memset(a, 0, sizeof *a);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *txt = pika_read_file(path, NULL);
    if (!txt) return -1;
    cJSON *m = cJSON_Parse(txt);
    free(txt);
    if (!m) return pika_set_error("%s: not valid JSON", path);
    int rc = -1;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(m, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(m, "version");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "n");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "d_model");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(m, "dtype");
    a->dir = pika_strdup(dir);
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "pika-acts")) {
        pika_set_error("%s: \"format\" is not \"pika-acts\"", path);
        goto done;
    }
    if (!cJSON_IsNumber(ver) || ver->valueint < 1 || ver->valueint > PIKA_ACTS_VERSION) {
        pika_set_error("%s: unsupported store version (this pika reads version %d)", path, PIKA_ACTS_VERSION);
        goto done;
    }
    if (!cJSON_IsNumber(n) || n->valuedouble < 0 || !cJSON_IsNumber(d) || d->valuedouble < 1) {
        pika_set_error("%s: \"n\" and \"d_model\" must be positive integers", path);
        goto done;
    }
    a->n = (int64_t)n->valuedouble;
    a->d_model = (int)d->valuedouble;
    if (!cJSON_IsString(dt) || (strcmp(dt->valuestring, "float16") && strcmp(dt->valuestring, "float32"))) {
        pika_set_error("%s: \"dtype\" must be \"float16\" or \"float32\"", path);
        goto done;
    }
    a->dtype = strcmp(dt->valuestring, "float16") ? PIKA_NPY_F32 : PIKA_NPY_F16;
    if ((a->n_layers = read_int_array(cJSON_GetObjectItemCaseSensitive(m, "layers"), "layers", &a->layers, path)) < 0)
        goto done;
    if ((a->n_pos = read_int_array(cJSON_GetObjectItemCaseSensitive(m, "positions"), "positions", &a->positions, path)) < 0)
        goto done;
    for (int i = 0; i < a->n_pos; i++)
        if (a->positions[i] >= 0) { pika_set_error("%s: positions must be negative offsets", path); goto done; }
    a->model_json = print_or_null(cJSON_GetObjectItemCaseSensitive(m, "model"));
    a->prompt_json = print_or_null(cJSON_GetObjectItemCaseSensitive(m, "prompt"));
    {
        size_t l = strlen(a->model_json) + strlen(a->prompt_json) + 2;
        char *both = pika_malloc(l);
        snprintf(both, l, "%s\n%s", a->model_json, a->prompt_json);
        pika_fingerprint(both, a->fingerprint);
        free(both);
    }
    /* ids.txt */
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    size_t len;
    char *ids = pika_read_file(path, &len);
    if (!ids) goto done;
    a->ids = pika_calloc((size_t)(a->n ? a->n : 1), sizeof(char *));
    pika_strmap_init(&a->id_index);
    int64_t cnt = 0;
    char *p = ids;
    while (*p) {
        char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l && p[l - 1] == '\r') l--;
        if (cnt >= a->n) { cnt++; break; }
        if (l == 0) { free(ids); pika_set_error("%s: empty id on line %lld", path, (long long)cnt + 1); goto done; }
        a->ids[cnt] = pika_strndup(p, l);
        if (pika_strmap_put(&a->id_index, a->ids[cnt], cnt) >= 0) {
            pika_set_error("%s: duplicate id '%s' on line %lld", path, a->ids[cnt], (long long)cnt + 1);
            cnt++;
            free(ids);
            goto done;
        }
        cnt++;
        if (!e) break;
        p = e + 1;
    }
    free(ids);
    if (cnt != a->n) {
        pika_set_error("%s: has %s%lld ids but meta.json says n=%lld", path, cnt > a->n ? "more than " : "",
                       (long long)(cnt > a->n ? a->n : cnt), (long long)a->n);
        goto done;
    }
    a->npy = pika_calloc((size_t)a->n_layers, sizeof(pika_npy));
    a->opened = pika_calloc((size_t)a->n_layers, sizeof(int));
    rc = 0;
done:
    cJSON_Delete(m);
    if (rc) {
        pika_acts_close(a); /* only frees: the error message stays */
    }
    return rc;
}

void pika_acts_close(pika_acts *a) {
    if (a->opened)
        for (int i = 0; i < a->n_layers; i++) pika_acts_release_layer(a, i);
    if (a->ids)
        for (int64_t i = 0; i < a->n; i++) free(a->ids[i]);
    pika_strmap_free(&a->id_index);
    free(a->ids);
    free(a->npy);
    free(a->opened);
    free(a->layers);
    free(a->positions);
    free(a->model_json);
    free(a->prompt_json);
    free(a->dir);
    memset(a, 0, sizeof *a);
}

int pika_acts_layer_index(const pika_acts *a, int layer) {
    for (int i = 0; i < a->n_layers; i++)
        if (a->layers[i] == layer) return i;
    return pika_set_error("activation store %s has no layer %d", a->dir, layer);
}

int pika_acts_pos_index(const pika_acts *a, int position) {
    for (int i = 0; i < a->n_pos; i++)
        if (a->positions[i] == position) return i;
    return pika_set_error("activation store %s has no position %d", a->dir, position);
}

static int open_layer(pika_acts *a, int li) {
    if (a->opened[li]) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/layer_%02d.npy", a->dir, a->layers[li]);
    pika_npy *x = &a->npy[li];
    if (pika_npy_open(x, path)) return -1;
    if (x->dtype != PIKA_NPY_F16 && x->dtype != PIKA_NPY_F32) {
        pika_npy_close(x);
        return pika_set_error("%s: dtype must be float16 or float32", path);
    }
    if (x->ndim != 3 || x->shape[0] != a->n || x->shape[1] != a->n_pos || x->shape[2] != a->d_model) {
        char got[128];
        snprintf(got, sizeof got, "%lld dims [%lld, %lld, %lld]", (long long)x->ndim, (long long)x->shape[0],
                 (long long)(x->ndim > 1 ? x->shape[1] : 0), (long long)(x->ndim > 2 ? x->shape[2] : 0));
        pika_npy_close(x);
        return pika_set_error("%s: shape is %s, meta.json says [%lld, %d, %d]", path, got, (long long)a->n, a->n_pos,
                              a->d_model);
    }
    a->opened[li] = 1;
    return 0;
}

void pika_acts_release_layer(pika_acts *a, int li) {
    if (li >= 0 && li < a->n_layers && a->opened[li]) {
        pika_npy_close(&a->npy[li]);
        a->opened[li] = 0;
    }
}

int pika_acts_read(pika_acts *a, int li, int pi, const int64_t *rows, int64_t m, double *dst) {
    if (li < 0 || li >= a->n_layers || pi < 0 || pi >= a->n_pos) return pika_set_error("acts: layer/position index out of range");
    if (open_layer(a, li)) return -1;
    const pika_npy *x = &a->npy[li];
    int d = a->d_model;
    for (int64_t k = 0; k < m; k++) {
        int64_t r = rows ? rows[k] : k;
        if (r < 0 || r >= a->n) return pika_set_error("acts: row %lld out of range", (long long)r);
        int64_t off = (r * a->n_pos + pi) * d;
        double *o = dst + k * d;
        if (x->dtype == PIKA_NPY_F32) {
            const float *s = (const float *)x->data + off;
            for (int j = 0; j < d; j++) o[j] = s[j];
        } else {
            const uint16_t *s = (const uint16_t *)x->data + off;
            for (int j = 0; j < d; j++) o[j] = pika_fp16_to_fp32(s[j]);
        }
        for (int j = 0; j < d; j++)
            if (!isfinite(o[j]))
                return pika_set_error("acts %s: non-finite feature (NaN/Inf) in layer %d position %d for id '%s' (dim %d)",
                                      a->dir, a->layers[li], a->positions[pi], a->ids[r], j);
    }
    return 0;
}

/* ---------------------------------------------------------------- writer */

static int write_meta(pika_acts_writer *w) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "format", "pika-acts");
    cJSON_AddNumberToObject(m, "version", PIKA_ACTS_VERSION);
    cJSON_AddNumberToObject(m, "n", (double)w->n);
    cJSON_AddNumberToObject(m, "d_model", w->d_model);
    cJSON *ls = cJSON_AddArrayToObject(m, "layers");
    for (int i = 0; i < w->n_layers; i++) cJSON_AddItemToArray(ls, cJSON_CreateNumber(w->layers[i]));
    cJSON *ps = cJSON_AddArrayToObject(m, "positions");
    for (int i = 0; i < w->n_pos; i++) cJSON_AddItemToArray(ps, cJSON_CreateNumber(w->positions[i]));
    cJSON_AddStringToObject(m, "dtype", w->dtype == PIKA_NPY_F16 ? "float16" : "float32");
    cJSON *mj = cJSON_Parse(w->model_json), *pj = cJSON_Parse(w->prompt_json);
    cJSON_AddItemToObject(m, "model", mj ? mj : cJSON_CreateNull());
    cJSON_AddItemToObject(m, "prompt", pj ? pj : cJSON_CreateNull());
    char *s = cJSON_Print(m);
    cJSON_Delete(m);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", w->dir);
    int rc = pika_write_file_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

static void writer_free(pika_acts_writer *w) {
    if (w->w)
        for (int i = 0; i < w->n_layers; i++)
            if (w->w[i].f) pika_npy_writer_close(&w->w[i]);
    if (w->ids) fclose(w->ids);
    free(w->w);
    free(w->layers);
    free(w->positions);
    free(w->model_json);
    free(w->prompt_json);
    free(w->dir);
    memset(w, 0, sizeof *w);
}

int pika_acts_writer_open(pika_acts_writer *w, const char *dir, int d_model, int n_layers, const int32_t *layers,
                          int n_pos, const int32_t *positions, int dtype, const char *model_json,
                          const char *prompt_json, int resume) {
    memset(w, 0, sizeof *w);
    if (d_model < 1 || n_layers < 1 || n_pos < 1) return pika_set_error("acts writer: empty layout");
    if (dtype != PIKA_NPY_F16 && dtype != PIKA_NPY_F32) return pika_set_error("acts writer: dtype must be f16 or f32");
    for (int i = 0; i < n_pos; i++)
        if (positions[i] >= 0) return pika_set_error("acts writer: positions must be negative offsets");
    if (pika_mkdir_p(dir)) return -1;
    w->dir = pika_strdup(dir);
    w->d_model = d_model;
    w->n_layers = n_layers;
    w->n_pos = n_pos;
    w->dtype = dtype;
    w->layers = pika_malloc(sizeof(int32_t) * (size_t)n_layers);
    memcpy(w->layers, layers, sizeof(int32_t) * (size_t)n_layers);
    w->positions = pika_malloc(sizeof(int32_t) * (size_t)n_pos);
    memcpy(w->positions, positions, sizeof(int32_t) * (size_t)n_pos);
    cJSON *t = model_json ? cJSON_Parse(model_json) : NULL;
    w->model_json = pika_strdup(t ? model_json : "null");
    cJSON_Delete(t);
    t = prompt_json ? cJSON_Parse(prompt_json) : NULL;
    w->prompt_json = pika_strdup(t ? prompt_json : "null");
    cJSON_Delete(t);
    w->w = pika_calloc((size_t)n_layers, sizeof(pika_npy_writer));
    char path[4096];
    int64_t tail[2] = {n_pos, d_model};
    int64_t keep = -1;
    if (resume) {
        /* Reopen only when the existing store has exactly this layout. */
        snprintf(path, sizeof path, "%s/meta.json", dir);
        struct stat st;
        if (stat(path, &st) == 0) {
            /* meta.json n may lag behind; count complete rows per file instead */
            char *txt = pika_read_file(path, NULL);
            cJSON *m = txt ? cJSON_Parse(txt) : NULL;
            free(txt);
            int same = m != NULL;
            if (same) {
                const cJSON *d = cJSON_GetObjectItemCaseSensitive(m, "d_model");
                const cJSON *ls = cJSON_GetObjectItemCaseSensitive(m, "layers");
                const cJSON *ps = cJSON_GetObjectItemCaseSensitive(m, "positions");
                const cJSON *dt = cJSON_GetObjectItemCaseSensitive(m, "dtype");
                same = cJSON_IsNumber(d) && d->valueint == d_model && cJSON_GetArraySize(ls) == n_layers &&
                       cJSON_GetArraySize(ps) == n_pos && cJSON_IsString(dt) &&
                       !strcmp(dt->valuestring, dtype == PIKA_NPY_F16 ? "float16" : "float32");
                for (int i = 0; same && i < n_layers; i++) same = cJSON_GetArrayItem(ls, i)->valueint == layers[i];
                for (int i = 0; same && i < n_pos; i++) same = cJSON_GetArrayItem(ps, i)->valueint == positions[i];
            }
            cJSON_Delete(m);
            if (!same) {
                writer_free(w);
                return pika_set_error("%s: existing store has a different layout; cannot resume", dir);
            }
            keep = INT64_MAX;
            for (int i = 0; i < n_layers; i++) {
                snprintf(path, sizeof path, "%s/layer_%02d.npy", dir, layers[i]);
                if (pika_npy_writer_reopen(&w->w[i], path)) { writer_free(w); return -1; }
                if (w->w[i].shape[0] < keep) keep = w->w[i].shape[0];
            }
            /* ids: count complete lines */
            snprintf(path, sizeof path, "%s/ids.txt", dir);
            size_t len = 0;
            char *ids = pika_read_file(path, &len);
            if (!ids) { writer_free(w); return -1; }
            int64_t lines = 0;
            size_t cut = 0;
            for (size_t i = 0; i < len && lines < keep; i++)
                if (ids[i] == '\n') { lines++; cut = i + 1; }
            free(ids);
            if (lines < keep) keep = lines;
            if (truncate(path, (off_t)cut) != 0) { writer_free(w); return pika_set_error("cannot truncate %s: %s", path, strerror(errno)); }
            size_t esz = dtype == PIKA_NPY_F16 ? 2 : 4;
            for (int i = 0; i < n_layers; i++) {
                pika_npy_writer *x = &w->w[i];
                if (x->dtype != dtype || x->ndim != 3 || x->shape[1] != n_pos || x->shape[2] != d_model) {
                    writer_free(w);
                    return pika_set_error("%s: layer file layout differs from meta.json; cannot resume", dir);
                }
                x->shape[0] = keep;
                if (fflush(x->f) != 0 || ftruncate(fileno(x->f), (off_t)(x->header_len + (size_t)keep * (size_t)x->row_elems * esz)) != 0) {
                    writer_free(w);
                    return pika_set_error("cannot truncate layer file in %s", dir);
                }
            }
            w->n = keep;
        }
    }
    if (keep < 0) {
        for (int i = 0; i < n_layers; i++) {
            snprintf(path, sizeof path, "%s/layer_%02d.npy", dir, layers[i]);
            if (pika_npy_writer_open(&w->w[i], path, dtype, 2, tail)) { writer_free(w); return -1; }
        }
    }
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    w->ids = fopen(path, keep < 0 ? "w" : "a");
    if (!w->ids) { writer_free(w); return pika_set_error("cannot write %s: %s", path, strerror(errno)); }
    if (pika_acts_writer_flush(w)) { writer_free(w); return -1; }
    return 0;
}

int pika_acts_writer_append(pika_acts_writer *w, const char *id, const float *x) {
    if (!id || !*id || strchr(id, '\n') || strchr(id, '\r')) return pika_set_error("acts writer: id must be non-empty, one line");
    int64_t row = (int64_t)w->n_pos * w->d_model;
    for (int i = 0; i < w->n_layers; i++)
        if (pika_npy_writer_append(&w->w[i], x + (int64_t)i * row, 1)) return -1;
    if (fprintf(w->ids, "%s\n", id) < 0) return pika_set_error("acts writer: cannot write ids.txt");
    w->n++;
    return 0;
}

int pika_acts_writer_flush(pika_acts_writer *w) {
    for (int i = 0; i < w->n_layers; i++)
        if (pika_npy_writer_flush(&w->w[i])) return -1;
    if (fflush(w->ids) != 0) return pika_set_error("acts writer: cannot flush ids.txt");
    fsync(fileno(w->ids));
    return write_meta(w);
}

int pika_acts_writer_close(pika_acts_writer *w) {
    if (!w->dir) return 0;
    int rc = pika_acts_writer_flush(w);
    writer_free(w);
    return rc;
}

/* ---------------------------------------------------------------- merge (shards) */

int pika_acts_merge(const char *out_dir, int n_in, const char *const *in_dirs, int force) {
    if (n_in < 1) return pika_set_error("acts merge: no input stores");
    pika_acts *in = pika_calloc((size_t)n_in, sizeof(pika_acts));
    int rc = -1, opened = 0;
    pika_acts_writer w;
    memset(&w, 0, sizeof w);
    float *row = NULL;
    double *buf = NULL;
    pika_strmap seen;
    pika_strmap_init(&seen);
    char *out_real = realpath(out_dir, NULL);
    for (; opened < n_in; opened++)
        if (pika_acts_open(&in[opened], in_dirs[opened])) goto done;
    const pika_acts *a0 = &in[0];
    for (int k = 0; k < n_in; k++) {
        const pika_acts *a = &in[k];
        int same = a->d_model == a0->d_model && a->n_layers == a0->n_layers && a->n_pos == a0->n_pos && a->dtype == a0->dtype &&
                   !memcmp(a->layers, a0->layers, sizeof(int32_t) * (size_t)a->n_layers) &&
                   !memcmp(a->positions, a0->positions, sizeof(int32_t) * (size_t)a->n_pos);
        if (!same) { pika_set_error("acts merge: %s has a different layout than %s", in_dirs[k], in_dirs[0]); goto done; }
        if (strcmp(a->model_json, a0->model_json) || strcmp(a->prompt_json, a0->prompt_json)) {
            pika_set_error("acts merge: %s was made with a different model or prompt than %s", in_dirs[k], in_dirs[0]);
            goto done;
        }
        for (int64_t i = 0; i < a->n; i++)
            if (pika_strmap_put(&seen, a->ids[i], 1) >= 0) {
                pika_set_error("acts merge: id '%s' of %s is also in an earlier input", a->ids[i], in_dirs[k]);
                goto done;
            }
        char *in_real = realpath(in_dirs[k], NULL);
        int same_dir = !strcmp(in_dirs[k], out_dir) || (in_real && out_real && !strcmp(in_real, out_real));
        free(in_real);
        if (same_dir) {
            pika_set_error("acts merge: the output %s is one of the inputs", out_dir);
            goto done;
        }
    }
    {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/meta.json", out_dir);
        if (!force && stat(path, &st) == 0) { pika_set_error("acts merge: %s already holds a store (use --force to overwrite)", out_dir); goto done; }
    }
    if (pika_acts_writer_open(&w, out_dir, a0->d_model, a0->n_layers, a0->layers, a0->n_pos, a0->positions, a0->dtype,
                              a0->model_json, a0->prompt_json, 0))
        goto done;
    const int64_t D = a0->d_model, per_row = (int64_t)a0->n_layers * a0->n_pos * D, chunk = 64;
    row = pika_malloc(sizeof(float) * (size_t)(per_row * chunk));
    buf = pika_malloc(sizeof(double) * (size_t)(D * chunk));
    int64_t *rows = pika_malloc(sizeof(int64_t) * (size_t)chunk);
    for (int k = 0; k < n_in; k++) {
        pika_acts *a = &in[k];
        for (int64_t r0 = 0; r0 < a->n; r0 += chunk) {
            int64_t m = a->n - r0 < chunk ? a->n - r0 : chunk;
            for (int64_t i = 0; i < m; i++) rows[i] = r0 + i;
            for (int li = 0; li < a->n_layers; li++)
                for (int pi = 0; pi < a->n_pos; pi++) {
                    /* float16/float32 -> double -> float is exact, so rewriting reproduces the bytes */
                    if (pika_acts_read(a, li, pi, rows, m, buf)) { free(rows); goto done; }
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t e = 0; e < D; e++)
                            row[i * per_row + ((int64_t)li * a->n_pos + pi) * D + e] = (float)buf[i * D + e];
                }
            for (int64_t i = 0; i < m; i++)
                if (pika_acts_writer_append(&w, a->ids[r0 + i], row + i * per_row)) { free(rows); goto done; }
        }
        for (int li = 0; li < a->n_layers; li++) pika_acts_release_layer(a, li);
    }
    free(rows);
    rc = pika_acts_writer_close(&w);
done:
    if (rc && w.dir) pika_acts_writer_close(&w);
    for (int k = 0; k < opened; k++) pika_acts_close(&in[k]);
    free(in);
    free(row);
    free(buf);
    pika_strmap_free(&seen);
    free(out_real);
    return rc;
}
