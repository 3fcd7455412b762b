/* fuzz_http: libFuzzer target for the request parser of http.c (request
 * line, header fields, Content-Length and chunked framing, pipelining) and
 * for http_param's decoding. No socket is involved.
 *
 * The first input byte picks the limits and the seed of the cuts; the rest
 * is what a client sends on one connection. It is parsed twice: all at
 * once, and fed in pieces of 1 to 16 bytes as reads would bring it. Both
 * must give the same requests and the same final answer (the parser is
 * resumable), and every request must hold the invariants checked below.
 *   make fuzz && ./build-fuzz/fuzz_http -max_total_time=180 -max_len=4096
 *
 * The Makefile links every source file of src/ into each fuzzer, http.c too:
 * the public functions of the copy included here are renamed so that the
 * two do not clash (this copy is the one whose statics the target calls). */
#define http_server_create fuzz_http_server_create
#define http_server_port fuzz_http_server_port
#define http_server_run fuzz_http_server_run
#define http_server_stop fuzz_http_server_stop
#define http_server_free fuzz_http_server_free
#define http_server_post fuzz_http_server_post
#define http_server_every fuzz_http_server_every
#define http_method fuzz_http_method
#define http_path fuzz_http_path
#define http_query fuzz_http_query
#define http_header fuzz_http_header
#define http_param fuzz_http_param
#define http_body fuzz_http_body
#define http_peer_is_loopback fuzz_http_peer_is_loopback
#define http_started_ns fuzz_http_started_ns
#define http_exchange_closed fuzz_http_exchange_closed
#define http_add_header fuzz_http_add_header
#define http_respond fuzz_http_respond
#define http_stream_start fuzz_http_stream_start
#define http_stream_write fuzz_http_stream_write
#define http_stream_end fuzz_http_stream_end
#include "fuzz.h"
#include "../src/http.c"

#include <stdio.h>
#include <stdlib.h>


/* What one parse of the input gave. */
struct outcome {
    uint64_t digest; /* of every request, in order */
    unsigned n_requests;
    int last; /* HTTP_MORE, or the status of the error that ended it */
};

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    return (h ^ 0xff) * 0x100000001b3u; /* an end mark */
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s, strlen(s));
}

static int all_tchar(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!http_is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* http_param over a few names: results must be well-formed. */
static uint64_t check_params(const struct http_exchange *x, uint64_t h)
{
    static const char *names[] = {"a", "b", "ad_id", "", " ", "a b"};
    char out[16];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        for (size_t len = 0; len <= sizeof out; len += 8) {
            memset(out, 'Z', sizeof out);
            int rc = http_param(x, names[i], out, len);
            REQUIRE(rc == 0 || rc == CTRD_ENOTFOUND || rc == CTRD_EINVAL);
            if (rc == 0) {
                REQUIRE(len > 0 && strlen(out) < len);
                h = mix_str(h, out);
            }
            h = mix(h, &rc, sizeof rc);
        }
    }
    return h;
}

/* The invariants of a request read whole; folds it into the digest. */
static uint64_t check_request(const struct http_conn *c, uint64_t h)
{
    const struct http_exchange *x = &c->x;
    const struct http_config *cfg = &c->srv->cfg;
    const char *path = http_path(x), *query = http_query(x);
    size_t body_len;
    const char *body = http_body(x, &body_len);

    REQUIRE(c->p.head_len <= cfg->max_head_bytes);
    REQUIRE(body == c->in + c->p.head_len);
    REQUIRE(c->p.head_len + body_len <= c->in_len);
    REQUIRE(body_len <= cfg->max_body_bytes);
    REQUIRE(!(x->chunked && x->has_length));
    REQUIRE(x->chunked || body_len == x->content_length);
    REQUIRE(x->minor == 0 || x->minor == 1);
    REQUIRE(all_tchar(http_method(x)));
    REQUIRE(path[0] == '/' && !strchr(path, '?'));
    for (const char *s = path; *s; s++)
        REQUIRE((unsigned char)*s > ' ' && *s != 0x7f);
    for (const char *s = query; *s; s++)
        REQUIRE((unsigned char)*s > ' ' && *s != 0x7f);
    REQUIRE(x->n_fields <= HTTP_FIELDS_MAX);

    h = mix_str(h, http_method(x));
    h = mix_str(h, path);
    h = mix_str(h, query);
    for (unsigned i = 0; i < x->n_fields; i++) {
        const char *name = c->in + x->fields[i].name;
        const char *value = c->in + x->fields[i].value;
        size_t vn = strlen(value);
        REQUIRE(all_tchar(name));
        REQUIRE(!strpbrk(value, "\r\n"));
        REQUIRE(vn == 0 || (value[0] != ' ' && value[0] != '\t' &&
                            value[vn - 1] != ' ' && value[vn - 1] != '\t'));
        REQUIRE(http_header(x, name) != NULL);
        h = mix_str(mix_str(h, name), value);
    }
    int flags[] = {x->minor, x->keep_alive, x->is_head, x->expect_continue,
                   x->chunked};
    h = mix(h, flags, sizeof flags);
    h = mix(h, body, body_len);
    return check_params(x, h);
}

/* Parses data as one connection's input, in pieces of 1 to 16 bytes drawn
 * from seed, or at once when seed is 0. */
static void parse(const uint8_t *data, size_t size, size_t max_head,
                  size_t max_body, uint32_t seed, struct outcome *o)
{
    struct http_server s;
    struct http_conn c;
    memset(&s, 0, sizeof s);
    memset(&c, 0, sizeof c);
    s.cfg.max_head_bytes = max_head;
    s.cfg.max_body_bytes = max_body;
    c.srv = &s;
    c.fd = -1;
    c.x.conn = &c;
    c.x.method = c.x.path = c.x.query = HTTP_NONE;
    memset(o, 0, sizeof *o);
    o->digest = 0xcbf29ce484222325u;
    o->last = HTTP_MORE;

    size_t off = 0;
    while (off < size && o->last == HTTP_MORE) {
        size_t n = size - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t piece = 1 + (seed >> 16) % 16;
            n = piece < n ? piece : n;
        }
        REQUIRE(http_buf_reserve(&c.in, &c.in_cap, c.in_len + n) == 0);
        memcpy(c.in + c.in_len, data + off, n);
        c.in_len += n;
        off += n;
        for (;;) {
            int rc = http_req_advance(&c);
            if (rc == HTTP_MORE)
                break;
            if (rc != HTTP_DONE) {
                REQUIRE(rc == 400 || rc == 413 || rc == 431 || rc == 501 ||
                        rc == 505);
                o->last = rc;
                break;
            }
            o->digest = check_request(&c, o->digest);
            o->n_requests++;
            http_conn_consume(&c);
        }
    }
    free(c.in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t heads[] = {64, 256, 1024, 16384};
    static const size_t bodies[] = {1, 16, 1000, 1 << 20};
    struct outcome whole, pieces;
    if (size < 1)
        return 0;
    size_t max_head = heads[data[0] & 3];
    size_t max_body = bodies[(data[0] >> 2) & 3];
    uint32_t seed = 1u + data[0];

    parse(data + 1, size - 1, max_head, max_body, 0, &whole);
    parse(data + 1, size - 1, max_head, max_body, seed, &pieces);
    REQUIRE(whole.n_requests == pieces.n_requests);
    REQUIRE(whole.last == pieces.last);
    REQUIRE(whole.digest == pieces.digest);
    return 0;
}
