/* gen_case: the tricky records of `ctrd gen --tricky` -- every kind of
 * invalid line, duplicate, late, early and unknown record SPEC §2 names,
 * each with the outcome it must have. See gen_internal.h.
 *
 * A case is a row of case_table: a function and, for the line cases, a
 * list of variants (struct variant: how one field or the whole line is
 * altered, in which formats). gen_cases_schedule() spreads all runs of all
 * cases over the normal queries in a shuffled order; gen_cases_run() runs
 * the ones due. A case draws its records from g->trick and writes them
 * through the spellers and gen_put_line / gen_emit_query /
 * gen_push_click, which count each line by its expected outcome.
 *
 * Owns g->sched (freed by the driver). Invariants: each invalid line has
 * exactly one defect; tricky records use their own id counters and rngs,
 * so the normal records are the same with and without --tricky.
 * Threads: the caller's. */
#include "gen_internal.h"

#include <stdlib.h>

/* ---- tricky cases ------------------------------------------------------- */

/* clang-format off */
#define SETB(f, j, t) {OP_SET, f, FB, 0, NULL, j, t}
#define SAME(f, s) SETB(f, s, s) /* the same text in both formats */
#define QUOTED(f, s) SETB(f, "\"" s "\"", s) /* a JSON string; its text */
#define LISTED(f, s) SETB(f, "[" s "]", s) /* a JSON array; its entries */
#define SETJ(f, j) {OP_SET, f, FJ, 0, NULL, j, NULL}
#define SETT(f, t) {OP_SET, f, FT, 0, NULL, NULL, t}
#define OPJ(op, f, key, j) {op, f, FJ, 0, key, j, NULL}
#define DROP(f) OPJ(OP_DROP, f, NULL, NULL)          /* field left out */
#define RENAME(f, key) OPJ(OP_RENAME, f, key, NULL)  /* under another key */
#define OPB(op, f, arg) {op, f, FB, arg, NULL, NULL, NULL}
#define LINEJ(op, j) {op, F_NONE, FJ, 0, NULL, j, NULL}
/* clang-format on */

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
    x->query_id = gen_next_query_id(&g->trick_qid_ctr);
    x->term = gen_zipf_draw(g->term_cdf, g->voc.n, r);
    gen_draw_ads(g, r, x, 2 + (uint32_t)rng_below(r, 3), NULL);
}

/* An ad that query x does not show. */
static uint64_t absent_ad(struct gen *g, const struct grec *x)
{
    struct grec y = *x;
    gen_draw_ads(g, &g->trick, &y, 1, NULL);
    return y.ads[y.n_ads - 1];
}

static int64_t small_delay(struct gen *g)
{
    return 1000 + (int64_t)rng_below(&g->trick, 59000);
}

/* A fresh valid query, written: the clicks of a click case go on it. */
static void shown_query(struct gen *g, struct grec *x)
{
    trick_query(g, x);
    gen_emit_query(g, 1, x, &gen_v_none, REC_OK, 0);
}

/* A validly spelled click on (x's query, ad) at time_ms, counted as expect.
 * Callers draw time_ms and ad in separate statements: the order of
 * evaluation of a call's arguments is unspecified, and with two draws
 * from g->trick in one call, gcc and clang wrote different files. */
static void trick_click(struct gen *g, const struct grec *x, uint64_t ad,
                        int64_t time_ms, int expect)
{
    gen_push_click(g, 1, x->query_id, ad, time_ms, &gen_v_none, expect, 0);
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
                gen_put_ws_run(r, b, 1);
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
        gen_draw_ads(g, r, x, (uint32_t)v->arg, NULL);
        break;
    case OP_ADS_DUP: { /* distinct ones, then copies at random places */
        uint32_t n = (uint32_t)v->arg, copies = n / 8 ? n / 8 : 1;
        x->n_ads = 0;
        gen_draw_ads(g, r, x, n - copies, NULL);
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
        gen_draw_ads(g, r, x, 2, NULL);
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
    gen_emit_query(g, 1, &x, v, c->reason, 0);
    if (c->reason != REC_OK || x.n_ads == 0)
        return;
    assert(v->fmts == FB);
    trick_click(g, &x, x.ads[0], x.time_ms + small_delay(g), REC_OK);
    if (x.ads[x.n_ads - 1] != x.ads[0])
        trick_click(g, &x, x.ads[x.n_ads - 1], x.time_ms + small_delay(g),
                    REC_OK);
}

/* A click line altered by the case's variant, on a valid query. */
static void case_click_line(struct gen *g, const struct gen_case *c,
                            unsigned inst)
{
    const struct variant *v = &c->variants[inst % c->n_variants];
    struct grec x;

    shown_query(g, &x);
    gen_push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g), v,
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
        if (!fmt_on(g, &gen_v_none, fmt))
            continue;
        gen_spell(g, 1, fmt, &x, &gen_v_none);
        gen_put_line(g, LOG_Q, fmt, REC_OK, gen_distinct_ads(&x), 0);
        if (kind == 0)
            gen_put_line(g, LOG_Q, fmt, GEN_DUP, 0, due);
    }
    trick_click(g, &x, x.ads[0], x.time_ms + small_delay(g), REC_OK);
    if (kind == 1)
        gen_emit_query(g, 1, &x, &gen_v_none, GEN_DUP, due);
    if (kind != 2)
        return;
    /* y: 5 min later, other term, ads {x.ads[0], c}: a click on x.ads[1]
     * joins, one on c was not shown, one 24 h + 2 min after x is late. */
    y = x;
    y.time_ms += 300000;
    y.term = (x.term + 1) % g->voc.n;
    y.ads[1] = absent_ad(g, &x);
    y.n_ads = 2;
    gen_emit_query(g, 1, &y, &gen_v_none, GEN_DUP, due);
    trick_click(g, &x, x.ads[1], x.time_ms + 10000, REC_OK);
    trick_click(g, &x, y.ads[1], x.time_ms + 20000, REC_CLICK_AD_NOT_SHOWN);
    trick_click(g, &x, x.ads[0], x.time_ms + GEN_WINDOW_MS + 120000,
                REC_CLICK_OUTSIDE_WINDOW);
}

static const struct variant v_feb30 =
    QUOTED(REC_F_TIME, "2026-02-30T10:00:00Z");
static const struct variant v_bad_ad_entry = LISTED(REC_F_AD_IDS, "1001,-1");

/* A query whose first line is invalid and a later one valid: it counts. */
static void case_query_invalid_first(struct gen *g, const struct gen_case *c,
                                     unsigned inst)
{
    struct grec x;
    (void)c;
    (void)inst;

    trick_query(g, &x);
    gen_emit_query(g, 1, &x, &v_feb30, REC_BAD_TIME, 0);
    gen_emit_query(g, 1, &x, &gen_v_none, REC_OK, later_query(g));
    trick_click(g, &x, x.ads[0], x.time_ms + small_delay(g), REC_OK);
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
    gen_emit_query(g, 1, &x, &gen_v_none, REC_OK, 0);
    trick_click(g, &x, ad, x.time_ms + small_delay(g), REC_CLICK_AD_NOT_SHOWN);
}

static void case_click_not_shown(struct gen *g, const struct gen_case *c,
                                 unsigned inst)
{
    struct grec x;
    int64_t time_ms;
    (void)c;
    (void)inst;

    shown_query(g, &x);
    time_ms = x.time_ms + small_delay(g);
    trick_click(g, &x, absent_ad(g, &x), time_ms, REC_CLICK_AD_NOT_SHOWN);
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
    shown_query(g, &x);
    trick_click(g, &x, x.ads[0], x.time_ms + offset, expect);
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
    unsigned kind = inst % 3, redeliver;
    (void)c;

    shown_query(g, &x);
    redeliver = kind == 2 ? 1 + (unsigned)rng_below(&g->trick, 30) : 0;
    gen_push_click(g, 1, x.query_id, x.ads[0], x.time_ms + small_delay(g),
                   &gen_v_none, REC_OK, redeliver);
    for (unsigned k = 0; k < kind + 1 && kind < 2; k++)
        trick_click(g, &x, x.ads[0],
                    x.time_ms + GEN_EARLY_MS + small_delay(g) * (k + 1),
                    GEN_DUP);
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
        gen_emit_query(g, 1, &x, &v_bad_ad_entry, REC_BAD_AD_IDS, 0);
    trick_click(g, &x, x.ads[0], x.time_ms + small_delay(g), GEN_UNKNOWN);
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
    QUOTED(REC_F_QUERY, "caf\xc3\x28 shoes"),
    QUOTED(REC_F_QUERY, "\xff running"),
    QUOTED(REC_F_QUERY, "overlong \xc0\xaf slash"),
    QUOTED(REC_F_QUERY, "surrogate \xed\xa0\x80 x"),
    QUOTED(REC_F_QUERY, "beyond \xf4\x90\x80\x80 x"),
    QUOTED(REC_F_QUERY, "cut \xe2\x82"),
    SETJ(REC_F_QUERY, "\"lone \\ud83d high\""),
    SETJ(REC_F_QUERY, "\"lone \\udc00 low\""),
    SETJ(REC_F_QUERY, "\"\\ud83d\\u0041 broken pair\""),
    LINEJ(OP_EXTRA, "\"ua\":\"Mozilla \xff\""),
};
static const struct variant v_c_bad_utf8[] = {
    SETJ(REC_F_CLICK_ID, "\"c-\xff\""), SETJ(REC_F_CLICK_ID, "\"c-\xc3\""),
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
    OPJ(OP_DUP, REC_F_QUERY_ID, "\"query_id\"", NULL),
    OPJ(OP_DUP, REC_F_TIME, "\"t\\u0069me\"", NULL),
    OPJ(OP_DUP, REC_F_AD_IDS, "\"ad_ids\"", "[]"),
    OPJ(OP_DUP, REC_F_QUERY, "\"\\u0071uery\"", "\"other\""),
    OPJ(OP_DUP, REC_F_QUERY_ID, "\"query\\u005fid\"", "1"),
};
static const struct variant v_c_dup_field[] = {
    OPJ(OP_DUP, REC_F_AD_ID, "\"ad_id\"", NULL),
    OPJ(OP_DUP, REC_F_QUERY_ID, "\"qu\\u0065ry_id\"", NULL),
    OPJ(OP_DUP, REC_F_CLICK_ID, "\"click_id\"", "\"c-x\""),
    OPJ(OP_DUP, REC_F_TIME, "\"\\u0074ime\"", NULL),
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
    DROP(REC_F_TIME), RENAME(REC_F_TIME, "\"Time\""), RENAME(REC_F_TIME, "\"time \""),
    RENAME(REC_F_TIME, "\"timestamp\"")};
static const struct variant v_missing_query_id[] = {DROP(REC_F_QUERY_ID),
    RENAME(REC_F_QUERY_ID, "\"queryId\""), RENAME(REC_F_QUERY_ID, "\"query_id_\"")};
static const struct variant v_missing_query[] = {
    DROP(REC_F_QUERY), RENAME(REC_F_QUERY, "\"Query\""), RENAME(REC_F_QUERY, "\"q\"")};
static const struct variant v_missing_ad_ids[] = {
    DROP(REC_F_AD_IDS), RENAME(REC_F_AD_IDS, "\"ad_id\""), RENAME(REC_F_AD_IDS, "\"ads\"")};
static const struct variant v_missing_ad_id[] = {
    DROP(REC_F_AD_ID), RENAME(REC_F_AD_ID, "\"ad_ids\""), RENAME(REC_F_AD_ID, "\"adId\"")};
static const struct variant v_bad_time[] = {
    SAME(REC_F_TIME, "-5"),
    SAME(REC_F_TIME, "-1763805600123"),
    SAME(REC_F_TIME, "1763805600123.5"),
    SAME(REC_F_TIME, "1.7638056e12"),
    SETJ(REC_F_TIME, "\"1763805600123\""),
    SETJ(REC_F_TIME, "\"123\""),
    QUOTED(REC_F_TIME, "1969-12-31T23:59:59.999Z"),
    QUOTED(REC_F_TIME, "1970-01-01T00:30:00+01:00"),
    QUOTED(REC_F_TIME, "2026-02-30T10:00:00Z"),
    QUOTED(REC_F_TIME, "2025-02-29T10:00:00Z"),
    QUOTED(REC_F_TIME, "2026-11-22T10:00:60Z"),
    QUOTED(REC_F_TIME, "2026-11-22T24:00:00Z"),
    QUOTED(REC_F_TIME, "2026-13-01T10:00:00Z"),
    SAME(REC_F_TIME, "253402300800000"),
    SAME(REC_F_TIME, "99999999999999999999"),
    QUOTED(REC_F_TIME, "9999-12-31T23:59:59-01:00"),
    QUOTED(REC_F_TIME, "10000-01-01T00:00:00Z"),
    QUOTED(REC_F_TIME, "2026-11-22T10:00Z"),
    QUOTED(REC_F_TIME, "2026-11-22T10:00:00"),
    QUOTED(REC_F_TIME, "2026-11-22 10:00:00Z"),
    QUOTED(REC_F_TIME, "2026-11-22T10:00:00+5:30"),
    QUOTED(REC_F_TIME, "2026-11-22T10:00:00.Z"),
    SETJ(REC_F_TIME, "null"),
    SETJ(REC_F_TIME, "true"),
    SETJ(REC_F_TIME, "\"\""),
    SETJ(REC_F_TIME, "[1763805600123]"),
    SETT(REC_F_TIME, "0x1F"),
};
static const struct variant v_bad_query_id[] = {
    SAME(REC_F_QUERY_ID, "0"),
    SETJ(REC_F_QUERY_ID, "\"0\""),
    QUOTED(REC_F_QUERY_ID, "000"),
    SAME(REC_F_QUERY_ID, "18446744073709551616"),
    SETJ(REC_F_QUERY_ID, "\"18446744073709551616\""),
    SAME(REC_F_QUERY_ID, "99999999999999999999999"),
    SAME(REC_F_QUERY_ID, "-5"),
    SAME(REC_F_QUERY_ID, "1.5"),
    SAME(REC_F_QUERY_ID, "1e3"),
    QUOTED(REC_F_QUERY_ID, "12a"),
    SETJ(REC_F_QUERY_ID, "\"\""),
    QUOTED(REC_F_QUERY_ID, " 12"),
    QUOTED(REC_F_QUERY_ID, "+12"),
    SETJ(REC_F_QUERY_ID, "null"),
    SETJ(REC_F_QUERY_ID, "true"),
    SETJ(REC_F_QUERY_ID, "[12]"),
    QUOTED(REC_F_QUERY_ID, "0x1F"),
    SAME(REC_F_QUERY_ID, "-0"),
};
static const struct variant v_bad_query[] = {
    SETJ(REC_F_QUERY, "42"),   SETJ(REC_F_QUERY, "null"),
    SETJ(REC_F_QUERY, "true"), SETJ(REC_F_QUERY, "[\"running shoes\"]"),
    SETJ(REC_F_QUERY, "{\"text\":\"shoes\"}"), SETJ(REC_F_QUERY, "-1.5"),
};
static const struct variant v_empty_query[] = {
    QUOTED(REC_F_QUERY, ""),
    QUOTED(REC_F_QUERY, "   "),
    SETB(REC_F_QUERY, "\"\\t \\n\\r\"", " \v\f "),
    SETB(REC_F_QUERY, "\" \\u000b\\f \"", "\v"),
    SETB(REC_F_QUERY, "\"\\u0020\\u0009\"", "\f\f"),
};
static const struct variant v_query_too_long[] = {
    OPB(OP_LONG, REC_F_QUERY, REC_TERM_MAX + 1),
    OPB(OP_LONG_WS, REC_F_QUERY, REC_TERM_MAX + 1),
    OPB(OP_LONG_MB, REC_F_QUERY, REC_TERM_MAX + 2),
    OPB(OP_LONG, REC_F_QUERY, 2000),
};
static const struct variant v_long_query_ok[] = {
    OPB(OP_LONG, REC_F_QUERY, REC_TERM_MAX),
    OPB(OP_LONG_WS, REC_F_QUERY, REC_TERM_MAX),
    OPB(OP_LONG_MB, REC_F_QUERY, REC_TERM_MAX - 1),
    OPB(OP_LONG_PAD, REC_F_QUERY, 600),
    OPB(OP_LONG_PAD, REC_F_QUERY, 5000),
};
static const struct variant v_bad_ad_ids[] = {
    SETJ(REC_F_AD_IDS, "5"),
    SETJ(REC_F_AD_IDS, "\"1001,1002\""),
    SETB(REC_F_AD_IDS, "[1001,\"x\"]", "1001,x"),
    LISTED(REC_F_AD_IDS, "1001,-1"),
    LISTED(REC_F_AD_IDS, "1.5"),
    LISTED(REC_F_AD_IDS, "18446744073709551616"),
    SETJ(REC_F_AD_IDS, "[null]"),
    SETJ(REC_F_AD_IDS, "[[1001]]"),
    SETJ(REC_F_AD_IDS, "{}"),
    SETJ(REC_F_AD_IDS, "[\"\"]"),
    SETJ(REC_F_AD_IDS, "[true]"),
    LISTED(REC_F_AD_IDS, "1e3"),
    SETT(REC_F_AD_IDS, "1001,,1002"),
    SETT(REC_F_AD_IDS, "1001,"),
    SETT(REC_F_AD_IDS, ",1001"),
};
static const struct variant v_too_many_ads[] = {
    OPB(OP_ADS, REC_F_AD_IDS, REC_ADS_MAX + 1),
    OPB(OP_ADS, REC_F_AD_IDS, 40),
    OPB(OP_ADS_DUP, REC_F_AD_IDS, REC_ADS_MAX + 1),
};
static const struct variant v_ads_ok[] = {
    OPB(OP_ADS, REC_F_AD_IDS, REC_ADS_MAX),
    OPB(OP_ADS_DUP, REC_F_AD_IDS, REC_ADS_MAX),
    OPB(OP_ADS_DUP, REC_F_AD_IDS, 3),
    OPB(OP_ADS_SPECIAL, REC_F_AD_IDS, 0),
};
static const struct variant v_query_odd_ok[] = {
    OPB(OP_MAXID, REC_F_QUERY_ID, 0),
    OPB(OP_ZEROS, REC_F_QUERY_ID, 5),
    OPB(OP_ZEROS, REC_F_AD_IDS, 3),
    OPB(OP_KEYESC, F_NONE, 0),
    OPB(OP_TIMESTR, REC_F_TIME, 0),
    OPB(OP_DEEP, F_NONE, 3000),
    {OP_EXTRA, F_NONE, FB, 0, NULL, "\"meta\":1,\"meta\":{\"again\":1}", NULL},
    {OP_EXTRA, F_NONE, FB, 0, NULL,
     "\"Query_ID\":\"x\",\"ad_ids \":5,\"TIME\":null,\"click_id\":{}", NULL},
    {OP_EXTRA, F_NONE, FB, 0, NULL, "\"v\":\"\\ud800 lone, ignored\"", NULL},
};
static const struct variant v_click_odd_ok[] = {
    QUOTED(REC_F_CLICK_ID, ID64),
    SAME(REC_F_CLICK_ID, "18446744073709551615"),
    SAME(REC_F_CLICK_ID, "0"),
    SETB(REC_F_CLICK_ID, "\"c-\\u00e9\\ud83d\\ude00\"",
         "c-\xc3\xa9\xf0\x9f\x98\x80"),
    OPB(OP_ZEROS, REC_F_QUERY_ID, 7),
    OPB(OP_ZEROS, REC_F_AD_ID, 4),
    OPB(OP_KEYESC, F_NONE, 0),
    OPB(OP_TIMESTR, REC_F_TIME, 0),
    {OP_EXTRA, F_NONE, FB, 0, NULL,
     "\"ad_ids\":[1,2],\"query\":\"ignored in a click\"", NULL},
};
static const struct variant v_bad_ad_id[] = {
    SAME(REC_F_AD_ID, "-1"),
    QUOTED(REC_F_AD_ID, "x"),
    SAME(REC_F_AD_ID, "1.5"),
    SAME(REC_F_AD_ID, "18446744073709551616"),
    SETJ(REC_F_AD_ID, "[1001]"),
    SETJ(REC_F_AD_ID, "null"),
    SETJ(REC_F_AD_ID, "true"),
    SETJ(REC_F_AD_ID, "\"\""),
    SETT(REC_F_AD_ID, "1001,1002"),
};
static const struct variant v_bad_click_id[] = {
    SETJ(REC_F_CLICK_ID, "\"\""),
    QUOTED(REC_F_CLICK_ID, ID64 "X"),
    SETJ(REC_F_CLICK_ID, "{}"),
    SETJ(REC_F_CLICK_ID, "-1"),
    SETJ(REC_F_CLICK_ID, "1.5"),
    SETJ(REC_F_CLICK_ID, "[\"c-1\"]"),
    SETJ(REC_F_CLICK_ID, "true"),
    SETJ(REC_F_CLICK_ID, "18446744073709551616"),
    SETJ(REC_F_CLICK_ID, "\"c-\\ud83d\""),
    SETT(REC_F_CLICK_ID, ""),
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
int gen_cases_schedule(struct gen *g)
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
void gen_cases_run(struct gen *g, uint64_t i)
{
    while (g->next_sched < g->n_sched &&
           g->next_sched * g->n_queries / g->n_sched <= i) {
        struct slot s = g->sched[g->next_sched++];
        case_table[s.c].run(g, &case_table[s.c], s.inst);
    }
}
