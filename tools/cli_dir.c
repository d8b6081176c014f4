/* Whole-directory reads for the asyncfat command (see cli_dir.h). */
#include "tools/cli_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* As ls sorts: by the locale's collation (LC_COLLATE), bytes deciding ties. */
static int by_name(const void *a, const void *b)
{
    const char *x = ((const cli_dir_entry *)a)->name, *y = ((const cli_dir_entry *)b)->name;
    int order = strcoll(x, y);
    return order ? order : strcmp(x, y);
}

/* A new entry named `name` (the rest zero) at the end of d, or NULL if out of memory. */
static cli_dir_entry *add_entry(cli_dir *d, size_t *capacity, const char *name)
{
    if (d->count == *capacity) {
        size_t grown_capacity = *capacity ? *capacity * 2 : 64;
        cli_dir_entry *grown = realloc(d->entries, grown_capacity * sizeof *grown);
        if (!grown)
            return NULL;
        d->entries = grown;
        *capacity = grown_capacity;
    }
    cli_dir_entry *e = &d->entries[d->count];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return NULL;
    d->count++;
    return e;
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
        cli_dir_entry *e = add_entry(out, &capacity, name);
        if (!e) {
            st = FS_STATUS_ALLOCATION_ERROR;
            break;
        }
        e->st = rec;
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

void cli_stat_from_local(const struct stat *in, fs_stat *out)
{
    memset(out, 0, sizeof *out);
    out->dev = (uint64_t)in->st_dev;
    out->ino = (uint64_t)in->st_ino;
    out->mode = (uint64_t)in->st_mode; /* POSIX's type and permission bits are the protocol's */
    out->nlink = (uint64_t)in->st_nlink;
    out->size = (uint64_t)in->st_size;
    out->blksize = (uint64_t)in->st_blksize;
    out->blocks = (uint64_t)in->st_blocks;
    out->atime = (uint64_t)in->st_atim.tv_sec;
    out->mtime = (uint64_t)in->st_mtim.tv_sec;
    out->ctime = (uint64_t)in->st_ctim.tv_sec;
    out->atime_nsec = (uint64_t)in->st_atim.tv_nsec;
    out->mtime_nsec = (uint64_t)in->st_mtim.tv_nsec;
    out->ctime_nsec = (uint64_t)in->st_ctim.tv_nsec;
}

int cli_dir_read_local(const char *path, cli_dir *out)
{
    memset(out, 0, sizeof *out);
    DIR *dir = opendir(path);
    if (!dir)
        return errno;
    size_t capacity = 0;
    int err = 0;
    struct dirent *e;
    while ((errno = 0, e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        cli_dir_entry *entry = add_entry(out, &capacity, e->d_name);
        if (!entry) {
            err = ENOMEM;
            break;
        }
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, 0) != 0)
            entry->err = errno;
        else
            cli_stat_from_local(&st, &entry->st);
    }
    if (!e && errno)
        err = errno;
    closedir(dir);
    if (err) {
        cli_dir_free(out);
        return err;
    }
    if (out->count)
        qsort(out->entries, out->count, sizeof *out->entries, by_name);
    return 0;
}

void cli_dir_free(cli_dir *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->entries[i].name);
    free(d->entries);
    memset(d, 0, sizeof *d);
}
