/* http_parse: the HTTP/1.1 request parser; see http_parse.h.
 *
 * HEAD. http_head_find looks for the empty line that ends the head,
 * resuming where the last call stopped (leading empty lines skipped, as
 * RFC 9112 allows); http_head_parse then parses the head once, in place:
 * the request line, each field (a name that is a token, a colon, the value
 * with its surrounding whitespace trimmed; obs-fold, control characters
 * and bare CRs refused), and notes the fields that frame the message
 * (Content-Length, Transfer-Encoding) or the connection (Connection,
 * Expect).
 *
 * BODY. With a Content-Length, the body is the next bytes as read. A
 * chunked body runs through a byte-state machine (enum http_chunk_state)
 * that copies data bytes down to follow the head and counts extension and
 * trailer bytes against max_head_bytes.
 *
 * QUERY. Parameters are decoded on demand, straight from the query string:
 * nothing is stored per request. */
#include "http_parse.h"

#include "error.h"

#include <string.h>
#include <strings.h>

static int http_is_tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int http_is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int http_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* ---- the request parser ---- */

/* Whether the name (n bytes) is lit, case-insensitively. */
static int http_name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(name, lit, n) == 0;
}

/* Whether the comma-separated list v holds token, case-insensitively. */
static int http_list_has(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (*v) {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, ",");
        size_t t = len;
        while (t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'))
            t--;
        if (t == n && strncasecmp(v, token, n) == 0)
            return 1;
        v += len;
    }
    return 0;
}

/* Whether a line end (CRLF or LF) is at *pp; if so, steps over it. */
static int http_eol(char **pp, const char *end)
{
    char *p = *pp;
    if (p < end && *p == '\n') {
        *pp = p + 1;
        return 1;
    }
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
        *pp = p + 2;
        return 1;
    }
    return 0;
}

/* Past the token (possibly empty) that starts at p. */
static char *http_token_end(char *p, const char *end)
{
    while (p < end && http_is_tchar((unsigned char)*p))
        p++;
    return p;
}

/* "METHOD SP origin-form SP HTTP/1.x EOL". 0 or a status. */
static int http_parse_request_line(char *buf, char **pp, const char *end,
                                   struct http_request *x)
{
    char *m = *pp, *p = http_token_end(m, end);
    if (p == m || p == end || *p != ' ')
        return 400;
    *p++ = '\0';

    char *t = p;
    while (p < end && (unsigned char)*p > ' ' && *p != 0x7f)
        p++;
    if (p == t || p == end || *p != ' ' || *t != '/')
        return 400;
    *p++ = '\0';
    x->method = (size_t)(m - buf); /* with the path, or not at all */
    x->is_head = strcmp(m, "HEAD") == 0;
    char *q = strchr(t, '?');
    x->path = (size_t)(t - buf);
    x->query = (size_t)(p - 1 - buf); /* "" */
    if (q) {
        *q = '\0';
        x->query = (size_t)(q + 1 - buf);
    }

    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' ||
        !http_is_digit(p[5]) || !http_is_digit(p[7]))
        return 400;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return 505;
    x->minor = p[7] - '0';
    p += 8;
    if (!http_eol(&p, end))
        return 400;
    *pp = p;
    return 0;
}

/* Takes note of the fields that frame the message or the connection. */
static int http_field_note(struct http_request *x, const char *name, size_t n,
                           const char *v)
{
    if (http_name_is(name, n, "content-length")) {
        uint64_t len = 0;
        size_t digits = strspn(v, "0123456789");
        if (digits == 0 || digits > 18 || v[digits] != '\0')
            return 400;
        for (size_t i = 0; i < digits; i++)
            len = len * 10 + (uint64_t)(v[i] - '0');
        if (x->has_length && len != x->content_length)
            return 400;
        x->has_length = 1;
        x->content_length = len;
    } else if (http_name_is(name, n, "transfer-encoding")) {
        if (strcasecmp(v, "chunked") != 0)
            return 501;
        if (x->chunked)
            return 400; /* chunked twice */
        x->chunked = 1;
    } else if (http_name_is(name, n, "connection")) {
        x->conn_close |= http_list_has(v, "close");
        x->conn_keep_alive |= http_list_has(v, "keep-alive");
    } else if (http_name_is(name, n, "expect")) {
        x->expect_continue |= strcasecmp(v, "100-continue") == 0;
    }
    return 0;
}

/* "name: OWS value OWS EOL"; the value is trimmed and NUL-terminated. */
static int http_parse_field(char *buf, char **pp, const char *end,
                            struct http_request *x)
{
    char *name = *pp, *p = http_token_end(name, end);
    if (p == name || p == end || *p != ':')
        return 400;
    size_t n = (size_t)(p - name);
    *p++ = '\0';
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    char *v = p;
    while (p < end && ((unsigned char)*p >= ' ' || *p == '\t') && *p != 0x7f)
        p++;
    char *ve = p;
    if (!http_eol(&p, end))
        return 400; /* a control character or a bare CR */
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    *ve = '\0';
    if (x->n_fields == HTTP_FIELDS_MAX)
        return 431;
    x->fields[x->n_fields].name = (size_t)(name - buf);
    x->fields[x->n_fields].value = (size_t)(v - buf);
    x->n_fields++;
    *pp = p;
    return http_field_note(x, name, n, v);
}

/* Parses the request head buf[0, len) in place: leading empty lines, the
 * request line, the fields, the empty line that ends the head (and nothing
 * after it). Fills x's request part. 0 or the status to answer with. */
static int http_head_parse(char *buf, size_t len, struct http_request *x)
{
    char *p = buf;
    const char *end = buf + len;
    int rc;

    x->method = x->path = x->query = HTTP_NONE;
    x->n_fields = 0;
    x->minor = 0;
    x->keep_alive = x->is_head = x->expect_continue = 0;
    x->chunked = x->has_length = x->conn_close = x->conn_keep_alive = 0;
    x->content_length = 0;
    x->body = len;
    x->body_len = 0;

    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    if ((rc = http_parse_request_line(buf, &p, end, x)) != 0)
        return rc;
    for (;;) {
        if (p < end && (*p == ' ' || *p == '\t'))
            return 400; /* obs-fold */
        if (http_eol(&p, end))
            break;
        if (p == end)
            return 400;
        if ((rc = http_parse_field(buf, &p, end, x)) != 0)
            return rc;
    }
    if (p != end)
        return 400;
    if (x->chunked && (x->has_length || x->minor == 0))
        return 400;
    x->keep_alive = !x->conn_close && (x->minor == 1 || x->conn_keep_alive);
    x->expect_continue &= x->minor == 1;
    return 0;
}

/* Looks for the empty line that ends the head, resuming where the last
 * call stopped. HTTP_MORE, HTTP_DONE (p->head_len set) or 431. */
static int http_head_find(struct http_parser *p, const char *in, size_t len,
                          size_t max_head)
{
    size_t i = p->scan;
    if (!p->started) {
        while (i < len && (in[i] == '\r' || in[i] == '\n'))
            i++;
        if (i < len) {
            p->start = i;
            p->started = 1;
        }
    }
    while (p->started && i < len) {
        const char *lf = memchr(in + i, '\n', len - i);
        if (!lf)
            break;
        size_t k = (size_t)(lf - in);
        /* in[p->start] is neither CR nor LF, so k - 2 >= start below */
        if (in[k - 1] == '\n' || (in[k - 1] == '\r' && in[k - 2] == '\n')) {
            p->head_len = k + 1;
            return p->head_len > max_head ? 431 : HTTP_DONE;
        }
        i = k + 1;
    }
    p->scan = len;
    return len >= max_head ? 431 : HTTP_MORE;
}

/* The end of a chunk-size line: data, the trailer, or 413. */
static int http_chunk_sized(struct http_parser *p, size_t max_body)
{
    if (p->chunk_left == 0)
        p->cstate = CH_TRAILER;
    else if (p->chunk_left > max_body - p->body_len)
        return 413;
    else
        p->cstate = CH_DATA;
    return HTTP_MORE;
}

/* Feeds one framing byte (anything but chunk data) to the decoder. */
static int http_chunk_byte(struct http_parser *p, int ch, size_t max_body,
                           size_t max_extra)
{
    int v = http_hex(ch);
    switch (p->cstate) {
    case CH_SIZE_FIRST:
        if (v < 0)
            return 400;
        p->chunk_left = (uint64_t)v;
        p->cstate = CH_SIZE;
        return HTTP_MORE;
    case CH_SIZE:
        if (v >= 0) {
            if (p->chunk_left >> 59)
                return 400;
            p->chunk_left = p->chunk_left * 16 + (uint64_t)v;
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
            p->cstate = CH_EXT;
        } else if (ch == '\r') {
            p->cstate = CH_SIZE_LF;
        } else if (ch == '\n') {
            return http_chunk_sized(p, max_body);
        } else {
            return 400;
        }
        return HTTP_MORE;
    case CH_EXT:
        if (ch == '\r')
            p->cstate = CH_SIZE_LF;
        else if (ch == '\n')
            return http_chunk_sized(p, max_body);
        else if ((ch < ' ' && ch != '\t') || ch == 0x7f ||
                 ++p->extra > max_extra)
            return 400;
        return HTTP_MORE;
    case CH_SIZE_LF:
        return ch == '\n' ? http_chunk_sized(p, max_body) : 400;
    case CH_DATA_CR:
        if (ch == '\r')
            p->cstate = CH_DATA_LF;
        else if (ch == '\n')
            p->cstate = CH_SIZE_FIRST;
        else
            return 400;
        return HTTP_MORE;
    case CH_DATA_LF:
        if (ch != '\n')
            return 400;
        p->cstate = CH_SIZE_FIRST;
        return HTTP_MORE;
    case CH_TRAILER:
        if (ch == '\n')
            return HTTP_DONE;
        p->cstate = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
        return ++p->extra > max_extra ? 400 : HTTP_MORE;
    case CH_TRAILER_LINE:
        if (ch == '\n')
            p->cstate = CH_TRAILER;
        return ++p->extra > max_extra ? 400 : HTTP_MORE;
    case CH_END_LF:
        return ch == '\n' ? HTTP_DONE : 400;
    case CH_DATA:
        break;
    }
    return 400; /* CH_DATA is handled by the caller */
}

/* Decodes the chunked body in place as far as it has been read: the data
 * moves down to follow the head; framing bytes are dropped. After HTTP_DONE
 * the read-ahead follows the decoded body. */
static int http_chunked_advance(struct http_parser *p, char *in, size_t *in_len)
{
    size_t i = p->src, end = *in_len;
    size_t dst = p->head_len + p->body_len;
    int rc = HTTP_MORE;

    while (i < end && rc == HTTP_MORE) {
        if (p->cstate != CH_DATA) {
            rc = http_chunk_byte(p, (unsigned char)in[i++], p->max_body_bytes,
                                 p->max_head_bytes);
            continue;
        }
        size_t n = end - i;
        if (n > p->chunk_left)
            n = (size_t)p->chunk_left;
        memmove(in + dst, in + i, n);
        dst += n;
        i += n;
        p->body_len += n;
        p->chunk_left -= n;
        if (p->chunk_left == 0)
            p->cstate = CH_DATA_CR;
    }
    if (rc == HTTP_DONE) {
        memmove(in + dst, in + i, end - i);
        *in_len = dst + (end - i);
    } else if (rc == HTTP_MORE) {
        *in_len = dst; /* every byte read so far is decoded */
    }
    p->src = dst;
    return rc;
}

void http_parser_init(struct http_parser *p, size_t max_head_bytes,
                      size_t max_body_bytes)
{
    memset(p, 0, sizeof *p);
    p->max_head_bytes = max_head_bytes;
    p->max_body_bytes = max_body_bytes;
}

int http_parse_advance(struct http_parser *p, struct http_request *x, char *in,
                       size_t *in_len)
{
    int rc;

    if (!p->head_len) {
        rc = http_head_find(p, in, *in_len, p->max_head_bytes);
        if (rc != HTTP_DONE)
            return rc;
        rc = http_head_parse(in, p->head_len, x);
        if (rc != 0)
            return rc;
        if (x->content_length > p->max_body_bytes)
            return 413;
        p->src = p->head_len;
        p->cstate = CH_SIZE_FIRST;
    }
    if (x->chunked) {
        rc = http_chunked_advance(p, in, in_len);
        if (rc != HTTP_DONE)
            return rc;
    } else {
        if (*in_len - p->head_len < x->content_length)
            return HTTP_MORE;
        p->body_len = (size_t)x->content_length;
    }
    x->body = p->head_len;
    x->body_len = p->body_len;
    return HTTP_DONE;
}

void http_parse_consume(struct http_parser *p, struct http_request *x, char *in,
                        size_t *in_len)
{
    size_t used = p->head_len + p->body_len;
    size_t left = *in_len - used;
    if (left)
        memmove(in, in + used, left);
    *in_len = left;
    http_parser_init(p, p->max_head_bytes, p->max_body_bytes);
    x->method = x->path = x->query = HTTP_NONE;
    x->is_head = 0;
}

const char *http_request_header(const struct http_request *x, const char *in,
                                const char *name)
{
    for (unsigned i = 0; i < x->n_fields; i++)
        if (strcasecmp(in + x->fields[i].name, name) == 0)
            return in + x->fields[i].value;
    return NULL;
}

int http_is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!http_is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

/* ---- query parameters ---- */

/* The next byte of a form-encoded component, -1 when malformed. */
static int http_form_byte(const char **pp, const char *end)
{
    const char *p = *pp;
    int ch = (unsigned char)*p++;
    if (ch == '+') {
        ch = ' ';
    } else if (ch == '%') {
        int hi = end - p >= 2 ? http_hex(p[0]) : -1;
        int lo = end - p >= 2 ? http_hex(p[1]) : -1;
        if (hi < 0 || lo < 0)
            return -1;
        ch = hi * 16 + lo;
        p += 2;
    }
    *pp = p;
    return ch;
}

/* Whether the encoded [p, end) decodes to name. */
static int http_form_equals(const char *p, const char *end, const char *name)
{
    while (p < end) {
        int ch = http_form_byte(&p, end);
        if (ch <= 0 || ch != (unsigned char)*name++)
            return 0;
    }
    return *name == '\0';
}

int http_query_param(const char *q, const char *name, char *out, size_t out_len)
{
    while (*q) {
        const char *end = q + strcspn(q, "&");
        const char *eq = memchr(q, '=', (size_t)(end - q));
        if (http_form_equals(q, eq ? eq : end, name)) {
            const char *v = eq ? eq + 1 : end;
            size_t n = 0;
            while (v < end) {
                int ch = http_form_byte(&v, end);
                if (ch <= 0 || n + 1 >= out_len)
                    return CTRD_EINVAL;
                out[n++] = (char)ch;
            }
            if (out_len == 0)
                return CTRD_EINVAL;
            out[n] = '\0';
            return 0;
        }
        q = *end ? end + 1 : end;
    }
    return CTRD_ENOTFOUND;
}
