/* fz_target: shared set-up and helpers of the libFuzzer targets. */
#include "fuzz/fz_target.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fz_template templates[FZ_TEMPLATE_COUNT];
static fz_rig rigs[FZ_TEMPLATE_COUNT];
static void *arenas[FZ_TEMPLATE_COUNT];
static bool ready;

void fz_target_setup(void)
{
    if (ready)
        return;
    if (fz_templates_build(templates) != 0) {
        fprintf(stderr, "fuzz: cannot build the templates (mkfs.fat and mtools needed)\n");
        abort();
    }
    for (unsigned i = 0; i < FZ_TEMPLATE_COUNT; i++)
        if (fz_rig_init(&rigs[i], templates[i].image, templates[i].bytes, templates[i].spec->sector_size,
                        templates[i].path) != 0)
            abort();
    ready = true;
}

const fz_template *fz_target_template(unsigned index)
{
    fz_target_setup();
    return &templates[index % FZ_TEMPLATE_COUNT];
}

bool fz_target_load(const uint8_t *data, size_t size, unsigned windows, bool read_only, fz_image_input *in)
{
    fz_target_setup();
    if (size == 0)
        return false;
    in->template_index = (data[0] & FZ_SELECT_TEMPLATE_MASK) % FZ_TEMPLATE_COUNT;
    in->flags = (uint8_t)(data[0] >> 2);
    in->rig = &rigs[in->template_index];
    in->tmpl = &templates[in->template_index];
    if (fz_rig_begin(in->rig, read_only) != 0)
        abort();
    fz_window w[5];
    size_t n = fz_windows(&in->tmpl->L, windows, w);
    size_t at = 1;
    for (size_t i = 0; i < n && at < size; i++) {
        size_t take = size - at < w[i].length ? size - at : w[i].length;
        fz_rig_overlay(in->rig, w[i].offset, data + at, take);
        at += take;
    }
    return true;
}

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return 1700000000;
}

fat_config fz_target_fat_config(const fz_rig *rig)
{
    unsigned index = (unsigned)(rig - rigs);
    fat_config cfg = fat_config_defaults();
    cfg.clock = fixed_clock;
    cfg.max_nodes = 24;
    cfg.runs_per_node = 4;
    cfg.index_entries = 256;
    size_t bytes = fat_memory_total(&cfg, rig->image_bytes);
    if (index < FZ_TEMPLATE_COUNT) {
        if (!arenas[index])
            arenas[index] = malloc(bytes);
        if (!fat_config_place_memory(&cfg, rig->image_bytes, arenas[index], bytes))
            abort();
    }
    return cfg;
}

static bool name_is_walkable(const char *name, size_t len)
{
    if (len == 0 || (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] == '/' || name[i] == '\0')
            return false;
    return true;
}

static void walk_dir(fat_volume *vol, char *path, size_t path_len, uint32_t depth, uint32_t max_depth,
                     uint32_t *budget, fz_walk_stats *s)
{
    fat_node *dir;
    vfs_status st = fat_opendir(vol, path, path_len, &dir);
    if (st != VFS_OK) {
        s->corrupt += st == VFS_CORRUPT;
        s->errors++;
        return;
    }
    s->dirs++;
    uint64_t pos = 0;
    char name[FAT_READDIR_NAME_MAX];
    while (*budget > 0) {
        size_t name_len = 0;
        vfs_stat ds;
        st = fat_readdir(dir, &pos, name, &name_len, &ds);
        if (st == VFS_END_OF_DIRECTORY)
            break;
        if (st != VFS_OK) {
            s->corrupt += st == VFS_CORRUPT;
            s->errors++;
            break;
        }
        (*budget)--;
        s->entries++;
        if (!name_is_walkable(name, name_len) || path_len + 1 + name_len >= 4000)
            continue;
        size_t child_len = path_len;
        path[child_len++] = '/';
        memcpy(path + child_len, name, name_len);
        child_len += name_len;
        vfs_stat cs;
        st = fat_stat(vol, path, child_len, &cs);
        if (st == VFS_NO_FILE) {
            if (s->lookup_misses++ == 0)
                snprintf(s->first_miss, sizeof s->first_miss, "%.*s", (int)child_len, path);
        } else if (st != VFS_OK) {
            s->corrupt += st == VFS_CORRUPT;
            s->errors++;
        }
        bool is_dir = (ds.mode & VFS_MODE_TYPE_MASK) == VFS_MODE_DIRECTORY;
        if (is_dir) {
            if (depth + 1 < max_depth)
                walk_dir(vol, path, child_len, depth + 1, max_depth, budget, s);
        } else {
            s->files++;
            fat_node *f;
            st = fat_open(vol, path, child_len, VFS_OPEN_READ_ONLY, &f);
            if (st == VFS_OK) {
                uint8_t buf[4096];
                size_t done = 0;
                for (uint64_t off = 0; off < 8192; off += sizeof buf) {
                    st = fat_read(f, off, buf, sizeof buf, &done);
                    if (st != VFS_OK || done < sizeof buf)
                        break;
                }
                if (st != VFS_OK) {
                    s->corrupt += st == VFS_CORRUPT;
                    s->errors++;
                }
                fat_close(f);
            } else {
                s->corrupt += st == VFS_CORRUPT;
                s->errors++;
            }
        }
    }
    fat_close(dir);
}

void fz_walk_tree(fat_volume *vol, uint32_t budget, uint32_t max_depth, fz_walk_stats *out)
{
    memset(out, 0, sizeof *out);
    char *path = malloc(4096);
    if (!path)
        return;
    walk_dir(vol, path, 0, 0, max_depth, &budget, out);
    free(path);
}

void *fz_target_work(size_t size)
{
    static void *work;
    static size_t capacity;
    if (size > capacity) {
        free(work);
        capacity = size;
        work = malloc(capacity);
        if (!work)
            abort();
    }
    return work;
}

static bool skipped(const char *message)
{
    const char *skip = getenv("ASYNCFAT_FUZZ_SKIP");
    if (skip && strcmp(skip, "*") == 0)
        return true;
    while (skip && *skip) {
        size_t n = strcspn(skip, "|");
        if (n > 0) {
            char piece[256];
            snprintf(piece, sizeof piece, "%.*s", (int)n, skip);
            if (strstr(message, piece))
                return true;
        }
        skip += n + (skip[n] == '|');
    }
    return false;
}

void fz_oracle_failed(const char *target, const char *fmt, ...)
{
    char message[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (skipped(message)) {
        if (getenv("ASYNCFAT_FUZZ_VERBOSE"))
            fprintf(stderr, "ORACLE (skipped) %s: %s\n", target, message);
        return;
    }
    fprintf(stderr, "ORACLE %s: %s\n", target, message);
    abort();
}
