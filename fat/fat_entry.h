/* fat_entry: the FAT entry codec, the one place that knows how each FAT type lays out its
 * entries (Microsoft FAT specification, section 4; the role of Linux's fatent operations,
 * without their I/O).
 *
 * Contract: pure functions over bytes the caller has read (the engine through its cache,
 * the checker and the tests from their own copies); no I/O, no state. Entry c of a FAT
 * starts fat_entry_byte() bytes into it and its value lies in the fat_entry_size() bytes
 * from there: FAT12 packs two 12-bit entries into three bytes (entry c is the low 12 bits of
 * the little-endian word at byte c + c/2 when c is even, the high 12 when odd), FAT16 has
 * 16-bit entries, FAT32 32-bit ones whose top 4 bits are reserved. fat_entry_put keeps every
 * bit there that is not the entry's (the neighbouring FAT12 nibble, FAT32's reserved bits),
 * so a caller writes back all fat_entry_size() bytes.
 */
#ifndef ASYNCFAT_FAT_ENTRY_H
#define ASYNCFAT_FAT_ENTRY_H

#include "base/base.h"
#include "fat/fat_layout.h"

typedef enum fat_type { FAT_TYPE_12 = 12, FAT_TYPE_16 = 16, FAT_TYPE_32 = 32 } fat_type;

/* Bytes from the start of a FAT to the first byte of entry c. */
static inline uint64_t fat_entry_byte(fat_type t, uint32_t c)
{
    return t == FAT_TYPE_12 ? (uint64_t)c + c / 2u : (uint64_t)c * (t == FAT_TYPE_16 ? 2u : 4u);
}

/* Bytes an entry's value spans from fat_entry_byte: 2 (FAT12, FAT16) or 4 (FAT32). */
static inline uint32_t fat_entry_size(fat_type t) { return t == FAT_TYPE_32 ? 4u : 2u; }

/* Bytes a FAT needs for entries 0 .. count - 1. */
static inline uint64_t fat_entry_table_bytes(fat_type t, uint64_t count)
{
    return t == FAT_TYPE_12 ? (count * 3u + 1u) / 2u : count * (t == FAT_TYPE_16 ? 2u : 4u);
}

/* The value of entry c, from the bytes at p (its fat_entry_byte). */
static inline uint32_t fat_entry_get(fat_type t, uint32_t c, const uint8_t *p)
{
    switch (t) {
    case FAT_TYPE_12: return (c & 1u) ? (uint32_t)af_load_le16(p) >> 4 : af_load_le16(p) & 0xFFFu;
    case FAT_TYPE_16: return af_load_le16(p);
    default: return af_load_le32(p) & FAT32_MASK;
    }
}

/* Store `value` as entry c in the bytes at p (its fat_entry_byte). */
static inline void fat_entry_put(fat_type t, uint32_t c, uint8_t *p, uint32_t value)
{
    switch (t) {
    case FAT_TYPE_12: {
        uint32_t v = af_load_le16(p);
        v = (c & 1u) ? (v & 0x000Fu) | ((value & 0xFFFu) << 4) : (v & 0xF000u) | (value & 0xFFFu);
        af_store_le16(p, (uint16_t)v);
        break;
    }
    case FAT_TYPE_16: af_store_le16(p, (uint16_t)value); break;
    default: af_store_le32(p, (af_load_le32(p) & ~FAT32_MASK) | (value & FAT32_MASK)); break;
    }
}

/* Values with a meaning: any value >= eoc_min ends a chain; eoc is the end-of-chain marker
 * written; bad marks a bad cluster. */
static inline uint32_t fat_eoc_min(fat_type t)
{
    return t == FAT_TYPE_12 ? FAT12_EOC_MIN : t == FAT_TYPE_16 ? FAT16_EOC_MIN : FAT32_EOC_MIN;
}
static inline uint32_t fat_eoc_value(fat_type t)
{
    return t == FAT_TYPE_12 ? FAT12_EOC : t == FAT_TYPE_16 ? FAT16_EOC : FAT32_EOC;
}
static inline uint32_t fat_bad_value(fat_type t)
{
    return t == FAT_TYPE_12 ? FAT12_BAD : t == FAT_TYPE_16 ? FAT16_BAD : FAT32_BAD;
}

/* Entry 1's clean-shutdown bit (set: the volume was unmounted cleanly); FAT12 has none. */
static inline uint32_t fat_entry_clean_bit(fat_type t)
{
    return t == FAT_TYPE_12 ? 0 : t == FAT_TYPE_16 ? FAT16_CLEAN_SHUTDOWN : FAT32_CLEAN_SHUTDOWN;
}

#endif
