/* Operations on open files: open, create, read, write, flush, fsync, release (see
 * mount.h). fi->fh is a mount_handle; a read-only open's is a read handle. */
#include "tools/mount/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

static fs_conn *conn(void) { return &mount_ctx.conn; }

/* ---- a server fd for a handle ---- */

static void fd_ready(mount_op *op, void (*then)(mount_op *op))
{
    fd_cache_use(op);
    mount_start_when_room(op, then);
}

/* Every operation that waited for the handle's open goes on (or fails with it). */
static void wake_fd_waiters(mount_handle *h, fs_status st)
{
    mount_op *list = h->fd_waiters;
    h->fd_waiters = NULL;
    while (list) {
        mount_op *op = list;
        list = op->next_waiting;
        if (st != FS_STATUS_SUCCESS)
            mount_op_fail(op, mount_errno(st));
        else
            fd_ready(op, op->resume);
    }
}

static void reopen(mount_op *op);
static void fd_named(mount_op *op);

static void handle_opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_handle *h = op->handle;
    if (r->status == FS_STATUS_TOO_MANY_OPEN_FILES && fd_cache_evict(op, reopen))
        return;
    h->opening = false;
    if (r->status == FS_STATUS_SUCCESS) {
        h->fd = r->data;
        h->has_fd = true;
        fd_cache_attach(h);
    }
    void (*then)(mount_op *) = op->resume;
    if (r->status != FS_STATUS_SUCCESS)
        mount_op_fail(op, mount_errno(r->status));
    else
        fd_ready(op, then);
    wake_fd_waiters(h, r->status);
}

void mount_with_fd(mount_op *op, void (*then)(mount_op *op))
{
    mount_handle *h = op->handle;
    if (h->has_fd) {
        fd_ready(op, then);
        return;
    }
    op->resume = then;
    if (h->opening) {
        op->next_waiting = h->fd_waiters;
        h->fd_waiters = op;
        return;
    }
    mount_node *node = h->node;
    if (!node->linked) {
        /* Unlinked since the open: through the node's pin (mount_ll_unlink made one). */
        if (!node->pinned) {
            mount_op_fail(op, EBADF);
            return;
        }
        h->fd = node->pin_fd;
        h->has_fd = h->borrowed = true;
        fd_ready(op, then);
        return;
    }
    mount_path(op, node, NULL, false, fd_named);
}

/* The file has a name for the server now: open it, unless an fd came or is coming
 * meanwhile (naming it may have opened anchors). */
static void fd_named(mount_op *op)
{
    mount_handle *h = op->handle;
    if (h->has_fd) {
        fd_ready(op, op->resume);
        return;
    }
    if (h->opening) {
        op->next_waiting = h->fd_waiters;
        h->fd_waiters = op;
        return;
    }
    h->opening = true;
    reopen(op);
}

/* Open the handle's file again (its fd was evicted, or a read handle never had one), as
 * it was opened, without creating or truncating. */
static void reopen(mount_op *op)
{
    fs_conn_start_open(conn(), &op->call, op->at, op->path, op->handle->open_flags);
    mount_called(op, handle_opened);
}

static void handle_closed(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    op->status = r->status;
    mount_handle *h = op->handle;
    op->handle = NULL;
    node_remove_handle(h->node, h);
    free(h->bytes);
    free(h->dir);
    free(h);
    op->resume(op);
}

void mount_handle_close(mount_op *op, void (*then)(mount_op *op))
{
    mount_handle *h = op->handle;
    op->resume = then;
    fd_cache_detach(h); /* closing: not a victim for an eviction any more */
    if (h->has_fd && !h->borrowed) {
        if (h->is_dir)
            fs_conn_start_closedir(conn(), &op->call, h->fd);
        else
            fs_conn_start_close(conn(), &op->call, h->fd);
        mount_called(op, handle_closed);
        return;
    }
    handle_closed(op, &(fs_reply){.status = FS_STATUS_SUCCESS}, NULL);
}

/* ---- open and create ---- */

/* The flags a handle's file is opened again with: its access mode and O_APPEND. */
static uint64_t reopen_flags(int flags)
{
    return mount_open_flags(flags) & (FS_OPEN_FLAGS_ACCESS_MASK | FS_OPEN_FLAGS_APPEND);
}

/* Open an unlinked file again (through /proc/self/fd): a handle on its pin. */
static void open_unlinked(mount_op *op, mount_node *node)
{
    bool writes = (mount_open_flags(op->fi.flags) & FS_OPEN_FLAGS_ACCESS_MASK) != FS_OPEN_FLAGS_READ_ONLY;
    if (!node->pinned || (writes && !node->pin_writable)) {
        mount_op_fail(op, node->pinned ? EACCES : ENOENT);
        return;
    }
    mount_handle *h = calloc(1, sizeof *h);
    if (!h) {
        mount_op_fail(op, ENOMEM);
        return;
    }
    h->fd = node->pin_fd;
    h->has_fd = h->borrowed = true;
    h->open_flags = reopen_flags(op->fi.flags);
    node_add_handle(node, h);
    op->fi.fh = (uint64_t)(uintptr_t)h;
    op->fi.keep_cache = 1;
    fuse_reply_open(op->req, &op->fi);
    mount_op_end(op);
}

static void open_start(mount_op *op);

static void opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_TOO_MANY_OPEN_FILES && fd_cache_evict(op, open_start))
        return;
    if (op->fi.flags & O_TRUNC)
        mount_changed();
    mount_node *node = node_get(op->ino);
    if (r->status != FS_STATUS_SUCCESS || !node) {
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOENT);
        return;
    }
    mount_handle *h = calloc(1, sizeof *h);
    if (!h) {
        mount_op *closer = mount_op_new(NULL);
        if (closer) {
            fs_conn_start_close(conn(), &closer->call, r->data);
            mount_called(closer, mount_then_end);
        }
        mount_op_fail(op, ENOMEM);
        return;
    }
    h->fd = r->data;
    h->has_fd = true;
    h->open_flags = reopen_flags(op->fi.flags);
    node_add_handle(node, h);
    op->fi.fh = (uint64_t)(uintptr_t)h;
    op->fi.keep_cache = 1;
    fuse_reply_open(op->req, &op->fi);
    mount_op_end(op);
}

static void open_by_path(mount_op *op)
{
    fs_conn_start_open(conn(), &op->call, op->at, op->path, mount_open_flags(op->fi.flags));
    mount_called(op, opened);
}

static void open_start(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    if (!node) {
        mount_op_fail(op, ENOENT);
        return;
    }
    if (mount_ctx.max_open && fd_cache_open_files() >= mount_ctx.max_open) {
        mount_op_fail(op, EMFILE);
        return;
    }
    if (!node->linked) {
        open_unlinked(op, node);
        return;
    }
    /* Most files opened for reading are read next, from the start: a read handle. */
    if ((op->fi.flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY) {
        read_handle_open(op);
        return;
    }
    mount_path(op, node, NULL, false, open_by_path);
}

void mount_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->fi = *fi;
    mount_start_when_room(op, open_start);
}

static void create_start(mount_op *op);

static void created(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    /* The server creates the file before it finds no fd for it: the next try finds it. */
    if (r->status == FS_STATUS_TOO_MANY_OPEN_FILES && fd_cache_evict(op, create_start)) {
        op->fi.flags &= ~O_EXCL;
        return;
    }
    mount_changed();
    mount_node *dir = node_get(op->parent);
    if (r->status != FS_STATUS_SUCCESS || !dir) {
        known_names_drop_all(); /* the name may exist now, or not */
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOENT);
        return;
    }
    if (!op->at)
        known_names_put('N', op->path);
    mount_node *node = node_lookup(dir, op->name);
    mount_handle *h = node ? calloc(1, sizeof *h) : NULL;
    if (!h) {
        if (node)
            node_forget(node, 1);
        mount_op *closer = mount_op_new(NULL);
        if (closer) {
            fs_conn_start_close(conn(), &closer->call, r->data);
            mount_called(closer, mount_then_end);
        }
        mount_op_fail(op, ENOMEM);
        return;
    }
    h->fd = r->data;
    h->has_fd = true;
    h->open_flags = reopen_flags(op->fi.flags);
    node_add_handle(node, h);
    struct fuse_entry_param e;
    mount_fill_entry(node, &r->record.stat, &e);
    op->fi.fh = (uint64_t)(uintptr_t)h;
    op->fi.keep_cache = 1;
    fuse_reply_create(op->req, &e, &op->fi);
    mount_op_end(op);
}

static void create_start(mount_op *op)
{
    uint64_t flags = mount_open_flags(op->fi.flags) | FS_OPEN_FLAGS_CREATE;
    if (op->fi.flags & O_EXCL)
        flags |= FS_OPEN_FLAGS_EXCLUSIVE;
    fs_conn_start_open_stat(conn(), &op->call, op->at, op->path, flags);
    mount_called(op, created);
}

static void create_named(mount_op *op) { mount_start_when_room(op, create_start); }

void mount_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
    AF_UNUSED(mode);
    mount_node *dir = node_get(parent);
    int err = mount_check_name(name);
    if (!err && !dir)
        err = ENOENT;
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    if (mount_ctx.max_open && fd_cache_open_files() >= mount_ctx.max_open) {
        fuse_reply_err(req, EMFILE);
        return;
    }
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->parent = parent;
    op->fi = *fi;
    op->name = strdup(name);
    if (!op->name) {
        mount_op_fail(op, ENOMEM);
        return;
    }
    mount_path(op, dir, op->name, false, create_named);
}

/* ---- read and write: data through a share buffer of the operation's own ---- */

static void read_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    fuse_reply_buf(op->req, (const char *)op->data, r->data < op->size ? (size_t)r->data : op->size);
    mount_op_end(op);
}

static void read_with_fd(mount_op *op)
{
    fs_conn_start_read(conn(), &op->call, op->fd, (uint64_t)op->offset, op->data, op->size);
    mount_called(op, read_done);
}

static void read_start(mount_op *op)
{
    if (!op->data) {
        op->data = mount_data_alloc(op->size ? op->size : 1);
        if (!op->data) {
            mount_wait_room(op, read_start);
            return;
        }
        op->data_size = op->size ? op->size : 1;
    }
    mount_with_fd(op, read_with_fd);
}

void mount_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->size = size;
    op->offset = off;
    op->handle = mount_handle_of(fi);
    if (off < 0) {
        mount_op_fail(op, EINVAL);
        return;
    }
    if (read_handle_read(op))
        return;
    op->data = fuse_ring_reply_space(size);
    op->data_borrowed = op->data != NULL;
    mount_start_when_room(op, read_start);
}

static void write_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_changed();
    size_t put = r->data < op->size ? (size_t)r->data : op->size;
    /* A short write reports what was written; the next one reports the error. */
    if (put == 0 && r->status != FS_STATUS_SUCCESS)
        mount_op_fail(op, mount_errno(r->status));
    else {
        fuse_reply_write(op->req, put);
        mount_op_end(op);
    }
}

static void write_with_fd(mount_op *op)
{
    fs_conn_start_write(conn(), &op->call, op->fd, (uint64_t)op->offset, op->data, op->size);
    mount_called(op, write_done);
}

static void write_start(mount_op *op) { mount_with_fd(op, write_with_fd); }

/* The bytes wait in the request's buffer only until this returns: copied at once into a
 * share buffer, or held in memory of the operation's own while it waits for one. */
static void write_buffered(mount_op *op)
{
    uint8_t *share = mount_data_alloc(op->size ? op->size : 1);
    if (!share) {
        mount_wait_room(op, write_buffered);
        return;
    }
    memcpy(share, op->held, op->size);
    free(op->held);
    op->held = NULL;
    op->data = share;
    op->data_size = op->size ? op->size : 1;
    mount_start_when_room(op, write_start);
}

void mount_ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->size = size;
    op->offset = off;
    op->handle = mount_handle_of(fi);
    if (off < 0) {
        mount_op_fail(op, EINVAL);
        return;
    }
    if (size && fuse_ring_request_data(buf, size)) {
        op->data = (uint8_t *)(uintptr_t)buf;
        op->data_borrowed = true;
        mount_start_when_room(op, write_start);
        return;
    }
    op->data = mount_data_alloc(size ? size : 1);
    if (op->data) {
        op->data_size = size ? size : 1;
        memcpy(op->data, buf, size);
        mount_start_when_room(op, write_start);
        return;
    }
    op->held = malloc(size ? size : 1);
    if (!op->held) {
        mount_op_fail(op, ENOMEM);
        return;
    }
    memcpy(op->held, buf, size);
    mount_wait_room(op, write_buffered);
}

/* ---- flush, fsync, release ---- */

void mount_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    AF_UNUSED(fi);
    fuse_reply_err(req, ENOSYS); /* the kernel stops sending it */
}

static void synced(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_op_fail(op, mount_errno(r->status));
}

static void fsync_with_fd(mount_op *op)
{
    fs_conn_start_sync(conn(), &op->call, op->fd);
    mount_called(op, synced);
}

static void fsync_start(mount_op *op) { mount_with_fd(op, fsync_with_fd); }

void mount_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    AF_UNUSED(datasync);
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->handle = mount_handle_of(fi);
    mount_start_when_room(op, fsync_start);
}

static void released(mount_op *op) { mount_op_end(op); }

static void release_start(mount_op *op) { mount_handle_close(op, released); }

/* The kernel ignores what a release answers, and a process may be waiting in close(2) for
 * it: answer at once, and close the server's fd after (behind any write-back of it). */
void mount_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    mount_handle *h = mount_handle_of(fi);
    fuse_reply_err(req, 0);
    if (!h)
        return;
    mount_op *op = mount_op_new(NULL);
    if (!op) {
        /* the server closes the fd at DEINITIALISE; the handle's memory stays */
        return;
    }
    op->handle = h;
    mount_start_when_room(op, release_start);
}
