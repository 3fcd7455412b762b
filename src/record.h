/* record: parse and validate one line of the query log or the click log
 * (SPEC §1-2), in NDJSON or TSV form.
 *
 * Owns nothing: the parsers read the caller's line and write the caller's
 * struct; no allocation, no global state, safe from any thread.
 * Invariants of a parsed record (REC_OK):
 *   - query_id > 0, ids exact unsigned 64-bit;
 *   - 0 <= time_ms <= REC_TIME_MAX_MS;
 *   - a query's term is normalised (ASCII letters lower-cased, white space
 *     runs folded to one space, trimmed), valid UTF-8, 1..REC_TERM_MAX bytes;
 *   - a query's ads are distinct, in first-seen order (the raw list had at
 *     most REC_ADS_MAX entries).
 * Every rejected line gets exactly one reason from REC_REASON_MAP; its name
 * is what reports and metrics show.
 * Errors: the parsers return a reason (REC_OK or why not); the functions
 * that return int give 0 or CTRD_EINVAL (the text is not what they read). */
#ifndef CTRD_RECORD_H
#define CTRD_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define REC_LINE_MAX 65536 /* bytes, terminator excluded */
#define REC_TERM_MAX 512   /* bytes of a normalised term */
#define REC_ADS_MAX 32     /* entries of ad_ids */
#define REC_CLICK_ID_MAX 64
/* 9999-12-31T23:59:59.999Z: the last instant RFC 3339 can write. */
#define REC_TIME_MAX_MS INT64_C(253402300799999)

enum rec_format { REC_NDJSON, REC_TSV };

/* Reasons a line is not a record. Parser reasons first, then the reasons the
 * join gives (a click that parsed but cannot count).
 * A line with several defects gets the first that applies, in this order:
 * line_too_long; NDJSON: bad_utf8 (raw bytes), bad_json, not_object,
 * duplicate_field; TSV: bad_tsv; then the fields in record order, each
 * field's own reasons in list order. Query: time, query_id, query (bad_query,
 * bad_utf8 for an escaped lone surrogate or non-UTF-8 TSV text, empty_query,
 * query_too_long), ad_ids (a bad entry outranks too_many_ads). Click: time,
 * query_id, ad_id, click_id. */
#define REC_REASON_MAP(X)                                                      \
    X(OK, "ok")                                                                \
    X(EMPTY, "empty") /* no bytes but one CR: skipped, not a reject */         \
    X(LINE_TOO_LONG, "line_too_long")                                          \
    X(BAD_UTF8, "bad_utf8")                                                    \
    X(BAD_JSON, "bad_json")                                                    \
    X(NOT_OBJECT, "not_object")                                                \
    X(DUPLICATE_FIELD, "duplicate_field")                                      \
    X(BAD_TSV, "bad_tsv") /* wrong number of TAB-separated fields */           \
    X(MISSING_TIME, "missing_time")                                            \
    X(BAD_TIME, "bad_time")                                                    \
    X(MISSING_QUERY_ID, "missing_query_id")                                    \
    X(BAD_QUERY_ID, "bad_query_id")                                            \
    X(MISSING_QUERY, "missing_query")                                          \
    X(BAD_QUERY, "bad_query") /* not a string */                               \
    X(EMPTY_QUERY, "empty_query")                                              \
    X(QUERY_TOO_LONG, "query_too_long")                                        \
    X(MISSING_AD_IDS, "missing_ad_ids")                                        \
    X(BAD_AD_IDS, "bad_ad_ids")                                                \
    X(TOO_MANY_ADS, "too_many_ads")                                            \
    X(MISSING_AD_ID, "missing_ad_id")                                          \
    X(BAD_AD_ID, "bad_ad_id")                                                  \
    X(BAD_CLICK_ID, "bad_click_id")                                            \
    X(CLICK_OUTSIDE_WINDOW, "click_outside_window")                            \
    X(CLICK_AD_NOT_SHOWN, "click_ad_not_shown")                                \
    X(QUERY_TOO_OLD, "query_too_old")

enum rec_reason {
#define REC_REASON_ENUM(name, str) REC_##name,
    REC_REASON_MAP(REC_REASON_ENUM)
#undef REC_REASON_ENUM
        REC_REASON_COUNT
};

struct rec_query {
    uint64_t query_id;
    int64_t time_ms;
    uint32_t n_ads;
    uint32_t term_len;
    uint64_t ads[REC_ADS_MAX];
    char term[REC_TERM_MAX]; /* not NUL-terminated; may contain NUL bytes */
};

struct rec_click {
    uint64_t query_id;
    uint64_t ad_id;
    int64_t time_ms;
};

/* The fields of the two records (SPEC §1): a query has time, query_id,
 * query and ad_ids; a click time, query_id, ad_id and an optional
 * click_id. */
enum rec_field {
    REC_F_TIME,
    REC_F_QUERY_ID,
    REC_F_QUERY,
    REC_F_AD_IDS,
    REC_F_AD_ID,
    REC_F_CLICK_ID,
    REC_F_COUNT
};

/* Parse one line (line[0..len), without its LF; one trailing CR is removed
 * here). Returns REC_OK and fills *out, REC_EMPTY for a zero-length line, or
 * the reason the line is rejected (then *out is unspecified). */
enum rec_reason rec_parse_query(enum rec_format fmt, const char *line,
                                size_t len, struct rec_query *out);
enum rec_reason rec_parse_click(enum rec_format fmt, const char *line,
                                size_t len, struct rec_click *out);

/* A time as SPEC §1.3 writes it: decimal ms, or RFC 3339. Returns 0 and sets
 * *ms, or CTRD_EINVAL. Used by the parsers and for command-line
 * --from/--to. */
int rec_parse_time(const char *s, size_t len, int64_t *ms);

/* An id as the records write it: 1 or more ASCII digits (leading zeros
 * allowed) worth at most UINT64_MAX. 0 and *v, or CTRD_EINVAL. */
int rec_parse_id(const char *s, size_t len, uint64_t *v);

/* A search term normalised as a query's is (SPEC §2: ASCII letters
 * lower-cased, white space runs folded to one space, trimmed) into
 * term[0..REC_TERM_MAX), its length in *term_len. REC_OK, or
 * REC_BAD_UTF8, REC_EMPTY_QUERY, REC_QUERY_TOO_LONG. */
enum rec_reason rec_normalise_term(const char *text, size_t len, char *term,
                                   uint32_t *term_len);

/* The format a file name's extension implies: .ndjson and .jsonl NDJSON,
 * .tsv TSV. 0, or CTRD_EINVAL for any other name. */
int rec_format_from_name(const char *path, enum rec_format *fmt);

/* "time", "query_id", ...: the NDJSON key of a field; NULL past the list. */
const char *rec_field_key(enum rec_field field);

/* "bad_json", ... for a reason; "unknown" past the list. */
const char *rec_reason_name(enum rec_reason reason);

#endif
