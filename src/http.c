/* http: the HTTP/1.1 server; see http.h.
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
 * PARSER. Resumable: the search for the end of the head resumes where the
 * last read stopped; the head is then parsed once, in place (the strings
 * handed out are NUL-terminated inside the input buffer); a chunked body
 * is decoded in place, byte state by byte state, the decoded bytes moved
 * down to follow the head. Line ends are CRLF or a bare LF.
 *
 * TIMES. now_ms is read once per pass. Deadlines are not stored: the sweep
 * derives them from when the connection was accepted (its first request),
 * when the request began, when the connection became idle, when output
 * last made progress and when lingering began.
 *
 * LIMITS. The idle list holds the connections that wait for a request with
 * nothing to send, in the order they became idle: when the table is full
 * (or descriptors run out) its head makes room for a newcomer. Whether a
 * connection is idle is re-derived each time it was moved on
 * (http_conn_update) and when it closes. The peer table counts the open
 * connections of each client address. */
#include "http.h"

#include "hash.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
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

#define HTTP_FIELDS_MAX 64       /* header fields per request, else 431 */
#define HTTP_IN_MIN 4096         /* first input buffer */
#define HTTP_IN_KEEP (64 * 1024) /* larger buffers shrink when idle */
#define HTTP_OUT_KEEP (256 * 1024)
#define HTTP_OUT_HIGH (64 * 1024)     /* stop reading requests above this */
#define HTTP_STREAM_MAX (1024 * 1024) /* unsent stream bytes, else drop */
#define HTTP_SWEEP_MS 100
#define HTTP_LINGER_MS 2000
#define HTTP_ACCEPT_MAX 64 /* accepts per pass */
#define HTTP_EVENTS 256
#define HTTP_LOG_PATH_MAX 200
#define HTTP_PEER_LEN (INET6_ADDRSTRLEN + 8)
#define HTTP_PEER_KEY 16 /* an IPv6 address; IPv4 ones as IPv4-mapped */
#define HTTP_FD_RESERVE 256 /* descriptors beyond the connections: files */

/* http_req_advance results; anything else is a status to answer with. */
enum { HTTP_MORE = 0, HTTP_DONE = 1 };

enum http_state { HTTP_READING, HTTP_HANDLING, HTTP_STREAMING };

/* Chunked-body decoder states. */
enum http_chunk_state {
    CH_SIZE_FIRST, /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, or the end of the size */
    CH_EXT,        /* a chunk extension, up to the line end */
    CH_SIZE_LF,    /* LF after the size line's CR */
    CH_DATA,       /* chunk_left data bytes */
    CH_DATA_CR,    /* CR (or LF) after the data */
    CH_DATA_LF,    /* LF after it */
    CH_TRAILER,    /* start of a trailer line, or the final empty line */
    CH_TRAILER_LINE,
    CH_END_LF /* LF of the final empty line */
};

/* Where no string was parsed (yet). */
#define HTTP_NONE SIZE_MAX

/* A header field: offsets of its NUL-terminated name and value. */
struct http_field {
    size_t name, value;
};

/* One request and its answer. Its strings are offsets into conn->in, not
 * pointers: the buffer may move while the body is read. */
struct http_exchange {
    struct http_conn *conn;
    size_t method, path, query; /* HTTP_NONE until parsed */
    struct http_field fields[HTTP_FIELDS_MAX];
    unsigned n_fields;
    int minor;           /* HTTP/1.minor */
    int keep_alive;      /* the client lets the connection live on */
    int is_head;         /* method HEAD: answer without the body */
    int expect_continue; /* "Expect: 100-continue" */
    int chunked;         /* Transfer-Encoding: chunked */
    int has_length;      /* a Content-Length was given */
    int conn_close, conn_keep_alive; /* Connection tokens seen */
    uint64_t content_length;
    size_t body, body_len; /* the body's offset (after the head), length */
    uint64_t started_ns;   /* read whole */
};

/* Where the parse of the request at the start of conn->in stands. */
struct http_parser {
    size_t scan;     /* the head-end search resumes here */
    size_t start;    /* first byte after leading empty lines */
    int started;     /* start is known */
    size_t head_len; /* 0 until the head is complete */
    size_t src;      /* chunked: next undecoded byte */
    size_t body_len; /* decoded body bytes, right after the head */
    enum http_chunk_state cstate;
    uint64_t chunk_left; /* size being read, then data bytes left */
    size_t extra;        /* chunk extension and trailer bytes */
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
    char *in; /* the request being read, then read-ahead */
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
    unsigned n_open;   /* connections with a socket */
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
};

/* ---- small helpers ---- */

static int64_t http_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

static int http_is_tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int http_is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int http_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
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

/* ---- the request parser ---- */

/* Whether the name (n bytes) is lit, case-insensitively. */
static int http_name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* Whether the comma-separated list v holds token, case-insensitively. */
static int http_list_has(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (*v) {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, ",");
        size_t t = len;
        while (t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(v, token, n) == 0)
            return 1;
        v += len;
    }
    return 0;
}

/* Steps over a line end (CRLF or LF) at *pp. 0, or -1 if there is none. */
static int http_eol(char **pp, const char *end)
{
    char *p = *pp;
    if (p < end && *p == '\n') {
        *pp = p + 1;
        return 0;
    }
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
        *pp = p + 2;
        return 0;
    }
    return -1;
}

/* "METHOD SP origin-form SP HTTP/1.x EOL". 0 or a status. */
static int http_parse_request_line(char *buf, char **pp, const char *end,
                                   struct http_exchange *x)
{
    char *p = *pp, *m = p;
    while (p < end && http_is_tchar((unsigned char)*p))
        p++;
    if (p == m || p == end || *p != ' ')
        return 400;
    *p++ = '\0';
    x->method = (size_t)(m - buf);
    x->is_head = strcmp(m, "HEAD") == 0;

    char *t = p;
    while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
        p++;
    if (p == t || p == end || *p != ' ' || *t != '/')
        return 400;
    *p++ = '\0';
    char *q = strchr(t, '?');
    x->path = (size_t)(t - buf);
    x->query = (size_t)(p - 1 - buf); /* "" */
    if (q) {
        *q = '\0';
        x->query = (size_t)(q + 1 - buf);
    }

    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        !http_is_digit(p[5]) || !http_is_digit(p[7]))
        return 400;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return 505;
    x->minor = p[7] - '0';
    p += 8;
    if (http_eol(&p, end) != 0)
        return 400;
    *pp = p;
    return 0;
}

/* Takes note of the fields that frame the message or the connection. */
static int http_field_note(struct http_exchange *x, const char *name, size_t n,
                           const char *v)
{
    if (http_name_is(name, n, "content-length")) {
        uint64_t len = 0;
        size_t digits = strspn(v, "0123456789");
        if (digits == 0 || digits > 18 || v[digits] != '\0')
            return 400;
        for (size_t i = 0; i < digits; i++)
            len = len * 10 + (uint64_t)(v[i] - '0');
        if (x->has_length && len != x->content_length)
            return 400;
        x->has_length = 1;
        x->content_length = len;
    } else if (http_name_is(name, n, "transfer-encoding")) {
        if (strcasecmp(v, "chunked") != 0)
            return 501;
        if (x->chunked)
            return 400; /* chunked twice */
        x->chunked = 1;
    } else if (http_name_is(name, n, "connection")) {
        x->conn_close |= http_list_has(v, "close");
        x->conn_keep_alive |= http_list_has(v, "keep-alive");
    } else if (http_name_is(name, n, "expect")) {
        x->expect_continue |= strcasecmp(v, "100-continue") == 0;
    }
    return 0;
}

/* "name: OWS value OWS EOL"; the value is trimmed and NUL-terminated. */
static int http_parse_field(char *buf, char **pp, const char *end,
                            struct http_exchange *x)
{
    char *p = *pp, *name = p;
    while (p < end && http_is_tchar((unsigned char)*p))
        p++;
    if (p == name || p == end || *p != ':')
        return 400;
    size_t n = (size_t)(p - name);
    *p++ = '\0';
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    char *v = p;
    while (p < end && ((unsigned char)*p >= ' ' || *p == '\t') && *p != 0x7f)
        p++;
    char *ve = p;
    if (http_eol(&p, end) != 0)
        return 400; /* a control character or a bare CR */
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    *ve = '\0';
    if (x->n_fields == HTTP_FIELDS_MAX)
        return 431;
    x->fields[x->n_fields].name = (size_t)(name - buf);
    x->fields[x->n_fields].value = (size_t)(v - buf);
    x->n_fields++;
    *pp = p;
    return http_field_note(x, name, n, v);
}

/* Parses the request head buf[0, len) in place: leading empty lines, the
 * request line, the fields, the empty line that ends the head (and nothing
 * after it). Fills x's request part. 0 or the status to answer with. */
static int http_head_parse(char *buf, size_t len, struct http_exchange *x)
{
    char *p = buf;
    const char *end = buf + len;
    int rc;

    x->method = x->path = x->query = HTTP_NONE;
    x->n_fields = 0;
    x->minor = 0;
    x->keep_alive = x->is_head = x->expect_continue = 0;
    x->chunked = x->has_length = x->conn_close = x->conn_keep_alive = 0;
    x->content_length = 0;
    x->body = len;
    x->body_len = 0;

    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    if ((rc = http_parse_request_line(buf, &p, end, x)) != 0)
        return rc;
    for (;;) {
        if (p < end && (*p == ' ' || *p == '\t'))
            return 400; /* obs-fold */
        if (http_eol(&p, end) == 0)
            break;
        if (p == end)
            return 400;
        if ((rc = http_parse_field(buf, &p, end, x)) != 0)
            return rc;
    }
    if (p != end)
        return 400;
    if (x->chunked && (x->has_length || x->minor == 0))
        return 400;
    x->keep_alive = !x->conn_close && (x->minor == 1 || x->conn_keep_alive);
    x->expect_continue &= x->minor == 1;
    return 0;
}

/* Looks for the empty line that ends the head, resuming where the last
 * call stopped. HTTP_MORE, HTTP_DONE (p->head_len set) or 431. */
static int http_head_find(struct http_parser *p, const char *in, size_t len,
                          size_t max_head)
{
    size_t i = p->scan;
    if (!p->started) {
        while (i < len && (in[i] == '\r' || in[i] == '\n'))
            i++;
        if (i < len) {
            p->start = i;
            p->started = 1;
        }
    }
    while (p->started && i < len) {
        const char *lf = memchr(in + i, '\n', len - i);
        if (!lf)
            break;
        size_t k = (size_t)(lf - in);
        /* in[p->start] is neither CR nor LF, so k - 2 >= start below */
        if (in[k - 1] == '\n' || (in[k - 1] == '\r' && in[k - 2] == '\n')) {
            p->head_len = k + 1;
            return p->head_len > max_head ? 431 : HTTP_DONE;
        }
        i = k + 1;
    }
    p->scan = len;
    return len >= max_head ? 431 : HTTP_MORE;
}

/* The end of a chunk-size line: data, the trailer, or 413. */
static int http_chunk_sized(struct http_parser *p, size_t max_body)
{
    if (p->chunk_left == 0)
        p->cstate = CH_TRAILER;
    else if (p->chunk_left > max_body - p->body_len)
        return 413;
    else
        p->cstate = CH_DATA;
    return HTTP_MORE;
}

/* Feeds one framing byte (anything but chunk data) to the decoder. */
static int http_chunk_byte(struct http_parser *p, int ch, size_t max_body,
                           size_t max_extra)
{
    int v = http_hex(ch);
    switch (p->cstate) {
    case CH_SIZE_FIRST:
        if (v < 0)
            return 400;
        p->chunk_left = (uint64_t)v;
        p->cstate = CH_SIZE;
        return HTTP_MORE;
    case CH_SIZE:
        if (v >= 0) {
            if (p->chunk_left >> 59)
                return 400;
            p->chunk_left = p->chunk_left * 16 + (uint64_t)v;
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
            p->cstate = CH_EXT;
        } else if (ch == '\r') {
            p->cstate = CH_SIZE_LF;
        } else if (ch == '\n') {
            return http_chunk_sized(p, max_body);
        } else {
            return 400;
        }
        return HTTP_MORE;
    case CH_EXT:
        if (ch == '\r')
            p->cstate = CH_SIZE_LF;
        else if (ch == '\n')
            return http_chunk_sized(p, max_body);
        else if ((ch < ' ' && ch != '\t') || ch == 0x7f ||
                 ++p->extra > max_extra)
            return 400;
        return HTTP_MORE;
    case CH_SIZE_LF:
        return ch == '\n' ? http_chunk_sized(p, max_body) : 400;
    case CH_DATA_CR:
        if (ch == '\r')
            p->cstate = CH_DATA_LF;
        else if (ch == '\n')
            p->cstate = CH_SIZE_FIRST;
        else
            return 400;
        return HTTP_MORE;
    case CH_DATA_LF:
        if (ch != '\n')
            return 400;
        p->cstate = CH_SIZE_FIRST;
        return HTTP_MORE;
    case CH_TRAILER:
        if (ch == '\n')
            return HTTP_DONE;
        p->cstate = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
        return ++p->extra > max_extra ? 400 : HTTP_MORE;
    case CH_TRAILER_LINE:
        if (ch == '\n')
            p->cstate = CH_TRAILER;
        return ++p->extra > max_extra ? 400 : HTTP_MORE;
    case CH_END_LF:
        return ch == '\n' ? HTTP_DONE : 400;
    case CH_DATA:
        break;
    }
    return 400; /* CH_DATA is handled by the caller */
}

/* Decodes the chunked body in place as far as it has been read: the data
 * moves down to follow the head; framing bytes are dropped. After HTTP_DONE
 * the read-ahead follows the decoded body. */
static int http_chunked_advance(struct http_conn *c)
{
    struct http_parser *p = &c->p;
    const struct http_config *cfg = &c->srv->cfg;
    size_t i = p->src, end = c->in_len;
    size_t dst = p->head_len + p->body_len;
    int rc = HTTP_MORE;

    while (i < end && rc == HTTP_MORE) {
        if (p->cstate != CH_DATA) {
            rc = http_chunk_byte(p, (unsigned char)c->in[i++],
                                 cfg->max_body_bytes, cfg->max_head_bytes);
            continue;
        }
        size_t n = end - i;
        if (n > p->chunk_left)
            n = (size_t)p->chunk_left;
        memmove(c->in + dst, c->in + i, n);
        dst += n;
        i += n;
        p->body_len += n;
        p->chunk_left -= n;
        if (p->chunk_left == 0)
            p->cstate = CH_DATA_CR;
    }
    if (rc == HTTP_DONE) {
        memmove(c->in + dst, c->in + i, end - i);
        c->in_len = dst + (end - i);
    } else if (rc == HTTP_MORE) {
        c->in_len = dst; /* every byte read so far is decoded */
    }
    p->src = dst;
    return rc;
}

/* Advances the parse of the request at the start of c->in over what has
 * been read: HTTP_MORE, HTTP_DONE (c->x holds the request, body included)
 * or a status to answer with before closing. Touches no socket. */
static int http_req_advance(struct http_conn *c)
{
    struct http_parser *p = &c->p;
    struct http_exchange *x = &c->x;
    const struct http_config *cfg = &c->srv->cfg;
    int rc;

    if (!p->head_len) {
        rc = http_head_find(p, c->in, c->in_len, cfg->max_head_bytes);
        if (rc != HTTP_DONE)
            return rc;
        rc = http_head_parse(c->in, p->head_len, x);
        if (rc != 0)
            return rc;
        if (x->content_length > cfg->max_body_bytes)
            return 413;
        p->src = p->head_len;
        p->cstate = CH_SIZE_FIRST;
    }
    if (x->chunked) {
        rc = http_chunked_advance(c);
        if (rc != HTTP_DONE)
            return rc;
    } else {
        if (c->in_len - p->head_len < x->content_length)
            return HTTP_MORE;
        p->body_len = (size_t)x->content_length;
    }
    x->body = p->head_len;
    x->body_len = p->body_len;
    return HTTP_DONE;
}

/* Drops the request just handled from the input; read-ahead moves down. */
static void http_conn_consume(struct http_conn *c)
{
    size_t used = c->p.head_len + c->p.body_len;
    size_t left = c->in_len - used;
    if (left)
        memmove(c->in, c->in + used, left);
    c->in_len = left;
    memset(&c->p, 0, sizeof c->p);
    c->x.method = c->x.path = c->x.query = HTTP_NONE;
    c->x.is_head = 0;
    c->continue_sent = 0;
    if (left) {
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
    const char *conn = c->closing        ? "Connection: close\r\n"
                       : c->x.minor == 0 ? "Connection: keep-alive\r\n"
                                         : "";
    int bodyless = status < 200 || status == 204 || status == 304;
    if (bodyless)
        snprintf(fields, sizeof fields, "%s", conn);
    else
        snprintf(fields, sizeof fields, "Content-Length: %zu\r\n%s", len, conn);
    if (bodyless || c->x.is_head)
        len = 0;
    if (http_out_head(c, status, ctype, fields, len) != 0)
        return CTRD_ENOMEM;
    if (len)
        memcpy(c->out + c->out_len, body, len);
    c->out_len += len;
    return 0;
}

static void http_access_log(const struct http_conn *c, int status,
                            uint64_t bytes)
{
    const struct http_exchange *x = &c->x;
    if (!c->srv->cfg.access_log)
        return;
    double ms =
        x->started_ns ? (double)(http_now_ns() - x->started_ns) / 1e6 : 0.0;
    /* logfmt: one key=value record per answer; the method and path are
     * printable ASCII without spaces (the parser checked them). */
    fprintf(stderr,
            "access method=%s path=%.*s status=%d bytes=%" PRIu64
            " ms=%.3f peer=%s\n",
            x->method != HTTP_NONE ? c->in + x->method : "-", HTTP_LOG_PATH_MAX,
            x->path != HTTP_NONE ? c->in + x->path : "-", status, bytes, ms,
            c->peer);
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

static unsigned http_peer_conns(const struct http_server *s,
                                const uint8_t *key)
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
    http_access_log(c, status, (uint64_t)n);
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
    c->x.started_ns = http_now_ns();
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
        rc = http_req_advance(c);
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
    } else if (rc == HTTP_MORE && c->p.head_len && c->x.expect_continue &&
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
        } else if (!begun && (first_late || now - c->idle_since_ms >=
                                                cfg->idle_timeout_ms)) {
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
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    uint8_t *key = c->peer_key;
    memset(key, 0, HTTP_PEER_KEY);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)ss;
        const uint8_t *b = a->sin6_addr.s6_addr;
        int v4 = IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        c->loopback =
            IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) || (v4 && b[12] == 127);
        snprintf(c->peer, sizeof c->peer, "[%s]:%u", host, port);
        memcpy(key, b, v4 ? HTTP_PEER_KEY : 8);
    } else {
        snprintf(c->peer, sizeof c->peer, "local");
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
    if (s->cfg.access_log)
        fprintf(stderr,
                "conn event=evicted reason=%s idle_ms=%" PRId64
                " requests=%" PRIu64 " peer=%s\n",
                reason, s->now_ms - c->idle_since_ms, c->requests, c->peer);
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
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Server: ctrd\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 20\r\n"
                               "Retry-After: 1\r\n"
                               "Connection: close\r\n\r\n"
                               "Service Unavailable\n";
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    close(fd);
    if (s->cfg.access_log)
        fprintf(stderr,
                "access method=- path=- status=503 bytes=20 ms=0.000 "
                "reason=%s limit=%u peer=%s\n",
                reason, limit, peer);
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
    int64_t wait = next - http_now_ms();
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
}

/* One pass of the loop. */
static void http_loop_once(struct http_server *s, int64_t until_ms)
{
    struct epoll_event ev[HTTP_EVENTS];
    int n = epoll_wait(s->epoll_fd, ev, HTTP_EVENTS, http_wait_ms(s, until_ms));
    s->now_ms = http_now_ms();
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

/* "HOST:PORT", "[IPV6]:PORT", "localhost:PORT", ":PORT" (all IPv4). */
static int http_parse_listen(const char *addr, struct sockaddr_storage *ss,
                             socklen_t *len)
{
    char host[INET6_ADDRSTRLEN];
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *he = colon;
    if (!colon)
        return -1;
    if (addr[0] == '[') {
        h = addr + 1;
        he = colon - 1;
        if (he < h || *he != ']')
            return -1;
    }
    size_t hn = (size_t)(he - h);
    if (hn >= sizeof host)
        return -1;
    memcpy(host, h, hn);
    host[hn] = '\0';

    const char *pp = colon + 1;
    size_t digits = strspn(pp, "0123456789");
    if (digits == 0 || digits > 5 || pp[digits] != '\0')
        return -1;
    long port = strtol(pp, NULL, 10);
    if (port > 65535)
        return -1;

    memset(ss, 0, sizeof *ss);
    if (addr[0] == '[') {
        struct sockaddr_in6 *a6 = (void *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return inet_pton(AF_INET6, host, &a6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a4 = (void *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    if (hn == 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    return inet_pton(AF_INET, host, &a4->sin_addr) == 1 ? 0 : -1;
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
    rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
                      ? rl.rlim_max
                      : want;
    setrlimit(RLIMIT_NOFILE, &rl); /* if refused: eviction still helps */
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
    s->now_ms = http_now_ms();
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
    s->now_ms = http_now_ms();
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
    t[s->n_timers].next_ms = http_now_ms() + interval_ms;
    t[s->n_timers].fn = fn;
    t[s->n_timers].arg = arg;
    s->n_timers++;
    return 0;
}

/* ---- the request ---- */

const char *http_method(const struct http_exchange *x)
{
    return x->conn->in + x->method;
}

const char *http_path(const struct http_exchange *x)
{
    return x->conn->in + x->path;
}

const char *http_query(const struct http_exchange *x)
{
    return x->conn->in + x->query;
}

const char *http_header(const struct http_exchange *x, const char *name)
{
    const char *in = x->conn->in;
    for (unsigned i = 0; i < x->n_fields; i++)
        if (strcasecmp(in + x->fields[i].name, name) == 0)
            return in + x->fields[i].value;
    return NULL;
}

/* The next byte of a form-encoded component, -1 when malformed. */
static int http_form_byte(const char **pp, const char *end)
{
    const char *p = *pp;
    int ch = (unsigned char)*p++;
    if (ch == '+') {
        ch = ' ';
    } else if (ch == '%') {
        int hi = end - p >= 2 ? http_hex(p[0]) : -1;
        int lo = end - p >= 2 ? http_hex(p[1]) : -1;
        if (hi < 0 || lo < 0)
            return -1;
        ch = hi * 16 + lo;
        p += 2;
    }
    *pp = p;
    return ch;
}

/* Whether the encoded [p, end) decodes to name. */
static int http_form_equals(const char *p, const char *end, const char *name)
{
    while (p < end) {
        int ch = http_form_byte(&p, end);
        if (ch <= 0 || ch != (unsigned char)*name++)
            return 0;
    }
    return *name == '\0';
}

int http_param(const struct http_exchange *x, const char *name, char *out,
               size_t out_len)
{
    const char *q = http_query(x);
    while (*q) {
        const char *end = q + strcspn(q, "&");
        const char *eq = memchr(q, '=', (size_t)(end - q));
        if (http_form_equals(q, eq ? eq : end, name)) {
            const char *v = eq ? eq + 1 : end;
            size_t n = 0;
            while (v < end) {
                int ch = http_form_byte(&v, end);
                if (ch <= 0 || n + 1 >= out_len)
                    return CTRD_EINVAL;
                out[n++] = (char)ch;
            }
            if (out_len == 0)
                return CTRD_EINVAL;
            out[n] = '\0';
            return 0;
        }
        q = *end ? end + 1 : end;
    }
    return CTRD_ENOTFOUND;
}

const char *http_body(const struct http_exchange *x, size_t *len)
{
    *len = x->body_len;
    return x->conn->in + x->body;
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
    if (c->state != HTTP_HANDLING || nn == 0 ||
        strspn(name, "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != nn ||
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
    http_access_log(c, status, bytes);
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
        c->closing = !x->keep_alive || c->srv->draining;
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
