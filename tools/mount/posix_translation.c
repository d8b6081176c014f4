/* Between POSIX and the protocol: stat records, statuses, open flags, times, name limits
 * (see mount.h). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

int mount_check_names(const char *path)
{
    if (!path)
        return 0;
    size_t run = 0;
    for (const char *p = path; *p; p++) {
        run = *p == '/' ? 0 : run + 1;
        if (run > FS_MAX_NAME_LENGTH)
            return -ENAMETOOLONG;
    }
    return 0;
}

int mount_errno(fs_status st) { return -fs_status_to_errno(st); }

void mount_fill_stat(const fs_stat *in, struct stat *out)
{
    memset(out, 0, sizeof *out);
    out->st_ino = in->ino;
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

int64_t mount_time_arg(const struct timespec *ts)
{
    if (ts->tv_nsec == UTIME_OMIT)
        return -1;
    if (ts->tv_nsec == UTIME_NOW)
        return (int64_t)time(NULL);
    return ts->tv_sec < 0 ? 0 : (int64_t)ts->tv_sec;
}
