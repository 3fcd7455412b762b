/* Unit tests of api: routing and access control as a table, route x role x
 * method -> status, without sockets or threads.
 *
 * Includes api.c (its public names renamed: the library's api.o is linked
 * too) with the HTTP layer, the read pool and the stream hub replaced by
 * fakes in this file: an exchange is a struct of method, path, query and
 * headers, and records what the api did with it (the status it answered,
 * or that it queued a read, submitted an ingest or started a stream —
 * what happens after that is other modules' and other tests'). Tokens and
 * the catalog are real files read by auth.c and catalog.c. The list of
 * advertisers is also read whole, on this thread, from a real engine. */
#include "check.h"

#include <ftw.h>
#include <stdlib.h>
#include <unistd.h>

struct http_exchange {
    const char *method, *path, *query; /* query: raw "a=1&b=2" */
    const char *authorization, *content_type, *if_none_match;
    int status;     /* what the api answered; 0: nothing yet */
    char body[128]; /* its body, cut to fit */
    char allow[16]; /* its Allow header */
    void *read;     /* the read it queued (a struct read_req) */
    int submitted;  /* it handed an ingest request on */
    int streamed;   /* it started a stream */
};

#define api_create test_api_create
#define api_free test_api_free
#define api_attach test_api_attach
#define api_stop_reads test_api_stop_reads
#define api_handle test_api_handle
#define api_refuse_writes test_api_refuse_writes
#define api_respond_ingest_error test_api_respond_ingest_error
#define api_respond_json test_api_respond_json
#define http_method fake_http_method
#define http_path fake_http_path
#define http_header fake_http_header
#define http_param fake_http_param
#define http_body fake_http_body
#define http_started_ns fake_http_started_ns
#define http_add_header fake_http_add_header
#define http_respond fake_http_respond
#define http_server_post fake_http_server_post
#define readpool_create fake_readpool_create
#define readpool_submit fake_readpool_submit
#define readpool_queued fake_readpool_queued
#define readpool_free fake_readpool_free
#define sse_subscribe fake_sse_subscribe
#include "../../src/api.c"

#include <strings.h>

/* ---- fakes ---- */

const char *http_method(const struct http_exchange *x)
{
    return x->method;
}

const char *http_path(const struct http_exchange *x)
{
    return x->path;
}

const char *http_header(const struct http_exchange *x, const char *name)
{
    if (strcasecmp(name, "Authorization") == 0)
        return x->authorization;
    if (strcasecmp(name, "Content-Type") == 0)
        return x->content_type;
    if (strcasecmp(name, "If-None-Match") == 0)
        return x->if_none_match;
    return NULL;
}

/* The raw value (no percent-decoding: the rows need none). */
int http_param(const struct http_exchange *x, const char *name, char *out,
               size_t out_len)
{
    size_t n = strlen(name);
    for (const char *p = x->query; p && *p;) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t key = eq ? (size_t)(eq - p) : len;
        if (key == n && strncmp(p, name, n) == 0) {
            size_t v = eq ? len - key - 1 : 0;
            if (v >= out_len)
                return CTRD_EINVAL;
            memcpy(out, p + key + (eq != NULL), v);
            out[v] = '\0';
            return 0;
        }
        p += len + (p[len] == '&');
    }
    return CTRD_ENOTFOUND;
}

const char *http_body(const struct http_exchange *x, size_t *len)
{
    (void)x;
    *len = 2;
    return "{}";
}

uint64_t http_started_ns(const struct http_exchange *x)
{
    (void)x;
    return clock_mono_ns();
}

void http_add_header(struct http_exchange *x, const char *name,
                     const char *value)
{
    if (strcmp(name, "Allow") == 0)
        snprintf(x->allow, sizeof x->allow, "%s", value);
}

void http_respond(struct http_exchange *x, int status, const char *content_type,
                  const char *body, size_t len)
{
    (void)content_type;
    snprintf(x->body, sizeof x->body, "%.*s", (int)len, body);
    if (x->status)
        CHECK_FAIL_AT("%s %s answered twice: %d then %d", x->method, x->path,
                      x->status, status);
    x->status = status;
}

int http_server_post(struct http_server *s, void (*fn)(void *arg), void *arg)
{
    (void)s, (void)fn, (void)arg;
    return 0;
}

static char fake_pool, fake_hub; /* what the api holds as pool and hub */

int readpool_create(unsigned n_threads, size_t capacity,
                    readpool_serve_fn *serve, void *ctx, struct readpool **out)
{
    (void)n_threads, (void)capacity, (void)serve, (void)ctx;
    *out = (struct readpool *)&fake_pool;
    return 0;
}

int readpool_submit(struct readpool *p, void *item, uint64_t queued_ns)
{
    struct read_req *r = item;
    (void)p, (void)queued_ns;
    r->x->read = r;
    return 0;
}

size_t readpool_queued(struct readpool *p)
{
    (void)p;
    return 0;
}

void readpool_free(struct readpool *p)
{
    (void)p;
}

int sse_subscribe(struct sse *s, struct http_exchange *x, const uint64_t *ads,
                  size_t n)
{
    (void)s, (void)ads, (void)n;
    x->streamed = 1;
    return 0;
}

static int fake_submit(void *ctx, struct http_exchange *x,
                       enum engine_kind kind, enum rec_format fmt, int gzip,
                       char *body, size_t len)
{
    (void)ctx, (void)kind, (void)fmt, (void)gzip, (void)len;
    free(body);
    x->submitted = 1;
    return 0;
}

static int fake_ready(void *ctx)
{
    (void)ctx;
    return 0;
}

/* ---- the api under test ---- */

static char tmp_dir[64], tokens_path[128], ads_path[128];
static struct auth *tokens;
static struct catalog *ads;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Tokens: an admin, an ingest token and advertiser 7, who owns ad 100
 * (ad 200 is advertiser 8's; ad 999 is in no catalog). */
static void load_files(void)
{
    char err[CTRD_ERR_LEN];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-test-api-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tmp_dir);
    snprintf(ads_path, sizeof ads_path, "%s/ads.csv", tmp_dir);
    write_file(tokens_path, "admintok,admin\ningesttok,ingest\n"
                            "adv7tok,advertiser,7\n");
    write_file(ads_path, "ad_id,advertiser_id\n100,7\n200,8\n");
    if (auth_load(tokens_path, &tokens, err) != 0 ||
        catalog_load(ads_path, &ads, err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

/* An api reading engine e (NULL: none; reads must then not run) and
 * catalog c. */
static struct api *make_api_on(struct metrics *m, int with_auth,
                               int metrics_public, struct engine *e,
                               const struct catalog *c)
{
    struct api_config cfg = {
        .engine = e,
        .auth = with_auth ? tokens : NULL,
        .catalog = c,
        .metrics = m,
        .metrics_public = metrics_public,
        .max_body_bytes = 1 << 20,
        .submit = fake_submit,
        .ready = fake_ready,
    };
    char err[CTRD_ERR_LEN];
    struct api *a = NULL;
    if (api_create(&cfg, &a, err) != 0) {
        fprintf(stderr, "api_create: %s\n", err);
        exit(1);
    }
    api_attach(a, NULL, (struct sse *)&fake_hub);
    return a;
}

static struct api *make_api(struct metrics *m, int with_auth,
                            int metrics_public)
{
    return make_api_on(m, with_auth, metrics_public, NULL, ads);
}

/* What became of a request besides an answer: the api queued a read,
 * submitted an ingest, started a stream. */
enum { QUEUED = 1, SUBMITTED = 2, STREAMED = 3 };

enum who { NOBODY, ADMIN, INGEST, ADV7, BAD_TOKEN };

static const char *const who_header[] = {
    [NOBODY] = NULL,
    [ADMIN] = "Bearer admintok",
    [INGEST] = "Bearer ingesttok",
    [ADV7] = "Bearer adv7tok",
    [BAD_TOKEN] = "Bearer admintoken",
};

static const char *const who_name[] = {"nobody", "admin", "ingest",
                                       "advertiser 7", "bad token"};

struct row {
    const char *method, *target; /* target: path[?query] */
    enum who who;
    int want; /* a status, or QUEUED, SUBMITTED, STREAMED */
};

static const char *outcome_name(int o, char *buf, size_t len)
{
    static const char *const names[] = {"nothing", "queued", "submitted",
                                        "streamed"};
    if (o >= 0 && o <= STREAMED)
        return names[o];
    snprintf(buf, len, "%d", o);
    return buf;
}

/* Runs one request through api_handle: what became of it. */
static int run(struct api *a, const struct row *r, const char *content_type,
               struct http_exchange *x)
{
    char path[128];
    const char *q = strchr(r->target, '?');
    size_t n = q ? (size_t)(q - r->target) : strlen(r->target);
    memcpy(path, r->target, n);
    path[n] = '\0';
    *x = (struct http_exchange){.method = r->method,
                                .path = path,
                                .query = q ? q + 1 : "",
                                .authorization = who_header[r->who],
                                .content_type = content_type};
    api_handle(a, x);
    x->path = r->target;
    int got = x->status;
    if (x->read)
        got = got ? -1 : QUEUED;
    if (x->submitted)
        got = got ? -1 : SUBMITTED;
    if (x->streamed)
        got = got ? -1 : STREAMED;
    return got;
}

static void run_rows(struct api *a, const struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        struct http_exchange x;
        char b1[16], b2[16];
        int got = run(a, r, NULL, &x);
        if (got != r->want)
            CHECK_FAIL_AT("%s %s as %s: got %s, want %s", r->method, r->target,
                          who_name[r->who], outcome_name(got, b1, sizeof b1),
                          outcome_name(r->want, b2, sizeof b2));
        if (got == 405 && x.allow[0] == '\0')
            CHECK_FAIL_AT("%s %s: 405 without Allow", r->method, r->target);
        free(x.read);
    }
}

/* With tokens: who may do what. */
static void test_access_control(void)
{
    static const struct row rows[] = {
        /* one ad's terms and series: admins any ad, advertisers their
         * own (another's, or one in no catalog, is hidden: 404) */
        {"GET", "/v1/ads/100/terms", ADMIN, QUEUED},
        {"GET", "/v1/ads/100/terms", ADV7, QUEUED},
        {"HEAD", "/v1/ads/100/terms", ADV7, QUEUED},
        {"GET", "/v1/ads/200/terms", ADV7, 404},
        {"GET", "/v1/ads/999/terms", ADV7, 404},
        {"GET", "/v1/ads/999/terms", ADMIN, QUEUED},
        {"GET", "/v1/ads/100/terms", INGEST, 403},
        {"GET", "/v1/ads/100/terms", NOBODY, 401},
        {"GET", "/v1/ads/100/terms", BAD_TOKEN, 401},
        {"POST", "/v1/ads/100/terms", ADMIN, 405},
        {"DELETE", "/v1/ads/100/terms", BAD_TOKEN, 405}, /* method first */
        {"GET", "/v1/ads/100/series", ADV7, QUEUED},
        {"GET", "/v1/ads/100/series", ADMIN, QUEUED},
        {"GET", "/v1/ads/200/series", ADV7, 404},
        {"GET", "/v1/ads/100/series", INGEST, 403},
        {"GET", "/v1/ads/100/series", NOBODY, 401},
        {"PUT", "/v1/ads/100/series", ADMIN, 405},
        /* an advertiser's ads */
        {"GET", "/v1/advertisers/7/ads", ADV7, QUEUED},
        {"GET", "/v1/advertisers/8/ads", ADV7, 404},
        {"GET", "/v1/advertisers/8/ads", ADMIN, QUEUED},
        {"GET", "/v1/advertisers/7/ads", INGEST, 403},
        {"GET", "/v1/advertisers/7/ads", NOBODY, 401},
        {"GET", "/v1/advertisers/7/ads", BAD_TOKEN, 401},
        {"POST", "/v1/advertisers/7/ads", ADV7, 405},
        /* every advertiser's totals: admins only */
        {"GET", "/v1/advertisers", ADMIN, QUEUED},
        {"HEAD", "/v1/advertisers", ADMIN, QUEUED},
        {"GET", "/v1/advertisers", ADV7, 403},
        {"GET", "/v1/advertisers", INGEST, 403},
        {"GET", "/v1/advertisers", NOBODY, 401},
        {"GET", "/v1/advertisers", BAD_TOKEN, 401},
        {"POST", "/v1/advertisers", ADMIN, 405},
        {"POST", "/v1/advertisers", ADV7, 405},
        /* who a token is: any valid token */
        {"GET", "/v1/whoami", ADMIN, 200},
        {"GET", "/v1/whoami", INGEST, 200},
        {"GET", "/v1/whoami", ADV7, 200},
        {"HEAD", "/v1/whoami", ADV7, 200},
        {"GET", "/v1/whoami", NOBODY, 401},
        {"GET", "/v1/whoami", BAD_TOKEN, 401},
        {"POST", "/v1/whoami", ADV7, 405},
        /* ingest: admin and ingest tokens */
        {"POST", "/v1/queries", INGEST, SUBMITTED},
        {"POST", "/v1/queries", ADMIN, SUBMITTED},
        {"POST", "/v1/queries", ADV7, 403},
        {"POST", "/v1/queries", NOBODY, 401},
        {"POST", "/v1/queries", BAD_TOKEN, 401},
        {"GET", "/v1/queries", ADMIN, 405},
        {"POST", "/v1/clicks", INGEST, SUBMITTED},
        {"POST", "/v1/clicks", ADV7, 403},
        {"PUT", "/v1/clicks", INGEST, 405},
        /* live streams: of an ad, or of an advertiser's ads */
        {"GET", "/v1/stream?ad_id=100", ADV7, STREAMED},
        {"GET", "/v1/stream?ad_id=200", ADV7, 404},
        {"GET", "/v1/stream?ad_id=200", ADMIN, STREAMED},
        {"GET", "/v1/stream?advertiser_id=7", ADV7, STREAMED},
        {"GET", "/v1/stream?advertiser_id=8", ADV7, 404},
        {"GET", "/v1/stream?ad_id=100", INGEST, 403},
        {"GET", "/v1/stream?advertiser_id=7", INGEST, 403},
        {"GET", "/v1/stream?ad_id=100", NOBODY, 401},
        {"GET", "/v1/stream?ad_id=100", BAD_TOKEN, 401},
        {"POST", "/v1/stream?ad_id=100", ADMIN, 405},
        /* operations: admins only (unless metrics are public), but
         * readiness for anyone */
        {"GET", "/metrics", ADMIN, 200},
        {"GET", "/metrics", ADV7, 403},
        {"GET", "/metrics", INGEST, 403},
        {"GET", "/metrics", NOBODY, 401},
        {"POST", "/metrics", ADMIN, 405},
        {"GET", "/healthz", ADMIN, 200},
        {"GET", "/healthz", ADV7, 403},
        {"GET", "/healthz", BAD_TOKEN, 401},
        {"GET", "/readyz", NOBODY, 200},
        {"GET", "/readyz", BAD_TOKEN, 200},
        /* nothing there */
        {"GET", "/nope", ADMIN, 404},
        {"GET", "/nope", NOBODY, 404},
        {"GET", "/v1/ads/abc/terms", ADMIN, 404},
        {"GET", "/v1/ads//terms", ADMIN, 404},
        {"GET", "/v1/ads/100", ADMIN, 404},
        {"GET", "/v1/ads/100/other", ADMIN, 404},
        {"GET", "/v1/ads/18446744073709551616/terms", ADMIN, 404},
        {"GET", "/v1/advertisers/7", ADMIN, 404},
        {"GET", "/v1/advertisers/", ADMIN, 404},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 1, 0);
    run_rows(a, rows, sizeof rows / sizeof rows[0]);
    api_free(a);
    metrics_free(m);
}

/* Without tokens everyone acts as admin; with public metrics, /metrics
 * and /healthz need no token. */
static void test_open_configs(void)
{
    static const struct row open[] = {
        {"GET", "/v1/ads/200/terms", NOBODY, QUEUED},
        {"GET", "/v1/ads/200/terms", BAD_TOKEN, QUEUED},
        {"GET", "/v1/advertisers/8/ads", NOBODY, QUEUED},
        {"GET", "/v1/advertisers", NOBODY, QUEUED},
        {"GET", "/v1/advertisers", BAD_TOKEN, QUEUED},
        {"POST", "/v1/advertisers", NOBODY, 405},
        {"GET", "/v1/whoami", NOBODY, 200},
        {"GET", "/v1/whoami", BAD_TOKEN, 200},
        {"POST", "/v1/queries", NOBODY, SUBMITTED},
        {"GET", "/v1/stream?advertiser_id=8", NOBODY, STREAMED},
        {"GET", "/metrics", NOBODY, 200},
        {"POST", "/v1/ads/200/terms", NOBODY, 405},
    };
    static const struct row public_metrics[] = {
        {"GET", "/metrics", NOBODY, 200},
        {"GET", "/healthz", NOBODY, 200},
        {"GET", "/v1/ads/100/terms", NOBODY, 401},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 0, 0);
    run_rows(a, open, sizeof open / sizeof open[0]);
    api_free(a);
    metrics_free(m);
    m = metrics_create(); /* an api registers its metrics once */
    a = make_api(m, 1, 1);
    run_rows(a, public_metrics,
             sizeof public_metrics / sizeof public_metrics[0]);
    api_free(a);
    metrics_free(m);
}

/* Parameters are checked after access (a hidden ad stays hidden), before
 * the read is queued. */
static void test_parameters(void)
{
    static const struct row rows[] = {
        {"GET", "/v1/ads/100/terms?sort=clicks&order=asc", ADV7, QUEUED},
        {"GET", "/v1/ads/100/terms?sort=foo", ADV7, 400},
        {"GET", "/v1/ads/200/terms?sort=foo", ADV7, 404},
        {"GET", "/v1/ads/100/terms?order=up", ADMIN, 400},
        {"GET", "/v1/ads/100/terms?limit=10000", ADMIN, QUEUED},
        {"GET", "/v1/ads/100/terms?limit=10001", ADMIN, 400},
        {"GET", "/v1/ads/100/terms?offset=x", ADMIN, 400},
        {"GET", "/v1/ads/100/terms?from=yesterday", ADMIN, 400},
        {"GET", "/v1/ads/100/terms?from=0&to=2026-11-22T10:00:00Z", ADMIN,
         QUEUED},
        {"GET", "/v1/ads/100/series?step=1d", ADMIN, QUEUED},
        {"GET", "/v1/ads/100/series?step=2m", ADMIN, 400},
        {"GET", "/v1/ads/100/series?term=", ADMIN, 400},
        {"GET", "/v1/advertisers/7/ads?to=never", ADV7, 400},
        {"GET", "/v1/advertisers?from=0&to=2026-11-22T10:00:00Z", ADMIN,
         QUEUED},
        {"GET", "/v1/advertisers?from=soon", ADMIN, 400},
        {"GET", "/v1/advertisers?from=soon", ADV7, 403},
        {"GET", "/v1/stream", ADMIN, 400},
        {"GET", "/v1/stream?ad_id=x", ADMIN, 400},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 1, 0);
    run_rows(a, rows, sizeof rows / sizeof rows[0]);
    api_free(a);
    metrics_free(m);
}

/* The term of a series read is normalised as a query's term is. */
static void test_series_term(void)
{
    static const struct {
        const char *target;
        const char *term; /* NULL: 400 */
    } rows[] = {
        {"/v1/ads/100/series?term=Red\tHAT", "red hat"},
        {"/v1/ads/100/series?term=\r\n  shoes ", "shoes"},
        {"/v1/ads/100/series?term=\xC3\x89T\xC3\x89", "\xC3\x89t\xC3\x89"},
        {"/v1/ads/100/series?term=\xC3", NULL},
        {"/v1/ads/100/series?term=\t", NULL},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 0, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct row r = {"GET", rows[i].target, NOBODY, 0};
        struct http_exchange x;
        int got = run(a, &r, NULL, &x);
        struct read_req *req = x.read;
        if (!rows[i].term) {
            CHECK_EQ_I64(got, 400);
        } else if (got != QUEUED || !req->has_term) {
            CHECK_FAIL_AT("%s: got %d", rows[i].target, got);
        } else {
            CHECK_EQ_MEM(req->term, req->term_len, rows[i].term);
        }
        free(x.read);
    }
    api_free(a);
    metrics_free(m);
}

/* The dashboard's files: public even with tokens (they hold no data),
 * GET and HEAD only; an ETag the client already has gives 304. */
static void test_page(void)
{
    static const struct row rows[] = {
        {"GET", "/", NOBODY, 200},
        {"GET", "/?ad=100&sort=clicks", NOBODY, 200},
        {"HEAD", "/", BAD_TOKEN, 200},
        {"GET", "/", ADV7, 200},
        {"GET", "/assets/app.js", NOBODY, 200},
        {"GET", "/assets/style.css", NOBODY, 200},
        {"POST", "/", ADMIN, 405},
        {"GET", "/assets/nope.js", NOBODY, 404},
        {"GET", "/assets/", NOBODY, 404},
        {"GET", "/assets/index.html", NOBODY, 404},
        {"GET", "/index.html", NOBODY, 404},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 1, 0);
    run_rows(a, rows, sizeof rows / sizeof rows[0]);
    const struct web_asset *page;
    CHECK_EQ_I64(web_asset_find("/", &page), 0);
    const char *tags[] = {page->etag, "\"0000\"", "*"};
    const int want[] = {304, 200, 200};
    for (int i = 0; i < 3; i++) {
        struct http_exchange x = {.method = "GET",
                                  .path = "/",
                                  .query = "",
                                  .if_none_match = tags[i]};
        api_handle(a, &x);
        CHECK_EQ_I64(x.status, want[i]);
    }
    api_free(a);
    metrics_free(m);
}

/* GET /v1/whoami: each token's role, an advertiser's id too; without
 * --auth everyone is admin. */
static void test_whoami(void)
{
    static const struct {
        int auth;
        enum who who;
        const char *want;
    } rows[] = {
        {1, ADMIN, "{\"role\":\"admin\"}\n"},
        {1, INGEST, "{\"role\":\"ingest\"}\n"},
        {1, ADV7, "{\"role\":\"advertiser\",\"advertiser_id\":\"7\"}\n"},
        {0, NOBODY, "{\"role\":\"admin\"}\n"},
        {0, ADV7, "{\"role\":\"admin\"}\n"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct metrics *m = metrics_create();
        struct api *a = make_api(m, rows[i].auth, 0);
        struct row r = {"GET", "/v1/whoami", rows[i].who, 200};
        struct http_exchange x;
        CHECK_EQ_I64(run(a, &r, NULL, &x), 200);
        CHECK_EQ_STR(x.body, rows[i].want);
        api_free(a);
        metrics_free(m);
    }
}

/* Ingest bodies: NDJSON or TSV by Content-Type, anything else 415. */
static void test_ingest_content_type(void)
{
    static const struct {
        const char *type;
        int want;
        enum rec_format fmt;
    } rows[] = {
        {NULL, SUBMITTED, REC_NDJSON},
        {"application/x-ndjson", SUBMITTED, REC_NDJSON},
        {"Application/JSON; charset=utf-8", SUBMITTED, REC_NDJSON},
        {"text/tab-separated-values ;", SUBMITTED, REC_TSV},
        {"text/csv", 415, REC_NDJSON},
        {"application/x-ndjsonx", 415, REC_NDJSON},
    };
    struct metrics *m = metrics_create();
    struct api *a = make_api(m, 1, 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct row r = {"POST", "/v1/queries", INGEST, 0};
        struct http_exchange x;
        enum rec_format fmt = REC_NDJSON;
        CHECK_EQ_I64(run(a, &r, rows[i].type, &x), rows[i].want);
        if (rows[i].want == SUBMITTED &&
            (content_format(rows[i].type, &fmt) != 0 || fmt != rows[i].fmt))
            CHECK_FAIL_AT("%s: format %d, want %d", rows[i].type, fmt,
                          rows[i].fmt);
    }
    api_free(a);
    metrics_free(m);
}

/* ---- reads against a real engine ---- */

/* Queries at T0 and ten minutes later: ads 1 and 2 are advertiser 5's, 3
 * advertiser 4's, 4 advertiser 9's, 5 advertiser 6's (no traffic); ad 999
 * is in no catalog. One click, on ad 1. */
#define T0 "1763805600000" /* ms */
static const char adv_catalog[] =
    "ad_id,advertiser_id\n1,5\n2,5\n3,4\n4,9\n5,6\n";
static const char adv_queries[] =
    "{\"time\":" T0 ",\"query_id\":\"1\",\"query\":\"a\","
    "\"ad_ids\":[1,3,999]}\n"
    "{\"time\":" T0 ",\"query_id\":\"2\",\"query\":\"b\","
    "\"ad_ids\":[1,3,4,999]}\n"
    "{\"time\":1763806200000,\"query_id\":\"3\",\"query\":\"a\","
    "\"ad_ids\":[2,3,999]}\n";
static const char adv_clicks[] =
    "{\"time\":1763805601000,\"query_id\":\"1\",\"ad_id\":1}\n";

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* The JSON a GET of target answers, run on this thread (malloc'd; NULL
 * after a failed check). */
static char *read_json(struct api *a, const char *target)
{
    struct row r = {"GET", target, NOBODY, QUEUED};
    struct http_exchange x;
    int got = run(a, &r, NULL, &x);
    struct read_req *req = x.read;
    char *body = NULL;
    if (got != QUEUED) {
        CHECK_FAIL_AT("%s: got %d", target, got);
    } else {
        run_read(a, req);
        if (req->status != 200)
            CHECK_FAIL_AT("%s: status %d", target, req->status);
        else
            body = req->body;
    }
    if (req && body != req->body)
        free(req->body);
    free(req);
    return body;
}

/* The JSON of target from its "from" on equals want. */
static void check_json(struct api *a, const char *target, const char *from,
                       const char *want)
{
    char *body = read_json(a, target);
    const char *p = body ? strstr(body, from) : NULL;
    if (body && !p)
        CHECK_FAIL_AT("%s: no %s in %s", target, from, body);
    else if (p)
        CHECK_EQ_STR(p, want);
    free(body);
}

/* GET /v1/advertisers: each advertiser's totals are its ads' (as GET
 * /v1/advertisers/{id}/ads gives them) summed over the range, ads in no
 * catalog left out, sorted by impressions descending then id; without a
 * catalog the list is empty and says so. */
static void test_advertisers_totals(void)
{
    char dir[128], path[160], err[CTRD_ERR_LEN] = "";
    struct catalog *c = NULL;
    struct engine *e = NULL;
    snprintf(dir, sizeof dir, "%s/engine", tmp_dir);
    snprintf(path, sizeof path, "%s/advertisers.csv", tmp_dir);
    write_file(path, adv_catalog);
    struct engine_config cfg = {.data_dir = dir,
                                .n_workers = 1,
                                .join_window_ms = 86400000,
                                .click_timeout_ms = 600000,
                                .retention_ms = 90000000};
    int64_t now = 1763805600000 + 700000;
    if (catalog_load(path, &c, err) != 0 || engine_open(&cfg, &e, err) != 0 ||
        engine_process_buffer(e, ENGINE_QUERIES, REC_NDJSON, adv_queries,
                              sizeof adv_queries - 1, 0, now, err) != 0 ||
        engine_process_buffer(e, ENGINE_CLICKS, REC_NDJSON, adv_clicks,
                              sizeof adv_clicks - 1, 1, now, err) != 0) {
        CHECK_FAIL_AT("set-up: %s", err);
        goto done;
    }
    struct metrics *m = metrics_create();
    struct api *a = make_api_on(m, 0, 0, e, c);
    check_json(a, "/v1/advertisers", "\"catalog\"",
               "\"catalog\":true,\"advertisers\":["
               "{\"advertiser_id\":\"4\",\"total_ads\":1,\"impressions\":3,"
               "\"clicks\":0,\"ctr\":0.000000},"
               "{\"advertiser_id\":\"5\",\"total_ads\":2,\"impressions\":3,"
               "\"clicks\":1,\"ctr\":0.333333},"
               "{\"advertiser_id\":\"9\",\"total_ads\":1,\"impressions\":1,"
               "\"clicks\":0,\"ctr\":0.000000},"
               "{\"advertiser_id\":\"6\",\"total_ads\":1,\"impressions\":0,"
               "\"clicks\":0,\"ctr\":0.000000}]}\n");
    check_json(a, "/v1/advertisers/5/ads", "\"ads\"",
               "\"ads\":[{\"ad_id\":\"1\",\"name\":\"\",\"impressions\":2,"
               "\"clicks\":1,\"ctr\":0.500000},{\"ad_id\":\"2\",\"name\":\"\","
               "\"impressions\":1,\"clicks\":0,\"ctr\":0.000000}]}\n");
    /* From the second minute: only q3 (ads 2 and 3). */
    check_json(a, "/v1/advertisers?from=1763805660000", "\"advertisers\"",
               "\"advertisers\":["
               "{\"advertiser_id\":\"4\",\"total_ads\":1,\"impressions\":1,"
               "\"clicks\":0,\"ctr\":0.000000},"
               "{\"advertiser_id\":\"5\",\"total_ads\":2,\"impressions\":1,"
               "\"clicks\":0,\"ctr\":0.000000},"
               "{\"advertiser_id\":\"6\",\"total_ads\":1,\"impressions\":0,"
               "\"clicks\":0,\"ctr\":0.000000},"
               "{\"advertiser_id\":\"9\",\"total_ads\":1,\"impressions\":0,"
               "\"clicks\":0,\"ctr\":0.000000}]}\n");
    api_free(a);
    metrics_free(m);
    m = metrics_create();
    a = make_api_on(m, 0, 0, e, NULL);
    check_json(a, "/v1/advertisers", "\"catalog\"",
               "\"catalog\":false,\"advertisers\":[]}\n");
    api_free(a);
    metrics_free(m);
done:
    engine_close(e);
    catalog_free(c);
    unlink(path);
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    load_files();
    RUN(test_access_control);
    RUN(test_open_configs);
    RUN(test_parameters);
    RUN(test_series_term);
    RUN(test_page);
    RUN(test_whoami);
    RUN(test_ingest_content_type);
    RUN(test_advertisers_totals);
    auth_free(tokens);
    catalog_free(ads);
    unlink(tokens_path);
    unlink(ads_path);
    rmdir(tmp_dir);
    return check_done();
}
