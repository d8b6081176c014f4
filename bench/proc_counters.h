/* proc_counters: what a set of processes spent while a benchmark ran, per request: wake-ups
 * (voluntary context switches: a thread went to sleep and was woken), system calls, page
 * faults and CPU time, summed over every thread of every process in the set.
 *
 * Wake-ups, faults and CPU time come from /proc (always there); system calls from a perf counter
 * on the raw_syscalls:sys_enter tracepoint per thread, which needs perf_event_open
 * (root, or perf_event_paranoid <= 1): without it syscalls reads UINT64_MAX. Threads that
 * start after proc_counters_open are not counted (io_uring's kernel workers, say).
 */
#ifndef ASYNCFAT_BENCH_PROC_COUNTERS_H
#define ASYNCFAT_BENCH_PROC_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_COUNTERS_MAX_THREADS 64u

typedef struct proc_counts {
    uint64_t wakeups;       /* voluntary context switches */
    uint64_t switches;      /* all context switches */
    uint64_t syscalls;      /* UINT64_MAX: not available */
    uint64_t cpu_ns;
    uint64_t faults;        /* minor page faults */
} proc_counts;

typedef struct proc_counters {
    pid_t tids[PROC_COUNTERS_MAX_THREADS];
    int syscall_fds[PROC_COUNTERS_MAX_THREADS]; /* -1: no counter */
    unsigned count;
} proc_counters;

/* Watch every thread of the given processes (duplicates are counted once). */
void proc_counters_open(proc_counters *c, const pid_t *pids, unsigned pid_count);
void proc_counters_close(proc_counters *c);
/* Totals since the threads started (syscalls: since open). */
proc_counts proc_counters_read(const proc_counters *c);
/* b - a, keeping UINT64_MAX for what is not available. */
proc_counts proc_counts_diff(proc_counts b, proc_counts a);

#endif
