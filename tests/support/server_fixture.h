/* server_fixture: the whole server in one process for tests and benchmarks: a RAM block
 * device holding an image made by mkfs.fat, the block client and cache, the FAT volume,
 * the server, and clients whose queues and share regions are ordinary memory.
 *
 * A client call writes a command into its queue; sf_run_until() drives the event loop
 * (device, then server pass) until the wanted completions arrive. */
#ifndef ASYNCFAT_SERVER_TESTS_SERVER_FIXTURE_H
#define ASYNCFAT_SERVER_TESTS_SERVER_FIXTURE_H

#include "fat/fat.h"
#include "server/server.h"
#include "tests/support/blk_fixture.h"

#define SF_MAX_CLIENTS 32
#define SF_SHARE_SIZE (1u << 20)

typedef struct sf_client {
    fs_queue *commands;
    fs_queue *completions;
    uint8_t *share;
    fs_queue_end command_end;     /* the client produces commands */
    fs_queue_end completion_end;  /* and consumes completions */
    uint64_t next_id;
    uint64_t notifications;
    uint64_t share_used;          /* bump allocator for sf_path/sf_buf */
} sf_client;

typedef struct server_fixture {
    char workdir[256];
    blk_fixture blk;
    fat_vfs fat;                  /* the engine the server is given */
    fs_server server;
    void *arena;                  /* the FAT engine's memory */
    sf_client clients[SF_MAX_CLIENTS];
    int client_count;
} server_fixture;

typedef struct sf_options {
    const char *workdir;          /* where images go (tests: test_tmpdir()) */
    const char *mkfs_args;        /* e.g. "-F 32"; NULL: "-F 16" */
    uint64_t image_bytes;         /* default 64 MiB */
    bool random_order;
    uint64_t seed;
    int clients;                  /* default 1 */
    uint32_t fibers;              /* default 64 */
    bool read_only;               /* the device is read-only */
    bool no_engine;               /* the server gets no engine (no volume could be set up) */
    uint64_t writeback_ns;        /* the server's background write-back; 0: none */
    uint64_t (*clock_ns)(void *ctx); /* its clock (a test's own) */
    void *clock_ctx;
} sf_options;

/* Returns 0, or -1 with a message. */
int sf_init(server_fixture *f, const sf_options *opts);
void sf_fini(server_fixture *f);

/* Queue a command (id assigned, returned). Returns 0 if the queue is full. */
uint64_t sf_submit(server_fixture *f, int client, uint64_t type, const void *params, size_t params_size);
/* Take one completion if there is one. */
bool sf_take(server_fixture *f, int client, fs_cmpl *out);
/* One device step and one server pass; true if anything happened. */
bool sf_step(server_fixture *f);
/* Submit and drive the loop until this command's completion arrives. */
fs_cmpl sf_call(server_fixture *f, int client, uint64_t type, const void *params, size_t params_size);

/* Share-region helpers: reserve (and fill) a buffer in the client's share region. Reset
 * with sf_share_reset. */
fs_buffer sf_buf(server_fixture *f, int client, const void *data, size_t len);
fs_buffer sf_path(server_fixture *f, int client, const char *path);
void sf_share_reset(server_fixture *f, int client);
static inline uint8_t *sf_share(server_fixture *f, int client, fs_buffer buf)
{
    return f->clients[client].share + buf.offset;
}

/* INITIALISE, opting in to asyncfat's extensions or not (a LionsOS client). */
uint64_t sf_initialise(server_fixture *f, int client, bool extensions);
/* Convenience wrappers: status, with *data (fd, bytes...) when data != NULL. */
uint64_t sf_open(server_fixture *f, int client, const char *path, uint64_t flags, uint64_t *fd);
uint64_t sf_write(server_fixture *f, int client, uint64_t fd, uint64_t offset, const void *data, size_t len, uint64_t *done);
uint64_t sf_read(server_fixture *f, int client, uint64_t fd, uint64_t offset, void *out, size_t len, uint64_t *done);
uint64_t sf_close(server_fixture *f, int client, uint64_t fd);
uint64_t sf_simple_path(server_fixture *f, int client, uint64_t type, const char *path);

/* Write the device image to a file in the workdir and run `fsck.fat -n` on it: 0 when
 * clean. */
int sf_fsck(server_fixture *f, const char *name);

#endif
