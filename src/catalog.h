/* catalog: the ads catalog (SPEC §1.4) — which advertiser owns which ad.
 *
 * CSV with the header "ad_id,advertiser_id[,name]" (RFC 4180 quoting, one
 * record per line, CRLF and a UTF-8 byte order mark accepted, empty lines
 * skipped; ids decimal u64; names UTF-8 without control characters; the
 * full format is at the top of catalog.c). Ads absent from the catalog are
 * still counted; only an admin sees them. Owns the table and the names;
 * read-only after load: any thread. The lookups accept c == NULL (no
 * catalog: nothing is found).
 *
 * Errors: 0 or a negative CTRD_E* code (error.h); an ad that is not in
 * the catalog is CTRD_ENOTFOUND, never a failure. Malformed text is
 * CTRD_EINVAL, with the file, line and reason in err. */
#ifndef CTRD_CATALOG_H
#define CTRD_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct catalog;

/* Errors name the file and line. An ad listed twice is an error.
 * catalog_free(NULL) is a no-op. */
int catalog_load(const char *path, struct catalog **out, char *err);
void catalog_free(struct catalog *c);

/* 0 and the owner of ad_id, or CTRD_ENOTFOUND. */
int catalog_owner(const struct catalog *c, uint64_t ad_id,
                  uint64_t *advertiser_id);
/* The ad's name ("" when it has none or is unknown); owned by the catalog. */
const char *catalog_name(const struct catalog *c, uint64_t ad_id);
/* The *n ads of an advertiser, ascending (owned by the catalog; never
 * NULL, *n is 0 for an advertiser without ads). */
const uint64_t *catalog_ads_of(const struct catalog *c, uint64_t advertiser_id,
                               size_t *n);
/* Iterates the advertisers, ascending: *cursor is 0 before the first
 * call; each call gives the next advertiser and its *n ads (as
 * catalog_ads_of) and returns 0, or CTRD_ENOTFOUND after the last (and
 * at once when c is NULL). */
int catalog_next_advertiser(const struct catalog *c, size_t *cursor,
                            uint64_t *advertiser_id, const uint64_t **ads,
                            size_t *n);

#endif
