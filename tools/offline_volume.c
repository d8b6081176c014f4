/* The in-process block stack of the offline tools (see offline_volume.h). */
#include "tools/offline_volume.h"

#include "platform/linux/image_lock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    QUEUE_CAPACITY = 64,
    CACHE_BUFFERS = 1024,
    STAGING_SLOTS = 4,
    STAGING_BLOCKS = 64,
    FIBERS = 4,
    STACK_SIZE = 256 * 1024,
};

static const blk_stack_options stack_options = {
    .fibers = FIBERS,
    .cache_buffers = CACHE_BUFFERS,
    .staging_slots = STAGING_SLOTS,
    .staging_slot_blocks = STAGING_BLOCKS,
    .read_ahead_blocks = 128,
};

static void driver_notify(void *ctx) { AF_UNUSED(ctx); }

bool offline_volume_in_use(const char *path, bool write)
{
    int holder = 0;
    if (image_lock_probe(path, write, &holder) != EBUSY)
        return false;
    char why[4200];
    image_lock_busy_message(path, holder, why, sizeof why);
    fprintf(stderr, "asyncfat: %s\n", why);
    return true;
}

int offline_volume_open(offline_volume *v, const char *path, uint16_t sector_size, bool read_only)
{
    memset(v, 0, sizeof *v);
    if (offline_volume_in_use(path, !read_only)) {
        errno = EBUSY;
        return -1;
    }
    v->data_size = ((uint64_t)CACHE_BUFFERS + (uint64_t)STAGING_SLOTS * STAGING_BLOCKS) * BLK_TRANSFER_SIZE;
    blk_stack_layout layout;
    if (!blk_stack_plan(&stack_options, v->data_size, QUEUE_CAPACITY, &layout)) {
        errno = EINVAL;
        return -1;
    }
    v->info = aligned_alloc(4096, 4096);
    v->requests = calloc(1, blk_req_queue_bytes(QUEUE_CAPACITY));
    v->responses = calloc(1, blk_resp_queue_bytes(QUEUE_CAPACITY));
    v->data = aligned_alloc(4096, v->data_size);
    v->stacks = aligned_alloc(4096, (size_t)FIBERS * STACK_SIZE);
    v->arena = aligned_alloc(16, (layout.arena_bytes + 15) & ~(size_t)15);
    if (!v->info || !v->requests || !v->responses || !v->data || !v->stacks || !v->arena) {
        offline_volume_close(v);
        errno = ENOMEM;
        return -1;
    }
    memset(v->info, 0, 4096);
    blk_stack_regions regions = {
        .info = v->info,
        .data = v->data,
        .data_size = v->data_size,
        .cache_bytes = v->data_size,
        .notify = driver_notify,
        .stacks = v->stacks,
        .stack_stride = STACK_SIZE,
    };
    blk_queue_init(&regions.queue, v->requests, v->responses, QUEUE_CAPACITY);
    blk_driver_config dc = {
        .path = path,
        .sector_size = sector_size,
        .read_only = read_only,
        .queue_depth = QUEUE_CAPACITY,
    };
    int error = 0;
    v->driver = blk_driver_open(&dc, v->info, regions.queue, v->data, v->data_size, &error);
    if (!v->driver) {
        offline_volume_close(v);
        errno = error ? error : EINVAL;
        return -1;
    }
    v->device_bytes = v->info->capacity * BLK_TRANSFER_SIZE;
    if (blk_stack_init(&v->stack, &stack_options, &regions, v->arena, layout.arena_bytes) != BLK_OK) {
        offline_volume_close(v);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

void offline_volume_close(offline_volume *v)
{
    if (v->driver)
        blk_driver_close(v->driver);
    free(v->info);
    free(v->requests);
    free(v->responses);
    free(v->data);
    free(v->stacks);
    free(v->arena);
    memset(v, 0, sizeof *v);
}

static bool pass(offline_volume *v)
{
    uint32_t completed = blk_driver_poll(v->driver);
    bool ran = blk_stack_pass(&v->stack);
    return completed || ran;
}

/* With requests outstanding, wait for the driver; false when nothing is outstanding. */
static bool wait_driver(offline_volume *v)
{
    blk_queue_handle *q = &v->stack.client.queue;
    if (blk_driver_in_flight(v->driver) == 0 && q->req->tail == q->req->head)
        return false;
    blk_driver_wait(v->driver, 100 * 1000 * 1000);
    return true;
}

bool offline_volume_run(offline_volume *v, fp_entry fn, void *arg)
{
    if (!fp_spawn(&v->stack.pool, fn, arg))
        return false;
    while (fp_live_tasks(&v->stack.pool) > 0)
        if (!pass(v) && !wait_driver(v))
            return false;
    while (pass(v) || wait_driver(v))
        ;
    return true;
}

static vfs_status read_cache(void *cache, uint64_t offset, void *dst, size_t len)
{
    return vfs_status_from_blk(blk_cache_read_bytes(cache, offset, dst, len));
}

vfs_status offline_volume_locate(offline_volume *v, const fs_component_volume *where, uint64_t *offset,
                                 uint64_t *bytes, fat_bpb_error *why)
{
    int partition = where->at_offset ? FAT_PARTITION_AT_OFFSET : (int)where->partition - 1;
    return fat_partition_locate(read_cache, &v->stack.cache, v->device_bytes, blk_client_sector_size(&v->stack.client),
                                partition, where->offset, offset, bytes, why);
}
