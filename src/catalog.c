/* catalog: the ads catalog; see catalog.h.
 *
 * FORMAT. A CSV file (RFC 4180, one record per line):
 *   - the first non-empty line is the header, exactly
 *     "ad_id,advertiser_id" or "ad_id,advertiser_id,name";
 *   - then one line per ad with as many fields as the header: ad_id and
 *     advertiser_id are decimal numbers (ASCII digits, leading zeros
 *     allowed, at most 18446744073709551615; 0 is valid), name is any
 *     UTF-8 text without control characters (it may be empty);
 *   - any field may be quoted: "..." with "" for a quote inside, so a name
 *     may hold commas and quotes; it may not hold a line break;
 *   - lines end with LF, one CR before it is removed; empty lines are
 *     skipped; a UTF-8 byte order mark at the start of the file is
 *     skipped (spreadsheets write one);
 *   - an ad listed twice is an error, whatever its advertisers.
 * Errors name the file and the line.
 *
 * DESIGN. rows[] holds the ads in file order. A table (table.h: ad_id to
 * row index) finds an ad's row; it is filled in file order once every
 * line has been parsed, so an ad listed twice is reported at its second
 * line. ads[] and
 * owners[] are the (advertiser, ad) pairs sorted by advertiser then ad:
 * the ads of an advertiser are one contiguous ascending run of ads[],
 * found by binary search in owners[]. Names are decoded in place and
 * compacted to the front of the file buffer, which then becomes the names
 * arena (offset 0 is ""): loading allocates nothing per ad. A million ads
 * load in about 0.2 s. */
#include "catalog.h"

#include "cli.h"
#include "fsutil.h"
#include "table.h"
#include "utf8.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CAT_FIELDS_MAX 3
/* Table values are row indexes in 32 bits. */
#define CAT_ROWS_MAX (UINT32_C(1) << 31)

struct cat_row {
    uint64_t ad_id;
    uint64_t advertiser_id;
    size_t name_off; /* into names; 0 is "" */
    size_t line;     /* where the file lists the ad */
};

struct catalog {
    struct cat_row *rows; /* file order */
    size_t n;
    struct table rows_of; /* ad_id -> index into rows */
    uint64_t *owners;     /* n advertisers, ascending; owners[i] owns ads[i] */
    uint64_t *ads;        /* ascending within each advertiser */
    char *names;          /* NUL-terminated names, back to back */
};

struct cat_field {
    char *s; /* decoded, NUL-terminated in place */
    size_t len;
};

/* What loading needs besides the catalog being built. */
struct cat_load {
    const char *path;
    size_t line;
    int n_fields;      /* 2 or 3, from the header */
    char *buf;         /* the file text; names are compacted to its front */
    size_t names_used; /* bytes of buf holding names */
    char *err;
};

static const char id_rule[] =
    "must be a decimal number up to 18446744073709551615";

/* One field at *s (quoted or not) up to end: decoded in place into f and
 * NUL-terminated; *s is left on the ',' or end after it. 0, or CTRD_EINVAL and
 * *why. */
static int csv_field(char **s, char *end, struct cat_field *f, const char **why)
{
    char *p = *s, *out = *s;

    if (p < end && *p == '"') {
        for (p++;; p++) {
            if (p == end) {
                *why = "unterminated quoted field (a field may not span "
                       "lines)";
                return CTRD_EINVAL;
            }
            if (*p == '"' && (p + 1 == end || p[1] != '"'))
                break;
            p += *p == '"'; /* "" is one quote */
            *out++ = *p;
        }
        if (++p < end && *p != ',') {
            *why = "text after a closing quote";
            return CTRD_EINVAL;
        }
    } else {
        while (p < end && *p != ',' && *p != '"')
            p++;
        if (p < end && *p == '"') {
            *why = "quote inside an unquoted field (quote the whole field "
                   "and double the quote)";
            return CTRD_EINVAL;
        }
        out = p;
    }
    f->s = *s;
    f->len = (size_t)(out - *s);
    *out = '\0'; /* over the ',' or the line's end, both consumed */
    *s = p;
    return 0;
}

/* Splits line s (len bytes) into fields. Returns how many there are (past
 * CAT_FIELDS_MAX counted, not kept), or CTRD_EINVAL and *why. */
static int csv_split(char *s, size_t len, struct cat_field f[CAT_FIELDS_MAX],
                     const char **why)
{
    char *end = s + len;
    struct cat_field extra;
    int n = 0;

    if (memchr(s, '\0', len)) {
        *why = "NUL byte in the line";
        return CTRD_EINVAL;
    }
    for (;; n++) {
        if (csv_field(&s, end, n < CAT_FIELDS_MAX ? &f[n] : &extra, why))
            return CTRD_EINVAL;
        if (s == end)
            return n + 1;
        s++; /* the ',' */
    }
}

/* NULL when the name is fine, else what is wrong with it. */
static const char *name_problem(const char *name, size_t len)
{
    const unsigned char *s = (const unsigned char *)name;
    for (size_t i = 0, k; i < len; i += k) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return "the name has a control character";
        k = utf8_seq(s + i, len - i);
        if (k == 0)
            return "the name is not valid UTF-8";
    }
    return NULL;
}

/* How many lines of buf could list an ad: those of 3 bytes or more
 * ("0,0"), LF excluded. */
static size_t lines_count(const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len, *lf;
    size_t n = 0;

    while ((lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n += lf - p >= 3;
        p = lf + 1;
    }
    return n + (end - p >= 3);
}

/* Room for max_rows ads, in rows and in the table. */
static int rows_alloc(struct catalog *c, size_t max_rows)
{
    if (max_rows > CAT_ROWS_MAX)
        return CTRD_ENOMEM;
    c->rows = malloc((max_rows + 1) * sizeof *c->rows);
    if (!c->rows)
        return CTRD_ENOMEM;
    return table_init(&c->rows_of, max_rows);
}

static int header_parse(struct cat_load *ld, char *s, size_t len)
{
    static const char *const names[CAT_FIELDS_MAX] = {"ad_id", "advertiser_id",
                                                      "name"};
    struct cat_field f[CAT_FIELDS_MAX];
    const char *why;
    int n = csv_split(s, len, f, &why);

    if (n < 0)
        return ctrd_fail(ld->err, CTRD_EINVAL, "%s:%zu: %s", ld->path, ld->line,
                         why);
    for (int i = 0; i < n && i < CAT_FIELDS_MAX; i++)
        if (strcmp(f[i].s, names[i]) != 0)
            n = 0;
    if (n < 2 || n > CAT_FIELDS_MAX)
        return ctrd_fail(ld->err, CTRD_EINVAL,
                         "%s:%zu: the header must be ad_id,advertiser_id "
                         "or ad_id,advertiser_id,name",
                         ld->path, ld->line);
    ld->n_fields = n;
    ld->buf[0] = '\0'; /* the names arena starts with "" */
    ld->names_used = 1;
    return 0;
}

/* Copies the name to the arena at the front of the file buffer; returns
 * its offset. The arena never catches up with the line being read: each
 * line is longer than the name it adds ("ID,ID," precedes it). */
static size_t name_keep(struct cat_load *ld, const struct cat_field *name)
{
    size_t off = ld->names_used;
    if (name->len == 0)
        return 0;
    memmove(ld->buf + off, name->s, name->len);
    ld->buf[off + name->len] = '\0';
    ld->names_used += name->len + 1;
    return off;
}

static int row_parse(struct catalog *c, struct cat_load *ld, char *s,
                     size_t len)
{
    struct cat_field f[CAT_FIELDS_MAX];
    struct cat_row row = {.line = ld->line};
    const char *why;
    int n = csv_split(s, len, f, &why);

    if (n < 0)
        return ctrd_fail(ld->err, CTRD_EINVAL, "%s:%zu: %s", ld->path, ld->line,
                         why);
    if (n != ld->n_fields)
        return ctrd_fail(ld->err, CTRD_EINVAL,
                         "%s:%zu: %d field%s, the header has %d", ld->path,
                         ld->line, n, n == 1 ? "" : "s", ld->n_fields);
    if (cli_parse_u64(f[0].s, &row.ad_id) != 0)
        return ctrd_fail(ld->err, CTRD_EINVAL, "%s:%zu: ad_id %s", ld->path,
                         ld->line, id_rule);
    if (cli_parse_u64(f[1].s, &row.advertiser_id) != 0)
        return ctrd_fail(ld->err, CTRD_EINVAL, "%s:%zu: advertiser_id %s",
                         ld->path, ld->line, id_rule);
    if (n == 3 && (why = name_problem(f[2].s, f[2].len)) != NULL)
        return ctrd_fail(ld->err, CTRD_EINVAL, "%s:%zu: %s", ld->path, ld->line,
                         why);
    if (n == 3)
        row.name_off = name_keep(ld, &f[2]);
    c->rows[c->n++] = row; /* room: see lines_count() */
    return 0;
}

/* Fills the ad table in file order: an ad listed twice fails at its second
 * line. Each insertion is a cache miss, so the slot of a row a little
 * ahead is prefetched: the misses overlap (this halves the load time of a
 * million ads). rows_alloc() made room for every row: no growth. */
static int rows_index(struct catalog *c, struct cat_load *ld)
{
    enum { AHEAD = 16 };
    for (size_t i = 0; i < c->n; i++) {
        const struct cat_row *row = &c->rows[i];
        uint32_t first = (uint32_t)i;
        if (i + AHEAD < c->n)
            table_prefetch(&c->rows_of, row[AHEAD].ad_id);
        if (table_add(&c->rows_of, row->ad_id, &first) != 0)
            return ctrd_fail(ld->err, CTRD_EINVAL,
                             "%s:%zu: ad %" PRIu64 " is listed twice (first "
                             "at line %zu)",
                             ld->path, row->line, row->ad_id,
                             c->rows[first].line);
    }
    return 0;
}

struct cat_pair {
    uint64_t advertiser_id, ad_id;
};

static int pair_cmp(const void *pa, const void *pb)
{
    const struct cat_pair *a = pa, *b = pb;
    if (a->advertiser_id != b->advertiser_id)
        return a->advertiser_id < b->advertiser_id ? -1 : 1;
    return (a->ad_id > b->ad_id) - (a->ad_id < b->ad_id);
}

/* Fills owners[] and ads[] from rows[]. */
static int owners_build(struct catalog *c)
{
    struct cat_pair *pairs = malloc((c->n + 1) * sizeof *pairs);
    c->owners = malloc((c->n + 1) * sizeof *c->owners);
    c->ads = malloc((c->n + 1) * sizeof *c->ads);
    if (!pairs || !c->owners || !c->ads) {
        free(pairs);
        return CTRD_ENOMEM;
    }
    for (size_t i = 0; i < c->n; i++)
        pairs[i] =
            (struct cat_pair){c->rows[i].advertiser_id, c->rows[i].ad_id};
    qsort(pairs, c->n, sizeof *pairs, pair_cmp);
    for (size_t i = 0; i < c->n; i++) {
        c->owners[i] = pairs[i].advertiser_id;
        c->ads[i] = pairs[i].ad_id;
    }
    free(pairs);
    return 0;
}

/* Parses the file text (NUL-terminated, len bytes) into c. Every line is
 * checked before duplicates are looked for. */
static int catalog_parse(struct catalog *c, struct cat_load *ld, size_t len)
{
    static const char bom[] = "\xEF\xBB\xBF";
    size_t pos = 0, n;
    int rc;

    if (len >= 3 && memcmp(ld->buf, bom, 3) == 0)
        pos = 3;
    while (pos < len) {
        char *s = fs_next_line(ld->buf, len, &pos, &n);
        ld->line++;
        if (n == 0)
            continue;
        rc = ld->n_fields ? row_parse(c, ld, s, n) : header_parse(ld, s, n);
        if (rc != 0)
            return rc;
    }
    if (ld->n_fields == 0)
        return ctrd_fail(ld->err, CTRD_EINVAL,
                         "%s: no header line (ad_id,advertiser_id[,name])",
                         ld->path);
    rc = rows_index(c, ld);
    if (rc != 0)
        return rc;
    if (owners_build(c) != 0)
        return ctrd_fail(ld->err, CTRD_ENOMEM,
                         "%s: out of memory for the catalog", ld->path);
    return 0;
}

int catalog_load(const char *path, struct catalog **out, char *err)
{
    struct cat_load ld = {.path = path, .err = err};
    struct catalog *c = NULL;
    size_t len;
    int rc = fs_read_file(path, &ld.buf, &len, err);

    if (rc != 0)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c || rows_alloc(c, lines_count(ld.buf, len)) != 0) {
        rc = ctrd_fail(err, CTRD_ENOMEM, "%s: out of memory for the catalog",
                       path);
        goto fail;
    }
    rc = catalog_parse(c, &ld, len);
    if (rc != 0)
        goto fail;
    c->names = realloc(ld.buf, ld.names_used);
    if (!c->names)
        c->names = ld.buf; /* keep the larger block */
    *out = c;
    return 0;
fail:
    free(ld.buf);
    catalog_free(c);
    return rc;
}

void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    free(c->rows);
    table_free(&c->rows_of);
    free(c->owners);
    free(c->ads);
    free(c->names);
    free(c);
}

static const struct cat_row *row_of(const struct catalog *c, uint64_t ad_id)
{
    uint32_t row;
    if (!c || table_find(&c->rows_of, ad_id, &row) != 0)
        return NULL;
    return &c->rows[row];
}

int catalog_owner(const struct catalog *c, uint64_t ad_id,
                  uint64_t *advertiser_id)
{
    const struct cat_row *row = row_of(c, ad_id);
    if (!row)
        return CTRD_ENOTFOUND;
    *advertiser_id = row->advertiser_id;
    return 0;
}

const char *catalog_name(const struct catalog *c, uint64_t ad_id)
{
    const struct cat_row *row = row_of(c, ad_id);
    return row ? c->names + row->name_off : "";
}

/* The end of the run of advertiser_id's ads in owners[] from lo. */
static size_t run_end(const struct catalog *c, size_t lo,
                      uint64_t advertiser_id)
{
    while (lo < c->n && c->owners[lo] == advertiser_id)
        lo++;
    return lo;
}

const uint64_t *catalog_ads_of(const struct catalog *c, uint64_t advertiser_id,
                               size_t *n)
{
    static const uint64_t none[1];
    size_t lo = 0, hi;

    *n = 0;
    if (!c)
        return none;
    hi = c->n;
    while (lo < hi) { /* the first owner >= advertiser_id */
        size_t mid = lo + (hi - lo) / 2;
        if (c->owners[mid] < advertiser_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *n = run_end(c, lo, advertiser_id) - lo;
    return c->ads + lo;
}

int catalog_next_advertiser(const struct catalog *c, size_t *cursor,
                            uint64_t *advertiser_id, const uint64_t **ads,
                            size_t *n)
{
    size_t lo = *cursor;
    if (!c || lo >= c->n)
        return CTRD_ENOTFOUND;
    *advertiser_id = c->owners[lo];
    *cursor = run_end(c, lo, *advertiser_id);
    *n = *cursor - lo;
    *ads = c->ads + lo;
    return 0;
}
