/* The client library: pending-call table, completion polling, share allocator and
 * the blocking calls (see fs_client.h). */
#include "tools/fs_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SLOT_BITS 16u

static uint64_t slot_id(const fs_conn *c, uint32_t index)
{
    return ((uint64_t)c->slots[index].generation << SLOT_BITS) | index;
}

/* Caller holds c->lock. */
static void complete_slot(fs_conn *c, uint32_t index, const fs_cmpl *cmpl)
{
    fs_conn_slot *s = &c->slots[index];
    s->cmpl = *cmpl;
    s->done = true;
    pthread_cond_signal(&s->done_cond);
}

/* Caller holds c->lock: the server is gone, so nothing pending will ever complete. */
static void fail_pending(fs_conn *c)
{
    c->broken = true;
    for (uint32_t i = 0; i < FS_CONN_MAX_PENDING; i++) {
        fs_conn_slot *s = &c->slots[i];
        if (s->in_use && !s->done) {
            fs_cmpl failed = {.id = slot_id(c, i), .status = FS_STATUS_IO_ERROR};
            complete_slot(c, i, &failed);
        }
    }
}

/* Hand every published completion to its slot. Only the poller calls this. */
static void take_completions(fs_conn *c)
{
    fs_msg batch[64];
    uint32_t n;
    while ((n = fs_queue_consume(&c->completions, batch, AF_ARRAY_LEN(batch))) > 0) {
        pthread_mutex_lock(&c->lock);
        for (uint32_t i = 0; i < n; i++) {
            const fs_cmpl *cmpl = &batch[i].cmpl;
            uint64_t index = cmpl->id & ((1u << SLOT_BITS) - 1);
            /* A completion we did not ask for (stale or bogus id) is dropped. */
            if (index >= FS_CONN_MAX_PENDING || cmpl->id != slot_id(c, (uint32_t)index))
                continue;
            fs_conn_slot *s = &c->slots[index];
            if (s->in_use && !s->done)
                complete_slot(c, (uint32_t)index, cmpl);
        }
        pthread_mutex_unlock(&c->lock);
    }
}

/* One turn as the poller, without c->lock: sleep until the server notifies (or a second
 * passes, or the connection closes), then drain. Clearing the eventfd before draining means
 * a completion published after the drain always finds the eventfd set for the next turn. */
static void poll_turn(fs_conn *c)
{
    struct pollfd fds[2] = {{.fd = c->ep.wait_fd, .events = POLLIN}, {.fd = c->stop_fd, .events = POLLIN}};
    int rc = poll(fds, 2, 1000);
    if (rc < 0 && errno != EINTR) {
        pthread_mutex_lock(&c->lock);
        fail_pending(c);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    if (rc > 0 && (fds[0].revents & POLLIN)) {
        uint64_t count;
        if (read(c->ep.wait_fd, &count, sizeof count) < 0 && errno != EAGAIN && errno != EINTR) {
            pthread_mutex_lock(&c->lock);
            fail_pending(c);
            pthread_mutex_unlock(&c->lock);
            return;
        }
    }
    take_completions(c);
    if (rc == 0 && c->ep.healthy && !c->ep.healthy(c->ep.healthy_ctx)) {
        pthread_mutex_lock(&c->lock);
        fail_pending(c);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Caller holds c->lock. Wait until slot s is done. The first waiter becomes the poller and
 * reads the completion queue itself; the others sleep until the poller hands them their
 * completion, or hands them the poller's job when its own call is done. A lone caller so
 * wakes straight from the server's notification, with no thread in between. */
static void wait_done(fs_conn *c, fs_conn_slot *s)
{
    c->waiters++;
    s->waiting = true;
    while (!s->done) {
        if (c->polling) {
            pthread_cond_wait(&s->done_cond, &c->lock);
            continue;
        }
        c->polling = true;
        pthread_mutex_unlock(&c->lock);
        poll_turn(c);
        pthread_mutex_lock(&c->lock);
        c->polling = false;
    }
    s->waiting = false;
    c->waiters--;
    if (c->waiters > 0) {
        for (uint32_t i = 0; i < FS_CONN_MAX_PENDING; i++) {
            if (c->slots[i].waiting && !c->slots[i].done) {
                pthread_cond_signal(&c->slots[i].done_cond);
                break;
            }
        }
    }
}

int fs_conn_open(fs_conn *c, const fs_conn_endpoint *ep)
{
    memset(c, 0, sizeof *c);
    c->ep = *ep;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->slot_free, NULL);
    pthread_mutex_init(&c->share_lock, NULL);
    pthread_cond_init(&c->share_freed, NULL);
    for (uint32_t i = 0; i < FS_CONN_MAX_PENDING; i++)
        pthread_cond_init(&c->slots[i].done_cond, NULL);
    fs_queue_end_init(&c->commands, ep->commands, true);
    fs_queue_end_init(&c->completions, ep->completions, false);
    c->page_count = (uint32_t)(ep->share_size / FS_CONN_PAGE);
    c->page_used = calloc(c->page_count ? c->page_count : 1, 1);
    c->run_pages = calloc(c->page_count ? c->page_count : 1, sizeof(uint32_t));
    c->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (!c->page_used || !c->run_pages || c->stop_fd < 0) {
        fs_conn_close(c);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void fs_conn_close(fs_conn *c)
{
    pthread_mutex_lock(&c->lock);
    fail_pending(c);
    pthread_mutex_unlock(&c->lock);
    if (c->stop_fd >= 0) {
        /* Wakes a poller still sleeping; the caller waits for its calls to return. */
        uint64_t one = 1;
        if (write(c->stop_fd, &one, sizeof one) != sizeof one) {
            /* nothing to wake then */
        }
        close(c->stop_fd);
    }
    c->stop_fd = -1;
    free(c->page_used);
    free(c->run_pages);
    c->page_used = NULL;
    c->run_pages = NULL;
}

/* ---- share-region allocator: first fit over pages ---- */

void *fs_conn_alloc(fs_conn *c, size_t size)
{
    uint32_t want = (uint32_t)((size + FS_CONN_PAGE - 1) / FS_CONN_PAGE);
    if (want == 0)
        want = 1;
    if (want > c->page_count)
        return NULL;
    pthread_mutex_lock(&c->share_lock);
    for (;;) {
        uint32_t run = 0;
        for (uint32_t i = 0; i < c->page_count; i++) {
            if (c->page_used[i]) {
                run = 0;
                i += c->run_pages[i] - 1;
                continue;
            }
            if (++run == want) {
                uint32_t first = i + 1 - want;
                memset(&c->page_used[first], 1, want);
                c->run_pages[first] = want;
                pthread_mutex_unlock(&c->share_lock);
                return c->ep.share + (size_t)first * FS_CONN_PAGE;
            }
        }
        pthread_cond_wait(&c->share_freed, &c->share_lock);
    }
}

void fs_conn_free(fs_conn *c, void *p)
{
    if (!p)
        return;
    uint32_t first = (uint32_t)(((uint8_t *)p - c->ep.share) / FS_CONN_PAGE);
    pthread_mutex_lock(&c->share_lock);
    memset(&c->page_used[first], 0, c->run_pages[first]);
    c->run_pages[first] = 0;
    pthread_cond_broadcast(&c->share_freed);
    pthread_mutex_unlock(&c->share_lock);
}

/* ---- calls ---- */

fs_conn_ticket fs_conn_submit(fs_conn *c, fs_cmd *cmd)
{
    pthread_mutex_lock(&c->lock);
    while (c->pending == FS_CONN_MAX_PENDING)
        pthread_cond_wait(&c->slot_free, &c->lock);
    uint32_t index = 0;
    while (c->slots[index].in_use)
        index++;
    fs_conn_slot *s = &c->slots[index];
    s->in_use = true;
    s->done = false;
    s->generation++;
    c->pending++;
    c->calls++;
    if (c->pending > c->max_pending)
        c->max_pending = c->pending;
    cmd->id = slot_id(c, index);
    if (c->broken) {
        fs_cmpl failed = {.id = cmd->id, .status = FS_STATUS_IO_ERROR};
        complete_slot(c, index, &failed);
        pthread_mutex_unlock(&c->lock);
        return index;
    }
    fs_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.cmd = *cmd;
    /* Never fails: at most FS_CONN_MAX_PENDING < FS_QUEUE_CAPACITY commands are queued. */
    fs_queue_produce(&c->commands, &msg, 1);
    pthread_mutex_unlock(&c->lock);
    uint64_t one = 1;
    if (write(c->ep.notify_fd, &one, sizeof one) != sizeof one) {
        pthread_mutex_lock(&c->lock);
        fail_pending(c);
        pthread_mutex_unlock(&c->lock);
    }
    return index;
}

void fs_conn_wait(fs_conn *c, fs_conn_ticket t, fs_cmpl *out)
{
    fs_conn_slot *s = &c->slots[t];
    pthread_mutex_lock(&c->lock);
    wait_done(c, s);
    *out = s->cmpl;
    s->in_use = false;
    s->done = false;
    c->pending--;
    pthread_cond_signal(&c->slot_free);
    pthread_mutex_unlock(&c->lock);
}

uint32_t fs_conn_wait_any(fs_conn *c, const fs_conn_ticket *t, uint32_t n, fs_cmpl *out)
{
    pthread_mutex_lock(&c->lock);
    uint32_t i;
    for (;;) {
        for (i = 0; i < n && !c->slots[t[i]].done; i++)
            continue;
        if (i < n)
            break;
        if (c->polling) {
            /* Another thread polls and wakes waiters one slot at a time: wait for the first
             * ticket (still a completion of the set, if not the earliest). */
            wait_done(c, &c->slots[t[0]]);
            i = 0;
            break;
        }
        c->polling = true;
        pthread_mutex_unlock(&c->lock);
        poll_turn(c);
        pthread_mutex_lock(&c->lock);
        c->polling = false;
        /* Pass the poller's job on to a thread waiting in fs_conn_wait, if any. */
        for (uint32_t k = 0; c->waiters > 0 && k < FS_CONN_MAX_PENDING; k++) {
            if (c->slots[k].waiting && !c->slots[k].done) {
                pthread_cond_signal(&c->slots[k].done_cond);
                break;
            }
        }
    }
    fs_conn_slot *s = &c->slots[t[i]];
    *out = s->cmpl;
    s->in_use = false;
    s->done = false;
    c->pending--;
    pthread_cond_signal(&c->slot_free);
    pthread_mutex_unlock(&c->lock);
    return i;
}

fs_status fs_conn_call(fs_conn *c, fs_cmd *cmd, uint64_t *data)
{
    fs_cmpl cmpl;
    fs_conn_wait(c, fs_conn_submit(c, cmd), &cmpl);
    if (data)
        *data = cmpl.data;
    return (fs_status)cmpl.status;
}

static fs_status simple(fs_conn *c, uint64_t type, uint64_t fd, uint64_t arg, uint64_t *data)
{
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.params.file_truncate.fd = fd;
    cmd.params.file_truncate.length = arg;
    return fs_conn_call(c, &cmd, data);
}

fs_status fs_conn_initialise(fs_conn *c)
{
    fs_cmd cmd = {.type = FS_CMD_INITIALISE, .params.initialise = {FS_INITIALISE_MAGIC, FS_INITIALISE_EXTENSIONS}};
    return fs_conn_call(c, &cmd, NULL);
}
fs_status fs_conn_deinitialise(fs_conn *c) { return simple(c, FS_CMD_DEINITIALISE, 0, 0, NULL); }
fs_status fs_conn_close_file(fs_conn *c, uint64_t fd) { return simple(c, FS_CMD_FILE_CLOSE, fd, 0, NULL); }
fs_status fs_conn_closedir(fs_conn *c, uint64_t fd) { return simple(c, FS_CMD_DIR_CLOSE, fd, 0, NULL); }
fs_status fs_conn_file_size(fs_conn *c, uint64_t fd, uint64_t *size) { return simple(c, FS_CMD_FILE_SIZE, fd, 0, size); }
fs_status fs_conn_truncate(fs_conn *c, uint64_t fd, uint64_t length)
{
    return simple(c, FS_CMD_FILE_TRUNCATE, fd, length, NULL);
}
fs_status fs_conn_sync(fs_conn *c, uint64_t fd) { return simple(c, FS_CMD_FILE_SYNC, fd, 0, NULL); }

/* A path copied into a fresh share buffer. */
typedef struct share_path {
    void *p;
    fs_buffer buf;
} share_path;

static fs_status path_in(fs_conn *c, const char *path, share_path *out)
{
    size_t len = strlen(path);
    out->p = NULL;
    if (len > FS_MAX_PATH_LENGTH)
        return FS_STATUS_INVALID_PATH;
    out->p = fs_conn_alloc(c, len ? len : 1);
    if (!out->p)
        return FS_STATUS_ALLOCATION_ERROR;
    memcpy(out->p, path, len);
    out->buf = fs_conn_buffer(c, out->p, len);
    return FS_STATUS_SUCCESS;
}

/* Commands whose parameters are a path and at most one u64 after it (FILE_OPEN's flags;
 * 0 for the others, where those bytes are unused). */
static fs_status path_call(fs_conn *c, uint64_t type, const char *path, uint64_t arg, uint64_t *data)
{
    share_path sp;
    fs_status st = path_in(c, path, &sp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = type;
    cmd.params.file_open.path = sp.buf;
    cmd.params.file_open.flags = arg;
    st = fs_conn_call(c, &cmd, data);
    fs_conn_free(c, sp.p);
    return st;
}

fs_status fs_conn_remove(fs_conn *c, const char *path) { return path_call(c, FS_CMD_FILE_REMOVE, path, 0, NULL); }
fs_status fs_conn_mkdir(fs_conn *c, const char *path) { return path_call(c, FS_CMD_DIR_CREATE, path, 0, NULL); }
fs_status fs_conn_rmdir(fs_conn *c, const char *path) { return path_call(c, FS_CMD_DIR_REMOVE, path, 0, NULL); }
fs_status fs_conn_opendir(fs_conn *c, const char *path, uint64_t *fd)
{
    return path_call(c, FS_CMD_DIR_OPEN, path, 0, fd);
}

fs_status fs_conn_open_file(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd)
{
    return path_call(c, FS_CMD_FILE_OPEN, path, flags, fd);
}

fs_status fs_conn_stat(fs_conn *c, const char *path, fs_stat *out)
{
    share_path sp;
    fs_status st = path_in(c, path, &sp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_stat *rec = fs_conn_alloc(c, sizeof *rec);
    if (!rec) {
        fs_conn_free(c, sp.p);
        return FS_STATUS_ALLOCATION_ERROR;
    }
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_STAT;
    cmd.params.stat.path = sp.buf;
    cmd.params.stat.buf = fs_conn_buffer(c, rec, sizeof *rec);
    st = fs_conn_call(c, &cmd, NULL);
    if (st == FS_STATUS_SUCCESS)
        memcpy(out, rec, sizeof *out);
    fs_conn_free(c, rec);
    fs_conn_free(c, sp.p);
    return st;
}

fs_status fs_conn_fstat(fs_conn *c, uint64_t fd, fs_stat *out)
{
    fs_stat *rec = fs_conn_alloc(c, sizeof *rec);
    if (!rec)
        return FS_STATUS_ALLOCATION_ERROR;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FSTAT;
    fs_cmd_params *p = &cmd.params;
    p->fstat.fd = fd;
    p->fstat.buf = fs_conn_buffer(c, rec, sizeof *rec);
    fs_status st = fs_conn_call(c, &cmd, NULL);
    if (st == FS_STATUS_SUCCESS)
        memcpy(out, rec, sizeof *out);
    fs_conn_free(c, rec);
    return st;
}

fs_status fs_conn_statfs(fs_conn *c, fs_statfs *out)
{
    fs_statfs *rec = fs_conn_alloc(c, sizeof *rec);
    if (!rec)
        return FS_STATUS_ALLOCATION_ERROR;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_STATFS;
    cmd.params.statfs.buf = fs_conn_buffer(c, rec, sizeof *rec);
    fs_status st = fs_conn_call(c, &cmd, NULL);
    if (st == FS_STATUS_SUCCESS)
        memcpy(out, rec, sizeof *out);
    fs_conn_free(c, rec);
    return st;
}

fs_status fs_conn_rename(fs_conn *c, const char *old_path, const char *new_path)
{
    share_path a, b;
    fs_status st = path_in(c, old_path, &a);
    if (st != FS_STATUS_SUCCESS)
        return st;
    st = path_in(c, new_path, &b);
    if (st != FS_STATUS_SUCCESS) {
        fs_conn_free(c, a.p);
        return st;
    }
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_RENAME;
    cmd.params.rename.old_path = a.buf;
    cmd.params.rename.new_path = b.buf;
    st = fs_conn_call(c, &cmd, NULL);
    fs_conn_free(c, a.p);
    fs_conn_free(c, b.p);
    return st;
}

fs_status fs_conn_set_times(fs_conn *c, const char *path, int64_t atime, int64_t mtime)
{
    share_path sp;
    fs_status st = path_in(c, path, &sp);
    if (st != FS_STATUS_SUCCESS)
        return st;
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_SET_TIMES;
    fs_cmd_params *p = &cmd.params;
    p->set_times.path = sp.buf;
    p->set_times.atime = atime;
    p->set_times.mtime = mtime;
    st = fs_conn_call(c, &cmd, NULL);
    fs_conn_free(c, sp.p);
    return st;
}

fs_status fs_conn_read(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t len, size_t *done)
{
    size_t chunk = len < FS_CONN_IO_CHUNK ? len : FS_CONN_IO_CHUNK;
    uint8_t *buf = fs_conn_alloc(c, chunk ? chunk : 1);
    fs_status st = FS_STATUS_SUCCESS;
    *done = 0;
    if (!buf)
        return FS_STATUS_ALLOCATION_ERROR;
    while (*done < len) {
        size_t want = len - *done < chunk ? len - *done : chunk;
        fs_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FS_CMD_FILE_READ;
        cmd.params.file_read.fd = fd;
        cmd.params.file_read.offset = offset + *done;
        cmd.params.file_read.buf = fs_conn_buffer(c, buf, want);
        uint64_t got = 0;
        st = fs_conn_call(c, &cmd, &got);
        if (st != FS_STATUS_SUCCESS)
            break;
        if (got > want)
            got = want;
        memcpy((uint8_t *)dst + *done, buf, got);
        *done += got;
        if (got < want)
            break;
    }
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_write(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t len, size_t *done)
{
    size_t chunk = len < FS_CONN_IO_CHUNK ? len : FS_CONN_IO_CHUNK;
    uint8_t *buf = fs_conn_alloc(c, chunk ? chunk : 1);
    fs_status st = FS_STATUS_SUCCESS;
    *done = 0;
    if (!buf)
        return FS_STATUS_ALLOCATION_ERROR;
    do {
        size_t want = len - *done < chunk ? len - *done : chunk;
        memcpy(buf, (const uint8_t *)src + *done, want);
        fs_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FS_CMD_FILE_WRITE;
        cmd.params.file_write.fd = fd;
        cmd.params.file_write.offset = offset + *done;
        cmd.params.file_write.buf = fs_conn_buffer(c, buf, want);
        uint64_t put = 0;
        st = fs_conn_call(c, &cmd, &put);
        *done += put > want ? want : put;
        if (st != FS_STATUS_SUCCESS || put < want)
            break;
    } while (*done < len);
    fs_conn_free(c, buf);
    return st;
}

fs_status fs_conn_readdir(fs_conn *c, uint64_t fd, char name[FS_CONN_NAME_MAX + 1], fs_stat *st)
{
    uint8_t *buf = fs_conn_alloc(c, FS_CONN_NAME_MAX + sizeof(fs_stat));
    if (!buf)
        return FS_STATUS_ALLOCATION_ERROR;
    fs_stat *rec = (fs_stat *)(void *)(buf + FS_CONN_PAGE - sizeof(fs_stat));
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    fs_buffer name_buf = fs_conn_buffer(c, buf, FS_CONN_NAME_MAX);
    if (st) {
        cmd.type = FS_CMD_DIR_READ_STAT;
        fs_cmd_params *p = &cmd.params;
        p->dir_read_stat.fd = fd;
        p->dir_read_stat.name = name_buf;
        p->dir_read_stat.stat = fs_conn_buffer(c, rec, sizeof *rec);
    } else {
        cmd.type = FS_CMD_DIR_READ;
        cmd.params.dir_read.fd = fd;
        cmd.params.dir_read.buf = name_buf;
    }
    uint64_t len = 0;
    fs_status status = fs_conn_call(c, &cmd, &len);
    if (status == FS_STATUS_SUCCESS) {
        if (len > FS_CONN_NAME_MAX)
            len = FS_CONN_NAME_MAX;
        memcpy(name, buf, len);
        name[len] = '\0';
        if (st)
            memcpy(st, rec, sizeof *st);
    }
    fs_conn_free(c, buf);
    return status;
}

/* ---- statuses ---- */

int fs_status_to_errno(fs_status status)
{
    switch (status) {
    case FS_STATUS_SUCCESS: return 0;
    case FS_STATUS_INVALID_BUFFER: return EFAULT;
    case FS_STATUS_INVALID_PATH: return EINVAL;
    case FS_STATUS_INVALID_FD: return EBADF;
    case FS_STATUS_ALLOCATION_ERROR: return ENOMEM;
    case FS_STATUS_OUTSTANDING_OPERATIONS: return EBUSY;
    case FS_STATUS_INVALID_NAME: return EINVAL;
    case FS_STATUS_TOO_MANY_OPEN_FILES: return EMFILE;
    case FS_STATUS_SERVER_WAS_DENIED: return EACCES;
    case FS_STATUS_INVALID_WRITE: return EBADF;
    case FS_STATUS_INVALID_READ: return EBADF;
    case FS_STATUS_DIRECTORY_IS_FULL: return ENOSPC;
    case FS_STATUS_INVALID_COMMAND: return ENOSYS;
    case FS_STATUS_END_OF_DIRECTORY: return 0;
    case FS_STATUS_NO_FILE: return ENOENT;
    case FS_STATUS_NOT_DIRECTORY: return ENOTDIR;
    case FS_STATUS_ALREADY_EXISTS: return EEXIST;
    case FS_STATUS_NOT_EMPTY: return ENOTEMPTY;
    case FS_STATUS_NO_SPACE: return ENOSPC;
    case FS_STATUS_FILE_TOO_LARGE: return EFBIG;
    case FS_STATUS_NAME_TOO_LONG: return ENAMETOOLONG;
    case FS_STATUS_IS_DIRECTORY: return EISDIR;
    case FS_STATUS_READ_ONLY_FS: return EROFS;
    case FS_STATUS_IO_ERROR: return EIO;
    case FS_STATUS_CORRUPT: return EIO;
    case FS_STATUS_ACCESS_DENIED: return EACCES;
    case FS_STATUS_INVALID_ARGUMENT: return EINVAL;
    case FS_STATUS_BUSY: return EBUSY;
    case FS_STATUS_NOT_MOUNTED: return ENODEV;
    case FS_STATUS_ERROR:
    default: return EIO;
    }
}

const char *fs_status_string(fs_status status)
{
    switch (status) {
    case FS_STATUS_SUCCESS: return "success";
    case FS_STATUS_INVALID_BUFFER: return "invalid buffer";
    case FS_STATUS_INVALID_PATH: return "invalid path";
    case FS_STATUS_INVALID_FD: return "invalid file descriptor";
    case FS_STATUS_ALLOCATION_ERROR: return "out of server memory";
    case FS_STATUS_OUTSTANDING_OPERATIONS: return "operations outstanding";
    case FS_STATUS_INVALID_NAME: return "invalid name";
    case FS_STATUS_TOO_MANY_OPEN_FILES: return "too many open files";
    case FS_STATUS_SERVER_WAS_DENIED: return "permission denied";
    case FS_STATUS_INVALID_WRITE: return "not open for writing";
    case FS_STATUS_INVALID_READ: return "not open for reading";
    case FS_STATUS_DIRECTORY_IS_FULL: return "directory is full";
    case FS_STATUS_INVALID_COMMAND: return "unsupported command";
    case FS_STATUS_END_OF_DIRECTORY: return "end of directory";
    case FS_STATUS_NO_FILE: return "no such file or directory";
    case FS_STATUS_NOT_DIRECTORY: return "not a directory";
    case FS_STATUS_ALREADY_EXISTS: return "file exists";
    case FS_STATUS_NOT_EMPTY: return "directory not empty";
    case FS_STATUS_NO_SPACE: return "no space left on the volume";
    case FS_STATUS_FILE_TOO_LARGE: return "file too large";
    case FS_STATUS_NAME_TOO_LONG: return "file name too long";
    case FS_STATUS_IS_DIRECTORY: return "is a directory";
    case FS_STATUS_READ_ONLY_FS: return "read-only file system";
    case FS_STATUS_IO_ERROR: return "input/output error";
    case FS_STATUS_CORRUPT: return "volume is corrupt";
    case FS_STATUS_ACCESS_DENIED: return "file is read-only";
    case FS_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case FS_STATUS_BUSY: return "busy";
    case FS_STATUS_NOT_MOUNTED: return "volume not mounted";
    case FS_STATUS_ERROR:
    default: return "error";
    }
}
