/* fuzz_npy.c — the .npy reader (src/data/npy.c): header parsing, dtype, shape, length checks.
 * Every element of an accepted array is read, so a wrong length check shows up as an over-read. */
#include "fuzz_common.h"
#include "pika/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    fuzz_memfile(data, size, path, sizeof path);
    pika_npy a;
    if (pika_npy_open(&a, path) == 0) {
        float acc = 0;
        int64_t n = a.count < 4096 ? a.count : 4096;
        for (int64_t i = 0; i < n; i++) acc += pika_npy_get_f32(&a, i);
        if (a.count > 0) acc += pika_npy_get_f32(&a, a.count - 1);
        volatile float sink = acc;
        (void)sink;
        pika_npy_close(&a);
    }
    return 0;
}
