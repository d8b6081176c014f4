/* The copy engine's directories: walking the source tree (tree_walk.h: the path on the
 * heap, cycles reported and not entered), creating the destination's subdirectories a
 * listing at a time, and queueing the files (see copy_engine.h). */
#include "tools/cli.h"
#include "tools/copy/copy_engine.h"
#include "tools/tree_walk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_MKDIR_BATCH 32u           /* DIR_CREATEs in flight at once */

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

static int make_dir(copy_job *job, const char *path, uint64_t *ino)
{
    const copy_side *dst = copy_job_destination(job);
    *ino = 0;
    if (dst->conn)
        return made_dir(job, path, fs_conn_mkdir(dst->conn, path), ino);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return cli_fail_errno(path, errno);
    return EXIT_OK;
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
static int refuse_twins(copy_job *job, const char *src_path, const char *dst_path, const cli_dir *list,
                        bool *made, uint64_t *ino)
{
    const copy_side *src = copy_job_source(job), *dst = copy_job_destination(job);
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
        if (src->conn)
            cli_error("cp", "will not merge '%s:%s' into just-copied '%s:%s' (the same name on FAT)", src->image,
                      src_child, dst->image, child);
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
static int make_subdirs(copy_job *job, const char *dst_path, const cli_dir *list, bool *made, uint64_t *ino)
{
    int rc = EXIT_OK;
    fs_conn *c = copy_job_destination(job)->conn;
    size_t i = 0;
    while (i < list->count && !cli_interrupted) {
        size_t batch[COPY_MKDIR_BATCH], n = 0;
        fs_call calls[COPY_MKDIR_BATCH];
        char child[4096];
        for (; i < list->count && n < COPY_MKDIR_BATCH; i++) {
            const cli_dir_entry *e = &list->entries[i];
            made[i] = false;
            if (e->err || !cli_is_dir_stat(&e->st))
                continue;
            if (!cli_join(child, sizeof child, dst_path, e->name)) {
                rc = cli_fail_errno(child, ENAMETOOLONG);
                continue;
            }
            if (!c) {
                int r = make_dir(job, child, &ino[i]);
                made[i] = r == EXIT_OK;
                if (r != EXIT_OK)
                    rc = r;
                continue;
            }
            fs_conn_start_mkdir(c, &calls[n], 0, child);
            batch[n++] = i;
        }
        for (size_t k = 0; k < n; k++) {
            fs_cmpl cmpl;
            fs_reply reply;
            fs_conn_wait(c, calls[k].ticket, &cmpl);
            fs_conn_finish(c, &calls[k], &cmpl, &reply);
            cli_join(child, sizeof child, dst_path, list->entries[batch[k]].name);
            int r = made_dir(job, child, reply.status, &ino[batch[k]]);
            made[batch[k]] = r == EXIT_OK;
            if (r != EXIT_OK)
                rc = r;
        }
    }
    return rc;
}

/* A source directory was read: make its subdirectories under dst_path, and tell the walk
 * to leave out those that could not be made. */
static int dir_listed(copy_job *job, tree_walk *w, const char *src_path, const char *dst_path, const cli_dir *list)
{
    bool *made = calloc(list->count ? list->count : 1, sizeof *made);
    uint64_t *ino = calloc(list->count ? list->count : 1, sizeof *ino);
    int rc = EXIT_OK;
    if (!made || !ino) {
        rc = cli_fail_errno(src_path, ENOMEM);
    } else {
        rc = make_subdirs(job, dst_path, list, made, ino);
        if (copy_job_destination(job)->conn) {
            int r = refuse_twins(job, src_path, dst_path, list, made, ino);
            if (r != EXIT_OK)
                rc = r;
        }
    }
    for (size_t i = 0; i < list->count; i++)
        if (!made || !made[i])
            tree_walk_skip(w, i);
    free(made);
    free(ino);
    return rc;
}

int copy_job_add_tree(copy_job *job, const char *src_path, const char *dst_path)
{
    const copy_side *src = copy_job_source(job);
    tree_walk w;
    tree_walk_start(&w, src->conn, src->image, src_path);
    tree_event ev;
    int rc = EXIT_OK;
    while (!cli_interrupted && tree_walk_next(&w, &ev)) {
        char to[4096];
        snprintf(to, sizeof to, "%s", dst_path);
        int r = EXIT_OK;
        if (ev.relative[0] && !cli_join(to, sizeof to, dst_path, ev.relative) && ev.kind == TREE_FILE) {
            rc = cli_fail_errno(to, ENAMETOOLONG);
            continue;
        }
        if (ev.kind == TREE_DIR) {
            uint64_t ino;
            if (ev.depth == 0 && (r = make_dir(job, to, &ino)) != EXIT_OK) {
                rc = r;
                break;
            }
            r = dir_listed(job, &w, ev.path, to, ev.dir);
        } else if (ev.kind == TREE_FILE) {
            copy_stat st;
            copy_stat_from_fs(&ev.entry->st, &st);
            copy_job_add_file(job, ev.path, to, &st);
        } else if (ev.kind == TREE_CYCLE || ev.kind == TREE_ERROR) {
            r = tree_walk_report(&w, &ev);
        }
        if (r != EXIT_OK)
            rc = r;
    }
    tree_walk_end(&w);
    return rc;
}
