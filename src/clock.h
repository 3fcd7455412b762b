/* clock: the one place ctrd reads a clock. Header only, any thread.
 * Monotonic time measures durations and deadlines; wall time (the epoch)
 * stamps what a user or a record sees. */
#ifndef CTRD_CLOCK_H
#define CTRD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds and milliseconds of the monotonic clock. */
static inline uint64_t clock_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t clock_mono_ms(void)
{
    return (int64_t)(clock_ns(CLOCK_MONOTONIC) / 1000000u);
}

/* Milliseconds since the epoch. */
static inline int64_t clock_wall_ms(void)
{
    return (int64_t)(clock_ns(CLOCK_REALTIME) / 1000000u);
}

#endif
