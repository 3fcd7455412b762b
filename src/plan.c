/* plan: `ctrd plan`; see plan.h. */
#include "plan.h"

#include "cli.h"
#include "error.h"
#include "fsutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The chapter's inputs, each quoted from the seed line it comes from. */
enum plan_in {
    IN_QPS,         /* l.79: "500,000 search queries per second" */
    IN_CPS,         /* l.79: "10,000 ad clicks per second" */
    IN_DAY_S,       /* l.132: "8.64 × 10^4 seconds/day" */
    IN_RECORD_B,    /* l.128: "treat each query log entry as 2 KB" */
    IN_DAY_STORE,   /* l.134: "round our 86.4 TB/day up to 100 TB" */
    IN_DISK_IOPS,   /* l.138: "a common 4 TB HDD ... 200 IOPS" */
    IN_CORES,       /* l.144: "a standard machine footprint of 16 cores" */
    IN_RAM_B,       /* l.144, l.290: "64 GB RAM" = 6.4 × 10^10 bytes */
    IN_DISK_B,      /* l.138: "a common 4 TB HDD" */
    IN_NET_BITS,    /* l.144: "1 Gbps network throughput" */
    IN_ID_B,        /* l.196, l.207: a query_id or time, 8 bytes */
    IN_JOINED_B,    /* l.199-201: a joined click "less than 1 KB" */
    IN_ADVERTISERS, /* l.205: "10 million advertisers" */
    IN_ADS_EACH,    /* l.205: "with 10 ads each" */
    IN_ADS_PER_Q,   /* l.211: "three ad_ids ... for each search query" */
    IN_QUERYMAP_B,  /* l.284: "two copies of 2 TB QueryMap" */
    IN_PAXOS_MS,    /* l.274: "roughly 25 milliseconds to complete" */
    IN_REPLICAS,    /* l.278: "a replica for each log record" (doubled) */
    IN_COUNT
};

struct plan_input {
    const char *name; /* the JSON key */
    double value;
    int line; /* of the seed */
};

static const struct plan_input inputs[IN_COUNT] = {
    [IN_QPS] = {"queries_per_sec", 5e5, 79},
    [IN_CPS] = {"clicks_per_sec", 1e4, 79},
    [IN_DAY_S] = {"seconds_per_day", 8.64e4, 132},
    [IN_RECORD_B] = {"log_record_bytes", 2e3, 128},
    [IN_DAY_STORE] = {"day_store_bytes_rounded", 1e14, 134},
    [IN_DISK_IOPS] = {"disk_iops", 200, 138},
    [IN_CORES] = {"machine_cores", 16, 144},
    [IN_RAM_B] = {"machine_ram_bytes", 6.4e10, 144},
    [IN_DISK_B] = {"machine_disk_bytes", 4e12, 138},
    [IN_NET_BITS] = {"machine_network_bits_per_sec", 1e9, 144},
    [IN_ID_B] = {"id_bytes", 8, 196},
    [IN_JOINED_B] = {"joined_click_bytes", 1e3, 199},
    [IN_ADVERTISERS] = {"advertisers", 1e7, 205},
    [IN_ADS_EACH] = {"ads_per_advertiser", 10, 205},
    [IN_ADS_PER_Q] = {"ads_per_query", 3, 211},
    [IN_QUERYMAP_B] = {"querymap_bytes_rounded", 2e12, 284},
    [IN_PAXOS_MS] = {"paxos_op_ms", 25, 274},
    [IN_REPLICAS] = {"replicas", 2, 278},
};

/* One derived figure: ctrd's arithmetic and the chapter's stated value
 * (NAN: the chapter states none). */
struct plan_row {
    const char *key;  /* the JSON key */
    const char *unit; /* "B", "B/s", "bit/s", "" (a count or ratio) */
    double ctrd;      /* computed from the inputs */
    double chapter;   /* as the chapter states it */
    int line;         /* of the seed, where the chapter states it */
    const char *from; /* the arithmetic, in the inputs' names */
};

#define V(i) inputs[i].value
#define PLAN_MAX_ROWS 32

/* Fills rows[] with the chapter's arithmetic; returns how many. */
static size_t plan_seed_rows(struct plan_row *rows)
{
    const double q = V(IN_QPS), c = V(IN_CPS), day = V(IN_DAY_S);
    const double rec = V(IN_RECORD_B), id = V(IN_ID_B);
    const double paxos_ops = 1000 / V(IN_PAXOS_MS);
    const double replicated = V(IN_REPLICAS) * (q + c);
    const double tasks = replicated / paxos_ops;
    const double ram_dc = V(IN_REPLICAS) * V(IN_QUERYMAP_B);
    const double per_machine = floor(V(IN_RAM_B) * tasks / ram_dc);
    const double lj = c * rec * 8, lookup_id = c * id * 8;
    const double to_clickmap = c * V(IN_JOINED_B) * 8;
    const double ad_ids = V(IN_ADVERTISERS) * V(IN_ADS_EACH) * id;
    const double clickmap = c * day * 2 * id;
    const double task_bits = replicated * rec * 8 / tasks;
    const struct plan_row r[] = {
        {"queries_per_day", "", q * day, NAN, 132,
         "queries_per_sec x seconds_per_day"},
        {"clicks_per_day", "", c * day, NAN, 132,
         "clicks_per_sec x seconds_per_day"},
        {"ctr", "", c / q, 0.02, 128, "clicks_per_sec / queries_per_sec"},
        {"query_log_bytes_per_day", "B", q * day * rec, 8.64e13, 132,
         "queries_per_sec x seconds_per_day x log_record_bytes"},
        {"log_bytes_per_day", "B", (q + c) * day * rec, 1e14, 134,
         "(queries_per_sec + clicks_per_sec) x seconds_per_day x "
         "log_record_bytes (chapter: rounded up for indexes)"},
        {"disks_for_query_iops", "", q / V(IN_DISK_IOPS), 2500, 140,
         "queries_per_sec / disk_iops"},
        {"machines_for_day_in_ram", "", ceil(V(IN_DAY_STORE) / V(IN_RAM_B)),
         1563, 146, "ceil(day_store_bytes_rounded / machine_ram_bytes)"},
        {"logjoiner_click_bits_per_sec", "bit/s", lj, 1.6e8, 192,
         "clicks_per_sec x log_record_bytes x 8"},
        {"querystore_lookup_bits_per_sec", "bit/s", lookup_id, 6.4e5, 196,
         "clicks_per_sec x id_bytes x 8"},
        {"querystore_reply_bits_per_sec", "bit/s", lj, 1.6e8, 197,
         "clicks_per_sec x log_record_bytes x 8"},
        {"clickmap_write_bits_per_sec", "bit/s", to_clickmap, 8e7, 201,
         "clicks_per_sec x joined_click_bytes x 8"},
        {"logjoiner_total_bits_per_sec", "bit/s",
         2 * lj + lookup_id + to_clickmap, 4e8, 203, "the four rates above"},
        {"ad_id_bytes", "B", ad_ids, 8e8, 205,
         "advertisers x ads_per_advertiser x id_bytes"},
        {"clickmap_bytes_per_day", "B", clickmap, 1.4e10, 207,
         "clicks_per_sec x seconds_per_day x 2 x id_bytes"},
        {"clickmap_with_ad_ids_bytes_per_day", "B", clickmap + ad_ids, 2e10,
         209, "clickmap_bytes_per_day + ad_id_bytes (chapter: rounded up)"},
        {"querymap_bytes_per_day", "B", V(IN_ADS_PER_Q) * q * day * 2 * id,
         2e12, 213,
         "ads_per_query x queries_per_sec x seconds_per_day x 2 x id_bytes"},
        {"paxos_ops_per_sec_per_process", "", paxos_ops, 40, 274,
         "1000 / paxos_op_ms"},
        {"paxos_click_processes_per_dc", "", ceil(c / paxos_ops), 250, 274,
         "ceil(clicks_per_sec / paxos_ops_per_sec_per_process)"},
        {"replicated_events_per_sec", "", replicated, 1.02e6, 282,
         "replicas x (queries_per_sec + clicks_per_sec)"},
        {"paxos_tasks", "", ceil(tasks), 25500, 282,
         "ceil(replicated_events_per_sec / paxos_ops_per_sec_per_process)"},
        {"ram_per_dc_bytes", "B", ram_dc, 4e12, 304,
         "replicas x querymap_bytes_rounded"},
        {"ram_per_task_bytes", "B", ram_dc / tasks, 1.57e8, 286,
         "ram_per_dc_bytes / paxos_tasks"},
        {"tasks_per_machine", "", per_machine, 408, 290,
         "floor(machine_ram_bytes / ram_per_task_bytes)"},
        {"network_bits_per_sec", "bit/s", replicated * rec * 8, 1.6e10, 294,
         "replicated_events_per_sec x log_record_bytes x 8"},
        {"network_bits_per_sec_per_task", "bit/s", task_bits, 6.4e5, 298,
         "network_bits_per_sec / paxos_tasks"},
        {"network_bits_per_sec_per_machine", "bit/s", per_machine * task_bits,
         2.56e8, 302, "tasks_per_machine x network_bits_per_sec_per_task"},
        {"machines_per_dc", "", ceil(tasks / per_machine), 64, 304,
         "ceil(paxos_tasks / tasks_per_machine)"},
        {"network_share_per_machine", "",
         per_machine * task_bits / V(IN_NET_BITS), 0.25, 304,
         "network_bits_per_sec_per_machine / machine_network_bits_per_sec"},
    };
    _Static_assert(sizeof r / sizeof r[0] <= PLAN_MAX_ROWS, "rows[] size");
    size_t n = sizeof r / sizeof r[0];
    for (size_t i = 0; i < n; i++)
        rows[i] = r[i];
    return n;
}

/* v with an SI prefix (k, M, G, T) and unit, 4 significant digits; a
 * count without a unit in full. */
static void plan_format(char *buf, size_t size, double v, const char *unit)
{
    static const char prefix[] = " kMGT";
    if (isnan(v)) {
        snprintf(buf, size, "-");
        return;
    }
    if (!*unit) {
        snprintf(buf, size, "%.12g", v);
        return;
    }
    int p = 0;
    while (fabs(v) >= 1000 && p < 4) {
        v /= 1000;
        p++;
    }
    snprintf(buf, size, "%.4g %s%s", v, p ? (char[]){prefix[p], 0} : "", unit);
}

static void plan_print_table(const struct plan_row *rows, size_t n)
{
    printf("NALSD capacity plan: the seed chapter's workload "
           "(seeds/nalsd-adwords-ctr.txt)\n\ninputs:\n");
    for (int i = 0; i < IN_COUNT; i++)
        printf("  %-30s %-15.15g line %d\n", inputs[i].name, inputs[i].value,
               inputs[i].line);
    printf("\n%-36s %-12s %-12s %-8s %-5s %s\n", "figure", "ctrd", "chapter",
           "", "line", "from");
    for (size_t i = 0; i < n; i++) {
        char mine[32], theirs[32];
        plan_format(mine, sizeof mine, rows[i].ctrd, rows[i].unit);
        plan_format(theirs, sizeof theirs, rows[i].chapter, rows[i].unit);
        const char *mark = isnan(rows[i].chapter)            ? "unstated"
                           : rows[i].ctrd == rows[i].chapter ? "same"
                                                             : "differs";
        printf("%-36s %-12s %-12s %-8s %-5d %s\n", rows[i].key, mine, theirs,
               mark, rows[i].line, rows[i].from);
    }
}

static void plan_print_number(double v)
{
    if (isnan(v))
        fputs("null", stdout);
    else
        printf("%.17g", v);
}

static void plan_print_json(const struct plan_row *rows, size_t n)
{
    printf("{\"source\":\"seeds/nalsd-adwords-ctr.txt\",\"inputs\":{");
    for (int i = 0; i < IN_COUNT; i++)
        printf("%s\"%s\":{\"value\":%.17g,\"line\":%d}", i ? "," : "",
               inputs[i].name, inputs[i].value, inputs[i].line);
    printf("},\"figures\":{");
    for (size_t i = 0; i < n; i++) {
        printf("%s\"%s\":{\"ctrd\":", i ? "," : "", rows[i].key);
        plan_print_number(rows[i].ctrd);
        printf(",\"chapter\":");
        plan_print_number(rows[i].chapter);
        printf(",\"unit\":\"%s\",\"line\":%d,\"from\":\"%s\"}", rows[i].unit,
               rows[i].line, rows[i].from);
    }
    printf("}}\n");
}

/* ---- a workload given by flags, sized from `ctrd bench` figures ---- */

/* The workload; what no flag sets is the chapter's (join window and
 * retention: a day, l.134, l.213). */
struct plan_workload {
    double queries_per_sec, clicks_per_sec, ads_per_query;
    double join_window_s, retention_s;
    double machine_cores, machine_ram_bytes, machine_disk_bytes;
};

/* The per-core figures of a bench file (plan.h), NAN where missing. */
struct plan_bench {
    double v[PLAN_BENCH_KEYS];
};

static const char *const bench_keys[PLAN_BENCH_KEYS] = {
    "parse_events_per_core_s",
    "join_events_per_core_s",
    "bytes_per_query_disk",
    "ram_bytes_per_query",
};
enum { B_PARSE, B_JOIN, B_DISK, B_RAM };

/* The value after "key": in a flat JSON object text, a positive number:
 * 0 with *v set, CTRD_ENOTFOUND, or CTRD_EINVAL (not a positive number). */
static int plan_json_number(const char *text, const char *key, double *v)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\"", key);
    const char *p = strstr(text, quoted);
    if (!p)
        return CTRD_ENOTFOUND;
    p += strlen(quoted);
    while (isspace((unsigned char)*p))
        p++;
    if (*p++ != ':')
        return CTRD_EINVAL;
    char *end;
    *v = strtod(p, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == p || (*end != ',' && *end != '}') || !(*v > 0) || isinf(*v))
        return CTRD_EINVAL;
    return 0;
}

/* Reads a bench file: every key absent stays NAN. 0 or an error code with
 * err set (the file unreadable, a value not a positive number). */
static int plan_bench_read(const char *path, struct plan_bench *b, char *err)
{
    char *text;
    size_t len;
    int rc = fs_read_file(path, &text, &len, err);
    if (rc < 0)
        return rc;
    for (int i = 0; i < PLAN_BENCH_KEYS && rc == 0; i++) {
        b->v[i] = NAN;
        rc = plan_json_number(text, bench_keys[i], &b->v[i]);
        if (rc == CTRD_ENOTFOUND)
            rc = 0;
        else if (rc < 0)
            ctrd_fail(err, rc, "%s: \"%s\" is not a positive number", path,
                      bench_keys[i]);
    }
    free(text);
    return rc;
}

/* One answer: its value (NAN: a bench figure it needs is missing) and its
 * arithmetic with the numbers in. */
struct plan_need {
    const char *key, *unit;
    double value;
    char how[192];
};

#define PLAN_NEEDS 11

/* The needs of workload w from bench b, each with its arithmetic. */
static void plan_needs(const struct plan_workload *w,
                       const struct plan_bench *b, struct plan_need *n)
{
    const double r = V(IN_REPLICAS),
                 ev = w->queries_per_sec + w->clicks_per_sec;
    const double cores = r * ev * (1 / b->v[B_PARSE] + 1 / b->v[B_JOIN]);
    const double ram = r * w->queries_per_sec * w->join_window_s * b->v[B_RAM];
    const double disk = r * w->queries_per_sec * w->retention_s * b->v[B_DISK];
    const double m_cpu = ceil(cores / w->machine_cores);
    const double m_ram = ceil(ram / w->machine_ram_bytes);
    const double m_disk = ceil(disk / w->machine_disk_bytes);
    const double machines =
        isnan(m_cpu + m_ram + m_disk) ? NAN : fmax(m_cpu, fmax(m_ram, m_disk));
    const double net = r * ev * V(IN_RECORD_B) * 8;
    struct plan_need all[PLAN_NEEDS] = {
        {"impressions_per_sec", "", w->queries_per_sec * w->ads_per_query, ""},
        {"replicated_events_per_sec", "", r * ev, ""},
        {"cores", "", cores, ""},
        {"ram_bytes", "B", ram, ""},
        {"disk_bytes", "B", disk, ""},
        {"machines_for_cores", "", m_cpu, ""},
        {"machines_for_ram", "", m_ram, ""},
        {"machines_for_disk", "", m_disk, ""},
        {"machines", "", machines, ""},
        {"network_bits_per_sec", "bit/s", net, ""},
        {"network_bits_per_sec_per_machine", "bit/s", net / machines, ""},
    };
    const char *const how[PLAN_NEEDS] = {
        "queries_per_sec x ads_per_query = %g x %g",
        "replicas x (queries_per_sec + clicks_per_sec) = %g x (%g + %g)",
        "replicated_events_per_sec x (1/parse_events_per_core_s + "
        "1/join_events_per_core_s) = %g x (1/%g + 1/%g)",
        "replicas x queries_per_sec x join_window_s x ram_bytes_per_query = "
        "%g x %g x %g x %g",
        "replicas x queries_per_sec x retention_s x bytes_per_query_disk = "
        "%g x %g x %g x %g",
        "ceil(cores / machine_cores) = ceil(%.6g / %g)",
        "ceil(ram_bytes / machine_ram_bytes) = ceil(%.6g / %.6g)",
        "ceil(disk_bytes / machine_disk_bytes) = ceil(%.6g / %.6g)",
        "max(machines_for_cores, machines_for_ram, machines_for_disk) = "
        "max(%g, %g, %g)",
        "replicated_events_per_sec x log_record_bytes (chapter l.128) x 8 = %g "
        "x %g x 8",
        "network_bits_per_sec / machines = %.6g / %g",
    };
    const double args[PLAN_NEEDS][4] = {
        {w->queries_per_sec, w->ads_per_query},
        {r, w->queries_per_sec, w->clicks_per_sec},
        {r * ev, b->v[B_PARSE], b->v[B_JOIN]},
        {r, w->queries_per_sec, w->join_window_s, b->v[B_RAM]},
        {r, w->queries_per_sec, w->retention_s, b->v[B_DISK]},
        {cores, w->machine_cores},
        {ram, w->machine_ram_bytes},
        {disk, w->machine_disk_bytes},
        {m_cpu, m_ram, m_disk},
        {r * ev, V(IN_RECORD_B)},
        {net, machines},
    };
    for (int i = 0; i < PLAN_NEEDS; i++) {
        n[i] = all[i];
        snprintf(n[i].how, sizeof n[i].how, how[i], args[i][0], args[i][1],
                 args[i][2], args[i][3]);
    }
}

static void plan_print_needs(const struct plan_need *n, const char *missing)
{
    for (int i = 0; i < PLAN_NEEDS; i++) {
        char v[32];
        plan_format(v, sizeof v, n[i].value, n[i].unit);
        printf("%-34s %-14s %s\n", n[i].key, isnan(n[i].value) ? "missing" : v,
               n[i].how);
    }
    if (*missing)
        printf("\nmissing per-core figures (run `ctrd bench` and pass --bench "
               "FILE):%s\n",
               missing);
}

static void plan_print_needs_json(const struct plan_workload *w,
                                  const struct plan_need *n,
                                  const char *missing)
{
    printf("{\"workload\":{\"queries_per_sec\":%.17g,\"clicks_per_sec\":%.17g,"
           "\"ads_per_query\":%.17g,\"join_window_s\":%.17g,"
           "\"retention_s\":%.17g,\"machine_cores\":%.17g,"
           "\"machine_ram_bytes\":%.17g,\"machine_disk_bytes\":%.17g},"
           "\"needs\":{",
           w->queries_per_sec, w->clicks_per_sec, w->ads_per_query,
           w->join_window_s, w->retention_s, w->machine_cores,
           w->machine_ram_bytes, w->machine_disk_bytes);
    for (int i = 0; i < PLAN_NEEDS; i++) {
        printf("%s\"%s\":{\"value\":", i ? "," : "", n[i].key);
        plan_print_number(n[i].value);
        printf(",\"unit\":\"%s\",\"arithmetic\":\"%s\"}", n[i].unit, n[i].how);
    }
    printf("},\"missing\":[");
    for (const char *p = missing, *sep = ""; *p; sep = ",") {
        p++; /* the space before each key */
        size_t len = strcspn(p, " ");
        printf("%s\"%.*s\"", sep, (int)len, p);
        p += len;
    }
    printf("]}\n");
}

/* Prints the plan of workload w, sized from bench file path (NULL: none,
 * every figure that needs one said missing). Returns the exit status. */
static int plan_workload_run(const struct plan_workload *w, const char *path,
                             int json)
{
    struct plan_bench b = {{NAN, NAN, NAN, NAN}};
    char err[CTRD_ERR_LEN], missing[160] = "";
    if (path && plan_bench_read(path, &b, err) < 0) {
        fprintf(stderr, "ctrd plan: %s\n", err);
        return 1;
    }
    for (int i = 0; i < PLAN_BENCH_KEYS; i++) {
        if (isnan(b.v[i])) {
            strcat(missing, " ");
            strcat(missing, bench_keys[i]);
        }
    }
    struct plan_need n[PLAN_NEEDS];
    plan_needs(w, &b, n);
    if (json)
        plan_print_needs_json(w, n, missing);
    else
        plan_print_needs(n, missing);
    return 0;
}

static const char plan_usage[] =
    "usage: ctrd plan [--json]\n"
    "       ctrd plan [--queries-per-sec N] [--clicks-per-sec N]\n"
    "                 [--ads-per-query N] [--join-window D] [--retention D]\n"
    "                 [--machine-cores N] [--machine-ram SIZE]\n"
    "                 [--machine-disk SIZE] [--bench FILE] [--json]\n"
    "\n"
    "A NALSD capacity plan. With no workload flags, reproduces the seed\n"
    "chapter's arithmetic for its AdWords workload: each derived figure as\n"
    "ctrd computes it next to the chapter's stated value, the seed line and\n"
    "the inputs it comes from ('differs' where the chapter rounds).\n"
    "With any workload flag (the others keep the chapter's workload), states\n"
    "the cores, RAM, disk, machines and network ctrd needs, replicated as the\n"
    "chapter replicates (2 shards per record), each with its arithmetic,\n"
    "from the per-core figures of --bench FILE (`ctrd bench`'s JSON);\n"
    "without it, those figures are said missing.\n"
    "\n"
    "  --queries-per-sec N   search queries a second (500000)\n"
    "  --clicks-per-sec N    ad clicks a second (10000)\n"
    "  --ads-per-query N     ads shown per query (3)\n"
    "  --join-window D       how long queries are held for clicks (24h)\n"
    "  --retention D         how long queries are kept on disk (24h)\n"
    "  --machine-cores N     cores of a machine (16)\n"
    "  --machine-ram SIZE    RAM of a machine (the chapter's 64 GB)\n"
    "  --machine-disk SIZE   disk of a machine (the chapter's 4 TB)\n"
    "  --bench FILE          per-core figures measured by `ctrd bench`\n"
    "  --json                the same figures as one JSON object on stdout\n"
    "  -h, --help            this help\n"
    "  --version             print the version\n";

enum {
    OPT_QPS = 0x100,
    OPT_CPS,
    OPT_ADS,
    OPT_JOIN,
    OPT_RETENTION,
    OPT_CORES,
    OPT_RAM,
    OPT_DISK,
    OPT_BENCH,
    OPT_JSON,
};

struct plan_args {
    int json, workload; /* workload: any workload flag or --bench given */
    const char *bench;
    struct plan_workload w;
};

/* arg as a positive number of the given kind into *v: 0 or 2 (usage). */
static int plan_number(int c, const char *arg, double *v)
{
    uint64_t u;
    int64_t ms;
    char *end;
    int rc = 0;
    if (c == OPT_JOIN || c == OPT_RETENTION) {
        rc = cli_parse_duration_ms(arg, &ms);
        *v = ms / 1000.0;
    } else if (c == OPT_RAM || c == OPT_DISK) {
        rc = cli_parse_size_bytes(arg, &u);
        *v = (double)u;
    } else {
        *v = strtod(arg, &end);
        rc = *end || end == arg || isinf(*v) ? CTRD_EINVAL : 0;
    }
    if (rc == 0 && *v > 0)
        return 0;
    return cli_usage("plan", "'%s' is not a positive %s", arg,
                     c == OPT_JOIN || c == OPT_RETENTION ? "duration"
                     : c == OPT_RAM || c == OPT_DISK     ? "size"
                                                         : "number");
}

static int plan_on_option(void *ctx, int c, const char *arg)
{
    struct plan_args *a = ctx;
    double *field[] = {
        [OPT_QPS - OPT_QPS] = &a->w.queries_per_sec,
        [OPT_CPS - OPT_QPS] = &a->w.clicks_per_sec,
        [OPT_ADS - OPT_QPS] = &a->w.ads_per_query,
        [OPT_JOIN - OPT_QPS] = &a->w.join_window_s,
        [OPT_RETENTION - OPT_QPS] = &a->w.retention_s,
        [OPT_CORES - OPT_QPS] = &a->w.machine_cores,
        [OPT_RAM - OPT_QPS] = &a->w.machine_ram_bytes,
        [OPT_DISK - OPT_QPS] = &a->w.machine_disk_bytes,
    };
    if (c == OPT_JSON) {
        a->json = 1;
        return 0;
    }
    a->workload = 1;
    if (c == OPT_BENCH) {
        a->bench = arg;
        return 0;
    }
    return plan_number(c, arg, field[c - OPT_QPS]);
}

int plan_command(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"queries-per-sec", required_argument, NULL, OPT_QPS},
        {"clicks-per-sec", required_argument, NULL, OPT_CPS},
        {"ads-per-query", required_argument, NULL, OPT_ADS},
        {"join-window", required_argument, NULL, OPT_JOIN},
        {"retention", required_argument, NULL, OPT_RETENTION},
        {"machine-cores", required_argument, NULL, OPT_CORES},
        {"machine-ram", required_argument, NULL, OPT_RAM},
        {"machine-disk", required_argument, NULL, OPT_DISK},
        {"bench", required_argument, NULL, OPT_BENCH},
        {"json", no_argument, NULL, OPT_JSON},
        {0, 0, 0, 0},
    };
    struct plan_args a = {
        .w = {V(IN_QPS), V(IN_CPS), V(IN_ADS_PER_Q), V(IN_DAY_S), V(IN_DAY_S),
              V(IN_CORES), V(IN_RAM_B), V(IN_DISK_B)},
    };
    int rc = cli_parse(argc, argv, "plan", plan_usage, "h", opts,
                       plan_on_option, &a);
    if (rc >= 0)
        return rc;
    if (a.workload)
        return plan_workload_run(&a.w, a.bench, a.json);
    struct plan_row rows[PLAN_MAX_ROWS];
    size_t n = plan_seed_rows(rows);
    if (a.json)
        plan_print_json(rows, n);
    else
        plan_print_table(rows, n);
    return 0;
}
