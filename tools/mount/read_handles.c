/* Files opened for reading (see mount.h).
 *
 * Opening a file to read it is an open, then a read at offset 0, then a close (tar, cat,
 * cp: most files are small). A read-only open gets a handle holding the file's first
 * bytes, which the open fetched in the same round trip: OPEN_READ (open, record, first
 * bytes), or for a file whose node last showed it small, READ_PATH (the same without
 * keeping the file open on the server, so neither the open nor the close costs a further
 * round trip). The bytes answer the kernel's first READ if it lies inside them (or they
 * are the whole file) and nothing on the volume changed since the open was sent (every
 * change through the mount advances mount_ctx.change_epoch, so they are still the file's
 * bytes). Then they are dropped: the kernel's page cache keeps what was read. Anything
 * else that needs a server fd (a later read, fstat, fsync) opens the file then, by its
 * node's path (which follows renames; an unlinked file was pinned by the unlink), so a
 * handle behaves as an fd opened at open time would. */
#include "tools/mount/mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_READ_BYTES (64u * 1024u)   /* data asked for with each read-only open */

static void read_opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    if (r->status == FS_STATUS_TOO_MANY_OPEN_FILES && fd_cache_evict(op, read_handle_open))
        return;
    mount_node *node = node_get(op->ino);
    if (r->status != FS_STATUS_SUCCESS || !node) {
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOENT);
        return;
    }
    const fs_open_read_record *rec = &r->record.open_read;
    size_t got = rec->read < OPEN_READ_BYTES ? (size_t)rec->read : OPEN_READ_BYTES;
    mount_handle *h = calloc(1, sizeof *h);
    uint8_t *bytes = malloc(got ? got : 1);
    if (!h || !bytes || !payload) {
        free(h);
        free(bytes);
        if (op->flags) { /* an fd the handle would have held */
            mount_op *closer = mount_op_new(NULL);
            if (closer) {
                fs_conn_start_close(&mount_ctx.conn, &closer->call, r->data);
                mount_called(closer, mount_then_end);
            }
        }
        mount_op_fail(op, ENOMEM);
        return;
    }
    memcpy(bytes, payload + sizeof(fs_open_read_record), got);
    h->has_fd = op->flags != 0;
    h->fd = r->data;
    h->bytes = bytes;
    h->len = got;
    h->whole = got == rec->stat.size;
    h->epoch = op->sent_epoch;
    if (node->linked && op->sent_epoch == mount_ctx.change_epoch)
        node_note_stat(node, &rec->stat);
    node_add_handle(node, h);
    op->fi.fh = (uint64_t)(uintptr_t)h;
    op->fi.keep_cache = 1;
    fuse_reply_open(op->req, &op->fi);
    mount_op_end(op);
}

static void read_open_by_path(mount_op *op);

void read_handle_open(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    if (!node || !node->linked) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, node, NULL, false, read_open_by_path);
}

static void read_open_by_path(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    if (!node) {
        mount_op_fail(op, ENOENT);
        return;
    }
    bool small = node->stat_known && node->stat_epoch == mount_ctx.change_epoch &&
                 (node->stat.mode & FS_MODE_TYPE_MASK) == FS_MODE_REGULAR && node->stat.size <= OPEN_READ_BYTES;
    op->flags = !small; /* keeps a server fd */
    op->sent_epoch = mount_ctx.change_epoch;
    if (small)
        fs_conn_start_read_path(&mount_ctx.conn, &op->call, op->at, op->path, OPEN_READ_BYTES);
    else
        fs_conn_start_open_read(&mount_ctx.conn, &op->call, op->at, op->path, mount_open_flags(op->fi.flags),
                                OPEN_READ_BYTES);
    mount_called(op, read_opened);
}

bool read_handle_read(mount_op *op)
{
    mount_handle *h = op->handle;
    if (!h || !h->bytes)
        return false;
    uint8_t *bytes = h->bytes;
    h->bytes = NULL;
    uint64_t end = (uint64_t)op->offset + op->size;
    bool answered = h->epoch == mount_ctx.change_epoch && (end <= h->len || h->whole);
    if (answered) {
        size_t n = (uint64_t)op->offset >= h->len ? 0 : h->len - (size_t)op->offset;
        if (n > op->size)
            n = op->size;
        fuse_reply_buf(op->req, (const char *)bytes + (n ? op->offset : 0), n);
        mount_op_end(op);
    }
    free(bytes);
    return answered;
}
