/* channel_wake: cheap notifications over a channel's eventfd when both ends are threads of
 * one process (the hosted layout's client and its driver+server thread).
 *
 * Every eventfd has a bell, an entry in a table of this process indexed by the fd. A thread
 * that waits on an fd and follows the protocol below attaches its bell (lx_bell_attach);
 * a notifier in the same process then sees it attached and, instead of always writing the
 * eventfd, rings the bell (sets `rung` in memory) and writes the eventfd only if the waiter
 * has announced that it is going to sleep. A notifier in another process has its own table,
 * where the fd is not attached: it always writes, so the separate-process layouts stay one
 * eventfd write per notification, as on Microkit. A forked child starts with no bell
 * attached.
 *
 * No lost wake-up. Notifier: (N1) rung = 1, then (N2) read asleep, and write the eventfd if
 * it is 1. Waiter, before blocking: (W1) asleep = 1, then (W2) read rung, and block on the
 * eventfd only if it is 0; after blocking it sets asleep = 0 and takes rung (an exchange
 * with 0, before it looks at the queues). All four are sequentially consistent, so they
 * fall in one total order that keeps each thread's program order. If N2 reads 0, N2 comes
 * before W1 (or the waiter is awake and will take rung before it next sleeps), so
 * N1 < N2 < W1 < W2 and W2 reads rung = 1 (or the waiter took it, and saw the work): the
 * waiter does not block. If N2 reads 1, the notifier writes the eventfd; its counter stays
 * set until read, so the waiter's poll returns at once or is woken. Data (queue entries)
 * written before N1 are visible after the waiter's exchange that reads 1 (it acquires).
 * A wake-up for nothing (the eventfd written while the waiter was still awake) only costs
 * one spurious return. Waiters must treat the eventfd being readable as a notification too:
 * a notifier of another process only writes it.
 *
 * Spinning: a waiter whose bell has been rung by a thread of this process (so the peer is
 * ours and the round trip short) first polls for a bounded time (lx_spin: at most
 * ASYNCFAT_SPIN_US microseconds, default 50, backing off while spins fail; 0 turns spinning
 * off) with a pause hint, and only then announces sleep; and only while the peer runs on
 * another CPU (as it last published: two threads on one CPU would only take turns
 * spinning). A client waits for answers to requests it has made, so its peer is either
 * working on them or waiting for a device on their behalf: the client spins in both cases,
 * and how long is learnt from how long its waits last (lx_spin), which is what tells a
 * fast device from a slow one. The loop's own spin (runtime.c) stops when every client
 * waits for it (lx_bell_peer_may_answer): then only a device can bring it work. A waiter
 * whose peers are other processes never spins, so the separate-process layouts behave as
 * before.
 *
 * Bells exist for fds below LX_BELL_MAX_FD; a larger fd has none and is always written.
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_CHANNEL_WAKE_H
#define ASYNCFAT_PLATFORM_LINUX_CHANNEL_WAKE_H

#include <stdbool.h>
#include <stdint.h>

#define LX_BELL_MAX_FD 1024

/* This thread waits on eventfd fd by the protocol above from now on (attach before the
 * first wait; stale state of an earlier fd with that number is cleared). Detach when no
 * one waits on it any more, before it is closed. */
void lx_bell_attach(int fd);
void lx_bell_detach(int fd);

/* Notify the waiter of eventfd fd: ring its bell, and write the eventfd unless a waiter of
 * this process is known to be awake. Returns 0, or -1 (errno) if the write failed (a
 * saturated counter, EAGAIN, counts as done: the waiter has plenty to wake for). */
int lx_bell_ring(int fd);

/* Waiter side, for a thread that waits on several bells at once (the component loop):
 * take (and clear) the rings since the last take; look without taking; announce that it
 * is going to sleep (asleep true, sequentially consistent: check lx_bell_rung on every bell
 * after announcing on all of them and before blocking) or awake again; whether a thread of
 * this process has rung it (spinning for it is worth it). */
bool lx_bell_take(int fd);
bool lx_bell_rung(int fd);
void lx_bell_set_asleep(int fd, bool asleep);
bool lx_bell_local_peer(int fd);
/* The waiter of fd publishes that it waits (spinning or asleep: it is not working on
 * anything), and the CPU it runs on, as it starts to wait; and that it works again. */
void lx_bell_set_waiting(int fd, bool waiting);
/* Notifier side: whether spinning for an answer from the waiter of fd can pay: it works,
 * or waits but has not yet taken our ring (else it waits for us, or for a device, and
 * another spinner spinning for it only burns a CPU), and it did not last run on this
 * thread's CPU (where it cannot run while we spin: the scheduler often puts two threads
 * that wake each other on one CPU). */
bool lx_bell_peer_may_answer(int fd);
/* Whether the waiter of fd last ran on another CPU than this thread (or it is not known):
 * spinning for it does not keep it from running. */
bool lx_bell_peer_elsewhere(int fd);

/* Bounded spinning that backs off. A spin ends when the work comes, when the probe gives
 * up (its peer will not answer soon), or after the budget. The budget is the maximum while
 * spins find their work; every spin that times out (the peer is busy for longer, or shares
 * our CPU and is not running) halves it, down to a sixteenth of the maximum, and one wait
 * in eight then spins the whole maximum to find out whether the round trips are short
 * again. A wait that slept after its spin and still ended within the maximum shows that a
 * whole spin would have caught it (a device slower than the halved budget, faster than
 * the maximum: an NVMe drive's 20-100 us): the next spin gets the maximum again. Waits
 * that last longer than the maximum (an SD card's millisecond) keep it small. */
typedef struct lx_spin {
    uint32_t budget_ns;
    uint32_t misses;        /* spins that timed out in a row */
    uint32_t waits;
} lx_spin;

#define LX_SPIN_FOUND 1     /* what a spin's probe returns: the work is there */
#define LX_SPIN_GIVE_UP (-1) /* the peer sleeps: stop spinning */

/* The maximum in nanoseconds: ASYNCFAT_SPIN_US (read once), default 50 us; the set call
 * overrides it for the whole process (tests and benchmarks compare). */
uint32_t lx_spin_max_ns(void);
void lx_spin_set_max_us(uint32_t us);
void lx_spin_init(lx_spin *spin);
/* Call probe(ctx) with a pause between calls until it returns LX_SPIN_FOUND (then true),
 * LX_SPIN_GIVE_UP, or the budget has passed (then false: the caller sleeps). Never spins
 * when the maximum is 0. */
bool lx_spin_until(lx_spin *spin, int (*probe)(void *ctx), void *ctx);
/* A wait that spun in vain and then slept ended waited_ns after it began. */
void lx_spin_slept(lx_spin *spin, uint64_t waited_ns);

/* The whole wait of a thread that waits on one bell (a client for its completions):
 * returns 1 at once if ready(ctx) (may be NULL) or the bell was rung; else spins (if the
 * peer is a thread of this process and, when peer_fd >= 0 (the fd this thread notifies the
 * peer on), lx_bell_peer_elsewhere) for ready or a ring; else announces sleep,
 * re-checks, and polls fd and other_fd (-1: none) for at most timeout_ms (-1: no limit).
 * The eventfd is read (cleared) if readable; *woken (may be NULL) gets its count. Returns 1
 * when there may be something to look at, 0 after the timeout, -1 (errno) if poll failed. */
int lx_bell_wait(int fd, int peer_fd, int other_fd, int timeout_ms, lx_spin *spin, bool (*ready)(void *ctx),
                 void *ctx, uint64_t *woken);

#endif
