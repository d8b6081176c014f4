/* blk_fixture: a block stack on a RAM device or the Linux driver, and the event loop that runs them. */
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

blk_fixture_options blk_fixture_defaults(void)
{
    return (blk_fixture_options){
        .image_bytes = 16u << 20,
        .sector_size = 512,
        .seed = 1,
        .queue_capacity = 64,
        .cache_buffers = 256,
        .staging_slots = 4,
        .staging_slot_blocks = 64,
        .read_ahead_blocks = 128,
        .scratch_blocks = 64,
        .fibers = 64,
        .stack_size = 128u << 10,
    };
}

static int fail(blk_fixture *f, const char *what)
{
    fprintf(stderr, "blk_fixture: %s\n", what);
    blk_fixture_fini(f);
    return -1;
}

static int load_image(blk_fixture *f, const blk_fixture_options *o)
{
    uint64_t bytes = o->image_bytes;
    FILE *file = NULL;
    if (o->image_path) {
        file = fopen(o->image_path, "rb");
        if (!file || fseek(file, 0, SEEK_END) != 0)
            goto failed;
        long size = ftell(file);
        if (size < 0 || fseek(file, 0, SEEK_SET) != 0)
            goto failed;
        bytes = (uint64_t)size;
    }
    uint64_t alloc = (bytes + BLK_TRANSFER_SIZE - 1) & ~(uint64_t)(BLK_TRANSFER_SIZE - 1);
    f->image = calloc(1, alloc ? alloc : BLK_TRANSFER_SIZE);
    f->image_bytes = bytes;
    if (!f->image)
        goto failed;
    if (file) {
        if (fread(f->image, 1, bytes, file) != bytes)
            goto failed;
        fclose(file);
    }
    return 0;
failed:
    if (file)
        fclose(file);
    return -1;
}

static void noop_notify(void *ctx) { (void)ctx; }

/* Create the file with `bytes` zero bytes unless it exists. */
static int ensure_file(const char *path, uint64_t bytes)
{
    FILE *file = fopen(path, "rb");
    if (file) {
        fclose(file);
        return 0;
    }
    file = fopen(path, "wb");
    if (!file)
        return -1;
    int rc = bytes && (fseeko(file, (off_t)bytes - 1, SEEK_SET) != 0 || fputc(0, file) == EOF) ? -1 : 0;
    return fclose(file) == 0 ? rc : -1;
}

static int linux_open(blk_fixture *f, const blk_fixture_options *o, uint64_t data_size)
{
    if (!o->image_path || ensure_file(o->image_path, o->image_bytes) != 0)
        return -1;
    f->linux_info = aligned_alloc(4096, 4096);
    f->linux_req = calloc(1, blk_req_queue_bytes(o->queue_capacity));
    f->linux_resp = calloc(1, blk_resp_queue_bytes(o->queue_capacity));
    f->data_region_size = (data_size + 4095) & ~(uint64_t)4095;
    f->data_region = aligned_alloc(4096, f->data_region_size);
    if (!f->linux_info || !f->linux_req || !f->linux_resp || !f->data_region)
        return -1;
    memset(f->linux_info, 0, 4096);
    memset(f->data_region, 0, f->data_region_size);
    blk_queue_handle q;
    blk_queue_init(&q, f->linux_req, f->linux_resp, o->queue_capacity);
    blk_driver_config dc = {
        .path = o->image_path,
        .sector_size = o->sector_size,
        .read_only = o->read_only,
        .queue_depth = o->queue_capacity,
        .faults = o->linux_faults,
        .model = o->linux_model,
    };
    int error = 0;
    f->driver = blk_driver_open(&dc, f->linux_info, q, f->data_region, f->data_region_size, &error);
    if (!f->driver)
        return -1;
    f->image_bytes = f->linux_info->capacity * BLK_TRANSFER_SIZE;
    return 0;
}

int blk_fixture_init(blk_fixture *f, const blk_fixture_options *opts)
{
    blk_fixture_options o = *opts;
    blk_fixture_options d = blk_fixture_defaults();
    memset(f, 0, sizeof(*f));
    if (!o.sector_size) o.sector_size = d.sector_size;
    if (!o.queue_capacity) o.queue_capacity = d.queue_capacity;
    if (!o.client_slots) o.client_slots = o.queue_capacity;
    if (!o.cache_buffers) o.cache_buffers = d.cache_buffers;
    if (!o.staging_slots) o.staging_slots = d.staging_slots;
    if (!o.staging_slot_blocks) o.staging_slot_blocks = d.staging_slot_blocks;
    if (!o.fibers) o.fibers = d.fibers;
    if (!o.stack_size) o.stack_size = d.stack_size;

    uint64_t buffers_bytes = (uint64_t)o.cache_buffers * BLK_TRANSFER_SIZE;
    uint64_t staging_bytes = (uint64_t)o.staging_slots * o.staging_slot_blocks * BLK_TRANSFER_SIZE;
    f->scratch_offset = buffers_bytes + staging_bytes;
    f->scratch_blocks = o.scratch_blocks;
    uint64_t data_size = f->scratch_offset + (uint64_t)o.scratch_blocks * BLK_TRANSFER_SIZE + BLK_TRANSFER_SIZE;
    f->backend = o.backend;
    f->image_path = o.image_path;
    blk_storage_info *info;
    blk_queue_handle queue;
    if (o.backend == BLK_FIXTURE_LINUX) {
        if (linux_open(f, &o, data_size) != 0)
            return fail(f, "cannot open the Linux block driver on image_path");
        info = f->linux_info;
        blk_queue_init(&queue, f->linux_req, f->linux_resp, o.queue_capacity);
    } else {
        if (load_image(f, &o) != 0)
            return fail(f, "cannot create or load the image");
        if (f->image_bytes < BLK_TRANSFER_SIZE)
            return fail(f, "image smaller than one block");
        ram_device_config dc = {
            .image = f->image,
            .image_bytes = (f->image_bytes + BLK_TRANSFER_SIZE - 1) & ~(uint64_t)(BLK_TRANSFER_SIZE - 1),
            .sector_size = o.sector_size,
            .read_only = o.read_only,
            .queue_capacity = o.queue_capacity,
            .data_region_size = data_size,
            .order = o.random_order ? RAM_DEVICE_RANDOM : RAM_DEVICE_FIFO,
            .seed = o.seed,
        };
        if (ram_device_init(&f->dev, &dc) != 0)
            return fail(f, "ram_device_init failed");
        f->data_region = f->dev.data_region;
        f->data_region_size = f->dev.data_region_size;
        info = f->dev.info;
        queue = f->dev.queue;
    }
    uint64_t capacity = info->capacity;

    size_t stride = (o.stack_size + 4095) & ~(size_t)4095;
    blk_stack_options so = {
        .fibers = o.fibers,
        .request_slots = o.client_slots,
        .cache_buffers = o.cache_buffers,
        .staging_slots = o.staging_slots,
        .staging_slot_blocks = o.staging_slot_blocks,
        .read_ahead_blocks = o.read_ahead_blocks,
        .wear_blocks = (uint32_t)(capacity < (1u << 20) ? capacity : (1u << 20)),
    };
    blk_stack_regions sr = {
        .info = info,
        .queue = queue,
        .data = f->data_region,
        .data_size = f->data_region_size,
        .cache_bytes = f->scratch_offset,
        .notify = o.backend == BLK_FIXTURE_LINUX ? noop_notify : ram_device_notify,
        .notify_ctx = &f->dev,
        .stack_stride = stride,
    };
    blk_stack_layout layout;
    if (!blk_stack_plan(&so, sr.cache_bytes, queue.capacity, &layout))
        return fail(f, "options do not make a block stack");
    f->stacks = aligned_alloc(4096, stride * o.fibers);
    f->arena = aligned_alloc(16, (layout.arena_bytes + 15) & ~(size_t)15);
    if (!f->stacks || !f->arena)
        return fail(f, "out of memory");
    sr.stacks = f->stacks;
    if (blk_stack_init(&f->stack, &so, &sr, f->arena, layout.arena_bytes) != BLK_OK)
        return fail(f, "blk_stack_init failed");
    return 0;
}

void blk_fixture_fini(blk_fixture *f)
{
    if (f->dev.info)
        ram_device_destroy(&f->dev);
    if (f->driver)
        blk_driver_close(f->driver);
    if (f->backend == BLK_FIXTURE_LINUX)
        free(f->data_region);
    free(f->linux_info);
    free(f->linux_req);
    free(f->linux_resp);
    free(f->image);
    free(f->stacks);
    free(f->arena);
    memset(f, 0, sizeof(*f));
}

fp_task *blk_fixture_spawn(blk_fixture *f, fp_entry fn, void *arg)
{
    return fp_spawn(&f->stack.pool, fn, arg);
}

bool blk_fixture_pass(blk_fixture *f)
{
    uint32_t completed = f->driver ? blk_driver_poll(f->driver) : ram_device_process(&f->dev);
    bool ran = blk_stack_pass(&f->stack);
    return completed || ran;
}

/* The Linux driver completes I/O asynchronously: with requests outstanding, wait for it.
 * False when nothing is outstanding. */
static bool linux_wait(blk_fixture *f)
{
    if (!f->driver)
        return false;
    blk_queue_handle *q = &f->stack.client.queue;
    if (blk_driver_in_flight(f->driver) == 0 && q->req->tail == q->req->head)
        return false;
    blk_driver_wait(f->driver, 100 * 1000 * 1000);
    return true;
}

bool blk_fixture_run(blk_fixture *f)
{
    /* The device completes everything it takes unless held, so a pass in which nothing
     * happens means nothing ever will. */
    while (fp_live_tasks(&f->stack.pool) > 0)
        if (!blk_fixture_pass(f) && !linux_wait(f))
            return false;
    /* Let requests the tasks left behind (read-ahead) finish. */
    while (blk_fixture_pass(f) || linux_wait(f))
        ;
    return true;
}

int blk_fixture_save(const blk_fixture *f, const char *path)
{
    uint8_t *bytes = f->image;
    uint64_t size = f->image_bytes;
    if (f->backend == BLK_FIXTURE_LINUX) {
        if (strcmp(path, f->image_path) == 0)
            return 0;
        blk_fixture_options o = { .image_path = f->image_path };
        blk_fixture copy;
        memset(&copy, 0, sizeof copy);
        if (load_image(&copy, &o) != 0) {
            free(copy.image);
            return -1;
        }
        bytes = copy.image;
        size = copy.image_bytes;
    }
    FILE *file = fopen(path, "wb");
    size_t n = file ? fwrite(bytes, 1, size, file) : 0;
    int rc = file ? fclose(file) : -1;
    if (bytes != f->image)
        free(bytes);
    return n == size && rc == 0 ? 0 : -1;
}
