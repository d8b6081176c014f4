/* The block stack: one way to size and assemble pool, client and cache (see blk.h). */
#include "blk/blk.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static uint32_t hash_size_for(uint32_t buffers)
{
    uint32_t size = 1;
    while (size < buffers)
        size <<= 1;
    return size;
}

/* Staging for the options in `blocks` of space, keeping `keep` blocks for buffers: the
 * defaults shrink (slot size first, then slot count) where the options leave them open. */
static void choose_staging(const blk_stack_options *o, uint64_t blocks, uint64_t keep, uint32_t *slots,
                           uint32_t *slot_blocks)
{
    uint64_t room = blocks > keep ? blocks - keep : 0;
    *slots = o->staging_slots ? o->staging_slots : BLK_STACK_STAGING_SLOTS;
    *slot_blocks = o->staging_slot_blocks ? o->staging_slot_blocks : BLK_STACK_STAGING_SLOT_BLOCKS;
    while (!o->staging_slot_blocks && (uint64_t)*slots * *slot_blocks > room && *slot_blocks > BLK_STACK_MIN_SLOT_BLOCKS)
        *slot_blocks /= 2;
    if (!o->staging_slots && (uint64_t)*slots * *slot_blocks > room)
        *slots = (uint32_t)af_max_u64(room / *slot_blocks, 1);
}

bool blk_stack_plan(const blk_stack_options *o, uint64_t cache_bytes, uint32_t queue_capacity,
                    blk_stack_layout *out)
{
    uint64_t blocks = cache_bytes / BLK_TRANSFER_SIZE;
    uint64_t keep = o->cache_buffers ? o->cache_buffers : af_min_u64(BLK_STACK_MIN_BUFFERS, blocks / 2);
    uint32_t slots, slot_blocks;
    choose_staging(o, blocks, keep, &slots, &slot_blocks);
    uint64_t staging = (uint64_t)slots * slot_blocks;
    if (o->fibers == 0 || queue_capacity == 0 || staging > blocks)
        return false;
    uint64_t buffers = o->cache_buffers ? o->cache_buffers : blocks - staging;
    if (buffers == 0 || buffers >= BLK_NONE || buffers + staging > blocks)
        return false;
    uint32_t requests = o->request_slots ? o->request_slots : queue_capacity;
    if (requests > BLK_CLIENT_MAX_SLOTS)
        return false;
    bool chosen = !o->staging_slots || !o->staging_slot_blocks;
    out->buffers = (uint32_t)buffers;
    out->staging_slots = slots;
    out->staging_slot_blocks = slot_blocks;
    out->read_ahead_blocks = chosen ? (uint32_t)af_min_u64(o->read_ahead_blocks, staging / 2) : o->read_ahead_blocks;
    out->request_slots = requests;
    out->arena_bytes = round16((size_t)o->fibers * sizeof(fp_task)) +
                       round16((size_t)requests * sizeof(blk_request_slot)) +
                       round16((size_t)out->buffers * sizeof(blk_buf)) +
                       round16((size_t)hash_size_for(out->buffers) * sizeof(uint32_t)) +
                       round16((size_t)o->wear_blocks * sizeof(uint32_t));
    return true;
}

static void *carve(uint8_t **cursor, size_t bytes)
{
    void *p = *cursor;
    *cursor += round16(bytes);
    return p;
}

blk_status blk_stack_init(blk_stack *s, const blk_stack_options *o, const blk_stack_regions *r, void *arena,
                          size_t arena_size)
{
    af_memset(s, 0, sizeof(*s));
    blk_stack_layout l;
    if (!r->data || r->cache_bytes > r->data_size || !blk_stack_plan(o, r->cache_bytes, r->queue.capacity, &l) ||
        !arena || (uintptr_t)arena % 16 != 0 || arena_size < l.arena_bytes)
        return BLK_ERR_INVALID;
    uint8_t *cursor = arena;
    fp_config pc = {
        .tasks = carve(&cursor, (size_t)o->fibers * sizeof(fp_task)),
        .slot_count = o->fibers,
        .stack_arena = r->stacks,
        .slot_stride = r->stack_stride,
        .guard_size = r->guard_size,
        .stack_areas = r->stack_areas,
        .stack_area_count = r->stack_area_count,
        .paint_stacks = o->paint_stacks,
    };
    if (fp_init(&s->pool, &pc) != FP_OK)
        return BLK_ERR_INVALID;
    blk_client_config cc = {
        .pool = &s->pool,
        .info = r->info,
        .queue = r->queue,
        .data_region = r->data,
        .data_region_size = r->data_size,
        .notify = r->notify,
        .notify_ctx = r->notify_ctx,
        .slots = carve(&cursor, (size_t)l.request_slots * sizeof(blk_request_slot)),
        .slot_count = l.request_slots,
    };
    blk_status st = blk_client_init(&s->client, &cc);
    if (st != BLK_OK)
        return st;
    uint32_t hash_size = hash_size_for(l.buffers);
    blk_cache_config kc = {
        .client = &s->client,
        .buffers_offset = 0,
        .buffer_count = l.buffers,
        .bufs = carve(&cursor, (size_t)l.buffers * sizeof(blk_buf)),
        .hash_heads = carve(&cursor, (size_t)hash_size * sizeof(uint32_t)),
        .hash_size = hash_size,
        .staging_offset = (uint64_t)l.buffers * BLK_TRANSFER_SIZE,
        .staging_slots = l.staging_slots,
        .staging_slot_blocks = l.staging_slot_blocks,
        .wear = o->wear_blocks ? carve(&cursor, (size_t)o->wear_blocks * sizeof(uint32_t)) : NULL,
        .wear_count = o->wear_blocks,
        .read_ahead_blocks = l.read_ahead_blocks,
    };
    if (kc.wear)
        af_memset(kc.wear, 0, (size_t)o->wear_blocks * sizeof(uint32_t));
    return blk_cache_init(&s->cache, &kc);
}

bool blk_stack_pass(blk_stack *s)
{
    uint32_t responses = blk_client_process_responses(&s->client);
    uint64_t switches = fp_run(&s->pool);
    blk_client_end_pass(&s->client);
    return responses || switches;
}
