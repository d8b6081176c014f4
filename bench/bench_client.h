/* bench_client: the raw protocol client that benchmark programs share. It drives one
 * fs_system client endpoint directly (no fs_client library, no threads), so a benchmark
 * controls exactly how many requests are in flight and how often it is woken.
 *
 * A bench_conn belongs to one thread. Command ids are the caller's (benchmarks use a slot
 * number); bench_call uses ids from BENCH_CALL_ID up and drops any other completion it
 * sees while it waits, so call it only when nothing else is in flight.
 * bench_pipeline keeps `depth` units of work in flight through caller callbacks. Any
 * failure to talk to the server ends the program with a message (these are benchmarks).
 */
#ifndef ASYNCFAT_BENCH_BENCH_CLIENT_H
#define ASYNCFAT_BENCH_BENCH_CLIENT_H

#include "platform/linux/channel_wake.h"
#include "platform/linux/fs_system.h"

#define BENCH_CALL_ID (1ull << 40)
#define BENCH_MAX_DEPTH 64u

typedef struct bench_conn {
    fs_system_client *ep;
    fs_system *inline_system;    /* the system's inline layout: run it here to wait; else NULL */
    fs_queue_end commands;
    fs_queue_end completions;
    uint64_t next_call_id;
    uint64_t notifications;      /* eventfd notifications received from the server */
    lx_spin spin;                /* waiting for a server of this process (channel_wake.h) */
} bench_conn;

double bench_now(void);
uint64_t bench_rand(uint64_t *state);   /* xorshift64; state must not be 0 */

/* Start the driver and server on image in `layout` with the given model (NULL: none),
 * `clients` endpoints and a block data region of data_bytes (0: the default). Exits on
 * failure. */
void bench_system_start(fs_system *sys, const char *image, fs_system_layout layout, const blk_device_model *model,
                        uint32_t clients, uint64_t data_bytes, uint64_t share_bytes);
/* CPU time (user + system) of the process of one of the system's components, in seconds
 * (0 for one hosted in this process). */
double bench_process_cpu_s(const fs_system *sys, int component);

/* A connection to client `index` of sys (which, in the inline layout, this thread runs). */
void bench_conn_init(bench_conn *c, fs_system *sys, uint32_t index);
/* Copy data into the share region at offset; returns the buffer naming it. */
fs_buffer bench_put(bench_conn *c, uint64_t offset, const void *data, size_t len);
/* Queue one command (waits while the queue is full); notify separately. */
void bench_submit(bench_conn *c, uint64_t type, const void *params, size_t size, uint64_t id);
void bench_notify(bench_conn *c);
/* Take at least one completion (waiting for the server), at most max. */
uint32_t bench_wait(bench_conn *c, fs_msg *out, uint32_t max);
/* One command, waited for. */
fs_cmpl bench_call(bench_conn *c, uint64_t type, const void *params, size_t size);
/* bench_call that must succeed; returns the completion's data. */
uint64_t bench_call_ok(bench_conn *c, uint64_t type, const void *params, size_t size, const char *what);

/* INITIALISE / DEINITIALISE, exiting on failure. */
void bench_mount(bench_conn *c);
void bench_unmount(bench_conn *c);

/* Pipelined work. issue(ctx, c, slot) queues the next command of a new unit with id =
 * slot, or returns false when there is no more work; complete(ctx, c, slot, cmpl) handles
 * a completion and returns true if the unit is finished, or false after queueing the
 * unit's next command itself (a chain such as open, then close). */
typedef struct bench_work {
    bool (*issue)(void *ctx, bench_conn *c, uint32_t slot);
    bool (*complete)(void *ctx, bench_conn *c, uint32_t slot, const fs_cmpl *cmpl);
    void *ctx;
} bench_work;

typedef struct bench_result {
    uint64_t units;              /* finished within the measured time */
    double seconds;
} bench_result;

/* Keep up to `depth` units in flight until issue says there is no more work or, if
 * seconds > 0, until that much time has passed (units still in flight then are finished
 * but not counted). The completion queue's notify_threshold is set to depth / 2 meanwhile. */
bench_result bench_pipeline(bench_conn *c, uint32_t depth, double seconds, const bench_work *work);

#endif
