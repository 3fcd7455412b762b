/* readq: the admission queue for dashboard reads — Controlled Delay and
 * adaptive LIFO (seed: "Resiliency Concepts").
 *
 * Reads wait here between being read off the socket and being answered.
 * If the queue has been empty within the last READQ_INTERVAL_NS, a read
 * may wait up to READQ_INTERVAL_NS and the queue is served in arrival
 * order (FIFO); if it has not — a standing queue is forming — a read may
 * wait only READQ_TARGET_NS and the newest is served first (LIFO), so the
 * reads that are answered are answered fast and the rest are shed (the
 * caller answers them 503) instead of all of them being late. A full
 * queue refuses new reads.
 *
 * Owns the ring of item pointers, not the items. One thread. */
#ifndef CTRD_READQ_H
#define CTRD_READQ_H

#include <stddef.h>
#include <stdint.h>

#define READQ_TARGET_NS UINT64_C(5000000)     /* M: 5 ms */
#define READQ_INTERVAL_NS UINT64_C(100000000) /* N: 100 ms */

struct readq;

int readq_create(size_t capacity, struct readq **out);
void readq_free(struct readq *q);

/* Queues item at now_ns: 0, or CTRD_EAGAIN when full. */
int readq_push(struct readq *q, void *item, uint64_t now_ns);

/* The next item to serve, or NULL when empty. *expired is set when it has
 * waited longer than the delay allowed now: shed it. */
void *readq_pop(struct readq *q, uint64_t now_ns, int *expired);

size_t readq_len(const struct readq *q);

#endif
