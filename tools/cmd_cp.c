/* asyncfat cp: copy files and trees into, out of, or within images. Image sides go
 * through the server with several reads or writes in flight at once (a window of chunks
 * in the share region); long copies show progress on a terminal. */
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

#define CP_WINDOW 8u                 /* chunks in flight */
#define CP_CHUNK FS_CONN_IO_CHUNK
#define CP_PROGRESS_MIN (4u << 20)   /* files smaller than this copy silently */

typedef struct cp_side {
    cli_session *session;            /* NULL: a local file */
    char image[4096];
} cp_side;

typedef struct cp_job {
    cp_side src, dst;
    bool recursive;
    bool progress;
    uint8_t *rbuf[CP_WINDOW];        /* reads land here */
    uint8_t *wbuf[CP_WINDOW];        /* writes leave from here (== rbuf when they can) */
    size_t len[CP_WINDOW];
} cp_job;

typedef struct cp_stat {
    bool exists, is_dir;
    uint64_t size;
    int64_t mtime;
} cp_stat;

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
        fs_status status = fs_conn_stat(&side->session->conn, path, &st);
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

/* One window: read up to CP_WINDOW chunks at `offset`, then write them. Returns bytes
 * moved in *moved (short at the end of the source) or an exit code: an error, or
 * EXIT_INTERRUPTED when a signal broke a local read or write. Local files are read and
 * written sequentially, in order. */
static int copy_window(cp_job *job, uint64_t src_fd, int src_local, uint64_t dst_fd, int dst_local,
                       const char *src_path, const char *dst_path, uint64_t offset, uint64_t remaining,
                       uint64_t *moved)
{
    uint32_t n = 0;
    while (n < CP_WINDOW && (uint64_t)n * CP_CHUNK < remaining)
        n++;
    *moved = 0;
    /* Read phase. */
    if (job->src.session) {
        fs_conn *c = &job->src.session->conn;
        fs_conn_ticket t[CP_WINDOW];
        for (uint32_t i = 0; i < n; i++) {
            fs_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.type = FS_CMD_FILE_READ;
            cmd.params.file_read.fd = src_fd;
            cmd.params.file_read.offset = offset + (uint64_t)i * CP_CHUNK;
            cmd.params.file_read.buf = fs_conn_buffer(c, job->rbuf[i], CP_CHUNK);
            t[i] = fs_conn_submit(c, &cmd);
        }
        fs_status bad = FS_STATUS_SUCCESS;
        for (uint32_t i = 0; i < n; i++) {
            fs_cmpl cmpl;
            fs_conn_wait(c, t[i], &cmpl);
            if (cmpl.status != FS_STATUS_SUCCESS && bad == FS_STATUS_SUCCESS)
                bad = (fs_status)cmpl.status;
            job->len[i] = cmpl.data > CP_CHUNK ? CP_CHUNK : (size_t)cmpl.data;
        }
        if (bad != FS_STATUS_SUCCESS)
            return fail_side(&job->src, src_path, bad);
    } else {
        /* Sequential reads, so that pipes and FIFOs work as sources too. */
        bool end = false;
        for (uint32_t i = 0; i < n; i++) {
            job->len[i] = 0;
            while (!end && job->len[i] < CP_CHUNK) {
                ssize_t got = read(src_local, job->rbuf[i] + job->len[i], CP_CHUNK - job->len[i]);
                if (got < 0 && errno == EINTR && cli_interrupted)
                    return EXIT_INTERRUPTED;
                if (got < 0 && errno != EINTR)
                    return fail_local(src_path, errno);
                if (got == 0)
                    end = true;
                if (got > 0)
                    job->len[i] += (size_t)got;
            }
        }
    }
    /* Only the chunks before the first short one count. */
    uint32_t full = 0;
    uint64_t bytes = 0;
    while (full < n) {
        bytes += job->len[full];
        full++;
        if (job->len[full - 1] < CP_CHUNK)
            break;
    }
    for (uint32_t i = 0; i < full; i++)
        if (job->wbuf[i] != job->rbuf[i])
            memcpy(job->wbuf[i], job->rbuf[i], job->len[i]);
    /* Write phase. */
    if (job->dst.session) {
        fs_conn *c = &job->dst.session->conn;
        fs_conn_ticket t[CP_WINDOW];
        for (uint32_t i = 0; i < full; i++) {
            fs_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.type = FS_CMD_FILE_WRITE;
            cmd.params.file_write.fd = dst_fd;
            cmd.params.file_write.offset = offset + (uint64_t)i * CP_CHUNK;
            cmd.params.file_write.buf = fs_conn_buffer(c, job->wbuf[i], job->len[i]);
            t[i] = fs_conn_submit(c, &cmd);
        }
        fs_status bad = FS_STATUS_SUCCESS;
        for (uint32_t i = 0; i < full; i++) {
            fs_cmpl cmpl;
            fs_conn_wait(c, t[i], &cmpl);
            if (bad == FS_STATUS_SUCCESS && cmpl.status != FS_STATUS_SUCCESS)
                bad = (fs_status)cmpl.status;
            else if (bad == FS_STATUS_SUCCESS && cmpl.data != job->len[i])
                bad = FS_STATUS_NO_SPACE;
        }
        if (bad != FS_STATUS_SUCCESS)
            return fail_side(&job->dst, dst_path, bad);
    } else {
        for (uint32_t i = 0; i < full; i++) {
            size_t put = 0;
            while (put < job->len[i]) {
                ssize_t w = write(dst_local, job->wbuf[i] + put, job->len[i] - put);
                if (w < 0 && errno == EINTR && cli_interrupted)
                    return EXIT_INTERRUPTED;
                if (w < 0 && errno != EINTR)
                    return fail_local(dst_path, errno);
                if (w > 0)
                    put += (size_t)w;
            }
        }
    }
    *moved = bytes;
    return EXIT_OK;
}

static int copy_file(cp_job *job, const char *src_path, const char *dst_path, const cp_stat *src_st)
{
    uint64_t src_fd = 0, dst_fd = 0;
    int src_local = -1, dst_local = -1;
    if (job->src.session) {
        fs_status st = fs_conn_open_file(&job->src.session->conn, src_path, FS_OPEN_FLAGS_READ_ONLY, &src_fd);
        if (st != FS_STATUS_SUCCESS)
            return fail_side(&job->src, src_path, st);
    } else if ((src_local = open(src_path, O_RDONLY | O_CLOEXEC)) < 0) {
        return fail_local(src_path, errno);
    }
    int rc = EXIT_OK;
    bool dst_open = false;
    if (job->dst.session) {
        fs_status st = fs_conn_open_file(&job->dst.session->conn, dst_path,
                                         FS_OPEN_FLAGS_WRITE_ONLY | FS_OPEN_FLAGS_CREATE | FS_OPEN_FLAGS_TRUNCATE,
                                         &dst_fd);
        if (st == FS_STATUS_SUCCESS)
            dst_open = true;
        else
            rc = fail_side(&job->dst, dst_path, st);
    } else if ((dst_local = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        rc = fail_local(dst_path, errno);
    }
    bool show = job->progress && src_st->size >= CP_PROGRESS_MIN;
    uint64_t offset = 0;
    while (rc == EXIT_OK && !cli_interrupted) {
        uint64_t moved;
        /* Ask for a whole window even past the expected end, so a file that grew is copied whole. */
        rc = copy_window(job, src_fd, src_local, dst_fd, dst_local, src_path, dst_path, offset,
                         (uint64_t)CP_WINDOW * CP_CHUNK, &moved);
        offset += moved;
        if (show)
            show_progress(cli_basename(src_path), offset, src_st->size);
        if (moved < (uint64_t)CP_WINDOW * CP_CHUNK)
            break;
    }
    if (show)
        fputc('\n', stderr);
    if (job->dst.session && rc == EXIT_OK && !cli_interrupted)
        fs_conn_set_times(&job->dst.session->conn, dst_path, -1, src_st->mtime);
    if (job->src.session)
        fs_conn_close_file(&job->src.session->conn, src_fd);
    else
        close(src_local);
    if (dst_open) {
        fs_status st = fs_conn_close_file(&job->dst.session->conn, dst_fd);
        if (rc == EXIT_OK && st != FS_STATUS_SUCCESS)
            rc = fail_side(&job->dst, dst_path, st);
    } else if (dst_local >= 0 && close(dst_local) != 0 && rc == EXIT_OK) {
        rc = fail_local(dst_path, errno);
    }
    return rc;
}

static int make_dir(cp_job *job, const char *path)
{
    if (job->dst.session) {
        fs_status st = fs_conn_mkdir(&job->dst.session->conn, path);
        if (st == FS_STATUS_ALREADY_EXISTS) {
            cp_stat cs;
            if (side_stat(&job->dst, path, &cs) == FS_STATUS_SUCCESS && cs.is_dir)
                return EXIT_OK;
        }
        return st == FS_STATUS_SUCCESS ? EXIT_OK : fail_side(&job->dst, path, st);
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return fail_local(path, errno);
    return EXIT_OK;
}

typedef struct name_list {
    char **names;
    size_t count;
} name_list;

static void free_names(name_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
}

static int list_source(cp_job *job, const char *path, name_list *out)
{
    memset(out, 0, sizeof *out);
    if (job->src.session) {
        cli_dir d;
        fs_status st = cli_dir_read(&job->src.session->conn, path, &d);
        if (st != FS_STATUS_SUCCESS)
            return fail_side(&job->src, path, st);
        out->names = calloc(d.count ? d.count : 1, sizeof(char *));
        for (size_t i = 0; out->names && i < d.count; i++) {
            out->names[i] = d.entries[i].name;
            d.entries[i].name = NULL;
        }
        out->count = out->names ? d.count : 0;
        cli_dir_free(&d);
        return out->names ? EXIT_OK : fail_local(path, ENOMEM);
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
            char **grown = realloc(out->names, cap * sizeof(char *));
            if (!grown)
                break;
            out->names = grown;
        }
        out->names[out->count++] = strdup(e->d_name);
    }
    closedir(dir);
    return EXIT_OK;
}

static int copy_tree(cp_job *job, const char *src_path, const char *dst_path)
{
    int rc = make_dir(job, dst_path);
    name_list names;
    if (rc == EXIT_OK)
        rc = list_source(job, src_path, &names);
    if (rc != EXIT_OK)
        return rc;
    for (size_t i = 0; i < names.count && !cli_interrupted; i++) {
        if (!names.names[i])
            continue;
        char src_child[4096], dst_child[4096];
        cli_join(src_child, sizeof src_child, src_path, names.names[i]);
        cli_join(dst_child, sizeof dst_child, dst_path, names.names[i]);
        cp_stat cs;
        fs_status st = side_stat(&job->src, src_child, &cs);
        int r;
        if (st != FS_STATUS_SUCCESS || !cs.exists)
            r = job->src.session ? fail_side(&job->src, src_child, st) : fail_local(src_child, errno);
        else
            r = cs.is_dir ? copy_tree(job, src_child, dst_child) : copy_file(job, src_child, dst_child, &cs);
        if (r != EXIT_OK)
            rc = r;
    }
    free_names(&names);
    return rc;
}

static bool alloc_buffers(cp_job *job)
{
    for (uint32_t i = 0; i < CP_WINDOW; i++) {
        job->rbuf[i] = job->src.session ? fs_conn_alloc(&job->src.session->conn, CP_CHUNK) : NULL;
        if (job->dst.session && job->dst.session == job->src.session)
            job->wbuf[i] = job->rbuf[i];
        else
            job->wbuf[i] = job->dst.session ? fs_conn_alloc(&job->dst.session->conn, CP_CHUNK) : NULL;
        if (!job->rbuf[i])
            job->rbuf[i] = job->wbuf[i];
        if (!job->wbuf[i])
            job->wbuf[i] = job->rbuf[i];
        if (!job->rbuf[i])
            return false;
    }
    return true;
}

static const char cp_usage[] = "[-r] SOURCE DEST";

static void cp_help(void)
{
    printf("usage: asyncfat cp %s\n\n"
           "Copy a file (or with -r a directory tree) into an image, out of it, or within\n"
           "it. Either side may be IMAGE:PATH; the other may be a local path. If DEST is an\n"
           "existing directory, SOURCE is copied into it. Long copies show progress on a\n"
           "terminal; Ctrl-C stops between chunks and leaves the volume consistent.\n\n"
           "  -r   copy directories recursively\n",
           cp_usage);
}

int cmd_cp(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        cp_help();
        return EXIT_OK;
    }
    cp_job job;
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
        if (cli_session_open(&sessions[0], src.image, !same, 0) != 0)
            return EXIT_FAILED;
        job.src.session = &sessions[0];
        snprintf(job.src.image, sizeof job.src.image, "%s", src.image);
    }
    if (dst.in_image) {
        if (same) {
            job.dst.session = &sessions[0];
        } else if (cli_session_open(&sessions[1], dst.image, false, 0) != 0) {
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
    if (rc == EXIT_OK)
        rc = ss.is_dir ? copy_tree(&job, src.path, target) : copy_file(&job, src.path, target, &ss);
    for (uint32_t i = 0; i < CP_WINDOW; i++) {
        if (job.src.session && job.rbuf[i])
            fs_conn_free(&job.src.session->conn, job.rbuf[i]);
        if (job.dst.session && job.wbuf[i] && job.wbuf[i] != job.rbuf[i])
            fs_conn_free(&job.dst.session->conn, job.wbuf[i]);
    }
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
