/* proc_counters: see proc_counters.h. */
#include "bench/proc_counters.h"

#include <dirent.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The tracepoint's id, from tracefs (-1: not readable). */
static long syscall_tracepoint_id(void)
{
    static const char *const paths[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                                        "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
    for (unsigned i = 0; i < 2; i++) {
        FILE *f = fopen(paths[i], "r");
        long id = -1;
        if (!f)
            continue;
        if (fscanf(f, "%ld", &id) != 1)
            id = -1;
        fclose(f);
        if (id >= 0)
            return id;
    }
    return -1;
}

static int open_syscall_counter(pid_t tid, long id)
{
    if (id < 0)
        return -1;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.config = (uint64_t)id;
    attr.exclude_kernel = 0;
    return (int)syscall(SYS_perf_event_open, &attr, tid, -1, -1, 0);
}

static bool known(const proc_counters *c, pid_t tid)
{
    for (unsigned i = 0; i < c->count; i++)
        if (c->tids[i] == tid)
            return true;
    return false;
}

void proc_counters_open(proc_counters *c, const pid_t *pids, unsigned pid_count)
{
    memset(c, 0, sizeof *c);
    long id = syscall_tracepoint_id();
    for (unsigned p = 0; p < pid_count; p++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pids[p]);
        DIR *dir = opendir(path);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) && c->count < PROC_COUNTERS_MAX_THREADS) {
            pid_t tid = (pid_t)atoi(e->d_name);
            if (tid <= 0 || known(c, tid))
                continue;
            c->tids[c->count] = tid;
            c->syscall_fds[c->count] = open_syscall_counter(tid, id);
            c->count++;
        }
        closedir(dir);
    }
}

void proc_counters_close(proc_counters *c)
{
    for (unsigned i = 0; i < c->count; i++)
        if (c->syscall_fds[i] >= 0)
            close(c->syscall_fds[i]);
    c->count = 0;
}

static void read_thread(pid_t tid, proc_counts *sum)
{
    char path[96], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)tid, (int)tid);
    FILE *f = fopen(path, "r");
    if (f) {
        unsigned long long n;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1) {
                sum->wakeups += n;
                sum->switches += n;
            } else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1) {
                sum->switches += n;
            }
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)tid, (int)tid);
    f = fopen(path, "r");
    if (f) {
        char *p = fgets(line, sizeof line, f) ? strrchr(line, ')') : NULL;
        unsigned long long minflt;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %llu", &minflt) == 1)
            sum->faults += minflt;
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)tid, (int)tid);
    f = fopen(path, "r");
    if (f) {
        unsigned long long ns;
        if (fscanf(f, "%llu", &ns) == 1)
            sum->cpu_ns += ns;
        fclose(f);
    }
}

proc_counts proc_counters_read(const proc_counters *c)
{
    proc_counts sum = {0, 0, 0, 0, 0};
    for (unsigned i = 0; i < c->count; i++) {
        read_thread(c->tids[i], &sum);
        uint64_t n;
        if (c->syscall_fds[i] < 0 || read(c->syscall_fds[i], &n, sizeof n) != sizeof n)
            sum.syscalls = UINT64_MAX;
        else if (sum.syscalls != UINT64_MAX)
            sum.syscalls += n;
    }
    return sum;
}

proc_counts proc_counts_diff(proc_counts b, proc_counts a)
{
    proc_counts d = {b.wakeups - a.wakeups, b.switches - a.switches, UINT64_MAX, b.cpu_ns - a.cpu_ns,
                     b.faults - a.faults};
    if (a.syscalls != UINT64_MAX && b.syscalls != UINT64_MAX)
        d.syscalls = b.syscalls - a.syscalls;
    return d;
}
