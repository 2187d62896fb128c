/* config.c — pool.json for `pika serve`: reader, policy, members, serving limits; c̃ per member. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pika/serve.h"
#include "pika/util.h"

static char *opt_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? pika_strdup(v->valuestring) : NULL;
}

/* Number field: 0 and *out set when present, 1 when absent, -1 + error when not a finite number. */
static int opt_num(const cJSON *o, const char *k, const char *where, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) return 1;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return pika_set_error("%s.%s: expected a number", where, k);
    *out = v->valuedouble;
    return 0;
}

static int check_type(const cJSON *o, const char *k, const char *where, int want_string) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v || cJSON_IsNull(v)) return 0;
    if (want_string && !cJSON_IsString(v)) return pika_set_error("%s.%s: expected a string", where, k);
    return 0;
}

void pika_serve_config_free(pika_serve_config *c) {
    free(c->reader_model); free(c->template_name); free(c->template_file); free(c->system);
    free(c->user_prefix); free(c->user_suffix); free(c->kwargs_json); free(c->date); free(c->log_path); free(c->reader_url);
    for (int i = 0; i < c->n_members; i++) {
        pika_serve_member *m = &c->members[i];
        free(m->name); free(m->url); free(m->api_model); free(m->probe); free(m->api_key_env); free(m->arm);
    }
    memset(c, 0, sizeof *c);
}

int pika_serve_member_index(const pika_serve_config *c, const char *name) {
    for (int i = 0; i < c->n_members; i++)
        if (!strcmp(c->members[i].name, name)) return i;
    return -1;
}

/* "policy": {"router": FILE}: λ / threshold / cascade order and mean costs from a router file. */
static int apply_router_file(pika_serve_config *c, const char *path) {
    char *txt = pika_read_file(path, NULL);
    if (!txt) return pika_error_context("policy.router");
    cJSON *j = cJSON_Parse(txt);
    free(txt);
    int rc = 0;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!j || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, "pika-router")) {
        rc = pika_set_error("policy.router: %s is not a pika-router file (pika route calibrate -o)", path);
        goto done;
    }
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "policy");
    const cJSON *arms = cJSON_GetObjectItemCaseSensitive(j, "arms");
    if (cJSON_IsString(pol) && !strcmp(pol->valuestring, "cascade")) {
        if (c->policy != PIKA_SERVE_BUDGET) c->policy = PIKA_SERVE_CASCADE;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "threshold");
        if (cJSON_IsNumber(t)) c->threshold = t->valuedouble;
        const cJSON *co = cJSON_GetObjectItemCaseSensitive(j, "cascade_order"), *x;
        c->n_cascade = 0;
        cJSON_ArrayForEach(x, co) {
            if (!cJSON_IsString(x)) continue;
            for (int i = 0; i < c->n_members; i++)
                if (!strcmp(c->members[i].arm, x->valuestring)) c->cascade_order[c->n_cascade++] = i;
        }
    } else {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "lambda");
        if (cJSON_IsNumber(l)) c->lambda = l->valuedouble;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, arms) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(a, "name"), *mc = cJSON_GetObjectItemCaseSensitive(a, "mean_cost");
        if (!cJSON_IsString(nm) || !cJSON_IsNumber(mc)) continue;
        for (int i = 0; i < c->n_members; i++)
            if (!strcmp(c->members[i].arm, nm->valuestring) && isnan(c->members[i].mean_cost)) c->members[i].mean_cost = mc->valuedouble;
    }
done:
    cJSON_Delete(j);
    return rc;
}

int pika_serve_config_parse(const char *json, pika_serve_config *c) {
    memset(c, 0, sizeof *c);
    c->lambda = 0.1;
    c->threshold = 0.5;
    c->cost_per_query = NAN;
    c->budget_window = 100;
    c->budget_gain = 0.05;
    c->lambda_max = 10;
    c->reader_contexts = 2;
    c->max_attempts = 3;
    c->breaker_failures = 3;
    c->breaker_cooldown_s = 10;
    c->max_body = 1 << 20;
    cJSON *j = cJSON_Parse(json);
    if (!j || !cJSON_IsObject(j)) { cJSON_Delete(j); return pika_set_error("config is not a JSON object"); }
    int rc = -1;
    double v;
    /* reader */
    const cJSON *rd = cJSON_GetObjectItemCaseSensitive(j, "reader");
    if (rd && !cJSON_IsObject(rd)) { pika_set_error("reader: expected an object"); goto fail; }
    if (rd) {
        const char *sk[] = {"model", "template", "template_file", "system", "user_prefix", "user_suffix", "date", "url"};
        for (size_t k = 0; k < sizeof sk / sizeof sk[0]; k++)
            if (check_type(rd, sk[k], "reader", 1)) goto fail;
        c->reader_model = opt_str(rd, "model");
        c->template_name = opt_str(rd, "template");
        c->template_file = opt_str(rd, "template_file");
        c->system = opt_str(rd, "system");
        c->user_prefix = opt_str(rd, "user_prefix");
        c->user_suffix = opt_str(rd, "user_suffix");
        c->date = opt_str(rd, "date");
        c->reader_url = opt_str(rd, "url");
        const cJSON *kw = cJSON_GetObjectItemCaseSensitive(rd, "kwargs");
        if (kw && !cJSON_IsObject(kw)) { pika_set_error("reader.kwargs: expected an object"); goto fail; }
        if (kw) c->kwargs_json = cJSON_PrintUnformatted(kw);
        c->no_template = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rd, "no_template"));
        /* "template" may name a file: anything with a '/' or ending in .jinja */
        if (c->template_name && (strchr(c->template_name, '/') || strstr(c->template_name, ".jinja"))) {
            free(c->template_file);
            c->template_file = c->template_name;
            c->template_name = NULL;
        }
        int r1 = opt_num(rd, "contexts", "reader", &v);
        if (r1 < 0) goto fail;
        if (r1 == 0) c->reader_contexts = v < 1 ? 1 : (int)v;
    }
    /* members */
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "members"), *m;
    if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) == 0) { pika_set_error("members: expected a non-empty array"); goto fail; }
    if (cJSON_GetArraySize(ms) > PIKA_ROUTE_MAX_ARMS) { pika_set_error("members: at most %d", PIKA_ROUTE_MAX_ARMS); goto fail; }
    cJSON_ArrayForEach(m, ms) {
        char where[64];
        snprintf(where, sizeof where, "members[%d]", c->n_members);
        if (!cJSON_IsObject(m)) { pika_set_error("%s: expected an object", where); goto fail; }
        const char *sk[] = {"name", "url", "api_model", "probe", "api_key_env", "arm"};
        for (size_t k = 0; k < sizeof sk / sizeof sk[0]; k++)
            if (check_type(m, sk[k], where, 1)) goto fail;
        pika_serve_member *x = &c->members[c->n_members++];
        x->name = opt_str(m, "name");
        x->url = opt_str(m, "url");
        if (!x->name || !*x->name) { pika_set_error("%s.name: required", where); goto fail; }
        if (!x->url || strncmp(x->url, "http", 4)) { pika_set_error("%s.url: required (http://HOST:PORT/v1)", where); goto fail; }
        if (!strncmp(x->name, "pika-route", 10)) { pika_set_error("%s.name: '%s' is reserved for the router", where, x->name); goto fail; }
        for (int i = 0; i < c->n_members - 1; i++)
            if (!strcmp(c->members[i].name, x->name)) { pika_set_error("%s.name: duplicate '%s'", where, x->name); goto fail; }
        x->api_model = opt_str(m, "api_model");
        if (!x->api_model) x->api_model = pika_strdup(x->name);
        x->arm = opt_str(m, "arm");
        if (!x->arm) x->arm = pika_strdup(x->name);
        x->probe = opt_str(m, "probe");
        x->api_key_env = opt_str(m, "api_key_env");
        x->mean_cost = NAN;
        x->timeout_s = 30;
        x->connect_timeout_s = 2;
        const char *nk[] = {"price_in", "price_out", "mean_cost", "timeout_s", "connect_timeout_s"};
        double *np[] = {&x->price_in, &x->price_out, &x->mean_cost, &x->timeout_s, &x->connect_timeout_s};
        for (size_t k = 0; k < 5; k++)
            if (opt_num(m, nk[k], where, np[k]) < 0) goto fail;
        if (x->price_in < 0 || x->price_out < 0) { pika_set_error("%s: prices must be >= 0", where); goto fail; }
        if (x->timeout_s <= 0 || x->connect_timeout_s <= 0) { pika_set_error("%s: timeouts must be > 0", where); goto fail; }
    }
    /* policy */
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(j, "policy");
    if (po && !cJSON_IsObject(po)) { pika_set_error("policy: expected an object"); goto fail; }
    if (po) {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(po, "kind");
        if (kind && !cJSON_IsString(kind)) { pika_set_error("policy.kind: expected a string"); goto fail; }
        if (!kind || !strcmp(kind->valuestring, "utility")) c->policy = PIKA_SERVE_UTILITY;
        else if (!strcmp(kind->valuestring, "cascade")) c->policy = PIKA_SERVE_CASCADE;
        else if (!strcmp(kind->valuestring, "budget")) c->policy = PIKA_SERVE_BUDGET;
        else { pika_set_error("policy.kind: '%s' (utility | cascade | budget)", kind->valuestring); goto fail; }
        if (check_type(po, "router", "policy", 1)) goto fail;
        char *rf = opt_str(po, "router");
        if (rf) {
            int r2 = apply_router_file(c, rf);
            free(rf);
            if (r2) goto fail;
        }
        if (opt_num(po, "lambda", "policy", &c->lambda) < 0 || opt_num(po, "threshold", "policy", &c->threshold) < 0 ||
            opt_num(po, "cost_per_query", "policy", &c->cost_per_query) < 0 ||
            opt_num(po, "gain", "policy", &c->budget_gain) < 0 || opt_num(po, "lambda_max", "policy", &c->lambda_max) < 0)
            goto fail;
        if (!opt_num(po, "window", "policy", &v)) c->budget_window = v < 1 ? 1 : (int)v;
        const cJSON *co = cJSON_GetObjectItemCaseSensitive(po, "cascade"), *x;
        if (co) {
            if (!cJSON_IsArray(co)) { pika_set_error("policy.cascade: expected an array of member names"); goto fail; }
            c->n_cascade = 0;
            cJSON_ArrayForEach(x, co) {
                int i = cJSON_IsString(x) ? pika_serve_member_index(c, x->valuestring) : -1;
                if (i < 0) { pika_set_error("policy.cascade: '%s' is not a member", cJSON_IsString(x) ? x->valuestring : "?"); goto fail; }
                c->cascade_order[c->n_cascade++] = i;
            }
        }
        if (c->lambda < 0) { pika_set_error("policy.lambda: must be >= 0"); goto fail; }
        if (c->policy == PIKA_SERVE_BUDGET && !(c->cost_per_query > 0)) {
            pika_set_error("policy.cost_per_query: budget mode needs a cost per query > 0");
            goto fail;
        }
    }
    /* serving */
    if (opt_num(j, "breaker_cooldown_s", "config", &c->breaker_cooldown_s) < 0) goto fail;
    if (!opt_num(j, "max_attempts", "config", &v)) c->max_attempts = v < 1 ? 1 : (int)v;
    if (!opt_num(j, "breaker_failures", "config", &v)) c->breaker_failures = v < 1 ? 1 : (int)v;
    if (!opt_num(j, "max_body_bytes", "config", &v)) c->max_body = v < 1024 ? 1024 : (int64_t)v;
    if (check_type(j, "log", "config", 1)) goto fail;
    c->log_path = opt_str(j, "log");
    /* c̃: min-max normalised mean cost (price_in + price_out when none is known), as route.h */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < c->n_members; i++) {
        pika_serve_member *x = &c->members[i];
        if (isnan(x->mean_cost)) x->mean_cost = x->price_in + x->price_out;
        if (x->mean_cost < lo) lo = x->mean_cost;
        if (x->mean_cost > hi) hi = x->mean_cost;
    }
    for (int i = 0; i < c->n_members; i++) c->ct[i] = hi > lo ? (c->members[i].mean_cost - lo) / (hi - lo) : 0;
    if (c->n_cascade == 0) { /* default cascade order: by c̃, ties config order */
        for (int i = 0; i < c->n_members; i++) c->cascade_order[i] = i;
        for (int i = 1; i < c->n_members; i++)
            for (int k = i; k > 0 && c->ct[c->cascade_order[k]] < c->ct[c->cascade_order[k - 1]]; k--) {
                int t = c->cascade_order[k]; c->cascade_order[k] = c->cascade_order[k - 1]; c->cascade_order[k - 1] = t;
            }
        c->n_cascade = c->n_members;
    }
    rc = 0;
fail:
    cJSON_Delete(j);
    if (rc) pika_serve_config_free(c);
    return rc;
}

int pika_serve_config_load(const char *path, pika_serve_config *c) {
    char *txt = pika_read_file(path, NULL);
    if (!txt) return -1;
    int rc = pika_serve_config_parse(txt, c);
    free(txt);
    if (rc) return pika_error_context("%s", path);
    return 0;
}
