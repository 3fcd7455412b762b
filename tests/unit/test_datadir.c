/* Unit tests of datadir: the MANIFEST's frame (magic line, checksum line)
 * written and checked, every flipped bit and cut refused with the file
 * named, an older format named as such; which names are ctrd's; what a
 * directory without a MANIFEST may be; garbage deleted by name only; the
 * lock. */
#include "check.h"
#include "crc32c.h"
#include "datadir.h"
#include "testfs.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[64];

static void path_of(char *path, size_t len, const char *name)
{
    snprintf(path, len, "%s/%s", tmp_dir, name);
}

static int read_rc(char *err)
{
    char *facts = NULL;
    size_t len;
    int rc = datadir_read_manifest(tmp_dir, &facts, &len, err);
    free(facts);
    return rc;
}

static const char facts[] = "seq 3\nterms_bytes 40\ninput wal 24 0\n";

static void test_manifest_frame(void)
{
    char err[CTRD_ERR_LEN], path[128];
    CHECK_EQ_I64(datadir_write_manifest(tmp_dir, facts, strlen(facts), err), 0);
    path_of(path, sizeof path, "MANIFEST");
    size_t len;
    unsigned char *text = testfs_read(path, &len);
    const char *magic = "ctrd-manifest 2\n";
    size_t body = strlen(magic) + strlen(facts);
    CHECK_EQ_U64(len, body + strlen("checksum 01234567\n"));
    CHECK(memcmp(text, magic, strlen(magic)) == 0);
    char want[32];
    snprintf(want, sizeof want, "checksum %08x\n", crc32c(0, text, body));
    CHECK(memcmp(text + body, want, strlen(want)) == 0);
    char *back = NULL;
    size_t back_len;
    CHECK_EQ_I64(datadir_read_manifest(tmp_dir, &back, &back_len, err), 0);
    CHECK(back && back_len == strlen(facts) && strcmp(back, facts) == 0);
    free(back);
    /* Every flipped bit, every cut. */
    unsigned char *bad = malloc(len);
    unsigned missed = 0, unnamed = 0;
    for (size_t at = 0; at < len; at++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, text, len);
            bad[at] ^= (unsigned char)(1u << bit);
            testfs_write(path, bad, len);
            missed += read_rc(err) != CTRD_ECORRUPT;
            unnamed += strstr(err, "MANIFEST") == NULL;
        }
    }
    for (size_t cut = 0; cut < len; cut++) {
        testfs_write(path, text, cut);
        missed += read_rc(err) != CTRD_ECORRUPT;
    }
    CHECK_EQ_U64(missed, 0);
    CHECK_EQ_U64(unnamed, 0);
    testfs_write(path, "ctrd-manifest 1\nseq 1\n", 22);
    CHECK_EQ_I64(read_rc(err), CTRD_ECORRUPT);
    CHECK(strstr(err, "ctrd-manifest 1") != NULL);
    unlink(path);
    CHECK_EQ_I64(read_rc(err), CTRD_ENOTFOUND);
    free(bad);
    free(text);
}

static void test_names(void)
{
    static const char *const fixed[] = {"MANIFEST", "LOCK", "terms.dat", "wal"};
    static const char *const state[] = {
        "MANIFEST.tmp",  "counts-12.dat",    "counts-12.delta",
        "pending-0.dat", "q489946-12-0.run", "m489946-12-3.marks"};
    static const char *const foreign[] = {
        "counts-.dat",  "counts-1.dat.bak", "counts-x.dat", "q1-2.run",
        "q1-2-3.marks", "m1-2-3.run",       "q-1-2-3.run",  "notes.txt",
        "terms.dat~",   "pending-1",        "wal2",         ""};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        CHECK(datadir_classify(fixed[i]) == DATADIR_FIXED);
    for (size_t i = 0; i < sizeof state / sizeof *state; i++)
        CHECK(datadir_classify(state[i]) == DATADIR_STATE);
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        if (datadir_classify(foreign[i]) != DATADIR_FOREIGN)
            CHECK_FAIL_AT("'%s' classified as ctrd's", foreign[i]);
    }
    const char *manifest = "counts counts-3.dat 100 0a0b0c0d\n"
                           "run 7 q7-3-0.run 200 01020304\n";
    CHECK(datadir_names_file(manifest, "counts-3.dat"));
    CHECK(datadir_names_file(manifest, "q7-3-0.run"));
    CHECK(!datadir_names_file(manifest, "counts-3"));
    CHECK(!datadir_names_file(manifest, "q7-3-0.ru"));
}

static void touch(const char *name)
{
    char path[128];
    path_of(path, sizeof path, name);
    testfs_write(path, "x", 1);
}

static void test_new_directories_and_garbage(void)
{
    char err[CTRD_ERR_LEN], path[128];
    path_of(path, sizeof path, "MANIFEST");
    unlink(path);
    CHECK_EQ_I64(datadir_check_new(tmp_dir, err), 0);
    touch("LOCK");
    touch("MANIFEST.tmp");
    CHECK_EQ_I64(datadir_check_new(tmp_dir, err), 0);
    touch("counts-4.dat");
    CHECK_EQ_I64(datadir_check_new(tmp_dir, err), CTRD_ECORRUPT);
    CHECK(strstr(err, "counts-4.dat") != NULL);
    path_of(path, sizeof path, "counts-4.dat");
    unlink(path);
    touch("notes.txt");
    CHECK_EQ_I64(datadir_check_new(tmp_dir, err), CTRD_EINVAL);
    CHECK(strstr(err, "notes.txt") != NULL);
    path_of(path, sizeof path, "absent");
    CHECK_EQ_I64(datadir_check_new(path, err), 0);
    /* Garbage: only checkpoint files the facts do not name. */
    touch("counts-4.dat");
    touch("counts-5.dat");
    touch("q7-5-0.run");
    touch("terms.dat");
    datadir_remove_garbage(tmp_dir, "counts counts-5.dat 1 00000000\n");
    struct stat st;
    path_of(path, sizeof path, "counts-4.dat");
    CHECK(stat(path, &st) != 0);
    path_of(path, sizeof path, "q7-5-0.run");
    CHECK(stat(path, &st) != 0);
    path_of(path, sizeof path, "MANIFEST.tmp");
    CHECK(stat(path, &st) != 0);
    static const char *const kept[] = {"counts-5.dat", "notes.txt", "terms.dat",
                                       "LOCK"};
    for (size_t i = 0; i < 4; i++) {
        path_of(path, sizeof path, kept[i]);
        CHECK(stat(path, &st) == 0);
    }
}

static void test_lock(void)
{
    char err[CTRD_ERR_LEN], path[128];
    int a = -1, b = -1;
    CHECK_EQ_I64(datadir_lock(tmp_dir, 1, &a, err), 0);
    CHECK_EQ_I64(datadir_lock(tmp_dir, 1, &b, err), CTRD_EBUSY);
    if (b >= 0)
        close(b);
    close(a);
    CHECK_EQ_I64(datadir_lock(tmp_dir, 0, &b, err), 0);
    if (b >= 0)
        close(b);
    path_of(path, sizeof path, "LOCK");
    unlink(path);
    CHECK_EQ_I64(datadir_lock(tmp_dir, 0, &b, err), 0);
    CHECK_EQ_I64(b, -1);
    CHECK(access(path, F_OK) != 0); /* not created */
    path_of(path, sizeof path, "absent");
    CHECK_EQ_I64(datadir_lock(path, 1, &b, err), CTRD_ENOTFOUND);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ctrd-datadir-XXXXXX");
    if (!mkdtemp(tmp_dir))
        return 1;
    RUN(test_manifest_frame);
    RUN(test_names);
    RUN(test_new_directories_and_garbage);
    RUN(test_lock);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    return check_done() | (system(cmd) != 0);
}
