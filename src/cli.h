/* cli: the small parsers every command shares for its flags (SPEC §4):
 * durations (ms, s, m, h), sizes (K, M, G), unsigned numbers, times, and
 * the one-line usage error. Owns nothing. */
#ifndef CTRD_CLI_H
#define CTRD_CLI_H

#include <stdint.h>

/* "250ms", "30s", "10m", "24h" (a bare number is seconds). 0 ok, -1 bad. */
int cli_parse_duration_ms(const char *s, int64_t *ms);

/* "4096", "64K", "16M", "2G" (powers of 1024). 0 ok, -1 bad. */
int cli_parse_size_bytes(const char *s, uint64_t *bytes);

/* A decimal unsigned 64-bit number, nothing else. 0 ok, -1 bad. */
int cli_parse_u64(const char *s, uint64_t *v);

/* Decimal ms since the epoch (up to INT64_MAX) or RFC 3339. 0 ok, -1 bad. */
int cli_parse_time_ms(const char *s, int64_t *ms);

/* Prints "ctrd CMD: message (see 'ctrd CMD --help')" as one line on stderr;
 * returns 2, the usage-error exit status: `return cli_usage(...)`. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
