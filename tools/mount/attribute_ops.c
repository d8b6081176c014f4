/* FAT attributes through the mount, as vfat has them (see mount.h): chmod's write bits are
 * the read-only attribute, and vfat's FAT_IOCTL_GET_ATTRIBUTES / FAT_IOCTL_SET_ATTRIBUTES
 * read and set all of them (fatattr and Wine use these). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <linux/types.h>
#include <linux/msdos_fs.h>
#include <string.h>
#include <sys/ioctl.h>

static fs_conn *conn(void) { return &mount_ctx.conn; }

/* next(op) once op->path and op->at name the linked node, else fail. */
static void with_node_path(mount_op *op, void (*next)(mount_op *op))
{
    mount_node *node = node_get(op->ino);
    if (!node || !node->linked) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, node, NULL, false, next);
}

/* ---- chmod ---- */

static void mode_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_changed();
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    mount_setattr_times(op);
}

static void mode_by_path(mount_op *op)
{
    /* As vfat: no write bit at all sets read-only, any write bit clears it. */
    bool writable = op->attr.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH);
    uint64_t set = writable ? 0 : FS_ATTRIBUTE_READ_ONLY, clear = writable ? FS_ATTRIBUTE_READ_ONLY : 0;
    fs_conn_start_set_attributes(conn(), &op->call, op->at, op->path, set, clear);
    mount_called(op, mode_done);
}

void mount_setattr_mode(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    /* vfat keeps a directory's read-only bit out of its mode (Windows uses it to mark
     * folders with a desktop.ini), so chmod of a directory changes nothing; an unlinked
     * file has no entry left to hold the bit. */
    if (!(op->to_set & FUSE_SET_ATTR_MODE) || S_ISDIR(op->attr.st_mode) || !node || !node->linked) {
        mount_setattr_times(op);
        return;
    }
    with_node_path(op, mode_by_path);
}

/* ---- FAT_IOCTL_GET_ATTRIBUTES / FAT_IOCTL_SET_ATTRIBUTES ---- */

static void ioctl_done(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    if (op->flags) { /* a set: the kernel's attributes (the mode) are stale now */
        mount_changed();
        fuse_reply_ioctl(op->req, 0, NULL, 0);
        mount_invalidate_attributes(op->ino);
    } else {
        uint32_t attributes = (uint32_t)r->data;
        fuse_reply_ioctl(op->req, 0, &attributes, sizeof attributes);
    }
    mount_op_end(op);
}

static void ioctl_by_path(mount_op *op)
{
    if (op->flags) {
        /* As vfat: the directory and volume bits are not the caller's to change, and
         * bits above the byte are ignored; the rest is the file's new attributes. */
        uint64_t want = op->size & FS_ATTRIBUTE_CHANGEABLE;
        fs_conn_start_set_attributes(conn(), &op->call, op->at, op->path, want, FS_ATTRIBUTE_CHANGEABLE & ~want);
    } else {
        fs_conn_start_get_attributes(conn(), &op->call, op->at, op->path);
    }
    mount_called(op, ioctl_done);
}

static void ioctl_start(mount_op *op) { with_node_path(op, ioctl_by_path); }

void mount_ll_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
                    unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
    AF_UNUSED(arg);
    AF_UNUSED(fi);
    if (flags & FUSE_IOCTL_COMPAT) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    bool set = cmd == FAT_IOCTL_SET_ATTRIBUTES;
    if (cmd != FAT_IOCTL_GET_ATTRIBUTES && !set) {
        fuse_reply_err(req, ENOTTY);
        return;
    }
    if ((set && in_bufsz < sizeof(uint32_t)) || (!set && out_bufsz < sizeof(uint32_t))) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (set && mount_ctx.read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->flags = set;
    if (set) {
        uint32_t attributes;
        memcpy(&attributes, in_buf, sizeof attributes);
        op->size = attributes;
    }
    mount_start_when_room(op, ioctl_start);
}
