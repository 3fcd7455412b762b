/* readq: the admission queue for dashboard reads — Controlled Delay and
 * adaptive LIFO (seed: "Resiliency Concepts").
 *
 * Reads wait here between being read off the socket and being served. The
 * queue judges overload by delay: it measures how many reads it hands out
 * per READQ_INTERVAL_NS and so knows how long what it holds takes to serve
 * (Little's law: the wait of a read that joins now and is served in
 * arrival order).
 *   - healthy: reads are served in arrival order (FIFO). A burst, or a
 *     stall of the threads serving, may make them wait longer than the
 *     target for a while; that is no overload, so none is shed unless it
 *     waited READQ_WAIT_MAX_NS, the dashboard's own objective (an answer
 *     that late is of no use).
 *   - standing queue: it has held more than READQ_STANDING_NS of reads for
 *     a whole READQ_INTERVAL_NS (the Controlled Delay signal of overload:
 *     what it holds can no longer be served within the dashboard's
 *     latency objective). The newest read is served first (adaptive LIFO)
 *     and a read may wait only READQ_TARGET_NS, so the reads that are
 *     answered are answered fast. It is healthy again once it has held at
 *     most READQ_TARGET_NS of reads for a whole READQ_INTERVAL_NS.
 * A queue that knows no rate yet (at start, or after an interval without a
 * push or pop) counts as healthy. A read that has waited longer than
 * allowed is handed out before any other, marked expired, for the caller
 * to shed at once (503): a shed read learns it early rather than after the
 * queue. A full queue refuses new reads.
 *
 * Delay, not emptiness: a few clients that keep every serving thread busy
 * keep the queue from ever being empty, yet are no overload while what
 * they queue is served within the objective. (Taking a never-empty queue
 * for a standing one, as this queue once did, shed their reads: LIFO
 * starves the oldest of them.) Entering at READQ_STANDING_NS and leaving
 * at READQ_TARGET_NS keeps a dashboard's few users with slower reads (16
 * of them on a 2 ms read hold 30 ms) from being shed, while a standing
 * queue's answers come within the target (measured: admitted p99.9 under
 * 11 ms at 400 and 1000 clients, BENCHMARKS.md).
 *
 * Owns the ring of item pointers, not the items. Not thread-safe: one
 * thread at a time (readpool.h holds a mutex around it). Times are
 * CLOCK_MONOTONIC ns and never go back. */
#ifndef CTRD_READQ_H
#define CTRD_READQ_H

#include <stddef.h>
#include <stdint.h>

#define READQ_TARGET_NS UINT64_C(10000000)     /* M: 10 ms */
#define READQ_STANDING_NS UINT64_C(40000000)   /* overload: 40 ms held */
#define READQ_INTERVAL_NS UINT64_C(100000000)  /* N: 100 ms */
#define READQ_WAIT_MAX_NS UINT64_C(1000000000) /* healthy: 1 s */

struct readq;

int readq_create(size_t capacity, struct readq **out);
void readq_free(struct readq *q);

/* Queues item at now_ns: 0, or CTRD_EAGAIN when full. */
int readq_push(struct readq *q, void *item, uint64_t now_ns);

/* The next item, or NULL when empty: an expired one (*expired set: shed
 * it) while there is one, else the next to serve (*expired clear). */
void *readq_pop(struct readq *q, uint64_t now_ns, int *expired);

size_t readq_len(const struct readq *q);

#endif
