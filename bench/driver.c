/* Benchmark group `driver`: the raw io_uring block driver, in process, with a client that
 * keeps a fixed number of requests in flight. 4 KiB random reads at queue depths 1..64,
 * with the device model off and at 200 us latency (the limit there is QD / 200 us), and
 * 64 KiB sequential reads and writes in MB/s. Then the same client as a component talking
 * to the driver component in another process (eventfd notifications), as file-system
 * benchmarks will. Last, on an image in /dev/shm (tmpfs, where the driver does transfers
 * inline), inline against io_uring only (`ring_only`), in process and as a component. One
 * `bench <name> <value> <unit>` line each. */
#include "platform/linux/blk_driver_component.h"
#include "platform/linux/launcher.h"
#include "tests/support/blk_test_rig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_BLOCKS 8192u /* 32 MiB */
#define MAX_DEPTH 64u
#define MAX_COUNT 16u

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct workload {
    uint32_t code;
    uint16_t count;          /* blocks per request */
    bool sequential;
} workload;

static uint64_t rng_state = 12345;

static uint64_t next_block(const workload *w, uint64_t *cursor)
{
    if (w->sequential) {
        uint64_t b = *cursor;
        *cursor = (*cursor + w->count) % (IMAGE_BLOCKS - w->count);
        return b;
    }
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (rng_state >> 33) % (IMAGE_BLOCKS - w->count);
}

/* Requests completed per second over `seconds`, keeping `depth` in flight. */
static bool ring_only; /* every run: io_uring only, no inline transfers */

static double run(const char *image, uint32_t depth, uint64_t latency_ns, const workload *w, double seconds)
{
    blk_test_rig rig;
    blk_driver_config config = {.path = image, .queue_depth = depth, .model = {.latency_ns = latency_ns},
                                .ring_only = ring_only};
    if (blk_rig_open(&rig, &config, depth, (size_t)depth * MAX_COUNT * BLK_TRANSFER_SIZE) != 0) {
        fprintf(stderr, "bench driver: cannot open %s\n", image);
        exit(1);
    }
    uint64_t cursor = 0, done = 0;
    for (uint32_t i = 0; i < depth; i++) {
        blk_request r = {.code = w->code, .io_or_offset = (uint64_t)i * MAX_COUNT * BLK_TRANSFER_SIZE,
                         .block_number = next_block(w, &cursor), .count = w->count, .id = i};
        blk_enqueue_request(&rig.queues, r);
    }
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    uint64_t t = start;
    while (t < end) {
        blk_driver_poll(rig.driver);
        blk_response resps[MAX_DEPTH];
        uint32_t n = blk_dequeue_responses(&rig.queues, resps, MAX_DEPTH);
        for (uint32_t i = 0; i < n; i++) {
            if (resps[i].status != BLK_RESP_OK) {
                fprintf(stderr, "bench driver: request failed with %u\n", resps[i].status);
                exit(1);
            }
            uint32_t slot = resps[i].id;
            blk_request r = {.code = w->code, .io_or_offset = (uint64_t)slot * MAX_COUNT * BLK_TRANSFER_SIZE,
                             .block_number = next_block(w, &cursor), .count = w->count, .id = slot};
            blk_enqueue_request(&rig.queues, r);
        }
        done += n;
        if (n == 0)
            blk_driver_wait(rig.driver, 1000000);
        t = now_ns();
    }
    double rate = (double)done / ((double)(t - start) / 1e9);
    blk_rig_close(&rig);
    return rate;
}

/* ---- the driver as a separate process ------------------------------------------------------ */

typedef struct process_result {
    volatile uint64_t completed;
    volatile uint64_t elapsed_ns;
} process_result;

static struct {
    uint32_t depth;
    uint64_t duration_ns;
    blk_queue_handle queues;
    blk_storage_info *info;
    unsigned channel;
    uint64_t start_ns, done, outstanding;
    bool started;
} client;

static void client_init(void)
{
    client.info = component_region(BLK_REGION_STORAGE_INFO, NULL);
    client.channel = component_channel(BLK_CHANNEL_CLIENT);
    blk_queue_init(&client.queues, component_region(BLK_REGION_REQUESTS, NULL),
                   component_region(BLK_REGION_RESPONSES, NULL), client.depth);
}

static void client_issue(uint32_t slot)
{
    static const workload w = {BLK_REQ_READ, 1, false};
    uint64_t cursor = 0;
    blk_request r = {.code = BLK_REQ_READ, .io_or_offset = (uint64_t)slot * BLK_TRANSFER_SIZE,
                     .block_number = next_block(&w, &cursor), .count = 1, .id = slot};
    blk_enqueue_request(&client.queues, r);
    client.outstanding++;
}

static void client_notified(unsigned channel)
{
    if (channel != client.channel || !blk_storage_is_ready(client.info))
        return;
    uint64_t now = component_time_ns();
    if (!client.started) {
        client.started = true;
        client.start_ns = now;
        for (uint32_t i = 0; i < client.depth; i++)
            client_issue(i);
        component_notify(client.channel);
        return;
    }
    blk_response resps[MAX_DEPTH];
    uint32_t n = blk_dequeue_responses(&client.queues, resps, MAX_DEPTH);
    bool running = now - client.start_ns < client.duration_ns;
    for (uint32_t i = 0; i < n; i++) {
        client.outstanding--;
        if (resps[i].status != BLK_RESP_OK)
            lx_runtime_stop(2);
        if (running) {
            client.done++;
            client_issue(resps[i].id);
        }
    }
    if (running && n)
        component_notify(client.channel);
    if (!running && client.outstanding == 0) {
        process_result *result = component_region("result", NULL);
        result->completed = client.done;
        result->elapsed_ns = now - client.start_ns;
        lx_runtime_stop(0);
    }
}

static double run_process(const char *image, uint32_t depth, uint64_t latency_ns, double seconds)
{
    blk_driver_config config = {.path = image, .queue_depth = depth, .model = {.latency_ns = latency_ns},
                                .ring_only = ring_only};
    blk_driver_component_configure(&config, depth);
    client.depth = depth;
    client.duration_ns = (uint64_t)(seconds * 1e9);
    static const char *const driver_regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS,
                                                 BLK_REGION_RESPONSES, BLK_REGION_DATA, NULL};
    static const char *const client_regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS,
                                                 BLK_REGION_RESPONSES, BLK_REGION_DATA, "result", NULL};
    const lx_component_spec components[] = {
        {.name = "driver", .entry = {blk_driver_component_init, blk_driver_component_notified}, .regions = driver_regions},
        {.name = "client", .entry = {client_init, client_notified}, .regions = client_regions},
    };
    const lx_region_spec regions[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096},
        {.name = BLK_REGION_REQUESTS, .size = blk_req_queue_bytes(depth)},
        {.name = BLK_REGION_RESPONSES, .size = blk_resp_queue_bytes(depth)},
        {.name = BLK_REGION_DATA, .size = (size_t)depth * BLK_TRANSFER_SIZE},
        {.name = "result", .size = sizeof(process_result)},
    };
    const lx_channel_spec channels[] = {{BLK_CHANNEL_CLIENT, "driver", 1, "client", 1}};
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = regions, .region_count = 5,
        .channels = channels, .channel_count = 1};
    lx_system sys;
    lx_exit_report report;
    if (lx_system_start(&sys, &spec) != 0)
        exit(1);
    bool ended = lx_system_wait(&sys, (int)(seconds * 1000) + 10000, &report);
    process_result *result = lx_system_region(&sys, "result", NULL);
    double rate = result->elapsed_ns ? (double)result->completed / ((double)result->elapsed_ns / 1e9) : 0;
    lx_system_stop(&sys, 2000);
    if (!ended || report.signaled || report.code != 0 || strcmp(report.component, "client") != 0) {
        fprintf(stderr, "bench driver: process run failed (%s %s %d)\n", report.component ? report.component : "-",
                report.signaled ? "signal" : "status", report.code);
        exit(1);
    }
    return rate;
}

/* Inline transfers against io_uring only, on a file in memory: rates and their ratio. */
static void compare_inline_on_tmpfs(void)
{
    char image[64];
    snprintf(image, sizeof image, "/dev/shm/asyncfat-bench-%d.img", (int)getpid());
    if (!blk_make_image(image, IMAGE_BLOCKS, 1)) {
        printf("# bench driver: no /dev/shm, inline comparison skipped\n");
        return;
    }
    const workload random_4k = {BLK_REQ_READ, 1, false}, random_write = {BLK_REQ_WRITE, 1, false};
    const struct { const char *name; const workload *w; uint32_t depth; bool process; } cases[] = {
        {"read_qd1", &random_4k, 1, false},   {"read_qd32", &random_4k, 32, false},
        {"write_qd1", &random_write, 1, false}, {"write_qd32", &random_write, 32, false},
        {"process_read_qd1", &random_4k, 1, true}, {"process_read_qd32", &random_4k, 32, true},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(cases); i++) {
        double rate[2];
        for (int ring = 0; ring < 2; ring++) {
            ring_only = ring;
            rate[ring] = cases[i].process ? run_process(image, cases[i].depth, 0, 0.4)
                                          : run(image, cases[i].depth, 0, cases[i].w, 0.4);
        }
        ring_only = false;
        printf("bench driver_tmpfs_%s %.0f iops\n", cases[i].name, rate[0]);
        printf("bench driver_tmpfs_%s_ring_only %.0f iops\n", cases[i].name, rate[1]);
        printf("bench driver_tmpfs_%s_inline_over_ring %.2f ratio\n", cases[i].name, rate[0] / rate[1]);
        fflush(stdout);
    }
    unlink(image);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    char dir[512], image[600];
    snprintf(dir, sizeof dir, "%s/asyncfat-bench-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench driver: mkdtemp");
        return 1;
    }
    snprintf(image, sizeof image, "%s/driver.img", dir);
    if (!blk_make_image(image, IMAGE_BLOCKS, 1)) {
        fprintf(stderr, "bench driver: cannot create %s\n", image);
        return 1;
    }
    const workload random_4k = {BLK_REQ_READ, 1, false};
    for (uint32_t depth = 1; depth <= MAX_DEPTH; depth *= 2)
        printf("bench driver_iops_qd%u %.0f iops\n", depth, run(image, depth, 0, &random_4k, 0.4));
    double qd32 = 0;
    for (uint32_t depth = 1; depth <= MAX_DEPTH; depth *= 2) {
        double iops = run(image, depth, 200000, &random_4k, 0.6);
        printf("bench driver_iops_qd%u_lat200us %.0f iops\n", depth, iops);
        fflush(stdout);
        if (depth == 32)
            qd32 = iops;
    }
    printf("bench driver_qd32_lat200us_ratio_to_limit %.3f ratio\n", qd32 / (32.0 / 200e-6));
    const workload seq_read = {BLK_REQ_READ, 16, true}, seq_write = {BLK_REQ_WRITE, 16, true};
    printf("bench driver_seq_read_64k_qd8 %.1f MB/s\n", run(image, 8, 0, &seq_read, 0.5) * 65536 / 1e6);
    printf("bench driver_seq_write_64k_qd8 %.1f MB/s\n", run(image, 8, 0, &seq_write, 0.5) * 65536 / 1e6);
    printf("bench driver_process_iops_qd1 %.0f iops\n", run_process(image, 1, 0, 0.5));
    printf("bench driver_process_iops_qd32 %.0f iops\n", run_process(image, 32, 0, 0.5));
    printf("bench driver_process_iops_qd1_lat200us %.0f iops\n", run_process(image, 1, 200000, 0.6));
    double process_qd32 = run_process(image, 32, 200000, 0.6);
    printf("bench driver_process_iops_qd32_lat200us %.0f iops\n", process_qd32);
    printf("bench driver_process_qd32_lat200us_ratio_to_limit %.3f ratio\n", process_qd32 / (32.0 / 200e-6));
    unlink(image);
    rmdir(dir);
    compare_inline_on_tmpfs();
    return 0;
}
