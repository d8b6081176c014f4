/* FAT attributes of a path: read them, change the read-only, hidden, system and archive
 * bits (vfs get_attributes / set_attributes; FAT's bits are the interface's). The change
 * goes into the node, which every opener shares, and its directory entry is written at
 * once under the node's lock, as set_times does. An open file stays writable through the
 * fds opened before it was made read-only, as on vfat. */
#include "fat/fat_engine.h"

_Static_assert(VFS_ATTR_READ_ONLY == FAT_ATTR_READ_ONLY && VFS_ATTR_HIDDEN == FAT_ATTR_HIDDEN &&
                   VFS_ATTR_SYSTEM == FAT_ATTR_SYSTEM && VFS_ATTR_DIRECTORY == FAT_ATTR_DIRECTORY &&
                   VFS_ATTR_ARCHIVE == FAT_ATTR_ARCHIVE,
               "the interface's attribute bits are FAT's");

#define SHOWN (VFS_ATTR_CHANGEABLE | VFS_ATTR_DIRECTORY)

vfs_status fat_get_attributes_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint32_t *out)
{
    fat_node *node;
    vfs_status st = fat_path_node(vol, base, path, len, &node);
    if (st != VFS_OK)
        return st;
    *out = node->attr & SHOWN;
    return fat_node_put(node);
}

vfs_status fat_set_attributes_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint32_t set, uint32_t clear,
                              uint32_t *out)
{
    if ((set | clear) & ~(uint32_t)VFS_ATTR_CHANGEABLE)
        return VFS_INVALID_ARGUMENT;
    if (vol->mounted && vol->read_only)
        return VFS_READ_ONLY_FS;
    fat_node *node;
    vfs_status st = fat_path_node(vol, base, path, len, &node);
    if (st != VFS_OK)
        return st;
    if (node->is_root) {
        fat_node_put(node);
        return VFS_INVALID_ARGUMENT; /* the root has no entry to hold them */
    }
    fp_rwlock_write_lock(vol->pool, &node->lock);
    uint8_t before = node->attr;
    node->attr = (uint8_t)((node->attr & ~clear) | set);
    st = node->unlinked ? VFS_NO_FILE : node->attr == before ? VFS_OK : fat_node_write_dirent(node);
    if (st != VFS_OK)
        node->attr = before;
    *out = node->attr & SHOWN;
    fp_rwlock_write_unlock(vol->pool, &node->lock);
    vfs_status st2 = fat_node_put(node);
    return st != VFS_OK ? st : st2;
}

vfs_status fat_get_attributes(fat_volume *vol, const char *path, size_t len, uint32_t *out)
{
    return fat_get_attributes_at(vol, NULL, path, len, out);
}

vfs_status fat_set_attributes(fat_volume *vol, const char *path, size_t len, uint32_t set, uint32_t clear,
                              uint32_t *out)
{
    return fat_set_attributes_at(vol, NULL, path, len, set, clear, out);
}
