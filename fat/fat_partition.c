/* fat_partition: the volume's place on the device: whole device, MBR, GPT or an offset
 * (see fat_partition.h). */
#include "fat/fat_partition.h"

#include "fat/fat_layout.h"

#define CHUNK 512u

uint32_t fat_crc32(uint32_t crc, const void *data, size_t len)
{
    /* A nibble at a time: a 16-entry table, small enough for any core. */
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
        0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
    };
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return ~crc;
}

static vfs_status fail(fat_bpb_error *why, fat_bpb_error e, vfs_status st)
{
    *why = e;
    return st;
}

static bool guid_equal(const uint8_t *a, const uint8_t *b)
{
    for (int i = 0; i < 16; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static bool guid_unused(const uint8_t *g)
{
    for (int i = 0; i < 16; i++)
        if (g[i] != 0)
            return false;
    return true;
}

typedef struct gpt_table {
    uint64_t entries_offset;   /* bytes */
    uint32_t entry_count;
    uint32_t entry_size;
} gpt_table;

typedef struct device {
    fat_device_read read;
    void *ctx;
    uint64_t bytes;
    uint32_t sector_size;
} device;

static vfs_status read_at(const device *d, uint64_t offset, void *dst, size_t len)
{
    if (offset > d->bytes || len > d->bytes - offset)
        return VFS_CORRUPT;
    return d->read(d->ctx, offset, dst, len);
}

/* The header in LBA `lba` and its entry array, if every check passes: VFS_OK; a table
 * that fails one: VFS_CORRUPT; a failed read: its status. */
static vfs_status gpt_load(const device *d, uint64_t lba, gpt_table *out)
{
    uint8_t h[CHUNK];
    uint64_t at = lba * d->sector_size;
    vfs_status st = read_at(d, at, h, CHUNK);
    if (st != VFS_OK)
        return st;
    static const uint8_t signature[8] = {'E', 'F', 'I', ' ', 'P', 'A', 'R', 'T'};
    for (int i = 0; i < 8; i++)
        if (h[GPT_HEADER_SIGNATURE + i] != signature[i])
            return VFS_CORRUPT;
    uint32_t header_size = af_load_le32(h + GPT_HEADER_SIZE);
    if (header_size < GPT_HEADER_MIN_SIZE || header_size > d->sector_size ||
        af_load_le64(h + GPT_HEADER_MY_LBA) != lba)
        return VFS_CORRUPT;
    /* The CRC covers header_size bytes with its own field zero; bytes past the first
     * chunk (a header larger than 512 bytes) are read a chunk at a time. */
    uint32_t stored = af_load_le32(h + GPT_HEADER_CRC32);
    af_store_le32(h + GPT_HEADER_CRC32, 0);
    uint32_t crc = fat_crc32(0, h, af_min_u32(header_size, CHUNK));
    uint8_t more[CHUNK];
    for (uint32_t done = CHUNK; done < header_size; done += CHUNK) {
        uint32_t n = af_min_u32(header_size - done, CHUNK);
        if ((st = read_at(d, at + done, more, n)) != VFS_OK)
            return st;
        crc = fat_crc32(crc, more, n);
    }
    if (crc != stored)
        return VFS_CORRUPT;
    gpt_table t = {
        .entry_count = af_load_le32(h + GPT_HEADER_ENTRY_COUNT),
        .entry_size = af_load_le32(h + GPT_HEADER_ENTRY_SIZE),
    };
    uint64_t entries_lba = af_load_le64(h + GPT_HEADER_ENTRIES_LBA);
    if (t.entry_count == 0 || t.entry_count > FAT_GPT_MAX_ENTRIES || t.entry_size < GPT_ENTRY_MIN_SIZE ||
        !af_is_pow2(t.entry_size) || t.entry_size > 65536u || entries_lba == 0 ||
        entries_lba > d->bytes / d->sector_size)
        return VFS_CORRUPT;
    t.entries_offset = entries_lba * d->sector_size;
    uint64_t array_bytes = (uint64_t)t.entry_count * t.entry_size;
    if (t.entries_offset > d->bytes || array_bytes > d->bytes - t.entries_offset)
        return VFS_CORRUPT;
    crc = 0;
    for (uint64_t done = 0; done < array_bytes; done += CHUNK) {
        uint32_t n = (uint32_t)af_min_u64(array_bytes - done, CHUNK);
        if ((st = read_at(d, t.entries_offset + done, more, n)) != VFS_OK)
            return st;
        crc = fat_crc32(crc, more, n);
    }
    if (crc != af_load_le32(h + GPT_HEADER_ENTRIES_CRC32))
        return VFS_CORRUPT;
    *out = t;
    return VFS_OK;
}

/* Entry i's type and place; an unused entry or one outside the device is an error (*why). */
static vfs_status gpt_entry(const device *d, const gpt_table *t, uint32_t i, uint8_t type[16], uint64_t *offset,
                            uint64_t *bytes, fat_bpb_error *why)
{
    uint8_t e[GPT_ENTRY_LAST_LBA + 8];
    vfs_status st = read_at(d, t->entries_offset + (uint64_t)i * t->entry_size, e, sizeof e);
    if (st != VFS_OK)
        return st;
    af_memcpy(type, e + GPT_ENTRY_TYPE_GUID, 16);
    if (guid_unused(type))
        return fail(why, FAT_BPB_NO_SUCH_PARTITION, VFS_INVALID_ARGUMENT);
    uint64_t first = af_load_le64(e + GPT_ENTRY_FIRST_LBA), last = af_load_le64(e + GPT_ENTRY_LAST_LBA);
    uint64_t sectors = d->bytes / d->sector_size;
    if (first == 0 || first > last || last >= sectors)
        return fail(why, FAT_BPB_BAD_PARTITION, VFS_CORRUPT);
    *offset = first * d->sector_size;
    *bytes = (last - first + 1) * d->sector_size;
    return VFS_OK;
}

/* Does a valid FAT boot sector start at offset, inside [offset, offset + bytes)? */
static bool holds_fat(const device *d, uint64_t offset, uint64_t bytes)
{
    uint8_t b[CHUNK];
    fat_geometry g;
    fat_bpb_error why;
    return bytes >= CHUNK && read_at(d, offset, b, CHUNK) == VFS_OK &&
           fat_bpb_parse(b, CHUNK, offset, offset + bytes, &g, &why) == VFS_OK;
}

static vfs_status gpt_locate(const device *d, int partition, uint64_t *volume_offset, uint64_t *volume_bytes,
                             fat_bpb_error *why)
{
    gpt_table t;
    vfs_status st = gpt_load(d, 1, &t);
    if (st == VFS_CORRUPT && d->bytes / d->sector_size > 2)
        st = gpt_load(d, d->bytes / d->sector_size - 1, &t);
    if (st == VFS_CORRUPT)
        return fail(why, FAT_BPB_BAD_GPT, VFS_CORRUPT);
    if (st != VFS_OK)
        return st;
    uint8_t type[16];
    if (partition >= 0) {
        if ((uint32_t)partition >= t.entry_count)
            return fail(why, FAT_BPB_NO_SUCH_PARTITION, VFS_INVALID_ARGUMENT);
        st = gpt_entry(d, &t, (uint32_t)partition, type, volume_offset, volume_bytes, why);
        if (st == VFS_OK)
            *why = FAT_BPB_OK;
        return st;
    }
    static const uint8_t esp[16] = GPT_TYPE_EFI_SYSTEM, basic_data[16] = GPT_TYPE_BASIC_DATA;
    for (uint32_t i = 0; i < t.entry_count; i++) {
        uint64_t offset, bytes;
        fat_bpb_error entry_why;
        st = gpt_entry(d, &t, i, type, &offset, &bytes, &entry_why);
        if (st == VFS_IO_ERROR)
            return st;
        if (st != VFS_OK || !(guid_equal(type, esp) || guid_equal(type, basic_data)) || !holds_fat(d, offset, bytes))
            continue;
        *volume_offset = offset;
        *volume_bytes = bytes;
        *why = FAT_BPB_OK;
        return VFS_OK;
    }
    return fail(why, FAT_BPB_NO_PARTITION, VFS_CORRUPT);
}

static bool has_protective_entry(const uint8_t *mbr)
{
    if (af_load_le16(mbr + FAT_BS_SIGNATURE) != FAT_BS_SIGNATURE_VALUE)
        return false;
    for (uint32_t i = 0; i < MBR_PARTITION_COUNT; i++)
        if (mbr[MBR_PARTITION_TABLE + i * MBR_PARTITION_ENTRY_SIZE + MBR_PART_TYPE] == MBR_TYPE_GPT_PROTECTIVE)
            return true;
    return false;
}

vfs_status fat_partition_locate(fat_device_read read, void *ctx, uint64_t device_bytes, uint32_t sector_size,
                                int partition, uint64_t offset, uint64_t *volume_offset, uint64_t *volume_bytes,
                                fat_bpb_error *why)
{
    *why = FAT_BPB_OK;
    if (!af_is_pow2(sector_size) || sector_size < 512 || sector_size > 4096 || partition < FAT_PARTITION_AT_OFFSET)
        return fail(why, FAT_BPB_SHORT_SECTOR, VFS_INVALID_ARGUMENT);
    if (device_bytes < CHUNK)
        return fail(why, FAT_BPB_SHORT_SECTOR, VFS_CORRUPT);
    if (partition == FAT_PARTITION_AT_OFFSET) {
        if (offset % 512u != 0 || offset > device_bytes - CHUNK)
            return fail(why, FAT_BPB_BAD_PARTITION, VFS_INVALID_ARGUMENT);
        *volume_offset = offset;
        *volume_bytes = device_bytes - offset;
        return VFS_OK;
    }
    device d = {read, ctx, device_bytes, sector_size};
    uint8_t sector0[CHUNK];
    vfs_status st = read_at(&d, 0, sector0, CHUNK);
    if (st != VFS_OK)
        return st;
    if (partition == FAT_PARTITION_AUTO) {
        fat_geometry g;
        if (fat_bpb_parse(sector0, CHUNK, 0, device_bytes, &g, why) == VFS_OK) {
            *volume_offset = 0;
            *volume_bytes = device_bytes;
            return VFS_OK;
        }
    }
    if (has_protective_entry(sector0))
        return gpt_locate(&d, partition, volume_offset, volume_bytes, why);
    if (partition >= (int)MBR_PARTITION_COUNT)
        return fail(why, FAT_BPB_NO_SUCH_PARTITION, VFS_INVALID_ARGUMENT);
    return fat_bpb_locate(sector0, CHUNK, device_bytes, sector_size, partition, volume_offset, volume_bytes, why);
}
