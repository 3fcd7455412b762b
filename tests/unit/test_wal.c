/* Unit tests of the write-ahead log: append, replay from any position,
 * torn tails cut off, segments trimmed after a checkpoint. */
#include "check.h"
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

static void append(struct wal *w, const char *text, int64_t now)
{
    char err[CTRD_ERR_LEN];
    struct wal_record r = {1, 0, 2, now, 7, 8, 9, text, strlen(text)};
    CHECK_EQ_I64(wal_append(w, &r, err), 0);
}

static void test_append_and_replay(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN];
    struct seen s = {0};
    struct wal *w;
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    CHECK_EQ_I64(s.n, 0);
    append(w, "first", 11);
    uint64_t middle = wal_position(w);
    append(w, "second", 22);
    CHECK_EQ_I64(wal_sync(w, err), 0);
    CHECK_EQ_U64(wal_position(w), middle + 44 + 6);
    wal_close(w);

    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    CHECK_EQ_I64(s.n, 2);
    CHECK_EQ_STR(s.payloads[0], "first");
    CHECK_EQ_STR(s.payloads[1], "second");
    CHECK_EQ_I64(s.now[1], 22);
    wal_close(w);

    struct seen tail = {0};
    CHECK_EQ_I64(wal_open(dir, middle, collect, &tail, &w, err), 0);
    CHECK_EQ_I64(tail.n, 1);
    CHECK_EQ_STR(tail.payloads[0], "second");
    wal_close(w);
    remove_dir(dir);
}

static void test_torn_tail_is_cut(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN], path[512];
    struct seen s = {0};
    struct wal *w;
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    append(w, "kept", 1);
    uint64_t good = wal_position(w);
    append(w, "torn record", 2);
    wal_close(w);
    snprintf(path, sizeof path, "%s/wal/%016x.log", dir, 0);
    CHECK_EQ_I64(truncate(path, (off_t)good + 7), 0);

    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    CHECK_EQ_I64(s.n, 1);
    CHECK_EQ_U64(wal_position(w), good);
    append(w, "after", 3);
    wal_close(w);
    struct seen again = {0};
    CHECK_EQ_I64(wal_open(dir, 0, collect, &again, &w, err), 0);
    CHECK_EQ_I64(again.n, 2);
    CHECK_EQ_STR(again.payloads[1], "after");
    wal_close(w);
    remove_dir(dir);
}

static void test_flipped_byte_in_old_segment_is_corruption(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN], path[512];
    struct seen s = {0};
    struct wal *w;
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    append(w, "one", 1);
    CHECK_EQ_I64(wal_trim(w, 0, err), 0); /* new segment, keeps the old */
    append(w, "two", 2);
    wal_close(w);
    snprintf(path, sizeof path, "%s/wal/%016x.log", dir, 0);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK_EQ_I64(pwrite(fd, "X", 1, 45), 1);
    close(fd);
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), CTRD_ECORRUPT);
    remove_dir(dir);
}

static void test_trim_keeps_what_a_checkpoint_needs(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN];
    struct seen s = {0};
    struct wal *w;
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), 0);
    append(w, "a", 1);
    uint64_t after_a = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, after_a, err), 0);
    append(w, "b", 2);
    uint64_t after_b = wal_position(w);
    CHECK_EQ_I64(wal_trim(w, after_a, err), 0); /* b's segment stays */
    append(w, "c", 3);
    wal_close(w);
    struct seen from_a = {0};
    CHECK_EQ_I64(wal_open(dir, after_a, collect, &from_a, &w, err), 0);
    CHECK_EQ_I64(from_a.n, 2);
    CHECK_EQ_STR(from_a.payloads[0], "b");
    CHECK_EQ_I64(wal_trim(w, after_b, err), 0);
    wal_close(w);
    struct seen from_b = {0};
    CHECK_EQ_I64(wal_open(dir, after_b, collect, &from_b, &w, err), 0);
    CHECK_EQ_I64(from_b.n, 1);
    CHECK_EQ_STR(from_b.payloads[0], "c");
    wal_close(w);
    /* The log before a trimmed position is gone: asking for it fails. */
    CHECK_EQ_I64(wal_open(dir, 0, collect, &s, &w, err), CTRD_ECORRUPT);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_append_and_replay);
    RUN(test_torn_tail_is_cut);
    RUN(test_flipped_byte_in_old_segment_is_corruption);
    RUN(test_trim_keeps_what_a_checkpoint_needs);
    return check_done();
}
