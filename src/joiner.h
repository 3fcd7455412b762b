/* joiner: the LogJoiner of the design, one per worker. Joins each click to
 * its query in the QueryStore, exactly once, and turns accepted queries and
 * clicks into count deltas for QueryMap/ClickMap.
 *
 * Owns the clicks waiting for their query ("pending"): a click whose query
 * has not arrived waits up to click_timeout of processing time, is joined
 * when the query arrives, and is dropped and counted as unjoined after.
 * Rules (SPEC §2): the first valid record of a query_id wins; a click is
 * valid when its ad was shown and query.time - 60 s <= click.time <=
 * query.time + join_window; the first valid click per (query_id, ad) counts,
 * at the minute of the query; later ones are duplicates.
 *
 * Threads: a joiner belongs to one worker and touches only that worker's
 * QueryStore memtable and the shared term dictionary.
 *
 * Errors: 0 or a negative CTRD_E* code (error.h), from memory or the
 * sink. A record that does not join is an outcome (a reason to the sink,
 * a count in join_stats), not an error. */
#ifndef CTRD_JOINER_H
#define CTRD_JOINER_H

#include <stdint.h>

#include "querystore.h"
#include "record.h"
#include "terms.h"

#define JOIN_EARLY_CLICK_MS INT64_C(60000)

/* Where a record came from, for reject reports: input number (as the
 * caller numbers its inputs) and line. */
struct join_src {
    uint32_t input;
    uint64_t line;
};

/* +1 impression or +1 click for (ad, term, minute of the query). */
struct count_delta {
    uint64_t ad_id;
    uint32_t term_id;
    uint32_t minute;
    uint32_t is_click;
};

/* Where the joiner's results go: called synchronously. */
struct join_sink {
    void *ctx;
    int (*emit)(void *ctx, const struct count_delta *d);
    void (*reject)(void *ctx, enum rec_reason reason, struct join_src src);
};

struct join_stats {
    uint64_t queries_accepted, queries_duplicate, queries_rejected;
    uint64_t clicks_joined, clicks_duplicate, clicks_rejected;
    uint64_t clicks_deferred; /* arrived before their query */
    uint64_t clicks_unjoined; /* dropped after click_timeout */
    /* Of the joined, duplicate and rejected clicks: those judged when
     * their query arrived after them (they were deferred first). */
    uint64_t late_joined, late_duplicate, late_rejected;
};

struct joiner_config {
    int64_t join_window_ms;
    int64_t click_timeout_ms;
};

/* A waiting click as persisted in checkpoints. */
struct pending_click {
    uint64_t query_id;
    uint64_t ad_id;
    int64_t time_ms;
    int64_t arrived_ms; /* processing time it started waiting */
    struct join_src src;
};

struct joiner;

int joiner_create(unsigned worker, struct qs *qs, struct terms *terms,
                  const struct joiner_config *cfg, struct joiner **out);
void joiner_free(struct joiner *j);

/* 0, or a negative code when the sink or memory failed. */
int joiner_add_query(struct joiner *j, const struct rec_query *q,
                     struct join_src src, const struct join_sink *sink);
int joiner_add_click(struct joiner *j, const struct rec_click *c,
                     struct join_src src, int64_t now_ms,
                     const struct join_sink *sink);

/* A hint, no effect on the outcome: starts loading what the next
 * joiner_add_query()/joiner_add_click() of query_id probes first (the
 * worker's memtable slot), so a caller a few records ahead overlaps
 * their cache misses. */
void joiner_prefetch(const struct joiner *j, uint64_t query_id);

/* Restores a click that was waiting at the last checkpoint. */
int joiner_restore_pending(struct joiner *j, const struct pending_click *p);

/* Drops the clicks that waited longer than click_timeout at now_ms. */
void joiner_expire(struct joiner *j, int64_t now_ms);

/* Calls fn for every waiting click, oldest first. */
int joiner_foreach_pending(const struct joiner *j,
                           int (*fn)(void *ctx, const struct pending_click *p),
                           void *ctx);

uint64_t joiner_pending_count(const struct joiner *j);
const struct join_stats *joiner_stats(const struct joiner *j);

#endif
