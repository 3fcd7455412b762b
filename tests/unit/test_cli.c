/* Unit tests of cli: the duration, size, number and time flag parsers
 * (SPEC §4: durations ms, s, m, h; sizes K, M, G), the choice check, the
 * option loop every command uses (cli_parse) and the engine flags. What
 * they print goes to /dev/null; their exit statuses and results are
 * checked. */
#include "check.h"
#include "cli.h"

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))
#define BAD CTRD_EINVAL

static void test_durations(void)
{
    static const struct {
        const char *s;
        int rc;
        int64_t ms;
    } rows[] = {
        {"250ms", 0, 250},
        {"30s", 0, 30000},
        {"10m", 0, 600000},
        {"24h", 0, 86400000},
        {"5", 0, 5000}, /* a bare number is seconds */
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"007s", 0, 7000},
        {"1ms", 0, 1},
        {"9223372036854775807ms", 0, INT64_MAX},
        {"9223372036854775808ms", BAD, 0},
        {"9223372036854775s", 0, INT64_C(9223372036854775000)},
        {"9223372036854776s", BAD, 0},
        {"2562047788015h", 0, INT64_C(2562047788015) * 3600000},
        {"2562047788016h", BAD, 0},
        {"99999999999999999999s", BAD, 0}, /* u64 overflow */
        {"", BAD, 0},
        {"ms", BAD, 0},
        {"s", BAD, 0},
        {"5x", BAD, 0},
        {"5sm", BAD, 0},
        {"5 s", BAD, 0},
        {" 5s", BAD, 0},
        {"5s ", BAD, 0},
        {"-5s", BAD, 0},
        {"+5s", BAD, 0},
        {"1.5s", BAD, 0},
        {"5d", BAD, 0},
        {"5hh", BAD, 0},
        {"5mss", BAD, 0},
    };
    for (size_t i = 0; i < ROWS(rows); i++) {
        int64_t ms = -12345;
        int rc = cli_parse_duration_ms(rows[i].s, &ms);
        if (rc != rows[i].rc || (rc == 0 && ms != rows[i].ms))
            CHECK_FAIL_AT("duration '%s': rc %d ms %lld, want rc %d ms %lld",
                          rows[i].s, rc, (long long)ms, rows[i].rc,
                          (long long)rows[i].ms);
        if (rc != 0 && ms != -12345)
            CHECK_FAIL_AT("duration '%s': output written on error", rows[i].s);
    }
}

static void test_sizes(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t bytes;
    } rows[] = {
        {"4096", 0, 4096},
        {"0", 0, 0},
        {"64K", 0, 65536},
        {"16M", 0, 16777216},
        {"2G", 0, UINT64_C(2147483648)},
        {"1G", 0, UINT64_C(1) << 30},
        {"17179869183G", 0, UINT64_MAX - ((UINT64_C(1) << 30) - 1)},
        {"17179869184G", BAD, 0}, /* 2^64 */
        {"18446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", BAD, 0},
        {"", BAD, 0},
        {"K", BAD, 0},
        {"1T", BAD, 0},
        {"1.5M", BAD, 0},
        {"-1K", BAD, 0},
        {"1 K", BAD, 0},
        {"1KK", BAD, 0},
        {"M1", BAD, 0},
    };
    for (size_t i = 0; i < ROWS(rows); i++) {
        uint64_t bytes = 12345;
        int rc = cli_parse_size_bytes(rows[i].s, &bytes);
        if (rc != rows[i].rc || (rc == 0 && bytes != rows[i].bytes))
            CHECK_FAIL_AT("size '%s': rc %d bytes %llu, want rc %d bytes %llu",
                          rows[i].s, rc, (unsigned long long)bytes, rows[i].rc,
                          (unsigned long long)rows[i].bytes);
    }
}

static void test_u64(void)
{
    static const struct {
        const char *s;
        int rc;
        uint64_t v;
    } rows[] = {
        {"0", 0, 0},
        {"1", 0, 1},
        {"007", 0, 7},
        {"18446744073709551615", 0, UINT64_MAX},
        {"018446744073709551615", 0, UINT64_MAX},
        {"18446744073709551616", BAD, 0},
        {"18446744073709551620", BAD, 0},
        {"99999999999999999999", BAD, 0},
        {"184467440737095516150", BAD, 0},
        {"", BAD, 0},
        {"-1", BAD, 0},
        {"+1", BAD, 0},
        {" 1", BAD, 0},
        {"1 ", BAD, 0},
        {"1x", BAD, 0},
        {"0x10", BAD, 0},
        {"1e3", BAD, 0},
    };
    for (size_t i = 0; i < ROWS(rows); i++) {
        uint64_t v = 12345;
        int rc = cli_parse_u64(rows[i].s, &v);
        if (rc != rows[i].rc || (rc == 0 && v != rows[i].v))
            CHECK_FAIL_AT("u64 '%s': rc %d v %llu, want rc %d v %llu",
                          rows[i].s, rc, (unsigned long long)v, rows[i].rc,
                          (unsigned long long)rows[i].v);
        if (rc != 0 && v != 12345)
            CHECK_FAIL_AT("u64 '%s': output written on error", rows[i].s);
    }
}

static void test_times(void)
{
    static const struct {
        const char *s;
        int rc;
        int64_t ms;
    } rows[] = {
        {"1763805600123", 0, INT64_C(1763805600123)},
        {"0", 0, 0},
        {"2025-11-22T10:00:00.123Z", 0, INT64_C(1763805600123)},
        {"2025-11-22T12:00:00+02:00", 0, INT64_C(1763805600000)},
        {"1970-01-01T00:00:00Z", 0, 0},
        {"", BAD, 0},
        {"yesterday", BAD, 0},
        {"2025-11-22", BAD, 0},
        {"-1", BAD, 0},
    };
    for (size_t i = 0; i < ROWS(rows); i++) {
        int64_t ms = -12345;
        int rc = cli_parse_time_ms(rows[i].s, &ms);
        if (rc != rows[i].rc || (rc == 0 && ms != rows[i].ms))
            CHECK_FAIL_AT("time '%s': rc %d ms %lld, want rc %d ms %lld",
                          rows[i].s, rc, (long long)ms, rows[i].rc,
                          (long long)rows[i].ms);
    }
}

/* What the last quietly() printed (its start). */
static char said[512];

/* Runs fn with stdout and stderr sent to a temporary file, kept in said. */
static int quietly(int (*fn)(void *), void *arg)
{
    FILE *out = stdout, *err = stderr;
    FILE *sink = tmpfile();
    if (!sink)
        return -99;
    stdout = stderr = sink;
    int rc = fn(arg);
    stdout = out;
    stderr = err;
    rewind(sink);
    said[fread(said, 1, sizeof said - 1, sink)] = '\0';
    fclose(sink);
    return rc;
}

static int usage_error(void *arg)
{
    (void)arg;
    return cli_usage("query", "--ad: not an ad id: '%s'", "x");
}

static void test_usage_returns_2(void)
{
    CHECK_EQ_I64(quietly(usage_error, NULL), 2);
}

static const char *const sorts[] = {"impressions", "clicks", "ctr", "term"};

struct choice_case {
    const char *arg;
    int index;
};

static int choose(void *arg)
{
    struct choice_case *c = arg;
    return cli_choice("query", "--sort", c->arg, sorts, 4, &c->index);
}

static void test_choice(void)
{
    struct choice_case c = {"ctr", -1};
    CHECK_EQ_I64(quietly(choose, &c), 0);
    CHECK_EQ_I64(c.index, 2);
    c = (struct choice_case){"term", -1};
    CHECK_EQ_I64(quietly(choose, &c), 0);
    CHECK_EQ_I64(c.index, 3);
    c = (struct choice_case){"foo", -1};
    CHECK_EQ_I64(quietly(choose, &c), 2);
    CHECK_EQ_I64(c.index, -1);           /* untouched */
    c = (struct choice_case){"CTR", -1}; /* exact names only */
    CHECK_EQ_I64(quietly(choose, &c), 2);
}

/* A command with --name S, --flag, -h, --version and the engine flags;
 * on_option records what it got. */
struct parsed {
    int argc;
    char *argv[8];
    const char *shortopts;
    const char *name, *operands[4];
    int flag, n_operands, stop_at_flag;
    struct cli_engine_flags engine;
};

static int on_option(void *ctx, int c, const char *arg)
{
    struct parsed *p = ctx;
    switch (c) {
    case 'n':
        p->name = arg;
        return 0;
    case 'f':
        p->flag++;
        return p->stop_at_flag ? 2 : 0;
    case 1:
        p->operands[p->n_operands++] = arg;
        return 0;
    }
    int rc = cli_engine_option("test", c, arg, &p->engine);
    return rc >= 0 ? rc : 99; /* 99: an option no one took */
}

static int parse(void *arg)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        CLI_ENGINE_OPTIONS,
        {"name", required_argument, 0, 'n'},
        {"flag", no_argument, 0, 'f'},
        {0, 0, 0, 0},
    };
    struct parsed *p = arg;
    cli_engine_defaults(&p->engine);
    return cli_parse(p->argc, p->argv, "test", "usage: ctrd test\n",
                     p->shortopts, opts, on_option, p);
}

/* Parses "test" followed by the words (at most 6) with shortopts. */
static int parse_words(struct parsed *p, const char *shortopts,
                       const char *const *words)
{
    *p = (struct parsed){.shortopts = shortopts};
    p->argv[p->argc++] = "test";
    for (; *words; words++)
        p->argv[p->argc++] = (char *)*words;
    return quietly(parse, p);
}

static void test_parse(void)
{
    struct parsed p;
    CHECK_EQ_I64(parse_words(&p, "h",
                             (const char *const[]){"--name", "x", "--flag",
                                                   "--flag", NULL}),
                 -1);
    CHECK(p.name && strcmp(p.name, "x") == 0);
    CHECK_EQ_I64(p.flag, 2);
    /* help and version: exit 0 at once, later options unread */
    CHECK_EQ_I64(
        parse_words(&p, "h", (const char *const[]){"-h", "--flag", NULL}), 0);
    CHECK_EQ_I64(p.flag, 0);
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"--help", NULL}),
                 0);
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"--version", NULL}),
                 0);
    /* usage errors: unknown, missing value, operand */
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"--bogus", NULL}),
                 2);
    CHECK_EQ_STR(said, "ctrd test: unknown or incomplete option '--bogus' "
                       "(see 'ctrd test --help')\n");
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"-x", NULL}), 2);
    CHECK_EQ_STR(said, "ctrd test: unknown or incomplete option '-x' "
                       "(see 'ctrd test --help')\n");
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"--name", NULL}),
                 2);
    CHECK_EQ_STR(said, "ctrd test: unknown or incomplete option '--name' "
                       "(see 'ctrd test --help')\n");
    /* a value given to a switch: the argument as written */
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){"--flag=1", NULL}),
                 2);
    CHECK(strstr(said, "option '--flag=1'") != NULL);
    /* a short option inside a cluster getopt has not passed yet: named as
     * itself, not as the argument before the cluster */
    CHECK_EQ_I64(
        parse_words(&p, "h", (const char *const[]){"--name", "n", "-xh", NULL}),
        2);
    CHECK(strstr(said, "option '-x'") != NULL);
    CHECK_EQ_I64(
        parse_words(&p, "h", (const char *const[]){"--flag", "-xh", NULL}), 2);
    CHECK(strstr(said, "option '-x'") != NULL);
    CHECK_EQ_I64(
        parse_words(&p, "h", (const char *const[]){"--flag", "extra", NULL}),
        2);
    /* on_option's status stops the loop */
    p = (struct parsed){0};
    *p.argv = "test";
    p.argv[1] = "--flag";
    p.argv[2] = "--flag";
    p.argc = 3;
    p.shortopts = "h";
    p.stop_at_flag = 1;
    CHECK_EQ_I64(quietly(parse, &p), 2);
    CHECK_EQ_I64(p.flag, 1);
    /* "-": operands come in order, between options */
    CHECK_EQ_I64(
        parse_words(&p, "-h", (const char *const[]){"a", "--flag", "b", NULL}),
        -1);
    CHECK_EQ_I64(p.n_operands, 2);
    CHECK(p.n_operands == 2 && strcmp(p.operands[0], "a") == 0 &&
          strcmp(p.operands[1], "b") == 0);
    CHECK_EQ_I64(p.flag, 1);
}

static void test_engine_flags(void)
{
    struct parsed p;
    CHECK_EQ_I64(parse_words(&p, "h", (const char *const[]){NULL}), -1);
    CHECK(strcmp(p.engine.engine.data_dir, "ctrd-data") == 0);
    CHECK_EQ_I64(p.engine.engine.join_window_ms, 24 * 3600000LL);
    CHECK_EQ_I64(p.engine.engine.click_timeout_ms, 10 * 60000LL);
    CHECK_EQ_I64(p.engine.engine.retention_ms, 25 * 3600000LL);
    CHECK_EQ_U64(p.engine.checkpoint_every, 256u << 20);
    CHECK_EQ_U64(p.engine.engine.n_workers, 0);
    CHECK_EQ_I64(
        parse_words(&p, "h",
                    (const char *const[]){"--data", "d", "--join-window", "1h",
                                          "--threads", "3", NULL}),
        -1);
    CHECK(strcmp(p.engine.engine.data_dir, "d") == 0);
    CHECK_EQ_I64(p.engine.engine.join_window_ms, 3600000);
    CHECK_EQ_I64(p.engine.engine.retention_ms, 2 * 3600000); /* window + 1h */
    CHECK_EQ_U64(p.engine.engine.n_workers, 3);
    CHECK_EQ_I64(
        parse_words(&p, "h",
                    (const char *const[]){"--click-timeout", "5s",
                                          "--checkpoint-every", "1M", NULL}),
        -1);
    CHECK_EQ_I64(p.engine.engine.click_timeout_ms, 5000);
    CHECK_EQ_U64(p.engine.checkpoint_every, 1u << 20);
    static const char *const bad[][3] = {
        {"--threads", "0"},
        {"--threads", "65"},
        {"--threads", "x"},
        {"--checkpoint-every", "0"},
        {"--join-window", "5x"},
        {"--click-timeout", "-1m"},
        {"--join-window", "9223372036854775807ms"},
    };
    for (size_t i = 0; i < ROWS(bad); i++) {
        if (parse_words(&p, "h", bad[i]) != 2)
            CHECK_FAIL_AT("%s %s: not a usage error", bad[i][0], bad[i][1]);
    }
    CHECK_EQ_I64(
        parse_words(&p, "h", (const char *const[]){"--threads", "64", NULL}),
        -1);
}

int main(void)
{
    RUN(test_durations);
    RUN(test_sizes);
    RUN(test_u64);
    RUN(test_times);
    RUN(test_usage_returns_2);
    RUN(test_choice);
    RUN(test_parse);
    RUN(test_engine_flags);
    return check_done();
}
