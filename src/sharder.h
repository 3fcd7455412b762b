/* sharder: the log sharder of the design. Decides where every record goes:
 * a query or click to the join shard of hash(query_id) (QueryStore +
 * LogJoiner), a count delta to the count shard of hash(ad_id) (QueryMap +
 * ClickMap), and a shard to the worker that owns it.
 *
 * Invariants: SHARD_COUNT logical shards (m) are many more than workers (n):
 * a shard is the unit a later multi-process deployment moves between
 * processes; a worker owns the shards s with s % n_workers == worker. Every
 * record of one query_id reaches the same join shard, every count of one
 * ad the same count shard, whatever the number of workers.
 *
 * Stability: routing is NOT seeded. A shard number must be the same in
 * every process and every release (the per-process seed of hash.h's slot
 * hashes must never reach it): data written by one process is routed by
 * the next, and a later deployment will route between processes.
 * tests/unit/test_sharder.c pins it; changing it is a format change.
 *
 * Pure functions: any thread. */
#ifndef CTRD_SHARDER_H
#define CTRD_SHARDER_H

#include <stdint.h>

#define SHARD_COUNT 256u
#define SHARD_WORKERS_MAX 64u

/* The join shard of a query or click, in [0, SHARD_COUNT). */
unsigned sharder_join_shard(uint64_t query_id);

/* The count shard of an ad, in [0, SHARD_COUNT). */
unsigned sharder_count_shard(uint64_t ad_id);

/* The worker, in [0, n_workers), that owns a shard. n_workers > 0. */
unsigned sharder_worker(unsigned shard, unsigned n_workers);

/* The worker that joins the records of query_id: its join shard's owner. */
unsigned sharder_join_worker(uint64_t query_id, unsigned n_workers);

/* The worker that counts for ad_id: its count shard's owner. */
unsigned sharder_count_worker(uint64_t ad_id, unsigned n_workers);

#endif
