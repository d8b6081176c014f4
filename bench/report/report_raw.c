/* report_raw: see report_raw.h. */
#include "bench/report/report_raw.h"
#include "bench/bench_client.h"
#include "tests/support/blk_test_rig.h"

#include <stdio.h>
#include <stdlib.h>

static void raw_issue(blk_test_rig *rig, const raw_job *job, uint32_t slot, uint64_t block)
{
    blk_request r = {
        .code = job->write ? BLK_REQ_WRITE : BLK_REQ_READ,
        .io_or_offset = (uint64_t)slot * job->blocks * BLK_TRANSFER_SIZE,
        .block_number = block,
        .count = job->blocks,
        .id = slot,
    };
    if (!blk_enqueue_request(&rig->queues, r)) {
        fprintf(stderr, "bench raw: request queue full\n");
        exit(1);
    }
}

double raw_run(const raw_job *job)
{
    blk_test_rig rig;
    blk_driver_config config = {.path = job->image, .queue_depth = job->depth + 1, .model = job->model};
    if (blk_rig_open(&rig, &config, job->depth + 1, (size_t)job->depth * job->blocks * BLK_TRANSFER_SIZE) != 0) {
        fprintf(stderr, "bench raw: cannot open %s\n", job->image);
        exit(1);
    }
    uint64_t rng = 0x2545f4914f6cdd1dull, cursor = 0, done = 0, outstanding = 0;
    uint64_t span = job->region_blocks / job->blocks;
    /* A random job runs as long again before it counts: a fresh driver has not yet mapped
     * the hot parts of an image in memory (blk_driver_mapped.c), while the server's driver
     * it is compared with has been up and warmed. */
    double start = bench_now(), counted_from = job->sequential ? start : start + job->seconds;
    double end = counted_from + job->seconds;
    for (uint32_t s = 0; s < job->depth; s++) {
        uint64_t block = job->sequential ? cursor : (bench_rand(&rng) % span) * job->blocks;
        if (job->sequential && cursor >= span * job->blocks)
            break;
        cursor += job->blocks;
        raw_issue(&rig, job, s, block);
        outstanding++;
    }
    bool more = true;
    double stopped = 0;
    while (outstanding) {
        blk_response resps[BENCH_MAX_DEPTH + 1];
        uint32_t n = blk_rig_collect(&rig, resps, BENCH_MAX_DEPTH + 1, 5000000000ll);
        if (n == 0) {
            fprintf(stderr, "bench raw: the driver stopped answering\n");
            exit(1);
        }
        double now = bench_now();
        if (!job->sequential && more && now >= end) {
            more = false;
            stopped = now;
        }
        bool counts = job->sequential || now >= counted_from;
        for (uint32_t i = 0; i < n; i++) {
            if (resps[i].status != BLK_RESP_OK) {
                fprintf(stderr, "bench raw: request failed with %u\n", resps[i].status);
                exit(1);
            }
            outstanding--;
            if (more && counts)
                done++;
            if (job->sequential && cursor >= span * job->blocks)
                continue;
            if (!more)
                continue;
            uint64_t block = job->sequential ? cursor : (bench_rand(&rng) % span) * job->blocks;
            cursor += job->blocks;
            raw_issue(&rig, job, resps[i].id, block);
            outstanding++;
        }
    }
    if (job->sequential && job->write) {
        blk_response r = blk_rig_do(&rig, (blk_request){.code = BLK_REQ_FLUSH, .id = 0});
        if (r.status != BLK_RESP_OK) {
            fprintf(stderr, "bench raw: flush failed\n");
            exit(1);
        }
    }
    double elapsed = (job->sequential ? bench_now() : stopped) - counted_from;
    blk_rig_close(&rig);
    return (double)done / elapsed;
}
