/* query: the query command; see query.h. */
#include "query.h"

#include "adview.h"
#include "cli.h"
#include "clock.h"
#include "datadir.h"
#include "engine.h"

#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A checkpoint may replace the files between reading the manifest and
 * opening them: then read the new manifest. */
#define OPEN_ATTEMPTS 5

enum format { FMT_TABLE, FMT_JSON, FMT_CSV };

struct query_opts {
    uint64_t ad_id;
    int all;
    int64_t from_ms, to_ms;
    size_t limit;
    enum adview_sort sort;
    int ascending;
    enum format format;
};

static const char usage[] =
    "usage: ctrd query [--data DIR] (--ad ID | --all) [--from T] [--to T]\n"
    "                  [--limit N] [--sort impressions|clicks|ctr|term]\n"
    "                  [--order desc|asc] [--format table|json|csv]\n"
    "\n"
    "Per-term impressions, clicks and CTR of one ad (--ad) or of every ad\n"
    "(--all, ascending ad id), over the query minutes in [--from, --to),\n"
    "as of DIR's last checkpoint. json has the shape of\n"
    "GET /v1/ads/{id}/terms (one object per line with --all); csv has the\n"
    "header ad_id,term,impressions,clicks,ctr. On a directory a running\n"
    "ctrd holds (serve, ingest), a note on stderr says which checkpoint is\n"
    "shown and how old it is: the server's live counts are at its\n"
    "GET /v1/ads/{id}/terms.\n"
    "\n"
    "  --data DIR     data directory (default ./ctrd-data)\n"
    "  --ad ID        one ad\n"
    "  --all          every ad\n"
    "  --from T       first query minute: ms since the epoch or RFC 3339\n"
    "                 (default: all time)\n"
    "  --to T         end of the range, exclusive (default: all time)\n"
    "  --limit N      at most N terms per ad (default: all)\n"
    "  --sort S       impressions (default), clicks, ctr or term; ties by\n"
    "                 term\n"
    "  --order O      desc (default) or asc\n"
    "  --format F     table (default), json or csv\n"
    "  -h, --help     this help;  --version  ctrd's version\n";

static void write_ad(const struct query_opts *o, const struct engine *e,
                     const struct adview *v)
{
    switch (o->format) {
    case FMT_JSON:
        adview_write_json(stdout, v, engine_terms(e), engine_as_of_ms(e), 0,
                          o->limit);
        break;
    case FMT_CSV:
        adview_write_csv_rows(stdout, v, engine_terms(e), o->limit);
        break;
    case FMT_TABLE:
        adview_write_table(stdout, v, engine_terms(e), o->limit);
        break;
    }
}

static int run_query(const struct query_opts *o, const struct engine *e,
                     char *err)
{
    uint64_t one = o->ad_id, *ads = &one;
    size_t n_ads = 1;
    if (o->all && cm_ads(engine_counts(e), &ads, &n_ads) != 0)
        return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
    if (o->format == FMT_CSV)
        fputs("ad_id,term,impressions,clicks,ctr\n", stdout);
    int rc = 0;
    for (size_t i = 0; i < n_ads && rc == 0; i++) {
        struct adview v;
        rc = adview_build(engine_counts(e), engine_terms(e), ads[i], o->from_ms,
                          o->to_ms, o->sort, o->ascending, o->limit, &v, err);
        if (rc == 0)
            write_ad(o, e, &v);
        adview_free(&v);
    }
    if (o->all)
        free(ads);
    return rc;
}

/* When a running ctrd holds DIR, says on stderr that the answer is its
 * last checkpoint: which, and how old. */
static void note_if_held(const char *dir)
{
    char path[PATH_MAX], err[CTRD_ERR_LEN];
    if (!datadir_in_use(dir))
        return;
    char *facts = NULL;
    size_t len;
    unsigned long long seq = 0;
    if (datadir_read_manifest(dir, &facts, &len, err) == 0) {
        const char *p =
            strncmp(facts, "seq ", 4) == 0 ? facts : strstr(facts, "\nseq ");
        if (p)
            sscanf(p + (*p == '\n'), "seq %llu", &seq);
    }
    free(facts);
    struct stat st;
    snprintf(path, sizeof path, "%s/" DATADIR_MANIFEST, dir);
    int64_t age_s = stat(path, &st) == 0
                        ? (clock_wall_ms() / 1000 - (int64_t)st.st_mtime)
                        : -1;
    fprintf(stderr,
            "ctrd query: note: %s is in use by a running ctrd (serve or "
            "ingest); this shows its last checkpoint (#%llu, written %" PRId64
            " s ago), not what it took in since: ask the server "
            "(GET /v1/ads/{id}/terms) for live counts\n",
            dir, seq, age_s);
}

/* What the flags give. */
struct query_args {
    struct query_opts o;
    struct engine_config cfg;
    int have_ad;
};

static int on_option(void *ctx, int c, const char *arg)
{
    static const char *const sorts[] = {"impressions", "clicks", "ctr", "term"};
    static const char *const orders[] = {"desc", "asc"};
    static const char *const formats[] = {"table", "json", "csv"};
    struct query_args *q = ctx;
    struct query_opts *o = &q->o;
    uint64_t n;
    int v = 0, rc = 0;
    switch (c) {
    case 'd':
        q->cfg.data_dir = arg;
        break;
    case 'a':
        if (cli_parse_u64(arg, &o->ad_id))
            return cli_usage("query", "--ad: not an ad id: '%s'", arg);
        q->have_ad = 1;
        break;
    case 'A':
        o->all = 1;
        break;
    case 'f':
    case 't':
        if (cli_parse_time_ms(arg, c == 'f' ? &o->from_ms : &o->to_ms))
            return cli_usage("query", "%s: not a time: '%s'",
                             c == 'f' ? "--from" : "--to", arg);
        break;
    case 'l':
        if (cli_parse_u64(arg, &n))
            return cli_usage("query", "--limit: not a number: '%s'", arg);
        o->limit = (size_t)n;
        break;
    case 's':
        rc = cli_choice("query", "--sort", arg, sorts, 4, &v);
        o->sort = (enum adview_sort)v;
        break;
    case 'o':
        rc = cli_choice("query", "--order", arg, orders, 2, &o->ascending);
        break;
    case 'F':
        rc = cli_choice("query", "--format", arg, formats, 3, &v);
        o->format = (enum format)v;
        break;
    }
    return rc;
}

int query_command(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"ad", required_argument, 0, 'a'},
        {"all", no_argument, 0, 'A'},
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"limit", required_argument, 0, 'l'},
        {"sort", required_argument, 0, 's'},
        {"order", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'F'},
        {0, 0, 0, 0},
    };
    struct query_args q = {
        .o = {.from_ms = INT64_MIN, .to_ms = INT64_MAX, .limit = SIZE_MAX},
        .cfg = {.data_dir = "ctrd-data", .readonly = 1}};
    int rc = cli_parse(argc, argv, "query", usage, "h", opts, on_option, &q);
    if (rc >= 0)
        return rc;
    if (q.have_ad == q.o.all)
        return cli_usage("query", "give either --ad ID or --all");
    note_if_held(q.cfg.data_dir);
    char err[CTRD_ERR_LEN];
    struct engine *e = NULL;
    rc = CTRD_ENOTFOUND;
    for (int i = 0; i < OPEN_ATTEMPTS && rc == CTRD_ENOTFOUND; i++)
        rc = engine_open(&q.cfg, &e, err);
    if (rc == 0)
        rc = run_query(&q.o, e, err);
    engine_close(e);
    if (rc != 0) {
        fprintf(stderr, "ctrd query: %s\n", err);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
