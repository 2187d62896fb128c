/* dataset.c — owns benchmark loading: the JSONL / JSONL.gz line reader (zlib), UTF-8 checks, the
 * RFC 4180 CSV reader, field mapping into pika_example rows, and the presets for ../shared/data. */
#include "pika/dataset.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pika/util.h"

/* ---------------------------------------------------------------- line reader */

struct pika_lines {
    gzFile f;
    char *buf;         /* read buffer: bytes [pos, end) not yet returned */
    size_t cap, pos, end;
    int eof;
    int torn;          /* the last line returned had no '\n' after it */
    long lineno;
    char *path;
};

pika_lines *pika_lines_open(const char *path) {
    gzFile f = strcmp(path, "-") == 0 ? gzdopen(dup(0), "rb") : gzopen(path, "rb");
    if (!f) {
        pika_set_error("%s: cannot open: %s", path, strerror(errno ? errno : ENOENT));
        return NULL;
    }
    gzbuffer(f, 1 << 17);
    pika_lines *r = pika_calloc(1, sizeof *r);
    r->f = f;
    r->path = pika_strdup(path);
    r->cap = 1 << 16;
    r->buf = pika_malloc(r->cap + 1);
    return r;
}

/* Lines may hold any bytes (NULs included); the returned length is exact. */
int pika_lines_next(pika_lines *r, char **line, size_t *len) {
    size_t scan = r->pos;
    for (;;) {
        char *nl = r->end > scan ? memchr(r->buf + scan, '\n', r->end - scan) : NULL;
        if (nl || (r->eof && r->end > r->pos)) {
            size_t n = nl ? (size_t)(nl - (r->buf + r->pos)) : r->end - r->pos;
            char *l = r->buf + r->pos;
            r->pos += n + (nl ? 1 : 0);
            r->torn = !nl;
            if (n > 0 && l[n - 1] == '\r') n--;
            l[n] = 0; /* overwrites the '\n' (or the spare byte at the end of the buffer) */
            r->lineno++;
            *line = l;
            *len = n;
            return 1;
        }
        if (r->eof) return 0;
        /* compact, grow, read more */
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, r->end - r->pos);
            r->end -= r->pos;
            r->pos = 0;
        }
        scan = r->end;
        if (r->end == r->cap) {
            r->cap *= 2;
            r->buf = pika_realloc(r->buf, r->cap + 1);
        }
        int k = gzread(r->f, r->buf + r->end, (unsigned)(r->cap - r->end > (1u << 30) ? (1u << 30) : r->cap - r->end));
        if (k < 0) {
            int err = 0;
            const char *m = gzerror(r->f, &err);
            size_t pl = strlen(r->path); /* zlib prefixes its message with the path: drop it */
            if (!strncmp(m, r->path, pl) && !strncmp(m + pl, ": ", 2)) m += pl + 2;
            return pika_set_error("read error: %s", m);
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
    }
}

long pika_lines_lineno(const pika_lines *r) { return r->lineno; }
int pika_lines_torn(const pika_lines *r) { return r->torn; }

void pika_lines_close(pika_lines *r) {
    if (!r) return;
    gzclose(r->f);
    free(r->path);
    free(r->buf);
    free(r);
}

/* Length (1..4) of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */

void *pika_json_parse_line(const char *line, size_t len, const char *where, long lineno) {
    if (memchr(line, 0, len)) {
        pika_set_error("%s:%ld: NUL byte in the line", where, lineno);
        return NULL;
    }
    if (!pika_utf8_valid(line, len)) {
        pika_set_error("%s:%ld: invalid UTF-8 text", where, lineno);
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    if (!j) {
        long col = end ? (long)(end - line) + 1 : 0;
        pika_set_error("%s:%ld: malformed JSON (near column %ld)", where, lineno, col);
        return NULL;
    }
    /* trailing garbage after the value */
    if (end) {
        while ((size_t)(end - line) < len && isspace((unsigned char)*end)) end++;
        if ((size_t)(end - line) < len) {
            cJSON_Delete(j);
            pika_set_error("%s:%ld: malformed JSON (trailing text at column %ld)", where, lineno, (long)(end - line) + 1);
            return NULL;
        }
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        pika_set_error("%s:%ld: not a JSON object", where, lineno);
        return NULL;
    }
    return j;
}

const char *pika_json_id(const void *vv, char buf[40]) {
    const cJSON *v = vv;
    if (cJSON_IsString(v)) return v->valuestring && v->valuestring[0] ? v->valuestring : NULL;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return NULL;
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
        snprintf(buf, 40, "%lld", (long long)d);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) { /* shortest text that reads back as the same double */
        snprintf(buf, 40, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    return buf;
}

int64_t pika_jsonl_read(const char *path, pika_jsonl_fn fn, void *ctx, pika_jsonl_bad_fn bad, void *bad_ctx,
                        int64_t *n_objects) {
    return pika_jsonl_read_ex(path, 0, fn, ctx, bad, bad_ctx, n_objects);
}

int64_t pika_jsonl_read_ex(const char *path, int flags, pika_jsonl_fn fn, void *ctx, pika_jsonl_bad_fn bad,
                           void *bad_ctx, int64_t *n_objects) {
    if (n_objects) *n_objects = 0;
    pika_lines *lr = pika_lines_open(path);
    if (!lr) return -1;
    char *line;
    size_t len;
    int rc;
    int64_t n_bad = 0, n_ok = 0;
    while ((rc = pika_lines_next(lr, &line, &len)) == 1) {
        size_t k = 0;
        while (k < len && isspace((unsigned char)line[k])) k++;
        if (k == len) continue;
        long ln = pika_lines_lineno(lr);
        if ((flags & PIKA_JSONL_SKIP_TORN_TAIL) && pika_lines_torn(lr)) break; /* a run killed mid-write */
        cJSON *j = pika_json_parse_line(line, len, path, ln);
        int ok = j && fn(j, path, ln, ctx) >= 0;
        cJSON_Delete(j);
        if (ok) { n_ok++; continue; }
        if (!bad) { pika_lines_close(lr); return -1; }
        bad(pika_last_error(), bad_ctx);
        n_bad++;
    }
    if (rc < 0) {
        pika_error_context("%s:%ld", path, pika_lines_lineno(lr) + 1);
        if (!bad) { pika_lines_close(lr); return -1; }
        bad(pika_last_error(), bad_ctx);
        n_bad++;
    }
    pika_lines_close(lr);
    if (n_objects) *n_objects = n_ok;
    return n_bad;
}

/* ---------------------------------------------------------------- CSV */


int pika_csv_read(const char *path, char ****cells_out, int **ncols_out) {
    size_t len = 0;
    char *txt = pika_read_file(path, &len);
    if (!txt) return -1;
    if (!pika_utf8_valid(txt, len)) {
        long line = 1;
        for (size_t i = 0; i < len;) {
            int k = pika_utf8_char_len((const unsigned char *)txt + i, len - i);
            if (!k) break;
            if (txt[i] == '\n') line++;
            i += (size_t)k;
        }
        free(txt);
        return pika_set_error("%s:%ld: invalid UTF-8 text", path, line);
    }
    char ***cells = NULL;
    int *ncols = NULL;
    int nrec = 0, rcap = 0;
    size_t i = 0;
    long line = 1;
    size_t p = 0;
    if (len >= 3 && (unsigned char)txt[0] == 0xEF && (unsigned char)txt[1] == 0xBB && (unsigned char)txt[2] == 0xBF) p = 3;
    i = p;
    while (i < len) {
        char **rec = NULL;
        int nc = 0, ccap = 0;
        long rec_line = line;
        for (;;) { /* one field */
            pika_buf f = {0};
            pika_buf_add(&f, "", 0); /* an empty field is "", not NULL */
            if (i < len && txt[i] == '"') {
                i++;
                for (;;) {
                    if (i >= len) {
                        free(f.s);
                        for (int c = 0; c < nc; c++) free(rec[c]);
                        free(rec);
                        pika_csv_free(cells, ncols, nrec);
                        free(txt);
                        return pika_set_error("%s:%ld: unterminated quoted field", path, rec_line);
                    }
                    if (txt[i] == '"') {
                        if (i + 1 < len && txt[i + 1] == '"') { pika_buf_addc(&f, '"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    if (txt[i] == '\n') line++;
                    pika_buf_addc(&f, txt[i++]);
                }
                /* junk between closing quote and separator is appended (lenient) */
                while (i < len && txt[i] != ',' && txt[i] != '\n' && txt[i] != '\r') pika_buf_addc(&f, txt[i++]);
            } else {
                while (i < len && txt[i] != ',' && txt[i] != '\n' && txt[i] != '\r') pika_buf_addc(&f, txt[i++]);
            }
            if (nc == ccap) {
                ccap = ccap ? ccap * 2 : 8;
                rec = pika_realloc(rec, (size_t)ccap * sizeof *rec);
            }
            rec[nc++] = f.s;
            if (i < len && txt[i] == ',') { i++; continue; }
            if (i < len && txt[i] == '\r') i++;
            if (i < len && txt[i] == '\n') { i++; line++; }
            break;
        }
        if (nrec == rcap) {
            rcap = rcap ? rcap * 2 : 256;
            cells = pika_realloc(cells, (size_t)rcap * sizeof *cells);
            ncols = pika_realloc(ncols, (size_t)rcap * sizeof *ncols);
        }
        cells[nrec] = rec;
        ncols[nrec] = nc;
        nrec++;
    }
    free(txt);
    *cells_out = cells;
    *ncols_out = ncols;
    return nrec;
}

void pika_csv_free(char ***cells, int *ncols, int nrec) {
    for (int r = 0; r < nrec; r++) {
        for (int c = 0; c < ncols[r]; c++) free(cells[r][c]);
        free(cells[r]);
    }
    free(cells);
    free(ncols);
}

/* ---------------------------------------------------------------- mapping */

static char *trim_dup(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    return pika_strndup(s, n);
}

/* JSON value → malloc'ed text: strings as is, numbers compactly, arrays of strings joined by '\n',
 * other values as compact JSON. NULL for null/absent. */
static char *json_text(const cJSON *v) {
    if (!v || cJSON_IsNull(v)) return NULL;
    if (cJSON_IsString(v)) return pika_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char b[40];
        const char *t = pika_json_id(v, b); /* numbers print by the one id rule */
        return pika_strdup(t ? t : "nan");
    }
    if (cJSON_IsBool(v)) return pika_strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsArray(v)) {
        int all_str = 1;
        const cJSON *e;
        cJSON_ArrayForEach(e, v) if (!cJSON_IsString(e)) all_str = 0;
        if (all_str) {
            pika_buf b = {0};
            pika_buf_add(&b, "", 0);
            int first = 1;
            cJSON_ArrayForEach(e, v) {
                if (!first) pika_buf_addc(&b, '\n');
                for (const char *c = e->valuestring; *c; c++) pika_buf_addc(&b, *c);
                first = 0;
            }
            return b.s;
        }
    }
    char *p = cJSON_PrintUnformatted(v);
    char *r = pika_strdup(p);
    cJSON_free(p);
    return r;
}

static int parse_level(const char *s) {
    if (!s) return 0;
    while (*s && !isdigit((unsigned char)*s)) {
        if (*s == '?') return 0;
        s++;
    }
    int v = atoi(s);
    return v >= 1 && v <= 5 ? v : 0;
}

static void free_example(pika_example *e) {
    free(e->id); free(e->problem); free(e->gold); free(e->subject); free(e->split);
    free(e->prefix); free(e->test); free(e->entry_point); free(e->setup); free(e->tests_json);
}

void pika_dataset_free(pika_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) free_example(&d->rows[i]);
    free(d->rows);
    free(d->name);
    pika_strmap_free(&d->index);
    free(d);
}

static void ds_push(pika_dataset *d, int *cap, const pika_example *e) {
    if (d->n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        d->rows = pika_realloc(d->rows, (size_t)*cap * sizeof *d->rows);
    }
    d->rows[d->n++] = *e;
}

/* Fill e from a getter; returns 0 or -1 with error naming the missing field. */
static int map_row(pika_example *e, const pika_field_map *fm, long row, const char *where, long lineno,
                   char *(*get)(void *, const char *), void *rec) {
    memset(e, 0, sizeof *e);
    char *v;
    if (fm->id && (v = get(rec, fm->id))) e->id = v;
    else {
        char b[32];
        snprintf(b, sizeof b, "%ld", row);
        e->id = pika_strdup(b);
    }
    struct { const char *key; char **dst; int required; } f[] = {
        {fm->problem, &e->problem, 0}, {fm->gold, &e->gold, 0}, {fm->subject, &e->subject, 0}, {fm->split, &e->split, 0},
        {fm->prefix, &e->prefix, 1}, {fm->test, &e->test, 1}, {fm->entry_point, &e->entry_point, 1},
        {fm->setup, &e->setup, 0}, {fm->tests, &e->tests_json, 1},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].key) continue;
        *f[i].dst = get(rec, f[i].key);
        if (!*f[i].dst && f[i].required) {
            pika_set_error("%s:%ld: missing field \"%s\"", where, lineno, f[i].key);
            free_example(e);
            return -1;
        }
    }
    if (fm->gold && !e->gold && fm->kind == PIKA_TASK_MATH) {
        pika_set_error("%s:%ld: missing field \"%s\"", where, lineno, fm->gold);
        free_example(e);
        return -1;
    }
    if (fm->level) {
        char *lv = get(rec, fm->level);
        e->level = parse_level(lv);
        free(lv);
    }
    if (fm->gold_after && e->gold) {
        const char *m = NULL, *p = e->gold;
        while ((p = strstr(p, fm->gold_after))) { m = p; p += strlen(fm->gold_after); }
        if (m) {
            char *g = trim_dup(m + strlen(fm->gold_after));
            free(e->gold);
            e->gold = g;
        }
    }
    return 0;
}

static char *get_json(void *rec, const char *key) { return json_text(cJSON_GetObjectItemCaseSensitive((cJSON *)rec, key)); }

typedef struct {
    char **hdr;
    int nh;
    char **cells;
    int nc;
} csv_rec;

static char *get_csv(void *rec, const char *key) {
    csv_rec *r = rec;
    for (int i = 0; i < r->nh; i++)
        if (!strcmp(r->hdr[i], key)) return i < r->nc ? pika_strdup(r->cells[i]) : NULL;
    return NULL;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

typedef struct {
    pika_dataset *d;
    int *cap;
    const pika_field_map *fm;
} ds_line_ctx;

static int ds_line(void *obj, const char *path, long lineno, void *vc) {
    ds_line_ctx *c = vc;
    pika_example e;
    if (map_row(&e, c->fm, c->d->n, path, lineno, get_json, obj)) return -1;
    ds_push(c->d, c->cap, &e);
    return 0;
}

pika_dataset *pika_dataset_load_file(const char *path, const pika_field_map *fm) {
    pika_dataset *d = pika_calloc(1, sizeof *d);
    d->name = pika_strdup(path);
    d->kind = fm->kind;
    int cap = 0;
    if (ends_with(path, ".csv")) {
        char ***cells;
        int *ncols;
        int nrec = pika_csv_read(path, &cells, &ncols);
        if (nrec < 0) { pika_dataset_free(d); return NULL; }
        if (nrec == 0) {
            pika_csv_free(cells, ncols, nrec);
            pika_set_error("%s: empty CSV file (no header)", path);
            pika_dataset_free(d);
            return NULL;
        }
        for (int r = 1; r < nrec; r++) {
            if (ncols[r] == 1 && cells[r][0][0] == 0) continue; /* blank line */
            csv_rec rec = {cells[0], ncols[0], cells[r], ncols[r]};
            pika_example e;
            if (map_row(&e, fm, d->n, path, r + 1, get_csv, &rec) < 0) {
                pika_csv_free(cells, ncols, nrec);
                pika_dataset_free(d);
                return NULL;
            }
            ds_push(d, &cap, &e);
        }
        pika_csv_free(cells, ncols, nrec);
        return d;
    }
    ds_line_ctx c = {d, &cap, fm};
    if (pika_jsonl_read(path, ds_line, &c, NULL, NULL, NULL) < 0) {
        pika_dataset_free(d);
        return NULL;
    }
    return d;
}

/* ---------------------------------------------------------------- presets */

const char *const pika_dataset_presets[] = {"math", "math500", "gsm8k", "aime", "aime24", "amc23", "humaneval", "mbpp", NULL};

const char *pika_data_dir(const char *dir) {
    if (dir && *dir) return dir;
    const char *e = getenv("PIKA_DATA");
    if (e && *e) return e;
    static char buf[1024];
    const char *sh = getenv("PIKA_SHARED");
    if (sh && *sh && strlen(sh) < sizeof buf - 8) {
        snprintf(buf, sizeof buf, "%s/data", sh);
        return buf;
    }
    return "../shared/data";
}

int pika_dataset_is_preset(const char *spec) {
    size_t n = strcspn(spec, ":");
    for (int i = 0; pika_dataset_presets[i]; i++)
        if (strlen(pika_dataset_presets[i]) == n && !strncmp(spec, pika_dataset_presets[i], n)) return 1;
    return 0;
}

/* Keep rows where keep(row) holds; frees the others. */
static void ds_filter(pika_dataset *d, int (*keep)(const pika_example *, const void *), const void *arg) {
    int w = 0;
    for (int i = 0; i < d->n; i++) {
        if (keep(&d->rows[i], arg)) d->rows[w++] = d->rows[i];
        else free_example(&d->rows[i]);
    }
    d->n = w;
}

static int keep_not_aimo(const pika_example *e, const void *arg) {
    (void)arg;
    return strstr(e->id, "AIMO") == NULL;
}

static int keep_mbpp_range(const pika_example *e, const void *arg) {
    const int *r = arg;
    int id = atoi(e->id);
    return id >= r[0] && id <= r[1];
}

pika_dataset *pika_dataset_load_preset(const char *spec, const char *data_dir) {
    const char *dir = pika_data_dir(data_dir);
    char name[64];
    size_t n = strcspn(spec, ":");
    if (n >= sizeof name) { pika_set_error("unknown dataset preset '%s'", spec); return NULL; }
    memcpy(name, spec, n);
    name[n] = 0;
    const char *split = spec[n] == ':' ? spec + n + 1 : NULL;
    pika_field_map fm = {0};
    char rel[128];
    int mbpp_range[2] = {1, 1000000};
    if (!strcmp(name, "math")) {
        if (split && strcmp(split, "test") && strcmp(split, "train")) goto bad_split;
        snprintf(rel, sizeof rel, "math/%s.jsonl", split ? split : "test");
        fm = (pika_field_map){.id = "unique_id", .problem = "problem", .gold = "answer", .level = "level", .subject = "subject"};
    } else if (!strcmp(name, "math500")) {
        if (split && strcmp(split, "test")) goto bad_split;
        snprintf(rel, sizeof rel, "math500/test.jsonl");
        fm = (pika_field_map){.id = "unique_id", .problem = "problem", .gold = "answer", .level = "level", .subject = "subject"};
    } else if (!strcmp(name, "gsm8k")) {
        if (split && strcmp(split, "test") && strcmp(split, "train")) goto bad_split;
        snprintf(rel, sizeof rel, "gsm8k/%s.jsonl", split ? split : "test");
        fm = (pika_field_map){.problem = "question", .gold = "answer", .gold_after = "####"};
    } else if (!strcmp(name, "aime")) {
        if (split && strcmp(split, "test")) goto bad_split;
        snprintf(rel, sizeof rel, "aime/AIME_Dataset_1983_2024.csv");
        fm = (pika_field_map){.id = "id", .problem = "problem", .gold = "answer"};
    } else if (!strcmp(name, "aime24") || !strcmp(name, "amc23")) {
        if (split && strcmp(split, "test")) goto bad_split;
        snprintf(rel, sizeof rel, "%s/test.jsonl", name);
        fm = (pika_field_map){.id = "id", .problem = "problem", .gold = "answer"};
    } else if (!strcmp(name, "humaneval")) {
        if (split && strcmp(split, "test")) goto bad_split;
        snprintf(rel, sizeof rel, "humaneval/HumanEval.jsonl.gz");
        fm = (pika_field_map){.id = "task_id", .problem = "prompt", .gold = "canonical_solution", .prefix = "prompt",
                              .test = "test", .entry_point = "entry_point", .kind = PIKA_TASK_HUMANEVAL};
    } else if (!strcmp(name, "mbpp")) {
        if (!split || !strcmp(split, "all")) { /* all 974 */ }
        else if (!strcmp(split, "fewshot")) { mbpp_range[0] = 1; mbpp_range[1] = 10; }
        else if (!strcmp(split, "test")) { mbpp_range[0] = 11; mbpp_range[1] = 510; }
        else if (!strcmp(split, "validation")) { mbpp_range[0] = 511; mbpp_range[1] = 600; }
        else if (!strcmp(split, "train")) { mbpp_range[0] = 601; mbpp_range[1] = 974; }
        else goto bad_split;
        snprintf(rel, sizeof rel, "mbpp/mbpp.jsonl");
        fm = (pika_field_map){.id = "task_id", .problem = "text", .gold = "code", .test = "test_list",
                              .setup = "test_setup_code", .kind = PIKA_TASK_MBPP};
    } else {
        pika_set_error("unknown dataset preset '%s' (known: math math500 gsm8k aime aime24 amc23 humaneval mbpp)", name);
        return NULL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (access(path, R_OK) != 0) {
        pika_set_error("preset %s: cannot read %s (set --data-dir or $PIKA_DATA)", name, path);
        return NULL;
    }
    pika_dataset *d = pika_dataset_load_file(path, &fm);
    if (!d) return NULL;
    free(d->name);
    d->name = pika_strdup(spec);
    if (!strcmp(name, "aime")) ds_filter(d, keep_not_aimo, NULL);
    if (!strcmp(name, "mbpp")) ds_filter(d, keep_mbpp_range, mbpp_range);
    return d;
bad_split:
    pika_set_error("preset %s has no split '%s'", name, split);
    return NULL;
}

const pika_example *pika_dataset_find(pika_dataset *d, const char *id) {
    if (!d->index_built) { /* the library's one string map; a duplicate id: the first row wins */
        pika_strmap_init(&d->index);
        for (int i = 0; i < d->n; i++)
            if (pika_strmap_get(&d->index, d->rows[i].id) < 0) pika_strmap_put(&d->index, d->rows[i].id, i);
        d->index_built = 1;
    }
    int64_t r = pika_strmap_get(&d->index, id);
    return r >= 0 ? &d->rows[r] : NULL;
}
