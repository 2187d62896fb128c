/* cli_acts.c — `pika acts merge`: join the activation stores of `pika extract --shard I/N` runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "pika/acts.h"
#include "pika/util.h"

static void acts_usage(FILE *f) {
    fprintf(f, "usage: pika acts merge --out DIR [--force] SHARD_DIR...\n"
               "Joins activation stores written by `pika extract --shard I/N` (give them in shard order 0..N-1)\n"
               "into DIR: the same store, byte for byte, that one `pika extract` over the whole dataset writes.\n"
               "The shards must share model, prompt, layers, positions and dtype, and hold distinct ids.\n"
               "  --out DIR   the merged store\n"
               "  --force     overwrite a store in DIR\n");
}

int cmd_acts(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        acts_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "merge")) pika_die("acts: unknown subcommand '%s' (pika acts merge --help)", argv[1]);
    const char *out = NULL;
    int force = 0, n_in = 0;
    const char **in = pika_malloc(sizeof(char *) * (size_t)argc);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) { acts_usage(stdout); free(in); return 0; }
        if (!strcmp(argv[i], "--out")) {
            if (i + 1 >= argc) pika_die("acts merge: --out needs a value");
            out = argv[++i];
        } else if (!strcmp(argv[i], "--force")) force = 1;
        else if (argv[i][0] == '-' && argv[i][1] == '-') pika_die("acts merge: unknown option %s", argv[i]);
        else in[n_in++] = argv[i];
    }
    if (!out) pika_die("acts merge: --out DIR is required");
    if (n_in < 1) pika_die("acts merge: give the shard stores to join");
    int rc = pika_acts_merge(out, n_in, in, force);
    if (rc) fprintf(stderr, "pika: acts merge: %s\n", pika_last_error());
    else fprintf(stderr, "acts merge: %d stores joined into %s\n", n_in, out);
    free(in);
    return rc ? 2 : 0;
}
