/* cluster_joiner: the joiner role of distributed ctrd (`ctrd serve
 * --cluster FILE --role joiner`, docs/scale-out.md). It owns partitions of
 * the query log by etcd lease, joins each owned partition's input stream
 * (CTRD_IN, ctrd.in.<p>) with its own LogJoiner and QueryStore, and
 * publishes what it counted to CTRD_DELTA (ctrd.d.<p>), where the front
 * ends' count servers apply it.
 *
 * Invariants:
 *   - a partition's state is a pure function of its input messages in
 *     stream order: the click timeout runs on stream time (the stored
 *     times of the messages, never the wall clock), so whoever replays a
 *     partition produces the same deltas for the same input sequences;
 *   - ownership: etcd key /ctrd/v1/own/j/<p> created with this process's
 *     lease; its create revision is the epoch every delta carries;
 *   - the delta subject of a partition is a chain: each publish expects the
 *     subject's last sequence to be the one this owner last saw, so two
 *     owners can never interleave, a newer epoch fences an older one (an
 *     owner that finds a newer epoch's delta stops), and a new owner
 *     replays the input silently up to what the last delta covers, then
 *     continues after it: nothing is counted twice or skipped.
 *   - which joiner should own p: rendezvous hashing over the live members
 *     (/ctrd/v1/members/<name>, leased), so a member's arrival or loss moves
 *     only its share.
 *
 * Threads: the main thread runs the HTTP server (/metrics, /healthz,
 * /readyz); a control thread talks to etcd (lease, members, ownership); a
 * worker thread owns the partitions' states and the NATS subscriptions. */
#ifndef CTRD_CLUSTER_JOINER_H
#define CTRD_CLUSTER_JOINER_H

#include "cluster.h"
#include "http.h"
#include "joiner.h"

struct cluster_joiner_opts {
    const struct cluster_config *cluster;
    const char *name;     /* member name, e.g. "joiner-1" */
    const char *data_dir; /* scratch space of the QueryStores */
    struct joiner_config join;
    struct http_config http; /* listen and limits; handler is set here */
};

/* Runs until SIGTERM/SIGINT; returns the process exit status. */
int cluster_joiner_run(const struct cluster_joiner_opts *o);

#endif
