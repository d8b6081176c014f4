/* Paths from a directory fd (docs/PROTOCOL.md §2, "Paths from a directory fd"): every
 * path command with a base, both of RENAME's, what ".." and an empty path mean there, a
 * base removed while open, the rules that protect the root and ancestors, bad bases, a
 * client that did not opt in, and a tree deeper than any path the protocol can carry. */
#include "tests/support/server_fixture.h"
#include "tests/harness.h"

#include <stdio.h>
#include <string.h>

static server_fixture fx;

static bool setup(int clients)
{
    sf_options o = {.workdir = test_tmpdir(), .mkfs_args = "-F 32", .random_order = true, .seed = test_seed(),
                    .clients = clients};
    if (!EXPECT(sf_init(&fx, &o) == 0))
        return false;
    return EXPECT(sf_initialise(&fx, 0, true) == FS_STATUS_SUCCESS);
}

static bool teardown_clean(void)
{
    bool ok = EXPECT(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status == FS_STATUS_SUCCESS);
    ok = ok && EXPECT(sf_fsck(&fx, "paths_at.img") == 0);
    sf_fini(&fx);
    return ok;
}

/* A path buffer starting at directory fd `at` (0: the root). */
static fs_buffer at_path(int client, uint64_t at, const char *path)
{
    fs_buffer b = sf_path(&fx, client, path);
    b.size = FS_PATH_AT(b.size, at);
    return b;
}

static uint64_t call_status(int client, uint64_t type, const fs_cmd_params *p)
{
    return sf_call(&fx, client, type, p, sizeof *p).status;
}

static uint64_t path_cmd(int client, uint64_t type, uint64_t at, const char *path)
{
    fs_cmd_params p = {.file_remove = {.path = at_path(client, at, path)}};
    return call_status(client, type, &p);
}

static uint64_t open_dir(int client, uint64_t at, const char *path, uint64_t *fd)
{
    fs_cmd_params p = {.dir_open = {.path = at_path(client, at, path)}};
    fs_cmpl c = sf_call(&fx, client, FS_CMD_DIR_OPEN, &p, sizeof p);
    *fd = c.data;
    return c.status;
}

static uint64_t close_dir(int client, uint64_t fd)
{
    fs_cmd_params p = {.dir_close = {.fd = fd}};
    return call_status(client, FS_CMD_DIR_CLOSE, &p);
}

static uint64_t stat_at(int client, uint64_t at, const char *path, fs_stat *st)
{
    fs_buffer sb = sf_buf(&fx, client, NULL, sizeof(fs_stat));
    fs_cmd_params p = {.stat = {.path = at_path(client, at, path), .buf = sb}};
    uint64_t status = call_status(client, FS_CMD_STAT, &p);
    memcpy(st, sf_share(&fx, client, sb), sizeof *st);
    return status;
}

static uint64_t open_at(int client, uint64_t at, const char *path, uint64_t flags, uint64_t *fd)
{
    fs_cmd_params p = {.file_open = {.path = at_path(client, at, path), .flags = flags}};
    fs_cmpl c = sf_call(&fx, client, FS_CMD_FILE_OPEN, &p, sizeof p);
    *fd = c.data;
    return c.status;
}

static uint64_t rename_at(uint64_t old_at, const char *old_path, uint64_t new_at, const char *new_path)
{
    fs_cmd_params p = {.rename = {.old_path = at_path(0, old_at, old_path), .new_path = at_path(0, new_at, new_path)}};
    return call_status(0, FS_CMD_RENAME, &p);
}

static bool exists(const char *root_path)
{
    fs_stat st;
    return stat_at(0, 0, root_path, &st) == FS_STATUS_SUCCESS;
}

TEST(every_path_command_from_a_directory_fd)
{
    CHECK(setup(1));
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/a"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/a/b"), FS_STATUS_SUCCESS);
    uint64_t b, c, fd, done;
    CHECK_EQ(open_dir(0, 0, "/a/b", &b), FS_STATUS_SUCCESS);

    /* DIR_CREATE, FILE_OPEN (create), STAT, from b; seen from the root where they are. */
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, b, "c"), FS_STATUS_SUCCESS);
    CHECK(exists("/a/b/c"));
    CHECK(!exists("/c"));
    CHECK_EQ(open_at(0, b, "c/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "hello", 5, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    fs_stat st;
    CHECK_EQ(stat_at(0, b, "c/f", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.size, 5);
    CHECK_EQ(stat_at(0, 0, "/a/b/c/f", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.size, 5);
    /* The empty path (and ".") is the base itself; "x/.." stays inside it. */
    CHECK_EQ(stat_at(0, b, "", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.mode & FS_MODE_TYPE_MASK, FS_MODE_DIRECTORY);
    CHECK_EQ(stat_at(0, b, "./c/../c/f", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.size, 5);
    /* A leading '/' does not make it absolute: the path is the base's. */
    CHECK_EQ(stat_at(0, b, "/c/f", &st), FS_STATUS_SUCCESS);

    /* OPEN_STAT, OPEN_READ, READ_PATH. */
    fs_buffer rb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
    fs_cmd_params p = {.open_stat = {.path = at_path(0, b, "c/f"), .flags = FS_OPEN_FLAGS_READ_ONLY, .stat = rb}};
    fs_cmpl r = sf_call(&fx, 0, FS_CMD_OPEN_STAT, &p, sizeof p);
    CHECK_EQ(r.status, FS_STATUS_SUCCESS);
    memcpy(&st, sf_share(&fx, 0, rb), sizeof st);
    CHECK_EQ(st.size, 5);
    CHECK_EQ(sf_close(&fx, 0, r.data), FS_STATUS_SUCCESS);
    const size_t head = sizeof(fs_open_read_record);
    fs_buffer big = sf_buf(&fx, 0, NULL, head + 64);
    p = (fs_cmd_params){.open_read = {.path = at_path(0, b, "c/f"), .flags = FS_OPEN_FLAGS_READ_ONLY, .buf = big}};
    r = sf_call(&fx, 0, FS_CMD_OPEN_READ, &p, sizeof p);
    CHECK_EQ(r.status, FS_STATUS_SUCCESS);
    CHECK(memcmp(sf_share(&fx, 0, big) + head, "hello", 5) == 0);
    CHECK_EQ(sf_close(&fx, 0, r.data), FS_STATUS_SUCCESS);
    p = (fs_cmd_params){.read_path = {.path = at_path(0, b, "c/f"), .offset = 1, .buf = big}};
    r = sf_call(&fx, 0, FS_CMD_READ_PATH, &p, sizeof p);
    CHECK_EQ(r.status, FS_STATUS_SUCCESS);
    CHECK_EQ(r.data, 4);
    CHECK(memcmp(sf_share(&fx, 0, big) + head, "ello", 4) == 0);

    /* SET_TIMES, SET_TIMES_STAT; SET_ATTRIBUTES, GET_ATTRIBUTES. */
    p = (fs_cmd_params){.set_times = {.path = at_path(0, b, "c/f"), .atime = -1, .mtime = 1400000000}};
    CHECK_EQ(call_status(0, FS_CMD_SET_TIMES, &p), FS_STATUS_SUCCESS);
    CHECK_EQ(stat_at(0, 0, "/a/b/c/f", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.mtime, 1400000000);
    p = (fs_cmd_params){.set_times_stat = {.path = at_path(0, b, "c/f"), .atime = -1, .mtime = 1500000000, .stat = rb}};
    CHECK_EQ(call_status(0, FS_CMD_SET_TIMES_STAT, &p), FS_STATUS_SUCCESS);
    memcpy(&st, sf_share(&fx, 0, rb), sizeof st);
    CHECK_EQ(st.mtime, 1500000000);
    p = (fs_cmd_params){.set_attributes = {.path = at_path(0, b, "c/f"), .set = FS_ATTRIBUTE_HIDDEN, .clear = 0}};
    r = sf_call(&fx, 0, FS_CMD_SET_ATTRIBUTES, &p, sizeof p);
    CHECK_EQ(r.status, FS_STATUS_SUCCESS);
    CHECK(r.data & FS_ATTRIBUTE_HIDDEN);
    p = (fs_cmd_params){.get_attributes = {.path = at_path(0, 0, "/a/b/c/f")}};
    r = sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &p, sizeof p);
    CHECK_EQ(r.status, FS_STATUS_SUCCESS);
    CHECK(r.data & FS_ATTRIBUTE_HIDDEN);
    p = (fs_cmd_params){.get_attributes = {.path = at_path(0, b, "c/f")}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &p, sizeof p).data, r.data);

    /* DIR_OPEN from b, and RENAME with a base on each side, and with one. */
    CHECK_EQ(open_dir(0, b, "c", &c), FS_STATUS_SUCCESS);
    CHECK_EQ(rename_at(b, "c/f", c, "g"), FS_STATUS_SUCCESS);
    CHECK(exists("/a/b/c/g"));
    CHECK(!exists("/a/b/c/f"));
    CHECK_EQ(rename_at(0, "/a/b/c/g", b, "h"), FS_STATUS_SUCCESS);
    CHECK(exists("/a/b/h"));
    CHECK_EQ(rename_at(c, "../h", 0, "/x"), FS_STATUS_INVALID_PATH); /* ".." above c */
    CHECK_EQ(rename_at(b, "h", 0, "/top"), FS_STATUS_SUCCESS);
    CHECK(exists("/top"));
    CHECK_EQ(rename_at(0, "/top", c, "back"), FS_STATUS_SUCCESS);
    CHECK(exists("/a/b/c/back"));

    /* FILE_REMOVE, DIR_REMOVE from bases. */
    CHECK_EQ(path_cmd(0, FS_CMD_FILE_REMOVE, c, "back"), FS_STATUS_SUCCESS);
    CHECK(!exists("/a/b/c/back"));
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, c, "d"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, c, "d"), FS_STATUS_SUCCESS);
    CHECK(!exists("/a/b/c/d"));
    CHECK_EQ(close_dir(0, c), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, b), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* ".." above a base is refused (the base's parent is no part of the path), except from
 * the root, where ".." stays at the root as in every path; the rules that protect the
 * root and a moved directory's descendants hold for relative paths. */
TEST(dotdot_empty_paths_and_the_protecting_rules_from_a_base)
{
    CHECK(setup(1));
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/a"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/a/b"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/a/b/c"), FS_STATUS_SUCCESS);
    uint64_t a, b, root, fd;
    CHECK_EQ(open_dir(0, 0, "/a", &a), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, 0, "/a/b", &b), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, 0, "/", &root), FS_STATUS_SUCCESS);
    fs_stat st;
    CHECK_EQ(stat_at(0, b, "..", &st), FS_STATUS_INVALID_PATH);
    CHECK_EQ(stat_at(0, b, "c/../../b", &st), FS_STATUS_INVALID_PATH);
    CHECK_EQ(stat_at(0, b, "c/..", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(stat_at(0, root, "../../a/b", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(open_at(0, b, "../new", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_INVALID_PATH);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, b, "../new"), FS_STATUS_INVALID_PATH);
    CHECK(!exists("/a/new"));

    /* The base itself (the empty path) is in use: as the root is. */
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, b, ""), FS_STATUS_BUSY);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, root, ""), FS_STATUS_BUSY);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, root, "/.."), FS_STATUS_BUSY);
    CHECK_EQ(path_cmd(0, FS_CMD_FILE_REMOVE, b, "."), FS_STATUS_IS_DIRECTORY);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, b, ""), FS_STATUS_ALREADY_EXISTS);
    CHECK_EQ(open_at(0, b, "", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_IS_DIRECTORY);
    CHECK_EQ(rename_at(b, "", 0, "/moved"), FS_STATUS_BUSY);
    CHECK_EQ(rename_at(0, "/a/b/c", b, ""), FS_STATUS_BUSY);
    CHECK_EQ(rename_at(root, "", a, "r"), FS_STATUS_BUSY);
    fs_cmd_params p = {.set_attributes = {.path = at_path(0, root, ""), .set = FS_ATTRIBUTE_HIDDEN}};
    CHECK_EQ(call_status(0, FS_CMD_SET_ATTRIBUTES, &p), FS_STATUS_INVALID_ARGUMENT);

    /* A directory into itself or below it, named from bases inside it. */
    CHECK_EQ(rename_at(0, "/a", b, "inside"), FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(rename_at(a, "b", b, "c/inside"), FS_STATUS_INVALID_ARGUMENT);
    CHECK_EQ(rename_at(root, "a", a, "self"), FS_STATUS_INVALID_ARGUMENT);
    CHECK(exists("/a/b/c"));
    /* A non-empty directory stays. */
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, a, "b"), FS_STATUS_NOT_EMPTY);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, root, "a"), FS_STATUS_NOT_EMPTY);
    CHECK_EQ(close_dir(0, a), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, b), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, root), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* A base removed while its fd is open holds no names: nothing is found or created in it,
 * and the fd still closes cleanly. */
TEST(a_removed_base_holds_no_names)
{
    CHECK(setup(1));
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/gone"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/other"), FS_STATUS_SUCCESS);
    uint64_t fd, gone;
    CHECK_EQ(open_at(0, 0, "/other/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, 0, "/gone", &gone), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, 0, "/gone"), FS_STATUS_SUCCESS);
    CHECK(!exists("/gone"));
    fs_stat st;
    CHECK_EQ(stat_at(0, gone, "x", &st), FS_STATUS_NO_FILE);
    CHECK_EQ(open_at(0, gone, "new", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_NO_FILE);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, gone, "sub"), FS_STATUS_NO_FILE);
    CHECK_EQ(rename_at(0, "/other/f", gone, "f"), FS_STATUS_NO_FILE);
    CHECK(exists("/other/f"));
    CHECK_EQ(rename_at(0, "/other", gone, "o"), FS_STATUS_NO_FILE);
    CHECK(exists("/other"));
    CHECK_EQ(close_dir(0, gone), FS_STATUS_SUCCESS);
    CHECK(teardown_clean()); /* fsck: nothing was created in the removed directory */
}

/* Each path command with a base that is no directory fd of the client's: INVALID_FD, and
 * nothing is created or changed. */
TEST(bad_bases_are_invalid_fd)
{
    CHECK(setup(2));
    CHECK_EQ(sf_initialise(&fx, 1, true), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, "/d"), FS_STATUS_SUCCESS);
    uint64_t file, closed, fd;
    CHECK_EQ(open_at(0, 0, "/d/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &file), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, 0, "/d", &closed), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, closed), FS_STATUS_SUCCESS);
    /* Client 1's directory fds: numbers client 0 never had. */
    uint64_t theirs[4];
    for (int i = 0; i < 4; i++)
        CHECK_EQ(open_dir(1, 0, "/d", &theirs[i]), FS_STATUS_SUCCESS);
    uint64_t other = theirs[3];
    fs_cmd_params probe = {.dir_tell = {.fd = other}};
    CHECK_EQ(call_status(0, FS_CMD_DIR_TELL, &probe), FS_STATUS_INVALID_FD);
    uint64_t bad[] = {file, closed, other, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t at = bad[i];
        sf_share_reset(&fx, 0);
        fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_open_read_record) + 16);
        fs_stat st;
        CHECK_EQ(stat_at(0, at, "f", &st), FS_STATUS_INVALID_FD);
        CHECK_EQ(open_at(0, at, "new", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_INVALID_FD);
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, at, "new"), FS_STATUS_INVALID_FD);
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, at, "new"), FS_STATUS_INVALID_FD);
        CHECK_EQ(path_cmd(0, FS_CMD_FILE_REMOVE, at, "f"), FS_STATUS_INVALID_FD);
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_OPEN, at, ""), FS_STATUS_INVALID_FD);
        CHECK_EQ(path_cmd(0, FS_CMD_GET_ATTRIBUTES, at, "f"), FS_STATUS_INVALID_FD);
        fs_cmd_params p = {.open_stat = {.path = at_path(0, at, "new"), .flags = FS_OPEN_FLAGS_CREATE, .stat = sb}};
        CHECK_EQ(call_status(0, FS_CMD_OPEN_STAT, &p), FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.open_read = {.path = at_path(0, at, "f"), .flags = 0, .buf = sb}};
        CHECK_EQ(call_status(0, FS_CMD_OPEN_READ, &p), FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.read_path = {.path = at_path(0, at, "f"), .offset = 0, .buf = sb}};
        CHECK_EQ(call_status(0, FS_CMD_READ_PATH, &p), FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.set_times = {.path = at_path(0, at, "f"), .atime = 1, .mtime = 1}};
        CHECK_EQ(call_status(0, FS_CMD_SET_TIMES, &p), FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.set_times_stat = {.path = at_path(0, at, "f"), .atime = 1, .mtime = 1, .stat = sb}};
        CHECK_EQ(call_status(0, FS_CMD_SET_TIMES_STAT, &p), FS_STATUS_INVALID_FD);
        p = (fs_cmd_params){.set_attributes = {.path = at_path(0, at, "f"), .set = FS_ATTRIBUTE_SYSTEM}};
        CHECK_EQ(call_status(0, FS_CMD_SET_ATTRIBUTES, &p), FS_STATUS_INVALID_FD);
        /* RENAME: a bad base on either side. */
        CHECK_EQ(rename_at(at, "f", 0, "/d/g"), FS_STATUS_INVALID_FD);
        CHECK_EQ(rename_at(0, "/d/f", at, "g"), FS_STATUS_INVALID_FD);
    }
    fs_stat st;
    CHECK_EQ(stat_at(0, 0, "/d/f", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.mtime != 1, true);
    CHECK(!exists("/d/new") && !exists("/new") && !exists("/d/g") && !exists("/g"));
    fs_cmd_params p = {.get_attributes = {.path = at_path(0, 0, "/d/f")}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_GET_ATTRIBUTES, &p, sizeof p).data & FS_ATTRIBUTE_SYSTEM, 0);
    CHECK_EQ(sf_close(&fx, 0, file), FS_STATUS_SUCCESS);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(close_dir(1, theirs[i]), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 1, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* A LionsOS client (no opt-in) keeps today's meaning of the size word: a path buffer of
 * more than 4,096 bytes is INVALID_PATH, whatever its upper half holds. */
TEST(a_client_that_did_not_opt_in_gets_no_bases)
{
    CHECK(setup(2));
    CHECK_EQ(sf_initialise(&fx, 1, false), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(1, FS_CMD_DIR_CREATE, 0, "/d"), FS_STATUS_SUCCESS);
    uint64_t d, fd;
    CHECK_EQ(open_dir(1, 0, "/d", &d), FS_STATUS_SUCCESS);
    CHECK_EQ(open_at(1, d, "f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_INVALID_PATH);
    CHECK_EQ(path_cmd(1, FS_CMD_DIR_CREATE, d, "e"), FS_STATUS_INVALID_PATH);
    fs_stat st;
    CHECK_EQ(stat_at(1, d, "", &st), FS_STATUS_INVALID_PATH);
    CHECK(!exists("/d/f") && !exists("/f") && !exists("/d/e") && !exists("/e"));
    CHECK_EQ(close_dir(1, d), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 1, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}

/* 24 levels of 200-byte names: 4,824 bytes from the root, built, used, moved between two
 * deep directories and removed again through bases alone; fsck.fat finds it clean. */
TEST(a_tree_deeper_than_any_path)
{
    CHECK(setup(1));
    enum { DEPTH = 24 };
    char names[DEPTH][201];
    uint64_t fds[DEPTH + 1];
    fds[0] = 0;
    for (int i = 0; i < DEPTH; i++) {
        memset(names[i], 'a' + i % 26, 200);
        names[i][0] = (char)('0' + i % 10);
        names[i][200] = '\0';
        sf_share_reset(&fx, 0);
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, fds[i], names[i]), FS_STATUS_SUCCESS);
        CHECK_EQ(open_dir(0, fds[i], names[i], &fds[i + 1]), FS_STATUS_SUCCESS);
    }
    uint64_t bottom = fds[DEPTH], fd, done;
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, bottom, "left"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, bottom, "right"), FS_STATUS_SUCCESS);
    CHECK_EQ(open_at(0, bottom, "left/file", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fd, 0, "deep data", 9, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    uint64_t left, right;
    CHECK_EQ(open_dir(0, bottom, "left", &left), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, bottom, "right", &right), FS_STATUS_SUCCESS);
    CHECK_EQ(rename_at(left, "file", right, "moved"), FS_STATUS_SUCCESS);
    CHECK_EQ(rename_at(bottom, "left", right, "sub"), FS_STATUS_SUCCESS);
    /* The moved directory's fd follows it. */
    CHECK_EQ(open_at(0, left, "again", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    fs_stat st;
    CHECK_EQ(stat_at(0, bottom, "right/sub/again", &st), FS_STATUS_SUCCESS);
    char buf[16] = {0};
    CHECK_EQ(open_at(0, right, "moved", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_read(&fx, 0, fd, 0, buf, sizeof buf, &done), FS_STATUS_SUCCESS);
    CHECK(done == 9 && memcmp(buf, "deep data", 9) == 0);
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    /* Unmounted with the tree in it, the volume is clean (fsck.fat walks the deep paths
     * itself); mounted again, the tree is found level by level from bases. */
    CHECK_EQ(close_dir(0, left), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, right), FS_STATUS_SUCCESS);
    for (int i = DEPTH; i > 0; i--)
        CHECK_EQ(close_dir(0, fds[i]), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK_EQ(sf_fsck(&fx, "deep_tree.img"), 0);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    for (int i = 0; i < DEPTH; i++) {
        sf_share_reset(&fx, 0);
        CHECK_EQ(open_dir(0, fds[i], names[i], &fds[i + 1]), FS_STATUS_SUCCESS);
    }
    bottom = fds[DEPTH];
    CHECK_EQ(open_dir(0, bottom, "right", &right), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, right, "sub", &left), FS_STATUS_SUCCESS);
    CHECK_EQ(stat_at(0, right, "moved", &st), FS_STATUS_SUCCESS);
    CHECK_EQ(st.size, 9);
    /* Removed bottom-up, each level from its parent's fd. */
    CHECK_EQ(path_cmd(0, FS_CMD_FILE_REMOVE, left, "again"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_FILE_REMOVE, right, "moved"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, right, "sub"), FS_STATUS_SUCCESS);
    CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, bottom, "right"), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, left), FS_STATUS_SUCCESS);
    CHECK_EQ(close_dir(0, right), FS_STATUS_SUCCESS);
    for (int i = DEPTH; i > 0; i--) {
        sf_share_reset(&fx, 0);
        CHECK_EQ(close_dir(0, fds[i]), FS_STATUS_SUCCESS);
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_REMOVE, fds[i - 1], names[i - 1]), FS_STATUS_SUCCESS);
    }
    CHECK(!exists(names[0]));
    CHECK(teardown_clean());
}

/* Requests from bases in flight together, completing in random order: a directory moved
 * back and forth between two bases while files are created in it and it is stat'ed, both
 * from its own fd, and a directory into itself attempted from a base inside it. The fd
 * follows its directory through every move; the rules and the lock order hold. */
TEST(requests_from_bases_race_renames_of_their_directories)
{
    CHECK(setup(1));
    fx.blk.dev.completions_per_process = 1;
    static const char *dirs[] = {"/x", "/x/a", "/x/b", "/x/a/m", "/x/a/m/n"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        CHECK_EQ(path_cmd(0, FS_CMD_DIR_CREATE, 0, dirs[i]), FS_STATUS_SUCCESS);
    uint64_t a, b, m, n;
    CHECK_EQ(open_dir(0, 0, "/x/a", &a), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, 0, "/x/b", &b), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, a, "m", &m), FS_STATUS_SUCCESS);
    CHECK_EQ(open_dir(0, m, "n", &n), FS_STATUS_SUCCESS);
    enum { ROUNDS = 12, EACH = 4 };
    uint32_t moved = 0, created = 0;
    for (int round = 0; round < ROUNDS; round++) {
        sf_share_reset(&fx, 0);
        uint64_t ids[4 * EACH], kinds[4 * EACH], opened[EACH] = {0};
        int count = 0;
        fs_buffer sb = sf_buf(&fx, 0, NULL, sizeof(fs_stat));
        for (int k = 0; k < EACH; k++) {
            bool to_b = (round * EACH + k) % 2 == 0;
            fs_cmd_params r = {.rename = {.old_path = at_path(0, to_b ? a : b, "m"),
                                          .new_path = at_path(0, to_b ? b : a, "m")}};
            kinds[count] = FS_CMD_RENAME;
            ids[count++] = sf_submit(&fx, 0, FS_CMD_RENAME, &r, sizeof r);
            char name[32];
            snprintf(name, sizeof name, "f-%02d-%d", round, k);
            fs_cmd_params o = {.file_open = {.path = at_path(0, m, name),
                                             .flags = FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE}};
            kinds[count] = FS_CMD_FILE_OPEN;
            ids[count++] = sf_submit(&fx, 0, FS_CMD_FILE_OPEN, &o, sizeof o);
            fs_cmd_params s = {.stat = {.path = at_path(0, m, ""), .buf = sb}};
            kinds[count] = FS_CMD_STAT;
            ids[count++] = sf_submit(&fx, 0, FS_CMD_STAT, &s, sizeof s);
            fs_cmd_params self = {.rename = {.old_path = at_path(0, to_b ? a : b, "m"), .new_path = at_path(0, n, "m")}};
            kinds[count] = FS_CMD_DIR_REMOVE; /* marks the move into itself */
            ids[count++] = sf_submit(&fx, 0, FS_CMD_RENAME, &self, sizeof self);
        }
        int pending = count;
        for (int idle = 0; pending > 0 && idle < 1000;) {
            bool any = sf_step(&fx);
            fs_cmpl c;
            while (sf_take(&fx, 0, &c)) {
                any = true;
                pending--;
                int i = 0;
                while (i < count && ids[i] != c.id)
                    i++;
                CHECK(i < count);
                if (kinds[i] == FS_CMD_RENAME) {
                    /* m is in a or in b: one of each pair finds it, the other NO_FILE */
                    CHECK_MSG(c.status == FS_STATUS_SUCCESS || c.status == FS_STATUS_NO_FILE, "rename: %llu",
                              (unsigned long long)c.status);
                    moved += c.status == FS_STATUS_SUCCESS;
                } else if (kinds[i] == FS_CMD_FILE_OPEN) {
                    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
                    opened[created++ % EACH] = c.data; /* closed after the round: sf_call would
                                                          take the others' completions */
                } else if (kinds[i] == FS_CMD_STAT) {
                    CHECK_EQ(c.status, FS_STATUS_SUCCESS);
                } else {
                    CHECK_MSG(c.status == FS_STATUS_INVALID_ARGUMENT || c.status == FS_STATUS_NO_FILE,
                              "into itself: %llu", (unsigned long long)c.status);
                }
            }
            idle = any ? 0 : idle + 1;
        }
        CHECK_EQ(pending, 0);
        for (int k = 0; k < EACH; k++)
            CHECK_EQ(sf_close(&fx, 0, opened[k]), FS_STATUS_SUCCESS);
    }
    CHECK(moved > 0);
    CHECK_EQ(created, ROUNDS * EACH);
    /* Wherever m ended, it holds every file created from its fd, and n is still in it. */
    fs_stat st;
    bool in_a = stat_at(0, a, "m", &st) == FS_STATUS_SUCCESS, in_b = stat_at(0, b, "m", &st) == FS_STATUS_SUCCESS;
    CHECK(in_a != in_b);
    CHECK_EQ(stat_at(0, 0, in_a ? "/x/a/m/n" : "/x/b/m/n", &st), FS_STATUS_SUCCESS);
    for (int round = 0; round < ROUNDS; round++)
        for (int k = 0; k < EACH; k++) {
            char path[48];
            snprintf(path, sizeof path, "/x/%c/m/f-%02d-%d", in_a ? 'a' : 'b', round, k);
            CHECK_MSG(stat_at(0, 0, path, &st) == FS_STATUS_SUCCESS, "%s", path);
        }
    uint64_t fds[] = {n, m, a, b};
    for (size_t i = 0; i < 4; i++)
        CHECK_EQ(close_dir(0, fds[i]), FS_STATUS_SUCCESS);
    CHECK(teardown_clean());
}
