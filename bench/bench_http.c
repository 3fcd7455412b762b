/* bench_http: closed-loop HTTP/1.1 load with latency percentiles per
 * status. wrk reports one latency distribution for every answer; telling
 * the admitted reads' latency from the shed ones' needs them apart.
 *
 *   cc -O2 -o /tmp/bench_http bench/bench_http.c
 *   /tmp/bench_http [-c CONNS] [-d SECONDS] [-w WARMUP] [-i IDLE] PORT PATH
 *
 * CONNS keep-alive connections from 127.0.0.1 to 127.0.0.1:PORT each send
 * "GET PATH", wait for the whole answer and send again, for SECONDS (a
 * connection the server closes is opened again), after WARMUP seconds of
 * the same whose answers are not counted. With -i, IDLE connections
 * that never send a byte are opened first, from 127.0.0.2 on (IDLE_PER_ADDR
 * per source address, all of 127/8 being loopback), and held meanwhile.
 * Prints one line per status: answers, share, p50 p99 p99.9 max in ms.
 * Needs RLIMIT_NOFILE above IDLE + CONNS (it raises the soft limit). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IDLE_PER_ADDR 250
#define BUF_BYTES (1 << 20)
#define STATUS_MAX 600

struct conn {
    int fd;
    uint64_t sent_ns;
    size_t len; /* bytes of the answer read so far */
    char *buf;
};

struct samples {
    uint64_t *ns;
    size_t n, cap;
};

static struct samples by_status[STATUS_MAX];
static uint64_t record_from_ns; /* answers before: the warm-up, not kept */
static const char *path;
static int port;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(int status, uint64_t ns)
{
    struct samples *s =
        &by_status[status > 0 && status < STATUS_MAX ? status : 0];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ns = realloc(s->ns, s->cap * sizeof *s->ns);
        if (!s->ns) {
            perror("realloc");
            exit(1);
        }
    }
    s->ns[s->n++] = ns;
}

/* A connected socket from source address src, or -1. */
static int dial(const char *src, int nonblock)
{
    struct sockaddr_in to = {0}, from = {0};
    to.sin_family = from.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    inet_pton(AF_INET, src, &from.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    if (nonblock)
        fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void send_request(struct conn *c)
{
    char req[1024];
    int n =
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    c->len = 0;
    c->sent_ns = now_ns();
    if (send(c->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(c->fd);
        c->fd = -1;
    }
}

/* The status once the answer in c->buf is whole, else 0. */
static int answer_status(const struct conn *c, size_t *used)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4, body = 0;
    const char *cl = memmem(c->buf, head, "Content-Length: ", 16);
    if (cl)
        body = strtoul(cl + 16, NULL, 10);
    if (c->len < head + body)
        return 0;
    *used = head + body;
    return atoi(c->buf + 9);
}

static void open_conn(int ep, struct conn *c)
{
    c->fd = dial("127.0.0.1", 1);
    if (c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    send_request(c);
}

static void on_readable(int ep, struct conn *c)
{
    ssize_t n = recv(c->fd, c->buf + c->len, BUF_BYTES - c->len, 0);
    size_t used;
    int status;
    if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
        close(c->fd);
        open_conn(ep, c);
        return;
    }
    if (n > 0)
        c->len += (size_t)n;
    if ((status = answer_status(c, &used)) == 0)
        return;
    if (c->sent_ns >= record_from_ns)
        record(status, now_ns() - c->sent_ns);
    if (memmem(c->buf, used, "Connection: close", 17)) {
        close(c->fd);
        open_conn(ep, c);
    } else {
        send_request(c);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const struct samples *s, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)s->n);
    return (double)s->ns[i < s->n ? i : s->n - 1] / 1e6;
}

static void report(double secs)
{
    size_t total = 0;
    for (int st = 0; st < STATUS_MAX; st++)
        total += by_status[st].n;
    printf("%zu answers in %.1f s (%.0f/s)\n", total, secs,
           (double)total / secs);
    for (int st = 0; st < STATUS_MAX; st++) {
        struct samples *s = &by_status[st];
        if (!s->n)
            continue;
        qsort(s->ns, s->n, sizeof *s->ns, cmp_u64);
        printf("  status %d: %zu (%.2f %%) p50 %.2f ms, p99 %.2f ms, "
               "p99.9 %.2f ms, max %.2f ms\n",
               st, s->n, 100.0 * (double)s->n / (double)total, pct_ms(s, 50),
               pct_ms(s, 99), pct_ms(s, 99.9), pct_ms(s, 100));
    }
}

int main(int argc, char **argv)
{
    int conns = 16, idle = 0, opt;
    double secs = 5, warmup = 0;
    while ((opt = getopt(argc, argv, "c:d:i:w:")) != -1) {
        if (opt == 'w')
            warmup = atof(optarg);
        else if (opt == 'c')
            conns = atoi(optarg);
        else if (opt == 'd')
            secs = atof(optarg);
        else if (opt == 'i')
            idle = atoi(optarg);
        else
            return 2;
    }
    if (argc - optind != 2 || conns < 1 || idle < 0) {
        fprintf(stderr, "usage: bench_http [-c CONNS] [-d SECONDS] "
                        "[-w WARMUP] [-i IDLE] PORT PATH\n");
        return 2;
    }
    port = atoi(argv[optind]);
    path = argv[optind + 1];
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    int opened = 0;
    for (int i = 0; i < idle; i++) {
        char src[32];
        int a = i / IDLE_PER_ADDR;
        snprintf(src, sizeof src, "127.0.%d.%d", a / 250, 2 + a % 250);
        opened += dial(src, 0) >= 0; /* held open until exit */
    }
    if (idle)
        printf("%d of %d idle connections open\n", opened, idle);

    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        cs[i].buf = malloc(BUF_BYTES);
        open_conn(ep, &cs[i]);
    }
    uint64_t start = now_ns(), end = start + (uint64_t)((warmup + secs) * 1e9);
    record_from_ns = start + (uint64_t)(warmup * 1e9);
    struct epoll_event evs[256];
    while (now_ns() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd >= 0)
                on_readable(ep, c);
        }
    }
    report((double)(now_ns() - record_from_ns) / 1e9);
    return 0;
}
