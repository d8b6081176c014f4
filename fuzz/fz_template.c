/* fz_template: the libFuzzer targets' seed images and their input windows. */
#include "fuzz/fz_template.h"

#include "fuzz/fz_recipe.h"
#include "fuzz/fz_seed.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The same tree on every template: directories first, so that they get the lowest
 * clusters and fall in the data window; short names, long names of one and of several
 * slots, mixed case, an empty file, a directory that spans clusters. */
#define TEMPLATE_TREE                                                        \
    "dir /sub\n"                                                            \
    "dir /sub/deeper\n"                                                     \
    "dir \"/Long Directory Name\"\n"                                         \
    "dir /sub/deeper/d3\n"                                                  \
    "file /readme.txt 100\n"                                                \
    "file \"/a much longer name that needs several lfn slots.bin\" 600\n"    \
    "file /sub/a.txt 700\n"                                                 \
    "file \"/sub/Mixed Case.Text\" 1500\n"                                   \
    "file /sub/deeper/x.bin 3000\n"                                         \
    "file \"/Long Directory Name/inner file.dat\" 40\n"                      \
    "file /sub/deeper/d3/empty.txt 0\n"                                     \
    "files /sub/f 12 20\n"

static const fz_template_spec templates[FZ_TEMPLATE_COUNT] = {
    {"fat12", 512, "mkfs -F 12 -s 1 -r 32 -n FUZZ12 1M\n" TEMPLATE_TREE},
    {"fat16", 512, "mkfs -F 16 -s 1 -r 64 -n FUZZ16 4M\n" TEMPLATE_TREE},
    {"fat32", 512, "mkfs -F 32 -s 1 -n FUZZ32 34M\n" TEMPLATE_TREE},
    {"fat16s4k", 4096, "mkfs -F 16 -S 4096 -s 1 -r 128 -n FUZZ4K 20M\n" TEMPLATE_TREE},
};

const fz_template_spec *fz_template_find(const char *name)
{
    for (unsigned i = 0; i < FZ_TEMPLATE_COUNT; i++)
        if (strcmp(templates[i].name, name) == 0)
            return &templates[i];
    return NULL;
}

const fz_template_spec *fz_template_at(unsigned index)
{
    return index < FZ_TEMPLATE_COUNT ? &templates[index] : NULL;
}

static uint32_t min32(uint64_t a, uint64_t b) { return (uint32_t)(a < b ? a : b); }

size_t fz_windows(const fz_layout *L, unsigned mask, fz_window out[5])
{
    size_t n = 0;
    uint64_t bps = L->bytes_per_sector;
    if (mask & FZ_WIN_BOOT)
        out[n++] = (fz_window){"boot", 0, min32((uint64_t)(L->reserved_sectors < 8 ? L->reserved_sectors : 8) * bps, 4096)};
    if (mask & FZ_WIN_FAT0)
        out[n++] = (fz_window){"fat0", L->fat_offset, min32(L->fat_bytes, 1024)};
    if ((mask & FZ_WIN_FAT1) && L->fat_count > 1)
        out[n++] = (fz_window){"fat1", L->fat_offset + L->fat_bytes, min32(L->fat_bytes, 1024)};
    if ((mask & FZ_WIN_ROOT) && L->type != 32)
        out[n++] = (fz_window){"root", L->root_offset, min32(L->root_bytes, 2048)};
    if (mask & FZ_WIN_DATA)
        out[n++] = (fz_window){"data", L->data_offset,
                               min32((uint64_t)L->cluster_count * L->cluster_bytes,
                                     L->cluster_bytes <= 512 ? 12288 : 4ull * L->cluster_bytes > 16384 ? 16384
                                                                                                        : 4ull * L->cluster_bytes)};
    return n;
}

uint8_t *fz_input_from_image(const fz_layout *template_layout, const uint8_t *img, size_t img_len, unsigned mask,
                             uint8_t selector, size_t *len)
{
    fz_window w[5];
    size_t n = fz_windows(template_layout, mask, w);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += w[i].length;
    uint8_t *in = calloc(1, total);
    if (!in)
        return NULL;
    in[0] = selector;
    size_t at = 1;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < w[i].length; k++)
            in[at + k] = w[i].offset + k < img_len ? img[w[i].offset + k] : 0;
        at += w[i].length;
    }
    *len = total;
    return in;
}

static void remove_tree(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/image.img", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/seed-file.tmp", dir);
    remove(path);
    rmdir(dir);
}

/* $ASYNCFAT_FUZZ_TEMPLATES, or "templates" beside the running program. */
static void cache_dir(char *out, size_t size)
{
    const char *env = getenv("ASYNCFAT_FUZZ_TEMPLATES");
    if (env && *env) {
        snprintf(out, size, "%s", env);
    } else {
        char exe[500];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(out, size, "%s/templates", n > 0 ? exe : ".");
    }
    mkdir(out, 0755);
}

static uint8_t *map_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    *len = (size_t)st.st_size;
    return p;
}

/* Run the seed lines in a scratch directory; the image is written to `dest`. */
static int build_into(const char *name, const char *seed_lines, const char *dest)
{
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/asyncfat-seed-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fz_cached_image: mkdtemp");
        return -1;
    }
    setenv("MTOOLS_SKIP_CHECK", "1", 1);
    fz_build b;
    fz_build_init(&b, dir);
    fz_recipe r;
    char err[1024] = "";
    int rc = fz_recipe_parse(seed_lines, name, &r, err, sizeof err);
    if (rc == 0) {
        for (size_t i = 0; rc == 0 && i < r.count; i++)
            rc = fz_build_step(&b, &r.lines[i], err, sizeof err) == 1 ? 0 : -1;
        fz_recipe_free(&r);
    }
    size_t len = 0;
    const uint8_t *img = rc == 0 ? fz_build_image(&b, &len) : NULL;
    char part[720];
    snprintf(part, sizeof part, "%s.%d", dest, (int)getpid());
    if (!img || fz_write_file(part, img, len) != 0 || rename(part, dest) != 0) {
        fprintf(stderr, "fz_cached_image: %s: %s\n", name, err[0] ? err : "cannot build or store it");
        remove(part);
        rc = -1;
    }
    fz_build_fini(&b);
    remove_tree(dir);
    return rc;
}

uint8_t *fz_cached_image(const char *name, const char *seed_lines, uint16_t salt, size_t *len, char *path,
                         size_t path_size)
{
    char cache[600];
    cache_dir(cache, sizeof cache);
    snprintf(path, path_size, "%s/%s-%016llx.img", cache, name,
             (unsigned long long)fz_hash(seed_lines, strlen(seed_lines), salt));
    uint8_t *img = map_file(path, len);
    if (!img && build_into(name, seed_lines, path) == 0)
        img = map_file(path, len);
    return img;
}

int fz_templates_build(fz_template out[FZ_TEMPLATE_COUNT])
{
    for (unsigned i = 0; i < FZ_TEMPLATE_COUNT; i++) {
        fz_template *t = &out[i];
        memset(t, 0, sizeof *t);
        t->spec = &templates[i];
        t->image = fz_cached_image(templates[i].name, templates[i].seed, templates[i].sector_size, &t->bytes, t->path,
                                   sizeof t->path);
        if (!t->image || t->bytes % 4096 != 0 || !fz_layout_read(t->image, t->bytes, &t->L)) {
            fprintf(stderr, "fz_templates_build: no usable template %s (%s)\n", templates[i].name, t->path);
            return -1;
        }
    }
    return 0;
}

void fz_templates_free(fz_template t[FZ_TEMPLATE_COUNT])
{
    for (unsigned i = 0; i < FZ_TEMPLATE_COUNT; i++)
        if (t[i].image)
            munmap(t[i].image, t[i].bytes);
}

static const fz_target_info targets[] = {
    {"bpb", FZ_WIN_BOOT},
    {"dir", FZ_WIN_FAT0 | FZ_WIN_ROOT | FZ_WIN_DATA},
    {"check", FZ_WIN_BOOT | FZ_WIN_FAT0 | FZ_WIN_FAT1 | FZ_WIN_ROOT | FZ_WIN_DATA},
    {"server", 0},
};

const fz_target_info *fz_target_find(const char *name)
{
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(targets[i].name, name) == 0)
            return &targets[i];
    return NULL;
}
