/* commands.h — one entry point per `pika` subcommand. Each takes the arguments after the
 * subcommand name (argv[0] = subcommand) and returns the process exit status:
 * 0 success, 1 a negative result where the command defines one, 2 usage or input error. */
#ifndef PIKA_CLI_COMMANDS_H
#define PIKA_CLI_COMMANDS_H

/* engine (cli_engine.c) */
int cmd_info(int argc, char **argv);
/* --prefill f32|bf16|q8 (forward, generate, extract, sample): the PIKA_PREFILL_* mode; dies on anything else.
 * cli_prefill_apply sets it on a context (dies when the CPU cannot run it). */
struct pika_ctx;
int cli_prefill_value(const char *cmd, const char *v);
void cli_prefill_apply(const char *cmd, struct pika_ctx *c, int mode);
int cmd_forward(int argc, char **argv);
int cmd_generate(int argc, char **argv);
/* activations (cli_extract.c) */
int cmd_extract(int argc, char **argv);
int cmd_acts(int argc, char **argv);
int cmd_sample(int argc, char **argv);
/* tokenizer and chat templates (cli_tokenize.c, cli_prompt.c) */
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_prompt(int argc, char **argv);
/* probes, baselines, metrics (cli_probe.c) */
int cmd_probe(int argc, char **argv);
int cmd_baseline(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_difficulty(int argc, char **argv);
/* datasets, grading and labels (cli_grade.c) */
int cmd_data(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_labels(int argc, char **argv);
/* offline routing over a pool of arms (cli_route.c) */
int cmd_route(int argc, char **argv);
/* the live router and its decision log (cli_router.c) */
int cmd_serve(int argc, char **argv);
int cmd_route_log(int argc, char **argv);
/* the OpenAI-compatible model server (cli_serve.c) */
int cmd_serve_model(int argc, char **argv);
/* pika's own small language models (cli_train.c) */
int cmd_train_lm(int argc, char **argv);

#endif
