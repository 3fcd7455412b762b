/* cluster: see cluster.h. */
#include "cluster.h"

#include "clock.h"
#include "crc32c.h"
#include "fsutil.h"
#include "sharder.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES 65536
#define STREAMS_WAIT_MS 60000 /* for a JetStream leader at start */
#define DUPLICATE_WINDOW_NS (INT64_C(120) * 1000000000)

/* ---- the cluster file ---- */

/* The text after "key": in a flat JSON object, or NULL. */
static const char *config_value(const char *text, const char *key)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(text, quoted);
    if (!p)
        return NULL;
    p += strlen(quoted);
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != ':')
        return NULL;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

static int config_number(const char *text, const char *key, int64_t *v)
{
    const char *p = config_value(text, key);
    char *end;
    if (!p || !isdigit((unsigned char)*p))
        return CTRD_EINVAL;
    *v = strtoll(p, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    return *end == ',' || *end == '}' ? 0 : CTRD_EINVAL;
}

/* An array of plain strings (no escapes), each < 128 bytes. */
static int config_strings(const char *text, const char *key, char (*out)[128],
                          size_t *n)
{
    const char *p = config_value(text, key);
    if (!p || *p++ != '[')
        return CTRD_EINVAL;
    *n = 0;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ']')
            return *n > 0 ? 0 : CTRD_EINVAL;
        const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
        if (!end || end - p - 1 >= 128 || *n == CLUSTER_MAX_ENDPOINTS ||
            memchr(p + 1, '\\', (size_t)(end - p - 1)))
            return CTRD_EINVAL;
        memcpy(out[*n], p + 1, (size_t)(end - p - 1));
        out[(*n)++][end - p - 1] = '\0';
        p = end + 1;
    }
}

int cluster_config_load(const char *path, struct cluster_config *out, char *err)
{
    char *text;
    size_t len;
    int rc = fs_read_file(path, &text, &len, err);
    if (rc == 0 && len > CONFIG_MAX_BYTES) {
        free(text);
        rc = ctrd_fail(err, CTRD_EINVAL, "%s: over %d bytes", path,
                       CONFIG_MAX_BYTES);
    }
    if (rc != 0)
        return rc;
    int64_t partitions = 0, replicas = 0, ttl = 0;
    *out = (struct cluster_config){0};
    const char *bad =
        config_number(text, "partitions", &partitions)          ? "partitions"
        : config_number(text, "replicas", &replicas)            ? "replicas"
        : config_number(text, "lease_ttl_ms", &ttl)             ? "lease_ttl_ms"
        : config_strings(text, "nats", out->nats, &out->n_nats) ? "nats"
        : config_strings(text, "etcd", out->etcd, &out->n_etcd) ? "etcd"
                                                                : NULL;
    free(text);
    if (!bad && (partitions < 1 || partitions > CLUSTER_MAX_PARTITIONS ||
                 SHARD_COUNT % (unsigned)partitions != 0))
        bad = "partitions (must divide 256)";
    if (!bad && (replicas < 1 || replicas > 5))
        bad = "replicas (1 to 5)";
    /* A keepalive goes out every second and the lease counts as lost
     * 1 s before it expires: shorter leases would flap. */
    if (!bad && (ttl < 3000 || ttl > 600000))
        bad = "lease_ttl_ms (3000 to 600000)";
    if (bad)
        return ctrd_fail(err, CTRD_EINVAL, "%s: missing or bad \"%s\"", path,
                         bad);
    out->partitions = (unsigned)partitions;
    out->replicas = (unsigned)replicas;
    out->lease_ttl_ms = ttl;
    return 0;
}

unsigned cluster_partition(const struct cluster_config *c, uint64_t query_id)
{
    return sharder_join_shard(query_id) % c->partitions;
}

/* ---- NATS ---- */

static int nats_fail(char *err, natsStatus s, jsErrCode jerr, const char *what)
{
    return ctrd_fail(
        err,
        s == NATS_NO_RESPONDERS || s == NATS_TIMEOUT ? CTRD_EAGAIN : CTRD_EIO,
        "%s: %s (jetstream error %d)", what, natsStatus_GetText(s), (int)jerr);
}

static int ensure_stream(jsCtx *js, const char *name, const char *subject,
                         unsigned replicas, char *err)
{
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {subject};
    sc.Name = name;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)replicas;
    /* No age or size limit: a new owner rebuilds a partition by replaying
     * its whole input, and a count server without a checkpoint replays
     * every delta; a message gone from a stream would change what they
     * rebuild. Trimming needs snapshots (docs/scale-out.md §12). */
    sc.Duplicates = DUPLICATE_WINDOW_NS;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, js, &sc, NULL, &jerr);
    /* Made by another process: use it as it is. */
    if (s != NATS_OK && jerr == JSStreamNameExistErr)
        s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    return s == NATS_OK ? 0 : nats_fail(err, s, jerr, name);
}

int cluster_connect(const struct cluster_config *c, const char *name,
                    natsConnection **nc, jsCtx **js, char *err)
{
    natsOptions *o = NULL;
    const char *servers[CLUSTER_MAX_ENDPOINTS];
    for (size_t i = 0; i < c->n_nats; i++)
        servers[i] = c->nats[i];
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, servers, (int)c->n_nats);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK)
        return nats_fail(err, s, 0, "connecting to NATS");
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    s = natsConnection_JetStream(js, *nc, &jo);
    int rc = s == NATS_OK ? 0 : nats_fail(err, s, 0, "JetStream context");
    int64_t give_up = clock_mono_ms() + STREAMS_WAIT_MS;
    do {
        if (rc == CTRD_EAGAIN) /* no JetStream leader yet: wait */
            usleep(500000);
        if (rc == 0 || rc == CTRD_EAGAIN)
            rc = ensure_stream(*js, CLUSTER_STREAM_IN, "ctrd.in.>", c->replicas,
                               err);
        if (rc == 0)
            rc = ensure_stream(*js, CLUSTER_STREAM_DELTA, "ctrd.d.>",
                               c->replicas, err);
    } while (rc == CTRD_EAGAIN && clock_mono_ms() < give_up);
    if (rc != 0) {
        cluster_disconnect(*nc, *js);
        *nc = NULL;
        *js = NULL;
    }
    return rc;
}

void cluster_disconnect(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

int cluster_msg_meta(natsMsg *m, struct cluster_meta *out)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
        return CTRD_EINVAL;
    *out = (struct cluster_meta){meta->Sequence.Stream, meta->NumPending,
                                 meta->Timestamp / 1000000};
    jsMsgMetaData_Destroy(meta);
    return 0;
}

/* ---- byte layouts ---- */

static void put_u16(char *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static void put_u32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put_u64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint16_t get_u16(const char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static uint32_t get_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void seal(char *buf, size_t len, const char magic[4])
{
    memcpy(buf, magic, 4);
    put_u32(buf + 4, crc32c(0, buf + 8, len - 8));
}

/* Checks magic, length and CRC of a message. */
static int check_sealed(const char *buf, size_t len, size_t header,
                        const char magic[4], char *err)
{
    if (len < header || memcmp(buf, magic, 4) != 0)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "%zu-byte message without the %.4s header", len,
                         magic);
    if (get_u32(buf + 4) != crc32c(0, buf + 8, len - 8))
        return ctrd_fail(err, CTRD_ECORRUPT, "%.4s message: bad CRC-32C",
                         magic);
    return 0;
}

void cluster_in_seal(char *buf, size_t len, const struct cluster_in *in)
{
    buf[8] = (char)in->kind;
    buf[9] = (char)in->fmt;
    put_u16(buf + 10, (uint16_t)in->partition);
    put_u32(buf + 12, in->n_lines);
    seal(buf, len, "CIN1");
}

int cluster_in_open(const char *buf, size_t len, struct cluster_in *out,
                    char *err)
{
    int rc = check_sealed(buf, len, CLUSTER_IN_HEADER, "CIN1", err);
    if (rc != 0)
        return rc;
    *out = (struct cluster_in){.kind = (enum engine_kind)buf[8],
                               .fmt = (enum rec_format)buf[9],
                               .partition = get_u16(buf + 10),
                               .n_lines = get_u32(buf + 12),
                               .lines = buf + CLUSTER_IN_HEADER,
                               .len = len - CLUSTER_IN_HEADER};
    uint32_t lines = 0;
    for (const char *q = out->lines, *end = q + out->len;
         (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        lines++;
    if ((unsigned char)buf[8] > ENGINE_CLICKS ||
        (unsigned char)buf[9] > REC_TSV ||
        (out->len > 0 && out->lines[out->len - 1] != '\n') ||
        lines != out->n_lines)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "CIN1 message: bad kind, format, last line or "
                         "line count");
    return 0;
}

int cluster_delta_put(FILE *f, const struct cluster_delta_entry *e)
{
    char b[CLUSTER_DELTA_ENTRY];
    put_u64(b, e->ad_id);
    put_u32(b + 8, e->minute);
    put_u32(b + 12, e->impressions);
    put_u32(b + 16, e->clicks);
    put_u16(b + 20, e->term_len);
    fwrite(b, 1, sizeof b, f);
    fwrite(e->term, 1, e->term_len, f);
    return ferror(f) ? CTRD_ENOMEM : 0;
}

void cluster_delta_seal(char *buf, size_t len, const struct cluster_delta *d)
{
    put_u16(buf + 8, (uint16_t)d->partition);
    put_u16(buf + 10, 0);
    put_u32(buf + 12, d->n_entries);
    put_u64(buf + 16, (uint64_t)d->epoch);
    put_u64(buf + 24, d->first_seq);
    put_u64(buf + 32, d->last_seq);
    put_u64(buf + 40, (uint64_t)d->as_of_ms);
    seal(buf, len, "CDL1");
}

int cluster_delta_open(const char *buf, size_t len, struct cluster_delta *out,
                       char *err)
{
    int rc = check_sealed(buf, len, CLUSTER_DELTA_HEADER, "CDL1", err);
    if (rc != 0)
        return rc;
    *out = (struct cluster_delta){.partition = get_u16(buf + 8),
                                  .n_entries = get_u32(buf + 12),
                                  .epoch = (int64_t)get_u64(buf + 16),
                                  .first_seq = get_u64(buf + 24),
                                  .last_seq = get_u64(buf + 32),
                                  .as_of_ms = (int64_t)get_u64(buf + 40),
                                  .entries = buf + CLUSTER_DELTA_HEADER,
                                  .len = len - CLUSTER_DELTA_HEADER};
    if (out->n_entries > out->len / CLUSTER_DELTA_ENTRY)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "CDL1 message: %" PRIu32 " entries in %zu bytes",
                         out->n_entries, out->len);
    if (out->first_seq == 0 || out->first_seq > out->last_seq)
        return ctrd_fail(err, CTRD_ECORRUPT,
                         "CDL1 message: input sequences %" PRIu64 "..%" PRIu64,
                         out->first_seq, out->last_seq);
    return 0;
}

int cluster_delta_next(const struct cluster_delta *d, size_t *at,
                       struct cluster_delta_entry *e)
{
    if (*at == d->len)
        return 0;
    if (d->len - *at < CLUSTER_DELTA_ENTRY)
        return CTRD_ECORRUPT;
    const char *p = d->entries + *at;
    *e = (struct cluster_delta_entry){.ad_id = get_u64(p),
                                      .minute = get_u32(p + 8),
                                      .impressions = get_u32(p + 12),
                                      .clicks = get_u32(p + 16),
                                      .term_len = get_u16(p + 20),
                                      .term = p + CLUSTER_DELTA_ENTRY};
    if (d->len - *at - CLUSTER_DELTA_ENTRY < e->term_len)
        return CTRD_ECORRUPT;
    *at += CLUSTER_DELTA_ENTRY + e->term_len;
    return 1;
}
