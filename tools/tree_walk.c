/* Depth-first tree walks with the path on the heap and cycles detected (see tree_walk.h). */
#include "tools/tree_walk.h"
#include "tools/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* "dir/name" (no doubled '/'; just name when dir is empty), or NULL. */
static char *join_path(const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    bool slash = d > 0 && dir[d - 1] != '/';
    char *out = malloc(d + slash + n + 1);
    if (!out)
        return NULL;
    memcpy(out, dir, d);
    if (slash)
        out[d] = '/';
    memcpy(out + d + slash, name, n + 1);
    return out;
}

static void free_frame(tree_frame *f)
{
    free(f->path);
    free(f->relative);
    free(f->skip);
    cli_dir_free(&f->dir);
    memset(f, 0, sizeof *f);
}

static void free_scratch(tree_walk *w)
{
    free(w->scratch_path);
    free(w->scratch_relative);
    w->scratch_path = w->scratch_relative = NULL;
}

/* Push a frame that takes ownership of path, relative and dir; false if out of memory
 * (then nothing is kept). */
static bool push(tree_walk *w, char *path, char *relative, const fs_stat *st, cli_dir *dir)
{
    bool *skip = calloc(dir->count ? dir->count : 1, sizeof *skip);
    if (w->depth + 1 >= w->capacity) { /* one spare: the frame a TREE_LEAVE pops stays there */
        size_t capacity = w->capacity ? w->capacity * 2 : 16;
        tree_frame *grown = skip ? realloc(w->frames, capacity * sizeof *grown) : NULL;
        if (!grown) {
            free(skip);
            return false;
        }
        w->frames = grown;
        w->capacity = capacity;
    }
    if (!skip)
        return false;
    w->frames[w->depth++] = (tree_frame){.path = path, .relative = relative, .dev = st->dev, .ino = st->ino,
                                         .dir = *dir, .skip = skip};
    memset(dir, 0, sizeof *dir);
    return true;
}

/* The frame whose directory is (dev, ino), or -1. */
static long frame_of(const tree_walk *w, uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < w->depth; i++)
        if (w->frames[i].dev == dev && w->frames[i].ino == ino)
            return (long)i;
    return -1;
}

static fs_status stat_path(tree_walk *w, const char *path, fs_stat *st, int *err)
{
    if (w->conn)
        return fs_conn_stat(w->conn, path, st);
    struct stat local;
    if (stat(path, &local) != 0) {
        *err = errno;
        return FS_STATUS_IO_ERROR;
    }
    cli_stat_from_local(&local, st);
    return FS_STATUS_SUCCESS;
}

/* The start's ancestors, as frames that are never walked: prefixes of the image path, or of
 * the local path made absolute. One that cannot be looked up is left out. */
static void push_ancestors(tree_walk *w)
{
    char resolved[PATH_MAX];
    const char *path = w->start;
    if (!w->conn) {
        if (!realpath(w->start, resolved))
            return;
        path = resolved;
    }
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    for (size_t end = 0; end < n && n > 1; end++) {
        if (path[end] != '/' || (end > 0 && path[end - 1] == '/'))
            continue;
        char *prefix = strndup(path, end == 0 ? 1 : end);
        char *relative = strdup("");
        fs_stat st;
        int err = 0;
        cli_dir none = {0};
        if (!prefix || !relative || stat_path(w, prefix, &st, &err) != FS_STATUS_SUCCESS ||
            !push(w, prefix, relative, &st, &none)) {
            free(prefix);
            free(relative);
        }
    }
    w->ancestors = w->depth;
}

static bool fail_event(tree_event *ev, fs_status st, int err)
{
    ev->kind = TREE_ERROR;
    ev->status = st;
    ev->err = err;
    return true;
}

/* Read the directory path (its own record st) and enter it: TREE_DIR, or TREE_CYCLE or
 * TREE_ERROR without entering. Takes path and relative. */
static bool enter(tree_walk *w, char *path, char *relative, const fs_stat *st, tree_event *ev)
{
    ev->path = path;
    ev->relative = relative;
    w->scratch_path = path;
    w->scratch_relative = relative;
    long on_path = frame_of(w, st->dev, st->ino);
    if (on_path >= 0) {
        ev->kind = TREE_CYCLE;
        ev->ancestor = w->frames[on_path].path;
        return true;
    }
    cli_dir dir;
    if (w->conn) {
        fs_status status = cli_dir_read(w->conn, path, &dir);
        if (status != FS_STATUS_SUCCESS)
            return fail_event(ev, status, 0);
        /* An entry of a directory on the path (or its own) here: these are that
         * directory's clusters, and the ancestor is the one holding that entry. */
        for (size_t i = 0; i < dir.count; i++) {
            const fs_stat *e = &dir.entries[i].st;
            long holder = e->dev == st->dev && e->ino == st->ino ? (long)w->depth : frame_of(w, e->dev, e->ino);
            if (holder < 0)
                continue;
            cli_dir_free(&dir);
            ev->kind = TREE_CYCLE;
            ev->ancestor = holder > 0 ? w->frames[holder - 1].path : path;
            return true;
        }
    } else {
        int err = cli_dir_read_local(path, &dir);
        if (err)
            return fail_event(ev, FS_STATUS_IO_ERROR, err);
    }
    if (!push(w, path, relative, st, &dir)) {
        cli_dir_free(&dir);
        return fail_event(ev, FS_STATUS_ALLOCATION_ERROR, ENOMEM);
    }
    w->scratch_path = w->scratch_relative = NULL;
    tree_frame *f = &w->frames[w->depth - 1];
    ev->kind = TREE_DIR;
    ev->dir = &f->dir;
    return true;
}

void tree_walk_start(tree_walk *w, fs_conn *conn, const char *image, const char *path)
{
    memset(w, 0, sizeof *w);
    w->conn = conn;
    w->image = image;
    w->start = strdup(path);
}

static bool start_event(tree_walk *w, tree_event *ev)
{
    char *path = w->start ? strdup(w->start) : NULL;
    char *relative = strdup("");
    if (!path || !relative) {
        free(path);
        free(relative);
        ev->path = w->start ? w->start : "";
        ev->relative = "";
        return fail_event(ev, FS_STATUS_ALLOCATION_ERROR, ENOMEM);
    }
    push_ancestors(w);
    fs_stat st;
    int err = 0;
    fs_status status = stat_path(w, path, &st, &err);
    if (status != FS_STATUS_SUCCESS) {
        w->scratch_path = path;
        w->scratch_relative = relative;
        ev->path = path;
        ev->relative = relative;
        return fail_event(ev, status, err);
    }
    return enter(w, path, relative, &st, ev);
}

bool tree_walk_next(tree_walk *w, tree_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (w->leaving) {
        free_frame(&w->frames[w->depth]);
        w->leaving = false;
    }
    free_scratch(w);
    if (!w->started) {
        w->started = true;
        return start_event(w, ev);
    }
    while (w->depth > w->ancestors) {
        tree_frame *top = &w->frames[w->depth - 1];
        ev->depth = w->depth - w->ancestors;
        if (top->next < top->dir.count) {
            size_t i = top->next++;
            const cli_dir_entry *e = &top->dir.entries[i];
            if (cli_is_dir_stat(&e->st) && !e->err && top->skip[i])
                continue;
            char *path = join_path(top->path, e->name);
            char *relative = join_path(top->relative, e->name);
            ev->entry = e;
            if (!path || !relative) {
                free(path);
                free(relative);
                ev->path = top->path;
                ev->relative = top->relative;
                return fail_event(ev, FS_STATUS_ALLOCATION_ERROR, ENOMEM);
            }
            if (e->err || !cli_is_dir_stat(&e->st)) {
                w->scratch_path = path;
                w->scratch_relative = relative;
                ev->path = path;
                ev->relative = relative;
                if (e->err)
                    return fail_event(ev, FS_STATUS_IO_ERROR, e->err);
                ev->kind = TREE_FILE;
                return true;
            }
            return enter(w, path, relative, &e->st, ev);
        }
        w->depth--;
        w->leaving = true;
        ev->depth = w->depth - w->ancestors;
        ev->kind = TREE_LEAVE;
        ev->path = top->path;
        ev->relative = top->relative;
        ev->failed_below = top->failed;
        if (top->failed && w->depth > 0)
            w->frames[w->depth - 1].failed = true;
        return true;
    }
    return false;
}

void tree_walk_skip(tree_walk *w, size_t i)
{
    if (w->depth > w->ancestors && i < w->frames[w->depth - 1].dir.count)
        w->frames[w->depth - 1].skip[i] = true;
}

void tree_walk_failed(tree_walk *w)
{
    if (w->depth > w->ancestors)
        w->frames[w->depth - 1].failed = true;
}

void tree_walk_end(tree_walk *w)
{
    if (w->leaving)
        free_frame(&w->frames[w->depth]);
    for (size_t i = 0; i < w->depth; i++)
        free_frame(&w->frames[i]);
    free(w->frames);
    free_scratch(w);
    free(w->start);
    memset(w, 0, sizeof *w);
}

int tree_walk_report(const tree_walk *w, const tree_event *ev)
{
    char where[8300];
    if (w->conn)
        snprintf(where, sizeof where, "%s:%s", w->image, ev->path);
    else
        snprintf(where, sizeof where, "%s", ev->path);
    if (ev->kind == TREE_CYCLE) {
        if (w->conn)
            cli_error(where, "directory cycle: it leads back into %s:%s; not entered (the volume is damaged: "
                             "see asyncfat check)",
                      w->image, ev->ancestor);
        else
            cli_error(where, "directory cycle: it leads back into %s; not entered", ev->ancestor);
        return EXIT_FAILED;
    }
    if (w->conn)
        return cli_fail_status(w->image, ev->path, ev->status);
    return cli_fail_errno(ev->path, ev->err);
}
