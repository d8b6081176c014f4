/* The volume: arena sizing, mount (locate, validate, free map, dirty flag, recovery),
 * sync, unmount, statfs.
 *
 * While mounted read-write the volume says it is dirty: the boot sector's state byte (bit
 * 0, every FAT type: Linux's vfat, Windows NT's fastfat and dosfstools read it so), FAT
 * entry 1's clean-shutdown bit (FAT16/32) is clear and FSInfo's free count says "unknown",
 * so a cut leaves nothing that claims a clean state; a clean unmount makes everything else
 * durable first, then writes the exact free count and next-free hint and the clean marks
 * (docs/ORDERING.md, "clean marks last"). */
#include "fat/fat_engine.h"

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

fat_config fat_config_defaults(void)
{
    fat_config c;
    af_memset(&c, 0, sizeof(c));
    c.partition = -1;
    c.max_nodes = 256;
    c.runs_per_node = 16;
    c.index_entries = 32768;
    return c;
}

static size_t free_map_bytes(uint64_t clusters_plus_two)
{
    return (size_t)((clusters_plus_two + 63u) / 64u) * sizeof(uint64_t);
}

void fat_memory_needed(const fat_config *cfg, uint64_t device_bytes, fat_memory_sizes *out)
{
    out->nodes = (size_t)cfg->max_nodes * sizeof(fat_node) + (size_t)pow2_at_least(cfg->max_nodes) * sizeof(uint32_t);
    uint32_t entries = cfg->index_entries;
    out->index = (size_t)entries * sizeof(fat_index_entry) + 2u * (size_t)pow2_at_least(entries) * sizeof(uint32_t);
    out->runs = (size_t)cfg->max_nodes * cfg->runs_per_node * sizeof(fat_run);
    uint64_t clusters = device_bytes / 512u;
    if (clusters > FAT32_MAX_CLUSTERS)
        clusters = FAT32_MAX_CLUSTERS;
    out->free_map = free_map_bytes(clusters + 2u);
}

static size_t round_up16(size_t n) { return (n + 15u) & ~(size_t)15u; }

size_t fat_memory_total(const fat_config *cfg, uint64_t device_bytes)
{
    fat_memory_sizes m;
    fat_memory_needed(cfg, device_bytes, &m);
    return 15u + round_up16(m.nodes) + round_up16(m.index) + round_up16(m.runs) + round_up16(m.free_map);
}

bool fat_config_place_memory(fat_config *cfg, uint64_t device_bytes, void *memory, size_t size)
{
    if (!memory || size < fat_memory_total(cfg, device_bytes))
        return false;
    fat_memory_sizes m;
    fat_memory_needed(cfg, device_bytes, &m);
    uint8_t *p = (uint8_t *)af_align_up((uintptr_t)memory, 16);
    cfg->node_memory = p;
    cfg->node_memory_size = m.nodes;
    p += round_up16(m.nodes);
    cfg->index_memory = p;
    cfg->index_memory_size = m.index;
    p += round_up16(m.index);
    cfg->run_memory = p;
    cfg->run_memory_size = m.runs;
    p += round_up16(m.runs);
    cfg->free_map_memory = p;
    cfg->free_map_memory_size = m.free_map;
    return true;
}

static void index_init(fat_volume *vol)
{
    uint32_t entries = vol->cfg.index_entries;
    uint32_t buckets = pow2_at_least(entries);
    vol->index = vol->cfg.index_memory;
    vol->index_long_heads = (uint32_t *)(void *)(vol->index + entries);
    vol->index_short_heads = vol->index_long_heads + buckets;
    vol->index_mask = buckets - 1u;
    for (uint32_t i = 0; i < buckets; i++)
        vol->index_long_heads[i] = vol->index_short_heads[i] = FAT_NONE;
    vol->index_free = FAT_NONE;
    vol->index_unused = 0;
}

static vfs_status set_clean(fat_volume *vol, bool clean)
{
    uint32_t bit = fat_entry_clean_bit(vol->geo.type);
    if (bit == 0)
        return VFS_OK;
    uint32_t v;
    vfs_status st = fat_table_get(vol, 1, &v);
    if (st != VFS_OK)
        return st;
    uint32_t nv = clean ? (v | bit) : (v & ~bit);
    return nv == v ? VFS_OK : fat_table_set(vol, 1, nv);
}

/* The state byte's dirty bit in the boot sector, and in the FAT32 backup boot sector when
 * that is a copy of it (fsck.fat compares them). Only where the extended boot signature
 * says the byte is a state byte (older boot sectors keep boot code there). */
static vfs_status set_state_byte(fat_volume *vol, bool dirty)
{
    if (!vol->geo.has_serial)
        return VFS_OK;
    uint64_t at = vol->geo.volume_offset + (vol->geo.type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE);
    uint8_t old;
    blk_status b = blk_cache_read_bytes(vol->cache, at, &old, 1);
    if (b != BLK_OK)
        return vfs_status_from_blk(b);
    uint8_t state = dirty ? (uint8_t)(old | FAT_STATE_DIRTY) : (uint8_t)(old & ~FAT_STATE_DIRTY);
    if (state == old)
        return VFS_OK;
    if (vol->geo.backup_boot_sector != 0) {
        uint64_t backup = at + (uint64_t)vol->geo.backup_boot_sector * vol->geo.bytes_per_sector;
        uint8_t copy;
        b = blk_cache_read_bytes(vol->cache, backup, &copy, 1);
        if (b == BLK_OK && copy == old)
            b = blk_cache_write_bytes(vol->cache, backup, &state, 1);
        if (b != BLK_OK)
            return vfs_status_from_blk(b);
    }
    return vfs_status_from_blk(blk_cache_write_bytes(vol->cache, at, &state, 1));
}

static uint64_t fsinfo_offset(const fat_volume *vol)
{
    return vol->geo.volume_offset + (uint64_t)vol->geo.fsinfo_sector * vol->geo.bytes_per_sector;
}

static bool fsinfo_present(const fat_volume *vol, const uint8_t *s)
{
    return vol->geo.type == FAT_TYPE_32 && vol->geo.fsinfo_sector != 0 &&
           af_load_le32(s + FAT_FSINFO_LEAD_SIG) == FAT_FSINFO_LEAD_VALUE &&
           af_load_le32(s + FAT_FSINFO_STRUCT_SIG) == FAT_FSINFO_STRUCT_VALUE &&
           af_load_le32(s + FAT_FSINFO_TRAIL_SIG) == FAT_FSINFO_TRAIL_VALUE;
}

/* Rewrite FSInfo's free count (exact, or "unknown" while mounted: the format lets it be
 * stale, and a count that must be right at every sync would cost a write of block 0 per
 * sync) and its next-free hint, the allocator's position (fat_alloc_claim_run), which lets
 * next fit go on where it stopped across mounts. */
static vfs_status fsinfo_write(fat_volume *vol, bool exact)
{
    if (vol->geo.type != FAT_TYPE_32 || vol->geo.fsinfo_sector == 0 || vol->read_only)
        return VFS_OK;
    uint8_t s[512];
    blk_status b = blk_cache_read_bytes(vol->cache, fsinfo_offset(vol), s, sizeof(s));
    if (b != BLK_OK)
        return vfs_status_from_blk(b);
    if (!fsinfo_present(vol, s))
        return VFS_OK;
    uint8_t fields[8];
    af_store_le32(fields, exact ? vol->free_count : FAT_FSINFO_UNKNOWN);
    af_store_le32(fields + 4, vol->free_map_ready ? vol->next_free : FAT_FSINFO_UNKNOWN);
    vol->claimed = 0;
    if (af_memcmp(fields, s + FAT_FSINFO_FREE_COUNT, sizeof(fields)) == 0)
        return VFS_OK;
    return vfs_status_from_blk(blk_cache_write_bytes(vol->cache, fsinfo_offset(vol) + FAT_FSINFO_FREE_COUNT, fields,
                                                     sizeof(fields)));
}

static vfs_status read_device(void *cache, uint64_t offset, void *dst, size_t len)
{
    return vfs_status_from_blk(blk_cache_read_bytes(cache, offset, dst, len));
}

/* FSInfo's hint follows the allocator while mounted too, for a volume that is never
 * unmounted cleanly (a logger whose power is simply cut) and which another system (Linux
 * starts its search at the hint) then mounts: it is rewritten at a sync point once a
 * quarter of the clusters has been claimed since it was last written. FSInfo shares block
 * 0 with the boot sector, the one block whose wearing out loses the volume: it is written
 * at most four times per sweep of the data area (in which each data cluster is written
 * about once) and never for a sync that allocated little. A hint is only a hint: any
 * value is safe, the free map decides. After a cut the allocator was at most about an
 * interval past the hint: a dirty mount starts at a hashed place in that interval. */
static uint32_t checkpoint_interval(const fat_volume *vol)
{
    return vol->geo.cluster_count / 4u > 0 ? vol->geo.cluster_count / 4u : 1u;
}

vfs_status fat_fsinfo_checkpoint(fat_volume *vol)
{
    if (vol->read_only || !vol->free_map_ready || vol->claimed < checkpoint_interval(vol))
        return VFS_OK;
    return fsinfo_write(vol, false);
}

vfs_status fat_mount(fat_volume *vol, blk_cache *cache, const fat_config *cfg, fat_bpb_error *why)
{
    fat_bpb_error dummy;
    if (!why)
        why = &dummy;
    *why = FAT_BPB_OK;
    af_memset(vol, 0, sizeof(*vol));
    vol->cache = cache;
    vol->pool = blk_cache_pool(cache);
    vol->cfg = *cfg;
    fp_mutex_init(&vol->rename_lock);
    fp_mutex_init(&vol->deferred_lock);
    blk_client *client = blk_cache_client(cache);
    uint64_t device_bytes = blk_client_capacity_blocks(client) * BLK_TRANSFER_SIZE;
    if (cfg->max_nodes < 4 || cfg->runs_per_node < 2 || cfg->time_offset_minutes < -1440 ||
        cfg->time_offset_minutes > 1440)
        return VFS_INVALID_ARGUMENT;
    fat_memory_sizes need;
    fat_memory_needed(cfg, device_bytes, &need);
    if (!cfg->node_memory || cfg->node_memory_size < need.nodes || !cfg->run_memory ||
        cfg->run_memory_size < need.runs || (need.index > 0 && !cfg->index_memory) ||
        cfg->index_memory_size < need.index || !cfg->free_map_memory)
        return VFS_ALLOCATION_ERROR;
    if (device_bytes < 512)
        return VFS_CORRUPT;

    uint8_t sector[512];
    uint64_t voff, vbytes;
    vfs_status st = fat_partition_locate(read_device, cache, device_bytes, blk_client_sector_size(client),
                                         cfg->partition, cfg->volume_offset, &voff, &vbytes, why);
    if (st != VFS_OK)
        return st;
    if (voff + sizeof(sector) > device_bytes)
        return VFS_CORRUPT;
    blk_status b = blk_cache_read_bytes(cache, voff, sector, sizeof(sector));
    if (b != BLK_OK)
        return vfs_status_from_blk(b);
    st = fat_bpb_parse(sector, sizeof(sector), voff, af_min_u64(device_bytes, voff + vbytes), &vol->geo, why);
    if (st != VFS_OK)
        return st;
    if (cfg->free_map_memory_size < free_map_bytes((uint64_t)vol->geo.max_cluster + 1u))
        return VFS_ALLOCATION_ERROR;
    vol->free_map = cfg->free_map_memory;
    vol->read_only = cfg->read_only || blk_client_read_only(client);

    fat_node_table_init(vol);
    index_init(vol);
    vol->root = fat_node_make_root(vol);
    /* Reading the whole FAT is most of a short read-only session (an ls): only statfs of
     * such a volume needs the free map. */
    vol->free_map_ready = false;
    if (!vol->read_only) {
        st = fat_free_map_build(vol);
        if (st != VFS_OK)
            return st;
        vol->free_map_ready = true;
    }
    uint32_t entry1;
    st = fat_table_get(vol, 1, &entry1);
    if (st != VFS_OK)
        return st;
    uint32_t clean = fat_entry_clean_bit(vol->geo.type);
    vol->was_dirty = (clean != 0 && !(entry1 & clean)) || (vol->geo.state & FAT_STATE_DIRTY);
    vol->report.was_dirty = vol->was_dirty;
    /* Next fit goes on where a clean unmount left it. After a cut the position was
     * somewhere in the checkpoint interval after the hint (fat_fsinfo_checkpoint); a
     * device cut every session before it allocated that much would start at the same
     * hint each time, so a dirty volume starts at a hashed place in that interval. */
    if (vol->geo.type == FAT_TYPE_32 && vol->geo.fsinfo_sector != 0 && vol->free_map_ready) {
        uint8_t s[512];
        b = blk_cache_read_bytes(cache, fsinfo_offset(vol), s, sizeof(s));
        if (b != BLK_OK)
            return vfs_status_from_blk(b);
        uint32_t hint = af_load_le32(s + FAT_FSINFO_NEXT_FREE);
        if (fsinfo_present(vol, s) && fat_cluster_valid(vol, hint)) {
            uint32_t ahead = vol->was_dirty ? (vol->next_free - FAT_FIRST_CLUSTER) % checkpoint_interval(vol) : 0;
            vol->next_free = FAT_FIRST_CLUSTER + (hint - FAT_FIRST_CLUSTER + ahead) % vol->geo.cluster_count;
        }
    }
    if (!vol->read_only) {
        /* Dirty marks first, durable before recovery or anything else writes (a cut
         * during recovery leaves the volume dirty, so the next mount recovers it): rule
         * "dirty marks first". */
        st = set_state_byte(vol, true);
        if (st == VFS_OK)
            st = set_clean(vol, false);
        if (st == VFS_OK)
            st = fsinfo_write(vol, false);
        if (st == VFS_OK)
            st = vfs_status_from_blk(blk_cache_flush(cache));
        if (st == VFS_OK && vol->was_dirty)
            st = fat_recover(vol);
        if (st != VFS_OK)
            return st;
    }
    vol->mounted = true;
    return VFS_OK;
}

/* Write back the entries of open files. */
static vfs_status sync_nodes(fat_volume *vol)
{
    vfs_status result = VFS_OK;
    for (uint32_t i = 0; i < vol->cfg.max_nodes; i++) {
        fat_node *n = &vol->nodes[i];
        if (!n->in_use || n->is_dir || !n->dirent_dirty || n->refs == 0)
            continue;
        fat_node_ref(n);
        fp_rwlock_write_lock(vol->pool, &n->lock);
        vfs_status st = n->dirent_dirty ? fat_node_write_dirent(n) : VFS_OK;
        fp_rwlock_write_unlock(vol->pool, &n->lock);
        vfs_status st2 = fat_node_put(n);
        if (result == VFS_OK)
            result = st != VFS_OK ? st : st2;
    }
    return result;
}

vfs_status fat_sync(fat_volume *vol)
{
    if (!vol->mounted)
        return VFS_NOT_MOUNTED;
    if (vol->read_only)
        return VFS_OK;
    vfs_status committed = fat_node_commit(vol);
    blk_cache_order_point(vol->cache); /* rule: data before link */
    vfs_status st = sync_nodes(vol);
    if (st == VFS_OK)
        st = committed;
    if (st == VFS_OK)
        st = fat_fsinfo_checkpoint(vol);
    blk_status b = blk_cache_flush(vol->cache);
    if (st == VFS_OK)
        st = vfs_status_from_blk(b);
    /* The flush above made waiting removals durable: release their chains (one more,
     * nearly empty, flush inside). */
    vfs_status st2 = fat_deferred_release(vol);
    return st != VFS_OK ? st : st2;
}

vfs_status fat_unmount(fat_volume *vol)
{
    if (!vol->mounted)
        return VFS_NOT_MOUNTED;
    vfs_status committed = fat_node_commit(vol);
    for (uint32_t i = 0; i < vol->cfg.max_nodes; i++) {
        const fat_node *n = &vol->nodes[i];
        if (n->in_use && !n->is_root && n->refs > 0)
            return VFS_OUTSTANDING_OPERATIONS;
    }
    vfs_status st = committed;
    if (!vol->read_only) {
        blk_cache_order_point(vol->cache); /* rule: data before link */
        if (st == VFS_OK)
            st = sync_nodes(vol);
        vfs_status st2 = fat_deferred_release(vol);
        if (st == VFS_OK)
            st = st2;
        /* Everything else durable first; then the volume says it is clean (rule "clean
         * marks last"). A volume recovery found damaged on stays dirty, so the next mount
         * and any checker look again. */
        blk_status b = blk_cache_flush(vol->cache);
        if (st == VFS_OK)
            st = vfs_status_from_blk(b);
        if (st == VFS_OK && !vol->report.needs_check) {
            st = fsinfo_write(vol, true);
            if (st == VFS_OK)
                st = set_clean(vol, true);
            if (st == VFS_OK)
                st = set_state_byte(vol, false);
        }
        if (st == VFS_OK)
            st = vfs_status_from_blk(blk_cache_flush(vol->cache));
    }
    vol->mounted = false;
    return st;
}

vfs_status fat_statfs(fat_volume *vol, fat_statfs_info *out)
{
    if (!vol->mounted)
        return VFS_NOT_MOUNTED;
    vfs_status st = VFS_OK;
    if (!vol->free_map_ready) {
        fp_mutex_lock(vol->pool, &vol->deferred_lock);
        if (!vol->free_map_ready) {
            st = fat_free_map_build(vol);
            vol->free_map_ready = st == VFS_OK;
        }
        fp_mutex_unlock(vol->pool, &vol->deferred_lock);
    }
    if (st == VFS_OK)
        st = fat_deferred_release(vol);
    if (st != VFS_OK)
        return st;
    out->cluster_size = vol->geo.bytes_per_cluster;
    out->total_clusters = vol->geo.cluster_count;
    out->free_clusters = vol->free_count - vol->reserved;
    out->fat_type = vol->geo.type;
    out->name_max = FAT_READDIR_NAME_MAX;
    out->read_only = vol->read_only;
    out->was_dirty = vol->was_dirty;
    out->fat_copies_differ = vol->report.fat_disagreements > 0;
    out->needs_check = vol->report.needs_check;
    return VFS_OK;
}
