/* mathtask_data.c — write a split of pika's synthetic math task (mathtask.h) as a dataset JSONL
 * that `pika extract`, `pika sample`, `pika grade` and the probe commands read:
 *   {"id", "problem", "answer", "level" (human rating 1..5), "split", "n_digits", "n_ops", "has_mul",
 *    "word", "distractor", "n_carries", "answer_digits"}
 * "split" divides the rows for probe training: "train" for 7 of every 10 rows, "test" for the rest.
 * usage: mathtask_data [--split train|test] [--n N] [--task-seed S] [--start I] --out FILE.jsonl */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/mathtask.h"
#include "pika/util.h"

int main(int argc, char **argv) {
    int split = PIKA_MATH_TEST;
    long long n = 500, start = 0;
    unsigned long long seed = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: mathtask_data [--split train|test] [--n N] [--task-seed S] [--start I] --out FILE.jsonl\n");
            return 0;
        }
        if (i + 1 >= argc) pika_die("mathtask_data: %s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--split")) {
            if (!strcmp(v, "train")) split = PIKA_MATH_TRAIN;
            else if (!strcmp(v, "test")) split = PIKA_MATH_TEST;
            else pika_die("mathtask_data: --split is train or test");
        } else if (!strcmp(a, "--n")) n = atoll(v);
        else if (!strcmp(a, "--start")) start = atoll(v);
        else if (!strcmp(a, "--task-seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--out")) out = v;
        else pika_die("mathtask_data: unknown option %s", a);
    }
    if (!out || n < 1 || start < 0) pika_die("mathtask_data: --out FILE and a positive --n are required");
    FILE *f = fopen(out, "w");
    if (!f) pika_die("cannot write %s", out);
    for (long long i = start; i < start + n; i++) {
        pika_math_problem p;
        pika_math_problem_at(seed, split, i, &p);
        char id[64], ans[32];
        snprintf(id, sizeof id, "%s-%lld", split == PIKA_MATH_TEST ? "test" : "train", i);
        pika_math_answer_text(p.answer, ans, sizeof ans);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", id);
        cJSON_AddStringToObject(j, "problem", p.question);
        cJSON_AddStringToObject(j, "answer", ans);
        cJSON_AddNumberToObject(j, "level", p.human_rating);
        cJSON_AddStringToObject(j, "split", i % 10 < 7 ? "train" : "test");
        cJSON_AddNumberToObject(j, "n_digits", p.n_digits);
        cJSON_AddNumberToObject(j, "n_ops", p.n_ops);
        cJSON_AddNumberToObject(j, "has_mul", p.has_mul);
        cJSON_AddNumberToObject(j, "word", p.word);
        cJSON_AddNumberToObject(j, "distractor", p.distractor);
        cJSON_AddNumberToObject(j, "n_carries", p.n_carries);
        cJSON_AddNumberToObject(j, "answer_digits", p.answer_digits);
        char *line = cJSON_PrintUnformatted(j);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(j);
    }
    if (fclose(f) != 0) pika_die("cannot write %s", out);
    return 0;
}
