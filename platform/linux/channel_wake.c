/* channel_wake: the bells of this process's eventfds and bounded spinning (see
 * channel_wake.h for the protocol and why no wake-up is lost). */
#include "platform/linux/channel_wake.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One cache line each: a bell's words are written by its two threads, and a neighbour's
 * traffic should not slow a spinning waiter. */
typedef struct lx_bell {
    _Atomic uint32_t attached;   /* a thread of this process waits on the fd by the protocol */
    _Atomic uint32_t asleep;     /* that waiter has announced it is going to block */
    _Atomic uint32_t rung;       /* notified since the waiter last took it */
    _Atomic uint32_t local_peer; /* a thread of this process has rung it */
    _Atomic uint32_t waiting;    /* the waiter waits (spins or sleeps), it does not work */
    _Atomic int32_t cpu;         /* where the waiter last started to wait; -1: unknown */
} __attribute__((aligned(64))) lx_bell;

static lx_bell bells[LX_BELL_MAX_FD];
static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

/* A forked child has none of the waiting threads: its copies of the bells must not make it
 * skip an eventfd write. */
static void forget_bells_in_child(void) { memset(bells, 0, sizeof bells); }

static void install_fork_handler(void) { pthread_atfork(NULL, NULL, forget_bells_in_child); }

static lx_bell *bell_of(int fd) { return fd >= 0 && fd < LX_BELL_MAX_FD ? &bells[fd] : NULL; }

void lx_bell_attach(int fd)
{
    lx_bell *b = bell_of(fd);
    if (!b)
        return;
    pthread_once(&fork_handler_once, install_fork_handler);
    atomic_store(&b->asleep, 0);
    atomic_store(&b->local_peer, 0);
    atomic_store(&b->waiting, 0);
    atomic_store(&b->cpu, -1);
    atomic_store(&b->attached, 1);
}

void lx_bell_detach(int fd)
{
    lx_bell *b = bell_of(fd);
    if (!b)
        return;
    atomic_store(&b->attached, 0);
    atomic_store(&b->asleep, 0);
    atomic_store(&b->local_peer, 0);
    atomic_store(&b->rung, 0);
}

int lx_bell_ring(int fd)
{
    lx_bell *b = bell_of(fd);
    if (b && atomic_load_explicit(&b->attached, memory_order_acquire)) {
        if (!atomic_load_explicit(&b->local_peer, memory_order_relaxed))
            atomic_store_explicit(&b->local_peer, 1, memory_order_relaxed);
        atomic_store(&b->rung, 1);       /* N1 */
        if (!atomic_load(&b->asleep))    /* N2 */
            return 0;
    }
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one && errno != EAGAIN)
        return -1;
    return 0;
}

bool lx_bell_take(int fd)
{
    lx_bell *b = bell_of(fd);
    return b && atomic_load_explicit(&b->rung, memory_order_relaxed) && atomic_exchange(&b->rung, 0);
}

bool lx_bell_rung(int fd)
{
    lx_bell *b = bell_of(fd);
    return b && atomic_load(&b->rung); /* W2 */
}

void lx_bell_set_asleep(int fd, bool asleep)
{
    lx_bell *b = bell_of(fd);
    if (b)
        atomic_store(&b->asleep, asleep ? 1u : 0u); /* W1 */
}

bool lx_bell_local_peer(int fd)
{
    lx_bell *b = bell_of(fd);
    return b && atomic_load_explicit(&b->local_peer, memory_order_relaxed);
}

void lx_bell_set_waiting(int fd, bool waiting)
{
    lx_bell *b = bell_of(fd);
    if (!b)
        return;
    if (waiting)
        atomic_store_explicit(&b->cpu, sched_getcpu(), memory_order_relaxed);
    atomic_store_explicit(&b->waiting, waiting ? 1u : 0u, memory_order_relaxed);
}

/* The waiter last started to wait on another CPU than this thread's, or where is unknown. */
static bool runs_elsewhere(const lx_bell *b)
{
    int peer = atomic_load_explicit(&b->cpu, memory_order_relaxed);
    return peer < 0 || peer != sched_getcpu();
}

bool lx_bell_peer_may_answer(int fd)
{
    lx_bell *b = bell_of(fd);
    if (!b)
        return true;
    /* a peer that waits answers only for a ring it has not taken yet */
    if (atomic_load_explicit(&b->waiting, memory_order_relaxed) &&
        !atomic_load_explicit(&b->rung, memory_order_relaxed))
        return false;
    return runs_elsewhere(b);
}

bool lx_bell_peer_elsewhere(int fd)
{
    lx_bell *b = bell_of(fd);
    return !b || runs_elsewhere(b);
}

static _Atomic int64_t max_ns = -1;

void lx_spin_set_max_us(uint32_t us)
{
    atomic_store_explicit(&max_ns, us > 1000 ? 1000000 : (int64_t)us * 1000, memory_order_relaxed);
}

uint32_t lx_spin_max_ns(void)
{
    int64_t v = atomic_load_explicit(&max_ns, memory_order_relaxed);
    if (v < 0) {
        const char *text = getenv("ASYNCFAT_SPIN_US");
        long us = text && *text ? strtol(text, NULL, 10) : 50;
        v = us < 0 ? 0 : us > 1000 ? 1000000 : us * 1000;
        atomic_store_explicit(&max_ns, v, memory_order_relaxed);
    }
    return (uint32_t)v;
}

void lx_spin_init(lx_spin *spin) { *spin = (lx_spin){.budget_ns = lx_spin_max_ns()}; }

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

bool lx_spin_until(lx_spin *spin, int (*probe)(void *ctx), void *ctx)
{
    uint32_t max = lx_spin_max_ns();
    if (max == 0)
        return false;
    if (spin->budget_ns == 0 || spin->budget_ns > max)
        spin->budget_ns = max; /* a zero-initialised one, or the maximum changed */
    uint32_t budget = spin->misses && ++spin->waits % 8 == 0 ? max : spin->budget_ns;
    uint64_t start = now_ns();
    for (;;) {
        int seen = probe(ctx);
        if (seen == LX_SPIN_FOUND) {
            spin->misses = 0;
            spin->budget_ns = max;
            return true;
        }
        if (seen == LX_SPIN_GIVE_UP)
            return false;
        for (int i = 0; i < 8; i++)
            cpu_pause();
        if (now_ns() - start >= budget)
            break;
    }
    spin->misses++;
    spin->budget_ns = max >> (spin->misses < 4 ? spin->misses : 4);
    return false;
}

void lx_spin_slept(lx_spin *spin, uint64_t waited_ns)
{
    uint32_t max = lx_spin_max_ns();
    if (max == 0 || waited_ns > max)
        return;
    spin->misses = 0;
    spin->budget_ns = max;
}

typedef struct single_wait {
    int fd;
    int peer_fd;
    bool (*ready)(void *ctx);
    void *ctx;
} single_wait;

static bool rung_or_ready(single_wait *w) { return lx_bell_rung(w->fd) || (w->ready && w->ready(w->ctx)); }

static int single_probe(void *arg)
{
    single_wait *w = arg;
    if (rung_or_ready(w))
        return LX_SPIN_FOUND;
    return lx_bell_peer_elsewhere(w->peer_fd) ? 0 : LX_SPIN_GIVE_UP;
}

int lx_bell_wait(int fd, int peer_fd, int other_fd, int timeout_ms, lx_spin *spin, bool (*ready)(void *ctx),
                 void *ctx, uint64_t *woken)
{
    if (woken)
        *woken = 0;
    single_wait w = {fd, peer_fd, ready, ctx};
    if (lx_bell_take(fd) || (ready && ready(ctx)))
        return 1;
    lx_bell_set_waiting(fd, true);
    uint64_t spun_from = 0;
    if (timeout_ms != 0 && lx_bell_local_peer(fd) && lx_bell_peer_elsewhere(peer_fd)) {
        spun_from = now_ns();
        if (lx_spin_until(spin, single_probe, &w)) {
            lx_bell_set_waiting(fd, false);
            lx_bell_take(fd);
            return 1;
        }
    }
    lx_bell_set_asleep(fd, true);
    if (rung_or_ready(&w)) {
        lx_bell_set_asleep(fd, false);
        lx_bell_set_waiting(fd, false);
        lx_bell_take(fd);
        return 1;
    }
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = other_fd, .events = POLLIN}};
    int rc = poll(fds, other_fd >= 0 ? 2 : 1, timeout_ms);
    int saved = errno;
    lx_bell_set_asleep(fd, false);
    lx_bell_set_waiting(fd, false);
    lx_bell_take(fd);
    if (spun_from && rc > 0)
        lx_spin_slept(spin, now_ns() - spun_from);
    if (rc > 0 && (fds[0].revents & POLLIN)) {
        uint64_t count;
        if (read(fd, &count, sizeof count) == sizeof count && woken)
            *woken = count;
    }
    if (rc < 0) {
        errno = saved;
        return saved == EINTR ? 1 : -1;
    }
    return rc > 0 ? 1 : 0;
}
