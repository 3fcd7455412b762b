/* datadir: a ctrd data directory on disk; see datadir.h. */
#include "datadir.h"

#include "crc32c.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define CHECKSUM_KEY "checksum "
#define CHECKSUM_LINE_BYTES (sizeof CHECKSUM_KEY - 1 + 8 + 1)

int datadir_lock(const char *dir, int create, int *fd, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/" DATADIR_MANIFEST, dir);
    int ours = access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/LOCK", dir);
    *fd = open(path, O_RDWR | O_CLOEXEC, 0644);
    if (*fd < 0 && errno == ENOENT && create) {
        /* No LOCK is left in a directory that is not ctrd's, or lost its
         * MANIFEST: it is refused with nothing created. (A new directory
         * gets its LOCK, then its MANIFEST, before anything else.) */
        int rc = ours ? 0 : datadir_check_new(dir, err);
        if (rc != 0)
            return rc;
        *fd = open(path, O_RDWR | O_CLOEXEC | O_CREAT, 0644);
    }
    if (*fd < 0 && errno == ENOENT && !create && access(dir, F_OK) == 0)
        return 0;
    if (*fd < 0 && errno == ENOENT)
        return ctrd_fail(err, CTRD_ENOTFOUND, "%s: no such directory", dir);
    if (*fd < 0)
        return ctrd_fail(err, CTRD_EIO, "cannot open %s: %s", path,
                         strerror(errno));
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
        return ctrd_fail(err, CTRD_EBUSY,
                         "%s is in use by another ctrd "
                         "process",
                         dir);
    return 0;
}

int datadir_in_use(const char *dir)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

/* Checks the magic line and the checksum line of a manifest's text. */
static int check_manifest(const char *path, const char *text, size_t len,
                          size_t *facts_len, char *err)
{
    size_t magic = strlen(DATADIR_MAGIC);
    if (len < magic + 1 || memcmp(text, DATADIR_MAGIC "\n", magic + 1) != 0) {
        if (strncmp(text, "ctrd-manifest ", 14) == 0)
            return ctrd_fail(err, CTRD_ECORRUPT,
                             "%s: format '%.*s' is not "
                             "this ctrd's ('%s'): re-ingest into a new "
                             "directory",
                             path, (int)strcspn(text, "\n"), text,
                             DATADIR_MAGIC);
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: offset 0: not a ctrd "
                         "manifest",
                         path);
    }
    size_t at = len >= CHECKSUM_LINE_BYTES ? len - CHECKSUM_LINE_BYTES : 0;
    const char *hex = text + at + sizeof CHECKSUM_KEY - 1;
    if (len < magic + 1 + CHECKSUM_LINE_BYTES || text[at - 1] != '\n' ||
        strncmp(text + at, CHECKSUM_KEY, sizeof CHECKSUM_KEY - 1) != 0 ||
        strspn(hex, "0123456789abcdef") != 8 || hex[8] != '\n')
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: offset %zu: no checksum "
                         "line at the end (truncated?)",
                         path, at);
    uint32_t want = (uint32_t)strtoul(hex, NULL, 16);
    uint32_t got = crc32c(0, text, at);
    if (got != want)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: bytes 0..%zu fail their "
                         "checksum (%08x, the file says %08x)",
                         path, at ? at - 1 : 0, got, want);
    *facts_len = at;
    return 0;
}

int datadir_read_manifest(const char *dir, char **text, size_t *len, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/" DATADIR_MANIFEST, dir);
    size_t n;
    int rc = fs_read_file(path, text, &n, err);
    if (rc != 0)
        return rc;
    size_t facts = 0;
    rc = check_manifest(path, *text, n, &facts, err);
    if (rc != 0) {
        free(*text);
        *text = NULL;
        return rc;
    }
    size_t magic = strlen(DATADIR_MAGIC) + 1;
    memmove(*text, *text + magic, facts - magic);
    (*text)[facts - magic] = '\0';
    *len = facts - magic;
    return 0;
}

int datadir_write_manifest(const char *dir, const char *facts, size_t len,
                           char *err)
{
    size_t magic = strlen(DATADIR_MAGIC) + 1;
    size_t total = magic + len + CHECKSUM_LINE_BYTES;
    char *text = malloc(total + 1);
    if (!text)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    memcpy(text, DATADIR_MAGIC "\n", magic);
    memcpy(text + magic, facts, len);
    snprintf(text + magic + len, CHECKSUM_LINE_BYTES + 1,
             CHECKSUM_KEY "%08" PRIx32 "\n", crc32c(0, text, magic + len));
    int rc = fs_replace_file(dir, DATADIR_MANIFEST, text, total, err);
    free(text);
    return rc;
}

/* Whether name is prefix, a decimal number, and the rest as given,
 * e.g. ("counts-", ".dat"). */
static int is_numbered(const char *name, const char *prefix, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix), n = strlen(name);
    if (n <= p + s || strncmp(name, prefix, p) != 0 ||
        strcmp(name + n - s, suffix) != 0)
        return 0;
    return strspn(name + p, "0123456789") == n - p - s;
}

/* q<hour>-<seq>-<n>.run or m<hour>-<seq>-<n>.marks */
static int is_store_file(const char *name, char lead, const char *suffix)
{
    if (name[0] != lead)
        return 0;
    const char *p = name + 1;
    for (int part = 0; part < 3; part++) {
        size_t digits = strspn(p, "0123456789");
        if (digits == 0)
            return 0;
        p += digits;
        if (part < 2 && *p++ != '-')
            return 0;
    }
    return strcmp(p, suffix) == 0;
}

enum datadir_name datadir_classify(const char *name)
{
    static const char *const fixed[] = {DATADIR_MANIFEST, "LOCK", "terms.dat",
                                        "wal"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        if (strcmp(name, fixed[i]) == 0)
            return DATADIR_FIXED;
    }
    if (strcmp(name, DATADIR_MANIFEST ".tmp") == 0 ||
        is_numbered(name, "counts-", ".dat") ||
        is_numbered(name, "counts-", ".delta") ||
        is_numbered(name, "pending-", ".dat") ||
        is_store_file(name, 'q', ".run") || is_store_file(name, 'm', ".marks"))
        return DATADIR_STATE;
    return DATADIR_FOREIGN;
}

int datadir_check_new(const char *dir, char *err)
{
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT)
        return 0;
    if (!d)
        return ctrd_fail(err, CTRD_EIO, "cannot read %s: %s", dir,
                         strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
            strcmp(n, "LOCK") == 0 || strcmp(n, DATADIR_MANIFEST ".tmp") == 0)
            continue;
        if (datadir_classify(n) == DATADIR_FOREIGN)
            rc = ctrd_fail(err, CTRD_EINVAL,
                           "%s is not a ctrd data "
                           "directory (no MANIFEST; it holds '%s'): give an "
                           "empty or new directory",
                           dir, n);
        else
            rc = ctrd_fail(err, CTRD_ECORRUPT,
                           "%s holds ctrd files ('%s') "
                           "but no MANIFEST: refusing to touch them (restore "
                           "the MANIFEST, or give another directory)",
                           dir, n);
    }
    closedir(d);
    return rc;
}

int datadir_names_file(const char *facts, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = facts; (p = strstr(p, name)) != NULL; p += n) {
        if (p > facts && p[-1] == ' ' && (p[n] == ' ' || p[n] == '\n'))
            return 1;
    }
    return 0;
}

void datadir_remove_garbage(const char *dir, const char *facts)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[FS_PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        if (datadir_classify(de->d_name) != DATADIR_STATE ||
            datadir_names_file(facts, de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}
