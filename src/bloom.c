/* bloom: blocked Bloom filter; see bloom.h. */
#include "bloom.h"

#include "hash.h"

#define BLOOM_PROBES 7
#define BLOOM_PREFETCH                                                         \
    16 /* keys ahead whose blocks bloom_add_keys() asks for */

size_t bloom_bytes_for(uint64_t n_keys)
{
    uint64_t blocks = (n_keys * BLOOM_BITS_PER_KEY + 511) / 512;
    return (size_t)(blocks ? blocks : 1) * BLOOM_BLOCK_BYTES;
}

/* The block comes from the high bits of the hash, the bit positions from
 * 9-bit slices of a second mix of it (independent of the block choice). */
static const uint8_t *block_of(const uint8_t *bits, size_t n_bytes,
                               uint64_t hash)
{
    uint64_t n_blocks = n_bytes / BLOOM_BLOCK_BYTES;
    uint64_t block = (uint64_t)(((unsigned __int128)hash * n_blocks) >> 64);
    return bits + block * BLOOM_BLOCK_BYTES;
}

void bloom_add(uint8_t *bits, size_t n_bytes, uint64_t hash)
{
    uint8_t *block = (uint8_t *)block_of(bits, n_bytes, hash);
    uint64_t slices = hash_u64(hash);
    for (int i = 0; i < BLOOM_PROBES; i++) {
        unsigned bit = (unsigned)(slices >> (9 * i)) & 511;
        block[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

int bloom_may_contain(const uint8_t *bits, size_t n_bytes, uint64_t hash)
{
    const uint8_t *block = block_of(bits, n_bytes, hash);
    uint64_t slices = hash_u64(hash);
    for (int i = 0; i < BLOOM_PROBES; i++) {
        unsigned bit = (unsigned)(slices >> (9 * i)) & 511;
        if (!(block[bit >> 3] & (1u << (bit & 7))))
            return 0;
    }
    return 1;
}

void bloom_prefetch(const uint8_t *bits, size_t n_bytes, uint64_t hash)
{
    __builtin_prefetch(block_of(bits, n_bytes, hash));
}

void bloom_add_keys(uint8_t *bits, size_t n_bytes, const uint64_t *keys,
                    uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (i + BLOOM_PREFETCH < n)
            bloom_prefetch(bits, n_bytes, hash_u64(keys[i + BLOOM_PREFETCH]));
        bloom_add(bits, n_bytes, hash_u64(keys[i]));
    }
}
