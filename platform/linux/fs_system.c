/* The process system behind the asyncfat command and the FUSE mount (see fs_system.h). */
#include "platform/linux/fs_system.h"

#include "platform/linux/blk_driver_component.h"
#include "server/fs_component.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define HOST "client"

static void driver_init(void)
{
    signal(SIGINT, SIG_IGN);
    blk_driver_component_init();
}

static void server_init(void)
{
    signal(SIGINT, SIG_IGN);
    fs_component_init();
}

static const char *const driver_regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS, BLK_REGION_RESPONSES,
                                             BLK_REGION_DATA, NULL};
static const char *const server_regions[] = {BLK_REGION_STORAGE_INFO,
                                             BLK_REGION_REQUESTS,
                                             BLK_REGION_RESPONSES,
                                             BLK_REGION_DATA,
                                             FS_COMPONENT_REGION_ARENA,
                                             FS_COMPONENT_REGION_COMMANDS,
                                             FS_COMPONENT_REGION_COMPLETIONS,
                                             FS_COMPONENT_REGION_SHARE,
                                             NULL};
static const char *const client_regions[] = {FS_COMPONENT_REGION_COMMANDS, FS_COMPONENT_REGION_COMPLETIONS,
                                             FS_COMPONENT_REGION_SHARE, NULL};

/* A block device's size is its BLKGETSIZE64, not its inode's st_size (0). */
static uint64_t image_bytes(const char *path)
{
    uint64_t bytes = 0;
    uint16_t sector_size;
    return blk_device_geometry_path(path, &bytes, &sector_size) == 0 ? bytes : 0;
}

int fs_system_start(fs_system *s, const fs_system_options *o)
{
    memset(s, 0, sizeof *s);
    uint64_t device = image_bytes(o->image_path);
    if (device < BLK_TRANSFER_SIZE) {
        fprintf(stderr, "asyncfat: %s: not a readable disk image\n", o->image_path);
        return -1;
    }
    uint32_t clients = o->clients ? o->clients : 1;
    if (clients > FS_SYSTEM_MAX_CLIENTS)
        return -1;
    uint64_t share = o->share_bytes ? o->share_bytes : 4u << 20;
    uint64_t data = o->data_bytes ? o->data_bytes : 48u << 20;
    share = (share + 4095) & ~(uint64_t)4095;
    data = (data + 4095) & ~(uint64_t)4095;
    uint32_t capacity = o->queue_capacity ? o->queue_capacity : 256;
    s->client_count = clients;

    blk_driver_config dc = {
        .path = o->image_path,
        .sector_size = o->sector_size,
        .read_only = o->read_only,
        .queue_depth = o->queue_depth,
        .model = o->model,
        .faults = o->faults,
    };
    /* Capacity 0: the driver, like the server, takes as many entries as both (page-rounded)
     * queue regions hold, so the two sides agree on it. */
    blk_driver_component_configure(&dc, 0);
    fs_component_configure(&o->volume);

    lx_region_spec regions[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096},
        {.name = BLK_REGION_REQUESTS, .size = blk_req_queue_bytes(capacity)},
        {.name = BLK_REGION_RESPONSES, .size = blk_resp_queue_bytes(capacity)},
        /* The clients' share regions lie at the end of the block data region: the driver
         * moves file data straight between a client's buffers and the device (the server
         * sees the window inside its data region and uses the rest for its cache). */
        {.name = BLK_REGION_DATA, .size = data + clients * share},
        /* Only the server uses its arena: private memory, not a memfd. */
        {.name = FS_COMPONENT_REGION_ARENA, .size = fs_component_arena_bytes(device, data), .private_memory = true},
        {.name = FS_COMPONENT_REGION_COMMANDS, .size = clients * sizeof(fs_queue)},
        {.name = FS_COMPONENT_REGION_COMPLETIONS, .size = clients * sizeof(fs_queue)},
        {.name = FS_COMPONENT_REGION_SHARE, .size = clients * share, .within = BLK_REGION_DATA, .offset = data},
    };
    memcpy(s->regions, regions, sizeof regions);

    s->components[0] = (lx_component_spec){
        .name = "blk_driver",
        .entry = {driver_init, blk_driver_component_notified},
        .regions = driver_regions,
    };
    s->components[1] = (lx_component_spec){
        .name = "fs_server",
        .entry = {server_init, fs_component_notified},
        .regions = server_regions,
    };
    s->components[2] = (lx_component_spec){.name = HOST, .regions = client_regions};

    s->channels[0] = (lx_channel_spec){BLK_CHANNEL_CLIENT, "blk_driver", 0, "fs_server", 0};
    for (uint32_t i = 0; i < clients; i++) {
        fs_component_client_name(s->channel_names[i], "fs_client_", i);
        s->channels[1 + i] = (lx_channel_spec){s->channel_names[i], "fs_server", 1 + i, HOST, i};
    }
    s->spec = (lx_system_spec){
        .components = s->components,
        .component_count = 3,
        .regions = s->regions,
        .region_count = AF_ARRAY_LEN(regions),
        .channels = s->channels,
        .channel_count = 1 + clients,
    };
    if (lx_system_start(&s->sys, &s->spec) != 0)
        return -1;

    static lx_component_env env;
    size_t cmd_size, share_size;
    uint8_t *commands = lx_system_region(&s->sys, FS_COMPONENT_REGION_COMMANDS, &cmd_size);
    uint8_t *completions = lx_system_region(&s->sys, FS_COMPONENT_REGION_COMPLETIONS, NULL);
    uint8_t *shares = lx_system_region(&s->sys, FS_COMPONENT_REGION_SHARE, &share_size);
    if (!lx_system_host_env(&s->sys, HOST, &env) || !commands || !completions || !shares) {
        fs_system_stop(s, 0);
        return -1;
    }
    for (uint32_t i = 0; i < clients; i++) {
        fs_system_client *c = &s->clients[i];
        c->commands = (fs_queue *)(commands + i * sizeof(fs_queue));
        c->completions = (fs_queue *)(completions + i * sizeof(fs_queue));
        c->share_size = share_size / clients;
        c->share = shares + i * c->share_size;
        for (unsigned k = 0; k < env.channel_count; k++) {
            if (env.channels[k].id == i) {
                c->notify_fd = env.channels[k].notify_fd;
                c->wait_fd = env.channels[k].wait_fd;
            }
        }
    }
    return 0;
}

bool fs_system_failed(fs_system *s, char *why, size_t why_size)
{
    lx_exit_report report;
    if (!lx_system_wait(&s->sys, 0, &report))
        return false;
    snprintf(why, why_size, "%s %s %d", report.component, report.signaled ? "was killed by signal" : "exited with",
             report.code);
    return true;
}

int fs_system_stop(fs_system *s, int grace_ms)
{
    lx_system_stop(&s->sys, grace_ms);
    for (unsigned i = 0; i < s->spec.component_count; i++) {
        const lx_exit_report *r = &s->sys.exits[i];
        if (r->component && !r->signaled && r->code != 0)
            return -1;
        if (r->component && r->signaled && r->code != SIGTERM)
            return -1;
    }
    return 0;
}
