/* Unit tests of catalog (SPEC §1.4): owners and names of ads, quoted names
 * with commas and quotes, CRLF, a byte order mark, the ads of an advertiser
 * in ascending order, the advertisers one by one, unknown ads, every error with
 * its file:line, and a catalog of a million ads. */
#include "catalog.h"
#include "check.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROWS(t) (sizeof(t) / sizeof((t)[0]))
#define TEXT(lit)                                                              \
    {                                                                          \
        lit, sizeof lit - 1                                                    \
    }

struct text {
    const char *s;
    size_t len;
};

static char tmp_dir[64], ads_path[128];

static void write_file(const char *s, size_t len)
{
    FILE *f = fopen(ads_path, "wb");
    if (!f || fwrite(s, 1, len, f) != len || fclose(f) != 0) {
        perror(ads_path);
        exit(1);
    }
}

static int load(const char *s, size_t len, struct catalog **c, char *err)
{
    write_file(s, len);
    err[0] = '\0';
    return catalog_load(ads_path, c, err);
}

static struct catalog *load_ok(const char *s)
{
    char err[CTRD_ERR_LEN];
    struct catalog *c = NULL;
    int rc = load(s, strlen(s), &c, err);
    if (rc != 0)
        CHECK_FAIL_AT("catalog_load: %d %s", rc, err);
    return c;
}

/* The owner of ad_id, or UINT64_MAX - 1 when it is unknown. */
static uint64_t owner(const struct catalog *c, uint64_t ad_id)
{
    uint64_t advertiser_id = 12345;
    if (catalog_owner(c, ad_id, &advertiser_id) != 0)
        return UINT64_MAX - 1;
    return advertiser_id;
}

/* Whether the ads of advertiser_id are exactly want[0..n). */
static int ads_are(const struct catalog *c, uint64_t advertiser_id,
                   const uint64_t *want, size_t n)
{
    size_t got_n = 99;
    const uint64_t *got = catalog_ads_of(c, advertiser_id, &got_n);
    return got != NULL && got_n == n &&
           (n == 0 || memcmp(got, want, n * sizeof *want) == 0);
}

static void test_two_columns(void)
{
    struct catalog *c = load_ok("ad_id,advertiser_id\n"
                                "10,1\n"
                                "0,2\n"
                                "18446744073709551615,1\n"
                                "007,18446744073709551615\n");
    CHECK_EQ_U64(owner(c, 10), 1);
    CHECK_EQ_U64(owner(c, 0), 2);
    CHECK_EQ_U64(owner(c, UINT64_MAX), 1);
    CHECK_EQ_U64(owner(c, 7), UINT64_MAX);
    CHECK_EQ_U64(owner(c, 11), UINT64_MAX - 1);
    CHECK_EQ_U64(owner(c, 1), UINT64_MAX - 1);
    CHECK_EQ_STR(catalog_name(c, 10), "");
    CHECK_EQ_STR(catalog_name(c, 11), "");
    CHECK(ads_are(c, 1, (const uint64_t[]){10, UINT64_MAX}, 2));
    CHECK(ads_are(c, 2, (const uint64_t[]){0}, 1));
    CHECK(ads_are(c, UINT64_MAX, (const uint64_t[]){7}, 1));
    CHECK(ads_are(c, 0, NULL, 0));
    CHECK(ads_are(c, 3, NULL, 0));
    catalog_free(c);
    catalog_free(NULL);
}

static void test_names(void)
{
    struct catalog *c =
        load_ok("ad_id,advertiser_id,name\n"
                "1,10,\"Shoes, \"\"red\"\" and blue\"\n"
                "2,10,plain name\n"
                "3,11,\n"
                "4,11,\"\"\n"
                "\"5\",\"12\",\"x\"\n"
                "6,12,caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x9f\n"
                "7,12,  spaced  \n"
                "8,12,\"\"\"\"\n"
                "9,12,\",\"\n"
                "10,12,\"a\"\"\"\"b\"\n"
                "11,12,it's\n");
    CHECK_EQ_STR(catalog_name(c, 1), "Shoes, \"red\" and blue");
    CHECK_EQ_STR(catalog_name(c, 2), "plain name");
    CHECK_EQ_STR(catalog_name(c, 3), "");
    CHECK_EQ_STR(catalog_name(c, 4), "");
    CHECK_EQ_STR(catalog_name(c, 5), "x");
    CHECK_EQ_U64(owner(c, 5), 12);
    CHECK_EQ_STR(catalog_name(c, 6),
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x91\x9f");
    CHECK_EQ_STR(catalog_name(c, 7), "  spaced  ");
    CHECK_EQ_STR(catalog_name(c, 8), "\"");
    CHECK_EQ_STR(catalog_name(c, 9), ",");
    CHECK_EQ_STR(catalog_name(c, 10), "a\"\"b");
    CHECK_EQ_STR(catalog_name(c, 11), "it's");
    CHECK_EQ_STR(catalog_name(c, 12), "");
    CHECK(ads_are(c, 12, (const uint64_t[]){5, 6, 7, 8, 9, 10, 11}, 7));
    catalog_free(c);
}

/* A byte order mark, CRLF, empty lines (also before the header), quoted
 * header fields, no final line end. */
static void test_line_forms(void)
{
    struct catalog *c = load_ok("\xEF\xBB\xBF\r\n\n"
                                "\"ad_id\",advertiser_id,\"name\"\r\n"
                                "\r\n"
                                "1,2,\"one, two\"\r\n"
                                "\n"
                                "3,4,three");
    CHECK_EQ_U64(owner(c, 1), 2);
    CHECK_EQ_STR(catalog_name(c, 1), "one, two");
    CHECK_EQ_U64(owner(c, 3), 4);
    CHECK_EQ_STR(catalog_name(c, 3), "three");
    catalog_free(c);

    c = load_ok("ad_id,advertiser_id\r\n");
    CHECK_EQ_U64(owner(c, 0), UINT64_MAX - 1);
    CHECK(ads_are(c, 0, NULL, 0));
    catalog_free(c);
}

static void test_no_catalog(void)
{
    size_t n = 5;
    CHECK_EQ_I64(catalog_owner(NULL, 1, &(uint64_t){0}), CTRD_ENOTFOUND);
    CHECK_EQ_STR(catalog_name(NULL, 1), "");
    CHECK(catalog_ads_of(NULL, 1, &n) != NULL);
    CHECK_EQ_U64(n, 0);
    size_t cursor = 0;
    uint64_t adv;
    const uint64_t *ads;
    CHECK_EQ_I64(catalog_next_advertiser(NULL, &cursor, &adv, &ads, &n),
                 CTRD_ENOTFOUND);
}

/* Iterating the advertisers gives each once, ascending, with exactly its
 * ads as catalog_ads_of gives them; then CTRD_ENOTFOUND, again and again. */
static void test_next_advertiser(void)
{
    struct catalog *c = load_ok("ad_id,advertiser_id\n5,30\n1,2\n9,30\n"
                                "4,0\n7,2\n8,2\n");
    static const uint64_t want_adv[] = {0, 2, 30};
    static const size_t want_n[] = {1, 3, 2};
    size_t cursor = 0, n, i = 0;
    uint64_t adv;
    const uint64_t *ads;
    while (catalog_next_advertiser(c, &cursor, &adv, &ads, &n) == 0) {
        if (i >= ROWS(want_adv)) {
            CHECK_FAIL_AT("advertiser %" PRIu64 " after the last", adv);
            break;
        }
        CHECK_EQ_U64(adv, want_adv[i]);
        CHECK_EQ_U64(n, want_n[i]);
        CHECK(ads_are(c, adv, ads, n));
        i++;
    }
    CHECK_EQ_U64(i, ROWS(want_adv));
    CHECK_EQ_I64(catalog_next_advertiser(c, &cursor, &adv, &ads, &n),
                 CTRD_ENOTFOUND);
    catalog_free(c);
}

/* Ads listed in shuffled order come out ascending per advertiser; names
 * of every length survive being compacted. */
static void test_ads_of_order_and_names(void)
{
    enum { N = 5000, ADVERTISERS = 7 };
    static char file[N * 64];
    size_t used =
        (size_t)snprintf(file, sizeof file, "ad_id,advertiser_id,name\n");
    for (uint64_t i = 0; i < N; i++) {
        uint64_t ad = (i * 7919) % N; /* a permutation of 0..N-1 */
        used +=
            (size_t)snprintf(file + used, sizeof file - used,
                             "%" PRIu64 ",%" PRIu64 ",\"%.*s\"\"\"\n", ad,
                             ad % ADVERTISERS, (int)(ad % 13), "n,n,n,n,n,n,n");
    }
    struct catalog *c = load_ok(file);
    size_t total = 0;
    for (uint64_t adv = 0; adv < ADVERTISERS; adv++) {
        size_t n;
        const uint64_t *ads = catalog_ads_of(c, adv, &n);
        total += n;
        for (size_t k = 0; k < n; k++)
            if (ads[k] != adv + k * ADVERTISERS)
                CHECK_FAIL_AT("advertiser %" PRIu64 " ad %zu: %" PRIu64, adv, k,
                              ads[k]);
    }
    CHECK_EQ_U64(total, N);
    for (uint64_t ad = 0; ad < N; ad++) {
        char want[32];
        snprintf(want, sizeof want, "%.*s\"", (int)(ad % 13), "n,n,n,n,n,n,n");
        if (owner(c, ad) != ad % ADVERTISERS ||
            strcmp(catalog_name(c, ad), want) != 0)
            CHECK_FAIL_AT("ad %" PRIu64 ": owner %" PRIu64 " name \"%s\"", ad,
                          owner(c, ad), catalog_name(c, ad));
    }
    CHECK_EQ_U64(owner(c, N), UINT64_MAX - 1);
    catalog_free(c);
}

#define H2 "ad_id,advertiser_id\n"
#define H3 "ad_id,advertiser_id,name\n"

static void test_errors(void)
{
    static const struct {
        struct text text;
        int line; /* 0: the message names the file only */
        const char *says;
    } rows[] = {
        {TEXT(""), 0, "no header line"},
        {TEXT("\r\n\n"), 0, "no header line"},
        {TEXT("\xEF\xBB\xBF"), 0, "no header line"},
        {TEXT("ad,advertiser\n1,2\n"), 1, "the header must be"},
        {TEXT("\n1,2\n"), 2, "the header must be"},
        {TEXT("ad_id\n"), 1, "the header must be"},
        {TEXT("ad_id,advertiser_id,name,x\n"), 1, "the header must be"},
        {TEXT("advertiser_id,ad_id\n"), 1, "the header must be"},
        {TEXT("ad_id,advertiser_id,title\n"), 1, "the header must be"},
        {TEXT("AD_ID,ADVERTISER_ID\n"), 1, "the header must be"},
        {TEXT("ad_id, advertiser_id\n"), 1, "the header must be"},
        {TEXT("\xEF\xBB\xBF\xEF\xBB\xBF" H2), 1, "the header must be"},
        {TEXT("ad_id,\"advertiser_id\n"), 1, "unterminated quoted field"},
        {TEXT(H2 "1,2\n\n1,2,x\n"), 4, "3 fields, the header has 2"},
        {TEXT(H3 "1,2\n"), 2, "2 fields, the header has 3"},
        {TEXT(H3 "1\n"), 2, "1 field, the header has 3"},
        {TEXT(H3 "1,2,a,b\n"), 2, "4 fields, the header has 3"},
        {TEXT(H3 "1,2,\"a,b\",\n"), 2, "4 fields"},
        {TEXT(H2 "x,2\n"), 2, "ad_id must be a decimal number"},
        {TEXT(H2 ",2\n"), 2, "ad_id must be"},
        {TEXT(H2 "-1,2\n"), 2, "ad_id must be"},
        {TEXT(H2 "+1,2\n"), 2, "ad_id must be"},
        {TEXT(H2 " 1,2\n"), 2, "ad_id must be"},
        {TEXT(H2 "18446744073709551616,2\n"), 2, "ad_id must be"},
        {TEXT(H2 "\"1\"\"\",2\n"), 2, "ad_id must be"},
        {TEXT(H2 "1,2 \n"), 2, "advertiser_id must be"},
        {TEXT(H2 "1,\n"), 2, "advertiser_id must be"},
        {TEXT(H2 "1,2\r\r\n"), 2, "advertiser_id must be"},
        {TEXT(H2 "1,99999999999999999999\n"), 2, "advertiser_id must be"},
        {TEXT(H3 "1,2,\"abc\n"), 2, "unterminated quoted field"},
        {TEXT(H3 "1,2,\"a\nb\"\n"), 2, "unterminated quoted field"},
        {TEXT(H3 "1,2,\"abc\"\"\n"), 2, "unterminated quoted field"},
        {TEXT(H3 "1,2,\"abc\"x\n"), 2, "text after a closing quote"},
        {TEXT(H3 "1,2,\"abc\" \n"), 2, "text after a closing quote"},
        {TEXT(H3 "1,2,ab\"c\n"), 2, "quote inside an unquoted field"},
        {TEXT(H3 "1,2,abc\"\n"), 2, "quote inside an unquoted field"},
        {TEXT(H3 "1,2,a\tb\n"), 2, "control character"},
        {TEXT(H3 "1,2,a\rb\n"), 2, "control character"},
        {TEXT(H3 "1,2,a\x7f\n"), 2, "control character"},
        {TEXT(H3 "1,2,\xff\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,caf\xc3\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,\xc0\xaf\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,\xe0\x80\xaf\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,\xed\xa0\x80\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,\xf4\x90\x80\x80\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,\x80\n"), 2, "not valid UTF-8"},
        {TEXT(H3 "1,2,a\0b\n"), 2, "NUL byte"},
        {TEXT(H2 "1\0,2\n"), 2, "NUL byte"},
        {TEXT(H2 "5,1\n\n6,1\n5,2\n"), 5,
         "ad 5 is listed twice (first at "
         "line 2)"},
        {TEXT(H2 "5,1\n05,1\n"), 3,
         "ad 5 is listed twice (first at line "
         "2)"},
        /* every line is checked before duplicates are looked for */
        {TEXT(H2 "5,1\n5,1\nx,1\n"), 4, "ad_id must be"},
    };
    char err[CTRD_ERR_LEN], where[160];
    for (size_t i = 0; i < ROWS(rows); i++) {
        struct catalog *c = NULL;
        int rc = load(rows[i].text.s, rows[i].text.len, &c, err);
        if (rows[i].line)
            snprintf(where, sizeof where, "%s:%d: ", ads_path, rows[i].line);
        else
            snprintf(where, sizeof where, "%s: ", ads_path);
        if (rc != CTRD_EINVAL || c != NULL)
            CHECK_FAIL_AT("case %zu: rc %d, want %d", i, rc, CTRD_EINVAL);
        else if (strncmp(err, where, strlen(where)) != 0 ||
                 !strstr(err, rows[i].says))
            CHECK_FAIL_AT("case %zu: \"%s\", want \"%s...%s\"", i, err, where,
                          rows[i].says);
        catalog_free(c);
    }
}

/* An ad listed twice far apart. */
static void test_duplicate_far_apart(void)
{
    enum { N = 3000 };
    static char file[N * 16];
    char err[CTRD_ERR_LEN], want[200];
    struct catalog *c = NULL;
    size_t used = (size_t)snprintf(file, sizeof file, H2);
    for (int i = 0; i < N; i++)
        used += (size_t)snprintf(file + used, sizeof file - used, "%d,1\n",
                                 i < N - 1 ? i : 17);
    CHECK_EQ_I64(load(file, used, &c, err), CTRD_EINVAL);
    snprintf(want, sizeof want,
             "%s:%d: ad 17 is listed twice (first at line 19)", ads_path,
             N + 1);
    CHECK_EQ_STR(err, want);
}

static void test_missing_file(void)
{
    char err[CTRD_ERR_LEN], path[160];
    struct catalog *c = NULL;
    snprintf(path, sizeof path, "%s/absent.csv", tmp_dir);
    CHECK_EQ_I64(catalog_load(path, &c, err), CTRD_ENOTFOUND);
    CHECK(strstr(err, path) != NULL);
    CHECK(c == NULL);
}

/* A million ads from 1000 advertisers, in scrambled order (the load time
 * is printed, not asserted). */
static void test_million_ads(void)
{
    enum { N = 1000000, ADVERTISERS = 1000 };
    const uint64_t mul = UINT64_C(0x9E3779B97F4A7C15); /* odd: a bijection */
    FILE *f = fopen(ads_path, "wb");
    if (!f) {
        perror(ads_path);
        exit(1);
    }
    fputs("ad_id,advertiser_id,name\n", f);
    for (uint64_t i = 0; i < N; i++) {
        fprintf(f, "%" PRIu64 ",%" PRIu64 ",", i * mul, i % ADVERTISERS);
        if (i % 4 == 0)
            fprintf(f, "\"ad %" PRIu64 ", \"\"big\"\"\"", i);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        perror(ads_path);
        exit(1);
    }

    char err[CTRD_ERR_LEN];
    struct catalog *c = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = catalog_load(ads_path, &c, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_EQ_I64(rc, 0);
    if (rc != 0)
        return;
    printf("# %d ads loaded in %.0f ms\n", N,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

    size_t total = 0;
    for (uint64_t adv = 0; adv < ADVERTISERS; adv++) {
        size_t n;
        const uint64_t *ads = catalog_ads_of(c, adv, &n);
        total += n;
        for (size_t k = 1; k < n; k++)
            if (ads[k - 1] >= ads[k])
                CHECK_FAIL_AT("advertiser %" PRIu64 ": not ascending", adv);
        for (size_t k = 0; k < n; k++)
            if ((ads[k] * UINT64_C(0xF1DE83E19937733D)) % ADVERTISERS != adv)
                CHECK_FAIL_AT("advertiser %" PRIu64 ": foreign ad", adv);
    }
    CHECK_EQ_U64(total, N);
    for (uint64_t i = 0; i < N; i += 997) {
        char want[64] = "";
        if (i % 4 == 0)
            snprintf(want, sizeof want, "ad %" PRIu64 ", \"big\"", i);
        CHECK_EQ_U64(owner(c, i * mul), i % ADVERTISERS);
        CHECK_EQ_STR(catalog_name(c, i * mul), want);
    }
    catalog_free(c);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-catalog-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(ads_path, sizeof ads_path, "%s/ads.csv", tmp_dir);
    RUN(test_two_columns);
    RUN(test_names);
    RUN(test_line_forms);
    RUN(test_no_catalog);
    RUN(test_next_advertiser);
    RUN(test_ads_of_order_and_names);
    RUN(test_errors);
    RUN(test_duplicate_far_apart);
    RUN(test_missing_file);
    RUN(test_million_ads);
    unlink(ads_path);
    rmdir(tmp_dir);
    return check_done();
}
