/* main.c — `pika` command-line entry: dispatches to one function per subcommand.
 * The CLI is a thin layer; all work happens in the library (include/pika/). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command COMMANDS[] = {
    {"info", cmd_info, "describe a GGUF model (architecture, sizes, tensor types, tokenizer)"},
    {"forward", cmd_forward, "run token ids through a model; write hidden states and logits as .npy"},
    {"generate", cmd_generate, "generate tokens from a prompt (greedy or sampled)"},
    {"extract", cmd_extract, "store pre-generation (EOI) activations of a dataset's prompts"},
    {"sample", cmd_sample, "sample k answers per question with the local engine (rollouts JSONL)"},
    {"tokenize", cmd_tokenize, "text on stdin -> token ids"},
    {"detokenize", cmd_detokenize, "token ids -> text"},
    {"prompt", cmd_prompt, "render a conversation with the model's chat template"},
    {"probe", cmd_probe, "train | predict | eval linear probes on activations"},
    {"baseline", cmd_baseline, "train | predict length and TF-IDF baselines"},
    {"report", cmd_report, "write a Markdown report with plots"},
    {"difficulty", cmd_difficulty, "human vs model difficulty analysis"},
    {"data", cmd_data, "show a dataset preset or file"},
    {"grade", cmd_grade, "grade math answers or code against tests"},
    {"labels", cmd_labels, "aggregate graded rollouts into per-question labels"},
    {"route", cmd_route, "table | eval | calibrate | report: offline routing over a pool of arms"},
    {"serve-model", cmd_serve_model, "serve a model behind an OpenAI-compatible HTTP API (continuous batching)"},
    {"train-lm", cmd_train_lm, "train a small llama-architecture model on the synthetic math task"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
    fprintf(f, "usage: pika <command> [options]   (pika <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-11s %s\n", COMMANDS[i].name, COMMANDS[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pika: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
