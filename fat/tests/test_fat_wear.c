/* Wear (issue 18): the write policies that keep FAT's fixed blocks and the data area from
 * wearing out first, checked by counting the writes the RAM device receives and by reading
 * the image: next fit moves on and survives a remount (FSInfo's hint, or a start position
 * that changes with the clock on FAT12/16), a truncate-and-rewrite writes its directory
 * block once, FSInfo's hint is written at an interval without an unmount, both FAT copies
 * are equal at every FLUSH, and the chain a truncation keeps until the entry is rewritten
 * is freed in every way a file can end. */
#include "fat/fat_engine.h"
#include "fat/fat_layout.h"
#include "fat/tests/fat_engine_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fat_tv tv;

#define P(s) (s), strlen(s)

typedef struct rewrite_job {
    const char *path;
    uint32_t times;
    size_t len;
    uint32_t *firsts;           /* out: the file's first cluster after each rewrite */
    uint32_t dir_block_writes;  /* out: writes of the entry's block during the last rewrite */
    vfs_status st;
} rewrite_job;

static uint32_t block_writes(fat_tv *t, uint64_t block)
{
    uint32_t n = 0;
    for (uint64_t i = 0; i < ram_device_log_count(&t->f.dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(&t->f.dev, i);
        if (e->code == BLK_REQ_WRITE && block >= e->block && block < e->block + e->written)
            n++;
    }
    return n;
}

/* Open with truncate, write, fsync, close: as a program saves its settings. */
static void rewrite(fat_tv *t, void *arg)
{
    rewrite_job *j = arg;
    uint8_t *data = malloc(j->len);
    for (uint32_t i = 0; i < j->times; i++) {
        fill_pattern(data, j->len, i);
        fat_node *n;
        ram_device_clear_log(&t->f.dev);
        j->st = fat_open(&t->vol, j->path, strlen(j->path), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_TRUNCATE,
                         &n);
        if (j->st != VFS_OK)
            break;
        size_t done;
        j->st = fat_write(n, 0, data, j->len, &done);
        if (j->st == VFS_OK)
            j->st = fat_fsync(n);
        uint64_t dir_block = n->dirent_offset / BLK_TRANSFER_SIZE;
        if (j->firsts)
            j->firsts[i] = n->first_cluster;
        vfs_status st = fat_close(n);
        if (j->st == VFS_OK)
            j->st = st;
        if (j->st != VFS_OK)
            break;
        j->dir_block_writes = block_writes(t, dir_block);
    }
    free(data);
}

static void remount(fat_tv *t, void *arg)
{
    vfs_status *st = arg;
    *st = fat_unmount(&t->vol);
    if (*st == VFS_OK)
        *st = fat_mount(&t->vol, &t->f.stack.cache, &t->cfg, NULL);
}

static uint32_t fsinfo_hint(const char *img)
{
    raw_image raw;
    if (!raw_load(&raw, img))
        return 0;
    uint32_t v;
    memcpy(&v, raw.data + raw.g.fsinfo_sector * 512 + FAT_FSINFO_NEXT_FREE, 4);
    raw_free(&raw);
    return v;
}

/* Rewrites land on new clusters, each after the one before, and go on after a remount
 * from where they stopped (the hint FSInfo kept). Before: the allocator went back to the
 * lowest cluster freed, so a few clusters took every rewrite. */
TEST(next_fit_moves_on_and_survives_remount)
{
    const char *img = tmp_path("nextfit.img");
    CHECK(make_image(img, 33792, 32, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    uint32_t firsts[40];
    rewrite_job j = { .path = "/settings.ini", .times = 20, .len = 600, .firsts = firsts };
    CHECK(fat_tv_call(&tv, rewrite, &j));
    CHECK_EQ(j.st, VFS_OK);
    for (uint32_t i = 1; i < 20; i++)
        CHECK_MSG(firsts[i] > firsts[i - 1], "rewrite %u at cluster %u, the one before at %u", i, firsts[i],
                  firsts[i - 1]);
    vfs_status st;
    CHECK(fat_tv_call(&tv, remount, &st));
    CHECK_EQ(st, VFS_OK);
    j.firsts = firsts + 20;
    CHECK(fat_tv_call(&tv, rewrite, &j));
    CHECK_EQ(j.st, VFS_OK);
    CHECK_MSG(firsts[20] > firsts[19], "after a remount at cluster %u, before it at %u", firsts[20], firsts[19]);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    uint32_t hint = fsinfo_hint(img);
    CHECK_MSG(hint > firsts[39] && hint != FAT_FSINFO_UNKNOWN, "FSInfo hint %u, last cluster %u", hint, firsts[39]);
    CHECK(image_clean(img));
}

/* A truncate-and-rewrite writes the block holding the file's entry once (the new size and
 * first cluster), not once for the truncation and again for the size: 2 before. */
TEST(rewrite_writes_directory_block_once)
{
    static const int types[] = { 12, 16, 32 };
    static const uint32_t kib[] = { 1024, 16384, 33792 };
    for (int k = 0; k < 3; k++) {
        const char *img = tmp_path("dironce.img");
        CHECK(make_image(img, kib[k], types[k], 512, 1));
        fat_tv_options o = fat_tv_defaults();
        CHECK(fat_tv_open(&tv, img, &o));
        CHECK_EQ(tv.mount_status, VFS_OK);
        rewrite_job j = { .path = "/a config file.json", .times = 5, .len = 900 };
        CHECK(fat_tv_call(&tv, rewrite, &j));
        CHECK_EQ(j.st, VFS_OK);
        CHECK_MSG(j.dir_block_writes == 1, "FAT%d: the entry's block written %u times by a rewrite", types[k],
                  j.dir_block_writes);
        CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
        CHECK(image_clean(img));
        CHECK(fat_tv_open(&tv, img, &o));
        CHECK(tv_file_is(&tv, "/a config file.json", 900, 4));
        CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    }
}

/* FAT12/16 keep no position: each mount starts from a hash of the clock and the FAT, so a
 * device that writes and deletes a file in each session does not write the same clusters
 * every time. */
static int64_t clock_value;
static int64_t moving_clock(void *ctx)
{
    (void)ctx;
    return clock_value;
}

typedef struct session_job {
    uint32_t first;
    vfs_status st;
} session_job;

static void write_and_delete(fat_tv *t, void *arg)
{
    session_job *j = arg;
    uint8_t data[3000];
    fill_pattern(data, sizeof data, 1);
    fat_node *n;
    j->st = fat_open(&t->vol, P("/tmp.bin"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    if (j->st != VFS_OK)
        return;
    size_t done;
    j->st = fat_write(n, 0, data, sizeof data, &done);
    j->first = n->first_cluster;
    fat_close(n);
    if (j->st == VFS_OK)
        j->st = fat_unlink(&t->vol, P("/tmp.bin"));
}

TEST(start_position_moves_between_sessions_fat16)
{
    const char *img = tmp_path("sessions.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    tv.cfg.clock = moving_clock;
    uint32_t firsts[8];
    uint32_t distinct = 0;
    for (int s = 0; s < 8; s++) {
        clock_value = 1700000000 + 86400 * s;
        vfs_status st;
        CHECK(fat_tv_call(&tv, remount, &st));
        CHECK_EQ(st, VFS_OK);
        session_job j = { 0 };
        CHECK(fat_tv_call(&tv, write_and_delete, &j));
        CHECK_EQ(j.st, VFS_OK);
        firsts[s] = j.first;
        bool seen = false;
        for (int k = 0; k < s; k++)
            seen |= firsts[k] == j.first;
        distinct += !seen;
    }
    CHECK_MSG(distinct >= 7, "8 sessions wrote only %u distinct first clusters", distinct);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* Without an unmount (power simply cut, as a logger's is), FSInfo's hint still follows the
 * allocator: it is rewritten at an fsync once a quarter of the clusters was claimed. */
static void fill_quarter(fat_tv *t, void *arg)
{
    vfs_status *st = arg;
    const fat_geometry *g = fat_get_geometry(&t->vol);
    size_t len = (size_t)(g->cluster_count / 4u + 8u) * g->bytes_per_cluster;
    uint8_t *data = malloc(len);
    fill_pattern(data, len, 5);
    fat_node *n;
    *st = fat_open(&t->vol, P("/big.bin"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    if (*st != VFS_OK) {
        free(data);
        return;
    }
    size_t done;
    *st = fat_write(n, 0, data, len, &done);
    if (*st == VFS_OK)
        *st = fat_fsync(n);
    fat_close(n);
    free(data);
}

TEST(fsinfo_hint_written_at_an_interval)
{
    const char *img = tmp_path("interval.img"), *cut = tmp_path("interval-cut.img");
    CHECK(make_image(img, 33792, 32, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(blk_fixture_save(&tv.f, cut) == 0);
    uint32_t at_mount = fsinfo_hint(cut);
    vfs_status st;
    CHECK(fat_tv_call(&tv, fill_quarter, &st));
    CHECK_EQ(st, VFS_OK);
    CHECK(blk_fixture_save(&tv.f, cut) == 0); /* as a cut would leave it */
    uint32_t hint = fsinfo_hint(cut);
    CHECK_MSG(hint != at_mount && hint == tv.vol.next_free, "hint %u at mount, %u after, allocator at %u", at_mount,
              hint, tv.vol.next_free);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* Both FAT copies are equal whenever a FLUSH completes (here: after every fsync of a
 * growing log and of rewrites, on the device image itself). */
static bool fats_equal(fat_tv *t)
{
    const fat_geometry *g = fat_get_geometry(&t->vol);
    return memcmp(t->f.image + g->fat_offset, t->f.image + g->fat_offset + g->fat_bytes, g->fat_bytes) == 0;
}

typedef struct log_job {
    uint32_t unequal;
    vfs_status st;
} log_job;

static void log_and_compare(fat_tv *t, void *arg)
{
    log_job *j = arg;
    fat_node *n;
    j->st = fat_open(&t->vol, P("/log.txt"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &n);
    if (j->st != VFS_OK)
        return;
    uint8_t line[700];
    fill_pattern(line, sizeof line, 9);
    for (uint32_t i = 0; i < 300 && j->st == VFS_OK; i++) {
        size_t done;
        uint64_t at;
        j->st = fat_append(n, line, sizeof line, &done, &at);
        if (j->st == VFS_OK)
            j->st = fat_fsync(n);
        j->unequal += !fats_equal(t);
    }
    fat_close(n);
}

TEST(fat_copies_equal_at_every_flush)
{
    const char *img = tmp_path("copies.img");
    CHECK(make_image(img, 16384, 16, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    log_job j = { 0 };
    CHECK(fat_tv_call(&tv, log_and_compare, &j));
    CHECK_EQ(j.st, VFS_OK);
    CHECK_EQ(j.unequal, 0);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* The chain a truncation to 0 keeps until the entry is rewritten is freed however the
 * file ends: unlinked while open, replaced by a rename, or rewritten when the volume is
 * too full to hold both the old and the new contents. */
typedef struct end_job {
    int how;                    /* 0 unlink, 1 rename over it, 2 rewrite nearly the volume */
    vfs_status st;
    uint64_t free_before, free_after;
} end_job;

static void truncate_then_end(fat_tv *t, void *arg)
{
    end_job *j = arg;
    fat_statfs_info fs;
    j->st = fat_statfs(&t->vol, &fs);
    j->free_before = fs.free_clusters;
    size_t len = j->how == 2 ? (size_t)(fs.free_clusters * 6 / 10) * fs.cluster_size : 20000;
    uint8_t *data = malloc(len);
    fill_pattern(data, len, 3);
    if (j->st == VFS_OK)
        j->st = tv_write_file(&t->vol, "/victim.bin", data, len);
    if (j->st == VFS_OK && j->how == 1)
        j->st = tv_write_file(&t->vol, "/other.bin", data, 100);
    fat_node *n = NULL;
    if (j->st == VFS_OK)
        j->st = fat_open(&t->vol, P("/victim.bin"), VFS_OPEN_READ_WRITE | VFS_OPEN_TRUNCATE, &n);
    size_t done;
    fill_pattern(data, len, 4);
    if (j->st == VFS_OK)
        j->st = fat_write(n, 0, data, j->how == 2 ? len : 5000, &done);
    if (j->st == VFS_OK && j->how == 0)
        j->st = fat_unlink(&t->vol, P("/victim.bin"));
    if (j->st == VFS_OK && j->how == 1)
        j->st = fat_rename(&t->vol, P("/other.bin"), P("/victim.bin"));
    if (n) {
        vfs_status st = fat_close(n);
        if (j->st == VFS_OK)
            j->st = st;
    }
    if (j->st == VFS_OK && j->how == 1)
        j->st = fat_unlink(&t->vol, P("/victim.bin"));
    if (j->st == VFS_OK && j->how == 2)
        j->st = fat_unlink(&t->vol, P("/victim.bin"));
    if (j->st == VFS_OK)
        j->st = fat_statfs(&t->vol, &fs);
    j->free_after = fs.free_clusters;
    free(data);
}

TEST(truncated_chain_freed_however_the_file_ends)
{
    for (int how = 0; how < 3; how++) {
        const char *img = tmp_path("ends.img");
        CHECK(make_image(img, 16384, 16, 512, 4));
        fat_tv_options o = fat_tv_defaults();
        CHECK(fat_tv_open(&tv, img, &o));
        CHECK_EQ(tv.mount_status, VFS_OK);
        end_job j = { .how = how };
        CHECK(fat_tv_call(&tv, truncate_then_end, &j));
        CHECK_MSG(j.st == VFS_OK, "case %d: status %d", how, j.st);
        CHECK_MSG(j.free_after == j.free_before, "case %d: %llu clusters free before, %llu after", how,
                  (unsigned long long)j.free_before, (unsigned long long)j.free_after);
        CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
        CHECK(image_clean(img));
    }
}

/* After a cut the hint may be stale by up to a checkpoint interval; a device cut every
 * session would then start at the same place each time. A dirty volume starts at a hashed
 * place in the interval after the hint. */
TEST(dirty_mount_does_not_reuse_a_stale_hint)
{
    const char *img = tmp_path("stale.img"), *cut = tmp_path("stale-cut.img");
    CHECK(make_image(img, 33792, 32, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    uint32_t first;
    rewrite_job j = { .path = "/settings.ini", .times = 1, .len = 600, .firsts = &first };
    CHECK(fat_tv_call(&tv, rewrite, &j));
    CHECK_EQ(j.st, VFS_OK);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    uint32_t hint = fsinfo_hint(img);
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK_EQ(tv.vol.next_free, hint); /* clean: goes on from the hint */
    CHECK(blk_fixture_save(&tv.f, cut) == 0);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    CHECK(fat_tv_open(&tv, cut, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(tv.vol.was_dirty);
    uint32_t interval = fat_get_geometry(&tv.vol)->cluster_count / 4u;
    CHECK_MSG(tv.vol.next_free != hint && tv.vol.next_free > hint && tv.vol.next_free < hint + interval,
              "a dirty mount starts at %u, the stale hint is %u", tv.vol.next_free, hint);
    CHECK_EQ(fat_tv_close(&tv, cut), VFS_OK);
    CHECK(image_clean(cut));
}

/* Discard (fat_config.discard): the blocks a freed chain held are passed to the device
 * once the removal is durable, and only then can the clusters be taken again. */
typedef struct discard_job {
    uint32_t first;
    vfs_status st;
} discard_job;

static void write_sync_unlink_sync(fat_tv *t, void *arg)
{
    discard_job *j = arg;
    uint8_t data[65536];
    fill_pattern(data, sizeof data, 6);
    j->st = tv_write_file(&t->vol, "/dead.bin", data, sizeof data);
    fat_node *n;
    if (j->st == VFS_OK)
        j->st = fat_open(&t->vol, P("/dead.bin"), VFS_OPEN_READ_ONLY, &n);
    if (j->st != VFS_OK)
        return;
    j->first = n->first_cluster;
    fat_close(n);
    j->st = fat_sync(&t->vol);
    if (j->st == VFS_OK)
        j->st = fat_unlink(&t->vol, P("/dead.bin"));
    if (j->st == VFS_OK)
        j->st = fat_sync(&t->vol);
    if (j->st == VFS_OK)
        j->st = tv_write_file(&t->vol, "/alive.bin", data, 1000); /* reuse is fine after */
}

static bool zeros(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

TEST(discard_passes_freed_clusters_to_the_device)
{
    const char *img = tmp_path("discard.img");
    CHECK(make_image(img, 16384, 16, 512, 8));
    fat_tv_options o = fat_tv_defaults();
    o.discard = true;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    ram_device_clear_log(&tv.f.dev);
    discard_job j = { 0 };
    CHECK(fat_tv_call(&tv, write_sync_unlink_sync, &j));
    CHECK_EQ(j.st, VFS_OK);
    const fat_geometry *g = fat_get_geometry(&tv.vol);
    uint64_t at = fat_cluster_offset(g, j.first);
    uint32_t discarded = 0;
    int64_t discard_at = -1, last_flush_before = -1;
    for (uint64_t i = 0; i < ram_device_log_count(&tv.f.dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(&tv.f.dev, i);
        if (e->code == BLK_REQ_FLUSH && discard_at < 0)
            last_flush_before = (int64_t)i;
        if (e->code == BLK_REQ_DISCARD && e->block * BLK_TRANSFER_SIZE <= at &&
            at < (e->block + e->count) * BLK_TRANSFER_SIZE) {
            discarded += e->count;
            discard_at = (int64_t)i;
        }
    }
    CHECK_MSG(discarded * BLK_TRANSFER_SIZE >= 65536, "%u blocks discarded", discarded);
    CHECK(last_flush_before >= 0 && last_flush_before < discard_at); /* after the removal was durable */
    CHECK(j.first != 0 && zeros(tv.f.image + at, 65536));
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* Whether the file system under the test directory reports punched holes (tmpfs, ext4,
 * xfs do). */
static bool holes_reported(void)
{
    const char *probe = tmp_path("hole-probe.bin");
    FILE *f = fopen(probe, "w+b");
    if (!f)
        return false;
    static uint8_t block[8192];
    memset(block, 1, sizeof block);
    bool ok = fwrite(block, 1, sizeof block, f) == sizeof block && fflush(f) == 0 &&
              fallocate(fileno(f), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096) == 0 &&
              lseek(fileno(f), 0, SEEK_HOLE) == 0;
    fclose(f);
    return ok;
}

/* The Linux driver punches a hole in an image file where the freed clusters were. */
TEST(discard_punches_holes_in_an_image_file)
{
    if (!holes_reported()) {
        printf("SKIP discard_punches_holes_in_an_image_file: the file system under %s does not punch or report "
               "holes\n", test_tmpdir());
        return;
    }
    const char *img = tmp_path("punch.img");
    CHECK(make_image(img, 16384, 16, 512, 8));
    fat_tv_options o = fat_tv_defaults();
    o.discard = true;
    o.linux_backend = true;
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    discard_job j = { 0 };
    CHECK(fat_tv_call(&tv, write_sync_unlink_sync, &j));
    CHECK_EQ(j.st, VFS_OK);
    uint64_t at = fat_cluster_offset(fat_get_geometry(&tv.vol), j.first);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    FILE *f = fopen(img, "rb");
    CHECK(f != NULL);
    off_t hole = lseek(fileno(f), (off_t)at, SEEK_HOLE);
    fclose(f);
    CHECK_MSG(hole == (off_t)at, "no hole at the freed cluster (byte %llu): SEEK_HOLE gave %lld",
              (unsigned long long)at, (long long)hole);
    CHECK(image_clean(img));
}
