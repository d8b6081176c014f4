/* Polling before sleeping (platform/linux/busy_poll.h and the loop that uses it): the
 * policy arms only after a short wait, spends at most one budget when the loop goes idle,
 * never polls past a deadline; a polling loop delivers every event an eager writer on
 * another thread sends, in every spacing, and an idle one sleeps. */
#include "platform/linux/busy_poll.h"
#include "platform/linux/runtime.h"
#include "tests/harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define US 1000u

TEST(busy_poll_sleeps_until_a_short_wait_arms_it)
{
    lx_busy_poll s;
    lx_busy_poll_init(&s, 100 * US);
    CHECK_EQ(lx_busy_poll_until(&s, 1000 * US, UINT64_MAX), 1000 * US);
    lx_busy_poll_woke(&s, 1300 * US); /* 300 us asleep: longer than the budget */
    CHECK_EQ(lx_busy_poll_until(&s, 2000 * US, UINT64_MAX), 2000 * US);
    lx_busy_poll_woke(&s, 2040 * US); /* 40 us: the next wait polls */
    CHECK_EQ(lx_busy_poll_until(&s, 3000 * US, UINT64_MAX), 3100 * US);
}

TEST(busy_poll_that_finds_nothing_is_disarmed)
{
    lx_busy_poll s;
    lx_busy_poll_init(&s, 100 * US);
    lx_busy_poll_until(&s, 0, UINT64_MAX);
    lx_busy_poll_woke(&s, 10 * US);
    CHECK_EQ(lx_busy_poll_until(&s, 50 * US, UINT64_MAX), 150 * US);
    lx_busy_poll_found(&s, true); /* found work: stays armed */
    CHECK_EQ(lx_busy_poll_until(&s, 200 * US, UINT64_MAX), 300 * US);
    lx_busy_poll_found(&s, false);
    /* The sleep after it timed out: the next wait sleeps at once. */
    CHECK_EQ(lx_busy_poll_until(&s, 400 * US, UINT64_MAX), 400 * US);
    lx_busy_poll_woke(&s, 420 * US);
    CHECK_EQ(lx_busy_poll_until(&s, 500 * US, UINT64_MAX), 600 * US);
    lx_busy_poll_found(&s, false);
    /* A sleep after a failed poll counts from the poll's start: 110 us, not short. */
    lx_busy_poll_woke(&s, 610 * US);
    CHECK_EQ(lx_busy_poll_until(&s, 700 * US, UINT64_MAX), 700 * US);
}

TEST(busy_poll_never_polls_past_a_deadline_or_with_no_budget)
{
    lx_busy_poll s;
    lx_busy_poll_init(&s, 100 * US);
    lx_busy_poll_until(&s, 0, UINT64_MAX);
    lx_busy_poll_woke(&s, 1 * US);
    CHECK_EQ(lx_busy_poll_until(&s, 10 * US, 30 * US), 30 * US);
    lx_busy_poll_init(&s, 0);
    lx_busy_poll_until(&s, 0, UINT64_MAX);
    lx_busy_poll_woke(&s, 0);
    CHECK_EQ(lx_busy_poll_until(&s, 5, UINT64_MAX), 5);
    lx_busy_poll_init(&s, UINT64_MAX);
    lx_busy_poll_until(&s, 0, UINT64_MAX);
    lx_busy_poll_woke(&s, 1);
    CHECK_EQ(lx_busy_poll_until(&s, 7, UINT64_MAX), UINT64_MAX);
}

/* ---- a loop that polls: one component watching an eventfd another thread writes ---- */

#define EVENTS 5000u

static int event_fd = -1;
static int ack_fd = -1; /* the loop answers each event here */
static uint64_t events_seen;

static void on_event(void *ctx)
{
    (void)ctx;
    uint64_t n;
    if (read(event_fd, &n, sizeof n) == sizeof n) {
        events_seen += n;
        if (write(ack_fd, &n, sizeof n) != sizeof n)
            lx_runtime_stop(3);
    }
}

static void watcher_init(void)
{
    if (lx_runtime_watch_fd(event_fd, on_event, NULL) != 0)
        lx_runtime_stop(2);
}

static void watcher_notified(unsigned channel) { (void)channel; }

/* Writes one event at a time and waits until the loop has seen it (like a client at one
 * request in flight), with gaps from none to past the budget (2 ms), so every path of the
 * policy runs: polls that catch the event, polls that run out, sleeps short and long. */
static void *writer(void *arg)
{
    uint64_t seed = *(uint64_t *)arg;
    for (uint64_t i = 1; i <= EVENTS; i++) {
        uint64_t gap_us = test_rand_below(&seed, 200) == 0 ? 3000 : test_rand_below(&seed, 30);
        if (gap_us)
            usleep((useconds_t)gap_us);
        uint64_t one = 1, got;
        if (write(event_fd, &one, sizeof one) != sizeof one || read(ack_fd, &got, sizeof got) != sizeof got)
            return NULL;
    }
    return NULL;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

TEST(polling_loop_sees_every_event_and_sleeps_when_idle)
{
    event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ack_fd = eventfd(0, EFD_CLOEXEC);
    CHECK(event_fd >= 0 && stop_fd >= 0 && ack_fd >= 0);
    lx_component_env env = {.name = "watcher"};
    lx_component_env *envs[] = {&env};
    lx_component_entry entries[] = {{watcher_init, watcher_notified, NULL, NULL}};
    lx_loop *loop = lx_loop_open(envs, entries, 1, stop_fd);
    CHECK(loop != NULL);
    lx_loop_set_busy_poll(loop, 2000 * US);
    uint64_t seed = test_seed();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer, &seed) == 0);
    time_t give_up = time(NULL) + 60;
    while (events_seen < EVENTS && time(NULL) < give_up)
        lx_loop_run_once(loop, 1000);
    pthread_join(t, NULL);
    CHECK_EQ(events_seen, EVENTS);
    /* Idle: the first wait may poll one budget (it was armed), then the loop sleeps; a loop
     * that polled before every wait would spend 40 ms here. */
    uint64_t cpu = thread_cpu_ns();
    for (int i = 0; i < 20; i++)
        lx_loop_run_once(loop, 10);
    cpu = thread_cpu_ns() - cpu;
    CHECK_MSG(cpu < 15000000u, "idle for 200 ms, the loop used %llu us of CPU", (unsigned long long)(cpu / 1000u));
    lx_loop_close(loop);
    close(event_fd);
    close(ack_fd);
    close(stop_fd);
}

/* ---- a probed descriptor: readiness seen in memory (an io_uring's completions) ---- */

static int probed_fd = -1;   /* a pipe's read end: readable only when the test writes it */
static bool probe_says_ready;
static unsigned probed_calls;

static bool probe_ready(void *ctx)
{
    (void)ctx;
    return probe_says_ready;
}

static void on_probed(void *ctx)
{
    (void)ctx;
    probed_calls++;
    probe_says_ready = false;
    char drain[8];
    while (read(probed_fd, drain, sizeof drain) > 0) {
    }
}

static void probed_init(void)
{
    if (lx_runtime_watch_fd_probed(probed_fd, on_probed, probe_ready, NULL) != 0)
        lx_runtime_stop(2);
}

TEST(probed_descriptor_is_served_when_its_probe_sees_it_ready)
{
    int pipe_fds[2];
    int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(pipe(pipe_fds) == 0 && stop_fd >= 0);
    CHECK(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK) == 0);
    probed_fd = pipe_fds[0];
    lx_component_env env = {.name = "probed"};
    lx_component_env *envs[] = {&env};
    lx_component_entry entries[] = {{probed_init, watcher_notified, NULL, NULL}};
    lx_loop *loop = lx_loop_open(envs, entries, 1, stop_fd);
    CHECK(loop != NULL);
    /* Nothing ready: the loop waits out its timeout and calls nothing. */
    lx_loop_run_once(loop, 20);
    CHECK_EQ(probed_calls, 0u);
    /* Ready in memory only: served at once, not after a 5 s sleep epoll would end. */
    probe_says_ready = true;
    uint64_t start = component_time_ns();
    lx_loop_run_once(loop, 5000);
    CHECK_EQ(probed_calls, 1u);
    uint64_t slept = component_time_ns() - start;
    CHECK_MSG(slept < 2000000000u, "the loop slept %llu ms with the probe ready", (unsigned long long)(slept / 1000000u));
    /* Ready both ways: served once. */
    probe_says_ready = true;
    CHECK(write(pipe_fds[1], "x", 1) == 1);
    lx_loop_run_once(loop, 1000);
    CHECK_EQ(probed_calls, 2u);
    lx_loop_close(loop);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    close(stop_fd);
}
