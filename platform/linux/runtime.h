/* The Linux runtime of one component process: its shared regions, its channels and the
 * event loop that calls component_notified (platform/component.h).
 *
 * A channel end is two eventfds: this side writes notify_fd, the peer writes wait_fd. The
 * loop (epoll) reads a ready wait_fd, which clears it, and calls notified(id) once for any
 * number of notifications since the last call. SIGTERM ends the loop cleanly. Linux-only
 * components (the block driver) may add their own file descriptors to the loop.
 *
 * A process learns its regions and channels either from the launcher directly (a function
 * component, forked) or from the environment variable LX_COMPONENT_ENV (an exec'd program;
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
} lx_region;

typedef struct lx_channel_end {
    char name[LX_MAX_NAME];
    unsigned id;            /* the component's channel number */
    int notify_fd;          /* eventfd the peer waits on */
    int wait_fd;            /* eventfd the peer notifies */
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
} lx_component_entry;

/* Map the regions, call init, then run the loop until SIGTERM or lx_runtime_stop.
 * Returns the exit status for the process (0 after a clean stop, 1 if setup failed). */
int lx_component_run(lx_component_env *env, lx_component_entry entry);

/* Call ready(ctx) whenever fd is readable (level-triggered; ready must consume it).
 * Returns 0, or -1 when the loop is full or fd cannot be watched. */
int lx_runtime_watch_fd(int fd, void (*ready)(void *ctx), void *ctx);

/* Leave the loop after the current callback; lx_component_run returns `status`. */
void lx_runtime_stop(int status);

/* The command line of a component program (set by its main; argv[0] included), for
 * components configured by arguments. Empty until set. */
void lx_component_set_args(int argc, char **argv);
char **lx_component_args(int *argc);

/* Environment encoding for exec'd programs: writes "name;r=name,fd,size;...;c=name,id,
 * notify_fd,wait_fd;..." into buf. Returns false if it does not fit. */
bool lx_component_env_encode(const lx_component_env *env, char *buf, size_t size);
/* Parses the encoding (as found in getenv(LX_COMPONENT_ENV)). Returns false if malformed. */
bool lx_component_env_decode(lx_component_env *env, const char *text);

#endif
