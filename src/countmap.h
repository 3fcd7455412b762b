/* countmap: QueryMap and ClickMap of the design — impressions and clicks per
 * (ad, term, minute), organised by ad and then by minute, so one ad's table
 * or series over a time range reads only that ad's minutes in the range,
 * and counting (time mostly increasing) works in a small, hot part of RAM.
 *
 * Owns all buckets. Counts only grow. The map is split into SHARD_COUNT
 * count shards by sharder_count_shard(ad_id): cm_add() for ads of
 * different shards may run on different threads at once; everything else
 * needs the map to itself.
 *
 * Snapshot file (counts-<seq>.dat, little-endian):
 *   | "CTRDCNT1" | u64 ads | then per ad: u64 ad_id, u64 n |
 *   | n buckets {u32 term id, u32 minute, u64 impressions, u64 clicks} |
 * minute = floor(time_ms / 60000), the minute of the QUERY. */
#ifndef CTRD_COUNTMAP_H
#define CTRD_COUNTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct countmap;

struct cm_bucket {
    uint32_t term_id;
    uint32_t minute;
    uint64_t impressions;
    uint64_t clicks;
};

int cm_create(struct countmap **out);
void cm_free(struct countmap *cm);

/* Adds to the bucket (ad, term, minute); term_id < UINT32_MAX (as terms
 * hands out). 0 or CTRD_ENOMEM. */
int cm_add(struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, uint64_t impressions, uint64_t clicks);

/* Time levels of the counts: the buckets, and rollups per hour and day. */
enum { CM_MINUTE, CM_HOUR, CM_DAY, CM_LEVELS };

/* Calls fn for the counts of ad_id over the minutes [from_minute,
 * to_minute), in ascending time order (terms in no particular order).
 * coarsest (CM_MINUTE, CM_HOUR or CM_DAY) allows whole hours or days
 * inside the range to come as one bucket each (b->minute is then the
 * first minute of that hour or day): a caller that only sums uses CM_DAY,
 * an hourly series CM_HOUR, the exact buckets CM_MINUTE. */
void cm_ad_scan(const struct countmap *cm, uint64_t ad_id,
                uint64_t from_minute, uint64_t to_minute, int coarsest,
                void (*fn)(void *ctx, const struct cm_bucket *b), void *ctx);

/* One bucket: 0 and *out, or CTRD_ENOTFOUND. */
int cm_get(const struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, struct cm_bucket *out);

/* Every counted ad id, ascending, in a malloc'd array the caller frees. */
int cm_ads(const struct countmap *cm, uint64_t **ads, size_t *n);

uint64_t cm_bucket_count(const struct countmap *cm);

/* Writes the whole map to path (fsync'd). */
int cm_save(const struct countmap *cm, const char *path, char *err);

/* Adds the contents of a snapshot file to the map. */
int cm_load(struct countmap *cm, const char *path, char *err);

#endif
