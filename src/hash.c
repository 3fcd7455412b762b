/* hash: the per-process seed of the slot hashes; see hash.h.
 *
 * Drawn from getrandom() without blocking before main runs (a constructor,
 * so no thread can read it half written and no caller has to remember to
 * set it up). When the kernel has no entropy to give yet (early boot) the
 * seed falls back to what differs between processes anyway: the clock,
 * the process id and where ASLR put the stack. */
#include "hash.h"

#include "clock.h"

#include <sys/random.h>
#include <unistd.h>

uint64_t hash_slot_seed;

__attribute__((constructor)) static void hash_slot_seed_init(void)
{
    uint64_t seed;

    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = clock_mono_ns() ^ clock_ns(CLOCK_REALTIME) ^
               (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&seed;
    hash_slot_seed = hash_u64(seed);
}
