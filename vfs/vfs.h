/* vfs: what a file-system engine and the server say to each other, in the engine's own
 * words (no wire format): statuses, the stat and statfs records, open flags, limits.
 *
 * Layering: below the engines (fat/) and the server (server/), above the block layer
 * (an engine turns block errors into statuses with vfs_status_from_blk). The server maps
 * these onto the LionsOS protocol's statuses and records (protocol/fs_protocol.h); engines
 * never see the protocol.
 *
 * Paths are byte strings with a length (UTF-8, not NUL-terminated), at most VFS_PATH_MAX
 * bytes, components at most VFS_NAME_MAX bytes. Times are seconds since the Unix epoch.
 */
#ifndef ASYNCFAT_VFS_H
#define ASYNCFAT_VFS_H

#include "base/base.h"
#include "blk/blk.h"

#define VFS_PATH_MAX 4095u
#define VFS_NAME_MAX 255u

typedef enum vfs_status {
    VFS_OK = 0,
    VFS_ERROR,                  /* unspecified */
    VFS_INVALID_PATH,           /* not a path (too long, bad bytes) */
    VFS_INVALID_NAME,           /* a component no file may have */
    VFS_NAME_TOO_LONG,          /* a component over the engine's limit */
    VFS_NO_FILE,                /* a component does not exist */
    VFS_NOT_DIRECTORY,          /* a directory operation on a file, or a file as a path prefix */
    VFS_IS_DIRECTORY,           /* a file operation on a directory */
    VFS_ALREADY_EXISTS,
    VFS_NOT_EMPTY,              /* removing a directory with entries */
    VFS_END_OF_DIRECTORY,
    VFS_DIRECTORY_IS_FULL,      /* no room for another entry (a fixed root, the entry limit) */
    VFS_NO_SPACE,               /* the volume is full: the write or truncate changed nothing */
    VFS_FILE_TOO_LARGE,         /* past the engine's file-size limit */
    VFS_TOO_MANY_OPEN_FILES,    /* the engine's node table is full */
    VFS_READ_ONLY_FS,           /* the device or the mount is read-only */
    VFS_ACCESS_DENIED,          /* opening for writing a file marked read-only */
    VFS_INVALID_ARGUMENT,       /* a value out of range (open flags, a move into itself) */
    VFS_BUSY,                   /* e.g. removing or moving the root */
    VFS_OUTSTANDING_OPERATIONS, /* unmount with nodes still open */
    VFS_NOT_MOUNTED,
    VFS_ALLOCATION_ERROR,       /* an arena too small for the volume */
    VFS_IO_ERROR,               /* the block device reported an error */
    VFS_CORRUPT,                /* on-disk structures are inconsistent */
} vfs_status;

/* For logs and tools. */
const char *vfs_status_text(vfs_status s);

/* A block-layer failure as the engine reports it: a range outside the device means the
 * volume's structures point outside it (CORRUPT). */
vfs_status vfs_status_from_blk(blk_status s);

/* Open flags. The low two bits are the access mode. */
#define VFS_OPEN_READ_ONLY 0u
#define VFS_OPEN_WRITE_ONLY 1u
#define VFS_OPEN_READ_WRITE 2u
#define VFS_OPEN_ACCESS_MASK 3u
#define VFS_OPEN_CREATE 4u
#define VFS_OPEN_TRUNCATE 8u    /* to length 0; needs write access */
#define VFS_OPEN_EXCLUSIVE 16u  /* with CREATE: ALREADY_EXISTS if the name exists */
#define VFS_OPEN_APPEND 32u     /* writes go to the end (the server's business: vfs append) */

#define VFS_MODE_TYPE_MASK 0170000u
#define VFS_MODE_DIRECTORY 0040000u
#define VFS_MODE_REGULAR 0100000u

/* A file's or directory's attributes. mode has the POSIX type and permission bits. */
typedef struct vfs_stat {
    uint64_t dev;               /* the volume's (from the engine's configuration) */
    uint64_t ino;               /* stable while the file keeps its place */
    uint64_t mode;
    uint64_t nlink;
    uint64_t size;              /* bytes */
    uint64_t blksize;           /* the allocation unit, bytes */
    uint64_t blocks;            /* 512-byte units allocated */
    uint64_t atime, mtime, ctime;
} vfs_stat;

#endif
