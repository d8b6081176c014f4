/* Units of work for bench_pipeline (bench/bench_client.h) that the report's protocol
 * workloads are made of: file reads and writes (sequential through one file or random
 * over a set of files) and metadata operations (create, stat, remove) on numbered files
 * in one directory.
 *
 * Share-region layout, per connection: slot s's path and stat buffers at s * 512 (the
 * first 32 KiB), its data buffer at REPORT_DATA_BASE + s * io_bytes.
 */
#ifndef ASYNCFAT_BENCH_REPORT_REPORT_WORK_H
#define ASYNCFAT_BENCH_REPORT_REPORT_WORK_H

#include "bench/bench_client.h"

#define REPORT_DATA_BASE (64u * 1024u)
#define REPORT_MAX_FILES 64u

typedef struct io_work {
    uint64_t type;              /* FS_CMD_FILE_READ or FS_CMD_FILE_WRITE */
    uint64_t fds[REPORT_MAX_FILES];
    uint32_t file_count;
    uint64_t file_bytes;
    uint32_t io_bytes;
    bool sequential;            /* through fds[0] from offset 0 */
    bool wrap;                  /* sequential: start again at 0 instead of stopping */
    uint64_t cursor;
    uint64_t rng;
} io_work;

typedef enum meta_op { META_CREATE, META_STAT, META_REMOVE } meta_op;

typedef struct meta_work {
    meta_op op;
    const char *dir;
    uint32_t count;             /* files dir/f00000 .. count - 1 */
    uint32_t file_bytes;        /* create: write this many bytes (at most 4 KiB) before the close */
    uint32_t next;
    uint8_t step[BENCH_MAX_DEPTH]; /* create: 0 opening, 1 writing, 2 closing */
    uint64_t fd[BENCH_MAX_DEPTH];
} meta_work;

bench_work io_work_bind(io_work *w);
bench_work meta_work_bind(meta_work *w);

/* Blocking helpers for setup. */
uint64_t report_open(bench_conn *c, const char *path, uint64_t flags);
void report_close(bench_conn *c, uint64_t fd);
void report_mkdir(bench_conn *c, const char *path);
void report_sync(bench_conn *c, uint64_t fd);

#endif
