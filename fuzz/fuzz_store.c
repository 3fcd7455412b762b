/* fuzz_store: libFuzzer target for the loaders that meet a data
 * directory's bytes — what a damaged disk or a hostile file hands them.
 * The first input byte picks what the rest is:
 *   0  a run file's content, sealed with valid checksums (so the layout
 *      checks behind them are reached) and loaded as a partition's run;
 *      accepted, every lookup must stay in bounds and find what it finds
 *      consistently;
 *   1  a marks file's content (sealed), loaded after a small valid run;
 *      accepted, its pairs name queries of that run that showed the ad;
 *   2  a counts snapshot's content (sealed), loaded with an 8-term
 *      dictionary: accepted, clicks <= impressions and terms < 8;
 *   3  terms.dat as it is, opened at its whole length: accepted, the ids
 *      are dense and every term reads back;
 *   4  MANIFEST facts, framed with a valid checksum, opened read-only and
 *      for verification in a directory holding no other file;
 *   5  a write-ahead log segment after a valid segment header, checked
 *      and opened;
 *   6  a log written by wal_append (the input split into records at every
 *      0xff byte) whose first two bytes pick a byte to flip or a length to
 *      cut: the records replayed are always a prefix of those written.
 * Every rejection must be CTRD_ECORRUPT (or CTRD_ENOTFOUND for a file a
 * MANIFEST names) with the file named; nothing may crash.
 *   make fuzz && ./build-fuzz/fuzz_store -max_total_time=120 -max_len=4096 */
#include "fuzz.h"

#include "countmap.h"
#include "crc32c.h"
#include "datadir.h"
#include "engine.h"
#include "fsutil.h"
#include "querystore.h"
#include "terms.h"
#include "wal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOUR INT64_C(489946)

static char dir[64];

static void path_of(char *path, const char *name)
{
    snprintf(path, FS_PATH_MAX, "%s/%s", dir, name);
}

static struct fs_seal write_sealed(const char *name, const uint8_t *data,
                                   size_t size)
{
    char path[FS_PATH_MAX], err[CTRD_ERR_LEN];
    static struct fs_writer w;
    struct fs_seal seal;
    path_of(path, name);
    REQUIRE(fs_writer_open(&w, path, FS_SEALED, err) == 0);
    fs_writer_put(&w, data, size);
    REQUIRE(fs_writer_seal(&w, &seal, err) == 0);
    return seal;
}

static void write_raw(const char *name, const uint8_t *data, size_t size)
{
    char path[FS_PATH_MAX];
    path_of(path, name);
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(data, 1, size, f) == size && fclose(f) == 0);
}

static void rejected_well(int rc, const char *err, const char *name)
{
    REQUIRE(rc == CTRD_ECORRUPT);
    REQUIRE(strstr(err, name) != NULL);
}

/* Every query the run's keys name is found, with at most 32 ads. */
static void probe_run(struct qs *qs, const uint8_t *data, size_t size)
{
    struct qs_query q;
    for (size_t off = 0; off + 8 <= size; off += 8) {
        uint64_t key;
        memcpy(&key, data + off, 8);
        if (qs_get(qs, 0, key, &q) == 0)
            REQUIRE(q.query_id == key && q.n_ads <= REC_ADS_MAX &&
                    q.time_ms / QS_PARTITION_MS == HOUR);
    }
}

static void fuzz_run(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN];
    struct fs_seal seal = write_sealed("q1-1-0.run", data, size);
    struct qs *qs;
    REQUIRE(qs_open(dir, 1, INT64_MIN, &qs, err) == 0);
    int rc = qs_load(qs, "run", HOUR, "q1-1-0.run", &seal, err);
    if (rc == 0)
        probe_run(qs, data, size);
    else
        rejected_well(rc, err, "q1-1-0.run");
    qs_close(qs);
}

/* A valid run of queries 1..3 (ads 10, 20..21, 30..32) of HOUR. */
static struct fs_seal small_run(void)
{
    char err[CTRD_ERR_LEN];
    struct qs *qs;
    REQUIRE(qs_open(dir, 1, INT64_MIN, &qs, err) == 0);
    for (uint64_t id = 1; id <= 3; id++) {
        struct rec_query q = {.query_id = id,
                              .time_ms = HOUR * QS_PARTITION_MS + 5,
                              .n_ads = (uint32_t)id};
        for (uint32_t k = 0; k < id; k++)
            q.ads[k] = id * 10 + k;
        REQUIRE(qs_put(qs, 0, &q, 0) == 0);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    REQUIRE(qs_checkpoint(qs, 1, INT64_MIN, m, err) == 0);
    fclose(m);
    qs_close(qs);
    unsigned long long bytes;
    unsigned crc;
    REQUIRE(sscanf(text, "run %*d q489946-1-0.run %llu %x", &bytes, &crc) == 2);
    free(text);
    return (struct fs_seal){bytes, crc};
}

static void fuzz_marks(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN];
    struct fs_seal run = small_run();
    struct fs_seal seal = write_sealed("m1-1-1.marks", data, size);
    struct qs *qs;
    REQUIRE(qs_open(dir, 1, INT64_MIN, &qs, err) == 0);
    REQUIRE(qs_load(qs, "run", HOUR, "q489946-1-0.run", &run, err) == 0);
    int rc = qs_load(qs, "marks", HOUR, "m1-1-1.marks", &seal, err);
    if (rc == 0) {
        for (size_t off = 0; off + 16 <= size; off += 16) {
            uint64_t pair[2];
            memcpy(pair, data + off, 16);
            REQUIRE(pair[0] >= 1 && pair[0] <= 3 && pair[1] / 10 == pair[0] &&
                    pair[1] % 10 < pair[0]);
        }
    } else {
        rejected_well(rc, err, "m1-1-1.marks");
    }
    qs_close(qs);
}

struct bucket_check {
    int bad;
};

static void check_bucket(void *ctx, const struct cm_bucket *b)
{
    struct bucket_check *c = ctx;
    c->bad |= b->term_id >= 8;
}

static void fuzz_counts(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN], path[FS_PATH_MAX];
    struct fs_seal seal = write_sealed("counts-1.dat", data, size);
    struct countmap *cm;
    REQUIRE(cm_create(&cm) == 0);
    path_of(path, "counts-1.dat");
    int rc = cm_load(cm, path, &seal, 8, err);
    if (rc == 0) {
        uint64_t *ads;
        size_t n;
        struct bucket_check c = {0};
        REQUIRE(cm_ads(cm, &ads, &n) == 0);
        for (size_t i = 0; i < n; i++)
            REQUIRE(cm_ad_scan(cm, ads[i], 0, UINT64_MAX, CM_DAY, check_bucket,
                               &c, err) == 0);
        REQUIRE(!c.bad);
        free(ads);
    } else {
        rejected_well(rc, err, "counts-1.dat");
    }
    cm_free(cm);
}

static void fuzz_terms(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN];
    write_raw("terms.dat", data, size);
    struct terms *t;
    int rc = terms_open(dir, size, &t, err);
    if (rc == 0) {
        uint32_t n = terms_count(t), len, id;
        for (uint32_t i = 0; i < n; i++) {
            const char *s = terms_get(t, i, &len);
            REQUIRE(terms_find(t, s, len, &id) == 0 && id == i);
        }
        terms_close(t);
    } else {
        rejected_well(rc, err, "terms.dat");
    }
}

static void clear_dir(void)
{
    static const char *const names[] = {"MANIFEST", "LOCK", "terms.dat",
                                        "wal/0000000000000000.log"};
    char path[FS_PATH_MAX];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        path_of(path, names[i]);
        unlink(path);
    }
}

static void no_report(void *ctx, const char *problem)
{
    (void)ctx;
    REQUIRE(strstr(problem, dir) != NULL);
}

static void fuzz_manifest(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN];
    char *facts = malloc(size + 1);
    memcpy(facts, data, size);
    facts[size] = '\n';
    clear_dir();
    REQUIRE(datadir_write_manifest(dir, facts, size + 1, err) == 0);
    free(facts);
    struct engine_config cfg = {.data_dir = dir,
                                .n_workers = 1,
                                .readonly = 1,
                                .join_window_ms = 3600000,
                                .retention_ms = 7200000};
    struct engine *e = NULL;
    int rc = engine_open(&cfg, &e, err);
    REQUIRE(rc == 0 || rc == CTRD_ECORRUPT || rc == CTRD_ENOTFOUND);
    engine_close(rc == 0 ? e : NULL);
    cfg.readonly = 0;
    cfg.report = no_report;
    rc = engine_open(&cfg, &e, err);
    REQUIRE(rc == 0 || rc == CTRD_ECORRUPT || rc == CTRD_ENOTFOUND);
    engine_close(rc == 0 ? e : NULL);
}

static int count_record(void *ctx, const struct wal_record *r)
{
    (void)r;
    (*(unsigned *)ctx)++;
    return 0;
}

static void wal_line(void *ctx, const char *line)
{
    (void)ctx;
    REQUIRE(strstr(line, "wal") != NULL);
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN], note[CTRD_ERR_LEN];
    clear_dir();
    unsigned char h[WAL_SEG_HEADER_BYTES] = "CTRDWAL2";
    uint32_t crc = crc32c(0, h, WAL_SEG_CRC);
    memcpy(h + WAL_SEG_CRC, &crc, 4);
    uint8_t *seg = malloc(sizeof h + size);
    memcpy(seg, h, sizeof h);
    memcpy(seg + sizeof h, data, size);
    write_raw("wal/0000000000000000.log", seg, sizeof h + size);
    free(seg);
    uint64_t from = WAL_SEG_HEADER_BYTES;
    int rc = wal_check(dir, &from, wal_line, NULL, err);
    REQUIRE(rc == 0 || rc == CTRD_ECORRUPT);
    unsigned n = 0;
    struct wal *w;
    int open_rc = wal_open(dir, &from, count_record, &n, note, &w, err);
    REQUIRE(open_rc == 0 || open_rc == CTRD_ECORRUPT);
    REQUIRE((open_rc == 0) == (rc == 0));
    if (open_rc == 0) {
        REQUIRE(wal_position(w) <= sizeof h + size);
        wal_close(w);
    }
}

struct prefix {
    const uint8_t *data;
    size_t size, at; /* the records written, and how far replay got */
    int bad;
};

static int check_prefix(void *ctx, const struct wal_record *r)
{
    struct prefix *p = ctx;
    const uint8_t *end = memchr(p->data + p->at, 0xff, p->size - p->at);
    size_t len = end ? (size_t)(end - p->data) - p->at : p->size - p->at;
    p->bad |= r->len != len || memcmp(r->payload, p->data + p->at, len) != 0;
    p->at += len + 1;
    return 0;
}

static void fuzz_log(const uint8_t *data, size_t size)
{
    char err[CTRD_ERR_LEN], note[CTRD_ERR_LEN], path[FS_PATH_MAX];
    if (size < 2)
        return;
    unsigned pick = (unsigned)data[0] << 8 | data[1];
    data += 2;
    size -= 2;
    clear_dir();
    struct wal *w;
    REQUIRE(wal_open(dir, NULL, NULL, NULL, note, &w, err) == 0);
    uint64_t from = wal_position(w);
    for (size_t at = 0; at <= size;) {
        const uint8_t *end = memchr(data + at, 0xff, size - at);
        size_t len = end ? (size_t)(end - data) - at : size - at;
        struct wal_record r = {0,  0, 0, 1, 0, 0, 0, (const char *)data + at,
                               len};
        REQUIRE(wal_append(w, &r, err) == 0);
        if (pick & 1)
            REQUIRE(wal_sync(w, err) == 0);
        at += len + 1;
    }
    uint64_t end = wal_position(w);
    wal_close(w);
    path_of(path, "wal/0000000000000000.log");
    size_t off = WAL_SEG_HEADER_BYTES + (pick >> 2) % (end - from);
    if (pick & 2) {
        REQUIRE(truncate(path, (off_t)off) == 0);
    } else {
        FILE *f = fopen(path, "r+b");
        REQUIRE(f && fseek(f, (long)off, SEEK_SET) == 0);
        int c = fgetc(f);
        REQUIRE(fseek(f, (long)off, SEEK_SET) == 0 &&
                fputc(c ^ 0x10, f) != EOF);
        REQUIRE(fclose(f) == 0);
    }
    struct prefix p = {data, size, 0, 0};
    int rc = wal_open(dir, &from, check_prefix, &p, note, &w, err);
    REQUIRE(rc == 0 || rc == CTRD_ECORRUPT);
    REQUIRE(!p.bad);
    if (rc == 0)
        wal_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        char path[FS_PATH_MAX];
        /* tmpfs: fsync costs nothing there */
        snprintf(dir, sizeof dir, "/dev/shm/ctrd-fuzz-store-XXXXXX");
        REQUIRE(mkdtemp(dir) != NULL);
        path_of(path, "wal");
        REQUIRE(fs_mkdirs(path, NULL) == 0);
    }
    if (size < 1 || size > 65536)
        return 0;
    void (*const kinds[])(const uint8_t *, size_t) = {
        fuzz_run,      fuzz_marks,   fuzz_counts, fuzz_terms,
        fuzz_manifest, fuzz_segment, fuzz_log};
    kinds[data[0] % (sizeof kinds / sizeof *kinds)](data + 1, size - 1);
    return 0;
}
