/* cli_engine.c — `pika info`, `pika forward`, `pika generate`: thin wrappers over model.h, prompt.h and generate.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/generate.h"
#include "pika/gguf.h"
#include "pika/model.h"
#include "pika/npy.h"
#include "pika/prompt.h"
#include "pika/quant.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

/* Value of option argv[*i] ("--name VALUE"); dies when the value is missing. */
static const char *opt_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) pika_die("%s: option %s needs a value", argv[0], argv[*i]);
    return argv[++*i];
}

static long opt_long(const char *cmd, const char *name, const char *v, long lo, long hi) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) pika_die("%s: %s must be an integer in [%ld, %ld], got '%s'", cmd, name, lo, hi, v);
    return x;
}

/* ------------------------------------------------------------------ info */

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: pika info MODEL.gguf\n");
            return 0;
        }
        if (!strcmp(argv[i], "--model")) path = opt_value(argc, argv, &i);
        else if (argv[i][0] == '-') pika_die("info: unknown option %s", argv[i]);
        else path = argv[i];
    }
    if (!path) pika_die("info: usage: pika info MODEL.gguf");
    pika_gguf *g = pika_gguf_open(path);
    if (!g) pika_die("%s", pika_last_error());
    char *arch = pika_gguf_get_string(g, "general.architecture");
    char *name = pika_gguf_get_string(g, "general.name");
    printf("file:          %s\n", path);
    printf("size:          %.2f MiB (GGUF v%u, %llu metadata keys, %llu tensors)\n", g->map.size / 1048576.0, g->version,
           (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
    printf("name:          %s\n", name ? name : "-");
    printf("architecture:  %s\n", arch ? arch : "-");
    /* tensor types histogram + parameter count */
    long long count[PIKA_TYPE_COUNT] = {0}, bytes[PIKA_TYPE_COUNT] = {0}, params = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        uint32_t t = g->tensors[i].type;
        if (t < PIKA_TYPE_COUNT) { count[t]++; bytes[t] += (long long)g->tensors[i].nbytes; }
        params += g->tensors[i].n_elements;
    }
    printf("parameters:    %lld (%.2f M)\n", params, params / 1e6);
    printf("tensor types: ");
    for (int t = 0; t < PIKA_TYPE_COUNT; t++)
        if (count[t]) printf(" %s×%lld (%.1f MiB)", pika_type_name((uint32_t)t), count[t], bytes[t] / 1048576.0);
    printf("\n");
    pika_model *m = arch ? pika_model_load(path) : NULL;
    if (m) {
        const pika_hparams *hp = pika_model_hparams(m);
        printf("layers:        %d\n", hp->n_layer);
        printf("n_embd:        %d\n", hp->n_embd);
        printf("heads:         %d (kv %d, head_dim %d)\n", hp->n_head, hp->n_head_kv, hp->head_dim);
        printf("n_ff:          %d\n", hp->n_ff);
        printf("n_vocab:       %d\n", hp->n_vocab);
        printf("context:       %d (trained)\n", hp->n_ctx_train);
        printf("rope:          %s, base %g%s\n", hp->rope_neox ? "neox" : "normal", hp->rope_base,
               hp->rope_freq_scale != 1.0f ? ", linear scaling" : "");
        printf("rms eps:       %g\n", hp->rms_eps);
        printf("output:        %s\n", hp->tied_output ? "tied to token_embd" : "output.weight");
        printf("fingerprint:   %s\n", pika_model_fingerprint(m));
        pika_model_free(m);
    } else if (arch) {
        printf("runnable:      no (%s)\n", pika_last_error());
    }
    char *tm = pika_gguf_get_string(g, "tokenizer.ggml.model");
    char *pre = pika_gguf_get_string(g, "tokenizer.ggml.pre");
    const pika_gguf_value *toks = pika_gguf_get_array(g, "tokenizer.ggml.tokens");
    printf("tokenizer:     %s%s%s, %llu tokens\n", tm ? tm : "none", pre ? " / pre " : "", pre ? pre : "",
           toks ? (unsigned long long)toks->v.arr.n : 0ull);
    printf("chat template: %s\n", pika_gguf_get(g, "tokenizer.chat_template") ? "present" : "absent");
    free(tm); free(pre); free(arch); free(name);
    pika_gguf_close(g);
    return 0;
}

/* --------------------------------------------------------------- forward */

int cli_prefill_value(const char *cmd, const char *v) {
    int mode = pika_prefill_parse(v);
    if (mode < 0) pika_die("%s: --prefill must be f32, bf16 or q8, got '%s'", cmd, v ? v : "");
    return mode;
}

void cli_prefill_apply(const char *cmd, pika_ctx *c, int mode) {
    if (mode != PIKA_PREFILL_F32 && pika_ctx_set_prefill(c, mode))
        pika_die("%s: --prefill %s: %s", cmd, pika_prefill_name(mode), pika_last_error());
}

int cmd_forward(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL;
    int threads = 0, bf16 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: pika forward --model M.gguf --ids \"ID ID ...\" --out DIR [--threads N] [--prefill f32|bf16|q8]\n"
                   "writes DIR/hidden.npy float32 [n_layer+1, n_tokens, n_embd] and DIR/logits.npy float32 [n_vocab]\n");
            return 0;
        }
        if (!strcmp(argv[i], "--model")) model = opt_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--ids")) ids_s = opt_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--out")) out = opt_value(argc, argv, &i);
        else if (!strcmp(argv[i], "--threads")) threads = (int)opt_long("forward", "--threads", opt_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(argv[i], "--prefill")) bf16 = cli_prefill_value("forward", opt_value(argc, argv, &i));
        else pika_die("forward: unknown option %s", argv[i]);
    }
    if (!model || !ids_s || !out) pika_die("forward: usage: pika forward --model M.gguf --ids \"ID ...\" --out DIR");
    int32_t *ids;
    int n = pika_parse_int_list(ids_s, &ids);
    if (n < 0) pika_die("forward: --ids: %s", pika_last_error());
    if (n == 0) pika_die("forward: --ids is empty");
    pika_model *m = pika_model_load(model);
    if (!m) pika_die("%s", pika_last_error());
    const pika_hparams *hp = pika_model_hparams(m);
    pika_ctx *c = pika_ctx_new(m, threads);
    cli_prefill_apply("forward", c, bf16);
    float *hidden = pika_malloc(sizeof(float) * (size_t)(hp->n_layer + 1) * (size_t)n * (size_t)hp->n_embd);
    float *logits = pika_malloc(sizeof(float) * (size_t)hp->n_vocab);
    pika_forward_req req = {-1, NULL, -1, NULL, hidden, logits};
    if (pika_forward(c, ids, n, &req)) pika_die("forward: %s", pika_last_error());
    if (pika_mkdir_p(out)) pika_die("%s", pika_last_error());
    char path[4096];
    int64_t hshape[3] = {hp->n_layer + 1, n, hp->n_embd}, lshape[1] = {hp->n_vocab};
    snprintf(path, sizeof path, "%s/hidden.npy", out);
    if (pika_npy_write_f32(path, hidden, 3, hshape)) pika_die("%s", pika_last_error());
    snprintf(path, sizeof path, "%s/logits.npy", out);
    if (pika_npy_write_f32(path, logits, 1, lshape)) pika_die("%s", pika_last_error());
    free(hidden); free(logits); free(ids);
    pika_ctx_free(c);
    pika_model_free(m);
    return 0;
}

/* -------------------------------------------------------------- generate */

static int print_piece(const char *piece, size_t len, void *user) {
    (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *prompt = NULL, *user = NULL;
    int threads = 0, print_ids = 0, prefill = 0;
    pika_gen_opts go;
    pika_gen_opts_default(&go);
    go.max_tokens = 32;
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: pika generate --model M.gguf (--ids \"ID ...\" | --prompt TEXT | --user TEXT [--system TEXT])\n"
                   "       [-n N] [--temperature T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--stop TEXT]...\n"
                   "       [--threads N] [--prefill f32|bf16|q8] [--print-ids] [--ignore-eos] [prompt options]\n"
                   "  --ids      token ids used as given (no BOS added)\n"
                   "  --prompt   raw text, tokenized with BOS as the vocab asks\n"
                   "  --user     a user message rendered with the chat template (the prompt recipe of extract/sample)\n"
                   "  -n, --max-tokens N    tokens to generate at most (default 32)\n"
                   "%s"
                   "  --ignore-eos          do not stop at end-of-generation tokens\n"
                   "  prints the generated text as it is decoded, or with --print-ids the generated ids on one line\n"
                   "prompt options (with --user):\n%s",
                   pika_gen_flags_help(), pika_prompt_flags_help());
            return 0;
        }
        int ar = pika_prompt_flag_arity(a);
        if (ar >= 0) {
            if (ar && i + 1 >= argc) pika_die("generate: option %s needs a value", a);
            if (pika_prompt_parse_flag(&po, a, ar ? argv[++i] : NULL) < 0) pika_die("generate: %s", pika_last_error());
            continue;
        }
        int g = pika_gen_parse_flag(&go, a, i + 1 < argc ? argv[i + 1] : NULL);
        if (g < 0) pika_die("generate: %s", pika_last_error());
        if (g > 0) { i++; continue; }
        if (!strcmp(a, "--model")) model = opt_value(argc, argv, &i);
        else if (!strcmp(a, "--ids")) ids_s = opt_value(argc, argv, &i);
        else if (!strcmp(a, "--prompt")) prompt = opt_value(argc, argv, &i);
        else if (!strcmp(a, "--user")) user = opt_value(argc, argv, &i);
        else if (!strcmp(a, "--threads")) threads = (int)opt_long("generate", a, opt_value(argc, argv, &i), 1, 1024);
        else if (!strcmp(a, "--prefill")) prefill = cli_prefill_value("generate", opt_value(argc, argv, &i));
        else if (!strcmp(a, "--print-ids")) print_ids = 1;
        else if (!strcmp(a, "--ignore-eos")) go.ignore_eog = 1;
        else pika_die("generate: unknown option %s", a);
    }
    if (!model || (!!ids_s + !!prompt + !!user) != 1)
        pika_die("generate: usage: pika generate --model M.gguf (--ids \"ID ...\" | --prompt TEXT | --user TEXT) -n N");
    if (po.system && !user) pika_die("generate: --system goes with --user");
    if (!user && (po.template_name || po.template_file || po.no_template || po.user_prefix || po.user_suffix ||
                  po.user_suffix_file || po.kwargs_json || po.date || po.bos_token || po.eos_token || !po.add_generation_prompt))
        pika_die("generate: prompt options (--template, --suffix, --kwargs, ...) go with --user");
    if (pika_gen_opts_validate(&go)) pika_die("generate: %s", pika_last_error());
    pika_model *m = pika_model_load(model);
    if (!m) pika_die("generate: %s", pika_last_error());
    /* the tokenizer is needed for text in or out, and for end-of-generation ids */
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    if (!tok && (prompt || user || !print_ids || go.n_stop)) pika_die("generate: %s", pika_last_error());
    int32_t *ids = NULL;
    int n;
    if (ids_s) {
        n = pika_parse_int_list(ids_s, &ids);
        if (n < 0) pika_die("generate: --ids: %s", pika_last_error());
    } else {
        if (prompt) po.no_template = 1;
        pika_prompt_recipe *rec = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po);
        if (!rec) pika_die("generate: %s: %s%s", model, pika_last_error(), prompt ? "" : " (or use --prompt)");
        pika_prompt p;
        if (pika_prompt_build(rec, prompt ? prompt : user, &p)) pika_die("generate: %s", pika_last_error());
        ids = p.ids;
        n = p.n_ids;
        p.ids = NULL;
        pika_prompt_free(&p);
        pika_prompt_recipe_free(rec);
    }
    if (n == 0) pika_die("generate: the prompt is empty");
    pika_ctx *c = pika_ctx_new(m, threads);
    cli_prefill_apply("generate", c, prefill);
    pika_gen_result res;
    int rc = pika_generate(c, tok, ids, n, &go, print_ids ? NULL : print_piece, NULL, &res);
    if (print_ids)
        for (int k = 0; k < res.n_ids; k++) printf(k ? " %d" : "%d", res.ids[k]);
    printf("\n");
    if (rc) pika_die("generate: %s", pika_last_error());
    pika_gen_result_free(&res);
    free(ids);
    pika_tokenizer_free(tok);
    pika_ctx_free(c);
    pika_model_free(m);
    return 0;
}
