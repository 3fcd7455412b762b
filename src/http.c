/* http: the HTTP/1.1 server, its event loop and admission; see http.h.
 * One connection's life (buffers, parsing, answers, timeouts) is in
 * http_conn.c; what both files share is in http_int.h.
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
 * ACCESS LOG. Built here, where every answer, refusal and eviction is
 * known; see http.h for its lines.
 *
 * TIMES. now_ms (the monotonic clock of clock.h) is read once per pass;
 * http_conn.c derives the connections' deadlines from it.
 *
 * LIMITS. The idle list holds the connections that wait for a request with
 * nothing to send, in the order they became idle: when the table is full
 * (or descriptors run out) its head makes room for a newcomer. Whether a
 * connection is idle is re-derived each time it was moved on
 * (http_conn_update) and when it closes. The peer table counts the open
 * connections of each client address.
 *
 * Threads: the loop thread owns everything but the posts (post_mu) and
 * the stop flag, which http_server_post and http_server_stop reach from
 * any thread. */
#include "http_int.h"

#include "clock.h"
#include "hash.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_SWEEP_MS 100
#define HTTP_ACCEPT_MAX 64 /* accepts per pass */
#define HTTP_EVENTS 256
#define HTTP_LOG_LINE 2048    /* an access log line, truncated beyond */
#define HTTP_LOG_PATH_MAX 256 /* path and query bytes logged, each */
#define HTTP_LOG_METHOD_MAX 32
#define HTTP_FD_RESERVE 256 /* descriptors beyond the connections: files */

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
void http_answered(const struct http_conn *c, int status, uint64_t bytes)
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
 * shift, so no tombstones. A table of its own rather than table.h: fixed-
 * size keys, removal, on the accept path. Slots come from the seeded hash:
 * peers choose their addresses. */

static size_t http_peer_home(const struct http_server *s, const uint8_t *key)
{
    return (size_t)hash_slot_bytes(key, HTTP_PEER_KEY) & s->peer_mask;
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

void http_peer_drop(struct http_server *s, const uint8_t *key)
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
    for (struct http_conn *c = s->conns; c; c = c->next)
        http_conn_drain(c);
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

int http_listen_address(const char *addr, struct sockaddr_storage *ss,
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

    if (!s->cfg.listen || http_listen_address(addr, &ss, &len) != 0)
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

static struct http_server *signal_target;

static void stop_on_signal(int sig)
{
    (void)sig;
    if (signal_target)
        http_server_stop(signal_target);
}

int http_server_run_until_signal(struct http_server *s, int64_t drain_ms)
{
    signal_target = s;
    struct sigaction sa = {.sa_handler = stop_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = http_server_run(s, drain_ms);
    signal_target = NULL;
    return rc;
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
