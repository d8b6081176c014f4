/* Between POSIX and the protocol: stat records, statuses, open flags, times, name limits
 * (see mount.h). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

int mount_check_name(const char *name)
{
    return name && strlen(name) > FS_MAX_NAME_LENGTH ? ENAMETOOLONG : 0;
}

int mount_errno(fs_status st) { return fs_status_to_errno(st); }

void mount_fill_stat(const fs_stat *in, fuse_ino_t ino, struct stat *out)
{
    memset(out, 0, sizeof *out);
    out->st_ino = ino;
    out->st_mode = (mode_t)in->mode;
    out->st_nlink = (nlink_t)(in->nlink ? in->nlink : 1);
    out->st_uid = mount_ctx.owner_uid;
    out->st_gid = mount_ctx.owner_gid;
    out->st_size = (off_t)in->size;
    out->st_blksize = (blksize_t)(in->blksize ? in->blksize : 4096);
    out->st_blocks = (blkcnt_t)in->blocks;
    out->st_atim.tv_sec = (time_t)in->atime;
    out->st_atim.tv_nsec = (long)in->atime_nsec;
    out->st_mtim.tv_sec = (time_t)in->mtime;
    out->st_mtim.tv_nsec = (long)in->mtime_nsec;
    out->st_ctim.tv_sec = (time_t)in->ctime;
    out->st_ctim.tv_nsec = (long)in->ctime_nsec;
}

uint64_t mount_open_flags(int flags)
{
    uint64_t f;
    switch (flags & O_ACCMODE) {
    case O_WRONLY: f = FS_OPEN_FLAGS_WRITE_ONLY; break;
    case O_RDWR: f = FS_OPEN_FLAGS_READ_WRITE; break;
    default: f = FS_OPEN_FLAGS_READ_ONLY; break;
    }
    if (flags & O_TRUNC)
        f |= FS_OPEN_FLAGS_TRUNCATE;
    if (flags & O_APPEND)
        f |= FS_OPEN_FLAGS_APPEND;
    return f;
}

int64_t mount_time_arg(int to_set, int set_bit, int now_bit, const struct timespec *ts)
{
    if (to_set & now_bit)
        return (int64_t)time(NULL);
    if (!(to_set & set_bit))
        return -1;
    return ts->tv_sec < 0 ? 0 : (int64_t)ts->tv_sec;
}
