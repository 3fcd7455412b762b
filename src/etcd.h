/* etcd: a client of one etcd v3 cluster through its JSON gateway (libcurl).
 * Endpoints are tried in turn: a connection failure, timeout or 5xx moves to
 * the next endpoint and retries the call once per endpoint; a call that
 * failed everywhere returns CTRD_EAGAIN (cluster unreachable or without
 * quorum). Threads: one struct etcd per thread (it holds a curl handle).
 *
 * Each call starts at the endpoint that last answered and waits at most
 * timeout_ms per endpoint it tries. Other outcomes: etcd's 404 (a lease
 * that does not exist, given to put, keepalive or revoke) is
 * CTRD_ENOTFOUND; any other refusal (4xx), an answer that is not what the
 * gateway writes, or one over ETCD_ANSWER_MAX_BYTES is CTRD_EIO. Every
 * call fills err when it returns a negative code.
 * A retried write may have been applied by the endpoint that timed out: a
 * retried etcd_create then answers 1 with its own key's create_revision,
 * a retried fenced write 1 although it was written. Callers that must tell
 * these apart compare the value they wrote.
 * Owns: per handle, its curl handle, endpoint copies, one request buffer
 * and one answer buffer (reused by every call). */
#ifndef CTRD_ETCD_H
#define CTRD_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ETCD_ANSWER_MAX_BYTES (4 << 20)

struct etcd;

/* One key as a range answer gives it. */
struct etcd_kv {
    const char *key; /* decoded; valid during the callback */
    size_t key_len;
    const char *value; /* decoded; valid during the callback */
    size_t value_len;
    int64_t create_revision, mod_revision, lease;
};

/* endpoints like "http://127.0.0.11:2379" (copied); timeout_ms per try. */
int etcd_open(const char *const *endpoints, size_t n, int timeout_ms,
              struct etcd **out, char *err);
/* NULL: no-op. */
void etcd_close(struct etcd *e);

/* A lease of ttl_s seconds (etcd grants at least its minimum, 2 s). */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *lease, char *err);

/* 0 and the TTL left; CTRD_ENOTFOUND when the lease no longer exists (expired
 * or revoked: etcd answers TTL absent/<=0). */
int etcd_lease_keepalive(struct etcd *e, int64_t lease, int64_t *ttl_left,
                         char *err);

/* Ends the lease and deletes its keys; CTRD_ENOTFOUND when it is gone. */
int etcd_lease_revoke(struct etcd *e, int64_t lease, char *err);

/* Plain put (lease 0: none). */
int etcd_put(struct etcd *e, const char *key, const char *value, size_t len,
             int64_t lease, char *err);

/* Creates key only when absent (txn: compare create_revision == 0, success put
 * with lease): 0 and *create_revision = the new key's create revision (the
 * txn's header revision); CTRD_EEXIST-like outcome is returned as 1 (key
 * already exists; *create_revision then = the existing key's create_revision,
 * read in the txn's failure branch with a range op). */
int etcd_create(struct etcd *e, const char *key, const char *value, size_t len,
                int64_t lease, int64_t *create_revision, char *err);

/* Deletes key only while its create_revision equals create_revision (a fenced
 * delete): 0 deleted, 1 the compare failed (key gone or recreated), negative on
 * error. A create_revision <= 0 is CTRD_EINVAL (it would match an absent
 * key). */
int etcd_delete_if(struct etcd *e, const char *key, int64_t create_revision,
                   char *err);

/* Puts key=value only while `fence_key`'s create_revision equals
 * fence_revision: 0 written, 1 fenced out (compare failed), negative on error.
 * A fence_revision <= 0 is CTRD_EINVAL (it would match an absent fence). */
int etcd_put_if(struct etcd *e, const char *fence_key, int64_t fence_revision,
                const char *key, const char *value, size_t len, char *err);

/* Gets one key: 0 and calls fn once; CTRD_ENOTFOUND when absent.
 * (fn's return is returned; here and below, fn must not use e.) */
int etcd_get(struct etcd *e, const char *key,
             int (*fn)(void *ctx, const struct etcd_kv *kv), void *ctx,
             char *err);

/* Every key with this prefix, in key order: calls fn for each (a non-zero
 * return from fn stops and is returned). One answer holds them all: a range
 * over ETCD_ANSWER_MAX_BYTES is CTRD_EIO. An empty prefix is CTRD_EINVAL. */
int etcd_range_prefix(struct etcd *e, const char *prefix,
                      int (*fn)(void *ctx, const struct etcd_kv *kv), void *ctx,
                      char *err);

#endif
