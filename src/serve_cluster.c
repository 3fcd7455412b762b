/* serve_cluster: `ctrd serve --cluster FILE --role front`, the front end
 * of distributed ctrd (docs/scale-out.md). Two jobs in one process:
 *
 *   ingest front end  the ingest thread checks each request's lines
 *                     (record.h), routes the valid ones by partition into
 *                     CTRD_IN messages and answers once JetStream has
 *                     acknowledged every one (stored on a quorum of its
 *                     replicas: "durable" in distributed mode). Retries
 *                     keep the message id, so JetStream drops what it
 *                     already has; a client's retry after a lost answer
 *                     re-sends records, which count once anyway (first
 *                     query wins, one click per (query, ad)).
 *   count server      a thread applies CTRD_DELTA to the engine's counts
 *                     (the engine serves the API, page and SSE as in one
 *                     process): a delta of partition p is applied only
 *                     when it starts after applied[p], the last input
 *                     sequence applied, and never from an epoch older than
 *                     one already seen. applied[] and the delta stream's
 *                     position are checkpointed with the counts (engine
 *                     progress keys), so a restart resumes exactly. as_of
 *                     is the oldest partition's latest query time, so the
 *                     counts are complete up to it while one lags.
 *
 * Threads: the ingest thread publishes (and the NATS library's threads
 * answer it); the delta thread is the engine's only writer. */
#include "serve_int.h"

#include "clock.h"
#include "cluster.h"
#include "cluster_joiner.h"
#include "gunzip.h"
#include "serve_config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUBLISH_DEADLINE_MS 10000
#define ACK_WAIT_MS 2000
#define CHECKPOINT_EVERY_MS 30000
#define ERRORS_MAX 100

/* One partition's message being filled. */
struct batch {
    char *buf;
    size_t len;
    uint32_t n_lines;
    size_t delta_bytes; /* what its records could make in deltas, at most */
};

struct cluster_front {
    struct cluster_config cfg;
    char name[64];
    uint64_t boot, counter;
    natsConnection *nc;
    jsCtx *js;
    /* publishes the library gave back as failed (ingest thread + the
     * library's ack thread) */
    pthread_mutex_t mu;
    natsMsg **failed;
    size_t n_failed, cap_failed;
    struct batch *batches; /* [partitions]: being filled (ingest thread) */
    jsErrCode last_jerr;
    int lost; /* a failed message could not be kept to resend */
    /* the count server (delta thread) */
    pthread_t delta_thread;
    int delta_started;
    uint64_t delta_seq; /* CTRD_DELTA stream position applied */
    uint64_t *applied;  /* [partitions] */
    int64_t *epoch;     /* [partitions] */
    int64_t *as_of;     /* [partitions]: latest query time applied, -1 */
    struct metric *m_published, *m_retries, *m_skipped, *m_fenced, *m_applied;
};

/* ---- publishing (ingest thread) ---- */

/* With f->mu held: keeps a message to resend (when out of memory it is
 * dropped and f->lost makes the wait fail: 503). */
static void keep_failed(struct cluster_front *f, natsMsg *m)
{
    if (f->n_failed == f->cap_failed) {
        size_t cap = f->cap_failed ? 2 * f->cap_failed : 64;
        natsMsg **grown = realloc(f->failed, cap * sizeof *grown);
        if (!grown) {
            natsMsg_Destroy(m);
            f->lost = 1; /* the wait that follows fails: 503 */
            return;
        }
        f->failed = grown;
        f->cap_failed = cap;
    }
    f->failed[f->n_failed++] = m;
}

static void on_publish_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct cluster_front *f = closure;
    pthread_mutex_lock(&f->mu);
    keep_failed(f, pae->Msg);
    f->last_jerr = pae->ErrCode;
    pae->Msg = NULL; /* ours now, to resend */
    pthread_mutex_unlock(&f->mu);
}

static int send_async(struct cluster_front *f, natsMsg *m)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ACK_WAIT_MS;
    if (js_PublishMsgAsync(f->js, &m, &po) == NATS_OK)
        return 0;
    natsMsg_Destroy(m); /* still ours: the request fails (503) */
    return CTRD_EAGAIN;
}

/* The messages not acknowledged yet once the library is done with them:
 * failed ones and, after a timeout, those still pending. */
/* ... and since the last call: whether one was lost (*lost) and the
 * JetStream error of the last failure (*jerr). */
static size_t take_unacknowledged(struct cluster_front *f, natsStatus done,
                                  natsMsg ***out, int *lost, jsErrCode *jerr)
{
    natsMsgList pending = {0};
    if (done == NATS_TIMEOUT)
        js_PublishAsyncGetPendingList(&pending, f->js);
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < pending.Count; i++) {
        keep_failed(f, pending.Msgs[i]);
        pending.Msgs[i] = NULL;
    }
    *out = f->failed;
    size_t n = f->n_failed;
    f->failed = NULL;
    f->n_failed = f->cap_failed = 0;
    *lost = f->lost;
    *jerr = f->last_jerr ? f->last_jerr : *jerr;
    f->lost = 0;
    f->last_jerr = 0;
    pthread_mutex_unlock(&f->mu);
    natsMsgList_Destroy(&pending);
    return n;
}

/* Waits until JetStream acknowledged everything sent, resending what
 * failed (same message ids) until the deadline: 0, CTRD_EAGAIN (no stream
 * leader, no answer) or CTRD_EWRITEFAIL (the stream's storage is full). */
static int await_acks(struct service *s, int64_t deadline)
{
    struct cluster_front *f = s->cluster;
    int64_t backoff_ms = 50;
    jsErrCode jerr = 0;
    for (;;) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        int64_t left = deadline - clock_mono_ms();
        po.MaxWait = left < 100 ? 100 : left;
        natsStatus done = js_PublishAsyncComplete(f->js, &po);
        natsMsg **again;
        int lost;
        size_t n = take_unacknowledged(f, done, &again, &lost, &jerr);
        if (n == 0 && done == NATS_OK && !lost) {
            free(again);
            return 0;
        }
        int give_up = clock_mono_ms() >= deadline;
        for (size_t i = 0; i < n; i++) {
            if (give_up)
                natsMsg_Destroy(again[i]);
            else
                lost |= send_async(f, again[i]) != 0;
        }
        free(again);
        if (give_up || lost)
            return jerr == JSStorageResourcesExceededErr ||
                           jerr == JSInsufficientResourcesErr
                       ? CTRD_EWRITEFAIL
                       : CTRD_EAGAIN;
        metric_add(f->m_retries, n);
        usleep((useconds_t)backoff_ms * 1000);
        backoff_ms = backoff_ms < 1000 ? 2 * backoff_ms : 1000;
    }
}

static int flush_batch(struct service *s, struct batch *b, unsigned p,
                       enum engine_kind kind, enum rec_format fmt)
{
    struct cluster_front *f = s->cluster;
    if (b->n_lines == 0)
        return 0;
    struct cluster_in in = {kind, fmt, p, b->n_lines, NULL, 0};
    cluster_in_seal(b->buf, b->len, &in);
    char subject[32], id[96];
    snprintf(subject, sizeof subject, "ctrd.in.%u", p);
    snprintf(id, sizeof id, "%s.%016" PRIx64 ".%" PRIu64, f->name, f->boot,
             ++f->counter);
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, subject, NULL, b->buf, (int)b->len);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    b->len = CLUSTER_IN_HEADER;
    b->n_lines = 0;
    b->delta_bytes = 0;
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        return CTRD_ENOMEM;
    }
    metric_add(f->m_published, 1);
    return send_async(f, m);
}

/* Appends a checked line that could make delta_bytes of deltas
 * (CLUSTER_DELTA_BOUND), closing the batch first when it is full. */
static int add_line(struct service *s, struct batch *b, unsigned p,
                    const struct job *j, const char *line, size_t len,
                    size_t delta_bytes)
{
    if (b->len + len + 1 > CLUSTER_BATCH_BYTES ||
        b->delta_bytes + delta_bytes > CLUSTER_DELTA_BOUND) {
        int rc = flush_batch(s, b, p, j->kind, j->fmt);
        if (rc != 0)
            return rc;
    }
    if (!b->buf && !(b->buf = malloc(CLUSTER_BATCH_BYTES)))
        return CTRD_ENOMEM;
    if (b->len < CLUSTER_IN_HEADER)
        b->len = CLUSTER_IN_HEADER;
    memcpy(b->buf + b->len, line, len);
    b->buf[b->len + len] = '\n';
    b->len += len + 1;
    b->n_lines++;
    b->delta_bytes += delta_bytes;
    return 0;
}

/* What one request's lines came to. */
struct tally {
    uint64_t accepted, rejected;
    FILE *errors;      /* the answer's "errors" array, being written */
    char *errors_text; /* then written */
    int sent;          /* 0, or why its messages could not all be sent */
};

/* Checks one line; a valid one goes into its partition's batch. */
static int route_line(struct service *s, struct batch *batches,
                      const struct job *j, const char *line, size_t len,
                      uint64_t line_no, struct tally *t)
{
    struct rec_query q;
    struct rec_click c;
    enum rec_reason why = j->kind == ENGINE_QUERIES
                              ? rec_parse_query(j->fmt, line, len, &q)
                              : rec_parse_click(j->fmt, line, len, &c);
    if (why == REC_EMPTY)
        return 0;
    if (why != REC_OK) {
        metric_add(s->counters.rejects[why], 1);
        if (t->rejected++ < ERRORS_MAX)
            fprintf(t->errors, "%s{\"line\":%" PRIu64 ",\"reason\":\"%s\"}",
                    t->rejected > 1 ? "," : "", line_no, rec_reason_name(why));
        return 0;
    }
    t->accepted++;
    int query = j->kind == ENGINE_QUERIES;
    unsigned p =
        cluster_partition(&s->cluster->cfg, query ? q.query_id : c.query_id);
    size_t delta_bytes = query ? q.n_ads * (CLUSTER_DELTA_ENTRY + q.term_len)
                               : CLUSTER_DELTA_ENTRY + REC_TERM_MAX;
    return add_line(s, &batches[p], p, j, line, len, delta_bytes);
}

/* Routes a request's lines into the partitions' batches and sends them. */
static int send_job(struct service *s, const struct job *j, struct tally *t)
{
    struct batch *batches = s->cluster->batches;
    int rc = 0;
    uint64_t line_no = 0;
    for (size_t at = 0; at < j->len && rc == 0;) {
        const char *nl = memchr(j->body + at, '\n', j->len - at);
        size_t end = nl ? (size_t)(nl - j->body) : j->len;
        rc = route_line(s, batches, j, j->body + at, end - at, ++line_no, t);
        at = end + 1;
    }
    for (unsigned p = 0; p < s->cluster->cfg.partitions; p++) {
        int flushed = flush_batch(s, &batches[p], p, j->kind, j->fmt);
        rc = rc ? rc : flushed;
    }
    return rc;
}

/* Writes the answer of a request whose lines are all acknowledged (SPEC
 * §5; "duplicates" is 0: whether a record repeats an earlier one is known
 * to the joiner only). */
static int answer_job(struct service *s, struct job *j, struct tally *t)
{
    int kind = j->kind == ENGINE_QUERIES ? 0 : 1;
    metric_add(s->counters.records[kind][0], t->accepted);
    metric_add(s->counters.records[kind][2], t->rejected);
    serve_follow_done(s, j->source, &j->at);
    FILE *f = open_memstream(&j->answer, &j->answer_len);
    if (!f)
        return CTRD_ENOMEM;
    fprintf(f,
            "{\"accepted\":%" PRIu64 ",\"duplicates\":0,"
            "\"rejected\":%" PRIu64 ",\"errors\":[%s]}\n",
            t->accepted, t->rejected, t->errors_text ? t->errors_text : "");
    j->status = 200;
    return fclose(f) == 0 ? 0 : CTRD_ENOMEM;
}

/* Inflates a gzip body in place; the job gets the error when it fails. */
static void decode_body(struct service *s, struct job *j)
{
    char *plain;
    size_t len;
    if (!j->gzip ||
        (j->error = gunzip(j->body, j->len, s->max_body_bytes, &plain, &len)))
        return;
    free(j->body);
    j->body = plain;
    j->len = len;
    j->gzip = 0;
}

/* Sends one request's lines and closes its errors text. */
static int send_checked(struct service *s, struct job *j, struct tally *t)
{
    size_t unused;
    *t = (struct tally){0};
    if (!(t->errors = open_memstream(&t->errors_text, &unused)))
        return CTRD_ENOMEM;
    int rc = send_job(s, j, t);
    return fclose(t->errors) != 0 && rc == 0 ? CTRD_ENOMEM : rc;
}

/* A followed file's lines are published before the file moves on: sent
 * again until acknowledged or the service stops (a restart reads them
 * again). */
static int publish_followed(struct service *s, struct job *j, struct tally *t)
{
    int rc;
    do {
        free(t->errors_text);
        rc = send_checked(s, j, t);
        if (rc == 0)
            rc = await_acks(s, clock_mono_ms() + PUBLISH_DEADLINE_MS);
    } while (rc != 0 && rc != CTRD_ENOMEM && !serve_stopping(s));
    return rc;
}

/* Publishes a group of requests (all sent, then one wait for JetStream's
 * acknowledgements) and answers them; CTRD_ENOMEM is fatal (the group is
 * answered 503 first). */
int serve_cluster_ingest(struct service *s, struct job *jobs)
{
    size_t n = 0, i = 0;
    for (struct job *j = jobs; j; j = j->next)
        n++;
    struct tally *t = calloc(n ? n : 1, sizeof *t);
    int rc = t ? 0 : CTRD_ENOMEM;
    for (struct job *j = jobs; j && rc == 0; j = j->next, i++) {
        decode_body(s, j);
        if (!j->error && (t[i].sent = send_checked(s, j, &t[i])) == CTRD_ENOMEM)
            rc = CTRD_ENOMEM;
    }
    int acked = rc ? rc : await_acks(s, clock_mono_ms() + PUBLISH_DEADLINE_MS);
    i = 0;
    for (struct job *j = jobs; j; j = j->next, i++) {
        if (rc != 0 || j->error)
            continue;
        int ok = t[i].sent ? t[i].sent : acked;
        if (ok != 0 && ok != CTRD_ENOMEM && j->source)
            ok = publish_followed(s, j, &t[i]);
        if (ok == 0)
            ok = answer_job(s, j, &t[i]);
        if (ok == CTRD_ENOMEM)
            rc = ok;
        else if (ok != 0)
            j->error = ok;
    }
    for (struct job *j = jobs; rc != 0 && j; j = j->next)
        if (j->status != 200)
            j->status = 503;
    for (size_t k = 0; t && k < n; k++)
        free(t[k].errors_text);
    free(t);
    serve_answer(s, jobs);
    return rc;
}

/* ---- the count server (delta thread) ---- */

static int save_progress(struct service *s)
{
    struct cluster_front *f = s->cluster;
    int rc = engine_progress_set(s->engine, "delta", f->delta_seq, 0);
    if (rc == 0)
        rc = serve_follow_save(s);
    char key[16];
    for (unsigned p = 0; p < f->cfg.partitions && rc == 0; p++) {
        if (!f->applied[p])
            continue;
        snprintf(key, sizeof key, "p%u", p);
        rc = engine_progress_set(s->engine, key, f->applied[p],
                                 (uint64_t)f->epoch[p]);
        snprintf(key, sizeof key, "a%u", p);
        if (rc == 0)
            rc = engine_progress_set(s->engine, key, (uint64_t)f->as_of[p], 0);
    }
    return rc == 0 ? engine_checkpoint(s->engine, s->err) : rc;
}

static void load_progress(struct service *s)
{
    struct cluster_front *f = s->cluster;
    uint64_t unused, epoch;
    if (engine_progress_get(s->engine, "delta", &f->delta_seq, &unused) != 0)
        f->delta_seq = 0;
    char key[16];
    for (unsigned p = 0; p < f->cfg.partitions; p++) {
        uint64_t as_of;
        f->as_of[p] = -1;
        snprintf(key, sizeof key, "p%u", p);
        if (engine_progress_get(s->engine, key, &f->applied[p], &epoch) == 0)
            f->epoch[p] = (int64_t)epoch;
        snprintf(key, sizeof key, "a%u", p);
        if (engine_progress_get(s->engine, key, &as_of, &unused) == 0)
            f->as_of[p] = (int64_t)as_of;
    }
}

/* The counts' as_of once partition p is complete up to as_of_ms: the
 * oldest of the partitions that hold queries, so that counts are complete
 * up to it even while a partition lags (a takeover); -1 when none. */
static int64_t as_of_after(struct cluster_front *f, unsigned p,
                           int64_t as_of_ms)
{
    int64_t oldest = -1;
    f->as_of[p] = as_of_ms;
    for (unsigned i = 0; i < f->cfg.partitions; i++)
        if (f->as_of[i] >= 0 && (oldest < 0 || f->as_of[i] < oldest))
            oldest = f->as_of[i];
    return oldest;
}

/* Applies one delta, or says why not: 0 applied or skipped,
 * CTRD_ECORRUPT (s->err says what). */
static int apply_delta(struct service *s, natsMsg *m)
{
    struct cluster_front *f = s->cluster;
    struct cluster_delta d;
    int rc = cluster_delta_open(natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), &d, s->err);
    if (rc == 0 && d.partition >= f->cfg.partitions)
        rc = ctrd_fail(s->err, CTRD_ECORRUPT, "delta of partition %u",
                       d.partition);
    if (rc != 0)
        return rc;
    unsigned p = d.partition;
    if (d.last_seq <= f->applied[p]) {
        metric_add(f->m_skipped, 1);
        return 0;
    }
    if (d.epoch < f->epoch[p]) {
        metric_add(f->m_fenced, 1);
        return 0;
    }
    if (d.first_seq <= f->applied[p])
        return ctrd_fail(s->err, CTRD_ECORRUPT,
                         "delta of partition %u covers input %" PRIu64
                         "..%" PRIu64 " but %" PRIu64 " is applied",
                         p, d.first_seq, d.last_seq, f->applied[p]);
    struct engine_count_add *adds = malloc((d.n_entries + 1) * sizeof *adds);
    if (!adds)
        return CTRD_ENOMEM;
    size_t at = 0, n = 0;
    struct cluster_delta_entry e;
    while (n < d.n_entries && (rc = cluster_delta_next(&d, &at, &e)) == 1)
        adds[n++] = (struct engine_count_add){
            e.ad_id, e.term, e.term_len, e.minute, e.impressions, e.clicks};
    rc = n == d.n_entries && at == d.len
             ? engine_add_counts(s->engine, adds, n,
                                 as_of_after(f, p, d.as_of_ms), s->err)
             : ctrd_fail(s->err, CTRD_ECORRUPT,
                         "delta of partition %u: "
                         "bad entries",
                         p);
    free(adds);
    if (rc == 0) {
        f->applied[p] = d.last_seq;
        f->epoch[p] = d.epoch;
        metric_add(f->m_applied, 1);
    }
    return rc;
}

static int subscribe_deltas(struct cluster_front *f, natsSubscription **sub)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = CLUSTER_STREAM_DELTA;
    so.Ordered = true;
    so.Config.DeliverPolicy =
        f->delta_seq ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = f->delta_seq + 1;
    jsErrCode jerr = 0;
    return js_SubscribeSync(sub, f->js, "ctrd.d.>", NULL, &so, &jerr) == NATS_OK
               ? 0
               : CTRD_EAGAIN;
}

/* The first time the count server has applied what the delta stream held:
 * ready (a front end restarted on an old checkpoint says 503 until then). */
static void caught_up(struct service *s)
{
    pthread_mutex_lock(&s->mu);
    int was = s->ready;
    s->ready = 1;
    pthread_mutex_unlock(&s->mu);
    if (!was)
        fprintf(stderr,
                "ctrd serve: ready (counts caught up with %s at "
                "%" PRIu64 ")\n",
                CLUSTER_STREAM_DELTA, s->cluster->delta_seq);
}

static void *delta_main(void *arg)
{
    struct service *s = arg;
    struct cluster_front *f = s->cluster;
    natsSubscription *sub = NULL;
    int rc = 0;
    int64_t last_checkpoint = clock_mono_ms();
    uint64_t at_checkpoint = f->delta_seq;
    while (rc == 0 && !serve_stopping(s)) {
        if (!sub && subscribe_deltas(f, &sub) != 0) {
            usleep(200000);
            continue;
        }
        natsMsg *m = NULL;
        struct cluster_meta meta = {0};
        natsStatus st = natsSubscription_NextMsg(&m, sub, 200);
        if (st == NATS_OK && cluster_msg_meta(m, &meta) == 0 &&
            meta.seq > f->delta_seq) {
            rc = apply_delta(s, m);
            f->delta_seq = meta.seq;
        }
        if (rc == 0 && (st == NATS_TIMEOUT || (st == NATS_OK && !meta.pending)))
            caught_up(s);
        natsMsg_Destroy(m);
        if (rc == 0 && f->delta_seq != at_checkpoint &&
            clock_mono_ms() - last_checkpoint >= CHECKPOINT_EVERY_MS) {
            rc = save_progress(s);
            last_checkpoint = clock_mono_ms();
            at_checkpoint = f->delta_seq;
        }
    }
    if (rc == 0) /* followed files may have moved on, too */
        rc = save_progress(s);
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    if (rc != 0) {
        fprintf(stderr,
                "ctrd serve: %s %s sequence %" PRIu64
                ": %s; the count server stops (nothing after it is "
                "applied)\n",
                CLUSTER_STREAM_DELTA, "message", f->delta_seq, s->err);
        serve_fail(s);
    }
    return NULL;
}

/* ---- setting up ---- */

static int create_cluster_metrics(struct service *s)
{
    struct cluster_front *f = s->cluster;
    const struct metrics_counter_def counters[] = {
        {&f->m_published, "ctrd_input_messages_published_total",
         "CTRD_IN messages published (one per partition and request)."},
        {&f->m_retries, "ctrd_publish_retries_total",
         "Publishes resent (no answer in time, no stream leader)."},
        {&f->m_applied, "ctrd_deltas_applied_total",
         "CTRD_DELTA messages applied."},
        {&f->m_skipped, "ctrd_delta_sections_skipped_total",
         "CTRD_DELTA messages skipped: their input was applied already."},
        {&f->m_fenced, "ctrd_fenced_writes_total",
         "CTRD_DELTA messages refused: an older epoch than one applied."},
    };
    return metrics_counters(s->metrics, counters,
                            sizeof counters / sizeof counters[0]);
}

int serve_cluster_open(struct service *s, const char *cluster_file,
                       const char *name)
{
    struct cluster_front *f = calloc(1, sizeof *f);
    if (!f)
        return ctrd_fail(s->err, CTRD_ENOMEM, "out of memory");
    s->cluster = f;
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->name, sizeof f->name, "%s", name);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    f->boot = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
              (uint64_t)getpid() << 48;
    int rc = cluster_config_load(cluster_file, &f->cfg, s->err);
    if (rc == 0) {
        f->applied = calloc(f->cfg.partitions, sizeof *f->applied);
        f->batches = calloc(f->cfg.partitions, sizeof *f->batches);
        f->as_of = calloc(f->cfg.partitions, sizeof *f->as_of);
        f->epoch = calloc(f->cfg.partitions, sizeof *f->epoch);
        if (!f->applied || !f->epoch || !f->batches || !f->as_of ||
            create_cluster_metrics(s) != 0)
            rc = ctrd_fail(s->err, CTRD_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = cluster_connect(&f->cfg, name, &f->nc, &f->js, s->err);
    if (rc == 0) {
        jsCtx_Destroy(f->js); /* again, with the error handler */
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = 5000;
        jo.PublishAsync.MaxPending = 4096;
        jo.PublishAsync.StallWait = PUBLISH_DEADLINE_MS; /* wait, not fail */
        jo.PublishAsync.ErrHandler = on_publish_error;
        jo.PublishAsync.ErrHandlerClosure = f;
        f->js = NULL;
        if (natsConnection_JetStream(&f->js, f->nc, &jo) != NATS_OK)
            rc = ctrd_fail(s->err, CTRD_EIO, "JetStream context");
    }
    return rc;
}

int serve_cluster_start(struct service *s)
{
    struct cluster_front *f = s->cluster;
    load_progress(s);
    int rc = serve_follow_start(s);
    if (rc != 0)
        return rc;
    f->delta_started =
        pthread_create(&f->delta_thread, NULL, delta_main, s) == 0;
    return f->delta_started
               ? 0
               : ctrd_fail(s->err, CTRD_EIO, "cannot start the delta thread");
}

void serve_cluster_close(struct service *s)
{
    struct cluster_front *f = s->cluster;
    if (!f)
        return;
    if (f->delta_started)
        pthread_join(f->delta_thread, NULL);
    f->delta_started = 0;
    cluster_disconnect(f->nc, f->js);
    for (unsigned p = 0; f->batches && p < f->cfg.partitions; p++)
        free(f->batches[p].buf);
    free(f->batches);
    free(f->applied);
    free(f->epoch);
    free(f->as_of);
    free(f->failed);
    pthread_mutex_destroy(&f->mu);
    free(f);
    s->cluster = NULL;
}

int serve_cluster_joiner(const struct serve_opts *o)
{
    struct cluster_config cfg;
    char err[CTRD_ERR_LEN];
    if (cluster_config_load(o->cluster, &cfg, err) != 0) {
        fprintf(stderr, "ctrd serve: %s\n", err);
        return 1;
    }
    struct cluster_joiner_opts jo = {
        .cluster = &cfg,
        .name = o->name,
        .data_dir = o->core.engine.data_dir,
        .join = {o->core.engine.join_window_ms,
                 o->core.engine.click_timeout_ms},
        .http = o->http,
    };
    return cluster_joiner_run(&jo);
}
