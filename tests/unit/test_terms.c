/* Unit tests of terms: one id per byte string (NUL bytes included), ids
 * that survive sync + reopen, reopen at an older commit point, damaged
 * files, failed syncs, and consistent ids when several threads intern at
 * once. */
#include "check.h"
#include "crc32c.h"
#include "terms.h"
#include "testfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[64];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-terms-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void remove_terms_file(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/terms.dat", tmp_dir);
    unlink(path);
}

static long long terms_file_size(void)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/terms.dat", tmp_dir);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static struct terms *open_terms(uint64_t committed)
{
    char err[CTRD_ERR_LEN] = "";
    struct terms *t = NULL;
    int rc = terms_open(tmp_dir, committed, &t, err);
    if (rc != 0)
        CHECK_FAIL_AT("terms_open(%llu): %d %s", (unsigned long long)committed,
                      rc, err);
    return t;
}

static uint32_t intern(struct terms *t, const char *s, uint32_t len)
{
    uint32_t id = UINT32_MAX;
    int rc = terms_intern(t, s, len, &id);
    if (rc != 0)
        CHECK_FAIL_AT("terms_intern: %d", rc);
    return id;
}

/* Whether id names exactly s[0..len). */
static int has_bytes(const struct terms *t, uint32_t id, const char *s,
                     uint32_t len)
{
    uint32_t got_len;
    const char *got = terms_get(t, id, &got_len);
    return got_len == len && (len == 0 || memcmp(got, s, len) == 0);
}

struct bytes_case {
    const char *s;
    uint32_t len;
};

static const struct bytes_case cases[] = {
    {"running shoes", 13},
    {"running shoe", 12},  /* a prefix */
    {"a\0b", 3},           /* NUL inside */
    {"a\0c", 3},
    {"a", 1},              /* same as "a\0b" up to the NUL */
    {"a\0", 2},
    {"\0", 1},
    {"caf\xc3\xa9", 5},
    {"Running shoes", 13}, /* terms are bytes: case matters here */
};
#define N_CASES (sizeof cases / sizeof cases[0])

static void test_intern_ids(void)
{
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 0);
    uint32_t ids[N_CASES];
    for (size_t i = 0; i < N_CASES; i++) {
        ids[i] = intern(t, cases[i].s, cases[i].len);
        CHECK_EQ_U64(ids[i], i); /* dense, in order of first sight */
    }
    CHECK_EQ_U64(terms_count(t), N_CASES);
    for (size_t i = 0; i < N_CASES; i++) {
        char copy[32]; /* other memory, same bytes */
        memcpy(copy, cases[i].s, cases[i].len);
        CHECK_EQ_U64(intern(t, copy, cases[i].len), ids[i]);
        uint32_t found = UINT32_MAX;
        CHECK_EQ_I64(terms_find(t, copy, cases[i].len, &found), 0);
        CHECK_EQ_U64(found, ids[i]);
        if (!has_bytes(t, ids[i], cases[i].s, cases[i].len))
            CHECK_FAIL_AT("terms_get(%u) does not round-trip", ids[i]);
    }
    CHECK_EQ_U64(terms_count(t), N_CASES);
    uint32_t id;
    CHECK_EQ_I64(terms_find(t, "absent", 6, &id), CTRD_ENOTFOUND);
    CHECK_EQ_I64(terms_find(t, "a\0d", 3, &id), CTRD_ENOTFOUND);
    terms_close(t);
    terms_close(NULL);
}

/* Interns n generated terms "term <i>" (plus a NUL and a tail every
 * seventh) and checks ids i + base. */
static void make_term(char *buf, uint32_t *len, unsigned i)
{
    int n = snprintf(buf, 64, "term %u", i);
    *len = (uint32_t)n;
    if (i % 7 == 0) {
        buf[n] = '\0';
        memcpy(buf + n + 1, "x", 1);
        *len += 2;
    }
}

static void test_sync_and_reopen(void)
{
    char err[CTRD_ERR_LEN];
    char buf[64];
    uint32_t len;
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    uint64_t empty_bytes = 99;
    CHECK_EQ_I64(terms_sync(t, &empty_bytes, err), 0);
    CHECK_EQ_U64(empty_bytes, 0);
    uint64_t file_bytes = 8; /* the magic */
    for (unsigned i = 0; i < 3000; i++) {
        make_term(buf, &len, i);
        CHECK_EQ_U64(intern(t, buf, len), i);
        file_bytes += 8 + len;
    }
    uint64_t c1 = 0;
    CHECK_EQ_I64(terms_sync(t, &c1, err), 0);
    CHECK_EQ_U64(c1, file_bytes);
    CHECK_EQ_I64(terms_file_size(), (long long)file_bytes);
    uint64_t again = 0; /* nothing new: same commit point */
    CHECK_EQ_I64(terms_sync(t, &again, err), 0);
    CHECK_EQ_U64(again, c1);
    for (unsigned i = 3000; i < 4000; i++) {
        make_term(buf, &len, i);
        CHECK_EQ_U64(intern(t, buf, len), i);
        file_bytes += 8 + len;
    }
    uint64_t c2 = 0;
    CHECK_EQ_I64(terms_sync(t, &c2, err), 0);
    CHECK_EQ_U64(c2, file_bytes);
    terms_close(t);

    /* Reopen at the newest commit: every term has its old id. */
    t = open_terms(c2);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 4000);
    for (unsigned i = 0; i < 4000; i++) {
        make_term(buf, &len, i);
        uint32_t id = UINT32_MAX;
        if (terms_find(t, buf, len, &id) != 0 || id != i ||
            !has_bytes(t, i, buf, len)) {
            CHECK_FAIL_AT("after reopen, term %u has id %u", i, id);
            break;
        }
    }
    terms_close(t);

    /* At the older commit: later terms are gone, the file is kept. */
    t = open_terms(c1);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 3000);
    make_term(buf, &len, 3500);
    uint32_t id;
    CHECK_EQ_I64(terms_find(t, buf, len, &id), CTRD_ENOTFOUND);
    make_term(buf, &len, 2999);
    CHECK_EQ_I64(terms_find(t, buf, len, &id), 0);
    CHECK_EQ_U64(id, 2999);
    terms_close(t);
    CHECK_EQ_I64(terms_file_size(), (long long)c2);

    /* The next sync after the older commit cuts the file there, and the
     * ids after it are handed out again, to whatever comes next. */
    t = open_terms(c1);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 3000);
    CHECK_EQ_I64(terms_file_size(), (long long)c2);
    CHECK_EQ_U64(intern(t, "new after crash", 15), 3000);
    uint64_t c3 = 0;
    CHECK_EQ_I64(terms_sync(t, &c3, err), 0);
    CHECK_EQ_U64(c3, c1 + 8 + 15);
    CHECK_EQ_I64(terms_file_size(), (long long)c3);
    terms_close(t);
    t = open_terms(c3);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 3001);
    CHECK(has_bytes(t, 3000, "new after crash", 15));
    terms_close(t);
}

static int open_rc(uint64_t committed)
{
    char err[CTRD_ERR_LEN];
    struct terms *t = NULL;
    int rc = terms_open(tmp_dir, committed, &t, err);
    terms_close(t);
    return rc;
}

static void terms_path(char *path, size_t len)
{
    snprintf(path, len, "%s/terms.dat", tmp_dir);
}

static void test_bad_commit_points(void)
{
    char err[CTRD_ERR_LEN];
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    intern(t, "abc", 3);
    intern(t, "defgh", 5);
    uint64_t c = 0;
    CHECK_EQ_I64(terms_sync(t, &c, err), 0);
    CHECK_EQ_U64(c, 8 + 8 + 3 + 8 + 5);
    terms_close(t);
    /* The byte table of terms.h. */
    char path[128];
    terms_path(path, sizeof path);
    size_t len;
    unsigned char *file = testfs_read(path, &len);
    uint32_t u32, head[2] = {1, 5}; /* id 1, 5 bytes */
    CHECK(memcmp(file, "CTRDTRM1", 8) == 0);
    memcpy(&u32, file + 8, 4);
    CHECK_EQ_U64(u32, 3);
    memcpy(&u32, file + 19, 4);
    CHECK_EQ_U64(u32, 5);
    memcpy(&u32, file + 23, 4);
    CHECK_EQ_U64(u32, crc32c(crc32c(0, head, 8), "defgh", 5));
    CHECK(memcmp(file + 27, "defgh", 5) == 0);
    free(file);
    /* Beyond the file, inside the magic, inside a record: corrupt. */
    static const uint64_t bad[] = {33, 100, 2, 7, 9, 15, 18, 20, 31};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = open_rc(bad[i]);
        if (rc != CTRD_ECORRUPT)
            CHECK_FAIL_AT("commit %llu: rc %d, want %d",
                          (unsigned long long)bad[i], rc, CTRD_ECORRUPT);
    }
    CHECK_EQ_I64(terms_file_size(), 32);
    /* The record boundaries are fine. */
    t = open_terms(19);
    if (t) {
        CHECK_EQ_U64(terms_count(t), 1);
        terms_close(t);
    }
    t = open_terms(8);
    if (t) {
        CHECK_EQ_U64(terms_count(t), 0);
        terms_close(t);
    }
    /* A directory without terms.dat at commit 0; missing when named. */
    remove_terms_file();
    t = open_terms(0);
    if (t) {
        CHECK_EQ_U64(terms_count(t), 0);
        terms_close(t);
    }
    CHECK_EQ_I64(open_rc(32), CTRD_ENOTFOUND);
}

/* Every committed byte is covered: a flipped bit anywhere in the committed
 * prefix, or two records of one length swapped, fail the open; bytes past
 * the commit point do not matter. */
static void test_damaged_file(void)
{
    char err[CTRD_ERR_LEN], path[128];
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    intern(t, "abc", 3);
    intern(t, "xyz", 3);
    intern(t, "running shoes", 13);
    uint64_t c = 0;
    CHECK_EQ_I64(terms_sync(t, &c, err), 0);
    terms_close(t);
    terms_path(path, sizeof path);
    size_t len;
    unsigned char *good = testfs_read(path, &len);
    unsigned char *bad = malloc(len + 16);
    CHECK_EQ_U64(len, c);
    unsigned missed = 0;
    for (size_t at = 0; at < len; at++) {
        memcpy(bad, good, len);
        bad[at] ^= (unsigned char)(0x10 >> (at % 5));
        testfs_write(path, bad, len);
        missed += open_rc(c) != CTRD_ECORRUPT;
    }
    CHECK_EQ_U64(missed, 0);
    memcpy(bad, good, len);
    memcpy(bad + 8, good + 8 + 11, 11); /* "xyz" first, then "abc" */
    memcpy(bad + 8 + 11, good + 8, 11);
    testfs_write(path, bad, len);
    CHECK_EQ_I64(open_rc(c), CTRD_ECORRUPT);
    memcpy(bad, good, len);
    memcpy(bad + len, "garbage after", 13);
    testfs_write(path, bad, len + 13);
    CHECK_EQ_I64(open_rc(c), 0);
    free(good);
    free(bad);
}

/* A sync that fails part-way (the file may not grow) leaves the dictionary
 * as it was; once writes succeed again, a sync writes it whole and a
 * reopen finds every term at its id. */
static void test_failed_sync(void)
{
    char err[CTRD_ERR_LEN], buf[64];
    uint32_t len;
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    for (unsigned i = 0; i < 100; i++) {
        make_term(buf, &len, i);
        intern(t, buf, len);
    }
    uint64_t c1 = 0, c2 = 0;
    CHECK_EQ_I64(terms_sync(t, &c1, err), 0);
    for (unsigned i = 100; i < 5000; i++) {
        make_term(buf, &len, i);
        intern(t, buf, len);
    }
    testfs_limit_file_size((rlim_t)c1 + 1000);
    uint64_t failed = 7;
    CHECK(terms_sync(t, &failed, err) != 0);
    testfs_limit_file_size(RLIM_INFINITY);
    CHECK_EQ_I64(terms_file_size(), (long long)c1 + 1000); /* a torn tail */
    CHECK_EQ_I64(open_rc(c1), 0);
    CHECK_EQ_I64(terms_sync(t, &c2, err), 0);
    CHECK_EQ_I64(terms_file_size(), (long long)c2);
    terms_close(t);
    t = open_terms(c2);
    if (!t)
        return;
    CHECK_EQ_U64(terms_count(t), 5000);
    unsigned wrong = 0;
    for (unsigned i = 0; i < 5000; i++) {
        uint32_t id = UINT32_MAX;
        make_term(buf, &len, i);
        wrong += terms_find(t, buf, len, &id) != 0 || id != i;
    }
    CHECK_EQ_U64(wrong, 0);
    terms_close(t);
}

/* A term longer than the arena block round-trips through the file. */
static void test_huge_term(void)
{
    char err[CTRD_ERR_LEN];
    uint32_t n = 3u << 20;
    char *big = malloc(n);
    if (!big)
        return;
    for (uint32_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t) {
        free(big);
        return;
    }
    CHECK_EQ_U64(intern(t, "small", 5), 0);
    CHECK_EQ_U64(intern(t, big, n), 1);
    CHECK_EQ_U64(intern(t, "after", 5), 2);
    uint64_t c = 0;
    CHECK_EQ_I64(terms_sync(t, &c, err), 0);
    CHECK_EQ_U64(c, 8 + 3 * 8 + 5 + n + 5);
    terms_close(t);
    t = open_terms(c);
    if (t) {
        CHECK(has_bytes(t, 1, big, n));
        CHECK(has_bytes(t, 2, "after", 5));
        terms_close(t);
    }
    free(big);
}

#define N_THREADS 4
#define N_SHARED 60000u /* > 64 stripes x 768: every stripe grows */

struct intern_job {
    struct terms *t;
    unsigned first; /* where this thread starts in the shared list */
    uint32_t *ids;  /* [N_SHARED + 1000]: shared terms, then own ones */
    int rc;
};

static void *intern_thread(void *arg)
{
    struct intern_job *job = arg;
    char buf[64];
    uint32_t len;
    for (unsigned k = 0; k < N_SHARED && job->rc == 0; k++) {
        unsigned i = (job->first + k) % N_SHARED;
        make_term(buf, &len, i);
        job->rc = terms_intern(job->t, buf, len, &job->ids[i]);
        /* Interleave terms only this thread has. */
        if (k % 60 == 0 && job->rc == 0) {
            int n = snprintf(buf, sizeof buf, "own %u %u", job->first,
                             k / 60);
            job->rc = terms_intern(job->t, buf, (uint32_t)n,
                                   &job->ids[N_SHARED + k / 60]);
        }
    }
    return NULL;
}

static void test_concurrent_intern(void)
{
    remove_terms_file();
    struct terms *t = open_terms(0);
    if (!t)
        return;
    struct intern_job jobs[N_THREADS];
    pthread_t threads[N_THREADS];
    for (unsigned i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct intern_job){t, i * (N_SHARED / N_THREADS) + i * 7,
                                      calloc(N_SHARED + 1000, 4), 0};
        pthread_create(&threads[i], NULL, intern_thread, &jobs[i]);
    }
    for (unsigned i = 0; i < N_THREADS; i++)
        pthread_join(threads[i], NULL);
    const uint32_t n_total = N_SHARED + N_THREADS * 1000;
    CHECK_EQ_U64(terms_count(t), n_total);
    /* Every thread saw the same id for a shared term, every id is used
     * once, and each id names the bytes it was given for. */
    uint8_t *used = calloc(n_total, 1);
    char buf[64];
    uint32_t len;
    unsigned bad = 0;
    for (unsigned i = 0; i < N_THREADS; i++)
        CHECK_EQ_I64(jobs[i].rc, 0);
    for (unsigned i = 0; i < N_SHARED; i++) {
        uint32_t id = jobs[0].ids[i];
        for (unsigned k = 1; k < N_THREADS; k++)
            bad += jobs[k].ids[i] != id;
        make_term(buf, &len, i);
        bad += id >= n_total || used[id] || !has_bytes(t, id, buf, len);
        if (id < n_total)
            used[id] = 1;
    }
    for (unsigned k = 0; k < N_THREADS; k++) {
        for (unsigned j = 0; j < 1000; j++) {
            uint32_t id = jobs[k].ids[N_SHARED + j];
            int n = snprintf(buf, sizeof buf, "own %u %u", jobs[k].first, j);
            bad += id >= n_total || used[id] ||
                   !has_bytes(t, id, buf, (uint32_t)n);
            if (id < n_total)
                used[id] = 1;
        }
    }
    CHECK_EQ_U64(bad, 0);
    /* Sync writes them in id order; a reopen gives the same ids. */
    char err[CTRD_ERR_LEN];
    uint64_t c = 0;
    CHECK_EQ_I64(terms_sync(t, &c, err), 0);
    terms_close(t);
    t = open_terms(c);
    if (t) {
        unsigned moved = 0;
        for (unsigned i = 0; i < N_SHARED; i++) {
            make_term(buf, &len, i);
            moved += !has_bytes(t, jobs[0].ids[i], buf, len);
        }
        CHECK_EQ_U64(moved, 0);
        CHECK_EQ_U64(terms_count(t), n_total);
        terms_close(t);
    }
    free(used);
    for (unsigned i = 0; i < N_THREADS; i++)
        free(jobs[i].ids);
}

int main(void)
{
    make_tmp_dir();
    RUN(test_intern_ids);
    RUN(test_sync_and_reopen);
    RUN(test_bad_commit_points);
    RUN(test_damaged_file);
    RUN(test_failed_sync);
    RUN(test_huge_term);
    RUN(test_concurrent_intern);
    remove_terms_file();
    rmdir(tmp_dir);
    return check_done();
}
