/* bench_record: lines/s of rec_parse_query and rec_parse_click on realistic
 * lines (1 M by default), one core, both formats.
 *   cc -O2 -Isrc bench/bench_record.c src/record.c -o /tmp/bench_record
 *   /tmp/bench_record [lines] */
#include "record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_BYTES 256

static const char *const terms[] = {
    "Running  Shoes",   "cheap flights", "Pizza near me",   "weather",
    "best laptop 2026", "Hotel Paris",   "nike air max 90", "kids bikes",
};

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes line i of the chosen kind into buf; returns its length. */
static size_t make_line(char *buf, int kind, uint64_t *rng)
{
    uint64_t qid = rng_next(rng), t = 1763805600123ull + rng_next(rng) % 1000;
    uint64_t a = 1000 + rng_next(rng) % 9000;
    const char *term = terms[rng_next(rng) % 8];
    switch (kind) {
    case 0:
        return (size_t)snprintf(buf, LINE_BYTES,
                                "{\"time\":%" PRIu64 ",\"query_id\":\"%" PRIu64
                                "\",\"query\":\"%s\",\"ad_ids\":[%" PRIu64
                                ",%" PRIu64 ",%" PRIu64 "]}",
                                t, qid, term, a, a + 1001, a + 2002);
    case 1:
        return (size_t)snprintf(buf, LINE_BYTES,
                                "%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 ",%" PRIu64
                                ",%" PRIu64 "\t%s",
                                t, qid, a, a + 1001, a + 2002, term);
    default:
        return (size_t)snprintf(buf, LINE_BYTES,
                                "{\"time\":%" PRIu64 ",\"query_id\":\"%" PRIu64
                                "\",\"ad_id\":%" PRIu64
                                ",\"click_id\":\"c-%" PRIu64 "\"}",
                                t, qid, a, a % 100);
    }
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"ndjson query", "tsv query",
                                        "ndjson click"};
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    char *lines = malloc(n * LINE_BYTES);
    size_t *lens = malloc(n * sizeof *lens);
    struct rec_query q;
    struct rec_click c;

    if (!lines || !lens)
        return 1;
    for (int kind = 0; kind < 3; kind++) {
        uint64_t rng = 88172645463325252ull, bytes = 0, ok = 0;
        double best = 1e9;
        for (size_t i = 0; i < n; i++) {
            lens[i] = make_line(lines + i * LINE_BYTES, kind, &rng);
            bytes += lens[i];
        }
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now_s();
            ok = 0;
            for (size_t i = 0; i < n; i++) {
                const char *l = lines + i * LINE_BYTES;
                if (kind == 2)
                    ok += rec_parse_click(REC_NDJSON, l, lens[i], &c) == REC_OK;
                else
                    ok += rec_parse_query(kind ? REC_TSV : REC_NDJSON, l,
                                          lens[i], &q) == REC_OK;
            }
            double dt = now_s() - t0;
            best = dt < best ? dt : best;
        }
        printf("%-13s %zu lines, %" PRIu64 " ok, avg %.0f B: "
               "%.2f M lines/s, %.0f MB/s (best of 5)\n",
               names[kind], n, ok, (double)bytes / (double)n,
               (double)n / best / 1e6, (double)bytes / best / 1e6);
    }
    free(lines);
    free(lens);
    return 0;
}
