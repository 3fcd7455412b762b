/* Unit tests of metrics: the exact exposition text of a small registry,
 * number formatting, histogram bucket boundaries (le = less or equal),
 * rejected names, labels and bounds, gauge_fn, and exact totals from
 * concurrent updates while the registry is being written.
 *
 * `test_metrics --dump` runs no test: it writes the exposition of a
 * registry shaped like the one `ctrd serve` exports (the names that
 * deploy/prometheus/alerts.yml relies on) to stdout, for
 * tests/e2e/test_promtool.sh to feed to `promtool check metrics`. */
#include "check.h"
#include "cli.h"
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The whole exposition of m as a malloc'd string. */
static char *expose_all(const struct metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    metrics_write(m, f);
    fclose(f);
    return text;
}

/* The registry's part of the exposition: what comes before the process's
 * own metrics, which always follow it. */
static char *expose(const struct metrics *m)
{
    char *text = expose_all(m);
    char *own = text ? strstr(text, "# HELP ctrd_build_info ") : NULL;
    CHECK(own != NULL);
    if (own)
        *own = '\0';
    return text;
}

static double fn_calls_value(void *arg)
{
    int *calls = arg;
    (*calls)++;
    return 0.25;
}

static void test_exposition_exact(void)
{
    static const double bounds[] = {0.25, 0.5, 1};
    int calls = 0;
    struct metrics *m = metrics_create();
    struct metric *ok =
        metrics_counter(m, "ctrd_records_total", "Records by result.",
                        "kind=\"query\",result=\"accepted\"");
    struct metric *lag = metrics_gauge(
        m, "ctrd_lag_seconds", "Lag.\nSecond line, a \\ backslash.", NULL);
    struct metric *rej = metrics_counter(m, "ctrd_records_total",
                                         "not printed: the first HELP wins",
                                         "kind=\"query\",result=\"rejected\"");
    struct metric *h = metrics_histogram(m, "ctrd_latency_seconds", "Latency.",
                                         "endpoint=\"terms\"", bounds, 3);
    struct metric *fn = metrics_gauge_fn(m, "ctrd_lag_seconds", "",
                                         "shard=\"1\"", fn_calls_value, &calls);
    struct metric *esc = metrics_counter(m, "ctrd_rejects_total", NULL,
                                         "reason=\"a\\\"b\\\\c\\nd\"");
    CHECK(ok && lag && rej && h && fn && esc);
    metric_add(ok, 5);
    metric_add(ok, UINT64_C(10000000000));
    metric_add(rej, 2);
    metric_set(lag, 1.5);
    metric_observe(h, 0.125);
    metric_observe(h, 0.5);
    metric_observe(h, 4);
    char *text = expose(m);
    CHECK_EQ_STR(
        text,
        "# HELP ctrd_records_total Records by result.\n"
        "# TYPE ctrd_records_total counter\n"
        "ctrd_records_total{kind=\"query\",result=\"accepted\"} 10000000005\n"
        "ctrd_records_total{kind=\"query\",result=\"rejected\"} 2\n"
        "# HELP ctrd_lag_seconds Lag.\\nSecond line, a \\\\ backslash.\n"
        "# TYPE ctrd_lag_seconds gauge\n"
        "ctrd_lag_seconds 1.5\n"
        "ctrd_lag_seconds{shard=\"1\"} 0.25\n"
        "# HELP ctrd_latency_seconds Latency.\n"
        "# TYPE ctrd_latency_seconds histogram\n"
        "ctrd_latency_seconds_bucket{endpoint=\"terms\",le=\"0.25\"} 1\n"
        "ctrd_latency_seconds_bucket{endpoint=\"terms\",le=\"0.5\"} 2\n"
        "ctrd_latency_seconds_bucket{endpoint=\"terms\",le=\"1\"} 2\n"
        "ctrd_latency_seconds_bucket{endpoint=\"terms\",le=\"+Inf\"} 3\n"
        "ctrd_latency_seconds_sum{endpoint=\"terms\"} 4.625\n"
        "ctrd_latency_seconds_count{endpoint=\"terms\"} 3\n"
        "# HELP ctrd_rejects_total \n"
        "# TYPE ctrd_rejects_total counter\n"
        "ctrd_rejects_total{reason=\"a\\\"b\\\\c\\nd\"} 0\n");
    CHECK_EQ_I64(calls, 1);
    free(text);
    metrics_free(m);
}

/* Every double prints in its shortest exact form, Prometheus spelling for
 * the special values. */
/* A table of counters: each created into its slot, in order; a name
 * taken already fails the call. */
static void test_counter_table(void)
{
    struct metrics *m = metrics_create();
    struct metric *a = NULL, *b = NULL, *c = NULL;
    const struct metrics_counter_def defs[] = {
        {&a, "t_a_total", "A."},
        {&b, "t_b_total", "B."},
    };
    CHECK(metrics_counters(m, defs, 2) == 0);
    CHECK(a != NULL && b != NULL && a != b);
    metric_add(b, 3);
    char *text = expose(m);
    CHECK_EQ_STR(text, "# HELP t_a_total A.\n# TYPE t_a_total counter\n"
                       "t_a_total 0\n"
                       "# HELP t_b_total B.\n# TYPE t_b_total counter\n"
                       "t_b_total 3\n");
    free(text);
    const struct metrics_counter_def again[] = {{&c, "t_a_total", "A."}};
    CHECK(metrics_counters(m, again, 1) == CTRD_ENOMEM);
    CHECK(c == NULL);
    metrics_free(m);
}

static void test_double_format(void)
{
    static const struct {
        double v;
        const char *text;
    } rows[] = {
        {0, "0"},
        {-0.0, "-0"},
        {1, "1"},
        {-1, "-1"},
        {0.1, "0.1"},
        {0.05, "0.05"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {0.000025, "2.5e-05"},
        {123456789, "123456789"},
        {9007199254740993.0, "9007199254740992"}, /* 2^53 + 1 rounds */
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {0.1 + 0.2, "0.30000000000000004"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct metrics *m = metrics_create();
        metric_set(metrics_gauge(m, "g", "", NULL), rows[i].v);
        char *text = expose(m);
        const char *value = strstr(text, "\ng ") + 3;
        size_t len = strcspn(value, "\n");
        CHECK_EQ_MEM(value, len, rows[i].text);
        if (isfinite(rows[i].v))
            CHECK(strtod(value, NULL) == rows[i].v);
        free(text);
        metrics_free(m);
    }
}

/* Bucket i holds values in (bounds[i-1], bounds[i]]: a value equal to a
 * bound counts in that bound's bucket; buckets print cumulatively; NaN is
 * dropped; a histogram without labels prints only le. */
static void test_histogram_boundaries(void)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct metrics *m = metrics_create();
    struct metric *h = metrics_histogram(m, "h_seconds", "h", NULL, bounds, 3);
    struct metric *no_bounds =
        metrics_histogram(m, "i_seconds", "i", NULL, NULL, 0);
    CHECK(h && no_bounds);
    metric_observe(h, -1);              /* le 0.001 */
    metric_observe(h, 0.001);           /* le 0.001: equal to the bound */
    metric_observe(h, 0.0010000000001); /* le 0.01 */
    metric_observe(h, 0.01);            /* le 0.01 */
    metric_observe(h, 0.1);             /* le 0.1 */
    metric_observe(h, 0.1000000000001); /* +Inf */
    metric_observe(h, INFINITY);        /* +Inf */
    metric_observe(h, NAN);             /* dropped */
    metric_observe(no_bounds, 2);
    char *text = expose(m);
    CHECK_EQ_STR(text, "# HELP h_seconds h\n"
                       "# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{le=\"0.001\"} 2\n"
                       "h_seconds_bucket{le=\"0.01\"} 4\n"
                       "h_seconds_bucket{le=\"0.1\"} 5\n"
                       "h_seconds_bucket{le=\"+Inf\"} 7\n"
                       "h_seconds_sum +Inf\n"
                       "h_seconds_count 7\n"
                       "# HELP i_seconds i\n"
                       "# TYPE i_seconds histogram\n"
                       "i_seconds_bucket{le=\"+Inf\"} 1\n"
                       "i_seconds_sum 2\n"
                       "i_seconds_count 1\n");
    free(text);
    metrics_free(m);
}

static void test_invalid_rejected(void)
{
    static const char *const bad_names[] = {
        "", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9", "a\n",
    };
    static const char *const bad_labels[] = {
        "a",
        "a=b",
        "a=\"b",
        "a=\"b\",",
        ",a=\"b\"",
        "a=\"b\"c=\"d\"",
        "a =\"b\"",
        "a= \"b\"",
        "a=\"b\" ",
        "__a=\"b\"",
        "1a=\"b\"",
        "a:b=\"c\"",
        "a=\"b\",a=\"c\"",
        "a=\"\\x\"",
        "a=\"b\\\"",
        "a=\"raw\nnewline\"",
        "a=\"b\",,c=\"d\"",
        "a1=\"\",a2=\"\",a3=\"\",a4=\"\",a5=\"\",a6=\"\",a7=\"\",a8=\"\","
        "a9=\"\",a10=\"\",a11=\"\",a12=\"\",a13=\"\",a14=\"\",a15=\"\","
        "a16=\"\",a17=\"\"",
    };
    static const double unsorted[] = {1, 0.5}, equal[] = {1, 1},
                        nan_bound[] = {NAN}, inf_bound[] = {1, INFINITY};
    struct metrics *m = metrics_create();
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        if (metrics_counter(m, bad_names[i], "", NULL))
            CHECK_FAIL_AT("name \"%s\" accepted", bad_names[i]);
    }
    for (size_t i = 0; i < sizeof bad_labels / sizeof bad_labels[0]; i++) {
        if (metrics_counter(m, "c_total", "", bad_labels[i]))
            CHECK_FAIL_AT("labels '%s' accepted", bad_labels[i]);
    }
    CHECK(!metrics_histogram(m, "h1", "", NULL, unsorted, 2));
    CHECK(!metrics_histogram(m, "h2", "", NULL, equal, 2));
    CHECK(!metrics_histogram(m, "h3", "", NULL, nan_bound, 1));
    CHECK(!metrics_histogram(m, "h4", "", NULL, inf_bound, 2));
    CHECK(!metrics_histogram(m, "h5", "", "le=\"1\"", NULL, 0));
    CHECK(!metrics_gauge_fn(m, "f", "", NULL, NULL, NULL));
    /* What is valid: colons in names, every escape, le outside histograms,
     * the same label text under another name, 16 labels. */
    CHECK(metrics_counter(m, "ns:sub:c_total", "", NULL));
    CHECK(metrics_counter(m, "_c_total", "", "a=\"\\\\\\\"\\n\",_b=\"\""));
    CHECK(metrics_gauge(m, "g", "", "le=\"1\""));
    CHECK(metrics_gauge(m, "g2", "", "le=\"1\""));
    CHECK(metrics_gauge(m, "g3", "",
                        "a1=\"\",a2=\"\",a3=\"\",a4=\"\","
                        "a5=\"\",a6=\"\",a7=\"\",a8=\"\","
                        "a9=\"\",a10=\"\",a11=\"\",a12=\"\","
                        "a13=\"\",a14=\"\",a15=\"\",a16=\"\""));
    /* Clashes: another type, the same labels, histogram series names.
     * gauge and gauge_fn are one type. */
    CHECK(metrics_counter(m, "x_total", "", "a=\"1\""));
    CHECK(!metrics_gauge(m, "x_total", "", "a=\"2\""));
    CHECK(!metrics_histogram(m, "x_total", "", "a=\"3\"", NULL, 0));
    CHECK(!metrics_counter(m, "x_total", "", "a=\"1\""));
    CHECK(metrics_counter(m, "x_total", "", NULL));
    CHECK(!metrics_counter(m, "x_total", "", ""));
    CHECK(metrics_gauge_fn(m, "g", "", "le=\"2\"", fn_calls_value, NULL));
    CHECK(!metrics_gauge_fn(m, "g", "", "le=\"1\"", fn_calls_value, NULL));
    CHECK(metrics_histogram(m, "lat", "", NULL, NULL, 0));
    CHECK(!metrics_counter(m, "lat_count", "", NULL));
    CHECK(!metrics_gauge(m, "lat_sum", "", NULL));
    CHECK(!metrics_gauge(m, "lat_bucket", "", NULL));
    CHECK(metrics_gauge(m, "lat_bucketx", "", NULL));
    CHECK(metrics_counter(m, "dur_sum", "", NULL));
    CHECK(!metrics_histogram(m, "dur", "", NULL, NULL, 0));
    metrics_free(m);
}

static void test_gauge_fn_called(void)
{
    int calls = 0;
    struct metrics *m = metrics_create();
    CHECK(metrics_gauge_fn(m, "f", "", NULL, fn_calls_value, &calls));
    CHECK_EQ_I64(calls, 0); /* not at creation */
    for (int i = 0; i < 3; i++) {
        char *text = expose(m);
        CHECK_EQ_STR(text, "# HELP f \n# TYPE f gauge\nf 0.25\n");
        free(text);
    }
    CHECK_EQ_I64(calls, 3);
    metrics_free(m);
}

/* NULL metrics are no-ops; metrics_free(NULL) too. */
static void test_null_is_noop(void)
{
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
    metrics_free(NULL);
    struct metrics *m = metrics_create();
    char *text = expose(m);
    CHECK_EQ_STR(text, "");
    free(text);
    metrics_free(m);
}

#define THREADS 4
#define ADDS_PER_THREAD 250000

struct shared {
    struct metric *counter, *histogram;
    const struct metrics *registry;
    volatile int stop;
};

static void *adder(void *arg)
{
    struct shared *s = arg;
    for (int i = 0; i < ADDS_PER_THREAD; i++) {
        metric_add(s->counter, 1);
        metric_observe(s->histogram, (i & 1) ? 0.5 : 2);
    }
    return NULL;
}

/* Writes the registry over and over while adders run: every exposition
 * must be well-formed, with _count equal to the +Inf bucket. */
static void *writer(void *arg)
{
    struct shared *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        char *text = expose(s->registry);
        const char *inf = strstr(text, "le=\"+Inf\"} ");
        const char *count = strstr(text, "h_seconds_count ");
        CHECK(inf && count);
        if (inf && count)
            CHECK_EQ_U64(strtoull(inf + 11, NULL, 10),
                         strtoull(count + 16, NULL, 10));
        free(text);
    }
    return NULL;
}

static void test_concurrent_updates_exact(void)
{
    static const double bounds[] = {1};
    struct metrics *m = metrics_create();
    struct shared s = {
        .counter = metrics_counter(m, "c_total", "c", NULL),
        .histogram = metrics_histogram(m, "h_seconds", "h", NULL, bounds, 1),
        .registry = m,
        .stop = 0,
    };
    pthread_t adders[THREADS], w;
    CHECK(pthread_create(&w, NULL, writer, &s) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&adders[i], NULL, adder, &s) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(adders[i], NULL);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
    pthread_join(w, NULL);
    char *text = expose(m);
    /* Each thread: half 0.5 (le 1), half 2 (+Inf); sums are exact. */
    CHECK_EQ_STR(text, "# HELP c_total c\n"
                       "# TYPE c_total counter\n"
                       "c_total 1000000\n"
                       "# HELP h_seconds h\n"
                       "# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{le=\"1\"} 500000\n"
                       "h_seconds_bucket{le=\"+Inf\"} 1000000\n"
                       "h_seconds_sum 1250000\n"
                       "h_seconds_count 1000000\n");
    free(text);
    metrics_free(m);
}

/* The value of the sample line "name value" (no labels) in text. */
static double sample_value(const char *text, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* Whether text has name's HELP and TYPE lines, the TYPE being type. */
static int has_family(const char *text, const char *name, const char *type)
{
    char help[128], line[128];
    snprintf(help, sizeof help, "# HELP %s ", name);
    snprintf(line, sizeof line, "\n# TYPE %s %s\n", name, type);
    return strstr(text, help) != NULL && strstr(text, line) != NULL;
}

/* ctrd_build_info and the process metrics follow the registry, with values
 * that agree with what the process can see itself: three more open
 * descriptors show as three more, the soft limit is getrlimit's, memory is
 * not zero, the start time is in the past. */
static void test_process_metrics(void)
{
    struct metrics *m = metrics_create();
    struct rlimit rl;
    CHECK(metrics_counter(m, "ctrd_x_total", "X.", NULL) != NULL);
    char *before = expose_all(m);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = dup(2);
    char *text = expose_all(m);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    CHECK(strstr(text, "# HELP ctrd_x_total X.\n") == text);
    CHECK(strstr(text, "\nctrd_build_info{version=\"" CTRD_VERSION "\"} 1\n"));
    CHECK(has_family(text, "ctrd_build_info", "gauge"));
    CHECK(has_family(text, "process_cpu_seconds_total", "counter"));
    static const char *const gauges[] = {
        "process_resident_memory_bytes", "process_virtual_memory_bytes",
        "process_start_time_seconds", "process_open_fds", "process_max_fds"};
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        CHECK(has_family(text, gauges[i], "gauge"));

    double cpu = sample_value(text, "process_cpu_seconds_total");
    double rss = sample_value(text, "process_resident_memory_bytes");
    double vm = sample_value(text, "process_virtual_memory_bytes");
    double start = sample_value(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    CHECK(cpu >= 0 && cpu < 3600);
    CHECK(rss > 1024 * 1024 && vm >= rss);
    CHECK(start > now - 3600 && start <= now + 1);
    CHECK_EQ_I64(sample_value(text, "process_open_fds"),
                 sample_value(before, "process_open_fds") + 3);
    CHECK(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHECK_EQ_I64(sample_value(text, "process_max_fds"), rl.rlim_cur);
    free(before);
    free(text);
    metrics_free(m);
}

/* The names the exposition writes by itself cannot be registered. */
static void test_reserved_names(void)
{
    struct metrics *m = metrics_create();
    CHECK(metrics_gauge(m, "ctrd_build_info", "", NULL) == NULL);
    CHECK(metrics_gauge(m, "process_open_fds", "", NULL) == NULL);
    CHECK(metrics_counter(m, "process_cpu_seconds_total", "", NULL) == NULL);
    CHECK(metrics_gauge(m, "processes", "", NULL) != NULL);
    metrics_free(m);
}

/* ---- --dump -------------------------------------------------------------*/

static double dump_lag_seconds(void *arg)
{
    (void)arg;
    return 2.5;
}

/* The label text name="value" in buf. */
static const char *label(char *buf, size_t size, const char *name,
                         const char *value)
{
    snprintf(buf, size, "%s=\"%s\"", name, value);
    return buf;
}

/* The metrics deploy/prometheus/alerts.yml relies on, and the other ones
 * serve exports, with some traffic. */
static int dump_exposition(void)
{
    static const char *const endpoints[] = {
        "terms",          "series",        "advertiser_ads",
        "ingest_queries", "ingest_clicks", "stream",
        "metrics",        "health",        "other",
    };
    static const char *const click_results[] = {"joined", "duplicate",
                                                "rejected", "unjoined"};
    static const char *const kinds[] = {"query", "click"};
    static const char *const record_results[] = {"accepted", "duplicate",
                                                 "rejected"};
    static const char *const reasons[] = {"bad_json", "missing_query_id",
                                          "click_outside_window"};
    static const double latency_bounds[] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
    size_t n_bounds = sizeof latency_bounds / sizeof latency_bounds[0];
    char buf[128];
    int failed = 0;
    struct metrics *m = metrics_create();
    if (!m)
        return 1;
    struct metric *x =
        metrics_gauge(m, "ctrd_up", "1 while the process runs.", NULL);
    failed |= !x;
    metric_set(x, 1);
    x = metrics_gauge(m, "ctrd_ready",
                      "1 once recovered and accepting records, else 0.", NULL);
    failed |= !x;
    metric_set(x, 1);
    failed |=
        !metrics_gauge_fn(m, "ctrd_freshness_lag_seconds",
                          "Now minus as_of: age of the newest complete counts.",
                          NULL, dump_lag_seconds, NULL);
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        x = metrics_histogram(m, "ctrd_http_request_duration_seconds",
                              "Time from request read to answer written.",
                              label(buf, sizeof buf, "endpoint", endpoints[i]),
                              latency_bounds, n_bounds);
        failed |= !x;
        for (int k = 0; k < 1000; k++)
            metric_observe(x, 0.00005 * (double)(k * (int)(i + 1) % 997));
    }
    for (size_t i = 0; i < 4; i++) {
        x = metrics_counter(m, "ctrd_clicks_total", "Clicks by join result.",
                            label(buf, sizeof buf, "result", click_results[i]));
        failed |= !x;
        metric_add(x, 1000 >> (3 * i));
    }
    for (size_t k = 0; k < 2; k++) {
        for (size_t r = 0; r < 3; r++) {
            snprintf(buf, sizeof buf, "kind=\"%s\",result=\"%s\"", kinds[k],
                     record_results[r]);
            x = metrics_counter(m, "ctrd_records_total",
                                "Records ingested, by kind and result.", buf);
            failed |= !x;
            metric_add(x, 50000 >> (4 * r + 5 * k));
        }
    }
    for (size_t i = 0; i < 3; i++) {
        x = metrics_counter(m, "ctrd_rejects_total",
                            "Rejected records by reason.",
                            label(buf, sizeof buf, "reason", reasons[i]));
        failed |= !x;
        metric_add(x, 7 * i + 1);
    }
    x = metrics_gauge(m, "ctrd_clicks_pending",
                      "Clicks waiting for their query.", NULL);
    failed |= !x;
    metric_set(x, 42);
    x = metrics_gauge(m, "ctrd_ingest_queue_bytes",
                      "Request bytes waiting for the ingest thread.", NULL);
    failed |= !x;
    metric_set(x, 1048576);
    x = metrics_gauge(m, "ctrd_writes_failing",
                      "1 while writes fail and records are refused.", NULL);
    failed |= !x;
    metric_set(x, 0);
    x = metrics_counter(m, "ctrd_write_errors_total",
                        "Failed writes of the log or of a checkpoint.", NULL);
    failed |= !x;
    metric_add(x, 3);
    x = metrics_counter(m, "ctrd_http_shed_total",
                        "Reads answered 503 by admission control "
                        "(queue full or waited too long).",
                        NULL);
    failed |= !x;
    metric_add(x, 4);
    for (int i = 1; i <= 5; i++) {
        snprintf(buf, sizeof buf, "class=\"%dxx\"", i);
        x = metrics_counter(
            m, "ctrd_http_responses_total",
            "HTTP answers by status class, the server's own included.", buf);
        failed |= !x;
        metric_add(x, i == 2 ? 5000 : 10 - i);
    }
    metrics_write(m, stdout);
    metrics_free(m);
    return failed || fflush(stdout) != 0 || ferror(stdout);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--dump") == 0)
        return dump_exposition();
    RUN(test_exposition_exact);
    RUN(test_double_format);
    RUN(test_counter_table);
    RUN(test_histogram_boundaries);
    RUN(test_invalid_rejected);
    RUN(test_gauge_fn_called);
    RUN(test_null_is_noop);
    RUN(test_concurrent_updates_exact);
    RUN(test_process_metrics);
    RUN(test_reserved_names);
    return check_done();
}
