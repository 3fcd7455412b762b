/* Unit tests of what distributed ctrd relies on in the packaged NATS
 * JetStream (nats-server 2.9.10, libnats 3.4.1), on a real single-node
 * server started here: cluster_connect() makes both streams (and finds them
 * made); a publish that expects the subject's last sequence is refused once
 * another publish moved it, which is how a joiner's delta chain fences an
 * older owner (cluster_joiner.h); the chain's tail is read back with
 * js_GetLastMsg; a repeated Nats-Msg-Id is acknowledged as a duplicate of
 * the first; cluster_msg_meta() gives the stream sequence, the stored time
 * and what is still pending. */
#include "check.h"
#include "clock.h"
#include "cluster.h"
#include "testfs.h"
#include "testnet.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define NATS_BIN "/usr/sbin/nats-server"

static char tmp_dir[64], cluster_file[96];
static pid_t nats_pid;
static natsConnection *nc;
static jsCtx *js;

static void stop_nats(void)
{
    cluster_disconnect(nc, js);
    if (nats_pid > 0) {
        kill(nats_pid, SIGKILL);
        waitpid(nats_pid, NULL, 0);
    }
    testfs_remove_tree(tmp_dir);
}

/* nats-server with JetStream on a free port in tmp_dir, and the cluster
 * file naming it (one replica). */
static void start_nats(void)
{
    char port_s[16], store[96], log[96];
    int port, fd = testnet_bound_socket(&port);
    close(fd);
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(store, sizeof store, "%s/store", tmp_dir);
    snprintf(log, sizeof log, "%s/log", tmp_dir);
    if ((nats_pid = fork()) == 0) {
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out, 1);
        dup2(out, 2);
        execl(NATS_BIN, "nats-server", "-a", "127.0.0.1", "-p", port_s, "-js",
              "-sd", store, (char *)NULL);
        _exit(127);
    }
    char text[256];
    int n = snprintf(text, sizeof text,
                     "{\"partitions\":64,\"replicas\":1,\"lease_ttl_ms\":5000,"
                     "\"nats\":[\"nats://127.0.0.1:%d\"],"
                     "\"etcd\":[\"http://127.0.0.1:1\"]}\n",
                     port);
    snprintf(cluster_file, sizeof cluster_file, "%s/cluster.json", tmp_dir);
    testfs_write(cluster_file, text, (size_t)n);
}

static void connect_or_die(void)
{
    struct cluster_config cfg;
    char err[CTRD_ERR_LEN];
    if (cluster_config_load(cluster_file, &cfg, err) != 0 ||
        cluster_connect(&cfg, "test", &nc, &js, err) != 0) {
        fprintf(stderr, "cannot connect: %s (see %s/log)\n", err, tmp_dir);
        exit(1);
    }
}

/* Publishes body to subject with the options: the JetStream error code (0
 * when stored) and the sequence it got. */
static int publish(const char *subject, const char *body, jsPubOptions *po,
                   uint64_t *seq, int *duplicate)
{
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_Publish(&ack, js, subject, body, (int)strlen(body), po, &jerr);
    if (s == NATS_OK) {
        *seq = ack->Sequence;
        if (duplicate)
            *duplicate = ack->Duplicate;
        jsPubAck_Destroy(ack);
        return 0;
    }
    return jerr ? (int)jerr : -1;
}

static void test_streams_made_once(void)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CHECK(js_GetStreamInfo(&si, js, CLUSTER_STREAM_IN, NULL, &jerr) == NATS_OK);
    jsStreamInfo_Destroy(si);
    CHECK(js_GetStreamInfo(&si, js, CLUSTER_STREAM_DELTA, NULL, &jerr) ==
          NATS_OK);
    jsStreamInfo_Destroy(si);
    /* A second process finds them made. */
    natsConnection *nc2 = nc;
    jsCtx *js2 = js;
    connect_or_die();
    cluster_disconnect(nc2, js2);
}

/* The chain: each publish expects the subject's last sequence. */
static void test_chain_fences_a_stale_writer(void)
{
    jsPubOptions po;
    uint64_t a = 0, b = 0, c = 0;
    jsPubOptions_Init(&po);
    po.ExpectNoMessage = true;
    CHECK(publish("ctrd.d.5", "first", &po, &a, NULL) == 0);
    /* A second "first link" (an owner that saw no chain yet). */
    CHECK(publish("ctrd.d.5", "rival", &po, &b, NULL) ==
          JSStreamWrongLastSequenceErr);
    jsPubOptions_Init(&po);
    po.ExpectLastSubjectSeq = a;
    CHECK(publish("ctrd.d.5", "second", &po, &b, NULL) == 0);
    /* The old owner, who last saw a, is refused. */
    CHECK(publish("ctrd.d.5", "stale", &po, &c, NULL) ==
          JSStreamWrongLastSequenceErr);
    /* Other subjects are chains of their own. */
    jsPubOptions_Init(&po);
    po.ExpectNoMessage = true;
    CHECK(publish("ctrd.d.6", "other", &po, &c, NULL) == 0);
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    CHECK(js_GetLastMsg(&m, js, CLUSTER_STREAM_DELTA, "ctrd.d.5", NULL,
                        &jerr) == NATS_OK);
    if (m) {
        CHECK(natsMsg_GetSequence(m) == b);
        CHECK_EQ_MEM(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m),
                     "second");
        natsMsg_Destroy(m);
    }
    m = NULL;
    js_GetLastMsg(&m, js, CLUSTER_STREAM_DELTA, "ctrd.d.7", NULL, &jerr);
    CHECK(m == NULL && jerr == JSNoMessageFoundErr);
    natsMsg_Destroy(m);
}

static void test_msg_id_dedup(void)
{
    jsPubOptions po;
    uint64_t a = 0, b = 0;
    int dup = -1;
    jsPubOptions_Init(&po);
    po.MsgId = "front-1.boot.1";
    CHECK(publish("ctrd.in.3", "x", &po, &a, &dup) == 0 && dup == 0);
    CHECK(publish("ctrd.in.3", "x", &po, &b, &dup) == 0 && dup == 1);
    CHECK(a == b);
}

static void test_meta(void)
{
    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    uint64_t s1 = 0, s2 = 0;
    int64_t before = clock_wall_ms();
    CHECK(publish("ctrd.in.9", "one", NULL, &s1, NULL) == 0);
    CHECK(publish("ctrd.in.9", "two", NULL, &s2, NULL) == 0);
    jsSubOptions_Init(&so);
    so.Stream = CLUSTER_STREAM_IN;
    so.Ordered = true;
    CHECK(js_SubscribeSync(&sub, js, "ctrd.in.9", NULL, &so, &jerr) == NATS_OK);
    for (int i = 0; sub && i < 2; i++) {
        natsMsg *m = NULL;
        struct cluster_meta meta;
        CHECK(natsSubscription_NextMsg(&m, sub, 5000) == NATS_OK);
        CHECK(m && cluster_msg_meta(m, &meta) == 0);
        CHECK(meta.seq == (i ? s2 : s1));
        CHECK(meta.pending == (uint64_t)(1 - i));
        CHECK(meta.time_ms >= before - 1000 &&
              meta.time_ms <= clock_wall_ms() + 1000);
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(sub);
    /* A message that did not come from a stream has no metadata. */
    natsMsg *plain = NULL;
    struct cluster_meta meta;
    natsMsg_Create(&plain, "x", NULL, "y", 1);
    CHECK(cluster_msg_meta(plain, &meta) == CTRD_EINVAL);
    natsMsg_Destroy(plain);
}

int main(void)
{
    if (access(NATS_BIN, X_OK) != 0) {
        printf("SKIP test_cluster_nats: %s is not installed\n", NATS_BIN);
        return 0;
    }
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-test-nats.XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    atexit(stop_nats);
    start_nats();
    connect_or_die();
    RUN(test_streams_made_once);
    RUN(test_chain_fences_a_stale_writer);
    RUN(test_msg_id_dedup);
    RUN(test_meta);
    return check_done();
}
