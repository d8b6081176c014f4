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

static int made_dir(copy_job *job, const char *path, fs_status st, uint64_t *ino);

static int make_dir(copy_job *job, const char *path)
{
    const copy_side *dst = copy_job_destination(job);
    if (dst->conn)
        return made_dir(job, path, fs_conn_mkdir(dst->conn, path), &(uint64_t){0});
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
            copy_stat_from_fs(&d.entries[i].st, &out->entries[i].st);
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
        copy_stat_from_local(&st, &entry->st);
    }
    closedir(dir);
    return EXIT_OK;
}

/* An image directory that DIR_CREATE found existing is fine if it is a directory (*ino
 * gets its ino; 0 for one just made). */
static int made_dir(copy_job *job, const char *path, fs_status st, uint64_t *ino)
{
    const copy_side *dst = copy_job_destination(job);
    *ino = 0;
    if (st == FS_STATUS_ALREADY_EXISTS) {
        copy_stat cs;
        if (copy_side_stat(dst, path, &cs) == FS_STATUS_SUCCESS && cs.is_dir) {
            *ino = cs.ino;
            return EXIT_OK;
        }
    }
    return st == FS_STATUS_SUCCESS ? EXIT_OK : cli_fail_status(dst->image, path, st);
}

typedef struct twin_key {
    uint64_t ino;
    size_t index;
} twin_key;

static int by_ino_then_index(const void *a, const void *b)
{
    const twin_key *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Subdirectories whose names the volume takes for one (FAT names ignore case; trailing
 * dots): the first in the listing has the directory, each later one is reported and not
 * copied, as copy_engine.c does for files. Twins show only as a DIR_CREATE that found a
 * directory, so with none (a fresh copy) nothing is asked; otherwise the inos of the ones
 * just made are fetched and compared with the others'. */
static int refuse_twins(copy_job *job, const char *src_path, const char *dst_path, const entry_list *list,
                        bool *made, uint64_t *ino)
{
    const copy_side *dst = copy_job_destination(job);
    size_t n = 0;
    bool existed = false;
    for (size_t i = 0; i < list->count; i++) {
        n += made[i];
        existed |= made[i] && ino[i] != 0;
    }
    if (!existed || n < 2)
        return EXIT_OK;
    twin_key *keys = calloc(n, sizeof *keys);
    if (!keys)
        return cli_fail_errno(src_path, ENOMEM);
    char child[4096];
    n = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (!made[i])
            continue;
        if (!ino[i]) {
            copy_stat cs;
            cli_join(child, sizeof child, dst_path, list->entries[i].name);
            if (copy_side_stat(dst, child, &cs) == FS_STATUS_SUCCESS)
                ino[i] = cs.ino;
        }
        keys[n++] = (twin_key){ino[i], i};
    }
    qsort(keys, n, sizeof *keys, by_ino_then_index);
    int rc = EXIT_OK;
    for (size_t k = 1; k < n; k++) {
        if (keys[k].ino == 0 || keys[k].ino != keys[k - 1].ino)
            continue;
        size_t kept = k - 1;
        while (kept > 0 && keys[kept - 1].ino == keys[k].ino)
            kept--;
        char src_child[4096];
        cli_join(child, sizeof child, dst_path, list->entries[keys[kept].index].name);
        cli_join(src_child, sizeof src_child, src_path, list->entries[keys[k].index].name);
        if (copy_job_source(job)->conn)
            cli_error("cp", "will not merge '%s:%s' into just-copied '%s:%s' (the same name on FAT)",
                      copy_job_source(job)->image, src_child, dst->image, child);
        else
            cli_error("cp", "will not merge '%s' into just-copied '%s:%s' (the same name on FAT)", src_child,
                      dst->image, child);
        made[keys[k].index] = false;
        rc = EXIT_FAILED;
    }
    free(keys);
    return rc;
}

/* Create the destination directories of a source directory's subdirectories: on an image,
 * COPY_MKDIR_BATCH DIR_CREATEs at a time, in flight together with the files being copied.
 * made[i] tells whether entry i (a directory) may be descended into; ino[i] is the ino of
 * an image directory that existed already (0 otherwise). */
static int make_subdirs(copy_job *job, const char *dst_path, const entry_list *list, bool *made, uint64_t *ino)
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
            int r = made_dir(job, child, (fs_status)cmpl.status, &ino[batch[k]]);
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
    uint64_t *ino = calloc(list.count ? list.count : 1, sizeof *ino);
    if (!made || !ino) {
        free(made);
        free(ino);
        free_entries(&list);
        return cli_fail_errno(src_path, ENOMEM);
    }
    rc = make_subdirs(job, dst_path, &list, made, ino);
    if (copy_job_destination(job)->conn) {
        int r = refuse_twins(job, src_path, dst_path, &list, made, ino);
        if (r != EXIT_OK)
            rc = r;
    }
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
    free(ino);
    free_entries(&list);
    return rc;
}

int copy_job_add_tree(copy_job *job, const char *src_path, const char *dst_path)
{
    int rc = make_dir(job, dst_path);
    return rc == EXIT_OK ? copy_tree_into(job, src_path, dst_path) : rc;
}

