/* main: the ctrd command line — dispatches to one module per command.
 * Exit status: 0 ok, 1 runtime failure, 2 usage error (SPEC §4). */
#include "bench.h"
#include "cli.h"
#include "demo.h"
#include "gen.h"
#include "ingest.h"
#include "plan.h"
#include "query.h"
#include "serve.h"
#include "verify.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: ctrd COMMAND [ARGS]   (ctrd COMMAND --help for each)\n"
    "       ctrd -h | --help | --version\n"
    "\n"
    "ctrd measures the click-through rate of every ad for every search term:\n"
    "it joins a query log and a click log on query_id, exactly once, and\n"
    "keeps impressions and clicks per (ad, term, minute).\n"
    "\n"
    "commands:\n"
    "  ingest   batch (re)processing of query and click log files\n"
    "  query    per-term CTR table of an ad\n"
    "  gen      deterministic synthetic query and click logs\n"
    "  serve    the service: HTTP ingest, live join, JSON API, metrics\n"
    "  verify   check every checksum of a data directory, offline\n"
    "  recover  drop a damaged write-ahead log's tail (the operator's call)\n"
    "  demo     a live service to look at: serve with synthetic traffic\n"
    "  plan     NALSD capacity plan: the seed chapter's arithmetic, "
    "reproduced\n"
    "  bench    the standard benchmark: batch, streaming, latency, freshness\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } commands[] = {
        {"ingest", ingest_command}, {"query", query_command},
        {"gen", gen_command},       {"serve", serve_command},
        {"verify", verify_command}, {"recover", recover_command},
        {"demo", demo_command},     {"plan", plan_command},
        {"bench", bench_command},
    };
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0)
        return cli_common_option('h', usage);
    if (strcmp(argv[1], "--version") == 0)
        return cli_common_option(CLI_OPT_VERSION, usage);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ctrd: unknown command '%s' (see 'ctrd --help')\n",
            argv[1]);
    return 2;
}
