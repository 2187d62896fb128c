/* test_study.c — `pika study`: the Markdown -> HTML renderer (tables, lists, inline code, escaping,
 * embedded images), the study page of a small pipeline run (sections, provenance, figures, gnuplot
 * scripts with integer layer ticks and labelled axes), and the page rendered in headless Chromium
 * (Debian `chromium`, installed here with apt-get when missing; skipped loudly when impossible):
 * the screenshot is not blank and every image loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "pika/study.h"
#include "pika/util.h"
#include "test.h"

static int write_str(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(s, f);
    return fclose(f);
}

static int count_of(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void test_md_to_html(void) {
    const char *d = test_tmpdir();
    char md[512], html[512], img[512];
    snprintf(md, sizeof md, "%s/a.md", d);
    snprintf(html, sizeof html, "%s/a.html", d);
    snprintf(img, sizeof img, "%s/x.png", d);
    REQUIRE(write_str(img, "abc") == 0, "write");
    REQUIRE(write_str(md, "# Title <1>\n\nsome `a<b` and **bold** text\ncontinued\n\n- item one\n- item `two`\n\n"
                          "| a | b |\n|---|---:|\n| 1 | x&y |\n\n![fig](x.png)\n## Sub\n") == 0, "write");
    REQUIRE(pika_md_to_html(md, html, d, "T&T") == 0, "%s", pika_last_error());
    char *h = pika_read_file(html, NULL);
    REQUIRE(h, "read");
    CHECK(strstr(h, "<title>T&amp;T</title>"), "title escaped");
    CHECK(strstr(h, "<h1>Title &lt;1&gt;</h1>"), "heading escaped");
    CHECK(strstr(h, "<p>some <code>a&lt;b</code> and <b>bold</b> text continued</p>"), "paragraph with inline code and bold");
    CHECK(strstr(h, "<ul>\n<li>item one</li>\n<li>item <code>two</code></li>\n</ul>"), "list");
    CHECK(strstr(h, "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td>1</td><td>x&amp;y</td></tr>\n</table>"), "table, separator row dropped");
    CHECK(strstr(h, "<img alt=\"fig\" src=\"data:image/png;base64,YWJj\">"), "image embedded as base64");
    CHECK(strstr(h, "<h2>Sub</h2>"), "second heading");
    CHECK(strstr(h, "document.title='images '"), "load script counts images");
    free(h);
    CHECK(pika_md_to_html("/nonexistent/x.md", html, d, "t") == -1, "missing input is an error");
}

/* One small pipeline run shared by the page tests. */
static const char *run_dir;

static const char *small_run(void) {
    if (run_dir) return run_dir;
    if (access("models/pool/pika-math-s.gguf", R_OK) != 0) return NULL;
    const char *dir = test_tmpdir();
    const char *b = getenv("PIKA_BUILD");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "OUT=%s N=100 K=3 MODELS=s THREADS=1 sh scripts/pipeline.sh %s > %s/log.txt 2>&1", dir, b && *b ? b : "build", dir);
    int st;
    free(test_run(cmd, &st));
    if (st != 0) {
        char p[1024];
        snprintf(p, sizeof p, "%s/log.txt", dir);
        char *log = pika_read_file(p, NULL);
        fprintf(stderr, "pipeline.sh exited %d:\n%s\n", st, log ? log : "");
        free(log);
        return NULL;
    }
    run_dir = dir;
    return dir;
}

static void test_study_page(void) {
    if (access("models/pool/pika-math-s.gguf", R_OK) != 0) SKIP_TEST("models/pool/pika-math-s.gguf is missing");
    const char *dir = small_run();
    REQUIRE(dir, "the small pipeline run failed");
    char p[1024];
    snprintf(p, sizeof p, "%s/study/study.md", dir);
    char *md = pika_read_file(p, NULL);
    REQUIRE(md, "study.md written");
    const char *sections[] = {"## Provenance", "pika version `", "model file `pika-math-s.gguf`, fingerprint `", "prompt recipe `{",
                              "k = 3 rollouts, temperature 1", "N = 100 problems", "### Member s", "CV AUROC", "Paired bootstrap",
                              "## Human vs model difficulty", "Cross-prediction on the held-out rows", "## Reader probes", "| s | s |", "## Transfer across the word framing",
                              "## Routing: own probes vs reader s's probes", "### Routing with every arm's probe read from member s's"};
    for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) CHECK(strstr(md, sections[i]), "study.md has '%s'", sections[i]);
    /* every figure the Markdown names exists and is a PNG */
    int n_img = 0;
    for (const char *q = md; (q = strstr(q, "](")); q += 2) {
        const char *e = strchr(q, ')');
        if (!e || q[-1] == '`') continue;
        char f[1024];
        snprintf(f, sizeof f, "%s/study/%.*s", dir, (int)(e - q - 2), q + 2);
        size_t n = 0;
        char *img = pika_read_file(f, &n);
        CHECK(img && n > 8 && !memcmp(img, "\x89PNG", 4), "figure %s is a PNG", f);
        free(img);
        n_img++;
    }
    CHECK(n_img >= 8, "at least 8 figures (cv, roc, reliability, level, cross, difficulty, reader, routing x2): %d", n_img);
    CHECK(!strstr(md, "not drawn"), "every figure drawn");
    free(md);
    snprintf(p, sizeof p, "%s/study/s-cv.gp", dir);
    char *gp = pika_read_file(p, NULL);
    CHECK(gp && strstr(gp, "set xtics 1") && strstr(gp, "set xlabel 'layer'") && strstr(gp, "set ylabel") && strstr(gp, "yerrorlines") &&
              strstr(gp, "title 'EOI position -1'") && strstr(gp, "length baseline"), "CV figure: integer ticks, axes, legend, error bars, baselines");
    free(gp);
    snprintf(p, sizeof p, "%s/study/s-difficulty.gp", dir);
    gp = pika_read_file(p, NULL);
    CHECK(gp && strstr(gp, "axes x1y2") && strstr(gp, "set y2label"), "difficulty figure: Spearman and AUROC on separate axes");
    free(gp);
    snprintf(p, sizeof p, "%s/study/study.html", dir);
    char *h = pika_read_file(p, NULL);
    REQUIRE(h, "study.html written");
    CHECK(count_of(h, "src=\"data:image/png;base64,iVBOR") == n_img, "every figure embedded in the HTML (%d of %d)",
          count_of(h, "src=\"data:image/png;base64,iVBOR"), n_img);
    CHECK(!strstr(h, "<svg"), "no hand-drawn SVG");
    free(h);
}

/* ---- headless Chromium */

static const char *chromium(void) {
    static const char *c[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
    for (size_t i = 0; i < 2; i++)
        if (access(c[i], X_OK) == 0) return c[i];
    return NULL;
}

/* Fraction of pixels of a PNG (8-bit RGB or RGBA, non-interlaced) that differ from its first pixel;
 * -1 when it cannot be decoded. */
static double png_nonblank(const unsigned char *s, size_t n) {
    if (n < 33 || memcmp(s, "\x89PNG\r\n\x1a\n", 8)) return -1;
    size_t i = 8;
    uint32_t w = 0, h = 0;
    int ch = 0;
    unsigned char *z = NULL;
    size_t zn = 0;
    while (i + 12 <= n) {
        uint32_t len = (uint32_t)s[i] << 24 | (uint32_t)s[i + 1] << 16 | (uint32_t)s[i + 2] << 8 | s[i + 3];
        const unsigned char *t = s + i + 4, *d = s + i + 8;
        if (i + 12 + len > n) break;
        if (!memcmp(t, "IHDR", 4)) {
            w = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
            h = (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
            if (d[8] != 8 || d[12] != 0) { free(z); return -1; }
            ch = d[9] == 2 ? 3 : d[9] == 6 ? 4 : 0;
            if (!ch) { free(z); return -1; }
        } else if (!memcmp(t, "IDAT", 4)) {
            z = realloc(z, zn + len);
            memcpy(z + zn, d, len);
            zn += len;
        }
        i += 12 + len;
    }
    if (!w || !h || !z) { free(z); return -1; }
    size_t stride = (size_t)w * ch, raw_n = (stride + 1) * h;
    unsigned char *raw = malloc(raw_n);
    uLongf out_n = raw_n;
    int zr = uncompress(raw, &out_n, z, zn);
    free(z);
    if (zr != Z_OK || out_n != raw_n) { free(raw); return -1; }
    unsigned char *img = malloc(stride * h);
    for (uint32_t y = 0; y < h; y++) {
        unsigned char f = raw[y * (stride + 1)], *src = raw + y * (stride + 1) + 1, *cur = img + y * stride;
        const unsigned char *up = y ? img + (y - 1) * stride : NULL;
        for (size_t x = 0; x < stride; x++) {
            int a = x >= (size_t)ch ? cur[x - ch] : 0, b = up ? up[x] : 0, c = (up && x >= (size_t)ch) ? up[x - ch] : 0;
            int v = src[x];
            if (f == 1) v += a;
            else if (f == 2) v += b;
            else if (f == 3) v += (a + b) / 2;
            else if (f == 4) {
                int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
                v += (pa <= pb && pa <= pc) ? a : pb <= pc ? b : c;
            }
            cur[x] = (unsigned char)v;
        }
    }
    int64_t diff = 0;
    for (size_t p = 0; p < (size_t)w * h; p++)
        if (memcmp(img + p * ch, img, 3)) diff++;
    free(raw);
    free(img);
    return (double)diff / ((double)w * h);
}

static void test_study_renders_in_chromium(void) {
    if (access("models/pool/pika-math-s.gguf", R_OK) != 0) SKIP_TEST("models/pool/pika-math-s.gguf is missing");
    if (!chromium() && geteuid() == 0) {
        int st;
        fprintf(stderr, "test_study: chromium missing, installing the Debian package (apt-get install -y chromium) ...\n");
        free(test_run("DEBIAN_FRONTEND=noninteractive apt-get install -y chromium > /dev/null 2>&1 || "
                      "(apt-get update > /dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium > /dev/null 2>&1)", &st));
    }
    if (!chromium()) SKIP_TEST("*** chromium is not installed and could not be installed (apt-get install chromium): browser render test SKIPPED ***");
    const char *dir = small_run();
    REQUIRE(dir, "the small pipeline run failed");
    char html[1024], shot[1024], cmd[4096];
    snprintf(html, sizeof html, "%s/study/study.html", dir);
    snprintf(shot, sizeof shot, "%s/shot.png", dir);
    char *h = pika_read_file(html, NULL);
    REQUIRE(h, "study.html");
    int n_img = count_of(h, "<img ");
    free(h);
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars --virtual-time-budget=5000 "
                        "--user-data-dir=";
    snprintf(cmd, sizeof cmd, "%s %s%s/chrome-profile --window-size=1200,2000 --screenshot=%s 'file://%s' > /dev/null 2>&1", chromium(), flags, dir,
             shot, html);
    int st;
    free(test_run(cmd, &st));
    size_t n = 0;
    unsigned char *png = (unsigned char *)pika_read_file(shot, &n);
    REQUIRE(png, "chromium wrote no screenshot (exit %d): %s", st, cmd);
    double frac = png_nonblank(png, n);
    free(png);
    CHECK(frac > 0.02, "screenshot is not blank: %.4f of pixels differ from the background", frac);
    snprintf(cmd, sizeof cmd, "%s %s%s/chrome-profile2 --dump-dom 'file://%s' 2> /dev/null", chromium(), flags, dir, html);
    char *dom = test_run(cmd, &st);
    char want[64];
    snprintf(want, sizeof want, "<title>images %d/%d</title>", n_img, n_img);
    CHECK(n_img >= 8 && strstr(dom, want), "every image loads in the browser: want %s, page title: %.80s", want,
          strstr(dom, "<title>") ? strstr(dom, "<title>") : "(none)");
    free(dom);
}

int main(void) {
    RUN(test_md_to_html);
    RUN(test_study_page);
    RUN(test_study_renders_in_chromium);
    return test_summary("study");
}
