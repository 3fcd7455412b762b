/* gen: `ctrd gen`, the driver -- command line, the run, and the pieces that
 * order and count lines; see gen.h (public) and gen_internal.h (the files).
 *
 * Owns the struct gen of a run: gen_open() allocates it all (buffers,
 * tables, writers), gen_close() frees it all, first error wins. Invariants:
 * every line is counted (struct tally) exactly when it is written or held;
 * the click file is in click-time order. Threads: one, the caller's.
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
#include "gen_internal.h"

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define GEN_LINE_CAP (256 * 1024) /* longest line built (+ slack) */
#define GEN_LATE_QUERY_MS 30000   /* queries arrive up to this late */
#define GEN_HOLD_MS (GEN_LATE_QUERY_MS + GEN_EARLY_MAX_MS + 30000)
#define GEN_MIN_START_MS 86400000 /* local times stay after 1970 */
#define GEN_MAX_QUERIES UINT64_C(100000000000)
#define GEN_TRICK_ID_BASE (UINT64_C(1) << 63) /* tricky id counters */
#define GEN_TRICK_CLICK_BASE UINT64_C(900000000000)
#define GEN_DELAY_MEDIAN_MS 15000.0
#define GEN_DELAY_SIGMA 2.0
/* Part p counts query ids from p << GEN_PART_SHIFT (a part has fewer than
 * 2^40 queries, GEN_MAX_QUERIES) and draws from the random streams
 * numbered p * GEN_PART_STREAMS + its own (all below 100; every part
 * shares the vocabulary's, 100, and the accounts', gen_account.c). */
#define GEN_PART_SHIFT 40
#define GEN_PART_STREAMS 1000

const struct variant gen_v_none = {OP_NONE, F_NONE, FB, 0, NULL, NULL, NULL};

/* ---- output files, with copies held back for later re-delivery -------- */

/* arr (n elements of elem bytes, room for *cap) with room for one more:
 * arr itself, or moved with *cap doubled (from first); NULL when out of
 * memory, arr unchanged. */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
    size_t want = *cap ? 2 * *cap : first;
    void *p;

    if (n < *cap)
        return arr;
    if ((p = realloc(arr, want * elem)) != NULL)
        *cap = want;
    return p;
}

static void out_put(struct out *o, const void *p, size_t n)
{
    fs_writer_put(o->w, p, n);
}

static void out_hold(struct out *o, const char *p, size_t n, uint64_t due)
{
    char *bytes = malloc(n);
    struct copy *c =
        grow(o->copies, o->n_copies, &o->cap_copies, sizeof *c, 16);

    if (!bytes || !c) {
        free(bytes);
        o->oom = 1;
        return;
    }
    o->copies = c;
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

/* ---- counting and writing lines ----------------------------------------- */

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

void gen_put_line(struct gen *g, int log, int fmt, int expect,
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

void gen_emit_query(struct gen *g, int tricky, const struct grec *x,
                    const struct variant *v, int expect, uint64_t due)
{
    uint32_t impressions = expect == REC_OK ? gen_distinct_ads(x) : 0;
    for (int fmt = 0; fmt < FMT_N; fmt++) {
        if (!fmt_on(g, v, fmt))
            continue;
        gen_spell(g, tricky, fmt, x, v);
        gen_put_line(g, LOG_Q, fmt, expect, impressions, due);
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
    struct event *h = grow(g->heap, g->n_heap, &g->cap_heap, sizeof *h, 1024);
    size_t i;

    if (!h) {
        g->oom = 1;
        return;
    }
    g->heap = h;
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

void gen_push_click(struct gen *g, int tricky, uint64_t query_id, uint64_t ad,
                    int64_t time_ms, const struct variant *v, int expect,
                    unsigned redeliver)
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
        gen_spell(g, e->tricky, fmt, &x, e->v);
        gen_put_line(g, LOG_C, fmt, e->expect, 0, 0);
        if (e->redeliver)
            gen_put_line(g, LOG_C, fmt, GEN_DUP, 0, n + e->redeliver);
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
    x.query_id = gen_next_query_id(&g->qid_ctr);
    x.term = gen_zipf_draw(g->term_cdf, g->voc.n, r);
    for (u = (unsigned)rng_below(r, 100); u >= ads_cut[want - 1];)
        want++;
    gen_account_ads(g, r, &x, want, ranks);
    gen_emit_query(g, 0, &x, &gen_v_none, REC_OK, 0);
    for (uint32_t i = 0; i < x.n_ads; i++)
        if (rng_chance(r, gen_click_p(g, ranks[i], x.term)))
            gen_push_click(g, 0, x.query_id, x.ads[i],
                           x.time_ms + click_delay(r), &gen_v_none, REC_OK, 0);
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

/* The counts of one log: what its accepted lines are called, and its last
 * count (impressions of queries, unknown_query of clicks). */
static void manifest_log(FILE *f, const struct tally *t, int log,
                         const char *indent)
{
    static const char *const names[LOG_N][3] = {
        {"queries", "accepted", "impressions"},
        {"clicks", "joined", "unknown_query"},
    };
    uint64_t last = log == LOG_Q ? t->impressions : t->unknown;

    fprintf(f,
            "%s\"%s\": {\"lines\": %llu, \"empty_lines\": %llu, "
            "\"%s\": %llu, \"duplicates\": %llu, \"%s\": %llu,\n%s  ",
            indent, names[log][0], (unsigned long long)t->lines,
            (unsigned long long)t->empty, names[log][1],
            (unsigned long long)t->ok, (unsigned long long)t->dups,
            names[log][2], (unsigned long long)last, indent);
    manifest_rejects(f, t);
    fputs("}", f);
}

static void manifest_logs(FILE *f, const struct gen *g, int fmt,
                          const char *indent)
{
    manifest_log(f, &g->tally[LOG_Q][fmt], LOG_Q, indent);
    fputs(",\n", f);
    manifest_log(f, &g->tally[LOG_C][fmt], LOG_C, indent);
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
        .part = 0,
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
    if (c->part > GEN_PART_LIMIT)
        return "part out of range";
    if (c->formats == 0 || c->formats > (GEN_NDJSON | GEN_TSV))
        return "no output format";
    return NULL;
}

static int gen_open(struct gen *g, const struct gen_config *cfg, char *err)
{
    static const char *const files[LOG_N][FMT_N] = {
        {"queries.ndjson", "queries.tsv"}, {"clicks.ndjson", "clicks.tsv"}};
    char path[FS_PATH_MAX];
    int rc;

    g->cfg = cfg;
    g->n_queries = cfg->queries_per_sec * (uint64_t)cfg->duration_ms / 1000;
    g->qid_ctr = cfg->part << GEN_PART_SHIFT;
    g->trick_qid_ctr = GEN_TRICK_ID_BASE + g->qid_ctr;
    uint64_t streams = cfg->part * GEN_PART_STREAMS;
    rng_seed(&g->main, cfg->seed, streams + 1);
    rng_seed(&g->trick, cfg->seed, streams + 2);
    for (int t = 0; t < 2; t++)
        for (int fmt = 0; fmt < FMT_N; fmt++)
            rng_seed(&g->spell[t][fmt], cfg->seed,
                     streams + 10 + 2 * (uint64_t)t + fmt);
    g->line = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->text = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->aux = (struct buf){malloc(GEN_LINE_CAP), 0, GEN_LINE_CAP};
    g->term_cdf = gen_zipf_cdf(cfg->n_terms);
    g->ad_cdf = gen_zipf_cdf(cfg->n_ads);
    gen_traffic_init(&g->traffic, cfg->start_ms, cfg->duration_ms);
    if (!g->line.p || !g->text.p || !g->aux.p || !g->term_cdf || !g->ad_cdf ||
        gen_accounts_build(g) != 0 ||
        gen_vocab_build(&g->voc, cfg->n_terms, cfg->seed) != 0 ||
        (cfg->tricky && gen_cases_schedule(g) != 0))
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if ((rc = fs_mkdirs(cfg->out_dir, err)) != 0)
        return rc;
    if ((size_t)snprintf(path, sizeof path, "%s/ads.csv", cfg->out_dir) >=
        sizeof path)
        return ctrd_fail(err, CTRD_EINVAL, "path too long: %s", cfg->out_dir);
    if ((rc = gen_catalog_write(g, path, err)) != 0)
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
            if ((rc = fs_writer_open(g->out[log][fmt].w, path, FS_TRUNCATE,
                                     err)) != 0) {
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
    gen_vocab_free(&g->voc);
    gen_accounts_free(&g->acc);
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
    uint64_t n = g->n_queries;

    for (uint64_t i = 0; i < n && !g->oom; i++) {
        g->q_index = i;
        g->now_ms = gen_traffic_time(&g->traffic, i, n);
        for (int fmt = 0; fmt < FMT_N; fmt++)
            if (g->out[LOG_Q][fmt].w)
                out_release(&g->out[LOG_Q][fmt], i);
        gen_cases_run(g, i);
        normal_query(g);
        flush_clicks(g, g->now_ms - GEN_HOLD_MS);
    }
    g->q_index = n;
    g->now_ms = g->traffic.end_ms; /* the last cases close the span */
    gen_cases_run(g, UINT64_MAX);
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

static const char gen_usage[] =
    "usage: ctrd gen --out DIR [--queries-per-sec N] [--duration D]\n"
    "                [--start T] [--seed S] [--ads N] [--terms N] [--ctr F]\n"
    "                [--format ndjson|tsv|both] [--tricky]\n"
    "\n"
    "Writes realistic synthetic logs into DIR (created if needed):\n"
    "queries.ndjson and clicks.ndjson (and/or .tsv), and the ads catalog\n"
    "ads.csv for `ctrd serve --ads`; deterministic for a seed. Terms are\n"
    "Zipf-distributed; advertisers (8 ads each) bid on keyword sets of\n"
    "their own, so each ad has its own top terms; traffic peaks in the\n"
    "afternoon and dips at night and on weekends (UTC), at N queries/s on\n"
    "average. ~2 % of shown ads are clicked (CTRs differ by ad and term)\n"
    "after a lognormal delay (some clicks precede their query by up to\n"
    "60 s), some queries arrive up to 30 s late; the click file is in\n"
    "click-time order.\n"
    "\n"
    "  --out DIR              output directory (required)\n"
    "  --queries-per-sec N    average query rate (default 1000)\n"
    "  --duration D           time span of the queries: ms, s, m, h\n"
    "                         (default 1m)\n"
    "  --start T              time of the first query, ms or RFC 3339\n"
    "                         (default 2026-11-22T10:00:00Z)\n"
    "  --seed S               random seed (default 1)\n"
    "  --ads N                distinct ads (default 1000)\n"
    "  --terms N              distinct search terms (default 5000)\n"
    "  --ctr F                click-through rate, 0..1 (default 0.02)\n"
    "  --format F             ndjson (default), tsv or both\n"
    "  --tricky               also inject every kind of invalid line,\n"
    "                         duplicate, late and unknown record, and write\n"
    "                         DIR/manifest.json with the exact counts they\n"
    "                         must give (see src/gen.h)\n"
    "  -h, --help             this help;  --version  ctrd's version\n";

enum gen_option {
    O_OUT = 0x100, /* above every short option and CLI_OPT_VERSION's range */
    O_QPS,
    O_DURATION,
    O_START,
    O_SEED,
    O_ADS,
    O_TERMS,
    O_CTR,
    O_FORMAT,
    O_TRICKY,
};

static const struct option gen_options[] = {
    CLI_COMMON_OPTIONS,
    {"out", required_argument, NULL, O_OUT},
    {"queries-per-sec", required_argument, NULL, O_QPS},
    {"duration", required_argument, NULL, O_DURATION},
    {"start", required_argument, NULL, O_START},
    {"seed", required_argument, NULL, O_SEED},
    {"ads", required_argument, NULL, O_ADS},
    {"terms", required_argument, NULL, O_TERMS},
    {"ctr", required_argument, NULL, O_CTR},
    {"format", required_argument, NULL, O_FORMAT},
    {"tricky", no_argument, NULL, O_TRICKY},
    {NULL, 0, NULL, 0},
};

/* The long name of option c, for messages. */
static const char *gen_option_name(int c)
{
    const struct option *o = gen_options;
    while (o->name && o->val != c)
        o++;
    assert(o->name);
    return o->name;
}

/* --ads or --terms: 1..limit. */
static int gen_count(int c, const char *val, uint64_t limit, uint32_t *out)
{
    uint64_t u;
    if (cli_parse_u64(val, &u) != 0 || u == 0 || u > limit)
        return cli_usage("gen", "bad --%s '%s' (1..%llu)", gen_option_name(c),
                         val, (unsigned long long)limit);
    *out = (uint32_t)u;
    return 0;
}

static int gen_ctr(const char *val, double *ctr)
{
    char *end;
    errno = 0;
    *ctr = strtod(val, &end);
    if (errno || end == val || *end || !(*ctr >= 0 && *ctr <= 1))
        return cli_usage("gen", "bad --ctr '%s' (0..1)", val);
    return 0;
}

/* cli_parse()'s on_option: option c with value val into the struct
 * gen_config at ctx. 0, or 2 after a usage message. */
static int gen_option(void *ctx, int c, const char *val)
{
    static const char *const formats[] = {"ndjson", "tsv", "both"};
    struct gen_config *cfg = ctx;
    int ok = 1, i;

    switch (c) {
    case O_OUT:
        cfg->out_dir = val;
        break;
    case O_TRICKY:
        cfg->tricky = 1;
        break;
    case O_QPS:
        ok = cli_parse_u64(val, &cfg->queries_per_sec) == 0 &&
             cfg->queries_per_sec > 0;
        break;
    case O_DURATION:
        ok = cli_parse_duration_ms(val, &cfg->duration_ms) == 0 &&
             cfg->duration_ms > 0;
        break;
    case O_START:
        ok = cli_parse_time_ms(val, &cfg->start_ms) == 0;
        break;
    case O_SEED:
        ok = cli_parse_u64(val, &cfg->seed) == 0;
        break;
    case O_ADS:
        return gen_count(c, val, GEN_ADS_LIMIT, &cfg->n_ads);
    case O_TERMS:
        return gen_count(c, val, GEN_TERMS_LIMIT, &cfg->n_terms);
    case O_CTR:
        return gen_ctr(val, &cfg->ctr);
    case O_FORMAT:
        if (cli_choice("gen", "--format", val, formats, 3, &i) != 0)
            return 2;
        cfg->formats = (unsigned)i + 1; /* GEN_NDJSON, GEN_TSV, both */
        break;
    }
    return ok ? 0 : cli_usage("gen", "bad --%s '%s'", gen_option_name(c), val);
}

int gen_command(int argc, char **argv)
{
    struct gen_config cfg;
    struct gen_summary sum;
    char err[CTRD_ERR_LEN];
    const char *problem;
    int rc;

    _Static_assert(GEN_NDJSON == 1 && GEN_TSV == 2, "--format choices");
    gen_config_default(&cfg);
    rc = cli_parse(argc, argv, "gen", gen_usage, "h", gen_options, gen_option,
                   &cfg);
    if (rc >= 0)
        return rc;
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
