/* The rename record's layout (see fat_intent.h):
 *   0      0xE5: a deleted entry, skipped by every implementation
 *   1..4   "AFrn"
 *   5      layout version (1)
 *   6..7   old short entry's slot (le16)
 *   8      old long-name entry count
 *   9      flags: bit 0 = a directory moved (its ".." follows)
 *   10     0
 *   11     attribute 0 (never 0x0F: undelete tools must not read it as a long-name part)
 *   12..15 old entry's directory first cluster (le32; 0 = fixed root)
 *   16..26 old short name
 *   27..30 0
 *   31     checksum of bytes 0..30 (rotate right, add, as for long names) */
#include "fat/fat_intent.h"

#include "fat/fat_layout.h"

static const uint8_t magic[4] = { 'A', 'F', 'r', 'n' };
#define RECORD_VERSION 1u
#define RECORD_FLAG_DIRECTORY 0x01u

static uint8_t record_checksum(const uint8_t e[32])
{
    uint8_t sum = 0;
    for (int i = 0; i < 31; i++)
        sum = (uint8_t)(((sum & 1u) << 7) + (sum >> 1) + e[i]);
    return sum;
}

void fat_rename_record_encode(const fat_rename_record *rec, uint8_t e[32])
{
    af_memset(e, 0, 32);
    e[0] = FAT_DIRENT_DELETED;
    af_memcpy(e + 1, magic, sizeof magic);
    e[5] = RECORD_VERSION;
    af_store_le16(e + 6, rec->source_slot);
    e[8] = rec->source_lfn_count;
    e[9] = rec->moved_directory ? RECORD_FLAG_DIRECTORY : 0;
    af_store_le32(e + 12, rec->source_dir);
    af_memcpy(e + 16, rec->source_name, 11);
    e[31] = record_checksum(e);
}

bool fat_rename_record_decode(const uint8_t e[32], fat_rename_record *rec)
{
    if (e[0] != FAT_DIRENT_DELETED || af_memcmp(e + 1, magic, sizeof magic) != 0 || e[5] != RECORD_VERSION ||
        e[FAT_DIRENT_ATTR] != 0 || e[31] != record_checksum(e) || (e[9] & ~RECORD_FLAG_DIRECTORY) != 0 ||
        e[8] > FAT_LFN_MAX_ENTRIES)
        return false;
    rec->source_slot = af_load_le16(e + 6);
    rec->source_lfn_count = e[8];
    rec->moved_directory = (e[9] & RECORD_FLAG_DIRECTORY) != 0;
    rec->source_dir = af_load_le32(e + 12);
    af_memcpy(rec->source_name, e + 16, 11);
    return true;
}

void fat_rename_record_clear(uint8_t e[32])
{
    af_memset(e, 0, 32);
    e[0] = FAT_DIRENT_DELETED;
}

static bool is_lfn(const uint8_t e[32])
{
    return (e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME;
}

bool fat_rename_record_heads(uint32_t record_slot, const uint8_t e[32], uint32_t short_slot, uint32_t lfn_first,
                             uint32_t lfn_open, uint32_t lfn_matched)
{
    uint32_t set_first = lfn_matched ? lfn_first : short_slot;
    return set_first == record_slot + 1u && (lfn_matched == 0 || lfn_matched == lfn_open) && e[0] != '.' &&
           e[0] != FAT_DIRENT_END && e[0] != FAT_DIRENT_DELETED && !is_lfn(e) &&
           !(e[FAT_DIRENT_ATTR] & FAT_ATTR_VOLUME_ID);
}

bool fat_rename_record_names_old(const fat_rename_record *rec, const uint8_t old[32], uint32_t old_cluster,
                                 uint32_t new_cluster)
{
    return old[0] != FAT_DIRENT_END && old[0] != FAT_DIRENT_DELETED && old[0] != '.' && !is_lfn(old) &&
           af_memcmp(old, rec->source_name, 11) == 0 && old_cluster == new_cluster;
}

bool fat_rename_record_old_lfn(const uint8_t e[32], uint8_t sum)
{
    return is_lfn(e) && e[0] != FAT_DIRENT_DELETED && e[FAT_LFN_CHECKSUM] == sum;
}
