/* eval.c — owns the prediction file (writer, reader), its join with a labels file, the evaluation
 * metric table with bootstrap CIs, and the paired comparison of two prediction files. See
 * include/pika/eval.h. */
#include "pika/eval.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h" /* the JSONL reader and the JSON-id rule */
#include "pika/labels.h"
#include "pika/probe.h"   /* PIKA_TARGET_* */
#include "pika/util.h"

/* ---------------------------------------------------------------- prediction file */

int pika_pred_write(const char *path, char *const *ids, const int64_t *rows, int64_t n, const double *score,
                    const double *prob) {
    pika_buf b = {0};
    pika_buf_add(&b, "", 0);
    for (int64_t i = 0; i < n; i++) {
        cJSON *id = cJSON_CreateString(ids[rows ? rows[i] : i]);
        char *esc = cJSON_PrintUnformatted(id); /* quoted and escaped */
        char num[96];
        pika_buf_puts(&b, "{\"id\":");
        pika_buf_puts(&b, esc);
        snprintf(num, sizeof num, ",\"score\":%.17g,\"prob\":%.17g}\n", score[i], prob[i]);
        pika_buf_puts(&b, num);
        cJSON_free(esc);
        cJSON_Delete(id);
    }
    int rc = pika_write_file_atomic(path, b.s, b.n);
    free(b.s);
    return rc;
}

void pika_preds_free(pika_preds *p) {
    for (int64_t i = 0; i < p->n; i++) free(p->ids[i]);
    free(p->ids);
    free(p->score);
    free(p->prob);
    memset(p, 0, sizeof *p);
}

int pika_pred_read(const char *path, pika_preds *p) {
    memset(p, 0, sizeof *p);
    pika_labels P;
    const char *pf[2] = {"score", "prob"};
    if (pika_labels_read(&P, path, "id", 2, pf, NULL)) return -1;
    p->n = P.n;
    p->ids = pika_malloc(sizeof(char *) * (size_t)P.n);
    p->score = pika_malloc(sizeof(double) * (size_t)P.n);
    p->prob = pika_malloc(sizeof(double) * (size_t)P.n);
    for (int64_t i = 0; i < P.n; i++) {
        p->ids[i] = P.ids[i];
        P.ids[i] = NULL;
        p->score[i] = P.vals[2 * i];
        p->prob[i] = P.vals[2 * i + 1];
    }
    pika_labels_free(&P);
    return 0;
}

/* ---------------------------------------------------------------- evaluation */

int pika_eval_load(const char *pred_path, const char *labels_path, const char *target, const char *id_field,
                   double **y, double **score, double **prob, char ***ids, int64_t *n) {
    pika_labels L;
    pika_preds P;
    if (pika_pred_read(pred_path, &P)) return -1;
    const char *tf[1] = {target};
    if (pika_labels_read(&L, labels_path, id_field ? id_field : "id", 1, tf, NULL)) { pika_preds_free(&P); return -1; }
    int64_t *row = pika_malloc(sizeof(int64_t) * P.n);
    int rc = pika_labels_join(&L, P.ids, P.n, row);
    if (!rc) {
        *n = P.n;
        *y = pika_malloc(sizeof(double) * P.n);
        *score = pika_malloc(sizeof(double) * P.n);
        *prob = pika_malloc(sizeof(double) * P.n);
        if (ids) *ids = pika_malloc(sizeof(char *) * P.n);
        for (int64_t i = 0; i < P.n; i++) {
            (*y)[i] = L.vals[row[i]];
            (*score)[i] = P.score[i];
            (*prob)[i] = P.prob[i];
            if (ids) (*ids)[i] = pika_strdup(P.ids[i]);
        }
    }
    free(row);
    pika_preds_free(&P);
    pika_labels_free(&L);
    return rc;
}

int pika_eval_compute(const double *y, const double *score, const double *prob, int64_t n, int task, int n_boot,
                      uint64_t seed, pika_eval *e) {
    memset(e, 0, sizeof *e);
    if (n < 2) return pika_set_error("evaluation needs at least 2 rows");
    int all01 = 1;
    for (int64_t i = 0; i < n; i++) all01 &= y[i] == 0 || y[i] == 1;
    if (task == PIKA_TARGET_AUTO) task = all01 ? PIKA_TARGET_BINARY : PIKA_TARGET_CONTINUOUS;
    e->task = task;
    e->n = n;
    e->n_boot = n_boot;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += y[i];
    e->base_rate = sum / (double)n;
    int which[PIKA_M_COUNT];
    const double *src[PIKA_M_COUNT];
    int k = 0;
    if (task == PIKA_TARGET_BINARY) {
        which[k] = PIKA_M_AUROC; src[k++] = score;
        which[k] = PIKA_M_BRIER; src[k++] = prob;
        which[k] = PIKA_M_LOGLOSS; src[k++] = prob;
        which[k] = PIKA_M_ECE; src[k++] = prob;
        which[k] = PIKA_M_SPEARMAN; src[k++] = score;
    } else {
        which[k] = PIKA_M_SPEARMAN; src[k++] = score;
        which[k] = PIKA_M_PEARSON; src[k++] = score;
        which[k] = PIKA_M_BRIER; src[k++] = prob;
    }
    for (int i = 0; i < k; i++) {
        int w = which[i];
        e->has[w] = 1;
        if (n_boot > 0) e->m[w] = pika_bootstrap_ci(w, y, src[i], n, n_boot, seed, &e->lo[w], &e->hi[w]);
        else { e->m[w] = pika_metric(w, y, src[i], n); e->lo[w] = e->hi[w] = NAN; }
    }
    return 0;
}

int pika_eval_paired(int task, const double *y, char *const *ids_a, const double *score_a, int64_t n_a,
                     char *const *ids_b, const double *score_b, int64_t n_b, int n_boot, uint64_t seed, pika_paired *out) {
    memset(out, 0, sizeof *out);
    pika_strmap m;
    pika_strmap_init(&m);
    for (int64_t r = 0; r < n_b; r++) pika_strmap_put(&m, ids_b[r], r);
    size_t sz = sizeof(double) * (size_t)(n_a ? n_a : 1);
    double *yy = pika_malloc(sz), *a = pika_malloc(sz), *b = pika_malloc(sz);
    int64_t k = 0;
    for (int64_t r = 0; r < n_a; r++) {
        int64_t j = pika_strmap_get(&m, ids_a[r]);
        if (j < 0) continue;
        yy[k] = y[r]; a[k] = score_a[r]; b[k++] = score_b[j];
    }
    pika_strmap_free(&m);
    out->metric = task == PIKA_TARGET_BINARY ? PIKA_M_AUROC : PIKA_M_SPEARMAN;
    out->n = k;
    out->n_boot = n_boot;
    int rc = 0;
    if (k < 2) rc = pika_set_error("paired comparison: only %lld shared ids", (long long)k);
    else out->delta = pika_paired_bootstrap(out->metric, yy, a, b, k, n_boot, seed, &out->lo, &out->hi, &out->p);
    free(yy); free(a); free(b);
    return rc;
}
