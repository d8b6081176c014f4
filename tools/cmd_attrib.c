/* asyncfat attrib: show or change FAT attributes, as mtools' mattrib does: +r -r (read-only),
 * +h -h (hidden), +s -s (system), +a -a (archive), -R (or mattrib's -/) for a directory's
 * whole tree. Without a change it prints each file's attributes in mattrib's layout. */
#include "tools/cli.h"
#include "tools/cli_operands.h"
#include "tools/tree_walk.h"

#include <stdlib.h>
#include <string.h>

static const char attrib_usage[] = "[+r|-r] [+h|-h] [+s|-s] [+a|-a] [-R] IMAGE:PATH...";

static void attrib_help(void)
{
    printf("usage: asyncfat attrib %s\n\n"
           "Show or change the FAT attributes of files and directories, as mtools' mattrib:\n"
           "+X sets and -X clears attribute X. Without a change, each file's attributes are\n"
           "printed (A archive, S system, H hidden, R read-only) before its name. A\n"
           "read-only file cannot be opened for writing; hidden and system files are left\n"
           "out of listings by Windows.\n\n"
           "  +r, -r   read-only\n"
           "  +h, -h   hidden\n"
           "  +s, -s   system\n"
           "  +a, -a   archive (set by every write)\n"
           "  -R, -/   also every file and directory below each directory named\n",
           attrib_usage);
}

static uint64_t attribute_bit(char c)
{
    switch (c) {
    case 'r': case 'R': return FS_ATTRIBUTE_READ_ONLY;
    case 'h': case 'H': return FS_ATTRIBUTE_HIDDEN;
    case 's': case 'S': return FS_ATTRIBUTE_SYSTEM;
    case 'a': case 'A': return FS_ATTRIBUTE_ARCHIVE;
    default: return 0;
    }
}

typedef struct attrib_request {
    uint64_t set, clear;
    bool recursive;
    cli_session *s;
} attrib_request;

static bool changes(const attrib_request *r) { return r->set || r->clear; }

/* mattrib's layout: archive, then system, hidden, read-only, then the name. */
static void print_attributes(const char *image, const char *path, uint64_t a)
{
    printf("  %c  %c%c%c     %s:%s\n", a & FS_ATTRIBUTE_ARCHIVE ? 'A' : ' ', a & FS_ATTRIBUTE_SYSTEM ? 'S' : ' ',
           a & FS_ATTRIBUTE_HIDDEN ? 'H' : ' ', a & FS_ATTRIBUTE_READ_ONLY ? 'R' : ' ', image, path);
}

/* One file or directory: change it, or show it. The root has nothing to change. */
static int attrib_one(attrib_request *r, const char *path, bool named)
{
    uint64_t a;
    fs_status st;
    if (!changes(r)) {
        st = fs_conn_get_attributes(&r->s->conn, path, &a);
        if (st == FS_STATUS_SUCCESS)
            print_attributes(r->s->image, path, a);
    } else if (cli_path_is_root(path)) {
        if (!named)
            return EXIT_OK;
        cli_error(cli_in_image(r->s->image, path), "the root directory has no attributes to change");
        return EXIT_FAILED;
    } else {
        st = fs_conn_set_attributes(&r->s->conn, path, r->set, r->clear, &a);
    }
    return st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(r->s->image, path, st);
}

static int attrib_tree(attrib_request *r, const char *path)
{
    tree_walk w;
    tree_walk_start(&w, &r->s->conn, r->s->image, path);
    tree_event ev;
    int rc = EXIT_OK;
    while (!cli_interrupted && tree_walk_next(&w, &ev)) {
        int step = EXIT_OK;
        if (ev.kind == TREE_DIR || ev.kind == TREE_FILE)
            step = attrib_one(r, ev.path, ev.depth == 0 && ev.kind == TREE_DIR);
        else if (ev.kind == TREE_CYCLE || ev.kind == TREE_ERROR)
            step = tree_walk_report(&w, &ev);
        if (step != EXIT_OK)
            rc = step;
    }
    tree_walk_end(&w);
    return rc;
}

int cmd_attrib(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        attrib_help();
        return EXIT_OK;
    }
    attrib_request r = {0};
    int first = 1;
    for (; first < argc; first++) {
        const char *a = argv[first];
        if (strcmp(a, "--") == 0) {
            first++;
            break;
        }
        if (strcmp(a, "-R") == 0 || strcmp(a, "-/") == 0) {
            r.recursive = true;
            continue;
        }
        if ((a[0] != '+' && a[0] != '-') || a[1] == '\0')
            break;
        for (const char *c = a + 1; *c; c++) {
            uint64_t bit = attribute_bit(*c);
            if (!bit) {
                cli_error("attrib", "unknown option '%s' (+ or - and r, h, s or a)", a);
                return cli_usage("attrib", attrib_usage);
            }
            if (a[0] == '+') {
                r.set |= bit;
                r.clear &= ~bit;
            } else {
                r.clear |= bit;
                r.set &= ~bit;
            }
        }
    }
    int n = argc - first;
    if (n < 1)
        return cli_usage("attrib", attrib_usage);
    cli_session s;
    cli_location *locs = cli_open_operands("attrib", n, argv + first, !changes(&r), &s);
    if (!locs)
        return EXIT_FAILED;
    r.s = &s;
    int rc = EXIT_OK;
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    for (size_t i = 0; i < all.count && !cli_interrupted; i++) {
        fs_stat st;
        fs_status status = fs_conn_stat(&s.conn, all.paths[i], &st);
        int step;
        if (status != FS_STATUS_SUCCESS)
            step = cli_fail_status(s.image, all.paths[i], status);
        else if (r.recursive && cli_is_dir_stat(&st))
            step = attrib_tree(&r, all.paths[i]);
        else
            step = attrib_one(&r, all.paths[i], true);
        if (step != EXIT_OK)
            rc = step;
    }
    cli_paths_free(&all);
    free(locs);
    return cli_session_finish(&s, rc);
}
