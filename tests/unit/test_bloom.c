/* Unit tests of bloom: filter sizes, no false negatives, and a false
 * positive rate near the designed 1 % for 10 bits per key. */
#include "check.h"
#include "bloom.h"
#include "hash.h"

#include <stdlib.h>

#define N_KEYS 100000u

static void test_bytes_for(void)
{
    static const struct { uint64_t keys; size_t bytes; } rows[] = {
        {0, 64},      {1, 64},      {51, 64},    /* 510 bits: one block */
        {52, 128},    {512, 640},   /* 5120 bits: 10 blocks */
        {100000, 1954 * 64},                     /* 1,000,000 bits */
        {1000000, 19532 * 64},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        size_t got = bloom_bytes_for(rows[i].keys);
        CHECK_EQ_U64(got, rows[i].bytes);
        CHECK_EQ_U64(got % BLOOM_BLOCK_BYTES, 0);
        CHECK(got * 8 >= rows[i].keys * BLOOM_BITS_PER_KEY);
    }
}

static void test_no_false_negatives_and_fp_rate(void)
{
    size_t n_bytes = bloom_bytes_for(N_KEYS);
    uint8_t *bits = calloc(1, n_bytes);
    CHECK(bits != NULL);
    if (!bits)
        return;
    /* Keys 1..N go in (query ids are small, dense numbers in real logs). */
    for (uint64_t k = 1; k <= N_KEYS; k++)
        bloom_add(bits, n_bytes, hash_u64(k));
    uint64_t missing = 0;
    for (uint64_t k = 1; k <= N_KEYS; k++)
        missing += !bloom_may_contain(bits, n_bytes, hash_u64(k));
    CHECK_EQ_U64(missing, 0);
    /* Absent keys: a disjoint range and large sparse ids. */
    uint64_t fp_dense = 0, fp_sparse = 0;
    for (uint64_t k = N_KEYS + 1; k <= 2 * N_KEYS; k++)
        fp_dense += bloom_may_contain(bits, n_bytes, hash_u64(k));
    for (uint64_t k = 1; k <= N_KEYS; k++)
        fp_sparse += bloom_may_contain(bits, n_bytes,
                                       hash_u64(k * UINT64_C(1000003) +
                                                (UINT64_C(1) << 40)));
    printf("  false positives: %llu and %llu of %u\n",
           (unsigned long long)fp_dense, (unsigned long long)fp_sparse,
           N_KEYS);
    CHECK(fp_dense < N_KEYS / 50);  /* < 2 % */
    CHECK(fp_sparse < N_KEYS / 50);
    CHECK(fp_dense > 0);            /* a real filter, not "always no" */
    free(bits);
}

static void test_empty_filter_contains_nothing(void)
{
    uint8_t bits[BLOOM_BLOCK_BYTES] = {0};
    uint64_t hits = 0;
    for (uint64_t k = 0; k < 1000; k++)
        hits += bloom_may_contain(bits, sizeof bits, hash_u64(k));
    CHECK_EQ_U64(hits, 0);
    bloom_add(bits, sizeof bits, hash_u64(42));
    CHECK(bloom_may_contain(bits, sizeof bits, hash_u64(42)));
    unsigned set = 0;
    for (size_t i = 0; i < sizeof bits; i++)
        set += (unsigned)__builtin_popcount(bits[i]);
    CHECK(set >= 1 && set <= 7); /* at most BLOOM_PROBES bits per key */
}

int main(void)
{
    RUN(test_bytes_for);
    RUN(test_no_false_negatives_and_fp_rate);
    RUN(test_empty_filter_contains_nothing);
    return check_done();
}
