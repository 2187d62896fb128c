/* jinja_lex.c — the Jinja lexer: template source -> tokens (data, {{ }}, {% %}, names, literals,
 * operators), with trim_blocks/lstrip_blocks and the - / + whitespace-control rules.
 */
#include "jinja_internal.h"

static void lx_emit(lexer *L, int type, const char *s, size_t n, int line);
static int line_at(const char *src, size_t pos, size_t *from, int *line);
static void lx_string(lexer *L, size_t *pos, int line);
static void lx_tag(lexer *L, size_t *pos, int is_block, int line);
static int lx_word_tag(const char *s, size_t n, size_t i, const char *w, size_t *end, int *rsign);
static void lx_data(lexer *L, const char *text, size_t tn, int sign, int kind, int line_starting, int line);

static void lx_emit(lexer *L, int type, const char *s, size_t n, int line) {
    if (L->ntok == L->cap) {
        int cap = L->cap ? L->cap * 2 : 256;
        token *t = jj_ar_alloc(L->a, sizeof(token) * (size_t)cap);
        if (L->ntok) memcpy(t, L->toks, sizeof(token) * (size_t)L->ntok);
        L->toks = t;
        L->cap = cap;
    }
    token *t = &L->toks[L->ntok++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->s = s ? jj_ar_strndup(L->a, s, n) : "";
    t->n = s ? n : 0;
    t->line = line;
}

/* line number at pos; positions asked for only increase, so counting resumes where it stopped */
static int line_at(const char *src, size_t pos, size_t *from, int *line) {
    for (; *from < pos; (*from)++) *line += src[*from] == '\n';
    return *line;
}

int jj_is_name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
int jj_is_digit(int c) { return c >= '0' && c <= '9'; }

/* decode a Python string literal body (unicode-escape) */
static void lx_string(lexer *L, size_t *pos, int line) {
    const char *s = L->src;
    char q = s[*pos];
    size_t i = *pos + 1;
    sbuf b;
    jj_sb_init(&b, L->a);
    for (;;) {
        if (i >= L->n) jj_fail(L->err, "template line %d: unterminated string literal", line);
        char c = s[i];
        if (c == q) { i++; break; }
        if (c != '\\') { jj_sb_putc(&b, c); i++; continue; }
        if (i + 1 >= L->n) jj_fail(L->err, "template line %d: unterminated string literal", line);
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'n': jj_sb_putc(&b, '\n'); break;
        case 't': jj_sb_putc(&b, '\t'); break;
        case 'r': jj_sb_putc(&b, '\r'); break;
        case 'b': jj_sb_putc(&b, '\b'); break;
        case 'f': jj_sb_putc(&b, '\f'); break;
        case 'v': jj_sb_putc(&b, '\v'); break;
        case 'a': jj_sb_putc(&b, '\a'); break;
        case '\\': jj_sb_putc(&b, '\\'); break;
        case '\'': jj_sb_putc(&b, '\''); break;
        case '"': jj_sb_putc(&b, '"'); break;
        case '\n': break; /* line continuation */
        case 'x': case 'u': case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < nd; k++) {
                char h = i + (size_t)k < L->n ? s[i + k] : 0;
                int d = jj_is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                if (d < 0) jj_fail(L->err, "template line %d: bad \\%c escape in string literal", line, e);
                v = v * 16 + (uint32_t)d;
            }
            i += (size_t)nd;
            if (v > 0x10FFFF) jj_fail(L->err, "template line %d: bad \\%c escape in string literal", line, e);
            jj_u8_put(&b, v);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t v = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && i < L->n && s[i] >= '0' && s[i] <= '7'; k++) v = v * 8 + (uint32_t)(s[i++] - '0');
                jj_u8_put(&b, v);
            } else {
                jj_sb_putc(&b, '\\');
                jj_sb_putc(&b, e);
            }
        }
    }
    lx_emit(L, T_STRING, b.p ? b.p : "", b.n, line);
    *pos = i;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char OPS1[] = "+-*/%~<>=.,:|()[]{}";

/* Lex the tokens inside {{ }} or {% %} starting at *pos; returns with *pos after the end tag. */
static void lx_tag(lexer *L, size_t *pos, int is_block, int line) {
    const char *s = L->src;
    size_t n = L->n, i = *pos;
    int depth = 0;
    for (;;) {
        if (i >= n) jj_fail(L->err, "template line %d: missing '%s'", line, is_block ? "%}" : "}}");
        char c = s[i];
        if (depth == 0) {
            char e0 = is_block ? '%' : '}';
            if ((c == '-' || c == '+') && i + 2 < n && s[i + 1] == e0 && s[i + 2] == '}' && (is_block || c == '-')) {
                i += 3;
                if (c == '-') i += jj_lspace_len(s + i, n - i);
                lx_emit(L, is_block ? T_BLOCK_END : T_VAR_END, NULL, 0, line);
                break;
            }
            if (c == e0 && i + 1 < n && s[i + 1] == '}') {
                i += 2;
                if (is_block && i < n && s[i] == '\n') i++; /* trim_blocks */
                lx_emit(L, is_block ? T_BLOCK_END : T_VAR_END, NULL, 0, line);
                break;
            }
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            line += c == '\n';
            i++;
            continue;
        }
        if (jj_is_name_start((unsigned char)c)) {
            size_t j = i;
            while (j < n && (jj_is_name_start((unsigned char)s[j]) || jj_is_digit((unsigned char)s[j]))) j++;
            lx_emit(L, T_NAME, s + i, j - i, line);
            i = j;
            continue;
        }
        if (jj_is_digit((unsigned char)c)) {
            size_t j = i;
            while (j < n && (jj_is_digit((unsigned char)s[j]) || (s[j] == '_' && j + 1 < n && jj_is_digit((unsigned char)s[j + 1])))) j++;
            int isf = 0;
            if (j + 1 < n && s[j] == '.' && jj_is_digit((unsigned char)s[j + 1])) {
                isf = 1;
                j++;
                while (j < n && (jj_is_digit((unsigned char)s[j]) || s[j] == '_')) j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                if (k < n && jj_is_digit((unsigned char)s[k])) {
                    isf = 1;
                    while (k < n && jj_is_digit((unsigned char)s[k])) k++;
                    j = k;
                }
            }
            char num[128];
            size_t m = 0;
            for (size_t k = i; k < j && m < sizeof num - 1; k++)
                if (s[k] != '_') num[m++] = s[k];
            num[m] = 0;
            lx_emit(L, isf ? T_FLOAT : T_INT, s + i, j - i, line);
            token *t = &L->toks[L->ntok - 1];
            if (isf) t->f = strtod(num, NULL);
            else {
                unsigned long long v = strtoull(num, NULL, 10);
                if (v > INT64_MAX) jj_fail(L->err, "template line %d: integer literal too large", line);
                t->i = (int64_t)v;
            }
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            lx_string(L, &i, line);
            continue;
        }
        int found = 0;
        for (size_t k = 0; k < sizeof OPS2 / sizeof OPS2[0]; k++)
            if (i + 1 < n && s[i] == OPS2[k][0] && s[i + 1] == OPS2[k][1]) {
                lx_emit(L, T_OP, s + i, 2, line);
                i += 2;
                found = 1;
                break;
            }
        if (found) continue;
        if (c && strchr(OPS1, c)) {
            if (c == '(' || c == '[' || c == '{') depth++;
            if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) jj_fail(L->err, "template line %d: unexpected '%c'", line, c);
                depth--;
            }
            lx_emit(L, T_OP, s + i, 1, line);
            i++;
            continue;
        }
        jj_fail(L->err, "template line %d: unexpected character '%c' in tag", line, c);
    }
    *pos = i;
}

/* Is the text between a tag's '{%' (+sign) and its '%}' exactly the word w? Sets *end past '%}'. */
static int lx_word_tag(const char *s, size_t n, size_t i, const char *w, size_t *end, int *rsign) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    size_t wl = strlen(w);
    if (i + wl > n || memcmp(s + i, w, wl)) return 0;
    i += wl;
    if (i < n && (jj_is_name_start((unsigned char)s[i]) || jj_is_digit((unsigned char)s[i]))) return 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    *rsign = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) *rsign = s[i++];
    if (i + 1 < n && s[i] == '%' && s[i + 1] == '}') {
        *end = i + 2;
        return 1;
    }
    return 0;
}

/* emit text before a tag with the whitespace-control rules of jinja2's lexer */
static void lx_data(lexer *L, const char *text, size_t tn, int sign, int kind, int line_starting, int line) {
    if (sign == '-') {
        tn = jj_rstrip_len(text, tn);
    } else if (sign != '+' && kind != '{') { /* lstrip_blocks */
        size_t l = tn;
        while (l > 0 && text[l - 1] != '\n') l--;
        if (l > 0 || line_starting) {
            size_t k = l;
            while (k < tn && (text[k] == ' ' || text[k] == '\t')) k++;
            if (k == tn) tn = l;
        }
    }
    if (tn) lx_emit(L, T_DATA, text, tn, line);
}

void jj_lex(lexer *L) {
    const char *s = L->src;
    size_t n = L->n, p = 0;
    int line_starting = 1, lno = 1;
    size_t lfrom = 0;
    while (p < n) {
        size_t q = p;
        while (q + 1 < n && !(s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#'))) q++;
        if (q + 1 >= n) {
            lx_emit(L, T_DATA, s + p, n - p, line_at(s, p, &lfrom, &lno));
            break;
        }
        int kind = s[q + 1];
        int sign = (q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+')) ? s[q + 2] : 0;
        size_t body = q + 2 + (sign ? 1 : 0);
        int line = line_at(s, q, &lfrom, &lno);
        size_t rend;
        int rsign;
        if (kind == '%' && lx_word_tag(s, n, body, "raw", &rend, &rsign)) {
            lx_data(L, s + p, q - p, sign, kind, line_starting, line);
            /* raw body up to {% endraw %} */
            size_t r = rend;
            if (rsign == '-') r += jj_lspace_len(s + r, n - r);
            else if (rsign != '+' && r < n && s[r] == '\n') r++;
            size_t k = r, eend = 0;
            int esign = 0, fsign = 0;
            for (;; k++) {
                if (k + 1 >= n) jj_fail(L->err, "template line %d: missing {%% endraw %%}", line);
                if (s[k] == '{' && s[k + 1] == '%') {
                    esign = (k + 2 < n && (s[k + 2] == '-' || s[k + 2] == '+')) ? s[k + 2] : 0;
                    if (lx_word_tag(s, n, k + 2 + (esign ? 1 : 0), "endraw", &eend, &fsign)) break;
                }
            }
            size_t rn = k - r;
            if (esign == '-') rn = jj_rstrip_len(s + r, rn);
            if (rn) lx_emit(L, T_DATA, s + r, rn, line);
            p = eend;
            if (fsign == '-') p += jj_lspace_len(s + p, n - p);
            else if (fsign != '+' && p < n && s[p] == '\n') p++;
            line_starting = s[p - 1] == '\n';
            continue;
        }
        lx_data(L, s + p, q - p, sign, kind, line_starting, line);
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) jj_fail(L->err, "template line %d: missing end of comment tag", line);
            p = e + 2;
            if (e > body && s[e - 1] == '-') p += jj_lspace_len(s + p, n - p);
            else if (!(e > body && s[e - 1] == '+') && p < n && s[p] == '\n') p++;
        } else {
            lx_emit(L, kind == '%' ? T_BLOCK_BEGIN : T_VAR_BEGIN, NULL, 0, line);
            p = body;
            lx_tag(L, &p, kind == '%', line);
        }
        line_starting = s[p - 1] == '\n';
    }
    lx_emit(L, T_EOF, NULL, 0, line_at(s, n, &lfrom, &lno));
}
