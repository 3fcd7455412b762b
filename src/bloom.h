/* bloom: a blocked Bloom filter over 64-bit hashes, the QueryStore's
 * "is this query_id possibly here?": in each run (read from its mapping)
 * and in RAM over the ids of every run (querystore.c, ID FILTER).
 *
 * One 64-byte block per key (one cache miss per probe), BLOOM_PROBES bits
 * set inside it; about 1 % false positives at BLOOM_BITS_PER_KEY. The bit
 * array is a plain byte buffer so it can be written to and mapped from a
 * file: the caller owns the buffer (bloom_bytes_for() tells its size). */
#ifndef CTRD_BLOOM_H
#define CTRD_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#define BLOOM_BLOCK_BYTES 64
#define BLOOM_BITS_PER_KEY 10

/* Size of the filter for n keys: a whole number of blocks, at least one. */
size_t bloom_bytes_for(uint64_t n_keys);

/* bits: bloom_bytes_for(n) zeroed bytes; hash: a hash_u64() of the key. */
void bloom_add(uint8_t *bits, size_t n_bytes, uint64_t hash);
int bloom_may_contain(const uint8_t *bits, size_t n_bytes, uint64_t hash);
/* A hint, no effect on the content: starts loading the block a later
 * bloom_add() or bloom_may_contain() of hash reads, so that a caller who
 * knows its next hashes can overlap their cache misses. */
void bloom_prefetch(const uint8_t *bits, size_t n_bytes, uint64_t hash);
/* bloom_add() of hash(keys[i]) for every i < n, its misses overlapped. */
void bloom_add_keys(uint8_t *bits, size_t n_bytes, const uint64_t *keys,
                    uint64_t n);

#endif
