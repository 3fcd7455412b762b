/* Unit tests of crc32c: the standard check values, the hardware and the
 * table paths agree at every length and alignment, and a CRC can be taken
 * in pieces. Includes crc32c.c to reach both paths. */
#include "check.h"

/* This copy's public function is renamed: the library's is linked too. */
#define crc32c crc32c_copy
#include "../../src/crc32c.c"

#include <stdlib.h>

static void test_check_values(void)
{
    CHECK_EQ_U64(crc32c(0, "123456789", 9), 0xe3069283);
    CHECK_EQ_U64(crc32c(0, "", 0), 0);
    CHECK_EQ_U64(crc32c(0x1234, NULL, 0), 0x1234);
    unsigned char zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    CHECK_EQ_U64(crc32c(0, zeros, 32), 0x8a9136aa); /* RFC 3720 B.4 */
    CHECK_EQ_U64(crc32c(0, ones, 32), 0x62a8ab43);
}

static void test_paths_agree(void)
{
    unsigned char buf[300];
    crc32c(0, "", 0); /* builds the table, finds the hardware */
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    unsigned bad = 0;
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len + off <= sizeof buf; len++) {
            uint32_t by_table = ~crc_bytes(~0u, buf + off, len);
            bad += crc32c(0, buf + off, len) != by_table;
#if defined(__x86_64__)
            if (have_hw)
                bad += ~crc_hw(~0u, buf + off, len) != by_table;
#endif
        }
    }
    CHECK_EQ_U64(bad, 0);
}

static void test_in_pieces(void)
{
    const char *s = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++)
        CHECK_EQ_U64(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
}

int main(void)
{
    RUN(test_check_values);
    RUN(test_paths_agree);
    RUN(test_in_pieces);
    return check_done();
}
