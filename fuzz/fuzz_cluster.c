/* fuzz_cluster: libFuzzer target for the messages distributed ctrd reads
 * off its streams (cluster.h): cluster_in_open() and cluster_delta_open()
 * with cluster_delta_next(). The first byte picks the kind (even: input,
 * odd: delta); the rest is the message from byte 8 on, sealed here with
 * its magic and a valid CRC-32C so that the layout checks behind them are
 * reached. Invariants: an opened input message names a kind, a format and
 * lines that end in LF; the entries of an opened delta are walked without
 * reading past its end, each term inside the message, and the walk ends
 * either exactly at the end or with CTRD_ECORRUPT; and any message whose
 * checksum no longer matches (one byte changed) is refused.
 *   make fuzz && ./build-fuzz/fuzz_cluster -max_total_time=120 -max_len=4096 */
#include "fuzz.h"
#include "cluster.h"
#include "crc32c.h"

#include <stdint.h>
#include <string.h>

static void check_in(char *buf, size_t len)
{
    char err[CTRD_ERR_LEN];
    struct cluster_in in;
    if (cluster_in_open(buf, len, &in, err) != 0)
        return;
    REQUIRE(in.kind <= ENGINE_CLICKS && in.fmt <= REC_TSV);
    REQUIRE(in.lines == buf + CLUSTER_IN_HEADER &&
            in.len == len - CLUSTER_IN_HEADER);
    REQUIRE(in.len == 0 || in.lines[in.len - 1] == '\n');
}

static void check_delta(char *buf, size_t len)
{
    char err[CTRD_ERR_LEN];
    struct cluster_delta d;
    if (cluster_delta_open(buf, len, &d, err) != 0)
        return;
    REQUIRE(d.first_seq >= 1 && d.first_seq <= d.last_seq);
    size_t at = 0;
    struct cluster_delta_entry e;
    int rc;
    while ((rc = cluster_delta_next(&d, &at, &e)) == 1) {
        REQUIRE(at <= d.len);
        REQUIRE(e.term >= d.entries &&
                e.term + e.term_len <= d.entries + d.len);
    }
    REQUIRE(rc == 0 ? at == d.len : rc == CTRD_ECORRUPT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int delta = data[0] & 1;
    size_t len = 8 + size - 1;
    char *buf = malloc(len); /* exactly: a read past it is an ASan report */
    memcpy(buf, delta ? "CDL1" : "CIN1", 4);
    memcpy(buf + 8, data + 1, size - 1);
    uint32_t crc = crc32c(0, buf + 8, len - 8);
    memcpy(buf + 4, &crc, 4);
    (delta ? check_delta : check_in)(buf, len);
    if (len > 8) { /* any changed byte after the CRC is refused */
        char err[CTRD_ERR_LEN];
        buf[len - 1] ^= 0x20;
        struct cluster_in in;
        struct cluster_delta d;
        REQUIRE((delta ? cluster_delta_open(buf, len, &d, err)
                       : cluster_in_open(buf, len, &in, err)) == CTRD_ECORRUPT);
    }
    free(buf);
    return 0;
}
