/* auth: the tokens file and who presents a token; see auth.h.
 *
 * DESIGN. Each token is kept zero-padded in a fixed AUTH_TOKEN_MAX-byte
 * buffer (as 64-bit words) next to its length. auth_check() copies the
 * presented token into a buffer of the same shape and then, for EVERY
 * configured token, in the same order every time:
 *   - ORs together the XOR of all AUTH_TOKEN_WORDS word pairs and the XOR
 *     of the two lengths (no early exit, no memcmp/strcmp, whose running
 *     time depends on where the first difference is);
 *   - turns "that OR is zero" into an all-ones/all-zeros mask with
 *     arithmetic, hidden from the optimiser (ct_barrier) so that it cannot
 *     turn the selection into a branch;
 *   - selects role and advertiser id with that mask (x & ~m | y & m).
 * So the work done is AUTH_TOKEN_WORDS word comparisons per configured
 * token whatever the presented token is, whether and which token matches:
 * timing tells nothing about the configured tokens. What it does depend on
 * is public: the number of tokens, and the shape of the presented header
 * (a malformed header, or a token longer than any token can be, is turned
 * away before the loop).
 *
 * Tokens never reach an error message: errors name the file, the line and
 * what is wrong with it, never a field's text (a swapped "role,token" line
 * would otherwise print the token as the role). The file buffer and the
 * token table are wiped with explicit_bzero before they are freed. */
#include "auth.h"

#include "cli.h"
#include "fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define AUTH_TOKEN_MAX 256
#define AUTH_TOKEN_WORDS (AUTH_TOKEN_MAX / 8)
#define AUTH_FIELDS_MAX 3

struct auth_token {
    uint64_t words[AUTH_TOKEN_WORDS]; /* the token's bytes, zero-padded */
    uint64_t len;                     /* 1..AUTH_TOKEN_MAX */
    uint64_t role;                    /* enum auth_role */
    uint64_t advertiser_id;           /* 0 unless AUTH_ADVERTISER */
    size_t line;                      /* where the file defines it */
};

struct auth {
    struct auth_token *tokens;
    size_t n, cap;
};

static const char *const role_names[] = {
    [AUTH_ADMIN] = "admin",
    [AUTH_INGEST] = "ingest",
    [AUTH_ADVERTISER] = "advertiser",
};

const char *auth_role_name(enum auth_role role)
{
    return role_names[role];
}

/* x, unknown to the optimiser: it cannot reason about its value (e.g. that
 * a mask is 0 or all ones) and so cannot replace arithmetic by a branch. */
static inline uint64_t ct_barrier(uint64_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}

static int is_token_byte(char c)
{
    return c >= 0x21 && c <= 0x7e;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits s at its commas, NUL-terminating each field in place. Returns the
 * number of fields (fields past AUTH_FIELDS_MAX are counted, not kept). */
static int split_fields(char *s, char *field[AUTH_FIELDS_MAX])
{
    int n = 0;
    for (;;) {
        char *comma = strchr(s, ',');
        if (n < AUTH_FIELDS_MAX)
            field[n] = s;
        n++;
        if (!comma)
            return n;
        *comma = '\0';
        s = comma + 1;
    }
}

static int token_ok(const char *s, size_t len)
{
    if (len == 0 || len > AUTH_TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_token_byte(s[i]))
            return 0;
    return 1;
}

static int role_parse(const char *s, uint64_t *role)
{
    for (size_t r = 0; r < sizeof role_names / sizeof role_names[0]; r++) {
        if (strcmp(s, role_names[r]) == 0) {
            *role = r;
            return 0;
        }
    }
    return CTRD_EINVAL;
}

/* Parses one "token,role[,advertiser_id]" line into t. Never quotes the
 * line: any field may be (part of) a token. */
static int token_parse(const char *path, size_t line_no, char *s, size_t len,
                       struct auth_token *t, char *err)
{
    char *field[AUTH_FIELDS_MAX];
    int n;

    if (strlen(s) != len)
        return ctrd_fail(err, CTRD_EINVAL, "%s:%zu: NUL byte in the line", path,
                         line_no);
    n = split_fields(s, field);
    if (n < 2 || n > AUTH_FIELDS_MAX)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: expected token,role[,advertiser_id], "
                         "found %d comma-separated field%s",
                         path, line_no, n, n == 1 ? "" : "s");
    size_t token_len = strlen(field[0]);
    if (!token_ok(field[0], token_len))
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: the token must be 1 to %d printable ASCII "
                         "bytes without spaces or commas",
                         path, line_no, AUTH_TOKEN_MAX);
    if (role_parse(field[1], &t->role) != 0)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: unknown role (expected admin, ingest or "
                         "advertiser)",
                         path, line_no);
    if (t->role == AUTH_ADVERTISER && n != 3)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: role advertiser needs an advertiser_id "
                         "(token,advertiser,ID)",
                         path, line_no);
    if (t->role != AUTH_ADVERTISER && n != 2)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: role %s takes no advertiser_id", path,
                         line_no, role_names[t->role]);
    t->advertiser_id = 0;
    if (n == 3 && cli_parse_u64(field[2], &t->advertiser_id) != 0)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: advertiser_id must be a decimal number "
                         "up to 18446744073709551615",
                         path, line_no);
    memset(t->words, 0, sizeof t->words);
    memcpy(t->words, field[0], token_len);
    t->len = token_len;
    t->line = line_no;
    return 0;
}

static int token_cmp(const struct auth_token *a, const struct auth_token *b)
{
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return memcmp(a->words, b->words, sizeof a->words);
}

/* By token, then by line: copies of a token end up in file order. */
static int token_sort_cmp(const void *pa, const void *pb)
{
    const struct auth_token *a = pa, *b = pb;
    int c = token_cmp(a, b);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

/* Sorts the tokens (their order does not matter to auth_check) and fails
 * on a token defined twice, at the first line in the file that repeats a
 * token. */
static int tokens_check_unique(const char *path, struct auth *a, char *err)
{
    const struct auth_token *first = NULL, *again = NULL;

    qsort(a->tokens, a->n, sizeof a->tokens[0], token_sort_cmp);
    for (size_t i = 1; i < a->n; i++) {
        const struct auth_token *x = &a->tokens[i - 1], *y = &a->tokens[i];
        if (token_cmp(x, y) == 0 && (!again || y->line < again->line))
            first = x, again = y;
    }
    if (again)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s:%zu: duplicate token (first at line %zu)", path,
                         again->line, first->line);
    return 0;
}

static int tokens_push(struct auth *a, struct auth_token **t)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct auth_token *grown = calloc(cap, sizeof *grown);
        if (!grown)
            return CTRD_ENOMEM;
        if (a->n)
            memcpy(grown, a->tokens, a->n * sizeof *grown);
        if (a->tokens)
            explicit_bzero(a->tokens, a->n * sizeof *a->tokens);
        free(a->tokens);
        a->tokens = grown;
        a->cap = cap;
    }
    *t = &a->tokens[a->n];
    return 0;
}

/* Parses the whole file text (NUL-terminated, len bytes) into a. */
static int auth_parse(const char *path, char *buf, size_t len, struct auth *a,
                      char *err)
{
    size_t pos = 0, line_no = 0, n;

    while (pos < len) {
        char *s = fs_next_line(buf, len, &pos, &n);
        struct auth_token *t;
        line_no++;
        if (s[0] == '#' || strspn(s, " \t") == n)
            continue;
        if (tokens_push(a, &t) != 0)
            return ctrd_fail(err, CTRD_ENOMEM, "%s: out of memory", path);
        int rc = token_parse(path, line_no, s, n, t, err);
        if (rc != 0)
            return rc;
        a->n++;
    }
    if (a->n == 0)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s: no tokens (lines token,role[,advertiser_id])",
                         path);
    return tokens_check_unique(path, a, err);
}

int auth_load(const char *path, struct auth **out, char *err)
{
    char *buf;
    size_t len;
    struct auth *a;
    int rc = fs_read_file(path, &buf, &len, err);

    if (rc != 0)
        return rc;
    a = calloc(1, sizeof *a);
    if (!a) {
        rc = ctrd_fail(err, CTRD_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    rc = auth_parse(path, buf, len, a, err);
    if (rc != 0)
        goto fail;
    explicit_bzero(buf, len);
    free(buf);
    *out = a;
    return 0;
fail:
    explicit_bzero(buf, len);
    free(buf);
    auth_free(a);
    return rc;
}

void auth_free(struct auth *a)
{
    if (!a)
        return;
    if (a->tokens)
        explicit_bzero(a->tokens, a->cap * sizeof *a->tokens);
    free(a->tokens);
    free(a);
}

/* The token of an Authorization header value "Bearer TOKEN" (scheme in any
 * case, then spaces or tabs; surrounding spaces and tabs ignored), copied
 * zero-padded into words. 0, or CTRD_EINVAL when the value has no such token.
 * Looks only at the presented value, so it may return early. */
static int bearer_token(const char *h, uint64_t words[AUTH_TOKEN_WORDS],
                        uint64_t *len)
{
    static const char scheme[] = "Bearer";
    size_t n = 0;

    while (is_blank(*h))
        h++;
    if (strncasecmp(h, scheme, sizeof scheme - 1) != 0)
        return CTRD_EINVAL;
    h += sizeof scheme - 1;
    if (!is_blank(*h))
        return CTRD_EINVAL;
    while (is_blank(*h))
        h++;
    while (n <= AUTH_TOKEN_MAX && is_token_byte(h[n]))
        n++;
    if (n == 0 || n > AUTH_TOKEN_MAX || h[n + strspn(h + n, " \t")] != '\0')
        return CTRD_EINVAL;
    memset(words, 0, AUTH_TOKEN_WORDS * sizeof words[0]);
    memcpy(words, h, n);
    *len = n;
    return 0;
}

int auth_check(const struct auth *a, const char *authorization,
               struct auth_identity *who)
{
    uint64_t want[AUTH_TOKEN_WORDS], len;
    uint64_t found = 0, role = 0, advertiser_id = 0;

    if (!a || !authorization || bearer_token(authorization, want, &len) != 0)
        return CTRD_ENOTFOUND;
    /* Constant time: see DESIGN at the top of this file. */
    for (size_t i = 0; i < a->n; i++) {
        const struct auth_token *t = &a->tokens[i];
        uint64_t diff = t->len ^ len;
        for (size_t k = 0; k < AUTH_TOKEN_WORDS; k++)
            diff |= t->words[k] ^ want[k];
        /* (diff | -diff) has its top bit set iff diff != 0. */
        uint64_t match = ct_barrier(((diff | (0 - diff)) >> 63) - 1);
        found |= match;
        role = (role & ~match) | (t->role & match);
        advertiser_id = (advertiser_id & ~match) | (t->advertiser_id & match);
    }
    explicit_bzero(want, sizeof want);
    if (!found)
        return CTRD_ENOTFOUND;
    who->role = (enum auth_role)role;
    who->advertiser_id = advertiser_id;
    return 0;
}
