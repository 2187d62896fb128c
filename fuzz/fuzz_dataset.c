/* fuzz_dataset.c — the JSONL and CSV dataset readers (include/pika/dataset.h): the first byte picks
 * the format (even: .jsonl, odd: .csv), the rest is the file. pika_dataset_load_file picks the
 * format from the file name, so the memfd is reached through a symlink with the right extension. */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "pika/dataset.h"

static char dir[64];

static void remove_dir(void) {
    char link[128];
    snprintf(link, sizeof link, "%s/in.csv", dir);
    unlink(link);
    snprintf(link, sizeof link, "%s/in.jsonl", dir);
    unlink(link);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 1 << 16) return 0;
    char fdpath[64];
    fuzz_memfile(data + 1, size - 1, fdpath, sizeof fdpath);
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/pika-fuzz-%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(remove_dir);
    }
    int csv = data[0] & 1;
    char link[128];
    snprintf(link, sizeof link, "%s/in.%s", dir, csv ? "csv" : "jsonl");
    unlink(link);
    if (symlink(fdpath, link) != 0) abort();
    pika_field_map fm = {0};
    fm.id = "id";
    fm.problem = "problem";
    fm.gold = "answer";
    pika_dataset *d = pika_dataset_load_file(link, &fm);
    if (d) {
        if (d->n > 0) (void)pika_dataset_find(d, d->rows[d->n - 1].id);
        (void)pika_dataset_find(d, "no-such-id");
        pika_dataset_free(d);
    }
    if (csv) {
        char ***cells;
        int *ncols;
        int rows = pika_csv_read(link, &cells, &ncols);
        if (rows >= 0) pika_csv_free(cells, ncols, rows);
    } else {
        pika_lines *L = pika_lines_open(link);
        if (L) {
            char *line;
            size_t len;
            while (pika_lines_next(L, &line, &len) == 1) {
                void *j = pika_json_parse_line(line, len, "fuzz", pika_lines_lineno(L));
                if (j) cJSON_Delete(j);
            }
            pika_lines_close(L);
        }
    }
    unlink(link);
    return 0;
}
