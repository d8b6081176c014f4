/* Benchmark group `report`, protocol part (bench/report_proto): the file-system server
 * against the raw block driver on an image file of the same size and the same device model, for
 * each model in turn:
 *   off     no model: the image lives in the page cache (tmpfs by default)
 *   nvme    20 us per request, 64 at once, 2 GB/s
 *   sd      1 ms per request, 2 at once, 20 MB/s (an SD card)
 *   lat200  200 us per request, 32 at once (the `make bench-server` model; random I/O only)
 * Workloads: sequential write (with a sync) and read of one file in 256 KiB requests;
 * 4 KiB random reads and writes over a set of 4 MiB files with 1..64 in flight; create,
 * stat and remove 1,000 and 10,000 files in one directory; remove 1,000 files of 1 KiB;
 * several clients at once (a sequential reader, a random reader, a random writer and a
 * file creator), each alone and then all together; a writable mount (which reads every FAT)
 * against the raw driver reading as many bytes in one sequential pass. "qd1" is one request in flight: what a
 * synchronous server does. The system runs in its default layout (driver and server on
 * one thread of this process); on the page cache, the NVMe-like and the 200 us models the
 * random reads are also measured with each in its own process (the Microkit shape, and asyncfat's
 * layout on Linux before issue 16), both in one process of their own, run inline by the
 * client's thread (there also reads and writes at 32 in flight against the device limit),
 * and against the in-thread baseline: the FAT engine called in this thread, one read at a
 * time, on the same driver (bench/report/report_inthread.h).
 *
 * Prints `bench report_<model>_<figure> <value> <unit>` lines and the key ratios
 * (report_seq_read_ratio_to_raw, ...). Environment: REPORT_QUICK=1 for smaller sizes,
 * REPORT_MODELS=off,sd and REPORT_WORKLOADS=seq,random,meta,mixed,mount (subsets; remove: only the remove-with-data
 * part of meta; the raw driver runs only what the chosen workloads compare with), REPORT_DIR
 * (where images go; default /dev/shm), REPORT_CACHE_MB (the server's cache; default 12).
 */
#include "bench/bench_client.h"
#include "bench/report/report_inthread.h"
#include "bench/report/report_raw.h"
#include "bench/report/report_work.h"
#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "tests/support/blk_test_rig.h"
#include "server/fs_component.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB (1024u * 1024u)
#define SEQ_IO (256u * 1024u)
#define SEQ_DEPTH 8u
#define RANDOM_IO 4096u
#define RANDOM_FILE_BYTES (4u * MiB)
/* The server's block data region is its staging slots (the full staging area blk_stack
 * gives a region this large) plus the cache (cfg.cache_bytes: 12 MiB unless
 * REPORT_CACHE_MB says otherwise, small against the files, so that reads go to the
 * device). */
#define STAGING_BYTES ((uint64_t)BLK_STACK_STAGING_SLOTS * BLK_STACK_STAGING_SLOT_BLOCKS * BLK_TRANSFER_SIZE)
#define MIXED_CLIENTS 4u

typedef struct model_spec {
    const char *name;
    blk_device_model model;
    uint64_t seq_bytes;          /* the sequential file; 0: no sequential workloads */
    bool metadata;
    bool metadata_large;         /* also the 10,000-file run */
    bool mixed;
    bool layouts;                /* random reads also in the processes layout and in-thread */
} model_spec;

static struct {
    bool quick;
    const char *models;
    const char *workloads;
    char dir[512];
    char image[600];
    char raw_image[600];         /* the raw driver's own: it runs beside a mounted volume */
    uint64_t image_bytes;
    uint64_t cache_bytes;
    uint32_t random_files;
    double point_s;
    double mixed_s;
    uint32_t meta_small, meta_large;
} cfg;

static fs_system sys;
static bench_conn conns[MIXED_CLIENTS];

static void figure(const model_spec *m, const char *unit, double value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void figure(const model_spec *m, const char *unit, double value, const char *fmt, ...)
{
    char name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    printf("bench report_%s%s%s %.*f %s\n", m ? m->name : "", m ? "_" : "", name, value < 10 ? 3 : 1, value, unit);
    fflush(stdout);
}

/* Is name in the comma-separated list (an unset or empty list holds every name)? */
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

/* Every figure is the median of ROUNDS measurements: the machine is shared, and a burst of
 * someone else's work would otherwise decide a ratio. */
#define ROUNDS 3

static double median3(const double v[ROUNDS])
{
    double lo = v[0] < v[1] ? v[0] : v[1], hi = v[0] < v[1] ? v[1] : v[0];
    return v[2] < lo ? lo : v[2] > hi ? hi : v[2];
}

/* Requests per second of one pipeline run of `seconds` at `depth` in flight. */
static double pipeline_rate(bench_conn *c, uint32_t depth, double seconds, bench_work *work)
{
    bench_result r = bench_pipeline(c, depth, seconds, work);
    return (double)r.units / r.seconds;
}

static double pipeline_median(bench_conn *c, uint32_t depth, double seconds, bench_work *work)
{
    double v[ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        v[round] = pipeline_rate(c, depth, seconds, work);
    return median3(v);
}

static double raw_median(const raw_job *job)
{
    double v[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        v[i] = raw_run(job);
    return median3(v);
}

static void run_shell(const char *cmd)
{
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: `%s` failed\n", cmd);
        exit(1);
    }
}

/* The server divides its request records among its clients, so the single-client
 * workloads run on a system with one client, and the mixed one on a system of its own. */
/* clients 0: one client, not mounted (the caller times its mount). */
static void system_up_in(const blk_device_model *model, uint32_t clients, fs_system_layout layout)
{
    bool mount = clients == 1;
    if (clients == 0)
        clients = 1;
    bench_system_start(&sys, cfg.image, layout, model, clients, STAGING_BYTES + cfg.cache_bytes, 4u * MiB);
    for (uint32_t i = 0; i < clients; i++)
        bench_conn_init(&conns[i], &sys, i);
    if (mount)
        bench_mount(&conns[0]);
}

static void system_up(const blk_device_model *model, uint32_t clients)
{
    system_up_in(model, clients, FS_SYSTEM_HOSTED);
}

/* main_mounted: conns[0] was mounted by system_up (the one-client system). */
static void system_down(bool main_mounted)
{
    if (main_mounted)
        bench_unmount(&conns[0]);
    if (fs_system_stop(&sys, 5000) != 0) {
        fprintf(stderr, "bench: the system did not stop cleanly\n");
        exit(1);
    }
}

/* ---- the device limit -------------------------------------------------------------------- */

typedef struct raw_figures {
    double seq_write[2], seq_read[2];           /* MB/s at qd1, qd8 */
} raw_figures;

static raw_figures measure_raw(const model_spec *m)
{
    raw_figures r;
    memset(&r, 0, sizeof r);
    uint64_t image_blocks = cfg.image_bytes / BLK_TRANSFER_SIZE;
    if (!blk_make_image(cfg.image, image_blocks, 7) || !blk_make_image(cfg.raw_image, image_blocks, 7)) {
        fprintf(stderr, "bench: cannot create %s\n", cfg.image);
        exit(1);
    }
    raw_job job = {.image = cfg.raw_image, .model = m->model, .blocks = SEQ_IO / BLK_TRANSFER_SIZE, .sequential = true,
                   .region_blocks = m->seq_bytes / BLK_TRANSFER_SIZE};
    bool seq = m->seq_bytes && (listed(cfg.workloads, "seq") || (m->mixed && listed(cfg.workloads, "mixed")));
    for (int i = 0; i < 2 && seq; i++) {
        job.depth = i ? SEQ_DEPTH : 1;
        job.write = true;
        r.seq_write[i] = raw_median(&job) * SEQ_IO / 1e6;
        figure(m, "MB/s", r.seq_write[i], "seqwrite_raw_qd%u", job.depth);
        job.write = false;
        r.seq_read[i] = raw_median(&job) * SEQ_IO / 1e6;
        figure(m, "MB/s", r.seq_read[i], "seqread_raw_qd%u", job.depth);
    }
    job = (raw_job){.image = cfg.raw_image, .model = m->model, .blocks = 1, .region_blocks = image_blocks,
                    .seconds = cfg.point_s};
    for (int i = 0; i < 7 && listed(cfg.workloads, "random"); i++) {
        job.depth = 1u << i;
        job.write = false;
        figure(m, "iops", raw_median(&job), "randread_raw_qd%u", job.depth);
        job.write = true;
        figure(m, "iops", raw_median(&job), "randwrite_raw_qd%u", job.depth);
    }
    return r;
}

/* ---- through the server -------------------------------------------------------------------- */

static void random_set_path(char *buf, size_t size, uint32_t i)
{
    snprintf(buf, size, "/rnd/file%02u.bin", i);
}

/* Without the model (it is setup, not measured): mkfs, and the random file set. */
static void prepare_volume(void)
{
    char cmd[800];
    /* 4 KiB clusters at every size (mkfs.fat's default below 260 MiB is 512 bytes, which
     * splits a 4 KiB request over two blocks): quick runs measure what full ones do. */
    snprintf(cmd, sizeof cmd, "mkfs.fat -F 32 -s 8 '%s' >/dev/null", cfg.image);
    run_shell(cmd);
    system_up(NULL, 1);
    bench_conn *c = &conns[0];
    report_mkdir(c, "/rnd");
    for (uint32_t i = 0; i < cfg.random_files; i++) {
        char path[64];
        random_set_path(path, sizeof path, i);
        io_work w = {.type = FS_CMD_FILE_WRITE, .file_count = 1, .file_bytes = RANDOM_FILE_BYTES, .io_bytes = SEQ_IO,
                     .sequential = true};
        w.fds[0] = report_open(c, path, FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE);
        bench_work work = io_work_bind(&w);
        bench_pipeline(c, SEQ_DEPTH, 0, &work);
        report_close(c, w.fds[0]);
    }
    system_down(true);
}

/* ---- mounting ---------------------------------------------------------------------------- */

/* The bytes of the volume's FATs, from its boot sector. */
static uint64_t fat_bytes(const char *image)
{
    uint8_t bs[512];
    int fd = open(image, O_RDONLY);
    bool read = fd >= 0 && pread(fd, bs, sizeof bs, 0) == (ssize_t)sizeof bs;
    if (fd >= 0)
        close(fd);
    fat_geometry geo;
    fat_bpb_error why;
    if (!read || fat_bpb_parse(bs, sizeof bs, 0, cfg.image_bytes, &geo, &why) != VFS_OK) {
        fprintf(stderr, "bench: cannot read the boot sector of %s\n", image);
        exit(1);
    }
    return geo.fat_bytes * geo.fat_count;
}

/* A writable mount reads every FAT to learn which clusters are free. Its time against the
 * floor: the time the raw driver takes for as many bytes when it reads one sequential pass
 * (256 KiB requests, 8 in flight) on the same model. Median of three, each on a fresh system
 * (an empty cache). */
static void mount_figures(const model_spec *m)
{
    uint64_t bytes = fat_bytes(cfg.image);
    raw_job job = {.image = cfg.raw_image, .model = m->model, .depth = SEQ_DEPTH, .blocks = SEQ_IO / BLK_TRANSFER_SIZE,
                   .sequential = true, .region_blocks = (bytes + SEQ_IO - 1) / SEQ_IO * (SEQ_IO / BLK_TRANSFER_SIZE)};
    double floor_s = (double)bytes / SEQ_IO / raw_median(&job);
    double v[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        system_up_in(&m->model, 0, FS_SYSTEM_HOSTED);
        double t0 = bench_now();
        bench_mount(&conns[0]);
        v[round] = bench_now() - t0;
        system_down(true);
    }
    double mount_s = median3(v);
    figure(m, "MiB", (double)bytes / MiB, "mount_fat_mib");
    figure(m, "ms", mount_s * 1e3, "mount_ms");
    figure(m, "ms", floor_s * 1e3, "mount_fat_read_raw_ms");
    figure(m, "x", mount_s / floor_s, "mount_over_fat_read_raw");
}

/* MB/s for one pass over the sequential file; writes end with a sync. */
static double seq_pass(const model_spec *m, bool write, uint32_t depth)
{
    bench_conn *c = &conns[0];
    io_work w = {.type = write ? FS_CMD_FILE_WRITE : FS_CMD_FILE_READ, .file_count = 1, .file_bytes = m->seq_bytes,
                 .io_bytes = SEQ_IO, .sequential = true};
    uint64_t flags = write ? FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_TRUNCATE
                           : FS_OPEN_FLAGS_READ_ONLY;
    w.fds[0] = report_open(c, "/seq.bin", flags);
    bench_work work = io_work_bind(&w);
    double start = bench_now();
    bench_pipeline(c, depth, 0, &work);
    if (write)
        report_sync(c, w.fds[0]);
    double seconds = bench_now() - start;
    report_close(c, w.fds[0]);
    return (double)m->seq_bytes / seconds / 1e6;
}

static void open_random_set(bench_conn *c, io_work *w, uint64_t type)
{
    *w = (io_work){.type = type, .file_count = cfg.random_files, .file_bytes = RANDOM_FILE_BYTES,
                   .io_bytes = RANDOM_IO};
    for (uint32_t i = 0; i < cfg.random_files; i++) {
        char path[64];
        random_set_path(path, sizeof path, i);
        w->fds[i] = report_open(c, path, FS_OPEN_FLAGS_READ_WRITE);
    }
}

static void close_random_set(bench_conn *c, io_work *w)
{
    for (uint32_t i = 0; i < w->file_count; i++)
        report_close(c, w->fds[i]);
}

/* Seconds to run one metadata operation over `count` files. */
static double meta_pass(bench_conn *c, const char *dir, meta_op op, uint32_t count, uint32_t depth)
{
    meta_work w = {.op = op, .dir = dir, .count = count};
    bench_work work = meta_work_bind(&w);
    return bench_pipeline(c, depth, 0, &work).seconds;
}

typedef struct meta_times {
    double create, stat, remove;
} meta_times;

/* Each metadata figure is the median of three rounds, each in a new directory. */
/* "1k" for 1000, "200" for 200. */
static void count_label(char *label, size_t size, uint32_t count)
{
    if (count % 1000 == 0)
        snprintf(label, size, "%uk", count / 1000);
    else
        snprintf(label, size, "%u", count);
}

static meta_times metadata_run(const model_spec *m, uint32_t count, uint32_t depth)
{
    bench_conn *c = &conns[0];
    char label[16], dir[64];
    count_label(label, sizeof label, count);
    double create[ROUNDS], stat[ROUNDS], remove[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(dir, sizeof dir, "/m%s_qd%u_%d", label, depth, round);
        report_mkdir(c, dir);
        create[round] = meta_pass(c, dir, META_CREATE, count, depth);
        stat[round] = meta_pass(c, dir, META_STAT, count, depth);
        remove[round] = meta_pass(c, dir, META_REMOVE, count, depth);
    }
    meta_times t = {median3(create), median3(stat), median3(remove)};
    figure(m, "files/s", count / t.create, "create%s_qd%u", label, depth);
    figure(m, "files/s", count / t.stat, "stat%s_qd%u", label, depth);
    figure(m, "files/s", count / t.remove, "remove%s_qd%u", label, depth);
    figure(m, "s", t.create, "create%s_qd%u_time", label, depth);
    return t;
}

/* ---- removing files with data ---------------------------------------------------------------- */

/* Files of 1 KiB made at 8 in flight (not timed), then removed at `depth`: each removal
 * queues a cluster chain to be freed once the removal is durable (median of three rounds). */
static double remove_data_run(const model_spec *m, uint32_t depth)
{
    bench_conn *c = &conns[0];
    double v[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        char dir[64];
        snprintf(dir, sizeof dir, "/rm_qd%u_%d", depth, round);
        report_mkdir(c, dir);
        meta_work make = {.op = META_CREATE, .dir = dir, .count = cfg.meta_small, .file_bytes = 1024};
        bench_work work = meta_work_bind(&make);
        bench_pipeline(c, 8, 0, &work);
        v[round] = cfg.meta_small / meta_pass(c, dir, META_REMOVE, cfg.meta_small, depth);
    }
    double rate = median3(v);
    char label[16];
    count_label(label, sizeof label, cfg.meta_small);
    figure(m, "files/s", rate, "remove%s_data_qd%u", label, depth);
    return rate;
}

/* ---- layouts and the in-thread baseline ------------------------------------------------------ */

static double inthread_median(const model_spec *m)
{
    inthread_job job = {.image = cfg.image, .model = m->model, .cache_bytes = cfg.cache_bytes,
                        .file_count = cfg.random_files, .path = random_set_path, .file_bytes = RANDOM_FILE_BYTES,
                        .io_bytes = RANDOM_IO, .seconds = cfg.point_s};
    double v[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        v[i] = inthread_randread(&job);
    double iops = median3(v);
    figure(m, "iops", iops, "randread_inthread_qd1");
    return iops;
}

#define LAYOUT_DEPTHS 3
static const uint32_t layout_depths[LAYOUT_DEPTHS] = {1, 8, 32};

static double paired_with_limit(const model_spec *m, bench_conn *c, bench_work *work, bool write, double *ratio);

/* Random reads at 1, 8 and 32 in flight in another layout; inline (server and driver run
 * by the client's thread, as in the `asyncfat` command) also reads and writes at 32 in
 * flight against the device limit, as the default layout is. */
static void layout_randread(const model_spec *m, fs_system_layout layout, const char *name, double out[LAYOUT_DEPTHS])
{
    system_up_in(&m->model, 1, layout);
    bench_conn *c = &conns[0];
    io_work w;
    open_random_set(c, &w, FS_CMD_FILE_READ);
    bench_work work = io_work_bind(&w);
    bench_pipeline(c, 8, cfg.point_s / 2, &work);
    for (int i = 0; i < LAYOUT_DEPTHS; i++) {
        out[i] = pipeline_median(c, layout_depths[i], cfg.point_s, &work);
        figure(m, "iops", out[i], "randread_%s_qd%u", name, layout_depths[i]);
    }
    for (int op = 0; layout == FS_SYSTEM_INLINE && op < 2; op++) {
        const char *what = op ? "randwrite" : "randread";
        w.type = op ? FS_CMD_FILE_WRITE : FS_CMD_FILE_READ;
        double ratio, iops = paired_with_limit(m, c, &work, op == 1, &ratio);
        figure(m, "iops", iops, "%s_%s_qd32_paired", what, name);
        figure(m, "ratio", ratio, "%s_%s_qd32_ratio_to_limit", what, name);
    }
    close_random_set(c, &w);
    system_down(true);
}

/* ---- several clients at once --------------------------------------------------------------- */

typedef struct mixed_client {
    const model_spec *model;
    uint32_t role;
    bench_conn *conn;
    io_work io;
    char dir[32];
    pthread_barrier_t *start;
    double rate;
} mixed_client;

static const char *const role_names[MIXED_CLIENTS] = {"seqread", "randread", "randwrite", "create"};
static const char *const role_units[MIXED_CLIENTS] = {"MB/s", "iops", "iops", "files/s"};

static void *mixed_client_run(void *arg)
{
    mixed_client *mc = arg;
    bench_conn *c = mc->conn;
    bench_mount(c);
    bench_work work;
    meta_work meta = {.op = META_CREATE, .dir = mc->dir, .count = UINT32_MAX};
    uint32_t depth;
    switch (mc->role) {
    case 0:
        mc->io = (io_work){.type = FS_CMD_FILE_READ, .file_count = 1, .file_bytes = mc->model->seq_bytes,
                           .io_bytes = SEQ_IO, .sequential = true, .wrap = true};
        mc->io.fds[0] = report_open(c, "/seq.bin", FS_OPEN_FLAGS_READ_ONLY);
        work = io_work_bind(&mc->io);
        depth = 4;
        break;
    case 1:
    case 2:
        open_random_set(c, &mc->io, mc->role == 1 ? FS_CMD_FILE_READ : FS_CMD_FILE_WRITE);
        mc->io.rng = 0x1234567ull + mc->role;
        work = io_work_bind(&mc->io);
        depth = mc->role == 1 ? 16 : 8;
        break;
    default:
        report_mkdir(c, mc->dir);
        work = meta_work_bind(&meta);
        depth = 1;
        break;
    }
    pthread_barrier_wait(mc->start);
    mc->rate = pipeline_rate(c, depth, cfg.mixed_s, &work) * (mc->role == 0 ? SEQ_IO / 1e6 : 1.0);
    if (mc->role == 3) {
        meta_pass(c, mc->dir, META_REMOVE, meta.next, 8);
    } else if (mc->role == 0) {
        report_close(c, mc->io.fds[0]);
    } else {
        close_random_set(c, &mc->io);
    }
    bench_unmount(c);
    return NULL;
}

/* Each client alone, then all at once. */
static void mixed_run(const model_spec *m)
{
    double alone[MIXED_CLIENTS], together[MIXED_CLIENTS];
    for (uint32_t role = 0; role < MIXED_CLIENTS; role++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 1);
        mixed_client mc = {.model = m, .role = role, .conn = &conns[role], .start = &start};
        snprintf(mc.dir, sizeof mc.dir, "/mixa%u", role);
        mixed_client_run(&mc);
        alone[role] = mc.rate;
        pthread_barrier_destroy(&start);
    }
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, MIXED_CLIENTS);
    mixed_client mcs[MIXED_CLIENTS];
    pthread_t threads[MIXED_CLIENTS];
    for (uint32_t role = 0; role < MIXED_CLIENTS; role++) {
        mcs[role] = (mixed_client){.model = m, .role = role, .conn = &conns[role], .start = &start};
        snprintf(mcs[role].dir, sizeof mcs[role].dir, "/mixt%u", role);
        if (pthread_create(&threads[role], NULL, mixed_client_run, &mcs[role]) != 0) {
            fprintf(stderr, "bench: pthread_create failed\n");
            exit(1);
        }
    }
    double share = 0;
    for (uint32_t role = 0; role < MIXED_CLIENTS; role++) {
        pthread_join(threads[role], NULL);
        together[role] = mcs[role].rate;
        figure(m, role_units[role], alone[role], "mixed_%s_alone", role_names[role]);
        figure(m, role_units[role], together[role], "mixed_%s_together", role_names[role]);
        share += together[role] / alone[role];
    }
    pthread_barrier_destroy(&start);
    /* 1.0: the clients together got as much done as taking turns would; more is overlap. */
    figure(m, "ratio", share, "mixed_combined_share");
}

typedef struct key_figures {
    bool seq, randread, create, layouts;
    double seq_read_ratio, seq_write_ratio, randread_ratio, randread_theory_ratio, create_ratio;
    double qd1_over_processes, qd8_over_inthread;   /* the default layout */
    double qd1_best_over_processes, qd8_best_over_inthread; /* the better of default and inline */
    double remove_worst;         /* the smallest remove-with-data qd8 / qd1 over the models */
    bool remove;
} key_figures;

typedef struct random_reads {
    double fs[7];                /* at 1, 2, 4 .. 64 in flight, default layout */
} random_reads;

static void random_run(const model_spec *m, key_figures *keys, random_reads *reads);
static void metadata_all(const model_spec *m, key_figures *keys);

/* The default layout (the driver and the server on a thread of the benchmark's process)
 * against each in a process of its own (asyncfat before issue 16), both in one process of
 * their own, the client running them on its own thread (inline), and the in-thread engine. */
static void layout_figures(const model_spec *m, const random_reads *reads, double inthread, key_figures *keys)
{
    double processes[LAYOUT_DEPTHS], shared[LAYOUT_DEPTHS], in_line[LAYOUT_DEPTHS];
    layout_randread(m, FS_SYSTEM_PROCESSES, "processes", processes);
    layout_randread(m, FS_SYSTEM_SHARED, "shared", shared);
    layout_randread(m, FS_SYSTEM_INLINE, "inline", in_line);
    for (int i = 0; i < LAYOUT_DEPTHS; i++) {
        uint32_t d = layout_depths[i];
        double fs = reads->fs[__builtin_ctz(d)];
        figure(m, "x", fs / processes[i], "randread_qd%u_over_processes", d);
        figure(m, "x", fs / inthread, "randread_qd%u_over_inthread", d);
        figure(m, "x", in_line[i] / inthread, "randread_inline_qd%u_over_inthread", d);
    }
    if (!strcmp(m->name, "off")) {
        double best1 = af_max_u64((uint64_t)reads->fs[0], (uint64_t)in_line[0]);
        double best8 = af_max_u64((uint64_t)reads->fs[3], (uint64_t)in_line[1]);
        keys->layouts = true;
        keys->qd1_over_processes = reads->fs[0] / processes[0];
        keys->qd1_best_over_processes = best1 / processes[0];
        keys->qd8_over_inthread = reads->fs[3] / inthread;
        keys->qd8_best_over_inthread = best8 / inthread;
    }
}

static void measure_model(const model_spec *m, key_figures *keys)
{
    raw_figures raw = measure_raw(m);
    prepare_volume();
    if (listed(cfg.workloads, "mount"))
        mount_figures(m);
    bool layouts = m->layouts && listed(cfg.workloads, "random");
    double inthread = layouts ? inthread_median(m) : 0;
    random_reads reads = {{0}};
    system_up(&m->model, 1);
    if (m->seq_bytes && (listed(cfg.workloads, "seq") || (m->mixed && listed(cfg.workloads, "mixed")))) {
        double fs_write[2], fs_read[2];
        for (int i = 0; i < 2; i++) {
            uint32_t depth = i ? SEQ_DEPTH : 1;
            double v[ROUNDS];
            for (int round = 0; round < ROUNDS; round++)
                v[round] = seq_pass(m, true, depth);
            fs_write[i] = median3(v);
            figure(m, "MB/s", fs_write[i], "seqwrite_fs_qd%u", depth);
        }
        for (int i = 0; i < 2; i++) {
            uint32_t depth = i ? SEQ_DEPTH : 1;
            double v[ROUNDS];
            for (int round = 0; round < ROUNDS; round++) {
                system_down(true); /* an empty server cache */
                system_up(&m->model, 1);
                v[round] = seq_pass(m, false, depth);
            }
            fs_read[i] = median3(v);
            figure(m, "MB/s", fs_read[i], "seqread_fs_qd%u", depth);
        }
        figure(m, "ratio", fs_write[1] / raw.seq_write[1], "seq_write_ratio_to_raw");
        figure(m, "ratio", fs_read[1] / raw.seq_read[1], "seq_read_ratio_to_raw");
        if (!strcmp(m->name, "nvme")) {
            keys->seq = true;
            keys->seq_write_ratio = fs_write[1] / raw.seq_write[1];
            keys->seq_read_ratio = fs_read[1] / raw.seq_read[1];
        }
    }
    if (listed(cfg.workloads, "random"))
        random_run(m, keys, &reads);
    if (m->metadata && listed(cfg.workloads, "meta"))
        metadata_all(m, keys);
    if (listed(cfg.workloads, "meta") || listed(cfg.workloads, "remove")) {
        double qd1 = remove_data_run(m, 1), qd8 = remove_data_run(m, 8);
        figure(m, "x", qd8 / qd1, "remove_data_qd8_over_qd1");
        if (!keys->remove || qd8 / qd1 < keys->remove_worst)
            keys->remove_worst = qd8 / qd1;
        keys->remove = true;
    }
    system_down(true);
    if (layouts)
        layout_figures(m, &reads, inthread, keys);
    if (m->mixed && listed(cfg.workloads, "mixed")) {
        system_up(&m->model, MIXED_CLIENTS);
        mixed_run(m);
        system_down(false);
    }
    unlink(cfg.image);
}

/* The ratio to the device limit at 32 in flight pairs each round of the server with a run
 * of the raw driver just before it (on an image of its own): the raw driver's own rate
 * moves by half from minute to minute on a shared machine, so a limit measured minutes
 * earlier decided the ratio more than the server did. The median of the paired ratios. */
#define LIMIT_DEPTH_INDEX 5

/* The server's random reads or writes at 32 in flight, each round after a raw run: the
 * median rate, and the median of the paired ratios in *ratio. */
static double paired_with_limit(const model_spec *m, bench_conn *c, bench_work *work, bool write, double *ratio)
{
    raw_job limit_job = {.image = cfg.raw_image, .model = m->model, .depth = 1u << LIMIT_DEPTH_INDEX, .blocks = 1,
                         .write = write, .region_blocks = cfg.image_bytes / BLK_TRANSFER_SIZE,
                         .seconds = cfg.point_s};
    double v[ROUNDS], paired[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        double lim = raw_run(&limit_job);
        v[round] = pipeline_rate(c, 1u << LIMIT_DEPTH_INDEX, cfg.point_s, work);
        paired[round] = lim > 0 ? v[round] / lim : 0;
    }
    *ratio = median3(paired);
    return median3(v);
}

static void random_run(const model_spec *m, key_figures *keys, random_reads *reads)
{
    bench_conn *c = &conns[0];
    io_work w;
    open_random_set(c, &w, FS_CMD_FILE_READ);
    bench_work work = io_work_bind(&w);
    bench_pipeline(c, 8, cfg.point_s / 2, &work); /* warm the directory and cluster-run caches */
    for (int op = 0; op < 2; op++) {
        w.type = op ? FS_CMD_FILE_WRITE : FS_CMD_FILE_READ;
        const char *name = op ? "randwrite" : "randread";
        double qd1 = 0;
        for (int i = 0; i < 7; i++) {
            double ratio = 0;
            double iops = i == LIMIT_DEPTH_INDEX ? paired_with_limit(m, c, &work, op == 1, &ratio)
                                                 : pipeline_median(c, 1u << i, cfg.point_s, &work);
            figure(m, "iops", iops, "%s_fs_qd%u", name, 1u << i);
            if (op == 0)
                reads->fs[i] = iops;
            if (i == 0)
                qd1 = iops;
            if (i == LIMIT_DEPTH_INDEX) {
                figure(m, "ratio", ratio, "%s_qd32_ratio_to_limit", name);
                figure(m, "x", iops / qd1, "%s_qd32_over_qd1", name);
                if (op == 0 && !strcmp(m->name, "lat200")) {
                    keys->randread = true;
                    keys->randread_ratio = ratio;
                    double qd = m->model.device_queue_depth < 32 ? m->model.device_queue_depth : 32;
                    keys->randread_theory_ratio = iops / (qd / (m->model.latency_ns * 1e-9));
                }
            }
        }
    }
    close_random_set(c, &w);
}

static void metadata_all(const model_spec *m, key_figures *keys)
{
    for (uint32_t depth = 1; depth <= 8; depth *= 8) {
        meta_times small = metadata_run(m, cfg.meta_small, depth);
        if (!m->metadata_large)
            continue;
        meta_times large = metadata_run(m, cfg.meta_large, depth);
        double ratio = large.create / small.create;
        figure(m, "x", ratio, "create_%u_over_%u_qd%u", cfg.meta_large, cfg.meta_small, depth);
        /* The key figure uses 8 in flight: with one, the time is mostly process wake-ups,
         * whose cost on a shared two-core machine changes several-fold between runs. */
        if (depth == 8 && !strcmp(m->name, "off")) {
            keys->create = true;
            keys->create_ratio = ratio;
        }
    }
}

/* Also on a failure's exit(1): leave no image behind in /dev/shm. */
static void remove_images(void)
{
    unlink(cfg.image);
    unlink(cfg.raw_image);
    rmdir(cfg.dir);
}

static void configure(void)
{
    const char *quick = getenv("REPORT_QUICK");
    cfg.quick = quick && *quick && strcmp(quick, "0") != 0;
    cfg.models = getenv("REPORT_MODELS");
    cfg.workloads = getenv("REPORT_WORKLOADS");
    const char *cache_mb = getenv("REPORT_CACHE_MB");
    cfg.cache_bytes = (cache_mb && atoi(cache_mb) > 0 ? (uint64_t)atoi(cache_mb) : 12u) * MiB;
    const char *base = getenv("REPORT_DIR");
    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(cfg.dir, sizeof cfg.dir, "%s/asyncfat-report-XXXXXX", base);
    if (!mkdtemp(cfg.dir)) {
        perror("bench: mkdtemp");
        exit(1);
    }
    snprintf(cfg.image, sizeof cfg.image, "%s/volume.img", cfg.dir);
    snprintf(cfg.raw_image, sizeof cfg.raw_image, "%s/raw.img", cfg.dir);
    atexit(remove_images);
    cfg.image_bytes = (cfg.quick ? 160ull : 512ull) * MiB;
    cfg.random_files = cfg.quick ? 8 : 32;
    cfg.point_s = cfg.quick ? 0.15 : 0.4;
    cfg.mixed_s = cfg.quick ? 0.5 : 1.5;
    cfg.meta_small = cfg.quick ? 200 : 1000;
    cfg.meta_large = cfg.quick ? 2000 : 10000;
}

int main(void)
{
    configure();
    uint64_t seq = (cfg.quick ? 64ull : 256ull) * MiB;
    const model_spec models[] = {
        {"off", {0, 0, 0}, seq, true, true, true, true},
        {"nvme", {20000, 64, 2000000000ull}, seq, true, true, true, true},
        {"sd", {1000000, 2, 20000000ull}, (cfg.quick ? 8ull : 32ull) * MiB, true, false, false, false},
        {"lat200", {200000, 32, 0}, 0, false, false, false, true},
    };
    printf("bench report_meta_small_files %u files\nbench report_meta_large_files %u files\n", cfg.meta_small,
           cfg.meta_large);
    key_figures keys = {0};
    for (size_t i = 0; i < AF_ARRAY_LEN(models); i++)
        if (listed(cfg.models, models[i].name))
            measure_model(&models[i], &keys);
    if (keys.seq) {
        figure(NULL, "ratio", keys.seq_read_ratio, "seq_read_ratio_to_raw");
        figure(NULL, "ratio", keys.seq_write_ratio, "seq_write_ratio_to_raw");
    }
    if (keys.randread) {
        figure(NULL, "ratio", keys.randread_ratio, "randread_qd32_ratio_to_limit");
        figure(NULL, "ratio", keys.randread_theory_ratio, "randread_qd32_ratio_to_theory");
    }
    if (keys.create)
        figure(NULL, "x", keys.create_ratio, "create10k_over_create1k");
    if (keys.layouts) {
        figure(NULL, "x", keys.qd1_over_processes, "randread_qd1_over_processes");
        figure(NULL, "x", keys.qd8_over_inthread, "randread_qd8_over_inthread");
        figure(NULL, "x", keys.qd1_best_over_processes, "randread_qd1_best_layout_over_processes");
        figure(NULL, "x", keys.qd8_best_over_inthread, "randread_qd8_best_layout_over_inthread");
    }
    if (keys.remove)
        figure(NULL, "x", keys.remove_worst, "remove_data_qd8_over_qd1_worst");
    return 0;
}
