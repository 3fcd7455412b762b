/* gen_spell: how `ctrd gen` spells a record (struct grec) as one NDJSON or
 * TSV line -- the variations SPEC §2 allows (number or string ids, leading
 * zeros, RFC 3339 times in any zone, JSON escapes, key order, extra
 * members, white space, letter case, CRLF, blank lines) and the alterations
 * a tricky case asks for (struct variant: drop, rename, repeat or replace a
 * field, cut or wrap the line, ...). See gen_internal.h.
 *
 * Owns nothing: it writes into g->line (and g->text for a query's text).
 * Invariants: a record is spelled only from its own fields, and every
 * random choice comes from the rng it is handed (g->spell[tricky][fmt]),
 * so one format's spelling never moves another's. Without a variant the
 * line is valid and carries exactly x's values. Threads: the caller's. */
#include "gen_internal.h"

#include <stdlib.h>

/* ---- times ---------------------------------------------------------- */

/* Date of a day number since 1970-01-01 (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, unsigned *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (unsigned)(yoe + era * 400 + (*m <= 2));
}

/* ms as RFC 3339 in a random zone, with a fraction that truncates to it. */
static void put_rfc3339(struct rng *r, struct buf *b, int64_t ms)
{
    static const int offsets_min[] = {330, -480, 60,   540, -210,
                                      0,   840,  -720, 345, -300};
    unsigned zone = (unsigned)rng_below(r, 100), y, mo, d;
    int off = zone < 70 ? 0
                        : offsets_min[rng_below(r, sizeof offsets_min /
                                                       sizeof offsets_min[0])];
    int64_t local = ms + (int64_t)off * 60000, rem = local % 86400000;
    unsigned frac = (unsigned)(rem % 1000), sec = (unsigned)(rem / 1000);

    civil_from_days(local / 86400000, &y, &mo, &d);
    buf_digits(b, y, 4);
    buf_c(b, '-');
    buf_digits(b, mo, 2);
    buf_c(b, '-');
    buf_digits(b, d, 2);
    buf_c(b, rng_chance(r, 0.05) ? 't' : 'T');
    buf_digits(b, sec / 3600, 2);
    buf_c(b, ':');
    buf_digits(b, sec / 60 % 60, 2);
    buf_c(b, ':');
    buf_digits(b, sec % 60, 2);
    if (frac || rng_chance(r, 0.4)) {
        buf_c(b, '.');
        buf_digits(b, frac, 3);
        for (int extra = rng_chance(r, 0.3) ? 1 + (int)rng_below(r, 6) : 0;
             extra > 0; extra--)
            buf_c(b, (char)('0' + rng_below(r, 10)));
    }
    if (zone < 70) {
        buf_c(b, zone < 65 ? 'Z' : 'z');
        return;
    }
    buf_c(b, off < 0 ? '-' : '+');
    buf_digits(b, (unsigned)abs(off) / 60, 2);
    buf_c(b, ':');
    buf_digits(b, (unsigned)abs(off) % 60, 2);
}

/* ---- spelling pieces ---------------------------------------------------- */

static const char hex_lo[] = "0123456789abcdef", hex_up[] = "0123456789ABCDEF";

static void put_u_escape(struct rng *r, struct buf *b, unsigned cp)
{
    const char *hex = rng_chance(r, 0.5) ? hex_lo : hex_up;
    char e[6] = {'\\',
                 'u',
                 hex[cp >> 12 & 15],
                 hex[cp >> 8 & 15],
                 hex[cp >> 4 & 15],
                 hex[cp & 15]};
    buf_mem(b, e, sizeof e);
}

/* Code point of the valid UTF-8 sequence at s; *n gets its length. */
static unsigned utf8_decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0xE0) {
        *n = 2;
        return (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
    }
    if (s[0] < 0xF0) {
        *n = 3;
        return (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    }
    *n = 4;
    return (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 |
           (s[3] & 0x3Fu);
}

/* Escapes a code point of a heavily escaped string (pairs above BMP). */
static void put_cp_escape(struct rng *r, struct buf *b, unsigned cp)
{
    if (cp < 0x10000) {
        put_u_escape(r, b, cp);
        return;
    }
    cp -= 0x10000;
    put_u_escape(r, b, 0xD800 + (cp >> 10));
    put_u_escape(r, b, 0xDC00 + (cp & 0x3FF));
}

/* s[0..n) (valid UTF-8) as a JSON string. Mostly minimal escapes; 5 % of
 * strings escape many characters as \uXXXX (pairs above the BMP), '/' as
 * "\/". */
static void put_json_string(struct rng *r, struct buf *b, const char *s,
                            size_t n)
{
    static const char short_esc[] = "btnvfr"; /* for 8..13, 'v' unused */
    const unsigned char *u = (const unsigned char *)s;
    int heavy = rng_chance(r, 0.05);

    buf_c(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned c = u[i];
        if (c >= 0x80 && heavy) { /* one character: escaped, or as is */
            size_t len;
            unsigned cp = utf8_decode(u + i, &len);
            if (rng_chance(r, 0.5))
                put_cp_escape(r, b, cp);
            else
                buf_mem(b, u + i, len);
            i += len - 1;
        } else if (c == '"' || c == '\\') {
            buf_c(b, '\\');
            buf_c(b, (char)c);
        } else if (c < 0x20) {
            if (c >= 8 && c <= 13 && c != 11) {
                buf_c(b, '\\');
                buf_c(b, short_esc[c - 8]);
            } else {
                put_u_escape(r, b, c);
            }
        } else if (heavy && c < 0x80 && rng_chance(r, 0.15)) {
            if (c == '/')
                buf_str(b, "\\/");
            else
                put_u_escape(r, b, c);
        } else {
            buf_c(b, (char)c);
        }
    }
    buf_c(b, '"');
}

/* TSV text cannot hold TAB, CR or LF, so its white space is spaces, VT
 * and FF. */
void gen_put_ws_run(struct rng *r, struct buf *b, int tsv)
{
    static const char json_ws[] = "    \t\t\n\r\v\f", tsv_ws[] = "    \v\f";
    const char *set = tsv ? tsv_ws : json_ws;
    size_t n = strlen(set);
    for (uint64_t k = 1 + rng_below(r, 3); k > 0; k--)
        buf_c(b, set[rng_below(r, n)]);
}

/* The raw text of a term: random case of its ASCII letters (normalisation
 * folds only those), and in 12 % of texts odd white space. */
static void put_term_text(struct rng *r, struct buf *b, const char *t, size_t n,
                          int tsv)
{
    unsigned mode = (unsigned)rng_below(r, 20);    /* <11 as is, <15 Title, */
    int odd = rng_chance(r, 0.12), word_start = 1; /* <17 UPPER, rAnDoM */

    if (odd && rng_chance(r, 0.5))
        gen_put_ws_run(r, b, tsv);
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == ' ') {
            if (odd && rng_chance(r, 0.5))
                gen_put_ws_run(r, b, tsv);
            else
                buf_c(b, ' ');
            word_start = 1;
            continue;
        }
        if (c >= 'a' && c <= 'z' && mode >= 11 &&
            (mode < 15   ? word_start
             : mode < 17 ? 1
                         : rng_chance(r, 0.5)))
            c = (char)(c - 32);
        buf_c(b, c);
        word_start = 0;
    }
    if (odd && rng_chance(r, 0.5))
        gen_put_ws_run(r, b, tsv);
}

/* The fields of each log in their usual order. */
static const enum rec_field log_fields[LOG_N][4] = {
    {REC_F_TIME, REC_F_QUERY_ID, REC_F_QUERY, REC_F_AD_IDS},
    {REC_F_TIME, REC_F_QUERY_ID, REC_F_AD_ID, REC_F_CLICK_ID},
};

/* ---- spelling: NDJSON ------------------------------------------------- */

static void put_id_json(struct rng *r, struct buf *b, uint64_t id,
                        double p_string, int zeros)
{
    if (!zeros && !rng_chance(r, p_string)) {
        buf_u64(b, id);
        return;
    }
    buf_c(b, '"');
    if (zeros || rng_chance(r, 0.15))
        buf_fill(b, '0', zeros ? (size_t)zeros : 1 + rng_below(r, 3));
    buf_u64(b, id);
    buf_c(b, '"');
}

static void put_time_json(struct rng *r, struct buf *b, int64_t ms, int str)
{
    if (!str && rng_chance(r, 0.7)) {
        buf_u64(b, (uint64_t)ms);
        return;
    }
    buf_c(b, '"');
    put_rfc3339(r, b, ms);
    buf_c(b, '"');
}

/* The raw query text of x into g->text. */
static void make_text(struct gen *g, struct rng *r, const struct grec *x,
                      int tsv)
{
    g->text.len = 0;
    if (x->text)
        buf_mem(&g->text, x->text, x->text_len);
    else
        put_term_text(r, &g->text, g->voc.bytes + g->voc.off[x->term],
                      g->voc.len[x->term], tsv);
}

static void json_value(struct gen *g, struct rng *r, const struct grec *x,
                       enum rec_field f, const struct variant *v)
{
    struct buf *b = &g->line;
    int zeros = v->op == OP_ZEROS && v->field == f ? v->arg : 0;

    switch (f) {
    case REC_F_TIME:
        put_time_json(r, b, x->time_ms, v->op == OP_TIMESTR);
        break;
    case REC_F_QUERY_ID:
        put_id_json(r, b, x->query_id, 0.45, zeros);
        break;
    case REC_F_QUERY:
        make_text(g, r, x, 0);
        put_json_string(r, b, g->text.p, g->text.len);
        break;
    case REC_F_AD_IDS:
        buf_c(b, '[');
        for (uint32_t i = 0; i < x->n_ads; i++) {
            if (i)
                buf_str(b, rng_chance(r, 0.05) ? ", " : ",");
            put_id_json(r, b, x->ads[i], 0.1, zeros);
        }
        buf_c(b, ']');
        break;
    case REC_F_AD_ID:
        put_id_json(r, b, x->ad_id, 0.08, zeros);
        break;
    case REC_F_CLICK_ID:
        if (rng_chance(r, 0.4)) {
            buf_u64(b, x->click_no);
        } else {
            buf_str(b, "\"c-");
            buf_u64(b, x->click_no);
            buf_c(b, '"');
        }
        break;
    case F_NONE:
        break;
    }
}

/* Valid members that readers must ignore (some look like fields). */
static const char *const extras[] = {
    "\"meta\":{\"ua\":\"Mozilla/5.0\",\"tags\":[\"a\"],\"n\":{\"x\":[{}]}}",
    "\"session\":\"5f2b-\\u00e9-\\ud83d\\ude00\"",
    "\"score\":-1.25e-3",
    "\"flags\":[true,false,null]",
    "\"lang\":\"de-DE\"",
    "\"query_ids\":[1,2,3]",
    "\"Time\":\"yesterday\"",
    "\"\":\"\"",
    "\"big\":123456789012345678901234567890",
    "\"exp\":1E+2",
    "\"text\":\"line\\nbreak\\ttab \\\"quote\\\" \\\\ back\\/slash\"",
    "\"empty\":{}",
    "\"list\":[ ]",
    "\"deep\":[[[[[[[[{\"a\":[[[1]]]}]]]]]]]]",
    "\"neg\":-0",
    "\"k\\u00e9y\":\"caf\xc3\xa9\"",
    "\"geo\":{\"lat\":52.52,\"lon\":13.405}",
};
#define N_EXTRAS (sizeof extras / sizeof extras[0])
/* Fields of the other log: ignored here. */
static const char *const log_extra[LOG_N] = {
    "\"ad_id\":5,\"click_id\":\"x\"",
    "\"ad_ids\":[1,2],\"query\":\"not a field of a click\"",
};

/* Member kinds beyond the fields. */
enum { M_EXTRA = F_NONE + 1, M_VARIANT };

/* White space between tokens: style 0 none, 1 ", " and ": ", 2 random. */
static void json_sep(struct rng *r, struct buf *b, int style, char c)
{
    if (style == 2 && rng_chance(r, 0.5))
        buf_str(b, rng_chance(r, 0.5) ? " " : "\t ");
    buf_c(b, c);
    if (style == 1 || (style == 2 && rng_chance(r, 0.5)))
        buf_c(b, style == 2 && rng_chance(r, 0.3) ? '\t' : ' ');
}

static void json_key(struct rng *r, struct buf *b, const char *key, int esc)
{
    size_t n = strlen(key), at = esc ? rng_below(r, n) : n;
    buf_c(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (i == at)
            put_u_escape(r, b, (unsigned char)key[i]);
        else
            buf_c(b, key[i]);
    }
    buf_c(b, '"');
}

static void json_member(struct gen *g, struct rng *r, const struct grec *x,
                        const struct variant *v, uint8_t kind, int style,
                        int keyesc)
{
    struct buf *b = &g->line;

    if (kind == M_VARIANT && v->op == OP_DEEP) {
        buf_str(b, "\"deep\":");
        buf_fill(b, '[', (size_t)v->arg);
        buf_fill(b, ']', (size_t)v->arg);
        return;
    }
    if (kind == M_VARIANT && v->op == OP_EXTRA) {
        buf_str(b, v->json);
        return;
    }
    if (kind == M_VARIANT) { /* OP_DUP */
        buf_str(b, v->key);
        json_sep(r, b, style, ':');
        if (v->json)
            buf_str(b, v->json);
        else
            json_value(g, r, x, (enum rec_field)v->field, v);
        return;
    }
    if (v->op == OP_RENAME && v->field == kind)
        buf_str(b, v->key);
    else
        json_key(r, b, rec_field_key((enum rec_field)kind), keyesc);
    json_sep(r, b, style, ':');
    if (v->op == OP_SET && v->field == kind)
        buf_str(b, v->json);
    else
        json_value(g, r, x, (enum rec_field)kind, v);
}

static void insert_member(uint8_t *m, unsigned *n, uint8_t kind, unsigned at)
{
    memmove(m + at + 1, m + at, *n - at);
    m[at] = kind;
    (*n)++;
}

/* The members of x's line: fields (order mostly fixed), extras, the
 * variant's member. m[] gets kinds; extra_of[] the extras used. */
static unsigned json_members(struct rng *r, const struct grec *x,
                             const struct variant *v, uint8_t *m,
                             uint8_t *extra_of)
{
    unsigned n = 0,
             n_extra = rng_chance(r, 0.15) ? 1 + (unsigned)rng_below(r, 2) : 0;

    for (int i = 0; i < 4; i++) {
        enum rec_field f = log_fields[x->log][i];
        if (v->op == OP_DROP && v->field == f)
            continue;
        if (f == REC_F_CLICK_ID && v->field != REC_F_CLICK_ID &&
            rng_chance(r, 0.15))
            continue;
        m[n++] = (uint8_t)f;
    }
    if (rng_chance(r, 0.1))
        for (unsigned i = n - 1; i > 0; i--) {
            unsigned j = (unsigned)rng_below(r, i + 1);
            uint8_t t = m[i];
            m[i] = m[j];
            m[j] = t;
        }
    for (unsigned k = 0; k < n_extra; k++) {
        extra_of[k] = (uint8_t)rng_below(r, N_EXTRAS + 1);
        insert_member(m, &n, M_EXTRA, (unsigned)rng_below(r, n + 1));
    }
    if (v->op == OP_EXTRA || v->op == OP_DUP || v->op == OP_DEEP)
        insert_member(m, &n, M_VARIANT, (unsigned)rng_below(r, n + 1));
    return n;
}

/* Cuts the line short inside its object, at a character boundary. */
static void json_truncate(struct rng *r, struct buf *b)
{
    size_t last = b->len;
    while (last > 0 && b->p[last - 1] != '}')
        last--;
    size_t at = 1 + rng_below(r, last - 1); /* keeps [0, at), at < last */
    while (at > 1 && ((unsigned char)b->p[at] & 0xC0) == 0x80)
        at--;
    b->len = at;
}

/* Pads a line ending in '}' with an ignored member to exactly n bytes. */
static void json_pad(struct buf *b, size_t n)
{
    assert(b->p[b->len - 1] == '}' && n >= b->len + 9);
    size_t k = n - b->len - 9;
    b->len--;
    buf_str(b, ",\"pad\":\"");
    buf_fill(b, 'x', k);
    buf_str(b, "\"}");
}

static void json_line(struct gen *g, struct rng *r, const struct grec *x,
                      const struct variant *v)
{
    struct buf *b = &g->line;
    uint8_t m[16], extra_of[4];
    unsigned n, ne = 0;
    int style = rng_chance(r, 0.85) ? 0 : rng_chance(r, 0.8) ? 1 : 2;
    int keyesc = v->op == OP_KEYESC || rng_chance(r, 0.004);

    b->len = 0;
    if (v->op == OP_RAW) {
        buf_str(b, v->json);
        return;
    }
    if (v->op == OP_PAD)
        style = 0;
    n = json_members(r, x, v, m, extra_of);
    if (style == 2 && rng_chance(r, 0.3))
        buf_c(b, ' ');
    buf_c(b, '{');
    for (unsigned i = 0; i < n; i++) {
        if (i)
            json_sep(r, b, style, ',');
        if (m[i] == M_EXTRA) {
            unsigned e = extra_of[ne++];
            buf_str(b, e < N_EXTRAS ? extras[e] : log_extra[x->log]);
        } else {
            json_member(g, r, x, v, m[i], style, keyesc);
        }
    }
    if (style == 2)
        buf_c(b, ' ');
    buf_c(b, '}');
    if (style == 2 && rng_chance(r, 0.3))
        buf_str(b, " \t");
    switch (v->op) {
    case OP_TRUNC:
        json_truncate(r, b);
        break;
    case OP_TRAIL:
        buf_str(b, v->json);
        break;
    case OP_SQUOTE:
        for (size_t i = 0; i < b->len; i++)
            if (b->p[i] == '"')
                b->p[i] = '\'';
        break;
    case OP_WRAP:
        memmove(b->p + 1, b->p, b->len);
        b->p[0] = '[';
        b->len++;
        buf_c(b, ']');
        break;
    case OP_PAD:
        json_pad(b, (size_t)v->arg);
        break;
    default:
        break;
    }
}

/* ---- spelling: TSV ----------------------------------------------------- */

static void put_id_tsv(struct rng *r, struct buf *b, uint64_t id, int zeros)
{
    if (zeros || rng_chance(r, 0.03))
        buf_fill(b, '0', zeros ? (size_t)zeros : 1 + rng_below(r, 2));
    buf_u64(b, id);
}

static int set_tsv(struct buf *b, const struct variant *v, enum rec_field f)
{
    if (v->op != OP_SET || v->field != f)
        return 0;
    buf_str(b, v->tsv);
    return 1;
}

/* Cuts the line to its first n TAB-separated fields. */
static void tsv_cut(struct buf *b, int n)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->p[i] == '\t' && --n == 0) {
            b->len = i;
            return;
        }
}

static void tsv_line(struct gen *g, struct rng *r, const struct grec *x,
                     const struct variant *v)
{
    struct buf *b = &g->line;
    size_t id_at, text_at = 0;
    int zeros_f = v->op == OP_ZEROS ? v->field : F_NONE;

    b->len = 0;
    if (v->op == OP_RAW) {
        buf_str(b, v->tsv);
        return;
    }
    if (!set_tsv(b, v, REC_F_TIME)) {
        if (v->op != OP_TIMESTR && rng_chance(r, 0.8))
            buf_u64(b, (uint64_t)x->time_ms);
        else
            put_rfc3339(r, b, x->time_ms);
    }
    buf_c(b, '\t');
    id_at = b->len;
    if (!set_tsv(b, v, REC_F_QUERY_ID))
        put_id_tsv(r, b, x->query_id, zeros_f == REC_F_QUERY_ID ? v->arg : 0);
    buf_c(b, '\t');
    if (x->log == LOG_Q) {
        if (!set_tsv(b, v, REC_F_AD_IDS))
            for (uint32_t i = 0; i < x->n_ads; i++) {
                if (i)
                    buf_c(b, ',');
                put_id_tsv(r, b, x->ads[i],
                           zeros_f == REC_F_AD_IDS ? v->arg : 0);
            }
        buf_c(b, '\t');
        text_at = b->len;
        if (!set_tsv(b, v, REC_F_QUERY)) {
            make_text(g, r, x, 1);
            buf_mem(b, g->text.p, g->text.len);
        }
    } else {
        if (!set_tsv(b, v, REC_F_AD_ID))
            put_id_tsv(r, b, x->ad_id, zeros_f == REC_F_AD_ID ? v->arg : 0);
        if (v->field == REC_F_CLICK_ID || v->op == OP_TSV_FIELDS ||
            rng_chance(r, 0.75)) {
            buf_c(b, '\t');
            if (!set_tsv(b, v, REC_F_CLICK_ID)) {
                if (rng_chance(r, 0.5))
                    buf_str(b, "c-");
                buf_u64(b, x->click_no);
            }
        }
    }
    if (v->op == OP_TSV_FIELDS && v->tsv) {
        buf_c(b, '\t');
        buf_str(b, v->tsv);
    } else if (v->op == OP_TSV_FIELDS) {
        tsv_cut(b, v->arg);
    } else if (v->op == OP_TSV_SPLIT) {
        size_t at = text_at + rng_below(r, b->len - text_at + 1);
        memmove(b->p + at + 1, b->p + at, b->len - at);
        b->p[at] = '\t';
        b->len++;
    } else if (v->op == OP_PAD) { /* leading zeros on the query id */
        size_t k = (size_t)v->arg - b->len;
        assert((size_t)v->arg >= b->len && b->cap - b->len >= k);
        memmove(b->p + id_at + k, b->p + id_at, b->len - id_at);
        memset(b->p + id_at, '0', k);
        b->len += k;
    }
}

/* ---- a whole line --------------------------------------------------- */

void gen_spell(struct gen *g, int tricky, int fmt, const struct grec *x,
               const struct variant *v)
{
    struct rng *r = &g->spell[tricky][fmt];

    if (fmt == FMT_J)
        json_line(g, r, x, v);
    else
        tsv_line(g, r, x, v);
    g->blank = rng_chance(r, 0.0005) ? 1 + (int)rng_below(r, 2) : 0;
    if (g->line.len < 60000 && rng_chance(r, 0.01))
        buf_c(&g->line, '\r');
    buf_c(&g->line, '\n');
}
