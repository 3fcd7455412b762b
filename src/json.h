/* json: writing JSON text (the reader side is record.c's scanner).
 * Strings are escaped per RFC 8259 (quote, backslash, control characters as
 * \uXXXX); bytes >= 0x80 pass through (terms are valid UTF-8). Owns
 * nothing. Errors: none of its own; a write error stays in the FILE
 * (ferror), for the caller who closes it. */
#ifndef CTRD_JSON_H
#define CTRD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

void json_put_string(FILE *f, const char *s, size_t len);

/* A ratio with 6 decimals (CTR: clicks / impressions, 0 when none). */
void json_put_ratio(FILE *f, uint64_t num, uint64_t den);

#endif
