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
    struct cli_engine_flags flags;
    cli_engine_defaults(&flags);
    struct engine_config *cfg = &flags.engine;
    cfg->data_dir = dir;
    cfg->n_workers = 1;
    cfg->report = report_damage;
    cfg->report_ctx = f;
    uint64_t unused;
    int rc = engine_open(cfg, e, err);
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

/* What the flags of verify and recover give. */
struct args {
    const char *dir;
    int truncate;
};

static int on_option(void *ctx, int c, const char *arg)
{
    struct args *a = ctx;
    if (c == 'd')
        a->dir = arg;
    else
        a->truncate = 1; /* 't': recover's table only */
    return 0;
}

/* Parses --data DIR (and, for recover, the repair flag): -1 to go on,
 * else the exit status. */
static int parse_args(int argc, char **argv, int recover, struct args *a)
{
    static const struct option verify_opts[] = {
        CLI_COMMON_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {0, 0, 0, 0},
    };
    static const struct option recover_opts[] = {
        CLI_COMMON_OPTIONS,
        {"data", required_argument, 0, 'd'},
        {"truncate-wal-at-damage", no_argument, 0, 't'},
        {0, 0, 0, 0},
    };
    *a = (struct args){.dir = "ctrd-data"};
    int rc = recover ? cli_parse(argc, argv, "recover", recover_usage, "h",
                                 recover_opts, on_option, a)
                     : cli_parse(argc, argv, "verify", verify_usage, "h",
                                 verify_opts, on_option, a);
    if (rc < 0 && recover && !a->truncate)
        return cli_usage("recover",
                         "say what to repair: "
                         "--truncate-wal-at-damage (drops the log from its "
                         "first damage on)");
    return rc;
}

/* One run of verify or recover: its flags, what the checks found, the
 * opened directory. */
struct run {
    struct args a;
    struct findings f;
    struct engine *e;
    char err[CTRD_ERR_LEN];
};

/* Parses the flags and opens the directory, each damaged file reported:
 * -1 to go on, else the exit status. */
static int start(int argc, char **argv, int recover, struct run *r)
{
    int rc = parse_args(argc, argv, recover, &r->a);
    if (rc >= 0)
        return rc;
    r->f = (struct findings){0};
    r->e = NULL;
    if ((rc = open_checked(r->a.dir, &r->f, &r->e, r->err)) == 0)
        return -1;
    if (rc == CTRD_ECORRUPT && !recover) /* the MANIFEST: nothing more */
        report_damage(&r->f, r->err);
    fprintf(stderr, "ctrd %s: %s\n", recover ? "recover" : "verify", r->err);
    return 1;
}

int verify_command(int argc, char **argv)
{
    struct run r;
    int rc = start(argc, argv, 0, &r);
    if (rc >= 0)
        return rc;
    const char *dir = r.a.dir;
    rc = wal_check(dir, r.f.named ? &r.f.wal_from : NULL, report_log, &r.f,
                   r.err);
    if (rc != 0 && rc != CTRD_ECORRUPT)
        fprintf(stderr, "ctrd verify: %s\n", r.err);
    char *facts = NULL;
    size_t len;
    if (datadir_read_manifest(dir, &facts, &len, r.err) == 0)
        note_strays(dir, facts, &r.f);
    free(facts);
    struct engine_sizes z;
    engine_get_sizes(r.e, &z);
    engine_close(r.e);
    if (r.f.damaged)
        printf("ctrd verify: %s: DAMAGED: %u problem%s above\n", dir,
               r.f.damaged, r.f.damaged == 1 ? "" : "s");
    else if (rc == 0)
        printf("ctrd verify: %s: clean (%" PRIu64 " queries in %" PRIu64
               " runs, %" PRIu64 " clicked pairs, %" PRIu64 " terms, %" PRIu64
               " count buckets%s); %u note%s\n",
               dir, z.qs_queries_on_disk, z.qs_runs, z.clicked_pairs, z.terms,
               z.count_buckets, r.f.named ? ", the write-ahead log" : "",
               r.f.notes, r.f.notes == 1 ? "" : "s");
    return r.f.damaged || rc != 0 ? 1 : 0;
}

int recover_command(int argc, char **argv)
{
    struct run r;
    int rc = start(argc, argv, 1, &r);
    if (rc >= 0)
        return rc;
    const char *dir = r.a.dir;
    char summary[CTRD_ERR_LEN];
    if (r.f.damaged) {
        fprintf(stderr,
                "ctrd recover: %s: damage above is not in the log; "
                "nothing changed (restore those files from a backup)\n",
                dir);
        rc = 1;
    } else if (!r.f.named) {
        printf("ctrd recover: %s: no write-ahead log; nothing to repair\n",
               dir);
        rc = 0;
    } else if ((rc = wal_cut_at_damage(dir, r.f.wal_from, summary, r.err)) !=
               0) {
        fprintf(stderr, "ctrd recover: %s\n", r.err);
        rc = 1;
    } else {
        printf("ctrd recover: %s: %s\n", dir,
               summary[0] ? summary
                          : "the log has no damage; nothing to "
                            "repair");
    }
    engine_close(r.e);
    return rc;
}
