/* pool.c — reader probes (pool.h): one store, every member's labels, one fold assignment. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/labels.h"
#include "pika/metrics.h"
#include "pika/pool.h"
#include "pika/util.h"
#include "probe/probe_internal.h"

int pika_pool_select(char *const *ids, int64_t n, int n_members, const char *const *labels_paths, const char *id_field,
                     const char *target, const char *split_spec, int64_t **rows, int64_t *n_rows, double **y) {
    *rows = NULL;
    *n_rows = 0;
    if (n_members < 1) return pika_set_error("a pool needs at least one member");
    /* full[m][store row] = member m's target (NaN where not selected) */
    double *full = pika_malloc(sizeof(double) * (size_t)n_members * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < (int64_t)n_members * n; i++) full[i] = NAN;
    for (int m = 0; m < n_members; m++) {
        int64_t *r;
        double *v;
        int64_t k = pika_labels_select(labels_paths[m], id_field, target, split_spec, ids, n, &r, &v);
        if (k < 0) { free(full); return pika_set_error("member %d (%s): %s", m, labels_paths[m], pika_last_error()); }
        for (int64_t i = 0; i < k; i++) full[(size_t)m * n + r[i]] = v[i];
        free(r);
        free(v);
    }
    int64_t c = 0;
    int64_t *out = pika_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        int all = 1;
        for (int m = 0; m < n_members && all; m++) all = !isnan(full[(size_t)m * n + i]);
        if (all) out[c++] = i;
    }
    if (c == 0) { free(full); free(out); return pika_set_error("no store row is labelled by every member"); }
    for (int m = 0; m < n_members; m++) {
        y[m] = pika_malloc(sizeof(double) * (size_t)c);
        for (int64_t i = 0; i < c; i++) y[m][i] = full[(size_t)m * n + out[i]];
    }
    free(full);
    *rows = out;
    *n_rows = c;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int pika_pool_folds(const double *const *y, int n_members, int64_t n, int k, uint64_t seed, int *fold) {
    if (k < 2) return pika_set_error("need at least 2 folds");
    if (n < 2 * k) return pika_set_error("%lld training rows are too few for %d folds", (long long)n, k);
    if (n_members < 1) return pika_set_error("a pool needs at least one member");
    uint64_t *code = pika_calloc((size_t)n, sizeof(uint64_t));
    double *tmp = pika_malloc(sizeof(double) * (size_t)n);
    for (int m = 0; m < n_members; m++) {
        int binary = 1;
        int64_t ones = 0;
        for (int64_t i = 0; i < n; i++) {
            if (y[m][i] != 0 && y[m][i] != 1) binary = 0;
            ones += y[m][i] == 1;
        }
        double med = 0.5;
        if (binary) {
            if (ones < k || n - ones < k) {
                free(code); free(tmp);
                return pika_set_error("member %d: stratified %d-fold CV needs at least %d rows of each class (have %lld ones of %lld)",
                                      m, k, k, (long long)ones, (long long)n);
            }
        } else {
            memcpy(tmp, y[m], sizeof(double) * (size_t)n);
            qsort(tmp, (size_t)n, sizeof(double), cmp_double);
            med = tmp[n / 2];
        }
        if (m < 63)
            for (int64_t i = 0; i < n; i++) code[i] |= (uint64_t)(binary ? y[m][i] == 1 : y[m][i] > med) << m;
    }
    free(tmp);
    /* shuffled order, stably sorted by pattern, dealt round robin: every pattern spreads over the folds */
    pika_rng r;
    pika_rng_seed(&r, seed);
    int64_t *idx = pika_malloc(sizeof(int64_t) * (size_t)n), *buf = pika_malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    pika_rng_shuffle(&r, idx, n);
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, q = lo;
            while (i < mid && j < hi) buf[q++] = code[idx[j]] < code[idx[i]] ? idx[j++] : idx[i++];
            while (i < mid) buf[q++] = idx[i++];
            while (j < hi) buf[q++] = idx[j++];
        }
        memcpy(idx, buf, sizeof(int64_t) * (size_t)n);
    }
    int64_t c0 = (int64_t)pika_rng_below(&r, k);
    for (int64_t t = 0; t < n; t++) fold[idx[t]] = (int)((c0 + t) % k);
    free(idx); free(buf); free(code);
    return 0;
}

void pika_pool_opts_default(pika_pool_opts *o) {
    memset(o, 0, sizeof *o);
    pika_probe_train_opts_default(&o->train);
}

/* best-alpha CV of configuration (l, p) in a probe's curve (-inf when all NaN) */
static double best_alpha_cv(const pika_probe *p, int l, int q) {
    double b = -INFINITY;
    for (int a = 0; a < p->n_alpha; a++) {
        double v = p->cv_mean[((size_t)l * p->n_pos + q) * p->n_alpha + a];
        if (!isnan(v) && v > b) b = v;
    }
    return b;
}

int pika_probe_train_pool(pika_acts *a, const int64_t *rows, int64_t n, int n_members, const double *const *y,
                          const char *const *members, const char *const *labels_paths, const pika_pool_opts *o,
                          pika_probe **out) {
    for (int m = 0; m < n_members; m++) out[m] = NULL;
    int *fold = pika_malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (pika_pool_folds(y, n_members, n, o->train.fit.k_folds, o->train.fit.seed, fold)) { free(fold); return -1; }
    int rc = 0;
    for (int m = 0; m < n_members && !rc; m++) {
        pika_probe_train_opts t = o->train;
        t.folds = fold;
        t.member = members[m];
        t.labels_path = labels_paths ? labels_paths[m] : NULL;
        if (t.log) fprintf(t.log, "== member %s\n", members[m]);
        rc = pika_probe_train(a, rows, n, y[m], &t, &out[m]);
    }
    if (!rc && o->joint) {
        /* one (layer, position): the highest mean over members of the best-alpha CV */
        const pika_probe *p0 = out[0];
        int bl = -1, bq = -1;
        double best = -INFINITY;
        for (int l = 0; l < p0->n_layers; l++)
            for (int q = 0; q < p0->n_pos; q++) {
                double s = 0;
                for (int m = 0; m < n_members; m++) s += best_alpha_cv(out[m], l, q);
                s /= n_members;
                if (s > best) { best = s; bl = l; bq = q; }
            }
        if (bl < 0) rc = pika_set_error("joint selection: no valid CV score");
        int32_t L = bl >= 0 ? p0->layers[bl] : 0, P = bq >= 0 ? p0->positions[bq] : 0;
        if (!rc && o->train.log) fprintf(o->train.log, "joint selection: layer %d position %d (mean CV %.4f over %d members)\n", L, P, best, n_members);
        for (int m = 0; m < n_members && !rc; m++) {
            pika_probe_train_opts t = o->train;
            t.folds = fold;
            t.member = members[m];
            t.labels_path = labels_paths ? labels_paths[m] : NULL;
            t.layers = &L; t.n_layers = 1;
            t.positions = &P; t.n_pos = 1;
            t.log = NULL;
            pika_probe *j;
            if ((rc = pika_probe_train(a, rows, n, y[m], &t, &j))) break;
            /* keep the full sweep's curve in the file */
            pika_probe *f = out[m];
#define SWAP(T, x) do { T tmp_ = f->x; f->x = j->x; j->x = tmp_; } while (0)
            SWAP(int, n_layers); SWAP(int, n_pos); SWAP(int32_t *, layers); SWAP(int32_t *, positions);
            SWAP(double *, cv_mean); SWAP(double *, cv_std);
#undef SWAP
            pika_probe_free(f);
            out[m] = j;
        }
    }
    free(fold);
    if (rc)
        for (int m = 0; m < n_members; m++) { pika_probe_free(out[m]); out[m] = NULL; }
    return rc;
}
