/* engine: the pipeline and its durability; see engine.h.
 *
 * MANIFEST facts (datadir.h gives the file's frame: magic line first,
 * checksum line last). FILE is a sealed file (fsutil.h) of the directory,
 * BYTES and CRC its size and fingerprint (decimal, 8 hex digits):
 *   seq N                        checkpoint number; names the files it wrote
 *   max_query_time MS            latest query time seen (as_of, retention)
 *   terms_bytes N                committed prefix of terms.dat (terms.h)
 *   counts FILE BYTES CRC        QueryMap/ClickMap snapshot (countmap.h)
 *   pending FILE BYTES CRC       clicks waiting for their query (below)
 *   run HOUR FILE BYTES CRC      QueryStore run (querystore.c)
 *   marks HOUR FILE BYTES CRC    QueryStore clicked pairs (querystore.c)
 *   input KEY OFFSET LINES       progress of one input
 * PENDING FILE (pending-<seq>.dat): the content of a sealed file,
 * little-endian:
 *   offset  size   field
 *   0       40 k   k records {u64 query_id, u64 ad_id, i64 time_ms,
 *                  i64 arrived_ms, u64 line}
 *
 * OPENING changes nothing on disk but for a new directory's first
 * MANIFEST: files are checked as they are loaded (read-only: those it does
 * not load are checked all the same), and a damaged or missing one fails
 * the open with the file, offset and damage named. Files the MANIFEST does
 * not name are deleted only after the next checkpoint.
 *
 * BATCH PHASES (each a barrier across the workers):
 *   parse  worker i parses chunk i, packs every valid record into
 *          routed[owner of its join shard], counts rejects;
 *   join   worker j feeds routed[j] of every chunk, in chunk order, to its
 *          joiner; deltas are summed per (ad, term, minute) and go to
 *          deltas[owner of the ad's count shard];
 *   count  worker k applies deltas[k] of every worker to the countmap. */
#include "engine.h"

#include "datadir.h"
#include "fsutil.h"
#include "hash.h"
#include "querystore.h"
#include "sharder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MANIFEST_WORDS_MAX 6
/* Queries dated further ahead than this of the wall clock do not move the
 * retention horizon, so one bogus future time cannot expire the store. */
#define HORIZON_FUTURE_SLACK_MS INT64_C(3600000)
#define INPUT_KEY_MAX 64

struct bytes {
    char *p;
    size_t len, cap;
};

struct packed_query {
    uint64_t query_id;
    int64_t time_ms;
    uint64_t line;
    uint32_t input;
    uint16_t term_len;
    uint8_t n_ads;
    uint8_t pad;
    /* then n_ads u64 ad ids, then term_len bytes, padded to 8 */
};

struct packed_click {
    struct rec_click click;
    uint64_t line;
    uint32_t input;
    uint32_t pad;
};

/* Count deltas of one batch summed per (ad, term, minute) before they
 * cross to the count workers: Zipf-distributed ads and terms repeat a lot
 * within a batch. A slot with zero impressions and clicks is empty. */
struct combined {
    uint64_t ad_id;
    uint32_t term_id, minute;
    uint32_t impressions, clicks;
};
#define COMBINER_SLOTS (1u << 16)

struct input_progress {
    char key[INPUT_KEY_MAX];
    uint64_t offset, lines;
};

/* A PENDING FILE record. */
struct pending_record {
    uint64_t query_id, ad_id;
    int64_t time_ms, arrived_ms;
    uint64_t line;
};
_Static_assert(sizeof(struct pending_record) == 40, "PENDING FILE: 40-byte "
                                                    "records");

struct worker {
    struct engine *e;
    unsigned id;
    pthread_t thread;
    struct joiner *joiner;
    struct bytes *routed; /* [n_workers], filled by the parse phase */
    struct bytes *deltas; /* [n_workers], filled by the join phase */
    struct combined *combiner; /* COMBINER_SLOTS */
    uint32_t combiner_used;
    uint64_t lines;
    int64_t max_query_ms;
    uint64_t rejects[REC_REASON_COUNT];
    struct engine_reject samples[ENGINE_REJECT_SAMPLES];
    size_t n_samples;
    int rc;
};

typedef void phase_fn(struct engine *e, struct worker *w);

struct engine {
    struct engine_config cfg;
    char dir[512];
    int lock_fd;
    unsigned n_workers;
    uint64_t seq;
    int64_t max_query_ms;
    int64_t now_ms;
    uint64_t terms_bytes;
    char counts_file[64];
    struct fs_seal counts_seal;
    int counts_dirty;
    int terms_damaged; /* verification: counts' term ids go unchecked */
    struct terms *terms;
    struct countmap *counts;
    struct qs *qs;
    struct input_progress *inputs;
    size_t n_inputs;
    struct engine_stats stats; /* lines, rejects, samples; join from joiners */
    uint64_t parse_rejected[2];
    /* the batch being processed */
    enum engine_kind kind;
    enum rec_format fmt;
    const struct engine_chunk *chunks;
    unsigned n_chunks;
    pthread_rwlock_t read_lock; /* readers vs. the count phase */
    /* the worker pool */
    pthread_mutex_t mu;
    pthread_cond_t cv_go, cv_done;
    phase_fn *phase;
    unsigned generation, finished;
    int stopping, threads_started;
    struct worker workers[];
};

/* ---- small helpers ---- */

static int bytes_reserve(struct bytes *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 65536;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return CTRD_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int reject_before(const struct engine_reject *a,
                         const struct engine_reject *b)
{
    return a->input != b->input ? a->input < b->input : a->line < b->line;
}

/* Keeps the ENGINE_REJECT_SAMPLES first rejects by (input, line) in
 * samples[0..*n), sorted. */
static void samples_keep_first(struct engine_reject *samples, size_t *n,
                               const struct engine_reject *r)
{
    size_t at = *n;
    while (at > 0 && reject_before(r, &samples[at - 1]))
        at--;
    if (at == ENGINE_REJECT_SAMPLES)
        return;
    if (*n < ENGINE_REJECT_SAMPLES)
        (*n)++;
    memmove(samples + at + 1, samples + at,
            (*n - 1 - at) * sizeof *samples);
    samples[at] = *r;
}

static void worker_reject(struct worker *w, enum rec_reason reason,
                          uint32_t input, uint64_t line)
{
    struct engine_reject r = {input, line, reason};
    w->rejects[reason]++;
    samples_keep_first(w->samples, &w->n_samples, &r);
}

/* ---- the worker pool ---- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct engine *e = w->e;
    unsigned seen = 0;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (e->generation == seen && !e->stopping)
            pthread_cond_wait(&e->cv_go, &e->mu);
        if (e->stopping)
            break;
        seen = e->generation;
        phase_fn *fn = e->phase;
        pthread_mutex_unlock(&e->mu);
        fn(e, w);
        pthread_mutex_lock(&e->mu);
        if (++e->finished == e->n_workers)
            pthread_cond_signal(&e->cv_done);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void run_phase(struct engine *e, phase_fn *fn)
{
    if (e->n_workers == 1) {
        fn(e, &e->workers[0]);
        return;
    }
    pthread_mutex_lock(&e->mu);
    e->phase = fn;
    e->finished = 0;
    e->generation++;
    pthread_cond_broadcast(&e->cv_go);
    while (e->finished < e->n_workers)
        pthread_cond_wait(&e->cv_done, &e->mu);
    pthread_mutex_unlock(&e->mu);
}

static int start_threads(struct engine *e, char *err)
{
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv_go, NULL);
    pthread_cond_init(&e->cv_done, NULL);
    e->threads_started = 1;
    if (e->n_workers == 1)
        return 0;
    for (unsigned i = 0; i < e->n_workers; i++) {
        int rc = pthread_create(&e->workers[i].thread, NULL, worker_main,
                                &e->workers[i]);
        if (rc != 0) {
            e->n_workers = i; /* join the ones that started */
            return ctrd_fail(err, CTRD_EIO, "cannot start worker: %s",
                             strerror(rc));
        }
    }
    return 0;
}

static void stop_threads(struct engine *e)
{
    if (!e->threads_started)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_broadcast(&e->cv_go);
    pthread_mutex_unlock(&e->mu);
    for (unsigned i = 0; e->n_workers > 1 && i < e->n_workers; i++)
        pthread_join(e->workers[i].thread, NULL);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv_go);
    pthread_cond_destroy(&e->cv_done);
}

/* ---- phase 1: parse and route by join shard ---- */

static int pack_query(struct bytes *b, const struct rec_query *q,
                      uint32_t input, uint64_t line)
{
    size_t size = sizeof(struct packed_query) + 8 * (size_t)q->n_ads +
                  ((q->term_len + 7u) & ~7u);
    if (bytes_reserve(b, size) != 0)
        return CTRD_ENOMEM;
    char *p = b->p + b->len;
    struct packed_query h = {q->query_id, q->time_ms, line,  input,
                             (uint16_t)q->term_len, (uint8_t)q->n_ads, 0};
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, q->ads, 8 * (size_t)q->n_ads);
    memcpy(p + sizeof h + 8 * (size_t)q->n_ads, q->term, q->term_len);
    b->len += size;
    return 0;
}

/* Reads the packed query at p into q; returns its size. */
static size_t unpack_query(const char *p, struct rec_query *q,
                           struct join_src *src)
{
    struct packed_query h;
    memcpy(&h, p, sizeof h);
    q->query_id = h.query_id;
    q->time_ms = h.time_ms;
    q->n_ads = h.n_ads;
    q->term_len = h.term_len;
    memcpy(q->ads, p + sizeof h, 8 * (size_t)h.n_ads);
    memcpy(q->term, p + sizeof h + 8 * (size_t)h.n_ads, h.term_len);
    *src = (struct join_src){h.input, h.line};
    return sizeof h + 8 * (size_t)h.n_ads + ((h.term_len + 7u) & ~7u);
}

/* Parses one line and routes the record; counts non-empty lines. */
static int route_line(struct engine *e, struct worker *w, const char *line,
                      size_t len, const struct engine_chunk *c,
                      uint64_t line_no)
{
    enum rec_reason r;
    w->lines += len > 1 || (len == 1 && line[0] != '\r');
    if (e->kind == ENGINE_QUERIES) {
        struct rec_query q;
        r = rec_parse_query(e->fmt, line, len, &q);
        if (r == REC_OK) {
            if (q.time_ms > w->max_query_ms &&
                q.time_ms <= e->now_ms + HORIZON_FUTURE_SLACK_MS)
                w->max_query_ms = q.time_ms;
            unsigned owner = sharder_worker(sharder_join_shard(q.query_id),
                                            e->n_workers);
            return pack_query(&w->routed[owner], &q, c->input, line_no);
        }
    } else {
        struct packed_click pc = {.line = line_no, .input = c->input};
        r = rec_parse_click(e->fmt, line, len, &pc.click);
        if (r == REC_OK) {
            unsigned owner = sharder_worker(
                sharder_join_shard(pc.click.query_id), e->n_workers);
            struct bytes *b = &w->routed[owner];
            if (bytes_reserve(b, sizeof pc) != 0)
                return CTRD_ENOMEM;
            memcpy(b->p + b->len, &pc, sizeof pc);
            b->len += sizeof pc;
            return 0;
        }
    }
    if (r != REC_EMPTY)
        worker_reject(w, r, c->input, line_no);
    return 0;
}

static void phase_parse(struct engine *e, struct worker *w)
{
    if (w->id >= e->n_chunks)
        return;
    const struct engine_chunk *c = &e->chunks[w->id];
    const char *p = c->data, *end = c->data + c->len;
    uint64_t line_no = c->first_line;
    while (p < end && w->rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        w->rc = route_line(e, w, p, (size_t)(eol - p), c, line_no++);
        p = nl ? nl + 1 : end;
    }
}

/* ---- phase 2: join ---- */

/* Moves the combined deltas to the count workers' inboxes. */
static int combiner_flush(struct worker *w)
{
    for (uint32_t i = 0; i < COMBINER_SLOTS && w->combiner_used; i++) {
        struct combined *c = &w->combiner[i];
        if (!c->impressions && !c->clicks)
            continue;
        unsigned owner = sharder_worker(sharder_count_shard(c->ad_id),
                                        w->e->n_workers);
        struct bytes *b = &w->deltas[owner];
        if (bytes_reserve(b, sizeof *c) != 0)
            return CTRD_ENOMEM;
        memcpy(b->p + b->len, c, sizeof *c);
        b->len += sizeof *c;
        *c = (struct combined){0};
        w->combiner_used--;
    }
    return 0;
}

static int sink_emit(void *ctx, const struct count_delta *d)
{
    struct worker *w = ctx;
    if (w->combiner_used >= COMBINER_SLOTS / 2) {
        int rc = combiner_flush(w);
        if (rc != 0)
            return rc;
    }
    uint64_t key = (uint64_t)d->term_id << 32 | d->minute;
    uint32_t j = (uint32_t)hash_u64(d->ad_id ^ hash_u64(key)) &
                 (COMBINER_SLOTS - 1);
    struct combined *c;
    for (;; j = (j + 1) & (COMBINER_SLOTS - 1)) {
        c = &w->combiner[j];
        if (!c->impressions && !c->clicks) {
            *c = (struct combined){d->ad_id, d->term_id, d->minute, 0, 0};
            w->combiner_used++;
            break;
        }
        if (c->ad_id == d->ad_id && c->term_id == d->term_id &&
            c->minute == d->minute)
            break;
    }
    c->impressions += !d->is_click;
    c->clicks += d->is_click;
    return 0;
}

static void sink_reject(void *ctx, enum rec_reason reason,
                        struct join_src src)
{
    worker_reject(ctx, reason, src.input, src.line);
}

static void phase_join(struct engine *e, struct worker *w)
{
    struct join_sink sink = {w, sink_emit, sink_reject};
    for (unsigned i = 0; i < e->n_chunks && w->rc == 0; i++) {
        const struct bytes *b = &e->workers[i].routed[w->id];
        if (!b->len)
            continue;
        const char *p = b->p, *end = b->p + b->len;
        while (p < end && w->rc == 0) {
            if (e->kind == ENGINE_QUERIES) {
                struct rec_query q;
                struct join_src src;
                p += unpack_query(p, &q, &src);
                w->rc = joiner_add_query(w->joiner, &q, src, &sink);
            } else {
                struct packed_click pc;
                memcpy(&pc, p, sizeof pc);
                p += sizeof pc;
                w->rc = joiner_add_click(w->joiner, &pc.click,
                                         (struct join_src){pc.input, pc.line},
                                         e->now_ms, &sink);
            }
        }
    }
    if (w->rc == 0)
        w->rc = combiner_flush(w);
}

/* ---- phase 3: count ---- */

static void phase_count(struct engine *e, struct worker *w)
{
    for (unsigned j = 0; j < e->n_workers && w->rc == 0; j++) {
        const struct bytes *b = &e->workers[j].deltas[w->id];
        const struct combined *d = (const struct combined *)b->p;
        size_t n = b->len / sizeof *d;
        for (size_t i = 0; i < n && w->rc == 0; i++)
            w->rc = cm_add(e->counts, d[i].ad_id, d[i].term_id, d[i].minute,
                           d[i].impressions, d[i].clicks);
    }
}

/* Folds the workers' batch results into the engine and resets them. */
static int collect_batch(struct engine *e, char *err)
{
    int rc = 0;
    struct engine_stats *s = &e->stats;
    for (unsigned i = 0; i < e->n_workers; i++) {
        struct worker *w = &e->workers[i];
        if (w->rc && !rc)
            rc = w->rc;
        w->rc = 0;
        *(e->kind == ENGINE_QUERIES ? &s->query_lines : &s->click_lines) +=
            w->lines;
        w->lines = 0;
        if (w->max_query_ms > e->max_query_ms)
            e->max_query_ms = w->max_query_ms;
        for (int r = 0; r < REC_REASON_COUNT; r++) {
            s->rejects[r] += w->rejects[r];
            if (r < REC_CLICK_OUTSIDE_WINDOW)
                e->parse_rejected[e->kind] += w->rejects[r];
            w->rejects[r] = 0;
        }
        for (size_t k = 0; k < w->n_samples; k++)
            samples_keep_first(s->samples, &s->n_samples, &w->samples[k]);
        w->n_samples = 0;
        for (unsigned j = 0; j < e->n_workers; j++) {
            w->routed[j].len = 0;
            w->deltas[j].len = 0;
        }
    }
    if (rc != 0)
        return ctrd_fail(err, rc, "processing failed: %s", ctrd_strerror(rc));
    return 0;
}

int engine_process(struct engine *e, enum engine_kind kind,
                   enum rec_format fmt, const struct engine_chunk *chunks,
                   unsigned n, int64_t now_ms, char *err)
{
    if (n > e->n_workers)
        return ctrd_fail(err, CTRD_EINVAL, "%u chunks for %u workers", n,
                         e->n_workers);
    e->kind = kind;
    e->fmt = fmt;
    e->chunks = chunks;
    e->n_chunks = n;
    e->now_ms = now_ms;
    for (unsigned i = 0; i < e->n_workers; i++)
        joiner_expire(e->workers[i].joiner, now_ms);
    run_phase(e, phase_parse);
    run_phase(e, phase_join);
    pthread_rwlock_wrlock(&e->read_lock);
    run_phase(e, phase_count);
    e->counts_dirty = 1;
    int rc = collect_batch(e, err);
    pthread_rwlock_unlock(&e->read_lock);
    return rc;
}

int engine_process_buffer(struct engine *e, enum engine_kind kind,
                          enum rec_format fmt, const char *data, size_t len,
                          uint32_t input, int64_t now_ms, char *err)
{
    struct engine_chunk chunks[SHARD_WORKERS_MAX];
    unsigned n = 0;
    size_t target = len / e->n_workers + 1, at = 0;
    uint64_t line = 1;
    while (at < len) {
        size_t end = len;
        if (n + 1 < e->n_workers && at + target < len) {
            const char *nl = memchr(data + at + target, '\n',
                                    len - at - target);
            end = nl ? (size_t)(nl - data) + 1 : len;
        }
        chunks[n++] = (struct engine_chunk){data + at, end - at, line, input};
        for (const char *p = data + at; (p = memchr(p, '\n',
                                                   (size_t)(data + end - p)));
             p++)
            line++;
        at = end;
    }
    return n ? engine_process(e, kind, fmt, chunks, n, now_ms, err) : 0;
}

void engine_clear_samples(struct engine *e)
{
    e->stats.n_samples = 0;
}

void engine_read_lock(struct engine *e)
{
    pthread_rwlock_rdlock(&e->read_lock);
}

void engine_read_unlock(struct engine *e)
{
    pthread_rwlock_unlock(&e->read_lock);
}

/* ---- progress ---- */

int engine_progress_get(const struct engine *e, const char *key,
                        uint64_t *offset, uint64_t *lines)
{
    for (size_t i = 0; i < e->n_inputs; i++) {
        if (strcmp(e->inputs[i].key, key) == 0) {
            *offset = e->inputs[i].offset;
            *lines = e->inputs[i].lines;
            return 0;
        }
    }
    return CTRD_ENOTFOUND;
}

int engine_progress_set(struct engine *e, const char *key, uint64_t offset,
                        uint64_t lines)
{
    size_t i = 0;
    while (i < e->n_inputs && strcmp(e->inputs[i].key, key) != 0)
        i++;
    if (i == e->n_inputs) {
        if (strlen(key) >= INPUT_KEY_MAX || strpbrk(key, " \t\n"))
            return CTRD_EINVAL;
        struct input_progress *in =
            realloc(e->inputs, (e->n_inputs + 1) * sizeof *in);
        if (!in)
            return CTRD_ENOMEM;
        e->inputs = in;
        snprintf(in[i].key, sizeof in[i].key, "%s", key);
        e->n_inputs++;
    }
    e->inputs[i].offset = offset;
    e->inputs[i].lines = lines;
    return 0;
}

/* ---- checkpoint ---- */

static int put_pending(void *ctx, const struct pending_click *p)
{
    struct pending_record rec = {p->query_id, p->ad_id, p->time_ms,
                                 p->arrived_ms, p->src.line};
    fs_writer_put(ctx, &rec, sizeof rec);
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
static int write_pending(struct engine *e, FILE *m, char *err)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < e->n_workers; i++)
        n += joiner_pending_count(e->workers[i].joiner);
    if (n == 0)
        return 0;
    char file[64], path[FS_PATH_MAX];
    snprintf(file, sizeof file, "pending-%" PRIu64 ".dat", e->seq);
    snprintf(path, sizeof path, "%s/%s", e->dir, file);
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    struct fs_seal seal;
    int rc = fs_writer_open(w, path, FS_SEALED, err);
    for (unsigned i = 0; rc == 0 && i < e->n_workers; i++)
        joiner_foreach_pending(e->workers[i].joiner, put_pending, w);
    if (rc == 0)
        rc = fs_writer_seal(w, &seal, err);
    free(w);
    if (rc == 0)
        print_file(m, "pending", file, &seal);
    return rc;
}

/* Writes a new counts snapshot when the counts changed since the last. */
static int write_counts(struct engine *e, char *err)
{
    if (!e->counts_dirty && e->counts_file[0])
        return 0;
    char file[sizeof e->counts_file], path[FS_PATH_MAX];
    snprintf(file, sizeof file, "counts-%" PRIu64 ".dat", e->seq);
    snprintf(path, sizeof path, "%s/%s", e->dir, file);
    struct fs_seal seal;
    int rc = cm_save(e->counts, path, &seal, err);
    if (rc == 0) {
        memcpy(e->counts_file, file, sizeof file);
        e->counts_seal = seal;
        e->counts_dirty = 0;
    }
    return rc;
}

/* After a failed checkpoint: deletes the files it wrote that the engine
 * does not keep (a run or snapshot cut short, runs never adopted, ...).
 * Left until a checkpoint succeeds, they would hold their disk space: on
 * a full disk each failed retry would take the space that came back, and
 * space freed bit by bit would never let one succeed. Kept: what the
 * committed MANIFEST names, the runs and marks the store holds now, and
 * the counts snapshot the next checkpoint names again when the counts do
 * not change. Best effort: on any failure here, nothing is deleted. */
static void drop_unfinished(struct engine *e)
{
    char *committed = NULL, *keep = NULL, ignored[CTRD_ERR_LEN];
    size_t len, keep_len;
    if (datadir_read_manifest(e->dir, &committed, &len, ignored) != 0)
        return;
    FILE *m = open_memstream(&keep, &keep_len);
    if (m) {
        fputs(committed, m);
        qs_print_files(e->qs, m);
        if (e->counts_file[0])
            print_file(m, "counts", e->counts_file, &e->counts_seal);
        if (fclose(m) == 0)
            datadir_remove_garbage(e->dir, keep);
    }
    free(keep);
    free(committed);
}

int engine_checkpoint(struct engine *e, char *err)
{
    char *facts = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&facts, &len);
    if (!m)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    e->seq++; /* even when this fails: its files' names are used up */
    int64_t horizon = e->max_query_ms < 0 ? INT64_MIN
                                          : e->max_query_ms - e->cfg.retention_ms;
    int rc = terms_sync(e->terms, &e->terms_bytes, err);
    if (rc == 0) {
        fprintf(m, "seq %" PRIu64 "\nmax_query_time %" PRId64
                   "\nterms_bytes %" PRIu64 "\n",
                e->seq, e->max_query_ms, e->terms_bytes);
        rc = qs_checkpoint(e->qs, e->seq, horizon, m, err);
    }
    if (rc == 0)
        rc = write_pending(e, m, err);
    if (rc == 0)
        rc = write_counts(e, err);
    if (rc == 0) {
        print_file(m, "counts", e->counts_file, &e->counts_seal);
        for (size_t i = 0; i < e->n_inputs; i++)
            fprintf(m, "input %s %" PRIu64 " %" PRIu64 "\n", e->inputs[i].key,
                    e->inputs[i].offset, e->inputs[i].lines);
    }
    if (fclose(m) != 0 && rc == 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc == 0)
        rc = fs_fsync_dir(e->dir, err);
    if (rc == 0)
        rc = datadir_write_manifest(e->dir, facts, len, err);
    if (rc == 0)
        datadir_remove_garbage(e->dir, facts);
    else
        drop_unfinished(e);
    free(facts);
    return rc;
}

/* ---- recovery ---- */

/* In verification a damaged or missing file is reported and skipped;
 * otherwise it fails the open. */
static int damage(struct engine *e, int rc, const char *err)
{
    if (!e->cfg.report || (rc != CTRD_ECORRUPT && rc != CTRD_ENOTFOUND))
        return rc;
    e->cfg.report(e->cfg.report_ctx, err);
    return 0;
}

static int load_pending(struct engine *e, const char *file,
                        const struct fs_seal *seal, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", e->dir, file);
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, seal, &map, &map_len, &len, err);
    if (rc != 0)
        return rc;
    size_t n = len / sizeof(struct pending_record);
    if (len % sizeof(struct pending_record))
        rc = ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: a record cut "
                       "short", path, n * sizeof(struct pending_record));
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct pending_record rec;
        memcpy(&rec, (const char *)map + i * sizeof rec, sizeof rec);
        struct pending_click p = {rec.query_id, rec.ad_id, rec.time_ms,
                                  rec.arrived_ms,
                                  {ENGINE_INPUT_EARLIER, rec.line}};
        unsigned owner = sharder_worker(sharder_join_shard(p.query_id),
                                        e->n_workers);
        if (joiner_restore_pending(e->workers[owner].joiner, &p) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s",
                           path);
    }
    fs_unmap(map, map_len);
    return rc;
}

/* A read-only open loads the counts and terms only, yet checks the other
 * files the MANIFEST names as fully as loading them would (size,
 * fingerprint, every block): a damaged directory is refused by every
 * command, not only by those that load what is damaged. */
static int check_sealed(const struct engine *e, const char *file,
                        const struct fs_seal *seal, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", e->dir, file);
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, seal, &map, &map_len, &len, err);
    if (rc == 0)
        fs_unmap(map, map_len);
    return rc;
}

/* A decimal number that fits 64 bits, and nothing else. */
static int word_u64(const char *w, uint64_t *v)
{
    if (!*w || strspn(w, "0123456789") != strlen(w) || strlen(w) > 20)
        return -1;
    errno = 0;
    *v = strtoull(w, NULL, 10);
    return errno ? -1 : 0;
}

static int word_i64(const char *w, int64_t *v)
{
    uint64_t u;
    int neg = *w == '-';
    if (word_u64(w + neg, &u) != 0 || u > (uint64_t)INT64_MAX)
        return -1;
    *v = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

/* Size and fingerprint: a decimal and 8 hex digits. */
static int words_seal(char *const *w, struct fs_seal *seal)
{
    if (word_u64(w[0], &seal->bytes) != 0 || strlen(w[1]) != 8 ||
        strspn(w[1], "0123456789abcdef") != 8)
        return -1;
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

/* Applies one manifest line (split into its n words) to the engine being
 * opened. */
static int apply_fact(struct engine *e, char *const *w, int n, char *err)
{
    struct fs_seal seal;
    int64_t hour;
    uint64_t x, y;
    const char *k = w[0];
    if (n == 2 && strcmp(k, "seq") == 0 && word_u64(w[1], &e->seq) == 0)
        return 0;
    if (n == 2 && strcmp(k, "max_query_time") == 0 &&
        word_i64(w[1], &e->max_query_ms) == 0)
        return 0;
    if (n == 2 && strcmp(k, "terms_bytes") == 0 &&
        word_u64(w[1], &e->terms_bytes) == 0)
        return 0;
    if (n == 4 && strcmp(k, "counts") == 0 && words_seal(w + 2, &seal) == 0 &&
        state_file(w[1])) {
        snprintf(e->counts_file, sizeof e->counts_file, "%s", w[1]);
        e->counts_seal = seal;
        return 0;
    }
    if (n == 4 && strcmp(k, "pending") == 0 && words_seal(w + 2, &seal) == 0 &&
        state_file(w[1]))
        return e->cfg.readonly
                   ? check_sealed(e, w[1], &seal, err)
                   : damage(e, load_pending(e, w[1], &seal, err), err);
    if (n == 5 && (strcmp(k, "run") == 0 || strcmp(k, "marks") == 0) &&
        word_i64(w[1], &hour) == 0 && words_seal(w + 3, &seal) == 0 &&
        state_file(w[2]))
        return e->cfg.readonly
                   ? check_sealed(e, w[2], &seal, err)
                   : damage(e, qs_load(e->qs, k, hour, w[2], &seal, err),
                            err);
    if (n == 4 && strcmp(k, "input") == 0 && word_u64(w[2], &x) == 0 &&
        word_u64(w[3], &y) == 0 && engine_progress_set(e, w[1], x, y) == 0)
        return 0;
    return CTRD_EINVAL;
}

/* Whether a manifest line is a scalar fact, which the first pass applies
 * (the components opened between the passes need them). */
static int is_scalar(const char *kind)
{
    return strcmp(kind, "seq") == 0 || strcmp(kind, "max_query_time") == 0 ||
           strcmp(kind, "terms_bytes") == 0 || strcmp(kind, "counts") == 0;
}

/* Applies the scalar facts (scalars set) or the others of the manifest's
 * facts. */
static int apply_manifest(struct engine *e, const char *facts, int scalars,
                          char *err)
{
    size_t offset = strlen(DATADIR_MAGIC) + 1;
    for (const char *line = facts; *line;) {
        size_t len = strcspn(line, "\n");
        char copy[FS_PATH_MAX], *w[MANIFEST_WORDS_MAX + 1];
        int n = 0, rc = CTRD_EINVAL;
        if (len < sizeof copy) {
            memcpy(copy, line, len);
            copy[len] = '\0';
            char *save;
            for (char *t = strtok_r(copy, " ", &save);
                 t && n <= MANIFEST_WORDS_MAX; t = strtok_r(NULL, " ", &save))
                w[n++] = t;
            if (n > 0 && n <= MANIFEST_WORDS_MAX)
                rc = is_scalar(w[0]) == scalars ? apply_fact(e, w, n, err) : 0;
        }
        if (rc == CTRD_EINVAL)
            rc = damage(e, ctrd_fail(err, CTRD_ECORRUPT, "%s/%s: offset %zu: "
                                     "bad line '%.*s'", e->dir,
                                     DATADIR_MANIFEST, offset,
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
static const char initial_facts[] =
    "seq 0\nmax_query_time -1\nterms_bytes 0\n";

/* Locks the directory (unless read-only) and reads its MANIFEST into
 * *facts; a new directory (only when writing) gets its first MANIFEST. */
static int open_manifest(struct engine *e, char **facts, char *err)
{
    const struct engine_config *cfg = &e->cfg;
    int creating = !cfg->readonly && !cfg->report;
    size_t len;
    int rc = creating ? fs_mkdirs(e->dir, err) : 0;
    if (rc == 0 && !cfg->readonly)
        rc = datadir_lock(e->dir, creating, &e->lock_fd, err);
    if (rc == 0)
        rc = datadir_read_manifest(e->dir, facts, &len, err);
    if (rc != CTRD_ENOTFOUND)
        return rc;
    rc = datadir_check_new(e->dir, err);
    if (rc != 0)
        return rc;
    if (!creating)
        return ctrd_fail(err, CTRD_ENOTFOUND, "%s holds no ctrd data",
                         e->dir);
    rc = datadir_write_manifest(e->dir, initial_facts,
                                sizeof initial_facts - 1, err);
    if (rc == 0 && !(*facts = strdup(initial_facts)))
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    return rc;
}

static int open_workers(struct engine *e, char *err)
{
    struct joiner_config jc = {e->cfg.join_window_ms, e->cfg.click_timeout_ms};
    int64_t horizon = e->max_query_ms < 0 ? INT64_MIN
                                          : e->max_query_ms - e->cfg.retention_ms;
    int rc = qs_open(e->dir, e->n_workers, horizon, &e->qs, err);
    for (unsigned i = 0; rc == 0 && i < e->n_workers; i++) {
        struct worker *w = &e->workers[i];
        w->routed = calloc(e->n_workers, sizeof *w->routed);
        w->deltas = calloc(e->n_workers, sizeof *w->deltas);
        w->combiner = calloc(COMBINER_SLOTS, sizeof *w->combiner);
        if (!w->routed || !w->deltas || !w->combiner ||
            joiner_create(i, e->qs, e->terms, &jc, &w->joiner) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    return rc;
}

/* Opens the term dictionary and the counts the scalar facts name. */
static int load_dictionary_and_counts(struct engine *e, char *err)
{
    int rc = terms_open(e->dir, e->terms_bytes, &e->terms, err);
    if (rc != 0 && e->cfg.report && (rc = damage(e, rc, err)) == 0) {
        e->terms_damaged = 1;
        rc = terms_open(e->dir, 0, &e->terms, err);
    }
    if (rc == 0)
        rc = cm_create(&e->counts) ? CTRD_ENOMEM : 0;
    if (rc == 0 && e->counts_file[0]) {
        char path[FS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", e->dir, e->counts_file);
        uint32_t n_terms = e->terms_damaged ? UINT32_MAX
                                            : terms_count(e->terms);
        rc = damage(e, cm_load(e->counts, path, &e->counts_seal, n_terms,
                               err),
                    err);
    }
    return rc;
}

int engine_open(const struct engine_config *cfg, struct engine **out,
                char *err)
{
    unsigned n = cfg->n_workers ? cfg->n_workers
                                : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > SHARD_WORKERS_MAX)
        n = SHARD_WORKERS_MAX;
    struct engine *e = calloc(1, sizeof *e + n * sizeof e->workers[0]);
    if (!e)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    e->cfg = *cfg;
    e->n_workers = n;
    /* Several read threads at once must not starve the count phase:
     * glibc's default lets new readers in while a writer waits. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->read_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    e->lock_fd = -1;
    e->max_query_ms = -1;
    snprintf(e->dir, sizeof e->dir, "%s", cfg->data_dir);
    for (unsigned i = 0; i < n; i++)
        e->workers[i] = (struct worker){.e = e, .id = i, .max_query_ms = -1};
    char *facts = NULL;
    int rc = open_manifest(e, &facts, err);
    if (rc == 0)
        rc = apply_manifest(e, facts, 1, err);
    if (rc == 0)
        rc = load_dictionary_and_counts(e, err);
    if (rc == 0 && !cfg->readonly)
        rc = open_workers(e, err);
    if (rc == 0)
        rc = apply_manifest(e, facts, 0, err);
    if (rc == 0 && !cfg->readonly && !cfg->report)
        rc = start_threads(e, err);
    free(facts);
    if (rc != 0) {
        engine_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

void engine_close(struct engine *e)
{
    if (!e)
        return;
    stop_threads(e);
    for (unsigned i = 0; i < e->n_workers; i++) {
        struct worker *w = &e->workers[i];
        for (unsigned j = 0; w->routed && j < e->n_workers; j++)
            free(w->routed[j].p);
        for (unsigned j = 0; w->deltas && j < e->n_workers; j++)
            free(w->deltas[j].p);
        free(w->routed);
        free(w->deltas);
        free(w->combiner);
        joiner_free(w->joiner);
    }
    qs_close(e->qs);
    cm_free(e->counts);
    terms_close(e->terms);
    free(e->inputs);
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    pthread_rwlock_destroy(&e->read_lock);
    free(e);
}

/* ---- reads ---- */

void engine_get_stats(const struct engine *e, struct engine_stats *out)
{
    *out = e->stats;
    out->join = (struct join_stats){0};
    for (unsigned i = 0; e->qs && i < e->n_workers; i++) {
        const struct join_stats *j = joiner_stats(e->workers[i].joiner);
        out->join.queries_accepted += j->queries_accepted;
        out->join.queries_duplicate += j->queries_duplicate;
        out->join.queries_rejected += j->queries_rejected;
        out->join.clicks_joined += j->clicks_joined;
        out->join.clicks_duplicate += j->clicks_duplicate;
        out->join.clicks_rejected += j->clicks_rejected;
        out->join.clicks_deferred += j->clicks_deferred;
        out->join.clicks_unjoined += j->clicks_unjoined;
        out->join.late_joined += j->late_joined;
        out->join.late_duplicate += j->late_duplicate;
        out->join.late_rejected += j->late_rejected;
        out->clicks_pending += joiner_pending_count(e->workers[i].joiner);
    }
    out->queries_rejected = e->parse_rejected[ENGINE_QUERIES] +
                            out->join.queries_rejected;
    out->clicks_rejected = e->parse_rejected[ENGINE_CLICKS] +
                           out->join.clicks_rejected;
}

void engine_get_sizes(const struct engine *e, struct engine_sizes *out)
{
    struct qs_stats q = {0};
    if (e->qs)
        qs_get_stats(e->qs, &q);
    uint64_t pending = 0;
    for (unsigned i = 0; e->qs && i < e->n_workers; i++)
        pending += joiner_pending_count(e->workers[i].joiner);
    *out = (struct engine_sizes){q.partitions,     q.runs,
                                 q.queries_on_disk, q.disk_bytes,
                                 q.mem_queries,     q.clicked_pairs,
                                 cm_bucket_count(e->counts),
                                 terms_count(e->terms), pending};
}

unsigned engine_workers(const struct engine *e)
{
    return e->n_workers;
}

const char *engine_data_dir(const struct engine *e)
{
    return e->dir;
}

const struct countmap *engine_counts(const struct engine *e)
{
    return e->counts;
}

const struct terms *engine_terms(const struct engine *e)
{
    return e->terms;
}

int64_t engine_as_of_ms(const struct engine *e)
{
    return e->max_query_ms;
}
