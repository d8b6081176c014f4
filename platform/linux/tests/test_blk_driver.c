/* The io_uring block driver, in process (blk_test_rig) and as a component: storage info;
 * random reads, writes, flushes and barriers at several queue depths and sector sizes
 * against an in-memory model; bad requests; each fault mode; the write log; ordering of
 * barriers and flushes; the device model's latency, queue depth and bandwidth; inline
 * transfers (through a replaceable transfer function) under all of these, and their
 * fallback to io_uring. */
#include "platform/linux/blk_driver_component.h"
#include "platform/linux/blk_driver_internal.h"
#include "platform/linux/blk_log.h"
#include "platform/linux/launcher.h"
#include "tests/support/blk_test_rig.h"
#include "tests/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BS BLK_TRANSFER_SIZE
#define LONG_WAIT 10000000000ll

static char image_path[512];

static const char *make_image(const char *name, uint64_t blocks, uint64_t seed)
{
    snprintf(image_path, sizeof image_path, "%s/%s", test_tmpdir(), name);
    return blk_make_image(image_path, blocks, seed) ? image_path : NULL;
}

/* Images in memory (/dev/shm, tmpfs), which the driver serves inline and reads through a
 * mapping. memory_unavailable says SKIP for the test where /dev/shm cannot be written. */
static bool memory_unavailable(const char *test)
{
    if (access("/dev/shm", W_OK) == 0)
        return false;
    printf("SKIP %s: no writable /dev/shm\n", test);
    return true;
}

static const char *make_memory_image(const char *name, uint64_t blocks, uint64_t seed)
{
    static char path[64];
    snprintf(path, sizeof path, "/dev/shm/asyncfat-%s-%d.img", name, (int)getpid());
    return blk_make_image(path, blocks, seed) ? path : NULL;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return NULL;
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
    close(fd);
    *size = (size_t)st.st_size;
    if (n != st.st_size) {
        free(buf);
        return NULL;
    }
    return buf;
}

static bool pattern_matches(const uint8_t *p, uint64_t seed, uint64_t offset, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != blk_pattern_byte(seed, offset + i))
            return false;
    return true;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- storage info and configuration ----------------------------------------------------- */

TEST(storage_info_is_filled_and_ready)
{
    const char *path = make_image("info.img", 100, 1);
    CHECK(path);
    static const uint16_t sectors[] = {512, 1024, 2048, 4096};
    for (size_t i = 0; i < AF_ARRAY_LEN(sectors); i++) {
        blk_test_rig rig;
        blk_driver_config config = {.path = path, .sector_size = sectors[i], .queue_depth = 16};
        CHECK_EQ(blk_rig_open(&rig, &config, 32, 64 * BS), 0);
        CHECK(blk_storage_is_ready(&rig.info));
        CHECK_EQ(rig.info.sector_size, sectors[i]);
        CHECK_EQ(rig.info.capacity, 100);
        CHECK_EQ(rig.info.queue_depth, 16);
        CHECK(!rig.info.read_only);
        CHECK(strstr(rig.info.serial_number, "info.img") != NULL);
        blk_rig_close(&rig);
    }
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .read_only = true, .capacity = 50};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), 0);
    CHECK(rig.info.read_only);
    CHECK_EQ(rig.info.capacity, 50);
    CHECK_EQ(rig.info.sector_size, 512);
    blk_rig_close(&rig);
    config = (blk_driver_config){.path = path, .sector_size = 1000};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), EINVAL);
    config = (blk_driver_config){.path = "/nonexistent/asyncfat.img"};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), ENOENT);
    /* a larger capacity than the file grows it; read-only cannot */
    config = (blk_driver_config){.path = path, .capacity = 200};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), 0);
    CHECK_EQ(rig.info.capacity, 200);
    blk_rig_close(&rig);
    config = (blk_driver_config){.path = path, .capacity = 300, .read_only = true};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), EINVAL);
}

/* ---- random operations against a model ---------------------------------------------------- */

#define MODEL_BLOCKS 256u
#define MAX_COUNT 8u

typedef struct inflight {
    bool used;
    blk_request req;
} inflight;

static bool overlaps(const blk_request *a, uint64_t block, uint32_t count)
{
    return a->block_number < block + count && block < a->block_number + a->count;
}

/* May a new request over [block, block+count) start while these are in flight? A write
 * must not overlap anything; a read must not overlap a write (their order is undefined). */
static bool conflicts(const inflight *f, uint32_t depth, uint32_t code, uint64_t block, uint32_t count)
{
    for (uint32_t i = 0; i < depth; i++)
        if (f[i].used && (f[i].req.code == BLK_REQ_WRITE || f[i].req.code == BLK_REQ_READ) &&
            overlaps(&f[i].req, block, count) && (code == BLK_REQ_WRITE || f[i].req.code == BLK_REQ_WRITE))
            return true;
    return false;
}

static bool run_model_inline; /* set: every transfer goes through the test's inline hook */
static bool run_model_in_memory; /* set: the image is in /dev/shm, read through a mapping */
static uint64_t run_model_mapped_reads;
static void use_test_inline_io(blk_driver *d);

static bool run_model(uint32_t depth, uint16_t sector, uint64_t seed, uint32_t operations)
{
    const char *path = run_model_in_memory ? make_memory_image("model", MODEL_BLOCKS, seed)
                                           : make_image("model.img", MODEL_BLOCKS, seed);
    static uint8_t model[MODEL_BLOCKS * BS];
    for (size_t i = 0; i < sizeof model; i++)
        model[i] = blk_pattern_byte(seed, i);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .sector_size = sector, .queue_depth = depth};
    if (!EXPECT(path && blk_rig_open(&rig, &config, depth + 3, (size_t)depth * MAX_COUNT * BS) == 0))
        return false;
    if (run_model_inline)
        use_test_inline_io(rig.driver);
    inflight f[64] = {{0}};
    uint64_t rng = seed;
    uint32_t issued = 0, answered = 0, outstanding = 0;
    bool ok = true;
    while (ok && answered < operations) {
        /* issue until the depth is reached or a pick conflicts */
        while (issued < operations && outstanding < depth) {
            uint32_t slot = 0;
            while (f[slot].used)
                slot++;
            uint32_t kind = (uint32_t)test_rand_below(&rng, 20);
            uint32_t code = kind < 9 ? BLK_REQ_READ : kind < 18 ? BLK_REQ_WRITE : kind < 19 ? BLK_REQ_FLUSH : BLK_REQ_BARRIER;
            uint32_t count = (uint32_t)test_rand_below(&rng, MAX_COUNT) + 1;
            uint64_t block = test_rand_below(&rng, MODEL_BLOCKS - count + 1);
            if ((code == BLK_REQ_READ || code == BLK_REQ_WRITE) && conflicts(f, depth, code, block, count))
                break;
            uint8_t *buf = rig.data + (size_t)slot * MAX_COUNT * BS;
            if (code == BLK_REQ_WRITE) {
                for (uint32_t i = 0; i < count * BS; i++)
                    buf[i] = (uint8_t)test_rand(&rng);
                memcpy(model + block * BS, buf, count * BS);
            } else if (code == BLK_REQ_READ) {
                memset(buf, 0xEE, count * BS);
            }
            blk_request req = {.code = code, .io_or_offset = (uint64_t)slot * MAX_COUNT * BS,
                               .block_number = block, .count = (uint16_t)count, .id = slot};
            f[slot].used = true;
            f[slot].req = req;
            /* a read checks against the model now: nothing in flight may change its blocks */
            if (!EXPECT(blk_enqueue_request(&rig.queues, req)))
                ok = false;
            issued++;
            outstanding++;
        }
        blk_response resps[64];
        uint32_t n = blk_rig_collect(&rig, resps, 64, LONG_WAIT);
        ok = ok && EXPECT(n > 0);
        for (uint32_t i = 0; i < n && ok; i++) {
            ok = EXPECT(resps[i].id < depth && f[resps[i].id].used) && EXPECT(resps[i].status == BLK_RESP_OK);
            if (!ok)
                break;
            inflight *r = &f[resps[i].id];
            if (r->req.code == BLK_REQ_READ || r->req.code == BLK_REQ_WRITE)
                ok = EXPECT(resps[i].success_count == r->req.count);
            if (ok && r->req.code == BLK_REQ_READ)
                ok = EXPECT(memcmp(rig.data + r->req.io_or_offset, model + r->req.block_number * BS,
                                   r->req.count * BS) == 0);
            r->used = false;
            outstanding--;
            answered++;
        }
    }
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    ok = ok && EXPECT(image && size == sizeof model && memcmp(image, model, size) == 0);
    ok = ok && EXPECT(stats.requests == operations && stats.invalid == 0 && stats.io_errors == 0);
    free(image);
    run_model_mapped_reads = stats.mapped_reads;
    if (run_model_in_memory)
        unlink(path);
    return ok;
}

TEST(random_operations_match_model)
{
    static const struct { uint32_t depth; uint16_t sector; } runs[] = {
        {1, 512}, {2, 4096}, {4, 1024}, {8, 2048}, {32, 512}, {64, 4096},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(runs); i++)
        CHECK_MSG(run_model(runs[i].depth, runs[i].sector, test_seed() + i, 3000), "depth %u sector %u",
                  runs[i].depth, runs[i].sector);
}

/* ---- bad requests ---------------------------------------------------------------------------- */

TEST(bad_requests_get_invalid_param)
{
    const char *path = make_image("bad.img", 64, 5);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path};
    const size_t data = 16 * BS;
    CHECK_EQ(blk_rig_open(&rig, &config, 8, data), 0);
    const blk_request bad[] = {
        {.code = BLK_REQ_READ, .block_number = 0, .count = 0},
        {.code = BLK_REQ_WRITE, .block_number = 0, .count = 0},
        {.code = BLK_REQ_READ, .block_number = 64, .count = 1},
        {.code = BLK_REQ_READ, .block_number = 63, .count = 2},
        {.code = BLK_REQ_WRITE, .block_number = UINT64_MAX, .count = 2},
        {.code = BLK_REQ_READ, .block_number = UINT64_MAX - 1000, .count = 0xffff},
        {.code = BLK_REQ_READ, .io_or_offset = data, .count = 1},
        {.code = BLK_REQ_READ, .io_or_offset = data - BS + 1, .count = 1},
        {.code = BLK_REQ_WRITE, .io_or_offset = UINT64_MAX - 100, .count = 1},
        {.code = BLK_REQ_READ, .io_or_offset = 0, .count = 17},
        {.code = BLK_REQ_READ, .io_or_offset = 0, .count = 0xffff},
        {.code = BLK_REQ_DISCARD, .block_number = 0, .count = 0},
        {.code = BLK_REQ_DISCARD, .block_number = 63, .count = 2},
        {.code = 5, .count = 1},
        {.code = 0xffffffffu, .count = 1},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(bad); i++) {
        blk_request r = bad[i];
        r.id = (uint32_t)i + 100;
        blk_response resp = blk_rig_do(&rig, r);
        CHECK_MSG(resp.status == BLK_RESP_ERR_INVALID_PARAM && resp.id == r.id && resp.success_count == 0,
                  "request %zu: status %u", i, resp.status);
    }
    /* the edges themselves are fine */
    blk_request last_block = {.code = BLK_REQ_READ, .block_number = 63, .count = 1, .io_or_offset = data - BS};
    CHECK_EQ(blk_rig_do(&rig, last_block).status, BLK_RESP_OK);
    CHECK(pattern_matches(rig.data + data - BS, 5, 63 * BS, BS));
    blk_request whole = {.code = BLK_REQ_READ, .block_number = 48, .count = 16};
    CHECK_EQ(blk_rig_do(&rig, whole).success_count, 16);
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    CHECK_EQ(stats.invalid, AF_ARRAY_LEN(bad));
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image && size == 64 * BS);
    CHECK(pattern_matches(image, 5, 0, size)); /* no write happened */
    free(image);
}

TEST(read_only_device_refuses_writes)
{
    const char *path = make_image("ro.img", 16, 6);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .read_only = true};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
    CHECK(rig.info.read_only);
    blk_request w = {.code = BLK_REQ_WRITE, .block_number = 1, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, w).status, BLK_RESP_ERR_INVALID_PARAM);
    blk_request r = {.code = BLK_REQ_READ, .block_number = 1, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
    blk_request flush = {.code = BLK_REQ_FLUSH};
    CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
    blk_rig_close(&rig);
    if (geteuid() != 0) { /* root opens anything read-write */
        CHECK_EQ(chmod(path, 0444), 0);
        config.read_only = false;
        CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
        CHECK(rig.info.read_only);
        blk_rig_close(&rig);
    }
}

/* Requests answered at once (bad ones, barriers) must not strand the rest of the queue:
 * one client notification is all the driver gets. */
TEST(queue_drains_with_immediate_answers_at_depth_one)
{
    const char *path = make_image("drain.img", 16, 17);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .queue_depth = 1};
    CHECK_EQ(blk_rig_open(&rig, &config, 200, 4 * BS), 0);
    for (uint32_t i = 0; i < 200; i++) {
        blk_request r = {.code = i % 3 == 0 ? BLK_REQ_BARRIER : i % 3 == 1 ? 77 : BLK_REQ_READ, .count = 0, .id = i};
        CHECK(blk_enqueue_request(&rig.queues, r));
    }
    CHECK_EQ(blk_driver_poll(rig.driver), 200);
    blk_response resps[200];
    CHECK_EQ(blk_dequeue_responses(&rig.queues, resps, 200), 200);
    for (uint32_t i = 0; i < 200; i++) {
        CHECK_EQ(resps[i].id, i);
        CHECK_EQ(resps[i].status, i % 3 == 0 ? BLK_RESP_OK : BLK_RESP_ERR_INVALID_PARAM);
    }
    blk_rig_close(&rig);
}

/* A client that writes nonsense into the queue counters can only confuse itself: the
 * driver keeps answering once the counters are sane again, and never crashes. */
TEST(scribbled_queue_counters_do_not_crash_the_driver)
{
    const char *path = make_image("scribble.img", 16, 16);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .queue_depth = 8};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), 0);
    blk_request r = {.code = BLK_REQ_READ, .block_number = 1, .count = 1};
    for (int i = 0; i < 4; i++)
        CHECK(blk_enqueue_request(&rig.queues, r));
    uint32_t head = rig.queues.resp->head;
    rig.queues.resp->head = rig.queues.resp->tail + 3; /* no room for responses */
    for (int i = 0; i < 20; i++) {
        blk_driver_poll(rig.driver);
        blk_driver_wait(rig.driver, 1000000);
    }
    rig.queues.resp->head = head;
    blk_response resps[8];
    uint32_t got = 0;
    while (got < 4) {
        uint32_t n = blk_rig_collect(&rig, resps, 8, LONG_WAIT);
        CHECK(n > 0);
        got += n;
    }
    /* a request tail far ahead: the driver takes at most a queue's worth of garbage */
    rig.queues.req->tail += 1000000;
    for (int i = 0; i < 50; i++) {
        blk_driver_poll(rig.driver);
        blk_dequeue_responses(&rig.queues, resps, 8);
        rig.queues.resp->tail ^= (uint32_t)i * 2654435761u; /* and a tail scribbled over */
        blk_driver_wait(rig.driver, 100000);
    }
    blk_rig_close(&rig);
}

/* ---- faults ---------------------------------------------------------------------------------- */

TEST(fail_nth_request)
{
    const char *path = make_image("nth.img", 16, 7);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .faults = {.fail_request = 3}};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
    blk_request bad = {.code = 9};
    CHECK_EQ(blk_rig_do(&rig, bad).status, BLK_RESP_ERR_INVALID_PARAM); /* not counted */
    for (uint32_t i = 1; i <= 5; i++) {
        blk_request r = {.code = BLK_REQ_READ, .block_number = i, .count = 1, .id = i};
        blk_response resp = blk_rig_do(&rig, r);
        CHECK_EQ(resp.status, i == 3 ? BLK_RESP_ERR_IO : BLK_RESP_OK);
        CHECK_EQ(resp.success_count, i == 3 ? 0 : 1);
    }
    blk_rig_close(&rig);
}

TEST(fail_block_range)
{
    const char *path = make_image("range.img", 32, 8);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .faults = {.fail_first_block = 10, .fail_block_count = 3}};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), 0);
    struct { uint32_t code; uint64_t block; uint16_t count; uint32_t status; } cases[] = {
        {BLK_REQ_READ, 9, 1, BLK_RESP_OK},     {BLK_REQ_READ, 9, 2, BLK_RESP_ERR_IO},
        {BLK_REQ_READ, 12, 1, BLK_RESP_ERR_IO}, {BLK_REQ_READ, 13, 4, BLK_RESP_OK},
        {BLK_REQ_WRITE, 11, 1, BLK_RESP_ERR_IO}, {BLK_REQ_WRITE, 5, 8, BLK_RESP_ERR_IO},
        {BLK_REQ_WRITE, 14, 1, BLK_RESP_OK},   {BLK_REQ_FLUSH, 0, 0, BLK_RESP_OK},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(cases); i++) {
        blk_request r = {.code = cases[i].code, .block_number = cases[i].block, .count = cases[i].count};
        memset(rig.data, 0x5a, 8 * BS);
        CHECK_MSG(blk_rig_do(&rig, r).status == cases[i].status, "case %zu", i);
    }
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image);
    CHECK(pattern_matches(image, 8, 0, 14 * BS)); /* the failed writes changed nothing */
    CHECK(image[14 * BS] == 0x5a && image[15 * BS - 1] == 0x5a);
    free(image);
}

static blk_response write_block(blk_test_rig *rig, uint64_t block, uint8_t fill)
{
    memset(rig->data, fill, BS);
    blk_request w = {.code = BLK_REQ_WRITE, .block_number = block, .count = 1};
    return blk_rig_do(rig, w);
}

TEST(power_cut_drops_later_writes)
{
    const char *path = make_image("cut.img", 16, 9);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .faults = {.power_cut_after_writes = 3}};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
    for (uint64_t b = 0; b < 6; b++)
        CHECK_EQ(write_block(&rig, b, (uint8_t)(0x10 + b)).status, BLK_RESP_OK); /* all look fine */
    blk_request flush = {.code = BLK_REQ_FLUSH};
    CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
    blk_request r = {.code = BLK_REQ_READ, .block_number = 4, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
    CHECK(pattern_matches(rig.data, 9, 4 * BS, BS)); /* the dropped write never landed */
    CHECK_EQ(blk_driver_get_stats(rig.driver).dropped_writes, 3);
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image);
    for (uint64_t b = 0; b < 3; b++)
        CHECK(image[b * BS] == 0x10 + b && image[b * BS + BS - 1] == 0x10 + b);
    CHECK(pattern_matches(image + 3 * BS, 9, 3 * BS, 13 * BS));
    free(image);
}

TEST(power_cut_may_lose_unflushed_writes)
{
    const char *path = make_image("lose.img", 80, 10);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path,
                                .faults = {.power_cut_after_writes = 70, .lose_unflushed = true, .seed = test_seed()}};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
    for (uint64_t b = 0; b < 10; b++)
        CHECK_EQ(write_block(&rig, b, 0xA0).status, BLK_RESP_OK);
    blk_request flush = {.code = BLK_REQ_FLUSH};
    CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
    for (uint64_t b = 0; b < 60; b++) /* blocks 0..9 rewritten after the flush, 10..59 new */
        CHECK_EQ(write_block(&rig, b, 0xB0).status, BLK_RESP_OK);
    CHECK_EQ(write_block(&rig, 70, 0xC0).status, BLK_RESP_OK); /* after the cut: dropped */
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image);
    unsigned kept = 0, lost = 0;
    for (uint64_t b = 0; b < 60; b++) {
        const uint8_t *blk = image + b * BS;
        bool is_new = blk[0] == 0xB0 && blk[BS - 1] == 0xB0;
        bool is_old = b < 10 ? blk[0] == 0xA0 && blk[BS - 1] == 0xA0 : pattern_matches(blk, 10, b * BS, BS);
        CHECK_MSG(is_new || is_old, "block %llu is neither its old nor its new content", (unsigned long long)b);
        kept += is_new;
        lost += is_old;
    }
    CHECK(kept > 0 && lost > 0); /* 60 fair coins */
    CHECK(pattern_matches(image + 60 * BS, 10, 60 * BS, 20 * BS));
    free(image);
}

TEST(write_log_replays_to_the_same_image)
{
    const char *path = make_image("log.img", 32, 11);
    CHECK(path);
    char start_copy[600], log_path[600];
    snprintf(start_copy, sizeof start_copy, "%s/log-start.img", test_tmpdir());
    snprintf(log_path, sizeof log_path, "%s/writes.log", test_tmpdir());
    CHECK(blk_make_image(start_copy, 32, 11));
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .queue_depth = 8, .faults = {.log_path = log_path}};
    CHECK_EQ(blk_rig_open(&rig, &config, 8, 8 * BS), 0);
    CHECK_EQ(write_block(&rig, 3, 0x33).status, BLK_RESP_OK);
    memset(rig.data, 0x44, 3 * BS);
    blk_request multi = {.code = BLK_REQ_WRITE, .block_number = 4, .count = 3};
    CHECK_EQ(blk_rig_do(&rig, multi).status, BLK_RESP_OK);
    blk_request flush = {.code = BLK_REQ_FLUSH};
    CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
    CHECK_EQ(write_block(&rig, 3, 0x55).status, BLK_RESP_OK);
    blk_rig_close(&rig);

    FILE *log = fopen(log_path, "rb");
    CHECK(log);
    blk_log_record rec;
    uint8_t *data = NULL;
    size_t data_size = 0;
    uint32_t types[8], n = 0;
    while (n < 8 && blk_log_next(log, &rec, &data, &data_size))
        types[n++] = rec.type;
    fclose(log);
    free(data);
    CHECK_EQ(n, 4);
    CHECK(types[0] == BLK_LOG_WRITE && types[1] == BLK_LOG_WRITE && types[2] == BLK_LOG_FLUSH &&
          types[3] == BLK_LOG_WRITE);

    CHECK_EQ(blk_log_replay(log_path, start_copy, 2), 2); /* the state at the flush */
    size_t size;
    uint8_t *mid = read_file(start_copy, &size);
    CHECK(mid && mid[3 * BS] == 0x33 && mid[6 * BS + BS - 1] == 0x44);
    free(mid);
    CHECK(blk_make_image(start_copy, 32, 11));
    CHECK_EQ(blk_log_replay(log_path, start_copy, 100), 4);
    uint8_t *replayed = read_file(start_copy, &size), *final = read_file(path, &size);
    CHECK(replayed && final && memcmp(replayed, final, size) == 0);
    free(replayed);
    free(final);
}

/* ---- ordering -------------------------------------------------------------------------------- */

/* With a 2 ms device model and room for everything, a barrier holds back what follows it
 * and a flush waits for the writes before it. A request after the barrier can start only
 * once those before it have finished, so it completes two device latencies after they were
 * queued; timed from the queueing, a loaded machine can only make that later (timed from
 * request 1's collection, as before, a late wake-up for request 1 made it look early). */
TEST(barrier_and_flush_order)
{
    const char *path = make_image("order.img", 32, 12);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .queue_depth = 16, .model = {.latency_ns = 2000000}};
    CHECK_EQ(blk_rig_open(&rig, &config, 16, 16 * BS), 0);
    const blk_request reqs[] = {
        {.code = BLK_REQ_WRITE, .block_number = 1, .count = 1, .io_or_offset = 0, .id = 1},
        {.code = BLK_REQ_READ, .block_number = 2, .count = 1, .io_or_offset = BS, .id = 2},
        {.code = BLK_REQ_BARRIER, .id = 3},
        {.code = BLK_REQ_READ, .block_number = 3, .count = 1, .io_or_offset = 2 * BS, .id = 4},
        {.code = BLK_REQ_WRITE, .block_number = 4, .count = 1, .io_or_offset = 3 * BS, .id = 5},
        {.code = BLK_REQ_FLUSH, .id = 6},
        {.code = BLK_REQ_READ, .block_number = 5, .count = 1, .io_or_offset = 4 * BS, .id = 7},
    };
    uint64_t queued = now_ns();
    CHECK_EQ(blk_enqueue_requests(&rig.queues, reqs, AF_ARRAY_LEN(reqs)), AF_ARRAY_LEN(reqs));
    uint32_t order[8], n = 0;
    uint64_t at[8];
    while (n < AF_ARRAY_LEN(reqs)) {
        blk_response resps[8];
        uint32_t got = blk_rig_collect(&rig, resps, 8, LONG_WAIT);
        CHECK(got > 0);
        for (uint32_t i = 0; i < got; i++) {
            CHECK_EQ(resps[i].status, BLK_RESP_OK);
            at[n] = now_ns();
            order[n++] = resps[i].id;
        }
    }
    uint32_t pos[8];
    for (uint32_t i = 0; i < n; i++)
        pos[order[i]] = i;
    CHECK(pos[3] > pos[1] && pos[3] > pos[2]); /* the barrier after what preceded it */
    CHECK(pos[4] > pos[3] && pos[5] > pos[3]); /* and what follows after it */
    CHECK(pos[6] > pos[5] && pos[6] > pos[4]); /* the flush after the earlier writes */
    CHECK_MSG(at[pos[4]] - queued >= 2 * 1800000, "the request after the barrier completed %llu ns after queueing",
              (unsigned long long)(at[pos[4]] - queued)); /* two device latencies */
    blk_rig_close(&rig);
}

/* ---- the device model ------------------------------------------------------------------------ */

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median completion latency of `samples` single requests; *fastest gets the quickest. */
/* Timed checks of the device model: a busy machine (a CI runner sharing two cores) can only
 * make a run slower, never faster, so the upper bounds get this many tries. */
#define TIMING_ATTEMPTS 10

static uint64_t median_latency(blk_test_rig *rig, int samples, uint64_t *fastest)
{
    uint64_t lat[200];
    for (int i = 0; i < samples; i++) {
        blk_request r = {.code = i % 2 ? BLK_REQ_READ : BLK_REQ_WRITE, .block_number = (uint64_t)i % 16, .count = 1};
        uint64_t t0 = now_ns();
        blk_response resp = blk_rig_do(rig, r);
        lat[i] = resp.status == BLK_RESP_OK ? now_ns() - t0 : UINT64_MAX;
    }
    qsort(lat, (size_t)samples, sizeof lat[0], compare_u64);
    *fastest = lat[0];
    return lat[samples / 2];
}

/* No request may finish early, and the median must be within 10% of the configured
 * latency. A loaded machine only ever makes it later, so the median gets several tries
 * (they stop at the first good one, so an idle machine runs one). */
TEST(latency_model_median_within_ten_percent)
{
    const char *path = make_image("lat.img", 16, 13);
    CHECK(path);
    static const uint64_t latencies[] = {200000, 1000000};
    for (size_t i = 0; i < AF_ARRAY_LEN(latencies); i++) {
        uint64_t want = latencies[i], median = UINT64_MAX;
        for (int attempt = 0; attempt < TIMING_ATTEMPTS && median > want + want / 10; attempt++) {
            blk_test_rig rig;
            blk_driver_config config = {.path = path, .model = {.latency_ns = want}};
            CHECK_EQ(blk_rig_open(&rig, &config, 8, 4 * BS), 0);
            uint64_t fastest;
            median = median_latency(&rig, i == 0 ? 200 : 60, &fastest);
            blk_rig_close(&rig);
            CHECK_MSG(fastest >= want, "configured %llu ns, a request took %llu ns", (unsigned long long)want,
                      (unsigned long long)fastest);
        }
        CHECK_MSG(median <= want + want / 10, "configured %llu ns, median %llu ns", (unsigned long long)want,
                  (unsigned long long)median);
    }
}

/* Time to finish `n` requests of `count` blocks queued at once. */
static uint64_t batch_time(blk_test_rig *rig, uint32_t n, uint16_t count)
{
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++) {
        blk_request r = {.code = BLK_REQ_READ, .block_number = 0, .count = count, .io_or_offset = 0, .id = i};
        if (!blk_enqueue_request(&rig->queues, r))
            return 0;
    }
    for (uint32_t done = 0; done < n;) {
        blk_response resps[64];
        uint32_t got = blk_rig_collect(rig, resps, 64, LONG_WAIT);
        if (got == 0)
            return 0;
        done += got;
    }
    return now_ns() - t0;
}

/* Best of several: a loaded machine only makes a batch slower. */
static uint64_t batch_time_best(const blk_driver_config *config, uint32_t n, uint16_t count, uint64_t good_enough)
{
    uint64_t best = UINT64_MAX;
    for (int attempt = 0; attempt < TIMING_ATTEMPTS && best > good_enough; attempt++) {
        blk_test_rig rig;
        if (blk_rig_open(&rig, config, 8, 16 * BS) != 0)
            return 0;
        uint64_t t = batch_time(&rig, n, count);
        blk_rig_close(&rig);
        if (t == 0)
            return 0;
        best = af_min_u64(best, t);
    }
    return best;
}

TEST(device_queue_depth_and_bandwidth_are_modelled)
{
    const char *path = make_image("qd.img", 64, 14);
    CHECK(path);
    /* 8 requests, 2 at a time, 1 ms each: 4 ms */
    blk_driver_config config = {.path = path, .queue_depth = 8, .model = {.latency_ns = 1000000, .device_queue_depth = 2}};
    uint64_t t = batch_time_best(&config, 8, 1, 4400000);
    CHECK_MSG(t >= 4000000 && t <= 4400000, "%llu ns", (unsigned long long)t);
    /* 8 transfers of 64 KiB at 64 MiB/s: 1 ms each through the shared bus, 8 ms */
    config = (blk_driver_config){.path = path, .queue_depth = 8, .model = {.bandwidth_bytes_per_s = 64u << 20}};
    t = batch_time_best(&config, 8, 16, 8800000);
    CHECK_MSG(t >= 7800000 && t <= 8800000, "%llu ns", (unsigned long long)t);
}

/* ---- inline transfers ------------------------------------------------------------------------ */

/* The replacement inline transfer: what it does is chosen by the test, and it records each
 * call (when, which direction, where) so a test can see what moved when. */
typedef enum hook_action {
    HOOK_DO,        /* the whole transfer, as a file in memory would */
    HOOK_EAGAIN,    /* as RWF_NOWAIT on a page that is not cached */
    HOOK_HALF,      /* half of it: a short transfer */
    HOOK_EOPNOTSUPP, /* as a kernel or file system without RWF_NOWAIT */
    HOOK_EIO,
} hook_action;

#define HOOK_LOG 64

typedef struct hook_call {
    bool write;
    off_t offset;
    size_t len;
    uint64_t at;
} hook_call;

static struct {
    hook_action action;
    uint32_t calls;
    hook_call log[HOOK_LOG];
} hook;

static ssize_t test_inline_io(int fd, void *buf, size_t len, off_t offset, bool write, bool nowait)
{
    AF_UNUSED(nowait);
    if (hook.calls < HOOK_LOG)
        hook.log[hook.calls] = (hook_call){write, offset, len, now_ns()};
    hook.calls++;
    switch (hook.action) {
    case HOOK_EAGAIN: return -EAGAIN;
    case HOOK_EOPNOTSUPP: return -EOPNOTSUPP;
    case HOOK_EIO: return -EIO;
    case HOOK_HALF: len /= 2; break;
    case HOOK_DO: break;
    }
    ssize_t n = write ? pwrite(fd, buf, len, offset) : pread(fd, buf, len, offset);
    return n < 0 ? -errno : n;
}

/* The memory mode: every transfer is tried inline, however many start together. */
static void use_test_inline_io(blk_driver *d)
{
    blk_driver_set_inline_io(d, BLK_INLINE_MEMORY, BLK_INLINE_MEMORY, test_inline_io);
}

static int open_inline_rig(blk_test_rig *rig, const blk_driver_config *config, hook_action action)
{
    memset(&hook, 0, sizeof hook);
    hook.action = action;
    int err = blk_rig_open(rig, config, 16, 16 * BS);
    if (err == 0)
        use_test_inline_io(rig->driver);
    return err;
}

/* An inline transfer moves its data at once, but its answer still waits for the modelled
 * device: no request answered before the latency, and the median close to it. */
TEST(inline_transfers_respect_the_model_latency)
{
    const char *path = make_image("inline-lat.img", 16, 20);
    CHECK(path);
    const uint64_t want = 1000000;
    uint64_t median = UINT64_MAX;
    for (int attempt = 0; attempt < TIMING_ATTEMPTS && median > want + want / 10; attempt++) {
        blk_test_rig rig;
        blk_driver_config config = {.path = path, .model = {.latency_ns = want}};
        CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
        uint64_t fastest;
        median = median_latency(&rig, 40, &fastest);
        blk_driver_stats stats = blk_driver_get_stats(rig.driver);
        blk_rig_close(&rig);
        CHECK_MSG(fastest >= want, "configured %llu ns, an inline request took %llu ns", (unsigned long long)want,
                  (unsigned long long)fastest);
        CHECK_EQ(stats.inline_completions, 40);
        CHECK_EQ(stats.inline_fallbacks, 0);
        CHECK_EQ(hook.calls, 40);
    }
    CHECK_MSG(median <= want + want / 10, "configured %llu ns, median %llu ns", (unsigned long long)want,
              (unsigned long long)median);
    /* and the device's queue depth still holds: 8 inline reads, 2 at a time, 1 ms each */
    blk_driver_config config = {.path = path, .queue_depth = 8, .model = {.latency_ns = want, .device_queue_depth = 2}};
    uint64_t best = UINT64_MAX;
    for (int attempt = 0; attempt < TIMING_ATTEMPTS && best > 4400000; attempt++) {
        blk_test_rig rig;
        CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
        uint64_t t = batch_time(&rig, 8, 1);
        CHECK_EQ(blk_driver_get_stats(rig.driver).inline_completions, 8);
        blk_rig_close(&rig);
        CHECK(t > 0);
        best = af_min_u64(best, t);
    }
    CHECK_MSG(best >= 4000000 && best <= 4400000, "%llu ns", (unsigned long long)best);
}

/* Every fault mode applies to a write done inline: a failing request or block range never
 * reaches the file, writes after the power cut are dropped, and the log records the rest. */
TEST(faults_apply_to_inline_writes)
{
    const char *path = make_image("inline-faults.img", 32, 21);
    CHECK(path);
    char log_path[600];
    snprintf(log_path, sizeof log_path, "%s/inline-writes.log", test_tmpdir());
    blk_test_rig rig;
    blk_driver_config config = {.path = path,
                                .faults = {.fail_request = 2, .fail_first_block = 10, .fail_block_count = 2,
                                           .power_cut_after_writes = 3, .log_path = log_path}};
    CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
    CHECK_EQ(write_block(&rig, 1, 0x11).status, BLK_RESP_OK);     /* request 1, write 1 */
    CHECK_EQ(write_block(&rig, 2, 0x22).status, BLK_RESP_ERR_IO); /* request 2 fails */
    CHECK_EQ(write_block(&rig, 11, 0x33).status, BLK_RESP_ERR_IO); /* in the failing range */
    CHECK_EQ(hook.calls, 1);
    CHECK_EQ(write_block(&rig, 3, 0x44).status, BLK_RESP_OK);     /* write 2 */
    CHECK_EQ(write_block(&rig, 4, 0x55).status, BLK_RESP_OK);     /* write 3: the power goes */
    CHECK_EQ(write_block(&rig, 5, 0x66).status, BLK_RESP_OK);     /* answered, dropped */
    CHECK_EQ(hook.calls, 3);
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    CHECK_EQ(stats.inline_completions, 3);
    CHECK_EQ(stats.dropped_writes, 1);
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image && size == 32 * BS);
    static const struct { uint64_t block; uint8_t fill; } landed[] = {{1, 0x11}, {3, 0x44}, {4, 0x55}};
    for (size_t i = 0; i < AF_ARRAY_LEN(landed); i++)
        CHECK(image[landed[i].block * BS] == landed[i].fill && image[landed[i].block * BS + BS - 1] == landed[i].fill);
    CHECK(pattern_matches(image + 2 * BS, 21, 2 * BS, BS));
    CHECK(pattern_matches(image + 5 * BS, 21, 5 * BS, BS));
    CHECK(pattern_matches(image + 11 * BS, 21, 11 * BS, BS));
    free(image);
    FILE *log = fopen(log_path, "rb");
    CHECK(log);
    blk_log_record rec;
    uint8_t *data = NULL;
    size_t data_size = 0;
    uint32_t n = 0;
    while (blk_log_next(log, &rec, &data, &data_size))
        n += rec.type == BLK_LOG_WRITE;
    fclose(log);
    free(data);
    CHECK_EQ(n, 3);
}

/* With lose_unflushed, inline writes since the last flush are remembered like any other. */
TEST(power_cut_may_lose_unflushed_inline_writes)
{
    const char *path = make_image("inline-lose.img", 64, 22);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path,
                                .faults = {.power_cut_after_writes = 50, .lose_unflushed = true, .seed = test_seed()}};
    CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
    for (uint64_t b = 0; b < 50; b++)
        CHECK_EQ(write_block(&rig, b, 0xB0).status, BLK_RESP_OK);
    CHECK_EQ(blk_driver_get_stats(rig.driver).inline_completions, 50);
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image);
    unsigned kept = 0, lost = 0;
    for (uint64_t b = 0; b < 50; b++) {
        const uint8_t *blk = image + b * BS;
        bool is_new = blk[0] == 0xB0 && blk[BS - 1] == 0xB0;
        bool is_old = pattern_matches(blk, 22, b * BS, BS);
        CHECK(is_new || is_old);
        kept += is_new;
        lost += is_old;
    }
    CHECK(kept > 0 && lost > 0);
    free(image);
}

/* A transfer behind a BARRIER, or behind a FLUSH that waits for earlier requests, does not
 * move its data before the requests ahead have been answered, even when it could be done
 * inline at once. */
TEST(inline_transfers_wait_behind_barriers_and_flushes)
{
    const char *path = make_image("inline-order.img", 32, 23);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .queue_depth = 16, .model = {.latency_ns = 2000000}};
    CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
    memset(rig.data, 0x77, BS);
    const blk_request reqs[] = {
        {.code = BLK_REQ_WRITE, .block_number = 1, .count = 1, .io_or_offset = 0, .id = 1},
        {.code = BLK_REQ_BARRIER, .id = 2},
        {.code = BLK_REQ_READ, .block_number = 1, .count = 1, .io_or_offset = BS, .id = 3},
        {.code = BLK_REQ_FLUSH, .id = 4},
        {.code = BLK_REQ_WRITE, .block_number = 1, .count = 1, .io_or_offset = 2 * BS, .id = 5},
    };
    memset(rig.data + 2 * BS, 0x88, BS);
    CHECK_EQ(blk_enqueue_requests(&rig.queues, reqs, AF_ARRAY_LEN(reqs)), AF_ARRAY_LEN(reqs));
    uint64_t answered[6] = {0};
    for (uint32_t n = 0; n < AF_ARRAY_LEN(reqs);) {
        blk_response resps[8];
        uint32_t got = blk_rig_collect(&rig, resps, 8, LONG_WAIT);
        CHECK(got > 0);
        for (uint32_t i = 0; i < got; i++, n++) {
            CHECK_EQ(resps[i].status, BLK_RESP_OK);
            answered[resps[i].id] = now_ns();
        }
    }
    CHECK_EQ(hook.calls, 3);
    CHECK(hook.log[0].write && !hook.log[1].write && hook.log[2].write);
    /* the read moved only once the write ahead of the barrier was answered, a device latency
     * after it moved; the flush waited for the read in turn, and the last write for it */
    CHECK(hook.log[1].at - hook.log[0].at >= 1800000);
    CHECK(hook.log[2].at - hook.log[1].at >= 1800000);
    CHECK(answered[4] >= answered[3] && answered[3] >= answered[2] && answered[2] >= answered[1]);
    CHECK(rig.data[BS] == 0x77 && rig.data[2 * BS - 1] == 0x77); /* and saw the first write */
    blk_rig_close(&rig);
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image && image[BS] == 0x88);
    free(image);
}

/* Whatever an inline attempt does short of the whole transfer, io_uring finishes it: a page
 * not cached (EAGAIN) keeps trying inline next time; no RWF_NOWAIT support stops trying for
 * that direction; a short transfer has its rest done by io_uring; an error is io_uring's to
 * report (here it succeeds). */
TEST(inline_attempts_fall_back_to_io_uring)
{
    const char *path = make_image("inline-fallback.img", 64, 24);
    CHECK(path);
    static const hook_action actions[] = {HOOK_EAGAIN, HOOK_EOPNOTSUPP, HOOK_HALF, HOOK_EIO};
    for (size_t a = 0; a < AF_ARRAY_LEN(actions); a++) {
        blk_test_rig rig;
        blk_driver_config config = {.path = path};
        CHECK_EQ(open_inline_rig(&rig, &config, actions[a]), 0);
        blk_driver_set_inline_io(rig.driver, BLK_INLINE_NOWAIT, BLK_INLINE_NOWAIT, test_inline_io);
        for (uint32_t i = 0; i < 6; i++) {
            uint64_t block = 8 * i;
            uint8_t fill = (uint8_t)(0x30 + 16 * a + i);
            memset(rig.data, fill, 8 * BS);
            blk_request w = {.code = BLK_REQ_WRITE, .block_number = block, .count = 8, .id = i};
            blk_response resp = blk_rig_do(&rig, w);
            CHECK_MSG(resp.status == BLK_RESP_OK && resp.success_count == 8, "action %zu write %u", a, i);
            memset(rig.data + 8 * BS, 0, 8 * BS);
            blk_request r = {.code = BLK_REQ_READ, .block_number = block, .count = 8, .io_or_offset = 8 * BS, .id = i};
            resp = blk_rig_do(&rig, r);
            CHECK_MSG(resp.status == BLK_RESP_OK && resp.success_count == 8, "action %zu read %u", a, i);
            CHECK(memcmp(rig.data, rig.data + 8 * BS, 8 * BS) == 0);
        }
        blk_driver_stats stats = blk_driver_get_stats(rig.driver);
        blk_rig_close(&rig);
        CHECK_EQ(stats.inline_completions, 0);
        /* EOPNOTSUPP: one try per direction; the others try every time */
        uint32_t tries = actions[a] == HOOK_EOPNOTSUPP ? 2 : 12;
        CHECK_MSG(hook.calls == tries && stats.inline_fallbacks == tries, "action %zu: %u calls", a, hook.calls);
    }
    size_t size;
    uint8_t *image = read_file(path, &size);
    CHECK(image);
    for (uint32_t i = 0; i < 6; i++)
        CHECK(image[8 * i * BS] == 0x30 + 16 * 3 + i && image[(8 * i + 8) * BS - 1] == 0x30 + 16 * 3 + i);
    free(image);
}

/* RWF_NOWAIT inline is for a lone request: requests that start together go to io_uring in
 * one submission (which tries each without blocking itself). */
TEST(nowait_inline_only_for_a_lone_request)
{
    const char *path = make_image("inline-lone.img", 16, 26);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path};
    CHECK_EQ(open_inline_rig(&rig, &config, HOOK_DO), 0);
    blk_driver_set_inline_io(rig.driver, BLK_INLINE_NOWAIT, BLK_INLINE_NOWAIT, test_inline_io);
    blk_request r = {.code = BLK_REQ_READ, .block_number = 1, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
    CHECK_EQ(hook.calls, 1);
    CHECK_EQ(batch_time(&rig, 8, 1) > 0, true);
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    blk_rig_close(&rig);
    CHECK_EQ(hook.calls, 1);
    CHECK_EQ(stats.inline_completions, 1);
    CHECK_EQ(stats.inline_fallbacks, 0);
}

/* On a file in memory (tmpfs) everything is done inline, flushes included; with ring_only
 * nothing is; and a random mix with everything inline matches the model. */
TEST(file_in_memory_is_served_inline)
{
    if (memory_unavailable("file_in_memory_is_served_inline"))
        return;
    const char *path = make_memory_image("inline", 32, 25);
    CHECK(path);
    for (int ring_only = 0; ring_only < 2; ring_only++) {
        blk_test_rig rig;
        blk_driver_config config = {.path = path, .ring_only = ring_only};
        CHECK_EQ(blk_rig_open(&rig, &config, 16, 16 * BS), 0);
        CHECK_EQ(write_block(&rig, 3, 0x5c).status, BLK_RESP_OK);
        blk_request flush = {.code = BLK_REQ_FLUSH};
        CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
        blk_request r = {.code = BLK_REQ_READ, .block_number = 2, .count = 2, .io_or_offset = BS};
        CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
        CHECK(pattern_matches(rig.data + BS, 25, 2 * BS, BS) && rig.data[2 * BS] == 0x5c);
        blk_driver_stats stats = blk_driver_get_stats(rig.driver);
        blk_rig_close(&rig);
        CHECK_EQ(stats.inline_completions, ring_only ? 0 : 3);
        CHECK_EQ(stats.inline_fallbacks, 0);
    }
    unlink(path);
}

/* offload_write_bytes: on a file in memory a WRITE that large goes to an io_uring worker
 * (when this process may use more than one CPU), a smaller one stays inline, and both land
 * where they belong, in order with a FLUSH after them. */
TEST(large_writes_to_a_file_in_memory_go_to_a_worker)
{
    if (memory_unavailable("large_writes_to_a_file_in_memory_go_to_a_worker"))
        return;
    cpu_set_t cpus;
    CHECK_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
    bool worker = CPU_COUNT(&cpus) > 1;
    const char *path = make_memory_image("offload", 32, 41);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path, .offload_write_bytes = 8 * BS};
    CHECK_EQ(blk_rig_open(&rig, &config, 16, 24 * BS), 0);
    memset(rig.data, 0xa7, 8 * BS);
    blk_request big = {.code = BLK_REQ_WRITE, .block_number = 4, .count = 8};
    CHECK_EQ(blk_rig_do(&rig, big).status, BLK_RESP_OK);
    memset(rig.data, 0x3c, 7 * BS);
    blk_request small = {.code = BLK_REQ_WRITE, .block_number = 20, .count = 7};
    CHECK_EQ(blk_rig_do(&rig, small).status, BLK_RESP_OK);
    blk_request flush = {.code = BLK_REQ_FLUSH};
    CHECK_EQ(blk_rig_do(&rig, flush).status, BLK_RESP_OK);
    blk_request r = {.code = BLK_REQ_READ, .block_number = 3, .count = 18, .io_or_offset = 4 * BS};
    CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
    const uint8_t *got = rig.data + 4 * BS;
    CHECK(pattern_matches(got, 41, 3 * BS, BS));
    for (size_t i = BS; i < 9 * BS; i++)
        CHECK_MSG(got[i] == 0xa7, "byte %zu of the large write", i - BS);
    CHECK(pattern_matches(got + 9 * BS, 41, 12 * BS, 8 * BS));
    for (size_t i = 17 * BS; i < 18 * BS; i++)
        CHECK_MSG(got[i] == 0x3c, "byte %zu of the small write", i - 17 * BS);
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    blk_rig_close(&rig);
    unlink(path);
    CHECK_EQ(stats.offloaded_writes, worker ? 1 : 0);
    CHECK_EQ(stats.inline_completions, worker ? 3 : 4); /* the small write, the flush, the read */
    CHECK_EQ(stats.inline_fallbacks, 0);
}

/* Reads of a file in memory up to 64 KiB are copied from a mapping of it once their 256 KiB
 * chunk has been read four times (the first three take the system call): they see the
 * writes answered before them and a discarded block's zeros. A larger read, and every read
 * when a test replaces the inline transfer, takes the system call. */
TEST(small_reads_of_a_file_in_memory_come_from_a_mapping)
{
    if (memory_unavailable("small_reads_of_a_file_in_memory_come_from_a_mapping"))
        return;
    const char *path = make_memory_image("mapped", 128, 27);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path};
    CHECK_EQ(blk_rig_open(&rig, &config, 16, 32 * BS), 0);
    for (uint64_t i = 0; i < 4; i++) {
        blk_request r = {.code = BLK_REQ_READ, .block_number = 2 + i, .count = 2, .io_or_offset = BS};
        CHECK_EQ(blk_rig_do(&rig, r).status, BLK_RESP_OK);
        CHECK(pattern_matches(rig.data + BS, 27, (2 + i) * BS, 2 * BS));
        CHECK_EQ(blk_driver_get_stats(rig.driver).mapped_reads, i < 3 ? 0 : 1);
    }
    CHECK_EQ(write_block(&rig, 5, 0x5a).status, BLK_RESP_OK);
    blk_request r5 = {.code = BLK_REQ_READ, .block_number = 5, .count = 1, .io_or_offset = BS};
    CHECK_EQ(blk_rig_do(&rig, r5).status, BLK_RESP_OK);
    CHECK(rig.data[BS] == 0x5a && rig.data[2 * BS - 1] == 0x5a);
    blk_request discard = {.code = BLK_REQ_DISCARD, .block_number = 5, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, discard).status, BLK_RESP_OK);
    CHECK_EQ(blk_rig_do(&rig, r5).status, BLK_RESP_OK);
    CHECK(rig.data[BS] == 0 && rig.data[2 * BS - 1] == 0);
    CHECK_EQ(blk_driver_get_stats(rig.driver).mapped_reads, 3);
    blk_request other_chunk = {.code = BLK_REQ_READ, .block_number = 70, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, other_chunk).status, BLK_RESP_OK);
    CHECK(pattern_matches(rig.data, 27, 70 * BS, BS));
    blk_request large = {.code = BLK_REQ_READ, .block_number = 0, .count = 17};
    CHECK_EQ(blk_rig_do(&rig, large).status, BLK_RESP_OK);
    CHECK(pattern_matches(rig.data, 27, 0, 5 * BS) && pattern_matches(rig.data + 6 * BS, 27, 6 * BS, 11 * BS));
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    CHECK_EQ(stats.mapped_reads, 3);
    CHECK_EQ(stats.inline_completions, 9); /* six reads and the write, the other chunk's read, the large read */
    CHECK_EQ(stats.inline_fallbacks, 0);
    memset(&hook, 0, sizeof hook);
    use_test_inline_io(rig.driver);
    CHECK_EQ(blk_rig_do(&rig, r5).status, BLK_RESP_OK);
    CHECK_EQ(hook.calls, 1);
    CHECK_EQ(blk_driver_get_stats(rig.driver).mapped_reads, 3);
    blk_rig_close(&rig);
    unlink(path);
}

/* Another process shrinks the image while the driver has it mapped: a read past the new
 * end gets an I/O error instead of killing the process, reads before it still work, and a
 * SIGBUS that is not the driver's still ends its process. */
TEST(an_image_shrunk_under_the_driver_fails_reads_past_its_end)
{
    if (memory_unavailable("an_image_shrunk_under_the_driver_fails_reads_past_its_end"))
        return;
    const char *path = make_memory_image("shrunk", 64, 28);
    CHECK(path);
    blk_test_rig rig;
    blk_driver_config config = {.path = path};
    CHECK_EQ(blk_rig_open(&rig, &config, 16, 16 * BS), 0);
    blk_request past = {.code = BLK_REQ_READ, .block_number = 40, .count = 1};
    for (int i = 0; i < 4; i++) { /* the fourth read populates the chunk */
        CHECK_EQ(blk_rig_do(&rig, past).status, BLK_RESP_OK);
        CHECK(pattern_matches(rig.data, 28, 40 * BS, BS));
    }
    CHECK_EQ(blk_driver_get_stats(rig.driver).mapped_reads, 1);
    CHECK_EQ(truncate(path, 32 * BS), 0);
    blk_response resp = blk_rig_do(&rig, past);
    CHECK_EQ(resp.status, BLK_RESP_ERR_IO);
    CHECK_EQ(resp.success_count, 0);
    blk_request before = {.code = BLK_REQ_READ, .block_number = 3, .count = 1};
    CHECK_EQ(blk_rig_do(&rig, before).status, BLK_RESP_OK);
    CHECK(pattern_matches(rig.data, 28, 3 * BS, BS));
    blk_driver_stats stats = blk_driver_get_stats(rig.driver);
    CHECK_EQ(stats.mapped_reads, 1);
    CHECK_EQ(stats.io_errors, 1);
    blk_rig_close(&rig);

    /* the driver's handler is installed now: a fault outside its copies is not swallowed */
    fflush(NULL);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        int null_fd = open("/dev/null", O_WRONLY);
        dup2(null_fd, 2);
        int fd = open(path, O_RDONLY);
        volatile const uint8_t *map = mmap(NULL, 64 * BS, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
            _exit(0);
        _exit(map[48 * BS] == 0xff ? 0 : 0);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK_MSG(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "a stray SIGBUS was swallowed");
    unlink(path);
}

TEST(random_operations_match_model_inline)
{
    /* run_model with every transfer inline, whole or in part */
    static const hook_action actions[] = {HOOK_DO, HOOK_HALF};
    for (size_t a = 0; a < AF_ARRAY_LEN(actions); a++) {
        memset(&hook, 0, sizeof hook);
        hook.action = actions[a];
        run_model_inline = true;
        bool ok = run_model(16, 512, test_seed() + 100 + a, 2000);
        run_model_inline = false;
        CHECK_MSG(ok, "action %zu", a);
        CHECK(hook.calls > 0);
    }
}

/* run_model on an image in memory: reads come from the mapping once their chunk is warm,
 * between writes done in the driver's thread, at several depths. */
TEST(random_operations_match_model_in_memory)
{
    if (memory_unavailable("random_operations_match_model_in_memory"))
        return;
    static const uint32_t depths[] = {1, 8, 32};
    for (size_t i = 0; i < AF_ARRAY_LEN(depths); i++) {
        run_model_in_memory = true;
        bool ok = run_model(depths[i], 512, test_seed() + 200 + i, 2000);
        run_model_in_memory = false;
        CHECK_MSG(ok, "depth %u", depths[i]);
        CHECK_MSG(run_model_mapped_reads > 100, "depth %u: %llu mapped reads", depths[i],
                  (unsigned long long)run_model_mapped_reads);
    }
}

/* ---- as a component ---------------------------------------------------------------------------- */

#define CLIENT_OPS 400u
#define CLIENT_DEPTH 8u
#define COMPONENT_BLOCKS 64u

static struct {
    blk_queue_handle queues;
    blk_storage_info *info;
    uint8_t *data;
    unsigned channel;
    uint32_t issued, answered;
    uint8_t model[COMPONENT_BLOCKS];     /* fill byte of each block; 0 = the original pattern */
    blk_request pending[CLIENT_DEPTH];
    bool busy[CLIENT_DEPTH];
    uint64_t rng;
} client;

static void client_init(void)
{
    memset(&client, 0, sizeof client);
    client.info = component_region(BLK_REGION_STORAGE_INFO, NULL);
    client.data = component_region(BLK_REGION_DATA, NULL);
    client.channel = component_channel(BLK_CHANNEL_CLIENT);
    blk_queue_init(&client.queues, component_region(BLK_REGION_REQUESTS, NULL),
                   component_region(BLK_REGION_RESPONSES, NULL), 16);
    client.rng = 99;
}

static bool client_block_ok(const uint8_t *p, uint64_t block)
{
    if (client.model[block] == 0)
        return pattern_matches(p, 15, block * BS, BS);
    return p[0] == client.model[block] && p[BS - 1] == client.model[block];
}

static void client_notified(unsigned channel)
{
    if (channel != client.channel || !blk_storage_is_ready(client.info))
        return;
    if (client.info->capacity != COMPONENT_BLOCKS) {
        lx_runtime_stop(4);
        return;
    }
    blk_response resps[16];
    uint32_t n = blk_dequeue_responses(&client.queues, resps, 16);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = resps[i].id;
        if (s >= CLIENT_DEPTH || !client.busy[s] || resps[i].status != BLK_RESP_OK) {
            lx_runtime_stop(5);
            return;
        }
        blk_request *r = &client.pending[s];
        if (r->code == BLK_REQ_READ && !client_block_ok(client.data + r->io_or_offset, r->block_number)) {
            lx_runtime_stop(6);
            return;
        }
        client.busy[s] = false;
        client.answered++;
    }
    if (client.answered == CLIENT_OPS) {
        lx_runtime_stop(0);
        return;
    }
    bool queued = false;
    for (uint32_t s = 0; s < CLIENT_DEPTH && client.issued < CLIENT_OPS; s++) {
        if (client.busy[s])
            continue;
        /* one block per slot, each slot its own block range: no two in flight overlap */
        uint64_t block = s * (COMPONENT_BLOCKS / CLIENT_DEPTH) + test_rand_below(&client.rng, COMPONENT_BLOCKS / CLIENT_DEPTH);
        blk_request r = {.code = test_rand_below(&client.rng, 2) ? BLK_REQ_READ : BLK_REQ_WRITE,
                         .io_or_offset = s * BS, .block_number = block, .count = 1, .id = s};
        if (r.code == BLK_REQ_WRITE) {
            uint8_t fill = (uint8_t)(1 + test_rand_below(&client.rng, 255));
            memset(client.data + s * BS, fill, BS);
            client.model[block] = fill;
        }
        client.pending[s] = r;
        client.busy[s] = true;
        client.issued++;
        queued |= blk_enqueue_request(&client.queues, r);
    }
    if (queued)
        component_notify(client.channel);
}

TEST(driver_component_serves_a_client_component)
{
    const char *path = make_image("component.img", COMPONENT_BLOCKS, 15);
    CHECK(path);
    blk_driver_config config = {.path = path, .queue_depth = 8};
    blk_driver_component_configure(&config, 16);
    static const char *const regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS, BLK_REGION_RESPONSES,
                                          BLK_REGION_DATA, NULL};
    const lx_component_spec components[] = {
        {.name = "driver", .entry = {blk_driver_component_init, blk_driver_component_notified}, .regions = regions},
        {.name = "client", .entry = {client_init, client_notified}, .regions = regions},
    };
    const lx_region_spec region_specs[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096},
        {.name = BLK_REGION_REQUESTS, .size = blk_req_queue_bytes(16)},
        {.name = BLK_REGION_RESPONSES, .size = blk_resp_queue_bytes(16)},
        {.name = BLK_REGION_DATA, .size = CLIENT_DEPTH * BS},
    };
    const lx_channel_spec channels[] = {{BLK_CHANNEL_CLIENT, "driver", 1, "client", 2}};
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = region_specs, .region_count = 4,
        .channels = channels, .channel_count = 1};
    lx_exit_report first;
    CHECK_EQ(lx_system_run(&spec, 30000, &first), 0);
    CHECK(strcmp(first.component, "client") == 0);
}

/* This program doubles as asyncfat-blkd (blkd.c is linked in) when the launcher execs it. */
__attribute__((constructor)) static void run_as_blkd_if_launched(int argc, char **argv, char **envp)
{
    AF_UNUSED(envp);
    const char *text = getenv(LX_COMPONENT_ENV);
    static lx_component_env env;
    if (!text || !lx_component_env_decode(&env, text) || strcmp(env.name, "blkd") != 0)
        return;
    lx_component_set_args(argc, argv);
    _exit(lx_component_run(&env, (lx_component_entry){component_init, component_notified, NULL, NULL}));
}

static char blkd_self[4096];

static int run_blkd_system(char **argv)
{
    static const char *const regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS, BLK_REGION_RESPONSES,
                                          BLK_REGION_DATA, NULL};
    const lx_component_spec components[] = {
        {.name = "blkd", .argv = argv, .regions = regions},
        {.name = "client", .entry = {client_init, client_notified}, .regions = regions},
    };
    const lx_region_spec region_specs[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096},
        {.name = BLK_REGION_REQUESTS, .size = blk_req_queue_bytes(16)},
        {.name = BLK_REGION_RESPONSES, .size = blk_resp_queue_bytes(16)},
        {.name = BLK_REGION_DATA, .size = CLIENT_DEPTH * BS},
    };
    const lx_channel_spec channels[] = {{BLK_CHANNEL_CLIENT, "blkd", 5, "client", 2}};
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = region_specs, .region_count = 4,
        .channels = channels, .channel_count = 1};
    memset(&client, 0, sizeof client);
    lx_exit_report first;
    int rc = lx_system_run(&spec, 30000, &first);
    return rc == 0 && strcmp(first.component, "client") == 0 ? 0 : first.signaled ? -first.code : 100 + first.code;
}

TEST(blkd_program_serves_a_client_component)
{
    ssize_t n = readlink("/proc/self/exe", blkd_self, sizeof blkd_self - 1);
    CHECK(n > 0);
    blkd_self[n] = '\0';
    const char *path = make_image("blkd.img", COMPONENT_BLOCKS, 15);
    CHECK(path);
    char image[600];
    snprintf(image, sizeof image, "%s", path);
    char *argv[] = {blkd_self, "--queue-depth", "8", "--queue-capacity", "16", "--sector-size", "2048",
                    "--latency-us", "50", image, NULL};
    CHECK_EQ(run_blkd_system(argv), 0);
    char *bad_argv[] = {blkd_self, "--queue-depth", "x", image, NULL};
    CHECK_EQ(run_blkd_system(bad_argv), 100 + 2); /* usage error: blkd exits with 2 */
}

TEST(driver_component_that_cannot_open_is_reported)
{
    blk_driver_config config = {.path = "/nonexistent/disk.img"};
    blk_driver_component_configure(&config, 0);
    static const char *const regions[] = {BLK_REGION_STORAGE_INFO, BLK_REGION_REQUESTS, BLK_REGION_RESPONSES,
                                          BLK_REGION_DATA, NULL};
    const lx_component_spec components[] = {
        {.name = "driver", .entry = {blk_driver_component_init, blk_driver_component_notified}, .regions = regions},
        {.name = "client", .entry = {client_init, client_notified}, .regions = regions},
    };
    const lx_region_spec region_specs[] = {
        {.name = BLK_REGION_STORAGE_INFO, .size = 4096}, {.name = BLK_REGION_REQUESTS, .size = 4096}, {.name = BLK_REGION_RESPONSES, .size = 4096}, {.name = BLK_REGION_DATA, .size = 4096},
    };
    const lx_channel_spec channels[] = {{BLK_CHANNEL_CLIENT, "driver", 1, "client", 2}};
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = region_specs, .region_count = 4,
        .channels = channels, .channel_count = 1};
    lx_exit_report first;
    CHECK_EQ(lx_system_run(&spec, 30000, &first), 1);
    CHECK(strcmp(first.component, "driver") == 0);
    CHECK(!first.signaled && first.code == 1);
}
