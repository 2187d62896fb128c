/* jinja.h — a small interpreter for the Jinja2 subset that Hugging Face chat templates use.
 *
 * Behaves like Python jinja2 3.1 configured as transformers' apply_chat_template configures it:
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols, {% generation %}),
 * keep_trailing_newline=False (one trailing "\n" of the source is dropped), default (lenient)
 * Undefined, tojson = json.dumps(ensure_ascii=False, ...), globals raise_exception(msg),
 * strftime_now(fmt), namespace(...), range(...), dict(...). Values print with Python's str()
 * (True/False/None, ['a', 1], 1.0).
 *
 * Supported: {{ }}, {% %}, {# #}, whitespace control (- and +), raw; if/elif/else, for (else,
 * `if` filter, unpacking, loop.index/index0/revindex/revindex0/first/last/length/previtem/nextitem/
 * cycle), break/continue, set (names, tuples, ns.attr, block set), macro (defaults, recursion),
 * call blocks with caller(), filter blocks, with, generation; Python operators (incl. "%"
 * formatting), literals, slices, str methods (strip/lstrip/rstrip/split/startswith/endswith/upper/
 * lower/title/capitalize/replace/find/count/join/splitlines/format), dict items/keys/values/get,
 * list count/index; filters trim length count string upper lower capitalize title default d tojson
 * items list join replace first last reverse int float abs round sort dictsort unique min max sum
 * indent wordcount select reject selectattr rejectattr map format safe escape; tests defined
 * undefined none boolean true false integer float number string mapping iterable sequence callable
 * odd even divisibleby equalto eq ne lt le gt ge in sameas lower upper. No extends/include/import.
 * Anything unsupported fails with a one-line error naming the template line. Limits: nesting 256,
 * 1 GiB of values and 5e7 steps per render (then an error, never a hang or a crash).
 * Upper/lower case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic.
 */
#ifndef PIKA_JINJA_H
#define PIKA_JINJA_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct pika_jinja pika_jinja;

/* Parse a template (len bytes, need not be NUL-terminated). NULL + error ("template line N: ...")
 * on a syntax error. */
pika_jinja *pika_jinja_parse(const char *src, size_t len);
void pika_jinja_free(pika_jinja *t);

/* Render with the variables of the JSON object vars (NULL = none; JSON null -> None; key order
 * kept). date "YYYY-MM-DD" pins strftime_now() to that day at 00:00:00; NULL uses the local
 * time. Returns a malloc'ed NUL-terminated string (*len_out = byte length, may hold NULs), or
 * NULL + error ("raise_exception: <the template's message>", or "template line N: <what>" for an
 * undefined variable, a type error, ...). */
char *pika_jinja_render(const pika_jinja *t, const cJSON *vars, const char *date, size_t *len_out);

/* Parse + render in one call. */
char *pika_jinja_render_string(const char *src, size_t len, const cJSON *vars, const char *date, size_t *len_out);

#endif
