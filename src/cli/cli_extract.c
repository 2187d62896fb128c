/* cli_extract.c — the commands that run a model over a dataset's chat prompts:
 * `pika extract` (EOI activations into an activation store) and `pika sample` (k sampled answers per
 * question into rollouts JSONL). Both build prompts the same way, so probes read the activations of
 * exactly the prompts the answers came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/acts.h"
#include "pika/chat.h"
#include "pika/dataset.h"
#include "pika/extract.h"
#include "pika/model.h"
#include "pika/npy.h"
#include "pika/rollout.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static const char *PROMPT_OPTIONS =
    "data and prompt options (the same for extract and sample):\n"
    "  --data PRESET[:SPLIT]|FILE  a preset (math, gsm8k, ...; see pika data) or a .jsonl/.jsonl.gz/.csv file\n"
    "  --data-dir DIR        where presets live (default $PIKA_DATA, else ../shared/data)\n"
    "  --problem-field NAME  question field of a file (default problem)\n"
    "  --id-field NAME       id field of a file (default id; the row number when absent)\n"
    "  --limit N             only the first N questions\n"
    "  --system TEXT         system message\n"
    "  --suffix TEXT         appended to every question (e.g. \"\\nPlease reason step by step, ...\")\n"
    "  --template NAME       built-in chat template instead of the GGUF's\n"
    "  --template-file F     Jinja chat template file instead of the GGUF's\n"
    "  --no-template         raw question text (BOS as the vocab asks); EOI = the last token\n"
    "  --kwargs JSON         template variables, e.g. '{\"enable_thinking\": false}'\n"
    "  --date YYYY-MM-DD     pin the date templates print\n"
    "  --threads N           threads (default: all cores)\n"
    "  --resume              continue the output of an interrupted run\n";

/* Everything both commands load: questions, model, tokenizer and the prompt recipe. */
typedef struct {
    const char *model_path, *data, *data_dir, *field, *id_field, *tname, *tfile, *kwjson;
    int no_template, threads;
    long long limit;
    pika_eoi_opts prompt;
    /* loaded */
    pika_dataset *ds;
    int64_t n;
    char **ids, **questions;
    pika_model *m;
    pika_tokenizer *tok;
    pika_ctx *ctx;
    cJSON *kwargs;
    char *tmpl, *bos, *eos, *file_tmpl;
} run_setup;

/* Consume a shared option at argv[*i]; 1 when it was one, 0 when not. */
static int shared_option(run_setup *r, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char **slot = NULL;
    if (!strcmp(a, "--model")) slot = &r->model_path;
    else if (!strcmp(a, "--data")) slot = &r->data;
    else if (!strcmp(a, "--data-dir")) slot = &r->data_dir;
    else if (!strcmp(a, "--problem-field")) slot = &r->field;
    else if (!strcmp(a, "--id-field")) slot = &r->id_field;
    else if (!strcmp(a, "--system")) slot = &r->prompt.system;
    else if (!strcmp(a, "--suffix")) slot = &r->prompt.user_suffix;
    else if (!strcmp(a, "--template")) slot = &r->tname;
    else if (!strcmp(a, "--template-file")) slot = &r->tfile;
    else if (!strcmp(a, "--kwargs")) slot = &r->kwjson;
    else if (!strcmp(a, "--date")) slot = &r->prompt.date;
    if (slot) {
        if (*i + 1 >= argc) pika_die("%s: %s needs a value", cmd, a);
        *slot = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--no-template")) { r->no_template = 1; return 1; }
    if (!strcmp(a, "--resume")) { r->prompt.resume = 1; return 1; }
    if (!strcmp(a, "--limit") || !strcmp(a, "--threads")) {
        if (*i + 1 >= argc) pika_die("%s: %s needs a value", cmd, a);
        char *end;
        long long v = strtoll(argv[++*i], &end, 10);
        if (*end || v < 1) pika_die("%s: %s must be a positive integer", cmd, a);
        if (a[2] == 'l') r->limit = v;
        else r->threads = (int)v;
        return 1;
    }
    return 0;
}

static void setup_load(run_setup *r, const char *cmd) {
    if (!r->model_path || !r->data) pika_die("%s: --model and --data are required (see pika %s --help)", cmd, cmd);
    if (r->kwjson) {
        r->kwargs = cJSON_Parse(r->kwjson);
        if (!r->kwargs || !cJSON_IsObject(r->kwargs)) pika_die("%s: --kwargs must be a JSON object", cmd);
        r->prompt.kwargs = r->kwargs;
    }
    if (pika_dataset_is_preset(r->data)) {
        r->ds = pika_dataset_load_preset(r->data, r->data_dir);
    } else {
        pika_field_map fm;
        memset(&fm, 0, sizeof fm);
        fm.id = r->id_field;
        fm.problem = r->field;
        r->ds = pika_dataset_load_file(r->data, &fm);
    }
    if (!r->ds) pika_die("%s", pika_last_error());
    r->n = r->ds->n;
    if (r->limit > 0 && r->limit < r->n) r->n = r->limit;
    r->ids = pika_malloc(sizeof(char *) * (size_t)(r->n ? r->n : 1));
    r->questions = pika_malloc(sizeof(char *) * (size_t)(r->n ? r->n : 1));
    for (int64_t i = 0; i < r->n; i++) {
        r->ids[i] = r->ds->rows[i].id;
        r->questions[i] = r->ds->rows[i].problem;
        if (!r->questions[i]) pika_die("%s: row %lld has no question text (--problem-field '%s')", r->data, (long long)i + 1, r->field);
    }
    r->m = pika_model_load(r->model_path);
    if (!r->m) pika_die("%s", pika_last_error());
    r->tok = pika_tokenizer_from_gguf(pika_model_gguf(r->m));
    if (!r->tok) pika_die("%s", pika_last_error());
    pika_chat_from_gguf(pika_model_gguf(r->m), NULL, &r->tmpl, &r->bos, &r->eos);
    r->prompt.bos_token = r->bos;
    r->prompt.eos_token = r->eos;
    if (!r->no_template) {
        if (r->tname) {
            r->prompt.template_src = pika_chat_builtin(r->tname);
            if (!r->prompt.template_src) pika_die("%s: unknown --template '%s' (choices: %s)", cmd, r->tname, pika_chat_builtin_list());
            r->prompt.template_name = r->tname;
        } else if (r->tfile) {
            if (!(r->file_tmpl = pika_read_file(r->tfile, NULL))) pika_die("%s", pika_last_error());
            r->prompt.template_src = r->file_tmpl;
            r->prompt.template_name = r->tfile;
        } else if (r->tmpl) {
            r->prompt.template_src = r->tmpl;
            r->prompt.template_name = "gguf";
        } else {
            pika_die("%s: %s has no chat template; pass --template NAME (%s), --template-file F or --no-template", cmd,
                     r->model_path, pika_chat_builtin_list());
        }
    }
    r->prompt.model_path = r->model_path;
    r->ctx = pika_ctx_new(r->m, r->threads);
}

static void setup_free(run_setup *r) {
    pika_ctx_free(r->ctx);
    pika_tokenizer_free(r->tok);
    pika_model_free(r->m);
    pika_dataset_free(r->ds);
    free(r->ids); free(r->questions); free(r->tmpl); free(r->bos); free(r->eos); free(r->file_tmpl);
    cJSON_Delete(r->kwargs);
}

static void setup_init(run_setup *r) {
    memset(r, 0, sizeof *r);
    r->field = "problem";
    r->id_field = "id";
    r->limit = -1;
    pika_eoi_opts_default(&r->prompt);
}

static int parse_list(const char *cmd, const char *s, int32_t **out) {
    int n = pika_parse_int_list(s, out);
    if (n <= 0) pika_die("%s: '%s' is not a list of integers", cmd, s);
    return n;
}

int cmd_extract(int argc, char **argv) {
    run_setup r;
    setup_init(&r);
    const char *out = NULL, *layers_s = NULL, *pos_s = NULL, *dtype_s = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: pika extract --model M.gguf --data PRESET|FILE --out DIR [options]\n"
                   "Stores the residual stream at the end-of-instruction tokens of every question's chat prompt.\n"
                   "  --out DIR             activation store (meta.json, ids.txt, layer_XX.npy)\n"
                   "  --layers all|L,L,..   layers to store (0 = embeddings, i = after block i; default all)\n"
                   "  --positions eoi|P,..  negative offsets from the prompt end (default eoi = -n_eoi..-1)\n"
                   "  --dtype f16|f32       storage type (default f16)\n%s", PROMPT_OPTIONS);
            return 0;
        }
        if (shared_option(&r, "extract", argc, argv, &i)) continue;
        const char **slot = !strcmp(a, "--out") ? &out : !strcmp(a, "--layers") ? &layers_s
                          : !strcmp(a, "--positions") ? &pos_s : !strcmp(a, "--dtype") ? &dtype_s : NULL;
        if (!slot) pika_die("extract: unknown option %s (see pika extract --help)", a);
        if (i + 1 >= argc) pika_die("extract: %s needs a value", a);
        *slot = argv[++i];
    }
    if (!out) pika_die("extract: --out DIR is required");
    if (!strcmp(dtype_s, "f16")) r.prompt.dtype = PIKA_NPY_F16;
    else if (!strcmp(dtype_s, "f32")) r.prompt.dtype = PIKA_NPY_F32;
    else pika_die("extract: --dtype must be f16 or f32");
    int32_t *layers = NULL, *pos = NULL;
    if (layers_s && strcmp(layers_s, "all")) { r.prompt.n_layers = parse_list("extract", layers_s, &layers); r.prompt.layers = layers; }
    if (pos_s && strcmp(pos_s, "eoi")) { r.prompt.n_pos = parse_list("extract", pos_s, &pos); r.prompt.positions = pos; }
    setup_load(&r, "extract");
    pika_eoi_stats st;
    int rc = pika_eoi_extract(r.ctx, r.tok, r.n, r.ids, r.questions, out, &r.prompt, &st);
    if (rc)
        fprintf(stderr, "pika: extract: %s (%lld rows are safely stored in %s; rerun with --resume)\n", pika_last_error(),
                (long long)st.done, out);
    else
        fprintf(stderr, "extract: %lld rows in %s (%lld resumed), %d EOI tokens, %.1f prompt tok/s\n", (long long)st.done,
                out, (long long)st.resumed, st.n_eoi, st.seconds > 0 ? st.tokens / st.seconds : 0.0);
    setup_free(&r);
    free(layers);
    free(pos);
    return rc ? 2 : 0;
}

static double num(const char *cmd, const char *flag, const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end) pika_die("%s: %s must be a number, got '%s'", cmd, flag, v);
    return x;
}

int cmd_sample(int argc, char **argv) {
    run_setup r;
    setup_init(&r);
    pika_rollout_opts o;
    pika_rollout_opts_default(&o);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: pika sample --model M.gguf --data PRESET|FILE --out ROLLOUTS.jsonl [options]\n"
                   "Samples k answers per question with the local engine; writes one JSON line per answer:\n"
                   "{id, sample, text, tokens_in, tokens_out, model, finish}  (finish: stop | length)\n"
                   "  -k N                  answers per question (default 1)\n"
                   "  --max-tokens N        generated tokens per answer (default 256)\n"
                   "  --temperature T       0 = greedy (default 1)\n"
                   "  --top-k K --top-p P --min-p P   sampling filters (off by default)\n"
                   "  --seed S              base seed; each (question, sample) derives its own (default 42)\n"
                   "  --model-name NAME     \"model\" field of the rollouts (default: the GGUF file name)\n%s",
                   PROMPT_OPTIONS);
            return 0;
        }
        if (shared_option(&r, "sample", argc, argv, &i)) continue;
        if (i + 1 >= argc) pika_die("sample: unknown option %s or missing value (see pika sample --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "-k")) o.k = (int)num("sample", a, v);
        else if (!strcmp(a, "--max-tokens")) o.max_tokens = (int)num("sample", a, v);
        else if (!strcmp(a, "--temperature")) o.sampling.temperature = (float)num("sample", a, v);
        else if (!strcmp(a, "--top-k")) o.sampling.top_k = (int)num("sample", a, v);
        else if (!strcmp(a, "--top-p")) o.sampling.top_p = (float)num("sample", a, v);
        else if (!strcmp(a, "--min-p")) o.sampling.min_p = (float)num("sample", a, v);
        else if (!strcmp(a, "--seed")) o.sampling.seed = (uint64_t)num("sample", a, v);
        else if (!strcmp(a, "--model-name")) o.model_name = v;
        else pika_die("sample: unknown option %s (see pika sample --help)", a);
    }
    if (!out) pika_die("sample: --out ROLLOUTS.jsonl is required");
    if (o.k < 1 || o.max_tokens < 1) pika_die("sample: -k and --max-tokens must be >= 1");
    if (o.sampling.top_p <= 0 || o.sampling.top_p > 1 || o.sampling.min_p < 0 || o.sampling.min_p > 1)
        pika_die("sample: --top-p must be in (0, 1] and --min-p in [0, 1]");
    o.resume = r.prompt.resume;
    setup_load(&r, "sample");
    if (!o.model_name) {
        const char *b = strrchr(r.model_path, '/');
        o.model_name = b ? b + 1 : r.model_path;
    }
    pika_rollout_stats st;
    int rc = pika_rollouts(r.ctx, r.tok, r.n, r.ids, r.questions, &r.prompt, &o, out, &st);
    if (rc)
        fprintf(stderr, "pika: sample: %s (%lld answers written to %s are kept; rerun with --resume)\n", pika_last_error(),
                (long long)st.written, out);
    else
        fprintf(stderr, "sample: %lld answers written (%lld already there), %.1f generated tok/s\n", (long long)st.written,
                (long long)st.skipped, st.seconds > 0 ? st.tokens_out / st.seconds : 0.0);
    setup_free(&r);
    return rc ? 2 : 0;
}
