/* Unit tests of engine: NDJSON/TSV chunks in, exact counts out; the counts,
 * pending clicks and input progress survive checkpoint + reopen; a close
 * without checkpoint (a crash) goes back to the last checkpoint; the
 * directory lock and identity; read-only opens; damaged files refused with
 * nothing changed, or reported one by one in verification; failed
 * checkpoints; retention; and the same counts for 1 and 3 workers. */
#include "check.h"
#include "checkpoint.h"
#include "crc32c.h"
#include "datadir.h"
#include "engine.h"
#include "testfs.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 INT64_C(1763805600000) /* 2025-11-22T10:00Z, a minute start */
#define M0 29396760u
#define HOUR_MS INT64_C(3600000)

static char tmp_root[64];
static char open_err[CTRD_ERR_LEN]; /* of the last open_engine() */

/* ---- helpers ---- */

/* A fresh, not yet existing data directory under the temporary root. */
static const char *new_dir(const char *name)
{
    static char dir[128];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    return dir;
}

static int open_engine(const char *dir, unsigned workers, int readonly,
                       struct engine **e)
{
    struct engine_config cfg = {
        .data_dir = dir,
        .n_workers = workers,
        .readonly = readonly,
        .join_window_ms = 24 * HOUR_MS,
        .click_timeout_ms = 10 * 60000,
        .retention_ms = 25 * HOUR_MS,
    };
    *e = NULL;
    open_err[0] = '\0';
    return engine_open(&cfg, e, open_err);
}

/* Processes text as one chunk of input number `input`. */
static int process(struct engine *e, enum engine_kind kind, enum rec_format fmt,
                   const char *text, uint32_t input, int64_t now_ms)
{
    char err[CTRD_ERR_LEN] = "";
    struct engine_chunk c = {text, strlen(text), 1, input};
    int rc = engine_process(e, kind, fmt, &c, 1, now_ms, err);
    if (rc != 0)
        CHECK_FAIL_AT("engine_process: %d %s", rc, err);
    return rc;
}

static int checkpoint(struct engine *e)
{
    char err[CTRD_ERR_LEN] = "";
    int rc = engine_checkpoint(e, err);
    if (rc != 0)
        fprintf(stderr, "  engine_checkpoint: %d %s\n", rc, err);
    return rc;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct dump_ctx {
    const struct terms *terms;
    uint64_t ad;
    char **lines;
    size_t n, cap;
};

static void dump_bucket(void *ctx, const struct cm_bucket *b)
{
    struct dump_ctx *d = ctx;
    uint32_t len;
    const char *term = terms_get(d->terms, b->term_id, &len);
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 64;
        d->lines = realloc(d->lines, d->cap * sizeof *d->lines);
        if (!d->lines)
            abort();
    }
    if (asprintf(&d->lines[d->n++], "%llu %.*s %u %llu %llu\n",
                 (unsigned long long)d->ad, (int)len, term, b->minute,
                 (unsigned long long)b->impressions,
                 (unsigned long long)b->clicks) < 0)
        abort();
}

/* Every bucket as "ad term minute impressions clicks", sorted: the counts
 * by term bytes, whatever ids the terms got. Caller frees. */
static char *dump(const struct engine *e)
{
    const struct countmap *cm = engine_counts(e);
    struct dump_ctx d = {engine_terms(e), 0, NULL, 0, 0};
    uint64_t *ads;
    size_t n_ads;
    if (cm_ads(cm, &ads, &n_ads) != 0)
        return NULL;
    for (size_t i = 0; i < n_ads; i++) {
        d.ad = ads[i];
        CHECK_EQ_I64(cm_ad_scan(cm, ads[i], 0, UINT64_MAX, CM_MINUTE,
                                dump_bucket, &d, NULL),
                     0);
    }
    if (d.n != cm_bucket_count(cm))
        CHECK_FAIL_AT("scans found %zu buckets, cm_bucket_count %llu", d.n,
                      (unsigned long long)cm_bucket_count(cm));
    qsort(d.lines, d.n, sizeof *d.lines, line_cmp);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    for (size_t i = 0; i < d.n; i++) {
        fputs(d.lines[i], f);
        free(d.lines[i]);
    }
    fclose(f);
    free(d.lines);
    free(ads);
    return text;
}

static int file_exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* ---- the small hand-written case ---- */

static const char queries_a[] =
    "{\"time\":1763805601000,\"query_id\":\"1\",\"query\":\"Running  Shoes\","
    "\"ad_ids\":[1001,2002]}\n"
    "{\"time\":1763805602000,\"query_id\":2,\"query\":\"running shoes\","
    "\"ad_ids\":[1001]}\n"
    "{\"time\":1763805661000,\"query_id\":3,\"query\":\"red hat\","
    "\"ad_ids\":[1001,3003,1001]}\n"
    "{\"time\":1763805603000,\"query_id\":1,\"query\":\"other\","
    "\"ad_ids\":[3003]}\n"                 /* duplicate query_id */
    "{\"time\":1763805603000,\"query_id\n" /* line 5: bad JSON */
    "\n"                                   /* empty: skipped */
    "{\"time\":\"2025-11-22T10:00:04Z\",\"query_id\":\"4\",\"query\":\"x\","
    "\"ad_ids\":[4004],\"extra\":{\"a\":[1,2]}}"; /* no final LF */

static const char clicks_a[] =
    "{\"time\":1763805605000,\"query_id\":\"1\",\"ad_id\":1001}\n"
    "{\"time\":1763805606000,\"query_id\":\"1\",\"ad_id\":1001,"
    "\"click_id\":\"x\"}\n" /* duplicate */
    "{\"time\":1763805670000,\"query_id\":3,\"ad_id\":3003}\n"
    "{\"time\":1763805670000,\"query_id\":3,\"ad_id\":2002}\n" /* not shown */
    "{\"time\":1763805600000,\"query_id\":99,\"ad_id\":1}\n";  /* waits */

static const char dump_a[] = "1001 red hat 29396761 1 0\n"
                             "1001 running shoes 29396760 2 1\n"
                             "2002 running shoes 29396760 1 0\n"
                             "3003 red hat 29396761 1 1\n"
                             "4004 x 29396760 1 0\n";

/* What query 99 adds when it comes, with its waiting click. */
static const char query_99[] =
    "{\"time\":1763805600100,\"query_id\":99,\"query\":\"late\","
    "\"ad_ids\":[1]}\n";

static void test_small_case_and_reopen(void)
{
    const char *dir = new_dir("small");
    struct engine *e;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    CHECK_EQ_I64(engine_as_of_ms(e), -1);
    int64_t now = T0 + 100000;
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    char *d = dump(e);
    CHECK_EQ_STR(d, dump_a);
    free(d);
    CHECK_EQ_I64(engine_as_of_ms(e), T0 + 61000);
    struct engine_stats st;
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.query_lines, 6);
    CHECK_EQ_U64(st.click_lines, 5);
    CHECK_EQ_U64(st.join.queries_accepted, 4);
    CHECK_EQ_U64(st.join.queries_duplicate, 1);
    CHECK_EQ_U64(st.queries_rejected, 1);
    CHECK_EQ_U64(st.rejects[REC_BAD_JSON], 1);
    CHECK_EQ_U64(st.join.clicks_joined, 2);
    CHECK_EQ_U64(st.join.clicks_duplicate, 1);
    CHECK_EQ_U64(st.join.clicks_deferred, 1);
    CHECK_EQ_U64(st.clicks_rejected, 1);
    CHECK_EQ_U64(st.rejects[REC_CLICK_AD_NOT_SHOWN], 1);
    CHECK_EQ_U64(st.clicks_pending, 1);
    CHECK_EQ_U64(st.n_samples, 2);
    if (st.n_samples == 2) {
        CHECK(st.samples[0].input == 0 && st.samples[0].line == 5 &&
              st.samples[0].reason == REC_BAD_JSON);
        CHECK(st.samples[1].input == 1 && st.samples[1].line == 4 &&
              st.samples[1].reason == REC_CLICK_AD_NOT_SHOWN);
    }
    CHECK_EQ_I64(checkpoint(e), 0);
    engine_close(e);

    /* Reopen: same counts, as_of, and the waiting click is back. */
    if (open_engine(dir, 3, 0, &e) != 0) {
        CHECK_FAIL_AT("reopen: %s", open_err);
        return;
    }
    d = dump(e);
    CHECK_EQ_STR(d, dump_a);
    free(d);
    CHECK_EQ_I64(engine_as_of_ms(e), T0 + 61000);
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.clicks_pending, 1);
    CHECK_EQ_U64(st.join.clicks_joined, 0);
    /* Re-delivered input changes nothing. */
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    d = dump(e);
    CHECK_EQ_STR(d, dump_a);
    free(d);
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.join.queries_duplicate, 5);
    CHECK_EQ_U64(st.join.clicks_duplicate, 3);
    CHECK_EQ_U64(st.clicks_pending, 2);
    /* The restored click joins its query. (The re-delivered copy of it
     * waits too and is a duplicate.) */
    process(e, ENGINE_QUERIES, REC_NDJSON, query_99, 0, now);
    d = dump(e);
    char want[512];
    snprintf(want, sizeof want, "1 late %u 1 1\n%s", M0, dump_a);
    CHECK_EQ_STR(d, want);
    free(d);
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.clicks_pending, 0);
    CHECK_EQ_U64(st.join.clicks_joined, 1);
    CHECK_EQ_U64(st.join.clicks_duplicate, 4);
    engine_close(e);
    testfs_remove_tree(dir);
}

static void test_chunks_and_workers_limit(void)
{
    const char *dir = new_dir("chunks");
    struct engine *e;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    CHECK_EQ_U64(engine_workers(e), 2);
    char err[CTRD_ERR_LEN];
    struct engine_chunk c[3] = {{"", 0, 1, 0}, {"", 0, 1, 1}, {"", 0, 1, 2}};
    CHECK_EQ_I64(engine_process(e, ENGINE_QUERIES, REC_NDJSON, c, 3, T0, err),
                 CTRD_EINVAL);
    /* Line numbers come from first_line; TSV works the same. */
    const char *tsv = "1763805600000\t5\t7,8\tTSV  Term\nbad line\n";
    struct engine_chunk one = {tsv, strlen(tsv), 41, 6};
    CHECK_EQ_I64(engine_process(e, ENGINE_QUERIES, REC_TSV, &one, 1, T0, err),
                 0);
    struct engine_stats st;
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.n_samples, 1);
    CHECK(st.samples[0].input == 6 && st.samples[0].line == 42 &&
          st.samples[0].reason == REC_BAD_TSV);
    char *d = dump(e);
    char want[128];
    snprintf(want, sizeof want, "7 tsv term %u 1 0\n8 tsv term %u 1 0\n", M0,
             M0);
    CHECK_EQ_STR(d, want);
    free(d);
    engine_close(e);
    testfs_remove_tree(dir);
}

static void test_progress(void)
{
    const char *dir = new_dir("progress");
    struct engine *e;
    if (open_engine(dir, 1, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    uint64_t off = 1, lines = 1;
    CHECK_EQ_I64(engine_progress_get(e, "q.ndjson", &off, &lines),
                 CTRD_ENOTFOUND);
    CHECK_EQ_I64(engine_progress_set(e, "q.ndjson", 123, 4), 0);
    CHECK_EQ_I64(engine_progress_set(e, "c.tsv", 7, 1), 0);
    CHECK_EQ_I64(engine_progress_set(e, "q.ndjson", 456, 8), 0); /* update */
    CHECK_EQ_I64(engine_progress_get(e, "q.ndjson", &off, &lines), 0);
    CHECK(off == 456 && lines == 8);
    CHECK_EQ_I64(engine_progress_set(e, "has space", 1, 1), CTRD_EINVAL);
    CHECK_EQ_I64(engine_progress_set(e, "tab\there", 1, 1), CTRD_EINVAL);
    char long_key[80];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CHECK_EQ_I64(engine_progress_set(e, long_key, 1, 1), CTRD_EINVAL);
    long_key[63] = '\0'; /* 63 bytes: fits */
    CHECK_EQ_I64(engine_progress_set(e, long_key, UINT64_MAX, UINT64_MAX), 0);
    CHECK_EQ_I64(checkpoint(e), 0);
    CHECK_EQ_I64(engine_progress_set(e, "q.ndjson", 999, 99), 0);
    engine_close(e); /* no checkpoint: 999 is lost */
    if (open_engine(dir, 1, 0, &e) != 0) {
        CHECK_FAIL_AT("reopen: %s", open_err);
        return;
    }
    CHECK_EQ_I64(engine_progress_get(e, "q.ndjson", &off, &lines), 0);
    CHECK(off == 456 && lines == 8);
    CHECK_EQ_I64(engine_progress_get(e, "c.tsv", &off, &lines), 0);
    CHECK(off == 7 && lines == 1);
    CHECK_EQ_I64(engine_progress_get(e, long_key, &off, &lines), 0);
    CHECK(off == UINT64_MAX && lines == UINT64_MAX);
    CHECK_EQ_I64(engine_progress_get(e, "has", &off, &lines), CTRD_ENOTFOUND);
    engine_close(e);
    testfs_remove_tree(dir);
}

static const char queries_b[] =
    "{\"time\":1763805720000,\"query_id\":10,\"query\":\"Blue Hat\","
    "\"ad_ids\":[1001,4004]}\n"
    "{\"time\":1763805721000,\"query_id\":11,\"query\":\"new term only b\","
    "\"ad_ids\":[5005]}\n";
static const char clicks_b[] =
    "{\"time\":1763805730000,\"query_id\":10,\"ad_id\":4004}\n"
    "{\"time\":1763805730000,\"query_id\":1,\"ad_id\":2002}\n";

static void test_crash_reverts_to_checkpoint(void)
{
    const char *dir = new_dir("crash");
    struct engine *e;
    int64_t now = T0 + 200000;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    engine_progress_set(e, "a", 100, 5);
    CHECK_EQ_I64(checkpoint(e), 0);
    uint32_t terms_a = terms_count(engine_terms(e));
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_b, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_b, 1, now);
    engine_progress_set(e, "a", 200, 9);
    char *after_b = dump(e);
    CHECK(after_b && strcmp(after_b, dump_a) != 0);
    CHECK(terms_count(engine_terms(e)) > terms_a);
    engine_close(e); /* a crash: no checkpoint */

    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("reopen: %s", open_err);
        free(after_b);
        return;
    }
    char *d = dump(e);
    CHECK_EQ_STR(d, dump_a);
    free(d);
    uint64_t off = 0, lines = 0;
    CHECK_EQ_I64(engine_progress_get(e, "a", &off, &lines), 0);
    CHECK(off == 100 && lines == 5);
    CHECK_EQ_U64(terms_count(engine_terms(e)), terms_a);
    uint32_t id;
    CHECK_EQ_I64(
        terms_find((struct terms *)engine_terms(e), "new term only b", 15, &id),
        CTRD_ENOTFOUND);
    /* Replaying from the recorded progress gives the same counts as the
     * run that crashed: no query or click lost or counted twice. */
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_b, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_b, 1, now);
    d = dump(e);
    CHECK_EQ_STR(d, after_b ? after_b : "");
    free(d);
    CHECK_EQ_I64(checkpoint(e), 0);
    engine_close(e);
    /* And a second crash right after a checkpoint loses nothing. */
    if (open_engine(dir, 1, 0, &e) == 0) {
        d = dump(e);
        CHECK_EQ_STR(d, after_b ? after_b : "");
        free(d);
        engine_close(e);
    }
    free(after_b);
    testfs_remove_tree(dir);
}

static void test_lock_and_readonly(void)
{
    const char *dir = new_dir("lock");
    struct engine *e, *other;
    int64_t now = T0 + 200000;
    /* Read-only needs a checkpoint to read. */
    CHECK_EQ_I64(open_engine(dir, 1, 1, &other), CTRD_ENOTFOUND);
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    CHECK_EQ_I64(open_engine(dir, 2, 0, &other), CTRD_EBUSY);
    CHECK(other == NULL);
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    CHECK_EQ_I64(checkpoint(e), 0);
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_b, 0, now);
    CHECK_EQ_I64(open_engine(dir, 1, 0, &other), CTRD_EBUSY);
    /* A reader beside the writer sees the last checkpoint only. */
    CHECK_EQ_I64(open_engine(dir, 0, 1, &other), 0);
    if (other) {
        char *d = dump(other);
        CHECK_EQ_STR(d, dump_a);
        free(d);
        CHECK_EQ_I64(engine_as_of_ms(other), T0 + 61000);
        engine_close(other);
    }
    engine_close(e);
    /* The lock goes with the engine. */
    CHECK_EQ_I64(open_engine(dir, 1, 0, &e), 0);
    engine_close(e);
    testfs_remove_tree(dir);
}

/* Old files go once a checkpoint no longer names them. */
static void test_garbage_removed(void)
{
    const char *dir = new_dir("garbage");
    struct engine *e;
    int64_t now = T0 + 200000;
    if (open_engine(dir, 1, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    CHECK_EQ_I64(checkpoint(e), 0);
    CHECK(file_exists(dir, "MANIFEST"));
    CHECK(file_exists(dir, "counts-1.dat"));
    CHECK(file_exists(dir, "pending-1.dat"));
    process(e, ENGINE_QUERIES, REC_NDJSON, query_99, 0, now);
    CHECK_EQ_I64(checkpoint(e), 0);
    CHECK(file_exists(dir, "counts-2.delta")); /* the snapshot's delta */
    CHECK(file_exists(dir, "counts-1.dat"));
    CHECK(!file_exists(dir, "pending-1.dat")); /* nothing waits now */
    CHECK(!file_exists(dir, "pending-2.dat"));
    engine_close(e);
    /* Files of a checkpoint that crashed before its MANIFEST: left alone
     * by the open, deleted by the next checkpoint. Files whose names are
     * not ctrd's stay. */
    static const char *const strays[] = {
        "q489946-9-0.run", "m489946-9-1.marks", "counts-9.dat", "MANIFEST.tmp",
        "notes.txt",       "counts-9.dat.bak",  "q1-2.run"};
    enum { N_OURS = 4, N_STRAYS = 7 };
    for (size_t i = 0; i < N_STRAYS; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, strays[i]);
        testfs_write(path, "x", 1);
    }
    if (open_engine(dir, 1, 0, &e) != 0) {
        CHECK_FAIL_AT("reopen: %s", open_err);
    } else {
        for (size_t i = 0; i < N_STRAYS; i++)
            CHECK(file_exists(dir, strays[i]));
        char *d = dump(e);
        char want[512];
        snprintf(want, sizeof want, "1 late %u 1 1\n%s", M0, dump_a);
        CHECK_EQ_STR(d, want);
        free(d);
        CHECK_EQ_I64(checkpoint(e), 0);
        for (size_t i = 0; i < N_STRAYS; i++) {
            if (file_exists(dir, strays[i]) != (i >= N_OURS))
                CHECK_FAIL_AT("%s: %s", strays[i],
                              i < N_OURS ? "not deleted" : "deleted");
        }
        CHECK(file_exists(dir, "terms.dat"));
        engine_close(e);
    }
    testfs_remove_tree(dir);
}

/* Every file under dir (recursively) with its size and checksum, one a
 * line, sorted: equal snapshots mean nothing on disk changed. */
static void snapshot_into(const char *dir, const char *rel, FILE *out)
{
    char path[512], sub[512];
    snprintf(path, sizeof path, "%s%s%s", dir, rel[0] ? "/" : "", rel);
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
            strcmp(name, "LOCK") != 0) {
            snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", name);
            char file[1024];
            struct stat st;
            snprintf(file, sizeof file, "%s/%s", dir, sub);
            if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
                snapshot_into(dir, sub, out);
            } else {
                size_t len;
                unsigned char *bytes = testfs_read(file, &len);
                fprintf(out, "%s %zu %08x\n", sub, len, crc32c(0, bytes, len));
                free(bytes);
            }
        }
        free(names[i]);
    }
    if (n >= 0)
        free(names);
}

static char *snapshot(const char *dir)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    snapshot_into(dir, "", f);
    fclose(f);
    return text;
}

/* A directory is ctrd's when it has a MANIFEST; a new one gets its own at
 * the first open. Without one, a directory holding anything but a lock is
 * refused, and nothing in it is touched. */
static void test_directory_identity(void)
{
    const char *dir = new_dir("identity");
    struct engine *e;
    char path[512];
    CHECK_EQ_I64(open_engine(dir, 1, 0, &e), 0);
    engine_close(e);
    CHECK(file_exists(dir, "MANIFEST"));
    CHECK_EQ_I64(open_engine(dir, 1, 1, &e), 0); /* readable, empty */
    engine_close(e);
    testfs_remove_tree(dir);
    /* Not ctrd's: refused, left as it was. */
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/photo.jpg", dir);
    testfs_write(path, "jpeg", 4);
    char *before = snapshot(dir);
    CHECK_EQ_I64(open_engine(dir, 1, 0, &e), CTRD_EINVAL);
    CHECK(strstr(open_err, "photo.jpg") != NULL);
    char *after = snapshot(dir);
    CHECK_EQ_STR(after, before);
    free(before);
    free(after);
    CHECK(!file_exists(dir, "MANIFEST"));
    unlink(path);
    /* ctrd's files without their MANIFEST: refused, left as they were. */
    CHECK_EQ_I64(open_engine(dir, 1, 0, &e), 0);
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, T0);
    CHECK_EQ_I64(checkpoint(e), 0);
    engine_close(e);
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    unlink(path);
    before = snapshot(dir);
    CHECK_EQ_I64(open_engine(dir, 1, 0, &e), CTRD_ECORRUPT);
    CHECK(strstr(open_err, "no MANIFEST") != NULL);
    CHECK_EQ_I64(open_engine(dir, 1, 1, &e), CTRD_ECORRUPT);
    after = snapshot(dir);
    CHECK_EQ_STR(after, before);
    free(before);
    free(after);
    testfs_remove_tree(dir);
}

/* A MANIFEST (with a valid checksum) that names a file outside the
 * directory, or a name that is not a checkpoint's, is refused. */
static void test_manifest_names_only_its_files(void)
{
    static const char *const facts[] = {
        "seq 1\ncounts ../counts-1.dat 40 00000000\n",
        "seq 1\npending /etc/passwd 40 00000000\n",
        "seq 1\nrun 5 terms.dat 40 00000000\n",
        "seq 1\nmarks 5 MANIFEST.tmp 40 00000000\n",
    };
    const char *dir = new_dir("names");
    char err[CTRD_ERR_LEN];
    for (size_t i = 0; i < sizeof facts / sizeof *facts; i++) {
        struct engine *e;
        testfs_remove_tree(dir);
        mkdir(dir, 0755);
        CHECK_EQ_I64(
            datadir_write_manifest(dir, facts[i], strlen(facts[i]), err), 0);
        CHECK_EQ_I64(open_engine(dir, 1, 0, &e), CTRD_ECORRUPT);
        CHECK(strstr(open_err, "bad line") != NULL);
        CHECK_EQ_I64(open_engine(dir, 1, 1, &e), CTRD_ECORRUPT);
    }
    testfs_remove_tree(dir);
}

/* A directory with every kind of file: a checkpoint with runs, marks,
 * pending clicks, counts (a snapshot, of seq 1, and a delta) and terms. */
static int make_full_dir(const char *dir)
{
    struct engine *e;
    if (open_engine(dir, 2, 0, &e) != 0)
        return -1;
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, T0 + 200000);
    int rc = checkpoint(e);
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, T0 + 200000);
    if (rc == 0)
        rc = checkpoint(e);
    engine_close(e);
    return rc;
}

/* The byte table of checkpoint.c's PENDING FILE: the one click waiting in
 * make_full_dir's directory (query 99, ad 1, line 5 of its input). */
static void test_pending_format(void)
{
    const char *dir = new_dir("pending");
    if (make_full_dir(dir) != 0) {
        CHECK_FAIL_AT("make_full_dir");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/pending-2.dat", dir);
    size_t len;
    unsigned char *file = testfs_read(path, &len);
    CHECK_EQ_U64(testfs_content_len(file, len), 40);
    uint64_t rec[5];
    memcpy(rec, file, 40);
    CHECK_EQ_U64(rec[0], 99);
    CHECK_EQ_U64(rec[1], 1);
    CHECK_EQ_I64((int64_t)rec[2], T0);
    CHECK_EQ_I64((int64_t)rec[3], T0 + 200000);
    CHECK_EQ_U64(rec[4], 5);
    free(file);
    testfs_remove_tree(dir);
}

static void collect_problem(void *ctx, const char *problem)
{
    (*(int *)ctx)++;
    CHECK(strchr(problem, '/') != NULL); /* names the file */
}

/* Damage one file of dir in way k: a bit flipped at one of 5 places, cut
 * to half, deleted. */
static void damage_file(const char *path, const unsigned char *good, size_t len,
                        int k)
{
    size_t at[] = {0, len / 3, len / 2, len > 9 ? len - 9 : 0, len - 1};
    unsigned char *bad = malloc(len);
    memcpy(bad, good, len);
    if (k < 5) {
        bad[at[k]] ^= 0x04;
        testfs_write(path, bad, len);
    } else if (k == 5) {
        testfs_write(path, bad, len / 2);
    } else {
        unlink(path);
    }
    free(bad);
}
enum { DAMAGE_KINDS = 7 };

/* Every file of a checkpoint, flipped (a bit at several places), cut or
 * deleted: the open fails with CTRD_ECORRUPT naming the file, read-only
 * too, and nothing on disk changes. */
static void test_damaged_files_refused(void)
{
    const char *dir = new_dir("damaged");
    if (make_full_dir(dir) != 0) {
        CHECK_FAIL_AT("make_full_dir");
        return;
    }
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    unsigned files = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        struct stat st;
        if (name[0] != '.' && strcmp(name, "LOCK") != 0 &&
            stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
            files++;
            size_t len;
            unsigned char *good = testfs_read(path, &len);
            int ro_reads = strcmp(name, "terms.dat") == 0 ||
                           strncmp(name, "counts", 6) == 0 ||
                           strcmp(name, "MANIFEST") == 0;
            for (int k = 0; k < DAMAGE_KINDS; k++) {
                struct engine *e;
                damage_file(path, good, len, k);
                char *before = snapshot(dir);
                int rc = open_engine(dir, 2, 0, &e);
                if (rc != CTRD_ECORRUPT && rc != CTRD_ENOTFOUND)
                    CHECK_FAIL_AT("%s (damage %d): open rc %d", name, k, rc);
                if (!strstr(open_err, name) && !strstr(open_err, "MANIFEST"))
                    CHECK_FAIL_AT("%s (damage %d): '%s'", name, k, open_err);
                engine_close(rc == 0 ? e : NULL);
                int ro = open_engine(dir, 1, 1, &e);
                if (ro_reads && ro == 0)
                    CHECK_FAIL_AT("%s (damage %d): read-only open worked", name,
                                  k);
                engine_close(ro == 0 ? e : NULL);
                char *after = snapshot(dir);
                if (strcmp(before, after) != 0)
                    CHECK_FAIL_AT("%s (damage %d): the open changed the disk",
                                  name, k);
                free(before);
                free(after);
            }
            testfs_write(path, good, len);
            free(good);
        }
        free(names[i]);
    }
    free(names);
    CHECK(files >= 7); /* MANIFEST terms counts (2) pending run marks */
    testfs_remove_tree(dir);
}

/* Verification reports each damaged file and goes on (the engine opens);
 * it never creates a directory. */
static void test_verification_reports_all(void)
{
    const char *dir = new_dir("verify");
    if (make_full_dir(dir) != 0) {
        CHECK_FAIL_AT("make_full_dir");
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/counts-1.dat", dir);
    CHECK_EQ_I64(unlink(path), 0);
    snprintf(path, sizeof path, "%s/counts-2.delta", dir);
    testfs_write(path, "x", 1);
    snprintf(path, sizeof path, "%s/pending-2.dat", dir);
    testfs_write(path, "x", 1);
    int problems = 0;
    struct engine_config cfg = {.data_dir = dir,
                                .n_workers = 2,
                                .join_window_ms = 24 * HOUR_MS,
                                .click_timeout_ms = 600000,
                                .retention_ms = 25 * HOUR_MS,
                                .report = collect_problem,
                                .report_ctx = &problems};
    struct engine *e = NULL;
    CHECK_EQ_I64(engine_open(&cfg, &e, open_err), 0);
    CHECK_EQ_I64(problems, 3);
    engine_close(e);
    testfs_remove_tree(dir);
    cfg.data_dir = new_dir("verify-absent");
    CHECK_EQ_I64(engine_open(&cfg, &e, open_err), CTRD_ENOTFOUND);
    CHECK(!file_exists(cfg.data_dir, ""));
}

/* A checkpoint that fails — a file in the way, or any write failing part
 * way (the disk full: files may not grow past a limit) — leaves the engine
 * holding and counting what it held, and a later checkpoint commits it
 * all: a reopen gives exactly the counts of an engine that never failed. */
static void test_failed_checkpoint_then_good_one(void)
{
    const char *dir = new_dir("failed");
    char path[256], err[CTRD_ERR_LEN];
    struct engine *e;
    int64_t now = T0 + 200000;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    process(e, ENGINE_QUERIES, REC_NDJSON, queries_a, 0, now);
    CHECK_EQ_I64(checkpoint(e), 0); /* seq 1 */
    process(e, ENGINE_CLICKS, REC_NDJSON, clicks_a, 1, now);
    snprintf(path, sizeof path, "%s/counts-2.delta", dir);
    mkdir(path, 0755); /* in the way of seq 2's counts delta */
    CHECK(engine_checkpoint(e, err) != 0);
    rmdir(path);
    /* Every file written, the MANIFEST not: the delta goes, and a later
     * checkpoint's holds its changes again. */
    snprintf(path, sizeof path, "%s/MANIFEST.tmp", dir);
    mkdir(path, 0755);
    CHECK(engine_checkpoint(e, err) != 0);
    CHECK(!file_exists(dir, "counts-3.delta"));
    rmdir(path);
    /* Writes fail from small to large: each checkpoint gets further. */
    static const rlim_t limits[] = {1, 40, 100, 200, 340};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        char q[256];
        snprintf(q, sizeof q,
                 "{\"time\":%lld,\"query_id\":%zu,\"query\":"
                 "\"try %zu\",\"ad_ids\":[5]}\n",
                 (long long)(T0 + 1000 * (int64_t)i), 500 + i, i);
        process(e, ENGINE_QUERIES, REC_NDJSON, q, 0, now);
        testfs_limit_file_size(limits[i]);
        int rc = engine_checkpoint(e, err);
        testfs_limit_file_size(RLIM_INFINITY);
        if (rc == 0)
            CHECK_FAIL_AT("checkpoint under a %llu-byte limit worked",
                          (unsigned long long)limits[i]);
    }
    char *live = dump(e);
    CHECK_EQ_I64(checkpoint(e), 0);
    engine_close(e);
    int rc = open_engine(dir, 2, 0, &e);
    if (rc != 0)
        CHECK_FAIL_AT("reopen after failed checkpoints: %s", open_err);
    if (rc == 0) {
        char *d = dump(e);
        CHECK_EQ_STR(d, live);
        CHECK(strstr(d, "5 try 4 ") != NULL);
        free(d);
        engine_close(e);
    }
    free(live);
    testfs_remove_tree(dir);
}

/* What the MANIFEST of dir says of the counts, and the counts files in
 * dir it does not name. */
struct chain_facts {
    char snapshot[64];
    uint64_t snapshot_bytes, delta_bytes;
    unsigned deltas, strays;
};

static struct chain_facts chain_facts(const char *dir)
{
    struct chain_facts f = {.snapshot = ""};
    char *facts, err[CTRD_ERR_LEN];
    size_t len;
    if (datadir_read_manifest(dir, &facts, &len, err) != 0) {
        CHECK_FAIL_AT("%s", err);
        return f;
    }
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        f.strays += strncmp(names[i]->d_name, "counts-", 7) == 0 &&
                    !datadir_names_file(facts, names[i]->d_name);
        free(names[i]);
    }
    if (n >= 0)
        free(names);
    char *save;
    for (char *line = strtok_r(facts, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char kind[16], name[64];
        unsigned long long bytes;
        if (sscanf(line, "%15s %63s %llu", kind, name, &bytes) != 3)
            continue;
        if (strcmp(kind, "counts") == 0) {
            snprintf(f.snapshot, sizeof f.snapshot, "%s", name);
            f.snapshot_bytes = bytes;
        } else if (strcmp(kind, "countdelta") == 0) {
            f.deltas++;
            f.delta_bytes += bytes;
        }
    }
    free(facts);
    return f;
}

/* One query at t (its id and term from i) for ads a and b, and a click
 * for the query of i - 10 (when there is one), then a checkpoint. */
static int count_and_checkpoint(struct engine *e, unsigned i, int64_t t,
                                unsigned a, unsigned b)
{
    char text[256];
    snprintf(text, sizeof text,
             "{\"time\":%lld,\"query_id\":%u,\"query\":\"term %u\","
             "\"ad_ids\":[%u,%u]}\n",
             (long long)t, 1000 + i, i % 9, a, b);
    process(e, ENGINE_QUERIES, REC_NDJSON, text, 0, t + 1000);
    if (i >= 10) {
        snprintf(text, sizeof text,
                 "{\"time\":%lld,\"query_id\":%u,\"ad_id\":%u}\n", (long long)t,
                 1000 + i - 10, 1 + (i - 10) % 5);
        process(e, ENGINE_CLICKS, REC_NDJSON, text, 1, t + 1000);
    }
    return checkpoint(e);
}

/* Checkpoints write count deltas on a snapshot: the chain's bytes stay
 * within the snapshot's (but for the newest delta's checksum trailer,
 * which the rule does not foresee) and its length within CKPT_DELTAS_MAX;
 * a new snapshot replaces the chain, whose files go; at every checkpoint
 * a read-only open reads exactly the live counts (late clicks among
 * them). */
static void test_counts_chain(void)
{
    const char *dir = new_dir("chain");
    struct engine *e, *ro;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    char last[64] = "";
    unsigned snapshots = 0, longest = 0;
    for (unsigned i = 0; i < 100; i++) {
        /* 60 checkpoints of new buckets, then 40 that change one */
        int64_t t = T0 + (i < 60 ? (int64_t)i * 20000 : 0);
        if (count_and_checkpoint(e, i, t, i < 60 ? 1 + i % 5 : 1,
                                 i < 60 ? 50 + i % 2 : 1) != 0)
            break;
        struct chain_facts f = chain_facts(dir);
        if (f.deltas > CKPT_DELTAS_MAX ||
            f.delta_bytes > f.snapshot_bytes + FS_FOOTER_BYTES + 4 || f.strays)
            CHECK_FAIL_AT("checkpoint %u: %u deltas of %llu bytes on a "
                          "snapshot of %llu, %u counts files not named",
                          i, f.deltas, (unsigned long long)f.delta_bytes,
                          (unsigned long long)f.snapshot_bytes, f.strays);
        snapshots += strcmp(f.snapshot, last) != 0;
        snprintf(last, sizeof last, "%s", f.snapshot);
        longest = f.deltas > longest ? f.deltas : longest;
        if (open_engine(dir, 1, 1, &ro) != 0) {
            CHECK_FAIL_AT("checkpoint %u: read-only open: %s", i, open_err);
            continue;
        }
        char *want = dump(e), *got = dump(ro);
        if (strcmp(want, got) != 0)
            CHECK_FAIL_AT("checkpoint %u: reopened counts differ", i);
        free(want);
        free(got);
        engine_close(ro);
    }
    CHECK(snapshots >= 3);
    CHECK_EQ_U64(longest, CKPT_DELTAS_MAX);
    engine_close(e);
    testfs_remove_tree(dir);
}

/* Queries older than the retention horizon cannot be checked for
 * duplicates any more: they are rejected, never counted twice. */
static void test_retention(void)
{
    const char *dir = new_dir("retention");
    struct engine *e;
    int64_t now = T0 + 31 * HOUR_MS;
    if (open_engine(dir, 2, 0, &e) != 0) {
        CHECK_FAIL_AT("open: %s", open_err);
        return;
    }
    char late[256];
    snprintf(late, sizeof late,
             "{\"time\":%lld,\"query_id\":2000,\"query\":\"late\","
             "\"ad_ids\":[7]}\n",
             (long long)(T0 + 30 * HOUR_MS));
    static const char early[] =
        "{\"time\":1763805600000,\"query_id\":1000,\"query\":\"early\","
        "\"ad_ids\":[7]}\n";
    process(e, ENGINE_QUERIES, REC_NDJSON, early, 0, now);
    process(e, ENGINE_QUERIES, REC_NDJSON, late, 0, now);
    CHECK_EQ_I64(checkpoint(e), 0); /* horizon: T0 + 5 h */
    process(e, ENGINE_QUERIES, REC_NDJSON, early, 0, now); /* again */
    struct engine_stats st;
    engine_get_stats(e, &st);
    CHECK_EQ_U64(st.rejects[REC_QUERY_TOO_OLD], 1);
    CHECK_EQ_U64(st.join.queries_accepted, 2);
    char *d = dump(e);
    char want[256];
    snprintf(want, sizeof want, "7 early %u 1 0\n7 late %u 1 0\n", M0,
             M0 + 30 * 60);
    CHECK_EQ_STR(d, want);
    free(d);
    /* A bogus far-future query does not move the horizon. */
    static const char future[] =
        "{\"time\":253402300799999,\"query_id\":3000,\"query\":\"future\","
        "\"ad_ids\":[8]}\n";
    process(e, ENGINE_QUERIES, REC_NDJSON, future, 0, now);
    CHECK_EQ_I64(engine_as_of_ms(e), T0 + 30 * HOUR_MS);
    engine_close(e);
    testfs_remove_tree(dir);
}

/* ---- 1 worker vs 3 workers ---- */

struct input {
    char *text;
    size_t len;
    uint64_t impressions; /* distinct ads of the first valid records */
};

static unsigned ads_of(unsigned i, uint64_t *ads)
{
    unsigned n = 1 + i % 4;
    for (unsigned k = 0; k < n; k++)
        ads[k] = 1000 + (i * 7 + k * 13) % 60;
    return n;
}

static int64_t time_of(unsigned i)
{
    return T0 + (int64_t)i * 1700;
}

static void gen_queries(struct input *in)
{
    FILE *f = open_memstream(&in->text, &in->len);
    in->impressions = 0;
    for (unsigned i = 1; i <= 3000; i++) {
        uint64_t ads[4];
        unsigned n = ads_of(i, ads), qid = i;
        if (i % 97 == 0) { /* a duplicate of an earlier query */
            qid = i - 50;
            n = ads_of(i + 1, ads);
        }
        if (i % 211 == 0) {
            fprintf(f, "{\"time\":%lld,\"query_id\":%u,\"query\":\"broken\n",
                    (long long)time_of(i), qid);
            continue;
        }
        if (i % 301 == 0)
            fputc('\n', f);
        fprintf(f,
                "{\"time\":%lld,\"query_id\":\"%u\",\"query\":\"Term  %u\","
                "\"ad_ids\":[",
                (long long)time_of(i), qid, i % 23);
        for (unsigned k = 0; k < n; k++)
            fprintf(f, "%s%llu", k ? "," : "", (unsigned long long)ads[k]);
        fputs("]}\n", f);
        if (i % 97 != 0)
            in->impressions += n;
    }
    fclose(f);
}

/* TSV clicks: early ones (before their queries) or late ones. */
static void gen_clicks(struct input *in, int early)
{
    FILE *f = open_memstream(&in->text, &in->len);
    for (unsigned k = 1; k <= 1500; k++) {
        unsigned qid = early ? 2000 + (k % 500) * 2 : (k * 13) % 3000 + 1;
        uint64_t ads[4];
        unsigned n = ads_of(qid, ads);
        uint64_t ad = ads[k % n];
        if (k % 17 == 0)
            ad = 999; /* never shown */
        int64_t t = time_of(qid) + (int64_t)(k % 50) * 1000;
        if (k % 29 == 0)
            t = time_of(qid) + 25 * HOUR_MS; /* outside the window */
        fprintf(f, "%lld\t%u\t%llu\tc-%u\n", (long long)t, qid,
                (unsigned long long)ad, k);
        if (k % 10 == 0) /* a double click */
            fprintf(f, "%lld\t%u\t%llu\n", (long long)t + 300, qid,
                    (unsigned long long)ad);
    }
    fclose(f);
}

/* Splits text into n chunks at line ends, numbering lines on. */
static unsigned split(const struct input *in, uint32_t input, unsigned n,
                      struct engine_chunk *out)
{
    size_t start = 0;
    uint64_t line = 1;
    unsigned k = 0;
    for (; k < n && start < in->len; k++) {
        size_t end = k == n - 1 ? in->len : in->len * (k + 1) / n;
        while (end < in->len && in->text[end - 1] != '\n')
            end++;
        out[k] =
            (struct engine_chunk){in->text + start, end - start, line, input};
        for (size_t i = start; i < end; i++)
            line += in->text[i] == '\n';
        start = end;
    }
    return k;
}

/* Runs the three inputs through an engine of `workers` workers, the
 * inputs split in three chunks each; returns the dump and stats. */
static char *run_inputs(const char *dir, unsigned workers,
                        const struct input *in, struct engine_stats *st)
{
    static const enum engine_kind kinds[] = {ENGINE_CLICKS, ENGINE_QUERIES,
                                             ENGINE_CLICKS};
    static const enum rec_format fmts[] = {REC_TSV, REC_NDJSON, REC_TSV};
    struct engine *e;
    char err[CTRD_ERR_LEN];
    if (open_engine(dir, workers, 0, &e) != 0)
        return NULL;
    for (unsigned i = 0; i < 3; i++) {
        struct engine_chunk c[3];
        unsigned n = split(&in[i], i, 3, c);
        for (unsigned k = 0; k < n; k += workers) {
            unsigned m = n - k < workers ? n - k : workers;
            if (engine_process(e, kinds[i], fmts[i], c + k, m, T0, err) != 0)
                CHECK_FAIL_AT("engine_process: %s", err);
        }
    }
    engine_get_stats(e, st);
    char *d = dump(e);
    engine_close(e);
    return d;
}

static struct engine_stats s1, s3; /* of test_one_vs_three_workers */

static void test_one_vs_three_workers(void)
{
    struct input in[3];
    gen_clicks(&in[0], 1);
    gen_queries(&in[1]);
    gen_clicks(&in[2], 0);
    const char *dir1 = new_dir("w1");
    char *d1 = run_inputs(dir1, 1, in, &s1);
    testfs_remove_tree(dir1);
    const char *dir3 = new_dir("w3");
    char *d3 = run_inputs(dir3, 3, in, &s3);
    testfs_remove_tree(dir3);
    CHECK(d1 != NULL && d3 != NULL);
    if (d1 && d3) {
        CHECK(strcmp(d1, d3) == 0);
        /* Impressions add up to the distinct ads of accepted queries. */
        uint64_t imps = 0, clicks = 0;
        for (const char *p = d1; *p;) {
            const char *nl = strchr(p, '\n');
            const char *sp = nl;
            for (int k = 0; k < 2; k++)
                while (*--sp != ' ')
                    ;
            unsigned long long a, b;
            if (sscanf(sp, " %llu %llu", &a, &b) == 2) {
                imps += a;
                clicks += b;
            }
            p = nl + 1;
        }
        CHECK_EQ_U64(imps, in[1].impressions);
        CHECK_EQ_U64(clicks, s1.join.clicks_joined);
    }
    CHECK_EQ_U64(s1.join.queries_accepted, s3.join.queries_accepted);
    CHECK_EQ_U64(s1.join.queries_duplicate, s3.join.queries_duplicate);
    CHECK_EQ_U64(s1.join.clicks_joined, s3.join.clicks_joined);
    CHECK_EQ_U64(s1.join.clicks_duplicate, s3.join.clicks_duplicate);
    CHECK_EQ_U64(s1.join.clicks_rejected, s3.join.clicks_rejected);
    CHECK_EQ_U64(s1.clicks_pending, s3.clicks_pending);
    CHECK_EQ_U64(s1.query_lines, s3.query_lines);
    CHECK_EQ_U64(s1.click_lines, s3.click_lines);
    for (int r = 0; r < REC_REASON_COUNT; r++)
        CHECK_EQ_U64(s1.rejects[r], s3.rejects[r]);
    CHECK_EQ_U64(s1.query_lines, 3000);
    CHECK_EQ_U64(s1.click_lines, 2 * (1500 + 150));
    CHECK_EQ_U64(s1.rejects[REC_BAD_JSON], 3000 / 211);
    CHECK_EQ_U64(s1.join.queries_duplicate, 3000 / 97);
    CHECK_EQ_U64(s1.join.queries_accepted, 3000 - 3000 / 211 - 3000 / 97);
    CHECK(s1.join.clicks_joined > 1000);
    CHECK(s1.join.clicks_duplicate > 100);
    CHECK(s1.rejects[REC_CLICK_AD_NOT_SHOWN] > 100);
    printf("  joined %llu, duplicate %llu, rejected %llu, pending %llu\n",
           (unsigned long long)s1.join.clicks_joined,
           (unsigned long long)s1.join.clicks_duplicate,
           (unsigned long long)s1.join.clicks_rejected,
           (unsigned long long)s1.clicks_pending);
    free(d1);
    free(d3);
    for (int i = 0; i < 3; i++)
        free(in[i].text);
}

/* The reject samples are "the first rejects by (input, line)": the same
 * whatever the number of workers, even when one worker meets more than
 * ENGINE_REJECT_SAMPLES rejects in a batch, out of line order (waiting
 * clicks are judged in the order their queries arrive). */
static void test_reject_samples_one_vs_three(void)
{
    CHECK_EQ_U64(s1.n_samples, ENGINE_REJECT_SAMPLES);
    CHECK_EQ_U64(s3.n_samples, ENGINE_REJECT_SAMPLES);
    for (size_t i = 0; i < s1.n_samples && i < s3.n_samples; i++) {
        if (s1.samples[i].input != s3.samples[i].input ||
            s1.samples[i].line != s3.samples[i].line ||
            s1.samples[i].reason != s3.samples[i].reason) {
            CHECK_FAIL_AT(
                "reject sample %zu differs: 1 worker (%u, %llu, "
                "%s), 3 workers (%u, %llu, %s)",
                i, s1.samples[i].input, (unsigned long long)s1.samples[i].line,
                rec_reason_name(s1.samples[i].reason), s3.samples[i].input,
                (unsigned long long)s3.samples[i].line,
                rec_reason_name(s3.samples[i].reason));
            break;
        }
    }
}

int main(void)
{
    snprintf(tmp_root, sizeof tmp_root, "/tmp/ctrd-engine-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_small_case_and_reopen);
    RUN(test_chunks_and_workers_limit);
    RUN(test_progress);
    RUN(test_crash_reverts_to_checkpoint);
    RUN(test_lock_and_readonly);
    RUN(test_garbage_removed);
    RUN(test_directory_identity);
    RUN(test_manifest_names_only_its_files);
    RUN(test_damaged_files_refused);
    RUN(test_verification_reports_all);
    RUN(test_pending_format);
    RUN(test_retention);
    RUN(test_one_vs_three_workers);
    RUN(test_reject_samples_one_vs_three);
    RUN(test_failed_checkpoint_then_good_one);
    RUN(test_counts_chain);
    testfs_remove_tree(tmp_root);
    return check_done();
}
