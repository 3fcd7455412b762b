/* serve: `ctrd serve`, the always-on service (SPEC §4-§6). Wires the
 * engine, the write-ahead log, the HTTP server and the API together:
 *
 *   HTTP loop thread ── api ── submit ──> ingest thread (nice 5)
 *        ^                                   │ gunzip, WAL append,
 *        │                                   │ group fsync, then engine
 *        └──── answers once durable <────────┘ (parse, join, count)
 *
 * The ingest thread is the engine's only writer: it takes every queued
 * request, inflates gzip bodies, appends each body to the WAL and fsyncs
 * once for the group, and only then has the engine process them, so a
 * failed write leaves memory and disk at the last good state: the log
 * rolls back, the group is answered 507 and ingest stays closed (reads go
 * on) until a retry succeeds. Reads run on the api's read threads under
 * the engine's read lock. A checkpoint (every --checkpoint-every bytes of
 * log or minute) names the log position it reflects, so recovery is: last
 * checkpoint + replay of the log after it.
 *
 * With --cluster (docs/scale-out.md) there is no log: --role front
 * publishes each request to the NATS stream and answers once replicated,
 * and applies the joiners' deltas to its engine (serve_cluster.c);
 * --role joiner is cluster_joiner.h's process. */
#ifndef CTRD_SERVE_H
#define CTRD_SERVE_H

/* argv[0] is "serve". Returns the process exit status (0, 1, 2). */
int serve_command(int argc, char **argv);

#endif
