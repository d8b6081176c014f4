/* fs_client: the client library of the asyncfat command and the FUSE mount. It speaks the
 * file-system protocol (protocol/fs_protocol.h) over one client
 * endpoint: a command queue, a completion queue, a share region and two eventfds. It is
 * the only code of the tools that encodes commands and decodes replies: each command has
 * one encoder (fs_conn_start_*), which the blocking calls use too.
 *
 * Many calls may be outstanding at once, from any number of threads. A call takes a slot
 * in the pending table (its id names the slot and carries a generation). There is no
 * reader thread: the first waiting thread becomes the poller, reads the completion queue
 * and hands each completion to its slot, in whatever order the server finishes them,
 * waking only the thread that waits on it; when its own call is done it passes the job to
 * another waiter. So a lone caller wakes straight from the server's notification, and
 * concurrent callers' requests become concurrent server requests. The server is notified
 * of queued commands once, when some caller is about to wait (for a completion, a free
 * slot or share space), not once per command: a batch of calls started together costs one
 * notification.
 *
 * Buffers: commands name data by {offset, size} in the share region. fs_conn_alloc hands
 * out share-region space in 4 KiB pages (first fit; a caller blocks while the region is
 * full). The blocking convenience calls allocate and free their own buffers and copy
 * through them; fs_conn_submit / fs_conn_wait are the asynchronous primitives.
 *
 * Failure: if the health callback says the server is gone, or the connection is closed,
 * every pending and later call completes with FS_STATUS_IO_ERROR instead of hanging.
 * Paths are C strings, '/'-separated from the volume root; an encoder's path may instead
 * start from a directory fd of the connection's (its `at`; 0 is the root), so that a
 * deep tree needs no path over FS_MAX_PATH_LENGTH (docs/PROTOCOL.md §2).
 *
 * Event-driven use (the FUSE mount, a component in the server's own loop): the endpoint
 * names a notify callback in place of the eventfds and a completed callback. Nothing then
 * ever waits: fs_conn_start_* queue commands, the loop calls fs_conn_dispatch when the
 * server notifies (and after it has started calls: a call that cannot be sent is refused
 * with a completion of its own), and each completion reaches completed(ctx, ticket, cmpl),
 * its ticket already free; the caller decodes it with fs_conn_finish. Not for this use:
 * fs_conn_wait*, the blocking calls, and fs_conn_alloc (fs_conn_try_alloc is). The caller
 * keeps fewer than FS_CONN_MAX_PENDING calls pending; one that finds the share region
 * full is refused with FS_STATUS_ALLOCATION_ERROR.
 */
#ifndef ASYNCFAT_TOOLS_FS_CLIENT_H
#define ASYNCFAT_TOOLS_FS_CLIENT_H

#include "protocol/fs_protocol.h"

#include <pthread.h>

#define FS_CONN_MAX_PENDING 256u   /* calls in flight; below the queue's 511, so it never fills */
#define FS_CONN_PAGE 4096u         /* share-region allocation unit */
#define FS_CONN_IO_CHUNK (256u * 1024u) /* largest single read/write the blocking calls issue */

typedef struct fs_conn_endpoint {
    fs_queue *commands;
    fs_queue *completions;
    uint8_t *share;
    uint64_t share_size;
    int notify_fd;             /* write 1 after queueing commands */
    int wait_fd;               /* readable when completions were published */
    /* Optional: called about once a second while a caller waits for a completion; false
     * means the server is gone. */
    bool (*healthy)(void *ctx);
    void *healthy_ctx;
    /* Event-driven use (see above): both set, and the eventfds unused. */
    void (*notify)(void *ctx);
    void (*completed)(void *ctx, uint32_t ticket, const fs_cmpl *cmpl);
    void *event_ctx;
    /* A client that runs its server itself (fs_system's inline layout): notify as above,
     * and instead of sleeping on wait_fd a waiting caller runs the server through
     * wait(event_ctx, timeout_ms) until completions may be there. Waits then need one
     * thread at a time (the poller) and nothing else to run the server. */
    void (*wait)(void *ctx, int timeout_ms);
} fs_conn_endpoint;

typedef struct fs_conn_slot {
    pthread_cond_t done_cond;
    fs_cmpl cmpl;
    uint16_t generation;
    bool in_use;
    bool done;
    bool waiting;              /* its caller is in fs_conn_wait */
    bool refused;              /* event-driven: done without the server, not yet delivered */
} fs_conn_slot;

typedef struct fs_conn {
    fs_conn_endpoint ep;
    pthread_mutex_t lock;      /* the pending table and the command queue */
    pthread_cond_t slot_free;
    fs_queue_end commands;
    fs_queue_end completions;  /* the poller's alone */
    uint32_t pending;
    bool broken;               /* the server is gone: complete everything with IO_ERROR */
    uint32_t refused_count;    /* event-driven: refused calls not yet delivered */
    bool notify_owed;          /* commands queued since the server was last notified */
    bool polling;              /* a waiter is reading the completion queue */
    uint32_t waiters;          /* callers in fs_conn_wait */
    int stop_fd;               /* eventfd that wakes the poller at close */
    /* share-region allocator */
    pthread_mutex_t share_lock;
    pthread_cond_t share_freed;
    uint8_t *page_used;        /* one byte per page: 0 free, else the run's length mark */
    uint32_t *run_pages;       /* pages in the run starting at each page */
    uint32_t page_count;
    uint64_t calls;            /* statistics: calls made, most in flight at once */
    uint32_t max_pending;
    /* The pending table, last: only slots [0, slots_ready) are initialised (a slot is taken
     * lowest first, so that is the most calls ever pending). A short command uses a few of
     * its 30 KiB, and the untouched rest costs no page faults. */
    uint32_t slots_ready;
    fs_conn_slot slots[FS_CONN_MAX_PENDING];
} fs_conn;

typedef uint32_t fs_conn_ticket;

/* Start the connection. Returns 0, or -1 with errno. */
int fs_conn_open(fs_conn *c, const fs_conn_endpoint *ep);
/* Pending calls complete with IO_ERROR, later ones fail at once. Call it once no thread is
 * inside a call any more. The endpoint stays the caller's. */
void fs_conn_close(fs_conn *c);

/* Share-region buffers. fs_conn_alloc blocks while no run of pages is free; NULL only if
 * `size` can never fit. The buffer's fs_buffer is fs_conn_buffer(c, p, size). */
void *fs_conn_alloc(fs_conn *c, size_t size);
/* The same, but NULL at once when no run of pages is free. */
void *fs_conn_try_alloc(fs_conn *c, size_t size);
void fs_conn_free(fs_conn *c, void *p);
static inline fs_buffer fs_conn_buffer(const fs_conn *c, const void *p, size_t size)
{
    return (fs_buffer){(uint64_t)((const uint8_t *)p - c->ep.share), size};
}

/* Asynchronous primitives: queue a command (its id is set here; blocks while the pending
 * table is full), then wait for its completion, which frees the ticket. */
fs_conn_ticket fs_conn_submit(fs_conn *c, fs_cmd *cmd);
void fs_conn_wait(fs_conn *c, fs_conn_ticket t, fs_cmpl *out);
/* Wait until any of the n tickets (n >= 1, all live, owned by the caller) completes; frees
 * that ticket, fills *out and returns its index in t[]. The others stay pending. */
uint32_t fs_conn_wait_any(fs_conn *c, const fs_conn_ticket *t, uint32_t n, fs_cmpl *out);
/* Submit and wait. Returns the status; *data (may be NULL) gets the completion's data. */
fs_status fs_conn_call(fs_conn *c, fs_cmd *cmd, uint64_t *data);
/* A ticket that completes at once with `status`, for a call that is not sent. */
fs_conn_ticket fs_conn_refuse(fs_conn *c, fs_status status);
/* Event-driven: hand every completion the server published, and every refused call, to
 * the endpoint's completed callback. */
void fs_conn_dispatch(fs_conn *c);

/* Asynchronous calls. fs_conn_start_* encodes one command, with a share buffer of the
 * call's own for what it names (paths) and for the reply's record, queues it and returns
 * at once. The caller waits for call->ticket (fs_conn_wait, fs_conn_wait_any) and hands
 * the completion to fs_conn_finish, which decodes the reply and frees the call's buffer.
 * A command that cannot be encoded (a path over FS_MAX_PATH_LENGTH) is not sent: its
 * ticket completes at once with the reason (INVALID_PATH). Reads and writes name a share
 * buffer of the caller's (fs_conn_alloc), so their data is not copied here. */
typedef struct fs_call {
    fs_conn_ticket ticket;
    uint8_t *share;            /* the call's own buffer, or NULL */
    uint32_t record_size;      /* bytes of reply record at its start */
} fs_call;

typedef struct fs_reply {
    fs_status status;
    uint64_t data;             /* the completion's: an fd, a byte count, a count of entries */
    union {
        fs_stat stat;          /* STAT, FSTAT, OPEN_STAT, SET_TIMES_STAT */
        fs_statfs statfs;      /* STATFS */
        fs_mount_report mount_report; /* MOUNT_REPORT */
        fs_open_read_record open_read; /* OPEN_READ, READ_PATH: the bytes follow it */
    } record;                  /* valid on SUCCESS */
} fs_reply;

void fs_conn_start_open(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags);
void fs_conn_start_open_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags);
void fs_conn_start_close(fs_conn *c, fs_call *call, uint64_t fd);
void fs_conn_start_truncate(fs_conn *c, fs_call *call, uint64_t fd, uint64_t length);
void fs_conn_start_read(fs_conn *c, fs_call *call, uint64_t fd, uint64_t offset, void *buf, size_t len);
void fs_conn_start_write(fs_conn *c, fs_call *call, uint64_t fd, uint64_t offset, const void *buf, size_t len);
/* Unix seconds; -1 leaves a time unchanged. */
void fs_conn_start_set_times(fs_conn *c, fs_call *call, uint64_t at, const char *path, int64_t atime, int64_t mtime);
/* The same on an open file or directory (FILE_SET_TIMES): no path looked up. A FILE_CLOSE
 * of the fd queued after it takes effect once it is done. */
void fs_conn_start_file_set_times(fs_conn *c, fs_call *call, uint64_t fd, int64_t atime, int64_t mtime);
void fs_conn_start_mkdir(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_initialise(fs_conn *c, fs_call *call);
void fs_conn_start_deinitialise(fs_conn *c, fs_call *call);
void fs_conn_start_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_fstat(fs_conn *c, fs_call *call, uint64_t fd);
void fs_conn_start_statfs(fs_conn *c, fs_call *call);
void fs_conn_start_mount_report(fs_conn *c, fs_call *call);
void fs_conn_start_sync(fs_conn *c, fs_call *call, uint64_t fd);
void fs_conn_start_remove(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_rmdir(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_rename(fs_conn *c, fs_call *call, uint64_t old_at, const char *old_path, uint64_t new_at,
                          const char *new_path);
void fs_conn_start_set_times_stat(fs_conn *c, fs_call *call, uint64_t at, const char *path, int64_t atime, int64_t mtime);
void fs_conn_start_opendir(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_closedir(fs_conn *c, fs_call *call, uint64_t fd);
void fs_conn_start_rewinddir(fs_conn *c, fs_call *call, uint64_t fd);
/* The next entries, as many as fit in cap bytes (DIR_READ_BATCH): on SUCCESS reply.data
 * entries lie at call->share (fs_conn_finish_keep), checked with fs_dir_batch_valid. */
void fs_conn_start_readdir_batch(fs_conn *c, fs_call *call, uint64_t fd, size_t cap);
/* OPEN_READ (keep an fd: reply.data) or READ_PATH (no fd kept): the record, then up to
 * cap bytes from offset 0 at call->share + sizeof(fs_open_read_record)
 * (fs_conn_finish_keep). */
void fs_conn_start_open_read(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t flags, size_t cap);
void fs_conn_start_read_path(fs_conn *c, fs_call *call, uint64_t at, const char *path, size_t cap);
/* FAT attributes (FS_ATTRIBUTE_*): the reply's data is the bits (as stored, after a set,
 * which clears `clear`, then sets `set`). */
void fs_conn_start_get_attributes(fs_conn *c, fs_call *call, uint64_t at, const char *path);
void fs_conn_start_set_attributes(fs_conn *c, fs_call *call, uint64_t at, const char *path, uint64_t set, uint64_t clear);
/* Decode the completion of call (waited for by the caller) and free its buffer. */
void fs_conn_finish(fs_conn *c, fs_call *call, const fs_cmpl *cmpl, fs_reply *out);
/* The same, keeping the call's buffer for what follows the record (call->share, NULL if
 * it had none): the caller frees it with fs_conn_free. */
void fs_conn_finish_keep(fs_conn *c, fs_call *call, const fs_cmpl *cmpl, fs_reply *out);

/* Blocking calls. Every one returns an fs_status. Their paths may be of any length: one
 * that does not fit in a command is sent from a directory fd opened along it, and that fd
 * closed again (a DIR_OPEN and a DIR_CLOSE per 4 KiB of path; shorter paths cost nothing
 * more). */
fs_status fs_conn_initialise(fs_conn *c);
fs_status fs_conn_deinitialise(fs_conn *c);
fs_status fs_conn_open_file(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd);
fs_status fs_conn_close_file(fs_conn *c, uint64_t fd);
/* len bytes (fewer only at the end of the file, or on an error), in FS_CONN_IO_CHUNK
 * requests. */
fs_status fs_conn_read(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t len, size_t *done);
fs_status fs_conn_write(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t len, size_t *done);
/* One FILE_READ or FILE_WRITE of len bytes, whatever its size (as pread and pwrite). */
fs_status fs_conn_pread(fs_conn *c, uint64_t fd, uint64_t offset, void *dst, size_t len, size_t *done);
fs_status fs_conn_pwrite(fs_conn *c, uint64_t fd, uint64_t offset, const void *src, size_t len, size_t *done);
fs_status fs_conn_file_size(fs_conn *c, uint64_t fd, uint64_t *size);
fs_status fs_conn_truncate(fs_conn *c, uint64_t fd, uint64_t length);
fs_status fs_conn_sync(fs_conn *c, uint64_t fd);
fs_status fs_conn_fstat(fs_conn *c, uint64_t fd, fs_stat *st);
fs_status fs_conn_stat(fs_conn *c, const char *path, fs_stat *st);
fs_status fs_conn_rename(fs_conn *c, const char *old_path, const char *new_path);
fs_status fs_conn_remove(fs_conn *c, const char *path);
fs_status fs_conn_mkdir(fs_conn *c, const char *path);
fs_status fs_conn_rmdir(fs_conn *c, const char *path);
fs_status fs_conn_statfs(fs_conn *c, fs_statfs *out);
fs_status fs_conn_mount_report(fs_conn *c, fs_mount_report *out);
/* What a mount report says to a user, for `image`: one line (no newline) when the volume
 * was not cleanly unmounted ("IMAGE was not cleanly unmounted; recovered: ..."), and a
 * second, after a newline, advising `asyncfat check` when recovery left damage alone.
 * False (out empty) after a clean mount. */
bool fs_mount_report_describe(const fs_mount_report *r, const char *image, char *out, size_t size);
/* The same lines on stderr, each after "asyncfat: ", when there is something to say. */
void fs_mount_report_warn(const fs_mount_report *r, const char *image);
/* Unix seconds; -1 leaves a time unchanged. */
fs_status fs_conn_set_times(fs_conn *c, const char *path, int64_t atime, int64_t mtime);
/* FAT attributes (FS_ATTRIBUTE_*): *attributes gets the bits (after a set, as stored; it
 * may be NULL there). */
fs_status fs_conn_get_attributes(fs_conn *c, const char *path, uint64_t *attributes);
fs_status fs_conn_set_attributes(fs_conn *c, const char *path, uint64_t set, uint64_t clear, uint64_t *attributes);

/* The extensions that answer with a record in the same round trip (docs/PROTOCOL.md):
 * open (or create) and stat; set the times and stat (the times as stored, FAT-rounded). */
fs_status fs_conn_open_stat(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *st);
fs_status fs_conn_set_times_stat(fs_conn *c, const char *path, int64_t atime, int64_t mtime, fs_stat *st);
/* Open and read the first bytes (OPEN_READ), or read without keeping the file open
 * (READ_PATH): the file's record, and up to cap bytes from offset 0 into dst (*got). */
fs_status fs_conn_open_read(fs_conn *c, const char *path, uint64_t flags, uint64_t *fd, fs_stat *st, void *dst,
                            size_t cap, size_t *got);
fs_status fs_conn_read_path(fs_conn *c, const char *path, fs_stat *st, void *dst, size_t cap, size_t *got);

/* Directories. fs_conn_readdir writes the next name (NUL-terminated, at most
 * FS_CONN_NAME_MAX bytes before the NUL) and, if st is not NULL, its stat record;
 * FS_STATUS_END_OF_DIRECTORY at the end. */
#define FS_CONN_NAME_MAX (FS_MAX_NAME_LENGTH * 3u)
fs_status fs_conn_opendir(fs_conn *c, const char *path, uint64_t *fd);
fs_status fs_conn_closedir(fs_conn *c, uint64_t fd);
fs_status fs_conn_readdir(fs_conn *c, uint64_t fd, char name[FS_CONN_NAME_MAX + 1], fs_stat *st);
fs_status fs_conn_rewinddir(fs_conn *c, uint64_t fd);
/* The next entries, as many as fit in cap bytes (DIR_READ_BATCH): *count records into dst,
 * read with fs_dir_batch_record. A reply with no record, or one that does not lie inside
 * the buffer, is FS_STATUS_ERROR and leaves dst untouched. */
fs_status fs_conn_readdir_batch(fs_conn *c, uint64_t fd, void *dst, size_t cap, uint64_t *count);
/* Does a batch of cap bytes hold `count` records that lie inside it? */
bool fs_dir_batch_valid(const void *batch, size_t cap, uint64_t count);
/* The record at byte `at` of a batch fs_conn_readdir_batch accepted: its stat and name
 * (NUL-terminated). Returns the byte where the next record starts. */
size_t fs_dir_batch_record(const void *batch, size_t at, fs_stat *st, char name[FS_CONN_NAME_MAX + 1]);

/* The errno a POSIX program expects for a status (0 for SUCCESS), and a short message. */
int fs_status_to_errno(fs_status status);
const char *fs_status_string(fs_status status);

#endif
