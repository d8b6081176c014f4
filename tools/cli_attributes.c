/* FAT attributes for the command's listings (see cli_attributes.h). */
#include "tools/cli_attributes.h"
#include "tools/cli.h"

#include <string.h>

#define ATTRIBUTE_WINDOW 64u /* GET_ATTRIBUTES in flight at once */

void cli_attribute_letters(uint64_t attributes, char out[5])
{
    out[0] = attributes & FS_ATTRIBUTE_ARCHIVE ? 'A' : '-';
    out[1] = attributes & FS_ATTRIBUTE_SYSTEM ? 'S' : '-';
    out[2] = attributes & FS_ATTRIBUTE_HIDDEN ? 'H' : '-';
    out[3] = attributes & FS_ATTRIBUTE_READ_ONLY ? 'R' : '-';
    out[4] = '\0';
}

fs_status cli_attributes_of_listing(fs_conn *c, const char *dir, const cli_dir *d, uint64_t *out)
{
    fs_status result = FS_STATUS_SUCCESS;
    /* In a directory too deep for its entries' paths: the names from the directory's fd. */
    uint64_t at = 0;
    if (strlen(dir) + 1 + FS_MAX_NAME_LENGTH > FS_MAX_PATH_LENGTH) {
        result = fs_conn_opendir(c, dir, &at);
        if (result != FS_STATUS_SUCCESS) {
            memset(out, 0, d->count * sizeof *out);
            return result;
        }
        dir = "";
    }
    fs_call calls[ATTRIBUTE_WINDOW];
    size_t started = 0, finished = 0;
    while (finished < d->count) {
        while (started < d->count && started - finished < ATTRIBUTE_WINDOW) {
            char path[4096];
            if (!cli_join(path, sizeof path, dir, d->entries[started].name))
                path[0] = '\0'; /* refused as an invalid path, reported below */
            fs_conn_start_get_attributes(c, &calls[started % ATTRIBUTE_WINDOW], at, path);
            started++;
        }
        fs_call *call = &calls[finished % ATTRIBUTE_WINDOW];
        fs_cmpl cmpl;
        fs_reply reply;
        fs_conn_wait(c, call->ticket, &cmpl);
        fs_conn_finish(c, call, &cmpl, &reply);
        out[finished] = reply.status == FS_STATUS_SUCCESS ? reply.data : 0;
        if (reply.status != FS_STATUS_SUCCESS && result == FS_STATUS_SUCCESS)
            result = reply.status;
        finished++;
    }
    if (at)
        fs_conn_closedir(c, at);
    return result;
}
