/* Files opened for reading (see mount.h).
 *
 * Opening a file to read it is an open, then a read at offset 0, then a close (tar, cat,
 * cp: most files are small). A read-only open gets a read_handle (fi->fh is its address
 * with READ_HANDLE_BIT set) holding the file's first bytes, which the open fetched in the
 * same round trip: OPEN_READ (open, record, first bytes), or for a file the attribute
 * cache knows to be small, READ_PATH (the same without keeping the file open on the
 * server, so neither the open nor the close costs a further round trip). The bytes answer
 * the kernel's first READ if it lies inside them (or they are the whole file) and nothing
 * on the volume changed since the open was sent (the attribute cache's epoch: every change
 * through the mount advances it, so they are still the file's bytes). Then they are
 * dropped: the kernel's page cache keeps what was read. Anything else that needs a server
 * fd (a later read, fstat, fsync) opens the file then, by the path libfuse gives (it
 * follows renames; a file unlinked since is one of the hidden ones, pinned by our own fd),
 * so a handle behaves as an fd opened at open time would. */
#include "tools/mount/mount.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define OPEN_READ_BYTES (64u * 1024u)   /* data asked for with each read-only open */
#define READ_HANDLE_BIT (1ull << 63)     /* server fds are below 2^32 */

typedef struct read_handle {
    pthread_mutex_t lock;
    bool has_fd;
    bool borrowed;             /* fd is a hidden file's pin: not ours to close */
    uint64_t fd;               /* the server's, once has_fd */
    uint8_t *bytes;            /* the first bytes; NULL once used */
    size_t len;
    bool whole;                /* they are the whole file */
    uint64_t epoch;            /* the attribute cache's epoch when the open was sent */
} read_handle;

static read_handle *read_handle_of(const struct fuse_file_info *fi)
{
    return (fi->fh & READ_HANDLE_BIT) ? (read_handle *)(uintptr_t)(fi->fh & ~READ_HANDLE_BIT) : NULL;
}

fs_status read_handle_open(const char *path, int flags, struct fuse_file_info *fi)
{
    fs_stat rec;
    bool small = attr_cache_lookup(path, &rec) && (rec.mode & FS_MODE_TYPE_MASK) == FS_MODE_REGULAR &&
                 rec.size <= OPEN_READ_BYTES;
    read_handle *h = calloc(1, sizeof *h);
    uint8_t *bytes = malloc(OPEN_READ_BYTES);
    if (!h || !bytes) {
        free(h);
        free(bytes);
        return FS_STATUS_ALLOCATION_ERROR;
    }
    uint64_t epoch = attr_cache_epoch();
    size_t got = 0;
    fs_status st = small ? fs_conn_read_path(mount_ctx.conn, path, &rec, bytes, OPEN_READ_BYTES, &got)
                         : fs_conn_open_read(mount_ctx.conn, path, mount_open_flags(flags), &h->fd, &rec, bytes,
                                             OPEN_READ_BYTES, &got);
    if (st != FS_STATUS_SUCCESS) {
        free(bytes);
        free(h);
        return st;
    }
    h->has_fd = !small;
    h->epoch = epoch;
    h->len = got;
    h->whole = got == rec.size;
    h->bytes = realloc(bytes, got ? got : 1);
    if (!h->bytes)
        h->bytes = bytes;
    pthread_mutex_init(&h->lock, NULL);
    attr_cache_store(path, &rec, epoch);
    fi->fh = READ_HANDLE_BIT | (uint64_t)(uintptr_t)h;
    return FS_STATUS_SUCCESS;
}

int read_handle_read(const struct fuse_file_info *fi, char *buf, size_t size, off_t offset)
{
    read_handle *h = read_handle_of(fi);
    if (!h)
        return -1;
    pthread_mutex_lock(&h->lock);
    uint8_t *bytes = h->bytes;
    h->bytes = NULL;
    pthread_mutex_unlock(&h->lock);
    if (!bytes)
        return -1;
    int got = -1;
    uint64_t end = (uint64_t)offset + size;
    if (h->epoch == attr_cache_epoch() && size <= INT_MAX && (end <= h->len || h->whole)) {
        size_t n = (uint64_t)offset >= h->len ? 0 : h->len - (size_t)offset;
        if (n > size)
            n = size;
        if (n > 0)
            memcpy(buf, bytes + offset, n);
        got = (int)n;
    }
    free(bytes);
    return got;
}

fs_status mount_file_fd(const char *path, const struct fuse_file_info *fi, uint64_t *fd)
{
    read_handle *h = read_handle_of(fi);
    if (!h) {
        *fd = fi->fh;
        return FS_STATUS_SUCCESS;
    }
    fs_status st = FS_STATUS_SUCCESS;
    pthread_mutex_lock(&h->lock);
    if (!h->has_fd) {
        if (!path)
            st = FS_STATUS_INVALID_FD;
        else if (hidden_is_name(path) && hidden_fd(path, &h->fd))
            h->borrowed = true; /* unlinked since: read through our pin, which outlives us */
        else
            st = fs_conn_open_file(mount_ctx.conn, path, FS_OPEN_FLAGS_READ_ONLY, &h->fd);
        h->has_fd = st == FS_STATUS_SUCCESS;
    }
    *fd = h->fd;
    pthread_mutex_unlock(&h->lock);
    return st;
}

fs_status mount_file_release(const struct fuse_file_info *fi)
{
    read_handle *h = read_handle_of(fi);
    if (!h)
        return fs_conn_close_file(mount_ctx.conn, fi->fh);
    fs_status st = h->has_fd && !h->borrowed ? fs_conn_close_file(mount_ctx.conn, h->fd) : FS_STATUS_SUCCESS;
    pthread_mutex_destroy(&h->lock);
    free(h->bytes);
    free(h);
    return st;
}
