/* fat_partition: where a FAT volume lies on a device: the whole device, an entry of its
 * MBR or GPT partition table, or a byte offset the user gives.
 *
 * Contract: reads the device only through the caller's `read` (which may block: the engine
 * passes blk_cache_read_bytes, the tools a pread); no allocation; only bytes inside the
 * device are asked for, whatever the tables say. A damaged or hostile table gives an
 * error, never a loop or an out-of-range read.
 *
 * GPT (UEFI specification, "GUID Partition Table Disk Layout"): a protective MBR (an entry
 * of type 0xEE) announces it; the header at LBA 1 is used when its signature, size, own
 * LBA and CRC32, and its entry array's CRC32, are right, else the backup header in the
 * device's last LBA under the same checks; neither: FAT_BPB_BAD_GPT. Entries are counted
 * from 0 in array order (Linux's partition N is entry N - 1). LBAs are in units of the
 * device's sector size.
 */
#ifndef ASYNCFAT_FAT_PARTITION_H
#define ASYNCFAT_FAT_PARTITION_H

#include "fat/fat_bpb.h"

#define FAT_PARTITION_AUTO (-1)
#define FAT_PARTITION_AT_OFFSET (-2)
#define FAT_GPT_MAX_ENTRIES 1024u   /* more than this in a table: not a table we read */

/* Read len bytes at byte `offset` of the device into dst. */
typedef vfs_status (*fat_device_read)(void *ctx, uint64_t offset, void *dst, size_t len);

/* Where the volume is.
 *   FAT_PARTITION_AUTO: a valid FAT boot sector at byte 0 means the whole device; else, on a
 *     GPT disk, the first EFI system or basic data partition holding a FAT boot sector; on
 *     an MBR disk, the first entry with a FAT type id (fat_bpb_locate).
 *   FAT_PARTITION_AT_OFFSET: the volume starts at byte `offset` (a multiple of 512) and may
 *     reach the end of the device; no table is read.
 *   0, 1, ...: that entry of the GPT, or of the MBR (0..3), whatever its type.
 * On success *volume_offset and *volume_bytes say where; the caller then reads the boot
 * sector there and calls fat_bpb_parse with the device size cut to the volume's end.
 * Errors: VFS_CORRUPT with *why (FAT_BPB_NO_PARTITION: nothing FAT found automatically;
 * FAT_BPB_BAD_PARTITION: the entry lies outside the device; FAT_BPB_BAD_GPT), or
 * VFS_INVALID_ARGUMENT (FAT_BPB_NO_SUCH_PARTITION: no such entry, or an unused one; an
 * offset outside the device or not a multiple of 512: FAT_BPB_BAD_PARTITION), or the
 * read's own failure. */
vfs_status fat_partition_locate(fat_device_read read, void *ctx, uint64_t device_bytes, uint32_t sector_size,
                                int partition, uint64_t offset, uint64_t *volume_offset, uint64_t *volume_bytes,
                                fat_bpb_error *why);

/* CRC-32 as GPT and Ethernet use it (reflected polynomial 0xEDB88320), continued from crc
 * (0 to start). */
uint32_t fat_crc32(uint32_t crc, const void *data, size_t len);

#endif
