/* FAT engine benchmarks on the in-process RAM device (variants compared in the same run).
 *
 *   fat_create_10000_ms          create 10,000 empty files in one directory (name index)
 *   fat_lookup_indexed_ns        stat of a random name in that directory, name index on
 *   fat_lookup_scan_ns           the same with no index memory (every lookup scans)
 *   fat_lookup_scan_to_index_ratio
 *   fat_random_read_fat_entries  FAT entries read per random 4 KiB read of a fragmented
 *                                32 MiB file, run cache of 64 runs per node ...
 *   fat_random_read_fat_entries_2runs   ... and of 2 runs per node
 *   fat_seq_write_mbps / fat_seq_read_mbps   64 MiB file in 256 KiB calls
 */
#include "fat/fat.h"
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct bench_vol {
    blk_fixture f;
    fat_volume vol;
    void *mem;
} bench_vol;

static fat_config bench_cfg;

static void *do_mount(void *arg)
{
    bench_vol *b = arg;
    if (fat_mount(&b->vol, &b->f.stack.cache, &bench_cfg, NULL) != VFS_OK) {
        fprintf(stderr, "mount failed\n");
        exit(1);
    }
    return NULL;
}

static void *do_unmount(void *arg)
{
    bench_vol *b = arg;
    fat_unmount(&b->vol);
    return NULL;
}

static void run_task(bench_vol *b, fp_entry fn, void *arg)
{
    blk_fixture_spawn(&b->f, fn, arg);
    if (!blk_fixture_run(&b->f)) {
        fprintf(stderr, "task did not finish\n");
        exit(1);
    }
}

static void open_vol(bench_vol *b, const char *image, uint32_t index_entries, uint32_t runs)
{
    memset(b, 0, sizeof(*b));
    blk_fixture_options o = blk_fixture_defaults();
    o.image_path = image;
    o.cache_buffers = 1024;
    if (blk_fixture_init(&b->f, &o) != 0)
        exit(1);
    bench_cfg = fat_config_defaults();
    bench_cfg.index_entries = index_entries;
    bench_cfg.runs_per_node = runs;
    size_t bytes = fat_memory_total(&bench_cfg, b->f.image_bytes);
    b->mem = calloc(1, bytes);
    if (!fat_config_place_memory(&bench_cfg, b->f.image_bytes, b->mem, bytes))
        abort();
    run_task(b, do_mount, b);
}

static void close_vol(bench_vol *b, const char *save)
{
    run_task(b, do_unmount, b);
    if (save)
        blk_fixture_save(&b->f, save);
    blk_fixture_fini(&b->f);
    free(b->mem);
}

/* ---- directory of 10,000 files ---------------------------------------------------------- */

#define FILES 10000

static double elapsed;
static uint32_t lookups;

static void *create_files(void *arg)
{
    bench_vol *b = arg;
    fat_mkdir(&b->vol, "/d", 2);
    char p[64];
    double t0 = now_ns();
    for (int i = 0; i < FILES; i++) {
        snprintf(p, sizeof p, "/d/IMG_%05d.JPG", i);
        fat_node *n;
        if (fat_open(&b->vol, p, strlen(p), VFS_OPEN_WRITE_ONLY | VFS_OPEN_CREATE, &n) != VFS_OK)
            exit(1);
        fat_close(n);
    }
    elapsed = now_ns() - t0;
    return NULL;
}

static void *lookup_files(void *arg)
{
    bench_vol *b = arg;
    char p[64];
    vfs_stat st;
    uint64_t rng = 12345;
    fat_stat(&b->vol, "/d/IMG_00000.JPG", 16, &st); /* builds the index */
    double t0 = now_ns();
    for (uint32_t i = 0; i < lookups; i++) {
        rng = rng * 6364136223846793005ull + 1;
        snprintf(p, sizeof p, "/d/IMG_%05d.JPG", (int)((rng >> 33) % FILES));
        if (fat_stat(&b->vol, p, strlen(p), &st) != VFS_OK)
            exit(1);
    }
    elapsed = now_ns() - t0;
    return NULL;
}

/* ---- file data --------------------------------------------------------------------------- */

#define BIG (32u << 20)

static uint8_t *buffer;

static void *fragmented_write(void *arg)
{
    /* two files appended in turn, 8 KiB at a time: their clusters interleave */
    bench_vol *b = arg;
    fat_node *x, *y;
    fat_open(&b->vol, "/x", 2, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &x);
    fat_open(&b->vol, "/y", 2, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &y);
    for (uint32_t off = 0; off < BIG; off += 8192) {
        size_t done;
        uint64_t at;
        fat_append(x, buffer, 8192, &done, &at);
        fat_append(y, buffer, 4096, &done, &at);
    }
    fat_close(x);
    fat_close(y);
    return NULL;
}

static double reads_steps;

static void *random_reads(void *arg)
{
    bench_vol *b = arg;
    fat_node *x;
    fat_open(&b->vol, "/x", 2, VFS_OPEN_READ_ONLY, &x);
    size_t done;
    fat_read(x, 0, buffer, 4096, &done); /* first access checks the chain once */
    uint64_t before = fat_get_stats(&b->vol)->chain_steps;
    uint64_t rng = 99;
    for (int i = 0; i < 20000; i++) {
        rng = rng * 6364136223846793005ull + 1;
        uint64_t off = ((rng >> 20) % (BIG / 4096)) * 4096;
        fat_read(x, off, buffer, 4096, &done);
    }
    reads_steps = (double)(fat_get_stats(&b->vol)->chain_steps - before) / 20000.0;
    fat_close(x);
    return NULL;
}

#define SEQ (64u << 20)
#define PIECE (256u << 10)

static double write_ns, read_ns;

static void *sequential(void *arg)
{
    bench_vol *b = arg;
    fat_node *n;
    fat_open(&b->vol, "/seq", 4, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    double t0 = now_ns();
    for (uint32_t off = 0; off < SEQ; off += PIECE) {
        size_t done;
        fat_write(n, off, buffer, PIECE, &done);
    }
    fat_fsync(n);
    write_ns = now_ns() - t0;
    t0 = now_ns();
    for (uint32_t off = 0; off < SEQ; off += PIECE) {
        size_t done;
        fat_read(n, off, buffer, PIECE, &done);
    }
    read_ns = now_ns() - t0;
    fat_close(n);
    return NULL;
}

int main(void)
{
    char img[] = "/tmp/asyncfat-fat-bench-XXXXXX";
    int fd = mkstemp(img);
    if (fd < 0)
        return 1;
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -f %s && mkfs.fat -C -F 32 -s 4 %s 262144 >/dev/null 2>&1", img, img);
    if (system(cmd) != 0)
        return 1;
    buffer = malloc(PIECE);
    memset(buffer, 0x5A, PIECE);

    bench_vol b;
    open_vol(&b, img, 16384, 64);
    run_task(&b, create_files, &b);
    printf("bench fat_create_10000_ms %.1f ms\n", elapsed / 1e6);
    run_task(&b, fragmented_write, &b);
    run_task(&b, sequential, &b);
    printf("bench fat_seq_write_mbps %.0f MB/s\n", (double)SEQ / (write_ns / 1e9) / 1e6);
    printf("bench fat_seq_read_mbps %.0f MB/s\n", (double)SEQ / (read_ns / 1e9) / 1e6);
    close_vol(&b, img);

    open_vol(&b, img, 16384, 64);
    lookups = 20000;
    run_task(&b, lookup_files, &b);
    double indexed = elapsed / lookups;
    run_task(&b, random_reads, &b);
    double steps64 = reads_steps;
    close_vol(&b, NULL);

    open_vol(&b, img, 0, 2);
    lookups = 300;
    run_task(&b, lookup_files, &b);
    double scan = elapsed / lookups;
    run_task(&b, random_reads, &b);
    double steps2 = reads_steps;
    close_vol(&b, NULL);

    printf("bench fat_lookup_indexed_ns %.0f ns\n", indexed);
    printf("bench fat_lookup_scan_ns %.0f ns\n", scan);
    printf("bench fat_lookup_scan_to_index_ratio %.1f x\n", scan / indexed);
    printf("bench fat_random_read_fat_entries %.2f entries/read\n", steps64);
    printf("bench fat_random_read_fat_entries_2runs %.2f entries/read\n", steps2);
    remove(img);
    free(buffer);
    return 0;
}
