/* Unit tests of adview: totals, [from, to) by query minute, every sort
 * order with ties broken by term bytes, the JSON and CSV text, and counts
 * read from a spill file (and its damage reported). */
#include "check.h"
#include "adview.h"
#include "testfs.h"

#include <stdlib.h>
#include <unistd.h>

#define MIN_MS INT64_C(60000)

static char tmp_dir[64];
static struct terms *terms;
static struct countmap *cm;

struct term_row {
    const char *term;
    uint32_t len;
};

/* Terms in id order. */
static const struct term_row term_rows[] = {
    {"b", 1},     {"a", 1},         {"c,d\"e", 5},
    {" lead", 5}, {"z", 1},         {"\xc3\xa9", 2}, /* é: sorts after ASCII */
    {"ab", 2},    {"q\"\\\x01", 4},
};
enum { B, A, CDE, LEAD, Z, E_ACUTE, AB, ESC };

/* Buckets of ad 7 (and one of ad 8 that must stay out of ad 7's view). */
static const struct {
    uint64_t ad;
    uint32_t term, minute;
    uint64_t impressions, clicks;
} buckets[] = {
    {7, B, 1000, 10, 1},      {7, B, 1001, 10, 2},  {7, A, 1000, 20, 3},
    {7, CDE, 1002, 10, 3},    {7, LEAD, 999, 5, 0}, {7, Z, 1001, 40, 1},
    {7, E_ACUTE, 1000, 5, 0}, {7, AB, 1003, 1, 1},  {8, A, 1000, 100, 50},
    {9, A, 1000, 2, 1},       {9, A, 1001, 1, 0},   {9, ESC, 1000, 1, 0},
};

static int setup(void)
{
    char err[CTRD_ERR_LEN];
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-adview-XXXXXX");
    if (!mkdtemp(tmp_dir) || terms_open(tmp_dir, 0, &terms, err) != 0 ||
        cm_create(&cm) != 0)
        return -1;
    for (size_t i = 0; i < sizeof term_rows / sizeof term_rows[0]; i++) {
        uint32_t id;
        if (terms_intern(terms, term_rows[i].term, term_rows[i].len, &id) ||
            id != i)
            return -1;
    }
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++) {
        if (cm_add(cm, buckets[i].ad, buckets[i].term, buckets[i].minute,
                   buckets[i].impressions, buckets[i].clicks, NULL) != 0)
            return -1;
    }
    return 0;
}

/* Checks the term order of a view against want[0..n). */
static void check_order(const struct adview *v, const int *want, size_t n,
                        const char *what)
{
    int same = v->n_rows == n;
    for (size_t i = 0; same && i < n; i++)
        same = v->rows[i].term_id == (uint32_t)want[i];
    if (same)
        return;
    char got[128] = "", exp[128] = "";
    for (size_t i = 0; i < v->n_rows && i < 16; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%u ",
                 v->rows[i].term_id);
    for (size_t i = 0; i < n; i++)
        snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
    CHECK_FAIL_AT("%s: term ids %s, want %s", what, got, exp);
}

static void test_totals_and_rows(void)
{
    struct adview v;
    CHECK_EQ_I64(adview_build(cm, terms, 7, INT64_MIN, INT64_MAX, ADVIEW_TERM,
                              1, SIZE_MAX, &v, NULL),
                 0);
    CHECK_EQ_U64(v.ad_id, 7);
    CHECK_EQ_U64(v.impressions, 20 + 20 + 10 + 5 + 40 + 5 + 1);
    CHECK_EQ_U64(v.clicks, 3 + 3 + 3 + 0 + 1 + 0 + 1);
    CHECK_EQ_U64(v.n_rows, 7); /* "b" of two minutes is one row */
    for (size_t i = 0; i < v.n_rows; i++) {
        if (v.rows[i].term_id == B)
            CHECK(v.rows[i].impressions == 20 && v.rows[i].clicks == 3);
        if (v.rows[i].term_id == Z)
            CHECK(v.rows[i].impressions == 40 && v.rows[i].clicks == 1);
    }
    adview_free(&v);
    adview_free(&v); /* twice is harmless */
    /* An ad never counted: an empty table. */
    CHECK_EQ_I64(adview_build(cm, terms, 12345, INT64_MIN, INT64_MAX,
                              ADVIEW_IMPRESSIONS, 0, SIZE_MAX, &v, NULL),
                 0);
    CHECK_EQ_U64(v.n_rows, 0);
    CHECK_EQ_U64(v.impressions, 0);
    CHECK_EQ_U64(v.clicks, 0);
    adview_free(&v);
}

static void test_range(void)
{
    static const struct {
        int64_t from, to;
        uint64_t impressions, clicks, rows;
    } rows[] = {
        {1000 * MIN_MS, 1002 * MIN_MS, 85, 7, 4},      /* minutes 1000, 1001 */
        {1000 * MIN_MS + 1, 1002 * MIN_MS, 50, 3, 2},  /* 1001 only */
        {1000 * MIN_MS, 1002 * MIN_MS + 1, 95, 10, 5}, /* and 1002 */
        {999 * MIN_MS, 1000 * MIN_MS, 5, 0, 1},
        {INT64_MIN, 1000 * MIN_MS, 5, 0, 1},
        {1003 * MIN_MS, INT64_MAX, 1, 1, 1},
        {1004 * MIN_MS, INT64_MAX, 0, 0, 0},
        {1001 * MIN_MS, 1001 * MIN_MS, 0, 0, 0}, /* empty range */
        {0, INT64_MAX, 101, 11, 7},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct adview v;
        CHECK_EQ_I64(adview_build(cm, terms, 7, rows[i].from, rows[i].to,
                                  ADVIEW_IMPRESSIONS, 0, SIZE_MAX, &v, NULL),
                     0);
        if (v.impressions != rows[i].impressions ||
            v.clicks != rows[i].clicks || v.n_rows != rows[i].rows)
            CHECK_FAIL_AT("range %zu: %llu/%llu in %zu rows, want %llu/%llu "
                          "in %llu",
                          i, (unsigned long long)v.impressions,
                          (unsigned long long)v.clicks, v.n_rows,
                          (unsigned long long)rows[i].impressions,
                          (unsigned long long)rows[i].clicks,
                          (unsigned long long)rows[i].rows);
        CHECK_EQ_I64(v.from_ms, rows[i].from);
        CHECK_EQ_I64(v.to_ms, rows[i].to);
        adview_free(&v);
    }
}

static void test_sort_orders(void)
{
    static const struct {
        enum adview_sort sort;
        int ascending;
        int want[7];
        const char *what;
    } rows[] = {
        {ADVIEW_IMPRESSIONS,
         0,
         {Z, A, B, CDE, LEAD, E_ACUTE, AB},
         "impressions desc"},
        {ADVIEW_IMPRESSIONS,
         1,
         {AB, LEAD, E_ACUTE, CDE, A, B, Z},
         "impressions asc"},
        {ADVIEW_CLICKS, 0, {A, B, CDE, AB, Z, LEAD, E_ACUTE}, "clicks desc"},
        {ADVIEW_CLICKS, 1, {LEAD, E_ACUTE, AB, Z, A, B, CDE}, "clicks asc"},
        {ADVIEW_CTR, 0, {AB, CDE, A, B, Z, LEAD, E_ACUTE}, "ctr desc"},
        {ADVIEW_CTR, 1, {LEAD, E_ACUTE, Z, A, B, CDE, AB}, "ctr asc"},
        {ADVIEW_TERM, 1, {LEAD, A, AB, B, CDE, Z, E_ACUTE}, "term asc"},
        {ADVIEW_TERM, 0, {E_ACUTE, Z, CDE, B, AB, A, LEAD}, "term desc"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct adview v;
        CHECK_EQ_I64(adview_build(cm, terms, 7, INT64_MIN, INT64_MAX,
                                  rows[i].sort, rows[i].ascending, SIZE_MAX, &v,
                                  NULL),
                     0);
        check_order(&v, rows[i].want, 7, rows[i].what);
        adview_free(&v);
    }
}

/* adview_write_json into a memory stream; returns the text (malloc'd). */
static char *json_of(const struct adview *v, int64_t as_of, size_t offset,
                     size_t limit)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    adview_write_json(f, v, terms, as_of, offset, limit);
    fclose(f);
    return text;
}

static void test_json(void)
{
    struct adview v;
    CHECK_EQ_I64(adview_build(cm, terms, 9, INT64_MIN, INT64_MAX,
                              ADVIEW_IMPRESSIONS, 0, SIZE_MAX, &v, NULL),
                 0);
    char *all = json_of(&v, 123, 0, SIZE_MAX);
    CHECK_EQ_STR(all,
                 "{\"ad_id\":\"9\",\"from\":null,\"to\":null,\"as_of\":123,"
                 "\"total_terms\":2,\"totals\":{\"impressions\":4,"
                 "\"clicks\":1,\"ctr\":0.250000},\"terms\":["
                 "{\"term\":\"a\",\"impressions\":3,\"clicks\":1,"
                 "\"ctr\":0.333333},"
                 "{\"term\":\"q\\\"\\\\\\u0001\",\"impressions\":1,"
                 "\"clicks\":0,\"ctr\":0.000000}]}\n");
    free(all);
    /* A page: offset 1, limit 1; totals and total_terms stay whole. */
    char *page = json_of(&v, -1, 1, 1);
    CHECK_EQ_STR(page,
                 "{\"ad_id\":\"9\",\"from\":null,\"to\":null,\"as_of\":null,"
                 "\"total_terms\":2,\"totals\":{\"impressions\":4,"
                 "\"clicks\":1,\"ctr\":0.250000},\"terms\":["
                 "{\"term\":\"q\\\"\\\\\\u0001\",\"impressions\":1,"
                 "\"clicks\":0,\"ctr\":0.000000}]}\n");
    free(page);
    char *past = json_of(&v, 5, 2, 10);
    CHECK(past && strstr(past, "\"terms\":[]}\n") != NULL);
    free(past);
    adview_free(&v);
    /* A range and a 64-bit ad id; nothing counted: ctr 0. */
    CHECK_EQ_I64(adview_build(cm, terms, UINT64_MAX, 60000000, 120000000,
                              ADVIEW_CTR, 0, SIZE_MAX, &v, NULL),
                 0);
    char *none = json_of(&v, 0, 0, 100);
    CHECK_EQ_STR(none, "{\"ad_id\":\"18446744073709551615\",\"from\":60000000,"
                       "\"to\":120000000,\"as_of\":0,\"total_terms\":0,"
                       "\"totals\":{\"impressions\":0,\"clicks\":0,"
                       "\"ctr\":0.000000},\"terms\":[]}\n");
    free(none);
    adview_free(&v);
}

static void test_csv_and_table(void)
{
    struct adview v;
    CHECK_EQ_I64(adview_build(cm, terms, 7, INT64_MIN, INT64_MAX, ADVIEW_TERM,
                              1, SIZE_MAX, &v, NULL),
                 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    adview_write_csv_rows(f, &v, terms, 5);
    fclose(f);
    /* Quoted: a leading space; a comma and a quote (doubled). */
    CHECK_EQ_STR(text, "7,\" lead\",5,0,0.000000\n"
                       "7,a,20,3,0.150000\n"
                       "7,ab,1,1,1.000000\n"
                       "7,b,20,3,0.150000\n"
                       "7,\"c,d\"\"e\",10,3,0.300000\n");
    free(text);
    adview_free(&v);
    CHECK_EQ_I64(adview_build(cm, terms, 9, INT64_MIN, INT64_MAX,
                              ADVIEW_IMPRESSIONS, 0, SIZE_MAX, &v, NULL),
                 0);
    text = NULL;
    f = open_memstream(&text, &len);
    adview_write_table(f, &v, terms, 1);
    fclose(f);
    CHECK_EQ_STR(text, "ad 9: 4 impressions, 1 clicks, CTR 25.00%, 2 terms\n"
                       " impressions   clicks      ctr  term\n"
                       "           3        1   33.33%  a\n");
    free(text);
    adview_free(&v);
}

/* A page of the table (keep rows sorted, the rest left unsorted) starts
 * exactly like the fully sorted table, in every order. */
static void test_partial_sort_matches_full(void)
{
    for (int sort = ADVIEW_IMPRESSIONS; sort <= ADVIEW_TERM; sort++) {
        for (int asc = 0; asc < 2; asc++) {
            for (size_t keep = 0; keep <= 8; keep++) {
                struct adview full, page;
                CHECK_EQ_I64(adview_build(cm, terms, 7, INT64_MIN, INT64_MAX,
                                          sort, asc, SIZE_MAX, &full, NULL),
                             0);
                CHECK_EQ_I64(adview_build(cm, terms, 7, INT64_MIN, INT64_MAX,
                                          sort, asc, keep, &page, NULL),
                             0);
                CHECK_EQ_U64(page.n_rows, full.n_rows);
                CHECK_EQ_U64(page.n_sorted,
                             keep < full.n_rows ? keep : full.n_rows);
                for (size_t i = 0; i < page.n_sorted; i++)
                    CHECK_EQ_U64(page.rows[i].term_id, full.rows[i].term_id);
                adview_free(&full);
                adview_free(&page);
            }
        }
    }
}

/* The series of ad 7 by minute over [from_ms, to_ms) as JSON text (NULL
 * when it fails: then nothing was written). */
static char *series_of(const struct countmap *m, int64_t from_ms, int64_t to_ms,
                       char *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc = adview_write_series(f, m, 7, from_ms, to_ms, MIN_MS, "1m", NULL,
                                 -1, err);
    fclose(f);
    if (rc != 0) {
        CHECK_EQ_U64(len, 0);
        free(text);
        return NULL;
    }
    return text;
}

/* The buckets in a map whose cold minutes spilled: the same table and
 * series; once the spill file is damaged, the reads that need it fail with
 * the spill file's message, and the others go on. */
static void test_spilled_counts(void)
{
    char err[CTRD_ERR_LEN];
    struct countmap *sp;
    CHECK_EQ_I64(cm_create(&sp), 0);
    CHECK_EQ_I64(cm_spill_open(sp, tmp_dir, 0, err), 0);
    for (size_t i = 0; i < sizeof buckets / sizeof buckets[0]; i++)
        CHECK_EQ_I64(cm_add(sp, buckets[i].ad, buckets[i].term,
                            buckets[i].minute, buckets[i].impressions,
                            buckets[i].clicks, NULL),
                     0);
    cm_mark_clean(sp);
    CHECK_EQ_I64(cm_spill(sp, 0, err), 0);
    struct cm_spill_stats st;
    cm_spill_stats(sp, &st);
    CHECK(st.spilled_groups >= 4); /* ad 7's minutes 999 to 1002 */
    /* [999, 1003) cuts its hour: the minutes are read. */
    int64_t from = 999 * MIN_MS, to = 1003 * MIN_MS;
    struct adview v, w;
    CHECK_EQ_I64(
        adview_build(cm, terms, 7, from, to, ADVIEW_TERM, 0, SIZE_MAX, &v, err),
        0);
    CHECK_EQ_I64(
        adview_build(sp, terms, 7, from, to, ADVIEW_TERM, 0, SIZE_MAX, &w, err),
        0);
    char *want = json_of(&v, 0, 0, SIZE_MAX),
         *got = json_of(&w, 0, 0, SIZE_MAX);
    CHECK_EQ_STR(got, want);
    free(want);
    free(got);
    adview_free(&v);
    adview_free(&w);
    want = series_of(cm, from, to, err);
    got = series_of(sp, from, to, err);
    CHECK(want && got && strcmp(want, got) == 0);
    free(want);
    free(got);

    int spill_fd = -1;
    CHECK_EQ_I64(testfs_unnamed_files(tmp_dir, &spill_fd), 1);
    CHECK_EQ_I64(ftruncate(spill_fd, 0), 0);
    const char *damage = "counts.spill: offset ";
    err[0] = '\0';
    CHECK_EQ_I64(
        adview_build(sp, terms, 7, from, to, ADVIEW_TERM, 0, SIZE_MAX, &w, err),
        CTRD_ECORRUPT);
    CHECK(strncmp(err, damage, strlen(damage)) == 0 &&
          strstr(err, ": block cut short"));
    CHECK(w.rows == NULL);
    uint64_t imps, clicks;
    err[0] = '\0';
    CHECK_EQ_I64(adview_totals(sp, 7, from, to, &imps, &clicks, err),
                 CTRD_ECORRUPT);
    CHECK(strncmp(err, damage, strlen(damage)) == 0);
    err[0] = '\0';
    CHECK(series_of(sp, from, to, err) == NULL);
    CHECK(strncmp(err, damage, strlen(damage)) == 0);
    /* Whole days come from the day level, in RAM; ad 8 has one minute. */
    CHECK_EQ_I64(
        adview_totals(sp, 7, INT64_MIN, INT64_MAX, &imps, &clicks, err), 0);
    CHECK_EQ_U64(imps, 101);
    CHECK_EQ_I64(adview_totals(sp, 8, from, to, &imps, &clicks, err), 0);
    CHECK_EQ_U64(imps, 100);
    cm_free(sp);
}

int main(void)
{
    if (setup() != 0) {
        fprintf(stderr, "setup failed\n");
        return 1;
    }
    RUN(test_totals_and_rows);
    RUN(test_range);
    RUN(test_sort_orders);
    RUN(test_json);
    RUN(test_csv_and_table);
    RUN(test_partial_sort_matches_full);
    RUN(test_spilled_counts);
    cm_free(cm);
    terms_close(terms);
    rmdir(tmp_dir);
    return check_done();
}
