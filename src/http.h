/* http: the HTTP/1.1 server — one epoll thread, keep-alive, limits on head
 * and body size, read and idle timeouts, asynchronous answers, Server-Sent
 * Event streams, and a graceful stop.
 *
 * Owns the listening socket, the connections and the exchanges (one request
 * and its answer). The application's handler is called on the loop thread
 * once a request has been read whole (body included, chunked bodies
 * decoded). The handler answers at once or later — e.g. after a write was
 * made durable on another thread, which then hands the answer back to the
 * loop with http_server_post(). An exchange lives until the application has
 * answered it (http_respond) or ended its stream (http_stream_end), even if
 * the client went away meanwhile (http_exchange_closed() says so; answering
 * then just frees it). A client that shuts down its sending side while its
 * request is with the application counts as gone. Requests on one
 * connection are handled one at a time, in order (what a client pipelines
 * waits in the kernel and in the connection's buffer).
 *
 * The server answers by itself: 400 for a malformed request, 408 when a
 * request is not read within the timeout, 413 over the body limit, 431 over
 * the head limit, 501 for an unsupported transfer encoding, 503 when at a
 * connection limit (see below), 505 for an HTTP version other than 1.0 and
 * 1.1; and "100 Continue" to "Expect: 100-continue".
 *
 * Connections are bounded in time and number, so that clients that open
 * connections and say nothing cannot lock others out:
 *   - the first request of a connection must have its head read within
 *     first_request_timeout_ms of the accept (408 if it began, else the
 *     connection just closes); later requests have read_timeout_ms, and a
 *     connection idle between requests closes after idle_timeout_ms;
 *   - one peer (an IPv4 address, or the /64 prefix of an IPv6 address) may
 *     hold max_connections_per_peer connections: beyond that, 503 and close;
 *   - when max_connections are open, a newcomer takes the place of the
 *     connection idle the longest: a keep-alive connection between requests,
 *     or one that never sent a byte (closed without an answer). Only when
 *     none is idle is the newcomer refused with 503. Running out of file
 *     descriptors evicts the same way.
 *
 * Requests are parsed by http_parse.h (its statuses are the 400, 413, 431,
 * 501 and 505 above). The server is http.c, a connection's life and the
 * exchange functions below are http_conn.c; they share http_int.h.
 *
 * With access_log, stderr gets one logfmt line per answer:
 *   ts=2026-12-07T04:05:06.789Z peer=127.0.0.1 method=GET
 *   path=/v1/ads/7/terms query="from=1&limit=10" status=200 dur_ms=0.412
 *   bytes=1234
 * (ts: wall clock, UTC; peer: the client's address; query only when there
 * is one; dur_ms from the request read whole to the answer queued, 0 for
 * the server's own errors; bytes: the body). A connection refused at a
 * limit, and one evicted for a newcomer, log
 *   ts=... peer=ADDR event=refused reason=peer_limit|connection_limit
 *   limit=N status=503 bytes=20
 *   ts=... peer=ADDR event=evicted reason=connection_limit|descriptors
 *   idle_ms=D requests=N
 * Values with a space, '=', a quote, a backslash or a byte outside
 * printable ASCII are quoted, with \" \\ and \xHH escapes. Header values
 * (tokens) are never logged.
 *
 * Threads: everything here runs on the loop thread, except
 * http_server_post() and http_server_stop(), which any thread (and
 * http_server_stop also a signal handler) may call. */
#ifndef CTRD_HTTP_H
#define CTRD_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "error.h"

struct http_server;
struct http_exchange;
struct metrics;

struct http_config {
    const char *listen;      /* "HOST:PORT"; port 0 picks a free one */
    size_t max_head_bytes;   /* request line + headers; 0: 16 KiB */
    size_t max_body_bytes;   /* 0: 64 MiB */
    int64_t read_timeout_ms; /* a whole request, once begun; 0: 30 s */
    int64_t idle_timeout_ms; /* keep-alive between requests; 0: 60 s */
    /* From the accept to the first request's head read whole; 0: 10 s */
    int64_t first_request_timeout_ms;
    unsigned max_connections;          /* 0: 4096 */
    unsigned max_connections_per_peer; /* per client address; 0: 1024 */
    int access_log;                    /* one line per answer on stderr */
    /* When set, answers are counted in it (http_server_create registers
     * ctrd_http_responses_total{class="1xx".."5xx"}): every answer, the
     * server's own included (refusals at a connection limit, 400, 408,
     * ...), streams when they end. */
    struct metrics *metrics;
    void (*handler)(void *ctx, struct http_exchange *x);
    void *ctx;
};

/* The address a listen string names: "HOST:PORT", "[IPV6]:PORT",
 * "localhost:PORT" or ":PORT" (all IPv4). 0 or CTRD_EINVAL. */
int http_listen_address(const char *listen, struct sockaddr_storage *ss,
                        socklen_t *len);

/* Binds and listens (errors name the address). Raises the process's soft
 * limit on open files, up to the hard one, to fit max_connections. */
int http_server_create(const struct http_config *cfg, struct http_server **out,
                       char *err);
/* The port actually bound (for port 0). */
int http_server_port(const struct http_server *s);
/* Runs the loop on the calling thread until http_server_stop(), then stops
 * accepting, lets answers in progress finish (at most drain_ms; posts and
 * timers keep running), closes streams and connections, and returns 0.
 * Exchanges still unanswered then report closed; answering them (e.g. from
 * a post, run by http_server_free) just frees them. */
int http_server_run(struct http_server *s, int64_t drain_ms);
/* http_server_run() until SIGTERM or SIGINT (their handlers stop this
 * server; SIGPIPE is ignored): a service's main loop. One at a time. */
int http_server_run_until_signal(struct http_server *s, int64_t drain_ms);
/* Async-signal-safe; from any thread. */
void http_server_stop(struct http_server *s);
/* After http_server_run() returned and once no other thread posts: runs the
 * posts still queued (so that what they own is freed), then frees every
 * exchange left unanswered and the server. NULL is a no-op. */
void http_server_free(struct http_server *s);

/* Runs fn(arg) on the loop thread soon; from any thread. 0 or CTRD_ENOMEM. */
int http_server_post(struct http_server *s, void (*fn)(void *arg), void *arg);
/* Runs fn(arg) on the loop thread every interval_ms (> 0). Call it before
 * http_server_run() or on the loop thread. 0, CTRD_EINVAL or CTRD_ENOMEM. */
int http_server_every(struct http_server *s, int64_t interval_ms,
                      void (*fn)(void *arg), void *arg);

/* ---- the request ----
 * Strings are NUL-terminated and live as long as the exchange. */

const char *http_method(const struct http_exchange *x); /* "GET" */
/* As sent, not percent-decoded. */
const char *http_path(const struct http_exchange *x);  /* "/v1/ads/7/terms" */
const char *http_query(const struct http_exchange *x); /* "a=1&b=2" or "" */
/* A header's value (name case-insensitive; the first of repeated fields),
 * leading and trailing whitespace trimmed, or NULL. */
const char *http_header(const struct http_exchange *x, const char *name);
/* A query parameter, decoded: http_query_param() of http_parse.h on
 * http_query(x). 0, CTRD_ENOTFOUND or CTRD_EINVAL. */
int http_param(const struct http_exchange *x, const char *name, char *out,
               size_t out_len);
/* The body (chunked bodies decoded; empty without one), not
 * NUL-terminated. */
const char *http_body(const struct http_exchange *x, size_t *len);
/* Whether the peer is a loopback address. */
int http_peer_is_loopback(const struct http_exchange *x);
/* Monotonic ns when the request was read whole (for latency metrics). */
uint64_t http_started_ns(const struct http_exchange *x);
int http_exchange_closed(const struct http_exchange *x);

/* ---- the answer (once per exchange) ---- */

/* Adds a response header (copied), e.g. ("Retry-After", "1"). A name that
 * is not a token or a value with CR or LF is dropped. */
void http_add_header(struct http_exchange *x, const char *name,
                     const char *value);
/* Sends status, Content-Type and body (copied), then frees the exchange.
 * Adds Content-Length and, when the connection closes after it,
 * "Connection: close"; no body for HEAD, 1xx, 204 and 304. */
void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const char *body, size_t len);

/* Starts a stream: status 200, the content type, no length; the connection
 * is then the stream's until http_stream_end(). */
void http_stream_start(struct http_exchange *x, const char *content_type);
/* Queues bytes on the stream: 0, CTRD_EAGAIN when the client is more than
 * 1 MiB behind (the bytes are dropped), CTRD_EIO when it is gone. */
int http_stream_write(struct http_exchange *x, const char *data, size_t len);
/* Ends the stream (the connection closes once what was queued is sent)
 * and frees the exchange. */
void http_stream_end(struct http_exchange *x);

#endif
