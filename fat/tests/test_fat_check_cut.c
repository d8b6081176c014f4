/* A repair is itself safe against power cuts: a volume with many kinds of damage at once is
 * repaired on a device that completes one request at a time (in order, and in seeded
 * random orders within what the cache's order points allow) and loses power after each
 * write request in turn. Every image a cut leaves:
 *   - has no damage the volume did not have before (no chain into a free cluster, no new
 *     cross-link or bad entry), except what a repair in progress leaves on its way: lost
 *     clusters not yet freed, FAT copies not yet equal, an FSInfo count not yet right;
 *   - is marked clean only if nothing else is left to repair;
 *   - is settled by one more repair. */
#include "fat/fat_layout.h"
#include "fat/tests/fat_check_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

/* Dirty flags, lost clusters, a chain longer than its file, a cross-link, an orphaned
 * long name, a directory with no cluster and a long name, a stale FAT copy, FSInfo's
 * count (FAT32). */
static void damage_all(raw_image *r)
{
    r->data[r->g.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE] |= FAT_STATE_DIRTY;
    uint32_t clean = r->g.type == FAT_TYPE_32 ? FAT32_CLEAN_SHUTDOWN : FAT16_CLEAN_SHUTDOWN;
    if (r->g.type != FAT_TYPE_12)
        raw_fat_set_all(r, 1, raw_fat_get(r, 0, 1) & ~clean);
    for (uint32_t i = 0; i < 3; i++)
        raw_fat_set_all(r, r->g.max_cluster - i, fat_eoc_value(r->g.type));
    uint8_t *big = raw_path_entry(r, "BIG     BIN");
    af_store_le32(big + FAT_DIRENT_SIZE_BYTES, 10);
    uint32_t big_first = raw_entry_cluster(r, big);
    raw_fat_set_all(r, raw_last_cluster(r, raw_entry_cluster(r, raw_path_entry(r, "MED     BIN"))),
                    raw_nth_cluster(r, big_first, 2));
    raw_lfn_before(r, raw_path_entry(r, "ALONGN~1TXT"))[FAT_LFN_CHECKSUM] ^= 0x5A;
    uint8_t *dir = raw_path_entry(r, "ALONGD~1   ");
    af_store_le16(dir + FAT_DIRENT_CLUSTER_LO, 0);
    af_store_le16(dir + FAT_DIRENT_CLUSTER_HI, 0);
    raw_fat_set(r, 1, r->g.max_cluster - 10, 7);
    if (r->g.type == FAT_TYPE_32)
        af_store_le32(r->data + r->g.fsinfo_sector * r->g.bytes_per_sector + FAT_FSINFO_FREE_COUNT, 12345);
}

typedef struct cut_job {
    blk_fixture *f;
    vfs_status status;
    bool done;
} cut_job;

static void *repair_task(void *arg)
{
    cut_job *j = arg;
    fat_check_volume vol;
    j->status = fat_check_volume_find(&j->f->stack.cache, 0, &vol);
    if (j->status == VFS_OK) {
        size_t need = fat_check_memory_needed(&vol.geo);
        void *work = malloc(need);
        fat_check_options o = {.repairs = FAT_CHECK_REPAIR_ALL, .work = work, .work_size = need};
        fat_check_result r;
        j->status = fat_check_run(&j->f->stack.cache, &vol, &o, &r);
        free(work);
    }
    j->done = true;
    return NULL;
}

/* Repairs the image in `data` on a device completing one request per pass (in an order
 * drawn from `seed`, 0: FIFO) that loses power once `cut_after` writes are done: every
 * later write and flush fails and transfers nothing. `data` gets what the device holds
 * then; *writes the writes done (all of them when the cut never came). */
static bool repair_with_cut(uint8_t *data, size_t len, uint64_t seed, uint64_t cut_after, uint64_t *writes)
{
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = len;
    fo.cache_buffers = 64;
    fo.fibers = 4;
    fo.random_order = seed != 0;
    fo.seed = seed;
    if (!EXPECT(blk_fixture_init(&f, &fo) == 0))
        return false;
    copy_sparse(f.image, data, len);
    f.dev.completions_per_process = 1;
    cut_job j = {.f = &f};
    bool ok = EXPECT(blk_fixture_spawn(&f, repair_task, &j) != NULL);
    uint64_t seen = 0;
    *writes = 0;
    bool cut = false;
    while (ok && !j.done) {
        bool moved = blk_fixture_pass(&f);
        for (; seen < f.dev.log_count; seen++)
            *writes += f.dev.log[seen].code == BLK_REQ_WRITE && f.dev.log[seen].status == BLK_RESP_OK;
        if (!cut && *writes >= cut_after) {
            cut = true;
            ram_device_fail_range(&f.dev, 0, UINT64_MAX, (1u << BLK_REQ_WRITE) | (1u << BLK_REQ_FLUSH));
        }
        ok = EXPECT(moved || j.done);
    }
    ok = ok && EXPECT(j.status == VFS_OK || (cut && j.status == VFS_IO_ERROR));
    memcpy(data, f.image, len);
    blk_fixture_fini(&f);
    return ok;
}

/* Counters a repair in progress may raise before it is done. */
static bool may_grow(size_t offset)
{
    return offset == offsetof(fat_check_result, lost_clusters) ||
           offset == offsetof(fat_check_result, fat_mismatches) || offset == offsetof(fat_check_result, fsinfo_errors);
}

static const size_t counters[] = {
    offsetof(fat_check_result, bad_links),      offsetof(fat_check_result, loops),
    offsetof(fat_check_result, cross_links),    offsetof(fat_check_result, lost_clusters),
    offsetof(fat_check_result, size_mismatches), offsetof(fat_check_result, bad_entries),
    offsetof(fat_check_result, orphan_lfns),    offsetof(fat_check_result, fat_mismatches),
    offsetof(fat_check_result, fsinfo_errors),  offsetof(fat_check_result, boot_errors),
    offsetof(fat_check_result, dirty),
};

static uint32_t counter(const fat_check_result *r, size_t offset)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)r + offset, sizeof v);
    return v;
}

static bool cut_image_ok(uint8_t *cut, size_t len, const fat_check_result *before, uint64_t k, uint64_t seed)
{
    check_run now, repaired, after;
    if (!check_memory_ok(cut, len, 0, &now))
        return false;
    for (size_t i = 0; i < AF_ARRAY_LEN(counters); i++) {
        if (!may_grow(counters[i]) && counter(&now.r, counters[i]) > counter(before, counters[i])) {
            printf("cut after write %llu (seed %llu): counter at %zu went from %u to %u\n", (unsigned long long)k,
                   (unsigned long long)seed, counters[i], counter(before, counters[i]), counter(&now.r, counters[i]));
            return false;
        }
    }
    if (now.r.dirty == 0 && now.r.problems != 0) {
        printf("cut after write %llu (seed %llu): marked clean with %u problems left:\n", (unsigned long long)k,
               (unsigned long long)seed, now.r.problems);
        check_echo = true;
        check_memory_ok(cut, len, 0, &now);
        check_echo = false;
        return false;
    }
    if (!check_memory_ok(cut, len, FAT_CHECK_REPAIR_ALL, &repaired) || !check_memory_ok(cut, len, 0, &after))
        return false;
    if (after.r.problems != 0) {
        printf("cut after write %llu (seed %llu): %u problems after one more repair\n", (unsigned long long)k,
               (unsigned long long)seed, after.r.problems);
        return false;
    }
    return true;
}

static bool cut_every_write(const raw_image *r, const fat_check_result *before, uint64_t seed, uint8_t *cut,
                            uint64_t *cuts)
{
    uint64_t total;
    memcpy(cut, r->data, r->len);
    if (!repair_with_cut(cut, r->len, seed, UINT64_MAX, &total) || !EXPECT(total > 0))
        return false;
    for (uint64_t k = 0; k < total; k++, (*cuts)++) {
        uint64_t done;
        memcpy(cut, r->data, r->len);
        if (!repair_with_cut(cut, r->len, seed, k, &done) || !cut_image_ok(cut, r->len, before, k, seed))
            return false;
    }
    return true;
}

static void cut_everywhere(const char *mkfs_args, long kib)
{
    const char *img = tmp_path("cut.img");
    CHECK(tree_image(img, mkfs_args, kib));
    raw_image r;
    CHECK(raw_load(&r, img));
    damage_all(&r);
    check_run before;
    bool ok = check_memory_ok(r.data, r.len, 0, &before) &&
              EXPECT(before.r.bad_links == 0 && before.r.dirty > 0 && before.r.lost_clusters > 0 &&
                     before.r.cross_links > 0);
    uint8_t *cut = malloc(r.len);
    uint64_t seeds[] = {0, test_seed() | 1, test_seed() * 3 + 7}, cuts = 0;
    for (size_t s = 0; s < AF_ARRAY_LEN(seeds) && ok; s++)
        ok = cut_every_write(&r, &before.r, seeds[s], cut, &cuts);
    free(cut);
    raw_free(&r);
    CHECK(ok);
    printf("%s: %llu cut images, all settled\n", mkfs_args, (unsigned long long)cuts);
}

TEST(repair_survives_a_cut_at_every_write_fat16)
{
    SKIP_WITHOUT("mcopy");
    cut_everywhere("-F 16 -s 2", 8192);
}

TEST(repair_survives_a_cut_at_every_write_fat32)
{
    SKIP_WITHOUT("mcopy");
    cut_everywhere("-F 32 -s 1", 36000);
}
