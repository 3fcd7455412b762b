/* hash: the 64-bit hash functions every table and the sharder use.
 * Pure functions, header only. hash_u64 is a bijective mixer (splitmix64
 * finaliser): all 64 output bits depend on all input bits, so callers may
 * take high bits for one purpose (shard) and low bits for another (slot). */
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

static inline uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ len;
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

#endif
