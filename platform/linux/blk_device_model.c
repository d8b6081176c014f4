/* The device model of the block driver: when a request would complete on a device with a
 * fixed per-request latency, a limited number of requests served at once, and a bandwidth
 * shared by all transfers. The real I/O runs at once; its response waits for the modelled
 * time. A request starts on the device slot that frees first (or at once); it finishes
 * `latency` later, or when its transfer has passed the shared bus, whichever is later. */
#include "platform/linux/blk_driver_internal.h"

#include <stdlib.h>

bool blk_model_init(blk_driver *d)
{
    const blk_device_model *m = &d->config.model;
    if (m->latency_ns == 0 && m->bandwidth_bytes_per_s == 0)
        return true;
    d->device_slots = m->device_queue_depth ? m->device_queue_depth : d->slot_count;
    d->device_free_ns = calloc(d->device_slots, sizeof *d->device_free_ns);
    return d->device_free_ns != NULL;
}

void blk_model_free(blk_driver *d)
{
    free(d->device_free_ns);
    d->device_free_ns = NULL;
}

uint64_t blk_model_deadline(blk_driver *d, const blk_request *req, uint64_t now)
{
    if (!d->device_free_ns)
        return 0;
    const blk_device_model *m = &d->config.model;
    uint32_t first_free = 0;
    for (uint32_t i = 1; i < d->device_slots; i++)
        if (d->device_free_ns[i] < d->device_free_ns[first_free])
            first_free = i;
    uint64_t start = af_max_u64(now, d->device_free_ns[first_free]);
    uint64_t end = start + m->latency_ns;
    bool transfers = req->code == BLK_REQ_READ || req->code == BLK_REQ_WRITE;
    if (m->bandwidth_bytes_per_s && transfers) {
        uint64_t bytes = (uint64_t)req->count * BLK_TRANSFER_SIZE;
        uint64_t transfer_ns = (uint64_t)((double)bytes * 1e9 / (double)m->bandwidth_bytes_per_s);
        d->bus_free_ns = af_max_u64(d->bus_free_ns, start) + transfer_ns;
        end = af_max_u64(end, d->bus_free_ns);
    }
    d->device_free_ns[first_free] = end;
    return end;
}
