/* countmap: QueryMap and ClickMap of the design — impressions and clicks per
 * (ad, term, minute), organised by ad and then by minute, so one ad's table
 * or series over a time range reads only that ad's minutes in the range,
 * and counting (time mostly increasing) works in a small, hot part of RAM.
 *
 * Owns all buckets, and the spill file once opened (SPILL). Counts only
 * grow. The map is split into SHARD_COUNT
 * count shards by sharder_count_shard(ad_id): cm_add() for ads of
 * different shards may run on different threads at once; the readers
 * (cm_ad_scan, cm_get, cm_ads, cm_bucket_count, cm_save, cm_delta_bytes,
 * cm_resident_bytes, cm_spill_stats) may run at once with each other but
 * not with a writer; everything else needs the map to itself. The map
 * knows which buckets changed since the last cm_mark_clean(), so that a
 * checkpoint writes only those.
 *
 * SPILL: with a spill file (cm_spill_open), cm_spill() moves cold time
 * groups out of RAM into it, and every reader sees exactly the buckets it
 * would see without: a reader reads a spilled group's block into a buffer
 * of its own (so reads can fail: CTRD_EIO, or CTRD_ECORRUPT when a block's
 * checksum or identity is wrong, err "counts.spill: offset N: ..."), and
 * cm_add() reads it back into RAM first. The spill file is scratch: the
 * durable counts are the counts files; nothing reads it after a restart.
 *
 * COUNTS FILE: the content of a sealed file (fsutil.h: a checksum trailer
 * follows), little-endian:
 *   offset  size          field
 *   0       8             magic "CTRDCNT1"
 *   8       8             ads: how many ads follow
 *   then per ad:
 *   +0      8             ad_id
 *   +8      8             n: buckets of the ad that follow
 *   +16     24 n          buckets {u32 term id, u32 minute, u64
 *                         impressions, u64 clicks} (struct cm_bucket)
 * minute = floor(time_ms / 60000), the minute of the QUERY; clicks <=
 * impressions in every bucket; a bucket (ad, term, minute) at most once
 * in a file, with its whole counts. A SNAPSHOT (CM_SNAPSHOT; a checkpoint
 * names it counts-<seq>.dat) holds every bucket, a DELTA (CM_DELTA;
 * counts-<seq>.delta) the buckets changed since the previous file of its
 * chain. A chain is a snapshot and the deltas written after it: its
 * counts are, for each bucket, those of the newest file that holds it.
 * Ads come in no particular order (slots are seeded per process), an
 * ad's buckets by ascending minute and the terms of a minute in no
 * particular order.
 *
 * Errors: 0 or a negative CTRD_E* code (calls that take err fill it);
 * CTRD_ENOTFOUND when a bucket or file asked for does not exist, never for
 * a failure. */
#ifndef CTRD_COUNTMAP_H
#define CTRD_COUNTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "fsutil.h"

struct countmap;

struct cm_bucket {
    uint32_t term_id;
    uint32_t minute;
    uint64_t impressions;
    uint64_t clicks;
};
_Static_assert(sizeof(struct cm_bucket) == 24, "COUNTS FILE: 24-byte "
                                               "buckets");

/* COUNTS FILE offsets: of the file's header, of an ad's. */
enum cm_file_layout {
    CM_FILE_ADS = 8,
    CM_FILE_HEADER_BYTES = 16,
    CM_AD_ID = 0,
    CM_AD_BUCKETS = 8,
    CM_AD_HEADER_BYTES = 16
};
_Static_assert(CM_FILE_HEADER_BYTES == CM_FILE_ADS + 8 &&
                   CM_AD_HEADER_BYTES == CM_AD_BUCKETS + 8,
               "COUNTS FILE: each header ends with its 8-byte count");

enum cm_file_kind { CM_SNAPSHOT, CM_DELTA };

int cm_create(struct countmap **out);
void cm_free(struct countmap *cm);

/* Adds to the bucket (ad, term, minute); term_id < UINT32_MAX (as terms
 * hands out). 0 or CTRD_ENOMEM, or, when the bucket's group (or its hour
 * or day) was spilled and cannot be read back, CTRD_EIO or CTRD_ECORRUPT
 * (err says which block); a failed add changes no count. */
int cm_add(struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, uint64_t impressions, uint64_t clicks, char *err);

/* Time levels of the counts: the buckets, and rollups per hour and day. */
enum { CM_MINUTE, CM_HOUR, CM_DAY, CM_LEVELS };

/* Calls fn for the counts of ad_id over the minutes [from_minute,
 * to_minute), in ascending time order (terms in no particular order).
 * coarsest (CM_MINUTE, CM_HOUR or CM_DAY) allows whole hours or days
 * inside the range to come as one bucket each (b->minute is then the
 * first minute of that hour or day): a caller that only sums uses CM_DAY,
 * an hourly series CM_HOUR, the exact buckets CM_MINUTE. 0 (an ad without
 * counts included), or a spill read's failure (see SPILL; also
 * CTRD_ENOMEM) after fn saw the buckets before the group that failed. */
int cm_ad_scan(const struct countmap *cm, uint64_t ad_id, uint64_t from_minute,
               uint64_t to_minute, int coarsest,
               void (*fn)(void *ctx, const struct cm_bucket *b), void *ctx,
               char *err);

/* One bucket: 0 and *out, CTRD_ENOTFOUND, or a spill read's failure. */
int cm_get(const struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, struct cm_bucket *out, char *err);

/* Every counted ad id, ascending, in a malloc'd array the caller frees. */
int cm_ads(const struct countmap *cm, uint64_t **ads, size_t *n);

uint64_t cm_bucket_count(const struct countmap *cm);

/* Writes a counts file of the kind to path as a sealed file (fsync'd):
 * every bucket, or (CM_DELTA) those changed since the last
 * cm_mark_clean(); *seal identifies it. Marks nothing clean: the caller
 * does once the file is committed. A snapshot reads spilled groups back
 * one at a time; when one cannot be read (see SPILL) the file is left
 * unsealed, as a failed write leaves it. */
int cm_save(const struct countmap *cm, enum cm_file_kind kind, const char *path,
            struct fs_seal *seal, char *err);

/* The content bytes (the seal's trailer not counted) of the CM_DELTA file
 * cm_save() would write now; O(shards). */
uint64_t cm_delta_bytes(const struct countmap *cm);

/* Forgets which buckets changed: the next delta starts from here. Costs
 * the ads, and the minute groups that changed. */
void cm_mark_clean(struct countmap *cm);

/* Adds to the map the buckets of a counts file that it does not hold yet,
 * checking the file's checksums (and size and fingerprint against seal),
 * its layout, term ids below n_terms and clicks <= impressions: 0,
 * CTRD_ENOTFOUND, CTRD_ECORRUPT (err names file, offset and what),
 * CTRD_ENOMEM, or a spill file's failure (err names it). A chain loads
 * into a new map newest file first (the snapshot last), each bucket then
 * taking the counts of the newest file that holds it; then
 * cm_mark_clean(). Loaded buckets are not changed ones (they are in the
 * files already), so they may spill at once: with a spill file opened
 * with a load budget, cm_load calls cm_spill(budget) whenever the map
 * holds a quarter of it more than the budget (or than what the last spill
 * left, when what cannot spill is more), and the load's peak stays near
 * 1.25 x budget plus the newest group of each ad and level; the file's
 * pages are let go as it is read. A spill that cannot write (a full disk)
 * ends the spilling of the load, not the load. A bucket of an older file whose
 * group has spilled reads that group back (to see whether it holds the
 * bucket), so a chain with many deltas re-reads groups. */
int cm_load(struct countmap *cm, const char *path, const struct fs_seal *seal,
            uint32_t n_terms, char *err);

/* ---- spill ---- */

/* Creates the spill file in the directory dir, with no name (O_TMPFILE;
 * where the file system has none, a file unlinked at once): no other
 * process sees it, and it goes with the map (cm_free) or the process,
 * leaving nothing behind, even after a crash; messages call it
 * "counts.spill". Once per map, before any cm_spill() or a cm_load() that
 * should spill. load_max_resident_bytes: the budget of cm_load (0: it
 * never spills). 0 or CTRD_EIO. The engine calls it on a new
 * map before loading the chain. */
int cm_spill_open(struct countmap *cm, const char *dir,
                  uint64_t load_max_resident_bytes, char *err);

/* Moves cold groups into the spill file, oldest first, until the map's
 * resident bytes are at most max_resident_bytes or no group is cold. Cold:
 * not its ad's newest group of its level (the hot one), and at the minute
 * level unchanged since cm_mark_clean() (so a delta never reads the spill
 * file); hour and day groups are derived and go whenever cold. A group
 * leaves RAM only once its block is written: on a write failure
 * (CTRD_EWRITEFAIL, e.g. disk full) the map is whole and serving, with
 * what was evicted so far. CTRD_EINVAL without a spill file. Needs the map
 * to itself; walks every group (spilled ones too) up to four times and
 * writes what it evicts. The engine calls it after a checkpoint commits
 * (after cm_mark_clean), under its write lock. */
int cm_spill(struct countmap *cm, uint64_t max_resident_bytes, char *err);

/* The heap bytes the map holds (tables, ads, groups, resident cells),
 * kept as they change: O(shards). */
uint64_t cm_resident_bytes(const struct countmap *cm);

struct cm_spill_stats {
    uint64_t resident_bytes; /* cm_resident_bytes() */
    uint64_t spilled_groups; /* groups whose cells are in the spill file */
    uint64_t spilled_bytes;  /* their blocks */
    uint64_t file_bytes;     /* the spill file: blocks of spilled groups,
                                blocks kept for groups read back, garbage */
};
void cm_spill_stats(const struct countmap *cm, struct cm_spill_stats *out);

#endif
