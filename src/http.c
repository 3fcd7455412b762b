/* http: the HTTP/1.1 server, its event loop and connections; see http.h.
 *
 * DESIGN. One thread runs a level-triggered epoll loop over the listening
 * socket, an eventfd (posts from other threads and the stop request) and
 * the connections. Each pass: wait, handle the ready sockets, run the due
 * timers, every SWEEP_MS check the connections' deadlines, then process
 * the "ready" list (connections whose answer arrived outside their own
 * event: flush, then parse what was read ahead), then free the connections
 * closed during the pass. Nothing is freed earlier, so an event, a post or
 * a timer never meets a freed connection, and the application is never
 * called back from inside its own call into this module.
 *
 * CONNECTION. A connection owns an input buffer, an output buffer and its
 * one exchange (embedded: the exchange's strings point into the input
 * buffer). States:
 *   READING    reading (or idle between) requests; the handler has nothing
 *   HANDLING   the handler has the exchange; input is not read (the kernel
 *              buffers what the client pipelines), only EPOLLRDHUP watched
 *   STREAMING  the exchange is an event stream; likewise
 * A connection whose socket is closed (fd -1) while its exchange is still
 * with the application stays allocated until the application answers or
 * ends it; http_exchange_closed() says 1 meanwhile. A peer that shuts down
 * its sending side while its request is in the application's hands counts
 * as gone (as nginx does). After an answer with "Connection: close" or an
 * error, the connection flushes, shuts down its sending side and reads and
 * drops what the client still sends for up to LINGER_MS, so that the
 * client reads the answer rather than a reset.
 *
 * PARSER. http_parse.c parses the request at the start of the input
 * buffer in place each time a read appended to it; the exchange's request
 * holds offsets into that buffer. Once the request was handled, its bytes
 * are dropped and the read-ahead moves down.
 *
 * ACCESS LOG. Built here, where every answer, refusal and eviction is
 * known; see http.h for its lines.
 *
 * TIMES. now_ms (the monotonic clock of clock.h) is read once per pass.
 * Deadlines are not stored: the sweep derives them from when the
 * connection was accepted (its first request), when the request began,
 * when the connection became idle, when output last made progress and
 * when lingering began.
 *
 * LIMITS. The idle list holds the connections that wait for a request with
 * nothing to send, in the order they became idle: when the table is full
 * (or descriptors run out) its head makes room for a newcomer. Whether a
 * connection is idle is re-derived each time it was moved on
 * (http_conn_update) and when it closes. The peer table counts the open
 * connections of each client address. */
#include "http.h"

#include "clock.h"
#include "hash.h"
#include "http_parse.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_IN_MIN 4096         /* first input buffer */
#define HTTP_IN_KEEP (64 * 1024) /* larger buffers shrink when idle */
#define HTTP_OUT_KEEP (256 * 1024)
#define HTTP_OUT_HIGH (64 * 1024)     /* stop reading requests above this */
#define HTTP_STREAM_MAX (1024 * 1024) /* unsent stream bytes, else drop */
#define HTTP_SWEEP_MS 100
#define HTTP_LINGER_MS 2000
#define HTTP_ACCEPT_MAX 64 /* accepts per pass */
#define HTTP_EVENTS 256
#define HTTP_LOG_LINE 2048    /* an access log line, truncated beyond */
#define HTTP_LOG_PATH_MAX 256 /* path and query bytes logged, each */
#define HTTP_LOG_METHOD_MAX 32
#define HTTP_PEER_LEN INET6_ADDRSTRLEN
#define HTTP_PEER_KEY 16    /* an IPv6 address; IPv4 ones as IPv4-mapped */
#define HTTP_FD_RESERVE 256 /* descriptors beyond the connections: files */

enum http_state { HTTP_READING, HTTP_HANDLING, HTTP_STREAMING };

/* One request and its answer. */
struct http_exchange {
    struct http_conn *conn;
    struct http_request req; /* offsets into conn->in */
    uint64_t started_ns;     /* read whole */
};

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

struct http_post {
    void (*fn)(void *arg);
    void *arg;
};

struct http_timer {
    int64_t interval_ms, next_ms;
    void (*fn)(void *arg);
    void *arg;
};

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

/* ---- small helpers ---- */

/* Grows *buf so that it holds at least need bytes. 0 or CTRD_ENOMEM. */
static int http_buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : HTTP_IN_MIN;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p)
        return CTRD_ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

static const char *http_reason(int status)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            return reasons[i].reason;
    return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Error";
}

/* Drops the request just handled from the input; read-ahead moves down. */
static void http_conn_consume(struct http_conn *c)
{
    http_parse_consume(&c->p, &c->x.req, c->in, &c->in_len);
    c->continue_sent = 0;
    if (c->in_len) {
        c->req_begin_ms = c->srv->now_ms;
    } else if (c->in_cap > HTTP_IN_KEEP) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}

/* ---- output ---- */

static size_t http_out_pending(const struct http_conn *c)
{
    return c->out_len - c->out_off;
}

/* Makes room for n more output bytes. 0 or CTRD_ENOMEM. */
static int http_out_reserve(struct http_conn *c, size_t n)
{
    size_t pending = http_out_pending(c);
    if (pending == 0)
        c->out_ms = c->srv->now_ms;
    if (c->out_off > 0 && c->out_len + n > c->out_cap) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    return http_buf_reserve(&c->out, &c->out_cap, c->out_len + n);
}

static int http_out_append(struct http_conn *c, const char *data, size_t n)
{
    if (http_out_reserve(c, n) != 0)
        return CTRD_ENOMEM;
    if (n)
        memcpy(c->out + c->out_len, data, n);
    c->out_len += n;
    return 0;
}

/* Queues the status line, the server's fields (`fields`, whole lines), the
 * application's fields and the empty line, with room for body_len more. */
static int http_out_head(struct http_conn *c, int status, const char *ctype,
                         const char *fields, size_t body_len)
{
    if (ctype && ctype[strcspn(ctype, "\r\n")] != '\0')
        ctype = NULL;
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    size_t need = 96 + ctype_len + strlen(fields) + c->hdr_len + body_len;
    if (http_out_reserve(c, need) != 0)
        return CTRD_ENOMEM;
    int n = snprintf(c->out + c->out_len, c->out_cap - c->out_len,
                     "HTTP/1.1 %d %s\r\nServer: ctrd\r\n%s%s%s%s", status,
                     http_reason(status), ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", fields);
    c->out_len += (size_t)n;
    if (c->hdr_len)
        memcpy(c->out + c->out_len, c->hdr, c->hdr_len);
    c->out_len += c->hdr_len;
    memcpy(c->out + c->out_len, "\r\n", 2);
    c->out_len += 2;
    return 0;
}

/* Queues a whole answer with its length. c->closing says whether the
 * connection closes after it. */
static int http_out_response(struct http_conn *c, int status, const char *ctype,
                             const char *body, size_t len)
{
    char fields[80];
    const char *conn = c->closing            ? "Connection: close\r\n"
                       : c->x.req.minor == 0 ? "Connection: keep-alive\r\n"
                                             : "";
    int bodyless = status < 200 || status == 204 || status == 304;
    if (bodyless)
        snprintf(fields, sizeof fields, "%s", conn);
    else
        snprintf(fields, sizeof fields, "Content-Length: %zu\r\n%s", len, conn);
    if (bodyless || c->x.req.is_head)
        len = 0;
    if (http_out_head(c, status, ctype, fields, len) != 0)
        return CTRD_ENOMEM;
    if (len)
        memcpy(c->out + c->out_len, body, len);
    c->out_len += len;
    return 0;
}

/* ---- the access log ----
 * logfmt: one line of key=value pairs per event, written to stderr with
 * one call so that the lines of other threads do not interleave. A value
 * with a space, '=', a quote, a backslash, or a byte outside printable
 * ASCII is quoted, with \" \\ and \xHH escapes (the client chose it). */

struct http_log {
    char buf[HTTP_LOG_LINE];
    size_t len;
};

/* Appends s[0, n), truncated to the room left: one byte always stays
 * free for the '\n' of http_log_end. */
static void http_log_put(struct http_log *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 1 - l->len;
    memcpy(l->buf + l->len, s, n < room ? n : room);
    l->len += n < room ? n : room;
}

static void http_log_fmt(struct http_log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void http_log_fmt(struct http_log *l, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        http_log_put(l, text,
                     (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

static int http_log_plain(int ch)
{
    return ch > ' ' && ch < 0x7f && ch != '=' && ch != '"' && ch != '\\';
}

/* " key=value", of value's first max bytes; quoted when it must be. */
static void http_log_str(struct http_log *l, const char *key, const char *v,
                         size_t max)
{
    size_t n = strnlen(v, max);
    int quote = n == 0;
    for (size_t i = 0; i < n && !quote; i++)
        quote = !http_log_plain((unsigned char)v[i]);
    http_log_fmt(l, " %s=%s", key, quote ? "\"" : "");
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)v[i];
        char esc[5];
        if (http_log_plain(ch) || ch == ' ' || ch == '=') {
            http_log_put(l, v + i, 1);
        } else {
            int k = ch == '"' || ch == '\\'
                        ? snprintf(esc, sizeof esc, "\\%c", ch)
                        : snprintf(esc, sizeof esc, "\\x%02x", (unsigned)ch);
            http_log_put(l, esc, (size_t)k);
        }
    }
    if (quote)
        http_log_put(l, "\"", 1);
}

/* Begins a line: the wall-clock time and the peer. */
static void http_log_begin(struct http_log *l, const char *peer)
{
    int64_t ms = clock_wall_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char ts[32];
    gmtime_r(&secs, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    l->len = 0;
    http_log_fmt(l, "ts=%s.%03dZ peer=%s", ts, (int)(ms % 1000), peer);
}

static void http_log_end(struct http_log *l)
{
    l->buf[l->len++] = '\n'; /* http_log_fmt leaves room for it */
    fwrite(l->buf, 1, l->len, stderr);
}

/* Counts an answer by its status class. */
static void http_count(struct http_server *s, int status)
{
    if (status >= 100 && status < 600)
        metric_add(s->responses[status / 100 - 1], 1);
}

/* An answer was queued (or, the client gone, would have been): counts it,
 * and logs what was asked, the status, the time from the request read
 * whole, and the body bytes. */
static void http_answered(const struct http_conn *c, int status, uint64_t bytes)
{
    const struct http_exchange *x = &c->x;
    struct http_log l;
    http_count(c->srv, status);
    if (!c->srv->cfg.access_log)
        return;
    double ms =
        x->started_ns ? (double)(clock_mono_ns() - x->started_ns) / 1e6 : 0.0;
    const char *method =
        x->req.method != HTTP_NONE ? c->in + x->req.method : "-";
    const char *path = x->req.path != HTTP_NONE ? c->in + x->req.path : "-";
    const char *query = x->req.query != HTTP_NONE ? c->in + x->req.query : "";
    http_log_begin(&l, c->peer);
    http_log_str(&l, "method", method, HTTP_LOG_METHOD_MAX);
    http_log_str(&l, "path", path, HTTP_LOG_PATH_MAX);
    if (*query)
        http_log_str(&l, "query", query, HTTP_LOG_PATH_MAX);
    http_log_fmt(&l, " status=%d dur_ms=%.3f bytes=%" PRIu64, status, ms,
                 bytes);
    http_log_end(&l);
}

/* ---- connections per peer ----
 * Open addressing with linear probing; at most half full, since there are
 * twice as many slots as connections may be open; deletion by backward
 * shift, so no tombstones. A table of its own rather than a general one:
 * fixed-size keys, on the accept path. */

static size_t http_peer_home(const struct http_server *s, const uint8_t *key)
{
    return (size_t)hash_bytes(key, HTTP_PEER_KEY) & s->peer_mask;
}

/* The slot of key, or the free slot where it would go. */
static size_t http_peer_slot(const struct http_server *s, const uint8_t *key)
{
    size_t i = http_peer_home(s, key);
    while (s->peers[i].conns && memcmp(s->peers[i].key, key, HTTP_PEER_KEY))
        i = (i + 1) & s->peer_mask;
    return i;
}

static unsigned http_peer_conns(const struct http_server *s, const uint8_t *key)
{
    return s->peers[http_peer_slot(s, key)].conns;
}

static void http_peer_add(struct http_server *s, const uint8_t *key)
{
    struct http_peer *p = &s->peers[http_peer_slot(s, key)];
    memcpy(p->key, key, HTTP_PEER_KEY);
    p->conns++;
}

static void http_peer_drop(struct http_server *s, const uint8_t *key)
{
    size_t hole = http_peer_slot(s, key), mask = s->peer_mask;
    assert(s->peers[hole].conns > 0);
    if (--s->peers[hole].conns > 0)
        return;
    /* Moves back each later entry of the run whose home is not in
     * (hole, j], so that every entry stays reachable from its home. */
    for (size_t j = (hole + 1) & mask; s->peers[j].conns; j = (j + 1) & mask) {
        size_t home = http_peer_home(s, s->peers[j].key);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            s->peers[hole] = s->peers[j];
            s->peers[j].conns = 0;
            hole = j;
        }
    }
}

/* ---- connections ---- */

/* Whether the connection waits for a client to begin a request, with
 * nothing to send: what a newcomer may take the place of. */
static int http_conn_is_idle(const struct http_conn *c)
{
    return c->fd >= 0 && c->state == HTTP_READING && !c->closing &&
           !c->lingering && c->in_len == 0 && http_out_pending(c) == 0;
}

/* Puts the connection on the idle list (at the tail) or takes it off, as
 * it now is. */
static void http_conn_idle_sync(struct http_conn *c)
{
    struct http_server *s = c->srv;
    int idle = http_conn_is_idle(c);
    if (idle == c->on_idle)
        return;
    c->on_idle = idle;
    if (idle) {
        c->idle_since_ms = s->now_ms;
        c->idle_next = NULL;
        c->idle_prev = s->idle_tail;
        if (s->idle_tail)
            s->idle_tail->idle_next = c;
        else
            s->idle_head = c;
        s->idle_tail = c;
        return;
    }
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        s->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        s->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

/* Frees the connection at the end of the loop pass. */
static void http_conn_reap(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->reaped)
        return;
    c->reaped = 1;
    c->reap_next = s->reap;
    s->reap = c;
}

static void http_conn_free(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    assert(!c->on_idle);
    free(c->in);
    free(c->out);
    free(c->hdr);
    free(c);
}

/* Closes the socket. The connection is freed at the end of the pass, or
 * once the application is done with its exchange. */
static void http_conn_gone(struct http_conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    c->srv->n_open--;
    http_peer_drop(c->srv, c->peer_key);
    http_conn_idle_sync(c);
    c->out_off = c->out_len = 0;
    c->lingering = 0;
    if (c->state == HTTP_READING)
        http_conn_reap(c);
}

/* After the application acted outside the connection's own event: have the
 * loop flush it and parse on at the end of the pass. */
static void http_conn_schedule(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->fd < 0) {
        if (c->state == HTTP_READING)
            http_conn_reap(c);
    } else if (!c->in_dispatch && !c->on_ready) {
        c->on_ready = 1;
        c->ready_next = s->ready;
        s->ready = c;
    }
}

/* Answers by itself (an error, a timeout) and closes after that. */
static void http_conn_fail(struct http_conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%s\n", http_reason(status));
    c->closing = 1;
    c->x.started_ns = 0;
    http_answered(c, status, (uint64_t)n);
    if (status == 503)
        http_add_header(&c->x, "Retry-After", "1");
    if (http_out_response(c, status, "text/plain", body, (size_t)n) != 0)
        http_conn_gone(c);
}

static void http_conn_update(struct http_conn *c)
{
    uint32_t mask = 0;
    size_t pending = http_out_pending(c);
    if (c->fd < 0)
        return;
    http_conn_idle_sync(c);
    if (c->lingering) {
        mask = EPOLLIN;
    } else {
        if (pending)
            mask |= EPOLLOUT;
        if (c->state != HTTP_READING)
            mask |= EPOLLRDHUP;
        else if (!c->closing && !c->peer_eof && pending < HTTP_OUT_HIGH)
            mask |= EPOLLIN;
    }
    if (mask == c->events)
        return;
    struct epoll_event ev = {.events = mask, .data.ptr = c};
    if (epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        http_conn_gone(c);
    else
        c->events = mask;
}

/* Sends what the output holds; then, if closing, begins the close. */
static void http_conn_flush(struct http_conn *c)
{
    while (c->fd >= 0 && http_out_pending(c) > 0) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, http_out_pending(c), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            http_conn_gone(c);
            return;
        }
        c->out_off += (size_t)n;
        c->out_ms = c->srv->now_ms;
    }
    if (c->fd < 0)
        return;
    c->out_off = c->out_len = 0;
    if (c->out_cap > HTTP_OUT_KEEP) {
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    if (c->closing && c->state == HTTP_READING && !c->lingering) {
        if (c->peer_eof || shutdown(c->fd, SHUT_WR) != 0) {
            http_conn_gone(c);
        } else {
            c->lingering = 1;
            c->linger_ms = c->srv->now_ms;
        }
    }
}

/* Reads and drops what a closing peer still sends, until it closes. */
static void http_conn_linger(struct http_conn *c)
{
    char sink[16384];
    for (int i = 0; i < 4; i++) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0)
            continue;
        if (n < 0 &&
            (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        break;
    }
    http_conn_gone(c);
}

/* Reads once into the input buffer. */
static void http_conn_read(struct http_conn *c)
{
    if (c->in_cap - c->in_len < 1024 &&
        http_buf_reserve(&c->in, &c->in_cap, c->in_len + 1024) != 0) {
        http_conn_gone(c);
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n > 0) {
        if (c->in_len == 0)
            c->req_begin_ms = c->srv->now_ms;
        c->in_len += (size_t)n;
        http_conn_idle_sync(c); /* busy now, idle anew once answered */
    } else if (n == 0) {
        c->peer_eof = 1;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        http_conn_gone(c);
    }
}

static void http_conn_dispatch(struct http_conn *c)
{
    struct http_server *s = c->srv;
    c->x.started_ns = clock_mono_ns();
    c->state = HTTP_HANDLING;
    c->requests++;
    s->handling++;
    c->in_dispatch = 1;
    s->cfg.handler(s->cfg.ctx, &c->x);
    c->in_dispatch = 0;
}

/* Parses and hands over the requests read so far, one at a time. */
static void http_conn_advance(struct http_conn *c)
{
    int rc = HTTP_DONE;
    while (c->fd >= 0 && c->state == HTTP_READING && !c->closing &&
           http_out_pending(c) < HTTP_OUT_HIGH) {
        rc = http_parse_advance(&c->p, &c->x.req, c->in, &c->in_len);
        if (rc == HTTP_MORE)
            break;
        if (rc != HTTP_DONE) {
            http_conn_fail(c, rc);
            return;
        }
        http_conn_dispatch(c);
    }
    if (c->fd < 0)
        return;
    if (c->peer_eof && c->state != HTTP_READING) {
        http_conn_gone(c); /* the application keeps the exchange */
    } else if (rc == HTTP_MORE && c->peer_eof) {
        c->closing = 1; /* what is left can never complete */
    } else if (rc == HTTP_MORE && c->p.head_len && c->x.req.expect_continue &&
               !c->continue_sent) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->continue_sent = 1;
        if (http_out_append(c, cont, sizeof cont - 1) != 0)
            http_conn_gone(c);
    }
}

/* Moves the connection on as far as it goes, then registers its mask. */
static void http_conn_progress(struct http_conn *c)
{
    if (c->state == HTTP_READING)
        http_conn_advance(c);
    http_conn_flush(c);
    http_conn_update(c);
}

static void http_conn_on_event(struct http_conn *c, uint32_t events)
{
    if (c->fd < 0)
        return;
    if (events & EPOLLERR) {
        http_conn_gone(c);
        return;
    }
    if (c->lingering) {
        http_conn_linger(c);
        return;
    }
    if (c->state != HTTP_READING) {
        if (events & (EPOLLRDHUP | EPOLLHUP))
            http_conn_gone(c);
        else if (events & EPOLLOUT)
            http_conn_progress(c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLHUP)) && !c->closing && !c->peer_eof)
        http_conn_read(c);
    else if (events & EPOLLHUP)
        http_conn_gone(c);
    if (c->fd >= 0)
        http_conn_progress(c);
}

/* Applies the timeouts to one connection. */
static void http_conn_sweep(struct http_conn *c, int64_t now)
{
    const struct http_config *cfg = &c->srv->cfg;
    if (c->fd < 0)
        return;
    if (c->lingering) {
        if (now - c->linger_ms >= HTTP_LINGER_MS)
            http_conn_gone(c);
    } else if (http_out_pending(c) > 0) {
        if (c->state != HTTP_STREAMING &&
            now - c->out_ms >= cfg->idle_timeout_ms)
            http_conn_gone(c); /* the client does not read */
    } else if (c->state == HTTP_READING && !c->closing) {
        int begun = c->in_len > 0 || c->p.started;
        int first_late = c->requests == 0 && !c->p.head_len &&
                         now - c->accepted_ms >= cfg->first_request_timeout_ms;
        if (begun &&
            (first_late || now - c->req_begin_ms >= cfg->read_timeout_ms)) {
            http_conn_fail(c, 408);
            http_conn_flush(c);
            http_conn_update(c);
        } else if (!begun && (first_late ||
                              now - c->idle_since_ms >= cfg->idle_timeout_ms)) {
            http_conn_gone(c);
        }
    }
}

/* ---- the server ---- */

static void http_accept_pause(struct http_server *s, int paused)
{
    struct epoll_event ev = {.events = paused ? 0 : EPOLLIN,
                             .data.ptr = &s->listen_fd};
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev) == 0)
        s->accept_paused = paused;
}

/* Names the peer (for logs), says whether it is loopback, and derives its
 * key in srv->peers: an IPv4 address as IPv4-mapped IPv6, an IPv6 address
 * by its /64 prefix (one host commonly holds a whole /64). */
static void http_peer_name(struct http_conn *c,
                           const struct sockaddr_storage *ss)
{
    uint8_t *key = c->peer_key;
    memset(key, 0, HTTP_PEER_KEY);
    snprintf(c->peer, sizeof c->peer, "local");
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, c->peer, sizeof c->peer);
        c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        const uint8_t *b = a->sin6_addr.s6_addr;
        int v4 = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
        inet_ntop(AF_INET6, &a->sin6_addr, c->peer, sizeof c->peer);
        c->loopback =
            IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) || (v4 && b[12] == 127);
        memcpy(key, b, v4 ? HTTP_PEER_KEY : 8);
    } else {
        c->loopback = 1;
    }
}

/* Closes the connection idle the longest, to make room for a newcomer:
 * 0, or CTRD_ENOTFOUND when none is idle. */
static int http_evict_idle(struct http_server *s, const char *reason)
{
    struct http_conn *c = s->idle_head;
    if (!c)
        return CTRD_ENOTFOUND;
    if (s->cfg.access_log) {
        struct http_log l;
        http_log_begin(&l, c->peer);
        http_log_fmt(&l,
                     " event=evicted reason=%s idle_ms=%" PRId64
                     " requests=%" PRIu64,
                     reason, s->now_ms - c->idle_since_ms, c->requests);
        http_log_end(&l);
    }
    http_conn_gone(c);
    return 0;
}

/* Whether the server takes the new connection c: NULL, or the limit that
 * refuses it (its name, and its value in *limit). At the connection limit
 * an idle connection makes room if there is one. */
static const char *http_admit(struct http_server *s, const struct http_conn *c,
                              unsigned *limit)
{
    if (http_peer_conns(s, c->peer_key) >= s->cfg.max_connections_per_peer) {
        *limit = s->cfg.max_connections_per_peer;
        return "peer_limit";
    }
    if (s->n_open >= s->cfg.max_connections &&
        http_evict_idle(s, "connection_limit") != 0) {
        *limit = s->cfg.max_connections;
        return "connection_limit";
    }
    return NULL;
}

/* Over a connection limit: answer 503 straight away and close. */
static void http_refuse(struct http_server *s, int fd, const char *reason,
                        unsigned limit, const char *peer)
{
#define HTTP_BUSY_BODY "Service Unavailable\n"
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Server: ctrd\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 20\r\n"
                               "Retry-After: 1\r\n"
                               "Connection: close\r\n\r\n" HTTP_BUSY_BODY;
    _Static_assert(sizeof HTTP_BUSY_BODY - 1 == 20, "its Content-Length");
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    close(fd);
    http_count(s, 503);
    if (s->cfg.access_log) {
        struct http_log l;
        http_log_begin(&l, peer);
        http_log_fmt(&l,
                     " event=refused reason=%s limit=%u status=503 bytes=%zu",
                     reason, limit, sizeof HTTP_BUSY_BODY - 1);
        http_log_end(&l);
    }
#undef HTTP_BUSY_BODY
}

/* Takes a new connection in, or refuses it. */
static void http_conn_open(struct http_server *s, int fd,
                           const struct sockaddr_storage *ss)
{
    struct http_conn *c = calloc(1, sizeof *c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    const char *refusal;
    unsigned limit;
    if (!c) {
        close(fd);
        return;
    }
    http_peer_name(c, ss);
    if ((refusal = http_admit(s, c, &limit)) != NULL) {
        http_refuse(s, fd, refusal, limit, c->peer);
        free(c);
        return;
    }
    if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(c);
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->srv = s;
    c->fd = fd;
    c->events = EPOLLIN;
    c->x.conn = c;
    c->x.req.method = c->x.req.path = c->x.req.query = HTTP_NONE;
    http_parser_init(&c->p, s->cfg.max_head_bytes, s->cfg.max_body_bytes);
    c->accepted_ms = s->now_ms;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_open++;
    http_peer_add(s, c->peer_key);
    http_conn_idle_sync(c);
}

static void http_accept(struct http_server *s)
{
    for (int i = 0; i < HTTP_ACCEPT_MAX && s->listen_fd >= 0; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            http_conn_open(s, fd, &ss);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if ((errno == EMFILE || errno == ENFILE) &&
            http_evict_idle(s, "descriptors") == 0)
            continue; /* its descriptor is free now */
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
            errno == ENOMEM)
            http_accept_pause(s, 1);
        return;
    }
}

static void http_posts_run(struct http_server *s)
{
    pthread_mutex_lock(&s->post_mu);
    struct http_post *batch = s->posts;
    size_t n = s->n_posts, cap = s->post_cap;
    s->posts = s->spare;
    s->post_cap = s->spare_cap;
    s->n_posts = 0;
    s->spare = batch;
    s->spare_cap = cap;
    pthread_mutex_unlock(&s->post_mu);
    for (size_t i = 0; i < n; i++)
        batch[i].fn(batch[i].arg);
}

static void http_wake(struct http_server *s)
{
    uint64_t count;
    ssize_t n = read(s->wake_fd, &count, sizeof count);
    (void)n;
    http_posts_run(s);
}

static void http_timers_run(struct http_server *s)
{
    for (size_t i = 0; i < s->n_timers; i++) {
        if (s->now_ms < s->timers[i].next_ms)
            continue;
        s->timers[i].fn(s->timers[i].arg); /* may add timers */
        struct http_timer *t = &s->timers[i];
        t->next_ms += t->interval_ms;
        if (t->next_ms <= s->now_ms)
            t->next_ms = s->now_ms + t->interval_ms;
    }
}

static void http_sweep(struct http_server *s)
{
    for (struct http_conn *c = s->conns; c; c = c->next)
        http_conn_sweep(c, s->now_ms);
    if (s->accept_paused && s->listen_fd >= 0)
        http_accept_pause(s, 0);
    s->next_sweep_ms = s->now_ms + HTTP_SWEEP_MS;
}

static void http_ready_run(struct http_server *s)
{
    struct http_conn *c;
    while ((c = s->ready) != NULL) {
        s->ready = c->ready_next;
        c->on_ready = 0;
        if (c->fd >= 0)
            http_conn_progress(c);
    }
}

static void http_reap_run(struct http_server *s)
{
    struct http_conn *c;
    while ((c = s->reap) != NULL) {
        s->reap = c->reap_next;
        http_conn_free(c);
    }
}

/* Milliseconds until the next sweep, timer or until_ms (if >= 0). */
static int http_wait_ms(const struct http_server *s, int64_t until_ms)
{
    int64_t next = s->next_sweep_ms;
    for (size_t i = 0; i < s->n_timers; i++)
        if (s->timers[i].next_ms < next)
            next = s->timers[i].next_ms;
    if (until_ms >= 0 && until_ms < next)
        next = until_ms;
    int64_t wait = next - clock_mono_ms();
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
}

/* One pass of the loop. */
static void http_loop_once(struct http_server *s, int64_t until_ms)
{
    struct epoll_event ev[HTTP_EVENTS];
    int n = epoll_wait(s->epoll_fd, ev, HTTP_EVENTS, http_wait_ms(s, until_ms));
    s->now_ms = clock_mono_ms();
    for (int i = 0; i < n; i++) {
        void *tag = ev[i].data.ptr;
        if (tag == &s->listen_fd)
            http_accept(s);
        else if (tag == &s->wake_fd)
            http_wake(s);
        else
            http_conn_on_event(tag, ev[i].events);
    }
    http_timers_run(s);
    if (s->now_ms >= s->next_sweep_ms)
        http_sweep(s);
    http_ready_run(s);
    http_reap_run(s);
}

/* Stop accepting; close what has no answer on its way. */
static void http_drain_begin(struct http_server *s)
{
    s->draining = 1;
    if (s->listen_fd >= 0) {
        epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, s->listen_fd, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    for (struct http_conn *c = s->conns; c; c = c->next) {
        if (c->fd < 0 || c->state != HTTP_READING || c->closing)
            continue;
        if (c->in_len > 0 || c->p.started) {
            http_conn_fail(c, 503); /* a request half read */
        } else if (http_out_pending(c) == 0) {
            http_conn_gone(c);
            continue;
        }
        c->closing = 1;
        http_conn_flush(c);
        http_conn_update(c);
    }
    http_reap_run(s);
}

/* Whether answers are still on their way or being sent. */
static int http_drain_busy(const struct http_server *s)
{
    if (s->handling > 0)
        return 1;
    for (const struct http_conn *c = s->conns; c; c = c->next)
        if (c->fd >= 0 && c->state == HTTP_READING && !c->lingering &&
            http_out_pending(c) > 0)
            return 1;
    return 0;
}

/* "HOST:PORT", "[IPV6]:PORT", "localhost:PORT", ":PORT" (all IPv4). 0 or
 * CTRD_EINVAL. */
static int http_parse_listen(const char *addr, struct sockaddr_storage *ss,
                             socklen_t *len)
{
    char host[INET6_ADDRSTRLEN];
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *he = colon;
    if (!colon)
        return CTRD_EINVAL;
    if (addr[0] == '[') {
        h = addr + 1;
        he = colon - 1;
        if (he < h || *he != ']')
            return CTRD_EINVAL;
    }
    size_t hn = (size_t)(he - h);
    if (hn >= sizeof host)
        return CTRD_EINVAL;
    memcpy(host, h, hn);
    host[hn] = '\0';

    const char *pp = colon + 1;
    size_t digits = strspn(pp, "0123456789");
    if (digits == 0 || digits > 5 || pp[digits] != '\0')
        return CTRD_EINVAL;
    long port = strtol(pp, NULL, 10);
    if (port > 65535)
        return CTRD_EINVAL;

    memset(ss, 0, sizeof *ss);
    if (addr[0] == '[') {
        struct sockaddr_in6 *a6 = (void *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : CTRD_EINVAL;
    }
    struct sockaddr_in *a4 = (void *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    if (hn == 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : CTRD_EINVAL;
}

static int http_listen(struct http_server *s, char *err)
{
    const char *addr = s->cfg.listen ? s->cfg.listen : "(null)";
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    if (!s->cfg.listen || http_parse_listen(addr, &ss, &len) != 0)
        return ctrd_fail(err, CTRD_EINVAL,
                         "listen %s: want HOST:PORT, [IPV6]:PORT or "
                         "localhost:PORT",
                         addr);
    s->listen_fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) !=
            0 ||
        bind(s->listen_fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(s->listen_fd, SOMAXCONN) != 0)
        return ctrd_fail(err, CTRD_EIO, "listen %s: %s", addr, strerror(errno));
    len = sizeof ss;
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &len) != 0)
        return ctrd_fail(err, CTRD_EIO, "listen %s: %s", addr, strerror(errno));
    s->port =
        ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                       : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* Raises the soft limit on open descriptors (never above the hard one) so
 * that the connection limit, not the descriptor limit, is met first. */
static void http_fit_descriptors(unsigned max_connections)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_connections + HTTP_FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur =
        rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl); /* if refused: eviction still helps */
}

/* The counters of answers by class, in cfg.metrics if there is one. */
static int http_metrics_create(struct http_server *s, char *err)
{
    for (int i = 0; s->cfg.metrics && i < 5; i++) {
        char labels[16];
        snprintf(labels, sizeof labels, "class=\"%dxx\"", i + 1);
        s->responses[i] = metrics_counter(
            s->cfg.metrics, "ctrd_http_responses_total",
            "HTTP answers by status class, the server's own included.", labels);
        if (!s->responses[i])
            return ctrd_fail(err, CTRD_ENOMEM,
                             "http: cannot create ctrd_http_responses_total");
    }
    return 0;
}

int http_server_create(const struct http_config *cfg, struct http_server **out,
                       char *err)
{
    struct http_server *s;
    int rc;

    *out = NULL;
    if (!cfg->handler)
        return ctrd_fail(err, CTRD_EINVAL, "http: no handler");
    if (!(s = calloc(1, sizeof *s)))
        return ctrd_fail(err, CTRD_ENOMEM, "http: out of memory");
    s->cfg = *cfg;
    if (!s->cfg.max_head_bytes)
        s->cfg.max_head_bytes = 16 * 1024;
    if (!s->cfg.max_body_bytes)
        s->cfg.max_body_bytes = (size_t)64 << 20;
    if (s->cfg.read_timeout_ms <= 0)
        s->cfg.read_timeout_ms = 30000;
    if (s->cfg.idle_timeout_ms <= 0)
        s->cfg.idle_timeout_ms = 60000;
    if (s->cfg.first_request_timeout_ms <= 0)
        s->cfg.first_request_timeout_ms = 10000;
    if (!s->cfg.max_connections)
        s->cfg.max_connections = 4096;
    if (!s->cfg.max_connections_per_peer)
        s->cfg.max_connections_per_peer = 1024;
    s->listen_fd = s->epoll_fd = s->wake_fd = -1;
    atomic_init(&s->stop, 0);
    pthread_mutex_init(&s->post_mu, NULL);

    if ((rc = http_metrics_create(s, err)) != 0)
        goto fail;
    http_fit_descriptors(s->cfg.max_connections);
    size_t slots = 2;
    while (slots < (size_t)s->cfg.max_connections * 2)
        slots *= 2;
    s->peer_mask = slots - 1;
    if (!(s->peers = calloc(slots, sizeof *s->peers))) {
        rc = ctrd_fail(err, CTRD_ENOMEM, "http: out of memory");
        goto fail;
    }
    if ((rc = http_listen(s, err)) != 0)
        goto fail;
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s->listen_fd};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &s->wake_fd};
    if (s->epoll_fd < 0 || s->wake_fd < 0 ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &lev) != 0 ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &wev) != 0) {
        rc = ctrd_fail(err, CTRD_EIO, "http: epoll: %s", strerror(errno));
        goto fail;
    }
    s->now_ms = clock_mono_ms();
    *out = s;
    return 0;
fail:
    http_server_free(s);
    return rc;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

int http_server_run(struct http_server *s, int64_t drain_ms)
{
    s->now_ms = clock_mono_ms();
    s->next_sweep_ms = s->now_ms + HTTP_SWEEP_MS;
    while (!atomic_load(&s->stop))
        http_loop_once(s, -1);

    http_drain_begin(s);
    int64_t until = s->now_ms + (drain_ms > 0 ? drain_ms : 0);
    while (s->now_ms < until && http_drain_busy(s))
        http_loop_once(s, until);

    for (struct http_conn *c = s->conns; c; c = c->next)
        http_conn_gone(c); /* streams and late answers included */
    http_posts_run(s);
    http_reap_run(s);
    return 0;
}

void http_server_stop(struct http_server *s)
{
    uint64_t one = 1;
    atomic_store(&s->stop, 1);
    ssize_t n = write(s->wake_fd, &one, sizeof one);
    (void)n;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    /* Posts still queued carry answers (and what they own): run them. */
    for (int round = 0; round < 100 && s->n_posts > 0; round++)
        http_posts_run(s);
    for (struct http_conn *c = s->conns; c; c = c->next)
        http_conn_gone(c);
    s->reap = NULL; /* every connection goes below */
    while (s->conns)
        http_conn_free(s->conns);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->epoll_fd >= 0)
        close(s->epoll_fd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->post_mu);
    free(s->peers);
    free(s->posts);
    free(s->spare);
    free(s->timers);
    free(s);
}

int http_server_post(struct http_server *s, void (*fn)(void *arg), void *arg)
{
    int wake = 0, rc = 0;
    pthread_mutex_lock(&s->post_mu);
    if (s->n_posts == s->post_cap) {
        size_t cap = s->post_cap ? s->post_cap * 2 : 64;
        struct http_post *p = realloc(s->posts, cap * sizeof *p);
        if (!p)
            rc = CTRD_ENOMEM;
        else
            s->posts = p, s->post_cap = cap;
    }
    if (rc == 0) {
        s->posts[s->n_posts].fn = fn;
        s->posts[s->n_posts].arg = arg;
        wake = s->n_posts++ == 0;
    }
    pthread_mutex_unlock(&s->post_mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(s->wake_fd, &one, sizeof one);
        (void)n;
    }
    return rc;
}

int http_server_every(struct http_server *s, int64_t interval_ms,
                      void (*fn)(void *arg), void *arg)
{
    if (interval_ms <= 0 || !fn)
        return CTRD_EINVAL;
    struct http_timer *t =
        realloc(s->timers, (s->n_timers + 1) * sizeof *s->timers);
    if (!t)
        return CTRD_ENOMEM;
    s->timers = t;
    t[s->n_timers].interval_ms = interval_ms;
    t[s->n_timers].next_ms = clock_mono_ms() + interval_ms;
    t[s->n_timers].fn = fn;
    t[s->n_timers].arg = arg;
    s->n_timers++;
    return 0;
}

/* ---- the request ---- */

const char *http_method(const struct http_exchange *x)
{
    return x->conn->in + x->req.method;
}

const char *http_path(const struct http_exchange *x)
{
    return x->conn->in + x->req.path;
}

const char *http_query(const struct http_exchange *x)
{
    return x->conn->in + x->req.query;
}

const char *http_header(const struct http_exchange *x, const char *name)
{
    return http_request_header(&x->req, x->conn->in, name);
}

int http_param(const struct http_exchange *x, const char *name, char *out,
               size_t out_len)
{
    return http_query_param(http_query(x), name, out, out_len);
}

const char *http_body(const struct http_exchange *x, size_t *len)
{
    *len = x->req.body_len;
    return x->conn->in + x->req.body;
}

int http_peer_is_loopback(const struct http_exchange *x)
{
    return x->conn->loopback;
}

uint64_t http_started_ns(const struct http_exchange *x)
{
    return x->started_ns;
}

int http_exchange_closed(const struct http_exchange *x)
{
    return x->conn->fd < 0;
}

/* ---- the answer ---- */

void http_add_header(struct http_exchange *x, const char *name,
                     const char *value)
{
    struct http_conn *c = x->conn;
    size_t nn = strlen(name), vn = strlen(value);
    if (c->state != HTTP_HANDLING || !http_is_token(name) ||
        value[strcspn(value, "\r\n")] != '\0')
        return; /* would break the head: dropped */
    if (http_buf_reserve(&c->hdr, &c->hdr_cap, c->hdr_len + nn + vn + 4))
        return;
    char *h = c->hdr + c->hdr_len;
    memcpy(h, name, nn);
    memcpy(h + nn, ": ", 2);
    memcpy(h + nn + 2, value, vn);
    memcpy(h + nn + 2 + vn, "\r\n", 2);
    c->hdr_len += nn + vn + 4;
}

/* The exchange is over for the application. */
static void http_exchange_end(struct http_conn *c, int status, uint64_t bytes)
{
    http_answered(c, status, bytes);
    if (c->state == HTTP_HANDLING)
        c->srv->handling--;
    c->state = HTTP_READING;
    c->hdr_len = 0;
    http_conn_consume(c);
    http_conn_schedule(c);
}

void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const char *body, size_t len)
{
    struct http_conn *c = x->conn;
    assert(c->state == HTTP_HANDLING);
    if (c->state != HTTP_HANDLING)
        return;
    if (status < 100 || status > 999)
        status = 500;
    if (c->fd >= 0) {
        c->closing = !x->req.keep_alive || c->srv->draining;
        if (http_out_response(c, status, content_type, body, len) != 0)
            http_conn_gone(c);
    }
    http_exchange_end(c, status, len);
}

void http_stream_start(struct http_exchange *x, const char *content_type)
{
    struct http_conn *c = x->conn;
    assert(c->state == HTTP_HANDLING);
    if (c->state != HTTP_HANDLING)
        return;
    c->state = HTTP_STREAMING;
    c->srv->handling--;
    c->stream_bytes = 0;
    if (c->fd >= 0 &&
        http_out_head(c, 200, content_type,
                      "Cache-Control: no-cache\r\nConnection: keep-alive\r\n",
                      0) != 0)
        http_conn_gone(c);
    c->hdr_len = 0;
    http_conn_schedule(c);
}

int http_stream_write(struct http_exchange *x, const char *data, size_t len)
{
    struct http_conn *c = x->conn;
    assert(c->state == HTTP_STREAMING);
    if (c->fd < 0 || c->state != HTTP_STREAMING)
        return CTRD_EIO;
    if (http_out_pending(c) + len > HTTP_STREAM_MAX)
        return CTRD_EAGAIN;
    if (http_out_append(c, data, len) != 0) {
        http_conn_gone(c);
        return CTRD_EIO;
    }
    c->stream_bytes += len;
    http_conn_schedule(c);
    return 0;
}

void http_stream_end(struct http_exchange *x)
{
    struct http_conn *c = x->conn;
    assert(c->state == HTTP_STREAMING);
    if (c->state != HTTP_STREAMING)
        return;
    c->closing = 1;
    http_exchange_end(c, 200, c->stream_bytes);
}
