/* busy_poll: when an event loop should poll for a while instead of going to sleep.
 *
 * Waking a sleeping thread costs microseconds of the waker's and the sleeper's CPU (the
 * scheduler on both sides, an inter-processor interrupt, more under a hypervisor), and at
 * one request in flight it is paid on every request: the answer goes out, the thread
 * sleeps, and the client's next request wakes it a few microseconds later. Polling for a
 * short time instead catches that next request awake. Polling costs the CPU it spins
 * for, so it is only worth it when the next event is likely to come soon: the loop polls
 * before a wait only while recent waits were short. A wait that slept and ended within the
 * budget arms polling; a poll that ran out its budget disarms it, so a loop that goes idle
 * spends at most one budget, and one whose events come further apart than the budget
 * never polls.
 *
 * Pure bookkeeping on times the caller passes (nanoseconds): no clock, no system calls. */
#ifndef ASYNCFAT_PLATFORM_LINUX_BUSY_POLL_H
#define ASYNCFAT_PLATFORM_LINUX_BUSY_POLL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct lx_busy_poll {
    uint64_t budget_ns;     /* 0: never poll */
    uint64_t idle_since;    /* when the loop last ran out of work */
    bool armed;             /* the next wait polls first */
} lx_busy_poll;

void lx_busy_poll_init(lx_busy_poll *s, uint64_t budget_ns);

/* The loop has run out of work at `now` and is about to wait for events until `deadline`
 * (UINT64_MAX: none). Returns the time until which it should poll before sleeping; a
 * value <= now means sleep at once. */
uint64_t lx_busy_poll_until(lx_busy_poll *s, uint64_t now, uint64_t deadline);

/* What the poll found: events (polling stays armed) or none before its time ran out
 * (disarmed: the loop sleeps and the next waits sleep at once until one is short). */
void lx_busy_poll_found(lx_busy_poll *s, bool found);

/* A sleeping wait ended with events at `now`: a short one arms polling. */
void lx_busy_poll_woke(lx_busy_poll *s, uint64_t now);

#endif
