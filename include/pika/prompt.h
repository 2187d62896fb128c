/* prompt.h — the prompt recipe: how a question becomes the model's prompt. One object resolves the
 * chat template once (a built-in by name, a Jinja file, or the GGUF's tokenizer.chat_template; or
 * raw text with no template), keeps it parsed, and turns each question into the prompt text, its
 * token ids and the number of end-of-instruction (EOI) tokens at its end. `pika extract`,
 * `pika sample`, `pika generate` and `pika prompt` all build prompts through it, so activations,
 * answers and printed prompts come from the very same bytes. Its provenance (a stable JSON object:
 * template source + fingerprint, system, user prefix/suffix, kwargs, date, BOS/EOS policy) is what
 * activation stores and rollouts record and compare on --resume.
 *
 * Per question (template mode): messages = [system?] + [user: prefix + question + suffix], rendered
 * with add_generation_prompt (default true), tokenized with add_special=false, parse_special=true
 * (the template prints BOS itself), EOI = the tokens after the user content. The text after the
 * user content is found once, when the recipe is made (a render with a sentinel for the content), so
 * each question is rendered once. Raw mode: the text prefix + question + suffix tokenized with BOS as
 * the vocab asks; EOI = the last token.
 *
 *   pika_prompt_opts o; pika_prompt_opts_default(&o); o.user_suffix = "\nPlease reason step by step.";
 *   pika_prompt_recipe *r = pika_prompt_recipe_new(gguf, tok, &o);   // NULL + error
 *   pika_prompt p; pika_prompt_build(r, "What is 2+2?", &p);         // p.ids[p.n_ids], p.n_eoi
 *   pika_prompt_free(&p); pika_prompt_recipe_free(r);
 *
 * A recipe is immutable once made: any number of threads may build prompts with it at once.
 */
#ifndef PIKA_PROMPT_H
#define PIKA_PROMPT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pika/gguf.h"
#include "pika/tokenizer.h"

typedef struct {
    /* template source, first match wins: template_name (a built-in, see pika_chat_builtin_list),
     * template_file (a Jinja file), the GGUF's tokenizer.chat_template; no_template = raw text */
    const char *template_name;
    const char *template_file;
    int no_template;
    const char *system;      /* system message, or NULL for none */
    const char *user_prefix; /* put before every question (NULL = "") */
    const char *user_suffix; /* appended to every question, e.g. "\nPlease reason step by step, ..." (a real newline) */
    const char *user_suffix_file; /* read the suffix from this file instead (exact bytes, one final "\n" dropped) */
    const char *kwargs_json; /* extra template variables as a JSON object, e.g. {"enable_thinking": false}; NULL = none */
    const char *date;        /* "YYYY-MM-DD" that strftime_now() returns; NULL = today */
    const char *bos_token;   /* bos_token text for the template; NULL = the GGUF's (undefined without one) */
    const char *eos_token;   /* eos_token text; NULL = the GGUF's */
    int add_generation_prompt; /* default 1 */
} pika_prompt_opts;

void pika_prompt_opts_default(pika_prompt_opts *o);

/* The one command-line parser of the recipe flags (for extract, sample, generate, prompt, the server):
 *   --system TEXT  --prefix TEXT  --suffix TEXT  --suffix-file FILE  --template NAME
 *   --template-file FILE  --no-template  --kwargs JSON  --date YYYY-MM-DD  --bos TEXT  --eos TEXT
 *   --no-generation-prompt
 * pika_prompt_flag_arity: 1 when flag takes a value, 0 for a switch, -1 when it is not a recipe flag.
 * pika_prompt_parse_flag: 1 when taken (value borrowed), 0 when not a recipe flag, -1 + error. */
int pika_prompt_flag_arity(const char *flag);
int pika_prompt_parse_flag(pika_prompt_opts *o, const char *flag, const char *value);
/* Help lines of those flags (static). */
const char *pika_prompt_flags_help(void);

typedef struct pika_prompt_recipe pika_prompt_recipe;

/* Resolve and parse the template. g: the model's GGUF (template, BOS/EOS texts), may be NULL when a
 * template is named or given as a file. tok: needed to build ids (pika_prompt_build), may be NULL for
 * text only. The recipe copies what it needs from o, g and tok is borrowed (must outlive it).
 * NULL + error: unknown built-in (the error lists the choices), unreadable file, a template with a
 * syntax error, kwargs that are not a JSON object, no template at all ("M has no chat template; pass
 * --template NAME (...), --template-file FILE or --no-template"), raw mode without a tokenizer... */
pika_prompt_recipe *pika_prompt_recipe_new(const pika_gguf *g, const pika_tokenizer *tok, const pika_prompt_opts *o);
void pika_prompt_recipe_free(pika_prompt_recipe *r);

/* A built prompt: text (malloc'ed, NUL-terminated, len bytes; in raw mode without the BOS the ids
 * start with), ids[n_ids] and the EOI count: the EOI tokens are ids[n_ids - n_eoi .. n_ids). */
typedef struct {
    char *text;
    size_t len;
    int32_t *ids;
    int n_ids;
    int n_eoi;
} pika_prompt;
void pika_prompt_free(pika_prompt *p);

/* The prompt of one question. 0, or -1 + error (template error, a question that tokenizes to
 * nothing, a template that leaves no EOI tokens, no tokenizer). */
int pika_prompt_build(const pika_prompt_recipe *r, const char *question, pika_prompt *out);
/* Any conversation (a cJSON array of {"role", "content"}), rendered with the recipe's template and
 * options (the system message and prefix/suffix of the recipe are not applied). n_eoi = tokens after
 * the last user message's content (0 without a user message). Not in raw mode. */
int pika_prompt_build_messages(const pika_prompt_recipe *r, const cJSON *messages, pika_prompt *out);

/* Text only (e.g. for an OpenAI /v1/completions client): the rendered prompt of one question or of a
 * conversation, malloc'ed (*len bytes), NULL + error. */
char *pika_prompt_render(const pika_prompt_recipe *r, const char *question, size_t *len);
char *pika_prompt_render_messages(const pika_prompt_recipe *r, const cJSON *messages, size_t *len);
/* The messages list of one question (for an OpenAI /v1/chat/completions client): [system?] + [user:
 * prefix + question + suffix]. Caller frees with cJSON_Delete. */
cJSON *pika_prompt_messages(const pika_prompt_recipe *r, const char *question);
/* A conversation: a JSON array of objects, each with a string "role" (OpenAI's messages list).
 * pika_prompt_messages_check: 0, or -1 + error "message K is not an object with a string \"role\"".
 * pika_prompt_messages_read: read one from a file ("-" = stdin) and check it; NULL + error naming the file. */
int pika_prompt_messages_check(const cJSON *messages);
cJSON *pika_prompt_messages_read(const char *path);

/* Provenance, a stable compact JSON object (same options -> same bytes):
 * {"template": NAME|FILE|"gguf"|"none", "template_fingerprint": 16 hex|"none", "system": S|null,
 *  "user_suffix": S, ["kwargs": {...},] "template_source": "builtin"|"file"|"gguf"|"none",
 *  "user_prefix": S, "date": D|null, "bos_token": S|null, "eos_token": S|null,
 *  "add_generation_prompt": bool, "bos": "template"|"vocab"}
 * (the first five keys are those pika wrote before the recipe existed, in the same order). */
const char *pika_prompt_recipe_json(const pika_prompt_recipe *r);
/* The same as a new cJSON object (caller deletes). */
cJSON *pika_prompt_recipe_provenance(const pika_prompt_recipe *r);
/* Where the template came from, for messages: the built-in's name, the file's path, "the GGUF's
 * template" or "no template". */
const char *pika_prompt_recipe_origin(const pika_prompt_recipe *r);
/* 1 in raw mode (no template). */
int pika_prompt_recipe_is_raw(const pika_prompt_recipe *r);

/* Compare a recorded provenance object with a recipe's (for --resume). 1 when they describe the same
 * recipe. A record written before the recipe existed (no "template_source") matches when its keys
 * all equal the recipe's. Keys named in ignore (NULL-terminated list, may be NULL) are skipped. */
int pika_prompt_provenance_matches(const cJSON *recorded, const cJSON *mine, const char *const *ignore);

#endif
