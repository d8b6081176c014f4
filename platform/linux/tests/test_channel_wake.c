/* channel_wake: the bells' handshake and bounded spinning.
 *
 * The handshake: a ring writes the eventfd only for a waiter that announced sleep, always
 * for an fd no thread of this process attached (a peer in another process), and always in
 * a forked child. The stress tests: many round trips between two threads that both wait
 * with lx_bell_wait, and between a client thread and a component on the launcher's loop
 * thread (the hosted layout's shape: runtime.c's going-to-sleep re-check), at 1 and at 16
 * in flight, with random delays on either side so that each side is found asleep, about to
 * sleep and spinning; with spinning on and off. A wait that times out is a lost wake-up and
 * fails the test.
 */
#include "platform/linux/channel_wake.h"
#include "platform/linux/launcher.h"
#include "tests/harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUND_TRIPS 100000u
#define DEEP 16u
#define WAIT_MS 2000
#define DEFAULT_SPIN_US 50 /* channel_wake.h: what ASYNCFAT_SPIN_US is when unset */

static uint64_t eventfd_count(int fd)
{
    uint64_t count = 0;
    if (read(fd, &count, sizeof count) != sizeof count)
        return 0;
    return count;
}

TEST(a_ring_writes_the_eventfd_only_for_a_waiter_that_sleeps)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(fd >= 0 && fd < LX_BELL_MAX_FD);
    /* not attached: the waiter may be another process, so always written */
    CHECK_EQ(lx_bell_ring(fd), 0);
    CHECK_EQ(eventfd_count(fd), 1);
    lx_bell_attach(fd);
    CHECK_EQ(lx_bell_ring(fd), 0);
    CHECK_EQ(eventfd_count(fd), 0);
    CHECK(lx_bell_rung(fd));
    CHECK(lx_bell_take(fd));
    CHECK(!lx_bell_take(fd));
    CHECK(lx_bell_local_peer(fd));
    lx_bell_set_asleep(fd, true);
    CHECK_EQ(lx_bell_ring(fd), 0);
    CHECK_EQ(eventfd_count(fd), 1);
    lx_bell_set_asleep(fd, false);
    /* a forked child has no waiting thread: it writes */
    pid_t pid = fork();
    if (pid == 0) {
        lx_bell_ring(fd);
        _exit(0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CHECK_EQ(eventfd_count(fd), 1);
    lx_bell_detach(fd);
    CHECK_EQ(lx_bell_ring(fd), 0);
    CHECK_EQ(eventfd_count(fd), 1);
    close(fd);
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

TEST(a_wait_for_nothing_times_out_without_spinning_for_a_peer_elsewhere)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(fd >= 0);
    lx_bell_attach(fd);
    lx_spin spin;
    lx_spin_init(&spin);
    uint64_t woken = 7;
    CHECK_EQ(lx_bell_wait(fd, -1, -1, 0, &spin, never, NULL, &woken), 0);
    CHECK_EQ(woken, 0);
    /* written by a peer of another process: woken with its count, the eventfd cleared */
    uint64_t two = 2;
    CHECK(write(fd, &two, sizeof two) == sizeof two);
    CHECK_EQ(lx_bell_wait(fd, -1, -1, 100, &spin, never, NULL, &woken), 1);
    CHECK_EQ(woken, 2);
    CHECK_EQ(eventfd_count(fd), 0);
    lx_bell_detach(fd);
    close(fd);
}

static int never_finds(void *ctx)
{
    (void)ctx;
    return 0;
}

TEST(a_short_sleep_gives_the_next_spin_the_whole_budget)
{
    lx_spin_set_max_us(10);
    lx_spin spin;
    lx_spin_init(&spin);
    CHECK_EQ(spin.budget_ns, 10000);
    CHECK(!lx_spin_until(&spin, never_finds, NULL));
    CHECK(!lx_spin_until(&spin, never_finds, NULL));
    CHECK_EQ(spin.budget_ns, 2500);
    /* a wait longer than the maximum (a slow device): a whole spin would not have caught
     * it, so the budget stays small */
    lx_spin_slept(&spin, 10001);
    CHECK_EQ(spin.budget_ns, 2500);
    CHECK_EQ(spin.misses, 2);
    /* one that ended within the maximum would have been caught */
    lx_spin_slept(&spin, 9000);
    CHECK_EQ(spin.budget_ns, 10000);
    CHECK_EQ(spin.misses, 0);
    /* spinning off: nothing changes */
    lx_spin_set_max_us(0);
    spin.budget_ns = 1;
    lx_spin_slept(&spin, 10);
    CHECK_EQ(spin.budget_ns, 1);
    lx_spin_set_max_us(DEFAULT_SPIN_US);
}

static bool pin_to(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0 && sched_getcpu() == cpu;
}

typedef struct device_waiter {
    int fd;
    int cpu;
    bool pinned;
} device_waiter;

/* The server's side, on another CPU: it has taken the client's requests and waits (for a
 * device, on their behalf). */
static void *wait_for_device(void *arg)
{
    device_waiter *w = arg;
    w->pinned = pin_to(w->cpu);
    lx_bell_set_waiting(w->fd, true);
    return NULL;
}

typedef struct ready_after {
    unsigned calls, at;
} ready_after;

static bool ready_on_call(void *ctx)
{
    ready_after *r = ctx;
    return ++r->calls >= r->at;
}

/* A client's answers come from a server that has taken its requests and waits for a fast
 * device: the client spins for them (its probe finds them), where it used to give up at
 * once and sleep until the server's eventfd write woke it. */
TEST(a_client_spins_while_its_server_waits_for_a_device)
{
    cpu_set_t was;
    if (pthread_getaffinity_np(pthread_self(), sizeof was, &was) != 0 || CPU_COUNT(&was) < 2) {
        printf("SKIP a_client_spins_while_its_server_waits_for_a_device: fewer than two CPUs\n");
        return;
    }
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &was))
            cpus[n++] = c;
    int to_client = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), to_server = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    CHECK(to_client >= 0 && to_server >= 0);
    lx_bell_attach(to_client);
    lx_bell_attach(to_server);
    lx_bell_ring(to_client); /* the server is a thread of this process */
    lx_bell_take(to_client);
    device_waiter w = {to_server, cpus[1], false};
    pthread_t server;
    CHECK(pthread_create(&server, NULL, wait_for_device, &w) == 0);
    pthread_join(server, NULL);
    bool pinned = w.pinned && pin_to(cpus[0]);
    lx_spin_set_max_us(1000); /* room for a preempted spin on a loaded machine */
    lx_spin spin;
    lx_spin_init(&spin);
    ready_after ready = {0, 50};
    uint64_t woken = 0;
    int rc = lx_bell_wait(to_client, to_server, -1, 100, &spin, ready_on_call, &ready, &woken);
    lx_spin_set_max_us(DEFAULT_SPIN_US);
    pthread_setaffinity_np(pthread_self(), sizeof was, &was);
    lx_bell_detach(to_client);
    lx_bell_detach(to_server);
    close(to_client);
    close(to_server);
    if (!pinned) {
        printf("SKIP a_client_spins_while_its_server_waits_for_a_device: cannot pin threads to CPUs\n");
        return;
    }
    CHECK_MSG(rc == 1 && ready.calls >= 50, "the client slept (rc %d after %u looks)", rc, ready.calls);
    CHECK_EQ(woken, 0);
}

/* A random delay: mostly none or a few microseconds of work, sometimes long enough that
 * the peer gives up spinning and sleeps. */
static void random_delay(uint64_t *rng)
{
    uint64_t r = test_rand_below(rng, 64);
    if (r < 40)
        return;
    if (r < 62) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        uint64_t ns = test_rand_below(rng, 5000);
        do
            clock_gettime(CLOCK_MONOTONIC, &now);
        while ((uint64_t)((now.tv_sec - start.tv_sec) * 1000000000ll + (now.tv_nsec - start.tv_nsec)) < ns);
        return;
    }
    struct timespec ts = {0, (long)(20000 + test_rand_below(rng, 80000))};
    nanosleep(&ts, NULL);
}

/* Two threads: the client keeps up to `depth` requests in flight (asked - answered), the
 * server answers them one by one; each rings the other after publishing. */
typedef struct thread_pair {
    int to_server, to_client;
    _Atomic uint64_t asked, answered;
    uint64_t total;
    uint32_t depth;
    _Atomic uint64_t lost;  /* waits that timed out */
    uint64_t seed;
} thread_pair;

static bool server_has_work(void *ctx)
{
    thread_pair *p = ctx;
    return atomic_load(&p->asked) > atomic_load(&p->answered);
}

static void *pair_server(void *arg)
{
    thread_pair *p = arg;
    uint64_t rng = p->seed ^ 0x5eed;
    lx_spin spin;
    lx_spin_init(&spin);
    while (atomic_load(&p->answered) < p->total) {
        if (!server_has_work(p)) {
            if (lx_bell_wait(p->to_server, p->to_client, -1, WAIT_MS, &spin, NULL, NULL, NULL) == 0 &&
                !server_has_work(p) && atomic_load(&p->answered) < p->total)
                atomic_fetch_add(&p->lost, 1);
            continue;
        }
        random_delay(&rng);
        atomic_fetch_add(&p->answered, 1);
        lx_bell_ring(p->to_client);
    }
    return NULL;
}

static void run_thread_pair(uint32_t depth, uint32_t spin_us, uint64_t *lost, uint64_t *answered)
{
    lx_spin_set_max_us(spin_us);
    thread_pair p = {.total = ROUND_TRIPS, .depth = depth, .seed = test_seed()};
    p.to_server = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p.to_client = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    lx_bell_attach(p.to_server);
    lx_bell_attach(p.to_client);
    pthread_t server;
    pthread_create(&server, NULL, pair_server, &p);
    uint64_t rng = p.seed;
    lx_spin spin;
    lx_spin_init(&spin);
    uint64_t seen = 0;
    while (seen < p.total && atomic_load(&p.lost) == 0) {
        uint64_t asked = atomic_load(&p.asked);
        if (asked < p.total && asked - seen < depth) {
            atomic_store(&p.asked, asked + 1);
            lx_bell_ring(p.to_server);
            if (test_rand_below(&rng, 4) == 0)
                random_delay(&rng);
            continue;
        }
        uint64_t now = atomic_load(&p.answered);
        if (now > seen) {
            seen = now;
            continue;
        }
        if (lx_bell_wait(p.to_client, p.to_server, -1, WAIT_MS, &spin, NULL, NULL, NULL) == 0 &&
            atomic_load(&p.answered) == seen)
            atomic_fetch_add(&p.lost, 1);
    }
    if (atomic_load(&p.lost))
        atomic_store(&p.answered, p.total); /* let the server end */
    lx_bell_ring(p.to_server);
    pthread_join(server, NULL);
    *lost = atomic_load(&p.lost);
    *answered = seen;
    lx_bell_detach(p.to_server);
    lx_bell_detach(p.to_client);
    close(p.to_server);
    close(p.to_client);
    lx_spin_set_max_us(DEFAULT_SPIN_US);
}

TEST(no_wake_up_is_lost_between_two_threads)
{
    static const uint32_t depths[] = {1, DEEP};
    static const uint32_t spins[] = {20, 0};
    for (unsigned d = 0; d < 2; d++) {
        for (unsigned s = 0; s < 2; s++) {
            uint64_t lost = 0, answered = 0;
            run_thread_pair(depths[d], spins[s], &lost, &answered);
            CHECK_MSG(lost == 0, "depth %u, spin %u us: %llu waits timed out after %llu answers", depths[d],
                      spins[s], (unsigned long long)lost, (unsigned long long)answered);
            CHECK_EQ(answered, ROUND_TRIPS);
        }
    }
}

/* The hosted shape: an echo component on the launcher's loop thread answers a client on
 * this thread through the runtime's bells (runtime.c announces sleep and re-checks). */
typedef struct echo_area {
    _Atomic uint64_t asked, answered;
    uint64_t seed;
} echo_area;

static echo_area *echo(void) { return component_region("echo", NULL); }
static uint64_t echo_rng;

static void echo_init(void) { echo_rng = echo()->seed ^ 0xec40; }

static void echo_notified(unsigned channel)
{
    if (channel != 0)
        return;
    echo_area *a = echo();
    while (atomic_load(&a->answered) < atomic_load(&a->asked)) {
        random_delay(&echo_rng);
        atomic_fetch_add(&a->answered, 1);
        component_notify(0);
    }
}

static bool run_echo(uint32_t depth, uint32_t spin_us, uint64_t *lost, uint64_t *answered)
{
    static const char *const regions[] = {"echo", NULL};
    const lx_component_spec components[] = {
        {.name = "echo", .entry = {echo_init, echo_notified, NULL, NULL}, .regions = regions, .process = "here"},
        {.name = "host", .regions = regions},
    };
    const lx_region_spec region_specs[] = {{.name = "echo", .size = sizeof(echo_area)}};
    const lx_channel_spec channels[] = {{"ch", "echo", 0, "host", 0}};
    const lx_system_spec spec = {.components = components, .component_count = 2, .regions = region_specs,
                                 .region_count = 1, .channels = channels, .channel_count = 1,
                                 .launcher_process = "here"};
    lx_spin_set_max_us(spin_us);
    *lost = *answered = 0;
    lx_system sys;
    if (lx_system_start(&sys, &spec) != 0)
        return false;
    echo_area *a = lx_system_region(&sys, "echo", NULL);
    lx_component_env host;
    bool ok = a && lx_system_host_env(&sys, "host", &host) && host.channel_count == 1;
    if (ok) {
        a->seed = test_seed();
        int to_echo = host.channels[0].notify_fd, from_echo = host.channels[0].wait_fd;
        lx_bell_attach(from_echo);
        lx_spin spin;
        lx_spin_init(&spin);
        uint64_t rng = test_seed() ^ 0xc11e, seen = 0;
        while (seen < ROUND_TRIPS && *lost == 0) {
            uint64_t asked = atomic_load(&a->asked);
            if (asked < ROUND_TRIPS && asked - seen < depth) {
                atomic_store(&a->asked, asked + 1);
                lx_bell_ring(to_echo);
                if (test_rand_below(&rng, 4) == 0)
                    random_delay(&rng);
                continue;
            }
            uint64_t now = atomic_load(&a->answered);
            if (now > seen) {
                seen = now;
                continue;
            }
            if (lx_bell_wait(from_echo, to_echo, -1, WAIT_MS, &spin, NULL, NULL, NULL) == 0 &&
                atomic_load(&a->answered) == seen)
                (*lost)++;
        }
        *answered = seen;
        lx_bell_detach(from_echo);
    }
    lx_system_stop(&sys, 2000);
    lx_spin_set_max_us(DEFAULT_SPIN_US);
    return ok;
}

TEST(no_wake_up_is_lost_between_a_client_and_the_hosted_loop)
{
    static const uint32_t depths[] = {1, DEEP};
    static const uint32_t spins[] = {20, 0};
    for (unsigned d = 0; d < 2; d++) {
        for (unsigned s = 0; s < 2; s++) {
            uint64_t lost = 0, answered = 0;
            CHECK(run_echo(depths[d], spins[s], &lost, &answered));
            CHECK_MSG(lost == 0, "depth %u, spin %u us: %llu waits timed out after %llu answers", depths[d],
                      spins[s], (unsigned long long)lost, (unsigned long long)answered);
            CHECK_EQ(answered, ROUND_TRIPS);
        }
    }
}
