/* Private helpers shared by the buffer cache's files (not part of the blk API). */
#ifndef ASYNCFAT_BLK_CACHE_INTERNAL_H
#define ASYNCFAT_BLK_CACHE_INTERNAL_H

#include "blk/blk.h"

static inline uint32_t cache_buf_index(const blk_cache *cache, const blk_buf *buf)
{
    return (uint32_t)(buf - cache->bufs);
}

static inline uint64_t cache_buf_offset(const blk_cache *cache, const blk_buf *buf)
{
    return cache->buffers_offset + (uint64_t)cache_buf_index(cache, buf) * BLK_TRANSFER_SIZE;
}

static inline uint8_t *cache_staging_ptr(blk_cache *cache, uint32_t slot)
{
    return cache->client->data_region + cache->staging_offset +
           (uint64_t)slot * cache->staging_slot_blocks * BLK_TRANSFER_SIZE;
}

static inline uint64_t cache_staging_offset(const blk_cache *cache, uint32_t slot)
{
    return cache->staging_offset + (uint64_t)slot * cache->staging_slot_blocks * BLK_TRANSFER_SIZE;
}

static inline bool ranges_overlap(uint64_t a, uint32_t an, uint64_t b, uint32_t bn)
{
    return a < b + bn && b < a + an;
}

/* The dirty list: mark_dirty appends (epochs only grow, so the list stays sorted by
 * epoch); a failed write puts its buffers back at the front, as the oldest. */
static inline void dirty_link(blk_cache *cache, blk_buf *b, bool front)
{
    uint32_t i = cache_buf_index(cache, b);
    if (front) {
        b->dirty_prev = BLK_NONE;
        b->dirty_next = cache->dirty_head;
        if (cache->dirty_head != BLK_NONE)
            cache->bufs[cache->dirty_head].dirty_prev = i;
        else
            cache->dirty_tail = i;
        cache->dirty_head = i;
    } else {
        b->dirty_next = BLK_NONE;
        b->dirty_prev = cache->dirty_tail;
        if (cache->dirty_tail != BLK_NONE)
            cache->bufs[cache->dirty_tail].dirty_next = i;
        else
            cache->dirty_head = i;
        cache->dirty_tail = i;
    }
}

static inline void dirty_unlink(blk_cache *cache, blk_buf *b)
{
    if (b->dirty_prev != BLK_NONE)
        cache->bufs[b->dirty_prev].dirty_next = b->dirty_next;
    else
        cache->dirty_head = b->dirty_next;
    if (b->dirty_next != BLK_NONE)
        cache->bufs[b->dirty_next].dirty_prev = b->dirty_prev;
    else
        cache->dirty_tail = b->dirty_prev;
}

/* Put `copy` where `b` stands in the dirty list (b leaves it). */
static inline void dirty_replace(blk_cache *cache, blk_buf *b, blk_buf *copy)
{
    uint32_t i = cache_buf_index(cache, copy);
    copy->dirty_prev = b->dirty_prev;
    copy->dirty_next = b->dirty_next;
    if (copy->dirty_prev != BLK_NONE)
        cache->bufs[copy->dirty_prev].dirty_next = i;
    else
        cache->dirty_head = i;
    if (copy->dirty_next != BLK_NONE)
        cache->bufs[copy->dirty_next].dirty_prev = i;
    else
        cache->dirty_tail = i;
}

/* cache.c */
/* Changing the buffer now keeps the epoch rule (it is clean, or dirty in the current epoch)
 * and leaves the device's read of it alone (no write-back of it in place is in flight). */
static inline bool blk_cache_write_ready(const blk_cache *cache, const blk_buf *buf)
{
    return !buf->in_place && (!buf->dirty || buf->epoch == cache->epoch);
}
blk_buf *blk_cache_find(const blk_cache *cache, uint64_t block);
/* Write-back made b clean: evict it before CLOCK's candidates unless it is used first. */
void blk_cache_note_cleaned(blk_cache *cache, blk_buf *b);
/* Never blocks: put `data` in a clean buffer as the dirty contents of `block` (absent from
 * the cache), to be written back no later than `epoch`. False if no buffer was free. */
bool blk_cache_adopt_dirty(blk_cache *cache, uint64_t block, const uint8_t *data, uint32_t epoch);
/* A shadow's write-back completed: the buffer goes back to the free list. */
void blk_cache_shadow_written(blk_cache *cache, blk_buf *shadow);
void blk_cache_count_write(blk_cache *cache, uint64_t block, uint32_t count);

/* transfer.c: the transfer table and the staging slots. */
blk_transfer *blk_transfer_acquire(blk_cache *cache);                 /* blocks */
blk_transfer *blk_transfer_try_acquire(blk_cache *cache);
void blk_transfer_release(blk_cache *cache, blk_transfer *t);
uint32_t blk_staging_acquire(blk_cache *cache);                        /* blocks */
bool blk_staging_try_acquire(blk_cache *cache, uint32_t *slot);
void blk_staging_release(blk_cache *cache, uint32_t slot);
/* A bypass write in flight that covers `block`, or NULL. */
blk_transfer *blk_transfer_find_write(blk_cache *cache, uint64_t block);
bool blk_transfer_write_overlaps(const blk_cache *cache, uint64_t block, uint32_t count);
/* A device write of [block, +count) is being issued: overlapping read-ahead goes stale. */
void blk_transfer_note_write(blk_cache *cache, uint64_t block, uint32_t count);
/* Release windows that nobody uses any more (stale or failed, read finished). */
void blk_transfer_reap_windows(blk_cache *cache);

/* run.c: bypass writes. */
/* Blocks: wait for the bypass write t. A failed write behind is sent again by the task
 * that settles it. BLK_OK: look again (t may be gone, or reused); else the retry's error,
 * and t stays failed. */
blk_status blk_write_settle(blk_cache *cache, blk_transfer *t);
/* Blocks: a failed write behind (holding a staging slot) is sent once more and released
 * whatever happens, its data lost if that fails too (the next flush reports it). False if
 * there was none. For when every slot is taken: a failing device must not hang us. */
bool blk_write_behind_give_up_one(blk_cache *cache);

#endif
