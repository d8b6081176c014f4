/* The public operations: open/close, read/write/truncate, stat, create, unlink, mkdir,
 * rmdir, rename, readdir, set_times. Lock order and write ordering: see fat.h. */
#include "fat/fat_engine.h"
#include "fat/fat_intent.h"

static void fill_times(fat_volume *vol, uint8_t raw[32])
{
    fat_datetime now = fat_now(vol);
    raw[FAT_DIRENT_CREATE_10MS] = now.hundredths;
    af_store_le16(raw + FAT_DIRENT_CREATE_TIME, now.time);
    af_store_le16(raw + FAT_DIRENT_CREATE_DATE, now.date);
    af_store_le16(raw + FAT_DIRENT_ACCESS_DATE, now.date);
    af_store_le16(raw + FAT_DIRENT_WRITE_TIME, now.time);
    af_store_le16(raw + FAT_DIRENT_WRITE_DATE, now.date);
}

/* Reference path's parent directory and prepare its last name. The root has no parent,
 * nor has an empty path from a base a name: it gives `root_status`, which is what each
 * operation says of the root (the base is in use as the caller's base). */
static vfs_status parent_and_name(fat_volume *vol, fat_node *base, const char *path, size_t len,
                                 vfs_status root_status, fat_node **parent, fat_name *name)
{
    const char *c;
    size_t n;
    vfs_status st = fat_path_parent(vol, base, path, len, parent, &c, &n);
    if (st != VFS_OK)
        return st;
    if (n == 0)
        st = root_status;
    else
        st = n > VFS_NAME_MAX ? VFS_NAME_TOO_LONG : fat_name_prepare(c, n, name);
    if (st != VFS_OK)
        fat_node_put(*parent);
    return st;
}

static void dir_write_lock(fat_volume *vol, fat_node *dir) { fp_rwlock_write_lock(vol->pool, &dir->lock); }
static void dir_write_unlock(fat_volume *vol, fat_node *dir) { fp_rwlock_write_unlock(vol->pool, &dir->lock); }

/* Write-lock distinct directories in the global order (first cluster, then node index). */
static uint32_t lock_dirs_sorted(fat_volume *vol, fat_node **dirs, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0; j--) {
            fat_node *a = dirs[j - 1], *b = dirs[j];
            uint32_t ka = fat_dir_cluster_key(a), kb = fat_dir_cluster_key(b);
            if (ka > kb || (ka == kb && a->index > b->index)) {
                dirs[j - 1] = b;
                dirs[j] = a;
            }
        }
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++)
        if (m == 0 || dirs[m - 1] != dirs[i])
            dirs[m++] = dirs[i];
    for (uint32_t i = 0; i < m; i++)
        dir_write_lock(vol, dirs[i]);
    return m;
}

static void unlock_dirs(fat_volume *vol, fat_node **dirs, uint32_t m)
{
    while (m-- > 0)
        dir_write_unlock(vol, dirs[m]);
}

/* ---- stat, open, close ------------------------------------------------------------------ */

vfs_status fat_stat_at(fat_volume *vol, fat_node *base, const char *path, size_t len, vfs_stat *out)
{
    fat_node *node;
    vfs_status st = fat_path_node(vol, base, path, len, &node);
    if (st != VFS_OK)
        return st;
    fat_node_fill_stat(node, out);
    return fat_node_put(node);
}

vfs_status fat_open_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint64_t flags, fat_node **out)
{
    uint64_t access = flags & VFS_OPEN_ACCESS_MASK;
    if (access == VFS_OPEN_ACCESS_MASK)
        return VFS_INVALID_ARGUMENT;
    bool writing = access != VFS_OPEN_READ_ONLY || (flags & VFS_OPEN_TRUNCATE);
    bool create = (flags & VFS_OPEN_CREATE) != 0;
    if (writing && vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *dir;
    fat_name name;
    vfs_status st = parent_and_name(vol, base, path, len, VFS_IS_DIRECTORY, &dir, &name);
    if (st != VFS_OK)
        return st;
    if (create)
        fp_rwlock_write_lock(vol->pool, &dir->lock);
    else
        fp_rwlock_read_lock(vol->pool, &dir->lock);
    fat_dirent d;
    fat_node *node = NULL;
    st = dir->unlinked ? VFS_NO_FILE : fat_dir_lookup(dir, &name, &d);
    if (st == VFS_OK) {
        if (create && (flags & VFS_OPEN_EXCLUSIVE))
            st = VFS_ALREADY_EXISTS;
        else
            st = fat_node_get(vol, dir, &d, &node);
    } else if (st == VFS_NO_FILE && create && !dir->unlinked) {
        if (vol->read_only) {
            st = VFS_READ_ONLY_FS;
        } else {
            uint8_t raw[32] = { 0 };
            raw[FAT_DIRENT_ATTR] = FAT_ATTR_ARCHIVE;
            fill_times(vol, raw);
            st = fat_dir_insert(dir, &name, raw, &d);
            if (st == VFS_OK)
                st = fat_node_get(vol, dir, &d, &node);
        }
    }
    if (create)
        fp_rwlock_write_unlock(vol->pool, &dir->lock);
    else
        fp_rwlock_read_unlock(vol->pool, &dir->lock);
    fat_node_put(dir);
    if (st != VFS_OK)
        return st;
    if (node->is_dir) {
        fat_node_put(node);
        return VFS_IS_DIRECTORY;
    }
    if (writing && (node->attr & FAT_ATTR_READ_ONLY)) {
        fat_node_put(node);
        return VFS_ACCESS_DENIED;
    }
    if (flags & VFS_OPEN_TRUNCATE) {
        fp_rwlock_write_lock(vol->pool, &node->lock);
        st = node->size > 0 ? fat_file_truncate_locked(node, 0) : VFS_OK;
        fp_rwlock_write_unlock(vol->pool, &node->lock);
        if (st != VFS_OK) {
            fat_node_put(node);
            return st;
        }
    }
    *out = node;
    return VFS_OK;
}

vfs_status fat_close(fat_node *node)
{
    return fat_node_put(node);
}

/* ---- file data --------------------------------------------------------------------------- */

vfs_status fat_read(fat_node *node, uint64_t offset, void *dst, size_t len, size_t *done)
{
    *done = 0;
    if (node->is_dir)
        return VFS_IS_DIRECTORY;
    /* Readers share the node: the run cache they all update is only a cache (every
     * mapping is answered from a local copy), and writers hold the write side. */
    fp_rwlock_read_lock(node->vol->pool, &node->lock);
    vfs_status st = fat_file_read_locked(node, offset, dst, len, done);
    fp_rwlock_read_unlock(node->vol->pool, &node->lock);
    return st;
}

/* Data sent straight from the caller's buffer is waited for after the file's lock is
 * let go, so writes to one file overlap on the device (readers and writers of the same
 * blocks wait for them in the block layer). If it fails, the bytes it covered are
 * undefined, as after any failed write, and the write reports the error. */
static vfs_status write_wait(fat_volume *vol, blk_write_batch *batch, vfs_status st, size_t *done)
{
    blk_status b = blk_write_batch_wait(vol->cache, batch);
    if (st == VFS_OK && b != BLK_OK) {
        *done = 0;
        return vfs_status_from_blk(b);
    }
    return st;
}

vfs_status fat_write(fat_node *node, uint64_t offset, const void *src, size_t len, size_t *done)
{
    *done = 0;
    if (node->is_dir)
        return VFS_IS_DIRECTORY;
    if (!src && len > 0)
        return VFS_INVALID_ARGUMENT;
    fp_rwlock_write_lock(node->vol->pool, &node->lock);
    blk_write_batch batch;
    blk_write_batch_init(&batch);
    node->write_batch = &batch;
    vfs_status st = fat_file_write_locked(node, offset, src, len, done);
    node->write_batch = NULL;
    fp_rwlock_write_unlock(node->vol->pool, &node->lock);
    return write_wait(node->vol, &batch, st, done);
}

vfs_status fat_append(fat_node *node, const void *src, size_t len, size_t *done, uint64_t *offset)
{
    *done = 0;
    if (node->is_dir)
        return VFS_IS_DIRECTORY;
    if (!src && len > 0)
        return VFS_INVALID_ARGUMENT;
    fp_rwlock_write_lock(node->vol->pool, &node->lock);
    blk_write_batch batch;
    blk_write_batch_init(&batch);
    node->write_batch = &batch;
    *offset = node->size;
    vfs_status st = fat_file_write_locked(node, node->size, src, len, done);
    node->write_batch = NULL;
    fp_rwlock_write_unlock(node->vol->pool, &node->lock);
    return write_wait(node->vol, &batch, st, done);
}

vfs_status fat_truncate(fat_node *node, uint64_t length)
{
    if (node->is_dir)
        return VFS_IS_DIRECTORY;
    fp_rwlock_write_lock(node->vol->pool, &node->lock);
    vfs_status st = fat_file_truncate_locked(node, length);
    fp_rwlock_write_unlock(node->vol->pool, &node->lock);
    return st;
}

uint64_t fat_size(fat_node *node)
{
    return node->size;
}

vfs_status fat_fsync(fat_node *node)
{
    fat_volume *vol = node->vol;
    vfs_status st = VFS_OK;
    if (!node->is_dir) {
        fp_rwlock_write_lock(vol->pool, &node->lock);
        if (node->dirent_dirty) {
            blk_cache_order_point(vol->cache); /* rule: data before link */
            st = fat_node_write_dirent(node);
        }
        fp_rwlock_write_unlock(vol->pool, &node->lock);
    }
    if (st == VFS_OK && !vol->read_only)
        st = fat_fsinfo_checkpoint(vol);
    if (st == VFS_OK && !vol->read_only)
        st = vfs_status_from_blk(blk_cache_flush(vol->cache));
    return st;
}

vfs_status fat_fstat(fat_node *node, vfs_stat *out)
{
    fat_node_fill_stat(node, out);
    return VFS_OK;
}

/* ---- namespace ------------------------------------------------------------------------------ */

vfs_status fat_unlink_at(fat_volume *vol, fat_node *base, const char *path, size_t len)
{
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *dir;
    fat_name name;
    vfs_status st = parent_and_name(vol, base, path, len, VFS_IS_DIRECTORY, &dir, &name);
    if (st != VFS_OK)
        return st;
    dir_write_lock(vol, dir);
    fat_dirent d;
    fat_node *node = NULL;
    st = dir->unlinked ? VFS_NO_FILE : fat_dir_lookup(dir, &name, &d);
    if (st == VFS_OK && (d.raw[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY))
        st = VFS_IS_DIRECTORY;
    if (st == VFS_OK)
        st = fat_node_get(vol, dir, &d, &node);
    if (st == VFS_OK) {
        fp_rwlock_write_lock(vol->pool, &node->lock);
        st = fat_dir_remove(dir, node->slot, node->lfn_count);
        if (st == VFS_OK) {
            node->unlinked = true;
            fat_node_unhash(node);
            fat_node_uncommit(node);
        }
        fp_rwlock_write_unlock(vol->pool, &node->lock);
    }
    dir_write_unlock(vol, dir);
    vfs_status st2 = node ? fat_node_put(node) : VFS_OK;
    fat_node_put(dir);
    return st != VFS_OK ? st : st2;
}

vfs_status fat_mkdir_at(fat_volume *vol, fat_node *base, const char *path, size_t len)
{
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *dir;
    fat_name name;
    vfs_status st = parent_and_name(vol, base, path, len, VFS_ALREADY_EXISTS, &dir, &name);
    if (st != VFS_OK)
        return st;
    dir_write_lock(vol, dir);
    fat_dirent d;
    st = dir->unlinked ? VFS_NO_FILE : fat_dir_lookup(dir, &name, &d);
    if (st == VFS_OK)
        st = VFS_ALREADY_EXISTS;
    else if (st == VFS_NO_FILE && !dir->unlinked)
        st = fat_alloc_reserve_wait(vol, 1);
    if (st == VFS_OK) {
        uint32_t n;
        uint32_t c = fat_alloc_claim_run(vol, FAT_NONE, 1, &n);
        uint8_t raw[32] = { 0 };
        raw[FAT_DIRENT_ATTR] = FAT_ATTR_DIRECTORY;
        fill_times(vol, raw);
        fat_raw_set_cluster(vol, raw, c);
        /* The new directory's cluster and FAT entry first, then the entry naming it. */
        st = fat_table_set(vol, c, fat_eoc_value(vol->geo.type));
        if (st == VFS_OK)
            st = fat_io_write_zeros(vol, fat_cluster_offset(&vol->geo, c), vol->geo.bytes_per_cluster);
        if (st == VFS_OK)
            st = fat_dir_write_dots(vol, c, dir->is_root ? 0 : dir->first_cluster, raw);
        if (st == VFS_OK) {
            blk_cache_order_point(vol->cache); /* rule: data before link */
            st = fat_dir_insert(dir, &name, raw, &d);
        }
        if (st != VFS_OK)
            fat_chain_free(vol, c);
    }
    dir_write_unlock(vol, dir);
    fat_node_put(dir);
    return st;
}

/* Look up `name` in dir (read lock) and reference its node. */
static vfs_status lookup_node(fat_volume *vol, fat_node *dir, const fat_name *name, fat_node **out)
{
    fp_rwlock_read_lock(vol->pool, &dir->lock);
    fat_dirent d;
    vfs_status st = dir->unlinked ? VFS_NO_FILE : fat_dir_lookup(dir, name, &d);
    if (st == VFS_OK)
        st = fat_node_get(vol, dir, &d, out);
    fp_rwlock_read_unlock(vol->pool, &dir->lock);
    return st;
}

/* Is `node` still the entry of `dir` it was looked up as? (dir locked) */
static bool still_in(const fat_node *node, const fat_node *dir)
{
    return !dir->unlinked && !node->unlinked && node->hashed && node->parent_cluster == fat_dir_cluster_key(dir);
}

vfs_status fat_rmdir_at(fat_volume *vol, fat_node *base, const char *path, size_t len)
{
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *dir;
    fat_name name;
    vfs_status st = parent_and_name(vol, base, path, len, VFS_BUSY, &dir, &name);
    if (st != VFS_OK)
        return st;
    fat_node *child = NULL;
    st = lookup_node(vol, dir, &name, &child);
    if (st == VFS_OK && !child->is_dir)
        st = VFS_NOT_DIRECTORY;
    if (st == VFS_OK) {
        fat_node *locks[2] = { dir, child };
        uint32_t m = lock_dirs_sorted(vol, locks, 2);
        bool empty = false;
        st = still_in(child, dir) ? fat_dir_is_empty(child, &empty) : VFS_NO_FILE;
        if (st == VFS_OK && !empty)
            st = VFS_NOT_EMPTY;
        if (st == VFS_OK)
            st = fat_dir_remove(dir, child->slot, child->lfn_count);
        if (st == VFS_OK) {
            child->unlinked = true; /* its cluster goes at the last reference */
            fat_node_unhash(child);
            fat_dir_index_drop(child);
        }
        unlock_dirs(vol, locks, m);
    }
    vfs_status st2 = child ? fat_node_put(child) : VFS_OK;
    fat_node_put(dir);
    return st != VFS_OK ? st : st2;
}

/* Does directory `dir` lie inside the directory whose first cluster is `ancestor`? Walks
 * ".." entries up to the root (rename_lock held, so no ".." changes meanwhile). */
static vfs_status is_inside(fat_volume *vol, const fat_node *dir, uint32_t ancestor, bool *inside)
{
    *inside = false;
    if (dir->is_root)
        return VFS_OK;
    uint32_t c = dir->first_cluster;
    for (uint32_t steps = 0; steps < vol->geo.cluster_count; steps++) {
        if (c == ancestor) {
            *inside = true;
            return VFS_OK;
        }
        if (c == 0 || c == vol->geo.root_cluster)
            return VFS_OK;
        if (!fat_cluster_valid(vol, c))
            return VFS_CORRUPT;
        uint8_t e[32];
        blk_status s = blk_cache_read_bytes(vol->cache, fat_cluster_offset(&vol->geo, c) + 32u, e, sizeof(e));
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        if (e[0] != '.' || e[1] != '.')
            return VFS_CORRUPT;
        c = fat_raw_cluster(vol, e);
    }
    return VFS_CORRUPT;
}

/* A moved directory's ".." names its new parent (0 for the root). */
static vfs_status dotdot_edit(fat_volume *vol, fat_node *moved, fat_node *parent, uint8_t dd[32], fat_dir_edit *e)
{
    e->offset = fat_cluster_offset(&vol->geo, moved->first_cluster) + FAT_DIRENT_SIZE;
    blk_status s = blk_cache_read_bytes(vol->cache, e->offset, dd, FAT_DIRENT_SIZE);
    if (s != BLK_OK)
        return vfs_status_from_blk(s);
    fat_raw_set_cluster(vol, dd, parent->is_root ? 0 : parent->first_cluster);
    e->bytes = dd;
    e->len = FAT_DIRENT_SIZE;
    return VFS_OK;
}

/* The rename of src (in sp) to dname in dp, replacing tgt (or none); every lock held.
 * docs/ORDERING.md, "rename": everything that can fail without a change is done first (a
 * failed rename changes nothing); then, when the new set fits in the old entry's block
 * (same directory), one change of that block removes the old name and writes the new one;
 * otherwise the new set goes in with a rename record beside it (step 1), the old entry
 * goes (step 2), the record goes (step 3), each in its own flush epoch. A replaced target
 * goes in the new set's change when it shares its block, else in an epoch before. */
static vfs_status rename_locked(fat_volume *vol, fat_node *sp, fat_node *dp, const fat_name *dname, fat_node *src,
                               fat_node *tgt)
{
    if (!still_in(src, sp) || dp->unlinked)
        return VFS_NO_FILE;
    fat_dirent d;
    vfs_status st = fat_dir_lookup(dp, dname, &d);
    if (st == VFS_OK) {
        bool same = sp == dp && d.slot == src->slot;
        if (!same && (!tgt || !still_in(tgt, dp) || d.slot != tgt->slot))
            return VFS_BUSY; /* the target changed under us: the caller retries */
        if (same)
            tgt = NULL;
    } else if (st != VFS_NO_FILE) {
        return st;
    } else if (tgt) {
        return VFS_BUSY;
    }
    if (tgt) {
        if (tgt->is_dir && !src->is_dir)
            return VFS_IS_DIRECTORY;
        if (!tgt->is_dir && src->is_dir)
            return VFS_NOT_DIRECTORY;
        if (tgt->is_dir) {
            bool empty;
            st = fat_dir_is_empty(tgt, &empty);
            if (st != VFS_OK)
                return st;
            if (!empty)
                return VFS_NOT_EMPTY;
        }
    }
    /* File node locks, in node-index order, so no writer is mid-update of an entry. */
    fat_node *files[2] = { NULL, NULL };
    uint32_t nf = 0;
    if (!src->is_dir)
        files[nf++] = src;
    if (tgt && !tgt->is_dir)
        files[nf++] = tgt;
    if (nf == 2 && files[0]->index > files[1]->index) {
        fat_node *t = files[0];
        files[0] = files[1];
        files[1] = t;
    }
    for (uint32_t i = 0; i < nf; i++)
        fp_rwlock_write_lock(vol->pool, &files[i]->lock);

    /* Everything that can fail without changing anything: the new short name, the old and
     * target entries' slots, and a place for the new set. */
    fat_dir_set set = { .name = dname, .gap = FAT_NONE };
    fat_dir_edit s_del[FAT_LFN_MAX_ENTRIES + 1], t_del[FAT_LFN_MAX_ENTRIES + 1];
    uint32_t s_n = src->lfn_count + 1u, t_n = tgt ? tgt->lfn_count + 1u : 0;
    st = fat_dir_remove_edits(sp, src->slot, src->lfn_count, s_del);
    /* The new entry is the old one as it stands in the cache (ordered after its chain),
     * renamed; the node's newer size or cluster, if any, follows as for any open file. */
    if (st == VFS_OK)
        st = vfs_status_from_blk(blk_cache_read_bytes(vol->cache, s_del[s_n - 1].offset, set.entry, 32));
    if (st == VFS_OK)
        st = fat_dir_short_entry(dp, dname, set.entry, &set.lfn);
    if (st == VFS_OK && tgt)
        st = fat_dir_remove_edits(dp, tgt->slot, tgt->lfn_count, t_del);
    fat_slot_range ranges[2];
    uint32_t nr = 0;
    if (tgt)
        ranges[nr++] = (fat_slot_range){ tgt->slot - tgt->lfn_count, tgt->slot + 1u };
    bool in_place = false, beside_target = false;
    if (st == VFS_OK && sp == dp && fat_dir_edits_one_block(s_del, s_n)) {
        ranges[nr++] = (fat_slot_range){ src->slot - src->lfn_count, src->slot + 1u };
        fat_place_opts o = { ranges, nr, src->slot, false };
        st = fat_dir_find_place(dp, set.lfn + 1u, &o, &set.start, &set.gap);
        in_place = st == VFS_OK;
        nr--;
        if (st == VFS_NO_FILE)
            st = VFS_OK;
    }
    if (st == VFS_OK && !in_place && tgt && fat_dir_edits_one_block(t_del, t_n)) {
        fat_place_opts o = { ranges, nr, tgt->slot, false };
        st = fat_dir_find_place(dp, set.lfn + 2u, &o, &set.start, &set.gap);
        beside_target = st == VFS_OK;
        if (st == VFS_NO_FILE)
            st = VFS_OK;
    }
    if (st == VFS_OK && !in_place && !beside_target) {
        fat_place_opts o = { NULL, 0, FAT_NONE, true };
        st = fat_dir_find_place(dp, set.lfn + 2u, &o, &set.start, &set.gap);
    }
    if (st != VFS_OK) {
        for (uint32_t i = nf; i-- > 0;)
            fp_rwlock_write_unlock(vol->pool, &files[i]->lock);
        return st;
    }

    bool t_with_set = tgt && (beside_target || (in_place && fat_dir_edits_one_block(t_del, t_n) &&
                                                t_del[0].offset / BLK_TRANSFER_SIZE ==
                                                    s_del[0].offset / BLK_TRANSFER_SIZE));
    if (tgt) {
        st = fat_dir_forget(dp, tgt->slot, tgt->lfn_count);
        if (st == VFS_OK && !t_with_set) {
            /* A replaced target in a block of its own: gone before the new name appears,
             * so a cut never shows two entries of one name. */
            st = fat_dir_remove_set(vol, t_del, t_n);
            blk_cache_order_point(vol->cache); /* rule: rename, target first */
        }
        if (st == VFS_OK) {
            tgt->unlinked = true;
            fat_node_unhash(tgt);
            fat_node_uncommit(tgt);
            if (tgt->is_dir)
                fat_dir_index_drop(tgt);
        }
    }
    if (st == VFS_OK)
        st = fat_dir_forget(sp, src->slot, src->lfn_count);
    uint8_t record[32];
    if (st == VFS_OK) {
        fat_dir_edit also[2 * (FAT_LFN_MAX_ENTRIES + 1)];
        uint32_t na = 0;
        if (t_with_set)
            for (uint32_t i = 0; i < t_n; i++)
                also[na++] = t_del[i];
        if (in_place) {
            for (uint32_t i = 0; i < s_n; i++)
                also[na++] = s_del[i];
        } else {
            /* The old entry's latest version (a size or cluster it took in this epoch)
             * durable before the new one that copies it, so a cut never pairs the new
             * name with an older old one the record would not recognise. */
            blk_cache_order_point(vol->cache); /* rule: rename, step 1 */
            fat_rename_record rec = { .source_dir = fat_dir_cluster_key(sp), .source_slot = (uint16_t)src->slot,
                                      .source_lfn_count = (uint8_t)src->lfn_count,
                                      .moved_directory = src->is_dir && sp != dp };
            blk_status b = blk_cache_read_bytes(vol->cache, s_del[s_n - 1].offset, rec.source_name, 11);
            st = vfs_status_from_blk(b);
            fat_rename_record_encode(&rec, record);
            set.record = record;
        }
        if (st == VFS_OK)
            st = fat_dir_place_set(dp, &set, also, na, &d);
    }
    if (st == VFS_OK) {
        fat_node_rehash(src, fat_dir_cluster_key(dp), d.slot, d.lfn_count, d.offset);
    }
    if (st == VFS_OK && !in_place) {
        /* Step 2: the old name goes (and a moved directory's ".." follows). */
        blk_cache_order_point(vol->cache); /* rule: rename, step 2 */
        st = fat_dir_remove_set(vol, s_del, s_n);
        if (st == VFS_OK && src->is_dir && sp != dp) {
            uint8_t dd[32];
            fat_dir_edit e;
            st = dotdot_edit(vol, src, dp, dd, &e);
            if (st == VFS_OK)
                st = fat_dir_apply(vol, &e, 1);
        }
        /* Step 3: the record goes, once the old name's removal is durable. */
        blk_cache_order_point(vol->cache); /* rule: rename, step 3 */
        uint8_t cleared[32];
        fat_rename_record_clear(cleared);
        uint64_t at;
        vfs_status st3 = fat_dir_slot_offset(dp, d.slot - d.lfn_count - 1u, &at);
        if (st3 == VFS_OK) {
            fat_dir_edit e = { at, cleared, FAT_DIRENT_SIZE };
            st3 = fat_dir_apply(vol, &e, 1);
        }
        if (st == VFS_OK)
            st = st3;
    }
    if (st == VFS_OK)
        st = fat_dir_touch(dp);
    if (st == VFS_OK && sp != dp)
        st = fat_dir_touch(sp);
    for (uint32_t i = nf; i-- > 0;)
        fp_rwlock_write_unlock(vol->pool, &files[i]->lock);
    return st;
}

vfs_status fat_rename_at(fat_volume *vol, fat_node *old_base, const char *old_path, size_t old_len,
                         fat_node *new_base, const char *new_path, size_t new_len)
{
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *sp, *dp;
    fat_name sname, dname;
    vfs_status st = parent_and_name(vol, old_base, old_path, old_len, VFS_BUSY, &sp, &sname);
    if (st != VFS_OK)
        return st;
    st = parent_and_name(vol, new_base, new_path, new_len, VFS_BUSY, &dp, &dname);
    if (st != VFS_OK) {
        fat_node_put(sp);
        return st;
    }
    fp_mutex_lock(vol->pool, &vol->rename_lock);
    for (int attempt = 0; attempt < 8; attempt++) {
        fat_node *src = NULL, *tgt = NULL;
        st = lookup_node(vol, sp, &sname, &src);
        if (st == VFS_OK) {
            vfs_status t = lookup_node(vol, dp, &dname, &tgt);
            if (t != VFS_OK && t != VFS_NO_FILE)
                st = t;
            if (tgt == src && tgt) {
                fat_node_put(tgt);
                tgt = NULL;
            }
        }
        /* A removed base's ".." may name a directory long gone: no walk up from it. */
        if (st == VFS_OK && dp->unlinked)
            st = VFS_NO_FILE;
        if (st == VFS_OK && src->is_dir) {
            bool inside;
            st = is_inside(vol, dp, src->first_cluster, &inside);
            if (st == VFS_OK && inside)
                st = VFS_INVALID_ARGUMENT;
        }
        if (st == VFS_OK) {
            fat_node *locks[4] = { sp, dp, NULL, NULL };
            uint32_t n = 2;
            if (src->is_dir)
                locks[n++] = src;
            if (tgt && tgt->is_dir)
                locks[n++] = tgt;
            uint32_t m = lock_dirs_sorted(vol, locks, n);
            st = rename_locked(vol, sp, dp, &dname, src, tgt);
            unlock_dirs(vol, locks, m);
        }
        if (tgt)
            fat_node_put(tgt);
        if (src)
            fat_node_put(src);
        if (st != VFS_BUSY)
            break;
    }
    fp_mutex_unlock(vol->pool, &vol->rename_lock);
    fat_node_put(sp);
    fat_node_put(dp);
    return st;
}

/* The node's times; the caller holds a reference to it. */
static vfs_status node_set_times(fat_volume *vol, fat_node *node, int64_t atime, int64_t mtime)
{
    if (node->is_root)
        return VFS_OK;
    vfs_status st = VFS_OK;
    fp_rwlock_write_lock(vol->pool, &node->lock);
    if (atime >= 0)
        node->access_date = fat_time_from_unix_zoned(atime, 0, vol->cfg.time_offset_minutes).date;
    if (mtime >= 0) {
        fat_datetime t = fat_time_from_unix_zoned(mtime, 0, vol->cfg.time_offset_minutes);
        node->write_date = t.date;
        node->write_time = t.time;
    }
    if (node->unlinked)
        st = VFS_NO_FILE;
    else if (node->is_dir)
        st = fat_node_write_dirent(node);
    else
        /* A file's times go with its next entry write (close's commit, fsync, sync),
         * like its size: written now, a file being copied would take an order point and
         * so a FLUSH of its own, its entry carrying the new size too. */
        node->dirent_dirty = true;
    fp_rwlock_write_unlock(vol->pool, &node->lock);
    return st;
}

vfs_status fat_set_times_at(fat_volume *vol, fat_node *base, const char *path, size_t len, int64_t atime, int64_t mtime)
{
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *node;
    vfs_status st = fat_path_node(vol, base, path, len, &node);
    if (st != VFS_OK)
        return st;
    st = node_set_times(vol, node, atime, mtime);
    vfs_status st2 = fat_node_put(node);
    return st != VFS_OK ? st : st2;
}

vfs_status fat_set_times_node(fat_node *node, int64_t atime, int64_t mtime)
{
    fat_volume *vol = node->vol;
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    return node_set_times(vol, node, atime, mtime);
}

/* ---- directories ------------------------------------------------------------------------- */

vfs_status fat_opendir_at(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **out)
{
    fat_node *node;
    vfs_status st = fat_path_node(vol, base, path, len, &node);
    if (st != VFS_OK)
        return st;
    if (!node->is_dir) {
        fat_node_put(node);
        return VFS_NOT_DIRECTORY;
    }
    *out = node;
    return VFS_OK;
}

vfs_status fat_readdir(fat_node *dir, uint64_t *pos, char *name_out, size_t *name_len, vfs_stat *st_out)
{
    fat_volume *vol = dir->vol;
    *name_len = 0;
    if (!dir->is_dir)
        return VFS_NOT_DIRECTORY;
    if (*pos >= FAT_DIR_MAX_ENTRIES)
        return VFS_END_OF_DIRECTORY;
    fp_rwlock_read_lock(vol->pool, &dir->lock);
    vfs_status st = VFS_END_OF_DIRECTORY;
    if (!dir->unlinked) {
        fat_dir_iter it;
        fat_dirent d;
        fat_dir_iter_init(&it, dir, (uint32_t)*pos);
        st = fat_dir_iter_next(&it, &d);
        if (st == VFS_OK)
            st = fat_utf16_to_utf8(d.name, d.name_len, name_out, FAT_READDIR_NAME_MAX, name_len);
        if (st == VFS_OK) {
            *pos = d.slot + 1u;
            if (st_out) {
                fat_node *n = fat_node_find(vol, fat_dir_cluster_key(dir), d.slot);
                if (n)
                    fat_node_fill_stat(n, st_out);
                else
                    fat_stat_from_raw(vol, d.raw, d.offset, st_out);
            }
        }
    }
    fp_rwlock_read_unlock(vol->pool, &dir->lock);
    return st;
}

/* ---- from the root ------------------------------------------------------------------------ */

vfs_status fat_stat(fat_volume *vol, const char *path, size_t len, vfs_stat *out)
{
    return fat_stat_at(vol, NULL, path, len, out);
}

vfs_status fat_open(fat_volume *vol, const char *path, size_t len, uint64_t flags, fat_node **out)
{
    return fat_open_at(vol, NULL, path, len, flags, out);
}

vfs_status fat_unlink(fat_volume *vol, const char *path, size_t len) { return fat_unlink_at(vol, NULL, path, len); }
vfs_status fat_mkdir(fat_volume *vol, const char *path, size_t len) { return fat_mkdir_at(vol, NULL, path, len); }
vfs_status fat_rmdir(fat_volume *vol, const char *path, size_t len) { return fat_rmdir_at(vol, NULL, path, len); }

vfs_status fat_rename(fat_volume *vol, const char *old_path, size_t old_len, const char *new_path, size_t new_len)
{
    return fat_rename_at(vol, NULL, old_path, old_len, NULL, new_path, new_len);
}

vfs_status fat_set_times(fat_volume *vol, const char *path, size_t len, int64_t atime, int64_t mtime)
{
    return fat_set_times_at(vol, NULL, path, len, atime, mtime);
}

vfs_status fat_opendir(fat_volume *vol, const char *path, size_t len, fat_node **out)
{
    return fat_opendir_at(vol, NULL, path, len, out);
}
