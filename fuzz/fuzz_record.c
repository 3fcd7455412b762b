/* fuzz_record: libFuzzer target for the record parsers. The input is one
 * line, given to rec_parse_query and rec_parse_click in both formats and to
 * rec_parse_time. Every parsed record must hold the invariants of record.h,
 * and must parse back to itself when written out again in either format.
 *   make fuzz && ./build-fuzz/fuzz_record -max_total_time=180 -max_len=70000 */
#include "fuzz.h"
#include "record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Room for a record written out: ids, 32 ads, a term of 512 escaped bytes. */
#define OUT_MAX 8192

static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned b = s[i], len, cp, min;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC0 && b < 0xE0)
            len = 2, cp = b & 0x1F, min = 0x80;
        else if (b >= 0xE0 && b < 0xF0)
            len = 3, cp = b & 0x0F, min = 0x800;
        else if (b >= 0xF0 && b < 0xF8)
            len = 4, cp = b & 0x07, min = 0x10000;
        else
            return 0;
        if (n - i < len)
            return 0;
        for (unsigned k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void check_query(const struct rec_query *q)
{
    const unsigned char *t = (const unsigned char *)q->term;

    REQUIRE(q->query_id > 0);
    REQUIRE(q->time_ms >= 0 && q->time_ms <= REC_TIME_MAX_MS);
    REQUIRE(q->term_len >= 1 && q->term_len <= REC_TERM_MAX);
    REQUIRE(t[0] != ' ' && t[q->term_len - 1] != ' ');
    for (uint32_t i = 0; i < q->term_len; i++) {
        REQUIRE(!(t[i] >= 'A' && t[i] <= 'Z'));
        REQUIRE(!(t[i] >= '\t' && t[i] <= '\r'));
        REQUIRE(!(t[i] == ' ' && i + 1 < q->term_len && t[i + 1] == ' '));
    }
    REQUIRE(utf8_ok(t, q->term_len));
    REQUIRE(q->n_ads <= REC_ADS_MAX);
    for (uint32_t i = 0; i < q->n_ads; i++)
        for (uint32_t j = 0; j < i; j++)
            REQUIRE(q->ads[i] != q->ads[j]);
}

static void check_click(const struct rec_click *c)
{
    REQUIRE(c->query_id > 0);
    REQUIRE(c->time_ms >= 0 && c->time_ms <= REC_TIME_MAX_MS);
}

/* Writes q as a line of the given format; returns its length. */
static size_t query_write(const struct rec_query *q, enum rec_format fmt,
                          char *out)
{
    size_t n = 0;
    int json = fmt == REC_NDJSON;

    n += (size_t)sprintf(out + n,
                         json ? "{\"time\":%" PRId64 ",\"query_id\":\"%" PRIu64
                                "\",\"ad_ids\":["
                              : "%" PRId64 "\t%" PRIu64 "\t",
                         q->time_ms, q->query_id);
    for (uint32_t i = 0; i < q->n_ads; i++)
        n += (size_t)sprintf(out + n, "%s%" PRIu64, i ? "," : "", q->ads[i]);
    n += (size_t)sprintf(out + n, json ? "],\"query\":\"" : "\t");
    for (uint32_t i = 0; i < q->term_len; i++) {
        unsigned char b = (unsigned char)q->term[i];
        if (json && (b < 0x20 || b == '"' || b == '\\'))
            n += (size_t)sprintf(out + n, "\\u%04x", b);
        else
            out[n++] = (char)b;
    }
    if (json)
        n += (size_t)sprintf(out + n, "\"}");
    return n;
}

/* A parsed query written out in either format parses to the same record. */
static void check_query_roundtrip(const struct rec_query *q)
{
    static char line[OUT_MAX];
    struct rec_query back;

    for (int fmt = REC_NDJSON; fmt <= REC_TSV; fmt++) {
        size_t n = query_write(q, (enum rec_format)fmt, line);
        REQUIRE(rec_parse_query((enum rec_format)fmt, line, n, &back) ==
                REC_OK);
        REQUIRE(back.time_ms == q->time_ms && back.query_id == q->query_id);
        REQUIRE(back.n_ads == q->n_ads && back.term_len == q->term_len);
        REQUIRE(memcmp(back.ads, q->ads, q->n_ads * sizeof q->ads[0]) == 0);
        REQUIRE(memcmp(back.term, q->term, q->term_len) == 0);
    }
}

static void check_click_roundtrip(const struct rec_click *c)
{
    char line[128];
    struct rec_click back;
    int n = snprintf(line, sizeof line, "%" PRId64 "\t%" PRIu64 "\t%" PRIu64,
                     c->time_ms, c->query_id, c->ad_id);

    REQUIRE(rec_parse_click(REC_TSV, line, (size_t)n, &back) == REC_OK);
    REQUIRE(back.time_ms == c->time_ms && back.query_id == c->query_id &&
            back.ad_id == c->ad_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct rec_query q;
    struct rec_click c;
    int64_t ms;

    for (int fmt = REC_NDJSON; fmt <= REC_TSV; fmt++) {
        enum rec_reason r =
            rec_parse_query((enum rec_format)fmt, line, size, &q);
        REQUIRE(r < REC_CLICK_OUTSIDE_WINDOW);
        REQUIRE((r == REC_EMPTY) ==
                (size == 0 || (size == 1 && *line == '\r')));
        if (r == REC_OK) {
            check_query(&q);
            check_query_roundtrip(&q);
        }
        r = rec_parse_click((enum rec_format)fmt, line, size, &c);
        REQUIRE(r < REC_CLICK_OUTSIDE_WINDOW && r != REC_BAD_AD_IDS);
        if (r == REC_OK) {
            check_click(&c);
            check_click_roundtrip(&c);
        }
    }
    if (rec_parse_time(line, size, &ms) == 0)
        REQUIRE(ms >= 0 && ms <= REC_TIME_MAX_MS);
    return 0;
}
