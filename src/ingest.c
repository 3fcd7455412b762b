/* ingest: the batch ingest command; see ingest.h.
 *
 * READER. A buffer of n_workers * CHUNK_BYTES is refilled from the input
 * and cut into up to n_workers chunks, each ending at a line end (or at
 * EOF). A line longer than a whole chunk cannot be valid (the line limit is
 * far below CHUNK_BYTES): its first REC_LINE_MAX + 2 bytes go to the parser,
 * which rejects them as line_too_long, and the rest of it is skipped.
 * Progress is recorded only at line boundaries. A gzip input (found by its
 * magic bytes) is read through zlib's gzread(); its progress is the offset
 * in the inflated stream. A plain input is read with read(2).
 *
 * REJECTS. Every run ends with a summary of rejects on stderr (counts per
 * reason, the first few with file:line), also under --quiet; --report
 * writes them all as JSON, to a file opened before any work and written
 * before the last commit. Before every commit the share of rejected lines
 * is checked against --max-reject-ratio (without it: are all rejected?):
 * past it, the run stops without committing (exit 1), so a wrong file or
 * format is not recorded as ingested and can be run again once fixed. */
#include "ingest.h"

#include "cli.h"
#include "clock.h"
#include "engine.h"
#include "hash.h"
#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK_BYTES ((size_t)4 << 20)
#define FINGERPRINT_BYTES 4096
#define SUMMARY_REJECTS 5 /* rejected lines the summary names */
#define TTY_PROGRESS_NS 500000000u

struct input {
    const char *path;
    enum engine_kind kind;
    enum rec_format fmt;
};

struct reader {
    int fd, owns_fd;
    gzFile gz; /* a gzip input, else NULL */
    char *buf;
    size_t cap, len, pos;
    int eof, skipping;
    uint64_t base; /* input offset of buf[0] */
    uint64_t line; /* number of the next line */
    uint64_t size; /* input size when known (gzip: compressed), else 0 */
};

struct ingest {
    struct engine *e;
    struct input *inputs;
    unsigned n_inputs;
    int forced_format; /* -1: by extension */
    const char *report_path;
    FILE *report;                  /* opened before any work */
    struct cli_engine_flags flags; /* the engine's config, checkpoint_every */
    uint64_t since_checkpoint;
    uint64_t skipped_lines; /* already ingested by earlier runs */
    double max_reject_ratio;
    int too_many_rejects; /* the run stopped before a commit for it */
    int quiet, tty;
    uint64_t started_ns, last_progress_ns, progress_every_ns;
    char err[CTRD_ERR_LEN];
};

static double seconds_since(uint64_t ns)
{
    double s = (double)(clock_mono_ns() - ns) / 1e9;
    return s > 1e-3 ? s : 1e-3;
}

/* ---- reading chunks ---- */

/* Reads up to n bytes: how many (0 at the end), or CTRD_EIO with err
 * set. */
static ssize_t reader_read(struct reader *r, char *p, size_t n, char *err)
{
    if (!r->gz) {
        ssize_t k;
        while ((k = read(r->fd, p, n)) < 0 && errno == EINTR)
            ;
        return k >= 0 ? k : ctrd_fail(err, CTRD_EIO, "%s", strerror(errno));
    }
    int k = gzread(r->gz, p, n > INT_MAX ? INT_MAX : (unsigned)n), zerr;
    const char *why = gzerror(r->gz, &zerr);
    /* gzread() ends a truncated stream as if complete, but for this. */
    if (k > 0 || (k == 0 && zerr == Z_OK))
        return k;
    const char *name_end = strstr(why, ">: "); /* "<fd:N>: what" */
    return ctrd_fail(err, CTRD_EIO, "%s",
                     zerr == Z_ERRNO ? strerror(errno)
                     : name_end      ? name_end + 3
                                     : why);
}

static int reader_fill(struct reader *r, char *err)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->base += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    while (!r->eof && r->len < r->cap) {
        ssize_t n = reader_read(r, r->buf + r->len, r->cap - r->len, err);
        if (n < 0)
            return (int)n;
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

/* Where the reader is in its input, in the unit of r->size. */
static uint64_t reader_done(const struct reader *r)
{
    return r->gz ? (uint64_t)gzoffset(r->gz) : r->base + r->pos;
}

/* On a TTY: one line rewritten in place every 0.5 s (ended by the final
 * call); otherwise a line every --progress-every, for logs. */
static void show_progress(struct ingest *g, const struct input *in,
                          const struct reader *r, int final)
{
    uint64_t now = clock_mono_ns();
    uint64_t every = g->tty ? TTY_PROGRESS_NS : g->progress_every_ns;
    if (g->quiet || (final && !g->tty) ||
        (!final && now - g->last_progress_ns < every))
        return;
    g->last_progress_ns = now;
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    double secs = seconds_since(g->started_ns);
    double rate = (double)(s.query_lines + s.click_lines) / secs;
    uint64_t done = reader_done(r);
    fprintf(stderr, "%s%s: %" PRIu64 " lines, %.2f M lines/s",
            g->tty ? "\r\033[K" : "ctrd ingest: ", in->path, r->line - 1,
            rate / 1e6);
    if (r->size > 0 && done <= r->size)
        fprintf(stderr, ", %.0f%%, ETA %.0f s",
                100.0 * (double)done / (double)r->size,
                done > 0 ? (double)(r->size - done) * secs / (double)done : 0);
    if (final || !g->tty)
        fputc('\n', stderr);
}

/* ---- one input ---- */

/* A key for the input's progress: its real path and its first bytes, so a
 * different file at the same path starts from the beginning. */
static int input_key(int fd, const char *path, char *key, size_t key_len)
{
    char real[PATH_MAX], head[FINGERPRINT_BYTES];
    if (!realpath(path, real))
        return CTRD_EIO;
    ssize_t n = pread(fd, head, sizeof head, 0);
    if (n < 0)
        return CTRD_EIO;
    uint64_t h =
        hash_bytes(real, strlen(real)) ^ hash_u64(hash_bytes(head, (size_t)n));
    snprintf(key, key_len, "%016" PRIx64, h);
    return 0;
}

static int is_gzip(int fd)
{
    unsigned char magic[2];
    return pread(fd, magic, sizeof magic, 0) == 2 && magic[0] == 0x1f &&
           magic[1] == 0x8b;
}

/* Opens a regular file's reader where earlier runs left it (offset and
 * lines: their progress, 0 when none): through zlib when it is gzip. */
static int reader_resume(struct reader *r, uint64_t offset, uint64_t lines,
                         const char *path, char *err)
{
    if (is_gzip(r->fd)) {
        if (!(r->gz = gzdopen(r->fd, "rb")))
            return ctrd_fail(err, CTRD_ENOMEM, "out of memory");
        gzbuffer(r->gz, 1u << 20);
    } else if (offset > r->size) {
        offset = lines = 0; /* not what was read before */
    }
    if (offset > 0 && (r->gz ? gzseek(r->gz, (z_off_t)offset, SEEK_SET) < 0
                             : lseek(r->fd, (off_t)offset, SEEK_SET) < 0))
        return ctrd_fail(err, CTRD_EIO,
                         "cannot read %s: cannot seek to "
                         "offset %" PRIu64,
                         path, offset);
    r->base = offset;
    r->line = lines + 1;
    return 0;
}

/* Opens an input; key gets its progress key ("" for standard input and
 * pipes, which are read whole). */
static int reader_open(struct ingest *g, const struct input *in,
                       struct reader *r, char *key, size_t key_len)
{
    int is_stdin = strcmp(in->path, "-") == 0;
    *r = (struct reader){.fd = is_stdin ? 0
                                        : open(in->path, O_RDONLY | O_CLOEXEC),
                         .owns_fd = !is_stdin,
                         .line = 1};
    key[0] = '\0';
    if (r->fd < 0)
        return ctrd_fail(g->err, CTRD_EIO, "cannot open %s: %s", in->path,
                         strerror(errno));
    struct stat st;
    if (is_stdin || fstat(r->fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    r->size = (uint64_t)st.st_size;
    uint64_t offset = 0, lines = 0;
    if (input_key(r->fd, in->path, key, key_len) != 0 ||
        engine_progress_get(g->e, key, &offset, &lines) != 0)
        offset = lines = 0;
    int rc = reader_resume(r, offset, lines, in->path, g->err);
    if (rc == 0)
        g->skipped_lines += r->line - 1;
    return rc;
}

static void reader_close(struct reader *r)
{
    if (r->gz)
        gzclose(r->gz); /* closes fd */
    else if (r->owns_fd && r->fd >= 0)
        close(r->fd);
}

/* Whether the share of rejected lines stops the run: past
 * --max-reject-ratio, or without it when every line read was rejected. */
static int too_many_rejects(const struct ingest *g, uint64_t rejected,
                            uint64_t lines)
{
    if (g->max_reject_ratio < 0)
        return lines > 0 && rejected >= lines;
    return (double)rejected > g->max_reject_ratio * (double)lines;
}

/* Commits what was ingested so far, unless too many lines were rejected
 * (CTRD_EINVAL, said in err: nothing committed). */
static int checkpoint(struct ingest *g)
{
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    uint64_t lines = s.query_lines + s.click_lines;
    uint64_t rejected = s.queries_rejected + s.clicks_rejected;
    if (too_many_rejects(g, rejected, lines)) {
        g->too_many_rejects = 1;
        if (g->max_reject_ratio < 0)
            return ctrd_fail(g->err, CTRD_EINVAL,
                             "all %" PRIu64 " lines rejected: not committed "
                             "(the right file and --format?)",
                             lines);
        return ctrd_fail(g->err, CTRD_EINVAL,
                         "%" PRIu64 " of %" PRIu64 " lines rejected (%.1f%%), "
                         "more than --max-reject-ratio %g: not committed",
                         rejected, lines,
                         100.0 * (double)rejected / (double)lines,
                         g->max_reject_ratio);
    }
    g->since_checkpoint = 0;
    return engine_checkpoint(g->e, g->err);
}

static int ingest_input(struct ingest *g, uint32_t idx)
{
    const struct input *in = &g->inputs[idx];
    struct reader r;
    char key[32];
    int rc = reader_open(g, in, &r, key, sizeof key);
    unsigned workers = engine_workers(g->e);
    r.cap = (size_t)workers * CHUNK_BYTES;
    r.buf = rc == 0 ? malloc(r.cap) : NULL;
    struct engine_chunk *chunks = malloc(workers * sizeof *chunks);
    if (rc == 0 && (!r.buf || !chunks))
        rc = ctrd_fail(g->err, CTRD_ENOMEM, "out of memory");
    while (rc == 0) {
        char why[CTRD_ERR_LEN];
        if (reader_fill(&r, why) != 0) {
            rc = ctrd_fail(g->err, CTRD_EIO, "cannot read %s: %s", in->path,
                           why);
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
        rc = engine_process(g->e, in->kind, in->fmt, chunks, n, clock_wall_ms(),
                            g->err);
        if (rc == 0 && key[0] && !r.skipping)
            rc = engine_progress_set(g->e, key, before + r.pos, r.line - 1);
        g->since_checkpoint += bytes;
        if (rc == 0 && (g->since_checkpoint >= g->flags.checkpoint_every ||
                        engine_memory_full(g->e)))
            rc = checkpoint(g);
        show_progress(g, in, &r, 0);
    }
    if (rc == 0)
        show_progress(g, in, &r, 1);
    free(r.buf);
    free(chunks);
    reader_close(&r);
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
        const char *file =
            x->input < g->n_inputs ? g->inputs[x->input].path : "(earlier run)";
        fputs(i ? ",\n  {\"file\":" : "\n  {\"file\":", f);
        json_put_string(f, file, strlen(file));
        fprintf(f, ",\"line\":%" PRIu64 ",\"reason\":\"%s\"}", x->line,
                rec_reason_name(x->reason));
    }
    fputs("]}\n", f);
}

/* The rejects on stderr, whatever the flags: per reason, then the first
 * few by file and line. */
static void summarise_rejects(const struct ingest *g,
                              const struct engine_stats *s)
{
    uint64_t total = 0;
    for (int r = 0; r < REC_REASON_COUNT; r++)
        total += s->rejects[r];
    if (total == 0)
        return;
    fprintf(stderr, "ctrd ingest: %" PRIu64 " rejected line%s:", total,
            total == 1 ? "" : "s");
    const char *sep = " ";
    for (int r = 0; r < REC_REASON_COUNT; r++) {
        if (!s->rejects[r])
            continue;
        fprintf(stderr, "%s%s %" PRIu64, sep, rec_reason_name(r),
                s->rejects[r]);
        sep = ", ";
    }
    fputc('\n', stderr);
    for (size_t i = 0; i < s->n_samples && i < SUMMARY_REJECTS; i++) {
        const struct engine_reject *x = &s->samples[i];
        fprintf(stderr, "ctrd ingest:   %s:%" PRIu64 ": %s\n",
                x->input < g->n_inputs ? g->inputs[x->input].path
                                       : "(earlier run)",
                x->line, rec_reason_name(x->reason));
    }
    if (total > SUMMARY_REJECTS)
        fprintf(stderr,
                "ctrd ingest:   ... %" PRIu64 " more (the first %d %s %s)\n",
                total - SUMMARY_REJECTS, ENGINE_REJECT_SAMPLES,
                g->report_path ? "are in" : "with",
                g->report_path ? g->report_path : "--report FILE");
}

/* The totals (unless --quiet) and the rejects on stderr, and the report. */
static int finish(struct ingest *g)
{
    struct engine_stats s;
    engine_get_stats(g->e, &s);
    double secs = seconds_since(g->started_ns);
    uint64_t lines = s.query_lines + s.click_lines;
    if (!g->quiet && (lines > 0 || g->skipped_lines == 0))
        fprintf(
            stderr,
            "ctrd ingest: %" PRIu64 " query lines (%" PRIu64
            " accepted, %" PRIu64 " duplicates, %" PRIu64 " rejected), %" PRIu64
            " click lines (%" PRIu64 " joined, %" PRIu64 " duplicates, %" PRIu64
            " rejected, %" PRIu64 " pending) in %.2f s, %.0f lines/s\n",
            s.query_lines, s.join.queries_accepted, s.join.queries_duplicate,
            s.queries_rejected, s.click_lines, s.join.clicks_joined,
            s.join.clicks_duplicate, s.clicks_rejected, s.clicks_pending, secs,
            (double)lines / secs);
    if (!g->quiet && g->skipped_lines > 0)
        fprintf(stderr,
                "ctrd ingest: %s%" PRIu64 " lines already ingested by an "
                "earlier run (skipped)\n",
                lines ? "" : "nothing new: ", g->skipped_lines);
    summarise_rejects(g, &s);
    if (!g->report)
        return 0;
    write_report(g, g->report);
    int rc = fclose(g->report);
    g->report = NULL;
    if (rc != 0)
        return ctrd_fail(g->err, CTRD_EIO, "cannot write %s: %s",
                         g->report_path, strerror(errno));
    return 0;
}

/* ---- command line ---- */

static const char usage[] =
    "usage: ctrd ingest [--data DIR] [--queries FILE...] [--clicks FILE...]\n"
    "                   [--format ndjson|tsv] [--report FILE]\n"
    "                   [--max-reject-ratio R] [--join-window D]\n"
    "                   [--click-timeout D] [--checkpoint-every SIZE]\n"
    "                   [--memory SIZE] [--threads N] [--progress-every D]\n"
    "                   [--quiet]\n"
    "\n"
    "Batch (re)processing of complete query and click logs into the store in\n"
    "DIR, on all cores. All query files are processed before the click files.\n"
    "FILE '-' is standard input. The format comes from the extension\n"
    "(.ndjson/.jsonl or .tsv, before any .gz) unless --format is given. A\n"
    "gzip-compressed file (.gz, or any file that starts as gzip does) is\n"
    "inflated as it is read and counts exactly as the plain file would.\n"
    "\n"
    "Exactly once: progress per input is committed with the counts, so a run\n"
    "that was interrupted (even by kill -9) is simply run again, and running\n"
    "a completed ingest again changes no count (the lines it skips are said\n"
    "on stderr). Clicks whose query has not arrived wait (across runs) up to\n"
    "--click-timeout of processing time.\n"
    "\n"
    "Rejected lines are summarised on stderr at the end: a count per reason\n"
    "and the first few by file:line. Before each commit the share of\n"
    "rejected lines is checked: past --max-reject-ratio, or without it when\n"
    "every line was rejected (a wrong file or --format), the run stops with\n"
    "exit 1 without committing that work (the summary and --report still\n"
    "come), so the input is not recorded as ingested: fix it and run again.\n"
    "The default stops only all-garbage input, as test and replayed logs may\n"
    "rightly be mostly rejects; give a ratio (0.01) for a strict pipeline.\n"
    "\n"
    "  --data DIR              data directory (default ./ctrd-data)\n"
    "  --queries FILE...       query log files\n"
    "  --clicks FILE...        click log files\n"
    "  --format F              ndjson or tsv for every file\n"
    "  --report FILE           a JSON report: counts, rejects per reason, the\n"
    "                          first 100 rejects (file:line); opened before\n"
    "                          any work, written before the last commit\n"
    "  --max-reject-ratio R    0 to 1: the share of rejected lines past\n"
    "                          which the run fails (default: only all)\n"
    "  --join-window D         clicks count up to D after their query (24h)\n"
    "  --click-timeout D       how long a click waits for its query (10m)\n"
    "  --checkpoint-every SIZE commit after this much input (256M, at most\n"
    "                          4G)\n"
    "  --memory SIZE           RAM for the counts and the query store (1G,\n"
    "                          at least 16M): past it, cold counts spill to\n"
    "                          a scratch file in DIR (it has no name) and\n"
    "                          commits come early\n"
    "  --threads N             worker threads (default: one per core)\n"
    "  --progress-every D      when stderr is not a terminal, a progress\n"
    "                          line this often (5s); on a terminal one line\n"
    "                          is updated in place\n"
    "  --quiet                 no progress and no totals (rejects are still\n"
    "                          summarised)\n"
    "  -h, --help              this help;  --version  ctrd's version\n";

/* The format by the name (a .gz suffix aside), or the one forced. */
static int format_of(const char *path, int forced, enum rec_format *fmt)
{
    char plain[PATH_MAX];
    size_t n = strlen(path);
    if (forced >= 0) {
        *fmt = (enum rec_format)forced;
        return 0;
    }
    if (n > 3 && n < sizeof plain && strcmp(path + n - 3, ".gz") == 0) {
        snprintf(plain, sizeof plain, "%.*s", (int)(n - 3), path);
        path = plain;
    }
    return rec_format_from_name(path, fmt) == 0 ? 0 : CTRD_EINVAL;
}

static int add_input(struct ingest *g, const char *path, enum engine_kind k)
{
    struct input *in = realloc(g->inputs, (g->n_inputs + 1) * sizeof *in);
    if (!in)
        return CTRD_ENOMEM;
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

/* A number in [0, 1], nothing else. */
static int parse_ratio(const char *arg, double *r)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (end == arg || *end || errno || !(v >= 0 && v <= 1))
        return CTRD_EINVAL;
    *r = v;
    return 0;
}

/* What the flags give, and the state of reading them. */
struct ingest_args {
    struct ingest *g;
    enum engine_kind current; /* of the FILE... that follow */
    int have_kind;
    int64_t progress_ms;
};

/* getopt_long() values of ingest's own long-only options. */
enum { OPT_RATIO = 256, OPT_PROGRESS };

/* Each option but the engine's (cli_engine_option()). */
static int on_option(void *ctx, int c, const char *arg)
{
    static const char *const formats[] = {"ndjson", "tsv"};
    struct ingest_args *a = ctx;
    struct ingest *g = a->g;
    int v, rc;
    switch (c) {
    case 'q':
    case 'c':
        a->current = c == 'q' ? ENGINE_QUERIES : ENGINE_CLICKS;
        a->have_kind = 1;
        /* fall through */
    case 1:
        if (!a->have_kind)
            return cli_usage(
                "ingest", "'%s': name --queries or --clicks before files", arg);
        if (add_input(g, arg, a->current) != 0)
            return fputs("ctrd ingest: out of memory\n", stderr), 1;
        return 0;
    case 'f':
        if ((rc = cli_choice("ingest", "--format", arg, formats, 2, &v)))
            return rc;
        g->forced_format = v == 1 ? REC_TSV : REC_NDJSON;
        return 0;
    case 'r':
        g->report_path = arg;
        return 0;
    case 'Q':
        g->quiet = 1;
        return 0;
    case OPT_RATIO:
        if (parse_ratio(arg, &g->max_reject_ratio))
            return cli_usage("ingest",
                             "--max-reject-ratio: a number from 0 to 1, not "
                             "'%s'",
                             arg);
        return 0;
    case OPT_PROGRESS:
        if (cli_parse_duration_ms(arg, &a->progress_ms) || !a->progress_ms)
            return cli_usage("ingest", "--progress-every: bad duration '%s'",
                             arg);
        return 0;
    }
    return cli_engine_option("ingest", c, arg, &g->flags);
}

/* Reads the flags into g: -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, struct ingest *g)
{
    static const struct option opts[] = {
        CLI_COMMON_OPTIONS,
        CLI_ENGINE_OPTIONS,
        {"queries", required_argument, 0, 'q'},
        {"clicks", required_argument, 0, 'c'},
        {"format", required_argument, 0, 'f'},
        {"report", required_argument, 0, 'r'},
        {"max-reject-ratio", required_argument, 0, OPT_RATIO},
        {"progress-every", required_argument, 0, OPT_PROGRESS},
        {"quiet", no_argument, 0, 'Q'},
        {0, 0, 0, 0},
    };
    struct ingest_args a = {.g = g, .progress_ms = 5000};
    /* "-": FILE... lists follow --queries / --clicks in order. */
    int rc = cli_parse(argc, argv, "ingest", usage, "-h", opts, on_option, &a);
    if (rc >= 0)
        return rc;
    if (g->n_inputs == 0)
        return cli_usage("ingest", "no input: give --queries and/or --clicks");
    for (unsigned i = 0; i < g->n_inputs; i++) {
        if (format_of(g->inputs[i].path, g->forced_format, &g->inputs[i].fmt))
            return cli_usage("ingest",
                             "%s: unknown format (use .ndjson, "
                             ".jsonl, .tsv, any of them .gz, or --format)",
                             g->inputs[i].path);
    }
    order_inputs(g);
    g->progress_every_ns = (uint64_t)a.progress_ms * 1000000u;
    return -1;
}

/* Ingests every input, then reports and commits: the summary and the
 * report come also when the share of rejects stopped the run. */
static int run(struct ingest *g)
{
    if (g->report_path && !(g->report = fopen(g->report_path, "w")))
        return ctrd_fail(g->err, CTRD_EIO, "cannot write the report %s: %s",
                         g->report_path, strerror(errno));
    g->tty = isatty(2);
    g->started_ns = g->last_progress_ns = clock_mono_ns();
    int rc = engine_open(&g->flags.engine, &g->e, g->err);
    for (unsigned i = 0; rc == 0 && i < g->n_inputs; i++)
        rc = ingest_input(g, i);
    if (rc == 0 || g->too_many_rejects) {
        int frc = finish(g);
        rc = rc ? rc : frc;
    }
    return rc == 0 ? checkpoint(g) : rc;
}

int ingest_command(int argc, char **argv)
{
    struct ingest g = {.forced_format = -1, .max_reject_ratio = -1};
    cli_engine_defaults(&g.flags);
    int rc = parse_args(argc, argv, &g);
    if (rc < 0) {
        rc = run(&g) == 0 ? 0 : 1;
        if (rc)
            fprintf(stderr, "ctrd ingest: %s\n", g.err);
    }
    if (g.report) { /* never written: no half report is left */
        fclose(g.report);
        unlink(g.report_path);
    }
    engine_close(g.e);
    free(g.inputs);
    return rc;
}
