/* The device limit: the io_uring block driver run in this process with a polling client
 * (no file system, no process hops), on an image file of the same size and the same device
 * model as the server. These are the numbers the file-system figures are divided by. The image's
 * content is overwritten: run them before mkfs.
 */
#ifndef ASYNCFAT_BENCH_REPORT_REPORT_RAW_H
#define ASYNCFAT_BENCH_REPORT_REPORT_RAW_H

#include "platform/linux/blk_driver.h"

typedef struct raw_job {
    const char *image;
    blk_device_model model;
    uint32_t depth;             /* requests in flight */
    uint16_t blocks;            /* 4096-byte blocks per request */
    bool write;
    bool sequential;            /* one pass over [0, region_blocks), then a FLUSH if writing */
    uint64_t region_blocks;     /* where requests go */
    double seconds;             /* random jobs: how long to run */
} raw_job;

/* Requests per second (sequential: over the whole pass, flush included). Exits on failure. */
double raw_run(const raw_job *job);

#endif
