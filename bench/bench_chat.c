/* bench_chat.c — chat-template rendering throughput: prompts per second for each built-in
 * template on a 4-message conversation (parse + render, as pika_chat_render does per call), and
 * for the EOI suffix (two more renders). `bench_chat [seconds per test = 0.2]`. */
#include <stdio.h>
#include <stdlib.h>

#include "pika/chat.h"
#include "pika/util.h"

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.2;
    cJSON *msgs = cJSON_Parse(
        "[{\"role\":\"system\",\"content\":\"You are a careful math tutor. Put your final answer in \\\\boxed{}.\"},"
        "{\"role\":\"user\",\"content\":\"What is $1+1$?\"},"
        "{\"role\":\"assistant\",\"content\":\"<think>easy</think>$2$\"},"
        "{\"role\":\"user\",\"content\":\"Now compute $\\\\int_0^1 x^2\\\\,dx$ and explain each step.\"}]");
    pika_chat_opts o = {.add_generation_prompt = true, .bos_token = "<s>", .eos_token = "</s>", .date = "2024-07-26"};
    for (int i = 0; i < pika_chat_n_builtin(); i++) {
        const char *name = pika_chat_builtin_name(i);
        const char *tmpl = pika_chat_builtin(name);
        long n = 0;
        size_t bytes = 0;
        double t0 = pika_now();
        while (pika_now() - t0 < secs) {
            size_t len;
            char *out = pika_chat_render(tmpl, msgs, &o, &len);
            if (!out) { fprintf(stderr, "%s: %s\n", name, pika_last_error()); return 2; }
            bytes = len;
            free(out);
            n++;
        }
        double render = n / (pika_now() - t0);
        n = 0;
        t0 = pika_now();
        while (pika_now() - t0 < secs) {
            char *suf;
            size_t sl;
            if (pika_chat_eoi_suffix(tmpl, msgs, &o, &suf, &sl) < 0) { fprintf(stderr, "%s: %s\n", name, pika_last_error()); return 2; }
            free(suf);
            n++;
        }
        double eoi = n / (pika_now() - t0);
        printf("bench_chat template=%-13s prompt_bytes=%5zu renders_per_s=%8.0f eoi_per_s=%8.0f\n", name, bytes, render, eoi);
    }
    cJSON_Delete(msgs);
    return 0;
}
