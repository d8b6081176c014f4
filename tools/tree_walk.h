/* tree_walk: depth-first walks of a directory tree, in an image (through fs_client) or in
 * the local file system, for ls -R, rm -r and cp -r. The walk's path lives on the heap, not
 * on the C stack, and a directory that leads back into one the walk is inside is reported
 * and not entered, so a damaged volume can neither overflow the stack nor loop.
 *
 * Order: each directory is read whole (sorted by name, cli_dir.h) and reported
 * (TREE_DIR), then its entries in order: a file (TREE_FILE), or a subdirectory, which is
 * walked there and then (its TREE_DIR, its entries, its TREE_LEAVE). So a caller may act on
 * a directory before its contents (ls, cp: make the subdirectories) or after (rm: rmdir).
 *
 * Cycles: on FAT a directory is a cluster chain named by an entry, and a damaged volume can
 * hold a directory whose first cluster is an ancestor's (the root's, its parent's). The
 * server names an image entry by the place of its directory entry (fs_stat.ino), so a
 * directory whose listing holds the entry of a directory on the walk's path (or its own
 * entry) shares that directory's clusters: it is a cycle (TREE_CYCLE), found as soon as it
 * is read and before any of its entries is reported. A local directory is a cycle when its
 * (dev, ino) is on the path (symbolic links are followed, as cp follows them). The path
 * begins at the start's ancestors, so a walk that starts inside a cycle (rm -r of a
 * directory whose clusters are the root's) reports it and touches nothing. Walks of a
 * volume without cycles cost nothing more: the ancestors are looked up once (one STAT each).
 *
 * The strings and entries an event points to stay valid until the next tree_walk_next.
 * Not thread-safe; blocking (fs_client calls, local reads).
 */
#ifndef ASYNCFAT_TOOLS_TREE_WALK_H
#define ASYNCFAT_TOOLS_TREE_WALK_H

#include "tools/cli_dir.h"

typedef enum {
    TREE_DIR,                  /* a directory was read: dir holds its entries, reported next */
    TREE_FILE,                 /* an entry that is not a directory */
    TREE_LEAVE,                /* every entry of the directory path was reported */
    TREE_CYCLE,                /* a directory that leads back into `ancestor`: not entered */
    TREE_ERROR                 /* a directory that could not be read, or an entry not stat'ed */
} tree_event_kind;

typedef struct tree_event {
    tree_event_kind kind;
    const char *path;          /* the directory's or file's path */
    const char *relative;      /* the same, relative to the start ("" for the start) */
    size_t depth;              /* 0 for the start */
    const cli_dir *dir;        /* TREE_DIR: the directory's entries */
    const cli_dir_entry *entry; /* its entry in its parent (NULL for the start) */
    const char *ancestor;      /* TREE_CYCLE: the directory on the path it leads back into */
    fs_status status;          /* TREE_ERROR in an image */
    int err;                   /* TREE_ERROR in the local file system: errno */
    bool failed_below;         /* TREE_LEAVE: tree_walk_failed was called inside it */
} tree_event;

/* The walk's own (callers use the functions below). */
typedef struct tree_frame {
    char *path, *relative;
    uint64_t dev, ino;         /* which directory it is (an image's: its entry's place) */
    cli_dir dir;               /* empty for the start's ancestors, which are not walked */
    bool *skip;
    size_t next;               /* the next entry to report */
    bool failed;
} tree_frame;

typedef struct tree_walk {
    fs_conn *conn;             /* NULL: the local file system */
    const char *image;         /* for messages */
    char *start;
    tree_frame *frames;        /* the start's ancestors, then the directories being walked */
    size_t depth, capacity;
    size_t ancestors;          /* frames below the start */
    bool leaving;              /* frames[depth] was popped by the last TREE_LEAVE */
    char *scratch_path, *scratch_relative; /* of the last TREE_FILE, CYCLE or ERROR */
    bool started;
} tree_walk;

/* Prepare a walk of the directory `path` (an image's when conn is set). Nothing is read
 * until the first tree_walk_next. */
void tree_walk_start(tree_walk *w, fs_conn *conn, const char *image, const char *path);
/* The next event; false when the walk is over. */
bool tree_walk_next(tree_walk *w, tree_event *ev);
/* After TREE_DIR: do not enter its subdirectory at index i of ev->dir. */
void tree_walk_skip(tree_walk *w, size_t i);
/* Something in the current directory failed: its TREE_LEAVE (and its ancestors') will say
 * failed_below. */
void tree_walk_failed(tree_walk *w);
/* Free the walk (at any point). */
void tree_walk_end(tree_walk *w);

/* Print a TREE_CYCLE or TREE_ERROR event as the command's other messages (IMAGE:PATH or
 * the local path, and why); returns EXIT_FAILED. */
int tree_walk_report(const tree_walk *w, const tree_event *ev);

#endif
