/* fat_check: clean on mkfs.fat images filled by mtools (FAT12/16/32); each kind of damage
 * (loop, cross-link, out-of-range link, wrong sizes, lost clusters, bad FSInfo, orphaned
 * LFN, FAT copies differ, dirty flags, bad entries, bad "..") is reported in its counter,
 * repair fixes it, fsck.fat -n agrees the result is clean and a second check finds nothing;
 * hostile images (random FAT and directory bytes) never crash or hang the checker. */
#include "fat/fat_check.h"
#include "fat/fat_layout.h"
#include "fat/tests/fat_test_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SKIP_WITHOUT(tool)                                          \
    do {                                                            \
        if (!tool_available(tool)) {                                \
            printf("SKIP %s: %s not installed\n", __func__, tool);  \
            return;                                                 \
        }                                                           \
    } while (0)

static bool quiet_log = true;

static void log_line(void *ctx, const char *msg)
{
    (void)ctx;
    if (!quiet_log)
        printf("  check: %s\n", msg);
}

typedef struct check_job {
    bool repair;
    fat_check_result r;
    fs_status st;
    fat_geometry g;
} check_job;

static void check_task(blk_fixture *f, void *arg)
{
    check_job *j = arg;
    uint8_t boot[4096];
    if (blk_cache_read_bytes(&f->stack.cache, 0, boot, sizeof boot) != BLK_OK) {
        j->st = FS_STATUS_IO_ERROR;
        return;
    }
    fat_bpb_error why;
    j->st = fat_bpb_parse(boot, sizeof boot, 0, f->image_bytes, &j->g, &why);
    if (j->st != FS_STATUS_SUCCESS)
        return;
    size_t need = fat_check_memory_needed(&j->g);
    void *work = malloc(need);
    fat_check_options o = {.repair = j->repair, .work = work, .work_size = need, .log = log_line};
    j->st = fat_check_run(&f->stack.cache, &j->g, &o, &j->r);
    free(work);
}

/* Checks (and repairs, saving back) the image file. */
static bool check_file(const char *img, bool repair, fat_check_result *r)
{
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = img;
    fo.cache_buffers = 64;
    if (!EXPECT(blk_fixture_init(&f, &fo) == 0))
        return false;
    check_job j;
    memset(&j, 0, sizeof j);
    j.repair = repair;
    bool ok = EXPECT(fixture_call(&f, check_task, &j)) && EXPECT(j.st == FS_STATUS_SUCCESS);
    if (ok && repair)
        ok = EXPECT(blk_fixture_save(&f, img) == 0);
    blk_fixture_fini(&f);
    *r = j.r;
    return ok;
}

static void write_file(const char *path, size_t size, uint8_t seed)
{
    uint8_t *b = malloc(size + 1);
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 31 + seed);
    file_write_all(path, b, size);
    free(b);
}

/* mkfs.fat + a tree written by mtools: BIG.BIN, MED.BIN, SMALL.TXT, EMPTY.TXT, a long
 * name, SUB/ with nested directories and a directory of 200 files (several clusters). */
static bool build_tree_image(const char *img, const char *mkfs_args, long kib);

/* Builds each kind of tree image once and copies it afterwards (mtools is the slow part). */
static bool make_tree_image(const char *img, const char *mkfs_args, long kib)
{
    char key[64];
    size_t n = 0;
    for (const char *p = mkfs_args; *p && n < 40; p++)
        key[n++] = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
    snprintf(key + n, sizeof key - n, "_%ld.base", kib);
    const char *base = tmp_path(key);
    FILE *f = fopen(base, "rb");
    if (f)
        fclose(f);
    else if (!build_tree_image(base, mkfs_args, kib))
        return false;
    return EXPECT(tool_run(false, "cp '%s' '%s'", base, img) == 0);
}

static bool build_tree_image(const char *img, const char *mkfs_args, long kib)
{
    const char *tree = tmp_path("tree");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/SUB/DEEP1/DEEP2/DEEP3' '%s/MANY'", tree, tree, tree);
    if (system(cmd) != 0)
        return false;
    char p[600];
    static const struct {
        const char *name;
        size_t size;
    } files[] = {
        {"BIG.BIN", 40000}, {"MED.BIN", 9000}, {"SMALL.TXT", 100}, {"EMPTY.TXT", 0},
        {"A long name file.txt", 3000}, {"SUB/INNER.TXT", 5000}, {"SUB/DEEP1/DEEP2/DEEP3/LEAF.DAT", 70000},
        {"SUB/Another long name.data", 1},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/%s", tree, files[i].name);
        write_file(p, files[i].size, (uint8_t)i);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(p, sizeof p, "%s/MANY/file number %03d.txt", tree, i);
        write_file(p, (size_t)(i * 13), (uint8_t)i);
    }
    remove(img);
    return EXPECT(tool_run(false, "mkfs.fat -C %s '%s' %ld", mkfs_args, img, kib) == 0) &&
           EXPECT(tool_run(false, "cd '%s' && mcopy -s -i '%s' BIG.BIN MED.BIN SMALL.TXT EMPTY.TXT "
                                  "'A long name file.txt' SUB MANY ::/",
                           tree, img) == 0) &&
           EXPECT(tool_run(false, "mmd -i '%s' ::/EMPTYDIR", img) == 0) && EXPECT(tool_fsck(img) == 0);
}

static const char *image_kinds[][2] = {
    {"-F 12", "8000"}, {"-F 16", "32768"}, {"-F 32 -s 1", "40960"}, {"-F 16 -S 4096", "65536"},
};

TEST(clean_images_are_clean)
{
    SKIP_WITHOUT("mkfs.fat");
    SKIP_WITHOUT("mcopy");
    for (size_t k = 0; k < AF_ARRAY_LEN(image_kinds); k++) {
        const char *img = tmp_path("clean.img");
        CHECK(make_tree_image(img, image_kinds[k][0], atol(image_kinds[k][1])));
        fat_check_result r;
        quiet_log = false;
        CHECK(check_file(img, false, &r));
        quiet_log = true;
        CHECK_MSG(r.problems == 0, "%s: %u problems", image_kinds[k][0], r.problems);
        CHECK_EQ(r.files, 5 + 3 + 200);
        CHECK_EQ(r.directories, 6);
        CHECK(r.used_clusters > 0 && r.free_clusters > 0);
        /* repair mode on a clean image changes nothing */
        size_t before_len, after_len;
        uint8_t *before = file_read_all(img, &before_len);
        CHECK(check_file(img, true, &r));
        CHECK_EQ(r.problems, 0);
        CHECK_EQ(r.repaired, 0);
        uint8_t *after = file_read_all(img, &after_len);
        CHECK(before_len == after_len && memcmp(before, after, before_len) == 0);
        free(before);
        free(after);
    }
}

/* ---- damage ----------------------------------------------------------------------------------- */

static void fat_set_all(raw_image *r, uint32_t cl, uint32_t v)
{
    for (uint32_t c = 0; c < r->g.fat_count; c++)
        raw_fat_set(r, c, cl, v);
}

static uint32_t nth_cluster(raw_image *r, uint32_t first, uint32_t n)
{
    uint32_t cl = first;
    for (uint32_t i = 0; i < n; i++)
        cl = raw_fat_get(r, 0, cl);
    return cl;
}

static uint32_t last_cluster(raw_image *r, uint32_t first)
{
    uint32_t cl = first;
    for (;;) {
        uint32_t next = raw_fat_get(r, 0, cl);
        if (next < 2 || next > r->g.max_cluster)
            return cl;
        cl = next;
    }
}

static uint32_t file_first(raw_image *r, const char *name11)
{
    uint8_t *e = raw_root_entry(r, name11);
    return e ? raw_entry_cluster(r, e) : 0;
}

typedef enum damage {
    DAMAGE_LOOP,
    DAMAGE_CROSS_LINK,
    DAMAGE_OUT_OF_RANGE,
    DAMAGE_LINK_TO_FREE,
    DAMAGE_SIZE_TOO_BIG,
    DAMAGE_SIZE_TOO_SMALL,
    DAMAGE_LOST,
    DAMAGE_FSINFO,
    DAMAGE_ORPHAN_LFN,
    DAMAGE_FAT_COPY,
    DAMAGE_DIRTY,
    DAMAGE_FIRST_CLUSTER,
    DAMAGE_DOTDOT,
    DAMAGE_DIR_SIZE,
    DAMAGE_BAD_NAME,
    DAMAGE_DUPLICATE,
    DAMAGE_LABEL,
    DAMAGE_COUNT,
} damage;

static const char *damage_names[] = {"loop", "cross-link", "out-of-range", "link-to-free", "size-too-big",
                                     "size-too-small", "lost", "fsinfo", "orphan-lfn", "fat-copy", "dirty",
                                     "first-cluster", "dotdot", "dir-size", "bad-name", "duplicate", "label"};

/* Applies the damage; returns the counter that must report it, or NULL if not applicable. */
static uint32_t *apply_damage(raw_image *r, damage d, fat_check_result *res)
{
    uint32_t big = file_first(r, "BIG     BIN"), med = file_first(r, "MED     BIN");
    uint8_t *e;
    switch (d) {
    case DAMAGE_LOOP:
        fat_set_all(r, nth_cluster(r, big, 3), nth_cluster(r, big, 1));
        return &res->loops;
    case DAMAGE_CROSS_LINK:
        fat_set_all(r, last_cluster(r, med), nth_cluster(r, big, 2));
        return &res->cross_links;
    case DAMAGE_OUT_OF_RANGE:
        fat_set_all(r, nth_cluster(r, big, 1), r->g.max_cluster + 5 < fat_bad_value(r->g.type) ? r->g.max_cluster + 5 : 1);
        return &res->bad_links;
    case DAMAGE_LINK_TO_FREE:
        fat_set_all(r, big, r->g.max_cluster - 1); /* near the end: free */
        return &res->bad_links;
    case DAMAGE_SIZE_TOO_BIG:
        af_store_le32(raw_root_entry(r, "SMALL   TXT") + 28, 1000000);
        return &res->size_mismatches;
    case DAMAGE_SIZE_TOO_SMALL:
        af_store_le32(raw_root_entry(r, "BIG     BIN") + 28, 10);
        return &res->size_mismatches;
    case DAMAGE_LOST:
        for (uint32_t i = 0; i < 3; i++)
            fat_set_all(r, r->g.max_cluster - i, fat_eoc_value(r->g.type));
        return &res->lost_clusters;
    case DAMAGE_FSINFO:
        if (r->g.type != FAT_TYPE_32)
            return NULL;
        af_store_le32(r->data + r->g.fsinfo_sector * r->g.bytes_per_sector + FAT_FSINFO_FREE_COUNT, 12345);
        return &res->fsinfo_errors;
    case DAMAGE_ORPHAN_LFN: {
        size_t n;
        e = raw_root_entries(r, &n);
        for (size_t i = 0; i < n; i++, e += 32) {
            if (e[11] == FAT_ATTR_LONG_NAME && e[0] != 0xE5) {
                e[13] ^= 0x5A;
                return &res->orphan_lfns;
            }
        }
        return NULL;
    }
    case DAMAGE_FAT_COPY:
        if (r->g.fat_count < 2)
            return NULL;
        raw_fat_set(r, 1, r->g.max_cluster, 7);
        return &res->fat_mismatches;
    case DAMAGE_DIRTY:
        r->data[r->g.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE] |= FAT_STATE_DIRTY;
        if (r->g.type == FAT_TYPE_16)
            fat_set_all(r, 1, raw_fat_get(r, 0, 1) & ~FAT16_CLEAN_SHUTDOWN);
        if (r->g.type == FAT_TYPE_32) {
            fat_set_all(r, 1, raw_fat_get(r, 0, 1) & ~FAT32_CLEAN_SHUTDOWN);
            r->data[r->g.backup_boot_sector * r->g.bytes_per_sector + FAT_BS32_STATE] |= FAT_STATE_DIRTY;
        }
        return &res->dirty;
    case DAMAGE_FIRST_CLUSTER:
        e = raw_root_entry(r, "MED     BIN");
        af_store_le16(e + 26, (uint16_t)(r->g.max_cluster + 1 > 0xFFFF ? 1 : r->g.max_cluster + 1));
        af_store_le16(e + 20, 0);
        return &res->bad_entries;
    case DAMAGE_DOTDOT: {
        uint32_t sub = file_first(r, "SUB        ");
        e = r->data + fat_cluster_offset(&r->g, sub) + 32; /* ".." */
        af_store_le16(e + 26, (uint16_t)big);
        return &res->bad_entries;
    }
    case DAMAGE_DIR_SIZE:
        af_store_le32(raw_root_entry(r, "SUB        ") + 28, 4096);
        return &res->bad_entries;
    case DAMAGE_BAD_NAME:
        raw_root_entry(r, "SMALL   TXT")[2] = '?';
        return &res->bad_entries;
    case DAMAGE_DUPLICATE:
        memcpy(raw_root_entry(r, "MED     BIN"), "BIG     BIN", 11);
        return &res->bad_entries;
    case DAMAGE_LABEL: {
        /* a root label entry the boot sector does not know */
        size_t n;
        e = raw_root_entries(r, &n);
        while (e[0] != 0 && e[0] != 0xE5)
            e += 32;
        memset(e, 0, 32);
        memcpy(e, "STRAY LABEL", 11);
        e[11] = FAT_ATTR_VOLUME_ID;
        return &res->boot_errors;
    }
    case DAMAGE_COUNT:
        break;
    }
    return NULL;
}

static bool damage_case(const char *mkfs_args, long kib, damage d)
{
    const char *img = tmp_path("damage.img");
    if (!make_tree_image(img, mkfs_args, kib))
        return false;
    raw_image r;
    if (!EXPECT(raw_load(&r, img)))
        return false;
    fat_check_result res;
    memset(&res, 0, sizeof res);
    uint32_t *counter = apply_damage(&r, d, &res);
    size_t offset = counter ? (size_t)((uint8_t *)counter - (uint8_t *)&res) : 0;
    bool saved = raw_save(&r, img);
    raw_free(&r);
    if (!counter)
        return true;
    if (!EXPECT(saved))
        return false;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "PATH=$PATH:/usr/sbin fsck.fat -n '%s' >/dev/null 2>&1", img);
    int fsck_before = system(cmd);
    fat_check_result found, repaired, after;
    quiet_log = false;
    printf("%s %s:\n", mkfs_args, damage_names[d]);
    bool ok = check_file(img, false, &found) && check_file(img, true, &repaired);
    quiet_log = true;
    uint32_t found_count = *(uint32_t *)((uint8_t *)&found + offset);
    /* the damage is real: fsck.fat sees it too (it does not look at orphaned LFN entries) */
    ok = ok && EXPECT(fsck_before != 0 || d == DAMAGE_ORPHAN_LFN) && EXPECT(found_count > 0) && EXPECT(found.problems > 0) && EXPECT(repaired.repaired > 0) &&
         EXPECT(check_file(img, false, &after)) && EXPECT(after.problems == 0) && EXPECT(tool_fsck(img) == 0);
    if (!ok)
        printf("damage %s on %s: found %u (counter %u), repaired %u, after %u; fsck before %d\n", damage_names[d],
               mkfs_args, found.problems, found_count, repaired.repaired, after.problems, fsck_before);
    return ok;
}

TEST(damage_reported_and_repaired_fat16)
{
    SKIP_WITHOUT("mcopy");
    for (int d = 0; d < DAMAGE_COUNT; d++)
        CHECK_MSG(damage_case("-F 16", 32768, (damage)d), "damage %s", damage_names[d]);
}

TEST(damage_reported_and_repaired_fat32)
{
    SKIP_WITHOUT("mcopy");
    for (int d = 0; d < DAMAGE_COUNT; d++)
        CHECK_MSG(damage_case("-F 32 -s 1", 40960, (damage)d), "damage %s", damage_names[d]);
}

TEST(damage_reported_and_repaired_fat12)
{
    SKIP_WITHOUT("mcopy");
    static const damage some[] = {DAMAGE_LOOP, DAMAGE_CROSS_LINK, DAMAGE_OUT_OF_RANGE, DAMAGE_SIZE_TOO_SMALL,
                                  DAMAGE_LOST, DAMAGE_ORPHAN_LFN, DAMAGE_FAT_COPY, DAMAGE_DOTDOT};
    for (size_t i = 0; i < AF_ARRAY_LEN(some); i++)
        CHECK_MSG(damage_case("-F 12", 8000, some[i]), "damage %s", damage_names[some[i]]);
}

TEST(memory_needed_and_too_little)
{
    fat_geometry g;
    memset(&g, 0, sizeof g);
    g.max_cluster = 65536;
    CHECK_EQ(fat_check_memory_needed(&g), 2 * ((65536 + 8) / 8) + FAT_CHECK_NAME_SLOTS * 8);
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("mem.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 16384", img), 0);
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = img;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    check_job j;
    memset(&j, 0, sizeof j);
    CHECK(fixture_call(&f, check_task, &j));
    CHECK_EQ(j.st, FS_STATUS_SUCCESS);
    uint8_t small[16];
    fat_check_options o = {.work = small, .work_size = sizeof small};
    fat_check_result r;
    CHECK_EQ(fat_check_run(&f.stack.cache, &j.g, &o, &r), FS_STATUS_INVALID_ARGUMENT); /* fails before blocking */
    blk_fixture_fini(&f);
}

/* Random bytes over the FAT and over directory clusters: the checker finishes, repair
 * converges (a second repair pass leaves nothing for a third check), and fsck.fat finds
 * nothing to fix in the result. */
TEST(hostile_images)
{
    SKIP_WITHOUT("mcopy");
    uint64_t seed = test_seed();
    for (size_t k = 0; k < 3; k++) {
        const char *img = tmp_path("hostile.img");
        CHECK(make_tree_image(img, image_kinds[k][0], atol(image_kinds[k][1])));
        raw_image r;
        CHECK(raw_load(&r, img));
        for (int round = 0; round < 4; round++) {
            raw_image w = r;
            w.data = malloc(r.len);
            memcpy(w.data, r.data, r.len);
            /* scribble over FAT bytes */
            for (int i = 0; i < 200; i++) {
                uint64_t off = w.g.fat_offset + test_rand_below(&seed, w.g.fat_bytes);
                w.data[off] = (uint8_t)test_rand(&seed);
            }
            /* and over directory entries in the first data clusters and the root */
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
            CHECK(raw_save(&w, img));
            free(w.data);
            fat_check_result a, b, c;
            CHECK(check_file(img, false, &a));
            CHECK(a.problems > 0);
            CHECK(check_file(img, true, &b));
            CHECK(check_file(img, true, &b));
            CHECK(check_file(img, false, &c));
            CHECK_MSG(c.problems == 0, "kind %zu round %d: %u problems left", k, round, c.problems);
            CHECK_MSG(tool_fsck(img) == 0, "kind %zu round %d: fsck.fat disagrees after repair", k, round);
        }
        raw_free(&r);
    }
}

TEST(deep_tree_is_bounded)
{
    SKIP_WITHOUT("mmd");
    const char *img = tmp_path("deep.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 16384", img), 0);
    CHECK_EQ(tool_run(false, "p=::; i=0; while [ $i -lt %u ]; do p=$p/D; mmd -i '%s' $p || exit 1; i=$((i+1)); done",
                      FAT_CHECK_MAX_DEPTH + 6, img), 0);
    fat_check_result r;
    CHECK(check_file(img, false, &r));
    CHECK_EQ(r.too_deep, 1);
    CHECK_EQ(r.directories, FAT_CHECK_MAX_DEPTH + 1);
}

/* Device errors while checking or repairing give FS_STATUS_IO_ERROR, never a crash. */
TEST(io_errors)
{
    SKIP_WITHOUT("mcopy");
    const char *img = tmp_path("ioerr.img");
    CHECK(make_tree_image(img, "-F 16", 32768));
    static const uint64_t nth[] = {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144};
    for (size_t i = 0; i < 2 * AF_ARRAY_LEN(nth); i++) {
        blk_fixture f;
        blk_fixture_options fo = blk_fixture_defaults();
        fo.image_path = img;
        fo.cache_buffers = 16;
        CHECK_EQ(blk_fixture_init(&f, &fo), 0);
        check_job j;
        memset(&j, 0, sizeof j);
        j.repair = i >= AF_ARRAY_LEN(nth);
        ram_device_fail_nth(&f.dev, nth[i % AF_ARRAY_LEN(nth)]);
        CHECK(fixture_call(&f, check_task, &j));
        CHECK_MSG(j.st == FS_STATUS_IO_ERROR || j.st == FS_STATUS_SUCCESS, "case %zu: %d", i, j.st);
        if (j.st == FS_STATUS_SUCCESS)
            CHECK_EQ(j.r.problems, 0);
        blk_fixture_fini(&f);
    }
    /* unreadable FAT: an error, not findings */
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_path = img;
    fo.cache_buffers = 16;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    ram_device_fail_range(&f.dev, 1, 4, 1u << BLK_REQ_READ);
    check_job j;
    memset(&j, 0, sizeof j);
    CHECK(fixture_call(&f, check_task, &j));
    CHECK_EQ(j.st, FS_STATUS_IO_ERROR);
    blk_fixture_fini(&f);
    /* a repair whose writes fail */
    raw_image r;
    CHECK(raw_load(&r, img));
    fat_check_result unused;
    apply_damage(&r, DAMAGE_LOOP, &unused);
    CHECK(raw_save(&r, img));
    raw_free(&r);
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    ram_device_fail_range(&f.dev, 0, UINT64_MAX, 1u << BLK_REQ_WRITE);
    memset(&j, 0, sizeof j);
    j.repair = true;
    CHECK(fixture_call(&f, check_task, &j));
    CHECK_EQ(j.st, FS_STATUS_IO_ERROR);
    CHECK(j.r.loops > 0);
    blk_fixture_fini(&f);
}
