/* checkpoint: recovery and checkpoints of a data directory; see
 * checkpoint.h.
 *
 * MANIFEST facts (datadir.h gives the file's frame: magic line first,
 * checksum line last). FILE is a sealed file (fsutil.h) of the directory,
 * BYTES and CRC its size and fingerprint (decimal, 8 hex digits):
 *   seq N                        checkpoint number; names the files it wrote
 *   max_query_time MS            latest query time seen (as_of, retention)
 *   terms_bytes N                committed prefix of terms.dat (terms.h)
 *   counts FILE BYTES CRC        QueryMap/ClickMap snapshot (countmap.h)
 *   countdelta FILE BYTES CRC    a counts delta written after it; these
 *                                lines oldest first (countmap.h: chain)
 *   pending FILE BYTES CRC       clicks waiting for their query (below)
 *   run HOUR FILE BYTES CRC      QueryStore run (qsrun.h)
 *   marks HOUR FILE BYTES CRC    QueryStore clicked pairs (querystore.c)
 *   input KEY OFFSET LINES       progress of one input
 * PENDING FILE (pending-<seq>.dat): the content of a sealed file,
 * little-endian:
 *   offset  size   field
 *   0       40 k   k records {u64 query_id, u64 ad_id, i64 time_ms,
 *                  i64 arrived_ms, u64 line}
 *
 * RECOVERY reads the MANIFEST in two passes: the scalar facts first (the
 * dictionary, counts and QueryStore are opened with them), then the files.
 * Files are checked as they are loaded (read-only: those it does not load
 * are checked all the same), and a damaged or missing one fails the open
 * with the file, offset and damage named. Files the MANIFEST does not name
 * are deleted only after the next checkpoint.
 *
 * CHECKPOINT writes terms, runs and marks, pending clicks and (when they
 * changed) counts under names of the new seq (a merged run it adopts was
 * written since the last one, under that one's seq), fsyncs the
 * directory, then replaces the MANIFEST: the commit point. The counts file is
 * written on a second thread, concurrently with the runs, marks and pending
 * clicks (it reads only the counts, which nothing else in a checkpoint
 * touches); it is joined before the commit, and its failure fails the
 * checkpoint.
 *
 * COUNTS CHAIN: a checkpoint writes a delta of the counts changed since
 * the last commit, so that its cost follows what changed, not what is
 * held; it writes a new snapshot instead (and the MANIFEST drops the
 * chain) when there is none yet, when the chain holds CKPT_DELTAS_MAX
 * deltas, or when the chain's bytes with the new delta's would pass the
 * snapshot's. So the chain stays within about the snapshot's size (the
 * files' checksum trailers aside; disk within 2x of the counts, loading
 * within 2x of their reading) and snapshots grow at least 2x apart, which
 * bounds how often a bucket is rewritten.
 * The counts' changes are forgotten (cm_mark_clean) only when the MANIFEST
 * that names their file commits: after a failed checkpoint the next delta
 * covers them again.
 *
 * MEMORY (engine_config.memory_bytes; 0: unbounded; not for read-only and
 * verifying opens, which never write), in eighths: the counts keep at
 * most three in RAM, spilling their cold groups to a file of no name in
 * the directory (countmap.h) while they load and after every commit
 * (ckpt_spill); the runs' mapped pages take at most three (lookups of
 * clicks read the runs at random: a run-page budget smaller than the runs
 * costs a page fault a lookup), the id filter one (qs_set_budget); the
 * memtables get the last. Early checkpoints (ckpt_memory_full) keep the
 * two that grow between checkpoints in their shares: the memtables at
 * half of theirs filled (as their tables grow by doubling), and the
 * counts when late clicks have read so many spilled groups back that
 * they hold a sixteenth of the budget more than their share (or than the
 * hot groups that cannot spill, if more), which they can spill again once
 * the checkpoint commits them. */
#include "checkpoint.h"

#include "datadir.h"
#include "grow.h"
#include "sharder.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_WORDS_MAX 6

/* A PENDING FILE record. */
struct pending_record {
    uint64_t query_id, ad_id;
    int64_t time_ms, arrived_ms;
    uint64_t line;
};
_Static_assert(sizeof(struct pending_record) == 40, "PENDING FILE: 40-byte "
                                                    "records");

/* The retention horizon: queries before it are no longer kept. */
static int64_t horizon_ms(const struct ckpt *c)
{
    return c->max_query_ms < 0 ? INT64_MIN
                               : c->max_query_ms - c->cfg.retention_ms;
}

/* DIR/file, for opening and for messages. */
static void file_path(const struct ckpt *c, const char *file,
                      char path[FS_PATH_MAX])
{
    snprintf(path, FS_PATH_MAX, "%s/%s", c->dir, file);
}

/* ---- memory (MEMORY above) ---- */

static int memory_bounded(const struct ckpt *c)
{
    return c->cfg.memory_bytes && !c->cfg.readonly && !c->cfg.report;
}

/* The shares of the budget, in eighths (MEMORY above). */
enum {
    COUNTS_EIGHTHS = 3,
    RUN_PAGES_EIGHTHS = 3,
    ID_FILTER_EIGHTHS = 1,
    MEMTABLES_EIGHTHS = 1
};
_Static_assert(COUNTS_EIGHTHS + RUN_PAGES_EIGHTHS + ID_FILTER_EIGHTHS +
                       MEMTABLES_EIGHTHS ==
                   8,
               "the shares make the budget");

static uint64_t memory_share(const struct ckpt *c, unsigned eighths)
{
    return c->cfg.memory_bytes / 8 * eighths;
}

/* What the memtables, and the counts read back, may grow by between
 * checkpoints: half the memtables' share. */
static uint64_t growth_room(const struct ckpt *c)
{
    return memory_share(c, MEMTABLES_EIGHTHS) / 2;
}

/* After the counts spilled (or loaded): what they hold then is where
 * their growth is measured from. */
static void counts_settled(struct ckpt *c)
{
    c->counts_after_spill = cm_resident_bytes(c->counts);
}

int ckpt_spill(struct ckpt *c, char *err)
{
    if (!memory_bounded(c))
        return 0;
    int rc = cm_spill(c->counts, memory_share(c, COUNTS_EIGHTHS), err);
    counts_settled(c);
    return rc;
}

int ckpt_memory_full(const struct ckpt *c)
{
    if (!memory_bounded(c))
        return 0;
    struct qs_stats q;
    qs_get_stats(c->qs, &q);
    uint64_t counts = memory_share(c, COUNTS_EIGHTHS);
    if (c->counts_after_spill > counts)
        counts = c->counts_after_spill; /* the hot groups: they cannot go */
    return q.memtable_fill_bytes >= growth_room(c) ||
           cm_resident_bytes(c->counts) > counts + growth_room(c);
}

/* ---- progress ---- */

int ckpt_progress_get(const struct ckpt *c, const char *key, uint64_t *offset,
                      uint64_t *lines)
{
    for (size_t i = 0; i < c->n_inputs; i++) {
        if (strcmp(c->inputs[i].key, key) == 0) {
            *offset = c->inputs[i].offset;
            *lines = c->inputs[i].lines;
            return 0;
        }
    }
    return CTRD_ENOTFOUND;
}

int ckpt_progress_set(struct ckpt *c, const char *key, uint64_t offset,
                      uint64_t lines)
{
    size_t i = 0;
    while (i < c->n_inputs && strcmp(c->inputs[i].key, key) != 0)
        i++;
    if (i == c->n_inputs) {
        if (strlen(key) >= CKPT_INPUT_KEY_MAX || strpbrk(key, " \t\n"))
            return CTRD_EINVAL;
        if (grow(&c->inputs, &c->cap_inputs, i + 1, sizeof *c->inputs, 8))
            return CTRD_ENOMEM;
        snprintf(c->inputs[i].key, sizeof c->inputs[i].key, "%s", key);
        c->n_inputs++;
    }
    c->inputs[i].offset = offset;
    c->inputs[i].lines = lines;
    return 0;
}

/* ---- checkpoint ---- */

static int put_pending_record(void *ctx, const struct pending_click *p)
{
    struct pending_record rec = {p->query_id, p->ad_id, p->time_ms,
                                 p->arrived_ms, p->src.line};
    fs_writer_put(ctx, &rec, sizeof rec);
    return 0;
}

static int put_pending(struct fs_writer *w, void *ctx)
{
    const struct ckpt *c = ctx;
    for (unsigned i = 0; i < c->n_workers; i++)
        joiner_foreach_pending(c->joiners[i], put_pending_record, w);
    return 0;
}

static void print_file(FILE *m, const char *kind, const char *file,
                       const struct fs_seal *seal)
{
    fprintf(m, "%s %s %" PRIu64 " %08" PRIx32 "\n", kind, file, seal->bytes,
            seal->crc);
}

/* Writes the waiting clicks of every joiner (none: no file) and prints
 * their manifest line. */
static int write_pending(struct ckpt *c, FILE *m, char *err)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < c->n_workers; i++)
        n += joiner_pending_count(c->joiners[i]);
    if (n == 0)
        return 0;
    char file[64], path[FS_PATH_MAX];
    snprintf(file, sizeof file, "pending-%" PRIu64 ".dat", c->seq);
    file_path(c, file, path);
    struct fs_seal seal;
    int rc = fs_write_file(path, FS_SEALED, put_pending, c, &seal, err);
    if (rc == 0)
        print_file(m, "pending", file, &seal);
    return rc;
}

/* Whether the checkpoint's counts go in a delta (else in a snapshot): the
 * COUNTS CHAIN rule. */
static int counts_as_delta(const struct ckpt *c)
{
    const struct ckpt_counts *chain = &c->counts_files;
    if (!chain->snapshot.name[0] || chain->n_deltas == CKPT_DELTAS_MAX)
        return 0;
    uint64_t bytes = cm_delta_bytes(c->counts);
    for (unsigned i = 0; i < chain->n_deltas; i++)
        bytes += chain->deltas[i].seal.bytes;
    return bytes <= chain->snapshot.seal.bytes;
}

/* Writes the counts changed since the last commit (nothing when none did)
 * and sets counts_next to the chain that names them. */
static int write_counts(struct ckpt *c, char *err)
{
    struct ckpt_counts *next = &c->counts_next;
    *next = c->counts_files;
    if (next->snapshot.name[0] &&
        cm_delta_bytes(c->counts) == CM_FILE_HEADER_BYTES)
        return 0; /* nothing changed since the last commit */
    int delta = counts_as_delta(c);
    struct ckpt_file *f =
        delta ? &next->deltas[next->n_deltas] : &next->snapshot;
    snprintf(f->name, sizeof f->name, "counts-%" PRIu64 ".%s", c->seq,
             delta ? "delta" : "dat");
    char path[FS_PATH_MAX];
    file_path(c, f->name, path);
    next->n_deltas = delta ? next->n_deltas + 1 : 0;
    return cm_save(c->counts, delta ? CM_DELTA : CM_SNAPSHOT, path, &f->seal,
                   err);
}

/* After the MANIFEST naming counts_next committed: the chain to extend,
 * and the counts' changes it holds forgotten. */
static void counts_committed(struct ckpt *c)
{
    c->counts_files = c->counts_next;
    cm_mark_clean(c->counts);
}

/* Deletes the files of the directory that neither facts (a committed
 * MANIFEST's) nor the state in memory name: after a failed checkpoint, the
 * files it wrote that the engine does not keep (a run or counts file cut
 * short, runs never adopted, ...). Left until a checkpoint succeeds, they
 * would hold their disk space: on a full disk each failed retry would take
 * the space that came back, and space freed bit by bit would never let one
 * succeed. Kept besides what facts name: the runs and marks the store
 * holds now and the file of its merge in progress (a counts file written
 * goes: the next checkpoint writes the changes it held again). Best
 * effort: on any failure here, nothing is deleted. */
static void remove_garbage(struct ckpt *c, const char *facts)
{
    char *keep = NULL;
    size_t keep_len;
    FILE *m = open_memstream(&keep, &keep_len);
    if (m) {
        fputs(facts, m);
        qs_print_files(c->qs, m);
        if (fclose(m) == 0)
            datadir_remove_garbage(c->dir, keep);
    }
    free(keep);
}

static void drop_unfinished(struct ckpt *c)
{
    char *committed = NULL, ignored[CTRD_ERR_LEN];
    size_t len;
    if (datadir_read_manifest(c->dir, &committed, &len, ignored) == 0)
        remove_garbage(c, committed);
    free(committed);
}

/* The counts file, written on a thread of its own while the
 * QueryStore writes its runs: the two share no state, and the final
 * checkpoint of a batch ingest would otherwise leave a core idle. */
struct counts_job {
    struct ckpt *c;
    int rc;
    char err[CTRD_ERR_LEN];
};

static void *counts_job_run(void *arg)
{
    struct counts_job *j = arg;
    j->rc = write_counts(j->c, j->err);
    return NULL;
}

/* Writes the QueryStore's files and the pending clicks while another
 * thread writes the counts (this one, after them, when no thread can be
 * started); the first error of either. */
static int write_store_and_counts(struct ckpt *c, FILE *m, char *err)
{
    struct counts_job job = {.c = c};
    pthread_t t;
    int threaded = pthread_create(&t, NULL, counts_job_run, &job) == 0;
    int rc = qs_checkpoint(c->qs, c->seq, horizon_ms(c), m, err);
    if (rc == 0)
        rc = write_pending(c, m, err);
    if (threaded)
        pthread_join(t, NULL);
    else
        counts_job_run(&job);
    if (rc == 0 && job.rc != 0)
        rc = ctrd_fail(err, job.rc, "%s", job.err);
    return rc;
}

/* Writes every file of the checkpoint and prints the facts that name them
 * to m. */
static int write_files(struct ckpt *c, FILE *m, char *err)
{
    int rc = terms_sync(c->terms, &c->terms_bytes, err);
    if (rc != 0)
        return rc;
    fprintf(m,
            "seq %" PRIu64 "\nmax_query_time %" PRId64 "\nterms_bytes %" PRIu64
            "\n",
            c->seq, c->max_query_ms, c->terms_bytes);
    rc = write_store_and_counts(c, m, err);
    if (rc != 0)
        return rc;
    const struct ckpt_counts *chain = &c->counts_next;
    print_file(m, "counts", chain->snapshot.name, &chain->snapshot.seal);
    for (unsigned i = 0; i < chain->n_deltas; i++)
        print_file(m, "countdelta", chain->deltas[i].name,
                   &chain->deltas[i].seal);
    for (size_t i = 0; i < c->n_inputs; i++)
        fprintf(m, "input %s %" PRIu64 " %" PRIu64 "\n", c->inputs[i].key,
                c->inputs[i].offset, c->inputs[i].lines);
    return 0;
}

int ckpt_write(struct ckpt *c, char *err)
{
    char *facts = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&facts, &len);
    if (!m)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    c->seq++; /* even when this fails: its files' names are used up */
    int rc = write_files(c, m, err);
    if (fclose(m) != 0 && rc == 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc == 0)
        rc = fs_fsync_dir(c->dir, err);
    if (rc == 0)
        rc = datadir_write_manifest(c->dir, facts, len, err);
    if (rc == 0)
        counts_committed(c);
    if (rc == 0)
        remove_garbage(c, facts);
    else
        drop_unfinished(c);
    free(facts);
    return rc;
}

/* ---- recovery ---- */

/* In verification a damaged or missing file is reported and skipped;
 * otherwise it fails the open. */
static int damage(struct ckpt *c, int rc, const char *err)
{
    if (!c->cfg.report || (rc != CTRD_ECORRUPT && rc != CTRD_ENOTFOUND))
        return rc;
    c->cfg.report(c->cfg.report_ctx, err);
    return 0;
}

/* A sealed file of the directory, mapped and checked. */
struct mapped {
    char path[FS_PATH_MAX];
    void *map;
    size_t map_len, len;
};

static int map_file(const struct ckpt *c, const char *file,
                    const struct fs_seal *seal, struct mapped *f, char *err)
{
    file_path(c, file, f->path);
    return fs_map_sealed(f->path, seal, &f->map, &f->map_len, &f->len, err);
}

/* Gives each waiting click of a PENDING FILE to the joiner of its query. */
static int restore_pending(struct ckpt *c, const struct mapped *f, char *err)
{
    size_t n = f->len / sizeof(struct pending_record);
    if (f->len % sizeof(struct pending_record))
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s: offset %zu: a record cut "
                         "short",
                         f->path, n * sizeof(struct pending_record));
    for (size_t i = 0; i < n; i++) {
        struct pending_record rec;
        memcpy(&rec, (const char *)f->map + i * sizeof rec, sizeof rec);
        struct pending_click p = {rec.query_id,
                                  rec.ad_id,
                                  rec.time_ms,
                                  rec.arrived_ms,
                                  {ENGINE_INPUT_EARLIER, rec.line}};
        unsigned owner = sharder_join_worker(p.query_id, c->n_workers);
        if (joiner_restore_pending(c->joiners[owner], &p) != 0)
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s",
                             f->path);
    }
    return 0;
}

/* Loads a PENDING FILE, or (read-only) checks it: a read-only open loads
 * the counts and terms only, yet checks the other files the MANIFEST names
 * as fully as loading them would (size, fingerprint, every block): a
 * damaged directory is refused by every command, not only by those that
 * load what is damaged. */
static int load_pending(struct ckpt *c, const char *file,
                        const struct fs_seal *seal, char *err)
{
    struct mapped f;
    int rc = map_file(c, file, seal, &f, err);
    if (rc != 0)
        return rc;
    if (!c->cfg.readonly)
        rc = restore_pending(c, &f, err);
    fs_unmap(f.map, f.map_len);
    return rc;
}

/* Loads a run or marks file into the QueryStore, or (read-only) checks
 * it as load_pending() does. */
static int load_store_file(struct ckpt *c, const char *kind, int64_t hour,
                           const char *file, const struct fs_seal *seal,
                           char *err)
{
    if (!c->cfg.readonly)
        return qs_load(c->qs, kind, hour, file, seal, err);
    struct mapped f;
    int rc = map_file(c, file, seal, &f, err);
    if (rc == 0)
        fs_unmap(f.map, f.map_len);
    return rc;
}

/* A decimal number that fits 64 bits, and nothing else: 0 or
 * CTRD_EINVAL. */
static int word_u64(const char *w, uint64_t *v)
{
    if (!*w || strspn(w, "0123456789") != strlen(w) || strlen(w) > 20)
        return CTRD_EINVAL;
    errno = 0;
    *v = strtoull(w, NULL, 10);
    return errno ? CTRD_EINVAL : 0;
}

static int word_i64(const char *w, int64_t *v)
{
    uint64_t u;
    int neg = *w == '-';
    if (word_u64(w + neg, &u) != 0 || u > (uint64_t)INT64_MAX)
        return CTRD_EINVAL;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

/* Size and fingerprint: a decimal and 8 hex digits. */
static int words_seal(char *const *w, struct fs_seal *seal)
{
    if (word_u64(w[0], &seal->bytes) != 0 || strlen(w[1]) != 8 ||
        strspn(w[1], "0123456789abcdef") != 8)
        return CTRD_EINVAL;
    seal->crc = (uint32_t)strtoul(w[1], NULL, 16);
    return 0;
}

/* Whether a MANIFEST may name the file: a checkpoint's file of this
 * directory, by its name (nothing outside it, nothing else in it). */
static int state_file(const char *name)
{
    return datadir_classify(name) == DATADIR_STATE &&
           strcmp(name, DATADIR_MANIFEST ".tmp") != 0 && strlen(name) < 64;
}

/* A counts or countdelta line's file into f: 0 or CTRD_EINVAL. */
static int counts_fact(struct ckpt_file *f, char *const *w)
{
    if (words_seal(w + 2, &f->seal) != 0 || !state_file(w[1]))
        return CTRD_EINVAL;
    snprintf(f->name, sizeof f->name, "%s", w[1]);
    return 0;
}

/* Applies one manifest line (split into its n words) to the state being
 * opened: 0, CTRD_EINVAL (not a valid line), or the error of loading the
 * file it names. */
static int apply_fact(struct ckpt *c, char *const *w, int n, char *err)
{
    struct fs_seal seal;
    int64_t hour;
    uint64_t x, y;
    const char *k = w[0];
    if (n == 2 && strcmp(k, "seq") == 0 && word_u64(w[1], &c->seq) == 0)
        return 0;
    if (n == 2 && strcmp(k, "max_query_time") == 0 &&
        word_i64(w[1], &c->max_query_ms) == 0)
        return 0;
    if (n == 2 && strcmp(k, "terms_bytes") == 0 &&
        word_u64(w[1], &c->terms_bytes) == 0)
        return 0;
    if (n == 4 && strcmp(k, "counts") == 0)
        return counts_fact(&c->counts_files.snapshot, w);
    if (n == 4 && strcmp(k, "countdelta") == 0 &&
        c->counts_files.n_deltas < CKPT_DELTAS_MAX)
        return counts_fact(&c->counts_files.deltas[c->counts_files.n_deltas++],
                           w);
    if (n == 4 && strcmp(k, "pending") == 0 && words_seal(w + 2, &seal) == 0 &&
        state_file(w[1]))
        return damage(c, load_pending(c, w[1], &seal, err), err);
    if (n == 5 && (strcmp(k, "run") == 0 || strcmp(k, "marks") == 0) &&
        word_i64(w[1], &hour) == 0 && words_seal(w + 3, &seal) == 0 &&
        state_file(w[2]))
        return damage(c, load_store_file(c, k, hour, w[2], &seal, err), err);
    if (n == 4 && strcmp(k, "input") == 0 && word_u64(w[2], &x) == 0 &&
        word_u64(w[3], &y) == 0 && ckpt_progress_set(c, w[1], x, y) == 0)
        return 0;
    return CTRD_EINVAL;
}

/* Whether a manifest line is a scalar fact, which the first pass applies
 * (the components opened between the passes need them). */
static int is_scalar(const char *kind)
{
    return strcmp(kind, "seq") == 0 || strcmp(kind, "max_query_time") == 0 ||
           strcmp(kind, "terms_bytes") == 0 || strcmp(kind, "counts") == 0 ||
           strcmp(kind, "countdelta") == 0;
}

/* Applies one line of the facts if it belongs to this pass (scalars set:
 * the scalar facts, else the others). */
static int apply_line(struct ckpt *c, const char *line, size_t len, int scalars,
                      char *err)
{
    char copy[FS_PATH_MAX], *w[MANIFEST_WORDS_MAX + 1];
    int n = 0;
    if (len >= sizeof copy)
        return CTRD_EINVAL;
    memcpy(copy, line, len);
    copy[len] = '\0';
    char *save;
    for (char *t = strtok_r(copy, " ", &save); t && n <= MANIFEST_WORDS_MAX;
         t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    if (n == 0 || n > MANIFEST_WORDS_MAX)
        return CTRD_EINVAL;
    return is_scalar(w[0]) == scalars ? apply_fact(c, w, n, err) : 0;
}

static int apply_manifest(struct ckpt *c, const char *facts, int scalars,
                          char *err)
{
    size_t offset = strlen(DATADIR_MAGIC) + 1;
    for (const char *line = facts; *line;) {
        size_t len = strcspn(line, "\n");
        int rc = apply_line(c, line, len, scalars, err);
        if (rc == CTRD_EINVAL)
            rc = damage(c,
                        ctrd_fail(err, CTRD_ECORRUPT,
                                  "%s/%s: offset %zu: "
                                  "bad line '%.*s'",
                                  c->dir, DATADIR_MANIFEST, offset,
                                  (int)(len < 80 ? len : 80), line),
                        err);
        if (rc != 0)
            return rc;
        offset += len + 1;
        line += len + (line[len] == '\n');
    }
    return 0;
}

/* A new directory's first MANIFEST: no state, yet ctrd's. */
static const char initial_facts[] = "seq 0\nmax_query_time -1\nterms_bytes 0\n";

/* Locks the directory (unless read-only) and reads its MANIFEST into
 * *facts; a new directory (only when writing) gets its first MANIFEST. */
static int open_manifest(struct ckpt *c, char **facts, char *err)
{
    int creating = !c->cfg.readonly && !c->cfg.report;
    size_t len;
    int rc = creating ? fs_mkdirs(c->dir, err) : 0;
    if (rc == 0 && !c->cfg.readonly)
        rc = datadir_lock(c->dir, creating, &c->lock_fd, err);
    if (rc == 0)
        rc = datadir_read_manifest(c->dir, facts, &len, err);
    if (rc != CTRD_ENOTFOUND)
        return rc;
    rc = datadir_check_new(c->dir, err);
    if (rc != 0)
        return rc;
    if (!creating)
        return ctrd_fail(err, CTRD_ENOTFOUND, "%s holds no ctrd data", c->dir);
    rc = datadir_write_manifest(c->dir, initial_facts, sizeof initial_facts - 1,
                                err);
    if (rc == 0 && !(*facts = strdup(initial_facts)))
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    return rc;
}

/* Loads one counts file of the chain (or reports it damaged). */
static int load_counts_file(struct ckpt *c, const struct ckpt_file *f,
                            char *err)
{
    char path[FS_PATH_MAX];
    file_path(c, f->name, path);
    uint32_t n_terms = c->terms_damaged ? UINT32_MAX : terms_count(c->terms);
    return damage(c, cm_load(c->counts, path, &f->seal, n_terms, err), err);
}

/* Loads the counts chain the scalar facts name, newest file first (see
 * cm_load). */
static int load_counts(struct ckpt *c, char *err)
{
    const struct ckpt_counts *chain = &c->counts_files;
    int rc = 0;
    if (!chain->snapshot.name[0] && chain->n_deltas)
        rc = damage(c,
                    ctrd_fail(err, CTRD_ECORRUPT,
                              "%s/%s: count deltas without a counts "
                              "snapshot",
                              c->dir, DATADIR_MANIFEST),
                    err);
    for (unsigned i = chain->n_deltas; rc == 0 && i > 0; i--)
        rc = load_counts_file(c, &chain->deltas[i - 1], err);
    if (rc == 0 && chain->snapshot.name[0])
        rc = load_counts_file(c, &chain->snapshot, err);
    cm_mark_clean(c->counts);
    if (rc == 0 && memory_bounded(c)) {
        counts_settled(c);
        malloc_trim(0); /* what the spills freed */
    }
    return rc;
}

/* Opens the term dictionary and the counts the scalar facts name. */
static int load_dictionary_and_counts(struct ckpt *c, char *err)
{
    int rc = terms_open(c->dir, c->terms_bytes, &c->terms, err);
    if (rc != 0 && c->cfg.report && (rc = damage(c, rc, err)) == 0) {
        c->terms_damaged = 1;
        rc = terms_open(c->dir, 0, &c->terms, err);
    }
    if (rc == 0 && cm_create(&c->counts) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc == 0 && memory_bounded(c))
        rc = cm_spill_open(c->counts, c->dir, memory_share(c, COUNTS_EIGHTHS),
                           err);
    if (rc == 0)
        rc = load_counts(c, err);
    return rc;
}

/* The QueryStore and the joiners, empty, for the files to load into. */
static int open_join_state(struct ckpt *c, char *err)
{
    struct joiner_config jc = {c->cfg.join_window_ms, c->cfg.click_timeout_ms};
    int rc = qs_open(c->dir, c->n_workers, horizon_ms(c), &c->qs, err);
    if (rc == 0 && memory_bounded(c))
        qs_set_budget(c->qs, memory_share(c, RUN_PAGES_EIGHTHS),
                      memory_share(c, ID_FILTER_EIGHTHS));
    if (rc == 0 && !(c->joiners = calloc(c->n_workers, sizeof *c->joiners)))
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    for (unsigned i = 0; rc == 0 && i < c->n_workers; i++) {
        if (joiner_create(i, c->qs, c->terms, &jc, &c->joiners[i]) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    return rc;
}

int ckpt_open(struct ckpt *c, const struct engine_config *cfg,
              unsigned n_workers, char *err)
{
    *c = (struct ckpt){
        .cfg = *cfg, .n_workers = n_workers, .lock_fd = -1, .max_query_ms = -1};
    snprintf(c->dir, sizeof c->dir, "%s", cfg->data_dir);
    c->cfg.data_dir = c->dir;
    char *facts = NULL;
    int rc = open_manifest(c, &facts, err);
    if (rc == 0)
        rc = apply_manifest(c, facts, 1, err);
    if (rc == 0)
        rc = load_dictionary_and_counts(c, err);
    if (rc == 0 && !cfg->readonly)
        rc = open_join_state(c, err);
    if (rc == 0)
        rc = apply_manifest(c, facts, 0, err);
    free(facts);
    if (rc != 0)
        ckpt_close(c);
    return rc;
}

void ckpt_close(struct ckpt *c)
{
    for (unsigned i = 0; c->joiners && i < c->n_workers; i++)
        joiner_free(c->joiners[i]);
    free(c->joiners);
    qs_close(c->qs);
    cm_free(c->counts);
    terms_close(c->terms);
    free(c->inputs);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    *c = (struct ckpt){.lock_fd = -1};
}
