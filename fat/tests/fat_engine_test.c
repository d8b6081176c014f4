/* Support for the engine tests (hosted). */
#include "fat/tests/fat_engine_test.h"

#include "fat/fat_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return 1700000000; /* 2023-11-14: fixed, so runs are reproducible */
}

fat_tv_options fat_tv_defaults(void)
{
    fat_tv_options o;
    memset(&o, 0, sizeof(o));
    o.sector_size = 512;
    o.max_nodes = 64;
    o.index_entries = 4096;
    o.runs_per_node = 8;
    o.cache_buffers = 256;
    o.fibers = 64;
    return o;
}

typedef struct call_ctx {
    fat_tv *tv;
    fat_tv_fn fn;
    void *arg;
} call_ctx;

static void *call_entry(void *p)
{
    call_ctx *c = p;
    c->fn(c->tv, c->arg);
    return NULL;
}

bool fat_tv_call_many(fat_tv *tv, fat_tv_fn fn, void *args, size_t stride, uint32_t n)
{
    call_ctx *ctx = calloc(n, sizeof(*ctx));
    for (uint32_t i = 0; i < n; i++) {
        ctx[i] = (call_ctx){ tv, fn, (char *)args + i * stride };
        if (!blk_fixture_spawn(&tv->f, call_entry, &ctx[i])) {
            free(ctx);
            return false;
        }
    }
    bool ok = blk_fixture_run(&tv->f);
    free(ctx);
    return ok;
}

bool fat_tv_call(fat_tv *tv, fat_tv_fn fn, void *arg)
{
    return fat_tv_call_many(tv, fn, arg, 0, 1);
}

static void do_mount(fat_tv *tv, void *arg)
{
    (void)arg;
    tv->mount_status = fat_mount(&tv->vol, &tv->f.stack.cache, &tv->cfg, NULL);
}

bool fat_tv_open(fat_tv *tv, const char *image, const fat_tv_options *o)
{
    memset(tv, 0, sizeof(*tv));
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = image;
    fo.sector_size = o->sector_size;
    fo.random_order = o->random_order;
    fo.seed = test_seed();
    fo.read_only = o->read_only;
    if (o->linux_backend)
        fo.backend = BLK_FIXTURE_LINUX;
    if (o->cache_buffers)
        fo.cache_buffers = o->cache_buffers;
    if (o->fibers)
        fo.fibers = o->fibers;
    if (blk_fixture_init(&tv->f, &fo) != 0)
        return false;
    tv->cfg = fat_config_defaults();
    tv->cfg.clock = test_clock;
    tv->cfg.max_nodes = o->max_nodes;
    tv->cfg.index_entries = o->index_entries;
    tv->cfg.runs_per_node = o->runs_per_node;
    tv->cfg.discard = o->discard;
    size_t bytes = fat_memory_total(&tv->cfg, tv->f.image_bytes);
    tv->mem = malloc(bytes);
    if (!fat_config_place_memory(&tv->cfg, tv->f.image_bytes, tv->mem, bytes))
        return false;
    tv->mount_status = VFS_ERROR;
    return fat_tv_call(tv, do_mount, NULL);
}

static void do_unmount(fat_tv *tv, void *arg)
{
    *(vfs_status *)arg = fat_unmount(&tv->vol);
}

vfs_status fat_tv_close(fat_tv *tv, const char *save_as)
{
    vfs_status st = VFS_OK;
    if (tv->vol.mounted && !fat_tv_call(tv, do_unmount, &st))
        st = VFS_ERROR;
    if (save_as && blk_fixture_save(&tv->f, save_as) != 0)
        st = VFS_ERROR;
    blk_fixture_fini(&tv->f);
    free(tv->mem);
    tv->mem = NULL;
    return st;
}

bool make_image(const char *path, uint32_t kib, int fat, uint32_t sector, uint32_t spc)
{
    remove(path);
    return tool_run(false, "mkfs.fat -C -F %d -S %u -s %u -n TESTVOL -i 12345678 %s %u", fat, sector, spc, path,
                    kib) == 0;
}

vfs_status tv_write_file(fat_volume *vol, const char *path, const void *data, size_t len)
{
    fat_node *n;
    vfs_status st = fat_open(vol, path, strlen(path),
                            VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_TRUNCATE, &n);
    if (st != VFS_OK)
        return st;
    size_t done = 0;
    st = fat_write(n, 0, data, len, &done);
    if (st == VFS_OK && done != len)
        st = VFS_ERROR;
    vfs_status st2 = fat_close(n);
    return st != VFS_OK ? st : st2;
}

vfs_status tv_read_file(fat_volume *vol, const char *path, uint8_t **out, size_t *len)
{
    fat_node *n;
    *out = NULL;
    vfs_status st = fat_open(vol, path, strlen(path), VFS_OPEN_READ_ONLY, &n);
    if (st != VFS_OK)
        return st;
    size_t size = (size_t)fat_size(n);
    uint8_t *buf = malloc(size + 1);
    size_t done = 0;
    st = fat_read(n, 0, buf, size, &done);
    if (st == VFS_OK && done != size)
        st = VFS_ERROR;
    fat_close(n);
    if (st != VFS_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = size;
    return st;
}

vfs_status tv_path_stat(fat_volume *vol, const char *path, vfs_stat *st)
{
    return fat_stat(vol, path, strlen(path), st);
}

void fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0)
            s = s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(s >> (8 * (i % 8)));
    }
}

typedef struct check_job {
    fat_check_result r;
    vfs_status st;
} check_job;

static void run_check(blk_fixture *f, void *arg)
{
    check_job *j = arg;
    fat_check_volume v;
    j->st = fat_check_volume_find(&f->stack.cache, 0, &v);
    if (j->st != VFS_OK)
        return;
    size_t bytes = fat_check_memory_needed(&v.geo);
    void *work = malloc(bytes);
    fat_check_options o = { .repairs = 0, .work = work, .work_size = bytes };
    j->st = fat_check_run(&f->stack.cache, &v, &o, &j->r);
    free(work);
}

bool image_clean(const char *path)
{
    check_job j;
    memset(&j, 0, sizeof j);
    blk_fixture f;
    blk_fixture_options o = blk_fixture_defaults();
    o.image_path = path;
    if (!EXPECT(blk_fixture_init(&f, &o) == 0))
        return false;
    bool ran = fixture_call(&f, run_check, &j);
    blk_fixture_fini(&f);
    if (!EXPECT(ran && j.st == VFS_OK))
        return false;
    if (j.r.problems != 0)
        printf("  checker: %u problems (lost %u, cross %u, size %u, fat %u, dirty %u, lfn %u, entries %u, fsinfo %u, "
               "boot %u)\n",
               j.r.problems, j.r.lost_clusters, j.r.cross_links, j.r.size_mismatches, j.r.fat_mismatches, j.r.dirty,
               j.r.orphan_lfns, j.r.bad_entries, j.r.fsinfo_errors, j.r.boot_errors);
    return EXPECT(j.r.problems == 0) && EXPECT(tool_fsck(path) == 0);
}

typedef struct file_job {
    const char *path;
    size_t len;
    uint64_t seed;
    bool absent;
    bool ok;
} file_job;

static void file_check(fat_tv *t, void *arg)
{
    file_job *j = arg;
    if (j->absent) {
        vfs_stat st;
        j->ok = tv_path_stat(&t->vol, j->path, &st) == VFS_NO_FILE;
        return;
    }
    uint8_t *got;
    size_t n;
    if (tv_read_file(&t->vol, j->path, &got, &n) != VFS_OK)
        return;
    uint8_t *want = malloc(j->len ? j->len : 1);
    fill_pattern(want, j->len, j->seed);
    j->ok = n == j->len && memcmp(got, want, j->len) == 0;
    free(got);
    free(want);
}

bool tv_file_is(fat_tv *tv, const char *path, size_t len, uint64_t seed)
{
    file_job j = { path, len, seed, false, false };
    return fat_tv_call(tv, file_check, &j) && j.ok;
}

bool tv_file_absent(fat_tv *tv, const char *path)
{
    file_job j = { path, 0, 0, true, false };
    return fat_tv_call(tv, file_check, &j) && j.ok;
}
