/* sample_remote.c — `pika sample --backend openai`: k answers per question from an OpenAI-compatible
 * server, written as the same rollouts JSONL + provenance sidecar as the local backend (sample.h). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pika/chat.h"
#include "pika/rollout.h"
#include "pika/sample.h"
#include "pika/util.h"
#include "pipeline/sample_internal.h"

void pika_remote_opts_default(pika_remote_opts *r) {
    memset(r, 0, sizeof *r);
    pika_oai_opts_default(&r->client);
    r->api = PIKA_OAI_COMPLETIONS;
}

typedef struct {
    char *text, *reasoning, *finish;
    int64_t tokens_in, tokens_out;
    double latency;
    int have;
} answer;

typedef struct {
    int64_t q;
    int *samples;      /* the samples this run asks for */
    int n_samples;
    answer *ans;       /* by position in samples */
    int outstanding;   /* requests not finished */
    int failed;
    char *error;
} question;

typedef struct {
    question *qs;
    int first;         /* position in qs->samples of the first answer */
    int n;             /* answers asked for */
} request_ctx;

typedef struct {
    const pika_prompt_recipe *recipe;
    const pika_prompt_opts *popts;
    const pika_tokenizer *tok;
    char *const *ids, *const *questions;
    const pika_rollout_opts *o;
    const pika_remote_opts *ro;
    const cJSON *extra;
    pika_oai_client *client;
    FILE *out;
    const char *out_path;
    pika_rollout_stats *st;
    pika_progress prog;
    int write_failed;
    int64_t n_failed;
    int64_t failed_in_a_row; /* questions that failed since the last one that succeeded */
    int stop;                /* too many in a row: submit nothing more */
    int no_n;                /* the server refused n > 1: one request per sample from now on */
    char *first_failure;
} run;

/* A server that fails this many questions in a row (wrong model name, wrong URL path, out of
 * credit...) stops the run instead of failing every remaining question one by one. */
#define MAX_FAILED_IN_A_ROW 20
/* failed questions named on stderr at most (all are counted) */
#define MAX_REPORTED 20

static const char *api_name(pika_oai_endpoint e) { return e == PIKA_OAI_CHAT ? "chat" : "completions"; }

static cJSON *remote_meta(int k, void *u) {
    run *R = u;
    const pika_rollout_opts *o = R->o;
    const pika_remote_opts *ro = R->ro;
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", "pika-rollouts");
    cJSON_AddNumberToObject(meta, "version", 1);
    cJSON *mj = cJSON_AddObjectToObject(meta, "model");
    const char *mp = o->model_path ? o->model_path : "";
    const char *base = strrchr(mp, '/');
    cJSON_AddStringToObject(mj, "file", base ? base + 1 : mp);
    char fp[1024];
    snprintf(fp, sizeof fp, "openai/%s/%s", api_name(ro->api), ro->api_model);
    cJSON_AddStringToObject(mj, "fingerprint", fp);
    cJSON_AddStringToObject(mj, "architecture", "remote");
    cJSON_AddStringToObject(mj, "name", o->model_name ? o->model_name : ro->api_model);
    cJSON_AddStringToObject(mj, "backend", "openai");
    cJSON_AddStringToObject(mj, "api", api_name(ro->api));
    cJSON_AddStringToObject(mj, "api_model", ro->api_model);
    cJSON_AddStringToObject(mj, "url", ro->client.base_url);
    if (R->recipe) {
        cJSON_AddItemToObject(meta, "prompt", pika_prompt_recipe_provenance(R->recipe));
    } else {
        cJSON *p = cJSON_AddObjectToObject(meta, "prompt");
        cJSON_AddStringToObject(p, "template", "server");
        cJSON_AddStringToObject(p, "template_fingerprint", "none");
        if (R->popts->system) cJSON_AddStringToObject(p, "system", R->popts->system);
        else cJSON_AddNullToObject(p, "system");
        cJSON_AddStringToObject(p, "user_suffix", R->popts->user_suffix ? R->popts->user_suffix : "");
        cJSON_AddStringToObject(p, "template_source", "server");
        cJSON_AddStringToObject(p, "user_prefix", R->popts->user_prefix ? R->popts->user_prefix : "");
    }
    cJSON *sj = pika_gen_opts_json(&o->gen);
    /* who derives the per-sample seed: pika (one per request) or the server ("pika": {"id"}) */
    cJSON_AddStringToObject(sj, "seeds", ro->pika_seeds ? "server-pika" : "request");
    cJSON_AddItemToObject(meta, "sampling", sj);
    cJSON_AddNumberToObject(meta, "k", k);
    return meta;
}

static char *user_text(const pika_prompt_opts *p, const char *q) {
    pika_buf b = {0};
    pika_buf_puts(&b, p->user_prefix ? p->user_prefix : "");
    pika_buf_puts(&b, q);
    pika_buf_puts(&b, p->user_suffix ? p->user_suffix : "");
    return b.s ? b.s : pika_strdup("");
}

/* The request body of n answers to question q, the first being sample s0. NULL + error. */
static char *request_body(run *R, int64_t q, int n, int s0) {
    uint64_t seed = R->ro->pika_seeds ? R->o->gen.sampling.seed : pika_rollout_seed(R->o->gen.sampling.seed, R->ids[q], s0);
    const pika_gen_opts *g = &R->o->gen;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", R->ro->api_model);
    if (R->ro->api == PIKA_OAI_COMPLETIONS) {
        size_t len;
        char *p = pika_prompt_render(R->recipe, R->questions[q], &len);
        if (!p) { cJSON_Delete(b); return NULL; }
        if (strlen(p) != len) {
            free(p);
            cJSON_Delete(b);
            pika_set_error("the rendered prompt contains a NUL byte");
            return NULL;
        }
        cJSON_AddStringToObject(b, "prompt", p);
        free(p);
    } else {
        cJSON *m;
        if (R->recipe) {
            m = pika_prompt_messages(R->recipe, R->questions[q]);
        } else {
            char *u = user_text(R->popts, R->questions[q]);
            m = pika_chat_messages(R->popts->system, u);
            free(u);
        }
        cJSON_AddItemToObject(b, "messages", m);
    }
    cJSON_AddNumberToObject(b, "max_tokens", g->max_tokens);
    cJSON_AddNumberToObject(b, "temperature", g->sampling.temperature);
    cJSON_AddNumberToObject(b, "top_p", g->sampling.top_p);
    if (g->sampling.top_k > 0) cJSON_AddNumberToObject(b, "top_k", g->sampling.top_k);
    if (g->sampling.min_p > 0) cJSON_AddNumberToObject(b, "min_p", g->sampling.min_p);
    /* 53 bits: JSON numbers are doubles, and servers take the seed as a (signed) 64-bit integer */
    cJSON_AddNumberToObject(b, "seed", (double)(seed & ((1ull << 53) - 1)));
    cJSON_AddNumberToObject(b, "n", n);
    if (R->ro->pika_seeds) {
        cJSON *pk = cJSON_AddObjectToObject(b, "pika");
        cJSON_AddStringToObject(pk, "id", R->ids[q]);
        cJSON_AddNumberToObject(pk, "first_sample", s0);
    }
    if (g->n_stop) {
        cJSON *s = cJSON_AddArrayToObject(b, "stop");
        for (int i = 0; i < g->n_stop; i++) cJSON_AddItemToArray(s, cJSON_CreateString(g->stop[i]));
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, R->extra) {
        cJSON_DeleteItemFromObjectCaseSensitive(b, it->string);
        cJSON_AddItemToObject(b, it->string, cJSON_Duplicate(it, 1));
    }
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    return s;
}

static void on_done(uint64_t tag, pika_oai_result *res, void *user);

static int submit(run *R, question *qs, int first, int n) {
    char *body = request_body(R, qs->q, n, qs->samples[first]);
    if (!body) return pika_error_context("question %s", R->ids[qs->q]);
    request_ctx *rc = pika_malloc(sizeof *rc);
    rc->qs = qs;
    rc->first = first;
    rc->n = n;
    int e = pika_oai_submit(R->client, R->ro->api, body, (uint64_t)(uintptr_t)rc, on_done, NULL, R);
    free(body);
    if (e) { free(rc); return -1; }
    qs->outstanding++;
    return 0;
}

static int64_t count_tokens(const pika_tokenizer *tok, const char *a, const char *b) {
    if (!tok) return -1;
    int64_t n = 0;
    const char *parts[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        if (!parts[i] || !*parts[i]) continue;
        int32_t *ids = NULL;
        int k = pika_tokenize(tok, parts[i], strlen(parts[i]), false, false, &ids);
        free(ids);
        if (k < 0) return -1;
        n += k;
    }
    return n;
}

static int64_t prompt_tokens(run *R, int64_t q) {
    if (!R->tok || !R->recipe) return -1;
    pika_prompt p;
    if (pika_prompt_build(R->recipe, R->questions[q], &p)) return -1;
    int64_t n = p.n_ids;
    pika_prompt_free(&p);
    return n;
}

static void question_free(question *qs) {
    for (int i = 0; i < qs->n_samples; i++) {
        free(qs->ans[i].text);
        free(qs->ans[i].reasoning);
        free(qs->ans[i].finish);
    }
    free(qs->ans);
    free(qs->samples);
    free(qs->error);
    free(qs);
}

static void question_finish(run *R, question *qs) {
    const char *id = R->ids[qs->q];
    if (qs->failed) {
        if (R->n_failed < MAX_REPORTED)
            fprintf(stderr, "pika: sample: question %s skipped: %s (rerun with --resume to complete it)\n", id,
                    qs->error ? qs->error : "request failed");
        else if (R->n_failed == MAX_REPORTED)
            fprintf(stderr, "pika: sample: more questions failed; not naming each (the count follows at the end)\n");
        R->n_failed++;
        if (++R->failed_in_a_row >= MAX_FAILED_IN_A_ROW && !R->stop) {
            R->stop = 1;
            fprintf(stderr, "pika: sample: %d questions in a row failed; stopping (last: %s: %s)\n", MAX_FAILED_IN_A_ROW,
                    id, qs->error ? qs->error : "");
        }
        if (!R->first_failure) {
            size_t l = strlen(id) + strlen(qs->error ? qs->error : "") + 8;
            R->first_failure = pika_malloc(l);
            snprintf(R->first_failure, l, "%s: %s", id, qs->error ? qs->error : "");
        }
        question_free(qs);
        return;
    }
    R->failed_in_a_row = 0;
    if (R->write_failed) { question_free(qs); return; }
    pika_buf lines = {0};
    int64_t toks = 0;
    for (int i = 0; i < qs->n_samples; i++) {
        answer *a = &qs->ans[i];
        pika_rollout_rec r = {.id = (char *)id, .sample = qs->samples[i], .text = a->text,
                              .tokens_in = a->tokens_in >= 0 ? a->tokens_in : 0,
                              .tokens_out = a->tokens_out >= 0 ? a->tokens_out : 0,
                              .model = (char *)(R->o->model_name ? R->o->model_name : R->ro->api_model),
                              .finish = a->finish ? a->finish : "stop", .correct = -1};
        char *line = pika_rollout_rec_json(&r);
        cJSON *j = cJSON_Parse(line);
        free(line);
        cJSON_AddNumberToObject(j, "latency_s", (double)(int64_t)(a->latency * 1000 + 0.5) / 1000);
        if (a->reasoning) cJSON_AddStringToObject(j, "reasoning_content", a->reasoning);
        line = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        pika_buf_puts(&lines, line);
        pika_buf_addc(&lines, '\n');
        free(line);
        toks += r.tokens_out;
    }
    /* one write per question: a kill leaves at most a torn last line, which resume cuts off */
    if (fwrite(lines.s, 1, lines.n, R->out) != lines.n || fflush(R->out) != 0) {
        R->write_failed = 1;
        pika_set_error("cannot write %s", R->out_path);
    } else {
        R->st->written += qs->n_samples;
        R->st->tokens_out += toks;
        pika_progress_update(&R->prog, R->st->written + R->st->skipped);
    }
    free(lines.s);
    question_free(qs);
}

static void on_done(uint64_t tag, pika_oai_result *res, void *user) {
    run *R = user;
    request_ctx *rc = (request_ctx *)(uintptr_t)tag;
    question *qs = rc->qs;
    qs->outstanding--;
    if (!res->ok && rc->n > 1 && (res->status == 400 || res->status == 422) && !qs->failed) {
        /* the server refuses n > 1 (OpenAI caps n; some servers take no n): one request per sample */
        if (!R->no_n)
            fprintf(stderr, "pika: sample: note: the server refused n=%d (%s); sending one request per sample\n", rc->n,
                    res->error ? res->error : "");
        R->no_n = 1;
        for (int i = 0; i < rc->n; i++)
            if (submit(R, qs, rc->first + i, 1)) {
                qs->failed = 1;
                qs->error = pika_strdup(pika_last_error());
                break;
            }
    } else if (!res->ok || res->n_choices == 0) {
        if (!qs->failed) {
            qs->failed = 1;
            qs->error = pika_strdup(res->ok ? "the response has no choices" : res->error ? res->error : "request failed");
        }
    } else if (!qs->failed) {
        int got = res->n_choices < rc->n ? res->n_choices : rc->n;
        int64_t tin = res->prompt_tokens >= 0 ? res->prompt_tokens : prompt_tokens(R, qs->q);
        for (int i = 0; i < got; i++) {
            pika_oai_choice *c = &res->choices[i];
            answer *a = &qs->ans[rc->first + i];
            a->text = c->text;
            c->text = NULL;
            a->reasoning = c->reasoning;
            c->reasoning = NULL;
            a->finish = c->finish;
            c->finish = NULL;
            a->tokens_in = tin;
            if (res->n_choices == 1 && res->completion_tokens >= 0) a->tokens_out = res->completion_tokens;
            else if ((a->tokens_out = count_tokens(R->tok, a->text, a->reasoning)) < 0 && res->completion_tokens >= 0)
                a->tokens_out = res->completion_tokens / rc->n + (i < res->completion_tokens % rc->n);
            a->latency = res->latency_s;
            a->have = 1;
        }
        /* a server that ignores n (llama-server, some APIs): the rest one request each */
        for (int i = got; i < rc->n; i++)
            if (submit(R, qs, rc->first + i, 1)) {
                qs->failed = 1;
                qs->error = pika_strdup(pika_last_error());
                break;
            }
    }
    free(rc);
    if (qs->outstanding == 0) question_finish(R, qs);
}

int pika_rollouts_remote(const pika_prompt_recipe *recipe, const pika_prompt_opts *prompt_opts, const pika_tokenizer *tok,
                         int64_t n, char *const *ids, char *const *questions, const pika_rollout_opts *o,
                         const pika_remote_opts *ro, const char *out_path, pika_rollout_stats *st) {
    memset(st, 0, sizeof *st);
    if (n <= 0) return pika_set_error("no questions to sample (the data is empty)");
    if (o->k < 1) return pika_set_error("k must be >= 1, got %d", o->k);
    if (o->gen.max_tokens < 1) return pika_set_error("max tokens must be >= 1, got %d", o->gen.max_tokens);
    if (pika_gen_opts_validate(&o->gen)) return -1;
    if (!ro->api_model || !*ro->api_model) return pika_set_error("the server's model name is required (--api-model NAME)");
    if (ro->api == PIKA_OAI_COMPLETIONS && !recipe)
        return pika_set_error("/v1/completions needs a prompt pika renders (give --model M.gguf or --template NAME), "
                              "or use --api chat");
    if (!recipe && !prompt_opts) return pika_set_error("no prompt recipe");
    cJSON *extra = NULL;
    if (ro->extra_body) {
        extra = cJSON_Parse(ro->extra_body);
        if (!cJSON_IsObject(extra)) {
            cJSON_Delete(extra);
            return pika_set_error("--extra-body must be a JSON object, got '%s'", ro->extra_body);
        }
    }
    run R;
    memset(&R, 0, sizeof R);
    R.recipe = recipe;
    R.popts = prompt_opts;
    R.tok = tok;
    R.ids = ids;
    R.questions = questions;
    R.o = o;
    R.ro = ro;
    R.extra = extra;
    R.out_path = out_path;
    R.st = st;
    int rc = -1;
    pika_strmap done;
    pika_strmap_init(&done);
    R.client = pika_oai_client_new(&ro->client);
    if (!R.client) goto out;
    R.out = pika__sample_open(out_path, o, remote_meta, &R, &done, st);
    if (!R.out) goto out;
    pika_progress_begin(&R.prog, "sample", n * o->k, 0);
    double t0 = pika_now();
    int64_t cap = 4 * (int64_t)(ro->client.concurrency > 0 ? ro->client.concurrency : 1);
    char key[4096];
    for (int64_t q = 0; q < n && !R.write_failed && !R.stop; q++) {
        question *qs = pika_calloc(1, sizeof *qs);
        qs->q = q;
        qs->samples = pika_malloc(sizeof(int) * (size_t)o->k);
        for (int s = 0; s < o->k; s++) {
            snprintf(key, sizeof key, "%s\t%d", ids[q], s);
            if (pika_strmap_get(&done, key) >= 0) st->skipped++;
            else qs->samples[qs->n_samples++] = s;
        }
        if (!qs->n_samples) { question_free(qs); continue; }
        qs->ans = pika_calloc((size_t)qs->n_samples, sizeof *qs->ans);
        int e = 0;
        if (qs->n_samples == o->k && o->k > 1 && !ro->one_per_request && !R.no_n) {
            e = submit(&R, qs, 0, o->k);
        } else {
            for (int i = 0; i < qs->n_samples && !e; i++) e = submit(&R, qs, i, 1);
        }
        if (e) {
            if (qs->outstanding == 0) question_free(qs);
            else { qs->failed = 1; qs->error = pika_strdup(pika_last_error()); }
            pika_error_context("question %s", ids[q]);
            goto drain;
        }
        while (pika_oai_pending(R.client) >= cap)
            if (pika_oai_step(R.client, 1000)) goto drain;
    }
    if (pika_oai_run(R.client)) goto out;
    pika_progress_end(&R.prog, st->written + st->skipped);
    st->seconds = pika_now() - t0;
    st->failed = R.n_failed;
    if (R.write_failed) goto out;
    if (R.n_failed) {
        pika_set_error("%lld question%s failed and %s skipped%s (first: %s); rerun with --resume to complete them",
                       (long long)R.n_failed, R.n_failed == 1 ? "" : "s", R.n_failed == 1 ? "was" : "were",
                       R.stop ? ", then the run stopped" : "", R.first_failure);
        goto out;
    }
    rc = 0;
    goto out;
drain: { /* an error: finish what is in flight (its rows are kept), then report the error */
        char *msg = pika_strdup(pika_last_error());
        pika_oai_run(R.client);
        st->failed = R.n_failed;
        pika_set_error("%s", msg);
        free(msg);
    }
out:
    if (R.out && fclose(R.out) != 0 && rc == 0) rc = pika_set_error("cannot write %s", out_path);
    pika_oai_client_free(R.client);
    cJSON_Delete(extra);
    free(R.first_failure);
    pika_strmap_free(&done);
    return rc;
}
