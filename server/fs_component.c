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
static fs_component_memory memory;
static fs_component_volume configured_volume, volume;

void fs_component_configure(const fs_component_volume *v) { configured_volume = *v; }

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

static fat_config fat_limits(void)
{
    fat_config cfg = fat_config_defaults();
#ifdef FS_COMPONENT_MAX_NODES
    cfg.max_nodes = FS_COMPONENT_MAX_NODES;
#endif
#ifdef FS_COMPONENT_INDEX_ENTRIES
    cfg.index_entries = FS_COMPONENT_INDEX_ENTRIES;
#endif
    return cfg;
}

/* The arena holds the block stack's metadata, then the four FAT arenas. */
size_t fs_component_arena_bytes(uint64_t device_bytes, uint64_t data_bytes)
{
    blk_stack_layout layout;
    if (!blk_stack_plan(&stack_options, data_bytes, FS_COMPONENT_BLOCK_REQUESTS, &layout))
        return 0;
    fat_config cfg = fat_limits();
    return layout.arena_bytes + fat_memory_total(&cfg, device_bytes);
}

static void *carve(uint8_t **cursor, uint8_t *end, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    if ((size_t)(end - *cursor) < bytes)
        return NULL;
    void *p = *cursor;
    *cursor += bytes;
    return p;
}

/* The FAT engine's arenas: nodes, name index and run caches as fat_memory_needed sizes
 * them, and all the rest for the free map, whose need (a bit per cluster) is known only at
 * mount, which refuses a volume whose clusters do not fit. An arena sized at build time
 * (Microkit) so serves every volume up to the clusters its rest can map. */
static bool place_fat_memory(fat_config *fc, uint8_t *cursor, uint8_t *end)
{
    fat_memory_sizes need;
    fat_memory_needed(fc, 0, &need);
    fc->node_memory = carve(&cursor, end, need.nodes);
    fc->node_memory_size = need.nodes;
    fc->index_memory = need.index ? carve(&cursor, end, need.index) : NULL;
    fc->index_memory_size = need.index;
    fc->run_memory = carve(&cursor, end, need.runs);
    fc->run_memory_size = need.runs;
    if (!fc->node_memory || (need.index && !fc->index_memory) || !fc->run_memory || cursor >= end)
        return false;
    fc->free_map_memory = cursor;
    fc->free_map_memory_size = (size_t)(end - cursor) & ~(size_t)7;
    return true;
}

static void client_notify(void *ctx) { component_notify((unsigned)(uintptr_t)ctx); }

static void driver_notify(void *ctx) { component_notify(blk_channel); }

static int64_t wall_clock(void *ctx) { return component_wall_time(); }

/* Client i's connection: its own regions fs_commands_<i>, fs_completions_<i>, fs_share_<i>
 * where the system maps each client's apart (Microkit), else slice i of one region of each
 * kind split among `count` clients (Linux). */
static bool client_connection(uint32_t i, uint32_t count, fs_connection_config *cc)
{
    size_t cmd_size, cmpl_size, share_size;
    uint8_t *commands, *completions, *share;
    char name[32];
    if (count == 0) {
        fs_component_client_name(name, FS_COMPONENT_REGION_COMMANDS "_", i);
        commands = component_region(name, &cmd_size);
        fs_component_client_name(name, FS_COMPONENT_REGION_COMPLETIONS "_", i);
        completions = component_region(name, &cmpl_size);
        fs_component_client_name(name, FS_COMPONENT_REGION_SHARE "_", i);
        share = component_region(name, &share_size);
        if (!commands || !completions || !share || cmd_size < sizeof(fs_queue) || cmpl_size < sizeof(fs_queue))
            return false;
    } else {
        commands = (uint8_t *)component_region(FS_COMPONENT_REGION_COMMANDS, NULL) + i * sizeof(fs_queue);
        completions = (uint8_t *)component_region(FS_COMPONENT_REGION_COMPLETIONS, NULL) + i * sizeof(fs_queue);
        share = component_region(FS_COMPONENT_REGION_SHARE, &share_size);
        share_size /= count;
        share += i * share_size;
    }
    fs_component_client_name(name, "fs_client_", i);
    *cc = (fs_connection_config){
        .commands = (fs_queue *)commands,
        .completions = (fs_queue *)completions,
        .share = share,
        .share_size = share_size,
        .notify = client_notify,
        .notify_ctx = (void *)(uintptr_t)component_channel(name),
    };
    return true;
}

static void add_clients(void)
{
    size_t cmd_size = 0, cmpl_size = 0, share_size = 0;
    uint32_t count = 0;
    if (component_region(FS_COMPONENT_REGION_COMMANDS, &cmd_size) &&
        component_region(FS_COMPONENT_REGION_COMPLETIONS, &cmpl_size) &&
        component_region(FS_COMPONENT_REGION_SHARE, &share_size))
        count = (uint32_t)af_min_u64(af_min_u64(cmd_size, cmpl_size) / sizeof(fs_queue), FS_SERVER_MAX_CLIENTS);
    uint32_t limit = count ? count : FS_SERVER_MAX_CLIENTS;
    for (uint32_t i = 0; i < limit; i++) {
        fs_connection_config cc;
        if (!client_connection(i, count, &cc))
            break;
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
    fp_stack_area areas[FP_MAX_STACK_AREAS];
    regions.stack_areas = areas;
    /* The platform may give fewer stacks than asked (Microkit: what the system maps). */
    blk_stack_options options = stack_options;
    options.fibers = af_min_u32(component_fiber_stacks(FS_COMPONENT_FIBERS, FS_COMPONENT_STACK_SIZE, areas,
                                                       FP_MAX_STACK_AREAS, &regions.stack_area_count),
                                FS_COMPONENT_FIBERS);
    options.paint_stacks = FS_COMPONENT_PAINT_STACKS;
    blk_stack_layout layout;
    if (options.fibers == 0 || !blk_stack_plan(&options, cache_bytes, capacity, &layout) ||
        blk_stack_init(&stack, &options, &regions, arena, arena_size) != BLK_OK) {
        component_log("server: the data region, arena or stacks are too small for the block stack");
        return serve_without_volume();
    }

    /* FAT memory that does not fit leaves the arenas empty: INITIALISE then reports
     * ALLOCATION_ERROR to the client instead of the server failing silently. */
    fat_config fc = fat_limits();
    fc.clock = wall_clock;
    fc.read_only = info->read_only;
    fc.time_offset_minutes = volume.time_offset_minutes;
    fc.discard = volume.discard;
    if (volume.at_offset) {
        fc.partition = FAT_PARTITION_AT_OFFSET;
        fc.volume_offset = volume.offset;
    } else {
        fc.partition = (int)af_min_u32(volume.partition, 0x7fffffffu) - 1;
    }
    memory = (fs_component_memory){
        .fibers = options.fibers,
        .cache_buffers = layout.buffers,
        .staging_slots = layout.staging_slots,
        .staging_blocks = layout.staging_slot_blocks,
        .arena_size = arena_size,
        .arena_fixed = layout.arena_bytes,
    };
    if (place_fat_memory(&fc, arena + layout.arena_bytes, arena + arena_size)) {
        memory.arena_fixed = arena_size - fc.free_map_memory_size;
        memory.free_map_clusters = (uint64_t)fc.free_map_memory_size * 8 - 2;
    }

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
    volume = configured_volume;
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

const fp_pool *fs_component_pool(void) { return started && fp_slot_count(&stack.pool) ? &stack.pool : NULL; }

bool fs_component_mounted(void)
{
    return started && server.engine.ops && server.engine.ops->mounted(server.engine.volume);
}

const fat_mount_report *fs_component_mount_report(void)
{
    return fs_component_mounted() ? fat_get_mount_report(&fat.volume) : NULL;
}

const fs_component_memory *fs_component_memory_use(void) { return &memory; }
