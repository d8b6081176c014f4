/* fs_system: asyncfat on Linux — the io_uring block driver and the file-system server —
 * with the calling process as the client (the launcher's host component), for the
 * asyncfat command, the FUSE mount, tests and benchmarks. The layout says where the two
 * run: in one thread, where a notification between them is a deferred call, either in a
 * process of their own (the default) or on a thread of the calling process (no process
 * to start: a short command's fixed cost); or each in a process of its own, as on
 * Microkit, with an eventfd hop for every notification.
 *
 * Client i talks to the server through its queues and share region (mapped here too) and
 * two eventfds: write 1 to notify_fd after queueing commands; wait_fd becomes readable
 * when the server has published completions (read it to clear it). A client that attaches
 * wait_fd's bell, notifies with lx_bell_ring and waits with lx_bell_wait
 * (channel_wake.h) saves those system calls and wake-ups in the hosted layout, where the
 * server's thread is in this process; in the others it is the same eventfd traffic.
 *
 * The component processes ignore SIGINT (the hosted thread blocks every signal), so a
 * Ctrl-C reaches only the client, which can DEINITIALISE (the server unmounts cleanly)
 * before fs_system_stop.
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_FS_SYSTEM_H
#define ASYNCFAT_PLATFORM_LINUX_FS_SYSTEM_H

#include "platform/linux/blk_driver.h"
#include "platform/linux/launcher.h"
#include "protocol/fs_protocol.h"
#include "server/fs_component.h"

#define FS_SYSTEM_MAX_CLIENTS 32u
/* About four times a FUSE round trip at one request in flight on the machines measured
 * (BENCHMARKS.md): long enough to catch the next request, short enough that going idle
 * costs little. */
#define FS_SYSTEM_BUSY_POLL_US 100

/* Where the components run. */
/* The components keep their state in static storage, so a process hosts one system at
 * a time: a second one asked for while one is hosted runs as FS_SYSTEM_SHARED. */
typedef enum fs_system_layout {
    FS_SYSTEM_HOSTED,           /* driver and server on one thread of this process */
    FS_SYSTEM_SHARED,           /* driver and server in one process, one thread */
    FS_SYSTEM_PROCESSES,        /* driver and server each in a process of its own */
    /* Driver and server run on the client's own thread, while it waits: the client
     * notifies with fs_system_inline_notify and waits in fs_system_inline_wait, which runs
     * them until the server has answered; no thread to wake, no eventfd (a one-shot
     * command). One client, on one thread at a time. */
    FS_SYSTEM_INLINE,
} fs_system_layout;

typedef struct fs_system_options {
    const char *image_path;
    fs_system_layout layout;
    uint16_t sector_size;       /* 0: the image's device, or 512 */
    bool read_only;
    uint32_t clients;           /* 1 .. FS_SYSTEM_MAX_CLIENTS; 0: 1 */
    uint64_t share_bytes;       /* per client; 0: 4 MiB */
    uint64_t data_bytes;        /* the block data region (cache + staging); 0: 48 MiB */
    /* Map the whole block data region at start (one call per process) rather than a page
     * at a time as the cache first uses each buffer: for a long-lived system (a mount, a
     * benchmark); a short command touches less than it would map. */
    bool populate;
    /* A short command that touches a few pages of its block data and share regions (a
     * listing of one directory): they are mapped in 4 KiB pages. Otherwise they take 2 MiB
     * transparent huge pages where the kernel allows (launcher.h), each cleared whole at
     * its first touch: about 0.2 ms in the virtual machine measured, the cost of twenty
     * 4 KiB faults there, which only pays where a command goes on to use the pages. */
    bool small_pages;
    uint32_t queue_capacity;    /* block queues; 0: 256 */
    uint32_t queue_depth;       /* driver requests in flight; 0: the driver's default */
    uint32_t offload_write_bytes; /* the driver's (blk_driver.h): WRITEs this large to an image
                                   * in memory are copied on an io_uring worker; 0: none */
    blk_device_model model;     /* all zero: no device model */
    blk_driver_faults faults;   /* all zero: none */
    fs_component_volume volume; /* the server's: partition, offset, time zone; all zero: the
                                   defaults (server/fs_component.h) */
    /* The server's background write-back (server/server.h): 0 the default
     * (FS_COMPONENT_WRITEBACK_MS), negative none, else milliseconds. */
    int32_t writeback_ms;
    /* FS_SYSTEM_HOSTED: how long the driver and server's thread polls for the next event
     * before it sleeps, while events come that close together (platform/linux/busy_poll.h):
     * negative never, else microseconds; 0 the default: FS_SYSTEM_BUSY_POLL_US with a
     * client component (the FUSE mount, whose requests come from a file descriptor), none
     * for a client on another thread of this process (channel_wake.h's spinning serves it;
     * busy polling beside it cost lat200 reads at 32 in flight a sixth of their rate). Other
     * layouts never poll (a Microkit system's components sleep). */
    int32_t busy_poll_us;
    /* A client that is a component of the system (the FUSE mount) instead of the calling
     * process: it runs on the hosted thread with the driver and the server (the layout is
     * then FS_SYSTEM_HOSTED, and the start fails if this process hosts one already), finds
     * client 0's regions and channel by the names in server/fs_component.h, and talks to
     * the server by deferred calls. The caller gets no client endpoint. */
    lx_component_entry client_component;
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
    lx_component_spec components[4];
    lx_region_spec regions[8];
    lx_channel_spec channels[1 + FS_SYSTEM_MAX_CLIENTS];
    char channel_names[FS_SYSTEM_MAX_CLIENTS][32];
    uint32_t client_count;
    fs_system_client clients[FS_SYSTEM_MAX_CLIENTS];
    fs_system_layout layout;    /* the one it runs in */
} fs_system;

/* Start the driver and the server on the image. Returns 0, or -1 with a message on
 * stderr (nothing is left running). */
int fs_system_start(fs_system *s, const fs_system_options *options);

/* FS_SYSTEM_INLINE: client 0 queued commands; run the driver and the server until they
 * have published completions for it, or timeout_ms passes (-1: no limit), or they stop. */
void fs_system_inline_notify(fs_system *s);
void fs_system_inline_wait(fs_system *s, int timeout_ms);

/* A component that has ended (crashed) since the start: true and a description. */
bool fs_system_failed(fs_system *s, char *why, size_t why_size);

/* Stop the driver and the server (SIGTERM, then SIGKILL after grace_ms). Returns 0 if
 * they were still running or ended with status 0, -1 otherwise. */
int fs_system_stop(fs_system *s, int grace_ms);

#endif
