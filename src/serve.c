/* serve: the service command; see serve.h. This file: the wiring, the
 * metrics and the ingest thread (its queue, group commit, checkpoints and
 * the write-failure state); flags in serve_config.c, followed files in
 * serve_follow.c, distributed mode in serve_cluster.c, the state they
 * share in serve_int.h. */
#include "serve.h"

#include "api.h"
#include "clock.h"
#include "gunzip.h"
#include "serve_config.h"
#include "serve_int.h"
#include "wal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_MS 10000
#define CHECKPOINT_IDLE_MS 60000
#define ERRORS_MAX 100
#define WRITE_RETRY_MIN_MS 1000 /* first retry after writes failed */
#define WRITE_RETRY_MAX_MS 16000
/* The ingest thread's nice value: CPU-heavy work (inflating a gzip body,
 * a group's parse and join) yields to the HTTP loop, whose answers need
 * little CPU but soon (32 concurrent gzip bombs: /healthz max 5 ms instead
 * of 103 ms, BENCHMARKS.md). */
#define INGEST_NICE 5

/* ---- metrics ---- */

/* 0 when accepting records, CTRD_EAGAIN while recovering, CTRD_EWRITEFAIL
 * while writes fail. Any thread. */
static int ingest_state(void *ctx)
{
    struct service *s = ctx;
    pthread_mutex_lock(&s->mu);
    int state = !s->ready           ? CTRD_EAGAIN
                : s->writes_failing ? CTRD_EWRITEFAIL
                                    : 0;
    pthread_mutex_unlock(&s->mu);
    return state;
}

static double gauge_ready(void *arg)
{
    return ingest_state(arg) == 0;
}

static double gauge_writes_failing(void *arg)
{
    return ingest_state(arg) == CTRD_EWRITEFAIL;
}

static double gauge_up(void *arg)
{
    (void)arg;
    return 1;
}

static double gauge_freshness(void *arg)
{
    struct service *s = arg;
    engine_read_lock(s->engine);
    int64_t as_of = engine_as_of_ms(s->engine);
    engine_read_unlock(s->engine);
    return as_of < 0 ? 0 : (double)(clock_wall_ms() - as_of) / 1000.0;
}

/* Read on the loop thread, which owns the stream hub. */
static double gauge_streams(void *arg)
{
    return (double)sse_count(arg);
}

static double gauge_queue(void *arg)
{
    struct service *s = arg;
    pthread_mutex_lock(&s->mu);
    double bytes = (double)s->queued_bytes;
    pthread_mutex_unlock(&s->mu);
    return bytes;
}

/* Store sizes as the ingest thread last published them. */
#define SIZE_GAUGE(field)                                                      \
    static double gauge_##field(void *arg)                                     \
    {                                                                          \
        struct service *s = arg;                                               \
        pthread_mutex_lock(&s->mu);                                            \
        double v = (double)s->sizes.field;                                     \
        pthread_mutex_unlock(&s->mu);                                          \
        return v;                                                              \
    }
SIZE_GAUGE(qs_partitions)
SIZE_GAUGE(qs_runs)
SIZE_GAUGE(qs_queries_on_disk)
SIZE_GAUGE(qs_disk_bytes)
SIZE_GAUGE(qs_queries_in_memory)
SIZE_GAUGE(clicked_pairs)
SIZE_GAUGE(count_buckets)
SIZE_GAUGE(terms)
SIZE_GAUGE(clicks_pending)
SIZE_GAUGE(qs_merging)
SIZE_GAUGE(qs_merged_bytes)
SIZE_GAUGE(qs_merges_failed)
SIZE_GAUGE(memory_budget)
SIZE_GAUGE(mem_memtables)
SIZE_GAUGE(mem_id_filter)
SIZE_GAUGE(mem_run_indexes)
SIZE_GAUGE(mem_clicked_pairs)
SIZE_GAUGE(mem_counts)
SIZE_GAUGE(counts_spilled_bytes)
SIZE_GAUGE(counts_spill_file_bytes)
#undef SIZE_GAUGE

static void publish_sizes(struct service *s)
{
    struct engine_sizes z;
    engine_get_sizes(s->engine, &z);
    pthread_mutex_lock(&s->mu);
    s->sizes = z;
    pthread_mutex_unlock(&s->mu);
}

static int create_size_metrics(struct service *s)
{
    static const struct {
        const char *name, *help;
        double (*fn)(void *);
    } gauges[] = {
        {"ctrd_querystore_partitions", "QueryStore hour partitions.",
         gauge_qs_partitions},
        {"ctrd_querystore_runs", "QueryStore sorted runs on disk.",
         gauge_qs_runs},
        {"ctrd_querystore_queries", "Queries in QueryStore runs on disk.",
         gauge_qs_queries_on_disk},
        {"ctrd_querystore_bytes", "Bytes of QueryStore runs on disk.",
         gauge_qs_disk_bytes},
        {"ctrd_querystore_memtable_queries",
         "Queries not yet in a run (since the last checkpoint).",
         gauge_qs_queries_in_memory},
        {"ctrd_clicked_pairs", "Registered (query_id, ad) clicks.",
         gauge_clicked_pairs},
        {"ctrd_count_buckets", "(ad, term, minute) buckets counted.",
         gauge_count_buckets},
        {"ctrd_terms", "Distinct search terms.", gauge_terms},
        {"ctrd_querystore_merging", "1 while a merge of runs is running.",
         gauge_qs_merging},
        {"ctrd_querystore_merged_bytes",
         "Bytes of runs written by merges since the start (their write "
         "amplification).",
         gauge_qs_merged_bytes},
        {"ctrd_querystore_merges_failed",
         "Merges dropped for an error since the start (their inputs stay).",
         gauge_qs_merges_failed},
        {"ctrd_memory_budget_bytes",
         "--memory: RAM for the counts and the QueryStore (0: unbounded).",
         gauge_memory_budget},
        {"ctrd_counts_spilled_bytes",
         "Bytes of count groups held in the spill file instead of RAM.",
         gauge_counts_spilled_bytes},
        {"ctrd_counts_spill_file_bytes",
         "Size of the counts' spill file (scratch, with no name in the data "
         "directory): the spilled groups' blocks, and those left by groups "
         "read back and grown since.",
         gauge_counts_spill_file_bytes},
    };
    static const struct {
        const char *part;
        double (*fn)(void *);
    } parts[] = {{"part=\"memtables\"", gauge_mem_memtables},
                 {"part=\"id_filter\"", gauge_mem_id_filter},
                 {"part=\"run_indexes\"", gauge_mem_run_indexes},
                 {"part=\"clicked_pairs\"", gauge_mem_clicked_pairs},
                 {"part=\"counts\"", gauge_mem_counts}};
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++) {
        if (!metrics_gauge_fn(s->metrics, gauges[i].name, gauges[i].help, NULL,
                              gauges[i].fn, s))
            return CTRD_ENOMEM;
    }
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (!metrics_gauge_fn(s->metrics, "ctrd_memory_bytes",
                              "RAM the store's data takes, by part (the run "
                              "files' pages are the page cache's).",
                              parts[i].part, parts[i].fn, s))
            return CTRD_ENOMEM;
    }
    return 0;
}

static int create_metrics(struct service *s)
{
    static const char *const kinds[2] = {"query", "click"};
    static const char *const results[3] = {"accepted", "duplicate", "rejected"};
    static const char *const click_results[4] = {"joined", "duplicate",
                                                 "rejected", "unjoined"};
    struct metrics *m = s->metrics;
    char labels[96];
    int ok = 1;
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < 3; r++) {
            snprintf(labels, sizeof labels, "kind=\"%s\",result=\"%s\"",
                     kinds[k], results[r]);
            ok &= (s->counters.records[k][r] = metrics_counter(
                       m, "ctrd_records_total",
                       "Log records taken in, by kind and outcome.", labels)) !=
                  NULL;
        }
    }
    for (int r = 0; r < 4; r++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", click_results[r]);
        ok &= (s->counters.clicks[r] = metrics_counter(
                   m, "ctrd_clicks_total",
                   "Clicks by join outcome (unjoined: dropped after "
                   "--click-timeout).",
                   labels)) != NULL;
    }
    for (int r = REC_LINE_TOO_LONG; r < REC_REASON_COUNT; r++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", rec_reason_name(r));
        ok &= (s->counters.rejects[r] = metrics_counter(
                   m, "ctrd_rejects_total", "Rejected records by reason.",
                   labels)) != NULL;
    }
    ok &= metrics_gauge_fn(m, "ctrd_up", "1 while the process runs.", NULL,
                           gauge_up, s) != NULL;
    ok &= metrics_gauge_fn(m, "ctrd_ready",
                           "1 once recovery is done and ingest is open.", NULL,
                           gauge_ready, s) != NULL;
    ok &= metrics_gauge_fn(m, "ctrd_writes_failing",
                           "1 while writes fail (disk full, I/O errors) and "
                           "records are refused with 507.",
                           NULL, gauge_writes_failing, s) != NULL;
    ok &= (s->write_errors = metrics_counter(
               m, "ctrd_write_errors_total",
               "Failed writes of the log or of a checkpoint.", NULL)) != NULL;
    ok &= metrics_gauge_fn(m, "ctrd_freshness_lag_seconds",
                           "Wall clock minus the event time up to which "
                           "counts are complete.",
                           NULL, gauge_freshness, s) != NULL;
    ok &= metrics_gauge_fn(m, "ctrd_clicks_pending",
                           "Clicks waiting for their query.", NULL,
                           gauge_clicks_pending, s) != NULL;
    ok &= metrics_gauge_fn(m, "ctrd_ingest_queue_bytes",
                           "Request bytes waiting for the ingest thread.", NULL,
                           gauge_queue, s) != NULL;
    return ok ? create_size_metrics(s) : CTRD_ENOMEM;
}

/* Adds what the engine did since the last call to the counters. */
static void update_counters(struct service *s, const struct engine_stats *now)
{
    const struct engine_stats *was = &s->last;
    struct counters *c = &s->counters;
    metric_add(c->records[0][0],
               now->join.queries_accepted - was->join.queries_accepted);
    metric_add(c->records[0][1],
               now->join.queries_duplicate - was->join.queries_duplicate);
    metric_add(c->records[0][2], now->queries_rejected - was->queries_rejected);
    /* A click record is judged once, on arrival: joined there or deferred
     * is accepted; what a deferred click becomes later shows in
     * ctrd_clicks_total only. */
    metric_add(c->records[1][0],
               (now->join.clicks_joined - now->join.late_joined +
                now->join.clicks_deferred) -
                   (was->join.clicks_joined - was->join.late_joined +
                    was->join.clicks_deferred));
    metric_add(c->records[1][1],
               (now->join.clicks_duplicate - now->join.late_duplicate) -
                   (was->join.clicks_duplicate - was->join.late_duplicate));
    metric_add(c->records[1][2],
               (now->clicks_rejected - now->join.late_rejected) -
                   (was->clicks_rejected - was->join.late_rejected));
    metric_add(c->clicks[0], now->join.clicks_joined - was->join.clicks_joined);
    metric_add(c->clicks[1],
               now->join.clicks_duplicate - was->join.clicks_duplicate);
    metric_add(c->clicks[2],
               now->join.clicks_rejected - was->join.clicks_rejected);
    metric_add(c->clicks[3],
               now->join.clicks_unjoined - was->join.clicks_unjoined);
    for (int r = REC_LINE_TOO_LONG; r < REC_REASON_COUNT; r++)
        metric_add(c->rejects[r], now->rejects[r] - was->rejects[r]);
    s->last = *now;
}

/* ---- the ingest thread ---- */

/* Queues a job for the ingest thread. An HTTP job is refused with
 * CTRD_EWRITEFAIL while writes fail and with CTRD_EAGAIN when the queue is
 * full; a followed file's job waits for room instead (when wait is set).
 * On refusal the caller keeps the job. */
int serve_enqueue(struct service *s, struct job *j, int wait)
{
    pthread_mutex_lock(&s->mu);
    int rc;
    for (;;) {
        int full = s->queued_bytes > 0 &&
                   s->queued_bytes + j->len > s->max_queued_bytes;
        if (s->failed || s->stopping)
            rc = CTRD_EAGAIN;
        else if (j->x && s->writes_failing)
            rc = CTRD_EWRITEFAIL;
        else if (full && wait)
            rc = 1;
        else
            rc = full ? CTRD_EAGAIN : 0;
        if (rc != 1)
            break;
        pthread_cond_wait(&s->space_cv, &s->mu);
    }
    if (rc == 0) {
        if (s->tail)
            s->tail->next = j;
        else
            s->head = j;
        s->tail = j;
        s->queued_bytes += j->len;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void serve_job_free(struct job *j)
{
    free(j->answer);
    free(j->body);
    free(j);
}

static int submit(void *ctx, struct http_exchange *x, enum engine_kind kind,
                  enum rec_format fmt, int gzip, char *body, size_t len)
{
    struct service *s = ctx;
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        free(body);
        return CTRD_EAGAIN;
    }
    *j = (struct job){.service = s,
                      .x = x,
                      .kind = kind,
                      .fmt = fmt,
                      .gzip = gzip,
                      .body = body,
                      .len = len};
    int rc = serve_enqueue(s, j, 0);
    if (rc != 0)
        serve_job_free(j);
    return rc;
}

/* Writes the answer of one processed request (SPEC §5). */
static int write_answer(struct job *j, const struct engine_stats *before,
                        const struct engine_stats *after, uint32_t input)
{
    uint64_t accepted, duplicates, rejected;
    if (j->kind == ENGINE_QUERIES) {
        accepted = after->join.queries_accepted - before->join.queries_accepted;
        duplicates =
            after->join.queries_duplicate - before->join.queries_duplicate;
        rejected = after->queries_rejected - before->queries_rejected;
    } else {
        accepted = (after->join.clicks_joined + after->join.clicks_deferred) -
                   (before->join.clicks_joined + before->join.clicks_deferred);
        duplicates =
            after->join.clicks_duplicate - before->join.clicks_duplicate;
        rejected = after->clicks_rejected - before->clicks_rejected;
    }
    FILE *f = open_memstream(&j->answer, &j->answer_len);
    if (!f)
        return CTRD_ENOMEM;
    fprintf(f,
            "{\"accepted\":%" PRIu64 ",\"duplicates\":%" PRIu64
            ",\"rejected\":%" PRIu64 ",\"errors\":[",
            accepted, duplicates, rejected);
    int n = 0;
    for (size_t i = 0; i < after->n_samples && n < ERRORS_MAX; i++) {
        const struct engine_reject *r = &after->samples[i];
        if (r->input != input)
            continue;
        fprintf(f, "%s{\"line\":%" PRIu64 ",\"reason\":\"%s\"}", n++ ? "," : "",
                r->line, rec_reason_name(r->reason));
    }
    fputs("]}\n", f);
    j->status = 200;
    return fclose(f) == 0 ? 0 : CTRD_ENOMEM;
}

/* Processes one request whose body is in the log. */
static int process_job(struct service *s, struct job *j, int64_t now)
{
    struct engine_stats before, after;
    uint32_t input = s->next_input++;
    engine_get_stats(s->engine, &before);
    engine_clear_samples(s->engine);
    int rc = engine_process_buffer(s->engine, j->kind, j->fmt, j->body, j->len,
                                   input, now, s->err);
    if (rc != 0)
        return rc;
    s->since_checkpoint += j->len;
    if (j->source)
        serve_follow_done(s, j->source, &j->at);
    engine_get_stats(s->engine, &after);
    update_counters(s, &after);
    return write_answer(j, &before, &after, input);
}

/* On the loop thread: sends the answers of a group of jobs. */
static void deliver(void *arg)
{
    struct job *j = arg;
    while (j) {
        struct job *next = j->next;
        enum api_endpoint ep =
            j->kind == ENGINE_QUERIES ? API_INGEST_QUERIES : API_INGEST_CLICKS;
        struct api *a = j->service->api;
        if (j->status == 200) {
            api_respond_json(a, j->x, ep, 200, j->answer, j->answer_len);
        } else if (j->status == 503) {
            static const char failed[] =
                "{\"error\":\"the service failed while processing these "
                "records; resending them is safe (each counts once)\"}\n";
            http_add_header(j->x, "Retry-After", "1");
            api_respond_json(a, j->x, ep, 503, failed, sizeof failed - 1);
        } else {
            api_respond_ingest_error(a, j->x, ep, j->error);
        }
        serve_job_free(j);
        j = next;
    }
}

void serve_answer(struct service *s, struct job *jobs)
{
    struct job *http = NULL, **tail = &http;
    while (jobs) {
        struct job *next = jobs->next;
        jobs->next = NULL;
        if (jobs->x) {
            *tail = jobs;
            tail = &jobs->next;
        } else {
            serve_job_free(jobs);
        }
        jobs = next;
    }
    if (http)
        http_server_post(s->http, deliver, http);
}

/* Commits the state: the log position and followed files' progress with
 * the engine's checkpoint, then drops the log the checkpoint covers. */
static int checkpoint(struct service *s)
{
    uint64_t pos = wal_position(s->wal);
    int rc = engine_progress_set(s->engine, "wal", pos, 0);
    if (rc == 0)
        rc = serve_follow_save(s);
    if (rc == 0)
        rc = engine_checkpoint(s->engine, s->err);
    if (rc == 0) {
        s->since_checkpoint = 0;
        s->last_checkpoint_ms = clock_wall_ms();
        rc = wal_trim(s->wal, pos, s->err);
    }
    publish_sizes(s);
    return rc;
}

static int replay_record(void *ctx, const struct wal_record *r)
{
    struct service *s = ctx;
    struct follow_position at = {r->source_dev, r->source_ino,
                                 r->source_offset};
    s->since_checkpoint += r->len;
    serve_follow_done(s, r->source, &at);
    return engine_process_buffer(s->engine, (enum engine_kind)r->kind,
                                 (enum rec_format)r->format, r->payload, r->len,
                                 ENGINE_INPUT_EARLIER - 1, r->now_ms, s->err);
}

/* The wall-clock instant ms from now, as pthread_cond_timedwait() takes
 * it. */
static struct timespec deadline_in(int64_t ms)
{
    uint64_t at = (uint64_t)(clock_wall_ms() + ms);
    return (struct timespec){(time_t)(at / 1000), (long)(at % 1000) * 1000000};
}

/* With mu held: the held jobs and the queued ones after them, taken. */
static struct job *take_all(struct service *s)
{
    struct job *jobs = s->held ? s->held : s->head;
    if (s->held) {
        struct job *last = s->held;
        while (last->next)
            last = last->next;
        last->next = s->head;
    }
    s->held = NULL;
    s->head = s->tail = NULL;
    s->queued_bytes = 0;
    return jobs;
}

/* Takes the held jobs and the queued ones after them; waits up to 1 s for
 * some. NULL when there are none. */
static struct job *take_jobs(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->held && !s->stopping) {
        struct timespec until = deadline_in(1000);
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    struct job *jobs = take_all(s);
    pthread_cond_broadcast(&s->space_cv);
    pthread_mutex_unlock(&s->mu);
    return jobs;
}

/* Whether the ingest thread is done: asked to stop, and nothing queued is
 * left to write — or writes fail, and then what is queued cannot be
 * written: followed files' lines (records are refused meanwhile), which a
 * restart reads again from where the checkpoint and the log left them. */
int serve_stopping(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping || s->failed;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static int ingest_done(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping && (!s->head || s->writes_failing);
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* After an error the in-memory state may hold records the log lacks: stop
 * taking requests, answer the queued ones 503 (resending them is safe)
 * and stop; a restart recovers from checkpoint + log. */
void serve_fail(struct service *s)
{
    fprintf(stderr, "ctrd serve: %s\n", s->err);
    pthread_mutex_lock(&s->mu);
    s->failed = 1;
    s->ready = 0;
    struct job *jobs = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->mu);
    for (struct job *j = jobs; j; j = j->next)
        j->status = 503;
    serve_answer(s, jobs);
    http_server_stop(s->http);
}

/* Writes failed (s->err says how): from now on records are refused (507)
 * until a retry succeeds. The jobs of the failed group and those queued
 * are answered 507, but followed files' jobs are held for after. */
static void writes_fail(struct service *s, struct job *group)
{
    metric_add(s->write_errors, 1);
    fprintf(stderr,
            "ctrd serve: %s; refusing records (507) until writes "
            "succeed again, reads go on\n",
            s->err);
    pthread_mutex_lock(&s->mu);
    s->writes_failing = 1;
    s->retry_ms = WRITE_RETRY_MIN_MS;
    struct job *queued = s->head;
    s->head = s->tail = NULL;
    s->queued_bytes = 0;
    pthread_cond_broadcast(&s->space_cv);
    pthread_mutex_unlock(&s->mu);
    struct job **held_tail = &s->held, *refused = NULL;
    while (*held_tail)
        held_tail = &(*held_tail)->next;
    for (int pass = 0; pass < 2; pass++) {
        struct job *j = pass ? queued : group;
        while (j) {
            struct job *next = j->next;
            j->next = NULL;
            if (j->x) {
                j->error = j->error ? j->error : CTRD_EWRITEFAIL;
                j->next = refused;
                refused = j;
            } else {
                *held_tail = j;
                held_tail = &j->next;
            }
            j = next;
        }
    }
    serve_answer(s, refused);
}

/* Waits (until stopped) and tries to write again: the log rolled back to
 * its last sync, then a checkpoint. Success opens ingest again; failure
 * doubles the wait. Returns non-zero only when out of memory. */
/* Whether a failed checkpoint is the disk's, which a later try may get
 * past: not when memory ran out, nor when the counts' scratch file is
 * damaged (countmap.h, SPILL), which only a restart (spilling anew) mends. */
static int disk_failure(int rc)
{
    return rc != 0 && rc != CTRD_ENOMEM && rc != CTRD_ECORRUPT;
}

static int retry_writes(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    struct timespec until = deadline_in(s->retry_ms);
    while (!s->stopping &&
           pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
        ;
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stop)
        return 0;
    int rc = wal_rollback(s->wal, s->err);
    if (rc == 0)
        rc = checkpoint(s);
    if (rc != 0 && !disk_failure(rc))
        return rc;
    pthread_mutex_lock(&s->mu);
    if (rc == 0)
        s->writes_failing = 0;
    else if ((s->retry_ms *= 2) > WRITE_RETRY_MAX_MS)
        s->retry_ms = WRITE_RETRY_MAX_MS;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        fprintf(stderr, "ctrd serve: writes succeed again; accepting "
                        "records\n");
    else
        metric_add(s->write_errors, 1);
    return 0;
}

/* Inflates the gzip bodies of a group; a body that fails gets its error. */
static void decode_bodies(struct service *s, struct job *jobs)
{
    for (struct job *j = jobs; j; j = j->next) {
        if (!j->gzip)
            continue;
        char *plain;
        size_t len;
        int rc = gunzip(j->body, j->len, s->max_body_bytes, &plain, &len);
        if (rc != 0) {
            j->error = rc;
            continue;
        }
        free(j->body);
        j->body = plain;
        j->len = len;
        j->gzip = 0;
    }
}

/* Makes a group of requests durable (one log sync for all), then processes
 * them and answers. A failed write makes writes_fail(); other errors are
 * returned (fatal). */
static int ingest_group(struct service *s, struct job *jobs)
{
    int64_t now = clock_wall_ms();
    decode_bodies(s, jobs);
    int rc = 0;
    for (struct job *j = jobs; j && rc == 0; j = j->next) {
        struct wal_record r = {
            (uint8_t)j->kind, (uint8_t)j->fmt, j->source, now,   j->at.dev,
            j->at.ino,        j->at.offset,    j->body,   j->len};
        if (!j->error && j->len > 0)
            rc = wal_append(s->wal, &r, s->err);
    }
    if (rc == 0)
        rc = wal_sync(s->wal, s->err);
    if (rc != 0 && rc != CTRD_ENOMEM) {
        writes_fail(s, jobs);
        return 0;
    }
    for (struct job *j = jobs; j && rc == 0; j = j->next) {
        if (!j->error)
            rc = process_job(s, j, now);
    }
    for (struct job *j = jobs; rc != 0 && j; j = j->next) {
        if (!j->error && j->status != 200)
            j->status = 503;
    }
    publish_sizes(s);
    serve_answer(s, jobs);
    return rc;
}

static int checkpoint_due(const struct service *s)
{
    return s->since_checkpoint >= s->checkpoint_every ||
           engine_memory_full(s->engine) ||
           (s->since_checkpoint > 0 &&
            clock_wall_ms() - s->last_checkpoint_ms >= CHECKPOINT_IDLE_MS);
}

/* Replays the log after the last checkpoint (cutting a torn tail), names
 * the log in a first checkpoint when none did, and starts following. */
static int recover(struct service *s)
{
    uint64_t from, unused;
    int named = engine_progress_get(s->engine, "wal", &from, &unused) == 0;
    char note[CTRD_ERR_LEN];
    int rc = wal_open(engine_data_dir(s->engine), named ? &from : NULL,
                      replay_record, s, note, &s->wal, s->err);
    if (rc == 0 && note[0])
        fprintf(stderr, "ctrd serve: %s\n", note);
    if (rc == 0 && !named)
        rc = checkpoint(s);
    if (rc == 0)
        rc = serve_follow_start(s);
    if (rc == 0) {
        engine_get_stats(s->engine, &s->last);
        publish_sizes(s);
    }
    return rc;
}

/* Recovers (one process) and opens ingest, or starts the count server
 * (distributed), which says ready once it caught up. */
static int start(struct service *s)
{
    int rc = s->cluster ? serve_cluster_start(s) : recover(s);
    if (rc == 0 && !s->cluster) { /* distributed: once caught up */
        pthread_mutex_lock(&s->mu);
        s->ready = 1;
        pthread_mutex_unlock(&s->mu);
        fprintf(stderr, "ctrd serve: ready\n");
    }
    return rc;
}

static int writes_failing(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    int failing = s->writes_failing;
    pthread_mutex_unlock(&s->mu);
    return failing;
}

/* Stopping while writes fail: lets go of the jobs held and queued, never
 * written (any HTTP one is answered 503: resending is safe). */
static void drop_unwritten(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    struct job *jobs = take_all(s);
    pthread_mutex_unlock(&s->mu);
    if (jobs)
        fprintf(stderr,
                "ctrd serve: stopping while writes fail: followed "
                "lines not yet written are read again after a restart\n");
    for (struct job *j = jobs; j; j = j->next)
        j->status = 503;
    serve_answer(s, jobs);
}

static void *ingest_main(void *arg)
{
    struct service *s = arg;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), INGEST_NICE);
    int rc = start(s);
    while (rc == 0 && !ingest_done(s)) {
        if (writes_failing(s)) {
            rc = retry_writes(s);
            continue;
        }
        struct job *jobs = take_jobs(s);
        if (jobs)
            rc = s->cluster ? serve_cluster_ingest(s, jobs)
                            : ingest_group(s, jobs);
        if (rc == 0 && checkpoint_due(s) && disk_failure(rc = checkpoint(s))) {
            writes_fail(s, NULL);
            rc = 0;
        }
    }
    if (rc == 0 && s->since_checkpoint > 0 && !writes_failing(s))
        rc = checkpoint(s);
    if (writes_failing(s))
        drop_unwritten(s);
    if (rc != 0)
        serve_fail(s);
    return NULL;
}

static int open_access(const struct serve_opts *o, struct auth **auth,
                       struct catalog **catalog, char *err)
{
    int rc = 0;
    if (o->auth)
        rc = auth_load(o->auth, auth, err);
    if (rc == 0 && o->ads)
        rc = catalog_load(o->ads, catalog, err);
    return rc;
}

int serve_command(int argc, char **argv)
{
    struct serve_opts o;
    int rc = serve_config_parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.cluster && o.role == SERVE_ROLE_JOINER)
        return serve_cluster_joiner(&o);
    struct service s = {.checkpoint_every = o.core.checkpoint_every,
                        .max_body_bytes = o.max_body,
                        .max_queued_bytes = o.max_queue,
                        .last_checkpoint_ms = clock_wall_ms()};
    struct auth *auth = NULL;
    struct catalog *catalog = NULL;
    pthread_t ingest;
    int started = 0;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    pthread_cond_init(&s.space_cv, NULL);
    serve_follow_add(&s, o.follow_queries, ENGINE_QUERIES);
    serve_follow_add(&s, o.follow_clicks, ENGINE_CLICKS);
    s.metrics = metrics_create();
    rc = s.metrics && create_metrics(&s) == 0
             ? 0
             : ctrd_fail(s.err, CTRD_ENOMEM, "out of memory");
    if (rc == 0)
        rc = open_access(&o, &auth, &catalog, s.err);
    if (rc == 0 && o.cluster) /* a bad cluster file touches no data */
        rc = serve_cluster_open(&s, o.cluster, o.name);
    if (rc == 0)
        rc = engine_open(&o.core.engine, &s.engine, s.err);
    struct api_config ac = {
        s.engine,   auth,   catalog,      s.metrics, o.metrics_public,
        o.max_body, submit, ingest_state, &s,        (unsigned)o.read_threads};
    if (rc == 0)
        rc = api_create(&ac, &s.api, s.err);
    o.http.max_body_bytes = o.max_body;
    o.http.handler = api_handle;
    o.http.metrics = s.metrics;
    o.http.ctx = s.api;
    if (rc == 0)
        rc = http_server_create(&o.http, &s.http, s.err);
    if (rc == 0 && (sse_create(s.http, s.engine, &s.sse) != 0 ||
                    !metrics_gauge_fn(s.metrics, "ctrd_sse_streams",
                                      "Live /v1/stream subscribers.", NULL,
                                      gauge_streams, s.sse)))
        rc = ctrd_fail(s.err, CTRD_ENOMEM, "out of memory");
    if (rc == 0) {
        /* Said before the ingest thread starts: an error of its recovery
         * (a damaged log) is then the last line. */
        fprintf(stderr, "ctrd serve: listening on %s (port %d), data in %s%s\n",
                o.http.listen, http_server_port(s.http), o.core.engine.data_dir,
                o.auth ? ""
                       : "; no --auth: every client that can reach "
                         "this address may read and write");
        api_attach(s.api, s.http, s.sse);
        started = pthread_create(&ingest, NULL, ingest_main, &s) == 0;
        rc = started ? 0 : ctrd_fail(s.err, CTRD_EIO, "cannot start thread");
    }
    if (rc == 0) {
        http_server_run_until_signal(s.http, DRAIN_MS);
    }
    if (started) {
        pthread_mutex_lock(&s.mu);
        s.stopping = 1;
        pthread_cond_signal(&s.cv);
        pthread_cond_broadcast(&s.space_cv);
        pthread_mutex_unlock(&s.mu);
        pthread_join(ingest, NULL);
        serve_cluster_close(&s);
        serve_follow_join(&s);
        rc = s.failed ? CTRD_EIO : 0;
        if (rc == 0)
            fprintf(stderr, "ctrd serve: stopped cleanly\n");
    } else if (rc != 0) {
        fprintf(stderr, "ctrd serve: %s\n", s.err);
    }
    api_stop_reads(s.api); /* before the server goes: reads post to it */
    sse_free(s.sse);
    http_server_free(s.http);
    api_free(s.api);
    serve_cluster_close(&s);
    wal_close(s.wal);
    engine_close(s.engine);
    catalog_free(catalog);
    auth_free(auth);
    metrics_free(s.metrics);
    serve_follow_close(&s);
    pthread_cond_destroy(&s.space_cv);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc == 0 ? 0 : 1;
}
