/* fat_bpb: boot sector validation and volume location (fatgen103 section 3 and 4). */
#include "fat/fat_bpb.h"

#include "fat/fat_layout.h"

const char *fat_bpb_error_text(fat_bpb_error e)
{
    switch (e) {
    case FAT_BPB_OK: return "ok";
    case FAT_BPB_SHORT_SECTOR: return "boot sector shorter than 512 bytes";
    case FAT_BPB_NO_SIGNATURE: return "no 0x55AA boot signature";
    case FAT_BPB_BAD_JUMP: return "no jump instruction at the start of the boot sector";
    case FAT_BPB_BAD_SECTOR_SIZE: return "bytes per sector not 512, 1024, 2048 or 4096";
    case FAT_BPB_BAD_CLUSTER_SIZE: return "sectors per cluster not a power of two or cluster over 64 KiB";
    case FAT_BPB_BAD_RESERVED: return "bad reserved sector count";
    case FAT_BPB_BAD_FAT_COUNT: return "number of FATs not 1..4";
    case FAT_BPB_BAD_ROOT_ENTRIES: return "bad root directory entry count";
    case FAT_BPB_BAD_TOTAL_SECTORS: return "total sector count is 0";
    case FAT_BPB_BAD_FAT_SIZE: return "FAT too small for the cluster count";
    case FAT_BPB_BAD_MEDIA: return "bad media byte";
    case FAT_BPB_TOO_SMALL: return "no room for data clusters";
    case FAT_BPB_BEYOND_DEVICE: return "volume larger than the device";
    case FAT_BPB_BAD_FAT32_FIELDS: return "FAT32 fields invalid, or too many clusters for FAT12/16";
    case FAT_BPB_BAD_ROOT_CLUSTER: return "FAT32 root cluster out of range";
    case FAT_BPB_BAD_FSINFO: return "FSInfo sector outside the reserved area";
    case FAT_BPB_NO_PARTITION: return "no FAT boot sector and no FAT partition";
    case FAT_BPB_BAD_PARTITION: return "partition empty or outside the device";
    case FAT_BPB_NO_SUCH_PARTITION: return "no such partition in the partition table";
    case FAT_BPB_BAD_GPT: return "GPT partition table damaged (no header and entry array with matching CRC32s)";
    }
    return "unknown";
}

static vfs_status corrupt(fat_bpb_error *why, fat_bpb_error e)
{
    *why = e;
    return VFS_CORRUPT;
}

static bool media_valid(uint8_t m)
{
    return m == 0xF0 || m >= 0xF8;
}

/* The 16-bit FSInfo / backup fields use 0 and 0xFFFF for "none". */
static uint32_t optional_sector(uint16_t v)
{
    return v == 0xFFFFu ? 0 : v;
}

vfs_status fat_bpb_parse(const uint8_t *b, size_t sector_len, uint64_t volume_offset, uint64_t device_bytes,
                        fat_geometry *geo, fat_bpb_error *why)
{
    if (sector_len < FAT_BS_MIN_SIZE) {
        *why = FAT_BPB_SHORT_SECTOR;
        return VFS_INVALID_ARGUMENT;
    }
    if (af_load_le16(b + FAT_BS_SIGNATURE) != FAT_BS_SIGNATURE_VALUE)
        return corrupt(why, FAT_BPB_NO_SIGNATURE);
    if (b[FAT_BS_JUMP] != 0xEB && b[FAT_BS_JUMP] != 0xE9)
        return corrupt(why, FAT_BPB_BAD_JUMP);

    fat_geometry g;
    af_memset(&g, 0, sizeof g);
    g.bytes_per_sector = af_load_le16(b + FAT_BPB_BYTES_PER_SECTOR);
    if (!af_is_pow2(g.bytes_per_sector) || g.bytes_per_sector < 512 || g.bytes_per_sector > 4096)
        return corrupt(why, FAT_BPB_BAD_SECTOR_SIZE);
    g.sectors_per_cluster = b[FAT_BPB_SECTORS_PER_CLUSTER];
    if (!af_is_pow2(g.sectors_per_cluster) || g.bytes_per_sector * g.sectors_per_cluster > 65536u)
        return corrupt(why, FAT_BPB_BAD_CLUSTER_SIZE);
    g.bytes_per_cluster = g.bytes_per_sector * g.sectors_per_cluster;
    g.reserved_sectors = af_load_le16(b + FAT_BPB_RESERVED_SECTORS);
    if (g.reserved_sectors == 0)
        return corrupt(why, FAT_BPB_BAD_RESERVED);
    g.fat_count = b[FAT_BPB_FAT_COUNT];
    if (g.fat_count < 1 || g.fat_count > 4)
        return corrupt(why, FAT_BPB_BAD_FAT_COUNT);
    g.media = b[FAT_BPB_MEDIA];
    if (!media_valid(g.media))
        return corrupt(why, FAT_BPB_BAD_MEDIA);

    uint32_t total16 = af_load_le16(b + FAT_BPB_TOTAL_SECTORS_16);
    g.total_sectors = total16 != 0 ? total16 : af_load_le32(b + FAT_BPB_TOTAL_SECTORS_32);
    if (g.total_sectors == 0)
        return corrupt(why, FAT_BPB_BAD_TOTAL_SECTORS);
    g.volume_bytes = (uint64_t)g.total_sectors * g.bytes_per_sector;
    if (volume_offset > device_bytes || g.volume_bytes > device_bytes - volume_offset)
        return corrupt(why, FAT_BPB_BEYOND_DEVICE);

    uint32_t fat16_size = af_load_le16(b + FAT_BPB_FAT_SIZE_16);
    bool fat32_layout = fat16_size == 0;
    g.fat_sectors = fat32_layout ? af_load_le32(b + FAT_BPB32_FAT_SIZE) : fat16_size;
    if (g.fat_sectors == 0)
        return corrupt(why, FAT_BPB_BAD_FAT_SIZE);
    g.root_entries = af_load_le16(b + FAT_BPB_ROOT_ENTRIES);
    if ((g.root_entries * 32u) % g.bytes_per_sector != 0)
        return corrupt(why, FAT_BPB_BAD_ROOT_ENTRIES);
    g.root_dir_sectors = g.root_entries * 32u / g.bytes_per_sector;

    uint64_t meta = (uint64_t)g.reserved_sectors + (uint64_t)g.fat_count * g.fat_sectors + g.root_dir_sectors;
    if (meta >= g.total_sectors)
        return corrupt(why, FAT_BPB_TOO_SMALL);
    g.first_data_sector = (uint32_t)meta;
    g.cluster_count = (g.total_sectors - g.first_data_sector) / g.sectors_per_cluster;
    if (g.cluster_count == 0)
        return corrupt(why, FAT_BPB_TOO_SMALL);
    /* The specification types a volume by its cluster count alone. A FAT32 layout (16-bit
     * FAT size 0) with fewer clusters than FAT32's minimum is what `mkfs.fat -F 32` makes
     * for small volumes, and Linux and dosfstools read it as FAT32, so we do too; a
     * FAT12/16 layout with more clusters than FAT16 can address stays an error. */
    if (fat32_layout)
        g.type = FAT_TYPE_32;
    else if (g.cluster_count <= FAT16_MAX_CLUSTERS)
        g.type = g.cluster_count <= FAT12_MAX_CLUSTERS ? FAT_TYPE_12 : FAT_TYPE_16;
    else
        return corrupt(why, FAT_BPB_BAD_FAT32_FIELDS);
    if (g.type == FAT_TYPE_32 && g.cluster_count > FAT32_MAX_CLUSTERS)
        return corrupt(why, FAT_BPB_TOO_SMALL);
    g.max_cluster = g.cluster_count + 1;
    if ((g.type == FAT_TYPE_32) != (g.root_entries == 0))
        return corrupt(why, FAT_BPB_BAD_ROOT_ENTRIES);
    g.fat_bytes = (uint64_t)g.fat_sectors * g.bytes_per_sector;
    if (g.fat_bytes < fat_entry_table_bytes(g.type, (uint64_t)g.cluster_count + FAT_FIRST_CLUSTER))
        return corrupt(why, FAT_BPB_BAD_FAT_SIZE);

    size_t id_at = FAT_BS16_VOLUME_ID, label_at = FAT_BS16_VOLUME_LABEL;
    uint8_t signature = b[FAT_BS16_BOOT_SIGNATURE];
    g.state = b[FAT_BS16_STATE];
    if (g.type == FAT_TYPE_32) {
        if (af_load_le16(b + FAT_BPB32_FS_VERSION) != 0)
            return corrupt(why, FAT_BPB_BAD_FAT32_FIELDS);
        g.ext_flags = af_load_le16(b + FAT_BPB32_EXT_FLAGS);
        if (g.ext_flags & FAT_EXT_FLAGS_NO_MIRROR)
            g.active_fat = g.ext_flags & FAT_EXT_FLAGS_ACTIVE_MASK;
        if (g.active_fat >= g.fat_count)
            return corrupt(why, FAT_BPB_BAD_FAT32_FIELDS);
        g.root_cluster = af_load_le32(b + FAT_BPB32_ROOT_CLUSTER);
        if (g.root_cluster < FAT_FIRST_CLUSTER || g.root_cluster > g.max_cluster)
            return corrupt(why, FAT_BPB_BAD_ROOT_CLUSTER);
        g.fsinfo_sector = optional_sector(af_load_le16(b + FAT_BPB32_FSINFO_SECTOR));
        if (g.fsinfo_sector >= g.reserved_sectors)
            return corrupt(why, FAT_BPB_BAD_FSINFO);
        /* An unusable backup field (outside the reserved area, or on FSInfo) leaves the
         * volume readable, as fsck.fat and Linux read it: no backup is used, and the checker
         * repairs the field. */
        g.backup_boot_sector = optional_sector(af_load_le16(b + FAT_BPB32_BACKUP_BOOT));
        if (g.backup_boot_sector >= g.reserved_sectors || g.backup_boot_sector == g.fsinfo_sector)
            g.backup_boot_sector = 0;
        id_at = FAT_BS32_VOLUME_ID;
        label_at = FAT_BS32_VOLUME_LABEL;
        signature = b[FAT_BS32_BOOT_SIGNATURE];
        g.state = b[FAT_BS32_STATE];
    }
    af_memset(g.label, ' ', sizeof g.label);
    if (signature == FAT_EXTENDED_BOOT_SIGNATURE) {
        g.has_serial = true;
        g.volume_id = af_load_le32(b + id_at);
        af_memcpy(g.label, b + label_at, sizeof g.label);
    } else {
        af_memcpy(g.label, "NO NAME    ", sizeof g.label);
    }

    g.volume_offset = volume_offset;
    g.fat_offset = volume_offset + (uint64_t)g.reserved_sectors * g.bytes_per_sector;
    uint64_t root_sector = (uint64_t)g.reserved_sectors + (uint64_t)g.fat_count * g.fat_sectors;
    if (g.type != FAT_TYPE_32)
        g.root_dir_offset = volume_offset + root_sector * g.bytes_per_sector;
    g.data_offset = volume_offset + (uint64_t)g.first_data_sector * g.bytes_per_sector;
    *geo = g;
    *why = FAT_BPB_OK;
    return VFS_OK;
}

static bool mbr_type_is_fat(uint8_t t)
{
    switch (t) {
    case MBR_TYPE_FAT12: case MBR_TYPE_FAT16_SMALL: case MBR_TYPE_FAT16:
    case MBR_TYPE_FAT32_CHS: case MBR_TYPE_FAT32_LBA: case MBR_TYPE_FAT16_LBA:
        return true;
    default:
        return false;
    }
}

vfs_status fat_bpb_locate(const uint8_t *sector0, size_t sector_len, uint64_t device_bytes,
                         uint32_t device_sector_size, int partition, uint64_t *volume_offset,
                         uint64_t *volume_bytes, fat_bpb_error *why)
{
    if (sector_len < FAT_BS_MIN_SIZE || partition > 3 || !af_is_pow2(device_sector_size)) {
        *why = FAT_BPB_SHORT_SECTOR;
        return VFS_INVALID_ARGUMENT;
    }
    /* A sector that starts with a jump but fails validation is a broken boot sector, not
     * an MBR: its own error is the useful one. */
    fat_bpb_error boot_why = FAT_BPB_NO_PARTITION;
    if (partition < 0) {
        fat_geometry g;
        if (fat_bpb_parse(sector0, sector_len, 0, device_bytes, &g, why) == VFS_OK) {
            *volume_offset = 0;
            *volume_bytes = device_bytes;
            return VFS_OK;
        }
        if (sector0[FAT_BS_JUMP] == 0xEB || sector0[FAT_BS_JUMP] == 0xE9)
            boot_why = *why;
    }
    if (af_load_le16(sector0 + FAT_BS_SIGNATURE) != FAT_BS_SIGNATURE_VALUE)
        return corrupt(why, boot_why);
    for (int i = 0; i < (int)MBR_PARTITION_COUNT; i++) {
        const uint8_t *e = sector0 + MBR_PARTITION_TABLE + i * MBR_PARTITION_ENTRY_SIZE;
        if (e[MBR_PART_STATUS] != 0x00 && e[MBR_PART_STATUS] != 0x80)
            return corrupt(why, boot_why);
        if (partition >= 0 ? i != partition : !mbr_type_is_fat(e[MBR_PART_TYPE]))
            continue;
        uint64_t start = (uint64_t)af_load_le32(e + MBR_PART_LBA_START) * device_sector_size;
        uint64_t size = (uint64_t)af_load_le32(e + MBR_PART_SECTOR_COUNT) * device_sector_size;
        if (e[MBR_PART_TYPE] == 0) {
            *why = FAT_BPB_NO_SUCH_PARTITION;
            return VFS_INVALID_ARGUMENT;
        }
        if (start == 0 || size == 0 || start > device_bytes || size > device_bytes - start)
            return corrupt(why, FAT_BPB_BAD_PARTITION);
        *volume_offset = start;
        *volume_bytes = size;
        *why = FAT_BPB_OK;
        return VFS_OK;
    }
    return corrupt(why, boot_why);
}
