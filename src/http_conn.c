/* http_conn: one connection's life; see http.h for the interface and
 * http_int.h for what it shares with http.c (the server and its loop).
 *
 * Owns a connection's buffers, reading, parsing and dispatching its
 * requests, the exchange API that handlers answer with, flushing and
 * lingering, its timeouts (the sweep) and its place on the idle list.
 * http.c accepts connections, hands them their socket events, sweeps them
 * every SWEEP_MS, runs the ready list and frees the reaped ones at the end
 * of each pass.
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
 * Invariants: while the loop runs, a connection is freed only through the
 * reap list at the end of a pass, and only once its exchange is not with
 * the application (state READING); http_server_free frees the rest. The
 * application is never called back from inside its own call into this
 * module: an answer given during the handler's call is picked up by the
 * parse loop that called it (in_dispatch), one given later puts the
 * connection on the ready list. A connection is on the idle list exactly
 * when http_conn_is_idle() held when it was last synced (each time it was
 * moved on, and when it closed).
 *
 * PARSER. http_parse.c parses the request at the start of the input
 * buffer in place each time a read appended to it; the exchange's request
 * holds offsets into that buffer. Once the request was handled, its bytes
 * are dropped and the read-ahead moves down.
 *
 * TIMES. Deadlines are not stored: the sweep derives them from when the
 * connection was accepted (its first request), when the request began,
 * when the connection became idle, when output last made progress and
 * when lingering began, against srv->now_ms (read once per pass).
 *
 * Threads: the loop thread only; the exchange API is called by the
 * handler, or later from a post or a timer, on that thread. */
#include "http_int.h"

#include "clock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_IN_MIN 4096         /* first input buffer */
#define HTTP_IN_KEEP (64 * 1024) /* larger buffers shrink when idle */
#define HTTP_OUT_KEEP (256 * 1024)
#define HTTP_OUT_HIGH (64 * 1024)     /* stop reading requests above this */
#define HTTP_STREAM_MAX (1024 * 1024) /* unsent stream bytes, else drop */
#define HTTP_LINGER_MS 2000

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
void http_conn_idle_sync(struct http_conn *c)
{
    struct http_server *s = c->srv;
    int idle = http_conn_is_idle(c);
    if (idle == c->on_idle)
        return;
    c->on_idle = idle;
    /* Each link is the neighbour's field, or the list's end when there
     * is no neighbour on that side. */
    if (idle) {
        c->idle_since_ms = s->now_ms;
        c->idle_next = NULL;
        c->idle_prev = s->idle_tail;
        *(c->idle_prev ? &c->idle_prev->idle_next : &s->idle_head) = c;
        s->idle_tail = c;
        return;
    }
    *(c->idle_prev ? &c->idle_prev->idle_next : &s->idle_head) = c->idle_next;
    *(c->idle_next ? &c->idle_next->idle_prev : &s->idle_tail) = c->idle_prev;
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

void http_conn_free(struct http_conn *c)
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
void http_conn_gone(struct http_conn *c)
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
void http_conn_progress(struct http_conn *c)
{
    if (c->state == HTTP_READING)
        http_conn_advance(c);
    http_conn_flush(c);
    http_conn_update(c);
}

void http_conn_on_event(struct http_conn *c, uint32_t events)
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

/* The server stops: closes the connection if nothing is on its way,
 * answers 503 to a request half read, and closes after what is queued.
 * One whose exchange is with the application is left to its answer (which
 * closes it, the server draining). */
void http_conn_drain(struct http_conn *c)
{
    if (c->fd < 0 || c->state != HTTP_READING || c->closing)
        return;
    if (c->in_len > 0 || c->p.started) {
        http_conn_fail(c, 503); /* a request half read */
    } else if (http_out_pending(c) == 0) {
        http_conn_gone(c);
        return;
    }
    c->closing = 1;
    http_conn_flush(c);
    http_conn_update(c);
}

/* Applies the timeouts to one connection. */
void http_conn_sweep(struct http_conn *c, int64_t now)
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
