/* fsutil: durable-file primitives; see fsutil.h. */
#include "fsutil.h"

#include "crc32c.h"
#include "grow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail_errno(char *err, const char *what, const char *path)
{
    int code = (errno == ENOENT)   ? CTRD_ENOTFOUND
               : (errno == ENOMEM) ? CTRD_ENOMEM
                                   : CTRD_EIO;
    return ctrd_fail(err, code, "%s %s: %s", what, path, strerror(errno));
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CTRD_EIO; /* errno says why */
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_writer_open(struct fs_writer *w, const char *path, enum fs_mode mode,
                   char *err)
{
    w->mode = mode;
    w->used = 0;
    w->written = 0;
    w->failed = 0;
    w->block_crc = 0;
    w->block_crcs = NULL;
    w->n_blocks = w->cap_blocks = 0;
    snprintf(w->path, sizeof w->path, "%s", path);
    int flags = mode == FS_APPEND ? O_APPEND : O_TRUNC;
    w->fd = open(path, O_WRONLY | O_CREAT | flags | O_CLOEXEC, 0644);
    if (w->fd < 0)
        return fail_errno(err, "cannot create", path);
    return 0;
}

static void writer_flush(struct fs_writer *w)
{
    if (!w->failed && w->used && write_all(w->fd, w->buf, w->used) != 0)
        w->failed = errno ? errno : EIO;
    w->used = 0;
}

static void writer_end_block(struct fs_writer *w)
{
    if (grow(&w->block_crcs, &w->cap_blocks, w->n_blocks + 1,
             sizeof *w->block_crcs, 64) != 0) {
        w->failed = ENOMEM;
        return;
    }
    w->block_crcs[w->n_blocks++] = w->block_crc;
    w->block_crc = 0;
}

/* Folds data into the block checksums of a sealed file. */
static void writer_checksum(struct fs_writer *w, const char *data, size_t len)
{
    while (len > 0) {
        size_t in_block = (size_t)(w->written % FS_BLOCK_BYTES);
        size_t take = FS_BLOCK_BYTES - in_block;
        if (take > len)
            take = len;
        w->block_crc = crc32c(w->block_crc, data, take);
        w->written += take;
        data += take;
        len -= take;
        if (w->written % FS_BLOCK_BYTES == 0)
            writer_end_block(w);
    }
}

void fs_writer_put(struct fs_writer *w, const void *data, size_t len)
{
    if (w->mode == FS_SEALED)
        writer_checksum(w, data, len);
    else
        w->written += len;
    if (len >= sizeof w->buf) {
        writer_flush(w);
        if (!w->failed && write_all(w->fd, data, len) != 0)
            w->failed = errno ? errno : EIO;
        return;
    }
    if (w->used + len > sizeof w->buf)
        writer_flush(w);
    memcpy(w->buf + w->used, data, len);
    w->used += len;
}

int fs_writer_close(struct fs_writer *w, int sync, char *err)
{
    writer_flush(w);
    if (!w->failed && sync && fdatasync(w->fd) != 0)
        w->failed = errno;
    if (close(w->fd) != 0 && !w->failed)
        w->failed = errno;
    w->fd = -1;
    free(w->block_crcs);
    w->block_crcs = NULL;
    if (w->failed) {
        errno = w->failed;
        return fail_errno(err, "cannot write", w->path);
    }
    return 0;
}

/* The trailer's checksum over the block CRCs and the footer's first
 * FS_FOOTER_CRC bytes. */
static uint32_t trailer_crc(const void *block_crcs, size_t n_blocks,
                            const unsigned char *footer)
{
    uint32_t crc = crc32c(0, block_crcs, 4 * n_blocks);
    return crc32c(crc, footer, FS_FOOTER_CRC);
}

int fs_writer_seal(struct fs_writer *w, struct fs_seal *seal, char *err)
{
    uint64_t content_len = w->written;
    if (content_len % FS_BLOCK_BYTES)
        writer_end_block(w);
    size_t n_blocks = w->n_blocks;
    uint32_t *crcs = w->block_crcs;
    w->mode = FS_TRUNCATE; /* the trailer is not content */
    unsigned char footer[FS_FOOTER_BYTES];
    uint32_t block_bytes = FS_BLOCK_BYTES;
    memcpy(footer + FS_FOOTER_CONTENT_LEN, &content_len, 8);
    memcpy(footer + FS_FOOTER_BLOCK_BYTES, &block_bytes, 4);
    uint32_t crc = trailer_crc(crcs, crcs ? n_blocks : 0, footer);
    memcpy(footer + FS_FOOTER_CRC, &crc, 4);
    memcpy(footer + FS_FOOTER_MAGIC, FS_SEAL_MAGIC, 8);
    if (crcs)
        fs_writer_put(w, crcs, 4 * n_blocks);
    fs_writer_put(w, footer, sizeof footer);
    *seal = (struct fs_seal){content_len + 4 * n_blocks + FS_FOOTER_BYTES, crc};
    return fs_writer_close(w, 1, err);
}

int fs_fsync_dir(const char *dir, char *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(err, "cannot open directory", dir);
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0) {
        errno = saved;
        return fail_errno(err, "cannot fsync directory", dir);
    }
    return 0;
}

int fs_write_file(const char *path, enum fs_mode mode, fs_put_fn *put,
                  void *ctx, struct fs_seal *seal, char *err)
{
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory writing %s", path);
    int rc = fs_writer_open(w, path, mode, err);
    int put_rc = rc == 0 ? put(w, ctx) : 0;
    if (put_rc != 0) {
        fs_writer_close(w, 0, NULL); /* left unsealed */
        rc = put_rc;
    } else if (rc == 0) {
        rc = mode == FS_SEALED ? fs_writer_seal(w, seal, err)
                               : fs_writer_close(w, 1, err);
    }
    free(w);
    return rc;
}

struct bytes_view {
    const void *data;
    size_t len;
};

static int put_bytes(struct fs_writer *w, void *ctx)
{
    const struct bytes_view *b = ctx;
    fs_writer_put(w, b->data, b->len);
    return 0;
}

int fs_replace_file(const char *dir, const char *name, const void *data,
                    size_t len, char *err)
{
    char tmp[FS_PATH_MAX], final[FS_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    struct bytes_view b = {data, len};
    int rc = fs_write_file(tmp, FS_TRUNCATE, put_bytes, &b, NULL, err);
    if (rc != 0)
        return rc;
    if (rename(tmp, final) != 0)
        return fail_errno(err, "cannot rename", tmp);
    return fs_fsync_dir(dir, err);
}

int fs_read_file(const char *path, char **data, size_t *len, char *err)
{
    void *map;
    size_t n;
    int rc = fs_map_file(path, &map, &n, err);
    if (rc != 0)
        return rc;
    char *buf = malloc(n + 1);
    if (!buf) {
        fs_unmap(map, n);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory reading %s", path);
    }
    if (n)
        memcpy(buf, map, n);
    buf[n] = '\0';
    fs_unmap(map, n);
    *data = buf;
    *len = n;
    return 0;
}

/* Maps len bytes of fd read-only one page past a FS_FOLIO_MAX boundary,
 * so that no folio of that size fits a page table of the mapping: Linux
 * 6.18 maps a page-cache folio whole on a read fault when it fits one,
 * and a file written in big pieces (a run) is held in 2 MiB folios, so
 * one byte read mapped 2 MiB; one page off, a read maps the kernel's
 * fault-around window (64 KiB by default) and the process's RSS follows
 * what it reads (10 random bytes of a 70 MB run: 1.5 MiB each aligned,
 * 70 KiB each so). The room is reserved first and the file mapped over
 * it, so no other thread's mapping can take it meanwhile. */
static void *map_off_folio(int fd, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = len + FS_FOLIO_MAX + page;
    char *room = mmap(NULL, span, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (room == MAP_FAILED)
        return MAP_FAILED;
    char *at = (char *)(((uintptr_t)room + FS_FOLIO_MAX - 1) &
                        ~(uintptr_t)(FS_FOLIO_MAX - 1)) +
               page;
    char *end = at + ((len + page - 1) & ~(page - 1));
    void *m = mmap(at, len, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    if (m == MAP_FAILED) {
        munmap(room, span);
        return MAP_FAILED;
    }
    munmap(room, (size_t)(at - room));
    if (end < room + span)
        munmap(end, (size_t)(room + span - end));
    return m;
}

int fs_map_file(const char *path, void **map, size_t *len, char *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(err, "cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = fail_errno(err, "cannot stat", path);
        close(fd);
        return rc;
    }
    *len = (size_t)st.st_size;
    *map = NULL;
    if (st.st_size > 0) {
        void *m = map_off_folio(fd, *len);
        if (m == MAP_FAILED) {
            int rc = fail_errno(err, "cannot map", path);
            close(fd);
            return rc;
        }
        *map = m;
    }
    close(fd);
    return 0;
}

void fs_unmap(void *map, size_t len)
{
    if (map)
        munmap(map, len);
}

void fs_map_release(const void *map, size_t map_len, size_t off, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t end = off + len < map_len ? off + len : map_len;
    size_t from = off & ~(page - 1), to = (end + page - 1) & ~(page - 1);
    if (map && to > from)
        madvise((char *)map + from, to - from, MADV_DONTNEED);
}

/* Checks the trailer of a mapped sealed file; *content_len on success. */
static int check_trailer(const char *path, const unsigned char *p, size_t size,
                         size_t *content_len, uint32_t *crc, char *err)
{
    if (size < FS_FOOTER_BYTES)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: %zu bytes, too short for "
                         "its checksum trailer (truncated?)",
                         path, size);
    const unsigned char *footer = p + size - FS_FOOTER_BYTES;
    size_t at = size - FS_FOOTER_BYTES;
    if (memcmp(footer + FS_FOOTER_MAGIC, FS_SEAL_MAGIC, 8) != 0)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: no checksum trailer at "
                         "offset %zu (truncated, or not written by ctrd)",
                         path, at);
    uint64_t len;
    uint32_t block_bytes;
    memcpy(&len, footer + FS_FOOTER_CONTENT_LEN, 8);
    memcpy(&block_bytes, footer + FS_FOOTER_BLOCK_BYTES, 4);
    memcpy(crc, footer + FS_FOOTER_CRC, 4);
    uint64_t n_blocks = (len + FS_BLOCK_BYTES - 1) / FS_BLOCK_BYTES;
    if (block_bytes != FS_BLOCK_BYTES || len > size ||
        len + 4 * n_blocks + FS_FOOTER_BYTES != size)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: checksum trailer at "
                         "offset %zu does not fit the file's %zu bytes",
                         path, at, size);
    if (trailer_crc(p + len, n_blocks, footer) != *crc)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: checksum table at offset "
                         "%zu is damaged",
                         path, (size_t)len);
    *content_len = (size_t)len;
    return 0;
}

/* Checks every block of the content against its CRC, releasing the
 * pages read every FS_FOLIO_MAX (the check reads them all; the caller
 * reads again what it needs). */
static int check_blocks(const char *path, const unsigned char *p,
                        size_t content_len, char *err)
{
    const unsigned char *table = p + content_len;
    size_t released = 0;
    for (size_t off = 0, i = 0; off < content_len; off += FS_BLOCK_BYTES, i++) {
        size_t n = content_len - off < FS_BLOCK_BYTES ? content_len - off
                                                      : FS_BLOCK_BYTES;
        uint32_t want;
        memcpy(&want, table + 4 * i, 4);
        if (crc32c(0, p + off, n) != want)
            return ctrd_fail(err, CTRD_ECORRUPT,
                             "%s: bytes %zu..%zu fail "
                             "their checksum",
                             path, off, off + n - 1);
        if (off + n - released >= FS_FOLIO_MAX || off + n == content_len) {
            fs_map_release(p, content_len, released, off + n - released);
            released = off + n;
        }
    }
    return 0;
}

int fs_map_sealed(const char *path, const struct fs_seal *expect, void **map,
                  size_t *map_len, size_t *content_len, char *err)
{
    int rc = fs_map_file(path, map, map_len, err);
    if (rc == CTRD_ENOTFOUND)
        return ctrd_fail(err, rc, "%s: missing", path);
    if (rc != 0)
        return rc;
    uint32_t crc = 0;
    if (expect && expect->bytes != *map_len)
        rc = ctrd_fail(err, CTRD_ECORRUPT,
                       "%s: %zu bytes, the MANIFEST "
                       "recorded %llu (truncated or replaced)",
                       path, *map_len, (unsigned long long)expect->bytes);
    if (rc == 0)
        rc = check_trailer(path, *map, *map_len, content_len, &crc, err);
    if (rc == 0 && expect && expect->crc != crc)
        rc = ctrd_fail(err, CTRD_ECORRUPT,
                       "%s: checksum %08x, the MANIFEST "
                       "recorded %08x (replaced by another file?)",
                       path, crc, expect->crc);
    if (rc == 0)
        rc = check_blocks(path, *map, *content_len, err);
    if (rc != 0) {
        fs_unmap(*map, *map_len);
        *map = NULL;
    }
    return rc;
}

int fs_mkdirs(const char *dir, char *err)
{
    char path[FS_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof path)
        return ctrd_fail(err, CTRD_EINVAL, "path too long: %s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return fail_errno(err, "cannot create directory", path);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return fail_errno(err, "cannot create directory", path);
    return 0;
}

char *fs_next_line(char *buf, size_t len, size_t *pos, size_t *line_len)
{
    char *s = buf + *pos;
    char *lf = memchr(s, '\n', len - *pos);
    size_t n = lf ? (size_t)(lf - s) : len - *pos;

    *pos += n + (lf != NULL);
    if (n > 0 && s[n - 1] == '\r')
        n--;
    s[n] = '\0';
    *line_len = n;
    return s;
}
