/* fuzz_catalog: libFuzzer target for the catalog loader. The input is a
 * whole catalog file; it is written to a memfd and loaded through its
 * /proc/self/fd path (the Makefile links every source file into a fuzzer, so
 * the loader's statics cannot be reached by including catalog.c).
 * A rejected file must come with a message naming the file. An accepted
 * one is read again here, naively, and must agree: every listed ad has its
 * advertiser and its name, the ads of each advertiser are exactly those
 * listed for it, strictly ascending (so no ad was listed twice).
 *   make fuzz && ./build-fuzz/fuzz_catalog -max_total_time=120 -max_len=4096 */
#include "fuzz.h"
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


/* Longer inputs are skipped: each line fits in a field buffer. */
#define INPUT_MAX (1 << 16)
#define RECORDS_MAX (INPUT_MAX / 4) /* "0,0\n" */

struct record {
    uint64_t ad_id, advertiser_id;
    char *name; /* in names */
};

static struct record records[RECORDS_MAX];
static uint64_t owners[RECORDS_MAX];
static char names[INPUT_MAX + RECORDS_MAX];

/* The fields of one line of an accepted file: a plain RFC 4180 state
 * machine. Returns the number of fields (at most 3 are kept). */
static int fields_of(const char *s, size_t n, char out[3][INPUT_MAX + 1])
{
    int field = 0, quoted = 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (quoted && ch == '"' && i + 1 < n && s[i + 1] == '"')
            i++;
        else if (ch == '"') {
            quoted = !quoted;
            continue;
        } else if (ch == ',' && !quoted) {
            if (field < 3)
                out[field][len] = '\0';
            field++, len = 0;
            continue;
        }
        if (field < 3)
            out[field][len++] = ch;
    }
    if (field < 3)
        out[field][len] = '\0';
    return field + 1;
}

static uint64_t decimal(const char *s)
{
    uint64_t v = 0;
    for (; *s; s++)
        v = v * 10 + (uint64_t)(*s - '0');
    return v;
}

/* Reads the records of an accepted file. Returns how many there are. */
static size_t records_read(const char *data, size_t size)
{
    static char f[3][INPUT_MAX + 1];
    size_t n = 0, pos = 0, names_used = 0;
    int header_seen = 0;

    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < size) {
        const char *s = data + pos;
        const char *lf = memchr(s, '\n', size - pos);
        size_t len = lf ? (size_t)(lf - s) : size - pos;
        pos += len + 1;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len == 0)
            continue;
        int nf = fields_of(s, len, f);
        if (!header_seen) {
            header_seen = 1;
            continue;
        }
        REQUIRE(n < RECORDS_MAX);
        records[n].ad_id = decimal(f[0]);
        records[n].advertiser_id = decimal(f[1]);
        records[n].name = strcpy(names + names_used, nf == 3 ? f[2] : "");
        names_used += strlen(records[n].name) + 1;
        n++;
    }
    REQUIRE(header_seen);
    return n;
}

static int u64_cmp(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a > b) - (a < b);
}

static int contains(const uint64_t *sorted, size_t n, uint64_t v)
{
    return bsearch(&v, sorted, n, sizeof v, u64_cmp) != NULL;
}

static void check_accepted(const struct catalog *c, const char *data,
                           size_t size)
{
    size_t n = records_read(data, size), total = 0;
    uint64_t max_ad = 0, adv_id;

    for (size_t i = 0; i < n; i++) {
        const struct record *r = &records[i];
        size_t k;
        const uint64_t *ads = catalog_ads_of(c, r->advertiser_id, &k);
        REQUIRE(catalog_owner(c, r->ad_id, &adv_id) == 0);
        REQUIRE(adv_id == r->advertiser_id);
        REQUIRE(strcmp(catalog_name(c, r->ad_id), r->name) == 0);
        REQUIRE(contains(ads, k, r->ad_id));
        owners[i] = r->advertiser_id;
        if (r->ad_id > max_ad)
            max_ad = r->ad_id;
    }
    qsort(owners, n, sizeof owners[0], u64_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t k;
        if (i > 0 && owners[i] == owners[i - 1])
            continue;
        const uint64_t *ads = catalog_ads_of(c, owners[i], &k);
        for (size_t j = 1; j < k; j++)
            REQUIRE(ads[j - 1] < ads[j]);
        for (size_t j = 0; j < k; j++)
            REQUIRE(catalog_owner(c, ads[j], &adv_id) == 0 &&
                    adv_id == owners[i]);
        total += k;
    }
    REQUIRE(total == n); /* every ad once: none listed twice */
    if (max_ad < UINT64_MAX) {
        REQUIRE(catalog_owner(c, max_ad + 1, &adv_id) == CTRD_ENOTFOUND);
        REQUIRE(strcmp(catalog_name(c, max_ad + 1), "") == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[CTRD_ERR_LEN] = "";
    struct catalog *c = NULL;

    if (size > INPUT_MAX)
        return 0;
    if (fd < 0) {
        fd = memfd_create("catalog.csv", 0);
        REQUIRE(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    REQUIRE(ftruncate(fd, 0) == 0);
    REQUIRE(pwrite(fd, data, size, 0) == (ssize_t)size);
    int rc = catalog_load(path, &c, err);
    if (rc == 0) {
        check_accepted(c, (const char *)data, size);
        catalog_free(c);
    } else {
        REQUIRE(rc == CTRD_EINVAL && c == NULL);
        REQUIRE(strncmp(err, path, strlen(path)) == 0);
        REQUIRE(err[strlen(path)] == ':');
    }
    return 0;
}
