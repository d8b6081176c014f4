/* Wear: how often each device block is written by workloads people run on SD cards, on
 * the RAM device (its log records every write and FLUSH the engine sends). bench/wear.sh
 * builds this file twice, against this tree and against the engine before the wear work,
 * and runs both in one run.
 *
 *   wear <label>
 *
 * Workloads, each on a fresh 288 MiB card formatted FAT32 with 4 KiB clusters and two FATs
 * (about the smallest FAT32 volume with 4 KiB clusters: SD cards of 4 GiB and more come
 * FAT32 or exFAT), counted from mount to unmount:
 *   logger  86,400 appends of 100 bytes, each followed by fsync (a day at one a second)
 *   config  500 rewrites of one file: open with truncate, write 300-900 bytes, fsync,
 *           close; the device reboots (unmount, mount) every 100 rewrites
 *   camera  3-8 MiB files into one directory (64 KiB writes, fsync, close) until the card
 *           is 90% full, then the oldest deleted to make room; twice the card written
 *   tree    a source tree copied on: 16 directories of 40 files, 60% under 4 KiB, 30% up
 *           to 64 KiB, 10% up to 1 MiB (32 KiB writes, no fsync), then sync
 * For each, writes per block (max, 99th percentile, mean over the blocks written at least
 * once, and how many blocks) in five regions: the reserved sectors (boot sector, FSInfo,
 * backup boot sector), each FAT copy, directory clusters, file data; FLUSHes per fsync;
 * directory and FAT writes per operation (an fsync, a rewrite, a file); bytes the device
 * wrote per byte the application wrote; wall time.
 */
#include "fat/fat.h"
#include "fat/fat_engine.h"
#include "fat/fat_mkfs.h"
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define P(s) (s), strlen(s)
#define CARD_BYTES (288ull << 20)

static void die(const char *what)
{
    fprintf(stderr, "wear: %s\n", what);
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Region of a block. */
enum { R_BOOT, R_FAT0, R_FAT1, R_DIR, R_DATA, R_COUNT };
static const char *region_names[R_COUNT] = { "boot", "fat1", "fat2", "dir", "data" };

typedef struct bench {
    blk_fixture f;
    fat_config cfg;
    void *mem;
    fat_volume vol;
    uint32_t *writes;          /* per device block */
    uint64_t blocks;
    uint64_t flushes;
    uint64_t app_bytes;        /* what the workload asked to write */
    uint64_t fsyncs;
    uint8_t *is_dir;           /* per device block: holds directory entries */
    uint64_t rng;
} bench;

static uint32_t rnd(bench *b, uint32_t n)
{
    b->rng = b->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((b->rng >> 33) % n);
}

/* Fold the device's log into the per-block counts and drop it (it would grow per write). */
static void fold_log(bench *b)
{
    for (uint64_t i = 0; i < ram_device_log_count(&b->f.dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(&b->f.dev, i);
        if (e->code == BLK_REQ_WRITE) {
            for (uint32_t k = 0; k < e->written; k++)
                b->writes[e->block + k]++;
        } else if (e->code == BLK_REQ_FLUSH) {
            b->flushes++;
        }
    }
    ram_device_clear_log(&b->f.dev);
}

typedef void (*task_fn)(bench *b);
typedef struct task {
    bench *b;
    task_fn fn;
} task;

static void *task_entry(void *p)
{
    task *t = p;
    t->fn(t->b);
    return NULL;
}

static void run(bench *b, task_fn fn)
{
    task t = { b, fn };
    blk_fixture_spawn(&b->f, task_entry, &t);
    if (!blk_fixture_run(&b->f))
        die("a task hung");
    fold_log(b);
}

static void do_mkfs(bench *b)
{
    fat_mkfs_options mo;
    memset(&mo, 0, sizeof mo);
    mo.fat_type = 32;
    mo.sectors_per_cluster = 8;
    mo.volume_id = 0x5EA2C0DE;
    if (fat_mkfs_format(&b->f.stack.cache, b->f.image_bytes, &mo, NULL) != VFS_OK)
        die("mkfs");
}

static void do_mount(bench *b)
{
    if (fat_mount(&b->vol, &b->f.stack.cache, &b->cfg, NULL) != VFS_OK)
        die("mount");
}

static void do_unmount(bench *b)
{
    if (fat_unmount(&b->vol) != VFS_OK)
        die("unmount");
}

static void open_card(bench *b)
{
    memset(b, 0, sizeof(*b));
    blk_fixture_options o = blk_fixture_defaults();
    o.image_bytes = CARD_BYTES;
    o.cache_buffers = 1024;
    if (blk_fixture_init(&b->f, &o) != 0)
        die("fixture");
    b->cfg = fat_config_defaults();
    size_t arena = fat_memory_total(&b->cfg, b->f.image_bytes);
    b->mem = malloc(arena);
    if (!b->mem || !fat_config_place_memory(&b->cfg, b->f.image_bytes, b->mem, arena))
        die("arena");
    b->blocks = b->f.image_bytes / BLK_TRANSFER_SIZE;
    b->writes = calloc(b->blocks, sizeof(uint32_t));
    b->is_dir = calloc(b->blocks, 1);
    if (!b->writes || !b->is_dir)
        die("memory");
    b->rng = 0x9E3779B97F4A7C15ull;
    run(b, do_mkfs);
    memset(b->writes, 0, b->blocks * sizeof(uint32_t));
    b->flushes = 0;
}

static void close_card(bench *b)
{
    blk_fixture_fini(&b->f);
    free(b->mem);
    free(b->writes);
    free(b->is_dir);
}

/* Mark the blocks of a directory's chain (walked in the FAT as it stands). */
static void mark_dir_chain(bench *b, uint32_t first)
{
    fat_volume *vol = &b->vol;
    const fat_geometry *g = fat_get_geometry(vol);
    for (uint32_t c = first, n = 0; fat_cluster_valid(vol, c) && n < g->cluster_count; n++) {
        uint64_t off = fat_cluster_offset(g, c);
        for (uint64_t k = off / BLK_TRANSFER_SIZE; k <= (off + g->bytes_per_cluster - 1) / BLK_TRANSFER_SIZE; k++)
            b->is_dir[k] = 1;
        uint32_t next;
        if (fat_table_get(vol, c, &next) != VFS_OK)
            die("FAT read");
        if (fat_is_eoc(vol, next))
            break;
        c = next;
    }
}

static void mark_dir(bench *b, const char *path)
{
    fat_node *d;
    if (fat_opendir(&b->vol, path, strlen(path), &d) != VFS_OK)
        die(path);
    mark_dir_chain(b, d->is_root ? fat_get_geometry(&b->vol)->root_cluster : d->first_cluster);
    fat_close(d);
}

static int region_of(const bench *b, uint64_t block)
{
    const fat_geometry *g = &b->vol.geo;
    uint64_t at = block * BLK_TRANSFER_SIZE;
    if (at < g->fat_offset)
        return R_BOOT;
    if (at < g->fat_offset + g->fat_bytes)
        return R_FAT0;
    if (at < g->fat_offset + g->fat_count * g->fat_bytes)
        return R_FAT1;
    if (b->is_dir[block] || (g->root_dir_offset && at < g->data_offset))
        return R_DIR;
    return R_DATA;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    return a < c ? -1 : a > c;
}

/* ops: the operations the per-op figures divide by (fsyncs, rewrites, files). */
static void report(bench *b, const char *wl, const char *label, uint64_t ops, const char *op_unit, double ms)
{
    uint32_t *vals = malloc(b->blocks * sizeof(uint32_t));
    uint64_t total_blocks = 0, region_total[R_COUNT] = { 0 };
    for (int r = 0; r < R_COUNT; r++) {
        uint64_t n = 0, sum = 0;
        for (uint64_t k = 0; k < b->blocks; k++)
            if (b->writes[k] && region_of(b, k) == r) {
                vals[n++] = b->writes[k];
                sum += b->writes[k];
            }
        region_total[r] = sum;
        total_blocks += sum;
        if (r == R_FAT1 && b->vol.geo.fat_count < 2)
            continue;
        qsort(vals, n, sizeof vals[0], cmp_u32);
        uint32_t max = n ? vals[n - 1] : 0;
        uint32_t p99 = n ? vals[(n * 99 + 99) / 100 - 1] : 0;
        printf("bench wear_%s_%s_max_%s %u writes\n", wl, region_names[r], label, max);
        printf("bench wear_%s_%s_p99_%s %u writes\n", wl, region_names[r], label, p99);
        printf("bench wear_%s_%s_mean_%s %.2f writes\n", wl, region_names[r], label, n ? (double)sum / n : 0.0);
        printf("bench wear_%s_%s_blocks_%s %lu blocks\n", wl, region_names[r], label, (unsigned long)n);
    }
    free(vals);
    uint64_t fat_writes = region_total[R_FAT0] + region_total[R_FAT1];
    printf("bench wear_%s_dir_writes_per_op_%s %.3f writes/%s\n", wl, label, (double)region_total[R_DIR] / ops, op_unit);
    printf("bench wear_%s_fat_writes_per_op_%s %.3f writes/%s\n", wl, label, (double)fat_writes / ops, op_unit);
    printf("bench wear_%s_boot_writes_per_op_%s %.4f writes/%s\n", wl, label, (double)region_total[R_BOOT] / ops,
           op_unit);
    if (b->fsyncs)
        printf("bench wear_%s_flushes_per_fsync_%s %.3f flushes\n", wl, label, (double)b->flushes / b->fsyncs);
    else
        printf("bench wear_%s_flushes_%s %lu flushes\n", wl, label, (unsigned long)b->flushes);
    printf("bench wear_%s_write_amplification_%s %.2f bytes/byte\n", wl, label,
           (double)total_blocks * BLK_TRANSFER_SIZE / (double)b->app_bytes);
    printf("bench wear_%s_time_%s %.0f ms\n", wl, label, ms);
    fflush(stdout);
}

static void write_all(bench *b, fat_node *n, uint64_t off, const uint8_t *src, size_t len)
{
    size_t done;
    if (fat_write(n, off, src, len, &done) != VFS_OK || done != len)
        die("write");
    b->app_bytes += len;
}

static void fsync_node(bench *b, fat_node *n)
{
    if (fat_fsync(n) != VFS_OK)
        die("fsync");
    b->fsyncs++;
}

/* ---- logger ---------------------------------------------------------------------------------- */

#define LOG_APPENDS 86400u

static void logger(bench *b)
{
    fat_node *n;
    if (fat_open(&b->vol, P("/sensor.log"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) != VFS_OK)
        die("open log");
    char line[101];
    for (uint32_t i = 0; i < LOG_APPENDS; i++) {
        snprintf(line, sizeof line, "%010u t=%05u.%03u hum=%02u.%u p=%04u.%02u %-40s\n", i, rnd(b, 99999),
                 rnd(b, 1000), rnd(b, 100), rnd(b, 10), rnd(b, 2000), rnd(b, 100), "ok");
        size_t done;
        uint64_t at;
        if (fat_append(n, line, 100, &done, &at) != VFS_OK || done != 100)
            die("append");
        b->app_bytes += 100;
        fsync_node(b, n);
    }
    if (fat_close(n) != VFS_OK)
        die("close log");
    mark_dir(b, "/");
}

/* ---- config rewrite -------------------------------------------------------------------------- */

#define REWRITES 500u
#define REWRITES_PER_BOOT 100u

static void config_some(bench *b)
{
    static uint8_t data[900];
    for (uint32_t i = 0; i < REWRITES_PER_BOOT; i++) {
        fat_node *n;
        if (fat_open(&b->vol, P("/config.ini"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_TRUNCATE, &n) !=
            VFS_OK)
            die("open config");
        size_t len = 300 + rnd(b, 601);
        for (size_t k = 0; k < len; k++)
            data[k] = (uint8_t)('a' + rnd(b, 26));
        write_all(b, n, 0, data, len);
        fsync_node(b, n);
        if (fat_close(n) != VFS_OK)
            die("close config");
    }
    mark_dir(b, "/");
}

/* ---- camera ---------------------------------------------------------------------------------- */

#define CAMERA_CHUNK (64u << 10)

static void camera(bench *b)
{
    static uint8_t chunk[CAMERA_CHUNK];
    for (size_t k = 0; k < sizeof chunk; k++)
        chunk[k] = (uint8_t)rnd(b, 256);
    if (fat_mkdir(&b->vol, P("/DCIM")) != VFS_OK || fat_mkdir(&b->vol, P("/DCIM/100CAMRA")) != VFS_OK)
        die("mkdir");
    const fat_geometry *g = fat_get_geometry(&b->vol);
    uint64_t cs = g->bytes_per_cluster;
    uint64_t card = (uint64_t)g->cluster_count * cs;
    uint64_t limit = card / 10 * 9;
    enum { MAX_FILES = 256 };
    static uint64_t sizes[MAX_FILES];
    uint32_t oldest = 0, next = 0;
    uint64_t used = 0;
    while (b->app_bytes < 2 * card) {
        uint64_t size = (3ull << 20) + (uint64_t)rnd(b, 5u << 20);
        uint64_t alloc = (size + cs - 1) / cs * cs;
        char path[64];
        while (used + alloc > limit) {
            snprintf(path, sizeof path, "/DCIM/100CAMRA/IMG_%04u.JPG", oldest % 10000);
            if (fat_unlink(&b->vol, path, strlen(path)) != VFS_OK)
                die("unlink");
            used -= (sizes[oldest % MAX_FILES] + cs - 1) / cs * cs;
            oldest++;
        }
        snprintf(path, sizeof path, "/DCIM/100CAMRA/IMG_%04u.JPG", next % 10000);
        fat_node *n;
        if (fat_open(&b->vol, path, strlen(path), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_EXCLUSIVE, &n) !=
            VFS_OK)
            die("create photo");
        for (uint64_t off = 0; off < size; off += CAMERA_CHUNK)
            write_all(b, n, off, chunk, (size_t)(size - off < CAMERA_CHUNK ? size - off : CAMERA_CHUNK));
        fsync_node(b, n);
        if (fat_close(n) != VFS_OK)
            die("close photo");
        sizes[next % MAX_FILES] = size;
        used += alloc;
        next++;
        if (next - oldest >= MAX_FILES)
            die("too many photos");
    }
    mark_dir(b, "/");
    mark_dir(b, "/DCIM");
    mark_dir(b, "/DCIM/100CAMRA");
}

/* ---- tree copy ------------------------------------------------------------------------------- */

#define TREE_DIRS 16u
#define TREE_FILES 40u
#define TREE_CHUNK (32u << 10)

static void tree(bench *b)
{
    static uint8_t chunk[TREE_CHUNK];
    for (size_t k = 0; k < sizeof chunk; k++)
        chunk[k] = (uint8_t)rnd(b, 256);
    char path[96];
    if (fat_mkdir(&b->vol, P("/src")) != VFS_OK)
        die("mkdir");
    for (uint32_t d = 0; d < TREE_DIRS; d++) {
        snprintf(path, sizeof path, "/src/module_%02u", d);
        if (fat_mkdir(&b->vol, path, strlen(path)) != VFS_OK)
            die("mkdir");
        for (uint32_t f = 0; f < TREE_FILES; f++) {
            uint32_t kind = rnd(b, 10);
            uint64_t size = kind < 6 ? 1 + rnd(b, 4096) : kind < 9 ? 4096 + rnd(b, 60u << 10) : (64u << 10) +
                                                                                                 rnd(b, 960u << 10);
            snprintf(path, sizeof path, "/src/module_%02u/source_file_%02u.c", d, f);
            fat_node *n;
            if (fat_open(&b->vol, path, strlen(path), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n) != VFS_OK)
                die("create");
            for (uint64_t off = 0; off < size; off += TREE_CHUNK)
                write_all(b, n, off, chunk, (size_t)(size - off < TREE_CHUNK ? size - off : TREE_CHUNK));
            if (fat_close(n) != VFS_OK)
                die("close");
        }
    }
    if (fat_sync(&b->vol) != VFS_OK)
        die("sync");
    mark_dir(b, "/");
    mark_dir(b, "/src");
    for (uint32_t d = 0; d < TREE_DIRS; d++) {
        snprintf(path, sizeof path, "/src/module_%02u", d);
        mark_dir(b, path);
    }
}

/* ---- main ------------------------------------------------------------------------------------ */

static void workload(const char *name, const char *label, task_fn fn, uint32_t boots, const char *op_unit,
                     uint64_t ops)
{
    bench b;
    open_card(&b);
    double t0 = now_ms();
    for (uint32_t i = 0; i < boots; i++) {
        run(&b, do_mount);
        run(&b, fn);
        run(&b, do_unmount);
    }
    double ms = now_ms() - t0;
    /* the geometry is read from the volume, which stays as the last mount left it */
    report(&b, name, label, ops ? ops : b.fsyncs, op_unit, ms);
    close_card(&b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wear <label>\n");
        return 2;
    }
    const char *label = argv[1];
    const char *only = getenv("WEAR_ONLY");
    if (!only || strstr(only, "logger"))
        workload("logger", label, logger, 1, "fsync", 0);
    if (!only || strstr(only, "config"))
        workload("config", label, config_some, REWRITES / REWRITES_PER_BOOT, "rewrite", REWRITES);
    if (!only || strstr(only, "camera"))
        workload("camera", label, camera, 1, "file", 0);
    if (!only || strstr(only, "tree"))
        workload("tree", label, tree, 1, "file", TREE_DIRS * TREE_FILES);
    return 0;
}
