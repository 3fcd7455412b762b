/* bench: `ctrd bench`; see bench.h.
 *
 * DESIGN. Every step runs this binary as a child (/proc/self/exe), as a
 * user would run it: `ingest`, `serve` and `query` are measured as they
 * ship, and wait4() gives each one's CPU time and peak RSS. The children
 * write their stdout and stderr into files of the scratch directory, so
 * nothing here must drain a pipe while it measures; the server's port and
 * readiness come from its stderr file (its "listening on ... (port N)" and
 * "ready" lines). The HTTP clients are libcurl easy handles, one per
 * thread, kept alive.
 *
 * The workload is read once: the query file mapped and cut into bodies of
 * BENCH_BODY_LINES lines (byte ranges of the map), the click file copied
 * without the freshness clicks and cut the same way. */
#include "bench.h"

#include "cli.h"
#include "clock.h"
#include "fsutil.h"
#include "gen.h"
#include "grow.h"
#include "record.h"

#include <assert.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define QUERIES_DEFAULT 2000000
#define GEN_QUERIES "gen/queries.ndjson" /* in the bench directory */
#define GEN_CLICKS "gen/clicks.ndjson"
#define DIR_ROOM 64  /* bytes a path under the bench directory adds */
#define GEN_QPS 5000 /* the growth table: gen at 5,000/s */
#define GEN_SEED 1
#define FRESH_SAMPLES 100 /* freshness clicks at most */
#define FRESH_SHARE 0.8   /* of the query lines: their clicks may be probes */
#define FRESH_TIMEOUT_MS 10000 /* a click not visible by then fails */
#define SERVE_START_MS 30000   /* the server's ready line by then */
#define RETRY_SLEEP_NS 5000000 /* after a 503 (ingest saturated) */

static const char usage[] =
    "usage: ctrd bench [--queries N] [--out DIR] [--json FILE] [--threads N]\n"
    "\n"
    "The standard benchmark, through the real code paths. Generates gen's\n"
    "standard workload (NDJSON, seed 1, 5,000 queries a second of log time,\n"
    "clicks on about 2 % of the ads shown), then runs, each as a child\n"
    "process of this binary:\n"
    "  batch      `ctrd ingest` of both files: events/s (query and click\n"
    "             lines a second of wall time), cores busy, peak RSS, bytes\n"
    "             on disk per query;\n"
    "  streaming  `ctrd serve`, the same lines POSTed in bodies of 5,000 by\n"
    "             two clients, each answered once durable: events/s;\n"
    "  dashboard  meanwhile, the busiest ad's top 100 terms read again and\n"
    "             again: latency p50, p99, p99.9;\n"
    "  freshness  meanwhile, single clicks posted and the ad's terms polled\n"
    "             until each shows: acknowledged -> visible, p50, p99, p99.9.\n"
    "Before any figure counts, the counts of both data directories are\n"
    "compared ad by ad and term by term (`ctrd query --all`) and must hold\n"
    "every generated impression; on a difference bench says what and exits\n"
    "1 with no figure. Prints one line per figure; --json writes them as a\n"
    "flat JSON object, the per-core figures `ctrd plan --bench` reads among\n"
    "them (parse and join events per core: batch events over the ingest's\n"
    "CPU seconds; disk and RAM bytes per query: the batch data directory's\n"
    "size and the ingest's peak RSS over the queries).\n"
    "\n"
    "  --queries N     queries to generate, 1000.. (2000000)\n"
    "  --out DIR       keep the workload, data directories and logs in DIR\n"
    "                  (new or empty; default: a scratch directory under\n"
    "                  $TMPDIR or /tmp, removed at the end)\n"
    "  --json FILE     also write the figures to FILE as JSON\n"
    "  --threads N     engine workers of ingest and serve (default: one per\n"
    "                  core)\n"
    "  -h, --help      this help;  --version  ctrd's version\n";

/* ---- latency samples ------------------------------------------------- */

struct samples {
    double *ms; /* malloc'd */
    size_t n, cap;
    double p50, p99, p999; /* once samples_finish() ran */
};

static int samples_add(struct samples *s, double ms)
{
    if (grow(&s->ms, &s->cap, s->n + 1, sizeof *s->ms, 4096) != 0)
        return CTRD_ENOMEM;
    s->ms[s->n++] = ms;
    return 0;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The nearest-rank percentiles: the smallest sample with at least q of
 * them at or below it. */
static void samples_finish(struct samples *s)
{
    qsort(s->ms, s->n, sizeof *s->ms, double_cmp);
    double *p[] = {&s->p50, &s->p99, &s->p999};
    const double q[] = {0.5, 0.99, 0.999};
    for (int i = 0; i < 3; i++) {
        size_t rank = (size_t)ceil(q[i] * (double)s->n);
        *p[i] = s->n ? s->ms[rank ? rank - 1 : 0] : NAN;
    }
}

/* ---- child processes ------------------------------------------------- */

/* Starts this binary with argv (NULL-terminated), its stdout into out_path
 * and its stderr into err_path; a child stops if bench dies. */
static int child_start(char *const *argv, const char *out_path,
                       const char *err_path, pid_t *pid, char *err)
{
    pid_t parent = getpid();
    *pid = fork();
    if (*pid < 0)
        return ctrd_fail(err, CTRD_EIO, "fork: %s", strerror(errno));
    if (*pid > 0)
        return 0;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int errfd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (getppid() == parent && out >= 0 && errfd >= 0 &&
        dup2(out, STDOUT_FILENO) >= 0 && dup2(errfd, STDERR_FILENO) >= 0)
        execv("/proc/self/exe", argv);
    _exit(127);
}

/* Reaps the child: 0 when it exited with status 0, else CTRD_EIO naming
 * argv[0] and log. */
static int child_wait(pid_t pid, const char *what, const char *log,
                      struct rusage *ru, char *err)
{
    int status;
    while (wait4(pid, &status, 0, ru) < 0)
        if (errno != EINTR)
            return ctrd_fail(err, CTRD_EIO, "wait: %s", strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return ctrd_fail(err, CTRD_EIO, "`ctrd %s` failed (%s %d); see %s", what,
                     WIFEXITED(status) ? "exit" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                     log);
}

/* Runs this binary with argv to the end: child_wait()'s result. */
static int child_run(char *const *argv, const char *out_path,
                     const char *err_path, struct rusage *ru, char *err)
{
    pid_t pid;
    int rc = child_start(argv, out_path, err_path, &pid, err);
    return rc ? rc : child_wait(pid, argv[1], err_path, ru, err);
}

/* ---- files ----------------------------------------------------------- */

/* The bytes of the files under dir (sizes, not blocks). */
static int tree_bytes(const char *dir, uint64_t *bytes, char *err)
{
    char *paths[] = {(char *)dir, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts)
        return ctrd_fail(err, CTRD_EIO, "%s: %s", dir, strerror(errno));
    FTSENT *e;
    *bytes = 0;
    while ((e = fts_read(fts)))
        if (e->fts_info == FTS_F)
            *bytes += (uint64_t)e->fts_statp->st_size;
    fts_close(fts);
    return 0;
}

/* Removes dir and everything under it, as far as it can. */
static void tree_remove(const char *dir)
{
    char *paths[] = {(char *)dir, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    FTSENT *e;
    while (fts && (e = fts_read(fts))) {
        if (e->fts_info == FTS_DP)
            rmdir(e->fts_accpath);
        else if (e->fts_info != FTS_D)
            unlink(e->fts_accpath);
    }
    if (fts)
        fts_close(fts);
}

/* ---- the comparison -------------------------------------------------- */

/* The impressions of one csv line "ad_id,term,impressions,clicks,ctr" (the
 * term may be quoted and hold commas: the numbers are the last three
 * fields). */
static uint64_t csv_impressions(const char *line, size_t len)
{
    int commas = 0;
    size_t i = len;
    while (i > 0 && commas < 3)
        commas += line[--i] == ',';
    return commas == 3 ? strtoull(line + i + 1, NULL, 10) : 0;
}

static size_t line_len(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return (size_t)((nl ? nl : end) - p);
}

int bench_compare(const char *a, size_t alen, const char *b, size_t blen,
                  uint64_t want_impressions, char *what)
{
    const char *pa = a, *pb = b, *ea = a + alen, *eb = b + blen;
    uint64_t impressions = 0;
    for (size_t line = 1; pa < ea || pb < eb; line++) {
        size_t la = line_len(pa, ea), lb = line_len(pb, eb);
        if (la != lb || memcmp(pa, pb, la) != 0 || (pa < ea) != (pb < eb))
            return ctrd_fail(what, CTRD_EINVAL,
                             "line %zu: batch '%.*s', streaming '%.*s'", line,
                             (int)(la < 200 ? la : 200), pa,
                             (int)(lb < 200 ? lb : 200), pb);
        if (line > 1)
            impressions += csv_impressions(pa, la);
        pa += la + (pa + la < ea);
        pb += lb + (pb + lb < eb);
    }
    if (impressions != want_impressions)
        return ctrd_fail(what, CTRD_EINVAL,
                         "impressions: %" PRIu64 " counted, %" PRIu64
                         " generated",
                         impressions, want_impressions);
    return 0;
}

/* ---- the workload ---------------------------------------------------- */

struct body {
    const char *p;
    size_t len, lines;
};

/* A click posted alone for freshness: its line, ad and the query body it
 * must follow. */
struct fresh {
    uint64_t query_id, ad_id;
    size_t line;       /* in the click file */
    size_t query_line; /* SIZE_MAX: its query is not in the file */
    uint64_t clicks;   /* the ad's clicks once it is in (fresh_pick()) */
};

struct workload {
    char *queries; /* the query file, mapped */
    size_t queries_len;
    char *clicks; /* the click file (fs_read_file) */
    size_t clicks_len;
    char *bulk; /* the click lines but the freshness ones */
    struct body *qb, *cb;
    size_t nqb, ncb, qcap, ccap;
    uint64_t query_lines, click_lines; /* not empty */
    uint64_t impressions;              /* ads over the query lines */
    struct fresh *fresh;
    size_t nfresh, fcap;
    char **fresh_text; /* each freshness click's line, with its LF */
};

/* Appends the body p[0..len) of n lines. */
static int body_push(struct body **v, size_t *n, size_t *cap, const char *p,
                     size_t len, size_t lines)
{
    if (grow(v, cap, *n + 1, sizeof **v, 256) != 0)
        return CTRD_ENOMEM;
    (*v)[(*n)++] = (struct body){p, len, lines};
    return 0;
}

/* Cuts buf[0..len) into bodies of BENCH_BODY_LINES lines. */
static int bodies_cut(const char *buf, size_t len, struct body **v, size_t *n,
                      size_t *cap)
{
    size_t start = 0, pos = 0, lines = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        pos = nl ? (size_t)(nl - buf) + 1 : len;
        if (++lines == BENCH_BODY_LINES || pos == len) {
            if (body_push(v, n, cap, buf + start, pos - start, lines) != 0)
                return CTRD_ENOMEM;
            start = pos;
            lines = 0;
        }
    }
    return 0;
}

static int fresh_by_query_id(const void *a, const void *b)
{
    const struct fresh *x = a, *y = b;
    return x->query_id < y->query_id ? -1 : x->query_id > y->query_id;
}

/* By query id, then ad id. */
static int fresh_by_click(const void *a, const void *b)
{
    const struct fresh *x = a, *y = b;
    int by_query = fresh_by_query_id(a, b);
    return by_query ? by_query : (x->ad_id > y->ad_id) - (x->ad_id < y->ad_id);
}

static int fresh_by_query_line(const void *a, const void *b)
{
    const struct fresh *x = a, *y = b;
    return x->query_line < y->query_line ? -1 : x->query_line > y->query_line;
}

/* Every valid click, then only those not re-delivered (no other line of
 * the same query and ad: each counts once it is in), by query id. */
static int fresh_candidates(struct workload *w)
{
    size_t pos = 0, line = 0;
    for (; pos < w->clicks_len; line++) {
        const char *p = w->clicks + pos;
        size_t len = line_len(p, w->clicks + w->clicks_len);
        struct rec_click c;
        pos += len + 1;
        w->click_lines += len > 0;
        if (rec_parse_click(REC_NDJSON, p, len, &c) != REC_OK)
            continue;
        if (grow(&w->fresh, &w->fcap, w->nfresh + 1, sizeof *w->fresh, 4096) !=
            0)
            return CTRD_ENOMEM;
        w->fresh[w->nfresh++] =
            (struct fresh){c.query_id, c.ad_id, line, SIZE_MAX, 0};
    }
    qsort(w->fresh, w->nfresh, sizeof *w->fresh, fresh_by_click);
    size_t kept = 0;
    for (size_t i = 0; i < w->nfresh; i++) {
        const struct fresh *f = &w->fresh[i];
        if ((i == 0 || fresh_by_click(f - 1, f) != 0) &&
            (i + 1 == w->nfresh || fresh_by_click(f + 1, f) != 0))
            w->fresh[kept++] = *f;
    }
    w->nfresh = kept;
    return 0;
}

/* The query of every candidate click with query_id: at line. */
static void fresh_mark_query(struct workload *w, uint64_t query_id, size_t line)
{
    struct fresh key = {.query_id = query_id};
    struct fresh *f =
        bsearch(&key, w->fresh, w->nfresh, sizeof key, fresh_by_query_id);
    while (f && f > w->fresh && f[-1].query_id == query_id)
        f--;
    for (; f && f < w->fresh + w->nfresh && f->query_id == query_id; f++)
        f->query_line = line;
}

/* One pass over the queries: their lines, impressions, and the line of
 * each freshness candidate's query. */
static int scan_queries(struct workload *w, char *err)
{
    size_t pos = 0, line = 0;
    while (pos < w->queries_len) {
        const char *p = w->queries + pos;
        size_t len = line_len(p, w->queries + w->queries_len);
        struct rec_query q;
        enum rec_reason why = rec_parse_query(REC_NDJSON, p, len, &q);
        pos += len + 1;
        line++;
        if (why == REC_EMPTY)
            continue;
        if (why != REC_OK)
            return ctrd_fail(err, CTRD_EINVAL, "query line %zu: not valid",
                             line);
        w->query_lines++;
        w->impressions += q.n_ads;
        fresh_mark_query(w, q.query_id, line - 1);
    }
    return 0;
}

/* Keeps FRESH_SAMPLES candidates spread over the first FRESH_SHARE of the
 * query lines, in query order, each with the clicks its ad has once it is
 * in (the freshness clicks on that ad up to itself: no other click is
 * posted before every query is in), and copies every other click into
 * the bulk. */
static int fresh_pick(struct workload *w)
{
    qsort(w->fresh, w->nfresh, sizeof *w->fresh, fresh_by_query_line);
    size_t last = (size_t)((double)w->query_lines * FRESH_SHARE);
    while (w->nfresh > 0 && w->fresh[w->nfresh - 1].query_line >= last)
        w->nfresh--;
    size_t n = w->nfresh < FRESH_SAMPLES ? w->nfresh : FRESH_SAMPLES;
    for (size_t i = 0; i < n; i++) {
        w->fresh[i] = w->fresh[i * w->nfresh / n];
        w->fresh[i].clicks = 1;
        for (size_t j = 0; j < i; j++)
            w->fresh[i].clicks += w->fresh[j].ad_id == w->fresh[i].ad_id;
    }
    w->nfresh = n;
    w->fresh_text = calloc(n ? n : 1, sizeof *w->fresh_text);
    w->bulk = malloc(w->clicks_len + 1);
    if (!w->fresh_text || !w->bulk)
        return CTRD_ENOMEM;
    size_t pos = 0, out = 0;
    for (size_t line = 0; pos < w->clicks_len; line++) {
        const char *p = w->clicks + pos;
        size_t len = line_len(p, w->clicks + w->clicks_len) + 1;
        size_t i = 0;
        while (i < n && w->fresh[i].line != line)
            i++;
        if (i < n && !(w->fresh_text[i] = strndup(p, len)))
            return CTRD_ENOMEM;
        if (i == n) {
            memcpy(w->bulk + out, p, len);
            out += len;
        }
        pos += len;
    }
    return bodies_cut(w->bulk, out, &w->cb, &w->ncb, &w->ccap);
}

static int workload_load(struct workload *w, const char *queries,
                         const char *clicks, char *err)
{
    int rc = fs_map_file(queries, (void **)&w->queries, &w->queries_len, err);
    if (rc == 0)
        rc = fs_read_file(clicks, &w->clicks, &w->clicks_len, err);
    if (rc == 0)
        rc = fresh_candidates(w);
    if (rc == 0)
        rc = scan_queries(w, err);
    if (rc == 0)
        rc = fresh_pick(w);
    if (rc == 0)
        rc = bodies_cut(w->queries, w->queries_len, &w->qb, &w->nqb, &w->qcap);
    return rc == CTRD_ENOMEM ? ctrd_fail(err, rc, "out of memory") : rc;
}

static void workload_free(struct workload *w)
{
    fs_unmap(w->queries, w->queries_len);
    free(w->clicks);
    free(w->bulk);
    free(w->qb);
    free(w->cb);
    for (size_t i = 0; w->fresh_text && i < w->nfresh; i++)
        free(w->fresh_text[i]);
    free(w->fresh_text);
    free(w->fresh);
}

/* ---- the HTTP client ------------------------------------------------- */

struct http {
    CURL *curl;
    struct curl_slist *ndjson; /* the POST headers */
    char base[64];             /* "http://127.0.0.1:PORT" */
    char *answer;              /* the last answer's body, NUL-terminated */
    size_t len, cap;
};

static size_t http_take(char *p, size_t size, size_t n, void *ctx)
{
    struct http *c = ctx;
    if (grow(&c->answer, &c->cap, c->len + n + 1, 1, 16384) != 0)
        return 0;
    memcpy(c->answer + c->len, p, n);
    c->len += n;
    c->answer[c->len] = '\0';
    (void)size;
    return n;
}

static int http_open(struct http *c, int port, char *err)
{
    snprintf(c->base, sizeof c->base, "http://127.0.0.1:%d", port);
    c->curl = curl_easy_init();
    c->ndjson = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
    struct curl_slist *h =
        c->ndjson ? curl_slist_append(c->ndjson, "Expect:") : NULL;
    if (!c->curl || !h)
        return ctrd_fail(err, CTRD_ENOMEM, "curl: out of memory");
    c->ndjson = h;
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, http_take);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->ndjson);
    return 0;
}

static void http_close(struct http *c)
{
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->ndjson);
    free(c->answer);
}

/* A GET (body NULL) or an NDJSON POST of path; 0 once answered 200 (a 503,
 * ingest saturated, is posted again), else CTRD_EIO. */
static int http_call(struct http *c, const char *path, const char *body,
                     size_t len, char *err)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    for (;;) {
        long status = 0;
        c->len = 0;
        if (c->answer)
            c->answer[0] = '\0'; /* an empty body leaves no stale one */
        CURLcode rc = curl_easy_perform(c->curl);
        if (rc != CURLE_OK)
            return ctrd_fail(err, CTRD_EIO, "%s: %s", path,
                             curl_easy_strerror(rc));
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200)
            return 0;
        if (status != 503)
            return ctrd_fail(err, CTRD_EIO, "%s: HTTP %ld: %.200s", path,
                             status, c->answer ? c->answer : "");
        nanosleep(&(struct timespec){0, RETRY_SLEEP_NS}, NULL);
    }
}

/* ---- streaming ------------------------------------------------------- */

struct stream {
    const struct workload *w;
    int port;
    uint64_t busy_ad;
    atomic_size_t next_q, next_c; /* the next body to post */
    atomic_uchar *q_done;         /* [nqb]: that query body acknowledged */
    atomic_size_t q_acked;        /* query bodies acknowledged */
    /* The clicks are posted once every query is in and the last probe
     * done (no bulk click moves a probed ad's total). */
    atomic_int probes_done;
    atomic_int posting, failed;
    pthread_mutex_t mu;     /* guards err */
    char err[CTRD_ERR_LEN]; /* the first failure */
    struct samples dashboard, fresh;
};

static void stream_fail(struct stream *s, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    if (!atomic_exchange(&s->failed, 1))
        snprintf(s->err, sizeof s->err, "%s", msg);
    pthread_mutex_unlock(&s->mu);
}

/* Posts bodies v[next...] until none is left; done[i] set as each is
 * acknowledged and counted in s->q_acked (NULL: not tracked). */
static void post_bodies(struct stream *s, struct http *c, const char *path,
                        const struct body *v, size_t n, atomic_size_t *next,
                        atomic_uchar *done)
{
    char err[CTRD_ERR_LEN];
    for (size_t i;
         !atomic_load(&s->failed) && (i = atomic_fetch_add(next, 1)) < n;) {
        if (http_call(c, path, v[i].p, v[i].len, err) != 0)
            stream_fail(s, err);
        else if (done) {
            atomic_store(&done[i], 1);
            atomic_fetch_add(&s->q_acked, 1);
        }
    }
}

/* Waits until the clicks are due (or the run failed). */
static void wait_clicks_due(struct stream *s)
{
    while (!atomic_load(&s->failed) && (atomic_load(&s->q_acked) < s->w->nqb ||
                                        !atomic_load(&s->probes_done)))
        nanosleep(&(struct timespec){0, 100000}, NULL);
}

static void *poster_main(void *arg)
{
    struct stream *s = arg;
    struct http c = {0};
    char err[CTRD_ERR_LEN];
    int ok = http_open(&c, s->port, err) == 0;
    if (!ok)
        stream_fail(s, err);
    if (ok)
        post_bodies(s, &c, "/v1/queries", s->w->qb, s->w->nqb, &s->next_q,
                    s->q_done);
    wait_clicks_due(s);
    if (ok)
        post_bodies(s, &c, "/v1/clicks", s->w->cb, s->w->ncb, &s->next_c, NULL);
    http_close(&c);
    return NULL;
}

static double since_ms(uint64_t start_ns)
{
    return (double)(clock_mono_ns() - start_ns) / 1e6;
}

static void *dashboard_main(void *arg)
{
    struct stream *s = arg;
    struct http c = {0};
    char err[CTRD_ERR_LEN], path[128];
    snprintf(path, sizeof path, "/v1/ads/%" PRIu64 "/terms?limit=100",
             s->busy_ad);
    int rc = http_open(&c, s->port, err);
    while (rc == 0 && atomic_load(&s->posting) && !atomic_load(&s->failed)) {
        uint64_t start = clock_mono_ns();
        rc = http_call(&c, path, NULL, 0, err);
        if (rc == 0 && samples_add(&s->dashboard, since_ms(start)) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    if (rc != 0)
        stream_fail(s, err);
    http_close(&c);
    return NULL;
}

/* The ad's clicks in a terms answer: its "totals" object's; 0 when
 * none. */
static uint64_t answer_clicks(const char *answer)
{
    const char *totals = answer ? strstr(answer, "\"totals\":") : NULL;
    const char *clicks = totals ? strstr(totals, "\"clicks\":") : NULL;
    return clicks ? strtoull(clicks + 9, NULL, 10) : 0;
}

/* Posts freshness click i once its query is acknowledged, then polls its
 * ad's terms until their total shows the click: the time from its answer
 * on. */
static int fresh_one(struct stream *s, struct http *c, size_t i, char *err)
{
    const struct fresh *f = &s->w->fresh[i];
    size_t body = f->query_line / BENCH_BODY_LINES;
    while (!atomic_load(&s->q_done[body]))
        if (atomic_load(&s->failed))
            return CTRD_EIO;
        else
            nanosleep(&(struct timespec){0, 100000}, NULL);
    const char *text = s->w->fresh_text[i];
    int rc = http_call(c, "/v1/clicks", text, strlen(text), err);
    uint64_t acked = clock_mono_ns();
    char path[128];
    snprintf(path, sizeof path, "/v1/ads/%" PRIu64 "/terms?limit=1", f->ad_id);
    while (rc == 0) {
        rc = http_call(c, path, NULL, 0, err);
        if (rc == 0 && answer_clicks(c->answer) >= f->clicks)
            break;
        if (rc == 0 && since_ms(acked) > FRESH_TIMEOUT_MS)
            rc = ctrd_fail(err, CTRD_EIO,
                           "the click on ad %" PRIu64
                           " is not visible after %d ms: %.200s",
                           f->ad_id, FRESH_TIMEOUT_MS, c->answer);
    }
    if (rc == 0 && samples_add(&s->fresh, since_ms(acked)) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    return rc;
}

static void *fresh_main(void *arg)
{
    struct stream *s = arg;
    struct http c = {0};
    char err[CTRD_ERR_LEN];
    int rc = http_open(&c, s->port, err);
    for (size_t i = 0; rc == 0 && i < s->w->nfresh; i++)
        rc = fresh_one(s, &c, i, err);
    if (rc != 0 && !atomic_load(&s->failed))
        stream_fail(s, err);
    atomic_store(&s->probes_done, 1);
    http_close(&c);
    return NULL;
}

/* Runs the posters, the dashboard reader and the freshness prober against
 * the server on port: *wall_s is the posters' time. */
static int stream_run(struct stream *s, double *wall_s, char *err)
{
    enum { READER, PROBER, POSTER1, POSTER2, THREADS };
    void *(*const mains[THREADS])(void *) = {dashboard_main, fresh_main,
                                             poster_main, poster_main};
    pthread_t t[THREADS];
    int started[THREADS] = {0};
    s->q_done = calloc(s->w->nqb ? s->w->nqb : 1, sizeof *s->q_done);
    if (!s->q_done)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    atomic_store(&s->posting, 1);
    uint64_t start = clock_mono_ns();
    for (int i = 0; i < THREADS; i++)
        if (!(started[i] = pthread_create(&t[i], NULL, mains[i], s) == 0))
            stream_fail(s, "cannot start a thread");
    for (int i = POSTER1; i < THREADS; i++)
        if (started[i])
            pthread_join(t[i], NULL);
    *wall_s = since_ms(start) / 1e3;
    atomic_store(&s->posting, 0);
    for (int i = READER; i < POSTER1; i++)
        if (started[i])
            pthread_join(t[i], NULL);
    pthread_mutex_destroy(&s->mu);
    free((void *)s->q_done);
    if (s->failed)
        return ctrd_fail(err, CTRD_EIO, "streaming: %s", s->err);
    samples_finish(&s->dashboard);
    samples_finish(&s->fresh);
    return 0;
}

/* ---- the bench ------------------------------------------------------- */

struct bench_opts {
    uint64_t queries;
    const char *out, *json, *threads;
};

struct bench {
    const struct bench_opts *o;
    char dir[FS_PATH_MAX]; /* the scratch (or --out) directory */
    struct workload w;
    /* batch */
    double batch_wall_s, batch_cpu_s;
    uint64_t batch_rss_bytes, disk_bytes;
    /* streaming */
    double http_wall_s;
    uint64_t serve_rss_bytes;
    struct stream s;
    char err[CTRD_ERR_LEN];
};

/* dir/name into out (FS_PATH_MAX bytes). */
static const char *bench_path(const struct bench *b, const char *name,
                              char *out)
{
    int n = snprintf(out, FS_PATH_MAX, "%s/%s", b->dir, name);
    assert(n > 0 && n < FS_PATH_MAX); /* bench_dir() left room */
    (void)n;
    return out;
}

static int bench_gen(struct bench *b)
{
    char gen_dir[FS_PATH_MAX];
    struct gen_config cfg;
    struct gen_summary sum;
    gen_config_default(&cfg);
    cfg.out_dir = bench_path(b, "gen", gen_dir);
    cfg.queries_per_sec = GEN_QPS;
    cfg.duration_ms = (int64_t)((b->o->queries * 1000 + GEN_QPS - 1) / GEN_QPS);
    cfg.seed = GEN_SEED;
    cfg.formats = GEN_NDJSON;
    int rc = gen_run(&cfg, &sum, b->err);
    char q[FS_PATH_MAX], c[FS_PATH_MAX];
    return rc ? rc
              : workload_load(&b->w, bench_path(b, GEN_QUERIES, q),
                              bench_path(b, GEN_CLICKS, c), b->err);
}

static double rusage_cpu_s(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

/* Fills argv[at...] with --threads N when given; the next free index. */
static int threads_arg(const struct bench *b, char **argv, int at)
{
    if (b->o->threads) {
        argv[at++] = "--threads";
        argv[at++] = (char *)b->o->threads;
    }
    return at;
}

static int bench_batch(struct bench *b)
{
    char data[FS_PATH_MAX], q[FS_PATH_MAX], c[FS_PATH_MAX], rep[FS_PATH_MAX],
        out[FS_PATH_MAX], log[FS_PATH_MAX];
    char *argv[16] = {
        "ctrd",      "ingest",
        "--data",    (char *)bench_path(b, "batch", data),
        "--queries", (char *)bench_path(b, GEN_QUERIES, q),
        "--clicks",  (char *)bench_path(b, GEN_CLICKS, c),
        "--report",  (char *)bench_path(b, "batch.report.json", rep),
        "--quiet"};
    threads_arg(b, argv, 11);
    struct rusage ru = {0};
    uint64_t start = clock_mono_ns();
    int rc = child_run(argv, bench_path(b, "batch.out", out),
                       bench_path(b, "batch.log", log), &ru, b->err);
    b->batch_wall_s = since_ms(start) / 1e3;
    b->batch_cpu_s = rusage_cpu_s(&ru);
    b->batch_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
    return rc ? rc : tree_bytes(data, &b->disk_bytes, b->err);
}

/* Waits for the server's "listening on ... (port N)" and "ready" lines in
 * its log. */
static int serve_ready(struct bench *b, pid_t *pid, const char *log)
{
    int64_t until = clock_mono_ms() + SERVE_START_MS;
    while (clock_mono_ms() < until) {
        char *text = NULL;
        size_t len;
        char ignored[CTRD_ERR_LEN];
        if (fs_read_file(log, &text, &len, ignored) == 0) {
            const char *port = strstr(text, " (port ");
            int ready = strstr(text, "ctrd serve: ready\n") != NULL;
            b->s.port = port ? atoi(port + 7) : 0;
            free(text);
            if (ready && b->s.port > 0)
                return 0;
        }
        if (waitpid(*pid, NULL, WNOHANG) == *pid) {
            *pid = 0; /* reaped: nothing to stop */
            return ctrd_fail(b->err, CTRD_EIO, "`ctrd serve` exited; see %s",
                             log);
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return ctrd_fail(b->err, CTRD_EIO,
                     "`ctrd serve` not ready after %d s; see %s",
                     SERVE_START_MS / 1000, log);
}

static int bench_stream(struct bench *b)
{
    char data[FS_PATH_MAX], out[FS_PATH_MAX], log[FS_PATH_MAX];
    char *argv[16] = {"ctrd",     "serve",
                      "--data",   (char *)bench_path(b, "stream", data),
                      "--listen", "127.0.0.1:0"};
    threads_arg(b, argv, 6);
    pid_t pid;
    int rc = child_start(argv, bench_path(b, "serve.out", out),
                         bench_path(b, "serve.log", log), &pid, b->err);
    if (rc != 0)
        return rc;
    b->s.w = &b->w;
    b->s.busy_ad = gen_ad_id(0);
    rc = serve_ready(b, &pid, log);
    if (rc == 0)
        rc = stream_run(&b->s, &b->http_wall_s, b->err);
    if (pid == 0)
        return rc;
    kill(pid, SIGTERM);
    struct rusage ru = {0};
    char stop_err[CTRD_ERR_LEN];
    int stop = child_wait(pid, "serve", log, &ru, stop_err);
    b->serve_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
    if (rc == 0 && stop != 0)
        rc = ctrd_fail(b->err, stop, "%s", stop_err);
    return rc;
}

/* `ctrd query --all --format csv --sort term` of the data directory
 * name into name.csv (csv: its path). */
static int bench_dump(struct bench *b, const char *name, char *csv)
{
    char data[FS_PATH_MAX], log[FS_PATH_MAX], file[DIR_ROOM];
    char *argv[] = {
        "ctrd",  "query",    "--data", (char *)bench_path(b, name, data),
        "--all", "--format", "csv",    "--sort",
        "term",  NULL};
    snprintf(file, sizeof file, "%.50s.query.log", name);
    bench_path(b, file, log);
    snprintf(file, sizeof file, "%.50s.csv", name);
    struct rusage ru = {0};
    return child_run(argv, bench_path(b, file, csv), log, &ru, b->err);
}

static int bench_verify(struct bench *b)
{
    char batch[FS_PATH_MAX], stream[FS_PATH_MAX];
    char *a = NULL, *s = NULL;
    size_t alen, slen;
    int rc = bench_dump(b, "batch", batch);
    if (rc == 0)
        rc = bench_dump(b, "stream", stream);
    if (rc == 0)
        rc = fs_read_file(batch, &a, &alen, b->err);
    if (rc == 0)
        rc = fs_read_file(stream, &s, &slen, b->err);
    if (rc == 0 &&
        bench_compare(a, alen, s, slen, b->w.impressions, b->err) != 0)
        rc = ctrd_fail(b->err, CTRD_EINVAL,
                       "the counts differ (%s vs %s): %.400s", batch, stream,
                       b->err);
    free(a);
    free(s);
    return rc;
}

/* ---- the figures ----------------------------------------------------- */

struct figure {
    const char *key, *unit;
    double value;
};

enum { N_FIGURES = 22 };

static void bench_figures(const struct bench *b, struct figure *f)
{
    double events = (double)(b->w.query_lines + b->w.click_lines);
    double queries = (double)b->w.query_lines;
    double per_core = events / b->batch_cpu_s;
    const struct samples *d = &b->s.dashboard, *r = &b->s.fresh;
    const struct figure all[N_FIGURES] = {
        {"queries", "queries", queries},
        {"clicks", "clicks", (double)b->w.click_lines},
        {"batch_events_per_s", "events/s", events / b->batch_wall_s},
        {"batch_wall_s", "s", b->batch_wall_s},
        {"batch_cores_busy", "cores", b->batch_cpu_s / b->batch_wall_s},
        {"parse_events_per_core_s", "events/s/core", per_core},
        {"join_events_per_core_s", "events/s/core", per_core},
        {"peak_rss_bytes", "bytes", (double)b->batch_rss_bytes},
        {"ram_bytes_per_query", "bytes", (double)b->batch_rss_bytes / queries},
        {"bytes_per_query_disk", "bytes", (double)b->disk_bytes / queries},
        {"http_events_per_s", "events/s", events / b->http_wall_s},
        {"http_wall_s", "s", b->http_wall_s},
        {"serve_peak_rss_bytes", "bytes", (double)b->serve_rss_bytes},
        {"dashboard_samples", "requests", (double)d->n},
        {"dashboard_p50_ms", "ms", d->p50},
        {"dashboard_p99_ms", "ms", d->p99},
        {"dashboard_p999_ms", "ms", d->p999},
        {"freshness_samples", "clicks", (double)r->n},
        {"freshness_p50_ms", "ms", r->p50},
        {"freshness_p99_ms", "ms", r->p99},
        {"freshness_p999_ms", "ms", r->p999},
        {"body_lines", "lines", BENCH_BODY_LINES},
    };
    memcpy(f, all, sizeof all);
}

static void print_figures(const struct bench *b, const struct figure *f)
{
    printf("ctrd bench %s: %" PRIu64 " queries, %" PRIu64
           " clicks (gen seed %d); counts verified: batch = streaming, ad by "
           "ad and term by term, every impression counted\n",
           CTRD_VERSION, b->w.query_lines, b->w.click_lines, GEN_SEED);
    for (int i = 0; i < N_FIGURES; i++)
        printf(f[i].value == floor(f[i].value) && f[i].value < 1e15
                   ? "  %-26s %16.0f  %s\n"
                   : "  %-26s %16.6g  %s\n",
               f[i].key, f[i].value, f[i].unit);
}

static int write_json(const char *path, const struct figure *f, char *err)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return ctrd_fail(err, CTRD_EIO, "%s: %s", path, strerror(errno));
    fprintf(out, "{\"version\":\"%s\"", CTRD_VERSION);
    for (int i = 0; i < N_FIGURES; i++)
        fprintf(out, isfinite(f[i].value) ? ",\"%s\":%.17g" : ",\"%s\":null",
                f[i].key, f[i].value);
    fputs("}\n", out);
    if (fclose(out) != 0)
        return ctrd_fail(err, CTRD_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

/* ---- the command ----------------------------------------------------- */

static int bench_dir(struct bench *b)
{
    if (!b->o->out) {
        const char *tmp = getenv("TMPDIR");
        int n = snprintf(b->dir, sizeof b->dir - DIR_ROOM,
                         "%s/ctrd-bench.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (n < 0 || (size_t)n >= sizeof b->dir - DIR_ROOM)
            return ctrd_fail(b->err, CTRD_EINVAL, "$TMPDIR: too long a path");
        return mkdtemp(b->dir) ? 0
                               : ctrd_fail(b->err, CTRD_EIO, "%s: %s", b->dir,
                                           strerror(errno));
    }
    if (strlen(b->o->out) >= sizeof b->dir - DIR_ROOM)
        return ctrd_fail(b->err, CTRD_EINVAL, "--out: too long a path");
    strcpy(b->dir, b->o->out);
    int rc = fs_mkdirs(b->dir, b->err);
    DIR *d = rc == 0 ? opendir(b->dir) : NULL;
    if (rc == 0 && !d)
        return ctrd_fail(b->err, CTRD_EIO, "%s: %s", b->dir, strerror(errno));
    for (struct dirent *e; rc == 0 && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = ctrd_fail(b->err, CTRD_EINVAL, "--out %s: not empty", b->dir);
    if (d)
        closedir(d);
    return rc;
}

static int bench_run(struct bench *b)
{
    struct figure f[N_FIGURES];
    int rc = bench_gen(b);
    if (rc == 0)
        rc = bench_batch(b);
    if (rc == 0)
        rc = bench_stream(b);
    if (rc == 0)
        rc = bench_verify(b);
    if (rc != 0)
        return rc;
    bench_figures(b, f);
    print_figures(b, f);
    return b->o->json ? write_json(b->o->json, f, b->err) : 0;
}

enum { OPT_QUERIES = 0x100, OPT_OUT, OPT_JSON, OPT_THREADS };

static int bench_option(void *ctx, int c, const char *arg)
{
    struct bench_opts *o = ctx;
    uint64_t n;
    switch (c) {
    case OPT_QUERIES:
        if (cli_parse_u64(arg, &o->queries) != 0 || o->queries < 1000 ||
            o->queries > UINT64_C(1000000000))
            return cli_usage("bench",
                             "--queries: '%s' is not a number in "
                             "1000..1000000000",
                             arg);
        return 0;
    case OPT_OUT:
        o->out = arg;
        return 0;
    case OPT_JSON:
        o->json = arg;
        return 0;
    case OPT_THREADS:
        if (cli_parse_u64(arg, &n) != 0 || n < 1 || n > 1024)
            return cli_usage("bench",
                             "--threads: '%s' is not a number in "
                             "1..1024",
                             arg);
        o->threads = arg;
        return 0;
    }
    return cli_usage("bench", "unknown option");
}

int bench_command(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"queries", required_argument, NULL, OPT_QUERIES},
        {"out", required_argument, NULL, OPT_OUT},
        {"json", required_argument, NULL, OPT_JSON},
        {"threads", required_argument, NULL, OPT_THREADS},
        {0, 0, 0, 0},
    };
    struct bench_opts o = {.queries = QUERIES_DEFAULT};
    int rc = cli_parse(argc, argv, "bench", usage, "h", opts, bench_option, &o);
    if (rc >= 0)
        return rc;
    struct bench b = {.o = &o};
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "ctrd bench: curl_global_init failed\n");
        return 1;
    }
    rc = bench_dir(&b);
    if (rc == 0)
        rc = bench_run(&b);
    if (rc != 0)
        fprintf(stderr, "ctrd bench: %s\n", b.err);
    workload_free(&b.w);
    free(b.s.dashboard.ms);
    free(b.s.fresh.ms);
    if (!o.out && b.dir[0])
        tree_remove(b.dir);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
