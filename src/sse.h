/* sse: live counts as Server-Sent Events (GET /v1/stream). A subscriber
 * names one ad or an advertiser's ads; a few times a second every
 * subscription whose ads' totals changed gets one `counts` event per
 * changed ad, and every HEARTBEAT_MS an SSE comment keeps proxies from
 * closing the connection. A client that goes away or falls more than the
 * HTTP layer's buffer behind is dropped.
 *
 * Owns the subscriptions (and their http streams). Runs on the HTTP loop
 * thread; reads the counts under the engine's read lock.
 *
 * Errors: 0 or a negative CTRD_E* code (error.h); only memory can fail
 * (CTRD_ENOMEM). */
#ifndef CTRD_SSE_H
#define CTRD_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "http.h"

#define SSE_TICK_MS 250
#define SSE_HEARTBEAT_MS 15000

struct sse;

/* Registers its tick with the server. */
int sse_create(struct http_server *http, struct engine *engine,
               struct sse **out);
void sse_free(struct sse *s);

/* Starts the stream on x for ads[0..n) (copied) and sends their current
 * totals at once. */
int sse_subscribe(struct sse *s, struct http_exchange *x, const uint64_t *ads,
                  size_t n);

/* Live subscriptions (for metrics). */
size_t sse_count(const struct sse *s);

#endif
