/* web: the dashboard's files (web/: the page at `/`, its scripts and styles
 * under /assets/), compiled into the binary at build time: the Makefile runs
 * scripts/web-assets, which writes web_assets.c (the arrays below) into the
 * build directory. Nothing is read from disk at run time.
 *
 * Owns nothing mutable: the table is constant, any thread may read it. */
#ifndef CTRD_WEB_H
#define CTRD_WEB_H

#include <stddef.h>

#include "error.h"

struct web_asset {
    const char *path;         /* where it is served: "/" or "/assets/NAME" */
    const char *content_type; /* e.g. "text/javascript; charset=utf-8" */
    const char *etag;         /* quoted, from a hash of the bytes */
    const unsigned char *data;
    size_t len;
};

/* Defined by the generated web_assets.c. */
extern const struct web_asset web_assets[];
extern const size_t web_asset_count;

/* The asset served at path (as requested, without the query): 0 and *out,
 * or CTRD_ENOTFOUND. */
int web_asset_find(const char *path, const struct web_asset **out);

#endif
