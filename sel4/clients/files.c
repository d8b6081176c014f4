/* Whole files with known contents: written in chunks, read back and compared, and listed
 * for the Linux side ("FILE <size> <seed> <path>" lines: sel4/check_disk.py reads each one
 * back from the disk image with mtools and compares it byte for byte). */
#include "sel4/clients/files.h"

bool tc_write_file(const char *path, uint64_t size, uint64_t seed, uint64_t flags, bool sync, char *why,
                   size_t why_size)
{
    uint64_t fd, done;
    uint64_t st = tc_open(path, FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE | flags, &fd);
    if (st != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "open for writing: %s", tc_status_name(st));
        return false;
    }
    uint8_t *buf = tc_area();
    for (uint64_t at = 0; at < size; at += done) {
        size_t n = size - at < TC_CHUNK ? (size_t)(size - at) : TC_CHUNK;
        tc_fill(buf, n, seed, at);
        st = tc_write(fd, at, buf, n, &done);
        if (st != FS_STATUS_SUCCESS || done != n) {
            sddf_snprintf(why, why_size, "write at %lu: %s, %lu of %lu bytes", (unsigned long)at,
                          tc_status_name(st), (unsigned long)done, (unsigned long)n);
            tc_close(fd);
            return false;
        }
    }
    if (sync && (st = tc_sync(fd)) != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "sync: %s", tc_status_name(st));
        tc_close(fd);
        return false;
    }
    if ((st = tc_close(fd)) != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "close: %s", tc_status_name(st));
        return false;
    }
    return true;
}

bool tc_check_file(const char *path, uint64_t size, uint64_t seed, char *why, size_t why_size)
{
    uint64_t fd, done, got;
    uint64_t st = tc_open(path, FS_OPEN_FLAGS_READ_ONLY, &fd);
    if (st != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "open for reading: %s", tc_status_name(st));
        return false;
    }
    bool ok = true;
    if ((st = tc_size(fd, &got)) != FS_STATUS_SUCCESS || got != size) {
        sddf_snprintf(why, why_size, "size %lu (%s), expected %lu", (unsigned long)got, tc_status_name(st),
                      (unsigned long)size);
        ok = false;
    }
    uint8_t *buf = tc_area();
    for (uint64_t at = 0; ok && at < size; at += done) {
        size_t n = size - at < TC_CHUNK ? (size_t)(size - at) : TC_CHUNK;
        st = tc_read(fd, at, buf, n, &done);
        if (st != FS_STATUS_SUCCESS || done != n) {
            sddf_snprintf(why, why_size, "read at %lu: %s, %lu of %lu bytes", (unsigned long)at, tc_status_name(st),
                          (unsigned long)done, (unsigned long)n);
            ok = false;
        } else {
            size_t bad = tc_verify(buf, n, seed, at);
            if (bad != n) {
                sddf_snprintf(why, why_size, "byte %lu differs", (unsigned long)(at + bad));
                ok = false;
            }
        }
    }
    if (ok && (st = tc_read(fd, size, buf, 4096, &done)) != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "read at the end: %s", tc_status_name(st));
        ok = false;
    } else if (ok && done != 0) {
        sddf_snprintf(why, why_size, "read at the end gave %lu bytes", (unsigned long)done);
        ok = false;
    }
    st = tc_close(fd);
    if (ok && st != FS_STATUS_SUCCESS) {
        sddf_snprintf(why, why_size, "close: %s", tc_status_name(st));
        ok = false;
    }
    return ok;
}

void tc_report_file(const char *path, uint64_t size, uint64_t seed)
{
    tc_printf("FILE %lu %lu %s", (unsigned long)size, (unsigned long)seed, path);
}

bool tc_file_round_trip(const char *check, const char *path, uint64_t size, uint64_t seed, bool sync)
{
    char why[160];
    bool ok = tc_write_file(path, size, seed, FS_OPEN_FLAGS_TRUNCATE, sync, why, sizeof(why)) &&
              tc_check_file(path, size, seed, why, sizeof(why));
    if (ok)
        tc_report_file(path, size, seed);
    return tc_expect(ok, check, "%s: %s", path, why);
}
