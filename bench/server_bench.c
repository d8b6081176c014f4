/* Benchmark group `server`: 4 KiB random reads over many files through the real system
 * (io_uring driver and server as separate processes, this process as the client), on a
 * device modelled at 200 us per request with a queue depth of 32, with 1, 2, 4 ... 64
 * requests in flight. One in flight is what a synchronous server achieves; the device
 * limit is min(in flight, 32) / 200 us.
 *
 * Also: notifications the server sends the client per request at 32 in flight, with the
 * client asking to be woken once a quarter of its reads are back (notify_threshold) and
 * without (one notification per server pass that completed something), and the server
 * process's CPU time per request. The server's cache is kept small (8 MiB) against
 * 128 MiB of file data, so nearly every read goes to the device.
 */
#include "bench/bench_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILES 32
#define FILE_BYTES (4u << 20)
#define READ_BYTES 4096u
#define MAX_IN_FLIGHT 64
#define LATENCY_NS 200000ull
#define DEVICE_QD 32

static fs_system sys;
static bench_conn conn;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static fs_cmpl call(uint64_t type, const void *params, size_t size)
{
    return bench_call(&conn, type, params, size);
}

static fs_buffer put(uint64_t offset, const void *data, size_t len)
{
    return bench_put(&conn, offset, data, len);
}

static int start(const char *image, bool model)
{
    /* The driver and the server in a process of their own, whose CPU time is the server's
     * (and the driver's) alone. */
    fs_system_options o = {.image_path = image, .layout = FS_SYSTEM_SHARED, .data_bytes = 24u << 20,
                           .queue_capacity = 128, .populate = true};
    if (model)
        o.model = (blk_device_model){.latency_ns = LATENCY_NS, .device_queue_depth = DEVICE_QD};
    if (fs_system_start(&sys, &o) != 0)
        return -1;
    bench_conn_init(&conn, &sys, 0);
    /* With the extensions: the coalesced runs set notify_threshold. */
    fs_cmd_params p = {.initialise = {FS_INITIALISE_MAGIC, FS_INITIALISE_EXTENSIONS}};
    return call(FS_CMD_INITIALISE, &p, sizeof p).status == FS_STATUS_SUCCESS ? 0 : -1;
}

static void stop(void)
{
    call(FS_CMD_DEINITIALISE, NULL, 0);
    fs_system_stop(&sys, 2000);
}

static void file_name(char *buf, int i) { snprintf(buf, 32, "/data/file%02d.bin", i); }

static int create_files(void)
{
    fs_cmd_params p = {.dir_create = {.path = put(0, "/data", 5)}};
    if (call(FS_CMD_DIR_CREATE, &p, sizeof p).status != FS_STATUS_SUCCESS)
        return -1;
    static uint8_t chunk[1u << 20];
    for (int i = 0; i < FILES; i++) {
        char name[32];
        file_name(name, i);
        p = (fs_cmd_params){.file_open = {.path = put(0, name, strlen(name)),
                                          .flags = FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY}};
        fs_cmpl c = call(FS_CMD_FILE_OPEN, &p, sizeof p);
        if (c.status != FS_STATUS_SUCCESS)
            return -1;
        uint64_t fd = c.data;
        for (uint32_t off = 0; off < FILE_BYTES; off += sizeof chunk) {
            memset(chunk, i + (int)(off >> 20), sizeof chunk);
            p = (fs_cmd_params){.file_write = {.fd = fd, .offset = off, .buf = put(4096, chunk, sizeof chunk)}};
            if (call(FS_CMD_FILE_WRITE, &p, sizeof p).status != FS_STATUS_SUCCESS)
                return -1;
        }
        p = (fs_cmd_params){.file_close = {.fd = fd}};
        call(FS_CMD_FILE_CLOSE, &p, sizeof p);
    }
    return 0;
}

static uint64_t fds[FILES];

static int open_files(void)
{
    for (int i = 0; i < FILES; i++) {
        char name[32];
        file_name(name, i);
        fs_cmd_params p = {.file_open = {.path = put(0, name, strlen(name)), .flags = FS_OPEN_FLAGS_READ_ONLY}};
        fs_cmpl c = call(FS_CMD_FILE_OPEN, &p, sizeof p);
        if (c.status != FS_STATUS_SUCCESS)
            return -1;
        fds[i] = c.data;
    }
    return 0;
}

static void submit_read(uint64_t slot)
{
    fs_cmd_params p = {.file_read = {
                           .fd = fds[bench_rand(&rng) % FILES],
                           .offset = (bench_rand(&rng) % (FILE_BYTES / READ_BYTES)) * READ_BYTES,
                           .buf = {65536 + slot * READ_BYTES, READ_BYTES},
                       }};
    bench_submit(&conn, FS_CMD_FILE_READ, &p, sizeof p, slot);
}

typedef struct point {
    double rps;
    double notifications_per_request;
    double cpu_us_per_request;
} point;

/* Keep `in_flight` reads outstanding for `seconds`. threshold: the notify_threshold
 * extension; the server wakes us once that many completions wait (or when nothing is
 * left in flight). 0: after every server pass that completed something. */
static point run_point(int in_flight, double seconds, uint64_t threshold)
{
    uint64_t done = 0;
    af_store_relaxed(&conn.ep->completions->notify_threshold, threshold);
    for (int i = 0; i < in_flight; i++)
        submit_read((uint64_t)i);
    bench_notify(&conn);
    uint64_t notifications0 = conn.notifications;
    double cpu0 = bench_process_cpu_s(&sys, 1);
    double t0 = bench_now(), end = t0 + seconds;
    static fs_msg batch[MAX_IN_FLIGHT];
    bool measuring = true;
    uint64_t outstanding = (uint64_t)in_flight;
    while (outstanding) {
        uint32_t n = bench_wait(&conn, batch, MAX_IN_FLIGHT);
        bool more = bench_now() < end;
        for (uint32_t i = 0; i < n; i++) {
            if (batch[i].cmpl.status != FS_STATUS_SUCCESS || batch[i].cmpl.data != READ_BYTES) {
                fprintf(stderr, "bench: read failed with status %llu\n", (unsigned long long)batch[i].cmpl.status);
                exit(1);
            }
            outstanding--;
            if (measuring)
                done++;
            if (more) {
                submit_read(batch[i].cmpl.id);
                outstanding++;
            }
        }
        if (more)
            bench_notify(&conn);
        else
            measuring = false;
    }
    double elapsed = bench_now() - t0;
    double cpu = bench_process_cpu_s(&sys, 1) - cpu0;
    af_store_relaxed(&conn.ep->completions->notify_threshold, 0);
    point pt = {
        .rps = (double)done / elapsed,
        .notifications_per_request = (double)(conn.notifications - notifications0) / (double)done,
        .cpu_us_per_request = cpu * 1e6 / (double)done,
    };
    return pt;
}

int main(void)
{
    char dir[] = "/tmp/asyncfat-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char image[128], cmd[512];
    snprintf(image, sizeof image, "%s/server.img", dir);
    /* 4 KiB clusters: mkfs.fat then aligns the data area to them, so a 4 KiB read is one
     * device block (its default for this size, 512-byte clusters, splits most reads in two). */
    snprintf(cmd, sizeof cmd, "mkfs.fat -F 32 -s 8 -C '%s' %u >/dev/null", image, 512u * 1024);
    if (system(cmd) != 0 || start(image, false) != 0 || create_files() != 0) {
        fprintf(stderr, "bench: setup failed\n");
        return 1;
    }
    stop();
    if (start(image, true) != 0 || open_files() != 0) {
        fprintf(stderr, "bench: start with the device model failed\n");
        return 1;
    }
    run_point(8, 0.3, 0); /* warm up: directory, FAT and cluster-run caches */
    double rps1 = 0, rps32 = 0;
    point at32 = {0};
    for (int in_flight = 1; in_flight <= MAX_IN_FLIGHT; in_flight *= 2) {
        point pt = run_point(in_flight, in_flight == 1 ? 1.5 : 1.0, (uint64_t)(in_flight / 4));
        printf("bench server_rps_inflight_%d %.0f requests/s\n", in_flight, pt.rps);
        fflush(stdout);
        if (in_flight == 1)
            rps1 = pt.rps;
        if (in_flight == 32) {
            rps32 = pt.rps;
            at32 = pt;
        }
    }
    double limit32 = 32.0 / (LATENCY_NS * 1e-9);
    printf("bench server_rps_ratio_32_to_1 %.1f x\n", rps32 / rps1);
    printf("bench server_rps_inflight_32_ratio_to_limit %.2f ratio\n", rps32 / limit32);
    printf("bench server_notifications_per_request %.3f notifications\n", at32.notifications_per_request);
    point plain = run_point(32, 1.0, 0);
    printf("bench server_notifications_per_request_uncoalesced %.3f notifications\n", plain.notifications_per_request);
    printf("bench server_rps_inflight_32_uncoalesced %.0f requests/s\n", plain.rps);
    printf("bench server_cpu_us_per_request %.2f us\n", at32.cpu_us_per_request);
    stop();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
