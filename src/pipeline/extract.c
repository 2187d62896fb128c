/* extract.c — dataset → activation store at the end-of-instruction tokens (see extract.h).
 *
 * Per question: messages = [system?] + user(question + suffix) → chat template (add_generation_prompt)
 * → ids (no BOS added beyond what the template renders) → pika_forward capturing
 * hidden[n_layers, n_pos, n_embd] at offsets from the prompt end → one store row.
 */
#include "pika/extract.h"

#include <stdlib.h>
#include <string.h>

#include "pika/acts.h"
#include "pika/chat.h"
#include "pika/npy.h"
#include "pika/util.h"

void pika_eoi_opts_default(pika_eoi_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_layers = -1;
    o->n_pos = -1;
    o->dtype = PIKA_NPY_F16;
    o->flush_every = 16;
}

int pika_eoi_prompt(const pika_tokenizer *tok, const pika_eoi_opts *o, const char *question, int32_t **ids,
                        int *n_ids, int *n_eoi) {
    size_t ql = strlen(question), sl = o->user_suffix ? strlen(o->user_suffix) : 0;
    char *user = pika_malloc(ql + sl + 1);
    memcpy(user, question, ql);
    if (sl) memcpy(user + ql, o->user_suffix, sl);
    user[ql + sl] = 0;
    if (!o->template_src) {
        int n = pika_tokenize(tok, user, ql + sl, true, false, ids);
        free(user);
        if (n < 0) return -1;
        if (n == 0) { free(*ids); return pika_set_error("question tokenizes to nothing"); }
        *n_ids = n;
        *n_eoi = 1;
        return 0;
    }
    cJSON *msgs = pika_chat_messages(o->system, user);
    free(user);
    pika_chat_opts co = {true, o->bos_token, o->eos_token, o->kwargs, o->date};
    pika_chat_prompt p;
    int rc = pika_chat_prompt_build(tok, o->template_src, msgs, &co, &p);
    cJSON_Delete(msgs);
    if (rc) return -1;
    *ids = p.ids;
    *n_ids = p.n_ids;
    *n_eoi = p.n_eoi;
    p.ids = NULL;
    pika_chat_prompt_free(&p);
    if (*n_eoi <= 0) { free(*ids); return pika_set_error("the chat template leaves no end-of-instruction tokens"); }
    return 0;
}

/* Existing meta.json's "model"/"prompt" must equal ours to resume. */
static int check_resume_provenance(const char *dir, const char *model_json, const char *prompt_json) {
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    char *txt = pika_read_file(path, NULL);
    if (!txt) return 0; /* no store yet: nothing to check */
    cJSON *meta = cJSON_Parse(txt), *mine_m = cJSON_Parse(model_json), *mine_p = cJSON_Parse(prompt_json);
    free(txt);
    int ok = meta && cJSON_Compare(cJSON_GetObjectItem(meta, "model"), mine_m, 1) &&
             cJSON_Compare(cJSON_GetObjectItem(meta, "prompt"), mine_p, 1);
    cJSON_Delete(meta);
    cJSON_Delete(mine_m);
    cJSON_Delete(mine_p);
    if (!ok) return pika_set_error("%s holds activations of a different model or prompt format; cannot resume into it "
                                   "(use a new --out directory)", dir);
    return 0;
}

int pika_eoi_extract(pika_ctx *c, const pika_tokenizer *tok, int64_t n, char *const *ids, char *const *questions,
                 const char *out_dir, const pika_eoi_opts *o, pika_eoi_stats *st) {
    memset(st, 0, sizeof *st);
    if (n <= 0) return pika_set_error("extract: no questions");
    const pika_model *m = pika_ctx_model(c);
    const pika_hparams *hp = pika_model_hparams(m);
    /* EOI count from the first question decides the default positions */
    int32_t *pids;
    int np, n_eoi;
    if (pika_eoi_prompt(tok, o, questions[0], &pids, &np, &n_eoi)) return -1;
    free(pids);
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
                free(layers); free(pos);
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
            if (o->positions[i] >= 0) { free(layers); free(pos); return pika_set_error("positions must be negative offsets from the prompt end (-1 = last token), got %d", o->positions[i]); }
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
    char *model_json = cJSON_PrintUnformatted(mj);
    cJSON_Delete(mj);
    cJSON *pj = cJSON_CreateObject();
    char tfp[17] = "none";
    if (o->template_src) pika_fingerprint(o->template_src, tfp);
    cJSON_AddStringToObject(pj, "template", o->template_name ? o->template_name : (o->template_src ? "gguf" : "none"));
    cJSON_AddStringToObject(pj, "template_fingerprint", tfp);
    if (o->system) cJSON_AddStringToObject(pj, "system", o->system);
    else cJSON_AddNullToObject(pj, "system");
    cJSON_AddStringToObject(pj, "user_suffix", o->user_suffix ? o->user_suffix : "");
    if (o->kwargs) cJSON_AddItemToObject(pj, "kwargs", cJSON_Duplicate(o->kwargs, 1));
    cJSON_AddNumberToObject(pj, "n_eoi", n_eoi);
    char *prompt_json = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);

    int rc = -1;
    pika_acts_writer w;
    memset(&w, 0, sizeof w);
    float *hidden = NULL;
    if (o->resume && check_resume_provenance(out_dir, model_json, prompt_json)) goto done;
    if (pika_mkdir_p(out_dir)) goto done;
    if (pika_acts_writer_open(&w, out_dir, hp->n_embd, n_layers, layers, n_pos, pos, o->dtype, model_json,
                              prompt_json, o->resume))
        goto done;
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
    hidden = pika_malloc(sizeof(float) * (size_t)n_layers * (size_t)n_pos * (size_t)hp->n_embd);
    pika_progress prog;
    pika_progress_begin(&prog, "extract", n, w.n);
    double t0 = pika_now();
    int flush_every = o->flush_every > 0 ? o->flush_every : 16;
    int since_flush = 0;
    for (int64_t i = w.n; i < n; i++) {
        int32_t *tids;
        int nt, ne;
        if (pika_eoi_prompt(tok, o, questions[i], &tids, &nt, &ne)) {
            pika_error_context("question %s", ids[i]);
            goto close;
        }
        for (int k = 0; k < n_pos; k++)
            if (-pos[k] > nt) {
                free(tids);
                pika_set_error("question %s: prompt has %d tokens, fewer than position %d needs", ids[i], nt, pos[k]);
                goto close;
            }
        /* int32_t is int on every platform pika builds on */
        pika_forward_req req = {n_layers, (const int *)layers, n_pos, (const int *)pos, hidden, NULL};
        pika_ctx_reset(c);
        int frc = pika_forward(c, tids, nt, &req);
        free(tids);
        if (frc) {
            pika_error_context("question %s", ids[i]);
            goto close;
        }
        if (pika_acts_writer_append(&w, ids[i], hidden)) goto close;
        st->tokens += nt;
        if (++since_flush >= flush_every) {
            if (pika_acts_writer_flush(&w)) goto close;
            since_flush = 0;
        }
        pika_progress_update(&prog, i + 1);
    }
    pika_progress_end(&prog, n);
    st->seconds = pika_now() - t0;
    rc = 0;
close:
    st->done = w.n;
    if (pika_acts_writer_close(&w) && rc == 0) rc = -1;
done:
    free(hidden);
    free(layers);
    free(pos);
    free(model_json);
    free(prompt_json);
    return rc;
}
