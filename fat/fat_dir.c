/* Directories: slots (32-byte entries) mapped through the directory's cluster runs,
 * iteration with long-name assembly, the per-directory name index, lookup, insert, remove.
 *
 * The name index: built by the first lookup in a directory (one scan), then kept exact by
 * insert and remove. Each entry sits in two hash chains of one volume-wide table: by the
 * hash of its long (or short display) name, and by its 11-byte short name, so a lookup
 * reads only its candidates from disk, and choosing an 8.3 alias needs no I/O at all.
 * Index memory is shared; when it runs out the directory drops its index and scans.
 *
 * Changes (docs/ORDERING.md, "one block per entry set"): a new entry set is placed in
 * slots that lie in one device block, contiguous on disk, and every change of a block
 * (a set written, a set deleted, end markers turned into deleted entries) is made at once
 * on the pinned buffer (fat_dir_apply), so write-back never sees it half done. Sets that
 * cannot lie in one block are written and removed in the order that leaves only orphaned
 * long-name entries after a cut.
 *
 * Locks: callers hold the directory's lock, read side for lookup and iteration, write side
 * for insert and remove. A build runs under the read side, so it is marked BUILDING and
 * concurrent readers scan instead of using the half-built index. */
#include "fat/fat_engine.h"

#define CHUNK_BYTES 512u
#define MAX_CANDIDATES 8u

static bool dir_is_fixed_root(const fat_node *dir)
{
    return dir->is_root && dir->vol->geo.type != FAT_TYPE_32;
}

/* Byte offset of `slot` and the number of slots from there to the end of its 512-byte
 * chunk (never crossing a cluster). END_OF_DIRECTORY past the last allocated slot. */
static vfs_status slot_locate(fat_node *dir, uint32_t slot, uint64_t *offset, uint32_t *avail)
{
    fat_volume *vol = dir->vol;
    if (slot >= FAT_DIR_MAX_ENTRIES)
        return VFS_END_OF_DIRECTORY;
    uint64_t byte = (uint64_t)slot * FAT_DIRENT_SIZE;
    uint32_t in_chunk = (uint32_t)((CHUNK_BYTES - byte % CHUNK_BYTES) / FAT_DIRENT_SIZE);
    if (dir_is_fixed_root(dir)) {
        if (slot >= vol->geo.root_entries)
            return VFS_END_OF_DIRECTORY;
        *offset = vol->geo.root_dir_offset + byte;
        *avail = af_min_u32(in_chunk, vol->geo.root_entries - slot);
        return VFS_OK;
    }
    uint32_t cs = vol->geo.bytes_per_cluster;
    uint32_t disk, count;
    vfs_status st = fat_file_map(dir, (uint32_t)(byte / cs), 1, &disk, &count);
    if (st == VFS_NO_FILE)
        return VFS_END_OF_DIRECTORY;
    if (st != VFS_OK)
        return st;
    *offset = fat_cluster_offset(&vol->geo, disk) + byte % cs;
    *avail = in_chunk;
    return VFS_OK;
}

vfs_status fat_dir_slot_offset(fat_node *dir, uint32_t slot, uint64_t *offset)
{
    uint32_t avail;
    return slot_locate(dir, slot, offset, &avail);
}

/* ---- iteration ------------------------------------------------------------------------- */

void fat_dir_iter_init(fat_dir_iter *it, fat_node *dir, uint32_t slot)
{
    it->dir = dir;
    it->slot = slot;
    it->chunk_first = 0;
    it->chunk_count = 0;
    it->lfn_first = 0;
    fat_lfn_reset(&it->lfn);
}

/* The raw bytes of it->slot, reading its chunk if needed. */
static vfs_status iter_fetch(fat_dir_iter *it, const uint8_t **entry, uint64_t *offset)
{
    if (it->slot < it->chunk_first || it->slot >= it->chunk_first + it->chunk_count) {
        uint64_t off;
        uint32_t avail;
        vfs_status st = slot_locate(it->dir, it->slot, &off, &avail);
        if (st != VFS_OK)
            return st;
        blk_status s = blk_cache_read_bytes(it->dir->vol->cache, off, it->chunk, (size_t)avail * FAT_DIRENT_SIZE);
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        it->chunk_first = it->slot;
        it->chunk_count = avail;
        it->chunk_offset = off;
    }
    uint32_t i = it->slot - it->chunk_first;
    *entry = it->chunk + (size_t)i * FAT_DIRENT_SIZE;
    *offset = it->chunk_offset + (uint64_t)i * FAT_DIRENT_SIZE;
    return VFS_OK;
}

vfs_status fat_dir_iter_next(fat_dir_iter *it, fat_dirent *out)
{
    fat_volume *vol = it->dir->vol;
    for (;;) {
        const uint8_t *e;
        uint64_t offset;
        vfs_status st = iter_fetch(it, &e, &offset);
        if (st != VFS_OK) {
            fat_lfn_abandon(&it->lfn);
            return st;
        }
        vol->stats.slots_scanned++;
        if (e[0] == FAT_DIRENT_END) {
            fat_lfn_abandon(&it->lfn);
            return VFS_END_OF_DIRECTORY;
        }
        uint32_t slot = it->slot++;
        if (e[0] == FAT_DIRENT_DELETED) {
            fat_lfn_abandon(&it->lfn);
            continue;
        }
        uint8_t attr = e[FAT_DIRENT_ATTR];
        if ((attr & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_LONG_NAME) {
            if (e[FAT_LFN_ORDINAL] & FAT_LFN_LAST)
                it->lfn_first = slot;
            fat_lfn_feed(&it->lfn, e);
            continue;
        }
        const uint16_t *units;
        size_t len;
        uint32_t n = fat_lfn_finish(&it->lfn, e, &units, &len);
        if (attr & FAT_ATTR_VOLUME_ID)
            continue;
        if (e[0] == '.')
            continue; /* "." and ".." (a short name never starts with a dot) */
        if (n > 0 && it->lfn_first + n != slot)
            n = 0;
        out->slot = slot;
        out->lfn_count = n;
        af_memcpy(out->raw, e, FAT_DIRENT_SIZE);
        out->offset = offset;
        if (n > 0) {
            out->name = units;
            out->name_len = len;
        } else {
            out->name_len = fat_short_to_utf16(e, e[FAT_DIRENT_NT_CASE], it->short_units);
            out->name = it->short_units;
        }
        return VFS_OK;
    }
}

/* ---- name index ----------------------------------------------------------------------- */

static uint32_t bucket_of(const fat_volume *vol, uint32_t dir, uint32_t hash)
{
    uint32_t h = hash ^ (dir * 0x9E3779B1u);
    h ^= h >> 16;
    return h & vol->index_mask;
}

static uint32_t short_bucket(const fat_volume *vol, uint32_t dir, const uint8_t *short_name)
{
    return bucket_of(vol, dir, fat_short_name_hash(short_name));
}

static bool index_add(fat_node *dir, const fat_dirent *d)
{
    fat_volume *vol = dir->vol;
    uint32_t i = vol->index_free;
    if (i != FAT_NONE)
        vol->index_free = vol->index[i].next_long;
    else if (vol->index_unused < vol->cfg.index_entries)
        i = vol->index_unused++;
    else
        return false;
    fat_index_entry *e = &vol->index[i];
    e->hash_long = fat_name_hash(d->name, d->name_len);
    e->slot = d->slot;
    e->dir = dir->index;
    e->lfn_count = (uint8_t)d->lfn_count;
    af_memcpy(e->short_name, d->raw, FAT_SHORT_NAME_LEN);
    uint32_t *lh = &vol->index_long_heads[bucket_of(vol, dir->index, e->hash_long)];
    e->next_long = *lh;
    *lh = i;
    uint32_t *sh = &vol->index_short_heads[short_bucket(vol, dir->index, e->short_name)];
    e->next_short = *sh;
    *sh = i;
    e->dir_prev = FAT_NONE;
    e->dir_next = dir->index_head;
    if (dir->index_head != FAT_NONE)
        vol->index[dir->index_head].dir_prev = i;
    dir->index_head = i;
    return true;
}

static void index_unlink(fat_volume *vol, uint32_t i)
{
    fat_index_entry *e = &vol->index[i];
    uint32_t *link = &vol->index_long_heads[bucket_of(vol, e->dir, e->hash_long)];
    while (*link != i)
        link = &vol->index[*link].next_long;
    *link = e->next_long;
    link = &vol->index_short_heads[short_bucket(vol, e->dir, e->short_name)];
    while (*link != i)
        link = &vol->index[*link].next_short;
    *link = e->next_short;
}

static void index_remove(fat_node *dir, uint32_t i)
{
    fat_volume *vol = dir->vol;
    fat_index_entry *e = &vol->index[i];
    index_unlink(vol, i);
    if (e->dir_prev != FAT_NONE)
        vol->index[e->dir_prev].dir_next = e->dir_next;
    else
        dir->index_head = e->dir_next;
    if (e->dir_next != FAT_NONE)
        vol->index[e->dir_next].dir_prev = e->dir_prev;
    e->next_long = vol->index_free;
    vol->index_free = i;
}

void fat_dir_index_drop(fat_node *dir)
{
    fat_volume *vol = dir->vol;
    uint32_t i = dir->index_head;
    while (i != FAT_NONE) {
        uint32_t next = vol->index[i].dir_next;
        index_unlink(vol, i);
        vol->index[i].next_long = vol->index_free;
        vol->index_free = i;
        i = next;
    }
    if (dir->index_state == FAT_INDEX_READY)
        vol->index_epoch++; /* memory came free: directories that failed may retry */
    dir->index_head = FAT_NONE;
    dir->index_state = FAT_INDEX_NONE;
}

static uint32_t index_find_short(fat_node *dir, const uint8_t *short_name)
{
    fat_volume *vol = dir->vol;
    for (uint32_t i = vol->index_short_heads[short_bucket(vol, dir->index, short_name)]; i != FAT_NONE;) {
        fat_index_entry *e = &vol->index[i];
        if (e->dir == dir->index && af_memcmp(e->short_name, short_name, FAT_SHORT_NAME_LEN) == 0)
            return i;
        i = e->next_short;
    }
    return FAT_NONE;
}

/* ---- lookup ------------------------------------------------------------------------------- */

typedef struct name_key {
    const fat_name *name;
    bool has_short;
    uint8_t short_name[FAT_SHORT_NAME_LEN];
} name_key;

static void key_make(const fat_name *name, name_key *k)
{
    uint8_t case_bits;
    k->name = name;
    k->has_short = fat_short_from_name(name->units, name->len, k->short_name, &case_bits);
}

static bool entry_matches(const fat_dirent *d, const name_key *k)
{
    if (k->has_short && af_memcmp(d->raw, k->short_name, FAT_SHORT_NAME_LEN) == 0)
        return true;
    return fat_name_equal_nocase(d->name, d->name_len, k->name->units, k->name->len);
}

static vfs_status lookup_scan(fat_node *dir, const name_key *k, fat_dirent *out, bool build)
{
    fat_volume *vol = dir->vol;
    fat_dir_iter it;
    fat_dir_iter_init(&it, dir, 0);
    bool found = false;
    for (;;) {
        fat_dirent d;
        vfs_status st = fat_dir_iter_next(&it, &d);
        if (st == VFS_END_OF_DIRECTORY)
            break;
        if (st != VFS_OK) {
            if (build)
                fat_dir_index_drop(dir);
            return st;
        }
        if (build && !index_add(dir, &d)) {
            fat_dir_index_drop(dir);
            vol->stats.index_drops++;
            dir->index_failed = true;
            dir->index_fail_epoch = vol->index_epoch;
            build = false;
        }
        if (!found && k && entry_matches(&d, k)) {
            *out = d;
            out->name = NULL; /* points into this function's iterator */
            out->name_len = 0;
            found = true;
            if (!build)
                return VFS_OK;
        }
    }
    if (build) {
        dir->index_state = FAT_INDEX_READY;
        vol->stats.index_builds++;
    }
    return found ? VFS_OK : VFS_NO_FILE;
}

/* Read the entry whose short entry is at `slot` (with its LFN entries). */
static vfs_status read_entry(fat_node *dir, uint32_t slot, uint32_t lfn_count, fat_dir_iter *it, fat_dirent *out)
{
    fat_dir_iter_init(it, dir, slot - lfn_count);
    vfs_status st = fat_dir_iter_next(it, out);
    if (st == VFS_END_OF_DIRECTORY)
        return VFS_CORRUPT;
    if (st == VFS_OK && out->slot != slot)
        return VFS_CORRUPT;
    return st;
}

vfs_status fat_dir_lookup(fat_node *dir, const fat_name *name, fat_dirent *out)
{
    fat_volume *vol = dir->vol;
    name_key k;
    key_make(name, &k);
    if (dir->index_state == FAT_INDEX_NONE &&
        (!dir->index_failed || dir->index_fail_epoch != vol->index_epoch)) {
        dir->index_state = FAT_INDEX_BUILDING;
        dir->index_failed = false;
        vol->stats.scan_lookups++;
        return lookup_scan(dir, &k, out, true);
    }
    if (dir->index_state != FAT_INDEX_READY) {
        vol->stats.scan_lookups++;
        return lookup_scan(dir, &k, out, false);
    }
    vol->stats.index_lookups++;
    uint32_t slots[MAX_CANDIDATES], lfns[MAX_CANDIDATES], n = 0;
    if (k.has_short) {
        uint32_t i = index_find_short(dir, k.short_name);
        if (i != FAT_NONE) {
            slots[n] = vol->index[i].slot;
            lfns[n++] = vol->index[i].lfn_count;
        }
    }
    uint32_t h = fat_name_hash(name->units, name->len);
    for (uint32_t i = vol->index_long_heads[bucket_of(vol, dir->index, h)]; i != FAT_NONE;) {
        fat_index_entry *e = &vol->index[i];
        if (e->dir == dir->index && e->hash_long == h) {
            if (n == MAX_CANDIDATES)
                return lookup_scan(dir, &k, out, false);
            slots[n] = e->slot;
            lfns[n++] = e->lfn_count;
        }
        i = e->next_long;
    }
    /* Copy the candidates out first: reading them blocks. */
    _Static_assert(sizeof(fat_dir_iter) < 2048, "iterator fits on a fiber stack");
    fat_dir_iter it;
    for (uint32_t c = 0; c < n; c++) {
        vfs_status st = read_entry(dir, slots[c], lfns[c], &it, out);
        if (st != VFS_OK)
            return st;
        if (entry_matches(out, &k)) {
            out->name = NULL; /* points into the iterator on this stack */
            out->name_len = 0;
            return VFS_OK;
        }
    }
    return VFS_NO_FILE;
}

/* ---- insert and remove -------------------------------------------------------------------- */

static vfs_status short_name_used(fat_node *dir, const uint8_t *short_name, bool *used)
{
    if (dir->index_state == FAT_INDEX_READY) {
        *used = index_find_short(dir, short_name) != FAT_NONE;
        return VFS_OK;
    }
    fat_dir_iter it;
    fat_dir_iter_init(&it, dir, 0);
    for (;;) {
        fat_dirent d;
        vfs_status st = fat_dir_iter_next(&it, &d);
        if (st == VFS_END_OF_DIRECTORY)
            break;
        if (st != VFS_OK)
            return st;
        if (af_memcmp(d.raw, short_name, FAT_SHORT_NAME_LEN) == 0) {
            *used = true;
            return VFS_OK;
        }
    }
    *used = false;
    return VFS_OK;
}

static vfs_status choose_alias(fat_node *dir, const fat_name *name, uint8_t *short_name)
{
    fat_alias_basis basis;
    fat_alias_basis_make(name->units, name->len, &basis);
    for (uint32_t k = 0; k < FAT_ALIAS_CANDIDATES; k++) {
        if (!fat_alias_candidate(&basis, k, short_name))
            continue;
        bool used;
        vfs_status st = short_name_used(dir, short_name, &used);
        if (st != VFS_OK)
            return st;
        if (!used)
            return VFS_OK;
    }
    return VFS_DIRECTORY_IS_FULL;
}

vfs_status fat_dir_short_entry(fat_node *dir, const fat_name *name, uint8_t entry[32], uint32_t *lfn)
{
    uint8_t case_bits = 0;
    if (fat_short_from_name(name->units, name->len, entry, &case_bits)) {
        entry[FAT_DIRENT_NT_CASE] = case_bits;
        *lfn = 0;
        return VFS_OK;
    }
    vfs_status st = choose_alias(dir, name, entry);
    if (st != VFS_OK)
        return st;
    entry[FAT_DIRENT_NT_CASE] = 0;
    *lfn = fat_lfn_entry_count(name->len);
    return VFS_OK;
}

static bool in_ranges(uint32_t slot, const fat_slot_range *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (slot >= r[i].first && slot < r[i].end)
            return true;
    return false;
}

typedef struct run_scan {
    uint32_t start;             /* the run found */
    uint32_t end_slot;          /* first end-of-directory marker seen, FAT_NONE: none */
    uint32_t first_free;        /* first free slot seen, FAT_NONE: none */
    uint32_t at_end;            /* where the directory ended (END_OF_DIRECTORY) */
} run_scan;

/* One search for `need` consecutive usable slots in [lo, hi). one_block: they must lie in
 * one device block, contiguous on disk (one write carries them all); block: only in that
 * device block (UINT64_MAX: any). END_OF_DIRECTORY when the directory ends first, NO_FILE
 * when hi is reached. */
static vfs_status scan_for_run(fat_node *dir, uint32_t need, const fat_place_opts *o, uint32_t lo, uint32_t hi,
                              bool one_block, uint64_t block, run_scan *r)
{
    fat_dir_iter it;
    fat_dir_iter_init(&it, dir, lo);
    uint32_t run = 0;
    uint64_t run_off = 0;
    r->end_slot = r->first_free = FAT_NONE;
    for (; it.slot < hi; it.slot++) {
        const uint8_t *e;
        uint64_t offset;
        vfs_status st = iter_fetch(&it, &e, &offset);
        if (st == VFS_END_OF_DIRECTORY) {
            r->at_end = it.slot;
            return st;
        }
        if (st != VFS_OK)
            return st;
        bool free = e[0] == FAT_DIRENT_END || e[0] == FAT_DIRENT_DELETED;
        if (e[0] == FAT_DIRENT_END && r->end_slot == FAT_NONE)
            r->end_slot = it.slot;
        if (free && r->first_free == FAT_NONE)
            r->first_free = it.slot;
        bool usable = (free || in_ranges(it.slot, o->reuse, o->nreuse)) &&
                      (block == UINT64_MAX || offset / BLK_TRANSFER_SIZE == block);
        if (!usable) {
            run = 0;
            continue;
        }
        bool joins = run > 0 && (!one_block || (offset == run_off + (uint64_t)run * FAT_DIRENT_SIZE &&
                                                offset / BLK_TRANSFER_SIZE == run_off / BLK_TRANSFER_SIZE));
        if (!joins) {
            run = 0;
            r->start = it.slot;
            run_off = offset;
        }
        if (++run == need)
            return VFS_OK;
    }
    return VFS_NO_FILE;
}

vfs_status fat_dir_find_place(fat_node *dir, uint32_t need, const fat_place_opts *o, uint32_t *start, uint32_t *gap)
{
    run_scan r;
    *gap = FAT_NONE;
    vfs_status st;
    if (o->near_slot != FAT_NONE) {
        /* Only the device block of near_slot (one write for the whole change). */
        uint64_t near_off;
        st = fat_dir_slot_offset(dir, o->near_slot, &near_off);
        if (st != VFS_OK)
            return st == VFS_END_OF_DIRECTORY ? VFS_NO_FILE : st;
        uint32_t lo = o->near_slot >= 127u ? o->near_slot - 127u : 0;
        uint32_t hi = af_min_u32(o->near_slot + 128u, FAT_DIR_MAX_ENTRIES);
        st = scan_for_run(dir, need, o, lo, hi, true, near_off / BLK_TRANSFER_SIZE, &r);
        if (st == VFS_END_OF_DIRECTORY)
            st = VFS_NO_FILE;
    } else {
        /* Anywhere in one block, growing the directory (a few clusters at most: a set of
         * more slots than a cluster holds needs clusters side by side on disk, in one
         * block); failing that, anywhere at all (the set then spans blocks:
         * docs/ORDERING.md, "split entry sets"). */
        bool fixed_root = dir->is_root && dir->vol->geo.type != FAT_TYPE_32;
        for (uint32_t grown = 0;; grown++) {
            st = scan_for_run(dir, need, o, dir->free_hint, FAT_DIR_MAX_ENTRIES, true, UINT64_MAX, &r);
            if (o->nreuse == 0)
                dir->free_hint = r.first_free != FAT_NONE ? r.first_free
                                 : st == VFS_END_OF_DIRECTORY ? r.at_end : dir->free_hint;
            if (st != VFS_END_OF_DIRECTORY && st != VFS_NO_FILE)
                break;
            if (!o->grow || fixed_root || grown == 4 || r.at_end + need > FAT_DIR_MAX_ENTRIES) {
                st = scan_for_run(dir, need, o, dir->free_hint, FAT_DIR_MAX_ENTRIES, false, UINT64_MAX, &r);
                if (st == VFS_END_OF_DIRECTORY || st == VFS_NO_FILE)
                    st = VFS_DIRECTORY_IS_FULL;
                break;
            }
            st = fat_file_grow_chain(dir, 1);
            if (st != VFS_OK)
                break;
        }
    }
    if (st != VFS_OK)
        return st;
    *start = r.start;
    if (r.end_slot != FAT_NONE && r.end_slot < r.start)
        *gap = r.end_slot;
    return VFS_OK;
}

/* ---- edits: changes to directory slots, one change per device block ------------------------ */

static const uint8_t deleted_mark = FAT_DIRENT_DELETED;

enum { APPLY_ALL, APPLY_ONLY_BLOCK, APPLY_ALL_BUT_BLOCK };

static bool selected(const fat_dir_edit *e, int which, uint64_t block)
{
    bool in = e->offset / BLK_TRANSFER_SIZE == block;
    return which == APPLY_ALL || (which == APPLY_ONLY_BLOCK) == in;
}

static vfs_status apply_some(fat_volume *vol, const fat_dir_edit *edits, uint32_t n, int which, uint64_t key_block)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!selected(&edits[i], which, key_block))
            continue;
        uint64_t block = edits[i].offset / BLK_TRANSFER_SIZE;
        bool done = false;
        for (uint32_t k = 0; k < i && !done; k++)
            done = selected(&edits[k], which, key_block) && edits[k].offset / BLK_TRANSFER_SIZE == block;
        if (done)
            continue;
        blk_buf *buf;
        blk_status s = blk_cache_get(vol->cache, block, BLK_GET_READ, &buf);
        if (s == BLK_OK)
            s = blk_cache_prepare_write(vol->cache, buf);
        if (s != BLK_OK) {
            if (buf)
                blk_cache_release(vol->cache, buf);
            return vfs_status_from_blk(s);
        }
        /* Every edit of this block in one change, with no blocking point inside it, so
         * no write-back can catch the block half-changed. */
        uint8_t *data = blk_buf_data(buf);
        for (uint32_t k = i; k < n; k++)
            if (selected(&edits[k], which, key_block) && edits[k].offset / BLK_TRANSFER_SIZE == block)
                af_memcpy(data + edits[k].offset % BLK_TRANSFER_SIZE, edits[k].bytes, edits[k].len);
        blk_cache_mark_dirty(vol->cache, buf);
        blk_cache_release(vol->cache, buf);
    }
    return VFS_OK;
}

vfs_status fat_dir_apply(fat_volume *vol, const fat_dir_edit *edits, uint32_t n)
{
    return apply_some(vol, edits, n, APPLY_ALL, 0);
}

bool fat_dir_edits_one_block(const fat_dir_edit *edits, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        if (edits[i].offset / BLK_TRANSFER_SIZE != edits[0].offset / BLK_TRANSFER_SIZE)
            return false;
    return true;
}

/* Changes to an entry set that spans blocks (made by another system, or placed where
 * nothing else fit): the block holding the short entry (`key`) goes first when removing,
 * last when writing, each side of an order point, so a cut leaves at worst orphaned
 * long-name entries of an operation that had not taken effect, which recovery removes. */
static vfs_status apply_split(fat_volume *vol, const fat_dir_edit *edits, uint32_t n, uint64_t key, bool key_first)
{
    uint64_t block = key / BLK_TRANSFER_SIZE;
    vfs_status st = apply_some(vol, edits, n, key_first ? APPLY_ONLY_BLOCK : APPLY_ALL_BUT_BLOCK, block);
    if (st != VFS_OK)
        return st;
    blk_cache_order_point(vol->cache); /* rule: split entry sets */
    return apply_some(vol, edits, n, key_first ? APPLY_ALL_BUT_BLOCK : APPLY_ONLY_BLOCK, block);
}

static vfs_status edit_at(fat_node *dir, uint32_t slot, fat_dir_edit *e)
{
    vfs_status st = fat_dir_slot_offset(dir, slot, &e->offset);
    return st == VFS_END_OF_DIRECTORY ? VFS_CORRUPT : st;
}

static vfs_status delete_edits(fat_node *dir, uint32_t first, uint32_t end, fat_dir_edit *out)
{
    for (uint32_t slot = first; slot < end; slot++) {
        vfs_status st = edit_at(dir, slot, &out[slot - first]);
        if (st != VFS_OK)
            return st;
        out[slot - first].bytes = &deleted_mark;
        out[slot - first].len = 1;
    }
    return VFS_OK;
}

/* ---- the name index and times, after a change ------------------------------------------------- */

vfs_status fat_dir_forget(fat_node *dir, uint32_t slot, uint32_t lfn_count)
{
    fat_volume *vol = dir->vol;
    if (dir->index_state == FAT_INDEX_READY) {
        uint64_t off;
        vfs_status st = fat_dir_slot_offset(dir, slot, &off);
        if (st != VFS_OK)
            return st == VFS_END_OF_DIRECTORY ? VFS_CORRUPT : st;
        uint8_t short_name[FAT_SHORT_NAME_LEN];
        blk_status s = blk_cache_read_bytes(vol->cache, off, short_name, sizeof(short_name));
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        for (uint32_t i = vol->index_short_heads[short_bucket(vol, dir->index, short_name)]; i != FAT_NONE;) {
            fat_index_entry *e = &vol->index[i];
            if (e->dir == dir->index && e->slot == slot) {
                index_remove(dir, i);
                break;
            }
            i = e->next_short;
        }
    }
    if (slot - lfn_count < dir->free_hint)
        dir->free_hint = slot - lfn_count;
    return VFS_OK;
}

/* A directory's modify time follows its entries, as POSIX programs expect of mtime; the
 * root has no entry to hold one. */
vfs_status fat_dir_touch(fat_node *dir)
{
    fat_datetime now = fat_now(dir->vol);
    dir->write_date = now.date;
    dir->write_time = now.time;
    dir->access_date = now.date;
    return fat_node_write_dirent(dir);
}

/* ---- insert and remove ------------------------------------------------------------------------ */

/* End-of-directory markers before a set placed past them become deleted entries: in the
 * set's own change where they share its block, else durable before it (a reader stops at
 * the first marker and must not miss the set). */
static vfs_status fill_gap(fat_node *dir, uint32_t gap, uint32_t start, fat_dir_edit *edits, uint32_t *n,
                          uint64_t set_block)
{
    if (gap == FAT_NONE)
        return VFS_OK;
    bool elsewhere = false;
    for (uint32_t slot = gap; slot < start; slot++) {
        fat_dir_edit e;
        vfs_status st = delete_edits(dir, slot, slot + 1, &e);
        if (st == VFS_OK && e.offset / BLK_TRANSFER_SIZE == set_block && *n < FAT_DIR_MAX_EDITS) {
            edits[(*n)++] = e;
            continue;
        }
        if (st == VFS_OK)
            st = fat_dir_apply(dir->vol, &e, 1);
        if (st != VFS_OK)
            return st;
        elsewhere = true;
    }
    if (elsewhere)
        blk_cache_order_point(dir->vol->cache); /* rule: end markers before the set */
    return VFS_OK;
}

vfs_status fat_dir_place_set(fat_node *dir, const fat_dir_set *set, const fat_dir_edit *also, uint32_t nalso,
                            fat_dirent *out)
{
    /* Slots: [record] LFN entries (last part first) short entry. */
    uint8_t store[FAT_LFN_MAX_ENTRIES + 1][32];
    fat_dir_edit edits[FAT_DIR_MAX_EDITS];
    uint32_t n = 0, slot = set->start;
    const fat_name *name = set->name;
    /* Deletions first: the set may take some of the slots they free. */
    for (uint32_t i = 0; i < nalso && i + FAT_LFN_MAX_ENTRIES + 2 < FAT_DIR_MAX_EDITS; i++)
        edits[n++] = also[i];
    if (set->record) {
        vfs_status st = edit_at(dir, slot++, &edits[n]);
        if (st != VFS_OK)
            return st;
        edits[n].bytes = set->record;
        edits[n++].len = FAT_DIRENT_SIZE;
    }
    uint8_t checksum = fat_lfn_checksum(set->entry);
    for (uint32_t i = 0; i < set->lfn; i++) {
        vfs_status st = edit_at(dir, slot++, &edits[n]);
        if (st != VFS_OK)
            return st;
        fat_lfn_pack(name->units, name->len, checksum, set->lfn - i, store[i]);
        edits[n].bytes = store[i];
        edits[n++].len = FAT_DIRENT_SIZE;
    }
    uint32_t short_slot = slot;
    fat_dir_edit key;
    vfs_status st = edit_at(dir, short_slot, &key);
    if (st != VFS_OK)
        return st;
    key.bytes = set->entry;
    key.len = FAT_DIRENT_SIZE;
    st = fill_gap(dir, set->gap, set->start, edits, &n, key.offset / BLK_TRANSFER_SIZE);
    if (st != VFS_OK)
        return st;
    edits[n++] = key;
    if (fat_dir_edits_one_block(edits, n))
        st = fat_dir_apply(dir->vol, edits, n);
    else
        st = apply_split(dir->vol, edits, n, key.offset, false);
    if (st != VFS_OK)
        return st;
    out->slot = short_slot;
    out->lfn_count = set->lfn;
    af_memcpy(out->raw, set->entry, sizeof(out->raw));
    out->offset = key.offset;
    out->name = name->units;
    out->name_len = name->len;
    if (dir->index_state == FAT_INDEX_READY && !index_add(dir, out)) {
        fat_dir_index_drop(dir);
        dir->vol->stats.index_drops++;
    }
    out->name = NULL;
    out->name_len = 0;
    return VFS_OK;
}

vfs_status fat_dir_insert(fat_node *dir, const fat_name *name, const uint8_t raw[32], fat_dirent *out)
{
    fat_dir_set set = { .name = name };
    af_memcpy(set.entry, raw, sizeof(set.entry));
    vfs_status st = fat_dir_short_entry(dir, name, set.entry, &set.lfn);
    if (st != VFS_OK)
        return st;
    fat_place_opts o = { .near_slot = FAT_NONE, .grow = true };
    st = fat_dir_find_place(dir, set.lfn + 1u, &o, &set.start, &set.gap);
    if (st == VFS_OK)
        st = fat_dir_place_set(dir, &set, NULL, 0, out);
    if (st != VFS_OK)
        return st;
    return fat_dir_touch(dir);
}

vfs_status fat_dir_remove_edits(fat_node *dir, uint32_t slot, uint32_t lfn_count, fat_dir_edit *out)
{
    if (lfn_count > slot || lfn_count > FAT_LFN_MAX_ENTRIES)
        return VFS_CORRUPT;
    return delete_edits(dir, slot - lfn_count, slot + 1, out);
}

vfs_status fat_dir_remove_set(fat_volume *vol, const fat_dir_edit *edits, uint32_t n)
{
    if (fat_dir_edits_one_block(edits, n))
        return fat_dir_apply(vol, edits, n);
    return apply_split(vol, edits, n, edits[n - 1].offset, true);
}

vfs_status fat_dir_remove(fat_node *dir, uint32_t slot, uint32_t lfn_count)
{
    fat_dir_edit edits[FAT_LFN_MAX_ENTRIES + 1];
    vfs_status st = fat_dir_remove_edits(dir, slot, lfn_count, edits);
    if (st == VFS_OK)
        st = fat_dir_forget(dir, slot, lfn_count);
    if (st == VFS_OK)
        st = fat_dir_remove_set(dir->vol, edits, lfn_count + 1);
    if (st != VFS_OK)
        return st;
    return fat_dir_touch(dir);
}

vfs_status fat_dir_is_empty(fat_node *dir, bool *empty)
{
    fat_dir_iter it;
    fat_dirent d;
    fat_dir_iter_init(&it, dir, 0);
    vfs_status st = fat_dir_iter_next(&it, &d);
    if (st == VFS_END_OF_DIRECTORY) {
        *empty = true;
        return VFS_OK;
    }
    *empty = false;
    return st;
}

vfs_status fat_dir_write_dots(fat_volume *vol, uint32_t cluster, uint32_t parent_key, const uint8_t tmpl[32])
{
    uint8_t dots[64];
    for (int i = 0; i < 2; i++) {
        uint8_t *e = dots + 32 * i;
        af_memcpy(e, tmpl, 32);
        af_memset(e, ' ', FAT_SHORT_NAME_LEN);
        e[0] = '.';
        if (i == 1)
            e[1] = '.';
        e[FAT_DIRENT_ATTR] = FAT_ATTR_DIRECTORY;
        e[FAT_DIRENT_NT_CASE] = 0;
        uint32_t c = i == 0 ? cluster : parent_key;
        fat_raw_set_cluster(vol, e, c);
        af_store_le32(e + FAT_DIRENT_SIZE_BYTES, 0);
    }
    uint64_t at = fat_cluster_offset(&vol->geo, cluster);
    return vfs_status_from_blk(blk_cache_write_bytes(vol->cache, at, dots, sizeof(dots)));
}
