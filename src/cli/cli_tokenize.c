/* cli_tokenize.c — `pika tokenize` (all of stdin -> ids on one line) and `pika detokenize`
 * (ids -> bytes on stdout). Thin layer over include/pika/tokenizer.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/gguf.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static char *read_all(FILE *f, size_t *len) {
    char *b = pika_read_stream(f, len);
    if (!b) pika_die("reading stdin failed: %s", pika_last_error());
    return b;
}

static pika_tokenizer *open_tokenizer(const char *path) {
    pika_gguf *g = pika_gguf_open(path);
    if (!g) pika_die("%s", pika_last_error());
    pika_tokenizer *t = pika_tokenizer_from_gguf(g);
    if (!t) pika_die("%s", pika_last_error());
    pika_gguf_close(g);
    return t;
}

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: pika tokenize --model M.gguf [--parse-special] [--no-bos] [--nfc]\n"
               "  Reads all of stdin as one string and prints its token ids, space-separated, on one line.\n"
               "  --parse-special  turn special-token texts (e.g. <|im_start|>) into their single ids\n"
               "  --no-bos         do not add BOS/EOS even when the vocab asks for them (add_special=false)\n"
               "  --nfc            NFC-normalize the text first, as Hugging Face's Qwen2 tokenizer does\n"
               "                   (default: no normalization, as llama.cpp)\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool parse_special = false, add_special = true, nfc = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--parse-special")) parse_special = true;
        else if (!strcmp(argv[i], "--no-bos")) add_special = false;
        else if (!strcmp(argv[i], "--nfc")) nfc = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { tokenize_usage(stdout); return 0; }
        else { tokenize_usage(stderr); pika_die("tokenize: unknown or incomplete option '%s'", argv[i]); }
    }
    if (!model) { tokenize_usage(stderr); pika_die("tokenize: --model is required"); }
    pika_tokenizer *t = open_tokenizer(model);
    pika_tokenizer_set_nfc(t, nfc);
    size_t len;
    char *text = read_all(stdin, &len);
    int32_t *ids;
    int n = pika_tokenize(t, text, len, add_special, parse_special, &ids);
    if (n < 0) pika_die("%s", pika_last_error());
    for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    free(text);
    pika_tokenizer_free(t);
    return fflush(stdout) == 0 ? 0 : 2;
}

static void detokenize_usage(FILE *f) {
    fprintf(f, "usage: pika detokenize --model M.gguf [--ids \"ID ID ...\"] [--no-special]\n"
               "  Writes the bytes the ids decode to (no newline added). Without --ids the ids are read\n"
               "  from stdin (whitespace or comma separated), so `pika tokenize ... | pika detokenize ...` works.\n"
               "  --no-special  drop control tokens (BOS, <|im_end|>, ...) instead of writing their text\n");
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *ids_arg = NULL;
    bool render_special = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) ids_arg = argv[++i];
        else if (!strcmp(argv[i], "--no-special")) render_special = false;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { detokenize_usage(stdout); return 0; }
        else { detokenize_usage(stderr); pika_die("detokenize: unknown or incomplete option '%s'", argv[i]); }
    }
    if (!model) { detokenize_usage(stderr); pika_die("detokenize: --model is required"); }
    char *owned = NULL;
    if (!ids_arg) {
        size_t len;
        owned = read_all(stdin, &len);
        if (memchr(owned, 0, len)) pika_die("detokenize: NUL byte in the id list on stdin");
        ids_arg = owned;
    }
    int32_t *ids = NULL;
    int n = pika_parse_int_list(ids_arg, &ids);
    if (n < 0) pika_die("detokenize: bad id list: %s", pika_last_error());
    pika_tokenizer *t = open_tokenizer(model);
    char *out;
    size_t len;
    if (pika_detokenize(t, ids, n, render_special, &out, &len) != 0) pika_die("detokenize: %s", pika_last_error());
    fwrite(out, 1, len, stdout);
    free(out);
    free(ids);
    free(owned);
    pika_tokenizer_free(t);
    return fflush(stdout) == 0 ? 0 : 2;
}
