/* The FAT engine behind the engine interface (vfs/vfs.h): casts between the interface's
 * opaque handles and the engine's own, nothing more. */
#include "fat/fat_engine.h"

static fat_vfs *fat_of(vfs_volume *v) { return (fat_vfs *)(void *)v; }
static const fat_vfs *fat_of_const(const vfs_volume *v) { return (const fat_vfs *)(const void *)v; }
static fat_node *node_of(vfs_node *n) { return (fat_node *)(void *)n; }

static vfs_status fv_mount(vfs_volume *v)
{
    fat_vfs *f = fat_of(v);
    return fat_mount(&f->volume, f->cache, &f->config, NULL);
}

static vfs_status fv_unmount(vfs_volume *v) { return fat_unmount(&fat_of(v)->volume); }
static bool fv_mounted(const vfs_volume *v) { return fat_of_const(v)->volume.mounted; }
static vfs_status fv_sync(vfs_volume *v) { return fat_sync(&fat_of(v)->volume); }

static void fv_mount_report(const vfs_volume *v, vfs_mount_report *out)
{
    *out = *fat_get_mount_report(&fat_of_const(v)->volume);
}

static vfs_status fv_statfs(vfs_volume *v, vfs_statfs *out)
{
    fat_statfs_info info;
    vfs_status st = fat_statfs(&fat_of(v)->volume, &info);
    if (st != VFS_OK)
        return st;
    *out = (vfs_statfs){
        .block_size = info.cluster_size,
        .blocks = info.total_clusters,
        .blocks_free = info.free_clusters,
        .name_max = info.name_max,
        .fat_type = info.fat_type,
        .read_only = info.read_only,
    };
    return VFS_OK;
}

static fat_node *base_of(const vfs_path *p) { return (fat_node *)(void *)p->base; }

static vfs_status fv_stat(vfs_volume *v, const vfs_path *p, vfs_stat *out)
{
    return fat_stat_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, out);
}

static vfs_status fv_open(vfs_volume *v, const vfs_path *p, uint64_t flags, vfs_node **out)
{
    return fat_open_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, flags, (fat_node **)(void *)out);
}

static vfs_status fv_opendir(vfs_volume *v, const vfs_path *p, vfs_node **out)
{
    return fat_opendir_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, (fat_node **)(void *)out);
}

static vfs_status fv_unlink(vfs_volume *v, const vfs_path *p)
{
    return fat_unlink_at(&fat_of(v)->volume, base_of(p), p->chars, p->len);
}

static vfs_status fv_mkdir(vfs_volume *v, const vfs_path *p)
{
    return fat_mkdir_at(&fat_of(v)->volume, base_of(p), p->chars, p->len);
}

static vfs_status fv_rmdir(vfs_volume *v, const vfs_path *p)
{
    return fat_rmdir_at(&fat_of(v)->volume, base_of(p), p->chars, p->len);
}

static vfs_status fv_rename(vfs_volume *v, const vfs_path *from, const vfs_path *to)
{
    return fat_rename_at(&fat_of(v)->volume, base_of(from), from->chars, from->len, base_of(to), to->chars, to->len);
}

static vfs_status fv_set_times(vfs_volume *v, const vfs_path *p, int64_t atime, int64_t mtime)
{
    return fat_set_times_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, atime, mtime);
}

static vfs_status fv_fset_times(vfs_node *n, int64_t atime, int64_t mtime)
{
    return fat_set_times_node(node_of(n), atime, mtime);
}

static vfs_status fv_get_attributes(vfs_volume *v, const vfs_path *p, uint32_t *out)
{
    return fat_get_attributes_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, out);
}

static vfs_status fv_set_attributes(vfs_volume *v, const vfs_path *p, uint32_t set, uint32_t clear, uint32_t *out)
{
    return fat_set_attributes_at(&fat_of(v)->volume, base_of(p), p->chars, p->len, set, clear, out);
}

static vfs_status fv_close(vfs_node *n) { return fat_close(node_of(n)); }
static bool fv_is_dir(const vfs_node *n) { return ((const fat_node *)(const void *)n)->is_dir; }
static uint64_t fv_size(vfs_node *n) { return fat_size(node_of(n)); }
static vfs_status fv_fstat(vfs_node *n, vfs_stat *out) { return fat_fstat(node_of(n), out); }

static vfs_status fv_read(vfs_node *n, uint64_t offset, void *dst, size_t len, size_t *done)
{
    return fat_read(node_of(n), offset, dst, len, done);
}

static vfs_status fv_write(vfs_node *n, uint64_t offset, const void *src, size_t len, size_t *done)
{
    return fat_write(node_of(n), offset, src, len, done);
}

static vfs_status fv_append(vfs_node *n, const void *src, size_t len, size_t *done, uint64_t *offset)
{
    return fat_append(node_of(n), src, len, done, offset);
}

static vfs_status fv_truncate(vfs_node *n, uint64_t length) { return fat_truncate(node_of(n), length); }
static vfs_status fv_fsync(vfs_node *n) { return fat_fsync(node_of(n)); }

static vfs_status fv_readdir(vfs_node *dir, uint64_t *pos, char *name, size_t *name_len, vfs_stat *st)
{
    return fat_readdir(node_of(dir), pos, name, name_len, st);
}

static const vfs_ops fat_ops = {
    .mount = fv_mount,
    .unmount = fv_unmount,
    .mounted = fv_mounted,
    .sync = fv_sync,
    .mount_report = fv_mount_report,
    .statfs = fv_statfs,
    .stat = fv_stat,
    .open = fv_open,
    .opendir = fv_opendir,
    .unlink = fv_unlink,
    .mkdir = fv_mkdir,
    .rmdir = fv_rmdir,
    .rename = fv_rename,
    .set_times = fv_set_times,
    .fset_times = fv_fset_times,
    .close = fv_close,
    .is_dir = fv_is_dir,
    .size = fv_size,
    .fstat = fv_fstat,
    .read = fv_read,
    .write = fv_write,
    .append = fv_append,
    .truncate = fv_truncate,
    .fsync = fv_fsync,
    .readdir = fv_readdir,
    .get_attributes = fv_get_attributes,
    .set_attributes = fv_set_attributes,
};

vfs_engine fat_vfs_engine(fat_vfs *f, blk_cache *cache, const fat_config *cfg)
{
    af_memset(&f->volume, 0, sizeof f->volume);
    f->cache = cache;
    f->config = *cfg;
    return (vfs_engine){.ops = &fat_ops, .volume = (vfs_volume *)(void *)f};
}
