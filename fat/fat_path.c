/* Paths: '/'-separated byte strings from a base directory (the root unless the caller
 * names an open directory node). Empty components and "." are skipped; ".." cancels the
 * component before it (FAT has no links, so this lexical rule is exact), and at the root
 * stays at the root. A ".." that would climb above a base other than the root is
 * INVALID_PATH: the walk never leaves the base it was given (the base's parent is no part
 * of the path, and may be gone). The walk holds one directory's read lock at a time and
 * moves hand over hand by node references, from whatever node it starts at. */
#include "fat/fat_engine.h"

static bool is_dot(const char *c, size_t n)
{
    return n == 1 && c[0] == '.';
}

static bool is_dotdot(const char *c, size_t n)
{
    return n == 2 && c[0] == '.' && c[1] == '.';
}

/* The component at or after *i; false at the end of the path. */
static bool next_component(const char *path, size_t len, size_t *i, const char **c, size_t *n)
{
    while (*i < len && path[*i] == '/')
        (*i)++;
    if (*i >= len)
        return false;
    size_t start = *i;
    while (*i < len && path[*i] != '/')
        (*i)++;
    *c = path + start;
    *n = *i - start;
    return true;
}

/* Is the component that ends at `after` cancelled by a later ".."? */
static bool cancelled(const char *path, size_t len, size_t after)
{
    uint32_t depth = 1;
    const char *c;
    size_t n;
    while (next_component(path, len, &after, &c, &n)) {
        if (is_dotdot(c, n)) {
            if (--depth == 0)
                return true;
        } else if (!is_dot(c, n)) {
            depth++;
        }
    }
    return false;
}

/* The next component that survives "." and ".." resolution. */
static bool next_effective(const char *path, size_t len, bool has_dotdot, size_t *i, const char **c, size_t *n)
{
    while (next_component(path, len, i, c, n)) {
        if (is_dot(*c, *n) || is_dotdot(*c, *n))
            continue;
        if (has_dotdot && cancelled(path, len, *i))
            continue;
        return true;
    }
    return false;
}

/* Does a ".." climb above the path's start? */
static bool climbs_out(const char *path, size_t len)
{
    size_t depth = 0, i = 0, n;
    const char *c;
    while (next_component(path, len, &i, &c, &n)) {
        if (is_dotdot(c, n)) {
            if (depth == 0)
                return true;
            depth--;
        } else if (!is_dot(c, n)) {
            depth++;
        }
    }
    return false;
}

static bool path_has_dotdot(const char *path, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (path[i] == '.' && path[i + 1] == '.')
            return true;
    return false;
}

/* Look up one component in dir (referenced); on success *child is referenced. */
static vfs_status step(fat_volume *vol, fat_node *dir, const char *c, size_t n, fat_node **child)
{
    if (n > VFS_NAME_MAX)
        return VFS_NAME_TOO_LONG;
    fat_name name;
    vfs_status st = fat_name_prepare(c, n, &name);
    if (st != VFS_OK)
        return st;
    fp_rwlock_read_lock(vol->pool, &dir->lock);
    fat_dirent d;
    if (dir->unlinked)
        st = VFS_NO_FILE;
    else
        st = fat_dir_lookup(dir, &name, &d);
    if (st == VFS_OK)
        st = fat_node_get(vol, dir, &d, child);
    fp_rwlock_read_unlock(vol->pool, &dir->lock);
    return st;
}

static vfs_status check_path(fat_volume *vol, size_t len)
{
    if (!vol->mounted)
        return VFS_NOT_MOUNTED;
    if (len > VFS_PATH_MAX)
        return VFS_INVALID_PATH;
    return VFS_OK;
}

vfs_status fat_path_parent(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **parent,
                          const char **name, size_t *name_len)
{
    vfs_status st = check_path(vol, len);
    if (st != VFS_OK)
        return st;
    if (!base)
        base = vol->root;
    if (base->vol != vol || !base->is_dir)
        return VFS_NOT_DIRECTORY;
    bool dd = path_has_dotdot(path, len);
    if (dd && !base->is_root && climbs_out(path, len))
        return VFS_INVALID_PATH;
    /* Find the last effective component first. */
    size_t i = 0, last_end = 0, count = 0;
    const char *c = NULL, *last = NULL;
    size_t n = 0, last_n = 0;
    while (next_effective(path, len, dd, &i, &c, &n)) {
        last = c;
        last_n = n;
        last_end = i;
        count++;
    }
    fat_node *dir = base;
    fat_node_ref(dir);
    i = 0;
    while (count > 1 && next_effective(path, len, dd, &i, &c, &n) && i < last_end) {
        fat_node *child;
        st = step(vol, dir, c, n, &child);
        fat_node_put(dir);
        if (st != VFS_OK)
            return st;
        dir = child;
        if (!dir->is_dir) {
            fat_node_put(dir);
            return VFS_NOT_DIRECTORY;
        }
    }
    *parent = dir;
    *name = last;
    *name_len = count > 0 ? last_n : 0;
    return VFS_OK;
}

vfs_status fat_path_node(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **out)
{
    fat_node *dir;
    const char *name;
    size_t name_len;
    vfs_status st = fat_path_parent(vol, base, path, len, &dir, &name, &name_len);
    if (st != VFS_OK)
        return st;
    if (name_len == 0) {
        *out = dir;
        return VFS_OK;
    }
    st = step(vol, dir, name, name_len, out);
    fat_node_put(dir);
    return st;
}
