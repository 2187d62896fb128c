/* fuzz_common.h — helpers shared by the libFuzzer harnesses in fuzz/ (header-only).
 *
 * The file-based parsers (GGUF, .npy, JSONL/CSV) take a path, so the input is written to an
 * anonymous memory file (memfd_create) and opened as /proc/self/fd/N: no disk I/O, nothing left
 * behind. Each harness defines LLVMFuzzerTestOneInput; see fuzz/README.md and `make fuzz`.
 */
#ifndef PIKA_FUZZ_COMMON_H
#define PIKA_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* One memfd per process, rewritten for every input; its /proc path in path (>= 64 bytes). */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap) {
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("pika-fuzz", 0);
        if (fd < 0) { perror("memfd_create"); abort(); }
    }
    if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) abort();
        off += (size_t)w;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return 0;
}

/* A NUL-terminated copy of the input (malloc'ed). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = 0;
    return s;
}

#endif
