/* Unit tests of cli: the duration, size, number and time flag parsers
 * (SPEC §4: durations ms, s, m, h; sizes K, M, G). */
#include "check.h"
#include "cli.h"

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))
#define BAD (-1)

static void test_durations(void)
{
    static const struct { const char *s; int rc; int64_t ms; } rows[] = {
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
            CHECK_FAIL_AT("duration '%s': output written on error",
                          rows[i].s);
    }
}

static void test_sizes(void)
{
    static const struct { const char *s; int rc; uint64_t bytes; } rows[] = {
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
                          rows[i].s, rc, (unsigned long long)bytes,
                          rows[i].rc, (unsigned long long)rows[i].bytes);
    }
}

static void test_u64(void)
{
    static const struct { const char *s; int rc; uint64_t v; } rows[] = {
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
    static const struct { const char *s; int rc; int64_t ms; } rows[] = {
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

static void test_usage_returns_2(void)
{
    FILE *saved = stderr;
    FILE *sink = fopen("/dev/null", "w");
    CHECK(sink != NULL);
    if (!sink)
        return;
    stderr = sink;
    int rc = cli_usage("query", "--ad: not an ad id: '%s'", "x");
    stderr = saved;
    fclose(sink);
    CHECK_EQ_I64(rc, 2);
}

int main(void)
{
    RUN(test_durations);
    RUN(test_sizes);
    RUN(test_u64);
    RUN(test_times);
    RUN(test_usage_returns_2);
    return check_done();
}
