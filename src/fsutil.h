/* fsutil: the durable-file primitives every on-disk module uses: whole
 * writes, fsync of files and directories, atomic replace, read-only maps.
 * Owns nothing beyond what each call returns (documented per call). Any
 * thread.
 *
 * Errors: every call that can fail returns 0 or a negative CTRD_E* code
 * and fills err; CTRD_ENOTFOUND when the file does not exist (a missing
 * file is an answer, not a failure), CTRD_ECORRUPT when a sealed file's
 * checksums or size disagree, CTRD_EIO or CTRD_ENOMEM otherwise. */
#ifndef CTRD_FSUTIL_H
#define CTRD_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Room for any path ctrd builds: a data directory (< 512 bytes) plus a
 * file name. */
#define FS_PATH_MAX 1024

/* How fs_writer_open() opens a file. */
enum fs_mode {
    FS_TRUNCATE, /* created or emptied */
    FS_APPEND,   /* created, or appended to */
    FS_SEALED    /* created or emptied; fs_writer_seal() adds the trailer */
};

/* A file being written: buffered, then flushed and fsync'd by
 * fs_writer_close() or fs_writer_seal(). Always close or seal it (that
 * also releases it on error). */
struct fs_writer {
    int fd;
    enum fs_mode mode;
    size_t used;
    uint64_t written;     /* bytes handed to fs_writer_put so far */
    int failed;           /* first error seen, sticky */
    uint32_t block_crc;   /* FS_SEALED: CRC of the current block so far */
    uint32_t *block_crcs; /* FS_SEALED: of the finished blocks */
    size_t n_blocks, cap_blocks;
    char path[FS_PATH_MAX];
    char buf[1 << 16];
};

/* SEALED FILE: every binary file ctrd writes (runs, marks, counts, pending
 * clicks) is its content followed by a checksum trailer, so the content
 * keeps its own layout and can be mapped as is (little-endian):
 *   offset              size        field
 *   0                   L           content
 *   L                   4 B         CRC-32C of each FS_BLOCK_BYTES block of
 *                                   the content (the last may be shorter),
 *                                   B = ceil(L / FS_BLOCK_BYTES)
 *   L + 4 B             8           L
 *   L + 4 B + 8         4           FS_BLOCK_BYTES
 *   L + 4 B + 12        4           CRC-32C of the block CRCs and of the
 *                                   12 bytes before: the file's fingerprint
 *   L + 4 B + 16        8           magic "CTRDSUM1"
 * A damaged block is reported with its byte range; a cut or replaced file
 * fails the trailer or the size and fingerprint its MANIFEST line
 * recorded. */
#define FS_BLOCK_BYTES 65536u
#define FS_SEAL_MAGIC "CTRDSUM1"
enum fs_seal_footer {
    FS_FOOTER_CONTENT_LEN = 0,
    FS_FOOTER_BLOCK_BYTES = 8,
    FS_FOOTER_CRC = 12,
    FS_FOOTER_MAGIC = 16,
    FS_FOOTER_BYTES = 24
};

/* What identifies a sealed file: its size and fingerprint. */
struct fs_seal {
    uint64_t bytes;
    uint32_t crc;
};

int fs_writer_open(struct fs_writer *w, const char *path, enum fs_mode mode,
                   char *err);
void fs_writer_put(struct fs_writer *w, const void *data, size_t len);
/* Flushes, fsyncs when sync is set, closes. Reports the first error. */
int fs_writer_close(struct fs_writer *w, int sync, char *err);
/* FS_SEALED: appends the trailer, fsyncs, closes; *seal identifies the
 * file. Reports the first error. */
int fs_writer_seal(struct fs_writer *w, struct fs_seal *seal, char *err);

/* Writes the file at path whole, the one way to write a file in one go:
 * opens it in mode, lets put() give its content with fs_writer_put(), then
 * seals it (FS_SEALED: *seal identifies it) or flushes and fsyncs it
 * (seal unused, may be NULL). put() returns 0, or a negative code when it
 * cannot give the content, having said why in an err of its own (through
 * ctx): the file is then closed unsealed and unsynced, garbage for the
 * caller to delete, and that code returned. */
typedef int fs_put_fn(struct fs_writer *w, void *ctx);
int fs_write_file(const char *path, enum fs_mode mode, fs_put_fn *put,
                  void *ctx, struct fs_seal *seal, char *err);

/* Maps a sealed file and checks every checksum (and, with expect, its size
 * and fingerprint): 0 with the content at *map (*content_len bytes; undo
 * with fs_unmap(*map, *map_len)), CTRD_ENOTFOUND when it does not exist,
 * CTRD_ECORRUPT with err naming the file, the offset and the damage. The
 * check reads every page and releases them behind it (fs_map_release()),
 * so it maps a few MiB at a time, not the file. */
int fs_map_sealed(const char *path, const struct fs_seal *expect, void **map,
                  size_t *map_len, size_t *content_len, char *err);

/* Writes data to dir/name atomically: a temporary file, fsync, rename,
 * fsync of dir. */
int fs_replace_file(const char *dir, const char *name, const void *data,
                    size_t len, char *err);

int fs_fsync_dir(const char *dir, char *err);

/* Reads a whole file into a malloc'd, NUL-terminated buffer the caller
 * frees. CTRD_ENOTFOUND when it does not exist. */
int fs_read_file(const char *path, char **data, size_t *len, char *err);

/* The largest page-cache folio: a PMD's 2 MiB on x86-64. */
#define FS_FOLIO_MAX ((size_t)2 << 20)

/* Maps a whole file read-only (*map NULL for an empty file); undo with
 * fs_unmap(). A read maps about the page read into the process's RSS,
 * not a whole large folio (the mapping starts a page past a FS_FOLIO_MAX
 * boundary: see fsutil.c). CTRD_ENOTFOUND when it does not exist. */
int fs_map_file(const char *path, void **map, size_t *len, char *err);
void fs_unmap(void *map, size_t len);

/* Drops the pages of [off, off + len) of a read-only mapping of map_len
 * bytes (widened to whole pages) from the process, not from the page
 * cache: the next read of them maps them again, a minor fault while they
 * are cached. Safe while other threads read the mapping: on a read-only
 * MAP_SHARED file mapping MADV_DONTNEED only removes page-table entries
 * (madvise(2): later accesses "succeed" and repopulate "from the
 * up-to-date contents of the underlying mapped file"; the kernel does it
 * under the mmap lock held for reading, as a page fault does, so a read
 * that races it faults the page in again and sees the same bytes). A
 * hint: errors are ignored. */
void fs_map_release(const void *map, size_t map_len, size_t off, size_t len);

/* The next line of a text file read into buf[*pos..len), without its LF
 * and one CR before it, NUL-terminated in place (buf needs len + 1 bytes,
 * as fs_read_file gives). Advances *pos past the LF. */
char *fs_next_line(char *buf, size_t len, size_t *pos, size_t *line_len);

/* Creates dir (and its parents) if missing. */
int fs_mkdirs(const char *dir, char *err);

#endif
