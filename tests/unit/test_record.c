/* Unit tests of record: every parser reason in both formats, the value
 * rules of SPEC §1.3, term normalisation (§2), and the order in which
 * reasons win when a line has several defects. */
#include "check.h"
#include "record.h"

#include <stdlib.h>
#include <time.h>

/* Reasons the tests below have seen, to prove every parser reason is
 * reachable (test_all_reasons_reached runs last). */
static int reason_seen[REC_REASON_COUNT];

static enum rec_reason query_n(enum rec_format fmt, const char *line,
                               size_t len, struct rec_query *q)
{
    enum rec_reason r = rec_parse_query(fmt, line, len, q);
    if ((unsigned)r < REC_REASON_COUNT)
        reason_seen[r] = 1;
    return r;
}

static enum rec_reason click_n(enum rec_format fmt, const char *line,
                               size_t len, struct rec_click *c)
{
    enum rec_reason r = rec_parse_click(fmt, line, len, c);
    if ((unsigned)r < REC_REASON_COUNT)
        reason_seen[r] = 1;
    return r;
}

static enum rec_reason query(enum rec_format fmt, const char *line,
                             struct rec_query *q)
{
    return query_n(fmt, line, strlen(line), q);
}

struct row {
    const char *line;
    enum rec_reason want;
};

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))

/* Checks each row, naming the row that fails. */
static void check_rows(const struct row *rows, size_t n, enum rec_format fmt,
                       int is_click)
{
    struct rec_query q;
    struct rec_click c;

    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(rows[i].line);
        enum rec_reason r = is_click ? click_n(fmt, rows[i].line, len, &c)
                                     : query_n(fmt, rows[i].line, len, &q);
        if (r != rows[i].want)
            CHECK_FAIL_AT("%s line %s: got %s, want %s",
                          fmt == REC_TSV ? "tsv" : "ndjson", rows[i].line,
                          rec_reason_name(r), rec_reason_name(rows[i].want));
    }
}

/* Valid lines with the value of one field (or extra members) pasted in as
 * v; Q_HEAD opens a query line whose last member is the query string. */
#define Q_TIME(v)                                                              \
    "{\"time\":" v ",\"query_id\":1,\"query\":\"a\",\"ad_ids\":[]}"
#define Q_QID(v) "{\"time\":1,\"query_id\":" v ",\"query\":\"a\",\"ad_ids\":[]}"
#define Q_QUERY(v) "{\"time\":1,\"query_id\":1,\"query\":" v ",\"ad_ids\":[]}"
#define Q_ADS(v) "{\"time\":1,\"query_id\":1,\"query\":\"a\",\"ad_ids\":" v "}"
#define Q_EXTRA(v)                                                             \
    "{\"time\":1,\"query_id\":1,\"query\":\"a\",\"ad_ids\":[]," v "}"
#define Q_HEAD "{\"time\":1,\"query_id\":1,\"ad_ids\":[],\"query\":\""
#define C_CLICK_ID(v)                                                          \
    "{\"time\":1,\"query_id\":1,\"ad_id\":2,\"click_id\":" v "}"
#define C_AD_ID(v) "{\"time\":1,\"query_id\":1,\"ad_id\":" v "}"

static void test_json_syntax(void)
{
    static const struct row rows[] = {
        {"{\"time\":1763805600123,\"query_id\":\"18446744073709551615\","
         "\"query\":\"Running  Shoes\",\"ad_ids\":[1001,2002,3003]}",
         REC_OK},
        {" \t{ \"time\" : 1 , \"query_id\" : 1 , \"query\" : \"a\" , "
         "\"ad_ids\" : [ 1 , 2 ] } \t ",
         REC_OK},
        {"{\"time\":1,\n\"query_id\":1,\"query\":\"a\",\"ad_ids\":[]}", REC_OK},
        {"", REC_EMPTY},
        {"\r", REC_EMPTY},
        {" ", REC_BAD_JSON},
        {"\r\r", REC_BAD_JSON},
        {"[1,2]", REC_NOT_OBJECT},
        {"\"x\"", REC_NOT_OBJECT},
        {"123", REC_NOT_OBJECT},
        {"-1.5e3", REC_NOT_OBJECT},
        {"null", REC_NOT_OBJECT},
        {" [ {\"a\":[]} ] ", REC_NOT_OBJECT},
        {"[1,", REC_BAD_JSON},
        {"[1] x", REC_BAD_JSON},
        {"0123", REC_BAD_JSON},
        {"nul", REC_BAD_JSON},
        {"{}", REC_MISSING_TIME},
        {"{ }", REC_MISSING_TIME},
        {"{} x", REC_BAD_JSON},
        {"{}{}", REC_BAD_JSON},
        {"{", REC_BAD_JSON},
        {"}", REC_BAD_JSON},
        {"{,}", REC_BAD_JSON},
        {"{\"time\":1,}", REC_BAD_JSON},
        {"{\"time\" 1}", REC_BAD_JSON},
        {"{\"time\":}", REC_BAD_JSON},
        {"{\"time\":1 \"query_id\":1}", REC_BAD_JSON},
        {"{'time':1}", REC_BAD_JSON},
        {"{time:1}", REC_BAD_JSON},
        {Q_EXTRA("\"x\":01"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":+1"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":1."), REC_BAD_JSON},
        {Q_EXTRA("\"x\":.5"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":1e"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":1e+"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":-"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":-a"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":0x10"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":1 2"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":tru"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":True"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":nulll"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":NaN"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":Infinity"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"\\x\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"\\'\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"\\u12\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"\\u12g4\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"\\U0041\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"a\tb\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"a\x01\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"a\x1f\""), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"unterminated"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":\"trailing\\"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[1,]"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[,1]"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[1 2]"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":{\"b\"}"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":{\"b\":1,}"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":{1:1}"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[}"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":{]"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[{]}"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":[[]"), REC_BAD_JSON},
        {Q_EXTRA("\"x\":"), REC_BAD_JSON},
        /* valid values in ignored fields */
        {Q_EXTRA("\"a\":-0,\"b\":1.5e-3,\"c\":0.0,\"d\":1E+2,\"e\":-12.5E07"),
         REC_OK},
        {Q_EXTRA("\"e\":[true,false,null,{},[],{\"x\":[{\"y\":\"z\"}]}]"),
         REC_OK},
        {Q_EXTRA("\"s\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uABCD\""),
         REC_OK},
        {Q_EXTRA("\"s\":\"\\ud800 lone surrogates are valid JSON \\udc00\""),
         REC_OK},
        {Q_EXTRA("\"s\":\"raw DEL \x7f and \xc3\xa9\""), REC_OK},
        {Q_EXTRA("\"x\":1,\"x\":[2],\"x\":{}"), REC_OK},
        {Q_EXTRA("\"\":\"\""), REC_OK},
        {Q_EXTRA("\"Time\":1,\"TIME\":2,\"time \":3,\"ad_id\":4"), REC_OK},
        {Q_EXTRA("\"\\ud800\":1"), REC_OK},
        {Q_EXTRA("\"o\" \t:\t{ \"a\" : [ 1 , { } ] }"), REC_OK},
    };
    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
}

static void test_utf8(void)
{
    static const struct row rows[] = {
        {Q_EXTRA("\"x\":\"\xc2\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""), REC_OK},
        {Q_EXTRA("\"x\":\"\xed\x9f\xbf \xee\x80\x80 \xf4\x8f\xbf\xbf\""),
         REC_OK},
        {Q_EXTRA("\"x\":\"\xff\""), REC_BAD_UTF8},
        {Q_EXTRA("\"x\":\"\x80\""), REC_BAD_UTF8},
        {Q_EXTRA("\"x\":\"\xc0\xaf\""), REC_BAD_UTF8},         /* overlong */
        {Q_EXTRA("\"x\":\"\xc1\xbf\""), REC_BAD_UTF8},         /* overlong */
        {Q_EXTRA("\"x\":\"\xe0\x80\xaf\""), REC_BAD_UTF8},     /* overlong */
        {Q_EXTRA("\"x\":\"\xf0\x80\x80\xaf\""), REC_BAD_UTF8}, /* overlong */
        {Q_EXTRA("\"x\":\"\xed\xa0\x80\""), REC_BAD_UTF8},     /* U+D800 */
        {Q_EXTRA("\"x\":\"\xed\xbf\xbf\""), REC_BAD_UTF8},     /* U+DFFF */
        {Q_EXTRA("\"x\":\"\xf4\x90\x80\x80\""), REC_BAD_UTF8}, /* >10FFFF */
        {Q_EXTRA("\"x\":\"\xf5\x80\x80\x80\""), REC_BAD_UTF8},
        {Q_EXTRA("\"x\":\"\xe2\x82\""), REC_BAD_UTF8}, /* truncated */
        {Q_EXTRA("\"x\":\"\xf0\x9f\x98\""), REC_BAD_UTF8},
        {Q_EXTRA("\"x\":\"\xc3\""), REC_BAD_UTF8},
        {"{\"query\":\"\xe2\x82", REC_BAD_UTF8}, /* truncated at the end */
        {"{\"x\":\"\xff\"", REC_BAD_UTF8},       /* outranks bad_json */
        {"[\"\xff\"]", REC_BAD_UTF8},            /* outranks not_object */
        {"\xef\xbb\xbf{}", REC_BAD_JSON},        /* a BOM is not JSON */
        /* raw non-ASCII in the term, untouched by lower-casing */
        {Q_QUERY("\"\xc3\x80\xc3\xa9\""), REC_OK},
    };
    static const struct row clicks[] = {
        {C_CLICK_ID("\"\xc3\xa9\""), REC_OK},
        {C_CLICK_ID("\"\xc3\""), REC_BAD_UTF8},
        {C_CLICK_ID("\"\xed\xa0\x80\""), REC_BAD_UTF8},
        {"{\"ad_id\":\"\xff\"", REC_BAD_UTF8},
    };
    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    check_rows(clicks, ROWS(clicks), REC_NDJSON, 1);
}

static void test_duplicates(void)
{
    static const struct row rows[] = {
        {Q_EXTRA("\"time\":1"), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"query_id\":2"), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"query\":\"a\""), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"ad_ids\":[]"), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"t\\u0069me\":1"), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"\\u0071uery\\u005fid\":1"), REC_DUPLICATE_FIELD},
        {Q_EXTRA("\"ad_ids\":\"not even an array\""), REC_DUPLICATE_FIELD},
        /* outranks every field check, is outranked by bad_json */
        {"{\"time\":\"x\",\"time\":null}", REC_DUPLICATE_FIELD},
        {"{\"time\":1,\"time\":1", REC_BAD_JSON},
        {"{\"time\":1,\"time\":1,\"x\":[}", REC_BAD_JSON},
        /* named fields of the other record are ignored and may repeat */
        {Q_EXTRA("\"ad_id\":1,\"ad_id\":2,\"click_id\":1,\"click_id\":1"),
         REC_OK},
    };
    static const struct row clicks[] = {
        {"{\"time\":1,\"query_id\":1,\"ad_id\":2,\"ad_id\":2}",
         REC_DUPLICATE_FIELD},
        {C_CLICK_ID("\"a\",\"click_id\":\"a\""), REC_DUPLICATE_FIELD},
        {C_CLICK_ID("\"a\",\"cl\\u0069ck_id\":\"a\""), REC_DUPLICATE_FIELD},
        {C_AD_ID("2,\"query\":1,\"query\":2,\"ad_ids\":[],\"ad_ids\":3"),
         REC_OK},
    };
    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    check_rows(clicks, ROWS(clicks), REC_NDJSON, 1);
}

static void test_escaped_keys(void)
{
    struct rec_query q;
    const char *line = "{\"\\u0074\\u0069\\u006D\\u0065\":5,\"query\\u005Fid\":"
                       "7,\"q\\u0075ery\":\"a\",\"ad_id\\u0073\":[3]}";
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_OK);
    CHECK_EQ_I64(q.time_ms, 5);
    CHECK_EQ_U64(q.query_id, 7);
    CHECK_EQ_U64(q.n_ads, 1);
    /* a key longer than any name once decoded is no name */
    CHECK_EQ_I64(query(REC_NDJSON, Q_EXTRA("\"time\\u0000\":1"), &q), REC_OK);
    CHECK_EQ_I64(query(REC_NDJSON,
                       "{\"query_id\\u0000\":1,\"time\":1,\"query\":\"a\","
                       "\"ad_ids\":[]}",
                       &q),
                 REC_MISSING_QUERY_ID);
}

static void test_field_order(void)
{
    static const struct row rows[] = {
        {"{\"ad_ids\":\"x\",\"query\":1,\"query_id\":0,\"time\":-1}",
         REC_BAD_TIME},
        {"{\"ad_ids\":\"x\",\"query\":1,\"query_id\":0}", REC_MISSING_TIME},
        {"{\"ad_ids\":\"x\",\"query\":1,\"query_id\":0,\"time\":1}",
         REC_BAD_QUERY_ID},
        {"{\"ad_ids\":\"x\",\"query\":1,\"time\":1}", REC_MISSING_QUERY_ID},
        {"{\"ad_ids\":\"x\",\"query\":1,\"time\":1,\"query_id\":1}",
         REC_BAD_QUERY},
        {"{\"ad_ids\":\"x\",\"time\":1,\"query_id\":1}", REC_MISSING_QUERY},
        {"{\"ad_ids\":\"x\",\"query\":\" \",\"time\":1,\"query_id\":1}",
         REC_EMPTY_QUERY},
        {"{\"ad_ids\":\"x\",\"query\":\"\\ud800\",\"time\":1,\"query_id\":1}",
         REC_BAD_UTF8},
        {"{\"query\":\"\\ud800\",\"time\":\"x\",\"query_id\":1,\"ad_ids\":[]}",
         REC_BAD_TIME},
        {"{\"ad_ids\":\"x\",\"query\":\"a\",\"time\":1,\"query_id\":1}",
         REC_BAD_AD_IDS},
        {"{\"query\":\"a\",\"time\":1,\"query_id\":1}", REC_MISSING_AD_IDS},
    };
    static const struct row clicks[] = {
        {"{\"click_id\":\"\",\"ad_id\":-1,\"query_id\":0,\"time\":-1}",
         REC_BAD_TIME},
        {"{\"click_id\":\"\",\"ad_id\":-1,\"query_id\":0}", REC_MISSING_TIME},
        {"{\"click_id\":\"\",\"ad_id\":-1,\"query_id\":0,\"time\":1}",
         REC_BAD_QUERY_ID},
        {"{\"click_id\":\"\",\"ad_id\":-1,\"time\":1}", REC_MISSING_QUERY_ID},
        {"{\"click_id\":\"\",\"ad_id\":-1,\"time\":1,\"query_id\":1}",
         REC_BAD_AD_ID},
        {"{\"click_id\":\"\",\"time\":1,\"query_id\":1}", REC_MISSING_AD_ID},
        {"{\"click_id\":\"\",\"ad_id\":1,\"time\":1,\"query_id\":1}",
         REC_BAD_CLICK_ID},
        {"{\"ad_id\":1,\"time\":1,\"query_id\":1}", REC_OK},
    };
    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    check_rows(clicks, ROWS(clicks), REC_NDJSON, 1);
}

static void test_json_times(void)
{
    static const struct row rows[] = {
        {Q_TIME("0"), REC_OK},
        {Q_TIME("253402300799999"), REC_OK},
        {Q_TIME("253402300800000"), REC_BAD_TIME},
        {Q_TIME("18446744073709551616"), REC_BAD_TIME},
        {Q_TIME("-1"), REC_BAD_TIME},
        {Q_TIME("-0"), REC_BAD_TIME},
        {Q_TIME("1.0"), REC_BAD_TIME},
        {Q_TIME("1e3"), REC_BAD_TIME},
        {Q_TIME("01"), REC_BAD_JSON},
        {Q_TIME("\"1763805600123\""), REC_BAD_TIME},
        {Q_TIME("null"), REC_BAD_TIME},
        {Q_TIME("true"), REC_BAD_TIME},
        {Q_TIME("[1]"), REC_BAD_TIME},
        {Q_TIME("{\"ms\":1}"), REC_BAD_TIME},
        {Q_TIME("\"\""), REC_BAD_TIME},
        {Q_TIME("\"2026-11-22T10:00:00.123Z\""), REC_OK},
        {Q_TIME("\"2026-11-22T10:00:00\\u005a\""), REC_OK},
        {Q_TIME("\"2026-11-22T10:00:60Z\""), REC_BAD_TIME},
        {Q_TIME("\"1969-12-31T23:59:59.999Z\""), REC_BAD_TIME},
    };
    struct rec_query q;
    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    CHECK_EQ_I64(
        query(REC_NDJSON, Q_TIME("\"2026-11-22T10:00:00.123+05:30\""), &q),
        REC_OK);
    CHECK_EQ_I64(q.time_ms, 1795321800123);
    CHECK_EQ_I64(query(REC_NDJSON, Q_TIME("1763805600123"), &q), REC_OK);
    CHECK_EQ_I64(q.time_ms, 1763805600123);
}

struct time_row {
    const char *s;
    int64_t ms; /* -1: rejected */
};

/* rec_normalise_term: the normalisation a query's term gets, on its own
 * (what GET /v1/ads/{id}/series does with ?term=). */
static void test_normalise_term(void)
{
    static const struct {
        const char *in;
        enum rec_reason want;
        const char *out;
    } rows[] = {
        {"Red  Hat", REC_OK, "red hat"},
        {" \t\r\n RED\vhat\f ", REC_OK, "red hat"},
        {"\xC3\x89t\xC3\xA9 \xE2\x82\xAC", REC_OK,
         "\xC3\x89t\xC3\xA9 \xE2\x82\xAC"}, /* only ASCII lower-cased */
        {"", REC_EMPTY_QUERY, ""},
        {" \t ", REC_EMPTY_QUERY, ""},
        {"bad \xC0\xAF", REC_BAD_UTF8, ""}, /* overlong */
        {"\xED\xA0\x80", REC_BAD_UTF8, ""}, /* a surrogate */
    };
    char term[REC_TERM_MAX], big[REC_TERM_MAX + 2];
    uint32_t len;

    for (size_t i = 0; i < ROWS(rows); i++) {
        enum rec_reason r =
            rec_normalise_term(rows[i].in, strlen(rows[i].in), term, &len);
        CHECK_EQ_STR(rec_reason_name(r), rec_reason_name(rows[i].want));
        if (r == REC_OK && r == rows[i].want)
            CHECK_EQ_MEM(term, len, rows[i].out);
    }
    memset(big, 'A', sizeof big);
    CHECK_EQ_I64(rec_normalise_term(big, REC_TERM_MAX, term, &len), REC_OK);
    CHECK_EQ_U64(len, REC_TERM_MAX);
    CHECK(term[0] == 'a' && term[REC_TERM_MAX - 1] == 'a');
    CHECK_EQ_I64(rec_normalise_term(big, REC_TERM_MAX + 1, term, &len),
                 REC_QUERY_TOO_LONG);
    /* Spaces around do not count towards the length. */
    big[0] = ' ';
    big[REC_TERM_MAX + 1] = ' ';
    CHECK_EQ_I64(rec_normalise_term(big, REC_TERM_MAX + 2, term, &len), REC_OK);
}

static void test_parse_id(void)
{
    uint64_t v = 7;

    CHECK_EQ_I64(rec_parse_id("0", 1, &v), 0);
    CHECK_EQ_U64(v, 0);
    CHECK_EQ_I64(rec_parse_id("00042/terms", 5, &v), 0);
    CHECK_EQ_U64(v, 42);
    CHECK_EQ_I64(rec_parse_id("18446744073709551615", 20, &v), 0);
    CHECK_EQ_U64(v, UINT64_MAX);
    CHECK_EQ_I64(rec_parse_id("18446744073709551616", 20, &v), CTRD_EINVAL);
    CHECK_EQ_I64(rec_parse_id("", 0, &v), CTRD_EINVAL);
    CHECK_EQ_I64(rec_parse_id("12a", 3, &v), CTRD_EINVAL);
    CHECK_EQ_I64(rec_parse_id("-1", 2, &v), CTRD_EINVAL);
    CHECK_EQ_I64(rec_parse_id(" 1", 2, &v), CTRD_EINVAL);
    CHECK_EQ_U64(v, UINT64_MAX); /* unchanged by the failures */
}

static void test_parse_time(void)
{
    static const struct time_row rows[] = {
        {"0", 0},
        {"1763805600123", 1763805600123},
        {"0001763805600123", 1763805600123},
        {"253402300799999", 253402300799999},
        {"253402300800000", -1},
        {"18446744073709551615", -1},
        {"18446744073709551616", -1},
        {"99999999999999999999999999", -1},
        {"", -1},
        {"-1", -1},
        {"+1", -1},
        {"1.5", -1},
        {"1e3", -1},
        {" 1", -1},
        {"1 ", -1},
        {"2026-11-22T10:00:00.123Z", 1795341600123},
        {"2026-11-22t10:00:00.123z", 1795341600123},
        {"2026-11-22T10:00:00Z", 1795341600000},
        {"2026-11-22T10:00:00+05:30", 1795321800000},
        {"2026-11-22T10:00:00-08:00", 1795370400000},
        {"2026-11-22T10:00:00+00:00", 1795341600000},
        {"2026-11-22T10:00:00-00:00", 1795341600000},
        {"2026-11-22T10:00:00+23:59", 1795255260000},
        {"2026-11-22T10:00:00-23:59", 1795427940000},
        {"2026-11-22T10:00:00+24:00", -1},
        {"2026-11-22T10:00:00+23:60", -1},
        {"2026-11-22T10:00:00+0530", -1},
        {"2026-11-22T10:00:00+05:3", -1},
        {"2026-11-22T10:00:00+05", -1},
        {"2026-11-22T10:00:00", -1},
        {"2026-11-22T10:00Z", -1},
        {"2026-11-22 10:00:00Z", -1},
        {"2026-11-22T10:00:00Z ", -1},
        {" 2026-11-22T10:00:00Z", -1},
        {"2026-11-22T10:00:00ZZ", -1},
        {"2026-11-22T10:00:00.Z", -1},
        {"2026-11-22T10:00:00,5Z", -1},
        {"2026-1-22T10:00:00Z", -1},
        {"2026-11-22T1:00:00Z", -1},
        {"+2026-11-22T10:00:00Z", -1},
        {"2026-11-22", -1},
        {"2026-11-22T10:00:00.1Z", 1795341600100},
        {"2026-11-22T10:00:00.12Z", 1795341600120},
        {"2026-11-22T10:00:00.123Z", 1795341600123},
        {"2026-11-22T10:00:00.1239Z", 1795341600123},
        {"2026-11-22T10:00:00.99999Z", 1795341600999},
        {"2026-11-22T10:00:00.999999Z", 1795341600999},
        {"2026-11-22T10:00:00.9999999Z", 1795341600999},
        {"2026-11-22T10:00:00.99999999Z", 1795341600999},
        {"2026-11-22T10:00:00.999999999Z", 1795341600999},
        {"2026-11-22T10:00:00.0000000000000000000000000000009Z", 1795341600000},
        {"2026-11-22T10:00:00.5-08:00", 1795370400500},
        {"2028-02-29T00:00:00Z", 1835395200000},
        {"2000-02-29T12:34:56Z", 951827696000},
        {"2027-02-29T00:00:00Z", -1},
        {"2100-02-29T00:00:00Z", -1},
        {"2027-02-28T23:59:59.999Z", 1803859199999},
        {"2026-04-31T00:00:00Z", -1},
        {"2026-04-30T00:00:00Z", 1777507200000},
        {"2026-12-31T00:00:00Z", 1798675200000},
        {"2026-13-01T00:00:00Z", -1},
        {"2026-00-01T00:00:00Z", -1},
        {"2026-01-00T00:00:00Z", -1},
        {"2026-01-32T00:00:00Z", -1},
        {"2026-01-01T24:00:00Z", -1},
        {"2026-01-01T23:60:00Z", -1},
        {"2026-01-01T23:59:60Z", -1},
        {"2016-12-31T23:59:60Z", -1}, /* a real leap second, still no */
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
        {"1969-12-31T23:30:00-01:00", 1800000},
        {"1970-01-01T00:30:00+01:00", -1},
        {"0000-01-01T00:00:00Z", -1},
        {"9999-12-31T23:59:59.999Z", 253402300799999},
        {"9999-12-31T23:59:59.999+01:00", 253402297199999},
        {"9999-12-31T23:59:59.999-00:01", -1},
    };
    for (size_t i = 0; i < ROWS(rows); i++) {
        int64_t ms = -1;
        int rc = rec_parse_time(rows[i].s, strlen(rows[i].s), &ms);
        if (rc != (rows[i].ms < 0 ? CTRD_EINVAL : 0) ||
            (rc == 0 && ms != rows[i].ms))
            CHECK_FAIL_AT("rec_parse_time(\"%s\"): rc %d ms %" PRId64
                          ", want %" PRId64,
                          rows[i].s, rc, ms, rows[i].ms);
    }
}

/* Every day from 1970 to 9999 (and a moving time of day) agrees with the
 * C library's calendar. */
static void test_time_calendar(void)
{
    int64_t last_day = 253402300799999 / 86400000;
    int bad = 0;

    for (int64_t day = 0; day <= last_day && bad < 5; day++) {
        time_t t = (time_t)(day * 86400 + (day * 7919) % 86400);
        struct tm tm;
        char s[64];
        int64_t ms = -1;
        int frac = (int)(day % 1000);
        gmtime_r(&t, &tm);
        int n = snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        if (rec_parse_time(s, (size_t)n, &ms) != 0 ||
            ms != (int64_t)t * 1000 + frac) {
            CHECK_FAIL_AT("%s: %" PRId64 " != %" PRId64, s, ms,
                          (int64_t)t * 1000 + frac);
            bad++;
        }
    }
}

static void test_ids(void)
{
    static const struct row rows[] = {
        {Q_QID("18446744073709551615"), REC_OK},
        {Q_QID("\"18446744073709551615\""), REC_OK},
        {Q_QID("\"00000000000000000000018446744073709551615\""), REC_OK},
        {Q_QID("18446744073709551616"), REC_BAD_QUERY_ID},
        {Q_QID("\"18446744073709551616\""), REC_BAD_QUERY_ID},
        {Q_QID("\"99999999999999999999\""), REC_BAD_QUERY_ID},
        {Q_QID("\"000123\""), REC_OK},
        {Q_QID("000123"), REC_BAD_JSON},
        {Q_QID("0"), REC_BAD_QUERY_ID},
        {Q_QID("\"0\""), REC_BAD_QUERY_ID},
        {Q_QID("\"000\""), REC_BAD_QUERY_ID},
        {Q_QID("\"\""), REC_BAD_QUERY_ID},
        {Q_QID("\"12a\""), REC_BAD_QUERY_ID},
        {Q_QID("\" 1\""), REC_BAD_QUERY_ID},
        {Q_QID("\"1 \""), REC_BAD_QUERY_ID},
        {Q_QID("\"+1\""), REC_BAD_QUERY_ID},
        {Q_QID("\"-1\""), REC_BAD_QUERY_ID},
        {Q_QID("\"0x10\""), REC_BAD_QUERY_ID},
        {Q_QID("\"\\u0031\\u0032\""), REC_OK},
        {Q_QID("-1"), REC_BAD_QUERY_ID},
        {Q_QID("-0"), REC_BAD_QUERY_ID},
        {Q_QID("1.0"), REC_BAD_QUERY_ID},
        {Q_QID("1e3"), REC_BAD_QUERY_ID},
        {Q_QID("1E3"), REC_BAD_QUERY_ID},
        {Q_QID("null"), REC_BAD_QUERY_ID},
        {Q_QID("true"), REC_BAD_QUERY_ID},
        {Q_QID("[1]"), REC_BAD_QUERY_ID},
        {Q_QID("{}"), REC_BAD_QUERY_ID},
    };
    static const struct row clicks[] = {
        {C_AD_ID("0"), REC_OK},
        {C_AD_ID("\"0\""), REC_OK},
        {C_AD_ID("\"000\""), REC_OK},
        {C_AD_ID("18446744073709551615"), REC_OK},
        {C_AD_ID("\"18446744073709551615\""), REC_OK},
        {C_AD_ID("18446744073709551616"), REC_BAD_AD_ID},
        {C_AD_ID("\"18446744073709551616\""), REC_BAD_AD_ID},
        {C_AD_ID("-1"), REC_BAD_AD_ID},
        {C_AD_ID("2.5"), REC_BAD_AD_ID},
        {C_AD_ID("\"\""), REC_BAD_AD_ID},
        {C_AD_ID("null"), REC_BAD_AD_ID},
        {C_AD_ID("[2]"), REC_BAD_AD_ID},
        {"{\"time\":1,\"query_id\":0,\"ad_id\":1}", REC_BAD_QUERY_ID},
        {"{\"time\":1,\"query_id\":\"x\",\"ad_id\":1}", REC_BAD_QUERY_ID},
    };
    struct rec_query q;
    struct rec_click c;
    const char *line;

    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    check_rows(clicks, ROWS(clicks), REC_NDJSON, 1);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QID("18446744073709551615"), &q), REC_OK);
    CHECK_EQ_U64(q.query_id, UINT64_MAX);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QID("\"000123\""), &q), REC_OK);
    CHECK_EQ_U64(q.query_id, 123);
    line = "{\"time\":\"2026-11-22T10:00:12Z\",\"query_id\":"
           "\"18446744073709551615\",\"ad_id\":\"00\",\"click_id\":\"c-88\"}";
    CHECK_EQ_I64(click_n(REC_NDJSON, line, strlen(line), &c), REC_OK);
    CHECK_EQ_U64(c.query_id, UINT64_MAX);
    CHECK_EQ_U64(c.ad_id, 0);
    CHECK_EQ_I64(c.time_ms, 1795341612000);
}

/* Writes a JSON array or TSV list of n ids into buf: 100, 101, ... or all
 * 7 (same), with a bad entry at index bad_at (if >= 0). */
static void ad_list(char *buf, size_t size, int json, int n, int same,
                    int bad_at)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, size, "%s", json ? "[" : "");
    for (int i = 0; i < n; i++) {
        if (i == bad_at)
            at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? "," : "",
                                   json ? "null" : "x");
        else
            at += (size_t)snprintf(buf + at, size - at, "%s%d", i ? "," : "",
                                   same ? 7 : 100 + i);
    }
    snprintf(buf + at, size - at, "%s", json ? "]" : "");
}

static enum rec_reason query_with_ads(enum rec_format fmt, const char *ads,
                                      struct rec_query *q)
{
    char line[1024];
    if (fmt == REC_TSV)
        snprintf(line, sizeof line, "1\t1\t%s\ta", ads);
    else
        snprintf(line, sizeof line, Q_ADS("%s"), ads);
    return query(fmt, line, q);
}

static void test_ad_ids(void)
{
    static const struct row rows[] = {
        {Q_ADS("[]"), REC_OK},
        {Q_ADS("[0]"), REC_OK},
        {Q_ADS("[\"0001\",18446744073709551615]"), REC_OK},
        {Q_ADS("[18446744073709551616]"), REC_BAD_AD_IDS},
        {Q_ADS("[\"18446744073709551616\"]"), REC_BAD_AD_IDS},
        {Q_ADS("\"1,2\""), REC_BAD_AD_IDS},
        {Q_ADS("1"), REC_BAD_AD_IDS},
        {Q_ADS("null"), REC_BAD_AD_IDS},
        {Q_ADS("{}"), REC_BAD_AD_IDS},
        {Q_ADS("{\"0\":1}"), REC_BAD_AD_IDS},
        {Q_ADS("[1,\"x\"]"), REC_BAD_AD_IDS},
        {Q_ADS("[1,null]"), REC_BAD_AD_IDS},
        {Q_ADS("[1,-1]"), REC_BAD_AD_IDS},
        {Q_ADS("[1,1.5]"), REC_BAD_AD_IDS},
        {Q_ADS("[[1]]"), REC_BAD_AD_IDS},
        {Q_ADS("[{}]"), REC_BAD_AD_IDS},
        {Q_ADS("[\"\"]"), REC_BAD_AD_IDS},
        {Q_ADS("[1,]"), REC_BAD_JSON},
        {Q_ADS("[1"), REC_BAD_JSON},
        {Q_ADS("[1,01]"), REC_BAD_JSON},
        {Q_ADS("[[1],[}]"), REC_BAD_JSON},
    };
    struct rec_query q;
    char ads[512];

    check_rows(rows, ROWS(rows), REC_NDJSON, 0);
    for (int json = 0; json <= 1; json++) {
        enum rec_format fmt = json ? REC_NDJSON : REC_TSV;
        CHECK_EQ_I64(
            query_with_ads(fmt, json ? "[5,3,5,\"3\",9,5]" : "5,3,5,3,9,5", &q),
            REC_OK);
        CHECK_EQ_U64(q.n_ads, 3);
        CHECK_EQ_U64(q.ads[0], 5);
        CHECK_EQ_U64(q.ads[1], 3);
        CHECK_EQ_U64(q.ads[2], 9);
        ad_list(ads, sizeof ads, json, 32, 0, -1);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_OK);
        CHECK_EQ_U64(q.n_ads, 32);
        CHECK_EQ_U64(q.ads[31], 131);
        ad_list(ads, sizeof ads, json, 33, 0, -1);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_TOO_MANY_ADS);
        /* the raw count decides, before duplicates are removed */
        ad_list(ads, sizeof ads, json, 33, 1, -1);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_TOO_MANY_ADS);
        ad_list(ads, sizeof ads, json, 32, 1, -1);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_OK);
        CHECK_EQ_U64(q.n_ads, 1);
        /* a bad entry outranks too many entries, wherever it is */
        ad_list(ads, sizeof ads, json, 33, 0, 0);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_BAD_AD_IDS);
        ad_list(ads, sizeof ads, json, 40, 0, 39);
        CHECK_EQ_I64(query_with_ads(fmt, ads, &q), REC_BAD_AD_IDS);
    }
}

static void test_query_text(void)
{
    static const struct {
        const char *json, *term; /* term NULL: json is the reason's row */
    } rows[] = {
        {"\"Running  Shoes\"", "running shoes"},
        {"\"  Running \\t\\n Shoes  \"", "running shoes"},
        {"\"\\t\\n\\r\\f\\u000b a\\u000B\\u000c\\u0009b \\r\"", "a b"},
        {"\"ABCXYZ abcxyz @[`{ 0123\"", "abcxyz abcxyz @[`{ 0123"},
        {"\"\xc3\x80\xc3\x89 \\u00C0 \xce\xa3\"",
         "\xc3\x80\xc3\x89 \xc3\x80 \xce\xa3"},
        {"\"\\ud83d\\ude00 \\uD83D\\uDE00\"",
         "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80"},
        {"\"\\\" \\\\ \\/ \\b\"", "\" \\ / \b"},
        {"\"\\u00a0x\"", "\xc2\xa0x"}, /* NBSP is not white space */
        {"\"a\\u0085\"", "a\xc2\x85"},
        {"\"\\u0041\\u005A\"", "az"},
    };
    static const struct row bad[] = {
        {Q_QUERY("\"\""), REC_EMPTY_QUERY},
        {Q_QUERY("\"   \""), REC_EMPTY_QUERY},
        {Q_QUERY("\"\\t\\n\\r\\f\\u000b \""), REC_EMPTY_QUERY},
        {Q_QUERY("1"), REC_BAD_QUERY},
        {Q_QUERY("null"), REC_BAD_QUERY},
        {Q_QUERY("[\"a\"]"), REC_BAD_QUERY},
        {Q_QUERY("{\"q\":\"a\"}"), REC_BAD_QUERY},
        {Q_QUERY("\"\\ud800\""), REC_BAD_UTF8},
        {Q_QUERY("\"\\udc00\""), REC_BAD_UTF8},
        {Q_QUERY("\"a\\ud800b\""), REC_BAD_UTF8},
        {Q_QUERY("\"\\ud800\\u0041\""), REC_BAD_UTF8},
        {Q_QUERY("\"\\ud800\\ud800\""), REC_BAD_UTF8},
        {Q_QUERY("\"\\ude00\\ud83d\""), REC_BAD_UTF8},
        {Q_QUERY("\"\\ud83d\\\\ude00\""), REC_BAD_UTF8},
        {Q_QUERY("\" \\ud800 \""), REC_BAD_UTF8},
    };
    struct rec_query q;
    char line[256];

    for (size_t i = 0; i < ROWS(rows); i++) {
        snprintf(line, sizeof line, Q_QUERY("%s"), rows[i].json);
        if (query(REC_NDJSON, line, &q) != REC_OK)
            CHECK_FAIL_AT("%s rejected", line);
        else
            CHECK_EQ_MEM(q.term, q.term_len, rows[i].term);
    }
    check_rows(bad, ROWS(bad), REC_NDJSON, 0);
}

/* The string scan reads 8 bytes at a time: an escape, a quote or a control
 * byte must be found at every position of a word, in strings of every
 * length around the word sizes, and an id string's digits read the same
 * whether or not one of them is escaped. */
static void test_string_scan_positions(void)
{
    static const struct {
        const char *json, *term; /* term NULL: the line is bad_json */
    } specials[] = {
        {"\\\"", "\""}, {"\\\\", "\\"}, {"\\u0041", "a"},
        {"\x01", NULL}, {"\x1f", NULL}, {"\"", NULL},
    };
    struct rec_query q;
    char line[256], json[64], term[64];
    for (size_t s = 0; s < ROWS(specials); s++) {
        for (int len = 1; len <= 24; len++) {
            for (int at = 0; at < len; at++) {
                snprintf(json, sizeof json, "%.*s%s%.*s", at,
                         "bbbbbbbbbbbbbbbbbbbbbbbb", specials[s].json,
                         len - at - 1, "cccccccccccccccccccccccc");
                snprintf(line, sizeof line, Q_QUERY("\"%s\""), json);
                enum rec_reason r = query(REC_NDJSON, line, &q);
                if (!specials[s].term) {
                    if (r != REC_BAD_JSON)
                        CHECK_FAIL_AT("%s: got %s, want bad_json", line,
                                      rec_reason_name(r));
                    continue;
                }
                snprintf(term, sizeof term, "%.*s%s%.*s", at,
                         "bbbbbbbbbbbbbbbbbbbbbbbb", specials[s].term,
                         len - at - 1, "cccccccccccccccccccccccc");
                if (r != REC_OK)
                    CHECK_FAIL_AT("%s: got %s", line, rec_reason_name(r));
                else
                    CHECK_EQ_MEM(q.term, q.term_len, term);
            }
        }
    }
    /* "12345678901234567890" with digit k written \u003X. */
    static const char digits[] = "12345678901234567890";
    for (int k = 0; k < 20; k++) {
        snprintf(json, sizeof json, "\"%.*s\\u003%c%s\"", k, digits, digits[k],
                 digits + k + 1);
        snprintf(line, sizeof line, Q_QID("%s"), json);
        if (query(REC_NDJSON, line, &q) != REC_OK)
            CHECK_FAIL_AT("%s rejected", line);
        else
            CHECK(q.query_id == UINT64_C(12345678901234567890));
    }
}

static void test_query_nul(void)
{
    struct rec_query q;
    static const char tsv[] = "1\t1\t1\ta\0B";

    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\"\\u0000\""), &q), REC_OK);
    CHECK_EQ_U64(q.term_len, 1);
    CHECK_EQ_U64((unsigned char)q.term[0], 0);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\" A\\u0000B \""), &q), REC_OK);
    CHECK(q.term_len == 3 && memcmp(q.term, "a\0b", 3) == 0);
    CHECK_EQ_I64(query_n(REC_TSV, tsv, sizeof tsv - 1, &q), REC_OK);
    CHECK(q.term_len == 3 && memcmp(q.term, "a\0b", 3) == 0);
    /* a raw NUL is no JSON */
    CHECK_EQ_I64(query_n(REC_NDJSON, "{\"x\":\"\0\"}", 9, &q), REC_BAD_JSON);
    CHECK_EQ_I64(query_n(REC_NDJSON, "{}\0", 3, &q), REC_BAD_JSON);
}

/* A string of n bytes: unit repeated, between prefix and suffix. */
static char *build(const char *prefix, const char *unit, size_t n_units,
                   const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *s = malloc(lp + lu * n_units + ls + 1);
    char *at = s;
    if (!s)
        abort();
    memcpy(at, prefix, lp);
    at += lp;
    for (size_t i = 0; i < n_units; i++, at += lu)
        memcpy(at, unit, lu);
    memcpy(at, suffix, ls + 1);
    return s;
}

/* The term limit counts normalised bytes, in both formats. */
static void test_query_length(void)
{
    static const struct {
        const char *prefix, *unit;
        size_t n;
        const char *suffix;
        enum rec_reason want;
        size_t len;
    } rows[] = {
        {"", "a", 512, "", REC_OK, 512},
        {"", "a", 513, "", REC_QUERY_TOO_LONG, 0},
        {"", "a", 65000, "", REC_QUERY_TOO_LONG, 0},
        {"", " ", 3000, "", REC_EMPTY_QUERY, 0},
        {"x", "   ", 255, "", REC_OK, 1},
        {"x", "   ", 255, "y", REC_OK, 3},
        {"", "a ", 256, "", REC_OK, 511},
        {"", "a  ", 256, "a", REC_QUERY_TOO_LONG, 0},
        {"   ", "abc   ", 128, "   ", REC_OK, 511},
        {"", "a  ", 257, "", REC_QUERY_TOO_LONG, 0},
        {"", "Ab", 256, "", REC_OK, 512},
        {"", "\xc3\xa9", 256, "", REC_OK, 512},
        {"", "\xc3\xa9", 256, "x", REC_QUERY_TOO_LONG, 0},
    };
    struct rec_query q;
    char *text, *line;

    for (size_t i = 0; i < ROWS(rows); i++) {
        text = build(rows[i].prefix, rows[i].unit, rows[i].n, rows[i].suffix);
        for (int json = 0; json <= 1; json++) {
            line = json ? build(Q_HEAD "   ", text, 1, "  \"}")
                        : build("1\t1\t\t ", text, 1, " ");
            enum rec_reason r = query(json ? REC_NDJSON : REC_TSV, line, &q);
            if (r != rows[i].want)
                CHECK_FAIL_AT("row %zu %s: got %s", i, json ? "json" : "tsv",
                              rec_reason_name(r));
            else if (r == REC_OK && q.term_len != rows[i].len)
                CHECK_FAIL_AT("row %zu: term_len %u", i, q.term_len);
            free(line);
        }
        free(text);
    }
    /* escapes count decoded bytes: é is 2 bytes */
    text = build(Q_HEAD, "\\u00e9", 256, "\"}");
    CHECK_EQ_I64(query(REC_NDJSON, text, &q), REC_OK);
    CHECK_EQ_U64(q.term_len, 512);
    free(text);
    text = build(Q_HEAD, "\\u00e9", 257, "\"}");
    CHECK_EQ_I64(query(REC_NDJSON, text, &q), REC_QUERY_TOO_LONG);
    free(text);
    /* bad_utf8 outranks query_too_long */
    text = build(Q_HEAD, "a", 600, "\\udfff\"}");
    CHECK_EQ_I64(query(REC_NDJSON, text, &q), REC_BAD_UTF8);
    free(text);
}

/* Pads a valid query line with an ignored field to exactly n bytes. */
static char *padded_query(size_t n, const char *pad_unit)
{
    const char *head =
        "{\"time\":1,\"query_id\":1,\"query\":\"a\",\"ad_ids\":[],"
        "\"pad\":\"";
    size_t fixed = strlen(head) + 2;
    return build(head, pad_unit, (n - fixed) / strlen(pad_unit), "\"}");
}

static void test_line_length(void)
{
    struct rec_query q;
    struct rec_click c;
    char *line = padded_query(REC_LINE_MAX, "x");
    size_t len = strlen(line);
    char *tsv;

    CHECK_EQ_U64(len, REC_LINE_MAX);
    CHECK_EQ_I64(query_n(REC_NDJSON, line, len, &q), REC_OK);
    CHECK_EQ_I64(query_n(REC_NDJSON, line, len - 1, &q), REC_BAD_JSON);
    free(line);
    /* 65,537 bytes: rejected first, whatever else is wrong */
    line = padded_query(REC_LINE_MAX + 1, "x");
    len = strlen(line);
    CHECK_EQ_U64(len, REC_LINE_MAX + 1);
    CHECK_EQ_I64(query_n(REC_NDJSON, line, len, &q), REC_LINE_TOO_LONG);
    CHECK_EQ_I64(query_n(REC_TSV, line, len, &q), REC_LINE_TOO_LONG);
    CHECK_EQ_I64(click_n(REC_NDJSON, line, len, &c), REC_LINE_TOO_LONG);
    CHECK_EQ_I64(click_n(REC_TSV, line, len, &c), REC_LINE_TOO_LONG);
    line[len - 1] = '\r'; /* 65,536 bytes and a CR: the CR is terminator */
    line[len - 2] = '}';
    line[len - 3] = '"';
    CHECK_EQ_I64(query_n(REC_NDJSON, line, len, &q), REC_OK);
    free(line);
    /* TSV: 65,536 bytes, the text mostly white space */
    tsv = build("1\t1\t1\ta", " ", REC_LINE_MAX - 8, "b");
    len = strlen(tsv);
    CHECK_EQ_U64(len, REC_LINE_MAX);
    CHECK_EQ_I64(query_n(REC_TSV, tsv, len, &q), REC_OK);
    CHECK_EQ_MEM(q.term, q.term_len, "a b");
    free(tsv);
    tsv = build("1\t1\t1\ta", " ", REC_LINE_MAX - 7, "b");
    CHECK_EQ_I64(query(REC_TSV, tsv, &q), REC_LINE_TOO_LONG);
    free(tsv);
}

static void test_crlf(void)
{
    struct rec_query q;
    struct rec_click c;

    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\"A\"") "\r", &q), REC_OK);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\"A\"") "\r\r", &q), REC_OK);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\"A\"\r"), &q), REC_OK);
    CHECK_EQ_I64(query(REC_NDJSON, Q_QUERY("\"A\r\""), &q), REC_BAD_JSON);
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t1\tA\r", &q), REC_OK);
    CHECK_EQ_MEM(q.term, q.term_len, "a");
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t1\tA\r\r", &q), REC_BAD_TSV);
    CHECK_EQ_I64(click_n(REC_TSV, "1\t1\t1\tc\r", 8, &c), REC_OK);
    CHECK_EQ_I64(click_n(REC_TSV, "1\t1\t1\r", 6, &c), REC_OK);
    CHECK_EQ_I64(click_n(REC_TSV, "\r", 1, &c), REC_EMPTY);
    CHECK_EQ_I64(click_n(REC_NDJSON, "\r", 1, &c), REC_EMPTY);
    CHECK_EQ_I64(click_n(REC_NDJSON, "", 0, &c), REC_EMPTY);
    CHECK_EQ_I64(query_n(REC_TSV, "", 0, &q), REC_EMPTY);
}

static void test_nesting(void)
{
    static const char *const tail =
        ",\"time\":1,\"query_id\":1,\"query\":\"a\",\"ad_ids\":[]}";
    struct rec_query q;
    char *open, *close, *head, *line;

    /* 10,000 nested arrays in an ignored field; one ] short; wrong closer */
    open = build("{\"deep\":", "[", 10000, "");
    close = build("", "]", 10000, "");
    line = build(open, close, 1, tail);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_OK);
    free(line);
    line = build(open, close + 1, 1, tail);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_BAD_JSON);
    free(line);
    close[0] = '}';
    line = build(open, close, 1, tail);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_BAD_JSON);
    free(line);
    free(open);
    free(close);

    /* objects and arrays mixed, 6,000 deep */
    open = build("{\"deep\":", "{\"a\":[", 3000, "");
    close = build("", "]}", 3000, "");
    line = build(open, close, 1, tail);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_OK);
    free(line);
    close[2 * 1500] = '}';
    line = build(open, close, 1, tail);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_BAD_JSON);
    free(line);
    free(open);
    free(close);

    /* the deepest a line can nest: 32,768 arrays in 65,536 bytes */
    open = build("", "[", REC_LINE_MAX / 2, "");
    line = build(open, "]", REC_LINE_MAX / 2, "");
    CHECK_EQ_U64(strlen(line), REC_LINE_MAX);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_NOT_OBJECT);
    free(line);
    free(open);
    line = build("", "[", REC_LINE_MAX, "");
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_BAD_JSON);
    free(line);
    head = build("{\"x\":", "[", REC_LINE_MAX / 2 - 3, "");
    line = build(head, "]", REC_LINE_MAX / 2 - 3, "}");
    CHECK_EQ_U64(strlen(line), REC_LINE_MAX);
    CHECK_EQ_I64(query(REC_NDJSON, line, &q), REC_MISSING_TIME);
    free(line);
    free(head);
}

static void test_click_id(void)
{
    static const struct row rows[] = {
        {C_CLICK_ID("\"c-88\""), REC_OK},
        {C_CLICK_ID("123"), REC_OK},
        {C_CLICK_ID("0"), REC_OK},
        {C_CLICK_ID("18446744073709551615"), REC_OK},
        {C_CLICK_ID("18446744073709551616"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("-1"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("1.5"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("1e2"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("null"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("false"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("{}"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("[\"a\"]"), REC_BAD_CLICK_ID},
        {C_CLICK_ID("\"\""), REC_BAD_CLICK_ID},
        {C_CLICK_ID("\"\\u0000\""), REC_OK},
        {C_CLICK_ID("\"\\ud800\""), REC_BAD_CLICK_ID},
        {C_CLICK_ID("\"\\ud83d\\ude00\""), REC_OK},
        {C_CLICK_ID("\"0123456789012345678901234567890123456789012345678901"
                    "234567890123\""),
         REC_OK},
        {C_CLICK_ID("\"0123456789012345678901234567890123456789012345678901"
                    "2345678901234\""),
         REC_BAD_CLICK_ID},
        {C_CLICK_ID("\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\""),
         REC_OK},
        {C_CLICK_ID("\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\""),
         REC_BAD_CLICK_ID},
    };
    check_rows(rows, ROWS(rows), REC_NDJSON, 1);
}

static void test_tsv_query(void)
{
    static const struct row rows[] = {
        {"1763805600123\t18446744073709551615\t1001,2002,3003\tRunning  Shoes",
         REC_OK},
        {"1\t1\t\ta", REC_OK},
        {"2026-11-22T10:00:00.123+05:30\t1\t1\ta", REC_OK},
        {"0001\t007\t0\ta", REC_OK},
        {"1\t1\t1\tsome \"quoted\" \\u0041 {json}", REC_OK},
        {"1\t1\t1\ta\rb\vc\f", REC_BAD_TSV},
        {"abc", REC_BAD_TSV},
        {"1\t1\t1", REC_BAD_TSV},
        {"1\t1", REC_BAD_TSV},
        {"\t\t", REC_BAD_TSV},
        {"1\t1\t1\ta\tb", REC_BAD_TSV},
        {"1\t1\t1\t\t", REC_BAD_TSV},
        {"{\"time\":1}", REC_BAD_TSV},
        {"x\t0\tx\t\xff", REC_BAD_TIME},
        {"\t1\t1\ta", REC_BAD_TIME},
        {"-1\t1\t1\ta", REC_BAD_TIME},
        {"1.5\t1\t1\ta", REC_BAD_TIME},
        {" 1\t1\t1\ta", REC_BAD_TIME},
        {"253402300800000\t1\t1\ta", REC_BAD_TIME},
        {"1969-12-31T23:59:59Z\t1\t1\ta", REC_BAD_TIME},
        {"1\t\t1\ta", REC_BAD_QUERY_ID},
        {"1\t0\t1\ta", REC_BAD_QUERY_ID},
        {"1\t00\t1\ta", REC_BAD_QUERY_ID},
        {"1\t18446744073709551616\t1\ta", REC_BAD_QUERY_ID},
        {"1\t-1\t1\ta", REC_BAD_QUERY_ID},
        {"1\t1 \t1\ta", REC_BAD_QUERY_ID},
        {"1\t1\tx\t\xff", REC_BAD_UTF8},
        {"1\t1\tx\t\xed\xa0\x80", REC_BAD_UTF8},
        {"1\t1\tx\t \t", REC_BAD_TSV},
        {"1\t1\tx\t \x0b\x0c\r ", REC_BAD_TSV},
        {"1\t1\t1,,2\ta", REC_BAD_AD_IDS},
        {"1\t1\t1,\ta", REC_BAD_AD_IDS},
        {"1\t1\t,1\ta", REC_BAD_AD_IDS},
        {"1\t1\t,\ta", REC_BAD_AD_IDS},
        {"1\t1\t1, 2\ta", REC_BAD_AD_IDS},
        {"1\t1\t[1]\ta", REC_BAD_AD_IDS},
        {"1\t1\t18446744073709551616\ta", REC_BAD_AD_IDS},
        {"1\t1\t18446744073709551615,0\ta", REC_OK},
    };
    struct rec_query q;

    check_rows(rows, ROWS(rows), REC_TSV, 0);
    CHECK_EQ_I64(query(REC_TSV,
                       "1763805600123\t18446744073709551615\t"
                       "1001,2002,1001,3003\t  Running  Shoes ",
                       &q),
                 REC_OK);
    CHECK_EQ_I64(q.time_ms, 1763805600123);
    CHECK_EQ_U64(q.query_id, UINT64_MAX);
    CHECK_EQ_U64(q.n_ads, 3);
    CHECK_EQ_U64(q.ads[2], 3003);
    CHECK_EQ_MEM(q.term, q.term_len, "running shoes");
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t1\tA\rB\v\vC\f", &q), REC_BAD_TSV);
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t1\tA\vB\v\vC\f", &q), REC_OK);
    CHECK_EQ_MEM(q.term, q.term_len, "a b c");
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t1\t\\u0041", &q), REC_OK);
    CHECK_EQ_MEM(q.term, q.term_len, "\\u0041");
    CHECK_EQ_I64(query(REC_TSV, "1\t1\t\t\xc3\x80X", &q), REC_OK);
    CHECK_EQ_MEM(q.term, q.term_len, "\xc3\x80x");
    CHECK_EQ_U64(q.n_ads, 0);
}

static void test_tsv_click(void)
{
    static const struct row rows[] = {
        {"1763805612000\t18446744073709551615\t2002\tc-88", REC_OK},
        {"1\t1\t0", REC_OK},
        {"2026-11-22T10:00:12Z\t1\t0", REC_OK},
        {"1\t1\t2\t\xff any bytes but TAB", REC_OK},
        {"1\t1", REC_BAD_TSV},
        {"1", REC_BAD_TSV},
        {"1\t1\t2\tc\td", REC_BAD_TSV},
        {"1\t1\t2\t\t", REC_BAD_TSV},
        {"\t1\t2", REC_BAD_TIME},
        {"1.0\t1\t2", REC_BAD_TIME},
        {"1\t0\t2", REC_BAD_QUERY_ID},
        {"1\t\t2", REC_BAD_QUERY_ID},
        {"1\t1\t", REC_BAD_AD_ID},
        {"1\t1\t-2", REC_BAD_AD_ID},
        {"1\t1\t18446744073709551616", REC_BAD_AD_ID},
        {"1\t1\t18446744073709551615", REC_OK},
        {"1\t1\t2\t", REC_BAD_CLICK_ID},
        {"1\t1\t2\t0123456789012345678901234567890123456789012345678901"
         "234567890123",
         REC_OK},
        {"1\t1\t2\t0123456789012345678901234567890123456789012345678901"
         "2345678901234",
         REC_BAD_CLICK_ID},
        {"x\t0\t-\t", REC_BAD_TIME},
    };
    struct rec_click c;

    check_rows(rows, ROWS(rows), REC_TSV, 1);
    CHECK_EQ_I64(click_n(REC_TSV, "1763805612000\t00042\t0\tc", 23, &c),
                 REC_OK);
    CHECK_EQ_I64(c.time_ms, 1763805612000);
    CHECK_EQ_U64(c.query_id, 42);
    CHECK_EQ_U64(c.ad_id, 0);
}

static void test_reason_names(void)
{
    CHECK_EQ_STR(rec_reason_name(REC_OK), "ok");
    CHECK_EQ_STR(rec_reason_name(REC_BAD_JSON), "bad_json");
    CHECK_EQ_STR(rec_reason_name(REC_TOO_MANY_ADS), "too_many_ads");
    CHECK_EQ_STR(rec_reason_name(REC_QUERY_TOO_OLD), "query_too_old");
    CHECK_EQ_STR(rec_reason_name(REC_REASON_COUNT), "unknown");
    CHECK_EQ_STR(rec_reason_name((enum rec_reason) - 1), "unknown");
}

static void test_all_reasons_reached(void)
{
    for (int r = 0; r < REC_CLICK_OUTSIDE_WINDOW; r++)
        if (!reason_seen[r])
            CHECK_FAIL_AT("no test gives %s", rec_reason_name(r));
}

/* The NDJSON key of each field, as gen spells them; none past the list. */
static void test_field_keys(void)
{
    static const char *const want[REC_F_COUNT] = {
        "time", "query_id", "query", "ad_ids", "ad_id", "click_id",
    };
    for (int f = 0; f < REC_F_COUNT; f++)
        CHECK_EQ_STR(rec_field_key((enum rec_field)f), want[f]);
    CHECK(rec_field_key(REC_F_COUNT) == NULL);
}

int main(void)
{
    RUN(test_json_syntax);
    RUN(test_utf8);
    RUN(test_duplicates);
    RUN(test_escaped_keys);
    RUN(test_field_order);
    RUN(test_json_times);
    RUN(test_parse_time);
    RUN(test_time_calendar);
    RUN(test_ids);
    RUN(test_ad_ids);
    RUN(test_query_text);
    RUN(test_string_scan_positions);
    RUN(test_query_nul);
    RUN(test_query_length);
    RUN(test_line_length);
    RUN(test_crlf);
    RUN(test_nesting);
    RUN(test_click_id);
    RUN(test_tsv_query);
    RUN(test_tsv_click);
    RUN(test_reason_names);
    RUN(test_normalise_term);
    RUN(test_parse_id);
    RUN(test_field_keys);
    RUN(test_all_reasons_reached);
    return check_done();
}
