/* Unit tests of the read admission queue on a simulated clock: FIFO while
 * healthy, whatever a burst or a stall makes reads wait; LIFO with the
 * short deadline once a standing queue has formed, expired reads handed
 * out first; healthy again once the load is gone; a few clients that keep
 * the server busy are no overload. */
#include "check.h"
#include "readq.h"

#include "error.h"

#include <stdlib.h>

#define MS UINT64_C(1000000)
#define US UINT64_C(1000)
#define ITEMS (1u << 17) /* more than any test pushes */

/* A queued read: when it was pushed, and whether it still is queued. */
struct item {
    uint64_t pushed_ns;
    int queued;
};

/* A queue, the simulated clock and the items pushed so far, in time order
 * (so the oldest queued one is the first still queued from `oldest` on). */
struct sim {
    struct readq *q;
    uint64_t now;
    struct item items[ITEMS];
    unsigned next, oldest;
};

/* What a stretch of pops saw. */
struct seen {
    unsigned served, expired;
    unsigned out_of_order;    /* served a read other than the oldest */
    uint64_t max_served_wait; /* ns */
    uint64_t min_expired_wait;
};

static struct sim *sim_new(size_t capacity)
{
    struct sim *s = calloc(1, sizeof *s);
    s->now = 1000 * MS;
    CHECK_EQ_I64(readq_create(capacity, &s->q), 0);
    return s;
}

static void sim_free(struct sim *s)
{
    readq_free(s->q);
    free(s);
}

static int sim_push(struct sim *s)
{
    if (s->next == ITEMS) {
        CHECK_FAIL_AT("more than %u pushes", ITEMS);
        exit(1);
    }
    struct item *it = &s->items[s->next];
    *it = (struct item){s->now, 1};
    int rc = readq_push(s->q, it, s->now);
    if (rc == 0)
        s->next++;
    else
        it->queued = 0;
    return rc;
}

/* Pops one read into *seen: 0 when the queue was empty. */
static int sim_pop(struct sim *s, struct seen *seen)
{
    int expired = -1;
    struct item *it = readq_pop(s->q, s->now, &expired);
    if (!it)
        return 0;
    CHECK(it->queued);
    uint64_t waited = s->now - it->pushed_ns;
    if (expired == 1) {
        seen->expired++;
        if (!seen->min_expired_wait || waited < seen->min_expired_wait)
            seen->min_expired_wait = waited;
    } else {
        CHECK_EQ_I64(expired, 0);
        seen->served++;
        seen->out_of_order += it != &s->items[s->oldest];
        if (waited > seen->max_served_wait)
            seen->max_served_wait = waited;
    }
    it->queued = 0;
    while (s->oldest < s->next && !s->items[s->oldest].queued)
        s->oldest++;
    return 1;
}

/* Closed loop: `clients` clients keep one read each in the queue (a read
 * popped is replaced at once by its client's next), and the server serves
 * one every service_ns, for duration_ns; shedding takes no time. */
static struct seen closed_loop(struct sim *s, unsigned clients,
                               uint64_t service_ns, uint64_t duration_ns)
{
    struct seen seen = {0};
    while (readq_len(s->q) < clients)
        CHECK_EQ_I64(sim_push(s), 0);
    for (uint64_t end = s->now + duration_ns; s->now < end;) {
        s->now += service_ns;
        for (unsigned served = seen.served; seen.served == served;) {
            if (!sim_pop(s, &seen))
                break;
            CHECK_EQ_I64(sim_push(s), 0);
        }
    }
    return seen;
}

static void test_full_queue_refuses(void)
{
    struct sim *s = sim_new(2);
    CHECK_EQ_I64(sim_push(s), 0);
    CHECK_EQ_I64(sim_push(s), 0);
    CHECK_EQ_I64(sim_push(s), CTRD_EAGAIN);
    CHECK_EQ_U64(readq_len(s->q), 2);
    sim_free(s);
}

/* 16 clients on a server that serves 10,000 reads/s: the queue is never
 * empty, yet holds 1.6 ms of reads: healthy, FIFO, nothing shed. */
static void test_busy_but_not_overloaded(void)
{
    struct sim *s = sim_new(4096);
    struct seen seen = closed_loop(s, 16, 100 * US, 2000 * MS);
    CHECK_EQ_U64(seen.expired, 0);
    CHECK_EQ_U64(seen.out_of_order, 0);
    CHECK(seen.served > 19000);
    CHECK(seen.max_served_wait <= 2 * MS);
    sim_free(s);
}

/* 16 clients of slower reads (2 ms each: a long range of a big ad): 30 ms
 * of reads queued, over the target but within the objective: FIFO, nothing
 * shed. */
static void test_slower_reads_not_overloaded(void)
{
    struct sim *s = sim_new(4096);
    struct seen seen = closed_loop(s, 16, 2 * MS, 3000 * MS);
    CHECK_EQ_U64(seen.expired, 0);
    CHECK_EQ_U64(seen.out_of_order, 0);
    CHECK(seen.served > 1400);
    CHECK(seen.max_served_wait <= 34 * MS);
    sim_free(s);
}

/* A burst on an idle server that drains within the interval: FIFO, no
 * read shed although they wait far beyond the target. */
static void test_burst_is_no_overload(void)
{
    struct sim *s = sim_new(4096);
    struct seen seen = {0};
    for (int i = 0; i < 80; i++)
        CHECK_EQ_I64(sim_push(s), 0);
    for (int i = 0; i < 80; i++) {
        s->now += 1 * MS;
        CHECK(sim_pop(s, &seen));
    }
    CHECK_EQ_U64(seen.expired, 0);
    CHECK_EQ_U64(seen.served, 80);
    CHECK_EQ_U64(seen.max_served_wait, 80 * MS);
    CHECK_EQ_U64(readq_len(s->q), 0);
    sim_free(s);
}

/* A stall of the serving threads is no overload either: served late, in
 * order, none shed; but nothing is served after waiting a second. */
static void test_stall_and_wait_cap(void)
{
    struct sim *s = sim_new(4096);
    struct seen seen = closed_loop(s, 16, 100 * US, 500 * MS);
    CHECK_EQ_U64(seen.expired, 0);
    s->now += 300 * MS; /* nothing popped meanwhile */
    seen = closed_loop(s, 16, 100 * US, 500 * MS);
    CHECK_EQ_U64(seen.expired, 0);
    CHECK_EQ_U64(seen.out_of_order, 0);
    CHECK(seen.max_served_wait >= 300 * MS);

    s->now += READQ_WAIT_MAX_NS + 1;
    struct seen late = {0};
    CHECK(sim_pop(s, &late));
    CHECK_EQ_U64(late.expired, 1);
    sim_free(s);
}

/* 600 clients on a server that serves 10,000 reads/s: 60 ms of reads
 * queued. Once that has lasted an interval the queue is standing: reads
 * that waited beyond the target are handed out first, expired, and the
 * newest are served, within the target. When the load drops to 16
 * clients it is healthy again within two intervals. */
static void test_standing_queue_lifo_and_back(void)
{
    struct sim *s = sim_new(4096);
    struct seen seen = closed_loop(s, 600, 100 * US, 300 * MS);
    CHECK(seen.expired > 0); /* standing within 300 ms */
    seen = closed_loop(s, 600, 100 * US, 1000 * MS);
    CHECK(seen.expired > seen.served); /* most are shed */
    CHECK(seen.served > 1000);
    CHECK(seen.out_of_order > seen.served / 2); /* LIFO */
    CHECK(seen.max_served_wait <= READQ_TARGET_NS);
    CHECK(seen.min_expired_wait > READQ_TARGET_NS);

    /* 584 clients leave (their reads expire and are shed) */
    struct seen drain = {0};
    while (readq_len(s->q) > 16) {
        s->now += 10 * US;
        sim_pop(s, &drain);
    }
    closed_loop(s, 16, 100 * US, 2 * READQ_INTERVAL_NS + 10 * MS);
    seen = closed_loop(s, 16, 100 * US, 1000 * MS);
    CHECK_EQ_U64(seen.expired, 0);
    CHECK_EQ_U64(seen.out_of_order, 0);
    CHECK(seen.max_served_wait <= 2 * MS);
    sim_free(s);
}

int main(void)
{
    RUN(test_full_queue_refuses);
    RUN(test_busy_but_not_overloaded);
    RUN(test_slower_reads_not_overloaded);
    RUN(test_burst_is_no_overload);
    RUN(test_stall_and_wait_cap);
    RUN(test_standing_queue_lifo_and_back);
    return check_done();
}
