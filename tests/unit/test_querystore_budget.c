/* Unit tests of the QueryStore under a memory budget (qs_set_budget()):
 * with the run pages released at every chance lookups give exactly the
 * answers of a store without budget (runs, a merge, a reload); the id
 * filter stays at its cap and lookups stay exact; the run files' pages
 * really leave the process's RSS (loads, lookups, merges) with a budget
 * and stay without; and the stats of what the store holds in RAM. */
#include "check.h"
#include "hash.h"
#include "qsrun.h"
#include "querystore.h"
#include "testfs.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define HOUR QS_PARTITION_MS
#define H0 INT64_C(489946) /* 2025-11-22T10:00Z */
#define MIB (UINT64_C(1) << 20)

static char tmp_dir[64];

/* An empty directory of its own under tmp_dir. */
static void sub_dir(char *dir, size_t len, const char *name)
{
    snprintf(dir, len, "%s/%s", tmp_dir, name);
    testfs_remove_tree(dir);
    char err[CTRD_ERR_LEN];
    if (fs_mkdirs(dir, err) != 0)
        CHECK_FAIL_AT("%s", err);
}

static struct qs *open_qs(const char *dir, unsigned workers,
                          uint64_t run_page_bytes, uint64_t filter_bytes)
{
    char err[CTRD_ERR_LEN];
    struct qs *qs = NULL;
    if (qs_open(dir, workers, INT64_MIN, &qs, err) != 0) {
        CHECK_FAIL_AT("qs_open: %s", err);
        return NULL;
    }
    qs_set_budget(qs, run_page_bytes, filter_bytes);
    return qs;
}

/* Query k of the tests: a scattered id, 1..6 ads, a time in hour H0 or
 * the next. */
static struct rec_query query_k(uint64_t k)
{
    uint64_t id = hash_u64(k) | 1;
    struct rec_query q = {.query_id = id,
                          .time_ms = (H0 + (int64_t)(k % 2)) * HOUR +
                                     (int64_t)(k % 1000)};
    q.n_ads = (uint32_t)(1 + k % 6);
    for (uint32_t a = 0; a < q.n_ads; a++)
        q.ads[a] = k % 5000 + a;
    return q;
}

/* Queries [from, to) put by the worker whose shard their id is in. */
static void put_range(struct qs *qs, unsigned workers, uint64_t from,
                      uint64_t to)
{
    for (uint64_t k = from; k < to; k++) {
        struct rec_query q = query_k(k);
        if (qs_put(qs, (unsigned)(q.query_id % workers), &q,
                   (uint32_t)(k * 3)) != 0)
            CHECK_FAIL_AT("qs_put %llu", (unsigned long long)k);
    }
}

static char *checkpoint(struct qs *qs, uint64_t seq)
{
    char err[CTRD_ERR_LEN], *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    int rc = qs_checkpoint(qs, seq, INT64_MIN, m, err);
    fclose(m);
    if (rc != 0)
        CHECK_FAIL_AT("qs_checkpoint: %d %s", rc, err);
    return text;
}

static void wait_merge(struct qs *qs)
{
    struct qs_stats st;
    for (qs_get_stats(qs, &st); st.merging; qs_get_stats(qs, &st))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* A store of dir loaded from manifest text under the budget. */
static struct qs *reload(const char *dir, const char *manifest,
                         unsigned workers, uint64_t run_page_bytes,
                         uint64_t filter_bytes)
{
    char err[CTRD_ERR_LEN], kind[16], file[64];
    long long hour;
    unsigned long long bytes;
    unsigned crc;
    struct qs *qs = open_qs(dir, workers, run_page_bytes, filter_bytes);
    for (const char *p = manifest; qs && *p;) {
        if (sscanf(p, "%15s %lld %63s %llu %8x", kind, &hour, file, &bytes,
                   &crc) != 5) {
            CHECK_FAIL_AT("bad manifest line: %.40s", p);
            break;
        }
        struct fs_seal seal = {bytes, crc};
        if (qs_load(qs, kind, hour, file, &seal, err) != 0)
            CHECK_FAIL_AT("qs_load: %s", err);
        p = strchr(p, '\n');
        p = p ? p + 1 : "";
    }
    return qs;
}

/* Whether qs_get() of id gives the same in a and b (both found and
 * equal, or both not found). */
static int same_answer(struct qs *a, struct qs *b, unsigned worker, uint64_t id)
{
    struct qs_query x, y;
    int rx = qs_get(a, worker, id, &x), ry = qs_get(b, worker, id, &y);
    if (rx != ry)
        return 0;
    return rx != 0 || (x.query_id == y.query_id && x.time_ms == y.time_ms &&
                       x.term_id == y.term_id && x.n_ads == y.n_ads &&
                       memcmp(x.ads, y.ads, 8 * (size_t)x.n_ads) == 0);
}

/* Whether query k is stored exactly as put_range() put it. */
static int stored_ok(struct qs *qs, unsigned workers, uint64_t k)
{
    struct rec_query want = query_k(k);
    struct qs_query got;
    return qs_get(qs, (unsigned)(want.query_id % workers), want.query_id,
                  &got) == 0 &&
           got.time_ms == want.time_ms && got.term_id == (uint32_t)(k * 3) &&
           got.n_ads == want.n_ads &&
           memcmp(got.ads, want.ads, 8 * (size_t)want.n_ads) == 0;
}

/* Lookups of every 3rd stored query and as many absent ids, each worker
 * asking for its own shard, in a store and its twin: how many differ. */
static unsigned count_differences(struct qs *a, struct qs *b, unsigned workers,
                                  uint64_t n)
{
    unsigned wrong = 0;
    for (uint64_t k = 0; k < n; k += 3) {
        uint64_t id = hash_u64(k) | 1, absent = hash_u64(k + n) & ~UINT64_C(1);
        wrong += !same_answer(a, b, (unsigned)(id % workers), id);
        wrong += !same_answer(a, b, (unsigned)(absent % workers), absent);
    }
    return wrong;
}

/* A store whose run pages are released every few lookups (a budget of
 * 1 MiB: a lookup maps 200 KiB or so) answers every qs_get() exactly as its
 * twin without budget: memtables, runs of two hours, a merge adopted, and both
 * reloaded from their manifests. */
static void test_lookups_exact_under_budget(void)
{
    enum { WORKERS = 2, PER = 10000, CKPTS = 5 };
    char dir_a[128], dir_b[128];
    sub_dir(dir_a, sizeof dir_a, "a");
    sub_dir(dir_b, sizeof dir_b, "b");
    struct qs *a = open_qs(dir_a, WORKERS, MIB, 0);
    struct qs *b = open_qs(dir_b, WORKERS, 0, 0);
    char *ma = NULL, *mb = NULL;
    for (uint64_t seq = 1; a && b && seq <= CKPTS; seq++) {
        put_range(a, WORKERS, (seq - 1) * PER, seq * PER);
        put_range(b, WORKERS, (seq - 1) * PER, seq * PER);
        CHECK_EQ_U64(count_differences(a, b, WORKERS, seq * PER), 0);
        wait_merge(a); /* the 4th checkpoint's merge, adopted at the 5th */
        wait_merge(b);
        free(ma);
        free(mb);
        ma = checkpoint(a, seq);
        mb = checkpoint(b, seq);
        CHECK_EQ_U64(count_differences(a, b, WORKERS, seq * PER), 0);
    }
    struct qs_stats st;
    if (a)
        qs_get_stats(a, &st);
    CHECK(a && st.merged_bytes > 0);
    unsigned missing = 0;
    for (uint64_t k = 0; a && k < CKPTS * PER; k++)
        missing += !stored_ok(a, WORKERS, k);
    CHECK_EQ_U64(missing, 0);
    qs_close(a);
    qs_close(b);
    a = ma ? reload(dir_a, ma, WORKERS, MIB, 0) : NULL;
    b = mb ? reload(dir_b, mb, WORKERS, 0, 0) : NULL;
    CHECK(a && b);
    if (a && b)
        CHECK_EQ_U64(count_differences(a, b, WORKERS, CKPTS * PER), 0);
    qs_close(a);
    qs_close(b);
    free(ma);
    free(mb);
}

/* An id filter capped at 16 KiB (1.3 bits an id at 100,000 ids) keeps
 * that size through its rebuilds, where the uncapped one grows; lookups
 * stay exact (present found, absent not) in both. */
static void test_filter_cap(void)
{
    enum { WORKERS = 1, PER = 25000, CKPTS = 4, CAP = 16 * 1024 };
    char dir[128];
    sub_dir(dir, sizeof dir, "cap");
    struct qs *qs = open_qs(dir, WORKERS, 0, CAP);
    for (uint64_t seq = 1; qs && seq <= CKPTS; seq++) {
        put_range(qs, WORKERS, (seq - 1) * PER, seq * PER);
        wait_merge(qs);
        free(checkpoint(qs, seq));
        struct qs_stats st;
        qs_get_stats(qs, &st);
        CHECK_EQ_U64(st.filter_bytes, CAP);
    }
    unsigned wrong = 0;
    for (uint64_t k = 0; qs && k < CKPTS * PER; k++) {
        struct qs_query q;
        wrong += !stored_ok(qs, WORKERS, k);
        wrong += qs_get(qs, 0, hash_u64(k + CKPTS * PER) & ~UINT64_C(1), &q) !=
                 CTRD_ENOTFOUND;
    }
    CHECK_EQ_U64(wrong, 0);
    qs_close(qs);
    sub_dir(dir, sizeof dir, "nocap");
    qs = open_qs(dir, WORKERS, 0, 0);
    put_range(qs, WORKERS, 0, CKPTS * PER);
    free(checkpoint(qs, 1));
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK(st.filter_bytes >= 2 * CKPTS * PER * 10 / 8); /* 10 bits an id */
    qs_close(qs);
}

/* A store of two runs of about 15 MB (one checkpoint of 900,000 queries)
 * loaded again: what its mapping adds to the RSS once loaded, then after
 * 100,000 lookups of stored queries. */
static void rss_after_load_and_lookups(const char *dir, const char *manifest,
                                       uint64_t run_page_bytes,
                                       uint64_t *loaded, uint64_t *looked_up)
{
    uint64_t before = testfs_rss_file_bytes();
    struct qs *qs = reload(dir, manifest, 1, run_page_bytes, 0);
    *loaded = testfs_rss_file_bytes() - before;
    unsigned missing = 0;
    for (uint64_t k = 0; qs && k < 900000; k += 9)
        missing += !stored_ok(qs, 1, k);
    CHECK_EQ_U64(missing, 0);
    *looked_up = testfs_rss_file_bytes() - before;
    qs_close(qs);
}

/* The run pages leave the process: loading a run checks every page of it
 * (releasing them behind: what stays is the keys, that the id filter
 * read) and random lookups map more; with a budget of 16 MiB the runs
 * hold none after the load and less than the budget (plus two fault
 * windows) after the lookups, without budget most of the file. */
static void test_rss_of_runs(void)
{
    char dir[128];
    sub_dir(dir, sizeof dir, "rss");
    struct qs *qs = open_qs(dir, 1, 0, 0);
    put_range(qs, 1, 0, 900000);
    char *manifest = checkpoint(qs, 1);
    struct qs_stats st;
    qs_get_stats(qs, &st);
    qs_close(qs);
    uint64_t loaded, looked_up;
    rss_after_load_and_lookups(dir, manifest, 0, &loaded, &looked_up);
    printf("  run of %llu MiB, no budget: +%llu MiB loaded, +%llu MiB after "
           "lookups\n",
           (unsigned long long)(st.disk_bytes / MIB),
           (unsigned long long)(loaded / MIB),
           (unsigned long long)(looked_up / MIB));
    CHECK(st.disk_bytes > 24 * MIB);
    CHECK(loaded < st.disk_bytes / 2); /* the keys: the id filter read them */
    CHECK(looked_up > st.disk_bytes / 2);
    rss_after_load_and_lookups(dir, manifest, 16 * MIB, &loaded, &looked_up);
    printf("  budget 16 MiB: +%llu KiB loaded, +%llu KiB after lookups\n",
           (unsigned long long)(loaded / 1024),
           (unsigned long long)(looked_up / 1024));
    CHECK(loaded < MIB);
    CHECK(looked_up < 16 * MIB + 2 * QSRUN_FAULT_BYTES);
    free(manifest);
}

/* Opening a run checks every page and releases them behind: it maps
 * little of it. A merge that releases its inputs' pages behind its reads
 * leaves none of them mapped; one that does not leaves them all. */
static void test_rss_of_merge(void)
{
    enum { RUNS = 4, PER_RUN = 200000 };
    char err[CTRD_ERR_LEN], name[16], dir[128];
    sub_dir(dir, sizeof dir, "merge");
    struct qsrun *runs[RUNS] = {0};
    struct qs_file files[RUNS] = {0};
    struct qsrun_builder b;
    CHECK_EQ_I64(qsrun_builder_init(&b, PER_RUN, PER_RUN * 6), 0);
    for (uint64_t r = 0; r < RUNS; r++) {
        qsrun_builder_reset(&b);
        for (uint64_t id = r + 1; id <= RUNS * PER_RUN; id += RUNS) {
            struct rec_query q = query_k(id);
            qsrun_builder_add(&b, id, (uint32_t)(id % HOUR), 7, q.ads, q.n_ads);
        }
        snprintf(name, sizeof name, "in%u.run", (unsigned)r);
        struct qsrun *written = NULL;
        if (qsrun_write(dir, name, H0, &b, &written, err) != 0)
            CHECK_FAIL_AT("qsrun_write: %s", err);
        if (written)
            files[r] = *qsrun_file(written);
        qsrun_free(written);
    }
    qsrun_builder_free(&b);
    uint64_t base = testfs_rss_file_bytes(), inputs = 0;
    for (uint64_t r = 0; r < RUNS; r++) {
        if (qsrun_open(dir, &files[r], H0, &runs[r], err) != 0)
            CHECK_FAIL_AT("qsrun_open: %s", err);
        inputs += files[r].seal.bytes;
    }
    uint64_t opened = testfs_rss_file_bytes() - base;
    printf("  %llu MiB of runs opened: %llu KiB mapped\n",
           (unsigned long long)(inputs / MIB),
           (unsigned long long)(opened / 1024));
    CHECK(opened < inputs / 4);
    atomic_int stop = 0;
    for (int release = 0; release <= 1 && runs[RUNS - 1]; release++) {
        struct qsrun *merged = NULL;
        snprintf(name, sizeof name, "out%d.run", release);
        if (qsrun_merge(dir, name, H0, runs, RUNS, release, &stop, &merged,
                        err) != 0)
            CHECK_FAIL_AT("qsrun_merge: %s", err);
        uint64_t after = testfs_rss_file_bytes() - base;
        printf("  merge, release %d: %llu KiB mapped after\n", release,
               (unsigned long long)(after / 1024));
        if (release)
            CHECK(after < inputs / 8);
        else
            CHECK(after > inputs / 2);
        qsrun_free(merged);
    }
    for (size_t r = 0; r < RUNS; r++)
        qsrun_free(runs[r]);
}

/* What the store holds in RAM, by part: the memtables' content grows with
 * the queries and clicks and goes at a checkpoint (their memory stays,
 * emptied), the runs' sparse indexes and the clicked pairs come with the
 * runs and marks. */
static void test_memory_stats(void)
{
    char dir[128];
    sub_dir(dir, sizeof dir, "stats");
    struct qs *qs = open_qs(dir, 2, 0, 0);
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.memtable_bytes, 0);
    CHECK_EQ_U64(st.index_bytes, 0);
    CHECK(st.filter_bytes > 0);
    put_range(qs, 2, 0, 10000);
    struct rec_query q0 = query_k(0);
    struct qs_query q;
    CHECK_EQ_I64(qs_get(qs, (unsigned)(q0.query_id % 2), q0.query_id, &q), 0);
    CHECK_EQ_I64(
        qs_mark_clicked(qs, (unsigned)(q0.query_id % 2), &q, q0.ads[0]), 1);
    qs_get_stats(qs, &st);
    /* 32-byte entries, two 16-byte slots and an ad or more a query */
    CHECK(st.memtable_fill_bytes >= 10000 * (32 + 32 + 8));
    CHECK(st.memtable_bytes >= st.memtable_fill_bytes);
    CHECK(st.memtable_bytes < 3 * st.memtable_fill_bytes);
    CHECK_EQ_U64(st.pairs_bytes, 0);
    uint64_t held = st.memtable_bytes;
    free(checkpoint(qs, 1));
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.memtable_fill_bytes, 0);
    CHECK(st.memtable_bytes > 0 && st.memtable_bytes < held); /* pairs go */
    CHECK(st.index_bytes >= 10000 / 64 * 8);
    CHECK(st.pairs_bytes > 0);
    qs_close(qs);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-qsb-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_lookups_exact_under_budget);
    RUN(test_filter_cap);
    RUN(test_rss_of_runs);
    RUN(test_rss_of_merge);
    RUN(test_memory_stats);
    testfs_remove_tree(tmp_dir);
    return check_done();
}
