/* hash: the 64-bit hash functions every table and the sharder use.
 *
 * hash_u64 is a bijective mixer (splitmix64 finaliser): all 64 output bits
 * depend on all input bits, so callers may take high bits for one purpose
 * (shard) and low bits for another (slot). hash_u64 and hash_bytes are
 * unseeded and stable across processes: what decides where a record is
 * routed or stored on disk (sharder.h, Bloom filters) uses them.
 *
 * hash_slot_u64 and hash_slot_bytes are the same mixers keyed with
 * hash_slot_seed, drawn once per process (hash.c, before main): the slot
 * of an in-memory table fed from input (HTTP, log files) uses them, so
 * that nobody who cannot see the seed can choose keys that all land in
 * one probe chain (hash flooding). Never use them for anything that must
 * be the same in another process or after a restart. This is not a
 * keyed cryptographic hash: it makes collisions unpredictable, not
 * impossible to find for an attacker who observes probe timings at
 * length.
 *
 * Pure functions, header only, apart from the seed (written once before
 * main, read-only after: any thread). */
#ifndef CTRD_HASH_H
#define CTRD_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* The bytes folded 8 at a time from the starting state h. */
static inline uint64_t hash_bytes_from(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    h ^= len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = hash_u64(h ^ w);
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, len);
    return hash_u64(h ^ tail);
}

static inline uint64_t hash_bytes(const void *data, size_t len)
{
    return hash_bytes_from(UINT64_C(0x9e3779b97f4a7c15), data, len);
}

/* The per-process seed of the slot hashes (random, set before main). */
extern uint64_t hash_slot_seed;

static inline uint64_t hash_slot_u64(uint64_t x)
{
    return hash_u64(x ^ hash_slot_seed);
}

/* The slot of a two-key entry. The inner hash is seeded too: with an
 * unseeded one a sender could make a ^ hash(b) equal for any pairs. */
static inline uint64_t hash_slot_u64_pair(uint64_t a, uint64_t b)
{
    return hash_slot_u64(a ^ hash_slot_u64(b));
}

static inline uint64_t hash_slot_bytes(const void *data, size_t len)
{
    return hash_bytes_from(hash_slot_seed, data, len);
}

#endif
