/* In-process driver rig for tests and benchmarks (see blk_test_rig.h). */
#include "tests/support/blk_test_rig.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int blk_rig_open(blk_test_rig *rig, const blk_driver_config *config, uint32_t capacity, size_t data_size)
{
    memset(rig, 0, sizeof *rig);
    rig->req_mem = calloc(1, blk_req_queue_bytes(capacity));
    rig->resp_mem = calloc(1, blk_resp_queue_bytes(capacity));
    rig->data = mmap(NULL, data_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rig->data_size = data_size;
    if (rig->data == MAP_FAILED)
        rig->data = NULL;
    if (!rig->req_mem || !rig->resp_mem || !rig->data) {
        blk_rig_close(rig);
        return 12;
    }
    blk_queue_init(&rig->queues, rig->req_mem, rig->resp_mem, capacity);
    int error;
    rig->driver = blk_driver_open(config, &rig->info, rig->queues, rig->data, data_size, &error);
    if (!rig->driver)
        blk_rig_close(rig);
    return rig->driver ? 0 : error;
}

void blk_rig_close(blk_test_rig *rig)
{
    blk_driver_close(rig->driver);
    free(rig->req_mem);
    free(rig->resp_mem);
    if (rig->data)
        munmap(rig->data, rig->data_size);
    memset(rig, 0, sizeof *rig);
}

uint32_t blk_rig_collect(blk_test_rig *rig, blk_response *out, uint32_t max, int64_t timeout_ns)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        blk_driver_poll(rig->driver);
        uint32_t n = blk_dequeue_responses(&rig->queues, out, max);
        if (n > 0)
            return n;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed = (now.tv_sec - start.tv_sec) * 1000000000ll + (now.tv_nsec - start.tv_nsec);
        if (timeout_ns >= 0 && elapsed >= timeout_ns)
            return 0;
        blk_driver_wait(rig->driver, timeout_ns < 0 ? 100000000 : af_min_u64(timeout_ns - elapsed, 100000000));
    }
}

blk_response blk_rig_do(blk_test_rig *rig, blk_request req)
{
    blk_response resp = {.status = 0xffffffffu};
    if (!blk_enqueue_request(&rig->queues, req))
        return resp;
    if (blk_rig_collect(rig, &resp, 1, 10000000000ll) == 0)
        resp.status = 0xfffffffeu;
    return resp;
}

uint8_t blk_pattern_byte(uint64_t seed, uint64_t offset)
{
    uint64_t x = (offset / 8) * 0x9e3779b97f4a7c15ull + seed;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint8_t)(x >> (8 * (offset % 8)));
}

bool blk_make_image(const char *path, uint64_t blocks, uint64_t seed)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return false;
    uint8_t block[4096];
    bool ok = true;
    for (uint64_t b = 0; b < blocks && ok; b++) {
        for (size_t i = 0; i < sizeof block; i++)
            block[i] = blk_pattern_byte(seed, b * sizeof block + i);
        ok = pwrite(fd, block, sizeof block, (off_t)(b * sizeof block)) == (ssize_t)sizeof block;
    }
    close(fd);
    return ok;
}
