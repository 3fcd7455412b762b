/* json: JSON text output; see json.h. */
#include "json.h"

void json_put_string(FILE *f, const char *s, size_t len)
{
    putc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            putc(c, f);
        }
    }
    putc('"', f);
}

void json_put_ratio(FILE *f, uint64_t num, uint64_t den)
{
    fprintf(f, "%.6f", den ? (double)num / (double)den : 0.0);
}
