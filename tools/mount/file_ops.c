/* Operations on open files: open, create, read, write, truncate, fsync, release (see
 * mount.h). fi->fh is the server's fd, or a read handle for a read-only open. */
#include "tools/mount/mount.h"

#include <errno.h>
#include <fcntl.h>

int mount_op_open(const char *path, struct fuse_file_info *fi)
{
    int err = mount_check_names(path);
    if (err)
        return err;
    /* Most files opened for reading are read next, from the start: a read handle. */
    if ((fi->flags & (O_ACCMODE | O_TRUNC)) == O_RDONLY)
        return mount_errno(read_handle_open(path, fi->flags, fi));
    uint64_t fd;
    fs_status st = fs_conn_open_file(mount_ctx.conn, path, mount_open_flags(fi->flags), &fd);
    if (fi->flags & O_TRUNC)
        attr_cache_changed(false);
    if (st != FS_STATUS_SUCCESS)
        return mount_errno(st);
    fi->fh = fd;
    return 0;
}

int mount_op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    AF_UNUSED(mode);
    int err = mount_check_names(path);
    if (err)
        return err;
    uint64_t flags = mount_open_flags(fi->flags) | FS_OPEN_FLAGS_CREATE;
    if (fi->flags & O_EXCL)
        flags |= FS_OPEN_FLAGS_EXCLUSIVE;
    uint64_t fd;
    fs_stat rec;
    uint64_t epoch = attr_cache_epoch();
    fs_status st = fs_conn_open_stat(mount_ctx.conn, path, flags, &fd, &rec);
    if (st != FS_STATUS_SUCCESS) {
        attr_cache_changed(false);
        known_names_drop_all(); /* the name may exist now, or not */
        return mount_errno(st);
    }
    attr_cache_changed_to(path, &rec, epoch);
    known_names_put('N', path);
    fi->fh = fd;
    return 0;
}

int mount_op_release(const char *path, struct fuse_file_info *fi)
{
    AF_UNUSED(path);
    return mount_errno(mount_file_release(fi));
}

int mount_op_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    if (offset < 0)
        return -EINVAL;
    int answered = read_handle_read(fi, buf, size, offset);
    if (answered >= 0)
        return answered;
    uint64_t fd;
    fs_status st = mount_file_fd(path, fi, &fd);
    if (st != FS_STATUS_SUCCESS)
        return mount_errno(st);
    size_t got;
    st = fs_conn_pread(mount_ctx.conn, fd, (uint64_t)offset, buf, size, &got);
    return st == FS_STATUS_SUCCESS ? (int)got : mount_errno(st);
}

int mount_op_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi)
{
    if (offset < 0)
        return -EINVAL;
    uint64_t fd;
    fs_status st = mount_file_fd(path, fi, &fd);
    if (st != FS_STATUS_SUCCESS)
        return mount_errno(st);
    size_t put;
    st = fs_conn_pwrite(mount_ctx.conn, fd, (uint64_t)offset, buf, size, &put);
    attr_cache_changed(false);
    /* A short write reports what was written; the next one reports the error. */
    if (put > 0 || st == FS_STATUS_SUCCESS)
        return (int)put;
    return mount_errno(st);
}

int mount_op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (size < 0)
        return -EINVAL;
    if (fi) {
        uint64_t fd;
        fs_status st = mount_file_fd(path, fi, &fd);
        if (st == FS_STATUS_SUCCESS)
            st = fs_conn_truncate(mount_ctx.conn, fd, (uint64_t)size);
        attr_cache_changed(false);
        return mount_errno(st);
    }
    int err = mount_check_names(path);
    if (err)
        return err;
    uint64_t fd;
    fs_status st = fs_conn_open_file(mount_ctx.conn, path, FS_OPEN_FLAGS_WRITE_ONLY, &fd);
    if (st != FS_STATUS_SUCCESS)
        return mount_errno(st);
    st = fs_conn_truncate(mount_ctx.conn, fd, (uint64_t)size);
    attr_cache_changed(false);
    fs_status closed = fs_conn_close_file(mount_ctx.conn, fd);
    return mount_errno(st != FS_STATUS_SUCCESS ? st : closed);
}

int mount_op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    AF_UNUSED(datasync);
    uint64_t fd;
    fs_status st = mount_file_fd(path, fi, &fd);
    return mount_errno(st == FS_STATUS_SUCCESS ? fs_conn_sync(mount_ctx.conn, fd) : st);
}
