/* Reading a whole image directory into memory (names and stat records, sorted by name),
 * so that a recursive walk holds no directory open while it works on the entries. */
#ifndef ASYNCFAT_TOOLS_CLI_DIR_H
#define ASYNCFAT_TOOLS_CLI_DIR_H

#include "tools/fs_client.h"

typedef struct cli_dir_entry {
    char *name;
    fs_stat st;
} cli_dir_entry;

typedef struct cli_dir {
    cli_dir_entry *entries;
    size_t count;
} cli_dir;

fs_status cli_dir_read(fs_conn *c, const char *path, cli_dir *out);
void cli_dir_free(cli_dir *d);

#endif
