/* gen_internal: the interface between the files of `ctrd gen` -- internal,
 * included only by src/gen*.c (the public interface is gen.h).
 *
 * The files and what each owns:
 *   gen.c          the driver: command line, config, the run (open, loop,
 *                  close), output files, line counting, the click heap,
 *                  the normal records and manifest.json.
 *   gen_content.c  what records hold: the term vocabulary (and its hash
 *                  set), Zipf draws, ad ids, query ids, and when queries
 *                  happen (the daily and weekly traffic curve).
 *   gen_account.c  the advertisers' accounts: who owns which ad, their
 *                  keyword sets, which ads a term shows, click
 *                  probabilities, and the ads catalog (ads.csv).
 *   gen_spell.c    how a record is spelled as one NDJSON or TSV line, with
 *                  the variations of SPEC §2 (escapes, case, white space,
 *                  RFC 3339 times, ...) and the alterations of a variant.
 *   gen_case.c     the tricky and invalid records of --tricky: the case
 *                  table, its variants and their schedule.
 *
 * Invariants: every random draw comes from one of the struct gen rngs, in an
 * order fixed by the config alone, so a config gives byte-identical files;
 * content rngs (main, trick) never spell and spelling rngs never draw
 * content, so formats and --tricky do not shift each other's records.
 * Threads: one; struct gen belongs to the gen_run() that made it. */
#ifndef CTRD_GEN_INTERNAL_H
#define CTRD_GEN_INTERNAL_H

#include "gen.h"

#include "fsutil.h"
#include "hash.h"
#include "record.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define GEN_ADS_CAP 48          /* entries of one generated ad list */
#define GEN_EARLY_MS 60000      /* a click may precede its query by this */
#define GEN_WINDOW_MS 86400000  /* default join window (SPEC §2) */
#define GEN_EARLY_MAX_MS 180000 /* no click precedes its query by more */
#define GEN_ID_RESERVED 1024    /* top query ids: uint64-max cases only */
#define GEN_KNOT_MS 60000       /* the traffic curve is constant this long */

/* ---- random numbers: xoshiro256**, seeded by splitmix64 ---------------- */

struct rng {
    uint64_t s[4];
};

static inline void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ hash_u64(stream + 1);
    for (int i = 0; i < 4; i++) {
        x += UINT64_C(0x9E3779B97F4A7C15);
        r->s[i] = hash_u64(x);
    }
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_u64(struct rng *r)
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
static inline double rng_unit(struct rng *r)
{
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n), n < 2^52. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
    return (uint64_t)(rng_unit(r) * (double)n);
}

static inline int rng_chance(struct rng *r, double p)
{
    return rng_unit(r) < p;
}

/* Standard normal (Box-Muller, one of the pair). */
static inline double rng_gauss(struct rng *r)
{
    double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- line buffer ------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static inline void buf_mem(struct buf *b, const void *s, size_t n)
{
    assert(b->cap - b->len >= n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void buf_c(struct buf *b, char c)
{
    assert(b->len < b->cap);
    b->p[b->len++] = c;
}

static inline void buf_str(struct buf *b, const char *s)
{
    buf_mem(b, s, strlen(s));
}

static inline void buf_fill(struct buf *b, char c, size_t n)
{
    assert(b->cap - b->len >= n);
    memset(b->p + b->len, c, n);
    b->len += n;
}

static inline void buf_u64(struct buf *b, uint64_t v)
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
static inline void buf_digits(struct buf *b, unsigned v, int width)
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

/* n_terms distinct normalised terms; term 0 is the most popular. */
struct vocab {
    char *bytes;
    uint32_t *off;
    uint16_t *len;
    uint32_t n;
};

/* When queries happen: volume follows a daily curve (peak 15:00 UTC, low
 * at 03:00) times a weekly one (Saturday and Sunday lower), piecewise
 * constant over GEN_KNOT_MS knots from the start; within a knot queries
 * are evenly spread. Query i of n falls in the knot where the cumulative
 * volume passes i / n of the whole, so the average rate is n / duration. */
struct traffic {
    int64_t end_ms;           /* start + duration */
    int64_t knot_ms, next_ms; /* the current knot: [knot_ms, next_ms) */
    double total, done;       /* volume of all knots; of those up to next_ms */
    uint64_t q_lo, q_hi;      /* the queries of the current knot */
};

/* The advertisers' accounts (gen_account.c). Advertiser a (id a + 1) owns
 * the ads of ranks [a, a + 1) * GEN_ADS_PER_ADVERTISER and bids on a
 * keyword set; each of its ads runs on about half of those keywords. The
 * postings of term t, [term_off[t], term_off[t + 1]), are the advertisers
 * that bid on it, in advertiser order, with cumulative weights (the
 * advertiser's popularity times its bid). */
struct accounts {
    uint32_t n_adv;
    uint32_t *term_off;  /* n_terms + 1 */
    uint32_t *post_adv;  /* advertiser of each posting */
    double *post_cum;    /* cumulative weight within the term */
    uint8_t *post_ads;   /* bit i: the advertiser's i-th ad runs on it */
    uint32_t *core_term; /* per advertiser: its highest bid, names its ads */
    uint64_t pair_key;   /* seeds the hash of an (ad, term) pair */
};

/* ---- records and how an injected case alters them ----------------------- */

enum log_kind { LOG_Q, LOG_C, LOG_N };
enum fmt_kind { FMT_J, FMT_T, FMT_N };

/* The field a variant alters: an enum rec_field, or F_NONE for
 * alterations of the whole line. */
#define F_NONE REC_F_COUNT

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
    uint8_t field; /* enum rec_field it applies to, or F_NONE */
    uint8_t fmts;  /* formats that get a line */
    int32_t arg;
    const char *key;  /* OP_RENAME, OP_DUP: the key as written */
    const char *json; /* NDJSON text, see enum op */
    const char *tsv;  /* TSV text */
};

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
    struct accounts acc;
    struct traffic traffic;
    double *term_cdf, *ad_cdf;
    double *ad_p; /* per ad rank: click probability before the term's factor */
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

static inline int fmt_on(const struct gen *g, const struct variant *v, int fmt)
{
    return g->out[0][fmt].w && (v->fmts >> fmt & 1);
}

/* The valid spelling of a record: no alteration, both formats. */
extern const struct variant gen_v_none;

/* ---- gen_content.c ------------------------------------------------------ */

/* Builds n distinct terms from seed: 0 or CTRD_ENOMEM. */
int gen_vocab_build(struct vocab *v, uint32_t n, uint64_t seed);
void gen_vocab_free(struct vocab *v);
/* The first of cdf[0..n) above u (n - 1 when none is). */
uint32_t gen_cdf_find(const double *cdf, uint32_t n, double u);
/* Zipf(1) over ranks 0..n-1: the CDF (malloc'd, NULL when out of memory),
 * and a draw from it. */
double *gen_zipf_cdf(uint32_t n);
uint32_t gen_zipf_draw(const double *cdf, uint32_t n, struct rng *r);
/* The next unique query id of the counter *ctr (never 0, never reserved). */
uint64_t gen_next_query_id(uint64_t *ctr);
/* Distinct ads of x. */
uint32_t gen_distinct_ads(const struct grec *x);
/* Adds up to n distinct catalog ads by popularity; ranks[] gets their
 * ranks when given. Ids below 1000 fill in when the catalog is small. */
void gen_draw_ads(struct gen *g, struct rng *r, struct grec *x, uint32_t n,
                  uint32_t *ranks);
/* Starts the curve of the queries of [start_ms, start_ms + duration_ms). */
void gen_traffic_init(struct traffic *t, int64_t start_ms, int64_t duration_ms);
/* The time of query i of n (i from 0 up, never going back). */
int64_t gen_traffic_time(struct traffic *t, uint64_t i, uint64_t n);

/* ---- gen_account.c ------------------------------------------------------ */

/* Builds g->acc and g->ad_p from g->cfg, g->term_cdf and g->ad_cdf: 0 or
 * CTRD_ENOMEM (what was built is freed by gen_accounts_free). */
int gen_accounts_build(struct gen *g);
void gen_accounts_free(struct accounts *acc);
/* Adds up to n ads for x->term, from distinct advertisers that bid on it
 * (random ads by popularity when none does); ranks[] gets their ranks. */
void gen_account_ads(struct gen *g, struct rng *r, struct grec *x, uint32_t n,
                     uint32_t *ranks);
/* The probability that the ad of rank k is clicked when shown for term. */
double gen_click_p(const struct gen *g, uint32_t k, uint32_t term);
/* Writes the ads catalog (catalog.h's CSV) to path: 0 or CTRD_EIO. */
int gen_catalog_write(const struct gen *g, const char *path, char *err);

/* ---- gen_spell.c -------------------------------------------------------- */

/* x spelled in format fmt (enum fmt_kind) altered by v into g->line, with
 * its line end; g->blank tells whether an empty line goes before it. Draws
 * only from g->spell[tricky][fmt]. */
void gen_spell(struct gen *g, int tricky, int fmt, const struct grec *x,
               const struct variant *v);
/* A run of 1-3 white-space bytes (SPEC §2), TSV-safe when tsv. */
void gen_put_ws_run(struct rng *r, struct buf *b, int tsv);

/* ---- gen.c -------------------------------------------------------------- */

/* Counts g->line as expect (a rec_reason, GEN_DUP or GEN_UNKNOWN) and writes
 * it now (due 0), or holds it until the log's counter reaches due. */
void gen_put_line(struct gen *g, int log, int fmt, int expect,
                  uint64_t impressions, uint64_t due);
/* Writes query x in every format v allows. */
void gen_emit_query(struct gen *g, int tricky, const struct grec *x,
                    const struct variant *v, int expect, uint64_t due);
/* Queues a click on (query, ad) at time_ms, spelled with v, counted as
 * expect; redeliver > 0 writes an exact copy that many clicks later. */
void gen_push_click(struct gen *g, int tricky, uint64_t query_id, uint64_t ad,
                    int64_t time_ms, const struct variant *v, int expect,
                    unsigned redeliver);

/* ---- gen_case.c --------------------------------------------------------- */

/* Schedules all runs of all cases in a shuffled order: 0 or CTRD_ENOMEM. */
int gen_cases_schedule(struct gen *g);
/* Runs the cases scheduled at or before normal query number i. */
void gen_cases_run(struct gen *g, uint64_t i);

#endif
