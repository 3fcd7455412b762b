/* qsrun: one QueryStore run file; see qsrun.h for its format. A lookup
 * asks the Bloom filter first (most lookups are of queries in another
 * run), then binary-searches the sparse index (every SPARSE_STRIDE-th key,
 * in RAM) and the one stride of keys it points to (one or two pages), and
 * decodes the query's ad slots through the dictionary into the caller's
 * buffer. Writing a builder makes its dictionary (the distinct ads through
 * a table, then sorted); a merge makes the union of its inputs'
 * dictionaries (they are sorted), maps each input's slots into it, and
 * streams its sections into the file from the inputs. */
#include "qsrun.h"

#include "bloom.h"
#include "grow.h"
#include "hash.h"
#include "table.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_MAGIC "CTRDRUN2"
#define RUN_MAGIC_FORMAT1 "CTRDRUN1"
enum run_header {
    RUN_MAGIC_AT = 0,
    RUN_N_AT = 8,
    RUN_N_SLOTS_AT = 16,
    RUN_BLOOM_BYTES_AT = 24,
    RUN_HOUR_AT = 32,
    RUN_N_DICT_AT = 40,
    RUN_HEADER_BYTES = 64
};
#define SPARSE_STRIDE 64
_Static_assert(SPARSE_STRIDE * 8 <= QSRUN_FAULT_BYTES,
               "a stride of keys spans at most two fault windows");
#define MERGE_STOP_EVERY 65536 /* queries merged between looks at stop */
/* Queries merged between releases of the inputs' pages read (a few MiB
 * of a section of each input; each release costs the CPUs running the
 * process's threads a TLB flush). */
#define MERGE_RELEASE_EVERY (8 * MERGE_STOP_EVERY)

struct qsrun {
    struct qs_file file;
    int64_t hour;
    void *map;
    size_t map_len;
    uint64_t n, n_dict, n_slots;
    const uint8_t *bloom;
    size_t bloom_bytes;
    const uint64_t *keys;
    const uint64_t *dict;
    const struct qsrun_entry *entries;
    const uint32_t *slots;
    uint64_t *sparse; /* keys[0], keys[SPARSE_STRIDE], ... */
};

/* malloc() of n elements, n may be 0. */
static void *alloc_n(uint64_t n, size_t size)
{
    return malloc((size_t)(n ? n : 1) * size);
}

/* ---- reading ---- */

void qsrun_free(struct qsrun *r)
{
    if (!r)
        return;
    fs_unmap(r->map, r->map_len);
    free(r->sparse);
    free(r);
}

/* The content bytes of a run of these section sizes. */
static uint64_t run_bytes(uint64_t bloom_bytes, uint64_t n, uint64_t n_dict,
                          uint64_t n_slots)
{
    return RUN_HEADER_BYTES + bloom_bytes + 8 * n + 8 * n_dict +
           sizeof(struct qsrun_entry) * (n + 1) + 4 * n_slots;
}

/* Points r's sections into its mapping, from r's counts and the Bloom
 * filter's size. */
static void run_sections(struct qsrun *r, size_t bloom_bytes)
{
    r->bloom = (const unsigned char *)r->map + RUN_HEADER_BYTES;
    r->bloom_bytes = bloom_bytes;
    r->keys = (const uint64_t *)(r->bloom + bloom_bytes);
    r->dict = r->keys + r->n;
    r->entries = (const struct qsrun_entry *)(r->dict + r->n_dict);
    r->slots = (const uint32_t *)(r->entries + r->n + 1);
}

static size_t run_offset(const struct qsrun *r, const void *p)
{
    return (size_t)((const unsigned char *)p - (const unsigned char *)r->map);
}

/* A check of the items [from, to) of a section of run r: the first bad
 * one, or to. */
typedef uint64_t run_check_fn(const struct qsrun *r, uint64_t from,
                              uint64_t to);

/* The first a[i], i in [from, to), not above a[i - 1], or to. */
static uint64_t increasing_until(const uint64_t *a, uint64_t from, uint64_t to)
{
    for (uint64_t i = from ? from : 1; i < to; i++) {
        if (a[i] <= a[i - 1])
            return i;
    }
    return to;
}

static uint64_t keys_until(const struct qsrun *r, uint64_t from, uint64_t to)
{
    return increasing_until(r->keys, from, to);
}

static uint64_t dict_until(const struct qsrun *r, uint64_t from, uint64_t to)
{
    return increasing_until(r->dict, from, to);
}

/* The first entry whose time is outside the hour or whose slots are not
 * in order or too many (the next entry's slot tells), or to. */
static uint64_t entries_until(const struct qsrun *r, uint64_t from, uint64_t to)
{
    const struct qsrun_entry *e = r->entries;
    for (uint64_t i = from; i < to; i++) {
        if (e[i].ms_in_hour >= QS_PARTITION_MS || e[i + 1].slot < e[i].slot ||
            e[i + 1].slot - e[i].slot > REC_ADS_MAX)
            return i;
    }
    return to;
}

/* The first slot beyond the dictionary, or to. */
static uint64_t slots_until(const struct qsrun *r, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        if (r->slots[i] >= r->n_dict)
            return i;
    }
    return to;
}

/* Checks the items [0, n) of the section at base, of size bytes each, a
 * FS_FOLIO_MAX of them at a time, releasing each piece's pages once
 * checked: a check reads every page of a run, lookups a few. The first
 * bad item, or n. */
static uint64_t check_released(const struct qsrun *r, run_check_fn *check,
                               const void *base, size_t size, uint64_t n)
{
    uint64_t step = FS_FOLIO_MAX / size;
    for (uint64_t from = 0; from < n; from += step) {
        uint64_t to = n - from < step ? n : from + step;
        uint64_t bad = check(r, from, to);
        fs_map_release(r->map, r->map_len,
                       run_offset(r, (const char *)base + from * size),
                       (to - from) * size);
        if (bad < to)
            return bad;
    }
    return n;
}

/* The index of the first bad entry, or r->n + 1 when all are good (the
 * first starts at slot 0, the sentinel is at n_slots). */
static uint64_t entries_valid_until(const struct qsrun *r)
{
    const struct qsrun_entry *e = r->entries;
    if (e[0].slot != 0)
        return 0;
    uint64_t i = check_released(r, entries_until, e, sizeof *e, r->n);
    if (i < r->n)
        return i;
    return e[r->n].slot == r->n_slots ? r->n + 1 : r->n;
}

/* Checks the sections of a mapped run whose sizes add up: that no lookup
 * can leave the mapped file (entries in order, slots in the dictionary)
 * and that keys and dictionary strictly increase. NULL, or what is wrong
 * with *at the offset. */
static const char *run_sections_valid(const struct qsrun *r, size_t *at)
{
    uint64_t i;
    if ((i = check_released(r, keys_until, r->keys, 8, r->n)) < r->n) {
        *at = run_offset(r, &r->keys[i]);
        return "query ids not strictly increasing";
    }
    if ((i = check_released(r, dict_until, r->dict, 8, r->n_dict)) <
        r->n_dict) {
        *at = run_offset(r, &r->dict[i]);
        return "ad dictionary not strictly increasing";
    }
    if ((i = entries_valid_until(r)) <= r->n) {
        *at = run_offset(r, &r->entries[i]);
        return "an entry's time or ad slots out of range";
    }
    if ((i = check_released(r, slots_until, r->slots, 4, r->n_slots)) <
        r->n_slots) {
        *at = run_offset(r, &r->slots[i]);
        return "an ad slot beyond the dictionary";
    }
    return NULL;
}

/* Checks the header of a mapped run of len content bytes (the sizes of
 * its sections add up) and points into its sections: NULL, or what is
 * wrong with *at the offset. */
static const char *run_layout(struct qsrun *r, uint64_t len, size_t *at)
{
    const unsigned char *p = r->map;
    uint64_t bloom_bytes;
    int64_t file_hour;
    *at = RUN_MAGIC_AT;
    if (len >= 8 && memcmp(p, RUN_MAGIC_FORMAT1, 8) == 0)
        return "run format 1 (CTRDRUN1), written by an older ctrd: this one "
               "reads format 2 only";
    if (len < RUN_HEADER_BYTES || memcmp(p, RUN_MAGIC, 8) != 0)
        return "not a run file";
    memcpy(&r->n, p + RUN_N_AT, 8);
    memcpy(&r->n_slots, p + RUN_N_SLOTS_AT, 8);
    memcpy(&bloom_bytes, p + RUN_BLOOM_BYTES_AT, 8);
    memcpy(&file_hour, p + RUN_HOUR_AT, 8);
    memcpy(&r->n_dict, p + RUN_N_DICT_AT, 8);
    *at = RUN_HOUR_AT;
    if (file_hour != r->hour)
        return "partition hour differs from the MANIFEST's";
    *at = RUN_N_AT;
    if (bloom_bytes % BLOOM_BLOCK_BYTES || bloom_bytes == 0 || r->n > len ||
        r->n_slots > len || r->n_dict > len || bloom_bytes > len ||
        run_bytes(bloom_bytes, r->n, r->n_dict, r->n_slots) != len)
        return "section sizes do not add up to the file's";
    run_sections(r, bloom_bytes);
    return NULL;
}

/* The sparse index of a run whose sections are in place: taken before
 * its keys are checked (a run that fails goes with it), as the checks
 * release the pages behind them. */
static int run_index(struct qsrun *r)
{
    uint64_t n_sparse = (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE;
    r->sparse = alloc_n(n_sparse, sizeof *r->sparse);
    if (!r->sparse)
        return CTRD_ENOMEM;
    for (uint64_t i = 0; i < n_sparse; i++)
        r->sparse[i] = r->keys[i * SPARSE_STRIDE];
    return 0;
}

/* A run of the hour, file in dir (its path into path), nothing mapped
 * yet; NULL when out of memory. */
static struct qsrun *run_new(const char *dir, const struct qs_file *file,
                             int64_t hour, char path[FS_PATH_MAX])
{
    snprintf(path, FS_PATH_MAX, "%s/%s", dir, file->name);
    struct qsrun *r = calloc(1, sizeof *r);
    if (r) {
        r->file = *file;
        r->hour = hour;
    }
    return r;
}

int qsrun_open(const char *dir, const struct qs_file *file, int64_t hour,
               struct qsrun **out, char *err)
{
    char path[FS_PATH_MAX];
    struct qsrun *r = run_new(dir, file, hour, path);
    if (!r)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    size_t at, content_len;
    const char *what;
    int rc = fs_map_sealed(path, &file->seal, &r->map, &r->map_len,
                           &content_len, err);
    if (rc == 0 && (what = run_layout(r, content_len, &at)) != NULL)
        rc =
            ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: %s", path, at, what);
    if (rc == 0 && run_index(r) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (rc == 0 && (what = run_sections_valid(r, &at)) != NULL)
        rc =
            ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: %s", path, at, what);
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

/* The bytes of the QSRUN_FAULT_BYTES windows of the file that [p, p +
 * len), a range of r's mapping, spans. */
static uint64_t fault_bytes(const struct qsrun *r, const void *p, size_t len)
{
    uint64_t at = run_offset(r, p);
    uint64_t from = at / QSRUN_FAULT_BYTES;
    uint64_t to = (at + len + QSRUN_FAULT_BYTES - 1) / QSRUN_FAULT_BYTES;
    return (to - from) * QSRUN_FAULT_BYTES;
}

/* What a lookup that found the query whose entry is e may have mapped
 * past the keys: its entry and the next, its slots, and a window of the
 * dictionary an ad (or the whole dictionary, when smaller). */
static uint64_t found_fault_bytes(const struct qsrun *r,
                                  const struct qsrun_entry *e, uint32_t n_ads)
{
    uint64_t dict = fault_bytes(r, r->dict, r->n_dict * 8);
    uint64_t ads = (uint64_t)n_ads * QSRUN_FAULT_BYTES;
    return fault_bytes(r, e, 2 * sizeof *e) +
           fault_bytes(r, r->slots + e->slot, (size_t)n_ads * 4) +
           (ads < dict ? ads : dict);
}

int qsrun_find(const struct qsrun *r, uint64_t query_id, uint64_t *ads_buf,
               struct qs_query *out, uint64_t *mapped_bytes)
{
    if (!bloom_may_contain(r->bloom, r->bloom_bytes, hash_u64(query_id)))
        return CTRD_ENOTFOUND;
    uint64_t k = run_search(r, query_id);
    *mapped_bytes += 2 * QSRUN_FAULT_BYTES; /* the stride of keys searched */
    if (k >= r->n || r->keys[k] != query_id)
        return CTRD_ENOTFOUND;
    const struct qsrun_entry *e = &r->entries[k];
    const uint32_t *slots = r->slots + e->slot;
    uint32_t n_ads = e[1].slot - e->slot;
    assert(n_ads <= REC_ADS_MAX);
    for (uint32_t i = 0; i < n_ads; i++)
        ads_buf[i] = r->dict[slots[i]];
    *mapped_bytes += found_fault_bytes(r, e, n_ads);
    *out =
        (struct qs_query){query_id, r->hour * QS_PARTITION_MS + e->ms_in_hour,
                          e->term_id, n_ads, ads_buf};
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

const uint64_t *qsrun_keys(const struct qsrun *r)
{
    return r->keys;
}

uint64_t qsrun_disk_bytes(const struct qsrun *r)
{
    return r->map_len;
}

uint64_t qsrun_ram_bytes(const struct qsrun *r)
{
    return (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE * sizeof *r->sparse;
}

uint64_t qsrun_bloom_mapped_max(const struct qsrun *r)
{
    return fault_bytes(r, r->bloom, r->bloom_bytes);
}

/* Releases the pages of the QSRUN_FAULT_BYTES windows of r's mapping
 * that lie whole in [from, to): the window `to` is in stays, as the
 * next read in it would map it all again. */
static void run_release_before(const struct qsrun *r, const void *from,
                               const void *to)
{
    size_t at = run_offset(r, from);
    size_t end = run_offset(r, to) / QSRUN_FAULT_BYTES * QSRUN_FAULT_BYTES;
    if (end > at)
        fs_map_release(r->map, r->map_len, at, end - at);
}

void qsrun_release(const struct qsrun *r)
{
    fs_map_release(r->map, r->map_len, 0, r->map_len);
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
    b->keys = alloc_n(n, sizeof *b->keys);
    b->entries = alloc_n(n + 1, sizeof *b->entries);
    b->ads = alloc_n(n_ads, sizeof *b->ads);
    if (b->keys && b->entries && b->ads)
        return 0;
    qsrun_builder_free(b);
    return CTRD_ENOMEM;
}

void qsrun_builder_reset(struct qsrun_builder *b)
{
    b->n = b->n_ads = 0;
}

/* Past QSRUN_SLOTS_MAX ads the entries' slots wrap: qsrun_write() refuses
 * such a builder. */
void qsrun_builder_add(struct qsrun_builder *b, uint64_t query_id,
                       uint32_t ms_in_hour, uint32_t term_id,
                       const uint64_t *ads, uint32_t n_ads)
{
    assert(b->n == 0 || query_id > b->keys[b->n - 1]);
    b->keys[b->n] = query_id;
    b->entries[b->n] =
        (struct qsrun_entry){ms_in_hour, term_id, (uint32_t)b->n_ads};
    memcpy(b->ads + b->n_ads, ads, (size_t)n_ads * 8);
    b->n_ads += n_ads;
    b->n++;
}

/* A run about to be written: its section sizes, its Bloom filter and
 * sparse index (which the new run takes over), and put(), which puts its
 * keys, dictionary, entries (the sentinel included) and slots. */
struct run_body {
    uint64_t n, n_dict, n_slots;
    uint8_t *bloom;
    size_t bloom_bytes;
    uint64_t *sparse;
    int (*put)(struct fs_writer *w, const void *ctx); /* 0 or a code */
    const void *ctx;
};

/* A Bloom filter and a sparse index for n keys into body, zeroed: 0 or
 * CTRD_ENOMEM. */
static int body_alloc(struct run_body *body, uint64_t n)
{
    body->bloom_bytes = bloom_bytes_for(n);
    body->bloom = calloc(1, body->bloom_bytes);
    body->sparse =
        alloc_n((n + SPARSE_STRIDE - 1) / SPARSE_STRIDE, sizeof *body->sparse);
    return body->bloom && body->sparse ? 0 : CTRD_ENOMEM;
}

/* Maps the run dir/file->name just written from body without reading it
 * back: its layout is body's and its checksums were computed as it was
 * written (qsrun_open() checks both whenever it is loaded again), so its
 * pages are left for the lookups that need them. */
static int run_map_written(const char *dir, const struct qs_file *file,
                           int64_t hour, struct run_body *body,
                           struct qsrun **out, char *err)
{
    char path[FS_PATH_MAX];
    struct qsrun *r = run_new(dir, file, hour, path);
    if (!r)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    r->n = body->n;
    r->n_dict = body->n_dict;
    r->n_slots = body->n_slots;
    r->sparse = body->sparse;
    body->sparse = NULL;
    int rc = fs_map_file(path, &r->map, &r->map_len, err);
    if (rc == 0 && r->map_len != file->seal.bytes)
        rc = ctrd_fail(err, CTRD_EIO, "%s: %zu bytes just after writing %llu",
                       path, r->map_len, (unsigned long long)file->seal.bytes);
    if (rc == 0) {
        run_sections(r, body->bloom_bytes);
        *out = r;
    } else {
        qsrun_free(r);
    }
    return rc;
}

static void put_u64(unsigned char *at, uint64_t v)
{
    memcpy(at, &v, 8);
}

/* What put_run() writes: a run's header, its Bloom filter, its body. */
struct run_put {
    const unsigned char *header;
    const struct run_body *body;
    const char *path;
    char *err;
    int started; /* the file was created */
};

static int put_run(struct fs_writer *w, void *ctx)
{
    struct run_put *r = ctx;
    r->started = 1;
    fs_writer_put(w, r->header, RUN_HEADER_BYTES);
    fs_writer_put(w, r->body->bloom, r->body->bloom_bytes);
    int rc = r->body->put(w, r->body->ctx);
    return rc ? ctrd_fail(r->err, rc, "%s: not written: %s", r->path,
                          ctrd_strerror(rc))
              : 0;
}

/* Writes body as dir/name, a new run of the hour, and maps it; frees the
 * body's Bloom filter and sparse index (or gives the index to the run).
 * A file that fails (a merge stopped, a full disk) is removed. */
static int run_write(const char *dir, const char *name, int64_t hour,
                     struct run_body *body, struct qsrun **out, char *err)
{
    struct qs_file file;
    char path[FS_PATH_MAX];
    snprintf(file.name, sizeof file.name, "%s", name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unsigned char header[RUN_HEADER_BYTES] = {0};
    memcpy(header + RUN_MAGIC_AT, RUN_MAGIC, 8);
    put_u64(header + RUN_N_AT, body->n);
    put_u64(header + RUN_N_SLOTS_AT, body->n_slots);
    put_u64(header + RUN_BLOOM_BYTES_AT, body->bloom_bytes);
    put_u64(header + RUN_HOUR_AT, (uint64_t)hour);
    put_u64(header + RUN_N_DICT_AT, body->n_dict);
    struct run_put r = {header, body, path, err, 0};
    int rc = fs_write_file(path, FS_SEALED, put_run, &r, &file.seal, err);
    if (rc == 0)
        rc = run_map_written(dir, &file, hour, body, out, err);
    if (rc != 0 && r.started)
        unlink(path);
    free(body->bloom);
    free(body->sparse);
    return rc;
}

/* A written builder's sections, for put_parts(). */
struct run_parts {
    const struct qsrun_builder *b;
    const uint64_t *dict;
    uint64_t n_dict;
    const uint32_t *slots;
};

static int put_parts(struct fs_writer *w, const void *ctx)
{
    const struct run_parts *p = ctx;
    const struct qsrun_builder *b = p->b;
    fs_writer_put(w, b->keys, b->n * 8);
    fs_writer_put(w, p->dict, p->n_dict * 8);
    fs_writer_put(w, b->entries, (b->n + 1) * sizeof *b->entries);
    fs_writer_put(w, p->slots, b->n_ads * 4);
    return 0;
}

/* A distinct ad and the rank it was first seen at, for sorting. */
struct ad_seen {
    uint64_t ad;
    uint64_t first;
};

static int ad_seen_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct ad_seen *)a)->ad;
    uint64_t y = ((const struct ad_seen *)b)->ad;
    return (x > y) - (x < y);
}

/* The distinct ads of ads[0..n) in a table, in the order first seen
 * (*seen, *n_seen), and each ad's index among them in slots[0..n). */
static int dict_collect(const uint64_t *ads, uint64_t n, uint32_t *slots,
                        struct ad_seen **seen, uint64_t *n_seen)
{
    struct table t;
    size_t cap = 0;
    uint64_t d = 0;
    int rc = table_init(&t, 1024);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        uint32_t v = (uint32_t)d;
        rc = table_add(&t, ads[i], &v); /* 1: seen before, v its index */
        if (rc == 0)
            rc = grow(seen, &cap, d + 1, sizeof **seen, 1024);
        if (rc == 0) {
            (*seen)[d] = (struct ad_seen){ads[i], d};
            d++;
        }
        rc = rc < 0 ? rc : 0;
        slots[i] = v;
    }
    table_free(&t);
    *n_seen = d;
    return rc;
}

/* The dictionary of ads[0..n) (*dict, malloc'd: the distinct ads
 * ascending, *n_dict of them) and each ad's index in it in slots[0..n). */
static int dict_build(const uint64_t *ads, uint64_t n, uint32_t *slots,
                      uint64_t **dict, uint64_t *n_dict)
{
    struct ad_seen *seen = NULL;
    uint32_t *rank = NULL;
    int rc = dict_collect(ads, n, slots, &seen, n_dict);
    if (rc == 0 && (!(rank = alloc_n(*n_dict, sizeof *rank)) ||
                    !(*dict = alloc_n(*n_dict, sizeof **dict))))
        rc = CTRD_ENOMEM;
    if (rc == 0) {
        if (*n_dict) /* seen is NULL when there are no ads */
            qsort(seen, *n_dict, sizeof *seen, ad_seen_cmp);
        for (uint64_t k = 0; k < *n_dict; k++) {
            (*dict)[k] = seen[k].ad;
            rank[seen[k].first] = (uint32_t)k;
        }
        for (uint64_t i = 0; i < n; i++)
            slots[i] = rank[slots[i]];
    }
    free(seen);
    free(rank);
    return rc;
}

int qsrun_write(const char *dir, const char *name, int64_t hour,
                struct qsrun_builder *b, struct qsrun **out, char *err)
{
    if (b->n_ads > QSRUN_SLOTS_MAX)
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s/%s: %llu ads, more than a run holds (%llu)", dir,
                         name, (unsigned long long)b->n_ads,
                         (unsigned long long)QSRUN_SLOTS_MAX);
    uint64_t *dict = NULL;
    uint32_t *slots = alloc_n(b->n_ads, sizeof *slots);
    struct run_parts p = {.b = b};
    struct run_body body = {
        .n = b->n, .n_slots = b->n_ads, .put = put_parts, .ctx = &p};
    int rc = slots && body_alloc(&body, b->n) == 0
                 ? dict_build(b->ads, b->n_ads, slots, &dict, &p.n_dict)
                 : CTRD_ENOMEM;
    if (rc == 0) {
        bloom_add_keys(body.bloom, body.bloom_bytes, b->keys, b->n);
        for (uint64_t i = 0; i < b->n; i += SPARSE_STRIDE)
            body.sparse[i / SPARSE_STRIDE] = b->keys[i];
        b->entries[b->n] = (struct qsrun_entry){0, 0, (uint32_t)b->n_ads};
        p.dict = dict;
        p.slots = slots;
        body.n_dict = p.n_dict;
        rc = run_write(dir, name, hour, &body, out, err);
    } else {
        free(body.bloom);
        free(body.sparse);
        rc = ctrd_fail(err, rc, "out of memory writing %s/%s", dir, name);
    }
    free(dict);
    free(slots);
    return rc;
}

/* ---- merging ---- */

int qsrun_merge_fits(struct qsrun *const *runs, size_t n)
{
    uint64_t slots = 0;
    for (size_t r = 0; r < n; r++)
        slots += runs[r]->n_slots;
    return slots <= QSRUN_SLOTS_MAX;
}

/* Which of n ascending arrays a[r][0..len[r]) has the least next value
 * a[r][pos[r]], or n when all are done. */
static size_t least_next(const uint64_t *const *a, const uint64_t *len,
                         const uint64_t *pos, size_t n)
{
    size_t best = n;
    for (size_t r = 0; r < n; r++) {
        if (pos[r] < len[r] && (best == n || a[r][pos[r]] < a[best][pos[best]]))
            best = r;
    }
    return best;
}

/* The union of the runs' dictionaries into dict (room for all of them),
 * and maps[r][i]: where runs[r]'s dictionary entry i went. Returns the
 * union's size. */
static uint64_t dict_union(struct qsrun *const *runs, size_t n, uint64_t *dict,
                           uint32_t *const *maps)
{
    const uint64_t *a[QSRUN_MERGE_MAX];
    uint64_t len[QSRUN_MERGE_MAX], pos[QSRUN_MERGE_MAX] = {0}, d = 0;
    for (size_t r = 0; r < n; r++) {
        a[r] = runs[r]->dict;
        len[r] = runs[r]->n_dict;
    }
    size_t best;
    while ((best = least_next(a, len, pos, n)) < n) {
        uint64_t ad = a[best][pos[best]];
        if (d == 0 || dict[d - 1] != ad)
            dict[d++] = ad;
        maps[best][pos[best]++] = (uint32_t)(d - 1);
    }
    return d;
}

/* A merge as put_merged() writes it: the runs' queries in key order,
 * their slots mapped by maps into the union dictionary. */
struct merged {
    struct qsrun *const *runs;
    size_t n_runs;
    uint32_t *const *maps;
    const uint64_t *dict;
    uint64_t n_dict, n_slots;
    const atomic_int *stop;
    int release;      /* the inputs' pages behind the reads */
    uint64_t *sparse; /* filled as the keys go by */
};

enum merged_section { MERGED_KEYS, MERGED_ENTRIES, MERGED_SLOTS };

/* Small puts gathered into one fs_writer_put() a buffer. */
struct stage {
    struct fs_writer *w;
    size_t used;
    unsigned char buf[1 << 16];
};

static void stage_put(struct stage *st, const void *p, size_t len)
{
    if (st->used + len > sizeof st->buf) {
        fs_writer_put(st->w, st->buf, st->used);
        st->used = 0;
    }
    memcpy(st->buf + st->used, p, len);
    st->used += len;
}

/* Releases, when the merge does, what a section has read of the inputs
 * behind their cursors pos (the keys, else the entries, and for the slots
 * their slots too), but the window each cursor is in (see
 * run_release_before()); qsrun_merge() releases the rest at the end. */
static void release_read(const struct merged *m, enum merged_section what,
                         const uint64_t *pos)
{
    for (size_t r = 0; m->release && r < m->n_runs; r++) {
        const struct qsrun *in = m->runs[r];
        if (what == MERGED_KEYS)
            run_release_before(in, in->keys, &in->keys[pos[r]]);
        else
            run_release_before(in, in->entries, &in->entries[pos[r]]);
        if (what == MERGED_SLOTS)
            run_release_before(in, in->slots,
                               &in->slots[in->entries[pos[r]].slot]);
    }
}

/* Puts one section of the merged run, going through the runs' queries in
 * key order once (releasing the inputs' pages behind, see
 * release_read()). 0, CTRD_EAGAIN (the section cut short) once *stop is
 * set, or CTRD_ECORRUPT when two runs hold one id (the run would not
 * load again). */
static int put_merged_section(struct stage *st, const struct merged *m,
                              enum merged_section what)
{
    const uint64_t *a[QSRUN_MERGE_MAX];
    uint64_t len[QSRUN_MERGE_MAX], pos[QSRUN_MERGE_MAX] = {0};
    uint64_t q = 0, slot = 0, last = 0;
    for (size_t r = 0; r < m->n_runs; r++) {
        a[r] = m->runs[r]->keys;
        len[r] = m->runs[r]->n;
    }
    size_t best;
    for (; (best = least_next(a, len, pos, m->n_runs)) < m->n_runs; q++) {
        if (q % MERGE_RELEASE_EVERY == 0)
            release_read(m, what, pos);
        if (q % MERGE_STOP_EVERY == 0 && atomic_load(m->stop))
            return CTRD_EAGAIN;
        const struct qsrun *r = m->runs[best];
        uint64_t k = pos[best]++;
        const struct qsrun_entry *e = &r->entries[k];
        if (what == MERGED_KEYS) {
            if (q > 0 && r->keys[k] <= last)
                return CTRD_ECORRUPT; /* inputs share an id */
            last = r->keys[k];
            if (q % SPARSE_STRIDE == 0)
                m->sparse[q / SPARSE_STRIDE] = r->keys[k];
            stage_put(st, &r->keys[k], 8);
        } else if (what == MERGED_ENTRIES) {
            struct qsrun_entry out = {e->ms_in_hour, e->term_id,
                                      (uint32_t)slot};
            stage_put(st, &out, sizeof out);
            slot += e[1].slot - e->slot;
        } else {
            for (uint32_t i = e->slot; i < e[1].slot; i++) {
                uint32_t mapped = m->maps[best][r->slots[i]];
                stage_put(st, &mapped, 4);
            }
        }
    }
    if (what == MERGED_ENTRIES) {
        struct qsrun_entry sentinel = {0, 0, (uint32_t)m->n_slots};
        stage_put(st, &sentinel, sizeof sentinel);
    }
    return 0;
}

/* Puts the merged run's keys, dictionary, entries and slots, streaming
 * them from the runs, so a merge holds no copy of its output: 0,
 * CTRD_EAGAIN when stopped midway (the file unfinished), CTRD_ENOMEM. */
static int put_merged(struct fs_writer *w, const void *ctx)
{
    const struct merged *m = ctx;
    struct stage *st = malloc(sizeof *st);
    if (!st)
        return CTRD_ENOMEM;
    st->w = w;
    st->used = 0;
    int rc = put_merged_section(st, m, MERGED_KEYS);
    if (rc == 0) {
        fs_writer_put(w, st->buf, st->used);
        st->used = 0;
        fs_writer_put(w, m->dict, m->n_dict * 8);
        rc = put_merged_section(st, m, MERGED_ENTRIES);
    }
    if (rc == 0)
        rc = put_merged_section(st, m, MERGED_SLOTS);
    fs_writer_put(w, st->buf, st->used);
    free(st);
    return rc;
}

int qsrun_merge(const char *dir, const char *name, int64_t hour,
                struct qsrun *const *runs, size_t n, int release,
                const atomic_int *stop, struct qsrun **out, char *err)
{
    assert(n <= QSRUN_MERGE_MAX);
    if (!qsrun_merge_fits(runs, n))
        return ctrd_fail(err, CTRD_EINVAL,
                         "%s/%s: the runs merged would hold more ads than a "
                         "run holds (%llu)",
                         dir, name, (unsigned long long)QSRUN_SLOTS_MAX);
    uint64_t all_dicts = 0;
    uint32_t *maps[QSRUN_MERGE_MAX] = {0};
    struct merged m = {.runs = runs,
                       .n_runs = n,
                       .maps = maps,
                       .stop = stop,
                       .release = release};
    struct run_body body = {.put = put_merged, .ctx = &m};
    for (size_t r = 0; r < n; r++) {
        body.n += runs[r]->n;
        body.n_slots += runs[r]->n_slots;
        all_dicts += runs[r]->n_dict;
    }
    uint64_t *dict = alloc_n(all_dicts, sizeof *dict);
    int ok = dict && body_alloc(&body, body.n) == 0;
    for (size_t r = 0; r < n; r++)
        ok = ok && (maps[r] = alloc_n(runs[r]->n_dict, sizeof **maps));
    int rc = 0;
    if (ok) {
        m.n_slots = body.n_slots;
        m.n_dict = body.n_dict = dict_union(runs, n, dict, maps);
        m.dict = dict;
        m.sparse = body.sparse;
        for (size_t r = 0; r < n; r++) {
            bloom_add_keys(body.bloom, body.bloom_bytes, runs[r]->keys,
                           runs[r]->n);
            if (release) /* what the merge read of it: keys, dictionary */
                qsrun_release(runs[r]);
        }
        rc = run_write(dir, name, hour, &body, out, err);
    } else {
        free(body.bloom);
        free(body.sparse);
        rc = ctrd_fail(err, CTRD_ENOMEM,
                       "out of memory merging runs into %s/%s", dir, name);
    }
    for (size_t r = 0; release && r < n; r++) /* what the sections left */
        qsrun_release(runs[r]);
    for (size_t r = 0; r < n; r++)
        free(maps[r]);
    free(dict);
    return rc;
}
