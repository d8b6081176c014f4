/* asyncfat's extensions to the LionsOS file-system protocol, numbered after its 20
 * commands and 18 statuses (protocol/fs_protocol.h). Documented in docs/PROTOCOL.md.
 * Their parameters fit the 48-byte params union like the base commands'. */
#ifndef ASYNCFAT_SERVER_FS_EXTENSIONS_H
#define ASYNCFAT_SERVER_FS_EXTENSIONS_H

#include "protocol/fs_protocol.h"

enum {
    FS_CMD_STATFS = 20,        /* out buf <- fs_statfs */
    FS_CMD_FSTAT = 21,         /* fd, out buf <- fs_stat (files and directories) */
    FS_CMD_SET_TIMES = 22,     /* path buf, atime i64, mtime i64 (Unix seconds; -1 keeps) */
    FS_CMD_DIR_READ_STAT = 23, /* fd, name buf, stat buf: DIR_READ plus the entry's stat */
    /* One round trip where a client would otherwise need two or many: */
    FS_CMD_OPEN_STAT = 24,      /* FILE_OPEN, and stat buf <- the opened file's fs_stat */
    FS_CMD_SET_TIMES_STAT = 25, /* SET_TIMES, and stat buf <- the stored (FAT-rounded) fs_stat */
    FS_CMD_DIR_READ_BATCH = 26, /* fd, buf <- as many fs_dir_record as fit; data = count */
    FS_CMD_OPEN_READ = 27,      /* FILE_OPEN, and buf <- fs_open_read_record + the first bytes */
    FS_CMD_READ_PATH = 28,      /* path, offset, buf <- fs_open_read_record + bytes; no fd kept */
    FS_CMD_COUNT = 29,
};

typedef union fs_ext_params {
    struct { fs_buffer buf; } statfs;
    struct { uint64_t fd; fs_buffer buf; } fstat;
    struct { fs_buffer path; int64_t atime; int64_t mtime; } set_times;
    struct { uint64_t fd; fs_buffer name; fs_buffer stat; } dir_read_stat;
    struct { fs_buffer path; uint64_t flags; fs_buffer stat; } open_stat;
    struct { fs_buffer path; int64_t atime; int64_t mtime; fs_buffer stat; } set_times_stat;
    struct { uint64_t fd; fs_buffer buf; } dir_read_batch;
    struct { fs_buffer path; uint64_t flags; fs_buffer buf; } open_read;
    struct { fs_buffer path; uint64_t offset; fs_buffer buf; } read_path;
    uint8_t raw[48];
} fs_ext_params;

/* STATFS record: nine u64. Blocks are clusters. */
typedef struct fs_statfs {
    uint64_t block_size;       /* bytes per cluster */
    uint64_t blocks;           /* clusters in the volume */
    uint64_t blocks_free;
    uint64_t blocks_available;
    uint64_t files;            /* 0: FAT has no inode table */
    uint64_t files_free;
    uint64_t name_max;         /* bytes of UTF-8 in a name */
    uint64_t fat_type;         /* 12, 16 or 32 */
    uint64_t flags;            /* FS_STATFS_READ_ONLY */
} fs_statfs;
#define FS_STATFS_READ_ONLY 1u

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
    fs_stat stat;              /* the opened file's, as OPEN_STAT gives it */
    uint64_t read;             /* bytes of data after the header */
} fs_open_read_record;

_Static_assert(sizeof(fs_ext_params) == 48, "extension params fit the command");
_Static_assert(sizeof(fs_statfs) == 72, "statfs layout");
_Static_assert(offsetof(fs_ext_params, set_times.mtime) == 24, "set_times layout");
_Static_assert(offsetof(fs_ext_params, dir_read_stat.stat) == 24, "dir_read_stat layout");
_Static_assert(offsetof(fs_ext_params, open_stat.flags) == 16, "open_stat layout");
_Static_assert(offsetof(fs_ext_params, open_stat.stat) == 24, "open_stat layout");
_Static_assert(offsetof(fs_ext_params, set_times_stat.stat) == 32, "set_times_stat layout");
_Static_assert(offsetof(fs_ext_params, dir_read_batch.buf) == 8, "dir_read_batch layout");
_Static_assert(sizeof(fs_dir_record) == 144, "dir record layout");
_Static_assert(offsetof(fs_ext_params, open_read.flags) == 16, "open_read layout");
_Static_assert(offsetof(fs_ext_params, open_read.buf) == 24, "open_read layout");
_Static_assert(offsetof(fs_ext_params, read_path.offset) == 16, "read_path layout");
_Static_assert(offsetof(fs_ext_params, read_path.buf) == 24, "read_path layout");
_Static_assert(sizeof(fs_open_read_record) == 144, "open_read record layout");

#endif
