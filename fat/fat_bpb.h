/* fat_bpb: find a FAT volume on a device and validate its boot sector into a geometry.
 *
 * Contract: pure functions over sector bytes the caller has read; no I/O, no allocation.
 * Every BPB field is checked against the others and against the device size, so a
 * geometry returned with VFS_OK describes regions that lie inside the device
 * and a cluster count that is consistent with the FAT size. Failures return
 * VFS_CORRUPT (or VFS_INVALID_ARGUMENT for a bad call) and set *why, whose
 * text (fat_bpb_error_text) is meant for logs.
 */
#ifndef ASYNCFAT_FAT_BPB_H
#define ASYNCFAT_FAT_BPB_H

#include "base/base.h"
#include "fat/fat_entry.h"
#include "vfs/vfs.h"

typedef enum fat_bpb_error {
    FAT_BPB_OK = 0,
    FAT_BPB_SHORT_SECTOR,       /* fewer than 512 bytes given */
    FAT_BPB_NO_SIGNATURE,       /* no 0x55 0xAA at offset 510 */
    FAT_BPB_BAD_JUMP,           /* first byte not a jump (0xEB or 0xE9) */
    FAT_BPB_BAD_SECTOR_SIZE,    /* bytes per sector not 512..4096 power of two */
    FAT_BPB_BAD_CLUSTER_SIZE,   /* sectors per cluster not a power of two, or cluster > 64 KiB */
    FAT_BPB_BAD_RESERVED,       /* reserved sectors 0 (or FAT32 reserved area too small) */
    FAT_BPB_BAD_FAT_COUNT,      /* number of FATs not 1..4 */
    FAT_BPB_BAD_ROOT_ENTRIES,   /* FAT12/16 root size 0 or not whole sectors; nonzero on FAT32 */
    FAT_BPB_BAD_TOTAL_SECTORS,  /* both total fields 0 (the 16-bit one wins when both are set) */
    FAT_BPB_BAD_FAT_SIZE,       /* FAT size 0, or too small for the cluster count */
    FAT_BPB_BAD_MEDIA,          /* media byte not 0xF0 or 0xF8..0xFF */
    FAT_BPB_TOO_SMALL,          /* metadata leaves no data clusters */
    FAT_BPB_BEYOND_DEVICE,      /* the volume claims more sectors than the device has */
    FAT_BPB_BAD_FAT32_FIELDS,   /* FAT32 version != 0, active FAT out of range, or a FAT12/16
                                   layout with more clusters than FAT16 can address */
    FAT_BPB_BAD_ROOT_CLUSTER,   /* FAT32 root cluster outside 2..max */
    FAT_BPB_BAD_FSINFO,         /* FSInfo sector number outside the reserved area */
    FAT_BPB_NO_PARTITION,       /* no FAT volume at sector 0 and no FAT partition in the MBR */
    FAT_BPB_BAD_PARTITION,      /* the chosen partition lies outside the device or is empty */
    FAT_BPB_NO_SUCH_PARTITION,  /* the table has no such entry, or it is unused */
    FAT_BPB_BAD_GPT,            /* a protective MBR, but no GPT header and array pass their checks */
} fat_bpb_error;

const char *fat_bpb_error_text(fat_bpb_error e);

/* A validated volume layout. Sector numbers are relative to the volume start; the *_offset
 * fields are absolute byte offsets on the device. Valid clusters are 2..max_cluster. */
typedef struct fat_geometry {
    fat_type type;
    uint32_t bytes_per_sector;    /* 512..4096 */
    uint32_t sectors_per_cluster;
    uint32_t bytes_per_cluster;   /* <= 65536 */
    uint32_t reserved_sectors;
    uint32_t fat_count;
    uint32_t fat_sectors;         /* per FAT */
    uint32_t root_entries;        /* FAT12/16 fixed root; 0 on FAT32 */
    uint32_t root_dir_sectors;    /* FAT12/16; 0 on FAT32 */
    uint32_t total_sectors;
    uint32_t first_data_sector;
    uint32_t cluster_count;       /* data clusters */
    uint32_t max_cluster;         /* cluster_count + 1 */
    uint32_t root_cluster;        /* FAT32; 0 on FAT12/16 */
    uint32_t fsinfo_sector;       /* FAT32; 0 if the volume has none */
    uint32_t backup_boot_sector;  /* FAT32; 0 if the volume has none or its field is unusable
                                     (outside the reserved area, or the FSInfo sector) */
    uint16_t ext_flags;           /* FAT32 FAT_EXT_FLAGS_*; 0 on FAT12/16 */
    uint32_t active_fat;          /* the FAT to read: 0 unless FAT32 mirroring is off */
    uint8_t media;
    uint8_t state;                /* boot sector state byte (FAT_STATE_DIRTY) */
    bool has_serial;              /* extended boot signature 0x29 present */
    uint32_t volume_id;
    uint8_t label[11];            /* boot sector label, space padded ("NO NAME    " if none) */
    uint64_t volume_offset;       /* byte offset of the boot sector on the device */
    uint64_t volume_bytes;        /* total_sectors * bytes_per_sector */
    uint64_t fat_offset;          /* byte offset of FAT 0 */
    uint64_t fat_bytes;           /* bytes per FAT copy */
    uint64_t root_dir_offset;     /* FAT12/16 fixed root directory; 0 on FAT32 */
    uint64_t data_offset;         /* byte offset of cluster 2 */
} fat_geometry;

/* Validates the boot sector `sector` (the first >= 512 bytes of the volume) of a volume
 * starting at byte `volume_offset` of a device of `device_bytes` bytes. */
vfs_status fat_bpb_parse(const uint8_t *sector, size_t sector_len, uint64_t volume_offset,
                        uint64_t device_bytes, fat_geometry *geo, fat_bpb_error *why);

/* Where the volume is. partition < 0: automatic, a valid FAT boot sector at sector 0 means
 * the whole device, otherwise the first MBR entry with a FAT type id (0x01 0x04 0x06 0x0B
 * 0x0C 0x0E); if sector 0 starts with a jump but is neither a valid boot sector nor an
 * MBR, *why is the boot sector's own error. partition 0..3: that MBR entry, whatever its
 * type id (an unused one: VFS_INVALID_ARGUMENT, FAT_BPB_NO_SUCH_PARTITION). `sector0` is
 * the device's first 512 bytes; MBR LBAs are in units of device_sector_size bytes. The
 * caller then reads the boot sector at *volume_offset and calls fat_bpb_parse. GPT disks
 * and volumes at an offset: fat_partition.h, which uses this for MBRs. */
vfs_status fat_bpb_locate(const uint8_t *sector0, size_t sector_len, uint64_t device_bytes,
                         uint32_t device_sector_size, int partition, uint64_t *volume_offset,
                         uint64_t *volume_bytes, fat_bpb_error *why);

/* Byte offset of cluster c (2 <= c <= max_cluster) on the device. */
static inline uint64_t fat_cluster_offset(const fat_geometry *g, uint32_t c)
{
    return g->data_offset + (uint64_t)(c - 2u) * g->bytes_per_cluster;
}

/* Byte offset of FAT entry `c` in FAT copy `copy` (its bytes: fat_entry.h). */
static inline uint64_t fat_entry_offset(const fat_geometry *g, uint32_t copy, uint32_t c)
{
    return g->fat_offset + (uint64_t)copy * g->fat_bytes + fat_entry_byte(g->type, c);
}

#endif
