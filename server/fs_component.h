/* The file-system server as a component (platform/component.h): the same source runs as
 * a Linux process and as a Microkit protection domain (platform/microkit).
 *
 * Regions it maps (names shared with the system description):
 *   blk_storage_info, blk_requests, blk_responses, blk_data   the block driver connection
 *   fs_arena          engine and cache metadata; size it with fs_component_arena_bytes(),
 *                     or give a fixed size: the FAT free map takes what the rest leaves
 *   fs_commands       client i's command queue at i * sizeof(fs_queue)
 *   fs_completions    client i's completion queue at i * sizeof(fs_queue)
 *   fs_share          client i's share region: the region split in equal parts
 * The number of clients is the command region's size / sizeof(fs_queue) (at most
 * FS_SERVER_MAX_CLIENTS). A system that maps each client's regions apart names them
 * fs_commands_<i>, fs_completions_<i>, fs_share_<i> instead (clients 0, 1, ... until one is
 * missing). Channels: "blk_client" to the driver, "fs_client_<i>" to client i.
 * The block queues' capacity is read from the request region's size. The data region
 * holds the cache's buffers and staging slots, sized from it (blk_stack), and, when the
 * system maps the share region as a window at the data region's end, the clients'
 * buffers too: reads then move from the device straight into a client's buffer (the
 * driver must be trusted with them). If the storage info is not ready at init, the server
 * starts at the driver's first notification.
 */
#ifndef ASYNCFAT_SERVER_FS_COMPONENT_H
#define ASYNCFAT_SERVER_FS_COMPONENT_H

#include "base/base.h"
#include "fat/fat.h"
#include "fiberpool/fiberpool.h"

#define FS_COMPONENT_REGION_ARENA "fs_arena"
#define FS_COMPONENT_CHANNEL_BLK "blk_client" /* as the block driver component names it */
/* Build-time limits (override with -D): fibers and their stacks (the platform may give
 * fewer), whether to paint stacks to measure their use, and FS_COMPONENT_MAX_NODES /
 * FS_COMPONENT_INDEX_ENTRIES in place of the engine's defaults. */
#ifndef FS_COMPONENT_FIBERS
#define FS_COMPONENT_FIBERS 64u
#endif
#ifndef FS_COMPONENT_STACK_SIZE
#define FS_COMPONENT_STACK_SIZE (64u * 1024u)
#endif
#ifndef FS_COMPONENT_PAINT_STACKS
#define FS_COMPONENT_PAINT_STACKS 0
#endif
#define FS_COMPONENT_READ_AHEAD_BLOCKS 256u /* 1 MiB; less in a small data region (blk_stack) */
#define FS_COMPONENT_BLOCK_REQUESTS 1024u   /* in flight at most (no more than the queues hold) */

/* What the platform or the tool that starts the server chooses about the volume. All zero
 * is the default: the partition found automatically, times in UTC. A Microkit build fills
 * it from the system's configuration; on Linux fs_system passes fs_system_options.volume.
 * Set it before fs_component_init (a forked server inherits it); the server takes its copy
 * at init. */
typedef struct fs_component_volume {
    uint32_t partition;          /* 0: automatic; N: entry N of the MBR or GPT (1-based, as
                                    Linux numbers partitions) */
    bool at_offset;              /* the volume starts at byte `offset`; no table is read */
    uint64_t offset;             /* bytes, a multiple of 512 */
    int32_t time_offset_minutes; /* directory entries hold local time this far east of UTC
                                    (vfat's time_offset; -1440..1440); 0: UTC */
    bool discard;                /* tell the device which blocks freed clusters held
                                    (fat_config.discard; Linux drivers only) */
} fs_component_volume;
void fs_component_configure(const fs_component_volume *volume);

/* Background write-back (server.h): after the volume has been dirty this long. */
#define FS_COMPONENT_WRITEBACK_MS 5000u

/* Before fs_component_init: the write-back interval in milliseconds, 0 for none (the
 * default is FS_COMPONENT_WRITEBACK_MS). */
void fs_component_set_writeback_ms(uint32_t ms);

/* When the server wants fs_component_notified called again (any channel, or
 * COMPONENT_TIMER_CHANNEL), in component_time_ns's clock: UINT64_MAX for never. The
 * platform asks after init and after every notification, and arms its timer. */
uint64_t fs_component_deadline(void);

/* The component's entry points (a Microkit build maps component_init/notified to them;
 * on Linux the launcher calls them in the server's process). */
void fs_component_init(void);
void fs_component_notified(unsigned channel);

/* Bytes the fs_arena region needs for a device of device_bytes and data_bytes of data
 * region for the cache (without the clients' window); 0 when that cannot hold a cache. */
size_t fs_component_arena_bytes(uint64_t device_bytes, uint64_t data_bytes);

#define FS_COMPONENT_REGION_COMMANDS "fs_commands"
#define FS_COMPONENT_REGION_COMPLETIONS "fs_completions"
#define FS_COMPONENT_REGION_SHARE "fs_share"

/* For the platform's diagnostics: the fiber pool (NULL before the server started), whether
 * the volume is mounted, and how memory was laid out at start. */
typedef struct fs_component_memory {
    uint32_t fibers;
    uint32_t cache_buffers;
    uint32_t staging_slots, staging_blocks;
    size_t arena_size;
    size_t arena_fixed;        /* cache metadata and the FAT tables other than the free map */
    uint64_t free_map_clusters; /* the largest volume the rest of the arena maps */
} fs_component_memory;
const fp_pool *fs_component_pool(void);
bool fs_component_mounted(void);
/* What the mount found and did (a dirty volume's recovery); NULL while not mounted. */
const fat_mount_report *fs_component_mount_report(void);
const fs_component_memory *fs_component_memory_use(void);

/* Channel name of client i ("fs_client_3"): writes a NUL-terminated name into buf (at
 * least 32 bytes). */
void fs_component_client_name(char *buf, const char *prefix, uint32_t i);

#endif
