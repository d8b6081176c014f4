/* Large contiguous transfers that bypass the cache, and read-ahead for sequential readers.
 *
 * A block present in the cache (in any state) is always served from or written into the
 * cache, so a dirty block is never read stale from the device nor overwritten by an older
 * copy. Absent blocks go to the device in one request per contiguous run; a bypass write is
 * in the transfer table while in flight, where cache misses, reads and later writes of its
 * blocks find it and wait. A write behind (from ordinary memory, its data in a staging slot)
 * has no task waiting: its response releases it (write_behind_done), and write-back of a
 * later epoch and blk_cache_flush wait for it (writeback.c).
 */
#include "blk/cache_internal.h"

/* True (and the offset) when [p, p + bytes) lies inside the data region: zero-copy. */
static bool data_region_offset(const blk_cache *cache, const void *p, uint64_t bytes, uint64_t *offset)
{
    uintptr_t start = (uintptr_t)cache->client->data_region;
    uintptr_t at = (uintptr_t)p;
    if (at < start || at - start > cache->client->data_region_size ||
        bytes > cache->client->data_region_size - (at - start))
        return false;
    *offset = at - start;
    return true;
}

static blk_status range_check(const blk_cache *cache, uint64_t block, uint32_t count)
{
    if (block > cache->client->capacity || count > cache->client->capacity - block)
        return BLK_ERR_RANGE;
    return BLK_OK;
}

/* A read-ahead window whose data may serve `block`. */
static blk_transfer *window_find(blk_cache *cache, uint64_t block)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_READ_AHEAD && !t->stale && !(t->io.done && t->io.status != BLK_OK) &&
            ranges_overlap(t->block, t->count, block, 1))
            return t;
    }
    return NULL;
}

/* Blocks: one cached block (waiting if it is being read). */
static blk_status copy_from_cache(blk_cache *cache, uint64_t block, uint8_t *out)
{
    blk_buf *b;
    blk_status st = blk_cache_get(cache, block, BLK_GET_READ, &b);
    if (st == BLK_OK) {
        af_memcpy(out, b->data, BLK_TRANSFER_SIZE);
        blk_cache_release(cache, b);
    }
    return st;
}

/* Blocks: wait for the window, or take what it holds from *block on. */
static void copy_from_window(blk_cache *cache, blk_transfer *w, uint64_t *block, uint64_t end, uint8_t *dst,
                             uint64_t dst_block)
{
    if (!w->io.done) {
        w->users++;
        blk_io_wait(cache->client, &w->io);
        w->users--;
        blk_transfer_reap_windows(cache);
        return; /* the world moved while we waited: look again */
    }
    uint64_t b = *block;
    uint64_t window_end = w->block + w->count;
    uint8_t *stage = cache_staging_ptr(cache, w->staging_slot);
    while (b < end && b < window_end && !blk_cache_find(cache, b)) {
        af_memcpy(dst + (b - dst_block) * BLK_TRANSFER_SIZE, stage + (b - w->block) * BLK_TRANSFER_SIZE,
                  BLK_TRANSFER_SIZE);
        cache->stats.read_ahead_used_blocks++;
        b++;
    }
    if (b == window_end && w->users == 0)
        blk_transfer_release(cache, w);
    *block = b;
}

/* Where the direct run from `block` must stop at the latest: the first later block that a
 * bypass write or (with windows) a read-ahead window covers (one pass over the table, not
 * one per block). */
static uint64_t direct_limit(const blk_cache *cache, uint64_t block, uint64_t end, bool windows)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        const blk_transfer *t = &cache->transfers[i];
        bool window = windows && t->kind == BLK_XFER_READ_AHEAD && !t->stale &&
                      !(t->io.done && t->io.status != BLK_OK);
        if ((window || t->kind == BLK_XFER_WRITE) && t->block > block && t->block < end)
            end = t->block;
    }
    return end;
}

/* Blocks: read the run of absent blocks starting at *block straight from the device. */
static blk_status read_direct(blk_cache *cache, uint64_t *block, uint64_t end, uint8_t *dst, uint64_t dst_block,
                              bool zero_copy, uint64_t dst_offset)
{
    blk_transfer *t = blk_transfer_acquire(cache);
    if (!zero_copy)
        t->staging_slot = blk_staging_acquire(cache);
    uint64_t b = *block;
    blk_transfer *w = blk_transfer_find_write(cache, b);
    if (w || blk_cache_find(cache, b) || window_find(cache, b)) {
        blk_transfer_release(cache, t);
        return w ? blk_write_settle(cache, w) : BLK_OK;
    }
    uint32_t max = zero_copy ? UINT16_MAX : cache->staging_slot_blocks;
    uint64_t limit = direct_limit(cache, b, af_min_u64(end, b + max), true);
    uint32_t n = 1;
    while (b + n < limit && !blk_cache_find(cache, b + n))
        n++;
    t->kind = BLK_XFER_READ;
    t->block = b;
    t->count = n;
    uint8_t *out = dst + (b - dst_block) * BLK_TRANSFER_SIZE;
    uint64_t offset = zero_copy ? dst_offset + (b - dst_block) * BLK_TRANSFER_SIZE
                                : cache_staging_offset(cache, t->staging_slot);
    cache->stats.device_reads++;
    blk_status st = blk_client_submit(cache->client, BLK_REQ_READ, b, n, offset, &t->io);
    if (st == BLK_OK)
        st = blk_io_wait(cache->client, &t->io);
    if (st == BLK_OK) {
        if (!zero_copy)
            af_memcpy(out, cache_staging_ptr(cache, t->staging_slot), (uint64_t)n * BLK_TRANSFER_SIZE);
        cache->stats.bypass_read_blocks += n;
        *block = b + n;
    }
    blk_transfer_release(cache, t);
    return st;
}

/* Blocks: a lone absent block (the caller found it neither cached nor in a window) read by
 * the device straight into a zero-copy reader's memory. It takes no cache buffer, transfer
 * or staging slot, only the request slot any miss needs, so any number run at once; the
 * cache is neither filled nor disturbed. A block with a bypass write in flight is the
 * write's: this waits for it and leaves *block alone (look again). A write that starts
 * after we looked races with this read as with any concurrent reader. */
static blk_status read_lone_direct(blk_cache *cache, uint64_t *block, uint64_t offset)
{
    blk_transfer *w = blk_transfer_find_write(cache, *block);
    if (w)
        return blk_write_settle(cache, w);
    blk_io io;
    cache->stats.device_reads++;
    blk_status st = blk_client_submit(cache->client, BLK_REQ_READ, *block, 1, offset, &io);
    if (st == BLK_OK)
        st = blk_io_wait(cache->client, &io);
    if (st == BLK_OK)
        cache->stats.bypass_read_blocks++;
    (*block)++;
    return st;
}

/* The stream a read at `block` continues, or a recycled one (least recently used). */
static blk_stream *stream_for(blk_cache *cache, uint64_t block, bool *sequential)
{
    blk_stream *lru = &cache->streams[0];
    for (uint32_t i = 0; i < BLK_CACHE_STREAMS; i++) {
        blk_stream *s = &cache->streams[i];
        if (s->next_block == block) {
            *sequential = true;
            return s;
        }
        if (s->last_use < lru->last_use)
            lru = s;
    }
    *sequential = false;
    lru->ahead_end = 0;
    return lru;
}

/* Start reads of the blocks a sequential reader will want next, without waiting for them.
 * Only free resources are used: read-ahead never makes real work wait. */
static void read_ahead(blk_cache *cache, blk_stream *s, uint64_t end)
{
    uint64_t capacity = cache->client->capacity;
    if (s->ahead_end < end)
        s->ahead_end = end;
    while (s->ahead_end < end + cache->read_ahead_blocks && s->ahead_end < capacity) {
        uint64_t start = s->ahead_end;
        uint32_t n = (uint32_t)af_min_u64(cache->staging_slot_blocks, capacity - start);
        if (blk_transfer_write_overlaps(cache, start, n))
            return;
        blk_transfer *t = blk_transfer_try_acquire(cache);
        if (!t)
            return;
        uint32_t slot;
        if (!blk_staging_try_acquire(cache, &slot)) {
            blk_transfer_release(cache, t);
            return;
        }
        t->staging_slot = slot;
        t->kind = BLK_XFER_READ_AHEAD;
        t->block = start;
        t->count = n;
        s->ahead_end = start + n;
        cache->stats.device_reads++;
        cache->stats.read_ahead_blocks += n;
        blk_status st = blk_client_submit(cache->client, BLK_REQ_READ, start, n, cache_staging_offset(cache, slot),
                                          &t->io);
        if (st != BLK_OK) {
            /* Readers may have found the window while the submit waited for a slot. */
            t->io.status = st;
            t->io.done = true;
            t->stale = true;
            blk_transfer_reap_windows(cache);
            return;
        }
    }
}

blk_status blk_cache_read_run(blk_cache *cache, uint64_t block, uint32_t count, void *dst)
{
    blk_status st = range_check(cache, block, count);
    if (st != BLK_OK || count == 0)
        return st;
    uint64_t dst_offset = 0;
    bool zero_copy = data_region_offset(cache, dst, (uint64_t)count * BLK_TRANSFER_SIZE, &dst_offset);
    uint64_t end = block + count;
    uint64_t b = block;
    while (st == BLK_OK && b < end) {
        blk_transfer *w;
        if (blk_cache_find(cache, b)) {
            st = copy_from_cache(cache, b, (uint8_t *)dst + (b - block) * BLK_TRANSFER_SIZE);
            b++;
        } else if ((w = window_find(cache, b))) {
            copy_from_window(cache, w, &b, end, dst, block);
        } else if (b + 1 == end || blk_cache_find(cache, b + 1)) {
            /* A lone missing block needs no transfer or staging slot (of which there are
             * few), so any number of such reads run at once: a zero-copy reader's goes
             * straight to its memory, anyone else's through a cache buffer (where it stays:
             * small random reads hit it again). */
            if (zero_copy) {
                st = read_lone_direct(cache, &b, dst_offset + (b - block) * BLK_TRANSFER_SIZE);
            } else {
                st = copy_from_cache(cache, b, (uint8_t *)dst + (b - block) * BLK_TRANSFER_SIZE);
                b++;
            }
        } else {
            st = read_direct(cache, &b, end, dst, block, zero_copy, dst_offset);
        }
    }
    if (st != BLK_OK)
        return st;
    bool sequential;
    blk_stream *s = stream_for(cache, block, &sequential);
    s->next_block = end;
    s->last_use = ++cache->stream_clock;
    /* A zero-copy reader's requests already land where it wants them; a window would cost
     * it a copy out of staging. */
    if (sequential && cache->read_ahead_blocks && !zero_copy)
        read_ahead(cache, s, end);
    return BLK_OK;
}

/* A bypass write's response came (root, for a write behind): account for it, free its
 * transfer and wake whoever waits for bypass writes to drain. */
static void data_write_done(blk_cache *cache, blk_transfer *t, blk_status st)
{
    if (st == BLK_OK) {
        blk_cache_count_write(cache, t->block, t->count);
        cache->stats.bypass_write_blocks += t->count;
        if (t->epoch < cache->data_unflushed_epoch)
            cache->data_unflushed_epoch = t->epoch;
    }
    blk_transfer_release(cache, t);
    fp_wake_all(&cache->data_write_waiters, NULL);
}

/* A write behind that failed keeps its data: as dirty cache buffers where clean ones are
 * to spare (write-back tries again, readers see it), the rest in its staging slot, the transfer
 * staying in the table as failed, for blk_write_settle to send again. The kept buffers may
 * go out in an earlier epoch than the write's own: it depends on none (see write_run). */
static void write_behind_done(blk_io *io)
{
    blk_transfer *t = AF_CONTAINER_OF(io, blk_transfer, io);
    blk_cache *cache = t->cache;
    if (io->status != BLK_OK) {
        uint8_t *stage = cache_staging_ptr(cache, t->staging_slot);
        uint32_t kept = 0;
        while (kept < t->count &&
               blk_cache_adopt_dirty(cache, t->block + kept, stage + (uint64_t)kept * BLK_TRANSFER_SIZE, t->epoch))
            kept++;
        if (kept < t->count) {
            af_memmove(stage, stage + (uint64_t)kept * BLK_TRANSFER_SIZE, (uint64_t)(t->count - kept) * BLK_TRANSFER_SIZE);
            t->block += kept;
            t->count -= kept;
            t->failed = true;
            fp_wake_all(&t->waiters, NULL);
            fp_wake_all(&cache->data_write_waiters, NULL);
            return;
        }
    }
    data_write_done(cache, t, io->status);
}

blk_status blk_write_settle(blk_cache *cache, blk_transfer *t)
{
    if (!t->failed || t->retrying) {
        fp_wait(cache->pool, &t->waiters);
        return BLK_OK;
    }
    t->retrying = true;
    blk_status st = blk_client_submit(cache->client, BLK_REQ_WRITE, t->block, t->count,
                                      cache_staging_offset(cache, t->staging_slot), &t->io);
    if (st == BLK_OK)
        st = blk_io_wait(cache->client, &t->io);
    t->retrying = false;
    if (st == BLK_OK) {
        t->failed = false;
        data_write_done(cache, t, st);
    } else {
        fp_wake_all(&t->waiters, NULL);
    }
    return st;
}

bool blk_write_behind_give_up_one(blk_cache *cache)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_WRITE && t->failed && !t->retrying) {
            blk_status st = blk_write_settle(cache, t);
            if (st != BLK_OK) {
                if (cache->behind_error == BLK_OK)
                    cache->behind_error = st;
                data_write_done(cache, t, st);
            }
            return true;
        }
    }
    return false;
}

/* With t acquired: make it the bypass write, in the current epoch, of the run of absent
 * blocks from b (at most max, before `end` and any later write in flight). 0 if b itself
 * is cached or has a write in flight: t is released, and *st is BLK_OK (look again) or the
 * error of settling that write. An earlier write of a block must land first (two in
 * flight could land in either order); a block cached meanwhile takes the write itself. */
static uint32_t write_claim(blk_cache *cache, blk_transfer *t, uint64_t b, uint64_t end, uint32_t max, blk_status *st)
{
    blk_transfer *w = blk_transfer_find_write(cache, b);
    if (w || blk_cache_find(cache, b)) {
        blk_transfer_release(cache, t);
        *st = w ? blk_write_settle(cache, w) : BLK_OK;
        return 0;
    }
    uint64_t limit = direct_limit(cache, b, af_min_u64(end, b + max), false);
    uint32_t n = 1;
    while (b + n < limit && !blk_cache_find(cache, b + n))
        n++;
    t->kind = BLK_XFER_WRITE;
    t->block = b;
    t->count = n;
    t->epoch = cache->epoch;
    cache->epoch_dirtied = true;
    blk_transfer_note_write(cache, b, n);
    return n;
}

static blk_status write_not_sent(blk_cache *cache, blk_transfer *t, blk_status st)
{
    blk_transfer_release(cache, t);
    fp_wake_all(&cache->data_write_waiters, NULL);
    return st;
}

/* Blocks: copy the run of absent blocks starting at *block into a staging slot and send
 * it to the device, in the current epoch, without waiting for it (a write behind). */
static blk_status write_behind(blk_cache *cache, uint64_t *block, uint64_t end, const uint8_t *src, uint64_t src_block)
{
    blk_transfer *t = blk_transfer_acquire(cache);
    t->staging_slot = blk_staging_acquire(cache);
    uint64_t b = *block;
    blk_status st;
    uint32_t n = write_claim(cache, t, b, end, cache->staging_slot_blocks, &st);
    if (n == 0)
        return st;
    af_memcpy(cache_staging_ptr(cache, t->staging_slot), src + (b - src_block) * BLK_TRANSFER_SIZE,
              (uint64_t)n * BLK_TRANSFER_SIZE);
    st = blk_client_submit(cache->client, BLK_REQ_WRITE, b, n, cache_staging_offset(cache, t->staging_slot), &t->io);
    if (st != BLK_OK)
        return write_not_sent(cache, t, st);
    *block = b + n;
    t->behind = true;
    t->io.on_done = write_behind_done;
    cache->stats.write_behind_blocks += n;
    return BLK_OK;
}

/* Blocks: send the run of absent blocks starting at *block straight from the caller's
 * memory in the data region, in the current epoch, and add it to the batch (waiting for
 * the batch first when it is full). */
static blk_status write_zero_copy(blk_cache *cache, uint64_t *block, uint64_t end, uint64_t src_block,
                                  uint64_t src_offset, blk_write_batch *batch)
{
    if (batch->count == BLK_WRITE_BATCH_MAX) {
        blk_status st = blk_write_batch_wait(cache, batch);
        if (st != BLK_OK)
            return st;
    }
    blk_transfer *t = blk_transfer_acquire(cache);
    uint64_t b = *block;
    blk_status st;
    uint32_t n = write_claim(cache, t, b, end, UINT16_MAX, &st);
    if (n == 0)
        return st;
    st = blk_client_submit(cache->client, BLK_REQ_WRITE, b, n, src_offset + (b - src_block) * BLK_TRANSFER_SIZE,
                           &t->io);
    if (st != BLK_OK)
        return write_not_sent(cache, t, st);
    *block = b + n;
    batch->parts[batch->count++] = t;
    return BLK_OK;
}

blk_status blk_write_batch_wait(blk_cache *cache, blk_write_batch *batch)
{
    for (uint32_t i = 0; i < batch->count; i++) {
        blk_transfer *t = batch->parts[i];
        blk_status st = blk_io_wait(cache->client, &t->io);
        data_write_done(cache, t, st);
        if (st != BLK_OK && batch->status == BLK_OK)
            batch->status = st;
    }
    batch->count = 0;
    return batch->status;
}

blk_status blk_cache_write_run(blk_cache *cache, uint64_t block, uint32_t count, const void *src)
{
    blk_write_batch batch;
    blk_write_batch_init(&batch);
    blk_status st = blk_cache_write_run_start(cache, block, count, src, &batch);
    blk_status waited = blk_write_batch_wait(cache, &batch);
    return st != BLK_OK ? st : waited;
}

blk_status blk_cache_write_run_start(blk_cache *cache, uint64_t block, uint32_t count, const void *src,
                                     blk_write_batch *batch)
{
    blk_status st = range_check(cache, block, count);
    if (st != BLK_OK || count == 0)
        return st;
    if (cache->client->read_only)
        return BLK_ERR_READ_ONLY;
    uint64_t src_offset = 0;
    bool zero_copy = data_region_offset(cache, src, (uint64_t)count * BLK_TRANSFER_SIZE, &src_offset);
    uint64_t end = block + count;
    uint64_t b = block;
    const uint8_t *in = src;
    /* A small write goes into cache buffers and returns: write-back later sends many such
     * blocks at once (merged where contiguous). */
    bool through_cache = count <= BLK_CACHE_SMALL_WRITE_BLOCKS;
    while (st == BLK_OK && b < end) {
        if (through_cache || blk_cache_find(cache, b)) {
            blk_buf *buf;
            st = blk_cache_get(cache, b, BLK_GET_OVERWRITE, &buf);
            if (st != BLK_OK)
                break;
            st = blk_cache_prepare_write(cache, buf);
            if (st != BLK_OK) {
                blk_cache_release(cache, buf);
                break;
            }
            af_memcpy(buf->data, in + (b - block) * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE);
            blk_cache_mark_dirty(cache, buf);
            buf->whole_data = true;
            blk_cache_release(cache, buf);
            b++;
        } else {
            st = zero_copy ? write_zero_copy(cache, &b, end, block, src_offset, batch)
                           : write_behind(cache, &b, end, in, block);
        }
    }
    return st;
}
