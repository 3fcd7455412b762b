/* demo: `ctrd demo`; see demo.h.
 *
 * DESIGN. The service runs as a child process, `ctrd serve` exactly as a
 * user runs it, rather than in this process: serve owns its process's
 * signals and tells its port on stderr only, so as a child it needs no
 * change, Ctrl-C reaches it directly (same process group; SIGTERM from
 * here too, for a signal sent to the demo alone), PR_SET_PDEATHSIG stops it
 * if the demo dies, and the demo is nothing but an HTTP client of it. The
 * demo is one thread: a loop that every TICK_MS posts what is due and in
 * between relays the server's stderr (which also says its port and when it
 * is ready).
 *
 * The traffic comes from gen (gen.h), part by part: PART_MS before it is
 * due, gen_run() writes the next PART_MS of queries and clicks (the next
 * gen_config.part: the same vocabulary and ads, no query id repeated) into
 * the scratch directory. The first part's number is the second the demo
 * starts (modulo GEN_PART_LIMIT + 1: 48 days, far beyond the join window)
 * and a run takes one number per PART_MS (fewer than one a second), so a
 * demo run again on the same data directory posts new queries, not
 * repeats. The first part and every TRICKY_EVERY-th after it have gen's
 * tricky cases, the malformed lines (every kind of defect: a few hundred a
 * minute). Their lines go into two queues, each line due at a wall-clock
 * time: a query at its slot in the file (which is in delivery order, late
 * queries included) or at its own time when later; a click at its own time
 * (clicks follow their query by seconds to hours, a few come before it); a
 * line that does not parse with the line before it. The due lines of each
 * queue are posted as one NDJSON body; a body that fails stays queued and
 * is posted again (each record counts once).
 *
 * The ads catalog is gen's (gen.h: every ad, GEN_ADS_PER_ADVERTISER to an
 * advertiser, advertiser 1 owning the most popular), moved beside the data
 * after the first part; the URL preselects the most popular ad,
 * gen_ad_id(0). */
#include "demo.h"

#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "gen.h"
#include "grow.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PART_MS 10000
#define TRICKY_EVERY 6 /* parts: gen's malformed lines once a minute */
#define TICK_MS 200
#define BODY_MAX (4u << 20) /* bytes of one POST (at least one line) */
#define IO_TIMEOUT_S 10
#define QPS_DEFAULT 200
#define QPS_MAX 20000 /* kept up with, 7 % of a core, 120 MB */

static const char usage[] =
    "usage: ctrd demo [--data DIR] [--listen HOST:PORT] [--queries-per-sec N]\n"
    "                 [--seed S]\n"
    "\n"
    "A live service to look at: starts `ctrd serve` on a data directory,\n"
    "posts synthetic traffic into it over HTTP as a log shipper would\n"
    "(queries, and clicks on about 2 % of the ads shown, each at its own\n"
    "time; a few hundred malformed lines a minute, which the service\n"
    "rejects and counts) and prints the dashboard's URL with the busiest ad\n"
    "preselected. Runs until Ctrl-C (SIGINT or SIGTERM): stops the traffic,\n"
    "then the service, which checkpoints; the data stays, for `ctrd query`\n"
    "or another `ctrd serve`. The ads catalog (gen's, beside the data) gives\n"
    "eight ads to an advertiser: /?advertiser=1 has the most popular.\n"
    "\n"
    "  --data DIR             data directory, new or ctrd's (default: data/\n"
    "                         in a new directory under $TMPDIR or /tmp, kept)\n"
    "  --listen HOST:PORT     the service's address, loopback only (the\n"
    "                         service has no --auth here): 127.0.0.1:8080;\n"
    "                         port 0 takes a free one\n"
    "  --queries-per-sec N    queries a second, 1..20000 (200)\n"
    "  --seed S               the traffic's random seed (1)\n"
    "  -h, --help             this help;  --version  ctrd's version\n";

static volatile sig_atomic_t demo_stop;

static void on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

/* ---- the lines waiting to be posted ----------------------------------- */

/* A line to post at due_ms (wall clock); seq keeps file order among lines
 * due at once. */
struct line {
    int64_t due_ms;
    uint64_t seq;
    char *text; /* malloc'd: the line and its LF */
    size_t len; /* LF included */
};

/* The lines of one endpoint: v[head..n), in (due_ms, seq) order once
 * queue_sort() ran. */
struct queue {
    const char *path; /* "/v1/queries" */
    struct line *v;
    size_t head, n, cap;
    uint64_t seq, posted;
};

static int queue_push(struct queue *q, int64_t due_ms, const char *text,
                      size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy || grow(&q->v, &q->cap, q->n + 1, sizeof *q->v, 1024) != 0) {
        free(copy);
        return CTRD_ENOMEM;
    }
    memcpy(copy, text, len);
    copy[len] = '\n';
    q->v[q->n++] = (struct line){due_ms, q->seq++, copy, len + 1};
    return 0;
}

/* Moves the waiting lines to the front. */
static void queue_compact(struct queue *q)
{
    if (q->head == 0)
        return;
    memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
    q->n -= q->head;
    q->head = 0;
}

static int line_cmp(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    if (x->due_ms != y->due_ms)
        return x->due_ms < y->due_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void queue_sort(struct queue *q)
{
    if (q->n - q->head > 1)
        qsort(q->v + q->head, q->n - q->head, sizeof *q->v, line_cmp);
}

static void queue_free(struct queue *q)
{
    for (size_t i = q->head; i < q->n; i++)
        free(q->v[i].text);
    free(q->v);
}

/* ---- the HTTP client ---------------------------------------------------- */

/* One keep-alive connection to the server, opened again after any error. */
struct client {
    struct addrinfo *addr;  /* the server's */
    char host[FS_PATH_MAX]; /* the Host header: HOST:PORT */
    int fd;                 /* -1: not connected */
    char answer[16384];     /* an answer's head and body */
};

static int client_connect(struct client *c, char *err)
{
    struct timeval tv = {IO_TIMEOUT_S, 0};
    int one = 1;
    int fd = socket(c->addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ctrd_fail(err, CTRD_EIO, "socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, c->addr->ai_addr, c->addr->ai_addrlen) != 0) {
        int e = errno;
        close(fd);
        return ctrd_fail(err, CTRD_EIO, "connect to %s: %s", c->host,
                         strerror(e));
    }
    c->fd = fd;
    return 0;
}

static int send_all(int fd, const char *p, size_t len, int more, char *err)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0 && errno == EINTR && !demo_stop)
            continue;
        if (n < 0)
            return ctrd_fail(err, CTRD_EIO, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one answer (the server always gives its Content-Length): 0 with
 * *status and *closing (the server closes the connection after it), or
 * CTRD_EIO. */
static int read_answer(struct client *c, int *status, int *closing, char *err)
{
    size_t got = 0, want = SIZE_MAX;
    while (got < want) {
        if (got == sizeof c->answer - 1)
            return ctrd_fail(err, CTRD_EIO, "answer too long");
        ssize_t n = recv(c->fd, c->answer + got, sizeof c->answer - 1 - got, 0);
        if (n < 0 && errno == EINTR && !demo_stop)
            continue;
        if (n <= 0)
            return ctrd_fail(err, CTRD_EIO, "receive: %s",
                             n ? strerror(errno) : "connection closed");
        got += (size_t)n;
        c->answer[got] = '\0';
        const char *end = strstr(c->answer, "\r\n\r\n");
        const char *length = strcasestr(c->answer, "\r\nContent-Length:");
        if (want != SIZE_MAX || !end)
            continue;
        if (sscanf(c->answer, "HTTP/1.%*d %d", status) != 1 || !length ||
            length > end)
            return ctrd_fail(err, CTRD_EIO, "malformed answer");
        want = (size_t)(end + 4 - c->answer) + strtoull(length + 17, NULL, 10);
        const char *conn = strcasestr(c->answer, "\r\nConnection: close");
        *closing = conn && conn < end;
    }
    return 0;
}

/* POSTs body as NDJSON to path: 0 with the answer's *status, or CTRD_EIO.
 * A kept-alive connection that fails (the server may have closed it) is
 * replaced by a new one, once. */
static int client_post(struct client *c, const char *path, const char *body,
                       size_t len, int *status, char *err)
{
    char head[FS_PATH_MAX + 256];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                     "application/x-ndjson\r\nContent-Length: %zu\r\n\r\n",
                     path, c->host, len);
    for (int kept = c->fd >= 0;; kept = 0) {
        int closing = 0, rc = kept ? 0 : client_connect(c, err);
        if (rc == 0)
            rc = send_all(c->fd, head, (size_t)n, 1, err);
        if (rc == 0)
            rc = send_all(c->fd, body, len, 0, err);
        if (rc == 0)
            rc = read_answer(c, status, &closing, err);
        if ((rc != 0 || closing) && c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        if (rc == 0 || !kept || demo_stop)
            return rc;
    }
}

/* ---- the server: a child process ---------------------------------------- */

struct server {
    pid_t pid;
    int fd;          /* its stderr's read end; -1 once it closed */
    int port, ready; /* from its lines */
    char line[4096]; /* what it wrote of its current line */
    size_t len;
};

/* Starts this binary with argv (NULL-terminated), its stderr into a
 * pipe. */
static int server_start(struct server *s, char *const *argv, char *err)
{
    int p[2];
    pid_t parent = getpid();
    if (pipe2(p, O_CLOEXEC) != 0)
        return ctrd_fail(err, CTRD_EIO, "pipe: %s", strerror(errno));
    s->pid = fork();
    if (s->pid == 0) {
        /* The child: stopped like Ctrl-C would if the demo dies. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == parent && dup2(p[1], STDERR_FILENO) >= 0)
            execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[1]);
    if (s->pid < 0) {
        close(p[0]);
        return ctrd_fail(err, CTRD_EIO, "fork: %s", strerror(errno));
    }
    s->fd = p[0];
    return 0;
}

/* One whole line of the server's: on to our stderr, noting its port and
 * readiness. */
static void server_line(struct server *s, const char *line, size_t len)
{
    static const char listening[] = "ctrd serve: listening on ";
    const char *port = strstr(line, " (port ");
    if (strncmp(line, listening, sizeof listening - 1) == 0 && port)
        s->port = atoi(port + 7);
    if (strcmp(line, "ctrd serve: ready\n") == 0)
        s->ready = 1;
    fwrite(line, 1, len, stderr);
}

/* Reads what the server wrote (blocks until it writes or closes) and
 * relays its whole lines; the rest at its end. */
static void server_read(struct server *s)
{
    ssize_t n = read(s->fd, s->line + s->len, sizeof s->line - 1 - s->len);
    if (n < 0 && errno == EINTR)
        return;
    if (n > 0)
        s->len += (size_t)n;
    char *start = s->line, *nl;
    s->line[s->len] = '\0';
    while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->line)))) {
        char keep = nl[1];
        nl[1] = '\0';
        server_line(s, start, (size_t)(nl + 1 - start));
        nl[1] = keep;
        start = nl + 1;
    }
    s->len -= (size_t)(start - s->line);
    memmove(s->line, start, s->len);
    if (n <= 0 || s->len == sizeof s->line - 1) {
        fwrite(s->line, 1, s->len, stderr);
        s->len = 0;
    }
    if (n <= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Relays the server's lines for up to timeout_ms (until it closes). */
static void server_poll(struct server *s, int64_t timeout_ms)
{
    struct pollfd p = {s->fd, POLLIN, 0};
    if (s->fd >= 0 && poll(&p, 1, (int)timeout_ms) > 0)
        server_read(s);
}

/* Relays the server's lines until it closes them, and reaps it: its exit
 * status (1 when a signal ended it). */
static int server_wait(struct server *s)
{
    int status;
    while (s->fd >= 0)
        server_read(s);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* ---- the demo ----------------------------------------------------------- */

struct demo_opts {
    const char *data, *listen;
    uint64_t qps, seed;
};

struct demo {
    const struct demo_opts *o;
    char dir[FS_PATH_MAX];  /* made here: the catalog, gen's scratch */
    char data[FS_PATH_MAX]; /* the data directory */
    char gen_dir[FS_PATH_MAX], ads_path[FS_PATH_MAX];
    uint64_t part;   /* the next part to generate */
    uint64_t parts;  /* parts generated */
    int64_t part_ms; /* its start */
    struct queue queries, clicks;
    uint64_t busy_ad;
    char *body;
    size_t body_cap;
    struct client client;
    struct server server;
    char last_error[CTRD_ERR_LEN]; /* said once, until a post succeeds */
};

/* The time of a line that parses: 1 and *ms, or 0. */
static int line_time(int query, const char *text, size_t len, int64_t *ms)
{
    struct rec_query q;
    struct rec_click c;
    if (!query) {
        if (rec_parse_click(REC_NDJSON, text, len, &c) != REC_OK)
            return 0;
        *ms = c.time_ms;
        return 1;
    }
    if (rec_parse_query(REC_NDJSON, text, len, &q) != REC_OK)
        return 0;
    *ms = q.time_ms;
    return 1;
}

/* dir/name into path[FS_PATH_MAX]: 0, or CTRD_EINVAL when too long. */
static int join_path(char *path, const char *dir, const char *name, char *err)
{
    if ((size_t)snprintf(path, FS_PATH_MAX, "%s/%s", dir, name) >= FS_PATH_MAX)
        return ctrd_fail(err, CTRD_EINVAL, "path too long: %s", dir);
    return 0;
}

/* Queues the lines of gen's file name for the part from start_ms, each
 * due as the DESIGN says. */
static int queue_file(struct demo *d, struct queue *q, const char *name,
                      int64_t start_ms, char *err)
{
    char path[FS_PATH_MAX], *buf;
    size_t len, pos = 0, n, first = q->n;
    int query = q == &d->queries, rc;
    int64_t due = start_ms, ms;
    if ((rc = join_path(path, d->gen_dir, name, err)) != 0 ||
        (rc = fs_read_file(path, &buf, &len, err)) != 0)
        return rc;
    while (rc == 0 && pos < len) {
        char *text = fs_next_line(buf, len, &pos, &n);
        int timed = line_time(query, text, n, &ms);
        due = timed ? ms : query ? INT64_MIN : due;
        rc = queue_push(q, due, text, n);
    }
    free(buf);
    for (size_t i = first; query && i < q->n; i++) {
        int64_t slot = start_ms + (int64_t)((uint64_t)(i - first) * PART_MS /
                                            (q->n - first));
        if (q->v[i].due_ms < slot)
            q->v[i].due_ms = slot;
    }
    return rc ? ctrd_fail(err, rc, "out of memory") : 0;
}

/* Generates the next part and queues its lines. */
static int next_part(struct demo *d, char *err)
{
    struct gen_config cfg;
    struct gen_summary sum;
    gen_config_default(&cfg);
    cfg.out_dir = d->gen_dir;
    cfg.queries_per_sec = d->o->qps;
    cfg.duration_ms = PART_MS;
    cfg.start_ms = d->part_ms;
    cfg.seed = d->o->seed;
    cfg.part = d->part;
    cfg.tricky = d->parts % TRICKY_EVERY == 0;
    int rc = gen_run(&cfg, &sum, err);
    queue_compact(&d->queries);
    queue_compact(&d->clicks);
    if (rc == 0)
        rc = queue_file(d, &d->queries, "queries.ndjson", d->part_ms, err);
    if (rc == 0)
        rc = queue_file(d, &d->clicks, "clicks.ndjson", d->part_ms, err);
    queue_sort(&d->queries);
    queue_sort(&d->clicks);
    d->part = (d->part + 1) % (GEN_PART_LIMIT + 1);
    d->parts++;
    d->part_ms += PART_MS;
    return rc;
}

/* Moves gen's ads catalog beside the data (the next parts write it
 * again in gen's scratch) and notes the ad the URL preselects. */
static int adopt_catalog(struct demo *d, char *err)
{
    char path[FS_PATH_MAX];
    int rc = join_path(path, d->gen_dir, "ads.csv", err);
    if (rc == 0 && rename(path, d->ads_path) != 0)
        rc = ctrd_fail(err, CTRD_EIO, "%s: %s", d->ads_path, strerror(errno));
    d->busy_ad = gen_ad_id(0);
    return rc;
}

/* Says a failure once, until a post succeeds. */
static void report(struct demo *d, const char *err)
{
    if (strcmp(d->last_error, err) == 0)
        return;
    fprintf(stderr, "ctrd demo: %s; trying again\n", err);
    snprintf(d->last_error, sizeof d->last_error, "%s", err);
}

/* Posts the lines of q due by now_ms, in bodies of up to BODY_MAX bytes;
 * a body that fails stays queued, for the next tick. */
static void post_due(struct demo *d, struct queue *q, int64_t now_ms)
{
    char err[CTRD_ERR_LEN];
    while (!demo_stop && q->head < q->n && q->v[q->head].due_ms <= now_ms) {
        size_t end = q->head, len = 0;
        int status;
        for (; end < q->n && q->v[end].due_ms <= now_ms &&
               (end == q->head || len + q->v[end].len <= BODY_MAX);
             end++) {
            if (grow(&d->body, &d->body_cap, len + q->v[end].len, 1, 65536)) {
                report(d, "out of memory");
                return;
            }
            memcpy(d->body + len, q->v[end].text, q->v[end].len);
            len += q->v[end].len;
        }
        int rc = client_post(&d->client, q->path, d->body, len, &status, err);
        if (rc == 0 && status != 200)
            rc = ctrd_fail(err, CTRD_EIO, "POST %s: HTTP %d", q->path, status);
        if (rc != 0) {
            report(d, err);
            return;
        }
        d->last_error[0] = '\0';
        for (; q->head < end; q->head++, q->posted++)
            free(q->v[q->head].text);
    }
}

/* Relays the server's lines until it is ready (1), or stopped or the
 * demo was (0). */
static int await_ready(struct server *s)
{
    while (!demo_stop && s->fd >= 0 && !(s->port && s->ready))
        server_poll(s, 1000);
    return s->port && s->ready && s->fd >= 0 && !demo_stop;
}

/* The server's address: HOST of --listen with the port it took. */
static int resolve(struct demo *d, char *err)
{
    const char *listen = d->o->listen, *colon = strrchr(listen, ':');
    char host[FS_PATH_MAX], port[16];
    int v6 = listen[0] == '[';
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen) - 2 * v6,
             listen + v6);
    snprintf(port, sizeof port, "%d", d->server.port);
    snprintf(d->client.host, sizeof d->client.host, "%.*s:%d",
             (int)(colon - listen), listen, d->server.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, port, &hints, &d->client.addr);
    if (rc != 0)
        return ctrd_fail(err, CTRD_EIO, "%s: %s", host, gai_strerror(rc));
    return 0;
}

/* Posts the traffic until stopped (0) or it fails (its error). */
static int run_traffic(struct demo *d, char *err)
{
    int64_t tick = clock_wall_ms();
    int rc = 0;
    while (rc == 0 && !demo_stop && d->server.fd >= 0) {
        int64_t now = clock_wall_ms();
        if (now + PART_MS >= d->part_ms)
            rc = next_part(d, err);
        post_due(d, &d->queries, now);
        post_due(d, &d->clicks, now);
        for (tick += TICK_MS;
             (now = clock_wall_ms()) < tick && !demo_stop && d->server.fd >= 0;)
            server_poll(&d->server, tick - now);
    }
    return rc;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Makes the scratch directory and the paths in it. */
static int make_dir(struct demo *d, char *err)
{
    const char *tmp = getenv("TMPDIR");
    int rc =
        join_path(d->dir, tmp && *tmp ? tmp : "/tmp", "ctrd-demo.XXXXXX", err);
    if (rc == 0 && !mkdtemp(d->dir))
        rc = ctrd_fail(err, CTRD_EIO, "%s: %s", d->dir, strerror(errno));
    if (rc == 0 && d->o->data &&
        (size_t)snprintf(d->data, sizeof d->data, "%s", d->o->data) >=
            sizeof d->data)
        rc = ctrd_fail(err, CTRD_EINVAL, "path too long: %s", d->o->data);
    if (rc == 0 && !d->o->data)
        rc = join_path(d->data, d->dir, "data", err);
    if (rc == 0)
        rc = join_path(d->gen_dir, d->dir, "gen", err);
    if (rc == 0)
        rc = join_path(d->ads_path, d->dir, "ads.csv", err);
    return rc;
}

/* The first part, the catalog, the server started and ready: 0, or the
 * exit status (err said). */
static int start(struct demo *d, char *err)
{
    char *argv[] = {"ctrd",  "serve",     "--data",
                    d->data, "--listen",  (char *)d->o->listen,
                    "--ads", d->ads_path, NULL};
    int rc = make_dir(d, err);
    d->part_ms = clock_wall_ms();
    d->part = (uint64_t)(d->part_ms / 1000) % (GEN_PART_LIMIT + 1);
    if (rc == 0)
        rc = next_part(d, err);
    if (rc == 0)
        rc = adopt_catalog(d, err);
    if (rc == 0)
        rc = server_start(&d->server, argv, err);
    if (rc != 0)
        return 1;
    if (await_ready(&d->server))
        return resolve(d, err) == 0 ? 0 : 1;
    return -1; /* the server stopped, or the demo was */
}

static int on_option(void *ctx, int c, const char *arg)
{
    struct demo_opts *o = ctx;
    const char *colon = strrchr(arg, ':');
    uint64_t port;
    switch (c) {
    case 'd':
        o->data = arg;
        return 0;
    case 'l':
        if (!colon || colon == arg || cli_parse_u64(colon + 1, &port) ||
            port > 65535 || (arg[0] == '[' && colon[-1] != ']'))
            return cli_usage("demo", "--listen %s: want HOST:PORT", arg);
        o->listen = arg;
        return 0;
    case 'q':
        if (cli_parse_u64(arg, &o->qps) || o->qps == 0 || o->qps > QPS_MAX)
            return cli_usage("demo", "--queries-per-sec: 1 to %d", QPS_MAX);
        return 0;
    default: /* 's' */
        if (cli_parse_u64(arg, &o->seed))
            return cli_usage("demo", "bad --seed '%s'", arg);
        return 0;
    }
}

static void print_url(const struct demo *d)
{
    const char *h = d->client.host;
    printf("ctrd demo: dashboard at http://%s/?ad=%" PRIu64
           ", API at http://%s/v1/ (data in %s; Ctrl-C stops)\n",
           h, d->busy_ad, h, d->data);
    fflush(stdout);
    fprintf(stderr,
            "ctrd demo: %" PRIu64 " queries a second; advertiser 1's ads at "
            "http://%s/?advertiser=1 (ads catalog %s)\n",
            d->o->qps, h, d->ads_path);
}

int demo_command(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"queries-per-sec", required_argument, NULL, 'q'},
        {"seed", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    struct demo_opts o = {NULL, "127.0.0.1:8080", QPS_DEFAULT, 1};
    char err[CTRD_ERR_LEN];
    int rc = cli_parse(argc, argv, "demo", usage, "h", opts, on_option, &o);
    if (rc >= 0)
        return rc;
    struct demo *d = calloc(1, sizeof *d);
    if (!d) {
        fputs("ctrd demo: out of memory\n", stderr);
        return 1;
    }
    *d = (struct demo){.o = &o, .server = {.pid = -1, .fd = -1}};
    d->queries.path = "/v1/queries";
    d->clicks.path = "/v1/clicks";
    d->client.fd = -1;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = start(d, err);
    int ran = rc == 0;
    if (rc == 1)
        fprintf(stderr, "ctrd demo: %s\n", err);
    if (ran) {
        print_url(d);
        if ((rc = run_traffic(d, err)) != 0)
            fprintf(stderr, "ctrd demo: %s\n", err);
    }
    int status = 1;
    if (d->server.pid > 0) {
        kill(d->server.pid, SIGTERM);
        status = server_wait(&d->server);
    }
    /* gen's scratch; all that was made here (the data too, unless
     * --data) when the server never got ready */
    if (d->dir[0])
        nftw(ran ? d->gen_dir : d->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (ran && rc == 0)
        fprintf(stderr,
                "ctrd demo: posted %" PRIu64 " query and %" PRIu64
                " click lines; data in %s (ctrd query --data %s --ad %" PRIu64
                ")\n",
                d->queries.posted, d->clicks.posted, d->data, d->data,
                d->busy_ad);
    else if (rc < 0) /* the server stopped before it was ready */
        rc = status;
    if (d->client.fd >= 0)
        close(d->client.fd);
    if (d->client.addr)
        freeaddrinfo(d->client.addr);
    queue_free(&d->queries);
    queue_free(&d->clicks);
    free(d->body);
    free(d);
    return rc != 0 ? rc : status == 0 ? 0 : 1;
}
