/* chat.h — render a conversation with a model's chat template exactly as Hugging Face
 * `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=..., **kwargs)`
 * does (through the Jinja interpreter in jinja.h), tokenize it, and locate the end-of-instruction
 * (EOI) tokens: the tokens that follow the last user message's content up to the end of the prompt
 * (for Qwen2.5, `<|im_end|>\n<|im_start|>assistant\n` = 5 tokens).
 *
 * Messages are a cJSON array of objects ({"role": ..., "content": ...}, extra keys such as
 * tool_calls / reasoning_content are passed through unchanged).
 */
#ifndef PIKA_CHAT_H
#define PIKA_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "pika/gguf.h"
#include "pika/jinja.h"
#include "pika/tokenizer.h"

typedef struct {
    bool add_generation_prompt;
    const char *bos_token; /* bound to `bos_token`; NULL: the variable is undefined */
    const char *eos_token; /* bound to `eos_token`; NULL: undefined */
    const cJSON *kwargs;   /* object of extra variables (enable_thinking, reasoning_effort, ...), or NULL;
                              they win over bos_token/eos_token, as in transformers */
    const char *date;      /* "YYYY-MM-DD" pins strftime_now(); NULL: today (local time) */
} pika_chat_opts;

/* Built-in templates (used with --template NAME, or when a GGUF has no usable template). They
 * reproduce the named family's official template for system/user/assistant conversations
 * (no tools). */
int pika_chat_n_builtin(void);
const char *pika_chat_builtin_name(int i);
const char *pika_chat_builtin_about(int i);
/* Template source of a built-in by name (aliases accepted, e.g. "llama3" = "llama-3.1"); NULL if unknown. */
const char *pika_chat_builtin(const char *name);
/* "chatml, qwen2.5, ..." (static string) for error messages. */
const char *pika_chat_builtin_list(void);

/* Render. Returns a malloc'ed NUL-terminated string (*len = bytes) or NULL + error; template
 * errors read "chat template: <what> (choose a built-in with --template NAME: chatml, ...)", or
 * "chat template rejects the conversation: <message>" when the template calls raise_exception. */
char *pika_chat_render(const char *tmpl, const cJSON *messages, const pika_chat_opts *o, size_t *len);
/* The same with a template parsed once by pika_jinja_parse (jinja.h). */
char *pika_chat_render_parsed(const pika_jinja *t, const cJSON *messages, const pika_chat_opts *o, size_t *len);

/* [{"role":"system","content":system}]? + [{"role":"user","content":user}] (system may be NULL). */
cJSON *pika_chat_messages(const char *system, const char *user);

/* The text that follows the content of the last user message in the rendered prompt, found by
 * rendering once more with that content replaced by a sentinel. *suffix is malloc'ed. Returns 0,
 * or -1 + error (no user message, or the template transforms the content so that the rendered
 * prompt does not end with the suffix). */
int pika_chat_eoi_suffix(const char *tmpl, const cJSON *messages, const pika_chat_opts *o, char **suffix, size_t *len);

typedef struct {
    char *text;      /* rendered prompt (malloc'ed, NUL-terminated) */
    size_t len;      /* bytes */
    int32_t *ids;    /* tokens of text: add_special=false, parse_special=true (as transformers' tokenize=True) */
    int n_ids;
    int eoi_start;   /* EOI tokens are ids[eoi_start .. n_ids); the first one may straddle the boundary */
    int n_eoi;       /* n_ids - eoi_start; 0 when the conversation has no user message */
    size_t eoi_byte; /* byte offset in text where the EOI text starts (len when none) */
} pika_chat_prompt;

/* Render + tokenize + locate EOI. Returns 0 or -1 + error. Free with pika_chat_prompt_free. */
int pika_chat_prompt_build(const pika_tokenizer *tok, const char *tmpl, const cJSON *messages,
                           const pika_chat_opts *o, pika_chat_prompt *out);
void pika_chat_prompt_free(pika_chat_prompt *p);

/* From GGUF metadata: the chat template (tokenizer.chat_template, or tokenizer.chat_template.NAME
 * when name != NULL) and the texts of the BOS/EOS tokens. Outputs are malloc'ed or NULL when absent. */
void pika_chat_from_gguf(const pika_gguf *g, const char *name, char **tmpl, char **bos, char **eos);

#endif
