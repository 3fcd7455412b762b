/* querystore: the QueryStore of the design — every accepted query by
 * query_id (time, term id, shown ads) for as long as a click may still join
 * it, plus the registry of (query_id, ad) pairs already clicked.
 *
 * Layout. Queries are partitioned by the hour of their event time. A
 * partition is a list of immutable sorted runs on disk (format in
 * qsrun.h), each mapped with its Bloom filter and with a sparse key index
 * in RAM, and the set of its clicked (query_id, ad) pairs; one Bloom
 * filter in RAM over the ids of all runs answers most lookups of a new id
 * at once. New queries and new clicks first go to the memtable of the
 * worker that owns their join shard; a checkpoint turns the memtables into new
 * runs and drops whole partitions older than the retention horizon (expiry is
 * deleting files), and a thread of the store merges runs of similar size, four
 * at a time, while the workers go on, so a partition keeps O(log n) of them.
 *
 * Invariants: a query_id is stored at most once (callers qs_get() before
 * qs_put()); query_id > 0; a clicked pair refers to a stored query.
 *
 * Threads: between checkpoints, worker w calls qs_get/qs_put/qs_mark_clicked
 * with its own w only, and only for query_ids of its own join shards (see
 * sharder.h) — runs are read-only then, so workers share no mutable
 * state but, under a budget, the atomics that say what the runs hold
 * mapped: a worker's qs_get() may release every run's pages, which the
 * others go on reading (see querystore.c, RUN PAGES).
 * qs_checkpoint(), qs_load() and qs_close() run with no worker active. The
 * merge thread reads runs and writes its own (see querystore.c, MERGES);
 * qs_close() stops it and deletes its file.
 *
 * Errors: 0 or a negative CTRD_E* code (calls that take err fill it);
 * CTRD_ENOTFOUND when a query or file is not there, never for a failure.
 * The run files themselves are qsrun.h's. */
#ifndef CTRD_QUERYSTORE_H
#define CTRD_QUERYSTORE_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "fsutil.h"
#include "record.h"

#define QS_PARTITION_MS INT64_C(3600000)

struct qs;

/* A stored query. ads points into the store or into the worker's own
 * buffer: valid until this worker's next qs_get() or qs_put(), or the
 * next checkpoint. */
struct qs_query {
    uint64_t query_id;
    int64_t time_ms;
    uint32_t term_id;
    uint32_t n_ads;
    const uint64_t *ads;
};

/* An empty store whose files live in dir, for n_workers workers, with the
 * retention horizon of the checkpoint it is about to load (INT64_MIN for
 * none). */
int qs_open(const char *dir, unsigned n_workers, int64_t horizon_ms,
            struct qs **out, char *err);
void qs_close(struct qs *qs);

/* Bounds what the store holds in RAM (0: unbounded, as without the
 * call); call it after qs_open(), before qs_load(). run_page_bytes: the
 * most the run files' mappings hold in the process's RSS (pages read by
 * loads, lookups and merges are released before they pass it: see
 * querystore.c, RUN PAGES). filter_bytes: the most the Bloom filter over
 * every stored id takes; past it the filter keeps its size and lets more
 * ids through to the runs (lookups stay exact; see querystore.c, ID
 * FILTER). */
void qs_set_budget(struct qs *qs, uint64_t run_page_bytes,
                   uint64_t filter_bytes);

/* Restores one manifest line written by qs_checkpoint() ("run HOUR FILE
 * BYTES CRC" or "marks HOUR FILE BYTES CRC", given as its words), checking
 * the file's checksums and layout, and that every pair of a marks file
 * names a query of a run loaded before: 0, CTRD_ENOTFOUND (the file is
 * missing), CTRD_ECORRUPT (damaged: err names file, offset and what),
 * CTRD_ENOMEM. */
int qs_load(struct qs *qs, const char *kind, int64_t hour, const char *file,
            const struct fs_seal *seal, char *err);

/* 0 and *out, or CTRD_ENOTFOUND. */
int qs_get(struct qs *qs, unsigned worker, uint64_t query_id,
           struct qs_query *out);

/* A hint, no effect on the content: starts loading the memory that
 * worker's next qs_get()/qs_put() of query_id probes first, so that a
 * worker that knows its next records can overlap their cache misses. */
void qs_prefetch(const struct qs *qs, unsigned worker, uint64_t query_id);

/* Stores a query not yet stored. 0 or CTRD_ENOMEM. */
int qs_put(struct qs *qs, unsigned worker, const struct rec_query *q,
           uint32_t term_id);

/* Registers a click on (q, ad_id): 1 when it is the first, 0 when the pair
 * was clicked before, CTRD_ENOMEM. */
int qs_mark_clicked(struct qs *qs, unsigned worker, const struct qs_query *q,
                    uint64_t ad_id);

/* Whether a query of this time falls before the retention horizon (its
 * partition is gone or about to go): such a query can no longer be checked
 * for duplicates, so it must not be counted. */
int qs_too_old(const struct qs *qs, int64_t time_ms);

/* Adopts the merge that finished since the last checkpoint (one that
 * failed is dropped and counted in the stats), writes the memtables as
 * runs, drops partitions older than horizon_ms, starts the next merge if
 * runs are due for one, and prints the manifest lines that describe the
 * whole store to manifest (each partition's runs before its marks).
 * Merges run on a thread of the store's own while the workers go on; the
 * file of the one in progress is in no manifest line (qs_print_files()
 * names it). A failed write leaves
 * the store holding what it held (perhaps with fewer runs, merged), so a
 * later checkpoint can try again; only after CTRD_ENOMEM is it unusable. */
int qs_checkpoint(struct qs *qs, uint64_t seq, int64_t horizon_ms,
                  FILE *manifest, char *err);

/* The files of the store its caller must keep besides those the last
 * manifest names, one a line: the manifest lines of the files it holds
 * now (as a successful qs_checkpoint() prints them), then "merging HOUR
 * FILE" for the file of a merge in progress. Every other file of the
 * store's kinds (datadir.h) that no committed manifest names is garbage. */
void qs_print_files(const struct qs *qs, FILE *manifest);

/* What the store holds; the *_bytes of RAM are as allocated, by part
 * (the run files' mappings are not counted: their pages are the page
 * cache's, at most run_page_bytes of them mapped under a budget). */
struct qs_stats {
    uint64_t partitions, runs, queries_on_disk, disk_bytes, mem_queries;
    uint64_t clicked_pairs;
    uint64_t merging;       /* 1 while a merge runs */
    uint64_t merged_bytes;  /* written by the merges adopted so far */
    uint64_t merges_failed; /* merges dropped for an error */
    /* the memtables' tables, entries, ads and clicked pairs; kept
     * (emptied) by a checkpoint for the next interval */
    uint64_t memtable_bytes;
    /* what the queries and clicks since the last checkpoint take of
     * memtable_bytes (as much again at most is room to grow): 0 right
     * after a checkpoint, the figure to checkpoint early on */
    uint64_t memtable_fill_bytes;
    uint64_t filter_bytes; /* the Bloom filter over every stored id */
    uint64_t index_bytes;  /* the runs' sparse indexes */
    uint64_t pairs_bytes;  /* the partitions' clicked pairs */
};
/* O(runs + workers); with no worker active (the memtables are theirs). */
void qs_get_stats(const struct qs *qs, struct qs_stats *out);

#endif
