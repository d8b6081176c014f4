/* Write-back: merged runs of dirty buffers, flush epochs, flush.
 *
 * Every write-back happens under cache->writeback_lock and waits for its writes before
 * the lock is released, so under the lock no cache write is in flight and the epoch rule
 * (blk.h) reduces to: before writing anything of epoch E, wait for bypass writes of earlier
 * epochs (they run outside the lock), and if something of an earlier epoch was written
 * since the last FLUSH, send a FLUSH first. A run is copied into a staging slot when its
 * write is issued, so tasks may keep changing its buffers meanwhile, except blocks that
 * write_run filled whole lying one after another in the data region (or a shadow): they go
 * out from their own buffers, which blk_cache_prepare_write keeps unchanged until the write
 * completes. On the NVMe-like model, random 4 KiB writes spent a tenth of their CPU time on
 * that copy.
 */
#include "blk/cache_internal.h"

static bool writeback_candidate(const blk_buf *b, uint32_t epoch)
{
    return b && b->dirty && !b->writing && b->epoch == epoch;
}

/* The oldest dirty buffer not being written: near the head of the dirty list (the only
 * ones skipped were dirtied again while their write-back is in flight, in this batch). */
static blk_buf *oldest_dirty(blk_cache *cache)
{
    for (uint32_t i = cache->dirty_head; i != BLK_NONE; i = cache->bufs[i].dirty_next)
        if (!cache->bufs[i].writing)
            return &cache->bufs[i];
    return NULL;
}

static bool oldest_dirty_epoch(blk_cache *cache, uint32_t *epoch)
{
    blk_buf *b = oldest_dirty(cache);
    if (b)
        *epoch = b->epoch;
    return b != NULL;
}

/* A bypass write of an epoch before `epoch` not yet done, or NULL. */
static blk_transfer *data_write_before(blk_cache *cache, uint32_t epoch)
{
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        blk_transfer *t = &cache->transfers[i];
        if (t->kind == BLK_XFER_WRITE && t->epoch < epoch)
            return t;
    }
    return NULL;
}

/* Blocks until every bypass write of an epoch before `epoch` is on the device. A failed
 * write behind is sent again; if that fails, its error (later epochs must not go out). */
static blk_status wait_data_writes_before(blk_cache *cache, uint32_t epoch)
{
    blk_transfer *t;
    while ((t = data_write_before(cache, epoch))) {
        if (t->failed) {
            blk_status st = blk_write_settle(cache, t);
            if (st != BLK_OK)
                return st;
        } else {
            fp_wait(cache->pool, &cache->data_write_waiters);
        }
    }
    return BLK_OK;
}

/* Under the lock (no write-back in flight). */
static blk_status send_flush(blk_cache *cache)
{
    /* A bypass write that completes while the FLUSH is in flight may not be covered. */
    uint32_t covered = cache->data_unflushed_epoch;
    cache->data_unflushed_epoch = UINT32_MAX;
    cache->stats.flushes++;
    blk_status st = blk_client_flush(cache->client);
    if (st == BLK_OK)
        cache->written_unflushed_epoch = 0;
    else if (covered < cache->data_unflushed_epoch)
        cache->data_unflushed_epoch = covered;
    return st;
}

/* Under the lock: before writing data of `epoch`, make earlier epochs' writes durable. */
static blk_status flush_if_needed(blk_cache *cache, uint32_t epoch)
{
    blk_status st = wait_data_writes_before(cache, epoch);
    if (st != BLK_OK)
        return st;
    bool written = cache->written_unflushed_epoch != 0 && cache->written_unflushed_epoch < epoch;
    if (!written && cache->data_unflushed_epoch >= epoch)
        return BLK_OK;
    return send_flush(cache);
}

/* A run of same-epoch dirty blocks to write in one request: head holds its first block. */
typedef struct wb_run {
    blk_buf *head;
    uint32_t n;
    /* The device may read the buffers themselves while they are written: nothing is likely
     * to change them meanwhile (blk.h: a shadow, or blocks write_run filled whole), and they
     * lie one after another in the data region, as the free list and CLOCK hand buffers out
     * to a writer going forward, so that one request covers them. */
    bool in_place;
} wb_run;

/* The run around b, at most a staging slot's worth. A shadow is unhashed: it goes out
 * alone. */
static wb_run run_extent(blk_cache *cache, blk_buf *b, uint32_t epoch)
{
    wb_run r = {b, 1, true};
    if (b->shadow)
        return r;
    uint32_t max = cache->staging_slot_blocks;
    blk_buf *before;
    while (r.head->block > 0 && b->block - (r.head->block - 1) < max &&
           writeback_candidate(before = blk_cache_find(cache, r.head->block - 1), epoch))
        r.head = before;
    r.in_place = r.head->whole_data;
    blk_buf *x;
    while (r.n < max && writeback_candidate(x = blk_cache_find(cache, r.head->block + r.n), epoch)) {
        r.in_place = r.in_place && x->whole_data &&
                     cache_buf_index(cache, x) == cache_buf_index(cache, r.head) + r.n;
        r.n++;
    }
    return r;
}

/* Under the lock, with t acquired: the run of the oldest dirty buffer if that is of
 * `epoch`, with a staging slot in t unless the run goes in place; n 0 if there is none, or
 * (may_wait false) no staging slot is free. Acquiring one may block, and the oldest may
 * change meanwhile. */
static wb_run run_next(blk_cache *cache, blk_transfer *t, uint32_t epoch, bool may_wait)
{
    static const wb_run none = {NULL, 0, false};
    for (;;) {
        blk_buf *b = oldest_dirty(cache);
        if (!b || b->epoch != epoch)
            return none;
        wb_run r = run_extent(cache, b, epoch);
        if (t->staging_slot != BLK_NONE || r.in_place)
            return r;
        if (!may_wait)
            return blk_staging_try_acquire(cache, &t->staging_slot) ? r : none;
        t->staging_slot = blk_staging_acquire(cache);
    }
}

/* Mark the run's buffers as being written and send it: from the buffers themselves (t has
 * no staging slot), else copied into t's staging slot. Does not block before the copy. */
static void run_issue(blk_cache *cache, blk_transfer *t, const wb_run *r)
{
    bool in_place = t->staging_slot == BLK_NONE;
    uint64_t first = r->head->block;
    uint8_t *stage = in_place ? NULL : cache_staging_ptr(cache, t->staging_slot);
    for (uint32_t k = 0; k < r->n; k++) {
        blk_buf *x = in_place || k == 0 ? r->head + k : blk_cache_find(cache, first + k);
        if (!in_place)
            af_memcpy(stage + (uint64_t)k * BLK_TRANSFER_SIZE, x->data, BLK_TRANSFER_SIZE);
        x->dirty = false;
        x->writing = true;
        x->in_place = in_place;
        dirty_unlink(cache, x);
        cache->dirty_count--;
    }
    t->shadow = r->head->shadow ? cache_buf_index(cache, r->head) : BLK_NONE;
    t->kind = BLK_XFER_WRITEBACK;
    t->block = first;
    t->count = r->n;
    blk_transfer_note_write(cache, first, r->n);
    if (r->n > 1)
        cache->stats.merged_requests++;
    if (in_place)
        cache->stats.in_place_writes++;
    uint64_t offset = in_place ? cache_buf_offset(cache, r->head) : cache_staging_offset(cache, t->staging_slot);
    blk_status st = blk_client_submit(cache->client, BLK_REQ_WRITE, first, r->n, offset, &t->io);
    if (st != BLK_OK) {
        t->io.status = st;
        t->io.done = true;
    }
}

static void run_complete(blk_cache *cache, blk_transfer *t, uint32_t epoch, blk_status st)
{
    for (uint32_t k = 0; k < t->count; k++) {
        blk_buf *x = t->shadow != BLK_NONE ? &cache->bufs[t->shadow] : blk_cache_find(cache, t->block + k);
        x->writing = false;
        x->in_place = false;
        if (st == BLK_OK) {
            if (!x->dirty && !x->shadow)
                blk_cache_note_cleaned(cache, x);
        } else {
            /* Not on the device: dirty again, and no later than the epoch it was written in. */
            if (!x->dirty) {
                x->dirty = true;
                cache->dirty_count++;
            } else {
                dirty_unlink(cache, x);
            }
            dirty_link(cache, x, true);
            x->epoch = epoch;
        }
    }
    if (st == BLK_OK) {
        blk_cache_count_write(cache, t->block, t->count);
        if (cache->written_unflushed_epoch < epoch)
            cache->written_unflushed_epoch = epoch;
        if (t->shadow != BLK_NONE)
            blk_cache_shadow_written(cache, &cache->bufs[t->shadow]);
    }
    t->shadow = BLK_NONE;
    cache->sweep_futile = false;
    fp_wake_all(&cache->buffer_waiters, NULL);
}

/* Under the lock, with n > 0 runs of `epoch` issued and the next epoch's buffers ready:
 * queue BARRIER, FLUSH, BARRIER. The device then finishes the epoch's writes, makes them
 * durable, and only then starts what follows (the sDDF barrier rule), so the next epoch
 * can be issued at once instead of a round trip later. False if they could not be sent. */
static bool fence_issue(blk_cache *cache, blk_io *fence)
{
    static const blk_request_code codes[3] = {BLK_REQ_BARRIER, BLK_REQ_FLUSH, BLK_REQ_BARRIER};
    for (uint32_t i = 0; i < 3; i++) {
        if (blk_client_submit(cache->client, codes[i], 0, 0, 0, &fence[i]) != BLK_OK) {
            for (uint32_t k = i; k < 3; k++)
                fence[k] = (blk_io){.status = BLK_ERR_NO_DEVICE, .done = true};
            return false;
        }
    }
    cache->stats.flushes++;
    return true;
}

#define FENCES_MAX (BLK_CACHE_MAX_TRANSFERS / 2u)

/* Under the lock: write back from the oldest epoch on (epochs before `limit` only), as many
 * epochs as the staging slots take at once, fenced from each other (fence_issue), and wait
 * for all of it: a run of small epochs (a file closed after each) costs one round trip, not
 * two per epoch. A write that fails cannot stop the epochs queued behind it; its buffers
 * are dirty again, for a later round. */
static blk_status writeback_round(blk_cache *cache, uint32_t limit)
{
    blk_buf *b = oldest_dirty(cache);
    if (!b || b->epoch >= limit)
        return BLK_OK;
    uint32_t epoch = b->epoch;
    blk_status st = flush_if_needed(cache, epoch);
    if (st != BLK_OK)
        return st;
    blk_transfer *runs[BLK_CACHE_MAX_TRANSFERS];
    blk_io fences[FENCES_MAX][3];
    uint32_t n = 0, f = 0;
    for (;;) {
        while ((b = oldest_dirty(cache)) && b->epoch == epoch) {
            blk_transfer *t = n == 0 ? blk_transfer_acquire(cache) : blk_transfer_try_acquire(cache);
            if (!t)
                break;
            t->kind = BLK_XFER_WRITEBACK;
            t->count = 0;
            t->epoch = epoch;
            wb_run r = run_next(cache, t, epoch, n == 0);
            if (r.n == 0) {
                blk_transfer_release(cache, t);
                break;
            }
            run_issue(cache, t, &r);
            runs[n++] = t;
        }
        b = oldest_dirty(cache);
        /* Go on only with this epoch all sent, and no bypass write of it still in flight:
         * those are not ordered by the fence (they may be queued after it). */
        if (n == 0 || !b || b->epoch == epoch || b->epoch >= limit || f == FENCES_MAX ||
            data_write_before(cache, b->epoch))
            break;
        bool sent = fence_issue(cache, fences[f++]);
        if (!sent)
            break;
        epoch = b->epoch;
    }
    for (uint32_t k = 0; k < f; k++)
        for (uint32_t i = 0; i < 3; i++) {
            blk_status r = blk_io_wait(cache->client, &fences[k][i]);
            if (r != BLK_OK && st == BLK_OK)
                st = r;
        }
    for (uint32_t k = 0; k < n; k++) {
        blk_status r = blk_io_wait(cache->client, &runs[k]->io);
        run_complete(cache, runs[k], runs[k]->epoch, r);
        blk_transfer_release(cache, runs[k]);
        if (r != BLK_OK && st == BLK_OK)
            st = r;
    }
    cache->writeback_batches++;
    return st;
}

/* Under the lock: write back until no dirty buffer of an epoch before `epoch` is left. */
static blk_status writeback_before_epoch(blk_cache *cache, uint32_t epoch)
{
    uint32_t oldest;
    while (oldest_dirty_epoch(cache, &oldest) && oldest < epoch) {
        blk_status st = writeback_round(cache, epoch);
        if (st != BLK_OK)
            return st;
    }
    return BLK_OK;
}

blk_status blk_cache_writeback_some(blk_cache *cache)
{
    uint64_t seen = cache->writeback_batches;
    fp_mutex_lock(cache->pool, &cache->writeback_lock);
    uint32_t oldest;
    blk_status st = BLK_OK;
    if (cache->writeback_batches == seen && oldest_dirty_epoch(cache, &oldest))
        st = writeback_round(cache, UINT32_MAX);
    fp_mutex_unlock(cache->pool, &cache->writeback_lock);
    return st;
}

blk_status blk_cache_flush(blk_cache *cache)
{
    fp_mutex_lock(cache->pool, &cache->writeback_lock);
    /* Buffers dirtied while this flush runs go to a later epoch and are not waited for. */
    cache->epoch_dirtied = true;
    blk_cache_order_point(cache);
    uint32_t upto = cache->epoch;
    blk_status st = writeback_before_epoch(cache, upto);
    if (st == BLK_OK)
        st = wait_data_writes_before(cache, upto);
    if (st == BLK_OK && !cache->client->read_only)
        st = send_flush(cache);
    if (st == BLK_OK && cache->behind_error != BLK_OK) {
        st = cache->behind_error;
        cache->behind_error = BLK_OK;
    }
    fp_mutex_unlock(cache->pool, &cache->writeback_lock);
    return st;
}
