/* asyncfat ls and df: listings and volume figures, as ls and df print them. */
#include "tools/cli.h"
#include "tools/cli_attributes.h"
#include "tools/cli_dir.h"
#include "tools/cli_operands.h"
#include "tools/tree_walk.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Close the session and choose the exit status. */
void cli_human_size(uint64_t n, char *out, size_t size)
{
    /* As ls -h: powers of 1024, rounded up, one decimal below 10. */
    static const char units[] = "KMGTPE";
    if (n < 1024) {
        snprintf(out, size, "%llu", (unsigned long long)n);
        return;
    }
    int u = 0;
    uint64_t scale = 1024;
    while (units[u + 1] && n / scale >= 1024) {
        scale *= 1024;
        u++;
    }
    uint64_t whole = n / scale, rest = n % scale;
    uint64_t tenths = whole * 10 + (rest * 10 + scale - 1) / scale;
    if (tenths < 100) {
        snprintf(out, size, "%llu.%llu%c", (unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10),
                 units[u]);
        return;
    }
    whole += rest > 0;
    if (whole >= 1024 && units[u + 1])
        snprintf(out, size, "1.0%c", units[u + 1]);
    else
        snprintf(out, size, "%llu%c", (unsigned long long)whole, units[u]);
}

void cli_mode_string(const fs_stat *st, char out[11])
{
    static const char bits[] = "rwxrwxrwx";
    out[0] = cli_is_dir_stat(st) ? 'd' : '-';
    for (int i = 0; i < 9; i++)
        out[1 + i] = (st->mode & (0400u >> i)) ? bits[i] : '-';
    out[10] = '\0';
}

void cli_time_string(uint64_t t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M", &tm);
}

/* ---- ls ---- */

static const char ls_usage[] = "[-l] [-R] [-h] [-d] IMAGE[:PATH]...";

typedef struct ls_options {
    bool longfmt, recursive, human, directory;
} ls_options;

static void ls_print(const char *name, const fs_stat *st, uint64_t attributes, const ls_options *o)
{
    if (!o->longfmt) {
        printf("%s\n", name);
        return;
    }
    char mode[11], attrs[5], when[32], size[32];
    cli_mode_string(st, mode);
    cli_attribute_letters(attributes, attrs);
    cli_time_string(st->mtime, when, sizeof when);
    if (o->human)
        cli_human_size(st->size, size, sizeof size);
    else
        snprintf(size, sizeof size, "%llu", (unsigned long long)st->size);
    printf("%s %s %*s %s %s\n", mode, attrs, o->human ? 5 : 10, size, when, name);
}

/* A directory's entries; with -l, their FAT attributes too (many asked for at once). */
static int ls_entries(cli_session *s, const char *dir, const cli_dir *d, const ls_options *o)
{
    uint64_t *attributes = calloc(d->count ? d->count : 1, sizeof *attributes);
    if (!attributes) {
        cli_error(s->image, "out of memory");
        return EXIT_FAILED;
    }
    fs_status st = o->longfmt ? cli_attributes_of_listing(&s->conn, dir, d, attributes) : FS_STATUS_SUCCESS;
    for (size_t i = 0; i < d->count; i++)
        ls_print(d->entries[i].name, &d->entries[i].st, attributes[i], o);
    free(attributes);
    return st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(s->image, dir, st);
}

/* ls -R: each directory under a header, then its subdirectories (tree_walk: a cycle on a
 * damaged volume is reported, not followed). */
static int ls_tree(cli_session *s, const char *path, const ls_options *o, bool first)
{
    tree_walk w;
    tree_walk_start(&w, &s->conn, s->image, path);
    tree_event ev;
    int rc = EXIT_OK;
    while (!cli_interrupted && tree_walk_next(&w, &ev)) {
        if (ev.kind == TREE_DIR) {
            printf("%s%s:\n", ev.depth > 0 || !first ? "\n" : "", ev.path);
            if (ls_entries(s, ev.path, ev.dir, o) != EXIT_OK)
                rc = EXIT_FAILED;
        } else if (ev.kind == TREE_CYCLE || ev.kind == TREE_ERROR) {
            fflush(stdout);
            rc = tree_walk_report(&w, &ev);
        }
    }
    tree_walk_end(&w);
    return rc;
}

typedef struct ls_item {
    char *path;
    fs_stat st;
    uint64_t attributes;
} ls_item;

static int by_path(const void *a, const void *b)
{
    const char *x = ((const ls_item *)a)->path, *y = ((const ls_item *)b)->path;
    int order = strcoll(x, y);
    return order ? order : strcmp(x, y);
}

/* The operands of one image: files first, then each directory (under a heading when there
 * is more than one operand), each group sorted, as ls orders them. last: the command's
 * last image, after which the process exits. */
static int ls_image(const char *image, const cli_location *locs, int n, const ls_options *o, int total_operands,
                    bool name_image, bool last, bool *printed)
{
    cli_session s;
    /* A tree may read much of the cache; a listing reads a few clusters. */
    int opened = o->recursive ? cli_session_open_sized(&s, image, true, 0, CLI_DATA_BYTES)
                              : cli_session_open_small(&s, image);
    if (opened != 0)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    cli_paths all;
    cli_expand_all(&s.conn, locs, n, &all, &rc);
    ls_item *items = calloc(all.count ? all.count : 1, sizeof *items);
    size_t count = 0;
    for (size_t i = 0; items && i < all.count; i++) {
        fs_status st = fs_conn_stat(&s.conn, all.paths[i], &items[count].st);
        if (st == FS_STATUS_SUCCESS && o->longfmt)
            st = fs_conn_get_attributes(&s.conn, all.paths[i], &items[count].attributes);
        if (st != FS_STATUS_SUCCESS) {
            rc = cli_fail_status(image, all.paths[i], st);
            continue;
        }
        items[count++].path = all.paths[i];
    }
    qsort(items, count, sizeof *items, by_path);
    bool headings = total_operands > 1 || all.count > 1 || o->recursive;
    for (size_t i = 0; i < count; i++) {
        if (cli_is_dir_stat(&items[i].st) && !o->directory)
            continue;
        ls_print(items[i].path, &items[i].st, items[i].attributes, o);
        *printed = true;
    }
    for (size_t i = 0; i < count && !cli_interrupted; i++) {
        if (!cli_is_dir_stat(&items[i].st) || o->directory)
            continue;
        int r;
        if (o->recursive) {
            r = ls_tree(&s, items[i].path, o, !*printed);
        } else {
            cli_dir d;
            fs_status st = cli_dir_read(&s.conn, items[i].path, &d);
            if (st != FS_STATUS_SUCCESS) {
                r = cli_fail_status(image, items[i].path, st);
            } else {
                if (headings)
                    printf("%s%s%s%s:\n", *printed ? "\n" : "", name_image ? image : "", name_image ? ":" : "",
                           items[i].path);
                r = ls_entries(&s, items[i].path, &d, o);
                cli_dir_free(&d);
            }
        }
        *printed = true;
        if (r != EXIT_OK)
            rc = r;
    }
    free(items);
    cli_paths_free(&all);
    return last ? cli_session_finish_last(&s, rc) : cli_session_finish(&s, rc);
}

int cmd_ls(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat ls %s\n\n"
               "List the directory PATH (default /) of IMAGE, or name a file. With several\n"
               "operands, the files come first, then each directory under a heading, as ls\n"
               "orders them; names are sorted as ls sorts them (the locale's collation).\n\n"
               "  -l   long format: type and mode, FAT attributes (A archive, S system, H hidden,\n"
               "       R read-only), size, modification time, name\n"
               "  -R   list subdirectories recursively\n"
               "  -h   with -l, sizes in K, M, G (powers of 1024, as ls -h)\n"
               "  -d   list directories themselves, not their contents\n",
               ls_usage);
        return EXIT_OK;
    }
    ls_options o = {0};
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":lRhd")) != -1) {
        switch (ch) {
        case 'l': o.longfmt = true; break;
        case 'R': o.recursive = true; break;
        case 'h': o.human = true; break;
        case 'd': o.directory = true; break;
        default: return cli_bad_option("ls", ls_usage, ch, argv);
        }
    }
    int n = argc - optind;
    if (n < 1 && !cli_global.image)
        return cli_usage("ls", ls_usage);
    char *root_operand[] = {"::/"};
    char **operands = n < 1 ? root_operand : argv + optind;
    if (n < 1)
        n = 1;
    /* not calloc: cli_parse_location sets each one's fields, and clearing 40 KiB of
     * buffers per operand would fault in every page of them */
    cli_location *locs = malloc((size_t)n * sizeof *locs);
    if (!locs)
        return EXIT_FAILED;
    int rc = EXIT_OK;
    for (int i = 0; i < n; i++) {
        if (!cli_parse_image_arg(operands[i], &locs[i])) {
            cli_fail_not_image(operands[i], &locs[i]);
            free(locs);
            return EXIT_FAILED;
        }
    }
    /* One session per image, in the order the images first appear. */
    bool name_image = false;
    for (int i = 1; i < n; i++)
        name_image |= strcmp(locs[i].image, locs[0].image) != 0;
    bool printed = false;
    if (!name_image) {
        /* one image: its operands as they are, not copied into a group (40 KiB each) */
        rc = ls_image(locs[0].image, locs, n, &o, n, false, true, &printed);
        free(locs);
        return cli_interrupted ? EXIT_INTERRUPTED : rc;
    }
    bool *done = calloc((size_t)n, sizeof *done);
    cli_location *group = calloc((size_t)n, sizeof *group);
    for (int i = 0; done && group && i < n && !cli_interrupted; i++) {
        if (done[i])
            continue;
        int k = 0;
        for (int j = i; j < n; j++) {
            if (!done[j] && strcmp(locs[j].image, locs[i].image) == 0) {
                group[k++] = locs[j];
                done[j] = true;
            }
        }
        bool last = true;
        for (int j = i + 1; j < n && last; j++)
            last = done[j];
        int r = ls_image(locs[i].image, group, k, &o, n, name_image, last, &printed);
        if (r != EXIT_OK)
            rc = r;
    }
    free(group);
    free(done);
    free(locs);
    return cli_interrupted ? EXIT_INTERRUPTED : rc;
}

/* ---- df ---- */

static const char df_usage[] = "[-h] IMAGE...";

int cmd_df(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat df %s\n\n"
               "Show each volume's FAT type, cluster size, size, used and free space (in 1 KiB\n"
               "blocks, as df).\n\n"
               "  -h   sizes in K, M, G (powers of 1024, as df -h)\n",
               df_usage);
        return EXIT_OK;
    }
    bool human = false;
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":h")) != -1) {
        if (ch != 'h')
            return cli_bad_option("df", df_usage, ch, argv);
        human = true;
    }
    int n = argc - optind;
    char *mtools_image[] = {(char *)cli_global.image};
    char **images = argv + optind;
    if (n < 1 && cli_global.image) {
        images = mtools_image;
        n = 1;
    }
    if (n < 1)
        return cli_usage("df", df_usage);
    if (human)
        printf("%-24s %-5s %8s %6s %6s %6s %4s\n", "Image", "Type", "Cluster", "Size", "Used", "Avail", "Use%");
    else
        printf("%-24s %-5s %8s %10s %10s %10s %4s\n", "Image", "Type", "Cluster", "1K-blocks", "Used", "Available",
               "Use%");
    int rc = EXIT_OK;
    for (int i = 0; i < n && !cli_interrupted; i++) {
        cli_session s;
        if (cli_session_open_sized(&s, images[i], true, 0, CLI_DATA_BYTES) != 0) {
            rc = EXIT_FAILED;
            continue;
        }
        fs_statfs sf;
        fs_status status = fs_conn_statfs(&s.conn, &sf);
        int r = EXIT_OK;
        if (status != FS_STATUS_SUCCESS) {
            r = cli_fail_status(images[i], "/", status);
        } else {
            uint64_t total = sf.blocks * sf.block_size, avail = sf.blocks_available * sf.block_size;
            uint64_t used = (sf.blocks - sf.blocks_free) * sf.block_size;
            unsigned long long percent = total ? (used * 100 + total - 1) / total : 0;
            if (human) {
                char t[16], u[16], a[16];
                cli_human_size(total, t, sizeof t);
                cli_human_size(used, u, sizeof u);
                cli_human_size(avail, a, sizeof a);
                printf("%-24s FAT%-2llu %8llu %6s %6s %6s %3llu%%\n", images[i], (unsigned long long)sf.fat_type,
                       (unsigned long long)sf.block_size, t, u, a, percent);
            } else {
                printf("%-24s FAT%-2llu %8llu %10llu %10llu %10llu %3llu%%\n", images[i],
                       (unsigned long long)sf.fat_type, (unsigned long long)sf.block_size,
                       (unsigned long long)(total / 1024), (unsigned long long)(used / 1024),
                       (unsigned long long)(avail / 1024), percent);
            }
        }
        r = cli_session_finish(&s, r);
        if (r != EXIT_OK)
            rc = r;
    }
    return cli_interrupted ? EXIT_INTERRUPTED : rc;
}
