/* cluster_joiner: see cluster_joiner.h. This file: the partitions' states
 * and the worker thread (join, publish), the control thread (etcd), and
 * the role's HTTP answers. */
#include "cluster_joiner.h"

#include "clock.h"
#include "countmap.h"
#include "hash.h"
#include "etcd.h"
#include "fsutil.h"
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTROL_TICK_MS 200
#define KEEPALIVE_EVERY_MS 1000
#define STEP_MESSAGES 256 /* input messages per delta, at most */
#define PUBLISH_WAIT_MS 5000
#define IDLE_SLEEP_US 2000
#define OPEN_RETRY_MS 1000
#define ETCD_TIMEOUT_MS 2000
#define MEMBERS_PREFIX "/ctrd/v1/members/"
#define OWN_PREFIX "/ctrd/v1/own/j/"

/* ---- state ---- */

struct part {
    unsigned p;
    int64_t epoch; /* 0: closed */
    natsSubscription *sub;
    struct terms *terms;
    struct qs *qs;
    struct joiner *joiner;
    uint64_t applied_seq;   /* last input message applied */
    uint64_t published_seq; /* last input message the delta chain covers */
    uint64_t chain_seq;     /* CTRD_DELTA sequence of the chain's last link */
    int64_t watermark_ms;   /* stream time: max stored time applied */
    int64_t as_of_ms;       /* latest query time */
    int failed;             /* damaged input: stopped, reported */
    uint64_t pending;       /* input messages known to be still to come */
    /* counted since published_seq, not yet published */
    struct countmap *out;
    uint64_t out_first, out_last;
    size_t out_bytes; /* what the delta could take encoded, at most */
    int emitting;     /* applying a message past published_seq */
};

struct jrole {
    const struct cluster_joiner_opts *o;
    natsConnection *nc;
    jsCtx *js;
    struct part *parts; /* [partitions]; the worker's */
    int64_t *retry_at;  /* [partitions]: next open after a failed one */
    char open_error[CTRD_ERR_LEN]; /* the last one, said once */
    pthread_mutex_t mu;
    /* control -> worker: the epoch each partition is owned with (0: not);
     * worker -> control: the epoch its state is open with, and partitions
     * it found fenced (a newer owner published). */
    int64_t *want, *have;
    int *fenced;
    uint64_t *lag; /* worker -> metrics: each partition's pending input */
    int stopping, ready;
    struct metrics *metrics;
    struct metric *m_inputs, *m_deltas, *m_retries, *m_fenced, *m_takeovers,
        *m_damaged, *m_lease_lost, *m_replayed;
};

static int stopping(struct jrole *r)
{
    pthread_mutex_lock(&r->mu);
    int s = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* ---- a partition's state (worker thread) ---- */

static void part_close(struct part *pt)
{
    if (pt->sub) {
        natsSubscription_Unsubscribe(pt->sub);
        natsSubscription_Destroy(pt->sub);
    }
    joiner_free(pt->joiner);
    qs_close(pt->qs);
    terms_close(pt->terms);
    cm_free(pt->out);
    *pt = (struct part){.p = pt->p};
}

/* Where the delta chain of pt stands: its last link's sequence and the
 * input sequence it covers up to, and that link's epoch (0, 0, 0: none
 * yet). */
static int chain_tail(struct jrole *r, unsigned p, uint64_t *chain_seq,
                      uint64_t *covered, int64_t *epoch, char *err)
{
    char subject[32];
    snprintf(subject, sizeof subject, "ctrd.d.%u", p);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_GetLastMsg(&m, r->js, CLUSTER_STREAM_DELTA, subject, NULL, &jerr);
    *chain_seq = *covered = 0;
    *epoch = 0;
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return 0;
    if (s != NATS_OK)
        return ctrd_fail(err, CTRD_EAGAIN, "last delta of partition %u: %s", p,
                         natsStatus_GetText(s));
    struct cluster_delta d;
    int rc = cluster_delta_open(natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), &d, err);
    if (rc == 0) {
        *chain_seq = natsMsg_GetSequence(m);
        *covered = d.last_seq;
        *epoch = d.epoch;
    }
    natsMsg_Destroy(m);
    return rc;
}

static int part_open(struct jrole *r, struct part *pt, int64_t epoch, char *err)
{
    char dir[600], subject[32];
    snprintf(dir, sizeof dir, "%s/p%u", r->o->data_dir, pt->p);
    int64_t tail_epoch;
    int rc = fs_mkdirs(dir, err);
    if (rc == 0)
        rc = chain_tail(r, pt->p, &pt->chain_seq, &pt->published_seq,
                        &tail_epoch, err);
    if (rc == 0 && tail_epoch > epoch)
        rc = ctrd_fail(err, CTRD_EAGAIN,
                       "partition %u: epoch %" PRId64 " already published",
                       pt->p, tail_epoch);
    if (rc == 0)
        rc = terms_open(dir, 0, &pt->terms, err);
    if (rc == 0)
        rc = qs_open(dir, 1, INT64_MIN, &pt->qs, err);
    if (rc == 0)
        rc = joiner_create(0, pt->qs, pt->terms, &r->o->join, &pt->joiner);
    if (rc == 0)
        rc = cm_create(&pt->out);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = CLUSTER_STREAM_IN;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    snprintf(subject, sizeof subject, "ctrd.in.%u", pt->p);
    jsErrCode jerr = 0;
    if (rc == 0 &&
        js_SubscribeSync(&pt->sub, r->js, subject, NULL, &so, &jerr) != NATS_OK)
        rc = ctrd_fail(err, CTRD_EAGAIN, "subscribing to %s (error %d)",
                       subject, (int)jerr);
    pt->epoch = epoch;
    pt->as_of_ms = -1;
    if (rc != 0)
        part_close(pt);
    return rc;
}

/* ---- joining a message ---- */

static int emit(void *ctx, const struct count_delta *d)
{
    struct part *pt = ctx;
    if (!pt->emitting)
        return 0; /* replaying what the chain already covers */
    uint32_t term_len;
    terms_get(pt->terms, d->term_id, &term_len);
    pt->out_bytes += CLUSTER_DELTA_ENTRY + term_len;
    return cm_add(pt->out, d->ad_id, d->term_id, d->minute, !d->is_click,
                  d->is_click != 0, NULL);
}

static void reject(void *ctx, enum rec_reason reason, struct join_src src)
{
    (void)ctx, (void)reason, (void)src;
}

static int apply_line(struct part *pt, enum engine_kind kind,
                      enum rec_format fmt, const char *line, size_t len,
                      const struct join_sink *sink)
{
    if (kind == ENGINE_QUERIES) {
        struct rec_query q;
        if (rec_parse_query(fmt, line, len, &q) != REC_OK)
            return 0; /* the front end checked it: only a bug gets here */
        if (q.time_ms > pt->as_of_ms)
            pt->as_of_ms = q.time_ms;
        return joiner_add_query(pt->joiner, &q, (struct join_src){0, 0}, sink);
    }
    struct rec_click c;
    if (rec_parse_click(fmt, line, len, &c) != REC_OK)
        return 0;
    return joiner_add_click(pt->joiner, &c, (struct join_src){0, 0},
                            pt->watermark_ms, sink);
}

/* Applies one input message (stream sequence seq, stored at time_ms). */
static int apply_message(struct jrole *r, struct part *pt, natsMsg *m,
                         uint64_t seq, int64_t time_ms)
{
    char err[CTRD_ERR_LEN];
    struct cluster_in in;
    int rc = cluster_in_open(natsMsg_GetData(m),
                             (size_t)natsMsg_GetDataLength(m), &in, err);
    if (rc == 0 && in.partition != pt->p)
        rc = ctrd_fail(err, CTRD_ECORRUPT, "message for partition %u",
                       in.partition);
    if (rc != 0) {
        fprintf(stderr,
                "ctrd joiner: %s %s sequence %" PRIu64 ": %s; partition %u "
                "stops here (nothing after it is counted)\n",
                CLUSTER_STREAM_IN, natsMsg_GetSubject(m), seq, err, pt->p);
        metric_add(r->m_damaged, 1);
        pt->failed = 1;
        return 0;
    }
    if (time_ms > pt->watermark_ms)
        pt->watermark_ms = time_ms;
    joiner_expire(pt->joiner, pt->watermark_ms);
    pt->emitting = seq > pt->published_seq;
    struct join_sink sink = {pt, emit, reject};
    for (size_t at = 0; at < in.len && rc == 0;) {
        const char *nl = memchr(in.lines + at, '\n', in.len - at);
        rc = apply_line(pt, in.kind, in.fmt, in.lines + at,
                        (size_t)(nl - in.lines) - at, &sink);
        at = (size_t)(nl - in.lines) + 1;
    }
    pt->applied_seq = seq;
    if (pt->emitting) {
        if (!pt->out_first)
            pt->out_first = seq;
        pt->out_last = seq;
    } else {
        metric_add(r->m_replayed, 1);
    }
    metric_add(r->m_inputs, 1);
    return rc;
}

/* ---- publishing a delta ---- */

struct encode {
    FILE *f;
    const struct part *pt;
    uint64_t ad_id;
    uint32_t n;
    int rc;
};

static void encode_bucket(void *ctx, const struct cm_bucket *b)
{
    struct encode *e = ctx;
    uint32_t len;
    const char *term = terms_get(e->pt->terms, b->term_id, &len);
    struct cluster_delta_entry d = {
        e->ad_id,      b->minute, (uint32_t)b->impressions, (uint32_t)b->clicks,
        (uint16_t)len, term};
    if (e->rc == 0)
        e->rc = cluster_delta_put(e->f, &d);
    e->n++;
}

/* The delta message of what pt counted since its last publish. */
static int encode_delta(const struct part *pt, char **buf, size_t *len)
{
    struct encode e = {.f = open_memstream(buf, len), .pt = pt};
    if (!e.f)
        return CTRD_ENOMEM;
    static const char header[CLUSTER_DELTA_HEADER];
    fwrite(header, 1, sizeof header, e.f);
    uint64_t *ads = NULL;
    size_t n = 0;
    e.rc = cm_ads(pt->out, &ads, &n);
    for (size_t i = 0; i < n; i++) {
        e.ad_id = ads[i];
        cm_ad_scan(pt->out, ads[i], 0, UINT32_MAX, CM_MINUTE, encode_bucket, &e,
                   NULL); /* no spill file: cannot fail */
    }
    free(ads);
    if (fclose(e.f) != 0 && e.rc == 0)
        e.rc = CTRD_ENOMEM;
    if (e.rc != 0) {
        free(*buf);
        return e.rc;
    }
    struct cluster_delta d = {
        pt->p,        e.n,          pt->epoch, pt->out_first,
        pt->out_last, pt->as_of_ms, NULL,      0};
    cluster_delta_seal(*buf, *len, &d);
    return 0;
}

enum publish_result { PUBLISHED, RETRY, FENCED, REOPEN, TOO_BIG };

/* After "wrong last sequence": who extended the chain? */
static enum publish_result chain_moved(struct jrole *r, struct part *pt)
{
    char err[CTRD_ERR_LEN];
    uint64_t chain_seq, covered;
    int64_t epoch;
    if (chain_tail(r, pt->p, &chain_seq, &covered, &epoch, err) != 0)
        return RETRY;
    if (epoch > pt->epoch)
        return FENCED;
    if (epoch == pt->epoch && covered == pt->out_last) {
        pt->chain_seq = chain_seq; /* our own earlier try landed */
        return PUBLISHED;
    }
    return REOPEN;
}

static enum publish_result publish_once(struct jrole *r, struct part *pt,
                                        const char *buf, size_t len)
{
    char subject[32], id[96];
    snprintf(subject, sizeof subject, "ctrd.d.%u", pt->p);
    snprintf(id, sizeof id, "d.%u.%" PRId64 ".%" PRIu64 ".%" PRIu64, pt->p,
             pt->epoch, pt->out_first, pt->out_last);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    po.MsgId = id;
    if (pt->chain_seq)
        po.ExpectLastSubjectSeq = pt->chain_seq;
    else
        po.ExpectNoMessage = true;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(&ack, r->js, subject, buf, (int)len, &po, &jerr);
    if (s == NATS_OK) {
        pt->chain_seq = ack->Sequence;
        jsPubAck_Destroy(ack);
        return PUBLISHED;
    }
    if (jerr == JSStreamWrongLastSequenceErr)
        return chain_moved(r, pt);
    return s == NATS_MAX_PAYLOAD ? TOO_BIG : RETRY;
}

/* Publishes what pt counted since its last publish: PUBLISHED, or FENCED
 * (a newer owner published), or REOPEN (the chain moved under it: replay
 * from scratch). Retries while it still owns the partition. */
static enum publish_result publish(struct jrole *r, struct part *pt)
{
    char *buf;
    size_t len;
    if (encode_delta(pt, &buf, &len) != 0)
        return REOPEN;
    enum publish_result res;
    int64_t backoff_ms = 50;
    while ((res = publish_once(r, pt, buf, len)) == RETRY) {
        metric_add(r->m_retries, 1);
        pthread_mutex_lock(&r->mu);
        int owned = r->want[pt->p] == pt->epoch && !r->stopping;
        pthread_mutex_unlock(&r->mu);
        if (!owned)
            break;
        usleep((useconds_t)backoff_ms * 1000);
        backoff_ms = backoff_ms < 1000 ? backoff_ms * 2 : 1000;
    }
    free(buf);
    if (res == PUBLISHED) {
        metric_add(r->m_deltas, 1);
        pt->published_seq = pt->out_last;
        pt->out_first = pt->out_last = 0;
        pt->out_bytes = 0;
        cm_free(pt->out);
        pt->out = NULL;
        if (cm_create(&pt->out) != 0)
            res = REOPEN;
    }
    return res;
}

/* Applies the input messages waiting for pt (up to STEP_MESSAGES) and
 * publishes their delta. The number of messages applied, or -1 when the
 * partition must be closed (fenced, or replayed from scratch). */
static int part_step(struct jrole *r, struct part *pt)
{
    int n = 0;
    if (pt->failed) /* stopped and said why; nothing after it counts */
        return 0;
    while (!pt->failed && n < STEP_MESSAGES &&
           pt->out_bytes < CLUSTER_DELTA_BOUND) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, pt->sub, 0) != NATS_OK)
            break;
        struct cluster_meta meta;
        int rc = 0;
        if (cluster_msg_meta(m, &meta) == 0 && meta.seq > pt->applied_seq) {
            rc = apply_message(r, pt, m, meta.seq, meta.time_ms);
            pt->pending = meta.pending;
        }
        natsMsg_Destroy(m);
        if (rc != 0)
            return -1;
        n++;
    }
    pthread_mutex_lock(&r->mu);
    r->lag[pt->p] = pt->pending;
    pthread_mutex_unlock(&r->mu);
    if (pt->out_last <= pt->published_seq)
        return n;
    enum publish_result res = publish(r, pt);
    if (res == FENCED) {
        metric_add(r->m_fenced, 1);
        fprintf(stderr,
                "ctrd joiner: partition %u: a newer owner published; "
                "epoch %" PRId64 " is fenced out\n",
                pt->p, pt->epoch);
        pthread_mutex_lock(&r->mu);
        r->fenced[pt->p] = 1;
        pthread_mutex_unlock(&r->mu);
    }
    if (res == TOO_BIG) {
        fprintf(stderr,
                "ctrd joiner: partition %u: a delta of input %" PRIu64
                "..%" PRIu64 " is over the NATS server's max_payload (the "
                "bound is %u bytes); the partition stops here\n",
                pt->p, pt->out_first, pt->out_last, 2 * CLUSTER_DELTA_BOUND);
        pt->failed = 1;
        return 0;
    }
    return res == PUBLISHED ? n : -1;
}

/* ---- the worker thread ---- */

/* Closes a partition's state and tells control it holds it no more. */
static void part_drop(struct jrole *r, struct part *pt)
{
    unsigned p = pt->p;
    part_close(pt);
    pthread_mutex_lock(&r->mu);
    r->have[p] = 0;
    r->lag[p] = 0;
    pthread_mutex_unlock(&r->mu);
}

/* Opens and closes states to match what control says is owned. */
static void adopt_ownership(struct jrole *r)
{
    unsigned np = r->o->cluster->partitions;
    for (unsigned p = 0; p < np; p++) {
        pthread_mutex_lock(&r->mu);
        int64_t want = r->fenced[p] ? 0 : r->want[p];
        pthread_mutex_unlock(&r->mu);
        struct part *pt = &r->parts[p];
        if (pt->epoch == want || (want && clock_mono_ms() < r->retry_at[p]))
            continue;
        if (pt->epoch)
            part_drop(r, pt);
        char err[CTRD_ERR_LEN];
        if (want && part_open(r, pt, want, err) != 0) {
            if (strcmp(err, r->open_error) != 0)
                fprintf(stderr, "ctrd joiner: %s (retrying each second)\n",
                        err);
            snprintf(r->open_error, sizeof r->open_error, "%s", err);
            r->retry_at[p] = clock_mono_ms() + OPEN_RETRY_MS;
        } else if (want) {
            metric_add(r->m_takeovers, 1);
            pthread_mutex_lock(&r->mu);
            r->have[p] = pt->epoch;
            pthread_mutex_unlock(&r->mu);
        }
    }
}

static void *worker_main(void *arg)
{
    struct jrole *r = arg;
    while (!stopping(r)) {
        adopt_ownership(r);
        int busy = 0;
        for (unsigned p = 0; p < r->o->cluster->partitions; p++) {
            struct part *pt = &r->parts[p];
            if (!pt->epoch)
                continue;
            int n = part_step(r, pt);
            if (n < 0)
                part_drop(r, pt); /* reopened by adopt_ownership if owned */
            busy |= n != 0;
        }
        if (!busy)
            usleep(IDLE_SLEEP_US);
    }
    for (unsigned p = 0; p < r->o->cluster->partitions; p++)
        if (r->parts[p].epoch)
            part_drop(r, &r->parts[p]);
    return NULL;
}

/* ---- the control thread: lease, members, ownership ---- */

struct view {
    char (*members)[64];
    size_t n_members;
    char (*owner)[64];  /* [partitions]; "" when unowned */
    int64_t *owner_rev; /* create revision of the owner key */
    int64_t *owner_lease;
    unsigned partitions;
};

static int add_member(void *ctx, const struct etcd_kv *kv)
{
    struct view *v = ctx;
    size_t plen = strlen(MEMBERS_PREFIX);
    if (kv->key_len - plen >= 64 || v->n_members == 64)
        return 0;
    memcpy(v->members[v->n_members], kv->key + plen, kv->key_len - plen);
    v->members[v->n_members++][kv->key_len - plen] = '\0';
    return 0;
}

/* Owner keys hold the owner's name as their whole value. */
static int add_owner(void *ctx, const struct etcd_kv *kv)
{
    struct view *v = ctx;
    size_t plen = strlen(OWN_PREFIX);
    uint64_t p;
    if (rec_parse_id(kv->key + plen, kv->key_len - plen, &p) != 0 ||
        p >= v->partitions || kv->value_len >= 64)
        return 0; /* not an owner key of ours */
    memcpy(v->owner[p], kv->value, kv->value_len);
    v->owner[p][kv->value_len] = '\0';
    v->owner_rev[p] = kv->create_revision;
    v->owner_lease[p] = kv->lease;
    return 0;
}

/* The member that should own p: the highest rendezvous score. */
static const char *target(const struct view *v, unsigned p)
{
    const char *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < v->n_members; i++) {
        uint64_t score =
            hash_u64(hash_bytes(v->members[i], strlen(v->members[i])) ^ p);
        if (!best || score > best_score) {
            best = v->members[i];
            best_score = score;
        }
    }
    return best;
}

struct control {
    struct jrole *r;
    struct etcd *etcd;
    int64_t lease, last_keepalive_ms, last_ok_ms;
    int64_t *releasing; /* epoch of a partition being handed over */
};

static void drop_all(struct control *c, const char *why)
{
    fprintf(stderr, "ctrd joiner: %s: dropping every partition\n", why);
    metric_add(c->r->m_lease_lost, 1);
    pthread_mutex_lock(&c->r->mu);
    for (unsigned p = 0; p < c->r->o->cluster->partitions; p++)
        c->r->want[p] = 0;
    pthread_mutex_unlock(&c->r->mu);
    memset(c->releasing, 0,
           c->r->o->cluster->partitions * sizeof *c->releasing);
    c->lease = 0;
    pthread_mutex_lock(&c->r->mu);
    c->r->ready = 0; /* until a lease is held again */
    pthread_mutex_unlock(&c->r->mu);
}

/* Keeps the lease (and the member key on it) alive: 0 while it lives. */
static int keep_lease(struct control *c, char *err)
{
    int64_t now = clock_mono_ms();
    int64_t ttl_ms = c->r->o->cluster->lease_ttl_ms;
    if (c->lease && now - c->last_ok_ms > ttl_ms - 1000) {
        drop_all(c, "no lease keepalive answered in time");
        return CTRD_EAGAIN;
    }
    if (c->lease && now - c->last_keepalive_ms < KEEPALIVE_EVERY_MS)
        return 0;
    c->last_keepalive_ms = now;
    int64_t ttl;
    if (c->lease) {
        int rc = etcd_lease_keepalive(c->etcd, c->lease, &ttl, err);
        if (rc == CTRD_ENOTFOUND)
            drop_all(c, "the lease expired");
        if (rc == 0)
            c->last_ok_ms = now;
        return rc;
    }
    int rc = etcd_lease_grant(c->etcd, (ttl_ms + 999) / 1000, &c->lease, err);
    char key[128];
    snprintf(key, sizeof key, MEMBERS_PREFIX "%s", c->r->o->name);
    if (rc == 0)
        rc = etcd_put(c->etcd, key, c->r->o->name, strlen(c->r->o->name),
                      c->lease, err);
    if (rc == 0)
        c->last_ok_ms = now;
    else
        c->lease = 0;
    return rc;
}

static void own_key(char *key, size_t size, unsigned p)
{
    snprintf(key, size, OWN_PREFIX "%u", p);
}

/* One partition: take it, keep it, or hand it over. */
static void reconcile(struct control *c, const struct view *v, unsigned p)
{
    struct jrole *r = c->r;
    const char *me = r->o->name, *should = target(v, p);
    char key[64], err[CTRD_ERR_LEN];
    own_key(key, sizeof key, p);
    pthread_mutex_lock(&r->mu);
    int64_t want = r->want[p], have = r->have[p];
    int fenced = r->fenced[p];
    pthread_mutex_unlock(&r->mu);
    int mine = strcmp(v->owner[p], me) == 0;
    int64_t set = want;
    if (want && (!mine || v->owner_rev[p] != want || fenced)) {
        set = 0; /* lost: expired, or fenced by a newer owner */
    } else if (want && should && strcmp(should, me) != 0) {
        set = 0; /* hand over: close, then delete the key */
        c->releasing[p] = want;
    } else if (c->releasing[p] && !have) {
        if (etcd_delete_if(c->etcd, key, c->releasing[p], err) >= 0)
            c->releasing[p] = 0; /* else: tried again next tick */
    } else if (!want && !c->releasing[p] && mine &&
               v->owner_lease[p] == c->lease) {
        set = v->owner_rev[p]; /* a create whose answer was lost */
    } else if (!want && !c->releasing[p] && !v->owner[p][0] && should &&
               strcmp(should, me) == 0) {
        int64_t rev;
        if (etcd_create(c->etcd, key, me, strlen(me), c->lease, &rev, err) == 0)
            set = rev;
    }
    pthread_mutex_lock(&r->mu);
    r->want[p] = set;
    if (!set)
        r->fenced[p] = 0;
    pthread_mutex_unlock(&r->mu);
}

static int control_tick(struct control *c, struct view *v, char *err)
{
    int rc = keep_lease(c, err);
    v->n_members = 0;
    for (unsigned p = 0; p < v->partitions; p++)
        v->owner[p][0] = '\0';
    if (rc == 0)
        rc = etcd_range_prefix(c->etcd, MEMBERS_PREFIX, add_member, v, err);
    if (rc == 0)
        rc = etcd_range_prefix(c->etcd, OWN_PREFIX, add_owner, v, err);
    for (unsigned p = 0; p < v->partitions && rc == 0 && c->lease; p++)
        reconcile(c, v, p);
    if (rc == 0 && c->lease) {
        pthread_mutex_lock(&c->r->mu);
        c->r->ready = 1;
        pthread_mutex_unlock(&c->r->mu);
    }
    return rc;
}

static void *control_main(void *arg)
{
    struct control *c = arg;
    unsigned np = c->r->o->cluster->partitions;
    struct view v = {.members = calloc(64, sizeof *v.members),
                     .owner = calloc(np, sizeof *v.owner),
                     .owner_rev = calloc(np, sizeof *v.owner_rev),
                     .owner_lease = calloc(np, sizeof *v.owner_lease),
                     .partitions = np};
    char err[CTRD_ERR_LEN], last[CTRD_ERR_LEN] = "";
    while (v.members && v.owner && v.owner_rev && v.owner_lease &&
           !stopping(c->r)) {
        if (control_tick(c, &v, err) != 0 && strcmp(err, last) != 0) {
            fprintf(stderr, "ctrd joiner: etcd: %s (retrying)\n", err);
            strcpy(last, err);
        }
        usleep(CONTROL_TICK_MS * 1000);
    }
    if (c->lease) /* hand everything over at once */
        etcd_lease_revoke(c->etcd, c->lease, err);
    free(v.members);
    free(v.owner);
    free(v.owner_rev);
    free(v.owner_lease);
    return NULL;
}

/* ---- HTTP: /metrics, /healthz, /readyz ---- */

static void handle(void *ctx, struct http_exchange *x)
{
    struct jrole *r = ctx;
    const char *path = http_path(x);
    if (strcmp(path, "/metrics") == 0) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (f) {
            metrics_write(r->metrics, f);
            fclose(f);
        }
        http_respond(x, buf ? 200 : 500, "text/plain; version=0.0.4", buf,
                     buf ? len : 0);
        free(buf);
        return;
    }
    pthread_mutex_lock(&r->mu);
    int ready = r->ready;
    pthread_mutex_unlock(&r->mu);
    if (strcmp(path, "/healthz") == 0 || (ready && !strcmp(path, "/readyz")))
        http_respond(x, 200, "application/json", "{\"ok\":true}\n", 12);
    else if (strcmp(path, "/readyz") == 0)
        http_respond(x, 503, "application/json", "{\"ok\":false}\n", 13);
    else
        http_respond(x, 404, "application/json", "{\"error\":\"not found\"}\n",
                     22);
}

static double gauge_owned(void *arg)
{
    struct jrole *r = arg;
    unsigned n = 0;
    pthread_mutex_lock(&r->mu);
    for (unsigned p = 0; p < r->o->cluster->partitions; p++)
        n += r->have[p] != 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static double gauge_lag(void *arg)
{
    struct jrole *r = arg;
    double n = 0;
    pthread_mutex_lock(&r->mu);
    for (unsigned p = 0; p < r->o->cluster->partitions; p++)
        n += (double)r->lag[p];
    pthread_mutex_unlock(&r->mu);
    return n;
}

static int create_metrics(struct jrole *r)
{
    struct metrics *m = r->metrics = metrics_create();
    if (!m)
        return CTRD_ENOMEM;
    const struct metrics_counter_def counters[] = {
        {&r->m_inputs, "ctrd_input_messages_total",
         "CTRD_IN messages applied (replays included)."},
        {&r->m_replayed, "ctrd_input_replayed_total",
         "CTRD_IN messages replayed after a takeover (no delta published)."},
        {&r->m_deltas, "ctrd_deltas_published_total",
         "CTRD_DELTA messages published."},
        {&r->m_retries, "ctrd_publish_retries_total",
         "Delta publishes retried (no answer, no stream leader)."},
        {&r->m_fenced, "ctrd_fenced_writes_total",
         "Deltas refused because a newer owner of the partition "
         "published."},
        {&r->m_takeovers, "ctrd_partition_takeovers_total",
         "Partitions this joiner started to own."},
        {&r->m_damaged, "ctrd_damaged_messages_total",
         "Input messages with a bad header or checksum (the partition "
         "stops)."},
        {&r->m_lease_lost, "ctrd_lease_losses_total",
         "Times this joiner lost its lease and dropped its partitions."},
    };
    int rc =
        metrics_counters(m, counters, sizeof counters / sizeof counters[0]);
    if (rc != 0)
        return rc;
    return metrics_gauge_fn(m, "ctrd_partitions_owned",
                            "Partitions whose state this joiner holds.", NULL,
                            gauge_owned, r) &&
                   metrics_gauge_fn(m, "ctrd_input_lag_messages",
                                    "CTRD_IN messages of the owned partitions "
                                    "not applied yet (as the stream last "
                                    "said).",
                                    NULL, gauge_lag, r)
               ? 0
               : CTRD_ENOMEM;
}

/* ---- the role ---- */

static int jrole_init(struct jrole *r, const struct cluster_joiner_opts *o,
                      char *err)
{
    unsigned np = o->cluster->partitions;
    r->o = o;
    pthread_mutex_init(&r->mu, NULL);
    r->parts = calloc(np, sizeof *r->parts);
    r->retry_at = calloc(np, sizeof *r->retry_at);
    r->want = calloc(np, sizeof *r->want);
    r->have = calloc(np, sizeof *r->have);
    r->fenced = calloc(np, sizeof *r->fenced);
    r->lag = calloc(np, sizeof *r->lag);
    if (!r->parts || !r->retry_at || !r->want || !r->have || !r->fenced ||
        !r->lag || create_metrics(r) != 0)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    for (unsigned p = 0; p < np; p++)
        r->parts[p].p = p;
    int rc = fs_mkdirs(o->data_dir, err);
    if (rc == 0)
        rc = cluster_connect(o->cluster, o->name, &r->nc, &r->js, err);
    return rc;
}

static void jrole_free(struct jrole *r)
{
    cluster_disconnect(r->nc, r->js);
    metrics_free(r->metrics);
    free(r->parts);
    free(r->retry_at);
    free(r->want);
    free(r->have);
    free(r->fenced);
    free(r->lag);
    pthread_mutex_destroy(&r->mu);
}

static int run_threads(struct jrole *r, struct control *c,
                       struct http_server *http)
{
    pthread_t worker, control;
    int w = pthread_create(&worker, NULL, worker_main, r) == 0;
    int k = w && pthread_create(&control, NULL, control_main, c) == 0;
    if (k)
        http_server_run_until_signal(http, 1000);
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_mutex_unlock(&r->mu);
    if (k)
        pthread_join(control, NULL);
    if (w)
        pthread_join(worker, NULL);
    return k ? 0 : CTRD_EIO;
}

int cluster_joiner_run(const struct cluster_joiner_opts *o)
{
    struct jrole r = {0};
    char err[CTRD_ERR_LEN];
    struct control c = {.r = &r};
    struct http_server *http = NULL;
    struct http_config hc = o->http;
    hc.handler = handle;
    hc.ctx = &r;
    int rc = jrole_init(&r, o, err);
    c.releasing = calloc(o->cluster->partitions, sizeof *c.releasing);
    if (rc == 0 && !c.releasing)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    const char *endpoints[CLUSTER_MAX_ENDPOINTS];
    for (size_t i = 0; i < o->cluster->n_etcd; i++)
        endpoints[i] = o->cluster->etcd[i];
    if (rc == 0)
        rc = etcd_open(endpoints, o->cluster->n_etcd, ETCD_TIMEOUT_MS, &c.etcd,
                       err);
    hc.metrics = r.metrics;
    if (rc == 0)
        rc = http_server_create(&hc, &http, err);
    if (rc == 0) {
        fprintf(stderr,
                "ctrd serve: joiner %s listening on %s (port %d), %u "
                "partitions\n",
                o->name, hc.listen, http_server_port(http),
                o->cluster->partitions);
        rc = run_threads(&r, &c, http);
        if (rc != 0)
            snprintf(err, sizeof err, "cannot start threads");
    }
    if (rc != 0)
        fprintf(stderr, "ctrd serve: %s\n", err);
    else
        fprintf(stderr, "ctrd serve: stopped cleanly\n");
    http_server_free(http);
    etcd_close(c.etcd);
    free(c.releasing);
    jrole_free(&r);
    return rc == 0 ? 0 : 1;
}
