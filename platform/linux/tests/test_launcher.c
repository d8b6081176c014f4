/* The Linux component runtime and launcher: a three-component system (two forked function
 * components and one exec'd program) playing ping-pong over a channel and a shared
 * region; two components sharing a process, whose notifications are deferred calls, never
 * nested, each component seeing its own channels, and a third in its own process; the
 * launcher's own process run on a thread beside its client; a
 * component that crashes or fails is reported and the rest shut down cleanly;
 * the environment encoding round-trips; fiber stacks from the guarded arena work, and an
 * overflow hits the guard page (SIGSEGV) in a child. */
#include "fiberpool/fiberpool.h"
#include "platform/linux/launcher.h"
#include "platform/linux/stack_alloc.h"
#include "tests/harness.h"

#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 2000

typedef struct pingpong_area {
    volatile uint64_t ping_count;
    volatile uint64_t pong_count;
} pingpong_area;

static pingpong_area *area(void) { return component_region("pingpong", NULL); }

static void ping_init(void)
{
    area()->ping_count = 1;
    component_notify(component_channel("pp"));
}

static void ping_notified(unsigned channel)
{
    if (channel != 3 || component_channel("pp") != 3) {
        lx_runtime_stop(3);
        return;
    }
    pingpong_area *a = area();
    if (a->pong_count != a->ping_count)
        return; /* a stale notification: pong has not answered this round yet */
    if (a->ping_count == ROUNDS) {
        lx_runtime_stop(0);
        return;
    }
    a->ping_count++;
    component_notify(channel);
}

static void pong_init(void) {}

static void pong_notified(unsigned channel)
{
    pingpong_area *a = area();
    if (a->pong_count < a->ping_count) {
        a->pong_count = a->ping_count;
        component_notify(channel);
    }
}

static void idle_init(void) {}
static void idle_notified(unsigned channel) { AF_UNUSED(channel); }

static void crash_init(void) { abort(); }
static void fail_init(void) { lx_runtime_stop(7); }

/* An exec'd copy of this program finds its role in the environment. */
__attribute__((constructor)) static void run_as_component_if_launched(void)
{
    const char *text = getenv(LX_COMPONENT_ENV);
    if (!text)
        return;
    static lx_component_env env;
    if (!lx_component_env_decode(&env, text))
        _exit(125);
    lx_component_entry entry = {idle_init, idle_notified, NULL, NULL};
    if (strcmp(env.name, "pong") == 0)
        entry = (lx_component_entry){pong_init, pong_notified, NULL, NULL};
    _exit(lx_component_run(&env, entry));
}

static const char *const pingpong_regions[] = {"pingpong", NULL};
static char self_path[4096];
static char *pong_argv[] = {self_path, NULL};

TEST(pingpong_three_components_exec_and_fork)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    CHECK(n > 0);
    self_path[n] = '\0';
    const lx_component_spec components[] = {
        {.name = "ping", .entry = {ping_init, ping_notified}, .regions = pingpong_regions},
        {.name = "pong", .argv = pong_argv, .regions = pingpong_regions},
        {.name = "idle", .entry = {idle_init, idle_notified}},
    };
    const lx_region_spec regions[] = {{.name = "pingpong", .size = sizeof(pingpong_area)}};
    const lx_channel_spec channels[] = {{"pp", "ping", 3, "pong", 9}, {"spare", "idle", 0, "ping", 4}};
    const lx_system_spec spec = {.components = components, .component_count = 3,
        .regions = regions, .region_count = 1,
        .channels = channels, .channel_count = 2};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    lx_exit_report report;
    bool ended = lx_system_wait(&sys, 30000, &report);
    pingpong_area *a = lx_system_region(&sys, "pingpong", NULL);
    uint64_t pings = a ? a->ping_count : 0, pongs = a ? a->pong_count : 0;
    lx_system_stop(&sys, 2000);
    CHECK(ended);
    CHECK(strcmp(report.component, "ping") == 0);
    CHECK(!report.signaled);
    CHECK_EQ(report.code, 0);
    CHECK_EQ(pings, ROUNDS);
    CHECK_EQ(pongs, ROUNDS);
    /* the others were stopped with SIGTERM and left their loops cleanly */
    for (int i = 1; i < 3; i++) {
        CHECK(sys.exits[i].component != NULL);
        CHECK_MSG(!sys.exits[i].signaled && sys.exits[i].code == 0, "%s: signaled %d code %d",
                  sys.exits[i].component, sys.exits[i].signaled, sys.exits[i].code);
    }
}

/* ---- two components in one process --------------------------------------------------------- */

typedef struct pair_area {
    volatile uint64_t ping_count, pong_count, far_count;
    volatile uint32_t errors;
} pair_area;

static int pair_depth; /* callbacks of this process running now: never more than one */
static uint32_t *pair_private(void) { return component_region("scratch", NULL); }

static pair_area *pair(void) { return component_region("pair", NULL); }

static bool pair_enter(void)
{
    if (pair_depth++ != 0 || !pair()) {
        if (pair())
            pair()->errors++;
        return false;
    }
    return true;
}

static void pair_ping_init(void)
{
    /* channel numbers are each component's own: the runtime knows who is running */
    if (!pair_enter() || component_channel("pp") != 3 || component_channel("pf") != 5)
        lx_runtime_stop(10);
    pair_private()[0] = 0xfeed;
    pair()->ping_count = 1;
    component_notify(3);
    /* deferred: pong has not run yet */
    if (pair()->pong_count != 0)
        lx_runtime_stop(11);
    pair_depth--;
}

static void pair_ping_notified(unsigned channel)
{
    if (!pair_enter())
        lx_runtime_stop(12);
    pair_area *a = pair();
    if (channel == 5) {
        lx_runtime_stop(a->far_count == 1 && a->errors == 0 ? 0 : 13);
    } else if (channel == 3 && a->pong_count == a->ping_count) {
        if (a->ping_count == ROUNDS) {
            component_notify(5); /* across processes: an eventfd */
        } else {
            a->ping_count++;
            component_notify(3);
            component_notify(3); /* several notifications before the peer runs: one call */
        }
    } else if (channel != 3) {
        lx_runtime_stop(14);
    }
    pair_depth--;
}

static void pair_pong_init(void)
{
    if (!pair_enter() || component_channel("pp") != 9 || component_channel("pf") != COMPONENT_NO_CHANNEL)
        lx_runtime_stop(15);
    pair_depth--;
}

static void pair_pong_notified(unsigned channel)
{
    if (!pair_enter())
        lx_runtime_stop(16);
    pair_area *a = pair();
    /* the private region is the process's: ping's write is visible here */
    if (channel != 9 || pair_private()[0] != 0xfeed || a->pong_count >= a->ping_count)
        a->errors++;
    else
        a->pong_count = a->ping_count;
    component_notify(9);
    pair_depth--;
}

static void far_notified(unsigned channel)
{
    pair()->far_count++;
    component_notify(channel);
}

TEST(components_sharing_a_process_notify_by_deferred_calls)
{
    static const char *const ping_regions[] = {"pair", "scratch", NULL};
    static const char *const far_regions[] = {"pair", NULL};
    const lx_component_spec components[] = {
        {.name = "ping", .entry = {pair_ping_init, pair_ping_notified}, .regions = ping_regions, .process = "both"},
        {.name = "far", .entry = {idle_init, far_notified}, .regions = far_regions},
        {.name = "pong", .entry = {pair_pong_init, pair_pong_notified}, .regions = ping_regions, .process = "both"},
    };
    const lx_region_spec regions[] = {{.name = "pair", .size = sizeof(pair_area)},
                                      {.name = "scratch", .size = 4096, .private_memory = true}};
    const lx_channel_spec channels[] = {{"pp", "ping", 3, "pong", 9}, {"pf", "ping", 5, "far", 1}};
    const lx_system_spec spec = {.components = components, .component_count = 3,
        .regions = regions, .region_count = 2,
        .channels = channels, .channel_count = 2};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    bool shared = sys.pids[0] == sys.pids[2] && sys.pids[0] != sys.pids[1];
    bool local = sys.channel_fds[0][0] < 0 && sys.channel_fds[0][1] < 0 && sys.channel_fds[1][0] >= 0;
    lx_exit_report report;
    bool ended = lx_system_wait(&sys, 30000, &report);
    pair_area *a = lx_system_region(&sys, "pair", NULL);
    pair_area seen = {a->ping_count, a->pong_count, a->far_count, a->errors};
    lx_system_stop(&sys, 2000);
    CHECK(shared);
    CHECK(local);
    CHECK(ended);
    CHECK_MSG(strcmp(report.component, "both") == 0, "report names %s", report.component);
    CHECK_MSG(!report.signaled && report.code == 0, "signaled %d code %d", report.signaled, report.code);
    CHECK_EQ(seen.errors, 0);
    CHECK_EQ(seen.ping_count, ROUNDS);
    CHECK_EQ(seen.pong_count, ROUNDS);
    CHECK_EQ(seen.far_count, 1);
    CHECK(sys.exits[2].component && strcmp(sys.exits[2].component, "pong") == 0 && sys.exits[2].code == 0);
    CHECK(!sys.exits[1].signaled && sys.exits[1].code == 0);
}

/* ---- components on a thread of the launcher ------------------------------------------------- */

static void here_notified(unsigned channel)
{
    pair_area *a = pair();
    if (channel == 5) { /* far answered: ask the host */
        component_notify(7);
    } else if (channel == 7) { /* the host answered */
        lx_runtime_stop(a->far_count == 1 && a->errors == 0 ? 21 : 22);
    } else {
        pair_ping_notified(channel);
    }
}

TEST(the_launchers_own_process_runs_on_a_thread)
{
    static const char *const ping_regions[] = {"pair", "scratch", NULL};
    static const char *const far_regions[] = {"pair", NULL};
    const lx_component_spec components[] = {
        {.name = "ping", .entry = {pair_ping_init, here_notified, NULL, NULL}, .regions = ping_regions, .process = "here"},
        {.name = "far", .entry = {idle_init, far_notified, NULL, NULL}, .regions = far_regions},
        {.name = "pong", .entry = {pair_pong_init, pair_pong_notified, NULL, NULL}, .regions = ping_regions,
         .process = "here"},
        {.name = "host"},
    };
    const lx_region_spec regions[] = {{.name = "pair", .size = sizeof(pair_area)},
                                      {.name = "scratch", .size = 4096, .private_memory = true}};
    const lx_channel_spec channels[] = {{"pp", "ping", 3, "pong", 9}, {"pf", "ping", 5, "far", 1},
                                        {"ph", "ping", 7, "host", 0}};
    const lx_system_spec spec = {.components = components, .component_count = 4,
        .regions = regions, .region_count = 2,
        .channels = channels, .channel_count = 3,
        .launcher_process = "here"};
    pair_depth = 0;
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    bool placed = sys.pids[0] == 0 && sys.pids[2] == 0 && sys.pids[1] > 0;
    /* the host is a client on this thread: answer ping once it asks */
    lx_component_env host;
    bool answered = false;
    if (lx_system_host_env(&sys, "host", &host)) {
        struct pollfd p = {.fd = host.channels[0].wait_fd, .events = POLLIN};
        uint64_t one = 1, count;
        answered = poll(&p, 1, 30000) == 1 && read(p.fd, &count, sizeof count) == sizeof count &&
                   write(host.channels[0].notify_fd, &one, sizeof one) == sizeof one;
    }
    lx_exit_report report;
    bool ended = lx_system_wait(&sys, 30000, &report);
    pair_area *a = lx_system_region(&sys, "pair", NULL);
    pair_area seen = {a->ping_count, a->pong_count, a->far_count, a->errors};
    lx_system_stop(&sys, 2000);
    CHECK(placed);
    CHECK(answered);
    CHECK(ended);
    CHECK_MSG(strcmp(report.component, "here") == 0, "report names %s", report.component);
    CHECK_EQ(report.pid, getpid());
    CHECK_MSG(!report.signaled && report.code == 21, "signaled %d code %d", report.signaled, report.code);
    CHECK_EQ(seen.ping_count, ROUNDS);
    CHECK_EQ(seen.far_count, 1);
    CHECK(!sys.exits[1].signaled && sys.exits[1].code == 0);
    /* a loop that is still running when the system stops leaves cleanly */
    const lx_component_spec idle[] = {{.name = "i", .entry = {idle_init, idle_notified, NULL, NULL}, .process = "here"}};
    const lx_system_spec idle_spec = {.components = idle, .component_count = 1,
        .regions = NULL, .region_count = 0,
        .channels = NULL, .channel_count = 0,
        .launcher_process = "here"};
    CHECK_EQ(lx_system_start(&sys, &idle_spec), 0);
    CHECK(!lx_system_wait(&sys, 50, &report));
    lx_system_stop(&sys, 2000);
    CHECK(sys.exits[0].component && !sys.exits[0].signaled && sys.exits[0].code == 0);
    /* the launcher's process must be one of the description's */
    const lx_system_spec nowhere = {.components = idle, .component_count = 1,
        .regions = NULL, .region_count = 0,
        .channels = NULL, .channel_count = 0,
        .launcher_process = "elsewhere"};
    CHECK_EQ(lx_system_start(&sys, &nowhere), -1);
}

TEST(only_function_components_share_a_process)
{
    static char *argv[] = {"/bin/true", NULL};
    const lx_component_spec components[] = {
        {.name = "a", .entry = {idle_init, idle_notified}, .process = "p"},
        {.name = "b", .argv = argv, .process = "p"},
    };
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = NULL, .region_count = 0,
        .channels = NULL, .channel_count = 0};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), -1);
    const lx_component_spec with_host[] = {
        {.name = "a", .entry = {idle_init, idle_notified}, .process = "p"},
        {.name = "host", .process = "p"},
    };
    const lx_system_spec spec2 = {.components = with_host, .component_count = 2,
        .regions = NULL, .region_count = 0,
        .channels = NULL, .channel_count = 0};
    CHECK_EQ(lx_system_start(&sys, &spec2), -1);
}

TEST(crashing_component_is_reported_and_rest_stopped)
{
    const lx_component_spec components[] = {
        {.name = "survivor", .entry = {idle_init, idle_notified}},
        {.name = "crasher", .entry = {crash_init, idle_notified}},
        {.name = "other", .entry = {idle_init, idle_notified}},
    };
    const lx_channel_spec channels[] = {{"link", "survivor", 1, "crasher", 1}};
    const lx_system_spec spec = {.components = components, .component_count = 3,
        .regions = NULL, .region_count = 0,
        .channels = channels, .channel_count = 1};
    lx_exit_report first;
    CHECK_EQ(lx_system_run(&spec, 30000, &first), 1);
    CHECK(first.component && strcmp(first.component, "crasher") == 0);
    CHECK(first.signaled);
    CHECK_EQ(first.code, SIGABRT);
}

TEST(failing_component_status_is_reported)
{
    const lx_component_spec components[] = {
        {.name = "fails", .entry = {fail_init, idle_notified}},
        {.name = "waits", .entry = {idle_init, idle_notified}},
    };
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = NULL, .region_count = 0,
        .channels = NULL, .channel_count = 0};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    lx_exit_report report;
    CHECK(lx_system_wait(&sys, 30000, &report));
    lx_system_stop(&sys, 2000);
    CHECK(strcmp(report.component, "fails") == 0);
    CHECK(!report.signaled);
    CHECK_EQ(report.code, 7);
    CHECK(!sys.exits[1].signaled);
    CHECK_EQ(sys.exits[1].code, 0);
}

TEST(bad_descriptions_are_refused)
{
    const lx_component_spec components[] = {{.name = "a", .entry = {idle_init, idle_notified}}};
    const lx_channel_spec to_nobody[] = {{"c", "a", 1, "nobody", 1}};
    const lx_system_spec spec = {.components = components, .component_count = 1,
        .regions = NULL, .region_count = 0,
        .channels = to_nobody, .channel_count = 1};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), -1);
    const lx_region_spec bad_name[] = {{.name = "has;semicolon", .size = 4096}};
    const lx_system_spec spec2 = {.components = components, .component_count = 1,
        .regions = bad_name, .region_count = 1,
        .channels = NULL, .channel_count = 0};
    CHECK_EQ(lx_system_start(&sys, &spec2), -1);
}

/* A window region: the component sees it inside the region it is a window of, and what it
 * writes there the launcher finds in that region. */
static void window_writer_init(void)
{
    size_t size;
    uint8_t *win = component_region("win", &size);
    uint8_t *big = component_region("big", NULL);
    if (!win || !big || win != big + 8192 || size != 4096) {
        lx_runtime_stop(9);
        return;
    }
    memset(win, 0xA5, size);
    lx_runtime_stop(0);
}

TEST(window_regions_lie_inside_their_region)
{
    static const char *const writer_regions[] = {"big", "win", NULL};
    static const char *const host_regions[] = {"win", NULL};
    const lx_component_spec components[] = {
        {.name = "writer", .entry = {window_writer_init, idle_notified}, .regions = writer_regions},
        {.name = "host", .regions = host_regions},
    };
    const lx_region_spec regions[] = {
        {.name = "big", .size = 16384},
        {.name = "win", .size = 4096, .within = "big", .offset = 8192},
    };
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = regions, .region_count = 2,
        .channels = NULL, .channel_count = 0};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    lx_exit_report report;
    CHECK(lx_system_wait(&sys, 30000, &report));
    CHECK_EQ(report.code, 0);
    uint8_t *big = lx_system_region(&sys, "big", NULL);
    lx_component_env host;
    CHECK(lx_system_host_env(&sys, "host", &host));
    CHECK(host.regions[0].base == big + 8192);
    CHECK(big[8191] == 0 && big[8192] == 0xA5 && big[12287] == 0xA5 && big[12288] == 0);
    lx_system_stop(&sys, 2000);
    /* Windows that are not whole pages of an earlier shared region are refused. */
    const lx_region_spec bad[][2] = {
        {{.name = "big", .size = 16384}, {.name = "win", .size = 4096, .within = "big", .offset = 100}},
        {{.name = "big", .size = 16384}, {.name = "win", .size = 8192, .within = "big", .offset = 12288}},
        {{.name = "win", .size = 4096, .within = "big", .offset = 0}, {.name = "big", .size = 16384}},
        {{.name = "big", .size = 16384, .private_memory = true}, {.name = "win", .size = 4096, .within = "big"}},
    };
    for (unsigned i = 0; i < AF_ARRAY_LEN(bad); i++) {
        const lx_system_spec b = {.components = components, .component_count = 1,
            .regions = bad[i], .region_count = 2,
            .channels = NULL, .channel_count = 0};
        CHECK_EQ(lx_system_start(&sys, &b), -1);
    }
}

/* A system that is all one process (the asyncfat command, the mount, the benchmarks'
 * hosted layout) needs no memfd: its regions are private memory the launcher maps, windows
 * inside their region as before, and the loop's components see the launcher's mapping. */
TEST(a_system_in_one_process_keeps_its_regions_in_private_memory)
{
    static const char *const writer_regions[] = {"big", "win", NULL};
    static const char *const host_regions[] = {"win", NULL};
    const lx_component_spec components[] = {
        {.name = "writer", .entry = {window_writer_init, idle_notified}, .regions = writer_regions, .process = "here"},
        {.name = "host", .regions = host_regions},
    };
    const lx_region_spec regions[] = {
        {.name = "big", .size = 16384},
        {.name = "win", .size = 4096, .within = "big", .offset = 8192},
    };
    const lx_system_spec spec = {.components = components, .component_count = 2,
        .regions = regions, .region_count = 2,
        .channels = NULL, .channel_count = 0,
        .launcher_process = "here"};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), 0);
    lx_exit_report report;
    bool ended = lx_system_wait(&sys, 30000, &report);
    uint8_t *big = lx_system_region(&sys, "big", NULL);
    lx_component_env host;
    bool hosted = lx_system_host_env(&sys, "host", &host);
    bool no_memfd = sys.regions[0].fd < 0 && sys.regions[1].fd < 0;
    bool written = big && big[8191] == 0 && big[8192] == 0xA5 && big[12287] == 0xA5 && big[12288] == 0;
    lx_system_stop(&sys, 2000);
    CHECK(ended);
    CHECK_MSG(report.code == 0, "the writer saw its window elsewhere (%d)", report.code);
    CHECK(hosted && host.regions[0].base == big + 8192);
    CHECK(no_memfd);
    CHECK(written);
    /* One component in a process of its own: shared memory again. */
    const lx_component_spec forked[] = {
        {.name = "writer", .entry = {window_writer_init, idle_notified}, .regions = writer_regions},
        {.name = "host", .regions = host_regions},
    };
    const lx_system_spec shared = {.components = forked, .component_count = 2,
        .regions = regions, .region_count = 2,
        .channels = NULL, .channel_count = 0};
    CHECK_EQ(lx_system_start(&sys, &shared), 0);
    no_memfd = sys.regions[0].fd < 0;
    CHECK(lx_system_wait(&sys, 30000, &report));
    lx_system_stop(&sys, 2000);
    CHECK(!no_memfd);
    CHECK_EQ(report.code, 0);
}

/* A populated region is mapped in full before init: touching every page then takes
 * (almost) no page fault, where an unpopulated one takes one per page. */
static unsigned long minor_faults(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char line[1024];
    unsigned long faults = 0;
    char *p = f && fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %lu", &faults) != 1)
        faults = 0;
    if (f)
        fclose(f);
    return faults;
}

#define TOUCH_PAGES 256u

static void toucher_init(void)
{
    size_t size;
    volatile uint8_t *r = component_region("touched", &size);
    if (!r || size < TOUCH_PAGES * 4096) {
        lx_runtime_stop(1);
        return;
    }
    unsigned long before = minor_faults();
    for (size_t i = 0; i < TOUCH_PAGES; i++)
        r[i * 4096] = 1;
    unsigned long faults = minor_faults() - before;
    /* exit status: 10 populated (few faults), 20 faulted page by page */
    lx_runtime_stop(faults < TOUCH_PAGES / 4 ? 10 : faults >= TOUCH_PAGES / 2 ? 20 : 30);
}

TEST(populated_regions_are_mapped_at_start)
{
    static const char *const names[] = {"touched", NULL};
    for (int populate = 0; populate < 2; populate++) {
        const lx_component_spec components[] = {{.name = "t", .entry = {toucher_init, idle_notified, NULL, NULL},
                                                 .regions = names}};
        const lx_region_spec regions[] = {{.name = "touched", .size = TOUCH_PAGES * 4096, .populate = populate}};
        const lx_system_spec spec = {.components = components, .component_count = 1,
            .regions = regions, .region_count = 1,
            .channels = NULL, .channel_count = 0};
        lx_system sys;
        lx_exit_report report;
        CHECK_EQ(lx_system_start(&sys, &spec), 0);
        bool ended = lx_system_wait(&sys, 30000, &report);
        lx_system_stop(&sys, 2000);
        CHECK(ended);
        CHECK_MSG(!report.signaled && report.code == (populate ? 10 : 20), "populate %d: code %d", populate,
                  report.code);
    }
}

TEST(environment_encoding_round_trips)
{
    lx_component_env env, back;
    memset(&env, 0, sizeof env);
    strcpy(env.name, "driver");
    env.region_count = 2;
    strcpy(env.regions[0].name, "data");
    env.regions[0].fd = 5;
    env.regions[0].size = 1 << 20;
    strcpy(env.regions[1].name, "info");
    env.regions[1].fd = 6;
    env.regions[1].offset = 8192;
    env.regions[1].size = 4096;
    env.channel_count = 1;
    strcpy(env.channels[0].name, "client");
    env.channels[0].id = 62;
    env.channels[0].notify_fd = 7;
    env.channels[0].wait_fd = 8;
    char text[512];
    CHECK(lx_component_env_encode(&env, text, sizeof text));
    CHECK(lx_component_env_decode(&back, text));
    CHECK(strcmp(back.name, "driver") == 0);
    CHECK_EQ(back.region_count, 2);
    CHECK(strcmp(back.regions[1].name, "info") == 0);
    CHECK_EQ(back.regions[0].size, 1 << 20);
    CHECK_EQ(back.regions[1].fd, 6);
    CHECK_EQ(back.regions[1].offset, 8192);
    CHECK_EQ(back.channel_count, 1);
    CHECK_EQ(back.channels[0].id, 62);
    CHECK_EQ(back.channels[0].wait_fd, 8);
    CHECK(!lx_component_env_encode(&env, text, 20));
    CHECK(!lx_component_env_decode(&back, "x;r=data,1"));
    CHECK(!lx_component_env_decode(&back, "x;q=1"));
    CHECK(!lx_component_env_decode(&back, ""));
}

/* ---- guarded fiber stacks ------------------------------------------------------------------ */

#define SLOTS 8
static fp_task tasks[SLOTS];
static fp_pool pool;

static uintptr_t stack_results[SLOTS];

static void *use_stack(void *arg)
{
    volatile uint8_t buf[8192];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)i;
    stack_results[(uintptr_t)arg] = buf[100] + (uintptr_t)arg;
    return NULL;
}

static unsigned recurse(unsigned depth)
{
    volatile uint8_t frame[1024];
    frame[0] = (uint8_t)depth;
    return depth == 0 ? frame[0] : recurse(depth - 1) + frame[0];
}

static void *overflow(void *arg)
{
    AF_UNUSED(arg);
    return (void *)(uintptr_t)recurse(1000);
}

static bool setup_pool(lx_stack_arena *stacks)
{
    if (!EXPECT(lx_stack_arena_create(stacks, SLOTS, 32768)))
        return false;
    fp_config config = {.tasks = tasks, .slot_count = SLOTS, .stack_arena = stacks->arena,
                        .slot_stride = stacks->slot_stride, .guard_size = stacks->guard_size};
    return EXPECT(fp_init(&pool, &config) == FP_OK);
}

TEST(guarded_stacks_run_fibers)
{
    lx_stack_arena stacks;
    CHECK(setup_pool(&stacks));
    CHECK_EQ(stacks.guard_size, (size_t)sysconf(_SC_PAGESIZE));
    CHECK(stacks.slot_stride >= 32768 + stacks.guard_size);
    for (int i = 0; i < SLOTS; i++)
        CHECK(fp_spawn(&pool, use_stack, (void *)(uintptr_t)i) != NULL);
    fp_run(&pool);
    CHECK_EQ(fp_live_tasks(&pool), 0);
    for (int i = 0; i < SLOTS; i++)
        CHECK_EQ(stack_results[i], 100 + i);
    lx_stack_arena_destroy(&stacks);
    CHECK(!lx_stack_arena_create(&stacks, 0, 4096));
}

static uintptr_t guard_low, guard_high;

/* On the alternate stack: a fault inside the guard page is the expected one; let it kill
 * the process (the default action, once the handler is gone). Any other fault is not. */
static void on_segv(int sig, siginfo_t *info, void *context)
{
    AF_UNUSED(sig);
    AF_UNUSED(context);
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (addr < guard_low || addr >= guard_high)
        _exit(3);
    signal(SIGSEGV, SIG_DFL);
}

static sigjmp_buf probe_jump;

static void on_probe_fault(int sig)
{
    AF_UNUSED(sig);
    siglongjmp(probe_jump, 1);
}

/* Does writing at p fault? */
static bool write_faults(volatile uint8_t *p)
{
    if (sigsetjmp(probe_jump, 1))
        return true;
    *p = 1;
    return false;
}

/* Every slot's guard page faults and every stack byte next to one does not, also past the
 * first batch of guards (stack_alloc.c installs them 64 to a system call). Probed in a
 * child, whose handler jumps back from each fault; its exit status says how many were
 * wrong (ASan's own SIGSEGV handler is replaced there). */
TEST(every_slot_has_its_guard_page)
{
    enum { COUNT = 70 };
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        lx_stack_arena stacks;
        if (!lx_stack_arena_create(&stacks, COUNT, 16384))
            _exit(100);
        struct sigaction sa = {.sa_handler = on_probe_fault};
        sigaction(SIGSEGV, &sa, NULL);
        int wrong = 0;
        for (unsigned i = 0; i < COUNT; i++) {
            uint8_t *slot = (uint8_t *)stacks.arena + (size_t)i * stacks.slot_stride;
            wrong += !write_faults(slot);
            wrong += !write_faults(slot + stacks.guard_size - 1);
            wrong += write_faults(slot + stacks.guard_size);
            wrong += write_faults(slot + stacks.slot_stride - 1);
        }
        _exit(wrong > 99 ? 99 : wrong);
    }
    CHECK(pid > 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x (exit code: wrong probes)", status);
}

TEST(stack_overflow_hits_guard_page_in_child)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        lx_stack_arena stacks;
        if (!setup_pool(&stacks))
            _exit(2);
        fp_task *victim = fp_spawn(&pool, overflow, NULL);
        guard_low = (uintptr_t)stacks.arena + victim->index * stacks.slot_stride;
        guard_high = guard_low + stacks.guard_size;
        static uint8_t alt[65536];
        stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
        struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
        sigaltstack(&ss, NULL);
        sigaction(SIGSEGV, &sa, NULL);
        fp_run(&pool);
        _exit(0);
    }
    CHECK(pid > 0);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "status %#x", status);
}
