/* table: the small open-addressing hash table; see table.h.
 *
 * DESIGN. One array of slots, each {key, value, full} in 16 bytes, so a
 * probe reads one cache line and never the caller's rows. A lookup walks
 * from the key's home slot (hash_slot_u64(key) & mask) to the key or the
 * first empty slot; with the table at most half full that is one or two
 * slots on average. Growth rehashes every key into an array twice the
 * size (table_next, then table_add on the new array). */
#include "table.h"

#include "hash.h"

#include <assert.h>
#include <stdlib.h>

/* Capacity for n keys at most half full: a power of two >= 2n, >= 16. */
static int slots_for(size_t n, size_t *cap)
{
    size_t c = 16;

    if (n > SIZE_MAX / 2 / sizeof(struct table_slot))
        return CTRD_ENOMEM;
    while (c < 2 * n)
        c *= 2;
    *cap = c;
    return 0;
}

int table_init(struct table *t, size_t n)
{
    size_t cap;

    *t = (struct table){NULL, 0, 0};
    if (slots_for(n, &cap) != 0)
        return CTRD_ENOMEM;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots)
        return CTRD_ENOMEM;
    t->mask = cap - 1;
    return 0;
}

void table_free(struct table *t)
{
    free(t->slots);
    *t = (struct table){NULL, 0, 0};
}

/* The slot holding key, or the empty slot where it would go. The table
 * has slots and at least one of them is empty. */
static struct table_slot *slot_of(const struct table *t, uint64_t key)
{
    size_t i = hash_slot_u64(key) & t->mask;

    while (t->slots[i].full && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    return &t->slots[i];
}

int table_find(const struct table *t, uint64_t key, uint32_t *value)
{
    const struct table_slot *s;

    if (!t->slots)
        return CTRD_ENOTFOUND;
    s = slot_of(t, key);
    if (!s->full)
        return CTRD_ENOTFOUND;
    *value = s->value;
    return 0;
}

/* Doubles the slots (or makes the first ones). Changes nothing when memory
 * runs out. */
static int table_grow(struct table *t)
{
    struct table bigger;
    size_t pos = 0;
    uint64_t key;
    uint32_t value;
    int rc = table_init(&bigger, t->slots ? t->mask + 1 : 0);

    if (rc != 0)
        return rc;
    while (table_next(t, &pos, &key, &value) == 0) {
        rc = table_add(&bigger, key, &value);
        assert(rc == 0); /* room for all: no growth, keys distinct */
    }
    table_free(t);
    *t = bigger;
    return 0;
}

int table_add(struct table *t, uint64_t key, uint32_t *value)
{
    struct table_slot *s;

    if ((!t->slots || 2 * (t->n + 1) > t->mask + 1) && table_grow(t) != 0)
        return CTRD_ENOMEM;
    s = slot_of(t, key);
    if (s->full) {
        *value = s->value;
        return 1;
    }
    *s = (struct table_slot){key, *value, 1};
    t->n++;
    return 0;
}

void table_prefetch(const struct table *t, uint64_t key)
{
    if (t->slots)
        __builtin_prefetch(&t->slots[hash_slot_u64(key) & t->mask], 1);
}

int table_next(const struct table *t, size_t *pos, uint64_t *key,
               uint32_t *value)
{
    for (size_t i = *pos; t->slots && i <= t->mask; i++) {
        if (t->slots[i].full) {
            *key = t->slots[i].key;
            *value = t->slots[i].value;
            *pos = i + 1;
            return 0;
        }
    }
    return CTRD_ENOTFOUND;
}
