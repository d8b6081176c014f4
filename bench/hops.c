/* Benchmark group `hops` (make bench-hops): what one request costs the whole system, for
 * each way of placing the components in processes (fs_system_layout): 4 KiB random reads
 * on the page cache (the image in /dev/shm; 32 files of 4 MiB against a 12 MiB server
 * cache, as in the report, so most reads go to the driver), with 1 and with 8 in flight.
 *
 * For each layout and depth: requests per second, and per request the wake-ups (voluntary
 * context switches), system calls, page faults and CPU microseconds of every thread of
 * every process of the system, this client included (bench/proc_counters.h).
 *
 * Environment: HOPS_LAYOUTS (a comma-separated subset of the layout names), HOPS_DEPTHS
 * (requests in flight, default "1,8"), HOPS_SECONDS per point (default 1), HOPS_LAZY=1 (the
 * block data region faulted in page by page as used, not populated at start),
 * HOPS_REQUESTS=N to run exactly N requests per point instead (bench/hops.sh runs that
 * twice under callgrind to count instructions per request), HOPS_WRITE=1 for 4 KiB random
 * writes instead of reads (the cache's write-back then sends them to the driver), HOPS_MODEL=nvme
 * for the report's NVMe-like device model (20 us per request, 64 at once, 2 GB/s) instead of
 * none.
 */
#include "bench/bench_client.h"
#include "bench/proc_counters.h"
#include "bench/report/report_work.h"
#include "blk/blk.h"
#include "server/fs_component.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILES 32u
#define FILE_BYTES (4u << 20)
#define CACHE_BYTES (12u << 20)
#define STAGING_BYTES ((uint64_t)BLK_STACK_STAGING_SLOTS * BLK_STACK_STAGING_SLOT_BLOCKS * BLK_TRANSFER_SIZE)

static fs_system sys;
static bench_conn conn;

static bool listed(const char *list, const char *name)
{
    if (!list || !*list)
        return true;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == 0))
            return true;
    return false;
}

static void system_up(const char *image, fs_system_layout layout)
{
    fs_system_options o = {
        .image_path = image,
        .layout = layout,
        .data_bytes = STAGING_BYTES + CACHE_BYTES,
        .share_bytes = 4u << 20,
        .queue_capacity = 256,
        .populate = !getenv("HOPS_LAZY"),
    };
    const char *model = getenv("HOPS_MODEL");
    if (model && !strcmp(model, "nvme"))
        o.model = (blk_device_model){20000, 64, 2000000000ull};
    if (fs_system_start(&sys, &o) != 0) {
        fprintf(stderr, "bench: cannot start the system on %s\n", image);
        exit(1);
    }
    bench_conn_init(&conn, &sys, 0);
    bench_mount(&conn);
}

static void system_down(void)
{
    bench_unmount(&conn);
    if (fs_system_stop(&sys, 5000) != 0) {
        fprintf(stderr, "bench: the system did not stop cleanly\n");
        exit(1);
    }
}

static void file_path(char *buf, size_t size, uint32_t i) { snprintf(buf, size, "/rnd/file%02u.bin", i); }

static void prepare(const char *image)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkfs.fat -F 32 -s 8 -C '%s' %u >/dev/null", image, 512u * 1024u);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: mkfs.fat failed\n");
        exit(1);
    }
    system_up(image, FS_SYSTEM_PROCESSES);
    report_mkdir(&conn, "/rnd");
    for (uint32_t i = 0; i < FILES; i++) {
        char path[64];
        file_path(path, sizeof path, i);
        io_work w = {.type = FS_CMD_FILE_WRITE, .file_count = 1, .file_bytes = FILE_BYTES, .io_bytes = 256u << 10,
                     .sequential = true};
        w.fds[0] = report_open(&conn, path, FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE);
        bench_work work = io_work_bind(&w);
        bench_pipeline(&conn, 8, 0, &work);
        report_close(&conn, w.fds[0]);
    }
    system_down();
}

/* io_work that stops after `limit` units (0: never). */
typedef struct counted_work {
    bench_work inner;
    uint64_t issued, limit;
} counted_work;

static bool counted_issue(void *ctx, bench_conn *c, uint32_t slot)
{
    counted_work *w = ctx;
    if (w->limit && w->issued == w->limit)
        return false;
    w->issued++;
    return w->inner.issue(w->inner.ctx, c, slot);
}

static bool counted_complete(void *ctx, bench_conn *c, uint32_t slot, const fs_cmpl *cmpl)
{
    counted_work *w = ctx;
    return w->inner.complete(w->inner.ctx, c, slot, cmpl);
}

static void watch_system(proc_counters *pc)
{
    pid_t pids[LX_MAX_COMPONENTS + 1];
    unsigned n = 0;
    pids[n++] = getpid();
    for (unsigned i = 0; i < sys.spec.component_count; i++)
        if (sys.sys.pids[i] > 0)
            pids[n++] = sys.sys.pids[i];
    proc_counters_open(pc, pids, n);
}

static void per_request(const char *layout, uint32_t depth, const char *what, double value, const char *unit)
{
    printf("bench hops_%s_qd%u_%s %.*f %s\n", layout, depth, what, value < 10 ? 2 : 0, value, unit);
}

static void measure(const char *layout, io_work *w, uint32_t depth, double seconds, uint64_t requests)
{
    counted_work cw = {.inner = io_work_bind(w), .limit = requests};
    bench_work work = {counted_issue, counted_complete, &cw};
    proc_counters pc;
    watch_system(&pc);
    proc_counts before = proc_counters_read(&pc);
    bench_result r = bench_pipeline(&conn, depth, requests ? 0 : seconds, &work);
    proc_counts spent = proc_counts_diff(proc_counters_read(&pc), before);
    proc_counters_close(&pc);
    double n = (double)r.units;
    per_request(layout, depth, "rate", n / r.seconds, "requests/s");
    per_request(layout, depth, "wakeups", (double)spent.wakeups / n, "per_request");
    per_request(layout, depth, "switches", (double)spent.switches / n, "per_request");
    if (spent.syscalls != UINT64_MAX)
        per_request(layout, depth, "syscalls", (double)spent.syscalls / n, "per_request");
    per_request(layout, depth, "faults", (double)spent.faults / n, "per_request");
    per_request(layout, depth, "cpu", (double)spent.cpu_ns / 1e3 / n, "us_per_request");
    fflush(stdout);
}

static const struct {
    const char *name;
    fs_system_layout layout;
} all_layouts[] = {{"processes", FS_SYSTEM_PROCESSES},
                   {"shared", FS_SYSTEM_SHARED},
                   {"hosted", FS_SYSTEM_HOSTED},
                   {"inline", FS_SYSTEM_INLINE}};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--layouts") == 0) {
        for (unsigned i = 0; i < AF_ARRAY_LEN(all_layouts); i++)
            printf("%s\n", all_layouts[i].name);
        return 0;
    }
    const char *layouts = getenv("HOPS_LAYOUTS");
    const char *s = getenv("HOPS_SECONDS");
    double seconds = s && atof(s) > 0 ? atof(s) : 1.0;
    const char *r = getenv("HOPS_REQUESTS");
    uint64_t requests = r ? strtoull(r, NULL, 10) : 0;
    const char *depths = getenv("HOPS_DEPTHS");
    if (!depths || !*depths)
        depths = "1,8";
    char dir[] = "/dev/shm/asyncfat-hops-XXXXXX";
    if (!mkdtemp(dir)) {
        strcpy(dir, "/tmp/asyncfat-hops-XXXXXX");
        if (!mkdtemp(dir))
            return 1;
    }
    char image[96];
    snprintf(image, sizeof image, "%s/hops.img", dir);
    prepare(image);
    for (unsigned i = 0; i < AF_ARRAY_LEN(all_layouts); i++) {
        if (!listed(layouts, all_layouts[i].name))
            continue;
        system_up(image, all_layouts[i].layout);
        bool writes = getenv("HOPS_WRITE") != NULL;
        io_work w = {.type = writes ? FS_CMD_FILE_WRITE : FS_CMD_FILE_READ, .file_count = FILES,
                     .file_bytes = FILE_BYTES, .io_bytes = 4096};
        for (uint32_t f = 0; f < FILES; f++) {
            char path[64];
            file_path(path, sizeof path, f);
            w.fds[f] = report_open(&conn, path, writes ? FS_OPEN_FLAGS_READ_WRITE : FS_OPEN_FLAGS_READ_ONLY);
        }
        bench_work warm = io_work_bind(&w);
        bench_pipeline(&conn, 8, requests ? 0 : 0.3, &(bench_work){counted_issue, counted_complete,
                                                                    &(counted_work){warm, 0, requests ? 500 : 0}});
        for (const char *d = depths; *d;) {
            char *next;
            unsigned long depth = strtoul(d, &next, 10);
            if (next == d || depth == 0 || depth > BENCH_MAX_DEPTH) {
                fprintf(stderr, "bench: HOPS_DEPTHS: bad depth list\n");
                return 1;
            }
            measure(all_layouts[i].name, &w, (uint32_t)depth, seconds, requests);
            d = *next == ',' ? next + 1 : next;
        }
        for (uint32_t f = 0; f < FILES; f++)
            report_close(&conn, w.fds[f]);
        system_down();
    }
    unlink(image);
    rmdir(dir);
    return 0;
}
