/* verify: `ctrd verify` and `ctrd recover`; see verify.h. */
#include "verify.h"

#include "cli.h"
#include "datadir.h"
#include "engine.h"
#include "wal.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the checks found, printed as they are found, and the log position
 * the checkpoint names (named 0: none). */
struct findings {
    unsigned damaged, notes;
    int named;
    uint64_t wal_from;
};

static void report_damage(void *ctx, const char *problem)
{
    struct findings *f = ctx;
    f->damaged++;
    printf("damaged: %s\n", problem);
}

/* wal_check() reports damage and notes (a torn tail) alike. */
static void report_log(void *ctx, const char *line)
{
    struct findings *f = ctx;
    if (strstr(line, ": note: ")) {
        f->notes++;
        printf("note: %s\n", line);
    } else {
        report_damage(ctx, line);
    }
}

/* Files the MANIFEST does not name: a checkpoint's leftovers, and names
 * that are not ctrd's (left alone). */
static void note_strays(const char *dir, const char *facts, struct findings *f)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        enum datadir_name kind = datadir_classify(de->d_name);
        if (de->d_name[0] == '.' || kind == DATADIR_FIXED ||
            (kind == DATADIR_STATE && datadir_names_file(facts, de->d_name)))
            continue;
        f->notes++;
        printf("note: %s/%s: %s\n", dir, de->d_name,
               kind == DATADIR_STATE
                   ? "left by an unfinished checkpoint; the next checkpoint "
                     "deletes it"
                   : "not a ctrd file; left alone");
    }
    if (d)
        closedir(d);
}

/* Opens dir for checking (every damaged file reported into f) and finds
 * the log position its checkpoint names. */
static int open_checked(const char *dir, struct findings *f, struct engine **e,
                        char *err)
{
    struct engine_config cfg = {.data_dir = dir,
                                .n_workers = 1,
                                .join_window_ms = 24 * 3600000LL,
                                .retention_ms = 25 * 3600000LL,
                                .report = report_damage,
                                .report_ctx = f};
    uint64_t unused;
    int rc = engine_open(&cfg, e, err);
    if (rc == 0)
        f->named = engine_progress_get(*e, "wal", &f->wal_from, &unused) == 0;
    return rc;
}

static const char verify_usage[] =
    "usage: ctrd verify --data DIR\n"
    "\n"
    "Checks a data directory offline: the MANIFEST's checksum, every file it\n"
    "names (present, the size and checksum it recorded, every block's\n"
    "checksum, its layout, term ids and clicked pairs against what they\n"
    "name), the term dictionary, and the write-ahead log from the\n"
    "checkpoint's position. Prints one line per damaged file (damaged: FILE:\n"
    "offset N: what) and notes (a torn log tail, files the MANIFEST does not\n"
    "name), then a summary. Changes nothing. Refuses while a ctrd process\n"
    "uses the directory. Exit status: 0 clean, 1 damaged or not checkable,\n"
    "2 usage error.\n"
    "\n"
    "  --data DIR   data directory (default ./ctrd-data)\n"
    "  -h, --help   this help;  --version  ctrd's version\n";

static const char recover_usage[] =
    "usage: ctrd recover --data DIR --truncate-wal-at-damage\n"
    "\n"
    "The operator's repair of a damaged write-ahead log (what `ctrd verify`\n"
    "and a refused start report as damage in DIR/wal): drops the log from\n"
    "its first damaged byte on — the rest of that segment and every later\n"
    "one — and prints how many bytes and intact records were dropped. The\n"
    "records before the damage are kept; those dropped are lost unless\n"
    "their senders send them again (re-sent records count once). Other\n"
    "damage cannot be repaired here: restore those files from a backup.\n"
    "Exit status: 0 repaired or nothing to repair, 1 not repairable or an\n"
    "error, 2 usage error.\n"
    "\n"
    "  --data DIR                 data directory (default ./ctrd-data)\n"
    "  --truncate-wal-at-damage   drop the log from its first damage on\n"
    "  -h, --help                 this help;  --version  ctrd's version\n";

/* Parses --data DIR (and, for recover, the repair flag): -1 to go on,
 * else the exit status. */
static int parse_args(int argc, char **argv, const char *cmd, const char *usage,
                      const char **dir, int *truncate)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"truncate-wal-at-damage", no_argument, 0, 't'},
        {0, 0, 0, 0},
    };
    int c, rc;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if ((rc = cli_common_option(c, usage)) >= 0)
            return rc;
        if (c == 'd') {
            *dir = optarg;
        } else if (c == 't' && truncate) {
            *truncate = 1;
        } else {
            return cli_bad_option(cmd, argv);
        }
    }
    if ((rc = cli_no_operands(cmd, argc, argv)) >= 0)
        return rc;
    if (truncate && !*truncate)
        return cli_usage(cmd, "say what to repair: --truncate-wal-at-damage "
                              "(drops the log from its first damage on)");
    return -1;
}

int verify_command(int argc, char **argv)
{
    const char *dir = "ctrd-data";
    int rc = parse_args(argc, argv, "verify", verify_usage, &dir, NULL);
    if (rc >= 0)
        return rc;
    char err[CTRD_ERR_LEN];
    struct findings f = {0};
    struct engine *e = NULL;
    if ((rc = open_checked(dir, &f, &e, err)) != 0) {
        if (rc == CTRD_ECORRUPT) /* the MANIFEST: nothing more to check */
            report_damage(&f, err);
        fprintf(stderr, "ctrd verify: %s\n", err);
        return 1;
    }
    rc = wal_check(dir, f.named ? &f.wal_from : NULL, report_log, &f, err);
    if (rc != 0 && rc != CTRD_ECORRUPT)
        fprintf(stderr, "ctrd verify: %s\n", err);
    char *facts = NULL;
    size_t len;
    if (datadir_read_manifest(dir, &facts, &len, err) == 0)
        note_strays(dir, facts, &f);
    free(facts);
    struct engine_sizes z;
    engine_get_sizes(e, &z);
    engine_close(e);
    if (f.damaged)
        printf("ctrd verify: %s: DAMAGED: %u problem%s above\n", dir, f.damaged,
               f.damaged == 1 ? "" : "s");
    else if (rc == 0)
        printf("ctrd verify: %s: clean (%" PRIu64 " queries in %" PRIu64
               " runs, %" PRIu64 " clicked pairs, %" PRIu64 " terms, %" PRIu64
               " count buckets%s); %u note%s\n",
               dir, z.qs_queries_on_disk, z.qs_runs, z.clicked_pairs, z.terms,
               z.count_buckets, f.named ? ", the write-ahead log" : "", f.notes,
               f.notes == 1 ? "" : "s");
    return f.damaged || rc != 0 ? 1 : 0;
}

int recover_command(int argc, char **argv)
{
    const char *dir = "ctrd-data";
    int truncate = 0;
    int rc = parse_args(argc, argv, "recover", recover_usage, &dir, &truncate);
    if (rc >= 0)
        return rc;
    char err[CTRD_ERR_LEN], summary[CTRD_ERR_LEN];
    struct findings f = {0};
    struct engine *e = NULL;
    if (open_checked(dir, &f, &e, err) != 0) {
        fprintf(stderr, "ctrd recover: %s\n", err);
        return 1;
    }
    if (f.damaged) {
        fprintf(stderr,
                "ctrd recover: %s: damage above is not in the log; "
                "nothing changed (restore those files from a backup)\n",
                dir);
        rc = 1;
    } else if (!f.named) {
        printf("ctrd recover: %s: no write-ahead log; nothing to repair\n",
               dir);
        rc = 0;
    } else if ((rc = wal_cut_at_damage(dir, f.wal_from, summary, err)) != 0) {
        fprintf(stderr, "ctrd recover: %s\n", err);
        rc = 1;
    } else {
        printf("ctrd recover: %s: %s\n", dir,
               summary[0] ? summary
                          : "the log has no damage; nothing to "
                            "repair");
    }
    engine_close(e);
    return rc;
}
