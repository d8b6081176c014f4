/* The server's fds as a cache under the kernel's open files (see mount.h).
 *
 * The mount is one client of the server, which gives a client FS_SERVER_MAX_FDS fds; the
 * kernel may hold any number of files open (tar -x keeps many, as releases come late).
 * So a file handle's server fd is only a cache: handles that hold one are kept in use
 * order, and when the mount holds more than its budget, or the server answers an open
 * with TOO_MANY_OPEN_FILES, the least recently used idle one is closed. A handle without
 * an fd opens its file again by its node's path when an operation needs one
 * (mount_with_fd), with the access mode it was opened with, or borrows the pin of an
 * unlinked file. Directory handles keep theirs (a listing's position lives in it). */
#include "tools/mount/mount.h"

#include "server/server.h"

/* Left for directory fds, pins and the opens in flight (truncate by path, pins). */
#define FD_CACHE_BUDGET (FS_SERVER_MAX_FDS - 16u)

static struct {
    uint32_t held;                 /* handles holding an fd of their own, and pins */
    uint32_t files;                /* open file handles, with an fd or not */
    mount_handle *oldest, *newest; /* file handles holding one, by last use */
} cache;

static void unlink_lru(mount_handle *h)
{
    if (h->lru_prev)
        h->lru_prev->lru_next = h->lru_next;
    else if (cache.oldest == h)
        cache.oldest = h->lru_next;
    if (h->lru_next)
        h->lru_next->lru_prev = h->lru_prev;
    else if (cache.newest == h)
        cache.newest = h->lru_prev;
    h->lru_prev = h->lru_next = NULL;
}

static void append_lru(mount_handle *h)
{
    h->lru_prev = cache.newest;
    h->lru_next = NULL;
    if (cache.newest)
        cache.newest->lru_next = h;
    else
        cache.oldest = h;
    cache.newest = h;
}

/* The least recently used file handle whose fd no operation uses and whose file can be
 * found again (by name, or through its pin); NULL if none. */
static mount_handle *victim(void)
{
    for (mount_handle *h = cache.oldest; h; h = h->lru_next)
        if (h->fd_users == 0 && (h->node->linked || h->node->pinned))
            return h;
    return NULL;
}

/* Take the handle's fd away; the caller closes it. */
static uint64_t take_fd(mount_handle *h)
{
    unlink_lru(h);
    h->cached = false;
    h->has_fd = false;
    cache.held--;
    return h->fd;
}

void fd_close_in_background(uint64_t fd, bool dir)
{
    mount_op *op = mount_op_new(NULL);
    if (!op)
        return; /* the server closes it at DEINITIALISE */
    if (dir)
        fs_conn_start_closedir(&mount_ctx.conn, &op->call, fd);
    else
        fs_conn_start_close(&mount_ctx.conn, &op->call, fd);
    mount_called(op, mount_then_end);
}

void fd_cache_attach(mount_handle *h)
{
    if (!h->has_fd || h->borrowed || h->cached)
        return;
    h->cached = true;
    cache.held++;
    if (!h->is_dir)
        append_lru(h);
    while (cache.held > FD_CACHE_BUDGET) {
        mount_handle *v = victim();
        if (!v)
            break;
        fd_close_in_background(take_fd(v), false);
    }
}

void fd_cache_handle_added(mount_handle *h)
{
    if (!h->is_dir)
        cache.files++;
    fd_cache_attach(h);
}

void fd_cache_handle_removed(mount_handle *h)
{
    if (!h->is_dir)
        cache.files--;
    fd_cache_detach(h);
}

void fd_cache_count_pin(bool added)
{
    if (added)
        cache.held++;
    else
        cache.held--;
}

uint32_t fd_cache_open_files(void) { return cache.files; }

void fd_cache_detach(mount_handle *h)
{
    if (!h->cached)
        return;
    if (!h->is_dir)
        unlink_lru(h);
    h->cached = false;
    cache.held--;
}

void fd_cache_use(mount_op *op)
{
    mount_handle *h = op->handle;
    op->fd = h->fd;
    if (!op->uses_fd) {
        op->uses_fd = true;
        h->fd_users++;
    }
    if (h->cached && !h->is_dir && cache.newest != h) {
        unlink_lru(h);
        append_lru(h);
    }
}

void fd_cache_done(mount_op *op)
{
    if (op->uses_fd && op->handle)
        op->handle->fd_users--;
    op->uses_fd = false;
}

static void evicted(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(r);
    AF_UNUSED(payload);
    op->after_evict(op);
}

bool fd_cache_evict(mount_op *op, void (*then)(mount_op *op))
{
    mount_handle *v = victim();
    if (!v || op->attempts++ >= 8)
        return false;
    op->after_evict = then;
    fs_conn_start_close(&mount_ctx.conn, &op->call, take_fd(v));
    mount_called(op, evicted);
    return true;
}
