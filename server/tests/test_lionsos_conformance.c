/* LionsOS conformance, written from the LionsOS file-system protocol's documented
 * semantics (docs/PROTOCOL.md §1-3): a client that never opts in to asyncfat's extensions
 * sees only LionsOS's statuses 0-18 on every error path the server has (each driven here,
 * and driven for an opted-in client too, which gets the extended status: proof the path
 * was really taken), paths with one trailing NUL work, 100,000 open/close cycles keep fds
 * below 2^31 with stale ones refused, and the request sequence LionsOS's MicroPython file
 * layer makes (open with a NUL, 64 reads in flight, readdir to the end) works. */
#include "tests/support/server_fixture.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

enum { LIONSOS = 0, ASYNCFAT = 1 };

static server_fixture fx;
static uint64_t lionsos_worst; /* the highest status the LionsOS client was ever sent */

static bool setup(sf_options o)
{
    o.workdir = test_tmpdir();
    o.clients = 2;
    o.random_order = true;
    o.seed = test_seed();
    lionsos_worst = 0;
    return EXPECT(sf_init(&fx, &o) == 0);
}

static bool mount_both(void)
{
    return EXPECT(sf_initialise(&fx, LIONSOS, false) == FS_STATUS_SUCCESS) &&
           EXPECT(sf_initialise(&fx, ASYNCFAT, true) == FS_STATUS_SUCCESS);
}

static uint64_t call(int client, uint64_t type, fs_cmd_params p, uint64_t *data)
{
    fs_cmpl c = sf_call(&fx, client, type, &p, sizeof p);
    if (client == LIONSOS && c.status > lionsos_worst)
        lionsos_worst = c.status;
    if (data)
        *data = c.data;
    return c.status;
}

static fs_buffer path_of(int client, const char *path) { return sf_path(&fx, client, path); }

static uint64_t open_file(int client, const char *path, uint64_t flags, uint64_t *fd)
{
    return call(client, FS_CMD_FILE_OPEN, (fs_cmd_params){.file_open = {path_of(client, path), flags}}, fd);
}

static uint64_t on_path(int client, uint64_t type, const char *path)
{
    return call(client, type, (fs_cmd_params){.file_remove = {path_of(client, path)}}, NULL);
}

static uint64_t write_at(int client, uint64_t fd, uint64_t offset, const void *data, size_t len)
{
    fs_cmd_params p = {.file_write = {fd, offset, sf_buf(&fx, client, data, len)}};
    return call(client, FS_CMD_FILE_WRITE, p, NULL);
}

/* The same operation from both clients: the asyncfat client gets `extended`, the LionsOS
 * client `lionsos`. */
#define BOTH(expr_of_client, extended, lionsos)                                                      \
    do {                                                                                             \
        int client = ASYNCFAT;                                                                       \
        uint64_t got_ = (expr_of_client);                                                            \
        CHECK_MSG(got_ == (extended), "%s: asyncfat client got %llu, not %s", #expr_of_client,      \
                  (unsigned long long)got_, #extended);                                              \
        client = LIONSOS;                                                                            \
        got_ = (expr_of_client);                                                                     \
        CHECK_MSG(got_ == (lionsos), "%s: LionsOS client got %llu, not %s", #expr_of_client,        \
                  (unsigned long long)got_, #lionsos);                                               \
    } while (0)

static bool unmount_both(void)
{
    return EXPECT(call(ASYNCFAT, FS_CMD_DEINITIALISE, (fs_cmd_params){0}, NULL) == FS_STATUS_SUCCESS) &&
           EXPECT(call(LIONSOS, FS_CMD_DEINITIALISE, (fs_cmd_params){0}, NULL) == FS_STATUS_SUCCESS);
}

static bool finish(void)
{
    bool ok = EXPECT(lionsos_worst <= FS_STATUS_NOT_EMPTY);
    sf_fini(&fx);
    return ok;
}

TEST(lionsos_statuses_for_names_paths_fds_and_modes)
{
    CHECK(setup((sf_options){0}));
    CHECK(mount_both());
    uint64_t fd;
    /* Files each client works on, so both take the same path. */
    CHECK_EQ(open_file(ASYNCFAT, "/ro", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(write_at(ASYNCFAT, fd, 0, "data", 4), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(on_path(ASYNCFAT, FS_CMD_DIR_CREATE, "/full"), FS_STATUS_SUCCESS);
    CHECK_EQ(open_file(ASYNCFAT, "/full/x", FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(on_path(ASYNCFAT, FS_CMD_DIR_CREATE, "/dir"), FS_STATUS_SUCCESS);

    /* LionsOS statuses, the same for both. */
    BOTH(open_file(client, "/missing", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_NO_FILE, FS_STATUS_NO_FILE);
    BOTH(on_path(client, FS_CMD_DIR_OPEN, "/ro"), FS_STATUS_NOT_DIRECTORY, FS_STATUS_NOT_DIRECTORY);
    BOTH(open_file(client, "/ro/x", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_NOT_DIRECTORY, FS_STATUS_NOT_DIRECTORY);
    BOTH(on_path(client, FS_CMD_DIR_CREATE, "/dir"), FS_STATUS_ALREADY_EXISTS, FS_STATUS_ALREADY_EXISTS);
    BOTH(on_path(client, FS_CMD_DIR_REMOVE, "/full"), FS_STATUS_NOT_EMPTY, FS_STATUS_NOT_EMPTY);
    BOTH(on_path(client, FS_CMD_DIR_CREATE, "/a*b"), FS_STATUS_INVALID_NAME, FS_STATUS_INVALID_NAME);
    BOTH(call(client, FS_CMD_FILE_REMOVE, (fs_cmd_params){.file_remove = {sf_buf(&fx, client, "/a\0b", 4)}}, NULL),
         FS_STATUS_INVALID_PATH, FS_STATUS_INVALID_PATH);
    static char too_long[4097];
    memset(too_long, 'a', sizeof too_long);
    too_long[0] = '/';
    BOTH(call(client, FS_CMD_FILE_REMOVE, (fs_cmd_params){.file_remove = {sf_buf(&fx, client, too_long, 4097)}}, NULL),
         FS_STATUS_INVALID_PATH, FS_STATUS_INVALID_PATH);
    BOTH(call(client, FS_CMD_STAT, (fs_cmd_params){.stat = {path_of(client, "/ro"), {SF_SHARE_SIZE, 136}}}, NULL),
         FS_STATUS_INVALID_BUFFER, FS_STATUS_INVALID_BUFFER);
    BOTH(call(client, FS_CMD_FILE_SIZE, (fs_cmd_params){.file_size = {12345}}, NULL), FS_STATUS_INVALID_FD,
         FS_STATUS_INVALID_FD);
    BOTH(call(client, 99, (fs_cmd_params){0}, NULL), FS_STATUS_INVALID_COMMAND, FS_STATUS_INVALID_COMMAND);

    /* Access modes. */
    uint64_t rfd[2], wfd[2];
    for (int c = 0; c < 2; c++) {
        CHECK_EQ(open_file(c, "/ro", FS_OPEN_FLAGS_READ_ONLY, &rfd[c]), FS_STATUS_SUCCESS);
        CHECK_EQ(open_file(c, "/ro", FS_OPEN_FLAGS_WRITE_ONLY, &wfd[c]), FS_STATUS_SUCCESS);
    }
    BOTH(write_at(client, rfd[client], 0, "x", 1), FS_STATUS_INVALID_WRITE, FS_STATUS_INVALID_WRITE);
    BOTH(call(client, FS_CMD_FILE_TRUNCATE, (fs_cmd_params){.file_truncate = {rfd[client], 0}}, NULL),
         FS_STATUS_INVALID_WRITE, FS_STATUS_INVALID_WRITE);
    BOTH(call(client, FS_CMD_FILE_READ,
              (fs_cmd_params){.file_read = {wfd[client], 0, sf_buf(&fx, client, NULL, 16)}}, NULL),
         FS_STATUS_INVALID_READ, FS_STATUS_INVALID_READ);
    /* The end of a directory. */
    uint64_t dfd[2];
    for (int c = 0; c < 2; c++)
        CHECK_EQ(call(c, FS_CMD_DIR_OPEN, (fs_cmd_params){.dir_open = {path_of(c, "/dir")}}, &dfd[c]),
                 FS_STATUS_SUCCESS);
    BOTH(call(client, FS_CMD_DIR_READ, (fs_cmd_params){.dir_read = {dfd[client], sf_buf(&fx, client, NULL, 256)}}, NULL),
         FS_STATUS_END_OF_DIRECTORY, FS_STATUS_END_OF_DIRECTORY);

    /* Extended statuses, and what LionsOS's client gets instead. */
    static char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[0] = '/';
    BOTH(on_path(client, FS_CMD_DIR_CREATE, long_name), FS_STATUS_NAME_TOO_LONG, FS_STATUS_INVALID_NAME);
    BOTH(open_file(client, "/dir", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_IS_DIRECTORY, FS_STATUS_NO_FILE);
    BOTH(on_path(client, FS_CMD_FILE_REMOVE, "/dir"), FS_STATUS_IS_DIRECTORY, FS_STATUS_ERROR);
    BOTH(open_file(client, "/ro", 3, &fd), FS_STATUS_INVALID_ARGUMENT, FS_STATUS_ERROR);
    BOTH(call(client, FS_CMD_DIR_SEEK, (fs_cmd_params){.dir_seek = {dfd[client], -1}}, NULL),
         FS_STATUS_INVALID_ARGUMENT, FS_STATUS_ERROR);
    BOTH(on_path(client, FS_CMD_DIR_REMOVE, "/"), FS_STATUS_BUSY, FS_STATUS_OUTSTANDING_OPERATIONS);
    BOTH(write_at(client, wfd[client], 0xFFFFFFFFull, "x", 1), FS_STATUS_FILE_TOO_LARGE, FS_STATUS_ERROR);
    BOTH(call(client, FS_CMD_FILE_TRUNCATE, (fs_cmd_params){.file_truncate = {wfd[client], 1ull << 32}}, NULL),
         FS_STATUS_FILE_TOO_LARGE, FS_STATUS_ERROR);
    /* Extension commands and flags are LionsOS's unknowns. */
    BOTH(call(client, FS_CMD_STATFS, (fs_cmd_params){.statfs = {sf_buf(&fx, client, NULL, sizeof(fs_statfs))}}, NULL),
         FS_STATUS_SUCCESS, FS_STATUS_INVALID_COMMAND);
    CHECK_EQ(open_file(ASYNCFAT, "/ro", FS_OPEN_FLAGS_READ_ONLY | FS_OPEN_FLAGS_APPEND, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(open_file(LIONSOS, "/ro", FS_OPEN_FLAGS_READ_ONLY | FS_OPEN_FLAGS_APPEND, &fd), FS_STATUS_ERROR);

    /* Too many open files: the fds already open, then as many as the table holds. */
    for (int c = 0; c < 2; c++) {
        uint64_t st;
        while ((st = open_file(c, "/ro", FS_OPEN_FLAGS_READ_ONLY, &fd)) == FS_STATUS_SUCCESS)
            ;
        CHECK_EQ(st, FS_STATUS_TOO_MANY_OPEN_FILES);
    }
    /* Commands after DEINITIALISE (it closes every fd): the asyncfat client was told it is
     * not mounted, the LionsOS client that something failed. */
    CHECK(unmount_both());
    BOTH(on_path(client, FS_CMD_DIR_CREATE, "/late"), FS_STATUS_NOT_MOUNTED, FS_STATUS_ERROR);
    CHECK_EQ(sf_fsck(&fx, "conformance-names.img"), 0);
    CHECK(finish());
}

/* A FAT12 volume of 512-byte clusters: a subdirectory's cluster holds 16 entries. */
static const sf_options small_volume = {.mkfs_args = "-F 12 -s 1 -S 512", .image_bytes = 2u << 20};

TEST(lionsos_statuses_for_a_full_volume)
{
    CHECK(setup(small_volume));
    CHECK(mount_both());
    uint64_t fd;
    for (int c = 0; c < 2; c++) {
        char dir[16];
        snprintf(dir, sizeof dir, "/d%d", c);
        CHECK_EQ(on_path(ASYNCFAT, FS_CMD_DIR_CREATE, dir), FS_STATUS_SUCCESS);
        /* Fill the directory's one cluster: ".", ".." and 14 short names. */
        for (int i = 0; i < 14; i++) {
            char name[32];
            snprintf(name, sizeof name, "%s/F%d", dir, i);
            CHECK_EQ(open_file(ASYNCFAT, name, FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_SUCCESS);
            CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
        }
    }
    uint64_t big[2];
    CHECK_EQ(open_file(ASYNCFAT, "/big", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY, &big[ASYNCFAT]),
             FS_STATUS_SUCCESS);
    CHECK_EQ(open_file(LIONSOS, "/big", FS_OPEN_FLAGS_WRITE_ONLY, &big[LIONSOS]), FS_STATUS_SUCCESS);
    fd = big[ASYNCFAT];
    static uint8_t chunk[64 * 1024];
    uint64_t at = 0, st;
    while ((st = write_at(ASYNCFAT, fd, at, chunk, sizeof chunk)) == FS_STATUS_SUCCESS)
        at += sizeof chunk;
    CHECK_EQ(st, FS_STATUS_NO_SPACE);
    while ((st = write_at(ASYNCFAT, fd, at, chunk, 512)) == FS_STATUS_SUCCESS)
        at += 512;
    CHECK_EQ(st, FS_STATUS_NO_SPACE);
    /* The volume is full. Writing: LionsOS has no word for it. */
    BOTH(write_at(client, big[client], at, chunk, 512), FS_STATUS_NO_SPACE, FS_STATUS_ERROR);
    /* Creating a name in a full directory that cannot grow: a full directory. */
    BOTH(open_file(client, client ? "/d1/NEW" : "/d0/NEW", FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_NO_SPACE,
         FS_STATUS_DIRECTORY_IS_FULL);
    BOTH(call(client, FS_CMD_RENAME,
              (fs_cmd_params){.rename = {path_of(client, client ? "/d0/F0" : "/d1/F1"),
                                         path_of(client, client ? "/d1/MOVED" : "/d0/MOVED")}},
              NULL),
         FS_STATUS_NO_SPACE, FS_STATUS_DIRECTORY_IS_FULL);
    BOTH(on_path(client, FS_CMD_DIR_CREATE, client ? "/newdir1" : "/newdir0"), FS_STATUS_NO_SPACE, FS_STATUS_ERROR);
    for (int c = 0; c < 2; c++)
        CHECK_EQ(sf_close(&fx, c, big[c]), FS_STATUS_SUCCESS);
    CHECK(unmount_both());
    CHECK_EQ(sf_fsck(&fx, "conformance-full.img"), 0);
    CHECK(finish());
}

TEST(lionsos_statuses_for_a_full_fixed_root)
{
    CHECK(setup((sf_options){.mkfs_args = "-F 16 -r 16"}));
    CHECK(mount_both());
    uint64_t fd, st;
    int created = 0;
    for (;; created++) {
        char name[16];
        snprintf(name, sizeof name, "/R%d", created);
        if ((st = open_file(ASYNCFAT, name, FS_OPEN_FLAGS_CREATE, &fd)) != FS_STATUS_SUCCESS)
            break;
        CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    }
    CHECK(created > 0);
    BOTH(open_file(client, client ? "/A1" : "/A0", FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_DIRECTORY_IS_FULL,
         FS_STATUS_DIRECTORY_IS_FULL);
    CHECK(finish());
}

TEST(lionsos_statuses_for_a_read_only_device)
{
    CHECK(setup((sf_options){.read_only = true}));
    CHECK(mount_both());
    uint64_t fd;
    BOTH(on_path(client, FS_CMD_DIR_CREATE, "/x"), FS_STATUS_READ_ONLY_FS, FS_STATUS_SERVER_WAS_DENIED);
    BOTH(open_file(client, "/x", FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_READ_ONLY_FS, FS_STATUS_SERVER_WAS_DENIED);
    CHECK(finish());
}

TEST(lionsos_statuses_for_device_errors_and_damage)
{
    CHECK(setup((sf_options){0}));
    CHECK(mount_both());
    uint64_t fd;
    static uint8_t data[8192];
    CHECK_EQ(open_file(ASYNCFAT, "/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(write_at(ASYNCFAT, fd, 0, data, sizeof data), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    CHECK_EQ(open_file(ASYNCFAT, "/ro.txt", FS_OPEN_FLAGS_CREATE, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    /* Everything on the device: unmount (both), then mark RO.TXT read-only there. */
    CHECK(unmount_both());
    uint8_t *entry = NULL;
    for (uint64_t at = 0; at + 32 <= fx.blk.image_bytes && !entry; at += 32)
        if (memcmp(fx.blk.image + at, "RO      TXT", 11) == 0)
            entry = fx.blk.image + at;
    CHECK(entry != NULL);
    entry[11] |= 0x01;
    blk_cache_invalidate(&fx.blk.stack.cache);
    CHECK(mount_both());
    BOTH(open_file(client, "/ro.txt", FS_OPEN_FLAGS_WRITE_ONLY, &fd), FS_STATUS_ACCESS_DENIED, FS_STATUS_ERROR);

    /* A device that fails every read: reading a block not in the cache. */
    uint64_t rfd[2];
    for (int c = 0; c < 2; c++)
        CHECK_EQ(open_file(c, "/f", FS_OPEN_FLAGS_READ_ONLY, &rfd[c]), FS_STATUS_SUCCESS);
    blk_cache_invalidate(&fx.blk.stack.cache);
    ram_device_fail_range(&fx.blk.dev, 0, fx.blk.dev.capacity, 1u << BLK_REQ_READ);
    BOTH(call(client, FS_CMD_FILE_READ,
              (fs_cmd_params){.file_read = {rfd[client], 0, sf_buf(&fx, client, NULL, sizeof data)}}, NULL),
         FS_STATUS_IO_ERROR, FS_STATUS_ERROR);
    ram_device_fail_range(&fx.blk.dev, 0, 0, 0);
    for (int c = 0; c < 2; c++)
        CHECK_EQ(sf_close(&fx, c, rfd[c]), FS_STATUS_SUCCESS);
    CHECK(unmount_both());

    /* A volume whose boot sector is gone. */
    memset(fx.blk.image, 0, 512);
    blk_cache_invalidate(&fx.blk.stack.cache);
    BOTH(sf_initialise(&fx, client, client == ASYNCFAT), FS_STATUS_CORRUPT, FS_STATUS_ERROR);
    CHECK(finish());
}

TEST(lionsos_statuses_without_a_volume)
{
    CHECK(setup((sf_options){.no_engine = true}));
    /* Before INITIALISE nobody has opted in: not mounted is LionsOS's ERROR for both. */
    uint64_t fd;
    BOTH(open_file(client, "/x", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_ERROR, FS_STATUS_ERROR);
    BOTH(sf_initialise(&fx, client, client == ASYNCFAT), FS_STATUS_ALLOCATION_ERROR, FS_STATUS_ALLOCATION_ERROR);
    CHECK(finish());
}

/* ---- paths with one trailing NUL ------------------------------------------------------------ */

static fs_buffer nul_path(int client, const char *path) { return sf_buf(&fx, client, path, strlen(path) + 1); }

TEST(paths_with_one_trailing_nul_work)
{
    CHECK(setup((sf_options){0}));
    CHECK(mount_both());
    uint64_t fd, done;
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CREATE, (fs_cmd_params){.dir_create = {nul_path(LIONSOS, "/dir")}}, NULL),
             FS_STATUS_SUCCESS);
    fs_cmd_params open = {.file_open = {nul_path(LIONSOS, "/dir/main.py"), FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE}};
    CHECK_EQ(call(LIONSOS, FS_CMD_FILE_OPEN, open, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(write_at(LIONSOS, fd, 0, "print(1)", 8), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, LIONSOS, fd), FS_STATUS_SUCCESS);
    /* The name has no NUL in it: the asyncfat client finds it without one. */
    CHECK_EQ(open_file(ASYNCFAT, "/dir/main.py", FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_read(&fx, ASYNCFAT, fd, 0, NULL, 64, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(done, 8);
    CHECK_EQ(sf_close(&fx, ASYNCFAT, fd), FS_STATUS_SUCCESS);
    fs_buffer sb = sf_buf(&fx, LIONSOS, NULL, sizeof(fs_stat));
    CHECK_EQ(call(LIONSOS, FS_CMD_STAT, (fs_cmd_params){.stat = {nul_path(LIONSOS, "/dir/main.py"), sb}}, NULL),
             FS_STATUS_SUCCESS);
    fs_stat st;
    memcpy(&st, sf_share(&fx, LIONSOS, sb), sizeof st);
    CHECK_EQ(st.size, 8);
    CHECK_EQ(call(LIONSOS, FS_CMD_RENAME,
                  (fs_cmd_params){.rename = {nul_path(LIONSOS, "/dir/main.py"), nul_path(LIONSOS, "/dir/boot.py")}},
                  NULL),
             FS_STATUS_SUCCESS);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_OPEN, (fs_cmd_params){.dir_open = {nul_path(LIONSOS, "/dir")}}, &fd),
             FS_STATUS_SUCCESS);
    fs_buffer nb = sf_buf(&fx, LIONSOS, NULL, 256);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_READ, (fs_cmd_params){.dir_read = {fd, nb}}, &done), FS_STATUS_SUCCESS);
    CHECK(done == 7 && memcmp(sf_share(&fx, LIONSOS, nb), "boot.py", 7) == 0);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CLOSE, (fs_cmd_params){.dir_close = {fd}}, NULL), FS_STATUS_SUCCESS);
    CHECK_EQ(call(LIONSOS, FS_CMD_FILE_REMOVE, (fs_cmd_params){.file_remove = {nul_path(LIONSOS, "/dir/boot.py")}},
                  NULL),
             FS_STATUS_SUCCESS);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_REMOVE, (fs_cmd_params){.dir_remove = {nul_path(LIONSOS, "/dir")}}, NULL),
             FS_STATUS_SUCCESS);
    /* One NUL only, and only at the end. */
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CREATE, (fs_cmd_params){.dir_create = {sf_buf(&fx, LIONSOS, "/x\0\0", 4)}}, NULL),
             FS_STATUS_INVALID_PATH);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CREATE, (fs_cmd_params){.dir_create = {sf_buf(&fx, LIONSOS, "/x\0y", 4)}}, NULL),
             FS_STATUS_INVALID_PATH);
    fs_buffer root = sf_buf(&fx, LIONSOS, "\0", 1); /* the empty path: the root */
    CHECK_EQ(call(LIONSOS, FS_CMD_STAT, (fs_cmd_params){.stat = {root, sb}}, NULL), FS_STATUS_SUCCESS);
    memcpy(&st, sf_share(&fx, LIONSOS, sb), sizeof st);
    CHECK_EQ(st.mode & FS_MODE_TYPE_MASK, FS_MODE_DIRECTORY);
    /* The longest path, 4095 bytes, may carry its NUL too. */
    static char longest[4096];
    memset(longest, 'a', 4095);
    for (int i = 0; i < 4095; i += 200)
        longest[i] = '/';
    CHECK_EQ(call(LIONSOS, FS_CMD_FILE_OPEN, (fs_cmd_params){.file_open = {sf_buf(&fx, LIONSOS, longest, 4096), 0}},
                  &fd),
             FS_STATUS_NO_FILE);
    CHECK(unmount_both());
    CHECK_EQ(sf_fsck(&fx, "conformance-nul.img"), 0);
    CHECK(finish());
}

/* ---- fds ------------------------------------------------------------------------------------ */

TEST(fds_stay_below_2_31_over_100000_opens_and_stale_ones_stay_dead)
{
    CHECK(setup((sf_options){0}));
    CHECK(mount_both());
    uint64_t fd, kept, stale;
    CHECK_EQ(open_file(LIONSOS, "/f", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &kept), FS_STATUS_SUCCESS);
    sf_share_reset(&fx, LIONSOS);
    CHECK_EQ(open_file(LIONSOS, "/f", FS_OPEN_FLAGS_READ_ONLY, &stale), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, LIONSOS, stale), FS_STATUS_SUCCESS);
    /* One at a time, as a POSIX program opens and closes: the slot just freed is the one
     * a lowest-free-slot table hands out again every time. */
    enum { CYCLES = 100000 };
    fs_cmd_params p = {.file_open = {path_of(LIONSOS, "/f"), FS_OPEN_FLAGS_READ_ONLY}};
    uint64_t highest = 0;
    for (int done = 0; done < CYCLES; done++) {
        fs_cmpl c = sf_call(&fx, LIONSOS, FS_CMD_FILE_OPEN, &p, sizeof p);
        CHECK_EQ(c.status, FS_STATUS_SUCCESS);
        CHECK_MSG(c.data < (1ull << 31) && c.data != stale && c.data != kept, "open %d: fd %llu", done,
                  (unsigned long long)c.data);
        highest = c.data > highest ? c.data : highest;
        fs_cmd_params cl = {.file_close = {c.data}};
        CHECK_EQ(sf_call(&fx, LIONSOS, FS_CMD_FILE_CLOSE, &cl, sizeof cl).status, FS_STATUS_SUCCESS);
        if (done % 4096 == 0) {
            CHECK_EQ(call(LIONSOS, FS_CMD_FILE_SIZE, (fs_cmd_params){.file_size = {stale}}, NULL), FS_STATUS_INVALID_FD);
            CHECK_EQ(call(LIONSOS, FS_CMD_FILE_SIZE, (fs_cmd_params){.file_size = {kept}}, &fd), FS_STATUS_SUCCESS);
        }
    }
    CHECK_MSG(highest < (1ull << 31), "highest fd %llu", (unsigned long long)highest);
    CHECK_EQ(call(LIONSOS, FS_CMD_FILE_CLOSE, (fs_cmd_params){.file_close = {stale}}, NULL), FS_STATUS_INVALID_FD);
    CHECK_EQ(sf_close(&fx, LIONSOS, kept), FS_STATUS_SUCCESS);
    CHECK(finish());
}

/* ---- MicroPython --------------------------------------------------------------------------- */

/* As LionsOS's MicroPython file layer asks: paths with their NUL, a file read by many
 * requests in flight, a directory listed until END_OF_DIRECTORY. */
TEST(micropython_request_sequence)
{
    CHECK(setup((sf_options){0}));
    CHECK_EQ(sf_initialise(&fx, LIONSOS, false), FS_STATUS_SUCCESS);
    enum { READS = 64, CHUNK = 4096 };
    static uint8_t content[READS * CHUNK];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i * 31 + i / 4096);
    uint64_t fd;
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CREATE, (fs_cmd_params){.dir_create = {nul_path(LIONSOS, "/lib")}}, NULL),
             FS_STATUS_SUCCESS);
    const char *names[] = {"/lib/data.bin", "/lib/a.py", "/lib/b.py", "/lib/longer_module_name.py"};
    for (size_t n = 0; n < 4; n++) {
        fs_cmd_params o = {.file_open = {nul_path(LIONSOS, names[n]), FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY}};
        CHECK_EQ(call(LIONSOS, FS_CMD_FILE_OPEN, o, &fd), FS_STATUS_SUCCESS);
        for (int i = 0; i < (n == 0 ? READS : 1); i++)
            CHECK_EQ(write_at(LIONSOS, fd, (uint64_t)i * CHUNK, content + (size_t)i * CHUNK, CHUNK), FS_STATUS_SUCCESS);
        fs_cmd_params s = {.file_sync = {fd}};
        CHECK_EQ(call(LIONSOS, FS_CMD_FILE_SYNC, s, NULL), FS_STATUS_SUCCESS);
        CHECK_EQ(sf_close(&fx, LIONSOS, fd), FS_STATUS_SUCCESS);
        sf_share_reset(&fx, LIONSOS);
    }
    blk_cache_invalidate(&fx.blk.stack.cache); /* the reads go to the device */

    fs_cmd_params o = {.file_open = {nul_path(LIONSOS, "/lib/data.bin"), FS_OPEN_FLAGS_READ_ONLY}};
    CHECK_EQ(call(LIONSOS, FS_CMD_FILE_OPEN, o, &fd), FS_STATUS_SUCCESS);
    fs_buffer bufs[READS];
    uint64_t ids[READS];
    for (int i = 0; i < READS; i++) {
        bufs[i] = sf_buf(&fx, LIONSOS, NULL, CHUNK);
        fs_cmd_params r = {.file_read = {fd, (uint64_t)(READS - 1 - i) * CHUNK, bufs[i]}};
        CHECK((ids[i] = sf_submit(&fx, LIONSOS, FS_CMD_FILE_READ, &r, sizeof r)) != 0);
    }
    for (int got = 0; got < READS;) {
        fs_cmpl c;
        if (!sf_take(&fx, LIONSOS, &c)) {
            CHECK(sf_step(&fx));
            continue;
        }
        int i = (int)(c.id - ids[0]);
        CHECK(i >= 0 && i < READS && c.id == ids[i]);
        CHECK_EQ(c.status, FS_STATUS_SUCCESS);
        CHECK_EQ(c.data, CHUNK);
        CHECK(memcmp(sf_share(&fx, LIONSOS, bufs[i]), content + (size_t)(READS - 1 - i) * CHUNK, CHUNK) == 0);
        got++;
    }
    CHECK_EQ(sf_close(&fx, LIONSOS, fd), FS_STATUS_SUCCESS);
    sf_share_reset(&fx, LIONSOS);

    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_OPEN, (fs_cmd_params){.dir_open = {nul_path(LIONSOS, "/lib")}}, &fd),
             FS_STATUS_SUCCESS);
    bool seen[4] = {false};
    uint64_t status, len;
    fs_buffer nb = sf_buf(&fx, LIONSOS, NULL, FS_MAX_NAME_LENGTH);
    while ((status = call(LIONSOS, FS_CMD_DIR_READ, (fs_cmd_params){.dir_read = {fd, nb}}, &len)) == FS_STATUS_SUCCESS) {
        for (size_t n = 0; n < 4; n++)
            if (len == strlen(names[n]) - 5 && memcmp(sf_share(&fx, LIONSOS, nb), names[n] + 5, len) == 0)
                seen[n] = true;
    }
    CHECK_EQ(status, FS_STATUS_END_OF_DIRECTORY);
    CHECK(seen[0] && seen[1] && seen[2] && seen[3]);
    CHECK_EQ(call(LIONSOS, FS_CMD_DIR_CLOSE, (fs_cmd_params){.dir_close = {fd}}, NULL), FS_STATUS_SUCCESS);
    CHECK_EQ(call(LIONSOS, FS_CMD_DEINITIALISE, (fs_cmd_params){0}, NULL), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_fsck(&fx, "conformance-micropython.img"), 0);
    CHECK(finish());
}
