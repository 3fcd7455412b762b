/* readpool: the threads that serve dashboard reads, off the HTTP loop.
 *
 * A read can wait for the engine's read lock (the writer holds it while it
 * counts a batch) and takes its time to build a table; neither may hold up
 * the loop thread, which reads every socket. The loop submits reads; they
 * wait in the admission queue (readq.h: Controlled Delay, adaptive LIFO)
 * until one of n threads takes them, in the order the queue says, and
 * calls serve(ctx, item, shed) on that thread: shed is set for a read the
 * queue says waited too long, and for every read still queued when the
 * pool stops. Every submitted item reaches serve exactly once; the callee
 * owns it from then on (and hands its answer back to the loop).
 *
 * Owns the threads and the queue (guarded by one mutex), not the items.
 * readpool_submit() and readpool_queued() from any thread; serve runs on
 * the pool's threads, several at once. */
#ifndef CTRD_READPOOL_H
#define CTRD_READPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* By default one thread per core but the loop thread's, at most this
 * (measured on 2 cores: a second read thread only took CPU from the loop
 * thread, and the admitted reads got slower). */
#define READPOOL_THREADS_DEFAULT_MAX 4

struct readpool;

typedef void readpool_serve_fn(void *ctx, void *item, int shed);

/* Starts n_threads threads (0: the default above) over a queue of capacity
 * reads. 0, CTRD_EINVAL or CTRD_ENOMEM (then nothing was started). */
int readpool_create(unsigned n_threads, size_t capacity,
                    readpool_serve_fn *serve, void *ctx, struct readpool **out);

/* Queues item, read whole at queued_ns (CLOCK_MONOTONIC): 0, or
 * CTRD_EAGAIN when the queue is full (the item stays the caller's). */
int readpool_submit(struct readpool *p, void *item, uint64_t queued_ns);

/* Reads waiting for a thread. */
size_t readpool_queued(struct readpool *p);

/* Stops: the reads still queued go to serve with shed set, the threads
 * finish what they serve and are joined, then the pool is freed. NULL is a
 * no-op. */
void readpool_free(struct readpool *p);

#endif
