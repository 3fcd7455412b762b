/* gunzip: inflation of gzip bodies; see gunzip.h. */
#include "gunzip.h"

#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

/* Grows buf so that at least one more byte fits: 0 or CTRD_ENOMEM. */
static int grow(char **buf, size_t *cap, size_t len, size_t max)
{
    if (len < *cap)
        return 0;
    size_t want = *cap ? 2 * *cap : 65536;
    if (max < SIZE_MAX && want > max + 1)
        want = max + 1; /* one byte past max tells "too large" */
    char *grown = realloc(*buf, want);
    if (!grown)
        return CTRD_ENOMEM;
    *buf = grown;
    *cap = want;
    return 0;
}

int gunzip(const char *in, size_t in_len, size_t max, char **out,
           size_t *out_len)
{
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return CTRD_ENOMEM;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = 0, zrc = Z_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)(in_len < UINT32_MAX ? in_len : UINT32_MAX);
    size_t in_left = in_len - z.avail_in;
    while (rc == 0) {
        if (zrc == Z_STREAM_END) {
            if (z.avail_in == 0 && in_left == 0)
                break; /* the last member ended with the input */
            if (inflateReset(&z) != Z_OK)
                rc = CTRD_EINVAL;
        }
        if (rc == 0 && (rc = grow(&buf, &cap, len, max)) != 0)
            break;
        if (z.avail_in == 0 && in_left > 0) {
            z.avail_in = (uInt)(in_left < UINT32_MAX ? in_left : UINT32_MAX);
            in_left -= z.avail_in;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len);
        zrc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (len > max)
            rc = CTRD_EAGAIN;
        else if (zrc == Z_MEM_ERROR)
            rc = CTRD_ENOMEM;
        else if (zrc != Z_OK && zrc != Z_STREAM_END &&
                 !(zrc == Z_BUF_ERROR && z.avail_out == 0))
            rc = CTRD_EINVAL; /* corrupt, or input ended mid-member */
    }
    inflateEnd(&z);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf ? buf : malloc(1);
    *out_len = len;
    return *out ? 0 : CTRD_ENOMEM;
}
