/* record: parse and validate query and click lines; see record.h.
 *
 * DESIGN. One forward pass per line, no allocation, no recursion.
 * NDJSON: the whole line is checked as UTF-8 first (bad_utf8 outranks
 * bad_json), then json_record() validates the one JSON object and, as it
 * meets a named field, converts the value into the field's slot of a
 * struct fields (a reason, and the value). Only once the whole line is known
 * to be one object without a repeated named field are the slots checked, in
 * the fixed order of the record (fields_check), so that a line with several
 * defects always gets the same reason. TSV fields are positional and are
 * checked in the same order as they are read.
 *
 * Values of ignored fields are validated by json_skip(), which keeps one bit
 * per open bracket: a valid line of REC_LINE_MAX bytes cannot nest deeper
 * than REC_LINE_MAX / 2, so that is not a limit on valid input.
 *
 * String values are read through a cursor (struct cur) that undoes JSON
 * escapes one byte at a time, so ids, times, click ids and terms of any
 * length are checked without a copy; TSV and command-line text go through
 * the same cursor with escapes off. */
#include "record.h"

#include "utf8.h"

#include <string.h>

/* ---- bytes ------------------------------------------------------------ */

static int is_digit(int b)
{
    return b >= '0' && b <= '9';
}

/* The white space a term folds (SPEC §2): space, TAB, LF, VT, FF, CR. */
static int is_term_space(int b)
{
    return b == ' ' || (b >= '\t' && b <= '\r');
}

/* ---- cursor: the bytes a string stands for ----------------------------- */

struct cur {
    const unsigned char *p, *end;
    int json;              /* undo JSON escapes (the string is valid JSON) */
    int lone;              /* met an escaped lone surrogate */
    int npend;             /* bytes left in pend */
    unsigned char pend[3]; /* rest of a decoded \u escape, next one last */
};

static struct cur cur_make(const unsigned char *p, size_t n, int json)
{
    struct cur c = {p, p + n, json, 0, 0, {0, 0, 0}};
    return c;
}

static unsigned hex4(const unsigned char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++)
        v = v * 16 + (p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
    return v;
}

/* Decodes the escape at c->p: returns its first byte, queues the others.
 * A lone surrogate is encoded like any code point and flagged. */
__attribute__((noinline)) static int cur_escape(struct cur *c)
{
    unsigned cp, lo;
    unsigned char e = c->p[1];

    c->p += 2;
    switch (e) {
    case 'b':
        return '\b';
    case 'f':
        return '\f';
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'u':
        break;
    default: /* " \ / */
        return e;
    }
    cp = hex4(c->p);
    c->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && c->end - c->p >= 6 && c->p[0] == '\\' &&
        c->p[1] == 'u' && (lo = hex4(c->p + 2)) >= 0xDC00 && lo <= 0xDFFF) {
        c->p += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        c->lone = 1;
    }
    if (cp < 0x80)
        return (int)cp;
    c->pend[0] = (unsigned char)(0x80 | (cp & 0x3F));
    if (cp < 0x800) {
        c->npend = 1;
        return (int)(0xC0 | cp >> 6);
    }
    c->pend[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    if (cp < 0x10000) {
        c->npend = 2;
        return (int)(0xE0 | cp >> 12);
    }
    c->pend[2] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    c->npend = 3;
    return (int)(0xF0 | cp >> 18);
}

/* The next byte, or -1 at the end. */
static inline int cur_next(struct cur *c)
{
    if (c->npend > 0)
        return c->pend[--c->npend];
    if (c->p == c->end)
        return -1;
    if (*c->p == '\\' && c->json)
        return cur_escape(c);
    return *c->p++;
}

/* 1 to 20 ASCII digits worth at most UINT64_MAX: cur_u64's fast path for
 * bytes without escapes (19 digits cannot overflow; only the 20th is
 * checked). 0, or CTRD_EINVAL. */
static int digits_u64(const unsigned char *p, const unsigned char *end,
                      uint64_t *v)
{
    const unsigned char *safe = end - p > 19 ? p + 19 : end;
    uint64_t x = 0;
    unsigned d;

    if (p == end)
        return CTRD_EINVAL;
    for (; p < safe; p++) {
        d = (unsigned)*p - '0';
        if (d > 9)
            return CTRD_EINVAL;
        x = x * 10 + d;
    }
    if (p < end) {
        d = (unsigned)*p - '0';
        if (d > 9 || x > UINT64_MAX / 10 ||
            (x == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return CTRD_EINVAL;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* The rest is 1+ ASCII digits worth at most UINT64_MAX. 0, or CTRD_EINVAL. */
static int cur_u64(struct cur *c, uint64_t *v)
{
    uint64_t x = 0;
    unsigned d;
    int b, n = 0;

    if (!c->json && !c->npend && c->end - c->p <= 20) {
        const unsigned char *start = c->p;
        c->p = c->end;
        return digits_u64(start, c->end, v);
    }
    while ((b = cur_next(c)) >= 0) {
        d = (unsigned)b - '0';
        if (d > 9 || x > UINT64_MAX / 10 ||
            (x == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return CTRD_EINVAL;
        x = x * 10 + d;
        n++;
    }
    if (n == 0)
        return CTRD_EINVAL;
    *v = x;
    return 0;
}

/* Exactly n ASCII digits. 0, or CTRD_EINVAL. */
static int cur_digits(struct cur *c, int n, int *v)
{
    int x = 0, b;

    for (int i = 0; i < n; i++) {
        b = cur_next(c);
        if (!is_digit(b))
            return CTRD_EINVAL;
        x = x * 10 + (b - '0');
    }
    *v = x;
    return 0;
}

/* ---- times ------------------------------------------------------------- */

static int is_leap(int y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* YYYY-MM-DD(T|t)HH:MM:SS[.frac](Z|z|+hh:mm|-hh:mm), the fraction truncated
 * to ms, as UTC ms in [0, REC_TIME_MAX_MS]. 0, or CTRD_EINVAL. */
static int time_rfc3339(struct cur *c, int64_t *ms)
{
    int y, mo, d, h, mi, s, oh, om, b, frac = 0, nfrac = 0;
    int64_t t, off_ms = 0;

    if (cur_digits(c, 4, &y) || cur_next(c) != '-' || cur_digits(c, 2, &mo) ||
        cur_next(c) != '-' || cur_digits(c, 2, &d) ||
        (cur_next(c) | 0x20) != 't' || cur_digits(c, 2, &h) ||
        cur_next(c) != ':' || cur_digits(c, 2, &mi) || cur_next(c) != ':' ||
        cur_digits(c, 2, &s))
        return CTRD_EINVAL;
    b = cur_next(c);
    if (b == '.') {
        while (is_digit(b = cur_next(c))) {
            if (nfrac < 3)
                frac = frac * 10 + (b - '0');
            nfrac++;
        }
        if (nfrac == 0)
            return CTRD_EINVAL;
        for (; nfrac < 3; nfrac++)
            frac *= 10;
    }
    if (b == '+' || b == '-') {
        if (cur_digits(c, 2, &oh) || cur_next(c) != ':' ||
            cur_digits(c, 2, &om) || oh > 23 || om > 59)
            return CTRD_EINVAL;
        off_ms = (int64_t)(oh * 60 + om) * 60000;
        if (b == '+')
            off_ms = -off_ms;
    } else if ((b | 0x20) != 'z') {
        return CTRD_EINVAL;
    }
    if (cur_next(c) != -1 || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return CTRD_EINVAL;
    t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s;
    t = t * 1000 + frac + off_ms;
    if (t < 0 || t > REC_TIME_MAX_MS)
        return CTRD_EINVAL;
    *ms = t;
    return 0;
}

int rec_parse_id(const char *s, size_t len, uint64_t *v)
{
    struct cur c = cur_make((const unsigned char *)s, len, 0);
    return cur_u64(&c, v);
}

int rec_parse_time(const char *s, size_t len, int64_t *ms)
{
    const unsigned char *u = (const unsigned char *)s;
    struct cur c;
    uint64_t v;

    if (len == 0)
        return CTRD_EINVAL;
    c = cur_make(u, len, 0);
    if (cur_u64(&c, &v) == 0) {
        if (v > (uint64_t)REC_TIME_MAX_MS)
            return CTRD_EINVAL;
        *ms = (int64_t)v;
        return 0;
    }
    c = cur_make(u, len, 0);
    return time_rfc3339(&c, ms);
}

/* ---- terms and ad lists ------------------------------------------------ */

/* Normalises the string under c into term[0..REC_TERM_MAX) (SPEC §2).
 * The bytes must be valid UTF-8 already, apart from escaped lone
 * surrogates, which c flags. */
static enum rec_reason term_normalise(struct cur *c, char *term,
                                      uint32_t *term_len)
{
    size_t n = 0;
    int b, space = 0;

    while ((b = cur_next(c)) >= 0) {
        if (is_term_space(b)) {
            space = n > 0;
            continue;
        }
        if (space) {
            if (n < REC_TERM_MAX)
                term[n] = ' ';
            n++;
            space = 0;
        }
        if (n < REC_TERM_MAX)
            term[n] = (char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
        n++;
    }
    if (c->lone)
        return REC_BAD_UTF8;
    if (n == 0)
        return REC_EMPTY_QUERY;
    if (n > REC_TERM_MAX)
        return REC_QUERY_TOO_LONG;
    *term_len = (uint32_t)n;
    return REC_OK;
}

enum rec_reason rec_normalise_term(const char *text, size_t len, char *term,
                                   uint32_t *term_len)
{
    const unsigned char *s = (const unsigned char *)text;
    struct cur c = cur_make(s, len, 0);

    if (!utf8_valid(s, len))
        return REC_BAD_UTF8;
    return term_normalise(&c, term, term_len);
}

/* Records entry number raw (1-based) of an ad list: kept if it is within
 * the first REC_ADS_MAX and not seen before. */
static void ads_add(struct rec_query *q, size_t raw, uint64_t id)
{
    if (raw > REC_ADS_MAX)
        return;
    for (uint32_t i = 0; i < q->n_ads; i++)
        if (q->ads[i] == id)
            return;
    q->ads[q->n_ads++] = id;
}

/* A bad entry outranks a long list: too_many_ads means well-typed but long. */
static enum rec_reason ads_reason(int bad, size_t raw)
{
    if (bad)
        return REC_BAD_AD_IDS;
    return raw > REC_ADS_MAX ? REC_TOO_MANY_ADS : REC_OK;
}

/* ---- JSON scanning ----------------------------------------------------- */

/* A bracket depth no valid line reaches: each level takes two bytes. */
#define JSON_DEPTH_MAX (REC_LINE_MAX / 2)

static const unsigned char *json_ws(const unsigned char *p,
                                    const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int is_hex(int b)
{
    return is_digit(b) || ((b | 0x20) >= 'a' && (b | 0x20) <= 'f');
}

/* The end of the run of bytes at p that a string holds as they are (no
 * quote, backslash or control byte). A word at a time: the zero-byte and
 * byte-below tests flag every such byte, and the lowest flag is a true
 * one (false flags only come from a borrow out of a true one below), so
 * on a little-endian machine it is the first such byte of the word. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "json_plain_run: the first byte is the lowest");
static const unsigned char *json_plain_run(const unsigned char *p,
                                           const unsigned char *end)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);

    while (end - p >= 8) {
        uint64_t w, q, b, hit;
        memcpy(&w, p, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        hit = ((q - ones) & ~q & highs) | ((b - ones) & ~b & highs) |
              ((w - ones * 0x20) & ~w & highs);
        if (hit)
            return p + __builtin_ctzll(hit) / 8;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
        p++;
    return p;
}

/* The string whose opening quote is at p. Returns its end (after the
 * closing quote) or NULL; *esc tells whether it holds an escape. */
static const unsigned char *json_string(const unsigned char *p,
                                        const unsigned char *end, int *esc)
{
    *esc = 0;
    for (p++;; p++) {
        p = json_plain_run(p, end);
        if (p == end || *p < 0x20)
            return NULL;
        if (*p == '"')
            return p + 1;
        *esc = 1;
        if (end - p < 2)
            return NULL;
        p++;
        if (*p == 'u') {
            if (end - p < 5 || !is_hex(p[1]) || !is_hex(p[2]) ||
                !is_hex(p[3]) || !is_hex(p[4]))
                return NULL;
            p += 4;
        } else if (*p == '\0' || !strchr("\"\\/bfnrt", *p)) {
            return NULL;
        }
    }
}

static const unsigned char *json_digits(const unsigned char *p,
                                        const unsigned char *end)
{
    while (p < end && is_digit(*p))
        p++;
    return p;
}

/* The number at p (RFC 8259 grammar). Returns its end or NULL; *plain
 * tells whether it is digits only (no sign, fraction or exponent). */
static const unsigned char *json_number(const unsigned char *p,
                                        const unsigned char *end, int *plain)
{
    *plain = *p != '-';
    if (*p == '-')
        p++;
    if (p == end || !is_digit(*p))
        return NULL;
    p = *p == '0' ? p + 1 : json_digits(p, end);
    if (p < end && *p == '.') {
        *plain = 0;
        if (++p == end || !is_digit(*p))
            return NULL;
        p = json_digits(p, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *plain = 0;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return NULL;
        p = json_digits(p, end);
    }
    return p;
}

static const unsigned char *json_literal(const unsigned char *p,
                                         const unsigned char *end)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(end - p) >= n && memcmp(p, lits[i], n) == 0)
            return p + n;
    }
    return NULL;
}

/* From the first byte of an object member (its key) to its value. */
static const unsigned char *json_member(const unsigned char *p,
                                        const unsigned char *end)
{
    int esc;

    if (p == end || *p != '"' || !(p = json_string(p, end, &esc)))
        return NULL;
    p = json_ws(p, end);
    if (p == end || *p != ':')
        return NULL;
    return json_ws(p + 1, end);
}

/* One scalar (string, number, literal) at p. Returns its end or NULL. */
static const unsigned char *json_scalar(const unsigned char *p,
                                        const unsigned char *end)
{
    int flag;

    if (*p == '"')
        return json_string(p, end, &flag);
    if (*p == '-' || is_digit(*p))
        return json_number(p, end, &flag);
    return json_literal(p, end);
}

/* One value of any kind and depth at p. Returns its end or NULL. */
__attribute__((noinline)) static const unsigned char *
json_skip(const unsigned char *p, const unsigned char *end)
{
    uint64_t is_obj[JSON_DEPTH_MAX / 64]; /* bit per open bracket */
    size_t depth = 0;
    int obj;

    for (;;) {
        /* p is where a value starts. */
        if (p == end)
            return NULL;
        if (*p == '{' || *p == '[') {
            if (depth == JSON_DEPTH_MAX)
                return NULL;
            obj = *p == '{';
            if (obj)
                is_obj[depth / 64] |= UINT64_C(1) << depth % 64;
            else
                is_obj[depth / 64] &= ~(UINT64_C(1) << depth % 64);
            depth++;
            p = json_ws(p + 1, end);
            if (p < end && *p == (obj ? '}' : ']')) {
                p++;
                depth--;
            } else {
                if (obj && !(p = json_member(p, end)))
                    return NULL;
                continue;
            }
        } else if (!(p = json_scalar(p, end))) {
            return NULL;
        }
        /* After a value: close brackets until the next value starts. */
        for (;;) {
            if (depth == 0)
                return p;
            obj = (int)(is_obj[(depth - 1) / 64] >> (depth - 1) % 64 & 1);
            p = json_ws(p, end);
            if (p == end)
                return NULL;
            if (*p == ',') {
                p = json_ws(p + 1, end);
                if (obj && !(p = json_member(p, end)))
                    return NULL;
                break;
            }
            if (*p != (obj ? '}' : ']'))
                return NULL;
            p++;
            depth--;
        }
    }
}

/* A value as the named fields see it. */
enum tok_kind {
    TOK_STRING, /* s, n: between the quotes */
    TOK_UINT,   /* a number of digits only */
    TOK_NUMBER, /* any other number */
    TOK_OTHER   /* literal, object or array */
};

struct tok {
    enum tok_kind kind;
    const unsigned char *s;
    size_t n;
    int esc; /* a string with escapes */
};

static const unsigned char *json_token(const unsigned char *p,
                                       const unsigned char *end, struct tok *t)
{
    const unsigned char *q;
    int flag = 0;

    if (p == end)
        return NULL;
    t->s = p;
    t->n = 0;
    if (*p == '"') {
        q = json_string(p, end, &flag);
        t->kind = TOK_STRING;
        t->s = p + 1;
        t->n = q ? (size_t)(q - p - 2) : 0;
    } else if (*p == '-' || is_digit(*p)) {
        q = json_number(p, end, &flag);
        t->kind = flag ? TOK_UINT : TOK_NUMBER;
        t->n = q ? (size_t)(q - p) : 0;
        flag = 0;
    } else {
        q = json_skip(p, end);
        t->kind = TOK_OTHER;
    }
    t->esc = flag;
    return q;
}

static struct cur tok_cur(const struct tok *t)
{
    return cur_make(t->s, t->n, t->esc);
}

/* An id: a JSON integer, or a string of digits. 0, or CTRD_EINVAL. */
static int tok_id(const struct tok *t, uint64_t *v)
{
    struct cur c = tok_cur(t);

    if (t->kind != TOK_UINT && t->kind != TOK_STRING)
        return CTRD_EINVAL;
    return cur_u64(&c, v);
}

/* A time: a JSON integer of ms, or an RFC 3339 string. 0, or CTRD_EINVAL. */
static int tok_time(const struct tok *t, int64_t *ms)
{
    struct cur c = tok_cur(t);
    uint64_t v;

    if (t->kind == TOK_STRING)
        return time_rfc3339(&c, ms);
    if (t->kind != TOK_UINT || cur_u64(&c, &v) != 0 ||
        v > (uint64_t)REC_TIME_MAX_MS)
        return CTRD_EINVAL;
    *ms = (int64_t)v;
    return 0;
}

/* A click id: a JSON integer within u64, or a string of 1..64 bytes. */
static int tok_click_id(const struct tok *t)
{
    struct cur c = tok_cur(t);
    uint64_t v;
    size_t n = 0;

    if (t->kind != TOK_STRING)
        return tok_id(t, &v);
    while (cur_next(&c) >= 0)
        n++;
    return c.lone || n == 0 || n > REC_CLICK_ID_MAX ? CTRD_EINVAL : 0;
}

/* ---- NDJSON records ---------------------------------------------------- */

#define FIELDS_PER_RECORD 4

static const struct {
    const char *key;
    size_t key_len;
    enum rec_reason missing; /* REC_OK: optional */
    enum rec_reason bad;
} field_info[REC_F_COUNT] = {
    [REC_F_TIME] = {"time", 4, REC_MISSING_TIME, REC_BAD_TIME},
    [REC_F_QUERY_ID] = {"query_id", 8, REC_MISSING_QUERY_ID, REC_BAD_QUERY_ID},
    [REC_F_QUERY] = {"query", 5, REC_MISSING_QUERY, REC_BAD_QUERY},
    [REC_F_AD_IDS] = {"ad_ids", 6, REC_MISSING_AD_IDS, REC_BAD_AD_IDS},
    [REC_F_AD_ID] = {"ad_id", 5, REC_MISSING_AD_ID, REC_BAD_AD_ID},
    [REC_F_CLICK_ID] = {"click_id", 8, REC_OK, REC_BAD_CLICK_ID},
};

/* The fields of each record, in the order they are checked. */
static const enum rec_field query_fields[FIELDS_PER_RECORD] = {
    REC_F_TIME, REC_F_QUERY_ID, REC_F_QUERY, REC_F_AD_IDS};
static const enum rec_field click_fields[FIELDS_PER_RECORD] = {
    REC_F_TIME, REC_F_QUERY_ID, REC_F_AD_ID, REC_F_CLICK_ID};

/* What one NDJSON line said about the fields of its record. */
struct fields {
    const enum rec_field *order;         /* query_fields or click_fields */
    unsigned seen;                       /* bit per field met */
    int dup;                             /* a field met twice */
    enum rec_reason reason[REC_F_COUNT]; /* of a field met: REC_OK or why not */
    int64_t time_ms;
    uint64_t query_id, ad_id;
    struct rec_query *q; /* gets the term and ads (queries only) */
};

/* The field a key (escapes undone) names, or -1. */
static int field_lookup(const struct fields *fs, const unsigned char *k,
                        size_t n, int esc)
{
    unsigned char buf[8];
    struct cur c;
    int b;

    if (esc) {
        c = cur_make(k, n, 1);
        for (n = 0; (b = cur_next(&c)) >= 0; n++) {
            if (n == sizeof buf)
                return -1;
            buf[n] = (unsigned char)b;
        }
        k = buf;
    }
    for (int i = 0; i < FIELDS_PER_RECORD; i++) {
        enum rec_field f = fs->order[i];
        if (field_info[f].key_len == n && memcmp(field_info[f].key, k, n) == 0)
            return (int)f;
    }
    return -1;
}

/* The array of an ad_ids field, at its '['. Returns its end or NULL. */
static const unsigned char *ads_json(struct fields *fs, const unsigned char *p,
                                     const unsigned char *end)
{
    struct tok t;
    uint64_t id;
    size_t raw = 0;
    int bad = 0;

    fs->q->n_ads = 0;
    p = json_ws(p + 1, end);
    if (p < end && *p == ']') {
        fs->reason[REC_F_AD_IDS] = REC_OK;
        return p + 1;
    }
    for (;;) {
        if (!(p = json_token(p, end, &t)))
            return NULL;
        if (tok_id(&t, &id) != 0)
            bad = 1;
        else if (!bad)
            ads_add(fs->q, raw + 1, id);
        raw++;
        p = json_ws(p, end);
        if (p == end || (*p != ',' && *p != ']'))
            return NULL;
        if (*p == ']')
            break;
        p = json_ws(p + 1, end);
    }
    fs->reason[REC_F_AD_IDS] = ads_reason(bad, raw);
    return p + 1;
}

/* The reason a scalar or other value gives field f. */
static enum rec_reason field_reason(struct fields *fs, enum rec_field f,
                                    const struct tok *t)
{
    struct cur c;
    int ok = 0;

    switch (f) {
    case REC_F_TIME:
        ok = tok_time(t, &fs->time_ms) == 0;
        break;
    case REC_F_QUERY_ID:
        ok = tok_id(t, &fs->query_id) == 0 && fs->query_id > 0;
        break;
    case REC_F_QUERY:
        if (t->kind != TOK_STRING)
            break;
        c = tok_cur(t);
        return term_normalise(&c, fs->q->term, &fs->q->term_len);
    case REC_F_AD_IDS: /* not an array */
        break;
    case REC_F_AD_ID:
        ok = tok_id(t, &fs->ad_id) == 0;
        break;
    case REC_F_CLICK_ID:
        ok = tok_click_id(t) == 0;
        break;
    case REC_F_COUNT:
        break;
    }
    return ok ? REC_OK : field_info[f].bad;
}

static const unsigned char *field_value(struct fields *fs, enum rec_field f,
                                        const unsigned char *p,
                                        const unsigned char *end)
{
    struct tok t;

    fs->dup |= (fs->seen >> f) & 1;
    fs->seen |= 1u << f;
    if (f == REC_F_AD_IDS && *p == '[')
        return ads_json(fs, p, end);
    if ((p = json_token(p, end, &t)) != NULL)
        fs->reason[f] = field_reason(fs, f, &t);
    return p;
}

/* The members of the top-level object, from the first key to the closing
 * brace; named fields go to fs. Returns the end of the object or NULL. */
static const unsigned char *json_members(struct fields *fs,
                                         const unsigned char *p,
                                         const unsigned char *end)
{
    const unsigned char *key;
    int esc, f;

    for (;;) {
        if (p == end || *p != '"')
            return NULL;
        key = p + 1;
        if (!(p = json_string(p, end, &esc)))
            return NULL;
        f = field_lookup(fs, key, (size_t)(p - 1 - key), esc);
        p = json_ws(p, end);
        if (p == end || *p != ':')
            return NULL;
        p = json_ws(p + 1, end);
        if (p == end)
            return NULL;
        p = f < 0 ? json_skip(p, end)
                  : field_value(fs, (enum rec_field)f, p, end);
        if (!p || (p = json_ws(p, end)) == end)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p = json_ws(p + 1, end);
    }
}

/* Validates the line as one JSON object and fills fs from its fields.
 * REC_OK, or bad_utf8, bad_json, not_object, duplicate_field. */
static enum rec_reason json_record(const unsigned char *s, size_t n,
                                   struct fields *fs)
{
    const unsigned char *p, *end = s + n;

    if (!utf8_valid(s, n))
        return REC_BAD_UTF8;
    p = json_ws(s, end);
    if (p == end)
        return REC_BAD_JSON;
    if (*p != '{') {
        p = json_skip(p, end);
        return p && json_ws(p, end) == end ? REC_NOT_OBJECT : REC_BAD_JSON;
    }
    p = json_ws(p + 1, end);
    p = p < end && *p == '}' ? p + 1 : json_members(fs, p, end);
    if (!p || json_ws(p, end) != end)
        return REC_BAD_JSON;
    return fs->dup ? REC_DUPLICATE_FIELD : REC_OK;
}

static enum rec_reason json_parse(const unsigned char *s, size_t n,
                                  struct fields *fs)
{
    enum rec_reason r = json_record(s, n, fs);

    for (int i = 0; i < FIELDS_PER_RECORD && r == REC_OK; i++) {
        enum rec_field f = fs->order[i];
        r = fs->seen >> f & 1 ? fs->reason[f] : field_info[f].missing;
    }
    return r;
}

/* ---- TSV records ------------------------------------------------------- */

struct span {
    const unsigned char *p;
    size_t n;
};

/* Splits s at TABs into at most max fields. Returns the number of fields,
 * or max + 1 when there are more. */
static int tsv_split(const unsigned char *s, size_t n, struct span *f, int max)
{
    const unsigned char *t, *end = s + n;

    for (int k = 0;; k++) {
        if (k == max)
            return max + 1;
        t = memchr(s, '\t', (size_t)(end - s));
        f[k].p = s;
        f[k].n = (size_t)((t ? t : end) - s);
        if (!t)
            return k + 1;
        s = t + 1;
    }
}

static int span_id(struct span f, uint64_t *v)
{
    return rec_parse_id((const char *)f.p, f.n, v);
}

static enum rec_reason tsv_ads(struct span f, struct rec_query *q)
{
    const unsigned char *comma, *s = f.p, *end = f.p + f.n;
    struct span e;
    uint64_t id;
    size_t raw = 0;
    int bad = 0;

    q->n_ads = 0;
    if (f.n == 0)
        return REC_OK;
    for (;;) {
        comma = memchr(s, ',', (size_t)(end - s));
        e.p = s;
        e.n = (size_t)((comma ? comma : end) - s);
        if (span_id(e, &id) != 0)
            bad = 1;
        else if (!bad)
            ads_add(q, raw + 1, id);
        raw++;
        if (!comma)
            return ads_reason(bad, raw);
        s = comma + 1;
    }
}

static enum rec_reason tsv_query(const unsigned char *s, size_t n,
                                 struct rec_query *q)
{
    struct span f[4];
    enum rec_reason r;

    /* SPEC §1.1: the text holds any byte but TAB, CR and LF. */
    if (tsv_split(s, n, f, 4) != 4 || memchr(f[3].p, '\r', f[3].n))
        return REC_BAD_TSV;
    if (rec_parse_time((const char *)f[0].p, f[0].n, &q->time_ms) != 0)
        return REC_BAD_TIME;
    if (span_id(f[1], &q->query_id) != 0 || q->query_id == 0)
        return REC_BAD_QUERY_ID;
    r = rec_normalise_term((const char *)f[3].p, f[3].n, q->term, &q->term_len);
    if (r != REC_OK)
        return r;
    return tsv_ads(f[2], q);
}

static enum rec_reason tsv_click(const unsigned char *s, size_t n,
                                 struct rec_click *out)
{
    struct span f[4];
    int nf = tsv_split(s, n, f, 4);

    if (nf < 3 || nf > 4)
        return REC_BAD_TSV;
    if (rec_parse_time((const char *)f[0].p, f[0].n, &out->time_ms) != 0)
        return REC_BAD_TIME;
    if (span_id(f[1], &out->query_id) != 0 || out->query_id == 0)
        return REC_BAD_QUERY_ID;
    if (span_id(f[2], &out->ad_id) != 0)
        return REC_BAD_AD_ID;
    if (nf == 4 && (f[3].n == 0 || f[3].n > REC_CLICK_ID_MAX))
        return REC_BAD_CLICK_ID;
    return REC_OK;
}

/* ---- interface --------------------------------------------------------- */

/* Parses one line into q (a query) or c (a click): the other is NULL. */
static enum rec_reason parse_line(enum rec_format fmt, const char *line,
                                  size_t len, struct rec_query *q,
                                  struct rec_click *c)
{
    const unsigned char *s = (const unsigned char *)line;
    struct fields fs = {.order = q ? query_fields : click_fields, .q = q};
    enum rec_reason r;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return REC_EMPTY;
    if (len > REC_LINE_MAX)
        return REC_LINE_TOO_LONG;
    if (q)
        q->n_ads = q->term_len = 0;
    if (fmt == REC_TSV)
        return q ? tsv_query(s, len, q) : tsv_click(s, len, c);
    if ((r = json_parse(s, len, &fs)) != REC_OK)
        return r;
    if (q) {
        q->time_ms = fs.time_ms;
        q->query_id = fs.query_id;
    } else {
        c->time_ms = fs.time_ms;
        c->query_id = fs.query_id;
        c->ad_id = fs.ad_id;
    }
    return REC_OK;
}

enum rec_reason rec_parse_query(enum rec_format fmt, const char *line,
                                size_t len, struct rec_query *out)
{
    return parse_line(fmt, line, len, out, NULL);
}

enum rec_reason rec_parse_click(enum rec_format fmt, const char *line,
                                size_t len, struct rec_click *out)
{
    return parse_line(fmt, line, len, NULL, out);
}

const char *rec_reason_name(enum rec_reason reason)
{
    static const char *const names[REC_REASON_COUNT] = {
#define REC_REASON_NAME(name, str) str,
        REC_REASON_MAP(REC_REASON_NAME)
#undef REC_REASON_NAME
    };
    return (unsigned)reason < REC_REASON_COUNT ? names[reason] : "unknown";
}

const char *rec_field_key(enum rec_field field)
{
    return (unsigned)field < REC_F_COUNT ? field_info[field].key : NULL;
}

int rec_format_from_name(const char *path, enum rec_format *fmt)
{
    const char *dot = strrchr(path, '.');
    if (dot && (strcmp(dot, ".ndjson") == 0 || strcmp(dot, ".jsonl") == 0)) {
        *fmt = REC_NDJSON;
        return 0;
    }
    if (dot && strcmp(dot, ".tsv") == 0) {
        *fmt = REC_TSV;
        return 0;
    }
    return CTRD_EINVAL;
}
