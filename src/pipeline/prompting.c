/* prompting.c — the prompting baseline's score (prompting.h): one prefill, the yes/no next-token logits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pika/model.h"
#include "pika/prompting.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

void pika_prompting_opts_default(pika_prompting_opts *o) {
    memset(o, 0, sizeof *o);
    pika_prompt_opts_default(&o->prompt);
}

/* first tokens of the variants of word (distinct), into ids[*n] (at most 4) */
static void answer_ids(const pika_tokenizer *t, const char *word, int32_t *ids, int *n) {
    char v[4][160];
    snprintf(v[0], 128, "%s", word);
    snprintf(v[1], 128, "%s", word);
    if (v[1][0] >= 'a' && v[1][0] <= 'z') v[1][0] = (char)(v[1][0] - 'a' + 'A');
    v[2][0] = v[3][0] = ' ';
    memcpy(v[2] + 1, v[0], strlen(v[0]) + 1);
    memcpy(v[3] + 1, v[1], strlen(v[1]) + 1);
    *n = 0;
    for (int i = 0; i < 4; i++) {
        int32_t *x;
        int c = pika_tokenize(t, v[i], strlen(v[i]), false, false, &x);
        if (c < 1) { if (c >= 0) free(x); continue; }
        int dup = 0;
        for (int j = 0; j < *n; j++) dup |= ids[j] == x[0];
        if (!dup) ids[(*n)++] = x[0];
        free(x);
    }
}

int pika_prompting_scores(const char *model_path, char *const *texts, int64_t n, const pika_prompting_opts *o, double *score,
                          char **provenance_json) {
    if (provenance_json) *provenance_json = NULL;
    pika_model *m = pika_model_load(model_path);
    if (!m) return -1;
    int rc = -1;
    pika_tokenizer *tok = pika_tokenizer_from_gguf(pika_model_gguf(m));
    pika_prompt_recipe *r = NULL;
    pika_ctx *c = NULL;
    float *logits = NULL;
    if (!tok) goto done;
    pika_prompt_opts po = o->prompt;
    const char *q = o->question ? o->question : PIKA_PROMPTING_QUESTION;
    po.user_suffix = q;
    po.user_suffix_file = NULL;
    if (!(r = pika_prompt_recipe_new(pika_model_gguf(m), tok, &po))) goto done;
    int32_t yes[4], no[4];
    int ny, nn;
    answer_ids(tok, o->yes ? o->yes : "yes", yes, &ny);
    answer_ids(tok, o->no ? o->no : "no", no, &nn);
    /* an id in both sets says nothing: drop it */
    for (int i = 0; i < ny; i++)
        for (int j = 0; j < nn; j++)
            if (yes[i] == no[j]) { yes[i] = no[j] = -1; }
    int ky = 0, kn = 0;
    for (int i = 0; i < ny; i++) if (yes[i] >= 0) yes[ky++] = yes[i];
    for (int j = 0; j < nn; j++) if (no[j] >= 0) no[kn++] = no[j];
    ny = ky; nn = kn;
    if (!ny || !nn) { pika_set_error("prompting: the yes and no answers have no distinct first token in this vocabulary"); goto done; }
    if (!(c = pika_ctx_new(m, o->n_threads))) goto done;
    int V = pika_model_hparams(m)->n_vocab;
    logits = pika_malloc(sizeof(float) * (size_t)V);
    pika_progress prog;
    pika_progress_begin(&prog, "prompting", n, 0);
    for (int64_t i = 0; i < n; i++) {
        pika_prompt p;
        if (pika_prompt_build(r, texts[i], &p)) { pika_progress_end(&prog, i); goto done; }
        pika_ctx_reset(c);
        pika_forward_req req = {0, NULL, 0, NULL, NULL, logits};
        int frc = pika_forward(c, p.ids, p.n_ids, &req);
        pika_prompt_free(&p);
        if (frc) { pika_progress_end(&prog, i); goto done; }
        double mx = -INFINITY, z = 0, py = 0, pn = 0;
        for (int v = 0; v < V; v++) if (logits[v] > mx) mx = logits[v];
        for (int v = 0; v < V; v++) z += exp(logits[v] - mx);
        for (int j = 0; j < ny; j++) py += exp(logits[yes[j]] - mx) / z;
        for (int j = 0; j < nn; j++) pn += exp(logits[no[j]] - mx) / z;
        score[i] = log(py + 1e-300) - log(pn + 1e-300);
        pika_progress_update(&prog, i + 1);
    }
    pika_progress_end(&prog, n);
    if (provenance_json) {
        cJSON *j = cJSON_CreateObject(), *mo = cJSON_AddObjectToObject(j, "model");
        const char *base = strrchr(model_path, '/');
        cJSON_AddStringToObject(mo, "file", base ? base + 1 : model_path);
        cJSON_AddStringToObject(mo, "fingerprint", pika_model_fingerprint(m));
        cJSON_AddItemToObject(j, "prompt", pika_prompt_recipe_provenance(r));
        cJSON_AddStringToObject(j, "question", q);
        cJSON *a = cJSON_AddArrayToObject(j, "yes_ids"), *b = cJSON_AddArrayToObject(j, "no_ids");
        for (int k = 0; k < ny; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(yes[k]));
        for (int k = 0; k < nn; k++) cJSON_AddItemToArray(b, cJSON_CreateNumber(no[k]));
        *provenance_json = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
    }
    rc = 0;
done:
    free(logits);
    pika_ctx_free(c);
    pika_prompt_recipe_free(r);
    pika_tokenizer_free(tok);
    pika_model_free(m);
    return rc;
}
