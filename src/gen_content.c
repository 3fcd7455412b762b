/* gen_content: what the records of `ctrd gen` hold -- the term vocabulary,
 * Zipf draws over terms and ads, ad ids, unique query ids and the times of
 * queries (the traffic curve); see gen_internal.h.
 *
 * Owns the vocabulary's bytes (struct vocab, freed by gen_vocab_free) and,
 * while it is built, a hash set of the terms: vocab_slot is gen's own
 * linear-probing table of uint32 slots, keyed by the term's bytes, holding
 * index + 1 into the vocabulary (0 empty). It lives only inside
 * gen_vocab_build.
 * Invariants: terms are distinct, lower case, single-spaced (as normalised);
 * query ids of one counter never repeat. Threads: the caller's. */
#include "gen_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- term vocabulary ---------------------------------------------------- */

/* Words of search terms: lower case (as normalised), no white space, none
 * all digits. Some need JSON escapes, some are not ASCII. */
/* clang-format off */
static const char *const words[] = {
    "running", "shoes", "cheap", "flights", "to", "hotel", "hotels", "near",
    "me", "best", "pizza", "delivery", "weather", "tomorrow", "news",
    "football", "scores", "buy", "online", "sale", "discount", "coupon",
    "free", "shipping", "women", "men", "kids", "jacket", "winter", "summer",
    "dress", "laptop", "phone", "case", "charger", "wireless", "headphones",
    "bluetooth", "speaker", "tv", "4k", "smart", "watch", "fitness",
    "tracker", "yoga", "mat", "gym", "membership", "protein", "powder",
    "vegan", "recipes", "easy", "dinner", "chicken", "pasta", "salad",
    "sushi", "restaurant", "open", "now", "coffee", "maker", "espresso",
    "machine", "used", "cars", "for", "rent", "apartment", "in", "berlin",
    "paris", "london", "new", "york", "tokyo", "madrid", "rome", "lisbon",
    "insurance", "car", "home", "life", "travel", "credit", "card", "bank",
    "loan", "mortgage", "rates", "jobs", "remote", "software", "engineer",
    "salary", "how", "tie", "a", "fix", "leaking", "faucet", "garden",
    "furniture", "sofa", "bed", "mattress", "queen", "size", "king", "desk",
    "chair", "office", "ergonomic", "lamp", "led", "bulbs", "solar",
    "panels", "electric", "bike", "scooter", "tires", "oil", "change",
    "dentist", "doctor", "pharmacy", "hours", "flu", "symptoms", "vitamin",
    "d", "tickets", "concert", "movie", "times", "netflix", "series",
    "book", "novel", "kindle", "headphone", "gaming", "pc", "console",
    "controller", "game", "tablet", "camera", "lens", "drone", "tent",
    "camping", "hiking", "boots", "backpack", "ski", "snowboard", "beach",
    "resort", "all", "inclusive", "cruise", "deals", "last", "minute",
    "wedding", "ring", "gold", "silver", "necklace", "perfume", "gift",
    "ideas", "birthday", "cake", "flowers", "christmas", "tree",
    "black", "friday", "cyber", "monday", "of", "the", "and", "vs",
    "review", "reviews", "price", "compare", "near-by", "24/7", "o'neill",
    "c++", "at&t", "50%", "1/2", "\"cheap\"", "c:\\temp", "e-mail",
    "caf\xc3\xa9", "cr\xc3\xa8me", "br\303\273l\303\251e",
    "jalape\xc3\xb1o", "gr\303\266\303\237e", "stra\303\237e",
    "m\xc3\xbcsli", "z\xc3\xbcrich", "k\303\270benhavn", "s\xc3\xa3o",
    "paulo", "krak\xc3\xb3w", "\305\202\303\263d\305\272", "na\xc3\xafve",
    "pi\303\261ata", "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe",
    "\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0",
    "\xce\xb5\xce\xbb\xce\xbb\xce\xac\xce\xb4\xce\xb1",
    "\xe6\x9d\xb1\xe4\xba\xac", "\xe5\xaf\xbf\xe5\x8f\xb8",
    "\xe3\x83\xa9\xe3\x83\xbc\xe3\x83\xa1\xe3\x83\xb3",
    "\xec\x84\x9c\xec\x9a\xb8", "\xf0\x9f\x8f\x83", "\xf0\x9f\x8d\x95",
};
/* clang-format on */
#define N_WORDS (sizeof words / sizeof words[0])

void gen_vocab_free(struct vocab *v)
{
    free(v->bytes);
    free(v->off);
    free(v->len);
}

/* Index + 1 of the term t[0..n) in the set, or the empty slot for it. */
static uint32_t *vocab_slot(const struct vocab *v, uint32_t *slots,
                            uint32_t mask, const char *t, size_t n)
{
    uint32_t i = (uint32_t)hash_bytes(t, n) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t k = slots[i];
        if (k == 0 ||
            (v->len[k - 1] == n && memcmp(v->bytes + v->off[k - 1], t, n) == 0))
            return &slots[i];
    }
}

/* Term number k: popular terms are short. */
static size_t vocab_draw(struct rng *r, uint32_t k, char *t)
{
    static const unsigned cut[4] = {15, 55, 85, 100};
    unsigned u = (unsigned)rng_below(r, k < 100 ? 55 : 100), words_n = 1;
    size_t n = 0;
    while (u >= cut[words_n - 1])
        words_n++;
    for (unsigned w = 0; w < words_n; w++) {
        const char *s = words[rng_below(r, N_WORDS)];
        if (w)
            t[n++] = ' ';
        memcpy(t + n, s, strlen(s));
        n += strlen(s);
    }
    return n;
}

int gen_vocab_build(struct vocab *v, uint32_t n, uint64_t seed)
{
    uint32_t mask = 1;
    uint32_t *slots;
    size_t used = 0, cap = (size_t)n * 24 + 64;
    struct rng r;
    char t[128];

    while (mask < 2 * n)
        mask <<= 1;
    slots = calloc(mask, sizeof *slots);
    v->bytes = malloc(cap);
    v->off = malloc((size_t)n * sizeof *v->off);
    v->len = malloc((size_t)n * sizeof *v->len);
    v->n = 0;
    if (!slots || !v->bytes || !v->off || !v->len) {
        free(slots);
        return CTRD_ENOMEM;
    }
    mask--;
    rng_seed(&r, seed, 100);
    for (uint32_t k = 0; k < n; k++) {
        size_t len = 0;
        uint32_t *slot = NULL;
        for (int tries = 0; tries < 32 && (!slot || *slot); tries++) {
            len = vocab_draw(&r, k, t);
            slot = vocab_slot(v, slots, mask, t, len);
        }
        if (*slot) { /* the words ran out: a number makes it new */
            len += (size_t)snprintf(t + len, sizeof t - len, " %u", k);
            slot = vocab_slot(v, slots, mask, t, len);
        }
        if (used + len > cap) {
            char *p = realloc(v->bytes, cap * 2);
            if (!p) {
                free(slots);
                return CTRD_ENOMEM;
            }
            v->bytes = p;
            cap *= 2;
        }
        memcpy(v->bytes + used, t, len);
        v->off[k] = (uint32_t)used;
        v->len[k] = (uint16_t)len;
        used += len;
        v->n = k + 1;
        *slot = k + 1;
    }
    free(slots);
    return 0;
}

/* ---- Zipf(1) over ranks 0..n-1, by inverse CDF ------------------------- */

double *gen_zipf_cdf(uint32_t n)
{
    double *c = malloc((size_t)n * sizeof *c), sum = 0;
    if (!c)
        return NULL;
    for (uint32_t k = 0; k < n; k++) {
        sum += 1.0 / (k + 1.0);
        c[k] = sum;
    }
    for (uint32_t k = 0; k < n; k++)
        c[k] /= sum;
    c[n - 1] = 1.0;
    return c;
}

uint32_t gen_cdf_find(const double *cdf, uint32_t n, double u)
{
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

uint32_t gen_zipf_draw(const double *cdf, uint32_t n, struct rng *r)
{
    return gen_cdf_find(cdf, n, rng_unit(r));
}

uint64_t gen_ad_id(uint32_t k)
{
    return k % 100 == 99 ? UINT64_MAX - k / 100 : 1000 + (uint64_t)k;
}

uint64_t gen_next_query_id(uint64_t *ctr)
{
    for (;;) {
        uint64_t id = hash_u64((*ctr)++ ^ UINT64_C(0x5DEECE66D));
        if (id != 0 && id < UINT64_MAX - GEN_ID_RESERVED)
            return id;
    }
}

uint32_t gen_distinct_ads(const struct grec *x)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < x->n_ads; i++) {
        uint32_t j = 0;
        while (j < i && x->ads[j] != x->ads[i])
            j++;
        n += j == i;
    }
    return n;
}

static int has_ad(const struct grec *x, uint64_t ad)
{
    for (uint32_t i = 0; i < x->n_ads; i++)
        if (x->ads[i] == ad)
            return 1;
    return 0;
}

void gen_draw_ads(struct gen *g, struct rng *r, struct grec *x, uint32_t n,
                  uint32_t *ranks)
{
    for (uint32_t i = 0; i < n && x->n_ads < GEN_ADS_CAP; i++) {
        uint32_t k = 0;
        uint64_t id = 0;
        int tries = 0;
        do {
            k = gen_zipf_draw(g->ad_cdf, g->cfg->n_ads, r);
            id = gen_ad_id(k);
        } while (has_ad(x, id) && ++tries < 16);
        if (tries == 16) {
            if (ranks)
                return;
            for (id = 100 + i; has_ad(x, id); id++)
                ;
        }
        if (ranks)
            ranks[x->n_ads] = k;
        x->ads[x->n_ads++] = id;
    }
}

/* ---- when queries happen --------------------------------------------------
 */

#define DAY_MS 86400000

/* Relative query volume at t_ms: daily 1 + 5/9 cos (peak 15:00 UTC, low
 * 03:00, 3.5 times less), times 0.7 on Saturdays and Sundays. */
static double traffic_rate(int64_t t_ms)
{
    double day = (double)(t_ms % DAY_MS) / DAY_MS;
    int weekday = (int)((t_ms / DAY_MS + 4) % 7); /* 1970-01-01: Thursday */
    double daily = 1.0 + 5.0 / 9.0 * cos(6.283185307179586 * (day - 0.625));
    return daily * (weekday == 0 || weekday == 6 ? 0.7 : 1.0);
}

/* The volume of the knot [from_ms, to_ms): its rate at the middle. */
static double knot_volume(int64_t from_ms, int64_t to_ms)
{
    return traffic_rate(from_ms + (to_ms - from_ms) / 2) *
           (double)(to_ms - from_ms);
}

static int64_t knot_end(const struct traffic *t, int64_t from_ms)
{
    return t->end_ms - from_ms > GEN_KNOT_MS ? from_ms + GEN_KNOT_MS
                                             : t->end_ms;
}

void gen_traffic_init(struct traffic *t, int64_t start_ms, int64_t duration_ms)
{
    *t = (struct traffic){.end_ms = start_ms + duration_ms,
                          .knot_ms = start_ms,
                          .next_ms = start_ms};
    for (int64_t k = start_ms; k < t->end_ms; k = knot_end(t, k))
        t->total += knot_volume(k, knot_end(t, k));
}

int64_t gen_traffic_time(struct traffic *t, uint64_t i, uint64_t n)
{
    assert(i < n);
    while (i >= t->q_hi) { /* on to the next knot that has queries */
        t->knot_ms = t->next_ms;
        t->next_ms = knot_end(t, t->knot_ms);
        t->done += knot_volume(t->knot_ms, t->next_ms);
        t->q_lo = t->q_hi;
        t->q_hi = t->next_ms == t->end_ms
                      ? n
                      : (uint64_t)((double)n * (t->done / t->total));
    }
    return t->knot_ms +
           (int64_t)((i - t->q_lo) * (uint64_t)(t->next_ms - t->knot_ms) /
                     (t->q_hi - t->q_lo));
}
