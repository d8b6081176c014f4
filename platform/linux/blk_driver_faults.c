/* Fault injection for the block driver: a failing Nth request, a failing block range, and
 * a power cut after N writes. With lose_unflushed, the driver keeps the old content of
 * every block written since the last flush; when the cut has happened and no write is in
 * flight, each such block independently gets its old content back with probability 1/2,
 * which models a volatile write cache that persisted some unflushed writes, in any order,
 * and lost the rest. */
#include "platform/linux/blk_driver_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMPTY UINT64_MAX

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static bool preimage_table_init(blk_preimage_set *set, uint32_t size)
{
    set->blocks = malloc((size_t)size * sizeof *set->blocks);
    set->index = malloc((size_t)size * sizeof *set->index);
    if (!set->blocks || !set->index)
        return false;
    for (uint32_t i = 0; i < size; i++)
        set->blocks[i] = EMPTY;
    set->table_size = size;
    return true;
}

static uint32_t slot_of(const blk_preimage_set *set, uint64_t block)
{
    uint32_t i = (uint32_t)(block * 0x9e3779b97f4a7c15ull >> 40) & (set->table_size - 1);
    while (set->blocks[i] != EMPTY && set->blocks[i] != block)
        i = (i + 1) & (set->table_size - 1);
    return i;
}

static bool preimage_grow(blk_preimage_set *set)
{
    blk_preimage_set bigger = *set;
    if (!preimage_table_init(&bigger, set->table_size * 2))
        return false;
    for (uint32_t i = 0; i < set->table_size; i++)
        if (set->blocks[i] != EMPTY) {
            uint32_t j = slot_of(&bigger, set->blocks[i]);
            bigger.blocks[j] = set->blocks[i];
            bigger.index[j] = set->index[i];
        }
    free(set->blocks);
    free(set->index);
    *set = bigger;
    return true;
}

/* Remember the current content of `block` unless it is already remembered. */
static bool preimage_save(blk_driver *d, uint64_t block)
{
    blk_preimage_set *set = &d->preimages;
    if ((set->count + 1) * 2 > set->table_size && !preimage_grow(set))
        return false;
    uint32_t i = slot_of(set, block);
    if (set->blocks[i] == block)
        return true;
    if (set->count == set->data_capacity) {
        uint32_t cap = set->data_capacity ? set->data_capacity * 2 : 64;
        uint8_t *grown = realloc(set->data, (size_t)cap * BLK_TRANSFER_SIZE);
        if (!grown)
            return false;
        set->data = grown;
        set->data_capacity = cap;
    }
    uint8_t *old = set->data + (size_t)set->count * BLK_TRANSFER_SIZE;
    if (pread(d->fd, old, BLK_TRANSFER_SIZE, (off_t)(block * BLK_TRANSFER_SIZE)) != BLK_TRANSFER_SIZE)
        memset(old, 0, BLK_TRANSFER_SIZE);
    set->blocks[i] = block;
    set->index[i] = set->count++;
    return true;
}

static void preimage_clear(blk_preimage_set *set)
{
    for (uint32_t i = 0; i < set->table_size; i++)
        set->blocks[i] = EMPTY;
    set->count = 0;
}

bool blk_faults_init(blk_driver *d)
{
    const blk_driver_faults *f = &d->config.faults;
    d->rng = f->seed;
    if (f->log_path) {
        d->log = fopen(f->log_path, "wb");
        if (!d->log)
            return false;
    }
    return !f->lose_unflushed || preimage_table_init(&d->preimages, 256);
}

void blk_faults_free(blk_driver *d)
{
    if (d->log)
        fclose(d->log);
    d->log = NULL;
    free(d->preimages.blocks);
    free(d->preimages.index);
    free(d->preimages.data);
    memset(&d->preimages, 0, sizeof d->preimages);
}

uint32_t blk_faults_check(blk_driver *d, const blk_request *req)
{
    const blk_driver_faults *f = &d->config.faults;
    d->valid_requests++;
    if (f->fail_request && d->valid_requests == f->fail_request)
        return BLK_RESP_ERR_IO;
    bool transfers = req->code == BLK_REQ_READ || req->code == BLK_REQ_WRITE;
    if (transfers && f->fail_block_count && req->block_number < f->fail_first_block + f->fail_block_count &&
        f->fail_first_block < req->block_number + req->count)
        return BLK_RESP_ERR_IO;
    return BLK_RESP_OK;
}

bool blk_faults_write_starts(blk_driver *d, const blk_request *req)
{
    const blk_driver_faults *f = &d->config.faults;
    if (d->power_cut)
        return false;
    d->writes_started++;
    if (f->power_cut_after_writes && d->writes_started >= f->power_cut_after_writes)
        d->power_cut = true;
    if (f->lose_unflushed)
        for (uint32_t i = 0; i < req->count; i++)
            if (!preimage_save(d, req->block_number + i))
                d->cut_applied = true; /* out of memory: keep every write rather than lie */
    return true;
}

void blk_faults_write_done(blk_driver *d, const blk_request *req)
{
    if (d->log)
        blk_log_append(d->log, BLK_LOG_WRITE, req->block_number, req->count, d->data + req->io_or_offset);
}

void blk_faults_flush_starts(blk_driver *d)
{
    if (d->log)
        blk_log_append(d->log, BLK_LOG_FLUSH, 0, 0, NULL);
    if (d->config.faults.lose_unflushed && !d->power_cut)
        preimage_clear(&d->preimages);
}

void blk_faults_settle(blk_driver *d)
{
    if (!d->power_cut || d->cut_applied || !d->config.faults.lose_unflushed)
        return;
    d->cut_applied = true;
    blk_preimage_set *set = &d->preimages;
    for (uint32_t i = 0; i < set->table_size; i++) {
        if (set->blocks[i] == EMPTY || (next_random(&d->rng) & 1))
            continue;
        const uint8_t *old = set->data + (size_t)set->index[i] * BLK_TRANSFER_SIZE;
        if (pwrite(d->fd, old, BLK_TRANSFER_SIZE, (off_t)(set->blocks[i] * BLK_TRANSFER_SIZE)) != BLK_TRANSFER_SIZE)
            d->stats.io_errors++;
    }
}
