/* terms: term dictionary; see terms.h.
 *
 * DESIGN. TERMS_STRIPES independent hash tables, each behind its own mutex,
 * map a term to its id; the stripe is chosen by the term's hash. Ids come
 * from one atomic counter, and id -> {bytes, len} lives in fixed pages of
 * TERMS_PAGE entries that never move, so readers need no lock. Term bytes
 * live in per-stripe arena blocks that are never freed before close.
 *
 * The stripes are their own tables, not table.h: every query interns its
 * term on the per-record ingest path from many workers at once, so each
 * stripe keeps the full hash beside the id (a probe compares hashes
 * before it touches term bytes) under its own lock. Stripe and slot come
 * from hash_slot_bytes(), seeded per process: terms come from the input,
 * and neither the stripe nor the slot of a term is stored anywhere. */
#include "terms.h"

#include "crc32c.h"
#include "fsutil.h"
#include "hash.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TERMS_STRIPES 64
#define TERMS_PAGE_BITS 16
#define TERMS_PAGE (1u << TERMS_PAGE_BITS)
#define TERMS_PAGES (1u << 16)
#define TERMS_ARENA_BLOCK (1u << 20)
#define TERMS_MAGIC "CTRDTRM1"
#define TERMS_HEADER_BYTES 8
#define TERMS_RECORD_BYTES 8 /* length and checksum before the bytes */

struct term_ref {
    const char *bytes;
    uint32_t len;
};

struct arena_block {
    struct arena_block *next;
    size_t used;
    char data[];
};

struct stripe {
    pthread_mutex_t lock;
    uint32_t *slots; /* id + 1; 0 = empty */
    uint64_t *slot_hash;
    uint32_t cap, used;
    struct arena_block *arena;
};

struct terms {
    char path[FS_PATH_MAX];
    atomic_uint next_id;
    uint32_t synced; /* ids below this are in terms.dat */
    uint64_t committed_bytes;
    _Atomic(struct term_ref *) pages[TERMS_PAGES];
    pthread_mutex_t page_lock;
    struct stripe stripes[TERMS_STRIPES];
};

static struct term_ref *ref_of(const struct terms *t, uint32_t id)
{
    struct term_ref *page =
        atomic_load_explicit(&((struct terms *)t)->pages[id >> TERMS_PAGE_BITS],
                             memory_order_acquire);
    return &page[id & (TERMS_PAGE - 1)];
}

static int ensure_page(struct terms *t, uint32_t id)
{
    uint32_t p = id >> TERMS_PAGE_BITS;
    if (atomic_load_explicit(&t->pages[p], memory_order_acquire))
        return 0;
    pthread_mutex_lock(&t->page_lock);
    int rc = 0;
    if (!atomic_load_explicit(&t->pages[p], memory_order_relaxed)) {
        struct term_ref *page = calloc(TERMS_PAGE, sizeof *page);
        if (page)
            atomic_store_explicit(&t->pages[p], page, memory_order_release);
        else
            rc = CTRD_ENOMEM;
    }
    pthread_mutex_unlock(&t->page_lock);
    return rc;
}

static const char *arena_copy(struct stripe *s, const char *bytes, uint32_t len)
{
    struct arena_block *b = s->arena;
    if (!b || b->used + len > TERMS_ARENA_BLOCK) {
        size_t size = len > TERMS_ARENA_BLOCK ? len : TERMS_ARENA_BLOCK;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->next = s->arena;
        b->used = 0;
        s->arena = b;
    }
    char *dst = b->data + b->used;
    memcpy(dst, bytes, len);
    b->used += len;
    return dst;
}

static int stripe_grow(struct stripe *s)
{
    uint32_t cap = s->cap ? s->cap * 2 : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    uint64_t *hashes = malloc((size_t)cap * sizeof *hashes);
    if (!slots || !hashes) {
        free(slots);
        free(hashes);
        return CTRD_ENOMEM;
    }
    for (uint32_t i = 0; i < s->cap; i++) {
        if (!s->slots[i])
            continue;
        uint32_t j = (uint32_t)s->slot_hash[i] & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = s->slots[i];
        hashes[j] = s->slot_hash[i];
    }
    free(s->slots);
    free(s->slot_hash);
    s->slots = slots;
    s->slot_hash = hashes;
    s->cap = cap;
    return 0;
}

/* Looks the term up in its stripe (locked by the caller); returns the slot
 * where it is or where it would go. */
static uint32_t stripe_probe(const struct terms *t, const struct stripe *s,
                             uint64_t h, const char *term, uint32_t len)
{
    uint32_t j = (uint32_t)h & (s->cap - 1);
    for (; s->slots[j]; j = (j + 1) & (s->cap - 1)) {
        if (s->slot_hash[j] != h)
            continue;
        const struct term_ref *r = ref_of(t, s->slots[j] - 1);
        if (r->len == len && memcmp(r->bytes, term, len) == 0)
            break;
    }
    return j;
}

/* Adds a term known to be absent under a known id. Stripe locked. */
static int stripe_add(struct terms *t, struct stripe *s, uint64_t h,
                      const char *term, uint32_t len, uint32_t id)
{
    if ((s->used + 1) * 4 > s->cap * 3 && stripe_grow(s) != 0)
        return CTRD_ENOMEM;
    const char *copy = arena_copy(s, term, len);
    if (!copy || ensure_page(t, id) != 0)
        return CTRD_ENOMEM;
    struct term_ref *r = ref_of(t, id);
    r->bytes = copy;
    r->len = len;
    uint32_t j = stripe_probe(t, s, h, term, len);
    s->slots[j] = id + 1;
    s->slot_hash[j] = h;
    s->used++;
    return 0;
}

int terms_intern(struct terms *t, const char *term, uint32_t len, uint32_t *id)
{
    uint64_t h = hash_slot_bytes(term, len);
    struct stripe *s = &t->stripes[h % TERMS_STRIPES];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t j = s->cap ? stripe_probe(t, s, h, term, len) : 0;
    if (s->cap && s->slots[j]) {
        *id = s->slots[j] - 1;
    } else {
        *id = atomic_fetch_add(&t->next_id, 1);
        if (*id >= (uint64_t)TERMS_PAGES * TERMS_PAGE - 1)
            rc = CTRD_ENOMEM;
        else
            rc = stripe_add(t, s, h, term, len, *id);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int terms_find(const struct terms *t, const char *term, uint32_t len,
               uint32_t *id)
{
    uint64_t h = hash_slot_bytes(term, len);
    /* The stripe's lock is the one thing a lookup changes. */
    struct stripe *s = (struct stripe *)&t->stripes[h % TERMS_STRIPES];
    int rc = CTRD_ENOTFOUND;
    pthread_mutex_lock(&s->lock);
    if (s->cap) {
        uint32_t j = stripe_probe(t, s, h, term, len);
        if (s->slots[j]) {
            *id = s->slots[j] - 1;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

const char *terms_get(const struct terms *t, uint32_t id, uint32_t *len)
{
    const struct term_ref *r = ref_of(t, id);
    *len = r->len;
    return r->bytes;
}

uint32_t terms_count(const struct terms *t)
{
    return atomic_load(&((struct terms *)t)->next_id);
}

/* The checksum of term id's record. */
static uint32_t record_crc(uint32_t id, const char *bytes, uint32_t len)
{
    uint32_t head[2] = {id, len};
    return crc32c(crc32c(0, head, sizeof head), bytes, len);
}

/* Reads the committed records of terms.dat back in id order. */
static int load_file(struct terms *t, uint64_t committed_bytes, char *err)
{
    void *map;
    size_t len;
    int rc = fs_map_file(t->path, &map, &len, err);
    if (rc == CTRD_ENOTFOUND && committed_bytes == 0)
        return 0;
    if (rc == CTRD_ENOTFOUND)
        return ctrd_fail(err, rc,
                         "%s: missing (the MANIFEST names %llu "
                         "bytes of it)",
                         t->path, (unsigned long long)committed_bytes);
    if (rc != 0)
        return rc;
    const char *p = map, *what = NULL;
    uint64_t off = 0;
    if (len < committed_bytes) {
        what = "the file ends here, short of the bytes the MANIFEST names";
        off = len;
    } else if (committed_bytes > 0 &&
               (committed_bytes < TERMS_HEADER_BYTES ||
                memcmp(p, TERMS_MAGIC, TERMS_HEADER_BYTES) != 0))
        what = "not a term dictionary";
    else if (committed_bytes > 0)
        off = TERMS_HEADER_BYTES;
    while (!what && rc == 0 && off < committed_bytes) {
        uint32_t n, crc, id = terms_count(t), got;
        if (committed_bytes - off < TERMS_RECORD_BYTES) {
            what = "a record header cut short";
            break;
        }
        memcpy(&n, p + off, 4);
        memcpy(&crc, p + off + 4, 4);
        if (n > committed_bytes - off - TERMS_RECORD_BYTES) {
            what = "a record longer than the committed bytes";
            break;
        }
        if ((got = record_crc(id, p + off + TERMS_RECORD_BYTES, n)) != crc) {
            what = "a record fails its checksum";
            break;
        }
        rc = terms_intern(t, p + off + TERMS_RECORD_BYTES, n, &id);
        if (rc == 0 && id != terms_count(t) - 1)
            what = "a term stored twice";
        else
            off += TERMS_RECORD_BYTES + n;
    }
    fs_unmap(map, len);
    if (what)
        return ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %llu: %s", t->path,
                         (unsigned long long)(off < len ? off : len), what);
    if (rc != 0)
        return ctrd_fail(err, rc, "out of memory loading %s", t->path);
    t->synced = terms_count(t);
    t->committed_bytes = committed_bytes;
    return 0;
}

int terms_open(const char *dir, uint64_t committed_bytes, struct terms **out,
               char *err)
{
    struct terms *t = calloc(1, sizeof *t);
    if (!t)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    snprintf(t->path, sizeof t->path, "%s/terms.dat", dir);
    pthread_mutex_init(&t->page_lock, NULL);
    for (int i = 0; i < TERMS_STRIPES; i++)
        pthread_mutex_init(&t->stripes[i].lock, NULL);
    int rc = load_file(t, committed_bytes, err);
    if (rc != 0) {
        terms_close(t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Opens terms.dat for appending after its committed bytes. */
static int open_for_append(struct terms *t, struct fs_writer *w, char *err)
{
    if (t->committed_bytes == 0)
        return fs_writer_open(w, t->path, FS_TRUNCATE, err);
    if (truncate(t->path, (off_t)t->committed_bytes) != 0)
        return ctrd_fail(err, errno == ENOENT ? CTRD_ENOTFOUND : CTRD_EIO,
                         "cannot cut %s to %llu bytes: %s", t->path,
                         (unsigned long long)t->committed_bytes,
                         strerror(errno));
    return fs_writer_open(w, t->path, FS_APPEND, err);
}

int terms_sync(struct terms *t, uint64_t *committed_bytes, char *err)
{
    uint32_t count = terms_count(t);
    if (count == t->synced) {
        *committed_bytes = t->committed_bytes;
        return 0;
    }
    struct fs_writer *w = malloc(sizeof *w);
    if (!w)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    int rc = open_for_append(t, w, err);
    if (rc != 0) {
        free(w);
        return rc;
    }
    if (t->committed_bytes == 0)
        fs_writer_put(w, TERMS_MAGIC, TERMS_HEADER_BYTES);
    for (uint32_t id = t->synced; id < count; id++) {
        const struct term_ref *r = ref_of(t, id);
        uint32_t head[2] = {r->len, record_crc(id, r->bytes, r->len)};
        fs_writer_put(w, head, sizeof head);
        fs_writer_put(w, r->bytes, r->len);
    }
    uint64_t added = w->written;
    rc = fs_writer_close(w, 1, err);
    free(w);
    if (rc != 0)
        return rc;
    t->synced = count;
    t->committed_bytes += added;
    *committed_bytes = t->committed_bytes;
    return 0;
}

void terms_close(struct terms *t)
{
    if (!t)
        return;
    for (int i = 0; i < TERMS_STRIPES; i++) {
        struct stripe *s = &t->stripes[i];
        while (s->arena) {
            struct arena_block *next = s->arena->next;
            free(s->arena);
            s->arena = next;
        }
        free(s->slots);
        free(s->slot_hash);
        pthread_mutex_destroy(&s->lock);
    }
    for (uint32_t p = 0; p < TERMS_PAGES; p++)
        free(t->pages[p]);
    pthread_mutex_destroy(&t->page_lock);
    free(t);
}
