/* fuzz_math.c — math answer extraction and equivalence (include/pika/math_grade.h). The input is
 * "model text \0 gold answer" (no NUL: the whole input is both); the first byte's low bits pick the
 * options. Extraction, normalisation, equivalence both ways and grading all run. */
#include "fuzz_common.h"
#include "pika/math_grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 1 << 14) return 0;
    pika_extract_opts o;
    pika_extract_opts_default(&o);
    o.mcq = data[0] & 1;
    o.number_fallback = (data[0] >> 1) & 1;
    char *all = fuzz_cstr(data + 1, size - 1);
    size_t tl = strlen(all);
    const char *text = all, *gold = tl + 1 < size - 1 ? all + tl + 1 : all;
    free(pika_math_last_boxed(text));
    char *ans = pika_math_extract(text, &o);
    free(pika_math_normalize(gold));
    if (ans) {
        (void)pika_math_equiv(ans, gold);
        (void)pika_math_equiv_opts(gold, ans, &o);
        free(ans);
    }
    char *got = NULL;
    (void)pika_math_grade(text, gold, &o, &got);
    free(got);
    free(all);
    return 0;
}
