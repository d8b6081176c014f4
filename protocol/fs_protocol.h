/* The LionsOS file-system protocol (PROTOCOL.md §1): command and completion queues,
 * command parameters, status codes and the stat record, plus asyncfat's extensions.
 *
 * A connection is a command queue (client produces, server consumes), a completion queue
 * (server produces, client consumes) and a share region; buffers are {offset, size} in the
 * share region. Queues hold FS_QUEUE_CAPACITY 64-byte messages.
 *
 * Neither side trusts the other: each keeps its own counter privately (fs_queue_end) and
 * only publishes it; the peer's counter is read once per batch and the length clamped to
 * the capacity. A peer that scribbles over the queue can only hurt itself.
 * Ordering: producer writes entries, then a release store of tail; consumer loads tail with
 * acquire, copies entries out, then a release store of head.
 */
#ifndef ASYNCFAT_PROTOCOL_FS_PROTOCOL_H
#define ASYNCFAT_PROTOCOL_FS_PROTOCOL_H

#include "base/base.h"

#define FS_QUEUE_CAPACITY 511u
#define FS_MAX_PATH_LENGTH 4095u
#define FS_MAX_NAME_LENGTH 255u

typedef enum fs_cmd_type {
    FS_CMD_INITIALISE = 0,
    FS_CMD_DEINITIALISE = 1,
    FS_CMD_FILE_OPEN = 2,
    FS_CMD_FILE_CLOSE = 3,
    FS_CMD_STAT = 4,
    FS_CMD_FILE_READ = 5,
    FS_CMD_FILE_WRITE = 6,
    FS_CMD_FILE_SIZE = 7,
    FS_CMD_RENAME = 8,
    FS_CMD_FILE_REMOVE = 9,
    FS_CMD_FILE_TRUNCATE = 10,
    FS_CMD_DIR_CREATE = 11,
    FS_CMD_DIR_REMOVE = 12,
    FS_CMD_DIR_OPEN = 13,
    FS_CMD_DIR_CLOSE = 14,
    FS_CMD_FILE_SYNC = 15,
    FS_CMD_DIR_READ = 16,
    FS_CMD_DIR_SEEK = 17,
    FS_CMD_DIR_TELL = 18,
    FS_CMD_DIR_REWIND = 19,
    FS_CMD_LIONSOS_COUNT = 20,
    /* asyncfat extensions are numbered from here (server/fs_extensions.h, docs/PROTOCOL.md). */
} fs_cmd_type;

typedef enum fs_status {
    FS_STATUS_SUCCESS = 0,
    FS_STATUS_ERROR = 1,
    FS_STATUS_INVALID_BUFFER = 2,
    FS_STATUS_INVALID_PATH = 3,
    FS_STATUS_INVALID_FD = 4,
    FS_STATUS_ALLOCATION_ERROR = 5,
    FS_STATUS_OUTSTANDING_OPERATIONS = 6,
    FS_STATUS_INVALID_NAME = 7,
    FS_STATUS_TOO_MANY_OPEN_FILES = 8,
    FS_STATUS_SERVER_WAS_DENIED = 9,
    FS_STATUS_INVALID_WRITE = 10,
    FS_STATUS_INVALID_READ = 11,
    FS_STATUS_DIRECTORY_IS_FULL = 12,
    FS_STATUS_INVALID_COMMAND = 13,
    FS_STATUS_END_OF_DIRECTORY = 14,
    FS_STATUS_NO_FILE = 15,
    FS_STATUS_NOT_DIRECTORY = 16,
    FS_STATUS_ALREADY_EXISTS = 17,
    FS_STATUS_NOT_EMPTY = 18,
    /* asyncfat extensions */
    FS_STATUS_NO_SPACE = 19,        /* the volume is full */
    FS_STATUS_FILE_TOO_LARGE = 20,  /* past FAT's 4 GiB - 1 file size */
    FS_STATUS_NAME_TOO_LONG = 21,   /* a name component over 255 bytes / UTF-16 units */
    FS_STATUS_IS_DIRECTORY = 22,    /* a file operation on a directory */
    FS_STATUS_READ_ONLY_FS = 23,    /* the device or mount is read-only */
    FS_STATUS_IO_ERROR = 24,        /* the block device reported an error */
    FS_STATUS_CORRUPT = 25,         /* on-disk structures are inconsistent */
    FS_STATUS_ACCESS_DENIED = 26,   /* write to a file with the FAT read-only attribute */
    FS_STATUS_INVALID_ARGUMENT = 27,/* a value out of range (offset, length, flag) */
    FS_STATUS_BUSY = 28,            /* e.g. removing a directory some client has open */
    FS_STATUS_NOT_MOUNTED = 29,     /* a command before INITIALISE or after DEINITIALISE */
} fs_status;

/* FILE_OPEN flags. The low two bits are the access mode. */
#define FS_OPEN_FLAGS_READ_ONLY 0u
#define FS_OPEN_FLAGS_WRITE_ONLY 1u
#define FS_OPEN_FLAGS_READ_WRITE 2u
#define FS_OPEN_FLAGS_ACCESS_MASK 3u
#define FS_OPEN_FLAGS_CREATE 4u
/* asyncfat extensions */
#define FS_OPEN_FLAGS_TRUNCATE 8u     /* O_TRUNC */
#define FS_OPEN_FLAGS_EXCLUSIVE 16u   /* with CREATE: fail with ALREADY_EXISTS (O_EXCL) */
#define FS_OPEN_FLAGS_APPEND 32u      /* writes go to the end of the file (O_APPEND) */

typedef struct fs_buffer {
    uint64_t offset;          /* bytes, into the share region */
    uint64_t size;            /* bytes */
} fs_buffer;

typedef union fs_cmd_params {
    struct { fs_buffer path; uint64_t flags; } file_open;
    struct { uint64_t fd; } file_close;
    struct { fs_buffer path; fs_buffer buf; } stat;
    struct { uint64_t fd; uint64_t offset; fs_buffer buf; } file_read;
    struct { uint64_t fd; uint64_t offset; fs_buffer buf; } file_write;
    struct { uint64_t fd; } file_size;
    struct { fs_buffer old_path; fs_buffer new_path; } rename;
    struct { fs_buffer path; } file_remove;
    struct { uint64_t fd; uint64_t length; } file_truncate;
    struct { fs_buffer path; } dir_create;
    struct { fs_buffer path; } dir_remove;
    struct { fs_buffer path; } dir_open;
    struct { uint64_t fd; } dir_close;
    struct { uint64_t fd; } file_sync;
    struct { uint64_t fd; fs_buffer buf; } dir_read;
    struct { uint64_t fd; int64_t loc; } dir_seek;
    struct { uint64_t fd; } dir_tell;
    struct { uint64_t fd; } dir_rewind;
    uint8_t raw[48];
} fs_cmd_params;

typedef struct fs_cmd {
    uint64_t id;              /* the client's, echoed in the completion */
    uint64_t type;            /* fs_cmd_type */
    fs_cmd_params params;
} fs_cmd;

typedef struct fs_cmpl {
    uint64_t id;
    uint64_t status;          /* fs_status */
    uint64_t data;            /* per command: fd, bytes read/written, size, name length, location */
    uint8_t unused[40];
} fs_cmpl;

typedef union fs_msg {
    fs_cmd cmd;
    fs_cmpl cmpl;
    uint8_t raw[64];
} fs_msg;

typedef struct fs_queue {
    uint64_t head;            /* consumer advances */
    uint64_t tail;            /* producer advances */
    /* asyncfat extension, in LionsOS's padding (zero there): on a completion queue, the
     * client may set how many unread completions it wants before it is notified; the
     * server then notifies only when that many are waiting, or when none of the client's
     * requests is left in flight. 0 (the LionsOS behaviour): notify on every batch. */
    uint64_t notify_threshold;
    uint8_t padding[40];
    fs_msg buffer[FS_QUEUE_CAPACITY];
} fs_queue;

/* Stat record: seventeen u64 in this order. mode uses POSIX type and permission bits;
 * times are seconds since the Unix epoch. */
typedef struct fs_stat {
    uint64_t dev, ino, mode, nlink, uid, gid, rdev, size, blksize, blocks;
    uint64_t atime, mtime, ctime, atime_nsec, mtime_nsec, ctime_nsec, used;
} fs_stat;

#define FS_MODE_TYPE_MASK 0170000u
#define FS_MODE_DIRECTORY 0040000u
#define FS_MODE_REGULAR 0100000u

_Static_assert(sizeof(fs_buffer) == 16, "buffer layout");
_Static_assert(sizeof(fs_cmd_params) == 48, "params layout");
_Static_assert(offsetof(fs_cmd, type) == 8, "command layout");
_Static_assert(offsetof(fs_cmd, params) == 16, "command layout");
_Static_assert(sizeof(fs_cmd) == 64, "command layout");
_Static_assert(offsetof(fs_cmpl, status) == 8, "completion layout");
_Static_assert(offsetof(fs_cmpl, data) == 16, "completion layout");
_Static_assert(sizeof(fs_cmpl) == 64, "completion layout");
_Static_assert(sizeof(fs_msg) == 64, "message layout");
_Static_assert(offsetof(fs_queue, tail) == 8, "queue layout");
_Static_assert(offsetof(fs_queue, notify_threshold) == 16, "queue layout");
_Static_assert(offsetof(fs_queue, buffer) == 64, "queue layout");
_Static_assert(sizeof(fs_queue) == 32768, "queue layout");
_Static_assert(sizeof(fs_stat) == 136, "stat layout");
_Static_assert(offsetof(fs_cmd_params, file_read.buf) == 16, "read params layout");
_Static_assert(offsetof(fs_cmd_params, file_open.flags) == 16, "open params layout");
_Static_assert(offsetof(fs_cmd_params, rename.new_path) == 16, "rename params layout");
_Static_assert(offsetof(fs_cmd_params, dir_seek.loc) == 8, "seek params layout");

/* One side's view of a queue: the shared queue and this side's own counter, which is
 * kept here (the copy in shared memory is only published, never read back). */
typedef struct fs_queue_end {
    fs_queue *queue;
    uint64_t own;             /* head for a consumer, tail for a producer */
} fs_queue_end;

static inline void fs_queue_end_init(fs_queue_end *end, fs_queue *queue, bool producer)
{
    end->queue = queue;
    end->own = producer ? af_load_relaxed(&queue->tail) : af_load_relaxed(&queue->head);
}

/* Consumer: messages available (the producer's tail, clamped to capacity). */
static inline uint64_t fs_queue_available(const fs_queue_end *consumer)
{
    uint64_t n = af_load_acquire(&consumer->queue->tail) - consumer->own;
    return n > FS_QUEUE_CAPACITY ? FS_QUEUE_CAPACITY : n;
}

/* Consumer: copy up to max messages out, then publish the new head. Returns the count. */
static inline uint32_t fs_queue_consume(fs_queue_end *consumer, fs_msg *out, uint32_t max)
{
    uint64_t n = fs_queue_available(consumer);
    if (n > max)
        n = max;
    for (uint64_t i = 0; i < n; i++)
        af_memcpy(&out[i], &consumer->queue->buffer[(consumer->own + i) % FS_QUEUE_CAPACITY], sizeof(fs_msg));
    consumer->own += n;
    af_store_release(&consumer->queue->head, consumer->own);
    return (uint32_t)n;
}

/* Producer: messages the consumer has not taken yet (clamped). */
static inline uint64_t fs_queue_unread(const fs_queue_end *producer)
{
    uint64_t used = producer->own - af_load_acquire(&producer->queue->head);
    return used > FS_QUEUE_CAPACITY ? FS_QUEUE_CAPACITY : used;
}

/* Producer: free slots (capacity minus the consumer's view of the length, clamped). */
static inline uint64_t fs_queue_space(const fs_queue_end *producer)
{
    uint64_t used = producer->own - af_load_acquire(&producer->queue->head);
    return used >= FS_QUEUE_CAPACITY ? 0 : FS_QUEUE_CAPACITY - used;
}

/* Producer: write up to n messages and publish them. Returns how many fit. */
static inline uint32_t fs_queue_produce(fs_queue_end *producer, const fs_msg *msgs, uint32_t n)
{
    uint64_t space = fs_queue_space(producer);
    if (n > space)
        n = (uint32_t)space;
    for (uint32_t i = 0; i < n; i++)
        af_memcpy(&producer->queue->buffer[(producer->own + i) % FS_QUEUE_CAPACITY], &msgs[i], sizeof(fs_msg));
    producer->own += n;
    af_fence_release();
    af_store_release(&producer->queue->tail, producer->own);
    return n;
}

#endif
