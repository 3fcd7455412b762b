/* gen: `ctrd gen` — deterministic, realistic synthetic query and click logs
 * (SPEC §1-2, §4) for tests, benchmarks and demos.
 *
 * Owns nothing after it returns: gen_run() allocates its tables and buffers,
 * writes the files and frees everything. One thread.
 *
 * Files written into cfg->out_dir (created, with its parents, if missing;
 * existing files of these names are replaced):
 *   queries.ndjson, clicks.ndjson  with GEN_NDJSON
 *   queries.tsv,    clicks.tsv     with GEN_TSV
 *   ads.csv                        always: the ads catalog (below)
 *   manifest.json                  with cfg->tricky
 *
 * Properties:
 *   - Deterministic: the same config gives byte-identical files (own PRNG,
 *     no clock, draws in a fixed order: gcc and clang builds agree). Each
 *     format is spelled by a generator of its own, so the NDJSON files are
 *     the same with --format ndjson and --format both, and the tricky cases
 *     draw from generators of their own, so the normal records are the same
 *     with and without --tricky.
 *   - Both formats carry exactly the same valid records (ids, times,
 *     normalised terms, ad lists, clicks); only their spelling and the
 *     injected invalid lines differ.
 *   - Queries: queries_per_sec * duration records from start_ms, their
 *     volume following a daily curve (peak 15:00 UTC, 3.5 times the low
 *     at 03:00) and a weekly one (Saturdays and Sundays 0.7 of weekdays),
 *     one minute at a time, queries_per_sec on average; 3 % of them up to
 *     30 s late (out of order); random unique 64-bit query ids; terms
 *     Zipf(1) over n_terms terms, written with case and white-space
 *     variations.
 *   - Ads: n_ads ads by popularity rank k (0 is the busiest); the ad of
 *     rank k has id gen_ad_id(k) and belongs to advertiser
 *     gen_advertiser_id(k) (GEN_ADS_PER_ADVERTISER ads each). Each
 *     advertiser bids on its own keyword set (20-200 terms drawn from the
 *     Zipf term distribution: advertisers share popular terms, differ on
 *     the rest) with a bid per term; each of its ads runs on about half of
 *     them. A query shows 1-4 ads of distinct advertisers that bid on its
 *     term, drawn by popularity times bid, each the advertiser's ad by
 *     popularity among those that run on the term (all its ads if none
 *     does); a term nobody bids on shows ads by popularity (Zipf(1)).
 *   - Clicks: a shown ad is clicked with probability ~ctr times the ad's
 *     factor (lognormal, sigma 0.6) times a factor of the (ad, term)
 *     pair (lognormal, sigma 0.5, mean 1), normalised so that the overall
 *     CTR is ~ctr; delay lognormal (median 15 s, sigma 2, < 24 h), 3 % of
 *     clicks up to 59.999 s before their query. Valid clicks are written
 *     in click-time order (re-delivered copies come later, as a log
 *     shipper would send them).
 *
 * ads.csv: the catalog `ctrd serve --ads` reads (catalog.h), one line per
 * ad in rank order: "ad_id,advertiser_id,name", the name being the
 * advertiser's highest-bid keyword and the ad's number in its account
 * ("running shoes #2").
 *
 * manifest.json (--tricky only): what the files must count as, exactly by
 * SPEC §2, per format. With one format:
 *   {"seed":S, "format":"ndjson"|"tsv",
 *    "queries":{"lines":N, "empty_lines":E, "accepted":A, "duplicates":D,
 *               "impressions":I, "rejects":{"<reason>":n, ...}},
 *    "clicks":{"lines":N, "empty_lines":E, "joined":J, "duplicates":D,
 *              "unknown_query":U, "rejects":{"<reason>":n, ...}}}
 * With GEN_NDJSON | GEN_TSV:
 *   {"seed":S, "ndjson":{"queries":{...}, "clicks":{...}},
 *    "tsv":{"queries":{...}, "clicks":{...}}}
 * lines: lines that are not empty once one trailing CR is removed (empty
 * lines are skipped, not rejects). lines = accepted + duplicates + sum of
 * rejects for queries; lines = joined + duplicates + unknown_query + sum of
 * rejects for clicks. impressions: distinct ads over accepted queries.
 * unknown_query: valid clicks whose query_id no valid query has (they stay
 * pending / unjoined). Reject names are those of REC_REASON_MAP; only
 * reasons with a count > 0 appear; click rejects include the join reasons
 * click_ad_not_shown and click_outside_window (24 h join window). */
#ifndef CTRD_GEN_H
#define CTRD_GEN_H

#include <stdint.h>

#include "error.h"

enum gen_format_bits { GEN_NDJSON = 1, GEN_TSV = 2 };

struct gen_config {
    const char *out_dir;
    uint64_t queries_per_sec; /* >= 1 */
    int64_t duration_ms;      /* > 0 */
    int64_t start_ms;         /* time of the first query */
    uint64_t seed;
    uint32_t n_ads;   /* 1..GEN_ADS_LIMIT */
    uint32_t n_terms; /* 1..GEN_TERMS_LIMIT */
    double ctr;       /* 0..1 */
    unsigned formats; /* GEN_NDJSON and/or GEN_TSV */
    int tricky;       /* inject every kind of defect, write manifest.json */
    /* 0..GEN_PART_LIMIT: runs whose configs differ only in part (and
     * start_ms) are parts of one longer stream: the same vocabulary, accounts
     * and per-ad CTRs, records drawn afresh, no query id in common (ctrd demo
     * generates its live traffic part by part). Part 0 is what `ctrd gen`
     * writes. */
    uint64_t part;
};

#define GEN_ADS_LIMIT 1000000
#define GEN_TERMS_LIMIT 1000000
#define GEN_PART_LIMIT ((UINT64_C(1) << 22) - 1)

/* Ads per advertiser: advertiser a + 1 owns ranks [a, a + 1) * this. */
#define GEN_ADS_PER_ADVERTISER 8

/* The id of the ad of popularity rank k (0 is the busiest): 1000 + k,
 * except every 100th rank (k % 100 == 99), which is 2^64 - 1 - k / 100. */
uint64_t gen_ad_id(uint32_t k);
/* The advertiser who owns the ad of rank k: 1 + k / GEN_ADS_PER_ADVERTISER
 * (advertiser 1 owns the busiest ads). */
uint64_t gen_advertiser_id(uint32_t k);

/* What one run wrote. Lines count records (not empty lines) of one format
 * (NDJSON when both are written); bytes count the log files. */
struct gen_summary {
    uint64_t query_lines, click_lines, bytes;
};

/* The defaults of `ctrd gen` (out_dir NULL). */
void gen_config_default(struct gen_config *cfg);

/* Writes the files. 0, or a negative ctrd error code with err filled
 * (CTRD_EINVAL for a config outside the documented ranges). */
int gen_run(const struct gen_config *cfg, struct gen_summary *sum, char *err);

/* `ctrd gen ARGS...` (argv[0] is "gen"): 0 ok, 1 runtime failure, 2 usage
 * error (one line on stderr). -h/--help and --version print to stdout; a
 * run prints one summary line to stderr. May be called more than once. */
int gen_command(int argc, char **argv);

#endif
