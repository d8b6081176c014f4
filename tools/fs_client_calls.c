/* The client library's calls: one encoder per command, the asynchronous and blocking
 * forms, the decoding of replies and records, and what statuses mean to a POSIX program
 * (see fs_client.h). */
#include "tools/fs_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- encoders: one per command ---- */

/* A command being encoded: its message, and the call's own share buffer, laid out as the
 * reply's record (8-byte aligned) and then the paths. */
typedef struct encoding {
    fs_cmd cmd;
    fs_status status;          /* SUCCESS, or why it cannot be sent */
    fs_buffer record;
    fs_buffer path[2];
} encoding;

static size_t round_up8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Paths start from a base: at 0 the root, else a directory fd of the connection's, sent in
 * the path buffer's size word (FS_PATH_AT; the server honours it for a client that opted
 * in, as this library's always do). */
static encoding encode_at(fs_conn *c, fs_call *call, uint64_t type, size_t record, uint64_t at1, const char *path1,
                          uint64_t at2, const char *path2)
{
    encoding e;
    memset(&e, 0, sizeof e);
    memset(call, 0, sizeof *call);
    e.cmd.type = type;
    const char *paths[2] = {path1, path2};
    uint64_t at[2] = {at1, at2};
    size_t len[2] = {0, 0}, size = round_up8(record);
    for (int i = 0; i < 2; i++) {
        len[i] = paths[i] ? strlen(paths[i]) : 0;
        if (len[i] > FS_MAX_PATH_LENGTH)
            e.status = FS_STATUS_INVALID_PATH;
        else if (at[i] > UINT32_MAX)
            e.status = FS_STATUS_INVALID_FD;
        size += len[i];
    }
    if (e.status != FS_STATUS_SUCCESS || size == 0)
        return e;
    call->share = c->ep.completed ? fs_conn_try_alloc(c, size) : fs_conn_alloc(c, size);
    if (!call->share) {
        e.status = FS_STATUS_ALLOCATION_ERROR;
        return e;
    }
    call->record_size = (uint32_t)record;
    e.record = fs_conn_buffer(c, call->share, record);
    size_t pos = round_up8(record);
    for (int i = 0; i < 2; i++) {
        if (!paths[i])
            continue;
        memcpy(call->share + pos, paths[i], len[i]);
        e.path[i] = fs_conn_buffer(c, call->share + pos, len[i]);
        e.path[i].size = FS_PATH_AT(len[i], at[i]);
        pos += len[i];
    }
    return e;
}

static encoding encode(fs_conn *c, fs_call *call, uint64_t type, size_t record, uint64_t at, const char *path)
{
    return encode_at(c, call, type, record, at, path, 0, NULL);
}

static void send_encoded(fs_conn *c, fs_call *call, encoding *e)
{
    call->ticket = e->status == FS_STATUS_SUCCESS ? fs_conn_submit(c, &e->cmd) : fs_conn_refuse(c, e->status);
}

void fs_conn_start_open(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags)
{
    encoding e = encode(c, call, FS_CMD_FILE_OPEN, 0, at, path);
    e.cmd.params.file_open.path = e.path[0];
    e.cmd.params.file_open.flags = flags;
    send_encoded(c, call, &e);
}

void fs_conn_start_open_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags)
{
    encoding e = encode(c, call, FS_CMD_OPEN_STAT, sizeof(fs_stat), at, path);
    e.cmd.params.open_stat.path = e.path[0];
    e.cmd.params.open_stat.flags = flags;
    e.cmd.params.open_stat.stat = e.record;
    send_encoded(c, call, &e);
}

/* The commands that name only an fd and one number (FILE_TRUNCATE's length; 0 in the
 * others, where those bytes are unused). */
static void start_fd(fs_conn *c, fs_call *call, uint64_t type, uint64_t fd, uint64_t arg)
{
    encoding e = encode(c, call, type, 0, 0, NULL);
    e.cmd.params.file_truncate.fd = fd;
    e.cmd.params.file_truncate.length = arg;
    send_encoded(c, call, &e);
}

void fs_conn_start_close(fs_conn *c, fs_call *call, uint64_t fd) { start_fd(c, call, FS_CMD_FILE_CLOSE, fd, 0); }

void fs_conn_start_truncate(fs_conn *c, fs_call *call, uint64_t fd, uint64_t length)
{
    start_fd(c, call, FS_CMD_FILE_TRUNCATE, fd, length);
}

void fs_conn_start_read(fs_conn *c, fs_call *call, uint64_t fd, uint64_t offset, void *buf, size_t len)
{
    encoding e = encode(c, call, FS_CMD_FILE_READ, 0, 0, NULL);
    e.cmd.params.file_read.fd = fd;
    e.cmd.params.file_read.offset = offset;
    e.cmd.params.file_read.buf = fs_conn_buffer(c, buf, len);
    send_encoded(c, call, &e);
}

void fs_conn_start_write(fs_conn *c, fs_call *call, uint64_t fd, uint64_t offset, const void *buf, size_t len)
{
    encoding e = encode(c, call, FS_CMD_FILE_WRITE, 0, 0, NULL);
    e.cmd.params.file_write.fd = fd;
    e.cmd.params.file_write.offset = offset;
    e.cmd.params.file_write.buf = fs_conn_buffer(c, buf, len);
    send_encoded(c, call, &e);
}

void fs_conn_start_set_times(fs_conn *c, fs_call *call, uint64_t at, const char *path, int64_t atime, int64_t mtime)
{
    encoding e = encode(c, call, FS_CMD_SET_TIMES, 0, at, path);
    e.cmd.params.set_times.path = e.path[0];
    e.cmd.params.set_times.atime = atime;
    e.cmd.params.set_times.mtime = mtime;
    send_encoded(c, call, &e);
}

void fs_conn_start_file_set_times(fs_conn *c, fs_call *call, uint64_t fd, int64_t atime, int64_t mtime)
{
    encoding e = encode(c, call, FS_CMD_FILE_SET_TIMES, 0, 0, NULL);
    e.cmd.params.file_set_times.fd = fd;
    e.cmd.params.file_set_times.atime = atime;
    e.cmd.params.file_set_times.mtime = mtime;
    send_encoded(c, call, &e);
}

/* The commands that name only a path: DIR_CREATE, DIR_REMOVE, FILE_REMOVE, DIR_OPEN,
 * GET_ATTRIBUTES. */
static void start_path(fs_conn *c, fs_call *call, uint64_t type, uint64_t at, const char *path)
{
    encoding e = encode(c, call, type, 0, at, path);
    e.cmd.params.dir_create.path = e.path[0];
    send_encoded(c, call, &e);
}

void fs_conn_start_mkdir(fs_conn *c, fs_call *call, uint64_t at, const char *path) { start_path(c, call, FS_CMD_DIR_CREATE, at, path); }
void fs_conn_start_rmdir(fs_conn *c, fs_call *call, uint64_t at, const char *path) { start_path(c, call, FS_CMD_DIR_REMOVE, at, path); }
void fs_conn_start_opendir(fs_conn *c, fs_call *call, uint64_t at, const char *path) { start_path(c, call, FS_CMD_DIR_OPEN, at, path); }

void fs_conn_start_get_attributes(fs_conn *c, fs_call *call, uint64_t at, const char *path)
{
    start_path(c, call, FS_CMD_GET_ATTRIBUTES, at, path);
}

void fs_conn_start_set_attributes(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t set, uint64_t clear)
{
    encoding e = encode(c, call, FS_CMD_SET_ATTRIBUTES, 0, at, path);
    e.cmd.params.set_attributes.path = e.path[0];
    e.cmd.params.set_attributes.set = set;
    e.cmd.params.set_attributes.clear = clear;
    send_encoded(c, call, &e);
}

void fs_conn_start_remove(fs_conn *c, fs_call *call, uint64_t at, const char *path)
{
    start_path(c, call, FS_CMD_FILE_REMOVE, at, path);
}

void fs_conn_start_deinitialise(fs_conn *c, fs_call *call) { start_fd(c, call, FS_CMD_DEINITIALISE, 0, 0); }
void fs_conn_start_closedir(fs_conn *c, fs_call *call, uint64_t fd) { start_fd(c, call, FS_CMD_DIR_CLOSE, fd, 0); }
void fs_conn_start_rewinddir(fs_conn *c, fs_call *call, uint64_t fd) { start_fd(c, call, FS_CMD_DIR_REWIND, fd, 0); }
void fs_conn_start_sync(fs_conn *c, fs_call *call, uint64_t fd) { start_fd(c, call, FS_CMD_FILE_SYNC, fd, 0); }

void fs_conn_start_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path)
{
    encoding e = encode(c, call, FS_CMD_STAT, sizeof(fs_stat), at, path);
    e.cmd.params.stat.path = e.path[0];
    e.cmd.params.stat.buf = e.record;
    send_encoded(c, call, &e);
}

void fs_conn_start_fstat(fs_conn *c, fs_call *call, uint64_t fd)
{
    encoding e = encode(c, call, FS_CMD_FSTAT, sizeof(fs_stat), 0, NULL);
    e.cmd.params.fstat.fd = fd;
    e.cmd.params.fstat.buf = e.record;
    send_encoded(c, call, &e);
}

void fs_conn_start_statfs(fs_conn *c, fs_call *call)
{
    encoding e = encode(c, call, FS_CMD_STATFS, sizeof(fs_statfs), 0, NULL);
    e.cmd.params.statfs.buf = e.record;
    send_encoded(c, call, &e);
}

void fs_conn_start_mount_report(fs_conn *c, fs_call *call)
{
    encoding e = encode(c, call, FS_CMD_MOUNT_REPORT, sizeof(fs_mount_report), 0, NULL);
    e.cmd.params.mount_report.buf = e.record;
    send_encoded(c, call, &e);
}

void fs_conn_start_rename(fs_conn *c, fs_call *call, uint64_t old_at, const char *old_path, uint64_t new_at,
                          const char *new_path)
{
    encoding e = encode_at(c, call, FS_CMD_RENAME, 0, old_at, old_path, new_at, new_path);
    e.cmd.params.rename.old_path = e.path[0];
    e.cmd.params.rename.new_path = e.path[1];
    send_encoded(c, call, &e);
}

void fs_conn_start_set_times_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path, int64_t atime, int64_t mtime)
{
    encoding e = encode(c, call, FS_CMD_SET_TIMES_STAT, sizeof(fs_stat), at, path);
    e.cmd.params.set_times_stat.path = e.path[0];
    e.cmd.params.set_times_stat.atime = atime;
    e.cmd.params.set_times_stat.mtime = mtime;
    e.cmd.params.set_times_stat.stat = e.record;
    send_encoded(c, call, &e);
}

void fs_conn_start_readdir_batch(fs_conn *c, fs_call *call, uint64_t fd, size_t cap)
{
    encoding e = encode(c, call, FS_CMD_DIR_READ_BATCH, cap, 0, NULL);
    e.cmd.params.dir_read_batch.fd = fd;
    e.cmd.params.dir_read_batch.buf = e.record;
    send_encoded(c, call, &e);
}

/* OPEN_READ (with_fd) or READ_PATH: the reply's record, then the bytes. */
static void start_open_read(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags, bool with_fd, size_t cap)
{
    encoding e = encode(c, call, with_fd ? FS_CMD_OPEN_READ : FS_CMD_READ_PATH, sizeof(fs_open_read_record) + cap,
                        at, path);
    if (with_fd) {
        e.cmd.params.open_read.path = e.path[0];
        e.cmd.params.open_read.flags = flags;
        e.cmd.params.open_read.buf = e.record;
    } else {
        e.cmd.params.read_path.path = e.path[0];
        e.cmd.params.read_path.offset = 0;
        e.cmd.params.read_path.buf = e.record;
    }
    send_encoded(c, call, &e);
}

void fs_conn_start_open_read(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags, size_t cap)
{
    start_open_read(c, call, at, path, flags, true, cap);
}

void fs_conn_start_read_path(fs_conn *c, fs_call *call, uint64_t at, const char *path, size_t cap)
{
    start_open_read(c, call, at, path, 0, false, cap);
}

void fs_conn_finish_keep(fs_conn *c, fs_call *call, const fs_cmpl *cmpl, fs_reply *out)
{
    AF_UNUSED(c);
    memset(out, 0, sizeof *out);
    out->status = (fs_status)cmpl->status;
    out->data = cmpl->data;
    if (out->status == FS_STATUS_SUCCESS && call->record_size)
        memcpy(&out->record, call->share,
               call->record_size < sizeof out->record ? call->record_size : sizeof out->record);
}

void fs_conn_finish(fs_conn *c, fs_call *call, const fs_cmpl *cmpl, fs_reply *out)
{
    fs_conn_finish_keep(c, call, cmpl, out);
    fs_conn_free(c, call->share);
    call->share = NULL;
}

/* ---- blocking calls: start, wait, finish ---- */

static fs_status finish_now(fs_conn *c, fs_call *call, fs_reply *out)
{
    fs_cmpl cmpl;
    fs_conn_wait(c, call->ticket, &cmpl);
    fs_conn_finish(c, call, &cmpl, out);
    return out->status;
}

/* The same, for a call whose reply carries a stat record (kept in *st on SUCCESS); *data
 * (may be NULL) gets the completion's data. */
static fs_status finish_with_stat(fs_conn *c, fs_call *call, fs_stat *st, uint64_t *data)
{
    fs_reply r;
    fs_status status = finish_now(c, call, &r);
    if (data)
        *data = r.data;
    if (status == FS_STATUS_SUCCESS)
        *st = r.record.stat;
    return status;
}

static fs_status call_fd(fs_conn *c, uint64_t type, uint64_t fd, uint64_t arg, uint64_t *data)
{
    fs_call call;
    fs_reply r;
    start_fd(c, &call, type, fd, arg);
    fs_status st = finish_now(c, &call, &r);
    if (data)
        *data = r.data;
    return st;
}

/* asyncfat's clients speak its extensions (docs/PROTOCOL.md §2): INITIALISE opts in. */
void fs_conn_start_initialise(fs_conn *c, fs_call *call)
{
    encoding e = encode(c, call, FS_CMD_INITIALISE, 0, 0, NULL);
    e.cmd.params.initialise.magic = FS_INITIALISE_MAGIC;
    e.cmd.params.initialise.flags = FS_INITIALISE_EXTENSIONS;
    send_encoded(c, call, &e);
}

fs_status fs_conn_initialise(fs_conn *c)
{
    fs_call call;
    fs_reply r;
    fs_conn_start_initialise(c, &call);
    return finish_now(c, &call, &r);
}
fs_status fs_conn_deinitialise(fs_conn *c) { return call_fd(c, FS_CMD_DEINITIALISE, 0, 0, NULL); }
fs_status fs_conn_close_file(fs_conn *c, uint64_t fd) { return call_fd(c, FS_CMD_FILE_CLOSE, fd, 0, NULL); }
fs_status fs_conn_closedir(fs_conn *c, uint64_t fd) { return call_fd(c, FS_CMD_DIR_CLOSE, fd, 0, NULL); }
fs_status fs_conn_rewinddir(fs_conn *c, uint64_t fd) { return call_fd(c, FS_CMD_DIR_REWIND, fd, 0, NULL); }
fs_status fs_conn_file_size(fs_conn *c, uint64_t fd, uint64_t *size) { return call_fd(c, FS_CMD_FILE_SIZE, fd, 0, size); }
fs_status fs_conn_truncate(fs_conn *c, uint64_t fd, uint64_t length)
{
    return call_fd(c, FS_CMD_FILE_TRUNCATE, fd, length, NULL);
}
fs_status fs_conn_sync(fs_conn *c, uint64_t fd) { return call_fd(c, FS_CMD_FILE_SYNC, fd, 0, NULL); }

/* Where a blocking call sends its path from: the whole path from the root when it fits,
 * else the rest of it from a directory fd opened along it (each step's path fits, from the
 * step before), so the blocking calls reach a tree of any depth (docs/PROTOCOL.md §2). Only
 * such paths cost more: a DIR_OPEN per 4 KiB of path and the closes. */
typedef struct far_path {
    uint64_t at;
    const char *rest;
} far_path;

static fs_status far_begin(fs_conn *c, const char *path, far_path *fp)
{
    fp->at = 0;
    fp->rest = path;
    while (strlen(fp->rest) > FS_MAX_PATH_LENGTH) {
        size_t cut = FS_MAX_PATH_LENGTH;
        while (cut > 0 && fp->rest[cut] != '/')
            cut--;
        fs_status st = FS_STATUS_NAME_TOO_LONG; /* no '/' in 4 KiB: a component far too long */
        fs_reply r = {.data = 0};
        if (cut > 0) {
            char prefix[FS_MAX_PATH_LENGTH + 1];
            memcpy(prefix, fp->rest, cut);
            prefix[cut] = '\0';
            fs_call call;
            start_path(c, &call, FS_CMD_DIR_OPEN, fp->at, prefix);
            st = finish_now(c, &call, &r);
        }
        if (fp->at)
            fs_conn_closedir(c, fp->at);
        fp->at = st == FS_STATUS_SUCCESS ? r.data : 0;
        if (st != FS_STATUS_SUCCESS)
            return st;
        fp->rest += cut;
    }
    return FS_STATUS_SUCCESS;
}

/* The call's status, after closing the directory far_begin opened. */
static fs_status far_end(fs_conn *c, far_path *fp, fs_status st)
{
    if (fp->at)
        fs_conn_closedir(c, fp->at);
    fp->at = 0;
    return st;
}

static fs_status call_path(fs_conn *c, uint64_t type, const char *path, uint64_t *data)
{
    far_path fp;
    fs_status st = far_begin(c, path, &fp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_call call;
    fs_reply r;
    start_path(c, &call, type, fp.at, fp.rest);
    st = finish_now(c, &call, &r);
    if (data)
        *data = r.data;
    return far_end(c, &fp, st);
}

fs_status fs_conn_remove(fs_conn *c, const char *path) { return call_path(c, FS_CMD_FILE_REMOVE, path, NULL); }
fs_status fs_conn_mkdir(fs_conn *c, const char *path) { return call_path(c, FS_CMD_DIR_CREATE, path, NULL); }
fs_status fs_conn_rmdir(fs_conn *c, const char *path) { return call_path(c, FS_CMD_DIR_REMOVE, path, NULL); }
fs_status fs_conn_opendir(fs_conn *c, const char *path, uint64_t *fd)
{
    return call_path(c, FS_CMD_DIR_OPEN, path, fd);
}

fs_status fs_conn_open_file(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd)
{
    far_path fp;
    fs_status st = far_begin(c, path, &fp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_call call;
    fs_reply r;
    fs_conn_start_open(c, &call, fp.at, fp.rest, flags);
    st = finish_now(c, &call, &r);
    *fd = r.data;
    return far_end(c, &fp, st);
}

fs_status fs_conn_open_stat(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *st)
{
    far_path fp;
    fs_status status = far_begin(c, path, &fp);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_call call;
    fs_conn_start_open_stat(c, &call, fp.at, fp.rest, flags);
    return far_end(c, &fp, finish_with_stat(c, &call, st, fd));
}

fs_status fs_conn_stat(fs_conn *c, const char *path, fs_stat *out)
{
    far_path fp;
    fs_status st = far_begin(c, path, &fp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_call call;
    fs_conn_start_stat(c, &call, fp.at, fp.rest);
    return far_end(c, &fp, finish_with_stat(c, &call, out, NULL));
}

fs_status fs_conn_fstat(fs_conn *c, uint64_t fd, fs_stat *out)
{
    fs_call call;
    fs_conn_start_fstat(c, &call, fd);
    return finish_with_stat(c, &call, out, NULL);
}

fs_status fs_conn_statfs(fs_conn *c, fs_statfs *out)
{
    fs_call call;
    fs_reply r;
    fs_conn_start_statfs(c, &call);
    fs_status st = finish_now(c, &call, &r);
    if (st == FS_STATUS_SUCCESS)
        *out = r.record.statfs;
    return st;
}

fs_status fs_conn_mount_report(fs_conn *c, fs_mount_report *out)
{
    fs_call call;
    fs_reply r;
    fs_conn_start_mount_report(c, &call);
    fs_status st = finish_now(c, &call, &r);
    if (st == FS_STATUS_SUCCESS)
        *out = r.record.mount_report;
    return st;
}

/* Appends "N what" (with "s" unless N is 1) to a list being built in out. */
static void add_count(char *out, size_t size, size_t *used, uint64_t n, const char *what, const char *plural)
{
    if (n == 0 || *used >= size)
        return;
    int len = snprintf(out + *used, size - *used, "%s%llu %s", *used && out[*used - 1] != ' ' ? ", " : "",
                       (unsigned long long)n, n == 1 ? what : plural);
    *used = len < 0 ? size : *used + (size_t)len;
}

bool fs_mount_report_describe(const fs_mount_report *r, const char *image, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    bool dirty = r->flags & FS_MOUNT_WAS_DIRTY;
    if (!size || (!dirty && !(r->flags & FS_MOUNT_NEEDS_CHECK) && r->fat_disagreements == 0))
        return false;
    int len;
    if (!dirty)
        len = snprintf(out, size, "%s: ", image);
    else if (r->flags & FS_MOUNT_RECOVERED)
        len = snprintf(out, size, "%s was not cleanly unmounted; recovered: ", image);
    else
        len = snprintf(out, size, "%s was not cleanly unmounted; not recovered (mounted read-only)", image);
    size_t used = len < 0 ? size : (size_t)len;
    size_t before = used;
    add_count(out, size, &used, r->renames_completed, "interrupted rename completed", "interrupted renames completed");
    add_count(out, size, &used, r->orphans_removed, "orphaned long-name entry removed",
              "orphaned long-name entries removed");
    add_count(out, size, &used, r->chains_cut, "cluster chain cut to its file's size",
              "cluster chains cut to their files' sizes");
    add_count(out, size, &used, r->lost_freed, "lost cluster freed", "lost clusters freed");
    add_count(out, size, &used, r->fat_disagreements, "cluster the FAT copies disagreed on",
              "clusters the FAT copies disagreed on");
    add_count(out, size, &used, r->fat_blocks_copied, "FAT copy block made equal to the first FAT",
              "FAT copy blocks made equal to the first FAT");
    if (used == before && used < size && (r->flags & FS_MOUNT_RECOVERED))
        used += (size_t)snprintf(out + used, size - used, "nothing needed repair");
    else if (used == before && used < size && !dirty)
        used += (size_t)snprintf(out + used, size - used, "the volume has damage");
    if ((r->flags & FS_MOUNT_NEEDS_CHECK) && used < size)
        snprintf(out + used, size - used,
                 "\n%s has damage a power cut does not cause, left as it was: run `asyncfat check %s`", image, image);
    return true;
}

void fs_mount_report_warn(const fs_mount_report *r, const char *image)
{
    char text[2048];
    if (!fs_mount_report_describe(r, image, text, sizeof text))
        return;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        fprintf(stderr, "asyncfat: %s\n", line);
}

fs_status fs_conn_rename(fs_conn *c, const char *old_path, const char *new_path)
{
    far_path from, to = {0, NULL};
    fs_status st = far_begin(c, old_path, &from);
    if (st == FS_STATUS_SUCCESS)
        st = far_begin(c, new_path, &to);
    if (st == FS_STATUS_SUCCESS) {
        fs_call call;
        fs_reply r;
        fs_conn_start_rename(c, &call, from.at, from.rest, to.at, to.rest);
        st = finish_now(c, &call, &r);
    }
    return far_end(c, &from, far_end(c, &to, st));
}

fs_status fs_conn_get_attributes(fs_conn *c, const char *path, uint64_t *attributes)
{
    return call_path(c, FS_CMD_GET_ATTRIBUTES, path, attributes);
}

fs_status fs_conn_set_attributes(fs_conn *c, const char *path, uint64_t set, uint64_t clear, uint64_t *attributes)
{
    far_path fp;
    fs_status st = far_begin(c, path, &fp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_call call;
    fs_reply r;
    fs_conn_start_set_attributes(c, &call, fp.at, fp.rest, set, clear);
    st = finish_now(c, &call, &r);
    if (attributes)
        *attributes = r.data;
    return far_end(c, &fp, st);
}

fs_status fs_conn_set_times(fs_conn *c, const char *path, int64_t atime, int64_t mtime)
{
    far_path fp;
    fs_status st = far_begin(c, path, &fp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_call call;
    fs_reply r;
    fs_conn_start_set_times(c, &call, fp.at, fp.rest, atime, mtime);
    return far_end(c, &fp, finish_now(c, &call, &r));
}

fs_status fs_conn_set_times_stat(fs_conn *c, const char *path, int64_t atime, int64_t mtime, fs_stat *st)
{
    far_path fp;
    fs_status status = far_begin(c, path, &fp);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_call call;
    fs_conn_start_set_times_stat(c, &call, fp.at, fp.rest, atime, mtime);
    return far_end(c, &fp, finish_with_stat(c, &call, st, NULL));
}

/* OPEN_READ (fd wanted) or READ_PATH (fd NULL): the reply's record, then the bytes. */
static fs_status open_read(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *st, void *dst,
                           size_t cap, size_t *got)
{
    *got = 0;
    far_path fp;
    fs_status status = far_begin(c, path, &fp);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_call call;
    fs_reply r;
    start_open_read(c, &call, fp.at, fp.rest, flags, fd != NULL, cap);
    fs_cmpl cmpl;
    fs_conn_wait(c, call.ticket, &cmpl);
    fs_conn_finish_keep(c, &call, &cmpl, &r);
    *got = 0;
    if (r.status == FS_STATUS_SUCCESS) {
        *st = r.record.open_read.stat;
        *got = r.record.open_read.read < cap ? (size_t)r.record.open_read.read : cap;
        memcpy(dst, call.share + sizeof(fs_open_read_record), *got);
        if (fd)
            *fd = r.data;
    }
    fs_conn_free(c, call.share);
    return far_end(c, &fp, r.status);
}

fs_status fs_conn_open_read(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *st, void *dst,
                            size_t cap, size_t *got)
{
    return open_read(c, path, flags, fd, st, dst, cap, got);
}

fs_status fs_conn_read_path(fs_conn *c, const char *path, fs_stat *st, void *dst, size_t cap, size_t *got)
{
    return open_read(c, path, 0, NULL, st, dst, cap, got);
}

/* One FILE_READ (or FILE_WRITE) through the share buffer buf of at least len bytes. */
static fs_status read_through(fs_conn *c, uint8_t *buf, uint64_t fd, uint64_t offset, void *dst, size_t len,
                              size_t *got)
{
    fs_call call;
    fs_reply r;
    fs_conn_start_read(c, &call, fd, offset, buf, len);
    fs_status st = finish_now(c, &call, &r);
    *got = 0;
    if (st == FS_STATUS_SUCCESS) {
        *got = r.data < len ? (size_t)r.data : len;
        memcpy(dst, buf, *got);
    }
    return st;
}

static fs_status write_through(fs_conn *c, uint8_t *buf, uint64_t fd, uint64_t offset, const void *src, size_t len,
                               size_t *put)
{
    fs_call call;
    fs_reply r;
    memcpy(buf, src, len);
    fs_conn_start_write(c, &call, fd, offset, buf, len);
    fs_status st = finish_now(c, &call, &r);
    *put = r.data < len ? (size_t)r.data : len;
    return st;
}

fs_status fs_conn_pread(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t len, size_t *done)
{
    *done = 0;
    uint8_t *buf = fs_conn_alloc(c, len ? len : 1);
    if (!buf)
        return FS_STATUS_INVALID_ARGUMENT; /* larger than the whole share region */
    fs_status st = read_through(c, buf, fd, offset, dst, len, done);
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_pwrite(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t len, size_t *done)
{
    *done = 0;
    uint8_t *buf = fs_conn_alloc(c, len ? len : 1);
    if (!buf)
        return FS_STATUS_INVALID_ARGUMENT;
    fs_status st = write_through(c, buf, fd, offset, src, len, done);
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_read(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t len, size_t *done)
{
    size_t chunk = len < FS_CONN_IO_CHUNK ? len : FS_CONN_IO_CHUNK;
    uint8_t *buf = fs_conn_alloc(c, chunk ? chunk : 1);
    fs_status st = FS_STATUS_SUCCESS;
    *done = 0;
    if (!buf)
        return FS_STATUS_ALLOCATION_ERROR;
    while (*done < len) {
        size_t want = len - *done < chunk ? len - *done : chunk, got;
        st = read_through(c, buf, fd, offset + *done, (uint8_t *)dst + *done, want, &got);
        *done += got;
        if (st != FS_STATUS_SUCCESS || got < want)
            break;
    }
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_write(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t len, size_t *done)
{
    size_t chunk = len < FS_CONN_IO_CHUNK ? len : FS_CONN_IO_CHUNK;
    uint8_t *buf = fs_conn_alloc(c, chunk ? chunk : 1);
    fs_status st = FS_STATUS_SUCCESS;
    *done = 0;
    if (!buf)
        return FS_STATUS_ALLOCATION_ERROR;
    do {
        size_t want = len - *done < chunk ? len - *done : chunk, put;
        st = write_through(c, buf, fd, offset + *done, (const uint8_t *)src + *done, want, &put);
        *done += put;
        if (st != FS_STATUS_SUCCESS || put < want)
            break;
    } while (*done < len);
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_readdir(fs_conn *c, uint64_t fd, char name[FS_CONN_NAME_MAX + 1], fs_stat *st)
{
    fs_call call;
    encoding e = encode(c, &call, st ? FS_CMD_DIR_READ_STAT : FS_CMD_DIR_READ, sizeof(fs_stat) + FS_CONN_NAME_MAX,
                        0, NULL);
    fs_buffer rec = {e.record.offset, sizeof(fs_stat)};
    fs_buffer name_buf = {e.record.offset + sizeof(fs_stat), FS_CONN_NAME_MAX};
    if (st) {
        e.cmd.params.dir_read_stat.fd = fd;
        e.cmd.params.dir_read_stat.name = name_buf;
        e.cmd.params.dir_read_stat.stat = rec;
    } else {
        e.cmd.params.dir_read.fd = fd;
        e.cmd.params.dir_read.buf = name_buf;
    }
    send_encoded(c, &call, &e);
    fs_cmpl cmpl;
    fs_conn_wait(c, call.ticket, &cmpl);
    fs_status status = (fs_status)cmpl.status;
    if (status == FS_STATUS_SUCCESS) {
        size_t len = cmpl.data < FS_CONN_NAME_MAX ? (size_t)cmpl.data : FS_CONN_NAME_MAX;
        memcpy(name, call.share + sizeof(fs_stat), len);
        name[len] = '\0';
        if (st)
            memcpy(st, call.share, sizeof *st);
    }
    fs_conn_free(c, call.share);
    return status;
}

bool fs_dir_batch_valid(const void *records, size_t cap, uint64_t count)
{
    const uint8_t *batch = records;
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

fs_status fs_conn_readdir_batch(fs_conn *c, uint64_t fd, void *dst, size_t cap, uint64_t *count)
{
    fs_call call;
    fs_conn_start_readdir_batch(c, &call, fd, cap);
    fs_cmpl cmpl;
    fs_conn_wait(c, call.ticket, &cmpl);
    fs_status st = (fs_status)cmpl.status;
    *count = cmpl.data;
    if (st == FS_STATUS_SUCCESS && (*count == 0 || !fs_dir_batch_valid(call.share, cap, *count)))
        st = FS_STATUS_ERROR;
    if (st == FS_STATUS_SUCCESS)
        memcpy(dst, call.share, cap);
    fs_conn_free(c, call.share);
    return st;
}

size_t fs_dir_batch_record(const void *batch, size_t at, fs_stat *st, char name[FS_CONN_NAME_MAX + 1])
{
    const uint8_t *b = batch;
    fs_dir_record head;
    memcpy(&head, b + at, sizeof head);
    size_t len = head.name_len < FS_CONN_NAME_MAX ? (size_t)head.name_len : FS_CONN_NAME_MAX;
    memcpy(name, b + at + sizeof head, len);
    name[len] = '\0';
    *st = head.stat;
    return at + (size_t)FS_DIR_RECORD_SIZE(head.name_len);
}

/* ---- statuses ---- */

int fs_status_to_errno(fs_status status)
{
    switch (status) {
    case FS_STATUS_SUCCESS: return 0;
    case FS_STATUS_INVALID_BUFFER: return EFAULT;
    case FS_STATUS_INVALID_PATH: return EINVAL;
    case FS_STATUS_INVALID_FD: return EBADF;
    case FS_STATUS_ALLOCATION_ERROR: return ENOMEM;
    case FS_STATUS_OUTSTANDING_OPERATIONS: return EBUSY;
    case FS_STATUS_INVALID_NAME: return EINVAL;
    case FS_STATUS_TOO_MANY_OPEN_FILES: return EMFILE;
    case FS_STATUS_SERVER_WAS_DENIED: return EACCES;
    case FS_STATUS_INVALID_WRITE: return EBADF;
    case FS_STATUS_INVALID_READ: return EBADF;
    case FS_STATUS_DIRECTORY_IS_FULL: return ENOSPC;
    case FS_STATUS_INVALID_COMMAND: return ENOSYS;
    case FS_STATUS_END_OF_DIRECTORY: return 0;
    case FS_STATUS_NO_FILE: return ENOENT;
    case FS_STATUS_NOT_DIRECTORY: return ENOTDIR;
    case FS_STATUS_ALREADY_EXISTS: return EEXIST;
    case FS_STATUS_NOT_EMPTY: return ENOTEMPTY;
    case FS_STATUS_NO_SPACE: return ENOSPC;
    case FS_STATUS_FILE_TOO_LARGE: return EFBIG;
    case FS_STATUS_NAME_TOO_LONG: return ENAMETOOLONG;
    case FS_STATUS_IS_DIRECTORY: return EISDIR;
    case FS_STATUS_READ_ONLY_FS: return EROFS;
    case FS_STATUS_IO_ERROR: return EIO;
    case FS_STATUS_CORRUPT: return EIO;
    case FS_STATUS_ACCESS_DENIED: return EACCES;
    case FS_STATUS_INVALID_ARGUMENT: return EINVAL;
    case FS_STATUS_BUSY: return EBUSY;
    case FS_STATUS_NOT_MOUNTED: return ENODEV;
    case FS_STATUS_ERROR:
    default: return EIO;
    }
}

const char *fs_status_string(fs_status status)
{
    switch (status) {
    case FS_STATUS_SUCCESS: return "success";
    case FS_STATUS_INVALID_BUFFER: return "invalid buffer";
    case FS_STATUS_INVALID_PATH: return "invalid path";
    case FS_STATUS_INVALID_FD: return "invalid file descriptor";
    case FS_STATUS_ALLOCATION_ERROR: return "out of server memory";
    case FS_STATUS_OUTSTANDING_OPERATIONS: return "operations outstanding";
    case FS_STATUS_INVALID_NAME: return "invalid name";
    case FS_STATUS_TOO_MANY_OPEN_FILES: return "too many open files";
    case FS_STATUS_SERVER_WAS_DENIED: return "permission denied";
    case FS_STATUS_INVALID_WRITE: return "not open for writing";
    case FS_STATUS_INVALID_READ: return "not open for reading";
    case FS_STATUS_DIRECTORY_IS_FULL: return "directory is full";
    case FS_STATUS_INVALID_COMMAND: return "unsupported command";
    case FS_STATUS_END_OF_DIRECTORY: return "end of directory";
    case FS_STATUS_NO_FILE: return "no such file or directory";
    case FS_STATUS_NOT_DIRECTORY: return "not a directory";
    case FS_STATUS_ALREADY_EXISTS: return "file exists";
    case FS_STATUS_NOT_EMPTY: return "directory not empty";
    case FS_STATUS_NO_SPACE: return "no space left on the volume";
    case FS_STATUS_FILE_TOO_LARGE: return "file too large";
    case FS_STATUS_NAME_TOO_LONG: return "file name too long";
    case FS_STATUS_IS_DIRECTORY: return "is a directory";
    case FS_STATUS_READ_ONLY_FS: return "read-only file system";
    case FS_STATUS_IO_ERROR: return "input/output error";
    case FS_STATUS_CORRUPT: return "volume is corrupt";
    case FS_STATUS_ACCESS_DENIED: return "file is read-only";
    case FS_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case FS_STATUS_BUSY: return "busy";
    case FS_STATUS_NOT_MOUNTED: return "volume not mounted";
    case FS_STATUS_ERROR:
    default: return "error";
    }
}
