/* prompt.c — the prompt recipe (prompt.h): template resolution, once; per-question prompt text,
 * ids and EOI count; provenance JSON. */
#include "pika/prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pika/chat.h"
#include "pika/jinja.h"
#include "pika/util.h"

#define SENTINEL "PIKA_EOI_SENTINEL_5b2e91"

struct pika_prompt_recipe {
    const pika_tokenizer *tok;
    int raw;
    char *tmpl;            /* template source (NULL in raw mode) */
    pika_jinja *parsed;
    char *name;            /* provenance "template": NAME, FILE, "gguf" or "none" */
    const char *source;    /* "builtin", "file", "gguf", "none" */
    char *origin;          /* for messages */
    char *system, *prefix, *suffix, *date, *bos, *eos;
    cJSON *kwargs;
    int add_gen;
    pika_chat_opts co;
    /* text after the user content of a question's rendered prompt, found once at creation */
    char *eoi_text;
    size_t eoi_len;
    char *eoi_error;       /* why it could not be found (reported by pika_prompt_build) */
    char *json;
};

void pika_prompt_opts_default(pika_prompt_opts *o) {
    memset(o, 0, sizeof *o);
    o->add_generation_prompt = 1;
}

static const char *const VALUE_FLAGS[] = {"--system", "--prefix", "--suffix", "--suffix-file", "--template",
                                          "--template-file", "--kwargs", "--date", "--bos", "--eos", NULL};

int pika_prompt_flag_arity(const char *flag) {
    for (int i = 0; VALUE_FLAGS[i]; i++)
        if (!strcmp(flag, VALUE_FLAGS[i])) return 1;
    if (!strcmp(flag, "--no-template") || !strcmp(flag, "--no-generation-prompt")) return 0;
    return -1;
}

int pika_prompt_parse_flag(pika_prompt_opts *o, const char *flag, const char *v) {
    int a = pika_prompt_flag_arity(flag);
    if (a < 0) return 0;
    if (a == 1 && !v) return pika_set_error("%s needs a value", flag);
    if (!strcmp(flag, "--no-template")) o->no_template = 1;
    else if (!strcmp(flag, "--no-generation-prompt")) o->add_generation_prompt = 0;
    else if (!strcmp(flag, "--system")) o->system = v;
    else if (!strcmp(flag, "--prefix")) o->user_prefix = v;
    else if (!strcmp(flag, "--suffix")) o->user_suffix = v;
    else if (!strcmp(flag, "--suffix-file")) o->user_suffix_file = v;
    else if (!strcmp(flag, "--template")) o->template_name = v;
    else if (!strcmp(flag, "--template-file")) o->template_file = v;
    else if (!strcmp(flag, "--kwargs")) o->kwargs_json = v;
    else if (!strcmp(flag, "--date")) o->date = v;
    else if (!strcmp(flag, "--bos")) o->bos_token = v;
    else if (!strcmp(flag, "--eos")) o->eos_token = v;
    return 1;
}

const char *pika_prompt_flags_help(void) {
    return "  --system TEXT         system message\n"
           "  --suffix TEXT         appended to every question. A newline must be a real one: in bash/zsh write\n"
           "                        --suffix $'\\nPlease reason step by step, and put your final answer within \\\\boxed{}.'\n"
           "                        (\"\\n\" inside plain quotes is a backslash and an n, not a newline; in POSIX sh\n"
           "                        put a real line break inside the quotes, or use --suffix-file)\n"
           "  --suffix-file FILE    the suffix as the bytes of FILE (one final newline dropped)\n"
           "  --prefix TEXT         put before every question\n"
           "  --template NAME       built-in chat template instead of the GGUF's (pika prompt --list-templates)\n"
           "  --template-file F     Jinja chat template file instead of the GGUF's\n"
           "  --no-template         raw question text (BOS as the vocab asks); EOI = the last token\n"
           "  --kwargs JSON         template variables, e.g. '{\"enable_thinking\": false}'\n"
           "  --date YYYY-MM-DD     pin the date templates print (default: today)\n"
           "  --bos/--eos TEXT      bos_token / eos_token for the template (default: the GGUF's)\n";
}

static char *dup_or_null(const char *s) { return s ? pika_strdup(s) : NULL; }

static void fingerprint(const char *s, char out[17]) { pika_fingerprint(s, out); }

/* prefix + question + suffix */
static char *user_text(const pika_prompt_recipe *r, const char *question) {
    pika_buf b = {0};
    pika_buf_puts(&b, r->prefix ? r->prefix : "");
    pika_buf_puts(&b, question);
    pika_buf_puts(&b, r->suffix ? r->suffix : "");
    if (!b.s) return pika_strdup("");
    return b.s;
}

cJSON *pika_prompt_messages(const pika_prompt_recipe *r, const char *question) {
    char *u = user_text(r, question);
    cJSON *m = pika_chat_messages(r->system, u);
    free(u);
    return m;
}

static int last_user(const cJSON *messages) {
    int last = -1, i = 0;
    for (const cJSON *m = messages ? messages->child : NULL; m; m = m->next, i++) {
        const cJSON *ro = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (cJSON_IsString(ro) && !strcmp(ro->valuestring, "user")) last = i;
    }
    return last;
}

/* The text the template prints after the last user message's content: render with that content
 * replaced by a sentinel and take what follows the sentinel's last occurrence. */
static int eoi_text_of(const pika_prompt_recipe *r, const cJSON *messages, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    int lu = last_user(messages);
    if (lu < 0) return pika_set_error("EOI: the conversation has no user message");
    cJSON *copy = cJSON_Duplicate(messages, 1);
    cJSON *m = cJSON_GetArrayItem(copy, lu);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "content"))) {
        cJSON_Delete(copy);
        return pika_set_error("EOI: the last user message has no string content");
    }
    cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(SENTINEL));
    size_t sl;
    char *s = pika_chat_render_parsed(r->parsed, copy, &r->co, &sl);
    cJSON_Delete(copy);
    if (!s) return -1;
    size_t kl = strlen(SENTINEL);
    char *at = NULL;
    for (size_t k = 0; k + kl <= sl; k++)
        if (!memcmp(s + k, SENTINEL, kl)) at = s + k;
    if (!at) {
        free(s);
        return pika_set_error("EOI: the template does not print the last user message");
    }
    *len = sl - (size_t)(at - s) - kl;
    *text = pika_strndup(at + kl, *len);
    free(s);
    return 0;
}

pika_prompt_recipe *pika_prompt_recipe_new(const pika_gguf *g, const pika_tokenizer *tok, const pika_prompt_opts *o) {
    pika_prompt_recipe *r = pika_calloc(1, sizeof *r);
    char *gt = NULL, *gbos = NULL, *geos = NULL;
    r->tok = tok;
    r->add_gen = o->add_generation_prompt;
    r->system = dup_or_null(o->system);
    r->prefix = dup_or_null(o->user_prefix);
    r->suffix = dup_or_null(o->user_suffix);
    if (o->user_suffix_file) {
        if (o->user_suffix) { pika_set_error("give --suffix or --suffix-file, not both"); goto fail; }
        size_t n;
        if (!(r->suffix = pika_read_file(o->user_suffix_file, &n))) goto fail;
        if (strlen(r->suffix) != n) { pika_set_error("%s: the suffix contains a NUL byte", o->user_suffix_file); goto fail; }
        if (n && r->suffix[n - 1] == '\n') r->suffix[--n] = 0;
    }
    r->date = dup_or_null(o->date);
    if (g) pika_chat_from_gguf(g, NULL, &gt, &gbos, &geos);
    r->bos = o->bos_token ? pika_strdup(o->bos_token) : gbos;
    r->eos = o->eos_token ? pika_strdup(o->eos_token) : geos;
    if (o->bos_token) free(gbos);
    if (o->eos_token) free(geos);
    if (o->kwargs_json) {
        r->kwargs = cJSON_Parse(o->kwargs_json);
        if (!r->kwargs || !cJSON_IsObject(r->kwargs)) {
            pika_set_error("--kwargs must be a JSON object, got '%s'", o->kwargs_json);
            goto fail;
        }
    }
    if (o->no_template) {
        r->raw = 1;
        r->name = pika_strdup("none");
        r->source = "none";
        r->origin = pika_strdup("no template");
        if (!tok) { pika_set_error("a prompt without a chat template needs the model's tokenizer"); goto fail; }
    } else if (o->template_name) {
        const char *src = pika_chat_builtin(o->template_name);
        if (!src) {
            pika_set_error("unknown template '%s'; choices: %s", o->template_name, pika_chat_builtin_list());
            goto fail;
        }
        r->tmpl = pika_strdup(src);
        r->name = pika_strdup(o->template_name);
        r->source = "builtin";
        r->origin = pika_strdup(o->template_name);
    } else if (o->template_file) {
        size_t n;
        if (!(r->tmpl = pika_read_file(o->template_file, &n))) goto fail;
        if (strlen(r->tmpl) != n) { pika_set_error("%s: template contains a NUL byte", o->template_file); goto fail; }
        r->name = pika_strdup(o->template_file);
        r->source = "file";
        r->origin = pika_strdup(o->template_file);
    } else if (gt) {
        r->tmpl = gt;
        gt = NULL;
        r->name = pika_strdup("gguf");
        r->source = "gguf";
        r->origin = pika_strdup("the GGUF's template");
    } else {
        pika_set_error("%s; pass --template NAME (%s), --template-file FILE or --no-template",
                       g ? "the model has no chat template (tokenizer.chat_template)" : "no chat template given",
                       pika_chat_builtin_list());
        goto fail;
    }
    free(gt);
    gt = NULL;
    if (r->tmpl) {
        r->parsed = pika_jinja_parse(r->tmpl, strlen(r->tmpl));
        if (!r->parsed) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s", pika_last_error());
            pika_set_error("%s: chat template: %s (choose a built-in with --template NAME: %s)", r->origin, msg,
                           pika_chat_builtin_list());
            goto fail;
        }
    }
    r->co.add_generation_prompt = r->add_gen != 0;
    r->co.bos_token = r->bos;
    r->co.eos_token = r->eos;
    r->co.kwargs = r->kwargs;
    r->co.date = r->date;
    if (!r->raw) { /* the EOI text of a question's prompt does not depend on the question */
        cJSON *msgs = pika_chat_messages(r->system, SENTINEL);
        if (eoi_text_of(r, msgs, &r->eoi_text, &r->eoi_len)) r->eoi_error = pika_strdup(pika_last_error());
        cJSON_Delete(msgs);
    }
    /* provenance */
    cJSON *pj = pika_prompt_recipe_provenance(r);
    r->json = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    return r;
fail:
    free(gt);
    pika_prompt_recipe_free(r);
    return NULL;
}

void pika_prompt_recipe_free(pika_prompt_recipe *r) {
    if (!r) return;
    pika_jinja_free(r->parsed);
    free(r->tmpl); free(r->name); free(r->origin);
    free(r->system); free(r->prefix); free(r->suffix); free(r->date); free(r->bos); free(r->eos);
    cJSON_Delete(r->kwargs);
    free(r->eoi_text); free(r->eoi_error); free(r->json);
    free(r);
}

cJSON *pika_prompt_recipe_provenance(const pika_prompt_recipe *r) {
    cJSON *pj = cJSON_CreateObject();
    char tfp[17] = "none";
    if (r->tmpl) fingerprint(r->tmpl, tfp);
    cJSON_AddStringToObject(pj, "template", r->name);
    cJSON_AddStringToObject(pj, "template_fingerprint", tfp);
    if (r->system) cJSON_AddStringToObject(pj, "system", r->system);
    else cJSON_AddNullToObject(pj, "system");
    cJSON_AddStringToObject(pj, "user_suffix", r->suffix ? r->suffix : "");
    if (r->kwargs) cJSON_AddItemToObject(pj, "kwargs", cJSON_Duplicate(r->kwargs, 1));
    cJSON_AddStringToObject(pj, "template_source", r->source);
    cJSON_AddStringToObject(pj, "user_prefix", r->prefix ? r->prefix : "");
    if (r->date) cJSON_AddStringToObject(pj, "date", r->date);
    else cJSON_AddNullToObject(pj, "date");
    if (r->bos) cJSON_AddStringToObject(pj, "bos_token", r->bos);
    else cJSON_AddNullToObject(pj, "bos_token");
    if (r->eos) cJSON_AddStringToObject(pj, "eos_token", r->eos);
    else cJSON_AddNullToObject(pj, "eos_token");
    cJSON_AddBoolToObject(pj, "add_generation_prompt", r->add_gen != 0);
    cJSON_AddStringToObject(pj, "bos", r->raw ? "vocab" : "template");
    return pj;
}

const char *pika_prompt_recipe_json(const pika_prompt_recipe *r) { return r->json; }
const char *pika_prompt_recipe_origin(const pika_prompt_recipe *r) { return r->origin; }
int pika_prompt_recipe_is_raw(const pika_prompt_recipe *r) { return r->raw; }

void pika_prompt_free(pika_prompt *p) {
    if (!p) return;
    free(p->text);
    free(p->ids);
    memset(p, 0, sizeof *p);
}

/* Tokenize the rendered text and locate the EOI tokens given the byte length of the EOI text. */
static int finish_build(const pika_prompt_recipe *r, pika_prompt *out, size_t eoi_len, int has_user) {
    out->n_ids = pika_tokenize(r->tok, out->text, out->len, false, true, &out->ids);
    if (out->n_ids < 0) { out->ids = NULL; return -1; }
    if (!has_user) return 0;
    /* EOI starts at the first token that differs from the tokenization of the text before it */
    int32_t *pre = NULL;
    int np = pika_tokenize(r->tok, out->text, out->len - eoi_len, false, true, &pre);
    if (np < 0) return -1;
    int k = 0;
    while (k < np && k < out->n_ids && pre[k] == out->ids[k]) k++;
    free(pre);
    out->n_eoi = out->n_ids - k;
    return 0;
}

int pika_prompt_build(const pika_prompt_recipe *r, const char *question, pika_prompt *out) {
    memset(out, 0, sizeof *out);
    if (!r->tok) return pika_set_error("building prompt ids needs the model's tokenizer");
    char *u = user_text(r, question);
    if (r->raw) {
        out->len = strlen(u);
        out->text = u;
        out->n_ids = pika_tokenize(r->tok, u, out->len, true, false, &out->ids);
        if (out->n_ids < 0) { out->ids = NULL; pika_prompt_free(out); return -1; }
        if (out->n_ids == 0) { pika_prompt_free(out); return pika_set_error("question tokenizes to nothing"); }
        out->n_eoi = 1;
        return 0;
    }
    if (r->eoi_error) {
        free(u);
        return pika_set_error("%s", r->eoi_error);
    }
    cJSON *msgs = pika_chat_messages(r->system, u);
    free(u);
    out->text = pika_chat_render_parsed(r->parsed, msgs, &r->co, &out->len);
    cJSON_Delete(msgs);
    if (!out->text) return -1;
    if (r->eoi_len > out->len || memcmp(out->text + out->len - r->eoi_len, r->eoi_text, r->eoi_len)) {
        pika_prompt_free(out);
        return pika_set_error("EOI: the rendered prompt does not end with the text that follows the user message");
    }
    if (finish_build(r, out, r->eoi_len, 1)) { pika_prompt_free(out); return -1; }
    if (out->n_eoi <= 0) {
        pika_prompt_free(out);
        return pika_set_error("the chat template leaves no end-of-instruction tokens");
    }
    return 0;
}

char *pika_prompt_render_messages(const pika_prompt_recipe *r, const cJSON *messages, size_t *len) {
    if (r->raw) {
        pika_set_error("no chat template: a conversation cannot be rendered as raw text");
        return NULL;
    }
    return pika_chat_render_parsed(r->parsed, messages, &r->co, len);
}

char *pika_prompt_render(const pika_prompt_recipe *r, const char *question, size_t *len) {
    if (r->raw) {
        char *u = user_text(r, question);
        if (len) *len = strlen(u);
        return u;
    }
    cJSON *msgs = pika_prompt_messages(r, question);
    char *s = pika_chat_render_parsed(r->parsed, msgs, &r->co, len);
    cJSON_Delete(msgs);
    return s;
}

int pika_prompt_build_messages(const pika_prompt_recipe *r, const cJSON *messages, pika_prompt *out) {
    memset(out, 0, sizeof *out);
    if (!r->tok) return pika_set_error("building prompt ids needs the model's tokenizer");
    if (!(out->text = pika_prompt_render_messages(r, messages, &out->len))) return -1;
    int has_user = last_user(messages) >= 0;
    char *eoi = NULL;
    size_t el = 0;
    if (has_user) {
        if (eoi_text_of(r, messages, &eoi, &el)) { pika_prompt_free(out); return -1; }
        int ok = el <= out->len && !memcmp(out->text + out->len - el, eoi, el);
        free(eoi);
        if (!ok) {
            pika_prompt_free(out);
            return pika_set_error("EOI: the rendered prompt does not end with the text that follows the user message");
        }
    }
    if (finish_build(r, out, el, has_user)) { pika_prompt_free(out); return -1; }
    return 0;
}

int pika_prompt_provenance_matches(const cJSON *recorded, const cJSON *mine, const char *const *ignore) {
    if (!cJSON_IsObject(recorded) || !cJSON_IsObject(mine)) return 0;
    int legacy = !cJSON_GetObjectItemCaseSensitive(recorded, "template_source");
    const cJSON *it;
    /* every recorded key must be ours with the same value; unless legacy, no key of ours may be missing */
    cJSON_ArrayForEach(it, recorded) {
        int skip = 0;
        for (int i = 0; ignore && ignore[i]; i++) skip |= !strcmp(ignore[i], it->string);
        if (skip) continue;
        if (!cJSON_Compare(it, cJSON_GetObjectItemCaseSensitive(mine, it->string), 1)) return 0;
    }
    if (legacy) {
        /* the old format had no "kwargs" key when there were none */
        return !!cJSON_GetObjectItemCaseSensitive(recorded, "kwargs") == !!cJSON_GetObjectItemCaseSensitive(mine, "kwargs");
    }
    cJSON_ArrayForEach(it, mine) {
        int skip = 0;
        for (int i = 0; ignore && ignore[i]; i++) skip |= !strcmp(ignore[i], it->string);
        if (!skip && !cJSON_GetObjectItemCaseSensitive(recorded, it->string)) return 0;
    }
    return 1;
}

int pika_prompt_messages_check(const cJSON *messages) {
    if (!cJSON_IsArray(messages)) return pika_set_error("not a JSON array of messages");
    int k = 0;
    for (const cJSON *m = messages->child; m; m = m->next, k++)
        if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
            return pika_set_error("message %d is not an object with a string \"role\"", k);
    return 0;
}

cJSON *pika_prompt_messages_read(const char *path) {
    size_t n;
    char *txt = !strcmp(path, "-") ? pika_read_stream(stdin, &n) : pika_read_file(path, &n);
    if (!txt) return NULL;
    cJSON *m = cJSON_ParseWithLength(txt, n);
    free(txt);
    if (!m) { pika_set_error("%s: not a JSON array of messages (malformed JSON)", path); return NULL; }
    if (pika_prompt_messages_check(m)) {
        pika_error_context("%s", path);
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}
