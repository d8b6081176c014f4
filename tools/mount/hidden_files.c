/* Files libfuse hid (renamed to .fuse_hidden*) after an unlink while open (see mount.h). */
#include "tools/mount/mount.h"

#include <stdlib.h>
#include <string.h>

typedef struct hidden_file {
    char *path;
    uint64_t fd;               /* ours: keeps the unlinked file alive for getattr */
    struct hidden_file *next;
} hidden_file;

static pthread_mutex_t hidden_lock = PTHREAD_MUTEX_INITIALIZER;
static hidden_file *hidden_files;

bool hidden_is_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return strncmp(slash ? slash + 1 : path, ".fuse_hidden", 12) == 0;
}

bool hidden_fd(const char *path, uint64_t *fd)
{
    bool found = false;
    pthread_mutex_lock(&hidden_lock);
    for (hidden_file *h = hidden_files; h; h = h->next) {
        if (strcmp(h->path, path) == 0) {
            *fd = h->fd;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&hidden_lock);
    return found;
}

fs_status hidden_hide(const char *path, const char *hidden)
{
    hidden_file *h = calloc(1, sizeof *h);
    if (!h || !(h->path = strdup(hidden))) {
        free(h);
        return FS_STATUS_ALLOCATION_ERROR;
    }
    fs_status st = fs_conn_open_file(mount_ctx.conn, path, FS_OPEN_FLAGS_READ_ONLY, &h->fd);
    if (st == FS_STATUS_SUCCESS) {
        st = fs_conn_remove(mount_ctx.conn, path);
        if (st != FS_STATUS_SUCCESS)
            fs_conn_close_file(mount_ctx.conn, h->fd);
    }
    if (st != FS_STATUS_SUCCESS) {
        free(h->path);
        free(h);
        return st;
    }
    pthread_mutex_lock(&hidden_lock);
    h->next = hidden_files;
    hidden_files = h;
    pthread_mutex_unlock(&hidden_lock);
    return FS_STATUS_SUCCESS;
}

bool hidden_forget(const char *path)
{
    hidden_file *found = NULL;
    pthread_mutex_lock(&hidden_lock);
    for (hidden_file **p = &hidden_files; *p; p = &(*p)->next) {
        if (strcmp((*p)->path, path) == 0) {
            found = *p;
            *p = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&hidden_lock);
    if (!found)
        return false;
    fs_conn_close_file(mount_ctx.conn, found->fd);
    free(found->path);
    free(found);
    return true;
}
