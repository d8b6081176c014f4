/* `asyncfat mount`: arguments and options, the FUSE session on a server session, and
 * running in the background (see mount.h). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOUNT_SHARE_BYTES (32u << 20)
#define MOUNT_THREADS 32u

mount_context mount_ctx;

static const struct fuse_operations operations = {
    .init = mount_op_init,
    .getattr = mount_op_getattr,
    .open = mount_op_open,
    .create = mount_op_create,
    .release = mount_op_release,
    .read = mount_op_read,
    .write = mount_op_write,
    .truncate = mount_op_truncate,
    .fsync = mount_op_fsync,
    .unlink = mount_op_unlink,
    .mkdir = mount_op_mkdir,
    .rmdir = mount_op_rmdir,
    .rename = mount_op_rename,
    .opendir = mount_op_opendir,
    .releasedir = mount_op_releasedir,
    .readdir = mount_op_readdir,
    .fsyncdir = mount_op_fsyncdir,
    .statfs = mount_op_statfs,
    .utimens = mount_op_utimens,
    .chmod = mount_op_chmod,
    .chown = mount_op_chown,
};

static const char mount_usage[] = "IMAGE MOUNTPOINT [-f] [-o OPTIONS]";

static void mount_help(void)
{
    printf("usage: asyncfat mount %s\n\n"
           "Mount the FAT volume on IMAGE at MOUNTPOINT with FUSE. The driver and the\n"
           "server run as their own processes; this one is their client. Unmount with\n"
           "`fusermount3 -u MOUNTPOINT` or, in the foreground, Ctrl-C: the volume is\n"
           "synced and left clean.\n\n"
           "  -f            stay in the foreground\n"
           "  -o OPTIONS    comma-separated mount options, e.g. ro, allow_other\n"
           "                (ro also makes the server mount the volume read-only)\n\n"
           "ASYNCFAT_STATS=1 in the environment prints the number of server requests, and\n"
           "the most that were in flight at once, at unmount.\n",
           mount_usage);
}

typedef struct mount_request {
    const char *image;
    const char *mountpoint;
    bool foreground;
    bool read_only;
    char options[4096];      /* passed to FUSE; empty: none */
} mount_request;

static bool add_options(mount_request *m, const char *opts)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", opts);
    char *save = NULL;
    for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
        if (strcmp(o, "ro") == 0)
            m->read_only = true;
        else if (strcmp(o, "rw") == 0)
            m->read_only = false;
        size_t used = strlen(m->options);
        if (used + strlen(o) + 2 >= sizeof m->options)
            return false;
        snprintf(m->options + used, sizeof m->options - used, "%s%s", used ? "," : "", o);
    }
    return true;
}

/* Background mode: one byte to the waiting parent, 0 mounted or 1 failed. */
static void tell_parent(int *ready_fd, char status)
{
    if (*ready_fd < 0)
        return;
    ssize_t written = write(*ready_fd, &status, 1);
    AF_UNUSED(written); /* a parent that is gone has nothing to learn */
    close(*ready_fd);
    *ready_fd = -1;
}

/* Run the mount. ready_fd (background mode; -1 otherwise) learns whether the mount came
 * up, before this process detaches from the terminal. */
static int run_mount(const mount_request *m, int ready_fd)
{
    cli_session s;
    int rc = EXIT_FAILED;
    char status = 1;
    if (cli_session_open(&s, m->image, m->read_only, MOUNT_SHARE_BYTES) != 0)
        goto report;
    if (cli_interrupted) {
        rc = cli_session_close(&s) == 0 ? EXIT_INTERRUPTED : EXIT_FAILED;
        goto report;
    }
    mount_ctx.conn = &s.conn;
    mount_ctx.owner_uid = getuid();
    mount_ctx.owner_gid = getgid();

    char fsname[4200];
    snprintf(fsname, sizeof fsname, "fsname=asyncfat:%s,subtype=asyncfat", m->image);
    char *argv_fuse[8];
    int n = 0;
    argv_fuse[n++] = (char *)"asyncfat";
    argv_fuse[n++] = (char *)"-o";
    argv_fuse[n++] = fsname;
    if (m->options[0]) {
        argv_fuse[n++] = (char *)"-o";
        argv_fuse[n++] = (char *)m->options;
    }
    argv_fuse[n] = NULL;
    struct fuse_args args = FUSE_ARGS_INIT(n, argv_fuse);
    mount_ctx.mount_point = m->mountpoint;
    struct fuse *fuse = fuse_new(&args, &operations, sizeof operations, NULL);
    fuse_opt_free_args(&args);
    if (!fuse) {
        cli_error(m->mountpoint, "cannot set up FUSE (bad -o options?)");
        cli_session_close(&s);
        goto report;
    }
    if (fuse_mount(fuse, m->mountpoint) != 0) {
        cli_error(m->mountpoint, "cannot mount (is /dev/fuse usable, and the directory not busy?)");
        fuse_destroy(fuse);
        cli_session_close(&s);
        goto report;
    }
    struct fuse_session *session = fuse_get_session(fuse);
    /* libfuse installs its handlers only over the default action, and a shell starts
     * background jobs with SIGINT ignored: reset them, so a signal always unmounts. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    if (fuse_set_signal_handlers(session) != 0) {
        fuse_unmount(fuse);
        fuse_destroy(fuse);
        cli_session_close(&s);
        goto report;
    }
    status = 0;
    if (ready_fd >= 0) {
        tell_parent(&ready_fd, status);
        if (chdir("/") != 0)
            cli_error("/", "cannot change to the root directory: %s", strerror(errno));
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            if (null > STDERR_FILENO)
                close(null);
        }
    }
    /* Enough threads that a parallel workload keeps many server requests in flight. */
    struct fuse_loop_config *loop = fuse_loop_cfg_create();
    int loop_rc = -1;
    if (loop) {
        fuse_loop_cfg_set_max_threads(loop, MOUNT_THREADS);
        fuse_loop_cfg_set_idle_threads(loop, MOUNT_THREADS / 2);
        loop_rc = fuse_loop_mt(fuse, loop);
        fuse_loop_cfg_destroy(loop);
    }
    fuse_remove_signal_handlers(session);
    fuse_unmount(fuse);
    if (getenv("ASYNCFAT_STATS"))
        fprintf(stderr, "asyncfat: %llu requests, at most %u in flight at once\n", (unsigned long long)s.conn.calls,
                s.conn.max_pending);
    /* A signal that ended the loop comes back as its (positive) number: a clean stop. */
    rc = cli_session_close(&s) == 0 && loop_rc >= 0 ? EXIT_OK : EXIT_FAILED;
    fuse_destroy(fuse);
    attr_cache_free();
    known_names_drop_all();
    mount_ctx.conn = NULL;
report:
    tell_parent(&ready_fd, status);
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
            if (!add_options(&m, optarg)) {
                cli_error("mount", "mount options too long");
                return EXIT_USAGE;
            }
        } else {
            return cli_usage("mount", mount_usage);
        }
    }
    if (argc - optind != 2)
        return cli_usage("mount", mount_usage);
    m.image = argv[optind];
    struct stat st;
    if (stat(m.image, &st) != 0) {
        cli_error(m.image, "%s", strerror(errno));
        return EXIT_FAILED;
    }
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
