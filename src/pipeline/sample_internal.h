/* sample_internal.h — what the local (sample.c) and remote (sample_remote.c) sampling backends share:
 * the rules for opening a rollouts output (non-empty / --resume / --force, the (id, sample) pairs
 * already there, the provenance check and write). Private to src/pipeline/. */
#ifndef PIKA_SAMPLE_INTERNAL_H
#define PIKA_SAMPLE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "pika/sample.h"
#include "pika/util.h"

int pika__sample_write_meta(const char *mpath, const cJSON *meta);
int pika__sample_check_meta(const char *out_path, const char *mpath, const cJSON *mine, int64_t existing);
int pika__sample_load_done(const char *path, pika_strmap *done, int64_t *count);
/* Open out_path for writing rows (append when resuming); make(k, u) builds the provenance for k.
 * done receives the "id\tsample" keys already in the file. NULL + error. */
FILE *pika__sample_open(const char *out_path, const pika_rollout_opts *o, cJSON *(*make)(int k, void *u), void *u,
                        pika_strmap *done, pika_rollout_stats *st);

#endif
