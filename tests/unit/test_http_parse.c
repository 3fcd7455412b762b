/* Unit tests of http_parse, without a socket: requests parsed from a
 * buffer, whole and cut at every byte (the parser is resumable, so both
 * must give the same requests), chunked bodies decoded in place with the
 * read-ahead kept, the statuses of malformed input, query parameters and
 * tokens. test_http.c tests the same parser through a real server. */
#include "check.h"
#include "error.h"
#include "http_parse.h"

#include <stdlib.h>
#include <string.h>

/* What parsing one connection's input gave: each request as
 * "METHOD PATH?QUERY body=BODY; " and the final answer. */
struct result {
    char text[1024];
    int last; /* HTTP_MORE, or the status that ended the parse */
};

/* Feeds input to a parser cut after byte `cut` (0: at once). */
static void parse(const char *input, size_t cut, size_t max_head,
                  size_t max_body, struct result *out)
{
    size_t size = strlen(input), off = 0, in_len = 0;
    char *in = malloc(size + 1);
    struct http_parser p;
    struct http_request r;
    http_parser_init(&p, max_head, max_body);
    r.method = r.path = r.query = HTTP_NONE;
    out->text[0] = '\0';
    out->last = HTTP_MORE;
    while (off < size && out->last == HTTP_MORE) {
        size_t n = cut && off < cut ? cut - off : size - off;
        memcpy(in + in_len, input + off, n);
        in_len += n;
        off += n;
        int rc;
        while ((rc = http_parse_advance(&p, &r, in, &in_len)) == HTTP_DONE) {
            size_t len = strlen(out->text);
            snprintf(out->text + len, sizeof out->text - len,
                     "%s %s%s%s body=%.*s; ", in + r.method, in + r.path,
                     in[r.query] ? "?" : "", in + r.query, (int)r.body_len,
                     in + r.body);
            http_parse_consume(&p, &r, in, &in_len);
        }
        out->last = rc;
    }
    free(in);
}

/* Parses input whole and cut at every byte; all must agree with want. */
static void expect(const char *input, const char *want, int want_last)
{
    struct result whole, piece;
    parse(input, 0, 1024, 1024, &whole);
    CHECK_EQ_STR(whole.text, want);
    CHECK_EQ_I64(whole.last, want_last);
    for (size_t cut = 1; cut < strlen(input); cut++) {
        parse(input, cut, 1024, 1024, &piece);
        CHECK_EQ_STR(piece.text, want);
        CHECK_EQ_I64(piece.last, want_last);
    }
}

static void test_pipelined_requests(void)
{
    expect("\r\nGET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
           "POST /b HTTP/1.1\nContent-Length: 3\n\nabc"
           "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3;ext=1\r\nxyz\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n"
           "GET /d HTTP/1.0\r\n\r\nGET /e",
           "GET /a?x=1 body=; POST /b body=abc; "
           "POST /c body=xyz0123456789; GET /d body=; ",
           HTTP_MORE);
}

static void test_errors(void)
{
    expect("GET /a HTTP/2.0\r\n\r\n", "", 505);
    expect("GET a HTTP/1.1\r\n\r\n", "", 400);
    expect("GET /a HTTP/1.1\r\nX : y\r\n\r\n", "", 400);
    expect("GET /a HTTP/1.1\r\nX: y\r\n folded\r\n\r\n", "", 400);
    expect("GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n", "", 400);
    expect("POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "", 400);
    expect("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "", 501);
    expect("POST /a HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", "", 413);
    expect("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "401\r\n",
           "", 413);
    expect("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "",
           400);
    /* a good request first: the error ends the parse after it */
    expect("GET /ok HTTP/1.1\r\n\r\nBAD\r\n\r\n", "GET /ok body=; ", 400);
}

static void test_head_limit(void)
{
    struct result res;
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char input[400];
    snprintf(input, sizeof input, "GET /%s HTTP/1.1\r\n\r\n", big);
    parse(input, 0, 256, 16, &res);
    CHECK_EQ_I64(res.last, 431);
    parse(input, 0, 512, 16, &res);
    CHECK_EQ_I64(res.last, HTTP_MORE);
    /* the head's end not yet seen, and already over the limit */
    parse(input, 0, 100, 16, &res);
    CHECK_EQ_I64(res.last, 431);
}

static void test_request_fields(void)
{
    char in[] = "HEAD /p HTTP/1.0\r\nConnection: Keep-Alive, x\r\n"
                "X-A:  one \t\r\nx-a: two\r\nExpect: 100-continue\r\n\r\n";
    size_t in_len = strlen(in);
    struct http_parser p;
    struct http_request r;
    http_parser_init(&p, 1024, 1024);
    CHECK_EQ_I64(http_parse_advance(&p, &r, in, &in_len), HTTP_DONE);
    CHECK_EQ_STR(http_request_header(&r, in, "x-a"), "one");
    CHECK(http_request_header(&r, in, "x-b") == NULL);
    CHECK_EQ_I64(r.n_fields, 4);
    CHECK_EQ_I64(r.minor, 0);
    CHECK_EQ_I64(r.is_head, 1);
    CHECK_EQ_I64(r.keep_alive, 1);      /* 1.0 with keep-alive */
    CHECK_EQ_I64(r.expect_continue, 0); /* only on 1.1 */
    http_parse_consume(&p, &r, in, &in_len);
    CHECK_EQ_U64(in_len, 0);
    CHECK(r.method == HTTP_NONE && r.path == HTTP_NONE);
}

static void test_query_param(void)
{
    static const struct {
        const char *query, *name;
        int rc;
        const char *value;
    } rows[] = {
        {"a=1&b=2", "b", 0, "2"},
        {"ab=1&a=2", "a", 0, "2"},
        {"a", "a", 0, ""},
        {"n%20m=x+y%2B", "n m", 0, "x y+"},
        {"a=%zz", "a", CTRD_EINVAL, ""},
        {"a=%00", "a", CTRD_EINVAL, ""},
        {"a=%4", "a", CTRD_EINVAL, ""},
        {"a=12345678", "a", CTRD_EINVAL, ""}, /* longer than out */
        {"b=1", "a", CTRD_ENOTFOUND, ""},
        {"", "a", CTRD_ENOTFOUND, ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[8] = "";
        int rc = http_query_param(rows[i].query, rows[i].name, out, sizeof out);
        CHECK_EQ_I64(rc, rows[i].rc);
        if (rc == 0)
            CHECK_EQ_STR(out, rows[i].value);
    }
}

static void test_token(void)
{
    CHECK(http_is_token("GET"));
    CHECK(http_is_token("X-Custom_1.2~!"));
    CHECK(!http_is_token(""));
    CHECK(!http_is_token("a b"));
    CHECK(!http_is_token("a:b"));
    CHECK(!http_is_token("caf\xc3\xa9"));
}

int main(void)
{
    RUN(test_pipelined_requests);
    RUN(test_errors);
    RUN(test_head_limit);
    RUN(test_request_fields);
    RUN(test_query_param);
    RUN(test_token);
    return check_done();
}
