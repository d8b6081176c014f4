/* The process system behind the asyncfat command and the FUSE mount (see fs_system.h). */
#include "platform/linux/fs_system.h"

#include "platform/linux/blk_driver_component.h"
#include "platform/linux/channel_wake.h"
#include "platform/linux/image_lock.h"
#include "server/fs_component.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#define HOST "client"

/* This process hosts a system (FS_SYSTEM_HOSTED or FS_SYSTEM_INLINE) now. */
static bool hosting;

/* FS_SYSTEM_INLINE: client 0 as a component of the loop its own thread runs. Its
 * notified marks that the server published completions. */
static bool inline_answered;

static void inline_client_init(void) {}

static void inline_client_notified(unsigned channel)
{
    AF_UNUSED(channel);
    inline_answered = true;
}

#define INLINE_CLIENT 2u /* its place among the loop's components */

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
    /* One writer per image: say who has it now, rather than have the driver fail later. */
    int holder = 0;
    if (image_lock_probe(o->image_path, !o->read_only, &holder) == EBUSY) {
        char why[4200];
        image_lock_busy_message(o->image_path, holder, why, sizeof why);
        fprintf(stderr, "asyncfat: %s\n", why);
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
        .offload_write_bytes = o->offload_write_bytes,
        .model = o->model,
        .faults = o->faults,
    };
    /* Capacity 0: the driver, like the server, takes as many entries as both (page-rounded)
     * queue regions hold, so the two sides agree on it. */
    blk_driver_component_configure(&dc, 0);
    fs_component_configure(&o->volume);
    fs_component_set_writeback_ms(o->writeback_ms < 0 ? 0 : o->writeback_ms ? (uint32_t)o->writeback_ms
                                                                             : FS_COMPONENT_WRITEBACK_MS);

    lx_region_spec regions[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096},
        {.name = BLK_REGION_REQUESTS, .size = blk_req_queue_bytes(capacity)},
        {.name = BLK_REGION_RESPONSES, .size = blk_resp_queue_bytes(capacity)},
        /* The clients' share regions lie at the end of the block data region: the driver
         * moves file data straight between a client's buffers and the device (the server
         * sees the window inside its data region and uses the rest for its cache). */
        {.name = BLK_REGION_DATA, .size = data + clients * share, .populate = o->populate},
        /* Only the server uses its arena: private memory, not a memfd. */
        {.name = FS_COMPONENT_REGION_ARENA, .size = fs_component_arena_bytes(device, data), .private_memory = true},
        {.name = FS_COMPONENT_REGION_COMMANDS, .size = clients * sizeof(fs_queue)},
        {.name = FS_COMPONENT_REGION_COMPLETIONS, .size = clients * sizeof(fs_queue)},
        {.name = FS_COMPONENT_REGION_SHARE, .size = clients * share, .within = BLK_REGION_DATA, .offset = data},
    };
    memcpy(s->regions, regions, sizeof regions);

    bool client_component = o->client_component.init != NULL;
    if (client_component && hosting) {
        fprintf(stderr, "asyncfat: this process hosts a file-system server already\n");
        return -1;
    }
    bool wants_host = o->layout == FS_SYSTEM_HOSTED || o->layout == FS_SYSTEM_INLINE;
    s->layout = client_component ? FS_SYSTEM_HOSTED : wants_host && hosting ? FS_SYSTEM_SHARED : o->layout;
    const char *process = s->layout == FS_SYSTEM_PROCESSES ? NULL : "fs_server+blk_driver";
    bool in_line = s->layout == FS_SYSTEM_INLINE;
    bool hosted = s->layout == FS_SYSTEM_HOSTED || in_line;
    s->components[0] = (lx_component_spec){
        .name = "blk_driver",
        .entry = {hosted ? blk_driver_component_init : driver_init, blk_driver_component_notified,
                  blk_driver_component_fini, NULL},
        .regions = driver_regions,
        .process = process,
    };
    s->components[1] = (lx_component_spec){
        .name = "fs_server",
        .entry = {hosted ? fs_component_init : server_init, fs_component_notified, NULL, fs_component_deadline},
        .regions = server_regions,
        .process = process,
    };
    s->components[2] = (lx_component_spec){.name = HOST, .regions = client_regions};
    if (client_component)
        s->components[2] = (lx_component_spec){
            .name = HOST, .entry = o->client_component, .regions = client_regions, .process = process};
    if (in_line)
        s->components[2] = (lx_component_spec){.name = HOST,
                                               .entry = {inline_client_init, inline_client_notified, NULL, NULL},
                                               .regions = client_regions,
                                               .process = process};

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
        .launcher_process = hosted ? process : NULL,
        .launcher_inline = in_line,
        .launcher_small_pages = o->small_pages,
        .launcher_busy_poll_ns = s->layout != FS_SYSTEM_HOSTED || o->busy_poll_us < 0 ? 0
                                 : o->busy_poll_us > 0 ? (uint64_t)o->busy_poll_us * 1000u
                                 : client_component ? FS_SYSTEM_BUSY_POLL_US * 1000ull
                                                    : 0,
    };
    if (lx_system_start(&s->sys, &s->spec) != 0)
        return -1;

    hosting |= hosted;
    if (client_component)
        return 0;
    if (in_line) {
        size_t share_size;
        fs_system_client *c = &s->clients[0];
        c->commands = lx_system_region(&s->sys, FS_COMPONENT_REGION_COMMANDS, NULL);
        c->completions = lx_system_region(&s->sys, FS_COMPONENT_REGION_COMPLETIONS, NULL);
        c->share = lx_system_region(&s->sys, FS_COMPONENT_REGION_SHARE, &share_size);
        c->share_size = share_size;
        c->notify_fd = c->wait_fd = -1;
        return 0;
    }
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
        /* a bell left attached by an earlier owner of the fd's number would make the
         * server skip writes no one waits for by the protocol (channel_wake.h) */
        lx_bell_detach(c->wait_fd);
    }
    return 0;
}

void fs_system_inline_notify(fs_system *s)
{
    lx_loop *loop = lx_system_loop(&s->sys);
    if (loop)
        lx_loop_notify(loop, INLINE_CLIENT, 0);
}

void fs_system_inline_wait(fs_system *s, int timeout_ms)
{
    /* Deliver what was notified (on the page cache that is usually the whole answer, with
     * no system call but the driver's I/O), then wait for events (the driver's, at a real
     * device) until the server has answered. */
    inline_answered = false;
    lx_loop *loop = lx_system_loop(&s->sys);
    if (!loop)
        return;
    uint64_t start = 0;
    for (;;) {
        if (!lx_loop_deliver(loop)) {
            lx_system_run_once(&s->sys, 0); /* it stopped: the system learns it */
            return;
        }
        if (inline_answered)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (!start)
            start = now;
        uint64_t end = start + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
        int left = timeout_ms < 0 ? -1 : (int)(end > now ? end - now : 0);
        if (left == 0 || !lx_system_run_once(&s->sys, left) || inline_answered)
            return;
    }
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
    for (uint32_t i = 0; i < s->client_count; i++)
        lx_bell_detach(s->clients[i].wait_fd); /* none for -1 */
    if (s->layout == FS_SYSTEM_HOSTED || s->layout == FS_SYSTEM_INLINE)
        hosting = false;
    for (unsigned i = 0; i < s->spec.component_count; i++) {
        const lx_exit_report *r = &s->sys.exits[i];
        if (r->component && !r->signaled && r->code != 0)
            return -1;
        if (r->component && r->signaled && r->code != SIGTERM)
            return -1;
    }
    return 0;
}
