/* Block-layer benchmarks, on the in-process RAM device, variants compared in the same run.
 *
 *   blk_cache_hit_ns            get + release of a cached block
 *   blk_seq_read_ratio_to_raw   sequential blk_cache_read_run into memory in the data region
 *                               (zero-copy) / raw driver requests of the same size into the
 *                               data region
 *   blk_seq_read_copy_ratio_to_raw  read_run into ordinary memory (staged, with read-ahead)
 *                               / raw requests plus the copy into the same ordinary memory
 *   blk_seq_read_copy_ratio_to_raw_nocopy  the same read_run / raw requests without a copy
 *   blk_seq_read_latency_ratio_to_raw  on the Linux io_uring driver with a modelled 100 us
 *                               device latency: read_run of 64 KiB pieces (read-ahead keeps
 *                               several requests in flight) / raw 64 KiB requests one at a time
 * Each timed variant runs several rounds, interleaved; the best round counts.
 */
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_BYTES (64ull << 20)
#define RUN_BLOCKS 64u
#define ROUNDS 15
#define HIT_OPS 2000000u

static blk_fixture fx;
static uint8_t *user_memory;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double hit_ns;

static double best(double a, double b) { return a < b ? a : b; }

static void *hit_loop(void *arg)
{
    (void)arg;
    blk_buf *b;
    for (uint64_t i = 0; i < 64; i++) {
        blk_cache_get(&fx.stack.cache, i, BLK_GET_READ, &b);
        blk_cache_release(&fx.stack.cache, b);
    }
    double t0 = now_ns();
    for (uint32_t i = 0; i < HIT_OPS; i++) {
        if (blk_cache_get(&fx.stack.cache, i & 63, BLK_GET_READ, &b) != BLK_OK)
            abort();
        blk_cache_release(&fx.stack.cache, b);
    }
    hit_ns = (now_ns() - t0) / HIT_OPS;
    return NULL;
}

/* Raw: one request of RUN_BLOCKS at a time, straight on the queues, no fibers, no client. */
static double raw_read_seconds(bool copy_out)
{
    uint64_t capacity = fx.dev.capacity;
    uint8_t *scratch = fx.dev.data_region + fx.scratch_offset;
    double t0 = now_ns();
    for (uint64_t b = 0; b < capacity; b += RUN_BLOCKS) {
        blk_request req = { .code = BLK_REQ_READ, .io_or_offset = fx.scratch_offset, .block_number = b,
                            .count = RUN_BLOCKS, .id = 1 };
        if (!blk_enqueue_request(&fx.dev.queue, req))
            abort();
        ram_device_process(&fx.dev);
        blk_response resp;
        if (blk_dequeue_responses(&fx.dev.queue, &resp, 1) != 1 || resp.status != BLK_RESP_OK)
            abort();
        if (copy_out)
            memcpy(user_memory + (b % 1024) * BLK_TRANSFER_SIZE, scratch, RUN_BLOCKS * BLK_TRANSFER_SIZE);
    }
    return (now_ns() - t0) / 1e9;
}

static uint8_t *run_dst;
static void *seq_loop(void *arg)
{
    (void)arg;
    uint64_t capacity = fx.dev.capacity;
    bool zero_copy = run_dst == fx.dev.data_region + fx.scratch_offset;
    for (uint64_t b = 0; b < capacity; b += RUN_BLOCKS) {
        uint8_t *dst = zero_copy ? run_dst : run_dst + (b % 1024) * BLK_TRANSFER_SIZE;
        if (blk_cache_read_run(&fx.stack.cache, b, RUN_BLOCKS, dst) != BLK_OK)
            abort();
    }
    return NULL;
}

static double layer_read_seconds(uint8_t *dst)
{
    run_dst = dst;
    blk_cache_invalidate(&fx.stack.cache);
    double t0 = now_ns();
    fp_spawn(&fx.stack.pool, seq_loop, NULL);
    if (!blk_fixture_run(&fx))
        abort();
    return (now_ns() - t0) / 1e9;
}

#define LATENCY_IMAGE_BYTES (16ull << 20)
#define LATENCY_RUN_BLOCKS 16u

static double latency_raw_seconds(void)
{
    blk_queue_handle *q = &fx.stack.client.queue;
    double t0 = now_ns();
    for (uint64_t b = 0; b < fx.stack.client.capacity; b += LATENCY_RUN_BLOCKS) {
        blk_request req = { .code = BLK_REQ_READ, .io_or_offset = fx.scratch_offset, .block_number = b,
                            .count = LATENCY_RUN_BLOCKS, .id = 1 };
        if (!blk_enqueue_request(q, req))
            abort();
        blk_response resp;
        blk_driver_poll(fx.driver);
        while (blk_dequeue_responses(q, &resp, 1) == 0) {
            blk_driver_wait(fx.driver, 1000 * 1000);
            blk_driver_poll(fx.driver);
        }
        if (resp.status != BLK_RESP_OK)
            abort();
    }
    return (now_ns() - t0) / 1e9;
}

static void *latency_loop(void *arg)
{
    (void)arg;
    for (uint64_t b = 0; b < fx.stack.client.capacity; b += LATENCY_RUN_BLOCKS)
        if (blk_cache_read_run(&fx.stack.cache, b, LATENCY_RUN_BLOCKS, user_memory) != BLK_OK)
            abort();
    return NULL;
}

static double latency_layer_seconds(void)
{
    blk_cache_invalidate(&fx.stack.cache);
    double t0 = now_ns();
    fp_spawn(&fx.stack.pool, latency_loop, NULL);
    if (!blk_fixture_run(&fx))
        abort();
    return (now_ns() - t0) / 1e9;
}

/* Read-ahead against a device with latency: returns raw / layer, or 0 if unavailable. */
static double latency_ratio(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/asyncfat-bench-blk-XXXXXX", tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, (off_t)LATENCY_IMAGE_BYTES) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    blk_fixture_options o = blk_fixture_defaults();
    o.backend = BLK_FIXTURE_LINUX;
    o.image_path = path;
    o.staging_slots = 8;
    o.staging_slot_blocks = LATENCY_RUN_BLOCKS;
    o.read_ahead_blocks = 6 * LATENCY_RUN_BLOCKS;
    o.scratch_blocks = LATENCY_RUN_BLOCKS;
    o.fibers = 4;
    o.linux_model.latency_ns = 100 * 1000;
    double raw = 1e30, layer = 1e30;
    if (blk_fixture_init(&fx, &o) == 0) {
        for (int r = 0; r < 3; r++) {
            raw = best(raw, latency_raw_seconds());
            layer = best(layer, latency_layer_seconds());
        }
        blk_fixture_fini(&fx);
    }
    unlink(path);
    return raw < 1e30 ? raw / layer : 0;
}

int main(void)
{
    blk_fixture_options o = blk_fixture_defaults();
    o.image_bytes = IMAGE_BYTES;
    o.cache_buffers = 256;
    o.staging_slots = 4;
    o.staging_slot_blocks = RUN_BLOCKS;
    o.read_ahead_blocks = 2 * RUN_BLOCKS;
    o.scratch_blocks = RUN_BLOCKS;
    o.fibers = 4;
    if (blk_fixture_init(&fx, &o) != 0)
        return 1;
    for (uint64_t i = 0; i < IMAGE_BYTES; i += 64)
        fx.image[i] = (uint8_t)(i >> 12);
    user_memory = aligned_alloc(4096, (1024 + RUN_BLOCKS) * BLK_TRANSFER_SIZE);
    memset(user_memory, 0, (1024 + RUN_BLOCKS) * BLK_TRANSFER_SIZE);

    double hit_best = 1e30;
    for (int r = 0; r < 3; r++) {
        fp_spawn(&fx.stack.pool, hit_loop, NULL);
        if (!blk_fixture_run(&fx))
            return 1;
        hit_best = best(hit_best, hit_ns);
    }

    double raw = 1e30, raw_copy = 1e30, zero_copy = 1e30, staged = 1e30;
    for (int r = 0; r < ROUNDS; r++) {
        raw = best(raw, raw_read_seconds(false));
        zero_copy = best(zero_copy, layer_read_seconds(fx.dev.data_region + fx.scratch_offset));
        raw_copy = best(raw_copy, raw_read_seconds(true));
        staged = best(staged, layer_read_seconds(user_memory));
    }
    double mib = (double)IMAGE_BYTES / (1 << 20);
    printf("bench blk_cache_hit_ns %.1f ns\n", hit_best);
    printf("bench blk_raw_seq_read_mibps %.0f MiB/s\n", mib / raw);
    printf("bench blk_seq_read_mibps %.0f MiB/s\n", mib / zero_copy);
    printf("bench blk_seq_read_ratio_to_raw %.3f ratio\n", raw / zero_copy);
    printf("bench blk_raw_seq_read_copy_mibps %.0f MiB/s\n", mib / raw_copy);
    printf("bench blk_seq_read_copy_mibps %.0f MiB/s\n", mib / staged);
    printf("bench blk_seq_read_copy_ratio_to_raw %.3f ratio\n", raw_copy / staged);
    printf("bench blk_seq_read_copy_ratio_to_raw_nocopy %.3f ratio\n", raw / staged);
    const blk_cache_stats *s = blk_cache_get_stats(&fx.stack.cache);
    printf("bench blk_read_ahead_used_fraction %.3f ratio\n",
           s->read_ahead_blocks ? (double)s->read_ahead_used_blocks / (double)s->read_ahead_blocks : 0.0);
    blk_fixture_fini(&fx);
    double latency = latency_ratio();
    if (latency > 0)
        printf("bench blk_seq_read_latency_ratio_to_raw %.3f ratio\n", latency);
    free(user_memory);
    return 0;
}
