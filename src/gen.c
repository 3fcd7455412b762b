/* gen: synthetic query and click logs; see gen.h.
 *
 * DESIGN. One pass over the normal queries in time order. Each record is
 * drawn by a "content" generator (id, time, term, ads, clicks) into a
 * struct grec, then spelled in each format by that format's own "spelling"
 * generator into one line. Clicks wait in a min-heap keyed by click time and
 * are written once no later query can make an earlier click (GEN_HOLD_MS),
 * so the click file comes out in time order with bounded memory.
 *
 * --tricky runs the cases of case_table at evenly spread points. A case
 * makes records with its own generators and writes them through the same
 * spellers, altered by a struct variant (drop, rename, repeat or replace a
 * field, truncate the line, ...), so that each invalid line has exactly one
 * defect. Every line is counted as it is written by the outcome SPEC §2
 * gives it (struct tally); the counts make manifest.json.
 *
 * Query ids are a bijection of a counter (hash_u64), so they never repeat;
 * normal and tricky records use disjoint counters, and the top
 * GEN_ID_RESERVED ids are left to the uint64-max cases. */
#include "gen.h"

#include "cli.h"
#include "fsutil.h"
#include "hash.h"
#include "record.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GEN_LINE_CAP (256 * 1024) /* longest line built (+ slack) */
#define GEN_ADS_CAP 48            /* entries of one generated ad list */
#define GEN_EARLY_MS 60000        /* a click may precede its query by this */
#define GEN_WINDOW_MS 86400000    /* default join window (SPEC §2) */
#define GEN_LATE_QUERY_MS 30000   /* queries arrive up to this late */
#define GEN_EARLY_MAX_MS 180000   /* no click precedes its query by more */
#define GEN_HOLD_MS (GEN_LATE_QUERY_MS + GEN_EARLY_MAX_MS + 30000)
#define GEN_ID_RESERVED 1024      /* top query ids: uint64-max cases only */
#define GEN_MIN_START_MS 86400000 /* local times stay after 1970 */
#define GEN_MAX_QUERIES UINT64_C(100000000000)
#define GEN_TRICK_ID_BASE (UINT64_C(1) << 63) /* tricky id counters */
#define GEN_TRICK_CLICK_BASE UINT64_C(900000000000)
#define GEN_DELAY_MEDIAN_MS 15000.0
#define GEN_DELAY_SIGMA 2.0

/* ---- random numbers: xoshiro256**, seeded by splitmix64 ---------------- */

struct rng {
    uint64_t s[4];
};

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ hash_u64(stream + 1);
    for (int i = 0; i < 4; i++) {
        x += UINT64_C(0x9E3779B97F4A7C15);
        r->s[i] = hash_u64(x);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_u64(struct rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n < 2^52. */
static uint64_t rng_below(struct rng *r, uint64_t n)
{
    return (uint64_t)(rng_unit(r) * (double)n);
}

static int rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}

/* Standard normal (Box-Muller, one of the pair). */
static double rng_gauss(struct rng *r)
{
    double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- line buffer ------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_mem(struct buf *b, const void *s, size_t n)
{
    assert(b->cap - b->len >= n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_c(struct buf *b, char c)
{
    assert(b->len < b->cap);
    b->p[b->len++] = c;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_mem(b, s, strlen(s));
}

static void buf_fill(struct buf *b, char c, size_t n)
{
    assert(b->cap - b->len >= n);
    memset(b->p + b->len, c, n);
    b->len += n;
}

static void buf_u64(struct buf *b, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[sizeof t - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_mem(b, t + sizeof t - n, n);
}

/* v as exactly width digits (v < 10^width). */
static void buf_digits(struct buf *b, unsigned v, int width)
{
    assert(b->cap - b->len >= (size_t)width);
    for (int i = width - 1; i >= 0; i--, v /= 10)
        b->p[b->len + (size_t)i] = (char)('0' + v % 10);
    b->len += (size_t)width;
}

/* ---- output files, with copies held back for later re-delivery -------- */

struct copy {
    char *bytes;
    size_t len;
    uint64_t due; /* written once the log's counter reaches this */
};

struct out {
    struct fs_writer *w; /* NULL: format not written */
    struct copy *copies;
    size_t n_copies, cap_copies;
    int oom;
};

static void out_put(struct out *o, const void *p, size_t n)
{
    fs_writer_put(o->w, p, n);
}

static void out_hold(struct out *o, const char *p, size_t n, uint64_t due)
{
    char *bytes = malloc(n);
    if (o->n_copies == o->cap_copies) {
        size_t cap = o->cap_copies ? 2 * o->cap_copies : 16;
        struct copy *c = realloc(o->copies, cap * sizeof *c);
        if (!c) {
            free(bytes);
            o->oom = 1;
            return;
        }
        o->copies = c;
        o->cap_copies = cap;
    }
    if (!bytes) {
        o->oom = 1;
        return;
    }
    memcpy(bytes, p, n);
    o->copies[o->n_copies++] = (struct copy){bytes, n, due};
}

/* Writes, in the order they were held, the copies due at counter now. */
static void out_release(struct out *o, uint64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < o->n_copies; i++) {
        struct copy c = o->copies[i];
        if (c.due <= now) {
            out_put(o, c.bytes, c.len);
            free(c.bytes);
        } else {
            o->copies[kept++] = c;
        }
    }
    o->n_copies = kept;
}

/* ---- term vocabulary ---------------------------------------------------- */

/* Words of search terms: lower case (as normalised), no white space, none
 * all digits. Some need JSON escapes, some are not ASCII. */
/* clang-format off */
static const char *const words[] = {
    "running", "shoes", "cheap", "flights", "to", "hotel", "hotels", "near",
    "me", "best", "pizza", "delivery", "weather", "tomorrow", "news",
    "football", "scores", "buy", "online", "sale", "discount", "coupon",
    "free", "shipping", "women", "men", "kids", "jacket", "winter", "summer",
    "dress", "laptop", "phone", "case", "charger", "wireless", "headphones",
    "bluetooth", "speaker", "tv", "4k", "smart", "watch", "fitness",
    "tracker", "yoga", "mat", "gym", "membership", "protein", "powder",
    "vegan", "recipes", "easy", "dinner", "chicken", "pasta", "salad",
    "sushi", "restaurant", "open", "now", "coffee", "maker", "espresso",
    "machine", "used", "cars", "for", "rent", "apartment", "in", "berlin",
    "paris", "london", "new", "york", "tokyo", "madrid", "rome", "lisbon",
    "insurance", "car", "home", "life", "travel", "credit", "card", "bank",
    "loan", "mortgage", "rates", "jobs", "remote", "software", "engineer",
    "salary", "how", "tie", "a", "fix", "leaking", "faucet", "garden",
    "furniture", "sofa", "bed", "mattress", "queen", "size", "king", "desk",
    "chair", "office", "ergonomic", "lamp", "led", "bulbs", "solar",
    "panels", "electric", "bike", "scooter", "tires", "oil", "change",
    "dentist", "doctor", "pharmacy", "hours", "flu", "symptoms", "vitamin",
    "d", "tickets", "concert", "movie", "times", "netflix", "series",
    "book", "novel", "kindle", "headphone", "gaming", "pc", "console",
    "controller", "game", "tablet", "camera", "lens", "drone", "tent",
    "camping", "hiking", "boots", "backpack", "ski", "snowboard", "beach",
    "resort", "all", "inclusive", "cruise", "deals", "last", "minute",
    "wedding", "ring", "gold", "silver", "necklace", "perfume", "gift",
    "ideas", "birthday", "cake", "flowers", "christmas", "tree",
    "black", "friday", "cyber", "monday", "of", "the", "and", "vs",
    "review", "reviews", "price", "compare", "near-by", "24/7", "o'neill",
    "c++", "at&t", "50%", "1/2", "\"cheap\"", "c:\\temp", "e-mail",
    "caf\xc3\xa9", "cr\xc3\xa8me", "br\303\273l\303\251e",
    "jalape\xc3\xb1o", "gr\303\266\303\237e", "stra\303\237e",
    "m\xc3\xbcsli", "z\xc3\xbcrich", "k\303\270benhavn", "s\xc3\xa3o",
    "paulo", "krak\xc3\xb3w", "\305\202\303\263d\305\272", "na\xc3\xafve",
    "pi\303\261ata", "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe",
    "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0",
    "\xce\xb5\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1",
    "\xe6\x9d\xb1\xe4\xba\xac", "\xe5\xaf\xbf\xe5\x8f\xb8",
    "\xe3\x83\xa9\xe3\x83\xbc\xe3\x83\xa1\xe3\x83\xb3",
    "\xec\x84\x9c\xec\x9a\xb8", "\xf0\x9f\x8f\x83", "\xf0\x9f\x8d\x95",
};
/* clang-format on */
#define N_WORDS (sizeof words / sizeof words[0])

/* Words for the long texts of the query_too_long cases. */
/* clang-format off */
static const char *const long_words[] = {
    "buy", "cheap", "running", "shoes", "online", "free", "shipping",
    "best", "price", "women", "men", "size", "black", "new", "sale",
};
static const char *const long_mb_words[] = {
    "gr\303\266\303\237e", "\xe6\x9d\xb1\xe4\xba\xac",
    "\xf0\x9f\x8f\x83", "caf\xc3\xa9", "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba",
};
/* clang-format on */

/* n_terms distinct normalised terms; term 0 is the most popular. */
struct vocab {
    char *bytes;
    uint32_t *off;
    uint16_t *len;
    uint32_t n;
};

static void vocab_free(struct vocab *v)
{
    free(v->bytes);
    free(v->off);
    free(v->len);
}

/* Index + 1 of the term t[0..n) in the set, or the empty slot for it. */
static uint32_t *vocab_slot(const struct vocab *v, uint32_t *slots,
                            uint32_t mask, const char *t, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(t, n) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t k = slots[i];
        if (k == 0 ||
            (v->len[k - 1] == n && memcmp(v->bytes + v->off[k - 1], t, n) == 0))
            return &slots[i];
    }
}

/* Term number k: popular terms are short. */
static size_t vocab_draw(struct rng *r, uint32_t k, char *t)
{
    static const unsigned cut[4] = {15, 55, 85, 100};
    unsigned u = (unsigned)rng_below(r, k < 100 ? 55 : 100), words_n = 1;
    size_t n = 0;
    while (u >= cut[words_n - 1])
        words_n++;
    for (unsigned w = 0; w < words_n; w++) {
        const char *s = words[rng_below(r, N_WORDS)];
        if (w)
            t[n++] = ' ';
        memcpy(t + n, s, strlen(s));
        n += strlen(s);
    }
    return n;
}

static int vocab_build(struct vocab *v, uint32_t n, uint64_t seed)
{
    uint32_t mask = 1;
    uint32_t *slots;
    size_t used = 0, cap = (size_t)n * 24 + 64;
    struct rng r;
    char t[128];

    while (mask < 2 * n)
        mask <<= 1;
    slots = calloc(mask, sizeof *slots);
    v->bytes = malloc(cap);
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = malloc((size_t)n * sizeof *v->len);
    v->n = 0;
    if (!slots || !v->bytes || !v->off || !v->len) {
        free(slots);
        return CTRD_ENOMEM;
    }
    mask--;
    rng_seed(&r, seed, 100);
    for (uint32_t k = 0; k < n; k++) {
        size_t len = 0;
        uint32_t *slot = NULL;
        for (int tries = 0; tries < 32 && (!slot || *slot); tries++) {
            len = vocab_draw(&r, k, t);
            slot = vocab_slot(v, slots, mask, t, len);
        }
        if (*slot) { /* the words ran out: a number makes it new */
            len += (size_t)snprintf(t + len, sizeof t - len, " %u", k);
            slot = vocab_slot(v, slots, mask, t, len);
        }
        if (used + len > cap) {
            char *p = realloc(v->bytes, cap * 2);
            if (!p) {
                free(slots);
                return CTRD_ENOMEM;
            }
            v->bytes = p;
            cap *= 2;
        }
        memcpy(v->bytes + used, t, len);
        v->off[k] = (uint32_t)used;
        v->len[k] = (uint16_t)len;
        used += len;
        v->n = k + 1;
        *slot = k + 1;
    }
    free(slots);
    return 0;
}

/* ---- Zipf(1) over ranks 0..n-1, by inverse CDF ------------------------- */

static double *zipf_cdf(uint32_t n)
{
    double *c = malloc((size_t)n * sizeof *c), sum = 0;
    if (!c)
        return NULL;
    for (uint32_t k = 0; k < n; k++) {
        sum += 1.0 / (k + 1.0);
        c[k] = sum;
    }
    for (uint32_t k = 0; k < n; k++)
        c[k] /= sum;
    c[n - 1] = 1.0;
    return c;
}

static uint32_t zipf_draw(const double *cdf, uint32_t n, struct rng *r)
{
    double u = rng_unit(r);
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static uint64_t ad_id_of(uint32_t rank)
{
    return rank % 100 == 99 ? UINT64_MAX - rank / 100 : 1000 + (uint64_t)rank;
}

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

/* A run of 1-3 white-space bytes (SPEC §2); TSV text cannot hold TAB, CR or
 * LF, so it gets spaces, VT and FF. */
static void put_ws_run(struct rng *r, struct buf *b, int tsv)
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
        put_ws_run(r, b, tsv);
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == ' ') {
            if (odd && rng_chance(r, 0.5))
                put_ws_run(r, b, tsv);
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
        put_ws_run(r, b, tsv);
}

/* ---- records and how an injected case alters them ----------------------- */

enum log_kind { LOG_Q, LOG_C, LOG_N };
enum fmt_kind { FMT_J, FMT_T, FMT_N };

/* Fields as spelled; F_NONE for alterations of the whole line. */
enum field {
    F_TIME,
    F_QUERY_ID,
    F_QUERY,
    F_AD_IDS,
    F_AD_ID,
    F_CLICK_ID,
    F_NONE
};

static const char *const field_key[] = {"time",   "query_id", "query",
                                        "ad_ids", "ad_id",    "click_id"};
static const enum field log_fields[LOG_N][4] = {
    {F_TIME, F_QUERY_ID, F_QUERY, F_AD_IDS},
    {F_TIME, F_QUERY_ID, F_AD_ID, F_CLICK_ID},
};

/* One record as drawn, before spelling. */
struct grec {
    enum log_kind log;
    int64_t time_ms;
    uint64_t query_id;
    uint64_t ad_id;    /* clicks */
    uint64_t click_no; /* clicks: spelled "c-N" or N */
    uint32_t term;     /* queries: vocabulary index ... */
    const char *text;  /* ... unless this raw text is set */
    size_t text_len;
    uint32_t n_ads;
    uint64_t ads[GEN_ADS_CAP];
};

enum op {
    OP_NONE,
    /* spelling, applied by the spellers */
    OP_SET,        /* field's value spelled as json / tsv, verbatim */
    OP_DROP,       /* field left out (NDJSON) */
    OP_RENAME,     /* field written under key (NDJSON) */
    OP_DUP,        /* field repeated under key, value json or the same */
    OP_EXTRA,      /* json (one or more members) added (NDJSON) */
    OP_DEEP,       /* an ignored member nested arg levels deep (NDJSON) */
    OP_KEYESC,     /* every key written with a \u escape (NDJSON) */
    OP_ZEROS,      /* field's ids written with arg leading zeros */
    OP_TIMESTR,    /* time written as RFC 3339 */
    OP_RAW,        /* the whole line is json / tsv */
    OP_TRUNC,      /* the line cut short (NDJSON) */
    OP_TRAIL,      /* json appended to the line (NDJSON) */
    OP_SQUOTE,     /* every '"' written as '\'' (NDJSON) */
    OP_WRAP,       /* the object wrapped in an array (NDJSON) */
    OP_PAD,        /* the line padded to arg bytes (ignored member / zeros) */
    OP_TSV_FIELDS, /* the TSV line cut to arg fields, or tsv appended */
    OP_TSV_SPLIT,  /* a TAB inside the query text */
    /* content, applied to the record before spelling */
    OP_LONG,        /* text of arg bytes once normalised, single spaces */
    OP_LONG_WS,     /* the same with runs of white space */
    OP_LONG_MB,     /* the same with multi-byte words */
    OP_LONG_PAD,    /* a short term in arg bytes of white space */
    OP_ADS,         /* arg distinct ads */
    OP_ADS_DUP,     /* arg ads, some of them repeated */
    OP_ADS_SPECIAL, /* ads 0 and 2^64-1 among others */
    OP_MAXID,       /* query_id 2^64-1 (less the repetition number) */
};

#define FJ 1u /* variant has an NDJSON line */
#define FT 2u /* variant has a TSV line */
#define FB 3u

struct variant {
    uint8_t op;    /* enum op */
    uint8_t field; /* enum field it applies to */
    uint8_t fmts;  /* formats that get a line */
    int32_t arg;
    const char *key;  /* OP_RENAME, OP_DUP: the key as written */
    const char *json; /* NDJSON text, see enum op */
    const char *tsv;  /* TSV text */
};

/* clang-format off */
#define SETB(f, j, t) {OP_SET, f, FB, 0, NULL, j, t}
#define SETJ(f, j) {OP_SET, f, FJ, 0, NULL, j, NULL}
#define SETT(f, t) {OP_SET, f, FT, 0, NULL, NULL, t}
#define OPJ(op, f, key, j) {op, f, FJ, 0, key, j, NULL}
#define OPB(op, f, arg) {op, f, FB, arg, NULL, NULL, NULL}
#define LINEJ(op, j) {op, F_NONE, FJ, 0, NULL, j, NULL}
/* clang-format on */

static const struct variant v_none = OPB(OP_NONE, F_NONE, 0);

/* ---- generator state ------------------------------------------------- */

/* Outcome of a line: a rec_reason (REC_OK: accepted / joined), or these. */
#define GEN_DUP REC_REASON_COUNT
#define GEN_UNKNOWN (REC_REASON_COUNT + 1)

struct tally {
    uint64_t lines, empty, ok, dups, unknown, impressions;
    uint64_t rejects[REC_REASON_COUNT];
};

/* A click waiting to be written. */
struct event {
    int64_t sort_ms, time_ms;
    uint64_t seq, query_id, ad_id, click_no;
    const struct variant *v;
    uint16_t expect;   /* outcome */
    uint8_t tricky;    /* spelled by the tricky generators */
    uint8_t redeliver; /* > 0: written again this many clicks later */
};

struct slot {
    uint16_t c, inst;
};

struct gen {
    const struct gen_config *cfg;
    struct rng main, trick;     /* content: normal / tricky records */
    struct rng spell[2][FMT_N]; /* [tricky][format] */
    struct vocab voc;
    double *term_cdf, *ad_cdf, *ad_p;
    uint64_t n_queries, q_index, clicks_written;
    uint64_t qid_ctr, trick_qid_ctr, click_ctr, trick_click_ctr, seq;
    int64_t now_ms;
    struct out out[LOG_N][FMT_N];
    struct tally tally[LOG_N][FMT_N];
    struct event *heap;
    size_t n_heap, cap_heap;
    struct slot *sched;
    size_t n_sched, next_sched;
    int oom;
    int blank;                  /* an empty line goes before g->line */
    struct buf line, text, aux; /* line built; raw text; long texts */
};

static int fmt_on(const struct gen *g, const struct variant *v, int fmt)
{
    return g->out[0][fmt].w && (v->fmts >> fmt & 1);
}

static uint64_t next_query_id(uint64_t *ctr)
{
    for (;;) {
        uint64_t id = hash_u64((*ctr)++ ^ UINT64_C(0x5DEECE66D));
        if (id != 0 && id < UINT64_MAX - GEN_ID_RESERVED)
            return id;
    }
}

static uint32_t distinct_ads(const struct grec *x)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < x->n_ads; i++) {
        uint32_t j = 0;
        while (j < i && x->ads[j] != x->ads[i])
            j++;
        n += j == i;
    }
    return n;
}

static int has_ad(const struct grec *x, uint64_t ad)
{
    for (uint32_t i = 0; i < x->n_ads; i++)
        if (x->ads[i] == ad)
            return 1;
    return 0;
}

/* Adds up to n distinct catalog ads by popularity; ranks[] gets their
 * ranks when given. Ids below 1000 fill in when the catalog is small. */
static void draw_ads(struct gen *g, struct rng *r, struct grec *x, uint32_t n,
                     uint32_t *ranks)
{
    for (uint32_t i = 0; i < n && x->n_ads < GEN_ADS_CAP; i++) {
        uint32_t k = 0;
        uint64_t id = 0;
        int tries = 0;
        do {
            k = zipf_draw(g->ad_cdf, g->cfg->n_ads, r);
            id = ad_id_of(k);
        } while (has_ad(x, id) && ++tries < 16);
        if (tries == 16) {
            if (ranks)
                return;
            for (id = 100 + i; has_ad(x, id); id++)
                ;
        }
        if (ranks)
            ranks[x->n_ads] = k;
        x->ads[x->n_ads++] = id;
    }
}

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
                       enum field f, const struct variant *v)
{
    struct buf *b = &g->line;
    int zeros = v->op == OP_ZEROS && v->field == f ? v->arg : 0;

    switch (f) {
    case F_TIME:
        put_time_json(r, b, x->time_ms, v->op == OP_TIMESTR);
        break;
    case F_QUERY_ID:
        put_id_json(r, b, x->query_id, 0.45, zeros);
        break;
    case F_QUERY:
        make_text(g, r, x, 0);
        put_json_string(r, b, g->text.p, g->text.len);
        break;
    case F_AD_IDS:
        buf_c(b, '[');
        for (uint32_t i = 0; i < x->n_ads; i++) {
            if (i)
                buf_str(b, rng_chance(r, 0.05) ? ", " : ",");
            put_id_json(r, b, x->ads[i], 0.1, zeros);
        }
        buf_c(b, ']');
        break;
    case F_AD_ID:
        put_id_json(r, b, x->ad_id, 0.08, zeros);
        break;
    case F_CLICK_ID:
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
            json_value(g, r, x, (enum field)v->field, v);
        return;
    }
    if (v->op == OP_RENAME && v->field == kind)
        buf_str(b, v->key);
    else
        json_key(r, b, field_key[kind], keyesc);
    json_sep(r, b, style, ':');
    if (v->op == OP_SET && v->field == kind)
        buf_str(b, v->json);
    else
        json_value(g, r, x, (enum field)kind, v);
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
        enum field f = log_fields[x->log][i];
        if (v->op == OP_DROP && v->field == f)
            continue;
        if (f == F_CLICK_ID && v->field != F_CLICK_ID && rng_chance(r, 0.15))
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

static int set_tsv(struct buf *b, const struct variant *v, enum field f)
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
    if (!set_tsv(b, v, F_TIME)) {
        if (v->op != OP_TIMESTR && rng_chance(r, 0.8))
            buf_u64(b, (uint64_t)x->time_ms);
        else
            put_rfc3339(r, b, x->time_ms);
    }
    buf_c(b, '\t');
    id_at = b->len;
    if (!set_tsv(b, v, F_QUERY_ID))
        put_id_tsv(r, b, x->query_id, zeros_f == F_QUERY_ID ? v->arg : 0);
    buf_c(b, '\t');
    if (x->log == LOG_Q) {
        if (!set_tsv(b, v, F_AD_IDS))
            for (uint32_t i = 0; i < x->n_ads; i++) {
                if (i)
                    buf_c(b, ',');
                put_id_tsv(r, b, x->ads[i], zeros_f == F_AD_IDS ? v->arg : 0);
            }
        buf_c(b, '\t');
        text_at = b->len;
        if (!set_tsv(b, v, F_QUERY)) {
            make_text(g, r, x, 1);
            buf_mem(b, g->text.p, g->text.len);
        }
    } else {
        if (!set_tsv(b, v, F_AD_ID))
            put_id_tsv(r, b, x->ad_id, zeros_f == F_AD_ID ? v->arg : 0);
        if (v->field == F_CLICK_ID || v->op == OP_TSV_FIELDS ||
            rng_chance(r, 0.75)) {
            buf_c(b, '\t');
            if (!set_tsv(b, v, F_CLICK_ID)) {
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

/* ---- writing and counting lines --------------------------------------- */

/* x spelled in format fmt into g->line, with its line end; g->blank tells
 * whether an empty line goes before it. */
static void spell(struct gen *g, int tricky, int fmt, const struct grec *x,
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

static void tally_add(struct tally *t, int expect, uint64_t impressions)
{
    t->lines++;
    if (expect == REC_OK) {
        t->ok++;
        t->impressions += impressions;
    } else if (expect == GEN_DUP) {
        t->dups++;
    } else if (expect == GEN_UNKNOWN) {
        t->unknown++;
    } else {
        t->rejects[expect]++;
    }
}

/* Counts g->line as expect and writes it now (due 0), or holds it until
 * the log's counter reaches due. */
static void put_line(struct gen *g, int log, int fmt, int expect,
                     uint64_t impressions, uint64_t due)
{
    struct out *o = &g->out[log][fmt];

    tally_add(&g->tally[log][fmt], expect, impressions);
    if (due) {
        out_hold(o, g->line.p, g->line.len, due);
        return;
    }
    if (g->blank) {
        out_put(o, g->blank == 1 ? "\n" : "\r\n", (size_t)g->blank);
        g->tally[log][fmt].empty++;
        g->blank = 0;
    }
    out_put(o, g->line.p, g->line.len);
}

/* Writes query x in every format v allows. */
static void emit_query(struct gen *g, int tricky, const struct grec *x,
                       const struct variant *v, int expect, uint64_t due)
{
    uint32_t impressions = expect == REC_OK ? distinct_ads(x) : 0;
    for (int fmt = 0; fmt < FMT_N; fmt++) {
        if (!fmt_on(g, v, fmt))
            continue;
        spell(g, tricky, fmt, x, v);
        put_line(g, LOG_Q, fmt, expect, impressions, due);
    }
}

/* ---- clicks: a min-heap by (sort time, sequence) ---------------------- */

static int event_before(const struct event *a, const struct event *b)
{
    return a->sort_ms < b->sort_ms ||
           (a->sort_ms == b->sort_ms && a->seq < b->seq);
}

static void heap_push(struct gen *g, const struct event *e)
{
    size_t i;
    if (g->n_heap == g->cap_heap) {
        size_t cap = g->cap_heap ? 2 * g->cap_heap : 1024;
        struct event *h = realloc(g->heap, cap * sizeof *h);
        if (!h) {
            g->oom = 1;
            return;
        }
        g->heap = h;
        g->cap_heap = cap;
    }
    for (i = g->n_heap++; i > 0; i = (i - 1) / 2) {
        if (!event_before(e, &g->heap[(i - 1) / 2]))
            break;
        g->heap[i] = g->heap[(i - 1) / 2];
    }
    g->heap[i] = *e;
}

static struct event heap_pop(struct gen *g)
{
    struct event top = g->heap[0], last = g->heap[--g->n_heap];
    size_t i = 0, n = g->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && event_before(&g->heap[c + 1], &g->heap[c]))
            c++;
        if (!event_before(&g->heap[c], &last))
            break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (n)
        g->heap[i] = last;
    return top;
}

/* Queues a click on (query, ad) at time_ms, spelled with v, counted as
 * expect; redeliver > 0 writes an exact copy that many clicks later. */
static void push_click(struct gen *g, int tricky, uint64_t query_id,
                       uint64_t ad, int64_t time_ms, const struct variant *v,
                       int expect, unsigned redeliver)
{
    struct event e = {
        .sort_ms = time_ms,
        .time_ms = time_ms,
        .seq = g->seq++,
        .query_id = query_id,
        .ad_id = ad,
        .click_no = tricky ? GEN_TRICK_CLICK_BASE + g->trick_click_ctr++
                           : g->click_ctr++,
        .v = v,
        .expect = (uint16_t)expect,
        .tricky = (uint8_t)tricky,
        .redeliver = (uint8_t)redeliver,
    };
    heap_push(g, &e);
}

static void write_click(struct gen *g, const struct event *e)
{
    struct grec x = {.log = LOG_C,
                     .time_ms = e->time_ms,
                     .query_id = e->query_id,
                     .ad_id = e->ad_id,
                     .click_no = e->click_no};
    uint64_t n = ++g->clicks_written;

    for (int fmt = 0; fmt < FMT_N; fmt++) {
        if (!fmt_on(g, e->v, fmt))
            continue;
        spell(g, e->tricky, fmt, &x, e->v);
        put_line(g, LOG_C, fmt, e->expect, 0, 0);
        if (e->redeliver)
            put_line(g, LOG_C, fmt, GEN_DUP, 0, n + e->redeliver);
        out_release(&g->out[LOG_C][fmt], n);
    }
}

/* Writes the clicks that sort before until_ms. */
static void flush_clicks(struct gen *g, int64_t until_ms)
{
    while (g->n_heap > 0 && g->heap[0].sort_ms < until_ms) {
        struct event e = heap_pop(g);
        write_click(g, &e);
    }
}

/* ---- normal records ----------------------------------------------------- */

/* Click delay in ms: 3 % before the query (within 60 s), else lognormal
 * with median 15 s, below 24 h. */
static int64_t click_delay(struct rng *r)
{
    double d;
    if (rng_chance(r, 0.03))
        return -1 - (int64_t)rng_below(r, GEN_EARLY_MS - 1);
    do {
        d = GEN_DELAY_MEDIAN_MS * exp(GEN_DELAY_SIGMA * rng_gauss(r));
    } while (d >= GEN_WINDOW_MS - 1);
    return (int64_t)d;
}

static void normal_query(struct gen *g)
{
    static const unsigned ads_cut[4] = {30, 60, 85, 100};
    struct rng *r = &g->main;
    struct grec x = {.log = LOG_Q};
    uint32_t ranks[GEN_ADS_CAP], want = 1;
    unsigned u;

    x.time_ms = g->now_ms;
    if (rng_chance(r, 0.03))
        x.time_ms -= 1 + (int64_t)rng_below(r, GEN_LATE_QUERY_MS);
    x.query_id = next_query_id(&g->qid_ctr);
    x.term = zipf_draw(g->term_cdf, g->voc.n, r);
    for (u = (unsigned)rng_below(r, 100); u >= ads_cut[want - 1];)
        want++;
    draw_ads(g, r, &x, want, ranks);
    emit_query(g, 0, &x, &v_none, REC_OK, 0);
    for (uint32_t i = 0; i < x.n_ads; i++)
        if (rng_chance(r, g->ad_p[ranks[i]]))
            push_click(g, 0, x.query_id, x.ads[i], x.time_ms + click_delay(r),
                       &v_none, REC_OK, 0);
}

/* ---- tricky cases ------------------------------------------------------- */

struct gen_case;
typedef void case_fn(struct gen *g, const struct gen_case *c, unsigned inst);

struct gen_case {
    case_fn *run;
    uint8_t reason; /* the outcome of the line cases */
    uint8_t each;   /* every variant is a case of its own: runs k times */
    uint8_t n_variants;
    const struct variant *variants;
};

/* A fresh valid query (2-4 ads) at the current time. */
static void trick_query(struct gen *g, struct grec *x)
{
    struct rng *r = &g->trick;
    memset(x, 0, sizeof *x);
    x->log = LOG_Q;
    x->time_ms = g->now_ms + (int64_t)rng_below(r, 1000);
    x->query_id = next_query_id(&g->trick_qid_ctr);
    x->term = zipf_draw(g->term_cdf, g->voc.n, r);
    draw_ads(g, r, x, 2 + (uint32_t)rng_below(r, 3), NULL);
}

/* An ad that query x does not show. */
static uint64_t absent_ad(struct gen *g, const struct grec *x)
{
    struct grec y = *x;
    draw_ads(g, &g->trick, &y, 1, NULL);
    return y.ads[y.n_ads - 1];
}

static int64_t small_delay(struct gen *g)
{
    return 1000 + (int64_t)rng_below(&g->trick, 59000);
}

/* Text of n bytes once normalised, from words, into g->aux. */
static void long_text(struct gen *g, struct grec *x, int op, size_t n)
{
    const char *const *list = op == OP_LONG_MB ? long_mb_words : long_words;
    size_t n_list = op == OP_LONG_MB ? 5 : 15, len = 0;
    struct rng *r = &g->trick;
    struct buf *b = &g->aux;

    b->len = 0;
    if (op == OP_LONG_PAD) {
        for (size_t i = 0; i < n / 2; i++)
            buf_c(b, " \v\f "[rng_below(r, 4)]);
        buf_str(b, "Running  SHOES");
        while (b->len < n)
            buf_c(b, " \v\f "[rng_below(r, 4)]);
    }
    while (op != OP_LONG_PAD && len < n) {
        const char *w = list[rng_below(r, n_list)];
        size_t wl = strlen(w);
        if (len + wl + 1 < n) {
            for (size_t i = 0; i < wl; i++) /* some upper case */
                buf_c(b, rng_chance(r, 0.1) && w[i] >= 'a' && w[i] <= 'z'
                             ? (char)(w[i] - 32)
                             : w[i]);
            if (op == OP_LONG_WS)
                put_ws_run(r, b, 1);
            buf_c(b, op == OP_LONG_WS ? '\f' : ' ');
            len += wl + 1;
        } else {
            buf_fill(b, 'x', n - len);
            len = n;
        }
    }
    x->text = b->p;
    x->text_len = b->len;
}

/* Applies the content part of variant v (repetition rep) to x. */
static void apply_content(struct gen *g, struct grec *x,
                          const struct variant *v, unsigned rep)
{
    struct rng *r = &g->trick;
    switch (v->op) {
    case OP_LONG:
    case OP_LONG_WS:
    case OP_LONG_MB:
    case OP_LONG_PAD:
        long_text(g, x, v->op, (size_t)v->arg);
        break;
    case OP_ADS:
        x->n_ads = 0;
        draw_ads(g, r, x, (uint32_t)v->arg, NULL);
        break;
    case OP_ADS_DUP: { /* distinct ones, then copies at random places */
        uint32_t n = (uint32_t)v->arg, copies = n / 8 ? n / 8 : 1;
        x->n_ads = 0;
        draw_ads(g, r, x, n - copies, NULL);
        for (uint32_t i = 0; i < copies; i++) {
            uint32_t at = 1 + (uint32_t)rng_below(r, x->n_ads);
            uint64_t id = x->ads[rng_below(r, at)];
            memmove(x->ads + at + 1, x->ads + at,
                    (x->n_ads - at) * sizeof x->ads[0]);
            x->ads[at] = id;
            x->n_ads++;
        }
        break;
    }
    case OP_ADS_SPECIAL:
        x->ads[0] = 0;
        x->ads[1] = UINT64_MAX;
        x->n_ads = 2;
        draw_ads(g, r, x, 2, NULL);
        break;
    case OP_MAXID:
        x->query_id = UINT64_MAX - rep;
        break;
    default:
        break;
    }
}

/* A query line altered by the case's variant; valid ones get clicks on
 * their first and last ad. */
static void case_query_line(struct gen *g, const struct gen_case *c,
                            unsigned inst)
{
    const struct variant *v = &c->variants[inst % c->n_variants];
    struct grec x;

    trick_query(g, &x);
    apply_content(g, &x, v, inst / c->n_variants);
    emit_query(g, 1, &x, v, c->reason, 0);
    if (c->reason != REC_OK || x.n_ads == 0)
        return;
    assert(v->fmts == FB);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), &v_none,
               REC_OK, 0);
    if (x.ads[x.n_ads - 1] != x.ads[0])
        push_click(g, 1, x.query_id, x.ads[x.n_ads - 1],
                   x.time_ms + small_delay(g), &v_none, REC_OK, 0);
}

/* A click line altered by the case's variant, on a valid query. */
static void case_click_line(struct gen *g, const struct gen_case *c,
                            unsigned inst)
{
    const struct variant *v = &c->variants[inst % c->n_variants];
    struct grec x;

    trick_query(g, &x);
    emit_query(g, 1, &x, &v_none, REC_OK, 0);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), v,
               c->reason, 0);
}

static uint64_t later_query(struct gen *g)
{
    return g->q_index + 1 + rng_below(&g->trick, 40);
}

/* Duplicate queries: 0 an exact copy, 1 the same record spelled anew,
 * 2 the same id with another time, term and ads (the first one wins). */
static void case_query_dup(struct gen *g, const struct gen_case *c,
                           unsigned inst)
{
    struct grec x, y;
    uint64_t due = later_query(g);
    unsigned kind = inst % 3;
    (void)c;

    trick_query(g, &x);
    for (int fmt = 0; fmt < FMT_N; fmt++) {
        if (!fmt_on(g, &v_none, fmt))
            continue;
        spell(g, 1, fmt, &x, &v_none);
        put_line(g, LOG_Q, fmt, REC_OK, distinct_ads(&x), 0);
        if (kind == 0)
            put_line(g, LOG_Q, fmt, GEN_DUP, 0, due);
    }
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), &v_none,
               REC_OK, 0);
    if (kind == 1)
        emit_query(g, 1, &x, &v_none, GEN_DUP, due);
    if (kind != 2)
        return;
    /* y: 5 min later, other term, ads {x.ads[0], c}: a click on x.ads[1]
     * joins, one on c was not shown, one 24 h + 2 min after x is late. */
    y = x;
    y.time_ms += 300000;
    y.term = (x.term + 1) % g->voc.n;
    y.ads[1] = absent_ad(g, &x);
    y.n_ads = 2;
    emit_query(g, 1, &y, &v_none, GEN_DUP, due);
    push_click(g, 1, x.query_id, x.ads[1], x.time_ms + 10000, &v_none, REC_OK,
               0);
    push_click(g, 1, x.query_id, y.ads[1], x.time_ms + 20000, &v_none,
               REC_CLICK_AD_NOT_SHOWN, 0);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + GEN_WINDOW_MS + 120000,
               &v_none, REC_CLICK_OUTSIDE_WINDOW, 0);
}

static const struct variant v_feb30 =
    SETB(F_TIME, "\"2026-02-30T10:00:00Z\"", "2026-02-30T10:00:00Z");
static const struct variant v_bad_ad_entry =
    SETB(F_AD_IDS, "[1001,-1]", "1001,-1");

/* A query whose first line is invalid and a later one valid: it counts. */
static void case_query_invalid_first(struct gen *g, const struct gen_case *c,
                                     unsigned inst)
{
    struct grec x;
    (void)c;
    (void)inst;

    trick_query(g, &x);
    emit_query(g, 1, &x, &v_feb30, REC_BAD_TIME, 0);
    emit_query(g, 1, &x, &v_none, REC_OK, later_query(g));
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), &v_none,
               REC_OK, 0);
}

/* A valid query with no ads; a click on it was not shown. */
static void case_query_no_ads(struct gen *g, const struct gen_case *c,
                              unsigned inst)
{
    struct grec x;
    uint64_t ad;
    (void)c;
    (void)inst;

    trick_query(g, &x);
    ad = x.ads[0];
    x.n_ads = 0;
    emit_query(g, 1, &x, &v_none, REC_OK, 0);
    push_click(g, 1, x.query_id, ad, x.time_ms + small_delay(g), &v_none,
               REC_CLICK_AD_NOT_SHOWN, 0);
}

static void case_click_not_shown(struct gen *g, const struct gen_case *c,
                                 unsigned inst)
{
    struct grec x;
    (void)c;
    (void)inst;

    trick_query(g, &x);
    emit_query(g, 1, &x, &v_none, REC_OK, 0);
    push_click(g, 1, x.query_id, absent_ad(g, &x), x.time_ms + small_delay(g),
               &v_none, REC_CLICK_AD_NOT_SHOWN, 0);
}

/* Click times around the join window: {offset from the query, outcome}. */
static const int64_t window_outside[] = {
    -GEN_EARLY_MS - 1,       -120000,
    -GEN_EARLY_MAX_MS,       GEN_WINDOW_MS + 1,
    GEN_WINDOW_MS + 3600000, 2 * GEN_WINDOW_MS};
static const int64_t window_edge[] = {-GEN_EARLY_MS, GEN_WINDOW_MS,
                                      -GEN_EARLY_MS + 1, GEN_WINDOW_MS - 1};

static void window_click(struct gen *g, int64_t offset, int expect)
{
    struct grec x;
    trick_query(g, &x);
    emit_query(g, 1, &x, &v_none, REC_OK, 0);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + offset, &v_none, expect,
               0);
}

static void case_click_outside(struct gen *g, const struct gen_case *c,
                               unsigned inst)
{
    (void)c;
    window_click(g, window_outside[inst % 6], REC_CLICK_OUTSIDE_WINDOW);
}

static void case_click_edge(struct gen *g, const struct gen_case *c,
                            unsigned inst)
{
    (void)c;
    window_click(g, window_edge[inst % 4], REC_OK);
}

/* Double (and triple) clicks with other click ids; exact re-deliveries. */
static void case_click_dup(struct gen *g, const struct gen_case *c,
                           unsigned inst)
{
    struct grec x;
    unsigned kind = inst % 3;
    (void)c;

    trick_query(g, &x);
    emit_query(g, 1, &x, &v_none, REC_OK, 0);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), &v_none,
               REC_OK, kind == 2 ? 1 + (unsigned)rng_below(&g->trick, 30) : 0);
    for (unsigned k = 0; k < kind + 1 && kind < 2; k++)
        push_click(g, 1, x.query_id, x.ads[0],
                   x.time_ms + GEN_EARLY_MS + small_delay(g) * (k + 1), &v_none,
                   GEN_DUP, 0);
}

/* Valid clicks whose query never comes: an id never used, or one whose
 * only query line is invalid. */
static void case_click_unknown(struct gen *g, const struct gen_case *c,
                               unsigned inst)
{
    struct grec x;
    (void)c;

    trick_query(g, &x);
    if (inst % 2)
        emit_query(g, 1, &x, &v_bad_ad_entry, REC_BAD_AD_IDS, 0);
    push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), &v_none,
               GEN_UNKNOWN, 0);
}

/* ---- the variants of the line cases ------------------------------------ */

/* clang-format off */
#define ID64 "click-0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static const struct variant v_too_long[] = {
    OPB(OP_PAD, F_NONE, REC_LINE_MAX + 1), OPB(OP_PAD, F_NONE, 70000),
    OPB(OP_PAD, F_NONE, 131072)};
static const struct variant v_max_line[] = {
    OPB(OP_PAD, F_NONE, REC_LINE_MAX), OPB(OP_PAD, F_NONE, REC_LINE_MAX - 1)};
static const struct variant v_q_bad_utf8[] = {
    SETB(F_QUERY, "\"caf\xc3\x28 shoes\"", "caf\xc3\x28 shoes"),
    SETB(F_QUERY, "\"\xff running\"", "\xff running"),
    SETB(F_QUERY, "\"overlong \xc0\xaf slash\"", "overlong \xc0\xaf slash"),
    SETB(F_QUERY, "\"surrogate \xed\xa0\x80 x\"", "surrogate \xed\xa0\x80 x"),
    SETB(F_QUERY, "\"beyond \xf4\x90\x80\x80 x\"", "beyond \xf4\x90\x80\x80 x"),
    SETB(F_QUERY, "\"cut \xe2\x82\"", "cut \xe2\x82"),
    SETJ(F_QUERY, "\"lone \\ud83d high\""),
    SETJ(F_QUERY, "\"lone \\udc00 low\""),
    SETJ(F_QUERY, "\"\\ud83d\\u0041 broken pair\""),
    LINEJ(OP_EXTRA, "\"ua\":\"Mozilla \xff\""),
};
static const struct variant v_c_bad_utf8[] = {
    SETJ(F_CLICK_ID, "\"c-\xff\""), SETJ(F_CLICK_ID, "\"c-\xc3\""),
    LINEJ(OP_EXTRA, "\"ref\":\"\xe2\x28\xa1\""),
};
static const struct variant v_bad_json[] = {
    LINEJ(OP_TRUNC, NULL),
    LINEJ(OP_TRUNC, NULL),
    LINEJ(OP_TRAIL, " x"),
    LINEJ(OP_TRAIL, "}"),
    LINEJ(OP_TRAIL, "{\"time\":1}"),
    LINEJ(OP_TRAIL, ","),
    LINEJ(OP_SQUOTE, NULL),
    LINEJ(OP_EXTRA, "\"n\":0123"),
    LINEJ(OP_EXTRA, "\"note\":\"tab\there\""),
    LINEJ(OP_EXTRA, "\"note\":\"ctl\x01here\""),
    LINEJ(OP_EXTRA, "\"note\":\"bad \\x41 escape\""),
    LINEJ(OP_EXTRA, "\"note\":\"\\u12g4\""),
    LINEJ(OP_EXTRA, "\"v\":NaN"),
    LINEJ(OP_EXTRA, "\"v\":TRUE"),
    LINEJ(OP_EXTRA, "note:1"),
    LINEJ(OP_EXTRA, "\"v\":[1,2,]"),
    LINEJ(OP_EXTRA, "\"v\":{\"a\":1,}"),
    LINEJ(OP_EXTRA, "\"v\":+1"),
    LINEJ(OP_EXTRA, "\"v\":.5"),
    LINEJ(OP_EXTRA, "\"v\":1."),
    LINEJ(OP_EXTRA, "\"v\":'x'"),
    LINEJ(OP_EXTRA, "\"v\"=1"),
    LINEJ(OP_EXTRA, "\"v\":[1 2]"),
    LINEJ(OP_EXTRA, "\"v\":-"),
};
static const struct variant v_not_object[] = {
    LINEJ(OP_WRAP, NULL),      LINEJ(OP_RAW, "[1,2,3]"),
    LINEJ(OP_RAW, "42"),       LINEJ(OP_RAW, "\"running shoes\""),
    LINEJ(OP_RAW, "null"),     LINEJ(OP_RAW, " true "),
    LINEJ(OP_RAW, "[]"),
};
static const struct variant v_q_dup_field[] = {
    OPJ(OP_DUP, F_QUERY_ID, "\"query_id\"", NULL),
    OPJ(OP_DUP, F_TIME, "\"t\\u0069me\"", NULL),
    OPJ(OP_DUP, F_AD_IDS, "\"ad_ids\"", "[]"),
    OPJ(OP_DUP, F_QUERY, "\"\\u0071uery\"", "\"other\""),
    OPJ(OP_DUP, F_QUERY_ID, "\"query\\u005fid\"", "1"),
};
static const struct variant v_c_dup_field[] = {
    OPJ(OP_DUP, F_AD_ID, "\"ad_id\"", NULL),
    OPJ(OP_DUP, F_QUERY_ID, "\"qu\\u0065ry_id\"", NULL),
    OPJ(OP_DUP, F_CLICK_ID, "\"click_id\"", "\"c-x\""),
    OPJ(OP_DUP, F_TIME, "\"\\u0074ime\"", NULL),
};
static const struct variant v_q_bad_tsv[] = {
    {OP_TSV_FIELDS, F_NONE, FT, 3, NULL, NULL, NULL},
    {OP_TSV_FIELDS, F_NONE, FT, 2, NULL, NULL, NULL},
    {OP_TSV_FIELDS, F_NONE, FT, 1, NULL, NULL, NULL},
    {OP_TSV_SPLIT, F_NONE, FT, 0, NULL, NULL, NULL},
    {OP_TSV_FIELDS, F_NONE, FT, 0, NULL, NULL, "extra"},
};
static const struct variant v_c_bad_tsv[] = {
    {OP_TSV_FIELDS, F_NONE, FT, 2, NULL, NULL, NULL},
    {OP_TSV_FIELDS, F_NONE, FT, 1, NULL, NULL, NULL},
    {OP_TSV_FIELDS, F_NONE, FT, 0, NULL, NULL, "extra"},
};
static const struct variant v_missing_time[] = {
    OPJ(OP_DROP, F_TIME, NULL, NULL), OPJ(OP_RENAME, F_TIME, "\"Time\"", NULL),
    OPJ(OP_RENAME, F_TIME, "\"time \"", NULL),
    OPJ(OP_RENAME, F_TIME, "\"timestamp\"", NULL),
};
static const struct variant v_missing_query_id[] = {
    OPJ(OP_DROP, F_QUERY_ID, NULL, NULL),
    OPJ(OP_RENAME, F_QUERY_ID, "\"queryId\"", NULL),
    OPJ(OP_RENAME, F_QUERY_ID, "\"query_id_\"", NULL),
};
static const struct variant v_missing_query[] = {
    OPJ(OP_DROP, F_QUERY, NULL, NULL),
    OPJ(OP_RENAME, F_QUERY, "\"Query\"", NULL),
    OPJ(OP_RENAME, F_QUERY, "\"q\"", NULL),
};
static const struct variant v_missing_ad_ids[] = {
    OPJ(OP_DROP, F_AD_IDS, NULL, NULL),
    OPJ(OP_RENAME, F_AD_IDS, "\"ad_id\"", NULL),
    OPJ(OP_RENAME, F_AD_IDS, "\"ads\"", NULL),
};
static const struct variant v_missing_ad_id[] = {
    OPJ(OP_DROP, F_AD_ID, NULL, NULL),
    OPJ(OP_RENAME, F_AD_ID, "\"ad_ids\"", NULL),
    OPJ(OP_RENAME, F_AD_ID, "\"adId\"", NULL),
};
static const struct variant v_bad_time[] = {
    SETB(F_TIME, "-5", "-5"),
    SETB(F_TIME, "-1763805600123", "-1763805600123"),
    SETB(F_TIME, "1763805600123.5", "1763805600123.5"),
    SETB(F_TIME, "1.7638056e12", "1.7638056e12"),
    SETJ(F_TIME, "\"1763805600123\""),
    SETJ(F_TIME, "\"123\""),
    SETB(F_TIME, "\"1969-12-31T23:59:59.999Z\"", "1969-12-31T23:59:59.999Z"),
    SETB(F_TIME, "\"1970-01-01T00:30:00+01:00\"", "1970-01-01T00:30:00+01:00"),
    SETB(F_TIME, "\"2026-02-30T10:00:00Z\"", "2026-02-30T10:00:00Z"),
    SETB(F_TIME, "\"2025-02-29T10:00:00Z\"", "2025-02-29T10:00:00Z"),
    SETB(F_TIME, "\"2026-11-22T10:00:60Z\"", "2026-11-22T10:00:60Z"),
    SETB(F_TIME, "\"2026-11-22T24:00:00Z\"", "2026-11-22T24:00:00Z"),
    SETB(F_TIME, "\"2026-13-01T10:00:00Z\"", "2026-13-01T10:00:00Z"),
    SETB(F_TIME, "253402300800000", "253402300800000"),
    SETB(F_TIME, "99999999999999999999", "99999999999999999999"),
    SETB(F_TIME, "\"9999-12-31T23:59:59-01:00\"", "9999-12-31T23:59:59-01:00"),
    SETB(F_TIME, "\"10000-01-01T00:00:00Z\"", "10000-01-01T00:00:00Z"),
    SETB(F_TIME, "\"2026-11-22T10:00Z\"", "2026-11-22T10:00Z"),
    SETB(F_TIME, "\"2026-11-22T10:00:00\"", "2026-11-22T10:00:00"),
    SETB(F_TIME, "\"2026-11-22 10:00:00Z\"", "2026-11-22 10:00:00Z"),
    SETB(F_TIME, "\"2026-11-22T10:00:00+5:30\"", "2026-11-22T10:00:00+5:30"),
    SETB(F_TIME, "\"2026-11-22T10:00:00.Z\"", "2026-11-22T10:00:00.Z"),
    SETJ(F_TIME, "null"),
    SETJ(F_TIME, "true"),
    SETJ(F_TIME, "\"\""),
    SETJ(F_TIME, "[1763805600123]"),
    SETT(F_TIME, "0x1F"),
};
static const struct variant v_bad_query_id[] = {
    SETB(F_QUERY_ID, "0", "0"),
    SETJ(F_QUERY_ID, "\"0\""),
    SETB(F_QUERY_ID, "\"000\"", "000"),
    SETB(F_QUERY_ID, "18446744073709551616", "18446744073709551616"),
    SETJ(F_QUERY_ID, "\"18446744073709551616\""),
    SETB(F_QUERY_ID, "99999999999999999999999", "99999999999999999999999"),
    SETB(F_QUERY_ID, "-5", "-5"),
    SETB(F_QUERY_ID, "1.5", "1.5"),
    SETB(F_QUERY_ID, "1e3", "1e3"),
    SETB(F_QUERY_ID, "\"12a\"", "12a"),
    SETJ(F_QUERY_ID, "\"\""),
    SETB(F_QUERY_ID, "\" 12\"", " 12"),
    SETB(F_QUERY_ID, "\"+12\"", "+12"),
    SETJ(F_QUERY_ID, "null"),
    SETJ(F_QUERY_ID, "true"),
    SETJ(F_QUERY_ID, "[12]"),
    SETB(F_QUERY_ID, "\"0x1F\"", "0x1F"),
    SETB(F_QUERY_ID, "-0", "-0"),
};
static const struct variant v_bad_query[] = {
    SETJ(F_QUERY, "42"),   SETJ(F_QUERY, "null"),
    SETJ(F_QUERY, "true"), SETJ(F_QUERY, "[\"running shoes\"]"),
    SETJ(F_QUERY, "{\"text\":\"shoes\"}"), SETJ(F_QUERY, "-1.5"),
};
static const struct variant v_empty_query[] = {
    SETB(F_QUERY, "\"\"", ""),
    SETB(F_QUERY, "\"   \"", "   "),
    SETB(F_QUERY, "\"\\t \\n\\r\"", " \v\f "),
    SETB(F_QUERY, "\" \\u000b\\f \"", "\v"),
    SETB(F_QUERY, "\"\\u0020\\u0009\"", "\f\f"),
};
static const struct variant v_query_too_long[] = {
    OPB(OP_LONG, F_QUERY, REC_TERM_MAX + 1),
    OPB(OP_LONG_WS, F_QUERY, REC_TERM_MAX + 1),
    OPB(OP_LONG_MB, F_QUERY, REC_TERM_MAX + 2),
    OPB(OP_LONG, F_QUERY, 2000),
};
static const struct variant v_long_query_ok[] = {
    OPB(OP_LONG, F_QUERY, REC_TERM_MAX),
    OPB(OP_LONG_WS, F_QUERY, REC_TERM_MAX),
    OPB(OP_LONG_MB, F_QUERY, REC_TERM_MAX - 1),
    OPB(OP_LONG_PAD, F_QUERY, 600),
    OPB(OP_LONG_PAD, F_QUERY, 5000),
};
static const struct variant v_bad_ad_ids[] = {
    SETJ(F_AD_IDS, "5"),
    SETJ(F_AD_IDS, "\"1001,1002\""),
    SETB(F_AD_IDS, "[1001,\"x\"]", "1001,x"),
    SETB(F_AD_IDS, "[1001,-1]", "1001,-1"),
    SETB(F_AD_IDS, "[1.5]", "1.5"),
    SETB(F_AD_IDS, "[18446744073709551616]", "18446744073709551616"),
    SETJ(F_AD_IDS, "[null]"),
    SETJ(F_AD_IDS, "[[1001]]"),
    SETJ(F_AD_IDS, "{}"),
    SETJ(F_AD_IDS, "[\"\"]"),
    SETJ(F_AD_IDS, "[true]"),
    SETB(F_AD_IDS, "[1e3]", "1e3"),
    SETT(F_AD_IDS, "1001,,1002"),
    SETT(F_AD_IDS, "1001,"),
    SETT(F_AD_IDS, ",1001"),
};
static const struct variant v_too_many_ads[] = {
    OPB(OP_ADS, F_AD_IDS, REC_ADS_MAX + 1),
    OPB(OP_ADS, F_AD_IDS, 40),
    OPB(OP_ADS_DUP, F_AD_IDS, REC_ADS_MAX + 1),
};
static const struct variant v_ads_ok[] = {
    OPB(OP_ADS, F_AD_IDS, REC_ADS_MAX),
    OPB(OP_ADS_DUP, F_AD_IDS, REC_ADS_MAX),
    OPB(OP_ADS_DUP, F_AD_IDS, 3),
    OPB(OP_ADS_SPECIAL, F_AD_IDS, 0),
};
static const struct variant v_query_odd_ok[] = {
    OPB(OP_MAXID, F_QUERY_ID, 0),
    OPB(OP_ZEROS, F_QUERY_ID, 5),
    OPB(OP_ZEROS, F_AD_IDS, 3),
    OPB(OP_KEYESC, F_NONE, 0),
    OPB(OP_TIMESTR, F_TIME, 0),
    OPB(OP_DEEP, F_NONE, 3000),
    {OP_EXTRA, F_NONE, FB, 0, NULL, "\"meta\":1,\"meta\":{\"again\":1}", NULL},
    {OP_EXTRA, F_NONE, FB, 0, NULL,
     "\"Query_ID\":\"x\",\"ad_ids \":5,\"TIME\":null,\"click_id\":{}", NULL},
    {OP_EXTRA, F_NONE, FB, 0, NULL, "\"v\":\"\\ud800 lone, ignored\"", NULL},
};
static const struct variant v_click_odd_ok[] = {
    SETB(F_CLICK_ID, "\"" ID64 "\"", ID64),
    SETB(F_CLICK_ID, "18446744073709551615", "18446744073709551615"),
    SETB(F_CLICK_ID, "0", "0"),
    SETB(F_CLICK_ID, "\"c-\\u00e9\\ud83d\\ude00\"",
         "c-\xc3\xa9\xf0\x9f\x98\x80"),
    OPB(OP_ZEROS, F_QUERY_ID, 7),
    OPB(OP_ZEROS, F_AD_ID, 4),
    OPB(OP_KEYESC, F_NONE, 0),
    OPB(OP_TIMESTR, F_TIME, 0),
    {OP_EXTRA, F_NONE, FB, 0, NULL,
     "\"ad_ids\":[1,2],\"query\":\"ignored in a click\"", NULL},
};
static const struct variant v_bad_ad_id[] = {
    SETB(F_AD_ID, "-1", "-1"),
    SETB(F_AD_ID, "\"x\"", "x"),
    SETB(F_AD_ID, "1.5", "1.5"),
    SETB(F_AD_ID, "18446744073709551616", "18446744073709551616"),
    SETJ(F_AD_ID, "[1001]"),
    SETJ(F_AD_ID, "null"),
    SETJ(F_AD_ID, "true"),
    SETJ(F_AD_ID, "\"\""),
    SETT(F_AD_ID, "1001,1002"),
};
static const struct variant v_bad_click_id[] = {
    SETJ(F_CLICK_ID, "\"\""),
    SETB(F_CLICK_ID, "\"" ID64 "X\"", ID64 "X"),
    SETJ(F_CLICK_ID, "{}"),
    SETJ(F_CLICK_ID, "-1"),
    SETJ(F_CLICK_ID, "1.5"),
    SETJ(F_CLICK_ID, "[\"c-1\"]"),
    SETJ(F_CLICK_ID, "true"),
    SETJ(F_CLICK_ID, "18446744073709551616"),
    SETJ(F_CLICK_ID, "\"c-\\ud83d\""),
    SETT(F_CLICK_ID, ""),
};
/* Stand-ins for the composite cases: only their number matters. */
static const struct variant v_kinds[6] = {
    OPB(OP_NONE, F_NONE, 0), OPB(OP_NONE, F_NONE, 0), OPB(OP_NONE, F_NONE, 0),
    OPB(OP_NONE, F_NONE, 0), OPB(OP_NONE, F_NONE, 0), OPB(OP_NONE, F_NONE, 0)};

#define N_OF(a) (uint8_t)(sizeof a / sizeof a[0])
#define QLINE(reason, a) {case_query_line, reason, 0, N_OF(a), a}
#define CLINE(reason, a) {case_click_line, reason, 0, N_OF(a), a}
#define KINDS(fn, n) {fn, REC_OK, 1, n, v_kinds}

static const struct gen_case case_table[] = {
    QLINE(REC_LINE_TOO_LONG, v_too_long),
    QLINE(REC_OK, v_max_line),
    QLINE(REC_BAD_UTF8, v_q_bad_utf8),
    QLINE(REC_BAD_JSON, v_bad_json),
    QLINE(REC_NOT_OBJECT, v_not_object),
    QLINE(REC_DUPLICATE_FIELD, v_q_dup_field),
    QLINE(REC_BAD_TSV, v_q_bad_tsv),
    QLINE(REC_MISSING_TIME, v_missing_time),
    QLINE(REC_BAD_TIME, v_bad_time),
    QLINE(REC_MISSING_QUERY_ID, v_missing_query_id),
    QLINE(REC_BAD_QUERY_ID, v_bad_query_id),
    QLINE(REC_MISSING_QUERY, v_missing_query),
    QLINE(REC_BAD_QUERY, v_bad_query),
    QLINE(REC_EMPTY_QUERY, v_empty_query),
    QLINE(REC_QUERY_TOO_LONG, v_query_too_long),
    QLINE(REC_OK, v_long_query_ok),
    QLINE(REC_MISSING_AD_IDS, v_missing_ad_ids),
    QLINE(REC_BAD_AD_IDS, v_bad_ad_ids),
    QLINE(REC_TOO_MANY_ADS, v_too_many_ads),
    QLINE(REC_OK, v_ads_ok),
    QLINE(REC_OK, v_query_odd_ok),
    KINDS(case_query_dup, 3),
    KINDS(case_query_invalid_first, 1),
    KINDS(case_query_no_ads, 1),
    CLINE(REC_LINE_TOO_LONG, v_too_long),
    CLINE(REC_OK, v_max_line),
    CLINE(REC_BAD_UTF8, v_c_bad_utf8),
    CLINE(REC_BAD_JSON, v_bad_json),
    CLINE(REC_NOT_OBJECT, v_not_object),
    CLINE(REC_DUPLICATE_FIELD, v_c_dup_field),
    CLINE(REC_BAD_TSV, v_c_bad_tsv),
    CLINE(REC_MISSING_TIME, v_missing_time),
    CLINE(REC_BAD_TIME, v_bad_time),
    CLINE(REC_MISSING_QUERY_ID, v_missing_query_id),
    CLINE(REC_BAD_QUERY_ID, v_bad_query_id),
    CLINE(REC_MISSING_AD_ID, v_missing_ad_id),
    CLINE(REC_BAD_AD_ID, v_bad_ad_id),
    CLINE(REC_BAD_CLICK_ID, v_bad_click_id),
    CLINE(REC_OK, v_click_odd_ok),
    KINDS(case_click_not_shown, 1),
    KINDS(case_click_outside, 6),
    KINDS(case_click_edge, 4),
    KINDS(case_click_dup, 3),
    KINDS(case_click_unknown, 2),
};
#define N_CASES (sizeof case_table / sizeof case_table[0])
/* clang-format on */

/* Runs of case c: whole rounds of its variants, enough that every format
 * it writes gets at least k lines (k: 3..20 growing with the run), or k
 * of each variant. */
static unsigned case_runs(size_t c, uint64_t n_queries)
{
    const struct gen_case *gc = &case_table[c];
    unsigned k = 3 + (unsigned)(c % 3) +
                 (unsigned)(n_queries / 500000 < 15 ? n_queries / 500000 : 15);
    unsigned rounds = gc->each ? k : 1;
    for (int fmt = 0; fmt < FMT_N && !gc->each; fmt++) {
        unsigned n = 0;
        for (unsigned i = 0; i < gc->n_variants; i++)
            n += gc->variants[i].fmts >> fmt & 1;
        if (n && (k + n - 1) / n > rounds)
            rounds = (k + n - 1) / n;
    }
    return rounds * gc->n_variants;
}

/* All runs of all cases, in a shuffled order. */
static int sched_build(struct gen *g)
{
    size_t n = 0, cap = 0;
    for (size_t c = 0; c < N_CASES; c++)
        cap += case_runs(c, g->n_queries);
    g->sched = malloc(cap * sizeof *g->sched);
    if (!g->sched)
        return CTRD_ENOMEM;
    for (size_t c = 0; c < N_CASES; c++)
        for (unsigned i = 0, k = case_runs(c, g->n_queries); i < k; i++)
            g->sched[n++] = (struct slot){(uint16_t)c, (uint16_t)i};
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&g->trick, i + 1);
        struct slot t = g->sched[i];
        g->sched[i] = g->sched[j];
        g->sched[j] = t;
    }
    g->n_sched = n;
    return 0;
}

/* Runs the cases scheduled at or before normal query number i. */
static void sched_run(struct gen *g, uint64_t i)
{
    while (g->next_sched < g->n_sched &&
           g->next_sched * g->n_queries / g->n_sched <= i) {
        struct slot s = g->sched[g->next_sched++];
        case_table[s.c].run(g, &case_table[s.c], s.inst);
    }
}

/* ---- manifest ----------------------------------------------------------- */

static void manifest_rejects(FILE *f, const struct tally *t)
{
    const char *sep = "";
    fputs("\"rejects\": {", f);
    for (int r = 0; r < REC_REASON_COUNT; r++) {
        if (!t->rejects[r])
            continue;
        fprintf(f, "%s\"%s\": %llu", sep, rec_reason_name((enum rec_reason)r),
                (unsigned long long)t->rejects[r]);
        sep = ", ";
    }
    fputs("}", f);
}

static void manifest_logs(FILE *f, const struct gen *g, int fmt,
                          const char *indent)
{
    const struct tally *q = &g->tally[LOG_Q][fmt], *c = &g->tally[LOG_C][fmt];
    fprintf(f,
            "%s\"queries\": {\"lines\": %llu, \"empty_lines\": %llu, "
            "\"accepted\": %llu, \"duplicates\": %llu, "
            "\"impressions\": %llu,\n%s  ",
            indent, (unsigned long long)q->lines, (unsigned long long)q->empty,
            (unsigned long long)q->ok, (unsigned long long)q->dups,
            (unsigned long long)q->impressions, indent);
    manifest_rejects(f, q);
    fprintf(f,
            "},\n%s\"clicks\": {\"lines\": %llu, \"empty_lines\": %llu, "
            "\"joined\": %llu, \"duplicates\": %llu, "
            "\"unknown_query\": %llu,\n%s  ",
            indent, (unsigned long long)c->lines, (unsigned long long)c->empty,
            (unsigned long long)c->ok, (unsigned long long)c->dups,
            (unsigned long long)c->unknown, indent);
    manifest_rejects(f, c);
    fputs("}", f);
}

static int manifest_write(const struct gen *g, const char *path, char *err)
{
    static const char *const names[FMT_N] = {"ndjson", "tsv"};
    FILE *f = fopen(path, "w");
    unsigned formats = g->cfg->formats;
    int both = formats == (GEN_NDJSON | GEN_TSV);

    if (!f)
        return ctrd_fail(err, CTRD_EIO, "cannot create %s: %s", path,
                         strerror(errno));
    fprintf(f, "{\n  \"seed\": %llu", (unsigned long long)g->cfg->seed);
    for (int fmt = 0; fmt < FMT_N; fmt++) {
        if (!(formats >> fmt & 1))
            continue;
        if (both) {
            fprintf(f, ",\n  \"%s\": {\n", names[fmt]);
            manifest_logs(f, g, fmt, "    ");
            fputs("\n  }", f);
        } else {
            fprintf(f, ",\n  \"format\": \"%s\",\n", names[fmt]);
            manifest_logs(f, g, fmt, "  ");
        }
    }
    fputs("\n}\n", f);
    if (ferror(f) | (fclose(f) != 0))
        return ctrd_fail(err, CTRD_EIO, "cannot write %s", path);
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

void gen_config_default(struct gen_config *cfg)
{
    *cfg = (struct gen_config){
        .out_dir = NULL,
        .queries_per_sec = 1000,
        .duration_ms = 60000,
        .start_ms = INT64_C(1795341600000), /* 2026-11-22T10:00:00Z */
        .seed = 1,
        .n_ads = 1000,
        .n_terms = 5000,
        .ctr = 0.02,
        .formats = GEN_NDJSON,
        .tricky = 0,
    };
}

/* NULL when the config is within range, else what is wrong. */
static const char *config_problem(const struct gen_config *c)
{
    if (!c->out_dir || !*c->out_dir)
        return "--out DIR is required";
    if (c->queries_per_sec == 0 || c->duration_ms <= 0)
        return "--queries-per-sec and --duration must be > 0";
    if ((uint64_t)c->duration_ms > GEN_MAX_QUERIES ||
        c->queries_per_sec > GEN_MAX_QUERIES * 1000 / (uint64_t)c->duration_ms)
        return "too many queries (at most 10^11)";
    if (c->start_ms < GEN_MIN_START_MS ||
        c->start_ms > REC_TIME_MAX_MS - c->duration_ms - 3 * GEN_WINDOW_MS)
        return "--start must be after 1970-01-02 and leave room for "
               "--duration and 3 days before year 10000";
    if (c->n_ads < 1 || c->n_ads > GEN_ADS_LIMIT)
        return "--ads must be 1..1000000";
    if (c->n_terms < 1 || c->n_terms > GEN_TERMS_LIMIT)
        return "--terms must be 1..1000000";
    if (!(c->ctr >= 0 && c->ctr <= 1))
        return "--ctr must be 0..1";
    if (c->formats == 0 || c->formats > (GEN_NDJSON | GEN_TSV))
        return "no output format";
    return NULL;
}

/* Click probability per ad rank: ctr times a factor in [0.5, 1.5),
 * normalised so that the impression-weighted mean is ctr. */
static int ad_probabilities(struct gen *g)
{
    uint32_t n = g->cfg->n_ads;
    double norm = 0, prev = 0;

    g->ad_p = malloc((size_t)n * sizeof *g->ad_p);
    if (!g->ad_p)
        return CTRD_ENOMEM;
    for (uint32_t k = 0; k < n; k++) {
        g->ad_p[k] =
            0.5 +
            (double)(hash_u64(g->cfg->seed ^
                              (k + 1ull) * UINT64_C(0x9E3779B97F4A7C15)) >>
                     11) *
                0x1.0p-53;
        norm += (g->ad_cdf[k] - prev) * g->ad_p[k];
        prev = g->ad_cdf[k];
    }
    for (uint32_t k = 0; k < n; k++) {
        double p = g->cfg->ctr * g->ad_p[k] / norm;
        g->ad_p[k] = p < 1 ? p : 1;
    }
    return 0;
}

static int gen_open(struct gen *g, const struct gen_config *cfg, char *err)
{
    static const char *const files[LOG_N][FMT_N] = {
        {"queries.ndjson", "queries.tsv"}, {"clicks.ndjson", "clicks.tsv"}};
    char path[FS_PATH_MAX];
    int rc;

    g->cfg = cfg;
    g->n_queries = cfg->queries_per_sec * (uint64_t)cfg->duration_ms / 1000;
    g->trick_qid_ctr = GEN_TRICK_ID_BASE;
    rng_seed(&g->main, cfg->seed, 1);
    rng_seed(&g->trick, cfg->seed, 2);
    for (int t = 0; t < 2; t++)
        for (int fmt = 0; fmt < FMT_N; fmt++)
            rng_seed(&g->spell[t][fmt], cfg->seed, 10 + 2 * (uint64_t)t + fmt);
    g->line = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->text = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->aux = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->term_cdf = zipf_cdf(cfg->n_terms);
    g->ad_cdf = zipf_cdf(cfg->n_ads);
    if (!g->line.p || !g->text.p || !g->aux.p || !g->term_cdf || !g->ad_cdf ||
        ad_probabilities(g) != 0 ||
        vocab_build(&g->voc, cfg->n_terms, cfg->seed) != 0 ||
        (cfg->tricky && sched_build(g) != 0))
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if ((rc = fs_mkdirs(cfg->out_dir, err)) != 0)
        return rc;
    for (int log = 0; log < LOG_N; log++)
        for (int fmt = 0; fmt < FMT_N; fmt++) {
            if (!(cfg->formats >> fmt & 1))
                continue;
            if ((size_t)snprintf(path, sizeof path, "%s/%s", cfg->out_dir,
                                 files[log][fmt]) >= sizeof path)
                return ctrd_fail(err, CTRD_EINVAL, "path too long: %s",
                                 cfg->out_dir);
            g->out[log][fmt].w = malloc(sizeof *g->out[log][fmt].w);
            if (!g->out[log][fmt].w)
                return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
            if ((rc = fs_writer_open(g->out[log][fmt].w, path, FS_TRUNCATE, err)) != 0) {
                free(g->out[log][fmt].w);
                g->out[log][fmt].w = NULL;
                return rc;
            }
        }
    return 0;
}

/* Closes the files (first error wins) and frees everything. */
static int gen_close(struct gen *g, int rc, struct gen_summary *sum, char *err)
{
    for (int log = 0; log < LOG_N; log++)
        for (int fmt = 0; fmt < FMT_N; fmt++) {
            struct out *o = &g->out[log][fmt];
            for (size_t i = 0; i < o->n_copies; i++)
                free(o->copies[i].bytes);
            free(o->copies);
            if (!o->w)
                continue;
            if (sum)
                sum->bytes += o->w->written;
            int c = fs_writer_close(o->w, 0, rc ? NULL : err);
            rc = rc ? rc : c;
            free(o->w);
        }
    vocab_free(&g->voc);
    free(g->term_cdf);
    free(g->ad_cdf);
    free(g->ad_p);
    free(g->heap);
    free(g->sched);
    free(g->line.p);
    free(g->text.p);
    free(g->aux.p);
    return rc;
}

static void gen_loop(struct gen *g)
{
    uint64_t n = g->n_queries, dur = (uint64_t)g->cfg->duration_ms, acc = 0;

    g->now_ms = g->cfg->start_ms;
    for (uint64_t i = 0; i < n && !g->oom; i++) {
        g->q_index = i;
        for (int fmt = 0; fmt < FMT_N; fmt++)
            if (g->out[LOG_Q][fmt].w)
                out_release(&g->out[LOG_Q][fmt], i);
        sched_run(g, i);
        normal_query(g);
        flush_clicks(g, g->now_ms - GEN_HOLD_MS);
        acc += dur;
        g->now_ms += (int64_t)(acc / n);
        acc %= n;
    }
    g->q_index = n;
    sched_run(g, UINT64_MAX);
    for (int fmt = 0; fmt < FMT_N; fmt++)
        if (g->out[LOG_Q][fmt].w)
            out_release(&g->out[LOG_Q][fmt], UINT64_MAX);
    flush_clicks(g, INT64_MAX);
    for (int fmt = 0; fmt < FMT_N; fmt++)
        if (g->out[LOG_C][fmt].w)
            out_release(&g->out[LOG_C][fmt], UINT64_MAX);
}

int gen_run(const struct gen_config *cfg, struct gen_summary *sum, char *err)
{
    struct gen *g;
    const char *problem = config_problem(cfg);
    char path[FS_PATH_MAX];
    int rc, first = cfg->formats & GEN_NDJSON ? FMT_J : FMT_T;

    if (problem)
        return ctrd_fail(err, CTRD_EINVAL, "%s", problem);
    g = calloc(1, sizeof *g);
    if (!g)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (sum)
        *sum = (struct gen_summary){0, 0, 0};
    rc = gen_open(g, cfg, err);
    if (rc == 0) {
        gen_loop(g);
        for (int i = 0; i < LOG_N * FMT_N; i++)
            g->oom |= g->out[i / FMT_N][i % FMT_N].oom;
        if (g->oom)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    if (rc == 0 && sum) {
        sum->query_lines = g->tally[LOG_Q][first].lines;
        sum->click_lines = g->tally[LOG_C][first].lines;
    }
    rc = gen_close(g, rc, sum, err);
    if (rc == 0 && cfg->tricky) {
        snprintf(path, sizeof path, "%s/manifest.json", cfg->out_dir);
        rc = manifest_write(g, path, err);
    }
    free(g);
    return rc;
}

/* ---- command line ------------------------------------------------------- */

static const char gen_help[] =
    "Usage: ctrd gen --out DIR [options]\n"
    "\n"
    "Writes realistic synthetic logs into DIR (created if needed):\n"
    "queries.ndjson and clicks.ndjson (and/or .tsv), deterministic for a\n"
    "seed. Terms and ads are Zipf-distributed, ~2 % of shown ads are\n"
    "clicked after a lognormal delay (some clicks precede their query by\n"
    "up to 60 s), some queries arrive up to 30 s late; the click file is in\n"
    "click-time order.\n"
    "\n"
    "Options:\n"
    "  --out DIR              output directory (required)\n"
    "  --queries-per-sec N    query rate (default 1000)\n"
    "  --duration D           time span of the queries: ms, s, m, h\n"
    "                         (default 1m)\n"
    "  --start T              time of the first query, ms or RFC 3339\n"
    "                         (default 2026-11-22T10:00:00Z)\n"
    "  --seed S               random seed (default 1)\n"
    "  --ads N                distinct ads (default 1000)\n"
    "  --terms N              distinct search terms (default 5000)\n"
    "  --ctr F                click-through rate, 0..1 (default 0.02)\n"
    "  --format F             ndjson, tsv or both (default ndjson)\n"
    "  --tricky               also inject every kind of invalid line,\n"
    "                         duplicate, late and unknown record, and write\n"
    "                         DIR/manifest.json with the exact counts they\n"
    "                         must give (see src/gen.h)\n"
    "  -h, --help             this help\n";

/* The flags that take a value. */
static const char *const gen_flags[] = {
    "out", "queries-per-sec", "duration", "start", "seed",
    "ads", "terms",           "ctr",      "format"};

static int gen_flag_known(const char *name)
{
    for (size_t i = 0; i < sizeof gen_flags / sizeof gen_flags[0]; i++)
        if (strcmp(name, gen_flags[i]) == 0)
            return 1;
    return 0;
}

/* Parses the value of one flag into cfg; 0, or 2 after a usage message. */
static int gen_flag(struct gen_config *cfg, const char *name, const char *val)
{
    uint64_t u;
    char *end;

    if (strcmp(name, "out") == 0) {
        cfg->out_dir = val;
    } else if (strcmp(name, "queries-per-sec") == 0) {
        if (cli_parse_u64(val, &cfg->queries_per_sec) != 0 ||
            cfg->queries_per_sec == 0)
            return cli_usage("gen", "bad --queries-per-sec '%s'", val);
    } else if (strcmp(name, "duration") == 0) {
        if (cli_parse_duration_ms(val, &cfg->duration_ms) != 0 ||
            cfg->duration_ms <= 0)
            return cli_usage("gen", "bad --duration '%s'", val);
    } else if (strcmp(name, "start") == 0) {
        if (cli_parse_time_ms(val, &cfg->start_ms) != 0)
            return cli_usage("gen", "bad --start '%s'", val);
    } else if (strcmp(name, "seed") == 0) {
        if (cli_parse_u64(val, &cfg->seed) != 0)
            return cli_usage("gen", "bad --seed '%s'", val);
    } else if (strcmp(name, "ads") == 0 || strcmp(name, "terms") == 0) {
        uint64_t limit = name[0] == 'a' ? GEN_ADS_LIMIT : GEN_TERMS_LIMIT;
        if (cli_parse_u64(val, &u) != 0 || u == 0 || u > limit)
            return cli_usage("gen", "bad --%s '%s' (1..%llu)", name, val,
                             (unsigned long long)limit);
        *(name[0] == 'a' ? &cfg->n_ads : &cfg->n_terms) = (uint32_t)u;
    } else if (strcmp(name, "ctr") == 0) {
        errno = 0;
        cfg->ctr = strtod(val, &end);
        if (errno || end == val || *end || !(cfg->ctr >= 0 && cfg->ctr <= 1))
            return cli_usage("gen", "bad --ctr '%s' (0..1)", val);
    } else { /* format */
        cfg->formats = strcmp(val, "ndjson") == 0 ? GEN_NDJSON
                       : strcmp(val, "tsv") == 0  ? GEN_TSV
                       : strcmp(val, "both") == 0 ? GEN_NDJSON | GEN_TSV
                                                  : 0;
        if (!cfg->formats)
            return cli_usage("gen", "bad --format '%s' (ndjson|tsv|both)", val);
    }
    return 0;
}

int gen_command(int argc, char **argv)
{
    struct gen_config cfg;
    struct gen_summary sum;
    char err[CTRD_ERR_LEN];
    const char *problem;
    int rc;

    gen_config_default(&cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq, *val;
        char name[32];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(gen_help, stdout);
            return 0;
        }
        if (strcmp(a, "--tricky") == 0) {
            cfg.tricky = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return cli_usage("gen", "unexpected argument '%s'", a);
        eq = strchr(a, '=');
        if ((eq ? (size_t)(eq - a) : strlen(a)) - 2 >= sizeof name)
            return cli_usage("gen", "unknown option '%s'", a);
        snprintf(name, sizeof name, "%.*s",
                 (int)(eq ? (size_t)(eq - a) : strlen(a)) - 2, a + 2);
        if (!gen_flag_known(name))
            return cli_usage("gen", "unknown option '%s'", a);
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return cli_usage("gen", "option '%s' needs a value", a);
        if ((rc = gen_flag(&cfg, name, val)) != 0)
            return rc;
    }
    if ((problem = config_problem(&cfg)) != NULL)
        return cli_usage("gen", "%s", problem);
    if ((rc = gen_run(&cfg, &sum, err)) != 0) {
        fprintf(stderr, "ctrd gen: %s\n", err);
        return 1;
    }
    fprintf(stderr,
            "ctrd gen: wrote %llu query and %llu click lines%s, %llu bytes, "
            "to %s\n",
            (unsigned long long)sum.query_lines,
            (unsigned long long)sum.click_lines,
            cfg.formats == (GEN_NDJSON | GEN_TSV) ? " per format" : "",
            (unsigned long long)sum.bytes, cfg.out_dir);
    return 0;
}
