/* adview: what an advertiser looks at — one ad's per-term table over a
 * range of minutes, read from QueryMap/ClickMap, sorted and written as
 * JSON (the shape of GET /v1/ads/{id}/terms), CSV or a text table.
 *
 * Owns the table it builds (adview_free). Reads the countmap and the term
 * dictionary; the caller keeps both unchanged meanwhile.
 *
 * Errors: 0 or a negative CTRD_E* code (error.h) with err (CTRD_ERR_LEN
 * bytes, may be NULL) saying what: CTRD_ENOMEM, or the countmap's failure
 * to read a spilled group back (CTRD_EIO, CTRD_ECORRUPT: countmap.h,
 * SPILL); an ad without counts is an empty table, not an error. On a
 * failure nothing is written and nothing is left to free. The writers
 * cannot fail; a write error stays in the FILE. */
#ifndef CTRD_ADVIEW_H
#define CTRD_ADVIEW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "countmap.h"
#include "terms.h"

enum adview_sort { ADVIEW_IMPRESSIONS, ADVIEW_CLICKS, ADVIEW_CTR, ADVIEW_TERM };

struct adview_row {
    uint32_t term_id;
    uint64_t impressions, clicks;
};

struct adview {
    uint64_t ad_id;
    int64_t from_ms, to_ms; /* [from, to); INT64_MIN / INT64_MAX: all time */
    uint64_t impressions, clicks;
    struct adview_row *rows; /* one per term; rows[0..n_sorted) in order */
    size_t n_rows, n_sorted;
};

/* Builds the table of ad_id over the query minutes in [from_ms, to_ms):
 * one row per term, of which the first `keep` (offset + limit of the page
 * asked for; SIZE_MAX for all) are sorted by sort (descending unless
 * ascending is set; ties by term bytes ascending). O(rows log keep).
 * 0 or an error (see Errors). */
int adview_build(const struct countmap *cm, const struct terms *terms,
                 uint64_t ad_id, int64_t from_ms, int64_t to_ms,
                 enum adview_sort sort, int ascending, size_t keep,
                 struct adview *out, char *err);
void adview_free(struct adview *v);

/* Writers: rows [offset, offset + limit) of the table (within the sorted
 * ones). */
void adview_write_json(FILE *f, const struct adview *v,
                       const struct terms *terms, int64_t as_of_ms,
                       size_t offset, size_t limit);
void adview_write_csv_rows(FILE *f, const struct adview *v,
                           const struct terms *terms, size_t limit);
void adview_write_table(FILE *f, const struct adview *v,
                        const struct terms *terms, size_t limit);

/* Impressions and clicks of ad_id over [from_ms, to_ms) (all terms): 0,
 * or an error (see Errors; the totals are then short of counts: do not
 * show them). */
int adview_totals(const struct countmap *cm, uint64_t ad_id, int64_t from_ms,
                  int64_t to_ms, uint64_t *impressions, uint64_t *clicks,
                  char *err);

/* Writes the series of ad_id over [from_ms, to_ms) in steps of step_ms (a
 * multiple of a minute), of one term (term_id) or all (term_id NULL), as
 * the JSON of GET /v1/ads/{id}/series; points only where there are counts,
 * ascending t. 0 or an error (see Errors). */
int adview_write_series(FILE *f, const struct countmap *cm, uint64_t ad_id,
                        int64_t from_ms, int64_t to_ms, int64_t step_ms,
                        const char *step_name, const uint32_t *term_id,
                        int64_t as_of_ms, char *err);

#endif
