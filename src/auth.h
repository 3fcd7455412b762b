/* auth: access control (SPEC §6) — who a request is, from its
 * "Authorization: Bearer TOKEN" header and the tokens file.
 *
 * Tokens file: one "token,role[,advertiser_id]" per line; roles admin,
 * ingest, advertiser (advertiser needs its advertiser_id, a decimal u64;
 * the others take none); lines end with LF or CRLF; blank lines and lines
 * starting with '#' are skipped (so a token cannot start with '#').
 * Tokens are 1..256 bytes of printable ASCII without ',' or spaces
 * (0x21..0x7e); a token listed twice, or a file without tokens, is an
 * error.
 *
 * Owns the tokens. Lookups compare the presented token with every token in
 * constant time (no early exit, same work whatever matches), so timing
 * tells nothing about tokens. Tokens never appear in error messages.
 * Read-only after load: any thread.
 *
 * Errors: 0 or a negative CTRD_E* code (error.h): a bad tokens file is
 * CTRD_EINVAL (err names file and line); a token nobody holds is
 * CTRD_ENOTFOUND, not a failure. */
#ifndef CTRD_AUTH_H
#define CTRD_AUTH_H

#include <stdint.h>

#include "error.h"

enum auth_role { AUTH_ADMIN, AUTH_INGEST, AUTH_ADVERTISER };

/* "admin", "ingest" or "advertiser": the role's name in tokens files and
 * answers. Static storage. */
const char *auth_role_name(enum auth_role role);

struct auth_identity {
    enum auth_role role;
    uint64_t advertiser_id; /* for AUTH_ADVERTISER */
};

struct auth;

/* Errors name the file and line, never the token. auth_free(NULL) is a
 * no-op. */
int auth_load(const char *path, struct auth **out, char *err);
void auth_free(struct auth *a);

/* Who presents this Authorization header value ("Bearer TOKEN": the scheme
 * in any case, then one or more spaces or tabs; spaces and tabs around the
 * value are ignored): 0 and *who, or CTRD_ENOTFOUND (absent, i.e. NULL,
 * malformed or unknown). */
int auth_check(const struct auth *a, const char *authorization,
               struct auth_identity *who);

#endif
