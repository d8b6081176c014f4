/* Sessions of the asyncfat command: the driver and server on an image, this process their
 * client (see cli.h). */
#include "tools/cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* A write this large to an image in memory is copied into the page cache by an io_uring
 * worker on another CPU while this thread, which runs the driver and the server, reads the
 * next chunk of a file being copied in (tools/copy: 512 KiB chunks). Copying a 128 MiB file
 * into an image in /dev/shm, where both copies are the time: see BENCHMARKS.md. Smaller
 * writes (metadata, small files) stay inline: the switch would cost more than their copy. */
#define CLI_OFFLOAD_WRITE_BYTES (256u << 10)

static void inline_notify(void *ctx) { fs_system_inline_notify(ctx); }

static void inline_wait(void *ctx, int timeout_ms) { fs_system_inline_wait(ctx, timeout_ms); }

static bool system_healthy(void *ctx)
{
    char why[128];
    if (!fs_system_failed(ctx, why, sizeof why))
        return true;
    fprintf(stderr, "asyncfat: the file-system server stopped: %s\n", why);
    return false;
}

int cli_session_open(cli_session *s, const char *image, bool read_only, uint64_t share_bytes)
{
    return cli_session_open_sized(s, image, read_only, share_bytes, 0);
}

/* INITIALISE failed: say why in the user's terms. A volume that is not there (no FAT boot
 * sector, no such partition) is told from the image itself; anything else is the server's
 * status. */
static void explain_mount_failure(const cli_session *s, fs_status status)
{
    char why[512];
    if ((status == FS_STATUS_CORRUPT || status == FS_STATUS_INVALID_ARGUMENT) &&
        cli_diagnose_volume(&s->resolved, why, sizeof why))
        cli_error(s->image, "%s", why);
    else if (status == FS_STATUS_CORRUPT)
        cli_error(s->image, "cannot mount the volume: it is damaged (asyncfat check %s says where)", s->image);
    else
        cli_error(s->image, "cannot mount the volume: %s", fs_status_string(status));
}

static int open_session(cli_session *s, const char *image, bool read_only, uint64_t share_bytes,
                        uint64_t data_bytes, bool small_pages)
{
    /* Not the whole session: its connection's pending table is 30 KiB that fs_conn_open
     * leaves untouched until calls use it, and each page cleared here would be a fault. */
    s->started = s->connected = s->initialised = false;
    snprintf(s->image, sizeof s->image, "%s", image);
    if (!cli_image_resolve(image, &s->resolved)) {
        /* static: 40 KiB in this frame would push every call below it onto stack pages of
         * their own, each a page fault */
        static const cli_location none;
        cli_fail_not_image(image, &none);
        return -1;
    }
    char why[512];
    uint64_t bytes;
    uint16_t sector_size;
    int err = blk_device_geometry_path(s->resolved.file, &bytes, &sector_size);
    if (err) {
        cli_error(image, "cannot open: %s", cli_errno_text(err));
        return -1;
    }
    if (bytes < BLK_TRANSFER_SIZE && cli_diagnose_volume(&s->resolved, why, sizeof why)) {
        cli_error(image, "%s", why);
        return -1;
    }
    /* The command runs the driver and the server itself, on its own thread, while it waits
     * for them (a second session at once, as in cp between images, gets a process). */
    fs_system_options o = {
        .image_path = s->resolved.file,
        .layout = FS_SYSTEM_INLINE,
        .read_only = read_only,
        .share_bytes = share_bytes,
        .data_bytes = data_bytes,
        .offload_write_bytes = CLI_OFFLOAD_WRITE_BYTES,
        .volume = s->resolved.volume,
        .small_pages = small_pages,
    };
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
        cli_error(image, "cannot connect: %s", cli_errno_text(errno));
        cli_session_close(s);
        return -1;
    }
    s->connected = true;
    fs_status status = fs_conn_initialise(&s->conn);
    if (status != FS_STATUS_SUCCESS) {
        explain_mount_failure(s, status);
        cli_session_close(s);
        return -1;
    }
    s->initialised = true;
    fs_mount_report report;
    if (fs_conn_mount_report(&s->conn, &report) == FS_STATUS_SUCCESS)
        fs_mount_report_warn(&report, image);
    return 0;
}

int cli_session_open_sized(cli_session *s, const char *image, bool read_only, uint64_t share_bytes,
                           uint64_t data_bytes)
{
    return open_session(s, image, read_only, share_bytes, data_bytes, false);
}

int cli_session_open_small(cli_session *s, const char *image)
{
    return open_session(s, image, true, 0, CLI_DATA_BYTES, true);
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

int cli_session_finish(cli_session *s, int rc)
{
    if (cli_session_close(s) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    return cli_interrupted ? EXIT_INTERRUPTED : rc;
}

/* LeakSanitizer would report what the kernel is left to release. */
#if defined(__SANITIZE_ADDRESS__)
#define CLI_LEAKS_CHECKED true
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLI_LEAKS_CHECKED true
#endif
#endif
#ifndef CLI_LEAKS_CHECKED
#define CLI_LEAKS_CHECKED false
#endif

int cli_session_finish_last(cli_session *s, int rc)
{
    if (CLI_LEAKS_CHECKED || !s->initialised || s->system.layout != FS_SYSTEM_INLINE)
        return cli_session_finish(s, rc);
    fs_status status = fs_conn_deinitialise(&s->conn);
    s->initialised = false;
    if (status != FS_STATUS_SUCCESS) {
        cli_error(s->image, "cannot unmount the volume cleanly: %s", fs_status_string(status));
        if (rc == EXIT_OK)
            rc = EXIT_FAILED;
    }
    return cli_interrupted ? EXIT_INTERRUPTED : rc;
}

bool cli_path_is_root(const char *path)
{
    while (*path == '/')
        path++;
    return *path == '\0';
}
