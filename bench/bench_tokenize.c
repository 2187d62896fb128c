/* bench_tokenize.c — tokenizer throughput in MB/s for English prose and for code, on the vocab
 * GGUFs in ../shared/fixtures/tokenizer (or $PIKA_SHARED): `bench_tokenize [MB=4] [reps=3]`.
 * The prose is the English paragraph below, the code a C snippet; both
 * are repeated to MB megabytes and tokenized in one call (add_special, parse_special off).
 * Prints one line per vocab and text: best-of-reps MB/s, tokens per MB, and decode MB/s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/gguf.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static const char PROSE[] =
    "The history of mathematics spans thousands of years. Early civilizations in Mesopotamia and Egypt "
    "developed arithmetic and geometry to solve practical problems such as measuring land, computing taxes "
    "and predicting the seasons. Babylonian scribes wrote numbers in base 60 on clay tablets, and some of "
    "those tablets contain tables of reciprocals, squares and even Pythagorean triples such as (3, 4, 5) "
    "and (119, 120, 169). Greek mathematicians, notably Euclid, organized geometry into a deductive system "
    "built on definitions, postulates and proofs. Later, scholars in India introduced a place-value system "
    "with a symbol for zero, which travelled west through the Islamic world, where al-Khwarizmi wrote the "
    "book whose title gave us the word \"algebra\". It's remarkable how far we've come since then!\n\n";

static const char CODE[] =
    "static int parse_list(const char *s, int32_t **out) {\n"
    "    int cap = 16, n = 0;\n"
    "    int32_t *v = malloc(sizeof(int32_t) * (size_t)cap);\n"
    "    for (const char *p = s;;) {\n"
    "        while (*p == ' ' || *p == ',') p++;   // skip separators\n"
    "        if (!*p) break;\n"
    "        char *end;\n"
    "        long long x = strtoll(p, &end, 10);\n"
    "        if (end == p || x < INT32_MIN || x > INT32_MAX) { free(v); return -1; }\n"
    "        if (n == cap) { cap *= 2; v = realloc(v, sizeof(int32_t) * (size_t)cap); }\n"
    "        v[n++] = (int32_t)x;\n"
    "        p = end;\n"
    "    }\n"
    "    *out = v;\n"
    "    return n;\n"
    "}\n\n"
    "def fib(n: int) -> list[int]:\n"
    "    a, b = 0, 1\n"
    "    out = []\n"
    "    for _ in range(n):\n"
    "        out.append(a)\n"
    "        a, b = b, a + b\n"
    "    return out\n\n";

static char *repeat(const char *unit, size_t n) {
    size_t ul = strlen(unit);
    char *b = pika_malloc(n + 1);
    for (size_t i = 0; i < n; i++) b[i] = unit[i % ul];
    b[n] = 0;
    return b;
}

int main(int argc, char **argv) {
    double mb = argc > 1 ? atof(argv[1]) : 4;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (mb <= 0 || reps < 1) { fprintf(stderr, "usage: bench_tokenize [MB] [reps]\n"); return 2; }
    const char *shared = getenv("PIKA_SHARED");
    if (!shared || !*shared) shared = "../shared";
    size_t n = (size_t)(mb * 1024 * 1024);
    char *texts[2] = {repeat(PROSE, n), repeat(CODE, n)};
    const char *names[2] = {"prose", "code"};
    const char *vocabs[] = {"qwen2", "llama-bpe", "gpt-2", "deepseek-coder", "llama-spm", "phi-3"};
    int any = 0;
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/fixtures/tokenizer/ggml-vocab-%s.gguf", shared, vocabs[v]);
        pika_gguf *g = pika_gguf_open(path);
        if (!g) { fprintf(stderr, "skip %s: %s\n", vocabs[v], pika_last_error()); continue; }
        double t0 = pika_now();
        pika_tokenizer *t = pika_tokenizer_from_gguf(g);
        double t_load = pika_now() - t0;
        pika_gguf_close(g);
        if (!t) { fprintf(stderr, "skip %s: %s\n", vocabs[v], pika_last_error()); continue; }
        any = 1;
        for (int k = 0; k < 2; k++) {
            double best = 1e30, best_dec = 1e30;
            int n_ids = 0;
            for (int r = 0; r < reps; r++) {
                int32_t *ids;
                t0 = pika_now();
                n_ids = pika_tokenize(t, texts[k], n, false, false, &ids);
                double dt = pika_now() - t0;
                if (n_ids < 0) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
                best = dt < best ? dt : best;
                char *out;
                size_t len;
                t0 = pika_now();
                if (pika_detokenize(t, ids, n_ids, false, &out, &len) != 0) { fprintf(stderr, "%s\n", pika_last_error()); return 2; }
                dt = pika_now() - t0;
                best_dec = dt < best_dec ? dt : best_dec;
                if (len != n || memcmp(out, texts[k], n)) fprintf(stderr, "warning: %s %s does not round trip\n", vocabs[v], names[k]);
                free(out);
                free(ids);
            }
            printf("tokenize %-15s %-5s %8.1f MB/s  %7.0f tokens/MB  decode %8.1f MB/s  (load %.2f s)\n", vocabs[v],
                   names[k], mb / best, n_ids / mb, mb / best_dec, t_load);
        }
        pika_tokenizer_free(t);
    }
    free(texts[0]);
    free(texts[1]);
    if (!any) { fprintf(stderr, "no vocab found under %s/fixtures/tokenizer\n", shared); return 2; }
    return 0;
}
