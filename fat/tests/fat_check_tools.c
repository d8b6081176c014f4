/* Helpers for the checker's tests (hosted: libc, system()). */
#include "fat/tests/fat_check_tools.h"

#include "fat/fat_layout.h"
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool check_echo;

/* ---- images that are mostly zeros ---------------------------------------------------------- */

static const uint8_t zero_block[BLK_TRANSFER_SIZE];

static size_t block_len(size_t at, size_t len)
{
    return len - at < BLK_TRANSFER_SIZE ? len - at : BLK_TRANSFER_SIZE;
}

void copy_sparse(uint8_t *dst, const uint8_t *src, size_t len)
{
    for (size_t at = 0; at < len; at += BLK_TRANSFER_SIZE) {
        size_t n = block_len(at, len);
        if (memcmp(src + at, zero_block, n) != 0)
            memcpy(dst + at, src + at, n);
    }
}

bool image_save(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = true;
    for (size_t at = 0; at < len && ok; at += BLK_TRANSFER_SIZE) {
        size_t n = block_len(at, len);
        if (memcmp(data + at, zero_block, n) != 0)
            ok = fseek(f, (long)at, SEEK_SET) == 0 && fwrite(data + at, 1, n, f) == n;
    }
    ok = ok && fflush(f) == 0 && ftruncate(fileno(f), (off_t)len) == 0;
    return fclose(f) == 0 && ok;
}

/* The blocks the device wrote since log entry `from`, copied into data[len] (or, with
 * `file`, written into it): the rest is as it was. */
static bool copy_written(const blk_fixture *f, uint64_t from, uint8_t *data, size_t len, FILE *file)
{
    for (uint64_t i = from; i < f->dev.log_count; i++) {
        const ram_device_log_entry *e = &f->dev.log[i];
        if (e->code != BLK_REQ_WRITE)
            continue;
        for (uint32_t b = 0; b < e->written; b++) {
            size_t at = (size_t)(e->block + b) * BLK_TRANSFER_SIZE;
            if (at >= len)
                continue;
            size_t n = block_len(at, len);
            if (file && (fseek(file, (long)at, SEEK_SET) != 0 || fwrite(f->image + at, 1, n, file) != n))
                return false;
            if (!file)
                memcpy(data + at, f->image + at, n);
        }
    }
    return true;
}

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    if (check_echo)
        printf("  check: %s\n", msg);
}

typedef struct check_job {
    uint32_t repairs;
    check_run *run;
} check_job;

static void check_task(blk_fixture *f, void *arg)
{
    check_job *j = arg;
    check_run *run = j->run;
    run->status = fat_check_volume_find(&f->stack.cache, 0, &run->vol);
    if (run->status != VFS_OK)
        return;
    size_t need = fat_check_memory_needed(&run->vol.geo);
    void *work = malloc(need);
    fat_check_options o = {.repairs = j->repairs, .work = work, .work_size = need, .log = log_line};
    run->status = fat_check_run(&f->stack.cache, &run->vol, &o, &run->r);
    free(work);
}

/* Runs the checker on the fixture's device; with repairs != 0 the caller saves the result. */
static bool check_fixture(blk_fixture *f, uint32_t repairs, check_run *run)
{
    memset(run, 0, sizeof *run);
    uint64_t writes_before = f->dev.log_count;
    check_job j = {repairs, run};
    bool ok = EXPECT(fixture_call(f, check_task, &j));
    for (uint64_t i = writes_before; i < f->dev.log_count; i++)
        run->writes += f->dev.log[i].code == BLK_REQ_WRITE;
    return ok;
}

bool device_load(blk_fixture *f, const uint8_t *data, size_t len)
{
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = len;
    fo.cache_buffers = 64;
    fo.fibers = 4; /* one check at a time: not 64 painted stacks per device */
    if (!EXPECT(blk_fixture_init(f, &fo) == 0))
        return false;
    copy_sparse(f->image, data, len);
    return true;
}

/* device_load from a file, read a piece at a time. */
static bool device_load_file(blk_fixture *f, const char *path)
{
    struct stat st;
    FILE *file = fopen(path, "rb");
    if (!EXPECT(file != NULL) || !EXPECT(fstat(fileno(file), &st) == 0)) {
        if (file)
            fclose(file);
        return false;
    }
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = (uint64_t)st.st_size;
    fo.cache_buffers = 64;
    fo.fibers = 4; /* one check at a time: not 64 painted stacks per device */
    bool ok = EXPECT(blk_fixture_init(f, &fo) == 0);
    enum { PIECE = 1u << 20 };
    uint8_t *piece = ok ? malloc(PIECE) : NULL;
    for (size_t at = 0; ok && at < (size_t)st.st_size; at += PIECE) {
        size_t n = (size_t)st.st_size - at < PIECE ? (size_t)st.st_size - at : PIECE;
        ok = EXPECT(fread(piece, 1, n, file) == n);
        if (ok)
            copy_sparse(f->image + at, piece, n);
    }
    free(piece);
    fclose(file);
    if (!ok && f->image)
        blk_fixture_fini(f);
    return ok;
}

/* ---- devices that know their live blocks ---- */

static bool live_bit(const uint8_t *live, size_t b)
{
    return live[b / 8] & (1u << (b % 8));
}

static void live_set(uint8_t *live, size_t b)
{
    live[b / 8] |= (uint8_t)(1u << (b % 8));
}

static size_t blocks_of(size_t len)
{
    return (len + BLK_TRANSFER_SIZE - 1) / BLK_TRANSFER_SIZE;
}

uint8_t *live_blocks(const uint8_t *data, size_t len)
{
    uint8_t *live = calloc(1, blocks_of(len) / 8 + 1);
    for (size_t b = 0; b < blocks_of(len); b++) {
        size_t at = b * BLK_TRANSFER_SIZE;
        if (memcmp(data + at, zero_block, block_len(at, len)) != 0)
            live_set(live, b);
    }
    return live;
}

static void live_note_writes(live_device *d);

bool live_load_changed(live_device *d, const uint8_t *base, const uint8_t *base_live, uint8_t *changed, size_t len)
{
    size_t map = blocks_of(len) / 8 + 1;
    if (d->live && d->blocks == blocks_of(len)) {
        /* reused: back to `base` where it may differ, a fresh log and cache */
        live_note_writes(d);
        for (size_t b = 0; b < d->blocks; b++) {
            size_t at = b * BLK_TRANSFER_SIZE;
            if (!live_bit(d->live, b))
                continue;
            if (live_bit(base_live, b))
                memcpy(d->f.image + at, base + at, block_len(at, len));
            else
                memset(d->f.image + at, 0, block_len(at, len));
        }
        ram_device_clear_log(&d->f.dev);
        blk_cache_invalidate(&d->f.stack.cache);
    } else {
        blk_fixture_options fo = blk_fixture_defaults();
        fo.image_bytes = len;
        fo.cache_buffers = 64;
        fo.fibers = 4; /* one check at a time: not 64 painted stacks per device */
        if (!EXPECT(blk_fixture_init(&d->f, &fo) == 0))
            return false;
        d->blocks = blocks_of(len);
        d->live = malloc(map);
        copy_sparse(d->f.image, base, len);
    }
    memcpy(d->live, base_live, map);
    for (size_t b = 0; b < d->blocks; b++) {
        size_t at = b * BLK_TRANSFER_SIZE, n = block_len(at, len);
        if (memcmp(changed + at, base + at, n) == 0)
            continue;
        live_set(d->live, b);
        memcpy(d->f.image + at, changed + at, n);
        memcpy(changed + at, base + at, n);
    }
    return true;
}

/* Adds the blocks the device wrote to its live set. */
static void live_note_writes(live_device *d)
{
    for (uint64_t i = 0; i < d->f.dev.log_count; i++) {
        const ram_device_log_entry *e = &d->f.dev.log[i];
        for (uint32_t b = 0; e->code == BLK_REQ_WRITE && b < e->written; b++)
            if (e->block + b < d->blocks)
                live_set(d->live, (size_t)(e->block + b));
    }
}

bool live_save(live_device *d, const char *path)
{
    live_note_writes(d);
    size_t len = d->f.image_bytes;
    FILE *f = fopen(path, "wb");
    bool ok = EXPECT(f != NULL);
    for (size_t b = 0; ok && b < d->blocks; b++) {
        size_t at = b * BLK_TRANSFER_SIZE, n = block_len(at, len);
        if (live_bit(d->live, b))
            ok = EXPECT(fseek(f, (long)at, SEEK_SET) == 0 && fwrite(d->f.image + at, 1, n, f) == n);
    }
    ok = ok && EXPECT(fflush(f) == 0 && ftruncate(fileno(f), (off_t)len) == 0);
    return f && fclose(f) == 0 && ok;
}

size_t live_first_difference(live_device *d, const uint8_t *data, size_t len)
{
    live_note_writes(d);
    if (d->f.image_bytes != len)
        return 0;
    for (size_t b = 0; b < d->blocks; b++) {
        size_t at = b * BLK_TRANSFER_SIZE, n = block_len(at, len);
        if (!live_bit(d->live, b) || memcmp(d->f.image + at, data + at, n) == 0)
            continue;
        while (d->f.image[at] == data[at])
            at++;
        return at;
    }
    return len;
}

void live_fini(live_device *d)
{
    if (d->live)
        blk_fixture_fini(&d->f);
    free(d->live);
    d->live = NULL;
}

bool check_device_ok(blk_fixture *f, uint32_t repairs, check_run *run)
{
    return check_fixture(f, repairs, run) && EXPECT(run->status == VFS_OK);
}

bool check_memory_ok(uint8_t *data, size_t len, uint32_t repairs, check_run *run)
{
    blk_fixture f;
    if (!device_load(&f, data, len))
        return false;
    bool ok = check_device_ok(&f, repairs, run);
    if (ok && repairs != 0)
        copy_written(&f, 0, data, len, NULL);
    blk_fixture_fini(&f);
    return ok;
}

bool check_image(const char *img, uint32_t repairs, check_run *run)
{
    blk_fixture f;
    if (!device_load_file(&f, img))
        return false;
    bool ok = check_fixture(&f, repairs, run);
    if (ok && repairs != 0) {
        FILE *file = fopen(img, "r+b");
        ok = EXPECT(file != NULL) && EXPECT(copy_written(&f, 0, NULL, f.image_bytes, file));
        if (file)
            ok = EXPECT(fclose(file) == 0) && ok;
    }
    blk_fixture_fini(&f);
    return ok;
}

bool check_image_ok(const char *img, uint32_t repairs, check_run *run)
{
    return check_image(img, repairs, run) && EXPECT(run->status == VFS_OK);
}

bool fsck_silent(const char *img, bool echo)
{
    char *out = tool_output("PATH=$PATH:/usr/sbin:/sbin fsck.fat -n '%s' 2>&1; echo \"rc=$?\"", img);
    if (!out)
        return false;
    bool silent = true;
    for (char *line = out, *next; *line; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        if (strncmp(line, "fsck.fat ", 9) == 0 || strncmp(line, "rc=0", 4) == 0)
            continue;
        if (strncmp(line, img, strlen(img)) == 0 && strstr(line, " files, ") && strstr(line, " clusters"))
            continue;
        silent = false;
    }
    if (!silent && echo)
        printf("fsck.fat -n %s said:\n%s", img, out);
    free(out);
    return silent;
}

static void write_pattern(const char *path, size_t size, uint8_t seed)
{
    uint8_t *b = malloc(size + 1);
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 31 + seed);
    file_write_all(path, b, size);
    free(b);
}

static bool build_tree(const char *img, const char *mkfs_args, long kib)
{
    const char *tree = tmp_path("tree");
    if (tool_run(false, "rm -rf '%s' && mkdir -p '%s/SUB/DEEP1/DEEP2/DEEP3' '%s/MANY' '%s/A long dir name'", tree,
                 tree, tree, tree) != 0)
        return false;
    static const struct {
        const char *name;
        size_t size;
    } files[] = {
        {"BIG.BIN", 40000}, {"MED.BIN", 9000}, {"SMALL.TXT", 100}, {"EMPTY.TXT", 0},
        {"A long name file.txt", 3000}, {"SUB/INNER.TXT", 5000}, {"SUB/DEEP1/DEEP2/DEEP3/LEAF.DAT", 70000},
        {"SUB/Another long name.data", 1}, {"A long dir name/inside.txt", 2000},
    };
    char p[600];
    for (size_t i = 0; i < AF_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/%s", tree, files[i].name);
        write_pattern(p, files[i].size, (uint8_t)i);
    }
    for (int i = 0; i < (int)TREE_MANY; i++) {
        snprintf(p, sizeof p, "%s/MANY/file number %03d.txt", tree, i);
        write_pattern(p, (size_t)(i * 13), (uint8_t)i);
    }
    remove(img);
    return EXPECT(tool_run(false, "mkfs.fat -C %s '%s' %ld", mkfs_args, img, kib) == 0) &&
           EXPECT(tool_run(false, "cd '%s' && mcopy -s -i '%s' BIG.BIN MED.BIN SMALL.TXT EMPTY.TXT "
                                  "'A long name file.txt' SUB MANY ::/",
                           tree, img) == 0) &&
           EXPECT(tool_run(false, "mmd -i '%s' ::/EMPTYDIR", img) == 0) &&
           EXPECT(tool_run(false, "cd '%s' && mcopy -s -i '%s' 'A long dir name' ::/", tree, img) == 0) &&
           EXPECT(fsck_silent(img, true));
}

bool tree_image(const char *img, const char *mkfs_args, long kib)
{
    char key[64];
    size_t n = 0;
    for (const char *p = mkfs_args; *p && n < 40; p++)
        key[n++] = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
    snprintf(key + n, sizeof key - n, "_%ld.tree", kib);
    const char *base = tmp_path(key);
    FILE *f = fopen(base, "rb");
    if (f)
        fclose(f);
    else if (!build_tree(base, mkfs_args, kib))
        return false;
    return EXPECT(tool_run(false, "cp --sparse=always '%s' '%s'", base, img) == 0);
}

bool tree_extract(const char *img, const char *dir)
{
    return EXPECT(tool_run(false, "rm -rf '%s' && mkdir -p '%s' && mcopy -s -n -i '%s' '::/*' '%s/'", dir, dir, img,
                           dir) == 0);
}

char *tree_diff(const char *a, const char *b)
{
    char *out = tool_output("diff -rq '%s' '%s' 2>&1", a, b);
    if (!out)
        return NULL;
    size_t len = strlen(out), la = strlen(a), lb = strlen(b);
    char *paths = calloc(1, len + 1), *w = paths;
    for (char *line = out, *next; *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        else
            next = line + strlen(line);
        const char *p = NULL, *name = NULL;
        if (strncmp(line, "Files ", 6) == 0 && strncmp(line + 6, a, la) == 0) {
            p = line + 6 + la + 1;
            char *end = strstr(line, " and ");
            if (end)
                *end = '\0';
        } else if (strncmp(line, "Only in ", 8) == 0) {
            char *dir = line + 8, *colon = strstr(dir, ": ");
            if (!colon)
                continue;
            *colon = '\0';
            name = colon + 2;
            p = strncmp(dir, a, la) == 0 ? dir + la : strncmp(dir, b, lb) == 0 ? dir + lb : dir;
            if (*p == '/')
                p++;
        } else {
            p = line; /* anything else is reported as it is */
        }
        w += sprintf(w, "%s%s%s\n", p, name && *p ? "/" : "", name ? name : "");
    }
    free(out);
    return paths;
}

/* ---- raw image edits ---------------------------------------------------------------------- */

uint32_t raw_nth_cluster(raw_image *img, uint32_t first, uint32_t n)
{
    uint32_t cl = first;
    for (uint32_t i = 0; i < n; i++)
        cl = raw_fat_get(img, 0, cl);
    return cl;
}

uint32_t raw_last_cluster(raw_image *img, uint32_t first)
{
    uint32_t cl = first;
    for (;;) {
        uint32_t next = raw_fat_get(img, 0, cl);
        if (next < 2 || next > img->g.max_cluster)
            return cl;
        cl = next;
    }
}

void raw_fat_set_all(raw_image *img, uint32_t cl, uint32_t v)
{
    for (uint32_t c = 0; c < img->g.fat_count; c++)
        raw_fat_set(img, c, cl, v);
}

uint32_t raw_free_cluster(raw_image *img, uint32_t from)
{
    for (uint32_t cl = from < 2 ? 2 : from; cl <= img->g.max_cluster; cl++) {
        if (raw_fat_get(img, 0, cl) == 0)
            return cl;
    }
    return 0;
}

uint8_t *raw_dir_entry(raw_image *img, uint32_t dir_cluster, const char *name11)
{
    if (dir_cluster == 0 && img->g.type != FAT_TYPE_32)
        return raw_root_entry(img, name11);
    uint32_t cl = dir_cluster ? dir_cluster : img->g.root_cluster;
    for (uint32_t hops = 0; hops <= img->g.max_cluster && cl >= 2 && cl <= img->g.max_cluster; hops++) {
        uint8_t *e = img->data + fat_cluster_offset(&img->g, cl);
        for (uint32_t i = 0; i < img->g.bytes_per_cluster / 32; i++, e += 32) {
            if (e[0] == 0)
                return NULL;
            if (memcmp(e, name11, 11) == 0 && e[11] != FAT_ATTR_LONG_NAME)
                return e;
        }
        cl = raw_fat_get(img, 0, cl);
    }
    return NULL;
}

uint8_t *raw_path_entry(raw_image *img, const char *path)
{
    uint32_t dir = 0;
    uint8_t *e = NULL;
    for (const char *p = path;; p += 12) {
        e = raw_dir_entry(img, dir, p);
        if (!e || p[11] != '/')
            return e;
        dir = raw_entry_cluster(img, e);
    }
}

uint8_t *raw_lfn_before(raw_image *img, uint8_t *entry)
{
    size_t off = (size_t)(entry - img->data);
    bool in_cluster = off >= img->g.data_offset;
    size_t unit = in_cluster ? img->g.bytes_per_cluster : img->g.root_entries * 32u;
    size_t start = in_cluster ? img->g.data_offset : img->g.root_dir_offset;
    if ((off - start) % unit == 0)
        return NULL;
    uint8_t *prev = entry - 32;
    return prev[11] == FAT_ATTR_LONG_NAME && prev[0] != FAT_DIRENT_DELETED ? prev : NULL;
}

static void raw_dirent(raw_image *img, uint8_t *e, const char *name11, uint8_t attr, uint32_t cl, uint32_t size)
{
    memset(e, 0, 32);
    memcpy(e, name11, 11);
    e[FAT_DIRENT_ATTR] = attr;
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, (uint16_t)cl);
    if (img->g.type == FAT_TYPE_32)
        af_store_le16(e + FAT_DIRENT_CLUSTER_HI, (uint16_t)(cl >> 16));
    af_store_le16(e + FAT_DIRENT_WRITE_DATE, (uint16_t)((44u << 9) | (1u << 5) | 1u)); /* 2024-01-01 */
    af_store_le32(e + FAT_DIRENT_SIZE_BYTES, size);
}

/* The first free entry slot of a one-cluster directory (or the fixed root). */
static uint8_t *raw_free_slot(raw_image *img, uint32_t dir_cluster)
{
    size_t n;
    uint8_t *e;
    if (dir_cluster == 0) {
        e = raw_root_entries(img, &n);
    } else {
        e = img->data + fat_cluster_offset(&img->g, dir_cluster);
        n = img->g.bytes_per_cluster / 32;
    }
    for (size_t i = 0; i < n; i++, e += 32) {
        if (e[0] == 0 || e[0] == FAT_DIRENT_DELETED)
            return e;
    }
    return NULL;
}

/* Allocates `count` clusters from the end of the volume down as one chain; 0 if full. */
static uint32_t raw_alloc_chain(raw_image *img, uint32_t count, uint32_t *hint)
{
    uint32_t first = 0, prev = 0;
    for (uint32_t got = 0; got < count; got++) {
        while (*hint >= 2 && raw_fat_get(img, 0, *hint) != 0)
            (*hint)--;
        if (*hint < 2)
            return 0;
        uint32_t cl = (*hint)--;
        raw_fat_set_all(img, cl, fat_eoc_value(img->g.type));
        memset(img->data + fat_cluster_offset(&img->g, cl), 0, img->g.bytes_per_cluster);
        if (prev)
            raw_fat_set_all(img, prev, cl);
        else
            first = cl;
        prev = cl;
    }
    return first;
}

uint32_t raw_nest(raw_image *img, uint32_t depth, uint32_t file_bytes)
{
    uint32_t hint = img->g.max_cluster, parent = 0;
    uint32_t root_slot_dir = img->g.type == FAT_TYPE_32 ? img->g.root_cluster : 0;
    for (uint32_t level = 0; level < depth; level++) {
        uint32_t dir = raw_alloc_chain(img, 1, &hint);
        uint8_t *slot = raw_free_slot(img, parent ? parent : root_slot_dir);
        if (!dir || !slot)
            return 0;
        raw_dirent(img, slot, "D          ", FAT_ATTR_DIRECTORY, dir, 0);
        uint8_t *e = img->data + fat_cluster_offset(&img->g, dir);
        raw_dirent(img, e, ".          ", FAT_ATTR_DIRECTORY, dir, 0);
        raw_dirent(img, e + 32, "..         ", FAT_ATTR_DIRECTORY, parent, 0);
        if (file_bytes > 0) {
            uint32_t clusters = (file_bytes + img->g.bytes_per_cluster - 1) / img->g.bytes_per_cluster;
            uint32_t data = raw_alloc_chain(img, clusters, &hint);
            if (!data)
                return 0;
            raw_dirent(img, e + 64, "F          ", FAT_ATTR_ARCHIVE, data, file_bytes);
            for (uint32_t cl = data, i = 0; i < clusters; i++, cl = raw_fat_get(img, 0, cl))
                memset(img->data + fat_cluster_offset(&img->g, cl), (int)(0x41 + level % 26), img->g.bytes_per_cluster);
        }
        parent = dir;
    }
    if (img->g.type == FAT_TYPE_32 && img->g.fsinfo_sector != 0) {
        uint8_t *info = img->data + (size_t)img->g.fsinfo_sector * img->g.bytes_per_sector;
        uint32_t free_count = 0;
        for (uint32_t cl = 2; cl <= img->g.max_cluster; cl++)
            free_count += raw_fat_get(img, 0, cl) == 0;
        af_store_le32(info + FAT_FSINFO_FREE_COUNT, free_count);
    }
    return parent;
}
