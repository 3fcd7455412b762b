/* demo: `ctrd demo` (SPEC §4) — a live service to look at. Starts `ctrd
 * serve` as a child process on a data directory, posts live synthetic
 * traffic into it over HTTP as a log shipper would (queries and clicks at
 * their own times, a few malformed lines among them), prints the
 * dashboard's URL with a busy ad preselected and runs until SIGINT or
 * SIGTERM; then stops the traffic and the server (which checkpoints) and
 * exits with the server's status.
 *
 * Owns the child process, its stderr pipe (relayed line by line to ours),
 * one keep-alive HTTP connection to it and a scratch directory (gen's
 * files, removed at exit; the ads catalog, kept with the data). One
 * thread, the caller's. */
#ifndef CTRD_DEMO_H
#define CTRD_DEMO_H

/* argv[0] is "demo". Returns the process exit status: 0 after a clean
 * stop, 1 when the server or the traffic failed, 2 after a usage error
 * (the server's too). */
int demo_command(int argc, char **argv);

#endif
