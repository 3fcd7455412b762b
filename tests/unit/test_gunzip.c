/* Unit tests of gunzip: one member and several concatenated (RFC 1952),
 * empty members, the size cap (a bomb stops at it), and what is not gzip:
 * garbage, a cut member, bytes after the last member. */
#include "check.h"
#include "gunzip.h"

#include <stdlib.h>
#include <zlib.h>

/* Compresses data as one gzip member into out (cap bytes); its size. */
static size_t gzip_member(const void *data, size_t len, unsigned char *out,
                          size_t cap)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? n : 0;
}

static int inflate_rc(const unsigned char *in, size_t len, size_t max,
                      char **out, size_t *out_len)
{
    *out = NULL;
    return gunzip((const char *)in, len, max, out, out_len);
}

static void test_members(void)
{
    unsigned char gz[4096];
    const char *a = "{\"a\":1}\n", *b = "{\"b\":2}\n";
    size_t n1 = gzip_member(a, strlen(a), gz, sizeof gz);
    size_t n2 = gzip_member("", 0, gz + n1, sizeof gz - n1);
    size_t n3 = gzip_member(b, strlen(b), gz + n1 + n2, sizeof gz - n1 - n2);
    CHECK(n1 && n2 && n3);
    char *out;
    size_t len;
    CHECK_EQ_I64(inflate_rc(gz, n1, 1000, &out, &len), 0);
    CHECK_EQ_MEM(out, len, "{\"a\":1}\n");
    free(out);
    CHECK_EQ_I64(inflate_rc(gz, n1 + n2 + n3, 1000, &out, &len), 0);
    CHECK_EQ_MEM(out, len, "{\"a\":1}\n{\"b\":2}\n");
    free(out);
    CHECK_EQ_I64(inflate_rc(gz + n1, n2, 1000, &out, &len), 0);
    CHECK_EQ_U64(len, 0);
    free(out);
}

static void test_not_gzip(void)
{
    unsigned char gz[4096];
    const char *a = "some text that compresses\n";
    size_t n = gzip_member(a, strlen(a), gz, sizeof gz);
    char *out;
    size_t len;
    CHECK_EQ_I64(
        inflate_rc((const unsigned char *)a, strlen(a), 1000, &out, &len),
        CTRD_EINVAL);
    CHECK_EQ_I64(inflate_rc(gz, 0, 1000, &out, &len), CTRD_EINVAL);
    for (size_t cut = 1; cut < n; cut++) {
        int rc = inflate_rc(gz, cut, 1000, &out, &len);
        if (rc != CTRD_EINVAL)
            CHECK_FAIL_AT("cut to %zu bytes: rc %d", cut, rc);
    }
    memcpy(gz + n, "junk", 4);
    CHECK_EQ_I64(inflate_rc(gz, n + 4, 1000, &out, &len), CTRD_EINVAL);
    gz[n] = 0x1f; /* the start of a member, and nothing more */
    CHECK_EQ_I64(inflate_rc(gz, n + 1, 1000, &out, &len), CTRD_EINVAL);
    gz[n / 2] ^= 0x55;
    CHECK_EQ_I64(inflate_rc(gz, n, 1000, &out, &len), CTRD_EINVAL);
}

static void test_size_cap(void)
{
    size_t big = 8u << 20;
    char *zeros = calloc(1, big);
    unsigned char *gz = malloc(big / 100);
    size_t n = gzip_member(zeros, big, gz, big / 100);
    CHECK(n > 0 && n < 20000);
    char *out;
    size_t len;
    CHECK_EQ_I64(inflate_rc(gz, n, big, &out, &len), 0);
    CHECK_EQ_U64(len, big);
    free(out);
    CHECK_EQ_I64(inflate_rc(gz, n, big - 1, &out, &len), CTRD_EAGAIN);
    CHECK_EQ_I64(inflate_rc(gz, n, 1000, &out, &len), CTRD_EAGAIN);
    free(zeros);
    free(gz);
}

int main(void)
{
    RUN(test_members);
    RUN(test_not_gzip);
    RUN(test_size_cap);
    return check_done();
}
