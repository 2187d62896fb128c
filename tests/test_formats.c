/* test_formats.c — the one home of each shared file-format piece: the JSON-id rule, the JSONL reader
 * (strict and lenient), the string hash map, the labels file and graded-rollouts readers, error
 * messages of a corrupt .jsonl.gz, and empty inputs of `pika grade rollouts` / `pika labels`. */
#include <cJSON.h>
#include <zlib.h>

#include "pika/dataset.h"
#include "pika/labels.h"
#include "pika/rollout.h"
#include "pika/util.h"
#include "test.h"

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static const char *id_of(const char *json, char buf[40]) {
    static char keep[8][40];
    static int k;
    cJSON *j = cJSON_Parse(json);
    const char *id = pika_json_id(j, buf);
    const char *r = NULL;
    if (id) { snprintf(keep[k & 7], 40, "%s", id); r = keep[k++ & 7]; }
    cJSON_Delete(j);
    return r;
}

static void test_json_id_rule(void) {
    char b[40];
    const char *r;
    CHECK((r = id_of("\"q7\"", b)) && !strcmp(r, "q7"), "string");
    CHECK((r = id_of("7", b)) && !strcmp(r, "7"), "integer");
    CHECK((r = id_of("-3", b)) && !strcmp(r, "-3"), "negative integer");
    CHECK((r = id_of("7.0", b)) && !strcmp(r, "7"), "integral double");
    CHECK((r = id_of("1.5", b)) && !strcmp(r, "1.5"), "1.5 stays 1.5, got %s", r ? r : "(null)");
    CHECK((r = id_of("0.1", b)) && !strcmp(r, "0.1"), "shortest round trip, got %s", r ? r : "(null)");
    CHECK((r = id_of("9007199254740992", b)) && !strcmp(r, "9007199254740992"), "2^53");
    CHECK((r = id_of("1e300", b)) && !strcmp(r, "1e+300"), "huge, got %s", r ? r : "(null)");
    /* fuzz regression (fuzz/corpus/dataset/regress-number-past-long-long.jsonl): numbers past the range of
     * long long are printed without an out-of-range cast (UBSan aborts on the cast under make asan-test) */
    CHECK((r = id_of("1e100", b)) && !strcmp(r, "1e+100"), "1e100, got %s", r ? r : "(null)");
    CHECK((r = id_of("9223372036854775808", b)) && !strcmp(r, "9.223372036854776e+18"), "2^63, got %s", r ? r : "(null)");
    CHECK((r = id_of("-9.3e18", b)) && !strcmp(r, "-9.3e+18"), "-9.3e18, got %s", r ? r : "(null)");
    CHECK(!id_of("\"\"", b) && !id_of("null", b) && !id_of("true", b) && !id_of("[1]", b) && !id_of("{}", b), "no id");
}

static void test_strmap_and_hash(void) {
    pika_strmap m;
    pika_strmap_init(&m);
    char k[32];
    for (int i = 0; i < 1000; i++) { snprintf(k, sizeof k, "k%d", i); CHECK(pika_strmap_put(&m, k, i) == -1, "new %d", i); }
    CHECK(m.len == 1000, "len %lld", (long long)m.len);
    CHECK(pika_strmap_get(&m, "k517") == 517 && pika_strmap_get(&m, "nope") == -1, "get");
    CHECK(pika_strmap_put(&m, "k5", 55) == 5 && pika_strmap_get(&m, "k5") == 55, "overwrite returns old");
    pika_strmap_free(&m);
    /* FNV-1a with pika's historical seed (fingerprints of existing stores and probes stay valid) */
    CHECK(pika_hash_str("") == PIKA_HASH_SEED, "empty");
    CHECK(pika_hash_str("a") == ((PIKA_HASH_SEED ^ 'a') * 1099511628211ULL), "a");
    CHECK(pika_hash_bytes("b", 1, pika_hash_bytes("a", 1, PIKA_HASH_SEED)) == pika_hash_str("ab"), "chained");
    char fp[17];
    pika_fingerprint("a", fp);
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)pika_hash_str("a"));
    CHECK(!strcmp(fp, want), "fingerprint %s", fp);
}

static int count_line(void *obj, const char *path, long ln, void *ctx) {
    (void)path;
    cJSON *x = cJSON_GetObjectItemCaseSensitive((cJSON *)obj, "x");
    if (!cJSON_IsNumber(x)) return pika_set_error("%s:%ld: no x", path, ln);
    *(int *)ctx += x->valueint;
    return 0;
}

static void count_bad(const char *msg, void *ctx) {
    (void)msg;
    (*(int *)ctx)++;
}

static void test_jsonl_reader(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/a.jsonl", dir);
    const char txt[] = "{\"x\":1}\n\n  \n{\"x\":2}\r\n{\"y\":3}\nnot json\n{\"x\":4}";
    write_file(p, txt, sizeof txt - 1);
    int sum = 0, nbad = 0;
    int64_t nobj = 0;
    int64_t r = pika_jsonl_read(p, count_line, &sum, count_bad, &nbad, &nobj);
    CHECK(r == 2 && nbad == 2 && sum == 7 && nobj == 3, "lenient: r=%lld bad=%d sum=%d n=%lld", (long long)r, nbad, sum, (long long)nobj);
    sum = 0;
    r = pika_jsonl_read(p, count_line, &sum, NULL, NULL, NULL);
    CHECK(r == -1 && strstr(pika_last_error(), "a.jsonl:5: no x") && sum == 3, "strict stops at line 5: %s", pika_last_error());
    CHECK(pika_jsonl_read("/nonexistent/x.jsonl", count_line, &sum, count_bad, &nbad, NULL) == -1, "missing file");
}

static void test_corrupt_gz_message(void) {
    /* a gzip stream with a damaged body: the error names the file and line once */
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/bad.jsonl.gz", dir);
    gzFile g = gzopen(p, "wb");
    REQUIRE(g, "gzopen");
    for (int i = 0; i < 2000; i++) gzprintf(g, "{\"id\":\"q%d\",\"problem\":\"what is %d+%d?\",\"answer\":\"%d\"}\n", i, i, i, 2 * i);
    gzclose(g);
    size_t n;
    char *raw = pika_read_file(p, &n);
    REQUIRE(raw && n > 200, "read back");
    for (size_t i = 100; i < n - 20; i += 7) raw[i] ^= 0x5a;
    write_file(p, raw, n);
    free(raw);
    pika_field_map fm = {.id = "id", .problem = "problem", .gold = "answer"};
    pika_dataset *d = pika_dataset_load_file(p, &fm);
    CHECK(!d, "corrupt file fails");
    const char *e = pika_last_error();
    const char *first = strstr(e, "bad.jsonl.gz:");
    CHECK(first && !strstr(first + 1, "bad.jsonl.gz:"), "file named once: %s", e);
    CHECK(strstr(e, "read error"), "says read error: %s", e);
    pika_dataset_free(d);
}

static void test_labels_reader_ids(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/labels.jsonl", dir);
    const char *txt = "{\"id\":1,\"y\":1}\n{\"id\":1.5,\"y\":0}\n{\"id\":\"x\",\"y\":true}\n";
    write_file(p, txt, strlen(txt));
    pika_labels L;
    const char *f[1] = {"y"};
    REQUIRE(pika_labels_read(&L, p, "id", 1, f, NULL) == 0, "%s", pika_last_error());
    CHECK(L.n == 3, "3 rows");
    CHECK(pika_strmap_get(&L.id_index, "1") == 0 && pika_strmap_get(&L.id_index, "1.5") == 1, "1 and 1.5 are distinct ids");
    CHECK(L.vals[2] == 1.0, "bool label");
    pika_labels_free(&L);
    /* 1.0 and 1 are the same id: duplicate */
    txt = "{\"id\":1,\"y\":1}\n{\"id\":1.0,\"y\":0}\n";
    write_file(p, txt, strlen(txt));
    CHECK(pika_labels_read(&L, p, "id", 1, f, NULL) == -1 && strstr(pika_last_error(), ":2: duplicate id '1'"), "dup: %s", pika_last_error());
    write_file(p, "\n", 1);
    CHECK(pika_labels_read(&L, p, "id", 1, f, NULL) == -1 && strstr(pika_last_error(), "no labelled lines"), "empty: %s", pika_last_error());
}

static void test_labels_select(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/labels.jsonl", dir);
    const char *txt = "{\"id\":\"a\",\"y\":1,\"split\":\"train\"}\n{\"id\":\"b\",\"y\":0,\"split\":\"test\"}\n"
                      "{\"id\":\"c\",\"y\":0,\"split\":\"train\"}\n";
    write_file(p, txt, strlen(txt));
    char *ids[3] = {"c", "b", "a"};
    int64_t *rows;
    double *y;
    int64_t m = pika_labels_select(p, "id", "y", "split=train", ids, 3, &rows, &y);
    REQUIRE(m == 2, "m=%lld: %s", (long long)m, pika_last_error());
    CHECK(rows[0] == 0 && y[0] == 0 && rows[1] == 2 && y[1] == 1, "train rows in id order");
    free(rows); free(y);
    m = pika_labels_select(p, NULL, NULL, NULL, ids, 3, &rows, NULL);
    CHECK(m == 3, "all rows without split or target");
    free(rows);
    CHECK(pika_labels_select(p, "id", "y", "split=dev", ids, 3, &rows, &y) == -1 && strstr(pika_last_error(), "no rows selected"), "%s",
          pika_last_error());
    CHECK(pika_labels_select(p, "id", "y", "train", ids, 3, &rows, &y) == -1 && strstr(pika_last_error(), "FIELD=VALUE"), "%s",
          pika_last_error());
    char *ids2[2] = {"a", "zz"};
    CHECK(pika_labels_select(p, "id", "y", NULL, ids2, 2, &rows, &y) == -1 && strstr(pika_last_error(), "'zz'"), "%s", pika_last_error());
}

static void test_rollouts_reader(void) {
    const char *dir = test_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/graded.jsonl", dir);
    const char *txt = "{\"id\":3,\"correct\":true,\"tokens_in\":5,\"tokens_out\":7,\"model\":\"m\",\"answer\":\"4\"}\n"
                      "{\"id\":\"b\",\"correct\":0}\n"
                      "{\"id\":\"c\"}\n";
    write_file(p, txt, strlen(txt));
    pika_rollout *r;
    int n;
    int64_t bad;
    int nb = 0;
    REQUIRE(pika_rollouts_read_graded(p, &r, &n, count_bad, &nb, &bad) == 0, "%s", pika_last_error());
    CHECK(n == 2 && bad == 1 && nb == 1, "2 read, 1 bad");
    CHECK(!strcmp(r[0].id, "3") && r[0].correct == 1 && r[0].tokens_out == 7 && !strcmp(r[0].answer, "4"), "row 0");
    CHECK(!strcmp(r[1].id, "b") && r[1].correct == 0 && !strcmp(r[1].model, "") && !r[1].answer && r[1].sample == 1, "row 1");
    pika_rollouts_graded_free(r, n);
    CHECK(pika_rollouts_read_graded(p, &r, &n, NULL, NULL, NULL) == -1 && strstr(pika_last_error(), "graded.jsonl:3:"), "strict: %s",
          pika_last_error());
    write_file(p, "", 0);
    CHECK(pika_rollouts_read_graded(p, &r, &n, NULL, NULL, NULL) == -1 && strstr(pika_last_error(), "no graded rollouts"), "empty: %s",
          pika_last_error());
}

/* the labels writer and reader are one format: what pika_labels_write writes, pika_labels_read reads */
static void test_labels_write_read(void) {
    pika_rollout r[3] = {{.id = "7", .model = "m", .correct = 1, .answer = "2", .tokens_out = 10},
                         {.id = "7", .model = "m", .correct = 0, .answer = "3", .tokens_out = 20},
                         {.id = "1.5", .model = "m", .correct = 1, .answer = "2", .tokens_out = 30}};
    int ks[1] = {1};
    pika_label_opts lo = {.ks = ks, .nk = 1};
    pika_label *L;
    int nl;
    REQUIRE(pika_label_aggregate(r, 3, &lo, &L, &nl) == 0 && nl == 2, "aggregate");
    char p[512];
    snprintf(p, sizeof p, "%s/labels.jsonl", test_tmpdir());
    FILE *f = fopen(p, "w");
    REQUIRE(f, "open");
    int rc = pika_labels_write(f, L, nl, NULL, 0, NULL, NULL);
    fclose(f);
    REQUIRE(rc == 0, "%s", pika_last_error());
    pika_labels R;
    const char *fields[3] = {"n", "success_rate", "pass@1"};
    REQUIRE(pika_labels_read(&R, p, "id", 3, fields, NULL) == 0, "%s", pika_last_error());
    CHECK(R.n == 2 && !strcmp(R.ids[0], "7") && !strcmp(R.ids[1], "1.5"), "ids");
    CHECK(R.vals[0] == 2 && R.vals[1] == 0.5 && R.vals[2] == 0.5 && R.vals[3] == 1 && R.vals[4] == 1, "values");
    pika_labels_free(&R);
    char *txt = pika_read_file(p, NULL);
    CHECK(txt && strstr(txt, "\"majority_answer\":\"2\"") && strstr(txt, "\"total_tokens_out\":30") && !strstr(txt, "cost"), "%s", txt);
    free(txt);
    pika_label_free(L, nl);
}

static void test_cli_empty_inputs(void) {
    const char *dir = test_tmpdir();
    char data[512], empty[512], cmd[2048];
    snprintf(data, sizeof data, "%s/qs.jsonl", dir);
    snprintf(empty, sizeof empty, "%s/empty.jsonl", dir);
    const char *qs = "{\"id\":\"a\",\"problem\":\"1+1?\",\"answer\":\"2\"}\n";
    write_file(data, qs, strlen(qs));
    write_file(empty, "", 0);
    int st;
    snprintf(cmd, sizeof cmd, "%s grade rollouts --rollouts %s --data %s -o %s/out.jsonl 2>&1", test_pika_bin(), empty, data, dir);
    char *out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "no rollouts"), "grade rollouts on an empty file (%d): %s", st, out);
    free(out);
    snprintf(cmd, sizeof cmd, "%s labels --rollouts %s -o %s/labels.jsonl 2>&1", test_pika_bin(), empty, dir);
    out = test_run(cmd, &st);
    CHECK(st == 2 && strstr(out, "no graded rollouts"), "labels on an empty file (%d): %s", st, out);
    free(out);
}

int main(void) {
    RUN(test_json_id_rule);
    RUN(test_strmap_and_hash);
    RUN(test_jsonl_reader);
    RUN(test_corrupt_gz_message);
    RUN(test_labels_reader_ids);
    RUN(test_labels_select);
    RUN(test_rollouts_reader);
    RUN(test_labels_write_read);
    RUN(test_cli_empty_inputs);
    return test_summary("formats");
}
