/* extract.c — dataset → activation store at the end-of-instruction tokens (see extract.h).
 *
 * Per question: the prompt recipe's ids (prompt.h) → hidden[n_layers, n_pos, n_embd] at offsets from
 * the prompt end → one store row, rows in dataset order. Questions run in packs (pika_forward_packed):
 * consecutive prompts while their tokens after the prefix they share stay within pack_tokens; that
 * shared prefix (the chat template's opening, typically) is kept in the context's KV cache, filled
 * only for the blocks the stored layers need, and only the part the context does not already hold
 * from the previous pack is run. Memory: the KV cache and scratch of one pack (its shared prefix +
 * at most pack_tokens, or one longer prompt) and its hidden rows.
 */
#include "pika/extract.h"

#include <stdlib.h>
#include <string.h>

#include "pika/acts.h"
#include "pika/npy.h"
#include "pika/util.h"

#define MIN_ROWS 4 /* rows per forward call at least (pika_ctx_set_blas_attention: split-invariant from 4) */

void pika_eoi_opts_default(pika_eoi_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_layers = -1;
    o->n_pos = -1;
    o->dtype = PIKA_NPY_F16;
    o->flush_every = 16;
    o->pack_tokens = 512;
}

/* Rows an existing store in dir holds (0 when there is none). */
static int64_t store_rows(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    size_t len;
    char *txt = pika_read_file(path, &len);
    int64_t n = 0;
    for (size_t i = 0; txt && i < len; i++) n += txt[i] == '\n';
    free(txt);
    return n;
}

/* Existing meta.json's "model", "prompt" and layout must equal ours to resume. */
/* A store written before the prompt recipe existed matches on the keys it has; *keep then gets its
 * recorded prompt JSON, which the resumed store keeps (so its fingerprint, and the probes trained on
 * it, stay valid). */
static int check_resume_provenance(const char *dir, const char *model_json, const char *prompt_json, int n_layers,
                                   const int32_t *layers, int n_pos, const int32_t *pos, int dtype, char **keep) {
    *keep = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *txt = pika_read_file(path, NULL);
    if (!txt) return 0; /* no store yet: nothing to check */
    cJSON *meta = cJSON_Parse(txt), *mine_m = cJSON_Parse(model_json), *mine_p = cJSON_Parse(prompt_json);
    free(txt);
    int ok = meta && cJSON_Compare(cJSON_GetObjectItem(meta, "model"), mine_m, 1) &&
             pika_prompt_provenance_matches(cJSON_GetObjectItem(meta, "prompt"), mine_p, NULL);
    int layout = 1;
    const cJSON *rp = meta ? cJSON_GetObjectItem(meta, "prompt") : NULL;
    if (ok && !cJSON_GetObjectItem(rp, "template_source")) *keep = cJSON_PrintUnformatted(rp);
    if (ok) {
        cJSON *l = cJSON_CreateIntArray((const int *)layers, n_layers), *p = cJSON_CreateIntArray((const int *)pos, n_pos);
        const cJSON *dt = cJSON_GetObjectItem(meta, "dtype");
        layout = cJSON_Compare(cJSON_GetObjectItem(meta, "layers"), l, 1) &&
                 cJSON_Compare(cJSON_GetObjectItem(meta, "positions"), p, 1) && cJSON_IsString(dt) &&
                 !strcmp(dt->valuestring, dtype == PIKA_NPY_F16 ? "float16" : "float32");
        cJSON_Delete(l);
        cJSON_Delete(p);
    }
    cJSON_Delete(meta);
    cJSON_Delete(mine_m);
    cJSON_Delete(mine_p);
    if (!ok || !layout) { free(*keep); *keep = NULL; }
    if (!ok) return pika_set_error("%s holds activations of a different model, prefill precision (--prefill) or prompt recipe; cannot resume into it "
                                   "(use a new --out directory, or --force to overwrite it)", dir);
    if (!layout) return pika_set_error("%s holds other layers, positions or dtype than asked for; cannot resume into it "
                                       "(ask for the same --layers/--positions/--dtype, use a new --out, or --force)", dir);
    return 0;
}

int pika_eoi_extract(pika_ctx *c, const pika_prompt_recipe *recipe, int64_t n, char *const *ids,
                     char *const *questions, const char *out_dir, const pika_eoi_opts *o, pika_eoi_stats *st) {
    memset(st, 0, sizeof *st);
    if (n <= 0) return pika_set_error("no questions to extract (the data is empty)");
    int64_t existing = store_rows(out_dir);
    if (existing > 0 && !o->resume && !o->force)
        return pika_set_error("%s already holds %lld rows; pass --resume to continue it or --force to overwrite it", out_dir,
                              (long long)existing);
    const pika_model *m = pika_ctx_model(c);
    const pika_hparams *hp = pika_model_hparams(m);
    /* EOI count from the first question decides the default positions */
    pika_prompt p0; /* kept for the first row of a fresh store */
    if (pika_prompt_build(recipe, questions[0], &p0)) return pika_error_context("question %s", ids[0]);
    int n_eoi = p0.n_eoi;
    st->n_eoi = n_eoi;
    int n_layers = o->n_layers, n_pos = o->n_pos;
    int32_t *layers = pika_malloc(sizeof(int32_t) * (size_t)(hp->n_layer + 1));
    int32_t *pos = pika_malloc(sizeof(int32_t) * (size_t)(n_pos > 0 ? n_pos : n_eoi));
    if (n_layers < 0) {
        n_layers = hp->n_layer + 1;
        for (int i = 0; i < n_layers; i++) layers[i] = i;
    } else {
        for (int i = 0; i < n_layers; i++) {
            if (o->layers[i] < 0 || o->layers[i] > hp->n_layer) {
                free(layers); free(pos); pika_prompt_free(&p0);
                return pika_set_error("layer %d is outside [0, %d] for this model", o->layers[i], hp->n_layer);
            }
            layers[i] = o->layers[i];
        }
    }
    if (n_pos < 0) {
        n_pos = n_eoi;
        for (int i = 0; i < n_pos; i++) pos[i] = -n_eoi + i;
    } else {
        for (int i = 0; i < n_pos; i++) {
            if (o->positions[i] >= 0) { free(layers); free(pos); pika_prompt_free(&p0); return pika_set_error("positions must be negative offsets from the prompt end (-1 = last token), got %d", o->positions[i]); }
            pos[i] = o->positions[i];
        }
    }
    /* provenance */
    cJSON *mj = cJSON_CreateObject();
    const char *mp = o->model_path ? o->model_path : "";
    const char *base = strrchr(mp, '/');
    cJSON_AddStringToObject(mj, "file", base ? base + 1 : mp);
    cJSON_AddStringToObject(mj, "fingerprint", pika_model_fingerprint(m));
    cJSON_AddStringToObject(mj, "architecture", hp->arch_name);
    cJSON_AddNumberToObject(mj, "n_layer", hp->n_layer);
    cJSON_AddNumberToObject(mj, "n_embd", hp->n_embd);
    /* BF16 or q8 prefill changes the activations: recorded (absent = exact F32, as every older store), so
     * a resume with another precision is refused */
    if (pika_ctx_prefill(c) != PIKA_PREFILL_F32) cJSON_AddStringToObject(mj, "prefill", pika_prefill_name(pika_ctx_prefill(c)));
    char *model_json = cJSON_PrintUnformatted(mj);
    cJSON_Delete(mj);
    cJSON *pj = pika_prompt_recipe_provenance(recipe);
    cJSON_AddNumberToObject(pj, "n_eoi", n_eoi);
    char *prompt_json = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);

    int rc = -1;
    pika_acts_writer w;
    memset(&w, 0, sizeof w);
    float *hidden = NULL, *row = NULL;           /* [n_layers, cnt * n_pos, E] of a pack; one row */
    size_t hidden_cap = 0;
    int32_t **q_ids = NULL, *carry_ids = NULL;    /* the pack's prompts; one built for the next pack */
    int *q_n = NULL, q_cap = 0, carry_n = 0;
    int32_t *ctx_ids = NULL, *pk_ids = NULL;      /* the tokens the context holds; the packed suffixes */
    int ctx_n = 0, ctx_cap = 0, *lens = NULL, *ppos = NULL, lens_cap = 0;
    int64_t pk_cap = 0;
    const int blas_was = pika_ctx_blas_attention(c);
    if (o->resume && !o->force) {
        char *keep;
        if (check_resume_provenance(out_dir, model_json, prompt_json, n_layers, layers, n_pos, pos, o->dtype, &keep))
            goto done;
        if (keep) { free(prompt_json); prompt_json = keep; }
    }
    if (pika_mkdir_p(out_dir)) goto done;
    if (pika_acts_writer_open(&w, out_dir, hp->n_embd, n_layers, layers, n_pos, pos, o->dtype, model_json,
                              prompt_json, o->resume && !o->force))
        goto done;
    st->started = 1;
    st->resumed = w.n;
    if (w.n > n) { pika_set_error("%s already holds %lld rows, more than the %lld questions given", out_dir, (long long)w.n, (long long)n); goto close; }
    /* the kept rows must be the first questions, in order */
    if (w.n > 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/ids.txt", out_dir);
        char *txt = pika_read_file(path, NULL);
        char *line = txt;
        for (int64_t i = 0; txt && i < w.n; i++) {
            char *nl = strchr(line, '\n');
            if (!nl) break;
            *nl = 0;
            if (strcmp(line, ids[i]) != 0) {
                pika_set_error("%s: row %lld is '%s' but question %lld is '%s'; the dataset changed, cannot resume", out_dir,
                               (long long)i, line, (long long)i, ids[i]);
                free(txt);
                goto close;
            }
            line = nl + 1;
        }
        free(txt);
    }
    const int E = hp->n_embd;
    const size_t row_elems = (size_t)n_layers * (size_t)n_pos * (size_t)E;
    row = pika_malloc(sizeof(float) * row_elems);
    /* blocks every pass runs (the deepest stored layer) and the positions a pack must hold */
    int max_layer = 0, max_off = 1;
    for (int k = 0; k < n_layers; k++) max_layer = layers[k] > max_layer ? layers[k] : max_layer;
    for (int k = 0; k < n_pos; k++) max_off = -pos[k] > max_off ? -pos[k] : max_off;
    /* every prompt keeps >= 4 tokens in its pack and a prefix runs >= 4 at once: smaller batches take
     * the matvec path, whose rounding differs from the batched matmul's */
    const int min_suffix = max_off > MIN_ROWS ? max_off : MIN_ROWS;
    const int use_prefix = !o->no_prefix_cache;
    /* pika's split-invariant attention: a row's activations do not depend on the pack or the cached prefix
     * it came with, so resumed runs and shards give the very bytes of one run */
    pika_ctx_set_blas_attention(c, 0);
    const int64_t budget = o->pack_tokens;
    pika_ctx_reset(c);
    pika_progress prog;
    pika_progress_begin(&prog, "extract", n, w.n);
    double t0 = pika_now();
    int flush_every = o->flush_every > 0 ? o->flush_every : 16;
    int since_flush = 0;
    for (int64_t i = w.n; i < n;) {
        /* a pack: questions i .. i+cnt-1, each continuing the first P tokens they share (P leaves at
         * least the stored positions of every prompt to the packed pass), while the packed tokens
         * (sum of n_k - P) stay within the budget; the first question always goes in */
        int cnt = 0, P = 0;
        int64_t sum_n = 0;
        for (int64_t j = i; j < n; j++) {
            int32_t *tids;
            int nt;
            if (carry_ids) {
                tids = carry_ids; nt = carry_n; carry_ids = NULL;
            } else {
                pika_prompt pr;
                if (j == 0 && p0.ids) {
                    pr = p0;
                    memset(&p0, 0, sizeof p0);
                } else if (pika_prompt_build(recipe, questions[j], &pr)) {
                    if (cnt) break; /* run the pack so far; the next one starts with this question and fails */
                    pika_error_context("question %s", ids[j]);
                    goto close;
                }
                tids = pr.ids;
                nt = pr.n_ids;
                pr.ids = NULL;
                pika_prompt_free(&pr);
                if (max_off > nt && n_pos > 0) {
                    int worst = 0;
                    for (int k = 0; k < n_pos; k++) worst = pos[k] < worst ? pos[k] : worst;
                    free(tids);
                    if (cnt) break;
                    pika_set_error("question %s: prompt has %d tokens, fewer than position %d needs", ids[j], nt, worst);
                    goto close;
                }
            }
            int np = 0;
            if (use_prefix) {
                np = nt - min_suffix > 0 ? nt - min_suffix : 0;
                if (cnt) {
                    np = np < P ? np : P;
                    np = pika_ids_common_prefix(tids, np, q_ids[0], np);
                }
            }
            int64_t cost = sum_n + nt - (int64_t)(cnt + 1) * np;
            if (cnt && (budget <= 1 || cost > budget)) { carry_ids = tids; carry_n = nt; break; }
            if (cnt == q_cap) {
                q_cap = q_cap ? 2 * q_cap : 16;
                q_ids = pika_realloc(q_ids, sizeof *q_ids * (size_t)q_cap);
                q_n = pika_realloc(q_n, sizeof *q_n * (size_t)q_cap);
                for (int k = cnt; k < q_cap; k++) q_ids[k] = NULL;
            }
            q_ids[cnt] = tids;
            q_n[cnt] = nt;
            cnt++;
            sum_n += nt;
            P = np;
        }
        /* the context keeps what it shares with the pack's prefix; the rest of the prefix runs once */
        int64_t prefilled = 0;
        if (P < MIN_ROWS) P = 0;
        if (use_prefix) {
            int L = pika_ids_common_prefix(ctx_ids, ctx_n, q_ids[0], P);
            if (P > L && P - L < MIN_ROWS) L = P - MIN_ROWS; /* recompute a few cached rows instead */
            if (L < ctx_n) { pika_ctx_truncate(c, L); ctx_n = L; }
            if (P > L) {
                float dummy[1];
                pika_forward_req pr = {1, &max_layer, 0, NULL, dummy, NULL}; /* only the blocks a row needs */
                if (pika_forward(c, q_ids[0] + L, P - L, &pr)) {
                    pika_ctx_reset(c);
                    ctx_n = 0;
                    pika_error_context("question %s (shared prompt prefix)", ids[i]);
                    goto close;
                }
                if (P > ctx_cap) { ctx_cap = P; ctx_ids = pika_realloc(ctx_ids, sizeof(int32_t) * (size_t)ctx_cap); }
                memcpy(ctx_ids + L, q_ids[0] + L, sizeof(int32_t) * (size_t)(P - L));
                ctx_n = P;
                prefilled = P - L;
            }
        } else {
            pika_ctx_reset(c);
        }
        /* the pack: suffixes after P, concatenated; positions index them */
        int64_t n_pack = sum_n - (int64_t)cnt * P;
        if (n_pack > pk_cap) { pk_cap = n_pack; pk_ids = pika_realloc(pk_ids, sizeof(int32_t) * (size_t)pk_cap); }
        if (cnt > lens_cap) {
            lens_cap = cnt;
            lens = pika_realloc(lens, sizeof(int) * (size_t)lens_cap);
            ppos = pika_realloc(ppos, sizeof(int) * (size_t)lens_cap * (size_t)(n_pos > 0 ? n_pos : 1));
        }
        int64_t off = 0;
        for (int k = 0; k < cnt; k++) {
            lens[k] = q_n[k] - P;
            memcpy(pk_ids + off, q_ids[k] + P, sizeof(int32_t) * (size_t)lens[k]);
            for (int pi = 0; pi < n_pos; pi++) ppos[(size_t)k * n_pos + pi] = (int)(off + lens[k] + pos[pi]);
            off += lens[k];
        }
        const size_t need = row_elems * (size_t)cnt;
        if (need > hidden_cap) { hidden_cap = need; hidden = pika_realloc(hidden, sizeof(float) * hidden_cap); }
        /* int32_t is int on every platform pika builds on */
        pika_forward_req req = {n_layers, (const int *)layers, n_pos * cnt, ppos, hidden, NULL};
        if (pika_forward_packed(c, pk_ids, cnt, lens, &req)) {
            if (cnt == 1) pika_error_context("question %s", ids[i]);
            else pika_error_context("questions %s .. %s", ids[i], ids[i + cnt - 1]);
            goto close;
        }
        st->tokens += prefilled + n_pack;
        st->tokens_reused += sum_n - n_pack - prefilled;
        /* rows in dataset order: [n_layers, n_pos, E] of prompt k out of [n_layers, cnt * n_pos, E] */
        for (int k = 0; k < cnt; k++) {
            for (int li = 0; li < n_layers; li++)
                memcpy(row + ((size_t)li * n_pos) * E, hidden + ((size_t)li * n_pos * cnt + (size_t)k * n_pos) * E,
                       sizeof(float) * (size_t)n_pos * E);
            if (pika_acts_writer_append(&w, ids[i + k], row)) goto close;
            if (++since_flush >= flush_every) {
                if (pika_acts_writer_flush(&w)) goto close;
                since_flush = 0;
            }
            pika_progress_update(&prog, i + k + 1);
        }
        for (int k = 0; k < cnt; k++) { free(q_ids[k]); q_ids[k] = NULL; }
        i += cnt;
    }
    pika_progress_end(&prog, n);
    st->seconds = pika_now() - t0;
    rc = 0;
close:
    pika_ctx_reset(c); /* the shared prefix was cached only for the stored layers' blocks */
    pika_ctx_set_blas_attention(c, blas_was);
    st->done = w.n;
    if (pika_acts_writer_close(&w) && rc == 0) rc = -1;
done:
    pika_prompt_free(&p0);
    for (int k = 0; k < q_cap; k++) free(q_ids ? q_ids[k] : NULL);
    free(q_ids); free(q_n); free(carry_ids); free(ctx_ids); free(pk_ids); free(lens); free(ppos); free(row);
    free(hidden);
    free(layers);
    free(pos);
    free(model_json);
    free(prompt_json);
    return rc;
}
