/* qsrun: one QueryStore run — an immutable file of queries sorted by
 * query_id, its on-disk format, writing and merging runs, mapping one and
 * checking its layout, and finding a query in it through the Bloom filter
 * and a sparse key index kept in RAM. The QueryStore (querystore.c) is its
 * only user: it decides which runs exist (partitions, compaction, expiry);
 * a run knows nothing of the others.
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
 * A run is written whole and fsync'd, and never changed after; opening one
 * checks every checksum and that no lookup can leave the mapped file. The
 * run qsrun_write() returns is mapped without being read back: its layout
 * and checksums are those of the builder it was written from.
 *
 * Errors: 0 or a negative CTRD_E* code (calls that take err fill it);
 * CTRD_ENOTFOUND when a query is not in the run, or a file is missing.
 *
 * Threads: a run is read-only once open: any number of threads may look
 * up queries in it; opening, writing and freeing are the caller's alone. */
#ifndef CTRD_QSRUN_H
#define CTRD_QSRUN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fsutil.h"
#include "querystore.h"

#define QSRUN_MERGE_MAX 8

/* A file of the store as its MANIFEST line names it. */
struct qs_file {
    char name[64];
    struct fs_seal seal;
};

/* A RUN FILE entry. */
struct qsrun_entry {
    uint32_t ms_in_hour;
    uint32_t term_id;
    uint64_t ad;
};
_Static_assert(sizeof(struct qsrun_entry) == 16, "RUN FILE: 16-byte entries");

/* A run being built in memory before it is written: queries are added in
 * increasing query_id order, up to the capacity given at init. */
struct qsrun_builder {
    uint64_t n, n_ads;
    uint64_t *keys;
    struct qsrun_entry *entries; /* n + 1 */
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
 * CTRD_ENOTFOUND, CTRD_ECORRUPT (err names file, offset and what),
 * CTRD_ENOMEM. The run owns the mapping; free it with qsrun_free(). */
int qsrun_open(const char *dir, const struct qs_file *file, int64_t hour,
               struct qsrun **out, char *err);
void qsrun_free(struct qsrun *r);

/* Writes the builder as dir/name, a new run of the hour, and maps it (not
 * read back: see above). */
int qsrun_write(const char *dir, const char *name, int64_t hour,
                struct qsrun_builder *b, struct qsrun **out, char *err);

/* Merges runs[0..n) of one partition (disjoint keys, n <=
 * QSRUN_MERGE_MAX) into dir/name, a new run, and opens it; CTRD_EAGAIN,
 * no file written, when *stop is set before the merge is written. */
int qsrun_merge(const char *dir, const char *name, int64_t hour,
                struct qsrun *const *runs, size_t n, const atomic_int *stop,
                struct qsrun **out, char *err);

/* 0 and the query (its ads point into the run: valid until qsrun_free()),
 * or CTRD_ENOTFOUND. */
int qsrun_find(const struct qsrun *r, uint64_t query_id, struct qs_query *out);

const struct qs_file *qsrun_file(const struct qsrun *r);
uint64_t qsrun_queries(const struct qsrun *r);
uint64_t qsrun_disk_bytes(const struct qsrun *r);

#endif
