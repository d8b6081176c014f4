/* The copy engine's directories: listing a source directory, creating the destination's
 * subdirectories in batches, and queueing the files (see copy_engine.h). */
#include "tools/cli.h"
#include "tools/cli_dir.h"
#include "tools/copy/copy_engine.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_MKDIR_BATCH 32u           /* DIR_CREATEs in flight at once */

static int made_dir(copy_job *job, const char *path, fs_status st);

static int make_dir(copy_job *job, const char *path)
{
    const copy_side *dst = copy_job_destination(job);
    if (dst->conn)
        return made_dir(job, path, fs_conn_mkdir(dst->conn, path));
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return cli_fail_errno(path, errno);
    return EXIT_OK;
}

typedef struct copy_entry {
    char *name;
    copy_stat st;
    int err;                         /* a local entry that could not be stat'ed */
} copy_entry;

typedef struct entry_list {
    copy_entry *entries;
    size_t count;
} entry_list;

static void free_entries(entry_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->entries[i].name);
    free(l->entries);
}

static void from_fs_stat(const fs_stat *st, copy_stat *out)
{
    out->exists = true;
    out->is_dir = cli_is_dir_stat(st);
    out->size = st->size;
    out->mtime = (int64_t)st->mtime;
}

/* A source directory's entries with their attributes (an image directory read gives them
 * at no extra round trip). */
static int list_source(copy_job *job, const char *path, entry_list *out)
{
    const copy_side *src = copy_job_source(job);
    memset(out, 0, sizeof *out);
    if (src->conn) {
        cli_dir d;
        fs_status st = cli_dir_read(src->conn, path, &d);
        if (st != FS_STATUS_SUCCESS)
            return cli_fail_status(src->image, path, st);
        out->entries = calloc(d.count ? d.count : 1, sizeof *out->entries);
        for (size_t i = 0; out->entries && i < d.count; i++) {
            out->entries[i].name = d.entries[i].name;
            d.entries[i].name = NULL;
            from_fs_stat(&d.entries[i].st, &out->entries[i].st);
        }
        out->count = out->entries ? d.count : 0;
        cli_dir_free(&d);
        return out->entries ? EXIT_OK : cli_fail_errno(path, ENOMEM);
    }
    DIR *dir = opendir(path);
    if (!dir)
        return cli_fail_errno(path, errno);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (out->count == cap) {
            cap = cap ? cap * 2 : 64;
            copy_entry *grown = realloc(out->entries, cap * sizeof *grown);
            if (!grown)
                break;
            out->entries = grown;
        }
        copy_entry *entry = &out->entries[out->count++];
        memset(entry, 0, sizeof *entry);
        entry->name = strdup(e->d_name);
        struct stat st;
        if (fstatat(dirfd(dir), e->d_name, &st, 0) != 0) {
            entry->err = errno;
            continue;
        }
        entry->st = (copy_stat){.exists = true, .is_dir = S_ISDIR(st.st_mode), .size = (uint64_t)st.st_size,
                                .mtime = (int64_t)st.st_mtime};
    }
    closedir(dir);
    return EXIT_OK;
}

/* An image directory that DIR_CREATE found existing is fine if it is a directory. */
static int made_dir(copy_job *job, const char *path, fs_status st)
{
    const copy_side *dst = copy_job_destination(job);
    if (st == FS_STATUS_ALREADY_EXISTS) {
        copy_stat cs;
        if (copy_side_stat(dst, path, &cs) == FS_STATUS_SUCCESS && cs.is_dir)
            return EXIT_OK;
    }
    return st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(dst->image, path, st);
}

/* Create the destination directories of a source directory's subdirectories: on an image,
 * COPY_MKDIR_BATCH DIR_CREATEs at a time, in flight together with the files being copied.
 * made[i] tells whether entry i (a directory) may be descended into. */
static int make_subdirs(copy_job *job, const char *dst_path, const entry_list *list, bool *made)
{
    int rc = EXIT_OK;
    fs_conn *c = copy_job_destination(job)->conn;
    size_t i = 0;
    while (i < list->count && !cli_interrupted) {
        size_t batch[COPY_MKDIR_BATCH], n = 0;
        fs_conn_ticket tickets[COPY_MKDIR_BATCH];
        void *paths[COPY_MKDIR_BATCH];
        char child[4096];
        for (; i < list->count && n < COPY_MKDIR_BATCH; i++) {
            const copy_entry *e = &list->entries[i];
            made[i] = false;
            if (!e->name || e->err || !e->st.is_dir)
                continue;
            cli_join(child, sizeof child, dst_path, e->name);
            if (!c) {
                int r = make_dir(job, child);
                made[i] = r == EXIT_OK;
                if (r != EXIT_OK)
                    rc = r;
                continue;
            }
            size_t len = strlen(child);
            paths[n] = fs_conn_alloc(c, len);
            memcpy(paths[n], child, len);
            fs_cmd cmd;
            memset(&cmd, 0, sizeof cmd);
            cmd.type = FS_CMD_DIR_CREATE;
            cmd.params.dir_create.path = fs_conn_buffer(c, paths[n], len);
            tickets[n] = fs_conn_submit(c, &cmd);
            batch[n++] = i;
        }
        for (size_t k = 0; k < n; k++) {
            fs_cmpl cmpl;
            fs_conn_wait(c, tickets[k], &cmpl);
            fs_conn_free(c, paths[k]);
            cli_join(child, sizeof child, dst_path, list->entries[batch[k]].name);
            int r = made_dir(job, child, (fs_status)cmpl.status);
            made[batch[k]] = r == EXIT_OK;
            if (r != EXIT_OK)
                rc = r;
        }
    }
    return rc;
}

/* Copy a source directory's contents into dst_path, which exists. */
static int copy_tree_into(copy_job *job, const char *src_path, const char *dst_path)
{
    entry_list list;
    int rc = list_source(job, src_path, &list);
    if (rc != EXIT_OK)
        return rc;
    bool *made = calloc(list.count ? list.count : 1, sizeof *made);
    if (!made) {
        free_entries(&list);
        return cli_fail_errno(src_path, ENOMEM);
    }
    rc = make_subdirs(job, dst_path, &list, made);
    for (size_t i = 0; i < list.count && !cli_interrupted; i++) {
        const copy_entry *e = &list.entries[i];
        if (!e->name)
            continue;
        char src_child[4096], dst_child[4096];
        cli_join(src_child, sizeof src_child, src_path, e->name);
        cli_join(dst_child, sizeof dst_child, dst_path, e->name);
        if (e->err) {
            rc = cli_fail_errno(src_child, e->err);
        } else if (e->st.is_dir) {
            int r = made[i] ? copy_tree_into(job, src_child, dst_child) : EXIT_OK;
            if (r != EXIT_OK)
                rc = r;
        } else {
            copy_job_add_file(job, src_child, dst_child, &e->st);
        }
    }
    free(made);
    free_entries(&list);
    return rc;
}

int copy_job_add_tree(copy_job *job, const char *src_path, const char *dst_path)
{
    int rc = make_dir(job, dst_path);
    return rc == EXIT_OK ? copy_tree_into(job, src_path, dst_path) : rc;
}

