/* Protocol queues across two processes sharing a memfd mapping: millions of messages at
 * several capacities, both directions, checked for loss, duplication, reordering and torn
 * entries. The child echoes every request as a response whose fields are derived from it;
 * both sides spin (yielding) on empty or full queues. */
#include "protocol/blk_queue.h"
#include "protocol/fs_protocol.h"
#include "tests/harness.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CAPACITY 1000u
#define BATCH 64u

typedef struct shared_area {
    alignas(64) fs_queue commands;
    alignas(64) fs_queue completions;
    alignas(64) uint8_t req[sizeof(blk_req_queue) + MAX_CAPACITY * sizeof(blk_request)];
    alignas(64) uint8_t resp[sizeof(blk_resp_queue) + MAX_CAPACITY * sizeof(blk_response)];
} shared_area;

static shared_area *map_shared(void)
{
    int fd = memfd_create("queues", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, sizeof(shared_area)) != 0)
        return NULL;
    void *p = mmap(NULL, sizeof(shared_area), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static blk_response echo_of(const blk_request *r)
{
    return (blk_response){.status = (uint32_t)(r->block_number % 5),
                          .success_count = (uint16_t)(r->block_number * 7),
                          .id = r->id};
}

/* Child: take requests, check their order and contents, echo them. Exit status 0 = ok. */
static int blk_echo_child(blk_queue_handle h, uint32_t messages)
{
    blk_request reqs[BATCH];
    blk_response resps[BATCH];
    uint32_t expected = 0;
    while (expected < messages) {
        uint32_t n = blk_dequeue_requests(&h, reqs, af_min_u32(BATCH, blk_resp_queue_space(&h)));
        if (n == 0) {
            sched_yield();
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (reqs[i].id != expected || reqs[i].block_number != (uint64_t)expected * 3 ||
                reqs[i].count != (uint16_t)expected || reqs[i].io_or_offset != ~(uint64_t)expected)
                return 1;
            resps[i] = echo_of(&reqs[i]);
            expected++;
        }
        if (blk_enqueue_responses(&h, resps, n) != n)
            return 2;
    }
    return 0;
}

static bool child_exited(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == pid;
}

static bool wait_child_ok(pid_t pid)
{
    int status;
    if (!EXPECT(waitpid(pid, &status, 0) == pid))
        return false;
    return EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static bool blk_ipc_run(shared_area *area, uint32_t capacity, uint32_t messages)
{
    memset(area->req, 0, sizeof area->req);
    memset(area->resp, 0, sizeof area->resp);
    blk_queue_handle h;
    blk_queue_init(&h, (blk_req_queue *)area->req, (blk_resp_queue *)area->resp, capacity);
    /* start near the 32-bit wrap so the counters overflow during the run */
    h.req->head = h.req->tail = h.resp->head = h.resp->tail = 0xffffffffu - capacity * 2;
    pid_t pid = fork();
    if (pid == 0)
        _exit(blk_echo_child(h, messages));
    if (!EXPECT(pid > 0))
        return false;
    uint64_t rng = test_seed() ^ capacity;
    uint32_t sent = 0, checked = 0, idle = 0;
    blk_request reqs[BATCH];
    blk_response resps[BATCH];
    while (checked < messages) {
        bool progress = false;
        uint32_t want = af_min_u32((uint32_t)test_rand_below(&rng, BATCH) + 1, messages - sent);
        for (uint32_t i = 0; i < want; i++)
            reqs[i] = (blk_request){.code = BLK_REQ_READ, .io_or_offset = ~(uint64_t)(sent + i),
                                    .block_number = (uint64_t)(sent + i) * 3,
                                    .count = (uint16_t)(sent + i), .id = sent + i};
        uint32_t n = blk_enqueue_requests(&h, reqs, want);
        sent += n;
        progress |= n > 0;
        uint32_t got = blk_dequeue_responses(&h, resps, BATCH);
        for (uint32_t i = 0; i < got; i++) {
            blk_request r = {.block_number = (uint64_t)checked * 3, .id = checked};
            blk_response e = echo_of(&r);
            if (!EXPECT(resps[i].id == e.id && resps[i].status == e.status &&
                        resps[i].success_count == e.success_count)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return false;
            }
            checked++;
        }
        progress |= got > 0;
        if (progress) {
            idle = 0;
        } else {
            sched_yield();
            if (++idle % 4096 == 0 && child_exited(pid))
                return EXPECT(!"child exited early");
        }
    }
    return wait_child_ok(pid) && EXPECT(blk_dequeue_responses(&h, resps, BATCH) == 0);
}

TEST(blk_queues_two_processes_several_capacities)
{
    shared_area *area = map_shared();
    CHECK(area);
    static const struct { uint32_t capacity, messages; } runs[] = {
        {1, 50000}, {3, 150000}, {7, 250000}, {100, 1000000}, {MAX_CAPACITY, 1000000},
    };
    for (size_t i = 0; i < AF_ARRAY_LEN(runs); i++)
        CHECK_MSG(blk_ipc_run(area, runs[i].capacity, runs[i].messages), "capacity %u", runs[i].capacity);
    munmap(area, sizeof *area);
}

/* fs queues: the child consumes commands and produces completions echoing them. */
static int fs_echo_child(shared_area *area, uint64_t messages)
{
    fs_queue_end commands, completions;
    fs_queue_end_init(&commands, &area->commands, false);
    fs_queue_end_init(&completions, &area->completions, true);
    static fs_msg msgs[BATCH];
    uint64_t expected = 0;
    while (expected < messages) {
        uint32_t room = (uint32_t)af_min_u64(BATCH, fs_queue_space(&completions));
        uint32_t n = fs_queue_consume(&commands, msgs, room);
        if (n == 0) {
            sched_yield();
            continue;
        }
        for (uint32_t i = 0; i < n; i++) {
            fs_cmd c = msgs[i].cmd;
            if (c.id != expected || c.type != expected % 20 || c.params.file_write.offset != ~expected)
                return 1;
            af_memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].cmpl = (fs_cmpl){.id = c.id, .status = c.type, .data = c.id * 11};
            expected++;
        }
        if (fs_queue_produce(&completions, msgs, n) != n)
            return 2;
    }
    return 0;
}

TEST(fs_queues_two_processes)
{
    shared_area *area = map_shared();
    CHECK(area);
    const uint64_t messages = 1000000;
    area->commands.head = area->commands.tail = (1ull << 40) + 5; /* any start works */
    pid_t pid = fork();
    if (pid == 0)
        _exit(fs_echo_child(area, messages));
    CHECK(pid > 0);
    fs_queue_end commands, completions;
    fs_queue_end_init(&commands, &area->commands, true);
    fs_queue_end_init(&completions, &area->completions, false);
    static fs_msg msgs[BATCH];
    uint64_t rng = test_seed() + 2, sent = 0, checked = 0, idle = 0;
    bool ok = true;
    while (ok && checked < messages) {
        uint32_t want = (uint32_t)af_min_u64(test_rand_below(&rng, BATCH) + 1, messages - sent);
        for (uint32_t i = 0; i < want; i++) {
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].cmd.id = sent + i;
            msgs[i].cmd.type = (sent + i) % 20;
            msgs[i].cmd.params.file_write.offset = ~(sent + i);
        }
        uint32_t n = fs_queue_produce(&commands, msgs, want);
        sent += n;
        uint32_t got = fs_queue_consume(&completions, msgs, BATCH);
        for (uint32_t i = 0; i < got && ok; i++, checked++)
            ok = EXPECT(msgs[i].cmpl.id == checked && msgs[i].cmpl.status == checked % 20 &&
                        msgs[i].cmpl.data == checked * 11);
        if (n == 0 && got == 0) {
            sched_yield();
            if (++idle % 4096 == 0 && child_exited(pid))
                ok = EXPECT(!"child exited early");
        }
    }
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    CHECK(wait_child_ok(pid));
    munmap(area, sizeof *area);
}
