/* The mount as a component of the server's loop (see mount.h): the FUSE session, the
 * operations and their server calls, operations waiting for room or a retry, and the
 * shutdown (unmount, DEINITIALISE, leave the loop). */
#include "tools/mount/mount.h"

#include "platform/linux/runtime.h"
#include "server/fs_component.h"

#include <errno.h>
#include <fcntl.h>
#include <sanitizer/asan_interface.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define MOUNT_MAX_CALLS (FS_CONN_MAX_PENDING - 16u) /* room for closes at shutdown */
#define MOUNT_RECEIVE_BATCH 64                       /* FUSE requests taken per wake-up */
#define RETRY_NS 5000000                             /* a BUSY directory: try again in 5 ms */
/* The share region keeps this much free of read and write data, for the calls' own
 * buffers (paths, records): they never find it full. */
#define MOUNT_SHARE_RESERVE (4u << 20)
/* Share space kept for good (mount_share_keep) leaves read and write data at least this. */
#define MOUNT_DATA_KEPT (16u << 20)

mount_context mount_ctx;

static const struct fuse_lowlevel_ops ll_ops = {
    .init = mount_ll_init,
    .lookup = mount_ll_lookup,
    .forget = mount_ll_forget,
    .forget_multi = mount_ll_forget_multi,
    .getattr = mount_ll_getattr,
    .setattr = mount_ll_setattr,
    .mkdir = mount_ll_mkdir,
    .unlink = mount_ll_unlink,
    .rmdir = mount_ll_rmdir,
    .rename = mount_ll_rename,
    .open = mount_ll_open,
    .create = mount_ll_create,
    .read = mount_ll_read,
    .write = mount_ll_write,
    .flush = mount_ll_flush,
    .release = mount_ll_release,
    .fsync = mount_ll_fsync,
    .opendir = mount_ll_opendir,
    .readdir = mount_ll_readdir,
    .readdirplus = mount_ll_readdirplus,
    .releasedir = mount_ll_releasedir,
    .fsyncdir = mount_ll_fsyncdir,
    .statfs = mount_ll_statfs,
    .ioctl = mount_ll_ioctl,
};

static struct {
    unsigned channel;
    struct fuse_session *session;
    struct fuse_buf buf;
    bool mounted;              /* the FUSE mount is up (and not yet unmounted by us) */
    bool stopping;             /* DEINITIALISE sent or about to be */
    mount_op *by_ticket[FS_CONN_MAX_PENDING];
    mount_op *room_head, *room_tail; /* waiting for share space or table room */
    mount_op *retry_head;      /* waiting for the retry timer */
    int timer_fd;
    size_t data_in_use;        /* bytes of read/write buffers out */
    size_t data_limit;
    uint32_t requests;         /* FUSE requests being served */
} loop;

/* ---- operations ---- */

/* Ended operations are kept for the next ones (up to MOUNT_SPARE_OPS): an operation is
 * over 8 KiB (its two paths), and taking a fresh zeroed one per FUSE request cost the
 * 32-in-flight case a third of its CPU (glibc growing and trimming the heap around the
 * requests in flight: page faults, TLB shootdowns, and zeroing the paths). A reused one
 * is zeroed up to its paths, which are empty strings until node_path fills them. */
#define MOUNT_SPARE_OPS 256u
static mount_op *spare_ops;
static unsigned spare_op_count;

static mount_op *op_take(void)
{
    mount_op *op = spare_ops;
    if (!op)
        return calloc(1, sizeof *op);
    ASAN_UNPOISON_MEMORY_REGION(op, sizeof *op);
    spare_ops = op->next_waiting;
    spare_op_count--;
    memset(op, 0, offsetof(mount_op, path));
    op->path[0] = '\0';
    op->new_path[0] = '\0';
    return op;
}

static void op_give_back(mount_op *op)
{
    if (spare_op_count >= MOUNT_SPARE_OPS) {
        free(op);
        return;
    }
    op->next_waiting = spare_ops;
    spare_ops = op;
    spare_op_count++;
    /* A use after the end is still caught under ASan. */
    ASAN_POISON_MEMORY_REGION(op, sizeof *op);
}

static void spare_ops_free(void)
{
    while (spare_ops) {
        mount_op *op = spare_ops;
        ASAN_UNPOISON_MEMORY_REGION(op, sizeof *op);
        spare_ops = op->next_waiting;
        free(op);
    }
    spare_op_count = 0;
}

mount_op *mount_op_new(fuse_req_t req)
{
    mount_op *op = op_take();
    if (!op && req)
        fuse_reply_err(req, ENOMEM);
    if (op && req) {
        op->req = req;
        loop.requests++;
    }
    return op;
}

void mount_op_end(mount_op *op)
{
    fd_cache_done(op);
    if (op->req)
        loop.requests--;
    if (op->data && !op->data_borrowed)
        mount_data_free(op->data, op->data_size);
    free(op->held);
    free(op->name);
    free(op->new_name);
    op_give_back(op);
}

void mount_op_fail(mount_op *op, int err)
{
    if (op->req)
        fuse_reply_err(op->req, err);
    mount_op_end(op);
}

void mount_invalidate_attributes(fuse_ino_t ino)
{
    if (loop.session)
        fuse_lowlevel_notify_inval_inode(loop.session, ino, -1, 0);
}

void mount_called(mount_op *op, mount_then then)
{
    op->then = then;
    loop.by_ticket[op->call.ticket] = op;
}

void mount_then_end(mount_op *op, const fs_reply *reply, const uint8_t *payload)
{
    AF_UNUSED(reply);
    AF_UNUSED(payload);
    mount_op_end(op);
}

static void call_completed(void *ctx, uint32_t ticket, const fs_cmpl *cmpl)
{
    AF_UNUSED(ctx);
    mount_op *op = ticket < FS_CONN_MAX_PENDING ? loop.by_ticket[ticket] : NULL;
    if (!op)
        return;
    loop.by_ticket[ticket] = NULL;
    fs_reply reply;
    fs_conn_finish_keep(&mount_ctx.conn, &op->call, cmpl, &reply);
    uint8_t *kept = op->call.share;
    op->call.share = NULL;
    const uint8_t *payload = kept && op->call.record_size > sizeof reply.record ? kept : NULL;
    op->then(op, &reply, payload);
    fs_conn_free(&mount_ctx.conn, kept);
}

bool mount_call_room(void) { return mount_ctx.conn.pending < MOUNT_MAX_CALLS; }

/* What an allocation of size takes of the share region: whole pages. */
static size_t share_pages(size_t size) { return (size + FS_CONN_PAGE - 1) / FS_CONN_PAGE * FS_CONN_PAGE; }

uint8_t *mount_data_alloc(size_t size)
{
    size_t pages = share_pages(size);
    if (loop.data_in_use + pages > loop.data_limit)
        return NULL;
    uint8_t *p = fs_conn_try_alloc(&mount_ctx.conn, size);
    if (p)
        loop.data_in_use += pages;
    return p;
}

uint8_t *mount_share_keep(size_t size)
{
    size_t pages = share_pages(size);
    if (loop.data_limit < pages + MOUNT_DATA_KEPT)
        return NULL;
    uint8_t *p = fs_conn_try_alloc(&mount_ctx.conn, size);
    if (p)
        loop.data_limit -= pages;
    return p;
}

void mount_data_free(uint8_t *p, size_t size)
{
    if (!p)
        return;
    loop.data_in_use -= share_pages(size);
    fs_conn_free(&mount_ctx.conn, p);
}

void mount_wait_room(mount_op *op, void (*resume)(mount_op *op))
{
    op->resume = resume;
    op->next_waiting = NULL;
    if (loop.room_tail)
        loop.room_tail->next_waiting = op;
    else
        loop.room_head = op;
    loop.room_tail = op;
}

void mount_start_when_room(mount_op *op, void (*start)(mount_op *op))
{
    if (mount_call_room())
        start(op);
    else
        mount_wait_room(op, start);
}

void mount_wait_retry(mount_op *op, void (*resume)(mount_op *op))
{
    op->resume = resume;
    op->next_waiting = loop.retry_head;
    loop.retry_head = op;
    struct itimerspec t = {.it_value = {0, RETRY_NS}};
    if (loop.timer_fd >= 0)
        timerfd_settime(loop.timer_fd, 0, &t, NULL);
}

/* Operations waiting for room go on, in order, while there is room; one that finds none
 * again waits again (at the back: whatever it waits for comes back with a completion). */
static void resume_waiting(void)
{
    mount_op *list = loop.room_head;
    loop.room_head = loop.room_tail = NULL;
    while (list) {
        mount_op *op = list;
        list = op->next_waiting;
        if (!mount_call_room()) {
            mount_wait_room(op, op->resume);
            continue;
        }
        op->resume(op);
    }
}

/* Deliver what the server finished (and calls refused at once), then let waiting
 * operations go on; repeat while they made more to deliver. The replies this left for the
 * FUSE ring go to the kernel together. */
void mount_settle(void)
{
    do {
        fs_conn_dispatch(&mount_ctx.conn);
        if (loop.room_head)
            resume_waiting();
    } while (mount_ctx.conn.refused_count > 0);
    fuse_ring_flush();
}

static void on_retry_timer(void *ctx)
{
    AF_UNUSED(ctx);
    uint64_t expirations;
    if (read(loop.timer_fd, &expirations, sizeof expirations) < 0)
        expirations = 0;
    mount_op *list = loop.retry_head;
    loop.retry_head = NULL;
    while (list) {
        mount_op *op = list;
        list = op->next_waiting;
        op->resume(op);
    }
    mount_settle();
}

/* ---- shutdown ---- */

static void deinitialised(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status != FS_STATUS_SUCCESS) {
        cli_error(mount_ctx.image, "cannot unmount the volume cleanly: %s", fs_status_string(r->status));
        mount_ctx.status = EXIT_FAILED;
    }
    mount_op_end(op);
    if (getenv("ASYNCFAT_STATS"))
        fprintf(stderr, "asyncfat: %llu requests, at most %u in flight at once; %llu FUSE requests through io_uring\n",
                (unsigned long long)mount_ctx.conn.calls, mount_ctx.conn.max_pending,
                (unsigned long long)fuse_ring_requests());
    lx_runtime_stop(mount_ctx.status);
}

/* The FUSE connection is over (unmounted, by us or by fusermount3): the server syncs and
 * unmounts the volume (DEINITIALISE waits for the mount's other requests), then the loop
 * ends. */
static void stop(void)
{
    if (loop.stopping)
        return;
    loop.stopping = true;
    if (loop.session && loop.mounted) {
        fuse_session_unmount(loop.session);
        loop.mounted = false;
    }
    mount_op *op = mount_op_new(NULL);
    if (!op) {
        mount_ctx.status = EXIT_FAILED;
        lx_runtime_stop(EXIT_FAILED);
        return;
    }
    fs_conn_start_deinitialise(&mount_ctx.conn, &op->call);
    mount_called(op, deinitialised);
}

static void on_stop_request(void *ctx)
{
    AF_UNUSED(ctx);
    uint64_t count;
    if (read(mount_ctx.stop_fd, &count, sizeof count) < 0)
        count = 0;
    stop();
    mount_settle();
}

/* ---- the FUSE session ---- */

/* The kernel has requests for us. Taking them until read says EAGAIN costs that one
 * failed read per wake-up; taking one and going back to epoll costs an epoll_wait per
 * request when several are queued. So the loop learns which case it is in: while wake-ups
 * find several requests (or some are being served already) it takes them in one go, so
 * the server also starts them in one pass; when one finds a lone request, the next take
 * one each (a request at a time: the usual case of one reader), trying a batch again every
 * MOUNT_PROBE_EVERY wake-ups. */
#define MOUNT_PROBE_EVERY 16u

static void on_fuse(void *ctx)
{
    AF_UNUSED(ctx);
    static bool batching = true;
    static unsigned probe;
    bool batch = batching || loop.requests > 0 || ++probe % MOUNT_PROBE_EVERY == 0;
    int taken = 0;
    for (int i = 0; i < (batch ? MOUNT_RECEIVE_BATCH : 1) && loop.mounted; i++) {
        int got = fuse_session_receive_buf(loop.session, &loop.buf);
        if (got == -EAGAIN || got == -EINTR)
            break;
        if (got <= 0 || fuse_session_exited(loop.session)) {
            stop();
            break;
        }
        fuse_ring_saw_request(loop.buf.mem, (size_t)got);
        fuse_session_process_buf(loop.session, &loop.buf);
        taken++;
    }
    if (batch)
        batching = taken > 1;
    mount_settle();
}

/* Background mode: one byte to the waiting parent, 0 mounted or 1 failed; then this
 * process leaves the terminal. */
static void tell_parent(char status)
{
    if (mount_ctx.ready_fd < 0)
        return;
    ssize_t written = write(mount_ctx.ready_fd, &status, 1);
    AF_UNUSED(written); /* a parent that is gone has nothing to learn */
    close(mount_ctx.ready_fd);
    mount_ctx.ready_fd = -1;
    if (status != 0)
        return;
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

static void fail_start(const char *what)
{
    cli_error(mount_ctx.mount_point, "%s", what);
    mount_ctx.status = EXIT_FAILED;
    stop();
}

static void reported(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_SUCCESS)
        fs_mount_report_warn(&r->record.mount_report, mount_ctx.image);
    mount_op_end(op);
}

/* The volume is mounted on the server: say what the mount repaired, if anything (the
 * answer comes while FUSE mounts), and mount FUSE. */
static void initialised(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    mount_op_end(op);
    if (r->status != FS_STATUS_SUCCESS) {
        char why[512];
        if ((r->status == FS_STATUS_CORRUPT || r->status == FS_STATUS_INVALID_ARGUMENT) && mount_ctx.volume &&
            cli_diagnose_volume(mount_ctx.volume, why, sizeof why))
            cli_error(mount_ctx.image, "%s", why);
        else
            cli_error(mount_ctx.image, "cannot mount the volume: %s", fs_status_string(r->status));
        mount_ctx.status = EXIT_FAILED;
        lx_runtime_stop(EXIT_FAILED);
        return;
    }
    mount_op *report = mount_op_new(NULL);
    if (report) {
        fs_conn_start_mount_report(&mount_ctx.conn, &report->call);
        mount_called(report, reported);
    }
    char fsname[4200];
    snprintf(fsname, sizeof fsname, "fsname=asyncfat:%s,subtype=asyncfat", mount_ctx.image);
    char *argv[6];
    int n = 0;
    argv[n++] = (char *)"asyncfat";
    argv[n++] = (char *)"-o";
    argv[n++] = fsname;
    if (mount_ctx.fuse_options && mount_ctx.fuse_options[0]) {
        argv[n++] = (char *)"-o";
        argv[n++] = (char *)mount_ctx.fuse_options;
    }
    argv[n] = NULL;
    struct fuse_args args = FUSE_ARGS_INIT(n, argv);
    loop.session = fuse_session_new(&args, &ll_ops, sizeof ll_ops, NULL);
    fuse_opt_free_args(&args);
    if (!loop.session) {
        fail_start("cannot set up FUSE (bad -o options?)");
        return;
    }
    if (fuse_session_mount(loop.session, mount_ctx.mount_point) != 0) {
        fail_start("cannot mount (is /dev/fuse usable, and the directory not busy?)");
        return;
    }
    loop.mounted = true;
    if (fuse_ring_attach(loop.session, mount_ctx.io_uring) != 0) {
        fail_start("cannot set up FUSE's input and output");
        return;
    }
    int fd = fuse_session_fd(loop.session);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 || lx_runtime_watch_fd(fd, on_fuse, NULL) != 0) {
        fail_start("cannot watch the FUSE device");
        return;
    }
    tell_parent(0);
}

static void notify_server(void *ctx) { component_notify((unsigned)(uintptr_t)ctx); }

void mount_component_init(void)
{
    memset(&loop, 0, sizeof loop);
    loop.timer_fd = -1;
    mount_ctx.status = EXIT_OK;
    char name[32];
    fs_component_client_name(name, "fs_client_", 0);
    loop.channel = component_channel(name);
    size_t cmd_size, cmpl_size, share_size;
    fs_queue *commands = component_region(FS_COMPONENT_REGION_COMMANDS, &cmd_size);
    fs_queue *completions = component_region(FS_COMPONENT_REGION_COMPLETIONS, &cmpl_size);
    uint8_t *share = component_region(FS_COMPONENT_REGION_SHARE, &share_size);
    fs_conn_endpoint ep = {
        .commands = commands,
        .completions = completions,
        .share = share,
        .share_size = share_size,
        .notify_fd = -1,
        .wait_fd = -1,
        .notify = notify_server,
        .completed = call_completed,
        .event_ctx = (void *)(uintptr_t)loop.channel,
    };
    loop.data_limit = share_size > MOUNT_SHARE_RESERVE * 2 ? share_size - MOUNT_SHARE_RESERVE : share_size / 2;
    loop.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    nodes_init();
    if (!commands || !completions || !share || cmd_size < sizeof(fs_queue) || loop.channel == COMPONENT_NO_CHANNEL ||
        loop.timer_fd < 0 || fs_conn_open(&mount_ctx.conn, &ep) != 0 ||
        lx_runtime_watch_fd(loop.timer_fd, on_retry_timer, NULL) != 0 ||
        lx_runtime_watch_fd(mount_ctx.stop_fd, on_stop_request, NULL) != 0) {
        cli_error(mount_ctx.image, "cannot set up the mount");
        mount_ctx.status = EXIT_FAILED;
        lx_runtime_stop(EXIT_FAILED);
        return;
    }
    mount_op *op = mount_op_new(NULL);
    if (!op) {
        lx_runtime_stop(EXIT_FAILED);
        return;
    }
    fs_conn_start_initialise(&mount_ctx.conn, &op->call);
    mount_called(op, initialised);
}

void mount_component_notified(unsigned channel)
{
    if (channel == loop.channel)
        mount_settle();
}

void mount_component_fini(void)
{
    fuse_ring_close();
    if (loop.session) {
        if (loop.mounted)
            fuse_session_unmount(loop.session);
        fuse_session_destroy(loop.session);
        loop.session = NULL;
    }
    free(loop.buf.mem);
    loop.buf.mem = NULL;
    fs_conn_close(&mount_ctx.conn);
    spare_ops_free();
    nodes_free();
    known_names_drop_all();
    if (loop.timer_fd >= 0)
        close(loop.timer_fd);
    loop.timer_fd = -1;
}
