/* Protocol queues in one process: layout, wrap-around at odd capacities, batch limits,
 * plugging, and clamping against a peer that writes nonsense into its counter. */
#include "protocol/blk_queue.h"
#include "protocol/fs_protocol.h"
#include "tests/harness.h"

#include <string.h>

#define MAX_CAPACITY 512

static alignas(16) uint8_t req_mem[sizeof(blk_req_queue) + MAX_CAPACITY * sizeof(blk_request)];
static alignas(16) uint8_t resp_mem[sizeof(blk_resp_queue) + MAX_CAPACITY * sizeof(blk_response)];
static fs_queue fs_q;

static blk_queue_handle blk_setup(uint32_t capacity, uint32_t start)
{
    memset(req_mem, 0, sizeof req_mem);
    memset(resp_mem, 0, sizeof resp_mem);
    blk_queue_handle h;
    blk_queue_init(&h, (blk_req_queue *)req_mem, (blk_resp_queue *)resp_mem, capacity);
    /* start the counters anywhere, including just below the 32-bit wrap */
    h.req->head = h.req->tail = start;
    h.resp->head = h.resp->tail = start;
    return h;
}

TEST(blk_layout_sizes_match_protocol)
{
    CHECK_EQ(blk_req_queue_bytes(0), 16);
    CHECK_EQ(blk_req_queue_bytes(3), 16 + 3 * 32);
    CHECK_EQ(blk_resp_queue_bytes(0), 8);
    CHECK_EQ(blk_resp_queue_bytes(5), 8 + 5 * 12);
    CHECK_EQ(BLK_TRANSFER_SIZE, 4096);
}

static bool blk_round_trip(uint32_t capacity, uint32_t start, uint32_t messages, uint64_t *rng)
{
    blk_queue_handle h = blk_setup(capacity, start);
    uint32_t sent = 0, received = 0, answered = 0, checked = 0;
    blk_request reqs[MAX_CAPACITY + 8];
    blk_response resps[MAX_CAPACITY + 8];
    while (checked < messages) {
        uint32_t want = (uint32_t)test_rand_below(rng, capacity + 3);
        if (want > messages - sent)
            want = messages - sent;
        for (uint32_t i = 0; i < want; i++)
            reqs[i] = (blk_request){.code = BLK_REQ_READ, .block_number = sent + i, .count = 1, .id = sent + i};
        uint32_t space = blk_req_queue_space(&h);
        uint32_t n = blk_enqueue_requests(&h, reqs, want);
        if (!EXPECT(n == (want < space ? want : space)))
            return false;
        sent += n;
        if (!EXPECT(h.req->tail - h.req->head <= capacity))
            return false;
        uint32_t take = (uint32_t)test_rand_below(rng, capacity + 3);
        uint32_t got = blk_dequeue_requests(&h, reqs, take);
        for (uint32_t i = 0; i < got; i++) {
            if (!EXPECT(reqs[i].id == received + i && reqs[i].block_number == received + i))
                return false;
            resps[i] = (blk_response){.status = BLK_RESP_OK, .success_count = 1, .id = reqs[i].id};
        }
        received += got;
        /* responses may lag behind: the driver answers what fits */
        uint32_t put = blk_enqueue_responses(&h, resps, got);
        if (!EXPECT(put == got)) /* resp queue has the same capacity and we drain it below */
            return false;
        answered += put;
        uint32_t read = blk_dequeue_responses(&h, resps, (uint32_t)test_rand_below(rng, capacity + 3) + capacity);
        for (uint32_t i = 0; i < read; i++)
            if (!EXPECT(resps[i].id == checked + i))
                return false;
        checked += read;
    }
    return EXPECT(sent == messages && received == messages && answered == messages) &&
           EXPECT(blk_dequeue_requests(&h, reqs, 10) == 0) && EXPECT(blk_dequeue_responses(&h, resps, 10) == 0);
}

TEST(blk_queue_wraps_at_odd_capacities)
{
    uint64_t rng = test_seed();
    static const uint32_t caps[] = {1, 2, 3, 7, 100, 511, 512};
    static const uint32_t starts[] = {0, 5, 0xfffffff0u};
    for (size_t c = 0; c < AF_ARRAY_LEN(caps); c++)
        for (size_t s = 0; s < AF_ARRAY_LEN(starts); s++)
            CHECK_MSG(blk_round_trip(caps[c], starts[s], 5000, &rng), "capacity %u start %u", caps[c], starts[s]);
}

/* Entries on both sides of the u32 wrap would share a slot at capacity 3; the producer
 * holds back until the consumer has crossed. */
TEST(blk_queue_producer_waits_at_counter_wrap)
{
    blk_queue_handle h = blk_setup(3, 0xfffffffeu);
    blk_request r = {.code = BLK_REQ_READ, .count = 1};
    blk_request batch[3] = {r, r, r};
    CHECK_EQ(blk_enqueue_requests(&h, batch, 3), 2); /* stops at the wrap */
    CHECK_EQ(h.req->tail, 0);
    CHECK_EQ(blk_req_queue_space(&h), 0);
    blk_request out[3];
    CHECK_EQ(blk_dequeue_requests(&h, out, 1), 1);
    CHECK_EQ(blk_req_queue_space(&h), 0);
    CHECK_EQ(blk_dequeue_requests(&h, out, 1), 1);
    CHECK_EQ(blk_req_queue_space(&h), 3);
    CHECK_EQ(blk_queue_free_slots(0, 0, 5), 5);
    CHECK_EQ(blk_queue_free_slots(0xfffffffcu, 0xfffffffdu, 5), 3);
}

TEST(blk_queue_full_and_empty)
{
    blk_queue_handle h = blk_setup(3, 0);
    blk_request r = {.code = BLK_REQ_WRITE, .count = 1};
    CHECK(blk_enqueue_request(&h, r));
    CHECK(blk_enqueue_request(&h, r));
    CHECK(blk_enqueue_request(&h, r));
    CHECK(!blk_enqueue_request(&h, r));
    CHECK_EQ(blk_req_queue_space(&h), 0);
    blk_request out[8];
    CHECK_EQ(blk_dequeue_requests(&h, out, 8), 3);
    CHECK_EQ(blk_dequeue_requests(&h, out, 8), 0);
    CHECK_EQ(blk_req_queue_space(&h), 3);
    blk_response resp = {.id = 9};
    for (int i = 0; i < 3; i++)
        CHECK(blk_enqueue_response(&h, resp));
    CHECK(!blk_enqueue_response(&h, resp));
    CHECK_EQ(blk_resp_queue_space(&h), 0);
}

TEST(blk_plugged_queue_is_not_drained)
{
    blk_queue_handle h = blk_setup(4, 0);
    blk_request r = {.code = BLK_REQ_READ, .count = 1, .id = 7};
    CHECK(blk_enqueue_request(&h, r));
    blk_req_queue_plug(&h);
    CHECK(h.req->plugged);
    blk_request out[4];
    CHECK_EQ(blk_dequeue_requests(&h, out, 4), 0);
    CHECK(blk_enqueue_request(&h, r)); /* the client may still queue while plugged */
    blk_req_queue_unplug(&h);
    CHECK_EQ(blk_dequeue_requests(&h, out, 4), 2);
    CHECK_EQ(out[0].id, 7);
}

TEST(blk_corrupt_peer_counter_is_clamped)
{
    blk_queue_handle h = blk_setup(7, 100);
    blk_request out[64];
    h.req->tail = h.req->head + 1000000; /* hostile client */
    CHECK_EQ(blk_dequeue_requests(&h, out, 64), 7);
    h.req->tail = h.req->head - 1; /* "negative" length */
    CHECK_EQ(blk_dequeue_requests(&h, out, 64), 7);
    blk_response rout[64];
    h.resp->tail = h.resp->head + 12345; /* hostile driver */
    CHECK_EQ(blk_dequeue_responses(&h, rout, 64), 7);
    /* a producer facing a consumer head that ran ahead of the tail sees no space */
    h.req->head = h.req->tail + 5;
    CHECK_EQ(blk_req_queue_space(&h), 0);
    blk_request r = {0};
    CHECK(!blk_enqueue_request(&h, r));
}

TEST(blk_storage_ready_flag)
{
    blk_storage_info info;
    memset(&info, 0, sizeof info);
    CHECK(!blk_storage_is_ready(&info));
    info.capacity = 10;
    blk_storage_publish_ready(&info);
    CHECK(blk_storage_is_ready(&info));
    CHECK_EQ(((uint8_t *)&info)[65], 1);
}

/* ---- fs queues ------------------------------------------------------------------------ */

TEST(fs_layout_offsets_match_protocol)
{
    CHECK_EQ(sizeof(fs_queue), 32768);
    CHECK_EQ(offsetof(fs_queue, buffer), 64);
    CHECK_EQ(offsetof(fs_stat, used), 16 * 8);
    CHECK_EQ(offsetof(fs_cmd_params, file_write.offset), 8);
    CHECK_EQ(offsetof(fs_cmd_params, stat.buf), 16);
    CHECK_EQ(offsetof(fs_cmd_params, dir_read.buf), 8);
    CHECK_EQ(offsetof(fs_cmd_params, file_truncate.length), 8);
    CHECK_EQ(FS_CMD_DIR_REWIND, 19);
    CHECK_EQ(FS_STATUS_NOT_EMPTY, 18);
}

static bool fs_round_trip(uint64_t start, uint32_t messages, uint64_t *rng)
{
    memset(&fs_q, 0, sizeof fs_q);
    fs_q.head = fs_q.tail = start;
    fs_queue_end prod, cons;
    fs_queue_end_init(&prod, &fs_q, true);
    fs_queue_end_init(&cons, &fs_q, false);
    static fs_msg msgs[FS_QUEUE_CAPACITY + 10];
    uint32_t sent = 0, got = 0;
    while (got < messages) {
        uint32_t want = (uint32_t)test_rand_below(rng, FS_QUEUE_CAPACITY + 10);
        if (want > messages - sent)
            want = messages - sent;
        for (uint32_t i = 0; i < want; i++) {
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].cmd.id = sent + i;
            msgs[i].cmd.type = FS_CMD_FILE_READ;
            msgs[i].cmd.params.file_read.offset = ~(uint64_t)(sent + i);
        }
        uint64_t space = fs_queue_space(&prod);
        uint32_t n = fs_queue_produce(&prod, msgs, want);
        if (!EXPECT(n == (want < space ? want : space)))
            return false;
        sent += n;
        uint32_t r = fs_queue_consume(&cons, msgs, (uint32_t)test_rand_below(rng, FS_QUEUE_CAPACITY + 10));
        for (uint32_t i = 0; i < r; i++)
            if (!EXPECT(msgs[i].cmd.id == got + i && msgs[i].cmd.params.file_read.offset == ~(uint64_t)(got + i)))
                return false;
        got += r;
    }
    return EXPECT(fs_q.tail == start + messages && fs_q.head == start + messages);
}

TEST(fs_queue_wraps_at_511)
{
    uint64_t rng = test_seed() + 1;
    CHECK(fs_round_trip(0, 20000, &rng));
    CHECK(fs_round_trip(510, 20000, &rng));
    /* (u64 counters never reach their wrap: 2^64 messages) */
}

TEST(fs_queue_full_at_capacity)
{
    memset(&fs_q, 0, sizeof fs_q);
    fs_queue_end prod, cons;
    fs_queue_end_init(&prod, &fs_q, true);
    fs_queue_end_init(&cons, &fs_q, false);
    static fs_msg msgs[FS_QUEUE_CAPACITY + 1];
    memset(msgs, 0, sizeof msgs);
    CHECK_EQ(fs_queue_produce(&prod, msgs, FS_QUEUE_CAPACITY + 1), FS_QUEUE_CAPACITY);
    CHECK_EQ(fs_queue_space(&prod), 0);
    CHECK_EQ(fs_queue_produce(&prod, msgs, 1), 0);
    CHECK_EQ(fs_queue_available(&cons), FS_QUEUE_CAPACITY);
    CHECK_EQ(fs_queue_consume(&cons, msgs, 1), 1);
    CHECK_EQ(fs_queue_produce(&prod, msgs, 5), 1);
}

TEST(fs_queue_private_counters_resist_a_scribbling_peer)
{
    memset(&fs_q, 0, sizeof fs_q);
    fs_queue_end prod, cons;
    fs_queue_end_init(&prod, &fs_q, true);
    fs_queue_end_init(&cons, &fs_q, false);
    static fs_msg msgs[FS_QUEUE_CAPACITY];
    memset(msgs, 0, sizeof msgs);
    CHECK_EQ(fs_queue_produce(&prod, msgs, 3), 3);
    /* the client (producer) claims a huge tail: the server takes at most a queue's worth */
    fs_q.tail = 1ull << 60;
    CHECK_EQ(fs_queue_available(&cons), FS_QUEUE_CAPACITY);
    /* the client rewrites head (ours): we never read it back, so our position holds */
    fs_q.tail = 3;
    fs_q.head = 12345;
    CHECK_EQ(fs_queue_consume(&cons, msgs, 10), 3);
    CHECK_EQ(cons.own, 3);
    CHECK_EQ(fs_q.head, 3);
    /* a consumer head ahead of our tail leaves the producer no space, never a wrap */
    fs_q.head = prod.own + 1;
    CHECK_EQ(fs_queue_space(&prod), 0);
    fs_q.head = 0; /* a consumer head far behind: the used length clamps to full */
    prod.own = 100000;
    CHECK_EQ(fs_queue_space(&prod), 0);
}
