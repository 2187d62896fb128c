/* extract.c — dataset → activation store at the end-of-instruction tokens (see extract.h).
 *
 * Per question: the prompt recipe's ids (prompt.h) → pika_forward capturing
 * hidden[n_layers, n_pos, n_embd] at offsets from the prompt end → one store row.
 */
#include "pika/extract.h"

#include <stdlib.h>
#include <string.h>

#include "pika/acts.h"
#include "pika/npy.h"
#include "pika/util.h"

void pika_eoi_opts_default(pika_eoi_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_layers = -1;
    o->n_pos = -1;
    o->dtype = PIKA_NPY_F16;
    o->flush_every = 16;
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
    if (!ok) return pika_set_error("%s holds activations of a different model or prompt recipe; cannot resume into it "
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
    char *model_json = cJSON_PrintUnformatted(mj);
    cJSON_Delete(mj);
    cJSON *pj = pika_prompt_recipe_provenance(recipe);
    cJSON_AddNumberToObject(pj, "n_eoi", n_eoi);
    char *prompt_json = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);

    int rc = -1;
    pika_acts_writer w;
    memset(&w, 0, sizeof w);
    float *hidden = NULL;
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
    hidden = pika_malloc(sizeof(float) * (size_t)n_layers * (size_t)n_pos * (size_t)hp->n_embd);
    pika_progress prog;
    pika_progress_begin(&prog, "extract", n, w.n);
    double t0 = pika_now();
    int flush_every = o->flush_every > 0 ? o->flush_every : 16;
    int since_flush = 0;
    for (int64_t i = w.n; i < n; i++) {
        pika_prompt pr;
        if (i == 0 && p0.ids) {
            pr = p0;
            memset(&p0, 0, sizeof p0);
        } else if (pika_prompt_build(recipe, questions[i], &pr)) {
            pika_error_context("question %s", ids[i]);
            goto close;
        }
        int32_t *tids = pr.ids;
        int nt = pr.n_ids;
        pr.ids = NULL;
        pika_prompt_free(&pr);
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
    pika_prompt_free(&p0);
    free(hidden);
    free(layers);
    free(pos);
    free(model_json);
    free(prompt_json);
    return rc;
}
