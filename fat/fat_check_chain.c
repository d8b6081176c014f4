/* fat_check: the FAT: reading and writing entries of the active FAT, walking chains (loops,
 * cross-links, bad links), cutting them, lost clusters, and the FAT copies. */
#include "fat/fat_check_internal.h"

static uint64_t active_fat(const fat_checker *c)
{
    return c->g->fat_offset + (uint64_t)c->g->active_fat * c->g->fat_bytes;
}

void fat_check_reader_init(fat_check_reader *r, blk_cache *cache, const fat_geometry *g, uint32_t copy)
{
    r->cache = cache;
    r->g = g;
    r->copy = copy;
    r->window_valid = false;
    r->io = VFS_OK;
}

static uint8_t reader_byte(fat_check_reader *r, uint64_t off)
{
    uint64_t base = r->g->fat_offset + (uint64_t)r->copy * r->g->fat_bytes;
    uint64_t w = base + (off - base) / FAT_CHECK_WINDOW * FAT_CHECK_WINDOW;
    if (!r->window_valid || r->window_offset != w) {
        r->window_valid = false;
        if (r->io != VFS_OK)
            return 0xFF;
        if (blk_cache_read_bytes(r->cache, w, r->window, FAT_CHECK_WINDOW) != BLK_OK) {
            r->io = VFS_IO_ERROR;
            return 0xFF;
        }
        r->window_offset = w;
        r->window_valid = true;
    }
    return r->window[off - w];
}

uint32_t fat_check_reader_get(fat_check_reader *r, uint32_t cl)
{
    uint64_t off = fat_entry_offset(r->g, r->copy, cl);
    uint8_t b[4];
    for (uint32_t i = 0; i < fat_entry_size(r->g->type); i++)
        b[i] = reader_byte(r, off + i);
    uint32_t v = fat_entry_get(r->g->type, cl, b);
    return r->io == VFS_OK ? v : fat_eoc_value(r->g->type);
}

uint32_t fat_check_fat_get(fat_checker *c, uint32_t cl)
{
    if (c->io != VFS_OK)
        return c->eoc;
    uint32_t v = fat_check_reader_get(&c->fat, cl);
    c->io = c->fat.io;
    return v;
}

void fat_check_fat_set_copy(fat_checker *c, uint32_t copy, uint32_t cl, uint32_t v)
{
    uint32_t len = fat_entry_size(c->g->type);
    uint64_t off = fat_entry_offset(c->g, copy, cl);
    uint8_t b[4];
    if (!fat_check_read(c, off, b, len))
        return;
    fat_entry_put(c->g->type, cl, b, v);
    fat_check_write(c, off, b, len);
    if (copy == c->g->active_fat)
        c->fat.window_valid = false;
}

bool fat_check_fat_mirrored(const fat_checker *c, uint32_t copy)
{
    return copy == c->g->active_fat || !(c->g->ext_flags & FAT_EXT_FLAGS_NO_MIRROR);
}

void fat_check_fat_set(fat_checker *c, uint32_t cl, uint32_t v)
{
    for (uint32_t copy = 0; copy < c->g->fat_count; copy++) {
        if (fat_check_fat_mirrored(c, copy))
            fat_check_fat_set_copy(c, copy, cl, v);
    }
}

bool fat_check_cluster_valid(const fat_checker *c, uint32_t cl)
{
    return cl >= FAT_FIRST_CLUSTER && cl <= c->g->max_cluster;
}

/* ---- chains ----------------------------------------------------------------------------------- */

/* Stops at the end, a loop, a cross-link or a bad link. Bounded: `current` makes every
 * cluster appear at most once. */
/* Starts a finding about the chain being walked. */
static void chain_finding(fat_checker *c, uint32_t *counter, const uint8_t *name, uint32_t dir)
{
    fat_check_finding(c, counter, name, dir);
    if (!name) {
        fat_check_msg_str(c, "directory at cluster ");
        fat_check_msg_u64(c, dir);
        fat_check_msg_str(c, ": ");
    }
}

fat_check_chain fat_check_walk_chain(fat_checker *c, uint32_t first, const uint8_t *name, uint32_t dir)
{
    fat_check_chain ch = {0, false, false};
    uint32_t prev = 0, cl = first;
    for (;;) {
        if (fat_check_bit(c->current, cl)) {
            chain_finding(c, &c->r->loops, name, dir);
            fat_check_msg_str(c, "cluster chain loops back to cluster ");
            fat_check_msg_u64(c, cl);
            bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
            if (fix)
                fat_check_fat_set(c, prev, c->eoc);
            fat_check_finish(c, fix, "chain ended before the loop");
            break;
        }
        if (fat_check_bit(c->used, cl)) {
            if (prev == 0) {
                ch.shared_start = true; /* the caller reports it: what to do depends on the entry */
                break;
            }
            chain_finding(c, &c->r->cross_links, name, dir);
            fat_check_msg_str(c, "cluster ");
            fat_check_msg_u64(c, cl);
            fat_check_msg_str(c, " is also used by another chain");
            bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
            if (fix)
                fat_check_fat_set(c, prev, c->eoc);
            ch.runs_on = !fix;
            fat_check_finish(c, fix, "chain ended before the shared cluster");
            break;
        }
        fat_check_bit_set(c->current, cl);
        fat_check_bit_set(c->used, cl);
        ch.length++;
        uint32_t next = fat_check_fat_get(c, cl);
        if (next >= c->eoc_min || c->io != VFS_OK)
            break;
        if (!fat_check_cluster_valid(c, next) || next == c->bad) {
            chain_finding(c, &c->r->bad_links, name, dir);
            fat_check_msg_str(c, "cluster ");
            fat_check_msg_u64(c, cl);
            fat_check_msg_str(c, next == 0            ? " links to a free cluster"
                                 : next == c->bad ? " links to a bad cluster"
                                                  : " links out of range to ");
            if (next != 0 && next != c->bad)
                fat_check_msg_u64(c, next);
            bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_CHAINS);
            if (fix)
                fat_check_fat_set(c, cl, c->eoc);
            fat_check_finish(c, fix, "chain ended there");
            break;
        }
        prev = cl;
        cl = next;
    }
    cl = first;
    for (uint32_t i = 0; i < ch.length; i++) {
        fat_check_bit_clear(c->current, cl);
        cl = fat_check_fat_get(c, cl);
        if (!fat_check_cluster_valid(c, cl))
            break;
    }
    return ch;
}

/* The forgotten clusters are no longer reached, so the lost-cluster scan frees them unless
 * another chain claims them first (a cross-linked tail is then kept by its other owner
 * instead of being freed under it). */
void fat_check_chain_forget(fat_checker *c, uint32_t cl, uint32_t count)
{
    for (uint32_t i = 0; i < count && fat_check_cluster_valid(c, cl); i++) {
        fat_check_bit_clear(c->used, cl);
        cl = fat_check_fat_get(c, cl);
    }
}

void fat_check_chain_cut(fat_checker *c, uint32_t first, uint32_t keep, uint32_t length)
{
    uint32_t cl = first;
    for (uint32_t i = 1; i < keep; i++)
        cl = fat_check_fat_get(c, cl);
    uint32_t rest = fat_check_fat_get(c, cl);
    fat_check_fat_set(c, cl, c->eoc);
    fat_check_chain_forget(c, rest, length - keep);
}

/* ---- FAT copies and lost clusters ------------------------------------------------------------ */

void fat_check_fat_copies(fat_checker *c)
{
    if (c->g->ext_flags & FAT_EXT_FLAGS_NO_MIRROR)
        return;
    uint8_t a[FAT_CHECK_WINDOW], b[FAT_CHECK_WINDOW];
    for (uint32_t copy = 0; copy < c->g->fat_count; copy++) {
        if (copy == c->g->active_fat)
            continue;
        for (uint64_t off = 0; off < c->g->fat_bytes; off += FAT_CHECK_WINDOW) {
            size_t len = (size_t)af_min_u64(FAT_CHECK_WINDOW, c->g->fat_bytes - off);
            if (!fat_check_read(c, active_fat(c) + off, a, len) ||
                !fat_check_read(c, c->g->fat_offset + copy * c->g->fat_bytes + off, b, len))
                return;
            if (af_memcmp(a, b, len) != 0) {
                fat_check_finding(c, &c->r->fat_mismatches, NULL, 0);
                fat_check_msg_str(c, "FAT ");
                fat_check_msg_u64(c, copy + 1);
                fat_check_msg_str(c, " differs from FAT ");
                fat_check_msg_u64(c, c->g->active_fat + 1);
                fat_check_finish(c, fat_check_fixing(c, FAT_CHECK_REPAIR_FAT_COPIES), "copied from the active FAT");
                c->fats_differ = true;
                break;
            }
        }
    }
}

void fat_check_mirror_fats(fat_checker *c)
{
    if (!c->fats_differ || !fat_check_fixing(c, FAT_CHECK_REPAIR_FAT_COPIES))
        return;
    uint8_t a[FAT_CHECK_WINDOW];
    for (uint64_t off = 0; off < c->g->fat_bytes; off += FAT_CHECK_WINDOW) {
        size_t len = (size_t)af_min_u64(FAT_CHECK_WINDOW, c->g->fat_bytes - off);
        if (!fat_check_read(c, active_fat(c) + off, a, len))
            return;
        for (uint32_t copy = 0; copy < c->g->fat_count; copy++) {
            if (copy != c->g->active_fat)
                fat_check_write(c, c->g->fat_offset + copy * c->g->fat_bytes + off, a, len);
        }
    }
}

uint32_t fat_check_scan_fat(fat_checker *c)
{
    uint32_t first_free = 0, lost = 0;
    /* never free what a directory the walk could not finish may still use */
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_LOST) && c->unwalked == 0;
    for (uint32_t cl = FAT_FIRST_CLUSTER; cl <= c->g->max_cluster && c->io == VFS_OK; cl++) {
        uint32_t v = fat_check_fat_get(c, cl);
        if (v == FAT_ENTRY_FREE) {
            c->r->free_clusters++;
            if (first_free == 0)
                first_free = cl;
        } else if (v == c->bad) {
            c->r->bad_clusters++;
        } else if (fat_check_bit(c->used, cl)) {
            c->r->used_clusters++;
        } else {
            lost++;
            if (fix) {
                fat_check_fat_set(c, cl, FAT_ENTRY_FREE);
                c->r->free_clusters++;
                if (first_free == 0)
                    first_free = cl;
            } else {
                c->r->used_clusters++;
            }
        }
    }
    if (lost > 0) {
        c->r->lost_clusters += lost;
        c->r->problems++;
        c->msg_len = 0;
        fat_check_msg_u64(c, lost);
        fat_check_msg_str(c, " lost cluster");
        fat_check_msg_str(c, lost == 1 ? "" : "s");
        fat_check_msg_str(c, " (allocated, in no chain)");
        if (c->unwalked != 0) {
            fat_check_msg_str(c, "; the directory at cluster ");
            fat_check_msg_u64(c, c->unwalked);
            fat_check_msg_str(c, " could not be walked to its end, so they may be in use: kept");
            if (fat_check_fixing(c, FAT_CHECK_REPAIR_LOST))
                c->r->lost_kept += lost;
        }
        fat_check_finish(c, fix, "freed");
    }
    return first_free;
}
