/* probe_file.c — owns the probe file (JSON, versioned; numbers bit-exact), provenance checks against
 * an activation store or a serving reader (model fingerprint + prompt recipe), and scoring of one
 * hidden vector. See include/pika/probe.h. */
#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe_internal.h"
#include "pika/util.h"

/* ---------------------------------------------------------------- probe file */

void probe_clear(pika_probe *p) {
    pika_linear_free(&p->lin);
    free(p->target);
    free(p->layers);
    free(p->positions);
    free(p->alphas);
    free(p->cv_mean);
    free(p->cv_std);
    free(p->model_json);
    free(p->prompt_json);
    free(p->labels_path);
    free(p->split);
    free(p->member);
    cJSON_Delete(p->extra);
    memset(p, 0, sizeof *p);
}

/* Exact doubles: cJSON prints 15 significant digits when that is "close enough", so numbers go in
 * as raw "%.17g" text (bit-exact round trip through strtod). */
static cJSON *num_exact(double v) {
    char b[40];
    if (!isfinite(v)) return cJSON_CreateNull();
    snprintf(b, sizeof b, "%.17g", v);
    return cJSON_CreateRaw(b);
}

static void add_num(cJSON *o, const char *k, double v) { cJSON_AddItemToObject(o, k, num_exact(v)); }

static cJSON *num_array(const double *v, int64_t n) {
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(a, num_exact(v[i]));
    return a;
}

static cJSON *int_array(const int32_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

int pika_probe_save(const pika_probe *p, const char *path) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "format", "pika-probe");
    cJSON_AddNumberToObject(r, "version", PIKA_PROBE_VERSION);
    cJSON_AddStringToObject(r, "kind", p->kind);
    cJSON_AddStringToObject(r, "task", p->task == PIKA_TARGET_BINARY ? "binary" : "continuous");
    cJSON_AddStringToObject(r, "model_type", p->task == PIKA_TARGET_BINARY ? "logistic" : "ridge");
    cJSON_AddStringToObject(r, "target", p->target ? p->target : "");
    if (!strcmp(p->kind, "probe")) {
        cJSON_AddNumberToObject(r, "layer", p->layer);
        cJSON_AddNumberToObject(r, "position", p->position);
    }
    add_num(r, "alpha", p->alpha);
    add_num(r, "cv_score", p->cv_score);
    add_num(r, "cv_score_std", p->cv_score_std);
    cJSON_AddStringToObject(r, "cv_metric", p->task == PIKA_TARGET_BINARY ? "auroc" : "spearman");
    cJSON *tr = cJSON_AddObjectToObject(r, "training");
    cJSON_AddNumberToObject(tr, "n_train", (double)p->n_train);
    add_num(tr, "pos_rate", p->pos_rate);
    cJSON_AddBoolToObject(tr, "standardize", p->standardize);
    cJSON_AddBoolToObject(tr, "intercept", p->intercept);
    cJSON_AddNumberToObject(tr, "k_folds", p->k_folds);
    cJSON_AddNumberToObject(tr, "seed", (double)p->seed);
    if (p->labels_path) cJSON_AddStringToObject(tr, "labels", p->labels_path);
    if (p->split) cJSON_AddStringToObject(tr, "split", p->split);
    if (p->member) cJSON_AddStringToObject(tr, "member", p->member);
    cJSON *sc = cJSON_AddObjectToObject(r, "scaler");
    cJSON_AddItemToObject(sc, "mean", num_array(p->lin.mean, p->lin.d));
    cJSON_AddItemToObject(sc, "scale", num_array(p->lin.scale, p->lin.d));
    cJSON_AddNumberToObject(r, "d", p->lin.d);
    cJSON_AddItemToObject(r, "weights", num_array(p->lin.w, p->lin.d));
    add_num(r, "bias", p->lin.b);
    if (p->has_platt) {
        cJSON *pl = cJSON_AddObjectToObject(r, "platt");
        add_num(pl, "A", p->platt_a);
        add_num(pl, "B", p->platt_b);
    } else {
        cJSON_AddNullToObject(r, "platt");
    }
    cJSON *cv = cJSON_AddObjectToObject(r, "cv");
    cJSON_AddItemToObject(cv, "layers", int_array(p->layers, p->n_layers));
    cJSON_AddItemToObject(cv, "positions", int_array(p->positions, p->n_pos));
    cJSON_AddItemToObject(cv, "alphas", num_array(p->alphas, p->n_alpha));
    int64_t nc = (int64_t)p->n_layers * p->n_pos * p->n_alpha;
    cJSON_AddItemToObject(cv, "mean", num_array(p->cv_mean, nc));
    cJSON_AddItemToObject(cv, "std", num_array(p->cv_std, nc));
    cJSON *pv = cJSON_AddObjectToObject(r, "provenance");
    cJSON_AddNumberToObject(pv, "d_model", p->d_model);
    cJSON_AddStringToObject(pv, "fingerprint", p->fingerprint);
    cJSON *mj = cJSON_Parse(p->model_json ? p->model_json : "null"), *pj = cJSON_Parse(p->prompt_json ? p->prompt_json : "null");
    cJSON_AddItemToObject(pv, "model", mj ? mj : cJSON_CreateNull());
    cJSON_AddItemToObject(pv, "prompt", pj ? pj : cJSON_CreateNull());
    if (p->extra) cJSON_AddItemReferenceToObject(r, "extra", p->extra);
    char *s = cJSON_Print(r);
    cJSON_Delete(r);
    int rc = pika_write_file_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

static char *print_json(const cJSON *v) {
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    char *r = pika_strdup(s ? s : "null");
    free(s);
    return r;
}

static int get_nums(const cJSON *a, double **out, int64_t want, const char *name, const char *path) {
    if (!cJSON_IsArray(a) || (want >= 0 && cJSON_GetArraySize(a) != want))
        return pika_set_error("%s: \"%s\" missing or of the wrong length", path, name);
    int64_t n = cJSON_GetArraySize(a), i = 0;
    *out = pika_malloc(sizeof(double) * (size_t)(n ? n : 1));
    const cJSON *it;
    cJSON_ArrayForEach(it, a) (*out)[i++] = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    return (int)n;
}

int probe_load_into(pika_probe *p, const char *path) {
    memset(p, 0, sizeof *p);
    char *txt = pika_read_file(path, NULL);
    if (!txt) return -1;
    cJSON *r = cJSON_Parse(txt);
    free(txt);
    if (!r) return pika_set_error("%s: not valid JSON", path);
    int rc = -1;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(r, "format"), *v = cJSON_GetObjectItemCaseSensitive(r, "version");
    if (!cJSON_IsString(f) || strcmp(f->valuestring, "pika-probe")) { pika_set_error("%s: not a pika probe file", path); goto done; }
    if (!cJSON_IsNumber(v) || v->valueint < 1 || v->valueint > PIKA_PROBE_VERSION) {
        pika_set_error("%s: probe format version %d not supported (this pika reads %d)", path, cJSON_IsNumber(v) ? v->valueint : -1,
                       PIKA_PROBE_VERSION);
        goto done;
    }
#define GETS(key) cJSON_GetObjectItemCaseSensitive(r, key)
    const cJSON *kind = GETS("kind"), *task = GETS("task"), *d = GETS("d");
    if (!cJSON_IsString(kind) || !cJSON_IsString(task) || !cJSON_IsNumber(d) || d->valueint < 1) {
        pika_set_error("%s: missing kind/task/d", path);
        goto done;
    }
    snprintf(p->kind, sizeof p->kind, "%s", kind->valuestring);
    p->task = strcmp(task->valuestring, "binary") ? PIKA_TARGET_CONTINUOUS : PIKA_TARGET_BINARY;
    p->target = pika_strdup(cJSON_IsString(GETS("target")) ? GETS("target")->valuestring : "");
    p->layer = cJSON_IsNumber(GETS("layer")) ? GETS("layer")->valueint : 0;
    p->position = cJSON_IsNumber(GETS("position")) ? GETS("position")->valueint : 0;
    p->alpha = cJSON_IsNumber(GETS("alpha")) ? GETS("alpha")->valuedouble : NAN;
    p->cv_score = cJSON_IsNumber(GETS("cv_score")) ? GETS("cv_score")->valuedouble : NAN;
    p->cv_score_std = cJSON_IsNumber(GETS("cv_score_std")) ? GETS("cv_score_std")->valuedouble : NAN;
    int dd = d->valueint;
    p->lin.d = dd;
    const cJSON *sc = GETS("scaler");
    if (get_nums(GETS("weights"), &p->lin.w, dd, "weights", path) < 0) goto done;
    if (get_nums(cJSON_GetObjectItemCaseSensitive(sc, "mean"), &p->lin.mean, dd, "scaler.mean", path) < 0) goto done;
    if (get_nums(cJSON_GetObjectItemCaseSensitive(sc, "scale"), &p->lin.scale, dd, "scaler.scale", path) < 0) goto done;
    for (int j = 0; j < dd; j++)
        if (!isfinite(p->lin.w[j]) || !isfinite(p->lin.mean[j]) || !(p->lin.scale[j] > 0)) {
            pika_set_error("%s: non-finite weight or scaler entry %d", path, j);
            goto done;
        }
    p->lin.b = cJSON_IsNumber(GETS("bias")) ? GETS("bias")->valuedouble : 0;
    const cJSON *pl = GETS("platt");
    if (cJSON_IsObject(pl)) {
        p->has_platt = 1;
        p->platt_a = cJSON_GetObjectItemCaseSensitive(pl, "A")->valuedouble;
        p->platt_b = cJSON_GetObjectItemCaseSensitive(pl, "B")->valuedouble;
    }
    const cJSON *tr = GETS("training");
    if (tr) {
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "n_train"))) p->n_train = (int64_t)x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "pos_rate"))) p->pos_rate = x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "standardize"))) p->standardize = cJSON_IsTrue(x);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "intercept"))) p->intercept = cJSON_IsTrue(x);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "k_folds"))) p->k_folds = x->valueint;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "seed"))) p->seed = (uint64_t)x->valuedouble;
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "labels")) && cJSON_IsString(x)) p->labels_path = pika_strdup(x->valuestring);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "split")) && cJSON_IsString(x)) p->split = pika_strdup(x->valuestring);
        if ((x = cJSON_GetObjectItemCaseSensitive(tr, "member")) && cJSON_IsString(x)) p->member = pika_strdup(x->valuestring);
    }
    const cJSON *cv = GETS("cv");
    if (cv) {
        double *t = NULL;
        int nl = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "layers"), &t, -1, "cv.layers", path);
        if (nl < 0) goto done;
        p->n_layers = nl;
        p->layers = pika_malloc(sizeof(int32_t) * (nl ? nl : 1));
        for (int i = 0; i < nl; i++) p->layers[i] = (int32_t)t[i];
        free(t);
        int np = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "positions"), &t, -1, "cv.positions", path);
        if (np < 0) goto done;
        p->n_pos = np;
        p->positions = pika_malloc(sizeof(int32_t) * (np ? np : 1));
        for (int i = 0; i < np; i++) p->positions[i] = (int32_t)t[i];
        free(t);
        int na = get_nums(cJSON_GetObjectItemCaseSensitive(cv, "alphas"), &p->alphas, -1, "cv.alphas", path);
        if (na < 0) goto done;
        p->n_alpha = na;
        int64_t nc = (int64_t)nl * np * na;
        if (get_nums(cJSON_GetObjectItemCaseSensitive(cv, "mean"), &p->cv_mean, nc, "cv.mean", path) < 0) goto done;
        if (get_nums(cJSON_GetObjectItemCaseSensitive(cv, "std"), &p->cv_std, nc, "cv.std", path) < 0) goto done;
    }
    const cJSON *pv = GETS("provenance");
    if (pv) {
        const cJSON *x;
        if ((x = cJSON_GetObjectItemCaseSensitive(pv, "d_model")) && cJSON_IsNumber(x)) p->d_model = x->valueint;
        if ((x = cJSON_GetObjectItemCaseSensitive(pv, "fingerprint")) && cJSON_IsString(x))
            snprintf(p->fingerprint, sizeof p->fingerprint, "%s", x->valuestring);
        p->model_json = print_json(cJSON_GetObjectItemCaseSensitive(pv, "model"));
        p->prompt_json = print_json(cJSON_GetObjectItemCaseSensitive(pv, "prompt"));
    }
    if (GETS("extra")) p->extra = cJSON_Duplicate(GETS("extra"), 1);
#undef GETS
    rc = 0;
done:
    cJSON_Delete(r);
    if (rc) {
        probe_clear(p); /* only frees: the error message stays */
    }
    return rc;
}

void pika_probe_free(pika_probe *p) {
    if (!p) return;
    probe_clear(p);
    free(p);
}

pika_probe *pika_probe_load(const char *path) {
    pika_probe *p = pika_calloc(1, sizeof *p);
    if (probe_load_into(p, path)) { free(p); return NULL; }
    return p;
}

const char *pika_probe_kind(const pika_probe *p) { return p->kind; }
int pika_probe_target_kind(const pika_probe *p) { return p->task; }
const char *pika_probe_target(const pika_probe *p) { return p->target ? p->target : ""; }
const char *pika_probe_member(const pika_probe *p) { return p->member; }
const char *pika_probe_fingerprint(const pika_probe *p) { return p->fingerprint; }
double pika_probe_alpha(const pika_probe *p) { return p->alpha; }
double pika_probe_cv_score(const pika_probe *p, double *std) {
    if (std) *std = p->cv_score_std;
    return p->cv_score;
}

int pika_probe_check_acts(const pika_probe *p, const pika_acts *a) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    if (p->d_model != a->d_model || p->lin.d != a->d_model)
        return pika_set_error("probe expects d_model=%d but activations %s have d_model=%d (different model?)", p->d_model, a->dir,
                              a->d_model);
    if (strcmp(p->fingerprint, a->fingerprint))
        return pika_set_error("activations %s come from a different model/prompt than the probe (fingerprint %s, probe %s; model %s vs %s)",
                              a->dir, a->fingerprint, p->fingerprint, a->model_json, p->model_json ? p->model_json : "null");
    if (pika_acts_layer_index(a, p->layer) < 0) return -1;
    if (pika_acts_pos_index(a, p->position) < 0) return -1;
    return 0;
}

double pika_probe_prob(const pika_probe *p, double score) {
    if (p->task == PIKA_TARGET_BINARY) return p->has_platt ? pika_sigmoid(p->platt_a * score + p->platt_b) : pika_sigmoid(score);
    return score < 0 ? 0 : score > 1 ? 1 : score;
}

int pika_probe_layer(const pika_probe *p) { return p->layer; }
int pika_probe_position(const pika_probe *p) { return p->position; }
int pika_probe_d_model(const pika_probe *p) { return p->d_model ? p->d_model : p->lin.d; }

int pika_probe_score_hidden(const pika_probe *p, const float *h, int d, double *score, double *prob) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    if (d != p->lin.d) return pika_set_error("probe expects a hidden vector of %d values, got %d", p->lin.d, d);
    double s = p->lin.b;
    for (int j = 0; j < d; j++) {
        if (!isfinite(h[j])) return pika_set_error("hidden vector has a non-finite value at %d", j);
        s += p->lin.w[j] * (((double)h[j] - p->lin.mean[j]) / p->lin.scale[j]);
    }
    if (score) *score = s;
    if (prob) *prob = pika_probe_prob(p, s);
    return 0;
}

int pika_probe_check_reader(const pika_probe *p, const char *model_fingerprint, const char *recipe_json) {
    if (strcmp(p->kind, "probe")) return pika_set_error("this is a %s baseline, not an activation probe", p->kind);
    cJSON *m = cJSON_Parse(p->model_json ? p->model_json : "null");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(m, "fingerprint");
    int rc = 0;
    if (!cJSON_IsString(fp)) rc = pika_set_error("the probe records no model fingerprint (model %s)", p->model_json ? p->model_json : "null");
    else if (!model_fingerprint || strcmp(fp->valuestring, model_fingerprint))
        rc = pika_set_error("probe was trained on model %s, not on this model (fingerprint %s)", fp->valuestring,
                            model_fingerprint ? model_fingerprint : "(none)");
    cJSON_Delete(m);
    if (rc || !recipe_json) return rc;
    cJSON *mine = cJSON_Parse(recipe_json), *theirs = cJSON_Parse(p->prompt_json ? p->prompt_json : "null");
    if (!mine) rc = pika_set_error("prompt recipe is not valid JSON");
    else if (!theirs || !cJSON_Compare(mine, theirs, 1))
        rc = pika_set_error("probe was trained with prompt recipe %s, not %s", p->prompt_json ? p->prompt_json : "null", recipe_json);
    cJSON_Delete(mine);
    cJSON_Delete(theirs);
    return rc;
}

int pika_probe_write_cv_table(const pika_probe *p, const char *path) {
    pika_buf b = {0};
    pika_buf_puts(&b, "layer\tposition\talpha\tcv_mean\tcv_std\n");
    char line[160];
    for (int l = 0; l < p->n_layers; l++)
        for (int q = 0; q < p->n_pos; q++)
            for (int k = 0; k < p->n_alpha; k++) {
                size_t ix = ((size_t)l * p->n_pos + q) * p->n_alpha + k;
                snprintf(line, sizeof line, "%d\t%d\t%g\t%.6f\t%.6f\n", p->layers[l], p->positions[q], p->alphas[k], p->cv_mean[ix],
                         p->cv_std[ix]);
                pika_buf_puts(&b, line);
            }
    int rc = pika_write_file_atomic(path, b.s, b.n);
    free(b.s);
    return rc;
}
