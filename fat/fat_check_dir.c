/* fat_check: directories: iterating one, its "." and ".." slots, duplicate short names,
 * entries after the end marker, and the walk of the tree. */
#include "fat/fat_check_internal.h"

/* Device offset of the iterator's current entry, advancing to the next cluster when needed;
 * false at the end of the directory. */
static bool dir_entry_at(fat_checker *c, fat_check_dir *it, uint64_t *at)
{
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

/* Names are compared as their bad-character repair leaves them, so that the repair never
 * makes a duplicate ("F?" and "F*" both become "F_"). */
static bool names_equal_at(fat_checker *c, uint64_t at, const uint8_t key[11])
{
    uint8_t other[11];
    if (!fat_check_read(c, at, other, sizeof other))
        return false;
    fat_check_short_name_repaired(other, other);
    return af_memcmp(other, key, 11) == 0;
}

/* Looks the name up in the directory's table; inserts it (at `at`) when absent. Returns
 * true for a duplicate; a full table (a directory past FAT_CHECK_NAME_SLOTS / 2 names)
 * reports nothing more. */
static bool name_seen(fat_checker *c, const uint8_t raw[11], uint64_t at, uint32_t *count)
{
    uint8_t name[11];
    fat_check_short_name_repaired(raw, name);
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
    for (uint32_t n = 0; n < 0x100000u && c->io == VFS_OK; n++) {
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
        if (c->io != VFS_OK || !dir_entry_at(c, &it, &at) || !fat_check_read(c, at, e, sizeof e))
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
        uint8_t repaired[11];
        fat_check_short_name_repaired(e, repaired);
        fat_check_msg_str(c, af_memcmp(repaired, e, 11) == 0 ? "duplicate short name"
                                                             : "short name that its bad-character repair makes a duplicate");
        bool fixed =
            fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES) && rename_duplicate(c, e, at, &count, lfn_at, before);
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
    } else {
        fat_check_unwalked(c, it->first); /* other systems may reach what it names */
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
    uint32_t have = fat_check_entry_cluster(c, e);
    uint32_t want = dots == 1 ? it->first : it->parent == FAT_CHECK_PARENT_CHECKED ? have : it->parent;
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
    if (!fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES) || (dots == 2 && it->parent == FAT_CHECK_PARENT_CHECKED)) {
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

/* The ".." of a directory that will be entered later, checked now while its parent is
 * known: its value, or in repair mode its creation; the rest waits until it is entered. */
static void check_dotdot_early(fat_checker *c, uint32_t first, uint32_t parent)
{
    uint64_t at = fat_cluster_offset(c->g, first) + FAT_DIRENT_SIZE;
    uint8_t e[FAT_DIRENT_SIZE];
    if (!fat_check_read(c, at, e, sizeof e))
        return;
    if (!fat_check_is_dot_name(e, 2)) {
        fat_check_dir it = {.first = first, .cluster = first, .clusters_left = 1, .index = 2, .total = 2,
                            .parent = parent};
        if (fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES))
            check_dot_slot(c, &it, e, at, 2);
        return;
    }
    if (fat_check_entry_cluster(c, e) == parent)
        return;
    fat_check_finding(c, &c->r->bad_entries, e, first);
    fat_check_msg_str(c, "'..' entry does not point at the parent");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_ENTRIES);
    if (fix) {
        fat_check_set_entry_cluster(c, e, parent);
        fat_check_write(c, at, e, FAT_DIRENT_SIZE);
    }
    fat_check_finish(c, fix, "fixed");
}

static void open_dir(fat_checker *c, fat_check_dir *d, uint32_t first, fat_check_chain chain, uint32_t parent)
{
    af_memset(d, 0, sizeof *d);
    d->first = d->cluster = first;
    d->clusters_left = chain.length;
    d->partial = chain.runs_on;
    d->parent = parent;
    check_duplicates(c, d);
}

/* A subdirectory found in the deepest open directory waits: its first cluster is claimed
 * and remembered, and it is entered when the walk above it is done. */
static void defer_dir(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, uint32_t parent)
{
    fat_check_chain chain;
    uint32_t first = fat_check_subdir(c, e, at, dir, true, &chain);
    if (first == 0)
        return;
    check_dotdot_early(c, first, parent);
    fat_check_bit_set(c->deferred, first);
    c->deferred_count++;
}

/* One entry of the open directory `it`: returns the first cluster of a subdirectory to
 * enter (0: none) and the walk of its chain. With `room` false, a subdirectory is
 * deferred. */
static uint32_t walk_entry(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at, bool room,
                           fat_check_chain *chain)
{
    if (it->ended) {
        check_after_end(c, it, e, at);
        return 0;
    }
    if (fat_check_in_subdir(c, it) && it->total <= 2 && check_dot_slot(c, it, e, at, (int)it->total))
        return 0;
    if (e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED) {
        fat_check_lfn_close(c, NULL, 0, it->first);
        it->ended = e[0] == FAT_DIRENT_END;
        return 0;
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
                return 0;
            }
            fat_check_finish(c, false, NULL);
        }
        fat_check_lfn_feed(c, e, at, it->first);
        return 0;
    }
    bool has_long_name = fat_check_lfn_close(c, e, at, it->first);
    if (fat_check_is_dot_name(e, 1) || fat_check_is_dot_name(e, 2)) {
        check_dot_entry(c, it, e, at, fat_check_is_dot_name(e, 1) ? 1 : 2);
        return 0;
    }
    /* fsck.fat reads such an entry both as a directory and as a volume label */
    if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) == (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) {
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
        return 0;
    }
    fat_check_short_name(c, e, at, it->first, has_long_name);
    if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY)) {
        fat_check_file(c, e, at, it->first);
        return 0;
    }
    uint32_t parent = fat_check_in_subdir(c, it) ? it->first : 0;
    if (!room) {
        defer_dir(c, e, at, it->first, parent);
        return 0;
    }
    return fat_check_subdir(c, e, at, it->first, false, chain);
}

/* Walks the directory in open[0] and, depth first, the directories below it, keeping at
 * most FAT_CHECK_OPEN_DIRS open. */
static void walk_open(fat_checker *c)
{
    uint32_t depth = 0;
    for (;;) {
        if (c->io != VFS_OK)
            return;
        fat_check_dir *it = &c->open[depth];
        uint64_t at;
        uint8_t e[FAT_DIRENT_SIZE];
        if (!dir_entry_at(c, it, &at) || !fat_check_read(c, at, e, sizeof e)) {
            /* a long name open at the end of a part of a directory may end in the rest */
            if (it->partial)
                fat_check_lfn_forget(c);
            else
                fat_check_lfn_close(c, NULL, 0, it->first);
            if (depth == 0)
                return;
            depth--;
            continue;
        }
        it->index++;
        it->total++;
        fat_check_chain chain;
        uint32_t child = walk_entry(c, it, e, at, depth + 1 < FAT_CHECK_OPEN_DIRS, &chain);
        if (child == 0)
            continue;
        uint32_t parent = fat_check_in_subdir(c, it) ? it->first : 0;
        depth++;
        open_dir(c, &c->open[depth], child, chain, parent);
    }
}

/* The next deferred directory at or after byte *from of the bitmap (0: none left there). */
static uint32_t next_deferred(fat_checker *c, size_t *from)
{
    size_t bytes = ((size_t)c->g->max_cluster + 8) / 8;
    for (size_t i = *from; i < bytes; i++) {
        if (i + 8 <= bytes && af_load_le64(c->deferred + i) == 0) {
            i += 7;
            continue;
        }
        if (c->deferred[i] == 0)
            continue;
        uint32_t bit = 0;
        while (!(c->deferred[i] & (1u << bit)))
            bit++;
        *from = i;
        return (uint32_t)(i * 8 + bit);
    }
    *from = bytes;
    return 0;
}

/* Enters the deferred directories, in rounds over the bitmap (each round goes at least
 * FAT_CHECK_OPEN_DIRS - 1 levels deeper than the last), until none is left. */
static void walk_deferred(fat_checker *c)
{
    while (c->deferred_count > 0 && c->io == VFS_OK) {
        size_t from = 0;
        for (uint32_t first; c->io == VFS_OK && (first = next_deferred(c, &from)) != 0;) {
            fat_check_bit_clear(c->deferred, first);
            c->deferred_count--;
            fat_check_bit_clear(c->used, first); /* claimed when found; walked now */
            fat_check_chain ch = fat_check_walk_chain(c, first, NULL, first);
            if (ch.runs_on)
                fat_check_unwalked(c, first);
            open_dir(c, &c->open[0], first, ch, FAT_CHECK_PARENT_CHECKED);
            walk_open(c);
        }
    }
}

void fat_check_walk_tree(fat_checker *c)
{
    fat_check_dir *root = &c->open[0];
    af_memset(root, 0, sizeof *root);
    fat_lfn_reset(&c->lfn);
    c->lfn_count = 0;
    if (c->g->type == FAT_TYPE_32) {
        uint8_t root_name[11] = {'/', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
        fat_check_chain ch = fat_check_walk_chain(c, c->g->root_cluster, root_name, c->g->root_cluster);
        open_dir(c, root, c->g->root_cluster, ch, 0);
    } else {
        root->fixed_root = true;
        check_duplicates(c, root);
    }
    walk_open(c);
    walk_deferred(c);
}
