/* The subcommands that look at or change names in one image through the server:
 * cat, stat, mkdir, rm, rmdir, mv. */
#include "tools/cli.h"
#include "tools/cli_attributes.h"
#include "tools/cli_dir.h"
#include "tools/cli_operands.h"
#include "tools/tree_walk.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Close the session and choose the exit status. */
/* ---- cat ---- */

int cmd_cat(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat cat %s\n\nWrite the files' contents to standard output.\n", usage);
        return EXIT_OK;
    }
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":")) != -1)
        return cli_bad_option("cat", usage, ch, argv);
    int n = argc - optind;
    if (n < 1)
        return cli_usage("cat", usage);
    cli_session s;
    cli_location *locs = cli_open_operands("cat", n, argv + optind, true, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    size_t cap = FS_CONN_IO_CHUNK;
    char *buf = malloc(cap);
    for (size_t i = 0; i < all.count && buf && !cli_interrupted; i++) {
        uint64_t fd;
        fs_status st = fs_conn_open_file(&s.conn, all.paths[i], FS_OPEN_FLAGS_READ_ONLY, &fd);
        if (st != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(s.image, all.paths[i], st);
            continue;
        }
        uint64_t offset = 0;
        for (;;) {
            size_t got;
            st = fs_conn_read(&s.conn, fd, offset, buf, cap, &got);
            if (st != FS_STATUS_SUCCESS) {
                rc = cli_fail_status(s.image, all.paths[i], st);
                break;
            }
            if (got && fwrite(buf, 1, got, stdout) != got) {
                cli_error("standard output", "%s", cli_errno_text(errno));
                rc = EXIT_FAILED;
                break;
            }
            offset += got;
            if (got < cap || cli_interrupted)
                break;
        }
        fs_conn_close_file(&s.conn, fd);
    }
    fflush(stdout);
    free(buf);
    cli_paths_free(&all);
    free(locs);
    return cli_session_finish(&s, rc);
}

/* ---- stat ---- */

int cmd_stat(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat stat %s\n\n"
               "Show each file's size, type, mode, FAT attributes (ASHR: archive, system, hidden,\n"
               "read-only) and times.\n",
               usage);
        return EXIT_OK;
    }
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":")) != -1)
        return cli_bad_option("stat", usage, ch, argv);
    int n = argc - optind;
    if (n < 1)
        return cli_usage("stat", usage);
    cli_session s;
    cli_location *locs = cli_open_operands("stat", n, argv + optind, true, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    for (size_t i = 0; i < all.count && !cli_interrupted; i++) {
        fs_stat st;
        uint64_t attributes = 0;
        fs_status status = fs_conn_stat(&s.conn, all.paths[i], &st);
        if (status == FS_STATUS_SUCCESS)
            status = fs_conn_get_attributes(&s.conn, all.paths[i], &attributes);
        if (status != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(s.image, all.paths[i], status);
            continue;
        }
        char mode[11], at[32], mt[32], ct[32], attrs[5];
        cli_mode_string(&st, mode);
        cli_attribute_letters(attributes, attrs);
        cli_time_string(st.atime, at, sizeof at);
        cli_time_string(st.mtime, mt, sizeof mt);
        cli_time_string(st.ctime, ct, sizeof ct);
        printf("  File: %s\n  Size: %llu\tBlocks: %llu\tIO Block: %llu\t%s\n"
               " Inode: %llu\tLinks: %llu\tMode: %04llo (%s)\tAttributes: %s\n"
               "Access: %s\nModify: %s\nChange: %s\n",
               all.paths[i], (unsigned long long)st.size, (unsigned long long)st.blocks,
               (unsigned long long)st.blksize, cli_is_dir_stat(&st) ? "directory" : "regular file",
               (unsigned long long)st.ino, (unsigned long long)st.nlink, (unsigned long long)(st.mode & 07777), mode,
               attrs, at, mt, ct);
    }
    cli_paths_free(&all);
    free(locs);
    return cli_session_finish(&s, rc);
}

/* ---- mkdir ---- */

static fs_status mkdir_parents(fs_conn *c, const char *path)
{
    size_t n = strlen(path);
    char *partial = malloc(n + 1); /* a path of any length (the calls take them) */
    if (!partial)
        return FS_STATUS_ALLOCATION_ERROR;
    fs_status st = FS_STATUS_SUCCESS;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && path[i] != '/')
            continue;
        if (path[i - 1] == '/')
            continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        st = fs_conn_mkdir(c, partial);
        if (st == FS_STATUS_ALREADY_EXISTS) {
            fs_stat rec;
            st = fs_conn_stat(c, partial, &rec);
            if (st == FS_STATUS_SUCCESS && !cli_is_dir_stat(&rec))
                st = FS_STATUS_NOT_DIRECTORY;
        }
        if (st != FS_STATUS_SUCCESS)
            break;
    }
    free(partial);
    return st;
}

int cmd_mkdir(int argc, char **argv)
{
    static const char usage[] = "[-p] IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat mkdir %s\n\nCreate directories.\n\n"
               "  -p   create missing parents; an existing directory is not an error\n",
               usage);
        return EXIT_OK;
    }
    bool parents = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":p")) != -1) {
        if (ch != 'p')
            return cli_bad_option("mkdir", usage, ch, argv);
        parents = true;
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage("mkdir", usage);
    cli_session s;
    cli_location *locs = cli_open_operands("mkdir", n, argv + optind, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < n && !cli_interrupted; i++) {
        fs_status st = parents ? mkdir_parents(&s.conn, locs[i].path) : fs_conn_mkdir(&s.conn, locs[i].path);
        if (st != FS_STATUS_SUCCESS)
            rc = cli_fail_status(locs[i].image, locs[i].path, st);
    }
    free(locs);
    return cli_session_finish(&s, rc);
}

/* ---- rm, rmdir ---- */

/* rm -r: each file as the walk meets it, each directory once its entries are gone. A
 * failure (or a cycle, which is not entered) is reported and the walk goes on, leaving the
 * directories above it in place, as GNU rm does. */
static int remove_tree(cli_session *s, const char *path)
{
    tree_walk w;
    tree_walk_start(&w, &s->conn, s->image, path);
    tree_event ev;
    int rc = EXIT_OK;
    while (!cli_interrupted && tree_walk_next(&w, &ev)) {
        fs_status st = FS_STATUS_SUCCESS;
        if (ev.kind == TREE_FILE) {
            st = fs_conn_remove(&s->conn, ev.path);
        } else if (ev.kind == TREE_LEAVE && !ev.failed_below) {
            st = fs_conn_rmdir(&s->conn, ev.path);
        } else if (ev.kind == TREE_CYCLE || ev.kind == TREE_ERROR) {
            rc = tree_walk_report(&w, &ev);
            tree_walk_failed(&w);
        }
        if (st != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(s->image, ev.path, st);
            tree_walk_failed(&w);
        }
    }
    tree_walk_end(&w);
    return rc;
}

int cmd_rm(int argc, char **argv)
{
    static const char usage[] = "[-r] [-f] IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat rm %s\n\nRemove files.\n\n"
               "  -r   remove directories and their contents recursively\n"
               "  -f   a missing file (or a pattern that matches nothing) is not an error\n",
               usage);
        return EXIT_OK;
    }
    bool recursive = false, force = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":rRf")) != -1) {
        if (ch == 'r' || ch == 'R')
            recursive = true;
        else if (ch == 'f')
            force = true;
        else
            return cli_bad_option("rm", usage, ch, argv);
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage("rm", usage);
    cli_session s;
    cli_location *locs = cli_open_operands("rm", n, argv + optind, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < n && !cli_interrupted; i++) {
        cli_paths paths;
        fs_status st = cli_expand(&s.conn, locs[i].path, &paths);
        if (st != FS_STATUS_SUCCESS) {
            if (!force)
                rc = st == FS_STATUS_NO_FILE && cli_has_wildcards(locs[i].path)
                         ? (cli_error(cli_where(&locs[i]), "no match"), EXIT_FAILED)
                         : cli_fail_status(locs[i].image, locs[i].path, st);
            continue;
        }
        for (size_t k = 0; k < paths.count && !cli_interrupted; k++) {
            const char *path = paths.paths[k];
            fs_stat rec;
            st = fs_conn_stat(&s.conn, path, &rec);
            if (st == FS_STATUS_SUCCESS && cli_is_dir_stat(&rec)) {
                if (cli_path_is_root(path)) {
                    cli_error("rm", "refusing to remove the root directory of %s (%s:/* names what it holds)",
                              locs[i].image, locs[i].image);
                    rc = EXIT_FAILED;
                    continue;
                }
                if (recursive) {
                    if (remove_tree(&s, path) != EXIT_OK)
                        rc = EXIT_FAILED;
                    continue;
                }
                st = FS_STATUS_IS_DIRECTORY;
            } else if (st == FS_STATUS_SUCCESS) {
                st = fs_conn_remove(&s.conn, path);
            }
            if (st == FS_STATUS_NO_FILE && force)
                continue;
            if (st == FS_STATUS_IS_DIRECTORY) {
                cli_error(cli_in_image(s.image, path), "is a directory (rm -r removes it and what it holds)");
                rc = EXIT_FAILED;
            } else if (st != FS_STATUS_SUCCESS) {
                rc = cli_fail_status(locs[i].image, path, st);
            }
        }
        cli_paths_free(&paths);
    }
    free(locs);
    return cli_session_finish(&s, rc);
}

int cmd_rmdir(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat rmdir %s\n\nRemove empty directories.\n", usage);
        return EXIT_OK;
    }
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":")) != -1)
        return cli_bad_option("rmdir", usage, ch, argv);
    int n = argc - optind;
    if (n < 1)
        return cli_usage("rmdir", usage);
    cli_session s;
    cli_location *locs = cli_open_operands("rmdir", n, argv + optind, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    for (size_t i = 0; i < all.count && !cli_interrupted; i++) {
        fs_status st = fs_conn_rmdir(&s.conn, all.paths[i]);
        if (st == FS_STATUS_BUSY && cli_path_is_root(all.paths[i])) {
            cli_error("rmdir", "refusing to remove the root directory of %s", s.image);
            rc = EXIT_FAILED;
        } else if (st != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(s.image, all.paths[i], st);
        }
    }
    cli_paths_free(&all);
    free(locs);
    return cli_session_finish(&s, rc);
}

/* ---- mv ---- */

/* A DEST without IMAGE: is a path in the sources' image, unless it plainly names a local
 * place (./x, ../x, ~/x, or an existing local directory): mv does not move files out of
 * an image. */
static bool names_local_place(const char *arg)
{
    if (strncmp(arg, "./", 2) == 0 || strncmp(arg, "../", 3) == 0 || strcmp(arg, ".") == 0 ||
        strcmp(arg, "..") == 0 || arg[0] == '~')
        return true;
    struct stat st;
    return stat(arg, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Move src to the path target. */
static int move_to(cli_session *s, const char *src, const char *target)
{
    fs_stat rec;
    fs_status st = fs_conn_stat(&s->conn, src, &rec);
    if (st == FS_STATUS_SUCCESS && cli_is_dir_stat(&rec) && cli_path_is_root(src)) {
        cli_error("mv", "cannot move the root directory of %s", s->image);
        return EXIT_FAILED;
    }
    if (st == FS_STATUS_SUCCESS)
        st = fs_conn_rename(&s->conn, src, target);
    if (st == FS_STATUS_INVALID_ARGUMENT && cli_is_dir_stat(&rec)) {
        cli_error("mv", "cannot move a directory, '%s:%s', into itself, '%s:%s'", s->image, src, s->image, target);
        return EXIT_FAILED;
    }
    return st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(s->image, src, st);
}

/* Move one source to dst (into it when it is a directory). */
static int move_one(cli_session *s, const char *src, const char *dst, bool dst_is_dir)
{
    size_t size = strlen(dst) + strlen(src) + 2; /* paths of any length */
    char *target = malloc(size);
    if (!target)
        return cli_fail_status(s->image, dst, FS_STATUS_ALLOCATION_ERROR);
    snprintf(target, size, "%s", dst);
    if (dst_is_dir)
        cli_join(target, size, dst, cli_basename(src));
    int rc = move_to(s, src, target);
    free(target);
    return rc;
}

int cmd_mv(int argc, char **argv)
{
    static const char usage[] = "IMAGE:SOURCE... [IMAGE:]DEST";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat mv %s\n\n"
               "Rename or move files and directories within an image. If DEST is an existing\n"
               "directory, each SOURCE moves into it; an existing file DEST is replaced. DEST\n"
               "without IMAGE: is a path in the same image.\n",
               usage);
        return EXIT_OK;
    }
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":")) != -1)
        return cli_bad_option("mv", usage, ch, argv);
    int n = argc - optind - 1;
    if (n < 1)
        return cli_usage("mv", usage);
    char **sources = argv + optind;
    const char *dest_arg = argv[argc - 1];
    cli_location dst;
    cli_parse_location(dest_arg, &dst);
    if (!dst.in_image) {
        if (dst.missing[0])
            return cli_fail_not_image(dest_arg, &dst);
        if (names_local_place(dest_arg)) {
            cli_error("mv", "'%s' is a local path: mv moves only within an image (cp copies out of it)",
                      dest_arg);
            return EXIT_FAILED;
        }
    }
    cli_session s;
    cli_location *locs = cli_open_operands("mv", n, sources, false, &s);
    if (!locs)
        return EXIT_FAILED;
    if (!dst.in_image) {
        dst.in_image = true;
        snprintf(dst.image, sizeof dst.image, "%s", locs[0].image);
        int len = snprintf(dst.path, sizeof dst.path, "%s%s", dest_arg[0] == '/' ? "" : "/", dest_arg);
        dst.too_long = len < 0 || (size_t)len >= sizeof dst.path;
    }
    if (dst.too_long) {
        cli_error(dest_arg, "path too long (at most %u bytes)", CLI_PATH_MAX - 1);
        free(locs);
        return cli_session_finish(&s, EXIT_FAILED);
    }
    int rc = EXIT_OK;
    if (strcmp(dst.image, locs[0].image) != 0) {
        cli_error("mv", "cannot move between images (cp copies, then rm removes)");
        free(locs);
        return cli_session_finish(&s, EXIT_FAILED);
    }
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    fs_stat rec;
    bool dst_is_dir = fs_conn_stat(&s.conn, dst.path, &rec) == FS_STATUS_SUCCESS && cli_is_dir_stat(&rec);
    if (all.count > 1 && !dst_is_dir) {
        cli_error("mv", "target '%s' is not a directory (several sources move only into one)", cli_where(&dst));
        rc = EXIT_FAILED;
    } else {
        for (size_t i = 0; i < all.count && !cli_interrupted; i++) {
            int r = move_one(&s, all.paths[i], dst.path, dst_is_dir);
            if (r != EXIT_OK)
                rc = r;
        }
    }
    cli_paths_free(&all);
    free(locs);
    return cli_session_finish(&s, rc);
}
