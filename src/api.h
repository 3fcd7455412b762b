/* api: the HTTP API of `ctrd serve` (SPEC §5-§6) — routing, access control,
 * the read endpoints (an ad's terms and series, an advertiser's ads, and
 * for admins every advertiser's totals, and who a token is — additions to
 * SPEC §5),
 * health, readiness and metrics, and the dashboard's files (web.h: public,
 * they hold no data; the page reads the API with the viewer's token). Ingest
 * requests are checked and handed, still compressed, to the ingest pipeline
 * through cfg.submit, which decodes them off the loop thread and answers once
 * they are durable; while the service cannot write (disk full, I/O errors)
 * ingest answers 507 with Retry-After and reads go on. Reads are checked on the
 * loop thread, then wait in an admission queue (readq.h: Controlled Delay,
 * adaptive LIFO) for one of a few read threads (readpool.h), which build
 * the answer under the engine's read lock and hand it back to the loop
 * thread (http_server_post); under overload the reads answered stay fast
 * and the rest get 503 with Retry-After.
 *
 * Owns its request-latency metrics and the read threads. Runs on the HTTP
 * loop thread, except the reads themselves (read threads: engine, catalog
 * and the read's own request record only).
 *
 * Errors: 0 or a negative CTRD_E* code (error.h). Inside api.c a check
 * that refuses a request answers it itself (4xx) and returns CTRD_EINVAL,
 * so its caller only stops; a path that names nothing is CTRD_ENOTFOUND
 * (404). */
#ifndef CTRD_API_H
#define CTRD_API_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "catalog.h"
#include "engine.h"
#include "http.h"
#include "metrics.h"
#include "readpool.h"
#include "sse.h"

enum api_endpoint {
    API_TERMS,
    API_SERIES,
    API_ADVERTISER_ADS,
    API_ADVERTISERS,
    API_INGEST_QUERIES,
    API_INGEST_CLICKS,
    API_STREAM,
    API_WHOAMI,
    API_METRICS,
    API_HEALTH,
    API_PAGE,
    API_OTHER,
    API_ENDPOINT_COUNT
};

struct api_config {
    struct engine *engine;
    const struct auth *auth;       /* NULL: no access control */
    const struct catalog *catalog; /* NULL: no catalog */
    struct metrics *metrics;
    int metrics_public;    /* /metrics and /healthz without a token */
    size_t max_body_bytes; /* after gzip decoding too */
    /* Takes an ingest request (gzip: the body is gzip-compressed); body is
     * malloc'd and passes to the callee. 0, or CTRD_EAGAIN when the
     * pipeline is full (the api answers 503), CTRD_EWRITEFAIL when writes
     * fail (507). */
    int (*submit)(void *ctx, struct http_exchange *x, enum engine_kind kind,
                  enum rec_format fmt, int gzip, char *body, size_t len);
    /* 0 when recovered and accepting records, CTRD_EAGAIN while
     * recovering, CTRD_EWRITEFAIL while writes fail. */
    int (*ready)(void *ctx);
    void *ctx;
    unsigned read_threads; /* threads serving reads; 0: readpool's default */
};

struct api;

int api_create(const struct api_config *cfg, struct api **out, char *err);
void api_free(struct api *a);

/* Connects the api to the server it serves and the stream hub (both need
 * the api to exist first). Reads are queued from then on (readq.h). */
void api_attach(struct api *a, struct http_server *http, struct sse *sse);

/* After http_server_run() returned, before http_server_free(): stops the
 * read threads (reads still queued are answered 503 through posts, which
 * http_server_free runs). Then no other thread posts for the api. NULL
 * is a no-op. */
void api_stop_reads(struct api *a);

/* The http handler (ctx: the struct api). */
void api_handle(void *ctx, struct http_exchange *x);

/* Seconds a client refused with 507 is told to wait (Retry-After). */
#define API_WRITE_RETRY_S 5

/* Answers 507 with Retry-After: the service cannot write. */
void api_refuse_writes(struct api *a, struct http_exchange *x,
                       enum api_endpoint endpoint);

/* Answers an ingest request that failed before it was processed: code
 * CTRD_EWRITEFAIL 507, CTRD_EINVAL 400 (not valid gzip), CTRD_EAGAIN 413
 * (too large once decompressed), else 500. */
void api_respond_ingest_error(struct api *a, struct http_exchange *x,
                              enum api_endpoint endpoint, int code);

/* Answers with JSON and records the request's latency for endpoint. */
void api_respond_json(struct api *a, struct http_exchange *x,
                      enum api_endpoint endpoint, int status, const char *json,
                      size_t len);

#endif
