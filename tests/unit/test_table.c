/* Unit tests of table: adds and finds, a key already there, keys that
 * share a home slot (probe chains, wrap-around at the end of the array),
 * growth from empty and from a sized start, iteration that visits every
 * key once, and a million random operations against a sorted reference
 * array. */
#include "check.h"
#include "hash.h"
#include "table.h"

#include <stdlib.h>

static void test_empty(void)
{
    struct table t = {0};
    uint32_t v = 7;
    size_t pos = 0;
    uint64_t k;

    CHECK_EQ_I64(table_find(&t, 0, &v), CTRD_ENOTFOUND);
    CHECK_EQ_I64(table_next(&t, &pos, &k, &v), CTRD_ENOTFOUND);
    CHECK_EQ_U64(v, 7);
    table_prefetch(&t, 1);
    table_free(&t);
    table_free(&t); /* a freed table is an empty one */
    CHECK(t.slots == NULL);
}

static void test_add_find(void)
{
    struct table t = {0};
    uint32_t v;

    v = 10;
    CHECK_EQ_I64(table_add(&t, 0, &v), 0); /* key 0 is a key like others */
    v = 11;
    CHECK_EQ_I64(table_add(&t, UINT64_MAX, &v), 0);
    v = 99;
    CHECK_EQ_I64(table_add(&t, 0, &v), 1); /* there: unchanged, told */
    CHECK_EQ_U64(v, 10);
    CHECK_EQ_I64(table_find(&t, 0, &v), 0);
    CHECK_EQ_U64(v, 10);
    CHECK_EQ_I64(table_find(&t, UINT64_MAX, &v), 0);
    CHECK_EQ_U64(v, 11);
    CHECK_EQ_I64(table_find(&t, 1, &v), CTRD_ENOTFOUND);
    CHECK_EQ_U64(t.n, 2);
    table_free(&t);
}

/* Keys whose home slot in a 16-slot table is home. */
static size_t keys_at(size_t home, uint64_t *keys, size_t n)
{
    size_t found = 0;
    for (uint64_t k = 0; found < n; k++)
        if ((hash_slot_u64(k) & 15) == home)
            keys[found++] = k;
    return found;
}

static void test_collisions(void)
{
    struct table t;
    uint64_t keys[6];
    uint32_t v;

    /* Six keys homed at the last slot: the chain wraps to slots 0..4. */
    CHECK_EQ_I64(table_init(&t, 8), 0);
    CHECK_EQ_U64(t.mask, 15);
    keys_at(15, keys, 6);
    for (uint32_t i = 0; i < 6; i++) {
        v = i;
        CHECK_EQ_I64(table_add(&t, keys[i], &v), 0);
    }
    CHECK_EQ_U64(t.mask, 15); /* no growth: 6 keys in 16 slots */
    CHECK(t.slots[15].full && t.slots[0].full && t.slots[4].full);
    CHECK_EQ_U64(t.slots[15].key, keys[0]);
    CHECK_EQ_U64(t.slots[4].key, keys[5]);
    for (uint32_t i = 0; i < 6; i++) {
        CHECK_EQ_I64(table_find(&t, keys[i], &v), 0);
        CHECK_EQ_U64(v, i);
    }
    /* A key homed in the chain but absent stops at the empty slot 5. */
    uint64_t other[7];
    keys_at(15, other, 7);
    CHECK_EQ_I64(table_find(&t, other[6], &v), CTRD_ENOTFOUND);
    table_free(&t);
}

static void test_growth(void)
{
    struct table t = {0};
    uint32_t v;

    for (uint32_t i = 0; i < 1000; i++) {
        v = i * 3;
        CHECK_EQ_I64(table_add(&t, (uint64_t)i << 40, &v), 0);
        CHECK(2 * t.n <= t.mask + 1); /* never more than half full */
    }
    CHECK_EQ_U64(t.n, 1000);
    CHECK_EQ_U64(t.mask + 1, 2048);
    for (uint32_t i = 0; i < 1000; i++) {
        CHECK_EQ_I64(table_find(&t, (uint64_t)i << 40, &v), 0);
        CHECK_EQ_U64(v, i * 3);
    }
    table_free(&t);

    /* Sized for n: n adds without a new array. */
    CHECK_EQ_I64(table_init(&t, 100), 0);
    struct table_slot *first = t.slots;
    for (uint32_t i = 0; i < 100; i++)
        CHECK_EQ_I64(table_add(&t, i, &i), 0);
    CHECK(t.slots == first);
    v = 100;
    CHECK_EQ_I64(table_add(&t, 100, &v), 0);
    CHECK(t.mask + 1 >= 202);
    table_free(&t);
}

static void test_iterate(void)
{
    struct table t = {0};
    static unsigned char seen[5000];
    size_t pos = 0, n = 0;
    uint64_t k;
    uint32_t v;

    for (uint32_t i = 0; i < 5000; i += 2) {
        v = i + 1;
        table_add(&t, i, &v);
    }
    while (table_next(&t, &pos, &k, &v) == 0) {
        CHECK(k < 5000 && k % 2 == 0);
        CHECK_EQ_U64(v, k + 1);
        if (k < 5000)
            seen[k]++;
        n++;
    }
    CHECK_EQ_U64(n, 2500);
    for (size_t i = 0; i < 5000; i += 2)
        if (seen[i] != 1)
            CHECK_EQ_U64(seen[i], 1);
    CHECK_EQ_I64(table_next(&t, &pos, &k, &v), CTRD_ENOTFOUND);
    table_free(&t);
}

/* ---- a million operations against a sorted array ---- */

struct ref {
    uint64_t key;
    uint32_t value;
};

static int ref_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct ref *)a)->key, y = ((const struct ref *)b)->key;
    return (x > y) - (x < y);
}

static uint64_t rng = 88172645463325252u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_reference(void)
{
    enum { OPS = 1000000, KEYS = 1 << 18 };
    struct ref *refs = calloc(OPS, sizeof *refs);
    struct table t = {0};
    size_t n = 0, pos = 0;
    uint64_t k;
    uint32_t v;

    CHECK(refs != NULL);
    if (!refs)
        return;
    /* Adds of keys from a small range (so about half repeat): the first
     * value of each key stays. */
    for (uint32_t i = 0; i < OPS; i++) {
        k = next_rand() % KEYS * UINT64_C(0x100000001);
        v = i;
        int rc = table_add(&t, k, &v);
        if (rc == 0)
            refs[n++] = (struct ref){k, i};
        else if (rc != 1)
            CHECK_EQ_I64(rc, 1);
    }
    CHECK_EQ_U64(t.n, n);
    qsort(refs, n, sizeof *refs, ref_cmp);
    for (size_t i = 0; i < n; i++) {
        if (table_find(&t, refs[i].key, &v) != 0 || v != refs[i].value) {
            CHECK_EQ_U64(v, refs[i].value);
            break;
        }
    }
    /* Every key found by iteration is the reference's, with its value. */
    size_t visited = 0;
    while (table_next(&t, &pos, &k, &v) == 0) {
        struct ref want = {k, 0};
        const struct ref *r = bsearch(&want, refs, n, sizeof *refs, ref_cmp);
        if (!r || r->value != v) {
            CHECK(r && r->value == v);
            break;
        }
        visited++;
    }
    CHECK_EQ_U64(visited, n);
    /* Keys never added are not found. */
    for (uint32_t i = 0; i < 10000; i++)
        if (table_find(&t, (uint64_t)KEYS * 0x100000001u + i, &v) == 0)
            CHECK_EQ_U64(i, UINT64_MAX);
    table_free(&t);
    free(refs);
}

int main(void)
{
    RUN(test_empty);
    RUN(test_add_find);
    RUN(test_collisions);
    RUN(test_growth);
    RUN(test_iterate);
    RUN(test_reference);
    return check_done();
}
