/* gen_account: the advertisers' accounts of `ctrd gen` -- who owns which
 * ad, what each advertiser bids on, which ads a query's term shows, how
 * likely each shown ad is clicked, and the ads catalog; see gen.h (the
 * model) and gen_internal.h (struct accounts).
 *
 * Owns struct accounts (freed by gen_accounts_free) and fills g->ad_p.
 * Invariants: the accounts depend on the seed and the config's sizes, not
 * on gen_config.part, so the parts of a stream share them; advertiser a's
 * keywords are distinct and come from its own rng stream (GEN_ADV_STREAM + a),
 * so an account does not depend on how many others there are; an (ad, term)
 * pair's properties (whether the ad runs on the term, its CTR factor) are a
 * hash of the pair, drawn from no rng; the postings of a term are in advertiser
 * order. Threads: the caller's.
 *
 * DESIGN. Built once, before the first query: each advertiser draws 20-200
 * distinct keywords from the term Zipf and a lognormal bid for each; a
 * counting sort by term turns them into postings (term -> advertisers, with
 * cumulative weights popularity x bid), so a query's ads are a binary
 * search in its term's postings and a scan of one advertiser's few ads.
 * Click probabilities are normalised by the impressions the postings give
 * in expectation, so that the overall CTR stays ~ctr. */
#include "gen_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Streams every part of a stream shares (gen.c: a part's own are
 * part * 1000 + 1..99, below 2^32): the ads' CTR factors, and one per
 * advertiser. */
#define GEN_AD_CTR_STREAM 101
#define GEN_ADV_STREAM (UINT64_C(1) << 40)
#define KEYWORDS_MIN 20.0  /* keywords per advertiser: log-uniform ... */
#define KEYWORDS_SPAN 10.0 /* ... in [MIN, MIN * SPAN) */
#define BID_SIGMA 1.5      /* lognormal bids */
#define AD_CTR_SIGMA 0.6   /* lognormal factor of an ad's CTR */
#define TERM_CTR_SIGMA 0.5 /* lognormal factor of an (ad, term) pair's CTR */
#define RUNS_BIT (UINT64_C(1) << 63) /* of the pair hash: the ad runs */

static uint32_t adv_first_ad(uint32_t a)
{
    return a * GEN_ADS_PER_ADVERTISER;
}

/* One past advertiser a's last ad rank. */
static uint32_t adv_end_ad(const struct gen *g, uint32_t a)
{
    uint32_t end = adv_first_ad(a) + GEN_ADS_PER_ADVERTISER;
    return end < g->cfg->n_ads ? end : g->cfg->n_ads;
}

uint64_t gen_advertiser_id(uint32_t k)
{
    return 1 + k / GEN_ADS_PER_ADVERTISER;
}

static uint64_t pair_hash(const struct gen *g, uint32_t k, uint32_t term)
{
    return hash_u64(g->acc.pair_key ^ hash_u64((uint64_t)k << 32 | term));
}

/* The CTR factor of the pair hashed h: lognormal with mean 1, from a
 * normal approximated by four uniforms (15 bits each) of h. */
static double pair_ctr_factor(uint64_t h)
{
    double s = 0;
    for (int i = 0; i < 4; i++)
        s += (double)(h >> (15 * i) & 0x7FFF) / 0x8000;
    return exp(TERM_CTR_SIGMA * (s - 2.0) * 1.7320508075688772 -
               TERM_CTR_SIGMA * TERM_CTR_SIGMA / 2);
}

/* The Zipf probability of ad rank k. */
static double ad_pop(const struct gen *g, uint32_t k)
{
    return g->ad_cdf[k] - (k ? g->ad_cdf[k - 1] : 0);
}

_Static_assert(GEN_ADS_PER_ADVERTISER <= 8, "post_ads holds one bit per ad");

/* Which of advertiser a's ads run on term: bit i for its i-th ad; all of
 * them when the pair hashes give none. */
static uint8_t runs_mask(const struct gen *g, uint32_t a, uint32_t term)
{
    uint32_t first = adv_first_ad(a), n = adv_end_ad(g, a) - first;
    uint8_t mask = 0;

    for (uint32_t i = 0; i < n; i++)
        if (pair_hash(g, first + i, term) & RUNS_BIT)
            mask |= (uint8_t)(1u << i);
    return mask ? mask : (uint8_t)((1u << n) - 1);
}

/* The weights of advertiser a's ads in mask (popularity, 0 outside mask)
 * into w; returns their number, *sum gets their sum. */
static uint32_t ad_weights(const struct gen *g, uint32_t a, uint8_t mask,
                           double *w, double *sum)
{
    uint32_t first = adv_first_ad(a), n = adv_end_ad(g, a) - first;

    *sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        w[i] = mask >> i & 1 ? ad_pop(g, first + i) : 0;
        *sum += w[i];
    }
    return n;
}

/* The rank of the ad of posting j, u uniform in [0, 1). */
static uint32_t pick_ad(const struct gen *g, uint32_t j, double u)
{
    double w[GEN_ADS_PER_ADVERTISER], sum;
    uint32_t a = g->acc.post_adv[j], pick = 0,
             n = ad_weights(g, a, g->acc.post_ads[j], w, &sum);

    u *= sum;
    for (uint32_t i = 0; i < n; i++) {
        if (w[i] == 0)
            continue;
        pick = i; /* the last one in mask if rounding left u too high */
        if (u < w[i])
            break;
        u -= w[i];
    }
    return adv_first_ad(a) + pick;
}

/* ---- building the accounts --------------------------------------------- */

/* The keywords and bids all advertisers draw, advertiser after advertiser. */
struct bids {
    uint32_t *term;
    double *bid;
    uint32_t *adv_end; /* advertiser a's bids end here */
    uint32_t n;
};

static uint32_t keywords_wanted(struct rng *r, uint32_t n_terms)
{
    double k = KEYWORDS_MIN * pow(KEYWORDS_SPAN, rng_unit(r));
    return k < n_terms ? (uint32_t)k : n_terms;
}

/* Advertiser a's keywords: up to its wanted number of distinct terms by
 * Zipf draws (4 draws per keyword at most), each with a bid. seen[t] is
 * a + 1 once a bids on t. */
static void draw_keywords(struct gen *g, struct bids *b, uint32_t a,
                          uint32_t *seen)
{
    struct rng r;
    uint32_t want, got = 0;

    rng_seed(&r, g->cfg->seed, GEN_ADV_STREAM + a);
    want = keywords_wanted(&r, g->cfg->n_terms);
    for (uint32_t tries = 4 * want; got < want && tries > 0; tries--) {
        uint32_t t = gen_zipf_draw(g->term_cdf, g->cfg->n_terms, &r);
        if (seen[t] == a + 1)
            continue;
        seen[t] = a + 1;
        b->term[b->n] = t;
        b->bid[b->n++] = exp(BID_SIGMA * rng_gauss(&r));
        got++;
    }
    b->adv_end[a] = b->n;
}

static void bids_free(struct bids *b)
{
    free(b->term);
    free(b->bid);
    free(b->adv_end);
}

/* Every advertiser's keywords and bids: 0 or CTRD_ENOMEM. */
static int bids_draw(struct gen *g, struct bids *b)
{
    uint32_t n_adv = g->acc.n_adv, *seen;
    size_t cap = 0;
    struct rng r;

    for (uint32_t a = 0; a < n_adv; a++) {
        rng_seed(&r, g->cfg->seed, GEN_ADV_STREAM + a);
        cap += keywords_wanted(&r, g->cfg->n_terms);
    }
    b->term = malloc(cap * sizeof *b->term);
    b->bid = malloc(cap * sizeof *b->bid);
    b->adv_end = malloc(n_adv * sizeof *b->adv_end);
    seen = calloc(g->cfg->n_terms, sizeof *seen);
    if (!b->term || !b->bid || !b->adv_end || !seen) {
        free(seen);
        return CTRD_ENOMEM;
    }
    for (uint32_t a = 0; a < n_adv; a++)
        draw_keywords(g, b, a, seen);
    free(seen);
    return 0;
}

/* Advertiser a's popularity: the Zipf weights of its ads. */
static double adv_popularity(const struct gen *g, uint32_t a)
{
    double pop = 0;
    for (uint32_t k = adv_first_ad(a); k < adv_end_ad(g, a); k++)
        pop += ad_pop(g, k);
    return pop;
}

/* The postings of every term from the bids (a counting sort by term),
 * and each advertiser's core term: 0 or CTRD_ENOMEM. */
static int postings_build(struct gen *g, const struct bids *b)
{
    struct accounts *ac = &g->acc;
    uint32_t n_terms = g->cfg->n_terms, *off, i = 0;

    ac->term_off = off = calloc((size_t)n_terms + 1, sizeof *off);
    ac->post_adv = malloc(b->n * sizeof *ac->post_adv);
    ac->post_cum = malloc(b->n * sizeof *ac->post_cum);
    ac->post_ads = malloc(b->n * sizeof *ac->post_ads);
    ac->core_term = malloc(ac->n_adv * sizeof *ac->core_term);
    if (!off || !ac->post_adv || !ac->post_cum || !ac->post_ads ||
        !ac->core_term)
        return CTRD_ENOMEM;
    for (uint32_t j = 0; j < b->n; j++)
        off[b->term[j] + 1]++;
    for (uint32_t t = 0; t < n_terms; t++)
        off[t + 1] += off[t];
    /* off[t] is where term t's next posting goes, then where it ends */
    for (uint32_t a = 0; a < ac->n_adv; a++) {
        double pop = adv_popularity(g, a), best = 0;
        for (; i < b->adv_end[a]; i++) {
            uint32_t at = off[b->term[i]]++;
            ac->post_adv[at] = a;
            ac->post_cum[at] = pop * b->bid[i];
            ac->post_ads[at] = runs_mask(g, a, b->term[i]);
            if (b->bid[i] > best) {
                best = b->bid[i];
                ac->core_term[a] = b->term[i];
            }
        }
    }
    for (uint32_t t = n_terms; t > 0; t--)
        off[t] = off[t - 1];
    off[0] = 0;
    for (uint32_t t = 0; t < n_terms; t++)
        for (uint32_t j = off[t] + 1; j < off[t + 1]; j++)
            ac->post_cum[j] += ac->post_cum[j - 1];
    return 0;
}

/* The mean of ad_p[k] times the pair's CTR factor over the impressions
 * the queries give in expectation (each term's first ad; a term without
 * postings shows ads by Zipf, with a pair factor of 1 on average). */
static double expected_ctr_factor(const struct gen *g)
{
    const struct accounts *ac = &g->acc;
    double num = 0, den = 0, unbid = 0, prev = 0;
    double w[GEN_ADS_PER_ADVERTISER], sum;

    for (uint32_t t = 0; t < g->cfg->n_terms; t++) {
        double p_term = g->term_cdf[t] - prev, before = 0;
        uint32_t lo = ac->term_off[t], hi = ac->term_off[t + 1];
        prev = g->term_cdf[t];
        if (lo == hi)
            unbid += p_term;
        for (uint32_t j = lo; j < hi; j++) {
            double p_adv =
                p_term * (ac->post_cum[j] - before) / ac->post_cum[hi - 1];
            uint32_t a = ac->post_adv[j],
                     n = ad_weights(g, a, ac->post_ads[j], w, &sum);
            before = ac->post_cum[j];
            for (uint32_t i = 0; i < n; i++) {
                uint32_t k = adv_first_ad(a) + i;
                double imp = p_adv * w[i] / sum;
                if (w[i] == 0)
                    continue;
                num += imp * g->ad_p[k] * pair_ctr_factor(pair_hash(g, k, t));
                den += imp;
            }
        }
    }
    prev = 0;
    for (uint32_t k = 0; k < g->cfg->n_ads; k++) {
        double imp = unbid * (g->ad_cdf[k] - prev);
        prev = g->ad_cdf[k];
        num += imp * g->ad_p[k];
        den += imp;
    }
    return num / den;
}

/* g->ad_p: ctr times a lognormal factor per ad, normalised. */
static int click_probabilities(struct gen *g)
{
    struct rng r;
    double norm;

    g->ad_p = malloc(g->cfg->n_ads * sizeof *g->ad_p);
    if (!g->ad_p)
        return CTRD_ENOMEM;
    rng_seed(&r, g->cfg->seed, GEN_AD_CTR_STREAM);
    for (uint32_t k = 0; k < g->cfg->n_ads; k++)
        g->ad_p[k] = exp(AD_CTR_SIGMA * rng_gauss(&r));
    norm = expected_ctr_factor(g);
    for (uint32_t k = 0; k < g->cfg->n_ads; k++)
        g->ad_p[k] *= g->cfg->ctr / norm;
    return 0;
}

int gen_accounts_build(struct gen *g)
{
    struct bids b = {NULL, NULL, NULL, 0};
    int rc;

    g->acc.n_adv =
        (g->cfg->n_ads + GEN_ADS_PER_ADVERTISER - 1) / GEN_ADS_PER_ADVERTISER;
    g->acc.pair_key = hash_u64(g->cfg->seed ^ UINT64_C(0xA5A5A5A5A5A5A5A5));
    rc = bids_draw(g, &b);
    if (rc == 0)
        rc = postings_build(g, &b);
    bids_free(&b);
    return rc ? rc : click_probabilities(g);
}

void gen_accounts_free(struct accounts *acc)
{
    free(acc->term_off);
    free(acc->post_adv);
    free(acc->post_cum);
    free(acc->post_ads);
    free(acc->core_term);
}

/* ---- queries and clicks -------------------------------------------------- */

/* The weight of posting j (lo: the first of its term). */
static double posting_weight(const struct accounts *ac, uint32_t lo, uint32_t j)
{
    return ac->post_cum[j] - (j > lo ? ac->post_cum[j - 1] : 0);
}

/* Draws postings of the term without replacement: each draw is over the
 * weight left, mapped past the postings taken (ascending) to a point of
 * the whole cumulative range, so no draw is wasted on a repeat. */
void gen_account_ads(struct gen *g, struct rng *r, struct grec *x, uint32_t n,
                     uint32_t *ranks)
{
    const struct accounts *ac = &g->acc;
    uint32_t term = x->term, lo = ac->term_off[term],
             hi = ac->term_off[term + 1], taken[GEN_ADS_CAP], n_taken = 0;
    double left = lo < hi ? ac->post_cum[hi - 1] : 0;

    if (lo == hi) {
        gen_draw_ads(g, r, x, n, ranks);
        return;
    }
    for (; n_taken < n && n_taken < hi - lo && x->n_ads < GEN_ADS_CAP;
         n_taken++) {
        double u = rng_unit(r) * left;
        uint32_t j, at = n_taken, k;
        for (uint32_t i = 0; i < n_taken; i++)
            if (u >= ac->post_cum[taken[i]] - posting_weight(ac, lo, taken[i]))
                u += posting_weight(ac, lo, taken[i]);
        j = lo + gen_cdf_find(ac->post_cum + lo, hi - lo, u);
        for (; at > 0 && taken[at - 1] >= j; at--)
            if (taken[at - 1] == j) /* rounding: no weight left */
                return;
        memmove(taken + at + 1, taken + at, (n_taken - at) * sizeof *taken);
        taken[at] = j;
        left -= posting_weight(ac, lo, j);
        k = pick_ad(g, j, rng_unit(r));
        ranks[x->n_ads] = k;
        x->ads[x->n_ads++] = gen_ad_id(k);
    }
}

double gen_click_p(const struct gen *g, uint32_t k, uint32_t term)
{
    double p = g->ad_p[k] * pair_ctr_factor(pair_hash(g, k, term));
    return p < 1 ? p : 1;
}

/* ---- the ads catalog ------------------------------------------------------
 */

/* Term t as a quoted CSV field, without its closing quote. */
static void put_quoted_term(FILE *f, const struct vocab *v, uint32_t t)
{
    const char *s = v->bytes + v->off[t];
    fputc('"', f);
    for (uint16_t i = 0; i < v->len[t]; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
}

int gen_catalog_write(const struct gen *g, const char *path, char *err)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return ctrd_fail(err, CTRD_EIO, "cannot create %s: %s", path,
                         strerror(errno));
    fputs("ad_id,advertiser_id,name\n", f);
    for (uint32_t k = 0; k < g->cfg->n_ads; k++) {
        uint32_t a = k / GEN_ADS_PER_ADVERTISER;
        fprintf(f, "%llu,%llu,", (unsigned long long)gen_ad_id(k),
                (unsigned long long)gen_advertiser_id(k));
        put_quoted_term(f, &g->voc, g->acc.core_term[a]);
        fprintf(f, " #%u\"\n", k - adv_first_ad(a) + 1);
    }
    if (ferror(f) | (fclose(f) != 0))
        return ctrd_fail(err, CTRD_EIO, "cannot write %s", path);
    return 0;
}
