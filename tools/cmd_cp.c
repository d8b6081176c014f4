/* asyncfat cp: copy files and trees into, out of, or within images. The command decides
 * what to copy where (GNU cp's rules for several sources and an existing destination
 * directory; wildcards in image sources expanded here, as mtools does) and opens the
 * sessions; the copying is the copy engine's (tools/copy/copy_engine.h). */
#include "tools/cli.h"
#include "tools/cli_operands.h"
#include "tools/copy/copy_engine.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char cp_usage[] = "[-r] [-n] [-i] [-v] SOURCE... DEST";

static void cp_help(void)
{
    printf("usage: asyncfat cp %s\n\n"
           "Copy files (or with -r directory trees) into an image, out of it, or within it.\n"
           "SOURCE and DEST are IMAGE:PATH (or ::PATH with -i IMAGE) or local paths; - is\n"
           "standard input as a SOURCE and standard output as DEST. With several sources,\n"
           "or if DEST is an existing directory, each SOURCE is copied into it. Wildcards in\n"
           "image paths are expanded by the command. Modification times are kept both ways.\n"
           "Files of a tree are copied several at a time. Long copies show progress on a\n"
           "terminal; Ctrl-C stops between chunks and leaves the volume consistent.\n\n"
           "  -r   copy directories recursively\n"
           "  -n   do not overwrite an existing file (no clobber)\n"
           "  -i   ask before overwriting a file (--interactive; with -i IMAGE, mtools'\n"
           "       form, only --interactive asks)\n"
           "  -v   name each file as it is copied\n",
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

static const char *side_name(const copy_side *side, const char *path)
{
    return side->conn ? cli_in_image(side->image, path) : path;
}

/* Copy src_path (on `from`) to dst_path (on `to`): into it if into_dir. */
static int copy_one(copy_job *job, const copy_side *from, const copy_side *to, const char *src_path,
                    const char *dst_path, bool into_dir, bool recursive)
{
    copy_stat ss;
    fs_status st = copy_side_stat(from, src_path, &ss);
    if (st != FS_STATUS_SUCCESS || !ss.exists)
        return from->conn ? cli_fail_status(from->image, src_path, st == FS_STATUS_SUCCESS ? FS_STATUS_NO_FILE : st)
                          : cli_fail_errno(src_path, st == FS_STATUS_SUCCESS ? ENOENT : errno);
    if (ss.is_dir && !recursive) {
        cli_error(side_name(from, src_path), "is a directory (cp -r copies it and what it holds)");
        return EXIT_FAILED;
    }
    char target[4096];
    int len = snprintf(target, sizeof target, "%s", dst_path);
    if (len < 0 || (size_t)len >= sizeof target ||
        (into_dir && !cli_join(target, sizeof target, dst_path, cli_basename(src_path))))
        return to->conn ? cli_fail_status(to->image, dst_path, FS_STATUS_INVALID_PATH)
                        : cli_fail_errno(dst_path, ENAMETOOLONG);
    if (ss.is_dir && !into_dir) {
        copy_stat ds;
        if (copy_side_stat(to, target, &ds) == FS_STATUS_SUCCESS && ds.exists && !ds.is_dir) {
            /* side_name's buffer is shared: the source's name is copied out first */
            char source[4096 + CLI_PATH_MAX + 8];
            snprintf(source, sizeof source, "%s", side_name(from, src_path));
            cli_error(side_name(to, target), "not a directory (cannot copy the directory %s over it)", source);
            return EXIT_FAILED;
        }
    }
    if (from->conn && from->conn == to->conn && refuse_onto_itself(to, src_path, &ss, target) != EXIT_OK)
        return EXIT_FAILED;
    if (ss.is_dir)
        return copy_job_add_tree(job, src_path, target);
    copy_job_add_file(job, src_path, target, &ss);
    return EXIT_OK;
}

/* Two names of one image file (another path to it, a link), and the same volume on it:
 * one session serves both. */
static bool same_image(const char *a, const char *b)
{
    cli_image x, y;
    struct stat sx, sy;
    return cli_image_resolve(a, &x) && cli_image_resolve(b, &y) && stat(x.file, &sx) == 0 &&
           stat(y.file, &sy) == 0 && sx.st_dev == sy.st_dev && sx.st_ino == sy.st_ino &&
           memcmp(&x.volume, &y.volume, sizeof x.volume) == 0;
}

typedef struct cp_args {
    copy_options options;
    bool recursive;
    int sources;                 /* count */
    char **source_args;
    const char *dest_arg;
    cli_location *src;           /* parsed sources */
    cli_location dst;
} cp_args;

/* Every source on one side: all in one image, or all local. */
static int check_sources(cp_args *a)
{
    for (int i = 0; i < a->sources; i++) {
        cli_parse_location(a->source_args[i], &a->src[i]);
        if (a->src[i].too_long) {
            cli_error(a->source_args[i], "path too long (at most %u bytes)", CLI_PATH_MAX - 1);
            return EXIT_FAILED;
        }
        if (!a->src[i].in_image && a->src[i].missing[0] && strcmp(a->source_args[i], "-") != 0 &&
            access(a->source_args[i], F_OK) != 0)
            return cli_fail_not_image(a->source_args[i], &a->src[i]);
        if (a->src[i].in_image != a->src[0].in_image ||
            (a->src[i].in_image && strcmp(a->src[i].image, a->src[0].image) != 0)) {
            cli_error("cp", "the sources must all be in one image, or all be local files");
            return EXIT_USAGE;
        }
    }
    cli_parse_location(a->dest_arg, &a->dst);
    if (a->dst.too_long) {
        cli_error(a->dest_arg, "path too long (at most %u bytes)", CLI_PATH_MAX - 1);
        return EXIT_FAILED;
    }
    if (!a->dst.in_image && a->dst.missing[0] && !a->src[0].in_image)
        return cli_fail_not_image(a->dest_arg, &a->dst);
    if (!a->src[0].in_image && !a->dst.in_image) {
        cli_error("cp", "no operand is in an image: name files in one as IMAGE:PATH (or ::PATH with -i IMAGE)");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static int cp_run(cp_args *a, const copy_side *from, const copy_side *to)
{
    int rc = EXIT_OK;
    /* The sources, wildcards expanded. */
    char **paths = NULL;
    size_t count = 0;
    cli_paths expanded = {0};
    if (from->conn) {
        cli_expand_all(from->conn, a->src, a->sources, &expanded, &rc);
        paths = expanded.paths;
        count = expanded.count;
    } else {
        paths = calloc((size_t)a->sources, sizeof *paths);
        for (int i = 0; paths && i < a->sources; i++)
            paths[count++] = a->src[i].path;
    }
    copy_stat ds;
    fs_status st = copy_side_stat(to, a->dst.path, &ds);
    bool into_dir = st == FS_STATUS_SUCCESS && ds.exists && ds.is_dir;
    copy_job *job = NULL;
    if (st != FS_STATUS_SUCCESS) {
        rc = to->conn ? cli_fail_status(to->image, a->dst.path, st) : cli_fail_errno(a->dst.path, errno);
    } else if ((count > 1 || a->sources > 1) && !into_dir) {
        cli_error("cp", "target '%s' is not a directory (several sources are copied only into one)",
                  side_name(to, a->dst.path));
        rc = EXIT_FAILED;
    } else if (!(job = copy_job_start(from, to, &a->options))) {
        cli_error("cp", "out of memory");
        rc = EXIT_FAILED;
    }
    for (size_t i = 0; job && i < count && !cli_interrupted; i++) {
        int r = copy_one(job, from, to, paths[i], a->dst.path, into_dir, a->recursive);
        if (r != EXIT_OK)
            rc = r;
    }
    if (job) {
        int files_rc = copy_job_finish(job);
        if (rc == EXIT_OK)
            rc = files_rc == EXIT_INTERRUPTED ? EXIT_OK : files_rc;
    }
    if (from->conn)
        cli_paths_free(&expanded);
    else
        free(paths);
    return rc;
}

int cmd_cp(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        cp_help();
        return EXIT_OK;
    }
    static const struct option longopts[] = {
        {"recursive", no_argument, NULL, 'r'},  {"no-clobber", no_argument, NULL, 'n'},
        {"interactive", no_argument, NULL, 'i'}, {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    cp_args a;
    memset(&a, 0, sizeof a);
    a.options.progress = isatty(STDERR_FILENO);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":rRniv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': case 'R': a.recursive = true; break;
        case 'n': a.options.no_clobber = true; break;
        case 'i': a.options.interactive = true; break;
        case 'v': a.options.verbose = true; break;
        default: return cli_bad_option("cp", cp_usage, ch, argv);
        }
    }
    if (a.options.no_clobber)
        a.options.interactive = false;
    a.sources = argc - optind - 1;
    if (a.sources < 1)
        return cli_usage("cp", cp_usage);
    a.source_args = argv + optind;
    a.dest_arg = argv[argc - 1];
    a.src = calloc((size_t)a.sources, sizeof *a.src);
    if (!a.src)
        return EXIT_FAILED;
    int rc = check_sources(&a);
    if (rc != EXIT_OK) {
        free(a.src);
        return rc;
    }
    static cli_session sessions[2];
    copy_side from = {NULL, a.src[0].image}, to = {NULL, a.dst.image};
    bool same = a.src[0].in_image && a.dst.in_image && same_image(a.src[0].image, a.dst.image);
    if (a.src[0].in_image) {
        if (cli_session_open_sized(&sessions[0], a.src[0].image, !same, COPY_SHARE_BYTES, CLI_DATA_BYTES) != 0) {
            free(a.src);
            return EXIT_FAILED;
        }
        from.conn = &sessions[0].conn;
    }
    if (a.dst.in_image) {
        if (same) {
            to.conn = &sessions[0].conn;
        } else if (cli_session_open_sized(&sessions[1], a.dst.image, false, COPY_SHARE_BYTES, CLI_DATA_BYTES) != 0) {
            if (from.conn)
                cli_session_close(&sessions[0]);
            free(a.src);
            return EXIT_FAILED;
        } else {
            to.conn = &sessions[1].conn;
        }
    }
    rc = cp_run(&a, &from, &to);
    if (from.conn && cli_session_close(&sessions[0]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    if (to.conn == &sessions[1].conn && cli_session_close(&sessions[1]) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    free(a.src);
    if (cli_interrupted) {
        cli_error("cp", "interrupted");
        return EXIT_INTERRUPTED;
    }
    return rc;
}
