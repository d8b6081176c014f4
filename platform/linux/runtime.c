/* The component event loop on Linux: epoll over channel eventfds, a signalfd for SIGTERM,
 * and any file descriptors Linux-only components add. One component per process, so the
 * runtime state is a handful of globals (the component API has no context argument). */
#include "platform/linux/runtime.h"

#include <errno.h>
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
#define TAG_SIGNAL 0xffffffffu
#define TAG_WATCH_BASE 0x10000u

static lx_component_env *current_env;
static int epoll_fd = -1;
static bool stopping;
static int stop_status;
static struct {
    int fd;
    void (*ready)(void *ctx);
    void *ctx;
} watched[MAX_WATCHED];
static unsigned watched_count;
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

void component_notify(unsigned channel)
{
    if (!current_env)
        return;
    for (unsigned i = 0; i < current_env->channel_count; i++) {
        lx_channel_end *c = &current_env->channels[i];
        if (c->id == channel) {
            uint64_t one = 1;
            /* EAGAIN means the counter is saturated: the peer has plenty to wake for */
            if (write(c->notify_fd, &one, sizeof one) < 0 && errno != EAGAIN)
                component_log("notify failed");
            return;
        }
    }
}

void *component_region(const char *name, size_t *size)
{
    if (!current_env)
        return NULL;
    for (unsigned i = 0; i < current_env->region_count; i++) {
        lx_region *r = &current_env->regions[i];
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
    if (!current_env)
        return COMPONENT_NO_CHANNEL;
    for (unsigned i = 0; i < current_env->channel_count; i++)
        if (strcmp(current_env->channels[i].name, name) == 0)
            return current_env->channels[i].id;
    return COMPONENT_NO_CHANNEL;
}

void component_log(const char *message)
{
    fprintf(stderr, "[%s] %s\n", current_env ? current_env->name : "?", message);
}

uint64_t component_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int epoll_add(int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

int lx_runtime_watch_fd(int fd, void (*ready)(void *ctx), void *ctx)
{
    if (epoll_fd < 0 || watched_count == MAX_WATCHED)
        return -1;
    if (epoll_add(fd, TAG_WATCH_BASE + watched_count) != 0)
        return -1;
    watched[watched_count].fd = fd;
    watched[watched_count].ready = ready;
    watched[watched_count].ctx = ctx;
    watched_count++;
    return 0;
}

void lx_runtime_stop(int status)
{
    stopping = true;
    stop_status = status;
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

static void dispatch(uint64_t tag, lx_component_entry entry)
{
    if (tag == TAG_SIGNAL) {
        lx_runtime_stop(0);
    } else if (tag >= TAG_WATCH_BASE) {
        unsigned w = (unsigned)(tag - TAG_WATCH_BASE);
        watched[w].ready(watched[w].ctx);
    } else {
        lx_channel_end *c = &current_env->channels[tag];
        uint64_t count;
        if (read(c->wait_fd, &count, sizeof count) == sizeof count)
            entry.notified(c->id);
    }
}

int lx_component_run(lx_component_env *env, lx_component_entry entry)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, NULL);
    int signal_fd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    current_env = env;
    if (signal_fd < 0 || epoll_fd < 0 || !map_regions(env) || epoll_add(signal_fd, TAG_SIGNAL) != 0) {
        component_log("runtime setup failed");
        return 1;
    }
    for (unsigned i = 0; i < env->channel_count; i++)
        if (epoll_add(env->channels[i].wait_fd, i) != 0) {
            component_log("cannot watch a channel");
            return 1;
        }
    entry.init();
    while (!stopping) {
        struct epoll_event events[16];
        int n = epoll_wait(epoll_fd, events, 16, -1);
        if (n < 0 && errno != EINTR) {
            component_log("epoll_wait failed");
            return 1;
        }
        for (int i = 0; i < n && !stopping; i++)
            dispatch(events[i].data.u64, entry);
    }
    return stop_status;
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
