/* Protocol conformance: every command, its success path and the error statuses it can
 * return, through the real event loop with an in-process device. */
#include "tests/support/server_fixture.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

static server_fixture fx;

static bool setup(const char *mkfs_args)
{
    sf_options o = {.workdir = test_tmpdir(), .mkfs_args = mkfs_args, .random_order = true, .seed = test_seed()};
    if (!EXPECT(sf_init(&fx, &o) == 0))
        return false;
    return EXPECT(sf_initialise(&fx, 0, true) == FS_STATUS_SUCCESS);
}

static bool teardown_clean(void)
{
    bool ok = EXPECT(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status == FS_STATUS_SUCCESS);
    ok = ok && EXPECT(sf_fsck(&fx, "protocol.img") == 0);
    sf_fini(&fx);
    return ok;
}

TEST(commands_before_initialise_are_refused_and_unknown_commands_answered)
{
    sf_options o = {.workdir = test_tmpdir()};
    CHECK(sf_init(&fx, &o) == 0);
    fs_cmd_params p = {.file_size = {.fd = 0}};
    /* Before any INITIALISE a client speaks LionsOS's dialect: not mounted is an ERROR. */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).status, FS_STATUS_ERROR);
    CHECK_EQ(sf_call(&fx, 0, 9999, NULL, 0).status, FS_STATUS_INVALID_COMMAND);
    CHECK_EQ(sf_call(&fx, 0, UINT64_MAX, NULL, 0).status, FS_STATUS_INVALID_COMMAND);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_COUNT, NULL, 0).status, FS_STATUS_INVALID_COMMAND);
    /* An opted-in client keeps its dialect after DEINITIALISE, until its next INITIALISE. */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).status, FS_STATUS_NOT_MOUNTED);
    /* The magic with a flag nobody defined is refused. */
    fs_cmd_params bad = {.initialise = {FS_INITIALISE_MAGIC, FS_INITIALISE_EXTENSIONS | 2}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_INITIALISE, &bad, sizeof bad).status, FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).status, FS_STATUS_NOT_MOUNTED);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

TEST(file_open_write_read_size_truncate_sync_close)
{
    CHECK(setup(NULL));
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/hello.txt", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_NO_FILE);
    CHECK_EQ(sf_open(&fx, 0, "/hello.txt", FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "hello, world", 12, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 12);
    char buf[64] = {0};
    CHECK_EQ(sf_read(&fx, 0, fd, 7, buf, sizeof buf, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 5);
    CHECK(memcmp(buf, "world", 5) == 0);
    CHECK_EQ(sf_read(&fx, 0, fd, 100, buf, sizeof buf, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 0);

    fs_cmd_params p = {.file_size = {.fd = fd}};
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(c.data, 12);
    p = (fs_cmd_params){.file_truncate = {.fd = fd, .length = 5}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_TRUNCATE, &p, sizeof p).status, FS_STATUS_SUCCESS);
    p = (fs_cmd_params){.file_size = {.fd = fd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).data, 5);
    p = (fs_cmd_params){.file_sync = {.fd = fd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SYNC, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_INVALID_FD);
    CHECK_EQ(sf_read(&fx, 0, fd, 0, buf, 4, &done), FS_STATUS_INVALID_FD);
    CHECK(teardown_clean());
}

TEST(open_flags_access_modes_and_extensions)
{
    CHECK(setup("-F 32"));
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/f", 3, &fd), FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(sf_open(&fx, 0, "/f", 1u << 20, &fd), FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "abcdef", 6, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_read(&fx, 0, fd, 0, NULL, 6, &done), FS_STATUS_INVALID_READ);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);

    uint64_t rfd;
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_READ_ONLY, &rfd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, rfd, 0, "x", 1, &done), FS_STATUS_INVALID_WRITE);
    fs_cmd_params p = {.file_truncate = {.fd = rfd, .length = 0}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_TRUNCATE, &p, sizeof p).status, FS_STATUS_INVALID_WRITE);
    CHECK_EQ(sf_close(&fx, 0, rfd), FS_STATUS_SUCCESS);

    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE | FS_OPEN_FLAGS_READ_WRITE, &fd),
             FS_STATUS_ALREADY_EXISTS);
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_APPEND, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "gh", 2, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    char buf[16] = {0};
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_TRUNCATE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_read(&fx, 0, fd, 0, buf, sizeof buf, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 0);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "new", 3, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);

    /* FSTAT and STAT agree; STATFS reports the volume. */
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
    fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params e = {.fstat = {.fd = fd, .buf = sb}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FSTAT, &e, sizeof e).status, FS_STATUS_SUCCESS);
    fs_stat st;
    memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    CHECK_EQ(st.size, 3);
    CHECK_EQ(st.mode & FS_MODE_TYPE_MASK, FS_MODE_REGULAR);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    fs_buffer fb = sf_buf(&fx, 0, NULL, sizeof(fs_statfs));
    e = (fs_cmd_params){.statfs = {.buf = fb}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STATFS, &e, sizeof e).status, FS_STATUS_SUCCESS);
    fs_statfs sfs;
    memcpy(&sfs, sf_share(&fx, 0, fb), sizeof sfs);
    CHECK_EQ(sfs.fat_type, 32);
    CHECK(sfs.blocks_free > 0 && sfs.blocks_free < sfs.blocks);
    e = (fs_cmd_params){.statfs = {.buf = {fb.offset, sizeof(fs_statfs) - 1}}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STATFS, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);

    e = (fs_cmd_params){.set_times = {.path = sf_path(&fx, 0, "/f"), .atime = -1, .mtime = 1700000000}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_TIMES, &e, sizeof e).status, FS_STATUS_SUCCESS);
    fs_cmd_params p2 = {.stat = {.path = sf_path(&fx, 0, "/f"), .buf = sb}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STAT, &p2, sizeof p2).status, FS_STATUS_SUCCESS);
    memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    CHECK_EQ(st.mtime, 1700000000);
    CHECK(teardown_clean());
}

static uint64_t dir_read_name(int client, uint64_t fd, char *name, size_t cap, uint64_t *len)
{
    fs_buffer nb = sf_buf(&fx, client, NULL, cap);
    fs_cmd_params p = {.dir_read = {.fd = fd, .buf = nb}};
    fs_cmpl c = sf_call(&fx, client, FS_CMD_DIR_READ, &p, sizeof p);
    *len = c.data;
    if (c.status == FS_STATUS_SUCCESS)
        memcpy(name, sf_share(&fx, client, nb), c.data);
    return c.status;
}

TEST(directories_create_list_seek_tell_rewind_remove)
{
    CHECK(setup(NULL));
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/d"), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/d"), FS_STATUS_ALREADY_EXISTS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/missing/d"), FS_STATUS_NO_FILE);
    const char *names[] = {"alpha", "Beta.txt", "a much longer name than eight dot three.data"};
    for (int i = 0; i < 3; i++) {
        char path[128];
        uint64_t fd;
        snprintf(path, sizeof path, "/d/%s", names[i]);
        CHECK_EQ(sf_open(&fx, 0, path, FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
        CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    }
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_REMOVE, "/d"), FS_STATUS_NOT_EMPTY);

    fs_cmd_params p = {.dir_open = {.path = sf_path(&fx, 0, "/d")}};
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_DIR_OPEN, &p, sizeof p);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    uint64_t dfd = c.data;
    char name[800];
    uint64_t len;
    bool seen[3] = {false};
    uint64_t second_pos = 0;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(dir_read_name(0, dfd, name, sizeof name, &len), FS_STATUS_SUCCESS);
        for (int k = 0; k < 3; k++)
            if (len == strlen(names[k]) && memcmp(name, names[k], len) == 0)
                seen[k] = true;
        if (i == 0) {
            p = (fs_cmd_params){.dir_tell = {.fd = dfd}};
            second_pos = sf_call(&fx, 0, FS_CMD_DIR_TELL, &p, sizeof p).data;
        }
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    CHECK_EQ(dir_read_name(0, dfd, name, sizeof name, &len), FS_STATUS_END_OF_DIRECTORY);

    /* A name buffer too small: an error, and the entry is not skipped. */
    p = (fs_cmd_params){.dir_rewind = {.fd = dfd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_REWIND, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(dir_read_name(0, dfd, name, 1, &len), FS_STATUS_INVALID_BUFFER);
    CHECK_EQ(dir_read_name(0, dfd, name, sizeof name, &len), FS_STATUS_SUCCESS);
    char first[800];
    uint64_t first_len = len;
    memcpy(first, name, len);
    p = (fs_cmd_params){.dir_seek = {.fd = dfd, .loc = (int64_t)second_pos}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_SEEK, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(dir_read_name(0, dfd, name, sizeof name, &len), FS_STATUS_SUCCESS);
    CHECK(len != first_len || memcmp(name, first, len) != 0);
    p = (fs_cmd_params){.dir_seek = {.fd = dfd, .loc = -5}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_SEEK, &p, sizeof p).status, FS_STATUS_INVALID_ARGUMENT);

    /* DIR_READ_STAT returns the entry's stat too. */
    p = (fs_cmd_params){.dir_rewind = {.fd = dfd}};
    sf_call(&fx, 0, FS_CMD_DIR_REWIND, &p, sizeof p);
    fs_buffer nb = sf_buf(&fx, 0, NULL, 800), sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params e = {.dir_read_stat = {.fd = dfd, .name = nb, .stat = sb}};
    c = sf_call(&fx, 0, FS_CMD_DIR_READ_STAT, &e, sizeof e);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    fs_stat st;
    memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    CHECK_EQ(st.mode & FS_MODE_TYPE_MASK, FS_MODE_REGULAR);

    /* A directory fd is not a file fd, and the reverse. */
    fs_cmd_params fp = {.file_size = {.fd = dfd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &fp, sizeof fp).status, FS_STATUS_INVALID_FD);
    CHECK_EQ(sf_close(&fx, 0, dfd), FS_STATUS_INVALID_FD);
    p = (fs_cmd_params){.dir_close = {.fd = dfd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_CLOSE, &p, sizeof p).status, FS_STATUS_SUCCESS);

    for (int i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/d/%s", names[i]);
        CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_FILE_REMOVE, path), FS_STATUS_SUCCESS);
        CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_FILE_REMOVE, path), FS_STATUS_NO_FILE);
    }
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_REMOVE, "/d"), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_REMOVE, "/d"), FS_STATUS_NO_FILE);
    CHECK(teardown_clean());
}

TEST(rename_and_stat)
{
    CHECK(setup(NULL));
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/a", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "data", 4, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/sub"), FS_STATUS_SUCCESS);
    fs_cmd_params p = {.rename = {.old_path = sf_path(&fx, 0, "/a"), .new_path = sf_path(&fx, 0, "/sub/b")}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_RENAME, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_RENAME, &p, sizeof p).status, FS_STATUS_NO_FILE);
    fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params s = {.stat = {.path = sf_path(&fx, 0, "/sub/b"), .buf = sb}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STAT, &s, sizeof s).status, FS_STATUS_SUCCESS);
    fs_stat st;
    memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    CHECK_EQ(st.size, 4);
    s.stat.path = sf_path(&fx, 0, "/sub");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STAT, &s, sizeof s).status, FS_STATUS_SUCCESS);
    memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    CHECK_EQ(st.mode & FS_MODE_TYPE_MASK, FS_MODE_DIRECTORY);
    s.stat.buf.size = sizeof(fs_stat) - 1;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STAT, &s, sizeof s).status, FS_STATUS_INVALID_BUFFER);
    p = (fs_cmd_params){.rename = {.old_path = sf_path(&fx, 0, "/sub"), .new_path = sf_path(&fx, 0, "/sub/inner")}};
    CHECK(sf_call(&fx, 0, FS_CMD_RENAME, &p, sizeof p).status != FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

TEST(bad_buffers_paths_and_fds_get_errors)
{
    CHECK(setup(NULL));
    uint64_t fd;
    fs_cmd_params p;
    /* Buffers outside the share region, and offset + size wrapping around. */
    fs_buffer bad[] = {
        {SF_SHARE_SIZE + 1, 1},
        {SF_SHARE_SIZE - 2, 4},
        {UINT64_MAX - 2, 8},
        {16, UINT64_MAX},
    };
    CHECK_EQ(sf_open(&fx, 0, "/ok", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (fs_cmd_params){.file_open = {.path = bad[i], .flags = 0}};
        CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_OPEN, &p, sizeof p).status,
                 bad[i].size > FS_MAX_PATH_LENGTH ? FS_STATUS_INVALID_PATH : FS_STATUS_INVALID_BUFFER);
        p = (fs_cmd_params){.file_read = {.fd = fd, .offset = 0, .buf = bad[i]}};
        CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_READ, &p, sizeof p).status, FS_STATUS_INVALID_BUFFER);
        p = (fs_cmd_params){.file_write = {.fd = fd, .offset = 0, .buf = bad[i]}};
        CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_WRITE, &p, sizeof p).status, FS_STATUS_INVALID_BUFFER);
    }
    /* Paths: too long, with a NUL, a component over 255 bytes. */
    static char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    p = (fs_cmd_params){.file_open = {.path = sf_buf(&fx, 0, longpath, 4096)}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_OPEN, &p, sizeof p).status, FS_STATUS_INVALID_PATH);
    p = (fs_cmd_params){.file_open = {.path = sf_buf(&fx, 0, "/a\0b", 4)}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_OPEN, &p, sizeof p).status, FS_STATUS_INVALID_PATH);
    p = (fs_cmd_params){.file_open = {.path = sf_buf(&fx, 0, longpath, 300), .flags = FS_OPEN_FLAGS_CREATE}};
    uint64_t st = sf_call(&fx, 0, FS_CMD_FILE_OPEN, &p, sizeof p).status;
    CHECK(st == FS_STATUS_NAME_TOO_LONG || st == FS_STATUS_INVALID_NAME);
    /* fds that were never issued (another slot, generation 0, past 2^31), of the wrong
     * generation (fd = generation << 7 | slot), garbage. */
    CHECK(fd < (1ull << 31));
    uint64_t bogus[] = {fd + 1, fd ^ (1u << 7), fd ^ (1u << 20), UINT64_MAX, 0, fd | (1ull << 31), fd + (7ull << 32)};
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
        p = (fs_cmd_params){.file_size = {.fd = bogus[i]}};
        CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).status, FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.dir_tell = {.fd = bogus[i]}};
        CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_TELL, &p, sizeof p).status, FS_STATUS_INVALID_FD);
    }
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    /* The slot is reused with a new generation: the old number stays dead. */
    uint64_t fd2;
    CHECK_EQ(sf_open(&fx, 0, "/ok", FS_OPEN_FLAGS_READ_ONLY, &fd2), FS_STATUS_SUCCESS);
    CHECK(fd2 != fd);
    p = (fs_cmd_params){.file_size = {.fd = fd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SIZE, &p, sizeof p).status, FS_STATUS_INVALID_FD);
    CHECK_EQ(sf_close(&fx, 0, fd2), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* OPEN_STAT and SET_TIMES_STAT answer with the record a separate STAT would give; a bad
 * stat buffer is refused before anything is created or changed. */
TEST(open_stat_and_set_times_stat_return_the_record)
{
    CHECK(setup("-F 32"));
    fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_buffer small = {sb.offset, sizeof(fs_stat) - 1};
    fs_buffer outside = {SF_SHARE_SIZE - 8, sizeof(fs_stat)};
    fs_cmd_params e = {.open_stat = {.path = sf_path(&fx, 0, "/n"), .flags = FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE,
                                     .stat = small}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.open_stat.stat = outside;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_FILE_REMOVE, "/n"), FS_STATUS_NO_FILE); /* nothing created */
    e.open_stat.stat = sb;
    e.open_stat.flags = 64; /* unknown flag */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_INVALID_ARGUMENT);
    e.open_stat.flags = FS_OPEN_FLAGS_READ_ONLY;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_NO_FILE);
    e.open_stat.path = (fs_buffer){SF_SHARE_SIZE + 1, 2};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.open_stat.path = sf_path(&fx, 0, "/n");
    e.open_stat.flags = FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE;
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    uint64_t fd = c.data, done;
    fs_stat opened, stated;
    memcpy(&opened, sf_share(&fx, 0, sb), sizeof opened);
    CHECK_EQ(opened.mode & FS_MODE_TYPE_MASK, FS_MODE_REGULAR);
    CHECK_EQ(opened.size, 0);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "hello", 5, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    /* Opening an existing file reports its current record; the fd works. */
    c = sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    memcpy(&opened, sf_share(&fx, 0, sb), sizeof opened);
    CHECK_EQ(opened.size, 5);
    CHECK_EQ(sf_close(&fx, 0, c.data), FS_STATUS_SUCCESS);
    e.open_stat.path = sf_path(&fx, 0, "/");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_STAT, &e, sizeof e).status, FS_STATUS_IS_DIRECTORY);

    /* SET_TIMES_STAT: an odd second comes back rounded down to FAT's two seconds, the same
     * record STAT then gives. */
    fs_cmd_params t = {.set_times_stat = {.path = sf_path(&fx, 0, "/n"), .atime = -1, .mtime = 1700000001, .stat = small}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_TIMES_STAT, &t, sizeof t).status, FS_STATUS_INVALID_BUFFER);
    t.set_times_stat.stat = sb;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_TIMES_STAT, &t, sizeof t).status, FS_STATUS_SUCCESS);
    memcpy(&opened, sf_share(&fx, 0, sb), sizeof opened);
    CHECK_EQ(opened.mtime, 1700000000);
    CHECK_EQ(opened.size, 5);
    fs_buffer sb2 = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params p = {.stat = {.path = sf_path(&fx, 0, "/n"), .buf = sb2}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_STAT, &p, sizeof p).status, FS_STATUS_SUCCESS);
    memcpy(&stated, sf_share(&fx, 0, sb2), sizeof stated);
    CHECK(memcmp(&opened, &stated, sizeof opened) == 0);
    t.set_times_stat.path = sf_path(&fx, 0, "/missing");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_TIMES_STAT, &t, sizeof t).status, FS_STATUS_NO_FILE);
    t.set_times_stat.path = sf_buf(&fx, 0, "/a\0b", 4);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_TIMES_STAT, &t, sizeof t).status, FS_STATUS_INVALID_PATH);
    CHECK(teardown_clean());
}

/* OPEN_READ opens and returns the record and the first bytes; READ_PATH reads without
 * keeping an fd; bad buffers, paths and flags are refused before anything is opened. */
static fs_stat stat_of(const char *path)
{
    fs_stat st;
    memset(&st, 0, sizeof st);
    fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params p = {.stat = {.path = sf_path(&fx, 0, path), .buf = sb}};
    if (EXPECT(sf_call(&fx, 0, FS_CMD_STAT, &p, sizeof p).status == FS_STATUS_SUCCESS))
        memcpy(&st, sf_share(&fx, 0, sb), sizeof st);
    return st;
}

static uint64_t file_set_times(uint64_t fd, int64_t atime, int64_t mtime)
{
    fs_cmd_params p = {.file_set_times = {.fd = fd, .atime = atime, .mtime = mtime}};
    return sf_call(&fx, 0, FS_CMD_FILE_SET_TIMES, &p, sizeof p).status;
}

/* FILE_SET_TIMES: SET_TIMES on an open file or directory, whatever its access mode; queued
 * with the fd's FILE_CLOSE after it, the close waits for it (the copy tool's batch). */
TEST(file_set_times_sets_an_open_files_times)
{
    CHECK(setup("-F 32"));
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "data", 4, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(file_set_times(fd, -1, 1600000000), FS_STATUS_SUCCESS);
    CHECK_EQ(stat_of("/f").mtime, 1600000000);

    fs_cmd_params times = {.file_set_times = {.fd = fd, .atime = -1, .mtime = 1500000000}};
    fs_cmd_params close = {.file_close = {.fd = fd}};
    uint64_t times_id = sf_submit(&fx, 0, FS_CMD_FILE_SET_TIMES, &times, sizeof times);
    uint64_t close_id = sf_submit(&fx, 0, FS_CMD_FILE_CLOSE, &close, sizeof close);
    CHECK(times_id && close_id);
    int answered = 0;
    for (int i = 0; i < 10000 && answered < 2; i++) {
        sf_step(&fx);
        fs_cmpl c;
        while (sf_take(&fx, 0, &c)) {
            CHECK(c.id == times_id || c.id == close_id);
            CHECK_EQ(c.status, FS_STATUS_SUCCESS);
            answered++;
        }
    }
    CHECK_EQ(answered, 2);
    fs_stat st = stat_of("/f");
    CHECK_EQ(st.mtime, 1500000000);
    CHECK_EQ(st.size, 4);
    CHECK_EQ(file_set_times(fd, -1, 1400000000), FS_STATUS_INVALID_FD); /* closed */
    CHECK_EQ(file_set_times(12345, -1, 1400000000), FS_STATUS_INVALID_FD);

    /* a read-only fd, then a directory's */
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(file_set_times(fd, -1, 1400000000), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(stat_of("/f").mtime, 1400000000);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/d"), FS_STATUS_SUCCESS);
    fs_cmd_params p = {.dir_open = {.path = sf_path(&fx, 0, "/d")}};
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_DIR_OPEN, &p, sizeof p);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(file_set_times(c.data, -1, 1300000000), FS_STATUS_SUCCESS);
    p = (fs_cmd_params){.dir_close = {.fd = c.data}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_CLOSE, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(stat_of("/d").mtime, 1300000000);
    CHECK(teardown_clean());

    /* a read-only volume refuses it */
    sf_options o = {.workdir = test_tmpdir(), .read_only = true};
    CHECK(sf_init(&fx, &o) == 0);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    p = (fs_cmd_params){.dir_open = {.path = sf_path(&fx, 0, "/")}};
    c = sf_call(&fx, 0, FS_CMD_DIR_OPEN, &p, sizeof p);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(file_set_times(c.data, -1, 1300000000), FS_STATUS_READ_ONLY_FS);
    sf_fini(&fx);
}

TEST(open_read_and_read_path_return_the_first_bytes)
{
    CHECK(setup("-F 32"));
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY, &fd), FS_STATUS_SUCCESS);
    static char text[10000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 23);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, text, sizeof text, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    const size_t head = sizeof(fs_open_read_record);
    fs_buffer big = sf_buf(&fx, 0, NULL, head + 16384);
    fs_buffer part = {big.offset, head + 100};
    fs_buffer small = {big.offset, head - 1};
    fs_buffer outside = {SF_SHARE_SIZE - 64, head + 100};

    /* Refusals: nothing is opened (the fd table stays empty: teardown_clean). */
    fs_cmd_params e = {.open_read = {.path = sf_path(&fx, 0, "/f"), .flags = FS_OPEN_FLAGS_READ_ONLY, .buf = small}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.open_read.buf = outside;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.open_read.buf = big;
    e.open_read.flags = FS_OPEN_FLAGS_WRITE_ONLY;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_INVALID_READ);
    e.open_read.flags = 64;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_INVALID_ARGUMENT);
    e.open_read.flags = FS_OPEN_FLAGS_READ_ONLY;
    e.open_read.path = sf_path(&fx, 0, "/missing");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_NO_FILE);
    e.open_read.path = sf_path(&fx, 0, "/");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_IS_DIRECTORY);
    e.open_read.path = sf_buf(&fx, 0, "/f\0x", 4);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e).status, FS_STATUS_INVALID_PATH);

    /* The whole file fits: record, count and bytes; the fd reads on from there. */
    e.open_read.path = sf_path(&fx, 0, "/f");
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    fs_open_read_record rec;
    memcpy(&rec, sf_share(&fx, 0, big), sizeof rec);
    CHECK_EQ(rec.stat.size, sizeof text);
    CHECK_EQ(rec.stat.mode & FS_MODE_TYPE_MASK, FS_MODE_REGULAR);
    CHECK_EQ(rec.read, sizeof text);
    CHECK(memcmp(sf_share(&fx, 0, big) + head, text, sizeof text) == 0);
    char back[10];
    CHECK_EQ(sf_read(&fx, 0, c.data, 9990, back, sizeof back, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 10);
    CHECK(memcmp(back, text + 9990, 10) == 0);
    CHECK_EQ(sf_close(&fx, 0, c.data), FS_STATUS_SUCCESS);
    /* A buffer smaller than the file: its first bytes only. */
    e.open_read.buf = part;
    c = sf_call(&fx, 0, FS_CMD_OPEN_READ, &e, sizeof e);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    memcpy(&rec, sf_share(&fx, 0, big), sizeof rec);
    CHECK_EQ(rec.read, 100);
    CHECK_EQ(rec.stat.size, sizeof text);
    CHECK(memcmp(sf_share(&fx, 0, big) + head, text, 100) == 0);
    CHECK_EQ(sf_close(&fx, 0, c.data), FS_STATUS_SUCCESS);

    /* READ_PATH: the same bytes from an offset, and no fd stays open. */
    fs_cmd_params r = {.read_path = {.path = sf_path(&fx, 0, "/f"), .offset = 9000, .buf = big}};
    c = sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(c.data, 1000);
    memcpy(&rec, sf_share(&fx, 0, big), sizeof rec);
    CHECK_EQ(rec.read, 1000);
    CHECK_EQ(rec.stat.size, sizeof text);
    CHECK(memcmp(sf_share(&fx, 0, big) + head, text + 9000, 1000) == 0);
    r.read_path.offset = 20000; /* past the end: nothing, not an error */
    c = sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(c.data, 0);
    r.read_path.offset = 0;
    r.read_path.buf = small;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r).status, FS_STATUS_INVALID_BUFFER);
    r.read_path.buf = outside;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r).status, FS_STATUS_INVALID_BUFFER);
    r.read_path.buf = big;
    r.read_path.path = sf_path(&fx, 0, "/missing");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r).status, FS_STATUS_NO_FILE);
    r.read_path.path = sf_path(&fx, 0, "/");
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r).status, FS_STATUS_IS_DIRECTORY);
    r.read_path.path = (fs_buffer){SF_SHARE_SIZE + 1, 2};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_READ_PATH, &r, sizeof r).status, FS_STATUS_INVALID_BUFFER);
    /* Nothing was left open: the file can be removed and its name reused at once. */
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_FILE_REMOVE, "/f"), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* DIR_READ_BATCH returns every entry once, in records that parse, across calls; an entry
 * that does not fit waits for the next call; bad fds and buffers get errors. */
static fs_cmpl set_attributes(int client, const char *path, uint64_t set, uint64_t clear)
{
    fs_cmd_params p = {.set_attributes = {.path = sf_path(&fx, client, path), .set = set, .clear = clear}};
    return sf_call(&fx, client, FS_CMD_SET_ATTRIBUTES, &p, sizeof p);
}

static fs_cmpl get_attributes(int client, const char *path)
{
    fs_cmd_params p = {.get_attributes = {.path = sf_path(&fx, client, path)}};
    return sf_call(&fx, client, FS_CMD_GET_ATTRIBUTES, &p, sizeof p);
}

TEST(get_and_set_attributes)
{
    sf_options o = {.workdir = test_tmpdir(), .random_order = true, .seed = test_seed(), .clients = 2};
    CHECK(sf_init(&fx, &o) == 0);
    fs_cmd_params g = {.get_attributes = {.path = sf_path(&fx, 0, "/")}};
    /* an extension: a client that has not opted in (a LionsOS client) does not know it */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &g, sizeof g).status, FS_STATUS_INVALID_COMMAND);
    CHECK_EQ(sf_initialise(&fx, 1, false), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 1, FS_CMD_GET_ATTRIBUTES, &g, sizeof g).status, FS_STATUS_INVALID_COMMAND);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_initialise(&fx, 1, true), FS_STATUS_SUCCESS);
    uint64_t fd, early, done;
    CHECK_EQ(sf_open(&fx, 0, "/f", FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE, &early), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/d"), FS_STATUS_SUCCESS);
    fs_cmpl c = get_attributes(0, "/f");
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(c.data, FS_ATTRIBUTE_ARCHIVE);
    CHECK_EQ(get_attributes(0, "/d").data, FS_ATTRIBUTE_DIRECTORY);
    CHECK_EQ(get_attributes(0, "/").data, FS_ATTRIBUTE_DIRECTORY);

    /* clear, then set; the answer is the bits as stored; another client sees them */
    c = set_attributes(0, "/f", FS_ATTRIBUTE_READ_ONLY | FS_ATTRIBUTE_HIDDEN, FS_ATTRIBUTE_ARCHIVE);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    CHECK_EQ(c.data, FS_ATTRIBUTE_READ_ONLY | FS_ATTRIBUTE_HIDDEN);
    CHECK_EQ(get_attributes(1, "/F").data, FS_ATTRIBUTE_READ_ONLY | FS_ATTRIBUTE_HIDDEN);
    CHECK_EQ(set_attributes(1, "/d", FS_ATTRIBUTE_SYSTEM, 0).data, FS_ATTRIBUTE_DIRECTORY | FS_ATTRIBUTE_SYSTEM);

    /* read-only: new writers refused, the mode without write bits, the earlier fd still writes */
    CHECK_EQ(sf_open(&fx, 1, "/f", FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_ACCESS_DENIED);
    fs_cmd_params st = {.stat = {.path = sf_path(&fx, 1, "/f"), .buf = sf_buf(&fx, 1, NULL, sizeof(fs_stat))}};
    CHECK_EQ(sf_call(&fx, 1, FS_CMD_STAT, &st, sizeof st).status, FS_STATUS_SUCCESS);
    fs_stat rec;
    memcpy(&rec, sf_share(&fx, 1, st.stat.buf), sizeof rec);
    CHECK_EQ(rec.mode & 0222, 0);
    CHECK_EQ(sf_write(&fx, 0, early, 0, "still", 5, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, early), FS_STATUS_SUCCESS);
    /* the write marked the file for archiving again, as FAT writers do */
    CHECK_EQ(set_attributes(0, "/f", 0, FS_ATTRIBUTE_READ_ONLY).data, FS_ATTRIBUTE_HIDDEN | FS_ATTRIBUTE_ARCHIVE);
    CHECK_EQ(sf_open(&fx, 1, "/f", FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 1, fd), FS_STATUS_SUCCESS);

    /* refusals change nothing */
    CHECK_EQ(set_attributes(0, "/f", FS_ATTRIBUTE_DIRECTORY, 0).status, FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(set_attributes(0, "/f", 0, 0x08).status, FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(set_attributes(0, "/f", 1ull << 40, 0).status, FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(set_attributes(0, "/", FS_ATTRIBUTE_HIDDEN, 0).status, FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(set_attributes(0, "/missing", FS_ATTRIBUTE_HIDDEN, 0).status, FS_STATUS_NO_FILE);
    CHECK_EQ(get_attributes(0, "/missing").status, FS_STATUS_NO_FILE);
    CHECK_EQ(get_attributes(0, "/f/x").status, FS_STATUS_NOT_DIRECTORY);
    CHECK_EQ(get_attributes(0, "/f").data, FS_ATTRIBUTE_HIDDEN | FS_ATTRIBUTE_ARCHIVE);
    g.get_attributes.path = (fs_buffer){SF_SHARE_SIZE + 1, 2};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &g, sizeof g).status, FS_STATUS_INVALID_BUFFER);
    g.get_attributes.path = sf_buf(&fx, 0, "/f\0x", 4);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &g, sizeof g).status, FS_STATUS_INVALID_PATH);
    fs_cmd_params bad = {.set_attributes = {.path = {SF_SHARE_SIZE - 1, 8}, .set = FS_ATTRIBUTE_HIDDEN}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_SET_ATTRIBUTES, &bad, sizeof bad).status, FS_STATUS_INVALID_BUFFER);
    CHECK_EQ(sf_call(&fx, 1, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
    /* mtools agrees */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "MTOOLS_SKIP_CHECK=1 mattrib -i '%s/protocol.img' ::/f ::/d >'%s/attrib.txt' && "
             "grep -qx '  A   H      ::/f' '%s/attrib.txt' && grep -qx '     S       ::/d' '%s/attrib.txt'",
             test_tmpdir(), test_tmpdir(), test_tmpdir(), test_tmpdir());
    CHECK_EQ(system(cmd), 0);
}

TEST(dir_read_batch_lists_everything_once)
{
    CHECK(setup("-F 32"));
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/d"), FS_STATUS_SUCCESS);
    enum { FILES = 300 };
    for (int i = 0; i < FILES; i++) {
        char path[64];
        snprintf(path, sizeof path, "/d/a rather long file name %03d.txt", i);
        uint64_t fd;
        CHECK_EQ(sf_open(&fx, 0, path, FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY, &fd), FS_STATUS_SUCCESS);
        CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    }
    fs_cmd_params p = {.dir_open = {.path = sf_path(&fx, 0, "/d")}};
    fs_cmpl c = sf_call(&fx, 0, FS_CMD_DIR_OPEN, &p, sizeof p);
    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
    uint64_t dfd = c.data;
    /* Too small for one record: refused, and the entry is not lost. */
    fs_buffer tiny = sf_buf(&fx, 0, NULL, sizeof(fs_dir_record) + 8);
    fs_cmd_params e = {.dir_read_batch = {.fd = dfd, .buf = tiny}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.dir_read_batch.buf = (fs_buffer){SF_SHARE_SIZE - 100, 200};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e).status, FS_STATUS_INVALID_BUFFER);
    e.dir_read_batch.buf = tiny;
    e.dir_read_batch.fd = dfd + 1;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e).status, FS_STATUS_INVALID_FD);
    uint64_t file_fd;
    CHECK_EQ(sf_open(&fx, 0, "/d/a rather long file name 000.txt", FS_OPEN_FLAGS_READ_ONLY, &file_fd), FS_STATUS_SUCCESS);
    e.dir_read_batch.fd = file_fd; /* a file fd is not a directory fd */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e).status, FS_STATUS_INVALID_FD);
    CHECK_EQ(sf_close(&fx, 0, file_fd), FS_STATUS_SUCCESS);

    /* A buffer for a few records at a time: many calls, each entry exactly once. */
    fs_buffer bb = sf_buf(&fx, 0, NULL, 1000);
    e.dir_read_batch.fd = dfd;
    e.dir_read_batch.buf = bb;
    static bool seen[FILES];
    int total = 0, calls = 0;
    for (;;) {
        c = sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e);
        if (c.status == FS_STATUS_END_OF_DIRECTORY)
            break;
        CHECK_EQ(c.status, FS_STATUS_SUCCESS);
        CHECK(c.data > 0 && c.data <= FS_DIR_BATCH_MAX_ENTRIES);
        calls++;
        const uint8_t *at = sf_share(&fx, 0, bb);
        size_t used = 0;
        for (uint64_t i = 0; i < c.data; i++) {
            fs_dir_record rec;
            CHECK(used + sizeof rec <= bb.size);
            memcpy(&rec, at + used, sizeof rec);
            CHECK(used + FS_DIR_RECORD_SIZE(rec.name_len) <= bb.size);
            char name[256] = {0};
            CHECK(rec.name_len < sizeof name);
            memcpy(name, at + used + sizeof rec, rec.name_len);
            int n = -1;
            CHECK_EQ(sscanf(name, "a rather long file name %03d.txt", &n), 1);
            CHECK(n >= 0 && n < FILES && !seen[n]);
            seen[n] = true;
            CHECK_EQ(rec.stat.mode & FS_MODE_TYPE_MASK, FS_MODE_REGULAR);
            used += FS_DIR_RECORD_SIZE(rec.name_len);
            total++;
        }
    }
    CHECK_EQ(total, FILES);
    CHECK(calls > 1 && calls < FILES);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_READ_BATCH, &e, sizeof e).status, FS_STATUS_END_OF_DIRECTORY);
    p = (fs_cmd_params){.dir_close = {.fd = dfd}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DIR_CLOSE, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

TEST(too_many_open_files)
{
    CHECK(setup(NULL));
    uint64_t fd;
    CHECK_EQ(sf_open(&fx, 0, "/x", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    uint32_t opened = 1;
    uint64_t st;
    while ((st = sf_open(&fx, 0, "/x", FS_OPEN_FLAGS_READ_ONLY, &fd)) == FS_STATUS_SUCCESS)
        opened++;
    CHECK_EQ(st, FS_STATUS_TOO_MANY_OPEN_FILES);
    CHECK_EQ(opened, FS_SERVER_MAX_FDS);
    /* DEINITIALISE closes them all; the volume unmounts clean. */
    CHECK(teardown_clean());
}
