/* The copy engine behind `asyncfat cp`: copies files and directory trees from one side to
 * another, where a side is an image (a connection to its server, fs_client) or the local
 * file system. One thread drives a job; it owns no session (the caller opens and closes
 * them) and every message it prints names a file as IMAGE:PATH or as the local path.
 *
 * Copies run concurrently: up to COPY_FILES files at once, and up to COPY_FILE_CHUNKS chunks
 * of one file, drawn from a pool of COPY_CHUNKS share-region buffers. Every image operation
 * is started without waiting (fs_conn_start_*) and one loop reacts to completions in
 * whatever order the server finishes them (fs_conn_wait_any): a tree of small files costs
 * about one server round trip per batch instead of four per file, and a large file keeps a
 * window of chunks in flight, never draining it. Local files are read and written in order
 * with ordinary system calls (so pipes work as sources and destinations). Each file reports
 * its own errors and the others go on. Long copies show progress on a terminal.
 *
 * A file goes through: open the source, then the destination (only once the source opened,
 * so a missing source creates nothing; an image destination without truncating it, and
 * truncated once it is known to be no other copy's: two source names may name one file on
 * FAT, and the first copy keeps it while the later ones are reported, as GNU cp does for a
 * file it just created), chunks (read, then write), then FILE_SET_TIMES on an
 * image destination's fd (the source's mtime) together with both closes: a write stamps the
 * time when it runs and a close never does, so once the writes are done the two may run in
 * either order. A tree's directories are created a directory's worth at a time (one batch
 * of DIR_CREATEs per source directory), not one round trip each; two that the volume takes
 * for one are not merged (copy_tree.c). Ctrl-C
 * (cli_interrupted) stops new reads and new files; what is in flight completes and every
 * file is closed, so the caller's sessions can unmount cleanly.
 *
 * Conventions of cp: the local name "-" is standard input (a source) or standard output (a
 * destination); modification times are kept in both directions (FILE_SET_TIMES on an image
 * destination, futimens on a local one); no_clobber leaves an existing destination alone
 * (an image one is opened with EXCLUSIVE), interactive asks first; verbose names each file
 * as it is copied. A source larger than FAT's 4 GiB - 1 is refused before anything is
 * created, and a write that would cross that limit reports FILE_TOO_LARGE.
 */
#ifndef ASYNCFAT_TOOLS_COPY_COPY_ENGINE_H
#define ASYNCFAT_TOOLS_COPY_COPY_ENGINE_H

#include "tools/fs_client.h"

#include <sys/stat.h>

/* Chunks of 512 KiB, 8 in flight per file: larger requests than the blocking calls' (fewer
 * round trips), a 4 MiB window that keeps the server and the driver busy, and no more
 * share-region pages to fault in than that needs. */
#define COPY_CHUNK (512u * 1024u)      /* bytes per read or write request */
#define COPY_CHUNKS 32u                /* chunk buffers shared by the files in flight */
#define COPY_FILE_CHUNKS 8u            /* most chunks one file holds (its window) */
/* Files in flight: 16 keep a batch of requests in every round trip; each request in flight
 * holds one of the server's fiber stacks, whose pages a short command faults in one by
 * one, so 32 cost a tree copy of 2,000 small files 130 more page faults (and 7% more
 * instructions) and no time. */
#define COPY_FILES 16u
/* The share region an image side needs: the chunk buffers, and 2 MiB for paths and
 * listings, so that the region ends on a 2 MiB boundary and all of it can be huge pages
 * (with 1 MiB, that last MiB was 4 KiB pages: 30 more page faults per tree copy). */
#define COPY_SHARE_BYTES ((uint64_t)COPY_CHUNKS * COPY_CHUNK + (2u << 20))

typedef struct copy_side {
    fs_conn *conn;                     /* NULL: the local file system */
    const char *image;                 /* the image's name, for messages */
} copy_side;

/* What the engine needs to know of a source or destination. */
typedef struct copy_stat {
    bool exists, is_dir;
    uint64_t size;
    int64_t mtime;                     /* Unix seconds; -1: not known (standard input) */
    uint64_t dev, ino;                 /* which file it is, on its side (an image's ino is the
                                        * place of its directory entry) */
} copy_stat;

typedef struct copy_job copy_job;

typedef struct copy_options {
    bool progress;                     /* progress of large files on stderr */
    bool no_clobber;                   /* an existing destination file is not touched */
    bool interactive;                  /* ask (on stderr, answer on stdin) before replacing one */
    bool verbose;                      /* 'SOURCE' -> 'DEST' on stdout for each file */
} copy_options;

#define COPY_FAT_MAX_FILE 0xFFFFFFFFull /* FAT's largest file, bytes */

/* A job from src to dst (both may be the same connection), with its chunk buffers. NULL if
 * they cannot be had (out of memory, or a share region too small for COPY_SHARE_BYTES). */
copy_job *copy_job_start(const copy_side *src, const copy_side *dst, const copy_options *options);
/* Wait for every copy to end, free the job. Returns EXIT_OK, or the first failure's exit
 * code (EXIT_INTERRUPTED for a file stopped by Ctrl-C). */
int copy_job_finish(copy_job *job);

void copy_stat_from_fs(const fs_stat *st, copy_stat *out);
void copy_stat_from_local(const struct stat *st, copy_stat *out);
/* A path's attributes; a missing path is SUCCESS with exists false. A local failure is
 * FS_STATUS_IO_ERROR with errno set. The local "-" is standard input or output. */
fs_status copy_side_stat(const copy_side *side, const char *path, copy_stat *out);

/* Queue the copy of one file (waiting while COPY_FILES are in flight); st is the source's.
 * Its failure is reported when it happens and returned by copy_job_finish. */
void copy_job_add_file(copy_job *job, const char *src, const char *dst, const copy_stat *st);
/* Copy the directory src as dst (created, or merged into if it is a directory): its
 * subdirectories, and its files queued as by copy_job_add_file. Returns EXIT_OK, or the exit
 * code of the first failure it reported itself (files report through copy_job_finish). */
int copy_job_add_tree(copy_job *job, const char *src, const char *dst);

/* For copy_tree.c: the job's sides. */
const copy_side *copy_job_source(const copy_job *job);
const copy_side *copy_job_destination(const copy_job *job);

#endif
