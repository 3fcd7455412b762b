/* Unit tests of auth (SPEC §6): the tokens file (roles, advertiser ids,
 * comments, CRLF, every error with its file:line and without the token)
 * and auth_check (the right identity for each token; prefixes, suffixes,
 * one-byte changes, empty tokens and other schemes turned away). */
#include "auth.h"
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))
#define TEXT(lit)                                                              \
    {                                                                          \
        lit, sizeof lit - 1                                                    \
    }

/* Every token in the error cases contains this; no message may. */
#define SECRET "s3cr3t"

struct text {
    const char *s;
    size_t len;
};

static char tmp_dir[64], tokens_path[128];

static void write_file(const char *s, size_t len)
{
    FILE *f = fopen(tokens_path, "wb");
    if (!f || fwrite(s, 1, len, f) != len || fclose(f) != 0) {
        perror(tokens_path);
        exit(1);
    }
}

static int load(const char *s, size_t len, struct auth **a, char *err)
{
    write_file(s, len);
    err[0] = '\0';
    return auth_load(tokens_path, a, err);
}

static struct auth *load_ok(const char *s)
{
    char err[CTRD_ERR_LEN];
    struct auth *a = NULL;
    int rc = load(s, strlen(s), &a, err);
    if (rc != 0)
        CHECK_FAIL_AT("auth_load: %d %s", rc, err);
    return a;
}

/* Whether header gives that identity (role, advertiser id). */
static int is(const struct auth *a, const char *header, enum auth_role role,
              uint64_t advertiser_id)
{
    struct auth_identity who = {.role = AUTH_INGEST, .advertiser_id = 77};
    return auth_check(a, header, &who) == 0 && who.role == role &&
           who.advertiser_id == advertiser_id;
}

static int refused(const struct auth *a, const char *header)
{
    struct auth_identity who;
    return auth_check(a, header, &who) == CTRD_ENOTFOUND;
}

static void test_roles_comments_crlf(void)
{
    struct auth *a = load_ok("# ctrd tokens\r\n"
                             "\r\n"
                             "adm-1,admin\r\n"
                             "   \t\n"
                             "#not-a-token,admin\n"
                             "ing_2,ingest\n"
                             "adv.3,advertiser,42\n"
                             "adv.4,advertiser,0007\n"
                             "adv.5,advertiser,18446744073709551615\n"
                             "adv.6,advertiser,0");
    CHECK(is(a, "Bearer adm-1", AUTH_ADMIN, 0));
    CHECK(is(a, "Bearer ing_2", AUTH_INGEST, 0));
    CHECK(is(a, "Bearer adv.3", AUTH_ADVERTISER, 42));
    CHECK(is(a, "Bearer adv.4", AUTH_ADVERTISER, 7));
    CHECK(is(a, "Bearer adv.5", AUTH_ADVERTISER, UINT64_MAX));
    CHECK(is(a, "Bearer adv.6", AUTH_ADVERTISER, 0));
    CHECK(refused(a, "Bearer #not-a-token"));
    auth_free(a);
    auth_free(NULL);
}

static void test_scheme_forms(void)
{
    struct auth *a = load_ok("tok,admin\n");
    static const char *const good[] = {
        "Bearer tok",   "bearer tok",   "BEARER tok",
        "bEaReR tok",   "Bearer\ttok",  "Bearer   tok",
        "Bearer tok  ", "Bearer tok\t", "  Bearer tok",
    };
    static const char *const bad[] = {
        "",
        "tok",
        "Bearer",
        "Bearer ",
        "Bearer  \t ",
        "Bearertok",
        "Basic tok",
        "Token tok",
        "Bearer: tok",
        "Bearer tok x",
        "Bearer tok,x",
        "Bearer tok\n",
        "Bearer \"tok\"",
        "Bearer tok\r",
        "Bearer\ntok",
        "Bearers tok",
        "XBearer tok",
        "Bear tok",
    };
    for (size_t i = 0; i < ROWS(good); i++)
        if (!is(a, good[i], AUTH_ADMIN, 0))
            CHECK_FAIL_AT("refused \"%s\"", good[i]);
    for (size_t i = 0; i < ROWS(bad); i++)
        if (!refused(a, bad[i]))
            CHECK_FAIL_AT("accepted \"%s\"", bad[i]);
    CHECK(refused(a, NULL));
    CHECK(refused(NULL, "Bearer tok"));
    auth_free(a);
}

/* Every prefix, every suffix, each byte changed, one byte more: refused,
 * also when the configured tokens are prefixes of one another. */
static void test_near_misses(void)
{
    struct auth *a = load_ok("abcdefgh,admin\n"
                             "abcdefghi,advertiser,9\n"
                             "abc,ingest\n");
    static const struct {
        const char *token;
        enum auth_role role;
        uint64_t id;
    } tokens[] = {
        {"abcdefgh", AUTH_ADMIN, 0},
        {"abcdefghi", AUTH_ADVERTISER, 9},
        {"abc", AUTH_INGEST, 0},
    };
    char h[64];
    for (size_t t = 0; t < ROWS(tokens); t++)
        CHECK(is(a, strcat(strcpy(h, "Bearer "), tokens[t].token),
                 tokens[t].role, tokens[t].id));
    const char *tok = "abcdefghi";
    size_t len = strlen(tok);
    for (size_t n = 0; n < len; n++) {
        snprintf(h, sizeof h, "Bearer %.*s", (int)n, tok);
        if (n != 3 && n != 8 && !refused(a, h))
            CHECK_FAIL_AT("prefix accepted: %s", h);
        snprintf(h, sizeof h, "Bearer %s", tok + n + 1);
        if (!refused(a, h))
            CHECK_FAIL_AT("suffix accepted: %s", h);
        snprintf(h, sizeof h, "Bearer %s", tok);
        h[7 + n] ^= 0x01;
        if (!refused(a, h))
            CHECK_FAIL_AT("changed byte accepted: %s", h);
    }
    CHECK(refused(a, "Bearer abcdefghij"));
    CHECK(refused(a, "Bearer ABCDEFGH"));
    CHECK(refused(a, "Bearer abcdefgh\x01"));
    auth_free(a);
}

/* Tokens of 1 and 256 bytes; 257 presented bytes are refused. */
static void test_token_lengths(void)
{
    char file[600], h[600], tok[300];
    memset(tok, 'T', 256);
    tok[255] = 'z';
    tok[256] = '\0';
    snprintf(file, sizeof file, "x,ingest\n%s,advertiser,5\n", tok);
    struct auth *a = load_ok(file);
    CHECK(is(a, "Bearer x", AUTH_INGEST, 0));
    snprintf(h, sizeof h, "Bearer %s", tok);
    CHECK(is(a, h, AUTH_ADVERTISER, 5));
    snprintf(h, sizeof h, "Bearer %s  ", tok);
    CHECK(is(a, h, AUTH_ADVERTISER, 5));
    snprintf(h, sizeof h, "Bearer %sz", tok);
    CHECK(refused(a, h));
    snprintf(h, sizeof h, "Bearer %.255s", tok);
    CHECK(refused(a, h));
    auth_free(a);
}

/* Many tokens: each finds its own identity, wherever it is in the file. */
static void test_many_tokens(void)
{
    enum { N = 500 };
    static char file[N * 64];
    size_t used = 0;
    for (int i = 0; i < N; i++) {
        static const char *const roles[] = {"admin", "ingest", "advertiser"};
        used += (size_t)snprintf(file + used, sizeof file - used, "t%d-%x,%s%s",
                                 i, i * 2654435761u, roles[i % 3],
                                 i % 3 == 2 ? "," : "");
        if (i % 3 == 2)
            used += (size_t)snprintf(file + used, sizeof file - used, "%d",
                                     1000 + i);
        file[used++] = '\n';
    }
    file[used] = '\0';
    struct auth *a = load_ok(file);
    for (int i = 0; i < N; i++) {
        char h[64];
        snprintf(h, sizeof h, "Bearer t%d-%x", i, i * 2654435761u);
        if (!is(a, h, (enum auth_role)(i % 3),
                i % 3 == 2 ? (uint64_t)(1000 + i) : 0))
            CHECK_FAIL_AT("token %d: wrong identity", i);
    }
    CHECK(refused(a, "Bearer t500-0"));
    auth_free(a);
}

/* Lines 1-3 before each bad line (which is line 4). */
#define PRE "# tokens\r\ngood-1,admin\r\n\r\n"

static void test_errors(void)
{
    static const struct {
        struct text text;
        int line;
        const char *says;
    } rows[] = {
        {TEXT(PRE SECRET "\n"), 4, "expected token,role[,advertiser_id]"},
        {TEXT(PRE SECRET), 4, "found 1 comma-separated field"},
        {TEXT(PRE SECRET ",admin,1,2\n"), 4, "found 4"},
        {TEXT(PRE SECRET ",root\n"), 4, "unknown role"},
        {TEXT(PRE SECRET ",Admin\n"), 4, "unknown role"},
        {TEXT(PRE SECRET ",admin \n"), 4, "unknown role"},
        {TEXT(PRE SECRET ",\n"), 4, "unknown role"},
        {TEXT(PRE "admin," SECRET "\n"), 4, "unknown role"},
        {TEXT(PRE "ingest," SECRET ",1\n"), 4, "unknown role"},
        {TEXT(PRE SECRET ",advertiser\n"), 4, "needs an advertiser_id"},
        {TEXT(PRE SECRET ",admin,5\n"), 4, "role admin takes no"},
        {TEXT(PRE SECRET ",ingest,5\n"), 4, "role ingest takes no"},
        {TEXT(PRE SECRET ",advertiser,\n"), 4, "advertiser_id must be"},
        {TEXT(PRE SECRET ",advertiser,x1\n"), 4, "advertiser_id must be"},
        {TEXT(PRE SECRET ",advertiser,-1\n"), 4, "advertiser_id must be"},
        {TEXT(PRE SECRET ",advertiser, 1\n"), 4, "advertiser_id must be"},
        {TEXT(PRE SECRET ",advertiser,18446744073709551616\n"), 4,
         "advertiser_id must be"},
        {TEXT(PRE SECRET " x,admin\n"), 4, "the token must be"},
        {TEXT(PRE " " SECRET ",admin\n"), 4, "the token must be"},
        {TEXT(PRE SECRET "\t,admin\n"), 4, "the token must be"},
        {TEXT(PRE SECRET "\x7f,admin\n"), 4, "the token must be"},
        {TEXT(PRE SECRET "\xc3\xa9,admin\n"), 4, "the token must be"},
        {TEXT(PRE SECRET "\rx,admin\n"), 4, "the token must be"},
        {TEXT(PRE ",admin\n"), 4, "the token must be"},
        {TEXT(PRE SECRET "\0x,admin\n"), 4, "NUL byte"},
        {TEXT(PRE SECRET ",admin\0\n"), 4, "NUL byte"},
        {TEXT(PRE "x\n" SECRET ",admin\n"), 4, "expected token,role"},
        {TEXT(PRE SECRET ",admin\n"
                         "other,ingest\n" SECRET ",advertiser,4\n"),
         6, "duplicate token (first at line 4)"},
        {TEXT("good-1,admin\ngood-1,admin\n"), 2,
         "duplicate token (first at line 1)"},
        /* the first line that repeats a token, whatever the sort does */
        {TEXT("zz-" SECRET ",admin\na-" SECRET ",admin\nzz-" SECRET
              ",ingest\nzz-" SECRET ",admin\na-" SECRET ",ingest\n"),
         3, "duplicate token (first at line 1)"},
        {TEXT("a-" SECRET ",admin\nzz-" SECRET ",admin\nzz-" SECRET
              ",ingest\na-" SECRET ",ingest\na-" SECRET ",admin\n"),
         3, "duplicate token (first at line 2)"},
    };
    char err[CTRD_ERR_LEN], where[160];
    for (size_t i = 0; i < ROWS(rows); i++) {
        struct auth *a = NULL;
        int rc = load(rows[i].text.s, rows[i].text.len, &a, err);
        snprintf(where, sizeof where, "%s:%d: ", tokens_path, rows[i].line);
        if (rc != CTRD_EINVAL || a != NULL)
            CHECK_FAIL_AT("case %zu: rc %d, want %d", i, rc, CTRD_EINVAL);
        else if (strncmp(err, where, strlen(where)) != 0 ||
                 !strstr(err, rows[i].says))
            CHECK_FAIL_AT("case %zu: \"%s\", want \"%s...%s\"", i, err, where,
                          rows[i].says);
        if (strstr(err, SECRET) || strstr(err, "good-1"))
            CHECK_FAIL_AT("case %zu: the message shows a token: %s", i, err);
        auth_free(a);
    }
}

static void test_no_tokens(void)
{
    static const struct text rows[] = {
        TEXT(""),
        TEXT("\n\n"),
        TEXT("# only comments\r\n#x,admin\n"),
        TEXT(" \t\n"),
    };
    char err[CTRD_ERR_LEN], want[160];
    snprintf(want, sizeof want, "%s: no tokens", tokens_path);
    for (size_t i = 0; i < ROWS(rows); i++) {
        struct auth *a = NULL;
        CHECK_EQ_I64(load(rows[i].s, rows[i].len, &a, err), CTRD_EINVAL);
        CHECK(strncmp(err, want, strlen(want)) == 0);
        CHECK(a == NULL);
    }
}

static void test_missing_file(void)
{
    char err[CTRD_ERR_LEN], path[160];
    struct auth *a = NULL;
    snprintf(path, sizeof path, "%s/absent", tmp_dir);
    CHECK_EQ_I64(auth_load(path, &a, err), CTRD_ENOTFOUND);
    CHECK(strstr(err, path) != NULL);
    CHECK(a == NULL);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-auth-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(tokens_path, sizeof tokens_path, "%s/tokens", tmp_dir);
    RUN(test_roles_comments_crlf);
    RUN(test_scheme_forms);
    RUN(test_near_misses);
    RUN(test_token_lengths);
    RUN(test_many_tokens);
    RUN(test_errors);
    RUN(test_no_tokens);
    RUN(test_missing_file);
    unlink(tokens_path);
    rmdir(tmp_dir);
    return check_done();
}
