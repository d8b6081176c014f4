/* The launcher: starts a system of components from a small description, and watches them.
 *
 * Regions become memfds (zero-filled) mapped by every component that names them (or
 * windows of another region's memfd); in a system whose components all run in the
 * launcher's process (hosts and its loop), anonymous private memory the launcher maps once
 * (launcher.c: map_launcher_private), which is cheaper to fault in. A component is either a function pair in the
 * launcher's binary (forked) or a program (forked and exec'd, finding its environment in
 * LX_COMPONENT_ENV). Each runs in a process of its own, unless function components name
 * the same `process`: then they share one process and one thread (runtime.h). The process
 * the description names launcher_process is the launcher's own: its components run on a
 * thread that lx_system_start starts (after forking the others) and lx_system_stop ends,
 * with every signal blocked, so the launcher's threads go on as clients. Each channel joins
 * two components, each with its own channel number: through a pair of eventfds, or,
 * between two components of one process, as a deferred call with no file descriptor. Which
 * components share a process is the system's choice; their code is the same either way.
 * The launcher maps every region too, so a test can look inside.
 *
 * When a process ends (the launcher's thread: when its loop returns), lx_system_wait
 * reports it (exit status or signal); lx_system_stop sends SIGTERM to the rest (asks the
 * thread to stop), waits, and kills what is left. Both sleep on pidfds (and an eventfd for
 * the thread), so they return as soon as a process ends.
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_LAUNCHER_H
#define ASYNCFAT_PLATFORM_LINUX_LAUNCHER_H

#include "platform/linux/runtime.h"

#include <pthread.h>
#include <sys/types.h>

#define LX_MAX_COMPONENTS 16u
#define LX_MAX_CHANNELS 64u

typedef struct lx_region_spec {
    const char *name;
    size_t size;                    /* bytes, rounded up to pages */
    /* Not shared: every started component naming it gets its own zero-filled anonymous
     * memory (cheaper to fault in and to free than a memfd); the launcher and a host
     * component have no mapping of it. For memory one component keeps to itself. */
    bool private_memory;
    /* A window: bytes [offset, offset + size) of the (shared, earlier) region `within`,
     * page-aligned. A component mapping both sees the window inside the other's mapping,
     * so memory shared with one peer can be handed to another without a copy (a client's
     * share region inside the block data region: the device reads and writes it). */
    const char *within;
    size_t offset;
    /* Every process that maps it has all its pages mapped at start, in one call, instead of
     * taking a page fault at each page's first use (a fault costs tens of microseconds in
     * some virtual machines, and a cache touches its buffers at random): for a long-lived
     * system. Not for programs (exec'd components map theirs lazily). */
    bool populate;
} lx_region_spec;

typedef struct lx_channel_spec {
    const char *name;               /* what both ends call it (component_channel) */
    const char *a;                  /* component names and their channel numbers */
    unsigned a_id;
    const char *b;
    unsigned b_id;
} lx_channel_spec;

typedef struct lx_component_spec {
    const char *name;
    lx_component_entry entry;       /* a function component, or (entry.init NULL) ... */
    char *const *argv;              /* ... a program: argv[0] is its path, or (both NULL) */
                                    /* the host: the launcher process itself, not started */
    const char *const *regions;     /* names of the regions it maps, NULL-terminated */
    /* Function components naming the same process share it (started in the order they
     * are listed, one thread); NULL: a process of its own. A report about that process
     * names it by this name. */
    const char *process;
} lx_component_spec;

static inline bool lx_component_is_host(const lx_component_spec *c) { return !c->entry.init && !c->argv; }

typedef struct lx_system_spec {
    const lx_component_spec *components;
    unsigned component_count;
    const lx_region_spec *regions;
    unsigned region_count;
    const lx_channel_spec *channels;
    unsigned channel_count;
    const char *launcher_process;   /* a `process` run on a thread of the launcher; NULL: none */
    /* The launcher's process runs on the caller's thread instead, a step at a time
     * (lx_system_run_once), e.g. while a client there waits for its server. */
    bool launcher_inline;
    /* The regions of a one-process system in 4 KiB pages, without MADV_HUGEPAGE: for a
     * short command that touches few of their pages (fs_system_options.small_pages). */
    bool launcher_small_pages;
    /* The launcher's thread polls for up to this long before it sleeps
     * (lx_loop_set_busy_poll); 0: never. */
    uint64_t launcher_busy_poll_ns;
} lx_system_spec;

typedef struct lx_exit_report {
    const char *component;          /* NULL: nothing ended; for a shared process its name */
    pid_t pid;
    bool signaled;                  /* killed by signal `code`, else exited with `code` */
    int code;
} lx_exit_report;

typedef struct lx_system {
    const lx_system_spec *spec;
    lx_region regions[LX_MAX_REGIONS];
    pid_t pids[LX_MAX_COMPONENTS];  /* its process (shared ones alike); 0 once reaped */
    int pidfds[LX_MAX_COMPONENTS];  /* readable once the process has ended; on the first
                                       component of a shared process only; -1: none */
    lx_exit_report exits[LX_MAX_COMPONENTS]; /* each component's, its process's status */
    int channel_fds[LX_MAX_CHANNELS][2]; /* [0]: a notifies b, [1]: b notifies a; -1 for a
                                            channel inside one process */
    /* the launcher process's loop (spec->launcher_process) */
    pthread_t loop_thread;
    bool loop_running;              /* started, not yet joined */
    int loop_stop_fd, loop_done_fd; /* eventfds: ask the loop to stop; it has returned */
    int loop_ready_fd;      /* eventfd, during the start: the loop's inits have run */
    int loop_status;                /* what the loop returned */
    lx_component_env *loop_envs;
    lx_loop *loop;                  /* launcher_inline: the loop, run by lx_system_run_once */
    bool loop_ended;                /* launcher_inline: it stopped, not yet reported */
} lx_system;

/* Create the regions and channels and start every component. Returns 0, or -1 (with a
 * message on stderr) when the description is inconsistent or a resource cannot be made;
 * on failure nothing is left running. */
int lx_system_start(lx_system *sys, const lx_system_spec *spec);

/* Wait up to timeout_ms (-1: forever) for some process to end. Returns true and fills
 * *report when one did. */
bool lx_system_wait(lx_system *sys, int timeout_ms, lx_exit_report *report);

/* SIGTERM every running component, wait up to grace_ms, then SIGKILL; reap all and
 * release the regions and channels. Reports of every component stay in sys->exits. */
void lx_system_stop(lx_system *sys, int grace_ms);

/* The host component's environment (its channel ends, and its regions as the launcher
 * maps them), for a launcher that is itself a component of the system, e.g. a client.
 * False if `name` is not a host component. */
bool lx_system_host_env(lx_system *sys, const char *name, lx_component_env *env);

/* launcher_inline: run the launcher's process one step (deliver what is pending, then wait
 * at most timeout_ms for events; -1: no limit). False once it has stopped (then
 * lx_system_wait reports it). lx_system_loop gives the loop itself. */
bool lx_system_run_once(lx_system *sys, int timeout_ms);
lx_loop *lx_system_loop(lx_system *sys);

/* The launcher's own mapping of a region (NULL if unknown). */
void *lx_system_region(lx_system *sys, const char *name, size_t *size);

/* Start, wait for the first component to end (at most timeout_ms), print a line on
 * stderr if it failed, stop the rest. Returns 0 when the first to end exited with 0. */
int lx_system_run(const lx_system_spec *spec, int timeout_ms, lx_exit_report *first);

#endif
