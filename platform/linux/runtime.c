/* The component event loop on Linux: epoll over channel eventfds, a signalfd for SIGTERM
 * (or a stop eventfd), the file descriptors Linux-only components add, and the deferred
 * notifications between components of the same loop. The component API has no context
 * argument: the loop a thread runs is a thread-local pointer, and the loop knows which of
 * its components is running. */
#include "platform/linux/runtime.h"

#include "platform/linux/busy_poll.h"
#include "platform/linux/channel_wake.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_WATCHED 8
#define TAG_STOP 0xffffffffu
#define TAG_WATCH_BASE 0x10000u
#define TAG_CHANNEL(component, index) (((uint64_t)(component) << 8) | (index))

typedef struct lx_loop_component {
    lx_component_env *env;
    lx_component_entry entry;
    uint64_t pending;       /* bit per channel id: notified by a component of this loop */
} lx_loop_component;

struct lx_loop {
    lx_loop_component components[LX_LOOP_MAX_COMPONENTS];
    unsigned count;
    unsigned running;       /* the component whose code runs now */
    bool any_pending;
    int epoll_fd;
    int signal_fd;          /* made by the loop (SIGTERM), -1: none */
    bool stopping;
    int stop_status;
    struct {
        int fd;
        void (*ready)(void *ctx);
        bool (*probe)(void *ctx); /* NULL: only epoll knows */
        void *ctx;
        unsigned owner;
    } watched[MAX_WATCHED];
    unsigned watched_count;
    /* The channels with an eventfd: their bells (channel_wake.h), rung by a client of this
     * process instead of the eventfd when the loop is awake. */
    struct {
        int fd;
        unsigned component;
        unsigned channel;   /* its index in the component's env */
    } bells[LX_LOOP_MAX_COMPONENTS * COMPONENT_MAX_CHANNELS];
    unsigned bell_count;
    lx_spin spin;           /* for a client of this process that works (channel_wake.h) */
    lx_busy_poll busy_poll; /* for descriptors, while waits are short (busy_poll.h) */
    bool owns_process;      /* SIGTERM ends it, and the process with it: no fini */
    int status;             /* 1 if setup failed */
};

static _Thread_local lx_loop *this_loop;
static int program_argc;
static char **program_argv;

void lx_component_set_args(int argc, char **argv)
{
    program_argc = argc;
    program_argv = argv;
}

char **lx_component_args(int *argc)
{
    *argc = program_argc;
    return program_argv;
}

static lx_component_env *running_env(void)
{
    return this_loop ? this_loop->components[this_loop->running].env : NULL;
}

void component_notify(unsigned channel)
{
    lx_component_env *env = running_env();
    if (!env)
        return;
    for (unsigned i = 0; i < env->channel_count; i++) {
        lx_channel_end *c = &env->channels[i];
        if (c->id != channel)
            continue;
        if (c->local_peer >= 0) {
            this_loop->components[c->local_peer].pending |= 1ull << c->local_peer_id;
            this_loop->any_pending = true;
            return;
        }
        if (lx_bell_ring(c->notify_fd) != 0)
            component_log("notify failed");
        return;
    }
}

void *component_region(const char *name, size_t *size)
{
    lx_component_env *env = running_env();
    if (!env)
        return NULL;
    for (unsigned i = 0; i < env->region_count; i++) {
        lx_region *r = &env->regions[i];
        if (strcmp(r->name, name) == 0) {
            if (size)
                *size = r->size;
            return r->base;
        }
    }
    return NULL;
}

unsigned component_channel(const char *name)
{
    lx_component_env *env = running_env();
    if (!env)
        return COMPONENT_NO_CHANNEL;
    for (unsigned i = 0; i < env->channel_count; i++)
        if (strcmp(env->channels[i].name, name) == 0)
            return env->channels[i].id;
    return COMPONENT_NO_CHANNEL;
}

void component_log(const char *message)
{
    lx_component_env *env = running_env();
    fprintf(stderr, "[%s] %s\n", env ? env->name : "?", message);
}

uint64_t component_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int epoll_add(lx_loop *loop, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

int lx_runtime_watch_fd_probed(int fd, void (*ready)(void *ctx), bool (*probe)(void *ctx), void *ctx)
{
    lx_loop *loop = this_loop;
    if (!loop || loop->watched_count == MAX_WATCHED)
        return -1;
    if (epoll_add(loop, fd, TAG_WATCH_BASE + loop->watched_count) != 0)
        return -1;
    loop->watched[loop->watched_count].fd = fd;
    loop->watched[loop->watched_count].ready = ready;
    loop->watched[loop->watched_count].probe = probe;
    loop->watched[loop->watched_count].ctx = ctx;
    loop->watched[loop->watched_count].owner = loop->running;
    loop->watched_count++;
    return 0;
}

int lx_runtime_watch_fd(int fd, void (*ready)(void *ctx), void *ctx)
{
    return lx_runtime_watch_fd_probed(fd, ready, NULL, ctx);
}

void lx_runtime_stop(int status)
{
    if (!this_loop)
        return;
    this_loop->stopping = true;
    this_loop->stop_status = status;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Private memory (a region no other process maps): its owner, the server, initialises most
 * of its arena at start-up, so it is populated at once, in 2 MiB transparent huge pages
 * where the kernel allows: one fault and one clear instead of one per 4 KiB page, which
 * is a good part of a short command's run time. Without huge pages or MADV_POPULATE_WRITE
 * (old kernels) it still works, faulting pages in as they are used. */
static void *map_private(size_t size)
{
    const size_t huge = (size_t)2 << 20;
    size_t span = (size + huge - 1) & ~(huge - 1);
    uint8_t *raw = mmap(NULL, span + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return MAP_FAILED;
    uint8_t *start = (uint8_t *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    munmap(start + span, (size_t)(raw + huge - start));
    madvise(start, span, MADV_HUGEPAGE);
    madvise(start, span, MADV_POPULATE_WRITE);
    return start;
}

static void unmap_private(void *base, size_t size)
{
    const size_t huge = (size_t)2 << 20;
    munmap(base, (size + huge - 1) & ~(huge - 1));
}

/* Another region of env whose memfd range strictly holds region i's (a window), or -1. */
static int region_holding(const lx_component_env *env, unsigned i)
{
    const lx_region *w = &env->regions[i];
    struct stat ws, ps;
    if (w->fd < 0 || fstat(w->fd, &ws) != 0)
        return -1;
    for (unsigned k = 0; k < env->region_count; k++) {
        const lx_region *p = &env->regions[k];
        if (k == i || p->fd < 0 || p->size <= w->size || w->offset < p->offset ||
            w->offset + w->size > p->offset + p->size || fstat(p->fd, &ps) != 0)
            continue;
        if (ps.st_dev == ws.st_dev && ps.st_ino == ws.st_ino)
            return (int)k;
    }
    return -1;
}

/* Map every page of a region to be populated, once per mapping in this loop (a region
 * two components name, or a window inside a populated region, is done once). The call
 * allocates shared pages still missing and maps those another process allocated; a kernel
 * without MADV_POPULATE_WRITE (before 5.14) just faults them in as they are used. */
static void populate_regions(lx_loop *loop, lx_component_env *env)
{
    for (unsigned i = 0; i < env->region_count; i++) {
        lx_region *r = &env->regions[i];
        if (!r->populate || !r->base)
            continue;
        bool done = false;
        for (unsigned k = 0; k < loop->count && !done; k++) {
            const lx_component_env *other = loop->components[k].env;
            if (other == env)
                break;
            for (unsigned j = 0; j < other->region_count && !done; j++) {
                const lx_region *o = &other->regions[j];
                done = o->populate && o->base && (uint8_t *)r->base >= (uint8_t *)o->base &&
                       (uint8_t *)r->base + r->size <= (uint8_t *)o->base + o->size;
            }
        }
        for (unsigned j = 0; j < i && !done; j++) {
            const lx_region *o = &env->regions[j];
            done = o->populate && o->base && (uint8_t *)r->base >= (uint8_t *)o->base &&
                   (uint8_t *)r->base + r->size <= (uint8_t *)o->base + o->size;
        }
        if (!done)
            madvise(r->base, r->size, MADV_POPULATE_WRITE);
    }
}

static bool map_regions(lx_component_env *env)
{
    /* Regions first, then windows inside them, so the two share addresses as they do in
     * the launcher and in forked components. */
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < env->region_count; i++) {
            lx_region *r = &env->regions[i];
            int holder = r->base ? -1 : region_holding(env, i);
            if (r->base || (pass == 0) != (holder < 0))
                continue;
            if (holder >= 0) {
                r->base = (uint8_t *)env->regions[holder].base + (r->offset - env->regions[holder].offset);
                continue;
            }
            void *p = r->fd < 0 ? map_private(r->size)
                                : mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, (off_t)r->offset);
            if (p == MAP_FAILED)
                return false;
            r->base = p;
        }
    }
    return true;
}

/* A private region another component of the loop has mapped already is the same memory:
 * the loop is one process. */
static void share_private_regions(lx_loop *loop, lx_component_env *env)
{
    for (unsigned i = 0; i < env->region_count; i++) {
        lx_region *r = &env->regions[i];
        for (unsigned k = 0; k < loop->count && !r->base && r->fd < 0; k++) {
            lx_component_env *other = loop->components[k].env;
            for (unsigned j = 0; other != env && j < other->region_count; j++)
                if (other->regions[j].base && other->regions[j].fd < 0 && other->regions[j].size == r->size &&
                    strcmp(other->regions[j].name, r->name) == 0)
                    r->base = other->regions[j].base;
        }
    }
}

/* Call notified for every channel a component of the loop has marked, until none is. */
static void deliver_pending(lx_loop *loop)
{
    while (loop->any_pending && !loop->stopping) {
        loop->any_pending = false;
        for (unsigned k = 0; k < loop->count && !loop->stopping; k++) {
            lx_loop_component *c = &loop->components[k];
            while (c->pending && !loop->stopping) {
                unsigned id = (unsigned)__builtin_ctzll(c->pending);
                c->pending &= c->pending - 1;
                loop->running = k;
                c->entry.notified(id);
            }
        }
    }
}

static void dispatch(lx_loop *loop, uint64_t tag)
{
    if (tag == TAG_STOP) {
        lx_runtime_stop(0);
    } else if (tag >= TAG_WATCH_BASE) {
        unsigned w = (unsigned)(tag - TAG_WATCH_BASE);
        loop->running = loop->watched[w].owner;
        loop->watched[w].ready(loop->watched[w].ctx);
    } else {
        unsigned k = (unsigned)(tag >> 8);
        lx_loop_component *c = &loop->components[k];
        lx_channel_end *end = &c->env->channels[tag & 0xff];
        uint64_t count;
        loop->running = k;
        if (read(end->wait_fd, &count, sizeof count) == sizeof count) {
            lx_bell_take(end->wait_fd); /* this call answers the ring too */
            c->entry.notified(end->id);
        }
    }
    deliver_pending(loop);
}

/* The loop's own stop signal: SIGTERM through a signalfd, or the caller's eventfd. */
static int stop_source(lx_loop *loop, int stop_fd)
{
    if (stop_fd >= 0)
        return stop_fd;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    loop->signal_fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
    return loop->signal_fd;
}

static bool loop_setup(lx_loop *loop, int stop_fd)
{
    int stop = stop_source(loop, stop_fd);
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (stop < 0 || loop->epoll_fd < 0 || epoll_add(loop, stop, TAG_STOP) != 0) {
        component_log("runtime setup failed");
        return false;
    }
    for (unsigned k = 0; k < loop->count; k++) {
        lx_component_env *env = loop->components[k].env;
        loop->running = k;
        share_private_regions(loop, env);
        if (!map_regions(env)) {
            component_log("cannot map the regions");
            return false;
        }
        populate_regions(loop, env);
        for (unsigned i = 0; i < env->channel_count; i++) {
            const lx_channel_end *c = &env->channels[i];
            if (c->local_peer >= (int)loop->count || c->id >= COMPONENT_MAX_CHANNELS ||
                c->local_peer_id >= COMPONENT_MAX_CHANNELS ||
                (c->local_peer < 0 && epoll_add(loop, c->wait_fd, TAG_CHANNEL(k, i)) != 0)) {
                component_log("cannot watch a channel");
                return false;
            }
            if (c->local_peer < 0) {
                lx_bell_attach(c->wait_fd);
                loop->bells[loop->bell_count].fd = c->wait_fd;
                loop->bells[loop->bell_count].component = k;
                loop->bells[loop->bell_count++].channel = i;
            }
        }
    }
    return true;
}

/* A loop on a thread of a process that goes on gives back the private memory it mapped
 * (each region once: components of the loop share it). */
static void release_private_regions(lx_loop *loop)
{
    for (unsigned k = 0; k < loop->count; k++) {
        lx_component_env *env = loop->components[k].env;
        for (unsigned i = 0; i < env->region_count; i++) {
            lx_region *r = &env->regions[i];
            if (r->fd >= 0 || !r->base || r->launcher_private)
                continue;
            bool first = true;
            for (unsigned j = 0; j < k && first; j++) {
                const lx_component_env *other = loop->components[j].env;
                for (unsigned q = 0; q < other->region_count; q++)
                    first = first && other->regions[q].base != r->base;
            }
            if (first)
                unmap_private(r->base, r->size);
        }
    }
    for (unsigned k = 0; k < loop->count; k++) {
        lx_component_env *env = loop->components[k].env;
        for (unsigned i = 0; i < env->region_count; i++)
            if (env->regions[i].fd < 0 && !env->regions[i].launcher_private)
                env->regions[i].base = NULL;
    }
}

lx_loop *lx_loop_open(lx_component_env *const *envs, const lx_component_entry *entries, unsigned count, int stop_fd)
{
    if (count == 0 || count > LX_LOOP_MAX_COMPONENTS)
        return NULL;
    lx_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->count = count;
    loop->epoll_fd = loop->signal_fd = -1;
    loop->owns_process = stop_fd < 0;
    lx_spin_init(&loop->spin);
    for (unsigned k = 0; k < count; k++)
        loop->components[k] = (lx_loop_component){.env = envs[k], .entry = entries[k]};
    this_loop = loop;
    loop->status = 1;
    if (loop_setup(loop, stop_fd)) {
        /* every init before any notification, and the notifications inits made after them */
        for (unsigned k = 0; k < count && !loop->stopping; k++) {
            loop->running = k;
            entries[k].init();
        }
        deliver_pending(loop);
        loop->status = 0;
    } else {
        loop->stopping = true;
        loop->stop_status = 1;
    }
    return loop;
}

bool lx_loop_deliver(lx_loop *loop)
{
    this_loop = loop;
    deliver_pending(loop);
    return !loop->stopping;
}

/* Call notified(COMPONENT_TIMER_CHANNEL) for every component whose deadline has passed;
 * returns the earliest deadline still ahead (UINT64_MAX: none). */
static uint64_t fire_deadlines(lx_loop *loop)
{
    uint64_t earliest = UINT64_MAX;
    for (unsigned k = 0; k < loop->count && !loop->stopping; k++) {
        lx_loop_component *c = &loop->components[k];
        if (!c->entry.deadline)
            continue;
        loop->running = k;
        uint64_t at = c->entry.deadline();
        if (at == UINT64_MAX)
            continue;
        if (at <= component_time_ns()) {
            c->entry.notified(COMPONENT_TIMER_CHANNEL);
            deliver_pending(loop);
            at = c->entry.deadline();
        }
        earliest = at < earliest ? at : earliest;
    }
    return earliest;
}

/* The wait's timeout in milliseconds: the caller's, cut short by a deadline. */
static int wait_timeout(int timeout_ms, uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return timeout_ms;
    uint64_t now = component_time_ns();
    uint64_t ms = deadline > now ? (deadline - now + 999999u) / 1000000u : 0;
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    return timeout_ms >= 0 && (uint64_t)timeout_ms < ms ? timeout_ms : (int)ms;
}

/* Call notified for every channel whose bell a client of this process rang. */
static void take_bells(lx_loop *loop)
{
    for (unsigned b = 0; b < loop->bell_count && !loop->stopping; b++) {
        if (!lx_bell_take(loop->bells[b].fd))
            continue;
        lx_loop_component *c = &loop->components[loop->bells[b].component];
        loop->running = loop->bells[b].component;
        c->entry.notified(c->env->channels[loop->bells[b].channel].id);
        deliver_pending(loop);
    }
}

/* A watched descriptor whose probe sees it ready (an io_uring's completions, posted when
 * the kernel ran this thread's work at the end of its last system call): worth a look
 * before the next poll or a sleep, which epoll would report only then. */
static bool any_probe_ready(lx_loop *loop)
{
    for (unsigned w = 0; w < loop->watched_count; w++)
        if (loop->watched[w].probe && loop->watched[w].probe(loop->watched[w].ctx))
            return true;
    return false;
}

/* The ready callbacks of probed descriptors still ready after the turn's events (those
 * epoll reported have been served, and their probes say so). */
static void dispatch_probed(lx_loop *loop)
{
    for (unsigned w = 0; w < loop->watched_count && !loop->stopping; w++) {
        if (loop->watched[w].probe && loop->watched[w].probe(loop->watched[w].ctx)) {
            loop->running = loop->watched[w].owner;
            loop->watched[w].ready(loop->watched[w].ctx);
        }
    }
}

static bool any_bell_rung(lx_loop *loop)
{
    for (unsigned b = 0; b < loop->bell_count; b++)
        if (lx_bell_rung(loop->bells[b].fd))
            return true;
    return false;
}

/* Work this loop can see without a system call: a rung bell or a ready probe. */
static bool work_visible(lx_loop *loop) { return any_bell_rung(loop) || any_probe_ready(loop); }

/* A client of this process rang before, and works (or has an answer of ours to take) on
 * another CPU: it may ask again soon. */
static bool spin_worth(const lx_loop *loop)
{
    for (unsigned b = 0; b < loop->bell_count; b++) {
        const lx_loop_component *c = &loop->components[loop->bells[b].component];
        if (lx_bell_local_peer(loop->bells[b].fd) &&
            lx_bell_peer_may_answer(c->env->channels[loop->bells[b].channel].notify_fd))
            return true;
    }
    return false;
}

#define SPIN_POLL_NS 2000u /* how often a spinning loop looks at its file descriptors */

typedef struct loop_spin {
    lx_loop *loop;
    struct epoll_event *events;
    int n;                  /* events a zero-timeout epoll_wait found (or -1) */
    uint64_t next_poll;
} loop_spin;

/* Spinning, the loop looks for rung bells at every turn and at its file descriptors (the
 * driver's completions) every SPIN_POLL_NS, without blocking; it gives up once every
 * client of this process sleeps (they wait for it: only a device can bring work now). */
static int loop_probe(void *arg)
{
    loop_spin *s = arg;
    if (work_visible(s->loop))
        return LX_SPIN_FOUND;
    uint64_t now = component_time_ns();
    if (!s->next_poll)
        s->next_poll = now + SPIN_POLL_NS; /* a page-cache read is done at once, no event */
    if (now >= s->next_poll) {
        s->next_poll = now + SPIN_POLL_NS;
        s->n = epoll_wait(s->loop->epoll_fd, s->events, 16, 0);
        if (s->n != 0)
            return LX_SPIN_FOUND;
    }
    return spin_worth(s->loop) ? 0 : LX_SPIN_GIVE_UP;
}

/* Busy polling (platform/linux/busy_poll.h): while recent waits were short, look at the
 * descriptors and the bells for up to the budget before sleeping; true if something came
 * (*n: what epoll_wait found). Between looks the thread yields: on a busy machine whoever
 * else waits for this CPU (perhaps the very client it polls for) runs first. */
static bool busy_poll(lx_loop *loop, struct epoll_event *events, int timeout_ms, uint64_t deadline, int *n)
{
    uint64_t now = component_time_ns();
    uint64_t until = lx_busy_poll_until(&loop->busy_poll, now, deadline);
    if (timeout_ms > 0 && until > now + (uint64_t)timeout_ms * 1000000u)
        until = now + (uint64_t)timeout_ms * 1000000u;
    if (until <= now)
        return false;
    bool found;
    while (!(found = (*n = epoll_wait(loop->epoll_fd, events, 16, 0)) != 0 || work_visible(loop)) &&
           component_time_ns() < until)
        sched_yield();
    lx_busy_poll_found(&loop->busy_poll, found);
    return found;
}

bool lx_loop_run_once(lx_loop *loop, int timeout_ms)
{
    this_loop = loop;
    deliver_pending(loop);
    take_bells(loop);
    uint64_t deadline = fire_deadlines(loop);
    if (loop->stopping)
        return false;
    struct epoll_event events[16];
    int timeout = wait_timeout(timeout_ms, deadline);
    int n = 0;
    loop_spin spin = {loop, events, 0, 0};
    bool waits = timeout != 0;
    for (unsigned b = 0; b < loop->bell_count && waits; b++)
        lx_bell_set_waiting(loop->bells[b].fd, true);
    if (waits && spin_worth(loop) && lx_spin_until(&loop->spin, loop_probe, &spin)) {
        n = spin.n;
    } else if (waits && busy_poll(loop, events, timeout_ms, deadline, &n)) {
        /* something came while polling: n events, or a bell */
    } else if (waits) {
        /* Going to sleep (channel_wake.h): announce it on every bell, then look once more,
         * so a client that rang before it saw the announcement is not left unanswered. */
        for (unsigned b = 0; b < loop->bell_count; b++)
            lx_bell_set_asleep(loop->bells[b].fd, true);
        if (work_visible(loop))
            timeout = 0;
        n = epoll_wait(loop->epoll_fd, events, 16, timeout);
        for (unsigned b = 0; b < loop->bell_count; b++)
            lx_bell_set_asleep(loop->bells[b].fd, false);
        /* Woken to work: an event, or work the kernel queued for this thread (an
         * io_uring's: the wait ends with EINTR, and a probe sees what the work posted). */
        if (n > 0 || work_visible(loop))
            lx_busy_poll_woke(&loop->busy_poll, component_time_ns());
    } else {
        n = epoll_wait(loop->epoll_fd, events, 16, 0);
    }
    for (unsigned b = 0; b < loop->bell_count && waits; b++)
        lx_bell_set_waiting(loop->bells[b].fd, false);
    if (n < 0 && errno != EINTR) {
        component_log("epoll_wait failed");
        lx_runtime_stop(1);
        return false;
    }
    for (int i = 0; i < n && !loop->stopping; i++)
        dispatch(loop, events[i].data.u64);
    dispatch_probed(loop);
    take_bells(loop);
    fire_deadlines(loop);
    return !loop->stopping;
}

void lx_loop_set_busy_poll(lx_loop *loop, uint64_t budget_ns) { lx_busy_poll_init(&loop->busy_poll, budget_ns); }

int lx_loop_status(const lx_loop *loop) { return loop->stopping ? loop->stop_status : loop->status; }

void lx_loop_notify(lx_loop *loop, unsigned component, unsigned channel)
{
    if (component >= loop->count)
        return;
    lx_loop *was = this_loop;
    unsigned running = loop->running;
    this_loop = loop;
    loop->running = component;
    component_notify(channel);
    loop->running = running;
    this_loop = was;
}

void lx_loop_close(lx_loop *loop)
{
    if (!loop)
        return;
    this_loop = loop;
    for (unsigned b = 0; b < loop->bell_count; b++)
        lx_bell_detach(loop->bells[b].fd);
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    if (loop->signal_fd >= 0)
        close(loop->signal_fd);
    if (!loop->owns_process) {
        for (unsigned k = loop->count; k-- > 0;) {
            loop->running = k;
            if (loop->components[k].entry.fini)
                loop->components[k].entry.fini();
        }
        release_private_regions(loop);
    }
    this_loop = NULL;
    free(loop);
}

int lx_components_run(lx_component_env *const *envs, const lx_component_entry *entries, unsigned count,
                      int stop_fd)
{
    lx_loop *loop = lx_loop_open(envs, entries, count, stop_fd);
    if (!loop)
        return 1;
    while (lx_loop_run_once(loop, -1))
        continue;
    int status = lx_loop_status(loop);
    lx_loop_close(loop);
    return status;
}

int lx_component_run(lx_component_env *env, lx_component_entry entry)
{
    return lx_components_run(&env, &entry, 1, -1);
}

bool lx_component_env_encode(const lx_component_env *env, char *buf, size_t size)
{
    size_t used = 0;
    int n = snprintf(buf, size, "%s", env->name);
    for (unsigned i = 0; n >= 0 && (size_t)n < size - used && i < env->region_count; i++) {
        used += (size_t)n;
        const lx_region *r = &env->regions[i];
        n = snprintf(buf + used, size - used, ";r=%s,%d,%zu,%zu", r->name, r->fd, r->offset, r->size);
    }
    for (unsigned i = 0; n >= 0 && (size_t)n < size - used && i < env->channel_count; i++) {
        used += (size_t)n;
        const lx_channel_end *c = &env->channels[i];
        n = snprintf(buf + used, size - used, ";c=%s,%u,%d,%d", c->name, c->id, c->notify_fd, c->wait_fd);
    }
    return n >= 0 && (size_t)n < size - used;
}

/* Copies a name up to one of the stop characters; false if empty or too long. */
static bool take_name(const char **p, char *out, const char *stops)
{
    size_t n = strcspn(*p, stops);
    if (n == 0 || n >= LX_MAX_NAME)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

bool lx_component_env_decode(lx_component_env *env, const char *text)
{
    memset(env, 0, sizeof *env);
    const char *p = text;
    if (!take_name(&p, env->name, ";"))
        return false;
    while (*p == ';') {
        p++;
        int consumed = 0;
        if (p[0] == 'r' && p[1] == '=' && env->region_count < LX_MAX_REGIONS) {
            lx_region *r = &env->regions[env->region_count];
            p += 2;
            if (!take_name(&p, r->name, ",;") ||
                sscanf(p, ",%d,%zu,%zu%n", &r->fd, &r->offset, &r->size, &consumed) != 3)
                return false;
            env->region_count++;
        } else if (p[0] == 'c' && p[1] == '=' && env->channel_count < COMPONENT_MAX_CHANNELS) {
            lx_channel_end *c = &env->channels[env->channel_count];
            p += 2;
            c->local_peer = -1;
            if (!take_name(&p, c->name, ",;") ||
                sscanf(p, ",%u,%d,%d%n", &c->id, &c->notify_fd, &c->wait_fd, &consumed) != 3)
                return false;
            env->channel_count++;
        } else {
            return false;
        }
        p += consumed;
    }
    return *p == '\0';
}
