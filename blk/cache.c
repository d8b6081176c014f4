/* Buffer cache: lookup (hash), get / release / mark dirty, CLOCK eviction, byte helpers. */
#include "blk/cache_internal.h"

/* Fibonacci hashing: the top bits of block * 2^64/phi spread consecutive blocks apart. */
static uint32_t hash_of(const blk_cache *cache, uint64_t block)
{
    return (uint32_t)((block * 0x9E3779B97F4A7C15ull) >> cache->hash_shift) & cache->hash_mask;
}

blk_buf *blk_cache_find(const blk_cache *cache, uint64_t block)
{
    for (uint32_t i = cache->hash_heads[hash_of(cache, block)]; i != BLK_NONE; i = cache->bufs[i].hash_next)
        if (cache->bufs[i].block == block)
            return &cache->bufs[i];
    return NULL;
}

static void hash_insert(blk_cache *cache, blk_buf *buf)
{
    uint32_t *head = &cache->hash_heads[hash_of(cache, buf->block)];
    buf->hash_next = *head;
    *head = cache_buf_index(cache, buf);
}

static void hash_remove(blk_cache *cache, blk_buf *buf)
{
    uint32_t target = cache_buf_index(cache, buf);
    uint32_t *link = &cache->hash_heads[hash_of(cache, buf->block)];
    while (*link != target)
        link = &cache->bufs[*link].hash_next;
    *link = buf->hash_next;
    buf->hash_next = BLK_NONE;
}

static void free_push(blk_cache *cache, blk_buf *buf)
{
    buf->state = BLK_BUF_FREE;
    buf->free_next = cache->free_head;
    cache->free_head = cache_buf_index(cache, buf);
    fp_wake_all(&cache->buffer_waiters, NULL);
}

static blk_buf *free_pop(blk_cache *cache)
{
    if (cache->free_head == BLK_NONE)
        return NULL;
    blk_buf *b = &cache->bufs[cache->free_head];
    cache->free_head = b->free_next;
    return b;
}

void blk_cache_count_write(blk_cache *cache, uint64_t block, uint32_t count)
{
    cache->stats.device_writes++;
    for (uint64_t b = block; b < block + count && b < cache->wear_count; b++)
        cache->wear[b]++;
}

blk_status blk_cache_init(blk_cache *cache, const blk_cache_config *cfg)
{
    blk_client *c = cfg->client;
    if (!c || !cfg->bufs || cfg->buffer_count == 0 || cfg->buffer_count >= BLK_NONE || !cfg->hash_heads ||
        !af_is_pow2(cfg->hash_size) || cfg->staging_slots == 0 ||
        cfg->staging_slots > BLK_CACHE_MAX_TRANSFERS / 2 || cfg->staging_slot_blocks == 0 ||
        cfg->staging_slot_blocks > UINT16_MAX || (cfg->wear_count && !cfg->wear) ||
        cfg->buffers_offset % BLK_TRANSFER_SIZE != 0)
        return BLK_ERR_INVALID;
    uint64_t buffer_bytes = (uint64_t)cfg->buffer_count * BLK_TRANSFER_SIZE;
    uint64_t staging_bytes = (uint64_t)cfg->staging_slots * cfg->staging_slot_blocks * BLK_TRANSFER_SIZE;
    if (cfg->buffers_offset > c->data_region_size || buffer_bytes > c->data_region_size - cfg->buffers_offset ||
        cfg->staging_offset > c->data_region_size || staging_bytes > c->data_region_size - cfg->staging_offset)
        return BLK_ERR_RANGE;
    if (cfg->staging_offset < cfg->buffers_offset + buffer_bytes &&
        cfg->buffers_offset < cfg->staging_offset + staging_bytes)
        return BLK_ERR_INVALID;

    af_memset(cache, 0, sizeof(*cache));
    cache->client = c;
    cache->pool = c->pool;
    cache->bufs = cfg->bufs;
    cache->buffer_count = cfg->buffer_count;
    cache->buffers_offset = cfg->buffers_offset;
    cache->hash_heads = cfg->hash_heads;
    cache->hash_mask = cfg->hash_size - 1;
    uint32_t bits = 0;
    while ((1u << bits) < cfg->hash_size)
        bits++;
    cache->hash_shift = bits ? 64 - bits : 0;
    cache->staging_offset = cfg->staging_offset;
    cache->staging_slots = cfg->staging_slots;
    cache->staging_slot_blocks = cfg->staging_slot_blocks;
    cache->staging_free = (uint32_t)((1ull << cfg->staging_slots) - 1);
    cache->wear = cfg->wear;
    cache->wear_count = cfg->wear_count;
    cache->read_ahead_blocks = cfg->read_ahead_blocks;
    cache->epoch = 1;
    cache->free_head = BLK_NONE;
    cache->dirty_head = BLK_NONE;
    cache->dirty_tail = BLK_NONE;
    fp_queue_init(&cache->buffer_waiters);
    fp_queue_init(&cache->staging_waiters);
    fp_queue_init(&cache->transfer_waiters);
    fp_queue_init(&cache->data_write_waiters);
    cache->data_unflushed_epoch = UINT32_MAX;
    fp_mutex_init(&cache->writeback_lock);
    for (uint32_t i = 0; i < cfg->hash_size; i++)
        cache->hash_heads[i] = BLK_NONE;
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++) {
        cache->transfers[i].kind = BLK_XFER_FREE;
        cache->transfers[i].cache = cache;
        fp_queue_init(&cache->transfers[i].waiters);
    }
    for (uint32_t i = 0; i < BLK_CACHE_STREAMS; i++)
        cache->streams[i].next_block = UINT64_MAX;
    for (uint32_t i = cfg->buffer_count; i-- > 0;) {
        blk_buf *b = &cache->bufs[i];
        af_memset(b, 0, sizeof(*b));
        b->data = c->data_region + cfg->buffers_offset + (uint64_t)i * BLK_TRANSFER_SIZE;
        b->hash_next = BLK_NONE;
        fp_queue_init(&b->waiters);
        free_push(cache, b);
    }
    return BLK_OK;
}

static bool evictable(const blk_buf *b)
{
    return b->state == BLK_BUF_VALID && !b->pins && !b->dirty && !b->writing;
}

void blk_cache_note_cleaned(blk_cache *cache, blk_buf *b)
{
    uint32_t at = (cache->cleaned_head + cache->cleaned_count) % BLK_CACHE_CLEANED;
    cache->cleaned[at] = cache_buf_index(cache, b);
    if (cache->cleaned_count < BLK_CACHE_CLEANED)
        cache->cleaned_count++;
    else
        cache->cleaned_head = (cache->cleaned_head + 1) % BLK_CACHE_CLEANED;
}

/* The oldest buffer write-back cleaned that nobody has used since (a buffer may be there
 * twice, or have been evicted since: its state says). */
static blk_buf *cleaned_take(blk_cache *cache)
{
    while (cache->cleaned_count > 0) {
        blk_buf *b = &cache->bufs[cache->cleaned[cache->cleaned_head]];
        cache->cleaned_head = (cache->cleaned_head + 1) % BLK_CACHE_CLEANED;
        cache->cleaned_count--;
        if (evictable(b) && !b->referenced) {
            cache->stats.cleaned_evictions++;
            return b;
        }
    }
    return NULL;
}

/* A clean, unpinned, idle buffer: from the free list, the cleaned ring, or by CLOCK; NULL if
 * none. Two sweeps at most: the first may only clear reference bits. While there are dirty
 * buffers the sweep stops after BUFFER_SWEEP_MAX steps: in a cache that is mostly dirty a
 * full sweep per miss costs more than the write-back the caller then starts (which makes
 * buffers clean), and once a sweep has found nothing, the next miss sweeps only after a
 * buffer was unpinned or written back (sweep_futile; 32 writers each sweeping in vain cost
 * a tenth of a write on the NVMe-like model); with none dirty it must go on, as nothing
 * else would. */
#define BUFFER_SWEEP_MAX 256u
static blk_buf *buffer_take(blk_cache *cache)
{
    blk_buf *b = free_pop(cache);
    if (b)
        return b;
    blk_buf *cleaned = cleaned_take(cache);
    if (cleaned) {
        hash_remove(cache, cleaned);
        cache->stats.evictions++;
        return cleaned;
    }
    uint32_t steps = 2 * cache->buffer_count;
    if (cache->dirty_count > 0) {
        if (cache->sweep_futile)
            return NULL;
        if (steps > BUFFER_SWEEP_MAX)
            steps = BUFFER_SWEEP_MAX;
    }
    for (uint32_t step = 0; step < steps; step++) {
        b = &cache->bufs[cache->clock_hand];
        cache->clock_hand = cache->clock_hand + 1 == cache->buffer_count ? 0 : cache->clock_hand + 1;
        if (!evictable(b))
            continue;
        if (b->referenced) {
            b->referenced = false;
            continue;
        }
        hash_remove(cache, b);
        cache->stats.evictions++;
        return b;
    }
    cache->sweep_futile = cache->dirty_count > 0;
    return NULL;
}

/* Blocks: make a buffer available (write back dirty ones, or wait for a release). Dirty
 * buffers go out oldest epoch first, pinned or not: the epoch rule allows no other order,
 * and a pinned buffer written now is evictable once released. */
static blk_status buffer_make_room(blk_cache *cache)
{
    if (cache->dirty_count > 0)
        return blk_cache_writeback_some(cache);
    fp_wait(cache->pool, &cache->buffer_waiters);
    return BLK_OK;
}

static void buffer_unpin(blk_cache *cache, blk_buf *buf)
{
    if (--buf->pins > 0)
        return;
    cache->sweep_futile = false;
    if (buf->state == BLK_BUF_FAILED)
        free_push(cache, buf);
    else if (!fp_queue_empty(&cache->buffer_waiters))
        fp_wake_all(&cache->buffer_waiters, NULL);
}

/* Blocks: start filling n freshly hashed, pinned buffers from the device: b and the n - 1
 * after it in the array, whose data are as contiguous in the region and whose blocks follow
 * b's, so that one request fills them all. */
static blk_status buffer_read_start(blk_cache *cache, blk_buf *b, uint32_t n, blk_io *io)
{
    for (uint32_t k = 0; k < n; k++)
        b[k].state = BLK_BUF_READING;
    cache->stats.device_reads++;
    return blk_client_submit(cache->client, BLK_REQ_READ, b->block, n, cache_buf_offset(cache, b), io);
}

/* Never blocks: the outcome of the read of b .. b + n - 1, to their waiters. A failed
 * buffer leaves the hash, and the free list too once nobody pins it. */
static void buffers_read(blk_cache *cache, blk_buf *b, uint32_t n, blk_status st)
{
    for (uint32_t k = 0; k < n; k++) {
        if (st == BLK_OK) {
            b[k].state = BLK_BUF_VALID;
        } else {
            b[k].state = BLK_BUF_FAILED;
            b[k].read_status = st;
            hash_remove(cache, &b[k]);
            if (b[k].pins == 0)
                free_push(cache, &b[k]);
        }
        fp_wake_all(&b[k].waiters, NULL);
    }
}

/* Blocks: wait for the read buffer_read_start began (st: its submit status) and publish
 * the outcome to the waiters of its n buffers. */
static blk_status buffer_read_finish(blk_cache *cache, blk_buf *b, uint32_t n, blk_io *io, blk_status st)
{
    if (st == BLK_OK)
        st = blk_io_wait(cache->client, io);
    buffers_read(cache, b, n, st);
    return st;
}

static blk_status buffer_read(blk_cache *cache, blk_buf *b)
{
    blk_io io;
    return buffer_read_finish(cache, b, 1, &io, buffer_read_start(cache, b, 1, &io));
}

/* A taken buffer becomes the pinned, hashed home of `block` (contents not yet read). */
static void buffer_claim(blk_cache *cache, blk_buf *b, uint64_t block)
{
    b->block = block;
    b->pins = 1;
    b->referenced = false;
    b->dirty = false;
    b->writing = false;
    b->in_place = false;
    b->whole_data = false;
    b->state = BLK_BUF_VALID;
    hash_insert(cache, b);
}

/* Blocks: a cached buffer just pinned, once any read of it in flight is over: a hit, or
 * that read's error. */
static blk_status buffer_hit(blk_cache *cache, blk_buf *b)
{
    while (b->state == BLK_BUF_READING)
        fp_wait(cache->pool, &b->waiters);
    if (b->state == BLK_BUF_FAILED)
        return b->read_status;
    cache->stats.hits++;
    return BLK_OK;
}

blk_status blk_cache_get(blk_cache *cache, uint64_t block, blk_get_mode mode, blk_buf **out)
{
    *out = NULL;
    if (block >= cache->client->capacity)
        return BLK_ERR_RANGE;
    for (;;) {
        blk_buf *b = blk_cache_find(cache, block);
        if (b) {
            b->pins++;
            b->referenced = true;
            blk_status st = buffer_hit(cache, b);
            if (st != BLK_OK) {
                buffer_unpin(cache, b);
                return st;
            }
            *out = b;
            return BLK_OK;
        }
        blk_transfer *w = blk_transfer_find_write(cache, block);
        if (w) {
            blk_status st = blk_write_settle(cache, w);
            if (st != BLK_OK)
                return st;
            continue;
        }
        b = buffer_take(cache);
        if (!b) {
            blk_status st = buffer_make_room(cache);
            if (st != BLK_OK)
                return st;
            continue;
        }
        buffer_claim(cache, b, block);
        cache->stats.misses++;
        if (mode == BLK_GET_READ) {
            blk_status st = buffer_read(cache, b);
            if (st != BLK_OK) {
                buffer_unpin(cache, b);
                return st;
            }
        }
        *out = b;
        return BLK_OK;
    }
}

blk_status blk_cache_get_many(blk_cache *cache, uint64_t block, uint32_t count, blk_buf **out, uint32_t *got)
{
    *got = 0;
    if (count == 0 || count > BLK_CACHE_GET_MANY_MAX || block >= cache->client->capacity)
        return BLK_ERR_RANGE;
    count = (uint32_t)af_min_u64(count, cache->client->capacity - block);
    blk_io io[BLK_CACHE_GET_MANY_MAX];
    blk_status submitted[BLK_CACHE_GET_MANY_MAX];
    bool missed[BLK_CACHE_GET_MANY_MAX];
    uint32_t run[BLK_CACHE_GET_MANY_MAX]; /* misses read by the request of this one */
    uint32_t n = 0;
    /* Pin what is cached and claim a buffer for each miss, stopping where a miss would have
     * to wait (no free buffer, a bypass write in the way). Nothing here blocks, so every
     * claimed buffer is marked as being read before another task can look. */
    for (; n < count; n++) {
        blk_buf *b = blk_cache_find(cache, block + n);
        missed[n] = !b;
        if (b) {
            b->pins++;
            b->referenced = true;
        } else {
            if (blk_transfer_find_write(cache, block + n) || !(b = buffer_take(cache)))
                break;
            buffer_claim(cache, b, block + n);
            b->state = BLK_BUF_READING;
            cache->stats.misses++;
        }
        out[n] = b;
    }
    if (n == 0) {
        blk_status st = blk_cache_get(cache, block, BLK_GET_READ, &out[0]);
        *got = st == BLK_OK;
        return st;
    }
    /* One request per run of misses whose buffers lie one after another, as a fresh cache
     * (and CLOCK, evicting in order) hands them out: mounting reads a FAT in requests of
     * many blocks, not one per block. The reads then overlap. A failed request fails each
     * of its blocks (they are dropped, and read again by the next get). */
    for (uint32_t i = 0; i < n; i += run[i] ? run[i] : 1) {
        run[i] = 0;
        if (!missed[i])
            continue;
        uint32_t len = 1;
        while (i + len < n && missed[i + len] && out[i + len] == out[i] + len)
            len++;
        run[i] = len;
        submitted[i] = buffer_read_start(cache, out[i], len, &io[i]);
    }
    blk_status first = BLK_OK;
    for (uint32_t i = 0; i < n; i += run[i] ? run[i] : 1) {
        blk_status st = missed[i] ? buffer_read_finish(cache, out[i], run[i], &io[i], submitted[i])
                                  : buffer_hit(cache, out[i]);
        if (first == BLK_OK)
            first = st;
    }
    if (first != BLK_OK) {
        for (uint32_t i = 0; i < n; i++)
            buffer_unpin(cache, out[i]);
        return first;
    }
    *got = n;
    return BLK_OK;
}

/* Root: a prefetch's response; its buffers become valid, or leave the cache. */
static void prefetch_done(blk_io *io)
{
    blk_prefetch *p = AF_CONTAINER_OF(io, blk_prefetch, io);
    blk_cache *cache = p->cache;
    buffers_read(cache, &cache->bufs[p->first], p->count, io->status);
    if (io->status == BLK_OK)
        cache->stats.prefetched_blocks += p->count;
    cache->sweep_futile = false;
    p->busy = false;
}

static blk_prefetch *prefetch_record(blk_cache *cache)
{
    for (uint32_t i = 0; i < BLK_CACHE_PREFETCHES; i++)
        if (!cache->prefetches[i].busy)
            return &cache->prefetches[i];
    return NULL;
}

/* The free buffer after `prev` in the data region, taken off the free list; NULL if it is
 * not the next free one (the list hands buffers out in order until evictions mix it). */
static blk_buf *free_next_to(blk_cache *cache, const blk_buf *prev)
{
    return cache->free_head == cache_buf_index(cache, prev) + 1 ? free_pop(cache) : NULL;
}

static bool prefetch_wanted(blk_cache *cache, uint64_t block)
{
    return !blk_cache_find(cache, block) && !blk_transfer_find_write(cache, block);
}

void blk_cache_prefetch(blk_cache *cache, uint64_t block, uint32_t count)
{
    if (block >= cache->client->capacity)
        return;
    count = (uint32_t)af_min_u64(af_min_u64(count, BLK_CACHE_GET_MANY_MAX), cache->client->capacity - block);
    uint64_t end = block + count;
    while (block < end) {
        if (!prefetch_wanted(cache, block)) {
            block++;
            continue;
        }
        blk_prefetch *p = prefetch_record(cache);
        blk_buf *head = p ? free_pop(cache) : NULL;
        if (!head)
            return;
        blk_buf *b = head;
        uint32_t n = 0;
        for (;;) {
            buffer_claim(cache, b, block + n);
            b->pins = 0;
            n++;
            if (block + n == end || !prefetch_wanted(cache, block + n) || !(b = free_next_to(cache, b)))
                break;
        }
        *p = (blk_prefetch){.cache = cache, .first = cache_buf_index(cache, head), .count = n, .busy = true};
        blk_status st = buffer_read_start(cache, head, n, &p->io);
        if (st == BLK_OK) {
            p->io.on_done = prefetch_done;
        } else {
            p->io.status = st;
            prefetch_done(&p->io);
        }
        block += n;
    }
}

bool blk_cache_adopt_dirty(blk_cache *cache, uint64_t block, const uint8_t *data, uint32_t epoch)
{
    blk_buf *b = buffer_take(cache);
    if (!b)
        return false;
    buffer_claim(cache, b, block);
    b->pins = 0;
    af_memcpy(b->data, data, BLK_TRANSFER_SIZE);
    b->dirty = true;
    cache->dirty_count++;
    /* At the front the list stays sorted only with the oldest epoch there. */
    if (cache->dirty_head != BLK_NONE && cache->bufs[cache->dirty_head].epoch < epoch)
        epoch = cache->bufs[cache->dirty_head].epoch;
    b->epoch = epoch;
    dirty_link(cache, b, true);
    return true;
}

void blk_cache_mark_dirty(blk_cache *cache, blk_buf *buf)
{
    buf->whole_data = false;
    if (!buf->dirty) {
        buf->dirty = true;
        cache->dirty_count++;
    } else {
        dirty_unlink(cache, buf);
    }
    dirty_link(cache, buf, false);
    buf->epoch = cache->epoch;
    cache->epoch_dirtied = true;
}

blk_status blk_cache_prepare_write(blk_cache *cache, blk_buf *buf)
{
    while (!blk_cache_write_ready(cache, buf)) {
        if (buf->in_place) {
            /* run_complete wakes the buffer waiters. */
            fp_wait(cache->pool, &cache->buffer_waiters);
            continue;
        }
        blk_buf *copy = buffer_take(cache);
        if (!copy) {
            /* May write buf back itself, which also makes it ready. */
            blk_status st = buffer_make_room(cache);
            if (st != BLK_OK)
                return st;
            continue;
        }
        af_memcpy(copy->data, buf->data, BLK_TRANSFER_SIZE);
        copy->block = buf->block;
        copy->pins = 0;
        copy->referenced = false;
        copy->writing = false;
        copy->in_place = false;
        copy->whole_data = false;
        copy->state = BLK_BUF_VALID;
        copy->shadow = true;
        copy->dirty = true;
        copy->epoch = buf->epoch;
        /* The copy takes buf's place in the epoch-sorted dirty list; buf itself moves to
         * the current epoch at once, so it can never be evicted (and the block read back
         * stale) while its shadow waits. */
        dirty_replace(cache, buf, copy);
        cache->dirty_count++;
        dirty_link(cache, buf, false);
        buf->epoch = cache->epoch;
        cache->epoch_dirtied = true;
        cache->stats.shadow_copies++;
    }
    return BLK_OK;
}

blk_status blk_cache_prepare_write_pair(blk_cache *cache, blk_buf *a, blk_buf *b)
{
    /* Preparing one may block and let the other be dirtied in an epoch that then closes:
     * repeat until both are ready at once. */
    blk_status s = BLK_OK;
    while (s == BLK_OK && !(blk_cache_write_ready(cache, a) && (!b || blk_cache_write_ready(cache, b)))) {
        s = blk_cache_prepare_write(cache, a);
        if (s == BLK_OK && b)
            s = blk_cache_prepare_write(cache, b);
    }
    return s;
}

void blk_cache_shadow_written(blk_cache *cache, blk_buf *shadow)
{
    shadow->shadow = false;
    free_push(cache, shadow);
}

void blk_cache_release(blk_cache *cache, blk_buf *buf)
{
    buffer_unpin(cache, buf);
}

void blk_cache_order_point(blk_cache *cache)
{
    if (cache->epoch_dirtied) {
        cache->epoch++;
        cache->epoch_dirtied = false;
    }
}

void blk_cache_order_after(blk_cache *cache, blk_order_mark mark)
{
    if (mark.epoch == cache->epoch)
        blk_cache_order_point(cache);
}

void blk_cache_invalidate(blk_cache *cache)
{
    for (uint32_t i = 0; i < cache->buffer_count; i++) {
        blk_buf *b = &cache->bufs[i];
        if (b->state == BLK_BUF_VALID && !b->pins && !b->dirty && !b->writing) {
            hash_remove(cache, b);
            free_push(cache, b);
        }
    }
    for (uint32_t i = 0; i < BLK_CACHE_MAX_TRANSFERS; i++)
        if (cache->transfers[i].kind == BLK_XFER_READ_AHEAD)
            cache->transfers[i].stale = true;
    blk_transfer_reap_windows(cache);
    for (uint32_t i = 0; i < BLK_CACHE_STREAMS; i++)
        cache->streams[i].next_block = UINT64_MAX;
}

uint32_t blk_cache_writes_of_block(const blk_cache *cache, uint64_t block)
{
    return block < cache->wear_count ? cache->wear[block] : 0;
}

static blk_status bytes_range_check(const blk_cache *cache, uint64_t byte_offset, size_t len)
{
    uint64_t limit = cache->client->capacity * BLK_TRANSFER_SIZE;
    if (byte_offset > limit || len > limit - byte_offset)
        return BLK_ERR_RANGE;
    return BLK_OK;
}

blk_status blk_cache_read_bytes(blk_cache *cache, uint64_t byte_offset, void *dst, size_t len)
{
    blk_status st = bytes_range_check(cache, byte_offset, len);
    uint8_t *out = dst;
    while (st == BLK_OK && len > 0) {
        uint32_t in_block = (uint32_t)(byte_offset % BLK_TRANSFER_SIZE);
        size_t n = af_min_u64(len, BLK_TRANSFER_SIZE - in_block);
        blk_buf *b;
        st = blk_cache_get(cache, byte_offset / BLK_TRANSFER_SIZE, BLK_GET_READ, &b);
        if (st != BLK_OK)
            break;
        af_memcpy(out, b->data + in_block, n);
        blk_cache_release(cache, b);
        out += n;
        byte_offset += n;
        len -= n;
    }
    return st;
}

blk_status blk_cache_write_bytes(blk_cache *cache, uint64_t byte_offset, const void *src, size_t len)
{
    blk_status st = bytes_range_check(cache, byte_offset, len);
    if (st == BLK_OK && cache->client->read_only)
        st = BLK_ERR_READ_ONLY;
    const uint8_t *in = src;
    while (st == BLK_OK && len > 0) {
        uint32_t in_block = (uint32_t)(byte_offset % BLK_TRANSFER_SIZE);
        size_t n = af_min_u64(len, BLK_TRANSFER_SIZE - in_block);
        blk_buf *b;
        st = blk_cache_get(cache, byte_offset / BLK_TRANSFER_SIZE,
                           n == BLK_TRANSFER_SIZE ? BLK_GET_OVERWRITE : BLK_GET_READ, &b);
        if (st != BLK_OK)
            break;
        st = blk_cache_prepare_write(cache, b);
        if (st != BLK_OK) {
            blk_cache_release(cache, b);
            break;
        }
        af_memcpy(b->data + in_block, in, n);
        blk_cache_mark_dirty(cache, b);
        blk_cache_release(cache, b);
        in += n;
        byte_offset += n;
        len -= n;
    }
    return st;
}
