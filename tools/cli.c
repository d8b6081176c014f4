/* Shared pieces of the asyncfat command: messages, arguments, signals, sessions. */
#include "tools/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t cli_interrupted;

/* The first signal asks the command to stop between requests and leave the volume clean;
 * a command blocked where it does not look (a signal just before a blocking read) still
 * ends CLI_INTERRUPT_GRACE_S later (SIGALRM's default action), and a second signal ends it
 * at once. */
static void on_signal(int sig)
{
    if (cli_interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    cli_interrupted = sig;
    alarm(CLI_INTERRUPT_GRACE_S);
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_error(const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "asyncfat: %s: ", what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail_status(const char *image, const char *path, fs_status st)
{
    char what[8300];
    snprintf(what, sizeof what, "%s:%s", image, path);
    cli_error(what, "%s", fs_status_string(st));
    return EXIT_FAILED;
}

int cli_fail_errno(const char *path, int err)
{
    cli_error(path, "%s", strerror(err));
    return EXIT_FAILED;
}

int cli_usage(const char *cmd, const char *usage)
{
    fprintf(stderr, "usage: asyncfat %s %s\n(asyncfat %s --help for more)\n", cmd, usage, cmd);
    return EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static bool is_image_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

static void set_image_path(cli_location *out, const char *path)
{
    if (path[0] == '/')
        snprintf(out->path, sizeof out->path, "%s", path);
    else
        snprintf(out->path, sizeof out->path, "/%s", path);
}

void cli_parse_location(const char *arg, cli_location *out)
{
    memset(out, 0, sizeof *out);
    for (const char *colon = strchr(arg, ':'); colon; colon = strchr(colon + 1, ':')) {
        size_t n = (size_t)(colon - arg);
        if (n == 0 || n >= sizeof out->image)
            continue;
        memcpy(out->image, arg, n);
        out->image[n] = '\0';
        if (is_image_file(out->image)) {
            out->in_image = true;
            set_image_path(out, colon + 1);
            return;
        }
    }
    out->image[0] = '\0';
    snprintf(out->path, sizeof out->path, "%s", arg);
}

bool cli_parse_image_arg(const char *arg, cli_location *out)
{
    cli_parse_location(arg, out);
    if (out->in_image)
        return true;
    if (strchr(arg, ':') == NULL || is_image_file(arg)) {
        memset(out, 0, sizeof *out);
        snprintf(out->image, sizeof out->image, "%s", arg);
        snprintf(out->path, sizeof out->path, "/");
        out->in_image = true;
        return true;
    }
    return false;
}

bool cli_join(char *out, size_t size, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    int len = snprintf(out, size, n > 0 && dir[n - 1] == '/' ? "%s%s" : "%s/%s", dir, name);
    return len >= 0 && (size_t)len < size;
}

const char *cli_basename(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    static __thread char buf[4096];
    snprintf(buf, sizeof buf, "%.*s", (int)n, path);
    const char *slash = strrchr(buf, '/');
    return slash && slash[1] ? slash + 1 : buf;
}

bool cli_is_dir_stat(const fs_stat *st) { return (st->mode & FS_MODE_TYPE_MASK) == FS_MODE_DIRECTORY; }

/* ---- sessions ---- */

static void inline_notify(void *ctx) { fs_system_inline_notify(ctx); }

static void inline_wait(void *ctx, int timeout_ms) { fs_system_inline_wait(ctx, timeout_ms); }

static bool system_healthy(void *ctx)
{
    char why[128];
    if (!fs_system_failed(ctx, why, sizeof why))
        return true;
    fprintf(stderr, "asyncfat: the file-system system stopped: %s\n", why);
    return false;
}

int cli_session_open(cli_session *s, const char *image, bool read_only, uint64_t share_bytes)
{
    return cli_session_open_sized(s, image, read_only, share_bytes, 0);
}

int cli_session_open_sized(cli_session *s, const char *image, bool read_only, uint64_t share_bytes,
                           uint64_t data_bytes)
{
    memset(s, 0, sizeof *s);
    snprintf(s->image, sizeof s->image, "%s", image);
    struct stat st;
    if (stat(image, &st) != 0) {
        cli_error(image, "%s", strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        cli_error(image, "not a disk image (%s)", S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return -1;
    }
    /* The command runs the driver and the server itself, on its own thread, while it waits
     * for them (a second session at once, as in cp between images, gets a process). */
    fs_system_options o = {.image_path = image,
                           .layout = FS_SYSTEM_INLINE,
                           .read_only = read_only,
                           .share_bytes = share_bytes,
                           .data_bytes = data_bytes};
    if (fs_system_start(&s->system, &o) != 0) {
        cli_error(image, "cannot start the file-system server");
        return -1;
    }
    s->started = true;
    fs_system_client *c = &s->system.clients[0];
    fs_conn_endpoint ep = {
        .commands = c->commands,
        .completions = c->completions,
        .share = c->share,
        .share_size = c->share_size,
        .notify_fd = c->notify_fd,
        .wait_fd = c->wait_fd,
        .healthy = system_healthy,
        .healthy_ctx = &s->system,
    };
    if (s->system.layout == FS_SYSTEM_INLINE) {
        ep.notify = inline_notify;
        ep.wait = inline_wait;
        ep.event_ctx = &s->system;
    }
    if (fs_conn_open(&s->conn, &ep) != 0) {
        cli_error(image, "cannot connect: %s", strerror(errno));
        cli_session_close(s);
        return -1;
    }
    s->connected = true;
    fs_status status = fs_conn_initialise(&s->conn);
    if (status != FS_STATUS_SUCCESS) {
        cli_error(image, "cannot mount the volume: %s", fs_status_string(status));
        cli_session_close(s);
        return -1;
    }
    s->initialised = true;
    fs_mount_report report;
    if (fs_conn_mount_report(&s->conn, &report) == FS_STATUS_SUCCESS)
        fs_mount_report_warn(&report, image);
    return 0;
}

int cli_session_close(cli_session *s)
{
    int rc = 0;
    if (s->initialised) {
        fs_status status = fs_conn_deinitialise(&s->conn);
        if (status != FS_STATUS_SUCCESS) {
            cli_error(s->image, "cannot unmount the volume cleanly: %s", fs_status_string(status));
            rc = -1;
        }
        s->initialised = false;
    }
    if (s->connected) {
        fs_conn_close(&s->conn);
        s->connected = false;
    }
    if (s->started) {
        if (fs_system_stop(&s->system, 2000) != 0 && rc == 0) {
            cli_error(s->image, "the file-system server did not stop cleanly");
            rc = -1;
        }
        s->started = false;
    }
    return rc;
}
