/* fsutil: durable-file primitives; see fsutil.h. */
#include "fsutil.h"

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
    int code = (errno == ENOENT) ? CTRD_ENOTFOUND
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
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_writer_open(struct fs_writer *w, const char *path, int append,
                   char *err)
{
    w->used = 0;
    w->written = 0;
    w->failed = 0;
    snprintf(w->path, sizeof w->path, "%s", path);
    int mode = append ? O_APPEND : O_TRUNC;
    w->fd = open(path, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0644);
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

void fs_writer_put(struct fs_writer *w, const void *data, size_t len)
{
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
    if (w->failed) {
        errno = w->failed;
        return fail_errno(err, "cannot write", w->path);
    }
    return 0;
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

int fs_replace_file(const char *dir, const char *name, const void *data,
                    size_t len, char *err)
{
    char tmp[FS_PATH_MAX], final[FS_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(final, sizeof final, "%s/%s", dir, name);
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory writing %s", final);
    int rc = fs_writer_open(w, tmp, 0, err);
    if (rc == 0) {
        fs_writer_put(w, data, len);
        rc = fs_writer_close(w, 1, err);
    }
    free(w);
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
        void *m = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
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
