/* engine: one ctrd data directory — the pipeline parse -> shard -> join ->
 * count over worker threads (engine.c), with checkpoints and recovery
 * (checkpoint.h, which holds the state) behind the same calls.
 *
 * Owns the QueryStore, the term dictionary, the joiners (one per worker),
 * QueryMap/ClickMap, the per-input progress, the worker threads and the
 * directory's lock. Data flows one way: engine_process() parses chunks of
 * log lines in parallel (one chunk per worker), routes each record by
 * hash(query_id) to the worker owning its join shard, which joins it and
 * routes count deltas by hash(ad_id) to the worker owning the count shard.
 * Chunks of one call are applied in order, so "first record wins" follows
 * input order.
 *
 * Durability: nothing is durable until engine_checkpoint(), which writes the
 * new state files, fsyncs them and then atomically replaces DIR/MANIFEST,
 * the single commit point; files the manifest does not name are deleted.
 * Input progress is committed in the same manifest, so a restart resumes
 * each input exactly where the counts it reflects end: exactly once.
 *
 * Integrity: every file is checksummed (fsutil.h, terms.h, datadir.h) and
 * checked when it is loaded; opening a damaged directory fails with the
 * file, offset and damage named and changes nothing on disk.
 *
 * Threads: all engine_* calls from one thread (the writer); the engine runs
 * its own workers inside engine_process(). Other threads may read the
 * counts, terms and as_of between engine_read_lock() and
 * engine_read_unlock(): the writer changes them only under the write side
 * of that lock, for the short count phase of a batch (new terms are added
 * before, safely: see terms.h); a waiting writer goes before new readers,
 * so a reader must not take the read lock twice. Stats and sizes are the
 * writer's alone.
 *
 * Errors: calls return 0 or a negative CTRD_E* code (setup calls also fill
 * err); CTRD_ENOTFOUND when what is asked for does not exist (an input
 * with no progress, a read-only open of a directory without data), never
 * for a failure. */
#ifndef CTRD_ENGINE_H
#define CTRD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "countmap.h"
#include "error.h"
#include "joiner.h"
#include "record.h"
#include "terms.h"

/* src.input of a click restored from a checkpoint (its input is gone). */
#define ENGINE_INPUT_EARLIER UINT32_MAX
#define ENGINE_REJECT_SAMPLES 100

struct engine_config {
    const char *data_dir;
    unsigned n_workers;       /* 0: one per core */
    int readonly;             /* loads counts and terms only (checks the
                                 other files), no lock, no writes */
    int64_t join_window_ms;   /* SPEC §2, default 24 h */
    int64_t click_timeout_ms; /* default 10 min */
    int64_t retention_ms;     /* queries kept for joins; >= join window */
    /* RAM for the store's data, 0 for no bound (checkpoint.c, MEMORY):
     * the counts past their share spill to a scratch file, the runs'
     * pages are released, the id filter stops growing, and
     * engine_memory_full() asks for an early checkpoint. */
    uint64_t memory_bytes;
    /* Verification (`ctrd verify`): when set, the directory is locked but
     * never created nor written, and each damaged or missing file is passed
     * to report (one line) and skipped instead of failing the open. The
     * engine then only answers engine_progress_get(). */
    void (*report)(void *ctx, const char *problem);
    void *report_ctx;
};

enum engine_kind { ENGINE_QUERIES, ENGINE_CLICKS };

/* Whole lines of one input, in input order. */
struct engine_chunk {
    const char *data;
    size_t len;
    uint64_t first_line; /* 1-based number of its first line */
    uint32_t input;      /* the caller's input number, for reports */
};

struct engine_reject {
    uint32_t input;
    uint64_t line;
    enum rec_reason reason;
};

/* What this process has done since engine_open(). */
struct engine_stats {
    uint64_t query_lines, click_lines; /* non-empty lines read */
    struct join_stats join;
    uint64_t clicks_pending; /* waiting now */
    uint64_t rejects[REC_REASON_COUNT];
    uint64_t queries_rejected, clicks_rejected; /* parse + join */
    /* The first rejects by (input, line), at most ENGINE_REJECT_SAMPLES. */
    struct engine_reject samples[ENGINE_REJECT_SAMPLES];
    size_t n_samples;
};

struct engine;

/* Locks the directory (CTRD_EBUSY if another process has it), creates it if
 * needed (with its first MANIFEST; a directory that holds anything else
 * but no MANIFEST is refused) and recovers the last checkpoint: 0,
 * CTRD_ECORRUPT (damage: err names the file, offset and what), CTRD_EINVAL
 * (not a ctrd directory), CTRD_ENOTFOUND (read-only: no data), CTRD_EBUSY,
 * CTRD_EIO, CTRD_ENOMEM. */
int engine_open(const struct engine_config *cfg, struct engine **out,
                char *err);
void engine_close(struct engine *e);

/* Parses, joins and counts n chunks of one kind of input. now_ms is the
 * processing time (clicks wait by it). A negative code means memory ran
 * out mid-way, or a count spilled to the scratch file could not be read
 * back (its damage; err says which): the engine must be closed without a
 * checkpoint (a restart spills anew from the committed counts). */
int engine_process(struct engine *e, enum engine_kind kind, enum rec_format fmt,
                   const struct engine_chunk *chunks, unsigned n,
                   int64_t now_ms, char *err);

/* Count increments made elsewhere (distributed mode: a joiner's deltas,
 * cluster.h), added to the counts as one step under the write lock; as_of
 * becomes as_of_ms (the caller's lower bound: it may go down). 0, or
 * CTRD_ENOMEM or a spilled count that cannot be read back (countmap.h,
 * cm_add), err saying which: then close the engine without a
 * checkpoint. */
struct engine_count_add {
    uint64_t ad_id;
    const char *term;
    uint32_t term_len;
    uint32_t minute;
    uint64_t impressions, clicks;
};
int engine_add_counts(struct engine *e, const struct engine_count_add *adds,
                      size_t n, int64_t as_of_ms, char *err);

/* Splits a buffer of whole lines into up to one chunk per worker and
 * processes them (see engine_process); lines are numbered from 1. */
int engine_process_buffer(struct engine *e, enum engine_kind kind,
                          enum rec_format fmt, const char *data, size_t len,
                          uint32_t input, int64_t now_ms, char *err);

/* Forgets the reject samples collected so far (before a request, so its
 * samples are its own). */
void engine_clear_samples(struct engine *e);

void engine_read_lock(struct engine *e);
void engine_read_unlock(struct engine *e);

/* Progress of an input, by a key the caller derives from its identity:
 * 0 and the committed offset and line count, or CTRD_ENOTFOUND. */
int engine_progress_get(const struct engine *e, const char *key,
                        uint64_t *offset, uint64_t *lines);
/* Records progress, committed by the next checkpoint. key: no white space,
 * < 64 bytes. */
int engine_progress_set(struct engine *e, const char *key, uint64_t offset,
                        uint64_t lines);

/* Commits the state: 0, or an error after which the last committed state
 * is intact on disk, the files the attempt wrote and the engine does not
 * keep are deleted (a full disk gets back what the attempt took), and the
 * engine still holds and serves what it held, so a later checkpoint can
 * try again (but CTRD_ENOMEM: close it). Under a memory budget the counts
 * then spill what passes their share; a spill that fails (a full disk
 * again) fails the call the same way, though its commit stands. */
int engine_checkpoint(struct engine *e, char *err);

/* Whether what the store took in since the last checkpoint (the
 * memtables; counts read back from the spill file) fills its room in
 * memory_bytes (never without a budget): the caller checkpoints now
 * rather than at its usual interval. */
int engine_memory_full(const struct engine *e);

void engine_get_stats(const struct engine *e, struct engine_stats *out);

/* How big the store is (writer thread only: the QueryStore and the
 * joiners change outside the read lock). */
struct engine_sizes {
    uint64_t qs_partitions, qs_runs, qs_queries_on_disk, qs_disk_bytes;
    uint64_t qs_queries_in_memory, clicked_pairs, count_buckets, terms;
    uint64_t clicks_pending, qs_merging, qs_merged_bytes, qs_merges_failed;
    /* RAM by part (querystore.h, countmap.h), and the counts spilled */
    uint64_t memory_budget; /* engine_config.memory_bytes */
    uint64_t mem_memtables, mem_id_filter, mem_run_indexes, mem_clicked_pairs;
    uint64_t mem_counts, counts_spilled_bytes, counts_spill_file_bytes;
};
void engine_get_sizes(const struct engine *e, struct engine_sizes *out);
unsigned engine_workers(const struct engine *e);
const char *engine_data_dir(const struct engine *e);

/* The counts, the dictionary that names their terms, and the event time up
 * to which they are complete (the latest query time; -1 when empty). Owned
 * by the engine; read them only between engine_process() calls. */
const struct countmap *engine_counts(const struct engine *e);
const struct terms *engine_terms(const struct engine *e);
int64_t engine_as_of_ms(const struct engine *e);

#endif
