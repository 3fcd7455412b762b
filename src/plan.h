/* plan: `ctrd plan`, the NALSD capacity plan (SPEC §4). With no workload
 * flags it reproduces the arithmetic of the seed chapter (seeds/
 * nalsd-adwords-ctr.txt, "AdWords Example") for the chapter's own
 * workload: each derived figure — query and click volumes per day, bytes
 * per day, network rates, ClickMap and QueryMap sizes, Paxos tasks, RAM,
 * tasks and machines per datacenter — as ctrd computes it from the
 * chapter's inputs next to the value the chapter states, with the seed
 * line and the inputs it comes from. Where the chapter rounds, both show.
 * Output: a table on stdout, or JSON with --json (numbers in full double
 * precision; "chapter" null where the chapter states no value). Owns
 * nothing; single-threaded. */
#ifndef CTRD_PLAN_H
#define CTRD_PLAN_H

/* argv[0] is "plan". Returns the exit status: 0 ok, 2 usage error. */
int plan_command(int argc, char **argv);

#endif
