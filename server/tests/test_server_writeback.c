/* Durability without an fsync of the file: FILE_SYNC of a directory fd syncs the volume,
 * and the background write-back makes changes durable once they are older than the
 * server's interval (and not before). What is durable is judged as a power cut would: the
 * image at the start, plus the writes the device completed before its last FLUSH; that
 * image is then checked with fsck.fat and its file read with mtools. */
#include "tests/support/server_fixture.h"
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECOND 1000000000ull

static server_fixture fx;
static uint64_t fake_now;
static uint8_t *start_image;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static bool setup(uint64_t writeback_ns)
{
    fake_now = 100 * SECOND;
    sf_options o = {.workdir = test_tmpdir(),
                    .mkfs_args = "-F 16",
                    .writeback_ns = writeback_ns,
                    .clock_ns = fake_clock};
    if (!EXPECT(sf_init(&fx, &o) == 0) || !EXPECT(sf_initialise(&fx, 0, true) == FS_STATUS_SUCCESS))
        return false;
    /* From here on the log says what reached the device, and when it became durable. */
    start_image = malloc(fx.blk.image_bytes);
    if (!EXPECT(start_image))
        return false;
    memcpy(start_image, fx.blk.image, fx.blk.image_bytes);
    ram_device_clear_log(&fx.blk.dev);
    ram_device_set_journal(&fx.blk.dev, true);
    return true;
}

static void teardown(void)
{
    sf_fini(&fx);
    free(start_image);
    start_image = NULL;
}

/* Save the image a power cut now would leave, at `name` in the test directory. */
static bool save_durable(const char *name, char *path, size_t size)
{
    const ram_device *dev = &fx.blk.dev;
    uint64_t last_flush = 0;
    bool any_flush = false;
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        if (ram_device_log_at(dev, i)->code == BLK_REQ_FLUSH) {
            last_flush = i;
            any_flush = true;
        }
    }
    uint8_t *img = malloc(fx.blk.image_bytes);
    if (!img || !ram_device_journal_complete(dev))
        return false;
    memcpy(img, start_image, fx.blk.image_bytes);
    for (uint64_t i = 0; any_flush && i < last_flush; i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code == BLK_REQ_WRITE && e->written)
            memcpy(img + e->block * BLK_TRANSFER_SIZE, e->data, (size_t)e->written * BLK_TRANSFER_SIZE);
    }
    snprintf(path, size, "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(img, 1, fx.blk.image_bytes, f) == fx.blk.image_bytes;
    ok = f && fclose(f) == 0 && ok;
    free(img);
    return ok;
}

/* The durable image's fsck.fat -n findings other than the dirty marks of a mounted volume
 * (and lost clusters, with allow_lost) (0: none; docs/ORDERING.md §2), and the file's
 * contents as mtools reads them (empty when it is absent). */
static bool durable_file_lost(const char *name, const char *file, bool allow_lost, int *fsck_rc, char *out,
                              size_t size)
{
    char path[512], cmd[2400];
    if (!save_durable(name, path, sizeof path))
        return false;
    snprintf(cmd, sizeof cmd,
             "fsck.fat -n '%s' 2>&1 | grep -v -e '^fsck.fat ' -e 'Dirty bit is set' -e 'removing dirty bit' "
             "-e 'Free cluster summary uninitialized' -e '^ *Leaving filesystem unchanged' -e '^$' "
             "-e ' files, [0-9]*/[0-9]* clusters$' %s >'%s.fsck'; test ! -s '%s.fsck'",
             path, allow_lost ? "-e '^Reclaimed [0-9]* unused cluster'" : "", path, path);
    *fsck_rc = system(cmd);
    snprintf(cmd, sizeof cmd, "MTOOLS_SKIP_CHECK=1 mtype -i '%s' '::%s' 2>/dev/null", path, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    pclose(p);
    return true;
}

static bool durable_file(const char *name, const char *file, int *fsck_rc, char *out, size_t size)
{
    return durable_file_lost(name, file, false, fsck_rc, out, size);
}

static uint64_t create_and_write(const char *path, const char *text)
{
    uint64_t fd, done;
    uint64_t st = sf_open(&fx, 0, path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd);
    if (st == FS_STATUS_SUCCESS)
        st = sf_write(&fx, 0, fd, 0, text, strlen(text), &done);
    if (st == FS_STATUS_SUCCESS)
        st = sf_close(&fx, 0, fd);
    return st;
}

static void run_idle(void)
{
    for (int idle = 0; idle < 20;)
        idle = sf_step(&fx) ? 0 : idle + 1;
}

TEST(fsync_of_a_directory_makes_its_new_files_durable)
{
    CHECK(setup(2 * SECOND));
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/dir"), FS_STATUS_SUCCESS);
    CHECK_EQ(create_and_write("/dir/new.txt", "durable by the directory's fsync"), FS_STATUS_SUCCESS);
    int rc;
    char text[256];
    CHECK(durable_file("before.img", "/dir/new.txt", &rc, text, sizeof text));
    CHECK_MSG(strcmp(text, "durable by the directory's fsync") != 0, "already durable before the fsync");

    fs_cmd_params p = {.dir_open = {.path = sf_path(&fx, 0, "/dir")}};
    fs_cmpl opened = sf_call(&fx, 0, FS_CMD_DIR_OPEN, &p, sizeof p);
    CHECK_EQ(opened.status, FS_STATUS_SUCCESS);
    fs_cmd_params sync = {.file_sync = {.fd = opened.data}};
    CHECK(fs_server_deadline(&fx.server) != FS_SERVER_NO_DEADLINE);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SYNC, &sync, sizeof sync).status, FS_STATUS_SUCCESS);
    /* It covered everything: no write-back is due any more. */
    CHECK_EQ(fs_server_deadline(&fx.server), FS_SERVER_NO_DEADLINE);
    CHECK_EQ(fs_server_get_stats(&fx.server)->writebacks, 0);
    CHECK(durable_file("after.img", "/dir/new.txt", &rc, text, sizeof text));
    CHECK_EQ(rc, 0);
    CHECK_MSG(strcmp(text, "durable by the directory's fsync") == 0, "durable: '%s'", text);
    fs_cmd_params close = {.dir_close = {.fd = opened.data}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_CLOSE, &close, sizeof close).status, FS_STATUS_SUCCESS);
    /* A LionsOS client may sync a directory fd too. */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    teardown();
}

TEST(background_writeback_makes_changes_durable_after_the_interval)
{
    CHECK(setup(2 * SECOND));
    CHECK_EQ(fs_server_deadline(&fx.server), FS_SERVER_NO_DEADLINE);
    CHECK_EQ(create_and_write("/wb.txt", "written back by the server"), FS_STATUS_SUCCESS);
    CHECK_EQ(fs_server_deadline(&fx.server), 102 * SECOND);
    int rc;
    char text[256];
    fake_now = 101 * SECOND;
    run_idle();
    CHECK_EQ(fs_server_get_stats(&fx.server)->writebacks, 0);
    CHECK(durable_file("early.img", "/wb.txt", &rc, text, sizeof text));
    CHECK_MSG(strcmp(text, "written back by the server") != 0, "durable before the interval");

    fake_now = 102 * SECOND;
    run_idle();
    CHECK_EQ(fs_server_get_stats(&fx.server)->writebacks, 1);
    CHECK_EQ(fs_server_deadline(&fx.server), FS_SERVER_NO_DEADLINE);
    CHECK(durable_file("written.img", "/wb.txt", &rc, text, sizeof text));
    CHECK_EQ(rc, 0);
    CHECK_MSG(strcmp(text, "written back by the server") == 0, "durable: '%s'", text);

    /* Reading changes nothing and arms nothing; the next change starts a new interval. */
    uint64_t fd;
    CHECK_EQ(sf_open(&fx, 0, "/wb.txt", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(fs_server_deadline(&fx.server), FS_SERVER_NO_DEADLINE);
    fake_now = 200 * SECOND;
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_FILE_REMOVE, "/wb.txt"), FS_STATUS_SUCCESS);
    CHECK_EQ(fs_server_deadline(&fx.server), 202 * SECOND);
    fake_now = 202 * SECOND;
    run_idle();
    CHECK_EQ(fs_server_get_stats(&fx.server)->writebacks, 2);
    /* The removed file's clusters are freed after the flush that made the removal durable
     * (rule "removal before free"): until the next one, a cut leaves them lost clusters. */
    CHECK(durable_file_lost("removed.img", "/wb.txt", true, &rc, text, sizeof text));
    CHECK_EQ(rc, 0);
    CHECK_EQ(text[0], '\0');
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    teardown();
}

TEST(writeback_off_never_syncs_by_itself)
{
    CHECK(setup(0));
    CHECK_EQ(create_and_write("/off.txt", "only at unmount"), FS_STATUS_SUCCESS);
    CHECK_EQ(fs_server_deadline(&fx.server), FS_SERVER_NO_DEADLINE);
    fake_now = 10000 * SECOND;
    run_idle();
    CHECK_EQ(fs_server_get_stats(&fx.server)->writebacks, 0);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    teardown();
}

TEST(mount_report_of_a_clean_volume_says_nothing_happened)
{
    CHECK(setup(0));
    fs_cmd_params p = {.mount_report = {.buf = sf_buf(&fx, 0, NULL, sizeof(fs_mount_report))}};
    memset(sf_share(&fx, 0, p.mount_report.buf), 0xff, sizeof(fs_mount_report));
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_MOUNT_REPORT, &p, sizeof p).status, FS_STATUS_SUCCESS);
    fs_mount_report r;
    memcpy(&r, sf_share(&fx, 0, p.mount_report.buf), sizeof r);
    CHECK_EQ(r.flags, 0);
    CHECK_EQ(r.lost_freed, 0);
    CHECK_EQ(r.reserved, 0);
    fs_cmd_params small = {.mount_report = {.buf = sf_buf(&fx, 0, NULL, sizeof(fs_mount_report) - 1)}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_MOUNT_REPORT, &small, sizeof small).status, FS_STATUS_INVALID_BUFFER);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    teardown();
}
