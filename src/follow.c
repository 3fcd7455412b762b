/* follow: tails a growing log file; see follow.h.
 *
 * DESIGN. The follower keeps no bytes between calls, only a position: pos,
 * the offset of the first byte not handed out, which is always a line start.
 * Each read preads from pos, so a line still being written is simply read
 * again by the next call (at most one read's worth: cheap, and it cannot go
 * stale: what is handed out is what the file holds at that offset).
 *
 * A line that does not end within one read is over-long: its first
 * LINE_SPAN bytes stay at the start of the buffer while the rest of the
 * buffer scans for its LF; skip_from remembers how far the scan got, so a
 * poll does not scan the same bytes again. When the LF comes, the kept
 * bytes and a LF are handed out, positioned after the real LF.
 *
 * Rotation is looked for only when the open file has no whole line left:
 * the path names another regular file that is not empty. Not empty means
 * the writer has reopened the path and will not write to the old file
 * again, so the old file is read once more to its end (what the writer
 * appended before rotating), and only then the new one from 0. */
#include "follow.h"

#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_SPAN ((size_t)REC_LINE_MAX + 2) /* too long even without a CR */
#define READ_MIN_BYTES (2 * LINE_SPAN)       /* a kept span + room to scan */

struct follower {
    char *path;
    int fd;                        /* -1 while the path does not exist */
    uint64_t dev, ino;             /* of fd */
    uint64_t pos;                  /* first byte not handed out */
    uint64_t skip_from;            /* > pos: no LF in [pos, skip_from) */
    struct follow_position resume; /* applied to the first file opened */
    int has_resume;
    char *buf;
    size_t cap;
};

/* What one pass found: buf[0..len) is handed out, at names its end. */
struct chunk {
    size_t len;   /* whole lines (a cut over-long line's LF included) */
    size_t tail;  /* when len == 0: bytes of the unfinished line in buf */
    uint64_t eof; /* when len == 0: the file offset reading stopped at */
    int switched; /* the pass moved on to a new file */
    struct follow_position at;
};

static int is_other_file(const struct follower *f, const struct stat *st)
{
    return (uint64_t)st->st_dev != f->dev || (uint64_t)st->st_ino != f->ino;
}

/* Reads up to len bytes at off, fewer only at EOF. */
static int read_at(const struct follower *f, char *dst, size_t len,
                   uint64_t off, size_t *got, char *err)
{
    size_t n = 0;
    while (n < len) {
        ssize_t r = pread(f->fd, dst + n, len - n, (off_t)(off + n));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ctrd_fail(err, CTRD_EIO, "cannot read %s: %s", f->path,
                             strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

/* Opens the path; *fd stays -1 when it does not exist. */
static int open_path(const struct follower *f, int *fd, struct stat *st,
                     char *err)
{
    *fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0 && errno == ENOENT)
        return 0;
    if (*fd < 0)
        return ctrd_fail(err, CTRD_EIO, "cannot open %s: %s", f->path,
                         strerror(errno));
    int rc = 0;
    if (fstat(*fd, st) != 0)
        rc = ctrd_fail(err, CTRD_EIO, "cannot stat %s: %s", f->path,
                       strerror(errno));
    else if (!S_ISREG(st->st_mode))
        rc = ctrd_fail(err, CTRD_EIO, "%s: not a regular file", f->path);
    if (rc != 0) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

static void use_file(struct follower *f, int fd, const struct stat *st,
                     uint64_t pos)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = fd;
    f->dev = (uint64_t)st->st_dev;
    f->ino = (uint64_t)st->st_ino;
    f->pos = pos;
    f->skip_from = 0;
}

/* Opens the path if no file is open yet: CTRD_EAGAIN while it is missing. */
static int follower_attach(struct follower *f, char *err)
{
    if (f->fd >= 0)
        return 0;
    int fd;
    struct stat st = {0};
    int rc = open_path(f, &fd, &st, err);
    if (rc != 0 || fd < 0)
        return rc != 0 ? rc : CTRD_EAGAIN;
    uint64_t pos = 0;
    if (f->has_resume && f->resume.dev == (uint64_t)st.st_dev &&
        f->resume.ino == (uint64_t)st.st_ino)
        pos = f->resume.offset; /* past the end: follower_check_size */
    f->has_resume = 0;
    use_file(f, fd, &st, pos);
    return 0;
}

/* Truncated in place (copytruncate): the file is shorter than what was
 * seen of it, so it is read again from 0. */
static int follower_check_size(struct follower *f, char *err)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return ctrd_fail(err, CTRD_EIO, "cannot stat %s: %s", f->path,
                         strerror(errno));
    uint64_t seen = f->skip_from > f->pos ? f->skip_from : f->pos;
    if ((uint64_t)st.st_size < seen) {
        f->pos = 0;
        f->skip_from = 0;
    }
    return 0;
}

/* The line at pos has no LF in the n bytes read: keeps its first
 * LINE_SPAN bytes and scans the rest of the buffer's room for its LF. */
static int follower_skip(struct follower *f, size_t want, size_t n,
                         struct chunk *c, char *err)
{
    char *scratch = f->buf + LINE_SPAN;
    size_t room = want - LINE_SPAN, got = room;
    uint64_t off = f->pos + n > f->skip_from ? f->pos + n : f->skip_from;
    while (got == room) {
        int rc = read_at(f, scratch, room, off, &got, err);
        if (rc != 0)
            return rc;
        const char *lf = memchr(scratch, '\n', got);
        if (lf) {
            c->len = LINE_SPAN + 1;
            c->at.offset = off + (uint64_t)(lf - scratch) + 1;
            f->buf[LINE_SPAN] = '\n';
            return 0;
        }
        off += got;
    }
    f->skip_from = off;
    c->tail = LINE_SPAN;
    c->eof = off;
    return 0;
}

/* Reads the whole lines at pos (at most want bytes) and hands them out:
 * pos moves past them. */
static int follower_fill(struct follower *f, size_t want, struct chunk *c,
                         char *err)
{
    size_t n;
    int rc = read_at(f, f->buf, want, f->pos, &n, err);
    if (rc != 0)
        return rc;
    *c = (struct chunk){.at = {f->dev, f->ino, 0}};
    const char *lf = memrchr(f->buf, '\n', n);
    if (lf) {
        c->len = (size_t)(lf - f->buf) + 1;
        c->at.offset = f->pos + c->len;
    } else if (n >= LINE_SPAN) {
        rc = follower_skip(f, want, n, c, err);
    } else {
        c->tail = n;
        c->eof = f->pos + n;
    }
    if (rc == 0 && c->len > 0) {
        f->pos = c->at.offset;
        f->skip_from = 0;
    }
    return rc;
}

/* 1 when the path names another regular file with bytes in it. */
static int follower_rotated(const struct follower *f)
{
    struct stat st;
    return stat(f->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
           is_other_file(f, &st);
}

/* Moves on to the file now at the path. The old file's unfinished last line
 * will never be finished: it is handed out with a LF. */
static int follower_switch(struct follower *f, struct chunk *c, char *err)
{
    int fd;
    struct stat st = {0};
    int rc = open_path(f, &fd, &st, err);
    if (rc != 0 || fd < 0)
        return rc;
    if (!is_other_file(f, &st)) {
        close(fd);
        return 0;
    }
    if (c->tail > 0) {
        f->buf[c->tail] = '\n';
        c->len = c->tail + 1;
        c->at.offset = c->eof;
    }
    c->switched = 1;
    use_file(f, fd, &st, 0);
    return 0;
}

/* One pass over the open file, and over its successor if it was rotated
 * away with no whole line left. */
static int follower_pass(struct follower *f, size_t want, struct chunk *c,
                         char *err)
{
    int rc = follower_attach(f, err);
    if (rc == 0)
        rc = follower_check_size(f, err);
    if (rc == 0)
        rc = follower_fill(f, want, c, err);
    if (rc != 0 || c->len > 0 || !follower_rotated(f))
        return rc;
    /* The writer has moved on: whatever it appended before, read it now. */
    rc = follower_fill(f, want, c, err);
    if (rc != 0 || c->len > 0)
        return rc;
    return follower_switch(f, c, err);
}

int follower_open(const char *path, const struct follow_position *resume,
                  struct follower **out, char *err)
{
    struct follower *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    f->fd = -1;
    if (resume) {
        f->resume = *resume;
        f->has_resume = 1;
    }
    int rc = follower_attach(f, err);
    if (rc != 0 && rc != CTRD_EAGAIN) {
        follower_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void follower_close(struct follower *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->buf);
    free(f);
}

int follower_read(struct follower *f, size_t max_bytes, const char **data,
                  size_t *len, struct follow_position *at, char *err)
{
    size_t want = max_bytes > READ_MIN_BYTES ? max_bytes : READ_MIN_BYTES;
    if (f->cap < want + 1) {
        char *grown = realloc(f->buf, want + 1);
        if (!grown)
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
        f->buf = grown;
        f->cap = want + 1;
    }
    struct chunk c;
    int rc = follower_pass(f, want, &c, err);
    if (rc == 0 && c.len == 0 && c.switched)
        rc = follower_pass(f, want, &c, err); /* the new file, right away */
    if (rc != 0)
        return rc;
    if (c.len == 0)
        return CTRD_EAGAIN;
    *data = f->buf;
    *len = c.len;
    *at = c.at;
    return 0;
}
