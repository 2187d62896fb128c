/* cli_prompt.c — `pika prompt`: render a conversation with a chat template (the model's own,
 * a file, or a built-in) and print it exactly, or its token ids and EOI count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pika prompt (--model M.gguf | --template-file FILE.jinja | --template NAME)\n"
            "                   (--user TEXT [--system TEXT] | --messages FILE.json)\n"
            "                   [--no-generation-prompt] [--kwargs JSON] [--bos TEXT] [--eos TEXT]\n"
            "                   [--date YYYY-MM-DD] [--ids]\n"
            "       pika prompt --list-templates\n\n"
            "Prints the rendered prompt exactly (no newline added), as Hugging Face apply_chat_template.\n"
            "  --model M.gguf          template (tokenizer.chat_template), BOS/EOS texts and tokenizer from the GGUF\n"
            "  --template-file F       Jinja chat template file (overrides the GGUF's)\n"
            "  --template NAME         a built-in template (overrides both): %s\n"
            "  --user/--system TEXT    a one-turn conversation\n"
            "  --messages FILE.json    JSON array of {\"role\": ..., \"content\": ...} (\"-\" = stdin)\n"
            "  --no-generation-prompt  add_generation_prompt=false (default true)\n"
            "  --kwargs JSON           extra template variables, e.g. '{\"enable_thinking\": false}'\n"
            "  --bos/--eos TEXT        bos_token / eos_token (default: the GGUF's, else undefined)\n"
            "  --date YYYY-MM-DD       date strftime_now() returns (default: today)\n"
            "  --ids                   with --model: print the token ids (one line) and \"eoi N\", the number\n"
            "                          of end-of-instruction tokens at the end (tokens after the user content)\n",
            pika_chat_builtin_list());
}

int cmd_prompt(int argc, char **argv) {
    const char *model = NULL, *tfile = NULL, *tname = NULL, *user = NULL, *system = NULL, *mfile = NULL;
    const char *kwjson = NULL, *bos_arg = NULL, *eos_arg = NULL, *date = NULL;
    int gen = 1, ids = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
#define VAL(flag, var)                                                       \
    if (!strcmp(a, flag)) {                                                  \
        if (!has) pika_die("prompt: %s needs a value", flag);                \
        var = argv[++i];                                                     \
        continue;                                                            \
    }
        VAL("--model", model);
        VAL("--template-file", tfile);
        VAL("--template", tname);
        VAL("--user", user);
        VAL("--system", system);
        VAL("--messages", mfile);
        VAL("--kwargs", kwjson);
        VAL("--bos", bos_arg);
        VAL("--eos", eos_arg);
        VAL("--date", date);
#undef VAL
        if (!strcmp(a, "--no-generation-prompt")) { gen = 0; continue; }
        if (!strcmp(a, "--ids")) { ids = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--list-templates")) {
            for (int k = 0; k < pika_chat_n_builtin(); k++)
                printf("%-14s %s\n", pika_chat_builtin_name(k), pika_chat_builtin_about(k));
            return 0;
        }
        fprintf(stderr, "pika: prompt: unknown option '%s'\n", a);
        usage(stderr);
        return 2;
    }
    if (!model && !tfile && !tname) pika_die("prompt: give --model M.gguf, --template-file FILE or --template NAME");
    if (!user && !mfile) pika_die("prompt: give --user TEXT or --messages FILE.json");
    if (user && mfile) pika_die("prompt: --user and --messages are exclusive");
    if (system && !user) pika_die("prompt: --system goes with --user (put it in --messages otherwise)");
    if (ids && !model) pika_die("prompt: --ids needs --model (the tokenizer)");

    /* conversation */
    cJSON *messages;
    if (mfile) {
        size_t n;
        char *txt;
        if (!(txt = !strcmp(mfile, "-") ? pika_read_stream(stdin, &n) : pika_read_file(mfile, &n))) {
            pika_die("%s", pika_last_error());
        }
        messages = cJSON_ParseWithLength(txt, n);
        free(txt);
        if (!messages || !cJSON_IsArray(messages)) pika_die("%s: not a JSON array of messages", mfile);
        int k = 0;
        for (cJSON *m = messages->child; m; m = m->next, k++)
            if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
                pika_die("%s: message %d is not an object with a string \"role\"", mfile, k);
    } else {
        messages = pika_chat_messages(system, user);
    }
    cJSON *kwargs = NULL;
    if (kwjson) {
        kwargs = cJSON_Parse(kwjson);
        if (!kwargs || !cJSON_IsObject(kwargs)) pika_die("prompt: --kwargs must be a JSON object, got '%s'", kwjson);
    }

    /* template, special tokens, tokenizer */
    pika_gguf *g = NULL;
    pika_tokenizer *tok = NULL;
    char *tmpl = NULL, *bos = NULL, *eos = NULL;
    const char *origin = NULL;
    if (model) {
        if (!(g = pika_gguf_open(model))) pika_die("%s", pika_last_error());
        pika_chat_from_gguf(g, NULL, &tmpl, &bos, &eos);
        origin = model;
        if (ids && !(tok = pika_tokenizer_from_gguf(g))) pika_die("%s: %s", model, pika_last_error());
    }
    if (tfile) {
        free(tmpl);
        size_t n;
        if (!(tmpl = pika_read_file(tfile, &n))) pika_die("%s", pika_last_error());
        if (strlen(tmpl) != n) pika_die("%s: template contains a NUL byte", tfile);
        origin = tfile;
    }
    if (tname) {
        const char *src = pika_chat_builtin(tname);
        if (!src) pika_die("prompt: unknown template '%s'; choices: %s", tname, pika_chat_builtin_list());
        free(tmpl);
        tmpl = pika_strdup(src);
        origin = tname;
    }
    if (!tmpl)
        pika_die("%s has no tokenizer.chat_template; choose a built-in with --template NAME: %s", model,
                 pika_chat_builtin_list());

    pika_chat_opts o = {
        .add_generation_prompt = gen,
        .bos_token = bos_arg ? bos_arg : bos,
        .eos_token = eos_arg ? eos_arg : eos,
        .kwargs = kwargs,
        .date = date,
    };
    if (ids) {
        pika_chat_prompt p;
        if (pika_chat_prompt_build(tok, tmpl, messages, &o, &p) < 0) pika_die("%s: %s", origin, pika_last_error());
        for (int i = 0; i < p.n_ids; i++) printf(i ? " %d" : "%d", p.ids[i]);
        printf("\neoi %d\n", p.n_eoi);
        pika_chat_prompt_free(&p);
    } else {
        size_t len;
        char *out = pika_chat_render(tmpl, messages, &o, &len);
        if (!out) pika_die("%s: %s", origin, pika_last_error());
        fwrite(out, 1, len, stdout);
        free(out);
    }
    if (fflush(stdout) != 0) pika_die("prompt: write error");
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
    free(tmpl);
    free(bos);
    free(eos);
    cJSON_Delete(kwargs);
    cJSON_Delete(messages);
    return 0;
}
