/* querystore: the QueryStore; see querystore.h. Its runs are qsrun.h's
 * (the RUN FILE format, the Bloom filter and sparse index); this file keeps
 * the store: partitions of runs, the clicked pairs, the memtables, and
 * which runs a checkpoint writes, merges and drops.
 *
 * MARKS FILE (m<hour>-<seq>-<n>.marks): the content of a sealed file:
 *   offset  size          field
 *   0       16 k          k pairs {u64 query_id, u64 ad_id}, each a click
 *                         on an ad the partition's query showed
 * The pairs are in no particular order (that of a set's slots, whose hash
 * is seeded per process): loading adds them to a set, so two runs over
 * the same input may write different bytes that load the same.
 * Files are written whole and fsync'd before a manifest names them, and
 * never changed after; loading checks every checksum, the layout, and
 * that every marked pair names a stored query and one of its ads.
 *
 * CHECKPOINT. qs_checkpoint() first writes every new file (runs of the
 * memtables, marks files), then adopts them: if a write fails the store is
 * as it was (what was written is garbage for the caller to delete).
 *
 * ID FILTER: one Bloom filter in RAM over the query ids of every run the
 * store holds, so that looking up an id no run holds (every new query,
 * to know it is new) costs one probe, not one a run of every partition.
 * It may hold more (ids of runs since expired: they only add false
 * positives, each then checked against the runs); it is rebuilt from the
 * runs, at twice their ids, when it holds more ids than it was sized for.
 * It changes only when runs are added (checkpoints, loading). Under a
 * budget it never takes more than filter_max_bytes: past that it keeps
 * its size (sized still for twice the live ids, so rebuilt as often, to
 * drop expired ones) and its false-positive rate rises. At b bits per id
 * it holds that rate is about (1 - e^(-7/b))^7 (BLOOM_PROBES = 7; the
 * 512-bit blocks add a little): 1 % at 10 bits, 14 % at 5, 64 % at 2.5,
 * 97 % at 1.25. Lookups stay exact: a positive probes the runs (and so
 * maps more of them: see RUN PAGES).
 *
 * RUN PAGES. Runs are mapped files (qsrun.h, PAGES): a page that a
 * lookup, a load or a merge reads stays in the process's RSS until it is
 * released. Under a budget (qs_set_budget()) the store releases them so
 * that the runs hold about run_page_bytes mapped at most: a run once
 * loaded (its checks and the id filter read all of it; a run just written
 * is mapped unread), a partition's runs once a marks file is checked
 * against them, a merge's inputs behind its reads, every run at every
 * checkpoint, and every run when lookups have mapped 3/4 of the budget.
 * Each worker tells that itself, in qs_get(): it counts what its lookups
 * may have mapped (qsrun.h, fault windows: a window of a run's Bloom
 * filter per run probed, at most bloom_mapped_max in all, and those
 * qsrun_find() reports); when that passes its share of what the budget
 * has left, (run_page_bytes - rss_excess) / n_workers, it looks at what
 * the process has mapped of files (RssFile: the count is a worst case,
 * 2 MiB a read, where a read maps 64 KiB or so). rss_excess is that above
 * rss_base, what it was after the last release; past 3/4 of the budget
 * the worker releases every run. So the runs hold at most the budget:
 * the last look's rss_excess, and what each worker mapped since its own
 * last look, at most its share of the rest (and a merge a window of each
 * input). A release is safe while the other workers and the merge read
 * the runs (fs_map_release()), which do not change between checkpoints.
 * Without /proc/self/statm a worker releases every run each time its
 * count passes its share.
 *
 * MERGES run beside the workers, on a thread of their own, one at a time:
 * a checkpoint picks the runs to merge and starts the thread; the merged
 * run replaces its inputs at the first checkpoint after it is written
 * (until then, lookups use the inputs, which stay valid: runs are
 * immutable). A partition that expires while merged hands the merge its
 * inputs, and the merge is dropped. A merge that fails is dropped too
 * (and counted): its inputs hold the same queries. The merge thread reads
 * (and releases the pages of) only its input runs and writes and maps
 * only its own file; no other state is shared with it but the flags
 * `done` and `stop`. */
#include "querystore.h"

#include "bloom.h"
#include "fsutil.h"
#include "grow.h"
#include "hash.h"
#include "qsrun.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MARK_FILES_MAX 8
#define MERGE_FAN_IN 4
#define ID_FILTER_MIN_KEYS (1u << 16)
#define HUGE_PAGE_BYTES FS_FOLIO_MAX /* a PMD's 2 MiB */
#define FLUSH_PREFETCH 8
/* A merge's thread yields to the workers and to readers (its nice value
 * this much above theirs): it uses the cores they leave idle (a
 * checkpoint's flush leaves one). */
#define MERGE_NICE 10
_Static_assert(MERGE_FAN_IN <= QSRUN_MERGE_MAX, "qsrun_merge() takes them");

/* A marks file's pair. */
struct mark_pair {
    uint64_t query_id, ad_id;
};
_Static_assert(sizeof(struct mark_pair) == 16, "MARKS FILE: 16-byte pairs");

/* Open-addressing set of (query_id, ad) pairs with an int64 payload;
 * query_id 0 marks an empty slot. Its own table, not table.h: every
 * joined click probes it (the memtable's and the partition's), and its
 * key is two u64s held inline with the payload. */
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
    struct qsrun **runs; /* oldest first; sizes non-increasing-ish */
    size_t n_runs, cap_runs;
    struct pairset marks;
    struct qs_file *mark_files;
    size_t n_mark_files, cap_mark_files;
};

struct mem_entry {
    uint64_t query_id;
    int64_t time_ms;
    uint32_t term_id;
    uint32_t n_ads;
    uint64_t ad; /* index in mem->ads */
};

/* A memtable slot: the key and its entry side by side, so that a probe
 * that finds its key and the store of a new one touch one cache line. */
struct mem_slot {
    uint64_t query_id; /* 0 = empty (query ids are > 0) */
    uint64_t idx;      /* entry index */
};

/* One worker's queries and clicks since the last checkpoint. */
struct memtable {
    struct mem_slot *slots;
    uint64_t slot_mask;
    struct mem_entry *entries;
    uint64_t n;
    size_t cap;
    uint64_t *ads; /* not NULL once a query is stored */
    uint64_t n_ads;
    size_t cap_ads;
    struct pairset marks; /* value: partition hour */
    /* What this worker's lookups may have mapped of the runs' Bloom
     * filters and of the rest of them since their pages were last
     * released (see RUN PAGES). */
    uint64_t bloom_mapped, run_mapped;
    /* qs_get()'s decode buffer: the ads of a query found in a run */
    uint64_t found_ads[REC_ADS_MAX];
};

#define QS_NAME_MAX sizeof(((struct qs_file *)0)->name)

/* The merge in progress (see MERGES). The checkpoint thread sets every
 * field before the merge thread starts and reads out, rc and err only
 * once done is set. */
struct merge {
    int active;   /* started and not yet adopted */
    int orphaned; /* its partition expired: the merge owns its inputs */
    int threaded;
    int release; /* the inputs' pages behind its reads (RUN PAGES) */
    pthread_t thread;
    atomic_int done, stop;
    const char *dir;
    int64_t hour;
    struct qsrun *inputs[MERGE_FAN_IN]; /* adjacent in the partition */
    char name[QS_NAME_MAX];
    struct qsrun *out;
    int rc;
    char err[CTRD_ERR_LEN];
};

/* See ID FILTER. */
struct id_filter {
    uint8_t *bits;
    size_t bytes;
    uint64_t keys, capacity; /* ids added since it was built; sized for */
};

struct qs {
    char dir[512];
    unsigned n_workers;
    struct id_filter ids;
    uint64_t filter_max_bytes;   /* 0: unbounded */
    uint64_t run_page_bytes;     /* 0: unbounded (no page released) */
    uint64_t bloom_mapped_max;   /* sum of the runs' qsrun_bloom_mapped_max() */
    int statm_fd;                /* /proc/self/statm under a budget, or -1 */
    _Atomic uint64_t rss_base;   /* rss_file_bytes() after the last release */
    _Atomic uint64_t rss_excess; /* above rss_base at the last look */
    int64_t horizon_hour;        /* partitions below it are gone */
    struct partition *parts;     /* ascending hour */
    size_t n_parts, cap_parts;
    unsigned files_written; /* per checkpoint, for unique names */
    struct merge merge;
    uint64_t merged_bytes, merges_failed;
    struct memtable mem[];
};

/* The name of a new file of the checkpoint seq: PREFIX<hour>-<seq>-<n>.EXT
 * (datadir.h lists them). */
static void file_name(struct qs *qs, const char *prefix, int64_t hour,
                      uint64_t seq, const char *ext, char name[QS_NAME_MAX])
{
    snprintf(name, QS_NAME_MAX, "%s%lld-%llu-%u.%s", prefix, (long long)hour,
             (unsigned long long)seq, qs->files_written++, ext);
}

/* Zeroed memory for a table probed at random, its pages present and
 * writable up front: a page of a fresh block read first maps the shared
 * zero page, and the first write to it then costs a second fault and a
 * TLB shootdown, an interrupt to every CPU that runs another worker
 * (costly in a VM). Past a huge page, on huge pages where the kernel
 * allows: at 4 KiB pages every probe, and every prefetch of one, missed
 * the TLB (the id filter's: 30 M queries -8 % wall). */
static void *calloc_written(size_t n, size_t size)
{
    size_t bytes = n * size;
    if (bytes < HUGE_PAGE_BYTES) {
        char *p = calloc(n, size);
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t from = ((uintptr_t)p + page - 1) & ~(page - 1);
        uintptr_t to = ((uintptr_t)p + bytes) & ~(page - 1);
        if (p && to > from) /* a hint: without it the faults come later */
            madvise((void *)from, to - from, MADV_POPULATE_WRITE);
        return p;
    }
    size_t len =
        (bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    char *p = aligned_alloc(HUGE_PAGE_BYTES, len);
    if (p) {
        madvise(p, len, MADV_HUGEPAGE); /* a hint */
        memset(p, 0, len);
    }
    return p;
}

/* ---- pair sets ---- */

/* The home slot of a pair in cap slots. Both ids come from the input and
 * both hashes are seeded: with an unseeded inner hash a sender could pick
 * query ids that cancel hash_u64(ad_id) and send every pair to one slot. */
static uint64_t pair_home(uint64_t query_id, uint64_t ad_id, uint64_t cap)
{
    return hash_slot_u64_pair(query_id, ad_id) & (cap - 1);
}

static int pairset_grow(struct pairset *s)
{
    uint64_t cap = s->cap ? s->cap * 2 : 64;
    struct pair_slot *slots = calloc_written(cap, sizeof *slots);
    if (!slots)
        return CTRD_ENOMEM;
    for (uint64_t i = 0; i < s->cap; i++) {
        struct pair_slot *o = &s->slots[i];
        if (!o->query_id)
            continue;
        uint64_t j = pair_home(o->query_id, o->ad_id, cap);
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
    uint64_t j = pair_home(query_id, ad_id, s->cap);
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
    uint64_t j = pair_home(query_id, ad_id, s->cap);
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
    if (grow(&qs->parts, &qs->cap_parts, qs->n_parts + 1, sizeof *qs->parts,
             8) != 0)
        return NULL;
    struct partition *parts = qs->parts;
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
        qsrun_free(p->runs[i]);
    free(p->runs);
    pairset_clear(&p->marks);
    free(p->mark_files);
}

/* The size of the ID FILTER for capacity ids: bloom_bytes_for() them,
 * at most max_bytes unless 0, and past a huge page a whole number of them
 * (calloc_written() allocates that: the filter uses all it takes). */
static size_t id_filter_bytes(uint64_t capacity, uint64_t max_bytes)
{
    size_t bytes = bloom_bytes_for(capacity);
    if (bytes > HUGE_PAGE_BYTES)
        bytes =
            (bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    if (max_bytes == 0 || bytes <= max_bytes)
        return bytes;
    size_t unit =
        max_bytes >= HUGE_PAGE_BYTES ? HUGE_PAGE_BYTES : BLOOM_BLOCK_BYTES;
    return max_bytes >= unit ? max_bytes / unit * unit : BLOOM_BLOCK_BYTES;
}

/* A filter sized for capacity ids (in at most max_bytes, unless 0), or
 * none (NULL bits) when out of memory. */
static struct id_filter id_filter_new(uint64_t capacity, uint64_t max_bytes)
{
    struct id_filter f = {.bytes = id_filter_bytes(capacity, max_bytes),
                          .capacity = capacity};
    f.bits = calloc_written(1, f.bytes);
    return f;
}

static void id_filter_add(struct id_filter *f, const struct qsrun *r)
{
    bloom_add_keys(f->bits, f->bytes, qsrun_keys(r), qsrun_queries(r));
    f->keys += qsrun_queries(r);
}

/* Makes the ID FILTER hold the ids of run r, just added to a partition:
 * adds them, or rebuilds it from every run when they would pass its size
 * (or adds them all the same, past its size, when out of memory). */
static void id_filter_take(struct qs *qs, const struct qsrun *r)
{
    if (qs->ids.keys + qsrun_queries(r) <= qs->ids.capacity) {
        id_filter_add(&qs->ids, r);
        return;
    }
    struct qs_stats st;
    qs_get_stats(qs, &st);
    uint64_t live = st.queries_on_disk;
    struct id_filter f = id_filter_new(
        2 * live > ID_FILTER_MIN_KEYS ? 2 * live : ID_FILTER_MIN_KEYS,
        qs->filter_max_bytes);
    if (!f.bits) {
        id_filter_add(&qs->ids, r);
        return;
    }
    for (size_t i = 0; i < qs->n_parts; i++) {
        for (size_t k = 0; k < qs->parts[i].n_runs; k++) {
            id_filter_add(&f, qs->parts[i].runs[k]);
            if (qs->run_page_bytes) /* its keys just read: RUN PAGES */
                qsrun_release(qs->parts[i].runs[k]);
        }
    }
    free(qs->ids.bits);
    qs->ids = f;
}

static int partition_add_run(struct qs *qs, struct partition *p,
                             struct qsrun *r)
{
    if (grow(&p->runs, &p->cap_runs, p->n_runs + 1, sizeof *p->runs, 4) != 0)
        return CTRD_ENOMEM;
    p->runs[p->n_runs++] = r;
    id_filter_take(qs, r);
    qs->bloom_mapped_max += qsrun_bloom_mapped_max(r);
    return 0;
}

/* ---- run pages ---- */

/* Releases the pages of partition p's runs (see RUN PAGES). */
static void partition_release(const struct partition *p)
{
    for (size_t r = 0; r < p->n_runs; r++)
        qsrun_release(p->runs[r]);
}

/* The bytes of files the process has mapped (RssFile + RssShmem,
 * /proc/self/statm's third field), or UINT64_MAX when unknown. */
static uint64_t rss_file_bytes(int statm_fd)
{
    char buf[128];
    ssize_t n = statm_fd >= 0 ? pread(statm_fd, buf, sizeof buf - 1, 0) : -1;
    unsigned long long size, resident, shared;
    if (n <= 0)
        return UINT64_MAX;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu %llu", &size, &resident, &shared) != 3)
        return UINT64_MAX;
    return shared * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Notes what the process holds mapped right after a release. */
static void note_released(struct qs *qs)
{
    atomic_store(&qs->rss_base, rss_file_bytes(qs->statm_fd));
    atomic_store(&qs->rss_excess, 0);
}

/* Releases the pages of every run: any thread, between checkpoints. */
static void release_runs(struct qs *qs)
{
    for (size_t i = 0; i < qs->n_parts; i++)
        partition_release(&qs->parts[i]);
    note_released(qs);
}

/* At a checkpoint, under a budget: releases the pages of every run and
 * starts every worker's count again; bloom_mapped_max anew, for the runs
 * that merges and expiry took away. */
static void release_all(struct qs *qs)
{
    if (!qs->run_page_bytes)
        return;
    release_runs(qs);
    qs->bloom_mapped_max = 0;
    for (size_t i = 0; i < qs->n_parts; i++) {
        for (size_t r = 0; r < qs->parts[i].n_runs; r++)
            qs->bloom_mapped_max +=
                qsrun_bloom_mapped_max(qs->parts[i].runs[r]);
    }
    for (unsigned w = 0; w < qs->n_workers; w++)
        qs->mem[w].bloom_mapped = qs->mem[w].run_mapped = 0;
}

/* What worker m's lookups may have mapped of the runs since it last
 * released them. */
static uint64_t worker_mapped(const struct qs *qs, const struct memtable *m)
{
    uint64_t bloom = m->bloom_mapped < qs->bloom_mapped_max
                         ? m->bloom_mapped
                         : qs->bloom_mapped_max;
    return bloom + m->run_mapped;
}

/* A worker's share of what the budget has left (see RUN PAGES). */
static uint64_t worker_share(const struct qs *qs)
{
    return (qs->run_page_bytes - atomic_load(&qs->rss_excess)) / qs->n_workers;
}

/* Whether the process holds more than 3/4 of the budget mapped above
 * rss_base (or cannot tell); else notes how much above it in
 * rss_excess. */
static int runs_mapped_over(struct qs *qs)
{
    uint64_t rss = rss_file_bytes(qs->statm_fd);
    uint64_t base = atomic_load(&qs->rss_base);
    if (rss == UINT64_MAX || base == UINT64_MAX ||
        (rss > base && rss - base > qs->run_page_bytes / 4 * 3))
        return 1;
    if (rss < base) /* other files were unmapped */
        atomic_store(&qs->rss_base, rss);
    atomic_store(&qs->rss_excess, rss > base ? rss - base : 0);
    return 0;
}

/* Worker m's lookups may have mapped its share: it looks at what the
 * process holds mapped above rss_base and releases every run past 3/4 of
 * the budget (the slow path of qs_get()). */
static __attribute__((noinline)) void worker_check(struct qs *qs,
                                                   struct memtable *m)
{
    m->bloom_mapped = m->run_mapped = 0;
    if (runs_mapped_over(qs))
        release_runs(qs);
}

static int partition_add_mark_file(struct partition *p,
                                   const struct qs_file *file)
{
    if (grow(&p->mark_files, &p->cap_mark_files, p->n_mark_files + 1,
             sizeof *p->mark_files, 4) != 0)
        return CTRD_ENOMEM;
    p->mark_files[p->n_mark_files++] = *file;
    return 0;
}

/* Keeps the runs of a partition few (size-tiered): MERGE_FAN_IN adjacent
 * runs of one size class (the oldest of them at most MERGE_FAN_IN times
 * the newest) become one run, the newest such group first. A query is
 * then rewritten about log_MERGE_FAN_IN(runs) times, and a partition holds
 * about MERGE_FAN_IN - 1 runs per size class (a few more while merges
 * wait for the one in progress). Runs too big to merge (qsrun_merge_fits())
 * stay as they are. Returns the first run of the group to merge, or
 * NULL. */
static struct qsrun **partition_merge_group(const struct partition *p)
{
    for (size_t at = p->n_runs; at >= MERGE_FAN_IN; at--) {
        struct qsrun **group = p->runs + at - MERGE_FAN_IN;
        if (qsrun_queries(group[0]) <=
                MERGE_FAN_IN * qsrun_queries(group[MERGE_FAN_IN - 1]) &&
            qsrun_merge_fits(group, MERGE_FAN_IN))
            return group;
    }
    return NULL;
}

static void merge_run(struct merge *m)
{
    m->rc = qsrun_merge(m->dir, m->name, m->hour, m->inputs, MERGE_FAN_IN,
                        m->release, &m->stop, &m->out, m->err);
    atomic_store(&m->done, 1);
}

static void *merge_thread(void *arg)
{
    id_t self = (id_t)gettid();
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, self);
    if (errno == 0)
        setpriority(PRIO_PROCESS, self, nice + MERGE_NICE);
    merge_run(arg);
    return NULL;
}

/* Starts merging group, runs of the partition of the hour; on this
 * thread when no thread can be started (it is then adopted at the next
 * checkpoint all the same). */
static void merge_spawn(struct qs *qs, int64_t hour, struct qsrun *const *group,
                        uint64_t seq)
{
    struct merge *m = &qs->merge;
    *m = (struct merge){.active = 1,
                        .release = qs->run_page_bytes != 0,
                        .dir = qs->dir,
                        .hour = hour};
    memcpy(m->inputs, group, sizeof m->inputs);
    file_name(qs, "q", hour, seq, "run", m->name);
    m->threaded = pthread_create(&m->thread, NULL, merge_thread, m) == 0;
    if (!m->threaded)
        merge_run(m);
}

/* Starts the merge of the newest partition that wants one (the oldest are
 * the first to expire), unless a merge is in progress. */
static void merge_start(struct qs *qs, uint64_t seq)
{
    for (size_t i = qs->n_parts; !qs->merge.active && i-- > 0;) {
        struct qsrun **group = partition_merge_group(&qs->parts[i]);
        if (group)
            merge_spawn(qs, qs->parts[i].hour, group, seq);
    }
}

/* Where the merge's inputs are among the runs of its partition p. */
static size_t merge_inputs_at(const struct merge *m, const struct partition *p)
{
    size_t at = 0;
    while (p->runs[at] != m->inputs[0])
        at++;
    for (size_t i = 1; i < MERGE_FAN_IN; i++)
        assert(p->runs[at + i] == m->inputs[i]);
    return at;
}

/* Takes the merge's inputs out of the runs of its partition p, with
 * in_their_place, when not NULL, where they were. */
static void merge_take_inputs(const struct merge *m, struct partition *p,
                              struct qsrun *in_their_place)
{
    size_t at = merge_inputs_at(m, p), keep = in_their_place != NULL;
    if (in_their_place)
        p->runs[at] = in_their_place;
    memmove(p->runs + at + keep, p->runs + at + MERGE_FAN_IN,
            (p->n_runs - at - MERGE_FAN_IN) * sizeof *p->runs);
    p->n_runs -= MERGE_FAN_IN - keep;
}

/* Partition p expires while merged: the merge takes its inputs out of it
 * (the partition's other runs go with it), to free them once it ends. */
static void merge_orphan(struct merge *m, struct partition *p)
{
    merge_take_inputs(m, p, NULL);
    m->orphaned = 1;
}

/* Waits for the merge and frees what it holds that no partition does:
 * its output, and its inputs once orphaned. */
static void merge_end(struct merge *m)
{
    if (m->threaded)
        pthread_join(m->thread, NULL);
    m->active = 0;
    qsrun_free(m->out);
    for (size_t i = 0; m->orphaned && i < MERGE_FAN_IN; i++)
        qsrun_free(m->inputs[i]);
}

/* Once the merge is done, its run replaces its inputs in the partition.
 * A merge that failed (counted in the stats) or whose partition expired
 * is dropped instead, its file garbage: the inputs hold the same
 * queries. */
static void merge_adopt(struct qs *qs)
{
    struct merge *m = &qs->merge;
    if (!m->active || !atomic_load(&m->done))
        return;
    if (m->rc != 0 || m->orphaned) {
        qs->merges_failed += m->rc != 0;
        merge_end(m);
        return;
    }
    merge_take_inputs(m, partition_find(qs, m->hour), m->out);
    for (size_t i = 0; i < MERGE_FAN_IN; i++)
        qsrun_free(m->inputs[i]);
    qs->merged_bytes += qsrun_disk_bytes(m->out);
    m->out = NULL;
    merge_end(m);
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
    qs->statm_fd = -1;
    qs->ids = id_filter_new(ID_FILTER_MIN_KEYS, 0);
    if (!qs->ids.bits) {
        free(qs);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    qs->horizon_hour = horizon_ms / QS_PARTITION_MS;
    *out = qs;
    return 0;
}

void qs_set_budget(struct qs *qs, uint64_t run_page_bytes,
                   uint64_t filter_bytes)
{
    assert(qs->n_parts == 0);
    qs->run_page_bytes = run_page_bytes;
    qs->filter_max_bytes = filter_bytes;
    if (run_page_bytes && qs->statm_fd < 0) /* else worker_check() releases */
        qs->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    note_released(qs);
    struct id_filter f = id_filter_new(qs->ids.capacity, filter_bytes);
    if (f.bits) { /* else the one it has, empty as well */
        free(qs->ids.bits);
        qs->ids = f;
    }
}

/* Empties a memtable but keeps its memory for the next interval. */
static void memtable_reset(struct memtable *m)
{
    if (m->slots)
        memset(m->slots, 0, (m->slot_mask + 1) * sizeof *m->slots);
    m->n = 0;
    m->n_ads = 0;
    pairset_clear(&m->marks);
}

static void memtable_clear(struct memtable *m)
{
    free(m->slots);
    free(m->entries);
    free(m->ads);
    pairset_clear(&m->marks);
    *m = (struct memtable){0};
}

void qs_close(struct qs *qs)
{
    if (!qs)
        return;
    if (qs->merge.active) { /* not adopted: its file is garbage, gone */
        atomic_store(&qs->merge.stop, 1);
        merge_end(&qs->merge);
        char path[FS_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", qs->dir, qs->merge.name);
        unlink(path);
    }
    for (size_t i = 0; i < qs->n_parts; i++)
        partition_free(&qs->parts[i]);
    free(qs->parts);
    for (unsigned w = 0; w < qs->n_workers; w++)
        memtable_clear(&qs->mem[w]);
    free(qs->ids.bits);
    if (qs->statm_fd >= 0)
        close(qs->statm_fd);
    free(qs);
}

/* Whether the partition's runs hold query_id with ad_id among its ads;
 * adds what the lookups may have mapped to *mapped_bytes. */
static int partition_showed(const struct partition *p, uint64_t query_id,
                            uint64_t ad_id, uint64_t *mapped_bytes)
{
    struct qs_query q;
    uint64_t ads[REC_ADS_MAX];
    for (size_t i = 0; i < p->n_runs; i++) {
        *mapped_bytes += QSRUN_FAULT_BYTES; /* its Bloom filter's */
        if (qsrun_find(p->runs[i], query_id, ads, &q, mapped_bytes) != 0)
            continue;
        for (uint32_t a = 0; a < q.n_ads; a++) {
            if (q.ads[a] == ad_id)
                return 1;
        }
        return 0;
    }
    return 0;
}

/* A marks file's pair and where it is in the file. */
struct marked {
    struct mark_pair pair;
    size_t at; /* its index */
};

static int marked_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct marked *)a)->pair.query_id;
    uint64_t y = ((const struct marked *)b)->pair.query_id;
    return (x > y) - (x < y);
}

/* The n pairs at map by query_id (malloc'd), so that checking them walks
 * each run in order, each page of it mapped once; NULL when out of
 * memory. */
static struct marked *sorted_marks(const void *map, size_t n)
{
    struct marked *pairs = malloc((n ? n : 1) * sizeof *pairs);
    for (size_t i = 0; pairs && i < n; i++) {
        memcpy(&pairs[i].pair, (const char *)map + i * sizeof pairs[i].pair,
               sizeof pairs[i].pair);
        pairs[i].at = i;
    }
    if (pairs)
        qsort(pairs, n, sizeof *pairs, marked_cmp);
    return pairs;
}

/* Loads a marks file of partition p, whose runs are loaded. */
static int load_marks(struct qs *qs, struct partition *p,
                      const struct qs_file *file, char *err)
{
    char path[FS_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", qs->dir, file->name);
    void *map;
    size_t map_len, len;
    int rc = fs_map_sealed(path, &file->seal, &map, &map_len, &len, err);
    if (rc != 0)
        return rc;
    size_t n = len / sizeof(struct mark_pair);
    struct marked *pairs = sorted_marks(map, n);
    uint64_t mapped = 0;
    if (len % sizeof(struct mark_pair))
        rc = ctrd_fail(err, CTRD_ECORRUPT,
                       "%s: offset %zu: a pair cut "
                       "short",
                       path, n * sizeof(struct mark_pair));
    else if (!pairs && n)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s", path);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct mark_pair m = pairs[i].pair;
        if (qs->run_page_bytes && mapped > qs->run_page_bytes / 4) {
            mapped = 0;
            if (runs_mapped_over(qs)) {
                partition_release(p);
                note_released(qs);
            }
        }
        if (!partition_showed(p, m.query_id, m.ad_id, &mapped))
            rc = ctrd_fail(err, CTRD_ECORRUPT,
                           "%s: offset %zu: pair "
                           "(query %llu, ad %llu) names no query of the "
                           "partition's runs that showed that ad",
                           path, pairs[i].at * sizeof m,
                           (unsigned long long)m.query_id,
                           (unsigned long long)m.ad_id);
        else if (!pairset_find(&p->marks, m.query_id, m.ad_id) &&
                 pairset_add(&p->marks, m.query_id, m.ad_id, 0) != 0)
            rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory loading %s", path);
    }
    free(pairs);
    fs_unmap(map, map_len);
    if (qs->run_page_bytes) {
        partition_release(p);
        note_released(qs);
    }
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
    struct qs_file f = {.seal = *seal};
    if (snprintf(f.name, sizeof f.name, "%s", file) >= (int)sizeof f.name)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%s/%.64s...: file name too "
                         "long",
                         qs->dir, file);
    if (strcmp(kind, "marks") == 0)
        return load_marks(qs, p, &f, err);
    struct qsrun *r;
    int rc = qsrun_open(qs->dir, &f, hour, &r, err);
    if (rc == 0 && partition_add_run(qs, p, r) != 0) {
        qsrun_free(r);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    if (rc == 0 && qs->run_page_bytes) { /* read by the checks, id filter */
        qsrun_release(r);
        note_released(qs);
    }
    return rc;
}

/* ---- the worker path ---- */

/* The slot of query_id, or the empty slot where it would go. Its own
 * table, not table.h: every stored query and every query lookup probes
 * it (a cache miss each: the table holds a checkpoint interval of
 * queries), and it is reset by one memset per checkpoint.
 * Seeded: query ids come from the input. */
static uint64_t mem_home(const struct memtable *m, uint64_t query_id)
{
    return hash_slot_u64(query_id) & m->slot_mask;
}

static uint64_t mem_slot(const struct memtable *m, uint64_t query_id)
{
    uint64_t j = mem_home(m, query_id);
    while (m->slots[j].query_id && m->slots[j].query_id != query_id)
        j = (j + 1) & m->slot_mask;
    return j;
}

void qs_prefetch(const struct qs *qs, unsigned worker, uint64_t query_id)
{
    const struct memtable *m = &qs->mem[worker];
    if (m->slots)
        __builtin_prefetch(&m->slots[mem_home(m, query_id)]);
    bloom_prefetch(qs->ids.bits, qs->ids.bytes, hash_u64(query_id));
}

/* Looks query_id up in the runs, newest first, counting in worker m what
 * the lookups may have mapped. */
static int runs_find(const struct qs *qs, struct memtable *m, uint64_t query_id,
                     struct qs_query *out)
{
    for (size_t i = qs->n_parts; i-- > 0;) {
        const struct partition *p = &qs->parts[i];
        for (size_t r = p->n_runs; r-- > 0;) {
            m->bloom_mapped += QSRUN_FAULT_BYTES;
            if (qsrun_find(p->runs[r], query_id, m->found_ads, out,
                           &m->run_mapped) == 0)
                return 0;
        }
    }
    return CTRD_ENOTFOUND;
}

int qs_get(struct qs *qs, unsigned worker, uint64_t query_id,
           struct qs_query *out)
{
    struct memtable *m = &qs->mem[worker];
    if (m->slots) {
        uint64_t j = mem_slot(m, query_id);
        if (m->slots[j].query_id) {
            const struct mem_entry *e = &m->entries[m->slots[j].idx];
            *out = (struct qs_query){query_id, e->time_ms, e->term_id, e->n_ads,
                                     m->ads + e->ad};
            return 0;
        }
    }
    if (!bloom_may_contain(qs->ids.bits, qs->ids.bytes, hash_u64(query_id)))
        return CTRD_ENOTFOUND;
    int rc = runs_find(qs, m, query_id, out);
    if (qs->run_page_bytes && worker_mapped(qs, m) > worker_share(qs))
        worker_check(qs, m);
    return rc;
}

static void mem_slot_set(struct memtable *m, uint64_t query_id, uint64_t i)
{
    uint64_t j = mem_slot(m, query_id);
    m->slots[j] = (struct mem_slot){query_id, i};
}

static int mem_grow(struct memtable *m)
{
    if (grow(&m->entries, &m->cap, m->n + 1, sizeof *m->entries, 4096) != 0)
        return CTRD_ENOMEM;
    uint64_t n_slots = m->cap * 2;
    struct mem_slot *slots = calloc_written(n_slots, sizeof *slots);
    if (!slots)
        return CTRD_ENOMEM;
    free(m->slots);
    m->slots = slots;
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
    /* + 1: a spare, so that ads is allocated even for a query without */
    if (grow(&m->ads, &m->cap_ads, m->n_ads + q->n_ads + 1, 8, 16384) != 0)
        return CTRD_ENOMEM;
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

/* Radix digits of 11 bits: a pass scatters into 2,048 places, few enough
 * for their cache lines to stay in cache (16-bit digits made every store
 * a miss). */
#define RADIX_BITS 11
#define RADIX_BUCKETS (1 << RADIX_BITS)
#define RADIX_PASSES ((64 + RADIX_BITS - 1) / RADIX_BITS)

static size_t radix_digit(uint64_t key, int pass)
{
    return (size_t)(key >> (pass * RADIX_BITS)) & (RADIX_BUCKETS - 1);
}

/* LSD radix sort by key between a and tmp, whichever it returns holding
 * the result. Every digit is counted in one read of a; passes whose digit
 * is the same for every key are skipped. count has RADIX_PASSES *
 * RADIX_BUCKETS room. */
static struct kv *radix_sort(struct kv *a, struct kv *tmp, uint64_t *count,
                             uint64_t n)
{
    memset(count, 0, RADIX_PASSES * RADIX_BUCKETS * sizeof *count);
    for (uint64_t i = 0; i < n; i++) {
        for (int p = 0; p < RADIX_PASSES; p++)
            count[p * RADIX_BUCKETS + radix_digit(a[i].key, p)]++;
    }
    for (int p = 0; p < RADIX_PASSES; p++) {
        uint64_t *c = count + p * RADIX_BUCKETS, sum = 0;
        if (c[radix_digit(a[0].key, p)] == n)
            continue;
        for (size_t d = 0; d < RADIX_BUCKETS; d++) {
            uint64_t k = c[d];
            c[d] = sum;
            sum += k;
        }
        for (uint64_t i = 0; i < n; i++)
            tmp[c[radix_digit(a[i].key, p)]++] = a[i];
        struct kv *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* What one checkpoint wrote before adopting it: a run per hour of the
 * memtable queries, a marks file per hour of the memtable clicks. */
struct written_run {
    int64_t hour;
    struct qsrun *run; /* NULL once adopted */
};
struct written_marks {
    int64_t hour;
    int full; /* the file holds all the partition's pairs */
    struct qs_file file;
};
struct written {
    struct written_run *runs;
    size_t n_runs;
    struct written_marks *marks;
    size_t n_marks;
};

static void written_free(struct written *wr)
{
    for (size_t i = 0; i < wr->n_runs; i++)
        qsrun_free(wr->runs[i].run);
    free(wr->runs);
    free(wr->marks);
}

/* Adds h to the distinct hours[0..*n) (capacity cap, grown). */
static int hours_add(int64_t **hours, size_t *n, size_t *cap, int64_t h)
{
    for (size_t k = 0; k < *n; k++) {
        if ((*hours)[k] == h)
            return 0;
    }
    if (grow(hours, cap, *n + 1, sizeof **hours, 8) != 0)
        return CTRD_ENOMEM;
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

static const struct mem_entry *mem_entry_of(const struct qs *qs, struct kv kv)
{
    return &qs->mem[kv.ref >> 32].entries[(uint32_t)kv.ref];
}

static const uint64_t *mem_ads_of(const struct qs *qs, struct kv kv)
{
    return qs->mem[kv.ref >> 32].ads + mem_entry_of(qs, kv)->ad;
}

/* One half of a flush (see flush_hour()): its queries in kv[0..n), the
 * ones whose query_id has the top bit `half`, sorted between kv and tmp
 * with count, then added to b, a builder over its part of the run's. */
struct flush_half {
    const struct qs *qs;
    int64_t hour;
    struct kv *kv, *tmp;
    uint64_t n, *count;
    struct qsrun_builder b;
};

/* Sorts the half's queries, then adds them to its builder in key order,
 * that is reading their entries and ads at random: each entry is asked
 * for 2 * FLUSH_PREFETCH queries ahead and its ads FLUSH_PREFETCH ahead
 * (by then the entry that points to them is in cache), so that the cache
 * misses overlap. */
static void *flush_half_run(void *arg)
{
    struct flush_half *h = arg;
    struct kv *kv = h->n ? radix_sort(h->kv, h->tmp, h->count, h->n) : h->kv;
    for (uint64_t i = 0; i < h->n; i++) {
        if (i + 2 * FLUSH_PREFETCH < h->n)
            __builtin_prefetch(mem_entry_of(h->qs, kv[i + 2 * FLUSH_PREFETCH]));
        if (i + FLUSH_PREFETCH < h->n)
            __builtin_prefetch(mem_ads_of(h->qs, kv[i + FLUSH_PREFETCH]));
        const struct mem_entry *e = mem_entry_of(h->qs, kv[i]);
        qsrun_builder_add(&h->b, e->query_id,
                          (uint32_t)(e->time_ms - h->hour * QS_PARTITION_MS),
                          e->term_id, mem_ads_of(h->qs, kv[i]), e->n_ads);
    }
    return NULL;
}

/* Writes the memtable queries of one hour as a new run. The queries whose
 * query_id has the top bit clear all sort before the others, so the two
 * halves are sorted and added to the builder at once, the second on a
 * thread of its own (on this one after the first when none can start):
 * kv holds the first half from its start and the second from its end
 * (room for total queries, as tmp), count room for two sorts. */
static int flush_hour(struct qs *qs, int64_t hour, struct kv *kv,
                      struct kv *tmp, uint64_t total, uint64_t *count,
                      struct qsrun_builder *b, uint64_t seq, struct qsrun **out,
                      char *err)
{
    uint64_t n[2] = {0, 0}, ads_low = 0;
    for (unsigned w = 0; w < qs->n_workers; w++) {
        const struct memtable *m = &qs->mem[w];
        for (uint64_t i = 0; i < m->n; i++) {
            const struct mem_entry *e = &m->entries[i];
            if (e->time_ms / QS_PARTITION_MS != hour)
                continue;
            int high = (int)(e->query_id >> 63);
            struct kv x = {e->query_id, (uint64_t)w << 32 | i};
            if (high) {
                kv[total - ++n[1]] = x;
            } else {
                kv[n[0]++] = x;
                ads_low += e->n_ads;
            }
        }
    }
    struct flush_half h[2] = {
        {qs, hour, kv, tmp, n[0], count, *b},
        {qs, hour, kv + total - n[1], tmp + total - n[1], n[1],
         count + RADIX_PASSES * RADIX_BUCKETS, *b},
    };
    qsrun_builder_reset(&h[0].b);
    qsrun_builder_reset(&h[1].b);
    h[1].b.keys += n[0];
    h[1].b.entries += n[0];
    h[1].b.n_ads = ads_low; /* its ads (and slots) follow the first's */
    pthread_t t;
    int threaded = pthread_create(&t, NULL, flush_half_run, &h[1]) == 0;
    flush_half_run(&h[0]);
    if (threaded)
        pthread_join(t, NULL);
    else
        flush_half_run(&h[1]);
    b->n = n[0] + n[1];
    b->n_ads = h[1].b.n_ads;
    char name[QS_NAME_MAX];
    file_name(qs, "q", hour, seq, "run", name);
    return qsrun_write(qs->dir, name, hour, b, out, err);
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
    uint64_t *count = malloc(2 * RADIX_PASSES * RADIX_BUCKETS * sizeof *count);
    struct qsrun_builder b = {0};
    int rc = 0;
    if (memtable_hours(qs, 0, &hours, &n_hours) != 0 || !kv || !tmp || !count ||
        qsrun_builder_init(&b, total, total_ads) != 0 ||
        !(wr->runs = calloc(n_hours, sizeof *wr->runs)))
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory flushing queries");
    for (size_t h = 0; rc == 0 && h < n_hours; h++) {
        rc = flush_hour(qs, hours[h], kv, tmp, total, count, &b, seq,
                        &wr->runs[wr->n_runs].run, err);
        if (rc == 0)
            wr->runs[wr->n_runs++].hour = hours[h];
    }
    free(hours);
    free(count);
    free(kv);
    free(tmp);
    qsrun_builder_free(&b);
    return rc;
}

static void put_pair(struct fs_writer *w, const struct pair_slot *s)
{
    struct mark_pair m = {s->query_id, s->ad_id};
    fs_writer_put(w, &m, sizeof m);
}

/* What a MARKS FILE holds, for put_marks(). */
struct marks_content {
    const struct qs *qs;
    int64_t hour;
    const struct partition *p; /* its pairs first; NULL: none */
};

static int put_marks(struct fs_writer *w, void *ctx)
{
    const struct marks_content *c = ctx;
    for (uint64_t i = 0; c->p && i < c->p->marks.cap; i++) {
        if (c->p->marks.slots[i].query_id)
            put_pair(w, &c->p->marks.slots[i]);
    }
    for (unsigned wk = 0; wk < c->qs->n_workers; wk++) {
        const struct pairset *m = &c->qs->mem[wk].marks;
        for (uint64_t i = 0; i < m->cap; i++) {
            if (m->slots[i].query_id && m->slots[i].value == c->hour)
                put_pair(w, &m->slots[i]);
        }
    }
    return 0;
}

/* Writes a marks file of the hour: the memtable pairs of the hour, and
 * before them all the pairs of its partition p when full is set. */
static int write_marks(struct qs *qs, int64_t hour, const struct partition *p,
                       int full, uint64_t seq, struct qs_file *file, char *err)
{
    char path[FS_PATH_MAX];
    file_name(qs, "m", hour, seq, "marks", file->name);
    snprintf(path, sizeof path, "%s/%s", qs->dir, file->name);
    struct marks_content c = {qs, hour, full ? p : NULL};
    return fs_write_file(path, FS_SEALED, put_marks, &c, &file->seal, err);
}

/* Writes the memtable clicks, one marks file per hour, into wr: a delta
 * file, or one with all the partition's pairs when it has too many. */
static int write_all_marks(struct qs *qs, uint64_t seq, struct written *wr,
                           char *err)
{
    int64_t *hours;
    size_t n_hours;
    if (memtable_hours(qs, 1, &hours, &n_hours) != 0 ||
        !(wr->marks = calloc(n_hours ? n_hours : 1, sizeof *wr->marks))) {
        free(hours);
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    }
    int rc = 0;
    for (size_t h = 0; rc == 0 && h < n_hours; h++) {
        const struct partition *p = partition_find(qs, hours[h]);
        int full = p && p->n_mark_files >= MARK_FILES_MAX;
        struct written_marks *m = &wr->marks[wr->n_marks];
        *m = (struct written_marks){.hour = hours[h], .full = full};
        rc = write_marks(qs, hours[h], p, full, seq, &m->file, err);
        wr->n_marks += rc == 0;
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
        struct partition *p = partition_get(qs, wr->runs[i].hour);
        if (!p || partition_add_run(qs, p, wr->runs[i].run) != 0)
            return CTRD_ENOMEM;
        wr->runs[i].run = NULL;
    }
    for (size_t i = 0; i < wr->n_marks; i++) {
        struct partition *p = partition_get(qs, wr->marks[i].hour);
        if (!p || adopt_pairs(qs, p) != 0)
            return CTRD_ENOMEM;
        if (wr->marks[i].full)
            p->n_mark_files = 0;
        if (partition_add_mark_file(p, &wr->marks[i].file) != 0)
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
    struct merge *m = &qs->merge;
    for (size_t i = 0; i < qs->n_parts; i++) {
        if (qs->parts[i].hour >= qs->horizon_hour) {
            qs->parts[keep++] = qs->parts[i];
            continue;
        }
        if (m->active && !m->orphaned && m->hour == qs->parts[i].hour)
            merge_orphan(m, &qs->parts[i]);
        partition_free(&qs->parts[i]);
    }
    qs->n_parts = keep;
}

static void print_file(FILE *manifest, const char *kind, int64_t hour,
                       const struct qs_file *f)
{
    fprintf(manifest, "%s %lld %s %llu %08x\n", kind, (long long)hour, f->name,
            (unsigned long long)f->seal.bytes, f->seal.crc);
}

/* The manifest lines of the files the store holds. */
static void print_store(const struct qs *qs, FILE *manifest)
{
    for (size_t i = 0; i < qs->n_parts; i++) {
        const struct partition *p = &qs->parts[i];
        for (size_t r = 0; r < p->n_runs; r++)
            print_file(manifest, "run", p->hour, qsrun_file(p->runs[r]));
        for (size_t f = 0; f < p->n_mark_files; f++)
            print_file(manifest, "marks", p->hour, &p->mark_files[f]);
    }
}

int qs_checkpoint(struct qs *qs, uint64_t seq, int64_t horizon_ms,
                  FILE *manifest, char *err)
{
    struct written wr = {0};
    qs->files_written = 0;
    merge_adopt(qs);
    int rc = write_runs(qs, seq, &wr, err);
    if (rc == 0)
        rc = write_all_marks(qs, seq, &wr, err);
    if (rc == 0 && adopt(qs, &wr) != 0)
        rc = ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    written_free(&wr);
    if (rc != 0)
        return rc;
    drop_expired(qs, horizon_ms);
    merge_start(qs, seq);
    release_all(qs);
    print_store(qs, manifest);
    return 0;
}

void qs_print_files(const struct qs *qs, FILE *manifest)
{
    print_store(qs, manifest);
    const struct merge *m = &qs->merge;
    if (m->active && (!atomic_load(&m->done) || m->rc == 0))
        fprintf(manifest, "merging %lld %s\n", (long long)m->hour, m->name);
}

static uint64_t pairset_bytes(const struct pairset *s)
{
    return s->cap * sizeof *s->slots;
}

/* What memtable m allocated. */
static uint64_t memtable_bytes(const struct memtable *m)
{
    uint64_t slots = m->slots ? m->slot_mask + 1 : 0;
    return slots * sizeof *m->slots + m->cap * sizeof *m->entries +
           m->cap_ads * sizeof *m->ads + pairset_bytes(&m->marks);
}

/* What memtable m's content takes: its entries, two table slots each
 * (mem_grow()'s load), its ads and its clicked pairs. */
static uint64_t memtable_fill_bytes(const struct memtable *m)
{
    return m->n * (sizeof *m->entries + 2 * sizeof *m->slots) +
           m->n_ads * sizeof *m->ads + pairset_bytes(&m->marks);
}

void qs_get_stats(const struct qs *qs, struct qs_stats *out)
{
    *out = (struct qs_stats){.partitions = qs->n_parts,
                             .merging = qs->merge.active &&
                                        !atomic_load(&qs->merge.done),
                             .merged_bytes = qs->merged_bytes,
                             .merges_failed = qs->merges_failed,
                             .filter_bytes = qs->ids.bytes};
    for (size_t i = 0; i < qs->n_parts; i++) {
        const struct partition *p = &qs->parts[i];
        out->runs += p->n_runs;
        out->clicked_pairs += p->marks.used;
        out->pairs_bytes += pairset_bytes(&p->marks);
        for (size_t r = 0; r < p->n_runs; r++) {
            out->queries_on_disk += qsrun_queries(p->runs[r]);
            out->disk_bytes += qsrun_disk_bytes(p->runs[r]);
            out->index_bytes += qsrun_ram_bytes(p->runs[r]);
        }
    }
    for (unsigned w = 0; w < qs->n_workers; w++) {
        out->mem_queries += qs->mem[w].n;
        out->memtable_bytes += memtable_bytes(&qs->mem[w]);
        out->memtable_fill_bytes += memtable_fill_bytes(&qs->mem[w]);
    }
}
