/* powercut: the workload's model. Each wrapper calls the engine and, once the call has
 * returned, appends the state it left to every file it changed, stamped with the log
 * position at which the call began (a cut before that position cannot show its effect). */
#include "tests/powercut/powercut.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pc_fill(uint8_t *buf, uint32_t len, uint64_t seed)
{
    fill_pattern(buf, len, seed * 0x9E3779B97F4A7C15ull + len);
}

void pc_model_free(pc_model *m)
{
    for (uint32_t i = 0; i < m->nfiles; i++) {
        pc_file *f = &m->files[i];
        for (uint32_t j = 0; j < f->nv; j++) {
            free(f->v[j].path);
            free(f->v[j].data);
        }
        free(f->v);
        free(f->d);
    }
    free(m->files);
    memset(m, 0, sizeof(*m));
}

static uint64_t log_pos(pc_ctx *c)
{
    return ram_device_log_count(&c->fx->dev);
}

static bool fail(pc_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(pc_ctx *c, const char *fmt, ...)
{
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, sizeof c->why, fmt, ap);
        va_end(ap);
        c->failed = true;
    }
    return false;
}

static const pc_version *latest(const pc_file *f)
{
    return &f->v[f->nv - 1];
}

/* The file or directory that `path` names now, or UINT32_MAX. */
static uint32_t find_path(const pc_model *m, const char *path)
{
    for (uint32_t i = 0; i < m->nfiles; i++) {
        const pc_version *v = latest(&m->files[i]);
        if (v->path && strcmp(v->path, path) == 0)
            return i;
    }
    return UINT32_MAX;
}

static void add_version(pc_file *f, uint64_t start, const char *path, const uint8_t *data, uint32_t size)
{
    if (f->nv == f->cap_v) {
        f->cap_v = f->cap_v ? f->cap_v * 2 : 8;
        f->v = realloc(f->v, f->cap_v * sizeof(*f->v));
    }
    pc_version *v = &f->v[f->nv++];
    v->start = start;
    v->path = path ? strdup(path) : NULL;
    v->size = size;
    v->data = NULL;
    if (size > 0) {
        v->data = malloc(size);
        memcpy(v->data, data, size);
    }
}

static uint32_t new_file(pc_model *m, bool is_dir)
{
    if (m->nfiles == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->files = realloc(m->files, m->cap * sizeof(*m->files));
    }
    pc_file *f = &m->files[m->nfiles];
    memset(f, 0, sizeof(*f));
    f->is_dir = is_dir;
    return m->nfiles++;
}

/* The index of the last FLUSH the device completed (-1: none yet). */
static int64_t last_flush(pc_ctx *c)
{
    for (uint64_t i = ram_device_log_count(&c->fx->dev); i-- > 0;) {
        const ram_device_log_entry *e = ram_device_log_at(&c->fx->dev, i);
        if (e->code == BLK_REQ_FLUSH && e->status == BLK_RESP_OK)
            return (int64_t)i;
    }
    return -1;
}

static void add_durable(pc_file *f, int64_t flush, uint32_t version)
{
    if (f->nd == f->cap_d) {
        f->cap_d = f->cap_d ? f->cap_d * 2 : 8;
        f->d = realloc(f->d, f->cap_d * sizeof(*f->d));
    }
    f->d[f->nd++] = (pc_durable){ flush, version };
}

/* ---- files ------------------------------------------------------------------------------ */

bool pc_open(pc_ctx *c, const char *path, bool create, pc_handle *h)
{
    uint64_t start = log_pos(c);
    uint64_t flags = VFS_OPEN_READ_WRITE | (create ? VFS_OPEN_CREATE : 0);
    vfs_status st = fat_open(c->vol, path, strlen(path), flags, &h->node);
    if (st != VFS_OK)
        return fail(c, "open %s: status %d", path, st);
    uint32_t id = find_path(c->model, path);
    if (id == UINT32_MAX) {
        id = new_file(c->model, false);
        add_version(&c->model->files[id], start, path, NULL, 0);
    }
    h->file = id;
    return true;
}

/* The file's contents after writing [offset, offset + len) (NULL data: zeros). */
static void write_version(pc_ctx *c, pc_handle *h, uint64_t start, uint32_t offset, const void *data, uint32_t len,
                          uint32_t new_size)
{
    pc_file *f = &c->model->files[h->file];
    const pc_version *old = latest(f);
    uint8_t *buf = calloc(1, new_size ? new_size : 1);
    if (old->size > 0 && new_size > 0)
        memcpy(buf, old->data, old->size < new_size ? old->size : new_size);
    if (data && offset < new_size)
        memcpy(buf + offset, data, len);
    char *path = old->path ? strdup(old->path) : NULL;
    add_version(f, start, path, buf, new_size);
    free(path);
    free(buf);
}

bool pc_write(pc_ctx *c, pc_handle *h, uint32_t offset, const void *data, uint32_t len)
{
    uint64_t start = log_pos(c);
    size_t done = 0;
    vfs_status st = fat_write(h->node, offset, data, len, &done);
    if (st != VFS_OK || done != len)
        return fail(c, "write %u at %u: status %d, %zu done", len, offset, st, done);
    uint32_t old = latest(&c->model->files[h->file])->size;
    write_version(c, h, start, offset, data, len, offset + len > old ? offset + len : old);
    return true;
}

bool pc_append(pc_ctx *c, pc_handle *h, const void *data, uint32_t len)
{
    uint64_t start = log_pos(c);
    size_t done = 0;
    uint64_t at = 0;
    vfs_status st = fat_append(h->node, data, len, &done, &at);
    if (st != VFS_OK || done != len)
        return fail(c, "append %u: status %d", len, st);
    write_version(c, h, start, (uint32_t)at, data, len, (uint32_t)at + len);
    return true;
}

bool pc_truncate(pc_ctx *c, pc_handle *h, uint32_t len)
{
    uint64_t start = log_pos(c);
    vfs_status st = fat_truncate(h->node, len);
    if (st != VFS_OK)
        return fail(c, "truncate to %u: status %d", len, st);
    write_version(c, h, start, 0, NULL, 0, len);
    return true;
}

bool pc_fsync(pc_ctx *c, pc_handle *h)
{
    vfs_status st = fat_fsync(h->node);
    if (st != VFS_OK)
        return fail(c, "fsync: status %d", st);
    pc_file *f = &c->model->files[h->file];
    add_durable(f, last_flush(c), f->nv - 1);
    return true;
}

bool pc_close(pc_ctx *c, pc_handle *h)
{
    vfs_status st = fat_close(h->node);
    h->node = NULL;
    if (st != VFS_OK)
        return fail(c, "close: status %d", st);
    return true;
}

static bool create_file(pc_ctx *c, const char *path, const void *data, uint32_t len, int64_t mtime)
{
    uint64_t start = log_pos(c);
    fat_node *n;
    vfs_status st = fat_open(c->vol, path, strlen(path),
                            VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE | VFS_OPEN_TRUNCATE, &n);
    if (st != VFS_OK)
        return fail(c, "create %s: status %d", path, st);
    size_t done = 0;
    st = len ? fat_write(n, 0, data, len, &done) : VFS_OK;
    vfs_status times = mtime >= 0 ? fat_set_times(c->vol, path, strlen(path), -1, mtime) : VFS_OK;
    vfs_status st2 = fat_close(n);
    if (st != VFS_OK || times != VFS_OK || st2 != VFS_OK || done != len)
        return fail(c, "create %s: write status %d, set times %d, close %d", path, st, times, st2);
    uint32_t id = find_path(c->model, path);
    if (id == UINT32_MAX)
        id = new_file(c->model, false);
    add_version(&c->model->files[id], start, path, data, len);
    return true;
}

bool pc_create(pc_ctx *c, const char *path, const void *data, uint32_t len)
{
    return create_file(c, path, data, len, -1);
}

bool pc_copy_in(pc_ctx *c, const char *path, const void *data, uint32_t len, int64_t mtime)
{
    return create_file(c, path, data, len, mtime);
}

/* ---- namespace -------------------------------------------------------------------------- */

bool pc_unlink(pc_ctx *c, const char *path)
{
    uint64_t start = log_pos(c);
    vfs_status st = fat_unlink(c->vol, path, strlen(path));
    if (st != VFS_OK)
        return fail(c, "unlink %s: status %d", path, st);
    uint32_t id = find_path(c->model, path);
    if (id != UINT32_MAX)
        add_version(&c->model->files[id], start, NULL, NULL, 0);
    return true;
}

bool pc_mkdir(pc_ctx *c, const char *path)
{
    uint64_t start = log_pos(c);
    vfs_status st = fat_mkdir(c->vol, path, strlen(path));
    if (st != VFS_OK)
        return fail(c, "mkdir %s: status %d", path, st);
    uint32_t id = new_file(c->model, true);
    add_version(&c->model->files[id], start, path, NULL, 0);
    return true;
}

bool pc_rmdir(pc_ctx *c, const char *path)
{
    uint64_t start = log_pos(c);
    vfs_status st = fat_rmdir(c->vol, path, strlen(path));
    if (st != VFS_OK)
        return fail(c, "rmdir %s: status %d", path, st);
    uint32_t id = find_path(c->model, path);
    if (id != UINT32_MAX)
        add_version(&c->model->files[id], start, NULL, NULL, 0);
    return true;
}

bool pc_rename(pc_ctx *c, const char *from, const char *to)
{
    uint64_t start = log_pos(c);
    vfs_status st = fat_rename(c->vol, from, strlen(from), to, strlen(to));
    if (st != VFS_OK)
        return fail(c, "rename %s -> %s: status %d", from, to, st);
    pc_model *m = c->model;
    uint32_t target = find_path(m, to);
    uint32_t source = find_path(m, from);
    if (target != UINT32_MAX && target != source)
        add_version(&m->files[target], start, NULL, NULL, 0);
    size_t fl = strlen(from);
    for (uint32_t i = 0; i < m->nfiles; i++) {
        pc_file *f = &m->files[i];
        const pc_version *v = latest(f);
        if (!v->path || strncmp(v->path, from, fl) != 0 || (v->path[fl] != '\0' && v->path[fl] != '/'))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s%s", to, v->path + fl);
        uint8_t *data = v->size ? malloc(v->size) : NULL;
        if (data)
            memcpy(data, v->data, v->size);
        add_version(f, start, path, data, v->size);
        free(data);
    }
    return true;
}

bool pc_rename_fails(pc_ctx *c, const char *from, const char *to, vfs_status want)
{
    vfs_status st = fat_rename(c->vol, from, strlen(from), to, strlen(to));
    if (st != want)
        return fail(c, "rename %s -> %s: status %d, expected %d", from, to, st, want);
    return true;
}

bool pc_sync(pc_ctx *c)
{
    /* What completed before the call is what it covers. */
    pc_model *m = c->model;
    uint32_t n = m->nfiles;
    uint32_t *upto = malloc((n ? n : 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        upto[i] = m->files[i].nv - 1;
    vfs_status st = fat_sync(c->vol);
    if (st != VFS_OK) {
        free(upto);
        return fail(c, "sync: status %d", st);
    }
    int64_t flush = last_flush(c);
    for (uint32_t i = 0; i < n; i++)
        add_durable(&m->files[i], flush, upto[i]);
    free(upto);
    return true;
}
