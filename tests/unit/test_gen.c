/* test_gen: `ctrd gen` through gen_command(). Every line it writes is parsed
 * with rec_parse_query / rec_parse_click and joined by a small reference
 * model of SPEC §2 (first valid query wins, clicks judged against it, one
 * click per (query_id, ad_id), batch semantics); the model's counts must
 * equal manifest.json exactly, and both formats must carry the same valid
 * records. Also: determinism, CTR, click delays, time order, terms, the
 * ads catalog and the accounts' keyword sets, the daily and weekly curve. */
#include "catalog.h"
#include "check.h"
#include "fsutil.h"
#include "gen.h"
#include "hash.h"
#include "record.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QPS "500"
#define DURATION "1m" /* 30000 queries */

static char tmp_root[] = "/tmp/ctrd_test_gen.XXXXXX";

static const char *const all_files[] = {"queries.ndjson", "clicks.ndjson",
                                        "queries.tsv",    "clicks.tsv",
                                        "manifest.json",  "ads.csv"};
#define N_FILES (sizeof all_files / sizeof all_files[0])

/* Runs `ctrd gen --out ROOT/name ARGS...`; args ends with NULL. */
static int run_gen(const char *name, const char *const *args)
{
    static char dir[256];
    char *argv[32];
    int argc = 0;
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    argv[argc++] = "gen";
    argv[argc++] = "--out";
    argv[argc++] = dir;
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    return gen_command(argc, argv);
}

/* ROOT/dir/file, malloc'd, NUL-terminated; NULL if absent. */
static char *slurp(const char *dir, const char *file, size_t *len)
{
    char path[512], err[CTRD_ERR_LEN], *data;
    snprintf(path, sizeof path, "%s/%s/%s", tmp_root, dir, file);
    if (fs_read_file(path, &data, len, err) != 0)
        return NULL;
    return data;
}

static int same_file(const char *a, const char *b, const char *file)
{
    size_t na, nb;
    char *x = slurp(a, file, &na), *y = slurp(b, file, &nb);
    int same = (!x && !y) || (x && y && na == nb && memcmp(x, y, na) == 0);
    free(x);
    free(y);
    return same;
}

/* ---- the reference model ------------------------------------------------ */

struct ref_query {
    uint64_t id, term_hash;
    int64_t time_ms;
    uint32_t n_ads;
    uint64_t ads[REC_ADS_MAX];
};

struct ref_click {
    uint64_t query_id, ad_id;
    int64_t time_ms;
};

struct counts {
    uint64_t q_lines, q_empty, accepted, q_dups, impressions;
    uint64_t c_lines, c_empty, joined, c_dups, unknown;
    uint64_t q_rejects[REC_REASON_COUNT], c_rejects[REC_REASON_COUNT];
};

struct model {
    struct counts n;
    struct ref_query *q; /* accepted, in input order */
    size_t n_q, cap_q;
    uint32_t *q_slots; /* index + 1 into q, by id */
    size_t q_mask;
    struct ref_click *joined; /* in input order */
    size_t n_joined;
    uint64_t *pairs; /* hash of (query_id, ad_id) + 1 of counted clicks */
    size_t pair_mask;
    int64_t *delays; /* click time - query time of joined clicks */
};

static void model_init(struct model *m, size_t max_queries)
{
    size_t cap = 1024;
    while (cap < 2 * max_queries)
        cap <<= 1;
    memset(m, 0, sizeof *m);
    m->cap_q = max_queries;
    m->q = calloc(max_queries, sizeof *m->q);
    m->q_slots = calloc(cap, sizeof *m->q_slots);
    m->q_mask = cap - 1;
    m->joined = calloc(max_queries, sizeof *m->joined);
    m->delays = calloc(max_queries, sizeof *m->delays);
    m->pairs = calloc(cap, sizeof *m->pairs);
    m->pair_mask = cap - 1;
}

static void model_free(struct model *m)
{
    free(m->q);
    free(m->q_slots);
    free(m->joined);
    free(m->delays);
    free(m->pairs);
}

static uint32_t *query_slot(struct model *m, uint64_t id)
{
    size_t i = hash_u64(id) & m->q_mask;
    while (m->q_slots[i] && m->q[m->q_slots[i] - 1].id != id)
        i = (i + 1) & m->q_mask;
    return &m->q_slots[i];
}

/* 1 if (query_id, ad_id) was new (and is now recorded). Pairs are told
 * apart by a 64-bit hash: a collision in a test run is not a concern. */
static int pair_add(struct model *m, uint64_t query_id, uint64_t ad_id)
{
    uint64_t h = hash_u64(query_id ^ hash_u64(ad_id)) | 1;
    size_t i = h & m->pair_mask;
    while (m->pairs[i] && m->pairs[i] != h)
        i = (i + 1) & m->pair_mask;
    if (m->pairs[i])
        return 0;
    m->pairs[i] = h;
    return 1;
}

static void model_query(struct model *m, const char *line, size_t len,
                        enum rec_format fmt)
{
    struct rec_query q;
    enum rec_reason r = rec_parse_query(fmt, line, len, &q);
    uint32_t *slot;

    if (r == REC_EMPTY) {
        m->n.q_empty++;
        return;
    }
    m->n.q_lines++;
    if (r != REC_OK) {
        m->n.q_rejects[r]++;
        return;
    }
    slot = query_slot(m, q.query_id);
    if (*slot) {
        m->n.q_dups++;
        return;
    }
    if (m->n_q == m->cap_q) {
        CHECK_FAIL_AT("more queries than the model holds");
        return;
    }
    struct ref_query *rq = &m->q[m->n_q++];
    rq->id = q.query_id;
    rq->time_ms = q.time_ms;
    rq->term_hash = hash_bytes(q.term, q.term_len);
    rq->n_ads = q.n_ads;
    memcpy(rq->ads, q.ads, q.n_ads * sizeof q.ads[0]);
    *slot = (uint32_t)m->n_q;
    m->n.accepted++;
    m->n.impressions += q.n_ads;
}

static int shows(const struct ref_query *q, uint64_t ad)
{
    for (uint32_t i = 0; i < q->n_ads; i++)
        if (q->ads[i] == ad)
            return 1;
    return 0;
}

static void model_click(struct model *m, const char *line, size_t len,
                        enum rec_format fmt)
{
    struct rec_click c;
    enum rec_reason r = rec_parse_click(fmt, line, len, &c);
    const struct ref_query *q;
    uint32_t slot;

    if (r == REC_EMPTY) {
        m->n.c_empty++;
        return;
    }
    m->n.c_lines++;
    if (r != REC_OK) {
        m->n.c_rejects[r]++;
        return;
    }
    slot = *query_slot(m, c.query_id);
    if (!slot) {
        m->n.unknown++;
        return;
    }
    q = &m->q[slot - 1];
    if (!shows(q, c.ad_id)) {
        m->n.c_rejects[REC_CLICK_AD_NOT_SHOWN]++;
    } else if (c.time_ms < q->time_ms - 60000 ||
               c.time_ms > q->time_ms + 86400000) {
        m->n.c_rejects[REC_CLICK_OUTSIDE_WINDOW]++;
    } else if (!pair_add(m, c.query_id, c.ad_id)) {
        m->n.c_dups++;
    } else if (m->n_joined < m->cap_q) {
        m->delays[m->n_joined] = c.time_ms - q->time_ms;
        m->joined[m->n_joined++] =
            (struct ref_click){c.query_id, c.ad_id, c.time_ms};
        m->n.joined++;
    }
}

typedef void line_fn(struct model *m, const char *line, size_t len,
                     enum rec_format fmt);

/* Feeds every line (LF removed) of ROOT/dir/file to fn; 0 if absent. */
static int feed(struct model *m, const char *dir, const char *file,
                enum rec_format fmt, line_fn *fn)
{
    size_t len;
    char *data = slurp(dir, file, &len), *p, *end;
    if (!data)
        return 0;
    for (p = data, end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        fn(m, p, n, fmt);
        p += n + 1;
    }
    free(data);
    return 1;
}

/* Parses and joins dir's files of one format (batch: queries first). */
static void model_run(struct model *m, const char *dir, enum rec_format fmt)
{
    int tsv = fmt == REC_TSV;
    CHECK(
        feed(m, dir, tsv ? "queries.tsv" : "queries.ndjson", fmt, model_query));
    CHECK(feed(m, dir, tsv ? "clicks.tsv" : "clicks.ndjson", fmt, model_click));
}

/* ---- manifest.json as a flat list of "a.b.c" -> number ----------------- */

struct flat {
    char path[128];
    uint64_t val;
};

struct flat_list {
    struct flat e[256];
    size_t n;
};

static const char *js_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

/* The string at p (no escapes in a manifest) into out; after it, or NULL. */
static const char *js_string(const char *p, char *out, size_t cap)
{
    size_t n = 0;
    if (*p != '"')
        return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' || n + 1 >= cap)
            return NULL;
        else
            out[n++] = *p;
    out[n] = '\0';
    return *p == '"' ? p + 1 : NULL;
}

static const char *js_value(const char *p, const char *path,
                            struct flat_list *fl)
{
    char key[64], sub[128];
    p = js_ws(p);
    if (*p == '"')
        return js_string(p, key, sizeof key);
    if (*p >= '0' && *p <= '9') {
        char *end;
        if (fl->n == 256)
            return NULL;
        snprintf(fl->e[fl->n].path, sizeof fl->e[0].path, "%s", path);
        fl->e[fl->n++].val = strtoull(p, &end, 10);
        return end;
    }
    if (*p != '{')
        return NULL;
    p = js_ws(p + 1);
    if (*p == '}')
        return p + 1;
    for (;;) {
        if (!(p = js_string(js_ws(p), key, sizeof key)))
            return NULL;
        p = js_ws(p);
        if (*p != ':')
            return NULL;
        snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", key);
        if (!(p = js_value(p + 1, sub, fl)))
            return NULL;
        p = js_ws(p);
        if (*p == '}')
            return p + 1;
        if (*p != ',')
            return NULL;
        p++;
    }
}

static int manifest_read(const char *dir, struct flat_list *fl)
{
    size_t len;
    char *data = slurp(dir, "manifest.json", &len);
    const char *end;
    fl->n = 0;
    if (!data)
        return -1;
    end = js_value(data, "", fl);
    int ok = end && *js_ws(end) == '\0';
    free(data);
    return ok ? 0 : -1;
}

static int flat_get(const struct flat_list *fl, const char *path, uint64_t *val)
{
    for (size_t i = 0; i < fl->n; i++)
        if (strcmp(fl->e[i].path, path) == 0) {
            *val = fl->e[i].val;
            return 0;
        }
    return -1;
}

static void check_entry(const struct flat_list *fl, const char *prefix,
                        const char *name, uint64_t want, size_t *matched)
{
    char path[128];
    uint64_t got;
    snprintf(path, sizeof path, "%s%s", prefix, name);
    if (flat_get(fl, path, &got) != 0) {
        CHECK_FAIL_AT("manifest lacks %s (model: %llu)", path,
                      (unsigned long long)want);
        return;
    }
    (*matched)++;
    if (got != want)
        CHECK_FAIL_AT("manifest %s = %llu, model = %llu", path,
                      (unsigned long long)got, (unsigned long long)want);
}

static void check_rejects(const struct flat_list *fl, const char *prefix,
                          const uint64_t *rejects, size_t *matched)
{
    char name[64];
    for (int r = 0; r < REC_REASON_COUNT; r++) {
        if (!rejects[r])
            continue;
        snprintf(name, sizeof name, "rejects.%s",
                 rec_reason_name((enum rec_reason)r));
        check_entry(fl, prefix, name, rejects[r], matched);
    }
}

/* Every number of the manifest section prefix ("" or "ndjson.") equals the
 * model's, and the section holds nothing else. */
static void check_manifest(const struct flat_list *fl, const char *fmt,
                           const struct counts *n)
{
    char q[64], c[64];
    size_t matched = 0, present = 0, plen;
    snprintf(q, sizeof q, "%squeries.", fmt);
    snprintf(c, sizeof c, "%sclicks.", fmt);
    check_entry(fl, q, "lines", n->q_lines, &matched);
    check_entry(fl, q, "empty_lines", n->q_empty, &matched);
    check_entry(fl, q, "accepted", n->accepted, &matched);
    check_entry(fl, q, "duplicates", n->q_dups, &matched);
    check_entry(fl, q, "impressions", n->impressions, &matched);
    check_rejects(fl, q, n->q_rejects, &matched);
    check_entry(fl, c, "lines", n->c_lines, &matched);
    check_entry(fl, c, "empty_lines", n->c_empty, &matched);
    check_entry(fl, c, "joined", n->joined, &matched);
    check_entry(fl, c, "duplicates", n->c_dups, &matched);
    check_entry(fl, c, "unknown_query", n->unknown, &matched);
    check_rejects(fl, c, n->c_rejects, &matched);
    plen = strlen(fmt);
    for (size_t i = 0; i < fl->n; i++)
        present += strncmp(fl->e[i].path, fmt, plen) == 0 &&
                   strcmp(fl->e[i].path, "seed") != 0;
    CHECK_EQ_U64(present, matched);
}

/* ---- comparing the valid records of two runs / formats ----------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_query(const void *a, const void *b)
{
    const struct ref_query *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_click(const void *a, const void *b)
{
    const struct ref_click *x = a, *y = b;
    if (x->query_id != y->query_id)
        return x->query_id < y->query_id ? -1 : 1;
    if (x->ad_id != y->ad_id)
        return x->ad_id < y->ad_id ? -1 : 1;
    return x->time_ms < y->time_ms ? -1 : x->time_ms > y->time_ms;
}

static void sort_model(struct model *m)
{
    qsort(m->q, m->n_q, sizeof m->q[0], cmp_query);
    qsort(m->joined, m->n_joined, sizeof m->joined[0], cmp_click);
}

/* Same accepted queries (id, time, term, ads in order) and joined clicks. */
static void check_same_records(const struct model *a, const struct model *b)
{
    CHECK_EQ_U64(a->n_q, b->n_q);
    CHECK_EQ_U64(a->n_joined, b->n_joined);
    if (a->n_q != b->n_q || a->n_joined != b->n_joined)
        return;
    size_t bad_q = 0, bad_c = 0;
    for (size_t i = 0; i < a->n_q; i++) {
        const struct ref_query *x = &a->q[i], *y = &b->q[i];
        bad_q += x->id != y->id || x->time_ms != y->time_ms ||
                 x->term_hash != y->term_hash || x->n_ads != y->n_ads ||
                 memcmp(x->ads, y->ads, x->n_ads * sizeof x->ads[0]) != 0;
    }
    for (size_t i = 0; i < a->n_joined; i++)
        bad_c += cmp_click(&a->joined[i], &b->joined[i]) != 0;
    CHECK_EQ_U64(bad_q, 0);
    CHECK_EQ_U64(bad_c, 0);
}

/* Every accepted query and joined click of sub is in super. */
static void check_subset(const struct model *sub, const struct model *super)
{
    size_t j = 0, missing = 0;
    for (size_t i = 0; i < sub->n_q; i++) {
        while (j < super->n_q && super->q[j].id < sub->q[i].id)
            j++;
        missing += j == super->n_q || super->q[j].id != sub->q[i].id ||
                   super->q[j].term_hash != sub->q[i].term_hash;
    }
    CHECK_EQ_U64(missing, 0);
}

/* ---- tests ------------------------------------------------------------- */

static const char *const plain_args[] = {
    "--queries-per-sec", QPS,    "--duration", DURATION, "--seed", "7",
    "--format",          "both", NULL};
static const char *const tricky_args[] = {
    "--queries-per-sec", QPS,    "--duration", DURATION, "--seed", "7",
    "--format",          "both", "--tricky",   NULL};

static void test_usage(void)
{
    static const char *const bad[][3] = {
        {"--format", "xml", NULL},
        {"--ctr", "2", NULL},
        {"--ads", "0", NULL},
        {"--duration", "10x", NULL},
        {"--bogus", "1", NULL},
        {"--start", "1969-01-01T00:00:00Z", NULL},
        {"--queries-per-sec", NULL, NULL},
        {"--tricky=1", NULL, NULL},
        {"-x", NULL, NULL},
        {"--t", "1", NULL}, /* ambiguous: --terms or --tricky */
        {"extra", NULL, NULL},
        {"--seed", "-1", NULL},
    };
    char *no_out[] = {"gen", "--seed", "3", NULL};
    char *help[] = {"gen", "--help", NULL};
    char *version[] = {"gen", "--version", NULL};
    CHECK_EQ_I64(gen_command(2, help), 0);
    CHECK_EQ_I64(gen_command(2, version), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_EQ_I64(run_gen("usage", bad[i]), 2);
    CHECK_EQ_I64(gen_command(3, no_out), 2);
    char *unwritable[] = {"gen", "--out", "/proc/ctrd-gen-test", NULL};
    CHECK_EQ_I64(gen_command(3, unwritable), 1);
}

/* A run without --tricky: every line valid, both formats the same records,
 * realistic shape. */
static void test_plain(void)
{
    struct model j, t;
    size_t early = 0, out_of_order = 0, high_ids = 0;
    int64_t max_late = 0, max_delay = 0;

    CHECK_EQ_I64(run_gen("plain", plain_args), 0);
    model_init(&j, 40000);
    model_init(&t, 40000);
    model_run(&j, "plain", REC_NDJSON);
    model_run(&t, "plain", REC_TSV);
    for (int r = 0; r < REC_REASON_COUNT; r++) {
        CHECK_EQ_U64(j.n.q_rejects[r] + j.n.c_rejects[r], 0);
        CHECK_EQ_U64(t.n.q_rejects[r] + t.n.c_rejects[r], 0);
    }
    CHECK_EQ_U64(j.n.accepted, 30000);
    CHECK_EQ_U64(j.n.q_dups + j.n.c_dups + j.n.unknown, 0);
    CHECK_EQ_U64(j.n.joined, j.n.c_lines);
    double ctr = (double)j.n.joined / (double)j.n.impressions;
    if (ctr < 0.017 || ctr > 0.023)
        CHECK_FAIL_AT("CTR %.4f not ~0.02", ctr);

    /* queries: late by at most 30 s; ids spread over 64 bits */
    int64_t max_t = 0;
    for (size_t i = 0; i < j.n_q; i++) {
        int64_t tm = j.q[i].time_ms;
        if (tm < max_t) {
            out_of_order++;
            if (max_t - tm > max_late)
                max_late = max_t - tm;
        }
        max_t = tm > max_t ? tm : max_t;
        high_ids += j.q[i].id > UINT64_C(0x8000000000000000);
    }
    CHECK(out_of_order > 100);
    CHECK(max_late <= 30000);
    CHECK(high_ids > j.n_q * 4 / 10 && high_ids < j.n_q * 6 / 10);

    /* clicks: in time order, 1-5 % before their query, < 24 h later,
     * median delay 5-40 s */
    for (size_t i = 0; i < j.n_joined; i++) {
        early += j.delays[i] < 0;
        max_delay = j.delays[i] > max_delay ? j.delays[i] : max_delay;
        if (i > 0 && j.joined[i].time_ms < j.joined[i - 1].time_ms)
            CHECK_FAIL_AT("click %zu out of time order", i);
    }
    CHECK(early * 100 > j.n_joined && early * 100 < 5 * j.n_joined);
    CHECK(max_delay < 86400000 && max_delay > 600000);
    qsort(j.delays, j.n_joined, sizeof j.delays[0], cmp_i64);
    int64_t median = j.n_joined ? j.delays[j.n_joined / 2] : 0;
    if (median < 5000 || median > 40000)
        CHECK_FAIL_AT("median click delay %lld ms", (long long)median);

    sort_model(&j);
    sort_model(&t);
    check_same_records(&j, &t);
    model_free(&j);
    model_free(&t);
}

static void test_deterministic(void)
{
    static const char *const seed8[] = {
        "--queries-per-sec", QPS,    "--duration", DURATION, "--seed", "8",
        "--format",          "both", "--tricky",   NULL};
    static const char *const ndjson_only[] = {
        "--queries-per-sec", QPS, "--duration", DURATION, "--seed", "7",
        "--tricky",          NULL};

    CHECK_EQ_I64(run_gen("det_a", tricky_args), 0);
    CHECK_EQ_I64(run_gen("det_b", tricky_args), 0);
    for (size_t i = 0; i < N_FILES; i++)
        if (!same_file("det_a", "det_b", all_files[i]))
            CHECK_FAIL_AT("%s differs between identical runs", all_files[i]);
    CHECK_EQ_I64(run_gen("det_c", seed8), 0);
    CHECK(!same_file("det_a", "det_c", "queries.ndjson"));
    CHECK(!same_file("det_a", "det_c", "clicks.tsv"));
    /* the NDJSON files do not depend on whether TSV is written too */
    CHECK_EQ_I64(run_gen("det_d", ndjson_only), 0);
    CHECK(same_file("det_a", "det_d", "queries.ndjson"));
    CHECK(same_file("det_a", "det_d", "clicks.ndjson"));
}

/* Options as --name=value give the same files as --name value, also right
 * after a usage error left getopt_long half-way through another argv. */
static void test_option_forms(void)
{
    static const char *const stopped[] = {"--seed",   "7",    "--bogus",
                                          "--format", "both", NULL};
    static const char *const eq_forms[] = {"--queries-per-sec=" QPS,
                                           "--duration=" DURATION,
                                           "--seed=7",
                                           "--format=both",
                                           "--tricky",
                                           NULL};

    CHECK_EQ_I64(run_gen("forms_a", tricky_args), 0);
    CHECK_EQ_I64(run_gen("forms_stopped", stopped), 2);
    CHECK_EQ_I64(run_gen("forms_b", eq_forms), 0);
    for (size_t i = 0; i < N_FILES; i++)
        if (!same_file("forms_a", "forms_b", all_files[i]))
            CHECK_FAIL_AT("%s differs between --x=v and --x v", all_files[i]);
}

/* Reasons every tricky run must inject, per log and format. */
static void check_coverage(const struct counts *n, int tsv)
{
    static const enum rec_reason q_both[] = {
        REC_LINE_TOO_LONG, REC_BAD_UTF8,    REC_BAD_TIME,
        REC_BAD_QUERY_ID,  REC_EMPTY_QUERY, REC_QUERY_TOO_LONG,
        REC_BAD_AD_IDS,    REC_TOO_MANY_ADS};
    static const enum rec_reason q_json[] = {
        REC_BAD_JSON,     REC_NOT_OBJECT,       REC_DUPLICATE_FIELD,
        REC_MISSING_TIME, REC_MISSING_QUERY_ID, REC_MISSING_QUERY,
        REC_BAD_QUERY,    REC_MISSING_AD_IDS};
    static const enum rec_reason c_both[] = {
        REC_LINE_TOO_LONG,       REC_BAD_TIME,     REC_BAD_QUERY_ID,
        REC_BAD_AD_ID,           REC_BAD_CLICK_ID, REC_CLICK_AD_NOT_SHOWN,
        REC_CLICK_OUTSIDE_WINDOW};
    static const enum rec_reason c_json[] = {
        REC_BAD_UTF8,        REC_BAD_JSON,     REC_NOT_OBJECT,
        REC_DUPLICATE_FIELD, REC_MISSING_TIME, REC_MISSING_QUERY_ID,
        REC_MISSING_AD_ID};

    for (size_t i = 0; i < sizeof q_both / sizeof q_both[0]; i++)
        CHECK(n->q_rejects[q_both[i]] >= 3);
    for (size_t i = 0; i < sizeof c_both / sizeof c_both[0]; i++)
        CHECK(n->c_rejects[c_both[i]] >= 3);
    for (size_t i = 0; i < sizeof q_json / sizeof q_json[0]; i++)
        CHECK(tsv ? n->q_rejects[q_json[i]] == 0
                  : n->q_rejects[q_json[i]] >= 3);
    for (size_t i = 0; i < sizeof c_json / sizeof c_json[0]; i++)
        CHECK(tsv ? n->c_rejects[c_json[i]] == 0
                  : n->c_rejects[c_json[i]] >= 3);
    CHECK(tsv ? n->q_rejects[REC_BAD_TSV] >= 3 && n->c_rejects[REC_BAD_TSV] >= 3
              : n->q_rejects[REC_BAD_TSV] + n->c_rejects[REC_BAD_TSV] == 0);
    CHECK(n->q_dups >= 3 && n->c_dups >= 3 && n->unknown >= 3);
}

/* The manifest gives exactly what parsing and joining the files gives. */
static void test_tricky_manifest(void)
{
    struct model j, t, plain;
    struct flat_list fl;
    uint64_t seed = 0;

    CHECK_EQ_I64(run_gen("tricky", tricky_args), 0);
    CHECK_EQ_I64(manifest_read("tricky", &fl), 0);
    CHECK_EQ_I64(flat_get(&fl, "seed", &seed), 0);
    CHECK_EQ_U64(seed, 7);
    model_init(&j, 40000);
    model_init(&t, 40000);
    model_run(&j, "tricky", REC_NDJSON);
    model_run(&t, "tricky", REC_TSV);
    check_manifest(&fl, "ndjson.", &j.n);
    check_manifest(&fl, "tsv.", &t.n);
    check_coverage(&j.n, 0);
    check_coverage(&t.n, 1);
    CHECK_EQ_U64(j.n.accepted, t.n.accepted);
    CHECK_EQ_U64(j.n.q_dups, t.n.q_dups);
    CHECK_EQ_U64(j.n.impressions, t.n.impressions);
    CHECK_EQ_U64(j.n.joined, t.n.joined);
    CHECK_EQ_U64(j.n.c_dups, t.n.c_dups);
    CHECK_EQ_U64(j.n.unknown, t.n.unknown);
    sort_model(&j);
    sort_model(&t);
    check_same_records(&j, &t);

    /* --tricky adds records; the normal ones stay the same */
    CHECK_EQ_I64(run_gen("plain2", plain_args), 0);
    model_init(&plain, 40000);
    model_run(&plain, "plain2", REC_NDJSON);
    sort_model(&plain);
    check_subset(&plain, &j);
    model_free(&plain);
    model_free(&j);
    model_free(&t);
}

/* One format alone: the manifest has the one-format layout. */
static void test_tsv_manifest(void)
{
    static const char *const args[] = {
        "--queries-per-sec", "50",  "--duration", "1m",
        "--format",          "tsv", "--tricky",   NULL};
    struct model t;
    struct flat_list fl;
    uint64_t v;

    CHECK_EQ_I64(run_gen("tsv", args), 0);
    CHECK_EQ_I64(manifest_read("tsv", &fl), 0);
    CHECK_EQ_I64(flat_get(&fl, "ndjson.queries.lines", &v), -1);
    model_init(&t, 10000);
    model_run(&t, "tsv", REC_TSV);
    check_manifest(&fl, "", &t.n);
    check_coverage(&t.n, 1);
    model_free(&t);
}

/* Odd configurations: the manifest still equals the model's counts. */
static void test_edges(void)
{
    static const char *const runs[][16] = {
        /* one ad, one term: tricky cases fall back to ids below 1000 */
        {"--ads", "1", "--terms", "1", "--queries-per-sec", "20", "--duration",
         "1m", "--format", "both", "--tricky", NULL},
        /* no normal query at all: only the injected cases */
        {"--queries-per-sec", "1", "--duration", "500ms", "--format", "both",
         "--tricky", NULL},
        {"--ads", "3", "--ctr", "1", "--queries-per-sec", "20", "--duration",
         "1m", "--format", "both", "--tricky", NULL},
        {"--ctr", "0", "--queries-per-sec", "20", "--duration", "1m",
         "--format", "both", "--tricky", "--start", "1795341600000", NULL},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        struct model j, t;
        struct flat_list fl;
        CHECK_EQ_I64(run_gen("edge", runs[i]), 0);
        CHECK_EQ_I64(manifest_read("edge", &fl), 0);
        model_init(&j, 10000);
        model_init(&t, 10000);
        model_run(&j, "edge", REC_NDJSON);
        model_run(&t, "edge", REC_TSV);
        check_manifest(&fl, "ndjson.", &j.n);
        check_manifest(&fl, "tsv.", &t.n);
        check_coverage(&j.n, 0);
        check_coverage(&t.n, 1);
        sort_model(&j);
        sort_model(&t);
        check_same_records(&j, &t);
        model_free(&j);
        model_free(&t);
    }
}

/* Terms: few distinct ones, many spellings, some not ASCII. */
static void test_terms(void)
{
    size_t len, lines = 0, respelled = 0, non_ascii = 0;
    char *data = slurp("plain", "queries.tsv", &len), *p, *end;
    struct rec_query q;

    CHECK(data != NULL);
    if (!data)
        return;
    for (p = data, end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *text = p;
        size_t n = (size_t)(nl - p);
        if (rec_parse_query(REC_TSV, p, n, &q) == REC_OK) {
            for (int tabs = 0; tabs < 3; text++)
                tabs += *text == '\t';
            size_t raw = (size_t)(p + n - text) - (p[n - 1] == '\r');
            lines++;
            respelled += raw != q.term_len || memcmp(text, q.term, raw) != 0;
            for (uint32_t i = 0; i < q.term_len; i++)
                if ((unsigned char)q.term[i] >= 0x80) {
                    non_ascii++;
                    break;
                }
        }
        p = nl + 1;
    }
    free(data);
    CHECK(lines == 30000);
    /* 45 % change case, 12 % get odd white space (most of them some) */
    CHECK(respelled > lines * 4 / 10 && respelled < lines * 6 / 10);
    CHECK(non_ascii > lines / 100);
}

/* The rank of ad id (gen_ad_id's inverse), or n_ads when no rank has it. */
static uint32_t ad_rank(uint64_t id, uint32_t n_ads)
{
    uint64_t k = id >= 1000 && id - 1000 < n_ads ? id - 1000
                                                 : (UINT64_MAX - id) * 100 + 99;
    return k < n_ads && gen_ad_id((uint32_t)k) == id ? (uint32_t)k : n_ads;
}

/* The hashes of the 3 terms ad shows most often in m, into top[]. */
static void top_terms(const struct model *m, uint64_t ad, uint64_t top[3])
{
    uint64_t *h = malloc(m->n_q * sizeof *h);
    size_t n = 0, best[3] = {0, 0, 0};

    for (size_t i = 0; i < m->n_q; i++)
        if (shows(&m->q[i], ad))
            h[n++] = m->q[i].term_hash;
    qsort(h, n, sizeof *h, cmp_u64);
    memset(top, 0, 3 * sizeof *top);
    for (size_t i = 0, run; i < n; i += run) {
        for (run = 1; i + run < n && h[i + run] == h[i];)
            run++;
        for (int j = 0; j < 3; j++)
            if (run > best[j]) {
                memmove(best + j + 1, best + j, (2 - (size_t)j) * sizeof *best);
                memmove(top + j + 1, top + j, (2 - (size_t)j) * sizeof *top);
                best[j] = run;
                top[j] = h[i];
                break;
            }
    }
    free(h);
}

static int same_set3(const uint64_t *a, const uint64_t *b)
{
    for (int i = 0; i < 3; i++)
        if (a[i] != b[0] && a[i] != b[1] && a[i] != b[2])
            return 0;
    return 1;
}

/* ads.csv is a catalog serve loads, owners by gen_advertiser_id, every
 * shown ad listed; the busiest ads of the three busiest advertisers each
 * have top terms of their own (not the global ones for all); the parts of
 * a stream share the accounts. */
static void test_accounts(void)
{
    struct catalog *cat = NULL;
    char path[512], err[CTRD_ERR_LEN];
    uint64_t imp[1000] = {0}, owner, unlisted = 0, top[3][3];
    uint32_t busiest[1000 / GEN_ADS_PER_ADVERTISER] = {0}, adv[3] = {0, 0, 0};
    struct model j;

    snprintf(path, sizeof path, "%s/plain/ads.csv", tmp_root);
    CHECK_EQ_I64(catalog_load(path, &cat, err), 0);
    for (uint32_t k = 0; k < 1000; k++) {
        CHECK_EQ_I64(catalog_owner(cat, gen_ad_id(k), &owner), 0);
        CHECK_EQ_U64(owner, 1 + k / GEN_ADS_PER_ADVERTISER);
        CHECK_EQ_U64(gen_advertiser_id(k), owner);
        CHECK(strstr(catalog_name(cat, gen_ad_id(k)), " #") != NULL);
    }
    model_init(&j, 40000);
    model_run(&j, "plain", REC_NDJSON);
    for (size_t i = 0; i < j.n_q; i++)
        for (uint32_t a = 0; a < j.q[i].n_ads; a++) {
            uint32_t k = ad_rank(j.q[i].ads[a], 1000);
            unlisted += catalog_owner(cat, j.q[i].ads[a], &owner) != 0;
            if (k < 1000)
                imp[k]++;
        }
    CHECK_EQ_U64(unlisted, 0);
    for (uint32_t k = 0; k < 1000; k++) {
        uint32_t a = k / GEN_ADS_PER_ADVERTISER;
        if (imp[k] > imp[busiest[a]] ||
            busiest[a] / GEN_ADS_PER_ADVERTISER != a)
            busiest[a] = k;
    }
    for (int i = 0; i < 3; i++) { /* the three busiest advertisers */
        uint64_t most = 0;
        for (uint32_t a = 0; a < 1000 / GEN_ADS_PER_ADVERTISER; a++)
            if ((i == 0 || a != adv[0]) && (i < 2 || a != adv[1]) &&
                imp[busiest[a]] > most) {
                most = imp[busiest[a]];
                adv[i] = a;
            }
    }
    for (int i = 0; i < 3; i++) {
        CHECK(imp[busiest[adv[i]]] > 400);
        top_terms(&j, gen_ad_id(busiest[adv[i]]), top[i]);
    }
    CHECK(!same_set3(top[0], top[1]));
    CHECK(!same_set3(top[0], top[2]));
    CHECK(!same_set3(top[1], top[2]));
    model_free(&j);
    catalog_free(cat);

    /* another part of the same stream: the same accounts, new queries */
    struct gen_config cfg;
    gen_config_default(&cfg);
    snprintf(path, sizeof path, "%s/part1", tmp_root);
    cfg.out_dir = path;
    cfg.queries_per_sec = 500;
    cfg.seed = 7;
    cfg.formats = GEN_NDJSON | GEN_TSV;
    cfg.part = 1;
    CHECK_EQ_I64(gen_run(&cfg, NULL, err), 0);
    CHECK(same_file("plain", "part1", "ads.csv"));
    CHECK(!same_file("plain", "part1", "queries.ndjson"));
}

/* A week from Monday 00:00 UTC: queries_per_sec on average, 3.5 times as
 * many in the afternoon as at night, 0.7 on the weekend. */
static void test_traffic(void)
{
    static const char *const args[] = {
        "--queries-per-sec",    "1",        "--duration", "168h", "--start",
        "2026-11-23T00:00:00Z", "--format", "tsv",        NULL};
    const int64_t start = INT64_C(1795392000000), day = 86400000;
    uint64_t hour[24] = {0}, weekday = 0, weekend = 0, outside = 0, bad = 0;
    size_t len, lines = 0;
    char *data, *p, *end;
    struct rec_query q;

    CHECK_EQ_I64(run_gen("traffic", args), 0);
    data = slurp("traffic", "queries.tsv", &len);
    CHECK(data != NULL);
    if (!data)
        return;
    for (p = data, end = data + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        enum rec_reason r = rec_parse_query(REC_TSV, p, (size_t)(nl - p), &q);
        p = nl + 1;
        if (r == REC_EMPTY)
            continue;
        lines++;
        bad += r != REC_OK;
        /* up to 30 s late: count by the slot it was meant for */
        int64_t t = q.time_ms - start + 15000;
        outside += t < 0 || t >= 7 * day + 30000;
        hour[t / 3600000 % 24]++;
        if (t / day >= 5)
            weekend++;
        else
            weekday++;
    }
    free(data);
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(lines, 7 * 86400);
    CHECK_EQ_U64(outside, 0);
    double peak = (double)hour[15] / (double)hour[3];
    double wk = ((double)weekend / 2) / ((double)weekday / 5);
    if (peak < 3.2 || peak > 3.8)
        CHECK_FAIL_AT("15:00 / 03:00 = %.2f, not ~3.5", peak);
    if (wk < 0.68 || wk > 0.72)
        CHECK_FAIL_AT("weekend / weekday = %.3f, not ~0.7", wk);
}

static void remove_tree(void)
{
    static const char *const dirs[] = {
        "usage",  "plain", "plain2", "det_a",   "det_b", "det_c",   "det_d",
        "tricky", "tsv",   "edge",   "traffic", "part1", "forms_a", "forms_b"};
    char path[512];
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        for (size_t f = 0; f < N_FILES; f++) {
            snprintf(path, sizeof path, "%s/%s/%s", tmp_root, dirs[d],
                     all_files[f]);
            unlink(path);
        }
        snprintf(path, sizeof path, "%s/%s", tmp_root, dirs[d]);
        rmdir(path);
    }
    rmdir(tmp_root);
}

int main(void)
{
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_usage);
    RUN(test_plain);
    RUN(test_terms);
    RUN(test_accounts);
    RUN(test_traffic);
    RUN(test_deterministic);
    RUN(test_option_forms);
    RUN(test_tricky_manifest);
    RUN(test_tsv_manifest);
    RUN(test_edges);
    remove_tree();
    return check_done();
}
