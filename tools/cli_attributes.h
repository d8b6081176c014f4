/* FAT attributes in the asyncfat command: shown by ls -l, stat and attrib, changed by
 * attrib (GET_ATTRIBUTES / SET_ATTRIBUTES through fs_client). */
#ifndef ASYNCFAT_TOOLS_CLI_ATTRIBUTES_H
#define ASYNCFAT_TOOLS_CLI_ATTRIBUTES_H

#include "tools/cli_dir.h"

/* "ASHR" with '-' for each bit not set (archive, system, hidden, read-only: the order of
 * Windows' attrib and mtools' mattrib). */
void cli_attribute_letters(uint64_t attributes, char out[5]);

/* The attributes of every entry of a directory listing (dir's entries), asked for many at
 * a time; out[i] is entry i's, 0 where it could not be had (the first such failure is
 * returned). */
fs_status cli_attributes_of_listing(fs_conn *c, const char *dir, const cli_dir *d, uint64_t *out);

#endif
