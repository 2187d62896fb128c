/* sample.c — k sampled answers per question → rollouts JSONL + provenance sidecar (sample.h). */
#include "pika/sample.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pika/acts.h"
#include "pika/rollout.h"
#include "pika/util.h"
#include "pipeline/sample_internal.h"

void pika_rollout_opts_default(pika_rollout_opts *o) {
    memset(o, 0, sizeof *o);
    o->k = 1;
    pika_gen_opts_default(&o->gen);
    o->gen.max_tokens = 256;
}

uint64_t pika_rollout_seed(uint64_t seed, const char *id, int sample) {
    uint64_t h = pika_hash_bytes(id, strlen(id), PIKA_HASH_SEED ^ seed);
    h ^= (uint64_t)sample + 0x9e3779b97f4a7c15ull;
    h *= 1099511628211ull;
    return h;
}

static cJSON *make_meta(const pika_model *m, const pika_prompt_recipe *recipe, const pika_rollout_opts *o, int k,
                        int prefill) {
    cJSON *meta = cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "format", "pika-rollouts");
    cJSON_AddNumberToObject(meta, "version", 1);
    cJSON *mj = cJSON_AddObjectToObject(meta, "model");
    const char *mp = o->model_path ? o->model_path : "";
    const char *base = strrchr(mp, '/');
    cJSON_AddStringToObject(mj, "file", base ? base + 1 : mp);
    cJSON_AddStringToObject(mj, "fingerprint", pika_model_fingerprint(m));
    cJSON_AddStringToObject(mj, "architecture", pika_model_hparams(m)->arch_name);
    cJSON_AddStringToObject(mj, "name", o->model_name ? o->model_name : "");
    if (prefill != PIKA_PREFILL_F32) /* absent: exact F32 (as older files) */
        cJSON_AddStringToObject(mj, "prefill", pika_prefill_name(prefill));
    cJSON_AddItemToObject(meta, "prompt", pika_prompt_recipe_provenance(recipe));
    cJSON_AddItemToObject(meta, "sampling", pika_gen_opts_json(&o->gen));
    cJSON_AddNumberToObject(meta, "k", k);
    return meta;
}

int pika__sample_write_meta(const char *mpath, const cJSON *meta) {
    char *s = cJSON_Print(meta);
    size_t n = strlen(s);
    s = pika_realloc(s, n + 2);
    s[n] = '\n';
    s[n + 1] = 0;
    int rc = pika_write_file_atomic(mpath, s, n + 1);
    free(s);
    return rc;
}

static const char *str_of(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsString(x) ? x->valuestring : "?";
}

/* The recorded provenance must describe this run; names what differs otherwise. */
int pika__sample_check_meta(const char *out_path, const char *mpath, const cJSON *mine, int64_t existing) {
    char *txt = pika_read_file(mpath, NULL);
    if (!txt)
        return pika_set_error("%s holds %lld rollouts but has no provenance file %s (written by an older pika?), so "
                              "resuming could mix models or settings; use a new --out, or --force to overwrite it",
                              out_path, (long long)existing, mpath);
    cJSON *rec = cJSON_Parse(txt);
    free(txt);
    if (!rec || !cJSON_IsObject(rec)) {
        cJSON_Delete(rec);
        return pika_set_error("%s: not a JSON object; cannot check what %s was sampled with", mpath, out_path);
    }
    int rc = 0;
    const char *fa = str_of(rec, "model", "fingerprint"), *fb = str_of(mine, "model", "fingerprint");
    const char *na = str_of(rec, "model", "name"), *nb = str_of(mine, "model", "name");
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rec, "model"), "prefill");
    const cJSON *pb = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(mine, "model"), "prefill");
    if (strcmp(fa, fb) || strcmp(na, nb)) {
        rc = pika_set_error("%s was sampled with another model (%s, fingerprint %s; this run: %s, fingerprint %s); "
                            "cannot resume into it (use a new --out, or --force to overwrite it)",
                            out_path, na, fa, nb, fb);
    } else if (!!pa != !!pb) {
        rc = pika_set_error("%s was sampled with %s prefill, this run uses %s; cannot resume into it (the same --prefill, a "
                            "new --out, or --force to overwrite it)", out_path, pa ? "BF16" : "exact F32", pb ? "BF16" : "exact F32");
    } else if (!pika_prompt_provenance_matches(cJSON_GetObjectItemCaseSensitive(rec, "prompt"),
                                               cJSON_GetObjectItemCaseSensitive(mine, "prompt"), NULL)) {
        rc = pika_set_error("%s was sampled with another prompt recipe (template, system, suffix, kwargs or date); "
                            "cannot resume into it (use a new --out, or --force to overwrite it)", out_path);
    } else {
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(rec, "sampling"), *sb = cJSON_GetObjectItemCaseSensitive(mine, "sampling");
        const cJSON *it;
        cJSON_ArrayForEach(it, sb) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(sa, it->string);
            if (!cJSON_Compare(x, it, 1)) {
                char *va = x ? cJSON_PrintUnformatted(x) : pika_strdup("(none)"), *vb = cJSON_PrintUnformatted(it);
                rc = pika_set_error("%s was sampled with %s %s, this run has %s; cannot resume into it (use the same "
                                    "settings, a new --out, or --force to overwrite it)", out_path, it->string, va, vb);
                free(va);
                free(vb);
                break;
            }
        }
    }
    cJSON_Delete(rec);
    return rc;
}

/* Existing rollouts: "id\tsample" keys into done, the count, and the byte length of whole lines
 * (a torn last line, from a run killed mid-write, is cut off so appending continues cleanly). */
int pika__sample_load_done(const char *path, pika_strmap *done, int64_t *count) {
    *count = 0;
    size_t len;
    char *txt = pika_read_file(path, &len);
    if (!txt) return -1;
    size_t good = 0;
    for (size_t i = len; i > 0; i--)
        if (txt[i - 1] == '\n') { good = i; break; }
    free(txt);
    if (good < len && truncate(path, (off_t)good) != 0) return pika_set_error("cannot truncate %s", path);
    pika_rollout_rec *rows;
    int64_t n;
    if (pika_rollouts_read(path, 1, &rows, &n)) return pika_error_context("cannot resume");
    for (int64_t i = 0; i < n; i++) {
        if (rows[i].sample < 0) {
            pika_rollouts_free(rows, n);
            return pika_set_error("%s: rollout %lld has no \"sample\"; cannot resume", path, (long long)i + 1);
        }
        char key[4096];
        snprintf(key, sizeof key, "%s\t%d", rows[i].id, rows[i].sample);
        pika_strmap_put(done, key, 1);
    }
    *count = n;
    pika_rollouts_free(rows, n);
    return 0;
}

FILE *pika__sample_open(const char *out_path, const pika_rollout_opts *o, cJSON *(*make)(int k, void *u), void *u,
                        pika_strmap *done, pika_rollout_stats *st) {
    char *mpath = pika_rollouts_meta_path(out_path);
    struct stat sb;
    int nonempty = stat(out_path, &sb) == 0 && sb.st_size > 0;
    cJSON *meta = NULL;
    FILE *out = NULL;
    int k_meta = o->k;
    if (nonempty && !o->resume && !o->force) {
        pika_set_error("%s already exists and is not empty; pass --resume to continue it or --force to overwrite it",
                       out_path);
        goto done;
    }
    int resuming = nonempty && o->resume && !o->force;
    if (resuming) {
        meta = make(o->k, u);
        if (pika__sample_load_done(out_path, done, &st->existing)) goto done;
        if (pika__sample_check_meta(out_path, mpath, meta, st->existing)) goto done;
        /* the sidecar keeps the largest k any run asked for */
        char *txt = pika_read_file(mpath, NULL);
        cJSON *rec = txt ? cJSON_Parse(txt) : NULL;
        const cJSON *rk = cJSON_GetObjectItemCaseSensitive(rec, "k");
        if (cJSON_IsNumber(rk) && rk->valueint > k_meta) k_meta = rk->valueint;
        cJSON_Delete(rec);
        free(txt);
        cJSON_Delete(meta);
    }
    meta = make(k_meta, u);
    if (pika__sample_write_meta(mpath, meta)) goto done;
    out = fopen(out_path, resuming ? "ab" : "wb");
    if (!out) { pika_set_error("cannot write %s", out_path); goto done; }
    st->started = 1;
done:
    cJSON_Delete(meta);
    free(mpath);
    return out;
}

typedef struct {
    const pika_model *m;
    const pika_prompt_recipe *recipe;
    const pika_rollout_opts *o;
    int prefill;
} meta_ctx;

static cJSON *local_meta(int k, void *u) {
    meta_ctx *mc = u;
    return make_meta(mc->m, mc->recipe, mc->o, k, mc->prefill);
}

int pika_rollouts(pika_ctx *c, const pika_tokenizer *tok, const pika_prompt_recipe *recipe, int64_t n,
                  char *const *ids, char *const *questions, const pika_rollout_opts *o, const char *out_path,
                  pika_rollout_stats *st) {
    memset(st, 0, sizeof *st);
    if (n <= 0) return pika_set_error("no questions to sample (the data is empty)");
    if (o->k < 1) return pika_set_error("k must be >= 1, got %d", o->k);
    if (o->gen.max_tokens < 1) return pika_set_error("max tokens must be >= 1, got %d", o->gen.max_tokens);
    if (pika_gen_opts_validate(&o->gen)) return -1;
    const pika_model *m = pika_ctx_model(c);
    const pika_hparams *hp = pika_model_hparams(m);
    pika_strmap done;
    pika_strmap_init(&done);
    FILE *out = NULL;
    float *prompt_logits = NULL;
    int rc = -1;
    meta_ctx mc = {m, recipe, o, pika_ctx_prefill(c)};
    out = pika__sample_open(out_path, o, local_meta, &mc, &done, st);
    if (!out) goto done;
    prompt_logits = pika_malloc(sizeof(float) * (size_t)hp->n_vocab);
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
        pika_prompt p;
        if (pika_prompt_build(recipe, questions[q], &p)) {
            pika_error_context("question %s", ids[q]);
            goto done;
        }
        pika_forward_req req = {0, NULL, 0, NULL, NULL, prompt_logits};
        pika_ctx_reset(c);
        int frc = pika_forward(c, p.ids, p.n_ids, &req);
        int np = p.n_ids;
        pika_prompt_free(&p);
        if (frc) { pika_error_context("question %s", ids[q]); goto done; }
        for (int s = 0; s < o->k; s++) {
            snprintf(key, sizeof key, "%s\t%d", ids[q], s);
            if (pika_strmap_get(&done, key) >= 0) { st->skipped++; continue; }
            pika_gen_opts g = o->gen;
            g.sampling.seed = pika_rollout_seed(o->gen.sampling.seed, ids[q], s);
            pika_gen_result res;
            if (pika_generate_from(c, tok, np, prompt_logits, &g, NULL, NULL, &res)) {
                pika_gen_result_free(&res);
                pika_error_context("question %s", ids[q]);
                goto done;
            }
            pika_rollout_rec r = {.id = ids[q], .sample = s, .text = res.text, .tokens_in = np,
                                  .tokens_out = res.n_ids, .model = (char *)(o->model_name ? o->model_name : ""),
                                  .finish = (char *)res.finish, .correct = -1};
            char *line = pika_rollout_rec_json(&r);
            st->tokens_out += res.n_ids;
            pika_gen_result_free(&res);
            int ok = fprintf(out, "%s\n", line) > 0 && fflush(out) == 0;
            free(line);
            if (!ok) { pika_set_error("cannot write %s", out_path); goto done; }
            st->written++;
            pika_progress_update(&prog, st->written + st->skipped);
        }
    }
    pika_progress_end(&prog, st->written + st->skipped);
    st->seconds = pika_now() - t0;
    rc = 0;
done:
    if (out && fclose(out) != 0 && rc == 0) rc = pika_set_error("cannot write %s", out_path);
    free(prompt_logits);
    pika_strmap_free(&done);
    return rc;
}
