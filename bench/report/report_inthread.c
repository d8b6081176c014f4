/* report_inthread: see report_inthread.h. */
#include "bench/report/report_inthread.h"
#include "bench/bench_client.h"
#include "fat/fat.h"
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct inthread_run {
    const inthread_job *job;
    fat_volume vol;
    fat_config cfg;
    vfs_status status;
    uint64_t reads;
    uint64_t rng;
    double seconds;
} inthread_run;

static void fail(const char *what, vfs_status st)
{
    fprintf(stderr, "bench inthread: %s failed with status %d\n", what, (int)st);
    exit(1);
}

/* The same sequence of files and offsets as the server's random reads (io_work). */
static vfs_status read_one(inthread_run *r, fat_node **nodes)
{
    static uint8_t buf[1u << 20];
    const inthread_job *job = r->job;
    fat_node *node = nodes[bench_rand(&r->rng) % job->file_count];
    uint64_t offset = (bench_rand(&r->rng) % (job->file_bytes / job->io_bytes)) * job->io_bytes;
    size_t done;
    vfs_status st = fat_read(node, offset, buf, job->io_bytes, &done);
    return st == VFS_OK && done != job->io_bytes ? VFS_IO_ERROR : st;
}

static void *reader(void *arg)
{
    inthread_run *r = arg;
    const inthread_job *job = r->job;
    fat_bpb_error why;
    vfs_status st = fat_mount(&r->vol, r->vol.cache, &r->cfg, &why);
    if (st != VFS_OK)
        fail("mount", st);
    fat_node *nodes[64];
    for (uint32_t i = 0; i < job->file_count; i++) {
        char path[64];
        job->path(path, sizeof path, i);
        if ((st = fat_open(&r->vol, path, strlen(path), VFS_OPEN_READ_ONLY, &nodes[i])) != VFS_OK)
            fail("open", st);
    }
    /* Warm the directory and cluster-run caches as the server's runs are, and the driver's
     * mapping of an image in memory (blk_driver_mapped.c), for as long as it measures;
     * then read. */
    double warm_from = bench_now();
    for (uint64_t n = 0; n < 2000 || bench_now() - warm_from < job->seconds; n++)
        if ((st = read_one(r, nodes)) != VFS_OK)
            fail("read", st);
    double start = bench_now(), now = start;
    while (now - start < job->seconds) {
        for (int i = 0; i < 64; i++)
            if ((st = read_one(r, nodes)) != VFS_OK)
                fail("read", st);
        r->reads += 64;
        now = bench_now();
    }
    r->seconds = now - start;
    for (uint32_t i = 0; i < job->file_count; i++)
        fat_close(nodes[i]);
    r->status = fat_unmount(&r->vol);
    return NULL;
}

double inthread_randread(const inthread_job *job)
{
    if (job->file_count > 64 || job->io_bytes > (1u << 20) || job->io_bytes == 0) {
        fprintf(stderr, "bench inthread: bad job\n");
        exit(1);
    }
    static blk_fixture f;
    blk_fixture_options o = blk_fixture_defaults();
    o.backend = BLK_FIXTURE_LINUX;
    o.image_path = job->image;
    o.linux_model = job->model;
    o.cache_buffers = (uint32_t)(job->cache_bytes / BLK_TRANSFER_SIZE);
    o.fibers = 4;
    if (blk_fixture_init(&f, &o) != 0) {
        fprintf(stderr, "bench inthread: cannot open %s\n", job->image);
        exit(1);
    }
    static inthread_run r;
    memset(&r, 0, sizeof r);
    r.job = job;
    r.rng = 0x9e3779b97f4a7c15ull;
    r.vol.cache = &f.stack.cache;
    r.cfg = fat_config_defaults();
    size_t bytes = fat_memory_total(&r.cfg, f.image_bytes);
    void *mem = malloc(bytes);
    if (!mem || !fat_config_place_memory(&r.cfg, f.image_bytes, mem, bytes)) {
        fprintf(stderr, "bench inthread: no memory for the engine\n");
        exit(1);
    }
    r.status = VFS_ERROR;
    blk_fixture_spawn(&f, reader, &r);
    if (!blk_fixture_run(&f) || r.status != VFS_OK)
        fail("the run", r.status);
    blk_fixture_fini(&f);
    free(mem);
    return (double)r.reads / r.seconds;
}
