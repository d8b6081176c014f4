/* fat_partition: volumes found on GPT disks made by sgdisk (automatic choice, explicit
 * entries, the backup header when the primary is damaged), MBR disks made by sfdisk, and
 * at a byte offset; damaged and hostile tables give errors, every read stays inside the
 * device, and whatever is accepted lies inside it. */
#include "fat/fat_partition.h"
#include "fat/fat_layout.h"
#include "fat/tests/fat_test_tools.h"
#include "tests/harness.h"

#include <stdlib.h>
#include <string.h>

#define SKIP_WITHOUT(tool)                                         \
    do {                                                           \
        if (!tool_available(tool)) {                               \
            printf("SKIP %s: %s not installed\n", __func__, tool); \
            return;                                                \
        }                                                          \
    } while (0)

/* A disk in memory; reads outside it are counted and refused. */
typedef struct memory_disk {
    uint8_t *data;
    size_t len;
    uint32_t reads, outside;
} memory_disk;

static vfs_status read_memory(void *ctx, uint64_t offset, void *dst, size_t len)
{
    memory_disk *d = ctx;
    d->reads++;
    if (offset > d->len || len > d->len - offset) {
        d->outside++;
        return VFS_IO_ERROR;
    }
    memcpy(dst, d->data + offset, len);
    return VFS_OK;
}

static vfs_status locate(memory_disk *d, int partition, uint64_t offset, uint64_t *voff, uint64_t *vbytes,
                         fat_bpb_error *why)
{
    return fat_partition_locate(read_memory, d, d->len, 512, partition, offset, voff, vbytes, why);
}

static bool load(memory_disk *d, const char *path)
{
    d->reads = d->outside = 0;
    d->data = file_read_all(path, &d->len);
    return d->data != NULL;
}

/* gpt.img, 32 MiB: 1 Linux (2 MiB at 1 MiB, FAT12 inside: not chosen automatically),
 * 2 basic data without a file system, 3 EFI system partition with FAT16 (8 MiB at 4 MiB),
 * 4 basic data with FAT32 (from 14 MiB to the end). Made once per run; each test loads
 * its own copy. */
static bool make_gpt_disk(const char *img)
{
    static bool made;
    if (made)
        return true;
    remove(img);
    made = tool_run(true, "truncate -s 32M '%s' && sgdisk -n 1:2048:+2M -t 1:8300 -n 2:0:+1M -t 2:0700 "
                          "-n 3:8192:+8M -t 3:ef00 -n 4:28672:0 -t 4:0700 '%s' >/dev/null 2>&1",
                    img, img) == 0 &&
           tool_run(true, "mkfs.fat -F 12 --offset 2048 '%s' 2048 >/dev/null 2>&1", img) == 0 &&
           tool_run(true, "mkfs.fat -F 16 -s 1 --offset 8192 '%s' 8192 >/dev/null 2>&1", img) == 0 &&
           tool_run(true, "mkfs.fat -F 32 -s 1 --offset 28672 '%s' 18000 >/dev/null 2>&1", img) == 0;
    return made;
}

TEST(gpt_disk_made_by_sgdisk)
{
    SKIP_WITHOUT("sgdisk");
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("gpt.img");
    CHECK(make_gpt_disk(img));
    memory_disk d;
    CHECK(load(&d, img));
    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(locate(&d, FAT_PARTITION_AUTO, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 8192ull * 512);
    CHECK_EQ(bytes, 8ull << 20);
    CHECK_EQ(locate(&d, 0, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 2048ull * 512);
    CHECK_EQ(bytes, 2ull << 20);
    CHECK_EQ(locate(&d, 3, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 28672ull * 512);
    fat_geometry g;
    CHECK_EQ(fat_bpb_parse(d.data + off, 512, off, off + bytes, &g, &why), VFS_OK);
    CHECK_EQ(g.type, FAT_TYPE_32);
    /* unused and missing entries */
    CHECK_EQ(locate(&d, 4, 0, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_NO_SUCH_PARTITION);
    CHECK_EQ(locate(&d, 5000, 0, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_NO_SUCH_PARTITION);
    CHECK_EQ(d.outside, 0);
    free(d.data);
}

/* The primary header or array damaged: the backup in the last LBA serves; both: BAD_GPT. */
TEST(gpt_backup_header_and_damage)
{
    SKIP_WITHOUT("sgdisk");
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("gpt.img");
    CHECK(make_gpt_disk(img));
    memory_disk d;
    CHECK(load(&d, img));
    uint64_t off, bytes;
    fat_bpb_error why;
    uint64_t last = d.len - 512;
    uint64_t backup_array = af_load_le64(d.data + last + GPT_HEADER_ENTRIES_LBA) * 512;
    d.data[512 + GPT_HEADER_MY_LBA + 7] ^= 0x40; /* header CRC no longer matches */
    CHECK_EQ(locate(&d, FAT_PARTITION_AUTO, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 8192ull * 512);
    d.data[512 + GPT_HEADER_MY_LBA + 7] ^= 0x40;
    d.data[1024 + 32] ^= 1; /* entry 0's first LBA: the array CRC fails */
    CHECK_EQ(locate(&d, 0, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 2048ull * 512);
    d.data[backup_array + 32] ^= 1; /* and the backup's */
    CHECK_EQ(locate(&d, FAT_PARTITION_AUTO, 0, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_BAD_GPT);
    CHECK_EQ(d.outside, 0);
    free(d.data);
}

/* Rewrite the primary header's field (le32 or le64) and its CRC, as a hostile disk would. */
static void set_header_field(uint8_t *h, size_t at, uint64_t value, bool wide)
{
    if (wide)
        af_store_le64(h + at, value);
    else
        af_store_le32(h + at, (uint32_t)value);
    af_store_le32(h + GPT_HEADER_CRC32, 0);
    uint32_t size = af_load_le32(h + GPT_HEADER_SIZE);
    af_store_le32(h + GPT_HEADER_CRC32, fat_crc32(0, h, size < 512 ? size : 512));
}

/* Tables with consistent CRCs but values pointing anywhere: errors, never a read outside
 * the device, and an accepted volume lies inside it. */
TEST(gpt_hostile_tables)
{
    SKIP_WITHOUT("sgdisk");
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("gpt.img");
    CHECK(make_gpt_disk(img));
    memory_disk d;
    CHECK(load(&d, img));
    uint8_t *copy = malloc(d.len);
    CHECK(copy != NULL);
    memcpy(copy, d.data, d.len);
    /* the backup is damaged for all of these, so only the primary is in play */
    uint8_t *backup = d.data + d.len - 512;
    static const struct {
        size_t at;
        bool wide;
    } fields[] = {
        {GPT_HEADER_SIZE, false},        {GPT_HEADER_MY_LBA, true},     {GPT_HEADER_ENTRIES_LBA, true},
        {GPT_HEADER_ENTRY_COUNT, false}, {GPT_HEADER_ENTRY_SIZE, false},
    };
    static const uint64_t values[] = {0, 1, 2, 91, 92, 127, 128, 129, 512, 513, 4096, 65536, 131071, 1u << 20,
                                      0xFFFFFFFFull, 0x7FFFFFFFFFFFFFFFull, ~0ull};
    uint64_t seed = test_seed();
    for (size_t f = 0; f < AF_ARRAY_LEN(fields); f++) {
        for (size_t v = 0; v < AF_ARRAY_LEN(values) + 8; v++) {
            memcpy(d.data, copy, 34 * 512);
            backup[0] = (uint8_t)~copy[d.len - 512];
            uint64_t value = v < AF_ARRAY_LEN(values) ? values[v] : test_rand(&seed);
            set_header_field(d.data + 512, fields[f].at, value, fields[f].wide);
            /* entries re-checksummed too, so only the field is wrong */
            uint64_t off, bytes;
            fat_bpb_error why;
            d.outside = 0;
            vfs_status st = locate(&d, (int)test_rand_below(&seed, 6) - 1, 0, &off, &bytes, &why);
            CHECK_MSG(d.outside == 0, "field %zu value %llu", f, (unsigned long long)value);
            if (st == VFS_OK)
                CHECK(off < d.len && bytes <= d.len - off && bytes > 0);
            else
                CHECK(why != FAT_BPB_OK);
        }
    }
    /* entries pointing past the device, with a right array CRC */
    memcpy(d.data, copy, d.len);
    uint8_t *e3 = d.data + 1024 + 3 * 128;
    af_store_le64(e3 + GPT_ENTRY_LAST_LBA, d.len / 512);
    uint32_t count = af_load_le32(d.data + 512 + GPT_HEADER_ENTRY_COUNT);
    set_header_field(d.data + 512, GPT_HEADER_ENTRIES_CRC32, fat_crc32(0, d.data + 1024, count * 128u), false);
    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(locate(&d, 3, 0, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_BAD_PARTITION);
    /* random bytes anywhere in the first 34 sectors and the last 33 */
    for (int i = 0; i < 2000; i++) {
        memcpy(d.data, copy, 34 * 512);
        memcpy(d.data + d.len - 33 * 512, copy + d.len - 33 * 512, 33 * 512);
        for (int k = 0; k < 4; k++) {
            size_t at = test_rand_below(&seed, 67 * 512);
            at = at < 34 * 512 ? at : d.len - 67 * 512 + at;
            d.data[at] = (uint8_t)test_rand(&seed);
        }
        d.outside = 0;
        vfs_status st = locate(&d, (int)test_rand_below(&seed, 6) - 1, 0, &off, &bytes, &why);
        CHECK(d.outside == 0);
        if (st == VFS_OK)
            CHECK(off < d.len && bytes <= d.len - off && bytes > 0);
    }
    free(copy);
    free(d.data);
}

TEST(mbr_disk_made_by_sfdisk)
{
    SKIP_WITHOUT("sfdisk");
    SKIP_WITHOUT("mkfs.fat");
    const char *img = tmp_path("mbr.img");
    remove(img);
    CHECK_EQ(tool_run(true, "truncate -s 32M '%s' && printf 'start=2048, size=8192, type=83\\nstart=10240, "
                            "size=20480, type=c\\n' | sfdisk -q '%s' >/dev/null && mkfs.fat -F 16 --offset 10240 '%s' "
                            "10240 >/dev/null",
                      img, img, img),
             0);
    memory_disk d;
    CHECK(load(&d, img));
    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(locate(&d, FAT_PARTITION_AUTO, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 10240ull * 512);
    CHECK_EQ(bytes, 20480ull * 512);
    CHECK_EQ(locate(&d, 0, 0, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 2048ull * 512);
    CHECK_EQ(locate(&d, 2, 0, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_NO_SUCH_PARTITION);
    CHECK_EQ(locate(&d, 4, 0, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_NO_SUCH_PARTITION);
    free(d.data);
}

TEST(volume_at_an_offset)
{
    uint8_t disk[8192] = {0};
    memory_disk d = {disk, sizeof disk, 0, 0};
    uint64_t off, bytes;
    fat_bpb_error why;
    CHECK_EQ(locate(&d, FAT_PARTITION_AT_OFFSET, 1024, &off, &bytes, &why), VFS_OK);
    CHECK_EQ(off, 1024);
    CHECK_EQ(bytes, sizeof disk - 1024);
    CHECK_EQ(d.reads, 0);
    CHECK_EQ(locate(&d, FAT_PARTITION_AT_OFFSET, 1000, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(locate(&d, FAT_PARTITION_AT_OFFSET, sizeof disk, &off, &bytes, &why), VFS_INVALID_ARGUMENT);
    CHECK_EQ(why, FAT_BPB_BAD_PARTITION);
    /* no boot sector, no table */
    CHECK_EQ(locate(&d, FAT_PARTITION_AUTO, 0, &off, &bytes, &why), VFS_CORRUPT);
    CHECK_EQ(why, FAT_BPB_NO_PARTITION);
}

/* Known answers of the CRC-32 GPT uses. */
TEST(crc32_known_answers)
{
    CHECK_EQ(fat_crc32(0, "", 0), 0u);
    CHECK_EQ(fat_crc32(0, "123456789", 9), 0xCBF43926u);
    CHECK_EQ(fat_crc32(fat_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    CHECK_EQ(fat_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
}
