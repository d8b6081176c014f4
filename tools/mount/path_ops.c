/* Operations by path: getattr, unlink, mkdir, rmdir, rename, utimens, chmod, chown, statfs
 * (see mount.h). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#define BUSY_RETRIES 200          /* x 5 ms: a racing RELEASEDIR reaches the server first */

int mount_op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    fs_stat rec;
    fs_status status;
    uint64_t pinned;
    if (fi) {
        /* Right after a create, libfuse asks with the new file's fi: the create's reply
         * may already be in the cache under its path. */
        if (path && !hidden_is_name(path) && attr_cache_lookup(path, &rec)) {
            mount_fill_stat(&rec, st);
            return 0;
        }
        uint64_t fd;
        status = mount_file_fd(path, fi, &fd);
        if (status == FS_STATUS_SUCCESS)
            status = fs_conn_fstat(mount_ctx.conn, fd, &rec);
    } else if (path && hidden_is_name(path) && hidden_fd(path, &pinned)) {
        status = fs_conn_fstat(mount_ctx.conn, pinned, &rec);
    } else {
        int err = mount_check_names(path);
        if (err)
            return err;
        if (known_names_absent(path))
            return -ENOENT;
        if (attr_cache_lookup(path, &rec)) {
            mount_fill_stat(&rec, st);
            return 0;
        }
        uint64_t epoch = attr_cache_epoch();
        status = fs_conn_stat(mount_ctx.conn, path, &rec);
        if (status == FS_STATUS_SUCCESS)
            attr_cache_store(path, &rec, epoch);
    }
    if (status != FS_STATUS_SUCCESS)
        return mount_errno(status);
    mount_fill_stat(&rec, st);
    return 0;
}

int mount_op_unlink(const char *path)
{
    if (hidden_is_name(path) && hidden_forget(path))
        return 0;
    int err = mount_check_names(path);
    if (err)
        return err;
    fs_status st = fs_conn_remove(mount_ctx.conn, path);
    attr_cache_changed(false);
    if (st == FS_STATUS_SUCCESS)
        known_names_del('N', path);
    else
        known_names_drop_all();
    return mount_errno(st);
}

int mount_op_mkdir(const char *path, mode_t mode)
{
    AF_UNUSED(mode);
    int err = mount_check_names(path);
    if (err)
        return err;
    fs_status st = fs_conn_mkdir(mount_ctx.conn, path);
    attr_cache_changed(false);
    if (st == FS_STATUS_SUCCESS) {
        known_names_put('N', path);
        known_names_put('D', path); /* new and empty: every name in it is known */
    } else {
        known_names_drop_all();
    }
    return mount_errno(st);
}

/* The kernel may send RELEASEDIR for a directory just read (rm -r) after the rmdir that
 * follows it; the server answers BUSY while the directory is open, so wait for the close. */
static fs_status retry_busy(fs_status st, int attempt)
{
    if (st != FS_STATUS_BUSY || attempt >= BUSY_RETRIES)
        return st;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return FS_STATUS_BUSY;
}

int mount_op_rmdir(const char *path)
{
    int err = mount_check_names(path);
    if (err)
        return err;
    fs_status st;
    int attempt = 0;
    while ((st = retry_busy(fs_conn_rmdir(mount_ctx.conn, path), attempt++)) == FS_STATUS_BUSY &&
           attempt < BUSY_RETRIES)
        ;
    attr_cache_changed(false);
    if (st == FS_STATUS_SUCCESS) {
        known_names_del('D', path);
        known_names_del('N', path);
    } else {
        known_names_drop_all();
    }
    return mount_errno(st);
}

int mount_op_rename(const char *from, const char *to, unsigned int flags)
{
    int err = mount_check_names(from);
    if (!err)
        err = mount_check_names(to);
    if (err)
        return err;
    if (flags & ~(unsigned)RENAME_NOREPLACE)
        return -EINVAL;
    if (hidden_is_name(to) && !flags) {
        fs_status st = hidden_hide(from, to);
        attr_cache_changed(true);
        known_names_drop_all();
        return mount_errno(st);
    }
    if (flags & RENAME_NOREPLACE) {
        fs_stat rec;
        if (fs_conn_stat(mount_ctx.conn, to, &rec) == FS_STATUS_SUCCESS)
            return -EEXIST;
    }
    fs_status st;
    int attempt = 0;
    while ((st = retry_busy(fs_conn_rename(mount_ctx.conn, from, to), attempt++)) == FS_STATUS_BUSY &&
           attempt < BUSY_RETRIES)
        ;
    attr_cache_changed(true);
    known_names_drop_all(); /* names moved, maybe whole directories: start again */
    return mount_errno(st);
}

int mount_op_statfs(const char *path, struct statvfs *out)
{
    AF_UNUSED(path);
    fs_statfs sf;
    fs_status st = fs_conn_statfs(mount_ctx.conn, &sf);
    if (st != FS_STATUS_SUCCESS)
        return mount_errno(st);
    memset(out, 0, sizeof *out);
    out->f_bsize = sf.block_size;
    out->f_frsize = sf.block_size;
    out->f_blocks = sf.blocks;
    out->f_bfree = sf.blocks_free;
    out->f_bavail = sf.blocks_available;
    out->f_files = sf.files;
    out->f_ffree = sf.files_free;
    out->f_namemax = FS_MAX_NAME_LENGTH;
    if (sf.flags & FS_STATFS_READ_ONLY)
        out->f_flag |= ST_RDONLY;
    return 0;
}

int mount_op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    AF_UNUSED(fi);
    /* An unlinked file has no name to set times through, and nothing will show them. */
    if (!path || (hidden_is_name(path) && hidden_fd(path, &(uint64_t){0})))
        return 0;
    int err = mount_check_names(path);
    if (err)
        return err;
    fs_stat rec;
    uint64_t epoch = attr_cache_epoch();
    fs_status st =
        fs_conn_set_times_stat(mount_ctx.conn, path, mount_time_arg(&tv[0]), mount_time_arg(&tv[1]), &rec);
    if (st != FS_STATUS_SUCCESS) {
        attr_cache_changed(false);
        return mount_errno(st);
    }
    /* libfuse asks for the attributes next: they are what the server stored. */
    attr_cache_changed_to(path, &rec, epoch);
    return 0;
}

/* FAT keeps no owner or permission bits: accept and ignore, as vfat's quiet option does,
 * so that cp -a and tar work. */
int mount_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    AF_UNUSED(mode);
    AF_UNUSED(fi);
    return mount_check_names(path);
}

int mount_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    AF_UNUSED(uid);
    AF_UNUSED(gid);
    AF_UNUSED(fi);
    return mount_check_names(path);
}
