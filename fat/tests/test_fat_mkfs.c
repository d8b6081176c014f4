/* fat_mkfs: planning (defaults like mkfs.fat, forced types, errors) and formatting RAM
 * images through the block cache; each image is saved and must pass `fsck.fat -n`, list
 * with `mdir`, take files with mcopy/mmd and still pass fsck. FAT12/16/32, sector sizes
 * 512 and 4096, several cluster sizes. */
#include "fat/fat_check.h"
#include "fat/fat_layout.h"
#include "fat/fat_mkfs.h"
#include "fat/tests/fat_test_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#define MIB (1024ull * 1024)

#define SKIP_WITHOUT(tool)                                          \
    do {                                                            \
        if (!tool_available(tool)) {                                \
            printf("SKIP %s: %s not installed\n", __func__, tool);  \
            return;                                                 \
        }                                                           \
    } while (0)

static fat_mkfs_options opts(uint32_t type, uint32_t bps, uint32_t spc)
{
    fat_mkfs_options o;
    memset(&o, 0, sizeof o);
    o.fat_type = type;
    o.bytes_per_sector = bps;
    o.sectors_per_cluster = spc;
    o.volume_id = 0x1234ABCD;
    o.label = "TestVol";
    return o;
}

TEST(plan_defaults_like_mkfs_fat)
{
    static const struct {
        uint64_t kib;
        fat_type type;
        uint32_t cluster;
    } expect[] = {
        {8192, FAT_TYPE_12, 2048},     {16384, FAT_TYPE_16, 2048},  {65536, FAT_TYPE_16, 2048},
        {131072, FAT_TYPE_16, 2048},   {262144, FAT_TYPE_16, 4096}, {524288, FAT_TYPE_32, 4096},
        {2097152, FAT_TYPE_32, 4096},  {16777216, FAT_TYPE_32, 8192}, {67108864, FAT_TYPE_32, 32768},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(expect); i++) {
        fat_mkfs_options o = opts(0, 0, 0);
        fat_geometry g;
        CHECK_EQ(fat_mkfs_plan(&o, expect[i].kib * 1024, &g), VFS_OK);
        CHECK_MSG(g.type == expect[i].type && g.bytes_per_cluster == expect[i].cluster, "%llu KiB: FAT%d %u",
                  (unsigned long long)expect[i].kib, g.type, g.bytes_per_cluster);
        CHECK_EQ(g.fat_count, 2);
        CHECK_EQ(g.media, 0xF8);
        CHECK_EQ(g.volume_id, 0x1234ABCD);
        CHECK(memcmp(g.label, "TESTVOL    ", 11) == 0);
        CHECK_EQ(g.first_data_sector % g.sectors_per_cluster, 0); /* aligned */
        if (g.type == FAT_TYPE_32) {
            CHECK(g.reserved_sectors >= 32);
            CHECK_EQ(g.root_cluster, 2);
        } else {
            CHECK_EQ(g.root_entries, 512);
        }
    }
    /* mkfs.fat's choices for the same sizes, when the tool is here */
    if (!tool_available("mkfs.fat"))
        return;
    for (size_t i = 0; i < 6; i++) {
        const char *img = tmp_path("plan.img");
        remove(img);
        CHECK_EQ(tool_run(false, "mkfs.fat -C '%s' %llu", img, (unsigned long long)expect[i].kib), 0);
        size_t len;
        uint8_t *head = file_read_head(img, 512, &len);
        CHECK(head != NULL);
        fat_geometry g;
        fat_bpb_error why;
        vfs_status st = fat_bpb_parse(head, 512, 0, len, &g, &why);
        free(head);
        CHECK_EQ(st, VFS_OK);
        CHECK_MSG(g.type == expect[i].type && g.bytes_per_cluster == expect[i].cluster, "mkfs.fat %llu KiB: FAT%d %u",
                  (unsigned long long)expect[i].kib, g.type, g.bytes_per_cluster);
    }
}

TEST(plan_forced_types_and_errors)
{
    fat_geometry g;
    fat_mkfs_options o = opts(32, 512, 0);
    CHECK_EQ(fat_mkfs_plan(&o, 16 * MIB, &g), VFS_NO_SPACE);       /* too few clusters for FAT32 */
    CHECK_EQ(fat_mkfs_plan(&o, 40 * MIB, &g), VFS_OK);        /* 512-byte clusters make it fit */
    CHECK_EQ(g.type, FAT_TYPE_32);
    CHECK_EQ(g.bytes_per_cluster, 512);
    o = opts(12, 512, 1);
    CHECK_EQ(fat_mkfs_plan(&o, 64 * MIB, &g), VFS_NO_SPACE);       /* too many clusters for FAT12 */
    o = opts(12, 512, 0);
    CHECK_EQ(fat_mkfs_plan(&o, 64 * MIB, &g), VFS_OK);        /* bigger clusters make it fit */
    CHECK_EQ(g.type, FAT_TYPE_12);
    o = opts(16, 512, 0);
    CHECK_EQ(fat_mkfs_plan(&o, 1 * MIB, &g), VFS_NO_SPACE);        /* 2048 clusters < 4085 */
    CHECK_EQ(fat_mkfs_plan(&o, 4 * MIB, &g), VFS_OK);
    CHECK_EQ(g.type, FAT_TYPE_16);
    o = opts(16, 4096, 0);
    CHECK_EQ(fat_mkfs_plan(&o, 64 * MIB, &g), VFS_OK);
    CHECK_EQ(g.bytes_per_sector, 4096);
    CHECK(g.bytes_per_cluster >= 4096);
    CHECK_EQ(fat_mkfs_plan(&o, 4096, &g), VFS_NO_SPACE);
    o = opts(0, 512, 0);
    o.volume_offset = 1 * MIB;
    CHECK_EQ(fat_mkfs_plan(&o, 9 * MIB, &g), VFS_OK);
    CHECK_EQ(g.volume_offset, 1 * MIB);
    CHECK_EQ(g.volume_bytes, 8 * MIB);

    static const struct {
        uint32_t type, bps, spc, fats;
        const char *label;
        uint8_t media;
    } bad[] = {
        {13, 512, 0, 0, NULL, 0}, {0, 300, 0, 0, NULL, 0}, {0, 8192, 0, 0, NULL, 0}, {0, 512, 3, 0, NULL, 0},
        {0, 4096, 32, 0, NULL, 0}, {0, 512, 0, 3, NULL, 0}, {0, 512, 0, 0, "bad*label", 0},
        {0, 512, 0, 0, "twelve chars", 0}, {0, 512, 0, 0, " lead", 0}, {0, 512, 0, 0, NULL, 0x12},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(bad); i++) {
        o = opts(bad[i].type, bad[i].bps, bad[i].spc);
        o.fat_count = bad[i].fats;
        o.label = bad[i].label;
        o.media = bad[i].media;
        CHECK_MSG(fat_mkfs_plan(&o, 64 * MIB, &g) == VFS_INVALID_ARGUMENT, "case %zu", i);
    }
    o = opts(0, 512, 0);
    o.volume_offset = 1000;
    CHECK_EQ(fat_mkfs_plan(&o, 64 * MIB, &g), VFS_INVALID_ARGUMENT);
    o.volume_offset = 0;
    o.volume_bytes = 65 * MIB;
    CHECK_EQ(fat_mkfs_plan(&o, 64 * MIB, &g), VFS_INVALID_ARGUMENT);
}

typedef struct format_job {
    fat_mkfs_options o;
    uint64_t device;
    fat_geometry g;
    vfs_status st;
    fat_check_result check;
    vfs_status check_st;
} format_job;

static void format_task(blk_fixture *f, void *arg)
{
    format_job *j = arg;
    j->st = fat_mkfs_format(&f->stack.cache, j->device, &j->o, &j->g);
    if (j->st != VFS_OK)
        return;
    fat_check_volume vol;
    j->check_st = fat_check_volume_find(&f->stack.cache, j->g.volume_offset, &vol);
    if (j->check_st != VFS_OK)
        return;
    size_t need = fat_check_memory_needed(&vol.geo);
    void *work = malloc(need);
    fat_check_options co = {.work = work, .work_size = need};
    j->check_st = fat_check_run(&f->stack.cache, &vol, &co, &j->check);
    free(work);
}

typedef struct format_case {
    uint32_t type, bps, spc;
    uint64_t bytes;
    bool garbage;  /* fill the device with random bytes first */
    uint32_t fats; /* 0: default (2) */
} format_case;

static bool format_and_verify(const format_case *fc, uint64_t *seed)
{
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = fc->bytes;
    fo.sector_size = (uint16_t)(fc->bps ? fc->bps : 512);
    if (!EXPECT(blk_fixture_init(&f, &fo) == 0))
        return false;
    if (fc->garbage) {
        for (uint64_t i = 0; i < f.image_bytes; i += 8)
            memcpy(f.image + i, &(uint64_t){test_rand(seed)}, 8);
    }
    format_job j;
    memset(&j, 0, sizeof j);
    j.o = opts(fc->type, fc->bps, fc->spc);
    j.o.fat_count = fc->fats;
    j.device = blk_client_capacity_blocks(&f.stack.client) * BLK_TRANSFER_SIZE;
    bool ok = EXPECT(fixture_call(&f, format_task, &j)) && EXPECT(j.st == VFS_OK) &&
              EXPECT(j.check_st == VFS_OK) && EXPECT(j.check.problems == 0) &&
              EXPECT(fc->type == 0 || (uint32_t)j.g.type == fc->type) &&
              EXPECT(fc->spc == 0 || j.g.sectors_per_cluster == fc->spc) &&
              EXPECT(j.g.fat_count == (fc->fats ? fc->fats : 2)) &&
              EXPECT(j.check.free_clusters == j.g.cluster_count - (j.g.type == FAT_TYPE_32 ? 1 : 0));
    const char *img = tmp_path("mkfs.img");
    ok = ok && EXPECT(blk_fixture_save(&f, img) == 0);
    blk_fixture_fini(&f);
    if (!ok)
        return false;
    /* our own parser agrees with what we planned */
    size_t len;
    uint8_t *head = file_read_head(img, 4096, &len);
    fat_geometry g;
    fat_bpb_error why;
    ok = EXPECT(head != NULL) && EXPECT(fat_bpb_parse(head, 4096, 0, len, &g, &why) == VFS_OK) &&
         EXPECT(g.type == j.g.type && g.cluster_count == j.g.cluster_count && g.data_offset == j.g.data_offset &&
                g.fat_offset == j.g.fat_offset && g.fat_bytes == j.g.fat_bytes && g.root_dir_offset == j.g.root_dir_offset);
    free(head);
    if (!ok || !tool_available("fsck.fat"))
        return ok;
    ok = EXPECT(tool_fsck(img) == 0);
    if (ok && tool_available("mdir")) {
        char *out = tool_output("MTOOLS_SKIP_CHECK=1 mdir -i '%s' :: 2>&1", img);
        ok = EXPECT(out != NULL) && EXPECT(strstr(out, "TESTVOL") != NULL);
        if (out && !ok)
            printf("%s\n", out);
        free(out);
        const char *src = tmp_path("payload.bin");
        uint8_t payload[100000];
        for (size_t i = 0; i < sizeof payload; i++)
            payload[i] = (uint8_t)(i * 7);
        ok = ok && EXPECT(file_write_all(src, payload, sizeof payload) == 0) &&
             EXPECT(tool_run(false, "mmd -i '%s' ::/dir && mcopy -i '%s' '%s' '::/dir/A long file name.bin'", img, img,
                             src) == 0) &&
             EXPECT(tool_fsck(img) == 0) &&
             EXPECT(tool_run(false, "mcopy -n -i '%s' '::/dir/A long file name.bin' '%s.back' && cmp '%s' '%s.back'",
                             img, src, src, src) == 0);
    }
    return ok;
}

TEST(format_matrix_fsck_and_mtools)
{
    SKIP_WITHOUT("fsck.fat");
    uint64_t seed = test_seed();
    static const format_case cases[] = {
        {0, 512, 0, 8 * MIB, false, 0},     {12, 512, 0, 2 * MIB, true, 0},    {12, 512, 4, 4 * MIB, false, 0},
        {12, 4096, 1, 8 * MIB, false, 0},   {16, 512, 0, 32 * MIB, true, 0},   {16, 512, 8, 64 * MIB, false, 0},
        {16, 4096, 2, 64 * MIB, false, 0},  {16, 1024, 1, 16 * MIB, false, 0}, {32, 512, 0, 64 * MIB, true, 0},
        {32, 512, 1, 40 * MIB, false, 0},   {32, 4096, 1, 270 * MIB, false, 0}, {0, 512, 0, 3 * MIB / 2, false, 0},
        {16, 512, 0, 32 * MIB, false, 1},   {32, 512, 0, 64 * MIB, false, 1},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(cases); i++)
        CHECK_MSG(format_and_verify(&cases[i], &seed), "case %zu", i);
}

typedef struct raw_check {
    uint8_t boot[512], backup[512], info[512];
    fat_geometry g;
} raw_check;

TEST(fat32_fsinfo_and_backup)
{
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = 40 * MIB;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    format_job j;
    memset(&j, 0, sizeof j);
    j.o = opts(32, 512, 1);
    j.o.label = NULL;
    j.device = blk_client_capacity_blocks(&f.stack.client) * BLK_TRANSFER_SIZE;
    CHECK(fixture_call(&f, format_task, &j));
    CHECK_EQ(j.st, VFS_OK);
    const uint8_t *img = f.image;
    CHECK(memcmp(img, img + 6 * 512, 512) == 0);
    CHECK(memcmp(img + 512, img + 7 * 512, 512) == 0);
    CHECK_EQ(af_load_le32(img + 512 + FAT_FSINFO_LEAD_SIG), FAT_FSINFO_LEAD_VALUE);
    CHECK_EQ(af_load_le32(img + 512 + FAT_FSINFO_STRUCT_SIG), FAT_FSINFO_STRUCT_VALUE);
    CHECK_EQ(af_load_le32(img + 512 + FAT_FSINFO_TRAIL_SIG), FAT_FSINFO_TRAIL_VALUE);
    CHECK_EQ(af_load_le32(img + 512 + FAT_FSINFO_FREE_COUNT), j.g.cluster_count - 1);
    CHECK(memcmp(img + FAT_BS32_VOLUME_LABEL, "NO NAME    ", 11) == 0);
    CHECK(memcmp(img + FAT_BS32_FS_TYPE, "FAT32   ", 8) == 0);
    CHECK_EQ(af_load_le32(img + FAT_BS32_VOLUME_ID), 0x1234ABCD);
    /* FAT heads: media, clean EOC, root EOC; in both copies */
    for (uint32_t copy = 0; copy < 2; copy++) {
        const uint8_t *fat = img + j.g.fat_offset + copy * j.g.fat_bytes;
        CHECK_EQ(af_load_le32(fat), 0x0FFFFFF8);
        CHECK_EQ(af_load_le32(fat + 4), 0x0FFFFFFF);
        CHECK_EQ(af_load_le32(fat + 8), 0x0FFFFFFF);
        CHECK_EQ(af_load_le32(fat + 12), 0);
    }
    /* no label: the root directory is empty */
    CHECK_EQ(img[fat_cluster_offset(&j.g, 2)], 0);
    blk_fixture_fini(&f);
}

/* A device error at any point of formatting is an I/O error status, never a crash or a
 * reported success. */
TEST(format_io_errors)
{
    bool succeeded = false;
    for (uint64_t n = 1; n < 400 && !succeeded; n++) {
        blk_fixture f;
        blk_fixture_options fo = blk_fixture_defaults();
        fo.image_bytes = 40 * MIB;
        fo.cache_buffers = 32;
        CHECK_EQ(blk_fixture_init(&f, &fo), 0);
        ram_device_fail_nth(&f.dev, n);
        format_job j;
        memset(&j, 0, sizeof j);
        j.o = opts(32, 512, 1);
        j.device = blk_client_capacity_blocks(&f.stack.client) * BLK_TRANSFER_SIZE;
        CHECK(fixture_call(&f, format_task, &j));
        CHECK_MSG(j.st == VFS_OK || j.st == VFS_IO_ERROR, "request %llu: status %d",
                  (unsigned long long)n, j.st);
        succeeded = j.st == VFS_OK;
        blk_fixture_fini(&f);
    }
    CHECK(succeeded);
}

/* A volume inside an MBR partition: formatted at an offset, found again by
 * fat_bpb_locate, clean for fsck.fat (on the partition's bytes) and readable by mtools at
 * that offset. */
TEST(format_in_partition)
{
    SKIP_WITHOUT("fsck.fat");
    const uint64_t start = 1 * MIB, size = 16 * MIB;
    blk_fixture f;
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = start + size;
    CHECK_EQ(blk_fixture_init(&f, &fo), 0);
    format_job j;
    memset(&j, 0, sizeof j);
    j.o = opts(16, 512, 0);
    j.o.volume_offset = start;
    j.o.volume_bytes = size;
    j.o.hidden_sectors = (uint32_t)(start / 512);
    j.device = blk_client_capacity_blocks(&f.stack.client) * BLK_TRANSFER_SIZE;
    CHECK(fixture_call(&f, format_task, &j));
    CHECK_EQ(j.st, VFS_OK);
    CHECK_EQ(j.check.problems, 0);
    uint8_t *mbr = f.image;
    uint8_t *e = mbr + MBR_PARTITION_TABLE;
    e[MBR_PART_TYPE] = MBR_TYPE_FAT16_LBA;
    af_store_le32(e + MBR_PART_LBA_START, (uint32_t)(start / 512));
    af_store_le32(e + MBR_PART_SECTOR_COUNT, (uint32_t)(size / 512));
    af_store_le16(mbr + FAT_BS_SIGNATURE, FAT_BS_SIGNATURE_VALUE);
    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(fat_bpb_locate(mbr, 512, f.image_bytes, 512, -1, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, start);
    CHECK_EQ(bytes, size);
    fat_geometry g;
    CHECK_EQ(fat_bpb_parse(f.image + off, 512, off, f.image_bytes, &g, &why), VFS_OK);
    CHECK_EQ(g.data_offset, j.g.data_offset);
    CHECK_EQ(af_load_le32(f.image + off + FAT_BPB_HIDDEN_SECTORS), start / 512);
    const char *disk = tmp_path("disk.img"), *part = tmp_path("part.img");
    CHECK_EQ(blk_fixture_save(&f, disk), 0);
    CHECK_EQ(file_write_all(part, f.image + start, size), 0);
    blk_fixture_fini(&f);
    CHECK_EQ(tool_fsck(part), 0);
    if (tool_available("mdir"))
        CHECK_EQ(tool_run(false, "mdir -i '%s@@1M' ::", disk), 0);
}
