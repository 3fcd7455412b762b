/* serve_follow: the files `ctrd serve` tails (--follow-queries,
 * --follow-clicks); see serve_int.h. A thread of its own reads what is new
 * in each (follow.h: whole lines, rotation, truncation) into jobs queued
 * for the ingest thread, waiting for room; the ingest thread records how
 * far each is processed (in distributed mode: acknowledged by the stream)
 * and that is committed with every checkpoint, under the progress keys
 * "follow<n>" (offset, inode) and "follow<n>-dev" (device), so a restart
 * resumes where the last checkpoint and the log replay left each file (in
 * distributed mode it may publish again what followed the checkpoint:
 * records count once). The positions are under s->mu: in distributed mode
 * the delta thread checkpoints them. */
#include "serve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FOLLOW_POLL_MS 100
#define FOLLOW_READ_BYTES ((size_t)4 << 20)

void serve_follow_add(struct service *s, const char *path,
                      enum engine_kind kind)
{
    if (!path)
        return;
    struct followed *f = &s->followed[s->n_followed++];
    *f = (struct followed){.path = path, .kind = kind};
    rec_format_from_name(path, &f->fmt);
}

void serve_follow_done(struct service *s, uint8_t source,
                       const struct follow_position *at)
{
    if (source == 0 || source > s->n_followed)
        return;
    pthread_mutex_lock(&s->mu);
    s->followed[source - 1].at = *at;
    s->followed[source - 1].known = 1;
    pthread_mutex_unlock(&s->mu);
}

/* Progress keys of followed file n: "follow<n>" holds (offset, inode),
 * "follow<n>-dev" (device, 0). */
static void follow_key(char *key, size_t len, unsigned n, int dev)
{
    snprintf(key, len, "follow%u%s", n, dev ? "-dev" : "");
}

int serve_follow_save(struct service *s)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < s->n_followed; i++) {
        pthread_mutex_lock(&s->mu);
        struct followed f = s->followed[i];
        pthread_mutex_unlock(&s->mu);
        char key[32];
        if (!f.known)
            continue;
        follow_key(key, sizeof key, i + 1, 0);
        rc = engine_progress_set(s->engine, key, f.at.offset, f.at.ino);
        follow_key(key, sizeof key, i + 1, 1);
        if (rc == 0)
            rc = engine_progress_set(s->engine, key, f.at.dev, 0);
    }
    return rc;
}

/* Reads what is new in one followed file into a job; 1 when it queued one. */
static int follow_poll(struct service *s, unsigned n)
{
    struct followed *f = &s->followed[n - 1];
    const char *data;
    size_t len;
    struct follow_position at;
    char err[CTRD_ERR_LEN];
    int rc =
        follower_read(f->follower, FOLLOW_READ_BYTES, &data, &len, &at, err);
    if (rc == CTRD_EAGAIN)
        return 0;
    if (rc != 0) {
        if (strcmp(err, f->last_error) != 0)
            fprintf(stderr, "ctrd serve: following %s: %s\n", f->path, err);
        snprintf(f->last_error, sizeof f->last_error, "%s", err);
        return 0;
    }
    f->last_error[0] = '\0';
    struct job *j = calloc(1, sizeof *j);
    char *body = malloc(len ? len : 1);
    if (!j || !body) {
        /* The follower has moved past these lines: only a restart, which
         * resumes at the last committed position, can read them again. */
        free(j);
        free(body);
        ctrd_fail(s->err, CTRD_ENOMEM, "out of memory following %s", f->path);
        serve_fail(s);
        return 0;
    }
    memcpy(body, data, len);
    *j = (struct job){.service = s,
                      .kind = f->kind,
                      .fmt = f->fmt,
                      .body = body,
                      .len = len,
                      .source = (uint8_t)n,
                      .at = at};
    if (serve_enqueue(s, j, 1) != 0) {
        serve_job_free(
            j); /* stopping: a restart resumes at the last position */
        return 0;
    }
    return 1;
}

static void *follow_main(void *arg)
{
    struct service *s = arg;
    while (!serve_stopping(s)) {
        int got = 0;
        for (unsigned n = 1; n <= s->n_followed; n++)
            got |= follow_poll(s, n);
        if (!got) {
            struct timespec nap = {0, FOLLOW_POLL_MS * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    return NULL;
}

int serve_follow_start(struct service *s)
{
    for (unsigned i = 0; i < s->n_followed; i++) {
        struct followed *f = &s->followed[i];
        char key[32];
        uint64_t dev, unused;
        follow_key(key, sizeof key, i + 1, 0);
        if (!f->known && engine_progress_get(s->engine, key, &f->at.offset,
                                             &f->at.ino) == 0) {
            follow_key(key, sizeof key, i + 1, 1);
            f->known = engine_progress_get(s->engine, key, &dev, &unused) == 0;
            f->at.dev = dev;
        }
        int rc = follower_open(f->path, f->known ? &f->at : NULL, &f->follower,
                               s->err);
        if (rc != 0)
            return rc;
    }
    if (s->n_followed == 0)
        return 0;
    if (pthread_create(&s->follow_thread, NULL, follow_main, s) != 0)
        return ctrd_fail(s->err, CTRD_EIO, "cannot start thread");
    s->follow_started = 1;
    return 0;
}

void serve_follow_join(struct service *s)
{
    if (s->follow_started)
        pthread_join(s->follow_thread, NULL);
}

void serve_follow_close(struct service *s)
{
    for (unsigned i = 0; i < s->n_followed; i++)
        follower_close(s->followed[i].follower);
}
