/* Buffer cache: hits and shared misses, eviction with pins, scan resistance, write-back
 * merging, flush epochs, error propagation, back-pressure, many fibers against a model. */
#include "blk/tests/blk_test_util.h"

static blk_fixture fx;

static blk_fixture_options small_options(uint32_t buffers)
{
    blk_fixture_options o = random_options();
    o.image_bytes = 1024 * BLK_TRANSFER_SIZE;
    o.cache_buffers = buffers;
    return o;
}

typedef struct get_job {
    uint64_t block;
    blk_status status;
    blk_buf *buf;
    bool data_ok;
    uint32_t yields;     /* hold the pin across this many yields */
    bool hold;           /* hold the pin until release_holders() */
    bool still_ok;       /* the buffer still held its block just before release */
} get_job;

static fp_queue holders;

static void *run_get(void *arg)
{
    get_job *j = arg;
    blk_buf *b;
    j->status = blk_cache_get(&fx.stack.cache, j->block, BLK_GET_READ, &b);
    if (j->status != BLK_OK)
        return NULL;
    j->buf = b;
    j->data_ok = pattern_check(blk_buf_data(b), j->block);
    for (uint32_t i = 0; i < j->yields; i++)
        fp_yield(&fx.stack.pool);
    if (j->hold)
        fp_wait(&fx.stack.pool, &holders);
    j->still_ok = blk_buf_block(b) == j->block && pattern_check(blk_buf_data(b), j->block);
    blk_cache_release(&fx.stack.cache, b);
    return NULL;
}

static bool get_blocks(const uint64_t *blocks, uint32_t n)
{
    static get_job jobs[256];
    for (uint32_t i = 0; i < n; i++) {
        jobs[i] = (get_job){ .block = blocks[i], .status = BLK_ERR_UNSPEC };
        if (!blk_fixture_spawn(&fx, run_get, &jobs[i]))
            return false;
    }
    if (!blk_fixture_run(&fx))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (jobs[i].status != BLK_OK || !jobs[i].data_ok)
            return false;
    return true;
}

/* get_blocks of first, first + 1 .. first + n - 1 (n <= 256). */
static bool get_range(uint64_t first, uint32_t n)
{
    uint64_t blocks[256];
    for (uint32_t i = 0; i < n; i++)
        blocks[i] = first + i;
    return get_blocks(blocks, n);
}

/* Write a whole block of pattern(tag) through the cache. */
typedef struct write_job {
    uint64_t block;
    uint64_t tag;
    blk_status status;
} write_job;

static void *run_write_block(void *arg)
{
    write_job *j = arg;
    uint8_t data[BLK_TRANSFER_SIZE];
    pattern_fill(data, j->tag);
    j->status = blk_cache_write_bytes(&fx.stack.cache, j->block * BLK_TRANSFER_SIZE, data, sizeof data);
    return NULL;
}

static blk_status flush_status;
static void *run_flush(void *arg)
{
    (void)arg;
    flush_status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

static bool write_blocks(const uint64_t *blocks, uint32_t n, uint64_t tag_base)
{
    static write_job jobs[256];
    for (uint32_t i = 0; i < n; i++) {
        jobs[i] = (write_job){ .block = blocks[i], .tag = tag_base + blocks[i], .status = BLK_ERR_UNSPEC };
        if (!blk_fixture_spawn(&fx, run_write_block, &jobs[i]))
            return false;
    }
    if (!blk_fixture_run(&fx))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (jobs[i].status != BLK_OK)
            return false;
    return true;
}

static blk_status flush_now(void)
{
    flush_status = BLK_ERR_UNSPEC;
    if (!blk_fixture_spawn(&fx, run_flush, NULL))
        return BLK_ERR_UNSPEC;
    if (!blk_fixture_run(&fx))
        return BLK_ERR_UNSPEC;
    return flush_status;
}

TEST(cache_second_get_is_a_hit)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t blocks[] = { 7 };
    CHECK(get_blocks(blocks, 1));
    CHECK(get_blocks(blocks, 1));
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK_EQ(s->misses, 1);
    CHECK_EQ(s->hits, 1);
    CHECK_EQ(s->device_reads, 1);
    blk_fixture_fini(&fx);
}

TEST(cache_fibers_on_the_same_block_share_one_read)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t blocks[32];
    for (uint32_t i = 0; i < 32; i++)
        blocks[i] = i % 2 ? 100 : 200;
    CHECK(get_blocks(blocks, 32));
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->device_reads, 2);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->misses, 2);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->hits, 30);
    blk_fixture_fini(&fx);
}

TEST(cache_get_rejects_blocks_past_the_end)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    static get_job j;
    j = (get_job){ .block = 1024 };
    CHECK(blk_fixture_spawn(&fx, run_get, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_ERR_RANGE);
    CHECK(j.buf == NULL);
    blk_fixture_fini(&fx);
}

TEST(cache_eviction_never_takes_pinned_buffers)
{
    blk_fixture_options o = small_options(8);
    CHECK(fixture_with_pattern(&fx, &o));
    static get_job pinned[4];
    static get_job others[56];
    fp_queue_init(&holders);
    for (uint32_t i = 0; i < 4; i++) {
        pinned[i] = (get_job){ .block = 500 + i, .hold = true };
        CHECK(blk_fixture_spawn(&fx, run_get, &pinned[i]));
    }
    for (uint32_t i = 0; i < 56; i++) {
        others[i] = (get_job){ .block = i, .yields = (uint32_t)(i % 3) };
        CHECK(blk_fixture_spawn(&fx, run_get, &others[i]));
    }
    CHECK(!blk_fixture_run(&fx)); /* only the holders are left, blocked */
    CHECK_EQ(fp_live_tasks(&fx.stack.pool), 4);
    fp_wake_all(&holders, NULL);
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 4; i++) {
        CHECK_EQ(pinned[i].status, BLK_OK);
        CHECK(pinned[i].data_ok);
        CHECK(pinned[i].still_ok); /* kept its block through all that traffic */
    }
    for (uint32_t i = 0; i < 56; i++) {
        CHECK_EQ(others[i].status, BLK_OK);
        CHECK(others[i].data_ok);
    }
    CHECK(blk_cache_get_stats(&fx.stack.cache)->evictions >= 52);
    blk_fixture_fini(&fx);
}

TEST(cache_getters_wait_when_every_buffer_is_pinned)
{
    blk_fixture_options o = small_options(4);
    CHECK(fixture_with_pattern(&fx, &o));
    static get_job jobs[16];
    for (uint32_t i = 0; i < 16; i++) {
        jobs[i] = (get_job){ .block = 40 + i, .yields = 5 };
        CHECK(blk_fixture_spawn(&fx, run_get, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 16; i++) {
        CHECK_EQ(jobs[i].status, BLK_OK);
        CHECK(jobs[i].data_ok);
    }
    blk_fixture_fini(&fx);
}

typedef struct many_job {
    uint64_t block;
    uint32_t count;
    blk_status status;
    uint32_t got;
    bool data_ok;
} many_job;

static void *run_get_many(void *arg)
{
    many_job *j = arg;
    blk_buf *bufs[BLK_CACHE_GET_MANY_MAX];
    j->status = blk_cache_get_many(&fx.stack.cache, j->block, j->count, bufs, &j->got);
    if (j->status != BLK_OK)
        return NULL;
    j->data_ok = true;
    for (uint32_t i = 0; i < j->got; i++) {
        j->data_ok &= blk_buf_block(bufs[i]) == j->block + i && pattern_check(blk_buf_data(bufs[i]), j->block + i);
        blk_cache_release(&fx.stack.cache, bufs[i]);
    }
    return NULL;
}

/* holders: tasks left blocked on purpose, so the run cannot end with every task done. */
static many_job get_many_now(uint64_t block, uint32_t count, bool holders_left)
{
    static many_job j;
    j = (many_job){ .block = block, .count = count, .status = BLK_ERR_UNSPEC };
    if (!blk_fixture_spawn(&fx, run_get_many, &j) || blk_fixture_run(&fx) == holders_left)
        j.status = BLK_ERR_UNSPEC;
    return j;
}

TEST(cache_get_many_reads_its_misses_at_once)
{
    blk_fixture_options o = small_options(64);
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t cached[] = { 102, 103, 110 };
    CHECK(get_blocks(cached, 3));
    uint64_t notified = blk_client_get_stats(&fx.stack.client)->notifications;
    many_job j = get_many_now(100, 16, false);
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(j.got, 16);
    CHECK(j.data_ok);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    /* The thirteen misses between the cached blocks are three runs (100-101, 104-109,
     * 111-115) in buffers handed out one after another: three requests. */
    CHECK_EQ(s->device_reads, 3 + 3);
    CHECK_EQ(s->hits, 3);
    /* ... sent to the device in one pass, not one after another. */
    CHECK_EQ(blk_client_get_stats(&fx.stack.client)->notifications - notified, 1);
    /* Nothing stays pinned: a second call is all hits, and every buffer can be reused. */
    j = get_many_now(100, 16, false);
    CHECK_EQ(j.got, 16);
    CHECK_EQ(s->device_reads, 6);
    CHECK(get_range(300, 64));
    blk_fixture_fini(&fx);
}

/* Misses whose buffers are not one after another in the data region (a cache that has
 * evicted here and there) are read one request each, and land where they belong. */
TEST(cache_get_many_reads_scattered_buffers_one_by_one)
{
    blk_fixture_options o = small_options(8);
    CHECK(fixture_with_pattern(&fx, &o));
    CHECK(get_range(200, 8));
    /* A second reference to every other one: CLOCK then frees buffers 1, 3, 5 and 7. */
    uint64_t again[] = { 200, 202, 204, 206 };
    CHECK(get_blocks(again, 4));
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    uint64_t reads = s->device_reads;
    many_job j = get_many_now(600, 4, false);
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(j.got, 4);
    CHECK(j.data_ok);
    CHECK_EQ(s->device_reads - reads, 4);
    blk_fixture_fini(&fx);
}

typedef struct prefetch_job {
    uint64_t block;
    uint32_t count;
} prefetch_job;

static void *run_prefetch(void *arg)
{
    prefetch_job *j = arg;
    blk_cache_prefetch(&fx.stack.cache, j->block, j->count);
    return NULL;
}

static void prefetch_now(uint64_t block, uint32_t count)
{
    static prefetch_job j;
    j = (prefetch_job){ block, count };
    CHECK(blk_fixture_spawn(&fx, run_prefetch, &j));
    CHECK(blk_fixture_run(&fx)); /* returns at once: nothing waits for the read */
}

/* A prefetch reads ahead in one request and returns; a get of a prefetched block waits for
 * that read instead of reading again, and nothing stays pinned. */
TEST(cache_prefetch_reads_ahead_and_a_get_waits_for_it)
{
    blk_fixture_options o = small_options(64);
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_set_hold(&fx.dev, true);
    prefetch_now(100, 16);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK_EQ(s->device_reads, 1);
    CHECK_EQ(ram_device_pending(&fx.dev), 1);
    static get_job g;
    g = (get_job){ .block = 105, .status = BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_get, &g));
    for (int i = 0; i < 8; i++)
        blk_fixture_pass(&fx);
    CHECK_EQ(g.status, BLK_ERR_UNSPEC); /* waiting for the prefetch */
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(g.status, BLK_OK);
    CHECK(g.data_ok);
    CHECK(get_range(100, 16));
    CHECK_EQ(s->device_reads, 1);
    CHECK_EQ(s->prefetched_blocks, 16);
    /* Already cached: a second prefetch sends nothing. */
    prefetch_now(100, 16);
    CHECK_EQ(s->device_reads, 1);
    /* Unpinned: every buffer can be taken by other blocks. */
    CHECK(get_range(300, 64));
    blk_fixture_fini(&fx);
}

/* A prefetch uses free buffers only: in a full cache it evicts nothing and reads nothing. */
TEST(cache_prefetch_never_evicts)
{
    blk_fixture_options o = small_options(8);
    CHECK(fixture_with_pattern(&fx, &o));
    CHECK(get_range(10, 8));
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    uint64_t reads = s->device_reads;
    prefetch_now(500, 8);
    CHECK_EQ(s->device_reads, reads);
    CHECK_EQ(s->evictions, 0);
    CHECK(get_range(10, 8));
    CHECK_EQ(s->device_reads, reads); /* all still cached */
    blk_fixture_fini(&fx);
}

/* A failed prefetch leaves its blocks out of the cache: the next get reads them again and
 * sees the device's answer then. */
TEST(cache_prefetch_failure_leaves_the_blocks_uncached)
{
    blk_fixture_options o = small_options(64);
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 200, 204, 1u << BLK_REQ_READ);
    prefetch_now(200, 8);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    uint64_t reads = s->device_reads;
    CHECK(get_range(200, 8));
    CHECK_EQ(s->device_reads, reads + 8);
    CHECK_EQ(s->prefetched_blocks, 0);
    /* The failed buffers went back to the free list: 64 blocks can be pinned at once. */
    static get_job held[64];
    fp_queue_init(&holders);
    for (uint32_t i = 0; i < 64; i++) {
        held[i] = (get_job){ .block = 300 + i, .hold = true, .status = BLK_ERR_UNSPEC };
        CHECK(blk_fixture_spawn(&fx, run_get, &held[i]));
    }
    CHECK(!blk_fixture_run(&fx)); /* the holders wait */
    for (uint32_t i = 0; i < 64; i++)
        CHECK_EQ(held[i].status, BLK_OK);
    fp_wake_all(&holders, NULL);
    CHECK(blk_fixture_run(&fx));
    blk_fixture_fini(&fx);
}

TEST(cache_get_many_stops_short_rather_than_wait)
{
    blk_fixture_options o = small_options(8);
    CHECK(fixture_with_pattern(&fx, &o));
    static get_job pinned[5];
    fp_queue_init(&holders);
    for (uint32_t i = 0; i < 5; i++) {
        pinned[i] = (get_job){ .block = 500 + i, .hold = true };
        CHECK(blk_fixture_spawn(&fx, run_get, &pinned[i]));
    }
    CHECK(!blk_fixture_run(&fx));
    many_job j = get_many_now(10, 16, true);
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(j.got, 3);
    CHECK(j.data_ok);
    /* At the end of the device it returns what there is. */
    j = get_many_now(fx.dev.capacity - 2, 16, true);
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(j.got, 2);
    CHECK(j.data_ok);
    CHECK_EQ(get_many_now(fx.dev.capacity, 1, true).status, BLK_ERR_RANGE);
    CHECK_EQ(get_many_now(0, 0, true).status, BLK_ERR_RANGE);
    CHECK_EQ(get_many_now(0, BLK_CACHE_GET_MANY_MAX + 1, true).status, BLK_ERR_RANGE);
    fp_wake_all(&holders, NULL);
    CHECK(blk_fixture_run(&fx));
    blk_fixture_fini(&fx);
}

TEST(cache_get_many_failure_pins_nothing)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 205, 206, 1u << BLK_REQ_READ);
    many_job j = get_many_now(200, 16, false);
    CHECK_EQ(j.status, BLK_ERR_IO);
    CHECK_EQ(j.got, 0);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    /* Every buffer is free again, and block 205 is read afresh. */
    uint64_t blocks[16];
    for (uint32_t i = 0; i < 16; i++)
        blocks[i] = 200 + i;
    CHECK(get_blocks(blocks, 16));
    j = get_many_now(200, 16, false);
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(j.got, 16);
    CHECK(j.data_ok);
    blk_fixture_fini(&fx);
}

TEST(cache_keeps_reused_blocks_through_a_scan)
{
    blk_fixture_options o = small_options(16);
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t hot[4] = { 900, 901, 902, 903 };
    CHECK(get_blocks(hot, 4));
    uint64_t fill[12];
    for (uint32_t i = 0; i < 12; i++)
        fill[i] = 10 + i;
    CHECK(get_blocks(fill, 12));
    CHECK(get_blocks(hot, 4)); /* reused: referenced */
    uint64_t scan[12];
    for (uint32_t i = 0; i < 12; i++)
        scan[i] = 300 + i;
    CHECK(get_blocks(scan, 12)); /* seen once: must not push the reused ones out */
    uint64_t misses = blk_cache_get_stats(&fx.stack.cache)->misses;
    CHECK(get_blocks(hot, 4));
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->misses, misses);
    blk_fixture_fini(&fx);
}

TEST(cache_write_back_merges_contiguous_runs)
{
    blk_fixture_options o = small_options(64);
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t blocks[] = { 14, 10, 30, 12, 11, 13, 19, 15, 16, 17, 18 };
    CHECK(write_blocks(blocks, AF_ARRAY_LEN(blocks), 5000));
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 11);
    CHECK_EQ(fx.dev.requests_done, 0); /* write-back, not write-through */
    CHECK_EQ(flush_now(), BLK_OK);
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 0);
    CHECK_EQ(ram_device_log_count(&fx.dev), 3);
    bool saw_run = false, saw_single = false;
    for (uint32_t i = 0; i < 2; i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        CHECK_EQ(e->code, BLK_REQ_WRITE);
        saw_run |= e->block == 10 && e->count == 10;
        saw_single |= e->block == 30 && e->count == 1;
    }
    CHECK(saw_run && saw_single);
    CHECK_EQ(ram_device_log_at(&fx.dev, 2)->code, BLK_REQ_FLUSH);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->merged_requests, 1);
    for (uint32_t i = 0; i < AF_ARRAY_LEN(blocks); i++)
        CHECK(pattern_check(fx.image + blocks[i] * BLK_TRANSFER_SIZE, 5000 + blocks[i]));
    CHECK(pattern_check(fx.image + 20 * BLK_TRANSFER_SIZE, 20));
    CHECK_EQ(blk_cache_writes_of_block(&fx.stack.cache, 12), 1);
    CHECK_EQ(blk_cache_writes_of_block(&fx.stack.cache, 20), 0);
    CHECK(write_blocks(blocks, 1, 7000));
    CHECK_EQ(flush_now(), BLK_OK);
    CHECK_EQ(blk_cache_writes_of_block(&fx.stack.cache, 14), 2);
    blk_fixture_fini(&fx);
}

typedef struct bytes_job {
    uint64_t at;
    uint8_t *p;
    size_t n;
    bool write;
    blk_status status;
} bytes_job;

static void *run_bytes(void *arg)
{
    bytes_job *j = arg;
    j->status = j->write ? blk_cache_write_bytes(&fx.stack.cache, j->at, j->p, j->n)
                         : blk_cache_read_bytes(&fx.stack.cache, j->at, j->p, j->n);
    return NULL;
}

static blk_status bytes_now(uint64_t at, void *p, size_t n, bool write)
{
    static bytes_job j;
    j = (bytes_job){ .at = at, .p = p, .n = n, .write = write, .status = BLK_ERR_UNSPEC };
    if (!blk_fixture_spawn(&fx, run_bytes, &j))
        return BLK_ERR_UNSPEC;
    if (!blk_fixture_run(&fx))
        return BLK_ERR_UNSPEC;
    return j.status;
}

TEST(cache_byte_writes_read_modify_write_partial_blocks)
{
    static const uint16_t sizes[] = { 512, 1024, 2048, 4096 };
    for (uint32_t k = 0; k < AF_ARRAY_LEN(sizes); k++) {
        blk_fixture_options o = small_options(16);
        o.sector_size = sizes[k];
        CHECK(fixture_with_pattern(&fx, &o));
        /* One sector inside a block, then one sector-sized span across a block boundary. */
        static uint8_t sector[4096];
        memset(sector, 0xAB, sizeof sector);
        uint64_t first = 3 * BLK_TRANSFER_SIZE + sizes[k] % BLK_TRANSFER_SIZE;
        uint64_t second = 6 * BLK_TRANSFER_SIZE - sizes[k] / 2;
        CHECK_EQ(bytes_now(first, sector, sizes[k], true), BLK_OK);
        CHECK_EQ(bytes_now(second, sector, sizes[k], true), BLK_OK);
        CHECK_EQ(flush_now(), BLK_OK);
        for (uint64_t off = 2 * BLK_TRANSFER_SIZE; off < 8 * BLK_TRANSFER_SIZE; off++) {
            bool written = (off >= first && off < first + sizes[k]) || (off >= second && off < second + sizes[k]);
            uint8_t want = written ? 0xAB : pattern_byte(off / BLK_TRANSFER_SIZE, (uint32_t)(off % BLK_TRANSFER_SIZE));
            CHECK_MSG(fx.image[off] == want, "sector size %u: byte %llu", sizes[k], (unsigned long long)off);
        }
        static uint8_t back[8192];
        CHECK_EQ(bytes_now(second - 10, back, sizes[k] + 20, false), BLK_OK);
        CHECK(memcmp(back, fx.image + second - 10, sizes[k] + 20) == 0);
        CHECK_EQ(bytes_now(1024 * BLK_TRANSFER_SIZE - 10, back, 11, false), BLK_ERR_RANGE);
        blk_fixture_fini(&fx);
    }
}

TEST(cache_read_only_device_refuses_byte_writes)
{
    blk_fixture_options o = small_options(16);
    o.read_only = true;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t b[16] = { 0 };
    CHECK_EQ(bytes_now(100, b, sizeof b, true), BLK_ERR_READ_ONLY);
    CHECK_EQ(bytes_now(100, b, sizeof b, false), BLK_OK);
    CHECK_EQ(flush_now(), BLK_OK);
    blk_fixture_fini(&fx);
}

TEST(cache_failed_read_leaves_no_valid_buffer)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 7, 8, 1u << BLK_REQ_READ);
    static get_job jobs[8];
    for (uint32_t i = 0; i < 8; i++) {
        jobs[i] = (get_job){ .block = i < 6 ? 7 : 8 };
        CHECK(blk_fixture_spawn(&fx, run_get, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 8; i++) {
        CHECK_EQ(jobs[i].status, i < 6 ? BLK_ERR_IO : BLK_OK);
        CHECK(i < 6 ? jobs[i].buf == NULL : jobs[i].data_ok);
    }
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->device_reads, 2); /* the six shared one read */
    /* Nothing of block 7 was left behind: the next get reads the device again. */
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    uint64_t again[] = { 7 };
    CHECK(get_blocks(again, 1));
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->device_reads, 3);
    /* And every buffer is usable again. */
    uint64_t many[16];
    for (uint32_t i = 0; i < 16; i++)
        many[i] = 600 + i;
    CHECK(get_blocks(many, 16));
    blk_fixture_fini(&fx);
}

TEST(cache_failed_write_stays_dirty_until_it_succeeds)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t blocks[] = { 9, 10, 40 };
    CHECK(write_blocks(blocks, 3, 100));
    ram_device_fail_range(&fx.dev, 10, 11, 1u << BLK_REQ_WRITE);
    CHECK_EQ(flush_now(), BLK_ERR_IO);
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 2 + (pattern_check(fx.image + 40 * 4096, 140) ? 0 : 1));
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(flush_now(), BLK_OK);
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 0);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(pattern_check(fx.image + blocks[i] * BLK_TRANSFER_SIZE, 100 + blocks[i]));
    blk_fixture_fini(&fx);
}

/* The ordering rule, checked on the device's completion log: no write that carries an
 * epoch-2 block completes before every epoch-1 block is written and a FLUSH completed. */
static bool log_respects_epochs(const uint64_t *first, uint32_t nfirst, const uint64_t *second, uint32_t nsecond)
{
    uint64_t n = ram_device_log_count(&fx.dev);
    bool first_written[64] = { false };
    bool first_durable = false;
    for (uint64_t i = 0; i < n; i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        if (e->code == BLK_REQ_FLUSH && e->status == BLK_RESP_OK) {
            bool all = true;
            for (uint32_t k = 0; k < nfirst; k++)
                all &= first_written[k];
            first_durable |= all;
        }
        if (e->code != BLK_REQ_WRITE || e->status != BLK_RESP_OK)
            continue;
        for (uint32_t k = 0; k < nfirst; k++)
            if (first[k] >= e->block && first[k] < e->block + e->count)
                first_written[k] = true;
        for (uint32_t k = 0; k < nsecond; k++)
            if (second[k] >= e->block && second[k] < e->block + e->count && !first_durable)
                return false;
    }
    return first_durable;
}

typedef struct epoch_job {
    const uint64_t *first, *second;
    uint32_t nfirst, nsecond;
    bool flush_at_end;
    blk_status status;
} epoch_job;

static void *run_epochs(void *arg)
{
    epoch_job *j = arg;
    uint8_t data[BLK_TRANSFER_SIZE];
    j->status = BLK_OK;
    for (uint32_t i = 0; i < j->nfirst && j->status == BLK_OK; i++) {
        pattern_fill(data, 1000 + j->first[i]);
        j->status = blk_cache_write_bytes(&fx.stack.cache, j->first[i] * BLK_TRANSFER_SIZE, data, sizeof data);
    }
    blk_cache_order_point(&fx.stack.cache);
    for (uint32_t i = 0; i < j->nsecond && j->status == BLK_OK; i++) {
        pattern_fill(data, 2000 + j->second[i]);
        j->status = blk_cache_write_bytes(&fx.stack.cache, j->second[i] * BLK_TRANSFER_SIZE, data, sizeof data);
    }
    if (j->flush_at_end && j->status == BLK_OK)
        j->status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(cache_flush_writes_epochs_in_order)
{
    blk_fixture_options o = small_options(64);
    CHECK(fixture_with_pattern(&fx, &o));
    /* Adjacent blocks in different epochs must not be merged into one request. */
    static const uint64_t first[] = { 20, 21, 50, 7 };
    static const uint64_t second[] = { 22, 19, 51, 300 };
    static epoch_job j;
    j = (epoch_job){ first, second, 4, 4, true, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_epochs, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    CHECK(log_respects_epochs(first, 4, second, 4));
    for (uint32_t i = 0; i < 4; i++) {
        CHECK(pattern_check(fx.image + first[i] * BLK_TRANSFER_SIZE, 1000 + first[i]));
        CHECK(pattern_check(fx.image + second[i] * BLK_TRANSFER_SIZE, 2000 + second[i]));
    }
    blk_fixture_fini(&fx);
}

TEST(cache_eviction_write_back_respects_epochs)
{
    /* Eight buffers and twelve dirty blocks: eviction must write some back on its own. */
    blk_fixture_options o = small_options(8);
    CHECK(fixture_with_pattern(&fx, &o));
    static const uint64_t first[] = { 100, 101, 3 };
    static const uint64_t second[] = { 102, 4, 5, 6, 200, 201, 202, 203, 99 };
    static epoch_job j;
    j = (epoch_job){ first, second, 3, 9, false, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_epochs, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    CHECK(ram_device_log_count(&fx.dev) > 0);
    CHECK(log_respects_epochs(first, 3, second, 9));
    CHECK_EQ(flush_now(), BLK_OK);
    CHECK(log_respects_epochs(first, 3, second, 9));
    for (uint32_t i = 0; i < 9; i++)
        CHECK(pattern_check(fx.image + second[i] * BLK_TRANSFER_SIZE, 2000 + second[i]));
    blk_fixture_fini(&fx);
}

TEST(cache_block_dirtied_again_keeps_each_epochs_version_in_order)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    static const uint64_t first[] = { 30, 31 };
    static const uint64_t second[] = { 31, 32 };
    static epoch_job j;
    j = (epoch_job){ first, second, 2, 2, true, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_epochs, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->shadow_copies, 1);
    /* Block 31 goes out twice: its epoch-1 version with block 30, before the FLUSH that
     * closes epoch 1, then its epoch-2 version with block 32 after it. */
    uint64_t n = ram_device_log_count(&fx.dev);
    int64_t first_flush = -1;
    int writes_of_31_before = 0, writes_of_31_after = 0;
    for (uint64_t i = 0; i < n; i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        if (e->code == BLK_REQ_FLUSH && first_flush < 0)
            first_flush = (int64_t)i;
        if (e->code != BLK_REQ_WRITE)
            continue;
        bool covers_30 = e->block <= 30 && 30 < e->block + e->count;
        bool covers_31 = e->block <= 31 && 31 < e->block + e->count;
        bool covers_32 = e->block <= 32 && 32 < e->block + e->count;
        CHECK(!covers_30 || first_flush < 0);
        CHECK(!covers_32 || first_flush >= 0);
        if (covers_31 && first_flush < 0)
            writes_of_31_before++;
        else if (covers_31)
            writes_of_31_after++;
    }
    CHECK_EQ(writes_of_31_before, 1);
    CHECK_EQ(writes_of_31_after, 1);
    CHECK(pattern_check(fx.image + 31 * BLK_TRANSFER_SIZE, 2031));
    CHECK(pattern_check(fx.image + 30 * BLK_TRANSFER_SIZE, 1030));
    blk_fixture_fini(&fx);
}

/* Two tasks each order their own later write after their own earlier one with a mark:
 * the mark orders only when no order point came since it was taken. */
typedef struct mark_job {
    blk_status status;
} mark_job;

static void *run_marks(void *arg)
{
    mark_job *j = arg;
    uint8_t data[BLK_TRANSFER_SIZE];
    pattern_fill(data, 1040);
    j->status = blk_cache_write_bytes(&fx.stack.cache, 40 * BLK_TRANSFER_SIZE, data, sizeof data);
    blk_order_mark stale = blk_cache_order_mark(&fx.stack.cache);
    blk_cache_order_point(&fx.stack.cache);
    pattern_fill(data, 2041);
    if (j->status == BLK_OK)
        j->status = blk_cache_write_bytes(&fx.stack.cache, 41 * BLK_TRANSFER_SIZE, data, sizeof data);
    blk_order_mark fresh = blk_cache_order_mark(&fx.stack.cache);
    blk_cache_order_after(&fx.stack.cache, stale); /* a point came since: nothing to do */
    pattern_fill(data, 2042);
    if (j->status == BLK_OK)
        j->status = blk_cache_write_bytes(&fx.stack.cache, 42 * BLK_TRANSFER_SIZE, data, sizeof data);
    blk_cache_order_after(&fx.stack.cache, fresh); /* none since: closes the epoch of 41 and 42 */
    pattern_fill(data, 3043);
    if (j->status == BLK_OK)
        j->status = blk_cache_write_bytes(&fx.stack.cache, 43 * BLK_TRANSFER_SIZE, data, sizeof data);
    blk_cache_order_after(&fx.stack.cache, (blk_order_mark){0}); /* a zeroed mark orders nothing */
    if (j->status == BLK_OK)
        j->status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(cache_order_after_a_mark_orders_only_what_is_not_yet_ordered)
{
    blk_fixture_options o = small_options(64);
    CHECK(fixture_with_pattern(&fx, &o));
    static mark_job j;
    j = (mark_job){BLK_ERR_UNSPEC};
    CHECK(blk_fixture_spawn(&fx, run_marks, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    static const uint64_t b40[] = {40}, b41_42[] = {41, 42}, b43[] = {43};
    CHECK(log_respects_epochs(b40, 1, b41_42, 2));
    CHECK(log_respects_epochs(b41_42, 2, b43, 1));
    /* 41 and 42 share an epoch: one merged write carries both. */
    bool merged = false;
    for (uint64_t i = 0; i < ram_device_log_count(&fx.dev); i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        merged |= e->code == BLK_REQ_WRITE && e->block <= 41 && e->block + e->count >= 43;
    }
    CHECK(merged);
    CHECK(pattern_check(fx.image + 43 * BLK_TRANSFER_SIZE, 3043));
    blk_fixture_fini(&fx);
}

/* prepare_write_pair: two blocks dirty from a closed epoch each keep that version as a
 * shadow, and both are ready for one change that spans them. */
static void *run_pair(void *arg)
{
    mark_job *j = arg;
    blk_buf *a = NULL, *b = NULL;
    uint8_t data[BLK_TRANSFER_SIZE];
    for (uint64_t block = 60; block <= 61; block++) {
        pattern_fill(data, 1000 + block);
        j->status = blk_cache_write_bytes(&fx.stack.cache, block * BLK_TRANSFER_SIZE, data, sizeof data);
        if (j->status != BLK_OK)
            return NULL;
    }
    blk_cache_order_point(&fx.stack.cache);
    j->status = blk_cache_get(&fx.stack.cache, 60, BLK_GET_READ, &a);
    if (j->status == BLK_OK)
        j->status = blk_cache_get(&fx.stack.cache, 61, BLK_GET_READ, &b);
    if (j->status == BLK_OK)
        j->status = blk_cache_prepare_write_pair(&fx.stack.cache, a, b);
    if (j->status == BLK_OK) {
        /* No blocking point from here to the marks. */
        pattern_fill(blk_buf_data(a), 2060);
        pattern_fill(blk_buf_data(b), 2061);
        blk_cache_mark_dirty(&fx.stack.cache, a);
        blk_cache_mark_dirty(&fx.stack.cache, b);
    }
    if (a)
        blk_cache_release(&fx.stack.cache, a);
    if (b)
        blk_cache_release(&fx.stack.cache, b);
    if (j->status == BLK_OK)
        j->status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(cache_prepare_write_pair_keeps_both_earlier_versions_in_order)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    static mark_job j;
    j = (mark_job){BLK_ERR_UNSPEC};
    CHECK(blk_fixture_spawn(&fx, run_pair, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->shadow_copies, 2);
    /* Each block went out twice, its first version before the FLUSH between epochs. */
    uint64_t n = ram_device_log_count(&fx.dev);
    int before[2] = {0, 0}, after[2] = {0, 0};
    bool flushed = false;
    for (uint64_t i = 0; i < n; i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        flushed |= e->code == BLK_REQ_FLUSH;
        for (uint64_t k = 0; k < 2 && e->code == BLK_REQ_WRITE; k++)
            if (e->block <= 60 + k && 60 + k < e->block + e->count)
                (flushed ? after : before)[k]++;
    }
    CHECK(before[0] == 1 && before[1] == 1 && after[0] == 1 && after[1] == 1);
    CHECK(pattern_check(fx.image + 60 * BLK_TRANSFER_SIZE, 2060));
    CHECK(pattern_check(fx.image + 61 * BLK_TRANSFER_SIZE, 2061));
    blk_fixture_fini(&fx);
}

TEST(cache_many_small_epochs_go_out_in_one_round_trip_and_in_order)
{
    blk_fixture_options o = small_options(64);
    o.staging_slots = 16;
    CHECK(fixture_with_pattern(&fx, &o));
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t block[] = { 100 + (i % 2 ? 50 : 0) + i }; /* no two epochs adjacent */
        CHECK(write_blocks(block, 1, 3000));
        blk_cache_order_point(&fx.stack.cache);
    }
    uint64_t notified = blk_client_get_stats(&fx.stack.client)->notifications;
    uint64_t start = ram_device_log_count(&fx.dev);
    CHECK_EQ(flush_now(), BLK_OK);
    /* Ten epochs: one batch with fences between them, then the final FLUSH. */
    CHECK(blk_client_get_stats(&fx.stack.client)->notifications - notified <= 2);
    /* Every epoch's write lands after a FLUSH that follows the one before. */
    uint64_t n = ram_device_log_count(&fx.dev), prev_write = UINT64_MAX;
    for (uint64_t i = 0; i < 10; i++) {
        uint64_t block = 100 + (i % 2 ? 50 : 0) + i, at = n;
        for (uint64_t k = start; k < n; k++)
            if (ram_device_log_at(&fx.dev, k)->code == BLK_REQ_WRITE && ram_device_log_at(&fx.dev, k)->block == block)
                at = k;
        CHECK(at < n);
        CHECK(pattern_check(fx.image + block * BLK_TRANSFER_SIZE, 3000 + block));
        if (prev_write != UINT64_MAX) {
            bool flushed = false;
            for (uint64_t k = prev_write + 1; k < at; k++)
                flushed |= ram_device_log_at(&fx.dev, k)->code == BLK_REQ_FLUSH;
            CHECK(flushed);
        }
        prev_write = at;
    }
    blk_fixture_fini(&fx);
}

TEST(cache_invalidate_drops_clean_buffers_only)
{
    blk_fixture_options o = small_options(16);
    CHECK(fixture_with_pattern(&fx, &o));
    uint64_t clean[] = { 1, 2, 3 };
    CHECK(get_blocks(clean, 3));
    uint64_t dirty[] = { 4 };
    CHECK(write_blocks(dirty, 1, 70));
    /* Someone else changed the device under us. */
    pattern_fill(fx.image + 2 * BLK_TRANSFER_SIZE, 77);
    blk_cache_invalidate(&fx.stack.cache);
    static uint8_t back[BLK_TRANSFER_SIZE];
    CHECK_EQ(bytes_now(2 * BLK_TRANSFER_SIZE, back, sizeof back, false), BLK_OK);
    CHECK(pattern_check(back, 77));
    CHECK_EQ(bytes_now(4 * BLK_TRANSFER_SIZE, back, sizeof back, false), BLK_OK);
    CHECK(pattern_check(back, 74));
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 1);
    blk_fixture_fini(&fx);
}

/* Many fibers, random byte reads and writes on disjoint slices of shared blocks (so every
 * fiber has a private model), random completion order, a small cache: the device image
 * after the final flush equals the model. */
#define MODEL_FIBERS 16
#define MODEL_BLOCKS 48
#define SLICE (BLK_TRANSFER_SIZE / MODEL_FIBERS)
static uint8_t model[MODEL_BLOCKS * BLK_TRANSFER_SIZE];

typedef struct model_job {
    uint32_t id;
    uint64_t rng;
    bool ok;
} model_job;

static void *run_model(void *arg)
{
    model_job *j = arg;
    j->ok = true;
    uint8_t buf[SLICE * 3];
    for (uint32_t step = 0; step < 150 && j->ok; step++) {
        uint64_t block = test_rand_below(&j->rng, MODEL_BLOCKS);
        uint64_t off = block * BLK_TRANSFER_SIZE + (uint64_t)j->id * SLICE;
        uint32_t len = 1 + (uint32_t)test_rand_below(&j->rng, SLICE);
        uint32_t start = (uint32_t)test_rand_below(&j->rng, SLICE - len + 1);
        switch (test_rand_below(&j->rng, 8)) {
        case 0:
            blk_cache_order_point(&fx.stack.cache);
            break;
        case 1:
            j->ok = blk_cache_writeback_some(&fx.stack.cache) == BLK_OK;
            break;
        case 2:
        case 3:
        case 4:
            for (uint32_t i = 0; i < len; i++)
                buf[i] = (uint8_t)test_rand(&j->rng);
            memcpy(model + off + start, buf, len);
            j->ok = blk_cache_write_bytes(&fx.stack.cache, off + start, buf, len) == BLK_OK;
            break;
        default:
            j->ok = blk_cache_read_bytes(&fx.stack.cache, off + start, buf, len) == BLK_OK &&
                    memcmp(buf, model + off + start, len) == 0;
            break;
        }
    }
    return NULL;
}

TEST(cache_many_fibers_match_a_model)
{
    blk_fixture_options o = small_options(12);
    o.queue_capacity = 8;
    CHECK(fixture_with_pattern(&fx, &o));
    memcpy(model, fx.image, sizeof model);
    static model_job jobs[MODEL_FIBERS];
    for (uint32_t i = 0; i < MODEL_FIBERS; i++) {
        jobs[i] = (model_job){ .id = i, .rng = test_seed() * 1000 + i };
        CHECK(blk_fixture_spawn(&fx, run_model, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < MODEL_FIBERS; i++)
        CHECK_MSG(jobs[i].ok, "fiber %u saw data different from its model", i);
    CHECK_EQ(flush_now(), BLK_OK);
    CHECK(memcmp(fx.image, model, sizeof model) == 0);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK(s->evictions > 0);
    CHECK(s->hits > 0);
    blk_fixture_fini(&fx);
}
