/* The server's background write-back (server/writeback.c): how soon a change is durable
 * without any fsync, and what the write-backs cost a workload. The whole server runs in
 * this process on the RAM device with the real monotonic clock.
 *
 * For each interval (off, 1 s, 250 ms, 50 ms), files are made back to back for 2.5 s (open
 * with CREATE, one 4 KiB write, close). A file is durable once a write-back that began
 * after its close has ended (its sync's FLUSHes are done); its lag is that end minus the
 * close. Reported: files per second, device writes and FLUSHes per file, the most and the
 * mean lag, and the lag of one lone change on an idle server (time to durable). */
#include "tests/support/server_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUN_S 2.5
#define MAX_FILES 100000
#define MAX_WRITEBACKS 4096

static server_fixture fx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t clock_ns(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Write-backs seen so far: when each began and ended. */
static double wb_start[MAX_WRITEBACKS], wb_end[MAX_WRITEBACKS];
static uint32_t wb_count;
static bool wb_running;
static uint64_t writes, flushes;

/* One device step and one server pass, noting write-backs and counting device requests. */
static bool step(void)
{
    bool did = sf_step(&fx);
    if (fx.server.writeback_running && !wb_running && wb_count < MAX_WRITEBACKS) {
        wb_start[wb_count] = now_s();
        wb_running = true;
    } else if (!fx.server.writeback_running && wb_running) {
        wb_end[wb_count++] = now_s();
        wb_running = false;
    }
    const ram_device *dev = &fx.blk.dev;
    for (uint64_t i = 0; i < ram_device_log_count(dev); i++) {
        uint32_t code = ram_device_log_at(dev, i)->code;
        writes += code == BLK_REQ_WRITE;
        flushes += code == BLK_REQ_FLUSH;
    }
    ram_device_clear_log(&fx.blk.dev);
    return did;
}

static fs_cmpl call(uint64_t type, const fs_cmd_params *p)
{
    fs_cmpl c = {.status = UINT64_MAX};
    uint64_t id = sf_submit(&fx, 0, type, p, sizeof *p);
    for (int idle = 0; id && idle < 1000;) {
        if (sf_take(&fx, 0, &c) && c.id == id)
            return c;
        idle = step() ? 0 : idle + 1;
    }
    fprintf(stderr, "writeback: a call got no answer\n");
    exit(1);
}

static void make_file(uint32_t n, const uint8_t *data)
{
    char name[32];
    snprintf(name, sizeof name, "/d%u/f%u", n / 1000, n);
    sf_share_reset(&fx, 0);
    if (n % 1000 == 0) {
        char dir[16];
        snprintf(dir, sizeof dir, "/d%u", n / 1000);
        fs_cmd_params m = {.dir_create = {.path = sf_path(&fx, 0, dir)}};
        if (call(FS_CMD_DIR_CREATE, &m).status != FS_STATUS_SUCCESS)
            exit(1);
    }
    fs_cmd_params o = {.file_open = {.path = sf_path(&fx, 0, name), .flags = FS_OPEN_FLAGS_READ_WRITE | FS_OPEN_FLAGS_CREATE}};
    fs_cmpl opened = call(FS_CMD_FILE_OPEN, &o);
    fs_cmd_params w = {.file_write = {.fd = opened.data, .offset = 0, .buf = sf_buf(&fx, 0, data, 4096)}};
    fs_cmd_params c = {.file_close = {.fd = opened.data}};
    if (opened.status != FS_STATUS_SUCCESS || call(FS_CMD_FILE_WRITE, &w).status != FS_STATUS_SUCCESS ||
        call(FS_CMD_FILE_CLOSE, &c).status != FS_STATUS_SUCCESS) {
        fprintf(stderr, "writeback: making %s failed\n", name);
        exit(1);
    }
}

static double closes[MAX_FILES];

/* The lag of a change made at t: to the end of the first write-back begun after it; -1 if
 * none has ended. */
static double lag(double t)
{
    for (uint32_t i = 0; i < wb_count; i++)
        if (wb_start[i] >= t)
            return wb_end[i] - t;
    return -1;
}

static void run(uint64_t interval_ms, const char *label)
{
    char dir[] = "/tmp/asyncfat-bench-XXXXXX";
    if (!mkdtemp(dir))
        exit(1);
    sf_options o = {.workdir = dir,
                    .mkfs_args = "-F 32",
                    .image_bytes = 512ull << 20,
                    .writeback_ns = interval_ms * 1000000u,
                    .clock_ns = clock_ns};
    if (sf_init(&fx, &o) != 0 || sf_initialise(&fx, 0, true) != FS_STATUS_SUCCESS) {
        fprintf(stderr, "writeback: setup failed\n");
        exit(1);
    }
    wb_count = 0;
    wb_running = false;
    step();
    writes = flushes = 0;
    static uint8_t data[4096];
    memset(data, 0x42, sizeof data);
    uint32_t files = 0;
    double start = now_s();
    while (now_s() - start < RUN_S && files < MAX_FILES) {
        make_file(files, data);
        closes[files++] = now_s();
    }
    double took = now_s() - start;
    uint64_t run_writes = writes, run_flushes = flushes;
    /* Let the last changes be written back (or, with the write-back off, not). */
    double settle = now_s();
    while (interval_ms && now_s() - settle < interval_ms / 1000.0 + 0.5)
        step();
    double max = 0, sum = 0;
    uint32_t covered = 0;
    for (uint32_t i = 0; i < files; i++) {
        double l = lag(closes[i]);
        if (l < 0)
            continue;
        covered++;
        sum += l;
        max = l > max ? l : max;
    }
    printf("bench writeback_%s_files_per_s %.0f files/s\n", label, files / took);
    printf("bench writeback_%s_writes_per_file %.2f writes\n", label, (double)run_writes / files);
    printf("bench writeback_%s_flushes_per_file %.3f flushes\n", label, (double)run_flushes / files);
    if (interval_ms) {
        printf("bench writeback_%s_max_lag_ms %.1f ms\n", label, max * 1e3);
        printf("bench writeback_%s_mean_lag_ms %.1f ms\n", label, covered ? sum / covered * 1e3 : 0);
        /* One lone change on an idle server. */
        fs_cmd_params m = {.dir_create = {.path = sf_path(&fx, 0, "/lone")}};
        if (call(FS_CMD_DIR_CREATE, &m).status != FS_STATUS_SUCCESS)
            exit(1);
        double made = now_s();
        uint32_t before = wb_count;
        while (wb_count == before && now_s() - made < interval_ms / 1000.0 + 2)
            step();
        printf("bench writeback_%s_time_to_durable_ms %.1f ms\n", label, (lag(made) < 0 ? -1 : lag(made)) * 1e3);
    }
    fflush(stdout);
    if (sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status != FS_STATUS_SUCCESS)
        exit(1);
    sf_fini(&fx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "writeback: could not remove %s\n", dir);
}

int main(void)
{
    run(0, "off");
    run(1000, "1000ms");
    run(250, "250ms");
    run(50, "50ms");
    return 0;
}
