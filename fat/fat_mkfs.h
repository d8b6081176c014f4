/* fat_mkfs: create an empty FAT12/16/32 volume.
 *
 * Contract: fat_mkfs_plan and fat_mkfs_boot_sector are pure; fat_mkfs_format blocks (it
 * must run in a task of the cache's fiber pool), writes only through the block cache and
 * ends with blk_cache_flush. The result passes `fsck.fat -n` and reads with mtools.
 * Defaults follow mkfs.fat: FAT32 from 512 MiB, else FAT12 below 4085 clusters and FAT16
 * above; two FATs; 1 reserved sector (FAT12/16) or 32 (FAT32), plus what aligns the data
 * region to the cluster size; 512 root entries (224 for floppy sizes up to 2880 KiB);
 * media 0xF8; FAT32 root directory in cluster 2, FSInfo in sector 1, backup boot sector
 * in sector 6.
 */
#ifndef ASYNCFAT_FAT_MKFS_H
#define ASYNCFAT_FAT_MKFS_H

#include "base/base.h"
#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "vfs/vfs.h"

typedef struct fat_mkfs_options {
    uint64_t volume_offset;       /* byte offset of the volume on the device (4096-aligned) */
    uint64_t volume_bytes;        /* 0: from volume_offset to the end of the device */
    uint32_t fat_type;            /* 0 = automatic, or 12, 16, 32 */
    uint32_t bytes_per_sector;    /* 0 = 512; else 512, 1024, 2048 or 4096 */
    uint32_t sectors_per_cluster; /* 0 = automatic; else a power of two, cluster <= 64 KiB */
    uint32_t root_entries;        /* FAT12/16; 0 = automatic */
    uint32_t fat_count;           /* 0 = 2; else 1 or 2 */
    uint32_t reserved_sectors;    /* 0 = automatic; else at least this many */
    uint32_t hidden_sectors;      /* BPB field: sectors before the volume (partition start) */
    uint8_t media;                /* 0 = 0xF8 */
    bool no_align;                /* do not align the data region to the cluster size */
    uint32_t volume_id;           /* serial number, chosen by the caller */
    const char *label;            /* NULL: no label ("NO NAME"); else up to 11 bytes of
                                     valid short-name characters, stored upper case */
} fat_mkfs_options;

/* Computes the layout for a device of `device_bytes` bytes. VFS_INVALID_ARGUMENT for
 * a bad option, VFS_NO_SPACE when the size cannot hold the volume or the forced FAT
 * type with the given cluster size. */
vfs_status fat_mkfs_plan(const fat_mkfs_options *opt, uint64_t device_bytes, fat_geometry *geo);

/* The 512 meaningful bytes of the boot sector for a planned geometry (the caller pads the
 * sector with zeros up to bytes_per_sector; the signature is at 510 in any case). */
void fat_mkfs_boot_sector(const fat_mkfs_options *opt, const fat_geometry *geo, uint8_t sector[512]);

/* Blocks: plans, then writes boot sector(s), FSInfo, FATs, root directory and label entry
 * through `cache`, and flushes. `device_bytes` is the device capacity. On success *geo (if
 * not NULL) holds the layout written. VFS_IO_ERROR if the device fails. */
vfs_status fat_mkfs_format(blk_cache *cache, uint64_t device_bytes, const fat_mkfs_options *opt,
                          fat_geometry *geo);

#endif
