/* The block layer against the Linux io_uring driver (platform/linux) serving an image file
 * in-process: the same client and cache code as on the RAM device, real asynchronous I/O. */
#include "blk/tests/blk_test_util.h"

#include <stdio.h>
#include <stdlib.h>

#define IMAGE_BLOCKS 512u

static blk_fixture fx;
static char image_path[512];

static bool make_pattern_image(const char *name)
{
    snprintf(image_path, sizeof image_path, "%s/%s", test_tmpdir(), name);
    FILE *file = fopen(image_path, "wb");
    if (!file)
        return false;
    uint8_t block[BLK_TRANSFER_SIZE];
    bool ok = true;
    for (uint64_t b = 0; b < IMAGE_BLOCKS && ok; b++) {
        pattern_fill(block, b);
        ok = fwrite(block, 1, sizeof block, file) == sizeof block;
    }
    return fclose(file) == 0 && ok;
}

static uint8_t *read_image_file(void)
{
    FILE *file = fopen(image_path, "rb");
    uint8_t *bytes = malloc((size_t)IMAGE_BLOCKS * BLK_TRANSFER_SIZE);
    if (!file || !bytes || fread(bytes, 1, (size_t)IMAGE_BLOCKS * BLK_TRANSFER_SIZE, file) !=
                              (size_t)IMAGE_BLOCKS * BLK_TRANSFER_SIZE) {
        free(bytes);
        bytes = NULL;
    }
    if (file)
        fclose(file);
    return bytes;
}

static blk_fixture_options linux_options(void)
{
    blk_fixture_options o = blk_fixture_defaults();
    o.backend = BLK_FIXTURE_LINUX;
    o.image_path = image_path;
    o.cache_buffers = 16;
    o.queue_capacity = 16;
    o.staging_slot_blocks = 16;
    o.read_ahead_blocks = 32;
    o.fibers = 16;
    return o;
}

#define FIBERS 12
static uint8_t model[IMAGE_BLOCKS * BLK_TRANSFER_SIZE];

typedef struct mix_job {
    uint32_t id;
    uint64_t rng;
    bool ok;
} mix_job;

/* Each fiber owns blocks with block % FIBERS == id (an exact private model); runs and
 * read-ahead span everyone's blocks. */
static void *run_mix(void *arg)
{
    mix_job *j = arg;
    static uint8_t bufs[FIBERS][24 * BLK_TRANSFER_SIZE];
    uint8_t *buf = bufs[j->id];
    j->ok = true;
    for (uint32_t step = 0; step < 80 && j->ok; step++) {
        uint32_t count = 1 + (uint32_t)test_rand_below(&j->rng, 24);
        uint64_t block = test_rand_below(&j->rng, IMAGE_BLOCKS - count + 1);
        uint64_t mine = block + (j->id + FIBERS - block % FIBERS) % FIBERS;
        uint32_t at = (uint32_t)test_rand_below(&j->rng, BLK_TRANSFER_SIZE - 200);
        switch (test_rand_below(&j->rng, 6)) {
        case 0:
            j->ok = blk_cache_read_run(&fx.stack.cache, block, count, buf) == BLK_OK;
            for (uint64_t b = mine; j->ok && b < block + count; b += FIBERS)
                j->ok = memcmp(buf + (b - block) * BLK_TRANSFER_SIZE, model + b * BLK_TRANSFER_SIZE,
                               BLK_TRANSFER_SIZE) == 0;
            break;
        case 1:
            if (mine >= IMAGE_BLOCKS)
                break;
            for (uint32_t i = 0; i < BLK_TRANSFER_SIZE; i++)
                buf[i] = (uint8_t)test_rand(&j->rng);
            memcpy(model + mine * BLK_TRANSFER_SIZE, buf, BLK_TRANSFER_SIZE);
            j->ok = blk_cache_write_run(&fx.stack.cache, mine, 1, buf) == BLK_OK;
            break;
        case 2:
            if (mine >= IMAGE_BLOCKS)
                break;
            for (uint32_t i = 0; i < 200; i++)
                buf[i] = (uint8_t)test_rand(&j->rng);
            memcpy(model + mine * BLK_TRANSFER_SIZE + at, buf, 200);
            j->ok = blk_cache_write_bytes(&fx.stack.cache, mine * BLK_TRANSFER_SIZE + at, buf, 200) == BLK_OK;
            break;
        case 3:
            blk_cache_order_point(&fx.stack.cache);
            j->ok = blk_cache_writeback_some(&fx.stack.cache) == BLK_OK;
            break;
        default:
            if (mine >= IMAGE_BLOCKS)
                break;
            j->ok = blk_cache_read_bytes(&fx.stack.cache, mine * BLK_TRANSFER_SIZE, buf, BLK_TRANSFER_SIZE) == BLK_OK &&
                    memcmp(buf, model + mine * BLK_TRANSFER_SIZE, BLK_TRANSFER_SIZE) == 0;
            break;
        }
    }
    return NULL;
}

static blk_status flush_status;
static void *run_flush(void *arg)
{
    (void)arg;
    flush_status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(linux_mixed_fibers_match_a_model)
{
    CHECK(make_pattern_image("mix.img"));
    blk_fixture_options o = linux_options();
    CHECK(blk_fixture_init(&fx, &o) == 0);
    CHECK_EQ(blk_client_capacity_blocks(&fx.stack.client), IMAGE_BLOCKS);
    for (uint64_t b = 0; b < IMAGE_BLOCKS; b++)
        pattern_fill(model + b * BLK_TRANSFER_SIZE, b);
    static mix_job jobs[FIBERS];
    for (uint32_t i = 0; i < FIBERS; i++) {
        jobs[i] = (mix_job){ .id = i, .rng = test_seed() * 31 + i };
        CHECK(blk_fixture_spawn(&fx, run_mix, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < FIBERS; i++)
        CHECK_MSG(jobs[i].ok, "fiber %u saw data different from its model", i);
    flush_status = BLK_ERR_UNSPEC;
    CHECK(blk_fixture_spawn(&fx, run_flush, NULL));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(flush_status, BLK_OK);
    blk_driver_stats ds = blk_driver_get_stats(fx.driver);
    CHECK(ds.flushes >= 1);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    CHECK(s->evictions > 0);
    blk_fixture_fini(&fx);
    uint8_t *file = read_image_file();
    CHECK(file != NULL);
    bool same = memcmp(file, model, sizeof model) == 0;
    free(file);
    CHECK(same);
}

typedef struct get_job {
    uint64_t block;
    blk_status status;
    bool data_ok;
} get_job;

static void *run_get(void *arg)
{
    get_job *j = arg;
    blk_buf *b;
    j->status = blk_cache_get(&fx.stack.cache, j->block, BLK_GET_READ, &b);
    if (j->status == BLK_OK) {
        j->data_ok = pattern_check(blk_buf_data(b), j->block);
        blk_cache_release(&fx.stack.cache, b);
    }
    return NULL;
}

TEST(linux_read_error_reaches_exactly_the_waiting_fibers)
{
    CHECK(make_pattern_image("fault.img"));
    blk_fixture_options o = linux_options();
    o.linux_faults.fail_first_block = 7;
    o.linux_faults.fail_block_count = 1;
    CHECK(blk_fixture_init(&fx, &o) == 0);
    static get_job jobs[10];
    for (uint32_t i = 0; i < 10; i++) {
        jobs[i] = (get_job){ .block = i < 5 ? 7 : 20 + i, .status = BLK_ERR_UNSPEC };
        CHECK(blk_fixture_spawn(&fx, run_get, &jobs[i]));
    }
    CHECK(blk_fixture_run(&fx));
    for (uint32_t i = 0; i < 10; i++) {
        CHECK_EQ(jobs[i].status, i < 5 ? BLK_ERR_IO : BLK_OK);
        CHECK(i < 5 || jobs[i].data_ok);
    }
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->device_reads, 6);
    blk_fixture_fini(&fx);
}

typedef struct write_job {
    uint64_t first;
    uint32_t count;
    blk_status status;
} write_job;

static void *run_write_range(void *arg)
{
    write_job *j = arg;
    uint8_t data[BLK_TRANSFER_SIZE];
    j->status = BLK_OK;
    for (uint32_t i = 0; i < j->count && j->status == BLK_OK; i++) {
        pattern_fill(data, 4000 + j->first + i);
        j->status = blk_cache_write_bytes(&fx.stack.cache, (j->first + i) * BLK_TRANSFER_SIZE, data, sizeof data);
    }
    if (j->status == BLK_OK)
        j->status = blk_cache_flush(&fx.stack.cache);
    return NULL;
}

TEST(linux_write_back_sends_merged_runs_then_flush)
{
    CHECK(make_pattern_image("merge.img"));
    blk_fixture_options o = linux_options();
    CHECK(blk_fixture_init(&fx, &o) == 0);
    static write_job j;
    j = (write_job){ .first = 100, .count = 12, .status = BLK_ERR_UNSPEC };
    CHECK(blk_fixture_spawn(&fx, run_write_range, &j));
    CHECK(blk_fixture_run(&fx));
    CHECK_EQ(j.status, BLK_OK);
    blk_driver_stats ds = blk_driver_get_stats(fx.driver);
    CHECK_EQ(ds.writes, 1);
    CHECK_EQ(ds.flushes, 1);
    CHECK_EQ(blk_cache_get_stats(&fx.stack.cache)->merged_requests, 1);
    blk_fixture_fini(&fx);
    uint8_t *file = read_image_file();
    CHECK(file != NULL);
    bool ok = true;
    for (uint32_t i = 0; i < 12; i++)
        ok &= pattern_check(file + (100 + i) * BLK_TRANSFER_SIZE, 4100 + i);
    ok &= pattern_check(file + 99 * BLK_TRANSFER_SIZE, 99) && pattern_check(file + 112 * BLK_TRANSFER_SIZE, 112);
    free(file);
    CHECK(ok);
}
