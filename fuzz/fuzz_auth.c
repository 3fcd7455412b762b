/* fuzz_auth: libFuzzer target for the tokens file and auth_check. The
 * input is a tokens file, optionally followed by a NUL byte and an
 * Authorization header value to try. The file is written to a memfd and
 * loaded through its /proc/self/fd path (the Makefile links every source
 * file into a fuzzer, so auth.c's statics cannot be included).
 * A rejected file must come with one of auth.c's messages, where only the
 * path and numbers vary: no token can leak into it. An accepted file is
 * read again here, naively, and auth_check must agree with a plain
 * linear search (memcmp) on: every token, its prefixes and extensions, the
 * scheme in other cases and spacings, and the header value of the input.
 *   make fuzz && ./build-fuzz/fuzz_auth -max_total_time=120 -max_len=4096 */
#include "fuzz.h"
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>


#define INPUT_MAX (1 << 16)
#define TOKENS_MAX (INPUT_MAX / 8) /* "t,admin\n" */

struct token {
    const char *s;
    size_t len;
    enum auth_role role;
    uint64_t advertiser_id;
};

static struct token tokens[TOKENS_MAX];
static size_t n_tokens;

/* Every message auth_load gives for a bad file, after "PATH:" and with each
 * run of digits written '#'. */
static const char *const messages[] = {
    "#: expected token,role[,advertiser_id], found # comma-separated field",
    "#: expected token,role[,advertiser_id], found # comma-separated fields",
    ("#: the token must be # to # printable ASCII bytes without spaces or "
     "commas"),
    "#: unknown role (expected admin, ingest or advertiser)",
    "#: role advertiser needs an advertiser_id (token,advertiser,ID)",
    "#: role admin takes no advertiser_id",
    "#: role ingest takes no advertiser_id",
    "#: advertiser_id must be a decimal number up to #",
    "#: duplicate token (first at line #)",
    "#: NUL byte in the line",
    " no tokens (lines token,role[,advertiser_id])",
};

static void check_message(const char *err, const char *path)
{
    char shape[CTRD_ERR_LEN];
    size_t n = 0, plen = strlen(path);

    REQUIRE(strncmp(err, path, plen) == 0 && err[plen] == ':');
    for (const char *p = err + plen + 1; *p; p++) {
        if (isdigit((unsigned char)*p) && n > 0 && shape[n - 1] == '#')
            continue;
        shape[n++] = isdigit((unsigned char)*p) ? '#' : *p;
    }
    shape[n] = '\0';
    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
        if (strcmp(shape, messages[i]) == 0)
            return;
    fprintf(stderr, "unexpected message: %s\n", err);
    abort();
}

/* Reads the tokens of an accepted file (the text is NUL-terminated). */
static void tokens_read(char *text)
{
    n_tokens = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (line[0] == '#' || strspn(line, " \t") == len)
            continue;
        char *role = strchr(line, ',') + 1, *id = strchr(role, ',');
        struct token *t = &tokens[n_tokens++];
        t->s = line;
        t->len = (size_t)(role - 1 - line);
        t->role = strncmp(role, "admin", 5) == 0    ? AUTH_ADMIN
                  : strncmp(role, "ingest", 6) == 0 ? AUTH_INGEST
                                                    : AUTH_ADVERTISER;
        t->advertiser_id = id ? strtoull(id + 1, NULL, 10) : 0;
    }
}

/* What auth_check should say of the token s[0..len), by linear search. */
static const struct token *token_find(const char *s, size_t len)
{
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i].len == len && memcmp(tokens[i].s, s, len) == 0)
            return &tokens[i];
    return NULL;
}

/* The same for a whole header value, parsed here from its grammar. */
static const struct token *header_find(const char *h)
{
    size_t n;
    h += strspn(h, " \t");
    if (strncasecmp(h, "bearer", 6) != 0 || !h[6] || !strchr(" \t", h[6]))
        return NULL;
    h += 6 + strspn(h + 6, " \t");
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < n; i++)
        if (h[i] < 0x21 || h[i] > 0x7e)
            return NULL;
    return token_find(h, n);
}

static void check_header(const struct auth *a, const char *h)
{
    const struct token *want = header_find(h);
    struct auth_identity who;
    int rc = auth_check(a, h, &who);

    REQUIRE(rc == (want ? 0 : CTRD_ENOTFOUND));
    if (want) {
        REQUIRE(who.role == want->role);
        REQUIRE(who.advertiser_id == want->advertiser_id);
    }
}

static void check_accepted(const struct auth *a, char *text, const char *h)
{
    static char header[2 * INPUT_MAX];

    tokens_read(text);
    REQUIRE(n_tokens > 0);
    for (size_t i = 0; i < n_tokens; i++) {
        const struct token *t = &tokens[i];
        REQUIRE(token_find(t->s, t->len) == t); /* no token twice */
        snprintf(header, sizeof header, "Bearer %.*s", (int)t->len, t->s);
        check_header(a, header);
        REQUIRE(header_find(header) == t);
        snprintf(header, sizeof header, " bEARER \t%.*s \t", (int)t->len, t->s);
        check_header(a, header);
        snprintf(header, sizeof header, "Bearer %.*s", (int)t->len - 1, t->s);
        check_header(a, header);
        snprintf(header, sizeof header, "Bearer %.*s~", (int)t->len, t->s);
        check_header(a, header);
        snprintf(header, sizeof header, "Bearer %.*s", (int)t->len - 1,
                 t->s + 1);
        check_header(a, header);
        snprintf(header, sizeof header, "Basic %.*s", (int)t->len, t->s);
        check_header(a, header);
    }
    if (h)
        check_header(a, h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64], text[INPUT_MAX + 1], header[INPUT_MAX + 1];
    char err[CTRD_ERR_LEN] = "";
    struct auth *a = NULL;
    const char *nul = memchr(data, '\0', size);
    size_t file_len = nul ? (size_t)(nul - (const char *)data) : size;

    if (size > INPUT_MAX)
        return 0;
    if (fd < 0) {
        fd = memfd_create("tokens", 0);
        REQUIRE(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    REQUIRE(pwrite(fd, data, file_len, 0) == (ssize_t)file_len);
    memcpy(text, data, file_len);
    text[file_len] = '\0';
    if (nul) {
        memcpy(header, nul + 1, size - file_len - 1);
        header[size - file_len - 1] = '\0';
    }
    int rc = auth_load(path, &a, err);
    if (rc == 0) {
        check_accepted(a, text, nul ? header : NULL);
        auth_free(a);
    } else {
        REQUIRE(rc == CTRD_EINVAL && a == NULL);
        check_message(err, path);
    }
    return 0;
}
