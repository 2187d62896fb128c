/* cli_grade.c — placeholder: the subcommands below are not implemented yet. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_data(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_grade(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}

int cmd_labels(int argc, char **argv) {
    (void)argc;
    fprintf(stderr, "pika: %s: not implemented yet\n", argv[0]);
    return 2;
}
