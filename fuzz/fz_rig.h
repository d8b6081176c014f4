/* fz_rig: the block stack of the libFuzzer targets (a fiber pool, the in-process RAM
 * device, a block client and a buffer cache, as tests/support/blk_fixture), built for
 * thousands of runs a second: the allocations live as long as the rig, and between runs
 * only the blocks that changed (written through the device, or overlaid by the caller)
 * are copied back from the pristine image. Hosted.
 *
 *   fz_rig r;  fz_rig_init(&r, pristine, bytes, 512);
 *   for each input: fz_rig_begin(&r); fz_rig_overlay(&r, off, data, n)...; fz_rig_run(&r, fn, arg);
 */
#ifndef ASYNCFAT_FUZZ_FZ_RIG_H
#define ASYNCFAT_FUZZ_FZ_RIG_H

#include "blk/blk.h"
#include "fiberpool/fiberpool.h"
#include "platform/sim/ram_device.h"

typedef struct fz_range {
    uint64_t offset, length;
} fz_range;

typedef struct fz_rig {
    const uint8_t *pristine;
    uint8_t *image;             /* the device contents (whole 4096-byte blocks) */
    bool mapped;                /* image is a private file mapping */
    uint64_t image_bytes;
    uint16_t sector_size;
    bool read_only;
    bool live;                  /* between fz_rig_begin and the next begin */
    ram_device dev;
    fp_pool pool;
    blk_client client;
    blk_cache cache;
    fp_task *tasks;
    void *stacks;
    size_t stack_stride;
    blk_request_slot *slots;
    blk_buf *bufs;
    uint32_t *hash;
    uint32_t hash_size;
    uint32_t *wear;
    uint32_t wear_count;
    fz_range *dirty;            /* overlaid since the last begin (device writes are in its log) */
    size_t dirty_count, dirty_max;
} fz_rig;

#define FZ_RIG_FIBERS 16u
#define FZ_RIG_STACK (128u << 10)
#define FZ_RIG_BUFFERS 64u
#define FZ_RIG_QUEUE 64u
#define FZ_RIG_STAGING_SLOTS 2u
#define FZ_RIG_STAGING_BLOCKS 16u

/* The rig restores from `pristine` (bytes long, a multiple of 4096), which must outlive it.
 * `path` (may be NULL) is a file holding the same bytes: the device image is then a
 * private mapping of it (pages copied only when written), not a copy made up front.
 * Returns 0 or -1. */
int fz_rig_init(fz_rig *r, const uint8_t *pristine, uint64_t bytes, uint16_t sector_size, const char *path);
void fz_rig_fini(fz_rig *r);
/* Undo the previous run (its writes and overlays) and set up a fresh device, client,
 * cache and pool. read_only: the device refuses writes. Returns 0 or -1. */
int fz_rig_begin(fz_rig *r, bool read_only);
/* Copy bytes over the image (clipped to it) before the run. */
void fz_rig_overlay(fz_rig *r, uint64_t offset, const void *data, uint64_t length);
/* Run fn(arg) in a task, with the event loop, until every task has finished: true; false
 * when tasks are left blocked with nothing to wake them. */
bool fz_rig_run(fz_rig *r, fp_entry fn, void *arg);
/* Writes the device carried out since fz_rig_begin. */
uint64_t fz_rig_writes(const fz_rig *r);

#endif
