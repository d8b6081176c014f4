/* Role bad_inputs: what a careless or hostile client sends gets a clear status, and the
 * server goes on serving (the last checks, and the Linux fsck after the boot, show nothing
 * was harmed). */
#include "sel4/clients/files.h"

static fs_cmd_params zero(void)
{
    fs_cmd_params p;
    af_memset(&p, 0, sizeof(p));
    return p;
}

static void fds(const char *dir)
{
    char path[96], why[160];
    tc_join(path, sizeof(path), dir, "/bad_fd.bin", NULL);
    tc_write_file(path, 5000, 77, 0, false, why, sizeof(why));
    uint64_t fd, done = 0;
    uint64_t st = tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &fd);
    uint64_t closed = tc_close(fd);
    uint8_t *buf = tc_area();
    uint64_t stale = tc_read(fd, 0, buf, 100, &done);
    uint64_t twice = tc_close(fd);
    tc_expect(st == FS_STATUS_SUCCESS && closed == FS_STATUS_SUCCESS && stale == FS_STATUS_INVALID_FD &&
                  twice == FS_STATUS_INVALID_FD,
              "stale_fd", "read after close %s, close again %s", tc_status_name(stale), tc_status_name(twice));

    uint64_t bogus = tc_read(0xdeadbeefu, 0, buf, 100, &done);
    uint64_t huge = tc_size(UINT64_MAX, &done);
    tc_expect(bogus == FS_STATUS_INVALID_FD && huge == FS_STATUS_INVALID_FD, "invalid_fd", "read %s, size %s",
              tc_status_name(bogus), tc_status_name(huge));

    /* a file fd where a directory fd belongs, and the other way round */
    st = tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &fd);
    char name[64];
    uint64_t as_dir = tc_readdir(fd, name, sizeof(name));
    tc_close(fd);
    uint64_t dfd;
    tc_opendir(dir, &dfd);
    uint64_t as_file = tc_read(dfd, 0, buf, 10, &done);
    tc_closedir(dfd);
    tc_expect(as_dir == FS_STATUS_INVALID_FD && as_file == FS_STATUS_INVALID_FD, "fd_of_the_wrong_kind",
              "readdir on a file %s, read on a directory %s", tc_status_name(as_dir), tc_status_name(as_file));

    /* writing through a read-only fd */
    st = tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &fd);
    uint64_t w = tc_write(fd, 0, "x", 1, &done);
    tc_close(fd);
    tc_expect(w == FS_STATUS_INVALID_WRITE, "write_to_read_only_fd", "%s", tc_status_name(w));
}

static void buffers(const char *dir)
{
    char path[96];
    tc_join(path, sizeof(path), dir, "/bad_buf.bin", NULL);
    uint64_t fd;
    tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd);
    struct {
        const char *check;
        uint64_t offset, size;
    } cases[] = {
        {"buffer_past_share_end", tc_share_bytes() - 10, 100},
        {"buffer_offset_huge", 1ull << 63, 16},
        {"buffer_size_overflows", 4096, UINT64_MAX - 100},
    };
    for (uint32_t i = 0; i < AF_ARRAY_LEN(cases); i++) {
        fs_cmd_params p = zero();
        p.file_write.fd = fd;
        p.file_write.buf = (fs_buffer){cases[i].offset, cases[i].size};
        uint64_t w = tc_call(FS_CMD_FILE_WRITE, &p).status;
        p.file_read.buf = p.file_write.buf;
        uint64_t r = tc_call(FS_CMD_FILE_READ, &p).status;
        tc_expect(w == FS_STATUS_INVALID_BUFFER && r == FS_STATUS_INVALID_BUFFER, cases[i].check,
                  "write %s, read %s", tc_status_name(w), tc_status_name(r));
    }
    /* a path buffer outside the region */
    fs_cmd_params p = zero();
    p.dir_create.path = (fs_buffer){tc_share_bytes(), 5};
    uint64_t st = tc_call(FS_CMD_DIR_CREATE, &p).status;
    tc_expect(st == FS_STATUS_INVALID_BUFFER, "path_buffer_outside_share", "%s", tc_status_name(st));
    tc_close(fd);
    tc_unlink(path);
}

static void paths_and_names(const char *dir)
{
    /* 4096 bytes: one more than a path may have */
    uint8_t *p = tc_area() + tc_area_bytes() - TC_PATH_AREA;
    p[0] = '/';
    for (uint32_t i = 1; i < 4096; i++)
        p[i] = (i % 200 == 0) ? '/' : 'p';
    fs_cmd_params c = zero();
    c.dir_create.path = tc_buffer(p, 4096);
    uint64_t st = tc_call(FS_CMD_DIR_CREATE, &c).status;
    tc_expect(st == FS_STATUS_INVALID_PATH, "path_of_4096_bytes", "%s", tc_status_name(st));

    /* a name of 256 bytes: one more than a component may have */
    char path[400];
    size_t n = tc_strlen(dir);
    af_memcpy(path, dir, n);
    path[n++] = '/';
    for (uint32_t i = 0; i < 256; i++)
        path[n++] = 'n';
    path[n] = 0;
    uint64_t fd;
    st = tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE, &fd);
    uint64_t mk = tc_mkdir(path);
    uint64_t too_long = tc_extensions() ? FS_STATUS_NAME_TOO_LONG : FS_STATUS_INVALID_NAME;
    tc_expect(st == too_long && mk == too_long, "name_of_256_bytes",
              "create %s, mkdir %s", tc_status_name(st), tc_status_name(mk));

    /* a NUL inside a path, and characters FAT forbids */
    uint8_t *q = tc_area() + tc_area_bytes() - TC_PATH_AREA;
    af_memcpy(q, "/a\0b", 4);
    c = zero();
    c.dir_create.path = tc_buffer(q, 4);
    st = tc_call(FS_CMD_DIR_CREATE, &c).status;
    tc_expect(st == FS_STATUS_INVALID_PATH, "path_with_nul", "%s", tc_status_name(st));
    tc_join(path, sizeof(path), dir, "/bad:name?", NULL);
    st = tc_mkdir(path);
    tc_expect(st == FS_STATUS_INVALID_NAME, "name_with_forbidden_characters", "%s", tc_status_name(st));
    st = tc_stat("/no/such/dir/file", NULL);
    tc_expect(st == FS_STATUS_NO_FILE, "stat_missing_path", "%s", tc_status_name(st));
}

static void commands_and_dirs(const char *dir)
{
    fs_cmd_params p = zero();
    uint64_t st = tc_call(9999, &p).status;
    uint64_t st2 = tc_call(UINT64_MAX, &p).status;
    tc_expect(st == FS_STATUS_INVALID_COMMAND && st2 == FS_STATUS_INVALID_COMMAND, "unknown_command",
              "9999: %s, 2^64-1: %s", tc_status_name(st), tc_status_name(st2));
    if (!tc_extensions()) {
        /* a LionsOS client that never opted in: asyncfat's extensions are not there */
        st = tc_call(FS_CMD_LIONSOS_COUNT, &p).status;
        uint64_t fd;
        char path[96];
        tc_join(path, sizeof(path), dir, "/exclusive.bin", NULL);
        st2 = tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_EXCLUSIVE, &fd);
        if (st2 == FS_STATUS_SUCCESS)
            tc_close(fd);
        tc_expect(st == FS_STATUS_INVALID_COMMAND && st2 == FS_STATUS_ERROR && tc_stat(path, NULL) == FS_STATUS_NO_FILE,
                  "extensions_need_the_opt_in", "command %u: %s, EXCLUSIVE open: %s",
                  (unsigned)FS_CMD_LIONSOS_COUNT, tc_status_name(st), tc_status_name(st2));
    }

    char sub[96], file[128], why[160];
    tc_join(sub, sizeof(sub), dir, "/not_empty", NULL);
    tc_mkdir(sub);
    tc_join(file, sizeof(file), sub, "/keep.bin", NULL);
    tc_write_file(file, 321, 78, 0, false, why, sizeof(why));
    st = tc_rmdir(sub);
    uint64_t still = tc_stat(file, NULL);
    tc_expect(st == FS_STATUS_NOT_EMPTY && still == FS_STATUS_SUCCESS, "rmdir_not_empty", "rmdir %s, file %s",
              tc_status_name(st), tc_status_name(still));
    if (still == FS_STATUS_SUCCESS)
        tc_report_file(file, 321, 78);
    st = tc_rmdir(file);
    tc_expect(st == FS_STATUS_NOT_DIRECTORY, "rmdir_of_a_file", "%s", tc_status_name(st));
    uint64_t fd;
    st = tc_open(sub, FS_OPEN_FLAGS_READ_ONLY, &fd);
    /* LionsOS's FILE_OPEN knows no directories: to it there is no such file */
    tc_expect(st == (tc_extensions() ? FS_STATUS_IS_DIRECTORY : FS_STATUS_NO_FILE), "open_a_directory_as_file", "%s",
              tc_status_name(st));
    st = tc_rmdir("/");
    uint64_t busy = tc_extensions() ? FS_STATUS_BUSY : FS_STATUS_OUTSTANDING_OPERATIONS;
    tc_expect(st == busy || st == FS_STATUS_INVALID_PATH, "rmdir_root_refused", "%s", tc_status_name(st));
}

void tc_role_bad_inputs(void)
{
    char dir[64];
    tc_join(dir, sizeof(dir), test_config.dir, "_bad", NULL);
    tc_mkdir(dir);
    fds(dir);
    buffers(dir);
    paths_and_names(dir);
    commands_and_dirs(dir);
    /* the server still serves, and files made before are intact */
    fs_stat st;
    uint64_t s = tc_stat("/", &st);
    tc_expect(s == FS_STATUS_SUCCESS && (st.mode & FS_MODE_TYPE_MASK) == FS_MODE_DIRECTORY, "serving_after_bad_inputs",
              "%s", tc_status_name(s));
}
