/* fat_check: an fsck with its own FAT reader and directory walker (it must not trust the
 * engine it checks). Two bitmaps over cluster numbers: `used` (reached by some chain) and
 * `current` (in the chain being walked, to tell a loop from a cross-link). */
#include "fat/fat_check.h"

#include "fat/fat_layout.h"
#include "fat/fat_name.h"

#define WINDOW 512u

typedef struct dir_iter {
    uint32_t first;          /* first cluster; 0 for the FAT12/16 fixed root */
    uint32_t cluster;        /* cluster being read */
    uint32_t clusters_left;  /* clusters of the walked chain not yet left behind */
    uint32_t index;          /* entry index in the cluster (or in the fixed root) */
    uint32_t total;          /* entries seen in this directory */
    uint32_t parent;         /* parent's first cluster (0 = root) */
    bool fixed_root;
    bool ended;              /* an end-of-directory entry has been seen */
} dir_iter;

typedef struct checker {
    blk_cache *cache;
    const fat_geometry *g;
    const fat_check_options *opt;
    fat_check_result *r;
    uint8_t *used;
    uint8_t *current;
    uint8_t *names;          /* FAT_CHECK_NAME_SLOTS le64 device offsets (+1) of short entries */
    vfs_status io;
    bool fat_changed;
    uint32_t eoc_min, eoc, bad;
    uint8_t window[WINDOW];  /* cached piece of the active FAT */
    uint64_t window_offset;
    bool window_valid;
    char msg[200];
    size_t msg_len;
    fat_lfn_state lfn;
    uint64_t lfn_at[FAT_LFN_MAX_ENTRIES + 1]; /* device offsets of the open LFN entries */
    uint32_t lfn_count;
    dir_iter stack[FAT_CHECK_MAX_DEPTH + 1];
    bool root_label_seen;
    uint8_t root_label[11];
} checker;

/* ---- messages --------------------------------------------------------------------------- */

static void msg_str(checker *c, const char *s)
{
    while (*s && c->msg_len + 1 < sizeof c->msg)
        c->msg[c->msg_len++] = *s++;
}

static void msg_u64(checker *c, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n > 0 && c->msg_len + 1 < sizeof c->msg)
        c->msg[c->msg_len++] = digits[--n];
}

static void msg_name(checker *c, const uint8_t name[11])
{
    uint16_t u[FAT_SHORT_DISPLAY_MAX];
    size_t n = fat_short_to_utf16(name, 0, u);
    for (size_t i = 0; i < n && c->msg_len + 1 < sizeof c->msg; i++)
        c->msg[c->msg_len++] = u[i] >= 0x20 && u[i] < 0x7F ? (char)u[i] : '?';
}

/* Starts a finding: counts it in *counter and begins its message with the entry's name
 * (NULL for volume-level findings). */
static void finding(checker *c, uint32_t *counter, const uint8_t *name, uint32_t dir)
{
    (*counter)++;
    c->r->problems++;
    c->msg_len = 0;
    if (name) {
        msg_name(c, name);
        msg_str(c, " (directory at cluster ");
        msg_u64(c, dir);
        msg_str(c, "): ");
    }
}

static void finish_msg(checker *c, const char *repair_text)
{
    if (c->opt->repair && repair_text) {
        msg_str(c, "; ");
        msg_str(c, repair_text);
        c->r->repaired++;
    }
    c->msg[c->msg_len] = '\0';
    if (c->opt->log)
        c->opt->log(c->opt->log_ctx, c->msg);
}

/* ---- bitmaps ------------------------------------------------------------------------------- */

static bool bit_get(const uint8_t *map, uint32_t i) { return map[i >> 3] & (1u << (i & 7)); }
static void bit_set(uint8_t *map, uint32_t i) { map[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static void bit_clear(uint8_t *map, uint32_t i) { map[i >> 3] &= (uint8_t)~(1u << (i & 7)); }

static size_t bitmap_bytes(const fat_geometry *g)
{
    return ((size_t)g->max_cluster + 8) / 8;
}

size_t fat_check_memory_needed(const fat_geometry *geo)
{
    return 2 * bitmap_bytes(geo) + FAT_CHECK_NAME_SLOTS * 8u;
}

/* ---- device access ------------------------------------------------------------------------------ */

static bool read_at(checker *c, uint64_t off, void *dst, size_t len)
{
    if (c->io != VFS_OK)
        return false;
    if (blk_cache_read_bytes(c->cache, off, dst, len) != BLK_OK) {
        c->io = VFS_IO_ERROR;
        return false;
    }
    return true;
}

static void write_at(checker *c, uint64_t off, const void *src, size_t len)
{
    if (c->io != VFS_OK)
        return;
    blk_status s = blk_cache_write_bytes(c->cache, off, src, len);
    if (s != BLK_OK)
        c->io = s == BLK_ERR_READ_ONLY ? VFS_READ_ONLY_FS : VFS_IO_ERROR;
}

static uint64_t active_fat(const checker *c)
{
    return c->g->fat_offset + (uint64_t)c->g->active_fat * c->g->fat_bytes;
}

static uint8_t fat_byte(checker *c, uint64_t off)
{
    uint64_t base = active_fat(c);
    uint64_t w = base + (off - base) / WINDOW * WINDOW;
    if (!c->window_valid || c->window_offset != w) {
        c->window_valid = false;
        if (!read_at(c, w, c->window, WINDOW))
            return 0xFF;
        c->window_offset = w;
        c->window_valid = true;
    }
    return c->window[off - w];
}

/* FAT entry `cl` of the active FAT; an I/O error reads as end-of-chain. */
static uint32_t fat_get(checker *c, uint32_t cl)
{
    uint64_t off = fat_entry_offset(c->g, c->g->active_fat, cl);
    uint32_t v;
    switch (c->g->type) {
    case FAT_TYPE_12:
        v = fat_byte(c, off) | ((uint32_t)fat_byte(c, off + 1) << 8);
        v = cl & 1 ? v >> 4 : v & 0xFFFu;
        break;
    case FAT_TYPE_16:
        v = fat_byte(c, off) | ((uint32_t)fat_byte(c, off + 1) << 8);
        break;
    default:
        v = (fat_byte(c, off) | ((uint32_t)fat_byte(c, off + 1) << 8) | ((uint32_t)fat_byte(c, off + 2) << 16) |
             ((uint32_t)fat_byte(c, off + 3) << 24)) & FAT32_MASK;
        break;
    }
    return c->io == VFS_OK ? v : c->eoc;
}

/* Writes entry `cl` of the active FAT (the other copies are refreshed at the end). */
static void fat_set(checker *c, uint32_t cl, uint32_t v)
{
    uint64_t off = fat_entry_offset(c->g, c->g->active_fat, cl);
    uint8_t b[4];
    size_t len;
    switch (c->g->type) {
    case FAT_TYPE_12:
        if (!read_at(c, off, b, 2))
            return;
        if (cl & 1) {
            b[0] = (uint8_t)((b[0] & 0x0F) | ((v & 0xF) << 4));
            b[1] = (uint8_t)(v >> 4);
        } else {
            b[0] = (uint8_t)v;
            b[1] = (uint8_t)((b[1] & 0xF0) | ((v >> 8) & 0xF));
        }
        len = 2;
        break;
    case FAT_TYPE_16:
        af_store_le16(b, (uint16_t)v);
        len = 2;
        break;
    default:
        if (!read_at(c, off, b, 4))
            return;
        af_store_le32(b, (af_load_le32(b) & ~FAT32_MASK) | (v & FAT32_MASK));
        len = 4;
        break;
    }
    write_at(c, off, b, len);
    c->window_valid = false;
    c->fat_changed = true;
}

static bool cluster_valid(const checker *c, uint32_t cl)
{
    return cl >= FAT_FIRST_CLUSTER && cl <= c->g->max_cluster;
}

/* ---- chains ----------------------------------------------------------------------------------- */

typedef struct chain {
    uint32_t length;         /* clusters kept in the chain */
    bool shared_start;       /* the first cluster already belongs to another chain */
} chain;

/* Walks the chain from `first` (valid), marking its clusters used. Stops at the end, a loop,
 * a cross-link or a bad link, reports what it found and in repair mode ends the chain
 * there. Bounded: `current` makes every cluster appear at most once. */
static chain walk_chain(checker *c, uint32_t first, const uint8_t *name, uint32_t dir)
{
    chain ch = {0, false};
    uint32_t prev = 0, cl = first;
    for (;;) {
        if (bit_get(c->current, cl)) {
            finding(c, &c->r->loops, name, dir);
            msg_str(c, "cluster chain loops back to cluster ");
            msg_u64(c, cl);
            if (c->opt->repair)
                fat_set(c, prev, c->eoc);
            finish_msg(c, "chain ended before the loop");
            break;
        }
        if (bit_get(c->used, cl)) {
            finding(c, &c->r->cross_links, name, dir);
            msg_str(c, "cluster ");
            msg_u64(c, cl);
            msg_str(c, " is also used by another chain");
            if (prev == 0) {
                ch.shared_start = true;
                finish_msg(c, NULL);
                break;
            }
            if (c->opt->repair)
                fat_set(c, prev, c->eoc);
            finish_msg(c, "chain ended before the shared cluster");
            break;
        }
        bit_set(c->current, cl);
        bit_set(c->used, cl);
        ch.length++;
        uint32_t next = fat_get(c, cl);
        if (next >= c->eoc_min || c->io != VFS_OK)
            break;
        if (!cluster_valid(c, next) || next == c->bad) {
            finding(c, &c->r->bad_links, name, dir);
            msg_str(c, "cluster ");
            msg_u64(c, cl);
            msg_str(c, next == 0 ? " links to a free cluster" : next == c->bad ? " links to a bad cluster"
                                                                               : " links out of range to ");
            if (next != 0 && next != c->bad)
                msg_u64(c, next);
            if (c->opt->repair)
                fat_set(c, cl, c->eoc);
            finish_msg(c, "chain ended there");
            break;
        }
        prev = cl;
        cl = next;
    }
    cl = first;
    for (uint32_t i = 0; i < ch.length; i++) {
        bit_clear(c->current, cl);
        cl = fat_get(c, cl);
        if (!cluster_valid(c, cl))
            break;
    }
    return ch;
}

/* Forgets `count` clusters of a chain starting at `cl`: they are no longer reached, so the
 * lost-cluster scan frees them unless another chain claims them first (a cross-linked
 * tail is then kept by its other owner instead of being freed under it). */
static void chain_forget(checker *c, uint32_t cl, uint32_t count)
{
    for (uint32_t i = 0; i < count && cluster_valid(c, cl); i++) {
        bit_clear(c->used, cl);
        cl = fat_get(c, cl);
    }
}

/* Keeps the first `keep` (>= 1) clusters of a walked chain of `length`. */
static void chain_cut(checker *c, uint32_t first, uint32_t keep, uint32_t length)
{
    uint32_t cl = first;
    for (uint32_t i = 1; i < keep; i++)
        cl = fat_get(c, cl);
    uint32_t rest = fat_get(c, cl);
    fat_set(c, cl, c->eoc);
    chain_forget(c, rest, length - keep);
}

/* ---- directory entries -------------------------------------------------------------------------- */

static uint32_t entry_cluster(const checker *c, const uint8_t *e)
{
    uint32_t lo = af_load_le16(e + FAT_DIRENT_CLUSTER_LO);
    uint32_t hi = c->g->type == FAT_TYPE_32 ? af_load_le16(e + FAT_DIRENT_CLUSTER_HI) : 0;
    return (hi << 16) | lo;
}

static void set_entry_cluster(const checker *c, uint8_t *e, uint32_t cl)
{
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, (uint16_t)cl);
    if (c->g->type == FAT_TYPE_32)
        af_store_le16(e + FAT_DIRENT_CLUSTER_HI, (uint16_t)(cl >> 16));
}

static void delete_entry(checker *c, uint64_t at, uint8_t *e)
{
    e[0] = FAT_DIRENT_DELETED;
    write_at(c, at, e, 1);
}

/* LFN entries dropped by the assembler: the first `count` of the open ones (plus the one
 * just fed, at `at`, when `with_current`). */
static void drop_lfns(checker *c, uint32_t count, uint64_t at, bool with_current, uint32_t dir)
{
    if (count == 0)
        return;
    uint64_t all[FAT_LFN_MAX_ENTRIES + 2];
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->lfn_count; i++)
        all[n++] = c->lfn_at[i];
    if (with_current)
        all[n++] = at;
    for (uint32_t i = 0; i < count && i < n; i++) {
        c->r->orphan_lfns++;
        c->r->problems++;
        if (c->opt->repair) {
            uint8_t del = FAT_DIRENT_DELETED;
            write_at(c, all[i], &del, 1);
            c->r->repaired++;
        }
    }
    c->msg_len = 0;
    msg_u64(c, count);
    msg_str(c, " orphaned long-name entr");
    msg_str(c, count == 1 ? "y" : "ies");
    msg_str(c, " in directory at cluster ");
    msg_u64(c, dir);
    if (c->opt->repair)
        msg_str(c, "; deleted");
    c->msg[c->msg_len] = '\0';
    if (c->opt->log)
        c->opt->log(c->opt->log_ctx, c->msg);
    c->lfn_count = 0;
    for (uint32_t i = count; i < n; i++)
        c->lfn_at[c->lfn_count++] = all[i];
}

static void lfn_feed(checker *c, uint8_t *e, uint64_t at, uint32_t dir)
{
    if (e[FAT_LFN_TYPE] != 0 || af_load_le16(e + FAT_LFN_CLUSTER) != 0) {
        finding(c, &c->r->bad_entries, NULL, 0);
        msg_str(c, "long-name entry with a nonzero type or cluster field in directory at cluster ");
        msg_u64(c, dir);
        if (c->opt->repair) {
            e[FAT_LFN_TYPE] = 0;
            af_store_le16(e + FAT_LFN_CLUSTER, 0);
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "set to 0");
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
static bool lfn_close(checker *c, const uint8_t *short_entry, uint32_t dir)
{
    uint32_t before = c->lfn.orphans, matched = 0;
    if (short_entry) {
        const uint16_t *units;
        size_t len;
        matched = fat_lfn_finish(&c->lfn, short_entry, &units, &len);
    } else {
        fat_lfn_abandon(&c->lfn);
    }
    drop_lfns(c, c->lfn.orphans - before, 0, false, dir);
    c->lfn_count = 0;
    return matched != 0;
}

static bool is_dot_name(const uint8_t *e, int dots)
{
    for (int i = 0; i < 11; i++) {
        if (e[i] != (i < dots ? '.' : ' '))
            return false;
    }
    return true;
}

/* "." and ".." must be the first two entries of a subdirectory and point at the directory
 * and its parent (0 for the root; FAT32 volumes written by some systems use the root
 * cluster, which is accepted). */
static void check_dot_entry(checker *c, dir_iter *it, uint8_t *e, uint64_t at, int dots)
{
    bool placed = !it->fixed_root && it->first != c->g->root_cluster && it->total == (uint32_t)dots;
    if (!placed) {
        finding(c, &c->r->bad_entries, e, it->first);
        msg_str(c, "misplaced dot entry");
        if (c->opt->repair)
            delete_entry(c, at, e);
        finish_msg(c, "deleted");
        return;
    }
    uint32_t want = dots == 1 ? it->first : it->parent;
    uint32_t have = entry_cluster(c, e);
    bool ok = have == want || (dots == 2 && want == 0 && have == c->g->root_cluster && have != 0);
    if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) || (e[FAT_DIRENT_NT_CASE] & FAT_CASE_NO_SHORT_NAME) || !ok) {
        finding(c, &c->r->bad_entries, e, it->first);
        msg_str(c, dots == 1 ? "'.' entry" : "'..' entry");
        msg_str(c, ok ? " has bad attributes" : " does not point at ");
        if (!ok)
            msg_str(c, dots == 1 ? "its directory" : "the parent");
        if (c->opt->repair) {
            set_entry_cluster(c, e, want);
            e[FAT_DIRENT_ATTR] |= FAT_ATTR_DIRECTORY;
            e[FAT_DIRENT_NT_CASE] &= (uint8_t)~FAT_CASE_NO_SHORT_NAME;
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "fixed");
    }
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

static void check_short_name(checker *c, uint8_t *e, uint64_t at, uint32_t dir, bool has_long_name)
{
    if ((e[FAT_DIRENT_NT_CASE] & FAT_CASE_NO_SHORT_NAME) && !has_long_name) {
        finding(c, &c->r->bad_entries, e, dir);
        msg_str(c, "short name marked as a placeholder but there is no long name");
        if (c->opt->repair) {
            e[FAT_DIRENT_NT_CASE] &= (uint8_t)~FAT_CASE_NO_SHORT_NAME;
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "mark cleared");
    }
    if (fat_short_name_valid(e))
        return;
    finding(c, &c->r->bad_entries, e, dir);
    msg_str(c, "bad short name");
    if (c->opt->repair) {
        for (int i = 0; i < 11; i++) {
            if (!(i == 0 && e[i] == FAT_DIRENT_KANJI_E5))
                e[i] = short_byte_repaired(e[i], i);
        }
        write_at(c, at, e, 11);
    }
    finish_msg(c, "renamed");
}

/* A file's size against its chain. */
static void check_file(checker *c, uint8_t *e, uint64_t at, uint32_t dir)
{
    uint32_t first = entry_cluster(c, e), size = af_load_le32(e + FAT_DIRENT_SIZE_BYTES);
    uint32_t bpc = c->g->bytes_per_cluster;
    c->r->files++;
    if (first == 0) {
        if (size != 0) {
            finding(c, &c->r->size_mismatches, e, dir);
            msg_str(c, "file has a size but no clusters");
            if (c->opt->repair) {
                af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
                write_at(c, at, e, FAT_DIRENT_SIZE);
            }
            finish_msg(c, "size set to 0");
        }
        return;
    }
    if (!cluster_valid(c, first)) {
        finding(c, &c->r->bad_entries, e, dir);
        msg_str(c, "first cluster out of range: ");
        msg_u64(c, first);
        if (c->opt->repair) {
            set_entry_cluster(c, e, 0);
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "file emptied");
        return;
    }
    chain ch = walk_chain(c, first, e, dir);
    if (ch.shared_start) {
        if (c->opt->repair) {
            set_entry_cluster(c, e, 0);
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
            write_at(c, at, e, FAT_DIRENT_SIZE);
            c->r->repaired++;
        }
        return;
    }
    uint64_t chain_bytes = (uint64_t)ch.length * bpc;
    uint32_t needed = (uint32_t)(((uint64_t)size + bpc - 1) / bpc);
    if (size > chain_bytes) {
        finding(c, &c->r->size_mismatches, e, dir);
        msg_str(c, "size ");
        msg_u64(c, size);
        msg_str(c, " is larger than the chain (");
        msg_u64(c, chain_bytes);
        msg_str(c, " bytes)");
        if (c->opt->repair) {
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, (uint32_t)chain_bytes);
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "size set to the chain length");
    } else if (needed < ch.length) {
        finding(c, &c->r->size_mismatches, e, dir);
        msg_str(c, "chain has ");
        msg_u64(c, ch.length);
        msg_str(c, " clusters, size needs ");
        msg_u64(c, needed);
        if (c->opt->repair) {
            if (needed == 0) {
                chain_forget(c, first, ch.length);
                set_entry_cluster(c, e, 0);
                write_at(c, at, e, FAT_DIRENT_SIZE);
            } else {
                chain_cut(c, first, needed, ch.length);
            }
        }
        finish_msg(c, "chain cut to the size");
    }
}

/* A subdirectory entry: returns its walked chain length, 0 if it must not be entered. */
static uint32_t check_subdir(checker *c, uint8_t *e, uint64_t at, uint32_t dir)
{
    uint32_t first = entry_cluster(c, e);
    c->r->directories++;
    if (af_load_le32(e + FAT_DIRENT_SIZE_BYTES) != 0) {
        finding(c, &c->r->bad_entries, e, dir);
        msg_str(c, "directory has a nonzero size");
        if (c->opt->repair) {
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "size set to 0");
    }
    if (!cluster_valid(c, first)) {
        finding(c, &c->r->bad_entries, e, dir);
        msg_str(c, "directory without a valid first cluster");
        if (c->opt->repair)
            delete_entry(c, at, e);
        finish_msg(c, "entry deleted");
        return 0;
    }
    chain ch = walk_chain(c, first, e, dir);
    if (ch.shared_start) {
        if (c->opt->repair) {
            delete_entry(c, at, e);
            c->r->repaired++;
        }
        return 0;
    }
    return ch.length;
}

/* ---- the tree walk ------------------------------------------------------------------------------ */

/* Device offset of the iterator's current entry, advancing to the next cluster when needed;
 * false at the end of the directory. */
static bool dir_entry_at(checker *c, dir_iter *it, uint64_t *at)
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
        uint32_t next = fat_get(c, it->cluster);
        if (!cluster_valid(c, next))
            return false;
        it->cluster = next;
        it->clusters_left--;
        it->index = 0;
    }
    *at = fat_cluster_offset(c->g, it->cluster) + (uint64_t)it->index * FAT_DIRENT_SIZE;
    return true;
}

/* ---- duplicate short names ---------------------------------------------------------------- */

static bool names_equal_at(checker *c, uint64_t at, const uint8_t name[11])
{
    uint8_t other[11];
    return read_at(c, at, other, sizeof other) && af_memcmp(other, name, 11) == 0;
}

/* Looks the name up in the directory's table; inserts it (at `at`) when absent. Returns
 * true for a duplicate; a full table (a directory past FAT_CHECK_NAME_SLOTS / 2 names)
 * reports nothing more. */
static bool name_seen(checker *c, const uint8_t name[11], uint64_t at, uint32_t *count)
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

/* A new name for a duplicate: "DUPnnnnn" with the same extension, unused in the table. */
static bool rename_duplicate(checker *c, uint8_t *e, uint64_t at, uint32_t *count)
{
    static const char hex[] = "0123456789ABCDEF";
    uint8_t name[11];
    af_memcpy(name, e, 11);
    for (uint32_t n = 0; n < 0x100000u && c->io == VFS_OK; n++) {
        af_memcpy(name, "DUP", 3);
        for (int k = 0; k < 5; k++)
            name[3 + k] = (uint8_t)hex[(n >> (16 - 4 * k)) & 0xF];
        if (!name_seen(c, name, at, count)) {
            af_memcpy(e, name, 11);
            write_at(c, at, e, 11);
            return true;
        }
    }
    return false;
}

/* First pass over a directory: every live short name must be unique (fsck.fat checks the
 * same). Runs on a copy of the iterator before the entries are checked one by one. */
static void check_duplicates(checker *c, const dir_iter *start)
{
    dir_iter it = *start;
    uint32_t count = 0;
    af_memset(c->names, 0, FAT_CHECK_NAME_SLOTS * 8u);
    for (;;) {
        uint64_t at;
        uint8_t e[FAT_DIRENT_SIZE];
        if (c->io != VFS_OK || !dir_entry_at(c, &it, &at) || !read_at(c, at, e, sizeof e))
            return;
        it.index++;
        it.total++;
        if (e[0] == FAT_DIRENT_END)
            return;
        uint8_t attr = e[FAT_DIRENT_ATTR];
        if (e[0] == FAT_DIRENT_DELETED || (attr & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME ||
            (attr & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) == FAT_ATTR_VOLUME_ID || is_dot_name(e, 1) ||
            is_dot_name(e, 2))
            continue;
        if (!name_seen(c, e, at, &count))
            continue;
        finding(c, &c->r->bad_entries, e, it.first);
        msg_str(c, "duplicate short name");
        if (c->opt->repair && rename_duplicate(c, e, at, &count)) {
            msg_str(c, "; renamed to ");
            msg_name(c, e);
        }
        finish_msg(c, NULL);
        if (c->opt->repair)
            c->r->repaired++;
    }
}

static bool in_subdir(const checker *c, const dir_iter *it)
{
    return !it->fixed_root && it->first != c->g->root_cluster;
}

/* Entries after the end marker are free for the spec and for the engine, but fsck.fat and
 * other systems read on past it: an entry there that looks used must be cleared. */
static void check_after_end(checker *c, dir_iter *it, uint8_t *e, uint64_t at)
{
    if (e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED)
        return;
    finding(c, &c->r->bad_entries, NULL, 0);
    msg_str(c, "directory at cluster ");
    msg_u64(c, it->first);
    msg_str(c, ": used entry after the end-of-directory marker");
    if (c->opt->repair) {
        e[0] = FAT_DIRENT_END;
        write_at(c, at, e, 1);
    }
    finish_msg(c, "cleared");
}

/* Slots 1 and 2 of a subdirectory must hold "." and "..". Returns true if the slot was
 * rewritten (the entry that was there is gone and must not be checked). */
static bool check_dot_slot(checker *c, dir_iter *it, uint8_t *e, uint64_t at, int dots)
{
    if (is_dot_name(e, dots)) {
        check_dot_entry(c, it, e, at, dots);
        return true;
    }
    finding(c, &c->r->bad_entries, NULL, 0);
    msg_str(c, "directory at cluster ");
    msg_u64(c, it->first);
    msg_str(c, dots == 1 ? ": no '.' entry" : ": no '..' entry");
    if (!c->opt->repair) {
        finish_msg(c, NULL);
        return false;
    }
    if (e[0] != FAT_DIRENT_END && e[0] != FAT_DIRENT_DELETED)
        msg_str(c, " (the entry in its slot is dropped)");
    af_memset(e, 0, FAT_DIRENT_SIZE);
    af_memset(e, ' ', 11);
    e[0] = '.';
    if (dots == 2)
        e[1] = '.';
    e[FAT_DIRENT_ATTR] = FAT_ATTR_DIRECTORY;
    set_entry_cluster(c, e, dots == 1 ? it->first : it->parent);
    write_at(c, at, e, FAT_DIRENT_SIZE);
    finish_msg(c, "created");
    return true;
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

/* A volume-label entry: never owns clusters; only the first one in the root names the
 * volume (as fsck.fat reads it). */
static void check_label_entry(checker *c, dir_iter *it, uint8_t *e, uint64_t at)
{
    if (entry_cluster(c, e) != 0 || af_load_le32(e + FAT_DIRENT_SIZE_BYTES) != 0) {
        finding(c, &c->r->bad_entries, e, it->first);
        msg_str(c, "volume label entry has a cluster or a size");
        if (c->opt->repair) {
            set_entry_cluster(c, e, 0);
            af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
            write_at(c, at, e, FAT_DIRENT_SIZE);
        }
        finish_msg(c, "cleared");
    }
    if (in_subdir(c, it) || c->root_label_seen)
        return;
    if (!label_valid(e)) {
        finding(c, &c->r->bad_entries, NULL, 0);
        msg_str(c, "volume label entry holds invalid characters");
        if (c->opt->repair)
            delete_entry(c, at, e);
        finish_msg(c, "deleted");
        return;
    }
    c->root_label_seen = true;
    af_memcpy(c->root_label, e, 11);
}

static void walk_tree(checker *c)
{
    uint32_t depth = 0;
    dir_iter *root = &c->stack[0];
    af_memset(root, 0, sizeof *root);
    if (c->g->type == FAT_TYPE_32) {
        uint8_t root_name[11] = {'/', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
        chain ch = walk_chain(c, c->g->root_cluster, root_name, c->g->root_cluster);
        root->first = root->cluster = c->g->root_cluster;
        root->clusters_left = ch.length;
    } else {
        root->fixed_root = true;
    }
    fat_lfn_reset(&c->lfn);
    c->lfn_count = 0;
    check_duplicates(c, root);
    for (;;) {
        if (c->io != VFS_OK)
            return;
        dir_iter *it = &c->stack[depth];
        uint64_t at;
        uint8_t e[FAT_DIRENT_SIZE];
        if (!dir_entry_at(c, it, &at) || !read_at(c, at, e, sizeof e)) {
            lfn_close(c, NULL, it->first);
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
        if (in_subdir(c, it) && it->total <= 2 && check_dot_slot(c, it, e, at, (int)it->total))
            continue;
        if (e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED) {
            lfn_close(c, NULL, it->first);
            it->ended = e[0] == FAT_DIRENT_END;
            continue;
        }
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            /* The spec masks the top two bits, Linux and fsck.fat do not (they read such an
             * entry as a volume label): an entry both can agree on is deleted. */
            if (e[FAT_DIRENT_ATTR] != FAT_ATTR_LONG_NAME) {
                finding(c, &c->r->bad_entries, NULL, 0);
                msg_str(c, "long-name entry with reserved attribute bits in directory at cluster ");
                msg_u64(c, it->first);
                if (c->opt->repair) {
                    delete_entry(c, at, e);
                    lfn_close(c, NULL, it->first);
                    finish_msg(c, "deleted");
                    continue;
                }
                finish_msg(c, NULL);
            }
            lfn_feed(c, e, at, it->first);
            continue;
        }
        bool has_long_name = lfn_close(c, e, it->first);
        if (is_dot_name(e, 1) || is_dot_name(e, 2)) {
            check_dot_entry(c, it, e, at, is_dot_name(e, 1) ? 1 : 2);
            continue;
        }
        /* fsck.fat reads such an entry both as a directory and as a volume label */
        if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) ==
            (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) {
            finding(c, &c->r->bad_entries, e, it->first);
            msg_str(c, "entry is both a directory and a volume label");
            if (c->opt->repair) {
                e[FAT_DIRENT_ATTR] &= (uint8_t)~FAT_ATTR_VOLUME_ID;
                write_at(c, at, e, FAT_DIRENT_SIZE);
            }
            finish_msg(c, "label bit cleared");
        }
        if ((e[FAT_DIRENT_ATTR] & (FAT_ATTR_VOLUME_ID | FAT_ATTR_DIRECTORY)) == FAT_ATTR_VOLUME_ID) {
            check_label_entry(c, it, e, at);
            continue;
        }
        check_short_name(c, e, at, it->first, has_long_name);
        if (!(e[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY)) {
            check_file(c, e, at, it->first);
            continue;
        }
        uint32_t length = check_subdir(c, e, at, it->first);
        if (length == 0)
            continue;
        if (depth == FAT_CHECK_MAX_DEPTH) {
            finding(c, &c->r->too_deep, e, it->first);
            msg_str(c, "directory nested too deep; not checked");
            finish_msg(c, NULL);
            continue;
        }
        uint32_t parent = in_subdir(c, it) ? it->first : 0;
        depth++;
        dir_iter *child = &c->stack[depth];
        af_memset(child, 0, sizeof *child);
        child->first = child->cluster = entry_cluster(c, e);
        child->clusters_left = length;
        child->parent = parent;
        check_duplicates(c, child);
    }
}

/* The boot sector's label must match the root's label entry (fsck.fat compares them). */
static void check_boot_label(checker *c)
{
    if (!c->g->has_serial)
        return;
    static const uint8_t no_name[11] = {'N', 'O', ' ', 'N', 'A', 'M', 'E', ' ', ' ', ' ', ' '};
    const uint8_t *want = c->root_label_seen ? c->root_label : no_name;
    if (af_memcmp(c->g->label, want, 11) == 0)
        return;
    finding(c, &c->r->boot_errors, NULL, 0);
    msg_str(c, c->root_label_seen ? "boot sector label differs from the root directory's label"
                                  : "boot sector has a label but the root directory has none");
    if (c->opt->repair) {
        size_t label_at = c->g->type == FAT_TYPE_32 ? FAT_BS32_VOLUME_LABEL : FAT_BS16_VOLUME_LABEL;
        write_at(c, c->g->volume_offset + label_at, want, 11);
        if (c->g->backup_boot_sector != 0)
            write_at(c, c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector + label_at,
                     want, 11);
    }
    finish_msg(c, "boot sector label rewritten");
}

/* ---- volume-level checks ------------------------------------------------------------------------- */

static void check_fat_copies(checker *c)
{
    if (c->g->ext_flags & FAT_EXT_FLAGS_NO_MIRROR)
        return;
    uint8_t a[WINDOW], b[WINDOW];
    for (uint32_t copy = 0; copy < c->g->fat_count; copy++) {
        if (copy == c->g->active_fat)
            continue;
        for (uint64_t off = 0; off < c->g->fat_bytes; off += WINDOW) {
            size_t len = (size_t)af_min_u64(WINDOW, c->g->fat_bytes - off);
            if (!read_at(c, active_fat(c) + off, a, len) ||
                !read_at(c, c->g->fat_offset + copy * c->g->fat_bytes + off, b, len))
                return;
            if (af_memcmp(a, b, len) != 0) {
                finding(c, &c->r->fat_mismatches, NULL, 0);
                msg_str(c, "FAT ");
                msg_u64(c, copy + 1);
                msg_str(c, " differs from FAT ");
                msg_u64(c, c->g->active_fat + 1);
                finish_msg(c, "copied from the active FAT");
                c->fat_changed = true;
                break;
            }
        }
    }
}

static void mirror_fats(checker *c)
{
    if ((c->g->ext_flags & FAT_EXT_FLAGS_NO_MIRROR) || !c->fat_changed)
        return;
    uint8_t a[WINDOW];
    for (uint64_t off = 0; off < c->g->fat_bytes; off += WINDOW) {
        size_t len = (size_t)af_min_u64(WINDOW, c->g->fat_bytes - off);
        if (!read_at(c, active_fat(c) + off, a, len))
            return;
        for (uint32_t copy = 0; copy < c->g->fat_count; copy++) {
            if (copy != c->g->active_fat)
                write_at(c, c->g->fat_offset + copy * c->g->fat_bytes + off, a, len);
        }
    }
}

/* Entry 0 is the media byte with all other bits set; entry 1 is an end-of-chain value whose
 * two top bits (FAT16/32) are the clean-shutdown and no-hard-error flags. */
static void check_reserved_entries(checker *c)
{
    uint32_t e0 = fat_get(c, 0), e1 = fat_get(c, 1);
    uint32_t want0 = (c->eoc & ~0xFFu) | c->g->media;
    if (e0 != want0) {
        finding(c, &c->r->boot_errors, NULL, 0);
        msg_str(c, "FAT entry 0 is not the media byte with the other bits set");
        if (c->opt->repair)
            fat_set(c, 0, want0);
        finish_msg(c, "fixed");
    }
    uint32_t clean = c->g->type == FAT_TYPE_16 ? FAT16_CLEAN_SHUTDOWN | FAT16_NO_HARD_ERROR
                     : c->g->type == FAT_TYPE_32 ? FAT32_CLEAN_SHUTDOWN | FAT32_NO_HARD_ERROR : 0;
    if ((e1 | clean) < c->eoc_min) {
        finding(c, &c->r->boot_errors, NULL, 0);
        msg_str(c, "FAT entry 1 is not an end-of-chain value");
        if (c->opt->repair) {
            e1 = (e1 & clean) | (c->eoc & ~clean);
            fat_set(c, 1, e1);
        }
        finish_msg(c, "fixed");
    }
    if ((e1 & clean) != clean) {
        finding(c, &c->r->dirty, NULL, 0);
        msg_str(c, "FAT entry 1 says the volume was not cleanly unmounted");
        if (c->opt->repair)
            fat_set(c, 1, e1 | clean);
        finish_msg(c, "flag cleared");
    }
    size_t state_at = c->g->type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE;
    uint8_t state;
    if (!read_at(c, c->g->volume_offset + state_at, &state, 1))
        return;
    if (state & FAT_STATE_DIRTY) {
        finding(c, &c->r->dirty, NULL, 0);
        msg_str(c, "boot sector dirty flag is set");
        if (c->opt->repair) {
            state &= (uint8_t)~FAT_STATE_DIRTY;
            write_at(c, c->g->volume_offset + state_at, &state, 1);
            if (c->g->backup_boot_sector != 0)
                write_at(c, c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector +
                                state_at, &state, 1);
        }
        finish_msg(c, "flag cleared");
    }
}

/* Lost clusters and the statistics; returns the first free cluster (0 if none). */
static uint32_t scan_fat(checker *c)
{
    uint32_t first_free = 0, lost = 0;
    for (uint32_t cl = FAT_FIRST_CLUSTER; cl <= c->g->max_cluster && c->io == VFS_OK; cl++) {
        uint32_t v = fat_get(c, cl);
        if (v == FAT_ENTRY_FREE) {
            c->r->free_clusters++;
            if (first_free == 0)
                first_free = cl;
        } else if (v == c->bad) {
            c->r->bad_clusters++;
        } else if (bit_get(c->used, cl)) {
            c->r->used_clusters++;
        } else {
            lost++;
            if (c->opt->repair) {
                fat_set(c, cl, FAT_ENTRY_FREE);
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
        msg_u64(c, lost);
        msg_str(c, " lost cluster");
        msg_str(c, lost == 1 ? "" : "s");
        msg_str(c, " (allocated, in no chain)");
        finish_msg(c, "freed");
    }
    return first_free;
}

static void check_fsinfo(checker *c, uint32_t first_free)
{
    if (c->g->type != FAT_TYPE_32 || c->g->fsinfo_sector == 0)
        return;
    uint64_t at = c->g->volume_offset + (uint64_t)c->g->fsinfo_sector * c->g->bytes_per_sector;
    uint8_t info[512];
    if (!read_at(c, at, info, sizeof info))
        return;
    bool sig_ok = af_load_le32(info + FAT_FSINFO_LEAD_SIG) == FAT_FSINFO_LEAD_VALUE &&
                  af_load_le32(info + FAT_FSINFO_STRUCT_SIG) == FAT_FSINFO_STRUCT_VALUE &&
                  af_load_le32(info + FAT_FSINFO_TRAIL_SIG) == FAT_FSINFO_TRAIL_VALUE;
    uint32_t free_count = af_load_le32(info + FAT_FSINFO_FREE_COUNT);
    uint32_t next = af_load_le32(info + FAT_FSINFO_NEXT_FREE);
    bool free_ok = free_count == FAT_FSINFO_UNKNOWN || free_count == c->r->free_clusters;
    bool next_ok = next == FAT_FSINFO_UNKNOWN || cluster_valid(c, next);
    if (sig_ok && free_ok && next_ok)
        return;
    finding(c, &c->r->fsinfo_errors, NULL, 0);
    msg_str(c, !sig_ok ? "FSInfo signatures are wrong" : !free_ok ? "FSInfo free count is wrong: "
                                                                 : "FSInfo next-free hint is out of range");
    if (sig_ok && !free_ok) {
        msg_u64(c, free_count);
        msg_str(c, " instead of ");
        msg_u64(c, c->r->free_clusters);
    }
    if (c->opt->repair) {
        if (!sig_ok) {
            af_memset(info, 0, sizeof info);
            af_store_le32(info + FAT_FSINFO_LEAD_SIG, FAT_FSINFO_LEAD_VALUE);
            af_store_le32(info + FAT_FSINFO_STRUCT_SIG, FAT_FSINFO_STRUCT_VALUE);
            af_store_le32(info + FAT_FSINFO_TRAIL_SIG, FAT_FSINFO_TRAIL_VALUE);
        }
        af_store_le32(info + FAT_FSINFO_FREE_COUNT, c->r->free_clusters);
        af_store_le32(info + FAT_FSINFO_NEXT_FREE, first_free ? first_free : FAT_FSINFO_UNKNOWN);
        write_at(c, at, info, sizeof info);
    }
    finish_msg(c, "rewritten");
}

static void check_backup_boot(checker *c)
{
    if (c->g->type != FAT_TYPE_32 || c->g->backup_boot_sector == 0)
        return;
    uint8_t main[512], backup[512];
    uint64_t backup_at = c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector;
    if (!read_at(c, c->g->volume_offset, main, sizeof main) || !read_at(c, backup_at, backup, sizeof backup))
        return;
    if (af_memcmp(main, backup, sizeof main) == 0)
        return;
    finding(c, &c->r->boot_errors, NULL, 0);
    msg_str(c, "backup boot sector differs from the boot sector");
    if (c->opt->repair)
        write_at(c, backup_at, main, sizeof main);
    finish_msg(c, "backup rewritten");
}

vfs_status fat_check_run(blk_cache *cache, const fat_geometry *geo, const fat_check_options *options,
                        fat_check_result *result)
{
    af_memset(result, 0, sizeof *result);
    if (options->work == NULL || options->work_size < fat_check_memory_needed(geo))
        return VFS_INVALID_ARGUMENT;
    /* The checker state is large (LFN buffer, directory stack) but lives on the fiber stack
     * only through this frame; keep it static-free so several checks can run at once. */
    checker c;
    af_memset(&c, 0, sizeof c);
    c.cache = cache;
    c.g = geo;
    c.opt = options;
    c.r = result;
    c.used = options->work;
    c.current = c.used + bitmap_bytes(geo);
    c.names = c.current + bitmap_bytes(geo);
    af_memset(options->work, 0, fat_check_memory_needed(geo));
    c.io = VFS_OK;
    c.eoc_min = fat_eoc_min(geo->type);
    c.eoc = fat_eoc_value(geo->type);
    c.bad = fat_bad_value(geo->type);

    check_fat_copies(&c);
    check_reserved_entries(&c);
    walk_tree(&c);
    check_boot_label(&c);
    uint32_t first_free = scan_fat(&c);
    if (options->repair)
        mirror_fats(&c);
    check_fsinfo(&c, first_free);
    check_backup_boot(&c);
    if (c.io == VFS_OK && options->repair && blk_cache_flush(cache) != BLK_OK)
        c.io = VFS_IO_ERROR;
    return c.io;
}
