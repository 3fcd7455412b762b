/* utf8: the one UTF-8 validator (RFC 3629: shortest form only, no
 * surrogates, nothing above U+10FFFF). record.c checks log lines with it,
 * catalog.c ad names. Pure functions, header only (inline: the parsers
 * call it per byte), any thread. */
#ifndef CTRD_UTF8_H
#define CTRD_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n), n >= 1; 0 if invalid
 * (overlong, surrogate, above U+10FFFF, truncated). */
static inline size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned b = s[0], lo = 0x80, hi = 0xBF;
    size_t len, i;

    if (b < 0x80)
        return 1;
    if (b < 0xC2)
        return 0;
    if (b < 0xE0) {
        len = 2;
    } else if (b < 0xF0) {
        len = 3;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b < 0xF5) {
        len = 4;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* Whether s[0..n) is all valid UTF-8 (ASCII runs skipped 8 bytes at a
 * time). */
static inline int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0, k;
    uint64_t w;

    while (i < n) {
        if (n - i >= 8) {
            memcpy(&w, s + i, 8);
            if ((w & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        k = utf8_seq(s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

#endif
