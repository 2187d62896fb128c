/* fuzz_tokenizer.c — tokenize arbitrary bytes (src/text/tokenizer*.c) with real vocabularies:
 * the Qwen2 BPE and Llama-2 SPM vocab GGUFs of ../shared/fixtures/tokenizer (or $PIKA_SHARED),
 * falling back to none when absent (the harness then only exercises load errors). The first byte
 * picks vocab, add_special, parse_special and NFC; decode(encode(x)) must give x back for SPM's
 * byte fallback and for valid UTF-8 with BPE, and the streaming decoder must agree with the whole one. */
#include "fuzz_common.h"
#include "pika/gguf.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static pika_tokenizer *vocabs[2];
static int loaded;

static pika_tokenizer *load(const char *rel) {
    const char *sh = getenv("PIKA_SHARED");
    char p[1024];
    snprintf(p, sizeof p, "%s/fixtures/tokenizer/%s", sh && *sh ? sh : "../shared", rel);
    pika_gguf *g = pika_gguf_open(p);
    if (!g) { fprintf(stderr, "fuzz_tokenizer: %s (set PIKA_SHARED)\n", pika_last_error()); return NULL; }
    pika_tokenizer *t = pika_tokenizer_from_gguf(g);
    pika_gguf_close(g);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!loaded) {
        vocabs[0] = load("ggml-vocab-qwen2.gguf");
        vocabs[1] = load("ggml-vocab-llama-spm.gguf");
        loaded = 1;
    }
    if (size == 0 || size > 1 << 14) return 0;
    pika_tokenizer *t = vocabs[data[0] & 1];
    if (!t) return 0;
    bool add_special = (data[0] >> 1) & 1, parse_special = (data[0] >> 2) & 1, nfc = (data[0] >> 3) & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    pika_tokenizer_set_nfc(t, nfc);
    int32_t *ids;
    int n = pika_tokenize(t, text, len, add_special, parse_special, &ids);
    pika_tokenizer_set_nfc(t, false);
    if (n < 0) return 0;
    char *out;
    size_t olen;
    if (pika_detokenize(t, ids, n, true, &out, &olen) == 0) {
        /* the streaming decoder gives the same bytes */
        pika_detok_stream s;
        pika_detok_stream_init(&s, t, true);
        int cap = pika_tokenizer_max_piece_len(t) + 8;
        char *buf = malloc((size_t)cap), *acc = malloc(olen + 8);
        size_t m = 0;
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            int k = pika_detok_stream_push(&s, ids[i], buf, cap);
            if (k < 0 || m + (size_t)k > olen) { ok = 0; break; }
            memcpy(acc + m, buf, (size_t)k);
            m += (size_t)k;
        }
        int k = ok ? pika_detok_stream_flush(&s, buf, cap) : -1;
        if (k >= 0 && m + (size_t)k <= olen) { memcpy(acc + m, buf, (size_t)k); m += (size_t)k; }
        else ok = 0;
        if (!ok || m != olen || memcmp(acc, out, olen) != 0) {
            fprintf(stderr, "streaming decode differs from pika_detokenize\n");
            abort();
        }
        free(buf);
        free(acc);
        free(out);
    }
    free(ids);
    return 0;
}
