/* query: `ctrd query`, one ad's per-term CTR table (or every ad's) from a
 * data directory, as a text table, JSON or CSV (SPEC §4). Reads a
 * consistent checkpoint without locking the directory, so it runs while an
 * ingest is writing. */
#ifndef CTRD_QUERY_H
#define CTRD_QUERY_H

/* argv[0] is "query". Returns the process exit status (0, 1, 2). */
int query_command(int argc, char **argv);

#endif
