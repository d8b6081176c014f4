/* Roles crash_writer and crash_check: a cut while writing and syncing.
 *
 * crash_writer: four fibers write files of 4 KiB .. 260 KiB under /crash (in two
 * directories, some renamed from one to the other after their sync), each synced, and
 * print "SYNCED <size> <seed> <path>" once the sync has completed. It never stops: the test
 * kills the machine at a moment of its choosing.
 *
 * crash_check, on the next boot: the volume mounts; every file under /crash reads without
 * an error, is no longer than its name says, and holds the right bytes for as long as it is
 * (data reaches the disk before the entry that makes it reachable); the volume takes new
 * files and removals. That everything reported SYNCED is complete is checked on Linux
 * (sel4/test_sel4.sh reads it back with mtools).
 */
#include "sel4/clients/files.h"

#define WRITERS 4u
#define ROUNDS_EACH 100000u

static void writer(uint32_t w, void *unused)
{
    char path[96], moved[96], why[160];
    for (uint32_t r = 0; r < ROUNDS_EACH; r++) {
        uint32_t round = r * WRITERS + w;
        uint64_t size = 4096u * (1 + (round * 7u) % 64u) + round % 97u;
        uint64_t seed = 90000u + round;
        sddf_snprintf(path, sizeof(path), "/crash/a/r%05u_fill_%lu_%lu.bin", (unsigned)round, (unsigned long)seed,
                      (unsigned long)size);
        if (!tc_write_file(path, size, seed, 0, true, why, sizeof(why))) {
            tc_fail("crash_writer_round", "%s: %s", path, why);
            return;
        }
        if (round % 5 == 4) {
            sddf_snprintf(moved, sizeof(moved), "/crash/b/r%05u_fill_%lu_%lu.bin", (unsigned)round,
                          (unsigned long)seed, (unsigned long)size);
            uint64_t st = tc_rename(path, moved);
            if (st != FS_STATUS_SUCCESS) {
                tc_fail("crash_writer_rename", "%s: %s", path, tc_status_name(st));
                return;
            }
            /* the rename is durable only after a sync of the volume: sync another file */
            uint64_t fd;
            if (tc_open(moved, FS_OPEN_FLAGS_READ_ONLY, &fd) == FS_STATUS_SUCCESS) {
                tc_sync(fd);
                tc_close(fd);
            }
            af_memcpy(path, moved, sizeof(path));
        }
        tc_printf("SYNCED %lu %lu %s", (unsigned long)size, (unsigned long)seed, path);
    }
}

void tc_role_crash_writer(void)
{
    tc_mkdir("/crash");
    tc_mkdir("/crash/a");
    tc_mkdir("/crash/b");
    tc_printf("crash writer: writing");
    tc_parallel(WRITERS, WRITERS, writer, NULL);
}

static bool fill_name(const char *name, uint64_t *seed, uint64_t *size)
{
    const char *at = NULL;
    for (const char *s = name; *s; s++)
        if (af_memcmp(s, "fill_", 5) == 0)
            at = s + 5;
    if (!at)
        return false;
    uint64_t v[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        if (*at < '0' || *at > '9')
            return false;
        while (*at >= '0' && *at <= '9')
            v[i] = v[i] * 10 + (uint64_t)(*at++ - '0');
        if (*at++ != (i == 0 ? '_' : '.'))
            return false;
    }
    *seed = v[0];
    *size = v[1];
    return true;
}

static void check_dir(const char *dir, uint32_t *files, uint32_t *good, char *why, size_t why_size)
{
    uint64_t fd;
    if (tc_opendir(dir, &fd) != FS_STATUS_SUCCESS)
        return;
    char name[256], path[384];
    uint64_t st;
    /* positions stay valid while files are opened elsewhere; read one entry, check it, go on */
    while ((st = tc_readdir(fd, name, sizeof(name))) == FS_STATUS_SUCCESS) {
        uint64_t seed, size;
        if (!fill_name(name, &seed, &size))
            continue;
        tc_join(path, sizeof(path), dir, "/", name);
        (*files)++;
        uint64_t ffd, on_disk = 0, done;
        uint64_t s = tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &ffd);
        if (s == FS_STATUS_SUCCESS)
            s = tc_size(ffd, &on_disk);
        bool ok = s == FS_STATUS_SUCCESS && on_disk <= size;
        uint8_t *buf = tc_area();
        for (uint64_t at = 0; ok && at < on_disk; at += done) {
            size_t n = on_disk - at < TC_CHUNK ? (size_t)(on_disk - at) : TC_CHUNK;
            s = tc_read(ffd, at, buf, n, &done);
            ok = s == FS_STATUS_SUCCESS && done == n && tc_verify(buf, n, seed, at) == n;
        }
        tc_close(ffd);
        if (ok)
            (*good)++;
        else
            sddf_snprintf(why, why_size, "%s: %s, %lu bytes on disk", path, tc_status_name(s),
                          (unsigned long)on_disk);
    }
    tc_closedir(fd);
}

void tc_role_crash_check(void)
{
    uint32_t files = 0, good = 0;
    char why[200] = "";
    check_dir("/crash/a", &files, &good, why, sizeof(why));
    check_dir("/crash/b", &files, &good, why, sizeof(why));
    tc_expect(files > 0 && good == files, "crash_files_read_back", "%u files, %u good; %s", (unsigned)files,
              (unsigned)good, why);
    bool ok = tc_write_file("/crash/after_the_cut.bin", 123456, 4242, 0, true, why, sizeof(why)) &&
              tc_check_file("/crash/after_the_cut.bin", 123456, 4242, why, sizeof(why));
    if (ok)
        tc_report_file("/crash/after_the_cut.bin", 123456, 4242);
    tc_expect(ok, "crash_volume_writable_after_the_cut", "%s", why);
}
