/* serve_int: the service's state, shared by the files of `ctrd serve`
 * (serve.c: wiring, metrics and the ingest thread; serve_follow.c: the
 * followed files; serve_cluster.c: distributed mode). Not an interface
 * for anything else (see serve.h).
 * Threads: as struct service says (mu guards the queue, the flags and the
 * followed files' positions; the ingest thread owns the engine and the
 * log — in distributed mode the delta thread owns the engine, and there is
 * no log). */
#ifndef CTRD_SERVE_INT_H
#define CTRD_SERVE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "engine.h"
#include "follow.h"
#include "metrics.h"

#define FOLLOWED_MAX 2 /* --follow-queries and --follow-clicks */

struct service;

/* A request (or a followed file's new lines) for the ingest thread. */
struct job {
    struct job *next;
    struct service *service;
    struct http_exchange *x;
    enum engine_kind kind;
    enum rec_format fmt;
    int gzip; /* body still compressed */
    char *body;
    size_t len;
    char *answer; /* JSON, once processed */
    size_t answer_len;
    int status;     /* 200 with answer, 503, or 0: failed before processing */
    int error;      /* then: what failed (api_respond_ingest_error) */
    uint8_t source; /* 0: HTTP (x answers); n: followed file n */
    struct follow_position at; /* followed file: position after body */
};

/* A file tailed with --follow-queries / --follow-clicks: source n is
 * followed[n - 1]. */
struct followed {
    const char *path;
    enum engine_kind kind;
    enum rec_format fmt;
    struct follower *follower;
    struct follow_position at; /* last position processed */
    int known;
    char last_error[CTRD_ERR_LEN]; /* reported once, not every poll */
};

struct counters {
    struct metric *records[2][3]; /* kind x accepted/duplicate/rejected */
    struct metric *clicks[4];     /* joined, duplicate, rejected, unjoined */
    struct metric *rejects[REC_REASON_COUNT];
};

struct service {
    struct engine *engine;
    struct cluster_front *cluster; /* distributed mode (serve_cluster.c) */
    struct wal *wal;
    struct http_server *http;
    struct api *api;
    struct sse *sse;
    struct metrics *metrics;
    struct counters counters;
    struct engine_stats last;  /* stats at the last metrics update */
    struct engine_sizes sizes; /* published by the ingest thread (mu) */
    struct metric *write_errors;
    uint64_t checkpoint_every, since_checkpoint;
    size_t max_body_bytes; /* also once gunzipped */
    int64_t last_checkpoint_ms;
    uint32_t next_input;
    struct followed followed[FOLLOWED_MAX];
    unsigned n_followed;
    pthread_t follow_thread;
    int follow_started;
    /* the queue between the loop (and the follow thread) and the ingest
     * thread */
    pthread_mutex_t mu;
    pthread_cond_t cv, space_cv;
    struct job *head, *tail;
    size_t queued_bytes, max_queued_bytes;
    int stopping, ready, failed;
    /* Writes fail (disk full, I/O errors): records are refused until a
     * retry succeeds; the ingest thread keeps followed-file jobs in held
     * (its own) meanwhile. */
    int writes_failing;
    struct job *held;
    int64_t retry_ms;
    char err[CTRD_ERR_LEN];
};

/* ---- serve.c ---- */

/* Queues a job for the ingest thread. An HTTP job is refused with
 * CTRD_EWRITEFAIL while writes fail and with CTRD_EAGAIN when the queue is
 * full; a followed file's job waits for room instead (when wait is set).
 * On refusal the caller keeps the job. */
int serve_enqueue(struct service *s, struct job *j, int wait);
void serve_job_free(struct job *j);
/* Whether the service is stopping or failed (any thread). */
int serve_stopping(struct service *s);
/* Hands the answers of HTTP jobs to the loop thread and frees followed-file
 * jobs. */
void serve_answer(struct service *s, struct job *jobs);
/* After an error (s->err says which): stops the service; a restart
 * recovers from checkpoint + log. */
void serve_fail(struct service *s);

/* ---- serve_follow.c: files tailed with --follow-queries/--follow-clicks,
 * read on their own thread into jobs (source n: followed[n - 1]) ---- */

/* Adds a file to follow (path NULL: none). Before serve_follow_start(). */
void serve_follow_add(struct service *s, const char *path,
                      enum engine_kind kind);
/* Ingest thread: how far followed file source (1-based; 0: HTTP, ignored)
 * is processed (distributed: acknowledged), as a job or a replayed log
 * record says. */
void serve_follow_done(struct service *s, uint8_t source,
                       const struct follow_position *at);
/* The engine's writer (the ingest thread; distributed: the delta thread):
 * records each followed file's position for the next checkpoint
 * (engine_progress_set()). */
int serve_follow_save(struct service *s);
/* Ingest thread, after the log replay (distributed: before the delta
 * thread starts): opens the files where the last checkpoint and the replay
 * left them and starts the thread tailing them. */
int serve_follow_start(struct service *s);
/* Main thread, once the service stopped (s->stopping or s->failed): waits
 * for the tailing thread; then closes the files. */
void serve_follow_join(struct service *s);
void serve_follow_close(struct service *s);

/* ---- serve_cluster.c: distributed mode (--cluster) ---- */

/* Front role: connects to the cluster (main thread, before the ingest
 * thread starts). */
int serve_cluster_open(struct service *s, const char *cluster_file,
                       const char *name);
/* Ingest thread: starts the count server (the delta thread). */
int serve_cluster_start(struct service *s);
/* Ingest thread: publishes a group of requests and answers them. */
int serve_cluster_ingest(struct service *s, struct job *jobs);
/* Main thread, once the ingest thread is gone: stops the delta thread
 * (s->stopping set) and disconnects. NULL cluster: nothing. */
void serve_cluster_close(struct service *s);
/* The joiner role (cluster_joiner.h): the whole process. */
struct serve_opts;
int serve_cluster_joiner(const struct serve_opts *o);

#endif
