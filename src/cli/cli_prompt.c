/* cli_prompt.c — `pika prompt`: render a conversation with a chat template (the model's own,
 * a file, or a built-in) and print it exactly, or its token ids and EOI count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/chat.h"
#include "pika/gguf.h"
#include "pika/prompt.h"
#include "pika/tokenizer.h"
#include "pika/util.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pika prompt (--model M.gguf | --template-file FILE.jinja | --template NAME)\n"
            "                   (--user TEXT [--system TEXT] | --messages FILE.json)\n"
            "                   [--no-generation-prompt] [--kwargs JSON] [--bos TEXT] [--eos TEXT]\n"
            "                   [--date YYYY-MM-DD] [--prefix TEXT] [--suffix TEXT] [--ids] [--provenance]\n"
            "       pika prompt --list-templates\n\n"
            "Prints the rendered prompt exactly (no newline added), as Hugging Face apply_chat_template; the\n"
            "prompt recipe (template, system, prefix/suffix, kwargs, date) is the one extract, sample and\n"
            "generate use with the same flags.\n"
            "  --model M.gguf          template (tokenizer.chat_template), BOS/EOS texts and tokenizer from the GGUF\n"
            "  --template-file F       Jinja chat template file (overrides the GGUF's)\n"
            "  --template NAME         a built-in template (overrides both): %s\n"
            "  --user/--system TEXT    a one-turn conversation (--prefix/--suffix wrap the user text)\n"
            "  --messages FILE.json    JSON array of {\"role\": ..., \"content\": ...} (\"-\" = stdin)\n"
            "  --no-generation-prompt  add_generation_prompt=false (default true)\n"
            "  --kwargs JSON           extra template variables, e.g. '{\"enable_thinking\": false}'\n"
            "  --bos/--eos TEXT        bos_token / eos_token (default: the GGUF's, else undefined)\n"
            "  --date YYYY-MM-DD       date strftime_now() returns (default: today)\n"
            "  --ids                   with --model: print the token ids (one line) and \"eoi N\", the number\n"
            "                          of end-of-instruction tokens at the end (tokens after the user content)\n"
            "  --provenance            print the recipe's provenance JSON (what stores and rollouts record)\n",
            pika_chat_builtin_list());
}

int cmd_prompt(int argc, char **argv) {
    const char *model = NULL, *user = NULL, *mfile = NULL;
    int ids = 0, provenance = 0;
    pika_prompt_opts po;
    pika_prompt_opts_default(&po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int ar = pika_prompt_flag_arity(a);
        if (ar >= 0) {
            if (ar && i + 1 >= argc) pika_die("prompt: %s needs a value", a);
            if (pika_prompt_parse_flag(&po, a, ar ? argv[++i] : NULL) < 0) pika_die("prompt: %s", pika_last_error());
            continue;
        }
        const char **slot = !strcmp(a, "--model") ? &model : !strcmp(a, "--user") ? &user
                          : !strcmp(a, "--messages") ? &mfile : NULL;
        if (slot) {
            if (i + 1 >= argc) pika_die("prompt: %s needs a value", a);
            *slot = argv[++i];
            continue;
        }
        if (!strcmp(a, "--ids")) { ids = 1; continue; }
        if (!strcmp(a, "--provenance")) { provenance = 1; continue; }
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
    if (!model && !po.template_file && !po.template_name && !po.no_template)
        pika_die("prompt: give --model M.gguf, --template-file FILE or --template NAME");
    if (!provenance && !user && !mfile) pika_die("prompt: give --user TEXT or --messages FILE.json");
    if (user && mfile) pika_die("prompt: --user and --messages are exclusive");
    if (po.system && !user && !provenance) pika_die("prompt: --system goes with --user (put it in --messages otherwise)");
    if (ids && !model) pika_die("prompt: --ids needs --model (the tokenizer)");
    if (po.no_template && !model) pika_die("prompt: --no-template needs --model (the tokenizer)");

    /* conversation */
    cJSON *messages = NULL;
    if (mfile && !(messages = pika_prompt_messages_read(mfile))) pika_die("%s", pika_last_error());

    /* template, special tokens, tokenizer: the prompt recipe */
    pika_gguf *g = NULL;
    pika_tokenizer *tok = NULL;
    if (model) {
        if (!(g = pika_gguf_open(model))) pika_die("%s", pika_last_error());
        if ((ids || po.no_template) && !(tok = pika_tokenizer_from_gguf(g))) pika_die("%s: %s", model, pika_last_error());
    }
    pika_prompt_recipe *rec = pika_prompt_recipe_new(g, tok, &po);
    if (!rec) pika_die("prompt: %s%s%s", model && !po.template_name && !po.template_file ? model : "",
                       model && !po.template_name && !po.template_file ? ": " : "", pika_last_error());
    const char *origin = pika_prompt_recipe_origin(rec);
    if (provenance) {
        printf("%s\n", pika_prompt_recipe_json(rec));
    } else if (ids) {
        pika_prompt p;
        int rc = messages ? pika_prompt_build_messages(rec, messages, &p) : pika_prompt_build(rec, user, &p);
        if (rc < 0) pika_die("%s: %s", origin, pika_last_error());
        for (int i = 0; i < p.n_ids; i++) printf(i ? " %d" : "%d", p.ids[i]);
        printf("\neoi %d\n", p.n_eoi);
        pika_prompt_free(&p);
    } else {
        size_t len;
        char *out = messages ? pika_prompt_render_messages(rec, messages, &len) : pika_prompt_render(rec, user, &len);
        if (!out) pika_die("%s: %s", origin, pika_last_error());
        fwrite(out, 1, len, stdout);
        free(out);
    }
    if (fflush(stdout) != 0) pika_die("prompt: write error");
    pika_prompt_recipe_free(rec);
    pika_tokenizer_free(tok);
    pika_gguf_close(g);
    cJSON_Delete(messages);
    return 0;
}
