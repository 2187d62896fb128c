/* study.c — `pika study` (study.h): the pipeline's reports, reader probes, transfer and routing of one
 * pool in one Markdown page and its self-contained HTML rendering. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pika/acts.h"
#include "pika/eval.h"
#include "pika/labels.h"
#include "pika/metrics.h"
#include "pika/probe.h"
#include "pika/study.h"
#include "pika/util.h"
#include "probe/probe_internal.h"

/* ---------------------------------------------------------------- small helpers */

static const char *pth(const char *a, const char *b, const char *c) {
    static char buf[8][4096];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, 4096, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return p;
}

static int exists(const char *p) { return access(p, R_OK) == 0; }

static int copy_file(const char *src, const char *dst) {
    size_t n;
    char *s = pika_read_file(src, &n);
    if (!s) return -1;
    int rc = pika_write_file_atomic(dst, s, n);
    free(s);
    return rc;
}

static const char GP_HEAD[] = "set terminal pngcairo noenhanced size 900,540 font ',11'\nset grid\n";

/* Append a Markdown file: skip its "# " title, demote headings by one level, copy its images into
 * out_dir as PREFIX-file (or drop them when keep_images is 0). */
static void include_md(FILE *md, const char *src, const char *src_dir, const char *out_dir, const char *prefix, int keep_images) {
    char *s = pika_read_file(src, NULL);
    if (!s) { fprintf(md, "\n_(missing: `%s`)_\n", src); return; }
    char *line = s, *next;
    int first = 1;
    for (; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (first && !strncmp(line, "# ", 2)) { first = 0; continue; }
        first = 0;
        if (line[0] == '#') { fprintf(md, "#%s\n", line); continue; }
        if (!strncmp(line, "![", 2)) {
            char *o = strstr(line, "]("), *c = o ? strrchr(o, ')') : NULL;
            if (!keep_images || !o || !c) continue;
            *c = 0;
            const char *file = o + 2;
            char dst[4096], name[512];
            snprintf(name, sizeof name, "%s-%s", prefix, file);
            for (char *q = name; *q; q++)
                if (*q == '/') *q = '-';
            snprintf(dst, sizeof dst, "%s/%s", out_dir, name);
            *o = 0;
            if (copy_file(pth(src_dir, file, NULL), dst) == 0) fprintf(md, "%s](%s)\n", line, name);
            else fprintf(md, "_(figure `%s` missing)_\n", file);
            continue;
        }
        fprintf(md, "%s\n", line);
    }
    free(s);
}

/* labels: field values by id order of the file */
static int read_field(const char *labels, const char *field, double **v, int64_t *n) {
    pika_labels L;
    const char *f[1] = {field};
    if (pika_labels_read(&L, labels, "id", 1, f, NULL)) return -1;
    *n = L.n;
    *v = pika_malloc(sizeof(double) * (size_t)(L.n ? L.n : 1));
    memcpy(*v, L.vals, sizeof(double) * (size_t)L.n);
    pika_labels_free(&L);
    return 0;
}

/* ---------------------------------------------------------------- figures */

/* CV by layer: one line per position (best alpha, fold std as error bars), baselines horizontal */
static int fig_cv(const char *out, const char *m, const pika_probe *p, double len_cv, double tf_cv, double pr_cv, const char *metric) {
    char dat[512], gp[512];
    snprintf(dat, sizeof dat, "%s-cv.dat", m);
    snprintf(gp, sizeof gp, "%s-cv.gp", m);
    FILE *f = pika_fopen_in(out, dat);
    if (!f) return -1;
    fprintf(f, "# layer then per position: cv_mean cv_std (best alpha)\n");
    for (int l = 0; l < p->n_layers; l++) {
        fprintf(f, "%d", p->layers[l]);
        for (int q = 0; q < p->n_pos; q++) {
            double b = NAN, sd = 0;
            for (int a = 0; a < p->n_alpha; a++) {
                size_t i = ((size_t)l * p->n_pos + q) * p->n_alpha + a;
                if (!isnan(p->cv_mean[i]) && (isnan(b) || p->cv_mean[i] > b)) { b = p->cv_mean[i]; sd = p->cv_std[i]; }
            }
            fprintf(f, " %.6f %.6f", b, sd);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    FILE *g = pika_fopen_in(out, gp);
    if (!g) return -1;
    fprintf(g, "%sset output '%s-cv.png'\nset title 'member %s: probe CV %s by layer (error bars: std over CV folds)'\n", GP_HEAD, m, m, metric);
    fprintf(g, "set xlabel 'layer'\nset ylabel 'CV %s'\nset xtics 1 format '%%.0f'\nset xrange [%g:%g]\nset key outside right\n", metric,
            p->layers[0] - 0.5, p->layers[p->n_layers - 1] + 0.5);
    fprintf(g, "plot");
    for (int q = 0; q < p->n_pos; q++)
        fprintf(g, "%s '%s' using 1:%d:%d with yerrorlines lw 2 title 'EOI position %d'", q ? "," : "", dat, 2 + 2 * q, 3 + 2 * q,
                p->positions[q]);
    if (!isnan(len_cv)) fprintf(g, ", %.6f with lines dt 2 lw 2 title 'length baseline (CV)'", len_cv);
    if (!isnan(tf_cv)) fprintf(g, ", %.6f with lines dt 3 lw 2 title 'TF-IDF baseline (CV)'", tf_cv);
    if (!isnan(pr_cv)) fprintf(g, ", %.6f with lines dt 4 lw 2 title 'prompting baseline (CV)'", pr_cv);
    fprintf(g, "\n");
    fclose(g);
    return pika_gnuplot_run(out, gp);
}

static int cmp_desc(const void *a, const void *b) {
    const double *x = a, *y = b;
    return (x[0] < y[0]) - (x[0] > y[0]);
}

/* ROC curve points of (y, s) as one gnuplot index block */
static void roc_block(FILE *f, const double *y, const double *s, int64_t n) {
    double *p = pika_malloc(sizeof(double) * 2 * (size_t)n);
    double P = 0, N = 0;
    for (int64_t i = 0; i < n; i++) { p[2 * i] = s[i]; p[2 * i + 1] = y[i]; P += y[i] == 1; N += y[i] != 1; }
    qsort(p, (size_t)n, 2 * sizeof(double), cmp_desc);
    double tp = 0, fp = 0;
    fprintf(f, "0 0\n");
    for (int64_t i = 0; i < n; i++) {
        if (p[2 * i + 1] == 1) tp++; else fp++;
        if (i + 1 == n || p[2 * (i + 1)] != p[2 * i]) fprintf(f, "%.6f %.6f\n", N > 0 ? fp / N : 0, P > 0 ? tp / P : 0);
    }
    fprintf(f, "\n\n");
    free(p);
}

typedef struct {
    const char *name, *path;
    double *y, *s, *p;
    int64_t n;
    char **ids;
    int ok;
} series;

static void series_load(series *S, const char *name, const char *pred, const char *labels, const char *target) {
    memset(S, 0, sizeof *S);
    S->name = name;
    S->path = pred;
    S->ok = exists(pred) && pika_eval_load(pred, labels, target, "id", &S->y, &S->s, &S->p, &S->ids, &S->n) == 0;
}

static void series_free(series *S) {
    if (!S->ok) return;
    for (int64_t i = 0; i < S->n; i++) free(S->ids[i]);
    free(S->ids); free(S->y); free(S->s); free(S->p);
}

static int fig_roc(const char *out, const char *m, series *S, int ns) {
    char dat[512], gp[512];
    snprintf(dat, sizeof dat, "%s-roc.dat", m);
    snprintf(gp, sizeof gp, "%s-roc.gp", m);
    FILE *f = pika_fopen_in(out, dat);
    if (!f) return -1;
    for (int i = 0; i < ns; i++)
        if (S[i].ok) roc_block(f, S[i].y, S[i].s, S[i].n);
    fclose(f);
    FILE *g = pika_fopen_in(out, gp);
    if (!g) return -1;
    fprintf(g, "%sset output '%s-roc.png'\nset title 'member %s: ROC on the held-out split'\nset size ratio -1\n", GP_HEAD, m, m);
    fprintf(g, "set xlabel 'false positive rate'\nset ylabel 'true positive rate'\nset xrange [0:1]\nset yrange [0:1]\nset key bottom right\n");
    fprintf(g, "plot x with lines dt 2 lc rgb 'gray' title 'chance'");
    for (int i = 0, b = 0; i < ns; i++)
        if (S[i].ok) fprintf(g, ", '%s' index %d using 1:2 with lines lw 2 title '%s (AUROC %.3f)'", dat, b++, S[i].name, pika_auroc(S[i].y, S[i].s, S[i].n));
    fprintf(g, "\n");
    fclose(g);
    return pika_gnuplot_run(out, gp);
}

/* reliability: 10 equal-width bins of prob; points + bin counts as labels */
static int fig_rel(const char *out, const char *m, series *S, int ns) {
    char dat[512], gp[512];
    snprintf(dat, sizeof dat, "%s-rel.dat", m);
    snprintf(gp, sizeof gp, "%s-rel.gp", m);
    FILE *f = pika_fopen_in(out, dat);
    if (!f) return -1;
    for (int i = 0; i < ns; i++) {
        if (!S[i].ok) continue;
        double sp[10] = {0}, sy[10] = {0};
        int c[10] = {0};
        for (int64_t r = 0; r < S[i].n; r++) {
            int b = (int)(S[i].p[r] * 10);
            b = b < 0 ? 0 : b > 9 ? 9 : b;
            sp[b] += S[i].p[r]; sy[b] += S[i].y[r]; c[b]++;
        }
        fprintf(f, "# %s: bin mean_prob frac_positive count\n", S[i].name);
        for (int b = 0; b < 10; b++)
            if (c[b]) fprintf(f, "%d %.6f %.6f %d\n", b, sp[b] / c[b], sy[b] / c[b], c[b]);
        fprintf(f, "\n\n");
    }
    fclose(f);
    FILE *g = pika_fopen_in(out, gp);
    if (!g) return -1;
    fprintf(g, "%sset output '%s-rel.png'\nset title 'member %s: reliability (10 equal-width bins; labels = rows per bin)'\n", GP_HEAD, m, m);
    fprintf(g, "set xlabel 'mean predicted probability'\nset ylabel 'fraction correct'\nset xrange [0:1]\nset yrange [0:1.05]\nset key top left\n");
    fprintf(g, "plot x with lines dt 2 lc rgb 'gray' title 'perfect calibration'");
    for (int i = 0, b = 0; i < ns; i++) {
        if (!S[i].ok) continue;
        fprintf(g, ", '%s' index %d using 2:3 with linespoints lw 2 lc %d title '%s', '' index %d using 2:3:4 with labels offset 0,%d tc lt %d notitle",
                dat, b, b + 1, S[i].name, b, b % 2 ? -1 : 1, b + 1);
        b++;
    }
    fprintf(g, "\n");
    fclose(g);
    return pika_gnuplot_run(out, gp);
}

/* Held-out cross-prediction of member m's two difficulty probes (P/m/difficulty/probe_{human,success}.json)
 * on the split=test rows of its store: v[0..3] = AUROC(success | success probe), AUROC(success | −human
 * probe), Spearman(level, human probe), Spearman(level, −success probe); lo/hi their bootstrap CIs. */
static int cross_pred(const char *P, const char *m, const char *target, const char *human, int nb, uint64_t seed, double *v,
                      double *lo, double *hi, int64_t *n_out) {
    pika_acts a;
    if (pika_acts_open(&a, pth(P, m, "acts"))) return -1;
    int64_t *rows = NULL, *rows2 = NULL, n, n2;
    double *y = NULL, *h = NULL;
    pika_probe *ph = NULL, *ps = NULL;
    double *sh = NULL, *ss = NULL;
    int rc = -1;
    const char *L = pth(P, m, "labels.jsonl");
    if ((n = pika_labels_select(L, "id", target, "split=test", a.ids, a.n, &rows, &y)) < 0) goto done;
    if ((n2 = pika_labels_select(L, "id", human, "split=test", a.ids, a.n, &rows2, &h)) < 0 || n2 != n) goto done;
    if (!(ph = pika_probe_load(pth(P, m, "difficulty/probe_human.json"))) || !(ps = pika_probe_load(pth(P, m, "difficulty/probe_success.json"))))
        goto done;
    sh = pika_malloc(sizeof(double) * (size_t)n);
    ss = pika_malloc(sizeof(double) * (size_t)n);
    if (pika_probe_predict(ph, &a, rows, n, sh, NULL) || pika_probe_predict(ps, &a, rows, n, ss, NULL)) goto done;
    double *neg_h = pika_malloc(sizeof(double) * (size_t)n), *neg_s = pika_malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) { neg_h[i] = -sh[i]; neg_s[i] = -ss[i]; }
    v[0] = pika_bootstrap_ci(PIKA_M_AUROC, y, ss, n, nb, seed, &lo[0], &hi[0]);
    v[1] = pika_bootstrap_ci(PIKA_M_AUROC, y, neg_h, n, nb, seed, &lo[1], &hi[1]);
    v[2] = pika_bootstrap_ci(PIKA_M_SPEARMAN, h, sh, n, nb, seed, &lo[2], &hi[2]);
    v[3] = pika_bootstrap_ci(PIKA_M_SPEARMAN, h, neg_s, n, nb, seed, &lo[3], &hi[3]);
    free(neg_h); free(neg_s);
    *n_out = n;
    rc = 0;
done:
    free(rows); free(rows2); free(y); free(h); free(sh); free(ss);
    pika_probe_free(ph); pika_probe_free(ps);
    pika_acts_close(&a);
    return rc;
}

/* ---------------------------------------------------------------- the page */

static void provenance(FILE *md, const pika_study_opts *o, int64_t n_problems) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
    fprintf(md, "## Provenance\n\n");
    fprintf(md, "- pika version `%s`, written %s\n", o->version ? o->version : "unknown", date);
    fprintf(md, "- dataset `%s`: N = %lld problems; target `%s`, human difficulty `%s`\n", pth(o->pipeline_dir, "problems.jsonl", NULL),
            (long long)n_problems, o->target, o->human ? o->human : "level");
    for (int i = 0; i < o->n_models; i++) {
        const char *m = o->models[i];
        char *s = pika_read_file(pth(o->pipeline_dir, m, "rollouts.jsonl.meta.json"), NULL);
        cJSON *j = s ? cJSON_Parse(s) : NULL;
        free(s);
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(j, "model"), *sa = cJSON_GetObjectItemCaseSensitive(j, "sampling");
        const cJSON *fi = cJSON_GetObjectItemCaseSensitive(mo, "file"), *fp = cJSON_GetObjectItemCaseSensitive(mo, "fingerprint");
        const cJSON *te = cJSON_GetObjectItemCaseSensitive(sa, "temperature"), *mt = cJSON_GetObjectItemCaseSensitive(sa, "max_tokens");
        const cJSON *kk = cJSON_GetObjectItemCaseSensitive(j, "k");
        char *pr = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "prompt"));
        pika_probe *p = pika_probe_load(pth(o->pipeline_dir, m, "probe.json"));
        fprintf(md, "- member `%s`: model file `%s`, fingerprint `%s`; k = %d rollouts, temperature %g, max_tokens %d; "
                    "activation fingerprint `%s`; prompt recipe `%s`\n",
                m, cJSON_IsString(fi) ? fi->valuestring : "?", cJSON_IsString(fp) ? fp->valuestring : "?",
                o->k ? o->k : cJSON_IsNumber(kk) ? kk->valueint : 0, cJSON_IsNumber(te) ? te->valuedouble : NAN,
                cJSON_IsNumber(mt) ? mt->valueint : 0, p ? pika_probe_fingerprint(p) : "?", pr ? pr : "?");
        free(pr);
        pika_probe_free(p);
        cJSON_Delete(j);
    }
    fprintf(md, "\n");
}

static double base_cv(const char *path) {
    pika_probe *p = exists(path) ? pika_probe_load(path) : NULL;
    double v = p ? pika_probe_cv_score(p, NULL) : NAN;
    pika_probe_free(p);
    return v;
}

static void figure(FILE *md, int rc, const char *alt, const char *file, int *missing) {
    if (rc == 0) fprintf(md, "\n![%s](%s)\n\n", alt, file);
    else { fprintf(md, "\n_(figure %s not drawn: gnuplot failed or is missing)_\n\n", file); (*missing)++; }
}

int pika_study_run(const pika_study_opts *o) {
    if (!o->pipeline_dir || !o->out_dir || !o->target || o->n_models < 1) return pika_set_error("study: pipeline dir, out dir, target and models are required");
    if (pika_mkdir_p(o->out_dir)) return -1;
    const char *P = o->pipeline_dir, *out = o->out_dir, *R = o->reader ? o->reader : o->models[0];
    const char *human = o->human ? o->human : "level";
    int nb = o->n_boot > 0 ? o->n_boot : 1000, missing = 0;
    uint64_t seed = o->seed ? o->seed : 42;
    char *probs = pika_read_file(pth(P, "problems.jsonl", NULL), NULL);
    if (!probs) return -1;
    int64_t n_problems = 0;
    for (char *c = probs; *c; c++) n_problems += *c == '\n';
    free(probs);
    FILE *md = pika_fopen_in(out, "study.md");
    if (!md) return -1;
    fprintf(md, "# %s\n\n", o->title ? o->title : "pika study");
    fprintf(md, "One page for the pool (%d members) on one dataset: per-member probes against the length, TF-IDF and prompting baselines, "
                "human vs model difficulty, reader probes (one model's activations predicting every member), transfer across the "
                "task's word framing, and routing with own vs reader probes. Held-out numbers are on the `split=test` rows; 95%% CIs "
                "from %d bootstrap resamples (seed %llu).\n\n", o->n_models, nb, (unsigned long long)seed);
    provenance(md, o, n_problems);

    /* ---- per member */
    fprintf(md, "## Members\n\n| member | questions | accuracy (%s) |\n|---|---:|---:|\n", o->target);
    for (int i = 0; i < o->n_models; i++) {
        double *v;
        int64_t n;
        if (read_field(pth(P, o->models[i], "labels.jsonl"), o->target, &v, &n)) { fclose(md); return -1; }
        double s = 0;
        for (int64_t r = 0; r < n; r++) s += v[r];
        fprintf(md, "| %s | %lld | %.4f |\n", o->models[i], (long long)n, n ? s / n : NAN);
        free(v);
    }
    fprintf(md, "\n");
    for (int i = 0; i < o->n_models; i++) {
        const char *m = o->models[i], *L = pth(P, m, "labels.jsonl");
        fprintf(md, "### Member %s\n\n", m);
        pika_probe *p = pika_probe_load(pth(P, m, "probe.json"));
        if (!p) { fclose(md); return -1; }
        const char *metric = p->task == PIKA_TARGET_BINARY ? "AUROC" : "Spearman";
        int rc = fig_cv(out, m, p, base_cv(pth(P, m, "length.json")), base_cv(pth(P, m, "tfidf.json")),
                    base_cv(pth(P, m, "prompting.json")), metric);
        fprintf(md, "Probe selected on CV: layer %d, EOI position %d, alpha %g, CV %s %.4f ± %.4f.\n", p->layer, p->position, p->alpha,
                metric, p->cv_score, p->cv_score_std);
        pika_probe_free(p);
        char f0[256];
        snprintf(f0, sizeof f0, "%s-cv.png", m);
        figure(md, rc, "CV by layer", f0, &missing);
        char rname[128];
        snprintf(rname, sizeof rname, "reader %s probe", R);
        series S[5];
        series_load(&S[0], "own probe", pth(P, m, "probe.pred.jsonl"), L, o->target);
        char rp[4096];
        snprintf(rp, sizeof rp, "%s/reader/%s/%s.pred.jsonl", P, R, m);
        series_load(&S[1], rname, rp, L, o->target);
        if (!strcmp(R, m)) { series_free(&S[1]); S[1].ok = 0; } /* the reader's own member: same as the own probe */
        series_load(&S[2], "length", pth(P, m, "length.pred.jsonl"), L, o->target);
        series_load(&S[3], "TF-IDF", pth(P, m, "tfidf.pred.jsonl"), L, o->target);
        series_load(&S[4], "prompting", pth(P, m, "prompting.pred.jsonl"), L, o->target);
        char f1[256], f2[256];
        snprintf(f1, sizeof f1, "%s-roc.png", m);
        snprintf(f2, sizeof f2, "%s-rel.png", m);
        figure(md, fig_roc(out, m, S, 5), "ROC curves", f1, &missing);
        figure(md, fig_rel(out, m, S, 2), "reliability diagram", f2, &missing);
        for (int q = 0; q < 5; q++) series_free(&S[q]);
        fprintf(md, "Held-out metrics and paired tests against the baselines (from `pika report`):\n\n");
        include_md(md, pth(P, m, "report/report.md"), pth(P, m, "report"), out, m, 0);
        fprintf(md, "\n");
    }

    /* ---- difficulty */
    fprintf(md, "## Human vs model difficulty\n\n");
    {
        FILE *f = pika_fopen_in(out, "level.dat");
        if (!f) { fclose(md); return -1; }
        fprintf(f, "# per member block: level success_rate binomial_se n\n");
        for (int i = 0; i < o->n_models; i++) {
            const char *L = pth(P, o->models[i], "labels.jsonl");
            pika_labels lb;
            const char *fl[2] = {human, o->target};
            if (pika_labels_read(&lb, L, "id", 2, fl, NULL)) { fclose(f); fclose(md); return -1; }
            double s[16] = {0};
            int c[16] = {0};
            for (int64_t r = 0; r < lb.n; r++) {
                int lv = (int)lround(lb.vals[r * 2]);
                if (lv >= 0 && lv < 16) { s[lv] += lb.vals[r * 2 + 1]; c[lv]++; }
            }
            for (int lv = 0; lv < 16; lv++)
                if (c[lv]) { double q = s[lv] / c[lv]; fprintf(f, "%d %.6f %.6f %d\n", lv, q, sqrt(q * (1 - q) / c[lv]), c[lv]); }
            fprintf(f, "\n\n");
            pika_labels_free(&lb);
        }
        fclose(f);
        FILE *g = pika_fopen_in(out, "level.gp");
        if (!g) { fclose(md); return -1; }
        fprintf(g, "%sset output 'level.png'\nset title 'success rate by human difficulty level (error bars: binomial s.e.)'\n", GP_HEAD);
        fprintf(g, "set xlabel 'human level (%s)'\nset ylabel 'fraction %s'\nset xtics 1 format '%%.0f'\nset yrange [0:1]\nset key top right\nplot", human, o->target);
        for (int i = 0; i < o->n_models; i++)
            fprintf(g, "%s 'level.dat' index %d using 1:2:3 with yerrorlines lw 2 title 'member %s'", i ? "," : "", i, o->models[i]);
        fprintf(g, "\n");
        fclose(g);
        figure(md, pika_gnuplot_run(out, "level.gp"), "success rate by human level", "level.png", &missing);
    }
    /* the two probes' cross-prediction on held-out rows: AUROC (success) and Spearman (level) in two panels */
    {
        FILE *f = pika_fopen_in(out, "cross.dat");
        if (!f) { fclose(md); return -1; }
        fprintf(f, "# member_index then 4 x (value lo hi): AUROC(success|success probe), AUROC(success|-human probe), "
                   "Spearman(level|human probe), Spearman(level|-success probe)\n");
        pika_buf tb = {0};
        int have = 0;
        for (int i = 0; i < o->n_models; i++) {
            double v[4], lo[4], hi[4];
            int64_t n = 0;
            if (cross_pred(P, o->models[i], o->target, human, nb, seed, v, lo, hi, &n)) continue;
            have++;
            fprintf(f, "%d", i);
            for (int q = 0; q < 4; q++) fprintf(f, " %.6f %.6f %.6f", v[q], lo[q], hi[q]);
            fprintf(f, "\n");
            char row[1024];
            snprintf(row, sizeof row, "| %s | %lld | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] |\n",
                     o->models[i], (long long)n, v[0], lo[0], hi[0], v[1], lo[1], hi[1], v[2], lo[2], hi[2], v[3], lo[3], hi[3]);
            pika_buf_puts(&tb, row);
        }
        fclose(f);
        if (have) {
            FILE *g = pika_fopen_in(out, "cross.gp");
            if (!g) { free(tb.s); fclose(md); return -1; }
            fprintf(g, "set terminal pngcairo noenhanced size 1000,480 font ',11'\nset output 'cross.png'\nset grid\n"
                       "set multiplot layout 1,2 title 'held-out cross-prediction of the two difficulty probes (95%% bootstrap CI)'\n"
                       "set xrange [-0.5:%g]\nset xlabel 'member'\nset xtics (", o->n_models - 0.5);
            for (int i = 0; i < o->n_models; i++) fprintf(g, "%s'%s' %d", i ? ", " : "", o->models[i], i);
            fprintf(g, ")\nset key bottom left\nset ylabel 'AUROC for the member''s success'\nset yrange [0.4:1]\n"
                       "plot 'cross.dat' using ($1-0.1):2:3:4 with yerrorbars pt 7 ps 1.3 lw 2 lc 1 title 'success probe', "
                       "'' using ($1+0.1):5:6:7 with yerrorbars pt 5 ps 1.3 lw 2 lc 2 title 'human-level probe (negated)'\n"
                       "set ylabel 'Spearman with the human level (%s)'\nset yrange [-0.2:1]\n"
                       "plot 'cross.dat' using ($1-0.1):8:9:10 with yerrorbars pt 5 ps 1.3 lw 2 lc 2 title 'human-level probe', "
                       "'' using ($1+0.1):11:12:13 with yerrorbars pt 7 ps 1.3 lw 2 lc 1 title 'success probe (negated)'\nunset multiplot\n", human);
            fclose(g);
            fprintf(md, "Cross-prediction on the held-out rows (`split=test`) of each member's two difficulty probes from `pika difficulty` "
                        "(trained on the training rows): the success probe and the human-level probe, each scored against the member's "
                        "success (AUROC) and against the human level (Spearman), the other probe negated so that higher = agrees.\n\n");
            figure(md, pika_gnuplot_run(out, "cross.gp"), "cross-prediction", "cross.png", &missing);
            fprintf(md, "| member | n | success probe → success (AUROC) | −human probe → success (AUROC) | human probe → level (Spearman) | "
                        "−success probe → level (Spearman) |\n|---|---:|---|---|---|---|\n%s\n", tb.s ? tb.s : "");
        }
        free(tb.s);
    }
    for (int i = 0; i < o->n_models; i++) {
        const char *m = o->models[i];
        fprintf(md, "### Difficulty, member %s\n\n", m);
        const char *dd = pth(P, m, "difficulty/difficulty_by_layer.dat");
        if (exists(dd)) {
            char dat[256], gp[256], png[256];
            snprintf(dat, sizeof dat, "%s-difficulty.dat", m);
            snprintf(gp, sizeof gp, "%s-difficulty.gp", m);
            snprintf(png, sizeof png, "%s-difficulty.png", m);
            copy_file(dd, pth(out, dat, NULL));
            FILE *g = pika_fopen_in(out, gp);
            if (!g) { fclose(md); return -1; }
            fprintf(g, "%sset output '%s'\nset title 'member %s: CV of the human-level probe (Spearman, left) and success probe (AUROC, right)'\n", GP_HEAD, png, m);
            fprintf(g, "set xlabel 'layer'\nset xtics 1 format '%%.0f'\nset ylabel 'CV Spearman with %s'\nset y2label 'CV AUROC of %s'\nset ytics nomirror\nset y2tics\n"
                       "set key bottom right\nplot '%s' using 1:2 with linespoints lw 2 axes x1y1 title 'human-level probe (Spearman)', '' using 1:3 with linespoints lw 2 axes x1y2 title 'success probe (AUROC)'\n",
                    human, o->target, dat);
            fclose(g);
            figure(md, pika_gnuplot_run(out, gp), "difficulty by layer", png, &missing);
        }
        include_md(md, pth(P, m, "difficulty/difficulty.md"), pth(P, m, "difficulty"), out, m, 0);
        fprintf(md, "\n");
    }

    /* ---- reader probes */
    fprintf(md, "## Reader probes: one model's activations predict every member\n\n");
    if (exists(pth(P, "reader/summary.md", NULL))) {
        fprintf(md, "Each reader's EOI activations (one prefill) with each member's labels: `pika probe train-pool`, one shared fold "
                    "assignment; rows are (reader, member) pairs, AUROC on the held-out rows, paired bootstrap against the member's own "
                    "probe (own = reader on the diagonal) and of joint (layer, position) selection against independent selection.\n\n");
        include_md(md, pth(P, "reader/summary.md", NULL), P, out, "reader", 0);
        FILE *f = pika_fopen_in(out, "reader.dat");
        if (!f) { fclose(md); return -1; }
        fprintf(f, "# per reader block: member_index auroc lo hi\n");
        for (int r = 0; r < o->n_models; r++) {
            for (int i = 0; i < o->n_models; i++) {
                char rp[4096];
                snprintf(rp, sizeof rp, "%s/reader/%s/%s.pred.jsonl", P, o->models[r], o->models[i]);
                series S;
                series_load(&S, "", rp, pth(P, o->models[i], "labels.jsonl"), o->target);
                if (!S.ok) continue;
                pika_eval e;
                if (pika_eval_compute(S.y, S.s, S.p, S.n, PIKA_TARGET_AUTO, nb, seed, &e) == 0)
                    fprintf(f, "%.2f %.6f %.6f %.6f\n", i + (r - (o->n_models - 1) / 2.0) * 0.12, e.m[PIKA_M_AUROC], e.lo[PIKA_M_AUROC], e.hi[PIKA_M_AUROC]);
                series_free(&S);
            }
            fprintf(f, "\n\n");
        }
        fclose(f);
        FILE *g = pika_fopen_in(out, "reader.gp");
        if (!g) { fclose(md); return -1; }
        fprintf(g, "%sset output 'reader.png'\nset title 'held-out AUROC of the probe for each member, by reader (95%% bootstrap CI)'\n", GP_HEAD);
        fprintf(g, "set xlabel 'member (whose success is predicted)'\nset ylabel 'held-out AUROC'\nset xrange [-0.5:%g]\nset xtics (", o->n_models - 0.5);
        for (int i = 0; i < o->n_models; i++) fprintf(g, "%s'%s' %d", i ? ", " : "", o->models[i], i);
        fprintf(g, ")\nset key bottom right\nplot");
        for (int r = 0; r < o->n_models; r++)
            fprintf(g, "%s 'reader.dat' index %d using 1:2:3:4 with yerrorbars pt 7 ps 1.5 lw 2 title 'reader %s'", r ? "," : "", r, o->models[r]);
        fprintf(g, "\n");
        fclose(g);
        figure(md, pika_gnuplot_run(out, "reader.gp"), "reader probes AUROC", "reader.png", &missing);
        /* difficulty from the reader: the reader's probe for X vs X's success and vs the human level */
        fprintf(md, "Difficulty from reader %s: its probe for member X scored against X's success (AUROC) and against the human level "
                    "(Spearman of the score with −level), next to the human level itself as a predictor of X's success. A reader probe "
                    "that beats −level on X's success has learnt X-specific difficulty, not only the human one.\n\n", R);
        fprintf(md, "| member X | reader-probe AUROC (X success) | −level AUROC (X success) | probe − level (paired) | Spearman(probe, −level) |\n|---|---|---|---|---|\n");
        for (int i = 0; i < o->n_models; i++) {
            char rp[4096];
            snprintf(rp, sizeof rp, "%s/reader/%s/%s.pred.jsonl", P, R, o->models[i]);
            const char *L = pth(P, o->models[i], "labels.jsonl");
            series S, H;
            series_load(&S, "", rp, L, o->target);
            series_load(&H, "", rp, L, human);
            if (S.ok && H.ok && S.n == H.n) {
                double *neg = pika_malloc(sizeof(double) * (size_t)S.n);
                for (int64_t r = 0; r < S.n; r++) neg[r] = -H.y[r];
                double alo, ahi, llo, lhi, dlo, dhi, pp, slo, shi;
                double a = pika_bootstrap_ci(PIKA_M_AUROC, S.y, S.s, S.n, nb, seed, &alo, &ahi);
                double lv = pika_bootstrap_ci(PIKA_M_AUROC, S.y, neg, S.n, nb, seed, &llo, &lhi);
                double d = pika_paired_bootstrap(PIKA_M_AUROC, S.y, S.s, neg, S.n, nb, seed, &dlo, &dhi, &pp);
                double sp = pika_bootstrap_ci(PIKA_M_SPEARMAN, neg, S.s, S.n, nb, seed, &slo, &shi);
                char pb[64];
                fprintf(md, "| %s | %.4f [%.4f, %.4f] | %.4f [%.4f, %.4f] | %+.4f [%+.4f, %+.4f] %s | %.4f [%.4f, %.4f] |\n", o->models[i], a, alo,
                        ahi, lv, llo, lhi, d, dlo, dhi, pika_format_p(pp, nb, pb, sizeof pb), sp, slo, shi);
                free(neg);
            } else {
                fprintf(md, "| %s | n/a | n/a | n/a | n/a |\n", o->models[i]);
            }
            series_free(&S);
            series_free(&H);
        }
        fprintf(md, "\n");
    } else {
        fprintf(md, "_(no reader probes under `%s/reader`)_\n\n", P);
    }

    /* ---- transfer */
    fprintf(md, "## Transfer across the word framing\n\n");
    if (exists(pth(P, "transfer/summary.md", NULL))) {
        fprintf(md, "A probe trained on the bare-expression problems (`word` = 0, train split) scored on the word problems' held-out rows, "
                    "and back, against the probe trained in-domain on the same member's activations; paired bootstrap on the same rows.\n\n");
        include_md(md, pth(P, "transfer/summary.md", NULL), P, out, "transfer", 0);
        fprintf(md, "\n");
    } else {
        fprintf(md, "_(no transfer results under `%s/transfer`)_\n\n", P);
    }

    /* ---- routing */
    fprintf(md, "## Routing: own probes vs reader %s's probes\n\n", R);
    if (exists(pth(P, "route-reader/summary.md", NULL))) {
        fprintf(md, "Savings on the test split with every arm's probe from its own model and with every arm's probe read from one "
                    "reader (from `pika route eval`; the prefill column charges the probes' prefills, which the paper does not count):\n\n");
        include_md(md, pth(P, "route-reader/summary.md", NULL), P, out, "route-summary", 0);
        fprintf(md, "\n");
    }
    char rrd[256];
    snprintf(rrd, sizeof rrd, "route-reader/%s", R);
    const char *rd[2] = {"route", rrd}, *rt[2] = {"every arm's probe on its own model's activations (one prefill per member)", NULL};
    char rt1[256];
    snprintf(rt1, sizeof rt1, "every arm's probe read from member %s's activations (one prefill, %s's)", R, R);
    rt[1] = rt1;
    for (int w = 0; w < 2; w++) {
        fprintf(md, "### Routing with %s\n\n", rt[w]);
        const char *rm = pth(P, rd[w], "report/report.md");
        if (exists(rm)) include_md(md, rm, pth(P, rd[w], "report"), out, rd[w], 1);
        else fprintf(md, "_(missing: `%s`)_\n", rm);
        fprintf(md, "\n");
    }
    if (missing) fprintf(md, "\n_%d figure(s) could not be drawn (gnuplot)._\n", missing);
    fclose(md);
    return pika_md_to_html(pth(out, "study.md", NULL), pth(out, "study.html", NULL), out, o->title ? o->title : "pika study");
}

/* ---------------------------------------------------------------- Markdown -> HTML */

static void esc(pika_buf *b, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '<') pika_buf_puts(b, "&lt;");
        else if (c == '>') pika_buf_puts(b, "&gt;");
        else if (c == '&') pika_buf_puts(b, "&amp;");
        else if (c == '"') pika_buf_puts(b, "&quot;");
        else pika_buf_addc(b, c);
    }
}

/* inline: `code`, **bold**, _italic_ (whole-span underscores only at word edges) */
static void inl(pika_buf *b, const char *s) {
    int bold = 0;
    while (*s) {
        if (*s == '`') {
            const char *e = strchr(s + 1, '`');
            if (e) {
                pika_buf_puts(b, "<code>");
                esc(b, s + 1, (size_t)(e - s - 1));
                pika_buf_puts(b, "</code>");
                s = e + 1;
                continue;
            }
        }
        if (s[0] == '*' && s[1] == '*') {
            pika_buf_puts(b, bold ? "</b>" : "<b>");
            bold = !bold;
            s += 2;
            continue;
        }
        esc(b, s, 1);
        s++;
    }
    if (bold) pika_buf_puts(b, "</b>");
}

static void cells(pika_buf *b, char *line, const char *tag) {
    pika_buf_puts(b, "<tr>");
    char *p = line;
    if (*p == '|') p++;
    size_t L = strlen(p);
    if (L && p[L - 1] == '|') p[--L] = 0;
    char *save;
    for (char *c = strtok_r(p, "|", &save); c; c = strtok_r(NULL, "|", &save)) {
        while (*c == ' ') c++;
        size_t n = strlen(c);
        while (n && c[n - 1] == ' ') c[--n] = 0;
        pika_buf_puts(b, "<");
        pika_buf_puts(b, tag);
        pika_buf_puts(b, ">");
        inl(b, c);
        pika_buf_puts(b, "</");
        pika_buf_puts(b, tag);
        pika_buf_puts(b, ">");
    }
    pika_buf_puts(b, "</tr>\n");
}

int pika_md_to_html(const char *md_path, const char *html_path, const char *img_dir, const char *title) {
    char *s = pika_read_file(md_path, NULL);
    if (!s) return -1;
    pika_buf b = {0};
    pika_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    esc(&b, title, strlen(title));
    pika_buf_puts(&b, "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111;background:#fff}"
                      "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;padding:3px 7px}"
                      "th{background:#eee}img{max-width:100%;display:block;margin:1em 0}code{background:#f3f3f3;word-break:break-all}"
                      "h1,h2{border-bottom:1px solid #ccc}</style>\n"
                      "<script>window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++)"
                      "if(im[i].complete&&im[i].naturalWidth>0)ok++;document.title='images '+ok+'/'+im.length;});</script>\n"
                      "</head><body>\n");
    int in_list = 0, in_table = 0, in_p = 0;
    char *line = s, *next;
    for (; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        int is_list = !strncmp(line, "- ", 2), is_table = line[0] == '|';
        if (in_list && !is_list) { pika_buf_puts(&b, "</ul>\n"); in_list = 0; }
        if (in_table && !is_table) { pika_buf_puts(&b, "</table>\n"); in_table = 0; }
        if (in_p && (!*line || is_list || is_table || line[0] == '#' || !strncmp(line, "![", 2))) { pika_buf_puts(&b, "</p>\n"); in_p = 0; }
        if (!*line) continue;
        if (line[0] == '#') {
            int h = 0;
            while (line[h] == '#') h++;
            char tag[3] = {'h', (char)('0' + (h > 6 ? 6 : h)), 0};
            pika_buf_puts(&b, "<"); pika_buf_puts(&b, tag); pika_buf_puts(&b, ">");
            inl(&b, line + h + (line[h] == ' '));
            pika_buf_puts(&b, "</"); pika_buf_puts(&b, tag); pika_buf_puts(&b, ">\n");
        } else if (is_list) {
            if (!in_list) { pika_buf_puts(&b, "<ul>\n"); in_list = 1; }
            pika_buf_puts(&b, "<li>");
            inl(&b, line + 2);
            pika_buf_puts(&b, "</li>\n");
        } else if (is_table) {
            int sep = 1;
            for (const char *c = line; *c; c++)
                if (!strchr("|-: ", *c)) sep = 0;
            if (sep) continue;
            if (!in_table) { pika_buf_puts(&b, "<table>\n"); cells(&b, line, "th"); in_table = 1; }
            else cells(&b, line, "td");
        } else if (!strncmp(line, "![", 2) && strstr(line, "](")) {
            char *o = strstr(line, "]("), *c = strrchr(o, ')');
            if (!c) continue;
            *c = 0;
            *o = 0;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", img_dir, o + 2);
            size_t n;
            char *img = pika_read_file(p, &n);
            pika_buf_puts(&b, "<img alt=\"");
            esc(&b, line + 2, strlen(line + 2));
            pika_buf_puts(&b, "\" src=\"data:image/png;base64,");
            if (img) {
                char *enc = pika_base64_encode(img, n);
                pika_buf_puts(&b, enc);
                free(enc);
            }
            pika_buf_puts(&b, "\">\n");
            free(img);
        } else {
            if (!in_p) { pika_buf_puts(&b, "<p>"); in_p = 1; } else pika_buf_addc(&b, ' ');
            if (line[0] == '_' && line[strlen(line) - 1] == '_' && strlen(line) > 2) {
                line[strlen(line) - 1] = 0;
                pika_buf_puts(&b, "<i>");
                inl(&b, line + 1);
                pika_buf_puts(&b, "</i>");
            } else {
                inl(&b, line);
            }
        }
    }
    if (in_list) pika_buf_puts(&b, "</ul>\n");
    if (in_table) pika_buf_puts(&b, "</table>\n");
    if (in_p) pika_buf_puts(&b, "</p>\n");
    pika_buf_puts(&b, "</body></html>\n");
    free(s);
    int rc = pika_write_file_atomic(html_path, b.s, b.n);
    free(b.s);
    return rc;
}
