/* fs_system: asyncfat on Linux as a system of processes — the io_uring block driver and
 * the file-system server, each its own process — with the calling process as the client
 * (the launcher's host component), for the asyncfat command, the FUSE mount, tests and
 * benchmarks.
 *
 * Client i talks to the server through its queues and share region (mapped here too) and
 * two eventfds: write 1 to notify_fd after queueing commands; wait_fd becomes readable
 * when the server has published completions (read it to clear it).
 *
 * Both component processes ignore SIGINT, so a Ctrl-C reaches only the client, which can
 * DEINITIALISE (the server unmounts cleanly) before fs_system_stop.
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_FS_SYSTEM_H
#define ASYNCFAT_PLATFORM_LINUX_FS_SYSTEM_H

#include "platform/linux/blk_driver.h"
#include "platform/linux/launcher.h"
#include "protocol/fs_protocol.h"
#include "server/fs_component.h"

#define FS_SYSTEM_MAX_CLIENTS 32u

typedef struct fs_system_options {
    const char *image_path;
    uint16_t sector_size;       /* 0: the image's device, or 512 */
    bool read_only;
    uint32_t clients;           /* 1 .. FS_SYSTEM_MAX_CLIENTS; 0: 1 */
    uint64_t share_bytes;       /* per client; 0: 4 MiB */
    uint64_t data_bytes;        /* the block data region (cache + staging); 0: 48 MiB */
    uint32_t queue_capacity;    /* block queues; 0: 256 */
    uint32_t queue_depth;       /* driver requests in flight; 0: the driver's default */
    blk_device_model model;     /* all zero: no device model */
    blk_driver_faults faults;   /* all zero: none */
    fs_component_volume volume; /* the server's: partition, offset, time zone; all zero: the
                                   defaults (server/fs_component.h) */
} fs_system_options;

typedef struct fs_system_client {
    fs_queue *commands;
    fs_queue *completions;
    uint8_t *share;
    uint64_t share_size;
    int notify_fd;
    int wait_fd;
} fs_system_client;

typedef struct fs_system {
    lx_system sys;
    lx_system_spec spec;
    lx_component_spec components[3];
    lx_region_spec regions[8];
    lx_channel_spec channels[1 + FS_SYSTEM_MAX_CLIENTS];
    char channel_names[FS_SYSTEM_MAX_CLIENTS][32];
    uint32_t client_count;
    fs_system_client clients[FS_SYSTEM_MAX_CLIENTS];
} fs_system;

/* Start the driver and the server on the image. Returns 0, or -1 with a message on
 * stderr (nothing is left running). */
int fs_system_start(fs_system *s, const fs_system_options *options);

/* A component that has ended (crashed) since the start: true and a description. */
bool fs_system_failed(fs_system *s, char *why, size_t why_size);

/* Stop both processes (SIGTERM, then SIGKILL after grace_ms). Returns 0 if both were
 * still running or ended with status 0, -1 otherwise. */
int fs_system_stop(fs_system *s, int grace_ms);

#endif
