/* fuzz_gguf.c — the GGUF reader (src/engine/gguf.c) and, when the metadata holds a vocabulary, the
 * tokenizer built from it (src/text/tokenizer.c): every metadata value and tensor is touched, then
 * a short text is tokenized and detokenized. */
#include "fuzz_common.h"
#include "pika/gguf.h"
#include "pika/tokenizer.h"

static void touch_value(const pika_gguf_value *v) {
    volatile uint64_t sink = 0;
    if (v->type == PIKA_GGUF_STRING) {
        for (uint64_t i = 0; i < v->v.str.len; i++) sink += (unsigned char)v->v.str.ptr[i];
    } else if (v->type == PIKA_GGUF_ARRAY) {
        uint64_t n = v->v.arr.n < 256 ? v->v.arr.n : 256;
        if (v->v.arr.items) {
            for (uint64_t i = 0; i < n; i++) touch_value(&v->v.arr.items[i]);
        } else {
            for (uint64_t i = 0; i < n; i++) sink += (uint64_t)pika_gguf_arr_int(v, i) + (pika_gguf_arr_float(v, i) > 0);
            if (v->v.arr.n) sink += (uint64_t)pika_gguf_arr_int(v, v->v.arr.n - 1);
        }
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    fuzz_memfile(data, size, path, sizeof path);
    pika_gguf *g = pika_gguf_open(path);
    if (!g) return 0;
    for (uint64_t i = 0; i < g->n_kv; i++) touch_value(&g->kv[i].val);
    volatile unsigned sink = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const pika_gguf_tensor *t = &g->tensors[i];
        const unsigned char *p = t->data;
        sink += p[0] + p[t->nbytes - 1];
        sink += pika_gguf_find_tensor(g, t->name) != NULL;
    }
    (void)sink;
    pika_tokenizer *tok = pika_tokenizer_from_gguf(g);
    pika_gguf_close(g); /* the tokenizer copies what it needs */
    if (tok) {
        static const char text[] = "Hello world <|im_start|>\xc3\xa9 123\n\xff";
        int32_t *ids;
        int n = pika_tokenize(tok, text, sizeof text - 1, true, true, &ids);
        if (n >= 0) {
            char *out;
            size_t len;
            if (pika_detokenize(tok, ids, n, true, &out, &len) == 0) free(out);
            free(ids);
        }
        pika_tokenizer_free(tok);
    }
    return 0;
}
