/* Unit tests of sharder: routing is pinned. The shards below were computed
 * by the release that introduced this test; routing must give the same in
 * every process and every release (it is not seeded), so a change here is
 * a change of where existing data lives, never a test to update. */
#include "check.h"
#include "sharder.h"

static const struct {
    uint64_t id;
    unsigned join_shard, count_shard;     /* of the id as query id / ad id */
    unsigned join_worker7, count_worker7; /* owners among 7 workers */
} pinned[] = {
    {1u, 86, 144, 2, 4},
    {2u, 219, 128, 2, 2},
    {3u, 30, 178, 2, 3},
    {42u, 167, 67, 6, 4},
    {1000u, 193, 189, 4, 0},
    {123456789u, 242, 148, 4, 1},
    {UINT64_MAX, 180, 117, 5, 5},
    {9007199254740993u, 112, 216, 0, 6},
    {UINT64_C(1) << 32, 216, 55, 6, 6},
    {77777u, 45, 192, 3, 3},
};
#define N_PINNED (sizeof pinned / sizeof pinned[0])

static void test_join_shards_are_pinned(void)
{
    for (size_t i = 0; i < N_PINNED; i++) {
        CHECK_EQ_U64(sharder_join_shard(pinned[i].id), pinned[i].join_shard);
        CHECK_EQ_U64(sharder_join_worker(pinned[i].id, 7),
                     pinned[i].join_worker7);
    }
}

static void test_count_shards_are_pinned(void)
{
    for (size_t i = 0; i < N_PINNED; i++) {
        CHECK_EQ_U64(sharder_count_shard(pinned[i].id), pinned[i].count_shard);
        CHECK_EQ_U64(sharder_count_worker(pinned[i].id, 7),
                     pinned[i].count_worker7);
    }
}

/* A worker owns shard s when s % n_workers == worker, for every n: one
 * query id reaches the same shard whatever the number of workers. */
static void test_worker_owns_shard_modulo_workers(void)
{
    for (unsigned n = 1; n <= SHARD_WORKERS_MAX; n++) {
        for (size_t i = 0; i < N_PINNED; i++) {
            CHECK_EQ_U64(sharder_join_worker(pinned[i].id, n),
                         pinned[i].join_shard % n);
            CHECK_EQ_U64(sharder_count_worker(pinned[i].id, n),
                         pinned[i].count_shard % n);
        }
    }
}

/* Dense query ids (as real logs have) spread over all shards: none empty,
 * none with more than twice its share. */
static void test_dense_ids_spread_over_all_shards(void)
{
    unsigned count[SHARD_COUNT] = {0};
    const unsigned n = 256 * SHARD_COUNT;
    for (uint64_t id = 1; id <= n; id++)
        count[sharder_join_shard(id)]++;
    unsigned lo = n, hi = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        lo = count[s] < lo ? count[s] : lo;
        hi = count[s] > hi ? count[s] : hi;
    }
    CHECK(lo > 0);
    CHECK(hi < 2 * (n / SHARD_COUNT));
}

int main(void)
{
    RUN(test_join_shards_are_pinned);
    RUN(test_count_shards_are_pinned);
    RUN(test_worker_owns_shard_modulo_workers);
    RUN(test_dense_ids_spread_over_all_shards);
    return check_done();
}
