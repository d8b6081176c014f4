/* The Linux runtime: the event loop that runs components (platform/component.h) on one
 * thread, with their shared regions and channels.
 *
 * A loop runs one component (a process of its own) or several that trust each other (one
 * process, one thread). A channel between two processes or threads is a pair of eventfds:
 * this side writes notify_fd, the peer writes wait_fd; the loop (epoll) reads a ready
 * wait_fd, which clears it, and calls notified(id) once for any number of notifications
 * since the last call. Each wait_fd's bell is attached (channel_wake.h): a peer that is a
 * thread of this process rings it, and writes the eventfd only once the loop has announced
 * that it sleeps; notifying such a peer likewise skips the write while it is awake. While
 * such a peer is awake on another CPU the loop spins briefly for its next ring (and polls
 * its descriptors) before it sleeps. A peer in another process sees no bell: every
 * notification is an eventfd write, as before. A channel between two components of the same loop has no eventfds:
 * component_notify marks the peer's channel pending, and the loop delivers it (one call of
 * notified for any number of notifications) when the running callback has returned, before
 * it waits for anything else: a deferred function call. The component API has no context
 * argument, so the loop tracks which component runs (around init, notified and the
 * callbacks of the descriptors it watched) and component_* answer for that one.
 *
 * A loop of its own process stops at SIGTERM; a loop on a thread of the launcher's process
 * at its stop eventfd. Linux-only components (the block driver) may add their own file
 * descriptors to the loop.
 *
 * A process learns its regions and channels either from the launcher directly (function
 * components, forked) or from the environment variable LX_COMPONENT_ENV (an exec'd program;
 * see lx_component_env_encode).
 */
#ifndef ASYNCFAT_PLATFORM_LINUX_RUNTIME_H
#define ASYNCFAT_PLATFORM_LINUX_RUNTIME_H

#include "platform/component.h"

#define LX_MAX_REGIONS 16u
#define LX_MAX_NAME 32u
#define LX_COMPONENT_ENV "ASYNCFAT_COMPONENT"

typedef struct lx_region {
    char name[LX_MAX_NAME];
    int fd;                 /* memfd; -1: private memory (each process maps its own) */
    size_t offset;          /* of the mapping in the memfd (a window of a larger region) */
    size_t size;            /* bytes */
    void *base;             /* where it is mapped, once mapped */
    bool populate;          /* every page mapped at start (lx_region_spec.populate) */
    bool launcher_private;  /* private memory the launcher mapped for a system that is all one
                               process: the loop neither maps nor unmaps it */
} lx_region;

typedef struct lx_channel_end {
    char name[LX_MAX_NAME];
    unsigned id;            /* the component's channel number */
    int notify_fd;          /* eventfd the peer waits on; -1 for a peer in the same loop */
    int wait_fd;            /* eventfd the peer notifies; -1 likewise */
    int local_peer;         /* the peer's index in this loop's components; -1: elsewhere */
    unsigned local_peer_id; /* the peer's number for this channel */
} lx_channel_end;

typedef struct lx_component_env {
    char name[LX_MAX_NAME];
    lx_region regions[LX_MAX_REGIONS];
    unsigned region_count;
    lx_channel_end channels[COMPONENT_MAX_CHANNELS];
    unsigned channel_count;
} lx_component_env;

typedef struct lx_component_entry {
    void (*init)(void);
    void (*notified)(unsigned channel);
    /* Optional, Linux only: a loop on a thread of a process that goes on (stop_fd given)
     * calls it when it ends, so the component gives back what init took (file
     * descriptors, memory); a process of its own just exits. */
    void (*fini)(void);
    /* Optional: when the component wants notified(COMPONENT_TIMER_CHANNEL), in
     * component_time_ns's clock (UINT64_MAX: never). Asked before the loop waits; the
     * wait ends at the earliest deadline, and the call comes once it has passed. */
    uint64_t (*deadline)(void);
} lx_component_entry;

#define LX_LOOP_MAX_COMPONENTS 8u

/* Map the regions, call init, then run the loop until SIGTERM or lx_runtime_stop.
 * Returns the exit status for the process (0 after a clean stop, 1 if setup failed). */
int lx_component_run(lx_component_env *env, lx_component_entry entry);

/* Run `count` components in this thread: map their regions (a private region two of them
 * name is mapped once), call each init in order, then deliver notifications until
 * lx_runtime_stop, SIGTERM (stop_fd -1: the loop owns its process) or stop_fd readable (an
 * eventfd: a loop on a thread of a process that goes on). Their channels to each other
 * have local_peer set (the launcher does that). Returns the status as lx_component_run. */
int lx_components_run(lx_component_env *const *envs, const lx_component_entry *entries, unsigned count,
                      int stop_fd);

/* The same loop driven by its caller, one step at a time (a client that runs its server
 * itself when it waits): lx_loop_open maps the regions and calls every init on the
 * calling thread, which becomes the loop's (NULL: no memory, or a bad count); a setup
 * failure leaves it stopped. lx_loop_run_once delivers what is pending and waits for one
 * batch of events (at most timeout_ms; -1: no limit, 0: none), and returns false once the
 * loop has stopped (lx_loop_deliver the same without waiting for events); lx_loop_status is then what lx_components_run would return.
 * lx_loop_close calls the finis (stop_fd given) and gives back what the loop took.
 * lx_loop_notify notifies `channel` as component number `component` of the loop, for code
 * of that component running outside the loop's callbacks. */
typedef struct lx_loop lx_loop;
lx_loop *lx_loop_open(lx_component_env *const *envs, const lx_component_entry *entries, unsigned count, int stop_fd);
bool lx_loop_run_once(lx_loop *loop, int timeout_ms);
/* Only what is pending (notifications between its components), no system call. */
bool lx_loop_deliver(lx_loop *loop);
int lx_loop_status(const lx_loop *loop);
void lx_loop_notify(lx_loop *loop, unsigned component, unsigned channel);
/* Let the loop poll its events for up to budget_ns before it sleeps, while recent waits
 * were that short (platform/linux/busy_poll.h); 0 (the default): sleep at once. */
void lx_loop_set_busy_poll(lx_loop *loop, uint64_t budget_ns);
void lx_loop_close(lx_loop *loop);

/* Call ready(ctx) whenever fd is readable (level-triggered; ready must consume it), as the
 * component that asked. Returns 0, or -1 when the loop is full or fd cannot be watched. */
int lx_runtime_watch_fd(int fd, void (*ready)(void *ctx), void *ctx);
/* The same, for a descriptor whose readiness can also be seen in memory (an io_uring's
 * completion queue): probe(ctx) says so without a system call, and the loop looks at it
 * between the polls of busy polling and spinning, and before it sleeps. */
int lx_runtime_watch_fd_probed(int fd, void (*ready)(void *ctx), bool (*probe)(void *ctx), void *ctx);

/* Leave the loop after the current callback; lx_component(s)_run returns `status`. */
void lx_runtime_stop(int status);

/* The command line of a component program (set by its main; argv[0] included), for
 * components configured by arguments. Empty until set. */
void lx_component_set_args(int argc, char **argv);
char **lx_component_args(int *argc);

/* Environment encoding for exec'd programs (a program runs alone in its loop, so no
 * channel has a local peer): writes "name;r=name,fd,offset,size;...;c=name,id,notify_fd,
 * wait_fd;..." into buf. Returns false if it does not fit. */
bool lx_component_env_encode(const lx_component_env *env, char *buf, size_t size);
/* Parses the encoding (as found in getenv(LX_COMPONENT_ENV)). Returns false if malformed. */
bool lx_component_env_decode(lx_component_env *env, const char *text);

#endif
