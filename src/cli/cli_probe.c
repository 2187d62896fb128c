/* cli_probe.c — `pika probe train|predict|eval`, `pika baseline train|predict`, `pika report`,
 * `pika difficulty`: argument parsing and file plumbing over probe.c, baseline.c, metrics.c and
 * report.c. Usage text of each command lists every flag. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "pika/acts.h"
#include "pika/baseline.h"
#include "pika/eval.h"
#include "pika/gguf.h"
#include "pika/labels.h"
#include "pika/tokenizer.h"
#include "pika/metrics.h"
#include "pika/pool.h"
#include "pika/probe.h"
#include "pika/prompting.h"
#include "pika/report.h"
#include "pika/study.h"
#include "pika/util.h"

static const char FIT_FLAGS[] =
    "  --task auto|binary|continuous   target type (auto: binary when all values are 0/1)\n"
    "  --alphas LIST       regularization grid (default 1,10,100,1000,10000; logistic uses C = 1/alpha)\n"
    "  --folds K           stratified CV folds on the training rows (default 5)\n"
    "  --seed S            fold / bootstrap seed (default 42)\n"
    "  --no-standardize    do not standardize features\n"
    "  --no-intercept      fit without intercept\n"
    "  --paper             the paper's raw setting (= --no-standardize --no-intercept)\n"
    "  --eps E             logistic stopping tolerance, liblinear's rule (default 1e-3)\n"
    "  --ridge-solver auto|eig|chol   one eigendecomposition per fold, or one Cholesky per alpha (auto)\n"
    "  --logistic-solver newton|liblinear   dense logistic solver: batched Newton-CG (default) or liblinear\n"
    "  --threads N         folds fitted in parallel by liblinear (default: cores)\n";

static const char PROBE_USAGE[] =
    "usage:\n"
    "  pika probe train   --acts DIR --labels FILE --target FIELD -o PROBE.json [--split FIELD=VALUE]\n"
    "                     [--id-field id] [--layers LIST] [--positions LIST] [--cv-table FILE.tsv] [fit flags]\n"
    "  pika probe train-pool --acts READER_ACTS --member NAME=LABELS [--member NAME=LABELS]... --target FIELD\n"
    "                     -o DIR [--joint] [--split FIELD=VALUE] [--id-field id] [--layers LIST] [--positions LIST] [fit flags]\n"
    "                     reader probes: one probe per member (DIR/NAME.json, DIR/NAME.cv.tsv) from one store, on the rows\n"
    "                     every member labels, one shared CV fold assignment; --joint: one (layer, position) for all\n"
    "  pika probe predict --probe PROBE.json --acts DIR -o PRED.jsonl [--labels FILE --split FIELD=VALUE]\n"
    "  pika probe eval    --pred PRED.jsonl --labels FILE --target FIELD [--id-field id] [--compare PRED2.jsonl]\n"
    "                     [--bootstrap B] [--seed S] [--json]\n"
    "fit flags:\n";

static const char BASELINE_USAGE[] =
    "usage:\n"
    "  pika baseline train   --kind length|tfidf|prompting --data DATA.jsonl|PRESET --labels FILE --target FIELD -o BASE.json\n"
    "                        [--text-field F (default problem, else text)] [--tokens-field FIELD | --tokenizer MODEL.gguf]\n"
    "                        [--id-field id] [--data-dir DIR]\n"
    "                        [--split FIELD=VALUE]\n"
    "                        [--ngram-max 2] [--min-df 2] [--sublinear] [fit flags]\n"
    "                        prompting: --model MODEL.gguf [--question TEXT]: the model asked whether it will solve the\n"
    "                        problem (the question appended to its chat prompt); feature log P(yes) - log P(no), one prefill\n"
    "  pika baseline predict --baseline BASE.json --data DATA.jsonl|PRESET -o PRED.jsonl [--text-field F]\n"
    "                        [--tokens-field FIELD | --tokenizer MODEL.gguf] [--id-field id] [--labels FILE --split FIELD=VALUE]\n"
    "                        [--model MODEL.gguf [--question TEXT]]   (a prompting baseline: the same model and question)\n"
    "fit flags:\n";

static const char REPORT_USAGE[] =
    "usage: pika report --out DIR [--probe PROBE.json] [--baseline BASE.json]... [--pred NAME=PRED.jsonl]...\n"
    "                   [--labels FILE --target FIELD] [--id-field id] [--data DATASET] [--bootstrap 1000] [--seed 42] [--svg]\n"
    "  Writes DIR/report.md plus gnuplot plots: CV score by layer (baselines as horizontal lines) and a\n"
    "  reliability diagram of the test predictions. The first --pred is compared to the others (paired bootstrap).\n";

static const char DIFF_USAGE[] =
    "usage: pika difficulty --acts DIR --labels FILE --human FIELD --success FIELD [--split FIELD=VALUE]\n"
    "                       [--id-field id] [--layers LIST] [--positions LIST] [--bootstrap 1000] [--out DIR] [fit flags]\n";

/* ---------------------------------------------------------------- shared parsing */

typedef struct {
    const char *acts, *labels, *target, *out, *probe, *pred, *compare, *id_field, *split, *cv_table;
    const char *kind, *data, *data_dir, *text_field, *tokens_field, *tokenizer, *baseline, *human, *success, *out_dir;
    int32_t *layers, *positions;
    int n_layers, n_pos;
    int json, n_boot, svg;
    pika_tfidf_opts to;
    pika_fit_opts fit;
    const char *baselines[64], *pred_names[64], *pred_paths[64];
    int n_baselines, n_preds;
    const char *model, *question;
    const char *member_names[64], *member_labels[64];
    int n_members, joint;
} args_t;

static int parse_alphas(const char *s, pika_fit_opts *o) {
    int n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        char *e;
        double v = strtod(p, &e);
        if (e == p || !(v > 0) || !isfinite(v) || n >= PIKA_MAX_ALPHA) return -1;
        o->alpha[n++] = v;
        p = e;
    }
    if (n == 0) return -1;
    o->n_alpha = n;
    return 0;
}

static void parse_args(int argc, char **argv, int first, args_t *A, const char *usage, int fit) {
    memset(A, 0, sizeof *A);
    A->id_field = "id";
    A->text_field = NULL; /* library default: "problem", else "text" */
    A->n_boot = 1000;
    pika_tfidf_opts_default(&A->to);
    pika_fit_opts_default(&A->fit);
    for (int i = first; i < argc; i++) {
        const char *k = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field) do { if (!v) pika_die("%s needs a value", k); A->field = v; i++; } while (0)
        if (!strcmp(k, "-h") || !strcmp(k, "--help")) { fputs(usage, stdout); if (fit) fputs(FIT_FLAGS, stdout); exit(0); }
        else if (!strcmp(k, "--acts")) TAKE(acts);
        else if (!strcmp(k, "--labels")) TAKE(labels);
        else if (!strcmp(k, "--target")) TAKE(target);
        else if (!strcmp(k, "-o") || !strcmp(k, "--out")) { TAKE(out); A->out_dir = A->out; }
        else if (!strcmp(k, "--probe")) TAKE(probe);
        else if (!strcmp(k, "--pred")) {
            TAKE(pred);
            if (A->n_preds < 64) {
                const char *eq = strchr(v, '=');
                A->pred_names[A->n_preds] = eq ? pika_strndup(v, (size_t)(eq - v)) : pika_strdup(A->n_preds ? "baseline" : "probe");
                A->pred_paths[A->n_preds++] = eq ? eq + 1 : v;
            }
        }
        else if (!strcmp(k, "--compare")) TAKE(compare);
        else if (!strcmp(k, "--id-field")) TAKE(id_field);
        else if (!strcmp(k, "--split")) TAKE(split);
        else if (!strcmp(k, "--cv-table")) TAKE(cv_table);
        else if (!strcmp(k, "--kind")) TAKE(kind);
        else if (!strcmp(k, "--data")) TAKE(data);
        else if (!strcmp(k, "--data-dir")) TAKE(data_dir);
        else if (!strcmp(k, "--text-field")) TAKE(text_field);
        else if (!strcmp(k, "--tokens-field")) TAKE(tokens_field);
        else if (!strcmp(k, "--tokenizer")) TAKE(tokenizer);
        else if (!strcmp(k, "--baseline")) { TAKE(baseline); if (A->n_baselines < 64) A->baselines[A->n_baselines++] = v; }
        else if (!strcmp(k, "--human")) TAKE(human);
        else if (!strcmp(k, "--success")) TAKE(success);
        else if (!strcmp(k, "--member")) {
            if (!v) pika_die("%s needs a value", k);
            i++;
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || !eq[1]) pika_die("--member wants NAME=LABELS.jsonl, not '%s'", v);
            if (A->n_members >= 64) pika_die("at most 64 --member");
            A->member_names[A->n_members] = pika_strndup(v, (size_t)(eq - v));
            A->member_labels[A->n_members++] = eq + 1;
        }
        else if (!strcmp(k, "--joint")) A->joint = 1;
        else if (!strcmp(k, "--model")) TAKE(model);
        else if (!strcmp(k, "--question")) TAKE(question);
        else if (!strcmp(k, "--json")) A->json = 1;
        else if (!strcmp(k, "--svg")) A->svg = 1;
        else if (!strcmp(k, "--sublinear")) A->to.sublinear = 1;
        else if (!strcmp(k, "--no-standardize")) A->fit.standardize = 0;
        else if (!strcmp(k, "--no-intercept")) A->fit.intercept = 0;
        else if (!strcmp(k, "--paper")) { A->fit.standardize = 0; A->fit.intercept = 0; }
        else if (v && !strcmp(k, "--layers")) { if ((A->n_layers = pika_parse_int_list(v, &A->layers)) < 1) pika_die("bad --layers '%s'", v); i++; }
        else if (v && !strcmp(k, "--positions")) { if ((A->n_pos = pika_parse_int_list(v, &A->positions)) < 1) pika_die("bad --positions '%s'", v); i++; }
        else if (v && !strcmp(k, "--alphas")) { if (parse_alphas(v, &A->fit)) pika_die("bad --alphas '%s' (positive numbers, at most %d)", v, PIKA_MAX_ALPHA); i++; }
        else if (v && !strcmp(k, "--folds")) { A->fit.k_folds = atoi(v); if (A->fit.k_folds < 2 || A->fit.k_folds > 64) pika_die("--folds must be 2..64"); i++; }
        else if (v && !strcmp(k, "--seed")) { A->fit.seed = strtoull(v, NULL, 10); i++; }
        else if (v && !strcmp(k, "--eps")) { A->fit.eps = atof(v); if (!(A->fit.eps > 0)) pika_die("--eps must be > 0"); i++; }
        else if (v && !strcmp(k, "--threads")) { A->fit.n_threads = atoi(v); if (A->fit.n_threads < 1) A->fit.n_threads = 1; i++; }
        else if (v && !strcmp(k, "--bootstrap")) { A->n_boot = atoi(v); if (A->n_boot < 0) pika_die("--bootstrap must be >= 0"); i++; }
        else if (v && !strcmp(k, "--ngram-max")) { A->to.ngram_max = atoi(v); if (A->to.ngram_max < 1 || A->to.ngram_max > 4) pika_die("--ngram-max must be 1..4"); i++; }
        else if (v && !strcmp(k, "--min-df")) { A->to.min_df = atoi(v); if (A->to.min_df < 1) pika_die("--min-df must be >= 1"); i++; }
        else if (v && !strcmp(k, "--task")) {
            if (!strcmp(v, "auto")) A->fit.task = PIKA_TARGET_AUTO;
            else if (!strcmp(v, "binary")) A->fit.task = PIKA_TARGET_BINARY;
            else if (!strcmp(v, "continuous")) A->fit.task = PIKA_TARGET_CONTINUOUS;
            else pika_die("--task must be auto, binary or continuous");
            i++;
        } else if (v && !strcmp(k, "--logistic-solver")) {
            if (!strcmp(v, "newton")) A->fit.logistic_solver = PIKA_LOGISTIC_NEWTON;
            else if (!strcmp(v, "liblinear")) A->fit.logistic_solver = PIKA_LOGISTIC_LIBLINEAR;
            else pika_die("--logistic-solver must be newton or liblinear");
            i++;
        } else if (v && !strcmp(k, "--ridge-solver")) {
            if (!strcmp(v, "auto")) A->fit.ridge_solver = PIKA_RIDGE_AUTO;
            else if (!strcmp(v, "eig")) A->fit.ridge_solver = PIKA_RIDGE_EIG;
            else if (!strcmp(v, "chol")) A->fit.ridge_solver = PIKA_RIDGE_CHOL;
            else pika_die("--ridge-solver must be auto, eig or chol");
            i++;
        } else {
            fprintf(stderr, "pika: unknown or incomplete option '%s'\n", k);
            fputs(usage, stderr);
            if (fit) fputs(FIT_FLAGS, stderr);
            exit(2);
        }
#undef TAKE
    }
}

static void free_args(args_t *A) {
    for (int i = 0; i < A->n_members; i++) free((char *)A->member_names[i]);
    A->n_members = 0;
    for (int i = 0; i < A->n_preds; i++) free((char *)A->pred_names[i]);
    free(A->layers);
    free(A->positions);
    A->n_preds = 0;
    A->layers = A->positions = NULL;
}

static void need(const char *v, const char *flag) {
    if (!v) pika_die("missing required option %s (see --help)", flag);
}

/* Rows of ids (a store or a dataset) that have labels and the --split value; y[] when a target is given. */
static int64_t select_rows(char *const *ids, int64_t n, const char *labels, const char *id_field, const char *target,
                           const char *split, int64_t **rows, double **y) {
    int64_t m = pika_labels_select(labels, id_field, target, split, ids, n, rows, y);
    if (m < 0) pika_die("%s", pika_last_error());
    return m;
}

static void write_preds(const char *path, char *const *ids, const int64_t *rows, int64_t n, const double *score, const double *prob) {
    if (pika_pred_write(path, ids, rows, n, score, prob)) pika_die("%s", pika_last_error());
}

/* ---------------------------------------------------------------- probe */

static int probe_train(args_t *A) {
    need(A->acts, "--acts"); need(A->labels, "--labels"); need(A->target, "--target"); need(A->out, "-o");
    pika_acts a;
    if (pika_acts_open(&a, A->acts)) pika_die("%s", pika_last_error());
    int64_t *rows;
    double *y;
    int64_t n = select_rows(a.ids, a.n, A->labels, A->id_field, A->target, A->split, &rows, &y);
    pika_probe *p;
    double t0 = pika_now();
    pika_probe_train_opts to = {.target = A->target, .layers = A->layers, .n_layers = A->n_layers, .positions = A->positions,
                                .n_pos = A->n_pos, .fit = A->fit, .log = stdout, .labels_path = A->labels, .split = A->split};
    if (pika_probe_train(&a, rows, n, y, &to, &p))
        pika_die("%s", pika_last_error());
    if (pika_probe_save(p, A->out)) pika_die("%s", pika_last_error());
    printf("wrote %s (%.1f s)\n", A->out, pika_now() - t0);
    if (A->cv_table && pika_probe_write_cv_table(p, A->cv_table)) pika_die("%s", pika_last_error());
    pika_probe_free(p);
    pika_acts_close(&a);
    free(rows);
    free(y);
    return 0;
}

static int probe_train_pool(args_t *A) {
    need(A->acts, "--acts"); need(A->target, "--target"); need(A->out, "-o");
    if (A->n_members < 1) pika_die("missing required option --member NAME=LABELS (see --help)");
    pika_acts a;
    if (pika_acts_open(&a, A->acts)) pika_die("%s", pika_last_error());
    int64_t *rows, n;
    double *y[64];
    if (pika_pool_select(a.ids, a.n, A->n_members, A->member_labels, A->id_field, A->target, A->split, &rows, &n, y))
        pika_die("%s", pika_last_error());
    pika_pool_opts po;
    pika_pool_opts_default(&po);
    po.joint = A->joint;
    po.train = (pika_probe_train_opts){.target = A->target, .layers = A->layers, .n_layers = A->n_layers,
                                       .positions = A->positions, .n_pos = A->n_pos, .fit = A->fit, .log = stdout, .split = A->split};
    pika_probe *p[64];
    double t0 = pika_now();
    if (pika_probe_train_pool(&a, rows, n, A->n_members, (const double *const *)y, A->member_names, A->member_labels, &po, p))
        pika_die("%s", pika_last_error());
    if (pika_mkdir_p(A->out)) pika_die("%s", pika_last_error());
    printf("reader %s (fingerprint %s), %lld rows, %d members%s\n", A->acts, a.fingerprint, (long long)n, A->n_members,
           A->joint ? ", joint layer/position" : "");
    for (int m = 0; m < A->n_members; m++) {
        char path[4096], tsv[4096];
        snprintf(path, sizeof path, "%s/%s.json", A->out, A->member_names[m]);
        snprintf(tsv, sizeof tsv, "%s/%s.cv.tsv", A->out, A->member_names[m]);
        if (pika_probe_save(p[m], path) || pika_probe_write_cv_table(p[m], tsv)) pika_die("%s", pika_last_error());
        double sd, cv = pika_probe_cv_score(p[m], &sd);
        printf("member %-12s layer %3d position %3d alpha %-8g CV %.4f +- %.4f  -> %s\n", A->member_names[m], pika_probe_layer(p[m]),
               pika_probe_position(p[m]), pika_probe_alpha(p[m]), cv, sd, path);
        pika_probe_free(p[m]);
        free(y[m]);
    }
    printf("(%.1f s)\n", pika_now() - t0);
    free(rows);
    pika_acts_close(&a);
    return 0;
}

static int probe_predict(args_t *A) {
    need(A->probe, "--probe"); need(A->acts, "--acts"); need(A->out, "-o");
    pika_probe *p = pika_probe_load(A->probe);
    if (!p) pika_die("%s", pika_last_error());
    pika_acts a;
    if (pika_acts_open(&a, A->acts)) pika_die("%s", pika_last_error());
    int64_t *rows = NULL, n = a.n;
    if (A->split) {
        need(A->labels, "--labels (with --split)");
        n = select_rows(a.ids, a.n, A->labels, A->id_field, NULL, A->split, &rows, NULL);
    }
    double *s = pika_malloc(sizeof(double) * (n ? n : 1)), *pr = pika_malloc(sizeof(double) * (n ? n : 1));
    if (pika_probe_predict(p, &a, rows, n, s, pr)) pika_die("%s", pika_last_error());
    write_preds(A->out, a.ids, rows, n, s, pr);
    fprintf(stderr, "wrote %lld predictions to %s\n", (long long)n, A->out);
    free(s); free(pr); free(rows);
    pika_acts_close(&a);
    pika_probe_free(p);
    return 0;
}

static void print_eval(const char *name, const pika_eval *e, int json, int first) {
    static const char *nm[PIKA_M_COUNT] = {"auroc", "spearman", "pearson", "brier", "logloss", "ece"};
    if (json) {
        printf("%s\"%s\":{\"n\":%lld,\"task\":\"%s\"", first ? "" : ",", name, (long long)e->n,
               e->task == PIKA_TARGET_BINARY ? "binary" : "continuous");
        for (int w = 0; w < PIKA_M_COUNT; w++) {
            if (!e->has[w]) continue;
            printf(",\"%s\":%.10g", nm[w], e->m[w]);
            if (!isnan(e->lo[w])) printf(",\"%s_ci\":[%.10g,%.10g]", nm[w], e->lo[w], e->hi[w]);
        }
        printf("}");
        return;
    }
    printf("%s (n=%lld, %s)\n", name, (long long)e->n, e->task == PIKA_TARGET_BINARY ? "binary" : "continuous");
    for (int w = 0; w < PIKA_M_COUNT; w++) {
        if (!e->has[w]) continue;
        if (isnan(e->lo[w])) printf("  %-9s %.4f\n", nm[w], e->m[w]);
        else printf("  %-9s %.4f  [%.4f, %.4f]\n", nm[w], e->m[w], e->lo[w], e->hi[w]);
    }
}

static int probe_eval(args_t *A) {
    need(A->pred, "--pred"); need(A->labels, "--labels"); need(A->target, "--target");
    double *y, *s, *p;
    char **ids;
    int64_t n;
    if (pika_eval_load(A->pred_paths[0], A->labels, A->target, A->id_field, &y, &s, &p, &ids, &n)) pika_die("%s", pika_last_error());
    pika_eval e;
    if (pika_eval_compute(y, s, p, n, A->fit.task, A->n_boot, A->fit.seed, &e)) pika_die("%s", pika_last_error());
    if (A->json) printf("{");
    print_eval("pred", &e, A->json, 1);
    if (A->compare) {
        double *y2, *s2, *p2;
        char **ids2;
        int64_t n2;
        if (pika_eval_load(A->compare, A->labels, A->target, A->id_field, &y2, &s2, &p2, &ids2, &n2)) pika_die("%s", pika_last_error());
        pika_eval e2;
        if (pika_eval_compute(y2, s2, p2, n2, e.task, A->n_boot, A->fit.seed, &e2)) pika_die("%s", pika_last_error());
        if (!A->json) printf("\n");
        print_eval("compare", &e2, A->json, 0);
        pika_paired pp;
        if (pika_eval_paired(e.task, y, ids, s, n, ids2, s2, n2, A->n_boot, A->fit.seed, &pp)) pika_die("%s", pika_last_error());
        char pb[64];
        if (A->json)
            printf(",\"paired\":{\"metric\":\"%s\",\"n\":%lld,\"delta\":%.10g,\"ci\":[%.10g,%.10g],\"p\":%.10g,\"n_boot\":%d}",
                   pika_metric_names[pp.metric], (long long)pp.n, pp.delta, pp.lo, pp.hi, pp.p, pp.n_boot);
        else
            printf("\npaired bootstrap (pred - compare, %s, %lld shared ids): delta %+.4f  [%+.4f, %+.4f]  %s\n",
                   pika_metric_names[pp.metric], (long long)pp.n, pp.delta, pp.lo, pp.hi, pika_format_p(pp.p, pp.n_boot, pb, sizeof pb));
        for (int64_t i = 0; i < n2; i++) free(ids2[i]);
        free(ids2); free(y2); free(s2); free(p2);
    }
    if (A->json) printf("}\n");
    for (int64_t i = 0; i < n; i++) free(ids[i]);
    free(ids); free(y); free(s); free(p);
    return 0;
}

int cmd_probe(int argc, char **argv) {
    args_t A;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(PROBE_USAGE, argc < 2 ? stderr : stdout);
        fputs(FIT_FLAGS, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    parse_args(argc, argv, 2, &A, PROBE_USAGE, 1);
    int rc;
    if (!strcmp(argv[1], "train")) rc = probe_train(&A);
    else if (!strcmp(argv[1], "train-pool")) rc = probe_train_pool(&A);
    else if (!strcmp(argv[1], "predict")) rc = probe_predict(&A);
    else if (!strcmp(argv[1], "eval")) rc = probe_eval(&A);
    else pika_die("unknown 'probe %s' (train, train-pool, predict or eval)", argv[1]);
    free_args(&A);
    return rc;
}

/* ---------------------------------------------------------------- baseline */

static int count_tokens(const char *text, void *ctx) {
    int32_t *ids;
    int c = pika_tokenize((const pika_tokenizer *)ctx, text, strlen(text), false, true, &ids);
    if (c >= 0) free(ids);
    return c;
}

int cmd_baseline(int argc, char **argv) {
    args_t A;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(BASELINE_USAGE, argc < 2 ? stderr : stdout);
        fputs(FIT_FLAGS, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    parse_args(argc, argv, 2, &A, BASELINE_USAGE, 1);
    int train = !strcmp(argv[1], "train");
    if (!train && strcmp(argv[1], "predict")) pika_die("unknown 'baseline %s' (train or predict)", argv[1]);
    need(A.data, "--data");
    need(A.out, "-o");
    pika_textset T;
    if (pika_dataset_is_preset(A.data) && access(A.data, F_OK) != 0) { /* a preset: its problem text */
        pika_dataset *ds = pika_dataset_load_preset(A.data, A.data_dir);
        if (!ds || pika_textset_from_dataset(&T, ds)) pika_die("%s", pika_last_error());
        pika_dataset_free(ds);
    } else if (pika_textset_read(&T, A.data, A.id_field, A.text_field, A.tokens_field))
        pika_die("%s", pika_last_error());
    int64_t *rows = NULL, n = T.n;
    double *y = NULL;
    if (train) {
        need(A.kind, "--kind"); need(A.labels, "--labels"); need(A.target, "--target");
        n = select_rows(T.ids, T.n, A.labels, A.id_field, A.target, A.split, &rows, &y);
    } else if (A.split) {
        need(A.labels, "--labels (with --split)");
        n = select_rows(T.ids, T.n, A.labels, A.id_field, NULL, A.split, &rows, NULL);
    }
    if (A.tokenizer) {
        /* prompt length in tokens of the given model (no BOS/EOS added, special-token text parsed) */
        pika_gguf *g = pika_gguf_open(A.tokenizer);
        pika_tokenizer *tok = g ? pika_tokenizer_from_gguf(g) : NULL;
        if (!tok || pika_textset_count_tokens(&T, count_tokens, tok)) pika_die("%s", pika_last_error());
        pika_tokenizer_free(tok);
        pika_gguf_close(g);
    }
    char **tx;
    double *tk;
    pika_textset_gather(&T, rows, n, &tx, &tk);
    char *prov = NULL;
    if (train && !strcmp(A.kind, "prompting") && !A.model) pika_die("--kind prompting needs --model MODEL.gguf (the model that is asked)");
    if (A.model) { /* prompting: the model's yes-vs-no score of each text is the feature */
        pika_prompting_opts po;
        pika_prompting_opts_default(&po);
        po.question = A.question;
        po.n_threads = A.fit.n_threads;
        double *sc = pika_malloc(sizeof(double) * (n ? n : 1));
        if (pika_prompting_scores(A.model, tx, n, &po, sc, &prov)) pika_die("%s", pika_last_error());
        free(tk);
        tk = sc;
    }
    if (train) {
        pika_probe *p;
        pika_baseline_opts bo = {.kind = A.kind, .target = A.target, .tfidf = A.to, .fit = A.fit, .log = stdout, .provenance_json = prov};
        if (pika_baseline_train(tx, tk, n, y, &bo, &p)) pika_die("%s", pika_last_error());
        if (pika_probe_save(p, A.out)) pika_die("%s", pika_last_error());
        printf("wrote %s\n", A.out);
        pika_probe_free(p);
    } else {
        need(A.baseline, "--baseline");
        pika_probe *p = pika_probe_load(A.baseline);
        if (!p) pika_die("%s", pika_last_error());
        if (pika_baseline_check_scorer(p, prov)) pika_die("%s", pika_last_error());
        double *s = pika_malloc(sizeof(double) * (n ? n : 1)), *pr = pika_malloc(sizeof(double) * (n ? n : 1));
        if (pika_baseline_predict(p, tx, tk, n, s, pr)) pika_die("%s", pika_last_error());
        write_preds(A.out, T.ids, rows, n, s, pr);
        fprintf(stderr, "wrote %lld predictions to %s\n", (long long)n, A.out);
        free(s); free(pr);
        pika_probe_free(p);
    }
    free(tx); free(tk); free(rows); free(y); free(prov);
    pika_textset_free(&T);
    free_args(&A);
    return 0;
}

/* ---------------------------------------------------------------- report / difficulty */

int cmd_report(int argc, char **argv) {
    args_t A;
    parse_args(argc, argv, 1, &A, REPORT_USAGE, 0);
    need(A.out_dir, "--out");
    if (A.n_preds) { need(A.labels, "--labels"); need(A.target, "--target"); }
    if (!A.probe && !A.n_preds) pika_die("nothing to report: give --probe and/or --pred");
    pika_report_opts o = {.out_dir = A.out_dir, .probe_path = A.probe, .baseline_paths = A.baselines, .n_baselines = A.n_baselines,
                          .pred_names = A.pred_names, .pred_paths = A.pred_paths, .n_preds = A.n_preds, .labels_path = A.labels,
                          .target = A.target, .id_field = A.id_field, .dataset = A.data, .n_boot = A.n_boot, .seed = A.fit.seed,
                          .plot_format = A.svg ? "svg" : "png"};
    if (pika_report_run(&o)) pika_die("%s", pika_last_error());
    size_t L = strlen(A.out_dir);
    while (L > 1 && A.out_dir[L - 1] == '/') L--;
    printf("wrote %.*s/report.md\n", (int)L, A.out_dir);
    free_args(&A);
    return 0;
}

int cmd_difficulty(int argc, char **argv) {
    args_t A;
    parse_args(argc, argv, 1, &A, DIFF_USAGE, 1);
    need(A.acts, "--acts"); need(A.labels, "--labels"); need(A.human, "--human"); need(A.success, "--success");
    pika_acts a;
    if (pika_acts_open(&a, A.acts)) pika_die("%s", pika_last_error());
    int64_t *rows, *rows2;
    double *h, *s;
    int64_t n = select_rows(a.ids, a.n, A.labels, A.id_field, A.human, A.split, &rows, &h);
    int64_t n2 = select_rows(a.ids, a.n, A.labels, A.id_field, A.success, A.split, &rows2, &s);
    if (n2 != n) pika_die("internal: row selection differs between targets");
    pika_difficulty_opts o = {.human_name = A.human, .success_name = A.success, .layers = A.layers, .n_layers = A.n_layers,
                              .positions = A.positions, .n_pos = A.n_pos, .fit = A.fit, .n_boot = A.n_boot,
                              .out_dir = A.out_dir, .out = stdout};
    if (pika_difficulty_run(&a, rows, n, h, s, &o)) pika_die("%s", pika_last_error());
    pika_acts_close(&a);
    free(rows); free(rows2); free(h); free(s);
    free_args(&A);
    return 0;
}

/* ---------------------------------------------------------------- study */

static const char STUDY_USAGE[] =
    "usage: pika study --pipeline DIR --models \"s m l\" --target FIELD --out DIR [--reader NAME] [--human level]\n"
    "                  [--k K] [--title TEXT] [--version TEXT] [--bootstrap 1000] [--seed 42]\n"
    "  One page (DIR/study.md + self-contained DIR/study.html) from what scripts/pipeline.sh wrote under --pipeline:\n"
    "  per member CV by layer, ROC, reliability, metrics with CIs and paired tests; difficulty; reader probes;\n"
    "  transfer; routing with own vs the reader's probes (see include/pika/study.h for the layout read).\n";

int cmd_study(int argc, char **argv) {
    const char *pipe = NULL, *models = NULL, *target = NULL, *out = NULL, *reader = NULL, *human = NULL, *title = NULL, *version = NULL;
    int k = 0, nb = 1000;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(STUDY_USAGE, stdout); return 0; }
        if (!v) { fprintf(stderr, "pika: unknown or incomplete option '%s'\n%s", a, STUDY_USAGE); return 2; }
        if (!strcmp(a, "--pipeline")) pipe = v;
        else if (!strcmp(a, "--models")) models = v;
        else if (!strcmp(a, "--target")) target = v;
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--reader")) reader = v;
        else if (!strcmp(a, "--human")) human = v;
        else if (!strcmp(a, "--title")) title = v;
        else if (!strcmp(a, "--version")) version = v;
        else if (!strcmp(a, "--k")) k = atoi(v);
        else if (!strcmp(a, "--bootstrap")) { nb = atoi(v); if (nb < 1) pika_die("--bootstrap must be >= 1"); }
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else { fprintf(stderr, "pika: unknown option '%s'\n%s", a, STUDY_USAGE); return 2; }
        i++;
    }
    need(pipe, "--pipeline"); need(models, "--models"); need(target, "--target"); need(out, "--out");
    char *ms = pika_strdup(models), *save;
    const char *names[64];
    int n = 0;
    for (char *t = strtok_r(ms, " ,", &save); t && n < 64; t = strtok_r(NULL, " ,", &save)) names[n++] = t;
    if (n < 1) pika_die("--models: no member names in '%s'", models);
    pika_study_opts o = {.pipeline_dir = pipe, .models = names, .n_models = n, .reader = reader, .target = target, .human = human,
                         .k = k, .title = title, .version = version, .out_dir = out, .n_boot = nb, .seed = seed};
    if (pika_study_run(&o)) pika_die("%s", pika_last_error());
    printf("wrote %s/study.md and %s/study.html\n", out, out);
    free(ms);
    return 0;
}
