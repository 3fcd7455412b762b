/* fuzz_http: libFuzzer target for the request parser, http_parse.c
 * (request line, header fields, Content-Length and chunked framing,
 * pipelining) and for http_query_param's decoding. It links only the
 * parser: no socket is involved.
 *
 * The first input byte picks the limits and the seed of the cuts; the rest
 * is what a client sends on one connection. It is parsed twice: all at
 * once, and fed in pieces of 1 to 16 bytes as reads would bring it. Both
 * must give the same requests and the same final answer (the parser is
 * resumable), and every request must hold the invariants checked below.
 *   make fuzz && ./build-fuzz/fuzz_http -max_total_time=180 -max_len=4096 */
#include "fuzz.h"
#include "http_parse.h"

#include "error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* http_query_param over a few names: results must be well-formed. */
static uint64_t check_params(const char *query, uint64_t h)
{
    static const char *names[] = {"a", "b", "ad_id", "", " ", "a b"};
    char out[16];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        for (size_t len = 0; len <= sizeof out; len += 8) {
            memset(out, 'Z', sizeof out);
            int rc = http_query_param(query, names[i], out, len);
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

/* One connection's input buffer and its parse. */
struct conn {
    struct http_parser p;
    struct http_request r;
    char *in;
    size_t in_len;
};

/* The invariants of a request read whole; folds it into the digest. */
static uint64_t check_request(const struct conn *c, uint64_t h)
{
    const struct http_request *x = &c->r;
    const char *method = c->in + x->method, *path = c->in + x->path;
    const char *query = c->in + x->query, *body = c->in + x->body;

    REQUIRE(x->method != HTTP_NONE && x->path != HTTP_NONE &&
            x->query != HTTP_NONE);
    REQUIRE(c->p.head_len <= c->p.max_head_bytes);
    REQUIRE(x->body == c->p.head_len);
    REQUIRE(c->p.head_len + x->body_len <= c->in_len);
    REQUIRE(x->body_len <= c->p.max_body_bytes);
    REQUIRE(!(x->chunked && x->has_length));
    REQUIRE(x->chunked || x->body_len == x->content_length);
    REQUIRE(x->minor == 0 || x->minor == 1);
    REQUIRE(http_is_token(method));
    REQUIRE(path[0] == '/' && !strchr(path, '?'));
    for (const char *s = path; *s; s++)
        REQUIRE((unsigned char)*s > ' ' && *s != 0x7f);
    for (const char *s = query; *s; s++)
        REQUIRE((unsigned char)*s > ' ' && *s != 0x7f);
    REQUIRE(x->n_fields <= HTTP_FIELDS_MAX);

    h = mix_str(h, method);
    h = mix_str(h, path);
    h = mix_str(h, query);
    for (unsigned i = 0; i < x->n_fields; i++) {
        const char *name = c->in + x->fields[i].name;
        const char *value = c->in + x->fields[i].value;
        size_t vn = strlen(value);
        REQUIRE(http_is_token(name));
        REQUIRE(!strpbrk(value, "\r\n"));
        REQUIRE(vn == 0 || (value[0] != ' ' && value[0] != '\t' &&
                            value[vn - 1] != ' ' && value[vn - 1] != '\t'));
        REQUIRE(http_request_header(x, c->in, name) != NULL);
        h = mix_str(mix_str(h, name), value);
    }
    int flags[] = {x->minor, x->keep_alive, x->is_head, x->expect_continue,
                   x->chunked};
    h = mix(h, flags, sizeof flags);
    h = mix(h, body, x->body_len);
    return check_params(query, h);
}

/* Parses data as one connection's input, in pieces of 1 to 16 bytes drawn
 * from seed, or at once when seed is 0. */
static void parse(const uint8_t *data, size_t size, size_t max_head,
                  size_t max_body, uint32_t seed, struct outcome *o)
{
    struct conn c;
    memset(&c, 0, sizeof c);
    http_parser_init(&c.p, max_head, max_body);
    c.r.method = c.r.path = c.r.query = HTTP_NONE;
    /* The whole input at most: the buffer never holds more. */
    REQUIRE((c.in = malloc(size ? size : 1)) != NULL);
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
        memcpy(c.in + c.in_len, data + off, n);
        c.in_len += n;
        off += n;
        for (;;) {
            int rc = http_parse_advance(&c.p, &c.r, c.in, &c.in_len);
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
            http_parse_consume(&c.p, &c.r, c.in, &c.in_len);
            REQUIRE(c.r.method == HTTP_NONE && c.p.head_len == 0);
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
