/* Reading a whole directory into memory (names and stat records, sorted by name), in an
 * image through fs_client or in the local file system, so that a walk holds no directory
 * open while it works on the entries (tree_walk.h). */
#ifndef ASYNCFAT_TOOLS_CLI_DIR_H
#define ASYNCFAT_TOOLS_CLI_DIR_H

#include "tools/fs_client.h"

#include <sys/stat.h>

typedef struct cli_dir_entry {
    char *name;
    fs_stat st;                /* a local entry's: its target's (links followed), POSIX mode */
    int err;                   /* a local entry that could not be stat'ed: errno, st zero */
} cli_dir_entry;

typedef struct cli_dir {
    cli_dir_entry *entries;
    size_t count;
} cli_dir;

fs_status cli_dir_read(fs_conn *c, const char *path, cli_dir *out);
/* A local directory, without "." and "..". Returns 0, or errno. */
int cli_dir_read_local(const char *path, cli_dir *out);
void cli_dir_free(cli_dir *d);

/* A local stat as the protocol's record (type and permission bits, size, times, dev, ino). */
void cli_stat_from_local(const struct stat *in, fs_stat *out);

#endif
