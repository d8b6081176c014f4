/* Bypass transfers (read_run / write_run): correctness, coherence with the cache and with
 * each other, request merging, zero-copy, read-ahead and its invalidation. */
#include "blk/tests/blk_test_util.h"

#include <stdlib.h>

static blk_fixture fx;

static blk_fixture_options run_options(void)
{
    blk_fixture_options o = random_options();
    o.image_bytes = 2048 * BLK_TRANSFER_SIZE;
    o.cache_buffers = 32;
    o.staging_slots = 4;
    o.staging_slot_blocks = 16;
    o.read_ahead_blocks = 32;
    return o;
}

typedef enum run_op { OP_READ_RUN, OP_WRITE_RUN, OP_WRITE_BYTES, OP_READ_BYTES, OP_FLUSH } run_op;

typedef struct run_job {
    run_op op;
    uint64_t block;
    uint32_t count;
    uint8_t *mem;
    blk_status status;
} run_job;

static void *run_one(void *arg)
{
    run_job *j = arg;
    switch (j->op) {
    case OP_READ_RUN: j->status = blk_cache_read_run(&fx.stack.cache, j->block, j->count, j->mem); break;
    case OP_WRITE_RUN: j->status = blk_cache_write_run(&fx.stack.cache, j->block, j->count, j->mem); break;
    case OP_WRITE_BYTES:
        j->status = blk_cache_write_bytes(&fx.stack.cache, j->block * BLK_TRANSFER_SIZE, j->mem,
                                          (size_t)j->count * BLK_TRANSFER_SIZE);
        break;
    case OP_READ_BYTES:
        j->status = blk_cache_read_bytes(&fx.stack.cache, j->block * BLK_TRANSFER_SIZE, j->mem,
                                         (size_t)j->count * BLK_TRANSFER_SIZE);
        break;
    case OP_FLUSH: j->status = blk_cache_flush(&fx.stack.cache); break;
    }
    return NULL;
}

static blk_status do_op(run_op op, uint64_t block, uint32_t count, void *mem)
{
    static run_job j;
    j = (run_job){ op, block, count, mem, BLK_ERR_UNSPEC };
    if (!blk_fixture_spawn(&fx, run_one, &j) || !blk_fixture_run(&fx))
        return BLK_ERR_UNSPEC;
    return j.status;
}

static bool mem_has_pattern(const uint8_t *mem, uint64_t first_tag, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if (!pattern_check(mem + (uint64_t)i * BLK_TRANSFER_SIZE, first_tag + i))
            return false;
    return true;
}

static uint8_t *filled(uint64_t first_tag, uint32_t count)
{
    uint8_t *m = malloc((size_t)count * BLK_TRANSFER_SIZE);
    for (uint32_t i = 0; i < count; i++)
        pattern_fill(m + (uint64_t)i * BLK_TRANSFER_SIZE, first_tag + i);
    return m;
}

TEST(run_read_returns_the_device_contents_in_few_requests)
{
    blk_fixture_options o = run_options();
    o.random_order = false;
    o.read_ahead_blocks = 0;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *mem = malloc(300 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_RUN, 100, 300, mem), BLK_OK);
    CHECK(mem_has_pattern(mem, 100, 300));
    CHECK_EQ(fx.dev.requests_done, (300 + 15) / 16);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->bypass_read_blocks, 300);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->misses, 0); /* the cache was not polluted */
    CHECK_EQ(do_op(OP_READ_RUN, 2040, 9, mem), BLK_ERR_RANGE);
    CHECK_EQ(do_op(OP_READ_RUN, 2040, 0, mem), BLK_OK);
    free(mem);
    blk_fixture_fini(&fx);
}

TEST(run_read_sees_dirty_cached_blocks)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *fresh = filled(9000, 3);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 205, 3, fresh), BLK_OK); /* dirty in the cache only */
    uint8_t *mem = malloc(40 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_RUN, 190, 40, mem), BLK_OK);
    CHECK(mem_has_pattern(mem, 190, 15));
    CHECK(mem_has_pattern(mem + 15 * BLK_TRANSFER_SIZE, 9000, 3));
    CHECK(mem_has_pattern(mem + 18 * BLK_TRANSFER_SIZE, 208, 22));
    free(fresh);
    free(mem);
    blk_fixture_fini(&fx);
}

TEST(run_write_updates_cached_blocks_and_the_device)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t one[BLK_TRANSFER_SIZE];
    CHECK_EQ(do_op(OP_READ_BYTES, 52, 1, one), BLK_OK); /* block 52 cached, clean */
    uint8_t *fresh = filled(7000, 40);
    CHECK_EQ(do_op(OP_WRITE_RUN, 40, 40, fresh), BLK_OK);
    CHECK_EQ(do_op(OP_READ_BYTES, 52, 1, one), BLK_OK);
    CHECK(pattern_check(one, 7012));
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 40 * BLK_TRANSFER_SIZE, 7000, 40));
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->bypass_write_blocks, 39);
    CHECK_EQ(blk_cache_writes_of_block(&fx.stack.cache, 41), 1);
    free(fresh);
    blk_fixture_fini(&fx);
}

/* Position of the first log entry at or after `from` that writes `block` (or is a FLUSH,
 * for block UINT64_MAX); the log's length if none. */
static uint64_t log_find(uint64_t from, uint64_t block)
{
    uint64_t n = ram_device_log_count(&fx.dev);
    for (uint64_t i = from; i < n; i++) {
        const ram_device_log_entry *e = ram_device_log_at(&fx.dev, i);
        if (block == UINT64_MAX ? e->code == BLK_REQ_FLUSH
                                : e->code == BLK_REQ_WRITE && block >= e->block && block < e->block + e->count)
            return i;
    }
    return n;
}

TEST(run_write_goes_out_at_once_and_later_epochs_wait_for_it)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *a = filled(100, 1);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 5, 1, a), BLK_OK);
    blk_cache_order_point(&fx.stack.cache);
    uint8_t *b = filled(200, 8);
    /* File data depends on no earlier epoch: it is not held back behind block 5. */
    CHECK_EQ(do_op(OP_WRITE_RUN, 500, 8, b), BLK_OK);
    while (fx.dev.pending_count > 0)
        blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_log_count(&fx.dev), 1);
    CHECK_EQ(ram_device_log_at(&fx.dev, 0)->block, 500);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 500 * BLK_TRANSFER_SIZE, 200, 8));
    /* A block dirtied after an order point that follows a run goes out after a FLUSH that
     * follows the run, though nothing else was written in between. */
    uint64_t start = ram_device_log_count(&fx.dev);
    CHECK_EQ(do_op(OP_WRITE_RUN, 600, 8, b), BLK_OK);
    blk_cache_order_point(&fx.stack.cache);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 6, 1, a), BLK_OK);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    uint64_t run = log_find(start, 600), flush = log_find(run, UINT64_MAX), six = log_find(start, 6);
    CHECK(run < flush && flush < six);
    CHECK(six < ram_device_log_count(&fx.dev));
    free(a);
    free(b);
    blk_fixture_fini(&fx);
}

TEST(run_write_behind_returns_before_the_device_and_flush_waits)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *fresh = filled(900, 40);
    ram_device_set_hold(&fx.dev, true);
    static run_job w, f;
    w = (run_job){ OP_WRITE_RUN, 700, 40, fresh, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &w));
    for (int i = 0; i < 8; i++)
        blk_fixture_pass(&fx);
    CHECK_EQ(w.status, BLK_OK);               /* returned ... */
    CHECK_EQ(fp_live_tasks(&fx.stack.pool), 0);
    CHECK(ram_device_pending(&fx.dev) >= 1);  /* ... with its writes still at the device */
    /* The caller's memory is free to change: the data was copied when sent. */
    memset(fresh, 0, 40 * BLK_TRANSFER_SIZE);
    f = (run_job){ OP_FLUSH, 0, 0, NULL, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &f));
    for (int i = 0; i < 8; i++)
        blk_fixture_pass(&fx);
    CHECK_EQ(f.status, BLK_ERR_UNSPEC);       /* the flush waits for them */
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(f.status, BLK_OK);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 900, 40));
    CHECK(log_find(0, 739) < log_find(0, UINT64_MAX));
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->write_behind_blocks, 40);
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_write_behind_failure_keeps_the_data_for_write_back)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 710, 711, 1u << BLK_REQ_WRITE);
    uint8_t *fresh = filled(900, 40);
    CHECK_EQ(do_op(OP_WRITE_RUN, 700, 40, fresh), BLK_OK);
    while (fx.dev.pending_count > 0)
        blk_fixture_pass(&fx);
    /* The run 700-715 failed on the device, yet reads see what was written. */
    CHECK(pattern_check(fx.image + 710 * BLK_TRANSFER_SIZE, 710));
    uint8_t *back = malloc(40 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_RUN, 700, 40, back), BLK_OK);
    CHECK(mem_has_pattern(back, 900, 40));
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 16);
    /* Write-back tries again: the device still fails, the flush says so, nothing is lost. */
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_ERR_IO);
    CHECK_EQ(blk_cache_dirty_count(&fx.stack.cache), 16);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 900, 40));
    free(back);
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_write_behind_failure_without_room_keeps_the_data_in_its_slot)
{
    blk_fixture_options o = run_options();
    o.cache_buffers = 4; /* too few to take a failed run of 16 */
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 710, 711, 1u << BLK_REQ_WRITE);
    uint8_t *fresh = filled(900, 16);
    CHECK_EQ(do_op(OP_WRITE_RUN, 700, 16, fresh), BLK_OK);
    while (fx.dev.pending_count > 0)
        blk_fixture_pass(&fx);
    /* A read of a block still only in the slot sends the write again: while the device
     * fails it, the read fails too, never returning the old contents. */
    uint8_t one[BLK_TRANSFER_SIZE];
    CHECK_EQ(do_op(OP_READ_BYTES, 712, 1, one), BLK_ERR_IO);
    CHECK_EQ(do_op(OP_READ_BYTES, 701, 1, one), BLK_OK); /* kept in a buffer */
    CHECK(pattern_check(one, 901));
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(do_op(OP_READ_BYTES, 712, 1, one), BLK_OK);
    CHECK(pattern_check(one, 912));
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 900, 16));
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_write_behind_given_up_when_slots_run_out_is_reported_once)
{
    blk_fixture_options o = run_options();
    o.cache_buffers = 4;
    o.staging_slots = 2;
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 700, 800, 1u << BLK_REQ_WRITE);
    uint8_t *fresh = filled(900, 16);
    /* Each run fails and holds a slot; the third finds none free and gives one up rather
     * than wait for a device that keeps failing. */
    for (uint64_t at = 700; at < 748; at += 16) {
        CHECK_EQ(do_op(OP_WRITE_RUN, at, 16, fresh), BLK_OK);
        while (fx.dev.pending_count > 0)
            blk_fixture_pass(&fx);
    }
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_ERR_IO);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_ERR_IO); /* the data given up */
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 732 * BLK_TRANSFER_SIZE, 900, 16)); /* the last run kept */
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_reads_zero_copy_when_memory_is_in_the_data_region)
{
    blk_fixture_options o = run_options();
    o.scratch_blocks = 64;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    CHECK_EQ(do_op(OP_READ_RUN, 1000, 64, scratch), BLK_OK);
    CHECK(mem_has_pattern(scratch, 1000, 64));
    CHECK_EQ(fx.dev.requests_done, 1); /* one request, not one per staging slot */
    for (uint32_t i = 0; i < 64; i++)
        pattern_fill(scratch + (uint64_t)i * BLK_TRANSFER_SIZE, 3000 + i);
    /* Writes are copied (written behind): the memory may change once the call returns. */
    CHECK_EQ(do_op(OP_WRITE_RUN, 1500, 64, scratch), BLK_OK);
    memset(scratch, 0, 64 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 1500 * BLK_TRANSFER_SIZE, 3000, 64));
    blk_fixture_fini(&fx);
}

/* A lone absent block read into the data region goes straight there: no cache buffer (the
 * cache neither fills nor evicts), no transfer, no staging slot. */
TEST(run_lone_block_reads_zero_copy_past_the_cache)
{
    blk_fixture_options o = run_options();
    o.random_order = false;
    o.read_ahead_blocks = 0;
    o.scratch_blocks = 4;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    CHECK_EQ(do_op(OP_READ_RUN, 500, 1, scratch), BLK_OK);
    CHECK(pattern_check(scratch, 500));
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK_EQ(fx.dev.requests_done, 1);
    CHECK_EQ(s->misses, 0);
    CHECK_EQ(s->bypass_read_blocks, 1);
    /* Between cached blocks: those come from the cache, the gap from the device. */
    uint8_t one[BLK_TRANSFER_SIZE];
    CHECK_EQ(do_op(OP_READ_BYTES, 600, 1, one), BLK_OK);
    CHECK_EQ(do_op(OP_READ_BYTES, 602, 1, one), BLK_OK);
    uint64_t misses = s->misses;
    CHECK_EQ(do_op(OP_READ_RUN, 600, 3, scratch), BLK_OK);
    CHECK(mem_has_pattern(scratch, 600, 3));
    CHECK_EQ(s->misses, misses);
    CHECK_EQ(s->bypass_read_blocks, 2);
    /* A second read of the same block goes to the device again: it was never cached. */
    CHECK_EQ(do_op(OP_READ_RUN, 500, 1, scratch + BLK_TRANSFER_SIZE), BLK_OK);
    CHECK(pattern_check(scratch + BLK_TRANSFER_SIZE, 500));
    CHECK_EQ(s->misses, misses);
    CHECK_EQ(s->bypass_read_blocks, 3);
    blk_fixture_fini(&fx);
}

/* The cache stays the truth: a dirty cached block is served from the cache, a block read
 * past the cache and then written reads back new through either path, and a block whose
 * write is only in a write behind's slot is read after that write is settled. */
TEST(run_lone_zero_copy_read_stays_coherent_with_the_cache)
{
    blk_fixture_options o = run_options();
    o.scratch_blocks = 2;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    uint8_t *fresh = filled(4000, 2);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 700, 1, fresh), BLK_OK); /* dirty, not on the device */
    uint64_t before = fx.dev.requests_done;
    CHECK_EQ(do_op(OP_READ_RUN, 700, 1, scratch), BLK_OK);
    CHECK(pattern_check(scratch, 4000));
    CHECK_EQ(fx.dev.requests_done, before);
    CHECK_EQ(do_op(OP_READ_RUN, 710, 1, scratch), BLK_OK); /* past the cache */
    CHECK(pattern_check(scratch, 710));
    CHECK_EQ(do_op(OP_WRITE_BYTES, 710, 1, fresh + BLK_TRANSFER_SIZE), BLK_OK);
    uint8_t one[BLK_TRANSFER_SIZE];
    CHECK_EQ(do_op(OP_READ_BYTES, 710, 1, one), BLK_OK);
    CHECK(pattern_check(one, 4001));
    CHECK_EQ(do_op(OP_READ_RUN, 710, 1, scratch + BLK_TRANSFER_SIZE), BLK_OK);
    CHECK(pattern_check(scratch + BLK_TRANSFER_SIZE, 4001));
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(pattern_check(fx.image + 700 * BLK_TRANSFER_SIZE, 4000));
    CHECK(pattern_check(fx.image + 710 * BLK_TRANSFER_SIZE, 4001));
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_lone_zero_copy_read_waits_for_a_bypass_write_in_flight)
{
    blk_fixture_options o = run_options();
    o.scratch_blocks = 1;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    static run_job w, r;
    uint8_t *fresh = filled(8000, 10);
    w = (run_job){ OP_WRITE_RUN, 300, 10, fresh, BLK_ERR_UNSPEC };
    r = (run_job){ OP_READ_RUN, 305, 1, scratch, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &w));
    ram_device_set_hold(&fx.dev, true);
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1);
    CHECK(blk_fixture_spawn(&fx, run_one, &r));
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1); /* the read did not go around the write */
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w.status, BLK_OK);
    CHECK_EQ(r.status, BLK_OK);
    CHECK(pattern_check(scratch, 8005));
    free(fresh);
    blk_fixture_fini(&fx);
}

/* A block another task is reading into the cache is shared, not read twice; and more lone
 * reads than the cache has buffers or transfers are all at the device at once. */
TEST(run_lone_zero_copy_reads_share_cache_reads_and_need_no_slots)
{
    enum { READERS = 48 };
    blk_fixture_options o = run_options(); /* 32 cache buffers, 32 transfers, 4 staging slots */
    o.scratch_blocks = READERS;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    static run_job cached, shared, lone[READERS];
    static uint8_t one[BLK_TRANSFER_SIZE];
    ram_device_set_hold(&fx.dev, true);
    cached = (run_job){ OP_READ_BYTES, 800, 1, one, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &cached));
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1);
    shared = (run_job){ OP_READ_RUN, 800, 1, scratch, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &shared));
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1);
    for (uint32_t i = 1; i < READERS; i++) {
        lone[i] = (run_job){ OP_READ_RUN, 1000 + 2 * i, 1, scratch + (uint64_t)i * BLK_TRANSFER_SIZE, BLK_ERR_UNSPEC };
        CHECK(blk_fixture_spawn(&fx, run_one, &lone[i]));
    }
    for (int i = 0; i < 4; i++)
        blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), READERS);
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(cached.status, BLK_OK);
    CHECK_EQ(shared.status, BLK_OK);
    CHECK(pattern_check(one, 800));
    CHECK(pattern_check(scratch, 800));
    for (uint32_t i = 1; i < READERS; i++) {
        CHECK_EQ(lone[i].status, BLK_OK);
        CHECK(pattern_check(scratch + (uint64_t)i * BLK_TRANSFER_SIZE, 1000 + 2 * i));
    }
    blk_fixture_fini(&fx);
}

TEST(run_lone_zero_copy_read_error_is_reported)
{
    blk_fixture_options o = run_options();
    o.scratch_blocks = 1;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    ram_device_fail_range(&fx.dev, 70, 71, 1u << BLK_REQ_READ);
    CHECK_EQ(do_op(OP_READ_RUN, 70, 1, scratch), BLK_ERR_IO);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(do_op(OP_READ_RUN, 70, 1, scratch), BLK_OK);
    CHECK(pattern_check(scratch, 70));
    blk_fixture_fini(&fx);
}

TEST(run_sequential_reader_gets_read_ahead)
{
    blk_fixture_options o = run_options();
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *mem = malloc(8 * BLK_TRANSFER_SIZE);
    for (uint64_t b = 0; b < 400; b += 8) {
        CHECK_EQ(do_op(OP_READ_RUN, b, 8, mem), BLK_OK);
        CHECK(mem_has_pattern(mem, b, 8));
    }
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK(s->read_ahead_blocks > 300);
    CHECK(s->read_ahead_used_blocks >= 380);
    /* Requests are read-ahead sized, not reader sized. */
    CHECK(fx.dev.requests_done < 400 / 8);
    free(mem);
    blk_fixture_fini(&fx);
}

TEST(run_read_ahead_never_returns_overwritten_data)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *mem = malloc(8 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_RUN, 0, 8, mem), BLK_OK);
    CHECK_EQ(do_op(OP_READ_RUN, 8, 8, mem), BLK_OK); /* sequential: windows from 16 on */
    CHECK(blk_cache_get_stats(&fx.stack.cache)->read_ahead_blocks > 0);
    /* Overwrite prefetched blocks three ways: bypass write, write-back and eviction, dirty. */
    uint8_t *fresh = filled(5000, 2);
    uint8_t *bypass = filled(6000, BLK_CACHE_SMALL_WRITE_BLOCKS + 1); /* large enough to bypass */
    CHECK_EQ(do_op(OP_WRITE_RUN, 17, BLK_CACHE_SMALL_WRITE_BLOCKS + 1, bypass), BLK_OK);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 20, 1, fresh), BLK_OK);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    uint8_t *other = malloc(64 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_BYTES, 1000, 64, other), BLK_OK); /* evicts block 20 */
    free(other);
    CHECK_EQ(do_op(OP_WRITE_BYTES, 23, 1, fresh + BLK_TRANSFER_SIZE), BLK_OK);
    CHECK_EQ(do_op(OP_READ_RUN, 16, 8, mem), BLK_OK);
    CHECK(pattern_check(mem, 16));
    CHECK(mem_has_pattern(mem + 1 * BLK_TRANSFER_SIZE, 6000, 3));
    CHECK(pattern_check(mem + 4 * BLK_TRANSFER_SIZE, 5000));
    CHECK(pattern_check(mem + 5 * BLK_TRANSFER_SIZE, 6004));
    CHECK(pattern_check(mem + 7 * BLK_TRANSFER_SIZE, 5001));
    free(bypass);
    free(fresh);
    free(mem);
    blk_fixture_fini(&fx);
}

TEST(run_miss_waits_for_a_bypass_write_in_flight)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    static run_job w, r;
    uint8_t *fresh = filled(8000, 10);
    static uint8_t back[BLK_TRANSFER_SIZE];
    w = (run_job){ OP_WRITE_RUN, 300, 10, fresh, BLK_ERR_UNSPEC };
    r = (run_job){ OP_READ_BYTES, 305, 1, back, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &w));
    ram_device_set_hold(&fx.dev, true);
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1); /* the write is at the device */
    CHECK(blk_fixture_spawn(&fx, run_one, &r));
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1); /* the miss did not read around it */
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w.status, BLK_OK);
    CHECK_EQ(r.status, BLK_OK);
    CHECK(pattern_check(back, 8005));
    free(fresh);
    blk_fixture_fini(&fx);
}

TEST(run_read_error_is_reported)
{
    blk_fixture_options o = run_options();
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 70, 71, 1u << BLK_REQ_READ);
    uint8_t *mem = malloc(20 * BLK_TRANSFER_SIZE);
    CHECK_EQ(do_op(OP_READ_RUN, 60, 20, mem), BLK_ERR_IO);
    ram_device_fail_range(&fx.dev, 0, 0, 0);
    CHECK_EQ(do_op(OP_READ_RUN, 60, 20, mem), BLK_OK);
    CHECK(mem_has_pattern(mem, 60, 20));
    free(mem);
    blk_fixture_fini(&fx);
}

/* Many fibers mixing run and cached access on overlapping regions, random completion
 * order: each fiber owns a set of blocks (block % FIBERS == id) so its model is exact,
 * while runs and read-ahead windows span everyone's blocks. */
#define RUN_FIBERS 8
#define RUN_BLOCKS 256
static uint8_t run_model[RUN_BLOCKS * BLK_TRANSFER_SIZE];

typedef struct mix_job {
    uint32_t id;
    uint64_t rng;
    bool ok;
} mix_job;

static bool mix_zero_copy; /* the fibers' buffers in the data region's scratch area */

static void *run_mix(void *arg)
{
    mix_job *j = arg;
    static uint8_t bufs[RUN_FIBERS][32 * BLK_TRANSFER_SIZE];
    uint8_t *buf = mix_zero_copy ? fx.dev.data_region + fx.scratch_offset + (uint64_t)j->id * 32 * BLK_TRANSFER_SIZE
                                 : bufs[j->id];
    j->ok = true;
    for (uint32_t step = 0; step < 60 && j->ok; step++) {
        uint32_t count = 1 + (uint32_t)test_rand_below(&j->rng, 32);
        uint64_t block = test_rand_below(&j->rng, RUN_BLOCKS - count + 1);
        uint64_t mine = block + (j->id + RUN_FIBERS - block % RUN_FIBERS) % RUN_FIBERS;
        switch (test_rand_below(&j->rng, 6)) {
        case 0:
            /* read a run and check only my blocks in it */
            j->ok = blk_cache_read_run(&fx.stack.cache, block, count, buf) == BLK_OK;
            for (uint64_t b = mine; j->ok && b < block + count; b += RUN_FIBERS)
                j->ok = memcmp(buf + (b - block) * BLK_TRANSFER_SIZE, run_model + b * BLK_TRANSFER_SIZE,
                               BLK_TRANSFER_SIZE) == 0;
            break;
        case 1:
            /* write a run of one block of mine (runs of several would touch others' blocks) */
            if (mine >= RUN_BLOCKS)
                break;
            for (uint32_t i = 0; i < BLK_TRANSFER_SIZE; i++)
                buf[i] = (uint8_t)test_rand(&j->rng);
            memcpy(run_model + mine * BLK_TRANSFER_SIZE, buf, BLK_TRANSFER_SIZE);
            j->ok = blk_cache_write_run(&fx.stack.cache, mine, 1, buf) == BLK_OK;
            break;
        case 2:
            if (mine >= RUN_BLOCKS)
                break;
            for (uint32_t i = 0; i < 100; i++)
                buf[i] = (uint8_t)test_rand(&j->rng);
            memcpy(run_model + mine * BLK_TRANSFER_SIZE + 7, buf, 100);
            j->ok = blk_cache_write_bytes(&fx.stack.cache, mine * BLK_TRANSFER_SIZE + 7, buf, 100) == BLK_OK;
            break;
        case 3:
            j->ok = blk_cache_writeback_some(&fx.stack.cache) == BLK_OK;
            break;
        case 4:
            if (mine >= RUN_BLOCKS)
                break;
            j->ok = blk_cache_read_bytes(&fx.stack.cache, mine * BLK_TRANSFER_SIZE, buf, BLK_TRANSFER_SIZE) == BLK_OK &&
                    memcmp(buf, run_model + mine * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE) == 0;
            break;
        default:
            /* a sequential stretch, to exercise read-ahead */
            for (uint64_t b = block; j->ok && b + 4 <= RUN_BLOCKS && b < block + 16; b += 4) {
                j->ok = blk_cache_read_run(&fx.stack.cache, b, 4, buf) == BLK_OK;
                uint64_t m = b + (j->id + RUN_FIBERS - b % RUN_FIBERS) % RUN_FIBERS;
                if (j->ok && m < b + 4)
                    j->ok = memcmp(buf + (m - b) * BLK_TRANSFER_SIZE, run_model + m * BLK_TRANSFER_SIZE,
                                   BLK_TRANSFER_SIZE) == 0;
            }
            break;
        }
    }
    return NULL;
}

static void mixed_fibers_match_a_model(bool zero_copy)
{
    blk_fixture_options o = run_options();
    o.cache_buffers = 16;
    o.queue_capacity = 8;
    o.scratch_blocks = RUN_FIBERS * 32;
    mix_zero_copy = zero_copy;
    CHECK(fixture_with_pattern(&fx, &o));
    memcpy(run_model, fx.image, sizeof run_model);
    static mix_job jobs[RUN_FIBERS];
    for (uint32_t i = 0; i < RUN_FIBERS; i++) {
        jobs[i] = (mix_job){ .id = i, .rng = test_seed() * 77 + i };
        CHECK(blk_fixture_spawn(&fx, run_mix, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < RUN_FIBERS; i++)
        CHECK_MSG(jobs[i].ok, "fiber %u saw data different from its model", i);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(memcmp(fx.image, run_model, sizeof run_model) == 0);
    blk_fixture_fini(&fx);
}

TEST(run_and_cache_mixed_fibers_match_a_model) { mixed_fibers_match_a_model(false); }

/* The same with zero-copy readers: lone blocks go past the cache while others write them. */
TEST(run_and_cache_mixed_zero_copy_fibers_match_a_model) { mixed_fibers_match_a_model(true); }

TEST(small_run_writes_are_cached_and_merged_at_write_back)
{
    blk_fixture_options o = run_options();
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *a = filled(9000, 1), *b = filled(9001, 1);
    ram_device_clear_log(&fx.dev);
    CHECK_EQ(do_op(OP_WRITE_RUN, 700, 1, a), BLK_OK);
    CHECK_EQ(do_op(OP_WRITE_RUN, 701, 1, b), BLK_OK);
    CHECK_EQ(ram_device_log_count(&fx.dev), 0); /* nothing at the device yet */
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK_EQ(ram_device_log_count(&fx.dev), 2);
    CHECK_EQ(ram_device_log_at(&fx.dev, 0)->block, 700);
    CHECK_EQ(ram_device_log_at(&fx.dev, 0)->count, 2);
    CHECK_EQ(ram_device_log_at(&fx.dev, 1)->code, BLK_REQ_FLUSH);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 9000, 2));
    free(a);
    free(b);
    blk_fixture_fini(&fx);
}

/* Block 700 written by `op`, then a flush held at the device, and the block written again
 * by `op` meanwhile: whether that second write had to wait for the device (*waited), and
 * that each flush carried its own version (ram_device reads a WRITE's buffer when it
 * completes it, so a buffer written in place and changed early would carry the second). */
static void second_write(run_op op, uint64_t in_place, bool *waited)
{
    blk_fixture_options o = run_options();
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *a = filled(9000, 1), *b = filled(9100, 1);
    CHECK_EQ(do_op(op, 700, 1, a), BLK_OK);
    ram_device_set_hold(&fx.dev, true);
    static run_job f, w;
    f = (run_job){ OP_FLUSH, 0, 0, NULL, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &f));
    for (int i = 0; i < 8; i++)
        blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 1);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->in_place_writes, in_place);
    w = (run_job){ op, 700, 1, b, BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_one, &w));
    for (int i = 0; i < 8; i++)
        blk_fixture_pass(&fx);
    *waited = w.status == BLK_ERR_UNSPEC;
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(f.status, BLK_OK);
    CHECK_EQ(w.status, BLK_OK);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 9000, 1)); /* the flushed version */
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 9100, 1));
    free(a);
    free(b);
    blk_fixture_fini(&fx);
}

/* A block written whole by write_run goes to the device from its own buffer (no staging
 * copy), so a change to it waits until the device has read the buffer. */
TEST(whole_block_writes_go_out_in_place_and_a_change_waits_for_the_device)
{
    bool waited = false;
    second_write(OP_WRITE_RUN, 1, &waited);
    CHECK(waited);
}

/* Blocks changed in part (metadata: directory entries, FAT sectors) keep the staging copy:
 * a task changing one while it is written never waits for the device. */
TEST(partly_written_blocks_go_out_copied_and_a_change_does_not_wait)
{
    bool waited = true;
    second_write(OP_WRITE_BYTES, 0, &waited);
    CHECK(!waited);
}

/* In a full cache, the buffers write-back has just cleaned go first, before blocks read
 * earlier, unless they were used again since. */
TEST(buffers_cleaned_by_write_back_are_evicted_first)
{
    blk_fixture_options o = run_options(); /* 32 buffers */
    o.random_order = false;
    CHECK(fixture_with_pattern(&fx, &o));
    uint8_t *one = malloc(BLK_TRANSFER_SIZE);
    for (uint64_t r = 0; r < 16; r++)
        CHECK_EQ(do_op(OP_READ_BYTES, 100 + r, 1, one), BLK_OK);
    uint8_t *w = filled(9000, 16);
    for (uint64_t k = 0; k < 16; k += 2) /* alone, so that none merge */
        CHECK_EQ(do_op(OP_WRITE_RUN, 300 + k, 1, w + k * BLK_TRANSFER_SIZE), BLK_OK);
    for (uint64_t k = 1; k < 16; k += 2)
        CHECK_EQ(do_op(OP_WRITE_RUN, 400 + k, 1, w + k * BLK_TRANSFER_SIZE), BLK_OK);
    CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
    CHECK_EQ(do_op(OP_READ_BYTES, 300, 1, one), BLK_OK); /* used again: kept */
    for (uint64_t m = 0; m < 8; m++)
        CHECK_EQ(do_op(OP_READ_BYTES, 1000 + m, 1, one), BLK_OK);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK_EQ(s->cleaned_evictions, 8);
    uint64_t reads = s->device_reads;
    for (uint64_t r = 0; r < 16; r++)
        CHECK_EQ(do_op(OP_READ_BYTES, 100 + r, 1, one), BLK_OK);
    CHECK_EQ(do_op(OP_READ_BYTES, 300, 1, one), BLK_OK);
    CHECK_EQ(s->device_reads, reads); /* all still cached */
    CHECK_EQ(do_op(OP_READ_BYTES, 302, 1, one), BLK_OK);
    CHECK_EQ(s->device_reads, reads + 1);
    free(one);
    free(w);
    blk_fixture_fini(&fx);
}

/* A run of blocks written whole goes out in place as one request when its buffers lie one
 * after another in the data region, as they do for a writer going forward; out of order,
 * the same run is copied into a staging slot. Either way the device gets the data. */
TEST(runs_written_whole_go_out_in_place_when_their_buffers_follow_each_other)
{
    for (int backwards = 0; backwards < 2; backwards++) {
        blk_fixture_options o = run_options();
        o.random_order = false;
        CHECK(fixture_with_pattern(&fx, &o));
        uint8_t *w = filled(9000, 8);
        for (uint32_t i = 0; i < 8; i++) {
            uint32_t k = backwards ? 7 - i : i;
            CHECK_EQ(do_op(OP_WRITE_RUN, 700 + k, 1, w + (uint64_t)k * BLK_TRANSFER_SIZE), BLK_OK);
        }
        ram_device_clear_log(&fx.dev);
        CHECK_EQ(do_op(OP_FLUSH, 0, 0, NULL), BLK_OK);
        const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
        CHECK_EQ(ram_device_log_at(&fx.dev, 0)->block, 700);
        CHECK_EQ(ram_device_log_at(&fx.dev, 0)->count, 8);
        CHECK_EQ(s->merged_requests, 1);
        CHECK_EQ(s->in_place_writes, backwards ? 0 : 1);
        CHECK(mem_has_pattern(fx.image + 700 * BLK_TRANSFER_SIZE, 9000, 8));
        free(w);
        blk_fixture_fini(&fx);
    }
}
