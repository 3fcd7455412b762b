/* Unit tests of cluster's pure parts (no NATS): the cluster file — every
 * field of a valid one, the bounds of each key accepted, and each bad file
 * refused with a negative code and an err naming the file and the key; the
 * partition of a query id (pinned to the join shard); the byte tables of
 * cluster.h for input and delta messages, round trips through seal and
 * open, and damage refused — every single-bit flip, every truncation, a
 * last line without LF, sequences out of order, an entry cut short. Each
 * message under test sits in a buffer of exactly its length, so that a
 * read past it shows under `make SANITIZE=address,undefined`. */
#include "check.h"
#include "cluster.h"
#include "crc32c.h"
#include "sharder.h"
#include "testfs.h"

#include <stdlib.h>
#include <unistd.h>

static char tmp_dir[64];

static uint16_t u16_at(const char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t u32_at(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t u64_at(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A malloc'd copy of len bytes of p: nothing readable past it. */
static char *exact_copy(const char *p, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (!c) {
        perror("malloc");
        exit(1);
    }
    memcpy(c, p, len);
    return c;
}

/* ---- the cluster file ---- */

/* The keys of a cluster file, as JSON text: NULL gives a valid value,
 * OMIT leaves the key out. */
static const char OMIT[] = "omit";
struct keys {
    const char *partitions, *replicas, *lease_ttl_ms, *nats, *etcd;
};
#define NATS_2 "[\"nats://127.0.0.11:4222\", \"nats://127.0.0.12:4222\"]"
#define ETCD_3                                                                 \
    "[\"http://127.0.0.11:2379\",\"http://127.0.0.12:2379\","                  \
    "\"http://127.0.0.13:2379\"]"

static void put_key(FILE *f, const char *key, const char *value,
                    const char *valid, int *first)
{
    if (value == OMIT)
        return;
    fprintf(f, "%s\"%s\": %s", *first ? "" : ",\n ", key,
            value ? value : valid);
    *first = 0;
}

/* Writes the file (as scripts/cluster does, but spaced) and loads it. */
static int load_keys(const struct keys *k, struct cluster_config *c, char *err)
{
    char path[128];
    snprintf(path, sizeof path, "%s/cluster.json", tmp_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    int first = 1;
    fputc('{', f);
    put_key(f, "partitions", k->partitions, "64", &first);
    put_key(f, "replicas", k->replicas, "3", &first);
    put_key(f, "lease_ttl_ms", k->lease_ttl_ms, "5000", &first);
    put_key(f, "nats", k->nats, NATS_2, &first);
    put_key(f, "etcd", k->etcd, ETCD_3, &first);
    fputs("}\n", f);
    if (fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    return cluster_config_load(path, c, err);
}

static void test_config_valid(void)
{
    struct cluster_config c;
    char err[CTRD_ERR_LEN] = "";
    CHECK_EQ_I64(load_keys(&(struct keys){0}, &c, err), 0);
    CHECK_EQ_U64(c.partitions, 64);
    CHECK_EQ_U64(c.replicas, 3);
    CHECK_EQ_I64(c.lease_ttl_ms, 5000);
    CHECK_EQ_U64(c.n_nats, 2);
    CHECK_EQ_STR(c.nats[0], "nats://127.0.0.11:4222");
    CHECK_EQ_STR(c.nats[1], "nats://127.0.0.12:4222");
    CHECK_EQ_U64(c.n_etcd, 3);
    CHECK_EQ_STR(c.etcd[0], "http://127.0.0.11:2379");
    CHECK_EQ_STR(c.etcd[2], "http://127.0.0.13:2379");

    /* The file exactly as scripts/cluster writes it. */
    char path[128];
    snprintf(path, sizeof path, "%s/compact.json", tmp_dir);
    const char compact[] =
        "{\"partitions\":8,\"replicas\":1,\"lease_ttl_ms\":3000,\n"
        "\"nats\":[\"nats://a:1\"],\"etcd\":[\"http://b:2\"]}\n";
    testfs_write(path, compact, strlen(compact));
    CHECK_EQ_I64(cluster_config_load(path, &c, err), 0);
    CHECK(c.partitions == 8 && c.replicas == 1 && c.lease_ttl_ms == 3000);
    CHECK(c.n_nats == 1 && c.n_etcd == 1);
    CHECK_EQ_STR(c.nats[0], "nats://a:1");
    CHECK_EQ_STR(c.etcd[0], "http://b:2");
}

/* The bounds of each key, accepted. */
static void test_config_bounds(void)
{
    struct cluster_config c;
    char err[CTRD_ERR_LEN] = "";
    static const char *const partitions[] = {"1", "2", "128", "256"};
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ_I64(
            load_keys(&(struct keys){.partitions = partitions[i]}, &c, err), 0);
        CHECK_EQ_U64(c.partitions, strtoul(partitions[i], NULL, 10));
    }
    CHECK_EQ_I64(load_keys(&(struct keys){.replicas = "1"}, &c, err), 0);
    CHECK_EQ_I64(load_keys(&(struct keys){.replicas = "5"}, &c, err), 0);
    CHECK_EQ_U64(c.replicas, 5);
    CHECK_EQ_I64(load_keys(&(struct keys){.lease_ttl_ms = "3000"}, &c, err), 0);
    CHECK_EQ_I64(load_keys(&(struct keys){.lease_ttl_ms = "600000"}, &c, err),
                 0);
    CHECK_EQ_I64(c.lease_ttl_ms, 600000);
    /* CLUSTER_MAX_ENDPOINTS endpoints, the last one 127 bytes long. */
    char eight[2048], long_url[128];
    memset(long_url, 'x', 127);
    long_url[127] = '\0';
    snprintf(eight, sizeof eight,
             "[\"n0\",\"n1\",\"n2\",\"n3\",\"n4\",\"n5\",\"n6\",\"%s\"]",
             long_url);
    CHECK_EQ_I64(load_keys(&(struct keys){.nats = eight}, &c, err), 0);
    CHECK_EQ_U64(c.n_nats, CLUSTER_MAX_ENDPOINTS);
    CHECK_EQ_STR(c.nats[0], "n0");
    CHECK_EQ_STR(c.nats[7], long_url);
}

static void expect_refused(const char *what, const struct keys *k,
                           const char *key)
{
    struct cluster_config c;
    char err[CTRD_ERR_LEN] = "";
    int rc = load_keys(k, &c, err);
    if (rc >= 0 || !strstr(err, "cluster.json") || !strstr(err, key))
        CHECK_FAIL_AT("%s: rc %d, err \"%s\": want < 0 naming cluster.json "
                      "and \"%s\"",
                      what, rc, err, key);
}

static void test_config_refused(void)
{
    expect_refused("no partitions", &(struct keys){.partitions = OMIT},
                   "partitions");
    expect_refused("no replicas", &(struct keys){.replicas = OMIT}, "replicas");
    expect_refused("no lease_ttl_ms", &(struct keys){.lease_ttl_ms = OMIT},
                   "lease_ttl_ms");
    expect_refused("no nats", &(struct keys){.nats = OMIT}, "nats");
    expect_refused("no etcd", &(struct keys){.etcd = OMIT}, "etcd");
    expect_refused("partitions 0", &(struct keys){.partitions = "0"},
                   "partitions");
    expect_refused("partitions 3", &(struct keys){.partitions = "3"},
                   "partitions");
    expect_refused("partitions 512", &(struct keys){.partitions = "512"},
                   "partitions");
    expect_refused("partitions -64", &(struct keys){.partitions = "-64"},
                   "partitions");
    expect_refused("partitions as a string",
                   &(struct keys){.partitions = "\"64\""}, "partitions");
    expect_refused("replicas 0", &(struct keys){.replicas = "0"}, "replicas");
    expect_refused("replicas 6", &(struct keys){.replicas = "6"}, "replicas");
    expect_refused("lease_ttl_ms 2999", &(struct keys){.lease_ttl_ms = "2999"},
                   "lease_ttl_ms");
    expect_refused("lease_ttl_ms 600001",
                   &(struct keys){.lease_ttl_ms = "600001"}, "lease_ttl_ms");
    expect_refused("nats empty", &(struct keys){.nats = "[]"}, "nats");
    expect_refused("nats not an array",
                   &(struct keys){.nats = "\"nats://127.0.0.11:4222\""},
                   "nats");
    expect_refused("nats with a backslash",
                   &(struct keys){.nats = "[\"nats://a\\\\b:4222\"]"}, "nats");
    expect_refused("nats unterminated",
                   &(struct keys){.nats = "[\"nats://127.0.0.11:4222]"},
                   "nats");
    expect_refused("etcd with a backslash",
                   &(struct keys){.etcd = "[\"http://a\\\"b:2379\"]"}, "etcd");
    char nine[256], long_url[300];
    snprintf(nine, sizeof nine, "[%s]",
             "\"n0\",\"n1\",\"n2\",\"n3\",\"n4\",\"n5\",\"n6\",\"n7\",\"n8\"");
    expect_refused("nine nats", &(struct keys){.nats = nine}, "nats");
    expect_refused("nine etcd", &(struct keys){.etcd = nine}, "etcd");
    char x128[129];
    memset(x128, 'x', 128);
    x128[128] = '\0';
    snprintf(long_url, sizeof long_url, "[\"%s\"]", x128);
    expect_refused("a 128-byte url", &(struct keys){.etcd = long_url}, "etcd");
    /* A JSON number the parser must not read as its leading digits: 1e2
     * is 100, which does not divide 256 (read as 1, it was accepted). */
    expect_refused("partitions 1e2", &(struct keys){.partitions = "1e2"},
                   "partitions");
    expect_refused("lease_ttl_ms 5000.5",
                   &(struct keys){.lease_ttl_ms = "5000.5"}, "lease_ttl_ms");
}

static void test_config_file_refused(void)
{
    struct cluster_config c;
    char err[CTRD_ERR_LEN] = "", path[128];
    snprintf(path, sizeof path, "%s/missing.json", tmp_dir);
    CHECK(cluster_config_load(path, &c, err) < 0);
    CHECK(strstr(err, "missing.json") != NULL);

    /* A valid file padded with spaces: 64 KiB accepted, one more refused. */
    const char valid[] = "{\"partitions\":4,\"replicas\":1,\"lease_ttl_ms\":"
                         "3000,\"nats\":[\"n\"],\"etcd\":[\"e\"]}";
    size_t len = 65536;
    char *text = malloc(len + 1);
    if (!text)
        exit(1);
    memset(text, ' ', len + 1);
    memcpy(text, valid, strlen(valid));
    snprintf(path, sizeof path, "%s/big.json", tmp_dir);
    testfs_write(path, text, len);
    err[0] = '\0';
    CHECK_EQ_I64(cluster_config_load(path, &c, err), 0);
    CHECK_EQ_U64(c.partitions, 4);
    testfs_write(path, text, len + 1);
    CHECK(cluster_config_load(path, &c, err) < 0);
    CHECK(strstr(err, "big.json") != NULL);
    free(text);
}

/* ---- partitions ---- */

static void test_partition(void)
{
    struct cluster_config c = {0};
    for (c.partitions = 1; c.partitions <= CLUSTER_MAX_PARTITIONS;
         c.partitions *= 2) {
        for (uint64_t q = 0; q < 5000; q++) {
            uint64_t id = q * UINT64_C(0x9e3779b97f4a7c15) + (q & 1 ? q : 0);
            unsigned p = cluster_partition(&c, id);
            if (p != sharder_join_shard(id) % c.partitions) {
                CHECK_FAIL_AT("partition of %" PRIu64 " among %u: %u", id,
                              c.partitions, p);
                return;
            }
        }
    }
    /* Pinned (test_sharder.c's join shards): where streamed data lives. */
    c.partitions = 64;
    CHECK_EQ_U64(cluster_partition(&c, 1), 86 % 64);
    CHECK_EQ_U64(cluster_partition(&c, 42), 167 % 64);
    CHECK_EQ_U64(cluster_partition(&c, UINT64_MAX), 180 % 64);
    int hit[64] = {0}, n_hit = 0;
    for (uint64_t q = 1; q <= 2000; q++) {
        unsigned p = cluster_partition(&c, q);
        CHECK(p < 64);
        if (p < 64 && !hit[p]++)
            n_hit++;
    }
    CHECK_EQ_I64(n_hit, 64);
}

/* ---- input messages ---- */

/* A sealed input message of the given lines (malloc'd, *len its size). */
static char *sealed_in(const struct cluster_in *in, const char *lines, size_t n,
                       size_t *len)
{
    *len = CLUSTER_IN_HEADER + n;
    char *buf = malloc(*len);
    if (!buf)
        exit(1);
    memset(buf, 0xee, CLUSTER_IN_HEADER);
    memcpy(buf + CLUSTER_IN_HEADER, lines, n);
    cluster_in_seal(buf, *len, in);
    return buf;
}

/* cluster_in_open of an exact copy of buf[0..len). */
static int open_in(const char *buf, size_t len, struct cluster_in *out)
{
    char err[CTRD_ERR_LEN] = "", *copy = exact_copy(buf, len);
    int rc = cluster_in_open(copy, len, out, err);
    if (rc != 0 && !err[0])
        CHECK_FAIL_AT("cluster_in_open %d without an err", rc);
    if (rc == 0)
        out->lines = NULL; /* points into the copy */
    free(copy);
    return rc;
}

static void test_in_round_trip_and_layout(void)
{
    const char lines[] = "1763805600123\t7\trunning shoes\t1001\nx\tz\n";
    struct cluster_in in = {ENGINE_CLICKS, REC_TSV, 300, 2, NULL, 0}, out;
    size_t len;
    char *buf = sealed_in(&in, lines, strlen(lines), &len), err[CTRD_ERR_LEN];
    CHECK_EQ_I64(cluster_in_open(buf, len, &out, err), 0);
    CHECK_EQ_I64(out.kind, ENGINE_CLICKS);
    CHECK_EQ_I64(out.fmt, REC_TSV);
    CHECK_EQ_U64(out.partition, 300);
    CHECK_EQ_U64(out.n_lines, 2);
    CHECK(out.lines == buf + CLUSTER_IN_HEADER);
    CHECK_EQ_MEM(out.lines, out.len, lines);

    CHECK_EQ_U64(len, 16 + strlen(lines));
    CHECK(memcmp(buf, "CIN1", 4) == 0);
    CHECK_EQ_U64(u32_at(buf + 4), crc32c(0, buf + 8, len - 8));
    CHECK_EQ_U64((unsigned char)buf[8], 1);
    CHECK_EQ_U64((unsigned char)buf[9], 1);
    CHECK(buf[10] == 0x2c && buf[11] == 0x01); /* 300, little-endian */
    CHECK(buf[12] == 2 && buf[13] == 0 && buf[14] == 0 && buf[15] == 0);
    CHECK(memcmp(buf + 16, lines, strlen(lines)) == 0);
    free(buf);

    /* The other kind and format, no lines. */
    in = (struct cluster_in){ENGINE_QUERIES, REC_NDJSON, 0, 0, NULL, 0};
    buf = sealed_in(&in, "", 0, &len);
    CHECK_EQ_I64(open_in(buf, len, &out), 0);
    CHECK(out.kind == ENGINE_QUERIES && out.fmt == REC_NDJSON);
    CHECK_EQ_U64(out.partition, 0);
    CHECK_EQ_U64(out.n_lines, 0);
    CHECK_EQ_U64(out.len, 0);
    CHECK(buf[8] == 0 && buf[9] == 0);
    free(buf);
    /* A line count that is not the lines' (little-endian at 12): refused. */
    in.n_lines = 0x01020304u;
    buf = sealed_in(&in, "", 0, &len);
    CHECK(buf[12] == 4 && buf[13] == 3 && buf[14] == 2 && buf[15] == 1);
    CHECK_EQ_I64(open_in(buf, len, &out), CTRD_ECORRUPT);
    free(buf);
}

/* Every single-bit flip of a short message, a flip of every byte of a
 * long one, every truncation of both: CTRD_ECORRUPT. */
static void test_in_damage(void)
{
    struct cluster_in in = {ENGINE_QUERIES, REC_NDJSON, 5, 1, NULL, 0}, out;
    size_t len;
    char *buf = sealed_in(&in, "{\"q\":1}\n", 8, &len);
    CHECK_EQ_I64(open_in(buf, len, &out), 0);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1 << bit);
            int rc = open_in(buf, len, &out);
            buf[i] ^= (char)(1 << bit);
            if (rc != CTRD_ECORRUPT)
                CHECK_FAIL_AT("bit %d of byte %zu flipped: %d", bit, i, rc);
        }
    for (size_t cut = 0; cut < len; cut++)
        if (open_in(buf, cut, &out) != CTRD_ECORRUPT)
            CHECK_FAIL_AT("cut to %zu of %zu bytes: accepted", cut, len);
    free(buf);

    char lines[3000];
    for (size_t i = 0; i < sizeof lines; i++)
        lines[i] = i % 50 == 49 ? '\n' : (char)('a' + i % 26);
    in.n_lines = sizeof lines / 50;
    buf = sealed_in(&in, lines, sizeof lines, &len);
    CHECK_EQ_I64(open_in(buf, len, &out), 0);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= (char)0x5a;
        int rc = open_in(buf, len, &out);
        buf[i] ^= (char)0x5a;
        if (rc != CTRD_ECORRUPT)
            CHECK_FAIL_AT("byte %zu flipped: %d", i, rc);
    }
    for (size_t cut = 0; cut < len; cut++)
        if (open_in(buf, cut, &out) != CTRD_ECORRUPT)
            CHECK_FAIL_AT("cut to %zu of %zu bytes: accepted", cut, len);
    free(buf);
}

/* Sealed, so the CRC holds, yet not a message a front end writes. */
static void test_in_bad_content(void)
{
    struct cluster_in in = {ENGINE_QUERIES, REC_NDJSON, 5, 2, NULL, 0}, out;
    size_t len;
    char *buf = sealed_in(&in, "a\nb", 3, &len);
    CHECK_EQ_I64(open_in(buf, len, &out), CTRD_ECORRUPT);
    free(buf);
    /* A kind or format past the enums' ends. 0x80 and 0xff read as
     * negative through a signed char and passed the "> ENGINE_CLICKS" /
     * "> REC_TSV" checks. */
    static const unsigned bytes[] = {2, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < 4; i++) {
        in = (struct cluster_in){
            (enum engine_kind)bytes[i], REC_NDJSON, 5, 1, NULL, 0};
        buf = sealed_in(&in, "a\n", 2, &len);
        if (open_in(buf, len, &out) != CTRD_ECORRUPT)
            CHECK_FAIL_AT("kind byte 0x%02x accepted", bytes[i]);
        free(buf);
        in = (struct cluster_in){
            ENGINE_QUERIES, (enum rec_format)bytes[i], 5, 1, NULL, 0};
        buf = sealed_in(&in, "a\n", 2, &len);
        if (open_in(buf, len, &out) != CTRD_ECORRUPT)
            CHECK_FAIL_AT("format byte 0x%02x accepted", bytes[i]);
        free(buf);
    }
}

/* ---- delta messages ---- */

static const char utf8_term[] = "sch\xc3\xbc"
                                "he \xe2\x82\xac"
                                "5\0x";
static char long_term[300];

/* The entries of the delta tests: big values, a term with NUL and UTF-8
 * bytes, an empty term, a term longer than 255 bytes. */
static const struct cluster_delta_entry entries[] = {
    {1001, 29396760, 3, 1, 13, "running shoes"},
    {UINT64_MAX, UINT32_MAX, UINT32_MAX, 0, sizeof utf8_term - 1, utf8_term},
    {7, 0, 0, 2, 0, ""},
    {0x0102030405060708u, 5, 6, 7, sizeof long_term, long_term},
    {42, 1, 2, 0, 1, "z"},
};
#define N_ENTRIES (sizeof entries / sizeof entries[0])

static const struct cluster_delta header = {
    .partition = 513,
    .n_entries = N_ENTRIES,
    .epoch = 0x1122334455667788,
    .first_seq = 1000,
    .last_seq = 0x0000000100000002,
    .as_of_ms = -1,
};

/* The header space, then entries [0, n) with cluster_delta_put (malloc'd;
 * *len its size), not sealed. */
static char *put_entries(size_t n, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        exit(1);
    for (size_t i = 0; i < CLUSTER_DELTA_HEADER; i++)
        fputc(0xee, f);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_I64(cluster_delta_put(f, &entries[i]), 0);
    if (fclose(f) != 0)
        exit(1);
    return buf;
}

/* An exact copy of buf[0..len), sealed with h. */
static char *sealed_delta(const char *buf, size_t len,
                          const struct cluster_delta *h)
{
    char *copy = exact_copy(buf, len);
    cluster_delta_seal(copy, len, h);
    return copy;
}

static int open_delta(const char *buf, size_t len, struct cluster_delta *d)
{
    char err[CTRD_ERR_LEN] = "";
    int rc = cluster_delta_open(buf, len, d, err);
    if (rc != 0 && !err[0])
        CHECK_FAIL_AT("cluster_delta_open %d without an err", rc);
    return rc;
}

static int same_entry(const struct cluster_delta_entry *a,
                      const struct cluster_delta_entry *b)
{
    return a->ad_id == b->ad_id && a->minute == b->minute &&
           a->impressions == b->impressions && a->clicks == b->clicks &&
           a->term_len == b->term_len &&
           memcmp(a->term, b->term, a->term_len) == 0;
}

static void test_delta_round_trip(void)
{
    size_t len;
    char *raw = put_entries(N_ENTRIES, &len);
    char *buf = sealed_delta(raw, len, &header);
    struct cluster_delta d;
    CHECK_EQ_I64(open_delta(buf, len, &d), 0);
    CHECK_EQ_U64(d.partition, 513);
    CHECK_EQ_U64(d.n_entries, N_ENTRIES);
    CHECK_EQ_I64(d.epoch, header.epoch);
    CHECK_EQ_U64(d.first_seq, 1000);
    CHECK_EQ_U64(d.last_seq, header.last_seq);
    CHECK_EQ_I64(d.as_of_ms, -1);
    CHECK(d.entries == buf + CLUSTER_DELTA_HEADER);
    CHECK_EQ_U64(d.len, len - CLUSTER_DELTA_HEADER);
    size_t at = 0, n = 0;
    struct cluster_delta_entry e;
    int rc;
    while ((rc = cluster_delta_next(&d, &at, &e)) == 1) {
        if (n >= N_ENTRIES || !same_entry(&e, &entries[n]))
            CHECK_FAIL_AT("entry %zu differs (ad %" PRIu64 ", term_len %u)", n,
                          e.ad_id, (unsigned)e.term_len);
        n++;
    }
    CHECK_EQ_I64(rc, 0);
    CHECK_EQ_U64(n, N_ENTRIES);
    CHECK_EQ_U64(at, d.len);
    CHECK_EQ_I64(cluster_delta_next(&d, &at, &e), 0);
    CHECK_EQ_U64(at, d.len);
    free(buf);

    /* No entries; first == last; a positive as_of. */
    struct cluster_delta h = header, out;
    h.n_entries = 0;
    h.first_seq = h.last_seq = 1;
    h.as_of_ms = 1763805600123;
    buf = sealed_delta(raw, CLUSTER_DELTA_HEADER, &h);
    CHECK_EQ_I64(open_delta(buf, CLUSTER_DELTA_HEADER, &out), 0);
    CHECK(out.first_seq == 1 && out.last_seq == 1 && out.len == 0);
    CHECK_EQ_I64(out.as_of_ms, 1763805600123);
    at = 0;
    CHECK_EQ_I64(cluster_delta_next(&out, &at, &e), 0);
    free(buf);
    free(raw);
}

static void test_delta_layout(void)
{
    size_t len;
    char *raw = put_entries(N_ENTRIES, &len);
    char *buf = sealed_delta(raw, len, &header);
    CHECK(memcmp(buf, "CDL1", 4) == 0);
    CHECK_EQ_U64(u32_at(buf + 4), crc32c(0, buf + 8, len - 8));
    CHECK_EQ_U64(u16_at(buf + 8), 513);
    CHECK(buf[8] == 0x01 && buf[9] == 0x02); /* little-endian */
    CHECK_EQ_U64(u16_at(buf + 10), 0);
    CHECK_EQ_U64(u32_at(buf + 12), N_ENTRIES);
    CHECK_EQ_U64(u64_at(buf + 16), 0x1122334455667788);
    CHECK_EQ_U64((unsigned char)buf[16], 0x88);
    CHECK_EQ_U64(u64_at(buf + 24), 1000);
    CHECK_EQ_U64(u64_at(buf + 32), 0x0000000100000002);
    CHECK_EQ_U64(u64_at(buf + 40), UINT64_MAX); /* -1 */
    /* Entries: u64 ad_id, u32 minute, u32 impressions, u32 clicks, u16 term
     * length, term bytes. */
    size_t want = CLUSTER_DELTA_HEADER;
    for (size_t i = 0; i < N_ENTRIES; i++)
        want += 22 + entries[i].term_len;
    CHECK_EQ_U64(len, want);
    const char *p = buf + CLUSTER_DELTA_HEADER;
    CHECK_EQ_U64(u64_at(p), 1001);
    CHECK_EQ_U64(u32_at(p + 8), 29396760);
    CHECK_EQ_U64(u32_at(p + 12), 3);
    CHECK_EQ_U64(u32_at(p + 16), 1);
    CHECK_EQ_U64(u16_at(p + 20), 13);
    CHECK(memcmp(p + 22, "running shoes", 13) == 0);
    p += 22 + 13 + 22 + entries[1].term_len + 22; /* the fourth entry */
    CHECK_EQ_U64((unsigned char)p[0], 0x08);
    CHECK_EQ_U64(u64_at(p), 0x0102030405060708u);
    CHECK(p[20] == 0x2c && p[21] == 0x01); /* 300 */
    CHECK(memcmp(p + 22, long_term, sizeof long_term) == 0);
    free(buf);
    free(raw);
}

static void test_delta_damage(void)
{
    size_t len;
    struct cluster_delta d, h = header;
    char *raw = put_entries(3, &len);
    h.n_entries = 3;
    char *buf = sealed_delta(raw, len, &h);
    CHECK_EQ_I64(open_delta(buf, len, &d), 0);
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1 << bit);
            int rc = open_delta(buf, len, &d);
            buf[i] ^= (char)(1 << bit);
            if (rc != CTRD_ECORRUPT)
                CHECK_FAIL_AT("bit %d of byte %zu flipped: %d", bit, i, rc);
        }
    for (size_t cut = 0; cut < len; cut++) {
        char *copy = exact_copy(buf, cut);
        if (open_delta(copy, cut, &d) != CTRD_ECORRUPT)
            CHECK_FAIL_AT("cut to %zu of %zu bytes: accepted", cut, len);
        free(copy);
    }
    free(buf);

    /* Sealed, but more entries than the bytes can hold. */
    h.n_entries = (uint32_t)len;
    buf = sealed_delta(raw, len, &h);
    CHECK_EQ_I64(open_delta(buf, len, &d), CTRD_ECORRUPT);
    free(buf);
    h.n_entries = 3;

    /* Sealed, but sequences no joiner writes. */
    h.first_seq = 0;
    buf = sealed_delta(raw, len, &h);
    CHECK_EQ_I64(open_delta(buf, len, &d), CTRD_ECORRUPT);
    free(buf);
    h.first_seq = 11;
    h.last_seq = 10;
    buf = sealed_delta(raw, len, &h);
    CHECK_EQ_I64(open_delta(buf, len, &d), CTRD_ECORRUPT);
    free(buf);
    free(raw);
}

/* A sealed message whose last entry is cut short, anywhere in its fixed
 * part or its term: the entries before it, then CTRD_ECORRUPT with *at
 * left where it was. */
static void test_delta_entry_cut_short(void)
{
    size_t len;
    char *raw = put_entries(N_ENTRIES, &len);
    size_t last = 22 + entries[N_ENTRIES - 1].term_len;
    size_t last_at = len - CLUSTER_DELTA_HEADER - last;
    for (size_t cut = 1; cut < last; cut++) {
        char *buf = sealed_delta(raw, len - cut, &header);
        struct cluster_delta d;
        struct cluster_delta_entry e;
        CHECK_EQ_I64(open_delta(buf, len - cut, &d), 0);
        size_t at = 0, n = 0;
        int rc;
        while ((rc = cluster_delta_next(&d, &at, &e)) == 1)
            n++;
        if (rc != CTRD_ECORRUPT || n != N_ENTRIES - 1 || at != last_at)
            CHECK_FAIL_AT("last entry cut by %zu: rc %d after %zu entries, "
                          "at %zu",
                          cut, rc, n, at);
        free(buf);
    }
    free(raw);
    /* A term length past the message's end: 0xffff for a 13-byte term. */
    raw = put_entries(1, &len);
    raw[CLUSTER_DELTA_HEADER + 20] = (char)0xff;
    raw[CLUSTER_DELTA_HEADER + 21] = (char)0xff;
    struct cluster_delta one = header;
    one.n_entries = 1;
    char *buf = sealed_delta(raw, len, &one);
    struct cluster_delta d;
    struct cluster_delta_entry e;
    size_t at = 0;
    CHECK_EQ_I64(open_delta(buf, len, &d), 0);
    CHECK_EQ_I64(cluster_delta_next(&d, &at, &e), CTRD_ECORRUPT);
    CHECK_EQ_U64(at, 0);
    free(buf);
    free(raw);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-test-cluster.XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    memset(long_term, 'L', sizeof long_term);
    long_term[0] = '\0';
    long_term[sizeof long_term - 1] = '\xff';
    RUN(test_config_valid);
    RUN(test_config_bounds);
    RUN(test_config_refused);
    RUN(test_config_file_refused);
    RUN(test_partition);
    RUN(test_in_round_trip_and_layout);
    RUN(test_in_damage);
    RUN(test_in_bad_content);
    RUN(test_delta_round_trip);
    RUN(test_delta_layout);
    RUN(test_delta_damage);
    RUN(test_delta_entry_cut_short);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0)
        return 1;
    return check_done();
}
