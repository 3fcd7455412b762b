/* checkpoint: the durable state of one data directory, and the two ways it
 * crosses the disk — recovery (ckpt_open: lock the directory, read its
 * MANIFEST, load every file it names) and the checkpoint (ckpt_write: write
 * the new files, fsync them, replace the MANIFEST, delete the garbage).
 * The format of the MANIFEST's facts and of the PENDING FILE is in
 * checkpoint.c; the MANIFEST's frame is datadir.h's.
 *
 * Owns the directory's lock, the term dictionary, the counts (QueryMap +
 * ClickMap), the QueryStore, one joiner per worker (its waiting clicks are
 * state), the progress of every input and the facts of the last commit.
 * The engine (engine.c) is its only user: it runs the pipeline over the
 * objects held here and drives ckpt_write().
 *
 * Invariants: the state on disk is what the last MANIFEST names, and
 * nothing else is ever read back; a file is fsync'd before a MANIFEST names
 * it and never changed after; a failed ckpt_write() leaves the committed
 * MANIFEST and the files it names intact, and the state in memory usable
 * for another try. Opening changes nothing on disk but for a new
 * directory's first MANIFEST. Under a memory budget (checkpoint.c,
 * MEMORY) the counts also keep a scratch file in the directory, with no
 * name there (countmap.h, SPILL): read back by this process alone, never
 * part of the state, gone with the process.
 *
 * Errors: functions return 0 or a negative CTRD_E* code and fill err;
 * CTRD_ENOTFOUND means what is looked up is absent (a read-only open of a
 * directory with no data, an input with no progress), never a failure.
 *
 * Threads: the engine's writer thread calls everything; the engine's
 * workers use terms, counts, qs and joiners as engine.h describes, never
 * during a ckpt_* call. ckpt_write() saves the counts on a thread of its
 * own while it writes the QueryStore's files, and joins it before it
 * returns. */
#ifndef CTRD_CHECKPOINT_H
#define CTRD_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "countmap.h"
#include "engine.h"
#include "fsutil.h"
#include "joiner.h"
#include "querystore.h"
#include "terms.h"

#define CKPT_INPUT_KEY_MAX 64
/* The most count deltas a chain holds before a new snapshot. */
#define CKPT_DELTAS_MAX 16

struct ckpt_input {
    char key[CKPT_INPUT_KEY_MAX];
    uint64_t offset, lines;
};

/* A sealed file of the directory, as a MANIFEST names it. */
struct ckpt_file {
    char name[64]; /* "": none */
    struct fs_seal seal;
};

/* The counts files of a checkpoint (countmap.h's chain): the snapshot and
 * the deltas written since, oldest first. */
struct ckpt_counts {
    struct ckpt_file snapshot;
    struct ckpt_file deltas[CKPT_DELTAS_MAX];
    unsigned n_deltas;
};

/* Embedded in the engine; the fields above the line are for the engine
 * to use, those below are checkpoint.c's. */
struct ckpt {
    struct terms *terms;
    struct countmap *counts;
    struct qs *qs;           /* NULL when read-only */
    struct joiner **joiners; /* [n_workers]; NULL when read-only */
    int64_t max_query_ms;    /* as_of; the engine raises it; -1: empty */
    /* ---- */
    struct engine_config cfg; /* data_dir points into dir */
    char dir[512];
    unsigned n_workers;
    int lock_fd;       /* -1: none */
    int terms_damaged; /* verification: counts' term ids go unchecked */
    uint64_t seq, terms_bytes;
    struct ckpt_counts counts_files; /* the committed MANIFEST's */
    struct ckpt_counts counts_next;  /* of the checkpoint being written */
    uint64_t counts_after_spill;     /* their resident bytes then */
    struct ckpt_input *inputs;
    size_t n_inputs, cap_inputs;
};

/* Recovers the directory cfg names for n_workers workers, as engine_open()
 * describes (its codes too); read-only, opens no QueryStore and no joiners.
 * On failure c holds nothing (ckpt_close() is a no-op on it). */
int ckpt_open(struct ckpt *c, const struct engine_config *cfg,
              unsigned n_workers, char *err);

/* Releases everything, the lock last; c is then empty. */
void ckpt_close(struct ckpt *c);

/* Commits the state: see engine_checkpoint(). */
int ckpt_write(struct ckpt *c, char *err);

/* Under a memory budget (checkpoint.c, MEMORY), moves the counts' cold
 * groups past their share to the spill file (cm_spill(): its codes); with
 * the counts to itself. 0 without a budget. */
int ckpt_spill(struct ckpt *c, char *err);

/* Whether the memtables, or the counts read back from their spill file,
 * outgrow their shares of the memory budget (checkpoint.c, MEMORY; never
 * without one): time for a checkpoint. */
int ckpt_memory_full(const struct ckpt *c);

/* See engine_progress_get() and engine_progress_set(). */
int ckpt_progress_get(const struct ckpt *c, const char *key, uint64_t *offset,
                      uint64_t *lines);
int ckpt_progress_set(struct ckpt *c, const char *key, uint64_t offset,
                      uint64_t lines);

#endif
