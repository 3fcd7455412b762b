/* error: the one list of ctrd error codes and their messages.
 *
 * Every function that can fail returns 0 on success or one of the negative
 * codes below. "Not found" and "try again" are codes, not failures. Setup
 * calls additionally fill a caller's char err[CTRD_ERR_LEN] with one line
 * that says what went wrong and where. */
#ifndef CTRD_ERROR_H
#define CTRD_ERROR_H

#define CTRD_ERR_LEN 256

#define CTRD_ERRNO_MAP(X)                                      \
    X(NOTFOUND, -1, "not found")                               \
    X(AGAIN, -2, "try again")                                  \
    X(IO, -3, "input/output error")                            \
    X(NOMEM, -4, "out of memory")                              \
    X(CORRUPT, -5, "data directory is corrupt")                \
    X(INVAL, -6, "invalid argument")                           \
    X(BUSY, -7, "data directory is in use by another process") \
    X(WRITEFAIL, -8, "writes fail (disk full or I/O errors)")

enum ctrd_error {
#define CTRD_ERROR_ENUM(name, code, msg) CTRD_E##name = (code),
    CTRD_ERRNO_MAP(CTRD_ERROR_ENUM)
#undef CTRD_ERROR_ENUM
};

/* Message for a code from the list above ("ok" for 0). Static storage. */
const char *ctrd_strerror(int code);

/* Formats into err (CTRD_ERR_LEN bytes) like snprintf and returns code,
 * so a failing call can be written `return ctrd_fail(err, CTRD_EIO, ...)`. */
int ctrd_fail(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
