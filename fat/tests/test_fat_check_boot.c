/* fat_check and the boot sector: when the FAT32 boot sector and its backup disagree, the
 * one the volume confirms is used and the other rewritten from it (one bad field in either
 * copy: the repair gives back the undamaged image byte for byte); when the volume does not
 * tell, or a layout without a backup does not match the volume, nothing is written; a
 * backup field pointing outside the reserved area is a repairable defect, not an
 * unreadable volume. */
#include "fat/fat_layout.h"
#include "fat/tests/fat_check_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#define FAT32_ARGS "-F 32 -s 1"
#define FAT32_KIB 36000

typedef struct field_damage {
    const char *name;
    void (*apply)(raw_image *r, uint8_t *boot); /* boot: the sector to damage */
} field_damage;

static void fat_count_4(raw_image *r, uint8_t *boot)
{
    (void)r;
    boot[FAT_BPB_FAT_COUNT] = 4;
}

static void cluster_size_doubled(raw_image *r, uint8_t *boot)
{
    (void)r;
    boot[FAT_BPB_SECTORS_PER_CLUSTER] = 2;
}

static void reserved_plus_8(raw_image *r, uint8_t *boot)
{
    (void)r;
    af_store_le16(boot + FAT_BPB_RESERVED_SECTORS, (uint16_t)(af_load_le16(boot + FAT_BPB_RESERVED_SECTORS) + 8));
}

static void fat_size_plus_8(raw_image *r, uint8_t *boot)
{
    (void)r;
    af_store_le32(boot + FAT_BPB32_FAT_SIZE, af_load_le32(boot + FAT_BPB32_FAT_SIZE) + 8);
}

static void root_is_a_subdirectory(raw_image *r, uint8_t *boot)
{
    af_store_le32(boot + FAT_BPB32_ROOT_CLUSTER, raw_entry_cluster(r, raw_path_entry(r, "SUB        ")));
}

static void root_is_free(raw_image *r, uint8_t *boot)
{
    af_store_le32(boot + FAT_BPB32_ROOT_CLUSTER, raw_free_cluster(r, r->g.max_cluster / 2));
}

static void no_sector_size(raw_image *r, uint8_t *boot)
{
    (void)r;
    af_store_le16(boot + FAT_BPB_BYTES_PER_SECTOR, 0);
}

static const field_damage fields[] = {
    {"fat-count-4", fat_count_4},           {"cluster-size-doubled", cluster_size_doubled},
    {"reserved-plus-8", reserved_plus_8},   {"fat-size-plus-8", fat_size_plus_8},
    {"root-is-a-subdirectory", root_is_a_subdirectory}, {"root-is-free", root_is_free},
    {"no-sector-size", no_sector_size},
};

static bool same_as(const char *img, const raw_image *orig)
{
    size_t len;
    uint8_t *now = file_read_all(img, &len);
    size_t at = 0;
    while (now && at < len && at < orig->len && now[at] == orig->data[at])
        at++;
    free(now);
    if (len == orig->len && at == len)
        return true;
    printf("the image differs from the undamaged one at byte %zu\n", at);
    return false;
}

/* One bad field in the boot sector (backup = false) or in its backup: the volume confirms
 * the other copy, a check writes nothing, and one repair restores the image exactly. */
static bool boot_case(const raw_image *orig, const field_damage *d, bool in_backup)
{
    const char *img = tmp_path("boot.img");
    raw_image r = *orig;
    r.data = malloc(orig->len);
    memcpy(r.data, orig->data, orig->len);
    d->apply(&r, r.data + (in_backup ? (size_t)r.g.backup_boot_sector * r.g.bytes_per_sector : 0));
    bool saved = image_save(img, r.data, r.len);
    raw_free(&r);
    if (!EXPECT(saved))
        return false;
    printf("%s in the %s:\n", d->name, in_backup ? "backup" : "boot sector");
    check_run found, repaired, after;
    check_echo = true;
    bool ok = check_image_ok(img, 0, &found) && check_image_ok(img, FAT_CHECK_REPAIR_ALL, &repaired);
    check_echo = false;
    if (!ok)
        return false;
    fat_check_boot_source want = in_backup ? FAT_CHECK_BOOT_PRIMARY : FAT_CHECK_BOOT_BACKUP;
    return EXPECT(found.vol.source == want) && EXPECT(found.r.boot_errors > 0) && EXPECT(found.writes == 0) &&
           EXPECT(!repaired.r.refused) && EXPECT(repaired.r.left == 0) && same_as(img, orig) &&
           check_image_ok(img, 0, &after) && EXPECT(after.r.problems == 0) && EXPECT(fsck_silent(img, true));
}

TEST(one_bad_boot_field_is_repaired_from_the_other_copy)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("boot_orig.img");
    CHECK(tree_image(img, FAT32_ARGS, FAT32_KIB));
    raw_image orig;
    CHECK(raw_load(&orig, img));
    CHECK(orig.g.backup_boot_sector == 6);
    bool ok = true;
    for (size_t i = 0; i < AF_ARRAY_LEN(fields) && ok; i++) {
        ok = boot_case(&orig, &fields[i], false);
        if (ok)
            ok = boot_case(&orig, &fields[i], true);
        if (!ok)
            printf("FAIL case %s\n", fields[i].name);
    }
    raw_free(&orig);
    CHECK(ok);
}

/* A volume that does not tell which copy is right: the boot sector says 2 sectors per
 * cluster, the backup 1, the root holds only files in low clusters and FSInfo's free count
 * is unknown. Nothing is repaired and nothing written. */
TEST(undecidable_layout_is_not_repaired)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("unsure.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C " FAT32_ARGS " '%s' %d", img, FAT32_KIB), 0);
    const char *file = tmp_path("small.txt");
    CHECK_EQ(file_write_all(file, "hello", 5), 0);
    CHECK_EQ(tool_run(false, "mcopy -i '%s' '%s' ::/A.TXT && mcopy -i '%s' '%s' ::/B.TXT", img, file, img, file), 0);
    raw_image r;
    CHECK(raw_load(&r, img));
    r.data[FAT_BPB_SECTORS_PER_CLUSTER] = 2;
    af_store_le32(r.data + r.g.fsinfo_sector * r.g.bytes_per_sector + FAT_FSINFO_FREE_COUNT, FAT_FSINFO_UNKNOWN);
    CHECK(image_save(img, r.data, r.len));
    raw_image damaged = r;
    check_run run;
    check_echo = true;
    CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &run));
    check_echo = false;
    CHECK_EQ(run.vol.source, FAT_CHECK_BOOT_UNSURE);
    CHECK(strstr(run.vol.reason, "sectors per cluster") != NULL);
    CHECK(run.r.refused);
    CHECK(run.r.left > 0 && run.r.repaired == 0);
    CHECK_EQ(run.writes, 0);
    CHECK(same_as(img, &damaged));
    raw_free(&r);
}

/* No backup to compare with: a layout whose FAT copies are not where it says is not
 * written through (before, a repair copied "FAT 3" and "FAT 4" over the root and data). */
TEST(unconfirmed_layout_without_backup_is_not_repaired)
{
    SKIP_WITHOUT("mcopy");
    static const struct {
        const char *args;
        long kib;
    } kinds[] = {{"-F 12", 4000}, {"-F 16 -s 2", 8192}};
    for (size_t k = 0; k < AF_ARRAY_LEN(kinds); k++) {
        for (int variant = 0; variant < 2; variant++) {
            const char *img = tmp_path("nobackup.img");
            CHECK(tree_image(img, kinds[k].args, kinds[k].kib));
            raw_image r;
            CHECK(raw_load(&r, img));
            if (variant == 0)
                r.data[FAT_BPB_FAT_COUNT] = 4;
            else
                af_store_le16(r.data + FAT_BPB_RESERVED_SECTORS, (uint16_t)(r.g.reserved_sectors + 2));
            CHECK(image_save(img, r.data, r.len));
            check_run run;
            CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &run));
            CHECK_MSG(run.vol.source == FAT_CHECK_BOOT_UNSURE, "%s variant %d: source %d", kinds[k].args, variant,
                      run.vol.source);
            CHECK(run.r.refused);
            CHECK_EQ(run.writes, 0);
            CHECK(same_as(img, &r));
            raw_free(&r);
        }
    }
}

/* fsck.fat reads a volume whose backup field points outside the reserved area; so must
 * asyncfat, and a repair points it at a backup it writes (here: the original one). */
TEST(backup_field_outside_reserved_area_is_repairable)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("field.img");
    CHECK(tree_image(img, FAT32_ARGS, FAT32_KIB));
    raw_image orig;
    CHECK(raw_load(&orig, img));
    raw_image r = orig;
    r.data = malloc(orig.len);
    memcpy(r.data, orig.data, orig.len);
    af_store_le16(r.data + FAT_BPB32_BACKUP_BOOT, (uint16_t)(orig.g.reserved_sectors + 8));
    CHECK(image_save(img, r.data, r.len));
    raw_free(&r);
    check_run found, repaired, after;
    CHECK(check_image_ok(img, 0, &found));
    CHECK_EQ(found.vol.source, FAT_CHECK_BOOT_PRIMARY);
    CHECK_EQ(found.r.boot_errors, 1);
    CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &repaired));
    CHECK_EQ(repaired.r.left, 0);
    CHECK(same_as(img, &orig));
    CHECK(check_image_ok(img, 0, &after));
    CHECK_EQ(after.r.problems, 0);
    CHECK(fsck_silent(img, true));
    raw_free(&orig);
}
