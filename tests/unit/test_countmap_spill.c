/* Unit tests of countmap's spill file: a map that spills under a tiny
 * budget (with late counts on old minutes that read groups back) reads
 * exactly as a map that never spills — every scan at every level and
 * range, every bucket, its snapshot and delta files byte for byte — and
 * keeps its resident bytes within the budget or its hot groups; a flipped
 * bit fails the reads of that group only, naming the offset; a spill that
 * cannot write leaves the map whole; a load with a budget spills as it
 * goes and loads the same counts.
 *
 * `test_countmap_spill --bench BUDGET_MIB FILE...` measures instead: it
 * loads a counts chain (newest file first; BUDGET_MIB 0: no spill file),
 * then replays its buckets in time order through cm_add, and prints the
 * times and the resident bytes. */
#include "check.h"
#include "countmap.h"
#include "testfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define N_ADS 120
#define N_TERMS 40
#define N_MINUTES (3 * 1440)

static char tmp_dir[64];

static void path_in_tmp(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", tmp_dir, name);
}

static uint64_t next_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* A map with a spill file in tmp_dir (load budget load_max). */
static struct countmap *spilling_map(uint64_t load_max)
{
    struct countmap *cm;
    char err[CTRD_ERR_LEN];
    if (cm_create(&cm) != 0 || cm_spill_open(cm, tmp_dir, load_max, err)) {
        fprintf(stderr, "spilling_map: %s\n", err);
        exit(1);
    }
    return cm;
}

/* The same count added to both maps. */
static void add_both(struct countmap *a, struct countmap *b, uint64_t ad,
                     uint32_t term, uint32_t minute, uint64_t imps,
                     uint64_t clicks)
{
    CHECK_EQ_I64(cm_add(a, ad, term, minute, imps, clicks, NULL), 0);
    CHECK_EQ_I64(cm_add(b, ad, term, minute, imps, clicks, NULL), 0);
}

/* A checkpoint of both maps: marked clean, then b spills to max_bytes. */
static void checkpoint_both(struct countmap *a, struct countmap *b,
                            uint64_t max_bytes)
{
    char err[CTRD_ERR_LEN];
    cm_mark_clean(a);
    cm_mark_clean(b);
    int rc = cm_spill(b, max_bytes, err);
    CHECK_EQ_I64(rc, 0);
    if (rc != 0)
        fprintf(stderr, "cm_spill: %s\n", err);
}

/* Counts in time order over three days, a checkpoint (and a spill) every
 * 90 minutes, and late counts on minutes up to a day old, which read
 * spilled groups back. */
static void fill_both(struct countmap *plain, struct countmap *spilled,
                      uint64_t max_bytes)
{
    uint64_t seed = 11;
    for (uint32_t minute = 0; minute < N_MINUTES; minute++) {
        for (int k = 0; k < 12; k++) {
            uint64_t ad = next_rand(&seed) % N_ADS;
            uint32_t term = (uint32_t)(next_rand(&seed) % N_TERMS);
            add_both(plain, spilled, ad, term, minute, 1 + k % 3, k % 2);
        }
        if (minute % 7 == 0 && minute >= 1440) {
            uint64_t ad = next_rand(&seed) % N_ADS;
            uint32_t late = minute - (uint32_t)(next_rand(&seed) % 1440);
            add_both(plain, spilled, ad, (uint32_t)(next_rand(&seed) % N_TERMS),
                     late, 1, 1);
        }
        if (minute % 90 == 89)
            checkpoint_both(plain, spilled, max_bytes);
    }
}

/* One ad's buckets as a scan gives them, sorted. */
struct dump {
    struct cm_bucket *b;
    size_t n, cap;
};

static void dump_one(void *ctx, const struct cm_bucket *b)
{
    struct dump *d = ctx;
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 256;
        d->b = realloc(d->b, d->cap * sizeof *d->b);
        if (!d->b)
            abort();
    }
    d->b[d->n++] = *b;
}

static int bucket_cmp(const void *pa, const void *pb)
{
    const struct cm_bucket *x = pa, *y = pb;
    if (x->minute != y->minute)
        return x->minute < y->minute ? -1 : 1;
    return (x->term_id > y->term_id) - (x->term_id < y->term_id);
}

static int dump_ad(const struct countmap *cm, uint64_t ad, uint64_t from,
                   uint64_t to, int level, struct dump *d, char *err)
{
    d->n = 0;
    int rc = cm_ad_scan(cm, ad, from, to, level, dump_one, d, err);
    if (d->n)
        qsort(d->b, d->n, sizeof *d->b, bucket_cmp);
    return rc;
}

/* Whether the scans of ad over [from, to) at level agree (both succeed). */
static int scans_equal(const struct countmap *want, const struct countmap *got,
                       uint64_t ad, uint64_t from, uint64_t to, int level)
{
    static struct dump a, b;
    char err[CTRD_ERR_LEN];
    if (dump_ad(want, ad, from, to, level, &a, err) != 0 ||
        dump_ad(got, ad, from, to, level, &b, err) != 0) {
        CHECK_FAIL_AT("scan of ad %" PRIu64 ": %s", ad, err);
        return 0;
    }
    return a.n == b.n && memcmp(a.b, b.b, a.n * sizeof *a.b) == 0;
}

/* Every ad, every level, the whole range and ranges that cut hours and
 * days at both ends; and every bucket by cm_get. */
static void check_reads_equal(const struct countmap *want,
                              const struct countmap *got)
{
    static const uint64_t ranges[][2] = {
        {0, UINT64_MAX},       {0, 1},     {59, 1501},
        {1439, 2 * 1440 + 61}, {700, 701}, {2000, N_MINUTES - 5}};
    char err[CTRD_ERR_LEN];
    uint64_t *ads_w, *ads_g;
    size_t n_w, n_g, mismatches = 0;
    CHECK_EQ_I64(cm_ads(want, &ads_w, &n_w), 0);
    CHECK_EQ_I64(cm_ads(got, &ads_g, &n_g), 0);
    CHECK(n_w == n_g && memcmp(ads_w, ads_g, n_w * sizeof *ads_w) == 0);
    CHECK_EQ_U64(cm_bucket_count(got), cm_bucket_count(want));
    for (size_t i = 0; i < n_w; i++) {
        for (int l = 0; l < CM_LEVELS; l++)
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++)
                mismatches += !scans_equal(want, got, ads_w[i], ranges[r][0],
                                           ranges[r][1], l);
        struct dump d = {NULL, 0, 0};
        dump_ad(want, ads_w[i], 0, UINT64_MAX, CM_MINUTE, &d, err);
        for (size_t k = 0; k < d.n; k++) {
            struct cm_bucket b;
            int rc =
                cm_get(got, ads_w[i], d.b[k].term_id, d.b[k].minute, &b, err);
            mismatches += rc != 0 || memcmp(&b, &d.b[k], sizeof b) != 0;
        }
        free(d.b);
    }
    CHECK_EQ_U64(mismatches, 0);
    free(ads_w);
    free(ads_g);
}

/* Whether the counts files of kind the two maps write are the same bytes
 * (the same process places slots alike, and a group read back keeps its
 * table as it was). */
static void check_files_equal(const struct countmap *want,
                              const struct countmap *got,
                              enum cm_file_kind kind)
{
    char path_w[128], path_g[128], err[CTRD_ERR_LEN];
    struct fs_seal seal_w, seal_g;
    path_in_tmp(path_w, sizeof path_w, "want.counts");
    path_in_tmp(path_g, sizeof path_g, "got.counts");
    CHECK_EQ_I64(cm_save(want, kind, path_w, &seal_w, err), 0);
    CHECK_EQ_I64(cm_save(got, kind, path_g, &seal_g, err), 0);
    size_t len_w, len_g;
    unsigned char *file_w = testfs_read(path_w, &len_w);
    unsigned char *file_g = testfs_read(path_g, &len_g);
    CHECK_EQ_U64(len_g, len_w);
    CHECK(len_w == len_g && memcmp(file_w, file_g, len_w) == 0);
    free(file_w);
    free(file_g);
    unlink(path_w);
    unlink(path_g);
}

static void test_spilled_reads_as_resident(void)
{
    struct countmap *plain, *spilled;
    CHECK_EQ_I64(cm_create(&plain), 0);
    spilled = spilling_map(0);
    uint64_t budget = 64 * 1024;
    fill_both(plain, spilled, budget);
    /* Changes since the last checkpoint: the delta has them. */
    add_both(plain, spilled, 3, 1, 10, 5, 2);
    add_both(plain, spilled, 4, 2, N_MINUTES - 1, 1, 0);
    struct cm_spill_stats st;
    cm_spill_stats(spilled, &st);
    CHECK(st.spilled_groups > 1000);
    /* Groups read back keep their blocks (ad 3's minute 10 was just read
     * back for the count above). */
    CHECK(st.file_bytes > st.spilled_bytes && st.spilled_bytes > 0);
    CHECK(st.resident_bytes < cm_resident_bytes(plain) / 4);
    CHECK_EQ_U64(cm_delta_bytes(spilled), cm_delta_bytes(plain));
    check_reads_equal(plain, spilled);
    check_files_equal(plain, spilled, CM_SNAPSHOT);
    check_files_equal(plain, spilled, CM_DELTA);
    int fd = -1;
    CHECK_EQ_I64(testfs_unnamed_files(tmp_dir, &fd), 1);
    cm_free(plain);
    cm_free(spilled);
    CHECK_EQ_I64(testfs_unnamed_files(tmp_dir, &fd),
                 0);           /* it went with the map */
    DIR *d = opendir(tmp_dir); /* it had no name: the directory is empty */
    struct dirent *de;
    int names = 0;
    while (d && (de = readdir(d)) != NULL)
        names += de->d_name[0] != '.';
    CHECK(d && names == 0);
    if (d)
        closedir(d);
}

static void test_resident_within_budget(void)
{
    struct countmap *plain, *spilled;
    char err[CTRD_ERR_LEN];
    CHECK_EQ_I64(cm_create(&plain), 0);
    spilled = spilling_map(0);
    fill_both(plain, spilled, UINT64_MAX); /* no spill while filling */
    cm_mark_clean(spilled);
    uint64_t all = cm_resident_bytes(spilled);
    CHECK_EQ_U64(all, cm_resident_bytes(plain));
    /* Budgets from above what is held down to nothing: each is met, or
     * nothing cold is left, which is what spilling everything leaves (the
     * floor: the hot groups and the index of the groups). */
    CHECK_EQ_I64(cm_spill(spilled, all, err), 0);
    CHECK_EQ_U64(cm_resident_bytes(spilled), all);
    uint64_t budgets[] = {all / 2, all / 3, all / 5, all / 20, 0}, now[5];
    for (size_t i = 0; i < 5; i++) {
        CHECK_EQ_I64(cm_spill(spilled, budgets[i], err), 0);
        now[i] = cm_resident_bytes(spilled);
    }
    uint64_t floor_bytes = now[4];
    CHECK(floor_bytes > 0 && floor_bytes < all / 3);
    for (size_t i = 0; i < 4; i++) {
        CHECK(i == 0 || now[i] <= now[i - 1]);
        if (budgets[i] >= floor_bytes)
            CHECK(now[i] <= budgets[i]);
        else
            CHECK_EQ_U64(now[i], floor_bytes);
    }
    check_reads_equal(plain, spilled);
    cm_free(plain);
    cm_free(spilled);
}

/* The minute groups of ad 1 spill first (the oldest, alone), so the
 * spill file starts with ad 1's minute 0: a bit flipped there fails the
 * reads of that group alone. */
static void test_flipped_bit_is_corrupt(void)
{
    struct countmap *plain, *spilled;
    char err[CTRD_ERR_LEN];
    CHECK_EQ_I64(cm_create(&plain), 0);
    spilled = spilling_map(0);
    for (uint32_t minute = 0; minute < 10; minute++)
        add_both(plain, spilled, 1, minute % 3, minute, 2, 1);
    checkpoint_both(plain, spilled, 0);
    for (uint32_t minute = 0; minute < 10; minute++)
        add_both(plain, spilled, 2, minute % 3, minute, 4, 1);
    checkpoint_both(plain, spilled, 0);
    int map_fd = -1;
    CHECK_EQ_I64(testfs_unnamed_files(tmp_dir, &map_fd), 1);
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", map_fd);
    int fd = open(link, O_RDWR);
    unsigned char byte;
    CHECK(fd >= 0 && pread(fd, &byte, 1, 30) == 1);
    byte ^= 0x10;
    CHECK(pwrite(fd, &byte, 1, 30) == 1);
    close(fd);

    static struct dump d;
    struct cm_bucket b;
    const char *want = "counts.spill: offset 0: checksum mismatch";
    err[0] = '\0';
    CHECK_EQ_I64(dump_ad(spilled, 1, 0, 60, CM_MINUTE, &d, err), CTRD_ECORRUPT);
    CHECK_EQ_STR(err, want);
    err[0] = '\0';
    CHECK_EQ_I64(cm_get(spilled, 1, 0, 0, &b, err), CTRD_ECORRUPT);
    CHECK_EQ_STR(err, want);
    /* A count for that minute cannot read its group back: no count
     * changes, and the map goes on. */
    err[0] = '\0';
    CHECK_EQ_I64(cm_add(spilled, 1, 0, 0, 1, 0, err), CTRD_ECORRUPT);
    CHECK_EQ_STR(err, want);
    char path[128];
    struct fs_seal seal;
    path_in_tmp(path, sizeof path, "snapshot.counts");
    CHECK_EQ_I64(cm_save(spilled, CM_SNAPSHOT, path, &seal, err),
                 CTRD_ECORRUPT);
    /* The rest reads as before. */
    CHECK(scans_equal(plain, spilled, 1, 1, 60, CM_MINUTE));
    CHECK(scans_equal(plain, spilled, 2, 0, 60, CM_MINUTE));
    CHECK(scans_equal(plain, spilled, 2, 0, UINT64_MAX, CM_DAY));
    CHECK_EQ_I64(cm_get(spilled, 2, 0, 0, &b, err), 0);
    CHECK_EQ_U64(b.impressions, 4);
    add_both(plain, spilled, 2, 0, 0, 1, 0);
    add_both(plain, spilled, 1, 1, 1, 1, 0);
    CHECK(scans_equal(plain, spilled, 2, 0, 60, CM_MINUTE));
    CHECK(scans_equal(plain, spilled, 1, 1, 60, CM_MINUTE));
    cm_free(plain);
    cm_free(spilled);
}

static void test_write_failure_keeps_counts(void)
{
    struct countmap *plain, *spilled;
    char err[CTRD_ERR_LEN];
    CHECK_EQ_I64(cm_create(&plain), 0);
    spilled = spilling_map(0);
    fill_both(plain, spilled, UINT64_MAX);
    cm_mark_clean(plain);
    cm_mark_clean(spilled);
    uint64_t all = cm_resident_bytes(spilled);
    testfs_limit_file_size(16 * 1024);
    int rc = cm_spill(spilled, 0, err);
    testfs_limit_file_size(RLIM_INFINITY);
    CHECK_EQ_I64(rc, CTRD_EWRITEFAIL);
    CHECK(strstr(err, "counts.spill: offset ") == err);
    struct cm_spill_stats st;
    cm_spill_stats(spilled, &st);
    CHECK(st.spilled_groups > 0 && st.file_bytes <= 16 * 1024);
    CHECK(st.resident_bytes < all);
    check_reads_equal(plain, spilled);
    /* Counting goes on, and the next spill (the disk has room again)
     * finishes the work. */
    add_both(plain, spilled, 5, 5, 100, 3, 1);
    cm_mark_clean(plain);
    cm_mark_clean(spilled);
    CHECK_EQ_I64(cm_spill(spilled, 0, err), 0);
    check_reads_equal(plain, spilled);
    cm_free(plain);
    cm_free(spilled);
}

/* Saves cm's changes (or all of it) as file i of a chain. */
static struct fs_seal save_chain_file(struct countmap *cm, int i,
                                      enum cm_file_kind kind, char *path)
{
    char err[CTRD_ERR_LEN], name[32];
    struct fs_seal seal;
    snprintf(name, sizeof name, "chain-%d", i);
    path_in_tmp(path, 128, name);
    CHECK_EQ_I64(cm_save(cm, kind, path, &seal, err), 0);
    cm_mark_clean(cm);
    return seal;
}

static void test_load_spills_as_it_goes(void)
{
    struct countmap *plain, *loaded;
    char err[CTRD_ERR_LEN], paths[3][128];
    struct fs_seal seals[3];
    CHECK_EQ_I64(cm_create(&plain), 0);
    uint64_t seed = 5;
    for (uint32_t minute = 0; minute < N_MINUTES; minute++)
        for (int k = 0; k < 12; k++)
            CHECK_EQ_I64(cm_add(plain, next_rand(&seed) % N_ADS,
                                (uint32_t)(next_rand(&seed) % N_TERMS), minute,
                                2, 1, NULL),
                         0);
    seals[0] = save_chain_file(plain, 0, CM_SNAPSHOT, paths[0]);
    /* Two deltas: new minutes, and late counts on old ones. */
    for (int d = 1; d < 3; d++) {
        for (int k = 0; k < 400; k++)
            CHECK_EQ_I64(cm_add(plain, next_rand(&seed) % N_ADS,
                                (uint32_t)(next_rand(&seed) % N_TERMS),
                                (uint32_t)(next_rand(&seed) % (N_MINUTES + 60)),
                                1, 0, NULL),
                         0);
        seals[d] = save_chain_file(plain, d, CM_DELTA, paths[d]);
    }
    uint64_t all = cm_resident_bytes(plain), budget = all / 3;
    loaded = spilling_map(budget);
    for (int i = 2; i >= 0; i--)
        CHECK_EQ_I64(cm_load(loaded, paths[i], &seals[i], UINT32_MAX, err), 0);
    cm_mark_clean(loaded);
    check_reads_equal(plain, loaded);
    /* It spilled as it went: at most a quarter over the budget, or at
     * the floor (all it could spill, spilled). */
    struct cm_spill_stats st;
    cm_spill_stats(loaded, &st);
    CHECK(st.spilled_groups > 0);
    CHECK_EQ_I64(cm_spill(loaded, 0, err), 0);
    uint64_t floor_bytes = cm_resident_bytes(loaded);
    CHECK(st.resident_bytes <= budget + budget / 4 ||
          st.resident_bytes == floor_bytes);
    check_reads_equal(plain, loaded);
    for (int i = 0; i < 3; i++)
        unlink(paths[i]);
    cm_free(plain);
    cm_free(loaded);
}

/* ---- bench: `test_countmap_spill --bench BUDGET_MIB FILE...` ---- */

/* A bucket of some ad, for replaying counts in time order. */
struct ad_bucket {
    uint64_t ad;
    struct cm_bucket b;
};

struct gather {
    struct ad_bucket *all;
    size_t n;
    uint64_t ad;
};

static void gather_one(void *ctx, const struct cm_bucket *b)
{
    struct gather *g = ctx;
    g->all[g->n++] = (struct ad_bucket){g->ad, *b};
}

static int ad_bucket_cmp(const void *pa, const void *pb)
{
    const struct ad_bucket *x = pa, *y = pb;
    if (x->b.minute != y->b.minute)
        return x->b.minute < y->b.minute ? -1 : 1;
    return (x->ad > y->ad) - (x->ad < y->ad);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void print_map(const char *what, const struct countmap *cm)
{
    struct cm_spill_stats st;
    struct rusage ru;
    long size = 0, pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &pages) != 2)
        pages = 0;
    if (f)
        fclose(f);
    cm_spill_stats(cm, &st);
    getrusage(RUSAGE_SELF, &ru);
    printf("%s: resident %.1f MiB, spilled %" PRIu64
           " groups (%.1f MiB), spill file %.1f MiB, process RSS %.1f MiB "
           "(peak %.1f MiB)\n",
           what, (double)st.resident_bytes / 1048576.0, st.spilled_groups,
           (double)st.spilled_bytes / 1048576.0,
           (double)st.file_bytes / 1048576.0,
           (double)pages * (double)sysconf(_SC_PAGESIZE) / 1048576.0,
           (double)ru.ru_maxrss / 1024.0);
}

/* A map, spilling to budget bytes when budget is not 0. */
static struct countmap *bench_map(uint64_t budget)
{
    struct countmap *cm;
    if (budget)
        return spilling_map(budget);
    if (cm_create(&cm) != 0)
        exit(1);
    return cm;
}

/* Loads a counts chain (newest file first) with the budget, then replays
 * its buckets in time order through cm_add into a new map, with a
 * checkpoint (cm_mark_clean, cm_spill) every twentieth of them. */
static int bench(uint64_t budget, int n_files, char **files)
{
    char err[CTRD_ERR_LEN];
    struct countmap *cm = bench_map(budget);
    double t0 = now_s();
    for (int i = 0; i < n_files; i++) {
        if (cm_load(cm, files[i], NULL, UINT32_MAX, err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    cm_mark_clean(cm);
    printf("load: %" PRIu64 " buckets in %.2f s\n", cm_bucket_count(cm),
           now_s() - t0);
    print_map("after load", cm);
    uint64_t *ads;
    size_t n_ads;
    struct gather g = {malloc(cm_bucket_count(cm) * sizeof *g.all), 0, 0};
    if (!g.all || cm_ads(cm, &ads, &n_ads) != 0)
        return 1;
    for (size_t i = 0; i < n_ads; i++) {
        g.ad = ads[i];
        if (cm_ad_scan(cm, ads[i], 0, UINT64_MAX, CM_MINUTE, gather_one, &g,
                       err) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    free(ads);
    cm_free(cm);
    qsort(g.all, g.n, sizeof *g.all, ad_bucket_cmp);

    cm = bench_map(budget);
    double spill_s = 0;
    t0 = now_s();
    for (size_t i = 0; i < g.n; i++) {
        const struct ad_bucket *a = &g.all[i];
        if (cm_add(cm, a->ad, a->b.term_id, a->b.minute, a->b.impressions,
                   a->b.clicks, NULL) != 0)
            return 1;
        if (budget && (i + 1) % (g.n / 20 + 1) == 0) {
            double t = now_s();
            cm_mark_clean(cm);
            if (cm_spill(cm, budget, err) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            spill_s += now_s() - t;
        }
    }
    double add_s = now_s() - t0;
    printf("cm_add: %zu in %.2f s, %.2f M/s (of which cm_spill %.2f s)\n", g.n,
           add_s, (double)g.n / add_s / 1e6, spill_s);
    print_map("after adds", cm);
    cm_free(cm);
    free(g.all);
    return 0;
}

int main(int argc, char **argv)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-cmspill-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (argc >= 4 && strcmp(argv[1], "--bench") == 0) {
        int rc = bench(strtoull(argv[2], NULL, 10) << 20, argc - 3, argv + 3);
        testfs_remove_tree(tmp_dir);
        return rc;
    }
    RUN(test_spilled_reads_as_resident);
    RUN(test_resident_within_budget);
    RUN(test_flipped_bit_is_corrupt);
    RUN(test_write_failure_keeps_counts);
    RUN(test_load_spills_as_it_goes);
    testfs_remove_tree(tmp_dir);
    return check_done();
}
