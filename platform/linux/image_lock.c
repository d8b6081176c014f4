/* One writer per image: OFD locks, and who holds one (see image_lock.h). */
#include "platform/linux/image_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int image_lock_take(int fd, bool write)
{
    struct flock fl = {.l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
        return 0;
    return errno == EAGAIN || errno == EACCES ? EBUSY : errno;
}

/* Does /proc/PID/fdinfo/FD list an OFD lock? */
static bool fdinfo_has_ofd_lock(const char *pid, const char *fd)
{
    char path[600], line[256];
    snprintf(path, sizeof path, "/proc/%s/fdinfo/%s", pid, fd);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, "lock:", 5) == 0 && strstr(line, "OFDLCK");
    fclose(f);
    return found;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int image_lock_holder(int fd)
{
    struct stat want;
    if (fstat(fd, &want) != 0)
        return 0;
    bool device = S_ISBLK(want.st_mode);
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int holder = 0;
    pid_t self = getpid();
    struct dirent *p;
    while (!holder && (p = readdir(proc))) {
        if (!all_digits(p->d_name) || atoi(p->d_name) == self)
            continue;
        char dir[300];
        snprintf(dir, sizeof dir, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(dir);
        if (!fds)
            continue;
        struct dirent *f;
        while (!holder && (f = readdir(fds))) {
            struct stat st;
            if (!all_digits(f->d_name) || fstatat(dirfd(fds), f->d_name, &st, 0) != 0)
                continue;
            bool same = device ? S_ISBLK(st.st_mode) && st.st_rdev == want.st_rdev
                               : st.st_dev == want.st_dev && st.st_ino == want.st_ino;
            if (same && (device || fdinfo_has_ofd_lock(p->d_name, f->d_name)))
                holder = atoi(p->d_name);
        }
        closedir(fds);
    }
    closedir(proc);
    return holder;
}

int image_lock_probe(const char *path, bool write, int *pid)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    struct flock fl = {.l_type = write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    int rc = 0;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        rc = errno;
    else if (fl.l_type != F_UNLCK)
        rc = EBUSY;
    struct stat st;
    if (rc == 0 && write && fstat(fd, &st) == 0 && S_ISBLK(st.st_mode)) {
        /* A block device may be claimed by something that takes no lock (a mounted file
         * system, another O_EXCL opener): try the claim itself, and let it go. */
        int probe = open(path, O_RDONLY | O_EXCL | O_CLOEXEC);
        if (probe < 0 && errno == EBUSY)
            rc = EBUSY;
        if (probe >= 0)
            close(probe);
    }
    if (rc == EBUSY)
        *pid = image_lock_holder(fd);
    close(fd);
    return rc;
}

void image_lock_busy_message(const char *path, int pid, char *out, size_t size)
{
    if (pid > 0)
        snprintf(out, size, "%s is in use by another asyncfat process (pid %d)", path, pid);
    else
        snprintf(out, size, "%s is in use by another process (mounted, or opened by another asyncfat)", path);
}
