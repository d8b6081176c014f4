/* The node table: one node per open file or cached directory, found by where its short
 * entry lives (directory first cluster, slot). File nodes go at their last reference;
 * directory nodes stay cached with their name index until the table needs the slot.
 *
 * A node's in-memory size, first cluster and times are authoritative while it exists;
 * they are written to the directory entry (in a pinned cache block, never blocking between
 * read and write) when they change size/cluster, at fsync and at the last reference. */
#include "fat/fat_engine.h"

static uint32_t key_hash(const fat_volume *vol, uint32_t parent_cluster, uint32_t slot)
{
    uint32_t h = parent_cluster * 0x9E3779B1u ^ (slot + 0x7F4A7C15u) * 0x85EBCA77u;
    return (h ^ (h >> 15)) & vol->node_hash_mask;
}

vfs_status fat_node_table_init(fat_volume *vol)
{
    const fat_config *cfg = &vol->cfg;
    uint32_t buckets = 1;
    while (buckets < cfg->max_nodes)
        buckets <<= 1;
    vol->nodes = cfg->node_memory;
    vol->node_hash = (uint32_t *)(void *)(vol->nodes + cfg->max_nodes);
    vol->node_hash_mask = buckets - 1u;
    vol->runs = cfg->run_memory;
    for (uint32_t i = 0; i < buckets; i++)
        vol->node_hash[i] = FAT_NONE;
    vol->node_free = FAT_NONE;
    vol->commit_head = FAT_NONE;
    vol->commit_count = 0;
    for (uint32_t i = cfg->max_nodes; i-- > 0;) {
        fat_node *n = &vol->nodes[i];
        af_memset(n, 0, sizeof(*n));
        n->vol = vol;
        n->index = i;
        n->runs = vol->runs + (size_t)i * cfg->runs_per_node;
        n->hash_next = vol->node_free;
        vol->node_free = i;
    }
    return VFS_OK;
}

fat_node *fat_node_find(fat_volume *vol, uint32_t parent_cluster, uint32_t slot)
{
    for (uint32_t i = vol->node_hash[key_hash(vol, parent_cluster, slot)]; i != FAT_NONE;) {
        fat_node *n = &vol->nodes[i];
        if (n->parent_cluster == parent_cluster && n->slot == slot)
            return n;
        i = n->hash_next;
    }
    return NULL;
}

void fat_node_unhash(fat_node *node)
{
    if (!node->hashed)
        return;
    fat_volume *vol = node->vol;
    uint32_t *link = &vol->node_hash[key_hash(vol, node->parent_cluster, node->slot)];
    while (*link != node->index) {
        AF_ASSERT(*link != FAT_NONE);
        link = &vol->nodes[*link].hash_next;
    }
    *link = node->hash_next;
    node->hashed = false;
}

static void node_hash_in(fat_node *node)
{
    fat_volume *vol = node->vol;
    uint32_t *head = &vol->node_hash[key_hash(vol, node->parent_cluster, node->slot)];
    node->hash_next = *head;
    *head = node->index;
    node->hashed = true;
}

void fat_node_rehash(fat_node *node, uint32_t parent_cluster, uint32_t slot, uint32_t lfn_count,
                     uint64_t offset)
{
    fat_node_unhash(node);
    node->parent_cluster = parent_cluster;
    node->slot = slot;
    node->lfn_count = lfn_count;
    node->dirent_offset = offset;
    node_hash_in(node);
}

static void node_release_slot(fat_node *node)
{
    fat_volume *vol = node->vol;
    fat_node_unhash(node);
    if (node->is_dir)
        fat_dir_index_drop(node);
    node->in_use = false;
    node->hash_next = vol->node_free;
    vol->node_free = node->index;
}

/* A free slot, evicting the least recently used unreferenced directory if need be. */
static fat_node *node_alloc(fat_volume *vol)
{
    if (vol->node_free == FAT_NONE) {
        fat_node *victim = NULL;
        for (uint32_t i = 0; i < vol->cfg.max_nodes; i++) {
            fat_node *n = &vol->nodes[i];
            if (n->in_use && n->refs == 0 && !n->is_root && (!victim || n->lru < victim->lru))
                victim = n;
        }
        if (!victim)
            return NULL;
        node_release_slot(victim);
    }
    fat_node *n = &vol->nodes[vol->node_free];
    vol->node_free = n->hash_next;
    fat_run *runs = n->runs;
    uint32_t index = n->index;
    af_memset(n, 0, sizeof(*n));
    n->vol = vol;
    n->index = index;
    n->runs = runs;
    n->in_use = true;
    n->chain_length = FAT_NONE;
    n->index_head = FAT_NONE;
    fp_rwlock_init(&n->lock);
    return n;
}

/* The high half of the cluster field is FAT32's; FAT12/16 keep other things there (OS/2
 * extended attributes), so it is neither read nor set on them. */
uint32_t fat_raw_cluster(const fat_volume *vol, const uint8_t raw[32])
{
    uint32_t c = af_load_le16(raw + FAT_DIRENT_CLUSTER_LO);
    if (vol->geo.type == FAT_TYPE_32)
        c |= (uint32_t)af_load_le16(raw + FAT_DIRENT_CLUSTER_HI) << 16;
    return c;
}

void fat_raw_set_cluster(const fat_volume *vol, uint8_t raw[32], uint32_t c)
{
    af_store_le16(raw + FAT_DIRENT_CLUSTER_HI, vol->geo.type == FAT_TYPE_32 ? (uint16_t)(c >> 16) : 0);
    af_store_le16(raw + FAT_DIRENT_CLUSTER_LO, (uint16_t)c);
}

uint32_t fat_dir_cluster_key(const fat_node *dir)
{
    return dir->first_cluster;
}

fat_node *fat_node_make_root(fat_volume *vol)
{
    fat_node *n = node_alloc(vol);
    AF_ASSERT(n != NULL);
    n->is_dir = true;
    n->is_root = true;
    n->refs = 1;
    n->first_cluster = vol->geo.type == FAT_TYPE_32 ? vol->geo.root_cluster : 0;
    n->attr = FAT_ATTR_DIRECTORY;
    n->parent_cluster = FAT_NONE;
    n->slot = FAT_NONE;
    return n;
}

static void node_load_raw(fat_node *n, const uint8_t raw[32])
{
    n->first_cluster = fat_raw_cluster(n->vol, raw);
    n->attr = raw[FAT_DIRENT_ATTR];
    n->is_dir = (n->attr & FAT_ATTR_DIRECTORY) != 0;
    n->size = n->is_dir ? 0 : af_load_le32(raw + FAT_DIRENT_SIZE_BYTES);
    n->create_10ms = raw[FAT_DIRENT_CREATE_10MS];
    n->create_time = af_load_le16(raw + FAT_DIRENT_CREATE_TIME);
    n->create_date = af_load_le16(raw + FAT_DIRENT_CREATE_DATE);
    n->access_date = af_load_le16(raw + FAT_DIRENT_ACCESS_DATE);
    n->write_time = af_load_le16(raw + FAT_DIRENT_WRITE_TIME);
    n->write_date = af_load_le16(raw + FAT_DIRENT_WRITE_DATE);
    if (n->first_cluster == 0) {
        n->chain_length = 0;
        n->chain_checked = true;
    }
}

vfs_status fat_node_get(fat_volume *vol, fat_node *dir, const fat_dirent *d, fat_node **out)
{
    uint32_t key = fat_dir_cluster_key(dir);
    fat_node *n = fat_node_find(vol, key, d->slot);
    if (!n) {
        /* The entry may have been written back by a node that went away after the
         * caller read it: read it again, and look again with no blocking in between. */
        uint8_t raw[32];
        blk_status s = blk_cache_read_bytes(vol->cache, d->offset, raw, sizeof(raw));
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        n = fat_node_find(vol, key, d->slot);
        if (!n) {
            if (raw[0] == FAT_DIRENT_DELETED || raw[0] == FAT_DIRENT_END)
                return VFS_NO_FILE;
            n = node_alloc(vol);
            if (!n)
                return VFS_TOO_MANY_OPEN_FILES;
            node_load_raw(n, raw);
            fat_node_rehash(n, key, d->slot, d->lfn_count, d->offset);
            if (n->is_dir && !fat_cluster_valid(vol, n->first_cluster)) {
                node_release_slot(n);
                return VFS_CORRUPT;
            }
        }
    }
    n->refs++;
    n->lru = ++vol->lru_clock;
    *out = n;
    return VFS_OK;
}

void fat_node_ref(fat_node *node)
{
    node->refs++;
}

/* ordered: the caller has put everything the entry's size and cluster depend on before an
 * order point already (else one is made here when they change). */
static vfs_status write_dirent(fat_node *node, bool ordered);

vfs_status fat_node_write_dirent(fat_node *node)
{
    return write_dirent(node, false);
}

/* The entry no longer names the detached chain (written without it, or removed, in the
 * cache): it is freed once that is durable (rule: removal before free). */
static vfs_status release_detached(fat_node *node)
{
    uint32_t chain = node->detached;
    node->detached = 0;
    return chain != 0 ? fat_chain_free_later(node->vol, chain) : VFS_OK;
}

static vfs_status write_dirent(fat_node *node, bool ordered)
{
    fat_volume *vol = node->vol;
    if (node->is_root || node->unlinked)
        return VFS_OK;
    if (vol->read_only) {
        node->dirent_dirty = false;
        return VFS_OK;
    }
    blk_buf *buf;
    blk_status s = blk_cache_get(vol->cache, node->dirent_offset / BLK_TRANSFER_SIZE, BLK_GET_READ, &buf);
    if (s == BLK_OK) {
        /* A new size or first cluster reaches the entry only here, so the chain behind it
         * (grown before this call) must be ordered before the entry. */
        const uint8_t *old = blk_buf_data(buf) + node->dirent_offset % BLK_TRANSFER_SIZE;
        if (!ordered && (fat_raw_cluster(vol, old) != node->first_cluster ||
                         (!node->is_dir && af_load_le32(old + FAT_DIRENT_SIZE_BYTES) != node->size)))
            blk_cache_order_point(vol->cache); /* rule: data before link */
        s = blk_cache_prepare_write(vol->cache, buf);
    }
    if (s != BLK_OK) {
        if (buf)
            blk_cache_release(vol->cache, buf);
        return vfs_status_from_blk(s);
    }
    uint8_t *e = blk_buf_data(buf) + node->dirent_offset % BLK_TRANSFER_SIZE;
    e[FAT_DIRENT_ATTR] = node->attr;
    e[FAT_DIRENT_CREATE_10MS] = node->create_10ms;
    af_store_le16(e + FAT_DIRENT_CREATE_TIME, node->create_time);
    af_store_le16(e + FAT_DIRENT_CREATE_DATE, node->create_date);
    af_store_le16(e + FAT_DIRENT_ACCESS_DATE, node->access_date);
    fat_raw_set_cluster(vol, e, node->first_cluster);
    af_store_le16(e + FAT_DIRENT_WRITE_TIME, node->write_time);
    af_store_le16(e + FAT_DIRENT_WRITE_DATE, node->write_date);
    af_store_le32(e + FAT_DIRENT_SIZE_BYTES, node->is_dir ? 0 : node->size);
    blk_cache_mark_dirty(vol->cache, buf);
    blk_cache_release(vol->cache, buf);
    node->dirent_dirty = false;
    return release_detached(node);
}

static vfs_status commit_later(fat_node *node);

vfs_status fat_node_put(fat_node *node)
{
    fat_volume *vol = node->vol;
    AF_ASSERT(node->in_use && node->refs > 0);
    if (node->refs > 1 || node->is_root) {
        node->refs--;
        return VFS_OK;
    }
    vfs_status st = VFS_OK;
    if (!node->is_dir || node->unlinked) {
        fp_rwlock_write_lock(vol->pool, &node->lock);
        if (node->unlinked) {
            if (node->first_cluster != 0) {
                /* The entry is gone (removed earlier): its clusters follow once that is durable. */
                st = fat_chain_free_later(vol, node->first_cluster);
                node->first_cluster = 0;
            }
            vfs_status st2 = release_detached(node);
            if (st == VFS_OK)
                st = st2;
        } else if (!node->is_dir && node->refs == 1 && node->preallocated) {
            st = fat_file_trim_locked(node);
        } else if (!node->is_dir && node->dirent_dirty && !node->commit_pending && !vol->read_only) {
            fp_rwlock_write_unlock(vol->pool, &node->lock);
            return commit_later(node);
        } else if (!node->is_dir && node->dirent_dirty) {
            st = fat_node_write_dirent(node);
        }
        fp_rwlock_write_unlock(vol->pool, &node->lock);
    }
    node->refs--;
    if (node->refs == 0 && (!node->is_dir || node->unlinked))
        node_release_slot(node);
    return st;
}

/* A closed file's entry waits on the commit list (keeping the node, and so its last
 * reference) to be written with others after one order point: one epoch for a batch of
 * files rather than one per file, each an extra FLUSH and rewrite of the directory and FAT
 * blocks at write-back. A power cut before the commit finds those files as they were
 * before these writes, their new clusters lost: as for any write not yet synced. */
#define FAT_COMMIT_BATCH 32u
static vfs_status commit_later(fat_node *node)
{
    fat_volume *vol = node->vol;
    node->commit_pending = true;
    node->commit_next = vol->commit_head;
    vol->commit_head = node->index;
    vol->commit_count++;
    return vol->commit_count >= FAT_COMMIT_BATCH ? fat_node_commit(vol) : VFS_OK;
}

void fat_node_uncommit(fat_node *node)
{
    if (!node->commit_pending)
        return;
    fat_volume *vol = node->vol;
    uint32_t *link = &vol->commit_head;
    while (*link != node->index)
        link = &vol->nodes[*link].commit_next;
    *link = node->commit_next;
    vol->commit_count--;
    node->commit_pending = false;
    node->refs--; /* the list's: the caller holds one of its own */
}

vfs_status fat_node_commit(fat_volume *vol)
{
    /* Take the list as it is: files closed meanwhile wait for the next commit, their data
     * perhaps written after this order point. */
    uint32_t i = vol->commit_head;
    vol->commit_head = FAT_NONE;
    vol->commit_count = 0;
    if (i == FAT_NONE)
        return VFS_OK;
    /* Off the list at once (fat_node_uncommit looks there only); the refs stay ours. */
    for (uint32_t k = i; k != FAT_NONE; k = vol->nodes[k].commit_next)
        vol->nodes[k].commit_pending = false;
    blk_cache_order_point(vol->cache); /* rule: data before link */
    vfs_status result = VFS_OK;
    while (i != FAT_NONE) {
        fat_node *n = &vol->nodes[i];
        i = n->commit_next;
        fp_rwlock_write_lock(vol->pool, &n->lock);
        vfs_status st = VFS_OK;
        if (n->dirent_dirty) {
            /* Written to since the order point: that write's chain goes first. */
            blk_cache_order_after(vol->cache, n->data_written); /* rule: data before link */
            st = write_dirent(n, true);
        }
        fp_rwlock_write_unlock(vol->pool, &n->lock);
        vfs_status st2 = fat_node_put(n);
        if (result == VFS_OK)
            result = st != VFS_OK ? st : st2;
    }
    return result;
}

fat_datetime fat_now(fat_volume *vol)
{
    int64_t t = vol->cfg.clock ? vol->cfg.clock(vol->cfg.clock_ctx) : FAT_TIME_MIN_UNIX;
    return fat_time_from_unix_zoned(t, 0, vol->cfg.time_offset_minutes);
}

static void fill_common(fat_volume *vol, vfs_stat *out, bool dir, uint8_t attr, uint32_t size,
                        uint32_t first_cluster)
{
    af_memset(out, 0, sizeof(*out));
    out->dev = vol->cfg.dev;
    uint64_t perm = (attr & FAT_ATTR_READ_ONLY) ? 0555u : 0755u;
    if (!dir)
        perm &= 0666u;
    if (attr & FAT_ATTR_READ_ONLY)
        perm &= ~0222u;
    out->mode = (dir ? VFS_MODE_DIRECTORY : VFS_MODE_REGULAR) | perm;
    out->nlink = dir ? 2 : 1;
    out->size = size;
    out->blksize = vol->geo.bytes_per_cluster;
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint64_t alloc = dir ? cs : (size + cs - 1) / cs * cs;
    if (first_cluster == 0 && !dir)
        alloc = 0;
    out->blocks = alloc / 512u;
}

void fat_node_fill_stat(const fat_node *node, vfs_stat *out)
{
    fat_volume *vol = node->vol;
    fill_common(vol, out, node->is_dir, node->attr, node->size, node->first_cluster);
    out->ino = node->is_root ? 1u : node->dirent_offset / 32u + 2u;
    if (node->is_root)
        return;
    int32_t zone = vol->cfg.time_offset_minutes;
    out->mtime = (uint64_t)fat_time_to_unix_zoned(node->write_date, node->write_time, 0, NULL, zone);
    out->ctime = out->mtime;
    out->atime = (uint64_t)fat_time_to_unix_zoned(node->access_date, 0, 0, NULL, zone);
}

void fat_stat_from_raw(fat_volume *vol, const uint8_t raw[32], uint64_t offset, vfs_stat *out)
{
    bool dir = (raw[FAT_DIRENT_ATTR] & FAT_ATTR_DIRECTORY) != 0;
    fill_common(vol, out, dir, raw[FAT_DIRENT_ATTR], dir ? 0 : af_load_le32(raw + FAT_DIRENT_SIZE_BYTES),
                fat_raw_cluster(vol, raw));
    out->ino = offset / 32u + 2u;
    int32_t zone = vol->cfg.time_offset_minutes;
    out->mtime = (uint64_t)fat_time_to_unix_zoned(af_load_le16(raw + FAT_DIRENT_WRITE_DATE),
                                                  af_load_le16(raw + FAT_DIRENT_WRITE_TIME), 0, NULL, zone);
    out->ctime = out->mtime;
    out->atime = (uint64_t)fat_time_to_unix_zoned(af_load_le16(raw + FAT_DIRENT_ACCESS_DATE), 0, 0, NULL, zone);
}
