/* asyncfat: the command-line tool. `asyncfat SUBCOMMAND [options] ...`; each subcommand
 * is in cmd_*.c (mount in tools/mount/). */
#include "tools/cli.h"

#include <string.h>

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"mkfs", cmd_mkfs, "create a FAT12/16/32 volume on an image"},
    {"ls", cmd_ls, "list a directory"},
    {"cat", cmd_cat, "write a file to standard output"},
    {"stat", cmd_stat, "show a file's attributes"},
    {"df", cmd_df, "show the volume's size and free space"},
    {"cp", cmd_cp, "copy files into, out of, or within an image"},
    {"mkdir", cmd_mkdir, "create directories"},
    {"rm", cmd_rm, "remove files (and with -r, directories)"},
    {"rmdir", cmd_rmdir, "remove empty directories"},
    {"mv", cmd_mv, "rename or move a file or directory"},
    {"check", cmd_check, "check (and repair) a volume's consistency"},
    {"mount", cmd_mount, "mount an image with FUSE"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: asyncfat SUBCOMMAND [options] ...\n\n"
                 "Files inside an image are named IMAGE:PATH (e.g. disk.img:/docs/a.txt).\n\n");
    for (size_t i = 0; i < AF_ARRAY_LEN(subcommands); i++)
        fprintf(out, "  %-6s  %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n`asyncfat SUBCOMMAND --help` describes each one.\n"
                 "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return EXIT_OK;
    }
    /* Ctrl-C must not kill a client mid-way: the subcommands stop between requests and
     * unmount (the offline ones finish what they started). */
    cli_catch_signals();
    for (size_t i = 0; i < AF_ARRAY_LEN(subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "asyncfat: unknown subcommand '%s'\n", argv[1]);
    print_help(stderr);
    return EXIT_USAGE;
}
