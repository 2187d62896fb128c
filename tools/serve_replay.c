/* serve_replay.c — send a dataset's questions through a running `pika serve` (or any OpenAI chat
 * endpoint) one by one and write the answers as a rollouts JSONL that `pika grade rollouts` reads:
 * {"id", "sample": 0, "text", "tokens_in", "tokens_out", "model": <x-pika-member>, "finish"}.
 * Only loopback or the URL given. Prints one summary line: answered, errors, share per member.
 * With --seed S each question also carries "pika": {"id": ID} (a pika serve-model member then samples
 * what `pika sample --seed S` sampled as sample 0 of that question).
 * usage: serve_replay --url http://127.0.0.1:8000/v1 --data problems.jsonl [--ids IDS.txt]
 *                     [--model pika-route] [--max-tokens 8] [--temperature 1] [--seed S] -o ROLLOUTS.jsonl
 *        serve_replay --probe-health BASE_URL...   exit 0 when every BASE_URL/health answers 200 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/dataset.h"
#include "pika/rollout.h"
#include "pika/util.h"

typedef struct {
    pika_buf body;
    char member[64];
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *cls) {
    pika_buf_add(&((resp *)cls)->body, p, sz * n);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *cls) {
    resp *r = cls;
    size_t len = sz * n;
    if (len > 14 && !strncasecmp(p, "x-pika-member:", 14)) {
        size_t a = 14, e = len;
        while (a < e && p[a] == ' ') a++;
        while (e > a && (p[e - 1] == '\r' || p[e - 1] == '\n')) e--;
        snprintf(r->member, sizeof r->member, "%.*s", (int)(e - a), p + a);
    }
    return len;
}

static int probe_health(int n, char **urls) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        CURL *c = curl_easy_init();
        char u[1024];
        snprintf(u, sizeof u, "%s/health", urls[i]);
        resp r;
        memset(&r, 0, sizeof r);
        curl_easy_setopt(c, CURLOPT_URL, u);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
        long st = 0;
        if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        ok = st == 200;
        free(r.body.s);
        curl_easy_cleanup(c);
    }
    curl_global_cleanup();
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--probe-health")) return probe_health(argc - 2, argv + 2);
    const char *url = NULL, *data = NULL, *ids_path = NULL, *model = "pika-route", *out = NULL;
    int max_tokens = 8;
    double temperature = 1;
    long long seed = -1;
    for (int i = 1; i < argc; i++) {
        int hv = i + 1 < argc;
        if (!strcmp(argv[i], "--url") && hv) url = argv[++i];
        else if (!strcmp(argv[i], "--data") && hv) data = argv[++i];
        else if (!strcmp(argv[i], "--ids") && hv) ids_path = argv[++i];
        else if (!strcmp(argv[i], "--model") && hv) model = argv[++i];
        else if (!strcmp(argv[i], "--max-tokens") && hv) max_tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--temperature") && hv) temperature = atof(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && hv) seed = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-o") && hv) out = argv[++i];
        else { fprintf(stderr, "usage: serve_replay --url URL --data FILE.jsonl [--ids IDS.txt] [--model M] [--max-tokens N] [--temperature T] [--seed S] -o OUT.jsonl\n"); return 2; }
    }
    if (!url || !data || !out) pika_die("serve_replay: --url, --data and -o are required");
    pika_field_map fm;
    memset(&fm, 0, sizeof fm);
    fm.id = "id";
    fm.problem = "problem";
    pika_dataset *ds = pika_dataset_load_file(data, &fm);
    if (!ds) pika_die("serve_replay: %s", pika_last_error());
    pika_strmap keep;
    pika_strmap_init(&keep);
    if (ids_path) {
        char *txt = pika_read_file(ids_path, NULL);
        if (!txt) pika_die("serve_replay: %s", pika_last_error());
        for (char *l = strtok(txt, "\n"); l; l = strtok(NULL, "\n")) pika_strmap_put(&keep, l, 1);
        free(txt);
    }
    FILE *f = fopen(out, "w");
    if (!f) pika_die("serve_replay: cannot write %s", out);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *c = curl_easy_init();
    char full[1024];
    snprintf(full, sizeof full, "%s/chat/completions", url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    int64_t sent = 0, errors = 0;
    pika_strmap share;
    pika_strmap_init(&share);
    for (int64_t i = 0; i < ds->n; i++) {
        const pika_example *ex = &ds->rows[i];
        if (ids_path && pika_strmap_get(&keep, ex->id) < 0) continue;
        cJSON *q = cJSON_CreateObject();
        cJSON_AddStringToObject(q, "model", model);
        cJSON *msgs = cJSON_AddArrayToObject(q, "messages"), *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", ex->problem);
        cJSON_AddItemToArray(msgs, m);
        cJSON_AddNumberToObject(q, "max_tokens", max_tokens);
        cJSON_AddNumberToObject(q, "temperature", temperature);
        if (seed >= 0) {
            cJSON_AddNumberToObject(q, "seed", (double)seed);
            cJSON_AddStringToObject(cJSON_AddObjectToObject(q, "pika"), "id", ex->id);
        }
        char *body = cJSON_PrintUnformatted(q);
        cJSON_Delete(q);
        resp r;
        memset(&r, 0, sizeof r);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        /* the question id as the request id: the router logs it, so graded answers join the log */
        char rid[300];
        snprintf(rid, sizeof rid, "X-Request-Id: %s", ex->id);
        struct curl_slist *h2 = curl_slist_append(NULL, "Content-Type: application/json");
        h2 = curl_slist_append(h2, "Expect:");
        h2 = curl_slist_append(h2, rid);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h2);
        long st = 0;
        if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        free(body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_slist_free_all(h2);
        sent++;
        cJSON *j = st == 200 && r.body.s ? cJSON_Parse(r.body.s) : NULL;
        const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "content");
        if (!cJSON_IsString(content)) {
            if (errors++ < 5) fprintf(stderr, "serve_replay: %s: HTTP %ld %.200s\n", ex->id, st, r.body.s ? r.body.s : "");
            cJSON_Delete(j);
            free(r.body.s);
            continue;
        }
        const cJSON *u = cJSON_GetObjectItem(j, "usage"), *fr = cJSON_GetObjectItem(ch, "finish_reason");
        pika_rollout_rec rec = {0};
        rec.id = ex->id;
        rec.sample = 0;
        rec.text = content->valuestring;
        const cJSON *pt = cJSON_GetObjectItem(u, "prompt_tokens"), *ct = cJSON_GetObjectItem(u, "completion_tokens");
        rec.tokens_in = cJSON_IsNumber(pt) ? (int64_t)pt->valuedouble : -1;
        rec.tokens_out = cJSON_IsNumber(ct) ? (int64_t)ct->valuedouble : -1;
        rec.model = r.member[0] ? r.member : NULL;
        rec.finish = cJSON_IsString(fr) ? fr->valuestring : NULL;
        rec.correct = -1;
        char *line = pika_rollout_rec_json(&rec);
        fprintf(f, "%s\n", line);
        free(line);
        int64_t prev = pika_strmap_get(&share, r.member[0] ? r.member : "?");
        pika_strmap_put(&share, r.member[0] ? r.member : "?", prev < 0 ? 1 : prev + 1);
        cJSON_Delete(j);
        free(r.body.s);
    }
    fclose(f);
    printf("serve_replay: %lld questions, %lld answered, %lld errors; calls", (long long)sent, (long long)(sent - errors), (long long)errors);
    for (int64_t k = 0; k < share.cap; k++)
        if (share.keys[k]) printf(" %s=%lld", share.keys[k], (long long)share.vals[k]);
    printf("\n");
    pika_strmap_free(&share);
    pika_strmap_free(&keep);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    curl_global_cleanup();
    pika_dataset_free(ds);
    return errors ? 1 : 0;
}
