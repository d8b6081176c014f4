/* The Linux component runtime and launcher: a three-component system (two forked function
 * components and one exec'd program) playing ping-pong over a channel and a shared
 * region; a component that crashes or fails is reported and the rest shut down cleanly;
 * the environment encoding round-trips; fiber stacks from the guarded arena work, and an
 * overflow hits the guard page (SIGSEGV) in a child. */
#include "fiberpool/fiberpool.h"
#include "platform/linux/launcher.h"
#include "platform/linux/stack_alloc.h"
#include "tests/harness.h"

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
    lx_component_entry entry = {idle_init, idle_notified};
    if (strcmp(env.name, "pong") == 0)
        entry = (lx_component_entry){pong_init, pong_notified};
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
    const lx_system_spec spec = {components, 3, regions, 1, channels, 2};
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

TEST(crashing_component_is_reported_and_rest_stopped)
{
    const lx_component_spec components[] = {
        {.name = "survivor", .entry = {idle_init, idle_notified}},
        {.name = "crasher", .entry = {crash_init, idle_notified}},
        {.name = "other", .entry = {idle_init, idle_notified}},
    };
    const lx_channel_spec channels[] = {{"link", "survivor", 1, "crasher", 1}};
    const lx_system_spec spec = {components, 3, NULL, 0, channels, 1};
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
    const lx_system_spec spec = {components, 2, NULL, 0, NULL, 0};
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
    const lx_system_spec spec = {components, 1, NULL, 0, to_nobody, 1};
    lx_system sys;
    CHECK_EQ(lx_system_start(&sys, &spec), -1);
    const lx_region_spec bad_name[] = {{.name = "has;semicolon", .size = 4096}};
    const lx_system_spec spec2 = {components, 1, bad_name, 1, NULL, 0};
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
    const lx_system_spec spec = {components, 2, regions, 2, NULL, 0};
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
        const lx_system_spec b = {components, 1, bad[i], 2, NULL, 0};
        CHECK_EQ(lx_system_start(&sys, &b), -1);
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
