/* metrics: the operator's numbers — counters, gauges and histograms — and
 * their Prometheus text exposition (format 0.0.4) for GET /metrics.
 *
 * Owns every metric it hands out; they live as long as the registry.
 * Metrics of one name differ by their label set (given as the text between
 * the braces, e.g. "reason=\"bad_json\"", or NULL for none) and share one
 * HELP and TYPE line (the HELP text of the first one created). Updates are
 * lock-free (relaxed atomics) from any thread; metrics_write() may run
 * concurrently with updates. Creating metrics is not thread-safe: do it at
 * startup, before any thread updates or writes.
 *
 * Besides the registry, every exposition ends with what the process says
 * of itself: ctrd_build_info{version="CTRD_VERSION"} 1, and the standard
 * process metrics of Prometheus client libraries, read from /proc/self at
 * each metrics_write() (left out when /proc cannot be read):
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds. These names are reserved.
 *
 * Names follow Prometheus conventions: a ctrd_ prefix, snake_case, base
 * units in the name (_seconds, _bytes), counters ending in _total;
 * `promtool check metrics` flags the ones it can check (this module only
 * checks syntax).
 *
 * Exposition values: counters and bucket counts as integers; doubles in the
 * shortest form that reads back exactly ("0.05", "1e-05", "1e+21"), NaN as
 * NaN, infinities as +Inf and -Inf. A histogram's _count is the sum of its
 * buckets, so it always equals the +Inf bucket; its _sum may miss
 * observations that race with metrics_write(). */
#ifndef CTRD_METRICS_H
#define CTRD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct metrics;
struct metric;

struct metrics *metrics_create(void);
void metrics_free(struct metrics *m);

/* NULL when out of memory, or when:
 * - name is not [a-zA-Z_:][a-zA-Z0-9_:]*, or is reserved (see above);
 * - labels is not name="value"[,name="value"]... with label names
 *   [a-zA-Z_][a-zA-Z0-9_]* (not starting "__", each at most once, at most
 *   16, no "le" on a histogram) and values that escape only \\, \" and \n
 *   (as the exposition prints labels verbatim);
 * - the name exists with another type (gauge and gauge_fn are one type),
 *   or already with the same labels text;
 * - the name and a histogram's series names (_bucket, _sum, _count)
 *   collide. */
struct metric *metrics_counter(struct metrics *m, const char *name,
                               const char *help, const char *labels);
struct metric *metrics_gauge(struct metrics *m, const char *name,
                             const char *help, const char *labels);
/* A gauge read at exposition time: fn(arg), on the thread that runs
 * metrics_write(). */
struct metric *metrics_gauge_fn(struct metrics *m, const char *name,
                                const char *help, const char *labels,
                                double (*fn)(void *arg), void *arg);
/* bounds: strictly ascending finite upper bounds, copied; the +Inf bucket is
 * implicit. A value equal to a bound counts in that bound's bucket
 * (le = "less or equal"). */
struct metric *metrics_histogram(struct metrics *m, const char *name,
                                 const char *help, const char *labels,
                                 const double *bounds, size_t n_bounds);

/* A counter without labels, created into *slot by metrics_counters(). */
struct metrics_counter_def {
    struct metric **slot;
    const char *name, *help;
};
/* Creates n such counters: 0, or CTRD_ENOMEM when one could not be (as
 * metrics_counter() says NULL). */
int metrics_counters(struct metrics *m, const struct metrics_counter_def *defs,
                     size_t n);

/* Updates. A NULL metric is a no-op, so code shared with commands that keep
 * no registry may call these unconditionally. Calling one on a metric of
 * another kind is a bug (assert). */
void metric_add(struct metric *counter, uint64_t n);
void metric_set(struct metric *gauge, double v);
/* NaN is dropped: it would make the _sum NaN for good. */
void metric_observe(struct metric *histogram, double v);

/* Writes every metric, grouped by name, in creation order: names in the
 * order they were first created, then each name's label sets in creation
 * order; then the process's own (see above). Write errors are left in
 * out's error indicator (ferror). */
void metrics_write(const struct metrics *m, FILE *out);

#endif
