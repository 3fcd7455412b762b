/* ingest: the batch ingest command; see ingest.h.
 *
 * READER. A buffer of n_workers * CHUNK_BYTES is refilled from the input
 * and cut into up to n_workers chunks, each ending at a line end (or at
 * EOF). A line longer than a whole chunk cannot be valid (the line limit is
 * far below CHUNK_BYTES): its first REC_LINE_MAX + 2 bytes go to the parser,
 * which rejects them as line_too_long, and the rest of it is skipped.
 * Progress is recorded only at line boundaries. */
#include "ingest.h"

#include "cli.h"
#include "engine.h"
#include "hash.h"
#include "json.h"
#include "sharder.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES ((size_t)4 << 20)
#define FINGERPRINT_BYTES 4096

struct input {
    const char *path;
    enum engine_kind kind;
    enum rec_format fmt;
};

struct reader {
    int fd;
    char *buf;
    size_t cap, len, pos;
    int eof, skipping;
    uint64_t base;   /* input offset of buf[0] */
    uint64_t line;   /* number of the next line */
    uint64_t size;   /* input size when known, else 0 */
};

struct ingest {
    struct engine *e;
    struct input *inputs;
    unsigned n_inputs;
    int forced_format; /* -1: by extension */
    const char *report_path;
    uint64_t checkpoint_every;
    uint64_t since_checkpoint;
    int quiet, tty;
    double started, last_progress;
    char err[CTRD_ERR_LEN];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- reading chunks ---- */

static int reader_fill(struct reader *r)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->base += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    while (!r->eof && r->len < r->cap) {
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            r->eof = 1;
        r->len += (size_t)n;
    }
    return 0;
}

static uint64_t count_lines(const char *p, size_t len)
{
    uint64_t n = 0;
    const char *end = p + len;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* Drops the rest of an over-long line; 1 while more of it may follow. */
static int reader_skip(struct reader *r)
{
    const char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
    if (!nl) {
        r->pos = r->len;
        r->skipping = !r->eof;
        return r->skipping;
    }
    r->pos = (size_t)(nl - r->buf) + 1;
    r->skipping = 0;
    return 0;
}

/* Cuts up to max chunks from the buffer; returns how many. */
static unsigned reader_cut(struct reader *r, struct engine_chunk *chunks,
                           unsigned max, uint32_t input)
{
    unsigned n = 0;
    while (n < max && r->pos < r->len && !r->skipping) {
        size_t avail = r->len - r->pos;
        size_t take = avail < CHUNK_BYTES ? avail : CHUNK_BYTES;
        const char *start = r->buf + r->pos;
        if (!(r->eof && take == avail)) {
            const char *nl = memrchr(start, '\n', take);
            if (nl) {
                take = (size_t)(nl - start) + 1;
            } else if (take < CHUNK_BYTES) {
                break; /* the line goes on past the buffer: refill */
            } else {
                take = REC_LINE_MAX + 2; /* too long even without a CR */
                r->skipping = 1;
            }
        }
        chunks[n++] = (struct engine_chunk){start, take, r->line, input};
        r->line += r->skipping ? 1 : count_lines(start, take);
        if (!r->skipping && take > 0 && start[take - 1] != '\n')
            r->line++; /* the last line of the input, without LF */
        r->pos += take;
    }
    return n;
}

/* ---- progress display ---- */

static void show_progress(struct ingest *g, const struct input *in,
                          const struct reader *r, int final)
{
    double t = now_s();
    if (!g->tty || g->quiet || (!final && t - g->last_progress < 0.5))
        return;
    g->last_progress = t;
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    double rate = (double)(s.query_lines + s.click_lines) /
                  (t - g->started > 1e-3 ? t - g->started : 1e-3);
    uint64_t done = r->base + r->pos;
    fprintf(stderr, "\r\033[K%s: %" PRIu64 " lines, %.2f M lines/s", in->path,
            r->line - 1, rate / 1e6);
    if (r->size > 0 && done <= r->size) {
        double bytes_rate = (double)done / (t - g->started + 1e-9);
        fprintf(stderr, ", %.0f%%, ETA %.0f s", 100.0 * (double)done / (double)r->size,
                bytes_rate > 0 ? (double)(r->size - done) / bytes_rate : 0);
    }
    if (final)
        fputc('\n', stderr);
}

/* ---- one input ---- */

/* A key for the input's progress: its real path and its first bytes, so a
 * different file at the same path starts from the beginning. */
static int input_key(int fd, const char *path, char *key, size_t key_len)
{
    char real[PATH_MAX], head[FINGERPRINT_BYTES];
    if (!realpath(path, real))
        return -1;
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n < 0)
        return -1;
    uint64_t h = hash_bytes(real, strlen(real)) ^
                 hash_u64(hash_bytes(head, (size_t)n));
    snprintf(key, key_len, "%016" PRIx64, h);
    return 0;
}

static int checkpoint(struct ingest *g)
{
    g->since_checkpoint = 0;
    return engine_checkpoint(g->e, g->err);
}

static int ingest_input(struct ingest *g, uint32_t idx)
{
    const struct input *in = &g->inputs[idx];
    int is_stdin = strcmp(in->path, "-") == 0;
    struct reader r = {.fd = is_stdin ? 0 : open(in->path, O_RDONLY | O_CLOEXEC),
                       .line = 1};
    if (r.fd < 0)
        return ctrd_fail(g->err, CTRD_EIO, "cannot open %s: %s", in->path,
                         strerror(errno));
    char key[32] = "";
    struct stat st;
    if (!is_stdin && fstat(r.fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r.size = (uint64_t)st.st_size;
        uint64_t offset, lines;
        if (input_key(r.fd, in->path, key, sizeof key) == 0 &&
            engine_progress_get(g->e, key, &offset, &lines) == 0 &&
            offset <= r.size && lseek(r.fd, (off_t)offset, SEEK_SET) >= 0) {
            r.base = offset;
            r.line = lines + 1;
        }
    }
    unsigned workers = engine_workers(g->e);
    r.cap = (size_t)workers * CHUNK_BYTES;
    r.buf = malloc(r.cap);
    struct engine_chunk *chunks = malloc(workers * sizeof *chunks);
    int rc = (r.buf && chunks) ? 0 : ctrd_fail(g->err, CTRD_ENOMEM,
                                                 "out of memory");
    while (rc == 0) {
        if (reader_fill(&r) != 0) {
            rc = ctrd_fail(g->err, CTRD_EIO, "cannot read %s: %s", in->path,
                           strerror(errno));
            break;
        }
        if (r.skipping && reader_skip(&r))
            continue;
        unsigned n = reader_cut(&r, chunks, workers, idx);
        if (n == 0 && r.pos == r.len && r.eof && !r.skipping)
            break;
        if (n == 0)
            continue;
        uint64_t before = r.base;
        size_t bytes = 0;
        for (unsigned i = 0; i < n; i++)
            bytes += chunks[i].len;
        rc = engine_process(g->e, in->kind, in->fmt, chunks, n, wall_ms(),
                            g->err);
        if (rc == 0 && key[0] && !r.skipping)
            rc = engine_progress_set(g->e, key, before + r.pos, r.line - 1);
        g->since_checkpoint += bytes;
        if (rc == 0 && g->since_checkpoint >= g->checkpoint_every)
            rc = checkpoint(g);
        show_progress(g, in, &r, 0);
    }
    if (rc == 0)
        show_progress(g, in, &r, 1);
    free(r.buf);
    free(chunks);
    if (!is_stdin)
        close(r.fd);
    return rc;
}

/* ---- the report ---- */

static void write_report(struct ingest *g, FILE *f)
{
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    fprintf(f,
            "{\"queries\":{\"lines\":%" PRIu64 ",\"accepted\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64 "},\n",
            s.query_lines, s.join.queries_accepted, s.join.queries_duplicate,
            s.queries_rejected);
    fprintf(f,
            " \"clicks\":{\"lines\":%" PRIu64 ",\"joined\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64
            ",\"pending\":%" PRIu64 ",\"unjoined\":%" PRIu64 "},\n",
            s.click_lines, s.join.clicks_joined, s.join.clicks_duplicate,
            s.clicks_rejected, s.clicks_pending, s.join.clicks_unjoined);
    fputs(" \"rejects\":{", f);
    const char *sep = "";
    for (int r = 0; r < REC_REASON_COUNT; r++) {
        if (!s.rejects[r])
            continue;
        fprintf(f, "%s\"%s\":%" PRIu64, sep, rec_reason_name(r), s.rejects[r]);
        sep = ",";
    }
    fputs("},\n \"first_rejects\":[", f);
    for (size_t i = 0; i < s.n_samples; i++) {
        const struct engine_reject *x = &s.samples[i];
        const char *file = x->input < g->n_inputs ? g->inputs[x->input].path
                                                  : "(earlier run)";
        fputs(i ? ",\n  {\"file\":" : "\n  {\"file\":", f);
        json_put_string(f, file, strlen(file));
        fprintf(f, ",\"line\":%" PRIu64 ",\"reason\":\"%s\"}", x->line,
                rec_reason_name(x->reason));
    }
    fputs("]}\n", f);
}

static int finish(struct ingest *g)
{
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    double secs = now_s() - g->started;
    if (!g->quiet)
        fprintf(stderr,
                "ctrd ingest: %" PRIu64 " query lines (%" PRIu64
                " accepted, %" PRIu64 " duplicates, %" PRIu64
                " rejected), %" PRIu64 " click lines (%" PRIu64
                " joined, %" PRIu64 " duplicates, %" PRIu64
                " rejected, %" PRIu64 " pending) in %.2f s, %.0f lines/s\n",
                s.query_lines, s.join.queries_accepted,
                s.join.queries_duplicate, s.queries_rejected, s.click_lines,
                s.join.clicks_joined, s.join.clicks_duplicate,
                s.clicks_rejected, s.clicks_pending, secs,
                (double)(s.query_lines + s.click_lines) / (secs + 1e-9));
    if (!g->report_path)
        return 0;
    FILE *f = fopen(g->report_path, "w");
    if (!f)
        return ctrd_fail(g->err, CTRD_EIO, "cannot write %s: %s",
                         g->report_path, strerror(errno));
    write_report(g, f);
    if (fclose(f) != 0)
        return ctrd_fail(g->err, CTRD_EIO, "cannot write %s",
                         g->report_path);
    return 0;
}

/* ---- command line ---- */

static const char usage[] =
    "usage: ctrd ingest --data DIR [--queries FILE...] [--clicks FILE...]\n"
    "                   [--format ndjson|tsv] [--report FILE]\n"
    "                   [--join-window D] [--click-timeout D]\n"
    "                   [--checkpoint-every SIZE] [--threads N] [--quiet]\n"
    "\n"
    "Batch (re)processing of complete query and click logs into the store in\n"
    "DIR, on all cores. All query files are processed before the click files.\n"
    "FILE '-' is standard input. The format comes from the extension\n"
    "(.ndjson/.jsonl or .tsv) unless --format is given.\n"
    "\n"
    "Exactly once: progress per input is committed with the counts, so a run\n"
    "that was interrupted (even by kill -9) is simply run again, and running\n"
    "a completed ingest again changes no count. Clicks whose query has not\n"
    "arrived wait (across runs) up to --click-timeout of processing time.\n"
    "\n"
    "  --data DIR              data directory (default ./ctrd-data)\n"
    "  --queries FILE...       query log files\n"
    "  --clicks FILE...        click log files\n"
    "  --format F              ndjson or tsv for every file\n"
    "  --report FILE           write a JSON report: counts, rejects per\n"
    "                          reason, the first 100 rejects (file:line)\n"
    "  --join-window D         clicks count up to D after their query (24h)\n"
    "  --click-timeout D       how long a click waits for its query (10m)\n"
    "  --checkpoint-every SIZE commit after this much input (256M)\n"
    "  --threads N             worker threads (default: one per core)\n"
    "  --quiet                 no progress or summary on stderr\n";

static int format_of(const char *path, int forced, enum rec_format *fmt)
{
    if (forced < 0)
        return rec_format_from_name(path, fmt);
    *fmt = (enum rec_format)forced;
    return 0;
}

static int add_input(struct ingest *g, const char *path, enum engine_kind k)
{
    struct input *in = realloc(g->inputs, (g->n_inputs + 1) * sizeof *in);
    if (!in)
        return -1;
    g->inputs = in;
    in[g->n_inputs++] = (struct input){path, k, REC_NDJSON};
    return 0;
}

/* Orders inputs: queries first, each kind in command-line order. */
static void order_inputs(struct ingest *g)
{
    unsigned k = 0;
    struct input tmp;
    for (unsigned i = 0; i < g->n_inputs; i++) {
        if (g->inputs[i].kind != ENGINE_QUERIES)
            continue;
        tmp = g->inputs[i];
        memmove(g->inputs + k + 1, g->inputs + k, (i - k) * sizeof tmp);
        g->inputs[k++] = tmp;
    }
}

int ingest_command(int argc, char **argv)
{
    enum { OPT_JOIN = 256, OPT_TIMEOUT, OPT_CKPT, OPT_THREADS };
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"queries", required_argument, 0, 'q'},
        {"clicks", required_argument, 0, 'c'},
        {"format", required_argument, 0, 'f'},
        {"report", required_argument, 0, 'r'},
        {"join-window", required_argument, 0, OPT_JOIN},
        {"click-timeout", required_argument, 0, OPT_TIMEOUT},
        {"checkpoint-every", required_argument, 0, OPT_CKPT},
        {"threads", required_argument, 0, OPT_THREADS},
        {"quiet", no_argument, 0, 'Q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct engine_config cfg = {.data_dir = "ctrd-data",
                                .join_window_ms = 24 * 3600000LL,
                                .click_timeout_ms = 10 * 60000LL};
    struct ingest g = {.forced_format = -1, .checkpoint_every = 256u << 20};
    enum engine_kind current = ENGINE_QUERIES;
    int have_kind = 0, c, rc = 2;
    uint64_t threads = 0;
    optind = 1;
    opterr = 0;
    /* "-" lets FILE... lists follow --queries / --clicks in order. */
    while ((c = getopt_long(argc, argv, "-", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (!have_kind) {
                rc = cli_usage("ingest", "'%s': name --queries or --clicks "
                               "before files", optarg);
                goto done;
            }
            if (add_input(&g, optarg, current) != 0)
                goto oom;
            break;
        case 'q':
        case 'c':
            current = c == 'q' ? ENGINE_QUERIES : ENGINE_CLICKS;
            have_kind = 1;
            if (add_input(&g, optarg, current) != 0)
                goto oom;
            break;
        case 'd':
            cfg.data_dir = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "ndjson") && strcmp(optarg, "tsv")) {
                rc = cli_usage("ingest", "--format: ndjson or tsv, not '%s'",
                               optarg);
                goto done;
            }
            g.forced_format = strcmp(optarg, "tsv") == 0 ? REC_TSV : REC_NDJSON;
            break;
        case 'r':
            g.report_path = optarg;
            break;
        case OPT_JOIN:
        case OPT_TIMEOUT:
            if (cli_parse_duration_ms(optarg, c == OPT_JOIN
                                                  ? &cfg.join_window_ms
                                                  : &cfg.click_timeout_ms)) {
                rc = cli_usage("ingest", "bad duration '%s'", optarg);
                goto done;
            }
            break;
        case OPT_CKPT:
            if (cli_parse_size_bytes(optarg, &g.checkpoint_every) ||
                g.checkpoint_every == 0) {
                rc = cli_usage("ingest", "bad size '%s'", optarg);
                goto done;
            }
            break;
        case OPT_THREADS:
            if (cli_parse_u64(optarg, &threads) || threads == 0 ||
                threads > SHARD_WORKERS_MAX) {
                rc = cli_usage("ingest", "--threads: 1 to %u",
                               SHARD_WORKERS_MAX);
                goto done;
            }
            break;
        case 'Q':
            g.quiet = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            rc = 0;
            goto done;
        default:
            rc = cli_usage("ingest", "unknown or incomplete option '%s'",
                           argv[optind - 1]);
            goto done;
        }
    }
    if (g.n_inputs == 0) {
        rc = cli_usage("ingest", "no input: give --queries and/or --clicks");
        goto done;
    }
    for (unsigned i = 0; i < g.n_inputs; i++) {
        if (format_of(g.inputs[i].path, g.forced_format, &g.inputs[i].fmt)) {
            rc = cli_usage("ingest", "%s: unknown format (use .ndjson, "
                           ".jsonl, .tsv or --format)", g.inputs[i].path);
            goto done;
        }
    }
    order_inputs(&g);
    cfg.n_workers = (unsigned)threads;
    cfg.retention_ms = cfg.join_window_ms + 3600000LL;
    g.tty = isatty(2);
    g.started = now_s();
    rc = 1;
    if (engine_open(&cfg, &g.e, g.err) != 0)
        goto fail;
    for (unsigned i = 0; i < g.n_inputs; i++) {
        if (ingest_input(&g, i) != 0)
            goto fail;
    }
    if (checkpoint(&g) != 0 || finish(&g) != 0)
        goto fail;
    rc = 0;
    goto done;
oom:
    snprintf(g.err, sizeof g.err, "out of memory");
    rc = 1;
fail:
    fprintf(stderr, "ctrd ingest: %s\n", g.err);
done:
    engine_close(g.e);
    free(g.inputs);
    return rc;
}
