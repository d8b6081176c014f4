/* An in-process block driver with its queues, for tests and benchmarks: the rig owns the
 * storage info, the two queues and a data region, and drives the driver itself. */
#ifndef ASYNCFAT_PLATFORM_LINUX_TESTS_BLK_TEST_RIG_H
#define ASYNCFAT_PLATFORM_LINUX_TESTS_BLK_TEST_RIG_H

#include "platform/linux/blk_driver.h"

typedef struct blk_test_rig {
    blk_storage_info info;
    void *req_mem;
    void *resp_mem;
    uint8_t *data;
    size_t data_size;
    blk_queue_handle queues;
    blk_driver *driver;
} blk_test_rig;

/* Returns 0 or the errno value from blk_driver_open. */
int blk_rig_open(blk_test_rig *rig, const blk_driver_config *config, uint32_t capacity, size_t data_size);
void blk_rig_close(blk_test_rig *rig);

/* Poll the driver and take responses; waits (driver events) until at least one arrives or
 * timeout_ns passes. Returns how many went to out. */
uint32_t blk_rig_collect(blk_test_rig *rig, blk_response *out, uint32_t max, int64_t timeout_ns);

/* Queue one request and wait for its response (the queue must hold nothing else). */
blk_response blk_rig_do(blk_test_rig *rig, blk_request req);

/* Create a file of `blocks` 4096-byte blocks filled with a pattern derived from seed. */
bool blk_make_image(const char *path, uint64_t blocks, uint64_t seed);
/* The pattern byte at image offset `offset`. */
uint8_t blk_pattern_byte(uint64_t seed, uint64_t offset);

#endif
