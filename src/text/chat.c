/* chat.c — chat prompts: template variables as transformers binds them, built-in family
 * templates (our own Jinja, reproducing each family's official template for plain
 * system/user/assistant conversations), EOI location by sentinel rendering, and template/BOS/EOS
 * lookup in GGUF metadata.
 */
#include "pika/chat.h"

#include <stdlib.h>
#include <string.h>

#include "pika/jinja.h"
#include "pika/util.h"

/* ---------------------------------------------------------------- built-in templates */

/* ChatML, optionally with a default system message (Qwen2.5 / Qwen2.5-Math). DEFAULT_SYSTEM is
 * spliced in as a Jinja string literal. */
#define CHATML(DEFAULT_SYSTEM)                                                                          \
    "{%- if " DEFAULT_SYSTEM " and not (messages and messages[0].role == 'system') %}"                 \
    "{{- '<|im_start|>system\\n' + " DEFAULT_SYSTEM " + '<|im_end|>\\n' }}"                              \
    "{%- endif %}"                                                                                      \
    "{%- for m in messages %}"                                                                          \
    "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"                               \
    "{%- endfor %}"                                                                                     \
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"

static const char T_CHATML[] = CHATML("''");
static const char T_QWEN25[] = CHATML("'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.'");
static const char T_QWEN25_MATH[] =
    CHATML("'Please reason step by step, and put your final answer within \\\\boxed{}.'");

/* Qwen3: earlier assistant turns keep only the answer after </think>; assistant turns after the
 * last user query keep their reasoning in <think> blocks; enable_thinking=false closes an empty
 * think block in the generation prompt. */
static const char T_QWEN3[] =
    "{%- set ns = namespace(last_user=messages|length - 1, found=false) %}"
    "{%- for m in messages[::-1] %}"
    "{%- if not ns.found and m.role == 'user' and not (m.content.startswith('<tool_response>') and "
    "m.content.endswith('</tool_response>')) %}"
    "{%- set ns.found = true %}{%- set ns.last_user = messages|length - 1 - loop.index0 %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'user' or m.role == 'system' %}"
    "{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}"
    "{%- set content = m.content %}{%- set reasoning = '' %}"
    "{%- if m.reasoning_content is defined and m.reasoning_content is not none %}"
    "{%- set reasoning = m.reasoning_content %}"
    "{%- elif '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_user and (loop.last or reasoning) %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}"
    "{%- else %}"
    "{{- '<|im_start|>assistant\\n' + content }}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}";

/* Llama 3.x: a system header with the knowledge cutoff and date, then trimmed turns. DATE is a
 * Jinja expression for the date string. */
#define LLAMA3(DATE)                                                                                    \
    "{{- bos_token }}"                                                                                  \
    "{%- if date_string is not defined %}{%- set date_string = " DATE " %}{%- endif %}"                  \
    "{%- if messages and messages[0].role == 'system' %}"                                               \
    "{%- set system_message = messages[0].content|trim %}{%- set messages = messages[1:] %}"              \
    "{%- else %}{%- set system_message = '' %}{%- endif %}"                                             \
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"                                          \
    "{{- 'Cutting Knowledge Date: December 2023\\nToday Date: ' + date_string + '\\n\\n' }}"              \
    "{{- system_message + '<|eot_id|>' }}"                                                               \
    "{%- for m in messages %}"                                                                          \
    "{{- '<|start_header_id|>' + m.role + '<|end_header_id|>\\n\\n' + m.content|trim + '<|eot_id|>' }}"   \
    "{%- endfor %}"                                                                                     \
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"

static const char T_LLAMA31[] = LLAMA3("'26 Jul 2024'");
static const char T_LLAMA32[] = LLAMA3("strftime_now('%d %b %Y')");

/* Mistral-Nemo: [INST]...[/INST] without spaces, the system text in front of the last user
 * message, strict user/assistant alternation, no generation prompt. */
static const char T_MISTRAL_NEMO[] =
    "{%- if messages and messages[0].role == 'system' %}"
    "{%- set system_message = messages[0].content %}{%- set turns = messages[1:] %}"
    "{%- else %}{%- set turns = messages %}{%- endif %}"
    "{%- for m in turns %}"
    "{%- if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{{- bos_token }}"
    "{%- for m in turns %}"
    "{%- if m.role == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST]' + system_message + '\\n\\n' + m.content + '[/INST]' }}"
    "{%- else %}{{- '[INST]' + m.content + '[/INST]' }}{%- endif %}"
    "{%- elif m.role == 'assistant' %}{{- m.content + eos_token }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an "
    "initial optional system message!') }}"
    "{%- endif %}"
    "{%- endfor %}";

/* Phi-3.5: <|role|>\n...<|end|>\n, empty system messages skipped, eos_token when no generation prompt. */
static const char T_PHI35[] =
    "{%- for m in messages %}"
    "{%- if m.role == 'system' and m.content %}{{- '<|system|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- elif m.role == 'user' %}{{- '<|user|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- elif m.role == 'assistant' %}{{- '<|assistant|>\\n' + m.content + '<|end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- else %}{{- eos_token }}{%- endif %}";

/* DeepSeek-R1-Distill (the Hugging Face original): system text right after BOS, earlier answers
 * keep only the text after </think>, generation prompt opens a think block. enable_thinking=false
 * (explicitly) closes it, as llama.cpp's copy of the template does. */
static const char T_DEEPSEEK_R1[] =
    "{%- set ns = namespace(system='') %}"
    "{%- for m in messages %}{%- if m.role == 'system' %}{%- set ns.system = m.content %}{%- endif %}{%- endfor %}"
    "{{- bos_token }}{{- ns.system }}"
    "{%- for m in messages %}"
    "{%- if m.role == 'user' %}{{- '<\xef\xbd\x9c" "User\xef\xbd\x9c>' + m.content }}"
    "{%- elif m.role == 'assistant' and m.content is not none %}"
    "{%- set content = m.content %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}"
    "{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>' + content + "
    "'<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '</think>' }}{%- endif %}"
    "{%- endif %}";

/* gpt-oss (harmony): a system block with identity, dates and reasoning effort, a leading
 * system/developer message as developer instructions, past answers on the final channel. */
static const char T_GPT_OSS[] =
    "{{- '<|start|>system<|message|>' }}"
    "{{- (model_identity if model_identity is defined else 'You are ChatGPT, a large language model trained by "
    "OpenAI.') + '\\n' }}"
    "{{- 'Knowledge cutoff: 2024-06\\n' }}"
    "{{- 'Current date: ' + strftime_now('%Y-%m-%d') + '\\n\\n' }}"
    "{{- 'Reasoning: ' + (reasoning_effort if reasoning_effort is defined else 'medium') + '\\n\\n' }}"
    "{{- '# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>' }}"
    "{%- if messages and messages[0].role in ['system', 'developer'] %}"
    "{%- set developer = messages[0].content %}{%- set turns = messages[1:] %}"
    "{%- else %}{%- set developer = '' %}{%- set turns = messages %}{%- endif %}"
    "{%- if developer %}{{- '<|start|>developer<|message|># Instructions\\n\\n' + developer + '\\n\\n<|end|>' }}{%- endif %}"
    "{%- for m in turns %}"
    "{%- if m.role == 'assistant' %}"
    "{%- if loop.last and not add_generation_prompt %}"
    "{%- if 'thinking' in m %}{{- '<|start|>assistant<|channel|>analysis<|message|>' + m.thinking + '<|end|>' }}{%- endif %}"
    "{{- '<|start|>assistant<|channel|>final<|message|>' + m.content + '<|return|>' }}"
    "{%- else %}{{- '<|start|>assistant<|channel|>final<|message|>' + m.content + '<|end|>' }}{%- endif %}"
    "{%- elif m.role == 'user' %}{{- '<|start|>user<|message|>' + m.content + '<|end|>' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start|>assistant' }}{%- endif %}";

typedef struct {
    const char *name;
    const char *aliases; /* space separated */
    const char *src;
    const char *about;
} builtin;

static const builtin BUILTINS[] = {
    {"chatml", "", T_CHATML, "<|im_start|>role ... <|im_end|>, no default system message"},
    {"qwen2.5", "qwen2 qwen2.5-instruct qwen", T_QWEN25, "Qwen2.5-Instruct (ChatML, default system \"You are Qwen, ...\")"},
    {"qwen2.5-math", "qwen2.5-math-instruct", T_QWEN25_MATH, "Qwen2.5-Math-Instruct (default system \"Please reason step by step, ...\")"},
    {"qwen3", "", T_QWEN3, "Qwen3 (kwargs enable_thinking=false closes the think block)"},
    {"llama-3.1", "llama3 llama-3 llama3.1 llama-3.1-instruct llama-3.3 llama3.3 llama-3.3-instruct", T_LLAMA31,
     "Llama 3.1 / 3.3 Instruct (Today Date: 26 Jul 2024 unless date_string is given)"},
    {"llama-3.2", "llama3.2 llama-3.2-instruct", T_LLAMA32, "Llama 3.2 Instruct (Today Date from strftime_now / --date)"},
    {"mistral-nemo", "mistral mistral-nemo-instruct", T_MISTRAL_NEMO, "Mistral-Nemo-Instruct ([INST]...[/INST], no spaces)"},
    {"phi-3.5", "phi3.5 phi-3.5-mini phi-3.5-mini-instruct phi-3 phi3", T_PHI35, "Phi-3.5-mini-instruct"},
    {"deepseek-r1", "deepseek-r1-distill deepseek-r1-distill-qwen", T_DEEPSEEK_R1, "DeepSeek-R1-Distill (Qwen/Llama)"},
    {"gpt-oss", "harmony", T_GPT_OSS, "gpt-oss harmony (kwargs reasoning_effort low/medium/high)"},
};
#define N_BUILTINS ((int)(sizeof BUILTINS / sizeof BUILTINS[0]))

int pika_chat_n_builtin(void) { return N_BUILTINS; }
const char *pika_chat_builtin_name(int i) { return i >= 0 && i < N_BUILTINS ? BUILTINS[i].name : NULL; }
const char *pika_chat_builtin_about(int i) { return i >= 0 && i < N_BUILTINS ? BUILTINS[i].about : NULL; }

const char *pika_chat_builtin(const char *name) {
    if (!name) return NULL;
    size_t n = strlen(name);
    for (int i = 0; i < N_BUILTINS; i++) {
        if (!strcmp(BUILTINS[i].name, name)) return BUILTINS[i].src;
        const char *a = BUILTINS[i].aliases;
        while (*a) {
            size_t k = strcspn(a, " ");
            if (k == n && !strncmp(a, name, n)) return BUILTINS[i].src;
            a += k;
            while (*a == ' ') a++;
        }
    }
    return NULL;
}

/* kept in sync with BUILTINS (test_chat checks every name appears) */
const char *pika_chat_builtin_list(void) {
    return "chatml, qwen2.5, qwen2.5-math, qwen3, llama-3.1, llama-3.2, mistral-nemo, phi-3.5, deepseek-r1, gpt-oss";
}

/* ---------------------------------------------------------------- rendering */

cJSON *pika_chat_messages(const char *system, const char *user) {
    cJSON *a = cJSON_CreateArray();
    if (system) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "system");
        cJSON_AddStringToObject(m, "content", system);
        cJSON_AddItemToArray(a, m);
    }
    if (user) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", user);
        cJSON_AddItemToArray(a, m);
    }
    return a;
}

/* the variables transformers binds: messages, tools=None, documents=None, add_generation_prompt,
 * bos_token/eos_token when present, then kwargs (which win) */
static cJSON *make_vars(const cJSON *messages, const pika_chat_opts *o) {
    cJSON *v = cJSON_CreateObject();
    cJSON_AddItemToObject(v, "messages", messages ? cJSON_Duplicate(messages, 1) : cJSON_CreateArray());
    cJSON_AddNullToObject(v, "tools");
    cJSON_AddNullToObject(v, "documents");
    cJSON_AddBoolToObject(v, "add_generation_prompt", o->add_generation_prompt);
    if (o->bos_token) cJSON_AddStringToObject(v, "bos_token", o->bos_token);
    if (o->eos_token) cJSON_AddStringToObject(v, "eos_token", o->eos_token);
    if (o->kwargs)
        for (const cJSON *k = o->kwargs->child; k; k = k->next) {
            if (!k->string) continue;
            cJSON_DeleteItemFromObjectCaseSensitive(v, k->string);
            cJSON_AddItemToObject(v, k->string, cJSON_Duplicate(k, 1));
        }
    return v;
}

/* Shared by both render entry points: t is the parsed template (NULL: parse tmpl each time). */
static char *render(const pika_jinja *t, const char *tmpl, const cJSON *messages, const pika_chat_opts *o, size_t *len) {
    if (len) *len = 0;
    if (!t && !tmpl) {
        pika_set_error("chat template: none given (choose a built-in with --template NAME: %s)", pika_chat_builtin_list());
        return NULL;
    }
    if (messages && !cJSON_IsArray(messages)) {
        pika_set_error("chat messages must be a JSON array of {\"role\", \"content\"} objects");
        return NULL;
    }
    if (o->kwargs && !cJSON_IsObject(o->kwargs)) {
        pika_set_error("chat template kwargs must be a JSON object");
        return NULL;
    }
    cJSON *vars = make_vars(messages, o);
    char *out = t ? pika_jinja_render(t, vars, o->date, len) : pika_jinja_render_string(tmpl, strlen(tmpl), vars, o->date, len);
    cJSON_Delete(vars);
    if (!out) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", pika_last_error());
        if (!strncmp(msg, "raise_exception: ", 17)) /* the template rejected this conversation */
            pika_set_error("chat template rejects the conversation: %s", msg + 17);
        else
            pika_set_error("chat template: %s (choose a built-in with --template NAME: %s)", msg, pika_chat_builtin_list());
    }
    return out;
}

char *pika_chat_render(const char *tmpl, const cJSON *messages, const pika_chat_opts *o, size_t *len) {
    return render(NULL, tmpl, messages, o, len);
}

char *pika_chat_render_parsed(const pika_jinja *t, const cJSON *messages, const pika_chat_opts *o, size_t *len) {
    return render(t, NULL, messages, o, len);
}

/* ---------------------------------------------------------------- EOI */

#define SENTINEL "PIKA_EOI_SENTINEL_5b2e91"

int pika_chat_eoi_suffix(const char *tmpl, const cJSON *messages, const pika_chat_opts *o, char **suffix, size_t *len) {
    *suffix = NULL;
    *len = 0;
    if (!messages || !cJSON_IsArray(messages)) return pika_set_error("chat messages must be a JSON array");
    int last_user = -1, i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, "user")) last_user = i;
    }
    if (last_user < 0) return pika_set_error("EOI: the conversation has no user message");
    cJSON *copy = cJSON_Duplicate(messages, 1);
    cJSON *m = cJSON_GetArrayItem(copy, last_user);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (!cJSON_IsString(content)) {
        cJSON_Delete(copy);
        return pika_set_error("EOI: the last user message has no string content");
    }
    cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(SENTINEL));
    size_t sl, rl;
    char *s = pika_chat_render(tmpl, copy, o, &sl);
    cJSON_Delete(copy);
    if (!s) return -1;
    char *real = pika_chat_render(tmpl, messages, o, &rl);
    if (!real) {
        free(s);
        return -1;
    }
    size_t kl = strlen(SENTINEL);
    char *at = NULL; /* the last place the template prints the content */
    for (size_t k = 0; k + kl <= sl; k++)
        if (!memcmp(s + k, SENTINEL, kl)) at = s + k;
    int rc = 0;
    if (!at) {
        rc = pika_set_error("EOI: the template does not print the last user message");
    } else {
        size_t n = sl - (size_t)(at - s) - kl;
        if (n > rl || memcmp(real + rl - n, at + kl, n)) {
            rc = pika_set_error("EOI: the rendered prompt does not end with the text that follows the user message");
        } else {
            *suffix = pika_strndup(at + kl, n);
            *len = n;
        }
    }
    free(s);
    free(real);
    return rc;
}

void pika_chat_prompt_free(pika_chat_prompt *p) {
    if (!p) return;
    free(p->text);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

int pika_chat_prompt_build(const pika_tokenizer *tok, const char *tmpl, const cJSON *messages,
                           const pika_chat_opts *o, pika_chat_prompt *out) {
    memset(out, 0, sizeof *out);
    out->text = pika_chat_render(tmpl, messages, o, &out->len);
    if (!out->text) return -1;
    out->n_ids = pika_tokenize(tok, out->text, out->len, false, true, &out->ids);
    if (out->n_ids < 0) {
        pika_chat_prompt_free(out);
        return -1;
    }
    out->eoi_start = out->n_ids;
    out->eoi_byte = out->len;
    int has_user = 0;
    for (const cJSON *m = messages ? messages->child : NULL; m; m = m->next) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(r) && !strcmp(r->valuestring, "user")) has_user = 1;
    }
    if (!has_user) return 0;
    char *suf;
    size_t sn;
    if (pika_chat_eoi_suffix(tmpl, messages, o, &suf, &sn) < 0) {
        pika_chat_prompt_free(out);
        return -1;
    }
    free(suf);
    out->eoi_byte = out->len - sn;
    /* EOI starts at the first token that differs from the tokenization of the text before it */
    int32_t *pre = NULL;
    int np = pika_tokenize(tok, out->text, out->eoi_byte, false, true, &pre);
    if (np < 0) {
        pika_chat_prompt_free(out);
        return -1;
    }
    int k = 0;
    while (k < np && k < out->n_ids && pre[k] == out->ids[k]) k++;
    free(pre);
    out->eoi_start = k;
    out->n_eoi = out->n_ids - k;
    return 0;
}

/* ---------------------------------------------------------------- GGUF */

static char *token_text(const pika_gguf *g, const char *id_key) {
    const pika_gguf_value *id = pika_gguf_get(g, id_key);
    const pika_gguf_value *toks = pika_gguf_get_array(g, "tokenizer.ggml.tokens");
    if (!id || !toks || toks->v.arr.type != PIKA_GGUF_STRING || !toks->v.arr.items) return NULL;
    int64_t i = pika_gguf_get_int(g, id_key, -1);
    if (i < 0 || (uint64_t)i >= toks->v.arr.n || i == 0xFFFFFFFFLL) return NULL;
    const pika_str *s = &toks->v.arr.items[i].v.str;
    return pika_strndup(s->ptr, (size_t)s->len);
}

void pika_chat_from_gguf(const pika_gguf *g, const char *name, char **tmpl, char **bos, char **eos) {
    if (tmpl) {
        if (name) {
            char key[256];
            snprintf(key, sizeof key, "tokenizer.chat_template.%s", name);
            *tmpl = pika_gguf_get_string(g, key);
        } else {
            *tmpl = pika_gguf_get_string(g, "tokenizer.chat_template");
        }
    }
    if (bos) *bos = token_text(g, "tokenizer.ggml.bos_token_id");
    if (eos) *eos = token_text(g, "tokenizer.ggml.eos_token_id");
}
