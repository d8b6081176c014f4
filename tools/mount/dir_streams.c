/* Open directories (see mount.h).
 *
 * Entries go to libfuse with offsets (1 ".", 2 "..", then n + 3 for the server's n-th
 * entry), which is what makes libfuse pass readdirplus attributes on to the kernel: it does
 * so only for offset-mode listings, and with them `ls -l` or `rm -r` needs no LOOKUP per
 * entry. Entries come from the server a buffer at a time (DIR_READ_BATCH); the handle keeps
 * the last batch, entries [first, first + count), so the kernel's next call usually
 * continues from it, and the server's cursor stands after its last entry. The kernel
 * serialises readdir calls on one open directory (its position lock). fi->fh stays the
 * server's fd, as for files, so that whatever libfuse hands a directory's fi to sees a
 * server fd; the handle is found by that fd. */
#include "tools/mount/mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DIR_BATCH_BYTES (16u * 1024u)
#define DIR_FIRST_ENTRY_OFFSET 3   /* offsets 1 and 2 are "." and ".." */

typedef struct dir_handle {
    uint64_t fd;               /* the server's */
    uint64_t first;            /* index of the batch's first entry */
    uint64_t count;            /* entries in the batch */
    uint64_t walk_index;       /* the entry at walk_byte in batch: where the last call stopped */
    size_t walk_byte;
    bool at_end;               /* the server said END_OF_DIRECTORY after the batch */
    bool whole;                /* the server's cursor has moved from entry 0 without a seek */
    uint64_t whole_names_epoch; /* the known names' epoch when it started there */
    uint64_t rename_epoch;     /* the attribute cache's rename epoch at opendir: while
                                * unchanged, path is right */
    struct dir_handle *link;
    uint8_t batch[DIR_BATCH_BYTES];
    char path[];               /* as opened, for the attribute and name caches */
} dir_handle;

static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;
static dir_handle *open_dirs;      /* few at once: one per directory being listed */

static dir_handle *dir_of(const struct fuse_file_info *fi)
{
    pthread_mutex_lock(&dirs_lock);
    dir_handle *d = open_dirs;
    while (d && d->fd != fi->fh)
        d = d->link;
    pthread_mutex_unlock(&dirs_lock);
    return d;
}

int mount_op_opendir(const char *path, struct fuse_file_info *fi)
{
    int err = mount_check_names(path);
    if (err)
        return err;
    size_t len = strlen(path);
    dir_handle *d = calloc(1, sizeof *d + len + 1);
    if (!d)
        return -ENOMEM;
    memcpy(d->path, path, len + 1);
    d->rename_epoch = attr_cache_rename_epoch();
    fs_status st = fs_conn_opendir(mount_ctx.conn, path, &d->fd);
    if (st != FS_STATUS_SUCCESS) {
        free(d);
        return mount_errno(st);
    }
    pthread_mutex_lock(&dirs_lock);
    d->link = open_dirs;
    open_dirs = d;
    pthread_mutex_unlock(&dirs_lock);
    fi->fh = d->fd;
    return 0;
}

int mount_op_releasedir(const char *path, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    pthread_mutex_lock(&dirs_lock);
    for (dir_handle **p = &open_dirs; *p; p = &(*p)->link) {
        if ((*p)->fd == fi->fh) {
            dir_handle *d = *p;
            *p = d->link;
            free(d);
            break;
        }
    }
    pthread_mutex_unlock(&dirs_lock);
    return mount_errno(fs_conn_closedir(mount_ctx.conn, fi->fh));
}

/* The full path of a listed entry into `full`; false if it does not fit. */
static bool entry_path(const dir_handle *d, const char *name, char *full, size_t cap)
{
    bool root = strcmp(d->path, "/") == 0;
    int n = snprintf(full, cap, "%s/%s", root ? "" : d->path, name);
    return n > 0 && (size_t)n < cap;
}

/* Every entry of a new batch: its record for the getattr that often follows (tar, ls -l),
 * and its name for the known-names table. Not while a rename may have made the path
 * stale (those records would be filed under the wrong name). */
static void remember_batch(const dir_handle *d, uint64_t epoch)
{
    if (d->rename_epoch != attr_cache_rename_epoch())
        return;
    size_t at = 0;
    for (uint64_t i = 0; i < d->count; i++) {
        fs_stat rec;
        char name[FS_CONN_NAME_MAX + 1];
        char full[FS_MAX_PATH_LENGTH + FS_CONN_NAME_MAX + 3];
        at = fs_dir_batch_record(d->batch, at, &rec, name);
        if (entry_path(d, name, full, sizeof full)) {
            attr_cache_store(full, &rec, epoch);
            known_names_put('N', full);
        }
    }
}

/* Fetch the batch after the current one (the server's cursor stands there). Once the
 * server has said END_OF_DIRECTORY the handle says so itself: the kernel asks once more
 * at the end of every listing, and entries created after opendir need not appear
 * (POSIX) until a rewind. */
static fs_status dir_fetch(dir_handle *d)
{
    if (d->at_end)
        return FS_STATUS_END_OF_DIRECTORY;
    if (d->first + d->count == 0) {
        /* Listing from the start: if it reaches the end with no name dropped meanwhile,
         * every name in the directory has been seen. */
        d->whole = true;
        d->whole_names_epoch = known_names_epoch();
    }
    uint64_t epoch = attr_cache_epoch();
    uint64_t n = 0;
    fs_status st = fs_conn_readdir_batch(mount_ctx.conn, d->fd, d->batch, DIR_BATCH_BYTES, &n);
    if (st == FS_STATUS_SUCCESS) {
        d->first += d->count;
        d->count = n;
        d->walk_index = d->first;
        d->walk_byte = 0;
        remember_batch(d, epoch);
    } else if (st == FS_STATUS_END_OF_DIRECTORY) {
        d->at_end = true;
        bool complete = d->whole && d->whole_names_epoch == known_names_epoch() &&
                        d->rename_epoch == attr_cache_rename_epoch();
        if (complete)
            known_names_put('D', d->path);
    }
    return st;
}

/* Back to entry 0 (a seekdir before the batch, or a rewind). Rare. */
static fs_status dir_rewind(dir_handle *d)
{
    d->first = 0;
    d->count = 0;
    d->at_end = false;
    d->whole = false;
    return fs_conn_rewinddir(mount_ctx.conn, d->fd);
}

int mount_op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
                     enum fuse_readdir_flags flags)
{
    AF_UNUSED(path);
    dir_handle *d = dir_of(fi);
    if (!d)
        return -EBADF;
    enum fuse_fill_dir_flags fill = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0;
    struct stat s;
    memset(&s, 0, sizeof s);
    s.st_mode = S_IFDIR | 0755;
    if (offset < 1 && filler(buf, ".", &s, 1, 0) != 0)
        return 0;
    if (offset < 2 && filler(buf, "..", &s, 2, 0) != 0)
        return 0;
    /* The entry at offset o resumes after it: the next one wanted is o - 2. */
    uint64_t want = offset < DIR_FIRST_ENTRY_OFFSET ? 0 : (uint64_t)offset - DIR_FIRST_ENTRY_OFFSET + 1;
    fs_status st = FS_STATUS_SUCCESS;
    /* Offset 0 after a listing is a rewinddir: show the directory as it is now. */
    if (offset == 0 && (d->first + d->count > 0 || d->at_end) && (st = dir_rewind(d)) != FS_STATUS_SUCCESS)
        return mount_errno(st);
    for (;;) {
        if (want < d->first) {
            if ((st = dir_rewind(d)) != FS_STATUS_SUCCESS)
                break;
            continue;
        }
        if (want >= d->first + d->count) {
            /* Past the batch: fetch on (skipping forward, after a seekdir). */
            if ((st = dir_fetch(d)) != FS_STATUS_SUCCESS)
                break;
            continue;
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
        mount_fill_stat(&rec, &s);
        if (filler(buf, name, &s, (off_t)(want + DIR_FIRST_ENTRY_OFFSET), fill) != 0)
            return 0;
        want++;
    }
    return st == FS_STATUS_END_OF_DIRECTORY ? 0 : mount_errno(st);
}

int mount_op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    AF_UNUSED(datasync);
    AF_UNUSED(fi);
    return 0;
}
