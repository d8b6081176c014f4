/* Operands of the subcommands that work in one image (ls, cat, stat, rm, rmdir, mkdir, mv,
 * attrib): parsed, checked to name files of one image, the session opened; and the
 * wildcards in image paths expanded as mtools expands them, by the command itself.
 *
 * Wildcards: * (any run of characters) and ? (one character) in any component of an image
 * path. FAT names cannot hold either, so a path with one is always a pattern. Names match
 * whatever their case (FAT ignores case); a name that starts with '.' only matches a
 * pattern component that does too, as in a shell. Matches come sorted as ls sorts.
 */
#ifndef ASYNCFAT_TOOLS_CLI_OPERANDS_H
#define ASYNCFAT_TOOLS_CLI_OPERANDS_H

#include "tools/cli.h"

/* Parse n operands as files in one image and open a session on it. Returns the parsed
 * operands (the caller frees them), or NULL after saying why. */
cli_location *cli_open_operands(const char *cmd, int n, char **operands, bool read_only, cli_session *s);

bool cli_has_wildcards(const char *path);
/* Does `name` match the pattern component `pattern` (see above)? */
bool cli_name_matches(const char *pattern, const char *name);

/* The image paths an operand stands for: itself, or what its wildcards match. */
typedef struct cli_paths {
    char **paths;
    size_t count;
} cli_paths;
/* FS_STATUS_SUCCESS, or FS_STATUS_NO_FILE when a pattern matches nothing (or a failure
 * to read a directory on the way). out is empty on failure. */
fs_status cli_expand(fs_conn *c, const char *path, cli_paths *out);
void cli_paths_free(cli_paths *p);

/* Expand every operand in turn: a pattern that matches nothing is reported ("no match")
 * and left out, and *rc set to EXIT_FAILED. */
void cli_expand_all(fs_conn *c, const cli_location *locs, int n, cli_paths *out, int *rc);

#endif
