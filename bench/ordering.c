/* The cost of power-cut safety (docs/ORDERING.md): device writes and flushes per metadata
 * operation, and the time of a mount (and of mount-time recovery) on a 32 GiB volume.
 * bench/ordering.sh builds this file twice, against this tree and against the engine as it
 * was before the ordering work (commit 82001c6), and runs both in one run; the engine
 * calls below exist in both, and the few names that changed between them are mapped here.
 *
 *   ordering ops <label>              metadata workloads on the RAM device
 *   ordering prepare <image>          a dirty 32 GiB FAT32 volume in a sparse file
 *   ordering mount <image> <label> <tag>   time one read-write mount and unmount
 */
#include "fat/fat.h"
#include "fat/fat_mkfs.h"
#include "tests/support/blk_fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if __has_include("vfs/vfs.h")
#define ORD_OK VFS_OK
#define ORD_RW (VFS_OPEN_READ_WRITE)
#define ORD_CREATE (VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE)
#define ORD_CACHE(f) (&(f)->stack.cache)
#else
#define ORD_OK FS_STATUS_SUCCESS
#define ORD_RW (FS_OPEN_FLAGS_READ_WRITE)
#define ORD_CREATE (FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE)
#define ORD_CACHE(f) (&(f)->cache)
#endif
#define P(s) (s), strlen(s)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "ordering: %s\n", what);
    exit(1);
}

typedef struct bench {
    blk_fixture f;
    fat_config cfg;
    void *mem;
    fat_volume vol;
} bench;

static void open_fixture(bench *b, const char *path, uint64_t bytes, uint32_t cache_buffers)
{
    memset(b, 0, sizeof(*b));
    blk_fixture_options o = blk_fixture_defaults();
    if (path) {
        o.backend = BLK_FIXTURE_LINUX;
        o.image_path = path;
    }
    o.image_bytes = bytes;
    o.cache_buffers = cache_buffers;
    if (blk_fixture_init(&b->f, &o) != 0)
        die("fixture");
    b->cfg = fat_config_defaults();
    size_t arena = fat_memory_total(&b->cfg, b->f.image_bytes);
    b->mem = malloc(arena);
    if (!fat_config_place_memory(&b->cfg, b->f.image_bytes, b->mem, arena))
        die("arena");
}

static void close_fixture(bench *b)
{
    blk_fixture_fini(&b->f);
    free(b->mem);
}

typedef void (*task_fn)(bench *b, void *arg);
typedef struct task {
    bench *b;
    task_fn fn;
    void *arg;
} task;

static void *task_entry(void *p)
{
    task *t = p;
    t->fn(t->b, t->arg);
    return NULL;
}

static void run(bench *b, task_fn fn, void *arg)
{
    task t = { b, fn, arg };
    blk_fixture_spawn(&b->f, task_entry, &t);
    if (!blk_fixture_run(&b->f))
        die("a task hung");
}

static void do_mkfs(bench *b, void *arg)
{
    const fat_mkfs_options *o = arg;
    if (fat_mkfs_format(ORD_CACHE(&b->f), b->f.image_bytes, o, NULL) != ORD_OK)
        die("mkfs");
}

static void do_mount(bench *b, void *arg)
{
    (void)arg;
    if (fat_mount(&b->vol, ORD_CACHE(&b->f), &b->cfg, NULL) != ORD_OK)
        die("mount");
}

static void do_unmount(bench *b, void *arg)
{
    (void)arg;
    if (fat_unmount(&b->vol) != ORD_OK)
        die("unmount");
}

static void do_sync(bench *b, void *arg)
{
    (void)arg;
    if (fat_sync(&b->vol) != ORD_OK)
        die("sync");
}

static void create_file(fat_volume *vol, const char *path, const void *data, size_t len, bool fsync)
{
    fat_node *n;
    if (fat_open(vol, path, strlen(path), ORD_CREATE, &n) != ORD_OK)
        die(path);
    size_t done;
    if (len && (fat_write(n, 0, data, len, &done) != ORD_OK || done != len))
        die("write");
    if (fsync && fat_fsync(n) != ORD_OK)
        die("fsync");
    if (fat_close(n) != ORD_OK)
        die("close");
}

/* ---- metadata operations ------------------------------------------------------------------- */

#define OPS 200u

typedef struct op {
    const char *name;
    void (*setup)(fat_volume *vol, uint32_t i);
    void (*run)(fat_volume *vol, uint32_t i);
} op;

static void name_of(char *out, size_t cap, const char *dir, const char *what, uint32_t i)
{
    snprintf(out, cap, "%s/%s number %u with a long name.txt", dir, what, i);
}

static void setup_file(fat_volume *vol, uint32_t i)
{
    char p[128];
    name_of(p, sizeof p, "/a", "file", i);
    create_file(vol, p, "x", 1, false);
}

static void setup_file_and_target(fat_volume *vol, uint32_t i)
{
    setup_file(vol, i);
    char p[128];
    name_of(p, sizeof p, "/a", "target", i);
    create_file(vol, p, "y", 1, false);
}

static void op_create(fat_volume *vol, uint32_t i)
{
    char p[128];
    name_of(p, sizeof p, "/a", "new", i);
    create_file(vol, p, NULL, 0, false);
}

static void op_small_fsync(fat_volume *vol, uint32_t i)
{
    static uint8_t data[1000];
    char p[128];
    name_of(p, sizeof p, "/a", "synced", i);
    create_file(vol, p, data, sizeof data, true);
}

static void op_unlink(fat_volume *vol, uint32_t i)
{
    char p[128];
    name_of(p, sizeof p, "/a", "file", i);
    if (fat_unlink(vol, p, strlen(p)) != ORD_OK)
        die("unlink");
}

static void op_mkdir(fat_volume *vol, uint32_t i)
{
    char p[128];
    name_of(p, sizeof p, "/a", "directory", i);
    if (fat_mkdir(vol, p, strlen(p)) != ORD_OK)
        die("mkdir");
}

static void op_rename_same(fat_volume *vol, uint32_t i)
{
    char s[128], d[128];
    name_of(s, sizeof s, "/a", "file", i);
    name_of(d, sizeof d, "/a", "renamed", i);
    if (fat_rename(vol, s, strlen(s), d, strlen(d)) != ORD_OK)
        die("rename");
}

static void op_rename_across(fat_volume *vol, uint32_t i)
{
    char s[128], d[128];
    name_of(s, sizeof s, "/a", "file", i);
    name_of(d, sizeof d, "/b", "file", i);
    if (fat_rename(vol, s, strlen(s), d, strlen(d)) != ORD_OK)
        die("rename");
}

static void op_rename_replace(fat_volume *vol, uint32_t i)
{
    char s[128], d[128];
    name_of(s, sizeof s, "/a", "file", i);
    name_of(d, sizeof d, "/a", "target", i);
    if (fat_rename(vol, s, strlen(s), d, strlen(d)) != ORD_OK)
        die("rename");
}

static const op ops[] = {
    { "create", NULL, op_create },
    { "small_file_fsync", NULL, op_small_fsync },
    { "unlink", setup_file, op_unlink },
    { "mkdir", NULL, op_mkdir },
    { "rename_same_dir", setup_file, op_rename_same },
    { "rename_across_dirs", setup_file, op_rename_across },
    { "rename_replace", setup_file_and_target, op_rename_replace },
};

typedef struct op_job {
    const op *o;
    bool setup;
} op_job;

static void do_ops(bench *b, void *arg)
{
    op_job *j = arg;
    if (j->setup) {
        if (fat_mkdir(&b->vol, P("/a")) != ORD_OK || fat_mkdir(&b->vol, P("/b")) != ORD_OK)
            die("mkdir");
        for (uint32_t i = 0; i < OPS && j->o->setup; i++)
            j->o->setup(&b->vol, i);
        return;
    }
    for (uint32_t i = 0; i < OPS; i++)
        j->o->run(&b->vol, i);
    if (fat_sync(&b->vol) != ORD_OK)
        die("sync");
}

static void metadata_ops(const char *label)
{
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        bench b;
        open_fixture(&b, NULL, 512ull << 20, 1024);
        fat_mkfs_options mo;
        memset(&mo, 0, sizeof mo);
        mo.fat_type = 32;
        mo.sectors_per_cluster = 8;
        mo.volume_id = 0x12345678;
        run(&b, do_mkfs, &mo);
        run(&b, do_mount, NULL);
        op_job j = { &ops[k], true };
        run(&b, do_ops, &j);
        run(&b, do_sync, NULL);
        ram_device_clear_log(&b.f.dev);
        j.setup = false;
        run(&b, do_ops, &j);
        uint64_t writes = 0, blocks = 0, flushes = 0;
        for (uint64_t i = 0; i < ram_device_log_count(&b.f.dev); i++) {
            const ram_device_log_entry *e = ram_device_log_at(&b.f.dev, i);
            if (e->code == BLK_REQ_WRITE) {
                writes++;
                blocks += e->count;
            } else if (e->code == BLK_REQ_FLUSH) {
                flushes++;
            }
        }
        run(&b, do_unmount, NULL);
        close_fixture(&b);
        printf("bench ordering_%s_device_writes_%s %.2f requests/op\n", ops[k].name, label, (double)writes / OPS);
        printf("bench ordering_%s_blocks_written_%s %.2f blocks/op\n", ops[k].name, label, (double)blocks / OPS);
        printf("bench ordering_%s_flushes_%s %.2f flushes/op\n", ops[k].name, label, (double)flushes / OPS);
    }
}

/* ---- a dirty 32 GiB volume ------------------------------------------------------------------ */

#define BIG_GIB 32ull
#define DIRS 100u
#define FILES_PER_DIR 100u
#define BIG_FILES 8u
#define BIG_CLUSTERS 32768u      /* 1 GiB each in 32 KiB clusters */

static void populate(bench *b, void *arg)
{
    (void)arg;
    char p[96];
    for (uint32_t d = 0; d < DIRS; d++) {
        snprintf(p, sizeof p, "/directory %u", d);
        if (fat_mkdir(&b->vol, p, strlen(p)) != ORD_OK)
            die("mkdir");
        for (uint32_t f = 0; f < FILES_PER_DIR; f++) {
            snprintf(p, sizeof p, "/directory %u/a file with a longer name %u.dat", d, f);
            create_file(&b->vol, p, p, strlen(p), false);
        }
    }
    for (uint32_t k = 0; k < BIG_FILES; k++) {
        snprintf(p, sizeof p, "/BIG%u.BIN", k);
        create_file(&b->vol, p, NULL, 0, false);
    }
}

/* After a clean unmount: give the big files 1 GiB chains (data clusters left sparse: their
 * contents do not matter to a mount), then leave lost clusters and a longer chain. */
static void craft(const char *path)
{
    int fd = open(path, O_RDWR);
    uint8_t boot[512];
    if (fd < 0 || pread(fd, boot, sizeof boot, 0) != (ssize_t)sizeof boot)
        die("open image");
    fat_geometry g;
    fat_bpb_error why;
    uint64_t bytes = (uint64_t)lseek(fd, 0, SEEK_END);
    if (fat_bpb_parse(boot, sizeof boot, 0, bytes, &g, &why) != ORD_OK)
        die("boot sector");
    uint64_t fat_bytes = (uint64_t)(g.max_cluster + 1) * 4;
    uint32_t *fat = malloc(fat_bytes);
    if (pread(fd, fat, fat_bytes, (off_t)g.fat_offset) != (ssize_t)fat_bytes)
        die("read FAT");
    uint32_t next = 2;
    while (fat[next] != 0)
        next++;
    next += 1000; /* a gap, as a volume in use has */
    static uint8_t root[32768]; /* the root's first cluster holds every entry made above */
    uint64_t root_at = fat_cluster_offset(&g, g.root_cluster);
    if (g.bytes_per_cluster != sizeof root || pread(fd, root, sizeof root, (off_t)root_at) != (ssize_t)sizeof root)
        die("read root");
    for (uint32_t k = 0; k < BIG_FILES; k++) {
        char name[12];
        snprintf(name, sizeof name, "BIG%u    BIN", k);
        uint8_t *e = NULL;
        for (uint32_t i = 0; i < sizeof root / 32 && !e; i++)
            if (memcmp(root + 32 * i, name, 11) == 0)
                e = root + 32 * i;
        if (!e)
            die("big file entry");
        uint32_t first = next;
        for (uint32_t c = first; c < first + BIG_CLUSTERS; c++)
            fat[c] = c + 1 == first + BIG_CLUSTERS ? 0x0FFFFFFF : c + 1;
        next = first + BIG_CLUSTERS + 7; /* fragmented a little */
        e[20] = (uint8_t)(first >> 16);
        e[21] = (uint8_t)(first >> 24);
        e[26] = (uint8_t)first;
        e[27] = (uint8_t)(first >> 8);
        uint32_t size = BIG_CLUSTERS * g.bytes_per_cluster - 1u;
        memcpy(e + 28, &size, 4);
    }
    /* lost clusters, and a small file's chain two clusters longer than its size */
    for (uint32_t c = next; c < next + 1000; c++)
        fat[c] = 0x0FFFFFFF;
    next += 1000;
    for (uint32_t c = 3; c <= g.max_cluster; c++) {
        if (fat[c] == 0x0FFFFFFF && c > 3) {
            fat[c] = next;
            fat[next] = next + 1;
            fat[next + 1] = 0x0FFFFFFF;
            break;
        }
    }
    for (uint32_t copy = 0; copy < g.fat_count; copy++)
        if (pwrite(fd, fat, fat_bytes, (off_t)(g.fat_offset + copy * g.fat_bytes)) != (ssize_t)fat_bytes)
            die("write FAT");
    if (pwrite(fd, root, sizeof root, (off_t)root_at) != (ssize_t)sizeof root)
        die("write root");
    /* dirty, as a cut leaves it: the state byte and FAT entry 1's clean bit */
    boot[0x41] |= 1;
    uint32_t e1;
    if (pwrite(fd, boot, sizeof boot, 0) != (ssize_t)sizeof boot ||
        pread(fd, &e1, 4, (off_t)(g.fat_offset + 4)) != 4)
        die("dirty");
    e1 &= ~0x08000000u;
    for (uint32_t copy = 0; copy < g.fat_count; copy++)
        if (pwrite(fd, &e1, 4, (off_t)(g.fat_offset + copy * g.fat_bytes + 4)) != 4)
            die("dirty");
    free(fat);
    close(fd);
}

static void prepare(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)(BIG_GIB << 30)) != 0)
        die("create the sparse image");
    close(fd);
    bench b;
    open_fixture(&b, path, 0, 1024);
    fat_mkfs_options mo;
    memset(&mo, 0, sizeof mo);
    mo.fat_type = 32;
    mo.sectors_per_cluster = 64; /* 32 KiB, as mkfs.fat chooses for 32 GiB */
    mo.volume_id = 0x12345678;
    run(&b, do_mkfs, &mo);
    run(&b, do_mount, NULL);
    run(&b, populate, NULL);
    run(&b, do_unmount, NULL);
    close_fixture(&b);
    craft(path);
}

static void mount_time(const char *path, const char *label, const char *tag)
{
    bench b;
    open_fixture(&b, path, 0, 1024);
    const blk_cache_stats *s = blk_cache_get_stats(ORD_CACHE(&b.f));
    double t0 = now_ms();
    run(&b, do_mount, NULL);
    double t1 = now_ms();
    uint64_t misses = s->misses + s->read_ahead_blocks + s->bypass_read_blocks;
    run(&b, do_unmount, NULL);
    double t2 = now_ms();
    printf("bench ordering_mount_%s_32g_ms_%s %.0f ms\n", tag, label, t1 - t0);
    printf("bench ordering_mount_%s_32g_read_mib_%s %.1f MiB\n", tag, label, (double)misses * 4096 / 1048576);
    printf("bench ordering_unmount_%s_32g_ms_%s %.0f ms\n", tag, label, t2 - t1);
#if __has_include("fat/fat_intent.h")
    const fat_mount_report *r = fat_get_mount_report(&b.vol);
    if (r->was_dirty)
        fprintf(stderr, "ordering: %s mount: recovered %d, lost clusters freed %u, chains cut %u, FAT pieces copied %u\n",
                label, r->recovered, r->lost_freed, r->chains_cut, r->fat_blocks_copied);
#endif
    close_fixture(&b);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "ops") == 0)
        metadata_ops(argv[2]);
    else if (argc == 3 && strcmp(argv[1], "prepare") == 0)
        prepare(argv[2]);
    else if (argc == 5 && strcmp(argv[1], "mount") == 0)
        mount_time(argv[2], argv[3], argv[4]);
    else
        die("usage: ordering ops LABEL | prepare IMAGE | mount IMAGE LABEL TAG");
    return 0;
}
