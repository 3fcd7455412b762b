/* Unit tests of countmap: buckets accumulate per (ad, term, minute), ads
 * come back sorted, snapshots round-trip exactly, a chain of deltas loads
 * as the map that wrote it, damaged counts files are reported as corrupt,
 * and slots are placed with a seed of their own
 * in every process (run as `test_countmap --save-big PATH`, the binary
 * saves fill_big()'s map for the test that compares processes). */
#include "check.h"
#include "countmap.h"
#include "hash.h"
#include "testfs.h"

#include <stdlib.h>
#include <unistd.h>

static char tmp_dir[64];

static void make_tmp_dir(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-cm-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void path_in_tmp(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", tmp_dir, name);
}

/* The bucket (term, minute) of an ad, or NULL (static storage). */
static const struct cm_bucket *find_bucket(const struct countmap *cm,
                                           uint64_t ad, uint32_t term,
                                           uint32_t minute)
{
    static struct cm_bucket b;
    int rc = cm_get(cm, ad, term, minute, &b, NULL);
    if (rc != 0 && rc != CTRD_ENOTFOUND)
        CHECK_FAIL_AT("cm_get: %d", rc);
    if (rc == 0 && (b.term_id != term || b.minute != minute))
        CHECK_FAIL_AT("cm_get(%u, %u) gave bucket (%u, %u)", term, minute,
                      b.term_id, b.minute);
    return rc == 0 ? &b : NULL;
}

/* What a scan saw: the buckets in visit order. */
struct scan {
    struct cm_bucket b[512];
    size_t n;
};

static void scan_one(void *ctx, const struct cm_bucket *b)
{
    struct scan *s = ctx;
    if (s->n < 512)
        s->b[s->n] = *b;
    s->n++;
}

static size_t scan_ad(const struct countmap *cm, uint64_t ad, uint64_t from,
                      uint64_t to, struct scan *s)
{
    s->n = 0;
    CHECK_EQ_I64(cm_ad_scan(cm, ad, from, to, CM_MINUTE, scan_one, s, NULL), 0);
    return s->n;
}

static void test_add_accumulates(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    CHECK_EQ_I64(cm_add(cm, 7, 1, 100, 1, 0, NULL), 0);
    CHECK_EQ_I64(cm_add(cm, 7, 1, 100, 1, 0, NULL), 0);
    CHECK_EQ_I64(cm_add(cm, 7, 1, 100, 0, 1, NULL), 0);
    CHECK_EQ_I64(cm_add(cm, 7, 1, 101, 5, 2, NULL), 0); /* other minute */
    CHECK_EQ_I64(cm_add(cm, 7, 2, 100, 3, 0, NULL), 0); /* other term */
    CHECK_EQ_I64(cm_add(cm, 8, 1, 100, 4, 4, NULL), 0); /* other ad */
    CHECK_EQ_I64(cm_add(cm, 0, 0, 0, 1, 0, NULL), 0);   /* ad 0 is valid */
    static struct scan sc;
    CHECK_EQ_U64(scan_ad(cm, 7, 0, UINT64_MAX, &sc), 3);
    const struct cm_bucket *b = find_bucket(cm, 7, 1, 100);
    CHECK(b && b->impressions == 2 && b->clicks == 1);
    b = find_bucket(cm, 7, 1, 101);
    CHECK(b && b->impressions == 5 && b->clicks == 2);
    b = find_bucket(cm, 7, 2, 100);
    CHECK(b && b->impressions == 3 && b->clicks == 0);
    b = find_bucket(cm, 8, 1, 100);
    CHECK(b && b->impressions == 4 && b->clicks == 4);
    b = find_bucket(cm, 0, 0, 0);
    CHECK(b && b->impressions == 1 && b->clicks == 0);
    CHECK_EQ_U64(scan_ad(cm, 9, 0, UINT64_MAX, &sc), 0);
    CHECK(find_bucket(cm, 9, 1, 100) == NULL); /* unknown ad */
    CHECK(find_bucket(cm, 7, 1, 102) == NULL); /* unknown minute */
    CHECK(find_bucket(cm, 7, 3, 100) == NULL); /* unknown term */
    CHECK(find_bucket(cm, 7, 2, 101) == NULL);
    CHECK_EQ_U64(cm_bucket_count(cm), 5);
    cm_free(cm);
    cm_free(NULL);
}

/* Many ads and many buckets per ad: every table grows several times. */
static void fill_big(struct countmap *cm)
{
    for (uint64_t ad = 1; ad <= 3000; ad++) {
        uint64_t id = ad * UINT64_C(0x9e3779b97f4a7c15); /* spread ids */
        for (uint32_t k = 0; k < (ad % 7 == 0 ? 300 : 3); k++)
            cm_add(cm, id, k % 17, 1000 + k, ad + k, k % 3, NULL);
    }
}

static void test_many_ads_and_sorted(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    fill_big(cm);
    fill_big(cm); /* twice: counts double, buckets do not */
    uint64_t *ads;
    size_t n;
    CHECK_EQ_I64(cm_ads(cm, &ads, &n), 0);
    CHECK_EQ_U64(n, 3000);
    for (size_t i = 1; i < n; i++) {
        if (ads[i - 1] >= ads[i]) {
            CHECK_FAIL_AT("cm_ads not ascending at %zu", i);
            break;
        }
    }
    free(ads);
    /* 428 ads (multiples of 7) with 300 buckets, 2572 with 3. */
    CHECK_EQ_U64(cm_bucket_count(cm), 428 * 300 + 2572 * 3);
    uint64_t id = 14 * UINT64_C(0x9e3779b97f4a7c15);
    const struct cm_bucket *b = find_bucket(cm, id, 250 % 17, 1250);
    CHECK(b && b->impressions == 2 * (14 + 250) && b->clicks == 2 * (250 % 3));
    static struct scan sc;
    CHECK_EQ_U64(scan_ad(cm, id, 0, UINT64_MAX, &sc), 300);
    cm_free(cm);
}

/* Scans visit one ad's minutes in [from, to), ascending, whatever order
 * they were counted in. */
static void test_scan_range(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    static const uint32_t minutes[] = {1005, 1000, 1003,      1000,
                                       1001, 7,    UINT32_MAX};
    for (size_t i = 0; i < sizeof minutes / sizeof minutes[0]; i++) {
        cm_add(cm, 42, (uint32_t)i, minutes[i], 1, 0, NULL);
        cm_add(cm, 43, 0, minutes[i] / 2, 1, 0, NULL); /* another ad */
    }
    static struct scan sc;
    static const struct {
        uint64_t from, to;
        size_t n;
        uint32_t first, last;
    } rows[] = {
        {0, UINT64_MAX, 7, 7, UINT32_MAX},
        {1001, 1004, 2, 1001, 1003},
        {1000, 1001, 2, 1000, 1000}, /* two terms in minute 1000 */
        {1004, 1005, 0, 0, 0},
        {1005, 1006, 1, 1005, 1005},
        {UINT32_MAX, UINT64_MAX, 1, UINT32_MAX, UINT32_MAX},
        {1003, 1003, 0, 0, 0}, /* empty range */
        {1004, 1000, 0, 0, 0}, /* reversed */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t n = scan_ad(cm, 42, rows[i].from, rows[i].to, &sc);
        int ok = n == rows[i].n;
        for (size_t k = 1; ok && k < n; k++)
            ok = sc.b[k - 1].minute <= sc.b[k].minute;
        if (ok && n)
            ok = sc.b[0].minute == rows[i].first &&
                 sc.b[n - 1].minute == rows[i].last;
        if (!ok)
            CHECK_FAIL_AT("scan [%llu, %llu): %zu buckets, want %zu",
                          (unsigned long long)rows[i].from,
                          (unsigned long long)rows[i].to, n, rows[i].n);
    }
    CHECK_EQ_U64(scan_ad(cm, 44, 0, UINT64_MAX, &sc), 0);
    cm_free(cm);
}

static void test_ads_empty(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    uint64_t *ads = NULL;
    size_t n = 99;
    CHECK_EQ_I64(cm_ads(cm, &ads, &n), 0);
    CHECK_EQ_U64(n, 0);
    free(ads);
    CHECK_EQ_U64(cm_bucket_count(cm), 0);
    cm_free(cm);
}

/* Every bucket of a is in b with the same counts, and the sizes match. */
struct compare {
    const struct countmap *other;
    uint64_t ad;
    int same;
};

static void compare_one(void *ctx, const struct cm_bucket *b)
{
    struct compare *c = ctx;
    struct cm_bucket o;
    if (cm_get(c->other, c->ad, b->term_id, b->minute, &o, NULL) != 0 ||
        o.impressions != b->impressions || o.clicks != b->clicks)
        c->same = 0;
}

static int maps_equal(const struct countmap *a, const struct countmap *b)
{
    uint64_t *ads_a, *ads_b;
    size_t n_a, n_b;
    if (cm_ads(a, &ads_a, &n_a) != 0 || cm_ads(b, &ads_b, &n_b) != 0)
        return 0;
    struct compare c = {b, 0,
                        n_a == n_b && cm_bucket_count(a) == cm_bucket_count(b)};
    for (size_t i = 0; c.same && i < n_a; i++) {
        c.same = ads_a[i] == ads_b[i];
        c.ad = ads_a[i];
        CHECK_EQ_I64(cm_ad_scan(a, ads_a[i], 0, UINT64_MAX, CM_MINUTE,
                                compare_one, &c, NULL),
                     0);
    }
    free(ads_a);
    free(ads_b);
    return c.same;
}

static void test_save_load_round_trip(void)
{
    char path[128], err[CTRD_ERR_LEN];
    struct countmap *cm, *back;
    CHECK_EQ_I64(cm_create(&cm), 0);
    fill_big(cm);
    /* The largest ids: terms hands out ids below UINT32_MAX. */
    cm_add(cm, UINT64_MAX, UINT32_MAX - 1, UINT32_MAX, UINT64_MAX - 1, 7, NULL);
    path_in_tmp(path, sizeof path, "counts-1.dat");
    struct fs_seal seal;
    CHECK_EQ_I64(cm_save(cm, CM_SNAPSHOT, path, &seal, err), 0);
    CHECK_EQ_I64(cm_create(&back), 0);
    CHECK_EQ_I64(cm_load(back, path, &seal, UINT32_MAX, err), 0);
    CHECK(maps_equal(cm, back));
    CHECK(maps_equal(back, cm));
    const struct cm_bucket *b =
        find_bucket(back, UINT64_MAX, UINT32_MAX - 1, UINT32_MAX);
    CHECK(b && b->impressions == UINT64_MAX - 1 && b->clicks == 7);
    /* Loading keeps the buckets the map holds: a second load of the same
     * file (as if older) changes nothing; a map with one bucket more
     * differs. */
    CHECK_EQ_I64(cm_load(back, path, &seal, UINT32_MAX, err), 0);
    CHECK(maps_equal(cm, back) && maps_equal(back, cm));
    cm_add(cm, UINT64_MAX - 1, 0, 0, 0, 0, NULL); /* not in back */
    CHECK(!maps_equal(cm, back));
    cm_free(back);
    /* An empty map round-trips too. */
    struct countmap *empty, *empty_back;
    CHECK_EQ_I64(cm_create(&empty), 0);
    CHECK_EQ_I64(cm_save(empty, CM_SNAPSHOT, path, &seal, err), 0);
    CHECK_EQ_I64(cm_create(&empty_back), 0);
    CHECK_EQ_I64(cm_load(empty_back, path, &seal, 0, err), 0);
    CHECK_EQ_U64(cm_bucket_count(empty_back), 0);
    cm_free(empty);
    cm_free(empty_back);
    cm_free(cm);
    unlink(path);
}

/* cm_load of path into a new map, expecting seal, with n_terms. */
static int load_fresh(const char *path, const struct fs_seal *seal,
                      uint32_t n_terms)
{
    char err[CTRD_ERR_LEN];
    struct countmap *m;
    if (cm_create(&m) != 0)
        return CTRD_ENOMEM;
    int rc = cm_load(m, path, seal, n_terms, err);
    cm_free(m);
    return rc;
}

/* Every byte is covered by a checksum: a flipped bit anywhere, a cut or an
 * extra byte fail the load, as does another valid snapshot under the
 * manifest's seal; behind valid checksums the layout, the term ids and
 * clicks <= impressions are checked. */
static void test_damaged_files(void)
{
    char path[128], bad[128], err[CTRD_ERR_LEN];
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    cm_add(cm, 1, 1, 1, 1, 1, NULL);
    cm_add(cm, 2, 1, 1, 1, 1, NULL);
    path_in_tmp(path, sizeof path, "good.dat");
    path_in_tmp(bad, sizeof bad, "bad.dat");
    struct fs_seal seal;
    CHECK_EQ_I64(cm_save(cm, CM_SNAPSHOT, path, &seal, err), 0);
    cm_free(cm);
    size_t len;
    unsigned char *buf = testfs_read(path, &len);
    size_t content = testfs_content_len(buf, len);
    CHECK_EQ_U64(content, 16 + 2 * (16 + 24)); /* header + 2 ads, 1 bucket */
    CHECK_EQ_U64(len, content + 4 + FS_FOOTER_BYTES);
    CHECK_EQ_I64(load_fresh(path, &seal, 2), 0);
    unsigned char *edit = malloc(len + 8);
    unsigned missed = 0;
    for (size_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(edit, buf, len);
            edit[at] ^= (unsigned char)(1u << bit);
            testfs_write(bad, edit, len);
            struct fs_seal own = testfs_seal_of(edit, len);
            missed += load_fresh(bad, &seal, 2) != CTRD_ECORRUPT;
            missed += load_fresh(bad, &own, 2) != CTRD_ECORRUPT;
        }
    }
    CHECK_EQ_U64(missed, 0);
    for (size_t cut = 0; cut < len; cut++) {
        testfs_write(bad, buf, cut);
        struct fs_seal own = {cut, seal.crc};
        missed += load_fresh(bad, &seal, 2) != CTRD_ECORRUPT;
        missed += load_fresh(bad, &own, 2) != CTRD_ECORRUPT;
    }
    CHECK_EQ_U64(missed, 0);
    memcpy(edit, buf, len);
    memset(edit + len, 0, 8);
    testfs_write(bad, edit, len + 8);
    CHECK_EQ_I64(load_fresh(bad, &seal, 2), CTRD_ECORRUPT);
    /* Layout behind valid checksums: bad magic, an ad count or bucket
     * count too big, trailing bytes, a term id beyond the dictionary,
     * more clicks than impressions. */
    static const struct {
        size_t at;
        unsigned char byte;
    } edits[] = {
        {0, 'X'},            /* magic */
        {8, 3},              /* 3 ads, file has 2 */
        {8 + 8 + 8, 2},      /* first ad: 2 buckets */
        {8 + 8 + 8 + 7, 1},  /* first ad: 2^56 + 1 buckets */
        {8 + 8 + 16, 2},     /* first bucket: term 2 */
        {8 + 8 + 16 + 16, 2} /* first bucket: 2 clicks, 1 impression */
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        memcpy(edit, buf, content);
        edit[edits[i].at] = edits[i].byte;
        struct fs_seal own = testfs_write_sealed(bad, edit, content);
        int rc = load_fresh(bad, &own, 2);
        if (rc != CTRD_ECORRUPT)
            CHECK_FAIL_AT("edit at %zu: rc %d, want %d", edits[i].at, rc,
                          CTRD_ECORRUPT);
    }
    memcpy(edit, buf, content);
    memset(edit + content, 0, 8);
    struct fs_seal longer = testfs_write_sealed(bad, edit, content + 8);
    CHECK_EQ_I64(load_fresh(bad, &longer, 2), CTRD_ECORRUPT);
    /* Another valid snapshot under the manifest's name and seal. */
    memcpy(edit, buf, content);
    edit[8 + 8 + 16 + 8] = 3; /* 3 impressions */
    testfs_write_sealed(bad, edit, content);
    CHECK_EQ_I64(load_fresh(bad, &seal, 2), CTRD_ECORRUPT);
    /* The term ids are checked against the dictionary's size. */
    CHECK_EQ_I64(load_fresh(path, &seal, 1), CTRD_ECORRUPT);
    /* A missing file is "not found", not corrupt. */
    path_in_tmp(bad, sizeof bad, "absent.dat");
    CHECK_EQ_I64(load_fresh(bad, &seal, 2), CTRD_ENOTFOUND);
    path_in_tmp(bad, sizeof bad, "bad.dat");
    free(edit);
    free(buf);
    unlink(bad);
    unlink(path);
}

/* A chain being written: its files, the snapshot first. */
struct chain {
    char paths[12][128];
    struct fs_seal seals[12];
    size_t n;
};

/* Saves cm as the chain's next file (a snapshot when it has none, else a
 * delta), checking cm_delta_bytes() against a delta's content. */
static void chain_save(const struct countmap *cm, struct chain *ch)
{
    char err[CTRD_ERR_LEN], name[32];
    snprintf(name, sizeof name, "chain-%zu", ch->n);
    path_in_tmp(ch->paths[ch->n], sizeof ch->paths[ch->n], name);
    enum cm_file_kind kind = ch->n ? CM_DELTA : CM_SNAPSHOT;
    uint64_t want = cm_delta_bytes(cm);
    int rc = cm_save(cm, kind, ch->paths[ch->n], &ch->seals[ch->n], err);
    if (rc != 0) {
        CHECK_FAIL_AT("cm_save: %s", err);
        return;
    }
    size_t len;
    unsigned char *file = testfs_read(ch->paths[ch->n], &len);
    if (kind == CM_DELTA)
        CHECK_EQ_U64(testfs_content_len(file, len), want);
    free(file);
    ch->n++;
}

/* Whether the chain, loaded newest file first into a new map, is want. */
static int chain_loads_as(const struct chain *ch, const struct countmap *want)
{
    char err[CTRD_ERR_LEN];
    struct countmap *got;
    if (cm_create(&got) != 0)
        return 0;
    int rc = 0;
    for (size_t i = ch->n; rc == 0 && i > 0; i--)
        rc = cm_load(got, ch->paths[i - 1], &ch->seals[i - 1], UINT32_MAX, err);
    if (rc != 0)
        CHECK_FAIL_AT("cm_load: %s", err);
    cm_mark_clean(got);
    int same = rc == 0 && maps_equal(want, got) && maps_equal(got, want);
    cm_free(got);
    return same;
}

/* n random adds over 300 ads at minutes around `minute`; one in 8 late
 * (up to 90 minutes back), a few at the ends of the minute range. */
static void add_random(struct countmap *cm, uint64_t *seed, uint32_t minute,
                       unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t r = *seed >> 16;
        uint64_t ad = (r % 300) * UINT64_C(0x9e3779b97f4a7c15);
        uint32_t m = minute + (uint32_t)(r >> 9) % 3;
        if ((r >> 12) % 8 == 0)
            m = minute - (uint32_t)((r >> 15) % 90);
        if ((r >> 22) % 500 == 0)
            m = (r >> 31) & 1 ? UINT32_MAX : 0;
        uint64_t impressions = 1 + (r >> 32) % 3;
        cm_add(cm, ad, (uint32_t)(r >> 40) % 40, m, impressions, (r >> 50) % 2,
               NULL);
    }
}

/* A snapshot and deltas, each after more adds (late ones among them),
 * load newest first as exactly the map that wrote them, at every length;
 * a delta holds only what changed (an unchanged map's is empty); a delta
 * written but never committed (cm_mark_clean not called: a failed
 * checkpoint) loses nothing: the next one covers its changes. */
static void test_delta_chain_exact(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    uint64_t seed = 7;
    struct chain ch = {.n = 0};
    add_random(cm, &seed, 1000, 20000);
    chain_save(cm, &ch);
    cm_mark_clean(cm);
    CHECK_EQ_U64(cm_delta_bytes(cm), CM_FILE_HEADER_BYTES);
    CHECK(chain_loads_as(&ch, cm));
    for (uint32_t t = 1; t <= 8; t++) {
        add_random(cm, &seed, 1000 + 30 * t, 3000);
        if (t == 4) { /* this delta fails to commit */
            struct chain failed = ch;
            chain_save(cm, &failed);
            add_random(cm, &seed, 1000 + 30 * t, 500);
        }
        chain_save(cm, &ch);
        cm_mark_clean(cm);
        if (!chain_loads_as(&ch, cm))
            CHECK_FAIL_AT("a chain of %zu files loads differently", ch.n);
    }
    /* A few adds make a small delta: only their buckets. */
    cm_add(cm, 5, 1, 2000, 1, 0, NULL);
    cm_add(cm, 5, 1, 2000, 1, 1, NULL);
    cm_add(cm, 6, 2, 900, 2, 0, NULL); /* late */
    CHECK_EQ_U64(cm_delta_bytes(cm),
                 CM_FILE_HEADER_BYTES + 2 * (CM_AD_HEADER_BYTES + 24));
    chain_save(cm, &ch);
    cm_mark_clean(cm);
    CHECK(chain_loads_as(&ch, cm));
    /* Without the newest delta: not the map (the test can fail). */
    ch.n--;
    CHECK(!chain_loads_as(&ch, cm));
    for (size_t i = 0; i <= ch.n; i++)
        unlink(ch.paths[i]);
    char failed_path[128];
    path_in_tmp(failed_path, sizeof failed_path, "chain-5");
    unlink(failed_path); /* the failed delta's name, reused: gone */
    cm_free(cm);
}

/* Sums per step of `step_minutes` (0: one sum) of what a scan delivers. */
struct rollup_sums {
    uint64_t step_minutes;
    uint64_t impressions[4 * 24 + 1], clicks[4 * 24 + 1];
};

static void add_rollup(void *ctx, const struct cm_bucket *b)
{
    struct rollup_sums *r = ctx;
    uint64_t i = r->step_minutes ? (b->minute - 1440) / r->step_minutes : 0;
    r->impressions[i] += b->impressions;
    r->clicks[i] += b->clicks;
}

/* Hour and day rollups give the same sums as the minute buckets over any
 * range, and an hourly series from CM_HOUR equals one summed from minutes. */
static void test_rollups_match_minutes(void)
{
    struct countmap *cm;
    CHECK_EQ_I64(cm_create(&cm), 0);
    uint64_t seed = 42;
    for (int i = 0; i < 20000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint32_t minute = 1440 + (uint32_t)((seed >> 20) % (3 * 1440));
        uint32_t term = (uint32_t)((seed >> 40) % 50);
        CHECK_EQ_I64(cm_add(cm, 9, term, minute, 3, (seed >> 60) & 1, NULL), 0);
    }
    for (int r = 0; r < 200; r++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t from = (seed >> 10) % (4 * 1440), len = (seed >> 40) % 3000;
        struct rollup_sums fine = {0}, coarse = {0};
        CHECK_EQ_I64(cm_ad_scan(cm, 9, from, from + len, CM_MINUTE, add_rollup,
                                &fine, NULL),
                     0);
        CHECK_EQ_I64(cm_ad_scan(cm, 9, from, from + len, CM_DAY, add_rollup,
                                &coarse, NULL),
                     0);
        CHECK_EQ_U64(coarse.impressions[0], fine.impressions[0]);
        CHECK_EQ_U64(coarse.clicks[0], fine.clicks[0]);
    }
    struct rollup_sums hourly_fine = {.step_minutes = 60};
    struct rollup_sums hourly = {.step_minutes = 60};
    CHECK_EQ_I64(cm_ad_scan(cm, 9, 1440, 4 * 1440, CM_MINUTE, add_rollup,
                            &hourly_fine, NULL),
                 0);
    CHECK_EQ_I64(
        cm_ad_scan(cm, 9, 1440, 4 * 1440, CM_HOUR, add_rollup, &hourly, NULL),
        0);
    for (int h = 0; h < 3 * 24; h++) {
        CHECK_EQ_U64(hourly.impressions[h], hourly_fine.impressions[h]);
        CHECK_EQ_U64(hourly.clicks[h], hourly_fine.clicks[h]);
    }
    CHECK(hourly.impressions[0] > 0);
    cm_free(cm);
}

/* What a process that saved fill_big()'s map reports: the hashes of one
 * key, unseeded and seeded, and the snapshot's seal. */
struct saved {
    uint64_t hash, slot_hash;
    struct fs_seal seal;
};

/* The child's side of test_slots_seeded_per_process(). */
static int save_big(const char *path)
{
    char err[CTRD_ERR_LEN];
    struct countmap *cm;
    struct fs_seal seal;
    if (cm_create(&cm) != 0)
        return 1;
    fill_big(cm);
    int rc = cm_save(cm, CM_SNAPSHOT, path, &seal, err);
    cm_free(cm);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu32 "\n", hash_u64(42),
           hash_slot_u64(42), seal.bytes, seal.crc);
    return 0;
}

/* Runs this binary afresh (exec, not fork: a fork keeps the seed) to save
 * fill_big()'s map at path. */
static struct saved save_in_new_process(const char *path)
{
    char self[256], cmd[512];
    struct saved s = {0};
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("/proc/self/exe");
        exit(1);
    }
    self[n] = 0;
    snprintf(cmd, sizeof cmd, "'%s' --save-big '%s'", self, path);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu32, &s.hash,
                     &s.slot_hash, &s.seal.bytes, &s.seal.crc) != 4)
        CHECK_FAIL_AT("%s: no report", cmd);
    if (p && pclose(p) != 0)
        CHECK_FAIL_AT("%s: failed", cmd);
    return s;
}

/* Two processes place the same keys in different slots (hash_slot_u64
 * differs, hash_u64 does not), so their snapshots of the same map hold
 * the ads and buckets in a different order; both load as that map. */
static void test_slots_seeded_per_process(void)
{
    char path_a[128], path_b[128], err[CTRD_ERR_LEN];
    path_in_tmp(path_a, sizeof path_a, "seed-a.dat");
    path_in_tmp(path_b, sizeof path_b, "seed-b.dat");
    struct saved a = save_in_new_process(path_a);
    struct saved b = save_in_new_process(path_b);
    CHECK_EQ_U64(a.hash, hash_u64(42));
    CHECK_EQ_U64(b.hash, hash_u64(42));
    CHECK(a.slot_hash != b.slot_hash);
    CHECK(a.slot_hash != hash_slot_u64(42));
    CHECK(b.slot_hash != hash_slot_u64(42));
    size_t len_a, len_b;
    unsigned char *file_a = testfs_read(path_a, &len_a);
    unsigned char *file_b = testfs_read(path_b, &len_b);
    CHECK_EQ_U64(len_a, len_b);
    CHECK(len_a == len_b && memcmp(file_a, file_b, len_a) != 0);
    struct countmap *want, *got_a, *got_b;
    CHECK_EQ_I64(cm_create(&want), 0);
    CHECK_EQ_I64(cm_create(&got_a), 0);
    CHECK_EQ_I64(cm_create(&got_b), 0);
    fill_big(want);
    CHECK_EQ_I64(cm_load(got_a, path_a, &a.seal, 17, err), 0);
    CHECK_EQ_I64(cm_load(got_b, path_b, &b.seal, 17, err), 0);
    CHECK(maps_equal(want, got_a) && maps_equal(got_a, want));
    CHECK(maps_equal(want, got_b) && maps_equal(got_b, want));
    cm_free(want);
    cm_free(got_a);
    cm_free(got_b);
    free(file_a);
    free(file_b);
    unlink(path_a);
    unlink(path_b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--save-big") == 0)
        return save_big(argv[2]);
    make_tmp_dir();
    RUN(test_add_accumulates);
    RUN(test_many_ads_and_sorted);
    RUN(test_scan_range);
    RUN(test_ads_empty);
    RUN(test_save_load_round_trip);
    RUN(test_damaged_files);
    RUN(test_delta_chain_exact);
    RUN(test_rollups_match_minutes);
    RUN(test_slots_seeded_per_process);
    rmdir(tmp_dir);
    return check_done();
}
