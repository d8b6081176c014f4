/* Node ids, names and paths (see mount.h). Two hash tables: by id, and linked nodes by
 * (parent, name) exactly as the kernel gave the name (FUSE names are case-sensitive; two
 * cases of one FAT name are two nodes, as two hard links would be). */
#include "tools/mount/mount.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NODE_BUCKETS 65536u

static mount_node *by_id[NODE_BUCKETS];
static mount_node *by_name[NODE_BUCKETS];
static mount_node root;
static fuse_ino_t next_id;

static uint32_t id_bucket(fuse_ino_t id) { return (uint32_t)(id * 0x9E3779B97F4A7C15ull >> 48) % NODE_BUCKETS; }

static uint32_t name_bucket(const mount_node *parent, const char *name)
{
    uint64_t h = 14695981039346656037ull ^ parent->id; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return (uint32_t)(h % NODE_BUCKETS);
}

static void unhash_name(mount_node *node)
{
    mount_node **at = &by_name[name_bucket(node->parent, node->name)];
    while (*at && *at != node)
        at = &(*at)->hash_next;
    if (*at)
        *at = node->hash_next;
    node->hash_next = NULL;
}

void nodes_init(void)
{
    memset(by_id, 0, sizeof by_id);
    memset(by_name, 0, sizeof by_name);
    memset(&root, 0, sizeof root);
    root.id = FUSE_ROOT_ID;
    root.linked = true;
    root.name = (char *)"";
    by_id[id_bucket(root.id)] = &root;
    next_id = FUSE_ROOT_ID + 1;
}

void nodes_free(void)
{
    for (uint32_t b = 0; b < NODE_BUCKETS; b++) {
        for (mount_node *n = by_id[b], *next; n; n = next) {
            next = n->id_next;
            if (n != &root) {
                free(n->name);
                free(n);
            }
        }
        by_id[b] = by_name[b] = NULL;
    }
}

mount_node *node_get(fuse_ino_t id)
{
    for (mount_node *n = by_id[id_bucket(id)]; n; n = n->id_next)
        if (n->id == id)
            return n;
    return NULL;
}

mount_node *node_find(mount_node *parent, const char *name)
{
    for (mount_node *n = by_name[name_bucket(parent, name)]; n; n = n->hash_next)
        if (n->parent == parent && strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

mount_node *node_lookup(mount_node *parent, const char *name)
{
    uint32_t b = name_bucket(parent, name);
    for (mount_node *n = by_name[b]; n; n = n->hash_next) {
        if (n->parent == parent && strcmp(n->name, name) == 0) {
            n->lookups++;
            return n;
        }
    }
    mount_node *n = calloc(1, sizeof *n);
    char *copy = strdup(name);
    if (!n || !copy) {
        free(n);
        free(copy);
        return NULL;
    }
    n->id = next_id++;
    n->parent = parent;
    n->name = copy;
    n->linked = true;
    n->lookups = 1;
    parent->children++;
    n->hash_next = by_name[b];
    by_name[b] = n;
    uint32_t ib = id_bucket(n->id);
    n->id_next = by_id[ib];
    by_id[ib] = n;
    return n;
}

void node_adopt_pin(mount_node *node, uint64_t fd, uint64_t flags)
{
    if (!node || node->pinned) {
        fd_close_in_background(fd, false); /* not needed after all: give it back */
        return;
    }
    node->pinned = true;
    node->pin_fd = fd;
    node->pin_writable = flags != FS_OPEN_FLAGS_READ_ONLY;
    fd_cache_count_pin(true);
}

/* Close the pin of a node that goes (its fd is the mount's own). */
static void close_pin(mount_node *node)
{
    if (!node->pinned)
        return;
    node->pinned = false;
    fd_cache_count_pin(false);
    fd_close_in_background(node->pin_fd, false);
}

/* Close the anchor of a node that goes or loses its name (nothing can be named under it
 * any more). */
static void drop_anchor(mount_node *node)
{
    if (!node->anchored)
        return;
    node->anchored = false;
    fd_cache_count_pin(false);
    fd_close_in_background(node->anchor_fd, true);
}

/* Free the node if nothing holds it any more: no lookups, no handles, no children. */
static void node_maybe_free(mount_node *node)
{
    while (node && node != &root && node->lookups == 0 && !node->handles && node->children == 0) {
        mount_node *parent = node->parent;
        if (node->linked)
            unhash_name(node);
        if (parent)
            parent->children--;
        mount_node **at = &by_id[id_bucket(node->id)];
        while (*at != node)
            at = &(*at)->id_next;
        *at = node->id_next;
        close_pin(node);
        drop_anchor(node);
        free(node->name);
        free(node);
        node = parent;
    }
}

void node_forget(mount_node *node, uint64_t n)
{
    node->lookups = node->lookups > n ? node->lookups - n : 0;
    node_maybe_free(node);
}

void node_detach(mount_node *node)
{
    if (!node->linked || node == &root)
        return;
    unhash_name(node);
    node->linked = false;
    node->stat_known = false;
    drop_anchor(node);
    if (node->parent) {
        mount_node *parent = node->parent;
        node->parent = NULL;
        parent->children--;
        node_maybe_free(parent);
    }
    node_maybe_free(node);
}

void node_move(mount_node *node, mount_node *new_parent, const char *name)
{
    char *copy = strdup(name);
    if (!copy) {
        node_detach(node); /* unreachable by name rather than under a stale one */
        return;
    }
    mount_node *old_parent = node->parent;
    if (node->linked)
        unhash_name(node);
    free(node->name);
    node->name = copy;
    node->parent = new_parent;
    node->linked = true;
    new_parent->children++;
    uint32_t b = name_bucket(new_parent, copy);
    node->hash_next = by_name[b];
    by_name[b] = node;
    if (old_parent) {
        old_parent->children--;
        node_maybe_free(old_parent);
    }
}

bool node_path(const mount_node *node, const char *name, char *out)
{
    /* Components from the leaf up, then written out from the root down. */
    const char *parts[FS_MAX_PATH_LENGTH / 2];
    size_t count = 0, len = 0;
    if (name) {
        parts[count++] = name;
        len += strlen(name) + 1;
    }
    for (const mount_node *n = node; n != &root; n = n->parent) {
        if (!n || !n->linked || count == AF_ARRAY_LEN(parts))
            return false;
        parts[count++] = n->name;
        len += strlen(n->name) + 1;
    }
    if (len > FS_MAX_PATH_LENGTH)
        return false;
    if (count == 0) {
        strcpy(out, "/");
        return true;
    }
    size_t at = 0;
    while (count > 0) {
        const char *part = parts[--count];
        size_t n = strlen(part);
        out[at++] = '/';
        memcpy(out + at, part, n);
        at += n;
    }
    out[at] = '\0';
    return true;
}

/* Where a name is for the server, from what the nodes know (no server call). */
typedef enum node_where {
    WHERE_FOUND,               /* *at and out name it */
    WHERE_GONE,                /* the node is detached */
    WHERE_ANCHOR,              /* too far from any anchor: *anchor needs one first; *at and
                                  out name *anchor */
} node_where;

/* out gets the path of `name` under node (NULL: node) from `base`, an ancestor of node or
 * node itself, `len` bytes ("." for none, so the buffer carries its base). */
static void write_relative(const mount_node *node, const char *name, const mount_node *base, size_t len, char *out)
{
    if (len == 0) {
        strcpy(out, ".");
        return;
    }
    size_t at = len;
    out[at] = '\0';
    if (name) {
        size_t n = strlen(name);
        at -= n;
        memcpy(out + at, name, n);
        out[--at] = '/';
    }
    for (const mount_node *n = node; n != base; n = n->parent) {
        size_t k = strlen(n->name);
        at -= k;
        memcpy(out + at, n->name, k);
        out[--at] = '/';
    }
}

static node_where node_server_path(mount_node *node, const char *name, uint64_t *at, char *out,
                                   mount_node **anchor)
{
    *at = 0;
    if (node_path(node, name, out))
        return WHERE_FOUND;
    /* From the nearest anchor on the way up (the node's own included). */
    const mount_node *base = &root;
    size_t len = name ? strlen(name) + 1 : 0;
    for (const mount_node *n = node; n != &root; n = n->parent) {
        if (!n || !n->linked)
            return WHERE_GONE;
        if (n->anchored && base == &root)
            base = n;
        if (base == &root)
            len += strlen(n->name) + 1;
    }
    if (base != &root)
        *at = base->anchor_fd;
    if (len <= FS_MAX_PATH_LENGTH) {
        write_relative(node, name, base, len, out);
        return WHERE_FOUND;
    }
    /* The deepest directory on the way whose own path from the base fits. */
    size_t below = name ? strlen(name) + 1 : 0;
    mount_node *d = node;
    if (!name) {
        below += strlen(d->name) + 1;
        d = d->parent;
    }
    while (len - below > FS_MAX_PATH_LENGTH) {
        below += strlen(d->name) + 1;
        d = d->parent;
    }
    write_relative(d, NULL, base, len - below, out);
    *anchor = d;
    return WHERE_ANCHOR;
}

static void path_resolve(mount_op *op);

static void anchor_opened(mount_op *op, const fs_reply *r, const uint8_t *payload)
{
    AF_UNUSED(payload);
    if (r->status == FS_STATUS_TOO_MANY_OPEN_FILES && fd_cache_evict(op, path_resolve))
        return;
    if (r->status != FS_STATUS_SUCCESS) {
        mount_op_fail(op, mount_errno(r->status));
        return;
    }
    mount_node *d = node_get(op->anchor_node);
    if (d && d->linked && !d->anchored) {
        d->anchored = true;
        d->anchor_fd = r->data;
        fd_cache_count_pin(true);
    } else {
        fd_close_in_background(r->data, true); /* another op anchored it, or it went meanwhile */
    }
    path_resolve(op);
}

static void path_resolve(mount_op *op)
{
    mount_node *node = node_get(op->path_node);
    char *out = op->path_new ? op->new_path : op->path;
    uint64_t *at = op->path_new ? &op->new_at : &op->at;
    mount_node *anchor = NULL;
    node_where where = node ? node_server_path(node, op->path_name, at, out, &anchor) : WHERE_GONE;
    if (where == WHERE_FOUND) {
        op->path_next(op);
    } else if (where == WHERE_GONE) {
        mount_op_fail(op, ENOENT);
    } else if (++op->anchors_opened > FS_MAX_PATH_LENGTH) {
        mount_op_fail(op, ENAMETOOLONG); /* names change faster than anchors open */
    } else if (!mount_call_room()) {
        op->anchors_opened--;
        mount_wait_room(op, path_resolve);
    } else {
        op->anchor_node = anchor->id;
        fs_conn_start_opendir(&mount_ctx.conn, &op->call, *at, out);
        mount_called(op, anchor_opened);
    }
}

void mount_path(mount_op *op, mount_node *node, const char *name, bool new_path, void (*next)(mount_op *op))
{
    op->path_node = node->id;
    op->path_name = name;
    op->path_new = new_path;
    op->path_next = next;
    path_resolve(op);
}

void node_note_stat(mount_node *node, const fs_stat *rec)
{
    node->stat = *rec;
    node->stat_known = true;
    node->stat_epoch = mount_ctx.change_epoch;
}

void node_add_handle(mount_node *node, mount_handle *h)
{
    h->node = node;
    h->node_next = node->handles;
    node->handles = h;
    fd_cache_handle_added(h);
}

void node_remove_handle(mount_node *node, mount_handle *h)
{
    mount_handle **at = &node->handles;
    while (*at && *at != h)
        at = &(*at)->node_next;
    if (*at)
        *at = h->node_next;
    fd_cache_handle_removed(h);
    node_maybe_free(node);
}

bool node_any_fd(const mount_node *node, uint64_t *fd)
{
    for (const mount_handle *h = node->handles; h; h = h->node_next) {
        if (h->has_fd) {
            *fd = h->fd;
            return true;
        }
    }
    if (node->pinned)
        *fd = node->pin_fd;
    return node->pinned;
}

bool node_needs_pin(const mount_node *node)
{
    if (node->pinned)
        return false;
    for (const mount_handle *h = node->handles; h; h = h->node_next)
        if (!h->is_dir)
            return true;
    return false;
}

uint64_t node_pin_flags(const mount_node *node)
{
    for (const mount_handle *h = node->handles; h; h = h->node_next)
        if (!h->is_dir && (h->open_flags & FS_OPEN_FLAGS_ACCESS_MASK) != FS_OPEN_FLAGS_READ_ONLY)
            return FS_OPEN_FLAGS_READ_WRITE;
    return FS_OPEN_FLAGS_READ_ONLY;
}
