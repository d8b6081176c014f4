/* The cache's multi-block transfers: the transfer table and the staging slots.
 *
 * Every multi-block device transfer the cache makes (write-back run, bypass read or write,
 * read-ahead window) has an entry in the table while it is in flight, so that a cache miss
 * can wait for a bypass write of its block, and a read-ahead window can be dropped when a
 * write to its blocks overlaps it in time. Staging slots are contiguous areas of the data
 * region for transfers whose memory is not already there.
 */
#include "blk/cache_internal.h"

blk_transfer *blk_transfer_try_acquire(blk_cache *cache)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_FREE) {
            t->staging_slot = BLK_NONE;
            t->shadow = BLK_NONE;
            t->users = 0;
            t->stale = false;
            t->behind = false;
            t->failed = false;
            t->retrying = false;
            t->io.on_done = NULL;
            t->io.done = false;
            fp_queue_init(&t->io.waiters);
            t->sequence = ++cache->transfer_sequence;
            t->kind = BLK_XFER_READ;
            return t;
        }
    }
    return NULL;
}

blk_transfer *blk_transfer_acquire(blk_cache *cache)
{
    blk_transfer *t;
    while (!(t = blk_transfer_try_acquire(cache))) {
        blk_transfer_reap_windows(cache);
        if ((t = blk_transfer_try_acquire(cache)))
            break;
        fp_wait(cache->pool, &cache->transfer_waiters);
    }
    return t;
}

void blk_transfer_release(blk_cache *cache, blk_transfer *t)
{
    if (t->staging_slot != BLK_NONE) {
        blk_staging_release(cache, t->staging_slot);
        t->staging_slot = BLK_NONE;
    }
    t->kind = BLK_XFER_FREE;
    fp_wake_all(&t->waiters, NULL);
    fp_wake_one(&cache->transfer_waiters, NULL);
}

static bool window_reapable(const blk_transfer *t)
{
    return t->kind == BLK_XFER_READ_AHEAD && t->users == 0 && t->io.done &&
           (t->stale || t->io.status != BLK_OK);
}

void blk_transfer_reap_windows(blk_cache *cache)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++)
        if (window_reapable(&cache->transfers[i]))
            blk_transfer_release(cache, &cache->transfers[i]);
}

bool blk_staging_try_acquire(blk_cache *cache, uint32_t *slot)
{
    if (cache->staging_free == 0)
        return false;
    uint32_t i = 0;
    while (!(cache->staging_free & (1u << i)))
        i++;
    cache->staging_free &= ~(1u << i);
    *slot = i;
    return true;
}

/* The oldest finished read-ahead window nobody is reading gives its slot up first: a
 * window is a guess, a transfer that wants a slot is real work. */
static bool blk_staging_steal_window(blk_cache *cache)
{
    blk_transfer *oldest = NULL;
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_READ_AHEAD && t->users == 0 && t->io.done &&
            (!oldest || t->sequence < oldest->sequence))
            oldest = t;
    }
    if (!oldest)
        return false;
    blk_transfer_release(cache, oldest);
    return true;
}

/* A window whose read is still in flight, to wait for when every slot is taken: its
 * completion wakes nobody else, and afterwards its slot can be stolen. */
static blk_transfer *window_in_flight(blk_cache *cache)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_READ_AHEAD && !t->io.done)
            return t;
    }
    return NULL;
}

uint32_t blk_staging_acquire(blk_cache *cache)
{
    uint32_t slot;
    while (!blk_staging_try_acquire(cache, &slot)) {
        if (blk_staging_steal_window(cache))
            continue;
        blk_transfer *w = window_in_flight(cache);
        if (w) {
            w->users++;
            blk_io_wait(cache->client, &w->io);
            w->users--;
            continue;
        }
        if (blk_write_behind_give_up_one(cache))
            continue;
        fp_wait(cache->pool, &cache->staging_waiters);
    }
    return slot;
}

void blk_staging_release(blk_cache *cache, uint32_t slot)
{
    cache->staging_free |= 1u << slot;
    fp_wake_one(&cache->staging_waiters, NULL);
}

blk_transfer *blk_transfer_find_write(blk_cache *cache, uint64_t block)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_WRITE && ranges_overlap(t->block, t->count, block, 1))
            return t;
    }
    return NULL;
}

bool blk_transfer_write_overlaps(const blk_cache *cache, uint64_t block, uint32_t count)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        const blk_transfer *t = &cache->transfers[i];
        if ((t->kind == BLK_XFER_WRITE || t->kind == BLK_XFER_WRITEBACK) &&
            ranges_overlap(t->block, t->count, block, count))
            return true;
    }
    return false;
}

void blk_transfer_note_write(blk_cache *cache, uint64_t block, uint32_t count)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_READ_AHEAD && ranges_overlap(t->block, t->count, block, count))
            t->stale = true;
    }
    blk_transfer_reap_windows(cache);
}
