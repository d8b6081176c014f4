/* What the mount asks of the kernel when FUSE starts (INIT): readdirplus always, and how
 * far it reads ahead (see mount.h). */
#include "tools/mount/mount.h"

#include <stdio.h>
#include <string.h>

/* The kernel reads a FUSE file ahead in windows of the backing device's read_ahead_kb,
 * 128 KiB by default, and every window is one READ, one round trip through the server. A
 * sequential read is then bound by round trips, not bytes: a 1 MiB window (what one FUSE
 * request carries, libfuse's max_pages) takes an eighth of them. The kernel lets a FUSE
 * file system lower the window at INIT (max_readahead) but not raise it; the mount raises
 * its own device's in sysfs when it may (as root), before answering INIT. */
#define MOUNT_READAHEAD_BYTES (1u << 20)
#define MOUNT_BACKGROUND 128u

/* The mount's "major:minor" from /proc/self/mountinfo (paths there escape space, tab,
 * newline and backslash as octal). */
static bool mount_device(const char *point, char *dev, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[8192];
    dev[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char majmin[64], where[4096];
        if (sscanf(line, "%*s %*s %63s %*s %4095s", majmin, where) != 2)
            continue;
        char plain[4096];
        size_t n = 0;
        for (const char *p = where; *p && n + 1 < sizeof plain; n++) {
            if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
                plain[n] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                p += 4;
            } else {
                plain[n] = *p++;
            }
        }
        plain[n] = '\0';
        /* The last matching line: a mount over an earlier one on the same directory. */
        if (strcmp(plain, point) == 0 && strlen(majmin) < cap)
            snprintf(dev, cap, "%s", majmin);
    }
    fclose(f);
    return dev[0] != '\0';
}

static void raise_readahead(struct fuse_conn_info *info)
{
    char dev[64] = "";
    if (!mount_ctx.mount_point || !mount_device(mount_ctx.mount_point, dev, sizeof dev))
        return;
    char knob[128];
    snprintf(knob, sizeof knob, "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *f = fopen(knob, "w");
    if (!f)
        return; /* not root: the kernel's 128 KiB stays */
    bool ok = fprintf(f, "%u\n", MOUNT_READAHEAD_BYTES / 1024u) > 0;
    ok = fclose(f) == 0 && ok;
    /* INIT's reply caps the window at max_readahead: ask for as much. */
    if (ok && info->max_readahead < MOUNT_READAHEAD_BYTES)
        info->max_readahead = MOUNT_READAHEAD_BYTES;
}

void mount_ll_init(void *userdata, struct fuse_conn_info *info)
{
    AF_UNUSED(userdata);
    /* Readdirplus on every directory read, not only the first (the kernel's adaptive mode
     * falls back to plain readdir and then looks every name up one by one). */
    info->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    raise_readahead(info);
    /* Requests the kernel sends without a thread waiting for each (readahead, asynchronous
     * direct I/O: fio's io_uring at 32 in flight) stop at max_background, 12 by default: the
     * one thread here serves many more at once. */
    if (info->max_background < MOUNT_BACKGROUND)
        info->max_background = MOUNT_BACKGROUND;
    if (info->congestion_threshold < MOUNT_BACKGROUND * 3 / 4)
        info->congestion_threshold = MOUNT_BACKGROUND * 3 / 4;
    /* While mounted, every change to the volume comes through this mount, so through the
     * kernel, which updates or drops what it cached (names it created or removed, sizes it
     * wrote, attributes after a write or a read): what it caches stays true, and can be kept
     * long (MOUNT_TIMEOUT_S in every entry and attribute reply; the file pages stay from one
     * open to the next: keep_cache in every open). (Another server on the same image at the
     * same time would corrupt it anyway.) */
}
