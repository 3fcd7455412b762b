/* Unit tests of the file follower: whole lines only, each byte once, in
 * order, across appends in pieces, restarts from a saved position,
 * rotation (rename + create), truncation in place and over-long lines. */
#include "check.h"
#include "follow.h"
#include "record.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_SPAN ((size_t)REC_LINE_MAX + 2)
#define SMALL_READ 4096 /* max_bytes for most reads */

/* ---- files ---- */

static char *make_dir(void)
{
    char *dir = strdup("/tmp/ctrd-test-follow.XXXXXX");
    return mkdtemp(dir);
}

static void remove_dir(char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(dir);
}

static void join(char *out, const char *dir, const char *name)
{
    snprintf(out, 256, "%s/%s", dir, name);
}

static void write_bytes(const char *path, int flags, const void *data,
                        size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void append(const char *path, const char *text)
{
    write_bytes(path, O_APPEND, text, strlen(text));
}

/* Truncates in place and writes text (what copytruncate leaves behind). */
static void truncate_to(const char *path, const char *text)
{
    write_bytes(path, O_TRUNC, text, strlen(text));
}

static void rotate(const char *path, const char *to)
{
    CHECK(rename(path, to) == 0);
}

static struct follow_position position_of(const char *path, uint64_t offset)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return (struct follow_position){(uint64_t)st.st_dev, (uint64_t)st.st_ino,
                                    offset};
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* ---- reading ---- */

/* Everything handed out, in order, and the last position. */
struct sink {
    char *data;
    size_t len, cap;
    struct follow_position at;
    int has_at;
};

static void sink_add(struct sink *s, const char *data, size_t len)
{
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->data = realloc(s->data, s->cap);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = 0;
}

static void sink_free(struct sink *s)
{
    free(s->data);
    *s = (struct sink){0};
}

/* One read that must hand out exactly want, positioned at at_want. */
static void read_expect(struct follower *f, const char *want,
                        struct follow_position at_want)
{
    char err[CTRD_ERR_LEN];
    const char *data = NULL;
    size_t len = 0;
    struct follow_position at = {0};
    int rc = follower_read(f, SMALL_READ, &data, &len, &at, err);
    CHECK_EQ_I64(rc, 0);
    if (rc != 0)
        return;
    CHECK_EQ_MEM(data, len, want);
    CHECK_EQ_U64(at.dev, at_want.dev);
    CHECK_EQ_U64(at.ino, at_want.ino);
    CHECK_EQ_U64(at.offset, at_want.offset);
}

static void read_nothing(struct follower *f)
{
    char err[CTRD_ERR_LEN];
    const char *data;
    size_t len;
    struct follow_position at;
    CHECK_EQ_I64(follower_read(f, SMALL_READ, &data, &len, &at, err),
                 CTRD_EAGAIN);
}

/* Reads until there is nothing new; every piece is whole lines. */
static void drain(struct follower *f, size_t max_bytes, struct sink *s)
{
    char err[CTRD_ERR_LEN];
    for (int i = 0; i < 1000; i++) {
        const char *data;
        size_t len;
        struct follow_position at;
        int rc = follower_read(f, max_bytes, &data, &len, &at, err);
        if (rc == CTRD_EAGAIN)
            return;
        CHECK_EQ_I64(rc, 0);
        if (rc != 0)
            return;
        CHECK(len > 0 && data[len - 1] == '\n');
        sink_add(s, data, len);
        s->at = at;
        s->has_at = 1;
    }
    CHECK(!"drain never ran dry");
}

static struct follower *open_follower(const char *path,
                                      const struct follow_position *resume)
{
    char err[CTRD_ERR_LEN];
    struct follower *f = NULL;
    CHECK_EQ_I64(follower_open(path, resume, &f, err), 0);
    return f;
}

/* ---- tests ---- */

static void test_partial_lines_held_back(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "a\nb");
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "a\n", position_of(path, 2));
    read_nothing(f);
    append(path, "c\n");
    read_expect(f, "bc\n", position_of(path, 5));
    append(path, "d");
    read_nothing(f);
    append(path, "\r");
    read_nothing(f);
    append(path, "\ne\nf\ng");
    read_expect(f, "d\r\ne\nf\n", position_of(path, 12));
    read_nothing(f);
    follower_close(f);
    remove_dir(dir);
}

static void test_crlf_passes_through(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "a\r\n\r\nb\r\n");
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "a\r\n\r\nb\r\n", position_of(path, 8));
    follower_close(f);
    remove_dir(dir);
}

static void test_resume_gives_the_rest(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "l1\nl2\nl3\n");
    struct follow_position from = position_of(path, 3);
    struct follower *f = open_follower(path, &from);
    read_expect(f, "l2\nl3\n", position_of(path, 9));
    follower_close(f);

    from = position_of(path, 9);
    f = open_follower(path, &from);
    read_nothing(f);
    append(path, "l4\n");
    read_expect(f, "l4\n", position_of(path, 12));
    follower_close(f);
    remove_dir(dir);
}

static void test_resume_of_a_rotated_file_starts_the_new_one(void)
{
    char *dir = make_dir(), path[256], old[256];
    join(path, dir, "log");
    join(old, dir, "log.1");
    append(path, "l1\nl2\n");
    struct follow_position from = position_of(path, 3);
    rotate(path, old);
    append(path, "n1\n");
    struct follower *f = open_follower(path, &from);
    read_expect(f, "n1\n", position_of(path, 3));
    follower_close(f);
    remove_dir(dir);
}

static void test_resume_beyond_the_end_starts_at_0(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "ab\n");
    struct follow_position from = position_of(path, 100);
    struct follower *f = open_follower(path, &from);
    read_expect(f, "ab\n", position_of(path, 3));
    follower_close(f);
    remove_dir(dir);
}

static void test_missing_path_is_waited_for(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    struct follow_position from = {1, 2, 3};
    struct follower *f = open_follower(path, &from);
    read_nothing(f);
    read_nothing(f);
    append(path, "x");
    read_nothing(f);
    append(path, "\n");
    read_expect(f, "x\n", position_of(path, 2));
    follower_close(f);
    remove_dir(dir);
}

static void test_not_a_regular_file_is_an_error(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN];
    struct follower *f = NULL;
    CHECK_EQ_I64(follower_open(dir, NULL, &f, err), CTRD_EIO);
    CHECK(strstr(err, "not a regular file") != NULL);
    remove_dir(dir);
}

static void test_rotation_reads_the_old_file_to_its_end(void)
{
    char *dir = make_dir(), path[256], old[256];
    join(path, dir, "log");
    join(old, dir, "log.1");
    append(path, "1\n2\n");
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "1\n2\n", position_of(path, 4));
    append(path, "3\n4\n"); /* just before the rename */
    struct follow_position old_end = position_of(path, 8);
    rotate(path, old);
    append(path, "5\n");
    read_expect(f, "3\n4\n", old_end);
    read_expect(f, "5\n", position_of(path, 2));
    read_nothing(f);
    follower_close(f);
    remove_dir(dir);
}

/* Until the writer writes to the new file, it may still write to the old. */
static void test_rotation_waits_for_the_new_file_to_fill(void)
{
    char *dir = make_dir(), path[256], old[256];
    join(path, dir, "log");
    join(old, dir, "log.1");
    append(path, "1\nx");
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "1\n", position_of(path, 2));
    rotate(path, old);
    append(path, "");
    read_nothing(f);
    append(old, "y\n");
    read_expect(f, "xy\n", position_of(old, 5));
    read_nothing(f);
    append(path, "2\n");
    read_expect(f, "2\n", position_of(path, 2));
    follower_close(f);
    remove_dir(dir);
}

/* A rotated-away file's last line without LF will never be finished: it
 * is handed out with a LF, positioned at the old file's end. */
static void test_rotation_finishes_an_unterminated_last_line(void)
{
    char *dir = make_dir(), path[256], old[256];
    join(path, dir, "log");
    join(old, dir, "log.1");
    append(path, "a\nb");
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "a\n", position_of(path, 2));
    rotate(path, old);
    append(path, "c\n");
    read_expect(f, "b\n", position_of(old, 3));
    read_expect(f, "c\n", position_of(path, 2));
    follower_close(f);
    remove_dir(dir);
}

static void test_removed_path_keeps_the_old_file(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "a\n");
    struct follower *f = open_follower(path, NULL);
    struct follow_position old = position_of(path, 4);
    read_expect(f, "a\n", position_of(path, 2));
    int writer = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    CHECK(unlink(path) == 0);
    CHECK(write(writer, "b\n", 2) == 2);
    close(writer);
    read_expect(f, "b\n", old);
    read_nothing(f);
    append(path, "c\n");
    read_expect(f, "c\n", position_of(path, 2));
    follower_close(f);
    remove_dir(dir);
}

static void test_truncation_starts_again_at_0(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    append(path, "abc\nde");
    struct follower *f = open_follower(path, NULL);
    struct follow_position before = position_of(path, 4);
    read_expect(f, "abc\n", before);
    truncate_to(path, "f\n"); /* "de" is gone with the rest */
    struct follow_position after = position_of(path, 2);
    CHECK_EQ_U64(after.ino, before.ino);
    read_expect(f, "f\n", after);
    follower_close(f);
    remove_dir(dir);
}

static void test_over_long_line_is_cut(void)
{
    char *dir = make_dir(), path[256];
    join(path, dir, "log");
    char *half = repeat('x', 100000), *cut = repeat('x', LINE_SPAN);
    append(path, "a\n");
    append(path, half);
    struct follower *f = open_follower(path, NULL);
    read_expect(f, "a\n", position_of(path, 2));
    read_nothing(f);
    append(path, half);
    read_nothing(f);
    append(path, "\nok\r\n");
    char *want = malloc(LINE_SPAN + 2);
    snprintf(want, LINE_SPAN + 2, "%s\n", cut);
    read_expect(f, want, position_of(path, 2 + 200001));
    read_expect(f, "ok\r\n", position_of(path, 2 + 200001 + 4));
    follower_close(f);
    free(want);
    free(cut);
    free(half);
    remove_dir(dir);
}

/* A line that fits in one read is handed out whole, as `ctrd ingest` does;
 * the parser rejects it all the same. */
static void test_over_long_line_within_one_read_is_whole(void)
{
    char *dir = make_dir(), path[256], err[CTRD_ERR_LEN];
    join(path, dir, "log");
    char *line = repeat('x', 100000);
    line[99999] = '\n';
    append(path, line);
    append(path, "ok\n");
    struct follower *f = open_follower(path, NULL);
    const char *data;
    size_t len;
    struct follow_position at;
    CHECK_EQ_I64(follower_read(f, 1 << 20, &data, &len, &at, err), 0);
    CHECK_EQ_U64(len, 100003);
    CHECK(memcmp(data, line, 100000) == 0);
    follower_close(f);
    free(line);
    remove_dir(dir);
}

static void test_over_long_unterminated_line_of_a_rotated_file(void)
{
    char *dir = make_dir(), path[256], old[256];
    join(path, dir, "log");
    join(old, dir, "log.1");
    char *line = repeat('y', 200000), *cut = repeat('y', LINE_SPAN);
    append(path, line);
    struct follower *f = open_follower(path, NULL);
    read_nothing(f);
    rotate(path, old);
    append(path, "z\n");
    char *want = malloc(LINE_SPAN + 2);
    snprintf(want, LINE_SPAN + 2, "%s\n", cut);
    read_expect(f, want, position_of(old, 200000));
    read_expect(f, "z\n", position_of(path, 2));
    follower_close(f);
    free(want);
    free(cut);
    free(line);
    remove_dir(dir);
}

/* A scripted life of a log: everything handed out, concatenated, is
 * exactly what was meant to be read, through restarts from saved
 * positions. */
static void test_scripted_sequence(void)
{
    char *dir = make_dir(), path[256], old1[256], old2[256];
    join(path, dir, "log");
    join(old1, dir, "log.1");
    join(old2, dir, "log.2");
    struct sink s = {0};
    char *x = repeat('x', 200000), *cut = repeat('x', LINE_SPAN);

    append(path, "a1\na2");
    struct follower *f = open_follower(path, NULL);
    drain(f, 16, &s);
    append(path, "\r\na3\n");
    drain(f, 16, &s);
    /* rotation; the writer finishes a line in the old file, then moves */
    append(path, "a4\na");
    rotate(path, old1);
    append(old1, "5\n");
    append(path, "");
    drain(f, SMALL_READ, &s);
    append(old1, "a6");
    append(path, "b1\n");
    drain(f, SMALL_READ, &s);
    /* restart from the saved position */
    follower_close(f);
    f = open_follower(path, &s.at);
    append(path, "b2\n");
    drain(f, SMALL_READ, &s);
    /* copytruncate, with a line still being written */
    append(path, "b3\nb");
    drain(f, SMALL_READ, &s);
    truncate_to(path, "c1\n");
    drain(f, SMALL_READ, &s);
    /* an over-long line, across a restart while it is being written */
    append(path, x);
    drain(f, SMALL_READ, &s);
    follower_close(f);
    f = open_follower(path, &s.at);
    append(path, "\nc2\n");
    drain(f, SMALL_READ, &s);
    /* the path removed, the writer still writing, then a new file */
    int writer = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    rotate(path, old2);
    CHECK(write(writer, "c3\n", 3) == 3);
    close(writer);
    drain(f, SMALL_READ, &s);
    append(path, "d1\n");
    drain(f, 1 << 20, &s);

    char *want = malloc(LINE_SPAN + 64);
    snprintf(want, LINE_SPAN + 64,
             "a1\na2\r\na3\na4\na5\na6\nb1\nb2\nb3\nc1\n%s\nc2\nc3\nd1\n", cut);
    CHECK_EQ_MEM(s.data, s.len, want);
    struct follow_position end = position_of(path, 3);
    CHECK(s.at.dev == end.dev && s.at.ino == end.ino);
    CHECK_EQ_U64(s.at.offset, 3);
    follower_close(f);
    free(want);
    free(cut);
    free(x);
    sink_free(&s);
    remove_dir(dir);
}

/* ---- random lives of a log, checked byte for byte ---- */

struct model_file {
    uint64_t ino;
    char *data; /* what the file holds */
    size_t len, cap;
};

struct model {
    char dir[256], path[256];
    struct model_file files[64];
    int n_files; /* files[n_files - 1] is at the path */
    struct sink expected;
    uint64_t rng;
};

static uint32_t model_rand(struct model *m, uint32_t n)
{
    m->rng = m->rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(m->rng >> 33) % n;
}

static void model_write(struct model *m, struct model_file *mf,
                        const char *path, const char *text)
{
    size_t len = strlen(text);
    append(path, text);
    if (mf->len + len + 1 > mf->cap) {
        mf->cap = (mf->len + len + 1) * 2;
        mf->data = realloc(mf->data, mf->cap);
    }
    memcpy(mf->data + mf->len, text, len);
    mf->len += len;
    sink_add(&m->expected, text, len);
}

static void model_new_file(struct model *m)
{
    append(m->path, "");
    struct model_file *mf = &m->files[m->n_files++];
    *mf = (struct model_file){position_of(m->path, 0).ino, NULL, 0, 0};
}

/* Each piece handed out is what its file holds just before its position. */
static void model_check(struct model *m, const char *data, size_t len,
                        const struct follow_position *at)
{
    for (int i = 0; i < m->n_files; i++) {
        const struct model_file *mf = &m->files[i];
        if (mf->ino != at->ino)
            continue;
        CHECK(at->offset >= len && at->offset <= mf->len);
        if (at->offset >= len && at->offset <= mf->len)
            CHECK(memcmp(mf->data + at->offset - len, data, len) == 0);
        return;
    }
    CHECK(!"a position names no file");
}

static void model_drain(struct model *m, struct follower *f, struct sink *s)
{
    char err[CTRD_ERR_LEN];
    int rc;
    const char *data;
    size_t len, max_bytes = 1 + model_rand(m, 300000);
    struct follow_position at;
    while ((rc = follower_read(f, max_bytes, &data, &len, &at, err)) == 0) {
        model_check(m, data, len, &at);
        sink_add(s, data, len);
        s->at = at;
        s->has_at = 1;
    }
    CHECK_EQ_I64(rc, CTRD_EAGAIN);
}

static void test_random_sequences(void)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct model m = {.rng = seed};
        char *dir = make_dir();
        snprintf(m.dir, sizeof m.dir, "%s", dir);
        join(m.path, dir, "log");
        model_new_file(&m);
        struct sink got = {0};
        struct follower *f = open_follower(m.path, NULL);
        char line[64] = "";
        size_t line_pos = 0; /* bytes of line written */
        for (int step = 0; step < 400; step++) {
            struct model_file *cur = &m.files[m.n_files - 1];
            uint32_t op = model_rand(&m, 100);
            if (op < 55) {
                if (line[line_pos] == 0) {
                    snprintf(line, sizeof line, "l%d-%u%s\n", step,
                             model_rand(&m, 1u << 30),
                             model_rand(&m, 4) == 0 ? "\r" : "");
                    line_pos = 0;
                }
                size_t left = strlen(line + line_pos);
                size_t n = 1 + model_rand(&m, (uint32_t)left);
                char piece[64];
                snprintf(piece, sizeof piece, "%.*s", (int)n, line + line_pos);
                model_write(&m, cur, m.path, piece);
                line_pos += n;
            } else if (op < 85) {
                model_drain(&m, f, &got);
            } else if (line[line_pos] != 0) {
                continue; /* the rest needs a line end */
            } else if (op < 92 && m.n_files < 64 && cur->len > 0) {
                /* rename + create; whole lines may still go to the old
                 * one. The follower must have seen it first. */
                model_drain(&m, f, &got);
                char to[300];
                snprintf(to, sizeof to, "%s.%d", m.path, m.n_files);
                rotate(m.path, to);
                model_new_file(&m);
                int late = (int)model_rand(&m, 3);
                for (int i = 0; i < late; i++) {
                    snprintf(line, sizeof line, "late%d-%d\n", step, i);
                    model_write(&m, cur, to, line);
                }
                line[0] = 0;
                line_pos = 0;
            } else if (op < 96) {
                /* copytruncate: copied (read) first, then emptied */
                model_drain(&m, f, &got);
                truncate_to(m.path, "");
                cur->len = 0;
                model_drain(&m, f, &got);
                snprintf(line, sizeof line, "t%d\n", step);
                model_write(&m, cur, m.path, line);
                model_drain(&m, f, &got);
                line[0] = 0;
                line_pos = 0;
            } else {
                model_drain(&m, f, &got);
                follower_close(f);
                f = open_follower(m.path, got.has_at ? &got.at : NULL);
            }
        }
        if (line[line_pos] != 0)
            model_write(&m, &m.files[m.n_files - 1], m.path, line + line_pos);
        model_drain(&m, f, &got);
        CHECK_EQ_U64(got.len, m.expected.len);
        if (got.len != m.expected.len ||
            memcmp(got.data, m.expected.data, got.len) != 0) {
            CHECK_FAIL_AT("seed %" PRIu64 ": what was read differs", seed);
        }
        follower_close(f);
        for (int i = 0; i < m.n_files; i++)
            free(m.files[i].data);
        sink_free(&got);
        sink_free(&m.expected);
        remove_dir(dir);
    }
}

/* ---- a writer thread that rotates while the follower reads ---- */

#define LIVE_LINES 20000
#define LIVE_LINES_PER_FILE 400
#define LIVE_LATE_LINES 3 /* written to the old file after the rename */

struct live {
    char path[256];
    _Atomic uint64_t file_ino; /* of the file the writer writes */
    _Atomic uint64_t seen_ino; /* of the last position handed out */
    atomic_int done, failed;
};

static void pause_briefly(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

static void live_line(char *out, size_t len, int i)
{
    snprintf(out, len, "line-%06d-%s\n", i, i % 3 ? "abcdefgh" : "ab\r");
}

static int live_open(struct live *lv)
{
    int fd = open(lv->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -1;
    atomic_store(&lv->file_ino, (uint64_t)st.st_ino);
    return fd;
}

/* Writes each line in two pieces; rotates by rename, writes a few late
 * lines to the old file, then opens the new one. Before a rotation it
 * waits until the follower has reached the file (it must see a file
 * before that file is rotated away). */
static void *live_writer(void *arg)
{
    struct live *lv = arg;
    int fd = live_open(lv), rotations = 0;
    for (int i = 0; i < LIVE_LINES && fd >= 0; i++) {
        char line[64];
        live_line(line, sizeof line, i);
        size_t len = strlen(line), half = len / 2;
        if (write(fd, line, half) != (ssize_t)half ||
            write(fd, line + half, len - half) != (ssize_t)(len - half))
            break;
        if (i % LIVE_LINES_PER_FILE != LIVE_LINES_PER_FILE - 1 ||
            i + LIVE_LATE_LINES + 1 >= LIVE_LINES)
            continue;
        for (int w = 0; w < 500000 && atomic_load(&lv->seen_ino) !=
                                          atomic_load(&lv->file_ino);
             w++)
            pause_briefly();
        char to[300];
        snprintf(to, sizeof to, "%s.%d", lv->path, ++rotations);
        if (rename(lv->path, to) != 0)
            break;
        for (int k = 0; k < LIVE_LATE_LINES; k++) {
            live_line(line, sizeof line, ++i);
            if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
                break;
        }
        close(fd);
        fd = live_open(lv);
    }
    if (fd < 0)
        atomic_store(&lv->failed, 1);
    else
        close(fd);
    atomic_store(&lv->done, 1);
    return NULL;
}

static void test_live_writer_with_rotations(void)
{
    char *dir = make_dir(), err[CTRD_ERR_LEN];
    struct live lv = {0};
    join(lv.path, dir, "log");
    struct sink got = {0}, want = {0};
    for (int i = 0; i < LIVE_LINES; i++) {
        char line[64];
        live_line(line, sizeof line, i);
        sink_add(&want, line, strlen(line));
    }
    struct follower *f = open_follower(lv.path, NULL);
    pthread_t writer;
    CHECK(pthread_create(&writer, NULL, live_writer, &lv) == 0);
    int idle = 0; /* polls with nothing new once the writer is done */
    for (long polls = 0; polls < 50000000 && got.len < want.len; polls++) {
        const char *data;
        size_t len;
        struct follow_position at;
        int rc =
            follower_read(f, 1 + (size_t)polls % 5000, &data, &len, &at, err);
        if (rc == 0) {
            sink_add(&got, data, len);
            atomic_store(&lv.seen_ino, at.ino);
        } else if (rc != CTRD_EAGAIN) {
            CHECK_EQ_I64(rc, CTRD_EAGAIN);
            break;
        } else if (atomic_load(&lv.done) && ++idle > 10) {
            break;
        }
    }
    pthread_join(writer, NULL);
    CHECK(!atomic_load(&lv.failed));
    CHECK_EQ_U64(got.len, want.len);
    CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    follower_close(f);
    sink_free(&got);
    sink_free(&want);
    remove_dir(dir);
}

int main(void)
{
    RUN(test_partial_lines_held_back);
    RUN(test_crlf_passes_through);
    RUN(test_resume_gives_the_rest);
    RUN(test_resume_of_a_rotated_file_starts_the_new_one);
    RUN(test_resume_beyond_the_end_starts_at_0);
    RUN(test_missing_path_is_waited_for);
    RUN(test_not_a_regular_file_is_an_error);
    RUN(test_rotation_reads_the_old_file_to_its_end);
    RUN(test_rotation_waits_for_the_new_file_to_fill);
    RUN(test_rotation_finishes_an_unterminated_last_line);
    RUN(test_removed_path_keeps_the_old_file);
    RUN(test_truncation_starts_again_at_0);
    RUN(test_over_long_line_is_cut);
    RUN(test_over_long_line_within_one_read_is_whole);
    RUN(test_over_long_unterminated_line_of_a_rotated_file);
    RUN(test_scripted_sequence);
    RUN(test_random_sequences);
    RUN(test_live_writer_with_rotations);
    return check_done();
}
