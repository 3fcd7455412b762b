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
 * still has that inode, at that offset (0 if the file is now shorter);
 * otherwise (rotated while ctrd was down) the new file from its start.
 *
 * Rotation is noticed once the open file has no whole line left and the
 * path names another regular file that is not empty: the writer has then
 * reopened the path, so it will not write to the old file again (until it
 * does, it may, and the follower stays on the old file). The old file's
 * last line, if it has no LF, will never be finished: it is handed out
 * with a LF added, positioned at the old file's end. If the path is
 * removed and not replaced, the old file is still read.
 *
 * Limits, as for any tailer that polls: a file rotated away before the
 * follower reached it is not read (poll faster than files rotate); a
 * truncated file that grows back past the offset between two polls is
 * not noticed; after a rotation while ctrd was down, what the old file
 * held past the committed position is not read.
 *
 * Owns its file descriptors and its read buffer; keeps no file bytes
 * between calls, only the position. One thread. */
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
 * path that does not exist yet is fine: reading waits for it to appear.
 * Fails with CTRD_EIO (path exists but cannot be opened, or is not a
 * regular file) or CTRD_ENOMEM. */
int follower_open(const char *path, const struct follow_position *resume,
                  struct follower **out, char *err);
/* Closes the file; f may be NULL. */
void follower_close(struct follower *f);

/* Reads what is new: whole lines, at most max_bytes or
 * 2 * (REC_LINE_MAX + 2) bytes, whichever is more, all from one file.
 * Returns 0 with *data and *len (owned by the follower, valid until the
 * next call) and *at, the position just after them in the file they came
 * from; CTRD_EAGAIN when there is nothing new (a line still being written
 * counts as nothing new); CTRD_EIO (err says why: an I/O error, or the
 * path names something other than a regular file) or CTRD_ENOMEM, after
 * which the follower is unchanged and the call may be retried.
 * A line that does not end within one read is handed out, once its LF
 * arrives, as its first REC_LINE_MAX + 2 bytes and a LF, positioned after
 * its real LF; the rest of it is skipped, so memory stays bounded. A
 * shorter over-long line is handed out whole, as `ctrd ingest` does; the
 * parser rejects both as line_too_long. CRLF line ends pass unchanged. */
int follower_read(struct follower *f, size_t max_bytes, const char **data,
                  size_t *len, struct follow_position *at, char *err);

#endif
