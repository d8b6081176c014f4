/* The in-process block stack of the offline tools (see offline_volume.h). */
#include "tools/offline_volume.h"

#include <errno.h>
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

static void driver_notify(void *ctx) { AF_UNUSED(ctx); }

int offline_volume_open(offline_volume *v, const char *path, uint16_t sector_size, bool read_only)
{
    memset(v, 0, sizeof *v);
    uint64_t buffers_bytes = (uint64_t)CACHE_BUFFERS * BLK_TRANSFER_SIZE;
    v->data_size = buffers_bytes + (uint64_t)STAGING_SLOTS * STAGING_BLOCKS * BLK_TRANSFER_SIZE;
    v->info = aligned_alloc(4096, 4096);
    v->requests = calloc(1, blk_req_queue_bytes(QUEUE_CAPACITY));
    v->responses = calloc(1, blk_resp_queue_bytes(QUEUE_CAPACITY));
    v->data = aligned_alloc(4096, v->data_size);
    v->tasks = calloc(FIBERS, sizeof(fp_task));
    v->stacks = aligned_alloc(4096, (size_t)FIBERS * STACK_SIZE);
    v->slots = calloc(QUEUE_CAPACITY, sizeof(blk_request_slot));
    v->bufs = calloc(CACHE_BUFFERS, sizeof(blk_buf));
    v->hash = calloc(CACHE_BUFFERS, sizeof(uint32_t));
    if (!v->info || !v->requests || !v->responses || !v->data || !v->tasks || !v->stacks || !v->slots ||
        !v->bufs || !v->hash) {
        offline_volume_close(v);
        errno = ENOMEM;
        return -1;
    }
    memset(v->info, 0, 4096);
    blk_queue_handle queue;
    blk_queue_init(&queue, v->requests, v->responses, QUEUE_CAPACITY);
    blk_driver_config dc = {
        .path = path,
        .sector_size = sector_size,
        .read_only = read_only,
        .queue_depth = QUEUE_CAPACITY,
    };
    int error = 0;
    v->driver = blk_driver_open(&dc, v->info, queue, v->data, v->data_size, &error);
    if (!v->driver) {
        offline_volume_close(v);
        errno = error ? error : EINVAL;
        return -1;
    }
    v->device_bytes = v->info->capacity * BLK_TRANSFER_SIZE;

    fp_config pc = {.tasks = v->tasks, .slot_count = FIBERS, .stack_arena = v->stacks, .slot_stride = STACK_SIZE};
    blk_client_config cc = {
        .pool = &v->pool,
        .info = v->info,
        .queue = queue,
        .data_region = v->data,
        .data_region_size = v->data_size,
        .notify = driver_notify,
        .slots = v->slots,
        .slot_count = QUEUE_CAPACITY,
    };
    blk_cache_config kc = {
        .client = &v->client,
        .buffers_offset = 0,
        .buffer_count = CACHE_BUFFERS,
        .bufs = v->bufs,
        .hash_heads = v->hash,
        .hash_size = CACHE_BUFFERS,
        .staging_offset = buffers_bytes,
        .staging_slots = STAGING_SLOTS,
        .staging_slot_blocks = STAGING_BLOCKS,
        .read_ahead_blocks = 128,
    };
    if (fp_init(&v->pool, &pc) != FP_OK || blk_client_init(&v->client, &cc) != BLK_OK ||
        blk_cache_init(&v->cache, &kc) != BLK_OK) {
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
    free(v->tasks);
    free(v->stacks);
    free(v->slots);
    free(v->bufs);
    free(v->hash);
    memset(v, 0, sizeof *v);
}

static bool pass(offline_volume *v)
{
    uint32_t completed = blk_driver_poll(v->driver);
    uint32_t responses = blk_client_process_responses(&v->client);
    uint64_t switches = fp_run(&v->pool);
    blk_client_end_pass(&v->client);
    return completed || responses || switches;
}

/* With requests outstanding, wait for the driver; false when nothing is outstanding. */
static bool wait_driver(offline_volume *v)
{
    blk_queue_handle *q = &v->client.queue;
    if (blk_driver_in_flight(v->driver) == 0 && q->req->tail == q->req->head)
        return false;
    blk_driver_wait(v->driver, 100 * 1000 * 1000);
    return true;
}

bool offline_volume_run(offline_volume *v, fp_entry fn, void *arg)
{
    if (!fp_spawn(&v->pool, fn, arg))
        return false;
    while (fp_live_tasks(&v->pool) > 0)
        if (!pass(v) && !wait_driver(v))
            return false;
    while (pass(v) || wait_driver(v))
        ;
    return true;
}
