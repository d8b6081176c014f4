/* fz_rig: a reusable RAM-device block stack with copy-back between runs. */
#include "fuzz/fz_rig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint8_t *map_private(const char *path, uint64_t bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int fz_rig_init(fz_rig *r, const uint8_t *pristine, uint64_t bytes, uint16_t sector_size, const char *path)
{
    memset(r, 0, sizeof *r);
    if (bytes % BLK_TRANSFER_SIZE != 0)
        return -1;
    r->image_bytes = bytes;
    r->sector_size = sector_size;
    r->pristine = pristine;
    if (path && (r->image = map_private(path, bytes)) != NULL) {
        r->mapped = true;
    } else {
        r->image = malloc(bytes);
        if (r->image)
            memcpy(r->image, pristine, bytes);
    }
    r->stack_stride = FZ_RIG_STACK;
    r->tasks = calloc(FZ_RIG_FIBERS, sizeof(fp_task));
    r->stacks = aligned_alloc(4096, r->stack_stride * FZ_RIG_FIBERS);
    r->slots = calloc(FZ_RIG_QUEUE, sizeof(blk_request_slot));
    r->bufs = calloc(FZ_RIG_BUFFERS, sizeof(blk_buf));
    r->hash_size = FZ_RIG_BUFFERS;
    r->hash = calloc(r->hash_size, sizeof(uint32_t));
    r->wear_count = (uint32_t)(r->image_bytes / BLK_TRANSFER_SIZE);
    r->wear = calloc(r->wear_count, sizeof(uint32_t));
    if (!r->image || !r->tasks || !r->stacks || !r->slots || !r->bufs || !r->hash || !r->wear) {
        fz_rig_fini(r);
        return -1;
    }
    return 0;
}

void fz_rig_fini(fz_rig *r)
{
    if (r->dev.info)
        ram_device_destroy(&r->dev);
    if (r->mapped)
        munmap(r->image, r->image_bytes);
    else
        free(r->image);
    free(r->tasks);
    free(r->stacks);
    free(r->slots);
    free(r->bufs);
    free(r->hash);
    free(r->wear);
    free(r->dirty);
    memset(r, 0, sizeof *r);
}

static void restore(fz_rig *r, uint64_t offset, uint64_t length)
{
    if (offset >= r->image_bytes)
        return;
    if (length > r->image_bytes - offset)
        length = r->image_bytes - offset;
    memcpy(r->image + offset, r->pristine + offset, length);
}

static uint64_t data_region_bytes(void)
{
    return (uint64_t)FZ_RIG_BUFFERS * BLK_TRANSFER_SIZE + (uint64_t)FZ_RIG_STAGING_SLOTS * FZ_RIG_STAGING_BLOCKS * BLK_TRANSFER_SIZE;
}

/* The device is made once; a run starts from empty queues and counters. */
static int device_reset(fz_rig *r, bool read_only)
{
    ram_device *d = &r->dev;
    if (!d->info) {
        ram_device_config dc = {
            .image = r->image,
            .image_bytes = r->image_bytes,
            .sector_size = r->sector_size,
            .queue_capacity = FZ_RIG_QUEUE,
            .data_region_size = data_region_bytes(),
            .order = RAM_DEVICE_FIFO,
            .seed = 1,
        };
        if (ram_device_init(d, &dc) != 0)
            return -1;
    }
    blk_req_queue *req = d->queue.req;
    blk_resp_queue *resp = d->queue.resp;
    memset(req, 0, blk_req_queue_bytes(FZ_RIG_QUEUE));
    memset(resp, 0, blk_resp_queue_bytes(FZ_RIG_QUEUE));
    blk_queue_init(&d->queue, req, resp, FZ_RIG_QUEUE);
    d->hold = false;
    d->completions_per_process = 0;
    d->pending_count = d->unsent_count = 0;
    d->requests_done = d->fail_nth = d->fail_first = d->fail_end = 0;
    d->fail_codes = 0;
    d->log_count = 0;
    d->notifications = 0;
    d->info->read_only = read_only;
    return 0;
}

int fz_rig_begin(fz_rig *r, bool read_only)
{
    if (r->live) {
        for (uint64_t i = 0; i < r->dev.log_count; i++) {
            const ram_device_log_entry *e = &r->dev.log[i];
            if (e->code == BLK_REQ_WRITE)
                restore(r, e->block * BLK_TRANSFER_SIZE, (uint64_t)e->count * BLK_TRANSFER_SIZE);
        }
        for (size_t i = 0; i < r->dirty_count; i++)
            restore(r, r->dirty[i].offset, r->dirty[i].length);
    }
    r->dirty_count = 0;
    r->live = false;
    r->read_only = read_only;
    uint64_t buffers_bytes = (uint64_t)FZ_RIG_BUFFERS * BLK_TRANSFER_SIZE;
    uint32_t staging_slots = FZ_RIG_STAGING_SLOTS, staging_blocks = FZ_RIG_STAGING_BLOCKS;
    if (device_reset(r, read_only) != 0)
        return -1;
    r->live = true;
    memset(r->tasks, 0, FZ_RIG_FIBERS * sizeof(fp_task));
    fp_config pc = {.tasks = r->tasks, .slot_count = FZ_RIG_FIBERS, .stack_arena = r->stacks, .slot_stride = r->stack_stride};
    if (fp_init(&r->pool, &pc) != FP_OK)
        return -1;
    memset(r->slots, 0, FZ_RIG_QUEUE * sizeof(blk_request_slot));
    blk_client_config cc = {
        .pool = &r->pool,
        .info = r->dev.info,
        .queue = r->dev.queue,
        .data_region = r->dev.data_region,
        .data_region_size = r->dev.data_region_size,
        .notify = ram_device_notify,
        .notify_ctx = &r->dev,
        .slots = r->slots,
        .slot_count = FZ_RIG_QUEUE,
    };
    if (blk_client_init(&r->client, &cc) != BLK_OK)
        return -1;
    memset(r->bufs, 0, FZ_RIG_BUFFERS * sizeof(blk_buf));
    memset(r->hash, 0, r->hash_size * sizeof(uint32_t));
    memset(r->wear, 0, r->wear_count * sizeof(uint32_t));
    blk_cache_config kc = {
        .client = &r->client,
        .buffers_offset = 0,
        .buffer_count = FZ_RIG_BUFFERS,
        .bufs = r->bufs,
        .hash_heads = r->hash,
        .hash_size = r->hash_size,
        .staging_offset = buffers_bytes,
        .staging_slots = staging_slots,
        .staging_slot_blocks = staging_blocks,
        .wear = r->wear,
        .wear_count = r->wear_count,
        .read_ahead_blocks = 16,
    };
    return blk_cache_init(&r->cache, &kc) == BLK_OK ? 0 : -1;
}

void fz_rig_overlay(fz_rig *r, uint64_t offset, const void *data, uint64_t length)
{
    if (offset >= r->image_bytes || length == 0)
        return;
    if (length > r->image_bytes - offset)
        length = r->image_bytes - offset;
    if (r->dirty_count == r->dirty_max) {
        size_t max = r->dirty_max ? r->dirty_max * 2 : 16;
        fz_range *grown = realloc(r->dirty, max * sizeof *grown);
        if (!grown)
            abort();
        r->dirty = grown;
        r->dirty_max = max;
    }
    r->dirty[r->dirty_count++] = (fz_range){offset, length};
    memcpy(r->image + offset, data, length);
}

static bool pass(fz_rig *r)
{
    uint32_t completed = ram_device_process(&r->dev);
    uint32_t responses = blk_client_process_responses(&r->client);
    uint64_t switches = fp_run(&r->pool);
    blk_client_end_pass(&r->client);
    return completed || responses || switches;
}

bool fz_rig_run(fz_rig *r, fp_entry fn, void *arg)
{
    if (!fp_spawn(&r->pool, fn, arg))
        return false;
    while (fp_live_tasks(&r->pool) > 0)
        if (!pass(r))
            return false;
    while (pass(r))
        ;
    return true;
}

uint64_t fz_rig_writes(const fz_rig *r)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < r->dev.log_count; i++)
        n += r->dev.log[i].code == BLK_REQ_WRITE;
    return n;
}
