/* sharder: routing of records to shards and of shards to workers; see
 * sharder.h. The shard is the top 8 bits of hash_u64 (unseeded, stable):
 * the low bits stay free for the slots of the tables within a shard. */
#include "sharder.h"

#include "hash.h"

#include <assert.h>

_Static_assert(SHARD_COUNT == 1u << 8, "a shard is the top 8 hash bits");

/* Mixed into an ad id so that an ad's count shard does not follow the join
 * shard of the equal query id. */
#define COUNT_SALT UINT64_C(0x5bd1e9955bd1e995)

unsigned sharder_join_shard(uint64_t query_id)
{
    return (unsigned)(hash_u64(query_id) >> 56);
}

unsigned sharder_count_shard(uint64_t ad_id)
{
    return (unsigned)(hash_u64(ad_id ^ COUNT_SALT) >> 56);
}

unsigned sharder_worker(unsigned shard, unsigned n_workers)
{
    assert(n_workers > 0 && n_workers <= SHARD_WORKERS_MAX);
    return shard % n_workers;
}

unsigned sharder_join_worker(uint64_t query_id, unsigned n_workers)
{
    return sharder_worker(sharder_join_shard(query_id), n_workers);
}

unsigned sharder_count_worker(uint64_t ad_id, unsigned n_workers)
{
    return sharder_worker(sharder_count_shard(ad_id), n_workers);
}
