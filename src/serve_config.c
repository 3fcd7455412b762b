/* serve_config: `ctrd serve`'s flags; see serve_config.h. */
#include "serve_config.h"

#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: ctrd serve [--data DIR] [--listen HOST:PORT] [--ads CSV]\n"
    "                  [--auth FILE] [--insecure] [--metrics-public yes|no]\n"
    "                  [--join-window D] [--click-timeout D]\n"
    "                  [--checkpoint-every SIZE] [--memory SIZE]\n"
    "                  [--max-body SIZE] [--max-queue SIZE] [--threads N]\n"
    "                  [--access-log]\n"
    "                  [--read-threads N] [--max-connections N]\n"
    "                  [--max-connections-per-peer N]\n"
    "                  [--follow-queries FILE] [--follow-clicks FILE]\n"
    "                  [--cluster FILE --role front|joiner --name NAME]\n"
    "\n"
    "The service: HTTP ingest (POST /v1/queries, /v1/clicks: NDJSON or TSV,\n"
    "optionally gzip; answered once durable), the live join, the read API\n"
    "(GET /v1/ads/{id}/terms, /v1/ads/{id}/series,\n"
    "/v1/advertisers/{id}/ads), the dashboard page at / (/?ad=ID,\n"
    "/?advertiser=ID), /metrics, /healthz, /readyz. SIGTERM or\n"
    "SIGINT: stop accepting, finish what was accepted, checkpoint, exit 0.\n"
    "A damaged data directory is refused at start (one line: file, offset,\n"
    "what; see `ctrd verify`). While writes fail (disk full, I/O errors)\n"
    "ingest answers 507 with Retry-After, reads go on, and ingest resumes by\n"
    "itself once writes succeed.\n"
    "\n"
    "  --data DIR              data directory (default ./ctrd-data)\n"
    "  --listen HOST:PORT      default 127.0.0.1:8080\n"
    "  --ads CSV               ads catalog: ad_id,advertiser_id[,name]\n"
    "  --auth FILE             tokens: token,role[,advertiser_id] per line;\n"
    "                          roles admin, ingest, advertiser. Without it\n"
    "                          the service trusts everyone who can reach it\n"
    "                          and listens on loopback only\n"
    "  --insecure              allow a non-loopback --listen without --auth\n"
    "  --metrics-public yes|no /metrics and /healthz without a token (yes)\n"
    "  --join-window D         clicks count up to D after their query (24h)\n"
    "  --click-timeout D       how long a click waits for its query (10m)\n"
    "  --checkpoint-every SIZE checkpoint after this much log (256M, at\n"
    "                          most 4G)\n"
    "  --memory SIZE           RAM for the counts and the query store (1G,\n"
    "                          at least 16M): past it, cold counts spill to\n"
    "                          a scratch file in DIR (it has no name) and\n"
    "                          checkpoints come early\n"
    "  --max-body SIZE         largest request body, also once gunzipped\n"
    "                          (64M; 413 above)\n"
    "  --max-queue SIZE        request bytes waiting for ingest before 503\n"
    "                          (256M)\n"
    "  --threads N             engine workers (default: one per core)\n"
    "  --read-threads N        threads serving the read API (default: one\n"
    "                          per core but one, 1 to 4)\n"
    "  --access-log            one line per request on stderr, and per\n"
    "                          connection refused or evicted\n"
    "  --max-connections N     open connections (4096); when all are open,\n"
    "                          a newcomer takes the place of the one idle\n"
    "                          the longest (between requests, or silent\n"
    "                          since it connected), else gets 503. A new\n"
    "                          connection must send its first request's\n"
    "                          head within 10s\n"
    "  --max-connections-per-peer N\n"
    "                          connections of one client address (IPv6: one\n"
    "                          /64) before 503 (1024); raise it behind a\n"
    "                          proxy\n"
    "  --follow-queries FILE   tail a query log as a log shipper would:\n"
    "  --follow-clicks FILE    whole lines, exactly once, surviving rotation\n"
    "                          (rename + new file) and truncation, resuming\n"
    "                          after a restart where it stopped\n"
    "  --cluster FILE          distributed mode (docs/scale-out.md): the\n"
    "                          cluster file scripts/cluster writes (NATS\n"
    "                          and etcd addresses, partitions)\n"
    "  --role front|joiner     front: ingest front end (publishes to the\n"
    "                          stream, answers once it is replicated) and\n"
    "                          count server (the read API and page);\n"
    "                          joiner: joins the partitions it owns\n"
    "  --name NAME             this process's member name (joiner-1)\n"
    "  -h, --help              this help;  --version  ctrd's version\n";

static int is_loopback(const char *listen)
{
    return strncmp(listen, "127.", 4) == 0 ||
           strncmp(listen, "localhost:", 10) == 0 ||
           strncmp(listen, "[::1]:", 6) == 0;
}

static int parse_size_flag(const char *arg, uint64_t *v)
{
    return cli_parse_size_bytes(arg, v) == 0 && *v > 0 ? 0 : CTRD_EINVAL;
}

#define CONNECTIONS_MAX 1000000 /* --max-connections, per peer too */
#define READ_THREADS_MAX 64

/* The syntax http_server_create() takes: "HOST:PORT", "[IPV6]:PORT",
 * "localhost:PORT", ":PORT", a port up to 65535 and a numeric host. Checked
 * here so that a bad value is a usage error, before any work. */
static int listen_valid(const char *listen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    return http_listen_address(listen, &ss, &len) == 0;
}

/* getopt_long() values of the long-only options. */
enum {
    O_BODY = 256,
    O_QUEUE,
    O_METRICS,
    O_INSECURE,
    O_LOG,
    O_FOLLOW_Q,
    O_FOLLOW_C,
    O_CONNS,
    O_PEER_CONNS,
    O_READ_THREADS,
    O_CLUSTER,
    O_ROLE,
    O_NAME
};

/* Reads a measure of serve's own into o: a size or a count. */
static int parse_measure(struct serve_opts *o, int c, const char *arg)
{
    uint64_t n;
    switch (c) {
    case O_BODY:
    case O_QUEUE:
        if (parse_size_flag(arg, c == O_BODY ? &o->max_body : &o->max_queue))
            return cli_usage("serve", "bad size '%s'", arg);
        return 0;
    case O_READ_THREADS:
        if (cli_parse_u64(arg, &o->read_threads) || o->read_threads == 0 ||
            o->read_threads > READ_THREADS_MAX)
            return cli_usage("serve", "--read-threads: 1 to %u",
                             READ_THREADS_MAX);
        return 0;
    default: /* O_CONNS, O_PEER_CONNS */
        if (cli_parse_u64(arg, &n) || n == 0 || n > CONNECTIONS_MAX)
            return cli_usage("serve", "--max-connections%s: 1 to %u",
                             c == O_CONNS ? "" : "-per-peer", CONNECTIONS_MAX);
        *(c == O_CONNS ? &o->http.max_connections
                       : &o->http.max_connections_per_peer) = (unsigned)n;
        return 0;
    }
}

/* Each option but the engine's (cli_engine_option()) and the measures
 * (parse_measure()). */
static int on_option(void *ctx, int c, const char *arg)
{
    static const char *const no_yes[] = {"no", "yes"};
    static const char *const roles[] = {"front", "joiner"};
    struct serve_opts *o = ctx;
    switch (c) {
    case 'l':
        if (!listen_valid(arg))
            return cli_usage("serve",
                             "--listen %s: want HOST:PORT, [IPV6]:PORT or "
                             "localhost:PORT",
                             arg);
        o->http.listen = arg;
        return 0;
    case 'a':
        o->ads = arg;
        return 0;
    case 'A':
        o->auth = arg;
        return 0;
    case O_INSECURE:
        o->insecure = 1;
        return 0;
    case O_LOG:
        o->http.access_log = 1;
        return 0;
    case O_FOLLOW_Q:
    case O_FOLLOW_C:
        *(c == O_FOLLOW_Q ? &o->follow_queries : &o->follow_clicks) = arg;
        if (rec_format_from_name(arg, &(enum rec_format){0}) != 0)
            return cli_usage("serve",
                             "%s: unknown format (name it .ndjson, .jsonl "
                             "or .tsv)",
                             arg);
        return 0;
    case O_CLUSTER:
        o->cluster = arg;
        return 0;
    case O_NAME:
        o->name = arg;
        return 0;
    case O_ROLE:
        return cli_choice("serve", "--role", arg, roles, 2, &o->role);
    case O_METRICS:
        return cli_choice("serve", "--metrics-public", arg, no_yes, 2,
                          &o->metrics_public);
    }
    int rc = cli_engine_option("serve", c, arg, &o->core);
    return rc >= 0 ? rc : parse_measure(o, c, arg);
}

int serve_config_parse(int argc, char **argv, struct serve_opts *o)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        CLI_ENGINE_OPTIONS,
        {"listen", required_argument, 0, 'l'},
        {"ads", required_argument, 0, 'a'},
        {"auth", required_argument, 0, 'A'},
        {"insecure", no_argument, 0, O_INSECURE},
        {"metrics-public", required_argument, 0, O_METRICS},
        {"max-body", required_argument, 0, O_BODY},
        {"max-queue", required_argument, 0, O_QUEUE},
        {"read-threads", required_argument, 0, O_READ_THREADS},
        {"access-log", no_argument, 0, O_LOG},
        {"max-connections", required_argument, 0, O_CONNS},
        {"max-connections-per-peer", required_argument, 0, O_PEER_CONNS},
        {"follow-queries", required_argument, 0, O_FOLLOW_Q},
        {"follow-clicks", required_argument, 0, O_FOLLOW_C},
        {"cluster", required_argument, 0, O_CLUSTER},
        {"role", required_argument, 0, O_ROLE},
        {"name", required_argument, 0, O_NAME},
        {0, 0, 0, 0},
    };
    *o = (struct serve_opts){
        .http = {.listen = "127.0.0.1:8080"},
        .metrics_public = 1,
        .max_body = 64u << 20,
        .max_queue = 256u << 20,
        .role = -1,
    };
    cli_engine_defaults(&o->core);
    int rc = cli_parse(argc, argv, "serve", usage, "h", opts, on_option, o);
    if (rc >= 0)
        return rc;
    if (!o->auth && !o->insecure && !is_loopback(o->http.listen))
        return cli_usage("serve",
                         "--listen %s is not loopback: give --auth "
                         "FILE, or --insecure to serve everyone unchecked",
                         o->http.listen);
    if (o->cluster && (!o->name || o->role < 0))
        return cli_usage("serve", "--cluster needs --role and --name");
    if (o->role == SERVE_ROLE_JOINER && (o->follow_queries || o->follow_clicks))
        return cli_usage("serve", "--follow-* is for --role front (a joiner "
                                  "takes no records)");
    if (!o->cluster && (o->name || o->role >= 0))
        return cli_usage("serve", "--role and --name need --cluster");
    return -1; /* go on */
}
