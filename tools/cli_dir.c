/* Whole-directory reads for the asyncfat command (see cli_dir.h). */
#include "tools/cli_dir.h"

#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b)
{
    return strcmp(((const cli_dir_entry *)a)->name, ((const cli_dir_entry *)b)->name);
}

fs_status cli_dir_read(fs_conn *c, const char *path, cli_dir *out)
{
    memset(out, 0, sizeof *out);
    uint64_t fd;
    fs_status st = fs_conn_opendir(c, path, &fd);
    if (st != FS_STATUS_SUCCESS)
        return st;
    size_t capacity = 0;
    char name[FS_CONN_NAME_MAX + 1];
    fs_stat rec;
    while ((st = fs_conn_readdir(c, fd, name, &rec)) == FS_STATUS_SUCCESS) {
        if (out->count == capacity) {
            capacity = capacity ? capacity * 2 : 64;
            cli_dir_entry *grown = realloc(out->entries, capacity * sizeof *grown);
            if (!grown) {
                st = FS_STATUS_ALLOCATION_ERROR;
                break;
            }
            out->entries = grown;
        }
        out->entries[out->count].name = strdup(name);
        out->entries[out->count].st = rec;
        if (!out->entries[out->count].name) {
            st = FS_STATUS_ALLOCATION_ERROR;
            break;
        }
        out->count++;
    }
    fs_conn_closedir(c, fd);
    if (st != FS_STATUS_END_OF_DIRECTORY) {
        cli_dir_free(out);
        return st;
    }
    if (out->count)
        qsort(out->entries, out->count, sizeof *out->entries, by_name);
    return FS_STATUS_SUCCESS;
}

void cli_dir_free(cli_dir *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->entries[i].name);
    free(d->entries);
    memset(d, 0, sizeof *d);
}
