/* query: the query command; see query.h. */
#include "query.h"

#include "adview.h"
#include "cli.h"
#include "engine.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    "usage: ctrd query --data DIR (--ad ID | --all) [--from T] [--to T]\n"
    "                  [--limit N] [--sort impressions|clicks|ctr|term]\n"
    "                  [--order desc|asc] [--format table|json|csv]\n"
    "\n"
    "Per-term impressions, clicks and CTR of one ad (--ad) or of every ad\n"
    "(--all, ascending ad id), over the query minutes in [--from, --to)\n"
    "(ms since the epoch or RFC 3339; default all time). Terms are sorted by\n"
    "impressions, descending, ties by term. json has the shape of\n"
    "GET /v1/ads/{id}/terms (one object per line with --all); csv has the\n"
    "header ad_id,term,impressions,clicks,ctr.\n"
    "\n"
    "  --data DIR   data directory (default ./ctrd-data)\n"
    "  --limit N    at most N terms per ad (default: all)\n";

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

static int run_query(const struct query_opts *o, const struct engine *e)
{
    uint64_t *ads = &((struct query_opts *)o)->ad_id;
    size_t n_ads = 1;
    if (o->all && cm_ads(engine_counts(e), &ads, &n_ads) != 0)
        return CTRD_ENOMEM;
    if (o->format == FMT_CSV)
        fputs("ad_id,term,impressions,clicks,ctr\n", stdout);
    int rc = 0;
    for (size_t i = 0; i < n_ads && rc == 0; i++) {
        struct adview v;
        rc = adview_build(engine_counts(e), engine_terms(e), ads[i],
                          o->from_ms, o->to_ms, o->sort, o->ascending,
                          o->limit, &v);
        if (rc == 0)
            write_ad(o, e, &v);
        adview_free(&v);
    }
    if (o->all)
        free(ads);
    return rc;
}

static int parse_choice(const char *arg, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(arg, names[i]) == 0)
            return i;
    }
    return -1;
}

int query_command(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"ad", required_argument, 0, 'a'},
        {"all", no_argument, 0, 'A'},
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"limit", required_argument, 0, 'l'},
        {"sort", required_argument, 0, 's'},
        {"order", required_argument, 0, 'o'},
        {"format", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    static const char *const sorts[] = {"impressions", "clicks", "ctr", "term"};
    static const char *const orders[] = {"desc", "asc"};
    static const char *const formats[] = {"table", "json", "csv"};
    struct query_opts o = {.from_ms = INT64_MIN, .to_ms = INT64_MAX,
                           .limit = SIZE_MAX};
    struct engine_config cfg = {.data_dir = "ctrd-data", .readonly = 1};
    int have_ad = 0, c, v;
    uint64_t n;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            cfg.data_dir = optarg;
            break;
        case 'a':
            if (cli_parse_u64(optarg, &o.ad_id))
                return cli_usage("query", "--ad: not an ad id: '%s'", optarg);
            have_ad = 1;
            break;
        case 'A':
            o.all = 1;
            break;
        case 'f':
        case 't':
            if (cli_parse_time_ms(optarg, c == 'f' ? &o.from_ms : &o.to_ms))
                return cli_usage("query", "not a time: '%s'", optarg);
            break;
        case 'l':
            if (cli_parse_u64(optarg, &n))
                return cli_usage("query", "--limit: not a number: '%s'",
                                 optarg);
            o.limit = (size_t)n;
            break;
        case 's':
            if ((v = parse_choice(optarg, sorts, 4)) < 0)
                return cli_usage("query", "--sort: '%s'?", optarg);
            o.sort = (enum adview_sort)v;
            break;
        case 'o':
            if ((v = parse_choice(optarg, orders, 2)) < 0)
                return cli_usage("query", "--order: desc or asc");
            o.ascending = v;
            break;
        case 'F':
            if ((v = parse_choice(optarg, formats, 3)) < 0)
                return cli_usage("query", "--format: table, json or csv");
            o.format = (enum format)v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            return cli_usage("query", "unknown or incomplete option '%s'",
                             argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage("query", "unexpected argument '%s'", argv[optind]);
    if (have_ad == o.all)
        return cli_usage("query", "give either --ad ID or --all");
    char err[CTRD_ERR_LEN];
    struct engine *e = NULL;
    int rc = CTRD_ENOTFOUND;
    for (int i = 0; i < OPEN_ATTEMPTS && rc == CTRD_ENOTFOUND; i++)
        rc = engine_open(&cfg, &e, err);
    if (rc == 0)
        rc = run_query(&o, e);
    if (rc != 0 && e)
        snprintf(err, sizeof err, "%s", ctrd_strerror(rc));
    engine_close(e);
    if (rc != 0) {
        fprintf(stderr, "ctrd query: %s\n", err);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
