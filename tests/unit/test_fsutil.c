/* Unit tests of fsutil's sealed files: the trailer's byte table, round
 * trips of every size around the block size, every flipped bit and every
 * cut found (with the file and offset named), the size and fingerprint a
 * MANIFEST recorded checked, a missing file told apart. */
#include "check.h"
#include "crc32c.h"
#include "fsutil.h"
#include "testfs.h"

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

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-fsutil-XXXXXX");
    if (!mkdtemp(tmp_dir))
        return 1;
    RUN(test_trailer_format);
    RUN(test_round_trips);
    RUN(test_damage_found);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return check_done() | (system(cmd) != 0);
}
