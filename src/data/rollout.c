/* rollout.c — k sampled answers per question with the local engine → rollouts JSONL (rollout.h). */
#include "pika/rollout.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "pika/acts.h"
#include <unistd.h>
#include "pika/util.h"

void pika_rollout_opts_default(pika_rollout_opts *o) {
    memset(o, 0, sizeof *o);
    o->k = 1;
    o->max_tokens = 256;
    pika_sampling_default(&o->sampling);
}

static uint64_t mix_seed(uint64_t seed, const char *id, int sample) {
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) { h ^= *p; h *= 1099511628211ull; }
    h ^= (uint64_t)sample + 0x9e3779b97f4a7c15ull;
    h *= 1099511628211ull;
    return h;
}

/* "id\tsample" keys of rollouts already in path (missing file: none). A torn last line (killed
 * mid-write) is cut off so appending continues on a clean line. */
static int load_done(const char *path, pika_strmap *done) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    size_t len;
    char *txt = pika_read_file(path, &len);
    if (!txt) return -1;
    size_t good = 0;
    long lineno = 0;
    for (char *line = txt; line < txt + len;) {
        char *nl = memchr(line, '\n', (size_t)(txt + len - line));
        if (!nl) break; /* torn last line */
        *nl = 0;
        lineno++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *id = cJSON_GetObjectItem(j, "id"), *s = cJSON_GetObjectItem(j, "sample");
        if (!j || !cJSON_IsString(id) || !cJSON_IsNumber(s)) {
            cJSON_Delete(j);
            free(txt);
            return pika_set_error("%s:%ld: not a rollout line; cannot resume", path, lineno);
        }
        char key[4096];
        snprintf(key, sizeof key, "%s\t%d", id->valuestring, s->valueint);
        pika_strmap_put(done, key, 1);
        cJSON_Delete(j);
        good = (size_t)(nl + 1 - txt);
        line = nl + 1;
    }
    free(txt);
    if (good < len && truncate(path, (off_t)good) != 0) return pika_set_error("cannot truncate %s", path);
    return 0;
}

int pika_rollouts(pika_ctx *c, const pika_tokenizer *tok, int64_t n, char *const *ids, char *const *questions,
                  const pika_eoi_opts *prompt, const pika_rollout_opts *o, const char *out_path,
                  pika_rollout_stats *st) {
    memset(st, 0, sizeof *st);
    const pika_hparams *hp = pika_model_hparams(pika_ctx_model(c));
    pika_strmap done;
    pika_strmap_init(&done);
    if (o->resume && load_done(out_path, &done)) { pika_strmap_free(&done); return -1; }
    FILE *out = fopen(out_path, o->resume ? "ab" : "wb");
    if (!out) { pika_strmap_free(&done); return pika_set_error("cannot write %s", out_path); }
    float *logits = pika_malloc(sizeof(float) * (size_t)hp->n_vocab);
    float *prompt_logits = pika_malloc(sizeof(float) * (size_t)hp->n_vocab);
    int32_t *gen = pika_malloc(sizeof(int32_t) * (size_t)(o->max_tokens > 0 ? o->max_tokens : 1));
    int rc = -1;
    pika_progress prog;
    pika_progress_begin(&prog, "sample", n * o->k, 0);
    double t0 = pika_now();
    for (int64_t q = 0; q < n; q++) {
        int todo = 0;
        char key[4096];
        for (int s = 0; s < o->k; s++) {
            snprintf(key, sizeof key, "%s\t%d", ids[q], s);
            todo += pika_strmap_get(&done, key) < 0;
        }
        if (!todo) { st->skipped += o->k; continue; }
        int32_t *pids;
        int np, n_eoi;
        if (pika_eoi_prompt(tok, prompt, questions[q], &pids, &np, &n_eoi)) {
            pika_error_context("question %s", ids[q]);
            goto done;
        }
        pika_forward_req req = {0, NULL, 0, NULL, NULL, prompt_logits};
        pika_ctx_reset(c);
        int frc = pika_forward(c, pids, np, &req);
        free(pids);
        if (frc) goto done;
        for (int s = 0; s < o->k; s++) {
            snprintf(key, sizeof key, "%s\t%d", ids[q], s);
            if (pika_strmap_get(&done, key) >= 0) { st->skipped++; continue; }
            pika_sampling sp = o->sampling;
            sp.seed = mix_seed(o->sampling.seed, ids[q], s);
            pika_sampler *smp = pika_sampler_new(&sp, hp->n_vocab);
            pika_ctx_truncate(c, np);
            memcpy(logits, prompt_logits, sizeof(float) * (size_t)hp->n_vocab);
            int ng = 0;
            const char *finish = "length";
            pika_forward_req dreq = {0, NULL, 0, NULL, NULL, logits};
            while (ng < o->max_tokens) {
                int32_t t = pika_sample(smp, logits);
                if (pika_tokenizer_is_eog(tok, t)) { finish = "stop"; break; }
                gen[ng++] = t;
                if (ng < o->max_tokens && pika_forward(c, &t, 1, &dreq)) { pika_sampler_free(smp); goto done; }
            }
            pika_sampler_free(smp);
            char *text;
            size_t tl;
            if (pika_detokenize(tok, gen, ng, false, &text, &tl)) goto done;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "id", ids[q]);
            cJSON_AddNumberToObject(j, "sample", s);
            /* a sample cut off mid-character (or a model emitting stray bytes) must still be valid
             * JSON text: invalid bytes become U+FFFD, as Hugging Face's and vLLM's decoders do */
            char *clean = pika_utf8_repair(text, tl, NULL);
            cJSON_AddStringToObject(j, "text", clean);
            free(clean);
            cJSON_AddNumberToObject(j, "tokens_in", np);
            cJSON_AddNumberToObject(j, "tokens_out", ng);
            cJSON_AddStringToObject(j, "model", o->model_name ? o->model_name : "");
            cJSON_AddStringToObject(j, "finish", finish);
            char *line = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            free(text);
            int ok = fprintf(out, "%s\n", line) > 0 && fflush(out) == 0;
            free(line);
            if (!ok) { pika_set_error("cannot write %s", out_path); goto done; }
            st->written++;
            st->tokens_out += ng;
            pika_progress_update(&prog, st->written + st->skipped);
        }
    }
    pika_progress_end(&prog, st->written + st->skipped);
    rc = 0;
done:
    st->seconds = pika_now() - t0;
    if (fclose(out) != 0 && rc == 0) rc = pika_set_error("cannot write %s", out_path);
    free(logits); free(prompt_logits); free(gen);
    pika_strmap_free(&done);
    return rc;
}
