/* cli: shared flag parsers; see cli.h. */
#include "cli.h"

#include "record.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cli_parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
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
        return -1;
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
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(suffix, units[i].suffix) == 0) {
            if (v > max / units[i].scale)
                return -1;
            *out = v * units[i].scale;
            return 0;
        }
    }
    return -1;
}

int cli_parse_duration_ms(const char *s, int64_t *ms)
{
    static const struct unit units[] = {
        {"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000},
    };
    uint64_t v;
    if (parse_scaled(s, units, sizeof units / sizeof units[0], INT64_MAX, &v) !=
        0)
        return -1;
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
            return -1;
        *ms = (int64_t)v;
        return 0;
    }
    return rec_parse_time(s, strlen(s), ms);
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
    return -1;
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

int cli_bad_option(const char *cmd, char **argv)
{
    return cli_usage(cmd, "unknown or incomplete option '%s'",
                     argv[optind - 1]);
}

int cli_no_operands(const char *cmd, int argc, char **argv)
{
    if (optind < argc)
        return cli_usage(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}
