/* asyncfat cp: copy files and trees into, out of, or within images. The command decides
 * what to copy where (GNU cp's rules for an existing destination directory) and opens the
 * sessions; the copying is the copy engine's (tools/copy/copy_engine.h). */
#include "tools/cli.h"
#include "tools/copy/copy_engine.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Within one image, a copy onto itself would empty the file before reading it, and a
 * directory copied into itself would meet its own copy as it walks: refuse both, as GNU cp
 * does. Names are no guide (FAT ignores case, and short aliases name files too), so each
 * prefix of the target that exists is compared with the source by its ino. */
static int refuse_onto_itself(const copy_side *side, const char *src_path, const copy_stat *ss, const char *target)
{
    size_t n = strlen(target);
    char prefix[4096];
    for (size_t end = 0; end <= n && end < sizeof prefix; end++) {
        if ((end < n && target[end] != '/') || (end > 0 && target[end - 1] == '/'))
            continue; /* inside a component, or an empty one */
        size_t len = end == 0 ? 1 : end; /* "/" first */
        memcpy(prefix, target, len);
        prefix[len] = '\0';
        copy_stat cs;
        if (copy_side_stat(side, prefix, &cs) != FS_STATUS_SUCCESS || !cs.exists)
            return EXIT_OK; /* nothing below a missing directory exists either */
        if (cs.ino != ss->ino)
            continue;
        size_t rest = end;
        while (rest < n && target[rest] == '/')
            rest++;
        if (rest == n && end > 0)
            cli_error("cp", "'%s:%s' and '%s:%s' are the same file", side->image, src_path, side->image, target);
        else
            cli_error("cp", "cannot copy a directory, '%s:%s', into itself, '%s:%s'", side->image, src_path,
                      side->image, target);
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

/* Copy src_path (on `from`) to dst_path (on `to`): into it if it is a directory. The
 * arguments as given name the files in messages about the request itself. */
static int copy_request(const copy_side *from, const copy_side *to, const char *src_path, const char *dst_path,
                        bool recursive, const char *src_arg, const char *dst_arg)
{
    copy_stat ss, ds;
    fs_status st = copy_side_stat(from, src_path, &ss);
    if (st != FS_STATUS_SUCCESS || !ss.exists)
        return from->conn ? cli_fail_status(from->image, src_path, st == FS_STATUS_SUCCESS ? FS_STATUS_NO_FILE : st)
                          : cli_fail_errno(src_path, ENOENT);
    if (ss.is_dir && !recursive) {
        cli_error(src_arg, "is a directory (use -r)");
        return EXIT_FAILED;
    }
    st = copy_side_stat(to, dst_path, &ds);
    if (st != FS_STATUS_SUCCESS)
        return to->conn ? cli_fail_status(to->image, dst_path, st) : cli_fail_errno(dst_path, errno);
    char target[4096];
    snprintf(target, sizeof target, "%s", dst_path);
    if (ds.exists && ds.is_dir) {
        cli_join(target, sizeof target, dst_path, cli_basename(src_path));
    } else if (ss.is_dir && ds.exists) {
        cli_error(dst_arg, "not a directory");
        return EXIT_FAILED;
    }
    if (from->conn && from->conn == to->conn && refuse_onto_itself(to, src_path, &ss, target) != EXIT_OK)
        return EXIT_FAILED;
    copy_job *job = copy_job_start(from, to, isatty(STDERR_FILENO));
    if (!job) {
        cli_error("cp", "out of memory");
        return EXIT_FAILED;
    }
    int rc = EXIT_OK;
    if (ss.is_dir)
        rc = copy_job_add_tree(job, src_path, target);
    else
        copy_job_add_file(job, src_path, target, &ss);
    int files_rc = copy_job_finish(job);
    if (rc == EXIT_OK)
        rc = files_rc == EXIT_INTERRUPTED ? EXIT_OK : files_rc;
    return rc;
}

/* Two names of one image file (another path to it, a link): one session serves both. */
static bool same_image(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int cmd_cp(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        cp_help();
        return EXIT_OK;
    }
    bool recursive = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "rR")) != -1) {
        if (ch != 'r' && ch != 'R')
            return cli_usage("cp", cp_usage);
        recursive = true;
    }
    if (argc - optind != 2)
        return cli_usage("cp", cp_usage);
    const char *src_arg = argv[optind], *dst_arg = argv[optind + 1];
    cli_location src, dst;
    cli_parse_location(src_arg, &src);
    cli_parse_location(dst_arg, &dst);
    if (!src.in_image && !dst.in_image) {
        cli_error("cp", "neither '%s' nor '%s' is IMAGE:PATH", src_arg, dst_arg);
        return EXIT_USAGE;
    }
    static cli_session sessions[2];
    copy_side from = {NULL, src.image}, to = {NULL, dst.image};
    bool same = src.in_image && dst.in_image && same_image(src.image, dst.image);
    if (src.in_image) {
        if (cli_session_open_sized(&sessions[0], src.image, !same, COPY_SHARE_BYTES, CLI_DATA_BYTES) != 0)
            return EXIT_FAILED;
        from.conn = &sessions[0].conn;
    }
    if (dst.in_image) {
        if (same) {
            to.conn = &sessions[0].conn;
        } else if (cli_session_open_sized(&sessions[1], dst.image, false, COPY_SHARE_BYTES, CLI_DATA_BYTES) != 0) {
            if (from.conn)
                cli_session_close(&sessions[0]);
            return EXIT_FAILED;
        } else {
            to.conn = &sessions[1].conn;
        }
    }
    int rc = copy_request(&from, &to, src.path, dst.path, recursive, src_arg, dst_arg);
    if (from.conn && cli_session_close(&sessions[0]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    if (to.conn == &sessions[1].conn && cli_session_close(&sessions[1]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    if (cli_interrupted) {
        fprintf(stderr, "asyncfat: cp: interrupted\n");
        return EXIT_INTERRUPTED;
    }
    return rc;
}
