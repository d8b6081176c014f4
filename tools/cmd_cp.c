/* asyncfat cp: copy files and trees into, out of, or within images.
 *
 * Copies run concurrently: up to CP_FILES files at once, and up to CP_FILE_CHUNKS chunks of
 * one file, drawn from a pool of CP_CHUNKS share-region buffers. Every image operation is
 * submitted without waiting (fs_conn_submit) and one loop reacts to completions in
 * whatever order the server finishes them (fs_conn_wait_any): a tree of small files costs
 * about one server round trip per batch instead of four per file, and a large file keeps a
 * window of chunks in flight, never draining it. Local files are read and written in
 * order with ordinary system calls (so pipes work as sources and destinations); each file
 * reports its own errors as IMAGE:PATH or the local path, and the others go on. Long copies
 * show progress on a terminal.
 *
 * A file goes through: open the source, then the destination (only once the source
 * opened, so a missing source creates nothing), chunks (read, then write), then SET_TIMES
 * on an image destination (the source's mtime) together with both closes: a write stamps
 * the time when it runs and a close never does, so once the writes are done the two may
 * run in either order. A tree's directories are created a directory's worth at a time
 * (one batch of DIR_CREATEs per source directory), not one round trip each. Ctrl-C (cli_interrupted)
 * stops new reads and new files; what is in flight completes, every file is closed, and
 * the sessions unmount cleanly.
 */
#include "tools/cli.h"
#include "tools/cli_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Chunks of 512 KiB, 8 in flight per file: larger requests than the blocking calls' (fewer
 * round trips), a 4 MiB window that keeps the server and the driver busy, and no more
 * share-region pages to fault in than that needs. */
#define CP_CHUNK (512u * 1024u)      /* bytes per read or write request */
#define CP_CHUNKS 32u                /* chunk buffers shared by the files in flight */
#define CP_FILE_CHUNKS 8u            /* most chunks one file holds (its window) */
#define CP_FILES 32u                 /* files in flight */
/* Outstanding operations, at most: one per chunk, and per file no more than three beside
 * its chunks (closing: SET_TIMES and both closes). */
#define CP_OPS (CP_CHUNKS + 3u * CP_FILES)
#define CP_PROGRESS_MIN (4u << 20)   /* files smaller than this copy silently */
#define CP_MKDIR_BATCH 32u           /* DIR_CREATEs in flight at once */

typedef struct cp_side {
    cli_session *session;            /* NULL: the local file system */
    char image[4096];
} cp_side;

typedef struct cp_stat {
    bool exists, is_dir;
    uint64_t size;
    int64_t mtime;
} cp_stat;

typedef struct cp_file cp_file;

typedef enum { CHUNK_FREE, CHUNK_READING, CHUNK_READ, CHUNK_WRITING } cp_chunk_state;

typedef struct cp_chunk {
    cp_chunk_state state;
    cp_file *file;
    uint8_t *rbuf;                   /* reads land here */
    uint8_t *wbuf;                   /* writes leave from here (== rbuf when they can) */
    bool owns_rbuf, owns_wbuf;       /* allocated from the source's / destination's share */
    uint64_t offset;
    size_t len;
} cp_chunk;

typedef enum { FILE_IDLE, FILE_OPENING, FILE_DATA, FILE_CLOSING } cp_file_phase;

struct cp_file {
    cp_file_phase phase;
    char src[4096], dst[4096];
    cp_stat st;                      /* the source's */
    uint64_t src_fd, dst_fd;         /* image fds, valid while src_open / dst_open */
    int src_local, dst_local;        /* local fds, or -1 */
    bool src_open, dst_open;
    void *src_path, *dst_path;       /* the paths in the share regions, while needed */
    uint64_t next_offset;            /* where the next chunk starts */
    uint64_t written;                /* a local destination: bytes written, in order */
    uint64_t done_bytes;             /* for progress */
    bool end;                        /* no more chunks: end of source, error or Ctrl-C */
    bool show_progress;
    uint32_t chunks;                 /* chunks held */
    uint32_t ops;                    /* operations in flight */
    int rc;                          /* EXIT_OK, or the first failure's exit code */
};

typedef enum { OP_OPEN_SRC, OP_OPEN_DST, OP_READ, OP_WRITE, OP_TIMES, OP_CLOSE_SRC, OP_CLOSE_DST } cp_op_kind;

typedef struct cp_op {
    cp_op_kind kind;
    fs_conn *conn;
    fs_conn_ticket ticket;
    cp_file *file;
    cp_chunk *chunk;                 /* OP_READ, OP_WRITE */
} cp_op;

typedef struct cp_job {
    cp_side src, dst;
    bool recursive;
    bool progress;
    cp_chunk chunks[CP_CHUNKS];
    cp_file files[CP_FILES];
    cp_op ops[CP_OPS];
    uint32_t op_count;
    uint32_t busy_files;
    int rc;                          /* the first failure of any file */
} cp_job;

static fs_conn *side_conn(const cp_side *side) { return &side->session->conn; }

static int fail_local(const char *path, int err)
{
    cli_error(path, "%s", strerror(err));
    return EXIT_FAILED;
}

static int fail_side(const cp_side *side, const char *path, fs_status st)
{
    return cli_fail_status(side->image, path, st);
}

static fs_status side_stat(const cp_side *side, const char *path, cp_stat *out)
{
    memset(out, 0, sizeof *out);
    if (side->session) {
        fs_stat st;
        fs_status status = fs_conn_stat(side_conn(side), path, &st);
        if (status == FS_STATUS_NO_FILE)
            return FS_STATUS_SUCCESS;
        if (status != FS_STATUS_SUCCESS)
            return status;
        out->exists = true;
        out->is_dir = cli_is_dir_stat(&st);
        out->size = st.size;
        out->mtime = (int64_t)st.mtime;
        return FS_STATUS_SUCCESS;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? FS_STATUS_SUCCESS : FS_STATUS_IO_ERROR;
    out->exists = true;
    out->is_dir = S_ISDIR(st.st_mode);
    out->size = (uint64_t)st.st_size;
    out->mtime = (int64_t)st.st_mtime;
    return FS_STATUS_SUCCESS;
}

static void show_progress(const char *name, uint64_t done, uint64_t total)
{
    fprintf(stderr, "\r%s: %llu / %llu MiB (%llu%%)", name, (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20), (unsigned long long)(total ? done * 100 / total : 100));
}

/* Record a file's first failure (the message is already out). */
static void file_failed(cp_file *f, int rc)
{
    if (f->rc == EXIT_OK)
        f->rc = rc;
    f->end = true;
}

/* ---- operations in flight ---- */

static void submit(cp_job *job, cp_op_kind kind, fs_conn *conn, fs_cmd *cmd, cp_file *f, cp_chunk *chunk)
{
    if (job->op_count == CP_OPS)
        abort(); /* CP_OPS is the bound: a broken bound must not write past the table */
    cp_op *op = &job->ops[job->op_count++];
    op->kind = kind;
    op->conn = conn;
    op->file = f;
    op->chunk = chunk;
    op->ticket = fs_conn_submit(conn, cmd);
    f->ops++;
}

/* A path operation: the path goes into a share buffer that lives until the file is done
 * (its fs_buffer must stay valid while the command is in flight). */
static void submit_path(cp_job *job, cp_op_kind kind, const cp_side *side, cp_file *f, void **buf,
                        const char *path, uint64_t flags, int64_t mtime)
{
    fs_conn *c = side_conn(side);
    size_t len = strlen(path);
    if (!*buf) {
        *buf = fs_conn_alloc(c, len ? len : 1);
        memcpy(*buf, path, len);
    }
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = kind == OP_TIMES ? FS_CMD_SET_TIMES : FS_CMD_FILE_OPEN;
    if (kind == OP_TIMES) {
        fs_cmd_params *p = &cmd.params;
        p->set_times.path = fs_conn_buffer(c, *buf, len);
        p->set_times.atime = -1;
        p->set_times.mtime = mtime;
    } else {
        cmd.params.file_open.path = fs_conn_buffer(c, *buf, len);
        cmd.params.file_open.flags = flags;
    }
    submit(job, kind, c, &cmd, f, NULL);
}

static void submit_fd(cp_job *job, cp_op_kind kind, const cp_side *side, cp_file *f, uint64_t fd)
{
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FS_CMD_FILE_CLOSE;
    cmd.params.file_close.fd = fd;
    submit(job, kind, side_conn(side), &cmd, f, NULL);
}

static void submit_io(cp_job *job, cp_op_kind kind, const cp_side *side, cp_chunk *chunk)
{
    fs_conn *c = side_conn(side);
    fs_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    if (kind == OP_READ) {
        cmd.type = FS_CMD_FILE_READ;
        cmd.params.file_read.fd = chunk->file->src_fd;
        cmd.params.file_read.offset = chunk->offset;
        cmd.params.file_read.buf = fs_conn_buffer(c, chunk->rbuf, CP_CHUNK);
        chunk->state = CHUNK_READING;
    } else {
        cmd.type = FS_CMD_FILE_WRITE;
        cmd.params.file_write.fd = chunk->file->dst_fd;
        cmd.params.file_write.offset = chunk->offset;
        cmd.params.file_write.buf = fs_conn_buffer(c, chunk->wbuf, chunk->len);
        chunk->state = CHUNK_WRITING;
    }
    submit(job, kind, c, &cmd, chunk->file, chunk);
}

/* ---- one file's steps ---- */

static void release_chunk(cp_chunk *chunk)
{
    chunk->file->chunks--;
    chunk->file = NULL;
    chunk->state = CHUNK_FREE;
}

static void free_paths(cp_job *job, cp_file *f)
{
    if (f->src_path)
        fs_conn_free(side_conn(&job->src), f->src_path);
    if (f->dst_path)
        fs_conn_free(side_conn(&job->dst), f->dst_path);
    f->src_path = f->dst_path = NULL;
}

/* Close whatever is open; the file is done when no operation is left. */
static void close_file(cp_job *job, cp_file *f)
{
    f->phase = FILE_CLOSING;
    if (f->src_open && job->src.session)
        submit_fd(job, OP_CLOSE_SRC, &job->src, f, f->src_fd);
    else if (f->src_local >= 0)
        close(f->src_local);
    f->src_local = -1;
    f->src_open = false;
    if (f->dst_open && job->dst.session) {
        submit_fd(job, OP_CLOSE_DST, &job->dst, f, f->dst_fd);
    } else if (f->dst_local >= 0) {
        if (close(f->dst_local) != 0 && f->rc == EXIT_OK)
            f->rc = fail_local(f->dst, errno);
    }
    f->dst_local = -1;
    f->dst_open = false;
}

static void write_local_in_order(cp_job *job, cp_file *f);

static void finish_if_done(cp_job *job, cp_file *f)
{
    if (f->phase == FILE_DATA && !job->dst.session)
        write_local_in_order(job, f);
    if (f->phase == FILE_DATA && f->end && f->chunks == 0) {
        /* Times after the last write (a write sets the modification time again), in the
         * same batch as the closes (a close leaves the time alone). */
        if (job->dst.session && f->rc == EXIT_OK && !cli_interrupted)
            submit_path(job, OP_TIMES, &job->dst, f, &f->dst_path, f->dst, 0, f->st.mtime);
        close_file(job, f);
    }
    if (f->phase == FILE_CLOSING && f->ops == 0) {
        if (f->show_progress) {
            show_progress(cli_basename(f->src), f->done_bytes, f->st.size);
            fputc('\n', stderr);
        }
        free_paths(job, f);
        if (f->rc != EXIT_OK)
            job->rc = f->rc;
        f->phase = FILE_IDLE;
        job->busy_files--;
    }
}

static void open_destination(cp_job *job, cp_file *f)
{
    if (job->dst.session) {
        submit_path(job, OP_OPEN_DST, &job->dst, f, &f->dst_path, f->dst,
                    FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_TRUNCATE, 0);
        return;
    }
    f->dst_local = open(f->dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->dst_local < 0) {
        file_failed(f, fail_local(f->dst, errno));
        close_file(job, f);
    } else {
        f->phase = FILE_DATA;
    }
}

/* A local destination is written in order: chunk k waits until chunk k-1 is out, so a
 * pipe or a terminal gets the bytes in sequence. After a failure the chunks still held are
 * dropped. */
static void write_local_in_order(cp_job *job, cp_file *f)
{
    for (;;) {
        cp_chunk *next = NULL;
        for (uint32_t i = 0; i < CP_CHUNKS && !next; i++) {
            cp_chunk *chunk = &job->chunks[i];
            if (chunk->file == f && chunk->state == CHUNK_READ && (f->rc != EXIT_OK || chunk->offset == f->written))
                next = chunk;
        }
        if (!next)
            return;
        size_t put = 0;
        while (put < next->len && f->rc == EXIT_OK) {
            ssize_t w = write(f->dst_local, next->wbuf + put, next->len - put);
            if (w < 0 && errno == EINTR && cli_interrupted)
                file_failed(f, EXIT_INTERRUPTED);
            else if (w < 0 && errno != EINTR)
                file_failed(f, fail_local(f->dst, errno));
            else if (w > 0)
                put += (size_t)w;
        }
        f->written += next->len;
        f->done_bytes += put;
        release_chunk(next);
    }
}

/* A chunk's data is in rbuf: send it on. */
static void chunk_read(cp_job *job, cp_chunk *chunk)
{
    cp_file *f = chunk->file;
    if (chunk->len == 0 || f->rc != EXIT_OK) {
        release_chunk(chunk);
        return;
    }
    if (chunk->wbuf != chunk->rbuf)
        memcpy(chunk->wbuf, chunk->rbuf, chunk->len);
    chunk->state = CHUNK_READ;
    if (job->dst.session)
        submit_io(job, OP_WRITE, &job->dst, chunk);
    else
        write_local_in_order(job, f);
}

/* Read a local source's next chunk, in order; false at its end (or on an error). */
static bool read_local(cp_file *f, cp_chunk *chunk)
{
    chunk->len = 0;
    while (chunk->len < CP_CHUNK) {
        ssize_t got = read(f->src_local, chunk->rbuf + chunk->len, CP_CHUNK - chunk->len);
        if (got < 0 && errno == EINTR && cli_interrupted) {
            file_failed(f, EXIT_INTERRUPTED); /* a partial chunk is dropped */
            return false;
        }
        if (got < 0 && errno != EINTR) {
            file_failed(f, fail_local(f->src, errno));
            return false;
        }
        if (got == 0) {
            f->end = true;
            break;
        }
        if (got > 0)
            chunk->len += (size_t)got;
    }
    return true;
}

/* Start as many chunks of f as its window and the free buffers allow. */
static void pump_file(cp_job *job, cp_file *f)
{
    for (uint32_t i = 0; i < CP_CHUNKS && f->phase == FILE_DATA && !f->end && f->chunks < CP_FILE_CHUNKS; i++) {
        cp_chunk *chunk = &job->chunks[i];
        if (chunk->state != CHUNK_FREE)
            continue;
        if (cli_interrupted) {
            f->end = true;
            break;
        }
        chunk->file = f;
        chunk->offset = f->next_offset;
        f->chunks++;
        if (job->src.session) {
            /* A whole chunk even past the expected size, so a file that grew is copied whole. */
            f->next_offset += CP_CHUNK;
            submit_io(job, OP_READ, &job->src, chunk);
            continue;
        }
        if (!read_local(f, chunk)) {
            release_chunk(chunk);
            break;
        }
        f->next_offset += chunk->len;
        chunk_read(job, chunk);
    }
    finish_if_done(job, f);
}

static void pump(cp_job *job)
{
    for (uint32_t i = 0; i < CP_FILES; i++)
        if (job->files[i].phase == FILE_DATA)
            pump_file(job, &job->files[i]);
}

static void op_done(cp_job *job, const cp_op *op, const fs_cmpl *cmpl)
{
    cp_file *f = op->file;
    cp_chunk *chunk = op->chunk;
    fs_status st = (fs_status)cmpl->status;
    f->ops--;
    switch (op->kind) {
    case OP_OPEN_SRC:
        if (st != FS_STATUS_SUCCESS) {
            file_failed(f, fail_side(&job->src, f->src, st));
            close_file(job, f);
            break;
        }
        f->src_fd = cmpl->data;
        f->src_open = true;
        open_destination(job, f);
        break;
    case OP_OPEN_DST:
        if (st != FS_STATUS_SUCCESS) {
            file_failed(f, fail_side(&job->dst, f->dst, st));
            close_file(job, f);
            break;
        }
        f->dst_fd = cmpl->data;
        f->dst_open = true;
        f->phase = FILE_DATA;
        break;
    case OP_READ:
        if (st != FS_STATUS_SUCCESS) {
            if (f->rc == EXIT_OK)
                file_failed(f, fail_side(&job->src, f->src, st));
            release_chunk(chunk);
            break;
        }
        chunk->len = cmpl->data > CP_CHUNK ? CP_CHUNK : (size_t)cmpl->data;
        if (chunk->len < CP_CHUNK)
            f->end = true;
        chunk_read(job, chunk);
        break;
    case OP_WRITE:
        if (st == FS_STATUS_SUCCESS && cmpl->data != chunk->len)
            st = FS_STATUS_NO_SPACE;
        if (st != FS_STATUS_SUCCESS && f->rc == EXIT_OK)
            file_failed(f, fail_side(&job->dst, f->dst, st));
        f->done_bytes += chunk->len;
        release_chunk(chunk);
        break;
    case OP_TIMES:
        break; /* a failure to set the time is not the copy's */
    case OP_CLOSE_SRC:
        break;
    case OP_CLOSE_DST:
        if (st != FS_STATUS_SUCCESS && f->rc == EXIT_OK)
            f->rc = fail_side(&job->dst, f->dst, st);
        break;
    }
    finish_if_done(job, f);
    if (f->show_progress && f->phase == FILE_DATA && f->rc == EXIT_OK)
        show_progress(cli_basename(f->src), f->done_bytes, f->st.size);
}

/* Wait for one operation and carry on from it. The wait is on the oldest operation's
 * connection, for any of that connection's operations: with two images, the other's
 * completions wait their turn, but every one comes. False if nothing was in flight (then
 * no file is busy either: each one's lowest chunk, and every open, close or SET_TIMES, is
 * an operation in flight). */
static bool step(cp_job *job)
{
    pump(job);
    if (job->op_count == 0)
        return false;
    fs_conn *conn = job->ops[0].conn;
    fs_conn_ticket tickets[CP_OPS];
    uint32_t index[CP_OPS], n = 0;
    for (uint32_t i = 0; i < job->op_count; i++)
        if (job->ops[i].conn == conn) {
            tickets[n] = job->ops[i].ticket;
            index[n++] = i;
        }
    fs_cmpl cmpl;
    uint32_t which = index[fs_conn_wait_any(conn, tickets, n, &cmpl)];
    cp_op op = job->ops[which];
    memmove(&job->ops[which], &job->ops[which + 1], (job->op_count - which - 1) * sizeof(cp_op));
    job->op_count--;
    op_done(job, &op, &cmpl);
    return true;
}

/* Queue one file copy (waiting for a free slot first). */
static void add_file(cp_job *job, const char *src, const char *dst, const cp_stat *st)
{
    while (job->busy_files == CP_FILES && step(job))
        continue;
    cp_file *f = NULL;
    for (uint32_t i = 0; !f; i++)
        if (job->files[i].phase == FILE_IDLE)
            f = &job->files[i];
    memset(f, 0, sizeof *f);
    snprintf(f->src, sizeof f->src, "%s", src);
    snprintf(f->dst, sizeof f->dst, "%s", dst);
    f->st = *st;
    f->src_local = f->dst_local = -1;
    f->show_progress = job->progress && st->size >= CP_PROGRESS_MIN;
    f->phase = FILE_OPENING;
    job->busy_files++;
    if (job->src.session) {
        submit_path(job, OP_OPEN_SRC, &job->src, f, &f->src_path, src, FS_OPEN_FLAGS_READ_ONLY, 0);
        return;
    }
    f->src_local = open(src, O_RDONLY | O_CLOEXEC);
    if (f->src_local < 0) {
        file_failed(f, fail_local(src, errno));
        close_file(job, f);
        finish_if_done(job, f);
        return;
    }
    open_destination(job, f);
    finish_if_done(job, f);
}

/* Run every queued copy to its end. */
static void drain(cp_job *job)
{
    while (job->busy_files > 0 && step(job))
        continue;
}

/* ---- trees ---- */

static int made_dir(cp_job *job, const char *path, fs_status st);

static int make_dir(cp_job *job, const char *path)
{
    if (job->dst.session)
        return made_dir(job, path, fs_conn_mkdir(side_conn(&job->dst), path));
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return fail_local(path, errno);
    return EXIT_OK;
}

typedef struct cp_entry {
    char *name;
    cp_stat st;
    int err;                         /* a local entry that could not be stat'ed */
} cp_entry;

typedef struct entry_list {
    cp_entry *entries;
    size_t count;
} entry_list;

static void free_entries(entry_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->entries[i].name);
    free(l->entries);
}

static void from_fs_stat(const fs_stat *st, cp_stat *out)
{
    out->exists = true;
    out->is_dir = cli_is_dir_stat(st);
    out->size = st->size;
    out->mtime = (int64_t)st->mtime;
}

/* A source directory's entries with their attributes (an image directory read gives them
 * at no extra round trip). */
static int list_source(cp_job *job, const char *path, entry_list *out)
{
    memset(out, 0, sizeof *out);
    if (job->src.session) {
        cli_dir d;
        fs_status st = cli_dir_read(side_conn(&job->src), path, &d);
        if (st != FS_STATUS_SUCCESS)
            return fail_side(&job->src, path, st);
        out->entries = calloc(d.count ? d.count : 1, sizeof *out->entries);
        for (size_t i = 0; out->entries && i < d.count; i++) {
            out->entries[i].name = d.entries[i].name;
            d.entries[i].name = NULL;
            from_fs_stat(&d.entries[i].st, &out->entries[i].st);
        }
        out->count = out->entries ? d.count : 0;
        cli_dir_free(&d);
        return out->entries ? EXIT_OK : fail_local(path, ENOMEM);
    }
    DIR *dir = opendir(path);
    if (!dir)
        return fail_local(path, errno);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (out->count == cap) {
            cap = cap ? cap * 2 : 64;
            cp_entry *grown = realloc(out->entries, cap * sizeof *grown);
            if (!grown)
                break;
            out->entries = grown;
        }
        cp_entry *entry = &out->entries[out->count++];
        memset(entry, 0, sizeof *entry);
        entry->name = strdup(e->d_name);
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, 0) != 0) {
            entry->err = errno;
            continue;
        }
        entry->st = (cp_stat){.exists = true, .is_dir = S_ISDIR(st.st_mode), .size = (uint64_t)st.st_size,
                              .mtime = (int64_t)st.st_mtime};
    }
    closedir(dir);
    return EXIT_OK;
}

/* An image directory that DIR_CREATE found existing is fine if it is a directory. */
static int made_dir(cp_job *job, const char *path, fs_status st)
{
    if (st == FS_STATUS_ALREADY_EXISTS) {
        cp_stat cs;
        if (side_stat(&job->dst, path, &cs) == FS_STATUS_SUCCESS && cs.is_dir)
            return EXIT_OK;
    }
    return st == FS_STATUS_SUCCESS ? EXIT_OK : fail_side(&job->dst, path, st);
}

/* Create the destination directories of a source directory's subdirectories: on an image,
 * CP_MKDIR_BATCH DIR_CREATEs at a time, in flight together with the files being copied.
 * made[i] tells whether entry i (a directory) may be descended into. */
static int make_subdirs(cp_job *job, const char *dst_path, const entry_list *list, bool *made)
{
    int rc = EXIT_OK;
    fs_conn *c = job->dst.session ? side_conn(&job->dst) : NULL;
    size_t i = 0;
    while (i < list->count && !cli_interrupted) {
        size_t batch[CP_MKDIR_BATCH], n = 0;
        fs_conn_ticket tickets[CP_MKDIR_BATCH];
        void *paths[CP_MKDIR_BATCH];
        char child[4096];
        for (; i < list->count && n < CP_MKDIR_BATCH; i++) {
            const cp_entry *e = &list->entries[i];
            made[i] = false;
            if (!e->name || e->err || !e->st.is_dir)
                continue;
            cli_join(child, sizeof child, dst_path, e->name);
            if (!c) {
                int r = make_dir(job, child);
                made[i] = r == EXIT_OK;
                if (r != EXIT_OK)
                    rc = r;
                continue;
            }
            size_t len = strlen(child);
            paths[n] = fs_conn_alloc(c, len);
            memcpy(paths[n], child, len);
            fs_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.type = FS_CMD_DIR_CREATE;
            cmd.params.dir_create.path = fs_conn_buffer(c, paths[n], len);
            tickets[n] = fs_conn_submit(c, &cmd);
            batch[n++] = i;
        }
        for (size_t k = 0; k < n; k++) {
            fs_cmpl cmpl;
            fs_conn_wait(c, tickets[k], &cmpl);
            fs_conn_free(c, paths[k]);
            cli_join(child, sizeof child, dst_path, list->entries[batch[k]].name);
            int r = made_dir(job, child, (fs_status)cmpl.status);
            made[batch[k]] = r == EXIT_OK;
            if (r != EXIT_OK)
                rc = r;
        }
    }
    return rc;
}

/* Copy a source directory's contents into dst_path, which exists. */
static int copy_tree_into(cp_job *job, const char *src_path, const char *dst_path)
{
    entry_list list;
    int rc = list_source(job, src_path, &list);
    if (rc != EXIT_OK)
        return rc;
    bool *made = calloc(list.count ? list.count : 1, sizeof *made);
    if (!made) {
        free_entries(&list);
        return fail_local(src_path, ENOMEM);
    }
    rc = make_subdirs(job, dst_path, &list, made);
    for (size_t i = 0; i < list.count && !cli_interrupted; i++) {
        const cp_entry *e = &list.entries[i];
        if (!e->name)
            continue;
        char src_child[4096], dst_child[4096];
        cli_join(src_child, sizeof src_child, src_path, e->name);
        cli_join(dst_child, sizeof dst_child, dst_path, e->name);
        if (e->err) {
            rc = fail_local(src_child, e->err);
        } else if (e->st.is_dir) {
            int r = made[i] ? copy_tree_into(job, src_child, dst_child) : EXIT_OK;
            if (r != EXIT_OK)
                rc = r;
        } else {
            add_file(job, src_child, dst_child, &e->st);
        }
    }
    free(made);
    free_entries(&list);
    return rc;
}

static int copy_tree(cp_job *job, const char *src_path, const char *dst_path)
{
    int rc = make_dir(job, dst_path);
    return rc == EXIT_OK ? copy_tree_into(job, src_path, dst_path) : rc;
}

/* ---- buffers, the command ---- */

static bool alloc_buffers(cp_job *job)
{
    for (uint32_t i = 0; i < CP_CHUNKS; i++) {
        cp_chunk *chunk = &job->chunks[i];
        uint8_t *r = job->src.session ? fs_conn_alloc(side_conn(&job->src), CP_CHUNK) : NULL;
        /* Within one image a chunk is read into and written from the same buffer. */
        uint8_t *w = job->dst.session && job->dst.session != job->src.session
                         ? fs_conn_alloc(side_conn(&job->dst), CP_CHUNK) : NULL;
        chunk->owns_rbuf = r != NULL;
        chunk->owns_wbuf = w != NULL;
        chunk->rbuf = r ? r : w;
        chunk->wbuf = w ? w : r;
        if (!chunk->rbuf || (job->src.session && !r) || (job->dst.session && !chunk->wbuf))
            return false;
    }
    return true;
}

static void free_buffers(cp_job *job)
{
    for (uint32_t i = 0; i < CP_CHUNKS; i++) {
        cp_chunk *chunk = &job->chunks[i];
        if (chunk->owns_rbuf)
            fs_conn_free(side_conn(&job->src), chunk->rbuf);
        if (chunk->owns_wbuf)
            fs_conn_free(side_conn(&job->dst), chunk->wbuf);
        memset(chunk, 0, sizeof *chunk);
    }
}

static const char cp_usage[] = "[-r] SOURCE DEST";

static void cp_help(void)
{
    printf("usage: asyncfat cp %s\n\n"
           "Copy a file (or with -r a directory tree) into an image, out of it, or within\n"
           "it. Either side may be IMAGE:PATH; the other may be a local path. If DEST is an\n"
           "existing directory, SOURCE is copied into it. Files of a tree are copied several\n"
           "at a time. Long copies show progress on a terminal; Ctrl-C stops between chunks\n"
           "and leaves the volume consistent.\n\n"
           "  -r   copy directories recursively\n",
           cp_usage);
}

/* Share region per session: the chunk buffers, and room for paths and listings. */
#define CP_SHARE_BYTES ((uint64_t)CP_CHUNKS * CP_CHUNK + (1u << 20))

int cmd_cp(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        cp_help();
        return EXIT_OK;
    }
    static cp_job job;
    memset(&job, 0, sizeof job);
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "rR")) != -1) {
        if (ch != 'r' && ch != 'R')
            return cli_usage("cp", cp_usage);
        job.recursive = true;
    }
    if (argc - optind != 2)
        return cli_usage("cp", cp_usage);
    cli_location src, dst;
    cli_parse_location(argv[optind], &src);
    cli_parse_location(argv[optind + 1], &dst);
    if (!src.in_image && !dst.in_image) {
        cli_error("cp", "neither '%s' nor '%s' is IMAGE:PATH", argv[optind], argv[optind + 1]);
        return EXIT_USAGE;
    }
    static cli_session sessions[2];
    bool same = src.in_image && dst.in_image && strcmp(src.image, dst.image) == 0;
    if (src.in_image) {
        if (cli_session_open_sized(&sessions[0], src.image, !same, CP_SHARE_BYTES, CLI_DATA_BYTES) != 0)
            return EXIT_FAILED;
        job.src.session = &sessions[0];
        snprintf(job.src.image, sizeof job.src.image, "%s", src.image);
    }
    if (dst.in_image) {
        if (same) {
            job.dst.session = &sessions[0];
        } else if (cli_session_open_sized(&sessions[1], dst.image, false, CP_SHARE_BYTES, CLI_DATA_BYTES) != 0) {
            if (job.src.session)
                cli_session_close(&sessions[0]);
            return EXIT_FAILED;
        } else {
            job.dst.session = &sessions[1];
        }
        snprintf(job.dst.image, sizeof job.dst.image, "%s", dst.image);
    }
    job.progress = isatty(STDERR_FILENO);

    int rc = EXIT_OK;
    cp_stat ss, ds;
    fs_status st = side_stat(&job.src, src.path, &ss);
    if (st != FS_STATUS_SUCCESS || !ss.exists) {
        rc = job.src.session ? fail_side(&job.src, src.path, st == FS_STATUS_SUCCESS ? FS_STATUS_NO_FILE : st)
                             : fail_local(src.path, ENOENT);
    } else if (ss.is_dir && !job.recursive) {
        cli_error(argv[optind], "is a directory (use -r)");
        rc = EXIT_FAILED;
    } else if (!alloc_buffers(&job)) {
        cli_error("cp", "out of memory");
        rc = EXIT_FAILED;
    }
    char target[4096];
    snprintf(target, sizeof target, "%s", dst.path);
    if (rc == EXIT_OK) {
        st = side_stat(&job.dst, dst.path, &ds);
        if (st != FS_STATUS_SUCCESS)
            rc = job.dst.session ? fail_side(&job.dst, dst.path, st) : fail_local(dst.path, errno);
        else if (ds.exists && ds.is_dir)
            cli_join(target, sizeof target, dst.path, cli_basename(src.path));
        else if (ss.is_dir && ds.exists) {
            cli_error(argv[optind + 1], "not a directory");
            rc = EXIT_FAILED;
        }
    }
    if (rc == EXIT_OK) {
        if (ss.is_dir)
            rc = copy_tree(&job, src.path, target);
        else
            add_file(&job, src.path, target, &ss);
        drain(&job);
        if (rc == EXIT_OK)
            rc = job.rc == EXIT_INTERRUPTED ? EXIT_OK : job.rc;
    }
    free_buffers(&job);
    if (job.src.session && cli_session_close(&sessions[0]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    if (job.dst.session == &sessions[1] && cli_session_close(&sessions[1]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    if (cli_interrupted) {
        fprintf(stderr, "asyncfat: cp: interrupted\n");
        return EXIT_INTERRUPTED;
    }
    return rc;
}
