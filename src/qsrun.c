/* qsrun: one QueryStore run file; see qsrun.h for its format. A lookup
 * asks the Bloom filter first (most lookups are of queries in another
 * run), then binary-searches the sparse index (every SPARSE_STRIDE-th key,
 * in RAM) and the one stride of keys it points to (one or two pages). */
#include "qsrun.h"

#include "bloom.h"
#include "hash.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAGIC "CTRDRUN1"
enum run_header {
    RUN_MAGIC_AT = 0,
    RUN_N_AT = 8,
    RUN_N_ADS_AT = 16,
    RUN_BLOOM_BYTES_AT = 24,
    RUN_HOUR_AT = 32,
    RUN_HEADER_BYTES = 64
};
#define SPARSE_STRIDE 64
#define MERGE_STOP_EVERY 65536 /* queries merged between looks at stop */

struct qsrun {
    struct qs_file file;
    int64_t hour;
    void *map;
    size_t map_len;
    uint64_t n;
    const uint8_t *bloom;
    size_t bloom_bytes;
    const uint64_t *keys;
    const struct qsrun_entry *entries;
    const uint64_t *ads;
    uint64_t *sparse; /* keys[0], keys[SPARSE_STRIDE], ... */
};

/* ---- reading ---- */

void qsrun_free(struct qsrun *r)
{
    if (!r)
        return;
    fs_unmap(r->map, r->map_len);
    free(r->sparse);
    free(r);
}

/* Whether keys strictly increase and ad indexes run from 0 to n_ads
 * without going back, so no lookup can leave the mapped file. */
static int run_index_valid(const struct qsrun *r, uint64_t n_ads)
{
    if (r->entries[0].ad != 0 || r->entries[r->n].ad != n_ads)
        return 0;
    for (uint64_t i = 0; i < r->n; i++) {
        if (r->entries[i + 1].ad < r->entries[i].ad ||
            r->entries[i + 1].ad - r->entries[i].ad > REC_ADS_MAX ||
            (i > 0 && r->keys[i] <= r->keys[i - 1]) ||
            r->entries[i].ms_in_hour >= QS_PARTITION_MS)
            return 0;
    }
    return 1;
}

/* The sparse index of a run whose keys (r->keys, or the same in RAM)
 * are checked. */
static int run_index(struct qsrun *r, const uint64_t *keys)
{
    uint64_t n_sparse = (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE;
    r->sparse = malloc((n_sparse ? n_sparse : 1) * sizeof *r->sparse);
    if (!r->sparse)
        return CTRD_ENOMEM;
    for (uint64_t i = 0; i < n_sparse; i++)
        r->sparse[i] = keys[i * SPARSE_STRIDE];
    return 0;
}

/* Points r's sections into its mapping, from r->n and the Bloom filter's
 * size. */
static void run_sections(struct qsrun *r, size_t bloom_bytes)
{
    r->bloom = (const unsigned char *)r->map + RUN_HEADER_BYTES;
    r->bloom_bytes = bloom_bytes;
    r->keys = (const uint64_t *)(r->bloom + bloom_bytes);
    r->entries = (const struct qsrun_entry *)(r->keys + r->n);
    r->ads = (const uint64_t *)(r->entries + r->n + 1);
}

/* Checks the layout of a mapped run of len content bytes and points into
 * its sections: NULL, or what is wrong with *at the offset. */
static const char *run_layout(struct qsrun *r, uint64_t len, size_t *at)
{
    const unsigned char *p = r->map;
    uint64_t n_ads, bloom_bytes;
    int64_t file_hour;
    *at = RUN_MAGIC_AT;
    if (len < RUN_HEADER_BYTES || memcmp(p, RUN_MAGIC, 8) != 0)
        return "not a run file";
    memcpy(&r->n, p + RUN_N_AT, 8);
    memcpy(&n_ads, p + RUN_N_ADS_AT, 8);
    memcpy(&bloom_bytes, p + RUN_BLOOM_BYTES_AT, 8);
    memcpy(&file_hour, p + RUN_HOUR_AT, 8);
    *at = RUN_HOUR_AT;
    if (file_hour != r->hour)
        return "partition hour differs from the MANIFEST's";
    *at = RUN_N_AT;
    if (bloom_bytes % BLOOM_BLOCK_BYTES || r->n > len || n_ads > len ||
        bloom_bytes > len ||
        RUN_HEADER_BYTES + bloom_bytes + 8 * r->n +
                sizeof(struct qsrun_entry) * (r->n + 1) + 8 * n_ads !=
            len)
        return "section sizes do not add up to the file's";
    run_sections(r, bloom_bytes);
    *at = (size_t)((const unsigned char *)r->keys - p);
    if (!run_index_valid(r, n_ads))
        return "keys not increasing, or an entry out of range";
    return NULL;
}

int qsrun_open(const char *dir, const struct qs_file *file, int64_t hour,
               struct qsrun **out, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file->name);
    struct qsrun *r = calloc(1, sizeof *r);
    if (!r)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    r->file = *file;
    r->hour = hour;
    size_t at, content_len;
    const char *what;
    int rc = fs_map_sealed(path, &file->seal, &r->map, &r->map_len,
                           &content_len, err);
    if (rc == 0 && (what = run_layout(r, content_len, &at)) != NULL)
        rc =
            ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: %s", path, at, what);
    if (rc == 0 && run_index(r, r->keys) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc == 0)
        *out = r;
    else
        qsrun_free(r);
    return rc;
}

/* Index of the first key >= query_id in the stride of the last sparse key
 * <= query_id, or r->n when no key can be query_id. */
static uint64_t run_search(const struct qsrun *r, uint64_t query_id)
{
    uint64_t lo = 0, hi = (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (r->sparse[mid] <= query_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return r->n;
    uint64_t b = (lo - 1) * SPARSE_STRIDE;
    uint64_t e = b + SPARSE_STRIDE < r->n ? b + SPARSE_STRIDE : r->n;
    while (b < e) {
        uint64_t mid = (b + e) / 2;
        if (r->keys[mid] < query_id)
            b = mid + 1;
        else
            e = mid;
    }
    return b;
}

int qsrun_find(const struct qsrun *r, uint64_t query_id, struct qs_query *out)
{
    if (!bloom_may_contain(r->bloom, r->bloom_bytes, hash_u64(query_id)))
        return CTRD_ENOTFOUND;
    uint64_t k = run_search(r, query_id);
    if (k >= r->n || r->keys[k] != query_id)
        return CTRD_ENOTFOUND;
    const struct qsrun_entry *e = &r->entries[k];
    *out = (struct qs_query){
        query_id, r->hour * QS_PARTITION_MS + e->ms_in_hour, e->term_id,
        (uint32_t)(e[1].ad - e->ad), r->ads + e->ad};
    return 0;
}

const struct qs_file *qsrun_file(const struct qsrun *r)
{
    return &r->file;
}

uint64_t qsrun_queries(const struct qsrun *r)
{
    return r->n;
}

uint64_t qsrun_disk_bytes(const struct qsrun *r)
{
    return r->map_len;
}

/* ---- writing ---- */

void qsrun_builder_free(struct qsrun_builder *b)
{
    free(b->keys);
    free(b->entries);
    free(b->ads);
    *b = (struct qsrun_builder){0};
}

int qsrun_builder_init(struct qsrun_builder *b, uint64_t n, uint64_t n_ads)
{
    *b = (struct qsrun_builder){0};
    b->keys = malloc((n ? n : 1) * 8);
    b->entries = malloc((n + 1) * sizeof *b->entries);
    b->ads = malloc((n_ads ? n_ads : 1) * 8);
    if (b->keys && b->entries && b->ads)
        return 0;
    qsrun_builder_free(b);
    return CTRD_ENOMEM;
}

void qsrun_builder_reset(struct qsrun_builder *b)
{
    b->n = b->n_ads = 0;
}

void qsrun_builder_add(struct qsrun_builder *b, uint64_t query_id,
                       uint32_t ms_in_hour, uint32_t term_id,
                       const uint64_t *ads, uint32_t n_ads)
{
    assert(b->n == 0 || query_id > b->keys[b->n - 1]);
    b->keys[b->n] = query_id;
    b->entries[b->n] = (struct qsrun_entry){ms_in_hour, term_id, b->n_ads};
    memcpy(b->ads + b->n_ads, ads, (size_t)n_ads * 8);
    b->n_ads += n_ads;
    b->n++;
}

/* Maps the run dir/file->name just written from b without reading it
 * back: its layout is b's and its checksums were computed from b as it
 * was written (qsrun_open() checks both whenever it is loaded again), so
 * its pages are left for the lookups that need them. */
static int run_map_written(const char *dir, const struct qs_file *file,
                           int64_t hour, const struct qsrun_builder *b,
                           size_t bloom_bytes, struct qsrun **out, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file->name);
    struct qsrun *r = calloc(1, sizeof *r);
    if (!r)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    *r = (struct qsrun){.file = *file, .hour = hour, .n = b->n};
    int rc = fs_map_file(path, &r->map, &r->map_len, err);
    if (rc == 0 && r->map_len != file->seal.bytes)
        rc = ctrd_fail(err, CTRD_EIO, "%s: %zu bytes just after writing %llu",
                       path, r->map_len, (unsigned long long)file->seal.bytes);
    if (rc == 0) {
        run_sections(r, bloom_bytes);
        if (run_index(r, b->keys) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    if (rc == 0)
        *out = r;
    else
        qsrun_free(r);
    return rc;
}

/* What a RUN FILE's content is made of, for put_run(). */
struct run_content {
    unsigned char header[RUN_HEADER_BYTES];
    const uint8_t *bloom;
    size_t bloom_bytes;
    const struct qsrun_builder *b;
};

static void put_run(struct fs_writer *w, const void *ctx)
{
    const struct run_content *c = ctx;
    const struct qsrun_builder *b = c->b;
    fs_writer_put(w, c->header, sizeof c->header);
    fs_writer_put(w, c->bloom, c->bloom_bytes);
    fs_writer_put(w, b->keys, b->n * 8);
    fs_writer_put(w, b->entries, (b->n + 1) * sizeof *b->entries);
    fs_writer_put(w, b->ads, b->n_ads * 8);
}

int qsrun_write(const char *dir, const char *name, int64_t hour,
                struct qsrun_builder *b, struct qsrun **out, char *err)
{
    struct qs_file file;
    char path[FS_PATH_MAX];
    snprintf(file.name, sizeof file.name, "%s", name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t bloom_bytes = bloom_bytes_for(b->n);
    uint8_t *bloom = calloc(1, bloom_bytes);
    if (!bloom)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory writing %s", path);
    for (uint64_t i = 0; i < b->n; i++)
        bloom_add(bloom, bloom_bytes, hash_u64(b->keys[i]));
    b->entries[b->n] = (struct qsrun_entry){0, 0, b->n_ads};
    struct run_content c = {.bloom = bloom, .bloom_bytes = bloom_bytes, .b = b};
    uint64_t bloom_u64 = bloom_bytes;
    memcpy(c.header + RUN_MAGIC_AT, RUN_MAGIC, 8);
    memcpy(c.header + RUN_N_AT, &b->n, 8);
    memcpy(c.header + RUN_N_ADS_AT, &b->n_ads, 8);
    memcpy(c.header + RUN_BLOOM_BYTES_AT, &bloom_u64, 8);
    memcpy(c.header + RUN_HOUR_AT, &hour, 8);
    int rc = fs_write_file(path, FS_SEALED, put_run, &c, &file.seal, err);
    free(bloom);
    return rc == 0 ? run_map_written(dir, &file, hour, b, bloom_bytes, out, err)
                   : rc;
}

int qsrun_merge(const char *dir, const char *name, int64_t hour,
                struct qsrun *const *runs, size_t n, const atomic_int *stop,
                struct qsrun **out, char *err)
{
    assert(n <= QSRUN_MERGE_MAX);
    uint64_t pos[QSRUN_MERGE_MAX] = {0}, total = 0, total_ads = 0;
    for (size_t r = 0; r < n; r++) {
        total += runs[r]->n;
        total_ads += runs[r]->entries[runs[r]->n].ad;
    }
    struct qsrun_builder m;
    if (qsrun_builder_init(&m, total, total_ads) != 0)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory merging runs");
    for (uint64_t done = 0; done < total; done++) {
        if (done % MERGE_STOP_EVERY == 0 && atomic_load(stop)) {
            qsrun_builder_free(&m);
            return ctrd_fail(err, CTRD_EAGAIN, "merge into %s stopped", name);
        }
        size_t best = n;
        for (size_t r = 0; r < n; r++) {
            if (pos[r] < runs[r]->n &&
                (best == n ||
                 runs[r]->keys[pos[r]] < runs[best]->keys[pos[best]]))
                best = r;
        }
        const struct qsrun *r = runs[best];
        uint64_t k = pos[best]++;
        const struct qsrun_entry *e = &r->entries[k];
        qsrun_builder_add(&m, r->keys[k], e->ms_in_hour, e->term_id,
                          r->ads + e->ad, (uint32_t)(e[1].ad - e->ad));
    }
    int rc = qsrun_write(dir, name, hour, &m, out, err);
    qsrun_builder_free(&m);
    return rc;
}
