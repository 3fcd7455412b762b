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
 * SNAPSHOT FILE (counts-<seq>.dat): the content of a sealed file (fsutil.h:
 * a checksum trailer follows), little-endian:
 *   offset  size          field
 *   0       8             magic "CTRDCNT1"
 *   8       8             ads: how many ads follow
 *   then per ad:
 *   +0      8             ad_id
 *   +8      8             n: buckets of the ad
 *   +16     24 n          buckets {u32 term id, u32 minute, u64
 *                         impressions, u64 clicks} (struct cm_bucket)
 * minute = floor(time_ms / 60000), the minute of the QUERY; clicks <=
 * impressions in every bucket. Ads come in no particular order (slots are
 * seeded per process), an ad's buckets by ascending minute and the terms
 * of a minute in no particular order: loading adds every bucket.
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
_Static_assert(sizeof(struct cm_bucket) == 24, "SNAPSHOT FILE: 24-byte "
                                               "buckets");

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
void cm_ad_scan(const struct countmap *cm, uint64_t ad_id, uint64_t from_minute,
                uint64_t to_minute, int coarsest,
                void (*fn)(void *ctx, const struct cm_bucket *b), void *ctx);

/* One bucket: 0 and *out, or CTRD_ENOTFOUND. */
int cm_get(const struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, struct cm_bucket *out);

/* Every counted ad id, ascending, in a malloc'd array the caller frees. */
int cm_ads(const struct countmap *cm, uint64_t **ads, size_t *n);

uint64_t cm_bucket_count(const struct countmap *cm);

/* Writes the whole map to path as a sealed file (fsync'd); *seal
 * identifies it. */
int cm_save(const struct countmap *cm, const char *path, struct fs_seal *seal,
            char *err);

/* Adds the contents of a snapshot file to the map, checking its checksums
 * (and size and fingerprint against seal), its layout, term ids below
 * n_terms and clicks <= impressions: 0, CTRD_ENOTFOUND, CTRD_ECORRUPT (err
 * names file, offset and what), CTRD_ENOMEM. */
int cm_load(struct countmap *cm, const char *path, const struct fs_seal *seal,
            uint32_t n_terms, char *err);

#endif
