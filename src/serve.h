/* serve: `ctrd serve`, the always-on service (SPEC §4-§6). Wires the
 * engine, the write-ahead log, the HTTP server and the API together:
 *
 *   HTTP loop thread ── api ── submit ──> ingest thread ── engine
 *        ^                                   │  (parse, join, count)
 *        └──── answers once durable <── WAL append + group fsync
 *
 * The ingest thread is the engine's only writer: it takes every queued
 * request, processes each, appends its body to the WAL, fsyncs once for
 * the group, then hands the answers back to the loop. Readers on the loop
 * thread use the engine's read lock. A checkpoint (every --checkpoint-every
 * bytes of log or minute) names the log position it reflects, so recovery
 * is: last checkpoint + replay of the log after it. */
#ifndef CTRD_SERVE_H
#define CTRD_SERVE_H

/* argv[0] is "serve". Returns the process exit status (0, 1, 2). */
int serve_command(int argc, char **argv);

#endif
