/* bench_client: see bench_client.h. */
#include "bench/bench_client.h"

#include "platform/linux/channel_wake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

void bench_system_start(fs_system *sys, const char *image, fs_system_layout layout, const blk_device_model *model,
                        uint32_t clients, uint64_t data_bytes, uint64_t share_bytes)
{
    fs_system_options o = {
        .image_path = image,
        .layout = layout,
        .clients = clients,
        .data_bytes = data_bytes,
        .share_bytes = share_bytes,
        .queue_capacity = 256,
        .populate = true,
    };
    if (model)
        o.model = *model;
    if (fs_system_start(sys, &o) != 0) {
        fprintf(stderr, "bench: cannot start the system on %s\n", image);
        exit(1);
    }
}

double bench_process_cpu_s(const fs_system *sys, int component)
{
    if (sys->sys.pids[component] <= 0)
        return 0;
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)sys->sys.pids[component]);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long utime = 0, stime = 0;
    if (fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        if (p)
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime, &stime);
    }
    fclose(f);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

void bench_conn_init(bench_conn *c, fs_system *sys, uint32_t index)
{
    fs_system_client *ep = &sys->clients[index];
    memset(c, 0, sizeof *c);
    c->ep = ep;
    c->inline_system = sys->layout == FS_SYSTEM_INLINE ? sys : NULL;
    c->next_call_id = BENCH_CALL_ID;
    fs_queue_end_init(&c->commands, ep->commands, true);
    fs_queue_end_init(&c->completions, ep->completions, false);
    lx_spin_init(&c->spin);
    if (!c->inline_system)
        lx_bell_attach(ep->wait_fd);
}

fs_buffer bench_put(bench_conn *c, uint64_t offset, const void *data, size_t len)
{
    if (offset + len > c->ep->share_size) {
        fprintf(stderr, "bench: buffer outside the share region\n");
        exit(1);
    }
    if (data)
        memcpy(c->ep->share + offset, data, len);
    return (fs_buffer){offset, len};
}

void bench_notify(bench_conn *c)
{
    if (c->inline_system) {
        fs_system_inline_notify(c->inline_system);
        return;
    }
    if (lx_bell_ring(c->ep->notify_fd) != 0) {
        perror("bench: notify");
        exit(1);
    }
}

void bench_submit(bench_conn *c, uint64_t type, const void *params, size_t size, uint64_t id)
{
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd.id = id;
    msg.cmd.type = type;
    if (params)
        memcpy(&msg.cmd.params, params, size);
    while (fs_queue_produce(&c->commands, &msg, 1) != 1) {
        bench_notify(c);
        if (c->inline_system)
            fs_system_inline_wait(c->inline_system, 0); /* the server takes some */
        else
            usleep(10);
    }
}

static bool completions_ready(void *completions) { return fs_queue_available(completions) > 0; }

uint32_t bench_wait(bench_conn *c, fs_msg *out, uint32_t max)
{
    for (;;) {
        uint32_t n = fs_queue_consume(&c->completions, out, max);
        if (n)
            return n;
        if (c->inline_system) {
            char why[160];
            fs_system_inline_wait(c->inline_system, 20000);
            if (fs_queue_available(&c->completions) == 0 && fs_system_failed(c->inline_system, why, sizeof why)) {
                fprintf(stderr, "bench: the server stopped: %s\n", why);
                exit(1);
            }
            continue;
        }
        uint64_t woken;
        if (lx_bell_wait(c->ep->wait_fd, c->ep->notify_fd, -1, 20000, &c->spin, completions_ready, &c->completions, &woken) <= 0) {
            fprintf(stderr, "bench: the server stopped answering\n");
            exit(1);
        }
        c->notifications += woken;
    }
}

fs_cmpl bench_call(bench_conn *c, uint64_t type, const void *params, size_t size)
{
    uint64_t id = c->next_call_id++;
    bench_submit(c, type, params, size, id);
    bench_notify(c);
    for (;;) {
        fs_msg msg;
        bench_wait(c, &msg, 1);
        if (msg.cmpl.id == id)
            return msg.cmpl;
    }
}

uint64_t bench_call_ok(bench_conn *c, uint64_t type, const void *params, size_t size, const char *what)
{
    fs_cmpl r = bench_call(c, type, params, size);
    if (r.status != FS_STATUS_SUCCESS) {
        fprintf(stderr, "bench: %s failed with status %llu\n", what, (unsigned long long)r.status);
        exit(1);
    }
    return r.data;
}

/* With the extensions: the report's workloads open with TRUNCATE and EXCLUSIVE. */
void bench_mount(bench_conn *c)
{
    fs_cmd_params p = {.initialise = {FS_INITIALISE_MAGIC, FS_INITIALISE_EXTENSIONS}};
    bench_call_ok(c, FS_CMD_INITIALISE, &p, sizeof p, "INITIALISE");
}

void bench_unmount(bench_conn *c)
{
    bench_call_ok(c, FS_CMD_DEINITIALISE, NULL, 0, "DEINITIALISE");
}

bench_result bench_pipeline(bench_conn *c, uint32_t depth, double seconds, const bench_work *work)
{
    if (depth == 0 || depth > BENCH_MAX_DEPTH)
        depth = depth ? BENCH_MAX_DEPTH : 1;
    /* Coalesce wake-ups (the notify_threshold extension): one notification once half the
     * requests in flight are back; the server still wakes us when none is left. */
    af_store_relaxed(&c->ep->completions->notify_threshold, (uint64_t)(depth / 2));
    double start = bench_now(), end = seconds > 0 ? start + seconds : 0;
    uint32_t outstanding = 0;
    bool more = true;
    for (uint32_t s = 0; s < depth && more; s++) {
        more = work->issue(work->ctx, c, s);
        outstanding += more;
    }
    bench_notify(c);
    bench_result r = {0, 0};
    bool measuring = true;
    fs_msg batch[BENCH_MAX_DEPTH];
    while (outstanding) {
        uint32_t n = bench_wait(c, batch, BENCH_MAX_DEPTH);
        double now = bench_now();
        if (measuring && end && now >= end) {
            measuring = false;
            more = false;
            r.seconds = now - start;
        }
        bool queued = false;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t slot = (uint32_t)batch[i].cmpl.id;
            if (batch[i].cmpl.id >= depth) {
                fprintf(stderr, "bench: unexpected completion id %llu\n", (unsigned long long)batch[i].cmpl.id);
                exit(1);
            }
            if (!work->complete(work->ctx, c, slot, &batch[i].cmpl)) {
                queued = true;
                continue;
            }
            outstanding--;
            if (measuring)
                r.units++;
            if (more && work->issue(work->ctx, c, slot)) {
                outstanding++;
                queued = true;
            } else {
                more = false;
            }
        }
        if (queued)
            bench_notify(c);
    }
    if (measuring)
        r.seconds = bench_now() - start;
    af_store_relaxed(&c->ep->completions->notify_threshold, 0);
    return r;
}
