/* cli_extract.c — the commands that run a model over a dataset's chat prompts:
 * `pika extract` (EOI activations into an activation store) and `pika sample` (k sampled answers per
 * question into rollouts JSONL). Both build prompts the same way, so probes read the activations of
 * exactly the prompts the answers came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/acts.h"
#include "pika/dataset.h"
#include "pika/extract.h"
#include "pika/gguf.h"
#include "pika/openai_client.h"
#include "pika/model.h"
#include "pika/npy.h"
#include "pika/prompt.h"
#include "pika/sample.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static void print_data_options(void) {
    printf("data options (the same for extract and sample):\n"
           "  --data PRESET[:SPLIT]|FILE  a preset (math, gsm8k, ...; see pika data) or a .jsonl/.jsonl.gz/.csv file\n"
           "  --data-dir DIR        where presets live (default $PIKA_DATA, else $PIKA_SHARED/data, else ../shared/data)\n"
           "  --problem-field NAME  question field of a file (default problem)\n"
           "  --id-field NAME       id field of a file (default id; the row number when absent)\n"
           "  --limit N             only the first N questions\n"
           "  --shard I/N           only slice I (0-based) of N equal contiguous slices of the questions (after\n"
           "                        --limit); `pika acts merge` (extract) or cat in shard order (sample) joins them\n"
           "  --threads N           threads (default: all cores)\n"
           "  --prefill f32|bf16|q8 prefill precision: exact F32 (default), BF16 products (AVX512_BF16 CPUs) or\n"
           "                        8-bit integer products for quantized weights (AVX2 CPUs); both faster,   \n"
           "                        hidden states within ~1e-2 relative (README: accuracy); recorded in the store\n"
           "  --resume              continue the output of an interrupted run (it must have been made with the\n"
           "                        same model, prompt and settings)\n"
           "  --force               overwrite a non-empty output (without --resume or --force that is an error)\n"
           "prompt options (the same for extract, sample and generate; see pika prompt):\n%s"
           "environment: PIKA_DATA (preset dir), PIKA_SHARED (the shared dir; presets in $PIKA_SHARED/data)\n",
           pika_prompt_flags_help());
}

/* Everything both commands load: questions, model, tokenizer and the prompt recipe. */
typedef struct {
    const char *model_path, *data, *data_dir, *field, *id_field;
    int threads, resume, force;
    int prefill; /* --prefill: PIKA_PREFILL_* */
    long long limit;
    int shard_i, shard_n; /* --shard I/N; shard_n 0 = none */
    pika_prompt_opts prompt;
    /* loaded */
    pika_dataset *ds;
    int64_t n;
    char **ids, **questions;
    pika_model *m;
    pika_tokenizer *tok;
    pika_ctx *ctx;
    pika_prompt_recipe *recipe;
} run_setup;

/* Consume a shared option at argv[*i]; 1 when it was one, 0 when not. */
static int shared_option(run_setup *r, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    int ar = pika_prompt_flag_arity(a);
    if (ar >= 0) {
        if (ar && *i + 1 >= argc) pika_die("%s: %s needs a value", cmd, a);
        if (pika_prompt_parse_flag(&r->prompt, a, ar ? argv[++*i] : NULL) < 0) pika_die("%s: %s", cmd, pika_last_error());
        return 1;
    }
    const char **slot = NULL;
    if (!strcmp(a, "--model")) slot = &r->model_path;
    else if (!strcmp(a, "--data")) slot = &r->data;
    else if (!strcmp(a, "--data-dir")) slot = &r->data_dir;
    else if (!strcmp(a, "--problem-field")) slot = &r->field;
    else if (!strcmp(a, "--id-field")) slot = &r->id_field;
    if (slot) {
        if (*i + 1 >= argc) pika_die("%s: %s needs a value", cmd, a);
        *slot = argv[++*i];
        return 1;
    }
    if (!strcmp(a, "--prefill")) {
        if (*i + 1 >= argc) pika_die("%s: --prefill needs a value (f32, bf16 or q8)", cmd);
        r->prefill = cli_prefill_value(cmd, argv[++*i]);
        return 1;
    }
    if (!strcmp(a, "--resume")) { r->resume = 1; return 1; }
    if (!strcmp(a, "--force")) { r->force = 1; return 1; }
    if (!strcmp(a, "--shard")) {
        if (*i + 1 >= argc) pika_die("%s: --shard needs a value I/N", cmd);
        const char *v = argv[++*i];
        char *end;
        long si = strtol(v, &end, 10), sn = -1;
        if (end != v && *end == '/') {
            const char *q = end + 1;
            sn = strtol(q, &end, 10);
            if (end == q || *end) sn = -1;
        }
        if (sn < 1 || sn > 1000000 || si < 0 || si >= sn)
            pika_die("%s: --shard must be I/N with 0 <= I < N (e.g. 0/4), got '%s'", cmd, v);
        r->shard_i = (int)si;
        r->shard_n = (int)sn;
        return 1;
    }
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

/* A literal backslash-n in --suffix is almost always a shell quoting mistake. */
static void suffix_note(const char *cmd, const pika_prompt_opts *p) {
    if (p->user_suffix && strstr(p->user_suffix, "\\n"))
        fprintf(stderr, "pika: %s: note: --suffix contains a backslash followed by 'n', not a newline; for a newline write "
                        "--suffix $'\\n...' in the shell, or use --suffix-file FILE\n", cmd);
}

static void setup_data(run_setup *r, const char *cmd) {
    if (r->resume && r->force) pika_die("%s: --resume and --force are exclusive (continue the output, or overwrite it)", cmd);
    suffix_note(cmd, &r->prompt);
    if (pika_dataset_is_preset(r->data)) {
        r->ds = pika_dataset_load_preset(r->data, r->data_dir);
    } else {
        pika_field_map fm;
        memset(&fm, 0, sizeof fm);
        fm.id = r->id_field;
        fm.problem = r->field;
        r->ds = pika_dataset_load_file(r->data, &fm);
    }
    if (!r->ds) pika_die("%s: %s", cmd, pika_last_error());
    r->n = r->ds->n;
    if (r->limit > 0 && r->limit < r->n) r->n = r->limit;
    if (r->n == 0) pika_die("%s: %s holds no questions; nothing to do", cmd, r->data);
    int64_t first = 0; /* --shard I/N: the contiguous slice [n*I/N, n*(I+1)/N), so shards in order = one run */
    if (r->shard_n > 0) {
        first = r->n * r->shard_i / r->shard_n;
        int64_t end = r->n * (r->shard_i + 1) / r->shard_n;
        if (end <= first) pika_die("%s: shard %d/%d of %lld questions is empty (use at most %lld shards)", cmd, r->shard_i, r->shard_n, (long long)r->n, (long long)r->n);
        r->n = end - first;
    }
    r->ids = pika_malloc(sizeof(char *) * (size_t)r->n);
    r->questions = pika_malloc(sizeof(char *) * (size_t)r->n);
    for (int64_t i = 0; i < r->n; i++) {
        r->ids[i] = r->ds->rows[first + i].id;
        r->questions[i] = r->ds->rows[first + i].problem;
        if (!r->questions[i]) pika_die("%s: %s: row %lld has no question text (--problem-field '%s')", cmd, r->data, (long long)(first + i) + 1, r->field);
    }
}

static void setup_load(run_setup *r, const char *cmd) {
    if (!r->model_path || !r->data) pika_die("%s: --model and --data are required (see pika %s --help)", cmd, cmd);
    setup_data(r, cmd);
    r->m = pika_model_load(r->model_path);
    if (!r->m) pika_die("%s: %s", cmd, pika_last_error());
    r->tok = pika_tokenizer_from_gguf(pika_model_gguf(r->m));
    if (!r->tok) pika_die("%s: %s", cmd, pika_last_error());
    r->recipe = pika_prompt_recipe_new(pika_model_gguf(r->m), r->tok, &r->prompt);
    if (!r->recipe) pika_die("%s: %s: %s", cmd, r->model_path, pika_last_error());
    r->ctx = pika_ctx_new(r->m, r->threads);
    cli_prefill_apply(cmd, r->ctx, r->prefill);
}

static void setup_free(run_setup *r) {
    pika_ctx_free(r->ctx);
    pika_prompt_recipe_free(r->recipe);
    pika_tokenizer_free(r->tok);
    pika_model_free(r->m);
    pika_dataset_free(r->ds);
    free(r->ids); free(r->questions);
}

static void setup_init(run_setup *r) {
    memset(r, 0, sizeof *r);
    r->field = "problem";
    r->id_field = "id";
    r->limit = -1;
    pika_prompt_opts_default(&r->prompt);
}

static int parse_list(const char *cmd, const char *s, int32_t **out) {
    int n = pika_parse_int_list(s, out);
    if (n <= 0) pika_die("%s: '%s' is not a list of integers", cmd, s);
    return n;
}

int cmd_extract(int argc, char **argv) {
    run_setup r;
    setup_init(&r);
    pika_eoi_opts eo;
    pika_eoi_opts_default(&eo);
    const char *out = NULL, *layers_s = NULL, *pos_s = NULL, *dtype_s = "f16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: pika extract --model M.gguf --data PRESET|FILE --out DIR [options]\n"
                   "Stores the residual stream at the end-of-instruction tokens of every question's chat prompt.\n"
                   "  --out DIR             activation store (meta.json, ids.txt, layer_XX.npy)\n"
                   "  --layers all|L,L,..   layers to store (0 = embeddings, i = after block i; default all)\n"
                   "  --positions eoi|P,..  negative offsets from the prompt end (default eoi = -n_eoi..-1)\n"
                   "  --dtype f16|f32       storage type (default f16)\n"
                   "  --pack-tokens N       run consecutive prompts together in one forward pass while their tokens\n"
                   "                        after the shared prefix add up to at most N (default 512; 0 or 1: one\n"
                   "                        prompt per pass; a longer prompt gets a pass of its own)\n"
                   "  --no-prefix-cache     run every prompt from its first token (default: the prefix the prompts\n"
                   "                        share, e.g. the template's system turn, is run once and kept cached)\n");
            print_data_options();
            return 0;
        }
        if (!strcmp(a, "--no-prefix-cache")) { eo.no_prefix_cache = 1; continue; }
        if (!strcmp(a, "--pack-tokens")) {
            if (i + 1 >= argc) pika_die("extract: --pack-tokens needs a value");
            const char *v = argv[++i];
            char *end;
            long x = strtol(v, &end, 10);
            if (!*v || *end || x < 0 || x > (1 << 20)) pika_die("extract: --pack-tokens must be an integer in [0, 2^20], got '%s'", v);
            eo.pack_tokens = (int)x;
            continue;
        }
        if (shared_option(&r, "extract", argc, argv, &i)) continue;
        const char **slot = !strcmp(a, "--out") ? &out : !strcmp(a, "--layers") ? &layers_s
                          : !strcmp(a, "--positions") ? &pos_s : !strcmp(a, "--dtype") ? &dtype_s : NULL;
        if (!slot) pika_die("extract: unknown option %s (see pika extract --help)", a);
        if (i + 1 >= argc) pika_die("extract: %s needs a value", a);
        *slot = argv[++i];
    }
    if (!out) pika_die("extract: --out DIR is required");
    if (!strcmp(dtype_s, "f16")) eo.dtype = PIKA_NPY_F16;
    else if (!strcmp(dtype_s, "f32")) eo.dtype = PIKA_NPY_F32;
    else pika_die("extract: --dtype must be f16 or f32");
    int32_t *layers = NULL, *pos = NULL;
    if (layers_s && strcmp(layers_s, "all")) { eo.n_layers = parse_list("extract", layers_s, &layers); eo.layers = layers; }
    if (pos_s && strcmp(pos_s, "eoi")) { eo.n_pos = parse_list("extract", pos_s, &pos); eo.positions = pos; }
    setup_load(&r, "extract");
    eo.resume = r.resume;
    eo.force = r.force;
    eo.model_path = r.model_path;
    pika_eoi_stats st;
    int rc = pika_eoi_extract(r.ctx, r.recipe, r.n, r.ids, r.questions, out, &eo, &st);
    if (rc && st.started && st.done > 0)
        fprintf(stderr, "pika: extract: %s (%lld rows are safely stored in %s; rerun with --resume)\n", pika_last_error(),
                (long long)st.done, out);
    else if (rc)
        fprintf(stderr, "pika: extract: %s\n", pika_last_error());
    else
        fprintf(stderr, "extract: %lld rows in %s (%lld resumed), %d EOI tokens, %.1f prompt tok/s (%lld prompt tokens "
                "run, %lld read from the cached shared prefix)\n", (long long)st.done, out, (long long)st.resumed,
                st.n_eoi, st.seconds > 0 ? (st.tokens + st.tokens_reused) / st.seconds : 0.0, (long long)st.tokens,
                (long long)st.tokens_reused);
    setup_free(&r);
    free(layers);
    free(pos);
    return rc ? 2 : 0;
}

/* pika sample --backend openai: the prompt recipe from the GGUF (or a named template, or none: chat
 * with the server's template), the key from the environment, answers from the server. */
static int sample_remote(run_setup *r, pika_rollout_opts *o, pika_remote_opts *ro, const char *out, const char *api,
                         const char *key_env) {
    if (!out) pika_die("sample: --out ROLLOUTS.jsonl is required");
    if (!r->data) pika_die("sample: --data is required (see pika sample --help)");
    if (!ro->client.base_url) pika_die("sample: --backend openai needs --url http://HOST:PORT/v1");
    if (!ro->api_model) pika_die("sample: --backend openai needs --api-model NAME (the model name the server serves)");
    if (pika_gen_opts_validate(&o->gen)) pika_die("sample: %s", pika_last_error());
    if (o->gen.max_tokens < 1) pika_die("sample: --max-tokens must be >= 1, got %d", o->gen.max_tokens);
    if (api && strcmp(api, "completions") && strcmp(api, "chat"))
        pika_die("sample: --api must be completions or chat, got '%s'", api);
    setup_data(r, "sample");
    pika_gguf *g = NULL;
    if (r->model_path) {
        if (!(g = pika_gguf_open(r->model_path))) pika_die("sample: %s", pika_last_error());
        if (!(r->tok = pika_tokenizer_from_gguf(g))) pika_die("sample: %s: %s", r->model_path, pika_last_error());
    }
    int knows_template = g || r->prompt.template_name || r->prompt.template_file || r->prompt.no_template;
    if (knows_template) {
        r->recipe = pika_prompt_recipe_new(g, r->tok, &r->prompt);
        /* a GGUF without a chat template is fine for chat: the server applies its own */
        int named = r->prompt.template_name || r->prompt.template_file || r->prompt.no_template;
        if (!r->recipe && (named || !api || strcmp(api, "chat"))) pika_die("sample: %s", pika_last_error());
    }
    ro->api = api ? (!strcmp(api, "chat") ? PIKA_OAI_CHAT : PIKA_OAI_COMPLETIONS)
                  : (r->recipe ? PIKA_OAI_COMPLETIONS : PIKA_OAI_CHAT);
    if (ro->api == PIKA_OAI_COMPLETIONS && !r->recipe)
        pika_die("sample: --api completions needs the prompt template: give --model M.gguf, --template NAME or "
                 "--template-file FILE (or use --api chat)");
    const char *key = getenv(key_env);
    ro->client.api_key = key && *key ? key : NULL;
    o->resume = r->resume;
    o->force = r->force;
    o->model_path = r->model_path;
    if (!o->model_name) o->model_name = ro->api_model;
    if (ro->api == PIKA_OAI_COMPLETIONS)
        fprintf(stderr, "sample: %s/completions with prompts rendered by pika (%s; byte-identical to pika extract's)%s\n",
                ro->client.base_url, pika_prompt_recipe_origin(r->recipe), "");
    else
        fprintf(stderr, "sample: %s/chat/completions with messages (the server applies %s template)%s\n",
                ro->client.base_url, r->recipe ? "its own" : "its", "");
    if (ro->client.api_key) fprintf(stderr, "sample: API key from $%s\n", key_env);
    pika_rollout_stats st;
    int rc = pika_rollouts_remote(r->recipe, &r->prompt, r->tok, r->n, r->ids, r->questions, o, ro, out, &st);
    if (rc && st.started && st.written + st.existing > 0)
        fprintf(stderr, "pika: sample: %s (%lld answers in %s are kept; rerun with --resume)\n", pika_last_error(),
                (long long)(st.written + st.existing), out);
    else if (rc)
        fprintf(stderr, "pika: sample: %s\n", pika_last_error());
    else
        fprintf(stderr, "sample: %lld answers written (%lld already there), %.1f generated tok/s\n", (long long)st.written,
                (long long)st.skipped, st.seconds > 0 ? st.tokens_out / st.seconds : 0.0);
    pika_prompt_recipe_free(r->recipe);
    pika_tokenizer_free(r->tok);
    pika_gguf_close(g);
    pika_dataset_free(r->ds);
    free(r->ids);
    free(r->questions);
    return rc ? 2 : 0;
}

int cmd_sample(int argc, char **argv) {
    run_setup r;
    setup_init(&r);
    pika_rollout_opts o;
    pika_rollout_opts_default(&o);
    const char *out = NULL, *backend = "local", *api = NULL, *key_env = "OPENAI_API_KEY";
    pika_remote_opts ro;
    pika_remote_opts_default(&ro);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--one-per-request")) { ro.one_per_request = 1; continue; }
        if (!strcmp(a, "--pika-seeds")) { ro.pika_seeds = 1; continue; }
        if (!strcmp(a, "--help")) {
            printf("usage: pika sample --model M.gguf --data PRESET|FILE --out ROLLOUTS.jsonl [options]\n"
                   "Samples k answers per question with the local engine; writes one JSON line per answer:\n"
                   "{id, sample, text, tokens_in, tokens_out, model, finish}  (finish: stop | length)\n"
                   "and the run's provenance (model, prompt recipe, sampling) to ROLLOUTS.jsonl.meta.json.\n"
                   "Each (question, sample) draws with its own seed derived from --seed and the question id.\n"
                   "  -k N                  answers per question (default 1)\n"
                   "  --max-tokens N        generated tokens per answer, >= 1 (default 256)\n"
                   "%s"
                   "  --model-name NAME     \"model\" field of the rollouts (default: the GGUF file name)\n"
                   "remote answers from an OpenAI-compatible server (vLLM, SGLang, llama-server, pika serve-model, ...):\n"
                   "  --backend local|openai  where answers come from (default local)\n"
                   "  --url URL             the server's API base, e.g. http://127.0.0.1:8000/v1\n"
                   "  --api-model NAME      the model name the server serves (the request's \"model\")\n"
                   "  --api completions|chat  /v1/completions with the prompt rendered by pika (byte-identical to\n"
                   "                        what pika extract reads; the default when pika knows the template: from\n"
                   "                        --model M.gguf, --template or --template-file), or /v1/chat/completions\n"
                   "                        with messages (the server applies its template; the default otherwise)\n"
                   "  --model M.gguf        optional here: the template, and token counts when the server sends no usage\n"
                   "  --concurrency N       requests in flight at most (default 8)\n"
                   "  --retries N           retries of a failing request: 429, 5xx, timeouts (default 6)\n"
                   "  --request-timeout S   seconds per attempt (default 600)\n"
                   "  --api-key-env NAME    environment variable holding the API key (default OPENAI_API_KEY;\n"
                   "                        sent as Authorization: Bearer, never written anywhere)\n"
                   "  --one-per-request     k requests of n=1 per question instead of one with n=k\n"
                   "  --extra-body JSON     merged into every request, e.g. '{\"add_special_tokens\": false}' (vLLM)\n"
                   "  --pika-seeds          (pika serve-model) the server seeds each sample as local sample does, so\n"
                   "                        the answers equal a local run's\n",
                   pika_gen_flags_help());
            print_data_options();
            return 0;
        }
        if (shared_option(&r, "sample", argc, argv, &i)) continue;
        if (i + 1 >= argc) pika_die("sample: unknown option %s or missing value (see pika sample --help)", a);
        int g = pika_gen_parse_flag(&o.gen, a, argv[i + 1]);
        if (g < 0) pika_die("sample: %s", pika_last_error());
        if (g > 0) { i++; continue; }
        const char *v = argv[++i];
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "-k")) {
            char *end;
            long k = strtol(v, &end, 10);
            if (!*v || *end || k < 1 || k > 1000000) pika_die("sample: -k must be an integer >= 1, got '%s'", v);
            o.k = (int)k;
        } else if (!strcmp(a, "--model-name")) o.model_name = v;
        else if (!strcmp(a, "--backend")) backend = v;
        else if (!strcmp(a, "--url")) ro.client.base_url = v;
        else if (!strcmp(a, "--api-model")) ro.api_model = v;
        else if (!strcmp(a, "--api")) api = v;
        else if (!strcmp(a, "--api-key-env")) key_env = v;
        else if (!strcmp(a, "--extra-body")) ro.extra_body = v;
        else if (!strcmp(a, "--concurrency") || !strcmp(a, "--retries")) {
            char *end;
            long x = strtol(v, &end, 10);
            int lo = a[2] == 'c' ? 1 : 0;
            if (!*v || *end || x < lo || x > 100000) pika_die("sample: %s must be an integer >= %d, got '%s'", a, lo, v);
            if (a[2] == 'c') ro.client.concurrency = (int)x;
            else ro.client.max_retries = (int)x;
        } else if (!strcmp(a, "--request-timeout")) {
            char *end;
            double x = strtod(v, &end);
            if (!*v || *end || !(x > 0) || x > 1e7) pika_die("sample: --request-timeout must be a number of seconds > 0, got '%s'", v);
            ro.client.timeout_s = x;
        } else pika_die("sample: unknown option %s (see pika sample --help)", a);
    }
    if (strcmp(backend, "local") && strcmp(backend, "openai"))
        pika_die("sample: --backend must be local or openai, got '%s'", backend);
    if (!strcmp(backend, "openai")) return sample_remote(&r, &o, &ro, out, api, key_env);
    if (ro.client.base_url || ro.api_model || api)
        pika_die("sample: --url, --api-model and --api need --backend openai");
    if (!out) pika_die("sample: --out ROLLOUTS.jsonl is required");
    if (pika_gen_opts_validate(&o.gen)) pika_die("sample: %s", pika_last_error());
    if (o.gen.max_tokens < 1) pika_die("sample: --max-tokens must be >= 1, got %d", o.gen.max_tokens);
    setup_load(&r, "sample");
    o.resume = r.resume;
    o.force = r.force;
    o.model_path = r.model_path;
    if (!o.model_name) {
        const char *b = strrchr(r.model_path, '/');
        o.model_name = b ? b + 1 : r.model_path;
    }
    pika_rollout_stats st;
    int rc = pika_rollouts(r.ctx, r.tok, r.recipe, r.n, r.ids, r.questions, &o, out, &st);
    if (rc && st.started && st.written + st.existing > 0)
        fprintf(stderr, "pika: sample: %s (%lld answers in %s are kept; rerun with --resume)\n", pika_last_error(),
                (long long)(st.written + st.existing), out);
    else if (rc)
        fprintf(stderr, "pika: sample: %s\n", pika_last_error());
    else
        fprintf(stderr, "sample: %lld answers written (%lld already there), %.1f generated tok/s\n", (long long)st.written,
                (long long)st.skipped, st.seconds > 0 ? st.tokens_out / st.seconds : 0.0);
    setup_free(&r);
    return rc ? 2 : 0;
}
