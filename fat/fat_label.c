/* fat_label: the boot sector's label field and the root's volume-label entry (see
 * fat_label.h). */
#include "fat/fat_label.h"

#include "fat/fat_entry.h"
#include "fat/fat_layout.h"

static bool label_char_valid(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return true;
    if (c >= '0' && c <= '9')
        return true;
    switch (c) {
    case ' ': case '!': case '#': case '$': case '%': case '&': case '\'': case '(': case ')':
    case '-': case '@': case '^': case '_': case '`': case '{': case '}': case '~':
        return true;
    default:
        return false;
    }
}

bool fat_label_make(const char *label, uint8_t out[11], bool *has_label)
{
    af_memcpy(out, "NO NAME    ", 11);
    *has_label = false;
    if (label == NULL || label[0] == '\0')
        return true;
    size_t len = af_strnlen(label, 12);
    if (len > 11 || label[0] == ' ')
        return false;
    af_memset(out, ' ', 11);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)label[i];
        if (c >= 'a' && c <= 'z')
            c = (uint8_t)(c - 0x20);
        if (!label_char_valid(c))
            return false;
        out[i] = c;
    }
    *has_label = true;
    return true;
}

static vfs_status io(blk_status s) { return vfs_status_from_blk(s); }

/* Where the root's volume-label entry and its first free entry are (0: none). */
typedef struct root_slots {
    uint64_t label;
    uint64_t free;
} root_slots;

/* Look at `count` entries from byte `at`; true once the end marker was met. */
static vfs_status scan_entries(blk_cache *cache, uint64_t at, uint64_t count, root_slots *out, bool *end)
{
    for (uint64_t i = 0; i < count; i++, at += FAT_DIRENT_SIZE) {
        uint8_t e[FAT_DIRENT_SIZE];
        vfs_status st = io(blk_cache_read_bytes(cache, at, e, sizeof e));
        if (st != VFS_OK)
            return st;
        if (e[FAT_DIRENT_NAME] == FAT_DIRENT_END || e[FAT_DIRENT_NAME] == FAT_DIRENT_DELETED) {
            if (!out->free)
                out->free = at;
            if (e[FAT_DIRENT_NAME] == FAT_DIRENT_END) {
                *end = true;
                return VFS_OK;
            }
            continue;
        }
        if ((e[FAT_DIRENT_ATTR] & FAT_ATTR_LONG_NAME_MASK) == FAT_ATTR_VOLUME_ID && !out->label)
            out->label = at;
    }
    return VFS_OK;
}

static vfs_status find_root_slots(blk_cache *cache, const fat_geometry *g, root_slots *out)
{
    af_memset(out, 0, sizeof *out);
    bool end = false;
    if (g->type != FAT_TYPE_32)
        return scan_entries(cache, g->root_dir_offset, g->root_entries, out, &end);
    uint32_t cluster = g->root_cluster;
    uint64_t per_cluster = g->bytes_per_cluster / FAT_DIRENT_SIZE;
    for (uint32_t steps = 0; !end && steps < g->cluster_count; steps++) {
        vfs_status st = scan_entries(cache, fat_cluster_offset(g, cluster), per_cluster, out, &end);
        if (st != VFS_OK || end)
            return st;
        uint8_t raw[4];
        st = io(blk_cache_read_bytes(cache, fat_entry_offset(g, g->active_fat, cluster), raw,
                                     fat_entry_size(g->type)));
        if (st != VFS_OK)
            return st;
        uint32_t next = fat_entry_get(g->type, cluster, raw);
        if (next >= fat_eoc_min(g->type))
            return VFS_OK;
        if (next < FAT_FIRST_CLUSTER || next > g->max_cluster)
            return VFS_CORRUPT;
        cluster = next;
    }
    return VFS_OK;
}

static uint64_t boot_label_offset(const fat_geometry *g)
{
    return g->volume_offset + (g->type == FAT_TYPE_32 ? FAT_BS32_VOLUME_LABEL : FAT_BS16_VOLUME_LABEL);
}

vfs_status fat_label_read(blk_cache *cache, const fat_geometry *g, uint8_t label[11], bool *has_label)
{
    root_slots slots;
    vfs_status st = find_root_slots(cache, g, &slots);
    if (st != VFS_OK)
        return st;
    if (slots.label) {
        st = io(blk_cache_read_bytes(cache, slots.label + FAT_DIRENT_NAME, label, 11));
        *has_label = st == VFS_OK;
        return st;
    }
    af_memcpy(label, g->label, 11);
    *has_label = g->has_serial && af_memcmp(label, "NO NAME    ", 11) != 0;
    return VFS_OK;
}

vfs_status fat_label_write(blk_cache *cache, const fat_geometry *g, const char *label, fat_datetime when)
{
    uint8_t name[11];
    bool has_label;
    if (!fat_label_make(label, name, &has_label))
        return VFS_INVALID_ARGUMENT;
    root_slots slots;
    vfs_status st = find_root_slots(cache, g, &slots);
    if (st != VFS_OK)
        return st;
    if (has_label && !slots.label && !slots.free)
        return VFS_DIRECTORY_IS_FULL;
    if (g->has_serial) {
        uint64_t at = boot_label_offset(g);
        if (g->backup_boot_sector) {
            uint64_t backup = at + (uint64_t)g->backup_boot_sector * g->bytes_per_sector;
            uint8_t old[11];
            st = io(blk_cache_read_bytes(cache, backup, old, sizeof old));
            if (st == VFS_OK && af_memcmp(old, g->label, sizeof old) == 0)
                st = io(blk_cache_write_bytes(cache, backup, name, sizeof name));
            if (st != VFS_OK)
                return st;
        }
        st = io(blk_cache_write_bytes(cache, at, name, sizeof name));
        if (st != VFS_OK)
            return st;
    }
    if (has_label) {
        uint8_t e[FAT_DIRENT_SIZE];
        af_memset(e, 0, sizeof e);
        af_memcpy(e + FAT_DIRENT_NAME, name, 11);
        e[FAT_DIRENT_ATTR] = FAT_ATTR_VOLUME_ID;
        af_store_le16(e + FAT_DIRENT_WRITE_TIME, when.time);
        af_store_le16(e + FAT_DIRENT_WRITE_DATE, when.date);
        st = io(blk_cache_write_bytes(cache, slots.label ? slots.label : slots.free, e, sizeof e));
    } else if (slots.label) {
        uint8_t deleted = FAT_DIRENT_DELETED;
        st = io(blk_cache_write_bytes(cache, slots.label + FAT_DIRENT_NAME, &deleted, 1));
    }
    if (st == VFS_OK)
        st = io(blk_cache_flush(cache));
    return st;
}
