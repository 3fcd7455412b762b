/* qsrun: one QueryStore run — an immutable file of queries sorted by
 * query_id, its on-disk format, writing and merging runs, mapping one and
 * checking its layout, and finding a query in it through the Bloom filter
 * and a sparse key index kept in RAM. The QueryStore (querystore.c) is its
 * only user: it decides which runs exist (partitions, compaction, expiry);
 * a run knows nothing of the others.
 *
 * RUN FILE (q<hour>-<seq>-<n>.run): the content of a sealed file (fsutil.h:
 * a checksum trailer follows), little-endian, format 2. Sections of u64s
 * come first, so each section starts at a multiple of its element's size
 * and there are no padding bytes:
 *   offset  size          field
 *   0       8             magic "CTRDRUN2"
 *   8       8             n: queries in the run
 *   16      8             n_slots: ad slots, at most QSRUN_SLOTS_MAX
 *   24      8             bloom_bytes (a multiple of 64)
 *   32      8             hour: partition, floor(time_ms / 3600000)
 *   40      8             n_dict: distinct ad ids in the run
 *   48      16            zero
 *   64      bloom_bytes   blocked Bloom filter of hash_u64(query_id)
 *   ...     8 n           query_ids, strictly increasing
 *   ...     8 n_dict      the dictionary: the run's ad ids, strictly
 *                         increasing
 *   ...     12 (n + 1)    entries {u32 ms within the hour, u32 term id,
 *                         u32 first ad slot}; entry n is a sentinel whose
 *                         slot is n_slots, so query i has the ads of the
 *                         slots [entry[i].slot, entry[i+1].slot)
 *   ...     4 n_slots     ad slots: each an index into the dictionary, in
 *                         the order the query listed its ads
 * A shown ad costs 4 bytes and a query 12 + 8, plus 8 per distinct ad of
 * the run (ads repeat across queries: few next to the slots). A run is
 * written whole and fsync'd, and never changed after; opening one checks
 * every checksum, that no lookup can leave the mapped file (entries in
 * order, at most REC_ADS_MAX ads a query, every slot < n_dict), and that
 * the dictionary strictly increases (merges rely on it): one sequential
 * pass over sections whose every byte the checksums have just read. The
 * header's zero bytes are not checked: no lookup reads them, and the
 * checksums catch their damage. A file of the format before ("CTRDRUN1",
 * 8-byte ads, no dictionary) is refused as written by an older ctrd: there
 * is no reader for it. The run
 * qsrun_write() returns is mapped without being read back: its layout and
 * checksums are those of the builder it was written from.
 *
 * Errors: 0 or a negative CTRD_E* code (calls that take err fill it);
 * CTRD_ENOTFOUND when a query is not in the run, or a file is missing.
 *
 * PAGES. A run's mapping is file-backed: the pages a process has read
 * stay in its RSS until released (qsrun_release(), or a merge's inputs
 * behind its reads); they stay in the page cache all the same. The
 * lookups say how much they may have mapped, in QSRUN_FAULT_BYTES
 * windows, so that the caller can release the pages before they pass a
 * budget.
 *
 * Threads: a run is read-only once open: any number of threads may look
 * up queries in it, and release its pages meanwhile; opening, writing and
 * freeing are the caller's alone. */
#ifndef CTRD_QSRUN_H
#define CTRD_QSRUN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fsutil.h"
#include "querystore.h"

#define QSRUN_MERGE_MAX 8
/* The most ad slots a run holds: its entries index them with u32s. */
#define QSRUN_SLOTS_MAX UINT32_MAX
/* The most of a run's mapping one read may map into the process: a page
 * fault maps the cached pages around it (fault-around, 64 KiB) or the
 * whole page-cache folio it is in, when that fits a page table; a folio
 * is aligned in the file and at most FS_FOLIO_MAX (fs_map_file() keeps
 * those of that size from fitting, not smaller ones). The unit of what
 * reads may have mapped, in windows aligned in the file. */
#define QSRUN_FAULT_BYTES ((uint64_t)FS_FOLIO_MAX)

/* A file of the store as its MANIFEST line names it. */
struct qs_file {
    char name[64];
    struct fs_seal seal;
};

/* A RUN FILE entry. */
struct qsrun_entry {
    uint32_t ms_in_hour;
    uint32_t term_id;
    uint32_t slot;
};
_Static_assert(sizeof(struct qsrun_entry) == 12, "RUN FILE: 12-byte entries");

/* A run being built in memory before it is written: queries are added in
 * increasing query_id order, up to the capacity given at init, with their
 * ad ids; qsrun_write() makes the dictionary and the slots. */
struct qsrun_builder {
    uint64_t n, n_ads;
    uint64_t *keys;
    struct qsrun_entry *entries; /* n + 1; slot: index in ads */
    uint64_t *ads;
};

/* Room for n queries with n_ads ads in all: 0 or CTRD_ENOMEM. */
int qsrun_builder_init(struct qsrun_builder *b, uint64_t n, uint64_t n_ads);
void qsrun_builder_free(struct qsrun_builder *b);
/* Empties the builder, keeping its room. */
void qsrun_builder_reset(struct qsrun_builder *b);
void qsrun_builder_add(struct qsrun_builder *b, uint64_t query_id,
                       uint32_t ms_in_hour, uint32_t term_id,
                       const uint64_t *ads, uint32_t n_ads);

struct qsrun;

/* Maps dir/file->name, a run of the hour's partition, and checks it: 0,
 * CTRD_ENOTFOUND, CTRD_ECORRUPT (err names file, offset and what; a file
 * of format 1 is refused so), CTRD_ENOMEM. The run owns the mapping; free
 * it with qsrun_free(). */
int qsrun_open(const char *dir, const struct qs_file *file, int64_t hour,
               struct qsrun **out, char *err);
void qsrun_free(struct qsrun *r);

/* Writes the builder as dir/name, a new run of the hour, and maps it (not
 * read back: see above). CTRD_EINVAL when the builder holds more than
 * QSRUN_SLOTS_MAX ads. */
int qsrun_write(const char *dir, const char *name, int64_t hour,
                struct qsrun_builder *b, struct qsrun **out, char *err);

/* Whether runs[0..n) merged fit in one run (QSRUN_SLOTS_MAX ad slots):
 * a partition's runs that do not stay unmerged. */
int qsrun_merge_fits(struct qsrun *const *runs, size_t n);

/* Merges runs[0..n) of one partition (disjoint keys, n <=
 * QSRUN_MERGE_MAX) into dir/name, a new run, and opens it. The output is
 * streamed from the inputs (three passes over them in key order), so a
 * merge holds its Bloom filter, sparse index and dictionary in RAM, not
 * its run; with release set it also releases the inputs' pages behind
 * its reads, so that it holds a few MiB of each mapped, not the inputs.
 * CTRD_EINVAL when they do not fit (qsrun_merge_fits()), CTRD_ECORRUPT
 * when two of them hold one id, CTRD_EAGAIN once *stop is set; on any
 * failure no file is left. */
int qsrun_merge(const char *dir, const char *name, int64_t hour,
                struct qsrun *const *runs, size_t n, int release,
                const atomic_int *stop, struct qsrun **out, char *err);

/* 0 and the query, its ads decoded into ads_buf (room for REC_ADS_MAX:
 * out->ads points there), or CTRD_ENOTFOUND. The lookup reads one
 * QSRUN_FAULT_BYTES window of the Bloom filter, and when that lets the
 * id through it adds to *mapped_bytes the most it may have mapped of the
 * rest of the run (the windows it read). */
int qsrun_find(const struct qsrun *r, uint64_t query_id, uint64_t *ads_buf,
               struct qs_query *out, uint64_t *mapped_bytes);

/* Releases every page of the run's mapping from the process
 * (fs_map_release(): safe while other threads look up queries in it). */
void qsrun_release(const struct qsrun *r);

const struct qs_file *qsrun_file(const struct qsrun *r);
uint64_t qsrun_queries(const struct qsrun *r);
/* Its qsrun_queries() query ids, ascending (in the mapped file). */
const uint64_t *qsrun_keys(const struct qsrun *r);
uint64_t qsrun_disk_bytes(const struct qsrun *r);
/* What the run holds in RAM: its sparse index (its Bloom filter and
 * dictionary are read from the mapping). */
uint64_t qsrun_ram_bytes(const struct qsrun *r);
/* The most that lookups can map of its Bloom filter: the
 * QSRUN_FAULT_BYTES windows the filter spans. */
uint64_t qsrun_bloom_mapped_max(const struct qsrun *r);

#endif
