/* cli_extract.c — `pika extract`: a dataset's pre-generation activations into an activation store. */
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
#include "pika/tokenizer.h"
#include "pika/util.h"

static const char *USAGE =
    "usage: pika extract --model M.gguf --data PRESET[:SPLIT]|FILE.jsonl --out DIR [options]\n"
    "Stores the residual stream at the end-of-instruction tokens of every question's chat prompt.\n"
    "  --field NAME          question field of a JSONL/CSV file (default problem)\n"
    "  --id-field NAME       id field of a file (default id; the row number when absent)\n"
    "  --system TEXT         system message\n"
    "  --suffix TEXT         appended to every question (e.g. \"\\nPlease reason step by step, ...\")\n"
    "  --template NAME       built-in chat template instead of the GGUF's\n"
    "  --template-file F     Jinja chat template file instead of the GGUF's\n"
    "  --no-template         raw question text (BOS as the vocab asks); EOI = the last token\n"
    "  --kwargs JSON         template variables, e.g. '{\"enable_thinking\": false}'\n"
    "  --date YYYY-MM-DD     pin the date templates print\n"
    "  --layers all|L,L,..   layers to store (0 = embeddings, i = after block i; default all)\n"
    "  --positions eoi|P,..  negative offsets from the prompt end (default eoi = -n_eoi..-1)\n"
    "  --dtype f16|f32       storage type (default f16)\n"
    "  --limit N             only the first N questions\n"
    "  --resume              continue a store made by an interrupted run (same model and prompt)\n"
    "  --threads N           threads (default: all cores)\n";

static int parse_list(const char *s, int32_t **out) {
    int n = pika_parse_int_list(s, out);
    if (n <= 0) pika_die("extract: '%s' is not a list of integers", s);
    return n;
}

int cmd_extract(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL, *field = "problem", *id_field = "id", *tname = NULL,
               *tfile = NULL, *kwjson = NULL, *layers_s = NULL, *pos_s = NULL, *dtype_s = "f16";
    int no_template = 0, threads = 0;
    long long limit = -1;
    pika_eoi_opts o;
    pika_eoi_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VAL(flag, var) else if (!strcmp(a, flag)) { if (i + 1 >= argc) pika_die("extract: %s needs a value", flag); var = argv[++i]; }
        if (!strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        VAL("--model", model) VAL("--data", data) VAL("--out", out) VAL("--field", field) VAL("--id-field", id_field)
        VAL("--system", o.system) VAL("--suffix", o.user_suffix) VAL("--template", tname) VAL("--template-file", tfile)
        VAL("--kwargs", kwjson) VAL("--date", o.date) VAL("--layers", layers_s) VAL("--positions", pos_s)
        VAL("--dtype", dtype_s)
        else if (!strcmp(a, "--no-template")) no_template = 1;
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--limit") && i + 1 < argc) {
            char *end;
            limit = strtoll(argv[++i], &end, 10);
            if (*end || limit < 1) pika_die("extract: --limit must be a positive integer");
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) pika_die("extract: --threads must be a positive integer");
        } else pika_die("extract: unknown option %s (see pika extract --help)", a);
#undef VAL
    }
    if (!model || !data || !out) pika_die("extract: --model, --data and --out are required (see pika extract --help)");
    if (!strcmp(dtype_s, "f16")) o.dtype = PIKA_NPY_F16;
    else if (!strcmp(dtype_s, "f32")) o.dtype = PIKA_NPY_F32;
    else pika_die("extract: --dtype must be f16 or f32");
    int32_t *layers = NULL, *pos = NULL;
    if (layers_s && strcmp(layers_s, "all")) { o.n_layers = parse_list(layers_s, &layers); o.layers = layers; }
    if (pos_s && strcmp(pos_s, "eoi")) { o.n_pos = parse_list(pos_s, &pos); o.positions = pos; }
    cJSON *kwargs = NULL;
    if (kwjson) {
        kwargs = cJSON_Parse(kwjson);
        if (!kwargs || !cJSON_IsObject(kwargs)) pika_die("extract: --kwargs must be a JSON object");
        o.kwargs = kwargs;
    }

    /* questions */
    pika_dataset *ds;
    if (pika_dataset_is_preset(data)) {
        ds = pika_dataset_load_preset(data, NULL);
    } else {
        pika_field_map fm;
        memset(&fm, 0, sizeof fm);
        fm.id = id_field;
        fm.problem = field;
        ds = pika_dataset_load_file(data, &fm);
    }
    if (!ds) pika_die("%s", pika_last_error());
    int64_t n = ds->n;
    if (limit > 0 && limit < n) n = limit;
    char **ids = pika_malloc(sizeof(char *) * (size_t)(n ? n : 1)), **qs = pika_malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++) {
        ids[i] = ds->rows[i].id;
        qs[i] = ds->rows[i].problem;
        if (!qs[i]) pika_die("%s: row %lld has no question text (field '%s')", data, (long long)i + 1, field);
    }

    /* model, tokenizer, template */
    pika_model *m = pika_model_load(model);
    if (!m) pika_die("%s", pika_last_error());
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    if (!tok) pika_die("%s", pika_last_error());
    char *tmpl = NULL, *bos = NULL, *eos = NULL, *file_tmpl = NULL;
    pika_chat_from_gguf(pika_model_gguf(m), NULL, &tmpl, &bos, &eos);
    o.bos_token = bos;
    o.eos_token = eos;
    if (!no_template) {
        if (tname) {
            o.template_src = pika_chat_builtin(tname);
            if (!o.template_src) pika_die("extract: unknown --template '%s' (choices: %s)", tname, pika_chat_builtin_list());
            o.template_name = tname;
        } else if (tfile) {
            if (!(file_tmpl = pika_read_file(tfile, NULL))) pika_die("%s", pika_last_error());
            o.template_src = file_tmpl;
            o.template_name = tfile;
        } else if (tmpl) {
            o.template_src = tmpl;
            o.template_name = "gguf";
        } else {
            pika_die("extract: %s has no chat template; pass --template NAME (%s), --template-file F or --no-template",
                     model, pika_chat_builtin_list());
        }
    }
    o.model_path = model;
    pika_ctx *c = pika_ctx_new(m, threads);
    pika_eoi_stats st;
    int rc = pika_eoi_extract(c, tok, n, ids, qs, out, &o, &st);
    if (rc) {
        fprintf(stderr, "pika: extract: %s (%lld rows are safely stored in %s; rerun with --resume)\n", pika_last_error(),
                (long long)st.done, out);
    } else {
        fprintf(stderr, "extract: %lld rows in %s (%lld resumed), %d EOI tokens, %.1f prompt tok/s\n", (long long)st.done,
                out, (long long)st.resumed, st.n_eoi, st.seconds > 0 ? st.tokens / st.seconds : 0.0);
    }
    pika_ctx_free(c);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    pika_dataset_free(ds);
    free(ids); free(qs); free(tmpl); free(bos); free(eos); free(file_tmpl); free(layers); free(pos);
    cJSON_Delete(kwargs);
    return rc ? 2 : 0;
}
