/* fat_check: one directory entry: files (size against chain), subdirectory entries, short
 * names, long-name sequences, volume labels. */
#include "fat/fat_check_internal.h"

uint32_t fat_check_entry_cluster(const fat_checker *c, const uint8_t *e)
{
    uint32_t lo = af_load_le16(e + FAT_DIRENT_CLUSTER_LO);
    uint32_t hi = c->g->type == FAT_TYPE_32 ? af_load_le16(e + FAT_DIRENT_CLUSTER_HI) : 0;
    return (hi << 16) | lo;
}

void fat_check_set_entry_cluster(const fat_checker *c, uint8_t *e, uint32_t cl)
{
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, (uint16_t)cl);
    if (c->g->type == FAT_TYPE_32)
        af_store_le16(e + FAT_DIRENT_CLUSTER_HI, (uint16_t)(cl >> 16));
}

void fat_check_delete_entry(fat_checker *c, uint64_t at, uint8_t *e)
{
    e[0] = FAT_DIRENT_DELETED;
    fat_check_write(c, at, e, 1);
    if (c->name_at != at + 1)
        return;
    uint8_t del = FAT_DIRENT_DELETED;
    for (uint32_t i = 0; i < c->name_lfn_count; i++)
        fat_check_write(c, c->name_lfn_at[i], &del, 1);
    c->name_at = 0;
}

void fat_check_keep_long_name(fat_checker *c, const uint64_t *lfn_at, uint32_t n, uint8_t old_checksum,
                              const uint8_t *e)
{
    uint8_t sum = fat_lfn_checksum(e);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t have;
        if (fat_check_read(c, lfn_at[i] + FAT_LFN_CHECKSUM, &have, 1) && have == old_checksum)
            fat_check_write(c, lfn_at[i] + FAT_LFN_CHECKSUM, &sum, 1);
    }
}

/* LFN entries dropped by the assembler: the first `count` of the open ones (plus the one
 * just fed, at `at`, when `with_current`). */
static void drop_lfns(fat_checker *c, uint32_t count, uint64_t at, bool with_current, uint32_t dir)
{
    if (count == 0)
        return;
    uint64_t all[FAT_LFN_MAX_ENTRIES + 2];
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->lfn_count; i++)
        all[n++] = c->lfn_at[i];
    if (with_current)
        all[n++] = at;
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ORPHAN_LFNS);
    for (uint32_t i = 0; i < count && i < n && fix; i++) {
        uint8_t del = FAT_DIRENT_DELETED;
        fat_check_write(c, all[i], &del, 1);
    }
    /* each entry is a finding, one message tells of them all */
    fat_check_finding(c, &c->r->orphan_lfns, NULL, 0);
    c->r->orphan_lfns += count - 1;
    c->r->problems += count - 1;
    if (fix)
        c->r->repaired += count - 1;
    else
        c->r->left += count - 1;
    fat_check_msg_u64(c, count);
    fat_check_msg_str(c, " orphaned long-name entr");
    fat_check_msg_str(c, count == 1 ? "y" : "ies");
    fat_check_msg_str(c, " in directory at cluster ");
    fat_check_msg_u64(c, dir);
    fat_check_finish(c, fix, "deleted");
    c->lfn_count = 0;
    for (uint32_t i = count; i < n; i++)
        c->lfn_at[c->lfn_count++] = all[i];
}

void fat_check_lfn_feed(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir)
{
    if (e[FAT_LFN_TYPE] != 0 || af_load_le16(e + FAT_LFN_CLUSTER) != 0) {
        fat_check_finding(c, &c->r->bad_entries, NULL, 0);
        fat_check_msg_str(c, "long-name entry with a nonzero type or cluster field in directory at cluster ");
        fat_check_msg_u64(c, dir);
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix) {
            e[FAT_LFN_TYPE] = 0;
            af_store_le16(e + FAT_LFN_CLUSTER, 0);
            fat_check_write(c, at, e, FAT_DIRENT_SIZE);
        }
        fat_check_finish(c, fix, "set to 0");
    }
    uint32_t before = c->lfn.orphans;
    fat_lfn_feed(&c->lfn, e);
    uint32_t dropped = c->lfn.orphans - before;
    if (dropped > 0) {
        drop_lfns(c, dropped, at, true, dir);
    } else if (c->lfn_count < FAT_LFN_MAX_ENTRIES) {
        c->lfn_at[c->lfn_count++] = at;
    }
    if (c->lfn.entries == 0)
        c->lfn_count = 0;
}

/* Ends the open LFN sequence at a short entry (or at a free one: short_entry NULL);
 * returns true if a long name belongs to the short entry. */
bool fat_check_lfn_close(fat_checker *c, const uint8_t *short_entry, uint64_t at, uint32_t dir)
{
    uint32_t before = c->lfn.orphans, matched = 0;
    c->name_at = 0;
    if (short_entry) {
        const uint16_t *units;
        size_t len;
        matched = fat_lfn_finish(&c->lfn, short_entry, &units, &len);
        if (matched != 0 && matched == c->lfn_count) {
            c->name_at = at + 1;
            c->name_lfn_count = c->lfn_count;
            af_memcpy(c->name_lfn_at, c->lfn_at, c->lfn_count * sizeof c->lfn_at[0]);
        }
    } else {
        fat_lfn_abandon(&c->lfn);
    }
    drop_lfns(c, c->lfn.orphans - before, 0, false, dir);
    c->lfn_count = 0;
    return matched != 0;
}

void fat_check_lfn_forget(fat_checker *c)
{
    fat_lfn_abandon(&c->lfn);
    c->lfn_count = 0;
    c->name_at = 0;
}

bool fat_check_is_dot_name(const uint8_t *e, int dots)
{
    for (int i = 0; i < 11; i++) {
        if (e[i] != (i < dots ? '.' : ' '))
            return false;
    }
    return true;
}

/* A replacement for a byte a short name may not hold at position i. */
static uint8_t short_byte_repaired(uint8_t ch, int i)
{
    if (ch >= 'a' && ch <= 'z')
        return (uint8_t)(ch - 0x20);
    if (i == 0 && ch == ' ')
        return '_';
    uint8_t probe[11] = {'A', ch, ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    return fat_short_name_valid(probe) ? ch : '_';
}

void fat_check_short_name_repaired(const uint8_t *name, uint8_t out[11])
{
    bool valid = fat_short_name_valid(name);
    for (int i = 0; i < 11; i++)
        out[i] = valid || (i == 0 && name[i] == FAT_DIRENT_KANJI_E5) ? name[i] : short_byte_repaired(name[i], i);
}

void fat_check_short_name(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, bool has_long_name)
{
    if ((e[FAT_DIRENT_NT_CASE] & FAT_CASE_NO_SHORT_NAME) && !has_long_name) {
        fat_check_finding(c, &c->r->bad_entries, e, dir);
        fat_check_msg_str(c, "short name marked as a placeholder but there is no long name");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix) {
            e[FAT_DIRENT_NT_CASE] &= (uint8_t)~FAT_CASE_NO_SHORT_NAME;
            fat_check_write(c, at, e, FAT_DIRENT_SIZE);
        }
        fat_check_finish(c, fix, "mark cleared");
    }
    if (fat_short_name_valid(e))
        return;
    fat_check_finding(c, &c->r->bad_entries, e, dir);
    fat_check_msg_str(c, "bad short name");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
    if (fix) {
        uint8_t old_checksum = fat_lfn_checksum(e);
        fat_check_short_name_repaired(e, e);
        fat_check_write(c, at, e, 11);
        if (has_long_name && c->name_at == at + 1)
            fat_check_keep_long_name(c, c->name_lfn_at, c->name_lfn_count, old_checksum, e);
    }
    fat_check_finish(c, fix, "renamed");
}

/* A size that must be 0: the finding and its repair. */
static void size_to_zero(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, uint32_t *counter, const char *what,
                         uint32_t repair)
{
    fat_check_finding(c, counter, e, dir);
    fat_check_msg_str(c, what);
    bool fix = fat_check_fixing(c, repair);
    if (fix) {
        af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
        fat_check_write(c, at, e, FAT_DIRENT_SIZE);
    }
    fat_check_finish(c, fix, "size set to 0");
}

/* Ends the finding about a file whose first cluster cannot be kept: it becomes empty. */
static void empty_file(fat_checker *c, uint8_t *e, uint64_t at)
{
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
    if (fix) {
        fat_check_set_entry_cluster(c, e, 0);
        af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
        fat_check_write(c, at, e, FAT_DIRENT_SIZE);
    }
    fat_check_finish(c, fix, "file emptied");
}

/* A file's size against its chain. */
void fat_check_file(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir)
{
    uint32_t first = fat_check_entry_cluster(c, e), size = af_load_le32(e + FAT_DIRENT_SIZE_BYTES);
    uint32_t bpc = c->g->bytes_per_cluster;
    c->r->files++;
    if (first == 0) {
        if (size != 0)
            size_to_zero(c, e, at, dir, &c->r->size_mismatches, "file has a size but no clusters",
                         FAT_CHECK_REPAIR_CHAINS);
        return;
    }
    if (!fat_check_cluster_valid(c, first)) {
        fat_check_finding(c, &c->r->bad_entries, e, dir);
        fat_check_msg_str(c, "first cluster out of range: ");
        fat_check_msg_u64(c, first);
        empty_file(c, e, at);
        return;
    }
    fat_check_chain ch = fat_check_walk_chain(c, first, e, dir);
    if (ch.shared_start) {
        fat_check_finding(c, &c->r->cross_links, e, dir);
        fat_check_msg_str(c, "first cluster ");
        fat_check_msg_u64(c, first);
        fat_check_msg_str(c, " is also used by another chain");
        empty_file(c, e, at);
        return;
    }
    uint64_t chain_bytes = (uint64_t)ch.length * bpc;
    uint32_t needed = (uint32_t)(((uint64_t)size + bpc - 1) / bpc);
    if (size > chain_bytes) {
        fat_check_finding(c, &c->r->size_mismatches, e, dir);
        fat_check_msg_str(c, "size ");
        fat_check_msg_u64(c, size);
        fat_check_msg_str(c, " is larger than the chain (");
        fat_check_msg_u64(c, chain_bytes);
        fat_check_msg_str(c, " bytes)");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
        if (fix) {
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, (uint32_t)chain_bytes);
            fat_check_write(c, at, e, FAT_DIRENT_SIZE);
        }
        fat_check_finish(c, fix, "size set to the chain length");
    } else if (needed < ch.length) {
        fat_check_finding(c, &c->r->size_mismatches, e, dir);
        fat_check_msg_str(c, "chain has ");
        fat_check_msg_u64(c, ch.length);
        fat_check_msg_str(c, " clusters, size needs ");
        fat_check_msg_u64(c, needed);
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_LONG_CHAINS);
        if (fix) {
            if (needed == 0) {
                fat_check_chain_forget(c, first, ch.length);
                fat_check_set_entry_cluster(c, e, 0);
                fat_check_write(c, at, e, FAT_DIRENT_SIZE);
            } else {
                fat_check_chain_cut(c, first, needed, ch.length);
            }
        }
        fat_check_finish(c, fix, "chain cut to the size");
    }
}

void fat_check_unwalked(fat_checker *c, uint32_t first)
{
    if (c->unwalked == 0)
        c->unwalked = first;
}

uint32_t fat_check_subdir(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, bool claim_only,
                          fat_check_chain *chain)
{
    uint32_t first = fat_check_entry_cluster(c, e);
    *chain = (fat_check_chain){0, false, false};
    c->r->directories++;
    if (af_load_le32(e + FAT_DIRENT_SIZE_BYTES) != 0)
        size_to_zero(c, e, at, dir, &c->r->bad_entries, "directory has a nonzero size", FAT_CHECK_REPAIR_ENTRIES);
    if (!fat_check_cluster_valid(c, first)) {
        fat_check_finding(c, &c->r->bad_entries, e, dir);
        fat_check_msg_str(c, "directory without a valid first cluster");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
        if (fix)
            fat_check_delete_entry(c, at, e);
        fat_check_finish(c, fix, "entry deleted");
        return 0;
    }
    fat_check_chain ch = {0, fat_check_bit(c->used, first), false};
    if (!claim_only && !ch.shared_start)
        ch = fat_check_walk_chain(c, first, e, dir);
    if (ch.shared_start) {
        fat_check_finding(c, &c->r->cross_links, e, dir);
        fat_check_msg_str(c, "directory's first cluster ");
        fat_check_msg_u64(c, first);
        fat_check_msg_str(c, " is also used by another chain");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
        if (fix)
            fat_check_delete_entry(c, at, e);
        else
            fat_check_unwalked(c, first);
        fat_check_finish(c, fix, "entry deleted");
        return 0;
    }
    if (ch.runs_on)
        fat_check_unwalked(c, first);
    if (claim_only)
        fat_check_bit_set(c->used, first);
    *chain = ch;
    return first;
}

bool fat_check_in_subdir(const fat_checker *c, const fat_check_dir *it)
{
    return !it->fixed_root && it->first != c->g->root_cluster;
}

static bool label_valid(const uint8_t name[11])
{
    for (int i = 0; i < 11; i++) {
        uint8_t ch = name[i];
        if (ch < 0x20 || ch >= 0x7F)
            return false;
        switch (ch) {
        case '"': case '*': case '+': case ',': case '.': case '/': case ':': case ';':
        case '<': case '=': case '>': case '?': case '[': case '\\': case ']': case '|':
            return false;
        default:
            break;
        }
    }
    return true;
}

/* A volume-label entry: one at most, in the root, with a valid name, owning no cluster
 * (fsck.fat takes the first in the root as the volume's label and counts any other as a
 * bad entry; Windows and Linux ignore them). */
void fat_check_label_entry(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at)
{
    const char *why = fat_check_in_subdir(c, it) ? "volume label entry outside the root directory"
                      : c->root_label_seen      ? "second volume label entry in the root directory"
                      : !label_valid(e)         ? "volume label entry holds invalid characters"
                                                : NULL;
    if (why) {
        fat_check_finding(c, &c->r->bad_entries, NULL, 0);
        fat_check_msg_str(c, "directory at cluster ");
        fat_check_msg_u64(c, it->first);
        fat_check_msg_str(c, ": ");
        fat_check_msg_str(c, why);
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix)
            fat_check_delete_entry(c, at, e);
        fat_check_finish(c, fix, "deleted");
        return;
    }
    if (fat_check_entry_cluster(c, e) != 0 || af_load_le32(e + FAT_DIRENT_SIZE_BYTES) != 0) {
        fat_check_finding(c, &c->r->bad_entries, e, it->first);
        fat_check_msg_str(c, "volume label entry has a cluster or a size");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix) {
            fat_check_set_entry_cluster(c, e, 0);
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
            fat_check_write(c, at, e, FAT_DIRENT_SIZE);
        }
        fat_check_finish(c, fix, "cleared");
    }
    c->root_label_seen = true;
    af_memcpy(c->root_label, e, 11);
}
