/* The configuration a Microkit protection domain reads from named ELF sections, the way
 * sDDF and LionsOS configure theirs: the system's generator (sDDF's sdfgen, LionsOS's
 * metaprogram, or sel4/gen_system.py here) writes each struct's bytes, and the build puts
 * them into the PD's ELF with `objcopy --update-section <section>=<file>`.
 *
 *   .blk_client_config   mk_blk_client_config    sDDF's blk_client_config_t
 *   .fs_server_config    mk_fs_server_config     LionsOS's fs_server_config_t (one client)
 *   .asyncfat_config     mk_asyncfat_config      asyncfat's: more clients, fiber stack
 *                                                areas, the wall clock; all zero (absent)
 *                                                in a LionsOS system
 *   .fs_client_config    mk_fs_client_config     LionsOS's fs_client_config_t (test clients)
 *   .timer_client_config mk_timer_client_config  sDDF's timer_client_config_t: the channel to
 *                                                a timer driver, for write-back deadlines
 *                                                (optional: zero when the system has none)
 *
 * The layouts are written from sDDF's and LionsOS's documented definitions (LP64, natural
 * alignment, the same on aarch64 and riscv64) and pinned here field by field;
 * sel4/layout_check.c compiles them against sDDF's own headers. A PD checks each section's
 * magic before it trusts anything in it.
 */
#ifndef ASYNCFAT_PLATFORM_MICROKIT_CONFIG_H
#define ASYNCFAT_PLATFORM_MICROKIT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* A region mapped into the PD: where, and how many bytes. (sDDF region_resource_t) */
typedef struct mk_region_resource {
    void *vaddr;
    uint64_t size;
} mk_region_resource;

/* ---- sDDF block client (include/sddf/blk/config.h) ------------------------------------- */

#define MK_BLK_MAGIC_LEN 5
#define MK_BLK_MAGIC "sDDF\x02"

typedef struct mk_blk_connection {
    mk_region_resource storage_info;
    mk_region_resource req_queue;
    mk_region_resource resp_queue;
    uint16_t num_buffers;           /* the queues' capacity, in entries */
    uint8_t id;                     /* the channel to the virtualiser (or driver) */
} mk_blk_connection;

typedef struct mk_blk_client_config {
    char magic[MK_BLK_MAGIC_LEN];
    mk_blk_connection virt;
    mk_region_resource data;        /* the DMA-able data region requests name offsets in */
} mk_blk_client_config;

/* ---- sDDF timer client (include/sddf/timer/config.h, protocol.h) ------------------------- */

#define MK_TIMER_MAGIC_LEN 5
#define MK_TIMER_MAGIC "sDDF\x06"
/* Protected-procedure-call labels of sDDF's timer drivers; SET_TIMEOUT takes a relative
 * timeout in nanoseconds in message register 0 and notifies the caller's channel when it
 * has passed (one pending timeout per client: a new one replaces it). */
#define MK_TIMER_GET_TIME 0u
#define MK_TIMER_SET_TIMEOUT 1u

typedef struct mk_timer_client_config {
    char magic[MK_TIMER_MAGIC_LEN];
    uint8_t driver_id;              /* the channel to the timer driver (ppcall) */
} mk_timer_client_config;

/* ---- LionsOS file system (include/lions/fs/config.h) ----------------------------------- */

#define MK_FS_MAGIC_LEN 8
#define MK_FS_MAGIC "LionsOS\x01"

typedef struct mk_fs_connection {
    mk_region_resource command_queue;
    mk_region_resource completion_queue;
    mk_region_resource share;
    uint16_t queue_len;             /* entries; LionsOS's generator writes 512 */
    uint8_t id;                     /* the channel to the peer */
} mk_fs_connection;

typedef struct mk_fs_server_config {
    uint8_t magic[MK_FS_MAGIC_LEN];
    mk_fs_connection client;
} mk_fs_server_config;

typedef struct mk_fs_client_config {
    uint8_t magic[MK_FS_MAGIC_LEN];
    mk_fs_connection server;
} mk_fs_client_config;

/* ---- asyncfat's own section -------------------------------------------------------------- */

#define MK_ASYNCFAT_MAGIC_LEN 8
#define MK_ASYNCFAT_MAGIC "asyncfa\x01"
/* Clients beyond the one in .fs_server_config. */
#define MK_ASYNCFAT_MAX_EXTRA_CLIENTS 7u
#define MK_ASYNCFAT_MAX_STACK_AREAS 4u

/* `count` fiber stacks of `size` bytes at vaddr + k * stride. A generator that maps each
 * stack as its own region with unmapped gaps between (stride > size) gives every stack a
 * guard below it. */
typedef struct mk_stack_area {
    void *vaddr;
    uint64_t stride;
    uint64_t size;
    uint64_t count;
} mk_stack_area;

typedef struct mk_asyncfat_config {
    uint8_t magic[MK_ASYNCFAT_MAGIC_LEN];
    int64_t wall_clock;             /* Unix seconds at boot; 0: the time asyncfat was built */
    uint32_t client_count;          /* connections used in clients[] */
    uint32_t stack_area_count;      /* 0: LionsOS's four worker stacks (setvar symbols) */
    mk_stack_area stacks[MK_ASYNCFAT_MAX_STACK_AREAS];
    mk_fs_connection clients[MK_ASYNCFAT_MAX_EXTRA_CLIENTS]; /* clients 1, 2, ... */
} mk_asyncfat_config;

/* ---- the layouts, pinned ------------------------------------------------------------------ */

_Static_assert(sizeof(void *) == 8, "LP64");
_Static_assert(sizeof(mk_region_resource) == 16, "region_resource_t");
_Static_assert(offsetof(mk_region_resource, size) == 8, "region_resource_t.size");

_Static_assert(sizeof(mk_blk_connection) == 56, "blk_connection_resource_t");
_Static_assert(offsetof(mk_blk_connection, storage_info) == 0, "blk_connection_resource_t.storage_info");
_Static_assert(offsetof(mk_blk_connection, req_queue) == 16, "blk_connection_resource_t.req_queue");
_Static_assert(offsetof(mk_blk_connection, resp_queue) == 32, "blk_connection_resource_t.resp_queue");
_Static_assert(offsetof(mk_blk_connection, num_buffers) == 48, "blk_connection_resource_t.num_buffers");
_Static_assert(offsetof(mk_blk_connection, id) == 50, "blk_connection_resource_t.id");
_Static_assert(sizeof(mk_blk_client_config) == 80, "blk_client_config_t");
_Static_assert(offsetof(mk_blk_client_config, magic) == 0, "blk_client_config_t.magic");
_Static_assert(offsetof(mk_blk_client_config, virt) == 8, "blk_client_config_t.virt");
_Static_assert(offsetof(mk_blk_client_config, data) == 64, "blk_client_config_t.data");

_Static_assert(sizeof(mk_timer_client_config) == 6, "timer_client_config_t");
_Static_assert(offsetof(mk_timer_client_config, driver_id) == 5, "timer_client_config_t.driver_id");

_Static_assert(sizeof(mk_fs_connection) == 56, "fs_connection_resource_t");
_Static_assert(offsetof(mk_fs_connection, command_queue) == 0, "fs_connection_resource_t.command_queue");
_Static_assert(offsetof(mk_fs_connection, completion_queue) == 16, "fs_connection_resource_t.completion_queue");
_Static_assert(offsetof(mk_fs_connection, share) == 32, "fs_connection_resource_t.share");
_Static_assert(offsetof(mk_fs_connection, queue_len) == 48, "fs_connection_resource_t.queue_len");
_Static_assert(offsetof(mk_fs_connection, id) == 50, "fs_connection_resource_t.id");
_Static_assert(sizeof(mk_fs_server_config) == 64, "fs_server_config_t");
_Static_assert(offsetof(mk_fs_server_config, client) == 8, "fs_server_config_t.client");
_Static_assert(sizeof(mk_fs_client_config) == 64, "fs_client_config_t");
_Static_assert(offsetof(mk_fs_client_config, server) == 8, "fs_client_config_t.server");

_Static_assert(sizeof(mk_stack_area) == 32, "asyncfat stack area");
_Static_assert(offsetof(mk_stack_area, stride) == 8 && offsetof(mk_stack_area, size) == 16 &&
                   offsetof(mk_stack_area, count) == 24,
               "asyncfat stack area fields");
_Static_assert(offsetof(mk_asyncfat_config, wall_clock) == 8, "asyncfat config wall_clock");
_Static_assert(offsetof(mk_asyncfat_config, client_count) == 16, "asyncfat config client_count");
_Static_assert(offsetof(mk_asyncfat_config, stack_area_count) == 20, "asyncfat config stack_area_count");
_Static_assert(offsetof(mk_asyncfat_config, stacks) == 24, "asyncfat config stacks");
_Static_assert(offsetof(mk_asyncfat_config, clients) == 24 + 32 * MK_ASYNCFAT_MAX_STACK_AREAS,
               "asyncfat config clients");
_Static_assert(sizeof(mk_asyncfat_config) == 152 + 56 * MK_ASYNCFAT_MAX_EXTRA_CLIENTS, "asyncfat config");

#endif
