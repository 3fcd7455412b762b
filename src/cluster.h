/* cluster: what the processes of a distributed ctrd share (docs/scale-out.md)
 * — the cluster file, the connection to NATS JetStream and its two streams,
 * the partition of a query_id, and the byte layouts of the messages that
 * cross the streams.
 *
 *   CTRD_IN     subjects ctrd.in.<p>: records a front end accepted, one
 *               message per partition and request (at most
 *               CLUSTER_BATCH_BYTES), already validated;
 *   CTRD_DELTA  subjects ctrd.d.<p>: what partition p's joiner made of
 *               input messages first_seq..last_seq (CTRD_IN sequences), as
 *               count increments with their terms spelled out.
 *
 * Both streams are R3 file streams that keep everything (nothing is
 * trimmed yet). Every message carries a CRC-32C of its
 * body, checked before use (a bad one is damage, never applied).
 *
 * Input message (little-endian):
 *   0  4  magic "CIN1"
 *   4  4  CRC-32C of bytes 8..end
 *   8  1  kind: 0 queries, 1 clicks (enum engine_kind)
 *   9  1  format (enum rec_format)
 *   10 2  partition
 *   12 4  number of lines
 *   16 .. the lines, each ending in LF, as the client sent them
 * Delta message:
 *   0  4  magic "CDL1"
 *   4  4  CRC-32C of bytes 8..end
 *   8  2  partition
 *   10 2  zero
 *   12 4  number of entries
 *   16 8  epoch: the publishing owner's fencing token (etcd revision)
 *   24 8  first input sequence covered
 *   32 8  last input sequence covered
 *   40 8  as_of: the partition's latest query time so far, ms (-1: none)
 *   48 .. entries: u64 ad_id, u32 minute, u32 impressions, u32 clicks,
 *         u16 term length, term bytes
 *
 * Threads: the functions are pure but cluster_connect()'s connection,
 * which libnats lets any thread use. Errors: 0 or a negative CTRD_E*
 * code, with err filled for setup calls. */
#ifndef CTRD_CLUSTER_H
#define CTRD_CLUSTER_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "record.h"

#define CLUSTER_MAX_PARTITIONS 256u
#define CLUSTER_MAX_ENDPOINTS 8
/* Under NATS's default 1 MB max_payload. */
#define CLUSTER_BATCH_BYTES (512u << 10)
/* The most delta bytes one input message may make: a front end closes a
 * message before its records could make more (each shown ad of a query one
 * entry of CLUSTER_DELTA_ENTRY bytes plus its term; each click one entry
 * whose term may be REC_TERM_MAX long), and a joiner closes a delta once
 * it could pass this, so a delta stays under 2 × this bound (512 KiB), and
 * NATS's 1 MB max_payload. */
#define CLUSTER_DELTA_BOUND (256u << 10)
#define CLUSTER_DELTA_ENTRY 22
#define CLUSTER_IN_HEADER 16
#define CLUSTER_DELTA_HEADER 48
#define CLUSTER_STREAM_IN "CTRD_IN"
#define CLUSTER_STREAM_DELTA "CTRD_DELTA"

/* The cluster file (scripts/cluster writes it), JSON:
 * {"partitions":64,"replicas":3,"lease_ttl_ms":5000,
 *  "nats":["nats://127.0.0.11:4222",...],
 *  "etcd":["http://127.0.0.11:2379",...]} */
struct cluster_config {
    unsigned partitions; /* divides SHARD_COUNT */
    unsigned replicas;
    int64_t lease_ttl_ms;
    char nats[CLUSTER_MAX_ENDPOINTS][128];
    char etcd[CLUSTER_MAX_ENDPOINTS][128];
    size_t n_nats, n_etcd;
};

int cluster_config_load(const char *path, struct cluster_config *out,
                        char *err);

/* The partition of a query or click. */
unsigned cluster_partition(const struct cluster_config *c, uint64_t query_id);

/* Connects to NATS (every server of the file; reconnecting forever) and
 * makes sure both streams exist with the file's replicas. */
int cluster_connect(const struct cluster_config *c, const char *name,
                    natsConnection **nc, jsCtx **js, char *err);
void cluster_disconnect(natsConnection *nc, jsCtx *js);

/* A message's stream sequence, stored time (ms) and how many messages of
 * its consumer are still to come: 0, or CTRD_EINVAL when it did not come
 * from a stream. */
struct cluster_meta {
    uint64_t seq, pending;
    int64_t time_ms;
};
int cluster_msg_meta(natsMsg *m, struct cluster_meta *out);

/* ---- input messages ---- */
struct cluster_in {
    enum engine_kind kind;
    enum rec_format fmt;
    unsigned partition;
    uint32_t n_lines;
    const char *lines; /* n_lines lines, each ending in LF */
    size_t len;
};
/* Fills the 16-byte header in front of the lines already at
 * buf[CLUSTER_IN_HEADER..len). */
void cluster_in_seal(char *buf, size_t len, const struct cluster_in *in);
/* 0, or CTRD_ECORRUPT (err says what: also a line count that is not the
 * header's). */
int cluster_in_open(const char *buf, size_t len, struct cluster_in *out,
                    char *err);

/* ---- delta messages ---- */
struct cluster_delta {
    unsigned partition;
    uint32_t n_entries;
    int64_t epoch;
    uint64_t first_seq, last_seq;
    int64_t as_of_ms;
    const char *entries; /* n_entries encoded entries */
    size_t len;
};
struct cluster_delta_entry {
    uint64_t ad_id;
    uint32_t minute;
    uint32_t impressions, clicks;
    uint16_t term_len;
    const char *term;
};
/* Appends one entry to a buffer (CTRD_ENOMEM). */
int cluster_delta_put(FILE *f, const struct cluster_delta_entry *e);
/* Fills the 48-byte header in front of the entries at
 * buf[CLUSTER_DELTA_HEADER..len). */
void cluster_delta_seal(char *buf, size_t len, const struct cluster_delta *d);
/* 0, or CTRD_ECORRUPT; the entries are then walked with
 * cluster_delta_next(). */
int cluster_delta_open(const char *buf, size_t len, struct cluster_delta *out,
                       char *err);
/* Reads the entry at *at (advancing it): 1, 0 at the end, CTRD_ECORRUPT. */
int cluster_delta_next(const struct cluster_delta *d, size_t *at,
                       struct cluster_delta_entry *e);

#endif
