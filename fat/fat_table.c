/* FAT entries (12/16/32 bits, every FAT copy kept equal), the in-memory free map, cluster
 * allocation and chain freeing.
 *
 * Concurrency: no lock. A FAT entry is changed with its cache block(s) pinned and no
 * blocking point between reading the old bytes and storing the new ones, so FAT12 entries
 * sharing a byte never lose each other's update. A cluster is claimed in the free map
 * before any blocking point and released only after its FAT entry reads free again.
 *
 * Freed chains wait: a chain cut loose by removing a directory entry (or by truncating)
 * stays allocated until a flush has made that removal durable, so a power cut can never
 * leave the old entry pointing at clusters another file has since taken. */
#include "fat/fat_engine.h"

bool fat_cluster_valid(const fat_volume *vol, uint32_t c)
{
    return c >= FAT_FIRST_CLUSTER && c <= vol->geo.max_cluster;
}

bool fat_is_eoc(const fat_volume *vol, uint32_t value)
{
    return value >= fat_eoc_min(vol->geo.type);
}

vfs_status fat_table_get(fat_volume *vol, uint32_t cluster, uint32_t *value)
{
    uint8_t bytes[4];
    uint64_t off = fat_entry_offset(&vol->geo, vol->geo.active_fat, cluster);
    blk_status s = blk_cache_read_bytes(vol->cache, off, bytes, fat_entry_size(vol->geo.type));
    if (s != BLK_OK)
        return vfs_status_from_blk(s);
    *value = fat_entry_get(vol->geo.type, cluster, bytes);
    return VFS_OK;
}

static vfs_status store_in_copy(fat_volume *vol, uint32_t copy, uint32_t cluster, uint32_t value)
{
    uint64_t off = fat_entry_offset(&vol->geo, copy, cluster);
    uint64_t block = off / BLK_TRANSFER_SIZE;
    uint32_t in = (uint32_t)(off % BLK_TRANSFER_SIZE);
    uint32_t width = fat_entry_size(vol->geo.type);
    blk_buf *a = NULL, *b = NULL;
    blk_status s = blk_cache_get(vol->cache, block, BLK_GET_READ, &a);
    if (s != BLK_OK)
        return vfs_status_from_blk(s);
    if (in + width > BLK_TRANSFER_SIZE) {
        s = blk_cache_get(vol->cache, block + 1, BLK_GET_READ, &b);
        if (s != BLK_OK) {
            blk_cache_release(vol->cache, a);
            return vfs_status_from_blk(s);
        }
    }
    /* Keep versions of closed epochs (blk_cache_prepare_write), both blocks at once. */
    s = blk_cache_prepare_write_pair(vol->cache, a, b);
    if (s != BLK_OK) {
        blk_cache_release(vol->cache, a);
        if (b)
            blk_cache_release(vol->cache, b);
        return vfs_status_from_blk(s);
    }
    /* Both blocks pinned and ready: from here to the stores nothing blocks. */
    uint8_t bytes[4];
    for (uint32_t i = 0; i < width; i++)
        bytes[i] = in + i < BLK_TRANSFER_SIZE ? blk_buf_data(a)[in + i] : blk_buf_data(b)[in + i - BLK_TRANSFER_SIZE];
    fat_entry_put(vol->geo.type, cluster, bytes, value);
    for (uint32_t i = 0; i < width; i++) {
        if (in + i < BLK_TRANSFER_SIZE)
            blk_buf_data(a)[in + i] = bytes[i];
        else
            blk_buf_data(b)[in + i - BLK_TRANSFER_SIZE] = bytes[i];
    }
    blk_cache_mark_dirty(vol->cache, a);
    blk_cache_release(vol->cache, a);
    if (b) {
        blk_cache_mark_dirty(vol->cache, b);
        blk_cache_release(vol->cache, b);
    }
    return VFS_OK;
}

vfs_status fat_table_set(fat_volume *vol, uint32_t cluster, uint32_t value)
{
    if (vol->read_only)
        return VFS_READ_ONLY_FS;
    bool mirror = !(vol->geo.ext_flags & FAT_EXT_FLAGS_NO_MIRROR);
    for (uint32_t copy = 0; copy < vol->geo.fat_count; copy++) {
        if (!mirror && copy != vol->geo.active_fat)
            continue;
        vfs_status st = store_in_copy(vol, copy, cluster, value);
        if (st != VFS_OK)
            return st;
    }
    return VFS_OK;
}

/* Entries [first, end) of one FAT copy that lie wholly in one block. */
static vfs_status link_in_block(fat_volume *vol, uint32_t copy, uint32_t first, uint32_t end, uint32_t last,
                               uint32_t last_value)
{
    uint64_t block = fat_entry_offset(&vol->geo, copy, first) / BLK_TRANSFER_SIZE;
    blk_buf *buf;
    blk_status s = blk_cache_get(vol->cache, block, BLK_GET_READ, &buf);
    if (s == BLK_OK)
        s = blk_cache_prepare_write(vol->cache, buf);
    if (s != BLK_OK) {
        if (buf)
            blk_cache_release(vol->cache, buf);
        return vfs_status_from_blk(s);
    }
    for (uint32_t c = first; c < end; c++) {
        uint8_t *p = blk_buf_data(buf) + fat_entry_offset(&vol->geo, copy, c) % BLK_TRANSFER_SIZE;
        fat_entry_put(vol->geo.type, c, p, c == last ? last_value : c + 1u);
    }
    blk_cache_mark_dirty(vol->cache, buf);
    blk_cache_release(vol->cache, buf);
    return VFS_OK;
}

vfs_status fat_table_link_run(fat_volume *vol, uint32_t first, uint32_t count, uint32_t last_value)
{
    if (vol->read_only)
        return VFS_READ_ONLY_FS;
    uint32_t last = first + count - 1u;
    uint32_t width = fat_entry_size(vol->geo.type);
    bool mirror = !(vol->geo.ext_flags & FAT_EXT_FLAGS_NO_MIRROR);
    for (uint32_t copy = 0; copy < vol->geo.fat_count; copy++) {
        if (!mirror && copy != vol->geo.active_fat)
            continue;
        for (uint32_t c = first; c <= last;) {
            uint64_t block_end = (fat_entry_offset(&vol->geo, copy, c) / BLK_TRANSFER_SIZE + 1) * BLK_TRANSFER_SIZE;
            vfs_status st;
            uint32_t end = c;
            while (end <= last && fat_entry_offset(&vol->geo, copy, end) + width <= block_end)
                end++;
            if (end == c) { /* a FAT12 entry across two blocks */
                st = store_in_copy(vol, copy, c, c == last ? last_value : c + 1u);
                end = c + 1;
            } else {
                st = link_in_block(vol, copy, c, end, last, last_value);
            }
            if (st != VFS_OK)
                return st;
            c = end;
        }
    }
    return VFS_OK;
}

/* ---- free map ---------------------------------------------------------------------------- */

static bool map_test(const fat_volume *vol, uint32_t c)
{
    return (vol->free_map[c / 64u] >> (c % 64u)) & 1u;
}

static void map_set(fat_volume *vol, uint32_t c)
{
    vol->free_map[c / 64u] |= (uint64_t)1 << (c % 64u);
}

static void map_clear(fat_volume *vol, uint32_t c)
{
    vol->free_map[c / 64u] &= ~((uint64_t)1 << (c % 64u));
}

static void release_window(fat_volume *vol, blk_buf **win, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        blk_cache_release(vol->cache, win[i]);
}

vfs_status fat_free_map_build(fat_volume *vol)
{
    uint32_t max = vol->geo.max_cluster;
    uint32_t words = (max + 1u + 63u) / 64u;
    for (uint32_t i = 0; i < words; i++)
        vol->free_map[i] = 0;
    /* Bits past max_cluster in the last word count as used, so searches never see them. */
    for (uint32_t c = max + 1u; c < words * 64u; c++)
        map_set(vol, c);
    map_set(vol, 0);
    map_set(vol, 1);
    vol->free_count = 0;
    uint32_t width = fat_entry_size(vol->geo.type);
    uint64_t last_block = fat_entry_offset(&vol->geo, vol->geo.active_fat, max) / BLK_TRANSFER_SIZE;
    /* The FAT is read a window of blocks at a time: one device round trip per window
     * instead of per block is most of the cost of a mount. */
    blk_buf *win[BLK_CACHE_GET_MANY_MAX];
    uint64_t win_block = 0;
    uint32_t win_n = 0;
    vfs_status st = VFS_OK;
    for (uint32_t c = FAT_FIRST_CLUSTER; c <= max; c++) {
        uint64_t off = fat_entry_offset(&vol->geo, vol->geo.active_fat, c);
        uint64_t block = off / BLK_TRANSFER_SIZE;
        uint32_t in = (uint32_t)(off % BLK_TRANSFER_SIZE);
        uint32_t value;
        if (in + width > BLK_TRANSFER_SIZE) {
            st = fat_table_get(vol, c, &value);
            if (st != VFS_OK)
                break;
        } else {
            if (block < win_block || block >= win_block + win_n) {
                release_window(vol, win, win_n);
                win_n = 0;
                uint32_t want = (uint32_t)af_min_u64(BLK_CACHE_GET_MANY_MAX, last_block - block + 1);
                blk_status s = blk_cache_get_many(vol->cache, block, want, win, &win_n);
                if (s != BLK_OK) {
                    st = vfs_status_from_blk(s);
                    break;
                }
                win_block = block;
            }
            value = fat_entry_get(vol->geo.type, c, blk_buf_data(win[block - win_block]) + in);
        }
        if (value == FAT_ENTRY_FREE)
            vol->free_count++;
        else
            map_set(vol, c);
    }
    release_window(vol, win, win_n);
    if (st != VFS_OK)
        return st;
    vol->reserved = 0;
    vol->next_free = FAT_FIRST_CLUSTER;
    return VFS_OK;
}

vfs_status fat_alloc_reserve(fat_volume *vol, uint32_t count)
{
    if (vol->read_only)
        return VFS_READ_ONLY_FS;
    if (count > vol->free_count - vol->reserved)
        return VFS_NO_SPACE;
    vol->reserved += count;
    return VFS_OK;
}

void fat_alloc_unreserve(fat_volume *vol, uint32_t count)
{
    AF_ASSERT(count <= vol->reserved);
    vol->reserved -= count;
}

/* First clear bit at or after hint, wrapping; the caller knows one exists. */
static uint32_t map_find_free(const fat_volume *vol, uint32_t hint)
{
    uint32_t words = (vol->geo.max_cluster + 1u + 63u) / 64u;
    if (hint < FAT_FIRST_CLUSTER || hint > vol->geo.max_cluster)
        hint = FAT_FIRST_CLUSTER;
    uint32_t w = hint / 64u;
    uint64_t bits = vol->free_map[w] | (((uint64_t)1 << (hint % 64u)) - 1u);
    for (uint32_t n = 0; n <= words; n++) {
        if (bits != UINT64_MAX)
            return w * 64u + af_ctz64(~bits);
        w = (w + 1u) % words;
        bits = vol->free_map[w];
    }
    AF_ASSERT(false);
    return 0;
}

uint32_t fat_alloc_claim_run(fat_volume *vol, uint32_t hint, uint32_t max, uint32_t *count)
{
    AF_ASSERT(max >= 1 && vol->reserved >= max && vol->free_count >= max);
    uint32_t first = map_find_free(vol, hint);
    uint32_t n = 0;
    while (n < max && first + n <= vol->geo.max_cluster && !map_test(vol, first + n)) {
        map_set(vol, first + n);
        n++;
    }
    vol->free_count -= n;
    vol->reserved -= n;
    vol->next_free = first + n;
    *count = n;
    return first;
}

void fat_alloc_unclaim(fat_volume *vol, uint32_t first, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++) {
        AF_ASSERT(map_test(vol, first + i));
        map_clear(vol, first + i);
    }
    vol->free_count += count;
}

vfs_status fat_chain_free(fat_volume *vol, uint32_t first)
{
    uint32_t c = first;
    for (uint32_t steps = 0; fat_cluster_valid(vol, c) && steps < vol->geo.cluster_count; steps++) {
        uint32_t next;
        vfs_status st = fat_table_get(vol, c, &next);
        if (st != VFS_OK)
            return st;
        if (next == FAT_ENTRY_FREE)
            break; /* already free: a corrupt chain runs into free space, or a loop closed */
        st = fat_table_set(vol, c, FAT_ENTRY_FREE);
        if (st != VFS_OK)
            return st;
        if (map_test(vol, c)) {
            map_clear(vol, c);
            vol->free_count++;
            if (c < vol->next_free)
                vol->next_free = c;
        }
        if (fat_is_eoc(vol, next))
            break;
        c = next;
    }
    return VFS_OK;
}

/* ---- deferred freeing ---------------------------------------------------------------------- */

vfs_status fat_deferred_release(fat_volume *vol)
{
    if (vol->deferred_count == 0)
        return VFS_OK;
    fp_mutex_lock(vol->pool, &vol->deferred_lock);
    uint32_t chains[FAT_DEFERRED_CHAINS];
    uint32_t n = vol->deferred_count;
    if (n == 0) {
        fp_mutex_unlock(vol->pool, &vol->deferred_lock); /* someone else released them */
        return VFS_OK;
    }
    af_memcpy(chains, vol->deferred, n * sizeof(chains[0]));
    vol->deferred_count = 0;
    /* Chains queued from here on were cut loose after this flush began: they wait. */
    vfs_status st = vfs_status_from_blk(blk_cache_flush(vol->cache));
    for (uint32_t i = 0; i < n; i++) {
        if (st != VFS_OK) {
            /* Not durable: keep them waiting (or lose them as lost clusters if no room). */
            if (vol->deferred_count < FAT_DEFERRED_CHAINS)
                vol->deferred[vol->deferred_count++] = chains[i];
            continue;
        }
        vfs_status fst = fat_chain_free(vol, chains[i]);
        if (fst != VFS_OK)
            st = fst;
    }
    fp_mutex_unlock(vol->pool, &vol->deferred_lock);
    return st;
}

vfs_status fat_chain_free_later(fat_volume *vol, uint32_t first)
{
    if (!fat_cluster_valid(vol, first))
        return VFS_OK;
    while (vol->deferred_count == FAT_DEFERRED_CHAINS) {
        vfs_status st = fat_deferred_release(vol);
        if (st != VFS_OK)
            return st; /* the chain stays allocated: lost clusters, found by a checker */
    }
    vol->deferred[vol->deferred_count++] = first;
    return VFS_OK;
}

vfs_status fat_alloc_reserve_wait(fat_volume *vol, uint32_t count)
{
    vfs_status st = fat_alloc_reserve(vol, count);
    if (st == VFS_NO_SPACE && vol->deferred_count > 0) {
        st = fat_deferred_release(vol);
        if (st == VFS_OK)
            st = fat_alloc_reserve(vol, count);
    }
    return st;
}
