/* wal: the write-ahead log; see wal.h. */
#include "wal.h"

#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define WAL_HEADER_BYTES 44
#define WAL_PAYLOAD_MAX (UINT32_C(1) << 31)

struct wal {
    char dir[FS_PATH_MAX - 32]; /* room for "/<16 hex>.log" */
    int fd;
    uint64_t seg_start; /* position of the open segment's first byte */
    uint64_t seg_bytes;
};

static void segment_path(char *path, size_t len, const char *dir,
                         uint64_t start)
{
    snprintf(path, len, "%s/%016" PRIx64 ".log", dir, start);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The start positions of the segments in dir, ascending (malloc'd). */
static int list_segments(const char *dir, uint64_t **starts, size_t *n,
                         char *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ctrd_fail(err, CTRD_EIO, "cannot read %s: %s", dir,
                         strerror(errno));
    uint64_t *v = NULL;
    size_t k = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char hex[17];
        uint64_t start;
        if (strlen(de->d_name) != 20 ||
            strcmp(de->d_name + 16, ".log") != 0 ||
            sscanf(de->d_name, "%16[0-9a-f]", hex) != 1 || strlen(hex) != 16)
            continue;
        start = strtoull(hex, NULL, 16);
        uint64_t *grown = realloc(v, (k + 1) * sizeof *v);
        if (!grown) {
            free(v);
            closedir(d);
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
        }
        v = grown;
        v[k++] = start;
    }
    closedir(d);
    if (k)
        qsort(v, k, sizeof *v, u64_cmp);
    *starts = v;
    *n = k;
    return 0;
}

static uint32_t record_crc(const unsigned char *header_tail,
                           const char *payload, size_t len)
{
    uLong crc = crc32(0L, header_tail, WAL_HEADER_BYTES - 8);
    while (len > 0) {
        uInt part = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, (const Bytef *)payload, part);
        payload += part;
        len -= part;
    }
    return (uint32_t)crc;
}

/* Replays the records of one mapped segment from offset; returns the
 * offset after the last good record in *good_end. */
static int replay_segment(const unsigned char *p, size_t size, size_t offset,
                          int (*fn)(void *, const struct wal_record *),
                          void *ctx, size_t *good_end)
{
    while (size - offset >= WAL_HEADER_BYTES) {
        const unsigned char *h = p + offset;
        uint32_t len, crc;
        struct wal_record r = {h[8], h[9], h[10], 0, 0, 0, 0, NULL, 0};
        memcpy(&len, h, 4);
        memcpy(&crc, h + 4, 4);
        memcpy(&r.now_ms, h + 12, 8);
        memcpy(&r.source_dev, h + 20, 8);
        memcpy(&r.source_ino, h + 28, 8);
        memcpy(&r.source_offset, h + 36, 8);
        if (len > size - offset - WAL_HEADER_BYTES ||
            record_crc(h + 8, (const char *)h + WAL_HEADER_BYTES, len) != crc)
            break;
        r.payload = (const char *)h + WAL_HEADER_BYTES;
        r.len = len;
        int rc = fn(ctx, &r);
        if (rc != 0)
            return rc;
        offset += WAL_HEADER_BYTES + len;
    }
    *good_end = offset;
    return 0;
}

static int open_segment(struct wal *w, uint64_t start, char *err)
{
    char path[FS_PATH_MAX];
    segment_path(path, sizeof path, w->dir, start);
    w->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return ctrd_fail(err, CTRD_EIO, "cannot open %s: %s", path,
                         strerror(errno));
    struct stat st;
    if (fstat(w->fd, &st) != 0)
        return ctrd_fail(err, CTRD_EIO, "cannot stat %s", path);
    w->seg_start = start;
    w->seg_bytes = (uint64_t)st.st_size;
    return fs_fsync_dir(w->dir, err);
}

/* Replays segments[first..n) from `from`; cuts a torn tail off the last. */
static int replay(struct wal *w, const uint64_t *starts, size_t n,
                  size_t first, uint64_t from,
                  int (*fn)(void *, const struct wal_record *), void *ctx,
                  char *err)
{
    for (size_t i = first; i < n; i++) {
        char path[FS_PATH_MAX];
        segment_path(path, sizeof path, w->dir, starts[i]);
        void *map;
        size_t size, good_end;
        int rc = fs_map_file(path, &map, &size, err);
        if (rc != 0)
            return rc;
        size_t offset = from > starts[i] ? (size_t)(from - starts[i]) : 0;
        if (offset > size) {
            fs_unmap(map, size);
            return ctrd_fail(err, CTRD_ECORRUPT, "%s: shorter than the "
                             "checkpoint's log position", path);
        }
        rc = replay_segment(map, size, offset, fn, ctx, &good_end);
        fs_unmap(map, size);
        if (rc != 0)
            return ctrd_fail(err, rc, "replaying %s: %s", path,
                             ctrd_strerror(rc));
        if (good_end == size)
            continue;
        if (i + 1 < n)
            return ctrd_fail(err, CTRD_ECORRUPT, "%s: bad record at byte %zu",
                             path, good_end);
        if (truncate(path, (off_t)good_end) != 0)
            return ctrd_fail(err, CTRD_EIO, "cannot truncate %s: %s", path,
                             strerror(errno));
    }
    return 0;
}

int wal_open(const char *dir, uint64_t from,
             int (*fn)(void *ctx, const struct wal_record *r), void *ctx,
             struct wal **out, char *err)
{
    struct wal *w = calloc(1, sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    w->fd = -1;
    snprintf(w->dir, sizeof w->dir, "%s/wal", dir);
    uint64_t *starts = NULL;
    size_t n = 0, first = 0;
    int rc = fs_mkdirs(w->dir, err);
    if (rc == 0)
        rc = list_segments(w->dir, &starts, &n, err);
    while (rc == 0 && first + 1 < n && starts[first + 1] <= from)
        first++;
    if (rc == 0 && n > 0 && starts[first] > from)
        rc = ctrd_fail(err, CTRD_ECORRUPT, "%s: the log before position %"
                       PRIu64 " is missing", w->dir, from);
    if (rc == 0)
        rc = replay(w, starts, n, first, from, fn, ctx, err);
    if (rc == 0)
        rc = open_segment(w, n ? starts[n - 1] : from, err);
    free(starts);
    if (rc != 0) {
        wal_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

int wal_append(struct wal *w, const struct wal_record *r, char *err)
{
    if (r->len >= WAL_PAYLOAD_MAX)
        return ctrd_fail(err, CTRD_EINVAL, "log record too large");
    unsigned char h[WAL_HEADER_BYTES] = {0};
    uint32_t len = (uint32_t)r->len;
    memcpy(h, &len, 4);
    h[8] = r->kind;
    h[9] = r->format;
    h[10] = r->source;
    memcpy(h + 12, &r->now_ms, 8);
    memcpy(h + 20, &r->source_dev, 8);
    memcpy(h + 28, &r->source_ino, 8);
    memcpy(h + 36, &r->source_offset, 8);
    uint32_t crc = record_crc(h + 8, r->payload, r->len);
    memcpy(h + 4, &crc, 4);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)r->payload, r->len}};
    size_t want = sizeof h + r->len, done = 0;
    while (done < want) {
        ssize_t k = writev(w->fd, iov, 2);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return ctrd_fail(err, CTRD_EIO, "cannot write the log: %s",
                             strerror(errno));
        done += (size_t)k;
        for (int i = 0; i < 2; i++) {
            size_t take = (size_t)k < iov[i].iov_len ? (size_t)k
                                                      : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            k -= (ssize_t)take;
        }
    }
    w->seg_bytes += want;
    return 0;
}

int wal_sync(struct wal *w, char *err)
{
    if (fdatasync(w->fd) != 0)
        return ctrd_fail(err, CTRD_EIO, "cannot sync the log: %s",
                         strerror(errno));
    return 0;
}

uint64_t wal_position(const struct wal *w)
{
    return w->seg_start + w->seg_bytes;
}

int wal_trim(struct wal *w, uint64_t keep_from, char *err)
{
    if (w->seg_bytes > 0) {
        if (wal_sync(w, err) != 0)
            return CTRD_EIO;
        close(w->fd);
        w->fd = -1;
        int rc = open_segment(w, wal_position(w), err);
        if (rc != 0)
            return rc;
    }
    uint64_t *starts;
    size_t n;
    int rc = list_segments(w->dir, &starts, &n, err);
    for (size_t i = 0; rc == 0 && i + 1 < n && starts[i + 1] <= keep_from;
         i++) {
        char path[FS_PATH_MAX];
        segment_path(path, sizeof path, w->dir, starts[i]);
        unlink(path);
    }
    free(starts);
    return rc;
}
