/* engine: the pipeline parse -> shard -> join -> count over worker
 * threads; see engine.h. The state it runs over, its checkpoints and its
 * recovery are checkpoint.c's (struct ckpt, embedded here).
 *
 * BATCH PHASES (each a barrier across the workers):
 *   parse  worker i parses chunk i, packs every valid record into
 *          routed[owner of its join shard], counts rejects;
 *   join   worker j feeds routed[j] of every chunk, in chunk order, to its
 *          joiner; deltas are summed per (ad, term, minute) and go to
 *          deltas[owner of the ad's count shard];
 *   count  worker k applies deltas[k] of every worker to the countmap.
 * sharder.h decides the owners. Between phases only the writer thread
 * runs; within a phase worker i writes only workers[i] and what its shards
 * own (its joiner, its count shards), and reads the other workers' outboxes
 * for it. */
#include "engine.h"

#include "checkpoint.h"
#include "grow.h"
#include "hash.h"
#include "sharder.h"

#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Queries dated further ahead than this of the wall clock do not move the
 * retention horizon, so one bogus future time cannot expire the store. */
#define HORIZON_FUTURE_SLACK_MS INT64_C(3600000)

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
 * within a batch. A slot with zero impressions and clicks is empty.
 * Its own table, not table.h: every joined record adds to it, the key is
 * 16 bytes held inline with the sums, and a flush empties it in place.
 * The slot hash is seeded (ids come from the input), so the order of the
 * deltas a flush sends differs between processes: the count workers only
 * add them up. */
struct combined {
    uint64_t ad_id;
    uint32_t term_id, minute;
    uint32_t impressions, clicks;
};
#define COMBINER_SLOTS (1u << 16)

/* How many records ahead the join phase hints the joiner (a few cache
 * misses' latency of work). */
#define JOIN_PREFETCH 8

struct worker {
    struct engine *e;
    unsigned id;
    pthread_t thread;
    struct joiner *joiner;
    struct bytes *routed;      /* [n_workers], filled by the parse phase */
    struct bytes *deltas;      /* [n_workers], filled by the join phase */
    struct combined *combiner; /* COMBINER_SLOTS */
    uint32_t combiner_used;
    uint64_t lines;
    int64_t max_query_ms;
    uint64_t rejects[REC_REASON_COUNT];
    struct engine_reject samples[ENGINE_REJECT_SAMPLES];
    size_t n_samples;
    int rc;
    char err[CTRD_ERR_LEN]; /* what failed, when the count phase set rc */
};

typedef void phase_fn(struct engine *e, struct worker *w);

struct engine {
    struct ckpt state; /* terms, counts, join state, progress, the lock */
    unsigned n_workers;
    int64_t now_ms;
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
    return grow(&b->p, &b->cap, b->len + more, 1, 65536);
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
    memmove(samples + at + 1, samples + at, (*n - 1 - at) * sizeof *samples);
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
    struct packed_query h = {
        q->query_id,           q->time_ms,        line, input,
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
            unsigned owner = sharder_join_worker(q.query_id, e->n_workers);
            return pack_query(&w->routed[owner], &q, c->input, line_no);
        }
    } else {
        struct packed_click pc = {.line = line_no, .input = c->input};
        r = rec_parse_click(e->fmt, line, len, &pc.click);
        if (r == REC_OK) {
            unsigned owner =
                sharder_join_worker(pc.click.query_id, e->n_workers);
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
        unsigned owner = sharder_count_worker(c->ad_id, w->e->n_workers);
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
    uint32_t j =
        (uint32_t)hash_slot_u64_pair(d->ad_id, key) & (COMBINER_SLOTS - 1);
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

static void sink_reject(void *ctx, enum rec_reason reason, struct join_src src)
{
    worker_reject(ctx, reason, src.input, src.line);
}

/* The size of the packed record at p; its query_id is its first 8
 * bytes. */
static size_t packed_size(enum engine_kind kind, const char *p)
{
    if (kind == ENGINE_CLICKS)
        return sizeof(struct packed_click);
    struct packed_query h;
    memcpy(&h, p, sizeof h);
    return sizeof h + 8 * (size_t)h.n_ads + ((h.term_len + 7u) & ~7u);
}
_Static_assert(offsetof(struct packed_query, query_id) == 0 &&
                   offsetof(struct packed_click, click.query_id) == 0,
               "packed records start with their query_id");

/* Hints the joiner at the record at *ahead and moves past it. */
static void prefetch_next(const struct engine *e, const struct worker *w,
                          const char **ahead, const char *end)
{
    if (*ahead == end)
        return;
    uint64_t query_id;
    memcpy(&query_id, *ahead, sizeof query_id);
    joiner_prefetch(w->joiner, query_id);
    *ahead += packed_size(e->kind, *ahead);
}

static void phase_join(struct engine *e, struct worker *w)
{
    struct join_sink sink = {w, sink_emit, sink_reject};
    for (unsigned i = 0; i < e->n_chunks && w->rc == 0; i++) {
        const struct bytes *b = &e->workers[i].routed[w->id];
        if (!b->len)
            continue;
        const char *p = b->p, *end = b->p + b->len, *ahead = p;
        /* Each record's memtable probe is a cache miss: ask for the
         * slots of the next JOIN_PREFETCH records before joining one. */
        for (int k = 0; k < JOIN_PREFETCH; k++)
            prefetch_next(e, w, &ahead, end);
        while (p < end && w->rc == 0) {
            prefetch_next(e, w, &ahead, end);
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
            w->rc = cm_add(e->state.counts, d[i].ad_id, d[i].term_id,
                           d[i].minute, d[i].impressions, d[i].clicks, w->err);
    }
}

/* Folds the workers' batch results into the engine and resets them. */
static int collect_batch(struct engine *e, char *err)
{
    int rc = 0;
    const char *why = NULL;
    struct engine_stats *s = &e->stats;
    for (unsigned i = 0; i < e->n_workers; i++) {
        struct worker *w = &e->workers[i];
        if (w->rc && !rc) {
            rc = w->rc;
            why = w->err[0] ? w->err : ctrd_strerror(rc);
        }
        w->rc = 0;
        *(e->kind == ENGINE_QUERIES ? &s->query_lines : &s->click_lines) +=
            w->lines;
        w->lines = 0;
        if (w->max_query_ms > e->state.max_query_ms)
            e->state.max_query_ms = w->max_query_ms;
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
        rc = ctrd_fail(err, rc, "processing failed: %s", why);
    for (unsigned i = 0; i < e->n_workers; i++)
        e->workers[i].err[0] = '\0';
    return rc;
}

int engine_process(struct engine *e, enum engine_kind kind, enum rec_format fmt,
                   const struct engine_chunk *chunks, unsigned n,
                   int64_t now_ms, char *err)
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
    int rc = collect_batch(e, err);
    pthread_rwlock_unlock(&e->read_lock);
    return rc;
}

int engine_add_counts(struct engine *e, const struct engine_count_add *adds,
                      size_t n, int64_t as_of_ms, char *err)
{
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    int rc = ids ? 0 : ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = terms_intern(e->state.terms, adds[i].term, adds[i].term_len,
                               &ids[i])) != 0)
            rc = ctrd_fail(err, rc, "out of memory");
    }
    pthread_rwlock_wrlock(&e->read_lock);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cm_add(e->state.counts, adds[i].ad_id, ids[i], adds[i].minute,
                    adds[i].impressions, adds[i].clicks, err);
    e->state.max_query_ms = as_of_ms;
    pthread_rwlock_unlock(&e->read_lock);
    free(ids);
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
            const char *nl =
                memchr(data + at + target, '\n', len - at - target);
            end = nl ? (size_t)(nl - data) + 1 : len;
        }
        chunks[n++] = (struct engine_chunk){data + at, end - at, line, input};
        for (const char *p = data + at;
             (p = memchr(p, '\n', (size_t)(data + end - p))); p++)
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

/* ---- progress and checkpoints: checkpoint.c's ---- */

int engine_progress_get(const struct engine *e, const char *key,
                        uint64_t *offset, uint64_t *lines)
{
    return ckpt_progress_get(&e->state, key, offset, lines);
}

int engine_progress_set(struct engine *e, const char *key, uint64_t offset,
                        uint64_t lines)
{
    return ckpt_progress_set(&e->state, key, offset, lines);
}

int engine_checkpoint(struct engine *e, char *err)
{
    int rc = ckpt_write(&e->state, err);
    if (rc == 0) {
        pthread_rwlock_wrlock(&e->read_lock);
        rc = ckpt_spill(&e->state, err);
        pthread_rwlock_unlock(&e->read_lock);
    }
    if (e->state.cfg.memory_bytes)
        malloc_trim(0); /* what the spill freed, the readers going on */
    return rc;
}

int engine_memory_full(const struct engine *e)
{
    return ckpt_memory_full(&e->state);
}

/* ---- open, close ---- */

/* The workers' outboxes and their joiners (the state's). */
static int open_workers(struct engine *e, char *err)
{
    for (unsigned i = 0; i < e->n_workers; i++) {
        struct worker *w = &e->workers[i];
        w->joiner = e->state.joiners[i];
        w->routed = calloc(e->n_workers, sizeof *w->routed);
        w->deltas = calloc(e->n_workers, sizeof *w->deltas);
        w->combiner = calloc(COMBINER_SLOTS, sizeof *w->combiner);
        if (!w->routed || !w->deltas || !w->combiner)
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    return 0;
}

static unsigned workers_for(const struct engine_config *cfg)
{
    unsigned n = cfg->n_workers ? cfg->n_workers
                                : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > SHARD_WORKERS_MAX ? SHARD_WORKERS_MAX : n;
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
    }
    ckpt_close(&e->state);
    pthread_rwlock_destroy(&e->read_lock);
    free(e);
}

int engine_open(const struct engine_config *cfg, struct engine **out, char *err)
{
    unsigned n = workers_for(cfg);
    struct engine *e = calloc(1, sizeof *e + n * sizeof e->workers[0]);
    if (!e)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    e->n_workers = n;
    /* Several read threads at once must not starve the count phase:
     * glibc's default lets new readers in while a writer waits. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&e->read_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    for (unsigned i = 0; i < n; i++)
        e->workers[i] = (struct worker){.e = e, .id = i, .max_query_ms = -1};
    int rc = ckpt_open(&e->state, cfg, n, err);
    if (rc == 0 && !cfg->readonly)
        rc = open_workers(e, err);
    if (rc == 0 && !cfg->readonly && !cfg->report)
        rc = start_threads(e, err);
    if (rc == 0)
        *out = e;
    else
        engine_close(e);
    return rc;
}

/* ---- reads ---- */

void engine_get_stats(const struct engine *e, struct engine_stats *out)
{
    *out = e->stats;
    out->join = (struct join_stats){0};
    for (unsigned i = 0; e->state.qs && i < e->n_workers; i++) {
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
    out->queries_rejected =
        e->parse_rejected[ENGINE_QUERIES] + out->join.queries_rejected;
    out->clicks_rejected =
        e->parse_rejected[ENGINE_CLICKS] + out->join.clicks_rejected;
}

void engine_get_sizes(const struct engine *e, struct engine_sizes *out)
{
    struct qs_stats q = {0};
    if (e->state.qs)
        qs_get_stats(e->state.qs, &q);
    uint64_t pending = 0;
    for (unsigned i = 0; e->state.qs && i < e->n_workers; i++)
        pending += joiner_pending_count(e->workers[i].joiner);
    struct cm_spill_stats c;
    cm_spill_stats(e->state.counts, &c);
    *out =
        (struct engine_sizes){.qs_partitions = q.partitions,
                              .qs_runs = q.runs,
                              .qs_queries_on_disk = q.queries_on_disk,
                              .qs_disk_bytes = q.disk_bytes,
                              .qs_queries_in_memory = q.mem_queries,
                              .clicked_pairs = q.clicked_pairs,
                              .count_buckets = cm_bucket_count(e->state.counts),
                              .terms = terms_count(e->state.terms),
                              .clicks_pending = pending,
                              .qs_merging = q.merging,
                              .qs_merged_bytes = q.merged_bytes,
                              .qs_merges_failed = q.merges_failed,
                              .memory_budget = e->state.cfg.memory_bytes,
                              .mem_memtables = q.memtable_bytes,
                              .mem_id_filter = q.filter_bytes,
                              .mem_run_indexes = q.index_bytes,
                              .mem_clicked_pairs = q.pairs_bytes,
                              .mem_counts = c.resident_bytes,
                              .counts_spilled_bytes = c.spilled_bytes,
                              .counts_spill_file_bytes = c.file_bytes};
}

unsigned engine_workers(const struct engine *e)
{
    return e->n_workers;
}

const char *engine_data_dir(const struct engine *e)
{
    return e->state.dir;
}

const struct countmap *engine_counts(const struct engine *e)
{
    return e->state.counts;
}

const struct terms *engine_terms(const struct engine *e)
{
    return e->state.terms;
}

int64_t engine_as_of_ms(const struct engine *e)
{
    return e->state.max_query_ms;
}
