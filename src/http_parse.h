/* http_parse: the HTTP/1.1 request parser — request line, header fields,
 * body framing (Content-Length or chunked) and query-string parameters.
 * Pure parsing: no socket, no clock, no allocation.
 *
 * Owns nothing: the caller owns the input buffer, which the parser edits in
 * place. The strings it finds are NUL-terminated inside that buffer and
 * given as offsets (struct http_request), so that the buffer may move
 * (realloc) while the body is still being read. A chunked body is decoded
 * in place: its data bytes move down to follow the head, the framing is
 * dropped. Line ends are CRLF or a bare LF.
 *
 * Resumable: http_parse_advance() is called each time more bytes were
 * appended to the buffer; the search for the end of the head resumes where
 * the last call stopped, the head is parsed once, and a chunked body is
 * decoded byte state by byte state. Fed whole or in pieces, the same input
 * gives the same requests and the same final answer.
 *
 * Errors are HTTP statuses, the answer a server gives before it closes:
 * 400 malformed, 413 a body over max_body_bytes, 431 a head over
 * max_head_bytes (or more than HTTP_FIELDS_MAX fields), 501 a transfer
 * coding other than chunked, 505 an HTTP version other than 1.0 and 1.1.
 *
 * Threads: none of its own; a parser and its buffer belong to one thread. */
#ifndef CTRD_HTTP_PARSE_H
#define CTRD_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_FIELDS_MAX 64 /* header fields per request, else 431 */

/* An offset where no string was parsed (yet). */
#define HTTP_NONE SIZE_MAX

/* http_parse_advance results; anything else is a status to answer with. */
enum { HTTP_MORE = 0, HTTP_DONE = 1 };

/* A header field: offsets of its NUL-terminated name and value. */
struct http_field {
    size_t name, value;
};

/* One request as parsed: offsets into the input buffer. Valid after
 * HTTP_DONE until http_parse_consume(); method, path and query are
 * HTTP_NONE before the head was parsed. */
struct http_request {
    size_t method, path, query; /* query: "" when there is none */
    struct http_field fields[HTTP_FIELDS_MAX];
    unsigned n_fields;
    int minor;           /* HTTP/1.minor: 0 or 1 */
    int keep_alive;      /* the client lets the connection live on */
    int is_head;         /* method HEAD: answer without the body */
    int expect_continue; /* "Expect: 100-continue" on HTTP/1.1 */
    int chunked;         /* Transfer-Encoding: chunked */
    int has_length;      /* a Content-Length was given */
    int conn_close, conn_keep_alive; /* Connection tokens seen */
    uint64_t content_length;
    size_t body, body_len; /* the body's offset (after the head), length */
};

/* Chunked-body decoder states. */
enum http_chunk_state {
    CH_SIZE_FIRST, /* first hex digit of a chunk size */
    CH_SIZE,       /* more hex digits, or the end of the size */
    CH_EXT,        /* a chunk extension, up to the line end */
    CH_SIZE_LF,    /* LF after the size line's CR */
    CH_DATA,       /* chunk_left data bytes */
    CH_DATA_CR,    /* CR (or LF) after the data */
    CH_DATA_LF,    /* LF after it */
    CH_TRAILER,    /* start of a trailer line, or the final empty line */
    CH_TRAILER_LINE,
    CH_END_LF /* LF of the final empty line */
};

/* Where the parse of the request at the start of the buffer stands. The
 * caller sets the limits (http_parser_init) and may read started and
 * head_len; the rest is the parser's. */
struct http_parser {
    size_t max_head_bytes; /* request line + fields; also chunk extensions
                              and trailers together */
    size_t max_body_bytes; /* decoded body */
    int started;           /* a byte other than a leading empty line came */
    size_t head_len;       /* 0 until the head is complete */
    size_t scan;           /* the head-end search resumes here */
    size_t start;          /* first byte after leading empty lines */
    size_t src;            /* chunked: next undecoded byte */
    size_t body_len;       /* decoded body bytes, right after the head */
    enum http_chunk_state cstate;
    uint64_t chunk_left; /* size being read, then data bytes left */
    size_t extra;        /* chunk extension and trailer bytes */
};

/* A parser at the start of a request, with these limits (> 0). */
void http_parser_init(struct http_parser *p, size_t max_head_bytes,
                      size_t max_body_bytes);

/* Advances the parse of the request at the start of in[0, *in_len) over
 * what has been read: HTTP_MORE, HTTP_DONE (r holds the request, body
 * included; what follows it in the buffer is read-ahead) or a status to
 * answer with (the parse cannot go on). Decoding a chunked body shrinks
 * *in_len. */
int http_parse_advance(struct http_parser *p, struct http_request *r, char *in,
                       size_t *in_len);

/* After HTTP_DONE: drops the request from the buffer (the read-ahead moves
 * down to in[0]) and resets p (limits kept) and r for the next one. */
void http_parse_consume(struct http_parser *p, struct http_request *r, char *in,
                        size_t *in_len);

/* The value of a header field of r (name case-insensitive, the first of
 * repeated fields), trimmed, or NULL. in is the parsed buffer. */
const char *http_request_header(const struct http_request *r, const char *in,
                                const char *name);

/* The parameter name of a query string ("a=1&b=2", not including '?'):
 * the first whose whole name matches, its name and value percent-decoded
 * with '+' as a space, the value into out: 0, CTRD_ENOTFOUND, or
 * CTRD_EINVAL when malformed (a bad escape, "%00") or longer than
 * out_len - 1. "a" alone reads as "a=". */
int http_query_param(const char *query, const char *name, char *out,
                     size_t out_len);

/* Whether s is a token (RFC 9110: one or more tchars), as method and field
 * names are. */
int http_is_token(const char *s);

#endif
