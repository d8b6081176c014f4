/* ram_device: an in-process sDDF block device for tests and benchmarks (hosted).
 *
 * It owns the storage-info region, the request/response queues and the data region, and
 * serves a memory image from the root context: ram_device_process() takes queued requests
 * and completes them, in FIFO order or in a seeded random order (BARRIER requests are
 * honoured: nothing after one completes before everything before it). It can hold
 * completions so that many requests pile up, inject faults, and records the completion
 * order of writes and flushes (the log) so tests can check write ordering.
 *
 * Durability model: a write lands in the image at completion; a FLUSH marks every write
 * completed before it durable (the log says which writes a FLUSH covered). With the
 * journal on, the log also keeps a copy of every block each write carried, so a power-cut
 * test can rebuild the device as a cut at any point of the log would have left it (one run
 * of the workload, then any number of cut images, rather than one re-run per cut).
 */
#ifndef ASYNCFAT_PLATFORM_SIM_RAM_DEVICE_H
#define ASYNCFAT_PLATFORM_SIM_RAM_DEVICE_H

#include "protocol/blk_queue.h"

typedef enum ram_device_order {
    RAM_DEVICE_FIFO,
    RAM_DEVICE_RANDOM,
} ram_device_order;

typedef struct ram_device_config {
    uint8_t *image;            /* image_bytes of device contents, owned by the caller */
    uint64_t image_bytes;      /* capacity = image_bytes / 4096 (a partial last block is not exposed) */
    uint16_t sector_size;      /* reported: 512, 1024, 2048 or 4096 */
    bool read_only;
    uint32_t queue_capacity;   /* entries in each queue */
    uint64_t data_region_size; /* bytes; the device allocates it */
    ram_device_order order;
    uint64_t seed;             /* for RAM_DEVICE_RANDOM */
} ram_device_config;

/* One completed request, in completion order. */
typedef struct ram_device_log_entry {
    uint32_t code;             /* blk_request_code */
    uint32_t status;           /* blk_response_status sent */
    uint64_t block;
    uint32_t count;
    uint32_t written;          /* WRITE: blocks that reached the image (count unless it failed) */
    uint8_t *data;             /* journal on, WRITE: those blocks' contents (written * 4096
                                  bytes, owned by the device); otherwise NULL */
} ram_device_log_entry;

typedef struct ram_device {
    blk_storage_info *info;
    blk_queue_handle queue;
    uint8_t *data_region;
    uint64_t data_region_size;
    uint8_t *image;
    uint64_t capacity;         /* blocks */
    ram_device_order order;
    uint64_t rng;
    bool hold;                 /* take requests but do not complete them */
    uint32_t completions_per_process; /* complete at most this many per call; 0: all.
                                         1 with FIFO order makes fibers alternate strictly
                                         at every block I/O */
    blk_request *pending;      /* taken, not yet completed */
    uint32_t pending_count, pending_max;
    blk_response *unsent;      /* completed but the response queue was full */
    uint32_t unsent_count;
    uint64_t requests_done;    /* carried out so far */
    uint64_t fail_nth;         /* requests_done value whose request fails; 0: none */
    uint64_t fail_first, fail_end; /* blocks in [first, end) fail with ERR_IO */
    uint32_t fail_codes;       /* bitmask of 1 << code the range applies to */
    ram_device_log_entry *log;
    uint64_t log_count, log_max;
    bool journal;              /* keep written data in the log */
    bool journal_failed;       /* a copy could not be allocated: the journal is incomplete */
    uint64_t notifications;    /* times the client notified us */
} ram_device;

/* Returns 0, or -1 (bad config, out of memory). */
int ram_device_init(ram_device *dev, const ram_device_config *cfg);
void ram_device_destroy(ram_device *dev);

/* Take every queued request; unless holding, complete everything pending (in the
 * configured order; at most completions_per_process of them when set) and write the
 * responses. Returns the number of responses written. */
uint32_t ram_device_process(ram_device *dev);
/* While held, requests are taken but not completed. */
static inline void ram_device_set_hold(ram_device *dev, bool hold) { dev->hold = hold; }
static inline uint32_t ram_device_pending(const ram_device *dev) { return dev->pending_count; }

/* Fault injection: the nth request carried out from now (1 = the next) fails with ERR_IO
 * and transfers nothing. 0 clears. */
void ram_device_fail_nth(ram_device *dev, uint64_t n);
/* Requests with code in `codes` (bitmask of 1 << BLK_REQ_*) touching [first, end) fail
 * with ERR_IO; blocks before the first bad one are transferred. end == first clears. */
void ram_device_fail_range(ram_device *dev, uint64_t first, uint64_t end, uint32_t codes);

/* The notify callback for blk_client_config (ctx = the device); counts calls. */
void ram_device_notify(void *ctx);

static inline uint64_t ram_device_log_count(const ram_device *dev) { return dev->log_count; }
static inline const ram_device_log_entry *ram_device_log_at(const ram_device *dev, uint64_t i)
{
    return &dev->log[i];
}
/* Drops the log (and the journal's copies). */
void ram_device_clear_log(ram_device *dev);
/* Journal on: from now on each logged WRITE keeps a copy of the blocks it wrote. */
static inline void ram_device_set_journal(ram_device *dev, bool on) { dev->journal = on; }
/* False if a journal copy or a log entry could not be allocated since the last clear. */
static inline bool ram_device_journal_complete(const ram_device *dev) { return !dev->journal_failed; }

#endif
