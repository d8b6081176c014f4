/* The LionsOS file-system protocol as asyncfat speaks it (docs/PROTOCOL.md), the whole
 * wire format in one place: command and completion queues, every command's parameters
 * (LionsOS's and asyncfat's extensions, members of one union), status codes, open flags
 * and the records commands fill in (stat, statfs, directory batches, open-and-read).
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
    /* asyncfat extensions (docs/PROTOCOL.md) */
    FS_CMD_STATFS = 20,         /* out buf <- fs_statfs */
    FS_CMD_FSTAT = 21,          /* fd, out buf <- fs_stat (files and directories) */
    FS_CMD_SET_TIMES = 22,      /* path, atime, mtime (Unix seconds; negative keeps) */
    FS_CMD_DIR_READ_STAT = 23,  /* DIR_READ, and stat buf <- the entry's fs_stat */
    FS_CMD_OPEN_STAT = 24,      /* FILE_OPEN, and stat buf <- the opened file's fs_stat */
    FS_CMD_SET_TIMES_STAT = 25, /* SET_TIMES, and stat buf <- the stored (FAT-rounded) fs_stat */
    FS_CMD_DIR_READ_BATCH = 26, /* fd, buf <- as many fs_dir_record as fit; data = count */
    FS_CMD_OPEN_READ = 27,      /* FILE_OPEN, and buf <- fs_open_read_record + the first bytes */
    FS_CMD_READ_PATH = 28,      /* path, offset, buf <- fs_open_read_record + bytes; no fd kept */
    FS_CMD_GET_ATTRIBUTES = 29, /* path; data = the FS_ATTRIBUTE_* bits */
    FS_CMD_SET_ATTRIBUTES = 30, /* path, set, clear (FS_ATTRIBUTE_* bits); data = the bits as stored */
    FS_CMD_MOUNT_REPORT = 31,   /* out buf <- fs_mount_report: what the mount found and repaired */
    FS_CMD_FILE_SET_TIMES = 32, /* fd, atime, mtime: SET_TIMES on an open file (no path lookup) */
    FS_CMD_COUNT = 33,
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
    FS_STATUS_LIONSOS_COUNT = 19,
    /* asyncfat extensions: only for clients that opted in (docs/PROTOCOL.md) */
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

/* The opt-in to asyncfat's extensions. LionsOS's INITIALISE has no parameters (its clients
 * leave them zero); a client that puts FS_INITIALISE_MAGIC in initialise.magic and
 * FS_INITIALISE_EXTENSIONS in initialise.flags gets, until its next INITIALISE, the
 * extension commands (20-29), open flags (8-32) and statuses (19-29). Any other client is
 * served as LionsOS's servers do: extension commands are INVALID_COMMAND, extension flags
 * are unknown ones, and an extension status becomes the nearest LionsOS one
 * (docs/PROTOCOL.md). Other flag bits with the magic: INVALID_ARGUMENT. */
#define FS_INITIALISE_MAGIC 0x6173796e63666174ull /* "asyncfat" */
#define FS_INITIALISE_EXTENSIONS 1u

/* FILE_OPEN flags. The low two bits are the access mode. */
#define FS_OPEN_FLAGS_READ_ONLY 0u
#define FS_OPEN_FLAGS_WRITE_ONLY 1u
#define FS_OPEN_FLAGS_READ_WRITE 2u
#define FS_OPEN_FLAGS_ACCESS_MASK 3u
#define FS_OPEN_FLAGS_CREATE 4u
#define FS_OPEN_FLAGS_LIONSOS_MASK 7u
/* asyncfat extensions */
#define FS_OPEN_FLAGS_TRUNCATE 8u     /* O_TRUNC */
#define FS_OPEN_FLAGS_EXCLUSIVE 16u   /* with CREATE: fail with ALREADY_EXISTS (O_EXCL) */
#define FS_OPEN_FLAGS_APPEND 32u      /* writes go to the end of the file (O_APPEND) */

/* GET_ATTRIBUTES / SET_ATTRIBUTES: a file's FAT attributes. SET_ATTRIBUTES clears `clear`,
 * then sets `set`; only READ_ONLY, HIDDEN, SYSTEM and ARCHIVE change (FS_ATTRIBUTE_CHANGEABLE;
 * any other bit: INVALID_ARGUMENT, nothing changed). DIRECTORY only says what the file is. */
#define FS_ATTRIBUTE_READ_ONLY 0x01u
#define FS_ATTRIBUTE_HIDDEN 0x02u
#define FS_ATTRIBUTE_SYSTEM 0x04u
#define FS_ATTRIBUTE_DIRECTORY 0x10u
#define FS_ATTRIBUTE_ARCHIVE 0x20u
#define FS_ATTRIBUTE_CHANGEABLE 0x27u

typedef struct fs_buffer {
    uint64_t offset;          /* bytes, into the share region */
    uint64_t size;            /* bytes */
} fs_buffer;

/* A path buffer of a client that opted in (docs/PROTOCOL.md §2): its size word is
 * {length u32 @8, at u32 @12}, `at` a directory fd of the client's that the path starts
 * from, 0 the root (as every path of a client that did not opt in). */
#define FS_PATH_AT(length, at) (((uint64_t)(uint32_t)(at) << 32) | (uint32_t)(length))
#define FS_PATH_AT_LENGTH(size) ((size) & 0xFFFFFFFFu)
#define FS_PATH_AT_FD(size) ((size) >> 32)

/* Every command's parameters; a command that names an fd has it first (offset 0). Offsets
 * and sizes are in bytes; paths are path buffers (see FS_MAX_PATH_LENGTH). */
typedef union fs_cmd_params {
    struct { uint64_t magic; uint64_t flags; } initialise;         /* the opt-in, below */
    struct { fs_buffer path; uint64_t flags; } file_open;          /* flags: FS_OPEN_FLAGS_* */
    struct { uint64_t fd; } file_close;
    struct { fs_buffer path; fs_buffer buf; } stat;                /* buf >= sizeof(fs_stat) */
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
    struct { uint64_t fd; fs_buffer buf; } dir_read;               /* buf <- one name, no NUL */
    struct { uint64_t fd; int64_t loc; } dir_seek;                 /* loc: a DIR_TELL value */
    struct { uint64_t fd; } dir_tell;
    struct { uint64_t fd; } dir_rewind;
    /* asyncfat extensions */
    struct { fs_buffer buf; } statfs;                              /* buf >= sizeof(fs_statfs) */
    struct { uint64_t fd; fs_buffer buf; } fstat;                  /* buf >= sizeof(fs_stat) */
    struct { fs_buffer path; int64_t atime; int64_t mtime; } set_times;  /* Unix seconds */
    struct { uint64_t fd; fs_buffer name; fs_buffer stat; } dir_read_stat;
    struct { fs_buffer path; uint64_t flags; fs_buffer stat; } open_stat;
    struct { fs_buffer path; int64_t atime; int64_t mtime; fs_buffer stat; } set_times_stat;
    struct { uint64_t fd; fs_buffer buf; } dir_read_batch;
    struct { fs_buffer path; uint64_t flags; fs_buffer buf; } open_read;  /* buf >= 144 */
    struct { fs_buffer path; uint64_t offset; fs_buffer buf; } read_path; /* buf >= 144 */
    struct { fs_buffer path; } get_attributes;
    struct { fs_buffer path; uint64_t set; uint64_t clear; } set_attributes;
    struct { fs_buffer buf; } mount_report;                        /* buf >= sizeof(fs_mount_report) */
    struct { uint64_t fd; int64_t atime; int64_t mtime; } file_set_times; /* Unix seconds */
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

/* STATFS record: nine u64. Blocks are allocation units (FAT clusters). */
typedef struct fs_statfs {
    uint64_t block_size;       /* bytes per block */
    uint64_t blocks;           /* blocks in the volume */
    uint64_t blocks_free;
    uint64_t blocks_available;
    uint64_t files;            /* 0: FAT has no inode table */
    uint64_t files_free;
    uint64_t name_max;         /* bytes of UTF-8 in a name */
    uint64_t fat_type;         /* 12, 16 or 32 */
    uint64_t flags;            /* FS_STATFS_READ_ONLY */
} fs_statfs;
#define FS_STATFS_READ_ONLY 1u

/* MOUNT_REPORT record: eight u64. What mounting the volume found and did: a volume that
 * was not cleanly unmounted is recovered at a read-write mount (docs/ORDERING.md §5). */
typedef struct fs_mount_report {
    uint64_t flags;            /* FS_MOUNT_* */
    uint64_t renames_completed; /* interrupted renames finished from their records */
    uint64_t orphans_removed;  /* long-name entries without their short entry */
    uint64_t chains_cut;       /* chains longer than their files' sizes */
    uint64_t lost_freed;       /* lost clusters freed */
    uint64_t fat_disagreements; /* clusters the FAT copies disagreed on */
    uint64_t fat_blocks_copied; /* FAT copy blocks rewritten from the active FAT */
    uint64_t reserved;         /* 0 */
} fs_mount_report;
#define FS_MOUNT_WAS_DIRTY 1u  /* not cleanly unmounted before this mount */
#define FS_MOUNT_RECOVERED 2u  /* recovery ran to the end */
#define FS_MOUNT_NEEDS_CHECK 4u /* damage a power cut does not cause, left alone: run a checker */

/* DIR_READ_BATCH packs entries one after another from the buffer's start: this header,
 * then name_len bytes of UTF-8 name (no NUL), then zero padding to a multiple of 8 so the
 * next header is aligned. */
typedef struct fs_dir_record {
    fs_stat stat;
    uint64_t name_len;         /* bytes */
} fs_dir_record;
#define FS_DIR_BATCH_MAX_ENTRIES 256u   /* per DIR_READ_BATCH call */
#define FS_DIR_RECORD_SIZE(name_len) (sizeof(fs_dir_record) + (((name_len) + 7u) & ~(uint64_t)7u))

/* OPEN_READ's and READ_PATH's buffer: this header, then the file's bytes from offset 0
 * (READ_PATH: from its offset), as many as the rest of the buffer holds, fewer at the end
 * of the file. */
typedef struct fs_open_read_record {
    fs_stat stat;              /* the opened file's, as FSTAT gives it */
    uint64_t read;             /* bytes of data after the header */
} fs_open_read_record;

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
_Static_assert(offsetof(fs_cmd_params, initialise.flags) == 8, "initialise layout");
_Static_assert(offsetof(fs_cmd_params, set_times.mtime) == 24, "set_times layout");
_Static_assert(offsetof(fs_cmd_params, dir_read_stat.stat) == 24, "dir_read_stat layout");
_Static_assert(offsetof(fs_cmd_params, open_stat.flags) == 16, "open_stat layout");
_Static_assert(offsetof(fs_cmd_params, open_stat.stat) == 24, "open_stat layout");
_Static_assert(offsetof(fs_cmd_params, set_times_stat.stat) == 32, "set_times_stat layout");
_Static_assert(offsetof(fs_cmd_params, dir_read_batch.buf) == 8, "dir_read_batch layout");
_Static_assert(offsetof(fs_cmd_params, open_read.flags) == 16, "open_read layout");
_Static_assert(offsetof(fs_cmd_params, open_read.buf) == 24, "open_read layout");
_Static_assert(offsetof(fs_cmd_params, read_path.offset) == 16, "read_path layout");
_Static_assert(offsetof(fs_cmd_params, read_path.buf) == 24, "read_path layout");
_Static_assert(offsetof(fs_cmd_params, set_attributes.set) == 16, "set_attributes layout");
_Static_assert(offsetof(fs_cmd_params, set_attributes.clear) == 24, "set_attributes layout");
_Static_assert(offsetof(fs_cmd_params, file_set_times.mtime) == 16, "file_set_times layout");
/* fd first, for every command that names one. */
_Static_assert(offsetof(fs_cmd_params, file_read.fd) == 0 && offsetof(fs_cmd_params, file_write.fd) == 0 &&
                   offsetof(fs_cmd_params, file_size.fd) == 0 && offsetof(fs_cmd_params, file_truncate.fd) == 0 &&
                   offsetof(fs_cmd_params, file_sync.fd) == 0 && offsetof(fs_cmd_params, file_close.fd) == 0 &&
                   offsetof(fs_cmd_params, dir_close.fd) == 0 && offsetof(fs_cmd_params, dir_read.fd) == 0 &&
                   offsetof(fs_cmd_params, dir_seek.fd) == 0 && offsetof(fs_cmd_params, dir_tell.fd) == 0 &&
                   offsetof(fs_cmd_params, dir_rewind.fd) == 0 && offsetof(fs_cmd_params, fstat.fd) == 0 &&
                   offsetof(fs_cmd_params, dir_read_stat.fd) == 0 && offsetof(fs_cmd_params, dir_read_batch.fd) == 0,
               "fd first");
_Static_assert(sizeof(fs_statfs) == 72, "statfs layout");
_Static_assert(sizeof(fs_mount_report) == 64, "mount report layout");
_Static_assert(sizeof(fs_dir_record) == 144, "dir record layout");
_Static_assert(sizeof(fs_open_read_record) == 144, "open_read record layout");

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
