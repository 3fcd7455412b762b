/* crc32c: CRC-32C; see crc32c.h.
 *
 * Reflected polynomial 0x82f63b78, initial and final value inverted. The
 * table path handles a byte per step; the hardware path 8 bytes per
 * instruction, the table path the unaligned head and tail. The choice is
 * made once, on the first call. */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u

static uint32_t table[256];
static int have_hw;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
        table[i] = c;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_bytes(uint32_t c, const unsigned char *p, size_t n)
{
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t c, const unsigned char *p, size_t n)
{
    size_t head = (8 - ((uintptr_t)p & 7)) & 7;
    if (head > n)
        head = n;
    c = crc_bytes(c, p, head);
    p += head;
    n -= head;
    uint64_t c64 = c;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
    }
    return crc_bytes((uint32_t)c64, p, n);
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    if (len == 0) /* data may be NULL then */
        return crc;
    pthread_once(&init_once, crc32c_init);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (have_hw)
        return ~crc_hw(c, data, len);
#endif
    return ~crc_bytes(c, data, len);
}
