/* Renames and entry sets: a rename that fails changes nothing (issue 19, finding 1), and
 * every entry set the engine writes lies in one device block, so one write carries it
 * (issue 13, finding 2). What a power cut does to them is tests/powercut's business. */
#include "fat/fat_layout.h"
#include "fat/tests/fat_engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(s) (s), strlen(s)

static fat_tv tv;

static bool same_contents(fat_volume *vol, const char *path, size_t len, uint64_t seed)
{
    uint8_t *got;
    size_t n;
    if (tv_read_file(vol, path, &got, &n) != VFS_OK)
        return false;
    uint8_t *want = malloc(len ? len : 1);
    fill_pattern(want, len, seed);
    bool ok = n == len && memcmp(got, want, len) == 0;
    free(got);
    free(want);
    return ok;
}

/* ---- issue 19, finding 1: a rename that fails changes nothing ---------------------------------- */

static void fill_root(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    uint8_t data[5000];
    fill_pattern(data, sizeof data, 1);
    if (!EXPECT(tv_write_file(vol, "/F.BIN", data, sizeof data) == VFS_OK) ||
        !EXPECT(fat_mkdir(vol, P("/D")) == VFS_OK) ||
        !EXPECT(fat_mkdir(vol, P("/D/SUB")) == VFS_OK) ||
        !EXPECT(tv_write_file(vol, "/D/SUB/X.BIN", data, 3000) == VFS_OK))
        return;
    /* fill the 64-slot root but one slot (the volume label takes one) */
    for (int i = 0; i < 64; i++) {
        char p[32];
        snprintf(p, sizeof p, "/FILL%02d", i);
        vfs_status st = tv_write_file(vol, p, "", 0);
        if (st == VFS_DIRECTORY_IS_FULL)
            break;
        if (!EXPECT(st == VFS_OK))
            return;
    }
    /* the last create took the last slot: free one again */
    vfs_status st = fat_unlink(vol, P("/FILL00"));
    *ok = EXPECT(st == VFS_OK) && fat_sync(vol) == VFS_OK;
}

static void failing_renames(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    fat_statfs_info before, after;
    if (!EXPECT(fat_statfs(vol, &before) == VFS_OK))
        return;
    static const char longer[] = "/a much longer name that needs several lfn slots.bin";
    if (!EXPECT(fat_rename(vol, P("/F.BIN"), P(longer)) == VFS_DIRECTORY_IS_FULL) ||
        !EXPECT(fat_rename(vol, P("/D"), P("/a much longer directory name that needs several lfn slots")) ==
                VFS_DIRECTORY_IS_FULL))
        return;
    /* a name that clashes with a directory, and a directory onto a file: refused alike */
    if (!EXPECT(fat_rename(vol, P("/F.BIN"), P("/D")) == VFS_IS_DIRECTORY) ||
        !EXPECT(fat_rename(vol, P("/D"), P("/F.BIN")) == VFS_NOT_DIRECTORY))
        return;
    uint8_t data[5000];
    fill_pattern(data, sizeof data, 1);
    vfs_stat st;
    if (!EXPECT(same_contents(vol, "/F.BIN", 5000, 1)) || !EXPECT(same_contents(vol, "/D/SUB/X.BIN", 3000, 1)) ||
        !EXPECT(tv_path_stat(vol, longer, &st) == VFS_NO_FILE))
        return;
    if (!EXPECT(fat_statfs(vol, &after) == VFS_OK) || !EXPECT(after.free_clusters == before.free_clusters))
        return;
    *ok = 1;
}

TEST(failed_rename_changes_nothing)
{
    const char *img = tmp_path("fullroot.img");
    remove(img);
    CHECK(tool_run(false, "mkfs.fat -C -F 16 -s 1 -r 64 -n TESTVOL %s 8192", img) == 0);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    int ok = 0;
    CHECK(fat_tv_call(&tv, fill_root, &ok));
    CHECK(ok);
    ok = 0;
    CHECK(fat_tv_call(&tv, failing_renames, &ok));
    CHECK(ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* ---- issue 13, finding 2: every new entry set in one device block ----------------------------- */

static void long_names(fat_tv *t, void *arg)
{
    int *ok = arg;
    fat_volume *vol = &t->vol;
    if (!EXPECT(fat_mkdir(vol, P("/n")) == VFS_OK))
        return;
    for (uint32_t i = 0; i < 60; i++) {
        char p[300];
        uint32_t len = 20 + (i * 37) % 230; /* 2 to 20 long-name entries */
        int w = snprintf(p, sizeof p, "/n/%03u-", i);
        for (uint32_t k = 0; k < len && (size_t)w + 2 < sizeof p; k++)
            p[w++] = (char)('a' + (i + k) % 26);
        p[w] = '\0';
        if (!EXPECT(tv_write_file(vol, p, "x", 1) == VFS_OK))
            return;
        if (i % 7 == 3 && !EXPECT(fat_unlink(vol, p, strlen(p)) == VFS_OK))
            return;
    }
    *ok = 1;
}

/* Every set of the directory at `first` (cluster directory) lies in one 4096-byte block. */
static bool sets_in_one_block(const raw_image *img, uint32_t first, uint32_t *sets)
{
    uint32_t per = img->g.bytes_per_cluster / 32, slot = 0;
    uint64_t offs[4096];
    uint32_t n = 0;
    for (uint32_t c = first; c >= 2 && c <= img->g.max_cluster && n < 4096; c = raw_fat_get(img, 0, c))
        for (uint32_t i = 0; i < per && n < 4096; i++)
            offs[n++] = fat_cluster_offset(&img->g, c) + 32u * i;
    uint32_t lfn_first = UINT32_MAX;
    for (slot = 0; slot < n; slot++) {
        const uint8_t *e = img->data + offs[slot];
        if (e[0] == 0)
            break;
        if (e[0] == 0xE5) {
            lfn_first = UINT32_MAX;
            continue;
        }
        if (e[11] == 0x0F) {
            if (e[0] & 0x40)
                lfn_first = slot;
            continue;
        }
        if (lfn_first != UINT32_MAX) {
            (*sets)++;
            if (offs[lfn_first] / 4096 != offs[slot] / 4096 || offs[slot] - offs[lfn_first] != 32u * (slot - lfn_first)) {
                printf("  the set of slots %u..%u spans blocks\n", lfn_first, slot);
                return false;
            }
        }
        lfn_first = UINT32_MAX;
    }
    return true;
}

static void sets_case(int fat, uint32_t kib, uint32_t spc)
{
    const char *img = tmp_path("sets.img");
    CHECK(make_image(img, kib, fat, 512, spc));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    int ok = 0;
    CHECK(fat_tv_call(&tv, long_names, &ok));
    CHECK(ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    size_t n;
    uint8_t *root = raw_root_entries(&raw, &n);
    uint32_t first = 0, sets = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(root + 32 * i, "N          ", 11) == 0)
            first = raw_entry_cluster(&raw, root + 32 * i);
    CHECK(first != 0);
    CHECK(sets_in_one_block(&raw, first, &sets));
    CHECK(sets > 40);
    raw_free(&raw);
}

/* 512-byte clusters: sets of more than 16 entries need two clusters side by side. */
TEST(entry_sets_stay_in_one_block_fat32_small_clusters) { sets_case(32, 33792, 1); }
TEST(entry_sets_stay_in_one_block_fat16) { sets_case(16, 16384, 4); }

/* ---- a set another system wrote across two blocks ------------------------------------------- */

static void unlink_and_sync(fat_tv *t, void *arg)
{
    int *ok = arg;
    ram_device_clear_log(&t->f.dev);
    *ok = fat_unlink(&t->vol, P("/a long name that another system wrote.txt")) == VFS_OK &&
          fat_sync(&t->vol) == VFS_OK;
}

/* Its removal deletes the short entry's block first, then (after a FLUSH) the block with the
 * rest of its long name: a cut between leaves orphaned long-name entries of a file already
 * gone (recovery deletes them), never a short entry without the start of its long name. */
TEST(removing_a_foreign_set_across_blocks_deletes_the_short_entry_first)
{
    const char *img = tmp_path("foreign-set.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    uint64_t root = raw.g.root_dir_offset;
    raw_free(&raw);
    /* slot k starts a device block; the label takes slot 0, short names one slot each */
    uint32_t k = (uint32_t)((4096 - root % 4096) % 4096 / 32);
    CHECK(k > 4);
    for (uint32_t i = 1; i + 2 < k; i++)
        CHECK(tool_run(false, "mcopy -i %s /dev/null ::/F%03u.TXT", img, i) == 0);
    CHECK(tool_run(false, "mcopy -i %s /dev/null '::/a long name that another system wrote.txt'", img) == 0);
    CHECK(raw_load(&raw, img));
    /* its set starts two slots before the boundary; its short entry lies after it */
    CHECK(raw.data[root + 32u * (k - 2)] == 0x44 && raw.data[root + 32u * (k - 2) + 11] == 0x0F);
    uint32_t s = k - 2;
    while (raw.data[root + 32u * s + 11] == 0x0F)
        s++;
    CHECK(s >= k && raw.data[root + 32u * s] != 0 && raw.data[root + 32u * s] != 0xE5);
    uint64_t short_block = (root + 32u * s) / 4096, first_block = (root + 32u * (k - 2)) / 4096;
    raw_free(&raw);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    int ok = 0;
    CHECK(fat_tv_call(&tv, unlink_and_sync, &ok));
    CHECK(ok);
    int64_t short_at = -1, first_at = -1, flush_between = 0;
    for (uint64_t i = 0; i < ram_device_log_count(&tv.f.dev); i++) {
        const ram_device_log_entry *l = ram_device_log_at(&tv.f.dev, i);
        if (l->code == BLK_REQ_WRITE && l->block <= short_block && short_block < l->block + l->count && short_at < 0)
            short_at = (int64_t)i;
        else if (l->code == BLK_REQ_WRITE && l->block <= first_block && first_block < l->block + l->count &&
                 first_at < 0)
            first_at = (int64_t)i;
        else if (l->code == BLK_REQ_FLUSH && short_at >= 0 && first_at < 0)
            flush_between = 1;
    }
    CHECK(short_at >= 0 && first_at > short_at && flush_between);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}
