/* sse: live counts as Server-Sent Events; see sse.h.
 *
 * Each subscription remembers the totals it last sent per ad; a tick
 * compares them with the current all-time totals (read from the day
 * rollups, so a tick costs a few group reads per ad) and sends what
 * changed. */
#include "sse.h"

#include "adview.h"
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct watched {
    uint64_t ad_id, impressions, clicks;
};

struct subscription {
    struct subscription *next;
    struct http_exchange *x;
    struct watched *ads;
    size_t n;
    int64_t quiet_ms; /* since the last bytes sent */
};

struct sse {
    struct engine *engine;
    struct subscription *subs;
    size_t count;
};

static int send_counts(struct subscription *sub, const struct watched *w,
                       int64_t as_of)
{
    char event[256];
    int n = snprintf(
        event, sizeof event,
        "event: counts\ndata: {\"ad_id\":\"%" PRIu64 "\",\"as_of\":%" PRId64
        ",\"impressions\":%" PRIu64 ",\"clicks\":%" PRIu64 ",\"ctr\":%.6f}\n\n",
        w->ad_id, as_of, w->impressions, w->clicks,
        w->impressions ? (double)w->clicks / (double)w->impressions : 0.0);
    sub->quiet_ms = 0;
    return http_stream_write(sub->x, event, (size_t)n);
}

/* Sends the ads whose totals changed (all of them when force is set).
 * Returns non-zero when the client is gone or too far behind. */
static int refresh(struct sse *s, struct subscription *sub, int force)
{
    int rc = 0;
    engine_read_lock(s->engine);
    int64_t as_of = engine_as_of_ms(s->engine);
    for (size_t i = 0; i < sub->n && rc == 0; i++) {
        struct watched *w = &sub->ads[i];
        uint64_t imps, clicks;
        if (adview_totals(engine_counts(s->engine), w->ad_id, INT64_MIN,
                          INT64_MAX, &imps, &clicks, NULL) != 0 ||
            (!force && imps == w->impressions && clicks == w->clicks))
            continue;
        w->impressions = imps;
        w->clicks = clicks;
        rc = send_counts(sub, w, as_of);
    }
    engine_read_unlock(s->engine);
    return rc;
}

static void drop(struct sse *s, struct subscription **link)
{
    struct subscription *sub = *link;
    *link = sub->next;
    http_stream_end(sub->x);
    free(sub->ads);
    free(sub);
    s->count--;
}

static void tick(void *arg)
{
    struct sse *s = arg;
    static const char heartbeat[] = ": heartbeat\n\n";
    for (struct subscription **link = &s->subs; *link;) {
        struct subscription *sub = *link;
        int rc = http_exchange_closed(sub->x) ? CTRD_EIO : refresh(s, sub, 0);
        sub->quiet_ms += SSE_TICK_MS;
        if (rc == 0 && sub->quiet_ms >= SSE_HEARTBEAT_MS) {
            sub->quiet_ms = 0;
            rc = http_stream_write(sub->x, heartbeat, sizeof heartbeat - 1);
        }
        if (rc != 0)
            drop(s, link);
        else
            link = &sub->next;
    }
}

int sse_create(struct http_server *http, struct engine *engine,
               struct sse **out)
{
    struct sse *s = calloc(1, sizeof *s);
    if (!s)
        return CTRD_ENOMEM;
    s->engine = engine;
    int rc = http_server_every(http, SSE_TICK_MS, tick, s);
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sse_free(struct sse *s)
{
    if (!s)
        return;
    while (s->subs)
        drop(s, &s->subs);
    free(s);
}

int sse_subscribe(struct sse *s, struct http_exchange *x, const uint64_t *ads,
                  size_t n)
{
    struct subscription *sub = calloc(1, sizeof *sub);
    struct watched *w = calloc(n ? n : 1, sizeof *w);
    if (!sub || !w) {
        free(sub);
        free(w);
        return CTRD_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        w[i].ad_id = ads[i];
    *sub = (struct subscription){s->subs, x, w, n, 0};
    s->subs = sub;
    s->count++;
    http_stream_start(x, "text/event-stream");
    if (refresh(s, sub, 1) != 0)
        drop(s, &s->subs);
    return 0;
}

size_t sse_count(const struct sse *s)
{
    return s->count;
}
