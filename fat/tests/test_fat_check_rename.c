/* check --repair of a volume cut in the middle of a rename finishes the rename as mount
 * recovery does (fat_intent.h): the file exists exactly once, with its data, and none of
 * its clusters is freed.
 *
 * The renames run once on the engine, on the RAM device with its journal on; every prefix
 * of the journal (a cut after each written block) is rebuilt as an image, repaired by the
 * checker alone (FAT_CHECK_REPAIR_ALL; the mount that then reads it is read-only, so mount
 * recovery never runs), and must then be clean for the checker and for fsck.fat -n and
 * hold every renamed file once, under its old or its new name, with its bytes. */
#include "fat/tests/fat_check_tools.h"
#include "fat/tests/fat_engine_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OLD_FILE "/from/A long source name.dat"
#define NEW_FILE "/to/The renamed file, with a long name.dat"
#define OLD_DIR "/from/sub"
#define NEW_DIR "/to/moved sub"
#define OLD_KEEP "/from/keep.bin"
#define TARGET "/to/victim.bin"

enum { FILE_LEN = 5000, INNER_LEN = 700, VICTIM_LEN = 3000, KEEP_LEN = 1500 };
enum { FILE_SEED = 11, INNER_SEED = 12, VICTIM_SEED = 13, KEEP_SEED = 14 };

static vfs_status write_new(fat_volume *vol, const char *path, size_t len, uint64_t seed)
{
    uint8_t *buf = malloc(len);
    fill_pattern(buf, len, seed);
    vfs_status st = tv_write_file(vol, path, buf, len);
    free(buf);
    return st;
}

static void setup_tree(fat_tv *tv, void *arg)
{
    bool *ok = arg;
    fat_volume *v = &tv->vol;
    *ok = fat_mkdir(v, "/from", 5) == VFS_OK && fat_mkdir(v, "/to", 3) == VFS_OK &&
          write_new(v, OLD_FILE, FILE_LEN, FILE_SEED) == VFS_OK && fat_mkdir(v, OLD_DIR, strlen(OLD_DIR)) == VFS_OK &&
          write_new(v, OLD_DIR "/inner.txt", INNER_LEN, INNER_SEED) == VFS_OK &&
          write_new(v, TARGET, VICTIM_LEN, VICTIM_SEED) == VFS_OK &&
          write_new(v, OLD_KEEP, KEEP_LEN, KEEP_SEED) == VFS_OK;
}

/* Three renames between directories (a file, a directory with contents, a file onto a
 * target), each of which takes a rename record, then a sync. */
static void rename_all(fat_tv *tv, void *arg)
{
    bool *ok = arg;
    fat_volume *v = &tv->vol;
    *ok = fat_rename(v, OLD_FILE, strlen(OLD_FILE), NEW_FILE, strlen(NEW_FILE)) == VFS_OK &&
          fat_rename(v, OLD_DIR, strlen(OLD_DIR), NEW_DIR, strlen(NEW_DIR)) == VFS_OK &&
          fat_rename(v, OLD_KEEP, strlen(OLD_KEEP), TARGET, strlen(TARGET)) == VFS_OK && fat_sync(v) == VFS_OK;
}

/* The renames on the engine: *base is the device after the mount (its dirty marks
 * written), then every block the renames and the sync wrote, in completion order (copied
 * out of the journal: the engine is closed before any other fixture runs). */
typedef struct recording {
    uint8_t *base;
    size_t len;
    uint64_t *block;
    uint8_t *data;              /* count blocks of BLK_TRANSFER_SIZE bytes */
    uint64_t count;
} recording;

static void recording_copy(recording *rec, const ram_device *dev)
{
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(dev, i);
        if (e->code != BLK_REQ_WRITE)
            continue;
        rec->block = realloc(rec->block, (rec->count + e->written) * sizeof rec->block[0]);
        rec->data = realloc(rec->data, (rec->count + e->written) * BLK_TRANSFER_SIZE);
        for (uint32_t b = 0; b < e->written; b++, rec->count++) {
            rec->block[rec->count] = e->block + b;
            memcpy(rec->data + rec->count * BLK_TRANSFER_SIZE, e->data + (size_t)b * BLK_TRANSFER_SIZE,
                   BLK_TRANSFER_SIZE);
        }
    }
}

static bool record_renames(const char *img, recording *rec)
{
    fat_tv_options o = fat_tv_defaults();
    fat_tv tv;
    bool ok = false;
    if (!EXPECT(fat_tv_open(&tv, img, &o)) || !EXPECT(tv.mount_status == VFS_OK))
        return false;
    bool done = fat_tv_call(&tv, setup_tree, &ok) && ok;
    if (!EXPECT(fat_tv_close(&tv, img) == VFS_OK) || !EXPECT(done))
        return false;
    if (!EXPECT(fat_tv_open(&tv, img, &o)) || !EXPECT(tv.mount_status == VFS_OK))
        return false;
    rec->len = tv.f.image_bytes;
    rec->base = malloc(rec->len);
    memcpy(rec->base, tv.f.image, rec->len);
    ram_device_clear_log(&tv.f.dev);
    ram_device_set_journal(&tv.f.dev, true);
    ok = false;
    done = EXPECT(fat_tv_call(&tv, rename_all, &ok)) && EXPECT(ok) && EXPECT(ram_device_journal_complete(&tv.f.dev));
    if (done)
        recording_copy(rec, &tv.f.dev);
    fat_tv_close(&tv, NULL);
    return done;
}

/* In the repaired image: each renamed thing exists once, under its old or its new name,
 * with its bytes; the replaced target is intact or gone. */
static bool renames_settled(const char *img, uint64_t cut)
{
    fat_tv_options o = fat_tv_defaults();
    o.read_only = true;
    fat_tv tv;
    if (!EXPECT(fat_tv_open(&tv, img, &o)) || !EXPECT(tv.mount_status == VFS_OK))
        return false;
    bool file_old = tv_file_is(&tv, OLD_FILE, FILE_LEN, FILE_SEED), file_new = tv_file_is(&tv, NEW_FILE, FILE_LEN, FILE_SEED);
    bool file_ok = file_old ? tv_file_absent(&tv, NEW_FILE) : file_new && tv_file_absent(&tv, OLD_FILE);
    bool dir_old = tv_file_is(&tv, OLD_DIR "/inner.txt", INNER_LEN, INNER_SEED);
    bool dir_new = tv_file_is(&tv, NEW_DIR "/inner.txt", INNER_LEN, INNER_SEED);
    bool dir_ok = dir_old ? tv_file_absent(&tv, NEW_DIR) : dir_new && tv_file_absent(&tv, OLD_DIR);
    bool keep_old = tv_file_is(&tv, OLD_KEEP, KEEP_LEN, KEEP_SEED);
    bool keep_ok = keep_old ? tv_file_is(&tv, TARGET, VICTIM_LEN, VICTIM_SEED) || tv_file_absent(&tv, TARGET)
                            : tv_file_is(&tv, TARGET, KEEP_LEN, KEEP_SEED);
    fat_tv_close(&tv, NULL);
    if (!file_ok || !dir_ok || !keep_ok)
        printf("cut after block %llu: file %s (old %d new %d), directory %s (old %d new %d), replacing rename %s\n",
               (unsigned long long)cut, file_ok ? "ok" : "WRONG", file_old, file_new, dir_ok ? "ok" : "WRONG",
               dir_old, dir_new, keep_ok ? "ok" : "WRONG");
    return file_ok && dir_ok && keep_ok;
}

/* One cut image: checked, repaired once, then clean and settled. *middle: it held a
 * rename in progress (the checker reported one unfinished). */
static bool cut_repaired(uint8_t *image, size_t len, uint64_t cut, const char *img, bool *middle)
{
    check_run before, repaired, after;
    if (!check_memory_ok(image, len, 0, &before) || !check_memory_ok(image, len, FAT_CHECK_REPAIR_ALL, &repaired) ||
        !check_memory_ok(image, len, 0, &after))
        return false;
    *middle = before.r.renames > 0 && before.r.cross_links > 0;
    if (after.r.problems != 0) {
        printf("cut after block %llu: %u problems after the repair\n", (unsigned long long)cut, after.r.problems);
        return false;
    }
    FILE *f = fopen(img, "wb");
    bool saved = f && fwrite(image, 1, len, f) == len;
    if (f)
        fclose(f);
    if (!EXPECT(saved) || !renames_settled(img, cut))
        return false;
    return !tool_available("fsck.fat") || fsck_silent(img, true);
}

static void repair_every_cut(int fat, uint32_t kib)
{
    const char *img = tmp_path("rename.img"), *cut_img = tmp_path("rename-cut.img");
    CHECK(make_image(img, kib, fat, 512, 1));
    recording rec;
    memset(&rec, 0, sizeof rec);
    bool ok = record_renames(img, &rec);
    uint8_t *image = malloc(rec.len), *cur = malloc(rec.len);
    uint64_t middles = 0;
    if (ok)
        memcpy(cur, rec.base, rec.len);
    for (uint64_t k = 0; ok && k < rec.count; k++) {
        memcpy(cur + rec.block[k] * BLK_TRANSFER_SIZE, rec.data + k * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE);
        memcpy(image, cur, rec.len);
        bool middle = false;
        ok = cut_repaired(image, rec.len, k, cut_img, &middle);
        middles += middle;
    }
    free(rec.base);
    free(rec.block);
    free(rec.data);
    free(image);
    free(cur);
    remove(cut_img);
    CHECK(ok);
    printf("FAT%d: %llu cut images repaired, %llu of them in the middle of a rename\n", fat,
           (unsigned long long)rec.count, (unsigned long long)middles);
    CHECK(middles > 0);
}

TEST(check_repair_finishes_an_interrupted_rename_fat12)
{
    repair_every_cut(12, 2048);
}

TEST(check_repair_finishes_an_interrupted_rename_fat16)
{
    repair_every_cut(16, 8192);
}

TEST(check_repair_finishes_an_interrupted_rename_fat32)
{
    repair_every_cut(32, 33792);
}
