/* http_int.h: what the files of the HTTP server share — internal to them.
 *
 * Included only by http.c and http_conn.c (never by a caller of the server,
 * whose whole interface is http.h), as SQLite's btreeInt.h is by btree.c.
 * It holds the structures both files reach into and the few calls that
 * cross between them:
 *   http.c       the server: listening and accepting, admission and the
 *                connection limits (the peer table, the idle list's use),
 *                the epoll loop and its pass, posts, timers, the access
 *                log and the answer counters, the drain at stop;
 *   http_conn.c  one connection's life: its buffers, reading, parsing and
 *                dispatching requests, the exchange API that handlers
 *                answer with, flushing and lingering, its timeouts (the
 *                sweep) and its place on the idle list.
 *
 * Threads: everything here belongs to the loop thread, except the posts
 * (post_mu) and the stop flag of struct http_server. */
#ifndef CTRD_HTTP_INT_H
#define CTRD_HTTP_INT_H

#include "http.h"
#include "http_parse.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_PEER_LEN INET6_ADDRSTRLEN
#define HTTP_PEER_KEY 16 /* an IPv6 address; IPv4 ones as IPv4-mapped */

/* A connection's state; http_conn.c says what each allows. */
enum http_state {
    HTTP_READING,  /* reading (or idle between) requests */
    HTTP_HANDLING, /* the application has the exchange */
    HTTP_STREAMING /* the exchange is an event stream */
};

/* One request and its answer. */
struct http_exchange {
    struct http_conn *conn;
    struct http_request req; /* offsets into conn->in */
    uint64_t started_ns;     /* read whole */
};

/* One connection: allocated by http.c's accept, freed by http_conn.c. */
struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next; /* srv->conns */
    struct http_conn *ready_next;  /* srv->ready */
    struct http_conn *reap_next;   /* srv->reap */
    int fd;                        /* -1 once closed */
    enum http_state state;
    uint32_t events; /* the epoll mask registered */
    int in_dispatch; /* inside the handler call for this connection */
    int on_ready, reaped;
    int closing;       /* no more requests: flush, then close */
    int lingering;     /* write side shut, draining what the peer sends */
    int peer_eof;      /* the peer shut down its sending side */
    int continue_sent; /* "100 Continue" sent for this request */
    int loopback;
    int on_idle; /* on srv->idle: http_conn_is_idle() when last synced */
    struct http_conn *idle_prev, *idle_next;
    uint64_t requests; /* handed to the application so far */
    char *in;          /* the request being read, then read-ahead */
    size_t in_len, in_cap;
    char *out; /* unsent output is [out_off, out_len) */
    size_t out_off, out_len, out_cap;
    char *hdr; /* header lines the application added */
    size_t hdr_len, hdr_cap;
    uint64_t stream_bytes;
    int64_t accepted_ms;   /* the first request's deadline counts from */
    int64_t req_begin_ms;  /* first byte of the request being read */
    int64_t idle_since_ms; /* no request, nothing to send, since */
    int64_t out_ms;        /* output last queued into empty or progressed */
    int64_t linger_ms;     /* lingering began */
    struct http_parser p;
    struct http_exchange x;
    char peer[HTTP_PEER_LEN];
    uint8_t peer_key[HTTP_PEER_KEY]; /* counted in srv->peers while fd >= 0 */
};

/* Open connections of one client address (a slot of srv->peers). */
struct http_peer {
    uint8_t key[HTTP_PEER_KEY];
    unsigned conns; /* 0: a free slot */
};

/* Work another thread handed to the loop (http_server_post). */
struct http_post {
    void (*fn)(void *arg);
    void *arg;
};

/* A function the loop runs every interval_ms (http_server_every). */
struct http_timer {
    int64_t interval_ms, next_ms;
    void (*fn)(void *arg);
    void *arg;
};

/* The server: owned by the loop thread, but for posts and stop. */
struct http_server {
    struct http_config cfg; /* defaults filled in */
    int listen_fd, epoll_fd, wake_fd;
    int port;
    int accept_paused; /* out of descriptors: resumed by the sweep */
    int draining;
    atomic_int stop;
    int64_t now_ms, next_sweep_ms;
    struct http_conn *conns; /* every connection, zombies included */
    struct http_conn *ready, *reap;
    unsigned n_open; /* connections with a socket */
    /* Idle connections (http_conn_is_idle), longest idle first. */
    struct http_conn *idle_head, *idle_tail;
    struct http_peer *peers; /* peer_mask + 1 slots, at most half used */
    size_t peer_mask;
    unsigned handling; /* exchanges with the application, streams aside */
    struct http_timer *timers;
    size_t n_timers;
    pthread_mutex_t post_mu; /* guards posts, n_posts, post_cap */
    struct http_post *posts, *spare;
    size_t n_posts, post_cap, spare_cap;
    struct metric *responses[5]; /* by class: 1xx..5xx; NULL: not counted */
};

/* Output bytes queued and not yet sent. */
static inline size_t http_out_pending(const struct http_conn *c)
{
    return c->out_len - c->out_off;
}

/* ---- http_conn.c, for the server ---- */

/* Handles the epoll events of the connection's socket. */
void http_conn_on_event(struct http_conn *c, uint32_t events);
/* Moves the connection on as far as it goes, then registers its mask. */
void http_conn_progress(struct http_conn *c);
/* Applies the timeouts to one connection. */
void http_conn_sweep(struct http_conn *c, int64_t now);
/* The server stops: closes the connection if nothing is on its way,
 * answers 503 to a request half read, and closes after what is queued.
 * One whose exchange is with the application is left to its answer. */
void http_conn_drain(struct http_conn *c);
/* Closes the socket. The connection is freed at the end of the pass, or
 * once the application is done with its exchange. */
void http_conn_gone(struct http_conn *c);
/* Unlinks the connection from srv->conns and frees it. */
void http_conn_free(struct http_conn *c);
/* Puts the connection on the idle list (at the tail) or takes it off, as
 * it now is. */
void http_conn_idle_sync(struct http_conn *c);

/* ---- http.c, for the connections ---- */

/* An answer was queued (or, the client gone, would have been): counts it,
 * and logs what was asked, the status, the time from the request read
 * whole, and the body bytes. */
void http_answered(const struct http_conn *c, int status, uint64_t bytes);
/* A connection of the peer key closed. */
void http_peer_drop(struct http_server *s, const uint8_t *key);

#endif
