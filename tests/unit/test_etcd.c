/* Unit tests of etcd against a real single-node etcd (/usr/bin/etcd, on
 * free loopback ports, killed and removed at exit): binary round trips,
 * prefix ranges in key order, create-if-absent, fenced deletes and puts,
 * leases (keepalive, revoke, expiry), failover past a dead, a silent and a
 * 503 endpoint, CTRD_EAGAIN when no endpoint answers, and the answer cap. */
#include "check.h"
#include "clock.h"
#include "testfs.h"
#include "testnet.h"
#include "etcd.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ETCD_BIN "/usr/bin/etcd"
#define ANSWER_503                                                             \
    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n"                \
    "Connection: close\r\n\r\n{}"

static char tmp_dir[64];
static pid_t etcd_pid;
static char live_url[64];
static struct etcd *db; /* on live_url */

/* ---- helpers ---- */

/* The URL of a loopback port nothing listens on. */
static void dead_url(char *url, size_t size)
{
    int port, fd = testnet_bound_socket(&port);
    close(fd);
    snprintf(url, size, "http://127.0.0.1:%d", port);
}

static void stop_etcd(void)
{
    etcd_close(db);
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGKILL);
        waitpid(etcd_pid, NULL, 0);
    }
    testfs_remove_tree(tmp_dir);
}

static struct etcd *open_or_die(const char *const *urls, size_t n, int ms)
{
    char err[CTRD_ERR_LEN];
    struct etcd *e;
    if (etcd_open(urls, n, ms, &e, err) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return e;
}

static int ignore_kv(void *ctx, const struct etcd_kv *kv)
{
    (void)ctx;
    (void)kv;
    return 0;
}

/* etcd on free ports in tmp_dir, its log in tmp_dir/log; returns once it
 * answers a read. */
static void start_etcd(void)
{
    char peer[64], cluster[80], data[96], log[96], err[CTRD_ERR_LEN];
    int cport, pport, cfd = testnet_bound_socket(&cport), pfd = testnet_bound_socket(&pport);
    close(cfd);
    close(pfd);
    snprintf(live_url, sizeof live_url, "http://127.0.0.1:%d", cport);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof cluster, "t=%s", peer);
    snprintf(data, sizeof data, "%s/data", tmp_dir);
    snprintf(log, sizeof log, "%s/log", tmp_dir);
    if ((etcd_pid = fork()) == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(ETCD_BIN, "etcd", "--name", "t", "--data-dir", data,
              "--listen-client-urls", live_url, "--advertise-client-urls",
              live_url, "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer, "--initial-cluster",
              cluster, (char *)NULL);
        _exit(127);
    }
    const char *urls[] = {live_url};
    db = open_or_die(urls, 1, 500);
    for (int64_t t0 = clock_mono_ms(); clock_mono_ms() - t0 < 20000;
         testnet_sleep_ms(50))
        if (etcd_get(db, "ready?", ignore_kv, NULL, err) == CTRD_ENOTFOUND)
            return;
    fprintf(stderr, "etcd did not answer in 20 s (see %s): %s\n", log, err);
    exit(1);
}

/* The kv a get saw (a copy). */
struct got {
    int calls;
    char key[64], value[64];
    size_t key_len, value_len;
    int64_t create_revision, lease;
};

static int copy_kv(void *ctx, const struct etcd_kv *kv)
{
    struct got *g = ctx;
    g->calls++;
    g->key_len = kv->key_len;
    g->value_len = kv->value_len;
    memcpy(g->key, kv->key, kv->key_len < 64 ? kv->key_len : 64);
    memcpy(g->value, kv->value, kv->value_len < 64 ? kv->value_len : 64);
    g->create_revision = kv->create_revision;
    g->lease = kv->lease;
    return 0;
}

/* get key: its return; the kv in *g. */
static int get(struct etcd *e, const char *key, struct got *g)
{
    char err[CTRD_ERR_LEN];
    memset(g, 0, sizeof *g);
    return etcd_get(e, key, copy_kv, g, err);
}

/* ---- tests ---- */

static void test_put_get_binary(void)
{
    static const char value[] = "\0\xff\"\\\n{}=/+bytes";
    char err[CTRD_ERR_LEN];
    struct got g;
    CHECK_EQ_I64(etcd_put(db, "a/b/c", value, sizeof value, 0, err), 0);
    CHECK_EQ_I64(get(db, "a/b/c", &g), 0);
    CHECK_EQ_I64(g.calls, 1);
    CHECK_EQ_MEM(g.key, g.key_len, "a/b/c");
    CHECK_EQ_U64(g.value_len, sizeof value);
    CHECK(memcmp(g.value, value, sizeof value) == 0);
    CHECK(g.create_revision > 0);
    CHECK_EQ_I64(etcd_put(db, "a/empty", "", 0, 0, err), 0);
    CHECK_EQ_I64(get(db, "a/empty", &g), 0);
    CHECK_EQ_U64(g.value_len, 0);
    CHECK_EQ_I64(get(db, "a/b", &g), CTRD_ENOTFOUND);
    CHECK_EQ_I64(g.calls, 0);
}

/* Appends each key to ctx ("key=value;"); stops (returning 7) at "stop". */
static int list_kv(void *ctx, const struct etcd_kv *kv)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%.*s=%.*s;", (int)kv->key_len, kv->key,
             (int)kv->value_len, kv->value);
    return kv->value_len == 4 && memcmp(kv->value, "stop", 4) == 0 ? 7 : 0;
}

static void test_range_prefix(void)
{
    /* "p0" is the range's end ('/' + 1); "p\xff..." test a 0xff tail. */
    static const char *const keys[] = {
        "p/c", "p/a", "o", "p0", "p/b", "p/a/x", "p\xff", "p\xff\x01", "q"};
    char err[CTRD_ERR_LEN], out[256] = "";
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECK_EQ_I64(etcd_put(db, keys[i], "v", 1, 0, err), 0);
    CHECK_EQ_I64(etcd_range_prefix(db, "p/", list_kv, out, err), 0);
    CHECK_EQ_STR(out, "p/a=v;p/a/x=v;p/b=v;p/c=v;");
    out[0] = 0;
    CHECK_EQ_I64(etcd_range_prefix(db, "p\xff", list_kv, out, err), 0);
    CHECK_EQ_STR(out, "p\xff=v;p\xff\x01=v;");
    out[0] = 0;
    CHECK_EQ_I64(etcd_range_prefix(db, "none/", list_kv, out, err), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_I64(etcd_put(db, "p/a/x", "stop", 4, 0, err), 0);
    CHECK_EQ_I64(etcd_range_prefix(db, "p/", list_kv, out, err), 7);
    CHECK_EQ_STR(out, "p/a=v;p/a/x=stop;");
    CHECK_EQ_I64(etcd_range_prefix(db, "", list_kv, out, err), CTRD_EINVAL);
}

static void test_create_once(void)
{
    char err[CTRD_ERR_LEN];
    int64_t first = 0, second = 0;
    struct got g;
    CHECK_EQ_I64(etcd_create(db, "c/k", "one", 3, 0, &first, err), 0);
    CHECK(first > 0);
    CHECK_EQ_I64(etcd_create(db, "c/k", "two", 3, 0, &second, err), 1);
    CHECK_EQ_I64(second, first);
    CHECK_EQ_I64(get(db, "c/k", &g), 0);
    CHECK_EQ_MEM(g.value, g.value_len, "one");
    CHECK_EQ_I64(g.create_revision, first);
}

static void test_delete_if(void)
{
    char err[CTRD_ERR_LEN];
    int64_t rev = 0;
    struct got g;
    CHECK_EQ_I64(etcd_create(db, "d/k", "x", 1, 0, &rev, err), 0);
    CHECK_EQ_I64(etcd_put(db, "d/k", "y", 1, 0, err), 0); /* same creation */
    CHECK_EQ_I64(etcd_delete_if(db, "d/k", rev - 1, err), 1);
    CHECK_EQ_I64(etcd_delete_if(db, "d/k", rev + 100, err), 1);
    CHECK_EQ_I64(get(db, "d/k", &g), 0);
    CHECK_EQ_MEM(g.value, g.value_len, "y");
    CHECK_EQ_I64(etcd_delete_if(db, "d/k", rev, err), 0);
    CHECK_EQ_I64(get(db, "d/k", &g), CTRD_ENOTFOUND);
    CHECK_EQ_I64(etcd_delete_if(db, "d/k", rev, err), 1);
    CHECK_EQ_I64(etcd_delete_if(db, "d/k", 0, err), CTRD_EINVAL);
}

static void test_put_if_fenced(void)
{
    char err[CTRD_ERR_LEN];
    int64_t old = 0, now = 0;
    struct got g;
    CHECK_EQ_I64(etcd_create(db, "f/owner", "me", 2, 0, &old, err), 0);
    CHECK_EQ_I64(etcd_put_if(db, "f/owner", old, "f/data", "v1", 2, err), 0);
    CHECK_EQ_I64(etcd_delete_if(db, "f/owner", old, err), 0);
    CHECK_EQ_I64(etcd_put_if(db, "f/owner", old, "f/data", "v2", 2, err), 1);
    CHECK_EQ_I64(etcd_create(db, "f/owner", "you", 3, 0, &now, err), 0);
    CHECK(now > old);
    CHECK_EQ_I64(etcd_put_if(db, "f/owner", old, "f/data", "v3", 2, err), 1);
    CHECK_EQ_I64(get(db, "f/data", &g), 0);
    CHECK_EQ_MEM(g.value, g.value_len, "v1");
    CHECK_EQ_I64(etcd_put_if(db, "f/owner", now, "f/data", "v4", 2, err), 0);
    CHECK_EQ_I64(get(db, "f/data", &g), 0);
    CHECK_EQ_MEM(g.value, g.value_len, "v4");
    CHECK_EQ_I64(etcd_put_if(db, "f/owner", 0, "f/data", "v5", 2, err),
                 CTRD_EINVAL);
}

static void test_lease_revoke(void)
{
    char err[CTRD_ERR_LEN];
    int64_t lease = 0, ttl = 0, rev = 0;
    struct got g;
    CHECK_EQ_I64(etcd_lease_grant(db, 30, &lease, err), 0);
    CHECK(lease != 0);
    CHECK_EQ_I64(etcd_lease_keepalive(db, lease, &ttl, err), 0);
    CHECK(ttl > 0 && ttl <= 30);
    CHECK_EQ_I64(etcd_create(db, "l/k", "x", 1, lease, &rev, err), 0);
    CHECK_EQ_I64(get(db, "l/k", &g), 0);
    CHECK_EQ_I64(g.lease, lease);
    CHECK_EQ_I64(etcd_lease_revoke(db, lease, err), 0);
    CHECK_EQ_I64(get(db, "l/k", &g), CTRD_ENOTFOUND);
    CHECK_EQ_I64(etcd_lease_keepalive(db, lease, &ttl, err), CTRD_ENOTFOUND);
    CHECK_EQ_I64(etcd_lease_revoke(db, lease, err), CTRD_ENOTFOUND);
    CHECK_EQ_I64(etcd_put(db, "l/k", "x", 1, lease, err), CTRD_ENOTFOUND);
}

static void test_lease_expires(void)
{
    char err[CTRD_ERR_LEN];
    int64_t lease = 0, rev = 0, ttl = 0, t0, gone_ms = -1;
    struct got g;
    CHECK_EQ_I64(etcd_lease_grant(db, 1, &lease, err), 0);
    t0 = clock_mono_ms();
    CHECK_EQ_I64(etcd_create(db, "x/k", "x", 1, lease, &rev, err), 0);
    CHECK_EQ_I64(get(db, "x/k", &g), 0);
    while (gone_ms < 0 && clock_mono_ms() - t0 < 6000) {
        testnet_sleep_ms(100);
        if (get(db, "x/k", &g) == CTRD_ENOTFOUND)
            gone_ms = clock_mono_ms() - t0;
    }
    printf("lease of 1 s (granted 2 s): key gone after %" PRId64 " ms\n",
           gone_ms);
    CHECK(gone_ms > 0 && gone_ms <= 3500);
    CHECK_EQ_I64(etcd_lease_keepalive(db, lease, &ttl, err), CTRD_ENOTFOUND);
}

/* A server that answers every request with one canned answer. */
struct fake {
    int fd;
    const char *answer;
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    char buf[4096];
    for (int c; (c = accept(f->fd, NULL, NULL)) >= 0; close(c)) {
        struct timeval tv = {1, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (read(c, buf, sizeof buf) <= 0 ||
            write(c, f->answer, strlen(f->answer)) < 0)
            continue;
        shutdown(c, SHUT_WR);
        while (read(c, buf, sizeof buf) > 0)
            ;
    }
    return NULL;
}

/* A listening socket's URL: answered by a fake (answer) or never
 * (NULL: connections wait in the backlog). */
static void listening_url(struct fake *f, const char *answer, char *url)
{
    int port;
    pthread_t t;
    f->fd = testnet_bound_socket(&port);
    f->answer = answer;
    if (listen(f->fd, 16) != 0 ||
        (answer && pthread_create(&t, NULL, fake_serve, f) != 0)) {
        perror("listen");
        exit(1);
    }
    if (answer)
        pthread_detach(t);
    sprintf(url, "http://127.0.0.1:%d", port);
}

static void test_failover(void)
{
    static struct fake silent, unavailable, bad;
    char dead[64], silent_url[64], u503[64], u400[64], err[CTRD_ERR_LEN];
    struct got g;
    dead_url(dead, sizeof dead);
    listening_url(&silent, NULL, silent_url);
    listening_url(&unavailable, ANSWER_503, u503);
    listening_url(&bad,
                  "HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\n{}",
                  u400);
    const char *const to_live[][2] = {
        {dead, live_url}, {silent_url, live_url}, {u503, live_url}};
    for (size_t i = 0; i < 3; i++) {
        struct etcd *e = open_or_die(to_live[i], 2, 500);
        CHECK_EQ_I64(etcd_put(e, "o/k", to_live[i][0], 5, 0, err), 0);
        int64_t t0 = clock_mono_ms();
        CHECK_EQ_I64(get(e, "o/k", &g), 0); /* from the live one at once */
        CHECK(clock_mono_ms() - t0 < 300);
        CHECK_EQ_MEM(g.value, g.value_len, "http:");
        etcd_close(e);
    }
    /* A 4xx is etcd's refusal, not a reason to ask elsewhere. */
    const char *const refused[] = {u400, live_url};
    struct etcd *e = open_or_die(refused, 2, 500);
    CHECK_EQ_I64(etcd_get(e, "o/k", ignore_kv, NULL, err), CTRD_EIO);
    CHECK(strstr(err, "HTTP 400") != NULL);
    etcd_close(e);
}

static void test_nothing_answers(void)
{
    static struct fake silent, unavailable;
    char dead[64], silent_url[64], u503[64], err[CTRD_ERR_LEN];
    dead_url(dead, sizeof dead);
    listening_url(&silent, NULL, silent_url);
    listening_url(&unavailable, ANSWER_503, u503);
    const char *const urls[] = {dead, u503, silent_url};
    struct etcd *e = open_or_die(urls + 1, 1, 400);
    int64_t t0, lease;
    CHECK_EQ_I64(etcd_lease_grant(e, 5, &lease, err), CTRD_EAGAIN);
    CHECK(strstr(err, "HTTP 503") != NULL);
    etcd_close(e);
    e = open_or_die(urls, 3, 400);
    t0 = clock_mono_ms();
    CHECK_EQ_I64(etcd_lease_grant(e, 5, &lease, err), CTRD_EAGAIN);
    int64_t ms = clock_mono_ms() - t0;
    printf("dead, 503 and silent endpoints: CTRD_EAGAIN after %" PRId64
           " ms (%s)\n",
           ms, err);
    CHECK(ms >= 400 && ms < 1500);
    CHECK(strstr(err, silent_url) != NULL);
    etcd_close(e);
}

static void test_answer_cap(void)
{
    enum { VALUE_BYTES = 900 << 10 };
    char *value = calloc(1, VALUE_BYTES), key[16], err[CTRD_ERR_LEN];
    for (int i = 0; i < 5 && value; i++) {
        snprintf(key, sizeof key, "big/%d", i);
        CHECK_EQ_I64(etcd_put(db, key, value, VALUE_BYTES, 0, err), 0);
    }
    free(value);
    CHECK_EQ_I64(etcd_range_prefix(db, "big/", ignore_kv, NULL, err), CTRD_EIO);
    CHECK(strstr(err, "size cap") != NULL);
    CHECK_EQ_I64(etcd_range_prefix(db, "big/1", ignore_kv, NULL, err), 0);
}

int main(void)
{
    if (access(ETCD_BIN, X_OK) != 0) {
        printf("SKIP test_etcd: no %s\n", ETCD_BIN);
        return 0;
    }
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-etcd-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(stop_etcd);
    start_etcd();
    RUN(test_put_get_binary);
    RUN(test_range_prefix);
    RUN(test_create_once);
    RUN(test_delete_if);
    RUN(test_put_if_fenced);
    RUN(test_lease_revoke);
    RUN(test_lease_expires);
    RUN(test_failover);
    RUN(test_nothing_answers);
    RUN(test_answer_cap);
    return check_done();
}
