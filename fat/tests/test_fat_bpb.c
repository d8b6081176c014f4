/* fat_bpb: geometry of images made by mkfs.fat (FAT12/16/32, sector sizes, cluster sizes)
 * against what fsck.fat reports; every boot-sector field fuzzed (errors, never a crash, and
 * any geometry accepted stays inside the device); MBR partitions; and the LFN checksum,
 * name assembly and alias of a long name written by mtools. */
#include "fat/fat_bpb.h"
#include "fat/fat_layout.h"
#include "fat/fat_name.h"
#include "fat/tests/fat_test_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#define SKIP_WITHOUT(tool)                                   \
    do {                                                     \
        if (!tool_available(tool)) {                         \
            printf("SKIP %s: %s not installed\n", __func__, tool); \
            return;                                          \
        }                                                    \
    } while (0)

/* The number after `key` in fsck.fat -v output, e.g. "Data area starts at byte". */
static long long fsck_number_before(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    if (!p)
        return -1;
    const char *line = p;
    while (line > out && line[-1] != '\n')
        line--;
    return strtoll(line, NULL, 10);
}

static long long fsck_number_after(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

typedef struct mkfs_case {
    int fat;            /* -F */
    int sector;         /* -S */
    int cluster_sectors;/* -s, 0 = default */
    long size_kib;
} mkfs_case;

static bool check_against_fsck(const mkfs_case *mc)
{
    const char *img = tmp_path("bpb.img");
    remove(img);
    char s_opt[32] = "";
    if (mc->cluster_sectors)
        snprintf(s_opt, sizeof s_opt, "-s %d", mc->cluster_sectors);
    if (!EXPECT(tool_run(false, "mkfs.fat -C -F %d -S %d %s '%s' %ld", mc->fat, mc->sector, s_opt, img,
                         mc->size_kib) == 0))
        return false;
    size_t len;
    uint8_t *data = file_read_head(img, 4096, &len);
    if (!EXPECT(data != NULL))
        return false;
    fat_geometry g;
    fat_bpb_error why;
    vfs_status st = fat_bpb_parse(data, 4096, 0, len, &g, &why);
    char *out = tool_output("PATH=$PATH:/usr/sbin fsck.fat -nv '%s'", img);
    bool ok = EXPECT(st == VFS_OK) && EXPECT(out != NULL) && EXPECT((int)g.type == mc->fat) &&
              EXPECT((int)g.bytes_per_sector == mc->sector) &&
              EXPECT(mc->cluster_sectors == 0 || (int)g.sectors_per_cluster == mc->cluster_sectors) &&
              EXPECT((long long)g.bytes_per_cluster == fsck_number_before(out, "bytes per cluster")) &&
              EXPECT((long long)g.cluster_count == fsck_number_before(out, "data clusters")) &&
              EXPECT((long long)g.data_offset == fsck_number_after(out, "Data area starts at byte ")) &&
              EXPECT((long long)g.fat_offset == fsck_number_after(out, "First FAT starts at byte ")) &&
              EXPECT((long long)g.fat_bytes == fsck_number_before(out, "bytes per FAT")) &&
              EXPECT((long long)g.total_sectors == fsck_number_before(out, "sectors total")) &&
              EXPECT(g.volume_bytes <= len && g.volume_bytes + 1048576 > len) && EXPECT(g.media == 0xF8 || g.media == 0xF0);
    if (ok && g.type != FAT_TYPE_32) {
        ok = EXPECT((long long)g.root_dir_offset == fsck_number_after(out, "Root directory starts at byte ")) &&
             EXPECT((long long)g.root_entries == fsck_number_before(out, "root directory entries"));
    }
    if (ok && g.type == FAT_TYPE_32)
        ok = EXPECT(g.root_cluster == 2) && EXPECT(g.fsinfo_sector == 1) && EXPECT(g.backup_boot_sector == 6);
    if (!ok)
        printf("case -F %d -S %d -s %d %ld KiB: error %s\n%s", mc->fat, mc->sector, mc->cluster_sectors,
               mc->size_kib, fat_bpb_error_text(why), out ? out : "");
    /* a device one sector smaller than the volume is refused */
    if (ok)
        ok = EXPECT(fat_bpb_parse(data, 4096, 0, g.volume_bytes - 512, &g, &why) == VFS_CORRUPT) &&
             EXPECT(why == FAT_BPB_BEYOND_DEVICE);
    free(out);
    free(data);
    return ok;
}

TEST(mkfs_fat_images_parse)
{
    SKIP_WITHOUT("mkfs.fat");
    static const mkfs_case cases[] = {
        {12, 512, 0, 1440},   {12, 512, 1, 2048},   {12, 512, 8, 12000},  {12, 4096, 1, 8192},
        {12, 1024, 2, 4096},  {16, 512, 0, 16384},  {16, 512, 4, 32768},  {16, 512, 64, 600000},
        {16, 4096, 1, 65536}, {16, 2048, 2, 65536}, {32, 512, 1, 40960},  {32, 512, 0, 600000},
        {32, 512, 8, 300000}, {32, 4096, 1, 300000}, {32, 512, 128, 4300000},
        {32, 512, 8, 65536},  {32, 4096, 1, 65536}, /* FAT32 below its minimum cluster count */
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(cases); i++)
        CHECK_MSG(check_against_fsck(&cases[i]), "case %zu", i);
}

/* Whatever the boot sector says, an accepted geometry lies inside the device and is
 * self-consistent. */
static bool geometry_sane(const fat_geometry *g, uint64_t device)
{
    uint64_t fat_end = g->fat_offset + (uint64_t)g->fat_count * g->fat_bytes;
    uint64_t data_end = g->data_offset + (uint64_t)g->cluster_count * g->bytes_per_cluster;
    uint64_t entries_needed = (uint64_t)g->cluster_count + 2;
    uint64_t fat_needed = g->type == FAT_TYPE_12 ? (entries_needed * 3 + 1) / 2
                          : g->type == FAT_TYPE_16 ? entries_needed * 2 : entries_needed * 4;
    return g->bytes_per_cluster <= 65536 && g->bytes_per_cluster >= 512 && fat_end <= g->data_offset &&
           data_end <= device && g->fat_bytes >= fat_needed && g->cluster_count >= 1 &&
           g->max_cluster == g->cluster_count + 1 && g->fat_count >= 1 &&
           (g->type != FAT_TYPE_32 || (g->root_cluster >= 2 && g->root_cluster <= g->max_cluster)) &&
           (g->type == FAT_TYPE_32 || g->root_dir_offset + g->root_entries * 32ull <= g->data_offset) &&
           (g->type != FAT_TYPE_12 || g->cluster_count <= FAT12_MAX_CLUSTERS) &&
           (g->type != FAT_TYPE_16 || (g->cluster_count > FAT12_MAX_CLUSTERS && g->cluster_count <= FAT16_MAX_CLUSTERS)) &&
           (g->type != FAT_TYPE_32 || g->cluster_count <= FAT32_MAX_CLUSTERS);
}

static bool fuzz_image(const char *mkfs_args, long size_kib, uint64_t *seed)
{
    const char *img = tmp_path("fuzz.img");
    remove(img);
    if (!EXPECT(tool_run(false, "mkfs.fat -C %s '%s' %ld", mkfs_args, img, size_kib) == 0))
        return false;
    size_t len;
    uint8_t *data = file_read_all(img, &len);
    if (!EXPECT(data != NULL))
        return false;
    uint8_t sector[512];
    fat_geometry g;
    fat_bpb_error why;
    bool ok = true;
    static const uint8_t values[] = {0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xF0, 0xF7, 0xF8, 0xFE, 0xFF};
    for (size_t off = 0; off < 512 && ok; off++) {
        for (size_t v = 0; v < AF_ARRAY_LEN(values) + 4 && ok; v++) {
            memcpy(sector, data, 512);
            sector[off] = v < AF_ARRAY_LEN(values) ? values[v] : (uint8_t)test_rand(seed);
            vfs_status st = fat_bpb_parse(sector, 512, 0, len, &g, &why);
            if (st == VFS_OK)
                ok = EXPECT(geometry_sane(&g, len));
            else
                ok = EXPECT(st == VFS_CORRUPT) && EXPECT(why != FAT_BPB_OK) &&
                     EXPECT(strlen(fat_bpb_error_text(why)) > 0);
        }
    }
    /* multi-byte nonsense: random 16/32-bit fields at every BPB offset */
    for (int i = 0; i < 20000 && ok; i++) {
        memcpy(sector, data, 512);
        int fields = 1 + (int)test_rand_below(seed, 4);
        for (int k = 0; k < fields; k++) {
            size_t off = 11 + test_rand_below(seed, 90 - 11);
            af_store_le32(sector + off, (uint32_t)test_rand(seed));
        }
        vfs_status st = fat_bpb_parse(sector, 512, 0, len, &g, &why);
        if (st == VFS_OK)
            ok = EXPECT(geometry_sane(&g, len));
    }
    free(data);
    return ok;
}

TEST(fuzzed_boot_sectors)
{
    SKIP_WITHOUT("mkfs.fat");
    uint64_t seed = test_seed();
    CHECK(fuzz_image("-F 12", 4096, &seed));
    CHECK(fuzz_image("-F 16", 32768, &seed));
    CHECK(fuzz_image("-F 32 -s 1", 40960, &seed));
}

TEST(specific_errors)
{
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("err.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 32768", img), 0);
    size_t len;
    uint8_t *data = file_read_all(img, &len);
    CHECK(data != NULL);
    uint8_t s[512];
    fat_geometry g;
    fat_bpb_error why;
#define EXPECT_ERR(mutation, err)                                                  \
    do {                                                                           \
        memcpy(s, data, 512);                                                      \
        mutation;                                                                  \
        CHECK_EQ(fat_bpb_parse(s, 512, 0, len, &g, &why), VFS_CORRUPT);     \
        CHECK_EQ(why, err);                                                        \
    } while (0)
    EXPECT_ERR(s[510] = 0, FAT_BPB_NO_SIGNATURE);
    EXPECT_ERR(s[0] = 0, FAT_BPB_BAD_JUMP);
    EXPECT_ERR(af_store_le16(s + 11, 256), FAT_BPB_BAD_SECTOR_SIZE);
    EXPECT_ERR(af_store_le16(s + 11, 8192), FAT_BPB_BAD_SECTOR_SIZE);
    EXPECT_ERR(af_store_le16(s + 11, 600), FAT_BPB_BAD_SECTOR_SIZE);
    EXPECT_ERR(s[13] = 3, FAT_BPB_BAD_CLUSTER_SIZE);
    EXPECT_ERR(s[13] = 0, FAT_BPB_BAD_CLUSTER_SIZE);
    EXPECT_ERR((af_store_le16(s + 11, 4096), s[13] = 32), FAT_BPB_BAD_CLUSTER_SIZE);
    EXPECT_ERR(af_store_le16(s + 14, 0), FAT_BPB_BAD_RESERVED);
    EXPECT_ERR(s[16] = 0, FAT_BPB_BAD_FAT_COUNT);
    EXPECT_ERR(s[16] = 5, FAT_BPB_BAD_FAT_COUNT);
    EXPECT_ERR(af_store_le16(s + 17, 3), FAT_BPB_BAD_ROOT_ENTRIES);
    EXPECT_ERR(af_store_le16(s + 17, 0), FAT_BPB_BAD_ROOT_ENTRIES);
    EXPECT_ERR((af_store_le16(s + 19, 0), af_store_le32(s + 32, 0)), FAT_BPB_BAD_TOTAL_SECTORS);
    EXPECT_ERR(af_store_le32(s + 32, 0xFFFFFFFF), FAT_BPB_BEYOND_DEVICE);
    EXPECT_ERR(af_store_le16(s + 22, 1), FAT_BPB_BAD_FAT_SIZE);
    EXPECT_ERR(s[21] = 0x12, FAT_BPB_BAD_MEDIA);
    EXPECT_ERR(af_store_le16(s + 14, 0xFFFF), FAT_BPB_TOO_SMALL);
    EXPECT_ERR((af_store_le16(s + 22, 0), af_store_le32(s + 36, 0)), FAT_BPB_BAD_FAT_SIZE);
    CHECK_EQ(fat_bpb_parse(s, 100, 0, len, &g, &why), VFS_INVALID_ARGUMENT);
    free(data);

    /* FAT32-specific fields */
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 32 -s 1 '%s' 40960", img), 0);
    data = file_read_all(img, &len);
    CHECK(data != NULL);
    CHECK_EQ(fat_bpb_parse(data, 512, 0, len, &g, &why), VFS_OK);
    EXPECT_ERR(af_store_le32(s + 44, 1), FAT_BPB_BAD_ROOT_CLUSTER);
    EXPECT_ERR(af_store_le32(s + 44, g.max_cluster + 1), FAT_BPB_BAD_ROOT_CLUSTER);
    EXPECT_ERR(af_store_le16(s + 48, 40), FAT_BPB_BAD_FSINFO);
    /* an unusable backup field means no backup, not an unreadable volume */
    static const uint16_t unusable[] = {1 /* the FSInfo sector */, 40 /* past the reserved area */};
    for (size_t i = 0; i < AF_ARRAY_LEN(unusable); i++) {
        memcpy(s, data, 512);
        af_store_le16(s + 50, unusable[i]);
        CHECK_EQ(fat_bpb_parse(s, 512, 0, len, &g, &why), VFS_OK);
        CHECK_EQ(g.backup_boot_sector, 0);
    }
    EXPECT_ERR(af_store_le16(s + 42, 1), FAT_BPB_BAD_FAT32_FIELDS);
    EXPECT_ERR(af_store_le16(s + 40, 0x0085), FAT_BPB_BAD_FAT32_FIELDS);
    EXPECT_ERR(af_store_le16(s + 17, 512), FAT_BPB_BAD_ROOT_ENTRIES);
    memcpy(s, data, 512);
    af_store_le16(s + 40, 0x0081); /* mirroring off, FAT 1 active */
    CHECK_EQ(fat_bpb_parse(s, 512, 0, len, &g, &why), VFS_OK);
    CHECK_EQ(g.active_fat, 1);
    free(data);
#undef EXPECT_ERR
}

TEST(mbr_partitions)
{
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("part.img");
    remove(img);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 16384", img), 0);
    size_t vlen;
    uint8_t *vol = file_read_all(img, &vlen);
    CHECK(vol != NULL);
    uint64_t start = 2048ull * 512;
    size_t dlen = (size_t)(start + vlen);
    uint8_t *disk = calloc(1, dlen);
    memcpy(disk + start, vol, vlen);
    uint8_t *mbr = disk;
    mbr[0] = 0x33; /* code, not a jump */
    uint8_t *e0 = mbr + MBR_PARTITION_TABLE, *e1 = e0 + 16;
    e0[MBR_PART_TYPE] = 0x83; /* Linux, skipped in automatic mode */
    af_store_le32(e0 + MBR_PART_LBA_START, 1);
    af_store_le32(e0 + MBR_PART_SECTOR_COUNT, 100);
    e1[MBR_PART_STATUS] = 0x80;
    e1[MBR_PART_TYPE] = MBR_TYPE_FAT16_LBA;
    af_store_le32(e1 + MBR_PART_LBA_START, 2048);
    af_store_le32(e1 + MBR_PART_SECTOR_COUNT, (uint32_t)(vlen / 512));
    af_store_le16(mbr + 510, 0xAA55);

    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, -1, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, start);
    CHECK_EQ(bytes, vlen);
    fat_geometry g;
    CHECK_EQ(fat_bpb_parse(disk + off, 512, off, dlen, &g, &why), VFS_OK);
    CHECK_EQ(g.fat_offset, start + g.reserved_sectors * 512ull);
    CHECK_EQ(g.type, FAT_TYPE_16);
    /* explicit index */
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 512);
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, 2, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_NO_SUCH_PARTITION);
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, 4, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    /* partition past the device end */
    af_store_le32(e1 + MBR_PART_SECTOR_COUNT, (uint32_t)(vlen / 512) + 1);
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, -1, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_BAD_PARTITION);
    /* no FAT partition */
    e1[MBR_PART_TYPE] = 0x07;
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, -1, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_NO_PARTITION);
    /* garbage status byte: not an MBR */
    e1[MBR_PART_TYPE] = MBR_TYPE_FAT16_LBA;
    e1[MBR_PART_STATUS] = 0x12;
    CHECK_EQ(fat_bpb_locate(disk, 512, dlen, 512, -1, &off, &bytes, &why), VFS_CORRUPT);
    /* a whole-device volume */
    CHECK_EQ(fat_bpb_locate(vol, 512, vlen, 512, -1, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 0);
    CHECK_EQ(bytes, vlen);
    /* a whole-device volume larger than the device: its own error, not "no partition" */
    CHECK_EQ(fat_bpb_locate(vol, 512, vlen / 2, 512, -1, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_BEYOND_DEVICE);
    free(disk);
    free(vol);
}

/* A long name written by mtools: our checksum matches its LFN entries, our assembler
 * recovers the name, and our first alias candidate is the one mtools chose. */
TEST(mtools_long_name_checksum)
{
    SKIP_WITHOUT("mcopy");
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("lfn.img");
    const char *src = tmp_path("src.txt");
    remove(img);
    CHECK_EQ(file_write_all(src, "hello\n", 6), 0);
    CHECK_EQ(tool_run(false, "mkfs.fat -C -F 16 '%s' 16384", img), 0);
    static const char *names[] = {"LongFileName.txt", "A much longer file name with spaces.text", "caf\xc3\xa9 menu.txt"};
    for (size_t i = 0; i < AF_ARRAY_LEN(names); i++)
        CHECK_EQ(tool_run(false, "mcopy -i '%s' '%s' '::%s'", img, src, names[i]), 0);
    raw_image r;
    CHECK(raw_load(&r, img));
    size_t count;
    uint8_t *e = raw_root_entries(&r, &count);
    fat_lfn_state s;
    fat_lfn_reset(&s);
    size_t found = 0;
    for (size_t i = 0; i < count && e[i * 32] != 0; i++) {
        uint8_t *d = e + i * 32;
        if (d[11] == FAT_ATTR_LONG_NAME) {
            fat_lfn_feed(&s, d);
            continue;
        }
        const uint16_t *units;
        size_t len;
        uint32_t n = fat_lfn_finish(&s, d, &units, &len);
        if (n == 0)
            continue;
        CHECK_EQ(d[-32 + 13], fat_lfn_checksum(d));
        char utf8[800];
        size_t ulen;
        CHECK_EQ(fat_utf16_to_utf8(units, len, utf8, sizeof utf8, &ulen), VFS_OK);
        utf8[ulen] = 0;
        size_t which = AF_ARRAY_LEN(names);
        for (size_t k = 0; k < AF_ARRAY_LEN(names); k++) {
            if (strcmp(utf8, names[k]) == 0)
                which = k;
        }
        CHECK_MSG(which < AF_ARRAY_LEN(names), "unexpected long name '%s'", utf8);
        fat_name fn;
        CHECK_EQ(fat_name_prepare(names[which], strlen(names[which]), &fn), VFS_OK);
        fat_alias_basis b;
        fat_alias_basis_make(fn.units, fn.len, &b);
        uint8_t alias[11];
        CHECK(fat_alias_candidate(&b, 1, alias));
        if (which < 2) /* mtools maps non-ASCII through its code page, we use '_' */
            CHECK_MSG(memcmp(alias, d, 11) == 0, "alias '%.11s' vs mtools '%.11s'", alias, d);
        found++;
    }
    CHECK_EQ(found, AF_ARRAY_LEN(names));
    CHECK_EQ(s.orphans, 0);
    raw_free(&r);
}
