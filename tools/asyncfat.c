/* asyncfat: the command-line tool. `asyncfat SUBCOMMAND [options] ...`; each subcommand
 * is in cmd_*.c (mount in tools/mount/). */
#include "tools/cli.h"

#include <getopt.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"mkfs", cmd_mkfs, "create a FAT12/16/32 volume on an image or a partition"},
    {"check", cmd_check, "check (and repair) a volume's consistency"},
    {"info", cmd_info, "show a volume's boot sector, geometry and FSInfo"},
    {"label", cmd_label, "show or change a volume's label"},
    {"ls", cmd_ls, "list directories and files"},
    {"cat", cmd_cat, "write files to standard output"},
    {"stat", cmd_stat, "show files' sizes, modes and times"},
    {"df", cmd_df, "show volumes' size and free space"},
    {"cp", cmd_cp, "copy files into, out of, or within an image"},
    {"mkdir", cmd_mkdir, "create directories"},
    {"rm", cmd_rm, "remove files (and with -r, directories)"},
    {"rmdir", cmd_rmdir, "remove empty directories"},
    {"mv", cmd_mv, "rename or move files and directories within an image"},
    {"attrib", cmd_attrib, "show or change FAT attributes (read-only, hidden, system, archive)"},
    {"mount", cmd_mount, "mount an image with FUSE"},
};

static void print_help(FILE *out)
{
    fprintf(out, "usage: asyncfat SUBCOMMAND [options] ...\n\n"
                 "Files inside an image are named IMAGE:PATH (e.g. disk.img:/docs/a.txt), or as\n"
                 "mtools names them, ::PATH with -i IMAGE. IMAGE is a disk image or a block\n"
                 "device; IMAGE@N is its partition N (MBR or GPT), IMAGE@@OFFSET the volume at\n"
                 "that byte offset. Image paths may hold the wildcards * ? [...].\n\n"
                 "Subcommands:\n");
    for (size_t i = 0; i < AF_ARRAY_LEN(subcommands); i++)
        fprintf(out, "  %-7s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\nOptions of every subcommand:\n"
                 "  -i, --image IMAGE   ::PATH names a file in IMAGE (as mtools' -i)\n"
                 "  --partition N       the volume in partition N of the image's MBR or GPT\n"
                 "  --offset BYTES      the volume at this byte offset (a K, M or G suffix, or s\n"
                 "                      for 512-byte sectors)\n"
                 "  --tz ZONE           the time zone of the volume's times: local (the default,\n"
                 "                      as Windows, cameras and mtools write them), UTC, or an\n"
                 "                      offset east of UTC such as +05:30\n"
                 "  --time-offset MIN   the same in minutes east of UTC (vfat's time_offset)\n"
                 "  --discard           tell the device which blocks freed clusters held (holes\n"
                 "                      punched in an image file, BLKDISCARD on a block device)\n"
                 "  --help              describe the subcommand\n"
                 "  --version           print the version\n\n"
                 "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted (check: as fsck).\n");
}

/* The locale the environment names for collation (as setlocale would pick it) is C or
 * POSIX, or C.UTF-8, whose order is the code points' (glibc 2.35 on), which for UTF-8 is the
 * bytes': there strcoll is strcmp, and loading the locale (its files, the alias list, the
 * converter cache) would cost a short command a tenth of its start. */
static bool collation_is_bytewise(void)
{
    const char *names[] = {"LC_ALL", "LC_COLLATE", "LANG"};
    const char *locale = "C";
    for (size_t i = 0; i < AF_ARRAY_LEN(names); i++) {
        const char *v = getenv(names[i]);
        if (v && v[0]) {
            locale = v;
            break;
        }
    }
    return strcmp(locale, "C") == 0 || strcmp(locale, "POSIX") == 0 || strcmp(locale, "C.UTF-8") == 0 ||
           strcmp(locale, "C.utf8") == 0;
}

int main(int argc, char **argv)
{
    if (!collation_is_bytewise())
        setlocale(LC_COLLATE, "");
    opterr = 0; /* option errors are reported in the command's own style (cli_bad_option) */
    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_help(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("asyncfat %s\n", ASYNCFAT_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < AF_ARRAY_LEN(subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) != 0)
            continue;
        int sub_argc = argc - 1;
        char **sub_argv = argv + 1;
        if (!cli_wants_help(sub_argc, sub_argv)) {
            int rc = cli_take_global_options(&sub_argc, sub_argv);
            if (rc >= 0)
                return rc;
        }
        /* Ctrl-C must not kill a client mid-way: the subcommands stop between requests and
         * unmount (the offline ones finish what they started). */
        cli_catch_signals();
        return subcommands[i].run(sub_argc, sub_argv);
    }
    cli_error(argv[1], "unknown subcommand (asyncfat --help lists them)");
    return EXIT_USAGE;
}
