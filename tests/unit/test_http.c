/* Unit tests of http: a real server on 127.0.0.1:0 runs in a thread and
 * plain sockets talk to it — parsing, bodies, keep-alive, pipelining,
 * limits, timeouts, asynchronous answers, streams, timers and the graceful
 * stop. Every wait is bounded: sockets time out after CLIENT_TIMEOUT_MS and
 * an alarm ends a run that hangs anyway. SIGPIPE is left at its default, so
 * a write to a closed socket without MSG_NOSIGNAL would kill the test. */
#include "check.h"
#include "http.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS 3000
#define WAIT_MS 3000

/* ---- the server under test ---- */

struct server {
    struct http_server *s;
    pthread_t thread;
    int run_rc;
    atomic_int returned;
};

static struct server srv;

/* State shared with the handler; touched on the loop thread only, except
 * the atomics. */
static struct http_exchange *held; /* the last /async or /stream exchange */
static atomic_int n_held;          /* how many were held so far */
static atomic_int n_ticks;         /* http_server_every calls */
static char reply[16384];

static void respond_text(struct http_exchange *x, int status, const char *s)
{
    http_respond(x, status, "text/plain", s, strlen(s));
}

static const char *param(const struct http_exchange *x, const char *name,
                         char *buf, size_t len)
{
    int rc = http_param(x, name, buf, len);
    if (rc != 0)
        snprintf(buf, len, "<%d>", rc);
    return buf;
}

static void handle_echo(struct http_exchange *x)
{
    char a[64], ab[64], name[64], plus[64], bad[64], none[64], tiny[8];
    size_t len;
    const char *body = http_body(x, &len);
    const char *xt = http_header(x, "x-TEST");
    snprintf(
        reply, sizeof reply,
        "M=%s P=%s Q=%s a=%s ab=%s name=%s plus=%s bad=%s none=%s "
        "tiny=%s x=%s loop=%d body=%.*s",
        http_method(x), http_path(x), http_query(x), param(x, "a", a, sizeof a),
        param(x, "ab", ab, sizeof ab), param(x, "na me", name, sizeof name),
        param(x, "plus", plus, sizeof plus), param(x, "bad", bad, sizeof bad),
        param(x, "none", none, sizeof none),
        param(x, "name", tiny, sizeof tiny), xt ? xt : "(null)",
        http_peer_is_loopback(x), (int)len, body);
    respond_text(x, 200, reply);
}

/* Answers the body's length and byte sum. */
static void handle_len(struct http_exchange *x)
{
    size_t len;
    const unsigned char *b = (const unsigned char *)http_body(x, &len);
    uint64_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += b[i];
    snprintf(reply, sizeof reply, "len=%zu sum=%" PRIu64, len, sum);
    respond_text(x, 200, reply);
}

static void handle_big(struct http_exchange *x)
{
    char n[32];
    size_t len = http_param(x, "n", n, sizeof n) == 0 ? strtoul(n, 0, 10) : 0;
    char *body = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 26);
    http_respond(x, 200, "application/octet-stream", body, len);
    free(body);
}

static void handle(void *ctx, struct http_exchange *x)
{
    const char *path = http_path(x);
    (void)ctx;
    CHECK(http_started_ns(x) > 0);
    CHECK(!http_exchange_closed(x));
    if (strcmp(path, "/echo") == 0) {
        handle_echo(x);
    } else if (strcmp(path, "/len") == 0) {
        handle_len(x);
    } else if (strcmp(path, "/big") == 0) {
        handle_big(x);
    } else if (strcmp(path, "/async") == 0) {
        held = x;
        atomic_fetch_add(&n_held, 1);
    } else if (strcmp(path, "/stream") == 0) {
        http_add_header(x, "X-Stream", "1");
        http_stream_start(x, "text/event-stream");
        held = x;
        atomic_fetch_add(&n_held, 1);
    } else if (strcmp(path, "/headers") == 0) {
        http_add_header(x, "Retry-After", "1");
        http_add_header(x, "X-Bad", "a\r\nInjected: yes");
        http_add_header(x, "Bad Name", "x");
        respond_text(x, 429, "slow down\n");
    } else {
        respond_text(x, 404, "not found\n");
    }
}

static struct http_config base_config(void)
{
    struct http_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.max_head_bytes = 2048;
    cfg.max_body_bytes = 8 << 20;
    cfg.read_timeout_ms = 3000;
    cfg.idle_timeout_ms = 3000;
    cfg.handler = handle;
    return cfg;
}

static int64_t drain_ms_for_run = 2000;

static void *run_thread(void *arg)
{
    struct server *sv = arg;
    sv->run_rc = http_server_run(sv->s, drain_ms_for_run);
    atomic_store(&sv->returned, 1);
    return NULL;
}

static int start(const struct http_config *cfg)
{
    char err[CTRD_ERR_LEN];
    int rc = http_server_create(cfg, &srv.s, err);
    if (rc != 0) {
        fprintf(stderr, "http_server_create: %s\n", err);
        return -1;
    }
    held = NULL;
    atomic_store(&n_held, 0);
    atomic_store(&srv.returned, 0);
    srv.run_rc = -1;
    pthread_create(&srv.thread, NULL, run_thread, &srv);
    return 0;
}

/* Joins the loop thread, which must return within WAIT_MS. */
static int join(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000 + 2;
    int rc = pthread_timedjoin_np(srv.thread, NULL, &until);
    CHECK_EQ_I64(rc, 0);
    if (rc != 0) {
        fprintf(stderr, "http_server_run did not return\n");
        exit(1);
    }
    CHECK_EQ_I64(srv.run_rc, 0);
    return rc;
}

static void stop(void)
{
    http_server_stop(srv.s);
    join();
    http_server_free(srv.s);
    srv.s = NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Waits until *v >= target. 1 when it got there. */
static int wait_atomic(atomic_int *v, int target)
{
    for (int64_t end = mono_ms() + WAIT_MS; mono_ms() < end; sleep_ms(1))
        if (atomic_load(v) >= target)
            return 1;
    return atomic_load(v) >= target;
}

/* Runs fn(arg) on the loop thread and waits for it. */
struct call {
    void (*fn)(void *arg);
    void *arg;
    atomic_int done;
};

static void call_trampoline(void *p)
{
    struct call *c = p;
    c->fn(c->arg);
    atomic_store(&c->done, 1);
}

static int on_loop(void (*fn)(void *arg), void *arg)
{
    struct call *c = calloc(1, sizeof *c); /* leaked if it never runs */
    c->fn = fn;
    c->arg = arg;
    CHECK_EQ_I64(http_server_post(srv.s, call_trampoline, c), 0);
    int ok = wait_atomic(&c->done, 1);
    CHECK(ok);
    if (ok)
        free(c);
    return ok ? 0 : -1;
}

static void answer_held(void *arg)
{
    respond_text(held, 200, arg);
    held = NULL;
}

/* ---- the client ---- */

struct client {
    int fd;
    char *buf;
    size_t len, cap;
};

struct resp {
    int status;
    char head[4096];
    char *body;
    size_t body_len;
};

/* A connection to the server from the loopback address src (any of 127/8
 * on Linux), so that tests can play several peers. */
static struct client client_open_from(const char *src)
{
    struct client c = {0};
    struct sockaddr_in a = {0}, from = {0};
    struct timeval tv = {CLIENT_TIMEOUT_MS / 1000, 0};
    a.sin_family = from.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)http_server_port(srv.s));
    inet_pton(AF_INET, src, &from.sin_addr);
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (bind(c.fd, (struct sockaddr *)&from, sizeof from) != 0)
        CHECK_FAIL_AT("bind %s: %s", src, strerror(errno));
    if (connect(c.fd, (struct sockaddr *)&a, sizeof a) != 0)
        CHECK_FAIL_AT("connect: %s", strerror(errno));
    c.cap = 65536;
    c.buf = malloc(c.cap);
    return c;
}

static struct client client_open(void)
{
    return client_open_from("127.0.0.1");
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
}

static void client_send_n(struct client *c, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL);
        if (w <= 0) {
            CHECK_FAIL_AT("send: %s", strerror(errno));
            return;
        }
        data += w;
        n -= (size_t)w;
    }
}

static void client_send(struct client *c, const char *s)
{
    client_send_n(c, s, strlen(s));
}

/* Reads more into the buffer: bytes read, 0 at EOF, -1 on timeout. */
static ssize_t client_fill(struct client *c)
{
    if (c->cap - c->len < 65536) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n < 0 ? -1 : n;
}

static void client_drop(struct client *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads one response (Content-Length bodies; none when absent). Its
 * status, or -1 when the connection ended or timed out first (then the
 * body is ""). */
static int client_response(struct client *c, struct resp *r)
{
    char *end;
    memset(r, 0, sizeof *r);
    r->status = -1;
    r->body = calloc(1, 1);
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (client_fill(c) <= 0)
            return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    snprintf(r->head, sizeof r->head, "%.*s", (int)head_len, c->buf);
    r->status = atoi(r->head + 9);
    const char *cl = strstr(r->head, "\r\nContent-Length: ");
    size_t body_len = cl ? strtoul(cl + 18, NULL, 10) : 0;
    while (c->len < head_len + body_len)
        if (client_fill(c) <= 0)
            return -1;
    free(r->body);
    r->body = malloc(body_len + 1);
    memcpy(r->body, c->buf + head_len, body_len);
    r->body[body_len] = '\0';
    r->body_len = body_len;
    client_drop(c, head_len + body_len);
    return r->status;
}

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Whether the server closes the connection within ms (bytes still in
 * flight are read and dropped). */
static int client_sees_eof(struct client *c, int ms)
{
    for (int64_t end = mono_ms() + ms; mono_ms() < end;) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        c->len = 0;
        ssize_t n = client_fill(c);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
    }
    return 0;
}

/* Whether nothing arrives within ms. */
static int client_quiet(struct client *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

/* One request on a new connection: the status, the response in r. */
static int exchange(const char *request, struct resp *r)
{
    struct client c = client_open();
    client_send(&c, request);
    int status = client_response(&c, r);
    client_close(&c);
    return status;
}

/* Sends a request that must fail: the status, then the connection closes. */
static int expect_error(const char *request, size_t n)
{
    struct client c = client_open();
    struct resp r;
    client_send_n(&c, request, n);
    int status = client_response(&c, &r);
    CHECK(strstr(r.head, "Connection: close\r\n") != NULL);
    CHECK(client_sees_eof(&c, WAIT_MS));
    resp_free(&r);
    client_close(&c);
    return status;
}

/* ---- tests ---- */

static void test_get_params(void)
{
    struct http_config cfg = base_config();
    struct resp r;
    if (start(&cfg) != 0)
        return;
    int status = exchange(
        "GET /echo?ab=2&a=1&na+me=hello%20w%C3%B6rld&plus=a+b%2Bc&bad=%zz"
        "&name=too+long HTTP/1.1\r\nHost: x\r\nX-Test: \t value  v \t\r\n\r\n",
        &r);
    CHECK_EQ_I64(status, 200);
    CHECK_EQ_STR(r.body,
                 "M=GET P=/echo Q=ab=2&a=1&na+me=hello%20w%C3%B6rld&plus=a+b"
                 "%2Bc&bad=%zz&name=too+long a=1 ab=2 name=hello w\xC3\xB6rld "
                 "plus=a b+c bad=<-6> none=<-1> tiny=<-6> x=value  v loop=1 "
                 "body=");
    CHECK(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(r.head, "\r\nServer: ctrd\r\n") != NULL);
    CHECK(strstr(r.head, "\r\nContent-Type: text/plain\r\n") != NULL);
    CHECK(strstr(r.head, "Connection") == NULL);
    resp_free(&r);

    /* a decoded NUL never matches nor decodes; no query at all */
    status = exchange("GET /echo?a%00=1&a=%00 HTTP/1.1\r\n\r\n", &r);
    CHECK_EQ_I64(status, 200);
    CHECK(strstr(r.body, " a=<-6> ") != NULL);
    resp_free(&r);
    status = exchange("GET /echo HTTP/1.1\r\n\r\n", &r);
    CHECK(strstr(r.body, "Q= a=<-1> ") != NULL);
    resp_free(&r);
    stop();
}

static void test_post_body(void)
{
    struct http_config cfg = base_config();
    struct resp r;
    if (start(&cfg) != 0)
        return;
    int status = exchange("POST /echo HTTP/1.1\r\nContent-Length: 11\r\n"
                          "content-length: 11\r\n\r\nhello world",
                          &r);
    CHECK_EQ_I64(status, 200);
    CHECK(strstr(r.body, "M=POST ") != NULL);
    CHECK(strstr(r.body, " body=hello world") != NULL);
    resp_free(&r);
    stop();
}

static void test_chunked_body(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    int status = exchange("POST /echo HTTP/1.1\r\nTransfer-Encoding: Chunked"
                          "\r\n\r\n5\r\nhello\r\n6;ext=\"1\"\r\n world\r\n"
                          "0\r\nTrailer-Field: x\r\n\r\n",
                          &r);
    CHECK_EQ_I64(status, 200);
    CHECK(strstr(r.body, " body=hello world") != NULL);
    resp_free(&r);

    /* sent a byte at a time, then the next request on the same connection */
    static const char slow[] = "POST /echo HTTP/1.1\nTransfer-Encoding: "
                               "chunked\n\n3\nabc\n0A\n0123456789\n0\n\n";
    c = client_open();
    for (size_t i = 0; i < sizeof slow - 1; i++)
        client_send_n(&c, slow + i, 1);
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " body=abc0123456789") != NULL);
    resp_free(&r);
    client_send(&c, "GET /echo?a=2 HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=2 ") != NULL);
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_keep_alive(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "GET /echo?a=1 HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    resp_free(&r);
    client_send(&c, "GET /echo?a=2 HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=2 ") != NULL);
    CHECK(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    CHECK(client_sees_eof(&c, WAIT_MS));
    resp_free(&r);
    client_close(&c);

    /* HTTP/1.0 closes unless asked to keep alive */
    c = client_open();
    client_send(&c, "GET /echo HTTP/1.0\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(client_sees_eof(&c, WAIT_MS));
    resp_free(&r);
    client_close(&c);
    c = client_open();
    client_send(&c, "GET /echo HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.head, "\r\nConnection: keep-alive\r\n") != NULL);
    resp_free(&r);
    client_send(&c, "GET /echo?a=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=3 ") != NULL);
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_pipelining(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "GET /echo?a=1 HTTP/1.1\r\n\r\n"
                    "POST /echo?a=2 HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
                    "\r\nGET /echo?a=3 HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=1 ") != NULL);
    resp_free(&r);
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=2 ") != NULL && strstr(r.body, "body=xyz"));
    resp_free(&r);
    CHECK_EQ_I64(client_response(&c, &r), 200); /* after an extra CRLF */
    CHECK(strstr(r.body, " a=3 ") != NULL);
    resp_free(&r);

    /* an asynchronous answer holds back the one pipelined behind it */
    client_send(&c,
                "GET /async HTTP/1.1\r\n\r\nGET /echo?a=4 HTTP/1.1\r\n\r\n");
    CHECK(wait_atomic(&n_held, 1));
    CHECK(client_quiet(&c, 100));
    on_loop(answer_held, "first");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK_EQ_STR(r.body, "first");
    resp_free(&r);
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, " a=4 ") != NULL);
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_body_limit(void)
{
    struct http_config cfg = base_config();
    cfg.max_body_bytes = 1000;
    if (start(&cfg) != 0)
        return;
    /* answered at once, without waiting for the body */
    static const char over[] = "POST /len HTTP/1.1\r\nContent-Length: 1001"
                               "\r\n\r\n";
    CHECK_EQ_I64(expect_error(over, sizeof over - 1), 413);
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1f4\r\n%0500d\r\n1f5\r\n",
                     0);
    CHECK_EQ_I64(expect_error(req, (size_t)n), 413);
    stop();
}

static void test_head_limit(void)
{
    struct http_config cfg = base_config();
    char req[4096];
    if (start(&cfg) != 0)
        return;
    int n = snprintf(req, sizeof req,
                     "GET /echo HTTP/1.1\r\nX-Long: %02100d"
                     "\r\n\r\n",
                     0);
    CHECK_EQ_I64(expect_error(req, (size_t)n), 431);
    /* too long without ever ending */
    n = snprintf(req, sizeof req, "GET /%03000d", 0);
    CHECK_EQ_I64(expect_error(req, (size_t)n), 431);
    /* too many fields */
    n = snprintf(req, sizeof req, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 70; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "A%d: 1\r\n", i);
    n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    CHECK_EQ_I64(expect_error(req, (size_t)n), 431);
    stop();
}

static void test_bad_requests(void)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"garbage\r\n\r\n", 400},
        {"GET /\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\n\r\n", 400},
        {"GET http://x/ HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.x\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"G(T / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n folded-first: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nName : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: \x01\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
         "Content-Length: 3\r\n\r\n",
         400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nabc\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "fffffffffffffffffff\r\n",
         400},
    };
    struct http_config cfg = base_config();
    if (start(&cfg) != 0)
        return;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = expect_error(cases[i].req, strlen(cases[i].req));
        if (got != cases[i].status)
            CHECK_FAIL_AT("case %zu: %d != %d", i, got, cases[i].status);
    }
    static const char binary[] = "\x00\x01\x02\xff\r\n\r\n";
    CHECK_EQ_I64(expect_error(binary, sizeof binary - 1), 400);
    stop();
}

static void test_unsupported_coding(void)
{
    struct http_config cfg = base_config();
    if (start(&cfg) != 0)
        return;
    static const char *reqs[] = {
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++)
        CHECK_EQ_I64(expect_error(reqs[i], strlen(reqs[i])), 501);
    stop();
}

static void test_read_timeout(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    cfg.read_timeout_ms = 200;
    if (start(&cfg) != 0)
        return;
    int64_t t0 = mono_ms();
    c = client_open();
    client_send(&c, "GET /echo HTTP/1.1\r\nHost: x\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 408);
    int64_t took = mono_ms() - t0;
    CHECK(took >= 190 && took < 2000);
    CHECK(client_sees_eof(&c, WAIT_MS));
    resp_free(&r);
    client_close(&c);

    /* a body that stops short */
    c = client_open();
    client_send(&c, "POST /len HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345");
    CHECK_EQ_I64(client_response(&c, &r), 408);
    resp_free(&r);
    client_close(&c);

    /* the clock starts with the request, not with the connection */
    c = client_open();
    sleep_ms(300);
    client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_idle_timeout(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    cfg.idle_timeout_ms = 200;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "GET /echo HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    resp_free(&r);
    int64_t t0 = mono_ms();
    CHECK(client_sees_eof(&c, WAIT_MS));
    int64_t took = mono_ms() - t0;
    CHECK(took >= 150 && took < 2000);
    client_close(&c);

    c = client_open(); /* never says anything */
    CHECK(client_sees_eof(&c, WAIT_MS));
    client_close(&c);
    stop();
}

struct poster {
    pthread_t thread;
    const char *text;
};

static void *post_from_thread(void *arg)
{
    struct poster *p = arg;
    if (wait_atomic(&n_held, 1))
        http_server_post(srv.s, answer_held, (void *)p->text);
    return NULL;
}

static void test_async_answer(void)
{
    struct http_config cfg = base_config();
    struct poster p = {.text = "later"};
    struct resp r;
    if (start(&cfg) != 0)
        return;
    pthread_create(&p.thread, NULL, post_from_thread, &p);
    CHECK_EQ_I64(exchange("GET /async HTTP/1.1\r\n\r\n", &r), 200);
    CHECK_EQ_STR(r.body, "later");
    resp_free(&r);
    pthread_join(p.thread, NULL);
    stop();
}

static int closed_flag;

static void check_closed(void *arg)
{
    (void)arg;
    closed_flag = held ? http_exchange_closed(held) : -1;
}

/* Polls the held exchange until it reports the client gone. */
static int held_closed(void)
{
    for (int64_t end = mono_ms() + WAIT_MS; mono_ms() < end; sleep_ms(5)) {
        if (on_loop(check_closed, NULL) != 0)
            return 0;
        if (closed_flag == 1)
            return 1;
    }
    return 0;
}

static void test_async_client_gone(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "POST /async HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody");
    CHECK(wait_atomic(&n_held, 1));
    on_loop(check_closed, NULL);
    CHECK_EQ_I64(closed_flag, 0);
    client_close(&c);
    CHECK(held_closed());
    on_loop(answer_held, "nobody listens"); /* frees the exchange */
    CHECK_EQ_I64(exchange("GET /echo HTTP/1.1\r\n\r\n", &r), 200);
    resp_free(&r);
    stop();
}

static int stream_rc[64];
static int stream_n;

static void stream_write_one(void *arg)
{
    stream_rc[0] = http_stream_write(held, arg, strlen(arg));
}

static void stream_write_many(void *arg)
{
    static char chunk[64 * 1024];
    (void)arg;
    memset(chunk, 'x', sizeof chunk);
    for (stream_n = 0; stream_n < 40; stream_n++)
        stream_rc[stream_n] = http_stream_write(held, chunk, sizeof chunk);
}

static void stream_end(void *arg)
{
    (void)arg;
    http_stream_end(held);
    held = NULL;
}

static void test_stream(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    cfg.idle_timeout_ms = 200; /* streams have no idle timeout */
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "GET /stream HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.head, "\r\nContent-Type: text/event-stream\r\n") != NULL);
    CHECK(strstr(r.head, "\r\nCache-Control: no-cache\r\n") != NULL);
    CHECK(strstr(r.head, "\r\nConnection: keep-alive\r\n") != NULL);
    CHECK(strstr(r.head, "\r\nX-Stream: 1\r\n") != NULL);
    CHECK(strstr(r.head, "Content-Length") == NULL);
    resp_free(&r);
    sleep_ms(400);
    on_loop(stream_write_one, "data: 1\n\n");
    CHECK_EQ_I64(stream_rc[0], 0);
    while (c.len < 9 && client_fill(&c) > 0)
        ;
    CHECK_EQ_MEM(c.buf, c.len, "data: 1\n\n");
    c.len = 0;
    on_loop(stream_write_one, "data: 2\n\n");
    on_loop(stream_end, NULL);
    while (client_fill(&c) > 0)
        ;
    CHECK_EQ_MEM(c.buf, c.len, "data: 2\n\n");
    client_close(&c);

    /* the client goes away during the stream */
    c = client_open();
    client_send(&c, "GET /stream HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    resp_free(&r);
    client_close(&c);
    CHECK(held_closed());
    on_loop(stream_write_one, "data: 3\n\n");
    CHECK_EQ_I64(stream_rc[0], CTRD_EIO);
    on_loop(stream_end, NULL);

    /* a client that does not read: writes beyond 1 MiB unsent are dropped */
    c = client_open();
    client_send(&c, "GET /stream HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    resp_free(&r);
    on_loop(stream_write_many, NULL);
    for (int i = 0; i < 40; i++)
        CHECK_EQ_I64(stream_rc[i], i < 16 ? 0 : CTRD_EAGAIN);
    on_loop(stream_end, NULL);
    size_t total = c.len;
    for (ssize_t n; (n = client_fill(&c)) > 0; c.len = 0)
        total += (size_t)n;
    CHECK_EQ_U64(total, 16u * 64 * 1024);
    client_close(&c);
    stop();
}

static void tick(void *arg)
{
    (void)arg;
    atomic_fetch_add(&n_ticks, 1);
}

static void add_timer(void *arg)
{
    CHECK_EQ_I64(http_server_every(srv.s, 20, tick, arg), 0);
}

static void test_every(void)
{
    struct http_config cfg = base_config();
    if (start(&cfg) != 0)
        return;
    atomic_store(&n_ticks, 0);
    on_loop(add_timer, NULL);
    sleep_ms(300);
    int n = atomic_load(&n_ticks);
    CHECK(n >= 5 && n <= 20);
    stop();
}

static void test_stop_drains(void)
{
    struct http_config cfg = base_config();
    struct client a, idle;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    idle = client_open();
    client_send(&idle, "GET /echo HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&idle, &r), 200);
    resp_free(&r);
    a = client_open();
    client_send(&a, "GET /async HTTP/1.1\r\n\r\n");
    CHECK(wait_atomic(&n_held, 1));

    http_server_stop(srv.s);
    CHECK(client_sees_eof(&idle, WAIT_MS)); /* idle ones close at once */
    CHECK(!atomic_load(&srv.returned));     /* waits for the answer */
    CHECK_EQ_I64(http_server_post(srv.s, answer_held, "drained"), 0);
    CHECK_EQ_I64(client_response(&a, &r), 200);
    CHECK_EQ_STR(r.body, "drained");
    CHECK(strstr(r.head, "\r\nConnection: close\r\n") != NULL);
    CHECK(client_sees_eof(&a, WAIT_MS));
    resp_free(&r);
    join();
    http_server_free(srv.s);
    client_close(&a);
    client_close(&idle);

    /* an answer that never comes: run returns after drain_ms; a late
     * answer still frees the exchange (here from http_server_free) */
    drain_ms_for_run = 200;
    if (start(&cfg) != 0)
        return;
    a = client_open();
    client_send(&a, "GET /async HTTP/1.1\r\n\r\n");
    CHECK(wait_atomic(&n_held, 1));
    int64_t t0 = mono_ms();
    http_server_stop(srv.s);
    join();
    CHECK(mono_ms() - t0 >= 150);
    CHECK(client_sees_eof(&a, WAIT_MS));
    http_server_post(srv.s, answer_held, "too late");
    http_server_free(srv.s);
    client_close(&a);
    drain_ms_for_run = 2000;
}

/* Sends a request on c and reads its answer: the status. */
static int client_get(struct client *c, const char *request)
{
    struct resp r;
    client_send(c, request);
    int status = client_response(c, &r);
    resp_free(&r);
    return status;
}

/* A connection the server refuses: 503 with Retry-After, then the close. */
static int refused(struct client *c)
{
    struct resp r;
    int ok = client_response(c, &r) == 503 &&
             strstr(r.head, "\r\nRetry-After: 1\r\n") != NULL &&
             client_sees_eof(c, WAIT_MS);
    resp_free(&r);
    return ok;
}

static void test_full_table_evicts_idle(void)
{
    struct http_config cfg = base_config();
    struct client a, b, c, d, e;
    cfg.max_connections = 2;
    if (start(&cfg) != 0)
        return;
    a = client_open();
    CHECK_EQ_I64(client_get(&a, "GET /echo HTTP/1.1\r\n\r\n"), 200);
    sleep_ms(20);
    b = client_open();
    CHECK_EQ_I64(client_get(&b, "GET /echo HTTP/1.1\r\n\r\n"), 200);

    /* full: the newcomer takes the place of the longest idle (a) */
    c = client_open();
    CHECK(client_sees_eof(&a, WAIT_MS));
    CHECK_EQ_I64(client_get(&b, "GET /echo HTTP/1.1\r\n\r\n"), 200);

    /* c never sent a byte: idle since its accept, so before b */
    d = client_open();
    CHECK(client_sees_eof(&c, WAIT_MS));
    CHECK_EQ_I64(client_get(&d, "GET /echo HTTP/1.1\r\n\r\n"), 200);

    /* nothing idle (an answer pending, a request begun): refused */
    client_send(&b, "GET /async HTTP/1.1\r\n\r\n");
    CHECK(wait_atomic(&n_held, 1));
    client_send(&d, "GET /echo HTTP/1.1\r\n");
    sleep_ms(50);
    e = client_open();
    CHECK(refused(&e));
    on_loop(answer_held, "kept");
    struct resp r;
    CHECK_EQ_I64(client_response(&b, &r), 200);
    CHECK_EQ_STR(r.body, "kept");
    resp_free(&r);
    CHECK_EQ_I64(client_get(&d, "\r\n"), 200);
    client_close(&a);
    client_close(&b);
    client_close(&c);
    client_close(&d);
    client_close(&e);
    stop();
}

static void test_peer_limit(void)
{
    enum { PEERS = 30 };
    struct http_config cfg = base_config();
    struct client own[PEERS][2], over;
    char addr[32];
    cfg.max_connections = 64; /* a 128-slot peer table: collisions */
    cfg.max_connections_per_peer = 2;
    if (start(&cfg) != 0)
        return;
    for (int p = 0; p < PEERS; p++) {
        snprintf(addr, sizeof addr, "127.0.0.%d", p + 1);
        for (int k = 0; k < 2; k++) {
            own[p][k] = client_open_from(addr);
            CHECK_EQ_I64(client_get(&own[p][k], "GET /echo HTTP/1.1\r\n\r\n"),
                         200);
        }
    }
    /* every peer is at its limit (the table has room: not an eviction) */
    for (int p = 0; p < PEERS; p += 7) {
        snprintf(addr, sizeof addr, "127.0.0.%d", p + 1);
        over = client_open_from(addr);
        CHECK(refused(&over));
        client_close(&over);
    }
    /* the peers that leave may come back; the others stay at the limit */
    for (int p = 0; p < PEERS; p += 2)
        for (int k = 0; k < 2; k++)
            client_close(&own[p][k]);
    sleep_ms(200);
    for (int p = 0; p < PEERS; p++) {
        snprintf(addr, sizeof addr, "127.0.0.%d", p + 1);
        over = client_open_from(addr);
        if (p % 2 == 0) {
            CHECK_EQ_I64(client_get(&over, "GET /echo HTTP/1.1\r\n\r\n"), 200);
            own[p][0] = over;
        } else {
            CHECK(refused(&over));
            client_close(&over);
        }
    }
    for (int p = 0; p < PEERS; p++)
        for (int k = p % 2 ? 0 : 1; k < 2; k++)
            client_close(&own[p][k]);
    for (int p = 0; p < PEERS; p += 2)
        client_close(&own[p][0]);
    stop();
}

static void test_first_request_timeout(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    cfg.first_request_timeout_ms = 300; /* read and idle: 3 s */
    if (start(&cfg) != 0)
        return;
    /* never a byte: closed, without an answer */
    int64_t t0 = mono_ms();
    c = client_open();
    CHECK(client_sees_eof(&c, WAIT_MS));
    int64_t took = mono_ms() - t0;
    CHECK(took >= 250 && took < 2000);
    CHECK_EQ_U64(c.len, 0);
    client_close(&c);

    /* a head that does not end in time: 408 */
    t0 = mono_ms();
    c = client_open();
    client_send(&c, "GET /echo HTTP/1.1\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 408);
    took = mono_ms() - t0;
    CHECK(took >= 250 && took < 2000);
    resp_free(&r);
    client_close(&c);

    /* a head in time and a slow body: the read timeout rules the body */
    c = client_open();
    client_send(&c, "POST /len HTTP/1.1\r\nContent-Length: 2\r\n\r\n1");
    sleep_ms(600);
    CHECK_EQ_I64(client_get(&c, "2"), 200);
    /* later requests: idle and read timeouts, not the first one's */
    sleep_ms(600);
    client_send(&c, "GET /echo HTTP/1.1\r\n");
    sleep_ms(600);
    CHECK_EQ_I64(client_get(&c, "\r\n"), 200);
    client_close(&c);
    stop();
}

static void test_expect_continue(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                    "Content-Length: 4\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 100);
    resp_free(&r);
    client_send(&c, "data");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK(strstr(r.body, "body=data") != NULL);
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_head_and_headers(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "HEAD /big?n=1000 HTTP/1.1\r\n\r\n");
    char *end;
    while (!(end = memmem(c.buf, c.len, "\r\n\r\n", 4)) && client_fill(&c) > 0)
        ;
    CHECK(end != NULL);
    CHECK(memmem(c.buf, c.len, "Content-Length: 1000\r\n", 22) != NULL);
    CHECK(end && (size_t)(end + 4 - c.buf) == c.len); /* no body */
    c.len = 0;
    client_send(&c, "GET /headers HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 429);
    CHECK(strstr(r.head, "HTTP/1.1 429 Too Many Requests\r\n") != NULL);
    CHECK(strstr(r.head, "\r\nRetry-After: 1\r\n") != NULL);
    CHECK(strstr(r.head, "Injected") == NULL);
    CHECK(strstr(r.head, "Bad Name") == NULL);
    CHECK_EQ_STR(r.body, "slow down\n");
    resp_free(&r);
    client_send(&c, "GET /nowhere HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 404);
    CHECK(strstr(r.head, "Retry-After") == NULL); /* per exchange */
    resp_free(&r);
    client_close(&c);
    stop();
}

static void test_large_bodies(void)
{
    struct http_config cfg = base_config();
    struct client c;
    struct resp r;
    size_t n = 6u << 20;
    if (start(&cfg) != 0)
        return;
    c = client_open();
    client_send(&c, "GET /big?n=6291456 HTTP/1.1\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK_EQ_U64(r.body_len, n);
    int ok = r.body_len == n;
    for (size_t i = 0; ok && i < n; i++)
        ok = r.body[i] == (char)('a' + i % 26);
    CHECK(ok);
    resp_free(&r);

    char *body = malloc(n);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (unsigned char)(body[i] = (char)(i * 7));
    char head[128], want[64];
    snprintf(head, sizeof head,
             "POST /len HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", n);
    client_send(&c, head);
    client_send_n(&c, body, n);
    CHECK_EQ_I64(client_response(&c, &r), 200);
    snprintf(want, sizeof want, "len=%zu sum=%" PRIu64, n, sum);
    CHECK_EQ_STR(r.body, want);
    resp_free(&r);

    /* the same, chunked in pieces of 1000 bytes */
    client_send(&c, "POST /len HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < n; off += 1000) {
        size_t k = n - off < 1000 ? n - off : 1000;
        snprintf(head, sizeof head, "%zx\r\n", k);
        client_send(&c, head);
        client_send_n(&c, body + off, k);
        client_send(&c, "\r\n");
    }
    client_send(&c, "0\r\n\r\n");
    CHECK_EQ_I64(client_response(&c, &r), 200);
    CHECK_EQ_STR(r.body, want);
    resp_free(&r);
    free(body);
    client_close(&c);

    /* clients that leave in the middle of a large answer, before or after
     * reading some: EPIPE or ECONNRESET, never SIGPIPE; the server carries
     * on */
    for (int i = 0; i < 10; i++) {
        c = client_open();
        client_send(&c, "GET /big?n=8000000 HTTP/1.1\r\n\r\n");
        if (i % 2)
            client_fill(&c);
        client_close(&c);
    }
    CHECK_EQ_I64(exchange("GET /echo HTTP/1.1\r\n\r\n", &r), 200);
    resp_free(&r);
    stop();
}

static void test_listen_addresses(void)
{
    static const char *bad[] = {"127.0.0.1",       "127.0.0.1:", "127.0.0.1:x",
                                "127.0.0.1:65536", "::1:80",     "[::1:80",
                                "example.com:80",  "1.2.3:80"};
    struct http_config cfg = base_config();
    struct http_server *s;
    char err[CTRD_ERR_LEN];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.listen = bad[i];
        CHECK_EQ_I64(http_server_create(&cfg, &s, err), CTRD_EINVAL);
        CHECK(strstr(err, bad[i]) != NULL);
    }
    cfg.listen = "localhost:0";
    CHECK_EQ_I64(http_server_create(&cfg, &s, err), 0);
    CHECK(http_server_port(s) > 0);
    http_server_free(s);
    cfg.listen = "[::1]:0"; /* may be absent in a container */
    if (http_server_create(&cfg, &s, err) == 0) {
        CHECK(http_server_port(s) > 0);
        http_server_free(s);
    }
    /* a port in use */
    cfg.listen = "127.0.0.1:0";
    CHECK_EQ_I64(http_server_create(&cfg, &s, err), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", http_server_port(s));
    struct http_server *s2;
    cfg.listen = addr;
    CHECK_EQ_I64(http_server_create(&cfg, &s2, err), CTRD_EIO);
    CHECK(strstr(err, addr) != NULL);
    http_server_free(s);
}

/* With a registry, every answer counts by class, the server's own too. */
static void test_responses_counted(void)
{
    struct http_config cfg = base_config();
    struct metrics *m = metrics_create();
    struct resp r;
    char *text = NULL;
    size_t len = 0;
    cfg.metrics = m;
    if (!m || start(&cfg) != 0) {
        metrics_free(m);
        return;
    }
    CHECK_EQ_I64(exchange("GET /echo HTTP/1.1\r\n\r\n", &r), 200);
    resp_free(&r);
    CHECK_EQ_I64(exchange("GET /nope HTTP/1.1\r\n\r\n", &r), 404);
    resp_free(&r);
    CHECK_EQ_I64(exchange("GET /headers HTTP/1.1\r\n\r\n", &r), 429);
    resp_free(&r);
    CHECK_EQ_I64(expect_error("BAD\r\n\r\n", 7), 400);
    stop();
    FILE *f = open_memstream(&text, &len);
    metrics_write(m, f);
    fclose(f);
    CHECK(strstr(text, "\nctrd_http_responses_total{class=\"1xx\"} 0\n"
                       "ctrd_http_responses_total{class=\"2xx\"} 1\n"
                       "ctrd_http_responses_total{class=\"3xx\"} 0\n"
                       "ctrd_http_responses_total{class=\"4xx\"} 3\n"
                       "ctrd_http_responses_total{class=\"5xx\"} 0\n") != NULL);
    free(text);
    metrics_free(m);
}

int main(void)
{
    alarm(120); /* nothing here may hang */
    RUN(test_get_params);
    RUN(test_post_body);
    RUN(test_chunked_body);
    RUN(test_keep_alive);
    RUN(test_pipelining);
    RUN(test_body_limit);
    RUN(test_head_limit);
    RUN(test_bad_requests);
    RUN(test_unsupported_coding);
    RUN(test_read_timeout);
    RUN(test_idle_timeout);
    RUN(test_async_answer);
    RUN(test_async_client_gone);
    RUN(test_stream);
    RUN(test_every);
    RUN(test_stop_drains);
    RUN(test_full_table_evicts_idle);
    RUN(test_peer_limit);
    RUN(test_first_request_timeout);
    RUN(test_expect_continue);
    RUN(test_head_and_headers);
    RUN(test_large_bodies);
    RUN(test_listen_addresses);
    RUN(test_responses_counted);
    return check_done();
}
