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
    uint64_t last_empty_ns;
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

int readq_push(struct readq *q, void *item, uint64_t now_ns)
{
    if (q->len == q->cap)
        return CTRD_EAGAIN;
    if (q->len == 0)
        q->last_empty_ns = now_ns;
    q->ring[(q->head + q->len++) % q->cap] = (struct slot){item, now_ns};
    return 0;
}

void *readq_pop(struct readq *q, uint64_t now_ns, int *expired)
{
    if (q->len == 0) {
        q->last_empty_ns = now_ns;
        return NULL;
    }
    int standing = now_ns - q->last_empty_ns > READQ_INTERVAL_NS;
    struct slot s;
    if (standing) { /* LIFO: the newest still has a chance */
        s = q->ring[(q->head + q->len - 1) % q->cap];
    } else {
        s = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
    }
    q->len--;
    if (q->len == 0)
        q->last_empty_ns = now_ns;
    uint64_t allowed = standing ? READQ_TARGET_NS : READQ_INTERVAL_NS;
    *expired = now_ns - s.queued_ns > allowed;
    return s.item;
}

size_t readq_len(const struct readq *q)
{
    return q->len;
}
