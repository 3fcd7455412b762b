/* Unit tests of the read admission queue: FIFO while the queue empties
 * often, LIFO with a short deadline once a standing queue forms. */
#include "check.h"
#include "readq.h"

#include "error.h"

#define MS UINT64_C(1000000)

static int items[8];

static void test_fifo_when_queue_drains(void)
{
    struct readq *q;
    int expired;
    CHECK_EQ_I64(readq_create(4, &q), 0);
    CHECK_EQ_I64(readq_push(q, &items[0], 1000 * MS), 0);
    CHECK_EQ_I64(readq_push(q, &items[1], 1001 * MS), 0);
    CHECK(readq_pop(q, 1010 * MS, &expired) == &items[0]);
    CHECK_EQ_I64(expired, 0); /* 10 ms: fine while the queue is young */
    CHECK(readq_pop(q, 1011 * MS, &expired) == &items[1]);
    CHECK_EQ_I64(expired, 0);
    CHECK(readq_pop(q, 1012 * MS, &expired) == NULL);
    readq_free(q);
}

static void test_full_queue_refuses(void)
{
    struct readq *q;
    CHECK_EQ_I64(readq_create(2, &q), 0);
    CHECK_EQ_I64(readq_push(q, &items[0], 0), 0);
    CHECK_EQ_I64(readq_push(q, &items[1], 0), 0);
    CHECK_EQ_I64(readq_push(q, &items[2], 0), CTRD_EAGAIN);
    CHECK_EQ_U64(readq_len(q), 2);
    readq_free(q);
}

static void test_standing_queue_goes_lifo_and_sheds(void)
{
    struct readq *q;
    int expired;
    CHECK_EQ_I64(readq_create(8, &q), 0);
    /* Never empty from t = 0 on: after 100 ms the queue is standing. */
    CHECK_EQ_I64(readq_push(q, &items[0], 0), 0);
    CHECK_EQ_I64(readq_push(q, &items[1], 50 * MS), 0);
    CHECK_EQ_I64(readq_push(q, &items[2], 149 * MS), 0);
    CHECK(readq_pop(q, 151 * MS, &expired) == &items[2]); /* newest first */
    CHECK_EQ_I64(expired, 0); /* waited 2 ms < 5 ms */
    CHECK(readq_pop(q, 152 * MS, &expired) == &items[1]);
    CHECK_EQ_I64(expired, 1); /* waited 102 ms: shed */
    CHECK(readq_pop(q, 153 * MS, &expired) == &items[0]);
    CHECK_EQ_I64(expired, 1);
    /* Emptied: young again, FIFO with the long deadline. */
    CHECK_EQ_I64(readq_push(q, &items[3], 160 * MS), 0);
    CHECK_EQ_I64(readq_push(q, &items[4], 161 * MS), 0);
    CHECK(readq_pop(q, 170 * MS, &expired) == &items[3]);
    CHECK_EQ_I64(expired, 0);
    readq_free(q);
}

int main(void)
{
    RUN(test_fifo_when_queue_drains);
    RUN(test_full_queue_refuses);
    RUN(test_standing_queue_goes_lifo_and_sheds);
    return check_done();
}
