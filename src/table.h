/* table: the small open-addressing hash table of the cold paths (loading
 * a file, answering a read): u64 keys to u32 values, typically the index
 * of the key's row in the caller's own array.
 *
 * Linear probing over a power-of-two array of slots, at most half full,
 * doubling when an add would pass that; no removal. A slot is placed by
 * hash_slot_u64() (seeded per process, hash.h), so keys that come from
 * input cannot be chosen to pile up in one probe chain. The order of
 * table_next() is therefore different in every process: never let it
 * decide an order anyone sees.
 *
 * The hot tables on the per-record ingest path (countmap, querystore,
 * terms, joiner, engine) keep their own layouts; each says why.
 *
 * struct table is a value the caller owns; all zero is an empty table.
 * table_free() releases the slots (and NULL-safe: a zero table is fine).
 * Not thread-safe while written; the const functions may run on any
 * number of threads at once when nobody writes. Errors: 0 ok, negative
 * CTRD_E* codes (error.h); "not found" is CTRD_ENOTFOUND. */
#ifndef CTRD_TABLE_H
#define CTRD_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct table_slot {
    uint64_t key;
    uint32_t value;
    uint32_t full; /* 0: empty */
};

struct table {
    struct table_slot *slots; /* mask + 1 of them; NULL when empty */
    size_t mask;
    size_t n; /* keys held */
};

/* An empty table with room for n keys before it has to grow.
 * 0 or CTRD_ENOMEM. */
int table_init(struct table *t, size_t n);
void table_free(struct table *t);

/* 0 and *value, or CTRD_ENOTFOUND. */
int table_find(const struct table *t, uint64_t key, uint32_t *value);

/* Adds key with *value when it is absent: returns 0. When key is there
 * already, changes nothing, sets *value to its value and returns 1.
 * CTRD_ENOMEM when the table had to grow and could not. */
int table_add(struct table *t, uint64_t key, uint32_t *value);

/* Starts a prefetch of the slot where key would be probed first: for
 * loops over many keys, a few keys ahead. */
void table_prefetch(const struct table *t, uint64_t key);

/* The key and value at or after *pos (start at 0), in slot order; *pos
 * moves past it. 0, or CTRD_ENOTFOUND past the last key. */
int table_next(const struct table *t, size_t *pos, uint64_t *key,
               uint32_t *value);

#endif
