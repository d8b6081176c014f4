/* fat_intent: the rename record, an intent record kept in a deleted directory entry.
 *
 * FAT has no journal, and a rename between two directory blocks takes two writes: asyncfat
 * writes the new entry set first, with this record in the free slot just before it (the
 * same device block, so one write carries both), then removes the old entry, then clears
 * the record (each in its own flush epoch; docs/ORDERING.md, "rename"). A cut between
 * leaves the file under both names sharing its clusters; the record says which one is new,
 * so mount-time recovery finishes the rename instead of guessing.
 *
 * The record is a deleted entry (first byte 0xE5, attribute 0): every FAT implementation
 * skips it, so it needs no reserved sectors, no hidden file and no format change, and
 * works on FAT12/16/32 alike. It names the old entry by its directory's first cluster
 * (0: the FAT12/16 root), the slot of its short entry, its long-name entry count and its
 * 11-byte short name; the new entry set starts in the slot after the record.
 *
 * Recovery's rule (fat_recover.c), for a record followed by a live entry set N:
 *   - if the old slot still holds a live short entry with the recorded short name and the
 *     same first cluster as N, that is the old name: remove it (with its long-name
 *     entries); the rename completes;
 *   - a moved directory's ".." is set to the record's directory;
 *   - the record is cleared.
 * A record not followed by a live entry set is stale and is cleared. Nothing is ever
 * removed whose first cluster differs from N's, so a record can never cost data.
 *
 * Contract: pure functions over 32-byte entries; no I/O.
 */
#ifndef ASYNCFAT_FAT_INTENT_H
#define ASYNCFAT_FAT_INTENT_H

#include "base/base.h"

typedef struct fat_rename_record {
    uint32_t source_dir;        /* first cluster of the old entry's directory (0: fixed root) */
    uint16_t source_slot;       /* slot of the old short entry in that directory */
    uint8_t source_lfn_count;   /* long-name entries before it */
    uint8_t source_name[11];    /* the old short entry's name bytes */
    bool moved_directory;       /* the entry is a directory whose ".." follows the rename */
} fat_rename_record;

/* Fills `entry` (32 bytes) with the record: a deleted entry other systems ignore. */
void fat_rename_record_encode(const fat_rename_record *rec, uint8_t entry[32]);
/* True if `entry` is a rename record (signature and checksum match). */
bool fat_rename_record_decode(const uint8_t entry[32], fat_rename_record *rec);
/* A plain deleted entry: what a cleared record becomes. */
void fat_rename_record_clear(uint8_t entry[32]);

/* Recovery's rule as pure predicates, so that mount recovery (fat_recover.c) and the
 * checker (fat_check_rename.c, which must not use the engine) finish a rename alike. */

/* Whether the set ending in `short_entry` (at slot `short_slot`; before it `lfn_open`
 * long-name entries from slot `lfn_first`, of which fat_lfn_finish matched `lfn_matched`)
 * is the new name of the record at `record_slot` of the same directory: it starts in the
 * slot after the record, its long name is whole, and it is a file or a directory. */
bool fat_rename_record_heads(uint32_t record_slot, const uint8_t short_entry[32], uint32_t short_slot,
                             uint32_t lfn_first, uint32_t lfn_open, uint32_t lfn_matched);
/* Whether `old`, the entry in the recorded slot (first cluster `old_cluster`), is the old
 * name of the new entry whose first cluster is `new_cluster`: a live short entry with the
 * recorded name and the same first cluster. Only then is it removed. */
bool fat_rename_record_names_old(const fat_rename_record *rec, const uint8_t old[32], uint32_t old_cluster,
                                 uint32_t new_cluster);
/* Whether `entry`, before the old short entry whose checksum is `sum`, is one of its
 * long-name entries (removed with it). */
bool fat_rename_record_old_lfn(const uint8_t entry[32], uint8_t sum);

#endif
