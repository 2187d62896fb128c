/* cli_probe.c — placeholder: the subcommands below are not implemented yet. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_probe(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_baseline(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_report(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_difficulty(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}
