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
 * once, with no subtraction.
 *
 * SPILL. A cold group (countmap.h: cm_spill) leaves RAM as one block of
 * the spill file: its whole cell table, as in RAM, after a header that
 * names it and checks it (SPILL BLOCK below). The group keeps its start,
 * n, cap and the block's offset; cells NULL with cap > 0 says it is
 * spilled. Readers read the block into a buffer of their own (pread; the
 * page cache is the cache) and walk it as they walk a resident table;
 * cm_add reads it back into RAM first (a fault-in). The block stays the
 * group's home: evicted again with the same cap, the group is written
 * over it; only when its table grows is the old block garbage, and since
 * a table only doubles, a group's garbage (its smaller tables) is at most
 * about the size of its table now: the file stays within about twice the
 * bytes of the groups that spilled, with no compaction. */
#include "countmap.h"

#include "crc32c.h"
#include "fsutil.h"
#include "grow.h"
#include "hash.h"
#include "sharder.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CNT_MAGIC "CTRDCNT1"

struct term_cell {
    uint32_t term_plus1; /* term id + 1; 0 = empty */
    uint32_t changed;    /* minute level: 1 when changed since the last
                            cm_mark_clean(); else 0 */
    uint64_t impressions, clicks;
};
_Static_assert(offsetof(struct term_cell, term_plus1) == 0,
               "a cell's first word is its key: nonzero iff live");
_Static_assert(sizeof(struct term_cell) == 24, "SPILL BLOCK: 24-byte cells");

/* SPILL BLOCK: a spilled group in the spill file, in host byte order
 * (the file never leaves the process):
 *   offset  size    field
 *   0       4       CRC-32C of the bytes from offset 4 to the block's end
 *   4       4       cap: cells that follow (the group's table size)
 *   8       8       ad_id
 *   16      4       level (CM_MINUTE, CM_HOUR, CM_DAY)
 *   20      4       start of the group (units of its level)
 *   24      24 cap  the cell table as in RAM (struct term_cell; empty
 *                   cells zero; `changed` 0: only clean groups spill)
 * Blocks start where the previous block ended; the file is scratch, new
 * at cm_spill_open() and never seen by another process. */
enum spill_block_layout {
    SPILL_CRC = 0,
    SPILL_CAP = 4,
    SPILL_AD = 8,
    SPILL_LEVEL = 16,
    SPILL_START = 20,
    SPILL_HEADER_BYTES = 24
};
_Static_assert(SPILL_HEADER_BYTES == SPILL_START + 4,
               "SPILL BLOCK: the header ends with the 4-byte start");

/* What messages call the spill file, which has no name. */
#define SPILL_NAME "counts.spill"

/* The spill_off of a group that has no block. */
#define SPILL_NONE UINT64_MAX

/* The term cells of one time group: minute, hour or day `start` (in units
 * of its level). Resident: cells holds cap cells. Spilled: cells NULL,
 * cap > 0, the block at spill_off holds them. */
struct minute_counts {
    uint32_t start;
    uint32_t n, cap;  /* cap: a power of two, 0 before the first cell */
    uint32_t changed; /* minute level: cells with `changed` set */
    struct term_cell *cells;
    uint64_t spill_off; /* its block (kept while resident: written over
                           when spilled again with the same cap), or
                           SPILL_NONE */
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

/* A shard's figures change only under its own cm_add() (or with the map
 * to oneself), so shards counting on different threads share none. */
struct shard {
    struct ad_counts **ads; /* open addressing by ad_id; NULL = empty */
    uint32_t cap, used;
    uint64_t buckets;
    uint64_t changed_ads, changed_buckets; /* since cm_mark_clean() */
    uint64_t resident_bytes; /* the shard's heap: table, ads, groups, cells */
    uint64_t spilled_groups, spilled_bytes; /* groups out of RAM, blocks */
};

struct countmap {
    struct shard shards[SHARD_COUNT];
    int spill_fd;            /* -1 before cm_spill_open() */
    uint64_t spill_end;      /* bytes of the spill file */
    uint64_t load_max_bytes; /* cm_load spills beyond it; 0: never */
    uint64_t load_floor;     /* resident after cm_load's last spill */
};

int cm_create(struct countmap **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return CTRD_ENOMEM;
    (*out)->spill_fd = -1;
    return 0;
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
    if (cm->spill_fd >= 0)
        close(cm->spill_fd);
    free(cm);
}

int cm_spill_open(struct countmap *cm, const char *dir,
                  uint64_t load_max_resident_bytes, char *err)
{
    assert(cm->spill_fd < 0);
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
        char path[FS_PATH_MAX];
        snprintf(path, sizeof path, "%s/" SPILL_NAME ".XXXXXX", dir);
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0)
            unlink(path);
    }
    if (fd < 0)
        return ctrd_fail(err, CTRD_EIO, "cannot create %s in %s: %s",
                         SPILL_NAME, dir, strerror(errno));
    cm->spill_fd = fd;
    cm->load_max_bytes = load_max_resident_bytes;
    return 0;
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
    uint32_t old_cap = sh->cap;
    struct ad_counts **ads =
        table_double(sh->ads, &sh->cap, 16, sizeof *ads, ad_slot_hash);
    if (!ads)
        return CTRD_ENOMEM;
    sh->ads = ads;
    sh->resident_bytes += (uint64_t)(sh->cap - old_cap) * sizeof *ads;
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
        sh->resident_bytes += sizeof **sh->ads;
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

static struct minute_counts *group_get(struct shard *sh, struct level *l,
                                       uint32_t start)
{
    if (l->n && l->groups[l->n - 1].start == start)
        return &l->groups[l->n - 1];
    uint32_t at = group_lower_bound(l, start);
    if (at < l->n && l->groups[at].start == start)
        return &l->groups[at];
    size_t cap = l->cap; /* uint32_t in the struct: an ad has many */
    if (grow(&l->groups, &cap, l->n + 1, sizeof *l->groups, 4) != 0)
        return NULL;
    sh->resident_bytes += (cap - l->cap) * sizeof *l->groups;
    l->cap = (uint32_t)cap;
    memmove(l->groups + at + 1, l->groups + at,
            (l->n - at) * sizeof *l->groups);
    l->groups[at] =
        (struct minute_counts){.start = start, .spill_off = SPILL_NONE};
    l->n++;
    return &l->groups[at];
}

/* Hot: every delta probes three of them (minute, hour, day); a 24-byte
 * cell holds the key and the counts, with no separate index. h is
 * hash_slot_u64(term_id), which the three probes share. */
static uint32_t cell_slot(const struct term_cell *cells, uint32_t cap,
                          uint32_t term_id, uint64_t h)
{
    uint32_t mask = cap - 1;
    uint32_t j = (uint32_t)h & mask;
    while (cells[j].term_plus1 && cells[j].term_plus1 != term_id + 1)
        j = (j + 1) & mask;
    return j;
}

static uint64_t cell_slot_hash(const void *slot)
{
    const struct term_cell *c = slot;
    return hash_slot_u64(c->term_plus1 - 1);
}

static size_t cells_bytes(uint32_t cap)
{
    return (size_t)cap * sizeof(struct term_cell);
}

/* Doubles a resident group's table; its block (the old size) is garbage
 * from now on. */
static int cells_grow(struct shard *sh, struct minute_counts *m)
{
    uint32_t old_cap = m->cap;
    struct term_cell *cells =
        table_double(m->cells, &m->cap, 8, sizeof *cells, cell_slot_hash);
    if (!cells)
        return CTRD_ENOMEM;
    m->cells = cells;
    m->spill_off = SPILL_NONE;
    sh->resident_bytes += cells_bytes(m->cap) - cells_bytes(old_cap);
    return 0;
}

/* ---- spill blocks ---- */

static uint64_t block_bytes(uint32_t cap)
{
    return SPILL_HEADER_BYTES + cells_bytes(cap);
}

static int group_spilled(const struct minute_counts *m)
{
    return m->cap && !m->cells;
}

/* The header of group m (level l of ad_id) but its CRC. */
static void block_header(unsigned char *h, uint64_t ad_id, int l,
                         const struct minute_counts *m)
{
    uint32_t level = (uint32_t)l;
    memcpy(h + SPILL_CAP, &m->cap, 4);
    memcpy(h + SPILL_AD, &ad_id, 8);
    memcpy(h + SPILL_LEVEL, &level, 4);
    memcpy(h + SPILL_START, &m->start, 4);
}

static uint32_t block_crc(const unsigned char *h, const struct term_cell *cells,
                          uint32_t cap)
{
    uint32_t crc = crc32c(0, h + SPILL_CAP, SPILL_HEADER_BYTES - SPILL_CAP);
    return crc32c(crc, cells, cells_bytes(cap));
}

/* Writes resident group m as a block at off: 0 or CTRD_EWRITEFAIL. */
static int block_write(const struct countmap *cm, uint64_t ad_id, int l,
                       const struct minute_counts *m, uint64_t off, char *err)
{
    unsigned char h[SPILL_HEADER_BYTES];
    block_header(h, ad_id, l, m);
    uint32_t crc = block_crc(h, m->cells, m->cap);
    memcpy(h + SPILL_CRC, &crc, 4);
    struct iovec iov[2] = {{h, sizeof h}, {m->cells, cells_bytes(m->cap)}};
    ssize_t n = pwritev(cm->spill_fd, iov, 2, (off_t)off);
    if (n == (ssize_t)block_bytes(m->cap))
        return 0;
    return ctrd_fail(err, CTRD_EWRITEFAIL,
                     "%s: offset %" PRIu64 ": cannot write: %s", SPILL_NAME,
                     off, n < 0 ? strerror(errno) : "short");
}

/* Reads spilled group m's cells into cells (cap of them), checking the
 * block: 0, CTRD_EIO or CTRD_ECORRUPT. */
static int block_read(const struct countmap *cm, uint64_t ad_id, int l,
                      const struct minute_counts *m, struct term_cell *cells,
                      char *err)
{
    unsigned char h[SPILL_HEADER_BYTES], want[SPILL_HEADER_BYTES];
    struct iovec iov[2] = {{h, sizeof h}, {cells, cells_bytes(m->cap)}};
    ssize_t n = preadv(cm->spill_fd, iov, 2, (off_t)m->spill_off);
    if (n < 0)
        return ctrd_fail(err, CTRD_EIO, "%s: offset %" PRIu64 ": %s",
                         SPILL_NAME, m->spill_off, strerror(errno));
    uint32_t crc;
    memcpy(&crc, h + SPILL_CRC, 4);
    block_header(want, ad_id, l, m);
    const char *what = n != (ssize_t)block_bytes(m->cap) ? "block cut short"
                       : crc != block_crc(h, cells, m->cap)
                           ? "checksum mismatch"
                       : memcmp(h + SPILL_CAP, want + SPILL_CAP,
                                SPILL_HEADER_BYTES - SPILL_CAP)
                           ? "block of another group"
                           : NULL;
    if (!what)
        return 0;
    return ctrd_fail(err, CTRD_ECORRUPT, "%s: offset %" PRIu64 ": %s",
                     SPILL_NAME, m->spill_off, what);
}

/* Writes resident, clean group m (level l of ad a) to its block, or to a
 * new one at the end, then frees its cells. The group stays resident when
 * the write fails (CTRD_EWRITEFAIL). */
static int group_spill(struct countmap *cm, struct shard *sh,
                       const struct ad_counts *a, int l,
                       struct minute_counts *m, char *err)
{
    uint64_t off = m->spill_off != SPILL_NONE ? m->spill_off : cm->spill_end;
    int rc = block_write(cm, a->ad_id, l, m, off, err);
    if (rc != 0)
        return rc;
    if (off == cm->spill_end)
        cm->spill_end += block_bytes(m->cap);
    free(m->cells);
    m->cells = NULL;
    m->spill_off = off;
    sh->resident_bytes -= cells_bytes(m->cap);
    sh->spilled_groups++;
    sh->spilled_bytes += block_bytes(m->cap);
    return 0;
}

/* Brings spilled group m back into RAM (its block stays its home). */
static int group_fault_in(const struct countmap *cm, struct shard *sh,
                          uint64_t ad_id, int l, struct minute_counts *m,
                          char *err)
{
    struct term_cell *cells = malloc(cells_bytes(m->cap));
    if (!cells)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    int rc = block_read(cm, ad_id, l, m, cells, err);
    if (rc != 0) {
        free(cells);
        return rc;
    }
    m->cells = cells;
    sh->resident_bytes += cells_bytes(m->cap);
    sh->spilled_groups--;
    sh->spilled_bytes -= block_bytes(m->cap);
    return 0;
}

/* A reader's cells of group m: its own, or its block read into buf (a
 * reader never changes the map). */
struct spill_buf {
    struct term_cell *cells;
    size_t cap;
};

static int group_cells(const struct countmap *cm, uint64_t ad_id, int l,
                       const struct minute_counts *m, struct spill_buf *buf,
                       const struct term_cell **cells, char *err)
{
    *cells = m->cells;
    if (!group_spilled(m))
        return 0;
    if (grow(&buf->cells, &buf->cap, m->cap, sizeof *buf->cells, 8) != 0)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory reading %s",
                         SPILL_NAME);
    *cells = buf->cells;
    return block_read(cm, ad_id, l, m, buf->cells, err);
}

/* ---- counting ---- */

/* Group `start` of level l of ad a, resident, with room for one more
 * cell: 0, CTRD_ENOMEM or a fault-in's error. */
static int group_ready(const struct countmap *cm, struct shard *sh,
                       struct ad_counts *a, int l, uint32_t start,
                       struct minute_counts **out, char *err)
{
    struct minute_counts *m = group_get(sh, &a->levels[l], start);
    if (!m)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    int rc = group_spilled(m) ? group_fault_in(cm, sh, a->ad_id, l, m, err) : 0;
    if (rc == 0 && (m->n + 1) * 4 > m->cap * 3 && cells_grow(sh, m) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    *out = m;
    return rc;
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

/* Adds to the bucket (term, minute) of ad a and to its rollups, or, when
 * loading, sets a bucket the ad does not hold yet (leaving it unchanged:
 * what is loaded is already in the files). Its three groups are made
 * ready first, so a failure (0, CTRD_ENOMEM, a fault-in's error) changes
 * no count. */
_Static_assert(CM_MINUTE == 0, "the bucket is seen before its rollups");
static int ad_add(const struct countmap *cm, struct shard *sh,
                  struct ad_counts *a, const struct cm_bucket *b, int loading,
                  char *err)
{
    struct minute_counts *m[CM_LEVELS];
    for (int l = 0; l < CM_LEVELS; l++) {
        int rc =
            group_ready(cm, sh, a, l, b->minute / level_minutes[l], &m[l], err);
        if (rc != 0)
            return rc;
    }
    uint64_t h = hash_slot_u64(b->term_id);
    for (int l = 0; l < CM_LEVELS; l++) {
        struct term_cell *c =
            &m[l]->cells[cell_slot(m[l]->cells, m[l]->cap, b->term_id, h)];
        int is_new = !c->term_plus1;
        if (is_new) {
            c->term_plus1 = b->term_id + 1;
            m[l]->n++;
        }
        if (l == CM_MINUTE) {
            if (loading && !is_new)
                return 0;
            sh->buckets += (uint64_t)is_new;
            if (!loading)
                mark_changed(sh, a, m[l], c);
        }
        c->impressions += b->impressions;
        c->clicks += b->clicks;
    }
    return 0;
}

int cm_add(struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, uint64_t impressions, uint64_t clicks, char *err)
{
    struct shard *sh = &cm->shards[sharder_count_shard(ad_id)];
    struct ad_counts *a = ad_get(sh, ad_id);
    struct cm_bucket b = {term_id, minute, impressions, clicks};
    return a ? ad_add(cm, sh, a, &b, 0, err)
             : ctrd_fail(err, CTRD_ENOMEM, "out of memory");
}

/* ---- reads ---- */

/* A range read of one ad. */
struct scan {
    const struct countmap *cm;
    const struct ad_counts *a;
    void (*fn)(void *ctx, const struct cm_bucket *b);
    void *ctx;
    struct spill_buf buf;
    char *err;
};

/* Calls fn for the groups of one level that lie inside [from, to)
 * (minutes; both multiples of the level's unit). */
static int scan_level(struct scan *s, int l, uint64_t from, uint64_t to)
{
    const struct level *lv = &s->a->levels[l];
    uint32_t unit = level_minutes[l];
    for (uint32_t i = group_lower_bound(lv, from / unit);
         i < lv->n && (uint64_t)lv->groups[i].start * unit < to; i++) {
        const struct minute_counts *m = &lv->groups[i];
        const struct term_cell *cells;
        int rc = group_cells(s->cm, s->a->ad_id, l, m, &s->buf, &cells, s->err);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < m->cap; k++) {
            const struct term_cell *c = &cells[k];
            if (!c->term_plus1)
                continue;
            struct cm_bucket b = {c->term_plus1 - 1, m->start * unit,
                                  c->impressions, c->clicks};
            s->fn(s->ctx, &b);
        }
    }
    return 0;
}

/* Covers [from, to) with the coarsest groups up to level l, in ascending
 * time: whole groups of level l in the middle, finer ones at the edges. */
static int scan_range(struct scan *s, int l, uint64_t from, uint64_t to)
{
    if (from >= to)
        return 0;
    uint64_t unit = level_minutes[l];
    uint64_t inner_from = (from + unit - 1) / unit * unit;
    uint64_t inner_to = to / unit * unit;
    if (l == CM_MINUTE)
        return scan_level(s, l, from, to);
    if (inner_from >= inner_to)
        return scan_range(s, l - 1, from, to);
    int rc = scan_range(s, l - 1, from, inner_from);
    if (rc == 0)
        rc = scan_level(s, l, inner_from, inner_to);
    return rc ? rc : scan_range(s, l - 1, inner_to, to);
}

int cm_ad_scan(const struct countmap *cm, uint64_t ad_id, uint64_t from_minute,
               uint64_t to_minute, int coarsest,
               void (*fn)(void *ctx, const struct cm_bucket *b), void *ctx,
               char *err)
{
    struct scan s = {
        .cm = cm,
        .a = ad_find(&cm->shards[sharder_count_shard(ad_id)], ad_id),
        .fn = fn,
        .ctx = ctx,
        .err = err};
    int rc = s.a ? scan_range(&s, coarsest, from_minute, to_minute) : 0;
    free(s.buf.cells);
    return rc;
}

int cm_get(const struct countmap *cm, uint64_t ad_id, uint32_t term_id,
           uint32_t minute, struct cm_bucket *out, char *err)
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
    struct spill_buf buf = {NULL, 0};
    const struct term_cell *cells;
    int rc = group_cells(cm, ad_id, CM_MINUTE, m, &buf, &cells, err);
    if (rc == 0) {
        const struct term_cell *c =
            &cells[cell_slot(cells, m->cap, term_id, hash_slot_u64(term_id))];
        if (c->term_plus1)
            *out =
                (struct cm_bucket){term_id, minute, c->impressions, c->clicks};
        else
            rc = CTRD_ENOTFOUND;
    }
    free(buf.cells);
    return rc;
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

/* A counts file being written. */
struct save_job {
    const struct countmap *cm;
    enum cm_file_kind kind;
    struct fs_writer *w;  /* put_counts()'s */
    struct spill_buf buf; /* a snapshot reads spilled groups one by one */
    char *err;
};

/* Writes ad a's minute buckets as an ad of a counts file: all of them
 * (CM_SNAPSHOT) or those changed (CM_DELTA; a changed ad only; changed
 * groups are resident). 0 or a spill read's error. */
static int save_ad(struct save_job *job, const struct ad_counts *a)
{
    int delta = job->kind == CM_DELTA;
    const struct level *lv = &a->levels[CM_MINUTE];
    uint32_t first = delta ? group_lower_bound(lv, a->changed_from) : 0;
    uint64_t n = 0;
    for (uint32_t i = first; i < lv->n; i++)
        n += delta ? lv->groups[i].changed : lv->groups[i].n;
    fs_writer_put(job->w, &a->ad_id, 8);
    fs_writer_put(job->w, &n, 8);
    for (uint32_t i = first; i < lv->n; i++) {
        const struct minute_counts *m = &lv->groups[i];
        const struct term_cell *cells;
        if (delta && !m->changed)
            continue;
        int rc = group_cells(job->cm, a->ad_id, CM_MINUTE, m, &job->buf, &cells,
                             job->err);
        if (rc != 0)
            return rc;
        for (uint32_t k = 0; k < m->cap; k++) {
            const struct term_cell *c = &cells[k];
            if (!c->term_plus1 || (delta && !c->changed))
                continue;
            struct cm_bucket b = {c->term_plus1 - 1, m->start, c->impressions,
                                  c->clicks};
            fs_writer_put(job->w, &b, sizeof b);
        }
    }
    return 0;
}

static int put_counts(struct fs_writer *w, void *ctx)
{
    struct save_job *job = ctx;
    job->w = w;
    int delta = job->kind == CM_DELTA;
    uint64_t n_ads = 0;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        n_ads +=
            delta ? job->cm->shards[s].changed_ads : job->cm->shards[s].used;
    fs_writer_put(job->w, CNT_MAGIC, 8);
    fs_writer_put(job->w, &n_ads, 8);
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        const struct shard *sh = &job->cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            const struct ad_counts *a = sh->ads[i];
            int rc = a && (!delta || a->changed_from != UNCHANGED)
                         ? save_ad(job, a)
                         : 0;
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int cm_save(const struct countmap *cm, enum cm_file_kind kind, const char *path,
            struct fs_seal *seal, char *err)
{
    struct save_job job = {.cm = cm, .kind = kind, .err = err};
    int rc = fs_write_file(path, FS_SEALED, put_counts, &job, seal, err);
    free(job.buf.cells);
    return rc;
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

/* ---- eviction ---- */

/* cm_spill() evicts the oldest cold groups first without sorting them (a
 * sort of every resident group would cost memory in proportion to what is
 * held): one walk finds the cold groups' span of time, a second sums
 * their bytes in EVICT_BINS slices of that span, and eviction takes the
 * slices from the oldest, the last one only as far as needed. */
#define EVICT_BINS 256u

struct evict {
    struct countmap *cm;
    uint64_t max_bytes, resident; /* the budget; the bytes held now */
    uint64_t first, last;         /* minutes of the oldest, newest cold */
    uint64_t bins[EVICT_BINS];    /* cold bytes per slice of the span */
    uint32_t below, part;         /* evict slices < below; part: while
                                     over the budget */
    char *err;
};

typedef int cold_fn(struct evict *ev, struct shard *sh,
                    const struct ad_counts *a, int l, struct minute_counts *m);

/* Calls fn for every cold group: resident, not its ad's newest of its
 * level, and (minute level) unchanged since cm_mark_clean(). */
static int for_each_cold(struct evict *ev, cold_fn *fn)
{
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        struct shard *sh = &ev->cm->shards[s];
        for (uint32_t i = 0; i < sh->cap; i++) {
            struct ad_counts *a = sh->ads[i];
            for (int l = 0; a && l < CM_LEVELS; l++) {
                struct level *lv = &a->levels[l];
                for (uint32_t g = 0; g + 1 < lv->n; g++) {
                    struct minute_counts *m = &lv->groups[g];
                    int rc = !m->cells || m->changed ? 0 : fn(ev, sh, a, l, m);
                    if (rc != 0)
                        return rc;
                }
            }
        }
    }
    return 0;
}

static uint64_t group_minute(int l, const struct minute_counts *m)
{
    return (uint64_t)m->start * level_minutes[l];
}

static uint32_t evict_bin(const struct evict *ev, int l,
                          const struct minute_counts *m)
{
    return (uint32_t)((group_minute(l, m) - ev->first) * EVICT_BINS /
                      (ev->last - ev->first + 1));
}

static int cold_span(struct evict *ev, struct shard *sh,
                     const struct ad_counts *a, int l, struct minute_counts *m)
{
    (void)sh, (void)a;
    uint64_t minute = group_minute(l, m);
    ev->first = minute < ev->first ? minute : ev->first;
    ev->last = minute > ev->last ? minute : ev->last;
    return 0;
}

static int cold_sum(struct evict *ev, struct shard *sh,
                    const struct ad_counts *a, int l, struct minute_counts *m)
{
    (void)sh, (void)a;
    ev->bins[evict_bin(ev, l, m)] += cells_bytes(m->cap);
    return 0;
}

static int cold_evict(struct evict *ev, struct shard *sh,
                      const struct ad_counts *a, int l, struct minute_counts *m)
{
    uint32_t bin = evict_bin(ev, l, m);
    if (bin >= ev->below && (bin != ev->part || ev->resident <= ev->max_bytes))
        return 0;
    uint64_t bytes = cells_bytes(m->cap);
    int rc = group_spill(ev->cm, sh, a, l, m, ev->err);
    ev->resident -= rc == 0 ? bytes : 0;
    return rc;
}

int cm_spill(struct countmap *cm, uint64_t max_resident_bytes, char *err)
{
    if (cm->spill_fd < 0)
        return ctrd_fail(err, CTRD_EINVAL, "cm_spill: no spill file");
    struct evict ev = {.cm = cm,
                       .max_bytes = max_resident_bytes,
                       .resident = cm_resident_bytes(cm),
                       .first = UINT64_MAX,
                       .part = EVICT_BINS,
                       .err = err};
    if (ev.resident <= ev.max_bytes)
        return 0;
    for_each_cold(&ev, cold_span);
    if (ev.first > ev.last)
        return 0; /* nothing cold */
    for_each_cold(&ev, cold_sum);
    uint64_t need = ev.resident - ev.max_bytes, sum = 0;
    while (ev.below < EVICT_BINS && sum + ev.bins[ev.below] < need)
        sum += ev.bins[ev.below++];
    int rc = for_each_cold(&ev, cold_evict); /* the slices wholly needed */
    ev.part = ev.below;
    ev.below = 0;
    return rc ? rc : for_each_cold(&ev, cold_evict); /* the last, in part */
}

uint64_t cm_resident_bytes(const struct countmap *cm)
{
    uint64_t bytes = sizeof *cm;
    for (unsigned s = 0; s < SHARD_COUNT; s++)
        bytes += cm->shards[s].resident_bytes;
    return bytes;
}

void cm_spill_stats(const struct countmap *cm, struct cm_spill_stats *out)
{
    *out = (struct cm_spill_stats){.resident_bytes = cm_resident_bytes(cm),
                                   .file_bytes = cm->spill_end};
    for (unsigned s = 0; s < SHARD_COUNT; s++) {
        out->spilled_groups += cm->shards[s].spilled_groups;
        out->spilled_bytes += cm->shards[s].spilled_bytes;
    }
}

/* ---- loading ---- */

/* What is wrong with a bucket, or NULL. */
static const char *bucket_fault(const struct cm_bucket *b, uint32_t n_terms)
{
    if (b->term_id >= n_terms)
        return "term id not in the dictionary";
    if (b->clicks > b->impressions)
        return "more clicks than impressions";
    return NULL;
}

/* Whether cm_load should spill now: a quarter of its budget over the
 * budget, or over what its last spill left if more (what cannot spill:
 * the hot groups, the tables), so that it walks the groups once per
 * quarter of the budget loaded. */
static int load_over_budget(const struct countmap *cm)
{
    uint64_t room = cm->load_floor > cm->load_max_bytes ? cm->load_floor
                                                        : cm->load_max_bytes;
    return cm->load_max_bytes &&
           cm_resident_bytes(cm) > room + cm->load_max_bytes / 4;
}

/* cm_load's spill. One that cannot write (a full disk) ends the load's
 * spilling, not the load: the counts are whole, and the checkpoints try
 * again. */
static int load_spill(struct countmap *cm, char *err)
{
    int rc = cm_spill(cm, cm->load_max_bytes, err);
    if (rc == CTRD_EWRITEFAIL) {
        cm->load_max_bytes = 0;
        return 0;
    }
    cm->load_floor = cm_resident_bytes(cm);
    return rc;
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
    int failed = 0;      /* a failure other than the file's damage */
    size_t released = 0; /* the mapping's pages before it are let go */
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
            failed = a ? ad_add(cm, sh, a, &b, 1, err)
                       : ctrd_fail(err, CTRD_ENOMEM, "out of memory");
            if (failed)
                goto done;
        }
        if (load_over_budget(cm) && (failed = load_spill(cm, err)) != 0)
            goto done;
        if ((size_t)(p - base) - released >= FS_FOLIO_MAX) {
            fs_map_release(map, map_len, released,
                           (size_t)(p - base) - released);
            released = (size_t)(p - base);
        }
    }
    what = "bytes after the last ad";
    if (p == end)
        rc = 0;
done:
    fs_unmap(map, map_len);
    if (failed) /* err says what: memory, or the spill file */
        return failed;
    if (rc == CTRD_ECORRUPT)
        return ctrd_fail(err, rc, "%s: offset %zu: %s", path,
                         (size_t)(p - base), what);
    return 0;
}
