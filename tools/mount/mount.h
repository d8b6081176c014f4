/* asyncfat mount: the FUSE file system, a client of the server like the rest of the
 * command, and a component of the server's own loop. The mount command starts the driver,
 * the server and this component on one thread of its process (fs_system's client
 * component): the /dev/fuse descriptor is one of the loop's, so a FUSE request becomes a
 * server request with no thread or process in between, and a notification between the
 * mount and the server is a deferred call. One thread serves any number of FUSE requests
 * at once: each becomes an operation (mount_op) that starts server calls and goes on when
 * their completions come (fs_client's event-driven use), replying to the kernel at the end.
 *
 * libfuse's low-level API: the kernel names files by node ids, which the mount gives out
 * (nodes.c: a node per name the kernel looked up, with its parent and name, from which
 * the server's path is made; renames move nodes, unlinks detach them). A file unlinked
 * while open stays usable through its descriptors (the server's POSIX semantics); one
 * whose handles hold no server fd is pinned by an fd of the mount's before the unlink.
 * Name components over 255 bytes get ENAMETOOLONG here, as the kernel does not check them
 * for FUSE. Unmount (fusermount3 -u) or SIGINT/SIGTERM/SIGHUP end it: DEINITIALISE makes
 * the server sync and unmount, leaving the volume clean.
 *
 * Speed: while mounted this is the volume's only writer, so the kernel may keep names,
 * attributes and file pages long (fuse_init.c); directory listings carry attributes and
 * come a batch of entries per request (dir_streams.c), so `ls -l` or `rm -r` look nothing
 * up; the lookup before a create is answered here when the directory's names are all
 * known (known_names.c); flush is not implemented, so the kernel stops sending it after
 * the first ENOSYS. A `touch` of a new file is three requests (OPEN_STAT, SET_TIMES_STAT,
 * FILE_CLOSE). A file opened for reading comes with its first bytes for the first READ
 * (read_handles.c), so reading a small file is one request; a sequential read goes in
 * 1 MiB windows (fuse_init.c).
 *
 * The parts:
 *   mount_command.c     `asyncfat mount`: options, the system, signals, the background
 *   mount_loop.c        the component: the FUSE session in the loop, operations and their
 *                       server calls, waiting for share space or a retry, shutdown
 *   fuse_ring.c         FUSE over io_uring, where the kernel offers it
 *   fuse_init.c         what the mount asks of the kernel at INIT (caching, readahead)
 *   nodes.c             node ids, names and paths
 *   entry_ops.c         lookup, forget, getattr, setattr, mkdir, unlink, rmdir, rename, statfs
 *   attribute_ops.c     FAT attributes: chmod's write bits, vfat's attribute ioctls
 *   file_ops.c          open, create, read, write, flush, fsync, release
 *   dir_streams.c       open directories: batched listings, offsets, rewind
 *   read_handles.c      read-only opens that carry the file's first bytes
 *   fd_cache.c          the server's fds as a cache under the kernel's open files
 *   known_names.c       directories whose names are all known, to answer lookups of absent names
 *   posix_translation.c stat records, statuses, flags and times between POSIX and the protocol
 * Every request goes through fs_client, which alone encodes commands and decodes replies.
 * Everything here runs on the loop's thread, except the mount command's main thread
 * (which waits, and turns signals into a stop request).
 */
#ifndef ASYNCFAT_TOOLS_MOUNT_MOUNT_H
#define ASYNCFAT_TOOLS_MOUNT_MOUNT_H

#define FUSE_USE_VERSION 312
#include "tools/cli.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#define MOUNT_TIMEOUT_S 3600.0   /* how long the kernel may keep names and attributes */

typedef struct mount_node mount_node;
typedef struct mount_handle mount_handle;
typedef struct mount_op mount_op;

/* Set by mount_command.c before the system starts. */
typedef struct mount_context {
    fs_conn conn;              /* event-driven, on the loop's thread */
    uid_t owner_uid;           /* the mounting user owns every file */
    gid_t owner_gid;
    const char *image;
    const cli_image *volume;   /* where the volume lies, to say why it does not mount */
    const char *mount_point;   /* absolute, for fuse_init.c to find the mount's device */
    const char *fuse_options;  /* -o options for libfuse; empty: none */
    bool read_only;
    int stop_fd;               /* eventfd: the main thread asks for an unmount */
    int ready_fd;              /* background mode: the parent learns the outcome; -1 */
    uint32_t max_open;         /* -o max_open: open files at most; 0: as memory allows */
    bool io_uring;             /* -o io_uring: take FUSE over io_uring where offered */
    int status;                /* exit status once the loop has ended */
    uint64_t change_epoch;     /* advanced by every change to the volume through the mount */
} mount_context;
extern mount_context mount_ctx;

/* ---- mount_loop.c: the component and its operations ---- */
void mount_component_init(void);
void mount_component_notified(unsigned channel);
void mount_component_fini(void);

/* What an operation does with a server call's reply. payload: what followed the record
 * in the call's buffer (OPEN_READ's bytes, DIR_READ_BATCH's entries), valid only during
 * the call; NULL if none. */
typedef void (*mount_then)(mount_op *op, const fs_reply *reply, const uint8_t *payload);

/* One FUSE request being served (req NULL: the mount's own, e.g. closing a pin). At most
 * one server call at a time: start it with fs_conn_start_*(&mount_ctx.conn, &op->call,
 * ...), then mount_called(op, then). */
struct mount_op {
    fuse_req_t req;
    fs_call call;
    mount_then then;
    void (*resume)(mount_op *op); /* a waiting operation goes on here */
    mount_op *next_waiting;
    /* the request */
    fuse_ino_t ino, parent, new_parent;
    char *name, *new_name;     /* owned copies */
    struct fuse_file_info fi;
    mount_handle *handle;
    struct stat attr;          /* setattr's */
    int to_set, flags, attempts;
    size_t size;
    off_t offset;
    uint8_t *data;             /* a share buffer of its own (mount_data_alloc) */
    size_t data_size;
    bool data_borrowed;        /* data is the ring entry's payload, not the operation's */
    uint8_t *held;             /* write data kept while it waits for a share buffer */
    bool uses_fd;              /* holds handle->fd in use (fd_cache_use) */
    uint64_t pin_flags;        /* unlink, rename: how the pin is opened */
    void (*after_evict)(mount_op *op); /* fd_cache_evict's continuation */
    uint64_t sent_epoch;
    uint64_t fd;
    fs_status status;
    fs_stat record;
    /* The server's names for the request's files (mount_path): each path starts at the
     * root (at 0) or at a directory fd of the mount's (an anchor, nodes.c). */
    uint64_t at, new_at;
    fuse_ino_t path_node, anchor_node; /* mount_path's state while it opens anchors */
    const char *path_name;
    bool path_new;
    uint32_t anchors_opened;
    void (*path_next)(mount_op *op);
    /* Last: a reused operation is zeroed up to here (mount_loop.c op_take). */
    char path[FS_MAX_PATH_LENGTH + 1], new_path[FS_MAX_PATH_LENGTH + 1];
};

/* A new operation for req (copying nothing); NULL: out of memory (the request is then
 * answered ENOMEM). */
mount_op *mount_op_new(fuse_req_t req);
/* The operation is over (replied to): free it. */
void mount_op_end(mount_op *op);
/* Reply with an error (a positive errno, or 0) and end. */
void mount_op_fail(mount_op *op, int err);
void mount_called(mount_op *op, mount_then then);
/* A then that just ends the operation (the mount's own calls whose reply does not matter). */
void mount_then_end(mount_op *op, const fs_reply *reply, const uint8_t *payload);
/* Park an operation until the server has answered something (share space or room in the
 * pending table may then be free): resume(op) runs then. */
void mount_wait_room(mount_op *op, void (*resume)(mount_op *op));
/* Park it for a few milliseconds (a directory still open on the server: BUSY). */
void mount_wait_retry(mount_op *op, void (*resume)(mount_op *op));
/* Room for one more server call now (the pending table is not nearly full). */
bool mount_call_room(void);
/* start(op) now if there is room for its call, else once there is (mount_wait_room). */
void mount_start_when_room(mount_op *op, void (*start)(mount_op *op));
/* A share buffer for read or write data (NULL: none free now; wait and try again). */
uint8_t *mount_data_alloc(size_t size);
void mount_data_free(uint8_t *p, size_t size);
/* The volume changed through the mount. */
static inline void mount_changed(void) { mount_ctx.change_epoch++; }

/* The kernel's cached attributes of a node are stale (a change it did not ask for). */
void mount_invalidate_attributes(fuse_ino_t ino);

/* Deliver server completions, go on with waiting operations, send queued replies: every
 * event handler of the mount ends with this. */
void mount_settle(void);
/* Share space kept for good (the ring's buffers), taken from what read and write data may
 * use; NULL if that would leave too little. */
uint8_t *mount_share_keep(size_t size);

/* ---- fuse_ring.c: FUSE over io_uring ----
 * Where the kernel offers it at INIT (Linux 6.14+, when the administrator has set
 * /sys/module/fuse/parameters/enable_uring) and -o io_uring=0 was not given, requests
 * come and replies go through an io_uring of the mount's thread. A reply and the fetch of
 * the next request are one submission, and one io_uring_enter per loop turn carries all
 * of them, where /dev/fuse costs a read and a writev per request. libfuse 3.14 does not
 * speak this protocol: it gets each request as if read from /dev/fuse, and its replies
 * are taken from its writev (fuse_session_custom_io). INIT, FORGET, INTERRUPT and
 * notifications stay on /dev/fuse. */
int fuse_ring_attach(struct fuse_session *session, bool wanted); /* after mounting */
void fuse_ring_saw_request(const void *mem, size_t size);        /* each /dev/fuse request */
void fuse_ring_ready(void *ctx);                                 /* the ring's fd is readable */
void fuse_ring_flush(void);                                      /* submit queued replies */
void fuse_ring_close(void);
uint64_t fuse_ring_requests(void);                               /* served through the ring */
/* The share region's room for the ring's buffers, where enable_uring is set at start (0
 * otherwise: no ring is expected). ASYNCFAT_RING_UNSHARED in the environment gives none,
 * for the tests: the buffers that do not fit in what data may spare then live outside
 * the share region, and replies and write data are copied. */
size_t fuse_ring_share_bytes(bool wanted);
/* While libfuse is given a ring request: true if data (a WRITE's) lies in its payload in
 * the share region, where the server may take it from; the payload for a READ's reply, if
 * the share region holds it and size fits (NULL otherwise). Both stay the operation's
 * until it replies. */
bool fuse_ring_request_data(const void *data, size_t size);
uint8_t *fuse_ring_reply_space(size_t size);

/* ---- fuse_init.c ---- */
void mount_ll_init(void *userdata, struct fuse_conn_info *conn);

/* ---- nodes.c ----
 * Node 1 is the root. A node is linked (found under its parent by name) until an unlink,
 * an rmdir or a rename over it detaches it; it lives while the kernel holds lookups of it
 * or while handles are open on it.
 *
 * Deep trees: a path from the root is at most FS_MAX_PATH_LENGTH bytes, so a name deeper
 * than that is sent relative to an anchor, a directory fd the mount keeps on an ancestor
 * (opened relative to a higher anchor if need be), from the deepest ancestor whose own
 * path fits, so a tree of any depth needs one anchor per ~4 KiB of path. Only such names
 * pay for anchors: a path that fits from the root is sent from the root, as always. An
 * anchor is closed when its node is detached or freed. */
struct mount_node {
    fuse_ino_t id;
    mount_node *parent;        /* NULL: the root, or detached */
    char *name;
    uint64_t lookups;          /* the kernel's count */
    uint32_t children;         /* linked nodes naming this one as parent */
    bool linked;
    mount_handle *handles;     /* open on it */
    bool pinned;               /* pin_fd: the mount's own fd, for an unlinked file */
    uint64_t pin_fd;
    bool pin_writable;         /* the pin was opened for reading and writing */
    bool anchored;             /* anchor_fd: the mount's fd of this directory, for deep names */
    uint64_t anchor_fd;
    bool stat_known;           /* the last record the server gave, at stat_epoch */
    uint64_t stat_epoch;
    fs_stat stat;
    mount_node *hash_next, *id_next;
};
void nodes_init(void);
void nodes_free(void);
mount_node *node_get(fuse_ino_t id);
/* The linked child `name` of parent, or NULL. */
mount_node *node_find(mount_node *parent, const char *name);
/* The linked child `name` of parent, added if absent; its lookup count goes up by one. */
mount_node *node_lookup(mount_node *parent, const char *name);
/* The kernel forgot n lookups. */
void node_forget(mount_node *node, uint64_t n);
/* No longer reachable by name (unlinked, or replaced by a rename). */
void node_detach(mount_node *node);
/* Renamed: now `name` under new_parent. */
void node_move(mount_node *node, mount_node *new_parent, const char *name);
/* Path of a node, or of `name` under it (name NULL: the node's own), into out
 * (FS_MAX_PATH_LENGTH + 1 bytes). False: too long, or the node is detached. */
bool node_path(const mount_node *node, const char *name, char *out);
/* Run next(op) once op->path and op->at (new_path: op->new_path and op->new_at) name
 * `name` under node (name NULL: the node itself; a name the op owns) for the server: at
 * once when the path fits from the root or from an anchor an ancestor holds, else after
 * opening the anchors it needs. A detached node fails the op with ENOENT. */
void mount_path(mount_op *op, mount_node *node, const char *name, bool new_path, void (*next)(mount_op *op));
/* Remember a record the server gave (for read-only opens of small files). */
void node_note_stat(mount_node *node, const fs_stat *rec);
/* A handle opened or closed on the node (a node may go when its last one closes). */
void node_add_handle(mount_node *node, mount_handle *h);
void node_remove_handle(mount_node *node, mount_handle *h);
/* An fd for the node's file without a name (a handle's, or the pin); false: none. */
bool node_any_fd(const mount_node *node, uint64_t *fd);
/* Does the node have a file handle (one an unlink must pin for: its fd may be evicted,
 * and /proc/self/fd may open the file again)? And the pin's flags for it. */
bool node_needs_pin(const mount_node *node);
uint64_t node_pin_flags(const mount_node *node);
/* A pin opened (fd, with flags) for node: it becomes the node's pin, or is closed again
 * if the node went or was pinned meanwhile. */
void node_adopt_pin(mount_node *node, uint64_t fd, uint64_t flags);

/* ---- entry_ops.c ---- */
void mount_ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void mount_ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void mount_ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void mount_ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
void mount_ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void mount_ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void mount_ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void mount_ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t new_parent,
                     const char *new_name, unsigned int flags);
void mount_ll_statfs(fuse_req_t req, fuse_ino_t ino);
/* setattr's last step: the times, then the reply with the attributes as stored. */
void mount_setattr_times(mount_op *op);

/* ---- attribute_ops.c ----
 * chmod (setattr's step after the size): no write bit sets the read-only attribute, any
 * clears it, as vfat does; the other mode bits are accepted and ignored. FAT_IOCTL_GET_
 * and FAT_IOCTL_SET_ATTRIBUTES (linux/msdos_fs.h) on an open file or directory. */
void mount_setattr_mode(mount_op *op);
void mount_ll_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg, struct fuse_file_info *fi,
                    unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz);
/* Reply to a lookup or create of node with rec (its lookup count already counted). */
void mount_fill_entry(mount_node *node, const fs_stat *rec, struct fuse_entry_param *e);

/* ---- file_ops.c and read_handles.c: open files ----
 * fi->fh is the address of a mount_handle. A read-only open holds the file's first bytes
 * (read_handles.c) and may have no server fd until a read needs one. */
struct mount_handle {
    mount_node *node;
    bool is_dir;
    bool has_fd;
    bool borrowed;             /* fd is the node's pin, not the handle's to close */
    uint64_t fd;               /* the server's, once has_fd */
    bool opening;              /* an open for it is on its way: waiters wait */
    mount_op *fd_waiters;
    uint8_t *bytes;            /* read-only opens: the first bytes, NULL once used */
    size_t len;
    bool whole;                /* they are the whole file */
    uint64_t epoch;            /* mount_ctx.change_epoch when the open was sent */
    mount_handle *node_next;   /* on node->handles */
    uint64_t open_flags;       /* FILE_OPEN flags to open it again with (access, APPEND) */
    bool cached;               /* its own fd is counted by fd_cache.c */
    uint32_t fd_users;         /* operations using the fd now: it is not evicted */
    mount_handle *lru_prev, *lru_next; /* fd_cache.c's use order */
    void *dir;                 /* dir_streams.c's listing state */
};
void mount_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
void mount_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void mount_ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi);
void mount_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
static inline mount_handle *mount_handle_of(const struct fuse_file_info *fi)
{
    return (mount_handle *)(uintptr_t)fi->fh;
}
/* Run then(op) once op->handle has a server fd (op->fd), opening the file by its path now
 * if it has none, or fail the operation. */
void mount_with_fd(mount_op *op, void (*then)(mount_op *op));
/* Close the handle on the server if it holds an fd of its own, and free it. then(op) runs
 * after (op->status: the close's). */
void mount_handle_close(mount_op *op, void (*then)(mount_op *op));

/* fd_cache.c: a handle's fd is a cache entry (the server allows FS_SERVER_MAX_FDS).
 * attach: the handle now holds an fd of its own (node_add_handle, a reopen); detach: it
 * is closing it or going. use: op uses op->handle's fd (op->fd), so it is not evicted
 * until the op ends (done, from mount_op_end). evict: close the least recently used idle
 * fd with op's call, then then(op); false when there is none (or op tried enough). */
void fd_cache_attach(mount_handle *h);
void fd_cache_detach(mount_handle *h);
/* A handle was added to or removed from its node (counts it, attaches or detaches). */
void fd_cache_handle_added(mount_handle *h);
void fd_cache_handle_removed(mount_handle *h);
void fd_cache_use(mount_op *op);
void fd_cache_done(mount_op *op);
bool fd_cache_evict(mount_op *op, void (*then)(mount_op *op));
/* A pin (an unlinked file's fd of the mount's own) or an anchor (nodes.c) made or closed. */
void fd_cache_count_pin(bool added);
/* Close a server fd no request waits on (a file's, or with dir a directory's: FILE_CLOSE
 * does not take a directory fd), answered in the background (the server closes it at
 * DEINITIALISE if no op can be had). */
void fd_close_in_background(uint64_t fd, bool dir);
/* File handles open now (for -o max_open). */
uint32_t fd_cache_open_files(void);

/* read_handles.c */
void read_handle_open(mount_op *op);
/* Answer a read from the handle's first bytes; false when they cannot (read from the
 * server). */
bool read_handle_read(mount_op *op);

/* ---- dir_streams.c ---- */
void mount_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void mount_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void mount_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void mount_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ---- posix_translation.c ---- */
/* 0, or ENAMETOOLONG if name (NULL: none) is longer than FAT allows. */
int mount_check_name(const char *name);
/* The errno FUSE wants for a status (0 for SUCCESS). */
int mount_errno(fs_status st);
/* A stat record as the kernel sees it: owned by the mounting user, numbered by node. */
void mount_fill_stat(const fs_stat *in, fuse_ino_t ino, struct stat *out);
/* open(2) flags to FILE_OPEN flags (access mode, O_TRUNC, O_APPEND). */
uint64_t mount_open_flags(int flags);
/* A setattr time to SET_TIMES's: -1 when not set, now for *_NOW. */
int64_t mount_time_arg(int to_set, int set_bit, int now_bit, const struct timespec *ts);

/* ---- known_names.c ----
 * For directories whose names are all known ("D" keys), names that exist ("N" keys). An
 * extra "N" key only costs a round trip; what must hold is that every name existing in a
 * "D" directory has its "N" key, and anything that could break that drops the whole table
 * (which advances its epoch). */
void known_names_put(char kind, const char *path);
void known_names_del(char kind, const char *path);
void known_names_drop_all(void);
/* Advanced whenever the table is dropped. */
uint64_t known_names_epoch(void);
/* True when `path` certainly names nothing. */
bool known_names_absent(const char *path);

#endif
