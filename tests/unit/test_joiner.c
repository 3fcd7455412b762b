/* Unit tests of joiner: impression and click deltas, the join window,
 * duplicates, clicks that arrive before their query, expiry of waiting
 * clicks, pending round trips, and a long run that forces the waiting
 * list to be compacted many times. A stub sink records what comes out. */
#include "check.h"
#include "joiner.h"

#include <stdlib.h>
#include <unistd.h>

#define T0 INT64_C(1763805600123) /* 2025-11-22T10:00:00.123Z */
#define M0 (uint32_t)(T0 / 60000)
#define WINDOW INT64_C(86400000)
#define TIMEOUT INT64_C(600000)

static char tmp_dir[64];

/* ---- the stub sink ---- */

struct event {
    int is_reject;
    struct count_delta d;    /* when a delta */
    enum rec_reason reason;  /* when a reject */
    struct join_src src;
};

struct sink_log {
    struct event *ev;
    size_t n, cap;
};

static int log_push(struct sink_log *log, const struct event *e)
{
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 64;
        log->ev = realloc(log->ev, log->cap * sizeof *log->ev);
        if (!log->ev)
            abort();
    }
    log->ev[log->n++] = *e;
    return 0;
}

static int stub_emit(void *ctx, const struct count_delta *d)
{
    return log_push(ctx, &(struct event){.d = *d});
}

static void stub_reject(void *ctx, enum rec_reason reason,
                        struct join_src src)
{
    log_push(ctx, &(struct event){.is_reject = 1, .reason = reason,
                                  .src = src});
}

/* ---- fixture: a store, a dictionary, one joiner ---- */

struct fixture {
    struct qs *qs;
    struct terms *terms;
    struct joiner *j;
    struct sink_log log;
    struct join_sink sink;
};

static int fixture_open(struct fixture *f, int64_t horizon_ms,
                        int64_t timeout_ms)
{
    char err[CTRD_ERR_LEN];
    *f = (struct fixture){0};
    struct joiner_config cfg = {WINDOW, timeout_ms};
    if (qs_open(tmp_dir, 1, horizon_ms, &f->qs, err) != 0 ||
        terms_open(tmp_dir, 0, &f->terms, err) != 0 ||
        joiner_create(0, f->qs, f->terms, &cfg, &f->j) != 0) {
        CHECK_FAIL_AT("fixture: %s", err);
        return -1;
    }
    f->sink = (struct join_sink){&f->log, stub_emit, stub_reject};
    return 0;
}

static void fixture_close(struct fixture *f)
{
    joiner_free(f->j);
    terms_close(f->terms);
    qs_close(f->qs);
    free(f->log.ev);
}

static struct rec_query make_query(uint64_t id, int64_t time_ms,
                                   const char *term, unsigned n_ads,
                                   const uint64_t *ads)
{
    struct rec_query q = {.query_id = id, .time_ms = time_ms,
                          .n_ads = n_ads};
    q.term_len = (uint32_t)strlen(term);
    memcpy(q.term, term, q.term_len);
    if (n_ads)
        memcpy(q.ads, ads, n_ads * sizeof *ads);
    return q;
}

static int add_query(struct fixture *f, uint64_t id, int64_t time_ms,
                     const char *term, unsigned n_ads, const uint64_t *ads,
                     uint64_t line)
{
    struct rec_query q = make_query(id, time_ms, term, n_ads, ads);
    return joiner_add_query(f->j, &q, (struct join_src){1, line}, &f->sink);
}

static int add_click(struct fixture *f, uint64_t id, uint64_t ad,
                     int64_t time_ms, int64_t now_ms, uint64_t line)
{
    struct rec_click c = {id, ad, time_ms};
    return joiner_add_click(f->j, &c, (struct join_src){2, line}, now_ms,
                            &f->sink);
}

static uint32_t term_id(struct fixture *f, const char *term)
{
    uint32_t id = UINT32_MAX;
    if (terms_find(f->terms, term, (uint32_t)strlen(term), &id) != 0)
        CHECK_FAIL_AT("term '%s' not interned", term);
    return id;
}

/* Checks event i is a delta with these fields (line: the caller's). */
static void expect_delta(const struct fixture *f, size_t i, uint64_t ad,
                         uint32_t term, uint32_t minute, uint32_t click,
                         int line)
{
    const struct event *e = i < f->log.n ? &f->log.ev[i] : NULL;
    if (!e || e->is_reject || e->d.ad_id != ad || e->d.term_id != term ||
        e->d.minute != minute || e->d.is_click != click)
        CHECK_FAIL_AT("line %d: event %zu of %zu: want delta ad %llu term %u "
                      "minute %u click %u", line, i, f->log.n,
                      (unsigned long long)ad, term, minute, click);
}

static void expect_reject(const struct fixture *f, size_t i,
                          enum rec_reason why, uint64_t src_line, int line)
{
    const struct event *e = i < f->log.n ? &f->log.ev[i] : NULL;
    if (!e || !e->is_reject || e->reason != why || e->src.line != src_line)
        CHECK_FAIL_AT("line %d: event %zu of %zu: want reject %s of line %llu",
                      line, i, f->log.n, rec_reason_name(why),
                      (unsigned long long)src_line);
}

#define CHECK_DELTA(f, i, ad, term, minute, click) \
    expect_delta(f, i, ad, term, minute, click, __LINE__)
#define CHECK_REJECT(f, i, why, src_line) \
    expect_reject(f, i, why, src_line, __LINE__)

/* ---- tests ---- */

static void test_query_impressions(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    static const uint64_t ads[] = {1001, 2002, 0};
    CHECK_EQ_I64(add_query(&f, 7, T0, "running shoes", 3, ads, 1), 0);
    CHECK_EQ_U64(f.log.n, 3);
    uint32_t t = term_id(&f, "running shoes");
    CHECK_DELTA(&f, 0, 1001, t, M0, 0);
    CHECK_DELTA(&f, 1, 2002, t, M0, 0);
    CHECK_DELTA(&f, 2, 0, t, M0, 0);
    /* Minute boundaries: floor(time / 60000). */
    static const uint64_t one[] = {5};
    add_query(&f, 8, 1763805599999, "b", 1, one, 2);
    add_query(&f, 9, 1763805600000, "b", 1, one, 3);
    add_query(&f, 10, 0, "b", 1, one, 4);
    CHECK_EQ_U64(f.log.n, 6);
    CHECK_EQ_U64(f.log.ev[3].d.minute, 29396759);
    CHECK_EQ_U64(f.log.ev[4].d.minute, 29396760);
    CHECK_EQ_U64(f.log.ev[5].d.minute, 0);
    CHECK_EQ_U64(f.log.ev[3].d.term_id, term_id(&f, "b"));
    /* No ads: accepted, no deltas. */
    CHECK_EQ_I64(add_query(&f, 11, T0, "c", 0, NULL, 5), 0);
    CHECK_EQ_U64(f.log.n, 6);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->queries_accepted, 5);
    CHECK_EQ_U64(st->queries_duplicate, 0);
    fixture_close(&f);
}

static void test_click_after_query(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    static const uint64_t ads[] = {1001, 2002};
    add_query(&f, 7, T0, "shoes", 2, ads, 1);
    uint32_t t = term_id(&f, "shoes");
    /* 5 minutes later: counted at the query's minute. */
    CHECK_EQ_I64(add_click(&f, 7, 2002, T0 + 300000, T0, 1), 0);
    CHECK_EQ_U64(f.log.n, 3);
    CHECK_DELTA(&f, 2, 2002, t, M0, 1);
    /* Same pair again, any time in the window: a duplicate, no delta. */
    CHECK_EQ_I64(add_click(&f, 7, 2002, T0 + 300001, T0, 2), 0);
    CHECK_EQ_I64(add_click(&f, 7, 2002, T0, T0, 3), 0);
    CHECK_EQ_U64(f.log.n, 3);
    /* The other ad of the same query is its own impression. */
    CHECK_EQ_I64(add_click(&f, 7, 1001, T0 + 1, T0, 4), 0);
    CHECK_DELTA(&f, 3, 1001, t, M0, 1);
    /* An ad the query did not show. */
    CHECK_EQ_I64(add_click(&f, 7, 3003, T0 + 1, T0, 5), 0);
    CHECK_EQ_U64(f.log.n, 5);
    CHECK_REJECT(&f, 4, REC_CLICK_AD_NOT_SHOWN, 5);
    CHECK_EQ_U64(f.log.ev[4].src.input, 2);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->clicks_joined, 2);
    CHECK_EQ_U64(st->clicks_duplicate, 2);
    CHECK_EQ_U64(st->clicks_rejected, 1);
    CHECK_EQ_U64(st->clicks_deferred, 0);
    CHECK_EQ_U64(joiner_pending_count(f.j), 0);
    fixture_close(&f);
}

static void test_window_edges(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    static const uint64_t ads[] = {1, 2, 3, 4};
    add_query(&f, 7, T0, "edges", 4, ads, 1);
    uint32_t t = term_id(&f, "edges");
    f.log.n = 0;
    static const struct {
        uint64_t ad;
        int64_t time_ms;
        int ok;
    } rows[] = {
        {1, T0 - 60000, 1},      /* earliest valid */
        {2, T0 - 60001, 0},      /* 1 ms too early */
        {3, T0 + WINDOW, 1},     /* latest valid */
        {4, T0 + WINDOW + 1, 0}, /* 1 ms too late */
        {2, T0 - 59999, 1},      /* a rejected click does not use the pair */
        {4, T0 + WINDOW - 1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t before = f.log.n;
        add_click(&f, 7, rows[i].ad, rows[i].time_ms, T0, 10 + i);
        if (f.log.n != before + 1) {
            CHECK_FAIL_AT("row %zu: %zu events", i, f.log.n - before);
            continue;
        }
        if (rows[i].ok)
            CHECK_DELTA(&f, before, rows[i].ad, t, M0, 1);
        else
            CHECK_REJECT(&f, before, REC_CLICK_OUTSIDE_WINDOW, 10 + i);
    }
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->clicks_joined, 4);
    CHECK_EQ_U64(st->clicks_rejected, 2);
    fixture_close(&f);
}

static void test_duplicate_query(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    static const uint64_t first[] = {1, 2}, second[] = {3};
    add_query(&f, 7, T0, "first", 2, first, 1);
    CHECK_EQ_I64(add_query(&f, 7, T0 + 5, "second", 1, second, 2), 0);
    CHECK_EQ_I64(add_query(&f, 7, T0, "first", 2, first, 3), 0);
    CHECK_EQ_U64(f.log.n, 2); /* only the first one's impressions */
    uint32_t id;
    CHECK_EQ_I64(terms_find(f.terms, "second", 6, &id), CTRD_ENOTFOUND);
    /* The stored query is the first: ad 3 was not shown. */
    add_click(&f, 7, 3, T0 + 10, T0, 4);
    CHECK_REJECT(&f, 2, REC_CLICK_AD_NOT_SHOWN, 4);
    add_click(&f, 7, 2, T0 + 10, T0, 5);
    CHECK_DELTA(&f, 3, 2, term_id(&f, "first"), M0, 1);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->queries_accepted, 1);
    CHECK_EQ_U64(st->queries_duplicate, 2);
    fixture_close(&f);
}

static void test_query_too_old(void)
{
    struct fixture f;
    /* Horizon: hours before T0's hour are gone. */
    if (fixture_open(&f, T0, TIMEOUT) != 0)
        return;
    static const uint64_t ads[] = {1};
    int64_t hour_start = T0 / 3600000 * 3600000;
    CHECK_EQ_I64(add_query(&f, 7, hour_start - 1, "old", 1, ads, 1), 0);
    CHECK_EQ_U64(f.log.n, 1);
    CHECK_REJECT(&f, 0, REC_QUERY_TOO_OLD, 1);
    CHECK_EQ_I64(add_query(&f, 8, hour_start, "new", 1, ads, 2), 0);
    CHECK_EQ_U64(f.log.n, 2);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->queries_rejected, 1);
    CHECK_EQ_U64(st->queries_accepted, 1);
    fixture_close(&f);
}

static void test_click_before_query(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    int64_t now = 1000;
    /* Clicks of query 7, in arrival order. */
    CHECK_EQ_I64(add_click(&f, 7, 1, T0 + WINDOW + 1, now, 1), 0); /* late */
    CHECK_EQ_I64(add_click(&f, 7, 1, T0 + 10, now, 2), 0);  /* joins */
    CHECK_EQ_I64(add_click(&f, 7, 1, T0 + 20, now, 3), 0);  /* duplicate */
    CHECK_EQ_I64(add_click(&f, 7, 9, T0 + 20, now, 4), 0);  /* not shown */
    CHECK_EQ_I64(add_click(&f, 7, 2, T0 - 60000, now, 5), 0); /* joins */
    CHECK_EQ_I64(add_click(&f, 8, 1, T0, now, 6), 0); /* other query */
    CHECK_EQ_U64(f.log.n, 0);
    CHECK_EQ_U64(joiner_pending_count(f.j), 6);
    CHECK_EQ_U64(joiner_stats(f.j)->clicks_deferred, 6);
    static const uint64_t ads[] = {1, 2};
    CHECK_EQ_I64(add_query(&f, 7, T0, "early", 2, ads, 7), 0);
    uint32_t t = term_id(&f, "early");
    /* Impressions, then the waiting clicks judged in arrival order. */
    CHECK_EQ_U64(f.log.n, 6);
    CHECK_DELTA(&f, 0, 1, t, M0, 0);
    CHECK_DELTA(&f, 1, 2, t, M0, 0);
    CHECK_REJECT(&f, 2, REC_CLICK_OUTSIDE_WINDOW, 1);
    CHECK_DELTA(&f, 3, 1, t, M0, 1);
    CHECK_REJECT(&f, 4, REC_CLICK_AD_NOT_SHOWN, 4);
    CHECK_DELTA(&f, 5, 2, t, M0, 1);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->clicks_joined, 2);
    CHECK_EQ_U64(st->clicks_duplicate, 1);
    CHECK_EQ_U64(st->clicks_rejected, 2);
    CHECK_EQ_U64(joiner_pending_count(f.j), 1); /* query 8's click */
    /* Later clicks of query 7 join at once. */
    add_click(&f, 7, 2, T0 + 30, now, 8);
    CHECK_EQ_U64(st->clicks_duplicate, 2);
    CHECK_EQ_U64(st->clicks_deferred, 6);
    fixture_close(&f);
}

static void test_expiry(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    int64_t now = 5000;
    add_click(&f, 7, 1, T0, now, 1);
    add_click(&f, 8, 1, T0, now + 10, 2);
    joiner_expire(f.j, now + TIMEOUT); /* waited exactly the timeout */
    CHECK_EQ_U64(joiner_pending_count(f.j), 2);
    joiner_expire(f.j, now + TIMEOUT + 1);
    CHECK_EQ_U64(joiner_pending_count(f.j), 1);
    CHECK_EQ_U64(joiner_stats(f.j)->clicks_unjoined, 1);
    static const uint64_t ads[] = {1};
    add_query(&f, 7, T0, "gone", 1, ads, 3); /* its click expired */
    add_query(&f, 8, T0, "kept", 1, ads, 4);
    CHECK_EQ_U64(f.log.n, 3);
    CHECK_DELTA(&f, 0, 1, term_id(&f, "gone"), M0, 0);
    CHECK_DELTA(&f, 1, 1, term_id(&f, "kept"), M0, 0);
    CHECK_DELTA(&f, 2, 1, term_id(&f, "kept"), M0, 1);
    joiner_expire(f.j, INT64_MAX / 2);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->clicks_unjoined, 1);
    CHECK_EQ_U64(st->clicks_joined, 1);
    CHECK_EQ_U64(joiner_pending_count(f.j), 0);
    fixture_close(&f);
}

static int failing_emit(void *ctx, const struct count_delta *d)
{
    (void)ctx;
    (void)d;
    return CTRD_ENOMEM;
}

/* A sink that fails stops the joiner with the sink's code. */
static void test_sink_error(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    f.sink.emit = failing_emit;
    static const uint64_t ads[] = {1};
    CHECK_EQ_I64(add_query(&f, 7, T0, "x", 1, ads, 1), CTRD_ENOMEM);
    CHECK_EQ_I64(add_click(&f, 7, 1, T0, T0, 2), CTRD_ENOMEM);
    fixture_close(&f);
}

struct pending_list {
    struct pending_click p[8];
    size_t n;
};

static int collect_pending(void *ctx, const struct pending_click *p)
{
    struct pending_list *l = ctx;
    if (l->n < 8)
        l->p[l->n] = *p;
    l->n++;
    return 0;
}

static int stop_after_one(void *ctx, const struct pending_click *p)
{
    (void)p;
    ++*(int *)ctx;
    return -42;
}

static void test_pending_round_trip(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, TIMEOUT) != 0)
        return;
    static const struct pending_click in[] = {
        {UINT64_MAX, 0, T0, 100, {UINT32_MAX, 17}},
        {5, UINT64_MAX, 0, 200, {UINT32_MAX, 0}},
        {5, 3, T0 + 1, 300, {UINT32_MAX, UINT64_MAX}},
    };
    for (size_t i = 0; i < 3; i++)
        CHECK_EQ_I64(joiner_restore_pending(f.j, &in[i]), 0);
    CHECK_EQ_U64(joiner_pending_count(f.j), 3);
    struct pending_list out = {.n = 0};
    CHECK_EQ_I64(joiner_foreach_pending(f.j, collect_pending, &out), 0);
    CHECK_EQ_U64(out.n, 3);
    for (size_t i = 0; i < 3 && i < out.n; i++) {
        const struct pending_click *a = &in[i], *b = &out.p[i];
        if (a->query_id != b->query_id || a->ad_id != b->ad_id ||
            a->time_ms != b->time_ms || a->arrived_ms != b->arrived_ms ||
            a->src.input != b->src.input || a->src.line != b->src.line)
            CHECK_FAIL_AT("pending %zu differs after the round trip", i);
    }
    int calls = 0;
    CHECK_EQ_I64(joiner_foreach_pending(f.j, stop_after_one, &calls), -42);
    CHECK_EQ_I64(calls, 1);
    /* Restored clicks expire by their own arrival time. */
    joiner_expire(f.j, 200 + TIMEOUT + 1);
    CHECK_EQ_U64(joiner_pending_count(f.j), 1);
    out.n = 0;
    joiner_foreach_pending(f.j, collect_pending, &out);
    CHECK(out.n == 1 && out.p[0].arrived_ms == 300);
    /* ... and join like any other waiting click. */
    static const uint64_t ads[] = {3};
    add_query(&f, 5, T0, "restored", 1, ads, 1);
    CHECK_EQ_U64(f.log.n, 2);
    CHECK_DELTA(&f, 1, 3, term_id(&f, "restored"), M0, 1);
    CHECK_EQ_U64(joiner_pending_count(f.j), 0);
    fixture_close(&f);
}

/* One old click keeps waiting while thousands of others join at once:
 * the dead entries behind it are compacted away, and the old click's
 * chain (one click before, one after the compaction) stays in order. */
static void test_joined_clicks_compacted(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, INT64_C(1) << 40) != 0)
        return;
    add_click(&f, 1, 1, T0 + WINDOW + 1, 0, 1); /* outside the window */
    /* 1500 clicks on one impression wait, then their query comes. */
    uint64_t hot = 9999;
    for (uint64_t k = 0; k < 1500; k++)
        add_click(&f, hot, hot, T0 + (int64_t)k, 1, 100000 + k);
    CHECK_EQ_U64(joiner_pending_count(f.j), 1501);
    add_query(&f, hot, T0, "hot", 1, &hot, 9999);
    CHECK_EQ_U64(joiner_pending_count(f.j), 1);
    CHECK_EQ_U64(joiner_stats(f.j)->clicks_joined, 1);
    CHECK_EQ_U64(joiner_stats(f.j)->clicks_duplicate, 1499);
    for (uint64_t q = 2; q <= 5000; q++) {
        uint64_t ad = q;
        add_click(&f, q, ad, T0 + 5, (int64_t)q, q);
        add_click(&f, q, ad, T0 + 6, (int64_t)q, q); /* a duplicate */
        add_query(&f, q, T0, "many", 1, &ad, q);
        if (q == 3000)
            add_click(&f, 1, 1, T0 + 1, (int64_t)q, 2); /* valid */
        joiner_expire(f.j, (int64_t)q);
    }
    CHECK_EQ_U64(joiner_pending_count(f.j), 2);
    struct pending_list out = {.n = 0};
    joiner_foreach_pending(f.j, collect_pending, &out);
    CHECK(out.n == 2 && out.p[0].src.line == 1 && out.p[1].src.line == 2);
    const struct join_stats *st = joiner_stats(f.j);
    CHECK_EQ_U64(st->clicks_joined, 1 + 4999);
    CHECK_EQ_U64(st->clicks_duplicate, 1499 + 4999);
    size_t before = f.log.n;
    static const uint64_t ads[] = {1};
    add_query(&f, 1, T0, "old", 1, ads, 1);
    CHECK_EQ_U64(f.log.n, before + 3);
    CHECK_DELTA(&f, before, 1, term_id(&f, "old"), M0, 0);
    CHECK_REJECT(&f, before + 1, REC_CLICK_OUTSIDE_WINDOW, 1);
    CHECK_DELTA(&f, before + 2, 1, term_id(&f, "old"), M0, 1);
    CHECK_EQ_U64(joiner_pending_count(f.j), 0);
    fixture_close(&f);
}

/* ---- a long run against a model ---- */

#define N_Q 10000u
#define STEP_MS 10
#define LONG_TIMEOUT INT64_C(20000) /* 2000 steps */
#define MAX_DELAY 4000u             /* steps between a query's clicks and it */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= UINT64_C(0x7fb5d329728ea185);
    x ^= x >> 27;
    return x;
}

/* Query q (1..N_Q): clicks arrive at step q; the query at q + delay(q). */
static unsigned delay_of(uint64_t q)
{
    return (unsigned)(mix(q) % (MAX_DELAY + 1));
}

static int64_t qtime(uint64_t q)
{
    return T0 + (int64_t)q * 7000;
}

/* The clicks of query q: 1..4 of them, on ads q*10+1, q*10+2 (shown),
 * q*10+9 (not shown), sometimes one outside the window. */
static unsigned clicks_of(uint64_t q, struct rec_click *out)
{
    uint64_t r = mix(q + 12345);
    unsigned n = 1 + (unsigned)(r % 4);
    for (unsigned k = 0; k < n; k++) {
        uint64_t pick = (r >> (8 + 4 * k)) % 8;
        uint64_t ad = pick < 4 ? q * 10 + 1 : pick < 7 ? q * 10 + 2
                                                       : q * 10 + 9;
        int64_t t = qtime(q) + (int64_t)(pick * 1000);
        if (((r >> (40 + k)) & 15) == 0)
            t = qtime(q) + WINDOW + 1;
        out[k] = (struct rec_click){q, ad, t};
    }
    return n;
}

struct model {
    uint64_t joined, duplicate, rejected, unjoined;
    uint64_t click_deltas[N_Q + 1][2]; /* per query, per shown ad */
};

/* What the joiner must do with query q's clicks. */
static void model_query(struct model *m, uint64_t q)
{
    struct rec_click c[4];
    unsigned n = clicks_of(q, c);
    if (delay_of(q) * (uint64_t)STEP_MS > (uint64_t)LONG_TIMEOUT) {
        m->unjoined += n;
        return;
    }
    int counted[2] = {0, 0};
    for (unsigned k = 0; k < n; k++) {
        unsigned slot = (unsigned)(c[k].ad_id % 10);
        if (slot == 9 || c[k].time_ms > qtime(q) + WINDOW) {
            m->rejected++;
        } else if (counted[slot - 1]) {
            m->duplicate++;
        } else {
            counted[slot - 1] = 1;
            m->joined++;
            m->click_deltas[q][slot - 1]++;
        }
    }
}

/* Clicks that must be waiting after step t. */
static uint64_t model_pending(uint64_t t)
{
    uint64_t n = 0;
    struct rec_click c[4];
    for (uint64_t q = 1; q <= N_Q && q <= t; q++) {
        if (q + delay_of(q) > t && (t - q) * STEP_MS <= (uint64_t)LONG_TIMEOUT)
            n += clicks_of(q, c);
    }
    return n;
}

static int pending_oldest_first(void *ctx, const struct pending_click *p)
{
    int64_t *last = ctx;
    if (p->arrived_ms < *last)
        return -1;
    *last = p->arrived_ms;
    return 0;
}

static void test_many_waiting_clicks(void)
{
    struct fixture f;
    if (fixture_open(&f, INT64_MIN, LONG_TIMEOUT) != 0)
        return;
    struct model *m = calloc(1, sizeof *m);
    /* arrivals[t]: the queries that arrive at step t, as a linked list. */
    uint32_t *head = calloc(N_Q + MAX_DELAY + 2, sizeof *head);
    uint32_t *next = calloc(N_Q + 1, sizeof *next);
    for (uint32_t q = N_Q; q >= 1; q--) {
        uint32_t t = q + delay_of(q);
        next[q] = head[t];
        head[t] = q;
    }
    uint64_t events_ok = 0, clicks_total = 0, max_pending = 0;
    unsigned pending_checks_bad = 0;
    for (uint64_t t = 1; t <= N_Q + MAX_DELAY + 1; t++) {
        int64_t now = (int64_t)t * STEP_MS;
        joiner_expire(f.j, now);
        if (t <= N_Q) {
            struct rec_click c[4];
            unsigned n = clicks_of(t, c);
            for (unsigned k = 0; k < n; k++)
                joiner_add_click(f.j, &c[k], (struct join_src){2, t * 10 + k},
                                 now, &f.sink);
            clicks_total += n;
        }
        for (uint32_t q = head[t]; q; q = next[q]) {
            uint64_t ads[2] = {q * 10 + 1, (uint64_t)q * 10 + 2};
            char term[16];
            snprintf(term, sizeof term, "t%u", q % 50);
            size_t before = f.log.n;
            add_query(&f, q, qtime(q), term, 2, ads, q);
            model_query(m, q);
            /* Every delta is for this query, at its minute, its term. */
            uint32_t tid = term_id(&f, term);
            for (size_t i = before; i < f.log.n; i++) {
                const struct event *e = &f.log.ev[i];
                if (e->is_reject) {
                    events_ok += e->src.line / 10 == q;
                    continue;
                }
                events_ok += e->d.ad_id / 10 == q && e->d.term_id == tid &&
                             e->d.minute == (uint32_t)(qtime(q) / 60000);
                if (e->d.is_click)
                    m->click_deltas[q][e->d.ad_id % 10 - 1]--;
            }
        }
        uint64_t pending = joiner_pending_count(f.j);
        if (pending > max_pending)
            max_pending = pending;
        if (t % 997 == 0) {
            pending_checks_bad += pending != model_pending(t);
            int64_t last = INT64_MIN;
            pending_checks_bad +=
                joiner_foreach_pending(f.j, pending_oldest_first, &last) != 0;
        }
    }
    const struct join_stats *st = joiner_stats(f.j);
    printf("  %llu clicks: %llu joined, %llu duplicate, %llu rejected, "
           "%llu unjoined; at most %llu waiting\n",
           (unsigned long long)clicks_total,
           (unsigned long long)st->clicks_joined,
           (unsigned long long)st->clicks_duplicate,
           (unsigned long long)st->clicks_rejected,
           (unsigned long long)st->clicks_unjoined,
           (unsigned long long)max_pending);
    CHECK_EQ_U64(st->clicks_deferred, clicks_total);
    CHECK_EQ_U64(st->clicks_joined, m->joined);
    CHECK_EQ_U64(st->clicks_duplicate, m->duplicate);
    CHECK_EQ_U64(st->clicks_rejected, m->rejected);
    CHECK_EQ_U64(st->clicks_unjoined, m->unjoined);
    CHECK_EQ_U64(joiner_pending_count(f.j), 0);
    CHECK_EQ_U64(st->queries_accepted, N_Q);
    CHECK_EQ_U64(events_ok, f.log.n);
    CHECK_EQ_U64(pending_checks_bad, 0);
    CHECK(max_pending > 2048); /* enough to compact the list repeatedly */
    unsigned wrong = 0;
    for (uint64_t q = 1; q <= N_Q; q++)
        wrong += m->click_deltas[q][0] != 0 || m->click_deltas[q][1] != 0;
    CHECK_EQ_U64(wrong, 0);
    free(head);
    free(next);
    free(m);
    fixture_close(&f);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-joiner-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_query_impressions);
    RUN(test_click_after_query);
    RUN(test_window_edges);
    RUN(test_duplicate_query);
    RUN(test_query_too_old);
    RUN(test_click_before_query);
    RUN(test_expiry);
    RUN(test_pending_round_trip);
    RUN(test_sink_error);
    RUN(test_joined_clicks_compacted);
    RUN(test_many_waiting_clicks);
    rmdir(tmp_dir);
    return check_done();
}
