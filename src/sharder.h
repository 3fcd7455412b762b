/* sharder: the log sharder of the design. Routes every record to a logical
 * shard — by hash(query_id) for the join (QueryStore + LogJoiner), by
 * hash(ad_id) for the counts (QueryMap + ClickMap) — and maps shards to the
 * workers that own them.
 *
 * Invariants: SHARD_COUNT logical shards (m) are many more than workers (n):
 * a shard is the unit a later multi-process deployment moves between
 * processes; a worker owns shards s with s % n_workers == worker. Every
 * record of one query_id reaches the same join shard, every count of one
 * ad the same count shard, whatever the number of workers. Pure functions. */
#ifndef CTRD_SHARDER_H
#define CTRD_SHARDER_H

#include "hash.h"

#define SHARD_COUNT 256u
#define SHARD_WORKERS_MAX 64u

static inline unsigned sharder_join_shard(uint64_t query_id)
{
    return (unsigned)(hash_u64(query_id) >> 56);
}

static inline unsigned sharder_count_shard(uint64_t ad_id)
{
    return (unsigned)(hash_u64(ad_id ^ UINT64_C(0x5bd1e9955bd1e995)) >> 56);
}

static inline unsigned sharder_worker(unsigned shard, unsigned n_workers)
{
    return shard % n_workers;
}

#endif
