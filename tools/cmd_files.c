/* The subcommands that look at or change names in one image through the server:
 * ls, cat, stat, df, mkdir, rm, rmdir, mv. */
#include "tools/cli.h"
#include "tools/cli_dir.h"
#include "tools/tree_walk.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Close the session and choose the exit status. */
static int finish(cli_session *s, int rc)
{
    if (cli_session_close(s) != 0 && rc == EXIT_OK)
        rc = EXIT_FAILED;
    return cli_interrupted ? EXIT_INTERRUPTED : rc;
}

/* Parse every operand as IMAGE:PATH in one image and open a session on it. Returns the
 * parsed operands (the caller frees them), or NULL after saying why. */
static cli_location *open_operands(const char *cmd, int n, char **operands, bool read_only, cli_session *s)
{
    cli_location *locs = calloc((size_t)n, sizeof *locs);
    if (!locs)
        return NULL;
    for (int i = 0; i < n; i++) {
        cli_parse_location(operands[i], &locs[i]);
        if (!locs[i].in_image) {
            cli_error(operands[i], "not IMAGE:PATH (no such image file before the ':')");
            free(locs);
            return NULL;
        }
        if (strcmp(locs[i].image, locs[0].image) != 0) {
            cli_error(cmd, "all operands must be in the same image");
            free(locs);
            return NULL;
        }
    }
    if (cli_session_open_sized(s, locs[0].image, read_only, 0, CLI_DATA_BYTES) != 0) {
        free(locs);
        return NULL;
    }
    return locs;
}

static void mode_string(const fs_stat *st, char out[11])
{
    static const char bits[] = "rwxrwxrwx";
    out[0] = cli_is_dir_stat(st) ? 'd' : '-';
    for (int i = 0; i < 9; i++)
        out[1 + i] = (st->mode & (0400u >> i)) ? bits[i] : '-';
    out[10] = '\0';
}

static void time_string(uint64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M", &tm);
}

/* ---- ls ---- */

static const char ls_usage[] = "[-l] [-R] IMAGE[:PATH]";

static void ls_print(const char *name, const fs_stat *st, bool longfmt)
{
    if (!longfmt) {
        printf("%s\n", name);
        return;
    }
    char mode[11], when[32];
    mode_string(st, mode);
    time_string(st->mtime, when, sizeof when);
    printf("%s %10llu %s %s\n", mode, (unsigned long long)st->size, when, name);
}

static int ls_dir(cli_session *s, const char *path, bool longfmt)
{
    cli_dir d;
    fs_status st = cli_dir_read(&s->conn, path, &d);
    if (st != FS_STATUS_SUCCESS)
        return cli_fail_status(s->image, path, st);
    for (size_t i = 0; i < d.count; i++)
        ls_print(d.entries[i].name, &d.entries[i].st, longfmt);
    cli_dir_free(&d);
    return EXIT_OK;
}

/* ls -R: each directory under a header, then its subdirectories (tree_walk: a cycle on a
 * damaged volume is reported, not followed). */
static int ls_tree(cli_session *s, const char *path, bool longfmt)
{
    tree_walk w;
    tree_walk_start(&w, &s->conn, s->image, path);
    tree_event ev;
    int rc = EXIT_OK;
    while (!cli_interrupted && tree_walk_next(&w, &ev)) {
        if (ev.kind == TREE_DIR) {
            printf("%s%s:\n", ev.depth > 0 ? "\n" : "", ev.path);
            for (size_t i = 0; i < ev.dir->count; i++)
                ls_print(ev.dir->entries[i].name, &ev.dir->entries[i].st, longfmt);
        } else if (ev.kind == TREE_CYCLE || ev.kind == TREE_ERROR) {
            fflush(stdout);
            rc = tree_walk_report(&w, &ev);
        }
    }
    tree_walk_end(&w);
    return rc;
}

int cmd_ls(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat ls %s\n\n"
               "List the directory PATH (default /) of IMAGE, sorted by name, or name a file.\n\n"
               "  -l   long format: type and mode, size, modification time, name\n"
               "  -R   list subdirectories recursively\n",
               ls_usage);
        return EXIT_OK;
    }
    bool longfmt = false, recursive = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "lR")) != -1) {
        if (ch == 'l')
            longfmt = true;
        else if (ch == 'R')
            recursive = true;
        else
            return cli_usage("ls", ls_usage);
    }
    if (optind != argc - 1)
        return cli_usage("ls", ls_usage);
    cli_location loc;
    if (!cli_parse_image_arg(argv[optind], &loc)) {
        cli_error(argv[optind], "no such image");
        return EXIT_FAILED;
    }
    cli_session s;
    if (cli_session_open_sized(&s, loc.image, true, 0, CLI_DATA_BYTES) != 0)
        return EXIT_FAILED;
    fs_stat st;
    fs_status status = fs_conn_stat(&s.conn, loc.path, &st);
    int rc;
    if (status != FS_STATUS_SUCCESS)
        rc = cli_fail_status(loc.image, loc.path, status);
    else if (!cli_is_dir_stat(&st)) {
        ls_print(loc.path, &st, longfmt);
        rc = EXIT_OK;
    } else
        rc = recursive ? ls_tree(&s, loc.path, longfmt) : ls_dir(&s, loc.path, longfmt);
    return finish(&s, rc);
}

/* ---- cat ---- */

int cmd_cat(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat cat %s\n\nWrite the files' contents to standard output.\n", usage);
        return EXIT_OK;
    }
    if (argc < 2)
        return cli_usage("cat", usage);
    cli_session s;
    cli_location *locs = open_operands("cat", argc - 1, argv + 1, true, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    size_t cap = FS_CONN_IO_CHUNK;
    char *buf = malloc(cap);
    for (int i = 0; i < argc - 1 && buf && !cli_interrupted; i++) {
        uint64_t fd;
        fs_status st = fs_conn_open_file(&s.conn, locs[i].path, FS_OPEN_FLAGS_READ_ONLY, &fd);
        if (st != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(locs[i].image, locs[i].path, st);
            continue;
        }
        uint64_t offset = 0;
        for (;;) {
            size_t got;
            st = fs_conn_read(&s.conn, fd, offset, buf, cap, &got);
            if (st != FS_STATUS_SUCCESS) {
                rc = cli_fail_status(locs[i].image, locs[i].path, st);
                break;
            }
            if (got && fwrite(buf, 1, got, stdout) != got) {
                cli_error("standard output", "%s", strerror(errno));
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
    free(locs);
    return finish(&s, rc);
}

/* ---- stat ---- */

int cmd_stat(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat stat %s\n\nShow each file's size, type, mode and times.\n", usage);
        return EXIT_OK;
    }
    if (argc < 2)
        return cli_usage("stat", usage);
    cli_session s;
    cli_location *locs = open_operands("stat", argc - 1, argv + 1, true, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < argc - 1; i++) {
        fs_stat st;
        fs_status status = fs_conn_stat(&s.conn, locs[i].path, &st);
        if (status != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(locs[i].image, locs[i].path, status);
            continue;
        }
        char mode[11], at[32], mt[32], ct[32];
        mode_string(&st, mode);
        time_string(st.atime, at, sizeof at);
        time_string(st.mtime, mt, sizeof mt);
        time_string(st.ctime, ct, sizeof ct);
        printf("  File: %s\n  Size: %llu\tBlocks: %llu\tIO Block: %llu\t%s\n"
               " Inode: %llu\tLinks: %llu\tMode: %04llo (%s)\n"
               "Access: %s\nModify: %s\nChange: %s\n",
               locs[i].path, (unsigned long long)st.size, (unsigned long long)st.blocks,
               (unsigned long long)st.blksize, cli_is_dir_stat(&st) ? "directory" : "regular file",
               (unsigned long long)st.ino, (unsigned long long)st.nlink, (unsigned long long)(st.mode & 07777), mode,
               at, mt, ct);
    }
    free(locs);
    return finish(&s, rc);
}

/* ---- df ---- */

int cmd_df(int argc, char **argv)
{
    static const char usage[] = "IMAGE";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat df %s\n\nShow the volume's FAT type, cluster size, size, used and free space\n"
               "(in 1 KiB blocks, like df).\n",
               usage);
        return EXIT_OK;
    }
    if (argc != 2)
        return cli_usage("df", usage);
    cli_session s;
    if (cli_session_open_sized(&s, argv[1], true, 0, CLI_DATA_BYTES) != 0)
        return EXIT_FAILED;
    fs_statfs sf;
    fs_status status = fs_conn_statfs(&s.conn, &sf);
    int rc = EXIT_OK;
    if (status != FS_STATUS_SUCCESS) {
        rc = cli_fail_status(argv[1], "/", status);
    } else {
        uint64_t total = sf.blocks * sf.block_size / 1024, avail = sf.blocks_available * sf.block_size / 1024;
        uint64_t used = (sf.blocks - sf.blocks_free) * sf.block_size / 1024;
        printf("%-24s %-5s %8s %10s %10s %10s %4s\n", "Image", "Type", "Cluster", "1K-blocks", "Used", "Available",
               "Use%");
        printf("%-24s FAT%-2llu %8llu %10llu %10llu %10llu %3llu%%\n", argv[1], (unsigned long long)sf.fat_type,
               (unsigned long long)sf.block_size, (unsigned long long)total, (unsigned long long)used,
               (unsigned long long)avail, (unsigned long long)(total ? (used * 100 + total - 1) / total : 0));
    }
    return finish(&s, rc);
}

/* ---- mkdir ---- */

static fs_status mkdir_parents(fs_conn *c, const char *path)
{
    char partial[4096];
    size_t n = strlen(path);
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
            return st;
    }
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
    while ((ch = getopt(argc, argv, "p")) != -1) {
        if (ch != 'p')
            return cli_usage("mkdir", usage);
        parents = true;
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage("mkdir", usage);
    cli_session s;
    cli_location *locs = open_operands("mkdir", n, argv + optind, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < n && !cli_interrupted; i++) {
        fs_status st = parents ? mkdir_parents(&s.conn, locs[i].path) : fs_conn_mkdir(&s.conn, locs[i].path);
        if (st != FS_STATUS_SUCCESS)
            rc = cli_fail_status(locs[i].image, locs[i].path, st);
    }
    free(locs);
    return finish(&s, rc);
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
               "  -f   a missing file is not an error\n",
               usage);
        return EXIT_OK;
    }
    bool recursive = false, force = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, "rRf")) != -1) {
        if (ch == 'r' || ch == 'R')
            recursive = true;
        else if (ch == 'f')
            force = true;
        else
            return cli_usage("rm", usage);
    }
    int n = argc - optind;
    if (n < 1)
        return cli_usage("rm", usage);
    cli_session s;
    cli_location *locs = open_operands("rm", n, argv + optind, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < n && !cli_interrupted; i++) {
        const char *path = locs[i].path;
        fs_stat rec;
        fs_status st = fs_conn_stat(&s.conn, path, &rec);
        if (st == FS_STATUS_SUCCESS && cli_is_dir_stat(&rec)) {
            if (strcmp(path, "/") == 0) {
                st = FS_STATUS_BUSY;
            } else if (recursive) {
                if (remove_tree(&s, path) != EXIT_OK)
                    rc = EXIT_FAILED;
                continue;
            } else {
                st = FS_STATUS_IS_DIRECTORY;
            }
        } else if (st == FS_STATUS_SUCCESS) {
            st = fs_conn_remove(&s.conn, path);
        }
        if (st == FS_STATUS_NO_FILE && force)
            continue;
        if (st != FS_STATUS_SUCCESS)
            rc = cli_fail_status(locs[i].image, path, st);
    }
    free(locs);
    return finish(&s, rc);
}

int cmd_rmdir(int argc, char **argv)
{
    static const char usage[] = "IMAGE:PATH...";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat rmdir %s\n\nRemove empty directories.\n", usage);
        return EXIT_OK;
    }
    if (argc < 2)
        return cli_usage("rmdir", usage);
    cli_session s;
    cli_location *locs = open_operands("rmdir", argc - 1, argv + 1, false, &s);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < argc - 1 && !cli_interrupted; i++) {
        fs_status st = fs_conn_rmdir(&s.conn, locs[i].path);
        if (st != FS_STATUS_SUCCESS)
            rc = cli_fail_status(locs[i].image, locs[i].path, st);
    }
    free(locs);
    return finish(&s, rc);
}

/* ---- mv ---- */

int cmd_mv(int argc, char **argv)
{
    static const char usage[] = "IMAGE:SOURCE [IMAGE:]DEST";
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat mv %s\n\n"
               "Rename or move a file or directory within an image. If DEST is an existing\n"
               "directory, SOURCE moves into it; an existing file DEST is replaced.\n",
               usage);
        return EXIT_OK;
    }
    if (argc != 3)
        return cli_usage("mv", usage);
    cli_location src, dst;
    cli_parse_location(argv[1], &src);
    if (!src.in_image) {
        cli_error(argv[1], "not IMAGE:PATH (no such image file before the ':')");
        return EXIT_FAILED;
    }
    cli_parse_location(argv[2], &dst);
    if (!dst.in_image) {
        dst.in_image = true;
        snprintf(dst.image, sizeof dst.image, "%s", src.image);
        snprintf(dst.path, sizeof dst.path, "%s%s", argv[2][0] == '/' ? "" : "/", argv[2]);
    } else if (strcmp(dst.image, src.image) != 0) {
        cli_error("mv", "cannot move between images (use cp and rm)");
        return EXIT_FAILED;
    }
    cli_session s;
    if (cli_session_open_sized(&s, src.image, false, 0, CLI_DATA_BYTES) != 0)
        return EXIT_FAILED;
    char target[4096];
    snprintf(target, sizeof target, "%s", dst.path);
    fs_stat rec;
    if (fs_conn_stat(&s.conn, dst.path, &rec) == FS_STATUS_SUCCESS && cli_is_dir_stat(&rec))
        cli_join(target, sizeof target, dst.path, cli_basename(src.path));
    fs_status st = fs_conn_rename(&s.conn, src.path, target);
    int rc = st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(src.image, src.path, st);
    return finish(&s, rc);
}
