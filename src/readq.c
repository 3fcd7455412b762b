/* readq: Controlled Delay + adaptive LIFO admission queue; see readq.h. */
#include "readq.h"

#include "error.h"

#include <stdlib.h>

struct slot {
    void *item;
    uint64_t queued_ns;
};

struct readq {
    struct slot *ring;
    size_t cap, head, len; /* items ring[head .. head + len) mod cap */
    /* The drain rate: reads handed out to be served since window_ns, and
     * in the window before (span_before ns; 0 when it tells nothing). */
    uint64_t window_ns, served, served_before, span_before;
    int above;         /* holds more than the target's worth of reads */
    uint64_t since_ns; /* ... and has since then (or has not, since then) */
    int standing;      /* above for a whole interval, until not for one */
};

int readq_create(size_t capacity, struct readq **out)
{
    struct readq *q = calloc(1, sizeof *q);
    if (!q || !(q->ring = calloc(capacity, sizeof *q->ring))) {
        free(q);
        return CTRD_ENOMEM;
    }
    q->cap = capacity;
    *out = q;
    return 0;
}

void readq_free(struct readq *q)
{
    if (!q)
        return;
    free(q->ring);
    free(q);
}

/* Rolls the drain-rate window, then takes note of whether the queue holds
 * more reads than it hands out in READQ_STANDING_NS (READQ_TARGET_NS once
 * standing), at the rate of this window and the one before. A state held
 * for a whole interval decides whether the queue is standing. Knowing no
 * rate yet is no overload. */
static void readq_observe(struct readq *q, uint64_t now_ns)
{
    uint64_t span = now_ns - q->window_ns;
    if (span >= READQ_INTERVAL_NS) {
        /* A window of an interval without a push or pop tells no rate:
         * the queue was idle, or its server stalled (no overload either). */
        int told = span < 2 * READQ_INTERVAL_NS;
        q->served_before = told ? q->served : 0;
        q->span_before = told ? span : 0;
        q->served = 0;
        q->window_ns = now_ns;
        span = 0;
    }
    uint64_t bound = q->standing ? READQ_TARGET_NS : READQ_STANDING_NS;
    int above = (uint64_t)q->len * (q->span_before + span) >
                (q->served_before + q->served) * bound;
    if (now_ns - q->since_ns >= READQ_INTERVAL_NS)
        q->standing = q->above; /* held until now */
    if (above != q->above) {
        q->above = above;
        q->since_ns = now_ns;
    }
}

int readq_push(struct readq *q, void *item, uint64_t now_ns)
{
    if (q->len == q->cap)
        return CTRD_EAGAIN;
    q->ring[(q->head + q->len++) % q->cap] = (struct slot){item, now_ns};
    readq_observe(q, now_ns);
    return 0;
}

void *readq_pop(struct readq *q, uint64_t now_ns, int *expired)
{
    readq_observe(q, now_ns);
    if (q->len == 0)
        return NULL;
    struct slot oldest = q->ring[q->head], next;
    uint64_t allowed = q->standing ? READQ_TARGET_NS : READQ_WAIT_MAX_NS;
    *expired = now_ns - oldest.queued_ns > allowed;
    q->len--;
    if (*expired || !q->standing) {
        next = oldest;
        q->head = (q->head + 1) % q->cap;
    } else {
        /* LIFO: the newest has the best chance, and waited less than the
         * oldest, so within the deadline too. */
        next = q->ring[(q->head + q->len) % q->cap];
    }
    q->served += !*expired;
    readq_observe(q, now_ns);
    return next.item;
}

size_t readq_len(const struct readq *q)
{
    return q->len;
}
