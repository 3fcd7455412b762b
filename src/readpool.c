/* readpool: threads serving dashboard reads; see readpool.h. */
#include "readpool.h"

#include "clock.h"

#include "readq.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct readpool {
    pthread_mutex_t mu;  /* guards queue and stopping */
    pthread_cond_t work; /* a read was queued, or stopping */
    struct readq *queue;
    int stopping;
    readpool_serve_fn *serve;
    void *ctx;
    pthread_t *threads;
    unsigned n_threads; /* started */
};

static void *readpool_main(void *arg)
{
    struct readpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && readq_len(p->queue) == 0)
            pthread_cond_wait(&p->work, &p->mu);
        int expired;
        void *item = readq_pop(p->queue, clock_mono_ns(), &expired);
        if (!item)
            break; /* stopping, and nothing is left */
        int shed = expired || p->stopping;
        pthread_mutex_unlock(&p->mu);
        p->serve(p->ctx, item, shed);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static unsigned readpool_threads_default(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores <= 2)
        return 1;
    return cores > READPOOL_THREADS_DEFAULT_MAX + 1
               ? READPOOL_THREADS_DEFAULT_MAX
               : (unsigned)cores - 1;
}

int readpool_create(unsigned n_threads, size_t capacity,
                    readpool_serve_fn *serve, void *ctx, struct readpool **out)
{
    struct readpool *p;
    *out = NULL;
    if (capacity == 0 || !serve)
        return CTRD_EINVAL;
    if (n_threads == 0)
        n_threads = readpool_threads_default();
    if (!(p = calloc(1, sizeof *p)))
        return CTRD_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    p->serve = serve;
    p->ctx = ctx;
    if (readq_create(capacity, &p->queue) != 0 ||
        !(p->threads = calloc(n_threads, sizeof *p->threads)))
        goto fail;
    for (; p->n_threads < n_threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, readpool_main, p) !=
            0)
            goto fail;
    *out = p;
    return 0;
fail:
    readpool_free(p);
    return CTRD_ENOMEM;
}

int readpool_submit(struct readpool *p, void *item, uint64_t queued_ns)
{
    pthread_mutex_lock(&p->mu);
    int rc = p->stopping ? CTRD_EAGAIN : readq_push(p->queue, item, queued_ns);
    if (rc == 0)
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t readpool_queued(struct readpool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = readq_len(p->queue);
    pthread_mutex_unlock(&p->mu);
    return n;
}

void readpool_free(struct readpool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    readq_free(p->queue);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
