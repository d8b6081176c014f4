/* Block client: request slots, submission with back-pressure, response dispatch. */
#include "blk/blk.h"

static blk_status status_from_response(uint32_t status)
{
    switch (status) {
    case BLK_RESP_OK: return BLK_OK;
    case BLK_RESP_ERR_IO: return BLK_ERR_IO;
    case BLK_RESP_ERR_INVALID_PARAM: return BLK_ERR_INVALID;
    case BLK_RESP_ERR_NO_DEVICE: return BLK_ERR_NO_DEVICE;
    default: return BLK_ERR_UNSPEC;
    }
}

blk_status blk_client_init(blk_client *c, const blk_client_config *cfg)
{
    if (!cfg->pool || !cfg->info || !cfg->queue.req || !cfg->queue.resp || cfg->queue.capacity == 0 ||
        !cfg->data_region || !cfg->slots || cfg->slot_count == 0 || cfg->slot_count > BLK_CLIENT_MAX_SLOTS)
        return BLK_ERR_INVALID;
    if (!blk_storage_is_ready(cfg->info))
        return BLK_ERR_NO_DEVICE;
    uint16_t sector = cfg->info->sector_size;
    if (sector < 512 || sector > BLK_TRANSFER_SIZE || !af_is_pow2(sector))
        return BLK_ERR_INVALID;

    af_memset(c, 0, sizeof(*c));
    c->pool = cfg->pool;
    c->info = cfg->info;
    c->queue = cfg->queue;
    c->data_region = cfg->data_region;
    c->data_region_size = cfg->data_region_size;
    c->notify = cfg->notify;
    c->notify_ctx = cfg->notify_ctx;
    c->slots = cfg->slots;
    /* Never more in flight than the response queue holds, so the driver can always answer. */
    c->slot_count = af_min_u32(cfg->slot_count, cfg->queue.capacity);
    c->sector_size = sector;
    c->read_only = cfg->info->read_only;
    c->capacity = cfg->info->capacity;
    fp_queue_init(&c->space_waiters);
    c->free_slot = BLK_NONE;
    for (uint32_t i = c->slot_count; i-- > 0;) {
        c->slots[i] = (blk_request_slot){ .next_free = c->free_slot };
        c->free_slot = i;
    }
    return BLK_OK;
}

/* Blocks while every slot is taken. A freed slot is handed straight to the oldest waiter,
 * so a newcomer cannot overtake tasks already waiting. */
static uint32_t slot_acquire(blk_client *c)
{
    if (c->free_slot == BLK_NONE || !fp_queue_empty(&c->space_waiters)) {
        c->stats.space_waits++;
        return (uint32_t)(uintptr_t)fp_wait(c->pool, &c->space_waiters);
    }
    uint32_t i = c->free_slot;
    c->free_slot = c->slots[i].next_free;
    c->in_flight++;
    return i;
}

static void slot_release(blk_client *c, uint32_t i)
{
    blk_request_slot *s = &c->slots[i];
    s->in_use = false;
    s->io = NULL;
    s->generation++;
    if (fp_wake_one(&c->space_waiters, (void *)(uintptr_t)i))
        return;
    s->next_free = c->free_slot;
    c->free_slot = i;
    c->in_flight--;
}

blk_status blk_client_submit(blk_client *c, blk_request_code code, uint64_t block, uint32_t count,
                             uint64_t data_offset, blk_io *io)
{
    if (code == BLK_REQ_READ || code == BLK_REQ_WRITE) {
        if (count == 0 || count > UINT16_MAX)
            return BLK_ERR_INVALID;
        if (block >= c->capacity || count > c->capacity - block)
            return BLK_ERR_RANGE;
        uint64_t bytes = (uint64_t)count * BLK_TRANSFER_SIZE;
        if (data_offset > c->data_region_size || bytes > c->data_region_size - data_offset)
            return BLK_ERR_RANGE;
        if (code == BLK_REQ_WRITE && c->read_only)
            return BLK_ERR_READ_ONLY;
    } else if (code == BLK_REQ_FLUSH || code == BLK_REQ_BARRIER) {
        block = 0;
        count = 0;
        data_offset = 0;
    } else if (code == BLK_REQ_DISCARD) {
        if (count == 0 || count > UINT16_MAX)
            return BLK_ERR_INVALID;
        if (block >= c->capacity || count > c->capacity - block)
            return BLK_ERR_RANGE;
        if (c->read_only)
            return BLK_ERR_READ_ONLY;
        data_offset = 0;
    } else {
        return BLK_ERR_INVALID;
    }

    /* The io is live before we may block for a slot: others can already wait on it. */
    fp_queue_init(&io->waiters);
    io->on_done = NULL;
    io->done = false;
    io->status = BLK_OK;
    io->success_count = 0;
    uint32_t i = slot_acquire(c);
    blk_request_slot *s = &c->slots[i];
    s->in_use = true;
    s->io = io;
    s->code = (uint8_t)code;
    s->count = (uint16_t)count;

    blk_request req = {
        .code = code,
        .io_or_offset = data_offset,
        .block_number = block,
        .count = (uint16_t)count,
        .id = ((uint32_t)s->generation << 16) | i,
    };
    /* Slots never outnumber the queue's capacity and the driver frees a queue entry before
     * it answers, so a task holding a slot finds room unless the driver is broken. */
    if (!blk_enqueue_request(&c->queue, req)) {
        slot_release(c, i);
        io->status = BLK_ERR_NO_DEVICE;
        io->done = true;
        fp_wake_all(&io->waiters, NULL);
        return BLK_ERR_NO_DEVICE;
    }
    c->notify_pending = true;
    c->stats.requests++;
    return BLK_OK;
}

blk_status blk_io_wait(blk_client *c, blk_io *io)
{
    while (!io->done)
        fp_wait(c->pool, &io->waiters);
    return io->status;
}

blk_status blk_client_flush(blk_client *c)
{
    if (c->read_only)
        return BLK_OK;
    blk_io io;
    blk_status st = blk_client_submit(c, BLK_REQ_FLUSH, 0, 0, 0, &io);
    return st != BLK_OK ? st : blk_io_wait(c, &io);
}

uint32_t blk_client_process_responses(blk_client *c)
{
    blk_response resp[32];
    uint32_t total = 0;
    uint32_t n;
    while ((n = blk_dequeue_responses(&c->queue, resp, AF_ARRAY_LEN(resp))) > 0) {
        total += n;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t i = resp[k].id & 0xFFFFu;
            uint16_t generation = (uint16_t)(resp[k].id >> 16);
            if (i >= c->slot_count || !c->slots[i].in_use || c->slots[i].generation != generation) {
                c->stats.bogus_responses++;
                continue;
            }
            blk_request_slot *s = &c->slots[i];
            blk_io *io = s->io;
            blk_status st = status_from_response(resp[k].status);
            /* A read or write that moved fewer blocks than asked did not happen. */
            if (st == BLK_OK && (s->code == BLK_REQ_READ || s->code == BLK_REQ_WRITE) &&
                resp[k].success_count != s->count)
                st = BLK_ERR_IO;
            if (st != BLK_OK)
                c->stats.errors++;
            io->status = st;
            io->success_count = af_min_u32(resp[k].success_count, s->count);
            io->done = true;
            slot_release(c, i);
            fp_wake_all(&io->waiters, NULL);
            if (io->on_done)
                io->on_done(io);
        }
    }
    return total;
}

void blk_client_end_pass(blk_client *c)
{
    if (!c->notify_pending)
        return;
    c->notify_pending = false;
    c->stats.notifications++;
    if (c->notify)
        c->notify(c->notify_ctx);
}
