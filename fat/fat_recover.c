/* Mount-time recovery of a dirty volume: what a power cut can leave (docs/ORDERING.md,
 * "mount recovery"), repaired before the mount returns. fat_mount calls it once the dirty
 * marks are durable, so a cut during recovery leaves a volume the next mount recovers.
 *
 * Pass 1, names: every directory once; rename records are resolved (fat_intent.h) and
 *   long-name entries without their short entry deleted.
 * Pass 2, reach: every chain a directory entry names is walked in the active FAT and its
 *   clusters marked; a file's chain longer than its size is cut at the size. A broken,
 *   looping or shared chain, or an entry without a valid cluster, is damage a cut never
 *   causes: recovery frees nothing then (report.needs_check) and the free map is rebuilt
 *   from the FATs as they are, every copy's uses counted.
 * Pass 3, FAT: allocated clusters no walk reached (lost clusters) are freed, after an order
 *   point that puts the cuts of pass 2 first; every other FAT copy is made equal to the
 *   active one.
 *
 * Memory: none of its own but the stack. The free map's memory is the reach map while the
 * walk runs; directories are walked depth-first with a stack of RECOVER_STACK frames, and
 * deeper than that, a directory is left through its ".." entry and found again in its
 * parent, so any depth costs no more memory. Every walk is bounded (chains by the cluster
 * count, directories by FAT_DIR_MAX_ENTRIES, the tree by the reach map: a directory whose
 * cluster is already marked is never entered twice). */
#include "fat/fat_engine.h"
#include "fat/fat_intent.h"

#define RECOVER_STACK 16u

/* ---- reading directories without nodes ------------------------------------------------------ */

typedef struct cursor {
    uint32_t first;             /* the directory's first cluster; 0: the fixed root */
    uint32_t slot;              /* next slot */
    uint32_t cluster;           /* cluster holding `slot` (cluster directories) */
    uint32_t cluster_first_slot;
} cursor;

static bool fixed_root(const fat_volume *vol, uint32_t first)
{
    return first == 0 && vol->geo.type != FAT_TYPE_32;
}

static uint32_t root_key(const fat_volume *vol)
{
    return vol->geo.type == FAT_TYPE_32 ? vol->geo.root_cluster : 0;
}

static void cursor_init(cursor *c, uint32_t first)
{
    c->first = first;
    c->slot = 0;
    c->cluster = first;
    c->cluster_first_slot = 0;
}

/* Byte offset of c->slot; END_OF_DIRECTORY past the directory's end (or a broken chain:
 * pass 2 judges chains). */
static vfs_status cursor_offset(fat_volume *vol, cursor *c, uint64_t *off)
{
    if (c->slot >= FAT_DIR_MAX_ENTRIES)
        return VFS_END_OF_DIRECTORY;
    if (fixed_root(vol, c->first)) {
        if (c->slot >= vol->geo.root_entries)
            return VFS_END_OF_DIRECTORY;
        *off = vol->geo.root_dir_offset + (uint64_t)c->slot * FAT_DIRENT_SIZE;
        return VFS_OK;
    }
    uint32_t per = vol->geo.bytes_per_cluster / FAT_DIRENT_SIZE;
    if (c->slot < c->cluster_first_slot) {
        c->cluster = c->first;
        c->cluster_first_slot = 0;
    }
    while (c->slot >= c->cluster_first_slot + per) {
        uint32_t next;
        vfs_status st = fat_table_get(vol, c->cluster, &next);
        if (st != VFS_OK)
            return st;
        if (!fat_cluster_valid(vol, next))
            return VFS_END_OF_DIRECTORY;
        c->cluster = next;
        c->cluster_first_slot += per;
    }
    if (!fat_cluster_valid(vol, c->cluster))
        return VFS_END_OF_DIRECTORY;
    *off = fat_cluster_offset(&vol->geo, c->cluster) + (uint64_t)(c->slot - c->cluster_first_slot) * FAT_DIRENT_SIZE;
    return VFS_OK;
}

static vfs_status read_entry(fat_volume *vol, uint64_t off, uint8_t e[32])
{
    return vfs_status_from_blk(blk_cache_read_bytes(vol->cache, off, e, 32));
}

static bool is_lfn(const uint8_t *e)
{
    return (e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME;
}

static bool is_live_short(const uint8_t *e)
{
    return e[0] != FAT_DIRENT_END && e[0] != FAT_DIRENT_DELETED && !is_lfn(e);
}

static bool is_dot(const uint8_t *e)
{
    return e[0] == '.';
}

static vfs_status delete_slots(fat_volume *vol, const uint64_t *offs, uint32_t n)
{
    static const uint8_t deleted = FAT_DIRENT_DELETED;
    fat_dir_edit edits[FAT_LFN_MAX_ENTRIES + 1];
    for (uint32_t i = 0; i < n; i++)
        edits[i] = (fat_dir_edit){ offs[i], &deleted, 1 };
    return fat_dir_remove_set(vol, edits, n);
}

/* ---- the walk ---------------------------------------------------------------------------------- */

typedef struct frame {
    uint32_t first;
    uint32_t slot;              /* where to go on in it */
} frame;

typedef struct recovery recovery;
/* Called for each entry; returns the first cluster of a directory to enter next, or 0. */
typedef vfs_status (*visit_fn)(recovery *r, cursor *c, uint64_t off, uint8_t e[32], uint32_t *enter);
/* Called when a directory is entered or taken up again, and when it ends. */
typedef void (*dir_fn)(recovery *r, uint32_t first);
typedef vfs_status (*end_fn)(recovery *r, uint32_t first);

struct recovery {
    fat_volume *vol;
    fat_mount_report *rep;
    frame stack[RECOVER_STACK];
    /* pass 1: the long-name sequence open in the current directory */
    fat_lfn_state lfn;
    uint64_t lfn_at[FAT_LFN_MAX_ENTRIES];
    uint32_t lfn_slot_first;
    uint32_t lfn_count;
    bool record_open;           /* a rename record is waiting for the set after it */
    uint64_t record_at;
    uint32_t record_slot;
    fat_rename_record record;
    bool damaged;               /* pass 2 met damage a cut does not cause */
};

/* The slot in directory `parent` of the directory entry whose first cluster is `child`. */
static vfs_status find_in_parent(fat_volume *vol, uint32_t parent, uint32_t child, uint32_t *slot)
{
    cursor c;
    cursor_init(&c, parent);
    for (;; c.slot++) {
        uint64_t off;
        uint8_t e[32];
        vfs_status st = cursor_offset(vol, &c, &off);
        if (st == VFS_OK)
            st = read_entry(vol, off, e);
        if (st == VFS_END_OF_DIRECTORY || (st == VFS_OK && e[0] == FAT_DIRENT_END))
            return VFS_CORRUPT;
        if (st != VFS_OK)
            return st;
        if (is_live_short(e) && !is_dot(e) && (e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) && fat_raw_cluster(vol, e) == child) {
            *slot = c.slot;
            return VFS_OK;
        }
    }
}

/* Depth-first over every directory reachable from the root. Directories are entered once
 * (the visitor marks them in the reach map when it asks to enter one). The stack keeps the
 * deepest RECOVER_STACK parents; a parent that fell off it is found through "..". */
static vfs_status walk(recovery *r, visit_fn visit, dir_fn enter_dir, end_fn leave_dir)
{
    fat_volume *vol = r->vol;
    cursor c;
    cursor_init(&c, root_key(vol));
    uint32_t depth = 0, held = 0;
    enter_dir(r, c.first);
    for (;;) {
        uint64_t off;
        uint8_t e[32];
        vfs_status st = cursor_offset(vol, &c, &off);
        if (st == VFS_OK)
            st = read_entry(vol, off, e);
        bool end = st == VFS_END_OF_DIRECTORY || (st == VFS_OK && e[0] == FAT_DIRENT_END);
        if (!end) {
            if (st != VFS_OK)
                return st;
            uint32_t child = 0;
            st = visit(r, &c, off, e, &child);
            if (st != VFS_OK)
                return st;
            c.slot++;
            if (child != 0) {
                if (held == RECOVER_STACK) {
                    for (uint32_t i = 1; i < RECOVER_STACK; i++)
                        r->stack[i - 1] = r->stack[i];
                    held--;
                }
                r->stack[held++] = (frame){ c.first, c.slot };
                depth++;
                cursor_init(&c, child);
                enter_dir(r, child);
            }
            continue;
        }
        st = leave_dir(r, c.first);
        if (st != VFS_OK)
            return st;
        if (depth == 0)
            return VFS_OK;
        depth--;
        frame f;
        if (held > 0) {
            f = r->stack[--held];
        } else {
            /* The parent is what the ".." of the directory just left names. */
            uint32_t child = c.first;
            uint8_t dd[32];
            cursor_init(&c, child);
            c.slot = 1;
            st = cursor_offset(vol, &c, &off);
            if (st == VFS_OK)
                st = read_entry(vol, off, dd);
            if (st == VFS_END_OF_DIRECTORY || (st == VFS_OK && (dd[0] != '.' || dd[1] != '.')))
                return VFS_CORRUPT;
            if (st != VFS_OK)
                return st;
            uint32_t parent = fat_raw_cluster(vol, dd);
            if (parent == 0)
                parent = root_key(vol);
            uint32_t slot;
            st = find_in_parent(vol, parent, child, &slot);
            if (st != VFS_OK)
                return st;
            f = (frame){ parent, slot + 1u };
        }
        cursor_init(&c, f.first);
        c.slot = f.slot;
        enter_dir(r, f.first);
    }
}

/* ---- pass 1: names ------------------------------------------------------------------------------ */

static void names_enter(recovery *r, uint32_t first)
{
    (void)first;
    fat_lfn_reset(&r->lfn);
    r->lfn_count = 0;
    r->record_open = false;
}

static vfs_status clear_record(recovery *r);
static vfs_status drop_orphans(recovery *r, uint32_t n, uint64_t current, bool with_current);

/* At the end of a directory: an open long-name sequence has no short entry, an open
 * record no set after it. */
static vfs_status names_leave(recovery *r, uint32_t first)
{
    (void)first;
    vfs_status st = drop_orphans(r, r->lfn_count, 0, false);
    if (st == VFS_OK && r->record_open)
        st = clear_record(r);
    return st;
}

/* Deletes the first `n` long-name entries of the open sequence (the assembler dropped
 * them), plus the one at `current` when `with_current`. */
static vfs_status drop_orphans(recovery *r, uint32_t n, uint64_t current, bool with_current)
{
    uint64_t all[FAT_LFN_MAX_ENTRIES + 1];
    uint32_t m = 0;
    for (uint32_t i = 0; i < r->lfn_count; i++)
        all[m++] = r->lfn_at[i];
    if (with_current)
        all[m++] = current;
    if (n > m)
        n = m;
    for (uint32_t i = 0; i < n; i++) {
        static const uint8_t deleted = FAT_DIRENT_DELETED;
        fat_dir_edit e = { all[i], &deleted, 1 };
        vfs_status st = fat_dir_apply(r->vol, &e, 1);
        if (st != VFS_OK)
            return st;
        r->rep->orphans_removed++;
    }
    r->lfn_count = 0;
    for (uint32_t i = n; i < m; i++)
        r->lfn_at[r->lfn_count++] = all[i];
    return VFS_OK;
}

static vfs_status clear_record(recovery *r)
{
    uint8_t cleared[32];
    fat_rename_record_clear(cleared);
    fat_dir_edit e = { r->record_at, cleared, FAT_DIRENT_SIZE };
    r->record_open = false;
    return fat_dir_apply(r->vol, &e, 1);
}

/* The rename record before the set ending in short entry `e` (at slot `slot`, `lfn` long
 * entries, in directory `dir`): finish the rename (fat_intent.h). */
static vfs_status finish_rename(recovery *r, uint32_t dir, uint32_t slot, const uint8_t *e)
{
    fat_volume *vol = r->vol;
    const fat_rename_record *rec = &r->record;
    uint32_t cluster = fat_raw_cluster(vol, e);
    uint32_t src_dir = rec->source_dir;
    bool same = (src_dir == dir || (src_dir == 0 && dir == root_key(vol))) && rec->source_slot == slot;
    cursor c;
    cursor_init(&c, src_dir == 0 ? root_key(vol) : src_dir);
    if (src_dir != 0 && !fat_cluster_valid(vol, src_dir))
        same = true; /* nowhere to look */
    uint64_t offs[FAT_LFN_MAX_ENTRIES + 1];
    uint32_t n = 0;
    uint8_t old[32];
    c.slot = rec->source_slot;
    vfs_status st = same ? VFS_NO_FILE : cursor_offset(vol, &c, &offs[0]);
    if (st == VFS_OK)
        st = read_entry(vol, offs[0], old);
    if (st == VFS_OK && fat_rename_record_names_old(rec, old, fat_raw_cluster(vol, old), cluster)) {
        /* The old name is still there: remove it, with the long-name entries that are its. */
        uint8_t sum = fat_lfn_checksum(old);
        uint64_t key = offs[0];
        for (uint32_t k = 1; k <= rec->source_lfn_count && k <= rec->source_slot; k++) {
            uint8_t l[32];
            uint64_t at;
            c.slot = rec->source_slot - k;
            st = cursor_offset(vol, &c, &at);
            if (st == VFS_OK)
                st = read_entry(vol, at, l);
            if (st != VFS_OK || !fat_rename_record_old_lfn(l, sum))
                break;
            offs[n++] = at;
        }
        offs[n++] = key; /* the short entry's edit last: its block goes first */
        st = delete_slots(vol, offs, n);
        if (st != VFS_OK)
            return st;
        r->rep->renames_completed++;
    } else if (st != VFS_OK && st != VFS_NO_FILE && st != VFS_END_OF_DIRECTORY) {
        return st;
    }
    if (rec->moved_directory && (e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) && fat_cluster_valid(vol, cluster)) {
        /* The moved directory's ".." names its new parent (0 for the root). */
        uint64_t at = fat_cluster_offset(&vol->geo, cluster) + FAT_DIRENT_SIZE;
        uint8_t dd[32];
        st = read_entry(vol, at, dd);
        if (st != VFS_OK)
            return st;
        uint32_t parent = dir == root_key(vol) ? 0 : dir;
        if (dd[0] == '.' && dd[1] == '.' && fat_raw_cluster(vol, dd) != parent) {
            fat_raw_set_cluster(vol, dd, parent);
            fat_dir_edit ed = { at, dd, FAT_DIRENT_SIZE };
            st = fat_dir_apply(vol, &ed, 1);
            if (st != VFS_OK)
                return st;
        }
    }
    /* The old name's removal (and "..") durable before the record goes. */
    blk_cache_order_point(vol->cache); /* rule: rename, step 3 */
    return clear_record(r);
}

static vfs_status names_visit(recovery *r, cursor *c, uint64_t off, uint8_t e[32], uint32_t *enter)
{
    fat_volume *vol = r->vol;
    *enter = 0;
    if (e[0] == FAT_DIRENT_DELETED) {
        vfs_status st = drop_orphans(r, r->lfn_count, 0, false);
        fat_lfn_reset(&r->lfn);
        if (st != VFS_OK)
            return st;
        if (r->record_open) {
            vfs_status st2 = clear_record(r); /* nothing live after it: stale */
            if (st2 != VFS_OK)
                return st2;
        }
        if (fat_rename_record_decode(e, &r->record)) {
            r->record_open = true;
            r->record_at = off;
            r->record_slot = c->slot;
        }
        return VFS_OK;
    }
    if (is_lfn(e)) {
        uint32_t before = r->lfn.orphans;
        fat_lfn_feed(&r->lfn, e);
        uint32_t dropped = r->lfn.orphans - before;
        if (dropped > 0) {
            vfs_status st = drop_orphans(r, dropped, off, true);
            if (st != VFS_OK)
                return st;
        } else if (r->lfn_count < FAT_LFN_MAX_ENTRIES) {
            if (r->lfn_count == 0)
                r->lfn_slot_first = c->slot;
            r->lfn_at[r->lfn_count++] = off;
        }
        if (r->lfn.entries == 0)
            r->lfn_count = 0;
        return VFS_OK;
    }
    /* A short entry (or "." / "..", or a label): it closes the open sequence. */
    uint32_t before = r->lfn.orphans, first_lfn = r->lfn_slot_first, open = r->lfn_count;
    const uint16_t *units;
    size_t len;
    uint32_t matched = fat_lfn_finish(&r->lfn, e, &units, &len);
    vfs_status st = drop_orphans(r, r->lfn.orphans - before, 0, false);
    r->lfn_count = 0;
    if (st != VFS_OK)
        return st;
    if (r->record_open) {
        /* The set right after the record is the rename's new name. */
        if (fat_rename_record_heads(r->record_slot, e, c->slot, first_lfn, open, matched)) {
            st = finish_rename(r, c->first, c->slot, e);
        } else {
            st = clear_record(r);
        }
        if (st != VFS_OK)
            return st;
    }
    if (is_dot(e) || (e[FAT_DIRENT_ATTR] & FAT_ATTR_VOLUME_ID) || !(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY))
        return VFS_OK;
    uint32_t child = fat_raw_cluster(vol, e);
    if (fat_cluster_valid(vol, child) && child != root_key(vol) && fat_reach_mark(vol, child))
        *enter = child;
    return VFS_OK;
}

/* ---- pass 2: reach ------------------------------------------------------------------------------ */

static void reach_enter(recovery *r, uint32_t first)
{
    (void)r;
    (void)first;
}

static vfs_status reach_leave(recovery *r, uint32_t first)
{
    (void)r;
    (void)first;
    return VFS_OK;
}

/* Walk a directory's chain from its (already marked) first cluster to the end. */
static vfs_status reach_directory_chain(recovery *r, uint32_t first)
{
    fat_volume *vol = r->vol;
    uint32_t c = first;
    for (uint32_t steps = 0; steps < vol->geo.cluster_count; steps++) {
        uint32_t next;
        vfs_status st = fat_table_get(vol, c, &next);
        if (st != VFS_OK)
            return st;
        if (fat_is_eoc(vol, next))
            return VFS_OK;
        if (!fat_cluster_valid(vol, next) || !fat_reach_mark(vol, next)) {
            r->damaged = true; /* broken, looping or shared */
            return VFS_OK;
        }
        c = next;
    }
    r->damaged = true;
    return VFS_OK;
}

/* A file's chain: the clusters its size needs; a longer chain is cut there (its tail stays
 * unmarked, so pass 3 frees it). */
static vfs_status reach_file(recovery *r, uint64_t off, uint8_t e[32])
{
    fat_volume *vol = r->vol;
    uint32_t first = fat_raw_cluster(vol, e);
    uint32_t size = af_load_le32(e + FAT_DIRENT_SIZE_BYTES);
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint32_t need = (uint32_t)(((uint64_t)size + cs - 1) / cs);
    if (first == 0) {
        r->damaged |= size != 0;
        return VFS_OK;
    }
    if (!fat_cluster_valid(vol, first)) {
        r->damaged = true;
        return VFS_OK;
    }
    if (need == 0) {
        /* A cluster but no size: the file is empty; its chain goes with pass 3. */
        fat_raw_set_cluster(vol, e, 0);
        fat_dir_edit ed = { off, e, FAT_DIRENT_SIZE };
        r->rep->chains_cut++;
        return fat_dir_apply(vol, &ed, 1);
    }
    uint32_t c = first;
    for (uint32_t k = 1;; k++) {
        if (!fat_reach_mark(vol, c)) {
            r->damaged = true;
            return VFS_OK;
        }
        uint32_t next;
        vfs_status st = fat_table_get(vol, c, &next);
        if (st != VFS_OK)
            return st;
        if (k == need) {
            if (fat_is_eoc(vol, next))
                return VFS_OK;
            r->rep->chains_cut++;
            return fat_table_set(vol, c, fat_eoc_value(vol->geo.type));
        }
        if (fat_is_eoc(vol, next) || !fat_cluster_valid(vol, next)) {
            r->damaged = true; /* shorter than its size, or broken */
            return VFS_OK;
        }
        c = next;
    }
}

/* Stops the walk (CORRUPT) at the first damage: nothing will be freed anyway. */
static vfs_status reach_visit(recovery *r, cursor *c, uint64_t off, uint8_t e[32], uint32_t *enter)
{
    (void)c;
    fat_volume *vol = r->vol;
    *enter = 0;
    if (!is_live_short(e) || is_dot(e) || (e[FAT_DIRENT_ATTR] & FAT_ATTR_VOLUME_ID))
        return VFS_OK;
    vfs_status st;
    if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY)) {
        st = reach_file(r, off, e);
    } else {
        uint32_t child = fat_raw_cluster(vol, e);
        if (!fat_cluster_valid(vol, child) || !fat_reach_mark(vol, child))
            r->damaged = true;
        st = r->damaged ? VFS_OK : reach_directory_chain(r, child);
        if (st == VFS_OK && !r->damaged)
            *enter = child;
    }
    return st == VFS_OK && r->damaged ? VFS_CORRUPT : st;
}

/* ---- recovery --------------------------------------------------------------------------------- */

vfs_status fat_recover(fat_volume *vol)
{
    recovery r;
    af_memset(&r, 0, sizeof r);
    r.vol = vol;
    r.rep = &vol->report;
    uint32_t root = root_key(vol);

    fat_reach_reset(vol);
    if (root != 0)
        fat_reach_mark(vol, root);
    vfs_status st = walk(&r, names_visit, names_enter, names_leave);
    if (st == VFS_OK) {
        /* The names' changes (records cleared last in each rename) before the reach walk
         * cuts chains. */
        blk_cache_order_point(vol->cache); /* rule: names before reach */
        fat_reach_reset(vol);
        if (root != 0) {
            fat_reach_mark(vol, root);
            st = reach_directory_chain(&r, root);
        }
    }
    if (st == VFS_OK && !r.damaged)
        st = walk(&r, reach_visit, reach_enter, reach_leave);
    if (st == VFS_CORRUPT) {
        r.damaged = true; /* damage, or a directory not found again through ".." */
        st = VFS_OK;
    }
    if (st != VFS_OK)
        return st;
    if (r.damaged) {
        vol->report.needs_check = true;
        st = fat_free_map_build(vol);
        if (st == VFS_OK)
            vol->free_map_ready = true;
        return st;
    }
    /* Chains cut (and entries emptied) before their clusters are freed. */
    blk_cache_order_point(vol->cache); /* rule: truncate before free */
    st = fat_table_release_unreached(vol, &vol->report.lost_freed);
    if (st == VFS_OK)
        st = fat_table_sync_copies(vol, &vol->report.fat_blocks_copied);
    if (st == VFS_OK)
        st = vfs_status_from_blk(blk_cache_flush(vol->cache));
    if (st == VFS_OK)
        vol->report.recovered = true;
    return st;
}
