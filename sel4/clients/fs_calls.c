/* The file-system calls a test makes, each one request through tc_call. Buffers and paths
 * live in the calling fiber's part of the share region. */
#include "sel4/clients/client.h"

static fs_cmd_params params(void)
{
    fs_cmd_params p;
    af_memset(&p, 0, sizeof(p));
    return p;
}

/* A LionsOS client has no TRUNCATE flag: it opens, then truncates to 0, as LionsOS's own
 * clients do. EXCLUSIVE has no LionsOS form; the server refuses it there. */
uint64_t tc_open(const char *path, uint64_t flags, uint64_t *fd)
{
    bool truncate_after = !tc_extensions() && (flags & FS_OPEN_FLAGS_TRUNCATE);
    fs_cmd_params p = params();
    p.file_open.path = tc_path(path);
    p.file_open.flags = truncate_after ? flags & ~(uint64_t)FS_OPEN_FLAGS_TRUNCATE : flags;
    tc_reply r = tc_call(FS_CMD_FILE_OPEN, &p);
    *fd = r.data;
    if (r.status == FS_STATUS_SUCCESS && truncate_after) {
        uint64_t st = tc_truncate(*fd, 0);
        if (st != FS_STATUS_SUCCESS) {
            tc_close(*fd);
            return st;
        }
    }
    return r.status;
}

uint64_t tc_close(uint64_t fd)
{
    fs_cmd_params p = params();
    p.file_close.fd = fd;
    return tc_call(FS_CMD_FILE_CLOSE, &p).status;
}

/* Data goes through the start of the caller's area, at most tc_area_bytes() - 8 KiB a call. */
uint64_t tc_write(uint64_t fd, uint64_t offset, const void *src, size_t len, uint64_t *done)
{
    uint8_t *buf = tc_area();
    if (src != buf)
        af_memcpy(buf, src, len);
    fs_cmd_params p = params();
    p.file_write.fd = fd;
    p.file_write.offset = offset;
    p.file_write.buf = tc_buffer(buf, len);
    tc_reply r = tc_call(FS_CMD_FILE_WRITE, &p);
    *done = r.data;
    return r.status;
}

uint64_t tc_read(uint64_t fd, uint64_t offset, void *dst, size_t len, uint64_t *done)
{
    uint8_t *buf = tc_area();
    fs_cmd_params p = params();
    p.file_read.fd = fd;
    p.file_read.offset = offset;
    p.file_read.buf = tc_buffer(buf, len);
    tc_reply r = tc_call(FS_CMD_FILE_READ, &p);
    *done = r.data;
    if (dst != buf && r.status == FS_STATUS_SUCCESS)
        af_memcpy(dst, buf, r.data < len ? r.data : len);
    return r.status;
}

uint64_t tc_size(uint64_t fd, uint64_t *size)
{
    fs_cmd_params p = params();
    p.file_size.fd = fd;
    tc_reply r = tc_call(FS_CMD_FILE_SIZE, &p);
    *size = r.data;
    return r.status;
}

uint64_t tc_truncate(uint64_t fd, uint64_t length)
{
    fs_cmd_params p = params();
    p.file_truncate.fd = fd;
    p.file_truncate.length = length;
    return tc_call(FS_CMD_FILE_TRUNCATE, &p).status;
}

uint64_t tc_sync(uint64_t fd)
{
    fs_cmd_params p = params();
    p.file_sync.fd = fd;
    return tc_call(FS_CMD_FILE_SYNC, &p).status;
}

uint64_t tc_stat(const char *path, fs_stat *st)
{
    uint8_t *out = tc_area();
    fs_cmd_params p = params();
    p.stat.path = tc_path(path);
    p.stat.buf = tc_buffer(out, sizeof(fs_stat));
    uint64_t status = tc_call(FS_CMD_STAT, &p).status;
    if (status == FS_STATUS_SUCCESS && st)
        af_memcpy(st, out, sizeof(*st));
    return status;
}

static uint64_t path_call(uint64_t type, const char *path)
{
    fs_cmd_params p = params();
    p.dir_create.path = tc_path(path); /* every path-only command has its path first */
    return tc_call(type, &p).status;
}

uint64_t tc_mkdir(const char *path) { return path_call(FS_CMD_DIR_CREATE, path); }
uint64_t tc_rmdir(const char *path) { return path_call(FS_CMD_DIR_REMOVE, path); }
uint64_t tc_unlink(const char *path) { return path_call(FS_CMD_FILE_REMOVE, path); }

uint64_t tc_rename(const char *from, const char *to)
{
    fs_cmd_params p = params();
    p.rename.old_path = tc_path(from);
    /* The second path after the first one's NUL, in the same path area. */
    uint8_t *second = tc_share() + p.rename.old_path.offset + p.rename.old_path.size + 1;
    size_t n = tc_strlen(to);
    af_memcpy(second, to, n);
    p.rename.new_path = tc_buffer(second, n);
    return tc_call(FS_CMD_RENAME, &p).status;
}

uint64_t tc_opendir(const char *path, uint64_t *fd)
{
    fs_cmd_params p = params();
    p.dir_open.path = tc_path(path);
    tc_reply r = tc_call(FS_CMD_DIR_OPEN, &p);
    *fd = r.data;
    return r.status;
}

uint64_t tc_closedir(uint64_t fd)
{
    fs_cmd_params p = params();
    p.dir_close.fd = fd;
    return tc_call(FS_CMD_DIR_CLOSE, &p).status;
}

uint64_t tc_readdir(uint64_t fd, char *name, size_t name_size)
{
    uint8_t *buf = tc_area();
    fs_cmd_params p = params();
    p.dir_read.fd = fd;
    p.dir_read.buf = tc_buffer(buf, 1024);
    tc_reply r = tc_call(FS_CMD_DIR_READ, &p);
    if (r.status == FS_STATUS_SUCCESS) {
        size_t n = r.data < name_size - 1 ? r.data : name_size - 1;
        af_memcpy(name, buf, n);
        name[n] = 0;
    }
    return r.status;
}

uint64_t tc_seekdir(uint64_t fd, int64_t loc)
{
    fs_cmd_params p = params();
    p.dir_seek.fd = fd;
    p.dir_seek.loc = loc;
    return tc_call(FS_CMD_DIR_SEEK, &p).status;
}

uint64_t tc_telldir(uint64_t fd, uint64_t *loc)
{
    fs_cmd_params p = params();
    p.dir_tell.fd = fd;
    tc_reply r = tc_call(FS_CMD_DIR_TELL, &p);
    *loc = r.data;
    return r.status;
}

uint64_t tc_rewinddir(uint64_t fd)
{
    fs_cmd_params p = params();
    p.dir_rewind.fd = fd;
    return tc_call(FS_CMD_DIR_REWIND, &p).status;
}
