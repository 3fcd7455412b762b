/* metrics: counters, gauges and histograms, and their Prometheus text
 * exposition; see metrics.h.
 *
 * DESIGN
 * The registry is a list of families, one per name in order of first
 * creation, each a list of metrics, one per label set in creation order.
 * The lists only grow, and only at startup, so metrics_write() walks them
 * without a lock. Each metric is one allocation (struct, buckets, bounds,
 * labels text) aligned to a cache line, so threads updating different
 * metrics never write to the same line.
 *
 * Values, all updated with relaxed atomics:
 *   counter    value: the count (u64)
 *   gauge      value: the bits of the double
 *   gauge_fn   fn(arg) at exposition; value unused
 *   histogram  buckets[i]: observations in (bounds[i-1], bounds[i]], the
 *              last one in (bounds[n-1], +Inf] — not cumulative, so one
 *              observation touches one bucket; value: the bits of the sum,
 *              added by compare-and-swap. The count is not stored but
 *              summed from the buckets while writing them cumulatively. */
#include "metrics.h"

#include "cli.h"
#include "error.h"

#include <assert.h>
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define METRIC_ALIGN 64 /* a cache line */
#define LABELS_MAX 16
#define DOUBLE_CHARS 40 /* "-1.2345678901234567e-308" and fixed forms */

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_GAUGE_FN, KIND_HISTOGRAM };

struct metric {
    _Atomic uint64_t value; /* see DESIGN */
    enum metric_kind kind;
    struct metric *next;     /* next label set of the family */
    const char *labels;      /* validated text, "" for none */
    double (*fn)(void *arg); /* gauge_fn */
    void *arg;
    const double *bounds; /* histogram: n_bounds ascending, finite */
    size_t n_bounds;
    _Atomic uint64_t buckets[]; /* histogram: n_bounds + 1 */
};

struct family {
    struct family *next;
    enum metric_kind kind;        /* KIND_GAUGE also for gauge_fn metrics */
    struct metric *first, **tail; /* tail: the link the next one goes in */
    const char *help;             /* points into text */
    char text[];                  /* name NUL help NUL */
};

struct metrics {
    struct family *first, **tail; /* tail: the link the next one goes in */
};

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* ---- validation ---------------------------------------------------------*/

static int is_label_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_label_char(char c)
{
    return is_label_start(c) || (c >= '0' && c <= '9');
}

/* The names metrics_write() writes by itself. */
static int name_is_reserved(const char *name)
{
    return strcmp(name, "ctrd_build_info") == 0 ||
           strncmp(name, "process_", 8) == 0;
}

static int name_is_valid(const char *name)
{
    if (!is_label_start(*name) && *name != ':')
        return 0;
    for (name++; *name; name++) {
        if (!is_label_char(*name) && *name != ':')
            return 0;
    }
    return 1;
}

/* Past the closing quote of a label value that starts at s (after its
 * opening quote), or NULL when it is unterminated or badly escaped. */
static const char *label_value_end(const char *s)
{
    for (;; s++) {
        if (*s == '"')
            return s + 1;
        if (*s == '\0' || *s == '\n')
            return NULL;
        if (*s == '\\') {
            s++;
            if (*s != '\\' && *s != '"' && *s != 'n')
                return NULL;
        }
    }
}

/* See metrics.h for the rules; forbidden: a label name not allowed here
 * ("le" on a histogram), or NULL. */
static int labels_are_valid(const char *s, const char *forbidden)
{
    struct {
        const char *p;
        size_t len;
    } names[LABELS_MAX];
    size_t n_names = 0;
    if (*s == '\0')
        return 1;
    for (;;) {
        const char *name = s;
        if (!is_label_start(*s))
            return 0;
        while (is_label_char(*s))
            s++;
        size_t len = (size_t)(s - name);
        if ((len >= 2 && name[0] == '_' && name[1] == '_') ||
            (forbidden && len == strlen(forbidden) &&
             memcmp(name, forbidden, len) == 0) ||
            n_names == LABELS_MAX)
            return 0;
        for (size_t i = 0; i < n_names; i++) {
            if (names[i].len == len && memcmp(names[i].p, name, len) == 0)
                return 0;
        }
        names[n_names].p = name;
        names[n_names++].len = len;
        if (s[0] != '=' || s[1] != '"')
            return 0;
        s = label_value_end(s + 2);
        if (!s)
            return 0;
        if (*s == '\0')
            return 1;
        if (*s++ != ',')
            return 0;
    }
}

static int bounds_are_valid(const double *bounds, size_t n_bounds)
{
    for (size_t i = 0; i < n_bounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1]))
            return 0;
    }
    return 1;
}

/* 1 when name is base_bucket, base_sum or base_count. */
static int is_histogram_series(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0)
        return 0;
    name += n;
    return !strcmp(name, "_bucket") || !strcmp(name, "_sum") ||
           !strcmp(name, "_count");
}

/* ---- creation -----------------------------------------------------------*/

static enum metric_kind family_kind(enum metric_kind kind)
{
    return kind == KIND_GAUGE_FN ? KIND_GAUGE : kind;
}

/* The family of that name, NULL when there is none; *clash set when a
 * metric of that name and kind cannot be added. */
static struct family *family_find(const struct metrics *m, const char *name,
                                  enum metric_kind kind, int *clash)
{
    *clash = 0;
    for (struct family *f = m->first; f; f = f->next) {
        if (strcmp(f->text, name) == 0) {
            *clash = f->kind != family_kind(kind);
            return f;
        }
        if ((f->kind == KIND_HISTOGRAM && is_histogram_series(name, f->text)) ||
            (kind == KIND_HISTOGRAM && is_histogram_series(f->text, name))) {
            *clash = 1;
            return NULL;
        }
    }
    return NULL;
}

static struct family *family_create(struct metrics *m, const char *name,
                                    const char *help, enum metric_kind kind)
{
    size_t name_len = strlen(name), help_len = strlen(help);
    struct family *f = malloc(sizeof *f + name_len + help_len + 2);
    if (!f)
        return NULL;
    f->next = NULL;
    f->kind = family_kind(kind);
    f->first = NULL;
    f->tail = &f->first;
    memcpy(f->text, name, name_len + 1);
    memcpy(f->text + name_len + 1, help, help_len + 1);
    f->help = f->text + name_len + 1;
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

static struct metric *metric_alloc(enum metric_kind kind, const char *labels,
                                   const double *bounds, size_t n_bounds)
{
    size_t n_buckets = kind == KIND_HISTOGRAM ? n_bounds + 1 : 0;
    size_t bounds_at = sizeof(struct metric) + n_buckets * sizeof(uint64_t);
    size_t labels_at = bounds_at + n_bounds * sizeof(double);
    size_t labels_len = strlen(labels);
    size_t size = labels_at + labels_len + 1;
    size = (size + METRIC_ALIGN - 1) / METRIC_ALIGN * METRIC_ALIGN;
    struct metric *x = aligned_alloc(METRIC_ALIGN, size);
    if (!x)
        return NULL;
    char *base = (char *)x;
    atomic_init(&x->value, kind == KIND_COUNTER ? 0 : bits_of(0.0));
    x->kind = kind;
    x->next = NULL;
    x->fn = NULL;
    x->arg = NULL;
    for (size_t i = 0; i < n_buckets; i++)
        atomic_init(&x->buckets[i], 0);
    if (n_bounds)
        memcpy(base + bounds_at, bounds, n_bounds * sizeof(double));
    x->bounds = (const double *)(base + bounds_at);
    x->n_bounds = n_bounds;
    memcpy(base + labels_at, labels, labels_len + 1);
    x->labels = base + labels_at;
    return x;
}

/* Validates, finds or creates the family, appends a new metric to it. */
static struct metric *metric_create(struct metrics *m, enum metric_kind kind,
                                    const char *name, const char *help,
                                    const char *labels, const double *bounds,
                                    size_t n_bounds)
{
    int clash;
    help = help ? help : "";
    labels = labels ? labels : "";
    if (!name_is_valid(name) || name_is_reserved(name) ||
        !labels_are_valid(labels, kind == KIND_HISTOGRAM ? "le" : NULL) ||
        !bounds_are_valid(bounds, n_bounds))
        return NULL;
    struct family *f = family_find(m, name, kind, &clash);
    if (clash)
        return NULL;
    for (struct metric *x = f ? f->first : NULL; x; x = x->next) {
        if (strcmp(x->labels, labels) == 0)
            return NULL;
    }
    struct metric *x = metric_alloc(kind, labels, bounds, n_bounds);
    if (!x)
        return NULL;
    if (!f)
        f = family_create(m, name, help, kind);
    if (!f) {
        free(x);
        return NULL;
    }
    *f->tail = x;
    f->tail = &x->next;
    return x;
}

struct metrics *metrics_create(void)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (m)
        m->tail = &m->first;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct family *f = m->first;
    while (f) {
        struct family *next_f = f->next;
        struct metric *x = f->first;
        while (x) {
            struct metric *next_x = x->next;
            free(x);
            x = next_x;
        }
        free(f);
        f = next_f;
    }
    free(m);
}

struct metric *metrics_counter(struct metrics *m, const char *name,
                               const char *help, const char *labels)
{
    return metric_create(m, KIND_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics *m, const char *name,
                             const char *help, const char *labels)
{
    return metric_create(m, KIND_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge_fn(struct metrics *m, const char *name,
                                const char *help, const char *labels,
                                double (*fn)(void *arg), void *arg)
{
    if (!fn)
        return NULL;
    struct metric *x =
        metric_create(m, KIND_GAUGE_FN, name, help, labels, NULL, 0);
    if (x) {
        x->fn = fn;
        x->arg = arg;
    }
    return x;
}

struct metric *metrics_histogram(struct metrics *m, const char *name,
                                 const char *help, const char *labels,
                                 const double *bounds, size_t n_bounds)
{
    return metric_create(m, KIND_HISTOGRAM, name, help, labels, bounds,
                         n_bounds);
}

/* ---- updates ------------------------------------------------------------*/

void metric_add(struct metric *counter, uint64_t n)
{
    if (!counter)
        return;
    assert(counter->kind == KIND_COUNTER);
    atomic_fetch_add_explicit(&counter->value, n, memory_order_relaxed);
}

void metric_set(struct metric *gauge, double v)
{
    if (!gauge)
        return;
    assert(gauge->kind == KIND_GAUGE);
    atomic_store_explicit(&gauge->value, bits_of(v), memory_order_relaxed);
}

void metric_observe(struct metric *histogram, double v)
{
    if (!histogram || isnan(v))
        return;
    assert(histogram->kind == KIND_HISTOGRAM);
    /* The first bucket whose bound is >= v; n_bounds (+Inf) when none. */
    size_t lo = 0, hi = histogram->n_bounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= histogram->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&histogram->buckets[lo], 1, memory_order_relaxed);
    uint64_t old =
        atomic_load_explicit(&histogram->value, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &histogram->value, &old, bits_of(double_of(old) + v),
        memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- exposition ---------------------------------------------------------*/

/* The shortest decimal that reads back as v: fixed notation for decimal
 * exponents -4..20, else %e; NaN, +Inf, -Inf as Prometheus spells them.
 * Assumes the C locale's decimal point (ctrd never calls setlocale). */
static void format_double(char out[DOUBLE_CHARS], double v)
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    int digits = 0; /* 17 always read back exactly */
    do {
        digits++;
        snprintf(out, DOUBLE_CHARS, "%.*e", digits - 1, v);
    } while (digits < 17 && strtod(out, NULL) != v);
    int exp10 = atoi(strchr(out, 'e') + 1);
    if (exp10 >= -4 && exp10 < 21) {
        int decimals = digits - 1 - exp10;
        snprintf(out, DOUBLE_CHARS, "%.*f", decimals > 0 ? decimals : 0, v);
    }
}

/* name+suffix{labels,le="le"} value — braces only when there are labels. */
static void write_sample(FILE *out, const char *name, const char *suffix,
                         const char *labels, const char *le, const char *value)
{
    fputs(name, out);
    fputs(suffix, out);
    if (*labels || le) {
        fprintf(out, "{%s", labels);
        if (le)
            fprintf(out, "%sle=\"%s\"", *labels ? "," : "", le);
        fputc('}', out);
    }
    fprintf(out, " %s\n", value);
}

static void write_histogram(FILE *out, const char *name, const struct metric *x)
{
    char le[DOUBLE_CHARS], value[DOUBLE_CHARS];
    uint64_t count = 0;
    for (size_t i = 0; i <= x->n_bounds; i++) {
        count += atomic_load_explicit(&x->buckets[i], memory_order_relaxed);
        if (i < x->n_bounds)
            format_double(le, x->bounds[i]);
        else
            strcpy(le, "+Inf");
        snprintf(value, sizeof value, "%" PRIu64, count);
        write_sample(out, name, "_bucket", x->labels, le, value);
    }
    format_double(value, double_of(atomic_load_explicit(&x->value,
                                                        memory_order_relaxed)));
    write_sample(out, name, "_sum", x->labels, NULL, value);
    snprintf(value, sizeof value, "%" PRIu64, count);
    write_sample(out, name, "_count", x->labels, NULL, value);
}

static void write_metric(FILE *out, const char *name, const struct metric *x)
{
    char value[DOUBLE_CHARS];
    uint64_t v = atomic_load_explicit(&x->value, memory_order_relaxed);
    switch (x->kind) {
    case KIND_COUNTER:
        snprintf(value, sizeof value, "%" PRIu64, v);
        break;
    case KIND_GAUGE:
        format_double(value, double_of(v));
        break;
    case KIND_GAUGE_FN:
        format_double(value, x->fn(x->arg));
        break;
    case KIND_HISTOGRAM:
        write_histogram(out, name, x);
        return;
    }
    write_sample(out, name, "", x->labels, NULL, value);
}

/* HELP text with backslash and newline escaped. */
static void write_help(FILE *out, const struct family *f)
{
    fprintf(out, "# HELP %s ", f->text);
    for (const char *s = f->help; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fputc('\n', out);
}

/* ---- the process's own metrics ----------------------------------------*/

/* What /proc/self says about this process (Linux). */
struct proc_stats {
    double cpu_seconds;   /* user + system */
    double start_seconds; /* since the epoch */
    double vm_bytes, rss_bytes;
    double open_fds, max_fds;
};

/* The boot time in seconds since the epoch: "btime" of /proc/stat. */
static int proc_boot_time(double *out)
{
    char line[256];
    int rc = CTRD_EIO;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return CTRD_EIO;
    while (rc != 0 && fgets(line, sizeof line, f)) {
        unsigned long long btime;
        if (sscanf(line, "btime %llu", &btime) == 1) {
            *out = (double)btime;
            rc = 0;
        }
    }
    fclose(f);
    return rc;
}

/* CPU time, start time and memory from /proc/self/stat (proc(5)): fields
 * 14 utime, 15 stime, 22 starttime (clock ticks), 23 vsize (bytes), 24 rss
 * (pages), counted after the ")" that ends the command name. */
static int proc_read_stat(struct proc_stats *st)
{
    char buf[1024];
    unsigned long long utime, stime, start, vsize, rss;
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return CTRD_EIO;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    double boot;
    if (!p || ticks <= 0 || page <= 0 || proc_boot_time(&boot) != 0 ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d "
               "%*d %*d %*d %*d %*d %llu %llu %llu",
               &utime, &stime, &start, &vsize, &rss) != 5)
        return CTRD_EIO;
    st->cpu_seconds = (double)(utime + stime) / (double)ticks;
    st->start_seconds = boot + (double)start / (double)ticks;
    st->vm_bytes = (double)vsize;
    st->rss_bytes = (double)rss * (double)page;
    return 0;
}

/* Open descriptors (the entries of /proc/self/fd but the one reading it)
 * and the soft limit on them. */
static int proc_read_fds(struct proc_stats *st)
{
    struct rlimit rl;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return CTRD_EIO;
    double n = -1; /* d's own descriptor */
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return CTRD_EIO;
    st->open_fds = n;
    st->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
    return 0;
}

static void write_own(FILE *out, const char *name, const char *type,
                      const char *help, const char *labels, double v)
{
    char value[DOUBLE_CHARS];
    format_double(value, v);
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    write_sample(out, name, "", labels, NULL, value);
}

/* ctrd_build_info, and the process_* metrics that Prometheus client
 * libraries export, when /proc can be read. */
static void write_process(FILE *out)
{
    struct proc_stats st;
    write_own(out, "ctrd_build_info", "gauge",
              "The version of ctrd that runs, as a label; always 1.",
              "version=\"" CTRD_VERSION "\"", 1);
    if (proc_read_stat(&st) == 0) {
        write_own(out, "process_cpu_seconds_total", "counter",
                  "Total user and system CPU time spent in seconds.", "",
                  st.cpu_seconds);
        write_own(out, "process_resident_memory_bytes", "gauge",
                  "Resident memory size in bytes.", "", st.rss_bytes);
        write_own(out, "process_virtual_memory_bytes", "gauge",
                  "Virtual memory size in bytes.", "", st.vm_bytes);
        write_own(out, "process_start_time_seconds", "gauge",
                  "Start time of the process since unix epoch in seconds.", "",
                  st.start_seconds);
    }
    if (proc_read_fds(&st) == 0) {
        write_own(out, "process_open_fds", "gauge",
                  "Number of open file descriptors.", "", st.open_fds);
        write_own(out, "process_max_fds", "gauge",
                  "Maximum number of open file descriptors.", "", st.max_fds);
    }
}

void metrics_write(const struct metrics *m, FILE *out)
{
    static const char *const type_names[] = {
        [KIND_COUNTER] = "counter",
        [KIND_GAUGE] = "gauge",
        [KIND_HISTOGRAM] = "histogram",
    };
    for (const struct family *f = m->first; f; f = f->next) {
        write_help(out, f);
        fprintf(out, "# TYPE %s %s\n", f->text, type_names[f->kind]);
        for (const struct metric *x = f->first; x; x = x->next)
            write_metric(out, f->text, x);
    }
    write_process(out);
}

int metrics_counters(struct metrics *m, const struct metrics_counter_def *defs,
                     size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(*defs[i].slot =
                  metrics_counter(m, defs[i].name, defs[i].help, NULL)))
            return CTRD_ENOMEM;
    return 0;
}
