/* File data: the per-node cluster-run cache, byte I/O over disk ranges, read, write,
 * truncate, and chain growth (shared with directories).
 *
 * The run cache holds exact extents of the chain (file cluster -> disk cluster, length),
 * sorted and merged; a mapping walks the FAT only from the nearest known run, so a read at
 * any offset of a large file does not start from the first cluster. Data moves one
 * contiguous run at a time: partial blocks through the cache, whole blocks with one
 * blk_cache_read_run / write_run per run.
 *
 * Caller holds the node's lock: the write side to change anything, at least the read side
 * to read (concurrent readers share the run cache: every mapping is answered from a local
 * copy taken before a blocking point, and the array is only a cache of exact extents). */
#include "fat/fat_engine.h"

#define FAT_MAX_FILE_SIZE 0xFFFFFFFFull

/* ---- run cache ------------------------------------------------------------------------ */

void fat_runs_reset(fat_node *node)
{
    node->run_count = 0;
}

static void runs_remove(fat_node *node, uint32_t i)
{
    for (uint32_t j = i + 1; j < node->run_count; j++)
        node->runs[j - 1] = node->runs[j];
    node->run_count--;
}

/* Drop every mapping of file clusters >= keep. */
static void runs_truncate(fat_node *node, uint32_t keep)
{
    uint32_t i = 0;
    while (i < node->run_count) {
        fat_run *r = &node->runs[i];
        if (r->file_cluster >= keep) {
            node->run_count = i;
            break;
        }
        if (r->file_cluster + r->length > keep)
            r->length = keep - r->file_cluster;
        i++;
    }
}

void fat_runs_add(fat_node *node, uint32_t fc, uint32_t disk, uint32_t length)
{
    fat_run *runs = node->runs;
    uint32_t i = 0;
    while (i < node->run_count && runs[i].file_cluster <= fc)
        i++;
    if (i > 0) {
        fat_run *p = &runs[i - 1];
        if (p->file_cluster + p->length >= fc && p->disk_cluster + (fc - p->file_cluster) == disk) {
            uint32_t end = fc + length;
            if (end > p->file_cluster + p->length)
                p->length = end - p->file_cluster;
            /* Swallow successors it now overlaps, or touches contiguously on disk too. */
            while (i < node->run_count) {
                fat_run *n = &runs[i];
                uint32_t p_end = p->file_cluster + p->length;
                if (n->file_cluster > p_end ||
                    (n->file_cluster == p_end && n->disk_cluster != p->disk_cluster + p->length))
                    break;
                if (n->file_cluster + n->length > p_end)
                    p->length = n->file_cluster + n->length - p->file_cluster;
                runs_remove(node, i);
            }
            return;
        }
    }
    uint32_t cap = node->vol->cfg.runs_per_node;
    if (node->run_count == cap) {
        /* Evict the run whose neighbours are closest together, counting the new run in
         * place (it and the first run stay: every walk may start there), so the survivors
         * stay spread over the file as checkpoints and any walk stays short. Positions v
         * are in the array as it would be with the new run at i. */
        uint32_t total = node->run_count + 1u, victim = FAT_NONE, best = UINT32_MAX;
        uint32_t end = node->chain_length != FAT_NONE ? node->chain_length : UINT32_MAX;
        for (uint32_t v = 1; v < total; v++) {
            if (v == i)
                continue;
            uint32_t l = v - 1u, r = v + 1u;
            uint32_t left = l == i ? fc : runs[l < i ? l : l - 1u].file_cluster;
            uint32_t right = r >= total ? end : r == i ? fc : runs[r < i ? r : r - 1u].file_cluster;
            uint32_t gap = right > left ? right - left : 0;
            if (gap < best) {
                best = gap;
                victim = v;
            }
        }
        AF_ASSERT(victim != FAT_NONE);
        uint32_t idx = victim < i ? victim : victim - 1u;
        runs_remove(node, idx);
        if (idx < i)
            i--;
    }
    for (uint32_t j = node->run_count; j > i; j--)
        runs[j] = runs[j - 1];
    runs[i] = (fat_run){ fc, disk, length };
    node->run_count++;
}

/* Index of the last run starting at or before fc, or FAT_NONE. */
static uint32_t runs_find(const fat_node *node, uint32_t fc)
{
    uint32_t lo = 0, hi = node->run_count;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2u;
        if (node->runs[mid].file_cluster <= fc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? FAT_NONE : lo - 1;
}

static vfs_status note_chain_end(fat_node *node, uint32_t length, uint32_t last)
{
    node->chain_length = length;
    node->last_cluster = last;
    return VFS_NO_FILE;
}

/* Walk the FAT from the nearest known run until file cluster fc is mapped. */
static vfs_status walk_to(fat_node *node, uint32_t fc)
{
    fat_volume *vol = node->vol;
    uint32_t cur_fc, cur;
    uint32_t r = runs_find(node, fc);
    if (r == FAT_NONE) {
        if (node->first_cluster == 0)
            return note_chain_end(node, 0, 0);
        if (!fat_cluster_valid(vol, node->first_cluster))
            return VFS_CORRUPT;
        cur_fc = 0;
        cur = node->first_cluster;
        fat_runs_add(node, 0, cur, 1);
    } else {
        cur_fc = node->runs[r].file_cluster + node->runs[r].length - 1u;
        cur = node->runs[r].disk_cluster + node->runs[r].length - 1u;
    }
    while (cur_fc < fc) {
        if (node->chain_length != FAT_NONE && cur_fc + 1u >= node->chain_length)
            return VFS_NO_FILE;
        uint32_t next;
        vfs_status st = fat_table_get(vol, cur, &next);
        if (st != VFS_OK)
            return st;
        vol->stats.chain_steps++;
        if (fat_is_eoc(vol, next))
            return note_chain_end(node, cur_fc + 1u, cur);
        if (!fat_cluster_valid(vol, next) || cur_fc + 1u >= vol->geo.cluster_count)
            return VFS_CORRUPT; /* out of range, free, bad, or longer than the volume: a loop */
        cur_fc++;
        cur = next;
        fat_runs_add(node, cur_fc, cur, 1);
    }
    return VFS_OK;
}

/* Once per file node, before its chain is trusted: walk the clusters its size needs,
 * with Brent's cycle detection, so a loop or a short chain is an error (CORRUPT) rather
 * than data read from the wrong place. Fills the run cache on the way. */
static vfs_status check_chain(fat_node *node)
{
    fat_volume *vol = node->vol;
    if (node->chain_checked || node->is_dir)
        return VFS_OK;
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint32_t need = (uint32_t)(((uint64_t)node->size + cs - 1) / cs);
    if (need == 0) {
        node->chain_checked = true;
        return VFS_OK;
    }
    if (!fat_cluster_valid(vol, node->first_cluster))
        return VFS_CORRUPT;
    fat_runs_reset(node);
    uint32_t cur = node->first_cluster, tortoise = cur, power = 1, lam = 1;
    fat_runs_add(node, 0, cur, 1);
    uint32_t fc;
    for (fc = 1; fc <= need; fc++) {
        uint32_t next;
        vfs_status st = fat_table_get(vol, cur, &next);
        if (st != VFS_OK)
            return st;
        vol->stats.chain_steps++;
        if (fat_is_eoc(vol, next)) {
            if (fc < need)
                return VFS_CORRUPT; /* shorter than the size says */
            node->chain_length = fc;
            node->last_cluster = cur;
            break;
        }
        if (fc == need)
            break; /* longer than the size needs: keep it, a checker's business */
        if (!fat_cluster_valid(vol, next) || next == tortoise)
            return VFS_CORRUPT;
        cur = next;
        fat_runs_add(node, fc, cur, 1);
        if (lam == power) {
            tortoise = cur;
            power *= 2u;
            lam = 0;
        }
        lam++;
    }
    node->chain_checked = true;
    return VFS_OK;
}

vfs_status fat_file_map(fat_node *node, uint32_t fc, uint32_t want, uint32_t *disk, uint32_t *count)
{
    fat_volume *vol = node->vol;
    vfs_status cst = check_chain(node);
    if (cst != VFS_OK)
        return cst;
    uint32_t r = runs_find(node, fc);
    if (r == FAT_NONE || fc >= node->runs[r].file_cluster + node->runs[r].length) {
        vfs_status st = walk_to(node, fc);
        if (st != VFS_OK)
            return st;
        r = runs_find(node, fc);
        AF_ASSERT(r != FAT_NONE);
    } else {
        vol->stats.run_hits++;
    }
    AF_ASSERT(fc < node->runs[r].file_cluster + node->runs[r].length);
    /* Extend the run ahead while the chain stays contiguous, up to `want`. Readers of a
     * directory share its runs under the read lock, so the answer is kept in a local copy
     * (the array may change at every blocking point); the array is only a cache. */
    fat_run have = node->runs[r];
    for (;;) {
        uint32_t end = have.file_cluster + have.length;
        if (end - fc >= want)
            break;
        if (node->chain_length != FAT_NONE && end >= node->chain_length)
            break;
        uint32_t after = runs_find(node, end);
        if (after != FAT_NONE && node->runs[after].file_cluster == end)
            break; /* the next extent is known: it is not contiguous with this one */
        uint32_t last = have.disk_cluster + have.length - 1u;
        uint32_t next;
        vfs_status st = fat_table_get(vol, last, &next);
        if (st != VFS_OK)
            return st;
        vol->stats.chain_steps++;
        if (fat_is_eoc(vol, next)) {
            note_chain_end(node, end, last);
            break;
        }
        if (!fat_cluster_valid(vol, next) || end >= vol->geo.cluster_count)
            break;
        fat_runs_add(node, end, next, 1);
        if (next != last + 1u)
            break;
        have.length++;
    }
    *disk = have.disk_cluster + (fc - have.file_cluster);
    *count = have.file_cluster + have.length - fc;
    return VFS_OK;
}

vfs_status fat_file_chain_length(fat_node *node, uint32_t *length)
{
    vfs_status cst = check_chain(node);
    if (cst != VFS_OK)
        return cst;
    if (node->chain_length == FAT_NONE) {
        vfs_status st = walk_to(node, node->vol->geo.cluster_count);
        if (st != VFS_NO_FILE)
            return st == VFS_OK ? VFS_CORRUPT : st;
    }
    *length = node->chain_length;
    return VFS_OK;
}

/* ---- byte I/O over a contiguous disk range ------------------------------------------- */

static vfs_status io_read(fat_volume *vol, uint64_t off, uint8_t *dst, uint64_t len)
{
    while (len > 0) {
        uint64_t in = off % BLK_TRANSFER_SIZE;
        blk_status s;
        uint64_t n;
        if (in != 0 || len < BLK_TRANSFER_SIZE) {
            n = af_min_u64(len, BLK_TRANSFER_SIZE - in);
            s = blk_cache_read_bytes(vol->cache, off, dst, (size_t)n);
        } else {
            uint64_t blocks = af_min_u64(len / BLK_TRANSFER_SIZE, 65535u);
            n = blocks * BLK_TRANSFER_SIZE;
            s = blk_cache_read_run(vol->cache, off / BLK_TRANSFER_SIZE, (uint32_t)blocks, dst);
        }
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        off += n;
        dst += n;
        len -= n;
    }
    return VFS_OK;
}

static const uint8_t zero_block[BLK_TRANSFER_SIZE];

/* Part of one block, the rest of which nobody needs: [in, in + n) from src (NULL: zeros),
 * all else zero, without reading the block first. */
static blk_status write_block_fresh(fat_volume *vol, uint64_t block, uint32_t in, const uint8_t *src, uint64_t n)
{
    blk_buf *buf;
    blk_status s = blk_cache_get(vol->cache, block, BLK_GET_OVERWRITE, &buf);
    if (s != BLK_OK)
        return s;
    s = blk_cache_prepare_write(vol->cache, buf);
    if (s == BLK_OK) {
        uint8_t *d = blk_buf_data(buf);
        af_memset(d, 0, BLK_TRANSFER_SIZE);
        if (src)
            af_memcpy(d + in, src, n);
        blk_cache_mark_dirty(vol->cache, buf);
    }
    blk_cache_release(vol->cache, buf);
    return s;
}

/* Disk bytes [off, off + len) from src (NULL: zeros). A block wholly inside [fresh_lo,
 * fresh_hi) (clusters just claimed: whatever they held is nobody's, and the caller writes
 * every byte of them that the file reaches, in order) is not read for a partial write; its
 * other bytes become zeros. Writes straight from a client's buffer go into `batch` when
 * there is one (the caller waits for them), else are waited for here. */
static vfs_status io_write(fat_volume *vol, uint64_t off, const uint8_t *src, uint64_t len, blk_write_batch *batch,
                          uint64_t fresh_lo, uint64_t fresh_hi)
{
    while (len > 0) {
        uint64_t in = off % BLK_TRANSFER_SIZE;
        blk_status s;
        uint64_t n;
        if (in != 0 || len < BLK_TRANSFER_SIZE) {
            n = af_min_u64(len, BLK_TRANSFER_SIZE - in);
            uint64_t at = off - in;
            if (at >= fresh_lo && at + BLK_TRANSFER_SIZE <= fresh_hi)
                s = write_block_fresh(vol, at / BLK_TRANSFER_SIZE, (uint32_t)in, src, n);
            else
                s = blk_cache_write_bytes(vol->cache, off, src ? src : zero_block, (size_t)n);
        } else if (!src) {
            n = BLK_TRANSFER_SIZE;
            s = write_block_fresh(vol, off / BLK_TRANSFER_SIZE, 0, NULL, n);
        } else {
            uint64_t blocks = af_min_u64(len / BLK_TRANSFER_SIZE, 65535u);
            n = blocks * BLK_TRANSFER_SIZE;
            s = batch ? blk_cache_write_run_start(vol->cache, off / BLK_TRANSFER_SIZE, (uint32_t)blocks, src, batch)
                      : blk_cache_write_run(vol->cache, off / BLK_TRANSFER_SIZE, (uint32_t)blocks, src);
        }
        if (s != BLK_OK)
            return vfs_status_from_blk(s);
        off += n;
        if (src)
            src += n;
        len -= n;
    }
    return VFS_OK;
}

vfs_status fat_io_write_zeros(fat_volume *vol, uint64_t offset, uint64_t len)
{
    return io_write(vol, offset, NULL, len, NULL, 0, 0);
}

/* Read or write file bytes [pos, end) that lie in allocated clusters. For writes, src
 * points at the byte for `pos` (NULL: zeros). */
static vfs_status file_io(fat_node *node, uint64_t pos, uint64_t end, uint8_t *dst, const uint8_t *src)
{
    fat_volume *vol = node->vol;
    uint64_t cs = vol->geo.bytes_per_cluster;
    while (pos < end) {
        uint32_t fc = (uint32_t)(pos / cs);
        uint64_t in = pos % cs;
        uint32_t want = (uint32_t)((end - (uint64_t)fc * cs + cs - 1) / cs);
        uint32_t disk, count;
        vfs_status st = fat_file_map(node, fc, want, &disk, &count);
        if (st == VFS_NO_FILE)
            return VFS_CORRUPT; /* the chain is shorter than the file */
        if (st != VFS_OK)
            return st;
        uint64_t n = af_min_u64((uint64_t)count * cs - in, end - pos);
        uint64_t at = fat_cluster_offset(&vol->geo, disk) + in;
        st = dst ? io_read(vol, at, dst, n) : io_write(vol, at, src, n, node->write_batch, 0, 0);
        if (st != VFS_OK)
            return st;
        pos += n;
        if (dst)
            dst += n;
        if (src)
            src += n;
    }
    return VFS_OK;
}

/* ---- growth ------------------------------------------------------------------------------ */

/* Append `need` clusters (already reserved) to the chain, which has `have` clusters. The
 * new clusters cover file bytes [have * cs, ...): bytes below data_off are zeroed, bytes
 * [data_off, data_end) come from src (NULL: zeros); each run's data and FAT entries are
 * written before the link that makes it reachable. */
static vfs_status grow(fat_node *node, uint32_t have, uint32_t need, uint64_t data_off, uint64_t data_end,
                      const uint8_t *src)
{
    fat_volume *vol = node->vol;
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint32_t fc = have;
    while (need > 0) {
        uint32_t hint = fc > 0 ? node->last_cluster + 1u : FAT_NONE;
        uint32_t n;
        uint32_t first = fat_alloc_claim_run(vol, hint, need, &n);
        need -= n;
        vfs_status st = fat_table_link_run(vol, first, n, fat_eoc_value(vol->geo.type));
        uint64_t run_start = (uint64_t)fc * cs, run_end = run_start + (uint64_t)n * cs;
        uint64_t disk_start = fat_cluster_offset(&vol->geo, first), disk_end = disk_start + (uint64_t)n * cs;
        uint64_t zero_end = af_min_u64(af_max_u64(data_off, run_start), run_end);
        if (st == VFS_OK && zero_end > run_start)
            st = io_write(vol, disk_start, NULL, zero_end - run_start, NULL, disk_start, disk_end);
        uint64_t d0 = af_max_u64(data_off, run_start), d1 = af_min_u64(data_end, run_end);
        if (st == VFS_OK && d1 > d0)
            st = io_write(vol, disk_start + (d0 - run_start), src ? src + (d0 - data_off) : NULL, d1 - d0,
                          node->write_batch, disk_start, disk_end);
        if (st == VFS_OK) {
            /* A first run is linked by the directory entry, which is written later after
             * its own order point (fat_node_write_dirent, fat_node_commit). */
            if (fc == 0) {
                node->first_cluster = first;
            } else {
                /* A file's new run whose FAT entries share one block (in each copy) with
                 * the link to it needs no order point: the block reaches the disk whole,
                 * with both or neither, and the run lies past the size any entry holds,
                 * so its data can follow in the same epoch. A growing file at a 64 KiB
                 * write at a time (no room to claim ahead) so writes its FAT block once
                 * per fsync rather than once per write, with one FLUSH instead of one per
                 * write. A directory's new cluster is read as entries as soon as linked:
                 * always an epoch of its own. */
                uint32_t lo = af_min_u32(node->last_cluster, first);
                uint32_t hi = af_max_u32(node->last_cluster, first + n - 1u);
                if (node->is_dir || !fat_table_one_block(vol, lo, hi))
                    blk_cache_order_point(vol->cache); /* rule: data before link */
                st = fat_table_set(vol, node->last_cluster, first);
            }
        }
        if (st != VFS_OK) {
            fat_alloc_unreserve(vol, need);
            fat_chain_free(vol, first);
            return st;
        }
        fat_runs_add(node, fc, first, n);
        fc += n;
        node->chain_length = fc;
        node->last_cluster = first + n - 1u;
        node->dirent_dirty = true;
    }
    return VFS_OK;
}

vfs_status fat_file_grow_chain(fat_node *node, uint32_t count)
{
    uint32_t have;
    vfs_status st = fat_file_chain_length(node, &have);
    if (st != VFS_OK)
        return st;
    st = fat_alloc_reserve_wait(node->vol, count);
    if (st != VFS_OK)
        return st;
    uint64_t end = (uint64_t)(have + count) * node->vol->geo.bytes_per_cluster;
    return grow(node, have, count, end, end, NULL);
}

/* ---- read, write, truncate --------------------------------------------------------------- */

static void touch_access(fat_node *node)
{
    fat_volume *vol = node->vol;
    if (vol->read_only)
        return;
    fat_datetime now = fat_now(vol);
    if (node->access_date != now.date) {
        node->access_date = now.date;
        node->dirent_dirty = true;
    }
}

static void touch_write(fat_node *node)
{
    fat_datetime now = fat_now(node->vol);
    node->write_date = now.date;
    node->write_time = now.time;
    node->access_date = now.date;
    node->attr |= FAT_ATTR_ARCHIVE;
    node->dirent_dirty = true;
}

vfs_status fat_file_read_locked(fat_node *node, uint64_t offset, void *dst, size_t len, size_t *done)
{
    *done = 0;
    if (offset >= node->size || len == 0)
        return VFS_OK;
    uint64_t end = af_min_u64(node->size, offset + len);
    vfs_status st = file_io(node, offset, end, dst, NULL);
    if (st != VFS_OK)
        return st;
    *done = (size_t)(end - offset);
    touch_access(node);
    return VFS_OK;
}

/* Clusters to claim ahead for a write that grows a file from `have` clusters by `need`:
 * as many again as it has (so a file written sequentially grows its chain, and changes
 * the FAT, about log2 + size / FAT_PREALLOC_MAX_BYTES times rather than once per write),
 * at most FAT_PREALLOC_MAX_BYTES and an eighth of the free space left, never past the
 * largest file. None for a file's first clusters (most files are small), and none on a
 * volume with less than four times the most left free: there, space held ahead would be
 * missed by other writers. Counted as used until the file's last close gives it back. */
#define FAT_PREALLOC_MAX_BYTES (8u << 20)
static uint32_t prealloc_extra(fat_volume *vol, uint32_t have, uint32_t need)
{
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint64_t spare = vol->free_count - vol->reserved;
    if (have == 0 || spare < need + 4u * (FAT_PREALLOC_MAX_BYTES / cs))
        return 0;
    uint64_t extra = af_min_u64(have + (uint64_t)need, FAT_PREALLOC_MAX_BYTES / cs);
    spare = (spare - need) / 8u;
    uint64_t largest = ((uint64_t)FAT_MAX_FILE_SIZE + cs - 1) / cs;
    uint64_t room = largest > (uint64_t)have + need ? largest - have - need : 0;
    return (uint32_t)af_min_u64(af_min_u64(extra, spare), room);
}

vfs_status fat_file_write_locked(fat_node *node, uint64_t offset, const void *src, size_t len, size_t *done)
{
    fat_volume *vol = node->vol;
    *done = 0;
    if (vol->read_only)
        return VFS_READ_ONLY_FS;
    if (len == 0)
        return VFS_OK;
    if (offset >= FAT_MAX_FILE_SIZE)
        return VFS_FILE_TOO_LARGE;
    uint64_t end = offset + af_min_u64(len, FAT_MAX_FILE_SIZE - offset);
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint32_t have;
    vfs_status st = fat_file_chain_length(node, &have);
    if (st != VFS_OK)
        return st;
    uint64_t alloc = (uint64_t)have * cs;
    uint64_t need64 = end > alloc ? (end - alloc + cs - 1) / cs : 0;
    uint32_t need = (uint32_t)need64;
    uint32_t extra = 0;
    if (need > 0) {
        extra = prealloc_extra(vol, have, need);
        if (extra == 0 || fat_alloc_reserve(vol, need + extra) != VFS_OK) {
            extra = 0;
            st = fat_alloc_reserve_wait(vol, need);
            if (st == VFS_NO_SPACE && node->detached != 0) {
                /* The space the truncation gave up is held by the entry that still names
                 * it: write the entry now to let it go. */
                st = fat_node_write_dirent(node);
                if (st == VFS_OK)
                    st = fat_alloc_reserve_wait(vol, need);
            }
            if (st != VFS_OK)
                return st;
        }
    }
    const uint8_t *bytes = src;
    uint64_t size = node->size;
    /* Existing clusters: zeros over a gap past the old size, then the data. */
    if (size < offset && size < alloc)
        st = file_io(node, size, af_min_u64(offset, alloc), NULL, NULL);
    if (st == VFS_OK && offset < alloc)
        st = file_io(node, offset, af_min_u64(end, alloc), NULL, bytes);
    if (st != VFS_OK) {
        fat_alloc_unreserve(vol, need + extra);
        return st;
    }
    if (need > 0) {
        st = grow(node, have, need + extra, offset, end, bytes);
        if (st != VFS_OK)
            return st;
        node->preallocated |= extra > 0;
    }
    /* The new size reaches the directory entry later (close, fsync, sync), after an order
     * point: one entry write per file rather than per write. A power cut before that
     * leaves the entry's older size over a longer chain: at worst clusters fsck gives
     * back, never a size past the chain. */
    if (end > node->size)
        node->size = (uint32_t)end;
    touch_write(node);
    node->data_written = blk_cache_order_mark(vol->cache);
    *done = (size_t)(end - offset);
    return VFS_OK;
}

/* Cut the chain to the clusters the size needs: the entry with the size first, then
 * (after an order point) the chain's new end, the tail freed once that is durable. */
static vfs_status shrink_chain(fat_node *node)
{
    fat_volume *vol = node->vol;
    uint64_t cs = vol->geo.bytes_per_cluster;
    uint32_t keep = (uint32_t)((node->size + cs - 1) / cs);
    uint32_t have;
    node->preallocated = false;
    vfs_status st = fat_file_chain_length(node, &have);
    if (st != VFS_OK)
        return st;
    if (keep >= have)
        return fat_node_write_dirent(node);
    if (keep == 0) {
        /* The entry is not rewritten here: it keeps naming the old chain, which stays
         * allocated and unchanged, until the entry is next written (with the new size and
         * first cluster: fsync, close, sync) and releases it. A truncate-and-rewrite so
         * writes its entry once, not twice; a cut before leaves the old contents, as for
         * any change not yet synced. A chain the entry never named (grown since an earlier
         * truncation) goes at once, after the next flush as any other. */
        uint32_t old = node->first_cluster;
        node->first_cluster = 0;
        node->chain_length = 0;
        fat_runs_reset(node);
        node->dirent_dirty = true;
        if (node->detached == 0) {
            node->detached = old;
            return VFS_OK;
        }
        return fat_chain_free_later(vol, old);
    }
    uint32_t last, count;
    st = fat_file_map(node, keep - 1u, 1, &last, &count);
    if (st != VFS_OK)
        return st == VFS_NO_FILE ? VFS_CORRUPT : st;
    st = fat_node_write_dirent(node);
    if (st != VFS_OK)
        return st;
    blk_cache_order_point(vol->cache); /* rule: size before cut */
    uint32_t tail;
    st = fat_table_get(vol, last, &tail);
    if (st == VFS_OK)
        st = fat_table_set(vol, last, fat_eoc_value(vol->geo.type));
    runs_truncate(node, keep);
    node->chain_length = keep;
    node->last_cluster = last;
    if (st == VFS_OK && !fat_is_eoc(vol, tail))
        st = fat_chain_free_later(vol, tail);
    return st;
}

vfs_status fat_file_truncate_locked(fat_node *node, uint64_t length)
{
    fat_volume *vol = node->vol;
    if (vol->read_only)
        return VFS_READ_ONLY_FS;
    if (length > FAT_MAX_FILE_SIZE)
        return VFS_FILE_TOO_LARGE;
    if (length > node->size) {
        size_t done;
        uint64_t old = node->size;
        return fat_file_write_locked(node, old, NULL, (size_t)(length - old), &done);
    }
    node->size = (uint32_t)length;
    touch_write(node);
    return shrink_chain(node);
}

vfs_status fat_file_trim_locked(fat_node *node)
{
    if (!node->preallocated || node->vol->read_only)
        return VFS_OK;
    return shrink_chain(node);
}
