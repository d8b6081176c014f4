/* The requests the mount sends that fs_client has no call for: the extensions that answer
 * with a record (docs/PROTOCOL.md), and single reads and writes the size of one FUSE
 * request (see mount.h). */
#include "tools/mount/mount.h"

#include <string.h>

/* One share buffer: a reply record of `record` bytes, then the path. */
typedef struct path_request {
    uint8_t *mem;
    fs_buffer record;
    fs_buffer path;
} path_request;

static fs_status path_request_alloc(fs_conn *c, const char *path, size_t record, path_request *r)
{
    size_t len = strlen(path);
    if (len > FS_MAX_PATH_LENGTH)
        return FS_STATUS_INVALID_PATH;
    r->mem = fs_conn_alloc(c, record + len);
    if (!r->mem)
        return FS_STATUS_ALLOCATION_ERROR;
    memcpy(r->mem + record, path, len);
    r->record = fs_conn_buffer(c, r->mem, record);
    r->path = fs_conn_buffer(c, r->mem + record, len);
    return FS_STATUS_SUCCESS;
}

/* Send cmd (its path and record buffers from r), take the stat record it returns, free r. */
static fs_status call_for_record(fs_conn *c, path_request *r, fs_cmd *cmd, uint64_t *data, fs_stat *rec)
{
    fs_status st = fs_conn_call(c, cmd, data);
    if (st == FS_STATUS_SUCCESS)
        memcpy(rec, r->mem, sizeof *rec);
    fs_conn_free(c, r->mem);
    return st;
}

fs_status wire_open_stat(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *rec)
{
    path_request r;
    fs_status st = path_request_alloc(c, path, sizeof *rec, &r);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_OPEN_STAT;
    fs_ext_params *p = (fs_ext_params *)&cmd.params;
    p->open_stat.path = r.path;
    p->open_stat.flags = flags;
    p->open_stat.stat = r.record;
    return call_for_record(c, &r, &cmd, fd, rec);
}

fs_status wire_set_times_stat(fs_conn *c, const char *path, int64_t atime, int64_t mtime, fs_stat *rec)
{
    path_request r;
    fs_status st = path_request_alloc(c, path, sizeof *rec, &r);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_SET_TIMES_STAT;
    fs_ext_params *p = (fs_ext_params *)&cmd.params;
    p->set_times_stat.path = r.path;
    p->set_times_stat.atime = atime;
    p->set_times_stat.mtime = mtime;
    p->set_times_stat.stat = r.record;
    return call_for_record(c, &r, &cmd, NULL, rec);
}

fs_status wire_open_read(fs_conn *c, const char *path, uint64_t flags, bool keep_fd, void *dst, size_t cap,
                         fs_stat *rec, uint64_t *fd, size_t *got)
{
    const size_t head = sizeof(fs_open_read_record);
    path_request r;
    fs_status st = path_request_alloc(c, path, head + cap, &r);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    fs_ext_params *p = (fs_ext_params *)&cmd.params;
    if (keep_fd) {
        cmd.type = FS_CMD_OPEN_READ;
        p->open_read.path = r.path;
        p->open_read.flags = flags;
        p->open_read.buf = r.record;
    } else {
        cmd.type = FS_CMD_READ_PATH;
        p->read_path.path = r.path;
        p->read_path.offset = 0;
        p->read_path.buf = r.record;
    }
    uint64_t data = 0;
    st = fs_conn_call(c, &cmd, &data);
    if (st == FS_STATUS_SUCCESS) {
        fs_open_read_record reply;
        memcpy(&reply, r.mem, sizeof reply);
        *rec = reply.stat;
        *fd = keep_fd ? data : 0;
        *got = reply.read < cap ? (size_t)reply.read : cap;
        memcpy(dst, r.mem + head, *got);
    }
    fs_conn_free(c, r.mem);
    return st;
}

fs_status wire_read_once(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t size, size_t *got)
{
    *got = 0;
    uint8_t *share = fs_conn_alloc(c, size ? size : 1);
    if (!share)
        return FS_STATUS_INVALID_ARGUMENT;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FILE_READ;
    cmd.params.file_read.fd = fd;
    cmd.params.file_read.offset = offset;
    cmd.params.file_read.buf = fs_conn_buffer(c, share, size);
    uint64_t n = 0;
    fs_status st = fs_conn_call(c, &cmd, &n);
    if (n > size)
        n = size;
    if (st == FS_STATUS_SUCCESS) {
        memcpy(dst, share, n);
        *got = n;
    }
    fs_conn_free(c, share);
    return st;
}

fs_status wire_write_once(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t size, size_t *put)
{
    *put = 0;
    uint8_t *share = fs_conn_alloc(c, size ? size : 1);
    if (!share)
        return FS_STATUS_INVALID_ARGUMENT;
    memcpy(share, src, size);
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FILE_WRITE;
    cmd.params.file_write.fd = fd;
    cmd.params.file_write.offset = offset;
    cmd.params.file_write.buf = fs_conn_buffer(c, share, size);
    uint64_t n = 0;
    fs_status st = fs_conn_call(c, &cmd, &n);
    fs_conn_free(c, share);
    *put = n > size ? size : (size_t)n;
    return st;
}

/* The batch holds `count` records that lie inside its `cap` bytes. */
static bool batch_well_formed(const uint8_t *batch, size_t cap, uint64_t count)
{
    size_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        fs_dir_record head;
        if (cap - at < sizeof head)
            return false;
        memcpy(&head, batch + at, sizeof head);
        if (head.name_len > FS_CONN_NAME_MAX || FS_DIR_RECORD_SIZE(head.name_len) > cap - at)
            return false;
        at += (size_t)FS_DIR_RECORD_SIZE(head.name_len);
    }
    return true;
}

fs_status wire_dir_read_batch(fs_conn *c, uint64_t fd, void *dst, size_t cap, uint64_t *count)
{
    *count = 0;
    uint8_t *share = fs_conn_alloc(c, cap);
    if (!share)
        return FS_STATUS_ALLOCATION_ERROR;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_DIR_READ_BATCH;
    fs_ext_params *p = (fs_ext_params *)&cmd.params;
    p->dir_read_batch.fd = fd;
    p->dir_read_batch.buf = fs_conn_buffer(c, share, cap);
    fs_status st = fs_conn_call(c, &cmd, count);
    if (st == FS_STATUS_SUCCESS && (*count == 0 || !batch_well_formed(share, cap, *count)))
        st = FS_STATUS_ERROR;
    if (st == FS_STATUS_SUCCESS)
        memcpy(dst, share, cap);
    fs_conn_free(c, share);
    return st;
}

fs_status wire_dir_rewind(fs_conn *c, uint64_t fd)
{
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_DIR_REWIND;
    cmd.params.dir_rewind.fd = fd;
    return fs_conn_call(c, &cmd, NULL);
}
