/* fat_check: rename records (fat_intent.h), finished before anything else is checked.
 *
 * A cut in the middle of a rename between two directory blocks leaves the file under its
 * old and its new name, sharing its clusters, with a record beside the new name. The
 * generic repairs would read that as a cross-link and empty one of the names; instead the
 * records are resolved first, by the rule mount recovery keeps (the predicates of
 * fat_intent.h): the old name is removed when it is still the record's (same short name,
 * same first cluster), a moved directory's ".." is set to its new parent, and then, after
 * an order point, the record is cleared. Nothing is freed here, so no cluster of the file
 * can be; the walk that follows sees the file once.
 *
 * The pass walks every directory reachable from the root once, in rounds over a bitmap of
 * directories still to read (the `deferred` map; `current` marks the ones already queued),
 * both cleared again at the end: memory does not grow with depth. A directory is read to
 * its end marker, its chain's end, or FAT_DIR_MAX_ENTRIES slots. */
#include "fat/fat_check_internal.h"
#include "fat/fat_intent.h"

typedef struct record_scan {
    uint32_t dir;            /* the directory being read (0: the FAT12/16 fixed root) */
    uint32_t pending;        /* directories queued in c->deferred */
    bool open;               /* a record waits for the set after it */
    fat_rename_record rec;
    uint64_t rec_at;
    uint32_t rec_slot;
    uint32_t lfn_first;      /* slot of the first entry of the open long-name sequence */
} record_scan;

static uint32_t root_key(const fat_checker *c)
{
    return c->g->type == FAT_TYPE_32 ? c->g->root_cluster : 0;
}

/* Device offset of slot `slot` of the directory at `first` (0: the root); false past the
 * end of its chain. */
static bool slot_at(fat_checker *c, uint32_t first, uint32_t slot, uint64_t *at)
{
    if (first == 0 && c->g->type != FAT_TYPE_32) {
        if (slot >= c->g->root_entries)
            return false;
        *at = c->g->root_dir_offset + (uint64_t)slot * FAT_DIRENT_SIZE;
        return true;
    }
    uint32_t per = c->g->bytes_per_cluster / FAT_DIRENT_SIZE, cl = first == 0 ? c->g->root_cluster : first;
    for (uint32_t n = slot / per; n > 0 && fat_check_cluster_valid(c, cl); n--)
        cl = fat_check_fat_get(c, cl);
    if (!fat_check_cluster_valid(c, cl))
        return false;
    *at = fat_cluster_offset(c->g, cl) + (uint64_t)(slot % per) * FAT_DIRENT_SIZE;
    return true;
}

static void clear_record(fat_checker *c, record_scan *s)
{
    uint8_t cleared[FAT_DIRENT_SIZE];
    fat_rename_record_clear(cleared);
    fat_check_write(c, s->rec_at, cleared, sizeof cleared);
    s->open = false;
}

/* A record with no live set after it: its rename was finished, or never began. */
static void stale_record(fat_checker *c, record_scan *s)
{
    fat_check_finding(c, &c->r->renames, NULL, 0);
    fat_check_msg_str(c, "directory at cluster ");
    fat_check_msg_u64(c, s->dir);
    fat_check_msg_str(c, ": a rename record left after its rename");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_RENAMES);
    if (fix)
        clear_record(c, s);
    s->open = false;
    fat_check_finish(c, fix, "cleared");
}

/* Removes the old short entry at `old_at` (slot `slot` of `dir`) and the long-name
 * entries before it that are its. */
static void remove_old_name(fat_checker *c, const fat_rename_record *rec, uint32_t dir, uint64_t old_at,
                            const uint8_t *old)
{
    static const uint8_t deleted = FAT_DIRENT_DELETED;
    uint8_t sum = fat_lfn_checksum(old);
    for (uint32_t k = 1; k <= rec->source_lfn_count && k <= rec->source_slot; k++) {
        uint64_t at;
        uint8_t l[FAT_DIRENT_SIZE];
        if (!slot_at(c, dir, rec->source_slot - k, &at) || !fat_check_read(c, at, l, sizeof l) ||
            !fat_rename_record_old_lfn(l, sum))
            break;
        fat_check_write(c, at, &deleted, 1);
    }
    fat_check_write(c, old_at, &deleted, 1);
}

/* The record heads the live set ending in `e` (slot `slot`): finish its rename. */
static void finish_rename(fat_checker *c, record_scan *s, const uint8_t *e, uint32_t slot)
{
    const fat_rename_record *rec = &s->rec;
    uint32_t cluster = fat_check_entry_cluster(c, e), src = rec->source_dir;
    bool same = (src == s->dir || (src == 0 && s->dir == root_key(c))) && rec->source_slot == slot;
    uint64_t old_at = 0;
    uint8_t old[FAT_DIRENT_SIZE];
    bool old_named = !same && (src == 0 || fat_check_cluster_valid(c, src)) &&
                     slot_at(c, src, rec->source_slot, &old_at) && fat_check_read(c, old_at, old, sizeof old) &&
                     fat_rename_record_names_old(rec, old, fat_check_entry_cluster(c, old), cluster);
    /* a moved directory's ".." names its new parent (0 for the root) */
    uint64_t dotdot_at = 0;
    uint8_t dd[FAT_DIRENT_SIZE];
    uint32_t parent = s->dir == root_key(c) ? 0 : s->dir;
    bool dotdot_stale = rec->moved_directory && (e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) &&
                        fat_check_cluster_valid(c, cluster) &&
                        fat_check_read(c, dotdot_at = fat_cluster_offset(c->g, cluster) + FAT_DIRENT_SIZE, dd,
                                       sizeof dd) &&
                        fat_check_is_dot_name(dd, 2) && fat_check_entry_cluster(c, dd) != parent;
    fat_check_finding(c, &c->r->renames, e, s->dir);
    if (old_named) {
        fat_check_msg_str(c, "interrupted rename: its old name ");
        fat_check_msg_name(c, old);
        fat_check_msg_str(c, " (directory at cluster ");
        fat_check_msg_u64(c, src == 0 ? root_key(c) : src);
        fat_check_msg_str(c, ") is still there, sharing its clusters");
    } else {
        fat_check_msg_str(c, dotdot_stale ? "interrupted rename: the moved directory's '..' names its old parent"
                                          : "a rename record left after its rename");
    }
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_RENAMES);
    if (fix) {
        if (old_named)
            remove_old_name(c, rec, src, old_at, old);
        if (dotdot_stale) {
            fat_check_set_entry_cluster(c, dd, parent);
            fat_check_write(c, dotdot_at, dd, sizeof dd);
        }
        /* the old name's removal (and "..") durable before the record goes */
        fat_check_order_point(c);
        clear_record(c, s);
    }
    s->open = false;
    fat_check_finish(c, fix, old_named || dotdot_stale ? "rename finished" : "record cleared");
}

static void queue_dir(fat_checker *c, record_scan *s, uint32_t cl)
{
    if (!fat_check_cluster_valid(c, cl) || cl == root_key(c) || fat_check_bit(c->current, cl))
        return;
    fat_check_bit_set(c->current, cl);
    fat_check_bit_set(c->deferred, cl);
    s->pending++;
}

/* Reads the directory at `first` (0: the fixed root), resolving its records and queueing
 * its subdirectories. */
static void scan_dir(fat_checker *c, record_scan *s, uint32_t first)
{
    s->dir = first;
    s->open = false;
    fat_lfn_reset(&c->lfn);
    bool fixed = first == 0 && c->g->type != FAT_TYPE_32;
    uint32_t per = c->g->bytes_per_cluster / FAT_DIRENT_SIZE, cl = first;
    for (uint32_t slot = 0; slot < FAT_DIR_MAX_ENTRIES && c->io == VFS_OK; slot++) {
        uint64_t at;
        if (fixed) {
            if (slot >= c->g->root_entries)
                break;
            at = c->g->root_dir_offset + (uint64_t)slot * FAT_DIRENT_SIZE;
        } else {
            if (slot > 0 && slot % per == 0)
                cl = fat_check_fat_get(c, cl);
            if (!fat_check_cluster_valid(c, cl))
                break;
            at = fat_cluster_offset(c->g, cl) + (uint64_t)(slot % per) * FAT_DIRENT_SIZE;
        }
        uint8_t e[FAT_DIRENT_SIZE];
        if (!fat_check_read(c, at, e, sizeof e) || e[0] == FAT_DIRENT_END)
            break;
        if (e[0] == FAT_DIRENT_DELETED) {
            fat_lfn_abandon(&c->lfn);
            if (s->open)
                stale_record(c, s);
            if (fat_rename_record_decode(e, &s->rec)) {
                s->open = true;
                s->rec_at = at;
                s->rec_slot = slot;
            }
            continue;
        }
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            fat_lfn_feed(&c->lfn, e);
            if (c->lfn.entries == 1)
                s->lfn_first = slot;
            continue;
        }
        uint32_t open = c->lfn.entries;
        const uint16_t *units;
        size_t len;
        uint32_t matched = fat_lfn_finish(&c->lfn, e, &units, &len);
        if (s->open && fat_rename_record_heads(s->rec_slot, e, slot, s->lfn_first, open, matched))
            finish_rename(c, s, e, slot);
        else if (s->open)
            stale_record(c, s);
        if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_DIRECTORY | FAT_ATTR_VOLUME_ID)) == FAT_ATTR_DIRECTORY &&
            !fat_check_is_dot_name(e, 1) && !fat_check_is_dot_name(e, 2))
            queue_dir(c, s, fat_check_entry_cluster(c, e));
    }
    if (s->open)
        stale_record(c, s);
}

void fat_check_renames(fat_checker *c)
{
    record_scan s = {0};
    scan_dir(c, &s, root_key(c));
    size_t bytes = ((size_t)c->g->max_cluster + 8) / 8;
    while (s.pending > 0 && c->io == VFS_OK) {
        for (size_t i = 0; i < bytes && c->io == VFS_OK; i++) {
            if (i + 8 <= bytes && af_load_le64(c->deferred + i) == 0) {
                i += 7;
                continue;
            }
            for (uint32_t bit = 0; bit < 8 && c->deferred[i] != 0; bit++) {
                uint32_t cl = (uint32_t)(i * 8 + bit);
                if (!fat_check_bit(c->deferred, cl))
                    continue;
                fat_check_bit_clear(c->deferred, cl);
                s.pending--;
                scan_dir(c, &s, cl);
            }
        }
    }
    af_memset(c->current, 0, bytes);
    af_memset(c->deferred, 0, bytes);
    fat_lfn_reset(&c->lfn);
}
