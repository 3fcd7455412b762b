/* datadir: a ctrd data directory on disk — its identity, its lock, its
 * MANIFEST (the single commit point of a checkpoint) and which file names
 * in it are ctrd's. What the MANIFEST's lines mean is checkpoint.c's.
 *
 * MANIFEST (text, replaced atomically by datadir_write_manifest()):
 *   ctrd-manifest 2       first line: magic and format version
 *   KIND WORD...          one fact a line (checkpoint.c documents them)
 *   checksum XXXXXXXX     last line: CRC-32C, 8 lowercase hex digits, of
 *                         every byte before this line
 * A directory is ctrd's when it holds a MANIFEST; a new one gets its
 * MANIFEST when it is created, before anything else is written into it.
 *
 * Files ctrd writes, by name (<seq>: the checkpoint that wrote it, <hour>:
 * a QueryStore partition, <n>: a number within the checkpoint):
 *   MANIFEST  MANIFEST.tmp  LOCK  terms.dat  wal/
 *   counts-<seq>.dat  counts-<seq>.delta  pending-<seq>.dat
 *   q<hour>-<seq>-<n>.run  m<hour>-<seq>-<n>.marks
 * Owns nothing beyond what each call returns. Any thread.
 *
 * Errors: 0 or a negative CTRD_E* code, err filled; CTRD_ENOTFOUND when
 * the directory or its MANIFEST does not exist, never for a failure. */
#ifndef CTRD_DATADIR_H
#define CTRD_DATADIR_H

#include <stddef.h>

#include "error.h"

#define DATADIR_MANIFEST "MANIFEST"
#define DATADIR_MAGIC "ctrd-manifest 2"

/* Takes the directory's lock file for this process: *fd to close to
 * release it; CTRD_EBUSY when another process holds it, CTRD_ENOTFOUND
 * when the directory is missing. A missing lock file is created when
 * create is set, but only in a directory that has a MANIFEST or that
 * datadir_check_new() accepts (else its error, nothing created); without
 * create nobody holds it and *fd is -1. */
int datadir_lock(const char *dir, int create, int *fd, char *err);

/* Whether a running ctrd holds DIR's lock (for readers that answer from
 * its last checkpoint). A shared lock taken for an instant tells; a process
 * starting in that instant would be told the directory is busy, so it is
 * released at once. */
int datadir_in_use(const char *dir);

/* Reads DIR/MANIFEST into a malloc'd, NUL-terminated buffer (the caller
 * frees it) and checks its magic, version and checksum: 0,
 * CTRD_ENOTFOUND, or CTRD_ECORRUPT with err saying what is wrong. It
 * holds the facts only (magic and checksum lines cut off), *len bytes. */
int datadir_read_manifest(const char *dir, char **text, size_t *len, char *err);

/* Replaces DIR/MANIFEST atomically with the magic line, facts (whole
 * lines) and the checksum line. */
int datadir_write_manifest(const char *dir, const char *facts, size_t len,
                           char *err);

/* For a directory without a MANIFEST: 0 when it is missing, or empty but
 * for a lock or an unfinished first MANIFEST (a new directory ctrd may
 * take),
 * CTRD_ECORRUPT when it holds files of ctrd's (its MANIFEST is lost),
 * CTRD_EINVAL when it holds anything else (it is not ctrd's). */
int datadir_check_new(const char *dir, char *err);

enum datadir_name {
    DATADIR_FOREIGN, /* not a name ctrd gives */
    DATADIR_FIXED,   /* MANIFEST, LOCK, terms.dat, wal */
    DATADIR_STATE    /* a checkpoint's file, or MANIFEST.tmp */
};
enum datadir_name datadir_classify(const char *name);

/* Whether facts name the file: as a word of a line (in a MANIFEST the
 * one before its size and checksum), or as a line's last word. */
int datadir_names_file(const char *facts, const char *name);

/* Deletes the checkpoint files (DATADIR_STATE) the facts do not name:
 * what an interrupted or superseded checkpoint left. Never anything else. */
void datadir_remove_garbage(const char *dir, const char *facts);

#endif
