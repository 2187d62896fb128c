/* fuzz_jinja.c — the Jinja chat-template interpreter (src/text/jinja*.c): the input is the
 * template; it is rendered with a fixed, chat-like set of variables (messages with tool calls,
 * tools, add_generation_prompt, bos_token). Parse and render errors are fine; crashes, leaks,
 * UB and hangs are not (the interpreter has step and memory limits). */
#include <cjson/cJSON.h>

#include "fuzz_common.h"
#include "pika/jinja.h"

static const char VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"},"
    "{\"role\": \"user\", \"content\": \"Hi \\u00e9 <b>\"},"
    "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"type\": \"function\", \"function\": "
    "{\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": [1.5, true, null]}}}]},"
    "{\"role\": \"tool\", \"content\": \"42\"}],"
    "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    "\"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"n\": 3}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static cJSON *vars;
    if (!vars) vars = cJSON_Parse(VARS);
    if (size > 1 << 16) return 0;
    size_t len;
    char *out = pika_jinja_render_string((const char *)data, size, vars, "2024-01-02", &len);
    free(out);
    return 0;
}
