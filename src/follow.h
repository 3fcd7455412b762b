/* follow: tails a growing log file the way a log shipper does, for
 * `ctrd serve --follow-queries FILE --follow-clicks FILE`.
 *
 * A follower hands out only whole lines, each byte once, and says after
 * every read where in which file it stands (device, inode, offset). It
 * survives rotation — the path is renamed away and a new file appears:
 * the old file is read to its end first, then the new one from its start —
 * and truncation in place (copytruncate: the file is shorter than the
 * offset): reading starts again at 0. The caller commits the position in
 * the same write-ahead-log record as the data (see wal.h), so a restart
 * resumes exactly after the last committed line: if the file at the path
 * still has that inode, at that offset; otherwise (rotated while ctrd was
 * down) the new file from its start.
 *
 * Owns its file descriptors and its read buffer. One thread. */
#ifndef CTRD_FOLLOW_H
#define CTRD_FOLLOW_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct follow_position {
    uint64_t dev, ino, offset;
};

struct follower;

/* Follows path from resume (NULL: from the start of the current file). A
 * path that does not exist yet is fine: reading waits for it to appear. */
int follower_open(const char *path, const struct follow_position *resume,
                  struct follower **out, char *err);
void follower_close(struct follower *f);

/* Reads what is new, at most about max_bytes of whole lines: 0 with
 * *data and *len (owned by the follower, valid until the next call) and *at,
 * the position just after them; CTRD_EAGAIN when there is nothing new (a
 * line still being written counts as nothing new); another code on an I/O
 * error. A line longer than REC_LINE_MAX is handed out as its first
 * REC_LINE_MAX + 2 bytes and a LF (the parser rejects it as line_too_long)
 * and the rest of it is skipped, so memory stays bounded. */
int follower_read(struct follower *f, size_t max_bytes, const char **data,
                  size_t *len, struct follow_position *at, char *err);

#endif
