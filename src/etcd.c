/* etcd: the JSON-gateway client of etcd.h.
 *
 * DESIGN. A call writes its request as JSON into the handle's request
 * stream (an open_memstream kept for the handle's life, rewound per call),
 * POSTs it to /v3/<service>/<verb> and reads the answer into the handle's
 * answer buffer (at most ETCD_ANSWER_MAX_BYTES). The answer is read in
 * place by a small JSON reader: a value is a span of the answer's text,
 * found by a dotted path ("header.revision", "kvs.0" for an array's first
 * element). etcd's gateway writes int64 fields as JSON strings, bytes as
 * base64 and leaves out fields that hold their default (0, false, empty),
 * so an absent member reads as that default. A kv's key and value are
 * decoded over their own base64 text (the decoded bytes are shorter), so a
 * range needs no allocation; each kv's spans are all found before any is
 * decoded, and the reader never looks back at a decoded kv.
 * Invariants: e->cur < e->n; e->answer_len <= ETCD_ANSWER_MAX_BYTES. */
#include "etcd.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    JSON_DEPTH_MAX = 32,
    URL_MAX = 512,
    ANSWER_START_BYTES = 4096,
    ERR_BODY_BYTES = 160, /* of a refusal's body quoted in err */
};

struct etcd {
    CURL *curl;
    struct curl_slist *headers;
    char **endpoints;
    size_t n, cur; /* endpoints; the one the next call tries first */
    FILE *req;     /* the request being written, over req_buf */
    char *req_buf;
    size_t req_size;
    char *answer; /* the last answer's body */
    size_t answer_len, answer_cap;
    int answer_rc; /* CTRD_EIO: the last answer outgrew the cap; ENOMEM */
};

/* ---- base64 (RFC 4648, with padding) ---- */

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes data as a quoted base64 JSON string. */
static void b64_put(FILE *f, const void *data, size_t len)
{
    const unsigned char *s = data;
    putc('"', f);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < len)
            v |= s[i + 2];
        for (size_t k = 0; k < 4; k++)
            putc(k <= len - i ? b64_digits[(v >> (18 - 6 * k)) & 63] : '=', f);
    }
    putc('"', f);
}

/* Decodes s[0..*len) over itself; *len becomes the decoded length. */
static int b64_decode(char *s, size_t *len)
{
    size_t n = *len, out = 0;
    uint32_t acc = 0;
    int bits = 0;
    while (n > 0 && s[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++) {
        const char *d = s[i] ? strchr(b64_digits, s[i]) : NULL;
        if (!d)
            return CTRD_EIO;
        acc = (acc << 6) | (uint32_t)(d - b64_digits);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            s[out++] = (char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *len = out;
    return 0;
}

/* ---- JSON reader: spans over the answer ---- */

struct jv {
    char *p, *end; /* one value's text, [p, end) */
};

/* An object's members or an array's elements, in order. */
struct js_it {
    char *p, *end;
    char close; /* '}' or ']' */
    int depth, first;
};

static char *js_ws(char *p, char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int js_next(struct js_it *it, struct jv *key, struct jv *val);

static int js_open(struct js_it *it, struct jv v, char open, int depth)
{
    char *p = js_ws(v.p, v.end);
    if (p == v.end || *p != open || depth >= JSON_DEPTH_MAX)
        return CTRD_EIO;
    *it = (struct js_it){p + 1, v.end, open == '{' ? '}' : ']', depth + 1, 1};
    return 0;
}

/* Past the value at p (strings, containers, or a run of number and literal
 * characters), or NULL when it is malformed. */
static char *js_skip(char *p, char *end, int depth)
{
    char *start = p;
    if (p < end && (*p == '{' || *p == '[')) {
        struct js_it it;
        struct jv k, v;
        int rc;
        if (js_open(&it, (struct jv){p, end}, *p, depth) != 0)
            return NULL;
        while ((rc = js_next(&it, &k, &v)) == 1)
            ;
        return rc == 0 ? it.p : NULL;
    }
    if (p < end && *p == '"') {
        for (p++; p < end && *p != '"'; p++)
            if (*p == '\\' && ++p == end)
                return NULL;
        return p < end ? p + 1 : NULL;
    }
    while (p < end && *p && strchr("0123456789+-.eEtruefalsn", *p))
        p++;
    return p > start ? p : NULL;
}

/* 1 and the next member (its quoted key in *key) or element; 0 past the
 * last one (it->p then after the closing bracket); CTRD_EIO. */
static int js_next(struct js_it *it, struct jv *key, struct jv *val)
{
    char *p = js_ws(it->p, it->end);
    if (p < it->end && *p == it->close) {
        it->p = p + 1;
        return 0;
    }
    if (!it->first && (p == it->end || *p++ != ','))
        return CTRD_EIO;
    it->first = 0;
    if (it->close == '}') {
        key->p = p = js_ws(p, it->end);
        key->end = p = js_skip(p, it->end, it->depth);
        if (!p || *key->p != '"')
            return CTRD_EIO;
        p = js_ws(p, it->end);
        if (p == it->end || *p++ != ':')
            return CTRD_EIO;
    }
    val->p = js_ws(p, it->end);
    val->end = it->p = js_skip(val->p, it->end, it->depth);
    return val->end ? 1 : CTRD_EIO;
}

/* v's member name[0..n), or its first element for the name "0": 1 and
 * *out, 0 absent, CTRD_EIO. */
static int js_child(struct jv v, const char *name, size_t n, struct jv *out)
{
    int first = n == 1 && name[0] == '0';
    struct js_it it;
    struct jv key;
    int rc = js_open(&it, v, first ? '[' : '{', 0);
    if (rc != 0)
        return rc;
    while ((rc = js_next(&it, &key, out)) == 1)
        if (first || ((size_t)(key.end - key.p) == n + 2 &&
                      memcmp(key.p + 1, name, n) == 0))
            return 1;
    return rc;
}

/* The value at a dotted path below v: 1 and *out, 0 absent, CTRD_EIO. */
static int js_find(struct jv v, const char *path, struct jv *out)
{
    while (*path) {
        size_t n = strcspn(path, ".");
        int rc = js_child(v, path, n, &v);
        if (rc <= 0)
            return rc;
        path += n + (path[n] == '.');
    }
    *out = v;
    return 1;
}

/* An int64 as a JSON string or number; absent is 0. */
static int js_int(struct jv v, const char *path, int64_t *out)
{
    struct jv x;
    int rc = js_find(v, path, &x);
    uint64_t u = 0;
    *out = 0;
    if (rc <= 0)
        return rc;
    if (*x.p == '"' && x.end - x.p >= 2) {
        x.p++;
        x.end--;
    }
    int neg = x.p < x.end && *x.p == '-';
    x.p += neg;
    if (x.p == x.end)
        return CTRD_EIO;
    for (; x.p < x.end; x.p++) {
        unsigned d = (unsigned)(*x.p - '0');
        if (d > 9 || u > ((uint64_t)INT64_MAX - d) / 10)
            return CTRD_EIO;
        u = u * 10 + d;
    }
    *out = neg ? -(int64_t)u : (int64_t)u;
    return 0;
}

/* A string's text (no escapes: base64 needs none); absent is empty. */
static int js_str(struct jv v, const char *path, struct jv *out)
{
    int rc = js_find(v, path, out);
    if (rc <= 0) {
        *out = (struct jv){v.p, v.p};
        return rc;
    }
    if (*out->p != '"' || memchr(out->p, '\\', (size_t)(out->end - out->p)))
        return CTRD_EIO;
    out->p++;
    out->end--;
    return 0;
}

/* A kv of a range answer, its key and value decoded in place. */
static int js_kv(struct jv v, struct etcd_kv *kv)
{
    struct jv key, value;
    int rc;
    if ((rc = js_str(v, "key", &key)) < 0 ||
        (rc = js_str(v, "value", &value)) < 0 ||
        (rc = js_int(v, "create_revision", &kv->create_revision)) < 0 ||
        (rc = js_int(v, "mod_revision", &kv->mod_revision)) < 0 ||
        (rc = js_int(v, "lease", &kv->lease)) < 0)
        return rc;
    kv->key_len = (size_t)(key.end - key.p);
    kv->value_len = (size_t)(value.end - value.p);
    kv->key = key.p;
    kv->value = value.p;
    if ((rc = b64_decode(key.p, &kv->key_len)) < 0)
        return rc;
    return b64_decode(value.p, &kv->value_len);
}

/* ---- transport ---- */

static size_t answer_write(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct etcd *e = ctx;
    size_t n = size * nmemb, cap = e->answer_cap;
    if (n > ETCD_ANSWER_MAX_BYTES - e->answer_len) {
        e->answer_rc = CTRD_EIO;
        return 0;
    }
    while (cap < e->answer_len + n)
        cap = cap * 2 < ETCD_ANSWER_MAX_BYTES ? cap * 2 : ETCD_ANSWER_MAX_BYTES;
    if (cap != e->answer_cap) {
        char *p = realloc(e->answer, cap);
        if (!p) {
            e->answer_rc = CTRD_ENOMEM;
            return 0;
        }
        e->answer = p;
        e->answer_cap = cap;
    }
    memcpy(e->answer + e->answer_len, data, n);
    e->answer_len += n;
    return n;
}

/* One POST of the request to the current endpoint: 0 (2xx), CTRD_EAGAIN
 * (no answer, or 5xx), CTRD_ENOTFOUND (404), CTRD_EIO. */
static int etcd_post(struct etcd *e, const char *path, char *err)
{
    char url[URL_MAX];
    long status = 0;
    snprintf(url, sizeof url, "%s%s", e->endpoints[e->cur], path);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    e->answer_len = 0;
    e->answer_rc = 0;
    CURLcode c = curl_easy_perform(e->curl);
    if (e->answer_rc)
        return ctrd_fail(err, e->answer_rc, "etcd %s: answer %s", url,
                         e->answer_rc == CTRD_EIO ? "over the size cap"
                                                  : "out of memory");
    if (c != CURLE_OK)
        return ctrd_fail(err, CTRD_EAGAIN, "etcd %s: %s", url,
                         curl_easy_strerror(c));
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300)
        return 0;
    int len =
        (int)(e->answer_len < ERR_BODY_BYTES ? e->answer_len : ERR_BODY_BYTES);
    return ctrd_fail(err,
                     status >= 500   ? CTRD_EAGAIN
                     : status == 404 ? CTRD_ENOTFOUND
                                     : CTRD_EIO,
                     "etcd %s: HTTP %ld: %.*s", url, status, len, e->answer);
}

/* The request stream, emptied. */
static FILE *req_begin(struct etcd *e)
{
    rewind(e->req);
    return e->req;
}

/* POSTs the request to path, trying each endpoint once from the current
 * one: 0 and *answer (the answer's text), or the code. */
static int etcd_call(struct etcd *e, const char *path, struct jv *answer,
                     char *err)
{
    int rc = CTRD_EAGAIN;
    if (fflush(e->req) != 0 || ferror(e->req)) {
        clearerr(e->req);
        return ctrd_fail(err, CTRD_ENOMEM, "etcd: no memory for a request");
    }
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, e->req_buf);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, ftell(e->req));
    for (size_t i = 0; i < e->n && rc == CTRD_EAGAIN; i++) {
        if (i > 0)
            e->cur = (e->cur + 1) % e->n;
        rc = etcd_post(e, path, err);
    }
    *answer = (struct jv){e->answer, e->answer + e->answer_len};
    return rc;
}

/* An int64 the answer must hold (0 is absent, so also refused). */
static int answer_int(struct jv a, const char *path, int64_t *v, char *err)
{
    int rc = js_int(a, path, v);
    if (rc == 0 && *v == 0)
        rc = CTRD_EIO;
    return rc ? ctrd_fail(err, rc, "etcd: answer without %s", path) : 0;
}

/* ---- the calls ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int etcd_open(const char *const *endpoints, size_t n, int timeout_ms,
              struct etcd **out, char *err)
{
    struct etcd *e;
    *out = NULL;
    if (n == 0 || timeout_ms <= 0)
        return ctrd_fail(err, CTRD_EINVAL, "etcd: no endpoints or timeout");
    for (size_t i = 0; i < n; i++)
        if (strlen(endpoints[i]) > URL_MAX / 2)
            return ctrd_fail(err, CTRD_EINVAL, "etcd: endpoint %s: too long",
                             endpoints[i]);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return ctrd_fail(err, CTRD_EIO, "etcd: curl_global_init: %s",
                         curl_easy_strerror(curl_init_rc));
    if (!(e = calloc(1, sizeof *e)) ||
        !(e->endpoints = calloc(n, sizeof *e->endpoints)))
        goto fail;
    for (e->n = 0; e->n < n; e->n++)
        if (!(e->endpoints[e->n] = strdup(endpoints[e->n])))
            goto fail;
    e->answer_cap = ANSWER_START_BYTES;
    if (!(e->answer = malloc(e->answer_cap)) || !(e->curl = curl_easy_init()) ||
        !(e->headers =
              curl_slist_append(NULL, "Content-Type: application/json")) ||
        !curl_slist_append(e->headers, "Expect:") || /* no 100-continue */
        !(e->req = open_memstream(&e->req_buf, &e->req_size)))
        goto fail;
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e->curl, CURLOPT_NOPROXY, "*"); /* http_proxy: never */
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, e);
    *out = e;
    return 0;
fail:
    etcd_close(e);
    return ctrd_fail(err, CTRD_ENOMEM, "etcd: out of memory");
}

void etcd_close(struct etcd *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->endpoints && i < e->n; i++)
        free(e->endpoints[i]);
    free(e->endpoints);
    if (e->req)
        fclose(e->req);
    free(e->req_buf);
    free(e->answer);
    curl_slist_free_all(e->headers);
    curl_easy_cleanup(e->curl);
    free(e);
}

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *lease, char *err)
{
    struct jv a;
    fprintf(req_begin(e), "{\"TTL\":\"%" PRId64 "\"}", ttl_s);
    int rc = etcd_call(e, "/v3/lease/grant", &a, err);
    return rc ? rc : answer_int(a, "ID", lease, err);
}

int etcd_lease_keepalive(struct etcd *e, int64_t lease, int64_t *ttl_left,
                         char *err)
{
    struct jv a, result;
    fprintf(req_begin(e), "{\"ID\":\"%" PRId64 "\"}", lease);
    int rc = etcd_call(e, "/v3/lease/keepalive", &a, err);
    if (rc != 0)
        return rc;
    if (js_find(a, "result", &result) != 1 ||
        js_int(result, "TTL", ttl_left) != 0)
        return ctrd_fail(err, CTRD_EIO, "etcd: keepalive answer malformed");
    if (*ttl_left <= 0)
        return ctrd_fail(err, CTRD_ENOTFOUND, "etcd: lease %" PRId64 " gone",
                         lease);
    return 0;
}

int etcd_lease_revoke(struct etcd *e, int64_t lease, char *err)
{
    struct jv a;
    fprintf(req_begin(e), "{\"ID\":\"%" PRId64 "\"}", lease);
    return etcd_call(e, "/v3/lease/revoke", &a, err);
}

/* The fields of a put request. */
static void put_fields(FILE *f, const char *key, const char *value, size_t len,
                       int64_t lease)
{
    fputs("{\"key\":", f);
    b64_put(f, key, strlen(key));
    fputs(",\"value\":", f);
    b64_put(f, value, len);
    fprintf(f, ",\"lease\":\"%" PRId64 "\"}", lease);
}

int etcd_put(struct etcd *e, const char *key, const char *value, size_t len,
             int64_t lease, char *err)
{
    struct jv a;
    put_fields(req_begin(e), key, value, len, lease);
    return etcd_call(e, "/v3/kv/put", &a, err);
}

/* Starts a txn whose one compare is key's create_revision == revision;
 * the caller writes the success branch's op and then calls txn_call. */
static FILE *txn_begin(struct etcd *e, const char *key, int64_t revision)
{
    FILE *f = req_begin(e);
    fputs("{\"compare\":[{\"key\":", f);
    b64_put(f, key, strlen(key));
    fprintf(f,
            ",\"result\":\"EQUAL\",\"target\":\"CREATE\","
            "\"create_revision\":\"%" PRId64 "\"}],\"success\":[{",
            revision);
    return f;
}

/* Ends the request (its last op written up to the op's own closing brace)
 * and runs it: 0 succeeded, 1 the compare failed, or the code. */
static int txn_call(struct etcd *e, struct jv *a, char *err)
{
    struct jv ok;
    fputs("}]}", e->req);
    int rc = etcd_call(e, "/v3/kv/txn", a, err);
    if (rc != 0)
        return rc;
    if ((rc = js_find(*a, "succeeded", &ok)) < 0)
        return ctrd_fail(err, rc, "etcd: txn answer malformed");
    return !(rc == 1 && ok.end - ok.p == 4 && memcmp(ok.p, "true", 4) == 0);
}

int etcd_create(struct etcd *e, const char *key, const char *value, size_t len,
                int64_t lease, int64_t *create_revision, char *err)
{
    struct jv a;
    FILE *f = txn_begin(e, key, 0);
    fputs("\"request_put\":", f);
    put_fields(f, key, value, len, lease);
    fputs("}],\"failure\":[{\"request_range\":{\"key\":", f);
    b64_put(f, key, strlen(key));
    putc('}', f);
    int rc = txn_call(e, &a, err);
    if (rc < 0)
        return rc;
    int got =
        answer_int(a,
                   rc == 0 ? "header.revision"
                           : "responses.0.response_range.kvs.0.create_revision",
                   create_revision, err);
    return got < 0 ? got : rc;
}

int etcd_delete_if(struct etcd *e, const char *key, int64_t create_revision,
                   char *err)
{
    struct jv a;
    if (create_revision <= 0)
        return ctrd_fail(err, CTRD_EINVAL, "etcd: delete_if: no revision");
    FILE *f = txn_begin(e, key, create_revision);
    fputs("\"request_delete_range\":{\"key\":", f);
    b64_put(f, key, strlen(key));
    putc('}', f);
    return txn_call(e, &a, err);
}

int etcd_put_if(struct etcd *e, const char *fence_key, int64_t fence_revision,
                const char *key, const char *value, size_t len, char *err)
{
    struct jv a;
    if (fence_revision <= 0)
        return ctrd_fail(err, CTRD_EINVAL, "etcd: put_if: no fence revision");
    FILE *f = txn_begin(e, fence_key, fence_revision);
    fputs("\"request_put\":", f);
    put_fields(f, key, value, len, 0);
    return txn_call(e, &a, err);
}

/* Runs the range request written so far ("{key..." without its closing
 * brace) and calls fn for each kv; CTRD_ENOTFOUND when there is none. */
static int range_call(struct etcd *e, int (*fn)(void *, const struct etcd_kv *),
                      void *ctx, char *err)
{
    struct jv a, kvs, v, unused;
    struct js_it it;
    struct etcd_kv kv;
    size_t n = 0;
    int rc;
    putc('}', e->req);
    if ((rc = etcd_call(e, "/v3/kv/range", &a, err)) != 0)
        return rc;
    if ((rc = js_find(a, "kvs", &kvs)) == 0)
        return CTRD_ENOTFOUND;
    if (rc < 0 || js_open(&it, kvs, '[', 0) != 0)
        goto malformed;
    while ((rc = js_next(&it, &unused, &v)) == 1) {
        if (js_kv(v, &kv) != 0)
            goto malformed;
        if ((rc = fn(ctx, &kv)) != 0)
            return rc;
        n++;
    }
    if (rc == 0)
        return n ? 0 : CTRD_ENOTFOUND;
malformed:
    return ctrd_fail(err, CTRD_EIO, "etcd: range answer malformed");
}

int etcd_get(struct etcd *e, const char *key,
             int (*fn)(void *ctx, const struct etcd_kv *kv), void *ctx,
             char *err)
{
    FILE *f = req_begin(e);
    fputs("{\"key\":", f);
    b64_put(f, key, strlen(key));
    int rc = range_call(e, fn, ctx, err);
    return rc == CTRD_ENOTFOUND ? ctrd_fail(err, rc, "etcd: no key %s", key)
                                : rc;
}

int etcd_range_prefix(struct etcd *e, const char *prefix,
                      int (*fn)(void *ctx, const struct etcd_kv *kv), void *ctx,
                      char *err)
{
    /* The range's end: the prefix with its last byte below 0xff
     * incremented and what follows cut (only 0xff bytes: every key). */
    size_t n = strlen(prefix), m = n;
    char *end;
    if (n == 0)
        return ctrd_fail(err, CTRD_EINVAL, "etcd: empty prefix");
    while (m > 0 && (unsigned char)prefix[m - 1] == 0xff)
        m--;
    if (!(end = malloc(m + 1)))
        return ctrd_fail(err, CTRD_ENOMEM, "etcd: out of memory");
    memcpy(end, prefix, m);
    if (m > 0)
        end[m - 1]++;
    else
        end[m++] = 0; /* "\0": every key from the prefix on */
    FILE *f = req_begin(e);
    fputs("{\"key\":", f);
    b64_put(f, prefix, n);
    fputs(",\"range_end\":", f);
    b64_put(f, end, m);
    free(end);
    int rc = range_call(e, fn, ctx, err);
    return rc == CTRD_ENOTFOUND ? 0 : rc;
}
