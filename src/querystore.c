/* querystore: the QueryStore; see querystore.h.
 *
 * RUN FILE (q<hour>-<seq>-<n>.run): the content of a sealed file (fsutil.h:
 * a checksum trailer follows), little-endian, all sections 8-aligned:
 *   offset  size          field
 *   0       8             magic "CTRDRUN1"
 *   8       8             n: queries in the run
 *   16      8             n_ads: ad ids in the ads section
 *   24      8             bloom_bytes (a multiple of 64)
 *   32      8             hour: partition, floor(time_ms / 3600000)
 *   40      24            zero
 *   64      bloom_bytes   blocked Bloom filter of hash_u64(query_id)
 *   ...     8 n           query_ids, strictly increasing
 *   ...     16 (n + 1)    entries {u32 ms within the hour, u32 term id,
 *                         u64 first ad index}; entry n is a sentinel whose
 *                         ad index is n_ads, so query i has the ads
 *                         [entry[i].ad, entry[i+1].ad)
 *   ...     8 n_ads       ad ids
 * MARKS FILE (m<hour>-<seq>-<n>.marks): the content of a sealed file:
 *   offset  size          field
 *   0       16 k          k pairs {u64 query_id, u64 ad_id}, each a click
 *                         on an ad the partition's query showed
 * Files are written whole and fsync'd before a manifest names them, and
 * never changed after; loading checks every checksum, the layout, and
 * that every marked pair names a stored query and one of its ads.
 *
 * CHECKPOINT. qs_checkpoint() first writes every new file (runs of the
 * memtables, marks files), then adopts them: if a write fails the store is
 * as it was (what was written is garbage for the caller to delete). Merges
 * come last and replace their inputs only once written. */
#include "querystore.h"

#include "bloom.h"
#include "fsutil.h"
#include "hash.h"
#include "sharder.h"

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
#define MARK_FILES_MAX 8
#define MERGE_FAN_IN 4

struct run_entry {
    uint32_t ms_in_hour;
    uint32_t term_id;
    uint64_t ad;
};
_Static_assert(sizeof(struct run_entry) == 16, "RUN FILE: 16-byte entries");

/* A marks file's pair. */
struct mark_pair {
    uint64_t query_id, ad_id;
};
_Static_assert(sizeof(struct mark_pair) == 16, "MARKS FILE: 16-byte pairs");

/* A file named in the manifest, with what identifies it. */
struct named_file {
    char name[64];
    struct fs_seal seal;
};

struct run {
    struct named_file file;
    void *map;
    size_t map_len, content_len;
    uint64_t n;
    const uint8_t *bloom;
    size_t bloom_bytes;
    const uint64_t *keys;
    const struct run_entry *entries;
    const uint64_t *ads;
    uint64_t *sparse; /* keys[0], keys[SPARSE_STRIDE], ... */
};

/* Open-addressing set of (query_id, ad) pairs with an int64 payload;
 * query_id 0 marks an empty slot. */
struct pair_slot {
    uint64_t query_id, ad_id;
    int64_t value;
};
struct pairset {
    struct pair_slot *slots;
    uint64_t cap, used;
};

struct partition {
    int64_t hour;
    struct run **runs; /* oldest first; sizes non-increasing-ish */
    size_t n_runs;
    struct pairset marks;
    struct named_file *mark_files;
    size_t n_mark_files;
};

struct mem_entry {
    uint64_t query_id;
    int64_t time_ms;
    uint32_t term_id;
    uint32_t n_ads;
    uint64_t ad; /* index in mem->ads */
};

/* One worker's queries and clicks since the last checkpoint. */
struct memtable {
    uint64_t *slot_keys; /* query_id; 0 = empty (query ids are > 0) */
    uint32_t *slot_idx;  /* entry index of the same slot */
    uint64_t slot_mask;
    struct mem_entry *entries;
    uint64_t n, cap;
    uint64_t *ads;
    uint64_t n_ads, cap_ads;
    struct pairset marks; /* value: partition hour */
};

struct qs {
    char dir[512];
    unsigned n_workers;
    int64_t horizon_hour; /* partitions below it are gone */
    struct partition *parts; /* ascending hour */
    size_t n_parts;
    unsigned files_written; /* per checkpoint, for unique names */
    struct memtable mem[];
};

/* ---- pair sets ---- */

static int pairset_grow(struct pairset *s)
{
    uint64_t cap = s->cap ? s->cap * 2 : 64;
    struct pair_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CTRD_ENOMEM;
    for (uint64_t i = 0; i < s->cap; i++) {
        struct pair_slot *o = &s->slots[i];
        if (!o->query_id)
            continue;
        uint64_t j = hash_u64(o->query_id ^ hash_u64(o->ad_id)) & (cap - 1);
        while (slots[j].query_id)
            j = (j + 1) & (cap - 1);
        slots[j] = *o;
    }
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static struct pair_slot *pairset_find(const struct pairset *s,
                                      uint64_t query_id, uint64_t ad_id)
{
    if (!s->cap)
        return NULL;
    uint64_t j = hash_u64(query_id ^ hash_u64(ad_id)) & (s->cap - 1);
    for (; s->slots[j].query_id; j = (j + 1) & (s->cap - 1)) {
        if (s->slots[j].query_id == query_id && s->slots[j].ad_id == ad_id)
            return &s->slots[j];
    }
    return NULL;
}

/* Adds a pair known to be absent. */
static int pairset_add(struct pairset *s, uint64_t query_id, uint64_t ad_id,
                       int64_t value)
{
    if ((s->used + 1) * 4 > s->cap * 3 && pairset_grow(s) != 0)
        return CTRD_ENOMEM;
    uint64_t j = hash_u64(query_id ^ hash_u64(ad_id)) & (s->cap - 1);
    while (s->slots[j].query_id)
        j = (j + 1) & (s->cap - 1);
    s->slots[j] = (struct pair_slot){query_id, ad_id, value};
    s->used++;
    return 0;
}

static void pairset_clear(struct pairset *s)
{
    free(s->slots);
    *s = (struct pairset){0};
}

/* ---- runs ---- */

static void run_free(struct run *r)
{
    if (!r)
        return;
    fs_unmap(r->map, r->map_len);
    free(r->sparse);
    free(r);
}

/* Whether keys strictly increase and ad indexes run from 0 to n_ads
 * without going back, so no lookup can leave the mapped file. */
static int run_index_valid(const struct run *r, uint64_t n_ads)
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

/* Maps a run file and checks its checksums and layout. */
static int run_open(struct qs *qs, const struct named_file *file,
                    int64_t hour, struct run **out, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", qs->dir, file->name);
    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    r->file = *file;
    int rc = fs_map_sealed(path, &file->seal, &r->map, &r->map_len,
                           &r->content_len, err);
    if (rc != 0)
        goto fail;
    const unsigned char *p = r->map;
    uint64_t n_ads, bloom_bytes;
    int64_t file_hour;
    const char *what = "not a run file";
    size_t at = RUN_MAGIC_AT;
    if (r->content_len < RUN_HEADER_BYTES || memcmp(p, RUN_MAGIC, 8) != 0)
        goto corrupt;
    memcpy(&r->n, p + RUN_N_AT, 8);
    memcpy(&n_ads, p + RUN_N_ADS_AT, 8);
    memcpy(&bloom_bytes, p + RUN_BLOOM_BYTES_AT, 8);
    memcpy(&file_hour, p + RUN_HOUR_AT, 8);
    at = RUN_HOUR_AT;
    what = "partition hour differs from the MANIFEST's";
    if (file_hour != hour)
        goto corrupt;
    at = RUN_N_AT;
    what = "section sizes do not add up to the file's";
    uint64_t len = r->content_len;
    if (bloom_bytes % BLOOM_BLOCK_BYTES || r->n > len || n_ads > len ||
        bloom_bytes > len ||
        RUN_HEADER_BYTES + bloom_bytes + 8 * r->n +
                sizeof(struct run_entry) * (r->n + 1) + 8 * n_ads !=
            len)
        goto corrupt;
    r->bloom = p + RUN_HEADER_BYTES;
    r->bloom_bytes = bloom_bytes;
    r->keys = (const uint64_t *)(r->bloom + bloom_bytes);
    r->entries = (const struct run_entry *)(r->keys + r->n);
    r->ads = (const uint64_t *)(r->entries + r->n + 1);
    at = (size_t)((const unsigned char *)r->keys - p);
    what = "keys not increasing, or an entry out of range";
    if (!run_index_valid(r, n_ads))
        goto corrupt;
    uint64_t n_sparse = (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE;
    r->sparse = malloc((n_sparse ? n_sparse : 1) * sizeof *r->sparse);
    if (!r->sparse) {
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < n_sparse; i++)
        r->sparse[i] = r->keys[i * SPARSE_STRIDE];
    *out = r;
    return 0;
corrupt:
    rc = ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: %s", path, at, what);
fail:
    run_free(r);
    return rc;
}

/* Index of query_id in the run, or -1. */
static int64_t run_find(const struct run *r, uint64_t query_id)
{
    if (!bloom_may_contain(r->bloom, r->bloom_bytes, hash_u64(query_id)))
        return -1;
    /* Last sparse key <= query_id, then a binary search in its stride. */
    uint64_t lo = 0, hi = (r->n + SPARSE_STRIDE - 1) / SPARSE_STRIDE;
    while (lo < hi) {
        uint64_t mid = (lo + hi) / 2;
        if (r->sparse[mid] <= query_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return -1;
    uint64_t b = (lo - 1) * SPARSE_STRIDE;
    uint64_t e = b + SPARSE_STRIDE < r->n ? b + SPARSE_STRIDE : r->n;
    while (b < e) {
        uint64_t mid = (b + e) / 2;
        if (r->keys[mid] < query_id)
            b = mid + 1;
        else
            e = mid;
    }
    return (b < r->n && r->keys[b] == query_id) ? (int64_t)b : -1;
}

/* A run being built in memory before it is written. */
struct run_builder {
    uint64_t n, n_ads;
    uint64_t *keys;
    struct run_entry *entries;
    uint64_t *ads;
};

static void builder_free(struct run_builder *b)
{
    free(b->keys);
    free(b->entries);
    free(b->ads);
}

static int builder_init(struct run_builder *b, uint64_t n, uint64_t n_ads)
{
    b->n = 0;
    b->n_ads = 0;
    b->keys = malloc((n ? n : 1) * 8);
    b->entries = malloc((n + 1) * sizeof *b->entries);
    b->ads = malloc((n_ads ? n_ads : 1) * 8);
    if (b->keys && b->entries && b->ads)
        return 0;
    builder_free(b);
    return CTRD_ENOMEM;
}

static void builder_add(struct run_builder *b, uint64_t query_id,
                        uint32_t ms_in_hour, uint32_t term_id,
                        const uint64_t *ads, uint32_t n_ads)
{
    b->keys[b->n] = query_id;
    b->entries[b->n] = (struct run_entry){ms_in_hour, term_id, b->n_ads};
    memcpy(b->ads + b->n_ads, ads, (size_t)n_ads * 8);
    b->n_ads += n_ads;
    b->n++;
}

/* Writes the builder as a new run file of the partition and maps it. */
static int builder_write(struct qs *qs, struct run_builder *b, int64_t hour,
                         uint64_t seq, struct run **out, char *err)
{
    struct named_file file;
    char path[FS_PATH_MAX];
    snprintf(file.name, sizeof file.name, "q%lld-%llu-%u.run",
             (long long)hour, (unsigned long long)seq, qs->files_written++);
    snprintf(path, sizeof path, "%s/%s", qs->dir, file.name);
    size_t bloom_bytes = bloom_bytes_for(b->n);
    uint8_t *bloom = calloc(1, bloom_bytes);
    struct fs_writer *w = malloc(sizeof *w);
    int rc = CTRD_ENOMEM;
    if (!bloom || !w) {
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory writing %s", path);
        goto done;
    }
    for (uint64_t i = 0; i < b->n; i++)
        bloom_add(bloom, bloom_bytes, hash_u64(b->keys[i]));
    b->entries[b->n] = (struct run_entry){0, 0, b->n_ads};
    unsigned char header[RUN_HEADER_BYTES] = {0};
    uint64_t bloom_u64 = bloom_bytes;
    memcpy(header + RUN_MAGIC_AT, RUN_MAGIC, 8);
    memcpy(header + RUN_N_AT, &b->n, 8);
    memcpy(header + RUN_N_ADS_AT, &b->n_ads, 8);
    memcpy(header + RUN_BLOOM_BYTES_AT, &bloom_u64, 8);
    memcpy(header + RUN_HOUR_AT, &hour, 8);
    rc = fs_writer_open(w, path, FS_SEALED, err);
    if (rc != 0)
        goto done;
    fs_writer_put(w, header, sizeof header);
    fs_writer_put(w, bloom, bloom_bytes);
    fs_writer_put(w, b->keys, b->n * 8);
    fs_writer_put(w, b->entries, (b->n + 1) * sizeof *b->entries);
    fs_writer_put(w, b->ads, b->n_ads * 8);
    rc = fs_writer_seal(w, &file.seal, err);
    if (rc == 0)
        rc = run_open(qs, &file, hour, out, err);
done:
    free(bloom);
    free(w);
    return rc;
}

/* Merges runs[0..n) of one partition (disjoint keys) into a new run. */
static int runs_merge(struct qs *qs, struct run *const *runs, size_t n,
                      int64_t hour, uint64_t seq, struct run **out, char *err)
{
    uint64_t pos[MERGE_FAN_IN] = {0}, total = 0, total_ads = 0;
    for (size_t r = 0; r < n; r++) {
        total += runs[r]->n;
        total_ads += runs[r]->entries[runs[r]->n].ad;
    }
    struct run_builder m;
    if (builder_init(&m, total, total_ads) != 0)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory merging runs");
    for (uint64_t done = 0; done < total; done++) {
        size_t best = n;
        for (size_t r = 0; r < n; r++) {
            if (pos[r] < runs[r]->n &&
                (best == n ||
                 runs[r]->keys[pos[r]] < runs[best]->keys[pos[best]]))
                best = r;
        }
        const struct run *r = runs[best];
        uint64_t k = pos[best]++;
        const struct run_entry *e = &r->entries[k];
        builder_add(&m, r->keys[k], e->ms_in_hour, e->term_id, r->ads + e->ad,
                    (uint32_t)(e[1].ad - e->ad));
    }
    int rc = builder_write(qs, &m, hour, seq, out, err);
    builder_free(&m);
    return rc;
}

/* ---- partitions ---- */

static struct partition *partition_find(const struct qs *qs, int64_t hour)
{
    size_t lo = 0, hi = qs->n_parts;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (qs->parts[mid].hour < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < qs->n_parts && qs->parts[lo].hour == hour) ? &qs->parts[lo]
                                                            : NULL;
}

static struct partition *partition_get(struct qs *qs, int64_t hour)
{
    struct partition *p = partition_find(qs, hour);
    if (p)
        return p;
    struct partition *parts =
        realloc(qs->parts, (qs->n_parts + 1) * sizeof *parts);
    if (!parts)
        return NULL;
    qs->parts = parts;
    size_t at = 0;
    while (at < qs->n_parts && parts[at].hour < hour)
        at++;
    memmove(parts + at + 1, parts + at, (qs->n_parts - at) * sizeof *parts);
    parts[at] = (struct partition){.hour = hour};
    qs->n_parts++;
    return &parts[at];
}

static void partition_free(struct partition *p)
{
    for (size_t i = 0; i < p->n_runs; i++)
        run_free(p->runs[i]);
    free(p->runs);
    pairset_clear(&p->marks);
    free(p->mark_files);
}

static int partition_add_run(struct partition *p, struct run *r)
{
    struct run **runs = realloc(p->runs, (p->n_runs + 1) * sizeof *runs);
    if (!runs)
        return CTRD_ENOMEM;
    p->runs = runs;
    p->runs[p->n_runs++] = r;
    return 0;
}

static int partition_add_mark_file(struct partition *p,
                                   const struct named_file *file)
{
    struct named_file *files =
        realloc(p->mark_files, (p->n_mark_files + 1) * sizeof *files);
    if (!files)
        return CTRD_ENOMEM;
    p->mark_files = files;
    files[p->n_mark_files++] = *file;
    return 0;
}

/* Keeps the runs of a partition few (size-tiered): whenever the newest
 * MERGE_FAN_IN runs are of one size class (the oldest of them at most
 * MERGE_FAN_IN times the newest), they become one run. A query is then
 * rewritten about log_MERGE_FAN_IN(runs) times, and a partition holds at
 * most MERGE_FAN_IN - 1 runs per size class. */
static int partition_compact(struct qs *qs, struct partition *p, uint64_t seq,
                             char *err)
{
    while (p->n_runs >= MERGE_FAN_IN) {
        struct run **tail = p->runs + p->n_runs - MERGE_FAN_IN;
        if (tail[0]->n > MERGE_FAN_IN * tail[MERGE_FAN_IN - 1]->n)
            break;
        struct run *merged;
        int rc = runs_merge(qs, tail, MERGE_FAN_IN, p->hour, seq, &merged,
                            err);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < MERGE_FAN_IN; i++)
            run_free(tail[i]);
        p->n_runs -= MERGE_FAN_IN;
        p->runs[p->n_runs++] = merged;
    }
    return 0;
}

/* ---- open, load, close ---- */

int qs_open(const char *dir, unsigned n_workers, int64_t horizon_ms,
            struct qs **out, char *err)
{
    struct qs *qs = calloc(1, sizeof *qs + n_workers * sizeof qs->mem[0]);
    if (!qs)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    snprintf(qs->dir, sizeof qs->dir, "%s", dir);
    qs->n_workers = n_workers;
    qs->horizon_hour = horizon_ms / QS_PARTITION_MS;
    *out = qs;
    return 0;
}

/* Empties a memtable but keeps its memory for the next interval. */
static void memtable_reset(struct memtable *m)
{
    if (m->slot_keys)
        memset(m->slot_keys, 0, (m->slot_mask + 1) * sizeof *m->slot_keys);
    m->n = 0;
    m->n_ads = 0;
    pairset_clear(&m->marks);
}

static void memtable_clear(struct memtable *m)
{
    free(m->slot_keys);
    free(m->slot_idx);
    free(m->entries);
    free(m->ads);
    pairset_clear(&m->marks);
    *m = (struct memtable){0};
}

void qs_close(struct qs *qs)
{
    if (!qs)
        return;
    for (size_t i = 0; i < qs->n_parts; i++)
        partition_free(&qs->parts[i]);
    free(qs->parts);
    for (unsigned w = 0; w < qs->n_workers; w++)
        memtable_clear(&qs->mem[w]);
    free(qs);
}

/* Whether the partition's runs hold query_id with ad_id among its ads. */
static int partition_showed(const struct partition *p, uint64_t query_id,
                            uint64_t ad_id)
{
    for (size_t i = 0; i < p->n_runs; i++) {
        const struct run *r = p->runs[i];
        int64_t k = run_find(r, query_id);
        if (k < 0)
            continue;
        for (uint64_t a = r->entries[k].ad; a < r->entries[k + 1].ad; a++) {
            if (r->ads[a] == ad_id)
                return 1;
        }
        return 0;
    }
    return 0;
}

/* Loads a marks file of partition p, whose runs are loaded. */
static int load_marks(struct qs *qs, struct partition *p,
                      const struct named_file *file, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", qs->dir, file->name);
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, &file->seal, &map, &map_len, &len, err);
    if (rc != 0)
        return rc;
    const struct mark_pair *pairs = map;
    size_t n = len / sizeof *pairs;
    if (len % sizeof *pairs)
        rc = ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: a pair cut "
                       "short", path, n * sizeof *pairs);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct mark_pair m;
        memcpy(&m, &pairs[i], sizeof m);
        if (!partition_showed(p, m.query_id, m.ad_id))
            rc = ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %zu: pair "
                           "(query %llu, ad %llu) names no query of the "
                           "partition's runs that showed that ad", path,
                           i * sizeof m, (unsigned long long)m.query_id,
                           (unsigned long long)m.ad_id);
        else if (!pairset_find(&p->marks, m.query_id, m.ad_id) &&
                 pairset_add(&p->marks, m.query_id, m.ad_id, 0) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s",
                           path);
    }
    fs_unmap(map, map_len);
    if (rc == 0 && partition_add_mark_file(p, file) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    return rc;
}

int qs_load(struct qs *qs, const char *kind, int64_t hour, const char *file,
            const struct fs_seal *seal, char *err)
{
    struct partition *p = partition_get(qs, hour);
    if (!p)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    struct named_file f = {.seal = *seal};
    if (snprintf(f.name, sizeof f.name, "%s", file) >= (int)sizeof f.name)
        return ctrd_fail(err, CTRD_ECORRUPT, "%s/%.64s...: file name too "
                         "long", qs->dir, file);
    if (strcmp(kind, "marks") == 0)
        return load_marks(qs, p, &f, err);
    struct run *r;
    int rc = run_open(qs, &f, hour, &r, err);
    if (rc == 0 && partition_add_run(p, r) != 0) {
        run_free(r);
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    return rc;
}

/* ---- the worker path ---- */

/* The slot of query_id, or the empty slot where it would go. */
static uint64_t mem_slot(const struct memtable *m, uint64_t query_id)
{
    uint64_t j = hash_u64(query_id) & m->slot_mask;
    while (m->slot_keys[j] && m->slot_keys[j] != query_id)
        j = (j + 1) & m->slot_mask;
    return j;
}

int qs_get(struct qs *qs, unsigned worker, uint64_t query_id,
           struct qs_query *out)
{
    const struct memtable *m = &qs->mem[worker];
    if (m->slot_keys) {
        uint64_t j = mem_slot(m, query_id);
        if (m->slot_keys[j]) {
            const struct mem_entry *e = &m->entries[m->slot_idx[j]];
            *out = (struct qs_query){query_id, e->time_ms, e->term_id,
                                     e->n_ads, m->ads + e->ad};
            return 0;
        }
    }
    for (size_t i = qs->n_parts; i-- > 0;) {
        const struct partition *p = &qs->parts[i];
        for (size_t r = p->n_runs; r-- > 0;) {
            const struct run *run = p->runs[r];
            int64_t k = run_find(run, query_id);
            if (k < 0)
                continue;
            const struct run_entry *e = &run->entries[k];
            *out = (struct qs_query){
                query_id, p->hour * QS_PARTITION_MS + e->ms_in_hour,
                e->term_id, (uint32_t)(e[1].ad - e->ad), run->ads + e->ad};
            return 0;
        }
    }
    return CTRD_ENOTFOUND;
}

static void mem_slot_set(struct memtable *m, uint64_t query_id, uint64_t i)
{
    uint64_t j = mem_slot(m, query_id);
    m->slot_keys[j] = query_id;
    m->slot_idx[j] = (uint32_t)i;
}

static int mem_grow(struct memtable *m)
{
    uint64_t cap = m->cap ? m->cap * 2 : 4096;
    struct mem_entry *entries = realloc(m->entries, cap * sizeof *entries);
    if (!entries)
        return CTRD_ENOMEM;
    m->entries = entries;
    m->cap = cap;
    uint64_t n_slots = cap * 2;
    uint64_t *keys = calloc(n_slots, sizeof *keys);
    uint32_t *idx = malloc(n_slots * sizeof *idx);
    if (!keys || !idx) {
        free(keys);
        free(idx);
        return CTRD_ENOMEM;
    }
    free(m->slot_keys);
    free(m->slot_idx);
    m->slot_keys = keys;
    m->slot_idx = idx;
    m->slot_mask = n_slots - 1;
    for (uint64_t i = 0; i < m->n; i++)
        mem_slot_set(m, m->entries[i].query_id, i);
    return 0;
}

int qs_put(struct qs *qs, unsigned worker, const struct rec_query *q,
           uint32_t term_id)
{
    struct memtable *m = &qs->mem[worker];
    if (m->n == m->cap && mem_grow(m) != 0)
        return CTRD_ENOMEM;
    if (!m->ads || m->n_ads + q->n_ads > m->cap_ads) {
        uint64_t cap = m->cap_ads ? m->cap_ads * 2 : 16384;
        while (cap < m->n_ads + q->n_ads)
            cap *= 2;
        uint64_t *ads = realloc(m->ads, cap * 8);
        if (!ads)
            return CTRD_ENOMEM;
        m->ads = ads;
        m->cap_ads = cap;
    }
    m->entries[m->n] = (struct mem_entry){q->query_id, q->time_ms, term_id,
                                          q->n_ads, m->n_ads};
    memcpy(m->ads + m->n_ads, q->ads, (size_t)q->n_ads * 8);
    m->n_ads += q->n_ads;
    mem_slot_set(m, q->query_id, m->n++);
    return 0;
}

int qs_mark_clicked(struct qs *qs, unsigned worker, const struct qs_query *q,
                    uint64_t ad_id)
{
    struct memtable *m = &qs->mem[worker];
    int64_t hour = q->time_ms / QS_PARTITION_MS;
    const struct partition *p = partition_find(qs, hour);
    if (pairset_find(&m->marks, q->query_id, ad_id) ||
        (p && pairset_find(&p->marks, q->query_id, ad_id)))
        return 0;
    return pairset_add(&m->marks, q->query_id, ad_id, hour) ? CTRD_ENOMEM : 1;
}

int qs_too_old(const struct qs *qs, int64_t time_ms)
{
    return time_ms / QS_PARTITION_MS < qs->horizon_hour;
}

/* ---- checkpoint ---- */

/* A query_id and where its memtable entry is (worker << 32 | index). */
struct kv {
    uint64_t key, ref;
};

#define RADIX_BUCKETS (1 << 16)

/* LSD radix sort by key, 16-bit digits; passes whose digit is the same
 * for every key are skipped. Result in a; count has RADIX_BUCKETS room. */
static void radix_sort(struct kv *a, struct kv *tmp, uint64_t *count,
                       uint64_t n)
{
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, RADIX_BUCKETS * sizeof *count);
        for (uint64_t i = 0; i < n; i++)
            count[(a[i].key >> shift) & 0xffff]++;
        if (count[(a[0].key >> shift) & 0xffff] == n)
            continue;
        uint64_t sum = 0;
        for (size_t d = 0; d < RADIX_BUCKETS; d++) {
            uint64_t c = count[d];
            count[d] = sum;
            sum += c;
        }
        for (uint64_t i = 0; i < n; i++)
            tmp[count[(a[i].key >> shift) & 0xffff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* What one checkpoint wrote before adopting it: a run per hour of the
 * memtable queries, a marks file per hour of the memtable clicks. */
struct written {
    struct run **runs;
    int64_t *run_hours;
    size_t n_runs;
    struct named_file *marks;
    int64_t *mark_hours;
    int *mark_full; /* the file holds all the partition's pairs */
    size_t n_marks;
};

static void written_free(struct written *wr)
{
    for (size_t i = 0; i < wr->n_runs; i++)
        run_free(wr->runs[i]);
    free(wr->runs);
    free(wr->run_hours);
    free(wr->marks);
    free(wr->mark_hours);
    free(wr->mark_full);
}

/* Adds h to the distinct hours[0..*n) (capacity cap, grown). */
static int hours_add(int64_t **hours, size_t *n, size_t *cap, int64_t h)
{
    for (size_t k = 0; k < *n; k++) {
        if ((*hours)[k] == h)
            return 0;
    }
    if (*n == *cap) {
        size_t grown_cap = *cap ? 2 * *cap : 8;
        int64_t *grown = realloc(*hours, grown_cap * sizeof *grown);
        if (!grown)
            return CTRD_ENOMEM;
        *hours = grown;
        *cap = grown_cap;
    }
    (*hours)[(*n)++] = h;
    return 0;
}

/* The distinct partition hours of the memtable queries (marks: of the
 * memtable clicks), in a malloc'd array. */
static int memtable_hours(const struct qs *qs, int marks, int64_t **hours,
                          size_t *n_hours)
{
    size_t n = 0, cap = 0;
    int rc = 0;
    *hours = NULL;
    for (unsigned w = 0; rc == 0 && w < qs->n_workers; w++) {
        const struct memtable *m = &qs->mem[w];
        for (uint64_t i = 0; rc == 0 && !marks && i < m->n; i++)
            rc = hours_add(hours, &n, &cap,
                           m->entries[i].time_ms / QS_PARTITION_MS);
        for (uint64_t i = 0; rc == 0 && marks && i < m->marks.cap; i++) {
            if (m->marks.slots[i].query_id)
                rc = hours_add(hours, &n, &cap, m->marks.slots[i].value);
        }
    }
    if (rc != 0) {
        free(*hours);
        *hours = NULL;
    }
    *n_hours = n;
    return rc;
}

/* Writes the memtable queries of one hour as a new run. */
static int flush_hour(struct qs *qs, int64_t hour, struct kv *kv,
                      struct kv *tmp, uint64_t *count, struct run_builder *b,
                      uint64_t seq, struct run **out, char *err)
{
    uint64_t n = 0;
    for (unsigned w = 0; w < qs->n_workers; w++) {
        const struct memtable *m = &qs->mem[w];
        for (uint64_t i = 0; i < m->n; i++) {
            if (m->entries[i].time_ms / QS_PARTITION_MS == hour)
                kv[n++] = (struct kv){m->entries[i].query_id,
                                      (uint64_t)w << 32 | i};
        }
    }
    if (n)
        radix_sort(kv, tmp, count, n);
    b->n = b->n_ads = 0;
    for (uint64_t i = 0; i < n; i++) {
        const struct memtable *m = &qs->mem[kv[i].ref >> 32];
        const struct mem_entry *e = &m->entries[(uint32_t)kv[i].ref];
        builder_add(b, e->query_id,
                    (uint32_t)(e->time_ms - hour * QS_PARTITION_MS),
                    e->term_id, m->ads + e->ad, e->n_ads);
    }
    return builder_write(qs, b, hour, seq, out, err);
}

/* Writes every memtable query as runs, one per hour, into wr. */
static int write_runs(struct qs *qs, uint64_t seq, struct written *wr,
                      char *err)
{
    uint64_t total = 0, total_ads = 0;
    for (unsigned w = 0; w < qs->n_workers; w++) {
        total += qs->mem[w].n;
        total_ads += qs->mem[w].n_ads;
    }
    if (total == 0)
        return 0;
    size_t n_hours = 0;
    int64_t *hours = NULL;
    struct kv *kv = malloc(total * sizeof *kv);
    struct kv *tmp = malloc(total * sizeof *tmp);
    uint64_t *count = malloc(RADIX_BUCKETS * sizeof *count);
    struct run_builder b = {0};
    int rc = 0;
    if (memtable_hours(qs, 0, &hours, &n_hours) != 0 || !kv || !tmp ||
        !count || builder_init(&b, total, total_ads) != 0 ||
        !(wr->runs = calloc(n_hours, sizeof *wr->runs)) ||
        !(wr->run_hours = calloc(n_hours, sizeof *wr->run_hours)))
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory flushing queries");
    for (size_t h = 0; rc == 0 && h < n_hours; h++) {
        rc = flush_hour(qs, hours[h], kv, tmp, count, &b, seq,
                        &wr->runs[wr->n_runs], err);
        if (rc == 0)
            wr->run_hours[wr->n_runs++] = hours[h];
    }
    free(hours);
    free(count);
    free(kv);
    free(tmp);
    builder_free(&b);
    return rc;
}

static void put_pair(struct fs_writer *w, const struct pair_slot *s)
{
    struct mark_pair m = {s->query_id, s->ad_id};
    fs_writer_put(w, &m, sizeof m);
}

/* Writes a marks file of the hour: the memtable pairs of the hour, and
 * before them all the pairs of its partition p when full is set. */
static int write_marks(struct qs *qs, int64_t hour,
                       const struct partition *p, int full, uint64_t seq,
                       struct named_file *file, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(file->name, sizeof file->name, "m%lld-%llu-%u.marks",
             (long long)hour, (unsigned long long)seq, qs->files_written++);
    snprintf(path, sizeof path, "%s/%s", qs->dir, file->name);
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    int rc = fs_writer_open(w, path, FS_SEALED, err);
    if (rc == 0) {
        for (uint64_t i = 0; full && i < p->marks.cap; i++) {
            if (p->marks.slots[i].query_id)
                put_pair(w, &p->marks.slots[i]);
        }
        for (unsigned wk = 0; wk < qs->n_workers; wk++) {
            const struct pairset *m = &qs->mem[wk].marks;
            for (uint64_t i = 0; i < m->cap; i++) {
                if (m->slots[i].query_id && m->slots[i].value == hour)
                    put_pair(w, &m->slots[i]);
            }
        }
        rc = fs_writer_seal(w, &file->seal, err);
    }
    free(w);
    return rc;
}

/* Writes the memtable clicks, one marks file per hour, into wr: a delta
 * file, or one with all the partition's pairs when it has too many. */
static int write_all_marks(struct qs *qs, uint64_t seq, struct written *wr,
                           char *err)
{
    int64_t *hours;
    size_t n_hours;
    if (memtable_hours(qs, 1, &hours, &n_hours) != 0 ||
        !(wr->marks = calloc(n_hours ? n_hours : 1, sizeof *wr->marks)) ||
        !(wr->mark_hours = calloc(n_hours ? n_hours : 1,
                                  sizeof *wr->mark_hours)) ||
        !(wr->mark_full = calloc(n_hours ? n_hours : 1,
                                 sizeof *wr->mark_full))) {
        free(hours);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t h = 0; rc == 0 && h < n_hours; h++) {
        const struct partition *p = partition_find(qs, hours[h]);
        int full = p && p->n_mark_files >= MARK_FILES_MAX;
        rc = write_marks(qs, hours[h], p, full, seq, &wr->marks[wr->n_marks],
                         err);
        if (rc == 0) {
            wr->mark_hours[wr->n_marks] = hours[h];
            wr->mark_full[wr->n_marks++] = full;
        }
    }
    free(hours);
    return rc;
}

/* Moves the memtable clicks of the hour into partition p. */
static int adopt_pairs(struct qs *qs, struct partition *p)
{
    for (unsigned w = 0; w < qs->n_workers; w++) {
        const struct pairset *m = &qs->mem[w].marks;
        for (uint64_t k = 0; k < m->cap; k++) {
            const struct pair_slot *s = &m->slots[k];
            if (s->query_id && s->value == p->hour &&
                pairset_add(&p->marks, s->query_id, s->ad_id, 0) != 0)
                return CTRD_ENOMEM;
        }
    }
    return 0;
}

/* Makes what wr holds part of the partitions and empties the memtables. */
static int adopt(struct qs *qs, struct written *wr)
{
    for (size_t i = 0; i < wr->n_runs; i++) {
        struct partition *p = partition_get(qs, wr->run_hours[i]);
        if (!p || partition_add_run(p, wr->runs[i]) != 0)
            return CTRD_ENOMEM;
        wr->runs[i] = NULL;
    }
    for (size_t i = 0; i < wr->n_marks; i++) {
        struct partition *p = partition_get(qs, wr->mark_hours[i]);
        if (!p || adopt_pairs(qs, p) != 0)
            return CTRD_ENOMEM;
        if (wr->mark_full[i])
            p->n_mark_files = 0;
        if (partition_add_mark_file(p, &wr->marks[i]) != 0)
            return CTRD_ENOMEM;
    }
    for (unsigned w = 0; w < qs->n_workers; w++)
        memtable_reset(&qs->mem[w]);
    return 0;
}

static void drop_expired(struct qs *qs, int64_t horizon_ms)
{
    int64_t horizon_hour = horizon_ms / QS_PARTITION_MS;
    if (horizon_hour > qs->horizon_hour)
        qs->horizon_hour = horizon_hour;
    size_t keep = 0;
    for (size_t i = 0; i < qs->n_parts; i++) {
        if (qs->parts[i].hour < qs->horizon_hour)
            partition_free(&qs->parts[i]);
        else
            qs->parts[keep++] = qs->parts[i];
    }
    qs->n_parts = keep;
}

static void print_file(FILE *manifest, const char *kind, int64_t hour,
                       const struct named_file *f)
{
    fprintf(manifest, "%s %lld %s %llu %08x\n", kind, (long long)hour,
            f->name, (unsigned long long)f->seal.bytes, f->seal.crc);
}

int qs_checkpoint(struct qs *qs, uint64_t seq, int64_t horizon_ms,
                  FILE *manifest, char *err)
{
    struct written wr = {0};
    qs->files_written = 0;
    int rc = write_runs(qs, seq, &wr, err);
    if (rc == 0)
        rc = write_all_marks(qs, seq, &wr, err);
    if (rc == 0 && adopt(qs, &wr) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < wr.n_runs; i++)
        rc = partition_compact(qs, partition_find(qs, wr.run_hours[i]), seq,
                               err);
    written_free(&wr);
    if (rc != 0)
        return rc;
    drop_expired(qs, horizon_ms);
    qs_print_files(qs, manifest);
    return 0;
}

void qs_print_files(const struct qs *qs, FILE *manifest)
{
    for (size_t i = 0; i < qs->n_parts; i++) {
        const struct partition *p = &qs->parts[i];
        for (size_t r = 0; r < p->n_runs; r++)
            print_file(manifest, "run", p->hour, &p->runs[r]->file);
        for (size_t f = 0; f < p->n_mark_files; f++)
            print_file(manifest, "marks", p->hour, &p->mark_files[f]);
    }
}

void qs_get_stats(const struct qs *qs, struct qs_stats *out)
{
    *out = (struct qs_stats){.partitions = qs->n_parts};
    for (size_t i = 0; i < qs->n_parts; i++) {
        const struct partition *p = &qs->parts[i];
        out->runs += p->n_runs;
        out->clicked_pairs += p->marks.used;
        for (size_t r = 0; r < p->n_runs; r++) {
            out->queries_on_disk += p->runs[r]->n;
            out->disk_bytes += p->runs[r]->map_len;
        }
    }
    for (unsigned w = 0; w < qs->n_workers; w++)
        out->mem_queries += qs->mem[w].n;
}
