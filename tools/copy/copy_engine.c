/* The copy engine's files in flight: chunks, operations and completions (see
 * copy_engine.h). */
#include "tools/copy/copy_engine.h"
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Outstanding operations, at most: one per chunk, and per file no more than three beside
 * its chunks (closing: SET_TIMES and both closes). */
#define COPY_OPS (COPY_CHUNKS + 3u * COPY_FILES)
#define COPY_PROGRESS_MIN (4u << 20)   /* files smaller than this copy silently */
#define COPY_PATH_MAX 4096u            /* bytes of a source or destination path, with its NUL */

typedef struct copy_file copy_file;

typedef enum { CHUNK_FREE, CHUNK_READING, CHUNK_READ, CHUNK_WRITING } copy_chunk_state;

typedef struct copy_chunk {
    copy_chunk_state state;
    copy_file *file;
    uint8_t *rbuf;                   /* reads land here */
    uint8_t *wbuf;                   /* writes leave from here (== rbuf when they can) */
    bool owns_rbuf, owns_wbuf;       /* allocated from the source's / destination's share */
    uint64_t offset;
    size_t len;
} copy_chunk;

typedef enum { FILE_IDLE, FILE_OPENING, FILE_DATA, FILE_CLOSING } copy_file_phase;

struct copy_file {
    copy_file_phase phase;
    copy_stat st;                    /* the source's */
    uint64_t src_fd, dst_fd;         /* image fds, valid while src_open / dst_open */
    int src_local, dst_local;        /* local fds, or -1 */
    bool src_open, dst_open;
    uint64_t next_offset;            /* where the next chunk starts */
    uint64_t written;                /* a local destination: bytes written, in order */
    uint64_t done_bytes;             /* for progress */
    bool end;                        /* no more chunks: end of source, error or Ctrl-C */
    bool show_progress;
    uint32_t chunks;                 /* chunks held */
    uint32_t ops;                    /* operations in flight */
    int rc;                          /* EXIT_OK, or the first failure's exit code */
    char *src, *dst;                 /* one heap block holding both, freed when the file is done:
                                      * 8 KiB of buffers in each of the 32 files faulted in
                                      * 70 pages of a tree copy */
};

typedef enum {
    OP_OPEN_SRC,
    OP_OPEN_DST,                     /* OPEN_STAT, not truncating: the record tells which file it is */
    OP_TRUNCATE_DST,                 /* to 0, once the file is known to be no other copy's */
    OP_READ,
    OP_WRITE,
    OP_TIMES,
    OP_CLOSE_SRC,
    OP_CLOSE_DST
} copy_op_kind;

typedef struct copy_op {
    copy_op_kind kind;
    fs_conn *conn;
    fs_call call;
    copy_file *file;
    copy_chunk *chunk;               /* OP_READ, OP_WRITE */
} copy_op;

/* An image destination file this job opened: by its ino (the place of its entry), the path
 * it was opened by. */
typedef struct copy_claim {
    uint64_t ino;                    /* 0: a free slot */
    char *path;
} copy_claim;

struct copy_job {
    copy_side src, dst;
    copy_options options;
    copy_chunk chunks[COPY_CHUNKS];
    copy_file files[COPY_FILES];
    copy_op ops[COPY_OPS];
    fs_conn_ticket tickets[COPY_OPS]; /* ops[i]'s, kept beside it for fs_conn_wait_any */
    uint32_t op_count;
    uint32_t tickets_known;          /* tickets[0 .. tickets_known) are ops[]'s */
    uint32_t data_files;             /* bit i: files[i] is in FILE_DATA (the ones pump visits) */
    uint32_t busy_files;
    int rc;                          /* the first failure of any file */
    copy_claim *claims;              /* open addressing, claim_slots a power of two */
    size_t claim_slots, claim_count;
};

static int fail_side(const copy_side *side, const char *path, fs_status st)
{
    return cli_fail_status(side->image, path, st);
}

static bool is_standard_stream(const char *path) { return strcmp(path, "-") == 0; }

void copy_stat_from_fs(const fs_stat *st, copy_stat *out)
{
    *out = (copy_stat){.exists = true, .is_dir = cli_is_dir_stat(st), .size = st->size,
                       .mtime = (int64_t)st->mtime, .dev = st->dev, .ino = st->ino};
}

void copy_stat_from_local(const struct stat *st, copy_stat *out)
{
    *out = (copy_stat){.exists = true, .is_dir = S_ISDIR(st->st_mode), .size = (uint64_t)st->st_size,
                       .mtime = (int64_t)st->st_mtime, .dev = (uint64_t)st->st_dev, .ino = (uint64_t)st->st_ino};
}

fs_status copy_side_stat(const copy_side *side, const char *path, copy_stat *out)
{
    memset(out, 0, sizeof *out);
    if (side->conn) {
        fs_stat st;
        fs_status status = fs_conn_stat(side->conn, path, &st);
        if (status == FS_STATUS_NO_FILE)
            return FS_STATUS_SUCCESS;
        if (status != FS_STATUS_SUCCESS)
            return status;
        copy_stat_from_fs(&st, out);
        return FS_STATUS_SUCCESS;
    }
    struct stat st;
    if (is_standard_stream(path)) {
        /* exists, not a directory, size and time unknown */
        *out = (copy_stat){.exists = true, .mtime = -1, .dev = UINT64_MAX, .ino = UINT64_MAX};
        return FS_STATUS_SUCCESS;
    }
    if (stat(path, &st) != 0)
        return errno == ENOENT ? FS_STATUS_SUCCESS : FS_STATUS_IO_ERROR;
    copy_stat_from_local(&st, out);
    return FS_STATUS_SUCCESS;
}

static void show_progress(const char *name, uint64_t done, uint64_t total)
{
    fprintf(stderr, "\r%s: %llu / %llu MiB (%llu%%)", name, (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20), (unsigned long long)(total ? done * 100 / total : 100));
}

/* Record a file's first failure (the message is already out). */
static void file_failed(copy_file *f, int rc)
{
    if (f->rc == EXIT_OK)
        f->rc = rc;
    f->end = true;
}

_Static_assert(COPY_FILES <= 32u, "copy_job.data_files has a bit per file");

static void set_phase(copy_job *job, copy_file *f, copy_file_phase phase)
{
    uint32_t bit = 1u << (f - job->files);
    f->phase = phase;
    job->data_files = phase == FILE_DATA ? job->data_files | bit : job->data_files & ~bit;
}

/* ---- operations in flight ---- */

/* A new operation in the table; the caller starts its call (fs_conn_start_*). */
static fs_call *add_op(copy_job *job, copy_op_kind kind, fs_conn *conn, copy_file *f, copy_chunk *chunk)
{
    if (job->op_count == COPY_OPS)
        abort(); /* COPY_OPS is the bound: a broken bound must not write past the table */
    copy_op *op = &job->ops[job->op_count++];
    *op = (copy_op){.kind = kind, .conn = conn, .file = f, .chunk = chunk};
    f->ops++;
    return &op->call;
}

static void start_open_source(copy_job *job, copy_file *f)
{
    fs_conn *c = job->src.conn;
    fs_conn_start_open(c, add_op(job, OP_OPEN_SRC, c, f, NULL), 0, f->src, FS_OPEN_FLAGS_READ_ONLY);
}

/* Without TRUNCATE: the record OPEN_STAT returns says first which file it is (below). */
static void start_open_destination(copy_job *job, copy_file *f)
{
    fs_conn *c = job->dst.conn;
    uint64_t flags = FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE;
    if (job->options.no_clobber)
        flags |= FS_OPEN_FLAGS_EXCLUSIVE;
    fs_conn_start_open_stat(c, add_op(job, OP_OPEN_DST, c, f, NULL), 0, f->dst, flags);
}

static void start_close(copy_job *job, copy_op_kind kind, fs_conn *c, copy_file *f, uint64_t fd)
{
    fs_conn_start_close(c, add_op(job, kind, c, f, NULL), fd);
}

/* After the last write (a write sets the modification time again), in the same batch as
 * the closes (a close leaves the time alone), queued before the destination's close: the
 * server holds the fd for it, so the close takes effect after it. On the fd, not the path:
 * looking the path up again was a third of a small-file tree copy's instructions. */
static void start_times(copy_job *job, copy_file *f)
{
    fs_conn *c = job->dst.conn;
    fs_conn_start_file_set_times(c, add_op(job, OP_TIMES, c, f, NULL), f->dst_fd, -1, f->st.mtime);
}

static void start_read(copy_job *job, copy_chunk *chunk)
{
    fs_conn *c = job->src.conn;
    chunk->state = CHUNK_READING;
    fs_conn_start_read(c, add_op(job, OP_READ, c, chunk->file, chunk), chunk->file->src_fd, chunk->offset,
                       chunk->rbuf, COPY_CHUNK);
}

static void start_write(copy_job *job, copy_chunk *chunk)
{
    fs_conn *c = job->dst.conn;
    chunk->state = CHUNK_WRITING;
    fs_conn_start_write(c, add_op(job, OP_WRITE, c, chunk->file, chunk), chunk->file->dst_fd, chunk->offset,
                        chunk->wbuf, chunk->len);
}

/* ---- one file's steps ---- */

static void release_chunk(copy_chunk *chunk)
{
    chunk->file->chunks--;
    chunk->file = NULL;
    chunk->state = CHUNK_FREE;
}

/* Close whatever is open; the file is done when no operation is left. */
static void close_file(copy_job *job, copy_file *f)
{
    set_phase(job, f, FILE_CLOSING);
    if (f->src_open && job->src.conn)
        start_close(job, OP_CLOSE_SRC, job->src.conn, f, f->src_fd);
    else if (f->src_local >= 0 && !is_standard_stream(f->src))
        close(f->src_local);
    f->src_local = -1;
    f->src_open = false;
    if (f->dst_open && job->dst.conn) {
        start_close(job, OP_CLOSE_DST, job->dst.conn, f, f->dst_fd);
    } else if (f->dst_local >= 0 && is_standard_stream(f->dst)) {
        if (fflush(stdout) != 0 && f->rc == EXIT_OK)
            f->rc = cli_fail_errno("standard output", errno);
    } else if (f->dst_local >= 0) {
        /* the source's modification time, as the copy into an image keeps it */
        struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = f->st.mtime}};
        if (f->rc == EXIT_OK && !cli_interrupted && f->st.mtime >= 0 && futimens(f->dst_local, times) != 0)
            f->rc = cli_fail_errno(f->dst, errno);
        if (close(f->dst_local) != 0 && f->rc == EXIT_OK)
            f->rc = cli_fail_errno(f->dst, errno);
    }
    f->dst_local = -1;
    f->dst_open = false;
}

static void write_local_in_order(copy_job *job, copy_file *f);

static void finish_if_done(copy_job *job, copy_file *f)
{
    if (f->phase == FILE_DATA && !job->dst.conn)
        write_local_in_order(job, f);
    if (f->phase == FILE_DATA && f->end && f->chunks == 0) {
        if (job->dst.conn && f->rc == EXIT_OK && !cli_interrupted && f->st.mtime >= 0)
            start_times(job, f);
        close_file(job, f);
    }
    if (f->phase == FILE_CLOSING && f->ops == 0) {
        if (f->show_progress) {
            show_progress(cli_basename(f->src), f->done_bytes, f->st.size);
            fputc('\n', stderr);
        }
        if (f->rc != EXIT_OK)
            job->rc = f->rc;
        set_phase(job, f, FILE_IDLE);
        free(f->src);
        f->src = f->dst = NULL;
        job->busy_files--;
    }
}

/* ---- destination files this job opened ----
 * Two source names can name one file on the volume (FAT names ignore case; the server
 * strips trailing dots and spaces; a short alias names its file). The second one must not
 * overwrite what the first copied, so the destination is opened without truncating, the
 * record its open returns says which file it is, and only a file no other copy of this job
 * opened is truncated and written: the first to open it keeps it, as GNU cp keeps a file
 * it "just created". */

/* An ino is where an entry lies: a multiple of the entry size, runs of them neighbours.
 * Taken as is, they would fill runs of slots and probes would grow long; the product's
 * upper half spreads them. */
static size_t claim_hash(uint64_t ino) { return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 32); }

/* 0: ino is now `path`'s; 1: another copy opened it (*owner gets that copy's path);
 * -1: out of memory. */
static int claim_destination(copy_job *job, uint64_t ino, const char *path, const char **owner)
{
    if (job->claim_count * 2 >= job->claim_slots) {
        size_t slots = job->claim_slots ? job->claim_slots * 2 : 1024;
        copy_claim *grown = calloc(slots, sizeof *grown);
        if (!grown)
            return -1;
        for (size_t i = 0; i < job->claim_slots; i++) {
            if (!job->claims[i].ino)
                continue;
            size_t at = claim_hash(job->claims[i].ino) & (slots - 1);
            while (grown[at].ino)
                at = (at + 1) & (slots - 1);
            grown[at] = job->claims[i];
        }
        free(job->claims);
        job->claims = grown;
        job->claim_slots = slots;
    }
    size_t at = claim_hash(ino) & (job->claim_slots - 1);
    while (job->claims[at].ino && job->claims[at].ino != ino)
        at = (at + 1) & (job->claim_slots - 1);
    if (job->claims[at].ino) {
        *owner = job->claims[at].path;
        return 1;
    }
    char *copy = strdup(path);
    if (!copy)
        return -1;
    job->claims[at] = (copy_claim){ino, copy};
    job->claim_count++;
    return 0;
}

static void free_claims(copy_job *job)
{
    for (size_t i = 0; i < job->claim_slots; i++)
        free(job->claims[i].path);
    free(job->claims);
}

/* OPEN_STAT opened the destination: go on with it if it is no other copy's (emptying it
 * first if it has data), else report the clash and close it untouched. */
static void destination_opened(copy_job *job, copy_file *f, const fs_reply *reply)
{
    const fs_stat *rec = &reply->record.stat;
    f->dst_fd = reply->data;
    f->dst_open = true;
    const char *owner = NULL;
    int claimed = claim_destination(job, rec->ino, f->dst, &owner);
    if (claimed != 0) {
        if (claimed < 0)
            cli_error("cp", "out of memory");
        else if (job->src.conn)
            cli_error("cp", "will not overwrite just-created '%s:%s' with '%s:%s' (the same name on FAT)",
                      job->dst.image, owner, job->src.image, f->src);
        else
            cli_error("cp", "will not overwrite just-created '%s:%s' with '%s' (the same name on FAT)",
                      job->dst.image, owner, f->src);
        file_failed(f, EXIT_FAILED);
        close_file(job, f);
    } else if (rec->size > 0) {
        fs_conn_start_truncate(job->dst.conn, add_op(job, OP_TRUNCATE_DST, job->dst.conn, f, NULL), f->dst_fd, 0);
    } else {
        set_phase(job, f, FILE_DATA);
    }
}

static void open_destination(copy_job *job, copy_file *f)
{
    if (job->dst.conn) {
        start_open_destination(job, f);
        return;
    }
    if (is_standard_stream(f->dst)) {
        fflush(stdout);
        f->dst_local = STDOUT_FILENO;
        set_phase(job, f, FILE_DATA);
        return;
    }
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (job->options.no_clobber ? O_EXCL : O_TRUNC);
    f->dst_local = open(f->dst, flags, 0644);
    if (f->dst_local < 0 && errno == EEXIST && job->options.no_clobber) {
        close_file(job, f); /* left alone, as cp -n leaves it */
    } else if (f->dst_local < 0) {
        file_failed(f, cli_fail_errno(f->dst, errno));
        close_file(job, f);
    } else {
        set_phase(job, f, FILE_DATA);
    }
}

/* A local destination is written in order: chunk k waits until chunk k-1 is out, so a
 * pipe or a terminal gets the bytes in sequence. After a failure the chunks still held are
 * dropped. */
static void write_local_in_order(copy_job *job, copy_file *f)
{
    for (;;) {
        copy_chunk *next = NULL;
        for (uint32_t i = 0; i < COPY_CHUNKS && !next; i++) {
            copy_chunk *chunk = &job->chunks[i];
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
                file_failed(f, cli_fail_errno(f->dst, errno));
            else if (w > 0)
                put += (size_t)w;
        }
        f->written += next->len;
        f->done_bytes += put;
        release_chunk(next);
    }
}

/* A chunk's data is in rbuf: send it on. */
static void chunk_read(copy_job *job, copy_chunk *chunk)
{
    copy_file *f = chunk->file;
    if (chunk->len == 0 || f->rc != EXIT_OK) {
        release_chunk(chunk);
        return;
    }
    if (chunk->wbuf != chunk->rbuf)
        memcpy(chunk->wbuf, chunk->rbuf, chunk->len);
    chunk->state = CHUNK_READ;
    if (job->dst.conn)
        start_write(job, chunk);
    else
        write_local_in_order(job, f);
}

/* Read a local source's next chunk, in order; false at its end (or on an error). */
static bool read_local(copy_file *f, copy_chunk *chunk)
{
    chunk->len = 0;
    while (chunk->len < COPY_CHUNK) {
        ssize_t got = read(f->src_local, chunk->rbuf + chunk->len, COPY_CHUNK - chunk->len);
        if (got < 0 && errno == EINTR && cli_interrupted) {
            file_failed(f, EXIT_INTERRUPTED); /* a partial chunk is dropped */
            return false;
        }
        if (got < 0 && errno != EINTR) {
            file_failed(f, cli_fail_errno(f->src, errno));
            return false;
        }
        if (got == 0) {
            f->end = true;
            break;
        }
        if (got <= 0)
            continue;
        size_t asked = COPY_CHUNK - chunk->len;
        chunk->len += (size_t)got;
        /* A short read that ends where the source's size said the file ends is its end,
         * without a further read to learn it (a system call per small file). A file that
         * has grown meanwhile reads on. */
        if ((size_t)got < asked && !is_standard_stream(f->src) && f->next_offset + chunk->len == f->st.size) {
            f->end = true;
            break;
        }
    }
    return true;
}

/* Start as many chunks of f as its window and the free buffers allow. */
static void pump_file(copy_job *job, copy_file *f)
{
    for (uint32_t i = 0; i < COPY_CHUNKS && f->phase == FILE_DATA && !f->end && f->chunks < COPY_FILE_CHUNKS; i++) {
        copy_chunk *chunk = &job->chunks[i];
        if (chunk->state != CHUNK_FREE)
            continue;
        if (cli_interrupted) {
            f->end = true;
            break;
        }
        chunk->file = f;
        chunk->offset = f->next_offset;
        f->chunks++;
        if (job->src.conn) {
            /* A whole chunk even past the expected size, so a file that grew is copied whole. */
            f->next_offset += COPY_CHUNK;
            start_read(job, chunk);
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

static void pump(copy_job *job)
{
    for (uint32_t left = job->data_files; left; left &= left - 1)
        pump_file(job, &job->files[__builtin_ctz(left)]);
}

static void op_done(copy_job *job, copy_op *op, const fs_cmpl *cmpl)
{
    copy_file *f = op->file;
    copy_chunk *chunk = op->chunk;
    fs_reply reply;
    fs_conn_finish(op->conn, &op->call, cmpl, &reply);
    fs_status st = reply.status;
    f->ops--;
    switch (op->kind) {
    case OP_OPEN_SRC:
        if (st != FS_STATUS_SUCCESS) {
            file_failed(f, fail_side(&job->src, f->src, st));
            close_file(job, f);
            break;
        }
        f->src_fd = reply.data;
        f->src_open = true;
        open_destination(job, f);
        break;
    case OP_OPEN_DST:
        if (st == FS_STATUS_ALREADY_EXISTS && job->options.no_clobber) {
            close_file(job, f); /* left alone, as cp -n leaves it */
            break;
        }
        if (st != FS_STATUS_SUCCESS) {
            file_failed(f, fail_side(&job->dst, f->dst, st));
            close_file(job, f);
            break;
        }
        destination_opened(job, f, &reply);
        break;
    case OP_TRUNCATE_DST:
        if (st != FS_STATUS_SUCCESS) {
            file_failed(f, fail_side(&job->dst, f->dst, st));
            close_file(job, f);
            break;
        }
        set_phase(job, f, FILE_DATA);
        break;
    case OP_READ:
        if (st != FS_STATUS_SUCCESS) {
            if (f->rc == EXIT_OK)
                file_failed(f, fail_side(&job->src, f->src, st));
            release_chunk(chunk);
            break;
        }
        chunk->len = reply.data > COPY_CHUNK ? COPY_CHUNK : (size_t)reply.data;
        if (chunk->len < COPY_CHUNK)
            f->end = true;
        chunk_read(job, chunk);
        break;
    case OP_WRITE:
        if (st == FS_STATUS_SUCCESS && reply.data != chunk->len)
            st = chunk->offset + chunk->len > COPY_FAT_MAX_FILE ? FS_STATUS_FILE_TOO_LARGE : FS_STATUS_NO_SPACE;
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
static bool step(copy_job *job)
{
    pump(job);
    if (job->op_count == 0)
        return false;
    fs_conn *conn = job->ops[0].conn;
    fs_cmpl cmpl;
    uint32_t which;
    if (!job->src.conn || !job->dst.conn || job->src.conn == job->dst.conn) {
        /* one connection: every operation is on it (the common case, no table to build) */
        for (uint32_t i = job->tickets_known; i < job->op_count; i++)
            job->tickets[i] = job->ops[i].call.ticket;
        which = fs_conn_wait_any(conn, job->tickets, job->op_count, &cmpl);
    } else {
        fs_conn_ticket tickets[COPY_OPS];
        uint32_t index[COPY_OPS], n = 0;
        for (uint32_t i = 0; i < job->op_count; i++)
            if (job->ops[i].conn == conn) {
                tickets[n] = job->ops[i].call.ticket;
                index[n++] = i;
            }
        which = index[fs_conn_wait_any(conn, tickets, n, &cmpl)];
    }
    copy_op op = job->ops[which];
    memmove(&job->ops[which], &job->ops[which + 1], (job->op_count - which - 1) * sizeof(copy_op));
    memmove(&job->tickets[which], &job->tickets[which + 1], (job->op_count - which - 1) * sizeof(fs_conn_ticket));
    job->op_count--;
    job->tickets_known = job->op_count;
    op_done(job, &op, &cmpl);
    return true;
}

/* cp -i: ask before replacing an existing destination file. */
static bool may_replace(copy_job *job, const char *dst)
{
    copy_stat ds;
    if (copy_side_stat(&job->dst, dst, &ds) != FS_STATUS_SUCCESS || !ds.exists || is_standard_stream(dst))
        return true;
    fprintf(stderr, "asyncfat: cp: overwrite '%s%s%s'? ", job->dst.conn ? job->dst.image : "",
            job->dst.conn ? ":" : "", dst);
    fflush(stderr);
    char answer[64];
    return fgets(answer, sizeof answer, stdin) && (answer[0] == 'y' || answer[0] == 'Y');
}

static void say_copied(const copy_job *job, const char *src, const char *dst)
{
    printf("'%s%s%s' -> '%s%s%s'\n", job->src.conn ? job->src.image : "", job->src.conn ? ":" : "", src,
           job->dst.conn ? job->dst.image : "", job->dst.conn ? ":" : "", dst);
}

void copy_job_add_file(copy_job *job, const char *src, const char *dst, const copy_stat *st)
{
    size_t src_size = strlen(src) + 1, dst_size = strlen(dst) + 1;
    if (src_size > COPY_PATH_MAX || dst_size > COPY_PATH_MAX) {
        job->rc = cli_fail_errno(src_size > COPY_PATH_MAX ? src : dst, ENAMETOOLONG);
        return;
    }
    if (job->dst.conn && st->size > COPY_FAT_MAX_FILE) {
        char where[8300];
        snprintf(where, sizeof where, "%s%s%s", job->src.conn ? job->src.image : "", job->src.conn ? ":" : "", src);
        cli_error(where, "%llu bytes is too large for FAT, whose files hold at most 4 GiB - 1 (%llu bytes)",
                  (unsigned long long)st->size, (unsigned long long)COPY_FAT_MAX_FILE);
        job->rc = EXIT_FAILED;
        return;
    }
    if (job->options.interactive && !may_replace(job, dst))
        return;
    if (job->options.verbose)
        say_copied(job, src, dst);
    while (job->busy_files == COPY_FILES && step(job))
        continue;
    char *paths = malloc(src_size + dst_size);
    if (!paths) {
        job->rc = cli_fail_errno(src, ENOMEM);
        return;
    }
    copy_file *f = NULL;
    for (uint32_t i = 0; !f; i++)
        if (job->files[i].phase == FILE_IDLE)
            f = &job->files[i];
    memset(f, 0, sizeof *f);
    f->src = memcpy(paths, src, src_size);
    f->dst = memcpy(paths + src_size, dst, dst_size);
    f->st = *st;
    f->src_local = f->dst_local = -1;
    f->show_progress = job->options.progress && st->size >= COPY_PROGRESS_MIN;
    set_phase(job, f, FILE_OPENING);
    job->busy_files++;
    if (job->src.conn) {
        start_open_source(job, f);
        return;
    }
    f->src_local = is_standard_stream(src) ? STDIN_FILENO : open(src, O_RDONLY | O_CLOEXEC);
    if (f->src_local < 0) {
        file_failed(f, cli_fail_errno(src, errno));
        close_file(job, f);
        finish_if_done(job, f);
        return;
    }
    open_destination(job, f);
    finish_if_done(job, f);
}

/* ---- the job ---- */

static bool alloc_buffers(copy_job *job)
{
    for (uint32_t i = 0; i < COPY_CHUNKS; i++) {
        copy_chunk *chunk = &job->chunks[i];
        uint8_t *r = job->src.conn ? fs_conn_alloc(job->src.conn, COPY_CHUNK) : NULL;
        /* Within one image a chunk is read into and written from the same buffer. */
        uint8_t *w = job->dst.conn && job->dst.conn != job->src.conn ? fs_conn_alloc(job->dst.conn, COPY_CHUNK)
                                                                     : NULL;
        chunk->owns_rbuf = r != NULL;
        chunk->owns_wbuf = w != NULL;
        chunk->rbuf = r ? r : w;
        chunk->wbuf = w ? w : r;
        if (!chunk->rbuf || (job->src.conn && !r) || (job->dst.conn && !chunk->wbuf))
            return false;
    }
    return true;
}

static void free_buffers(copy_job *job)
{
    for (uint32_t i = 0; i < COPY_CHUNKS; i++) {
        copy_chunk *chunk = &job->chunks[i];
        if (chunk->owns_rbuf)
            fs_conn_free(job->src.conn, chunk->rbuf);
        if (chunk->owns_wbuf)
            fs_conn_free(job->dst.conn, chunk->wbuf);
        memset(chunk, 0, sizeof *chunk);
    }
}

copy_job *copy_job_start(const copy_side *src, const copy_side *dst, const copy_options *options)
{
    copy_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->src = *src;
    job->dst = *dst;
    job->options = *options;
    if (!alloc_buffers(job)) {
        free_buffers(job);
        free(job);
        return NULL;
    }
    return job;
}

int copy_job_finish(copy_job *job)
{
    while (job->busy_files > 0 && step(job))
        continue;
    int rc = job->rc;
    for (uint32_t i = 0; i < COPY_FILES; i++)
        free(job->files[i].src); /* a file still busy (nothing more in flight for it) */
    free_buffers(job);
    free_claims(job);
    free(job);
    return rc;
}

const copy_side *copy_job_source(const copy_job *job) { return &job->src; }
const copy_side *copy_job_destination(const copy_job *job) { return &job->dst; }
