/* api: the HTTP API; see api.h. */
#include "api.h"

#include "adview.h"
#include "cli.h"
#include "clock.h"
#include "json.h"
#include "record.h"
#include "web.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 10000
#define PARAM_MAX 1024
#define READQ_CAPACITY 4096
#define ERROR_JSON_MAX 256
#define SHED_MESSAGE "overloaded; try again"

static const char *const endpoint_names[API_ENDPOINT_COUNT] = {
    "terms",          "series",        "advertiser_ads", "advertisers",
    "ingest_queries", "ingest_clicks", "stream",         "whoami",
    "metrics",        "health",        "page",           "other",
};

struct api {
    struct api_config cfg;
    struct http_server *http;
    struct sse *sse;
    struct readpool *reads; /* NULL once stopped */
    struct metric *shed;
    struct metric *latency[API_ENDPOINT_COUNT];
};

static void serve_read(void *ctx, void *item, int shed);

static double read_queue_length(void *arg)
{
    struct api *a = arg;
    return a->reads ? (double)readpool_queued(a->reads) : 0;
}

int api_create(const struct api_config *cfg, struct api **out, char *err)
{
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                    0.025,  0.05,  0.1,    0.25,  0.5,
                                    1,      2.5,   5,      10};
    struct api *a = calloc(1, sizeof *a);
    if (!a)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    a->cfg = *cfg;
    for (int i = 0; i < API_ENDPOINT_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "endpoint=\"%s\"", endpoint_names[i]);
        a->latency[i] = metrics_histogram(
            cfg->metrics, "ctrd_http_request_duration_seconds",
            "Time from a request read whole to its answer.", labels, bounds,
            sizeof bounds / sizeof bounds[0]);
        if (!a->latency[i])
            goto fail;
    }
    a->shed = metrics_counter(cfg->metrics, "ctrd_http_shed_total",
                              "Reads answered 503 by admission control "
                              "(queue full or waited too long).",
                              NULL);
    if (!a->shed ||
        !metrics_gauge_fn(cfg->metrics, "ctrd_read_queue_length",
                          "Reads waiting to be served.", NULL,
                          read_queue_length, a) ||
        readpool_create(cfg->read_threads, READQ_CAPACITY, serve_read, a,
                        &a->reads) != 0)
        goto fail;
    *out = a;
    return 0;
fail:
    api_free(a);
    return ctrd_fail(err, CTRD_ENOMEM, "cannot create the api");
}

void api_stop_reads(struct api *a)
{
    if (!a)
        return;
    readpool_free(a->reads);
    a->reads = NULL;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    api_stop_reads(a);
    free(a);
}

void api_attach(struct api *a, struct http_server *http, struct sse *sse)
{
    a->http = http;
    a->sse = sse;
}

/* Records the time from x read whole to its answer, now. */
static void observe_latency(struct api *a, struct http_exchange *x,
                            enum api_endpoint endpoint)
{
    metric_observe(a->latency[endpoint],
                   (double)(clock_mono_ns() - http_started_ns(x)) / 1e9);
}

void api_respond_json(struct api *a, struct http_exchange *x,
                      enum api_endpoint endpoint, int status, const char *json,
                      size_t len)
{
    observe_latency(a, x, endpoint);
    http_respond(x, status, "application/json", json, len);
}

/* {"error":"message"} into buf (ERROR_JSON_MAX bytes): its length. */
static size_t error_json(char *buf, const char *message)
{
    int n = snprintf(buf, ERROR_JSON_MAX, "{\"error\":\"%s\"}\n", message);
    return n < ERROR_JSON_MAX ? (size_t)n : ERROR_JSON_MAX - 1;
}

static void respond_error(struct api *a, struct http_exchange *x,
                          enum api_endpoint endpoint, int status,
                          const char *message)
{
    char body[ERROR_JSON_MAX];
    api_respond_json(a, x, endpoint, status, body, error_json(body, message));
}

/* ---- access control ---- */

enum access { ACCESS_OK, ACCESS_DENIED, ACCESS_HIDDEN };

/* Who is asking: with no --auth every request acts as admin. Answers 401
 * itself and returns CTRD_EINVAL when a token is needed and missing or
 * unknown. */
static int identify(struct api *a, struct http_exchange *x,
                    enum api_endpoint endpoint, struct auth_identity *who)
{
    *who = (struct auth_identity){AUTH_ADMIN, 0};
    if (!a->cfg.auth)
        return 0;
    if (auth_check(a->cfg.auth, http_header(x, "Authorization"), who) == 0)
        return 0;
    http_add_header(x, "WWW-Authenticate", "Bearer realm=\"ctrd\"");
    respond_error(a, x, endpoint, 401, "a valid bearer token is required");
    return CTRD_EINVAL;
}

/* Whether who may read ad_id: advertisers only their own ads (others are
 * hidden: 404 as if absent), ingest tokens nothing. */
static enum access may_read_ad(const struct api *a,
                               const struct auth_identity *who, uint64_t ad)
{
    uint64_t owner;
    switch (who->role) {
    case AUTH_ADMIN:
        return ACCESS_OK;
    case AUTH_INGEST:
        return ACCESS_DENIED;
    case AUTH_ADVERTISER:
        if (a->cfg.catalog && catalog_owner(a->cfg.catalog, ad, &owner) == 0 &&
            owner == who->advertiser_id)
            return ACCESS_OK;
        return ACCESS_HIDDEN;
    }
    return ACCESS_DENIED;
}

/* Whether who may read what advertiser `advertiser` sees: advertisers
 * only themselves (others are hidden), ingest tokens nothing. */
static enum access may_read_advertiser(const struct auth_identity *who,
                                       uint64_t advertiser)
{
    if (who->role == AUTH_INGEST)
        return ACCESS_DENIED;
    if (who->role == AUTH_ADVERTISER && who->advertiser_id != advertiser)
        return ACCESS_HIDDEN;
    return ACCESS_OK;
}

static int check_access(struct api *a, struct http_exchange *x,
                        enum api_endpoint endpoint, enum access access)
{
    if (access == ACCESS_DENIED)
        respond_error(a, x, endpoint, 403, "this token may not do that");
    else if (access == ACCESS_HIDDEN)
        respond_error(a, x, endpoint, 404, "not found");
    return access == ACCESS_OK ? 0 : CTRD_EINVAL;
}

/* GET /v1/whoami (an addition to SPEC §5, for the dashboard to open a
 * token's own view): {"role":"admin"|"ingest"|"advertiser"} and, for an
 * advertiser, its "advertiser_id". */
static void get_whoami(struct api *a, struct http_exchange *x,
                       const struct auth_identity *who)
{
    char body[96];
    int n = snprintf(body, sizeof body, "{\"role\":\"%s\"",
                     auth_role_name(who->role));
    if (who->role == AUTH_ADVERTISER)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      ",\"advertiser_id\":\"%" PRIu64 "\"", who->advertiser_id);
    n += snprintf(body + n, sizeof body - (size_t)n, "}\n");
    api_respond_json(a, x, API_WHOAMI, 200, body, (size_t)n);
}

/* ---- parameters ---- */

struct range {
    int64_t from_ms, to_ms;
};

/* Reads from/to; answers 400 and returns CTRD_EINVAL when malformed. */
static int read_range(struct api *a, struct http_exchange *x,
                      enum api_endpoint endpoint, struct range *r)
{
    char v[PARAM_MAX];
    r->from_ms = INT64_MIN;
    r->to_ms = INT64_MAX;
    static const char *const names[2] = {"from", "to"};
    int64_t *dst[2] = {&r->from_ms, &r->to_ms};
    for (int i = 0; i < 2; i++) {
        int rc = http_param(x, names[i], v, sizeof v);
        if (rc == CTRD_ENOTFOUND)
            continue;
        if (rc != 0 || cli_parse_time_ms(v, dst[i]) != 0) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s: ms since the epoch or RFC 3339",
                     names[i]);
            respond_error(a, x, endpoint, 400, msg);
            return CTRD_EINVAL;
        }
    }
    return 0;
}

/* A parameter that is one of names (index into *out), or def when absent;
 * CTRD_EINVAL (after answering 400) when it is something else. */
static int read_choice(struct api *a, struct http_exchange *x,
                       enum api_endpoint endpoint, const char *name,
                       const char *const *names, int n, int def, int *out)
{
    char v[PARAM_MAX];
    int rc = http_param(x, name, v, sizeof v);
    *out = def;
    if (rc == CTRD_ENOTFOUND)
        return 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%s: not an accepted value", name);
    respond_error(a, x, endpoint, 400, msg);
    return CTRD_EINVAL;
}

static int read_count(struct api *a, struct http_exchange *x,
                      enum api_endpoint endpoint, const char *name,
                      uint64_t def, uint64_t max, uint64_t *out)
{
    char v[PARAM_MAX];
    int rc = http_param(x, name, v, sizeof v);
    *out = def;
    if (rc == CTRD_ENOTFOUND)
        return 0;
    if (rc == 0 && cli_parse_u64(v, out) == 0 && *out <= max)
        return 0;
    char msg[96];
    snprintf(msg, sizeof msg, "%s: a whole number up to %" PRIu64, name, max);
    respond_error(a, x, endpoint, 400, msg);
    return CTRD_EINVAL;
}

/* The id in "/v1/ads/{id}/..." after prefix; the rest of the path in *rest.
 * CTRD_ENOTFOUND when the path is not prefix and a decimal u64. */
static int path_id(const char *path, const char *prefix, uint64_t *id,
                   const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0)
        return CTRD_ENOTFOUND;
    const char *p = path + n;
    *rest = p + strcspn(p, "/");
    return rec_parse_id(p, (size_t)(*rest - p), id) == 0 ? 0 : CTRD_ENOTFOUND;
}

/* ---- answers built in memory ---- */

struct out {
    char *text;
    size_t len;
    FILE *f;
};

static int out_open(struct out *o)
{
    o->text = NULL;
    o->len = 0;
    o->f = open_memstream(&o->text, &o->len);
    return o->f ? 0 : CTRD_ENOMEM;
}

/* ---- read endpoints ----
 * A read is checked on the loop thread (parse_*: answers 4xx itself and
 * returns CTRD_EINVAL), waits in the admission queue, runs on a read thread
 * (run_*: the JSON into f, under the engine's read lock) and is answered
 * on the loop thread (answer_read). */

/* A read on its way: what it asks, then its answer. */
struct read_req {
    struct api *api;
    struct http_exchange *x;
    enum api_endpoint endpoint;
    uint64_t id; /* the ad, or the advertiser (none for all of them) */
    struct range range;
    int sort, order, step; /* indexes into sorts, orders, steps */
    uint64_t limit, offset;
    int has_term;
    uint32_t term_len;
    char term[REC_TERM_MAX]; /* normalised (SPEC §2) */
    int status;              /* the answer: 200, 500, or 503 when shed */
    char *body;              /* malloc'd JSON */
    size_t len;
};

static const char *const sorts[] = {"impressions", "clicks", "ctr", "term"};
static const char *const orders[] = {"desc", "asc"};
static const char *const steps[] = {"1m", "1h", "1d"};
static const int64_t step_ms[] = {60000, 3600000, 86400000};

static int parse_terms(struct api *a, struct read_req *r)
{
    struct http_exchange *x = r->x;
    return read_range(a, x, API_TERMS, &r->range) ||
                   read_choice(a, x, API_TERMS, "sort", sorts, 4, 0,
                               &r->sort) ||
                   read_choice(a, x, API_TERMS, "order", orders, 2, 0,
                               &r->order) ||
                   read_count(a, x, API_TERMS, "limit", LIMIT_DEFAULT,
                              LIMIT_MAX, &r->limit) ||
                   read_count(a, x, API_TERMS, "offset", 0, UINT32_MAX,
                              &r->offset)
               ? CTRD_EINVAL
               : 0;
}

static int run_terms(struct api *a, const struct read_req *r, FILE *f,
                     char *err)
{
    struct engine *e = a->cfg.engine;
    struct adview v;
    engine_read_lock(e);
    int rc =
        adview_build(engine_counts(e), engine_terms(e), r->id, r->range.from_ms,
                     r->range.to_ms, (enum adview_sort)r->sort, r->order,
                     (size_t)(r->offset + r->limit), &v, err);
    if (rc == 0)
        adview_write_json(f, &v, engine_terms(e), engine_as_of_ms(e),
                          (size_t)r->offset, (size_t)r->limit);
    engine_read_unlock(e);
    adview_free(&v);
    return rc;
}

static int parse_series(struct api *a, struct read_req *r)
{
    char term[PARAM_MAX];
    if (read_range(a, r->x, API_SERIES, &r->range) ||
        read_choice(a, r->x, API_SERIES, "step", steps, 3, 1, &r->step))
        return CTRD_EINVAL;
    int rc = http_param(r->x, "term", term, sizeof term);
    r->has_term = rc == 0;
    if (rc == CTRD_ENOTFOUND)
        return 0;
    if (rc != 0) {
        respond_error(a, r->x, API_SERIES, 400, "term: malformed");
        return CTRD_EINVAL;
    }
    if (rec_normalise_term(term, strlen(term), r->term, &r->term_len) !=
        REC_OK) {
        respond_error(a, r->x, API_SERIES, 400,
                      "term: not a valid search term");
        return CTRD_EINVAL;
    }
    return 0;
}

static int run_series(struct api *a, const struct read_req *r, FILE *f,
                      char *err)
{
    struct engine *e = a->cfg.engine;
    uint32_t term_id = UINT32_MAX; /* no term has it: an empty series */
    engine_read_lock(e);
    if (r->has_term)
        terms_find(engine_terms(e), r->term, r->term_len, &term_id);
    int rc = adview_write_series(f, engine_counts(e), r->id, r->range.from_ms,
                                 r->range.to_ms, step_ms[r->step],
                                 steps[r->step], r->has_term ? &term_id : NULL,
                                 engine_as_of_ms(e), err);
    engine_read_unlock(e);
    return rc;
}

/* GET /v1/advertisers/{id}/ads: an advertiser sees only its own. */
static int parse_advertiser_ads(struct api *a, struct read_req *r,
                                const struct auth_identity *who)
{
    return check_access(a, r->x, API_ADVERTISER_ADS,
                        may_read_advertiser(who, r->id)) ||
                   read_range(a, r->x, API_ADVERTISER_ADS, &r->range)
               ? CTRD_EINVAL
               : 0;
}

/* "as_of":T — when the counts are complete up to (null: no data yet). */
static void put_as_of(FILE *f, const struct engine *e)
{
    int64_t as_of = engine_as_of_ms(e);
    if (as_of < 0)
        fputs("\"as_of\":null", f);
    else
        fprintf(f, "\"as_of\":%" PRId64, as_of);
}

/* ,"impressions":I,"clicks":C,"ctr":R} — the end of a row. */
static void put_counts(FILE *f, uint64_t impressions, uint64_t clicks)
{
    fprintf(f, ",\"impressions\":%" PRIu64 ",\"clicks\":%" PRIu64 ",\"ctr\":",
            impressions, clicks);
    json_put_ratio(f, clicks, impressions);
    putc('}', f);
}

static int run_advertiser_ads(struct api *a, const struct read_req *r, FILE *f,
                              char *err)
{
    size_t n = 0;
    const uint64_t *ads =
        a->cfg.catalog ? catalog_ads_of(a->cfg.catalog, r->id, &n) : NULL;
    struct engine *e = a->cfg.engine;
    int rc = 0;
    engine_read_lock(e);
    fprintf(f, "{\"advertiser_id\":\"%" PRIu64 "\",", r->id);
    put_as_of(f, e);
    fputs(",\"ads\":[", f);
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t imps, clicks;
        rc = adview_totals(engine_counts(e), ads[i], r->range.from_ms,
                           r->range.to_ms, &imps, &clicks, err);
        const char *name = catalog_name(a->cfg.catalog, ads[i]);
        fprintf(f, "%s{\"ad_id\":\"%" PRIu64 "\",\"name\":", i ? "," : "",
                ads[i]);
        json_put_string(f, name, strlen(name));
        put_counts(f, imps, clicks);
    }
    fputs("]}\n", f);
    engine_read_unlock(e);
    return rc;
}

/* GET /v1/advertisers: every advertiser of the catalog with its totals;
 * admins only. */
static int parse_advertisers(struct api *a, struct read_req *r,
                             const struct auth_identity *who)
{
    return check_access(a, r->x, API_ADVERTISERS,
                        who->role == AUTH_ADMIN ? ACCESS_OK : ACCESS_DENIED) ||
                   read_range(a, r->x, API_ADVERTISERS, &r->range)
               ? CTRD_EINVAL
               : 0;
}

/* An advertiser's totals over its ads. */
struct advertiser_totals {
    uint64_t id;
    size_t n_ads;
    uint64_t impressions, clicks;
};

/* Impressions descending, then id ascending. */
static int advertiser_totals_cmp(const void *pa, const void *pb)
{
    const struct advertiser_totals *x = pa, *y = pb;
    if (x->impressions != y->impressions)
        return x->impressions < y->impressions ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The catalog's advertisers (*n of them, malloc'd into *out) with their
 * totals over range: the sums of adview_totals over each one's ads. Under
 * the engine's read lock. 0 or adview_totals' error. */
static int advertisers_total(const struct catalog *c, const struct engine *e,
                             const struct range *range,
                             struct advertiser_totals **out, size_t *n,
                             char *err)
{
    const uint64_t *ads;
    size_t cursor = 0, n_ads, count = 0;
    uint64_t id;
    while (catalog_next_advertiser(c, &cursor, &id, &ads, &n_ads) == 0)
        count++;
    struct advertiser_totals *t = malloc((count + 1) * sizeof *t);
    if (!t)
        return CTRD_ENOMEM;
    cursor = 0;
    int rc = 0;
    for (size_t i = 0;
         rc == 0 && catalog_next_advertiser(c, &cursor, &id, &ads, &n_ads) == 0;
         i++) {
        t[i] = (struct advertiser_totals){id, n_ads, 0, 0};
        for (size_t k = 0; k < n_ads && rc == 0; k++) {
            uint64_t imps, clicks;
            rc = adview_totals(engine_counts(e), ads[k], range->from_ms,
                               range->to_ms, &imps, &clicks, err);
            t[i].impressions += imps;
            t[i].clicks += clicks;
        }
    }
    if (rc != 0) {
        free(t);
        return rc;
    }
    qsort(t, count, sizeof *t, advertiser_totals_cmp);
    *out = t;
    *n = count;
    return 0;
}

static int run_advertisers(struct api *a, const struct read_req *r, FILE *f,
                           char *err)
{
    struct engine *e = a->cfg.engine;
    struct advertiser_totals *t;
    size_t n;
    engine_read_lock(e);
    int rc = advertisers_total(a->cfg.catalog, e, &r->range, &t, &n, err);
    if (rc == 0) {
        putc('{', f);
        put_as_of(f, e);
        fprintf(f, ",\"catalog\":%s,\"advertisers\":[",
                a->cfg.catalog ? "true" : "false");
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"advertiser_id\":\"%" PRIu64 "\",\"total_ads\":%zu",
                    i ? "," : "", t[i].id, t[i].n_ads);
            put_counts(f, t[i].impressions, t[i].clicks);
        }
        fputs("]}\n", f);
        free(t);
    }
    engine_read_unlock(e);
    return rc;
}

/* GET /v1/stream?ad_id=A or ?advertiser_id=V: live counts (sse.h). */
static void get_stream(struct api *a, struct http_exchange *x,
                       const struct auth_identity *who)
{
    char v[PARAM_MAX];
    uint64_t id;
    const uint64_t *ads = &id;
    size_t n = 1;
    if (http_param(x, "ad_id", v, sizeof v) == 0) {
        if (cli_parse_u64(v, &id) != 0) {
            respond_error(a, x, API_STREAM, 400, "ad_id: not an id");
            return;
        }
        if (check_access(a, x, API_STREAM, may_read_ad(a, who, id)) != 0)
            return;
    } else if (http_param(x, "advertiser_id", v, sizeof v) == 0 &&
               cli_parse_u64(v, &id) == 0) {
        if (check_access(a, x, API_STREAM, may_read_advertiser(who, id)) != 0)
            return;
        ads = a->cfg.catalog ? catalog_ads_of(a->cfg.catalog, id, &n) : NULL;
        if (!ads)
            n = 0;
    } else {
        respond_error(a, x, API_STREAM, 400, "give ad_id or advertiser_id");
        return;
    }
    if (!a->sse || sse_subscribe(a->sse, x, ads, n) != 0)
        respond_error(a, x, API_STREAM, 503, "streams unavailable");
}

/* ---- ingest ---- */

/* The record format a Content-Type names (media types are
 * case-insensitive; parameters such as charset are ignored). No
 * Content-Type means NDJSON. */
static int content_format(const char *type, enum rec_format *fmt)
{
    static const struct {
        const char *name;
        enum rec_format fmt;
    } types[] = {
        {"application/x-ndjson", REC_NDJSON},
        {"application/json", REC_NDJSON},
        {"text/tab-separated-values", REC_TSV},
    };
    if (!type) {
        *fmt = REC_NDJSON;
        return 0;
    }
    size_t len = strcspn(type, ";");
    while (len > 0 && (type[len - 1] == ' ' || type[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == len &&
            strncasecmp(type, types[i].name, len) == 0) {
            *fmt = types[i].fmt;
            return 0;
        }
    }
    return CTRD_EINVAL;
}

static void post_ingest(struct api *a, struct http_exchange *x,
                        const struct auth_identity *who, enum engine_kind kind)
{
    enum api_endpoint ep =
        kind == ENGINE_QUERIES ? API_INGEST_QUERIES : API_INGEST_CLICKS;
    enum rec_format fmt;
    if (who->role == AUTH_ADVERTISER) {
        check_access(a, x, ep, ACCESS_DENIED);
        return;
    }
    if (content_format(http_header(x, "Content-Type"), &fmt) != 0) {
        respond_error(a, x, ep, 415,
                      "Content-Type: application/x-ndjson or "
                      "text/tab-separated-values");
        return;
    }
    if (a->cfg.ready(a->cfg.ctx) == CTRD_EAGAIN) {
        http_add_header(x, "Retry-After", "1");
        respond_error(a, x, ep, 503, "recovering; try again");
        return;
    }
    const char *encoding = http_header(x, "Content-Encoding");
    int gzip = encoding && strcmp(encoding, "gzip") == 0;
    if (encoding && !gzip && strcmp(encoding, "identity") != 0) {
        respond_error(a, x, ep, 415, "Content-Encoding: gzip or none");
        return;
    }
    size_t len;
    const char *body = http_body(x, &len);
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        respond_error(a, x, ep, 500, "out of memory");
        return;
    }
    memcpy(copy, body, len);
    int rc = a->cfg.submit(a->cfg.ctx, x, kind, fmt, gzip, copy, len);
    if (rc == CTRD_EAGAIN) {
        http_add_header(x, "Retry-After", "1");
        respond_error(a, x, ep, 503, "ingest is saturated; try again");
    } else if (rc == CTRD_EWRITEFAIL) {
        api_refuse_writes(a, x, ep);
    }
}

void api_refuse_writes(struct api *a, struct http_exchange *x,
                       enum api_endpoint endpoint)
{
    char retry[24];
    snprintf(retry, sizeof retry, "%d", API_WRITE_RETRY_S);
    http_add_header(x, "Retry-After", retry);
    respond_error(a, x, endpoint, 507,
                  "the service cannot write to its "
                  "disk and accepts no records until it can again; reads "
                  "go on");
}

void api_respond_ingest_error(struct api *a, struct http_exchange *x,
                              enum api_endpoint endpoint, int code)
{
    if (code == CTRD_EWRITEFAIL)
        api_refuse_writes(a, x, endpoint);
    else if (code == CTRD_EINVAL)
        respond_error(a, x, endpoint, 400, "body: not valid gzip");
    else if (code == CTRD_EAGAIN)
        respond_error(a, x, endpoint, 413,
                      "body: too large once "
                      "decompressed");
    else
        respond_error(a, x, endpoint, 500, "out of memory");
}

/* ---- operations ---- */

static void get_metrics(struct api *a, struct http_exchange *x)
{
    struct out o;
    if (out_open(&o) != 0) {
        respond_error(a, x, API_METRICS, 500, "out of memory");
        return;
    }
    metrics_write(a->cfg.metrics, o.f);
    fclose(o.f);
    observe_latency(a, x, API_METRICS);
    http_respond(x, 200, "text/plain; version=0.0.4", o.text, o.len);
    free(o.text);
}

static void respond_text(struct api *a, struct http_exchange *x, int status,
                         const char *text)
{
    observe_latency(a, x, API_HEALTH);
    http_respond(x, status, "text/plain", text, strlen(text));
}

/* ---- routing ---- */

static int is_get(struct api *a, struct http_exchange *x, enum api_endpoint ep)
{
    const char *m = http_method(x);
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return 1;
    http_add_header(x, "Allow", "GET");
    respond_error(a, x, ep, 405, "method not allowed");
    return 0;
}

static void route_operations(struct api *a, struct http_exchange *x,
                             const char *path)
{
    enum api_endpoint ep = strcmp(path, "/metrics") ? API_HEALTH : API_METRICS;
    struct auth_identity who;
    if (!is_get(a, x, ep))
        return;
    if (!a->cfg.metrics_public && strcmp(path, "/readyz") != 0) {
        if (identify(a, x, ep, &who) != 0)
            return;
        if (who.role != AUTH_ADMIN) {
            check_access(a, x, ep, ACCESS_DENIED);
            return;
        }
    }
    if (ep == API_METRICS)
        get_metrics(a, x);
    else if (strcmp(path, "/healthz") == 0)
        respond_text(a, x, 200, "ok\n");
    else if (a->cfg.ready(a->cfg.ctx) == 0)
        respond_text(a, x, 200, "ready\n");
    else if (a->cfg.ready(a->cfg.ctx) == CTRD_EWRITEFAIL)
        respond_text(a, x, 503, "not accepting records: writes fail\n");
    else
        respond_text(a, x, 503, "recovering\n");
}

/* GET / and /assets/...: a file of the dashboard, public (it holds no
 * data), revalidated by ETag on every use. */
static void get_page(struct api *a, struct http_exchange *x,
                     const struct web_asset *w)
{
    if (!is_get(a, x, API_PAGE))
        return;
    const char *tag = http_header(x, "If-None-Match");
    http_add_header(x, "ETag", w->etag);
    http_add_header(x, "Cache-Control", "no-cache");
    http_add_header(x, "X-Content-Type-Options", "nosniff");
    http_add_header(x, "Content-Security-Policy",
                    "default-src 'self'; frame-ancestors 'none'");
    observe_latency(a, x, API_PAGE);
    if (tag && strcmp(tag, w->etag) == 0)
        http_respond(x, 304, w->content_type, "", 0);
    else
        http_respond(x, 200, w->content_type, (const char *)w->data, w->len);
}

/* ---- admission control of reads ---- */

/* Counts a read shed and tells its client when to come back. */
static void note_shed(struct api *a, struct http_exchange *x)
{
    metric_add(a->shed, 1);
    http_add_header(x, "Retry-After", "1");
}

/* The answer is an error (r->body NULL when out of memory). */
static void read_fail(struct read_req *r, int status, const char *message)
{
    r->status = status;
    r->body = malloc(ERROR_JSON_MAX);
    r->len = r->body ? error_json(r->body, message) : 0;
}

/* Runs a read: 200 and its JSON, or 500 and what failed (memory, or the
 * counts' spill file: countmap.h, SPILL). */
static void run_read(struct api *a, struct read_req *r)
{
    char err[CTRD_ERR_LEN] = "out of memory";
    FILE *f = open_memstream(&r->body, &r->len);
    int rc = CTRD_ENOMEM;
    if (f) {
        if (r->endpoint == API_TERMS)
            rc = run_terms(a, r, f, err);
        else if (r->endpoint == API_SERIES)
            rc = run_series(a, r, f, err);
        else if (r->endpoint == API_ADVERTISERS)
            rc = run_advertisers(a, r, f, err);
        else
            rc = run_advertiser_ads(a, r, f, err);
        if (fclose(f) != 0 && rc == 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        r->status = 200;
    } else {
        free(r->body);
        read_fail(r, 500, err);
    }
}

/* On the loop thread: sends the answer a read thread prepared. */
static void answer_read(void *arg)
{
    struct read_req *r = arg;
    struct api *a = r->api;
    if (r->status == 503)
        note_shed(a, r->x);
    api_respond_json(a, r->x, r->endpoint, r->status, r->body ? r->body : "",
                     r->len);
    free(r->body);
    free(r);
}

/* On a read thread: runs the read, or sheds it, and hands the answer to
 * the loop thread. */
static void serve_read(void *ctx, void *item, int shed)
{
    struct api *a = ctx;
    struct read_req *r = item;
    if (shed)
        read_fail(r, 503, SHED_MESSAGE);
    else
        run_read(a, r);
    /* Only memory can refuse a post; the answer must get through. */
    while (http_server_post(a->http, answer_read, r) != 0)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
}

/* Checks a read's parameters (answering 4xx when they are wrong) and
 * queues it, or sheds it at once when the queue is full. */
static void start_read(struct api *a, struct http_exchange *x,
                       enum api_endpoint endpoint, uint64_t id,
                       const struct auth_identity *who)
{
    struct read_req *r = malloc(sizeof *r);
    if (!r) {
        respond_error(a, x, endpoint, 500, "out of memory");
        return;
    }
    *r = (struct read_req){.api = a, .x = x, .endpoint = endpoint, .id = id};
    int rc = endpoint == API_TERMS         ? parse_terms(a, r)
             : endpoint == API_SERIES      ? parse_series(a, r)
             : endpoint == API_ADVERTISERS ? parse_advertisers(a, r, who)
                                           : parse_advertiser_ads(a, r, who);
    if (rc == 0 &&
        (!a->reads || readpool_submit(a->reads, r, http_started_ns(x)) != 0)) {
        note_shed(a, x);
        respond_error(a, x, endpoint, 503, SHED_MESSAGE);
        rc = CTRD_EAGAIN;
    }
    if (rc != 0)
        free(r);
}

void api_handle(void *ctx, struct http_exchange *x)
{
    struct api *a = ctx;
    const char *path = http_path(x), *rest;
    struct auth_identity who;
    const struct web_asset *page;
    uint64_t id;
    if (web_asset_find(path, &page) == 0) {
        get_page(a, x, page);
        return;
    }
    if (strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
        strcmp(path, "/readyz") == 0) {
        route_operations(a, x, path);
        return;
    }
    int ingest_q = strcmp(path, "/v1/queries") == 0;
    if (ingest_q || strcmp(path, "/v1/clicks") == 0) {
        enum api_endpoint ep =
            ingest_q ? API_INGEST_QUERIES : API_INGEST_CLICKS;
        if (strcmp(http_method(x), "POST") != 0) {
            http_add_header(x, "Allow", "POST");
            respond_error(a, x, ep, 405, "method not allowed");
        } else if (identify(a, x, ep, &who) == 0) {
            post_ingest(a, x, &who, ingest_q ? ENGINE_QUERIES : ENGINE_CLICKS);
        }
        return;
    }
    if (path_id(path, "/v1/ads/", &id, &rest) == 0 &&
        (strcmp(rest, "/terms") == 0 || strcmp(rest, "/series") == 0)) {
        enum api_endpoint ep = rest[1] == 't' ? API_TERMS : API_SERIES;
        if (is_get(a, x, ep) && identify(a, x, ep, &who) == 0 &&
            check_access(a, x, ep, may_read_ad(a, &who, id)) == 0)
            start_read(a, x, ep, id, &who);
        return;
    }
    if (strcmp(path, "/v1/stream") == 0) {
        if (is_get(a, x, API_STREAM) && identify(a, x, API_STREAM, &who) == 0)
            get_stream(a, x, &who);
        return;
    }
    if (strcmp(path, "/v1/whoami") == 0) {
        if (is_get(a, x, API_WHOAMI) && identify(a, x, API_WHOAMI, &who) == 0)
            get_whoami(a, x, &who);
        return;
    }
    if (strcmp(path, "/v1/advertisers") == 0) {
        if (is_get(a, x, API_ADVERTISERS) &&
            identify(a, x, API_ADVERTISERS, &who) == 0)
            start_read(a, x, API_ADVERTISERS, 0, &who);
        return;
    }
    if (path_id(path, "/v1/advertisers/", &id, &rest) == 0 &&
        strcmp(rest, "/ads") == 0) {
        if (is_get(a, x, API_ADVERTISER_ADS) &&
            identify(a, x, API_ADVERTISER_ADS, &who) == 0)
            start_read(a, x, API_ADVERTISER_ADS, id, &who);
        return;
    }
    respond_error(a, x, API_OTHER, 404, "not found");
}
