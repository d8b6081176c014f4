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
    FS_CMD_COUNT = 24,
};

typedef union fs_ext_params {
    struct { fs_buffer buf; } statfs;
    struct { uint64_t fd; fs_buffer buf; } fstat;
    struct { fs_buffer path; int64_t atime; int64_t mtime; } set_times;
    struct { uint64_t fd; fs_buffer name; fs_buffer stat; } dir_read_stat;
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

_Static_assert(sizeof(fs_ext_params) == 48, "extension params fit the command");
_Static_assert(sizeof(fs_statfs) == 72, "statfs layout");
_Static_assert(offsetof(fs_ext_params, set_times.mtime) == 24, "set_times layout");
_Static_assert(offsetof(fs_ext_params, dir_read_stat.stat) == 24, "dir_read_stat layout");

#endif
