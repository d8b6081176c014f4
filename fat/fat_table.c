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

bool fat_table_one_block(const fat_volume *vol, uint32_t lo, uint32_t hi)
{
    uint32_t width = fat_entry_size(vol->geo.type);
    bool mirror = !(vol->geo.ext_flags & FAT_EXT_FLAGS_NO_MIRROR);
    for (uint32_t copy = 0; copy < vol->geo.fat_count; copy++) {
        if (!mirror && copy != vol->geo.active_fat)
            continue;
        uint64_t first = fat_entry_offset(&vol->geo, copy, lo) / BLK_TRANSFER_SIZE;
        uint64_t last = (fat_entry_offset(&vol->geo, copy, hi) + width - 1u) / BLK_TRANSFER_SIZE;
        if (first != last)
            return false;
    }
    return true;
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

/* A window of pinned FAT blocks of one copy: reading a FAT a window at a time costs one
 * device round trip per window instead of per block, most of the cost of a mount, and
 * with the next two windows prefetched those round trips overlap. */
#define FAT_WINDOW_BLOCKS 32u
#define FAT_WINDOW_PREFETCH (2u * FAT_WINDOW_BLOCKS)
typedef struct fat_window {
    blk_buf *buf[FAT_WINDOW_BLOCKS];
    uint64_t block;
    uint32_t n;
    uint32_t copy;
} fat_window;

static void window_release(fat_volume *vol, fat_window *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        blk_cache_release(vol->cache, w->buf[i]);
    w->n = 0;
}

/* Entry `c` of the window's copy (blocks; the window moves forward as c grows). */
static vfs_status window_get(fat_volume *vol, fat_window *w, uint32_t c, uint32_t *value)
{
    uint64_t off = fat_entry_offset(&vol->geo, w->copy, c);
    uint64_t block = off / BLK_TRANSFER_SIZE;
    uint32_t in = (uint32_t)(off % BLK_TRANSFER_SIZE);
    if (in + fat_entry_size(vol->geo.type) > BLK_TRANSFER_SIZE) {
        /* a FAT12 entry across two blocks */
        uint8_t bytes[4] = { 0 };
        blk_status s = blk_cache_read_bytes(vol->cache, off, bytes, fat_entry_size(vol->geo.type));
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        *value = fat_entry_get(vol->geo.type, c, bytes);
        return VFS_OK;
    }
    if (block < w->block || block >= w->block + w->n) {
        window_release(vol, w);
        uint64_t last = fat_entry_offset(&vol->geo, w->copy, vol->geo.max_cluster) / BLK_TRANSFER_SIZE;
        uint32_t want = (uint32_t)af_min_u64(FAT_WINDOW_BLOCKS, last - block + 1);
        blk_status s = blk_cache_get_many(vol->cache, block, want, w->buf, &w->n);
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        w->block = block;
        /* A scan goes forward: the next windows are read while this one is scanned. */
        if (last >= block + w->n)
            blk_cache_prefetch(vol->cache, block + w->n,
                               (uint32_t)af_min_u64(FAT_WINDOW_PREFETCH, last - (block + w->n) + 1));
    }
    *value = fat_entry_get(vol->geo.type, c, blk_buf_data(w->buf[block - w->block]) + in);
    return VFS_OK;
}

/* Entries c .. c + *n - 1 of the window's copy lie in one pinned block, from *p on (*n is
 * cut to what that block holds; at least 1). FAT16/32 only: their entries never straddle
 * blocks. A writable mount reads every entry of two copies; through window_get, one call
 * each, that was 21M instructions on a 512 MiB FAT32 volume (3M this way). */
static vfs_status window_span(fat_volume *vol, fat_window *w, uint32_t c, const uint8_t **p, uint32_t *n)
{
    uint32_t value;
    vfs_status st = window_get(vol, w, c, &value);
    if (st != VFS_OK)
        return st;
    uint64_t off = fat_entry_offset(&vol->geo, w->copy, c);
    uint32_t in = (uint32_t)(off % BLK_TRANSFER_SIZE);
    uint32_t left = (BLK_TRANSFER_SIZE - in) / fat_entry_size(vol->geo.type);
    *p = blk_buf_data(w->buf[off / BLK_TRANSFER_SIZE - w->block]) + in;
    *n = af_min_u32(*n, left);
    return VFS_OK;
}

/* A FAT12 entry that spans two device blocks in some copy: never allocated (a cut between
 * the two writes could tear it). */
static bool entry_straddles(const fat_volume *vol, uint32_t c)
{
    if (vol->geo.type != FAT_TYPE_12)
        return false;
    for (uint32_t copy = 0; copy < vol->geo.fat_count; copy++)
        if (fat_entry_offset(&vol->geo, copy, c) % BLK_TRANSFER_SIZE == BLK_TRANSFER_SIZE - 1u)
            return true;
    return false;
}

/* The copies kept equal (FAT32 can turn mirroring off: then only the active one counts). */
static bool mirrored(const fat_volume *vol)
{
    return !(vol->geo.ext_flags & FAT_EXT_FLAGS_NO_MIRROR);
}

/* Where next fit starts on a volume that keeps no position (FAT12/16 have no FSInfo; a
 * FAT32 volume's hint may be missing): a hash of the clock and of which clusters are in
 * use, so each mount starts somewhere else (as littlefs does) instead of at cluster 2,
 * which would take the first writes of every session. Without a clock, a volume mounted
 * again unchanged starts where it started before. FSInfo's hint overrides it (fat_mount). */
static uint32_t start_position(const fat_volume *vol)
{
    uint32_t words = (vol->geo.max_cluster + 1u + 63u) / 64u;
    uint64_t h = 0xcbf29ce484222325ull;
    if (vol->cfg.clock)
        h = (h ^ (uint64_t)vol->cfg.clock(vol->cfg.clock_ctx)) * 0x100000001b3ull;
    for (uint32_t i = 0; i < words; i++)
        h = (h ^ vol->free_map[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return FAT_FIRST_CLUSTER + (uint32_t)(h % vol->geo.cluster_count);
}

/* Into the free map: n FAT16/32 entries from cluster c, read at p[k] in each of `copies`
 * copies (a cluster any copy uses is used). */
static void note_span(fat_volume *vol, uint32_t c, uint32_t n, const uint8_t *const p[2], uint32_t copies,
                      uint32_t width)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t off = i * width;
        uint32_t a = width == 4u ? af_load_le32(p[0] + off) & FAT32_MASK : af_load_le16(p[0] + off);
        uint32_t b = a;
        if (copies > 1)
            b = width == 4u ? af_load_le32(p[1] + off) & FAT32_MASK : af_load_le16(p[1] + off);
        if ((a | b) == FAT_ENTRY_FREE) {
            vol->free_count++;
            continue;
        }
        if ((a == FAT_ENTRY_FREE) != (b == FAT_ENTRY_FREE))
            vol->report.fat_disagreements++;
        map_set(vol, c + i);
    }
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
    vol->report.fat_disagreements = 0;
    /* Every mirrored copy is read beside the active one: a cluster that any copy says is
     * in use is in use here, so a copy damaged (or written by a cut half-way) never gets
     * a cluster that a file still owns handed out again. */
    fat_window win[2];
    uint32_t copies = mirrored(vol) && vol->geo.fat_count > 1 ? 2u : 1u;
    win[0] = (fat_window){ .copy = vol->geo.active_fat };
    win[1] = (fat_window){ .copy = vol->geo.active_fat == 0 ? 1u : 0u };
    vfs_status st = VFS_OK;
    for (uint32_t c = FAT_FIRST_CLUSTER; c <= max && st == VFS_OK;) {
        if (vol->geo.type != FAT_TYPE_12) {
            /* A block's worth of each copy's entries at once. */
            const uint8_t *p[2] = {NULL, NULL};
            uint32_t n = max - c + 1u;
            for (uint32_t k = 0; k < copies && st == VFS_OK; k++)
                st = window_span(vol, &win[k], c, &p[k], &n);
            if (st == VFS_OK)
                note_span(vol, c, n, p, copies, fat_entry_size(vol->geo.type));
            c += n;
            continue;
        }
        uint32_t values[2] = {0, 0};
        for (uint32_t k = 0; k < copies && st == VFS_OK; k++)
            st = window_get(vol, &win[k], c, &values[k]);
        bool used = values[0] != FAT_ENTRY_FREE;
        if (copies > 1 && (values[1] != FAT_ENTRY_FREE) != used) {
            vol->report.fat_disagreements++;
            used = true;
        }
        /* A FAT12 entry split across two device blocks could be torn by a cut between
         * their writes: such clusters are never handed out (at most two per copy). */
        if (used || entry_straddles(vol, c))
            map_set(vol, c);
        else
            vol->free_count++;
        c++;
    }
    /* More than two copies (rare): only their disagreements are counted, cluster by cluster. */
    for (uint32_t copy = 0; copy < vol->geo.fat_count && copies == 2 && st == VFS_OK; copy++) {
        if (copy == win[0].copy || copy == win[1].copy)
            continue;
        window_release(vol, &win[1]);
        win[1] = (fat_window){ .copy = copy };
        for (uint32_t c = FAT_FIRST_CLUSTER; c <= max && st == VFS_OK; c++) {
            uint32_t other;
            st = window_get(vol, &win[1], c, &other);
            if (st == VFS_OK && (other != FAT_ENTRY_FREE) && !map_test(vol, c)) {
                vol->report.fat_disagreements++;
                map_set(vol, c);
                vol->free_count--;
            }
        }
    }
    window_release(vol, &win[0]);
    window_release(vol, &win[1]);
    if (st != VFS_OK)
        return st;
    vol->reserved = 0;
    vol->next_free = start_position(vol);
    return VFS_OK;
}

/* ---- recovery's reach map (the free map's memory, while recovery walks) ------------------ */

void fat_reach_reset(fat_volume *vol)
{
    uint32_t max = vol->geo.max_cluster;
    uint32_t words = (max + 1u + 63u) / 64u;
    for (uint32_t i = 0; i < words; i++)
        vol->free_map[i] = 0;
    for (uint32_t c = max + 1u; c < words * 64u; c++)
        map_set(vol, c);
    map_set(vol, 0);
    map_set(vol, 1);
    vol->free_map_ready = false;
}

bool fat_reach_mark(fat_volume *vol, uint32_t c)
{
    if (map_test(vol, c))
        return false;
    map_set(vol, c);
    return true;
}

vfs_status fat_table_release_unreached(fat_volume *vol, uint32_t *freed)
{
    *freed = 0;
    fat_window w = { .copy = vol->geo.active_fat };
    uint32_t bad = fat_bad_value(vol->geo.type);
    vfs_status st = VFS_OK;
    for (uint32_t c = FAT_FIRST_CLUSTER; c <= vol->geo.max_cluster && st == VFS_OK; c++) {
        uint32_t value;
        st = window_get(vol, &w, c, &value);
        if (st != VFS_OK)
            break;
        if (value == FAT_ENTRY_FREE) {
            if (entry_straddles(vol, c))
                map_set(vol, c);
        } else if (value == bad) {
            map_set(vol, c);
        } else if (!map_test(vol, c)) {
            /* the window pins the block: the store below changes it in place */
            st = fat_table_set(vol, c, FAT_ENTRY_FREE);
            (*freed)++;
            if (entry_straddles(vol, c))
                map_set(vol, c);
        }
    }
    window_release(vol, &w);
    if (st != VFS_OK)
        return st;
    vol->free_count = 0;
    for (uint32_t c = FAT_FIRST_CLUSTER; c <= vol->geo.max_cluster; c++)
        vol->free_count += !map_test(vol, c);
    vol->reserved = 0;
    vol->free_map_ready = true;
    return VFS_OK;
}

vfs_status fat_table_sync_copies(fat_volume *vol, uint32_t *chunks)
{
    *chunks = 0;
    if (!mirrored(vol))
        return VFS_OK;
    uint8_t a[512], b[512];
    uint64_t active = vol->geo.fat_offset + (uint64_t)vol->geo.active_fat * vol->geo.fat_bytes;
    for (uint32_t copy = 0; copy < vol->geo.fat_count; copy++) {
        if (copy == vol->geo.active_fat)
            continue;
        uint64_t other = vol->geo.fat_offset + (uint64_t)copy * vol->geo.fat_bytes;
        for (uint64_t off = 0; off < vol->geo.fat_bytes; off += sizeof a) {
            size_t len = (size_t)af_min_u64(sizeof a, vol->geo.fat_bytes - off);
            blk_status s = blk_cache_read_bytes(vol->cache, active + off, a, len);
            if (s == BLK_OK)
                s = blk_cache_read_bytes(vol->cache, other + off, b, len);
            if (s == BLK_OK && af_memcmp(a, b, len) != 0) {
                s = blk_cache_write_bytes(vol->cache, other + off, a, len);
                (*chunks)++;
            }
            if (s != BLK_OK)
                return vfs_status_from_blk(s);
        }
    }
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

/* Next fit: new chains start where the last one ended, so the position sweeps the whole
 * data area and every free cluster is written once per sweep, rather than the few lowest
 * or most recently freed clusters taking every rewrite (a config file rewritten 500 times
 * wrote its 16 lowest free clusters about 32 times each). A file that grows continues
 * after its own last cluster, keeping it contiguous; the position moves on past it when
 * that lies ahead of it, never back. */
uint32_t fat_alloc_claim_run(fat_volume *vol, uint32_t hint, uint32_t max, uint32_t *count)
{
    AF_ASSERT(max >= 1 && vol->reserved >= max && vol->free_count >= max);
    bool next_fit = hint == FAT_NONE;
    uint32_t first = map_find_free(vol, next_fit ? vol->next_free : hint);
    uint32_t n = 0;
    while (n < max && first + n <= vol->geo.max_cluster && !map_test(vol, first + n)) {
        map_set(vol, first + n);
        n++;
    }
    vol->free_count -= n;
    vol->reserved -= n;
    vol->claimed += n;
    if (next_fit || first >= vol->next_free)
        vol->next_free = first + n > vol->geo.max_cluster ? FAT_FIRST_CLUSTER : first + n;
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

/* The device blocks wholly inside clusters [first, first + count) are discarded (this blocks).
 * Only chains nothing durable reaches get here (fat_chain_free's contract), so what they
 * held is nobody's; the clusters go back to the free map only after the device answered,
 * so no write of a new owner can reach the device before the discard. A device that
 * refuses one is sent no more. */
static void discard_run(fat_volume *vol, uint32_t first, uint32_t count)
{
    uint64_t start = fat_cluster_offset(&vol->geo, first);
    uint64_t end = start + (uint64_t)count * vol->geo.bytes_per_cluster;
    uint64_t block = (start + BLK_TRANSFER_SIZE - 1u) / BLK_TRANSFER_SIZE, stop = end / BLK_TRANSFER_SIZE;
    blk_client *client = blk_cache_client(vol->cache);
    while (block < stop && !vol->discard_refused) {
        uint32_t n = (uint32_t)af_min_u64(stop - block, UINT16_MAX);
        blk_io io;
        blk_status s = blk_client_submit(client, BLK_REQ_DISCARD, block, n, 0, &io);
        if (s == BLK_OK)
            s = blk_io_wait(client, &io);
        vol->discard_refused = s != BLK_OK;
        block += n;
    }
}

/* Give clusters [first, first + count), their FAT entries zeroed, back to the free map. */
static void release_run(fat_volume *vol, uint32_t first, uint32_t count)
{
    if (count == 0)
        return;
    if (vol->cfg.discard && !vol->discard_refused)
        discard_run(vol, first, count);
    for (uint32_t c = first; c < first + count; c++) {
        if (map_test(vol, c) && !entry_straddles(vol, c)) {
            map_clear(vol, c);
            vol->free_count++;
        }
    }
}

vfs_status fat_chain_free(fat_volume *vol, uint32_t first)
{
    uint32_t c = first;
    uint32_t run = first, run_len = 0; /* zeroed in the FAT, not yet in the free map */
    vfs_status st = VFS_OK;
    for (uint32_t steps = 0; fat_cluster_valid(vol, c) && steps < vol->geo.cluster_count; steps++) {
        uint32_t next;
        st = fat_table_get(vol, c, &next);
        if (st != VFS_OK || next == FAT_ENTRY_FREE)
            break; /* already free: a corrupt chain runs into free space, or a loop closed */
        st = fat_table_set(vol, c, FAT_ENTRY_FREE);
        if (st != VFS_OK)
            break;
        if (c != run + run_len) {
            release_run(vol, run, run_len);
            run = c;
            run_len = 0;
        }
        run_len++;
        if (fat_is_eoc(vol, next))
            break;
        c = next;
    }
    release_run(vol, run, run_len);
    return st;
}

/* ---- deferred freeing ---------------------------------------------------------------------- */

/* only_if_full: called because the queue was full. If another task released it while this
 * one waited for the lock, the chain to queue fits now: a flush for the few chains queued
 * meanwhile would be one more ordered round for nothing (removals running at once each
 * did one, sending about three times the FLUSHes and writes per file of one remover). */
static vfs_status deferred_release(fat_volume *vol, bool only_if_full)
{
    if (vol->deferred_count == 0)
        return VFS_OK;
    fp_mutex_lock(vol->pool, &vol->deferred_lock);
    uint32_t chains[FAT_DEFERRED_CHAINS];
    uint32_t n = vol->deferred_count;
    if (n == 0 || (only_if_full && n < FAT_DEFERRED_CHAINS)) {
        fp_mutex_unlock(vol->pool, &vol->deferred_lock); /* someone else released them */
        return VFS_OK;
    }
    af_memcpy(chains, vol->deferred, n * sizeof(chains[0]));
    vol->deferred_count = 0;
    /* Chains queued from here on were cut loose after this flush began: they wait (rule:
     * removal before free). */
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

vfs_status fat_deferred_release(fat_volume *vol) { return deferred_release(vol, false); }

vfs_status fat_chain_free_later(fat_volume *vol, uint32_t first)
{
    if (!fat_cluster_valid(vol, first))
        return VFS_OK;
    while (vol->deferred_count == FAT_DEFERRED_CHAINS) {
        vfs_status st = deferred_release(vol, true);
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
