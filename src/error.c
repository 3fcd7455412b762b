/* error: messages for the codes of error.h. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

const char *ctrd_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
#define CTRD_ERROR_CASE(name, num, msg) \
    case num:                          \
        return msg;
        CTRD_ERRNO_MAP(CTRD_ERROR_CASE)
#undef CTRD_ERROR_CASE
    }
    return "unknown error";
}

int ctrd_fail(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, CTRD_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
