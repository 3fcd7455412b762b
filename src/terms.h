/* terms: the term dictionary. Every normalised search term is stored once
 * and named everywhere else (QueryStore, QueryMap/ClickMap) by a dense
 * uint32 id.
 *
 * Owns the term bytes, the id -> term table and the file DIR/terms.dat
 * (little-endian), which only grows:
 *   offset  size  field
 *   0       8     magic "CTRDTRM1"
 *   then per term, in id order from 0:
 *   +0      4     length L
 *   +4      4     CRC-32C of {u32 id, u32 L} and the L bytes
 *   +8      L     the term
 * Only the prefix named by the last checkpoint (committed_bytes) counts;
 * the rest (a crash's leftovers) is cut off by the next terms_sync(), so ids
 * handed out after a checkpoint may be handed out differently after a
 * crash — nothing durable names them.
 *
 * Threads: terms_intern() may run on any number of threads at once (lock
 * striping). terms_get() is safe for ids returned before, from any thread.
 * terms_sync() and terms_close() need all interning stopped.
 *
 * Errors: 0 or a negative CTRD_E* code (error.h); a term not in the
 * dictionary is CTRD_ENOTFOUND, not a failure; setup calls fill err. */
#ifndef CTRD_TERMS_H
#define CTRD_TERMS_H

#include <stdint.h>

#include "error.h"

struct terms;

/* Opens DIR/terms.dat and reads its first committed_bytes (0: a new, empty
 * dictionary), checking every record: 0, CTRD_ENOTFOUND, CTRD_ECORRUPT
 * (err names the offset and what), CTRD_ENOMEM. Changes nothing on disk
 * (only terms_sync() does). */
int terms_open(const char *dir, uint64_t committed_bytes, struct terms **out,
               char *err);
void terms_close(struct terms *t);

/* The id of term[0..len), added when new. 0 or CTRD_ENOMEM. */
int terms_intern(struct terms *t, const char *term, uint32_t len, uint32_t *id);

/* The bytes of an id (owned by the dictionary; not NUL-terminated). */
const char *terms_get(const struct terms *t, uint32_t id, uint32_t *len);

/* The id of a term already in the dictionary, or CTRD_ENOTFOUND. Takes
 * the term's stripe lock (the one thing it changes) like terms_intern. */
int terms_find(const struct terms *t, const char *term, uint32_t len,
               uint32_t *id);

uint32_t terms_count(const struct terms *t);

/* Cuts terms.dat to its committed bytes, appends the terms added since the
 * last sync and fsyncs it; *committed_bytes is then the length to name in
 * the checkpoint. After a failure the dictionary is as before (a later
 * sync tries again). */
int terms_sync(struct terms *t, uint64_t *committed_bytes, char *err);

#endif
