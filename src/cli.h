/* cli: the small parsers every command shares for its flags (SPEC §4):
 * durations (ms, s, m, h), sizes (K, M, G), unsigned numbers, times, and
 * the one-line usage error. Owns nothing. */
#ifndef CTRD_CLI_H
#define CTRD_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* The release every command's --version prints and ctrd_build_info shows. */
#define CTRD_VERSION "0.8.0"

/* Every command's getopt_long table starts with CLI_COMMON_OPTIONS, its
 * short-option string with "h", and cli_parse() (or the command's own
 * loop) hands each option to cli_common_option() first: -h/--help print
 * usage on stdout and --version "ctrd VERSION", both give exit status 0.
 * Any other c gives -1 (the command's own switch goes on). */
#define CLI_OPT_VERSION 0x7f00
#define CLI_COMMON_OPTIONS                                                     \
    {"help", no_argument, NULL, 'h'},                                          \
    {                                                                          \
        "version", no_argument, NULL, CLI_OPT_VERSION                          \
    }
int cli_common_option(int c, const char *usage);

/* The flags of the engine that ingest and serve share, with one meaning:
 * --data DIR, --join-window D, --click-timeout D, --checkpoint-every SIZE,
 * --memory SIZE, --threads N. Their table starts with CLI_ENGINE_OPTIONS; the
 * loop hands each option to cli_engine_option(). */
/* The most input between checkpoints: a checkpoint's run of one hour then
 * holds well under the 2^32 ads a run can (qsrun.h), an ad taking at
 * least two bytes of input. */
#define CLI_CHECKPOINT_EVERY_MAX (UINT64_C(4) << 30)
/* The least --memory: below it the budget's shares (checkpoint.c,
 * MEMORY) are smaller than one batch of input. */
#define CLI_MEMORY_MIN (UINT64_C(16) << 20)

struct cli_engine_flags {
    struct engine_config engine; /* data_dir, windows, retention, workers */
    uint64_t checkpoint_every;   /* bytes of input between checkpoints */
};
#define CLI_OPT_JOIN_WINDOW 0x7f01
#define CLI_OPT_CLICK_TIMEOUT 0x7f02
#define CLI_OPT_CHECKPOINT_EVERY 0x7f03
#define CLI_OPT_THREADS 0x7f04
#define CLI_OPT_MEMORY 0x7f05
#define CLI_ENGINE_OPTIONS                                                     \
    {"data", required_argument, NULL, 'd'},                                    \
        {"join-window", required_argument, NULL, CLI_OPT_JOIN_WINDOW},         \
        {"click-timeout", required_argument, NULL, CLI_OPT_CLICK_TIMEOUT},     \
        {"checkpoint-every", required_argument, NULL,                          \
         CLI_OPT_CHECKPOINT_EVERY},                                            \
        {"memory", required_argument, NULL, CLI_OPT_MEMORY},                   \
    {                                                                          \
        "threads", required_argument, NULL, CLI_OPT_THREADS                    \
    }
/* The defaults: ./ctrd-data, a 24h join window (queries kept an hour
 * longer), a 10m click timeout, a checkpoint every 256M, 1G of memory, a
 * worker per core. */
void cli_engine_defaults(struct cli_engine_flags *f);
/* 0 (f set) or the usage error (2) for an engine option c; -1 for any
 * other c. */
int cli_engine_option(const char *cmd, int c, const char *arg,
                      struct cli_engine_flags *f);

/* arg as an index into choices[n]: 0 with *index set, or the usage error
 * (status 2) "ctrd CMD: FLAG: 'arg' is not one of: a, b, c" on stderr. */
int cli_choice(const char *cmd, const char *flag, const char *arg,
               const char *const *choices, size_t n, int *index);

/* "250ms", "30s", "10m", "24h" (a bare number is seconds). 0 ok, CTRD_EINVAL
 * bad. */
int cli_parse_duration_ms(const char *s, int64_t *ms);

/* "4096", "64K", "16M", "2G" (powers of 1024). 0 ok, CTRD_EINVAL bad. */
int cli_parse_size_bytes(const char *s, uint64_t *bytes);

/* A decimal unsigned 64-bit number, nothing else. 0 ok, CTRD_EINVAL bad. */
int cli_parse_u64(const char *s, uint64_t *v);

/* Decimal ms since the epoch (up to INT64_MAX) or RFC 3339. 0 ok, CTRD_EINVAL
 * bad. */
int cli_parse_time_ms(const char *s, int64_t *ms);

/* Reads a command's options (argv[0] is the command) with getopt_long():
 * opts starts with CLI_COMMON_OPTIONS and shortopts has "h". Answers
 * -h/--help and --version (cli_common_option()), hands every other option
 * to on_option(ctx, c, optarg), which returns 0 or an exit status to stop
 * at (2 from cli_usage()), and refuses unknown options and operands with a
 * usage error, unless shortopts starts with "-": then each operand comes
 * to on_option as c 1. Returns -1 to go on, else the exit status. */
int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
              const char *shortopts, const struct option *opts,
              int (*on_option)(void *ctx, int c, const char *arg), void *ctx);

/* Prints "ctrd CMD: message (see 'ctrd CMD --help')" as one line on stderr;
 * returns 2, the usage-error exit status: `return cli_usage(...)`. */
int cli_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
