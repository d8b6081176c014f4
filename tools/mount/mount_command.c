/* `asyncfat mount`: arguments and options, the system the mount runs in, signals, and
 * running in the background (see mount.h). */
#include "tools/mount/mount.h"
#include "tools/offline_volume.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOUNT_SHARE_BYTES (32u << 20)

static const char mount_usage[] = "IMAGE MOUNTPOINT [-f] [-o OPTIONS]";

/* Set by the signal handler: the unmount was asked for by a signal (Ctrl-C). */
static volatile sig_atomic_t stop_signalled;

static void mount_help(void)
{
    printf("usage: asyncfat mount %s\n\n"
           "Mount the FAT volume on IMAGE at MOUNTPOINT with FUSE. The driver, the server\n"
           "and the mount share one thread of this process. Unmount with\n"
           "`fusermount3 -u MOUNTPOINT` or, in the foreground, Ctrl-C: the volume is\n"
           "synced and left clean.\n\n"
           "IMAGE may be IMAGE@N (partition N) or IMAGE@@OFFSET, as for every subcommand.\n\n"
           "  -f            stay in the foreground\n"
           "  -o OPTIONS    comma-separated mount options, e.g. ro, allow_other\n"
           "                (ro also makes the server mount the volume read-only), and\n"
           "                vfat's tz=UTC (or tz=local, tz=+05:30) and time_offset=MIN:\n"
           "                the volume's times are local time (the default) or this zone's;\n"
           "                max_open=N: at most N files open at once (EMFILE beyond; by\n"
           "                default as many as memory allows)\n\n"
           "                discard: freed clusters are passed to the device (holes\n"
           "                punched in an image file, BLKDISCARD on a block device), as\n"
           "                vfat's discard\n"
           "                writeback=SECONDS: changes are written back and made durable\n"
           "                once they are this old (default 5; 0: only at fsync, sync of\n"
           "                a directory, and unmount)\n"
           "                busy_poll=MICROSECONDS: while requests come this close together,\n"
           "                wait for the next one awake, polling, this long before\n"
           "                sleeping (default 100; 0: always sleep)\n"
           "                io_uring=0: read requests from /dev/fuse even where the kernel\n"
           "                offers FUSE over io_uring (Linux 6.14+, with the fuse module's\n"
           "                enable_uring parameter set; taken by default then)\n\n"
           "sync(2) does not reach a FUSE file system: `sync MOUNTPOINT` (an fsync of the\n"
           "directory) makes every change durable at once.\n\n"
           "ASYNCFAT_STATS=1 in the environment prints the number of server requests, and\n"
           "the most that were in flight at once, at unmount.\n",
           mount_usage);
}

typedef struct mount_request {
    const char *image;         /* as named */
    cli_image resolved;        /* its file and volume (partition, offset, time zone) */
    const char *mountpoint;
    bool foreground;
    bool read_only;
    bool zone_given;           /* tz= or time_offset= */
    uint32_t max_open;         /* max_open=; 0: as memory allows */
    bool discard;              /* discard: freed clusters are punched out of the image */
    int32_t writeback_ms;      /* fs_system_options's */
    int32_t busy_poll_us;      /* fs_system_options's */
    bool no_io_uring;          /* io_uring=0 */
    int32_t time_offset_minutes;
    char options[4096];      /* passed to FUSE; empty: none */
} mount_request;

/* The options that are the mount's own (not FUSE's): true if o is one (taken, or *bad set
 * when its value is wrong). */
static bool take_own_option(mount_request *m, const char *o, bool *bad)
{
    if (strncmp(o, "tz=", 3) == 0) {
        *bad = !cli_parse_zone(o + 3, &m->time_offset_minutes);
    } else if (strncmp(o, "time_offset=", 12) == 0) {
        *bad = !cli_parse_minutes(o + 12, &m->time_offset_minutes);
    } else if (strcmp(o, "discard") == 0) {
        m->discard = true;
        return true;
    } else if (strncmp(o, "writeback=", 10) == 0) {
        char *end;
        errno = 0;
        double sec = strtod(o + 10, &end);
        *bad = errno || end == o + 10 || *end || !(sec >= 0 && sec <= 86400);
        int32_t ms = *bad ? 0 : (int32_t)(sec * 1000 + 0.5);
        m->writeback_ms = ms == 0 ? -1 : ms;
        return true;
    } else if (strncmp(o, "busy_poll=", 10) == 0) {
        char *end;
        errno = 0;
        unsigned long us = strtoul(o + 10, &end, 10);
        *bad = errno || end == o + 10 || *end || o[10] == '-' || us > 1000000;
        m->busy_poll_us = *bad || us == 0 ? -1 : (int32_t)us;
        return true;
    } else if (strncmp(o, "io_uring=", 9) == 0) {
        *bad = strcmp(o + 9, "0") != 0 && strcmp(o + 9, "1") != 0;
        m->no_io_uring = strcmp(o + 9, "0") == 0;
        return true;
    } else if (strncmp(o, "max_open=", 9) == 0) {
        char *end;
        errno = 0;
        unsigned long n = strtoul(o + 9, &end, 10);
        *bad = errno || end == o + 9 || *end || o[9] == '-' || n > UINT32_MAX;
        m->max_open = (uint32_t)n;
        return true;
    } else {
        return false;
    }
    m->zone_given = true;
    return true;
}

/* Add -o's options: the mount's own are taken, the rest kept for FUSE. Returns 0, or
 * EXIT_USAGE after a message. */
static int add_options(mount_request *m, const char *opts)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", opts);
    char *save = NULL;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        bool bad = false;
        if (take_own_option(m, o, &bad)) {
            if (bad) {
                if (strncmp(o, "max_open=", 9) == 0)
                    cli_error("mount", "-o %s: not a number of files", o);
                else if (strncmp(o, "writeback=", 10) == 0)
                    cli_error("mount", "-o %s: writeback= takes seconds, 0 to 86400", o);
                else if (strncmp(o, "busy_poll=", 10) == 0)
                    cli_error("mount", "-o %s: busy_poll= takes microseconds, 0 to 1000000", o);
                else if (strncmp(o, "io_uring=", 9) == 0)
                    cli_error("mount", "-o %s: io_uring= takes 0 or 1", o);
                else
                    cli_error("mount", "-o %s: not a time zone (tz=UTC, tz=local, tz=+05:30; time_offset=MINUTES)", o);
                return EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(o, "ro") == 0)
            m->read_only = true;
        else if (strcmp(o, "rw") == 0)
            m->read_only = false;
        size_t used = strlen(m->options);
        if (used + strlen(o) + 2 >= sizeof m->options) {
            cli_error("mount", "mount options too long");
            return EXIT_USAGE;
        }
        snprintf(m->options + used, sizeof m->options - used, "%s%s", used ? "," : "", o);
    }
    return 0;
}

/* Signals reach this (the main) thread: the loop's thread blocks them all. Each asks the
 * mount for an unmount (its stop eventfd; write is async-signal-safe). */
static void on_signal(int sig)
{
    AF_UNUSED(sig);
    stop_signalled = 1;
    uint64_t one = 1;
    ssize_t written = write(mount_ctx.stop_fd, &one, sizeof one);
    AF_UNUSED(written);
}

static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* A shell starts background jobs with SIGINT ignored: set it anyway, so a signal
     * always unmounts. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Run the mount: the driver, the server and the mount (tools/mount/mount_loop.c) on one
 * thread of this process, until the mount ends. ready_fd (background mode; -1 otherwise)
 * learns whether the mount came up, before this process detaches from the terminal. */
static int run_mount(const mount_request *m, int ready_fd)
{
    memset(&mount_ctx, 0, sizeof mount_ctx);
    mount_ctx.owner_uid = getuid();
    mount_ctx.owner_gid = getgid();
    mount_ctx.image = m->image;
    mount_ctx.volume = &m->resolved;
    mount_ctx.mount_point = m->mountpoint;
    mount_ctx.fuse_options = m->options;
    mount_ctx.read_only = m->read_only;
    mount_ctx.max_open = m->max_open;
    mount_ctx.io_uring = !m->no_io_uring;
    mount_ctx.ready_fd = ready_fd;
    mount_ctx.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (mount_ctx.stop_fd < 0) {
        cli_error("mount", "eventfd: %s", strerror(errno));
        return EXIT_FAILED;
    }
    catch_stop_signals();
    fs_system system;
    fs_system_options o = {
        .image_path = m->resolved.file,
        .volume = m->resolved.volume,
        .read_only = m->read_only,
        .share_bytes = MOUNT_SHARE_BYTES + fuse_ring_share_bytes(!m->no_io_uring),
        .populate = true, /* a mount lives long: its pages are mapped once, at start */
        .writeback_ms = m->writeback_ms,
        .busy_poll_us = m->busy_poll_us,
        .client_component = {mount_component_init, mount_component_notified, mount_component_fini, NULL},
    };
    int rc = EXIT_FAILED;
    if (fs_system_start(&system, &o) != 0) {
        cli_error(m->image, "cannot start the file-system server");
    } else {
        lx_exit_report report;
        lx_system_wait(&system.sys, -1, &report);
        bool stopped = fs_system_stop(&system, 2000) == 0;
        rc = report.component && !report.signaled ? report.code : EXIT_FAILED;
        /* Ctrl-C in the foreground: say what it did (DEINITIALISE succeeded, so the server
         * synced and left the volume clean, and the system stopped). */
        if (stop_signalled && rc == EXIT_OK && stopped && ready_fd < 0)
            fprintf(stderr, "asyncfat: %s: unmounted, volume clean\n", m->mountpoint);
    }
    /* A mount that failed before it came up tells the parent so (if nobody has). */
    if (mount_ctx.ready_fd >= 0) {
        char status = 1;
        ssize_t written = write(mount_ctx.ready_fd, &status, 1);
        AF_UNUSED(written);
        close(mount_ctx.ready_fd);
        mount_ctx.ready_fd = -1;
    }
    close(mount_ctx.stop_fd);
    return rc;
}

/* Background mode: the parent returns once the child has mounted (0) or failed (1),
 * so errors reach the caller's terminal and exit status. */
static int run_in_background(const mount_request *m)
{
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) {
        cli_error("mount", "pipe: %s", strerror(errno));
        return EXIT_FAILED;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        cli_error("mount", "fork: %s", strerror(errno));
        return EXIT_FAILED;
    }
    if (pid == 0) {
        close(pipe_fds[0]);
        setsid();
        _exit(run_mount(m, pipe_fds[1]));
    }
    close(pipe_fds[1]);
    char status = 1;
    ssize_t got;
    do
        got = read(pipe_fds[0], &status, 1);
    while (got < 0 && errno == EINTR);
    close(pipe_fds[0]);
    return got == 1 && status == 0 ? EXIT_OK : EXIT_FAILED;
}

int cmd_mount(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        mount_help();
        return EXIT_OK;
    }
    mount_request m;
    memset(&m, 0, sizeof m);
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "fo:")) != -1) {
        if (ch == 'f') {
            m.foreground = true;
        } else if (ch == 'o') {
            int rc = add_options(&m, optarg);
            if (rc)
                return rc;
        } else {
            return cli_usage("mount", mount_usage);
        }
    }
    if (argc - optind != 2)
        return cli_usage("mount", mount_usage);
    m.image = argv[optind];
    if (!cli_image_resolve(m.image, &m.resolved)) {
        cli_location none;
        memset(&none, 0, sizeof none);
        return cli_fail_not_image(m.image, &none);
    }
    if (m.zone_given)
        m.resolved.volume.time_offset_minutes = m.time_offset_minutes;
    m.resolved.volume.discard = m.discard;
    /* Named as the user named it; the server's own check would name the absolute path. */
    if (offline_volume_in_use(m.resolved.file, !m.read_only))
        return EXIT_FAILED;
    /* Absolute, since the background process leaves the working directory. */
    static char image_file[PATH_MAX];
    if (!realpath(m.resolved.file, image_file)) {
        cli_error(m.image, "%s", cli_errno_text(errno));
        return EXIT_FAILED;
    }
    snprintf(m.resolved.file, sizeof m.resolved.file, "%s", image_file);
    struct stat st;
    /* Absolute, since the background process leaves the working directory. */
    static char mountpoint[PATH_MAX];
    if (!realpath(argv[optind + 1], mountpoint) || stat(mountpoint, &st) != 0) {
        cli_error(argv[optind + 1], "%s", strerror(errno));
        return EXIT_FAILED;
    }
    m.mountpoint = mountpoint;
    if (!S_ISDIR(st.st_mode)) {
        cli_error(m.mountpoint, "not a directory");
        return EXIT_FAILED;
    }
    return m.foreground ? run_mount(&m, -1) : run_in_background(&m);
}
