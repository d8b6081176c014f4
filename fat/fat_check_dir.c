/* fat_check: directories: iterating one, its "." and ".." slots, duplicate short names,
 * entries after the end marker, and the walk of the tree. */
#include "fat/fat_check_internal.h"

/* Device offset of the iterator's current entry, advancing to the next cluster when needed;
 * false at the end of the directory. */
static bool dir_entry_at(fat_checker *c, fat_check_dir *it, uint64_t *at)
{
    if (it->total >= FAT_DIR_MAX_ENTRIES)
        return false;
    if (it->fixed_root) {
        if (it->index >= c->g->root_entries)
            return false;
        *at = c->g->root_dir_offset + (uint64_t)it->index * FAT_DIRENT_SIZE;
        return true;
    }
    uint32_t per_cluster = c->g->bytes_per_cluster / FAT_DIRENT_SIZE;
    if (it->index == per_cluster) {
        if (it->clusters_left <= 1)
            return false;
        uint32_t next = fat_check_fat_get(c, it->cluster);
        if (!fat_check_cluster_valid(c, next))
            return false;
        it->cluster = next;
        it->clusters_left--;
        it->index = 0;
    }
    *at = fat_cluster_offset(c->g, it->cluster) + (uint64_t)it->index * FAT_DIRENT_SIZE;
    return true;
}

static bool names_equal_at(fat_checker *c, uint64_t at, const uint8_t name[11])
{
    uint8_t other[11];
    return fat_check_read(c, at, other, sizeof other) && af_memcmp(other, name, 11) == 0;
}

/* Looks the name up in the directory's table; inserts it (at `at`) when absent. Returns
 * true for a duplicate; a full table (a directory past FAT_CHECK_NAME_SLOTS / 2 names)
 * reports nothing more. */
static bool name_seen(fat_checker *c, const uint8_t name[11], uint64_t at, uint32_t *count)
{
    uint32_t mask = FAT_CHECK_NAME_SLOTS - 1, i = fat_short_name_hash(name) & mask;
    for (;;) {
        uint64_t slot = af_load_le64(c->names + (size_t)i * 8);
        if (slot == 0)
            break;
        if (names_equal_at(c, slot - 1, name))
            return true;
        i = (i + 1) & mask;
    }
    if (*count >= FAT_CHECK_NAME_SLOTS / 2)
        return false;
    af_store_le64(c->names + (size_t)i * 8, at + 1);
    (*count)++;
    return false;
}

/* A new name for a duplicate: "DUPnnnnn" with the same extension, unused in the table.
 * The long-name entries just before it (lfn_at) keep naming it. */
static bool rename_duplicate(fat_checker *c, uint8_t *e, uint64_t at, uint32_t *count, const uint64_t *lfn_at,
                             uint32_t lfns)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t name[11], old_checksum = fat_lfn_checksum(e);
    af_memcpy(name, e, 11);
    for (uint32_t n = 0; n < 0x100000u && c->io == FS_STATUS_SUCCESS; n++) {
        af_memcpy(name, "DUP", 3);
        for (int k = 0; k < 5; k++)
            name[3 + k] = (uint8_t)hex[(n >> (16 - 4 * k)) & 0xF];
        if (!name_seen(c, name, at, count)) {
            af_memcpy(e, name, 11);
            fat_check_write(c, at, e, 11);
            fat_check_keep_long_name(c, lfn_at, lfns, old_checksum, e);
            return true;
        }
    }
    return false;
}

/* First pass over a directory: every live short name must be unique (fsck.fat checks the
 * same). Runs on a copy of the iterator before the entries are checked one by one, and
 * remembers the run of long-name entries before each short entry, so that a renamed
 * duplicate keeps its long name. */
static void check_duplicates(fat_checker *c, const fat_check_dir *start)
{
    fat_check_dir it = *start;
    uint32_t count = 0, lfns = 0;
    uint64_t lfn_at[FAT_LFN_MAX_ENTRIES];
    af_memset(c->names, 0, FAT_CHECK_NAME_SLOTS * 8u);
    for (;;) {
        uint64_t at;
        uint8_t e[FAT_DIRENT_SIZE];
        if (c->io != FS_STATUS_SUCCESS || !dir_entry_at(c, &it, &at) || !fat_check_read(c, at, e, sizeof e))
            return;
        it.index++;
        it.total++;
        if (e[0] == FAT_DIRENT_END)
            return;
        uint8_t attr = e[FAT_DIRENT_ATTR];
        if (e[0] != FAT_DIRENT_DELETED && (attr & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            if (lfns == FAT_LFN_MAX_ENTRIES) {
                af_memmove(lfn_at, lfn_at + 1, (FAT_LFN_MAX_ENTRIES - 1) * sizeof lfn_at[0]);
                lfns--;
            }
            lfn_at[lfns++] = at;
            continue;
        }
        uint32_t before = lfns;
        lfns = 0;
        if (e[0] == FAT_DIRENT_DELETED || (attr & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) == FAT_ATTR_VOLUME_ID ||
            fat_check_is_dot_name(e, 1) || fat_check_is_dot_name(e, 2))
            continue;
        if (!name_seen(c, e, at, &count))
            continue;
        fat_check_finding(c, &c->r->bad_entries, e, it.first);
        fat_check_msg_str(c, "duplicate short name");
        bool fixed = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES) && rename_duplicate(c, e, at, &count, lfn_at, before);
        if (fixed) {
            fat_check_msg_str(c, "; renamed to ");
            fat_check_msg_name(c, e);
        }
        fat_check_finish(c, fixed, NULL);
    }
}

/* Entries after the end marker are free for the spec and for the engine, but fsck.fat and
 * other systems read on past it: an entry there that looks used must be cleared. */
static void check_after_end(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at)
{
    if (e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED)
        return;
    fat_check_finding(c, &c->r->bad_entries, NULL, 0);
    fat_check_msg_str(c, "directory at cluster ");
    fat_check_msg_u64(c, it->first);
    fat_check_msg_str(c, ": used entry after the end-of-directory marker");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
    if (fix) {
        e[0] = FAT_DIRENT_END;
        fat_check_write(c, at, e, 1);
    }
    fat_check_finish(c, fix, "cleared");
}

/* "." and ".." must be the first two entries of a subdirectory and point at the directory
 * and its parent, 0 for the root even on FAT32 (the specification says so; fsck.fat and
 * Linux want it, though some writers put the root's cluster number there). */
static void check_dot_entry(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at, int dots)
{
    bool placed = !it->fixed_root && it->first != c->g->root_cluster && it->total == (uint32_t)dots;
    if (!placed) {
        fat_check_finding(c, &c->r->bad_entries, e, it->first);
        fat_check_msg_str(c, "misplaced dot entry");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix)
            fat_check_delete_entry(c, at, e);
        fat_check_finish(c, fix, "deleted");
        return;
    }
    uint32_t want = dots == 1 ? it->first : it->parent;
    uint32_t have = fat_check_entry_cluster(c, e);
    bool ok = have == want;
    if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) || (e[FAT_DIRENT_NT_CASE] & FAT_CASE_NO_SHORT_NAME) || !ok) {
        fat_check_finding(c, &c->r->bad_entries, e, it->first);
        fat_check_msg_str(c, dots == 1 ? "'.' entry" : "'..' entry");
        fat_check_msg_str(c, ok ? " has bad attributes" : " does not point at ");
        if (!ok)
            fat_check_msg_str(c, dots == 1 ? "its directory" : "the parent");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
        if (fix) {
            fat_check_set_entry_cluster(c, e, want);
            e[FAT_DIRENT_ATTR] |= FAT_ATTR_DIRECTORY;
            e[FAT_DIRENT_NT_CASE] &= (uint8_t)~FAT_CASE_NO_SHORT_NAME;
            fat_check_write(c, at, e, FAT_DIRENT_SIZE);
        }
        fat_check_finish(c, fix, "fixed");
    }
}

/* Slots 1 and 2 of a subdirectory must hold "." and "..". Returns true if the slot was
 * rewritten (the entry that was there is gone and must not be checked). */
static bool check_dot_slot(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at, int dots)
{
    if (fat_check_is_dot_name(e, dots)) {
        check_dot_entry(c, it, e, at, dots);
        return true;
    }
    fat_check_finding(c, &c->r->bad_entries, NULL, 0);
    fat_check_msg_str(c, "directory at cluster ");
    fat_check_msg_u64(c, it->first);
    fat_check_msg_str(c, dots == 1 ? ": no '.' entry" : ": no '..' entry");
    if (!fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES)) {
        fat_check_finish(c, false, NULL);
        return false;
    }
    if (e[0] != FAT_DIRENT_END && e[0] != FAT_DIRENT_DELETED)
        fat_check_msg_str(c, " (the entry in its slot is dropped)");
    af_memset(e, 0, FAT_DIRENT_SIZE);
    af_memset(e, ' ', 11);
    e[0] = '.';
    if (dots == 2)
        e[1] = '.';
    e[FAT_DIRENT_ATTR] = FAT_ATTR_DIRECTORY;
    fat_check_set_entry_cluster(c, e, dots == 1 ? it->first : it->parent);
    fat_check_write(c, at, e, FAT_DIRENT_SIZE);
    fat_check_finish(c, true, "created");
    return true;
}

void fat_check_walk_tree(fat_checker *c)
{
    uint32_t depth = 0;
    fat_check_dir *root = &c->stack[0];
    af_memset(root, 0, sizeof *root);
    if (c->g->type == FAT_TYPE_32) {
        uint8_t root_name[11] = {'/', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
        fat_check_chain ch = fat_check_walk_chain(c, c->g->root_cluster, root_name, c->g->root_cluster);
        root->first = root->cluster = c->g->root_cluster;
        root->clusters_left = ch.length;
    } else {
        root->fixed_root = true;
    }
    fat_lfn_reset(&c->lfn);
    c->lfn_count = 0;
    check_duplicates(c, root);
    for (;;) {
        if (c->io != FS_STATUS_SUCCESS)
            return;
        fat_check_dir *it = &c->stack[depth];
        uint64_t at;
        uint8_t e[FAT_DIRENT_SIZE];
        if (!dir_entry_at(c, it, &at) || !fat_check_read(c, at, e, sizeof e)) {
            fat_check_lfn_close(c, NULL, 0, it->first);
            if (depth == 0)
                return;
            depth--;
            continue;
        }
        it->index++;
        it->total++;
        if (it->ended) {
            check_after_end(c, it, e, at);
            continue;
        }
        if (fat_check_in_subdir(c, it) && it->total <= 2 && check_dot_slot(c, it, e, at, (int)it->total))
            continue;
        if (e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED) {
            fat_check_lfn_close(c, NULL, 0, it->first);
            it->ended = e[0] == FAT_DIRENT_END;
            continue;
        }
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            /* The spec masks the top two bits, Linux and fsck.fat do not (they read such an
             * entry as a volume label): an entry both can agree on is deleted. */
            if (e[FAT_DIRENT_ATTR] != FAT_ATTR_LONG_NAME) {
                fat_check_finding(c, &c->r->bad_entries, NULL, 0);
                fat_check_msg_str(c, "long-name entry with reserved attribute bits in directory at cluster ");
                fat_check_msg_u64(c, it->first);
                if (fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES)) {
                    fat_check_delete_entry(c, at, e);
                    fat_check_finish(c, true, "deleted");
                    fat_check_lfn_close(c, NULL, 0, it->first);
                    continue;
                }
                fat_check_finish(c, false, NULL);
            }
            fat_check_lfn_feed(c, e, at, it->first);
            continue;
        }
        bool has_long_name = fat_check_lfn_close(c, e, at, it->first);
        if (fat_check_is_dot_name(e, 1) || fat_check_is_dot_name(e, 2)) {
            check_dot_entry(c, it, e, at, fat_check_is_dot_name(e, 1) ? 1 : 2);
            continue;
        }
        /* fsck.fat reads such an entry both as a directory and as a volume label */
        if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) ==
            (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) {
            fat_check_finding(c, &c->r->bad_entries, e, it->first);
            fat_check_msg_str(c, "entry is both a directory and a volume label");
            bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
            if (fix) {
                e[FAT_DIRENT_ATTR] &= (uint8_t)~FAT_ATTR_VOLUME_ID;
                fat_check_write(c, at, e, FAT_DIRENT_SIZE);
            }
            fat_check_finish(c, fix, "label bit cleared");
        }
        if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) == FAT_ATTR_VOLUME_ID) {
            fat_check_label_entry(c, it, e, at);
            continue;
        }
        fat_check_short_name(c, e, at, it->first, has_long_name);
        if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY)) {
            fat_check_file(c, e, at, it->first);
            continue;
        }
        uint32_t length = fat_check_subdir(c, e, at, it->first);
        if (length == 0)
            continue;
        if (depth == FAT_CHECK_MAX_DEPTH) {
            fat_check_finding(c, &c->r->too_deep, e, it->first);
            fat_check_msg_str(c, "directory nested too deep; not checked");
            fat_check_finish(c, false, NULL);
            continue;
        }
        uint32_t parent = fat_check_in_subdir(c, it) ? it->first : 0;
        depth++;
        fat_check_dir *child = &c->stack[depth];
        af_memset(child, 0, sizeof *child);
        child->first = child->cluster = fat_check_entry_cluster(c, e);
        child->clusters_left = length;
        child->parent = parent;
        check_duplicates(c, child);
    }
}
