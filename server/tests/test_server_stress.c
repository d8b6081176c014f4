/* Many clients at once against a model, hostile clients, and injected device errors.
 * Block completions come back in seeded random order, so every run interleaves the
 * request fibers differently; AF_SEED reproduces one. */
#include "tests/support/server_fixture.h"
#include "tests/harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENTS 16
#define FILES 4
#define FILE_MAX (48 * 1024)
#define OPS_PER_CLIENT 150

static server_fixture fx;

typedef struct model_file {
    uint8_t data[FILE_MAX];
    uint64_t size;
    uint64_t fd;
    bool busy;               /* a request on it is in flight */
    /* the request in flight */
    uint64_t id;
    int op;
    uint64_t offset, len;
    fs_buffer buf;
} model_file;

typedef struct model_client {
    model_file files[FILES];
    uint64_t share_next;
    int ops_left;
    int in_flight;
} model_client;

static model_client model[CLIENTS];
static uint64_t rng;
static int mismatches;

enum { OP_WRITE, OP_READ, OP_TRUNCATE, OP_SIZE, OP_SYNC, OP_COUNT };

static void file_path(char *out, size_t size, int c, int f) { snprintf(out, size, "/c%02d/file-%d.bin", c, f); }

/* Each file owns a fixed slice of its client's share region, so requests never share
 * buffers. */
static fs_buffer file_buffer(int f, uint64_t len)
{
    return (fs_buffer){(uint64_t)f * FILE_MAX, len};
}

static void issue(int c, int f)
{
    model_file *m = &model[c].files[f];
    m->op = (int)test_rand_below(&rng, OP_COUNT);
    fs_cmd_params p;
    memset(&p, 0, sizeof p);
    uint64_t type = 0;
    switch (m->op) {
    case OP_WRITE:
        m->offset = test_rand_below(&rng, FILE_MAX - 1);
        m->len = 1 + test_rand_below(&rng, af_min_u64(FILE_MAX - m->offset, 9000));
        m->buf = file_buffer(f, m->len);
        for (uint64_t i = 0; i < m->len; i++)
            fx.clients[c].share[m->buf.offset + i] = (uint8_t)test_rand(&rng);
        p.file_write.fd = m->fd;
        p.file_write.offset = m->offset;
        p.file_write.buf = m->buf;
        type = FS_CMD_FILE_WRITE;
        break;
    case OP_READ:
        m->offset = test_rand_below(&rng, FILE_MAX);
        m->len = 1 + test_rand_below(&rng, 12000);
        if (m->len > FILE_MAX)
            m->len = FILE_MAX;
        m->buf = file_buffer(f, m->len);
        p.file_read.fd = m->fd;
        p.file_read.offset = m->offset;
        p.file_read.buf = m->buf;
        type = FS_CMD_FILE_READ;
        break;
    case OP_TRUNCATE:
        m->len = test_rand_below(&rng, FILE_MAX);
        p.file_truncate.fd = m->fd;
        p.file_truncate.length = m->len;
        type = FS_CMD_FILE_TRUNCATE;
        break;
    case OP_SIZE:
        p.file_size.fd = m->fd;
        type = FS_CMD_FILE_SIZE;
        break;
    default:
        p.file_sync.fd = m->fd;
        type = FS_CMD_FILE_SYNC;
        break;
    }
    m->id = sf_submit(&fx, c, type, &p, sizeof p);
    AF_ASSERT(m->id != 0);
    m->busy = true;
    model[c].in_flight++;
    model[c].ops_left--;
}

static void complete(int c, const fs_cmpl *cmpl)
{
    for (int f = 0; f < FILES; f++) {
        model_file *m = &model[c].files[f];
        if (!m->busy || m->id != cmpl->id)
            continue;
        m->busy = false;
        model[c].in_flight--;
        if (cmpl->status != FS_STATUS_SUCCESS) {
            fprintf(stderr, "client %d file %d op %d: status %llu\n", c, f, m->op, (unsigned long long)cmpl->status);
            mismatches++;
            return;
        }
        switch (m->op) {
        case OP_WRITE:
            memcpy(m->data + m->offset, fx.clients[c].share + m->buf.offset, m->len);
            if (m->offset + m->len > m->size)
                m->size = m->offset + m->len;
            if (cmpl->data != m->len)
                mismatches++;
            break;
        case OP_READ: {
            uint64_t expect = m->offset >= m->size ? 0 : af_min_u64(m->len, m->size - m->offset);
            if (cmpl->data != expect || memcmp(fx.clients[c].share + m->buf.offset, m->data + m->offset, expect) != 0) {
                fprintf(stderr, "client %d file %d: read mismatch at %llu+%llu\n", c, f,
                        (unsigned long long)m->offset, (unsigned long long)m->len);
                mismatches++;
            }
            break;
        }
        case OP_TRUNCATE:
            /* The model keeps every byte past the size zero, as a grown file reads. */
            if (m->len < m->size)
                memset(m->data + m->len, 0, m->size - m->len);
            m->size = m->len;
            break;
        case OP_SIZE:
            if (cmpl->data != m->size)
                mismatches++;
            break;
        default:
            break;
        }
        return;
    }
    fprintf(stderr, "client %d: completion for unknown id %llu\n", c, (unsigned long long)cmpl->id);
    mismatches++;
}

static bool open_all(void)
{
    for (int c = 0; c < CLIENTS; c++) {
        char path[64];
        snprintf(path, sizeof path, "/c%02d", c);
        if (!EXPECT(sf_simple_path(&fx, c, FS_CMD_DIR_CREATE, path) == FS_STATUS_SUCCESS))
            return false;
        for (int f = 0; f < FILES; f++) {
            file_path(path, sizeof path, c, f);
            model_file *m = &model[c].files[f];
            memset(m, 0, sizeof *m);
            if (!EXPECT(sf_open(&fx, c, path, FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &m->fd) == FS_STATUS_SUCCESS))
                return false;
        }
        /* sf_path buffers live after the per-file slices */
        fx.clients[c].share_used = FILES * FILE_MAX;
    }
    return true;
}

TEST(sixteen_clients_with_many_requests_in_flight_match_the_model)
{
    sf_options o = {.workdir = test_tmpdir(), .mkfs_args = "-F 32", .image_bytes = 96ull << 20, .random_order = true, .seed = test_seed(),
                    .clients = CLIENTS, .fibers = 48};
    CHECK(sf_init(&fx, &o) == 0);
    rng = test_seed();
    mismatches = 0;
    for (int c = 0; c < CLIENTS; c++)
        CHECK_EQ(sf_initialise(&fx, c, true), FS_STATUS_SUCCESS);
    CHECK(open_all());
    for (int c = 0; c < CLIENTS; c++) {
        model[c].ops_left = OPS_PER_CLIENT;
        model[c].in_flight = 0;
    }

    uint64_t max_in_flight = 0;
    for (int idle = 0; idle < 1000;) {
        bool any = false;
        for (int c = 0; c < CLIENTS; c++) {
            for (int f = 0; f < FILES; f++) {
                if (!model[c].files[f].busy && model[c].ops_left > 0 && test_rand_below(&rng, 2)) {
                    issue(c, f);
                    any = true;
                }
            }
            fs_cmpl cmpl;
            while (sf_take(&fx, c, &cmpl)) {
                complete(c, &cmpl);
                any = true;
            }
        }
        uint64_t total = 0;
        for (int c = 0; c < CLIENTS; c++)
            total += (uint64_t)model[c].in_flight;
        if (total > max_in_flight)
            max_in_flight = total;
        bool stepped = sf_step(&fx);
        bool done = true;
        for (int c = 0; c < CLIENTS; c++)
            done &= model[c].ops_left == 0 && model[c].in_flight == 0;
        if (done)
            break;
        idle = any || stepped ? 0 : idle + 1;
    }
    CHECK_EQ(mismatches, 0);
    for (int c = 0; c < CLIENTS; c++)
        CHECK_MSG(model[c].ops_left == 0 && model[c].in_flight == 0, "client %d stalled", c);
    CHECK_MSG(max_in_flight >= 32, "only %llu requests were in flight at once", (unsigned long long)max_in_flight);

    /* Everything reads back after the clients leave and one comes back. */
    for (int c = 0; c < CLIENTS; c++)
        CHECK_EQ(sf_call(&fx, c, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(sf_fsck(&fx, "stress.img") == 0);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    static uint8_t back[FILE_MAX];
    for (int c = 0; c < CLIENTS; c++) {
        for (int f = 0; f < FILES; f++) {
            char path[64];
            uint64_t fd, done;
            file_path(path, sizeof path, c, f);
            sf_share_reset(&fx, 0);
            CHECK_EQ(sf_open(&fx, 0, path, FS_OPEN_FLAGS_READ_ONLY, &fd), FS_STATUS_SUCCESS);
            CHECK_EQ(sf_read(&fx, 0, fd, 0, back, FILE_MAX, &done), FS_STATUS_SUCCESS);
            CHECK_EQ(done, model[c].files[f].size);
            CHECK(memcmp(back, model[c].files[f].data, done) == 0);
            CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
        }
    }
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    sf_fini(&fx);
}

/* A hostile client sends garbage and rewrites its queue counters while a well-behaved one
 * works; the good one gets right answers, the server survives, the volume stays clean. */
TEST(hostile_client_cannot_hurt_the_server_or_other_clients)
{
    sf_options o = {.workdir = test_tmpdir(), .random_order = true, .seed = test_seed(), .clients = 2};
    CHECK(sf_init(&fx, &o) == 0);
    rng = test_seed() ^ 0x5eed;
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_initialise(&fx, 1, true), FS_STATUS_SUCCESS);
    uint64_t fd, done;
    CHECK_EQ(sf_open(&fx, 0, "/good", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fd), FS_STATUS_SUCCESS);

    static uint8_t expect[8192], got[8192];
    for (int round = 0; round < 60; round++) {
        /* Garbage: random types (often valid numbers) and random parameters, including
         * the good client's fd number. */
        for (int k = 0; k < 20; k++) {
            fs_msg junk;
            for (size_t i = 0; i < sizeof junk; i += 8) {
                uint64_t v = test_rand(&rng);
                memcpy(junk.raw + i, &v, 8);
            }
            junk.cmd.type = test_rand_below(&rng, 4) ? test_rand_below(&rng, FS_CMD_COUNT + 2) : junk.cmd.type;
            if (test_rand_below(&rng, 4) == 0)
                junk.cmd.params.file_read.fd = fd;
            sf_submit(&fx, 1, junk.cmd.type, &junk.cmd.params, sizeof junk.cmd.params);
        }
        /* Scribble over the queue counters the server must not trust. */
        if (round % 7 == 3)
            fx.clients[1].commands->tail = test_rand(&rng);
        if (round % 11 == 5)
            fx.clients[1].completions->head = test_rand(&rng);
        if (round % 13 == 0)
            fx.clients[1].commands->head = test_rand(&rng);

        for (size_t i = 0; i < sizeof expect; i++)
            expect[i] = (uint8_t)(round * 31 + i);
        CHECK_EQ(sf_write(&fx, 0, fd, (uint64_t)round * 100, expect, sizeof expect, &done), FS_STATUS_SUCCESS);
        CHECK_EQ(sf_read(&fx, 0, fd, (uint64_t)round * 100, got, sizeof got, &done), FS_STATUS_SUCCESS);
        CHECK_EQ(done, sizeof got);
        CHECK(memcmp(expect, got, sizeof got) == 0);
        fs_cmpl junk_cmpl;
        while (sf_take(&fx, 1, &junk_cmpl))
            ;
    }
    /* The hostile client's own descriptors are its own business; the good fd still works. */
    CHECK_EQ(sf_close(&fx, 0, fd), FS_STATUS_SUCCESS);
    for (int idle = 0; idle < 100 && !fs_server_idle(&fx.server);)
        idle = sf_step(&fx) ? 0 : idle + 1;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    fs_cmpl c;
    memset(&c, 0, sizeof c);
    /* Make the hostile client's queues consistent again (poking the server's private
     * counters, which no real client can) so its DEINITIALISE gets through. */
    fx.clients[1].commands->head = fx.clients[1].commands->tail;
    fs_queue_end_init(&fx.clients[1].command_end, fx.clients[1].commands, true);
    fx.server.clients[1].commands.own = fx.clients[1].commands->tail;
    fx.server.clients[1].completions.own = fx.clients[1].completions->tail;
    fx.clients[1].completions->head = fx.clients[1].completions->tail;
    fs_queue_end_init(&fx.clients[1].completion_end, fx.clients[1].completions, false);
    c = sf_call(&fx, 1, FS_CMD_DEINITIALISE, NULL, 0);
    CHECK_MSG(c.status == FS_STATUS_SUCCESS || c.status == FS_STATUS_NOT_MOUNTED, "status %llu",
              (unsigned long long)c.status);
    CHECK(sf_fsck(&fx, "hostile.img") == 0);
    sf_fini(&fx);
}

/* Reads of a file whose clusters sit on failing blocks get IO_ERROR; other files and the
 * rest of the volume are unharmed. */
TEST(device_errors_become_statuses_and_harm_nothing_else)
{
    sf_options o = {.workdir = test_tmpdir(), .random_order = true, .seed = test_seed()};
    CHECK(sf_init(&fx, &o) == 0);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    static uint8_t a[65536], b[65536], got[65536];
    for (size_t i = 0; i < sizeof a; i++) {
        a[i] = (uint8_t)i;
        b[i] = (uint8_t)(i * 7 + 1);
    }
    uint64_t fa, fb, done;
    CHECK_EQ(sf_open(&fx, 0, "/a", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fa), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_open(&fx, 0, "/b", FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE, &fb), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fa, 0, a, sizeof a, &done), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_write(&fx, 0, fb, 0, b, sizeof b, &done), FS_STATUS_SUCCESS);
    fs_cmd_params p = {.file_sync = {.fd = fa}};
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SYNC, &p, sizeof p).status, FS_STATUS_SUCCESS);
    p.file_sync.fd = fb;
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_FILE_SYNC, &p, sizeof p).status, FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fa), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_close(&fx, 0, fb), FS_STATUS_SUCCESS);
    /* Remount so nothing of /a is cached, then fail every read of the data region's upper
     * half and see which file is hit. */
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    blk_cache_invalidate(&fx.blk.stack.cache);
    CHECK_EQ(sf_initialise(&fx, 0, true), FS_STATUS_SUCCESS);
    uint64_t io_errors = 0, good = 0;
    for (uint64_t first = 1; first < fx.blk.dev.capacity; first += 4) {
        ram_device_fail_range(&fx.blk.dev, first, first + 4, 1u << BLK_REQ_READ);
        uint64_t st = FS_STATUS_SUCCESS;
        for (int k = 0; k < 2 && st == FS_STATUS_SUCCESS; k++) {
            uint64_t fd;
            st = sf_open(&fx, 0, k ? "/b" : "/a", FS_OPEN_FLAGS_READ_ONLY, &fd);
            if (st != FS_STATUS_SUCCESS)
                break;
            st = sf_read(&fx, 0, fd, 0, got, sizeof got, &done);
            if (st == FS_STATUS_SUCCESS && !EXPECT(memcmp(got, k ? b : a, sizeof got) == 0))
                return;
            sf_close(&fx, 0, fd);
        }
        if (st == FS_STATUS_IO_ERROR)
            io_errors++;
        else if (st == FS_STATUS_SUCCESS)
            good++;
        else
            CHECK_MSG(false, "unexpected status %llu", (unsigned long long)st);
        ram_device_fail_range(&fx.blk.dev, 0, 0, 0);
        blk_cache_invalidate(&fx.blk.stack.cache);
        if (io_errors >= 3 && good >= 3)
            break;
    }
    CHECK(io_errors >= 1);
    CHECK(good >= 1);
    CHECK_EQ(sf_call(&fx, 0, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(sf_fsck(&fx, "ioerror.img") == 0);
    sf_fini(&fx);
}

/* docs/DESIGN.md's trap for a synchronous engine under fibers: two appends (and two creates in
 * one directory) running side by side, with the device completing one request per pass in
 * FIFO order, so the two request fibers alternate strictly at every block I/O. They must
 * never get the same cluster or the same directory slot. */
TEST(strictly_alternating_appends_and_creates_never_collide)
{
    sf_options o = {.workdir = test_tmpdir(), .clients = 2};
    CHECK(sf_init(&fx, &o) == 0);
    fx.blk.dev.completions_per_process = 1;
    for (int c = 0; c < 2; c++)
        CHECK_EQ(sf_initialise(&fx, c, true), FS_STATUS_SUCCESS);
    CHECK_EQ(sf_simple_path(&fx, 0, FS_CMD_DIR_CREATE, "/shared"), FS_STATUS_SUCCESS);
    uint64_t fd[2];
    const char *names[2] = {"/shared/log-a", "/shared/log-b"};
    for (int c = 0; c < 2; c++)
        CHECK_EQ(sf_open(&fx, c, names[c], FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_APPEND,
                         &fd[c]),
                 FS_STATUS_SUCCESS);

    enum { ROUNDS = 40, CHUNK = 4096 };
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t ids[2][2];
        for (int c = 0; c < 2; c++) {
            sf_share_reset(&fx, c);
            static uint8_t chunk[CHUNK];
            memset(chunk, 'a' + c + 2 * (round % 10), sizeof chunk);
            fs_cmd_params w = {.file_write = {.fd = fd[c], .offset = 0, .buf = sf_buf(&fx, c, chunk, CHUNK)}};
            ids[c][0] = sf_submit(&fx, c, FS_CMD_FILE_WRITE, &w, sizeof w);
            char path[64];
            snprintf(path, sizeof path, "/shared/%c-entry-with-a-long-name-%03d", 'a' + c, round);
            fs_cmd_params cr = {.file_open = {.path = sf_path(&fx, c, path),
                                              .flags = FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_READ_WRITE}};
            ids[c][1] = sf_submit(&fx, c, FS_CMD_FILE_OPEN, &cr, sizeof cr);
        }
        int pending = 4;
        uint64_t created[2] = {0, 0};
        for (int idle = 0; pending > 0 && idle < 1000;) {
            bool any = sf_step(&fx);
            for (int c = 0; c < 2; c++) {
                fs_cmpl cmpl;
                while (sf_take(&fx, c, &cmpl)) {
                    CHECK_MSG(cmpl.status == FS_STATUS_SUCCESS, "round %d client %d status %llu", round, c,
                              (unsigned long long)cmpl.status);
                    if (cmpl.id == ids[c][1])
                        created[c] = cmpl.data;
                    pending--;
                    any = true;
                }
            }
            idle = any ? 0 : idle + 1;
        }
        CHECK_EQ(pending, 0);
        for (int c = 0; c < 2; c++)
            CHECK_EQ(sf_close(&fx, c, created[c]), FS_STATUS_SUCCESS);
    }
    for (int c = 0; c < 2; c++) {
        CHECK_EQ(sf_close(&fx, c, fd[c]), FS_STATUS_SUCCESS);
        uint64_t rfd, done;
        static uint8_t back[ROUNDS * CHUNK];
        CHECK_EQ(sf_open(&fx, c, names[c], FS_OPEN_FLAGS_READ_ONLY, &rfd), FS_STATUS_SUCCESS);
        sf_share_reset(&fx, c);
        CHECK_EQ(sf_read(&fx, c, rfd, 0, back, sizeof back, &done), FS_STATUS_SUCCESS);
        CHECK_EQ(done, sizeof back);
        for (int round = 0; round < ROUNDS; round++)
            CHECK_EQ(back[round * CHUNK + CHUNK / 2], 'a' + c + 2 * (round % 10));
        CHECK_EQ(sf_close(&fx, c, rfd), FS_STATUS_SUCCESS);
    }
    for (int c = 0; c < 2; c++)
        CHECK_EQ(sf_call(&fx, c, FS_CMD_DEINITIALISE, NULL, 0).status, FS_STATUS_SUCCESS);
    CHECK(sf_fsck(&fx, "alternation.img") == 0);
    sf_fini(&fx);
}
