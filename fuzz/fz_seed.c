/* fz_seed: mkfs.fat and mtools steps, and timestamp normalisation. */
#include "fuzz/fz_seed.h"

#include "base/base.h"
#include "fat/fat_layout.h"
#include "fuzz/fz_image.h"
#include "fuzz/fz_proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool fz_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || s[0] == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool fz_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || s[0] == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return false;
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': mult = 1ull << 10; end++; break;
    case 'M': case 'm': mult = 1ull << 20; end++; break;
    case 'G': case 'g': mult = 1ull << 30; end++; break;
    default: return false;
    }
    if (*end)
        return false;
    *out = v * mult;
    return true;
}

void fz_fill_pattern(uint8_t *buf, size_t len, const char *key)
{
    uint64_t s = fz_hash(key, strlen(key), 0x5eed);
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            s += 0x9e3779b97f4a7c15ull;
            uint64_t z = s;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            s ^= z >> 31;
        }
        buf[i] = (uint8_t)(s >> (8 * (i % 8)));
    }
}

static int run_tool(char **argv, char *err, size_t err_size)
{
    fz_proc_result r;
    if (fz_proc_run(argv, NULL, 60, &r) != 0) {
        snprintf(err, err_size, "cannot run %s", argv[0]);
        return -1;
    }
    int rc = r.timed_out || r.signal || r.exit_code ? -1 : 0;
    if (rc)
        snprintf(err, err_size, "%s failed: %.300s%.300s", argv[0], r.out, r.err);
    fz_proc_result_free(&r);
    return rc;
}

int fz_seed_mkfs(const char *image, int argc, char **argv, char *err, size_t err_size)
{
    uint64_t bytes;
    if (argc < 1 || !fz_parse_size(argv[argc - 1], &bytes) || bytes < 64 * 1024 || bytes % 1024) {
        snprintf(err, err_size, "mkfs: the last argument must be a size in whole KiB");
        return -1;
    }
    remove(image);
    char kib[32];
    snprintf(kib, sizeof kib, "%llu", (unsigned long long)(bytes / 1024));
    char *args[64];
    int n = 0;
    args[n++] = "mkfs.fat";
    args[n++] = "-C";
    args[n++] = "--invariant";
    for (int i = 0; i < argc - 1 && n < 60; i++)
        args[n++] = argv[i];
    args[n++] = (char *)image;
    args[n++] = kib;
    args[n] = NULL;
    return run_tool(args, err, err_size);
}

static void image_arg(char *out, size_t size, const char *path)
{
    snprintf(out, size, "::%s", path);
}

int fz_seed_dir(const char *image, const char *path, char *err, size_t err_size)
{
    char target[4200];
    image_arg(target, sizeof target, path);
    char *args[] = {"mmd", "-i", (char *)image, target, NULL};
    return run_tool(args, err, err_size);
}

int fz_seed_file(const char *image, const char *workdir, const char *path, uint64_t size, char *err,
                 size_t err_size)
{
    char local[4200], target[4200];
    snprintf(local, sizeof local, "%s/seed-file.tmp", workdir);
    uint8_t *data = malloc(size ? size : 1);
    if (!data)
        return -1;
    fz_fill_pattern(data, size, path);
    int rc = fz_write_file(local, data, size);
    free(data);
    if (rc != 0) {
        snprintf(err, err_size, "cannot write %s", local);
        return -1;
    }
    image_arg(target, sizeof target, path);
    char *args[] = {"mcopy", "-i", (char *)image, local, target, NULL};
    rc = run_tool(args, err, err_size);
    remove(local);
    return rc;
}

/* 2020-01-01 12:00:00 in FAT encoding. */
#define FIXED_DATE ((uint16_t)(((2020 - 1980) << 9) | (1 << 5) | 1))
#define FIXED_TIME ((uint16_t)(12 << 11))

static void normalize_dir(fz_view *v, uint32_t cluster, unsigned depth, uint32_t *seen, size_t *seen_count)
{
    if (depth > 32 || *seen_count >= 4096)
        return;
    for (size_t i = 0; i < *seen_count; i++)
        if (seen[i] == cluster)
            return;
    seen[(*seen_count)++] = cluster;
    fz_dir d;
    if (!fz_dir_read(v, cluster, &d))
        return;
    for (size_t i = 0; i < d.count; i++) {
        uint8_t *e = v->img + d.entries[i].offset;
        e[FAT_DIRENT_CREATE_10MS] = 0;
        af_store_le16(e + FAT_DIRENT_CREATE_TIME, FIXED_TIME);
        af_store_le16(e + FAT_DIRENT_CREATE_DATE, FIXED_DATE);
        af_store_le16(e + FAT_DIRENT_ACCESS_DATE, FIXED_DATE);
        af_store_le16(e + FAT_DIRENT_WRITE_TIME, FIXED_TIME);
        af_store_le16(e + FAT_DIRENT_WRITE_DATE, FIXED_DATE);
        if (d.entries[i].is_dir && !d.entries[i].is_dot && d.entries[i].cluster)
            normalize_dir(v, d.entries[i].cluster, depth + 1, seen, seen_count);
    }
    /* The volume label is left out of listings; its time is mkfs.fat's (--invariant). */
    fz_dir_free(&d);
}

bool fz_seed_normalize(uint8_t *img, size_t len)
{
    fz_view v;
    if (!fz_view_init(&v, img, len))
        return false;
    uint32_t *seen = malloc(4096 * sizeof(uint32_t));
    size_t seen_count = 0;
    if (seen)
        normalize_dir(&v, fz_root_cluster(&v), 0, seen, &seen_count);
    free(seen);
    return true;
}

uint8_t *fz_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    /* One allocation of the file's size (images are tens of MiB: no growing buffer). */
    struct stat st;
    size_t cap = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    size_t size = 0;
    for (;;) {
        size += buf ? fread(buf + size, 1, cap - size, f) : 0;
        int more = buf && size == cap ? fgetc(f) : EOF;
        if (more == EOF)
            break;
        /* The file grew while it was read: take the rest too. */
        uint8_t *grown = realloc(buf, cap * 2 + 65536);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap = cap * 2 + 65536;
        buf[size++] = (uint8_t)more;
    }
    fclose(f);
    if (buf)
        *len = size;
    return buf;
}

int fz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(data, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}
