/* report.c — prediction-file evaluation, `pika report` (Markdown + gnuplot plots: CV score by
 * layer with baselines as horizontal lines, reliability diagram) and the `pika difficulty`
 * human-vs-model analysis. API in include/pika/report.h. */
#include "pika/report.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "pika/labels.h"
#include "pika/util.h"
#include "probe/probe_internal.h"

/* ---------------------------------------------------------------- gnuplot */

static const char *term_of(const char *fmt) {
    return fmt && !strcmp(fmt, "svg") ? "svg size 800,500 dynamic noenhanced background rgb 'white'" : "pngcairo noenhanced size 900,560";
}

static const char *mname(int w) {
    static const char *nm[PIKA_M_COUNT] = {"AUROC", "Spearman", "Pearson", "Brier", "Log loss", "ECE"};
    return nm[w];
}

/* Best CV score per layer (over positions and alphas) of a probe's curve. */
static void best_by_layer(const pika_probe *p, double *best, int *bpos, double *balpha) {
    for (int l = 0; l < p->n_layers; l++) {
        best[l] = NAN;
        for (int q = 0; q < p->n_pos; q++)
            for (int a = 0; a < p->n_alpha; a++) {
                double v = p->cv_mean[((size_t)l * p->n_pos + q) * p->n_alpha + a];
                if (!isnan(v) && (isnan(best[l]) || v > best[l])) {
                    best[l] = v;
                    if (bpos) bpos[l] = p->positions[q];
                    if (balpha) balpha[l] = p->alphas[a];
                }
            }
    }
}

/* "file" and "fingerprint" of a model provenance object (the store's meta.json "model"). */
static void model_fields(const char *model_json, char *file, size_t fcap, char *fp, size_t pcap) {
    snprintf(file, fcap, "(not recorded)");
    snprintf(fp, pcap, "(not recorded)");
    cJSON *m = model_json ? cJSON_Parse(model_json) : NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "file"), *g = cJSON_GetObjectItemCaseSensitive(m, "fingerprint");
    if (cJSON_IsString(f)) snprintf(file, fcap, "%s", f->valuestring);
    if (cJSON_IsString(g)) snprintf(fp, pcap, "%s", g->valuestring);
    cJSON_Delete(m);
}

/* The provenance section: what the probe, the activation store and the labels file record. */
static void write_provenance(FILE *md, const pika_report_opts *o, const pika_probe *probe) {
    fprintf(md, "## Provenance\n\n");
    if (probe) {
        char file[512], fp[128];
        model_fields(probe->model_json, file, sizeof file, fp, sizeof fp);
        fprintf(md, "- model file `%s`, model fingerprint `%s`\n", file, fp);
        fprintf(md, "- prompt recipe `%s`\n", probe->prompt_json ? probe->prompt_json : "null");
        fprintf(md, "- activation fingerprint `%s` (model + prompt recipe), d_model %d\n", probe->fingerprint[0] ? probe->fingerprint : "(none)",
                probe->d_model);
        fprintf(md, "- probe training: N = %lld rows, %d-fold CV", (long long)probe->n_train, probe->k_folds);
        if (probe->task == PIKA_TARGET_BINARY) fprintf(md, ", base rate %.4f", probe->pos_rate);
        if (probe->labels_path) fprintf(md, ", labels `%s`", probe->labels_path);
        if (probe->split) fprintf(md, ", split `%s`", probe->split);
        fprintf(md, "\n");
    }
    if (o->dataset) fprintf(md, "- dataset `%s`\n", o->dataset);
    if (o->labels_path) {
        pika_labels_info li;
        if (pika_labels_describe(o->labels_path, &li) == 0) {
            fprintf(md, "- labels `%s`: %lld questions", o->labels_path, (long long)li.n_rows);
            if (li.models[0]) fprintf(md, ", rollout model %s", li.models);
            if (li.k_max > 0) {
                if (li.k_min == li.k_max) fprintf(md, ", k = %d rollouts per question", li.k_max);
                else fprintf(md, ", k = %d..%d rollouts per question", li.k_min, li.k_max);
            }
            if (o->target) fprintf(md, ", target `%s`", o->target);
            fprintf(md, "\n");
        }
    }
    fprintf(md, "\n");
}

int pika_report_run(const pika_report_opts *o) {
    if (pika_mkdir_p(o->out_dir)) return -1;
    const char *ext = o->plot_format && !strcmp(o->plot_format, "svg") ? "svg" : "png";
    FILE *md = pika_fopen_in(o->out_dir, "report.md");
    if (!md) return -1;
    int rc = 0, gp_ok = 1;
    fprintf(md, "# pika report\n\n");
    pika_probe probe = {0};
    int have_probe = 0;
    pika_probe *bl = pika_calloc((size_t)(o->n_baselines ? o->n_baselines : 1), sizeof(pika_probe));
    int nb = 0;
    if (o->probe_path) {
        if (probe_load_into(&probe, o->probe_path)) { fclose(md); free(bl); return -1; }
        have_probe = 1;
    }
    for (int i = 0; i < o->n_baselines; i++, nb++)
        if (probe_load_into(&bl[i], o->baseline_paths[i])) { rc = -1; break; }
    const char *metric = have_probe && probe.task == PIKA_TARGET_CONTINUOUS ? "Spearman" : "AUROC";
    if (!rc) write_provenance(md, o, have_probe ? &probe : NULL);
    if (!rc && have_probe) {
        fprintf(md, "## Probe selection (cross-validation on the training split only)\n\n");
        fprintf(md, "- target `%s` (%s), %lld training rows, %d-fold stratified CV, seed %llu, standardize %s, intercept %s\n",
                probe.target, probe.task == PIKA_TARGET_BINARY ? "binary → L2 logistic regression" : "continuous → ridge",
                (long long)probe.n_train, probe.k_folds, (unsigned long long)probe.seed, probe.standardize ? "on" : "off",
                probe.intercept ? "on" : "off");
        fprintf(md, "- selected: **layer %d, position %d, α = %g**, CV %s %.4f ± %.4f\n", probe.layer, probe.position,
                probe.alpha, metric, probe.cv_score, probe.cv_score_std);
        if (probe.has_platt) fprintf(md, "- Platt calibration on out-of-fold scores: A = %.4f, B = %.4f\n", probe.platt_a, probe.platt_b);
        for (int i = 0; i < nb; i++)
            fprintf(md, "- baseline `%s`: α = %g, CV %s %.4f ± %.4f\n", bl[i].kind, bl[i].alpha, metric, bl[i].cv_score, bl[i].cv_score_std);
        double *best = pika_malloc(sizeof(double) * probe.n_layers), *ba = pika_malloc(sizeof(double) * probe.n_layers);
        int *bp = pika_malloc(sizeof(int) * probe.n_layers);
        best_by_layer(&probe, best, bp, ba);
        fprintf(md, "\n| layer | best position | best α | CV %s |\n|---:|---:|---:|---:|\n", metric);
        for (int l = 0; l < probe.n_layers; l++) fprintf(md, "| %d | %d | %g | %.4f |\n", probe.layers[l], bp[l], ba[l], best[l]);
        /* data: layer, then one column per position (best over alpha) */
        FILE *f = pika_fopen_in(o->out_dir, "cv_by_layer.dat");
        if (!f) rc = -1;
        else {
            fprintf(f, "# layer best");
            for (int q = 0; q < probe.n_pos; q++) fprintf(f, " pos%d", probe.positions[q]);
            fprintf(f, "\n");
            for (int l = 0; l < probe.n_layers; l++) {
                fprintf(f, "%d %.6f", probe.layers[l], best[l]);
                for (int q = 0; q < probe.n_pos; q++) {
                    double v = NAN;
                    for (int a = 0; a < probe.n_alpha; a++) {
                        double x = probe.cv_mean[((size_t)l * probe.n_pos + q) * probe.n_alpha + a];
                        if (!isnan(x) && (isnan(v) || x > v)) v = x;
                    }
                    fprintf(f, " %.6f", v);
                }
                fprintf(f, "\n");
            }
            fclose(f);
            FILE *g = pika_fopen_in(o->out_dir, "cv_by_layer.gp");
            if (!g) rc = -1;
            else {
                fprintf(g, "set terminal %s\nset output 'cv_by_layer.%s'\n", term_of(o->plot_format), ext);
                fprintf(g, "set title 'CV %s by layer (target %s)'\nset xlabel 'layer'\nset ylabel 'CV %s'\nset key outside right\nset grid\n",
                        metric, probe.target, metric);
                fprintf(g, "plot 'cv_by_layer.dat' using 1:2 with linespoints lw 2 title 'best over positions'");
                for (int q = 0; q < probe.n_pos; q++)
                    fprintf(g, ", '' using 1:%d with lines dt 2 title 'position %d'", q + 3, probe.positions[q]);
                for (int i = 0; i < nb; i++) fprintf(g, ", %.6f with lines lw 2 title '%s baseline'", bl[i].cv_score, bl[i].kind);
                fprintf(g, "\n");
                fclose(g);
                if (pika_gnuplot_run(o->out_dir, "cv_by_layer.gp")) gp_ok = 0;
                fprintf(md, "\n![CV %s by layer](cv_by_layer.%s)\n", metric, ext);
            }
        }
        free(best); free(ba); free(bp);
    }
    /* test predictions */
    if (!rc && o->n_preds > 0) {
        fprintf(md, "\n## Test-split evaluation\n\nBootstrap 95%% CIs: %d resamples, seed %llu, median-centered percentile intervals (they contain the estimate).\n\n", o->n_boot, (unsigned long long)o->seed);
        double **Y = pika_calloc((size_t)o->n_preds, sizeof(double *)), **S = pika_calloc((size_t)o->n_preds, sizeof(double *)),
               **Pp = pika_calloc((size_t)o->n_preds, sizeof(double *));
        int64_t *N = pika_calloc((size_t)o->n_preds, sizeof(int64_t));
        pika_eval *E = pika_calloc((size_t)o->n_preds, sizeof(pika_eval));
        char ***ids = pika_calloc((size_t)o->n_preds, sizeof(char **));
        for (int i = 0; i < o->n_preds && !rc; i++) {
            rc = pika_eval_load(o->pred_paths[i], o->labels_path, o->target, o->id_field, &Y[i], &S[i], &Pp[i], &ids[i], &N[i]);
            if (!rc) rc = pika_eval_compute(Y[i], S[i], Pp[i], N[i], PIKA_TARGET_AUTO, o->n_boot, o->seed, &E[i]);
        }
        if (!rc) {
            int bin = E[0].task == PIKA_TARGET_BINARY;
            fprintf(md, "| predictor | n |%s", bin ? " base rate |" : "");
            for (int w = 0; w < PIKA_M_COUNT; w++)
                if (E[0].has[w]) fprintf(md, " %s |", mname(w));
            fprintf(md, "\n|---|---:|%s", bin ? "---:|" : "");
            for (int w = 0; w < PIKA_M_COUNT; w++)
                if (E[0].has[w]) fprintf(md, "---:|");
            fprintf(md, "\n");
            for (int i = 0; i < o->n_preds; i++) {
                fprintf(md, "| %s | %lld |", o->pred_names[i], (long long)N[i]);
                if (E[0].task == PIKA_TARGET_BINARY) fprintf(md, " %.4f |", E[i].base_rate);
                for (int w = 0; w < PIKA_M_COUNT; w++)
                    if (E[0].has[w]) fprintf(md, " %.4f [%.4f, %.4f] |", E[i].m[w], E[i].lo[w], E[i].hi[w]);
                fprintf(md, "\n");
            }
            /* paired tests of the first vs the others (rows aligned by id) */
            for (int i = 1; i < o->n_preds; i++) {
                pika_paired pp;
                char pb[64];
                if (pika_eval_paired(E[0].task, Y[0], ids[0], S[0], N[0], ids[i], S[i], N[i], o->n_boot, o->seed, &pp)) {
                    fprintf(md, "\nPaired bootstrap, %s − %s: %s\n", o->pred_names[0], o->pred_names[i], pika_last_error());
                    continue;
                }
                fprintf(md, "\nPaired bootstrap, %s − %s (%s, %lld shared rows): Δ = %+.4f, 95%% CI [%+.4f, %+.4f], %s\n",
                        o->pred_names[0], o->pred_names[i], mname(pp.metric), (long long)pp.n, pp.delta, pp.lo, pp.hi,
                        pika_format_p(pp.p, pp.n_boot, pb, sizeof pb));
            }
            if (E[0].task == PIKA_TARGET_BINARY) {
                FILE *f = pika_fopen_in(o->out_dir, "reliability.dat");
                if (f) {
                    fprintf(f, "# series bin count mean_prob frac_positive\n");
                    for (int i = 0; i < o->n_preds; i++) {
                        int64_t cnt[10];
                        double mp[10], my[10];
                        pika_reliability(Y[i], Pp[i], N[i], 10, cnt, mp, my);
                        for (int b = 0; b < 10; b++)
                            if (cnt[b]) fprintf(f, "%d %d %lld %.6f %.6f\n", i, b, (long long)cnt[b], mp[b], my[b]);
                        fprintf(f, "\n\n");
                    }
                    fclose(f);
                    FILE *g = pika_fopen_in(o->out_dir, "reliability.gp");
                    if (g) {
                        fprintf(g, "set terminal %s\nset output 'reliability.%s'\n", term_of(o->plot_format), ext);
                        fprintf(g, "set title 'Reliability diagram (10 equal-width bins)'\nset xlabel 'mean predicted probability'\n"
                                   "set ylabel 'fraction correct'\nset xrange [0:1]\nset yrange [0:1]\nset key top left\nset grid\n");
                        fprintf(g, "plot x with lines dt 2 lc rgb 'gray' title 'perfect'");
                        for (int i = 0; i < o->n_preds; i++)
                            fprintf(g, ", 'reliability.dat' index %d using 4:5 with linespoints lw 2 title '%s'", i, o->pred_names[i]);
                        fprintf(g, "\n");
                        fclose(g);
                        if (pika_gnuplot_run(o->out_dir, "reliability.gp")) gp_ok = 0;
                        fprintf(md, "\n![Reliability diagram](reliability.%s)\n", ext);
                    }
                }
            }
        }
        for (int i = 0; i < o->n_preds; i++) {
            free(Y[i]); free(S[i]); free(Pp[i]);
            if (ids[i]) for (int64_t r = 0; r < N[i]; r++) free(ids[i][r]);
            free(ids[i]);
        }
        free(Y); free(S); free(Pp); free(N); free(E); free(ids);
    }
    if (!gp_ok) fprintf(md, "\n> gnuplot failed or is not installed: the plot data (*.dat) and scripts (*.gp) are in this folder.\n");
    fclose(md);
    if (have_probe) probe_clear(&probe);
    for (int i = 0; i < nb; i++) probe_clear(&bl[i]);
    free(bl);
    return rc;
}

/* ---------------------------------------------------------------- difficulty */

void pika_difficulty_opts_default(pika_difficulty_opts *o) {
    memset(o, 0, sizeof *o);
    o->human_name = "human";
    o->success_name = "success";
    pika_fit_opts_default(&o->fit);
    o->n_boot = 1000;
}

static int difficulty_md(pika_acts *a, const int64_t *rows, int64_t n, const double *human, const double *success,
                         const pika_difficulty_opts *D, FILE *out) {
    const char *human_name = D->human_name, *success_name = D->success_name, *out_dir = D->out_dir;
    const pika_fit_opts *o = &D->fit;
    int n_boot = D->n_boot;
    double lo, hi;
    double rho = pika_bootstrap_ci(PIKA_M_SPEARMAN, success, human, n, n_boot, o->seed, &lo, &hi);
    pika_probe ph, ps;
    double *oof_h = pika_malloc(sizeof(double) * n), *oof_s = pika_malloc(sizeof(double) * n);
    pika_probe_train_opts th = {.target = human_name, .layers = D->layers, .n_layers = D->n_layers, .positions = D->positions,
                                .n_pos = D->n_pos, .fit = *o, .oof_out = oof_h};
    th.fit.task = PIKA_TARGET_CONTINUOUS;
    if (probe_train_into(a, rows, n, human, &th, &ph)) {
        free(oof_h); free(oof_s);
        return -1;
    }
    pika_probe_train_opts ts = th;
    ts.target = success_name;
    ts.fit.task = PIKA_TARGET_AUTO;
    ts.oof_out = oof_s;
    if (probe_train_into(a, rows, n, success, &ts, &ps)) {
        probe_clear(&ph);
        free(oof_h); free(oof_s);
        return -1;
    }
    int sbin = ps.task == PIKA_TARGET_BINARY;
    /* cross prediction (out-of-fold scores; higher human rating = harder, so its score is negated) */
    double *neg = pika_malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; i++) neg[i] = -oof_h[i];
    double x1lo, x1hi, x2lo, x2hi;
    double x1 = pika_bootstrap_ci(sbin ? PIKA_M_AUROC : PIKA_M_SPEARMAN, success, neg, n, n_boot, o->seed, &x1lo, &x1hi);
    double x2 = pika_bootstrap_ci(PIKA_M_SPEARMAN, human, oof_s, n, n_boot, o->seed, &x2lo, &x2hi);
    const char *sm = sbin ? "AUROC" : "Spearman";
    fprintf(out, "# Human vs model difficulty\n\n");
    fprintf(out, "Training rows: %lld. Human rating `%s`, model success `%s` (%s). CV %d-fold, seed %llu; CIs from %d bootstrap resamples.\n\n",
            (long long)n, human_name, success_name, sbin ? "binary" : "continuous", o->k_folds, (unsigned long long)o->seed, n_boot);
    fprintf(out, "- Spearman(%s, %s) = %.4f [%.4f, %.4f]\n", human_name, success_name, rho, lo, hi);
    fprintf(out, "- best human-difficulty probe: layer %d, position %d, α %g, CV Spearman %.4f\n", ph.layer, ph.position, ph.alpha, ph.cv_score);
    fprintf(out, "- best model-success probe: layer %d, position %d, α %g, CV %s %.4f\n", ps.layer, ps.position, ps.alpha, sm, ps.cv_score);
    fprintf(out, "- cross: human-difficulty probe (negated, out-of-fold) → %s %s = %.4f [%.4f, %.4f] (the success probe itself: %.4f)\n",
            success_name, sm, x1, x1lo, x1hi, ps.cv_score);
    fprintf(out, "- cross: model-success probe (out-of-fold) → Spearman with %s = %.4f [%.4f, %.4f] (negative = agrees; human probe itself: %.4f)\n\n",
            human_name, x2, x2lo, x2hi, ph.cv_score);
    double *bh = pika_malloc(sizeof(double) * ph.n_layers), *bs = pika_malloc(sizeof(double) * ps.n_layers);
    best_by_layer(&ph, bh, NULL, NULL);
    best_by_layer(&ps, bs, NULL, NULL);
    fprintf(out, "| layer | CV Spearman (%s) | CV %s (%s) |\n|---:|---:|---:|\n", human_name, sm, success_name);
    for (int l = 0; l < ph.n_layers; l++) fprintf(out, "| %d | %.4f | %.4f |\n", ph.layers[l], bh[l], bs[l]);
    int rc = 0;
    if (out_dir) {
        if (pika_mkdir_p(out_dir)) rc = -1;
        FILE *f = rc ? NULL : pika_fopen_in(out_dir, "difficulty_by_layer.dat");
        if (f) {
            for (int l = 0; l < ph.n_layers; l++) fprintf(f, "%d %.6f %.6f\n", ph.layers[l], bh[l], bs[l]);
            fclose(f);
            FILE *g = pika_fopen_in(out_dir, "difficulty_by_layer.gp");
            if (g) {
                fprintf(g, "set terminal %s\nset output 'difficulty_by_layer.png'\nset xlabel 'layer'\nset ylabel 'CV score'\nset grid\nset key bottom right\n",
                        term_of("png"));
                fprintf(g, "set title 'Probe CV score by layer'\nplot 'difficulty_by_layer.dat' using 1:2 with linespoints lw 2 title '%s (Spearman)', "
                           "'' using 1:3 with linespoints lw 2 title '%s (%s)'\n", human_name, success_name, sm);
                fclose(g);
                pika_gnuplot_run(out_dir, "difficulty_by_layer.gp");
            }
            ph.extra = NULL;
            char path[4096];
            snprintf(path, sizeof path, "%s/probe_human.json", out_dir);
            if (pika_probe_save(&ph, path)) rc = -1;
            snprintf(path, sizeof path, "%s/probe_success.json", out_dir);
            if (!rc && pika_probe_save(&ps, path)) rc = -1;
        } else rc = -1;
    }
    free(bh); free(bs); free(neg); free(oof_h); free(oof_s);
    probe_clear(&ph);
    probe_clear(&ps);
    return rc;
}

int pika_difficulty_run(pika_acts *a, const int64_t *rows, int64_t n, const double *human, const double *success,
                        const pika_difficulty_opts *o) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return pika_set_error("out of memory");
    int rc = difficulty_md(a, rows, n, human, success, o, mem);
    fclose(mem);
    if (!rc && o->out_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/difficulty.md", o->out_dir);
        rc = pika_write_file_atomic(path, buf, len);
    }
    if (!rc && o->out) fwrite(buf, 1, len, o->out);
    free(buf);
    return rc;
}
