/* Unit tests of the read threads: every submitted item reaches serve
 * exactly once, on a pool thread; a full queue refuses; what is still
 * queued when the pool stops is passed as shed. Every wait is bounded. */
#include "check.h"
#include "readpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define ITEMS 10000
#define WAIT_MS 5000

static atomic_int seen[ITEMS], served, shed, on_caller;
static pthread_t caller;
static atomic_int gate_open;    /* serve of item 0 waits for it */
static atomic_int gate_waiting; /* serve of item 0 has begun */
static int ids[ITEMS];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {0, (long)ms * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until *v >= target (at most WAIT_MS). 1 when it got there. */
static int wait_for(atomic_int *v, int target)
{
    for (int ms = 0; ms < WAIT_MS && atomic_load(v) < target; ms++)
        sleep_ms(1);
    return atomic_load(v) >= target;
}

static void serve(void *ctx, void *item, int is_shed)
{
    int id = *(int *)item;
    (void)ctx;
    if (id == 0 && !is_shed) {
        atomic_store(&gate_waiting, 1);
        wait_for(&gate_open, 1);
    }
    atomic_fetch_add(&seen[id], 1);
    atomic_fetch_add(is_shed ? &shed : &served, 1);
    if (pthread_equal(pthread_self(), caller))
        atomic_fetch_add(&on_caller, 1);
}

static void reset(void)
{
    for (int i = 0; i < ITEMS; i++) {
        atomic_store(&seen[i], 0);
        ids[i] = i;
    }
    atomic_store(&served, 0);
    atomic_store(&shed, 0);
    atomic_store(&on_caller, 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_waiting, 0);
    caller = pthread_self();
}

static void test_every_item_once_on_pool_threads(void)
{
    struct readpool *p;
    reset();
    atomic_store(&gate_open, 1);
    CHECK_EQ_I64(readpool_create(3, ITEMS, serve, NULL, &p), 0);
    for (int i = 0; i < ITEMS; i++)
        CHECK_EQ_I64(readpool_submit(p, &ids[i], now_ns()), 0);
    CHECK(wait_for(&served, ITEMS));
    readpool_free(p);
    int once = 1;
    for (int i = 0; i < ITEMS; i++)
        once &= atomic_load(&seen[i]) == 1;
    CHECK(once);
    CHECK_EQ_I64(atomic_load(&shed), 0);
    CHECK_EQ_I64(atomic_load(&on_caller), 0);
}

static void test_full_queue_refuses(void)
{
    struct readpool *p;
    reset();
    CHECK_EQ_I64(readpool_create(1, 2, serve, NULL, &p), 0);
    CHECK_EQ_I64(readpool_submit(p, &ids[0], now_ns()), 0);
    CHECK(wait_for(&gate_waiting, 1)); /* item 0 is out of the queue */
    CHECK_EQ_I64(readpool_submit(p, &ids[1], now_ns()), 0);
    CHECK_EQ_I64(readpool_submit(p, &ids[2], now_ns()), 0);
    CHECK_EQ_I64(readpool_submit(p, &ids[3], now_ns()), CTRD_EAGAIN);
    CHECK_EQ_U64(readpool_queued(p), 2);
    atomic_store(&gate_open, 1);
    readpool_free(p);
    CHECK_EQ_I64(atomic_load(&served) + atomic_load(&shed), 3);
    CHECK_EQ_I64(atomic_load(&seen[3]), 0);
}

static void *free_pool(void *p)
{
    readpool_free(p);
    return NULL;
}

static void test_stop_sheds_what_is_queued(void)
{
    struct readpool *p;
    pthread_t stopper;
    reset();
    CHECK_EQ_I64(readpool_create(1, 64, serve, NULL, &p), 0);
    CHECK_EQ_I64(readpool_submit(p, &ids[0], now_ns()), 0);
    CHECK(wait_for(&gate_waiting, 1));
    for (int i = 1; i <= 5; i++)
        CHECK_EQ_I64(readpool_submit(p, &ids[i], now_ns()), 0);
    pthread_create(&stopper, NULL, free_pool, p);
    /* Stopping shows as a refusal (the queue has room); what got in
     * meanwhile is queued like the rest. */
    int n = 6;
    for (int ms = 0; ms < WAIT_MS && n < 64; ms++, n++) {
        if (readpool_submit(p, &ids[n], now_ns()) == CTRD_EAGAIN)
            break;
        sleep_ms(1);
    }
    CHECK(n < 64);
    atomic_store(&gate_open, 1);
    pthread_join(stopper, NULL);
    CHECK_EQ_I64(atomic_load(&served), 1); /* item 0 */
    CHECK_EQ_I64(atomic_load(&shed), n - 1);
    int once = 1;
    for (int i = 0; i < n; i++)
        once &= atomic_load(&seen[i]) == 1;
    CHECK(once);
}

int main(void)
{
    alarm(60); /* nothing here may hang */
    RUN(test_every_item_once_on_pool_threads);
    RUN(test_full_queue_refuses);
    RUN(test_stop_sheds_what_is_queued);
    return check_done();
}
