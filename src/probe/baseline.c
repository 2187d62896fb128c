/* baseline.c — length and TF-IDF baselines (vectorizer, per-fold refit, training, prediction)
 * on top of the probe machinery in probe.c. Definitions in include/pika/baseline.h. */
#include "pika/baseline.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h" /* the JSONL reader and the JSON-id rule */
#include "pika/metrics.h"
#include "pika/util.h"
#include "probe/probe_internal.h"

/* ---------------------------------------------------------------- dataset */

void pika_textset_free(pika_textset *t) {
    for (int64_t i = 0; i < t->n; i++) { free(t->ids[i]); free(t->texts[i]); }
    free(t->ids);
    free(t->texts);
    free(t->n_tokens);
    pika_strmap_free(&t->id_index);
    memset(t, 0, sizeof *t);
}

typedef struct {
    pika_textset *t;
    const char *id_field, *text_field, *tokens_field;
    int64_t cap;
} textset_ctx;

static int textset_line(void *obj, const char *path, long ln, void *vc) {
    textset_ctx *c = vc;
    pika_textset *t = c->t;
    const cJSON *o = obj;
    char buf[40];
    const char *id = pika_json_id(cJSON_GetObjectItemCaseSensitive(o, c->id_field), buf);
    if (!c->text_field) /* default: pika's own field "problem", else "text", decided on the first line */
        c->text_field = cJSON_GetObjectItemCaseSensitive(o, "problem") ? "problem" : "text";
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(o, c->text_field);
    if (!id) return pika_set_error("%s:%ld: missing field \"%s\"", path, ln, c->id_field);
    if (!cJSON_IsString(tx)) return pika_set_error("%s:%ld: missing string field \"%s\"", path, ln, c->text_field);
    if (t->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        t->ids = pika_realloc(t->ids, sizeof(char *) * c->cap);
        t->texts = pika_realloc(t->texts, sizeof(char *) * c->cap);
        if (c->tokens_field) t->n_tokens = pika_realloc(t->n_tokens, sizeof(double) * c->cap);
    }
    if (c->tokens_field) {
        const cJSON *tk = cJSON_GetObjectItemCaseSensitive(o, c->tokens_field);
        t->n_tokens[t->n] = cJSON_IsNumber(tk) ? tk->valuedouble : NAN;
    }
    if (pika_strmap_put(&t->id_index, id, t->n) >= 0) return pika_set_error("%s:%ld: duplicate id '%s'", path, ln, id);
    t->ids[t->n] = pika_strdup(id);
    t->texts[t->n] = pika_strdup(tx->valuestring);
    t->n++;
    return 0;
}

int pika_textset_from_dataset(pika_textset *t, const pika_dataset *d) {
    memset(t, 0, sizeof *t);
    pika_strmap_init(&t->id_index);
    t->ids = pika_malloc(sizeof(char *) * (size_t)(d->n ? d->n : 1));
    t->texts = pika_malloc(sizeof(char *) * (size_t)(d->n ? d->n : 1));
    for (int i = 0; i < d->n; i++) {
        if (pika_strmap_put(&t->id_index, d->rows[i].id, t->n) >= 0) {
            pika_set_error("%s: duplicate id '%s'", d->name, d->rows[i].id);
            pika_textset_free(t);
            return -1;
        }
        t->ids[t->n] = pika_strdup(d->rows[i].id);
        t->texts[t->n] = pika_strdup(d->rows[i].problem ? d->rows[i].problem : "");
        t->n++;
    }
    if (t->n == 0) {
        pika_textset_free(t);
        return pika_set_error("%s: no rows", d->name);
    }
    return 0;
}

int pika_textset_count_tokens(pika_textset *t, int (*count)(const char *text, void *ctx), void *ctx) {
    double *tk = pika_malloc(sizeof(double) * (size_t)(t->n ? t->n : 1));
    for (int64_t i = 0; i < t->n; i++) {
        int c = count(t->texts[i], ctx);
        if (c < 0) { free(tk); return -1; }
        tk[i] = c;
    }
    free(t->n_tokens);
    t->n_tokens = tk;
    return 0;
}

void pika_textset_gather(const pika_textset *t, const int64_t *rows, int64_t n, char ***texts, double **tokens) {
    *texts = pika_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    *tokens = t->n_tokens ? pika_malloc(sizeof(double) * (size_t)(n ? n : 1)) : NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows ? rows[i] : i;
        (*texts)[i] = t->texts[r];
        if (t->n_tokens) (*tokens)[i] = t->n_tokens[r];
    }
}

int pika_textset_read(pika_textset *t, const char *path, const char *id_field, const char *text_field,
                      const char *tokens_field) {
    memset(t, 0, sizeof *t);
    pika_strmap_init(&t->id_index);
    textset_ctx c = {t, id_field, text_field, tokens_field, 0};
    int rc = pika_jsonl_read(path, textset_line, &c, NULL, NULL, NULL) < 0 ? -1 : 0;
    if (!rc && t->n == 0) rc = pika_set_error("%s: no rows", path);
    if (rc) pika_textset_free(t); /* only frees: the error message stays */
    return rc;
}

void pika_tfidf_opts_default(pika_tfidf_opts *o) {
    o->ngram_max = 2;
    o->min_df = 2;
    o->sublinear = 0;
}

/* ---------------------------------------------------------------- TF-IDF */

typedef struct {
    int64_t n;
    int ntok_total;
    char ***toks;   /* [n][ntok[i]] */
    int *ntok;
    const pika_tfidf_opts *to;
    /* fitted vocabulary (last fit) */
    pika_strmap vocab;
    char **terms;
    double *idf;
    int d;
} tfidf_ctx;

static int is_word(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80; }

static void tokenize(const char *s, char ***out, int *nout) {
    int cap = 16, n = 0;
    char **v = pika_malloc(sizeof(char *) * cap);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        while (*p && !is_word(*p)) p++;
        const unsigned char *b = p;
        while (*p && is_word(*p)) p++;
        size_t l = (size_t)(p - b);
        if (l >= 2) {
            char *t = pika_strndup((const char *)b, l);
            for (size_t i = 0; i < l; i++)
                if (t[i] >= 'A' && t[i] <= 'Z') t[i] = (char)(t[i] - 'A' + 'a');
            if (n == cap) v = pika_realloc(v, sizeof(char *) * (cap *= 2));
            v[n++] = t;
        }
    }
    *out = v;
    *nout = n;
}

/* Call fn(term) for every n-gram of doc i (with repetition). */
static void for_ngrams(const tfidf_ctx *c, int64_t i, void (*fn)(const char *, void *), void *arg) {
    char buf[4096];
    for (int g = 1; g <= c->to->ngram_max; g++)
        for (int s = 0; s + g <= c->ntok[i]; s++) {
            size_t len = 0;
            int ok = 1;
            for (int t = 0; t < g && ok; t++) {
                size_t l = strlen(c->toks[i][s + t]);
                if (len + l + 2 > sizeof buf) { ok = 0; break; }
                if (t) buf[len++] = ' ';
                memcpy(buf + len, c->toks[i][s + t], l);
                len += l;
            }
            if (!ok) continue;
            buf[len] = 0;
            fn(buf, arg);
        }
}

typedef struct { pika_strmap *df; pika_strmap *seen; int64_t doc; } df_arg;
static void df_add(const char *t, void *a_) {
    df_arg *a = a_;
    if (pika_strmap_get(a->seen, t) == a->doc) return;
    pika_strmap_put(a->seen, t, a->doc);
    int64_t v = pika_strmap_get(a->df, t);
    pika_strmap_put(a->df, t, v < 0 ? 1 : v + 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void vocab_free(tfidf_ctx *c) {
    pika_strmap_free(&c->vocab);
    for (int j = 0; j < c->d; j++) free(c->terms[j]);
    free(c->terms);
    free(c->idf);
    c->terms = NULL;
    c->idf = NULL;
    c->d = 0;
}

/* Fit the vocabulary + idf on rows with fold[i] != k (all rows when fold == NULL). */
static void tfidf_fit(tfidf_ctx *c, const int *fold, int k) {
    vocab_free(c);
    pika_strmap df, seen;
    pika_strmap_init(&df);
    pika_strmap_init(&seen);
    int64_t nd = 0;
    for (int64_t i = 0; i < c->n; i++) {
        if (fold && fold[i] == k) continue;
        df_arg a = {&df, &seen, i};
        for_ngrams(c, i, df_add, &a);
        nd++;
    }
    int cap = 0;
    for (int64_t s = 0; s < df.cap; s++)
        if (df.keys[s] && df.vals[s] >= c->to->min_df) cap++;
    c->terms = pika_malloc(sizeof(char *) * (cap ? cap : 1));
    c->d = 0;
    for (int64_t s = 0; s < df.cap; s++)
        if (df.keys[s] && df.vals[s] >= c->to->min_df) c->terms[c->d++] = pika_strdup(df.keys[s]);
    qsort(c->terms, (size_t)c->d, sizeof(char *), cmp_str);
    c->idf = pika_malloc(sizeof(double) * (c->d ? c->d : 1));
    pika_strmap_init(&c->vocab);
    for (int j = 0; j < c->d; j++) {
        pika_strmap_put(&c->vocab, c->terms[j], j);
        c->idf[j] = log((1.0 + (double)nd) / (1.0 + (double)pika_strmap_get(&df, c->terms[j]))) + 1.0;
    }
    pika_strmap_free(&df);
    pika_strmap_free(&seen);
}

typedef struct { const pika_strmap *vocab; double *cnt; int32_t *touched; int nt; } tf_arg;
static void tf_add(const char *t, void *a_) {
    tf_arg *a = a_;
    int64_t j = pika_strmap_get(a->vocab, t);
    if (j < 0) return;
    if (a->cnt[j] == 0) a->touched[a->nt++] = (int32_t)j;
    a->cnt[j] += 1;
}

static int cmp_i32(const void *a, const void *b) { int32_t x = *(const int32_t *)a, y = *(const int32_t *)b; return (x > y) - (x < y); }

/* Transform all rows with the fitted vocabulary. */
static void tfidf_transform(const tfidf_ctx *c, const pika_strmap *vocab, const double *idf, int d, int sublinear, pika_csr *Z) {
    memset(Z, 0, sizeof *Z);
    Z->n = c->n;
    Z->d = d > 0 ? d : 1;
    Z->rowptr = pika_malloc(sizeof(int64_t) * (c->n + 1));
    int64_t cap = 1024, nnz = 0;
    Z->col = pika_malloc(sizeof(int32_t) * cap);
    Z->val = pika_malloc(sizeof(double) * cap);
    double *cnt = pika_calloc((size_t)Z->d, sizeof(double));
    int32_t *touched = pika_malloc(sizeof(int32_t) * Z->d);
    for (int64_t i = 0; i < c->n; i++) {
        Z->rowptr[i] = nnz;
        tf_arg a = {vocab, cnt, touched, 0};
        for_ngrams(c, i, tf_add, &a);
        qsort(touched, (size_t)a.nt, sizeof(int32_t), cmp_i32);
        if (nnz + a.nt > cap) {
            while (nnz + a.nt > cap) cap *= 2;
            Z->col = pika_realloc(Z->col, sizeof(int32_t) * cap);
            Z->val = pika_realloc(Z->val, sizeof(double) * cap);
        }
        double nrm = 0;
        for (int t = 0; t < a.nt; t++) {
            int32_t j = touched[t];
            double tf = sublinear ? 1 + log(cnt[j]) : cnt[j];
            double v = tf * idf[j];
            Z->col[nnz + t] = j;
            Z->val[nnz + t] = v;
            nrm += v * v;
            cnt[j] = 0;
        }
        nrm = sqrt(nrm);
        for (int t = 0; t < a.nt; t++) Z->val[nnz + t] /= nrm > 0 ? nrm : 1;
        nnz += a.nt;
    }
    Z->rowptr[c->n] = nnz;
    free(cnt);
    free(touched);
}

static int tfidf_build(int k, const int *fold, void *ctx, pika_csr *out) {
    tfidf_ctx *c = ctx;
    tfidf_fit(c, k >= 0 ? fold : NULL, k);
    tfidf_transform(c, &c->vocab, c->idf, c->d, c->to->sublinear, out);
    return 0;
}

static void ctx_init(tfidf_ctx *c, char *const *texts, int64_t n, const pika_tfidf_opts *to) {
    memset(c, 0, sizeof *c);
    c->n = n;
    c->to = to;
    c->toks = pika_malloc(sizeof(char **) * (n ? n : 1));
    c->ntok = pika_malloc(sizeof(int) * (n ? n : 1));
    for (int64_t i = 0; i < n; i++) tokenize(texts[i], &c->toks[i], &c->ntok[i]);
}

static void ctx_free(tfidf_ctx *c) {
    for (int64_t i = 0; i < c->n; i++) {
        for (int t = 0; t < c->ntok[i]; t++) free(c->toks[i][t]);
        free(c->toks[i]);
    }
    free(c->toks);
    free(c->ntok);
    vocab_free(c);
}

/* ---------------------------------------------------------------- length */

static int length_features(char *const *texts, const double *tokens, int64_t n, double *X, int *F) {
    *F = tokens ? 2 : 1;
    for (int64_t i = 0; i < n; i++) {
        if (tokens) {
            if (!isfinite(tokens[i])) return pika_set_error("length baseline: row %lld has no token count", (long long)i);
            X[i * 2] = tokens[i];
            X[i * 2 + 1] = (double)strlen(texts[i]);
        } else {
            X[i] = (double)strlen(texts[i]);
        }
    }
    return 0;
}

/* the prompting baseline's one feature: the model's score per text (prompting.h), passed as tokens[] */
static int prompting_features(const double *score, int64_t n, double *X, int *F) {
    *F = 1;
    if (!score) return pika_set_error("prompting baseline: no model scores given (pass --model, the model that is asked)");
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(score[i])) return pika_set_error("prompting baseline: row %lld has no finite score", (long long)i);
        X[i] = score[i];
    }
    return 0;
}

/* ---------------------------------------------------------------- train / predict */

void pika_baseline_opts_default(pika_baseline_opts *o) {
    memset(o, 0, sizeof *o);
    o->kind = "tfidf";
    pika_tfidf_opts_default(&o->tfidf);
    pika_fit_opts_default(&o->fit);
}

static int baseline_train(char *const *texts, const double *tokens, int64_t n, const double *y, const pika_baseline_opts *bo,
                          pika_probe *out);

int pika_baseline_train(char *const *texts, const double *tokens, int64_t n, const double *y, const pika_baseline_opts *bo,
                        pika_probe **out) {
    pika_probe *p = pika_calloc(1, sizeof *p);
    if (baseline_train(texts, tokens, n, y, bo, p)) { free(p); *out = NULL; return -1; }
    *out = p;
    return 0;
}

static int baseline_train(char *const *texts, const double *tokens, int64_t n, const double *y, const pika_baseline_opts *bo,
                          pika_probe *out) {
    const char *kind = bo->kind ? bo->kind : "", *target = bo->target;
    const pika_tfidf_opts *to = &bo->tfidf;
    const pika_fit_opts *o = &bo->fit;
    FILE *log = bo->log;
    memset(out, 0, sizeof *out);
    int is_prompt = !strcmp(kind, "prompting");
    int is_len = !strcmp(kind, "length") || is_prompt; /* both dense: prompting has the model's yes-vs-no score as its one feature */
    if (!is_len && strcmp(kind, "tfidf")) return pika_set_error("unknown baseline '%s' (length, tfidf or prompting)", kind);
    int task = pika_resolve_task(o->task, y, n);
    if (task < 0) return -1;
    int k = o->k_folds, A = o->n_alpha;
    int *fold = pika_malloc(sizeof(int) * n);
    if (pika_make_folds(y, n, task, k, o->seed, fold)) { free(fold); return -1; }
    pika_fit_opts o2 = *o;
    o2.task = task;
    out->cv_mean = pika_malloc(sizeof(double) * A);
    out->cv_std = pika_malloc(sizeof(double) * A);
    double *oof = pika_malloc(sizeof(double) * (size_t)A * n);
    int rc;
    double *X = NULL;
    tfidf_ctx c;
    int F = 0;
    if (is_len) {
        X = pika_malloc(sizeof(double) * n * 2);
        rc = is_prompt ? prompting_features(tokens, n, X, &F) : length_features(texts, tokens, n, X, &F);
        if (!rc) rc = pika_cv_dense(X, n, F, y, task, fold, &o2, out->cv_mean, out->cv_std, oof);
    } else {
        ctx_init(&c, texts, n, to);
        rc = pika_cv_sparse(tfidf_build, &c, n, y, task, fold, &o2, out->cv_mean, out->cv_std, oof);
    }
    int ba = -1;
    double best = -INFINITY;
    for (int a = 0; a < A && !rc; a++)
        if (!isnan(out->cv_mean[a]) && out->cv_mean[a] > best) { best = out->cv_mean[a]; ba = a; }
    if (!rc && ba < 0) rc = pika_set_error("baseline: no valid CV score");
    if (!rc) {
        snprintf(out->kind, sizeof out->kind, "%s", kind);
        out->task = task;
        out->target = pika_strdup(target ? target : "");
        out->alpha = o->alpha[ba];
        out->cv_score = best;
        out->cv_score_std = out->cv_std[ba];
        out->n_layers = out->n_pos = 1;
        out->n_alpha = A;
        out->layers = pika_calloc(1, sizeof(int32_t));
        out->positions = pika_calloc(1, sizeof(int32_t));
        out->alphas = pika_malloc(sizeof(double) * A);
        memcpy(out->alphas, o->alpha, sizeof(double) * A);
        out->standardize = is_len ? o->standardize : 0;
        out->intercept = o->intercept;
        out->k_folds = k;
        out->seed = o->seed;
        out->n_train = n;
        double pr = 0;
        for (int64_t i = 0; i < n; i++) pr += y[i];
        out->pos_rate = pr / (double)n;
        out->extra = cJSON_CreateObject();
        if (is_len) {
            rc = pika_fit_dense(X, n, F, y, task, out->alpha, &o2, &out->lin);
            cJSON *fs = cJSON_AddArrayToObject(out->extra, "features");
            if (is_prompt) {
                cJSON_AddItemToArray(fs, cJSON_CreateString("log P(yes) - log P(no)"));
                cJSON *pj = bo->provenance_json ? cJSON_Parse(bo->provenance_json) : NULL;
                if (pj) cJSON_AddItemToObject(out->extra, "prompting", pj);
            } else {
                if (F == 2) cJSON_AddItemToArray(fs, cJSON_CreateString("n_tokens"));
                cJSON_AddItemToArray(fs, cJSON_CreateString("n_chars"));
            }
        } else {
            pika_csr Z;
            tfidf_build(-1, NULL, &c, &Z);
            rc = pika_fit_sparse(&Z, y, task, out->alpha, &o2, &out->lin);
            pika_csr_free(&Z);
            cJSON_AddNumberToObject(out->extra, "ngram_max", to->ngram_max);
            cJSON_AddNumberToObject(out->extra, "min_df", to->min_df);
            cJSON_AddBoolToObject(out->extra, "sublinear_tf", to->sublinear);
            cJSON *voc = cJSON_AddArrayToObject(out->extra, "vocabulary");
            for (int j = 0; j < c.d; j++) cJSON_AddItemToArray(voc, cJSON_CreateString(c.terms[j]));
            cJSON *idf = cJSON_AddArrayToObject(out->extra, "idf");
            for (int j = 0; j < c.d; j++) cJSON_AddItemToArray(idf, cJSON_CreateNumber(c.idf[j]));
        }
        if (!rc && task == PIKA_TARGET_BINARY) {
            rc = pika_platt_fit(oof + (size_t)ba * n, y, n, &out->platt_a, &out->platt_b);
            out->has_platt = rc == 0;
        }
        if (!rc && log)
            fprintf(log, "%s baseline: alpha %g  CV %s %.4f +- %.4f (n=%lld%s)\n", kind, out->alpha,
                    task == PIKA_TARGET_BINARY ? "AUROC" : "Spearman", best, out->cv_score_std, (long long)n,
                    is_prompt ? ", feature log P(yes) - log P(no)" : is_len ? (F == 2 ? ", features n_tokens+n_chars" : ", feature n_chars") : "");
    }
    if (!is_len) ctx_free(&c);
    free(X);
    free(oof);
    free(fold);
    if (rc) {
        probe_clear(out); /* only frees: the error message stays */
    }
    return rc;
}

int pika_baseline_predict(const pika_probe *p, char *const *texts, const double *tokens, int64_t n, double *score,
                          double *prob) {
    if (!strcmp(p->kind, "prompting")) {
        double *X = pika_malloc(sizeof(double) * (n ? n : 1));
        int F;
        int rc = prompting_features(tokens, n, X, &F);
        for (int64_t i = 0; i < n && !rc; i++) {
            score[i] = pika_linear_score(&p->lin, X + i);
            if (prob) prob[i] = pika_probe_prob(p, score[i]);
        }
        free(X);
        return rc;
    }
    if (!strcmp(p->kind, "length")) {
        int want = p->lin.d;
        if (want == 2 && !tokens) return pika_set_error("this length baseline uses token counts; pass the tokens field");
        double *X = pika_malloc(sizeof(double) * n * 2);
        int F;
        int rc = length_features(texts, want == 2 ? tokens : NULL, n, X, &F);
        for (int64_t i = 0; i < n && !rc; i++) {
            score[i] = pika_linear_score(&p->lin, X + i * F);
            if (prob) prob[i] = pika_probe_prob(p, score[i]);
        }
        free(X);
        return rc;
    }
    if (strcmp(p->kind, "tfidf")) return pika_set_error("not a baseline file (kind '%s')", p->kind);
    const cJSON *voc = cJSON_GetObjectItemCaseSensitive(p->extra, "vocabulary");
    const cJSON *idfj = cJSON_GetObjectItemCaseSensitive(p->extra, "idf");
    const cJSON *ng = cJSON_GetObjectItemCaseSensitive(p->extra, "ngram_max");
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(p->extra, "sublinear_tf");
    int d = cJSON_GetArraySize(voc);
    if (!cJSON_IsArray(voc) || !cJSON_IsArray(idfj) || cJSON_GetArraySize(idfj) != d || (d != p->lin.d && !(d == 0 && p->lin.d == 1)) || !cJSON_IsNumber(ng))
        return pika_set_error("TF-IDF baseline file: vocabulary/idf missing or inconsistent");
    pika_tfidf_opts to = {.ngram_max = ng->valueint, .min_df = 1, .sublinear = cJSON_IsTrue(sl)};
    tfidf_ctx c;
    ctx_init(&c, texts, n, &to);
    pika_strmap vocab;
    pika_strmap_init(&vocab);
    double *idf = pika_malloc(sizeof(double) * (d ? d : 1));
    int j = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, voc) pika_strmap_put(&vocab, cJSON_IsString(it) ? it->valuestring : "", j++);
    j = 0;
    cJSON_ArrayForEach(it, idfj) idf[j++] = it->valuedouble;
    pika_csr Z;
    tfidf_transform(&c, &vocab, idf, d, to.sublinear, &Z);
    for (int64_t i = 0; i < n; i++) {
        score[i] = pika_linear_score_sparse(&p->lin, &Z, i);
        if (prob) prob[i] = pika_probe_prob(p, score[i]);
    }
    pika_csr_free(&Z);
    pika_strmap_free(&vocab);
    free(idf);
    ctx_free(&c);
    return 0;
}

int pika_baseline_check_scorer(const pika_probe *p, const char *provenance_json) {
    if (strcmp(p->kind, "prompting")) return 0;
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(p->extra, "prompting");
    cJSON *mine = provenance_json ? cJSON_Parse(provenance_json) : NULL;
    const char *keys[2] = {"question", NULL};
    int rc = 0;
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "model"), "fingerprint");
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mine, "model"), "fingerprint");
    if (!mine) rc = pika_set_error("a prompting baseline scores texts through its model: pass --model (the one it was trained with)");
    else if (!rec) rc = pika_set_error("prompting baseline: the file does not record the model that scored its texts");
    else if (!cJSON_IsString(fa) || !cJSON_IsString(fb) || strcmp(fa->valuestring, fb->valuestring))
        rc = pika_set_error("prompting baseline was trained with model %s, not this one (%s)", cJSON_IsString(fa) ? fa->valuestring : "?",
                            cJSON_IsString(fb) ? fb->valuestring : "?");
    else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(rec, keys[0]), cJSON_GetObjectItemCaseSensitive(mine, keys[0]), 1))
        rc = pika_set_error("prompting baseline was trained with another question");
    else if (!cJSON_Compare(cJSON_GetObjectItemCaseSensitive(rec, "prompt"), cJSON_GetObjectItemCaseSensitive(mine, "prompt"), 1))
        rc = pika_set_error("prompting baseline was trained with another prompt recipe");
    cJSON_Delete(mine);
    return rc;
}
