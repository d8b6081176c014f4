/* Operations on names and attributes: lookup, forget, getattr, setattr, mkdir, unlink,
 * rmdir, rename, statfs (see mount.h). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#define BUSY_RETRIES 200 /* x 5 ms: a racing RELEASEDIR reaches the server first */

static fs_conn *conn(void) { return &mount_ctx.conn; }

void mount_fill_entry(mount_node *node, const fs_stat *rec, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = node->id;
    e->attr_timeout = MOUNT_TIMEOUT_S;
    e->entry_timeout = MOUNT_TIMEOUT_S;
    mount_fill_stat(rec, node->id, &e->attr);
    node_note_stat(node, rec);
}

/* A new operation on `name` under the node `parent` (then named for the server by
 * name_path). Replies and returns NULL if it cannot be served (unknown node, a name too
 * long). */
static mount_op *name_op(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mount_node *dir = node_get(parent);
    int err = mount_check_name(name);
    if (!err && !dir)
        err = ENOENT;
    if (err) {
        fuse_reply_err(req, err);
        return NULL;
    }
    mount_op *op = mount_op_new(req);
    if (!op)
        return NULL;
    op->parent = parent;
    op->name = strdup(name);
    if (!op->name) {
        mount_op_fail(op, ENOMEM);
        return NULL;
    }
    return op;
}

/* next(op) once op->path and op->at name op->name under op->parent. */
static void name_path(mount_op *op, void (*next)(mount_op *op))
{
    mount_node *dir = node_get(op->parent);
    if (!dir) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, dir, op->name, false, next);
}

/* ---- lookup and forget ---- */

static void reply_absent(fuse_req_t req)
{
    /* A negative entry the kernel keeps: every create comes through the mount. */
    struct fuse_entry_param e = {.ino = 0, .entry_timeout = MOUNT_TIMEOUT_S};
    fuse_reply_entry(req, &e);
}

static void lookup_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_node *dir = node_get(op->parent);
    /* A name FAT cannot hold names nothing: ENOENT, as on vfat (EINVAL only where a name
     * is created), so an unmatched glob is "No such file or directory". */
    if (r->status == FS_STATUS_NO_FILE || r->status == FS_STATUS_INVALID_NAME) {
        reply_absent(op->req);
        mount_op_end(op);
        return;
    }
    if (r->status != FS_STATUS_SUCCESS || !dir) {
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOENT);
        return;
    }
    mount_node *node = node_lookup(dir, op->name);
    if (!node) {
        mount_op_fail(op, ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    mount_fill_entry(node, &r->record.stat, &e);
    fuse_reply_entry(op->req, &e);
    mount_op_end(op);
}

static void lookup_start(mount_op *op)
{
    fs_conn_start_stat(conn(), &op->call, op->at, op->path);
    mount_called(op, lookup_done);
}

static void lookup_named(mount_op *op)
{
    /* known_names holds paths from the root only. */
    if (!op->at && known_names_absent(op->path)) {
        reply_absent(op->req);
        mount_op_end(op);
        return;
    }
    mount_start_when_room(op, lookup_start);
}

void mount_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    mount_op *op = name_op(req, parent, name);
    if (op)
        name_path(op, lookup_named);
}

void mount_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    mount_node *node = node_get(ino);
    if (node)
        node_forget(node, nlookup);
    fuse_reply_none(req);
}

void mount_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++) {
        mount_node *node = node_get(forgets[i].ino);
        if (node)
            node_forget(node, forgets[i].nlookup);
    }
    fuse_reply_none(req);
}

/* ---- getattr ---- */

static void attr_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_node *node = node_get(op->ino);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    struct stat st;
    mount_fill_stat(&r->record.stat, op->ino, &st);
    if (node && node->linked)
        node_note_stat(node, &r->record.stat);
    fuse_reply_attr(op->req, &st, MOUNT_TIMEOUT_S);
    mount_op_end(op);
}

static void fstat_with_fd(mount_op *op)
{
    fs_conn_start_fstat(conn(), &op->call, op->fd);
    mount_called(op, attr_done);
}

static void stat_by_path(mount_op *op)
{
    fs_conn_start_stat(conn(), &op->call, op->at, op->path);
    mount_called(op, attr_done);
}

/* Reply with the node's attributes: through an fd when it has no name (unlinked) or the
 * request came with an open file, else by its path. */
static void attr_start(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    if (!node) {
        mount_op_fail(op, ENOENT);
        return;
    }
    if (op->handle && op->handle->has_fd) {
        fd_cache_use(op);
        fstat_with_fd(op);
    } else if (!node->linked) {
        if (!node_any_fd(node, &op->fd)) {
            mount_op_fail(op, ESTALE);
            return;
        }
        fstat_with_fd(op);
    } else {
        mount_path(op, node, NULL, false, stat_by_path);
    }
}

static void attr_reply(mount_op *op)
{
    mount_start_when_room(op, attr_start);
}

void mount_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->handle = fi ? mount_handle_of(fi) : NULL;
    attr_reply(op);
}

/* ---- setattr: size, then mode (attribute_ops.c), then times, then the attributes as
 * they are ---- */

static void times_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    attr_done(op, r, NULL); /* SET_TIMES_STAT answers with the stored record */
}

static void times_by_path(mount_op *op)
{
    mount_changed();
    int64_t atime = mount_time_arg(op->to_set, FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, &op->attr.st_atim);
    int64_t mtime = mount_time_arg(op->to_set, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, &op->attr.st_mtim);
    fs_conn_start_set_times_stat(conn(), &op->call, op->at, op->path, atime, mtime);
    mount_called(op, times_done);
}

void mount_setattr_times(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    bool times = op->to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                               FUSE_SET_ATTR_MTIME_NOW);
    /* An unlinked file has no name to set times through, and nothing will show them. */
    if (!times || !node || !node->linked) {
        attr_reply(op);
        return;
    }
    mount_path(op, node, NULL, false, times_by_path);
}

static void truncate_closed(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (op->status == FS_STATUS_SUCCESS)
        op->status = r->status;
    if (op->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(op->status));
        return;
    }
    mount_setattr_mode(op);
}

static void truncate_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_changed();
    op->status = r->status;
    if (op->handle) { /* truncated through the caller's file */
        truncate_closed(op, &(fs_reply){.status = FS_STATUS_SUCCESS}, NULL);
        return;
    }
    fs_conn_start_close(conn(), &op->call, op->fd);
    mount_called(op, truncate_closed);
}

static void truncate_with_fd(mount_op *op)
{
    fs_conn_start_truncate(conn(), &op->call, op->fd, (uint64_t)op->attr.st_size);
    mount_called(op, truncate_done);
}

static void truncate_opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    op->fd = r->data;
    truncate_with_fd(op);
}

static void truncate_by_path(mount_op *op)
{
    fs_conn_start_open(conn(), &op->call, op->at, op->path, FS_OPEN_FLAGS_WRITE_ONLY);
    mount_called(op, truncate_opened);
}

static void setattr_start(mount_op *op)
{
    if (!(op->to_set & FUSE_SET_ATTR_SIZE)) {
        mount_setattr_mode(op);
        return;
    }
    if (op->attr.st_size < 0) {
        mount_op_fail(op, EINVAL);
        return;
    }
    if (op->handle) {
        mount_with_fd(op, truncate_with_fd);
        return;
    }
    mount_node *node = node_get(op->ino);
    if (!node || !node->linked) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, node, NULL, false, truncate_by_path);
}

void mount_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->attr = *attr;
    op->to_set = to_set;
    /* FAT keeps no owner and no permission bits but the read-only attribute: uid, gid
     * and the rest of the mode are accepted and ignored, as vfat's quiet option does, so
     * that cp -a and tar work. */
    op->handle = fi && (to_set & FUSE_SET_ATTR_SIZE) ? mount_handle_of(fi) : NULL;
    mount_start_when_room(op, setattr_start);
}

/* ---- mkdir ---- */

static void mkdir_stat_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_node *dir = node_get(op->parent);
    mount_node *node = r->status == FS_STATUS_SUCCESS && dir ? node_lookup(dir, op->name) : NULL;
    if (!node) {
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOMEM);
        return;
    }
    struct fuse_entry_param e;
    mount_fill_entry(node, &r->record.stat, &e);
    fuse_reply_entry(op->req, &e);
    mount_op_end(op);
}

static void mkdir_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_changed();
    if (r->status != FS_STATUS_SUCCESS) {
        known_names_drop_all();
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    if (!op->at) {
        known_names_put('N', op->path);
        known_names_put('D', op->path); /* new and empty: every name in it is known */
    }
    fs_conn_start_stat(conn(), &op->call, op->at, op->path);
    mount_called(op, mkdir_stat_done);
}

static void mkdir_start(mount_op *op)
{
    fs_conn_start_mkdir(conn(), &op->call, op->at, op->path);
    mount_called(op, mkdir_done);
}

static void mkdir_named(mount_op *op) { mount_start_when_room(op, mkdir_start); }

void mount_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    AF_UNUSED(mode);
    mount_op *op = name_op(req, parent, name);
    if (op)
        name_path(op, mkdir_named);
}

/* ---- unlink, rmdir: pin a file whose open handles hold no fd, then remove ---- */

static mount_node *linked_child(fuse_ino_t parent, const char *name)
{
    mount_node *dir = node_get(parent);
    return dir ? node_find(dir, name) : NULL;
}

static void removed(mount_op *op, const fs_reply *r, const uint8_t *payload);

static void remove_start(mount_op *op)
{
    if (op->flags) {
        fs_conn_start_rmdir(conn(), &op->call, op->at, op->path);
    } else {
        fs_conn_start_remove(conn(), &op->call, op->at, op->path);
    }
    mount_called(op, removed);
}

static void retry_remove(mount_op *op)
{
    mount_start_when_room(op, remove_start);
}

static void removed(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    /* The kernel may send RELEASEDIR for a directory just read (rm -r) after the rmdir
     * that follows it; the server answers BUSY while the directory is open there. */
    if (r->status == FS_STATUS_BUSY && op->flags && ++op->attempts < BUSY_RETRIES) {
        mount_wait_retry(op, retry_remove);
        return;
    }
    mount_changed();
    if (r->status != FS_STATUS_SUCCESS) {
        known_names_drop_all();
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    if (op->flags && !op->at)
        known_names_del('D', op->path);
    if (!op->at)
        known_names_del('N', op->path);
    mount_node *node = linked_child(op->parent, op->name);
    if (node)
        node_detach(node);
    mount_op_fail(op, 0);
}

static void pinned(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_SUCCESS)
        node_adopt_pin(linked_child(op->parent, op->name), r->data, op->pin_flags);
    retry_remove(op);
}

static void unlink_start(mount_op *op)
{
    mount_node *node = linked_child(op->parent, op->name);
    if (!op->flags && node && node_needs_pin(node)) {
        op->pin_flags = node_pin_flags(node);
        fs_conn_start_open(conn(), &op->call, op->at, op->path, op->pin_flags);
        mount_called(op, pinned);
        return;
    }
    remove_start(op);
}

static void remove_named(mount_op *op) { mount_start_when_room(op, unlink_start); }

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
    mount_op *op = name_op(req, parent, name);
    if (!op)
        return;
    op->flags = dir;
    name_path(op, remove_named);
}

void mount_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, false); }

void mount_ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, true); }

/* ---- rename ---- */

static void rename_start(mount_op *op);

static void rename_retry(mount_op *op)
{
    mount_start_when_room(op, rename_start);
}

static void renamed(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_BUSY && ++op->attempts < BUSY_RETRIES) {
        mount_wait_retry(op, rename_retry);
        return;
    }
    mount_changed();
    known_names_drop_all(); /* names moved, maybe whole directories: start again */
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    mount_node *target = linked_child(op->new_parent, op->new_name);
    mount_node *node = linked_child(op->parent, op->name);
    mount_node *new_dir = node_get(op->new_parent);
    if (target && target != node)
        node_detach(target);
    if (node && new_dir)
        node_move(node, new_dir, op->new_name);
    mount_op_fail(op, 0);
}

static void target_pinned(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_SUCCESS)
        node_adopt_pin(linked_child(op->new_parent, op->new_name), r->data, op->pin_flags);
    op->to_set = 1; /* pinned: go on to the rename */
    rename_retry(op);
}

static void target_checked(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_SUCCESS) {
        mount_op_fail(op, EEXIST);
        return;
    }
    op->flags = 0; /* checked */
    rename_retry(op);
}

static void rename_start(mount_op *op)
{
    if (op->flags & RENAME_NOREPLACE) {
        fs_conn_start_stat(conn(), &op->call, op->new_at, op->new_path);
        mount_called(op, target_checked);
        return;
    }
    mount_node *target = linked_child(op->new_parent, op->new_name);
    if (!op->to_set && target && node_needs_pin(target)) {
        op->pin_flags = node_pin_flags(target);
        fs_conn_start_open(conn(), &op->call, op->new_at, op->new_path, op->pin_flags);
        mount_called(op, target_pinned);
        return;
    }
    fs_conn_start_rename(conn(), &op->call, op->at, op->path, op->new_at, op->new_path);
    mount_called(op, renamed);
}

/* Both names for the server: the old one is known, now the new one. */
static void rename_named(mount_op *op)
{
    mount_node *new_dir = node_get(op->new_parent);
    if (!new_dir) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, new_dir, op->new_name, true, rename_retry);
}

void mount_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t new_parent,
                     const char *new_name, unsigned int flags)
{
    if (flags & ~(unsigned)RENAME_NOREPLACE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    mount_node *new_dir = node_get(new_parent);
    int err = mount_check_name(new_name);
    if (!err && !new_dir)
        err = ENOENT;
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    mount_op *op = name_op(req, parent, name);
    if (!op)
        return;
    op->new_parent = new_parent;
    op->flags = (int)flags;
    op->new_name = strdup(new_name);
    if (!op->new_name) {
        mount_op_fail(op, ENOMEM);
        return;
    }
    name_path(op, rename_named);
}

/* ---- statfs ---- */

static void statfs_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    const fs_statfs *sf = &r->record.statfs;
    struct statvfs out;
    memset(&out, 0, sizeof out);
    out.f_bsize = sf->block_size;
    out.f_frsize = sf->block_size;
    out.f_blocks = sf->blocks;
    out.f_bfree = sf->blocks_free;
    out.f_bavail = sf->blocks_available;
    out.f_files = sf->files;
    out.f_ffree = sf->files_free;
    out.f_namemax = FS_MAX_NAME_LENGTH;
    if (sf->flags & FS_STATFS_READ_ONLY)
        out.f_flag |= ST_RDONLY;
    fuse_reply_statfs(op->req, &out);
    mount_op_end(op);
}

static void statfs_start(mount_op *op)
{
    fs_conn_start_statfs(conn(), &op->call);
    mount_called(op, statfs_done);
}

void mount_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
    AF_UNUSED(ino);
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    mount_start_when_room(op, statfs_start);
}
