/* ram_device: an in-process sDDF block device serving a memory image. */
#include "platform/sim/ram_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ram_device_init(ram_device *dev, const ram_device_config *cfg)
{
    memset(dev, 0, sizeof(*dev));
    uint16_t sector = cfg->sector_size;
    if (!cfg->image || cfg->image_bytes < BLK_TRANSFER_SIZE || cfg->queue_capacity == 0 ||
        cfg->data_region_size == 0 || sector < 512 || sector > 4096 || (sector & (sector - 1)))
        return -1;
    dev->info = aligned_alloc(4096, 4096);
    blk_req_queue *req = calloc(1, blk_req_queue_bytes(cfg->queue_capacity));
    blk_resp_queue *resp = calloc(1, blk_resp_queue_bytes(cfg->queue_capacity));
    dev->data_region_size = (cfg->data_region_size + 4095) & ~(uint64_t)4095;
    dev->data_region = aligned_alloc(4096, dev->data_region_size);
    dev->pending_max = cfg->queue_capacity;
    dev->pending = calloc(dev->pending_max, sizeof(blk_request));
    dev->unsent = calloc(dev->pending_max, sizeof(blk_response));
    if (!dev->info || !req || !resp || !dev->data_region || !dev->pending || !dev->unsent) {
        free(req);
        free(resp);
        ram_device_destroy(dev);
        return -1;
    }
    memset(dev->data_region, 0, dev->data_region_size);
    blk_queue_init(&dev->queue, req, resp, cfg->queue_capacity);
    dev->image = cfg->image;
    dev->capacity = cfg->image_bytes / BLK_TRANSFER_SIZE;
    dev->order = cfg->order;
    dev->rng = cfg->seed;

    memset(dev->info, 0, 4096);
    snprintf(dev->info->serial_number, sizeof dev->info->serial_number, "asyncfat-ram");
    dev->info->read_only = cfg->read_only;
    dev->info->sector_size = sector;
    dev->info->block_size = 1;
    dev->info->queue_depth = (uint16_t)(cfg->queue_capacity > UINT16_MAX ? UINT16_MAX : cfg->queue_capacity);
    dev->info->capacity = dev->capacity;
    blk_storage_publish_ready(dev->info);
    return 0;
}

void ram_device_destroy(ram_device *dev)
{
    if (dev->queue.req) {
        free(dev->queue.req);
        free(dev->queue.resp);
    }
    free(dev->info);
    free(dev->data_region);
    free(dev->pending);
    free(dev->unsent);
    ram_device_clear_log(dev);
    free(dev->log);
    memset(dev, 0, sizeof(*dev));
}

void ram_device_clear_log(ram_device *dev)
{
    for (uint64_t i = 0; i < dev->log_count; i++)
        free(dev->log[i].data);
    dev->log_count = 0;
    dev->journal_failed = false;
}

void ram_device_notify(void *ctx)
{
    ram_device *dev = ctx;
    dev->notifications++;
}

void ram_device_fail_nth(ram_device *dev, uint64_t n)
{
    dev->fail_nth = n ? dev->requests_done + n : 0;
}

void ram_device_fail_range(ram_device *dev, uint64_t first, uint64_t end, uint32_t codes)
{
    dev->fail_first = first;
    dev->fail_end = end;
    dev->fail_codes = codes;
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void log_append(ram_device *dev, const blk_request *r, const blk_response *resp)
{
    if (dev->log_count == dev->log_max) {
        uint64_t max = dev->log_max ? dev->log_max * 2 : 1024;
        ram_device_log_entry *log = realloc(dev->log, max * sizeof(*log));
        if (!log) {
            dev->journal_failed = true;
            return;
        }
        dev->log = log;
        dev->log_max = max;
    }
    uint32_t written = r->code == BLK_REQ_WRITE ? resp->success_count : 0;
    uint8_t *data = NULL;
    if (dev->journal && written > 0) {
        size_t bytes = (size_t)written * BLK_TRANSFER_SIZE;
        data = malloc(bytes);
        if (data)
            memcpy(data, dev->image + r->block_number * BLK_TRANSFER_SIZE, bytes);
        else
            dev->journal_failed = true;
    }
    dev->log[dev->log_count++] = (ram_device_log_entry){ .code = r->code, .status = resp->status,
                                                         .block = r->block_number, .count = r->count,
                                                         .written = written, .data = data };
}

/* Carry out one request; returns its response. */
static blk_response execute(ram_device *dev, const blk_request *r, bool fail)
{
    blk_response resp = { .status = BLK_RESP_OK, .success_count = 0, .id = r->id };
    if (r->code == BLK_REQ_FLUSH || r->code == BLK_REQ_BARRIER) {
        if (fail)
            resp.status = BLK_RESP_ERR_IO;
        return resp;
    }
    if (r->code == BLK_REQ_DISCARD) {
        /* as a device whose discarded blocks read back as zeros */
        if (r->count == 0 || r->block_number >= dev->capacity || r->count > dev->capacity - r->block_number ||
            dev->info->read_only)
            resp.status = BLK_RESP_ERR_INVALID_PARAM;
        else if (fail)
            resp.status = BLK_RESP_ERR_IO;
        else
            memset(dev->image + r->block_number * BLK_TRANSFER_SIZE, 0, (size_t)r->count * BLK_TRANSFER_SIZE);
        return resp;
    }
    if (r->code != BLK_REQ_READ && r->code != BLK_REQ_WRITE) {
        resp.status = BLK_RESP_ERR_INVALID_PARAM;
        return resp;
    }
    uint64_t bytes = (uint64_t)r->count * BLK_TRANSFER_SIZE;
    if (r->count == 0 || r->block_number >= dev->capacity || r->count > dev->capacity - r->block_number ||
        r->io_or_offset > dev->data_region_size || bytes > dev->data_region_size - r->io_or_offset) {
        resp.status = BLK_RESP_ERR_INVALID_PARAM;
        return resp;
    }
    if (r->code == BLK_REQ_WRITE && dev->info->read_only) {
        resp.status = BLK_RESP_ERR_INVALID_PARAM;
        return resp;
    }
    uint32_t good = r->count;
    if (fail) {
        good = 0;
    } else if ((dev->fail_codes & (1u << r->code)) && dev->fail_first < dev->fail_end &&
               r->block_number < dev->fail_end && dev->fail_first < r->block_number + r->count) {
        good = dev->fail_first > r->block_number ? (uint32_t)(dev->fail_first - r->block_number) : 0;
    }
    uint8_t *disk = dev->image + r->block_number * BLK_TRANSFER_SIZE;
    uint8_t *mem = dev->data_region + r->io_or_offset;
    if (r->code == BLK_REQ_READ)
        memcpy(mem, disk, (uint64_t)good * BLK_TRANSFER_SIZE);
    else
        memcpy(disk, mem, (uint64_t)good * BLK_TRANSFER_SIZE);
    resp.success_count = (uint16_t)good;
    if (good != r->count)
        resp.status = BLK_RESP_ERR_IO;
    return resp;
}

static void respond(ram_device *dev, blk_response resp)
{
    if (dev->unsent_count > 0 || !blk_enqueue_response(&dev->queue, resp))
        dev->unsent[dev->unsent_count++] = resp;
}

static void shuffle(ram_device *dev, blk_request *r, uint32_t n)
{
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(rng_next(&dev->rng) % i);
        blk_request tmp = r[i - 1];
        r[i - 1] = r[j];
        r[j] = tmp;
    }
}

static uint32_t flush_unsent(ram_device *dev)
{
    uint32_t sent = blk_enqueue_responses(&dev->queue, dev->unsent, dev->unsent_count);
    memmove(dev->unsent, dev->unsent + sent, (dev->unsent_count - sent) * sizeof(blk_response));
    dev->unsent_count -= sent;
    return sent;
}

uint32_t ram_device_process(ram_device *dev)
{
    uint32_t responses = flush_unsent(dev);
    while (dev->pending_count + dev->unsent_count < dev->pending_max) {
        uint32_t room = dev->pending_max - dev->pending_count - dev->unsent_count;
        uint32_t got = blk_dequeue_requests(&dev->queue, dev->pending + dev->pending_count, room);
        if (got == 0)
            break;
        dev->pending_count += got;
    }
    if (dev->hold)
        return responses;
    uint32_t limit = dev->completions_per_process ? dev->completions_per_process : UINT32_MAX;
    uint32_t done = 0;
    while (done < dev->pending_count && done < limit) {
        /* A barrier splits the pending requests: each segment completes before the next. */
        uint32_t seg = done;
        while (seg < dev->pending_count && dev->pending[seg].code != BLK_REQ_BARRIER)
            seg++;
        uint32_t seg_end = seg < dev->pending_count ? seg + 1 : seg;
        if (dev->order == RAM_DEVICE_RANDOM)
            shuffle(dev, dev->pending + done, seg - done);
        for (uint32_t i = done; i < seg_end && i < limit; i++) {
            const blk_request *r = &dev->pending[i];
            dev->requests_done++;
            bool fail = dev->fail_nth != 0 && dev->requests_done == dev->fail_nth;
            blk_response resp = execute(dev, r, fail);
            log_append(dev, r, &resp);
            respond(dev, resp);
            responses++;
        }
        done = seg_end < limit ? seg_end : limit;
    }
    dev->pending_count -= done;
    memmove(dev->pending, dev->pending + done, (size_t)dev->pending_count * sizeof(*dev->pending));
    return responses;
}
