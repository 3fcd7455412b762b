/* wal: the write-ahead log of the records `ctrd serve` accepts over HTTP
 * and from followed files. A request is acknowledged only once its body is
 * in the log and the log is fsync'd (group commit: one fsync for every
 * request appended since the last one); after a crash the engine's last
 * checkpoint plus a replay of the log from the position that checkpoint
 * names rebuild exactly the state that was acknowledged.
 *
 * Layout: DIR/wal/<start>.log segments, <start> the 16-hex-digit log
 * position of the segment's first byte; positions grow across segments
 * (each begins where the one before ends) and never repeat. A segment is
 * created whole (written as <start>.log.tmp, fsync'd, renamed). Little-
 * endian; a segment begins with
 *   offset  size  field
 *   0       8     magic "CTRDWAL2"
 *   8       8     start: the log position of byte 0 (= the name)
 *   16      4     CRC-32C of bytes 0..15
 *   20      4     zero
 * and then holds records:
 *   offset  size  field
 *   0       4     magic 0x5ec0d1a7
 *   4       4     CRC-32C of bytes 8..55 and of the payload
 *   8       4     payload bytes L (< 2^31)
 *   12      1     kind (enum engine_kind)
 *   13      1     format (enum rec_format)
 *   14      1     source (0: HTTP; n > 0: the n-th followed file)
 *   15      1     zero
 *   16      8     processing time, ms
 *   24      8     followed file: device
 *   32      8     followed file: inode
 *   40      8     followed file: offset after the payload
 *   48      8     synced: the position up to which the log was durable
 *                 when this record was appended
 *   56      L     payload: the request's records (NDJSON or TSV)
 * DIR/wal/synced, the SYNCED FILE, says how far the log was durable: after
 * every sync it is overwritten (not synced itself: after a crash it may
 * say less than was durable, never more) with
 *   offset  size  field
 *   0       8     position up to which the log is durable
 *   8       4     CRC-32C of bytes 0..7
 *   12      4     zero
 *
 * Damage. A record that fails its checks in the last segment is a torn
 * tail — the end of an append that a crash interrupted — which opening
 * cuts off and reports, when
 *  - valid records follow it, but none says by its synced field (nor the
 *    SYNCED FILE) that the log was durable past its start: a power loss
 *    wrote parts of an unsynced group;
 *  - nothing valid follows it, and it is cut short (the file ends inside
 *    it), or the SYNCED FILE does not say it was durable.
 * (A record cut short that was durable is still cut, as SPEC §3 says, but
 * the report warns that acknowledged records were lost.) Anything else is
 * damage: a whole bad record that was durable, a bad record or header in
 * an earlier segment, a gap between segments, a missing segment or one
 * shorter than the checkpoint's position, a damaged SYNCED FILE. Damage fails
 * the open and changes nothing; only wal_cut_at_damage(), the operator's
 * decision, drops what follows it.
 *
 * Owns the open segment. One thread.
 *
 * Errors: calls return 0 or a negative CTRD_E* code and fill err;
 * CTRD_ECORRUPT for damage (err names segment, offset and what),
 * CTRD_ENOTFOUND only where a call says so (no log), never for a failure. */
#ifndef CTRD_WAL_H
#define CTRD_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum wal_segment_header {
    WAL_SEG_MAGIC = 0,
    WAL_SEG_START = 8,
    WAL_SEG_CRC = 16,
    WAL_SEG_HEADER_BYTES = 24
};

enum wal_synced_file {
    WAL_SYNCED_POSITION = 0,
    WAL_SYNCED_CRC = 8,
    WAL_SYNCED_BYTES = 16
};

enum wal_record_header {
    WAL_REC_MAGIC = 0,
    WAL_REC_CRC = 4,
    WAL_REC_LEN = 8,
    WAL_REC_KIND = 12,
    WAL_REC_FORMAT = 13,
    WAL_REC_SOURCE = 14,
    WAL_REC_NOW = 16,
    WAL_REC_DEV = 24,
    WAL_REC_INO = 32,
    WAL_REC_OFFSET = 40,
    WAL_REC_SYNCED = 48,
    WAL_REC_HEADER_BYTES = 56
};

struct wal_record {
    uint8_t kind;   /* enum engine_kind */
    uint8_t format; /* enum rec_format */
    uint8_t source; /* 0: HTTP; n > 0: the n-th followed file */
    int64_t now_ms; /* processing time when it was accepted */
    uint64_t source_dev, source_ino, source_offset;
    const char *payload;
    size_t len;
};

struct wal;

/* Replays every record from position *from (NULL: the checkpoint names
 * none yet, so the log must hold no record) to the end of the log through
 * fn (stopping at its first non-zero return), cuts a torn tail off (then
 * note says what was cut; else note is empty), and opens the log for
 * appending after the last good record. CTRD_ECORRUPT for damage, err
 * naming the segment, offset and what; nothing is changed then. */
int wal_open(const char *dir, const uint64_t *from,
             int (*fn)(void *ctx, const struct wal_record *r), void *ctx,
             char *note, struct wal **out, char *err);
void wal_close(struct wal *w);

/* Appends a record (not durable before wal_sync). On failure the log is
 * rolled back to the end of its last sync. */
int wal_append(struct wal *w, const struct wal_record *r, char *err);
/* Makes everything appended so far durable. On failure it rolls the log
 * back to the end of the last sync: those records are not in it. */
int wal_sync(struct wal *w, char *err);
/* After a failed append or sync whose rollback failed too: tries the
 * rollback again. 0 once the log ends at its last sync (appends are
 * refused until then). */
int wal_rollback(struct wal *w, char *err);

/* The position after the last appended record: what a checkpoint that
 * reflects every appended record names. */
uint64_t wal_position(const struct wal *w);

/* Starts a new segment (when the open one holds records) and deletes the
 * segments that hold only records before `keep_from` (a committed
 * checkpoint's position). On failure the log goes on in the open segment. */
int wal_trim(struct wal *w, uint64_t keep_from, char *err);

/* Offline, on a log nobody appends to. wal_check() reads every record from
 * *from (as wal_open) and passes each problem to report as one line:
 * 0 when there is no damage (a torn tail is reported, as a note),
 * CTRD_ECORRUPT when there is. wal_cut_at_damage() drops the log from its
 * first bad record on, torn or damaged (the rest of that segment and every
 * later segment), rewrites a damaged SYNCED FILE, and says in summary what
 * it did: 0 (summary empty when there was nothing to do) or an I/O
 * error. */
int wal_check(const char *dir, const uint64_t *from,
              void (*report)(void *ctx, const char *line), void *ctx,
              char *err);
int wal_cut_at_damage(const char *dir, uint64_t from, char *summary, char *err);

#endif
