/* plan: `ctrd plan`, the NALSD capacity plan (SPEC §4). With no workload
 * flags it reproduces the arithmetic of the seed chapter (seeds/
 * nalsd-adwords-ctr.txt, "AdWords Example") for the chapter's own
 * workload: each derived figure — query and click volumes per day, bytes
 * per day, network rates, ClickMap and QueryMap sizes, Paxos tasks, RAM,
 * tasks and machines per datacenter — as ctrd computes it from the
 * chapter's inputs next to the value the chapter states, with the seed
 * line and the inputs it comes from. Where the chapter rounds, both show.
 * Output: a table on stdout, or JSON with --json (numbers in full double
 * precision; "chapter" null where the chapter states no value).
 *
 * With workload flags (queries and clicks a second, ads per query, join
 * window, retention, machine shape; what is not given keeps the chapter's
 * figure) it states the cores, RAM, disk, machines and network ctrd needs,
 * each record on 2 shards as in the chapter (l.278), each figure with its
 * arithmetic. The per-core figures come from a bench file (--bench FILE),
 * the JSON object `ctrd bench` writes: a flat object whose keys below are
 * positive numbers (other keys are ignored):
 *   parse_events_per_core_s  query and click records parsed and validated
 *                            per second by one core
 *   join_events_per_core_s   records sharded, joined and counted (QueryStore,
 *                            LogJoiner, QueryMap/ClickMap) per second by one
 *                            core
 *   bytes_per_query_disk     bytes on disk per query retained (WAL,
 *                            QueryStore, count maps, checkpoints)
 *   ram_bytes_per_query      bytes of RAM per query held in the join window
 * A key missing from the file (or no --bench) leaves the figures that need
 * it "missing", never a guessed constant. Output as in the seed mode, with
 * --json: {"workload":{...},"needs":{KEY:{"value","unit","arithmetic"}},
 * "missing":[bench keys]}. Owns nothing; single-threaded. */
#ifndef CTRD_PLAN_H
#define CTRD_PLAN_H

#define PLAN_BENCH_KEYS 4 /* the keys of a bench file, above */

/* argv[0] is "plan". Returns the exit status: 0 ok, 1 an unreadable or
 * bad bench file, 2 usage error. */
int plan_command(int argc, char **argv);

#endif
