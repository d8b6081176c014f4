/* Mount-time recovery, the dirty marks, and FAT copies that disagree: the findings of
 * issues 13 (4) and 19 (5) that one crafted image shows (tests/powercut shows the rest at
 * every write). Images are made with mkfs.fat and mtools, then damaged byte by byte as a
 * cut (or another system) would leave them. */
#include "fat/fat_intent.h"
#include "fat/fat_layout.h"
#include "fat/tests/fat_engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fat_tv tv;

/* ---- helpers ------------------------------------------------------------------------------ */

/* Marks the volume as a cut leaves it: the boot sector state byte, and FAT entry 1 (16/32). */
static void make_dirty(raw_image *img)
{
    img->data[img->g.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE] |= FAT_STATE_DIRTY;
    uint32_t bit = img->g.type == FAT_TYPE_16 ? FAT16_CLEAN_SHUTDOWN : img->g.type == FAT_TYPE_32 ? FAT32_CLEAN_SHUTDOWN : 0;
    for (uint32_t k = 0; k < img->g.fat_count; k++)
        raw_fat_set(img, k, 1, raw_fat_get(img, k, 1) & ~bit);
}

static uint32_t first_free(const raw_image *img, uint32_t from)
{
    for (uint32_t c = from; c <= img->g.max_cluster; c++)
        if (raw_fat_get(img, 0, c) == 0)
            return c;
    return 0;
}

static bool mtools_file(const char *img, const char *name, size_t len, uint64_t seed)
{
    uint8_t *data = malloc(len ? len : 1);
    fill_pattern(data, len, seed);
    const char *src = tmp_path("mtools-src.bin");
    bool ok = file_write_all(src, data, len) == 0 && tool_run(false, "mcopy -o -i %s %s '::%s'", img, src, name) == 0;
    free(data);
    return ok;
}

/* ---- dirty marks on every FAT type ------------------------------------------------------------- */

static void dirty_case(int fat, uint32_t kib)
{
    const char *img = tmp_path("dirty.img"), *cut = tmp_path("dirty-cut.img");
    CHECK(make_image(img, kib, fat, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK(!tv.vol.was_dirty && !fat_get_mount_report(&tv.vol)->was_dirty);
    CHECK(blk_fixture_save(&tv.f, cut) == 0); /* as a cut would leave it while mounted */
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    raw_image raw;
    size_t state = fat == 32 ? FAT_BS32_STATE : FAT_BS16_STATE;
    CHECK(raw_load(&raw, cut));
    CHECK(raw.data[state] & FAT_STATE_DIRTY);
    if (fat == 32) /* the backup boot sector follows, so fsck.fat sees only the dirty bit */
        CHECK(raw.data[raw.g.backup_boot_sector * 512 + state] & FAT_STATE_DIRTY);
    raw_free(&raw);
    CHECK(raw_load(&raw, img));
    CHECK(!(raw.data[state] & FAT_STATE_DIRTY));
    raw_free(&raw);
    CHECK(image_clean(img));
    CHECK(fat_tv_open(&tv, cut, &o));
    CHECK(tv.vol.was_dirty && fat_get_mount_report(&tv.vol)->was_dirty && fat_get_mount_report(&tv.vol)->recovered);
    CHECK_EQ(fat_tv_close(&tv, cut), VFS_OK);
    CHECK(image_clean(cut));
}

/* FAT12 has no clean bit in FAT entry 1: before, a FAT12 volume was never marked dirty. */
TEST(dirty_state_byte_fat12) { dirty_case(12, 1024); }
TEST(dirty_state_byte_fat16) { dirty_case(16, 8192); }
TEST(dirty_state_byte_fat32) { dirty_case(32, 33792); }

/* ---- recovery of what a cut leaves ---------------------------------------------------------------- */

static void mount_and_report(fat_tv *t, void *arg)
{
    fat_statfs_info *fs = arg;
    fat_statfs(&t->vol, fs);
}

static void cut_damage_case(int fat, uint32_t kib, uint32_t spc)
{
    const char *img = tmp_path("cutdamage.img");
    CHECK(make_image(img, kib, fat, 512, spc));
    CHECK(tool_run(false, "mmd -i %s ::/dir", img) == 0);
    CHECK(mtools_file(img, "/h.txt", 6, 1));
    CHECK(mtools_file(img, "/dir/a long file name kept.bin", 3000, 2));
    CHECK(mtools_file(img, "/dir/a long file name lost.bin", 3000, 3));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    /* h.txt's chain two clusters longer than its size */
    uint8_t *h = raw_root_entry(&raw, "H       TXT");
    CHECK(h != NULL);
    uint32_t hc = raw_entry_cluster(&raw, h), x = first_free(&raw, 2), y = first_free(&raw, x + 1);
    for (uint32_t k = 0; k < raw.g.fat_count; k++) {
        raw_fat_set(&raw, k, hc, x);
        raw_fat_set(&raw, k, x, y);
        raw_fat_set(&raw, k, y, 0xFFFFFFF);
    }
    /* a lost chain, and an allocation only the second FAT saw */
    uint32_t lost = first_free(&raw, y + 1), stale = first_free(&raw, lost + 1);
    for (uint32_t k = 0; k < raw.g.fat_count; k++)
        raw_fat_set(&raw, k, lost, 0xFFFFFFF);
    raw_fat_set(&raw, 1, stale, 0xFFFFFFF);
    /* the "lost" file's short entry gone, its long-name entries orphaned, its chain lost */
    uint8_t *dir = NULL;
    size_t n;
    uint8_t *root = raw_root_entries(&raw, &n);
    for (size_t i = 0; i < n && !dir; i++)
        if (memcmp(root + 32 * i, "DIR        ", 11) == 0)
            dir = raw.data + fat_cluster_offset(&raw.g, raw_entry_cluster(&raw, root + 32 * i));
    CHECK(dir != NULL);
    int dropped = 0;
    for (int i = 2; i < 16 && !dropped; i++) {
        uint8_t *e = dir + 32 * i;
        if (e[11] != 0x0F && memcmp(e, "ALONGF~2BIN", 11) == 0) {
            e[0] = FAT_DIRENT_DELETED;
            dropped = 1;
        }
    }
    CHECK(dropped);
    make_dirty(&raw);
    CHECK(raw_save(&raw, img));
    raw_free(&raw);

    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    const fat_mount_report *rep = fat_get_mount_report(&tv.vol);
    CHECK(rep->was_dirty && rep->recovered && !rep->needs_check);
    CHECK_EQ(rep->chains_cut, 1);
    CHECK(rep->orphans_removed >= 1);
    CHECK(rep->lost_freed >= 3 + 1); /* the long chain's tail, the lost chain, the lost file */
    CHECK(rep->fat_blocks_copied >= 1 && rep->fat_disagreements >= 1);
    fat_statfs_info fs;
    CHECK(fat_tv_call(&tv, mount_and_report, &fs));
    CHECK(fs.was_dirty && !fs.needs_check);
    CHECK(tv_file_is(&tv, "/h.txt", 6, 1));
    CHECK(tv_file_is(&tv, "/dir/a long file name kept.bin", 3000, 2));
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

TEST(recovery_repairs_cut_damage_fat12) { cut_damage_case(12, 1024, 1); }
TEST(recovery_repairs_cut_damage_fat16) { cut_damage_case(16, 16384, 4); }
TEST(recovery_repairs_cut_damage_fat32) { cut_damage_case(32, 33792, 1); }

/* Damage a cut does not cause (a chain running into another file's): recovery frees
 * nothing, says so, and leaves the volume marked dirty for a checker. */
TEST(recovery_leaves_foreign_damage_alone)
{
    const char *img = tmp_path("foreign.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    CHECK(mtools_file(img, "/a.bin", 5000, 1));
    CHECK(mtools_file(img, "/b.bin", 5000, 2));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    uint32_t a = raw_entry_cluster(&raw, raw_root_entry(&raw, "A       BIN"));
    uint32_t b = raw_entry_cluster(&raw, raw_root_entry(&raw, "B       BIN"));
    uint32_t lost = first_free(&raw, 2);
    for (uint32_t k = 0; k < raw.g.fat_count; k++) {
        raw_fat_set(&raw, k, raw_fat_get(&raw, k, a), b); /* a's second cluster runs into b */
        raw_fat_set(&raw, k, lost, 0xFFFF);
    }
    make_dirty(&raw);
    CHECK(raw_save(&raw, img));
    raw_free(&raw);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    const fat_mount_report *rep = fat_get_mount_report(&tv.vol);
    CHECK(rep->was_dirty && rep->needs_check && !rep->recovered && rep->lost_freed == 0);
    fat_statfs_info fs;
    CHECK(fat_tv_call(&tv, mount_and_report, &fs));
    CHECK(fs.needs_check);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(raw_load(&raw, img));
    CHECK(raw_fat_get(&raw, 0, lost) == 0xFFFF);      /* not freed */
    CHECK(raw.data[FAT_BS16_STATE] & FAT_STATE_DIRTY); /* still dirty */
    raw_free(&raw);
}

/* A rename cut between its first and second step: the new entry (with its record) and the
 * old one share the file's clusters. Recovery keeps the new name only. */
TEST(recovery_finishes_a_rename_from_its_record)
{
    const char *img = tmp_path("record.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    CHECK(tool_run(false, "mmd -i %s ::/a ::/b", img) == 0);
    CHECK(mtools_file(img, "/a/OLD.TXT", 5000, 7));
    CHECK(mtools_file(img, "/b/OTHER.TXT", 100, 8));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    size_t n;
    uint8_t *root = raw_root_entries(&raw, &n), *da = NULL, *db = NULL;
    uint32_t ca = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(root + 32 * i, "A          ", 11) == 0) {
            ca = raw_entry_cluster(&raw, root + 32 * i);
            da = raw.data + fat_cluster_offset(&raw.g, ca);
        }
        if (memcmp(root + 32 * i, "B          ", 11) == 0)
            db = raw.data + fat_cluster_offset(&raw.g, raw_entry_cluster(&raw, root + 32 * i));
    }
    CHECK(da && db && memcmp(da + 64, "OLD     TXT", 11) == 0 && memcmp(db + 64, "OTHER   TXT", 11) == 0);
    /* slots 3 and 4 of /b: the record, then NEW.TXT with OLD.TXT's cluster and size */
    fat_rename_record rec = { .source_dir = ca, .source_slot = 2, .source_lfn_count = 0 };
    memcpy(rec.source_name, "OLD     TXT", 11);
    fat_rename_record_encode(&rec, db + 96);
    memcpy(db + 128, da + 64, 32);
    memcpy(db + 128, "NEW     TXT", 11);
    make_dirty(&raw);
    CHECK(raw_save(&raw, img));
    raw_free(&raw);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK_EQ(fat_get_mount_report(&tv.vol)->renames_completed, 1);
    CHECK(tv_file_absent(&tv, "/a/OLD.TXT"));
    CHECK(tv_file_is(&tv, "/b/NEW.TXT", 5000, 7));
    CHECK(tv_file_is(&tv, "/b/OTHER.TXT", 100, 8));
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
    /* the record is gone: a plain deleted entry */
    CHECK(raw_load(&raw, img));
    root = raw_root_entries(&raw, &n);
    for (size_t i = 0; i < n; i++)
        if (memcmp(root + 32 * i, "B          ", 11) == 0)
            db = raw.data + fat_cluster_offset(&raw.g, raw_entry_cluster(&raw, root + 32 * i));
    CHECK(!fat_rename_record_decode(db + 96, &rec));
    raw_free(&raw);
}

/* A record whose old entry holds another chain (a checker, say, already decided): nothing
 * is removed. */
TEST(recovery_ignores_a_record_that_does_not_match)
{
    const char *img = tmp_path("record2.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    CHECK(mtools_file(img, "/OLD.TXT", 5000, 7));
    CHECK(mtools_file(img, "/NEW.TXT", 3000, 9));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    size_t n;
    uint8_t *root = raw_root_entries(&raw, &n);
    /* root: volume label? find the slots */
    int old_slot = -1, new_slot = -1;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(root + 32 * i, "OLD     TXT", 11) == 0)
            old_slot = (int)i;
        if (memcmp(root + 32 * i, "NEW     TXT", 11) == 0)
            new_slot = (int)i;
    }
    CHECK(old_slot >= 0 && new_slot == old_slot + 1);
    /* move NEW.TXT one slot on and put a record before it naming OLD.TXT */
    memcpy(root + 32 * (new_slot + 1), root + 32 * new_slot, 32);
    fat_rename_record rec = { .source_dir = 0, .source_slot = (uint16_t)old_slot };
    memcpy(rec.source_name, "OLD     TXT", 11);
    fat_rename_record_encode(&rec, root + 32 * new_slot);
    make_dirty(&raw);
    CHECK(raw_save(&raw, img));
    raw_free(&raw);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(fat_get_mount_report(&tv.vol)->renames_completed, 0);
    CHECK(tv_file_is(&tv, "/OLD.TXT", 5000, 7));
    CHECK(tv_file_is(&tv, "/NEW.TXT", 3000, 9));
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(image_clean(img));
}

/* Deeper than the walk's stack: parents are found again through "..". */
static void deep_tree(fat_tv *t, void *arg)
{
    int *ok = arg;
    char path[1024] = "";
    for (int i = 0; i < 40; i++) {
        size_t l = strlen(path);
        snprintf(path + l, sizeof path - l, "/d%d", i);
        if (!EXPECT(fat_mkdir(&t->vol, path, strlen(path)) == VFS_OK))
            return;
        if (i % 10 == 9) {
            char f[1100];
            snprintf(f, sizeof f, "%s/f.bin", path);
            uint8_t data[3000];
            fill_pattern(data, sizeof data, (uint64_t)i);
            if (!EXPECT(tv_write_file(&t->vol, f, data, sizeof data) == VFS_OK))
                return;
        }
    }
    *ok = fat_sync(&t->vol) == VFS_OK;
}

TEST(recovery_walks_any_depth)
{
    const char *img = tmp_path("deep.img"), *cut = tmp_path("deep-cut.img");
    CHECK(make_image(img, 8192, 16, 512, 1));
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    int ok = 0;
    CHECK(fat_tv_call(&tv, deep_tree, &ok));
    CHECK(ok);
    CHECK(blk_fixture_save(&tv.f, cut) == 0);
    CHECK_EQ(fat_tv_close(&tv, NULL), VFS_OK);
    raw_image raw;
    CHECK(raw_load(&raw, cut));
    uint32_t lost = first_free(&raw, 2);
    for (uint32_t k = 0; k < raw.g.fat_count; k++)
        raw_fat_set(&raw, k, lost, 0xFFFF);
    CHECK(raw_save(&raw, cut));
    raw_free(&raw);
    CHECK(fat_tv_open(&tv, cut, &o));
    const fat_mount_report *rep = fat_get_mount_report(&tv.vol);
    CHECK(rep->was_dirty && rep->recovered && !rep->needs_check && rep->lost_freed == 1);
    char path[1024] = "";
    for (int i = 0; i < 40; i++) {
        size_t l = strlen(path);
        snprintf(path + l, sizeof path - l, "/d%d", i);
        if (i % 10 == 9) {
            char f[1100];
            snprintf(f, sizeof f, "%s/f.bin", path);
            CHECK(tv_file_is(&tv, f, 3000, (uint64_t)i));
        }
    }
    CHECK_EQ(fat_tv_close(&tv, cut), VFS_OK);
    CHECK(image_clean(cut));
}

/* ---- issue 19, finding 5: FAT copies that disagree --------------------------------------------- */

static void write_b(fat_tv *t, void *arg)
{
    int *ok = arg;
    static uint8_t data[64 * 1024];
    fill_pattern(data, sizeof data, 99);
    *ok = tv_write_file(&t->vol, "/b.bin", data, sizeof data) == VFS_OK;
}

TEST(clusters_the_fat_copies_disagree_on_are_not_allocated)
{
    const char *img = tmp_path("disagree.img");
    CHECK(make_image(img, 16384, 16, 512, 4));
    CHECK(mtools_file(img, "/a.bin", 20000, 5));
    raw_image raw;
    CHECK(raw_load(&raw, img));
    uint32_t a = raw_entry_cluster(&raw, raw_root_entry(&raw, "A       BIN"));
    uint32_t chain[16], n = 0;
    for (uint32_t c = a; c >= 2 && c < 0xFFF8 && n < 16; c = raw_fat_get(&raw, 1, c))
        chain[n++] = c;
    CHECK(n == 10);
    uint8_t *before = malloc(n * raw.g.bytes_per_cluster);
    for (uint32_t i = 0; i < n; i++)
        memcpy(before + i * raw.g.bytes_per_cluster, raw.data + fat_cluster_offset(&raw.g, chain[i]),
               raw.g.bytes_per_cluster);
    for (uint32_t i = 0; i < n; i++)
        raw_fat_set(&raw, 0, chain[i], 0); /* the first FAT forgot the file's clusters */
    CHECK(raw_save(&raw, img));
    raw_free(&raw);
    fat_tv_options o = fat_tv_defaults();
    CHECK(fat_tv_open(&tv, img, &o));
    CHECK_EQ(tv.mount_status, VFS_OK);
    CHECK_EQ(fat_get_mount_report(&tv.vol)->fat_disagreements, n);
    fat_statfs_info fs;
    CHECK(fat_tv_call(&tv, mount_and_report, &fs));
    CHECK(fs.fat_copies_differ);
    int ok = 0;
    CHECK(fat_tv_call(&tv, write_b, &ok));
    CHECK(ok);
    CHECK_EQ(fat_tv_close(&tv, img), VFS_OK);
    CHECK(raw_load(&raw, img));
    for (uint32_t i = 0; i < n; i++) {
        CHECK_MSG(memcmp(before + i * raw.g.bytes_per_cluster, raw.data + fat_cluster_offset(&raw.g, chain[i]),
                         raw.g.bytes_per_cluster) == 0,
                  "a.bin's cluster %u was overwritten", chain[i]);
    }
    raw_free(&raw);
    free(before);
}

