/* test_npy.c — the .npy reader on well-formed and malformed headers. The header in a .npy file is
 * not NUL-terminated: every header field must be parsed within the header's declared length and
 * never continue into the array data that follows it (or past the end of the mapping). The
 * malformed cases are the regression inputs under fuzz/corpus/npy/. */
#include <unistd.h>

#include "pika/npy.h"
#include "pika/util.h"
#include "test.h"

/* Write "\x93NUMPY" v1.0 with the given header text (exactly, no padding) and then data. */
static const char *write_raw(const char *dir, const char *name, const char *hdr, const void *data, size_t dlen) {
    static char path[8][600];
    static int k;
    char *p = path[k++ & 7];
    snprintf(p, 600, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return NULL;
    size_t hl = strlen(hdr);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, hl, f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
    return p;
}

static void test_roundtrip(void) {
    const char *dir = test_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/a.npy", dir);
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t sh[2] = {2, 3};
    REQUIRE(pika_npy_write_f32(p, v, 2, sh) == 0, "write: %s", pika_last_error());
    pika_npy a;
    REQUIRE(pika_npy_open(&a, p) == 0, "open: %s", pika_last_error());
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.count == 6, "shape %d %lld", a.ndim, (long long)a.shape[0]);
    CHECK(pika_npy_get_f32(&a, 5) == 6, "value");
    pika_npy_close(&a);
    /* hand-written header, scalar and 1-D, with the usual trailing padding */
    const char *q = write_raw(dir, "b.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }   \n", v, 8);
    REQUIRE(q && pika_npy_open(&a, q) == 0, "open b: %s", pika_last_error());
    CHECK(a.ndim == 1 && a.shape[0] == 2, "1-D");
    pika_npy_close(&a);
    q = write_raw(dir, "c.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", v, 4);
    REQUIRE(q && pika_npy_open(&a, q) == 0, "open c: %s", pika_last_error());
    CHECK(a.ndim == 0 && a.count == 1, "scalar");
    pika_npy_close(&a);
    q = write_raw(dir, "d.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", v, 8);
    CHECK(q && pika_npy_open(&a, q) != 0 && strstr(pika_last_error(), "Fortran"), "fortran order refused: %s", pika_last_error());
}

/* The header ends inside the shape's digits; the data that follows starts with more digits. */
static void test_shape_stops_at_header_end(void) {
    const char *dir = test_tmpdir();
    char data[256];
    memset(data, 0, sizeof data);
    memcpy(data, "6,), }\n", 7);
    const char *p = write_raw(dir, "shape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1", data, sizeof data);
    pika_npy a;
    int rc = pika_npy_open(&a, p);
    CHECK(rc != 0, "header ending mid-shape accepted (shape[0] = %lld read from the data)", rc == 0 ? (long long)a.shape[0] : 0LL);
    if (rc == 0) pika_npy_close(&a);
    else CHECK(strstr(pika_last_error(), "malformed shape") != NULL, "error: %s", pika_last_error());
    /* header ends right after 'shape': -- the '(' is in the data */
    memcpy(data, "(4,), }\n", 8);
    p = write_raw(dir, "paren.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': ", data, sizeof data);
    rc = pika_npy_open(&a, p);
    CHECK(rc != 0, "header ending before '(' accepted");
    if (rc == 0) pika_npy_close(&a);
    /* a shape without its ')' */
    p = write_raw(dir, "open.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, ", data, 0);
    rc = pika_npy_open(&a, p);
    CHECK(rc != 0, "unterminated shape accepted");
    if (rc == 0) pika_npy_close(&a);
}

/* The header ends inside the fortran_order value; the data continues it to "True". */
static void test_fortran_order_stops_at_header_end(void) {
    const char *dir = test_tmpdir();
    char data[64] = "ue, }\n";
    const char *p = write_raw(dir, "fo.npy", "{'descr': '<f4', 'shape': (2,), 'fortran_order': Tr", data, sizeof data);
    pika_npy a;
    int rc = pika_npy_open(&a, p);
    CHECK(rc != 0, "accepted");
    if (rc == 0) pika_npy_close(&a);
    CHECK(strstr(pika_last_error(), "malformed fortran_order") != NULL, "the value is read from the header only: %s", pika_last_error());
}

static void test_truncated_and_huge(void) {
    const char *dir = test_tmpdir();
    float v[2] = {0};
    pika_npy a;
    const char *p = write_raw(dir, "short.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }\n", v, 8);
    CHECK(pika_npy_open(&a, p) != 0 && strstr(pika_last_error(), "truncated"), "short data: %s", pika_last_error());
    p = write_raw(dir, "big.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 4), }\n", v, 8);
    CHECK(pika_npy_open(&a, p) != 0, "absurd shape refused");
    p = write_raw(dir, "neg.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", v, 8);
    CHECK(pika_npy_open(&a, p) != 0, "negative dim refused");
    p = write_raw(dir, "junk.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2x,), }\n", v, 8);
    CHECK(pika_npy_open(&a, p) != 0, "junk after a dim refused");
}

int main(void) {
    RUN(test_roundtrip);
    RUN(test_shape_stops_at_header_end);
    RUN(test_fortran_order_stops_at_header_end);
    RUN(test_truncated_and_huge);
    return test_summary("npy");
}
