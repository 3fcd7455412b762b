/* cli: the small parsers every command shares for its flags (SPEC §4):
 * durations (ms, s, m, h), sizes (K, M, G), unsigned numbers, times, and
 * the one-line usage error. Owns nothing. */
#ifndef CTRD_CLI_H
#define CTRD_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

/* The release every command's --version prints and ctrd_build_info shows. */
#define CTRD_VERSION "0.8.0"

/* Every command's getopt_long table starts with CLI_COMMON_OPTIONS, its
 * short-option string with "h", and its loop hands each option to
 * cli_common_option() first:
 *     if ((rc = cli_common_option(c, usage)) >= 0) return rc;
 * -h/--help print usage on stdout and --version "ctrd VERSION", both give
 * exit status 0. Any other c gives -1 (the command's own switch goes on). */
#define CLI_OPT_VERSION 0x7f00
#define CLI_COMMON_OPTIONS                                                     \
    {"help", no_argument, NULL, 'h'},                                          \
    {                                                                          \
        "version", no_argument, NULL, CLI_OPT_VERSION                          \
    }
int cli_common_option(int c, const char *usage);

/* arg as an index into choices[n]: 0 with *index set, or the usage error
 * (status 2) "ctrd CMD: FLAG: 'arg' is not one of: a, b, c" on stderr. */
int cli_choice(const char *cmd, const char *flag, const char *arg,
               const char *const *choices, size_t n, int *index);

/* "250ms", "30s", "10m", "24h" (a bare number is seconds). 0 ok, -1 bad. */
int cli_parse_duration_ms(const char *s, int64_t *ms);

/* "4096", "64K", "16M", "2G" (powers of 1024). 0 ok, -1 bad. */
int cli_parse_size_bytes(const char *s, uint64_t *bytes);

/* A decimal unsigned 64-bit number, nothing else. 0 ok, -1 bad. */
int cli_parse_u64(const char *s, uint64_t *v);

/* Decimal ms since the epoch (up to INT64_MAX) or RFC 3339. 0 ok, -1 bad. */
int cli_parse_time_ms(const char *s, int64_t *ms);

/* The usage error (status 2) of the option getopt_long() could not take
 * (unknown, or missing its value): argv[optind - 1] names it. */
int cli_bad_option(const char *cmd, char **argv);

/* The usage error of the first operand left after the options (status 2),
 * or -1 when there is none. */
int cli_no_operands(const char *cmd, int argc, char **argv);

/* Prints "ctrd CMD: message (see 'ctrd CMD --help')" as one line on stderr;
 * returns 2, the usage-error exit status: `return cli_usage(...)`. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
