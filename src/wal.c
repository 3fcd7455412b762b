/* wal: the write-ahead log; see wal.h.
 *
 * SCAN. Opening, checking and cutting all read the log the same way
 * (scan_log): find the segment holding the checkpoint's position, then walk
 * the records of it and of every later segment, checking each segment's
 * header and that each begins where the one before ends. At the first
 * record that fails its checks, the rest of its segment is searched for
 * valid records by their magic. The bad record was durable (acknowledged),
 * so it is damage and not a torn tail, when it lies before the position
 * the SYNCED FILE says was durable, or before the synced field of any
 * valid record after it. */
#include "wal.h"

#include "crc32c.h"
#include "fsutil.h"
#include "grow.h"

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

#define WAL_SEG_MAGIC_BYTES "CTRDWAL2"
#define WAL_REC_MAGIC_VALUE UINT32_C(0x5ec0d1a7)
#define WAL_PAYLOAD_MAX (UINT32_C(1) << 31)
#define WAL_NAME_LEN 20 /* 16 hex digits and ".log" */
#define WAL_SYNCED_NAME "synced"

struct wal {
    char dir[FS_PATH_MAX - 32]; /* room for "/<16 hex>.log.tmp" */
    int fd;
    uint64_t seg_start; /* position of the open segment's first byte */
    uint64_t seg_bytes; /* bytes in it, header included */
    uint64_t synced;    /* the log is durable up to this position */
    int unrolled;       /* a failed write left bytes after `synced` */
    int synced_fd;      /* the SYNCED FILE */
};

/* The segments of a log directory. */
struct segments {
    uint64_t *start; /* ascending */
    size_t n;
};

/* What a scan found. The log is good up to `end`; at most one of a torn
 * tail (torn_bytes > 0) and damage (damage[0]) follows. */
struct scan {
    struct segments segs;
    uint64_t first;      /* segment index where the scan began */
    uint64_t end;        /* position after the last good record */
    uint64_t end_seg;    /* index of the segment that holds `end` */
    uint64_t records;    /* good records scanned */
    uint64_t durable;    /* what the SYNCED FILE says (0: nothing) */
    int strict;          /* every bad record is damage (no torn tail) */
    int synced_bad;      /* strict: the SYNCED FILE is damaged */
    uint64_t torn_bytes; /* cut from `end` to the end of the last segment */
    int torn_durable;    /* the SYNCED FILE says it was durable */
    char damage[CTRD_ERR_LEN];
    uint64_t damage_at; /* position: the log is good before it */
    uint64_t after_records, after_bytes; /* valid records, bytes from there */
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

/* Whether name is a segment's ("<16 hex>.log"); its start in *start. */
static int segment_name(const char *name, uint64_t *start)
{
    if (strlen(name) != WAL_NAME_LEN || strcmp(name + 16, ".log") != 0 ||
        strspn(name, "0123456789abcdef") != 16)
        return 0;
    *start = strtoull(name, NULL, 16);
    return 1;
}

static int list_segments(const char *dir, struct segments *s, char *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return ctrd_fail(err, errno == ENOENT ? CTRD_ENOTFOUND : CTRD_EIO,
                         "cannot read %s: %s", dir, strerror(errno));
    s->start = NULL;
    s->n = 0;
    size_t cap = 0;
    struct dirent *de;
    uint64_t start;
    while ((de = readdir(d)) != NULL) {
        if (!segment_name(de->d_name, &start))
            continue;
        if (grow(&s->start, &cap, s->n + 1, sizeof *s->start, 16) != 0) {
            free(s->start);
            closedir(d);
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
        }
        s->start[s->n++] = start;
    }
    closedir(d);
    if (s->n)
        qsort(s->start, s->n, sizeof *s->start, u64_cmp);
    return 0;
}

static void segment_header(unsigned char h[WAL_SEG_HEADER_BYTES],
                           uint64_t start)
{
    memset(h, 0, WAL_SEG_HEADER_BYTES);
    memcpy(h + WAL_SEG_MAGIC, WAL_SEG_MAGIC_BYTES, 8);
    memcpy(h + WAL_SEG_START, &start, 8);
    uint32_t crc = crc32c(0, h, WAL_SEG_CRC);
    memcpy(h + WAL_SEG_CRC, &crc, 4);
}

/* Creates a segment holding only its header, atomically. */
static int create_segment(const char *dir, uint64_t start, char *err)
{
    unsigned char h[WAL_SEG_HEADER_BYTES];
    char name[WAL_NAME_LEN + 1];
    segment_header(h, start);
    snprintf(name, sizeof name, "%016" PRIx64 ".log", start);
    return fs_replace_file(dir, name, h, sizeof h, err);
}

/* ---- records ---- */

static uint32_t record_crc(const unsigned char *h, const char *payload,
                           size_t len)
{
    uint32_t crc =
        crc32c(0, h + WAL_REC_LEN, WAL_REC_HEADER_BYTES - WAL_REC_LEN);
    return crc32c(crc, payload, len);
}

/* Decodes the record at p[off..size): its size, or 0 when it fails its
 * checks. */
static size_t record_at(const unsigned char *p, size_t size, size_t off,
                        struct wal_record *r, uint64_t *synced)
{
    if (size - off < WAL_REC_HEADER_BYTES)
        return 0;
    const unsigned char *h = p + off;
    uint32_t magic, crc, len;
    memcpy(&magic, h + WAL_REC_MAGIC, 4);
    memcpy(&crc, h + WAL_REC_CRC, 4);
    memcpy(&len, h + WAL_REC_LEN, 4);
    if (magic != WAL_REC_MAGIC_VALUE || len >= WAL_PAYLOAD_MAX ||
        len > size - off - WAL_REC_HEADER_BYTES ||
        record_crc(h, (const char *)h + WAL_REC_HEADER_BYTES, len) != crc)
        return 0;
    *r = (struct wal_record){.kind = h[WAL_REC_KIND],
                             .format = h[WAL_REC_FORMAT],
                             .source = h[WAL_REC_SOURCE],
                             .payload = (const char *)h + WAL_REC_HEADER_BYTES,
                             .len = len};
    memcpy(&r->now_ms, h + WAL_REC_NOW, 8);
    memcpy(&r->source_dev, h + WAL_REC_DEV, 8);
    memcpy(&r->source_ino, h + WAL_REC_INO, 8);
    memcpy(&r->source_offset, h + WAL_REC_OFFSET, 8);
    memcpy(synced, h + WAL_REC_SYNCED, 8);
    return WAL_REC_HEADER_BYTES + len;
}

/* Whether the record at p[off..size) ends past the end of the file: its
 * header cut, or a payload longer than what follows it. */
static int cut_short(const unsigned char *p, size_t size, size_t off)
{
    uint32_t magic, len;
    if (size - off < WAL_REC_HEADER_BYTES)
        return 1;
    memcpy(&magic, p + off + WAL_REC_MAGIC, 4);
    memcpy(&len, p + off + WAL_REC_LEN, 4);
    return magic == WAL_REC_MAGIC_VALUE && len < WAL_PAYLOAD_MAX &&
           len > size - off - WAL_REC_HEADER_BYTES;
}

/* Counts the valid records of p[off..size), found by their magic; sets
 * *durable when one says the log was durable past position `past`. */
static uint64_t count_valid(const unsigned char *p, size_t size, size_t off,
                            uint64_t past, int *durable)
{
    static const uint32_t magic = WAL_REC_MAGIC_VALUE;
    uint64_t n = 0;
    while (off < size) {
        const unsigned char *m = memmem(p + off, size - off, &magic, 4);
        if (!m)
            break;
        off = (size_t)(m - p);
        struct wal_record r;
        uint64_t synced;
        size_t k = record_at(p, size, off, &r, &synced);
        if (k == 0) {
            off++;
            continue;
        }
        n++;
        if (synced > past)
            *durable = 1;
        off += k;
    }
    return n;
}

/* ---- the synced file ---- */

static void synced_record(unsigned char rec[WAL_SYNCED_BYTES], uint64_t pos)
{
    memset(rec, 0, WAL_SYNCED_BYTES);
    memcpy(rec + WAL_SYNCED_POSITION, &pos, 8);
    uint32_t crc = crc32c(0, rec, WAL_SYNCED_CRC);
    memcpy(rec + WAL_SYNCED_CRC, &crc, 4);
}

/* Reads the SYNCED FILE of dir into *durable (0 when there is none). */
static int read_synced(const char *dir, uint64_t *durable, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/" WAL_SYNCED_NAME, dir);
    void *map;
    size_t size;
    *durable = 0;
    int rc = fs_map_file(path, &map, &size, err);
    if (rc == CTRD_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    unsigned char want[WAL_SYNCED_BYTES];
    uint64_t pos = 0;
    if (size == WAL_SYNCED_BYTES)
        memcpy(&pos, (const char *)map + WAL_SYNCED_POSITION, 8);
    synced_record(want, pos);
    rc = size == WAL_SYNCED_BYTES && memcmp(map, want, size) == 0
             ? 0
             : ctrd_fail(err, CTRD_ECORRUPT, "%s: offset 0: damaged", path);
    fs_unmap(map, size);
    *durable = pos;
    return rc;
}

/* Records that the log is durable up to pos. Not synced itself: after a
 * crash it may say less than was durable, never more. A failed write only
 * leaves it saying less. */
static void write_synced(int fd, uint64_t pos)
{
    unsigned char rec[WAL_SYNCED_BYTES];
    synced_record(rec, pos);
    if (pwrite(fd, rec, sizeof rec, 0) != (ssize_t)sizeof rec)
        return;
}

static int open_synced(const char *dir, int *fd, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/" WAL_SYNCED_NAME, dir);
    *fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    return *fd < 0 ? ctrd_fail(err, CTRD_EIO, "cannot open %s: %s", path,
                               strerror(errno))
                   : 0;
}

/* ---- scanning ---- */

static int map_segment(const char *dir, uint64_t start, void **map,
                       size_t *size, char *path, char *err)
{
    segment_path(path, FS_PATH_MAX, dir, start);
    int rc = fs_map_file(path, map, size, err);
    if (rc == CTRD_ENOTFOUND)
        return ctrd_fail(err, CTRD_EIO, "%s: vanished while read", path);
    return rc;
}

/* Notes damage at position at (the file and offset it is in). */
static void note_damage(struct scan *sc, uint64_t at, const char *path,
                        size_t offset, const char *what)
{
    sc->damage_at = at;
    ctrd_fail(sc->damage, CTRD_ECORRUPT, "%s: offset %zu: %s", path, offset,
              what);
}

/* Adds the valid records and bytes of segments [from, n) to what follows
 * the damage. */
static int count_after(const char *dir, struct scan *sc, size_t from, char *err)
{
    for (size_t i = from; i < sc->segs.n; i++) {
        char path[FS_PATH_MAX];
        void *map;
        size_t size;
        int durable = 0,
            rc = map_segment(dir, sc->segs.start[i], &map, &size, path, err);
        if (rc != 0)
            return rc;
        sc->after_bytes += size;
        sc->after_records += count_valid(map, size, 0, 0, &durable);
        fs_unmap(map, size);
    }
    return 0;
}

/* Checks a segment's header; what is wrong, or NULL. */
static const char *header_fault(const unsigned char *p, size_t size,
                                uint64_t start)
{
    uint64_t got;
    uint32_t crc;
    if (size < WAL_SEG_HEADER_BYTES)
        return "shorter than its header";
    memcpy(&got, p + WAL_SEG_START, 8);
    memcpy(&crc, p + WAL_SEG_CRC, 4);
    if (memcmp(p + WAL_SEG_MAGIC, WAL_SEG_MAGIC_BYTES, 8) != 0 ||
        crc32c(0, p, WAL_SEG_CRC) != crc)
        return "segment header damaged";
    if (got != start)
        return "segment header names another position than its file name";
    return NULL;
}

/* Walks the records of one mapped segment from offset off (replaying them
 * through fn when given). Returns 0 with the scan updated, or fn's error. */
static int scan_segment(const char *path, const unsigned char *p, size_t size,
                        size_t off, size_t i, int has_from,
                        int (*fn)(void *, const struct wal_record *), void *ctx,
                        struct scan *sc)
{
    uint64_t start = sc->segs.start[i];
    while (off < size) {
        struct wal_record r;
        uint64_t synced;
        size_t k = record_at(p, size, off, &r, &synced);
        if (k && !has_from) {
            note_damage(sc, start + off, path, off,
                        "a record, but the MANIFEST names no log position");
            sc->after_bytes = size - off;
            return 0;
        }
        if (k == 0) {
            int synced_past = start + off < sc->durable, durable = synced_past;
            uint64_t valid =
                count_valid(p, size, off + 1, start + off, &durable);
            if (i + 1 == sc->segs.n && !sc->strict &&
                (valid ? !durable : !synced_past || cut_short(p, size, off))) {
                sc->torn_bytes = size - off;
                sc->torn_durable = synced_past;
                break;
            }
            note_damage(sc, start + off, path, off,
                        valid ? "a record fails its checks, and intact "
                                "records follow it"
                              : "a record fails its checks");
            sc->after_records = valid;
            sc->after_bytes = size - off;
            return 0;
        }
        if (fn) {
            int rc = fn(ctx, &r);
            if (rc != 0)
                return rc;
        }
        sc->records++;
        off += k;
    }
    sc->end = start + off;
    sc->end_seg = i;
    return 0;
}

/* Reads the log of dir from *from (NULL: none named); see struct scan.
 * Strict (the operator's cut): every bad record is damage, and a damaged
 * SYNCED FILE is not (it is rewritten). */
static int scan_log(const char *dir, const uint64_t *from, int strict,
                    int (*fn)(void *, const struct wal_record *), void *ctx,
                    struct scan *sc, char *err)
{
    *sc = (struct scan){.strict = strict};
    int rc = list_segments(dir, &sc->segs, err);
    if (rc == CTRD_ENOTFOUND && from)
        rc = 0; /* no log directory: the position named is missing */
    if (rc == 0)
        rc = read_synced(dir, &sc->durable, err);
    if (rc == CTRD_ECORRUPT && !strict) {
        ctrd_fail(sc->damage, rc, "%s", err);
        return 0;
    }
    sc->synced_bad = rc == CTRD_ECORRUPT;
    if (rc != 0 && !sc->synced_bad)
        return rc;
    rc = 0;
    const struct segments *s = &sc->segs;
    /* Without a position the log must hold no record: read all of it. */
    uint64_t pos = from ? *from : s->n ? s->start[0] : 0;
    size_t first = 0;
    while (first + 1 < s->n && s->start[first + 1] <= pos)
        first++;
    sc->first = first;
    sc->end = pos;
    if (s->n == 0 || s->start[first] > pos) {
        if (from)
            ctrd_fail(sc->damage, CTRD_ECORRUPT,
                      "%s: the log from position "
                      "%" PRIu64 " (the MANIFEST's) is missing: %s",
                      dir, pos,
                      s->n ? "its first segment starts later" : "no segment");
        sc->damage_at = pos;
        return from ? count_after(dir, sc, first, err) : 0;
    }
    for (size_t i = first; rc == 0 && i < s->n; i++) {
        char path[FS_PATH_MAX];
        void *map;
        size_t size, off;
        const char *fault;
        if ((rc = map_segment(dir, s->start[i], &map, &size, path, err)) != 0)
            break;
        if (i > first && s->start[i] != sc->end) {
            ctrd_fail(sc->damage, CTRD_ECORRUPT,
                      "%s: log positions %" PRIu64 "..%" PRIu64
                      " are missing (a segment deleted or cut "
                      "short?)",
                      dir, sc->end, s->start[i] - 1);
            sc->damage_at = sc->end;
        } else if ((fault = header_fault(map, size, s->start[i])) != NULL) {
            note_damage(sc, s->start[i], path, 0, fault);
        } else if ((off = (size_t)(i == first ? pos - s->start[i] : 0)) >
                   size) {
            note_damage(sc, s->start[i] + size, path, size,
                        "the segment ends before the MANIFEST's log "
                        "position");
        } else {
            if (off < WAL_SEG_HEADER_BYTES)
                off = WAL_SEG_HEADER_BYTES;
            rc = scan_segment(path, map, size, off, i, from != NULL, fn, ctx,
                              sc);
        }
        fs_unmap(map, size);
        if (rc == 0 && (sc->damage[0] || sc->torn_bytes))
            return sc->damage[0]
                       ? count_after(dir, sc, i + (sc->damage_at > s->start[i]),
                                     err)
                       : 0;
    }
    return rc;
}

/* ---- opening and appending ---- */

/* Opens segment start for appending after what it holds (all of it
 * durable from now on). */
static int open_for_append(struct wal *w, uint64_t start, char *err)
{
    char path[FS_PATH_MAX];
    segment_path(path, sizeof path, w->dir, start);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || fdatasync(fd) != 0) {
        int rc = ctrd_fail(err, CTRD_EIO, "cannot open %s: %s", path,
                           strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->seg_start = start;
    w->seg_bytes = (uint64_t)st.st_size;
    w->synced = start + w->seg_bytes;
    write_synced(w->synced_fd, w->synced);
    return 0;
}

/* Cuts the torn tail the scan found off the last segment. */
static int cut_torn_tail(const char *dir, const struct scan *sc, char *note,
                         char *err)
{
    char path[FS_PATH_MAX];
    uint64_t start = sc->segs.start[sc->end_seg];
    segment_path(path, sizeof path, dir, start);
    if (truncate(path, (off_t)(sc->end - start)) != 0)
        return ctrd_fail(err, CTRD_EIO, "cannot cut the torn tail of %s: %s",
                         path, strerror(errno));
    ctrd_fail(note, 0,
              "%s: cut a torn tail of %" PRIu64 " bytes at offset "
              "%" PRIu64 " (%s)",
              path, sc->torn_bytes, sc->end - start,
              sc->torn_durable ? "WARNING: a record cut short that the log's "
                                 "synced file says was durable: the disk lost "
                                 "acknowledged records"
                               : "an append a crash interrupted, never "
                                 "acknowledged");
    return 0;
}

int wal_open(const char *dir, const uint64_t *from,
             int (*fn)(void *ctx, const struct wal_record *r), void *ctx,
             char *note, struct wal **out, char *err)
{
    struct wal *w = calloc(1, sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    w->fd = w->synced_fd = -1;
    note[0] = '\0';
    snprintf(w->dir, sizeof w->dir, "%s/wal", dir);
    struct scan sc = {0};
    /* Only a log no checkpoint names yet is created: a missing one that a
     * checkpoint names is damage, refused with nothing created. */
    int rc = from ? 0 : fs_mkdirs(w->dir, err);
    if (rc == 0)
        rc = scan_log(w->dir, from, 0, fn, ctx, &sc, err);
    if (rc == 0 && sc.damage[0])
        rc = ctrd_fail(err, CTRD_ECORRUPT, "%s", sc.damage);
    if (rc == 0 && sc.torn_bytes)
        rc = cut_torn_tail(w->dir, &sc, note, err);
    if (rc == 0 && sc.segs.n == 0)
        rc = create_segment(w->dir, 0, err);
    if (rc == 0)
        rc = open_synced(w->dir, &w->synced_fd, err);
    if (rc == 0)
        rc = open_for_append(w, sc.segs.n ? sc.segs.start[sc.end_seg] : 0, err);
    free(sc.segs.start);
    if (rc == 0)
        *out = w;
    else
        wal_close(w);
    return rc;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->synced_fd >= 0)
        close(w->synced_fd);
    free(w);
}

int wal_rollback(struct wal *w, char *err)
{
    if (ftruncate(w->fd, (off_t)(w->synced - w->seg_start)) != 0 ||
        fdatasync(w->fd) != 0) {
        w->unrolled = 1;
        return ctrd_fail(err, CTRD_EIO,
                         "cannot roll the log back to its "
                         "last sync: %s",
                         strerror(errno));
    }
    w->unrolled = 0;
    w->seg_bytes = w->synced - w->seg_start;
    return 0;
}

/* Fails a write of the log: rolls back, keeps the first error's text. */
static int write_failed(struct wal *w, const char *what, int saved, char *err)
{
    int rc = ctrd_fail(err, CTRD_EIO, "cannot %s the log: %s", what,
                       strerror(saved));
    char ignored[CTRD_ERR_LEN];
    wal_rollback(w, ignored);
    return rc;
}

int wal_append(struct wal *w, const struct wal_record *r, char *err)
{
    if (r->len >= WAL_PAYLOAD_MAX)
        return ctrd_fail(err, CTRD_EINVAL, "log record too large");
    if (w->unrolled && wal_rollback(w, err) != 0)
        return CTRD_EIO;
    unsigned char h[WAL_REC_HEADER_BYTES] = {0};
    uint32_t magic = WAL_REC_MAGIC_VALUE, len = (uint32_t)r->len;
    memcpy(h + WAL_REC_MAGIC, &magic, 4);
    memcpy(h + WAL_REC_LEN, &len, 4);
    h[WAL_REC_KIND] = r->kind;
    h[WAL_REC_FORMAT] = r->format;
    h[WAL_REC_SOURCE] = r->source;
    memcpy(h + WAL_REC_NOW, &r->now_ms, 8);
    memcpy(h + WAL_REC_DEV, &r->source_dev, 8);
    memcpy(h + WAL_REC_INO, &r->source_ino, 8);
    memcpy(h + WAL_REC_OFFSET, &r->source_offset, 8);
    memcpy(h + WAL_REC_SYNCED, &w->synced, 8);
    uint32_t crc = record_crc(h, r->payload, r->len);
    memcpy(h + WAL_REC_CRC, &crc, 4);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)r->payload, r->len}};
    size_t want = sizeof h + r->len, done = 0;
    while (done < want) {
        ssize_t k = writev(w->fd, iov, 2);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return write_failed(w, "write", k < 0 ? errno : ENOSPC, err);
        done += (size_t)k;
        w->seg_bytes += (uint64_t)k;
        for (int i = 0; i < 2; i++) {
            size_t take =
                (size_t)k < iov[i].iov_len ? (size_t)k : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + take;
            iov[i].iov_len -= take;
            k -= (ssize_t)take;
        }
    }
    return 0;
}

int wal_sync(struct wal *w, char *err)
{
    if (w->unrolled)
        return ctrd_fail(err, CTRD_EIO,
                         "the log holds bytes it could not "
                         "roll back");
    if (fdatasync(w->fd) != 0)
        return write_failed(w, "sync", errno, err);
    w->synced = wal_position(w);
    write_synced(w->synced_fd, w->synced);
    return 0;
}

uint64_t wal_position(const struct wal *w)
{
    return w->seg_start + w->seg_bytes;
}

int wal_trim(struct wal *w, uint64_t keep_from, char *err)
{
    if (w->seg_bytes > WAL_SEG_HEADER_BYTES) {
        uint64_t pos = wal_position(w);
        int rc = wal_sync(w, err);
        if (rc == 0)
            rc = create_segment(w->dir, pos, err);
        if (rc == 0 && (rc = open_for_append(w, pos, err)) != 0) {
            char path[FS_PATH_MAX];
            segment_path(path, sizeof path, w->dir, pos);
            unlink(path); /* else it would sit amid the open segment */
        }
        if (rc != 0)
            return rc;
    }
    struct segments s;
    int rc = list_segments(w->dir, &s, err);
    for (size_t i = 0; rc == 0 && i + 1 < s.n && s.start[i + 1] <= keep_from;
         i++) {
        char path[FS_PATH_MAX];
        segment_path(path, sizeof path, w->dir, s.start[i]);
        unlink(path);
    }
    free(s.start);
    return rc;
}

/* ---- offline ---- */

int wal_check(const char *dir, const uint64_t *from,
              void (*report)(void *ctx, const char *line), void *ctx, char *err)
{
    char wal_dir[FS_PATH_MAX - 32], line[CTRD_ERR_LEN];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    struct scan sc;
    int rc = scan_log(wal_dir, from, 0, NULL, NULL, &sc, err);
    if (rc == CTRD_ENOTFOUND && !from)
        return 0; /* never served */
    if (rc == 0 && sc.damage[0]) {
        report(ctx, sc.damage);
        rc = CTRD_ECORRUPT;
    } else if (rc == 0 && sc.torn_bytes) {
        ctrd_fail(line, 0,
                  "%s: note: a torn tail of %" PRIu64 " bytes at "
                  "log position %" PRIu64 " (an interrupted append, never "
                  "acknowledged); the next start cuts it off",
                  wal_dir, sc.torn_bytes, sc.end);
        report(ctx, line);
    }
    free(sc.segs.start);
    return rc;
}

int wal_cut_at_damage(const char *dir, uint64_t from, char *summary, char *err)
{
    char wal_dir[FS_PATH_MAX - 32];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    summary[0] = '\0';
    struct scan sc;
    int rc = scan_log(wal_dir, &from, 1, NULL, NULL, &sc, err);
    if (rc != 0 || (!sc.damage[0] && !sc.synced_bad)) {
        free(sc.segs.start);
        return rc == CTRD_ENOTFOUND ? 0 : rc;
    }
    uint64_t cut = !sc.damage[0]         ? sc.end
                   : sc.damage_at > from ? sc.damage_at
                                         : from;
    /* Segments from the one holding the cut on go; the one holding it
     * keeps what is before the cut. */
    for (size_t i = 0; rc == 0 && i < sc.segs.n; i++) {
        char path[FS_PATH_MAX];
        uint64_t start = sc.segs.start[i];
        if (i + 1 < sc.segs.n && sc.segs.start[i + 1] <= cut)
            continue;
        segment_path(path, sizeof path, wal_dir, start);
        if (start < cut && truncate(path, (off_t)(cut - start)) != 0)
            rc = ctrd_fail(err, CTRD_EIO, "cannot cut %s: %s", path,
                           strerror(errno));
        else if (start >= cut && unlink(path) != 0)
            rc = ctrd_fail(err, CTRD_EIO, "cannot delete %s: %s", path,
                           strerror(errno));
    }
    if (rc == 0 && sc.damage[0] && cut == from) {
        struct segments s = {0};
        rc = fs_mkdirs(wal_dir, err);
        if (rc == 0)
            rc = list_segments(wal_dir, &s, err);
        if (rc == 0 && (s.n == 0 || s.start[s.n - 1] < from))
            rc = create_segment(wal_dir, from, err);
        free(s.start);
    }
    int fd;
    if (rc == 0 && (rc = open_synced(wal_dir, &fd, err)) == 0) {
        write_synced(fd, cut);
        close(fd);
    }
    if (rc == 0)
        rc = fs_fsync_dir(wal_dir, err);
    if (rc == 0 && sc.damage[0])
        ctrd_fail(summary, 0,
                  "dropped the log from position %" PRIu64 " on: %" PRIu64
                  " bytes, %" PRIu64 " intact records after "
                  "the damage (%s)",
                  cut, sc.after_bytes, sc.after_records, sc.damage);
    else if (rc == 0)
        ctrd_fail(summary, 0,
                  "%s/" WAL_SYNCED_NAME ": damaged; rewritten "
                  "(the log itself is intact, nothing dropped)",
                  wal_dir);
    free(sc.segs.start);
    return rc;
}
