/* Command handlers: each runs in its request's task, checks every value it takes from the
 * client, calls the FAT engine and fills the completion. */
#include "server/server_internal.h"

typedef struct path_copy {
    char bytes[FS_MAX_PATH_LENGTH];
    size_t len;
} path_copy;

/* Copy a path out of the share region before looking at it: the client may rewrite the
 * region at any time. */
static fs_status copy_path(const fs_client *client, fs_buffer buf, path_copy *out)
{
    if (buf.size > FS_MAX_PATH_LENGTH)
        return FS_STATUS_INVALID_PATH;
    const uint8_t *src = fs_share_buffer(client, buf);
    if (!src)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(out->bytes, src, buf.size);
    out->len = buf.size;
    for (size_t i = 0; i < out->len; i++) {
        if (out->bytes[i] == '\0')
            return FS_STATUS_INVALID_PATH;
    }
    return FS_STATUS_SUCCESS;
}

/* Copy a record into the client's buffer, which must be large enough. */
static fs_status put_record(const fs_client *client, fs_buffer buf, const void *record, size_t size)
{
    uint8_t *dst = fs_share_buffer(client, buf);
    if (!dst || buf.size < size)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(dst, record, size);
    return FS_STATUS_SUCCESS;
}

/* An open node's record, as the wire has it. */
static fs_status node_stat(fat_node *node, fs_stat *out)
{
    vfs_stat st;
    vfs_status status = fat_fstat(node, &st);
    if (status == VFS_OK)
        fs_wire_stat(&st, out);
    return fs_wire_status(status);
}

static fs_status path_stat(fs_server *server, const path_copy *path, fs_stat *out)
{
    vfs_stat st;
    vfs_status status = fat_stat(server->volume, path->bytes, path->len, &st);
    if (status == VFS_OK)
        fs_wire_stat(&st, out);
    return fs_wire_status(status);
}

static fs_status cmd_initialise(fs_server *server, fs_client *client)
{
    fs_status status = FS_STATUS_SUCCESS;
    /* Checked under the lock: a client may send several INITIALISEs at once. */
    fp_mutex_lock(server->pool, &server->mount_lock);
    if (!client->initialised) {
        if (!server->volume)
            status = FS_STATUS_ALLOCATION_ERROR;
        else if (!server->mounted) {
            status = fs_wire_status(fat_mount(server->volume, server->cache, &server->fat_config, NULL));
            server->mounted = status == FS_STATUS_SUCCESS;
        }
        if (status == FS_STATUS_SUCCESS) {
            client->initialised = true;
            server->initialised_clients++;
        }
    }
    fp_mutex_unlock(server->pool, &server->mount_lock);
    return status;
}

static fs_status cmd_deinitialise(fs_server *server, fs_client *client)
{
    /* Wait for every other request of this client (other DEINITIALISEs wait alongside). */
    client->draining++;
    while (client->in_flight > client->draining)
        fp_wait(server->pool, &client->drain_waiters);
    client->draining--;
    fs_status status = FS_STATUS_SUCCESS;
    fp_mutex_lock(server->pool, &server->mount_lock);
    if (client->initialised) {
        fs_fd_close_all(client);
        client->initialised = false;
        if (--server->initialised_clients == 0) {
            status = fs_wire_status(fat_unmount(server->volume));
            server->mounted = status != FS_STATUS_SUCCESS;
        } else {
            status = fs_wire_status(fat_sync(server->volume));
        }
    }
    fp_mutex_unlock(server->pool, &server->mount_lock);
    return status;
}

/* Checked before the command acts, so a bad stat buffer creates or changes nothing. */
static bool stat_buffer_ok(const fs_client *client, fs_buffer buf)
{
    return fs_share_buffer(client, buf) && buf.size >= sizeof(fs_stat);
}

/* What FILE_OPEN returns besides the fd: nothing, the file's record (OPEN_STAT), or the
 * record and the file's first bytes (OPEN_READ). */
typedef enum open_reply { OPEN_REPLY_FD, OPEN_REPLY_STAT, OPEN_REPLY_READ } open_reply;

/* FILE_OPEN, OPEN_STAT and OPEN_READ. The reply buffer is checked before anything is
 * opened or created. OPEN_READ reads straight into the client's buffer after the header,
 * so a small file is opened and read in one round trip (a FUSE open then its first read). */
static fs_status cmd_file_open(fs_server *server, fs_client *client, fs_buffer path_buf, uint64_t flags,
                               open_reply reply, fs_buffer reply_buf, uint64_t *data)
{
    const uint64_t known = FS_OPEN_FLAGS_ACCESS_MASK | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_TRUNCATE |
                           FS_OPEN_FLAGS_EXCLUSIVE | FS_OPEN_FLAGS_APPEND;
    if ((flags & ~known) || (flags & FS_OPEN_FLAGS_ACCESS_MASK) == FS_OPEN_FLAGS_ACCESS_MASK)
        return FS_STATUS_INVALID_ARGUMENT;
    if (reply == OPEN_REPLY_READ && (flags & FS_OPEN_FLAGS_ACCESS_MASK) == FS_OPEN_FLAGS_WRITE_ONLY)
        return FS_STATUS_INVALID_READ;
    path_copy path;
    fs_status status = copy_path(client, path_buf, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    uint8_t *out = NULL;
    if (reply == OPEN_REPLY_STAT && !stat_buffer_ok(client, reply_buf))
        return FS_STATUS_INVALID_BUFFER;
    if (reply == OPEN_REPLY_READ &&
        (!(out = fs_share_buffer(client, reply_buf)) || reply_buf.size < sizeof(fs_open_read_record)))
        return FS_STATUS_INVALID_BUFFER;
    fat_node *node;
    status = fs_wire_status(fat_open(server->volume, path.bytes, path.len, flags & ~FS_OPEN_FLAGS_APPEND, &node));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_open_read_record head = {.read = 0};
    if (reply == OPEN_REPLY_READ) {
        size_t done = 0;
        status = fs_wire_status(fat_read(node, 0, out + sizeof head, reply_buf.size - sizeof head, &done));
        head.read = done;
    }
    if (status == FS_STATUS_SUCCESS && reply != OPEN_REPLY_FD)
        status = node_stat(node, &head.stat);
    if (status == FS_STATUS_SUCCESS)
        status = fs_fd_alloc(client, node, false, flags, data);
    if (status != FS_STATUS_SUCCESS) {
        fat_close(node);
        return status;
    }
    if (reply == OPEN_REPLY_STAT)
        put_record(client, reply_buf, &head.stat, sizeof(head.stat));
    else if (reply == OPEN_REPLY_READ)
        af_memcpy(out, &head, sizeof head);
    return FS_STATUS_SUCCESS;
}

/* READ_PATH: a read without an fd (open read-only, read, stat, close), for a client that
 * wants a small file's bytes and keeps nothing open. data = bytes read. */
static fs_status cmd_read_path(fs_server *server, fs_client *client, const fs_ext_params *p, uint64_t *data)
{
    path_copy path;
    fs_status status = copy_path(client, p->read_path.path, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_buffer buf = p->read_path.buf;
    uint8_t *out = fs_share_buffer(client, buf);
    if (!out || buf.size < sizeof(fs_open_read_record))
        return FS_STATUS_INVALID_BUFFER;
    fat_node *node;
    status = fs_wire_status(fat_open(server->volume, path.bytes, path.len, FS_OPEN_FLAGS_READ_ONLY, &node));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_open_read_record head = {.read = 0};
    size_t done = 0;
    status = fs_wire_status(fat_read(node, p->read_path.offset, out + sizeof head, buf.size - sizeof head, &done));
    head.read = done;
    if (status == FS_STATUS_SUCCESS)
        status = node_stat(node, &head.stat);
    fs_status closed = fs_wire_status(fat_close(node));
    if (status == FS_STATUS_SUCCESS)
        status = closed;
    if (status != FS_STATUS_SUCCESS)
        return status;
    af_memcpy(out, &head, sizeof head);
    *data = done;
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_dir_open(fs_server *server, fs_client *client, const fs_cmd *cmd, uint64_t *data)
{
    path_copy path;
    fs_status status = copy_path(client, cmd->params.dir_open.path, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fat_node *node;
    status = fs_wire_status(fat_opendir(server->volume, path.bytes, path.len, &node));
    if (status != FS_STATUS_SUCCESS)
        return status;
    status = fs_fd_alloc(client, node, true, FS_OPEN_FLAGS_READ_ONLY, data);
    if (status != FS_STATUS_SUCCESS)
        fat_close(node);
    return status;
}

/* The commands that name one path and nothing else. */
static fs_status cmd_path_op(fs_server *server, fs_client *client, fs_buffer buf,
                             vfs_status (*op)(fat_volume *, const char *, size_t))
{
    path_copy path;
    fs_status status = copy_path(client, buf, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    return fs_wire_status(op(server->volume, path.bytes, path.len));
}

static fs_status cmd_stat(fs_server *server, fs_client *client, const fs_cmd *cmd)
{
    path_copy path;
    fs_status status = copy_path(client, cmd->params.stat.path, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    if (!fs_share_buffer(client, cmd->params.stat.buf) || cmd->params.stat.buf.size < sizeof(fs_stat))
        return FS_STATUS_INVALID_BUFFER;
    fs_stat st;
    status = path_stat(server, &path, &st);
    if (status != FS_STATUS_SUCCESS)
        return status;
    return put_record(client, cmd->params.stat.buf, &st, sizeof(st));
}

static fs_status cmd_rename(fs_server *server, fs_client *client, const fs_cmd *cmd)
{
    path_copy old_path, new_path;
    fs_status status = copy_path(client, cmd->params.rename.old_path, &old_path);
    if (status == FS_STATUS_SUCCESS)
        status = copy_path(client, cmd->params.rename.new_path, &new_path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    return fs_wire_status(fat_rename(server->volume, old_path.bytes, old_path.len, new_path.bytes, new_path.len));
}

/* SET_TIMES, and SET_TIMES_STAT when stat_buf is given: the record as stored (FAT keeps
 * 2-second modification times and access dates), so the client need not ask again. */
static fs_status cmd_set_times(fs_server *server, fs_client *client, fs_buffer path_buf, int64_t atime,
                               int64_t mtime, const fs_buffer *stat_buf)
{
    path_copy path;
    fs_status status = copy_path(client, path_buf, &path);
    if (status != FS_STATUS_SUCCESS)
        return status;
    if (stat_buf && !stat_buffer_ok(client, *stat_buf))
        return FS_STATUS_INVALID_BUFFER;
    status = fs_wire_status(fat_set_times(server->volume, path.bytes, path.len, atime, mtime));
    if (status != FS_STATUS_SUCCESS || !stat_buf)
        return status;
    fs_stat st;
    status = path_stat(server, &path, &st);
    if (status != FS_STATUS_SUCCESS)
        return status;
    return put_record(client, *stat_buf, &st, sizeof(st));
}

static fs_status cmd_statfs(fs_server *server, fs_client *client, const fs_ext_params *p)
{
    if (!fs_share_buffer(client, p->statfs.buf) || p->statfs.buf.size < sizeof(fs_statfs))
        return FS_STATUS_INVALID_BUFFER;
    fat_statfs_info info;
    fs_status status = fs_wire_status(fat_statfs(server->volume, &info));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_statfs out = {
        .block_size = info.cluster_size,
        .blocks = info.total_clusters,
        .blocks_free = info.free_clusters,
        .blocks_available = info.free_clusters,
        .name_max = info.name_max,
        .fat_type = info.fat_type,
        .flags = info.read_only ? FS_STATFS_READ_ONLY : 0,
    };
    return put_record(client, p->statfs.buf, &out, sizeof(out));
}

/* ---- commands on an open file ---- */

static fs_status file_command(fs_client *client, const fs_cmd *cmd, uint64_t *data)
{
    const fs_ext_params *ext = (const fs_ext_params *)&cmd->params;
    uint64_t fd;
    switch (cmd->type) {
    case FS_CMD_FILE_READ: fd = cmd->params.file_read.fd; break;
    case FS_CMD_FILE_WRITE: fd = cmd->params.file_write.fd; break;
    case FS_CMD_FILE_SIZE: fd = cmd->params.file_size.fd; break;
    case FS_CMD_FILE_TRUNCATE: fd = cmd->params.file_truncate.fd; break;
    case FS_CMD_FILE_SYNC: fd = cmd->params.file_sync.fd; break;
    default: fd = ext->fstat.fd; break; /* FS_CMD_FSTAT */
    }
    fs_fd *entry;
    fs_status status = fs_fd_borrow(client, fd, false, &entry);
    if (status != FS_STATUS_SUCCESS && cmd->type == FS_CMD_FSTAT)
        status = fs_fd_borrow(client, fd, true, &entry);
    if (status != FS_STATUS_SUCCESS)
        return status;

    size_t done = 0;
    switch (cmd->type) {
    case FS_CMD_FILE_READ: {
        uint8_t *dst = fs_share_buffer(client, cmd->params.file_read.buf);
        if (!dst)
            status = FS_STATUS_INVALID_BUFFER;
        else if (!entry->can_read)
            status = FS_STATUS_INVALID_READ;
        else
            status = fs_wire_status(
                fat_read(entry->node, cmd->params.file_read.offset, dst, cmd->params.file_read.buf.size, &done));
        *data = done;
        break;
    }
    case FS_CMD_FILE_WRITE: {
        const uint8_t *src = fs_share_buffer(client, cmd->params.file_write.buf);
        size_t len = cmd->params.file_write.buf.size;
        if (!src) {
            status = FS_STATUS_INVALID_BUFFER;
        } else if (!entry->can_write) {
            status = FS_STATUS_INVALID_WRITE;
        } else if (entry->append) {
            uint64_t at;
            status = fs_wire_status(fat_append(entry->node, src, len, &done, &at));
        } else {
            status = fs_wire_status(fat_write(entry->node, cmd->params.file_write.offset, src, len, &done));
        }
        *data = done;
        break;
    }
    case FS_CMD_FILE_SIZE:
        *data = fat_size(entry->node);
        break;
    case FS_CMD_FILE_TRUNCATE:
        status = entry->can_write ? fs_wire_status(fat_truncate(entry->node, cmd->params.file_truncate.length))
                                  : FS_STATUS_INVALID_WRITE;
        break;
    case FS_CMD_FILE_SYNC:
        status = fs_wire_status(fat_fsync(entry->node));
        break;
    default: { /* FS_CMD_FSTAT */
        fs_stat st;
        if (!fs_share_buffer(client, ext->fstat.buf) || ext->fstat.buf.size < sizeof(fs_stat))
            status = FS_STATUS_INVALID_BUFFER;
        else
            status = node_stat(entry->node, &st);
        if (status == FS_STATUS_SUCCESS)
            status = put_record(client, ext->fstat.buf, &st, sizeof(st));
        break;
    }
    }
    fs_status closed = fs_fd_return(client, entry);
    return status != FS_STATUS_SUCCESS ? status : closed;
}

/* ---- commands on an open directory ---- */

static fs_status dir_read(fs_client *client, fs_fd *entry, fs_buffer name_buf, const fs_buffer *stat_buf,
                          uint64_t *data)
{
    uint8_t *dst = fs_share_buffer(client, name_buf);
    if (!dst)
        return FS_STATUS_INVALID_BUFFER;
    if (stat_buf && (!fs_share_buffer(client, *stat_buf) || stat_buf->size < sizeof(fs_stat)))
        return FS_STATUS_INVALID_BUFFER;
    char name[FAT_READDIR_NAME_MAX];
    size_t len;
    vfs_stat st;
    uint64_t pos = entry->dir_pos;
    fs_status status = fs_wire_status(fat_readdir(entry->node, &pos, name, &len, stat_buf ? &st : NULL));
    if (status != FS_STATUS_SUCCESS)
        return status;
    /* A buffer too small for the name leaves the position where it was: nothing is lost. */
    if (len > name_buf.size)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(dst, name, len);
    if (stat_buf) {
        fs_stat wire;
        fs_wire_stat(&st, &wire);
        put_record(client, *stat_buf, &wire, sizeof(wire));
    }
    entry->dir_pos = pos;
    *data = len;
    return FS_STATUS_SUCCESS;
}

/* DIR_READ_BATCH: entries packed as fs_dir_record + name + padding while the next one fits,
 * so a listing costs one round trip per buffer instead of one per entry. An entry that does
 * not fit stays unread for the next call; a buffer too small for even one entry gives
 * INVALID_BUFFER, as DIR_READ does. data = entries written; END_OF_DIRECTORY only when the
 * first read finds no entry. */
static fs_status dir_read_batch(fs_client *client, fs_fd *entry, fs_buffer buf, uint64_t *data)
{
    uint8_t *dst = fs_share_buffer(client, buf);
    if (!dst)
        return FS_STATUS_INVALID_BUFFER;
    uint64_t used = 0, count = 0;
    fs_status status = FS_STATUS_SUCCESS;
    /* Bounded, so that one call on a large cached directory does not hold the server's
     * thread for long. */
    while (count < FS_DIR_BATCH_MAX_ENTRIES) {
        char name[FAT_READDIR_NAME_MAX];
        size_t len;
        fs_dir_record rec;
        vfs_stat st;
        uint64_t pos = entry->dir_pos;
        status = fs_wire_status(fat_readdir(entry->node, &pos, name, &len, &st));
        if (status != FS_STATUS_SUCCESS)
            break;
        fs_wire_stat(&st, &rec.stat);
        uint64_t size = FS_DIR_RECORD_SIZE(len);
        if (size > buf.size - used) {
            status = count ? FS_STATUS_SUCCESS : FS_STATUS_INVALID_BUFFER;
            break;
        }
        rec.name_len = len;
        af_memcpy(dst + used, &rec, sizeof rec);
        af_memcpy(dst + used + sizeof rec, name, len);
        af_memset(dst + used + sizeof rec + len, 0, size - sizeof rec - len);
        used += size;
        count++;
        entry->dir_pos = pos;
    }
    /* Entries already written are the answer; the end or an error shows on the next call. */
    if (count)
        status = FS_STATUS_SUCCESS;
    *data = count;
    return status;
}

static fs_status dir_command(fs_client *client, const fs_cmd *cmd, uint64_t *data)
{
    const fs_ext_params *ext = (const fs_ext_params *)&cmd->params;
    uint64_t fd = cmd->type == FS_CMD_DIR_READ_STAT    ? ext->dir_read_stat.fd
                  : cmd->type == FS_CMD_DIR_READ_BATCH ? ext->dir_read_batch.fd
                                                       : cmd->params.dir_read.fd;
    fs_fd *entry;
    fs_status status = fs_fd_borrow(client, fd, true, &entry);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fp_pool *pool = client->server->pool;
    fp_mutex_lock(pool, &entry->dir_lock);
    switch (cmd->type) {
    case FS_CMD_DIR_READ:
        status = dir_read(client, entry, cmd->params.dir_read.buf, NULL, data);
        break;
    case FS_CMD_DIR_READ_STAT:
        status = dir_read(client, entry, ext->dir_read_stat.name, &ext->dir_read_stat.stat, data);
        break;
    case FS_CMD_DIR_READ_BATCH:
        status = dir_read_batch(client, entry, ext->dir_read_batch.buf, data);
        break;
    case FS_CMD_DIR_SEEK:
        if (cmd->params.dir_seek.loc < 0)
            status = FS_STATUS_INVALID_ARGUMENT;
        else
            entry->dir_pos = (uint64_t)cmd->params.dir_seek.loc;
        break;
    case FS_CMD_DIR_TELL:
        *data = entry->dir_pos;
        break;
    default: /* FS_CMD_DIR_REWIND */
        entry->dir_pos = 0;
        break;
    }
    fp_mutex_unlock(pool, &entry->dir_lock);
    fs_status closed = fs_fd_return(client, entry);
    return status != FS_STATUS_SUCCESS ? status : closed;
}

static fs_status dispatch(fs_server *server, fs_client *client, const fs_cmd *cmd, uint64_t *data)
{
    const fs_ext_params *ext = (const fs_ext_params *)&cmd->params;
    if (cmd->type >= FS_CMD_COUNT)
        return FS_STATUS_INVALID_COMMAND;
    if (cmd->type == FS_CMD_INITIALISE)
        return cmd_initialise(server, client);
    if (!client->initialised)
        return FS_STATUS_NOT_MOUNTED;

    switch (cmd->type) {
    case FS_CMD_DEINITIALISE:
        return cmd_deinitialise(server, client);
    case FS_CMD_FILE_OPEN:
        return cmd_file_open(server, client, cmd->params.file_open.path, cmd->params.file_open.flags, OPEN_REPLY_FD,
                             (fs_buffer){0, 0}, data);
    case FS_CMD_OPEN_STAT:
        return cmd_file_open(server, client, ext->open_stat.path, ext->open_stat.flags, OPEN_REPLY_STAT,
                             ext->open_stat.stat, data);
    case FS_CMD_OPEN_READ:
        return cmd_file_open(server, client, ext->open_read.path, ext->open_read.flags, OPEN_REPLY_READ,
                             ext->open_read.buf, data);
    case FS_CMD_READ_PATH:
        return cmd_read_path(server, client, ext, data);
    case FS_CMD_FILE_CLOSE:
        return fs_fd_close(client, cmd->params.file_close.fd, false);
    case FS_CMD_STAT:
        return cmd_stat(server, client, cmd);
    case FS_CMD_FILE_READ:
    case FS_CMD_FILE_WRITE:
    case FS_CMD_FILE_SIZE:
    case FS_CMD_FILE_TRUNCATE:
    case FS_CMD_FILE_SYNC:
    case FS_CMD_FSTAT:
        return file_command(client, cmd, data);
    case FS_CMD_RENAME:
        return cmd_rename(server, client, cmd);
    case FS_CMD_FILE_REMOVE:
        return cmd_path_op(server, client, cmd->params.file_remove.path, fat_unlink);
    case FS_CMD_DIR_CREATE:
        return cmd_path_op(server, client, cmd->params.dir_create.path, fat_mkdir);
    case FS_CMD_DIR_REMOVE:
        return cmd_path_op(server, client, cmd->params.dir_remove.path, fat_rmdir);
    case FS_CMD_DIR_OPEN:
        return cmd_dir_open(server, client, cmd, data);
    case FS_CMD_DIR_CLOSE:
        return fs_fd_close(client, cmd->params.dir_close.fd, true);
    case FS_CMD_DIR_READ:
    case FS_CMD_DIR_SEEK:
    case FS_CMD_DIR_TELL:
    case FS_CMD_DIR_REWIND:
    case FS_CMD_DIR_READ_STAT:
    case FS_CMD_DIR_READ_BATCH:
        return dir_command(client, cmd, data);
    case FS_CMD_STATFS:
        return cmd_statfs(server, client, ext);
    case FS_CMD_SET_TIMES:
        return cmd_set_times(server, client, ext->set_times.path, ext->set_times.atime, ext->set_times.mtime, NULL);
    case FS_CMD_SET_TIMES_STAT:
        return cmd_set_times(server, client, ext->set_times_stat.path, ext->set_times_stat.atime,
                             ext->set_times_stat.mtime, &ext->set_times_stat.stat);
    default:
        return FS_STATUS_INVALID_COMMAND;
    }
}

void fs_server_execute(fs_request *req)
{
    uint64_t data = 0;
    req->cmpl.status = dispatch(req->server, req->client, &req->cmd, &data);
    req->cmpl.data = data;
}
