/* cli_engine.c — placeholder: the subcommands below are not implemented yet. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_info(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_forward(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_generate(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}
