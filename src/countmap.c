/* countmap: QueryMap + ClickMap; see countmap.h.
 *
 * DESIGN. Each count shard maps ad_id -> struct ad_counts (open
 * addressing). An ad keeps three levels of the same counts — per minute,
 * per hour and per day (rollups) — each a vector of time groups sorted by
 * time: new groups are nearly always appended, and a range read is a
 * binary search and a walk. A group keeps an open-addressing table of term
 * cells. Counting touches the ad's newest group of each level, whose tables
 * stay in cache. A read over a range takes whole days from the day level,
 * the hours around them from the hour level and the minutes at the edges
 * from the minute level, so a 30-day table reads 30 day groups, not 43,200
 * minutes. Counts files hold the minute level; loading rebuilds the others.
 *
 * CHANGES since the last cm_mark_clean() are tracked at the minute level
 * only, so a delta costs what changed, not what is held: a cell's
 * `changed` flag, its group's count of such cells, the ad's lowest minute
 * holding one (changed_from; the groups before it need no look) and the
 * shard's totals (the size of a delta without a walk). A delta holds each
 * changed bucket whole, not its increment: loading newest file first and
 * keeping a bucket's first value found gives every bucket its value of
 * the newest file that holds it, exactly, and the rollups get each bucket
 * once, with no subtraction. */
#include "countmap.h"

#include "fsutil.h"
#include "grow.h"
#include "hash.h"
#include "sharder.h"

#include <stdlib.h>
#include <string.h>

#define CNT_MAGIC "CTRDCNT1"

struct term_cell {
    uint32_t term_plus1; /* term id + 1; 0 = empty */
    uint32_t changed;    /* minute level: 1 when changed since the last
                            cm_mark_clean(); else 0 */
    uint64_t impressions, clicks;
};
_Static_assert(offsetof(struct term_cell, term_plus1) == 0,
               "a cell's first word is its key: nonzero iff live");

/* The term cells of one time group: minute, hour or day `start` (in units
 * of its level). */
struct minute_counts {
    uint32_t start;
    uint32_t n, cap;  /* cap: a power of two, 0 before the first cell */
    uint32_t changed; /* minute level: cells with `changed` set */
    struct term_cell *cells;
};

struct level {
    struct minute_counts *groups; /* ascending start */
    uint32_t n, cap;
};

static const uint32_t level_minutes[CM_LEVELS] = {1, 60, 1440};

/* An ad's changed_from when none of its buckets changed. */
#define UNCHANGED UINT64_MAX

struct ad_counts {
    uint64_t ad_id;
    uint64_t changed_from; /* lowest minute of a changed bucket, UNCHANGED */
    struct level levels[CM_LEVELS];
};

struct shard {
    struct ad_counts **ads; /* open addressing by ad_id; NULL = empty */
    uint32_t cap, used;
    uint64_t buckets;
    uint64_t changed_ads, changed_buckets; /* since cm_mark_clean() */
};

struct countmap {
    struct shard shards[SHARD_COUNT];
};

int cm_create(struct countmap **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : CTRD_ENOMEM;
}

static void ad_free(struct ad_counts *a)
{
    for (int l = 0; l < CM_LEVELS; l++) {
        for (uint32_t i = 0; i < a->levels[l].n; i++)
            free(a->levels[l].groups[i].cells);
        free(a->levels[l].groups);
    }
    free(a);
}

void cm_free(struct countmap *cm)
{
    if (!cm)
        return;
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        struct shard *sh = &cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            if (sh->ads[i])
                ad_free(sh->ads[i]);
        }
        free(sh->ads);
    }
    free(cm);
}

/* ---- tables ---- */

/* Both tables here (an ad's slot in its shard, a term's cell in its group)
 * are open addressing with linear probing, specialised for the count path:
 * the probe loops (shard_slot, cell_slot) are inlined where they are hot.
 * A slot of all zero bytes is empty, and a live slot starts with a
 * nonzero 8 bytes (the ad pointer; term id + 1 and the changed flag), so
 * growing, which is shared, tells them apart by those bytes alone.
 *
 * Both place slots with the seeded hash_slot_u64 (hash.h): ad ids come
 * from the input, and term ids, though the dictionary hands them out, are
 * predictable from the order in which a sender shows it new terms. Slot
 * order therefore differs between processes and so does the order in
 * which scans deliver buckets: readers sum or sort what they are given,
 * and a snapshot's order of ads and buckets is not part of its content
 * (cm_load adds every bucket, in any order, to a fresh table). */
static int slot_empty(const char *slot)
{
    uint64_t first;
    memcpy(&first, slot, sizeof first);
    return first == 0;
}

/* A table of twice the *cap slots (first when 0) of size bytes, holding
 * the live slots of slots (hash: of a live slot's key, as its probe loop
 * hashes it), which it frees; *cap updated. NULL when out of memory (slots
 * and *cap unchanged). */
static void *table_double(void *slots, uint32_t *cap, uint32_t first,
                          size_t size, uint64_t (*hash)(const void *slot))
{
    uint32_t new_cap = *cap ? *cap * 2 : first;
    char *grown = calloc(new_cap, size);
    if (!grown)
        return NULL;
    for (uint32_t i = 0; i < *cap; i++) {
        const char *s = (const char *)slots + (size_t)i * size;
        if (slot_empty(s))
            continue;
        uint32_t j = (uint32_t)hash(s) & (new_cap - 1);
        while (!slot_empty(grown + (size_t)j * size))
            j = (j + 1) & (new_cap - 1);
        memcpy(grown + (size_t)j * size, s, size);
    }
    free(slots);
    *cap = new_cap;
    return grown;
}

/* ---- ads ---- */

/* Hot: every count delta probes it; slots are pointers to the ad's counts,
 * so growing moves 8 bytes per ad and an ad never moves. */
static uint32_t shard_slot(const struct shard *sh, uint64_t ad_id)
{
    uint32_t j = (uint32_t)hash_slot_u64(ad_id) & (sh->cap - 1);
    while (sh->ads[j] && sh->ads[j]->ad_id != ad_id)
        j = (j + 1) & (sh->cap - 1);
    return j;
}

static uint64_t ad_slot_hash(const void *slot)
{
    const struct ad_counts *const *a = slot;
    return hash_slot_u64((*a)->ad_id);
}

static int shard_grow(struct shard *sh)
{
    struct ad_counts **ads =
        table_double(sh->ads, &sh->cap, 16, sizeof *ads, ad_slot_hash);
    if (!ads)
        return CTRD_ENOMEM;
    sh->ads = ads;
    return 0;
}

static struct ad_counts *ad_find(const struct shard *sh, uint64_t ad_id)
{
    return sh->cap ? sh->ads[shard_slot(sh, ad_id)] : NULL;
}

static struct ad_counts *ad_get(struct shard *sh, uint64_t ad_id)
{
    if ((sh->used + 1) * 4 > sh->cap * 3 && shard_grow(sh) != 0)
        return NULL;
    uint32_t j = shard_slot(sh, ad_id);
    if (!sh->ads[j]) {
        sh->ads[j] = calloc(1, sizeof **sh->ads);
        if (!sh->ads[j])
            return NULL;
        sh->ads[j]->ad_id = ad_id;
        sh->ads[j]->changed_from = UNCHANGED;
        sh->used++;
    }
    return sh->ads[j];
}

/* ---- minutes ---- */

/* Index of the first group whose start is >= start. */
static uint32_t group_lower_bound(const struct level *l, uint64_t start)
{
    uint32_t lo = 0, hi = l->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->groups[mid].start < start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct minute_counts *group_get(struct level *l, uint32_t start)
{
    if (l->n && l->groups[l->n - 1].start == start)
        return &l->groups[l->n - 1];
    uint32_t at = group_lower_bound(l, start);
    if (at < l->n && l->groups[at].start == start)
        return &l->groups[at];
    size_t cap = l->cap; /* uint32_t in the struct: an ad has many */
    if (grow(&l->groups, &cap, l->n + 1, sizeof *l->groups, 4) != 0)
        return NULL;
    l->cap = (uint32_t)cap;
    memmove(l->groups + at + 1, l->groups + at,
            (l->n - at) * sizeof *l->groups);
    l->groups[at] = (struct minute_counts){.start = start};
    l->n++;
    return &l->groups[at];
}

/* Hot: every delta probes three of them (minute, hour, day); a 24-byte
 * cell holds the key and the counts, with no separate index. h is
 * hash_slot_u64(term_id), which the three probes share. */
static uint32_t cell_slot(const struct minute_counts *m, uint32_t term_id,
                          uint64_t h)
{
    uint32_t mask = m->cap - 1;
    uint32_t j = (uint32_t)h & mask;
    while (m->cells[j].term_plus1 && m->cells[j].term_plus1 != term_id + 1)
        j = (j + 1) & mask;
    return j;
}

static uint64_t cell_slot_hash(const void *slot)
{
    const struct term_cell *c = slot;
    return hash_slot_u64(c->term_plus1 - 1);
}

static int cells_grow(struct minute_counts *m)
{
    struct term_cell *cells =
        table_double(m->cells, &m->cap, 8, sizeof *cells, cell_slot_hash);
    if (!cells)
        return CTRD_ENOMEM;
    m->cells = cells;
    return 0;
}

/* The term's cell of a group of level l (of the minute `minute`), new
 * ones zero: NULL when out of memory. *is_new says whether it was new. */
static struct term_cell *level_cell(struct ad_counts *a, int l, uint32_t minute,
                                    uint32_t term_id, uint64_t h,
                                    struct minute_counts **group, int *is_new)
{
    struct minute_counts *m =
        group_get(&a->levels[l], minute / level_minutes[l]);
    if (!m || ((m->n + 1) * 4 > m->cap * 3 && cells_grow(m) != 0))
        return NULL;
    struct term_cell *c = &m->cells[cell_slot(m, term_id, h)];
    *is_new = !c->term_plus1;
    if (*is_new) {
        c->term_plus1 = term_id + 1;
        m->n++;
    }
    *group = m;
    return c;
}

/* Marks the minute cell c of group m of ad a changed. */
static void mark_changed(struct shard *sh, struct ad_counts *a,
                         struct minute_counts *m, struct term_cell *c)
{
    if (!c->changed) {
        c->changed = 1;
        m->changed++;
        sh->changed_buckets++;
    }
    if (m->start < a->changed_from) {
        sh->changed_ads += a->changed_from == UNCHANGED;
        a->changed_from = m->start;
    }
}

/* Adds to the bucket (term, minute) of ad a and to its rollups; with
 * only_new, a bucket the ad holds already is left as it is (loading).
 * 0 or CTRD_ENOMEM. */
_Static_assert(CM_MINUTE == 0, "the bucket is seen before its rollups");
static int ad_add(struct shard *sh, struct ad_counts *a, uint32_t term_id,
                  uint32_t minute, uint64_t impressions, uint64_t clicks,
                  int only_new)
{
    uint64_t h = hash_slot_u64(term_id);
    for (int l = 0; l < CM_LEVELS; l++) {
        struct minute_counts *m;
        int is_new;
        struct term_cell *c = level_cell(a, l, minute, term_id, h, &m, &is_new);
        if (!c)
            return CTRD_ENOMEM;
        if (l == CM_MINUTE) {
            if (only_new && !is_new)
                return 0;
            sh->buckets += (uint64_t)is_new;
            mark_changed(sh, a, m, c);
        }
        c->impressions += impressions;
        c->clicks += clicks;
    }
    return 0;
}

int cm_add(struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, uint64_t impressions, uint64_t clicks)
{
    struct shard *sh = &cm->shards[sharder_count_shard(ad_id)];
    struct ad_counts *a = ad_get(sh, ad_id);
    return a ? ad_add(sh, a, term_id, minute, impressions, clicks, 0)
             : CTRD_ENOMEM;
}

/* ---- reads ---- */

/* Calls fn for the groups of one level that lie inside [from, to)
 * (minutes; both multiples of the level's unit). */
static void scan_level(const struct ad_counts *a, int l, uint64_t from,
                       uint64_t to,
                       void (*fn)(void *ctx, const struct cm_bucket *b),
                       void *ctx)
{
    const struct level *lv = &a->levels[l];
    uint32_t unit = level_minutes[l];
    for (uint32_t i = group_lower_bound(lv, from / unit);
         i < lv->n && (uint64_t)lv->groups[i].start * unit < to; i++) {
        const struct minute_counts *m = &lv->groups[i];
        for (uint32_t k = 0; k < m->cap; k++) {
            const struct term_cell *c = &m->cells[k];
            if (!c->term_plus1)
                continue;
            struct cm_bucket b = {c->term_plus1 - 1, m->start * unit,
                                  c->impressions, c->clicks};
            fn(ctx, &b);
        }
    }
}

/* Covers [from, to) with the coarsest groups up to level l, in ascending
 * time: whole groups of level l in the middle, finer ones at the edges. */
static void scan_range(const struct ad_counts *a, int l, uint64_t from,
                       uint64_t to,
                       void (*fn)(void *ctx, const struct cm_bucket *b),
                       void *ctx)
{
    if (from >= to)
        return;
    uint64_t unit = level_minutes[l];
    uint64_t inner_from = (from + unit - 1) / unit * unit;
    uint64_t inner_to = to / unit * unit;
    if (l == CM_MINUTE || inner_from >= inner_to) {
        if (l == CM_MINUTE)
            scan_level(a, l, from, to, fn, ctx);
        else
            scan_range(a, l - 1, from, to, fn, ctx);
        return;
    }
    scan_range(a, l - 1, from, inner_from, fn, ctx);
    scan_level(a, l, inner_from, inner_to, fn, ctx);
    scan_range(a, l - 1, inner_to, to, fn, ctx);
}

void cm_ad_scan(const struct countmap *cm, uint64_t ad_id, uint64_t from_minute,
                uint64_t to_minute, int coarsest,
                void (*fn)(void *ctx, const struct cm_bucket *b), void *ctx)
{
    const struct ad_counts *a =
        ad_find(&cm->shards[sharder_count_shard(ad_id)], ad_id);
    if (a)
        scan_range(a, coarsest, from_minute, to_minute, fn, ctx);
}

int cm_get(const struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, struct cm_bucket *out)
{
    const struct ad_counts *a =
        ad_find(&cm->shards[sharder_count_shard(ad_id)], ad_id);
    if (!a)
        return CTRD_ENOTFOUND;
    const struct level *lv = &a->levels[CM_MINUTE];
    uint32_t i = group_lower_bound(lv, minute);
    if (i == lv->n || lv->groups[i].start != minute || !lv->groups[i].cap)
        return CTRD_ENOTFOUND;
    const struct minute_counts *m = &lv->groups[i];
    const struct term_cell *c =
        &m->cells[cell_slot(m, term_id, hash_slot_u64(term_id))];
    if (!c->term_plus1)
        return CTRD_ENOTFOUND;
    *out = (struct cm_bucket){term_id, minute, c->impressions, c->clicks};
    return 0;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int cm_ads(const struct countmap *cm, uint64_t **ads, size_t *n)
{
    size_t total = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        total += cm->shards[s].used;
    uint64_t *out = malloc((total ? total : 1) * sizeof *out);
    if (!out)
        return CTRD_ENOMEM;
    size_t k = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        const struct shard *sh = &cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            if (sh->ads[i])
                out[k++] = sh->ads[i]->ad_id;
        }
    }
    qsort(out, k, sizeof *out, u64_cmp);
    *ads = out;
    *n = k;
    return 0;
}

uint64_t cm_bucket_count(const struct countmap *cm)
{
    uint64_t n = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        n += cm->shards[s].buckets;
    return n;
}

/* ---- counts files ---- */

/* What a counts file being written holds. */
struct save_job {
    const struct countmap *cm;
    enum cm_file_kind kind;
};

/* Writes ad a's minute buckets as an ad of a counts file: all of them
 * (CM_SNAPSHOT) or those changed (CM_DELTA; a changed ad only). */
static void save_ad(struct fs_writer *w, const struct ad_counts *a,
                    enum cm_file_kind kind)
{
    int delta = kind == CM_DELTA;
    const struct level *lv = &a->levels[CM_MINUTE];
    uint32_t first = delta ? group_lower_bound(lv, a->changed_from) : 0;
    uint64_t n = 0;
    for (uint32_t i = first; i < lv->n; i++)
        n += delta ? lv->groups[i].changed : lv->groups[i].n;
    fs_writer_put(w, &a->ad_id, 8);
    fs_writer_put(w, &n, 8);
    for (uint32_t i = first; i < lv->n; i++) {
        const struct minute_counts *m = &lv->groups[i];
        if (delta && !m->changed)
            continue;
        for (uint32_t k = 0; k < m->cap; k++) {
            const struct term_cell *c = &m->cells[k];
            if (!c->term_plus1 || (delta && !c->changed))
                continue;
            struct cm_bucket b = {c->term_plus1 - 1, m->start, c->impressions,
                                  c->clicks};
            fs_writer_put(w, &b, sizeof b);
        }
    }
}

static void put_counts(struct fs_writer *w, const void *ctx)
{
    const struct save_job *job = ctx;
    int delta = job->kind == CM_DELTA;
    uint64_t n_ads = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        n_ads +=
            delta ? job->cm->shards[s].changed_ads : job->cm->shards[s].used;
    fs_writer_put(w, CNT_MAGIC, 8);
    fs_writer_put(w, &n_ads, 8);
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        const struct shard *sh = &job->cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            const struct ad_counts *a = sh->ads[i];
            if (a && (!delta || a->changed_from != UNCHANGED))
                save_ad(w, a, job->kind);
        }
    }
}

int cm_save(const struct countmap *cm, enum cm_file_kind kind, const char *path,
            struct fs_seal *seal, char *err)
{
    struct save_job job = {cm, kind};
    return fs_write_file(path, FS_SEALED, put_counts, &job, seal, err);
}

uint64_t cm_delta_bytes(const struct countmap *cm)
{
    uint64_t bytes = CM_FILE_HEADER_BYTES;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        bytes += cm->shards[s].changed_ads * CM_AD_HEADER_BYTES +
                 cm->shards[s].changed_buckets * sizeof(struct cm_bucket);
    return bytes;
}

static void ad_mark_clean(struct ad_counts *a)
{
    struct level *lv = &a->levels[CM_MINUTE];
    for (uint32_t i = group_lower_bound(lv, a->changed_from); i < lv->n; i++) {
        struct minute_counts *m = &lv->groups[i];
        if (!m->changed)
            continue;
        for (uint32_t k = 0; k < m->cap; k++)
            m->cells[k].changed = 0;
        m->changed = 0;
    }
    a->changed_from = UNCHANGED;
}

void cm_mark_clean(struct countmap *cm)
{
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        struct shard *sh = &cm->shards[s];
        if (!sh->changed_ads)
            continue;
        for (uint32_t i = 0; i < sh->cap; i++) {
            if (sh->ads[i] && sh->ads[i]->changed_from != UNCHANGED)
                ad_mark_clean(sh->ads[i]);
        }
        sh->changed_ads = sh->changed_buckets = 0;
    }
}

/* What is wrong with a bucket, or NULL. */
static const char *bucket_fault(const struct cm_bucket *b, uint32_t n_terms)
{
    if (b->term_id >= n_terms)
        return "term id not in the dictionary";
    if (b->clicks > b->impressions)
        return "more clicks than impressions";
    return NULL;
}

int cm_load(struct countmap *cm, const char *path, const struct fs_seal *seal,
            uint32_t n_terms, char *err)
{
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, seal, &map, &map_len, &len, err);
    if (rc != 0)
        return rc;
    const unsigned char *base = map, *p = base, *end = base + len;
    const char *what = "not a counts file";
    uint64_t n_ads;
    rc = CTRD_ECORRUPT;
    if (len < CM_FILE_HEADER_BYTES || memcmp(p, CNT_MAGIC, 8) != 0)
        goto done;
    memcpy(&n_ads, p + CM_FILE_ADS, 8);
    p += CM_FILE_HEADER_BYTES;
    for (uint64_t i = 0; i < n_ads; i++) {
        uint64_t ad_id, n;
        what = "an ad's header cut short";
        if ((size_t)(end - p) < CM_AD_HEADER_BYTES)
            goto done;
        memcpy(&ad_id, p + CM_AD_ID, 8);
        memcpy(&n, p + CM_AD_BUCKETS, 8);
        p += CM_AD_HEADER_BYTES;
        what = "more buckets than the file holds";
        if (n > (size_t)(end - p) / sizeof(struct cm_bucket))
            goto done;
        struct shard *sh = &cm->shards[sharder_count_shard(ad_id)];
        struct ad_counts *a = n ? ad_get(sh, ad_id) : NULL;
        for (uint64_t k = 0; k < n; k++, p += sizeof(struct cm_bucket)) {
            struct cm_bucket b;
            memcpy(&b, p, sizeof b);
            if ((what = bucket_fault(&b, n_terms)) != NULL)
                goto done;
            if (!a || ad_add(sh, a, b.term_id, b.minute, b.impressions,
                             b.clicks, 1) != 0) {
                rc = CTRD_ENOMEM;
                goto done;
            }
        }
    }
    what = "bytes after the last ad";
    if (p == end)
        rc = 0;
done:
    fs_unmap(map, map_len);
    if (rc == CTRD_ENOMEM)
        return ctrd_fail(err, rc, "out of memory loading %s", path);
    if (rc == CTRD_ECORRUPT)
        return ctrd_fail(err, rc, "%s: offset %zu: %s", path,
                         (size_t)(p - base), what);
    return 0;
}
