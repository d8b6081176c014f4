/* asyncfat mount: the FUSE file system, a client of the server like the rest of the
 * command. libfuse's multithreaded loop calls the operations (mount_op_*) from several
 * threads at once; each submits its own request and waits for its own completion
 * (fs_client), so concurrent FUSE requests are concurrent server requests. Every part below
 * is safe to call from any of those threads: each one that keeps state guards it with its
 * own lock, and no part calls another while holding its lock.
 *
 * Files and directories are opened on the server (fi->fh holds the server's fd, or a read
 * handle), so a file unlinked while open stays usable through its descriptors (the server's
 * POSIX semantics). Name components over 255 bytes get ENAMETOOLONG here, as the kernel does
 * not check them for FUSE. Directory modification times follow their entries in the engine
 * itself. Unmount (fusermount3 -u) or SIGINT/SIGTERM end the loop; then DEINITIALISE makes
 * the server sync and unmount, leaving the volume clean.
 *
 * Speed: every server request is a round trip to another process, so the mount avoids them
 * where the answer is already known. While mounted this is the volume's only writer, so the
 * kernel may keep names, attributes and file pages long (fuse_init.c); directory listings
 * carry attributes and come a batch of entries per request (dir_streams.c), so `ls -l` or
 * `rm -r` look nothing up; attributes libfuse asks for again and again come from a small
 * cache (attr_cache.c), which creates and time changes fill with the record their reply
 * carries; the lookup before a create is answered here when the directory's names are all
 * known (known_names.c); flush is not implemented, so the kernel stops sending it after the
 * first ENOSYS. A `touch` of a new file is three requests (OPEN_STAT, SET_TIMES_STAT,
 * FILE_CLOSE). A file opened for reading comes with its first bytes for the first READ
 * (read_handles.c), so reading a small file is one request; a sequential read goes in 1 MiB
 * windows (fuse_init.c).
 *
 * The parts:
 *   mount_command.c     `asyncfat mount`: options, the FUSE session, running in the background
 *   fuse_init.c         what the mount asks of the kernel at INIT (caching, readahead)
 *   file_ops.c          operations on open files: open, create, read, write, truncate, fsync, release
 *   path_ops.c          operations by path: getattr, unlink, mkdir, rmdir, rename, times, statfs
 *   dir_streams.c       open directories: batched listings, offsets, rewind
 *   read_handles.c      read-only opens that carry the file's first bytes
 *   hidden_files.c      files libfuse hides after an unlink while open
 *   attr_cache.c        stat records kept between changes
 *   known_names.c       directories whose names are all known, to answer lookups of absent names
 *   posix_translation.c stat records, statuses, flags and times between POSIX and the protocol
 * Every request goes through fs_client, which alone encodes commands and decodes replies.
 */
#ifndef ASYNCFAT_TOOLS_MOUNT_MOUNT_H
#define ASYNCFAT_TOOLS_MOUNT_MOUNT_H

#define FUSE_USE_VERSION 312
#include "tools/cli.h"

#include <fuse.h>
#include <sys/stat.h>

/* Set by mount_command.c before FUSE starts, cleared after it stopped. */
typedef struct mount_context {
    fs_conn *conn;             /* the session's connection to the server */
    uid_t owner_uid;           /* the mounting user owns every file */
    gid_t owner_gid;
    const char *mount_point;   /* absolute, for fuse_init.c to find the mount's device */
} mount_context;
extern mount_context mount_ctx;

/* ---- the operations (fuse_operations members) ---- */
void *mount_op_init(struct fuse_conn_info *info, struct fuse_config *cfg);
int mount_op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi);
int mount_op_open(const char *path, struct fuse_file_info *fi);
int mount_op_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int mount_op_release(const char *path, struct fuse_file_info *fi);
int mount_op_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi);
int mount_op_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi);
int mount_op_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int mount_op_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int mount_op_unlink(const char *path);
int mount_op_mkdir(const char *path, mode_t mode);
int mount_op_rmdir(const char *path);
int mount_op_rename(const char *from, const char *to, unsigned int flags);
int mount_op_opendir(const char *path, struct fuse_file_info *fi);
int mount_op_releasedir(const char *path, struct fuse_file_info *fi);
int mount_op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
                     enum fuse_readdir_flags flags);
int mount_op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi);
int mount_op_statfs(const char *path, struct statvfs *out);
int mount_op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi);
int mount_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int mount_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);

/* ---- posix_translation.c ---- */
/* 0, or -ENAMETOOLONG if a component of path (NULL: none) is longer than FAT allows. */
int mount_check_names(const char *path);
/* The negative errno FUSE wants for a status (0 for SUCCESS). */
int mount_errno(fs_status st);
/* A stat record as the kernel sees it: owned by the mounting user. */
void mount_fill_stat(const fs_stat *in, struct stat *out);
/* open(2) flags to FILE_OPEN flags (access mode, O_TRUNC, O_APPEND). */
uint64_t mount_open_flags(int flags);
/* A utimensat time to SET_TIMES's: -1 for UTIME_OMIT, now for UTIME_NOW. */
int64_t mount_time_arg(const struct timespec *ts);

/* ---- hidden_files.c ----
 * libfuse's high-level API cannot answer a path-less getattr (fstat after unlink) under
 * hard_remove, so it hides a file unlinked while open by renaming it to .fuse_hidden*; that
 * rename never reaches the volume: the file is pinned by an fd of our own and unlinked on
 * the server, and the hidden name is answered from that fd until libfuse unlinks it at the
 * last release. */
bool hidden_is_name(const char *path);
/* The pinning fd of a hidden file, or false. */
bool hidden_fd(const char *path, uint64_t *fd);
/* Instead of renaming the open file `path` to `hidden`: pin it, unlink it, remember it. */
fs_status hidden_hide(const char *path, const char *hidden);
/* libfuse unlinks a hidden file at its last release: drop our fd. False if not hidden. */
bool hidden_forget(const char *path);

/* ---- attr_cache.c ----
 * The last record the server gave for a path, kept until anything on the volume changes
 * through the mount (an epoch advanced by every change) or a second has passed. */
/* The epoch to tag a record with: read it before sending the request. */
uint64_t attr_cache_epoch(void);
/* Advanced by every rename: while unchanged, a listed directory's path is still right. */
uint64_t attr_cache_rename_epoch(void);
/* Something on the volume changed (or may have): forget every record. */
void attr_cache_changed(bool renamed);
/* A change whose reply carried the changed file's record (create, set times): forget every
 * record, then keep this one, unless another change finished while the request was out. */
void attr_cache_changed_to(const char *path, const fs_stat *rec, uint64_t sent_epoch);
/* Keep a record fetched at `epoch` (dropped if the volume changed since). */
void attr_cache_store(const char *path, const fs_stat *rec, uint64_t epoch);
bool attr_cache_lookup(const char *path, fs_stat *out);
void attr_cache_free(void);

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

/* ---- read_handles.c ---- */
/* A read-only open: the file's record and first bytes in one round trip (keeping a server
 * fd unless the attribute cache knows the file to be small); fi->fh becomes the handle. */
fs_status read_handle_open(const char *path, int flags, struct fuse_file_info *fi);
/* Answer a read from the handle's first bytes: the byte count, or -1 when they cannot (the
 * caller reads from the server). No handle: -1. */
int read_handle_read(const struct fuse_file_info *fi, char *buf, size_t size, off_t offset);
/* The server fd behind fi: a plain open's, or a read handle's (opened now by path if the
 * handle has none yet). */
fs_status mount_file_fd(const char *path, const struct fuse_file_info *fi, uint64_t *fd);
/* Close fi's file on the server (a plain fd or a read handle). */
fs_status mount_file_release(const struct fuse_file_info *fi);

#endif
