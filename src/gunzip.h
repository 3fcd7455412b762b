/* gunzip: inflates a gzip request body (RFC 1952), every member of it —
 * concatenated members are one valid gzip stream, as `cat a.gz b.gz`
 * makes — into one buffer of at most a given size. Owns nothing beyond
 * what it returns. Any thread (the service calls it on its ingest thread,
 * never on the HTTP loop: a small body can inflate to a large one). */
#ifndef CTRD_GUNZIP_H
#define CTRD_GUNZIP_H

#include <stddef.h>

#include "error.h"

/* Inflates in[0..in_len) into a malloc'd buffer (*out, *out_len; the
 * caller frees it): 0; CTRD_EINVAL when it is not gzip, is truncated or
 * has bytes after its last member that are not another member;
 * CTRD_EAGAIN when it would inflate to more than max bytes; CTRD_ENOMEM. */
int gunzip(const char *in, size_t in_len, size_t max, char **out,
           size_t *out_len);

#endif
