/* fat_layout: the FAT on-disk format as byte offsets and constants (Microsoft FAT32 File
 * System Specification, fatgen103, and the MBR partition table).
 *
 * Contract: constants only. Fields are read and written with af_load_le16/32 and
 * af_store_le16/32 (base/base.h) at these offsets; there are no packed structs, so the
 * code works at any alignment and on any byte order. Offsets are from the start of the
 * structure they belong to (boot sector, FSInfo sector, directory entry, MBR).
 */
#ifndef ASYNCFAT_FAT_LAYOUT_H
#define ASYNCFAT_FAT_LAYOUT_H

/* ---- boot sector: common BPB (all FAT types) ------------------------------------------- */
#define FAT_BS_JUMP 0             /* 3 bytes: EB xx 90 or E9 xx xx */
#define FAT_BS_OEM_NAME 3         /* 8 bytes */
#define FAT_BPB_BYTES_PER_SECTOR 11 /* le16: 512, 1024, 2048 or 4096 */
#define FAT_BPB_SECTORS_PER_CLUSTER 13 /* u8: power of two 1..128 */
#define FAT_BPB_RESERVED_SECTORS 14 /* le16: sectors before FAT 0, >= 1 */
#define FAT_BPB_FAT_COUNT 16      /* u8: number of FAT copies, usually 2 */
#define FAT_BPB_ROOT_ENTRIES 17   /* le16: FAT12/16 fixed root directory entries; 0 on FAT32 */
#define FAT_BPB_TOTAL_SECTORS_16 19 /* le16: total sectors if < 65536, else 0 */
#define FAT_BPB_MEDIA 21          /* u8: 0xF0 or 0xF8..0xFF; copied into FAT entry 0 */
#define FAT_BPB_FAT_SIZE_16 22    /* le16: sectors per FAT (FAT12/16); 0 on FAT32 */
#define FAT_BPB_SECTORS_PER_TRACK 24 /* le16: CHS geometry, informational */
#define FAT_BPB_HEADS 26          /* le16: CHS geometry, informational */
#define FAT_BPB_HIDDEN_SECTORS 28 /* le32: sectors before the volume (partition start) */
#define FAT_BPB_TOTAL_SECTORS_32 32 /* le32: total sectors if the 16-bit field is 0 */

/* ---- boot sector: FAT12/16 extended BPB ------------------------------------------------- */
#define FAT_BS16_DRIVE_NUMBER 36  /* u8: 0x80 for hard disks */
#define FAT_BS16_STATE 37         /* u8: reserved by Microsoft; Linux/dosfstools: bit 0 = dirty */
#define FAT_BS16_BOOT_SIGNATURE 38 /* u8: 0x29 when the next three fields are present */
#define FAT_BS16_VOLUME_ID 39     /* le32: serial number */
#define FAT_BS16_VOLUME_LABEL 43  /* 11 bytes, space padded */
#define FAT_BS16_FS_TYPE 54       /* 8 bytes: "FAT12   ", "FAT16   " (informational only) */
#define FAT_BS16_BOOT_CODE 62

/* ---- boot sector: FAT32 extended BPB ----------------------------------------------------- */
#define FAT_BPB32_FAT_SIZE 36     /* le32: sectors per FAT */
#define FAT_BPB32_EXT_FLAGS 40    /* le16: bit 7 = mirroring disabled, bits 0-3 = active FAT */
#define FAT_BPB32_FS_VERSION 42   /* le16: must be 0 */
#define FAT_BPB32_ROOT_CLUSTER 44 /* le32: first cluster of the root directory */
#define FAT_BPB32_FSINFO_SECTOR 48 /* le16: sector number of FSInfo in the reserved area */
#define FAT_BPB32_BACKUP_BOOT 50  /* le16: sector number of the backup boot sector (6) */
#define FAT_BS32_DRIVE_NUMBER 64
#define FAT_BS32_STATE 65         /* u8: as FAT_BS16_STATE */
#define FAT_BS32_BOOT_SIGNATURE 66
#define FAT_BS32_VOLUME_ID 67
#define FAT_BS32_VOLUME_LABEL 71
#define FAT_BS32_FS_TYPE 82       /* "FAT32   " */
#define FAT_BS32_BOOT_CODE 90

#define FAT_EXT_FLAGS_NO_MIRROR 0x0080u
#define FAT_EXT_FLAGS_ACTIVE_MASK 0x000Fu
#define FAT_STATE_DIRTY 0x01u     /* in FAT_BS16_STATE / FAT_BS32_STATE */
#define FAT_EXTENDED_BOOT_SIGNATURE 0x29u

#define FAT_BS_SIGNATURE 510      /* le16: 0xAA55 (bytes 0x55 0xAA), in every sector size */
#define FAT_BS_SIGNATURE_VALUE 0xAA55u
#define FAT_BS_MIN_SIZE 512       /* the BPB lives in the first 512 bytes */

/* ---- FAT32 FSInfo sector ------------------------------------------------------------------ */
#define FAT_FSINFO_LEAD_SIG 0     /* le32 */
#define FAT_FSINFO_STRUCT_SIG 484 /* le32 */
#define FAT_FSINFO_FREE_COUNT 488 /* le32: free clusters, 0xFFFFFFFF = unknown */
#define FAT_FSINFO_NEXT_FREE 492  /* le32: hint where to look for a free cluster, 0xFFFFFFFF = none */
#define FAT_FSINFO_TRAIL_SIG 508  /* le32 */
#define FAT_FSINFO_LEAD_VALUE 0x41615252u
#define FAT_FSINFO_STRUCT_VALUE 0x61417272u
#define FAT_FSINFO_TRAIL_VALUE 0xAA550000u
#define FAT_FSINFO_UNKNOWN 0xFFFFFFFFu

/* ---- FAT type and FAT entries ---------------------------------------------------------- */
#define FAT12_MAX_CLUSTERS 4084u  /* cluster count < 4085 is FAT12 */
#define FAT16_MAX_CLUSTERS 65524u /* cluster count < 65525 is FAT16, else FAT32 */
#define FAT32_MAX_CLUSTERS 0x0FFFFFF5u /* cluster numbers must stay below the bad marker */
#define FAT_FIRST_CLUSTER 2u      /* the first data cluster; entries 0 and 1 are reserved */

#define FAT_ENTRY_FREE 0u
#define FAT12_BAD 0xFF7u
#define FAT12_EOC_MIN 0xFF8u      /* any value >= this ends a chain */
#define FAT12_EOC 0xFFFu
#define FAT16_BAD 0xFFF7u
#define FAT16_EOC_MIN 0xFFF8u
#define FAT16_EOC 0xFFFFu
#define FAT32_MASK 0x0FFFFFFFu    /* FAT32 entries are 28 bits; the top 4 are preserved */
#define FAT32_BAD 0x0FFFFFF7u
#define FAT32_EOC_MIN 0x0FFFFFF8u
#define FAT32_EOC 0x0FFFFFFFu
/* Entry 1: on FAT16/32 the top bits say "clean shutdown" (1 = clean) and "no hard error". */
#define FAT16_CLEAN_SHUTDOWN 0x8000u
#define FAT16_NO_HARD_ERROR 0x4000u
#define FAT32_CLEAN_SHUTDOWN 0x08000000u
#define FAT32_NO_HARD_ERROR 0x04000000u

/* ---- directory entries ---------------------------------------------------------------------- */
#define FAT_DIRENT_SIZE 32
#define FAT_DIRENT_NAME 0         /* 11 bytes: 8 base + 3 extension, space padded */
#define FAT_DIRENT_ATTR 11        /* u8 */
#define FAT_DIRENT_NT_CASE 12     /* u8: FAT_CASE_* bits (Windows NT, Linux) */
#define FAT_DIRENT_CREATE_10MS 13 /* u8: 0..199, 10 ms units added to the create time */
#define FAT_DIRENT_CREATE_TIME 14 /* le16 */
#define FAT_DIRENT_CREATE_DATE 16 /* le16 */
#define FAT_DIRENT_ACCESS_DATE 18 /* le16 */
#define FAT_DIRENT_CLUSTER_HI 20  /* le16: high 16 bits of the first cluster (FAT32 only) */
#define FAT_DIRENT_WRITE_TIME 22  /* le16 */
#define FAT_DIRENT_WRITE_DATE 24  /* le16 */
#define FAT_DIRENT_CLUSTER_LO 26  /* le16 */
#define FAT_DIRENT_SIZE_BYTES 28  /* le32: file size; 0 for directories */

#define FAT_ATTR_READ_ONLY 0x01u
#define FAT_ATTR_HIDDEN 0x02u
#define FAT_ATTR_SYSTEM 0x04u
#define FAT_ATTR_VOLUME_ID 0x08u
#define FAT_ATTR_DIRECTORY 0x10u
#define FAT_ATTR_ARCHIVE 0x20u
#define FAT_ATTR_LONG_NAME 0x0Fu  /* READ_ONLY|HIDDEN|SYSTEM|VOLUME_ID: an LFN entry */
#define FAT_ATTR_LONG_NAME_MASK 0x3Fu

#define FAT_DIRENT_END 0x00u      /* name[0]: this and all later entries are free */
#define FAT_DIRENT_DELETED 0xE5u  /* name[0]: a free entry */
#define FAT_DIRENT_KANJI_E5 0x05u /* name[0]: stands for a real 0xE5 first byte */

#define FAT_CASE_LOWER_BASE 0x08u /* the 8-character base is shown in lower case */
#define FAT_CASE_LOWER_EXT 0x10u  /* the 3-character extension is shown in lower case */
#define FAT_CASE_NO_SHORT_NAME 0x20u /* Linux: the 8.3 name is a placeholder, valid only with an LFN */

/* Long-name (LFN) entries: 13 UTF-16 units each, before their short entry, last part first. */
#define FAT_LFN_ORDINAL 0         /* u8: sequence number 1..20, | 0x40 on the last (first stored) */
#define FAT_LFN_NAME1 1           /* 5 units */
#define FAT_LFN_ATTR 11           /* u8: FAT_ATTR_LONG_NAME */
#define FAT_LFN_TYPE 12           /* u8: 0 */
#define FAT_LFN_CHECKSUM 13       /* u8: checksum of the short name */
#define FAT_LFN_NAME2 14          /* 6 units */
#define FAT_LFN_CLUSTER 26        /* le16: 0 */
#define FAT_LFN_NAME3 28          /* 2 units */
#define FAT_LFN_LAST 0x40u
#define FAT_LFN_ORDINAL_MASK 0x1Fu
#define FAT_LFN_UNITS 13
#define FAT_LFN_MAX_ENTRIES 20    /* 255 units need 20 entries */

#define FAT_DIR_MAX_ENTRIES 65536u /* a directory may hold at most this many entries */

/* ---- MBR partition table ---------------------------------------------------------------------- */
#define MBR_PARTITION_TABLE 446   /* four 16-byte entries */
#define MBR_PARTITION_ENTRY_SIZE 16
#define MBR_PARTITION_COUNT 4
#define MBR_PART_STATUS 0         /* u8: 0x80 bootable, 0x00 not */
#define MBR_PART_TYPE 4           /* u8 */
#define MBR_PART_LBA_START 8      /* le32: in device sectors */
#define MBR_PART_SECTOR_COUNT 12  /* le32 */

#define MBR_TYPE_FAT12 0x01u
#define MBR_TYPE_FAT16_SMALL 0x04u /* FAT16 < 32 MiB */
#define MBR_TYPE_FAT16 0x06u
#define MBR_TYPE_FAT32_CHS 0x0Bu
#define MBR_TYPE_FAT32_LBA 0x0Cu
#define MBR_TYPE_FAT16_LBA 0x0Eu
#define MBR_TYPE_GPT_PROTECTIVE 0xEEu

/* ---- GPT (UEFI specification, GUID Partition Table Disk Layout) ------------------------------ */
#define GPT_HEADER_SIGNATURE 0       /* 8 bytes "EFI PART" */
#define GPT_HEADER_REVISION 8        /* le32 */
#define GPT_HEADER_SIZE 12           /* le32: bytes the header CRC covers, 92..sector size */
#define GPT_HEADER_CRC32 16          /* le32: over HeaderSize bytes with this field zero */
#define GPT_HEADER_MY_LBA 24         /* le64: where this header is */
#define GPT_HEADER_ALTERNATE_LBA 32  /* le64: where the other copy is */
#define GPT_HEADER_ENTRIES_LBA 72    /* le64: the entry array */
#define GPT_HEADER_ENTRY_COUNT 80    /* le32 */
#define GPT_HEADER_ENTRY_SIZE 84     /* le32: 128 * 2^n */
#define GPT_HEADER_ENTRIES_CRC32 88  /* le32: over count * size bytes */
#define GPT_HEADER_MIN_SIZE 92
#define GPT_ENTRY_TYPE_GUID 0        /* 16 bytes; all zero: unused */
#define GPT_ENTRY_FIRST_LBA 32       /* le64 */
#define GPT_ENTRY_LAST_LBA 40        /* le64, inclusive */
#define GPT_ENTRY_MIN_SIZE 128
/* Type GUIDs as stored (the first three fields little-endian). */
#define GPT_TYPE_EFI_SYSTEM                                                                       \
    {0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}
#define GPT_TYPE_BASIC_DATA                                                                       \
    {0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7}

#endif
