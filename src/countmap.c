/* countmap: QueryMap + ClickMap; see countmap.h.
 *
 * DESIGN. Each count shard maps ad_id -> struct ad_counts with an
 * open-addressing index; an ad keeps its buckets in a dense array (what a
 * read iterates) plus its own open-addressing index over (term, minute). */
#include "countmap.h"

#include "fsutil.h"
#include "hash.h"
#include "sharder.h"

#include <stdlib.h>
#include <string.h>

#define CNT_MAGIC "CTRDCNT1"

/* A slot of an ad's index: the bucket key (term id << 32 | minute) beside
 * the bucket number, so a probe touches one cache line. */
struct index_slot {
    uint64_t key;
    uint32_t bucket; /* bucket + 1; 0 = empty */
};

struct ad_counts {
    uint64_t ad_id;
    struct cm_bucket *buckets;
    uint32_t n, cap;
    struct index_slot *index; /* 2 * cap slots */
};

struct shard {
    struct ad_counts **ads; /* open addressing by ad_id; NULL = empty */
    uint32_t cap, used;
    uint64_t buckets;
};

struct countmap {
    struct shard shards[SHARD_COUNT];
};

int cm_create(struct countmap **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : CTRD_ENOMEM;
}

void cm_free(struct countmap *cm)
{
    if (!cm)
        return;
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        struct shard *sh = &cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            if (!sh->ads[i])
                continue;
            free(sh->ads[i]->buckets);
            free(sh->ads[i]->index);
            free(sh->ads[i]);
        }
        free(sh->ads);
    }
    free(cm);
}

static uint32_t ad_slot(const struct ad_counts *a, uint64_t key)
{
    uint32_t mask = 2 * a->cap - 1;
    uint32_t j = (uint32_t)hash_u64(key) & mask;
    while (a->index[j].bucket && a->index[j].key != key)
        j = (j + 1) & mask;
    return j;
}

static uint64_t bucket_key(uint32_t term_id, uint32_t minute)
{
    return ((uint64_t)term_id << 32) | minute;
}

static int ad_grow(struct ad_counts *a)
{
    uint32_t cap = a->cap ? a->cap * 2 : 8;
    struct cm_bucket *buckets = realloc(a->buckets, cap * sizeof *buckets);
    if (!buckets)
        return CTRD_ENOMEM;
    a->buckets = buckets;
    struct index_slot *index = calloc(2 * (size_t)cap, sizeof *index);
    if (!index)
        return CTRD_ENOMEM;
    free(a->index);
    a->index = index;
    a->cap = cap;
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t key = bucket_key(buckets[i].term_id, buckets[i].minute);
        a->index[ad_slot(a, key)] = (struct index_slot){key, i + 1};
    }
    return 0;
}

static uint32_t shard_slot(const struct shard *sh, uint64_t ad_id)
{
    uint32_t j = (uint32_t)hash_u64(ad_id) & (sh->cap - 1);
    while (sh->ads[j] && sh->ads[j]->ad_id != ad_id)
        j = (j + 1) & (sh->cap - 1);
    return j;
}

static int shard_grow(struct shard *sh)
{
    uint32_t old_cap = sh->cap;
    struct ad_counts **old = sh->ads;
    uint32_t cap = old_cap ? old_cap * 2 : 16;
    sh->ads = calloc(cap, sizeof *sh->ads);
    if (!sh->ads) {
        sh->ads = old;
        return CTRD_ENOMEM;
    }
    sh->cap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i])
            sh->ads[shard_slot(sh, old[i]->ad_id)] = old[i];
    }
    free(old);
    return 0;
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
        sh->used++;
    }
    return sh->ads[j];
}

int cm_add(struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, uint64_t impressions, uint64_t clicks)
{
    struct shard *sh = &cm->shards[sharder_count_shard(ad_id)];
    struct ad_counts *a = ad_get(sh, ad_id);
    if (!a)
        return CTRD_ENOMEM;
    if (a->n == a->cap && ad_grow(a) != 0)
        return CTRD_ENOMEM;
    uint64_t key = bucket_key(term_id, minute);
    uint32_t j = ad_slot(a, key);
    if (!a->index[j].bucket) {
        a->buckets[a->n] = (struct cm_bucket){term_id, minute, 0, 0};
        a->index[j] = (struct index_slot){key, ++a->n};
        sh->buckets++;
    }
    struct cm_bucket *b = &a->buckets[a->index[j].bucket - 1];
    b->impressions += impressions;
    b->clicks += clicks;
    return 0;
}

const struct cm_bucket *cm_ad_buckets(const struct countmap *cm,
                                      uint64_t ad_id, size_t *n)
{
    const struct shard *sh = &cm->shards[sharder_count_shard(ad_id)];
    *n = 0;
    if (!sh->cap)
        return NULL;
    const struct ad_counts *a = sh->ads[shard_slot(sh, ad_id)];
    if (!a)
        return NULL;
    *n = a->n;
    return a->buckets;
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

int cm_save(const struct countmap *cm, const char *path, char *err)
{
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    int rc = fs_writer_open(w, path, 0, err);
    if (rc != 0) {
        free(w);
        return rc;
    }
    uint64_t n_ads = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        n_ads += cm->shards[s].used;
    fs_writer_put(w, CNT_MAGIC, 8);
    fs_writer_put(w, &n_ads, 8);
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        const struct shard *sh = &cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            const struct ad_counts *a = sh->ads[i];
            if (!a)
                continue;
            uint64_t n = a->n;
            fs_writer_put(w, &a->ad_id, 8);
            fs_writer_put(w, &n, 8);
            fs_writer_put(w, a->buckets, n * sizeof *a->buckets);
        }
    }
    rc = fs_writer_close(w, 1, err);
    free(w);
    return rc;
}

int cm_load(struct countmap *cm, const char *path, char *err)
{
    void *map;
    size_t len;
    int rc = fs_map_file(path, &map, &len, err);
    if (rc != 0)
        return rc;
    const unsigned char *p = map, *end = p + len;
    uint64_t n_ads;
    if (len < 16 || memcmp(p, CNT_MAGIC, 8) != 0)
        goto corrupt;
    memcpy(&n_ads, p + 8, 8);
    p += 16;
    for (uint64_t i = 0; i < n_ads; i++) {
        uint64_t ad_id, n;
        if ((size_t)(end - p) < 16)
            goto corrupt;
        memcpy(&ad_id, p, 8);
        memcpy(&n, p + 8, 8);
        p += 16;
        if (n > (size_t)(end - p) / sizeof(struct cm_bucket))
            goto corrupt;
        for (uint64_t k = 0; k < n; k++, p += sizeof(struct cm_bucket)) {
            struct cm_bucket b;
            memcpy(&b, p, sizeof b);
            if (cm_add(cm, ad_id, b.term_id, b.minute, b.impressions,
                       b.clicks) != 0) {
                fs_unmap(map, len);
                return ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s",
                                 path);
            }
        }
    }
    if (p != end)
        goto corrupt;
    fs_unmap(map, len);
    return 0;
corrupt:
    fs_unmap(map, len);
    return ctrd_fail(err, CTRD_ECORRUPT, "%s: not a valid counts file", path);
}
