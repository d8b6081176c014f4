/* server: the asynchronous file-system server (LionsOS protocol, one fiber per request).
 *
 * Owns: the connections to its clients (command and completion queues, share regions,
 * per-client fd tables) and the request records. Calls: the engine it is given (vfs/vfs.h:
 * any engine, the composition root picks one), the block client (to drain its responses
 * and notify the driver once per pass), FiberPool, and the notify callbacks the platform
 * gives it. Never calls libc.
 *
 * Event flow: the platform calls fs_server_notified() whenever any channel fires (a client
 * or the block driver). One call is one pass, repeated until it makes no progress: drain
 * block responses (waking the tasks that wait for them); take commands, round robin over
 * clients, while a request record and a fiber slot are free, copying each out of shared
 * memory and spawning a task for it; run ready tasks until all are blocked or done;
 * publish completions while each client's completion queue has room. Then it notifies
 * each client that got completions, and the driver, at most once.
 *
 * Fairness: each client holds at most min(FS_SERVER_REQUESTS, fiber slots) / (connected
 * clients) request records (in flight or waiting to be published), so a client that never
 * reads its completions, or keeps requests blocked, stalls only itself.
 *
 * Trust: clients are hostile. Every command is copied before it is looked at; every
 * buffer, fd, path, flag and command number is checked; a bad one gets an error status.
 * Every command gets exactly one completion. A client names only its own fds (each fd
 * carries a generation, so a stale one is INVALID_FD; all are below 2^31) and its own
 * share region. Queue
 * counters are kept privately (fs_queue_end), so a client rewriting its queues cannot make
 * the server read or write outside them.
 *
 * Volume lifetime: the first INITIALISE mounts the volume; DEINITIALISE waits for the
 * client's other requests, closes its fds, and when no client remains initialised,
 * unmounts (sync, clean flag). Commands other than INITIALISE before it: NOT_MOUNTED.
 *
 * Background write-back (writeback.c): a command that may change the volume marks it
 * dirty; once it has been dirty for writeback_ns, a pass spawns a task that syncs the
 * volume (vfs sync: every change before it durable, one FLUSH or two), as ext4 commits
 * every 5 s, so a crash or a power cut loses at most that window of changes that no
 * fsync covered. The server has no timer of its own: fs_server_deadline says when the
 * next write-back is due, and the platform arms a timer for it and runs a pass then (a
 * platform without timers still writes back at the first pass after the deadline).
 *
 * Dialects: a client that opted in at INITIALISE (FS_INITIALISE_MAGIC) gets asyncfat's
 * extension commands, flags, statuses and notification coalescing; any other is served
 * as LionsOS serves it, extended statuses mapped to the nearest LionsOS ones
 * (docs/PROTOCOL.md §2).
 */
#ifndef ASYNCFAT_SERVER_H
#define ASYNCFAT_SERVER_H

#include "base/base.h"
#include "blk/blk.h"
#include "fiberpool/fiberpool.h"
#include "protocol/fs_protocol.h"
#include "vfs/vfs.h"

/* Build-time limits (override with -D). */
#ifndef FS_SERVER_MAX_CLIENTS
#define FS_SERVER_MAX_CLIENTS 32u
#endif
#ifndef FS_SERVER_MAX_FDS
#define FS_SERVER_MAX_FDS 128u    /* per client */
#endif
#ifndef FS_SERVER_REQUESTS
#define FS_SERVER_REQUESTS 128u   /* request records: in flight plus unpublished completions */
#endif

typedef struct fs_server fs_server;

typedef struct fs_fd {
    vfs_node *node;          /* a file or a directory: the engine says which */
    uint64_t dir_pos;        /* directory fds: readdir position */
    fp_mutex dir_lock;       /* orders readdir/seek/tell on one directory fd */
    uint32_t generation;     /* part of the fd number */
    uint16_t borrows;        /* requests using the fd right now */
    uint16_t free_next;      /* free slots, oldest first */
    bool in_use;
    bool closing;            /* closed by the client; the node is closed when borrows reach 0 */
    bool can_read, can_write, append;
} fs_fd;

typedef struct fs_request fs_request;

/* One client's connection: its queues, share region, fd table and requests. */
typedef struct fs_connection {
    fs_server *server;
    fs_queue_end commands;   /* we consume */
    fs_queue_end completions; /* we produce */
    uint8_t *share;
    uint64_t share_size;
    void (*notify)(void *ctx);
    void *notify_ctx;
    fs_fd fds[FS_SERVER_MAX_FDS];
    uint16_t fd_free_head, fd_free_tail;
    uint32_t in_flight;      /* requests taken and not yet completed */
    uint32_t held;           /* request records it holds: in flight or unpublished */
    fp_queue drain_waiters;  /* DEINITIALISE waits here for in_flight to drop */
    uint32_t draining;       /* DEINITIALISE requests waiting there */
    fs_request *done_head, *done_tail; /* completed, not yet published */
    bool initialised;
    bool extensions;         /* opted in at its last INITIALISE (FS_INITIALISE_EXTENSIONS) */
    bool notify_needed;
} fs_connection;

struct fs_request {
    fs_cmd cmd;              /* the copy taken from the queue */
    fs_cmpl cmpl;
    fs_server *server;
    fs_connection *client;
    fs_request *next;        /* free list or the client's done list */
};

typedef struct fs_server_stats {
    uint64_t writebacks;     /* background syncs run */
    uint64_t writeback_errors; /* of which failed (retried after another interval) */
    uint64_t passes;
    uint64_t commands;
    uint64_t completions;
    uint64_t client_notifications;
} fs_server_stats;

struct fs_server {
    fp_pool *pool;
    blk_client *blk;
    vfs_engine engine;
    fs_connection clients[FS_SERVER_MAX_CLIENTS];
    uint32_t client_count;
    uint32_t next_client;    /* round-robin start */
    fs_request requests[FS_SERVER_REQUESTS];
    fs_request *free_requests;
    uint32_t initialised_clients;
    fp_mutex mount_lock;
    /* background write-back */
    uint64_t writeback_ns;   /* 0: off */
    uint64_t (*clock_ns)(void *ctx);
    void *clock_ctx;
    uint64_t dirty_since;    /* when the first change not yet written back was made */
    bool dirty;              /* changes made since the last write-back began */
    bool writeback_running;
    fs_server_stats stats;
};

typedef struct fs_server_config {
    fp_pool *pool;
    blk_client *blk;         /* NULL: no block side (the engine needs none, or there is none) */
    vfs_engine engine;       /* mounted by the first INITIALISE. ops NULL: no volume could be
                                set up, INITIALISE answers ALLOCATION_ERROR */
    /* Background write-back after the volume has been dirty this long; 0 (or no clock):
     * none, changes are durable at FILE_SYNC (of a file or a directory), at the last
     * DEINITIALISE, or when the engine flushes for reasons of its own. */
    uint64_t writeback_ns;
    uint64_t (*clock_ns)(void *ctx); /* monotonic nanoseconds */
    void *clock_ctx;
} fs_server_config;

#define FS_SERVER_NO_DEADLINE UINT64_MAX

typedef struct fs_connection_config {
    fs_queue *commands;
    fs_queue *completions;
    uint8_t *share;
    uint64_t share_size;
    void (*notify)(void *ctx);
    void *notify_ctx;
} fs_connection_config;

void fs_server_init(fs_server *server, const fs_server_config *config);
/* Connect a client. Returns its index, or -1 when FS_SERVER_MAX_CLIENTS are connected. */
int fs_server_add_connection(fs_server *server, const fs_connection_config *config);

/* Root: one event-loop pass (see above). Returns true if it did anything. */
bool fs_server_notified(fs_server *server);

/* The monotonic time (clock_ns) at which the server wants a pass for its write-back, or
 * FS_SERVER_NO_DEADLINE. Ask after every pass; the answer changes only in a pass. */
uint64_t fs_server_deadline(const fs_server *server);

/* True when nothing is in flight and nothing waits to be published. */
bool fs_server_idle(const fs_server *server);

static inline const fs_server_stats *fs_server_get_stats(const fs_server *server) { return &server->stats; }

#endif
