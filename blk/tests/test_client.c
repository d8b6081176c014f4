/* Block client against the in-process RAM device: requests, ranges, back-pressure, errors,
 * notification batching, bogus responses. */
#include "blk/tests/blk_test_util.h"

#include <stdlib.h>

static blk_fixture fx;

typedef struct io_job {
    uint64_t block;
    uint32_t count;
    uint64_t offset;
    blk_request_code code;
    blk_status status;
    bool ran;
} io_job;

/* Submit and wait; a FLUSH through blk_client_flush. */
static void *run_io_job(void *arg)
{
    io_job *j = arg;
    if (j->code == BLK_REQ_FLUSH) {
        j->status = blk_client_flush(&fx.stack.client);
    } else {
        blk_io io;
        j->status = blk_client_submit(&fx.stack.client, j->code, j->block, j->count, j->offset, &io);
        if (j->status == BLK_OK)
            j->status = blk_io_wait(&fx.stack.client, &io);
    }
    j->ran = true;
    return NULL;
}

static uint8_t *scratch(uint32_t i)
{
    return fx.dev.data_region + fx.scratch_offset + (uint64_t)i * BLK_TRANSFER_SIZE;
}

static uint64_t scratch_offset(uint32_t i)
{
    return fx.scratch_offset + (uint64_t)i * BLK_TRANSFER_SIZE;
}

TEST(client_reports_geometry_in_transfer_blocks)
{
    static const uint16_t sizes[] = { 512, 1024, 2048, 4096 };
    for (uint32_t k = 0; k < AF_ARRAY_LEN(sizes); k++) {
        blk_fixture_options o = blk_fixture_defaults();
        o.image_bytes = (1u << 20) + 512; /* the partial last block is not exposed */
        o.sector_size = sizes[k];
        CHECK(blk_fixture_init(&fx, &o) == 0);
        CHECK_EQ(blk_client_sector_size(&fx.stack.client), sizes[k]);
        CHECK_EQ(blk_client_capacity_blocks(&fx.stack.client), (1u << 20) / BLK_TRANSFER_SIZE + 1);
        CHECK(!blk_client_read_only(&fx.stack.client));
        blk_fixture_fini(&fx);
    }
}

TEST(client_write_then_read_round_trip)
{
    blk_fixture_options o = random_options();
    CHECK(fixture_with_pattern(&fx, &o));
    for (uint32_t i = 0; i < 4; i++)
        pattern_fill(scratch(i), 1000 + i);
    io_job w = { .block = 10, .count = 4, .offset = scratch_offset(0), .code = BLK_REQ_WRITE };
    blk_fixture_spawn(&fx, run_io_job, &w);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w.status, BLK_OK);
    for (uint32_t i = 0; i < 4; i++)
        CHECK(pattern_check(fx.image + (10 + i) * BLK_TRANSFER_SIZE, 1000 + i));
    io_job r = { .block = 9, .count = 3, .offset = scratch_offset(8), .code = BLK_REQ_READ };
    blk_fixture_spawn(&fx, run_io_job, &r);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(r.status, BLK_OK);
    CHECK(pattern_check(scratch(8), 9));
    CHECK(pattern_check(scratch(9), 1000));
    CHECK(pattern_check(scratch(10), 1001));
    blk_fixture_fini(&fx);
}

TEST(client_rejects_bad_ranges_before_queuing)
{
    blk_fixture_options o = blk_fixture_defaults();
    o.image_bytes = 64 * BLK_TRANSFER_SIZE;
    CHECK(blk_fixture_init(&fx, &o) == 0);
    io_job jobs[] = {
        { .block = 64, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_READ },
        { .block = 60, .count = 5, .offset = scratch_offset(0), .code = BLK_REQ_READ },
        { .block = UINT64_MAX, .count = 2, .offset = scratch_offset(0), .code = BLK_REQ_WRITE },
        { .block = 0, .count = 0, .offset = scratch_offset(0), .code = BLK_REQ_READ },
        { .block = 0, .count = 2, .offset = fx.dev.data_region_size - BLK_TRANSFER_SIZE, .code = BLK_REQ_READ },
        { .block = 0, .count = 1, .offset = UINT64_MAX - 10, .code = BLK_REQ_WRITE },
        { .block = 63, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_READ },
    };
    blk_status want[] = { BLK_ERR_RANGE, BLK_ERR_RANGE, BLK_ERR_RANGE, BLK_ERR_INVALID,
                          BLK_ERR_RANGE, BLK_ERR_RANGE, BLK_OK };
    for (uint32_t i = 0; i < AF_ARRAY_LEN(jobs); i++)
        blk_fixture_spawn(&fx, run_io_job, &jobs[i]);
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < AF_ARRAY_LEN(jobs); i++)
        CHECK_MSG(jobs[i].status == want[i], "job %u: status %d, want %d", i, jobs[i].status, want[i]);
    CHECK_EQ(fx.dev.requests_done, 1);
    blk_fixture_fini(&fx);
}

TEST(client_read_only_device_refuses_writes)
{
    blk_fixture_options o = blk_fixture_defaults();
    o.image_bytes = 64 * BLK_TRANSFER_SIZE;
    o.read_only = true;
    CHECK(blk_fixture_init(&fx, &o) == 0);
    CHECK(blk_client_read_only(&fx.stack.client));
    io_job w = { .block = 1, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_WRITE };
    io_job f = { .code = BLK_REQ_FLUSH };
    blk_fixture_spawn(&fx, run_io_job, &w);
    blk_fixture_spawn(&fx, run_io_job, &f);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w.status, BLK_ERR_READ_ONLY);
    CHECK_EQ(f.status, BLK_OK);
    CHECK_EQ(fx.dev.requests_done, 0);
    blk_fixture_fini(&fx);
}

TEST(client_many_fibers_random_completion_order)
{
    blk_fixture_options o = random_options();
    CHECK(fixture_with_pattern(&fx, &o));
    static io_job jobs[64];
    uint64_t rng = test_seed();
    for (uint32_t i = 0; i < 64; i++) {
        jobs[i] = (io_job){ .block = test_rand_below(&rng, fx.dev.capacity), .count = 1, .offset = scratch_offset(i),
                            .code = BLK_REQ_READ };
        blk_fixture_spawn(&fx, run_io_job, &jobs[i]);
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 64; i++) {
        CHECK_EQ(jobs[i].status, BLK_OK);
        CHECK_MSG(pattern_check(scratch(i), jobs[i].block), "fiber %u got the wrong block", i);
    }
    /* All 64 were queued in the first pass: one notification for them. */
    CHECK_EQ(fx.stack.client.stats.notifications, 1);
    CHECK_EQ(fx.dev.notifications, 1);
    blk_fixture_fini(&fx);
}

TEST(client_full_queue_makes_fibers_wait)
{
    blk_fixture_options o = random_options();
    o.queue_capacity = 4;
    CHECK(fixture_with_pattern(&fx, &o));
    static io_job jobs[48];
    for (uint32_t i = 0; i < 48; i++) {
        jobs[i] = (io_job){ .block = i, .count = 1, .offset = scratch_offset(i), .code = BLK_REQ_READ };
        blk_fixture_spawn(&fx, run_io_job, &jobs[i]);
    }
    ram_device_set_hold(&fx.dev, true);
    for (int pass = 0; pass < 3; pass++)
        blk_fixture_pass(&fx);
    CHECK_EQ(ram_device_pending(&fx.dev), 4);
    CHECK_EQ(blk_client_in_flight(&fx.stack.client), 4);
    CHECK(fx.stack.client.stats.space_waits >= 44);
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 48; i++) {
        CHECK_EQ(jobs[i].status, BLK_OK);
        CHECK(pattern_check(scratch(i), i));
    }
    CHECK_EQ(fx.dev.requests_done, 48);
    CHECK_EQ(blk_client_in_flight(&fx.stack.client), 0);
    blk_fixture_fini(&fx);
}

TEST(client_error_reaches_only_the_failed_requests)
{
    blk_fixture_options o = random_options();
    CHECK(fixture_with_pattern(&fx, &o));
    ram_device_fail_range(&fx.dev, 5, 7, 1u << BLK_REQ_READ);
    static io_job jobs[16];
    for (uint32_t i = 0; i < 16; i++) {
        jobs[i] = (io_job){ .block = i, .count = 1, .offset = scratch_offset(i), .code = BLK_REQ_READ };
        blk_fixture_spawn(&fx, run_io_job, &jobs[i]);
    }
    io_job span = { .block = 3, .count = 3, .offset = scratch_offset(20), .code = BLK_REQ_READ };
    blk_fixture_spawn(&fx, run_io_job, &span);
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 16; i++) {
        blk_status want = i == 5 || i == 6 ? BLK_ERR_IO : BLK_OK;
        CHECK_MSG(jobs[i].status == want, "block %u: status %d", i, jobs[i].status);
    }
    CHECK_EQ(span.status, BLK_ERR_IO); /* a short transfer is a failure */
    CHECK_EQ(fx.stack.client.stats.errors, 3);

    ram_device_fail_range(&fx.dev, 0, 0, 0);
    ram_device_fail_nth(&fx.dev, 2);
    io_job a = { .block = 1, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_READ };
    io_job b = { .block = 2, .count = 1, .offset = scratch_offset(1), .code = BLK_REQ_WRITE };
    io_job c = { .code = BLK_REQ_FLUSH };
    fx.dev.order = RAM_DEVICE_FIFO;
    blk_fixture_spawn(&fx, run_io_job, &a);
    blk_fixture_spawn(&fx, run_io_job, &b);
    blk_fixture_spawn(&fx, run_io_job, &c);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(a.status, BLK_OK);
    CHECK_EQ(b.status, BLK_ERR_IO);
    CHECK_EQ(c.status, BLK_OK);
    blk_fixture_fini(&fx);
}

TEST(client_ignores_responses_it_never_asked_for)
{
    blk_fixture_options o = blk_fixture_defaults();
    CHECK(fixture_with_pattern(&fx, &o));
    io_job r = { .block = 3, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_READ };
    blk_fixture_spawn(&fx, run_io_job, &r);
    ram_device_set_hold(&fx.dev, true);
    blk_fixture_pass(&fx);
    blk_fixture_pass(&fx);
    /* Forged ids: out of range, a free slot, the right slot with a wrong generation. */
    uint32_t live_id = fx.dev.pending[0].id;
    blk_response forged[] = {
        { .status = BLK_RESP_OK, .success_count = 1, .id = 60000 },
        { .status = BLK_RESP_OK, .success_count = 1, .id = 5 },
        { .status = BLK_RESP_OK, .success_count = 1, .id = live_id ^ (1u << 16) },
    };
    CHECK_EQ(blk_enqueue_responses(&fx.dev.queue, forged, 3), 3);
    blk_fixture_pass(&fx);
    CHECK(!r.ran);
    CHECK_EQ(fx.stack.client.stats.bogus_responses, 3);
    ram_device_set_hold(&fx.dev, false);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(r.status, BLK_OK);
    CHECK(pattern_check(scratch(0), 3));
    /* A replay of the real response is now stale too. */
    blk_response replay = { .status = BLK_RESP_OK, .success_count = 1, .id = live_id };
    CHECK(blk_enqueue_response(&fx.dev.queue, replay));
    blk_client_process_responses(&fx.stack.client);
    CHECK_EQ(fx.stack.client.stats.bogus_responses, 4);
    blk_fixture_fini(&fx);
}

TEST(client_flush_and_barrier_reach_the_device)
{
    blk_fixture_options o = random_options();
    CHECK(fixture_with_pattern(&fx, &o));
    io_job w1 = { .block = 1, .count = 1, .offset = scratch_offset(0), .code = BLK_REQ_WRITE };
    io_job bar = { .code = BLK_REQ_BARRIER };
    io_job w2 = { .block = 2, .count = 1, .offset = scratch_offset(1), .code = BLK_REQ_WRITE };
    io_job fl = { .code = BLK_REQ_FLUSH };
    blk_fixture_spawn(&fx, run_io_job, &w1);
    blk_fixture_spawn(&fx, run_io_job, &bar);
    blk_fixture_spawn(&fx, run_io_job, &w2);
    CHECK(blk_fixture_run(&fx));
    blk_fixture_spawn(&fx, run_io_job, &fl);
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w1.status, BLK_OK);
    CHECK_EQ(bar.status, BLK_OK);
    CHECK_EQ(w2.status, BLK_OK);
    CHECK_EQ(fl.status, BLK_OK);
    CHECK_EQ(ram_device_log_count(&fx.dev), 4);
    /* The device honours the barrier even in random order. */
    CHECK_EQ(ram_device_log_at(&fx.dev, 0)->code, BLK_REQ_WRITE);
    CHECK_EQ(ram_device_log_at(&fx.dev, 0)->block, 1);
    CHECK_EQ(ram_device_log_at(&fx.dev, 1)->code, BLK_REQ_BARRIER);
    CHECK_EQ(ram_device_log_at(&fx.dev, 2)->block, 2);
    CHECK_EQ(ram_device_log_at(&fx.dev, 3)->code, BLK_REQ_FLUSH);
    blk_fixture_fini(&fx);
}

/* The fixture round trip FAT tests rely on: an mkfs.fat image in, a checked image out. */
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
    if (j->write && j->status == BLK_OK)
        j->status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(fixture_loads_an_mkfs_image_and_saves_it_back)
{
    char path[600], saved[600], cmd[2048];
    snprintf(path, sizeof path, "%s/fat.img", test_tmpdir());
    snprintf(saved, sizeof saved, "%s/fat-saved.img", test_tmpdir());
    snprintf(cmd, sizeof cmd, "mkfs.fat -C -S 512 '%s' 8193 >/dev/null", path); /* 8 MiB + 1 KiB */
    CHECK(system(cmd) == 0);
    blk_fixture_options o = blk_fixture_defaults();
    o.image_path = path;
    CHECK(blk_fixture_init(&fx, &o) == 0);
    CHECK_EQ(fx.image_bytes, 8193 * 1024);
    static uint8_t sig[2];
    static bytes_job r;
    r = (bytes_job){ .at = 510, .p = sig, .n = 2 };
    CHECK(blk_fixture_spawn(&fx, run_bytes, &r));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(r.status, BLK_OK);
    CHECK(sig[0] == 0x55 && sig[1] == 0xAA);
    /* Change the volume serial number in the boot sector (offset 39, 4 bytes). */
    static uint8_t serial[4] = { 0x78, 0x56, 0x34, 0x12 };
    static bytes_job w;
    w = (bytes_job){ .at = 39, .p = serial, .n = 4, .write = true };
    CHECK(blk_fixture_spawn(&fx, run_bytes, &w));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(w.status, BLK_OK);
    CHECK(blk_fixture_save(&fx, saved) == 0);
    blk_fixture_fini(&fx);
    snprintf(cmd, sizeof cmd, "fsck.fat -n '%s' >/dev/null 2>&1", saved);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "cmp -s -n 39 '%s' '%s' && test $(stat -c %%s '%s') -eq %d", path, saved, saved,
             8193 * 1024);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "cmp -s -n 39 '%s' '%s'", path, saved);
    CHECK(system(cmd) == 0);
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", path, saved);
    CHECK(system(cmd) != 0); /* and the serial did change */
}
