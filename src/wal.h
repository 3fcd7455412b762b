/* wal: the write-ahead log of the records `ctrd serve` accepts over HTTP.
 * A request is acknowledged only once its body is in the log and the log
 * is fsync'd (group commit: one fsync for every request appended since the
 * last one); after a crash the engine's last checkpoint plus a replay of
 * the log from the position that checkpoint names rebuild exactly the state
 * that was acknowledged.
 *
 * Layout: DIR/wal/<start>.log segments, <start> the 16-hex-digit log
 * position of the segment's first byte; positions grow across segments and
 * never repeat. A record (little-endian):
 *   | u32 payload bytes | u32 CRC-32 of the rest | u8 kind | u8 format |
 *   | u16 zero | i64 processing time ms | payload |
 * A torn record at the end of the last segment (crash mid-append) fails
 * its length or CRC check and is cut off at open; anything else that fails
 * is corruption.
 *
 * Owns the open segment. One thread. */
#ifndef CTRD_WAL_H
#define CTRD_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct wal_record {
    uint8_t kind;   /* enum engine_kind */
    uint8_t format; /* enum rec_format */
    uint8_t source; /* 0: HTTP; n > 0: the n-th followed file */
    int64_t now_ms; /* processing time when it was accepted */
    uint64_t source_dev, source_ino, source_offset; /* after the payload */
    const char *payload;
    size_t len;
};

struct wal;

/* Replays every record from position `from` to the end of the log through
 * fn (stopping at its first non-zero return), cuts a torn tail off, and
 * opens the log for appending after the last good record. */
int wal_open(const char *dir, uint64_t from,
             int (*fn)(void *ctx, const struct wal_record *r), void *ctx,
             struct wal **out, char *err);
void wal_close(struct wal *w);

/* Appends a record (buffered; not durable before wal_sync). */
int wal_append(struct wal *w, const struct wal_record *r, char *err);
/* Makes everything appended so far durable. */
int wal_sync(struct wal *w, char *err);

/* The position after the last appended record: what a checkpoint that
 * reflects every appended record names. */
uint64_t wal_position(const struct wal *w);

/* Starts a new segment and deletes the segments that hold only records
 * before `keep_from` (a committed checkpoint's position). */
int wal_trim(struct wal *w, uint64_t keep_from, char *err);

#endif
