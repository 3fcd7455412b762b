/* Unit tests of fsutil's sealed files: the trailer's byte table, round
 * trips of every size around the block size, every flipped bit and every
 * cut found (with the file and offset named), the size and fingerprint a
 * MANIFEST recorded checked, a missing file told apart; and of its maps:
 * a read maps about its page, not a whole large folio, and releasing a
 * mapping drops its pages from the RSS while other threads read the same
 * bytes through it. */
#include "check.h"
#include "crc32c.h"
#include "fsutil.h"
#include "testfs.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static char tmp_dir[64];

static void path_of(char *path, size_t len, const char *name)
{
    snprintf(path, len, "%s/%s", tmp_dir, name);
}

/* Writes n bytes of a pattern as a sealed file; returns its seal. */
static struct fs_seal write_pattern(const char *path, size_t n,
                                    unsigned char *content)
{
    char err[CTRD_ERR_LEN];
    struct fs_writer *w = malloc(sizeof *w);
    struct fs_seal seal = {0, 0};
    for (size_t i = 0; i < n; i++)
        content[i] = (unsigned char)(i * 7 + i / 251);
    CHECK_EQ_I64(fs_writer_open(w, path, FS_SEALED, err), 0);
    /* In uneven pieces, one larger than the writer's buffer. */
    size_t at = 0, piece = 1;
    while (at < n) {
        size_t take = n - at < piece ? n - at : piece;
        fs_writer_put(w, content + at, take);
        at += take;
        piece = piece * 3 + 1 < 200000 ? piece * 3 + 1 : 1;
    }
    CHECK_EQ_I64(fs_writer_seal(w, &seal, err), 0);
    free(w);
    return seal;
}

static int map_rc(const char *path, const struct fs_seal *expect, char *err)
{
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, expect, &map, &map_len, &len, err);
    if (rc == 0)
        fs_unmap(map, map_len);
    return rc;
}

static void test_trailer_format(void)
{
    char path[128];
    path_of(path, sizeof path, "format");
    size_t n = FS_BLOCK_BYTES + 10;
    unsigned char *content = malloc(n);
    struct fs_seal seal = write_pattern(path, n, content);
    size_t len;
    unsigned char *file = testfs_read(path, &len);
    size_t table = n, footer = n + 2 * 4;
    CHECK_EQ_U64(len, footer + 24);
    CHECK_EQ_U64(seal.bytes, len);
    CHECK(memcmp(file, content, n) == 0);
    uint32_t u32;
    uint64_t u64;
    memcpy(&u32, file + table, 4);
    CHECK_EQ_U64(u32, crc32c(0, content, FS_BLOCK_BYTES));
    memcpy(&u32, file + table + 4, 4);
    CHECK_EQ_U64(u32, crc32c(0, content + FS_BLOCK_BYTES, 10));
    memcpy(&u64, file + footer, 8);
    CHECK_EQ_U64(u64, n);
    memcpy(&u32, file + footer + 8, 4);
    CHECK_EQ_U64(u32, 65536);
    memcpy(&u32, file + footer + 12, 4);
    CHECK_EQ_U64(u32, crc32c(crc32c(0, file + table, 8), file + footer, 12));
    CHECK_EQ_U64(u32, seal.crc);
    CHECK(memcmp(file + footer + 16, "CTRDSUM1", 8) == 0);
    free(file);
    free(content);
}

static void test_round_trips(void)
{
    static const size_t sizes[] = {0,     1,     8,         65535,
                                   65536, 65537, 3 * 65536, 200001};
    char path[128], err[CTRD_ERR_LEN];
    path_of(path, sizeof path, "sizes");
    unsigned char *content = malloc(200001);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct fs_seal seal = write_pattern(path, sizes[i], content);
        void *map;
        size_t map_len, len;
        int rc = fs_map_sealed(path, &seal, &map, &map_len, &len, err);
        CHECK_EQ_I64(rc, 0);
        if (rc != 0)
            continue;
        CHECK_EQ_U64(len, sizes[i]);
        CHECK(len == 0 || memcmp(map, content, len) == 0);
        fs_unmap(map, map_len);
    }
    free(content);
}

static void test_damage_found(void)
{
    char path[128], err[CTRD_ERR_LEN];
    path_of(path, sizeof path, "damage");
    size_t n = 2 * FS_BLOCK_BYTES + 100;
    unsigned char *content = malloc(n);
    struct fs_seal seal = write_pattern(path, n, content);
    size_t len;
    unsigned char *good = testfs_read(path, &len);
    unsigned char *bad = malloc(len + 1);
    unsigned missed = 0, unnamed = 0;
    for (size_t at = 0; at < len; at += (at < n ? 97 : 1)) {
        memcpy(bad, good, len);
        bad[at] ^= (unsigned char)(1u << (at % 8));
        testfs_write(path, bad, len);
        struct fs_seal own = testfs_seal_of(bad, len);
        missed += map_rc(path, &own, err) != CTRD_ECORRUPT;
        unnamed += strstr(err, path) == NULL;
        missed += map_rc(path, &seal, err) != CTRD_ECORRUPT;
    }
    CHECK_EQ_U64(missed, 0);
    CHECK_EQ_U64(unnamed, 0);
    /* A flip in block 1 is named by its byte range. */
    memcpy(bad, good, len);
    bad[FS_BLOCK_BYTES + 5] ^= 1;
    testfs_write(path, bad, len);
    struct fs_seal own = testfs_seal_of(bad, len);
    CHECK_EQ_I64(map_rc(path, &own, err), CTRD_ECORRUPT);
    CHECK(strstr(err, "bytes 65536..131071") != NULL);
    /* Every cut, and a byte added. */
    for (size_t cut = 0; cut < len; cut += (cut < n - 64 ? 4099 : 1)) {
        testfs_write(path, good, cut);
        struct fs_seal cut_seal = {cut, seal.crc};
        missed += map_rc(path, &cut_seal, err) != CTRD_ECORRUPT;
        missed += map_rc(path, NULL, err) != CTRD_ECORRUPT;
    }
    memcpy(bad, good, len);
    bad[len] = 0;
    testfs_write(path, bad, len + 1);
    missed += map_rc(path, NULL, err) != CTRD_ECORRUPT;
    CHECK_EQ_U64(missed, 0);
    /* Another valid sealed file where the MANIFEST expects this one. */
    content[0] ^= 1;
    char other[128];
    path_of(other, sizeof other, "other");
    testfs_write_sealed(other, content, n);
    CHECK_EQ_I64(map_rc(other, &seal, err), CTRD_ECORRUPT);
    CHECK(strstr(err, "replaced") != NULL);
    CHECK_EQ_I64(map_rc(other, NULL, err), 0);
    path_of(other, sizeof other, "absent");
    CHECK_EQ_I64(map_rc(other, &seal, err), CTRD_ENOTFOUND);
    free(good);
    free(bad);
    free(content);
}

#define BIG_BYTES ((size_t)16 << 20)

/* A file of BIG_BYTES written in one piece (the page cache may hold it in
 * large folios) and mapped; *sum: the sum of its bytes. */
static unsigned char *map_big(size_t *len, uint64_t *sum)
{
    char path[128], err[CTRD_ERR_LEN];
    path_of(path, sizeof path, "big");
    unsigned char *content = malloc(BIG_BYTES);
    *sum = 0;
    for (size_t i = 0; content && i < BIG_BYTES; i++) {
        content[i] = (unsigned char)(i * 7 + i / 4093);
        *sum += content[i];
    }
    void *map = NULL;
    if (!content || fs_replace_file(tmp_dir, "big", content, BIG_BYTES, err) ||
        fs_map_file(path, &map, len, err) != 0)
        CHECK_FAIL_AT("big file: %s", err);
    free(content);
    return map;
}

/* A read of a byte maps a fault-around window or a small folio, never a
 * whole FS_FOLIO_MAX one (Linux 6.18 mapped 2 MiB a read at a 2 MiB
 * aligned address). */
static void test_map_read_maps_little(void)
{
    size_t len;
    uint64_t sum;
    unsigned char *map = map_big(&len, &sum);
    if (!map)
        return;
    uint64_t before = testfs_rss_file_bytes();
    volatile unsigned char byte = 0;
    for (size_t i = 1; i <= 6; i++) /* one in each 2 MiB, mid-way */
        byte ^= map[i * FS_FOLIO_MAX + FS_FOLIO_MAX / 2];
    uint64_t each = (testfs_rss_file_bytes() - before) / 6;
    printf("  a byte read maps %llu KiB\n", (unsigned long long)each / 1024);
    CHECK(each <= FS_FOLIO_MAX / 4);
    fs_unmap(map, len);
}

/* Checking a sealed file reads every page and releases them behind: it
 * leaves little of the file mapped; its content reads back. */
static void test_sealed_check_releases(void)
{
    char path[128], err[CTRD_ERR_LEN];
    path_of(path, sizeof path, "sealed-big");
    unsigned char *content = malloc(BIG_BYTES);
    struct fs_seal seal = write_pattern(path, BIG_BYTES, content);
    uint64_t before = testfs_rss_file_bytes();
    void *map;
    size_t map_len, len;
    CHECK_EQ_I64(fs_map_sealed(path, &seal, &map, &map_len, &len, err), 0);
    uint64_t checked = testfs_rss_file_bytes() - before;
    printf("  checked %zu MiB: %llu KiB mapped\n", len >> 20,
           (unsigned long long)checked / 1024);
    CHECK(checked < BIG_BYTES / 8);
    CHECK(len == BIG_BYTES && memcmp(map, content, len) == 0);
    fs_unmap(map, map_len);
    free(content);
}

struct reader {
    const unsigned char *map;
    size_t len;
    uint64_t want;
    unsigned passes, wrong;
    volatile int done;
};

static void *read_passes(void *arg)
{
    struct reader *r = arg;
    for (unsigned p = 0; p < r->passes; p++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < r->len; i++)
            sum += r->map[i];
        r->wrong += sum != r->want;
    }
    r->done = 1;
    return NULL;
}

/* Releasing a mapping over and over while another thread reads it whole
 * changes no byte it reads, and leaves the pages out of the RSS. */
static void test_release_while_reading(void)
{
    struct reader r = {.passes = 20};
    r.map = map_big(&r.len, &r.want);
    if (!r.map)
        return;
    uint64_t before = testfs_rss_file_bytes();
    pthread_t t;
    CHECK_EQ_I64(pthread_create(&t, NULL, read_passes, &r), 0);
    unsigned releases = 0;
    for (; !r.done; releases++)
        fs_map_release(r.map, r.len, (releases % 3) * (r.len / 3), r.len / 3);
    pthread_join(t, NULL);
    CHECK_EQ_U64(r.wrong, 0);
    CHECK(releases > 20);
    uint64_t read = testfs_rss_file_bytes();
    fs_map_release(r.map, r.len, 0, r.len);
    uint64_t released = testfs_rss_file_bytes();
    printf("  %u releases; mapped %llu KiB after a pass, %llu KiB after a "
           "release\n",
           releases, (unsigned long long)(read - before) / 1024,
           (unsigned long long)(released - before) / 1024);
    struct reader once = {r.map, r.len, r.want, 1, 0, 0};
    read_passes(&once);
    CHECK_EQ_U64(once.wrong, 0);
    CHECK(testfs_rss_file_bytes() > before + BIG_BYTES / 2);
    fs_map_release(r.map, r.len, 0, r.len);
    CHECK(testfs_rss_file_bytes() < before + BIG_BYTES / 16);
    fs_unmap((void *)r.map, r.len);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-fsutil-XXXXXX");
    if (!mkdtemp(tmp_dir))
        return 1;
    RUN(test_trailer_format);
    RUN(test_round_trips);
    RUN(test_damage_found);
    RUN(test_map_read_maps_little);
    RUN(test_sealed_check_releases);
    RUN(test_release_while_reading);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return check_done() | (system(cmd) != 0);
}
