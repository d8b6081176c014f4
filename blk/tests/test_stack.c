/* The block stack: the layout it chooses from the data region (a 2 MiB LionsOS region and
 * the Linux system's sizes), options it honours, what it refuses, and a working stack on
 * the smallest region. */
#include "blk/tests/blk_test_util.h"
#include "platform/sim/ram_device.h"

#include <stdlib.h>

#define MIB (1024u * 1024u)

static const blk_stack_options server_like = {.fibers = 64, .read_ahead_blocks = 256};

TEST(stack_2mib_region_gets_small_staging_slots_and_most_buffers)
{
    blk_stack_layout l;
    CHECK(blk_stack_plan(&server_like, 2 * MIB, 128, &l));
    CHECK_EQ(l.staging_slots, 16);
    CHECK_EQ(l.staging_slot_blocks, 16);
    CHECK_EQ(l.buffers, 256);
    CHECK_EQ(l.read_ahead_blocks, 128); /* half the staging area */
    CHECK_EQ(l.request_slots, 128);
    CHECK((uint64_t)l.buffers + (uint64_t)l.staging_slots * l.staging_slot_blocks <= 2 * MIB / BLK_TRANSFER_SIZE);
}

TEST(stack_large_regions_get_the_full_staging_area)
{
    blk_stack_layout l;
    CHECK(blk_stack_plan(&server_like, 24 * MIB, 256, &l));
    CHECK(l.staging_slots == 16 && l.staging_slot_blocks == 256 && l.buffers == 2048);
    CHECK_EQ(l.read_ahead_blocks, 256);
    CHECK(blk_stack_plan(&server_like, 48 * MIB, 256, &l));
    CHECK(l.staging_slots == 16 && l.staging_slot_blocks == 256 && l.buffers == 8192);
}

TEST(stack_tiny_regions_shrink_the_slot_count_then_refuse)
{
    blk_stack_layout l;
    CHECK(blk_stack_plan(&server_like, 1 * MIB, 64, &l));
    CHECK(l.staging_slots == 8 && l.staging_slot_blocks == 16 && l.buffers == 128);
    CHECK(blk_stack_plan(&server_like, 64 * BLK_TRANSFER_SIZE, 64, &l));
    CHECK(l.staging_slots == 2 && l.staging_slot_blocks == 16 && l.buffers == 32);
    CHECK(!blk_stack_plan(&server_like, 16 * BLK_TRANSFER_SIZE, 64, &l));
    CHECK(!blk_stack_plan(&server_like, 0, 64, &l));
}

TEST(stack_explicit_options_are_honoured_or_refused)
{
    blk_stack_options o = {.fibers = 4, .cache_buffers = 100, .staging_slots = 3, .staging_slot_blocks = 20,
                           .read_ahead_blocks = 500, .request_slots = 7, .wear_blocks = 10};
    blk_stack_layout l;
    CHECK(blk_stack_plan(&o, 160 * BLK_TRANSFER_SIZE, 64, &l));
    CHECK(l.buffers == 100 && l.staging_slots == 3 && l.staging_slot_blocks == 20);
    CHECK_EQ(l.read_ahead_blocks, 500); /* not cut: the caller chose the staging area */
    CHECK_EQ(l.request_slots, 7);
    CHECK(!blk_stack_plan(&o, 159 * BLK_TRANSFER_SIZE, 64, &l)); /* 100 + 60 blocks do not fit */
    o.fibers = 0;
    CHECK(!blk_stack_plan(&o, 160 * BLK_TRANSFER_SIZE, 64, &l));
    o.fibers = 4;
    o.request_slots = BLK_CLIENT_MAX_SLOTS + 1;
    CHECK(!blk_stack_plan(&o, 160 * BLK_TRANSFER_SIZE, 64, &l));
}

/* A stack on a 2 MiB data region, as LionsOS gives its FAT component, serves bypass and
 * cached transfers. */
static blk_stack stack;
static blk_status job_status;

static void *transfer_job(void *arg)
{
    uint8_t *run = arg;
    for (uint32_t i = 0; i < 96; i++)
        pattern_fill(run + (uint64_t)i * BLK_TRANSFER_SIZE, 500 + i);
    job_status = blk_cache_write_run(&stack.cache, 500, 96, run);
    if (job_status == BLK_OK)
        job_status = blk_cache_flush(&stack.cache);
    memset(run, 0, 96 * BLK_TRANSFER_SIZE);
    if (job_status == BLK_OK)
        job_status = blk_cache_read_run(&stack.cache, 500, 96, run);
    for (uint32_t i = 0; i < 96 && job_status == BLK_OK; i++)
        if (!pattern_check(run + (uint64_t)i * BLK_TRANSFER_SIZE, 500 + i))
            job_status = BLK_ERR_IO;
    return NULL;
}

TEST(stack_on_a_2mib_region_reads_and_writes)
{
    uint8_t *image = calloc(1024, BLK_TRANSFER_SIZE);
    CHECK(image != NULL);
    ram_device dev;
    ram_device_config dc = {.image = image, .image_bytes = 1024 * BLK_TRANSFER_SIZE, .sector_size = 512,
                            .queue_capacity = 32, .data_region_size = 2 * MIB, .seed = test_seed()};
    CHECK_EQ(ram_device_init(&dev, &dc), 0);
    const size_t stride = 64 * 1024;
    void *stacks = aligned_alloc(4096, stride * server_like.fibers);
    blk_stack_layout l;
    CHECK(blk_stack_plan(&server_like, dev.data_region_size, dev.queue.capacity, &l));
    void *arena = aligned_alloc(16, (l.arena_bytes + 15) & ~(size_t)15);
    blk_stack_regions r = {.info = dev.info, .queue = dev.queue, .data = dev.data_region,
                           .data_size = dev.data_region_size, .cache_bytes = dev.data_region_size,
                           .notify = ram_device_notify, .notify_ctx = &dev, .stacks = stacks, .stack_stride = stride};
    CHECK_EQ(blk_stack_init(&stack, &server_like, &r, arena, l.arena_bytes - 16), BLK_ERR_INVALID);
    CHECK_EQ(blk_stack_init(&stack, &server_like, &r, arena, l.arena_bytes), BLK_OK);
    uint8_t *run = malloc(96 * BLK_TRANSFER_SIZE);
    job_status = BLK_ERR_UNSPEC;
    CHECK(fp_spawn(&stack.pool, transfer_job, run));
    while (fp_live_tasks(&stack.pool) > 0)
        CHECK(ram_device_process(&dev) | blk_stack_pass(&stack));
    CHECK_EQ(job_status, BLK_OK);
    CHECK(pattern_check(image + 595 * BLK_TRANSFER_SIZE, 595));
    free(run);
    free(arena);
    free(stacks);
    ram_device_destroy(&dev);
    free(image);
}
