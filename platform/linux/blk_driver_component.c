/* The block driver's component glue: find the regions, open the driver, and poll it on
 * every client notification and every I/O event, notifying the client once per poll that
 * produced responses. */
#include "platform/linux/blk_driver_component.h"
#include "platform/linux/image_lock.h"

#include "platform/linux/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static blk_driver_config config;
static uint32_t configured_capacity;
static blk_driver *driver;
static unsigned client_channel;

void blk_driver_component_configure(const blk_driver_config *c, uint32_t queue_capacity)
{
    config = *c;
    configured_capacity = queue_capacity;
}

static void serve(void)
{
    if (blk_driver_poll(driver) > 0)
        component_notify(client_channel);
}

static void on_io_event(void *ctx)
{
    AF_UNUSED(ctx);
    serve();
}

void blk_driver_component_init(void)
{
    size_t info_size = 0, req_size = 0, resp_size = 0, data_size = 0;
    blk_storage_info *info = component_region(BLK_REGION_STORAGE_INFO, &info_size);
    void *req = component_region(BLK_REGION_REQUESTS, &req_size);
    void *resp = component_region(BLK_REGION_RESPONSES, &resp_size);
    void *data = component_region(BLK_REGION_DATA, &data_size);
    client_channel = component_channel(BLK_CHANNEL_CLIENT);
    if (!info || !req || !resp || !data || info_size < sizeof *info || req_size < sizeof(blk_req_queue) ||
        resp_size < sizeof(blk_resp_queue) || client_channel == COMPONENT_NO_CHANNEL) {
        component_log("missing regions or channel");
        lx_runtime_stop(1);
        return;
    }
    size_t fits = af_min_u64((req_size - sizeof(blk_req_queue)) / sizeof(blk_request),
                             (resp_size - sizeof(blk_resp_queue)) / sizeof(blk_response));
    uint32_t capacity = configured_capacity ? configured_capacity : (uint32_t)af_min_u64(fits, UINT32_MAX);
    if (capacity == 0 || capacity > fits) {
        component_log("queue capacity does not fit the queue regions");
        lx_runtime_stop(1);
        return;
    }
    blk_queue_handle queues;
    blk_queue_init(&queues, req, resp, capacity);
    int error;
    driver = blk_driver_open(&config, info, queues, data, data_size, &error);
    if (!driver) {
        char line[4200];
        int pid = 0;
        if (error == EBUSY && config.path && image_lock_probe(config.path, !config.read_only, &pid) != ENOENT)
            image_lock_busy_message(config.path, pid, line, sizeof line);
        else
            snprintf(line, sizeof line, "cannot open %s: %s", config.path ? config.path : "(none)", strerror(error));
        component_log(line);
        lx_runtime_stop(1);
        return;
    }
    if (lx_runtime_watch_fd(blk_driver_event_fd(driver), on_io_event, NULL) != 0) {
        component_log("cannot watch the driver's events");
        lx_runtime_stop(1);
        return;
    }
    /* the client may be waiting for ready; and requests may be queued already */
    blk_driver_poll(driver);
    component_notify(client_channel);
}

void blk_driver_component_notified(unsigned channel)
{
    if (driver && channel == client_channel)
        serve();
}

void blk_driver_component_fini(void)
{
    blk_driver_close(driver);
    driver = NULL;
}
