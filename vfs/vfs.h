/* vfs: the engine interface: what a file-system engine and the server say to each other,
 * in the engine's own words (no wire format): statuses, the stat and statfs records, open
 * flags, limits, and the operations (vfs_ops) an engine implements over one volume.
 *
 * Layering: below the engines (fat/) and the server (server/), above the block layer
 * (an engine turns block errors into statuses with vfs_status_from_blk). The server maps
 * these onto the LionsOS protocol's statuses and records (protocol/fs_protocol.h); engines
 * never see the protocol. The composition root (server/fs_component.c) makes an engine
 * (fat_vfs_engine) and hands it to the server, which calls nothing else of it.
 *
 * Paths are byte strings with a length (UTF-8, not NUL-terminated), at most VFS_PATH_MAX
 * bytes, components at most VFS_NAME_MAX bytes, each taken from a base: the root, or an
 * open directory node (vfs_path). Times are seconds since the Unix epoch.
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

/* A file's attributes, FAT's bits: read-only, hidden, system, archive can be changed; the
 * directory bit only says what the file is. An engine without such attributes reports a
 * directory's as VFS_ATTR_DIRECTORY and a file's as 0. */
#define VFS_ATTR_READ_ONLY 0x01u
#define VFS_ATTR_HIDDEN 0x02u
#define VFS_ATTR_SYSTEM 0x04u
#define VFS_ATTR_DIRECTORY 0x10u
#define VFS_ATTR_ARCHIVE 0x20u
#define VFS_ATTR_CHANGEABLE (VFS_ATTR_READ_ONLY | VFS_ATTR_HIDDEN | VFS_ATTR_SYSTEM | VFS_ATTR_ARCHIVE)

/* A volume's figures. */
typedef struct vfs_statfs {
    uint64_t block_size;        /* bytes per allocation unit (a FAT cluster) */
    uint64_t blocks;            /* allocation units in the volume */
    uint64_t blocks_free;
    uint32_t name_max;          /* bytes of UTF-8 in a name */
    uint32_t fat_type;          /* bits per FAT entry (12, 16, 32); 0 for an engine without a FAT */
    bool read_only;
} vfs_statfs;

/* What mounting found and did (an engine that recovers a volume not cleanly unmounted). */
typedef struct vfs_mount_report {
    bool was_dirty;             /* not cleanly unmounted before this mount */
    bool recovered;             /* recovery ran to the end */
    bool needs_check;           /* damage recovery left alone: a checker should look */
    uint32_t renames_completed, orphans_removed, chains_cut, lost_freed;
    uint32_t fat_disagreements, fat_blocks_copied;
} vfs_mount_report;

/* Bytes of UTF-8 a name from readdir can take (255 UTF-16 units, 3 bytes each). */
#define VFS_READDIR_NAME_MAX (255u * 3u)

/* Opaque to the server: an engine's volume, and one of its open files or directories
 * (shared by everyone who opens the same one; closed with close). */
typedef struct vfs_volume vfs_volume;
typedef struct vfs_node vfs_node;

/* A path and where it starts: base NULL is the root, else a directory node the caller
 * holds open (from opendir). From a base other than the root, a ".." that would climb
 * above it is INVALID_PATH, and the empty path is the base itself (unlink, mkdir, rmdir
 * and rename say of it what they say of the root); a base removed while open holds no
 * names (NO_FILE, nothing created). Deep trees so need no path longer than VFS_PATH_MAX. */
typedef struct vfs_path {
    vfs_node *base;
    const char *chars;
    size_t len;
} vfs_path;

/* An engine's operations. Every one blocks (runs in a task of the fiber pool the engine
 * was set up on) except `mounted`, `mount_report`, `is_dir` and `size`. Paths as above; flags VFS_OPEN_*.
 * open of a directory gives IS_DIRECTORY (use opendir); readdir gives END_OF_DIRECTORY at
 * the end, takes *pos (0 = the start) and moves it past the entry it returns, leaves "."
 * and ".." out, and fills st when it is not NULL; name gets VFS_READDIR_NAME_MAX bytes at
 * most, no NUL. set_times takes Unix seconds, a negative one leaving that time alone.
 * append writes at the end, atomically with respect to other writers, and says where.
 * get_attributes gives a path's VFS_ATTR_* bits; set_attributes clears `clear`, then sets
 * `set` (bits outside VFS_ATTR_CHANGEABLE, or the root, give INVALID_ARGUMENT; a read-only
 * volume READ_ONLY_FS) and gives the bits as stored. */
typedef struct vfs_ops {
    vfs_status (*mount)(vfs_volume *vol);
    vfs_status (*unmount)(vfs_volume *vol);   /* OUTSTANDING_OPERATIONS while nodes are open */
    bool (*mounted)(const vfs_volume *vol);
    vfs_status (*sync)(vfs_volume *vol);
    /* Does not block; all zero for a clean mount or an engine that reports nothing. */
    void (*mount_report)(const vfs_volume *vol, vfs_mount_report *out);
    vfs_status (*statfs)(vfs_volume *vol, vfs_statfs *out);
    vfs_status (*stat)(vfs_volume *vol, const vfs_path *path, vfs_stat *out);
    vfs_status (*open)(vfs_volume *vol, const vfs_path *path, uint64_t flags, vfs_node **out);
    vfs_status (*opendir)(vfs_volume *vol, const vfs_path *path, vfs_node **out);
    vfs_status (*unlink)(vfs_volume *vol, const vfs_path *path);
    vfs_status (*mkdir)(vfs_volume *vol, const vfs_path *path);
    vfs_status (*rmdir)(vfs_volume *vol, const vfs_path *path);
    vfs_status (*rename)(vfs_volume *vol, const vfs_path *old_path, const vfs_path *new_path);
    vfs_status (*set_times)(vfs_volume *vol, const vfs_path *path, int64_t atime, int64_t mtime);
    vfs_status (*fset_times)(vfs_node *node, int64_t atime, int64_t mtime); /* set_times of an open node */
    vfs_status (*close)(vfs_node *node);
    bool (*is_dir)(const vfs_node *node);
    uint64_t (*size)(vfs_node *node);
    vfs_status (*fstat)(vfs_node *node, vfs_stat *out);
    vfs_status (*read)(vfs_node *node, uint64_t offset, void *dst, size_t len, size_t *done);
    vfs_status (*write)(vfs_node *node, uint64_t offset, const void *src, size_t len, size_t *done);
    vfs_status (*append)(vfs_node *node, const void *src, size_t len, size_t *done, uint64_t *offset);
    vfs_status (*truncate)(vfs_node *node, uint64_t length);
    vfs_status (*fsync)(vfs_node *node);
    vfs_status (*readdir)(vfs_node *dir, uint64_t *pos, char *name, size_t *name_len, vfs_stat *st);
    vfs_status (*get_attributes)(vfs_volume *vol, const vfs_path *path, uint32_t *out);
    vfs_status (*set_attributes)(vfs_volume *vol, const vfs_path *path, uint32_t set, uint32_t clear,
                                 uint32_t *out);
} vfs_ops;

/* One volume and the engine that runs it. ops NULL: no volume could be set up. */
typedef struct vfs_engine {
    const vfs_ops *ops;
    vfs_volume *volume;
} vfs_engine;

#endif
