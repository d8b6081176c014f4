/* fat_check on images made by mkfs.fat and filled by mtools (FAT12/16/32), with two
 * oracles for every kind of damage the checker repairs:
 *   - after one repair, a second check finds nothing and fsck.fat -n has nothing to say;
 *   - the repair changes nothing it did not have to: files the damage did not touch read
 *     back the same through mtools, a damage whose repair restores the original restores
 *     it byte for byte, and repairing a clean volume writes nothing at all.
 * Each damage is real: the checker reports it in its counter, and fsck.fat sees it too
 * (except where fsck.fat does not look). Damages a power cut can leave are also settled
 * by a recovery (CHECK_CUT_REPAIRS and the dirty flags) alone. Hostile images
 * (random FAT and directory bytes) never crash or hang the checker, and one repair
 * settles them too. */
#include "fat/fat_layout.h"
#include "fat/tests/fat_check_tools.h"
#include "tests/harness.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *mkfs_args;
    long kib;
} kinds[] = {{"-F 12", 4000}, {"-F 16 -s 2", 8192}, {"-F 32 -s 1", 36000}, {"-F 16 -S 4096 -s 2", 65536}};

TEST(clean_images_are_clean_and_repair_writes_nothing)
{
    SKIP_WITHOUT("mkfs.fat");
    SKIP_WITHOUT("mcopy");
    for (size_t k = 0; k < AF_ARRAY_LEN(kinds); k++) {
        const char *img = tmp_path("clean.img");
        CHECK(tree_image(img, kinds[k].mkfs_args, kinds[k].kib));
        raw_image r;
        CHECK(raw_load(&r, img));
        uint32_t many = raw_entry_cluster(&r, raw_path_entry(&r, "MANY       "));
        bool spans = raw_last_cluster(&r, many) != many;
        raw_free(&r);
        CHECK_MSG(spans, "%s: MANY fits in one cluster", kinds[k].mkfs_args); /* the tree promises several */
        check_run run;
        check_echo = true;
        CHECK(check_image_ok(img, 0, &run));
        check_echo = false;
        CHECK_MSG(run.r.problems == 0, "%s: %u problems", kinds[k].mkfs_args, run.r.problems);
        CHECK_EQ(run.r.files, TREE_FILES);
        CHECK_EQ(run.r.directories, TREE_DIRS);
        CHECK(run.r.used_clusters > 0 && run.r.free_clusters > 0);
        CHECK_EQ(run.writes, 0);
        CHECK(check_image_ok(img, FAT_CHECK_REPAIR_ALL, &run));
        CHECK_EQ(run.r.problems, 0);
        CHECK_EQ(run.r.repaired, 0);
        CHECK_MSG(run.writes == 0, "%s: repairing a clean volume wrote %llu times", kinds[k].mkfs_args,
                  (unsigned long long)run.writes);
    }
}

/* ---- damage ----------------------------------------------------------------------------------- */

enum {
    FSCK_BLIND = 1u << 0, /* fsck.fat -n does not report this damage */
    RESTORES = 1u << 1,   /* the repair gives back the undamaged image byte for byte */
    RECOVERY = 1u << 2,   /* CHECK_CUT_REPAIRS repairs it too */
};

typedef struct damage {
    const char *name;
    size_t counter;         /* offsetof(fat_check_result, <the counter that reports it>) */
    unsigned flags;
    const char *may_change; /* '|'-separated path prefixes whose files the repair may change */
    bool (*apply)(raw_image *r); /* false: not applicable to this volume */
} damage;

#define COUNTER(field) offsetof(fat_check_result, field)

static uint8_t *entry(raw_image *r, const char *path)
{
    uint8_t *e = raw_path_entry(r, path);
    if (!e)
        printf("damage: no entry %s\n", path);
    return e;
}

static uint32_t first_of(raw_image *r, const char *path)
{
    uint8_t *e = entry(r, path);
    return e ? raw_entry_cluster(r, e) : 0;
}

static void set_first(raw_image *r, uint8_t *e, uint32_t cl)
{
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, (uint16_t)cl);
    if (r->g.type == FAT_TYPE_32)
        af_store_le16(e + FAT_DIRENT_CLUSTER_HI, (uint16_t)(cl >> 16));
}

/* A first cluster past the last one that the entry can hold. */
static uint32_t out_of_range(raw_image *r)
{
    return r->g.max_cluster + 1 > 0xFFFF && r->g.type != FAT_TYPE_32 ? 1 : r->g.max_cluster + 1;
}

static uint8_t *dotdot_of(raw_image *r, const char *dir_path)
{
    return r->data + fat_cluster_offset(&r->g, first_of(r, dir_path)) + 32;
}

static bool d_loop(raw_image *r)
{
    uint32_t big = first_of(r, "BIG     BIN");
    raw_fat_set_all(r, raw_nth_cluster(r, big, 3), raw_nth_cluster(r, big, 1));
    return true;
}

static bool d_cross_link(raw_image *r)
{
    uint32_t big = first_of(r, "BIG     BIN");
    raw_fat_set_all(r, raw_last_cluster(r, first_of(r, "MED     BIN")), raw_nth_cluster(r, big, 2));
    return true;
}

static bool d_out_of_range_link(raw_image *r)
{
    uint32_t far = r->g.max_cluster + 5 < fat_bad_value(r->g.type) ? r->g.max_cluster + 5 : 1;
    raw_fat_set_all(r, raw_nth_cluster(r, first_of(r, "BIG     BIN"), 1), far);
    return true;
}

static bool d_link_to_free(raw_image *r)
{
    raw_fat_set_all(r, first_of(r, "BIG     BIN"), raw_free_cluster(r, r->g.max_cluster - 1));
    return raw_free_cluster(r, r->g.max_cluster - 1) != 0;
}

static bool d_size_too_big(raw_image *r)
{
    af_store_le32(entry(r, "SMALL   TXT") + FAT_DIRENT_SIZE_BYTES, 1000000);
    return true;
}

static bool d_size_without_cluster(raw_image *r)
{
    af_store_le32(entry(r, "EMPTY   TXT") + FAT_DIRENT_SIZE_BYTES, 100);
    return true;
}

static bool d_chain_too_long(raw_image *r)
{
    af_store_le32(entry(r, "BIG     BIN") + FAT_DIRENT_SIZE_BYTES, 10);
    return true;
}

static bool d_lost(raw_image *r)
{
    for (uint32_t i = 0; i < 3; i++)
        raw_fat_set_all(r, r->g.max_cluster - i, fat_eoc_value(r->g.type));
    return true;
}

static uint8_t *fsinfo(raw_image *r)
{
    return r->g.type == FAT_TYPE_32 ? r->data + (size_t)r->g.fsinfo_sector * r->g.bytes_per_sector : NULL;
}

static bool d_fsinfo_count(raw_image *r)
{
    if (!fsinfo(r))
        return false;
    af_store_le32(fsinfo(r) + FAT_FSINFO_FREE_COUNT, 12345);
    return true;
}

static bool d_fsinfo_unknown(raw_image *r)
{
    if (!fsinfo(r))
        return false;
    af_store_le32(fsinfo(r) + FAT_FSINFO_FREE_COUNT, FAT_FSINFO_UNKNOWN);
    return true;
}

static bool d_orphan_lfn(raw_image *r)
{
    uint8_t *lfn = raw_lfn_before(r, entry(r, "ALONGN~1TXT"));
    lfn[FAT_LFN_CHECKSUM] ^= 0x5A;
    return true;
}

static bool d_fat_copy(raw_image *r)
{
    if (r->g.fat_count < 2)
        return false;
    raw_fat_set(r, 1, r->g.max_cluster, 7);
    return true;
}

static bool d_dirty(raw_image *r)
{
    r->data[r->g.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE] |= FAT_STATE_DIRTY;
    if (r->g.type == FAT_TYPE_16)
        raw_fat_set_all(r, 1, raw_fat_get(r, 0, 1) & ~FAT16_CLEAN_SHUTDOWN);
    if (r->g.type == FAT_TYPE_32) {
        raw_fat_set_all(r, 1, raw_fat_get(r, 0, 1) & ~FAT32_CLEAN_SHUTDOWN);
        r->data[r->g.backup_boot_sector * r->g.bytes_per_sector + FAT_BS32_STATE] |= FAT_STATE_DIRTY;
    }
    return true;
}

/* As a writer that marks only the boot sector leaves it (FAT32: the backup then differs). */
static bool d_dirty_boot_only(raw_image *r)
{
    r->data[r->g.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE] |= FAT_STATE_DIRTY;
    return true;
}

static bool d_first_cluster(raw_image *r)
{
    set_first(r, entry(r, "MED     BIN"), out_of_range(r));
    return true;
}

static bool d_dotdot(raw_image *r)
{
    set_first(r, dotdot_of(r, "SUB        "), first_of(r, "BIG     BIN"));
    return true;
}

static bool d_dotdot_root_cluster(raw_image *r)
{
    if (r->g.type != FAT_TYPE_32)
        return false;
    set_first(r, dotdot_of(r, "SUB        "), r->g.root_cluster);
    return true;
}

static bool d_dir_size(raw_image *r)
{
    af_store_le32(entry(r, "SUB        ") + FAT_DIRENT_SIZE_BYTES, 4096);
    return true;
}

static bool d_bad_name(raw_image *r)
{
    entry(r, "SMALL   TXT")[2] = '?';
    return true;
}

static bool d_duplicate(raw_image *r)
{
    memcpy(entry(r, "MED     BIN"), "BIG     BIN", 11);
    return true;
}

static bool d_label(raw_image *r)
{
    size_t n;
    uint8_t *e = raw_root_entries(r, &n);
    while (e[0] != 0 && e[0] != 0xE5)
        e += 32;
    memset(e, 0, 32);
    memcpy(e, "STRAY LABEL", 11);
    e[FAT_DIRENT_ATTR] = FAT_ATTR_VOLUME_ID;
    return true;
}

static bool d_after_end(raw_image *r)
{
    r->data[fat_cluster_offset(&r->g, first_of(r, "SUB        ")) + 2 * 32] = FAT_DIRENT_END;
    return true;
}

static bool d_lfn_reserved(raw_image *r)
{
    raw_lfn_before(r, entry(r, "ALONGN~1TXT"))[FAT_LFN_TYPE] = 1;
    return true;
}

static bool d_lfn_attr_bits(raw_image *r)
{
    raw_lfn_before(r, entry(r, "ALONGN~1TXT"))[FAT_LFN_ATTR] = 0x4F;
    return true;
}

static bool d_placeholder(raw_image *r)
{
    entry(r, "SMALL   TXT")[FAT_DIRENT_NT_CASE] |= FAT_CASE_NO_SHORT_NAME;
    return true;
}

static bool d_no_dot(raw_image *r)
{
    r->data[fat_cluster_offset(&r->g, first_of(r, "SUB        "))] = 'X';
    return true;
}

static bool d_misplaced_dot(raw_image *r)
{
    memcpy(entry(r, "SUB        /INNER   TXT"), ".          ", 11);
    return true;
}

static bool d_dir_and_label(raw_image *r)
{
    entry(r, "SUB        ")[FAT_DIRENT_ATTR] |= FAT_ATTR_VOLUME_ID;
    return true;
}

static bool d_label_with_cluster(raw_image *r)
{
    d_label(r);
    uint8_t *e = entry(r, "STRAY LABEL");
    set_first(r, e, first_of(r, "SMALL   TXT"));
    return true;
}

static bool d_label_chars(raw_image *r)
{
    d_label(r);
    entry(r, "STRAY LABEL")[3] = '*';
    return true;
}

static bool d_label_in_subdir(raw_image *r)
{
    uint8_t *e = entry(r, "SUB        /INNER   TXT");
    memcpy(e, "SUB LABEL  ", 11);
    e[FAT_DIRENT_ATTR] = FAT_ATTR_VOLUME_ID;
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, 0);
    af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
    return true;
}

static bool d_second_label(raw_image *r)
{
    d_label(r);
    memcpy(entry(r, "SMALL   TXT"), "OTHER LABEL", 11);
    entry(r, "OTHER LABEL")[FAT_DIRENT_ATTR] = FAT_ATTR_VOLUME_ID;
    set_first(r, entry(r, "OTHER LABEL"), 0);
    af_store_le32(entry(r, "OTHER LABEL") + FAT_DIRENT_SIZE_BYTES, 0);
    return true;
}

static bool d_fat_entry0(raw_image *r)
{
    raw_fat_set_all(r, 0, (raw_fat_get(r, 0, 0) & ~0xFFu) | 0xF0u);
    return true;
}

static bool d_fat_entry1(raw_image *r)
{
    raw_fat_set_all(r, 1, 0x123);
    return true;
}

static bool d_backup_boot(raw_image *r)
{
    if (r->g.type != FAT_TYPE_32 || r->g.backup_boot_sector == 0)
        return false;
    r->data[r->g.backup_boot_sector * r->g.bytes_per_sector + 0x1B0] ^= 0x55;
    return true;
}

static bool d_dir_no_cluster(raw_image *r)
{
    set_first(r, entry(r, "ALONGD~1   "), 0);
    return true;
}

static bool d_dir_out_of_range(raw_image *r)
{
    set_first(r, entry(r, "ALONGD~1   "), out_of_range(r));
    return true;
}

static bool d_dir_shared(raw_image *r)
{
    set_first(r, entry(r, "ALONGD~1   "), first_of(r, "BIG     BIN"));
    return true;
}

/* Renames a short entry as a writer would: its long-name entries get the new checksum. */
static void rename_short(raw_image *r, uint8_t *e, const char *name11)
{
    memcpy(e, name11, 11);
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + (uint8_t)name11[i]);
    for (uint8_t *lfn = raw_lfn_before(r, e); lfn; lfn = raw_lfn_before(r, lfn))
        lfn[FAT_LFN_CHECKSUM] = sum;
}

/* A short name with a character short names may not hold, with a matching long name. */
static bool d_bad_name_long(raw_image *r)
{
    rename_short(r, entry(r, "ALONGN~1TXT"), "AL?NGN~1TXT");
    return true;
}

/* Two entries with the same short name, each with its own long name. */
static bool d_duplicate_long(raw_image *r)
{
    rename_short(r, entry(r, "MANY       /FILENU~2TXT"), "FILENU~1TXT");
    return true;
}

static bool d_no_backup_boot(raw_image *r)
{
    if (r->g.type != FAT_TYPE_32)
        return false;
    af_store_le16(r->data + FAT_BPB32_BACKUP_BOOT, 0);
    return true;
}

static const damage damages[] = {
    {"loop", COUNTER(loops), 0, "BIG.BIN", d_loop},
    {"cross-link", COUNTER(cross_links), RESTORES, NULL, d_cross_link},
    {"out-of-range-link", COUNTER(bad_links), 0, "BIG.BIN", d_out_of_range_link},
    {"link-to-free", COUNTER(bad_links), 0, "BIG.BIN", d_link_to_free},
    {"size-too-big", COUNTER(size_mismatches), 0, "SMALL.TXT", d_size_too_big},
    {"size-without-cluster", COUNTER(size_mismatches), RESTORES, NULL, d_size_without_cluster},
    {"chain-too-long", COUNTER(size_mismatches), RECOVERY, "BIG.BIN", d_chain_too_long},
    {"lost", COUNTER(lost_clusters), RESTORES | RECOVERY, NULL, d_lost},
    {"fsinfo-count", COUNTER(fsinfo_errors), RESTORES | RECOVERY, NULL, d_fsinfo_count},
    {"fsinfo-unknown", COUNTER(fsinfo_errors), RESTORES | RECOVERY, NULL, d_fsinfo_unknown},
    {"orphan-lfn", COUNTER(orphan_lfns), FSCK_BLIND | RECOVERY, "A long name file.txt|ALONGN~1.TXT", d_orphan_lfn},
    {"fat-copy", COUNTER(fat_mismatches), RESTORES | RECOVERY, NULL, d_fat_copy},
    {"dirty", COUNTER(dirty), RESTORES | RECOVERY, NULL, d_dirty},
    {"dirty-boot-only", COUNTER(dirty), RESTORES | RECOVERY, NULL, d_dirty_boot_only},
    {"first-cluster", COUNTER(bad_entries), 0, "MED.BIN", d_first_cluster},
    {"dotdot", COUNTER(bad_entries), RESTORES, NULL, d_dotdot},
    {"dotdot-root-cluster", COUNTER(bad_entries), RESTORES, NULL, d_dotdot_root_cluster},
    {"dir-size", COUNTER(bad_entries), RESTORES, NULL, d_dir_size},
    {"bad-name", COUNTER(bad_entries), 0, "SMALL.TXT|SM_LL.TXT", d_bad_name},
    {"duplicate", COUNTER(bad_entries), 0, "MED.BIN|DUP00000.BIN", d_duplicate},
    {"bad-name-long", COUNTER(bad_entries), 0, NULL, d_bad_name_long},
    {"duplicate-long", COUNTER(bad_entries), 0, NULL, d_duplicate_long},
    {"dir-no-cluster", COUNTER(bad_entries), 0, "A long dir name", d_dir_no_cluster},
    {"dir-out-of-range", COUNTER(bad_entries), 0, "A long dir name", d_dir_out_of_range},
    {"dir-shared", COUNTER(cross_links), 0, "A long dir name", d_dir_shared},
    {"label", COUNTER(boot_errors), 0, NULL, d_label},
    {"after-end", COUNTER(bad_entries), 0, "SUB/", d_after_end},
    {"lfn-reserved", COUNTER(bad_entries), RESTORES, NULL, d_lfn_reserved},
    {"lfn-attr-bits", COUNTER(bad_entries), 0, "A long name file.txt|ALONGN~1.TXT", d_lfn_attr_bits},
    {"placeholder", COUNTER(bad_entries), RESTORES, NULL, d_placeholder},
    {"no-dot", COUNTER(bad_entries), 0, NULL, d_no_dot},
    {"misplaced-dot", COUNTER(bad_entries), 0, "SUB/INNER.TXT", d_misplaced_dot},
    {"dir-and-label", COUNTER(bad_entries), RESTORES, NULL, d_dir_and_label},
    {"label-with-cluster", COUNTER(bad_entries), 0, NULL, d_label_with_cluster},
    {"label-chars", COUNTER(bad_entries), 0, NULL, d_label_chars},
    {"label-in-subdir", COUNTER(bad_entries), FSCK_BLIND, "SUB/INNER.TXT", d_label_in_subdir},
    {"second-label", COUNTER(bad_entries), 0, "SMALL.TXT", d_second_label},
    {"fat-entry0", COUNTER(boot_errors), FSCK_BLIND | RESTORES, NULL, d_fat_entry0},
    {"fat-entry1", COUNTER(boot_errors), FSCK_BLIND, NULL, d_fat_entry1},
    {"backup-boot", COUNTER(boot_errors), RESTORES, NULL, d_backup_boot},
    {"no-backup-boot", COUNTER(boot_errors), RESTORES, NULL, d_no_backup_boot},
};

/* Every path in `diff` (one per line) starts with one of the '|'-separated prefixes. */
static bool only_allowed(const char *diff, const char *may_change)
{
    for (const char *line = diff; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        bool ok = false;
        for (const char *p = may_change; p && *p && !ok;) {
            const char *bar = strchr(p, '|');
            size_t plen = bar ? (size_t)(bar - p) : strlen(p);
            ok = plen <= len && strncasecmp(line, p, plen) == 0;
            p = bar ? bar + 1 : p + plen;
        }
        if (!ok)
            return false;
        line += len + (end ? 1 : 0);
    }
    return true;
}

static uint32_t counter_of(const fat_check_result *r, size_t offset)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)r + offset, sizeof v);
    return v;
}

/* The undamaged tree image of each kind, in memory, and its files extracted by mtools. */
static raw_image originals[AF_ARRAY_LEN(kinds)];

static raw_image *original(size_t kind)
{
    raw_image *o = &originals[kind];
    if (o->data)
        return o;
    const char *img = tmp_path("orig.img");
    char files[32];
    snprintf(files, sizeof files, "orig%zu.files", kind);
    if (!tree_image(img, kinds[kind].mkfs_args, kinds[kind].kib) || !EXPECT(raw_load(o, img)) ||
        !tree_extract(img, tmp_path(files)))
        return NULL;
    return o;
}

static const char *original_files(size_t kind)
{
    char files[32];
    snprintf(files, sizeof files, "orig%zu.files", kind);
    return tmp_path(files);
}

/* Per kind: the original's live blocks, and a copy of it that damages are made in (it
 * is the original again after each load). */
static uint8_t *original_live[AF_ARRAY_LEN(kinds)];
static uint8_t *scratch[AF_ARRAY_LEN(kinds)];
/* and the device the damaged images are loaded into, one at a time */
static live_device devices[AF_ARRAY_LEN(kinds)];

/* original(kind), with its live blocks and its scratch copy ready. */
static raw_image *original_scratch(size_t kind)
{
    raw_image *o = original(kind);
    if (o && !scratch[kind]) {
        original_live[kind] = live_blocks(o->data, o->len);
        scratch[kind] = malloc(o->len);
        memcpy(scratch[kind], o->data, o->len);
    }
    return o;
}

/* A RAM device holding the tree image with the damage; *applies false if the damage does
 * not apply to this volume (nothing is loaded then). */
static bool damaged_device(live_device **dev, size_t kind, const damage *d, bool *applies)
{
    *applies = false;
    *dev = &devices[kind];
    raw_image *o = original_scratch(kind);
    if (!o)
        return false;
    raw_image r = *o;
    r.data = scratch[kind];
    *applies = d->apply(&r);
    if (!*applies) {
        memcpy(r.data, o->data, o->len);
        return true;
    }
    return live_load_changed(*dev, o->data, original_live[kind], r.data, r.len);
}

static bool save_device(live_device *d, const char *img)
{
    return EXPECT(live_save(d, img));
}

/* The checks of one case, on one device: a check, a repair, a check. */
static bool damage_checks(live_device *dev, size_t kind, const damage *d, const char *img)
{
    blk_fixture *f = &dev->f;
    bool fsck_saw = save_device(dev, img) && !fsck_silent(img, false);
    check_run found, repaired, after;
    check_echo = true;
    printf("%s %s:\n", kinds[kind].mkfs_args, d->name);
    bool ok = check_device_ok(f, 0, &found) && check_device_ok(f, FAT_CHECK_REPAIR_ALL, &repaired);
    check_echo = false;
    if (!ok)
        return false;
    ok = EXPECT(counter_of(&found.r, d->counter) > 0) && EXPECT(found.writes == 0) &&
         EXPECT(repaired.r.problems > 0) && EXPECT(repaired.r.left == 0) &&
         EXPECT(fsck_saw || (d->flags & FSCK_BLIND)) && check_device_ok(f, 0, &after);
    if (ok && after.r.problems != 0) {
        printf("after one repair a second check still finds %u problems:\n", after.r.problems);
        check_echo = true;
        check_device_ok(f, 0, &after);
        check_echo = false;
        ok = false;
    }
    return ok && save_device(dev, img) && EXPECT(fsck_silent(img, true));
}

static bool damage_case(size_t kind, const damage *d)
{
    const char *img = tmp_path("damage.img");
    live_device *dev;
    bool applies;
    if (!damaged_device(&dev, kind, d, &applies))
        return false;
    if (!applies)
        return true;
    bool ok = damage_checks(dev, kind, d, img);
    const raw_image *o = original(kind);
    if (ok && (d->flags & RESTORES)) {
        size_t at = live_first_difference(dev, o->data, o->len);
        ok = EXPECT(at == o->len);
        if (!ok)
            printf("the repair did not restore the image: first difference at byte %zu\n", at);
    }
    if (!ok || (d->flags & RESTORES))
        return ok;
    const char *rep_tree = tmp_path("repaired.files");
    if (!tree_extract(img, rep_tree))
        return false;
    char *diff = tree_diff(original_files(kind), rep_tree);
    ok = EXPECT(diff != NULL) && only_allowed(diff, d->may_change);
    if (diff && !ok)
        printf("files changed that the damage did not touch:\n%s", diff);
    free(diff);
    return ok;
}

/* The damages a power cut can leave: the repairs they need (CHECK_CUT_REPAIRS, and the
 * dirty flags cleared) settle them. */
static bool recovery_case(size_t kind, const damage *d)
{
    const char *img = tmp_path("recover.img");
    live_device *dev;
    bool applies;
    if (!damaged_device(&dev, kind, d, &applies))
        return false;
    if (!applies)
        return true;
    check_run repaired, after;
    return check_device_ok(&dev->f, CHECK_CUT_REPAIRS | FAT_CHECK_REPAIR_DIRTY, &repaired) &&
           EXPECT(repaired.r.left == 0) && check_device_ok(&dev->f, 0, &after) && EXPECT(after.r.problems == 0) &&
           save_device(dev, img) && EXPECT(fsck_silent(img, true));
}

/* AF_DAMAGE=<name> runs that damage only. */
static void damage_all(size_t kind)
{
    const char *only = getenv("AF_DAMAGE");
    for (size_t i = 0; i < AF_ARRAY_LEN(damages); i++) {
        if (only && strcmp(only, damages[i].name) != 0)
            continue;
        CHECK_MSG(damage_case(kind, &damages[i]), "%s: damage %s", kinds[kind].mkfs_args, damages[i].name);
        if (damages[i].flags & RECOVERY)
            CHECK_MSG(recovery_case(kind, &damages[i]), "%s: recovery of %s", kinds[kind].mkfs_args, damages[i].name);
    }
    live_fini(&devices[kind]);
}

TEST(damage_repaired_in_one_pass_fat12)
{
    SKIP_WITHOUT("mcopy");
    damage_all(0);
}

TEST(damage_repaired_in_one_pass_fat16)
{
    SKIP_WITHOUT("mcopy");
    damage_all(1);
}

TEST(damage_repaired_in_one_pass_fat32)
{
    SKIP_WITHOUT("mcopy");
    damage_all(2);
}

TEST(memory_needed_and_too_little)
{
    fat_geometry g;
    memset(&g, 0, sizeof g);
    g.max_cluster = 65536;
    CHECK(fat_check_memory_needed(&g) >= 2 * ((65536 + 8) / 8) + FAT_CHECK_NAME_SLOTS * 8);
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("mem.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 16384", img), 0);
    raw_image r;
    CHECK(raw_load(&r, img));
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = img;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    uint8_t small[16];
    fat_check_options o = {.work = small, .work_size = sizeof small};
    fat_check_result res;
    fat_check_volume vol = {.geo = r.g};
    CHECK_EQ(fat_check_run(&f.stack.cache, &vol, &o, &res), VFS_INVALID_ARGUMENT); /* fails before blocking */
    o.work_size = 0;
    o.work = NULL;
    CHECK_EQ(fat_check_run(&f.stack.cache, &vol, &o, &res), VFS_INVALID_ARGUMENT);
    uint8_t *big = malloc(fat_check_memory_needed(&r.g));
    fat_check_options bad_bits = {.repairs = 1u << 31, .work = big, .work_size = fat_check_memory_needed(&r.g)};
    CHECK_EQ(fat_check_run(&f.stack.cache, &vol, &bad_bits, &res), VFS_INVALID_ARGUMENT);
    free(big);
    raw_free(&r);
    blk_fixture_fini(&f);
}

/* Random bytes over the FAT and over directory clusters: the checker finishes, one repair
 * leaves nothing for a second check, and fsck.fat has nothing to say about the result. */
TEST(hostile_images)
{
    SKIP_WITHOUT("mcopy");
    uint64_t seed = test_seed();
    const char *img = tmp_path("hostile.img");
    for (size_t k = 0; k < 3; k++) {
        raw_image *o = original_scratch(k);
        CHECK(o != NULL);
        live_device *dev = &devices[k];
        for (int round = 0; round < 4; round++) {
            raw_image w = *o;
            w.data = scratch[k];
            for (int i = 0; i < 200; i++) {
                uint64_t off = w.g.fat_offset + test_rand_below(&seed, w.g.fat_bytes);
                w.data[off] = (uint8_t)test_rand(&seed);
            }
            size_t n;
            uint8_t *root = raw_root_entries(&w, &n);
            for (int i = 0; i < 30; i++) {
                uint8_t *e = root + 32 * test_rand_below(&seed, n);
                for (int b = 0; b < 32; b++)
                    if (test_rand_below(&seed, 3) == 0)
                        e[b] = (uint8_t)test_rand(&seed);
            }
            for (int i = 0; i < 300; i++) {
                uint64_t off = w.g.data_offset + test_rand_below(&seed, 64ull * w.g.bytes_per_cluster);
                w.data[off] = (uint8_t)test_rand(&seed);
            }
            CHECK(live_load_changed(dev, o->data, original_live[k], w.data, w.len));
            check_run a, b, c;
            CHECK(check_device_ok(&dev->f, 0, &a));
            CHECK(a.r.problems > 0);
            CHECK(check_device_ok(&dev->f, FAT_CHECK_REPAIR_ALL, &b));
            CHECK(check_device_ok(&dev->f, 0, &c));
            if (c.r.problems != 0) {
                check_echo = true;
                check_device_ok(&dev->f, 0, &c);
                check_echo = false;
            }
            CHECK_MSG(c.r.problems == 0, "kind %zu round %d: %u problems left after one repair", k, round,
                      c.r.problems);
            CHECK(live_save(dev, img));
            CHECK_MSG(fsck_silent(img, true), "kind %zu round %d: fsck.fat disagrees after repair", k, round);
        }
        live_fini(dev);
    }
}

/* Device errors while checking or repairing give VFS_IO_ERROR, never a crash. */
typedef struct io_job {
    uint32_t repairs;
    check_run run;
} io_job;

static void io_task(blk_fixture *f, void *arg)
{
    io_job *j = arg;
    j->run.status = fat_check_volume_find(&f->stack.cache, 0, &j->run.vol);
    if (j->run.status != VFS_OK)
        return;
    size_t need = fat_check_memory_needed(&j->run.vol.geo);
    void *work = malloc(need);
    fat_check_options o = {.repairs = j->repairs, .work = work, .work_size = need};
    j->run.status = fat_check_run(&f->stack.cache, &j->run.vol, &o, &j->run.r);
    free(work);
}

TEST(io_errors)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("ioerr.img");
    CHECK(tree_image(img, "-F 16 -s 2", 8192));
    static const uint64_t nth[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};
    for (size_t i = 0; i < 2 * AF_ARRAY_LEN(nth); i++) {
        blk_fixture f;
        blk_fixture_options fo = blk_fixture_defaults();
        fo.image_path = img;
        fo.cache_buffers = 16;
        CHECK_EQ(blk_fixture_init(&f, &fo), 0);
        io_job j = {.repairs = i >= AF_ARRAY_LEN(nth) ? FAT_CHECK_REPAIR_ALL : 0};
        ram_device_fail_nth(&f.dev, nth[i % AF_ARRAY_LEN(nth)]);
        CHECK(fixture_call(&f, io_task, &j));
        CHECK_MSG(j.run.status == VFS_IO_ERROR || j.run.status == VFS_OK, "case %zu: %d", i,
                  j.run.status);
        if (j.run.status == VFS_OK)
            CHECK_EQ(j.run.r.problems, 0);
        blk_fixture_fini(&f);
    }
    /* unreadable FAT: an error, not findings */
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = img;
    fo.cache_buffers = 16;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    ram_device_fail_range(&f.dev, 1, 4, 1u << BLK_REQ_READ);
    io_job j = {0};
    CHECK(fixture_call(&f, io_task, &j));
    CHECK_EQ(j.run.status, VFS_IO_ERROR);
    blk_fixture_fini(&f);
    /* a repair whose writes fail */
    raw_image r;
    CHECK(raw_load(&r, img));
    d_loop(&r);
    CHECK(image_save(img, r.data, r.len));
    raw_free(&r);
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    ram_device_fail_range(&f.dev, 0, UINT64_MAX, 1u << BLK_REQ_WRITE);
    io_job w = {.repairs = FAT_CHECK_REPAIR_ALL};
    CHECK(fixture_call(&f, io_task, &w));
    CHECK_EQ(w.run.status, VFS_IO_ERROR);
    CHECK(w.run.r.loops > 0);
    blk_fixture_fini(&f);
}
