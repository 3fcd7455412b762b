/* fsutil: the durable-file primitives every on-disk module uses: whole
 * writes, fsync of files and directories, atomic replace, read-only maps.
 * Owns nothing beyond what each call returns (documented per call). All
 * functions return 0 or a negative ctrd error code and fill err. */
#ifndef CTRD_FSUTIL_H
#define CTRD_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Room for any path ctrd builds: a data directory (< 512 bytes) plus a
 * file name. */
#define FS_PATH_MAX 1024

/* A file being written: buffered, then flushed and fsync'd by
 * fs_writer_close(). Always close (it also releases on error). */
struct fs_writer {
    int fd;
    size_t used;
    uint64_t written; /* bytes handed to fs_writer_put so far */
    int failed;       /* first error seen, sticky */
    char path[FS_PATH_MAX];
    char buf[1 << 16];
};

/* Opens path for writing: created, and truncated unless append is set. */
int fs_writer_open(struct fs_writer *w, const char *path, int append,
                   char *err);
void fs_writer_put(struct fs_writer *w, const void *data, size_t len);
/* Flushes, fsyncs when sync is set, closes. Reports the first error. */
int fs_writer_close(struct fs_writer *w, int sync, char *err);

/* Writes data to dir/name atomically: a temporary file, fsync, rename,
 * fsync of dir. */
int fs_replace_file(const char *dir, const char *name, const void *data,
                    size_t len, char *err);

int fs_fsync_dir(const char *dir, char *err);

/* Reads a whole file into a malloc'd, NUL-terminated buffer the caller
 * frees. CTRD_ENOTFOUND when it does not exist. */
int fs_read_file(const char *path, char **data, size_t *len, char *err);

/* Maps a whole file read-only (*map NULL for an empty file); undo with
 * fs_unmap(). CTRD_ENOTFOUND when it does not exist. */
int fs_map_file(const char *path, void **map, size_t *len, char *err);
void fs_unmap(void *map, size_t len);

/* The next line of a text file read into buf[*pos..len), without its LF
 * and one CR before it, NUL-terminated in place (buf needs len + 1 bytes,
 * as fs_read_file gives). Advances *pos past the LF. */
char *fs_next_line(char *buf, size_t len, size_t *pos, size_t *line_len);

/* Creates dir (and its parents) if missing. */
int fs_mkdirs(const char *dir, char *err);

#endif
