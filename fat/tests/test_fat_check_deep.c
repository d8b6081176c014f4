/* fat_check on trees deeper than the directories it keeps open (FAT_CHECK_OPEN_DIRS), and
 * the rule that a repair never frees a cluster an entry may still reach:
 *   - a valid volume with directories nested hundreds deep (a file in each) is clean for
 *     fsck.fat and for the checker, and repairing it writes nothing;
 *   - damage deep in such a tree is found and repaired in one pass;
 *   - when a directory cannot be walked to its end and that repair is not selected (a
 *     recovery at mount), lost clusters are reported and kept, not freed. */
#include "fat/fat_layout.h"
#include "fat/tests/fat_check_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *mkfs_args;
    long kib;
} kinds[] = {{"-F 12", 4000}, {"-F 16 -s 2", 8192}, {"-F 32 -s 1", 36000}};

#define DEPTH 300u

static bool nested_image(const char *img, size_t k, uint32_t depth, uint32_t *deepest)
{
    remove(img);
    if (!EXPECT(tool_run(false, "mkfs.fat -C %s '%s' %ld", kinds[k].mkfs_args, img, kinds[k].kib) == 0))
        return false;
    raw_image r;
    if (!EXPECT(raw_load(&r, img)))
        return false;
    *deepest = raw_nest(&r, depth, 700);
    bool ok = EXPECT(*deepest != 0) && EXPECT(image_save(img, r.data, r.len));
    raw_free(&r);
    return ok;
}

TEST(deep_valid_tree_is_clean)
{
    SKIP_WITHOUT("mkfs.fat");
    for (size_t k = 0; k < AF_ARRAY_LEN(kinds); k++) {
        const char *img = tmp_path("deep.img");
        uint32_t deepest;
        CHECK(nested_image(img, k, DEPTH, &deepest));
        CHECK_MSG(fsck_silent(img, true), "%s: fsck.fat does not accept the test's tree", kinds[k].mkfs_args);
        check_run run;
        check_echo = true;
        CHECK(check_image_ok(img, 0, &run));
        check_echo = false;
        CHECK_MSG(run.r.problems == 0, "%s: %u problems on a valid tree %u deep", kinds[k].mkfs_args,
                  run.r.problems, DEPTH);
        CHECK_EQ(run.r.directories, DEPTH);
        CHECK_EQ(run.r.files, DEPTH);
        /* the repair frees nothing and writes nothing */
        CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &run));
        CHECK_EQ(run.r.problems, 0);
        CHECK_EQ(run.writes, 0);
    }
}

/* Damage at the bottom of a deep tree: found, and settled by one repair. */
TEST(deep_damage_repaired_in_one_pass)
{
    SKIP_WITHOUT("mkfs.fat");
    for (size_t k = 0; k < AF_ARRAY_LEN(kinds); k++) {
        const char *img = tmp_path("deepdmg.img");
        uint32_t deepest;
        CHECK(nested_image(img, k, DEPTH, &deepest));
        raw_image r;
        CHECK(raw_load(&r, img));
        uint8_t *dir = r.data + fat_cluster_offset(&r.g, deepest);
        af_store_le16(dir + 32 + FAT_DIRENT_CLUSTER_LO, 0);           /* '..' points at the root */
        af_store_le32(dir + 64 + FAT_DIRENT_SIZE_BYTES, 5 * r.g.bytes_per_cluster); /* F: size beyond chain */
        CHECK(image_save(img, r.data, r.len));
        raw_free(&r);
        CHECK(!fsck_silent(img, false));
        check_run found, repaired, after;
        CHECK(check_image_ok(img, 0, &found));
        CHECK_MSG(found.r.bad_entries == 1 && found.r.size_mismatches == 1 && found.r.lost_clusters == 0,
                  "%s: bad entries %u, sizes %u, lost %u", kinds[k].mkfs_args, found.r.bad_entries,
                  found.r.size_mismatches, found.r.lost_clusters);
        CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &repaired));
        CHECK(check_image_ok(img, 0, &after));
        CHECK_EQ(after.r.problems, 0);
        CHECK(fsck_silent(img, true));
    }
}

/* MANY's chain runs into BIG.BIN's after its first cluster, so the files named in the rest
 * of MANY are not walked and their clusters look lost. A recovery (which does not cut
 * chains) must keep them; a full repair cuts MANY there and then frees them. */
TEST(unwalked_directory_keeps_lost_clusters)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("unwalked.img");
    CHECK(tree_image(img, "-F 16 -s 2", 8192));
    raw_image r;
    CHECK(raw_load(&r, img));
    uint32_t many = raw_entry_cluster(&r, raw_path_entry(&r, "MANY       "));
    uint32_t big = raw_entry_cluster(&r, raw_path_entry(&r, "BIG     BIN"));
    raw_fat_set_all(&r, many, big);
    CHECK(image_save(img, r.data, r.len));
    raw_free(&r);
    check_run found, recovered, again, repaired, after;
    CHECK(check_image_ok(img, 0, &found));
    CHECK(found.r.cross_links == 1 && found.r.lost_clusters > 0);
    check_echo = true;
    CHECK(check_image_ok(img, CHECK_CUT_REPAIRS, &recovered));
    check_echo = false;
    CHECK_EQ(recovered.r.lost_clusters, found.r.lost_clusters);
    CHECK_EQ(recovered.r.lost_kept, found.r.lost_clusters);
    CHECK(recovered.r.left > 0);
    CHECK_EQ(recovered.r.orphan_lfns, 0); /* a long name at the end of the walked part may end in the rest */
    CHECK(check_image_ok(img, 0, &again));
    CHECK_EQ(again.r.lost_clusters, found.r.lost_clusters); /* nothing was freed */
    CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &repaired));
    CHECK_EQ(repaired.r.lost_kept, 0);
    CHECK(check_image_ok(img, 0, &after));
    CHECK_EQ(after.r.problems, 0);
    CHECK(fsck_silent(img, true));
}
