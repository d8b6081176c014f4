/* Starting and watching a system of component processes (see launcher.h). */
#include "platform/linux/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int find_component(const lx_system_spec *spec, const char *name)
{
    for (unsigned i = 0; i < spec->component_count; i++)
        if (strcmp(spec->components[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_region(const lx_system *sys, const char *name)
{
    for (unsigned i = 0; i < sys->spec->region_count; i++)
        if (strcmp(sys->regions[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The first component of i's process: i itself unless it shares a process. */
static unsigned process_leader(const lx_system_spec *spec, unsigned i)
{
    const char *process = spec->components[i].process;
    for (unsigned k = 0; process && k < i; k++)
        if (spec->components[k].process && strcmp(spec->components[k].process, process) == 0)
            return k;
    return i;
}

static bool same_process(const lx_system_spec *spec, unsigned a, unsigned b)
{
    return process_leader(spec, a) == process_leader(spec, b);
}

/* i's place among the components of its process. */
static int place_in_process(const lx_system_spec *spec, unsigned i)
{
    int place = 0;
    for (unsigned k = 0; k < i; k++)
        place += same_process(spec, k, i);
    return place;
}

/* Only function components share a process, and no more than one loop holds; the
 * launcher's process, if named, is one of theirs. */
static bool valid_processes(const lx_system_spec *spec)
{
    bool launcher_found = !spec->launcher_process;
    for (unsigned i = 0; i < spec->component_count; i++) {
        const lx_component_spec *c = &spec->components[i];
        if (c->process && (!c->entry.init || place_in_process(spec, i) >= (int)LX_LOOP_MAX_COMPONENTS))
            return false;
        if (c->process && spec->launcher_process && strcmp(c->process, spec->launcher_process) == 0)
            launcher_found = true;
    }
    return launcher_found;
}

/* Does component i run on the launcher's thread? */
static bool in_launcher(const lx_system_spec *spec, unsigned i)
{
    const char *process = spec->components[i].process;
    return process && spec->launcher_process && strcmp(process, spec->launcher_process) == 0;
}

static bool copy_name(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n == 0 || n >= LX_MAX_NAME || strpbrk(src, ",;="))
        return false;
    memcpy(dst, src, n + 1);
    return true;
}

static void release(lx_system *sys)
{
    if (sys->loop_stop_fd >= 0)
        close(sys->loop_stop_fd);
    if (sys->loop_done_fd >= 0)
        close(sys->loop_done_fd);
    sys->loop_stop_fd = sys->loop_done_fd = -1;
    free(sys->loop_envs);
    sys->loop_envs = NULL;
    for (unsigned i = 0; i < LX_MAX_REGIONS; i++) {
        /* (A window's pages go with its region's: unmapping them twice is harmless.) */
        if (sys->regions[i].base)
            munmap(sys->regions[i].base, sys->regions[i].size);
        if (sys->regions[i].fd >= 0)
            close(sys->regions[i].fd);
        sys->regions[i].base = NULL;
        sys->regions[i].fd = -1;
        sys->regions[i].launcher_private = false;
    }
    for (unsigned i = 0; i < LX_MAX_CHANNELS; i++)
        for (int d = 0; d < 2; d++) {
            if (sys->channel_fds[i][d] >= 0)
                close(sys->channel_fds[i][d]);
            sys->channel_fds[i][d] = -1;
        }
    for (unsigned i = 0; i < LX_MAX_COMPONENTS; i++) {
        if (sys->pidfds[i] >= 0)
            close(sys->pidfds[i]);
        sys->pidfds[i] = -1;
    }
}

/* Every component runs in the launcher's own process (a host, or on the launcher's loop):
 * no other process maps a region. */
static bool one_process(const lx_system_spec *spec)
{
    for (unsigned i = 0; i < spec->component_count; i++)
        if (!lx_component_is_host(&spec->components[i]) && !in_launcher(spec, i))
            return false;
    return true;
}

/* A region of a system that is all one process needs no memfd: anonymous memory, in 2 MiB
 * transparent huge pages where the kernel allows, costs one fault per 2 MiB instead of one
 * per 4 KiB page (a memfd's pages are shmem, never huge here), and a 4 KiB fault costs
 * 15-20 us in some virtual machines: most of the page faults of a short command, such as
 * `asyncfat cp` of many small files, were on the block data region's first use. Kept from
 * children the process forks (MADV_DONTFORK): none of them uses it. Exactly `size` bytes
 * stay mapped, so the release unmaps them all. Without huge_pages, 4 KiB pages and no
 * alignment to trim: a command that touches a few pages of a region would pay for clearing
 * 2 MiB at each first touch. */
static void *map_launcher_private(size_t size, bool huge_pages)
{
    const size_t huge = huge_pages ? (size_t)2 << 20 : 0;
    uint8_t *raw = mmap(NULL, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uint8_t *start = raw;
    if (huge_pages) {
        start = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
        if (start > raw)
            munmap(raw, (size_t)(start - raw));
        munmap(start + size, (size_t)(raw + size + huge - (start + size)));
        madvise(start, size, MADV_HUGEPAGE);
    }
    madvise(start, size, MADV_DONTFORK);
    return start;
}

static bool make_resources(lx_system *sys)
{
    const lx_system_spec *spec = sys->spec;
    long page = sysconf(_SC_PAGESIZE);
    bool local = one_process(spec);
    for (unsigned i = 0; i < spec->region_count; i++) {
        lx_region *r = &sys->regions[i];
        if (!copy_name(r->name, spec->regions[i].name) || spec->regions[i].size == 0)
            return false;
        r->size = (spec->regions[i].size + (size_t)page - 1) / (size_t)page * (size_t)page;
        r->populate = spec->regions[i].populate;
        if (spec->regions[i].private_memory)
            continue; /* each component maps its own (runtime.c) */
        if (spec->regions[i].within) {
            int parent = find_region(sys, spec->regions[i].within);
            size_t offset = spec->regions[i].offset;
            if (parent < 0 || parent >= (int)i || (sys->regions[parent].fd < 0 && !sys->regions[parent].launcher_private) ||
                offset % (size_t)page != 0 || offset > sys->regions[parent].size ||
                r->size > sys->regions[parent].size - offset)
                return false;
            if (local) {
                r->base = (uint8_t *)sys->regions[parent].base + offset;
                r->launcher_private = true;
                continue;
            }
            r->fd = fcntl(sys->regions[parent].fd, F_DUPFD_CLOEXEC, 0);
            r->offset = sys->regions[parent].offset + offset;
            r->base = (uint8_t *)sys->regions[parent].base + offset;
            if (r->fd < 0)
                return false;
            continue;
        }
        if (local) {
            r->base = map_launcher_private(r->size, !spec->launcher_small_pages);
            r->launcher_private = true;
            if (!r->base)
                return false;
            continue;
        }
        r->fd = memfd_create(r->name, MFD_CLOEXEC);
        if (r->fd < 0 || ftruncate(r->fd, (off_t)r->size) != 0)
            return false;
        r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
        if (r->base == MAP_FAILED) {
            r->base = NULL;
            return false;
        }
    }
    if (!valid_processes(spec))
        return false;
    for (unsigned i = 0; i < spec->channel_count; i++) {
        const lx_channel_spec *c = &spec->channels[i];
        int a = find_component(spec, c->a), b = find_component(spec, c->b);
        if (a < 0 || b < 0 || c->a_id >= COMPONENT_MAX_CHANNELS || c->b_id >= COMPONENT_MAX_CHANNELS)
            return false;
        if (a != b && same_process(spec, (unsigned)a, (unsigned)b))
            continue; /* a deferred call: no eventfds */
        for (int d = 0; d < 2; d++) {
            sys->channel_fds[i][d] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (sys->channel_fds[i][d] < 0)
                return false;
        }
    }
    return true;
}

/* The environment of component `index`: its regions (the launcher's fds and mappings,
 * inherited across fork) and its ends of the channels. */
static bool component_env(lx_system *sys, unsigned index, lx_component_env *env)
{
    const lx_system_spec *spec = sys->spec;
    const lx_component_spec *comp = &spec->components[index];
    memset(env, 0, sizeof *env);
    if (!copy_name(env->name, comp->name))
        return false;
    for (const char *const *name = comp->regions; name && *name; name++) {
        int r = find_region(sys, *name);
        if (r < 0 || env->region_count == LX_MAX_REGIONS)
            return false;
        env->regions[env->region_count++] = sys->regions[r];
    }
    for (unsigned i = 0; i < spec->channel_count; i++) {
        const lx_channel_spec *c = &spec->channels[i];
        bool is_a = strcmp(c->a, comp->name) == 0, is_b = strcmp(c->b, comp->name) == 0;
        if (!is_a && !is_b)
            continue;
        lx_channel_end *end = &env->channels[env->channel_count++];
        if (!copy_name(end->name, c->name))
            return false;
        end->id = is_a ? c->a_id : c->b_id;
        end->notify_fd = sys->channel_fds[i][is_a ? 0 : 1];
        end->wait_fd = sys->channel_fds[i][is_a ? 1 : 0];
        end->local_peer = -1;
        unsigned peer = (unsigned)find_component(spec, is_a ? c->b : c->a);
        if (end->notify_fd < 0) {
            end->local_peer = place_in_process(spec, peer);
            end->local_peer_id = is_a ? c->b_id : c->a_id;
        }
    }
    return true;
}

bool lx_system_host_env(lx_system *sys, const char *name, lx_component_env *env)
{
    int index = find_component(sys->spec, name);
    if (index < 0 || !lx_component_is_host(&sys->spec->components[index]))
        return false;
    if (!component_env(sys, (unsigned)index, env))
        return false;
    for (unsigned i = 0; i < env->region_count; i++) {
        env->regions[i].base = sys->regions[find_region(sys, env->regions[i].name)].base;
        if (!env->regions[i].base)
            return false; /* private memory: only started components have it */
    }
    return true;
}

static bool keep_across_exec(const lx_component_env *env)
{
    for (unsigned i = 0; i < env->region_count; i++)
        if (env->regions[i].fd >= 0 && fcntl(env->regions[i].fd, F_SETFD, 0) != 0)
            return false;
    for (unsigned i = 0; i < env->channel_count; i++)
        if (fcntl(env->channels[i].notify_fd, F_SETFD, 0) != 0 || fcntl(env->channels[i].wait_fd, F_SETFD, 0) != 0)
            return false;
    return true;
}

/* The process of component `index` (its first): every component of it on one loop. */
static AF_NORETURN void run_child(lx_system *sys, unsigned index, pid_t launcher)
{
    static lx_component_env envs[LX_LOOP_MAX_COMPONENTS];
    lx_component_env *env_list[LX_LOOP_MAX_COMPONENTS];
    lx_component_entry entries[LX_LOOP_MAX_COMPONENTS];
    const lx_system_spec *spec = sys->spec;
    const lx_component_spec *comp = &spec->components[index];
    lx_component_env *env = &envs[0];
    /* go when the launcher goes, even if it went before this line */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != launcher)
        _exit(125);
    if (comp->entry.init) {
        unsigned n = 0;
        for (unsigned k = index; k < spec->component_count; k++) {
            if (!same_process(spec, k, index))
                continue;
            if (!component_env(sys, k, &envs[n]))
                _exit(126);
            env_list[n] = &envs[n];
            entries[n++] = spec->components[k].entry;
        }
        fflush(NULL);
        _exit(lx_components_run(env_list, entries, n, -1));
    }
    if (!component_env(sys, index, env))
        _exit(126);
    static char text[4096];
    if (!comp->argv || !comp->argv[0] || !keep_across_exec(env) || !lx_component_env_encode(env, text, sizeof text) ||
        setenv(LX_COMPONENT_ENV, text, 1) != 0)
        _exit(126);
    execv(comp->argv[0], comp->argv);
    _exit(127);
}

static void *launcher_loop(void *arg)
{
    lx_system *sys = arg;
    const lx_system_spec *spec = sys->spec;
    lx_component_env *list[LX_LOOP_MAX_COMPONENTS];
    lx_component_entry entries[LX_LOOP_MAX_COMPONENTS];
    unsigned n = 0;
    for (unsigned i = 0; i < spec->component_count; i++)
        if (in_launcher(spec, i)) {
            list[n] = &sys->loop_envs[n];
            entries[n++] = spec->components[i].entry;
        }
    lx_loop *loop = lx_loop_open(list, entries, n, sys->loop_stop_fd);
    if (loop)
        lx_loop_set_busy_poll(loop, spec->launcher_busy_poll_ns);
    /* The start waits for the inits: they read what the system was configured with (the
     * driver's image, the server's options), which the next system in this process may
     * configure as soon as this start has returned. */
    uint64_t one = 1;
    if (write(sys->loop_ready_fd, &one, sizeof one) != sizeof one)
        abort();
    while (loop && lx_loop_run_once(loop, -1))
        continue;
    sys->loop_status = loop ? lx_loop_status(loop) : 1;
    lx_loop_close(loop);
    if (write(sys->loop_done_fd, &one, sizeof one) != sizeof one)
        sys->loop_status = 1;
    return NULL;
}

/* The launcher's own process: its components' environments, then its thread, with every
 * signal blocked (they are for the launcher's other threads). */
static bool start_launcher_loop(lx_system *sys)
{
    const lx_system_spec *spec = sys->spec;
    /* As many environments as it runs (4 KiB each, all cleared by calloc: a short
     * command's page faults) */
    unsigned envs = 0;
    for (unsigned i = 0; i < spec->component_count; i++)
        envs += in_launcher(spec, i);
    sys->loop_envs = calloc(envs ? envs : 1, sizeof *sys->loop_envs);
    sys->loop_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    sys->loop_done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!sys->loop_envs || sys->loop_stop_fd < 0 || sys->loop_done_fd < 0)
        return false;
    unsigned n = 0;
    for (unsigned i = 0; i < spec->component_count; i++)
        if (in_launcher(spec, i) && !component_env(sys, i, &sys->loop_envs[n++]))
            return false;
    if (spec->launcher_inline) {
        lx_component_env *list[LX_LOOP_MAX_COMPONENTS];
        lx_component_entry entries[LX_LOOP_MAX_COMPONENTS];
        unsigned k = 0;
        for (unsigned i = 0; i < spec->component_count; i++)
            if (in_launcher(spec, i)) {
                list[k] = &sys->loop_envs[k];
                entries[k++] = spec->components[i].entry;
            }
        sys->loop = lx_loop_open(list, entries, k, sys->loop_stop_fd);
        sys->loop_running = sys->loop != NULL;
        sys->loop_ended = sys->loop && !lx_loop_run_once(sys->loop, 0);
        return sys->loop_running;
    }
    sys->loop_ready_fd = eventfd(0, EFD_CLOEXEC);
    if (sys->loop_ready_fd < 0)
        return false;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    sys->loop_running = pthread_create(&sys->loop_thread, NULL, launcher_loop, sys) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    uint64_t count;
    while (sys->loop_running && read(sys->loop_ready_fd, &count, sizeof count) < 0 && errno == EINTR)
        continue;
    close(sys->loop_ready_fd);
    sys->loop_ready_fd = -1;
    return sys->loop_running;
}

bool lx_system_run_once(lx_system *sys, int timeout_ms)
{
    if (!sys->loop || sys->loop_ended || !sys->loop_running)
        return false;
    sys->loop_ended = !lx_loop_run_once(sys->loop, timeout_ms);
    return !sys->loop_ended;
}

lx_loop *lx_system_loop(lx_system *sys) { return sys->loop; }

int lx_system_start(lx_system *sys, const lx_system_spec *spec)
{
    memset(sys, 0, sizeof *sys);
    sys->spec = spec;
    sys->loop_stop_fd = sys->loop_done_fd = -1;
    for (unsigned i = 0; i < LX_MAX_REGIONS; i++)
        sys->regions[i].fd = -1;
    for (unsigned i = 0; i < LX_MAX_CHANNELS; i++)
        sys->channel_fds[i][0] = sys->channel_fds[i][1] = -1;
    for (unsigned i = 0; i < LX_MAX_COMPONENTS; i++)
        sys->pidfds[i] = -1;
    if (spec->component_count > LX_MAX_COMPONENTS || spec->region_count > LX_MAX_REGIONS ||
        spec->channel_count > LX_MAX_CHANNELS || !make_resources(sys)) {
        fprintf(stderr, "launcher: bad system description or out of resources\n");
        release(sys);
        return -1;
    }
    fflush(NULL);
    pid_t launcher = getpid();
    /* Children start with SIGTERM blocked, so one sent before their loop's signalfd is up
     * waits there instead of killing them mid-setup. */
    sigset_t term, old_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old_mask);
    int status = 0;
    for (unsigned i = 0; i < spec->component_count && status == 0; i++) {
        if (lx_component_is_host(&spec->components[i]) || in_launcher(spec, i))
            continue;
        unsigned leader = process_leader(spec, i);
        if (leader != i) {
            sys->pids[i] = sys->pids[leader];
            continue;
        }
        pid_t pid = fork();
        if (pid == 0)
            run_child(sys, i, launcher);
        if (pid < 0) {
            perror("launcher: fork");
            status = -1;
        } else {
            sys->pids[i] = pid;
            /* A child that already ended is a zombie until reaped: its pidfd still opens. */
            sys->pidfds[i] = (int)syscall(SYS_pidfd_open, pid, 0);
        }
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (status == 0 && spec->launcher_process && !start_launcher_loop(sys)) {
        fprintf(stderr, "launcher: cannot start the launcher's own loop\n");
        status = -1;
    }
    if (status != 0)
        lx_system_stop(sys, 0);
    return status;
}

/* The process of component `leader` (its first) ended: so did all its components. */
static void record_exit(lx_system *sys, unsigned leader, int status)
{
    pid_t pid = sys->pids[leader];
    for (unsigned i = leader; i < sys->spec->component_count; i++) {
        if (sys->pids[i] != pid || !same_process(sys->spec, i, leader))
            continue;
        lx_exit_report *r = &sys->exits[i];
        r->component = sys->spec->components[i].name;
        r->pid = pid;
        r->signaled = WIFSIGNALED(status);
        r->code = r->signaled ? WTERMSIG(status) : WEXITSTATUS(status);
        sys->pids[i] = 0;
        if (sys->pidfds[i] >= 0)
            close(sys->pidfds[i]);
        sys->pidfds[i] = -1;
    }
    /* a shared process is reported by its name */
    if (sys->spec->components[leader].process)
        sys->exits[leader].component = sys->spec->components[leader].process;
}

static bool is_leader(const lx_system *sys, unsigned i) { return process_leader(sys->spec, i) == i; }

/* The launcher's loop has returned: join its thread and report its components. Returns
 * the first one's index, or -1 if it is still running. */
static int reap_launcher_loop(lx_system *sys, bool wait)
{
    uint64_t count;
    if (!sys->loop_running)
        return -1;
    if (sys->loop) {
        /* inline: ended when a step said so, or now, at the stop */
        if (!sys->loop_ended && !wait)
            return -1;
        sys->loop_status = sys->loop_ended ? lx_loop_status(sys->loop) : 0;
        lx_loop_close(sys->loop);
        sys->loop = NULL;
    } else {
        if (wait) {
            struct pollfd p = {.fd = sys->loop_done_fd, .events = POLLIN};
            while (poll(&p, 1, -1) < 0 && errno == EINTR)
                ;
        }
        if (read(sys->loop_done_fd, &count, sizeof count) != sizeof count)
            return -1;
        pthread_join(sys->loop_thread, NULL);
    }
    sys->loop_running = false;
    int first = -1;
    for (unsigned i = 0; i < sys->spec->component_count; i++) {
        if (!in_launcher(sys->spec, i))
            continue;
        sys->exits[i] = (lx_exit_report){sys->spec->components[i].name, getpid(), false, sys->loop_status};
        if (first < 0)
            first = (int)i;
    }
    sys->exits[first].component = sys->spec->launcher_process;
    return first;
}

/* Reap one ended process without blocking; returns its first component's index or -1. */
static int reap_one(lx_system *sys)
{
    int loop = reap_launcher_loop(sys, false);
    if (loop >= 0)
        return loop;
    for (unsigned i = 0; i < sys->spec->component_count; i++) {
        int status;
        if (sys->pids[i] > 0 && is_leader(sys, i) && waitpid(sys->pids[i], &status, WNOHANG) == sys->pids[i]) {
            record_exit(sys, i, status);
            return (int)i;
        }
    }
    return -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool any_running(const lx_system *sys)
{
    if (sys->loop_running)
        return true;
    for (unsigned i = 0; i < sys->spec->component_count; i++)
        if (sys->pids[i] > 0)
            return true;
    return false;
}

/* Sleep until some running component may have ended, or until the deadline. With a
 * pidfd for every running component this wakes the moment one ends; a component without
 * one (pidfd_open failed: an old kernel) falls back to waking every millisecond. */
static void sleep_for_exit(const lx_system *sys, uint64_t deadline, bool forever)
{
    struct pollfd fds[LX_MAX_COMPONENTS + 1];
    nfds_t n = 0;
    bool all = true;
    /* (An inline loop ends only in a step its caller runs: nothing to wait for here.) */
    if (sys->loop_running && !sys->loop)
        fds[n++] = (struct pollfd){.fd = sys->loop_done_fd, .events = POLLIN};
    for (unsigned i = 0; i < sys->spec->component_count; i++) {
        if (sys->pids[i] <= 0 || !is_leader(sys, i))
            continue;
        if (sys->pidfds[i] < 0)
            all = false;
        else
            fds[n++] = (struct pollfd){.fd = sys->pidfds[i], .events = POLLIN};
    }
    uint64_t now = now_ms();
    int timeout = forever ? -1 : (int)(deadline > now ? deadline - now : 0);
    if (!all && (timeout < 0 || timeout > 1))
        timeout = 1;
    poll(fds, n, timeout);
}

bool lx_system_wait(lx_system *sys, int timeout_ms, lx_exit_report *report)
{
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
    while (any_running(sys)) {
        int i = reap_one(sys);
        if (i >= 0) {
            if (report)
                *report = sys->exits[i];
            return true;
        }
        if (timeout_ms >= 0 && now_ms() >= deadline)
            break;
        sleep_for_exit(sys, deadline, timeout_ms < 0);
    }
    if (report)
        memset(report, 0, sizeof *report);
    return false;
}

void lx_system_stop(lx_system *sys, int grace_ms)
{
    uint64_t one = 1;
    if (sys->loop_running && !sys->loop && write(sys->loop_stop_fd, &one, sizeof one) != sizeof one)
        perror("launcher: stopping its own loop");
    /* An inline loop runs only when asked to: it stops now. */
    if (sys->loop)
        reap_launcher_loop(sys, true);
    for (unsigned i = 0; i < sys->spec->component_count; i++)
        if (sys->pids[i] > 0 && is_leader(sys, i))
            kill(sys->pids[i], SIGTERM);
    uint64_t deadline = now_ms() + (uint64_t)grace_ms;
    while (any_running(sys) && now_ms() < deadline)
        if (reap_one(sys) < 0)
            sleep_for_exit(sys, deadline, false);
    for (unsigned i = 0; i < sys->spec->component_count; i++)
        if (sys->pids[i] > 0 && is_leader(sys, i)) {
            int status;
            kill(sys->pids[i], SIGKILL);
            if (waitpid(sys->pids[i], &status, 0) == sys->pids[i])
                record_exit(sys, i, status);
        }
    /* A thread cannot be killed: it stops when its loop next looks at the stop fd. */
    reap_launcher_loop(sys, true);
    release(sys);
}

void *lx_system_region(lx_system *sys, const char *name, size_t *size)
{
    int r = find_region(sys, name);
    if (r < 0)
        return NULL;
    if (size)
        *size = sys->regions[r].size;
    return sys->regions[r].base;
}

int lx_system_run(const lx_system_spec *spec, int timeout_ms, lx_exit_report *first)
{
    lx_system sys;
    lx_exit_report report;
    if (lx_system_start(&sys, spec) != 0)
        return -1;
    bool ended = lx_system_wait(&sys, timeout_ms, &report);
    if (!ended)
        fprintf(stderr, "launcher: no component ended within %d ms\n", timeout_ms);
    else if (report.signaled)
        fprintf(stderr, "launcher: component %s (pid %d) died: signal %d (%s)\n", report.component,
                (int)report.pid, report.code, strsignal(report.code));
    else if (report.code != 0)
        fprintf(stderr, "launcher: component %s (pid %d) exited with status %d\n", report.component,
                (int)report.pid, report.code);
    lx_system_stop(&sys, 2000);
    if (first)
        *first = report;
    return ended && !report.signaled && report.code == 0 ? 0 : 1;
}
