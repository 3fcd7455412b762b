/* adview: one ad's per-term table; see adview.h. */
#include "adview.h"

#include "json.h"
#include "table.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct order {
    const struct terms *terms;
    enum adview_sort sort;
    int ascending;
};

static int term_cmp(const struct order *o, uint32_t a, uint32_t b)
{
    uint32_t la, lb;
    const char *sa = terms_get(o->terms, a, &la);
    const char *sb = terms_get(o->terms, b, &lb);
    int c = memcmp(sa, sb, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

static int key_cmp(const struct order *o, const struct adview_row *x,
                   const struct adview_row *y)
{
    switch (o->sort) {
    case ADVIEW_IMPRESSIONS:
        return (x->impressions > y->impressions) -
               (x->impressions < y->impressions);
    case ADVIEW_CLICKS:
        return (x->clicks > y->clicks) - (x->clicks < y->clicks);
    case ADVIEW_CTR: {
        /* x.c / x.i vs y.c / y.i without division; 0/0 counts as 0. */
        unsigned __int128 l = (unsigned __int128)x->clicks * y->impressions;
        unsigned __int128 r = (unsigned __int128)y->clicks * x->impressions;
        if (!x->impressions || !y->impressions)
            return (x->impressions && x->clicks) -
                   (y->impressions && y->clicks);
        return (l > r) - (l < r);
    }
    case ADVIEW_TERM:
        return term_cmp(o, x->term_id, y->term_id);
    }
    return 0;
}

static int row_cmp(const void *a, const void *b, void *ctx)
{
    const struct order *o = ctx;
    const struct adview_row *x = a, *y = b;
    int c = key_cmp(o, x, y);
    if (c)
        return o->ascending ? c : -c;
    return term_cmp(o, x->term_id, y->term_id);
}

/* Restores the max-heap (by order: the worst row on top) below i. */
static void sift_down(struct adview_row *h, size_t n, size_t i, struct order *o)
{
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < n && row_cmp(&h[l], &h[worst], o) > 0)
            worst = l;
        if (r < n && row_cmp(&h[r], &h[worst], o) > 0)
            worst = r;
        if (worst == i)
            return;
        struct adview_row t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* The first minute whose start is >= ms (bucket t = minute * 60000 is in
 * [from, to) exactly when its minute is in [first(from), first(to))). */
static uint64_t minute_at_or_after(int64_t ms)
{
    if (ms <= 0)
        return 0;
    if (ms == INT64_MAX)
        return UINT64_MAX;
    return ((uint64_t)ms + 59999) / 60000;
}

/* Rows aggregated per term as buckets arrive (table.h: term id to row). */
struct collect {
    struct adview *view;
    struct adview_row *rows;
    size_t n, cap;
    struct table index;
    int failed;
};

/* The row of term_id, added when new. NULL when memory runs out. */
static struct adview_row *collect_row(struct collect *c, uint32_t term_id)
{
    uint32_t row = (uint32_t)c->n;
    int rc;

    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        struct adview_row *rows = realloc(c->rows, cap * sizeof *rows);
        if (!rows)
            return NULL;
        c->rows = rows;
        c->cap = cap;
    }
    rc = table_add(&c->index, term_id, &row);
    if (rc < 0)
        return NULL;
    if (rc == 0)
        c->rows[c->n++] = (struct adview_row){term_id, 0, 0};
    return &c->rows[row];
}

static void collect_bucket(void *ctx, const struct cm_bucket *b)
{
    struct collect *c = ctx;
    struct adview_row *r = c->failed ? NULL : collect_row(c, b->term_id);
    if (!r) {
        c->failed = 1;
        return;
    }
    r->impressions += b->impressions;
    r->clicks += b->clicks;
    c->view->impressions += b->impressions;
    c->view->clicks += b->clicks;
}

/* Moves the `keep` first rows in the order o to the front of rows, sorted
 * (a heap of the best keep seen, worst on top: O(n log keep)). */
static void sort_first(struct adview_row *rows, size_t n, size_t keep,
                       struct order *o)
{
    if (keep >= n) {
        qsort_r(rows, n, sizeof *rows, row_cmp, o);
        return;
    }
    /* rows[0..keep) as a max-heap by order: the root is the worst kept. */
    for (size_t i = keep / 2; i-- > 0;)
        sift_down(rows, keep, i, o);
    for (size_t i = keep; i < n; i++) {
        if (row_cmp(&rows[i], &rows[0], o) < 0) {
            struct adview_row t = rows[0];
            rows[0] = rows[i];
            rows[i] = t;
            sift_down(rows, keep, 0, o);
        }
    }
    qsort_r(rows, keep, sizeof *rows, row_cmp, o);
}

int adview_build(const struct countmap *cm, const struct terms *terms,
                 uint64_t ad_id, int64_t from_ms, int64_t to_ms,
                 enum adview_sort sort, int ascending, size_t keep,
                 struct adview *out, char *err)
{
    *out = (struct adview){.ad_id = ad_id, .from_ms = from_ms, .to_ms = to_ms};
    struct collect c = {.view = out};
    int rc =
        cm_ad_scan(cm, ad_id, minute_at_or_after(from_ms),
                   minute_at_or_after(to_ms), CM_DAY, collect_bucket, &c, err);
    table_free(&c.index);
    if (rc == 0 && c.failed)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc != 0) {
        free(c.rows);
        return rc;
    }
    struct order o = {terms, sort, ascending};
    if (c.n > 0)
        sort_first(c.rows, c.n, keep, &o);
    out->rows = c.rows;
    out->n_rows = c.n;
    out->n_sorted = keep < c.n ? keep : c.n;
    return 0;
}

void adview_free(struct adview *v)
{
    free(v->rows);
    v->rows = NULL;
}

static void put_time_or_null(FILE *f, int64_t ms, int64_t none)
{
    if (ms == none)
        fputs("null", f);
    else
        fprintf(f, "%" PRId64, ms);
}

void adview_write_json(FILE *f, const struct adview *v,
                       const struct terms *terms, int64_t as_of_ms,
                       size_t offset, size_t limit)
{
    fprintf(f, "{\"ad_id\":\"%" PRIu64 "\",\"from\":", v->ad_id);
    put_time_or_null(f, v->from_ms, INT64_MIN);
    fputs(",\"to\":", f);
    put_time_or_null(f, v->to_ms, INT64_MAX);
    fputs(",\"as_of\":", f);
    put_time_or_null(f, as_of_ms, -1);
    fprintf(f,
            ",\"total_terms\":%zu,\"totals\":{\"impressions\":%" PRIu64
            ",\"clicks\":%" PRIu64 ",\"ctr\":",
            v->n_rows, v->impressions, v->clicks);
    json_put_ratio(f, v->clicks, v->impressions);
    fputs("},\"terms\":[", f);
    for (size_t i = offset; i < v->n_sorted && i - offset < limit; i++) {
        const struct adview_row *r = &v->rows[i];
        uint32_t len;
        const char *term = terms_get(terms, r->term_id, &len);
        fputs(i > offset ? ",{\"term\":" : "{\"term\":", f);
        json_put_string(f, term, len);
        fprintf(f,
                ",\"impressions\":%" PRIu64 ",\"clicks\":%" PRIu64 ",\"ctr\":",
                r->impressions, r->clicks);
        json_put_ratio(f, r->clicks, r->impressions);
        putc('}', f);
    }
    fputs("]}\n", f);
}

/* A CSV field per RFC 4180: quoted when it holds a comma, quote, CR or LF
 * or starts/ends with a space. */
static void put_csv_field(FILE *f, const char *s, size_t len)
{
    int quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ');
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        fwrite(s, 1, len, f);
        return;
    }
    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            putc('"', f);
        putc(s[i], f);
    }
    putc('"', f);
}

void adview_write_csv_rows(FILE *f, const struct adview *v,
                           const struct terms *terms, size_t limit)
{
    for (size_t i = 0; i < v->n_sorted && i < limit; i++) {
        const struct adview_row *r = &v->rows[i];
        uint32_t len;
        const char *term = terms_get(terms, r->term_id, &len);
        fprintf(f, "%" PRIu64 ",", v->ad_id);
        put_csv_field(f, term, len);
        fprintf(f, ",%" PRIu64 ",%" PRIu64 ",", r->impressions, r->clicks);
        json_put_ratio(f, r->clicks, r->impressions);
        putc('\n', f);
    }
}

void adview_write_table(FILE *f, const struct adview *v,
                        const struct terms *terms, size_t limit)
{
    fprintf(f,
            "ad %" PRIu64 ": %" PRIu64 " impressions, %" PRIu64
            " clicks, CTR %.2f%%, %zu terms\n",
            v->ad_id, v->impressions, v->clicks,
            v->impressions ? 100.0 * (double)v->clicks / (double)v->impressions
                           : 0.0,
            v->n_rows);
    fprintf(f, "%12s %8s %8s  %s\n", "impressions", "clicks", "ctr", "term");
    for (size_t i = 0; i < v->n_sorted && i < limit; i++) {
        const struct adview_row *r = &v->rows[i];
        uint32_t len;
        const char *term = terms_get(terms, r->term_id, &len);
        fprintf(f, "%12" PRIu64 " %8" PRIu64 " %7.2f%%  %.*s\n", r->impressions,
                r->clicks,
                r->impressions
                    ? 100.0 * (double)r->clicks / (double)r->impressions
                    : 0.0,
                (int)len, term);
    }
}

struct totals {
    uint64_t impressions, clicks;
};

static void add_totals(void *ctx, const struct cm_bucket *b)
{
    struct totals *t = ctx;
    t->impressions += b->impressions;
    t->clicks += b->clicks;
}

int adview_totals(const struct countmap *cm, uint64_t ad_id, int64_t from_ms,
                  int64_t to_ms, uint64_t *impressions, uint64_t *clicks,
                  char *err)
{
    struct totals t = {0, 0};
    int rc = cm_ad_scan(cm, ad_id, minute_at_or_after(from_ms),
                        minute_at_or_after(to_ms), CM_DAY, add_totals, &t, err);
    *impressions = t.impressions;
    *clicks = t.clicks;
    return rc;
}

struct point {
    int64_t t;
    uint64_t impressions, clicks;
};

struct series {
    int64_t step_ms;
    const uint32_t *term_id;
    struct point *points;
    size_t n, cap;
    int failed;
};

/* Buckets arrive in ascending minute order, so a point is either the last
 * one or a new one at the end. */
static void add_point(void *ctx, const struct cm_bucket *b)
{
    struct series *s = ctx;
    if (s->failed || (s->term_id && b->term_id != *s->term_id))
        return;
    int64_t ms = (int64_t)b->minute * 60000;
    int64_t t = ms - ms % s->step_ms;
    if (!s->n || s->points[s->n - 1].t != t) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 64;
            struct point *p = realloc(s->points, cap * sizeof *p);
            if (!p) {
                s->failed = 1;
                return;
            }
            s->points = p;
            s->cap = cap;
        }
        s->points[s->n++] = (struct point){t, 0, 0};
    }
    s->points[s->n - 1].impressions += b->impressions;
    s->points[s->n - 1].clicks += b->clicks;
}

int adview_write_series(FILE *f, const struct countmap *cm, uint64_t ad_id,
                        int64_t from_ms, int64_t to_ms, int64_t step_ms,
                        const char *step_name, const uint32_t *term_id,
                        int64_t as_of_ms, char *err)
{
    struct series s = {.step_ms = step_ms, .term_id = term_id};
    int coarsest = step_ms % 86400000 == 0  ? CM_DAY
                   : step_ms % 3600000 == 0 ? CM_HOUR
                                            : CM_MINUTE;
    int rc =
        cm_ad_scan(cm, ad_id, minute_at_or_after(from_ms),
                   minute_at_or_after(to_ms), coarsest, add_point, &s, err);
    if (rc == 0 && s.failed)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc != 0) {
        free(s.points);
        return rc;
    }
    fprintf(f, "{\"ad_id\":\"%" PRIu64 "\",\"step\":\"%s\",\"from\":", ad_id,
            step_name);
    put_time_or_null(f, from_ms, INT64_MIN);
    fputs(",\"to\":", f);
    put_time_or_null(f, to_ms, INT64_MAX);
    fputs(",\"as_of\":", f);
    put_time_or_null(f, as_of_ms, -1);
    fputs(",\"points\":[", f);
    for (size_t i = 0; i < s.n; i++) {
        const struct point *p = &s.points[i];
        fprintf(f,
                "%s{\"t\":%" PRId64 ",\"impressions\":%" PRIu64
                ",\"clicks\":%" PRIu64 ",\"ctr\":",
                i ? "," : "", p->t, p->impressions, p->clicks);
        json_put_ratio(f, p->clicks, p->impressions);
        putc('}', f);
    }
    fputs("]}\n", f);
    free(s.points);
    return 0;
}
