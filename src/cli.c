/* cli: shared flag parsers; see cli.h. */
#include "cli.h"

#include "record.h"
#include "sharder.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cli_parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return CTRD_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return CTRD_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return CTRD_EINVAL;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* Splits "123unit" into the number and the unit suffix. */
static int split_number(const char *s, uint64_t *num, const char **unit)
{
    char digits[32];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof digits)
        return CTRD_EINVAL;
    memcpy(digits, s, n);
    digits[n] = '\0';
    *unit = s + n;
    return cli_parse_u64(digits, num);
}

struct unit {
    const char *suffix;
    uint64_t scale;
};

/* A number with one of the unit suffixes, scaled, at most max. */
static int parse_scaled(const char *s, const struct unit *units, size_t n,
                        uint64_t max, uint64_t *out)
{
    uint64_t v;
    const char *suffix;
    if (split_number(s, &v, &suffix) != 0)
        return CTRD_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(suffix, units[i].suffix) == 0) {
            if (v > max / units[i].scale)
                return CTRD_EINVAL;
            *out = v * units[i].scale;
            return 0;
        }
    }
    return CTRD_EINVAL;
}

int cli_parse_duration_ms(const char *s, int64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000},
    };
    uint64_t v;
    if (parse_scaled(s, units, sizeof units / sizeof units[0], INT64_MAX, &v) !=
        0)
        return CTRD_EINVAL;
    *ms = (int64_t)v;
    return 0;
}

int cli_parse_size_bytes(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {
        {"", 1},
        {"K", 1ull << 10},
        {"M", 1ull << 20},
        {"G", 1ull << 30},
    };
    return parse_scaled(s, units, sizeof units / sizeof units[0], UINT64_MAX,
                        bytes);
}

int cli_parse_time_ms(const char *s, int64_t *ms)
{
    uint64_t v;
    /* Plain ms may name any instant a range can end at, even past the last
     * one a record may have. */
    if (cli_parse_u64(s, &v) == 0) {
        if (v > (uint64_t)INT64_MAX)
            return CTRD_EINVAL;
        *ms = (int64_t)v;
        return 0;
    }
    return rec_parse_time(s, strlen(s), ms) == 0 ? 0 : CTRD_EINVAL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "ctrd %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'ctrd %s --help')\n", cmd);
    return 2;
}

int cli_common_option(int c, const char *usage)
{
    if (c == 'h') {
        fputs(usage, stdout);
        return 0;
    }
    if (c == CLI_OPT_VERSION) {
        printf("ctrd %s\n", CTRD_VERSION);
        return 0;
    }
    return CTRD_EINVAL;
}

int cli_choice(const char *cmd, const char *flag, const char *arg,
               const char *const *choices, size_t n, int *index)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(arg, choices[i]) == 0) {
            *index = (int)i;
            return 0;
        }
    }
    fprintf(stderr, "ctrd %s: %s: '%s' is not one of:", cmd, flag, arg);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s %s", i ? "," : "", choices[i]);
    fprintf(stderr, " (see 'ctrd %s --help')\n", cmd);
    return 2;
}

/* The option getopt_long() could not take, as written: a long one is the
 * argument optind just passed; a short one is "-C" (C in optopt), which may
 * sit in a cluster optind has not passed yet ("-xh": argv[optind]). A long
 * option's optopt is 0 or its val, which may be a character too: then the
 * argument just passed, "--...", tells it from a short one. */
static int bad_option(const char *cmd, int argc, char **argv)
{
    const char *last = argv[optind - 1];
    const char *next = optind < argc ? argv[optind] : "";
    int is_char = optopt > ' ' && optopt < 0x7f;
    int in_cluster =
        is_char && next[0] == '-' && next[1] != '-' && strchr(next + 1, optopt);
    if (is_char && (strncmp(last, "--", 2) != 0 || in_cluster))
        return cli_usage(cmd, "unknown or incomplete option '-%c'", optopt);
    return cli_usage(cmd, "unknown or incomplete option '%s'", last);
}

int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
              const char *shortopts, const struct option *opts,
              int (*on_option)(void *ctx, int c, const char *arg), void *ctx)
{
    int c, rc;
    optind = 0; /* glibc: a full restart, shortopts' "-" read again */
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, opts, NULL)) != -1) {
        if ((rc = cli_common_option(c, usage)) >= 0)
            return rc;
        if (c == '?' || c == ':')
            return bad_option(cmd, argc, argv);
        if ((rc = on_option(ctx, c, optarg)) != 0)
            return rc;
    }
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}

#define RETENTION_AFTER_WINDOW_MS 3600000LL

void cli_engine_defaults(struct cli_engine_flags *f)
{
    *f = (struct cli_engine_flags){
        .engine = {.data_dir = "ctrd-data",
                   .join_window_ms = 24 * 3600000LL,
                   .click_timeout_ms = 10 * 60000LL,
                   .retention_ms = 24 * 3600000LL + RETENTION_AFTER_WINDOW_MS,
                   .memory_bytes = UINT64_C(1) << 30},
        .checkpoint_every = 256u << 20};
}

int cli_engine_option(const char *cmd, int c, const char *arg,
                      struct cli_engine_flags *f)
{
    struct engine_config *e = &f->engine;
    uint64_t n;
    switch (c) {
    case 'd':
        e->data_dir = arg;
        return 0;
    case CLI_OPT_JOIN_WINDOW:
    case CLI_OPT_CLICK_TIMEOUT:
        if (cli_parse_duration_ms(arg, c == CLI_OPT_JOIN_WINDOW
                                           ? &e->join_window_ms
                                           : &e->click_timeout_ms) ||
            e->join_window_ms > INT64_MAX - RETENTION_AFTER_WINDOW_MS)
            return cli_usage(cmd, "bad duration '%s'", arg);
        e->retention_ms = e->join_window_ms + RETENTION_AFTER_WINDOW_MS;
        return 0;
    case CLI_OPT_CHECKPOINT_EVERY:
        if (cli_parse_size_bytes(arg, &f->checkpoint_every) ||
            f->checkpoint_every == 0 ||
            f->checkpoint_every > CLI_CHECKPOINT_EVERY_MAX)
            return cli_usage(cmd, "--checkpoint-every: 1 to 4G, not '%s'", arg);
        return 0;
    case CLI_OPT_MEMORY:
        if (cli_parse_size_bytes(arg, &e->memory_bytes) ||
            e->memory_bytes < CLI_MEMORY_MIN)
            return cli_usage(cmd, "--memory: at least 16M, not '%s'", arg);
        return 0;
    case CLI_OPT_THREADS:
        if (cli_parse_u64(arg, &n) || n == 0 || n > SHARD_WORKERS_MAX)
            return cli_usage(cmd, "--threads: 1 to %u", SHARD_WORKERS_MAX);
        e->n_workers = (unsigned)n;
        return 0;
    }
    return -1;
}
