/* Command handlers and the one table that says, for every command, which handler runs it,
 * which fd it names and whether it needs the client's INITIALISE. Each handler runs in its
 * request's task, checks every value it takes from the client, calls the engine
 * (vfs/vfs.h) and fills the completion's data. */
#include "server/server_internal.h"

/* One command being carried out. */
typedef struct command_call {
    fs_server *server;
    fs_connection *conn;
    const fs_cmd_params *p;   /* the request's own copy */
    fs_fd *fd;                /* the fd it names, borrowed for it (table: fd) */
    uint64_t data;            /* the completion's data */
} command_call;

static const vfs_ops *ops(const command_call *c) { return c->server->engine.ops; }
static vfs_volume *volume(const command_call *c) { return c->server->engine.volume; }

/* A client's path, copied, and where it starts: the root, or a directory fd of the
 * client's (borrowed while the command runs, so a close waits for it). */
typedef struct path_copy {
    char bytes[FS_MAX_PATH_LENGTH + 1];
    size_t len;
    fs_fd *base;              /* NULL: the root */
    vfs_path at;              /* the engine's view of it */
} path_copy;

/* Copy a path out of the share region before looking at it: the client may rewrite the
 * region at any time. One NUL at the end is no part of it (LionsOS's MicroPython sends
 * strlen + 1 bytes, its servers terminate the copy); a NUL anywhere else is refused. */
static fs_status copy_path(const fs_connection *conn, fs_buffer buf, path_copy *out)
{
    if (buf.size > FS_MAX_PATH_LENGTH + 1)
        return FS_STATUS_INVALID_PATH;
    const uint8_t *src = fs_share_buffer(conn, buf);
    if (!src)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(out->bytes, src, buf.size);
    out->len = buf.size;
    if (out->len > 0 && out->bytes[out->len - 1] == '\0')
        out->len--;
    if (out->len > FS_MAX_PATH_LENGTH)
        return FS_STATUS_INVALID_PATH;
    for (size_t i = 0; i < out->len; i++) {
        if (out->bytes[i] == '\0')
            return FS_STATUS_INVALID_PATH;
    }
    return FS_STATUS_SUCCESS;
}

/* A path buffer as the client sent it: for an opted-in client the size word is {length
 * u32, base fd u32} (docs/PROTOCOL.md §2, FS_PATH_AT), base 0 being the root. The base is
 * a directory fd of this client's, else INVALID_FD; release it with put_path. */
static fs_status take_path(command_call *c, fs_buffer buf, path_copy *out)
{
    uint64_t at = 0;
    out->base = NULL;
    if (c->conn->extensions) {
        at = FS_PATH_AT_FD(buf.size);
        buf.size = FS_PATH_AT_LENGTH(buf.size);
    }
    fs_status status = copy_path(c->conn, buf, out);
    if (status == FS_STATUS_SUCCESS && at)
        status = fs_fd_borrow(c->conn, at, FS_FD_DIR, &out->base);
    out->at = (vfs_path){.base = out->base ? out->base->node : NULL, .chars = out->bytes, .len = out->len};
    return status;
}

/* Give back a path's base: the command's status, or what closing the base said (its fd
 * was closed meanwhile and this was its last use). */
static fs_status put_path(command_call *c, path_copy *path, fs_status status)
{
    fs_status returned = path->base ? fs_fd_return(c->conn, path->base) : FS_STATUS_SUCCESS;
    path->base = NULL;
    return status != FS_STATUS_SUCCESS ? status : returned;
}

/* Copy a record into the client's buffer, which must be large enough. */
static fs_status put_record(const fs_connection *conn, fs_buffer buf, const void *record, size_t size)
{
    uint8_t *dst = fs_share_buffer(conn, buf);
    if (!dst || buf.size < size)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(dst, record, size);
    return FS_STATUS_SUCCESS;
}

/* Checked before the command acts, so a bad stat buffer creates or changes nothing. */
static bool stat_buffer_ok(const fs_connection *conn, fs_buffer buf)
{
    return fs_share_buffer(conn, buf) && buf.size >= sizeof(fs_stat);
}

/* An open node's record, as the wire has it. */
static fs_status node_stat(const command_call *c, vfs_node *node, fs_stat *out)
{
    vfs_stat st;
    vfs_status status = ops(c)->fstat(node, &st);
    if (status == VFS_OK)
        fs_wire_stat(&st, out);
    return fs_wire_status(status);
}

static fs_status path_stat(const command_call *c, const path_copy *path, fs_stat *out)
{
    vfs_stat st;
    vfs_status status = ops(c)->stat(volume(c), &path->at, &st);
    if (status == VFS_OK)
        fs_wire_stat(&st, out);
    return fs_wire_status(status);
}

/* ---- the volume ------------------------------------------------------------------------ */

static fs_status cmd_initialise(command_call *c)
{
    fs_server *server = c->server;
    /* The dialect this command asks for holds from its own completion on. */
    bool asyncfat = c->p->initialise.magic == FS_INITIALISE_MAGIC;
    c->conn->extensions = asyncfat && (c->p->initialise.flags & FS_INITIALISE_EXTENSIONS);
    if (asyncfat && (c->p->initialise.flags & ~(uint64_t)FS_INITIALISE_EXTENSIONS))
        return FS_STATUS_INVALID_ARGUMENT;
    fs_status status = FS_STATUS_SUCCESS;
    /* Checked under the lock: a client may send several INITIALISEs at once. */
    fp_mutex_lock(server->pool, &server->mount_lock);
    if (!c->conn->initialised) {
        if (!ops(c))
            status = FS_STATUS_ALLOCATION_ERROR;
        else if (!ops(c)->mounted(volume(c)))
            status = fs_wire_status(ops(c)->mount(volume(c)));
        if (status == FS_STATUS_SUCCESS) {
            c->conn->initialised = true;
            server->initialised_clients++;
        }
    }
    fp_mutex_unlock(server->pool, &server->mount_lock);
    return status;
}

static fs_status cmd_deinitialise(command_call *c)
{
    fs_server *server = c->server;
    fs_connection *conn = c->conn;
    /* Wait for every other request of this client (other DEINITIALISEs wait alongside). */
    conn->draining++;
    while (conn->in_flight > conn->draining)
        fp_wait(server->pool, &conn->drain_waiters);
    conn->draining--;
    fs_status status = FS_STATUS_SUCCESS;
    fp_mutex_lock(server->pool, &server->mount_lock);
    if (conn->initialised) {
        fs_fd_close_all(conn);
        conn->initialised = false;
        if (--server->initialised_clients == 0)
            status = fs_wire_status(ops(c)->unmount(volume(c)));
        else
            status = fs_wire_status(ops(c)->sync(volume(c)));
    }
    fp_mutex_unlock(server->pool, &server->mount_lock);
    return status;
}

static fs_status cmd_statfs(command_call *c)
{
    fs_buffer buf = c->p->statfs.buf;
    if (!fs_share_buffer(c->conn, buf) || buf.size < sizeof(fs_statfs))
        return FS_STATUS_INVALID_BUFFER;
    vfs_statfs info;
    fs_status status = fs_wire_status(ops(c)->statfs(volume(c), &info));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_statfs out = {
        .block_size = info.block_size,
        .blocks = info.blocks,
        .blocks_free = info.blocks_free,
        .blocks_available = info.blocks_free,
        .name_max = info.name_max,
        .fat_type = info.fat_type,
        .flags = info.read_only ? FS_STATFS_READ_ONLY : 0,
    };
    return put_record(c->conn, buf, &out, sizeof(out));
}

static fs_status cmd_mount_report(command_call *c)
{
    fs_buffer buf = c->p->mount_report.buf;
    if (!fs_share_buffer(c->conn, buf) || buf.size < sizeof(fs_mount_report))
        return FS_STATUS_INVALID_BUFFER;
    vfs_mount_report r = {.was_dirty = false};
    if (ops(c)->mount_report)
        ops(c)->mount_report(volume(c), &r);
    fs_mount_report out = {
        .flags = (r.was_dirty ? FS_MOUNT_WAS_DIRTY : 0) | (r.recovered ? FS_MOUNT_RECOVERED : 0) |
                 (r.needs_check ? FS_MOUNT_NEEDS_CHECK : 0),
        .renames_completed = r.renames_completed,
        .orphans_removed = r.orphans_removed,
        .chains_cut = r.chains_cut,
        .lost_freed = r.lost_freed,
        .fat_disagreements = r.fat_disagreements,
        .fat_blocks_copied = r.fat_blocks_copied,
    };
    return put_record(c->conn, buf, &out, sizeof(out));
}

/* ---- opening --------------------------------------------------------------------------- */

/* What an open returns besides the fd: nothing, the file's record (OPEN_STAT), or the
 * record and the file's first bytes (OPEN_READ). */
typedef enum open_reply { OPEN_REPLY_FD, OPEN_REPLY_STAT, OPEN_REPLY_READ } open_reply;

/* FILE_OPEN, OPEN_STAT and OPEN_READ. The reply buffer is checked before anything is
 * opened or created. OPEN_READ reads straight into the client's buffer after the header,
 * so a small file is opened and read in one round trip (a FUSE open then its first read). */
static fs_status open_path(command_call *c, const path_copy *path, uint64_t flags, open_reply reply,
                           fs_buffer reply_buf)
{
    fs_status status;
    uint8_t *out = NULL;
    if (reply == OPEN_REPLY_STAT && !stat_buffer_ok(c->conn, reply_buf))
        return FS_STATUS_INVALID_BUFFER;
    if (reply == OPEN_REPLY_READ &&
        (!(out = fs_share_buffer(c->conn, reply_buf)) || reply_buf.size < sizeof(fs_open_read_record)))
        return FS_STATUS_INVALID_BUFFER;
    vfs_node *node;
    status = fs_wire_status(ops(c)->open(volume(c), &path->at, flags & ~FS_OPEN_FLAGS_APPEND, &node));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_open_read_record head = {.read = 0};
    if (reply == OPEN_REPLY_READ) {
        size_t done = 0;
        status = fs_wire_status(ops(c)->read(node, 0, out + sizeof head, reply_buf.size - sizeof head, &done));
        head.read = done;
    }
    if (status == FS_STATUS_SUCCESS && reply != OPEN_REPLY_FD)
        status = node_stat(c, node, &head.stat);
    if (status == FS_STATUS_SUCCESS)
        status = fs_fd_alloc(c->conn, node, flags, &c->data);
    if (status != FS_STATUS_SUCCESS) {
        ops(c)->close(node);
        return status;
    }
    if (reply == OPEN_REPLY_STAT)
        put_record(c->conn, reply_buf, &head.stat, sizeof(head.stat));
    else if (reply == OPEN_REPLY_READ)
        af_memcpy(out, &head, sizeof head);
    return FS_STATUS_SUCCESS;
}

static fs_status open_file(command_call *c, fs_buffer path_buf, uint64_t flags, open_reply reply, fs_buffer reply_buf)
{
    const uint64_t known = c->conn->extensions ? FS_OPEN_FLAGS_LIONSOS_MASK | FS_OPEN_FLAGS_TRUNCATE |
                                                     FS_OPEN_FLAGS_EXCLUSIVE | FS_OPEN_FLAGS_APPEND
                                               : FS_OPEN_FLAGS_LIONSOS_MASK;
    if ((flags & ~known) || (flags & FS_OPEN_FLAGS_ACCESS_MASK) == FS_OPEN_FLAGS_ACCESS_MASK)
        return FS_STATUS_INVALID_ARGUMENT;
    if (reply == OPEN_REPLY_READ && (flags & FS_OPEN_FLAGS_ACCESS_MASK) == FS_OPEN_FLAGS_WRITE_ONLY)
        return FS_STATUS_INVALID_READ;
    path_copy path;
    fs_status status = take_path(c, path_buf, &path);
    if (status == FS_STATUS_SUCCESS)
        status = open_path(c, &path, flags, reply, reply_buf);
    return put_path(c, &path, status);
}

static fs_status cmd_file_open(command_call *c)
{
    return open_file(c, c->p->file_open.path, c->p->file_open.flags, OPEN_REPLY_FD, (fs_buffer){0, 0});
}

static fs_status cmd_open_stat(command_call *c)
{
    return open_file(c, c->p->open_stat.path, c->p->open_stat.flags, OPEN_REPLY_STAT, c->p->open_stat.stat);
}

static fs_status cmd_open_read(command_call *c)
{
    return open_file(c, c->p->open_read.path, c->p->open_read.flags, OPEN_REPLY_READ, c->p->open_read.buf);
}

/* READ_PATH: a read without an fd (open read-only, read, stat, close), for a client that
 * wants a small file's bytes and keeps nothing open. data = bytes read. */
static fs_status read_path(command_call *c, const path_copy *path)
{
    fs_status status;
    fs_buffer buf = c->p->read_path.buf;
    uint8_t *out = fs_share_buffer(c->conn, buf);
    if (!out || buf.size < sizeof(fs_open_read_record))
        return FS_STATUS_INVALID_BUFFER;
    vfs_node *node;
    status = fs_wire_status(ops(c)->open(volume(c), &path->at, FS_OPEN_FLAGS_READ_ONLY, &node));
    if (status != FS_STATUS_SUCCESS)
        return status;
    fs_open_read_record head = {.read = 0};
    size_t done = 0;
    status = fs_wire_status(ops(c)->read(node, c->p->read_path.offset, out + sizeof head, buf.size - sizeof head, &done));
    head.read = done;
    if (status == FS_STATUS_SUCCESS)
        status = node_stat(c, node, &head.stat);
    fs_status closed = fs_wire_status(ops(c)->close(node));
    if (status == FS_STATUS_SUCCESS)
        status = closed;
    if (status != FS_STATUS_SUCCESS)
        return status;
    af_memcpy(out, &head, sizeof head);
    c->data = done;
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_read_path(command_call *c)
{
    path_copy path;
    fs_status status = take_path(c, c->p->read_path.path, &path);
    if (status == FS_STATUS_SUCCESS)
        status = read_path(c, &path);
    return put_path(c, &path, status);
}

static fs_status cmd_dir_open(command_call *c)
{
    path_copy path;
    fs_status status = take_path(c, c->p->dir_open.path, &path);
    vfs_node *node;
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(ops(c)->opendir(volume(c), &path.at, &node));
    if (status == FS_STATUS_SUCCESS) {
        status = fs_fd_alloc(c->conn, node, FS_OPEN_FLAGS_READ_ONLY, &c->data);
        if (status != FS_STATUS_SUCCESS)
            ops(c)->close(node);
    }
    return put_path(c, &path, status);
}

/* FILE_CLOSE, DIR_CLOSE: the node is closed when the last request using the fd is done
 * (at once, unless others are in flight); its status is the command's. */
static fs_status cmd_close(command_call *c)
{
    if (c->fd->can_write) /* a last close writes the file's entry (or queues it) */
        fs_writeback_note_change(c->server);
    fs_fd_close(c->conn, c->fd);
    return FS_STATUS_SUCCESS;
}

/* ---- names ------------------------------------------------------------------------------ */

/* The commands that name one path and nothing else. */
static fs_status path_op(command_call *c, fs_buffer buf, vfs_status (*op)(vfs_volume *, const vfs_path *))
{
    path_copy path;
    fs_status status = take_path(c, buf, &path);
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(op(volume(c), &path.at));
    return put_path(c, &path, status);
}

static fs_status cmd_file_remove(command_call *c) { return path_op(c, c->p->file_remove.path, ops(c)->unlink); }
static fs_status cmd_dir_create(command_call *c) { return path_op(c, c->p->dir_create.path, ops(c)->mkdir); }
static fs_status cmd_dir_remove(command_call *c) { return path_op(c, c->p->dir_remove.path, ops(c)->rmdir); }

static fs_status cmd_stat(command_call *c)
{
    path_copy path;
    fs_status status = take_path(c, c->p->stat.path, &path);
    if (status == FS_STATUS_SUCCESS && !stat_buffer_ok(c->conn, c->p->stat.buf))
        status = FS_STATUS_INVALID_BUFFER;
    fs_stat st;
    if (status == FS_STATUS_SUCCESS)
        status = path_stat(c, &path, &st);
    if (status == FS_STATUS_SUCCESS)
        status = put_record(c->conn, c->p->stat.buf, &st, sizeof(st));
    return put_path(c, &path, status);
}

static fs_status cmd_rename(command_call *c)
{
    path_copy old_path, new_path;
    new_path.base = NULL;
    fs_status status = take_path(c, c->p->rename.old_path, &old_path);
    if (status == FS_STATUS_SUCCESS)
        status = take_path(c, c->p->rename.new_path, &new_path);
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(ops(c)->rename(volume(c), &old_path.at, &new_path.at));
    status = put_path(c, &new_path, status);
    return put_path(c, &old_path, status);
}

/* SET_TIMES, and SET_TIMES_STAT when stat_buf is given: the record as stored (FAT keeps
 * 2-second modification times and access dates), so the client need not ask again. */
static fs_status set_times(command_call *c, fs_buffer path_buf, int64_t atime, int64_t mtime,
                           const fs_buffer *stat_buf)
{
    path_copy path;
    fs_status status = take_path(c, path_buf, &path);
    if (status == FS_STATUS_SUCCESS && stat_buf && !stat_buffer_ok(c->conn, *stat_buf))
        status = FS_STATUS_INVALID_BUFFER;
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(ops(c)->set_times(volume(c), &path.at, atime, mtime));
    fs_stat st;
    if (status == FS_STATUS_SUCCESS && stat_buf)
        status = path_stat(c, &path, &st);
    if (status == FS_STATUS_SUCCESS && stat_buf)
        status = put_record(c->conn, *stat_buf, &st, sizeof(st));
    return put_path(c, &path, status);
}

static fs_status cmd_set_times(command_call *c)
{
    return set_times(c, c->p->set_times.path, c->p->set_times.atime, c->p->set_times.mtime, NULL);
}

static fs_status cmd_set_times_stat(command_call *c)
{
    return set_times(c, c->p->set_times_stat.path, c->p->set_times_stat.atime, c->p->set_times_stat.mtime,
                     &c->p->set_times_stat.stat);
}

/* SET_TIMES on the fd's node: what a copy tool does after its last write, without looking
 * the path up again. Any open file or directory, whatever its access mode (futimens). */
static fs_status cmd_file_set_times(command_call *c)
{
    return fs_wire_status(ops(c)->fset_times(c->fd->node, c->p->file_set_times.atime, c->p->file_set_times.mtime));
}

static fs_status cmd_get_attributes(command_call *c)
{
    path_copy path;
    fs_status status = take_path(c, c->p->get_attributes.path, &path);
    uint32_t attributes;
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(ops(c)->get_attributes(volume(c), &path.at, &attributes));
    if (status == FS_STATUS_SUCCESS)
        c->data = attributes;
    return put_path(c, &path, status);
}

static fs_status cmd_set_attributes(command_call *c)
{
    path_copy path;
    fs_status status = take_path(c, c->p->set_attributes.path, &path);
    uint64_t set = c->p->set_attributes.set, clear = c->p->set_attributes.clear;
    if (status == FS_STATUS_SUCCESS && ((set | clear) & ~(uint64_t)FS_ATTRIBUTE_CHANGEABLE))
        status = FS_STATUS_INVALID_ARGUMENT;
    uint32_t attributes;
    if (status == FS_STATUS_SUCCESS)
        status = fs_wire_status(ops(c)->set_attributes(volume(c), &path.at, (uint32_t)set, (uint32_t)clear, &attributes));
    if (status == FS_STATUS_SUCCESS)
        c->data = attributes;
    return put_path(c, &path, status);
}

/* ---- open files ------------------------------------------------------------------------- */

static fs_status cmd_file_read(command_call *c)
{
    uint8_t *dst = fs_share_buffer(c->conn, c->p->file_read.buf);
    if (!dst)
        return FS_STATUS_INVALID_BUFFER;
    if (!c->fd->can_read)
        return FS_STATUS_INVALID_READ;
    size_t done = 0;
    fs_status status =
        fs_wire_status(ops(c)->read(c->fd->node, c->p->file_read.offset, dst, c->p->file_read.buf.size, &done));
    c->data = done;
    return status;
}

static fs_status cmd_file_write(command_call *c)
{
    const uint8_t *src = fs_share_buffer(c->conn, c->p->file_write.buf);
    size_t len = c->p->file_write.buf.size;
    if (!src)
        return FS_STATUS_INVALID_BUFFER;
    if (!c->fd->can_write)
        return FS_STATUS_INVALID_WRITE;
    size_t done = 0;
    vfs_status status;
    if (c->fd->append) {
        uint64_t at;
        status = ops(c)->append(c->fd->node, src, len, &done, &at);
    } else {
        status = ops(c)->write(c->fd->node, c->p->file_write.offset, src, len, &done);
    }
    c->data = done;
    return fs_wire_status(status);
}

static fs_status cmd_file_size(command_call *c)
{
    c->data = ops(c)->size(c->fd->node);
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_file_truncate(command_call *c)
{
    if (!c->fd->can_write)
        return FS_STATUS_INVALID_WRITE;
    return fs_wire_status(ops(c)->truncate(c->fd->node, c->p->file_truncate.length));
}

/* A directory's fd syncs the whole volume: what a directory's fsync must make durable (its
 * entries, and the files created in it with their sizes, which the engine may hold back
 * until a sync) is most of a sync anyway, and a FUSE mount has no other way to pass on
 * sync(2). */
static fs_status cmd_file_sync(command_call *c)
{
    if (ops(c)->is_dir(c->fd->node))
        return fs_wire_status(fs_writeback_sync(c->server));
    return fs_wire_status(ops(c)->fsync(c->fd->node));
}

/* FSTAT: a file's or a directory's record. */
static fs_status cmd_fstat(command_call *c)
{
    if (!stat_buffer_ok(c->conn, c->p->fstat.buf))
        return FS_STATUS_INVALID_BUFFER;
    fs_stat st;
    fs_status status = node_stat(c, c->fd->node, &st);
    if (status != FS_STATUS_SUCCESS)
        return status;
    return put_record(c->conn, c->p->fstat.buf, &st, sizeof(st));
}

/* ---- open directories (the table's `cursor` commands hold the fd's cursor lock) ------------ */

static fs_status dir_read(command_call *c, fs_buffer name_buf, const fs_buffer *stat_buf)
{
    uint8_t *dst = fs_share_buffer(c->conn, name_buf);
    if (!dst)
        return FS_STATUS_INVALID_BUFFER;
    if (stat_buf && !stat_buffer_ok(c->conn, *stat_buf))
        return FS_STATUS_INVALID_BUFFER;
    char name[VFS_READDIR_NAME_MAX];
    size_t len;
    vfs_stat st;
    uint64_t pos = c->fd->dir_pos;
    fs_status status = fs_wire_status(ops(c)->readdir(c->fd->node, &pos, name, &len, stat_buf ? &st : NULL));
    if (status != FS_STATUS_SUCCESS)
        return status;
    /* A buffer too small for the name leaves the position where it was: nothing is lost. */
    if (len > name_buf.size)
        return FS_STATUS_INVALID_BUFFER;
    af_memcpy(dst, name, len);
    if (stat_buf) {
        fs_stat wire;
        fs_wire_stat(&st, &wire);
        put_record(c->conn, *stat_buf, &wire, sizeof(wire));
    }
    c->fd->dir_pos = pos;
    c->data = len;
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_dir_read(command_call *c) { return dir_read(c, c->p->dir_read.buf, NULL); }

static fs_status cmd_dir_read_stat(command_call *c)
{
    return dir_read(c, c->p->dir_read_stat.name, &c->p->dir_read_stat.stat);
}

/* DIR_READ_BATCH: entries packed as fs_dir_record + name + padding while the next one fits,
 * so a listing costs one round trip per buffer instead of one per entry. An entry that does
 * not fit stays unread for the next call; a buffer too small for even one entry gives
 * INVALID_BUFFER, as DIR_READ does. data = entries written; END_OF_DIRECTORY only when the
 * first read finds no entry. */
static fs_status cmd_dir_read_batch(command_call *c)
{
    fs_buffer buf = c->p->dir_read_batch.buf;
    uint8_t *dst = fs_share_buffer(c->conn, buf);
    if (!dst)
        return FS_STATUS_INVALID_BUFFER;
    uint64_t used = 0, count = 0;
    fs_status status = FS_STATUS_SUCCESS;
    /* Bounded, so that one call on a large cached directory does not hold the server's
     * thread for long. */
    while (count < FS_DIR_BATCH_MAX_ENTRIES) {
        char name[VFS_READDIR_NAME_MAX];
        size_t len;
        fs_dir_record rec;
        vfs_stat st;
        uint64_t pos = c->fd->dir_pos;
        status = fs_wire_status(ops(c)->readdir(c->fd->node, &pos, name, &len, &st));
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
        c->fd->dir_pos = pos;
    }
    /* Entries already written are the answer; the end or an error shows on the next call. */
    if (count)
        status = FS_STATUS_SUCCESS;
    c->data = count;
    return status;
}

static fs_status cmd_dir_seek(command_call *c)
{
    if (c->p->dir_seek.loc < 0)
        return FS_STATUS_INVALID_ARGUMENT;
    c->fd->dir_pos = (uint64_t)c->p->dir_seek.loc;
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_dir_tell(command_call *c)
{
    c->data = c->fd->dir_pos;
    return FS_STATUS_SUCCESS;
}

static fs_status cmd_dir_rewind(command_call *c)
{
    c->fd->dir_pos = 0;
    return FS_STATUS_SUCCESS;
}

/* ---- the table ---------------------------------------------------------------------------- */

typedef struct command {
    fs_status (*run)(command_call *c);
    uint8_t fd;               /* fs_fd_kind it names (first in its params), or TAKES_NO_FD */
    bool needs_init;          /* before this client's INITIALISE: NOT_MOUNTED */
    bool cursor;              /* uses the directory fd's position: one such command at a time */
} command;

#define TAKES_NO_FD 0xFFu

static const command commands[FS_CMD_COUNT] = {
    [FS_CMD_INITIALISE] = {cmd_initialise, TAKES_NO_FD, false, false},
    [FS_CMD_DEINITIALISE] = {cmd_deinitialise, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_OPEN] = {cmd_file_open, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_CLOSE] = {cmd_close, FS_FD_FILE, true, false},
    [FS_CMD_STAT] = {cmd_stat, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_READ] = {cmd_file_read, FS_FD_FILE, true, false},
    [FS_CMD_FILE_WRITE] = {cmd_file_write, FS_FD_FILE, true, false},
    [FS_CMD_FILE_SIZE] = {cmd_file_size, FS_FD_FILE, true, false},
    [FS_CMD_RENAME] = {cmd_rename, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_REMOVE] = {cmd_file_remove, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_TRUNCATE] = {cmd_file_truncate, FS_FD_FILE, true, false},
    [FS_CMD_DIR_CREATE] = {cmd_dir_create, TAKES_NO_FD, true, false},
    [FS_CMD_DIR_REMOVE] = {cmd_dir_remove, TAKES_NO_FD, true, false},
    [FS_CMD_DIR_OPEN] = {cmd_dir_open, TAKES_NO_FD, true, false},
    [FS_CMD_DIR_CLOSE] = {cmd_close, FS_FD_DIR, true, false},
    [FS_CMD_FILE_SYNC] = {cmd_file_sync, FS_FD_ANY, true, false},
    [FS_CMD_DIR_READ] = {cmd_dir_read, FS_FD_DIR, true, true},
    [FS_CMD_DIR_SEEK] = {cmd_dir_seek, FS_FD_DIR, true, true},
    [FS_CMD_DIR_TELL] = {cmd_dir_tell, FS_FD_DIR, true, true},
    [FS_CMD_DIR_REWIND] = {cmd_dir_rewind, FS_FD_DIR, true, true},
    [FS_CMD_STATFS] = {cmd_statfs, TAKES_NO_FD, true, false},
    [FS_CMD_FSTAT] = {cmd_fstat, FS_FD_ANY, true, false},
    [FS_CMD_SET_TIMES] = {cmd_set_times, TAKES_NO_FD, true, false},
    [FS_CMD_DIR_READ_STAT] = {cmd_dir_read_stat, FS_FD_DIR, true, true},
    [FS_CMD_OPEN_STAT] = {cmd_open_stat, TAKES_NO_FD, true, false},
    [FS_CMD_SET_TIMES_STAT] = {cmd_set_times_stat, TAKES_NO_FD, true, false},
    [FS_CMD_DIR_READ_BATCH] = {cmd_dir_read_batch, FS_FD_DIR, true, true},
    [FS_CMD_OPEN_READ] = {cmd_open_read, TAKES_NO_FD, true, false},
    [FS_CMD_READ_PATH] = {cmd_read_path, TAKES_NO_FD, true, false},
    [FS_CMD_GET_ATTRIBUTES] = {cmd_get_attributes, TAKES_NO_FD, true, false},
    [FS_CMD_SET_ATTRIBUTES] = {cmd_set_attributes, TAKES_NO_FD, true, false},
    [FS_CMD_MOUNT_REPORT] = {cmd_mount_report, TAKES_NO_FD, true, false},
    [FS_CMD_FILE_SET_TIMES] = {cmd_file_set_times, FS_FD_ANY, true, false},
};

bool fs_command_changes(const fs_cmd *cmd)
{
    const uint64_t changing_open = FS_OPEN_FLAGS_ACCESS_MASK | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_TRUNCATE;
    switch (cmd->type) {
    case FS_CMD_FILE_OPEN:
        return cmd->params.file_open.flags & changing_open;
    case FS_CMD_OPEN_STAT:
        return cmd->params.open_stat.flags & changing_open;
    case FS_CMD_OPEN_READ:
        return cmd->params.open_read.flags & changing_open;
    case FS_CMD_FILE_WRITE:
    case FS_CMD_FILE_TRUNCATE:
    case FS_CMD_RENAME:
    case FS_CMD_FILE_REMOVE:
    case FS_CMD_DIR_CREATE:
    case FS_CMD_DIR_REMOVE:
    case FS_CMD_SET_TIMES:
    case FS_CMD_SET_TIMES_STAT:
    case FS_CMD_FILE_SET_TIMES:
    case FS_CMD_SET_ATTRIBUTES:
        return true;
    default:
        return false;
    }
}

/* The fd a command names: first in its params (protocol/fs_protocol.h asserts it). */
static uint64_t fd_named(const fs_cmd_params *p) { return p->file_close.fd; }

static fs_status dispatch(command_call *c, uint64_t type)
{
    uint64_t known = c->conn->extensions ? FS_CMD_COUNT : FS_CMD_LIONSOS_COUNT;
    const command *cmd = type < known ? &commands[type] : NULL;
    if (!cmd || !cmd->run)
        return FS_STATUS_INVALID_COMMAND;
    if (cmd->needs_init && !c->conn->initialised)
        return FS_STATUS_NOT_MOUNTED;
    if (cmd->fd == TAKES_NO_FD)
        return cmd->run(c);
    fs_status status = fs_fd_borrow(c->conn, fd_named(c->p), (fs_fd_kind)cmd->fd, &c->fd);
    if (status != FS_STATUS_SUCCESS)
        return status;
    fp_pool *pool = c->server->pool;
    if (cmd->cursor)
        fp_mutex_lock(pool, &c->fd->dir_lock);
    status = cmd->run(c);
    if (cmd->cursor)
        fp_mutex_unlock(pool, &c->fd->dir_lock);
    fs_status returned = fs_fd_return(c->conn, c->fd);
    return status != FS_STATUS_SUCCESS ? status : returned;
}

void fs_server_execute(fs_request *req)
{
    command_call c = {.server = req->server, .conn = req->client, .p = &req->cmd.params};
    fs_status status = dispatch(&c, req->cmd.type);
    req->cmpl.status = c.conn->extensions ? status : fs_wire_lionsos_status(req->cmd.type, status);
    req->cmpl.data = c.data;
}
