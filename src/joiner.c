/* joiner: the LogJoiner; see joiner.h.
 *
 * DESIGN. Waiting clicks sit in a vector in arrival order (so expiry pops
 * from the front) and are chained per query_id through an open-addressing
 * index (query_id -> first waiting click), so a query's arrival finds its
 * clicks without a scan. Joined or expired clicks become dead slots; the
 * vector is compacted, and the index rebuilt, when more than half is dead.
 *
 * The index is its own table, not table.h: it sits on the per-record
 * ingest path (every click and every query probes it), its slots are 4
 * bytes (a waiting slot + 1; the key is read from the click itself) and
 * it is rebuilt with the vector it indexes. Its slot hash is seeded
 * (hash_slot_u64): query ids come from the input. */
#include "joiner.h"

#include "hash.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

struct waiting {
    struct pending_click click;
    uint32_t next; /* next waiting click of the same query_id, or NONE */
    uint32_t live;
};

struct joiner {
    unsigned worker;
    struct qs *qs;
    struct terms *terms;
    struct joiner_config cfg;
    struct join_stats stats;
    struct waiting *wait;
    uint32_t n_wait, cap_wait, head, live;
    uint32_t *index; /* waiting slot + 1 of the chain head; 0 = empty */
    uint32_t index_cap, index_used;
};

int joiner_create(unsigned worker, struct qs *qs, struct terms *terms,
                  const struct joiner_config *cfg, struct joiner **out)
{
    struct joiner *j = calloc(1, sizeof *j);
    if (!j)
        return CTRD_ENOMEM;
    j->worker = worker;
    j->qs = qs;
    j->terms = terms;
    j->cfg = *cfg;
    *out = j;
    return 0;
}

void joiner_free(struct joiner *j)
{
    if (!j)
        return;
    free(j->wait);
    free(j->index);
    free(j);
}

/* ---- the index of waiting clicks ---- */

static uint32_t index_slot(const struct joiner *j, uint64_t query_id)
{
    uint32_t mask = j->index_cap - 1;
    uint32_t k = (uint32_t)hash_slot_u64(query_id) & mask;
    while (j->index[k] && j->wait[j->index[k] - 1].click.query_id != query_id)
        k = (k + 1) & mask;
    return k;
}

/* Links waiting slot i at the end of its query_id's chain. */
static void chain_append(struct joiner *j, uint32_t i)
{
    uint32_t k = index_slot(j, j->wait[i].click.query_id);
    j->wait[i].next = NONE;
    if (!j->index[k]) {
        j->index[k] = i + 1;
        j->index_used++;
        return;
    }
    uint32_t t = j->index[k] - 1;
    while (j->wait[t].next != NONE)
        t = j->wait[t].next;
    j->wait[t].next = i;
}

/* Rebuilds vector and index from the live clicks, in arrival order, with
 * index room for extra more. Changes nothing when memory runs out. */
static int rebuild(struct joiner *j, uint32_t extra)
{
    uint32_t cap = 64;
    while (cap < 2 * (j->live + extra))
        cap *= 2;
    uint32_t *index = calloc(cap, sizeof *index);
    if (!index)
        return CTRD_ENOMEM;
    free(j->index);
    j->index = index;
    j->index_cap = cap;
    j->index_used = 0;
    uint32_t n = 0;
    for (uint32_t i = j->head; i < j->n_wait; i++) {
        if (j->wait[i].live)
            j->wait[n++] = j->wait[i];
    }
    j->n_wait = n;
    j->head = 0;
    for (uint32_t i = 0; i < n; i++)
        chain_append(j, i);
    return 0;
}

static int wait_add(struct joiner *j, const struct pending_click *p)
{
    if (j->n_wait == j->cap_wait) {
        uint32_t cap = j->cap_wait ? j->cap_wait * 2 : 256;
        struct waiting *w = realloc(j->wait, cap * sizeof *w);
        if (!w)
            return CTRD_ENOMEM;
        j->wait = w;
        j->cap_wait = cap;
    }
    if ((j->index_used + 1) * 2 > j->index_cap && rebuild(j, 1) != 0)
        return CTRD_ENOMEM;
    uint32_t i = j->n_wait++;
    j->wait[i] = (struct waiting){*p, NONE, 1};
    j->live++;
    chain_append(j, i);
    return 0;
}

/* ---- joining ---- */

static int ad_shown(const struct qs_query *q, uint64_t ad_id)
{
    for (uint32_t i = 0; i < q->n_ads; i++) {
        if (q->ads[i] == ad_id)
            return 1;
    }
    return 0;
}

/* Judges one click against its query and sends the outcome to the sink. */
static int join_click(struct joiner *j, const struct qs_query *q,
                      uint64_t ad_id, int64_t click_ms, struct join_src src,
                      const struct join_sink *sink)
{
    enum rec_reason reason = REC_OK;
    if (!ad_shown(q, ad_id))
        reason = REC_CLICK_AD_NOT_SHOWN;
    else if (click_ms < q->time_ms - JOIN_EARLY_CLICK_MS ||
             click_ms > q->time_ms + j->cfg.join_window_ms)
        reason = REC_CLICK_OUTSIDE_WINDOW;
    if (reason != REC_OK) {
        j->stats.clicks_rejected++;
        sink->reject(sink->ctx, reason, src);
        return 0;
    }
    int first = qs_mark_clicked(j->qs, j->worker, q, ad_id);
    if (first < 0)
        return first;
    if (!first) {
        j->stats.clicks_duplicate++;
        return 0;
    }
    j->stats.clicks_joined++;
    struct count_delta d = {ad_id, q->term_id, (uint32_t)(q->time_ms / 60000),
                            1};
    return sink->emit(sink->ctx, &d);
}

/* Joins the clicks that waited for this query, in arrival order. */
static int join_waiting(struct joiner *j, const struct qs_query *q,
                        const struct join_sink *sink)
{
    if (!j->live)
        return 0;
    uint32_t k = index_slot(j, q->query_id);
    if (!j->index[k])
        return 0;
    int rc = 0;
    struct join_stats before = j->stats;
    for (uint32_t i = j->index[k] - 1; i != NONE; i = j->wait[i].next) {
        struct waiting *w = &j->wait[i];
        if (!w->live)
            continue;
        w->live = 0;
        j->live--;
        if (rc == 0)
            rc = join_click(j, q, w->click.ad_id, w->click.time_ms,
                            w->click.src, sink);
    }
    j->stats.late_joined += j->stats.clicks_joined - before.clicks_joined;
    j->stats.late_duplicate +=
        j->stats.clicks_duplicate - before.clicks_duplicate;
    j->stats.late_rejected += j->stats.clicks_rejected - before.clicks_rejected;
    /* Leave the chain in place (all dead): lookups stay correct, and the
     * next rebuild drops it. Compact when mostly dead. */
    if (j->n_wait - j->head > 1024 && j->live * 2 < j->n_wait - j->head)
        rc = rc ? rc : rebuild(j, 0);
    return rc;
}

int joiner_add_query(struct joiner *j, const struct rec_query *q,
                     struct join_src src, const struct join_sink *sink)
{
    struct qs_query stored;
    if (qs_too_old(j->qs, q->time_ms)) {
        j->stats.queries_rejected++;
        sink->reject(sink->ctx, REC_QUERY_TOO_OLD, src);
        return 0;
    }
    if (qs_get(j->qs, j->worker, q->query_id, &stored) == 0) {
        j->stats.queries_duplicate++;
        return 0;
    }
    uint32_t term_id;
    int rc = terms_intern(j->terms, q->term, q->term_len, &term_id);
    if (rc == 0)
        rc = qs_put(j->qs, j->worker, q, term_id);
    if (rc != 0)
        return rc;
    j->stats.queries_accepted++;
    uint32_t minute = (uint32_t)(q->time_ms / 60000);
    for (uint32_t i = 0; i < q->n_ads; i++) {
        struct count_delta d = {q->ads[i], term_id, minute, 0};
        rc = sink->emit(sink->ctx, &d);
        if (rc != 0)
            return rc;
    }
    struct qs_query view = {q->query_id, q->time_ms, term_id, q->n_ads, q->ads};
    return join_waiting(j, &view, sink);
}

int joiner_add_click(struct joiner *j, const struct rec_click *c,
                     struct join_src src, int64_t now_ms,
                     const struct join_sink *sink)
{
    struct qs_query q;
    if (qs_get(j->qs, j->worker, c->query_id, &q) == 0)
        return join_click(j, &q, c->ad_id, c->time_ms, src, sink);
    j->stats.clicks_deferred++;
    struct pending_click p = {c->query_id, c->ad_id, c->time_ms, now_ms, src};
    return wait_add(j, &p);
}

void joiner_prefetch(const struct joiner *j, uint64_t query_id)
{
    qs_prefetch(j->qs, j->worker, query_id);
}

int joiner_restore_pending(struct joiner *j, const struct pending_click *p)
{
    return wait_add(j, p);
}

void joiner_expire(struct joiner *j, int64_t now_ms)
{
    while (j->head < j->n_wait) {
        struct waiting *w = &j->wait[j->head];
        if (w->live) {
            if (now_ms - w->click.arrived_ms <= j->cfg.click_timeout_ms)
                break;
            w->live = 0;
            j->live--;
            j->stats.clicks_unjoined++;
        }
        j->head++;
    }
    if (j->head > 1024 && j->head * 2 > j->n_wait)
        rebuild(j, 0);
}

int joiner_foreach_pending(const struct joiner *j,
                           int (*fn)(void *ctx, const struct pending_click *p),
                           void *ctx)
{
    for (uint32_t i = j->head; i < j->n_wait; i++) {
        if (!j->wait[i].live)
            continue;
        int rc = fn(ctx, &j->wait[i].click);
        if (rc != 0)
            return rc;
    }
    return 0;
}

uint64_t joiner_pending_count(const struct joiner *j)
{
    return j->live;
}

const struct join_stats *joiner_stats(const struct joiner *j)
{
    return &j->stats;
}
