/* bench: `ctrd bench` (SPEC §4) — the standard benchmark, through the
 * real code paths, and its figures. Generates gen's standard workload
 * (gen.h: NDJSON, seed 1, --queries queries) and runs, each as a child
 * process of this binary exactly as a user runs it:
 *   1. batch: `ctrd ingest` of both files into a data directory: events/s
 *      (query + click lines over wall time), CPU time, peak RSS, bytes on
 *      disk per query;
 *   2. durable HTTP streaming: `ctrd serve` on a second data directory,
 *      the same lines POSTed in bodies of BENCH_BODY_LINES lines from two
 *      client threads (queries first, then clicks, once every query is in
 *      and the last freshness probe done), each body answered only once
 *      durable: events/s over the whole post;
 *   3. dashboard latency while 2 runs: a reader thread GETs the busiest
 *      ad's top-100 terms closed-loop: p50/p99/p99.9;
 *   4. freshness while 2 posts the queries: single clicks (held out of the
 *      bulk bodies, up to 100, their queries spread over the first 80 % of
 *      the query file, none re-delivered), each posted once its query's
 *      body is acknowledged, then polls of its ad's terms until their total
 *      clicks count it (no other click is posted meanwhile): acknowledged
 *      → visible, p50/p99/p99.9.
 * Then the counts are verified before any figure counts: `ctrd query
 * --all --format csv --sort term` of both data directories must be equal,
 * ad by ad and term by term (bench_compare()), and hold every query line
 * gen wrote as an impression of each of its ads (gen's standard workload
 * has no invalid or duplicate query). On any difference bench says what
 * and exits 1 with no figure.
 *
 * Output: one line per figure with its unit on stdout, and with --json
 * FILE a flat JSON object of numbers that `ctrd plan --bench` reads
 * (plan.h), the per-core figures derived as:
 *   parse_events_per_core_s = join_events_per_core_s = batch events / the
 *     ingest's CPU seconds (user + system): the whole pipeline (read, parse,
 *     shard, join, count, checkpoint) per core, so plan counts it twice,
 *     the conservative side, until the stages are measured apart;
 *   bytes_per_query_disk = the batch data directory's bytes (file sizes)
 *     / query lines;
 *   ram_bytes_per_query = the ingest's peak RSS / query lines.
 *
 * Owns a scratch directory (removed at exit unless --out), the server
 * child and, while streaming, four threads: two posters, the dashboard
 * reader and the freshness prober, each with its own HTTP connection
 * (libcurl); they share only the read-only workload, atomic progress
 * counters and a first-error slot under a mutex. */
#ifndef CTRD_BENCH_H
#define CTRD_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_BODY_LINES 5000 /* lines of one streaming POST */

/* Compares two `ctrd query --all --format csv --sort term` outputs a and b
 * (a[alen], b[blen]) line by line, and checks that a's impressions sum to
 * want_impressions. 0 when equal; else CTRD_EINVAL with the first
 * difference in what[CTRD_ERR_LEN] (line number and both lines, or the
 * sums). Pure: reads only its arguments. */
int bench_compare(const char *a, size_t alen, const char *b, size_t blen,
                  uint64_t want_impressions, char *what);

/* argv[0] is "bench". Returns the exit status: 0 with the figures, 1 when
 * a step failed or the counts differ (no figures), 2 usage error. */
int bench_command(int argc, char **argv);

#endif
