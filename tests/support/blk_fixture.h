/* blk_fixture: a block stack (fiber pool, block client, buffer cache: f.stack) on an
 * in-process RAM block device, for tests of the block layer and of everything above it.
 *
 *   blk_fixture f;
 *   blk_fixture_options o = blk_fixture_defaults();
 *   o.image_bytes = 8 << 20; o.sector_size = 512;     (or o.image_path = "x.img")
 *   if (blk_fixture_init(&f, &o) != 0) ...;
 *   blk_fixture_spawn(&f, fn, arg);
 *   CHECK(blk_fixture_run(&f));                       (true: every task finished)
 *   blk_fixture_save(&f, path);                       (for fsck.fat / mtools)
 *   blk_fixture_fini(&f);
 *
 * The event loop is: device processes requests, client takes responses and wakes tasks,
 * the pool runs ready tasks, the client notifies the device once. Data-region layout:
 * cache buffers, then staging slots, then `scratch_blocks` blocks free for tests
 * (scratch_offset) to use with raw blk_client requests.
 *
 * Backends: BLK_FIXTURE_RAM (default) serves an in-memory copy of the image through
 * ram_device (f->dev: completion order, hold, faults, the write log; f->image is the
 * device contents). BLK_FIXTURE_LINUX serves the file image_path in place through the
 * io_uring driver of platform/linux (f->driver; f->image is NULL); the file is created
 * with image_bytes zero bytes if it does not exist.
 */
#ifndef ASYNCFAT_TESTS_BLK_FIXTURE_H
#define ASYNCFAT_TESTS_BLK_FIXTURE_H

#include "blk/blk.h"
#include "platform/linux/blk_driver.h"
#include "platform/sim/ram_device.h"

typedef enum blk_fixture_backend {
    BLK_FIXTURE_RAM,
    BLK_FIXTURE_LINUX,
} blk_fixture_backend;

typedef struct blk_fixture_options {
    blk_fixture_backend backend;
    uint64_t image_bytes;      /* size of a fresh zeroed image (RAM: unused with image_path) */
    const char *image_path;    /* RAM: load the image from this file; LINUX: serve this file */
    blk_driver_faults linux_faults; /* LINUX: fault injection */
    blk_device_model linux_model;   /* LINUX: modelled latency, depth, bandwidth */
    uint16_t sector_size;      /* 512 (default), 1024, 2048, 4096 */
    bool read_only;
    bool random_order;         /* complete requests in seeded random order */
    uint64_t seed;             /* for random_order; tests pass test_seed() */
    uint32_t queue_capacity;   /* default 64 */
    uint32_t client_slots;     /* default = queue_capacity */
    uint32_t cache_buffers;    /* default 256 */
    uint32_t staging_slots;    /* default 4 */
    uint32_t staging_slot_blocks; /* default 64 */
    uint32_t read_ahead_blocks;   /* default 128 */
    uint32_t scratch_blocks;   /* default 64 */
    uint32_t fibers;           /* default 64 */
    size_t stack_size;         /* per fiber, default 128 KiB */
} blk_fixture_options;

typedef struct blk_fixture {
    blk_stack stack;           /* pool, client, cache */
    blk_fixture_backend backend;
    ram_device dev;            /* RAM backend */
    blk_driver *driver;        /* LINUX backend */
    uint8_t *data_region;      /* shared with the device (either backend) */
    uint64_t data_region_size;
    uint8_t *image;            /* RAM: the device contents (>= image_bytes, whole blocks) */
    uint64_t image_bytes;      /* logical size: what blk_fixture_save writes */
    const char *image_path;
    uint64_t scratch_offset;   /* data-region offset of the scratch area */
    uint32_t scratch_blocks;
    /* owned allocations */
    blk_storage_info *linux_info;
    void *linux_req, *linux_resp;
    void *stacks;
    void *arena;
} blk_fixture;

blk_fixture_options blk_fixture_defaults(void);
/* Returns 0, or -1 with a message on stderr. */
int blk_fixture_init(blk_fixture *f, const blk_fixture_options *opts);
void blk_fixture_fini(blk_fixture *f);

fp_task *blk_fixture_spawn(blk_fixture *f, fp_entry fn, void *arg);
/* One event-loop pass; returns true if anything happened (a response, a task switch). */
bool blk_fixture_pass(blk_fixture *f);
/* Loop until every task has finished: true. False if tasks are left blocked with nothing
 * able to wake them (a deadlock, or requests held by ram_device_set_hold). */
bool blk_fixture_run(blk_fixture *f);
/* Write the image (image_bytes) to a file (LINUX: copy the served file, flushed by the
 * caller with blk_cache_flush first). Returns 0 or -1. */
int blk_fixture_save(const blk_fixture *f, const char *path);

#endif
