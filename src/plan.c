/* plan: `ctrd plan`; see plan.h. */
#include "plan.h"

#include "cli.h"

#include <math.h>
#include <stdio.h>

/* The chapter's inputs, each quoted from the seed line it comes from. */
enum plan_in {
    IN_QPS,         /* l.79: "500,000 search queries per second" */
    IN_CPS,         /* l.79: "10,000 ad clicks per second" */
    IN_DAY_S,       /* l.132: "8.64 × 10^4 seconds/day" */
    IN_RECORD_B,    /* l.128: "treat each query log entry as 2 KB" */
    IN_DAY_STORE,   /* l.134: "round our 86.4 TB/day up to 100 TB" */
    IN_DISK_IOPS,   /* l.138: "a common 4 TB HDD ... 200 IOPS" */
    IN_RAM_B,       /* l.144, l.290: "64 GB RAM" = 6.4 × 10^10 bytes */
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
    [IN_RAM_B] = {"machine_ram_bytes", 6.4e10, 144},
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
    printf("\n%-36s %-12s %-12s %-7s %-5s %s\n", "figure", "ctrd", "chapter",
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

static const char plan_usage[] =
    "usage: ctrd plan [--json]\n"
    "\n"
    "A NALSD capacity plan. With no flags, reproduces the seed chapter's\n"
    "arithmetic for its AdWords workload: each derived figure as ctrd\n"
    "computes it next to the chapter's stated value, the seed line and the\n"
    "inputs it comes from ('differs' where the chapter rounds).\n"
    "\n"
    "  --json         the same figures as one JSON object on stdout\n"
    "  -h, --help     this help\n"
    "  --version      print the version\n";

static int plan_on_option(void *ctx, int c, const char *arg)
{
    (void)arg;
    *(int *)ctx = c == 'j';
    return 0;
}

int plan_command(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        {"json", no_argument, NULL, 'j'},
        {0, 0, 0, 0},
    };
    int json = 0;
    int rc = cli_parse(argc, argv, "plan", plan_usage, "h", opts,
                       plan_on_option, &json);
    if (rc >= 0)
        return rc;
    struct plan_row rows[PLAN_MAX_ROWS];
    size_t n = plan_seed_rows(rows);
    if (json)
        plan_print_json(rows, n);
    else
        plan_print_table(rows, n);
    return 0;
}
