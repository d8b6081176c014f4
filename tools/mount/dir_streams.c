/* Open directories (see mount.h).
 *
 * Entries go to the kernel with offsets (1 ".", 2 "..", then n + 3 for the server's n-th
 * entry); readdirplus entries carry node ids and attributes, so `ls -l` or `rm -r` needs
 * no LOOKUP per entry. Entries come from the server a buffer at a time (DIR_READ_BATCH);
 * the stream keeps the last batch, entries [first, first + count), so the kernel's next
 * call usually continues from it, and the server's cursor stands after its last entry. The
 * kernel serialises readdir calls on one open directory (its position lock). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIR_BATCH_BYTES (16u * 1024u)
#define DIR_FIRST_ENTRY_OFFSET 3   /* offsets 1 and 2 are "." and ".." */

typedef struct dir_stream {
    uint64_t first;            /* index of the batch's first entry */
    uint64_t count;            /* entries in the batch */
    uint64_t walk_index;       /* the entry at walk_byte in batch: where the last call stopped */
    size_t walk_byte;
    bool at_end;               /* the server said END_OF_DIRECTORY after the batch */
    bool whole;                /* the server's cursor has moved from entry 0 without a seek */
    uint64_t whole_names_epoch; /* the known names' epoch when it started there */
    uint8_t batch[DIR_BATCH_BYTES];
} dir_stream;

static fs_conn *conn(void) { return &mount_ctx.conn; }

/* ---- opendir, releasedir ---- */

static void dir_opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_node *node = node_get(op->ino);
    mount_handle *h = r->status == FS_STATUS_SUCCESS && node ? calloc(1, sizeof *h) : NULL;
    dir_stream *d = h ? calloc(1, sizeof *d) : NULL;
    if (!d) {
        free(h);
        if (r->status == FS_STATUS_SUCCESS) {
            mount_op *closer = mount_op_new(NULL);
            if (closer) {
                fs_conn_start_closedir(conn(), &closer->call, r->data);
                mount_called(closer, mount_then_end);
            }
        }
        mount_op_fail(op, r->status != FS_STATUS_SUCCESS ? mount_errno(r->status) : ENOMEM);
        return;
    }
    h->is_dir = true;
    h->has_fd = true;
    h->fd = r->data;
    h->dir = d;
    node_add_handle(node, h);
    op->fi.fh = (uint64_t)(uintptr_t)h;
    fuse_reply_open(op->req, &op->fi);
    mount_op_end(op);
}

static void opendir_by_path(mount_op *op)
{
    fs_conn_start_opendir(conn(), &op->call, op->at, op->path);
    mount_called(op, dir_opened);
}

static void opendir_start(mount_op *op)
{
    mount_node *node = node_get(op->ino);
    if (!node) {
        mount_op_fail(op, ENOENT);
        return;
    }
    mount_path(op, node, NULL, false, opendir_by_path);
}

void mount_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->ino = ino;
    op->fi = *fi;
    mount_start_when_room(op, opendir_start);
}

static void dir_released(mount_op *op) { mount_op_fail(op, mount_errno(op->status)); }

static void releasedir_start(mount_op *op) { mount_handle_close(op, dir_released); }

void mount_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->handle = mount_handle_of(fi);
    mount_start_when_room(op, releasedir_start);
}

/* fsync of a directory: FILE_SYNC on its fd, which syncs the whole volume (the kernel
 * passes no sync(2) or syncfs(2) to FUSE, so `sync DIR` on the mount is this). */
static void dir_synced(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_op_fail(op, mount_errno(r->status));
}

static void fsyncdir_start(mount_op *op)
{
    fs_conn_start_sync(conn(), &op->call, op->handle->fd);
    mount_called(op, dir_synced);
}

void mount_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    AF_UNUSED(datasync);
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->handle = mount_handle_of(fi);
    mount_start_when_room(op, fsyncdir_start);
}

/* ---- readdir ----
 * The operation: op->handle the directory, op->size the kernel's buffer (op->held, filled
 * to op->data_size bytes), op->offset the server index of the next entry wanted,
 * op->flags 1 for readdirplus. */

static void dir_step(mount_op *op);

static void reply_listing(mount_op *op)
{
    fuse_reply_buf(op->req, (const char *)op->held, op->data_size);
    mount_op_end(op);
}

/* Every entry of a new batch goes to the known-names table. */
static void remember_batch(mount_node *dir, const dir_stream *d)
{
    size_t at = 0;
    for (uint64_t i = 0; i < d->count; i++) {
        fs_stat rec;
        char name[FS_CONN_NAME_MAX + 1], full[FS_MAX_PATH_LENGTH + 1];
        at = fs_dir_batch_record(d->batch, at, &rec, name);
        if (node_path(dir, name, full))
            known_names_put('N', full);
    }
}

static void fetched(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    dir_stream *d = op->handle->dir;
    mount_node *dir = op->handle->node;
    fs_status st = r->status;
    if (st == FS_STATUS_SUCCESS && (r->data == 0 || !payload || !fs_dir_batch_valid(payload, DIR_BATCH_BYTES, r->data)))
        st = FS_STATUS_ERROR;
    if (st == FS_STATUS_SUCCESS) {
        memcpy(d->batch, payload, DIR_BATCH_BYTES);
        d->first += d->count;
        d->count = r->data;
        d->walk_index = d->first;
        d->walk_byte = 0;
        remember_batch(dir, d);
        dir_step(op);
        return;
    }
    if (st == FS_STATUS_END_OF_DIRECTORY) {
        d->at_end = true;
        char path[FS_MAX_PATH_LENGTH + 1];
        /* Listed from the start to the end, no name dropped meanwhile: all are known. */
        if (d->whole && d->whole_names_epoch == known_names_epoch() && node_path(dir, NULL, path))
            known_names_put('D', path);
        reply_listing(op);
        return;
    }
    mount_op_fail(op, mount_errno(st));
}

/* Fetch the batch after the current one (the server's cursor stands there). Once the
 * server has said END_OF_DIRECTORY the stream says so itself: the kernel asks once more
 * at the end of every listing, and entries created after opendir need not appear (POSIX)
 * until a rewind. */
static void dir_fetch(mount_op *op)
{
    dir_stream *d = op->handle->dir;
    if (d->at_end) {
        reply_listing(op);
        return;
    }
    if (d->first + d->count == 0) {
        d->whole = true;
        d->whole_names_epoch = known_names_epoch();
    }
    fs_conn_start_readdir_batch(conn(), &op->call, op->handle->fd, DIR_BATCH_BYTES);
    mount_called(op, fetched);
}

static void rewound(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    dir_step(op);
}

/* Back to entry 0 (a seekdir before the batch, or a rewind). Rare. */
static void dir_rewind(mount_op *op)
{
    dir_stream *d = op->handle->dir;
    d->first = 0;
    d->count = 0;
    d->at_end = false;
    d->whole = false;
    fs_conn_start_rewinddir(conn(), &op->call, op->handle->fd);
    mount_called(op, rewound);
}

/* Add one entry; false when it does not fit (the listing is then complete for now). dir:
 * the directory listed, whose entries become nodes (readdirplus); NULL for "." and "..",
 * which get none (node id 0 in the entry) but must carry an inode number (ino), as an
 * entry numbered 0 is one readdir(3) skips. */
static bool add_entry(mount_op *op, const char *name, const fs_stat *rec, mount_node *dir, fuse_ino_t ino,
                      off_t next)
{
    char *at = (char *)op->held + op->data_size;
    size_t room = op->size - op->data_size;
    size_t need;
    if (op->flags) {
        need = fuse_add_direntry_plus(op->req, NULL, 0, name, NULL, 0);
        if (need > room)
            return false;
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        mount_node *node = dir && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 ? node_lookup(dir, name) : NULL;
        if (node)
            mount_fill_entry(node, rec, &e); /* its lookup counts, as the kernel counts it */
        else
            mount_fill_stat(rec, ino, &e.attr);
        fuse_add_direntry_plus(op->req, at, room, name, &e, next);
    } else {
        need = fuse_add_direntry(op->req, NULL, 0, name, NULL, 0);
        if (need > room)
            return false;
        struct stat st;
        mount_fill_stat(rec, ino, &st);
        fuse_add_direntry(op->req, at, room, name, &st, next);
    }
    op->data_size += need;
    return true;
}

static void dir_step(mount_op *op)
{
    dir_stream *d = op->handle->dir;
    uint64_t want = (uint64_t)op->offset;
    for (;;) {
        if (want < d->first) {
            dir_rewind(op);
            return;
        }
        if (want >= d->first + d->count) {
            /* Past the batch: fetch on (skipping forward, after a seekdir). */
            op->offset = (off_t)want;
            dir_fetch(op);
            return;
        }
        if (want < d->walk_index) {
            d->walk_index = d->first;
            d->walk_byte = 0;
        }
        fs_stat rec;
        char name[FS_CONN_NAME_MAX + 1];
        size_t next;
        while ((next = fs_dir_batch_record(d->batch, d->walk_byte, &rec, name)), d->walk_index < want) {
            d->walk_byte = next;
            d->walk_index++;
        }
        /* (Plain readdir: the server's number, unique among the entries, stands in.) */
        if (!add_entry(op, name, &rec, op->handle->node, rec.ino ? rec.ino : 1,
                       (off_t)(want + DIR_FIRST_ENTRY_OFFSET))) {
            reply_listing(op);
            return;
        }
        want++;
    }
}

static void readdir_start(mount_op *op)
{
    dir_stream *d = op->handle->dir;
    fs_stat dot = {.mode = FS_MODE_DIRECTORY | 0755};
    off_t offset = op->offset;
    mount_node *dir = op->handle->node;
    fuse_ino_t up = dir->parent ? dir->parent->id : FUSE_ROOT_ID;
    if (offset < 1 && !add_entry(op, ".", &dot, NULL, dir->id, 1)) {
        reply_listing(op);
        return;
    }
    if (offset < 2 && !add_entry(op, "..", &dot, NULL, up, 2)) {
        reply_listing(op);
        return;
    }
    /* The entry at offset o resumes after it: the next one wanted is o - 2. */
    op->offset = offset < DIR_FIRST_ENTRY_OFFSET ? 0 : offset - DIR_FIRST_ENTRY_OFFSET + 1;
    /* Offset 0 after a listing is a rewinddir: show the directory as it is now. */
    if (offset == 0 && (d->first + d->count > 0 || d->at_end)) {
        dir_rewind(op);
        return;
    }
    dir_step(op);
}

static void list(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
    mount_op *op = mount_op_new(req);
    if (!op)
        return;
    op->handle = mount_handle_of(fi);
    op->size = size;
    op->offset = off;
    op->flags = plus;
    op->held = malloc(size ? size : 1);
    if (!op->held || !op->handle || !op->handle->dir || off < 0) {
        mount_op_fail(op, !op->held ? ENOMEM : EBADF);
        return;
    }
    mount_start_when_room(op, readdir_start);
}

void mount_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    list(req, size, off, fi, false);
}

void mount_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    AF_UNUSED(ino);
    list(req, size, off, fi, true);
}
