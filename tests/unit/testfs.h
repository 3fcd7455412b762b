/* testfs: file helpers for the unit tests of on-disk modules — whole files
 * read and written by path, and sealed files (fsutil.h) written from given
 * content, to build damaged files on purpose. A failure to do so is the
 * test machine's, not the code's: it prints the reason and exits 1. */
#ifndef CTRD_TESTFS_H
#define CTRD_TESTFS_H

#include "check.h"
#include "fsutil.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The whole file (malloc'd, the caller frees it); *len its size. */
static inline unsigned char *testfs_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long size = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size + 1)) &&
        fread(buf, 1, (size_t)size, f) == (size_t)size) {
        fclose(f);
        *len = (size_t)size;
        return buf;
    }
    perror(path);
    exit(1);
}

/* Removes dir and everything under it (what it can). */
static inline void testfs_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) <
                (int)sizeof path &&
            unlink(path) != 0)
            testfs_remove_tree(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static inline void testfs_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes content as a sealed file; returns its seal. */
static inline struct fs_seal
testfs_write_sealed(const char *path, const void *content, size_t len)
{
    char err[CTRD_ERR_LEN];
    struct fs_writer *w = malloc(sizeof *w);
    struct fs_seal seal = {0, 0};
    if (!w || fs_writer_open(w, path, FS_SEALED, err) != 0) {
        fprintf(stderr, "%s: cannot write\n", path);
        exit(1);
    }
    fs_writer_put(w, content, len);
    if (fs_writer_seal(w, &seal, err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    free(w);
    return seal;
}

/* The seal a sealed file's own trailer gives (size, fingerprint). */
static inline struct fs_seal testfs_seal_of(const unsigned char *file,
                                            size_t len)
{
    struct fs_seal seal = {len, 0};
    if (len >= FS_FOOTER_BYTES)
        memcpy(&seal.crc, file + len - FS_FOOTER_BYTES + FS_FOOTER_CRC, 4);
    return seal;
}

/* The content length a sealed file's trailer gives. */
static inline size_t testfs_content_len(const unsigned char *file, size_t len)
{
    uint64_t n;
    memcpy(&n, file + len - FS_FOOTER_BYTES + FS_FOOTER_CONTENT_LEN, 8);
    return (size_t)n;
}

/* Makes every write that would grow a file past max_bytes fail (EFBIG),
 * as a full disk would; RLIM_INFINITY lifts the limit. */
static inline void testfs_limit_file_size(rlim_t max_bytes)
{
    struct rlimit r;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = max_bytes;
    if (setrlimit(RLIMIT_FSIZE, &r) != 0) {
        perror("setrlimit");
        exit(1);
    }
}

/* How many of this process's open files were in dir but have no name
 * there (an O_TMPFILE, or a file unlinked while open: their links read
 * "DIR/... (deleted)"), and in *last the descriptor of the last one. */
static inline int testfs_unnamed_files(const char *dir, int *last)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++) {
        char link[64], target[1024];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strncmp(target, dir, strlen(dir)) == 0 &&
            strstr(target, " (deleted)")) {
            n++;
            *last = fd;
        }
    }
    return n;
}

/* The file-backed pages the process has mapped (RssFile + RssShmem), in
 * bytes: /proc/self/statm's third field. */
static inline uint64_t testfs_rss_file_bytes(void)
{
    unsigned long long size, resident, shared = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%llu %llu %llu", &size, &resident, &shared) != 3)
        CHECK_FAIL_AT("cannot read /proc/self/statm");
    if (f)
        fclose(f);
    return shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

#endif
