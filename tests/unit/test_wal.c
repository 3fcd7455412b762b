/* Unit tests of the write-ahead log: append and replay from any position;
 * torn tails cut off (short, zeroed, and with unsynced records after a
 * hole); damage refused with nothing changed (a flipped bit in an
 * acknowledged record, an old segment, a segment header, a missing or
 * deleted segment), reported by wal_check and dropped only by
 * wal_cut_at_damage; failed appends rolled back; segments trimmed after a
 * checkpoint; the byte tables of wal.h. */
#include "check.h"
#include "crc32c.h"
#include "testfs.h"
#include "wal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct seen {
    int n;
    char payloads[16][32];
    int64_t now[16];
};

static int collect(void *ctx, const struct wal_record *r)
{
    struct seen *s = ctx;
    if (s->n < 16) {
        snprintf(s->payloads[s->n], sizeof s->payloads[0], "%.*s", (int)r->len,
                 r->payload);
        s->now[s->n] = r->now_ms;
        CHECK(r->source == 2 && r->source_dev == 7 && r->source_ino == 8 &&
              r->source_offset == 9);
    }
    s->n++;
    return 0;
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/ctrd-test-wal.XXXXXX");
    return mkdtemp(dir);
}

static void remove_dir(char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(dir);
}

static void segment(char *path, size_t len, const char *dir, uint64_t start)
{
    snprintf(path, len, "%s/wal/%016llx.log", dir, (unsigned long long)start);
}

static void append(struct wal *w, const char *text, int64_t now)
{
    char err[CTRD_ERR_LEN];
    struct wal_record r = {1, 0, 2, now, 7, 8, 9, text, strlen(text)};
    CHECK_EQ_I64(wal_append(w, &r, err), 0);
}

static void sync_log(struct wal *w)
{
    char err[CTRD_ERR_LEN];
    CHECK_EQ_I64(wal_sync(w, err), 0);
}

/* Opens the log of dir from *from (NULL: none) replaying into s. */
static int open_log(const char *dir, const uint64_t *from, struct seen *s,
                    struct wal **w)
{
    char err[CTRD_ERR_LEN], note[CTRD_ERR_LEN];
    *s = (struct seen){0};
    int rc = wal_open(dir, from, collect, s, note, w, err);
    if (rc != 0)
        *w = NULL;
    return rc;
}

/* A fresh log: its first segment, at position 0. */
static struct wal *new_log(const char *dir, uint64_t *start)
{
    struct seen s;
    struct wal *w;
    CHECK_EQ_I64(open_log(dir, NULL, &s, &w), 0);
    *start = w ? wal_position(w) : 0;
    return w;
}

static void test_append_and_replay(void)
{
    char *dir = make_dir();
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    CHECK_EQ_U64(start, WAL_SEG_HEADER_BYTES);
    append(w, "first", 11);
    uint64_t middle = wal_position(w);
    append(w, "second", 22);
    sync_log(w);
    CHECK_EQ_U64(wal_position(w), middle + WAL_REC_HEADER_BYTES + 6);
    wal_close(w);

    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_STR(s.payloads[0], "first");
    CHECK_EQ_STR(s.payloads[1], "second");
    CHECK_EQ_I64(s.now[1], 22);
    wal_close(w);
    CHECK_EQ_I64(open_log(dir, &middle, &s, &w), 0);
    CHECK_EQ_I64(s.n, 1);
    CHECK_EQ_STR(s.payloads[0], "second");
    wal_close(w);
    /* Records, but no checkpoint that names a position: refused. */
    CHECK_EQ_I64(open_log(dir, NULL, &s, &w), CTRD_ECORRUPT);
    remove_dir(dir);
}

/* The byte tables of wal.h, read off a file. */
static void test_format(void)
{
    char *dir = make_dir(), path[512];
    uint64_t start;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    append(w, "one", 5);
    sync_log(w);
    uint64_t synced = wal_position(w);
    append(w, "two", 6);
    wal_close(w);
    segment(path, sizeof path, dir, 0);
    size_t len;
    unsigned char *p = testfs_read(path, &len);
    uint64_t u64;
    uint32_t u32;
    CHECK_EQ_U64(len, 24 + 2 * (56 + 3));
    CHECK(memcmp(p, "CTRDWAL2", 8) == 0);
    memcpy(&u64, p + 8, 8);
    CHECK_EQ_U64(u64, 0);
    memcpy(&u32, p + 16, 4);
    CHECK_EQ_U64(u32, crc32c(0, p, 16));
    const unsigned char *r = p + 24 + 56 + 3; /* the second record */
    memcpy(&u32, r, 4);
    CHECK_EQ_U64(u32, 0x5ec0d1a7);
    memcpy(&u32, r + 4, 4);
    CHECK_EQ_U64(u32, crc32c(crc32c(0, r + 8, 48), r + 56, 3));
    memcpy(&u32, r + 8, 4);
    CHECK_EQ_U64(u32, 3);
    CHECK(r[12] == 1 && r[13] == 0 && r[14] == 2 && r[15] == 0);
    memcpy(&u64, r + 16, 8);
    CHECK_EQ_U64(u64, 6);
    memcpy(&u64, r + 40, 8);
    CHECK_EQ_U64(u64, 9);
    memcpy(&u64, r + 48, 8);
    CHECK_EQ_U64(u64, synced);
    CHECK(memcmp(r + 56, "two", 3) == 0);
    free(p);
    remove_dir(dir);
}

static void test_torn_tails_are_cut(void)
{
    char *dir = make_dir(), path[512];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    append(w, "kept", 1);
    sync_log(w);
    uint64_t good = wal_position(w);
    append(w, "torn record", 2);
    wal_close(w);
    segment(path, sizeof path, dir, 0);
    /* Cut short mid-record. */
    CHECK_EQ_I64(truncate(path, (off_t)good + 7), 0);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 1);
    CHECK_EQ_U64(wal_position(w), good);
    append(w, "after", 3);
    sync_log(w);
    wal_close(w);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_STR(s.payloads[1], "after");
    uint64_t end = wal_position(w);
    wal_close(w);
    /* Zeros where an append's data never reached the disk. */
    CHECK_EQ_I64(truncate(path, (off_t)end + 4096), 0);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_U64(wal_position(w), end);
    /* A hole in an unsynced group: records after it that were appended
     * before the group's sync prove nothing; the tail goes from the hole. */
    append(w, "group 1", 4);
    append(w, "group 2", 5);
    append(w, "group 3", 6);
    wal_close(w);
    int fd = open(path, O_WRONLY);
    CHECK_EQ_I64(pwrite(fd, "X", 1, (off_t)end + 60), 1);
    close(fd);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_U64(wal_position(w), end);
    wal_close(w);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == end);
    remove_dir(dir);
}

static void note(void *ctx, const char *line)
{
    (*(int *)ctx)++;
    CHECK(strstr(line, "offset") || strstr(line, "position"));
}

/* Opening fails with CTRD_ECORRUPT, wal_check reports it, and neither
 * changes the segment at path. */
static void expect_damage(const char *dir, const uint64_t *from,
                          const char *path)
{
    char err[CTRD_ERR_LEN];
    size_t before_len = 0, after_len = 0;
    unsigned char *before = path ? testfs_read(path, &before_len) : NULL;
    struct seen s;
    struct wal *w;
    CHECK_EQ_I64(open_log(dir, from, &s, &w), CTRD_ECORRUPT);
    int reports = 0;
    CHECK_EQ_I64(wal_check(dir, from, note, &reports, err), CTRD_ECORRUPT);
    CHECK_EQ_I64(reports, 1);
    unsigned char *after = path ? testfs_read(path, &after_len) : NULL;
    CHECK(before_len == after_len &&
          (!before || memcmp(before, after, before_len) == 0));
    free(before);
    free(after);
}

/* A flipped bit in an acknowledged record — one a later record shows was
 * durable — is damage; the operator's cut drops it and what follows. */
static void test_damaged_record(void)
{
    char *dir = make_dir(), path[512], err[CTRD_ERR_LEN];
    char summary[CTRD_ERR_LEN];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    const char *texts[] = {"r0", "r1", "r2", "r3"};
    uint64_t at[4];
    for (int i = 0; i < 4; i++) {
        at[i] = wal_position(w);
        append(w, texts[i], i);
        sync_log(w);
    }
    uint64_t end = wal_position(w);
    wal_close(w);
    segment(path, sizeof path, dir, 0);
    size_t len;
    unsigned char *good = testfs_read(path, &len);
    /* A bit of record 1 flipped: in its header, its payload, its length. */
    static const size_t offsets[] = {0, 3, 5, 9, 12, 20, 50, 56, 57};
    for (size_t k = 0; k < sizeof offsets / sizeof *offsets; k++) {
        unsigned char *bad = malloc(len);
        memcpy(bad, good, len);
        bad[at[1] + offsets[k]] ^= 0x40;
        testfs_write(path, bad, len);
        expect_damage(dir, &start, path);
        free(bad);
    }
    /* The operator drops the log from the damage on. */
    CHECK_EQ_I64(wal_cut_at_damage(dir, start, summary, err), 0);
    CHECK(strstr(summary, "2 intact records") != NULL);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 1);
    CHECK_EQ_STR(s.payloads[0], "r0");
    CHECK_EQ_U64(wal_position(w), at[1]);
    wal_close(w);
    /* Nothing more to cut. */
    CHECK_EQ_I64(wal_cut_at_damage(dir, start, summary, err), 0);
    CHECK_EQ_STR(summary, "");
    (void)end;
    free(good);
    remove_dir(dir);
}

/* The SYNCED FILE proves durability where no later record can: a bit
 * flipped in the last record of a synced log, or in any record of a group
 * synced at once, is damage; so is a damaged SYNCED FILE (the cut rewrites
 * it). Without the file, such a flip reads as a torn tail. */
static void test_synced_file(void)
{
    char *dir = make_dir(), path[512], synced[512], err[CTRD_ERR_LEN];
    char summary[CTRD_ERR_LEN];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    uint64_t at[3];
    for (int i = 0; i < 3; i++) {
        at[i] = wal_position(w);
        append(w, "one group", i);
    }
    sync_log(w);
    uint64_t end = wal_position(w);
    wal_close(w);
    segment(path, sizeof path, dir, 0);
    snprintf(synced, sizeof synced, "%s/wal/synced", dir);
    size_t len, synced_len;
    unsigned char *good = testfs_read(path, &len);
    unsigned char *hint = testfs_read(synced, &synced_len);
    CHECK_EQ_U64(synced_len, 16);
    uint64_t pos;
    uint32_t crc;
    memcpy(&pos, hint, 8);
    memcpy(&crc, hint + 8, 4);
    CHECK_EQ_U64(pos, end);
    CHECK_EQ_U64(crc, crc32c(0, hint, 8));
    unsigned char *bad = malloc(len);
    for (int i = 0; i < 3; i++) { /* the middle and the last record */
        if (i == 0)
            continue;
        memcpy(bad, good, len);
        bad[at[i] + 60] ^= 1;
        testfs_write(path, bad, len);
        expect_damage(dir, &start, path);
    }
    /* The last record cut short: a torn tail even though it was durable
     * (SPEC §3), cut with a warning that acknowledged records were lost. */
    testfs_write(path, good, len - 3);
    char note[CTRD_ERR_LEN];
    s = (struct seen){0};
    CHECK_EQ_I64(wal_open(dir, &start, collect, &s, note, &w, err), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK(strstr(note, "WARNING") != NULL);
    wal_close(w);
    /* The SYNCED FILE damaged: refused; the cut rewrites it. */
    testfs_write(path, good, len);
    hint[3] ^= 1;
    testfs_write(synced, hint, synced_len);
    expect_damage(dir, &start, path);
    CHECK_EQ_I64(wal_cut_at_damage(dir, start, summary, err), 0);
    CHECK(strstr(summary, "synced") != NULL);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 3);
    wal_close(w);
    /* Without the file, a flipped last record is a torn tail. */
    testfs_write(path, bad, len);
    unlink(synced);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    wal_close(w);
    free(good);
    free(bad);
    free(hint);
    remove_dir(dir);
}

/* Segments: a damaged byte in an old one, its header, a deleted one in the
 * middle or at the head, one cut short. */
static void test_damaged_segments(void)
{
    char *dir = make_dir(), path0[512], path1[512], path2[512];
    char err[CTRD_ERR_LEN], summary[CTRD_ERR_LEN];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    append(w, "one", 1);
    uint64_t seg1 = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, start, err), 0); /* keeps the old */
    append(w, "two", 2);
    uint64_t seg2 = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, start, err), 0);
    append(w, "three", 3);
    sync_log(w);
    wal_close(w);
    segment(path0, sizeof path0, dir, 0);
    segment(path1, sizeof path1, dir, seg1);
    segment(path2, sizeof path2, dir, seg2);
    size_t len0, len1;
    unsigned char *seg0_bytes = testfs_read(path0, &len0);
    unsigned char *seg1_bytes = testfs_read(path1, &len1);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 3);
    wal_close(w);
    /* A flipped byte in the payload of the first (not last) segment. */
    unsigned char *bad = malloc(len0 + len1);
    memcpy(bad, seg0_bytes, len0);
    bad[len0 - 1] ^= 1;
    testfs_write(path0, bad, len0);
    expect_damage(dir, &start, path0);
    testfs_write(path0, seg0_bytes, len0);
    /* A segment header. */
    memcpy(bad, seg1_bytes, len1);
    bad[9] ^= 1;
    testfs_write(path1, bad, len1);
    expect_damage(dir, &start, path1);
    testfs_write(path1, seg1_bytes, len1);
    /* A segment cut short before its last record ends: not the last
     * segment, so damage (a gap before the next). */
    testfs_write(path1, seg1_bytes, len1 - 1);
    expect_damage(dir, &start, path1);
    testfs_write(path1, seg1_bytes, len1);
    /* The middle segment deleted. */
    unlink(path1);
    expect_damage(dir, &start, path2);
    testfs_write(path1, seg1_bytes, len1);
    /* Every segment deleted: the checkpoint's position is missing. */
    unlink(path0);
    unlink(path1);
    unlink(path2);
    expect_damage(dir, &start, NULL);
    /* The operator's cut starts the log again at the position. */
    CHECK_EQ_I64(wal_cut_at_damage(dir, start, summary, err), 0);
    CHECK(summary[0] != '\0');
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 0);
    CHECK_EQ_U64(wal_position(w), start + WAL_SEG_HEADER_BYTES);
    wal_close(w);
    free(bad);
    free(seg0_bytes);
    free(seg1_bytes);
    remove_dir(dir);
}

/* A write that fails (the file may not grow: a full disk) leaves the log
 * as it was after its last sync; appends work again once writes do. */
static void test_failed_append_rolls_back(void)
{
    char *dir = make_dir(), path[512], err[CTRD_ERR_LEN];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    append(w, "durable", 1);
    sync_log(w);
    uint64_t synced = wal_position(w);
    testfs_limit_file_size((rlim_t)synced + 100);
    char big[500];
    memset(big, 'x', sizeof big);
    struct wal_record r = {1, 0, 2, 2, 7, 8, 9, big, sizeof big};
    CHECK(wal_append(w, &r, err) != 0);
    testfs_limit_file_size(RLIM_INFINITY);
    CHECK_EQ_U64(wal_position(w), synced);
    segment(path, sizeof path, dir, 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (uint64_t)st.st_size == synced);
    append(w, "later", 3);
    sync_log(w);
    wal_close(w);
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_STR(s.payloads[1], "later");
    wal_close(w);
    remove_dir(dir);
}

static void test_trim_keeps_what_a_checkpoint_needs(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN];
    uint64_t start;
    struct seen s;
    struct wal *w = new_log(dir, &start);
    if (!w)
        return;
    append(w, "a", 1);
    uint64_t after_a = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, after_a, err), 0);
    append(w, "b", 2);
    uint64_t after_b = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, after_a, err), 0); /* b's segment stays */
    append(w, "c", 3);
    sync_log(w);
    wal_close(w);
    CHECK_EQ_I64(open_log(dir, &after_a, &s, &w), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_STR(s.payloads[0], "b");
    CHECK_EQ_I64(wal_trim(w, after_b, err), 0);
    wal_close(w);
    CHECK_EQ_I64(open_log(dir, &after_b, &s, &w), 0);
    CHECK_EQ_I64(s.n, 1);
    CHECK_EQ_STR(s.payloads[0], "c");
    wal_close(w);
    /* The log before a trimmed position is gone: asking for it fails. */
    CHECK_EQ_I64(open_log(dir, &start, &s, &w), CTRD_ECORRUPT);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_append_and_replay);
    RUN(test_format);
    RUN(test_torn_tails_are_cut);
    RUN(test_damaged_record);
    RUN(test_synced_file);
    RUN(test_damaged_segments);
    RUN(test_failed_append_rolls_back);
    RUN(test_trim_keeps_what_a_checkpoint_needs);
    return check_done();
}
