/* serve_config: `ctrd serve`'s flags — its usage text, their defaults,
 * their checks (a bad value is a usage error, exit 2, before any work)
 * and the configuration they give the service. Owns nothing; main thread. */
#ifndef CTRD_SERVE_CONFIG_H
#define CTRD_SERVE_CONFIG_H

#include <stdint.h>

#include "cli.h"
#include "http.h"

enum serve_role { SERVE_ROLE_FRONT, SERVE_ROLE_JOINER };

struct serve_opts {
    struct cli_engine_flags core; /* the engine's config, checkpoint_every */
    struct http_config http;      /* listen, access log, connection limits */
    const char *ads, *auth;       /* files, or NULL */
    const char *follow_queries, *follow_clicks; /* files, or NULL */
    /* Distributed mode (docs/scale-out.md): the cluster file, this
     * process's role and its member name; cluster NULL: one process. */
    const char *cluster, *name;
    int role; /* enum serve_role; -1 without --cluster */
    int insecure, metrics_public;
    uint64_t checkpoint_every, max_body, max_queue; /* bytes */
    uint64_t threads, read_threads;                 /* 0: the default */
};

/* Fills o from argv (argv[0] is "serve"): -1 to go on, else the exit
 * status (0 after --help or --version, 2 after a usage error, said on
 * stderr). The strings in o point into argv. */
int serve_config_parse(int argc, char **argv, struct serve_opts *o);

#endif
