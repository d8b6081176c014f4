/* The server component: finds its regions and channels, lays out memory, starts the
 * block client, cache and server, and runs one server pass per notification. */
#include "server/fs_component.h"

#include "fat/fat.h"
#include "platform/component.h"
#include "server/server.h"

static blk_stack stack;
static fat_vfs fat;
static fs_server server;
static unsigned blk_channel = COMPONENT_NO_CHANNEL;
static bool started;
static uint32_t writeback_ms = FS_COMPONENT_WRITEBACK_MS;

void fs_component_set_writeback_ms(uint32_t ms) { writeback_ms = ms; }

static uint64_t monotonic_ns(void *ctx) { return component_time_ns(); }

uint64_t fs_component_deadline(void) { return started ? fs_server_deadline(&server) : FS_SERVER_NO_DEADLINE; }

void fs_component_client_name(char *buf, const char *prefix, uint32_t i)
{
    size_t n = 0;
    while (prefix[n] && n < 20) {
        buf[n] = prefix[n];
        n++;
    }
    char digits[10];
    size_t d = 0;
    do {
        digits[d++] = (char)('0' + i % 10);
        i /= 10;
    } while (i && d < sizeof digits);
    while (d)
        buf[n++] = digits[--d];
    buf[n] = '\0';
}

static const blk_stack_options stack_options = {
    .fibers = FS_COMPONENT_FIBERS,
    .request_slots = FS_COMPONENT_BLOCK_REQUESTS,
    .read_ahead_blocks = FS_COMPONENT_READ_AHEAD_BLOCKS,
};

/* The arena holds the block stack's metadata, then the four FAT arenas. */
size_t fs_component_arena_bytes(uint64_t device_bytes, uint64_t data_bytes)
{
    blk_stack_layout layout;
    if (!blk_stack_plan(&stack_options, data_bytes, FS_COMPONENT_BLOCK_REQUESTS, &layout))
        return 0;
    fat_config cfg = fat_config_defaults();
    return layout.arena_bytes + fat_memory_total(&cfg, device_bytes);
}

static void client_notify(void *ctx) { component_notify((unsigned)(uintptr_t)ctx); }

static void driver_notify(void *ctx) { component_notify(blk_channel); }

static int64_t wall_clock(void *ctx) { return component_wall_time(); }

static void add_clients(void)
{
    size_t cmd_size, cmpl_size, share_size;
    uint8_t *commands = component_region(FS_COMPONENT_REGION_COMMANDS, &cmd_size);
    uint8_t *completions = component_region(FS_COMPONENT_REGION_COMPLETIONS, &cmpl_size);
    uint8_t *share = component_region(FS_COMPONENT_REGION_SHARE, &share_size);
    if (!commands || !completions || !share)
        return;
    size_t count = af_min_u64(af_min_u64(cmd_size, cmpl_size) / sizeof(fs_queue), FS_SERVER_MAX_CLIENTS);
    if (count == 0)
        return;
    size_t share_each = share_size / count;
    for (uint32_t i = 0; i < count; i++) {
        char name[32];
        fs_component_client_name(name, "fs_client_", i);
        unsigned channel = component_channel(name);
        fs_connection_config cc = {
            .commands = (fs_queue *)(commands + i * sizeof(fs_queue)),
            .completions = (fs_queue *)(completions + i * sizeof(fs_queue)),
            .share = share + i * share_each,
            .share_size = share_each,
            .notify = client_notify,
            .notify_ctx = (void *)(uintptr_t)channel,
        };
        fs_server_add_connection(&server, &cc);
    }
}

/* The block side cannot be set up: still answer every command (INITIALISE with
 * ALLOCATION_ERROR), so clients learn why instead of waiting forever. */
static bool serve_without_volume(void)
{
    if (fp_slot_count(&stack.pool) == 0) {
        component_log("server: no fiber pool");
        return false;
    }
    fs_server_config sc = {.pool = &stack.pool};
    fs_server_init(&server, &sc);
    add_clients();
    started = true;
    return true;
}

/* Set everything up once the driver's storage info is ready. */
static bool start(void)
{
    size_t info_size, req_size, resp_size, data_size, arena_size;
    blk_storage_info *info = component_region("blk_storage_info", &info_size);
    blk_req_queue *req = component_region("blk_requests", &req_size);
    blk_resp_queue *resp = component_region("blk_responses", &resp_size);
    uint8_t *data = component_region("blk_data", &data_size);
    uint8_t *arena = component_region(FS_COMPONENT_REGION_ARENA, &arena_size);
    if (!info || !req || !resp || !data || !arena || info_size < sizeof(*info)) {
        component_log("server: a block or arena region is missing");
        return false;
    }
    /* Share regions placed at the end of the data region (the system's choice) are the
     * clients': the cache keeps to what lies before them, and file data moves between the
     * device and the clients' buffers without a copy. */
    size_t share_size;
    uint8_t *shares = component_region(FS_COMPONENT_REGION_SHARE, &share_size);
    size_t cache_bytes = data_size;
    if (shares && shares >= data && shares < data + data_size)
        cache_bytes = (size_t)(shares - data);
    if (!blk_storage_is_ready(info))
        return false;

    /* The block driver derives the same capacity from the same regions. */
    uint32_t capacity = (uint32_t)af_min_u64((req_size - sizeof(blk_req_queue)) / sizeof(blk_request),
                                             (resp_size - sizeof(blk_resp_queue)) / sizeof(blk_response));
    blk_stack_regions regions = {
        .info = info,
        .data = data,
        .data_size = data_size,
        .cache_bytes = cache_bytes,
        .notify = driver_notify,
    };
    blk_queue_init(&regions.queue, req, resp, capacity);
    regions.stacks = component_fiber_stacks(FS_COMPONENT_FIBERS, FS_COMPONENT_STACK_SIZE, &regions.stack_stride,
                                            &regions.guard_size);
    blk_stack_layout layout;
    if (!regions.stacks || !blk_stack_plan(&stack_options, cache_bytes, capacity, &layout) ||
        blk_stack_init(&stack, &stack_options, &regions, arena, arena_size) != BLK_OK) {
        component_log("server: the data region, arena or stacks are too small for the block stack");
        return serve_without_volume();
    }
    uint8_t *fat_memory = arena + layout.arena_bytes;

    /* FAT memory that does not fit leaves the arenas empty: INITIALISE then reports
     * ALLOCATION_ERROR to the client instead of the server failing silently. */
    fat_config fc = fat_config_defaults();
    fc.clock = wall_clock;
    fc.read_only = info->read_only;
    fat_config_place_memory(&fc, blk_client_capacity_blocks(&stack.client) * BLK_TRANSFER_SIZE, fat_memory,
                            arena_size - layout.arena_bytes);

    fs_server_config sc = {.pool = &stack.pool,
                           .blk = &stack.client,
                           .engine = fat_vfs_engine(&fat, &stack.cache, &fc),
                           .writeback_ns = (uint64_t)writeback_ms * 1000000u,
                           .clock_ns = monotonic_ns};
    fs_server_init(&server, &sc);
    add_clients();
    started = true;
    return true;
}

void fs_component_init(void)
{
    /* Nothing of an earlier run in this process (a server hosted on a thread, then one
     * forked from it) may be taken for this one's. */
    started = false;
    blk_channel = component_channel(FS_COMPONENT_CHANNEL_BLK);
    start();
}

void fs_component_notified(unsigned channel)
{
    if (!started && !start())
        return;
    fs_server_notified(&server);
}
