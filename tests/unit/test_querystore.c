/* Unit tests of querystore: memtable and run lookups, checkpoint + reload
 * from the manifest lines, compaction, hour partitions, clicked pairs,
 * the retention horizon, and damaged files; and of its run files (qsrun.h):
 * merges of their ad dictionaries. */
#include "check.h"
#include "datadir.h"
#include "qsrun.h"
#include "querystore.h"
#include "testfs.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define HOUR QS_PARTITION_MS
#define H0 INT64_C(489946) /* 2025-11-22T10:00Z */

static char tmp_dir[64];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-qs-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Deletes every file of the temporary directory. */
static void clean_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", tmp_dir, de->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
}

static struct qs *open_qs(unsigned workers, int64_t horizon_ms)
{
    char err[CTRD_ERR_LEN];
    struct qs *qs = NULL;
    if (qs_open(tmp_dir, workers, horizon_ms, &qs, err) != 0)
        CHECK_FAIL_AT("qs_open: %s", err);
    return qs;
}

/* Query i: time, 1..6 ads derived from i, term id i * 3. Queries without
 * ads have their own test (test_queries_without_ads). */
static struct rec_query query_of(uint64_t id, int64_t time_ms)
{
    struct rec_query q = {.query_id = id, .time_ms = time_ms};
    q.n_ads = (uint32_t)(1 + id % 6);
    for (uint32_t k = 0; k < q.n_ads; k++)
        q.ads[k] = id * 100 + k;
    return q;
}

static int put(struct qs *qs, unsigned worker, uint64_t id, int64_t time_ms)
{
    struct rec_query q = query_of(id, time_ms);
    return qs_put(qs, worker, &q, (uint32_t)(id * 3));
}

/* Whether the stored query id is exactly what put() stored. */
static int stored_ok(struct qs *qs, unsigned worker, uint64_t id,
                     int64_t time_ms)
{
    struct qs_query got;
    if (qs_get(qs, worker, id, &got) != 0)
        return 0;
    struct rec_query want = query_of(id, time_ms);
    if (got.query_id != id || got.time_ms != time_ms ||
        got.term_id != (uint32_t)(id * 3) || got.n_ads != want.n_ads)
        return 0;
    return want.n_ads == 0 ||
           memcmp(got.ads, want.ads, 8 * (size_t)want.n_ads) == 0;
}

/* Runs a checkpoint and returns the manifest text (malloc'd). */
static char *checkpoint(struct qs *qs, uint64_t seq, int64_t horizon_ms)
{
    char err[CTRD_ERR_LEN], *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    int rc = qs_checkpoint(qs, seq, horizon_ms, m, err);
    fclose(m);
    if (rc != 0)
        CHECK_FAIL_AT("qs_checkpoint: %d %s", rc, err);
    return text;
}

/* A fresh store loaded from manifest text; *rc is the first failure. */
static struct qs *reload(const char *manifest, unsigned workers,
                         int64_t horizon_ms, int *rc)
{
    char err[CTRD_ERR_LEN], kind[16], file[64];
    long long hour;
    unsigned long long bytes;
    unsigned crc;
    struct qs *qs = open_qs(workers, horizon_ms);
    *rc = qs ? 0 : -1;
    for (const char *p = manifest; qs && *rc == 0 && *p;) {
        if (sscanf(p, "%15s %lld %63s %llu %8x", kind, &hour, file, &bytes,
                   &crc) != 5) {
            CHECK_FAIL_AT("bad manifest line: %.40s", p);
            break;
        }
        struct fs_seal seal = {bytes, crc};
        *rc = qs_load(qs, kind, hour, file, &seal, err);
        p = strchr(p, '\n');
        p = p ? p + 1 : "";
    }
    return qs;
}

/* Manifest lines of a kind ("run", "marks"), of one hour unless -1. */
static unsigned count_lines(const char *manifest, const char *kind,
                            int64_t hour)
{
    unsigned n = 0;
    char k[16];
    long long h;
    for (const char *p = manifest; *p;) {
        if (sscanf(p, "%15s %lld", k, &h) == 2 && strcmp(k, kind) == 0 &&
            (hour < 0 || h == hour))
            n++;
        p = strchr(p, '\n');
        p = p ? p + 1 : "";
    }
    return n;
}

static void test_memtable(void)
{
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    struct qs_query got;
    CHECK_EQ_I64(qs_get(qs, 0, 1, &got), CTRD_ENOTFOUND);
    /* Enough to grow the slot table and the ads array several times. */
    for (uint64_t id = 1; id <= 20000; id++)
        CHECK_EQ_I64(put(qs, (unsigned)(id & 1), id, H0 * HOUR + (int64_t)id),
                     0);
    unsigned bad = 0;
    for (uint64_t id = 1; id <= 20000; id++)
        bad += !stored_ok(qs, (unsigned)(id & 1), id, H0 * HOUR + (int64_t)id);
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_I64(qs_get(qs, 0, 20002, &got), CTRD_ENOTFOUND);
    CHECK_EQ_I64(qs_get(qs, 1, 20001, &got), CTRD_ENOTFOUND);
    struct rec_query max = query_of(UINT64_MAX, H0 * HOUR);
    max.n_ads = REC_ADS_MAX;
    for (uint32_t k = 0; k < REC_ADS_MAX; k++)
        max.ads[k] = UINT64_MAX - k;
    CHECK_EQ_I64(qs_put(qs, 1, &max, UINT32_MAX), 0);
    CHECK_EQ_I64(qs_get(qs, 1, UINT64_MAX, &got), 0);
    CHECK_EQ_U64(got.n_ads, REC_ADS_MAX);
    CHECK_EQ_U64(got.term_id, UINT32_MAX);
    CHECK_EQ_U64(got.ads[REC_ADS_MAX - 1], UINT64_MAX - (REC_ADS_MAX - 1));
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.mem_queries, 20001);
    CHECK_EQ_U64(st.runs, 0);
    qs_close(qs);
    qs_close(NULL);
}

static void test_checkpoint_and_reload(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    /* 6000 queries over three hours, the last one on the hour's edge. */
    for (uint64_t id = 1; id <= 6000; id++) {
        int64_t t = (H0 + (int64_t)(id % 3)) * HOUR + (int64_t)(id * 599);
        if (id == 6000)
            t = (H0 + 1) * HOUR - 1;
        CHECK_EQ_I64(put(qs, (unsigned)(id % 2), id, t), 0);
    }
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    if (!manifest)
        goto done;
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.partitions, 3);
    CHECK_EQ_U64(st.runs, 3);
    CHECK_EQ_U64(st.queries_on_disk, 6000);
    CHECK_EQ_U64(st.mem_queries, 0);
    CHECK(st.disk_bytes > 6000 * 40);
    CHECK_EQ_U64(count_lines(manifest, "run", -1), 3);
    CHECK_EQ_U64(count_lines(manifest, "run", H0), 1);
    CHECK_EQ_U64(count_lines(manifest, "run", H0 + 1), 1);
    CHECK_EQ_U64(count_lines(manifest, "run", H0 + 2), 1);
    CHECK_EQ_U64(count_lines(manifest, "marks", -1), 0);
    int rc;
    struct qs *back = reload(manifest, 3, INT64_MIN, &rc);
    CHECK_EQ_I64(rc, 0);
    unsigned bad_same = 0, bad_back = 0, found_absent = 0;
    for (uint64_t id = 1; id <= 6000; id++) {
        int64_t t = (H0 + (int64_t)(id % 3)) * HOUR + (int64_t)(id * 599);
        if (id == 6000)
            t = (H0 + 1) * HOUR - 1;
        bad_same += !stored_ok(qs, (unsigned)(id % 2), id, t);
        bad_back += back && !stored_ok(back, (unsigned)(id % 3), id, t);
    }
    struct qs_query got;
    for (uint64_t id = 6001; back && id <= 106000; id++)
        found_absent += qs_get(back, 0, id, &got) == 0;
    found_absent += back && qs_get(back, 0, UINT64_MAX, &got) == 0;
    CHECK_EQ_U64(bad_same, 0);
    CHECK_EQ_U64(bad_back, 0);
    CHECK_EQ_U64(found_absent, 0);
    if (back) {
        qs_get_stats(back, &st);
        CHECK_EQ_U64(st.queries_on_disk, 6000);
        CHECK_EQ_U64(st.partitions, 3);
    }
    qs_close(back);
    /* An empty checkpoint names the same runs again. */
    char *again = checkpoint(qs, 2, INT64_MIN);
    CHECK(again && strcmp(again, manifest) == 0);
    free(again);
    free(manifest);
done:
    qs_close(qs);
}

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Query ids spread over all 64 bits: the flush sorts every digit. */
static void test_wide_query_ids(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(3, INT64_MIN);
    if (!qs)
        return;
    static const uint64_t edges[] = {
        UINT64_MAX,
        UINT64_C(1) << 63,
        UINT64_C(0x0001000100010001),
        UINT64_C(0xffff0000ffff0000),
        UINT64_C(0x00000000ffffffff),
        1,
    };
    uint64_t ids[20006];
    size_t n = 0;
    for (size_t i = 0; i < 6; i++)
        ids[n++] = edges[i];
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t id = mix64(i);
        ids[n++] = id ? id : 2;
    }
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_I64(put(qs, (unsigned)(ids[i] % 3), ids[i],
                         H0 * HOUR + (int64_t)(ids[i] % HOUR)),
                     0);
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    int rc;
    struct qs *back = manifest ? reload(manifest, 1, INT64_MIN, &rc) : NULL;
    unsigned missing = 0;
    for (size_t i = 0; back && i < n; i++) {
        int64_t t = H0 * HOUR + (int64_t)(ids[i] % HOUR);
        missing +=
            !stored_ok(qs, 0, ids[i], t) + !stored_ok(back, 0, ids[i], t);
    }
    CHECK(back != NULL);
    CHECK_EQ_U64(missing, 0);
    struct qs_query got;
    unsigned found_absent = 0;
    for (uint64_t i = 20000; back && i < 40000; i++)
        found_absent += qs_get(back, 0, mix64(i), &got) == 0;
    CHECK_EQ_U64(found_absent, 0);
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

static void test_partitions_by_hour(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    static const int64_t times[] = {
        H0 * HOUR,           H0 * HOUR + HOUR - 1, (H0 + 1) * HOUR,
        (H0 + 5) * HOUR + 1, (H0 + 1) * HOUR + 1,
    };
    for (uint64_t i = 0; i < 5; i++)
        put(qs, 0, i + 1, times[i]);
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    if (manifest) {
        CHECK_EQ_U64(count_lines(manifest, "run", -1), 3);
        CHECK_EQ_U64(count_lines(manifest, "run", H0), 1);
        CHECK_EQ_U64(count_lines(manifest, "run", H0 + 1), 1);
        CHECK_EQ_U64(count_lines(manifest, "run", H0 + 5), 1);
    }
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.partitions, 3);
    for (uint64_t i = 0; i < 5; i++)
        CHECK(stored_ok(qs, 0, i + 1, times[i]));
    free(manifest);
    qs_close(qs);
}

static void test_compaction(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    char *manifest = NULL;
    uint64_t max_runs = 0, id = 0;
    for (uint64_t seq = 1; seq <= 64; seq++) {
        /* Mostly 100 a checkpoint, with a few big and tiny ones. */
        uint64_t n = seq == 5 ? 3000 : seq % 9 == 0 ? 1 : 100;
        for (uint64_t k = 0; k < n; k++) {
            id++;
            /* ids interleave across checkpoints: runs overlap in range */
            uint64_t qid = (id * UINT64_C(2654435761)) % 1000003 + 1;
            put(qs, (unsigned)(qid & 1), qid,
                H0 * HOUR + (int64_t)(qid % HOUR));
        }
        free(manifest);
        manifest = checkpoint(qs, seq, INT64_MIN);
        struct qs_stats st;
        qs_get_stats(qs, &st);
        while (st.merging) { /* the next checkpoint adopts it */
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            qs_get_stats(qs, &st);
        }
        if (st.runs > max_runs)
            max_runs = st.runs;
        if (manifest && count_lines(manifest, "run", -1) != st.runs)
            CHECK_FAIL_AT("seq %llu: manifest names %u runs, stats %llu",
                          (unsigned long long)seq,
                          count_lines(manifest, "run", -1),
                          (unsigned long long)st.runs);
        CHECK_EQ_U64(st.queries_on_disk, id);
    }
    printf("  %llu queries in 64 checkpoints: at most %llu runs\n",
           (unsigned long long)id, (unsigned long long)max_runs);
    /* about log2(64) + 1, and one more while a merge waits to be adopted */
    CHECK(max_runs <= 8);
    int rc;
    struct qs *back = manifest ? reload(manifest, 1, INT64_MIN, &rc) : NULL;
    CHECK(back != NULL);
    unsigned missing = 0;
    for (uint64_t i = 1; back && i <= id; i++) {
        uint64_t qid = (i * UINT64_C(2654435761)) % 1000003 + 1;
        int64_t t = H0 * HOUR + (int64_t)(qid % HOUR);
        missing += !stored_ok(qs, (unsigned)(qid & 1), qid, t);
        missing += !stored_ok(back, 0, qid, t);
    }
    CHECK_EQ_U64(missing, 0);
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

static void wait_merge(struct qs *qs)
{
    struct qs_stats st;
    for (qs_get_stats(qs, &st); st.merging; qs_get_stats(qs, &st))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* What qs_print_files() prints, in a malloc'd string. */
static char *print_files(const struct qs *qs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    qs_print_files(qs, m);
    fclose(m);
    return text;
}

/* The merge that the 4th checkpoint starts: its file is in no manifest
 * but qs_print_files() names it (so no garbage removal takes it) until
 * the next checkpoint adopts it; a store closed first stops it and
 * deletes the file. */
static void test_merge_in_progress(void)
{
    for (int close_first = 0; close_first <= 1; close_first++) {
        clean_tmp_dir();
        struct qs *qs = open_qs(1, INT64_MIN);
        char *manifest = NULL, name[64] = "";
        for (uint64_t seq = 1; qs && seq <= 4; seq++) {
            for (uint64_t k = 0; k < 20000; k++)
                put(qs, 0, seq * 100000 + k + 1, H0 * HOUR + (int64_t)k);
            free(manifest);
            manifest = checkpoint(qs, seq, INT64_MIN);
        }
        char *files = qs ? print_files(qs) : NULL;
        const char *line = files ? strstr(files, "merging ") : NULL;
        long long hour = 0;
        CHECK(line && sscanf(line, "merging %lld %63s", &hour, name) == 2 &&
              hour == H0);
        CHECK(manifest && count_lines(manifest, "run", H0) == 4 &&
              !datadir_names_file(manifest, name));
        if (close_first) {
            qs_close(qs); /* stops the merge and deletes its file */
            char path[600];
            snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
            CHECK(access(path, F_OK) != 0);
        } else if (qs) {
            wait_merge(qs);
            free(manifest);
            manifest = checkpoint(qs, 5, INT64_MIN);
            CHECK(manifest && count_lines(manifest, "run", H0) == 1 &&
                  datadir_names_file(manifest, name));
            struct qs_stats st;
            qs_get_stats(qs, &st);
            CHECK_EQ_U64(st.queries_on_disk, 80000);
            CHECK(st.merged_bytes > 0);
            unsigned wrong = 0;
            for (uint64_t seq = 1; seq <= 4; seq++) {
                for (uint64_t k = 0; k < 20000; k += 97)
                    wrong += !stored_ok(qs, 0, seq * 100000 + k + 1,
                                        H0 * HOUR + (int64_t)k);
            }
            CHECK_EQ_U64(wrong, 0);
            qs_close(qs);
        }
        free(files);
        free(manifest);
    }
}

/* n queries of hour H0 with ids from first, then a checkpoint. */
static char *fill_and_checkpoint(struct qs *qs, uint64_t seq, uint64_t first,
                                 uint64_t n, int64_t horizon_ms)
{
    for (uint64_t k = 0; k < n; k++)
        put(qs, 0, first + k, H0 * HOUR + (int64_t)(k % HOUR));
    return checkpoint(qs, seq, horizon_ms);
}

/* A partition past the horizon goes at the checkpoint that moves the
 * horizon past it also while its runs are being merged: qs_too_old()
 * says its queries are gone, so lookups must not find them either (else a
 * late click would join or not depending on the merge thread's speed). */
static void test_expiry_while_merging(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    for (uint64_t seq = 1; seq <= 4; seq++)
        free(fill_and_checkpoint(qs, seq, seq * 1000000, 300000, INT64_MIN));
    put(qs, 0, 99, (H0 + 2) * HOUR); /* a newer partition */
    char *manifest = checkpoint(qs, 5, (H0 + 1) * HOUR + 10);
    struct qs_query q;
    CHECK_EQ_I64(qs_too_old(qs, H0 * HOUR + 5), 1);
    CHECK_EQ_I64(qs_get(qs, 0, 1000001, &q), CTRD_ENOTFOUND);
    CHECK_EQ_I64(qs_get(qs, 0, 4000007, &q), CTRD_ENOTFOUND);
    CHECK(manifest && count_lines(manifest, "run", H0) == 0);
    CHECK_EQ_I64(qs_get(qs, 0, 99, &q), 0);
    free(manifest);
    qs_close(qs);
}

/* A merge that fails (its file may not grow past a limit, as on a full
 * disk, while the checkpoints' smaller files fit) is dropped and counted:
 * the next checkpoint succeeds, the inputs keep every query. */
static void test_failed_merge_dropped(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    for (uint64_t seq = 1; seq <= 3; seq++)
        free(fill_and_checkpoint(qs, seq, seq * 1000000, 20000, INT64_MIN));
    testfs_limit_file_size(2 * 1024 * 1024);
    free(fill_and_checkpoint(qs, 4, 4000000, 20000, INT64_MIN));
    wait_merge(qs);
    testfs_limit_file_size(RLIM_INFINITY);
    char *manifest = checkpoint(qs, 5, INT64_MIN);
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK(manifest && count_lines(manifest, "run", H0) == 4);
    CHECK_EQ_U64(st.merges_failed, 1);
    CHECK_EQ_U64(st.merged_bytes, 0);
    unsigned missing = 0;
    for (uint64_t seq = 1; seq <= 4; seq++) {
        for (uint64_t k = 0; k < 20000; k += 101)
            missing +=
                !stored_ok(qs, 0, seq * 1000000 + k, H0 * HOUR + (int64_t)k);
    }
    CHECK_EQ_U64(missing, 0);
    free(manifest);
    qs_close(qs);
}

/* The store's filter of stored ids (querystore.c, ID FILTER) grows past
 * its first size and is rebuilt, and a loaded store fills it: every query
 * stays found, through checkpoints, merges, expiry and a reload. */
static void test_id_filter(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    enum { PER = 10000, CKPTS = 30 };
    char *manifest = NULL;
    for (uint64_t seq = 1; seq <= CKPTS; seq++) {
        for (uint64_t k = 0; k < PER; k++) {
            uint64_t id = mix64(seq * PER + k) | 1;
            put(qs, (unsigned)(id >> 63), id,
                (H0 + (int64_t)(seq % 3)) * HOUR + (int64_t)k);
        }
        free(manifest);
        manifest = checkpoint(qs, seq, INT64_MIN);
    }
    wait_merge(qs);
    free(manifest);
    manifest = checkpoint(qs, CKPTS + 1, (H0 + 1) * HOUR); /* H0 expires */
    int rc;
    struct qs *back =
        manifest ? reload(manifest, 2, (H0 + 1) * HOUR, &rc) : NULL;
    CHECK(back != NULL);
    unsigned wrong = 0;
    for (uint64_t seq = 1; back && seq <= CKPTS; seq++) {
        for (uint64_t k = 0; k < PER; k++) {
            uint64_t id = mix64(seq * PER + k) | 1;
            int64_t t = (H0 + (int64_t)(seq % 3)) * HOUR + (int64_t)k;
            unsigned w = (unsigned)(id >> 63);
            struct qs_query q;
            if (seq % 3 == 0) /* hour H0: gone */
                wrong += (qs_get(qs, w, id, &q) != CTRD_ENOTFOUND) +
                         (qs_get(back, w, id, &q) != CTRD_ENOTFOUND);
            else
                wrong += !stored_ok(qs, w, id, t) + !stored_ok(back, w, id, t);
        }
    }
    CHECK_EQ_U64(wrong, 0);
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

static void test_marks(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    struct qs_query q;
    put(qs, 0, 5, H0 * HOUR + 10); /* ads 500..504 */
    CHECK_EQ_I64(qs_get(qs, 0, 5, &q), 0);
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 500), 1);
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 500), 0);
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 501), 1);
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    free(manifest);
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.clicked_pairs, 2);
    CHECK_EQ_I64(qs_get(qs, 0, 5, &q), 0); /* now from the run */
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 500), 0);
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 502), 1);
    /* Twenty more checkpoints with clicks: more than MARK_FILES_MAX delta
     * files, so the partition gets rewritten whole on the way. */
    uint64_t pairs = 3;
    for (uint64_t seq = 2; seq <= 21; seq++) {
        for (uint64_t k = 0; k < 50; k++) {
            uint64_t qid = 1000 + seq * 100 + k;
            put(qs, 0, qid, H0 * HOUR + (int64_t)qid);
            CHECK_EQ_I64(qs_get(qs, 0, qid, &q), 0);
            CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, q.ads[0]), 1);
            pairs++;
        }
        manifest = checkpoint(qs, seq, INT64_MIN);
        if (manifest && count_lines(manifest, "marks", H0) > 8)
            CHECK_FAIL_AT("seq %llu: %u marks files", (unsigned long long)seq,
                          count_lines(manifest, "marks", H0));
        if (seq < 21)
            free(manifest);
    }
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.clicked_pairs, pairs);
    int rc;
    struct qs *back = manifest ? reload(manifest, 1, INT64_MIN, &rc) : NULL;
    CHECK(back != NULL);
    if (back) {
        CHECK_EQ_I64(rc, 0);
        qs_get_stats(back, &st);
        CHECK_EQ_U64(st.clicked_pairs, pairs);
        CHECK_EQ_I64(qs_get(back, 0, 5, &q), 0);
        CHECK_EQ_I64(qs_mark_clicked(back, 0, &q, 500), 0);
        CHECK_EQ_I64(qs_mark_clicked(back, 0, &q, 502), 0);
        CHECK_EQ_I64(qs_mark_clicked(back, 0, &q, 503), 1);
        unsigned again = 0;
        for (uint64_t seq = 2; seq <= 21; seq++) {
            for (uint64_t k = 0; k < 50; k++) {
                uint64_t qid = 1000 + seq * 100 + k;
                if (qs_get(back, 0, qid, &q) == 0)
                    again += qs_mark_clicked(back, 0, &q, q.ads[0]) != 0;
            }
        }
        CHECK_EQ_U64(again, 0);
    }
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

static void test_horizon(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    CHECK_EQ_I64(qs_too_old(qs, 0), 0);
    put(qs, 0, 1, H0 * HOUR + 5);
    put(qs, 0, 2, (H0 + 1) * HOUR);
    put(qs, 0, 3, (H0 + 3) * HOUR + 7);
    struct qs_query q;
    qs_get(qs, 0, 1, &q);
    CHECK_EQ_I64(qs_mark_clicked(qs, 0, &q, 100), 1);
    char *first = checkpoint(qs, 1, INT64_MIN);
    if (first)
        CHECK_EQ_U64(count_lines(first, "marks", H0), 1);
    free(first);
    /* A horizon inside hour H0 + 1 drops hour H0 only. */
    int64_t horizon = (H0 + 1) * HOUR + 10;
    char *manifest = checkpoint(qs, 2, horizon);
    CHECK_EQ_I64(qs_get(qs, 0, 1, &q), CTRD_ENOTFOUND);
    CHECK(stored_ok(qs, 0, 2, (H0 + 1) * HOUR));
    CHECK(stored_ok(qs, 0, 3, (H0 + 3) * HOUR + 7));
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.partitions, 2);
    CHECK_EQ_U64(st.clicked_pairs, 0);
    if (manifest) {
        CHECK_EQ_U64(count_lines(manifest, "run", H0), 0);
        CHECK_EQ_U64(count_lines(manifest, "marks", H0), 0);
        CHECK_EQ_U64(count_lines(manifest, "run", -1), 2);
    }
    CHECK_EQ_I64(qs_too_old(qs, H0 * HOUR + 5), 1);
    CHECK_EQ_I64(qs_too_old(qs, (H0 + 1) * HOUR - 1), 1);
    CHECK_EQ_I64(qs_too_old(qs, (H0 + 1) * HOUR), 0);
    CHECK_EQ_I64(qs_too_old(qs, (H0 + 9) * HOUR), 0);
    /* The horizon never moves back. */
    char *later = checkpoint(qs, 3, INT64_MIN);
    CHECK_EQ_I64(qs_too_old(qs, H0 * HOUR + 5), 1);
    free(later);
    /* A store opened with the horizon knows it before any checkpoint. */
    int rc;
    struct qs *back = manifest ? reload(manifest, 1, horizon, &rc) : NULL;
    if (back) {
        CHECK_EQ_I64(rc, 0);
        CHECK_EQ_I64(qs_too_old(back, (H0 + 1) * HOUR - 1), 1);
        CHECK_EQ_I64(qs_too_old(back, (H0 + 1) * HOUR), 0);
        CHECK(stored_ok(back, 0, 3, (H0 + 3) * HOUR + 7));
    }
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

/* ---- damaged files ---- */

static unsigned char *read_all(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return testfs_read(path, len);
}

static void write_all(const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    testfs_write(path, data, len);
}

/* Loads one file into a fresh store: the code, and err what is wrong. */
static int load_one_err(const char *kind, int64_t hour, const char *file,
                        const struct fs_seal *seal, char *err)
{
    struct qs *qs = open_qs(1, INT64_MIN);
    int rc = qs ? qs_load(qs, kind, hour, file, seal, err) : -100;
    qs_close(qs);
    return rc;
}

static int load_one(const char *kind, int64_t hour, const char *file,
                    const struct fs_seal *seal)
{
    char err[CTRD_ERR_LEN];
    return load_one_err(kind, hour, file, seal, err);
}

/* Loads "run" then "marks" into one store, as a manifest lists them. */
static int load_pair(const char *run, const struct fs_seal *run_seal,
                     const char *marks, const struct fs_seal *marks_seal)
{
    char err[CTRD_ERR_LEN];
    struct qs *qs = open_qs(1, INT64_MIN);
    int rc = qs ? qs_load(qs, "run", H0, run, run_seal, err) : -100;
    if (rc == 0)
        rc = qs_load(qs, "marks", H0, marks, marks_seal, err);
    qs_close(qs);
    return rc;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Writes content as a sealed file of the temporary directory. */
static struct fs_seal write_sealed(const char *name, const void *content,
                                   size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return testfs_write_sealed(path, content, len);
}

/* Loads a run that must be refused as damaged at the offset, with an
 * error that names the file, the offset and what. */
static void load_refused_at(const char *file, const struct fs_seal *seal,
                            size_t at, const char *what)
{
    char err[CTRD_ERR_LEN] = "", want[128];
    CHECK_EQ_I64(load_one_err("run", H0, file, seal, err), CTRD_ECORRUPT);
    snprintf(want, sizeof want, "%s: offset %zu: ", file, at);
    if (!strstr(err, want) || !strstr(err, what))
        CHECK_FAIL_AT("error \"%s\" lacks \"%s\" or \"%s\"", err, want, what);
}

/* Every byte of a run file is covered: a flipped bit anywhere, a cut, an
 * extra byte or another file under the name fail the load. Damage behind
 * valid checksums (a file ctrd did not write) is caught by the layout
 * checks where it would make lookups read outside the file. */
static void test_damaged_runs(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(1, INT64_MIN);
    if (!qs)
        return;
    for (uint64_t id = 1; id <= 100; id++)
        put(qs, 0, id, H0 * HOUR + (int64_t)id);
    struct qs_query q;
    qs_get(qs, 0, 7, &q);
    qs_mark_clicked(qs, 0, &q, 700);
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    qs_close(qs);
    char run[64] = "", marks[64] = "";
    unsigned long long run_bytes, marks_bytes;
    unsigned run_crc, marks_crc;
    if (!manifest ||
        sscanf(manifest, "run %*d %63s %llu %8x\nmarks %*d %63s %llu %8x", run,
               &run_bytes, &run_crc, marks, &marks_bytes, &marks_crc) != 6) {
        CHECK_FAIL_AT("unexpected manifest: %s", manifest ? manifest : "");
        free(manifest);
        return;
    }
    free(manifest);
    struct fs_seal run_seal = {run_bytes, run_crc};
    struct fs_seal marks_seal = {marks_bytes, marks_crc};
    CHECK_EQ_I64(load_one("run", H0, run, &run_seal), 0);
    CHECK_EQ_I64(load_pair(run, &run_seal, marks, &marks_seal), 0);
    size_t len;
    unsigned char *good = read_all(run, &len);
    unsigned char *bad = malloc(len + 8);
    CHECK_EQ_U64(len, run_bytes);
    size_t content = testfs_content_len(good, len);
    uint64_t n = get_u64(good + 8), n_slots = get_u64(good + 16);
    uint64_t bloom = get_u64(good + 24), n_dict = get_u64(good + 40);
    CHECK_EQ_U64(n, 100);
    CHECK_EQ_U64(get_u64(good + 32), (uint64_t)H0);
    CHECK_EQ_U64(n_dict, n_slots); /* query_of(): every ad distinct */
    size_t dict = 64 + bloom + 8 * n, entries = dict + 8 * n_dict;
    size_t slots = entries + 12 * (n + 1);
    CHECK_EQ_U64(content, slots + 4 * n_slots);
    CHECK_EQ_U64(
        len, content + 4 * ((content + FS_BLOCK_BYTES - 1) / FS_BLOCK_BYTES) +
                 FS_FOOTER_BYTES);

    /* One bit flipped at every 7th byte (content, block CRCs, trailer),
     * with and without the manifest's seal. */
    unsigned missed = 0;
    for (size_t at = 0; at < len; at += 7) {
        memcpy(bad, good, len);
        bad[at] ^= (unsigned char)(1u << (at % 8));
        write_all("bad.run", bad, len);
        struct fs_seal flipped = testfs_seal_of(bad, len);
        missed += load_one("run", H0, "bad.run", &run_seal) != CTRD_ECORRUPT;
        missed += load_one("run", H0, "bad.run", &flipped) != CTRD_ECORRUPT;
    }
    CHECK_EQ_U64(missed, 0);
    /* Cuts and an extra byte. */
    static const size_t cuts[] = {0, 1, 23, 24, 63, 64, 100};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all("bad.run", good, cuts[i]);
        int rc = load_one("run", H0, "bad.run", &run_seal);
        if (rc != CTRD_ECORRUPT)
            CHECK_FAIL_AT("run cut to %zu bytes: rc %d", cuts[i], rc);
    }
    write_all("bad.run", good, len - 1);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &run_seal), CTRD_ECORRUPT);
    memcpy(bad, good, len);
    bad[len] = 0;
    write_all("bad.run", bad, len + 1);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &run_seal), CTRD_ECORRUPT);
    /* Another valid run under the manifest's name and seal. */
    struct fs_seal other = write_sealed("other.run", good, content);
    CHECK_EQ_I64(load_one("run", H0, "other.run", &other), 0);
    CHECK_EQ_I64(load_one("run", H0, "other.run", &run_seal), 0);
    memcpy(bad, good, content);
    bad[entries + 12 * 50 + 4] ^= 1; /* a term id */
    other = write_sealed("other.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "other.run", &other), 0);
    CHECK_EQ_I64(load_one("run", H0, "other.run", &run_seal), CTRD_ECORRUPT);
    /* The manifest names another hour than the file's. */
    CHECK_EQ_I64(load_one("run", H0 + 1, run, &run_seal), CTRD_ECORRUPT);
    /* A missing file. */
    CHECK_EQ_I64(load_one("run", H0, "absent.run", &run_seal), CTRD_ENOTFOUND);

    /* Layout damage behind valid checksums. */
    struct fs_seal s;
    memcpy(bad, good, content);
    bad[3] ^= 1; /* magic */
    s = write_sealed("bad.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &s), CTRD_ECORRUPT);
    memcpy(bad, good, content);
    put_u64(bad + 8, n + 1); /* n */
    s = write_sealed("bad.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &s), CTRD_ECORRUPT);
    memcpy(bad, good, content);
    put_u64(bad + 24, bloom + 1); /* bloom size not whole blocks */
    s = write_sealed("bad.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &s), CTRD_ECORRUPT);
    memcpy(bad, good, content);
    put_u32(bad + entries + 12 * n + 8, (uint32_t)n_slots + 1); /* sentinel */
    s = write_sealed("bad.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &s), CTRD_ECORRUPT);
    memcpy(bad, good, content);
    put_u32(bad + entries + 12 * 50 + 8, 1u << 30); /* a query's first slot */
    s = write_sealed("bad.run", bad, content);
    CHECK_EQ_I64(load_one("run", H0, "bad.run", &s), CTRD_ECORRUPT);
    /* A slot beyond the dictionary, a dictionary that does not increase,
     * a run of format 1: refused, with the file and the offset. */
    memcpy(bad, good, content);
    put_u32(bad + slots + 4 * 7, (uint32_t)n_dict);
    s = write_sealed("bad.run", bad, content);
    load_refused_at("bad.run", &s, slots + 4 * 7, "beyond the dictionary");
    memcpy(bad, good, content);
    put_u64(bad + dict + 8 * 5, get_u64(good + dict + 8 * 4));
    s = write_sealed("bad.run", bad, content);
    load_refused_at("bad.run", &s, dict + 8 * 5, "not strictly increasing");
    memcpy(bad, good, content);
    memcpy(bad, "CTRDRUN1", 8);
    s = write_sealed("bad.run", bad, content);
    load_refused_at("bad.run", &s, 0, "format 1");
    free(good);
    free(bad);

    /* Marks: a flipped bit, a pair cut short, a pair naming no stored
     * query, or an ad the query did not show. */
    good = read_all(marks, &len);
    CHECK_EQ_U64(len, marks_bytes);
    memcpy(bad = malloc(len), good, len);
    bad[3] ^= 4;
    write_all("bad.marks", bad, len);
    CHECK_EQ_I64(load_pair(run, &run_seal, "bad.marks", &marks_seal),
                 CTRD_ECORRUPT);
    uint64_t pair[2] = {7, 700};
    CHECK(memcmp(good, pair, 16) == 0);
    s = write_sealed("bad.marks", pair, 15);
    CHECK_EQ_I64(load_pair(run, &run_seal, "bad.marks", &s), CTRD_ECORRUPT);
    pair[0] = 101;
    s = write_sealed("bad.marks", pair, 16);
    CHECK_EQ_I64(load_pair(run, &run_seal, "bad.marks", &s), CTRD_ECORRUPT);
    pair[0] = 7;
    pair[1] = 799;
    s = write_sealed("bad.marks", pair, 16);
    CHECK_EQ_I64(load_pair(run, &run_seal, "bad.marks", &s), CTRD_ECORRUPT);
    pair[1] = 701; /* query 7 showed ads 700 and 701 */
    s = write_sealed("bad.marks", pair, 16);
    CHECK_EQ_I64(load_pair(run, &run_seal, "bad.marks", &s), 0);
    free(good);
    free(bad);
}

/* ---- run files (qsrun.h) ---- */

/* The ads of query id of merge-test run r (id % 4 == r): runs 0 and 1 draw
 * from overlapping ranges of ad ids, run 2 from the top of the u64 range
 * and run 3 from the bottom, disjoint from all; a query's ads are out of
 * order, may repeat an ad, and may be none or REC_ADS_MAX. */
static uint32_t merge_ads_of(uint64_t id, uint64_t ads[REC_ADS_MAX])
{
    static const uint64_t base[] = {1000, 1010, UINT64_MAX - 40, 0};
    uint32_t n = id % 97 == 0 ? REC_ADS_MAX : (uint32_t)(id % 5);
    for (uint32_t k = 0; k < n; k++)
        ads[k] = base[id % 4] + (id * 7 + k * 13) % 29;
    if (n >= 3)
        ads[n - 1] = ads[0];
    return n;
}

/* Whether run r holds query id exactly as the merge test wrote it. */
static int merge_query_ok(const struct qsrun *r, uint64_t id)
{
    uint64_t want[REC_ADS_MAX], buf[REC_ADS_MAX];
    uint32_t n = merge_ads_of(id, want);
    struct qs_query q;
    uint64_t mapped = 0;
    return qsrun_find(r, id, buf, &q, &mapped) == 0 && q.query_id == id &&
           q.time_ms == H0 * HOUR + (int64_t)(id * 1000) &&
           q.term_id == (uint32_t)(id * 3) && q.n_ads == n && q.ads == buf &&
           memcmp(q.ads, want, 8 * (size_t)n) == 0;
}

/* Runs whose ad dictionaries overlap (0 and 1) or not (2, 3) merge into
 * one that gives every query exactly its ads, in order, through the union
 * dictionary: as merged, and opened again from its file. */
static void test_merge_dictionaries(void)
{
    clean_tmp_dir();
    enum { RUNS = 4, PER_RUN = 500 };
    char err[CTRD_ERR_LEN], name[16];
    struct qsrun *runs[RUNS] = {0}, *merged = NULL, *back = NULL;
    struct qsrun_builder b;
    CHECK_EQ_I64(qsrun_builder_init(&b, PER_RUN, PER_RUN * REC_ADS_MAX), 0);
    unsigned bad = 0;
    for (uint64_t r = 0; r < RUNS; r++) {
        qsrun_builder_reset(&b);
        for (uint64_t id = 4 + r; id < 4 + 4 * PER_RUN; id += 4) {
            uint64_t ads[REC_ADS_MAX];
            uint32_t n = merge_ads_of(id, ads);
            qsrun_builder_add(&b, id, (uint32_t)(id * 1000), (uint32_t)(id * 3),
                              ads, n);
        }
        snprintf(name, sizeof name, "in%u.run", (unsigned)r);
        if (qsrun_write(tmp_dir, name, H0, &b, &runs[r], err) != 0)
            CHECK_FAIL_AT("qsrun_write: %s", err);
        for (uint64_t id = 4 + r; runs[r] && id < 4 + 4 * PER_RUN; id += 4)
            bad += !merge_query_ok(runs[r], id);
    }
    qsrun_builder_free(&b);
    CHECK_EQ_U64(bad, 0);
    if (!runs[0] || !runs[1] || !runs[2] || !runs[3])
        goto done;
    CHECK_EQ_I64(qsrun_merge_fits(runs, RUNS), 1);
    atomic_int stop = 1; /* a merge stopped leaves no file */
    char path[600];
    snprintf(path, sizeof path, "%s/stopped.run", tmp_dir);
    CHECK_EQ_I64(qsrun_merge(tmp_dir, "stopped.run", H0, runs, RUNS, 0, &stop,
                             &merged, err),
                 CTRD_EAGAIN);
    CHECK(access(path, F_OK) != 0);
    atomic_store(&stop, 0);
    /* runs holding one id twice: refused, no file (it would not load) */
    struct qsrun *twice[2] = {runs[0], runs[0]};
    snprintf(path, sizeof path, "%s/twice.run", tmp_dir);
    CHECK_EQ_I64(
        qsrun_merge(tmp_dir, "twice.run", H0, twice, 2, 0, &stop, &merged, err),
        CTRD_ECORRUPT);
    CHECK(access(path, F_OK) != 0);
    merged = NULL;
    /* releasing the inputs' pages behind its reads changes nothing */
    if (qsrun_merge(tmp_dir, "merged.run", H0, runs, RUNS, 1, &stop, &merged,
                    err) != 0) {
        CHECK_FAIL_AT("qsrun_merge: %s", err);
        goto done;
    }
    CHECK_EQ_I64(qsrun_open(tmp_dir, qsrun_file(merged), H0, &back, err), 0);
    struct qs_query q;
    uint64_t buf[REC_ADS_MAX], mapped = 0;
    for (uint64_t id = 4; back && id < 4 + 4 * PER_RUN; id++)
        bad += !merge_query_ok(merged, id) + !merge_query_ok(back, id);
    for (uint64_t r = 0; r < RUNS; r++) /* the inputs as they were */
        for (uint64_t id = 4 + r; id < 4 + 4 * PER_RUN; id += 4)
            bad += !merge_query_ok(runs[r], id);
    bad += qsrun_find(merged, 3, buf, &q, &mapped) != CTRD_ENOTFOUND;
    bad +=
        qsrun_find(merged, 4 + 4 * PER_RUN, buf, &q, &mapped) != CTRD_ENOTFOUND;
    CHECK_EQ_U64(bad, 0);
    CHECK_EQ_U64(qsrun_queries(merged), 4 * PER_RUN);
    /* The union holds each ad once: 1000..1038 (runs 0 and 1 share
     * 1010..1028), 29 at the top, 29 at the bottom. */
    size_t len;
    unsigned char *file = read_all("merged.run", &len);
    CHECK_EQ_U64(file ? get_u64(file + 40) : 0, 39 + 29 + 29);
    free(file);
done:
    for (size_t r = 0; r < RUNS; r++)
        qsrun_free(runs[r]);
    qsrun_free(merged);
    qsrun_free(back);
}

static void test_workers_share_runs(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    put(qs, 0, 11, H0 * HOUR + 11);
    put(qs, 1, 12, H0 * HOUR + 12);
    struct qs_query q;
    CHECK_EQ_I64(qs_get(qs, 1, 11, &q), CTRD_ENOTFOUND); /* memtables */
    free(checkpoint(qs, 1, INT64_MIN));
    CHECK(stored_ok(qs, 1, 11, H0 * HOUR + 11));
    CHECK(stored_ok(qs, 0, 12, H0 * HOUR + 12));
    struct qs_stats st;
    qs_get_stats(qs, &st);
    CHECK_EQ_U64(st.runs, 1); /* one run per partition per checkpoint */
    qs_close(qs);
}

/* ad_ids may be empty (SPEC 1.1): such queries are stored, found, and
 * survive a checkpoint, also as the first or only queries of a memtable
 * (where no ads array has been allocated yet). */
static void test_queries_without_ads(void)
{
    clean_tmp_dir();
    struct qs *qs = open_qs(2, INT64_MIN);
    if (!qs)
        return;
    struct rec_query none = {.query_id = 1, .time_ms = H0 * HOUR + 1};
    CHECK_EQ_I64(qs_put(qs, 0, &none, 9), 0); /* first of worker 0 */
    none.query_id = 2;
    CHECK_EQ_I64(qs_put(qs, 1, &none, 9), 0); /* only one of worker 1 */
    CHECK_EQ_I64(put(qs, 0, 3, H0 * HOUR + 3), 0);
    none.query_id = 4;
    CHECK_EQ_I64(qs_put(qs, 0, &none, 9), 0); /* last of the run */
    struct qs_query got;
    for (uint64_t id = 1; id <= 4; id += id == 2 ? 2 : 1) {
        CHECK_EQ_I64(qs_get(qs, (unsigned)(id == 2), id, &got), 0);
        CHECK_EQ_U64(got.n_ads, 0);
        CHECK_EQ_U64(got.term_id, 9);
    }
    char *manifest = checkpoint(qs, 1, INT64_MIN);
    int rc;
    struct qs *back = manifest ? reload(manifest, 1, INT64_MIN, &rc) : NULL;
    for (uint64_t id = 1; back && id <= 4; id += id == 2 ? 2 : 1) {
        CHECK_EQ_I64(qs_get(back, 0, id, &got), 0);
        CHECK_EQ_U64(got.n_ads, 0);
        CHECK_EQ_I64(got.time_ms, H0 * HOUR + 1);
    }
    CHECK(back && stored_ok(back, 0, 3, H0 * HOUR + 3));
    qs_close(back);
    free(manifest);
    qs_close(qs);
}

int main(void)
{
    make_tmp_dir();
    RUN(test_memtable);
    RUN(test_checkpoint_and_reload);
    RUN(test_wide_query_ids);
    RUN(test_partitions_by_hour);
    RUN(test_compaction);
    RUN(test_merge_in_progress);
    RUN(test_expiry_while_merging);
    RUN(test_failed_merge_dropped);
    RUN(test_id_filter);
    RUN(test_marks);
    RUN(test_horizon);
    RUN(test_damaged_runs);
    RUN(test_merge_dictionaries);
    RUN(test_workers_share_runs);
    RUN(test_queries_without_ads); /* last: UB here aborts a sanitized run */
    clean_tmp_dir();
    rmdir(tmp_dir);
    return check_done();
}
