/* cli_grade.c — `pika data show`, `pika grade math|code|rollouts`, `pika labels`: argument parsing and
 * printing over dataset.c (the JSONL reader), math_grade.c, code_grade.c, sandbox.c and labels.c. Bad input lines are
 * reported as "pika: FILE:LINE: ..." and skipped; every good line is still written (exit status 2 at the
 * end when any line was bad). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "pika/dataset.h"
#include "pika/grade.h"
#include "pika/labels.h"
#include "pika/rollout.h"
#include "pika/util.h"

static const char DATA_FLAGS[] =
    "data flags (SPEC is a preset math[:test|train] math500 gsm8k[:test|train] aime aime24 amc23 humaneval\n"
    "            mbpp[:all|test|train|validation|fewshot], or a .jsonl / .jsonl.gz / .csv file):\n"
    "  --data-dir DIR        where presets live (default $PIKA_DATA, else $PIKA_SHARED/data, else ../shared/data)\n"
    "  --kind math|humaneval|mbpp|stdio   task kind of a FILE (default math)\n"
    "  --id-field F --problem-field F --gold-field F --level-field F --subject-field F --split-field F\n"
    "  --prefix-field F --test-field F --entry-point-field F --setup-field F --tests-field F\n"
    "                        field names of a FILE (defaults: id problem answer level subject split prompt test\n"
    "                        entry_point test_setup_code tests; a missing id means the row number)\n"
    "  --gold-after MARK     gold = text after the last MARK (e.g. \"####\")\n";

static const char DATA_USAGE[] =
    "usage: pika data show SPEC [--row N | --id ID] [data flags]\n"
    "  Prints the task kind, row count, gold / test / level statistics and one example (row 0 by default).\n";

static const char GRADE_USAGE[] =
    "usage:\n"
    "  pika grade math --pred TEXT --gold TEXT [--mcq] [--no-number-fallback]\n"
    "        prints true or false (exit 0 either way; 2 on usage error)\n"
    "  pika grade math --jsonl FILE [-o OUT] [--mcq] [--no-number-fallback]\n"
    "        FILE lines {\"pred\":..., \"gold\":...}; writes each with \"equivalent\" and \"answer\" added\n"
    "  pika grade code --program FILE [--data SPEC --id ID] [--stdin FILE] [sandbox flags]\n"
    "        runs one program (alone, or against task ID's tests); prints VERDICT<TAB>DETAIL; exit 0 on pass, 1 otherwise\n"
    "  pika grade code --data SPEC --references [-o OUT] [sandbox flags]\n"
    "        runs every reference solution of a code dataset; one JSON line per task; exit 0 when all pass\n"
    "  pika grade rollouts --rollouts FILE --data SPEC [-o OUT] [--mcq] [--no-number-fallback] [sandbox flags]\n"
    "        FILE lines {id, sample, text, tokens_in, tokens_out, model}; writes each with \"correct\" and\n"
    "        \"answer\" added (code: answer = the extracted program, plus \"verdict\" and \"detail\")\n"
    "sandbox flags:\n"
    "  --workers N           parallel programs (default: cores)\n"
    "  --timeout S           wall-clock limit per program run (default 10)\n"
    "  --mem-mb M            address-space limit (default 2048)\n"
    "  --unsafe-no-sandbox   run WITHOUT bubblewrap (rlimits only); trusted code only\n"
    "  env PIKA_BWRAP / PIKA_PYTHON override /usr/bin/bwrap and /usr/bin/python3\n";

static const char LABELS_USAGE[] =
    "usage: pika labels --rollouts GRADED.jsonl [-o OUT] [--k LIST] [--prices FILE] [--data SPEC [data flags]]\n"
    "                   [--exact-answers]\n"
    "  One JSON line per (model, id): n, n_correct, success_rate, pass@K for each K in LIST (default 1;\n"
    "  null where K > n), pass_at_n, majority_answer, majority_count, majority_vote_is_correct, tokens_in,\n"
    "  total_tokens_in, total_tokens_out, mean_tokens_out, and with --prices input_cost_usd_once,\n"
    "  total_output_cost_usd, total_cost_usd. --data adds the human difficulty `level` and the file's `split` when the dataset has them.\n"
    "  Majority vote clusters math-equivalent answers; --exact-answers compares answer text exactly.\n"
    "  Price file lines: MODEL IN_USD_PER_1M OUT_USD_PER_1M ('#' comments).\n";

typedef struct {
    const char *data, *data_dir, *out, *rollouts, *jsonl, *pred, *gold, *program, *id, *stdin_file, *prices, *klist;
    int row, mcq, no_fallback, references, unsafe, workers, exact_answers, has_pred, has_gold;
    double timeout, mem_mb;
    pika_field_map fm;
    int kind_set;
} args_t;

static int parse_args(int argc, char **argv, int first, args_t *a, const char *usage) {
    memset(a, 0, sizeof *a);
    a->row = -1;
    a->fm = (pika_field_map){.id = "id", .problem = "problem", .gold = "answer", .level = "level", .subject = "subject", .split = "split"};
    int positional = 0;
    for (int i = first; i < argc; i++) {
        const char *f = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(field)                                                               \
    do {                                                                          \
        if (!v) { fprintf(stderr, "pika: %s needs a value\n%s", f, usage); return -1; } \
        field = v;                                                                \
        i++;                                                                      \
    } while (0)
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { fputs(usage, stdout); fputs(DATA_FLAGS, stdout); exit(0); }
        else if (!strcmp(f, "--data")) TAKE(a->data);
        else if (!strcmp(f, "--data-dir")) TAKE(a->data_dir);
        else if (!strcmp(f, "-o") || !strcmp(f, "--out")) TAKE(a->out);
        else if (!strcmp(f, "--rollouts")) TAKE(a->rollouts);
        else if (!strcmp(f, "--jsonl")) TAKE(a->jsonl);
        else if (!strcmp(f, "--pred")) { TAKE(a->pred); a->has_pred = 1; }
        else if (!strcmp(f, "--gold")) { TAKE(a->gold); a->has_gold = 1; }
        else if (!strcmp(f, "--program")) TAKE(a->program);
        else if (!strcmp(f, "--id")) TAKE(a->id);
        else if (!strcmp(f, "--stdin")) TAKE(a->stdin_file);
        else if (!strcmp(f, "--prices")) TAKE(a->prices);
        else if (!strcmp(f, "--k")) TAKE(a->klist);
        else if (!strcmp(f, "--id-field")) TAKE(a->fm.id);
        else if (!strcmp(f, "--problem-field")) TAKE(a->fm.problem);
        else if (!strcmp(f, "--gold-field")) TAKE(a->fm.gold);
        else if (!strcmp(f, "--level-field")) TAKE(a->fm.level);
        else if (!strcmp(f, "--split-field")) TAKE(a->fm.split);
        else if (!strcmp(f, "--subject-field")) TAKE(a->fm.subject);
        else if (!strcmp(f, "--prefix-field")) TAKE(a->fm.prefix);
        else if (!strcmp(f, "--test-field")) TAKE(a->fm.test);
        else if (!strcmp(f, "--entry-point-field")) TAKE(a->fm.entry_point);
        else if (!strcmp(f, "--setup-field")) TAKE(a->fm.setup);
        else if (!strcmp(f, "--tests-field")) TAKE(a->fm.tests);
        else if (!strcmp(f, "--gold-after")) TAKE(a->fm.gold_after);
        else if (!strcmp(f, "--kind")) {
            const char *k = NULL;
            TAKE(k);
            a->kind_set = 1;
            if (pika_task_kind_parse(k, &a->fm.kind)) { fprintf(stderr, "pika: --kind: %s\n", pika_last_error()); return -1; }
        } else if (!strcmp(f, "--row")) { const char *s = NULL; TAKE(s); a->row = atoi(s); }
        else if (!strcmp(f, "--workers")) { const char *s = NULL; TAKE(s); a->workers = atoi(s); if (a->workers < 1) { fprintf(stderr, "pika: --workers must be >= 1\n"); return -1; } }
        else if (!strcmp(f, "--timeout")) { const char *s = NULL; TAKE(s); a->timeout = atof(s); if (!(a->timeout > 0)) { fprintf(stderr, "pika: --timeout must be > 0\n"); return -1; } }
        else if (!strcmp(f, "--mem-mb")) { const char *s = NULL; TAKE(s); a->mem_mb = atof(s); if (!(a->mem_mb >= 64)) { fprintf(stderr, "pika: --mem-mb must be >= 64\n"); return -1; } }
        else if (!strcmp(f, "--mcq")) a->mcq = 1;
        else if (!strcmp(f, "--no-number-fallback")) a->no_fallback = 1;
        else if (!strcmp(f, "--references")) a->references = 1;
        else if (!strcmp(f, "--unsafe-no-sandbox")) a->unsafe = 1;
        else if (!strcmp(f, "--exact-answers")) a->exact_answers = 1;
        else if (f[0] == '-' && f[1]) { fprintf(stderr, "pika: unknown flag %s\n%s", f, usage); return -1; }
        else if (!positional && !a->data) { a->data = f; positional = 1; }
        else { fprintf(stderr, "pika: unexpected argument '%s'\n%s", f, usage); return -1; }
#undef TAKE
    }
    /* code kinds: default field names of the HumanEval / MBPP / LiveCodeBench-style files */
    if (a->fm.kind == PIKA_TASK_HUMANEVAL && !a->fm.prefix) { a->fm.prefix = "prompt"; if (!a->fm.test) a->fm.test = "test"; if (!a->fm.entry_point) a->fm.entry_point = "entry_point"; }
    if (a->fm.kind == PIKA_TASK_MBPP && !a->fm.test) { a->fm.test = "test_list"; if (!a->fm.setup) a->fm.setup = "test_setup_code"; }
    if (a->fm.kind == PIKA_TASK_STDIO && !a->fm.tests) a->fm.tests = "tests";
    if (a->fm.kind != PIKA_TASK_MATH && !strcmp(a->fm.gold, "answer")) a->fm.gold = NULL;
    return 0;
}

static pika_dataset *load_data(const args_t *a) {
    if (!a->data) return NULL;
    if (pika_dataset_is_preset(a->data) && access(a->data, F_OK) != 0) return pika_dataset_load_preset(a->data, a->data_dir);
    return pika_dataset_load_file(a->data, &a->fm);
}

static FILE *open_out(const char *path) {
    if (!path || !strcmp(path, "-")) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) pika_die("cannot write %s", path);
    return f;
}

static void close_out(FILE *f) {
    if (f != stdout) {
        if (fclose(f) != 0) pika_die("write error");
    } else fflush(stdout);
}


static const char *kind_name(pika_task_kind k) { return pika_task_kind_name(k); }

/* ---------------------------------------------------------------- pika data show */

int cmd_data(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "show")) {
        int help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fputs(DATA_USAGE, help ? stdout : stderr);
        fputs(DATA_FLAGS, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    args_t a;
    if (parse_args(argc, argv, 2, &a, DATA_USAGE)) return 2;
    if (!a.data) { fputs(DATA_USAGE, stderr); return 2; }
    pika_dataset *d = load_data(&a);
    if (!d) pika_die("%s", pika_last_error());
    int n_gold = 0, n_empty = 0, lv[6] = {0}, n_test = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->rows[i].gold && *d->rows[i].gold) n_gold++;
        else n_empty++;
        lv[d->rows[i].level]++;
        if (d->rows[i].test || d->rows[i].tests_json) n_test++;
    }
    printf("dataset   %s\nkind      %s\nrows      %d\n", d->name, kind_name(d->kind), d->n);
    printf("gold      %d rows with a gold answer/solution, %d without\n", n_gold, n_empty);
    if (d->kind != PIKA_TASK_MATH) printf("tests     %d rows with tests\n", n_test);
    if (lv[1] + lv[2] + lv[3] + lv[4] + lv[5] > 0)
        printf("level     1:%d 2:%d 3:%d 4:%d 5:%d unknown:%d\n", lv[1], lv[2], lv[3], lv[4], lv[5], lv[0]);
    else printf("level     none (no human difficulty label)\n");
    const pika_example *e = NULL;
    if (a.id) {
        e = pika_dataset_find(d, a.id);
        if (!e) { pika_dataset_free(d); pika_die("no row with id '%s'", a.id); }
    } else if (d->n > 0) {
        int r = a.row >= 0 ? a.row : 0;
        if (r >= d->n) { int n = d->n; pika_dataset_free(d); pika_die("--row %d out of range (%d rows)", r, n); }
        e = &d->rows[r];
    }
    if (e) {
        printf("\nexample   id=%s", e->id);
        if (e->level) printf(" level=%d", e->level);
        if (e->subject) printf(" subject=%s", e->subject);
        printf("\n--- problem\n%s\n", e->problem ? e->problem : "(none)");
        printf("--- gold\n%s\n", e->gold ? e->gold : "(none)");
        if (e->entry_point) printf("--- entry_point\n%s\n", e->entry_point);
        if (e->setup && *e->setup) printf("--- setup\n%s\n", e->setup);
        if (e->test) printf("--- test\n%s\n", e->test);
        if (e->tests_json) printf("--- tests\n%.2000s\n", e->tests_json);
    }
    pika_dataset_free(d);
    return 0;
}

/* ---------------------------------------------------------------- JSONL iteration with line errors */

static void print_bad(const char *msg, void *ctx) {
    (void)ctx;
    fprintf(stderr, "pika: %s\n", msg);
}


/* ---------------------------------------------------------------- grade math */

static int grade_math(args_t *a) {
    pika_extract_opts eo;
    pika_extract_opts_default(&eo);
    eo.mcq = a->mcq;
    eo.number_fallback = !a->no_fallback;
    if (a->jsonl) {
        if (a->has_pred || a->has_gold) { fprintf(stderr, "pika: use either --jsonl or --pred/--gold\n%s", GRADE_USAGE); return 2; }
        pika_grade_stats st;
        if (pika_grade_math_pairs(a->jsonl, &eo, a->out, print_bad, NULL, &st)) pika_die("%s", pika_last_error());
        if (st.n_bad) { fprintf(stderr, "pika: %lld bad line(s) skipped; the other lines were graded\n", (long long)st.n_bad); return 2; }
        return 0;
    }
    if (!a->has_pred || !a->has_gold) { fprintf(stderr, "pika: grade math needs --pred and --gold (or --jsonl)\n%s", GRADE_USAGE); return 2; }
    puts(pika_math_grade(a->pred, a->gold, &eo, NULL) ? "true" : "false");
    return 0;
}

/* ---------------------------------------------------------------- grade code */

static void sandbox_opts(const args_t *a, pika_sandbox_opts *o) {
    pika_sandbox_opts_default(o);
    if (a->timeout > 0) o->timeout_s = a->timeout;
    if (a->mem_mb > 0) o->mem_bytes = (size_t)(a->mem_mb * 1048576.0);
    o->unsafe_no_sandbox = a->unsafe;
    const char *b = getenv("PIKA_BWRAP"), *p = getenv("PIKA_PYTHON");
    if (b && *b) o->bwrap = b;
    if (p && *p) o->python = p;
    if (pika_sandbox_check(o)) pika_die("%s", pika_last_error());
    if (a->unsafe) fprintf(stderr, "pika: WARNING: running code WITHOUT a sandbox (--unsafe-no-sandbox); only for trusted code\n");
}

static int grade_code(args_t *a) {
    pika_sandbox_opts so;
    if (a->references) {
        if (!a->data) { fprintf(stderr, "pika: --references needs --data\n"); return 2; }
        pika_dataset *d = load_data(a);
        if (!d) pika_die("%s", pika_last_error());
        if (d->kind == PIKA_TASK_MATH) { pika_dataset_free(d); pika_die("%s is not a code dataset", a->data); }
        sandbox_opts(a, &so);
        double t0 = pika_now();
        int cnt[4] = {0};
        if (pika_grade_references(d, &so, a->workers, a->out, cnt)) pika_die("%s", pika_last_error());
        double dt = pika_now() - t0;
        fprintf(stderr, "pika: %s: %d pass, %d fail, %d timeout, %d error (%d programs in %.1f s)\n", d->name, cnt[0], cnt[1],
                cnt[2], cnt[3], d->n, dt);
        int all = cnt[0] == d->n;
        pika_dataset_free(d);
        return all ? 0 : 1;
    }
    if (!a->program) { fprintf(stderr, "pika: grade code needs --program FILE or --data SPEC --references\n%s", GRADE_USAGE); return 2; }
    char *prog = pika_read_file(a->program, NULL);
    if (!prog) pika_die("%s", pika_last_error());
    pika_dataset *d = NULL;
    const pika_example *ex = NULL;
    if (a->data) {
        if (!a->id) { free(prog); fprintf(stderr, "pika: --data with --program needs --id\n"); return 2; }
        d = load_data(a);
        if (!d) pika_die("%s", pika_last_error());
        ex = pika_dataset_find(d, a->id);
        if (!ex) pika_die("no task with id '%s' in %s", a->id, a->data);
    }
    sandbox_opts(a, &so);
    const char *verdict, *detail = "";
    pika_code_result cr = {0};
    pika_sandbox_result sr = {0};
    if (ex) {
        pika_code_grade(&so, d->kind, ex, prog, &cr);
        verdict = pika_verdict_name(cr.verdict);
        detail = cr.detail ? cr.detail : "";
    } else {
        char *in = a->stdin_file ? pika_read_file(a->stdin_file, NULL) : NULL;
        if (a->stdin_file && !in) pika_die("%s", pika_last_error());
        int rc = pika_sandbox_run_python(&so, prog, in, &sr);
        free(in);
        verdict = pika_verdict_name(sr.verdict);
        if (rc) detail = pika_last_error();
        else {
            fputs(sr.out, stdout);
            if (sr.err && *sr.err) fputs(sr.err, stderr);
        }
    }
    printf("%s\t%s\n", verdict, detail);
    int pass = !strcmp(verdict, "pass");
    pika_code_result_free(&cr);
    pika_sandbox_result_free(&sr);
    pika_dataset_free(d);
    free(prog);
    return pass ? 0 : 1;
}

/* ---------------------------------------------------------------- grade rollouts */

static int grade_rollouts(args_t *a) {
    if (!a->rollouts || !a->data) { fprintf(stderr, "pika: grade rollouts needs --rollouts FILE and --data SPEC\n%s", GRADE_USAGE); return 2; }
    pika_dataset *d = load_data(a);
    if (!d) pika_die("%s", pika_last_error());
    pika_grade_opts go;
    pika_grade_opts_default(&go);
    go.math.mcq = a->mcq;
    go.math.number_fallback = !a->no_fallback;
    go.n_workers = a->workers;
    if (d->kind != PIKA_TASK_MATH) sandbox_opts(a, &go.sandbox); /* fail closed before reading anything */
    pika_grade_stats st;
    int rc = pika_grade_rollouts(a->rollouts, d, &go, a->out, print_bad, NULL, &st);
    pika_dataset_free(d);
    if (rc) pika_die("%s", pika_last_error());
    if (st.n_bad) { fprintf(stderr, "pika: %lld bad line(s) skipped; the other rollouts were graded\n", (long long)st.n_bad); return 2; }
    return 0;
}

int cmd_grade(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(GRADE_USAGE, argc < 2 ? stderr : stdout);
        fputs(DATA_FLAGS, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    args_t a;
    if (parse_args(argc, argv, 2, &a, GRADE_USAGE)) return 2;
    if (!strcmp(argv[1], "math")) return grade_math(&a);
    if (!strcmp(argv[1], "code")) return grade_code(&a);
    if (!strcmp(argv[1], "rollouts")) return grade_rollouts(&a);
    fprintf(stderr, "pika: unknown grade mode '%s'\n%s", argv[1], GRADE_USAGE);
    return 2;
}

/* ---------------------------------------------------------------- labels */

static int answers_equal_kind(const char *a, const char *b, void *ctx) {
    return pika_answers_equal(*(const pika_task_kind *)ctx, a, b);
}

static void print_warning(const char *msg, void *ctx) {
    (void)ctx;
    fprintf(stderr, "pika: warning: %s\n", msg);
}

int cmd_labels(int argc, char **argv) {
    args_t a;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(LABELS_USAGE, stdout);
        fputs(DATA_FLAGS, stdout);
        return 0;
    }
    if (parse_args(argc, argv, 1, &a, LABELS_USAGE)) return 2;
    if (!a.rollouts) { fprintf(stderr, "pika: labels needs --rollouts FILE\n%s", LABELS_USAGE); return 2; }
    int32_t *ks = NULL;
    int nk = 0;
    if (a.klist) {
        nk = pika_parse_int_list(a.klist, &ks);
        if (nk <= 0) pika_die("--k: expected a list of integers >= 1, got '%s'", a.klist);
        for (int i = 0; i < nk; i++) if (ks[i] < 1) pika_die("--k: %d is not >= 1", ks[i]);
    }
    pika_price_table prices = {0};
    if (a.prices && pika_price_table_load(a.prices, &prices)) pika_die("%s", pika_last_error());
    pika_dataset *d = NULL;
    if (a.data) {
        d = load_data(&a);
        if (!d) pika_die("%s", pika_last_error());
    }
    pika_rollout *R = NULL;
    int nr = 0;
    int64_t bad = 0;
    if (pika_rollouts_read_graded(a.rollouts, &R, &nr, print_bad, NULL, &bad)) pika_die("%s", pika_last_error());
    /* default k list: 1 only (pass_at_n is always written) */
    int kbuf[1] = {1};
    int *kk = nk ? (int *)ks : kbuf;
    int nkk = nk ? nk : 1;
    pika_label *L = NULL;
    int nl = 0;
    pika_task_kind kind = d ? d->kind : a.fm.kind; /* majority vote by the dataset's task kind (default math) */
    pika_label_opts lo = {.ks = kk, .nk = nkk, .prices = a.prices ? &prices : NULL,
                          .answers_equal = a.exact_answers ? NULL : answers_equal_kind, .eq_ctx = &kind};
    if (pika_label_aggregate(R, nr, &lo, &L, &nl)) pika_die("%s", pika_last_error());
    FILE *out = open_out(a.out);
    if (pika_labels_write(out, L, nl, d, a.prices != NULL, print_warning, NULL)) pika_die("%s", pika_last_error());
    close_out(out);
    pika_rollouts_graded_free(R, nr);
    pika_label_free(L, nl);
    pika_price_table_free(&prices);
    pika_dataset_free(d);
    free(ks);
    if (bad) { fprintf(stderr, "pika: %lld bad line(s) skipped; labels use the other rollouts\n", (long long)bad); return 2; }
    return 0;
}
