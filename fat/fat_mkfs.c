/* fat_mkfs: layout planning (like mkfs.fat's defaults) and writing an empty volume. */
#include "fat/fat_mkfs.h"

#include "fat/fat_label.h"
#include "fat/fat_layout.h"

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

static uint64_t fat_bytes_for(uint32_t type, uint64_t clusters)
{
    uint64_t entries = clusters + 2;
    return type == 12 ? (entries * 3 + 1) / 2 : type == 16 ? entries * 2 : entries * 4;
}

/* mkfs.fat-like default cluster sizes in bytes. */
static uint32_t default_cluster_bytes(uint32_t type, uint64_t volume_bytes)
{
    if (type == 32) {
        if (volume_bytes <= 8 * GIB)
            return 4096;
        if (volume_bytes <= 16 * GIB)
            return 8192;
        if (volume_bytes <= 32 * GIB)
            return 16384;
        return 32768;
    }
    if (volume_bytes < 4 * MIB)
        return 1024;
    if (volume_bytes < 256 * MIB)
        return 2048;
    if (volume_bytes < 512 * MIB)
        return 4096;
    if (volume_bytes < 1 * GIB)
        return 8192;
    if (volume_bytes < 2 * GIB)
        return 16384;
    return 32768;
}

typedef struct layout {
    uint32_t type, spc, reserved, root_entries, fat_sectors, cluster_count;
} layout;

/* Sizes the FATs for a type and cluster size, then pads the reserved area so the data
 * region starts on a cluster boundary. False if nothing is left for data. */
static bool compute_layout(uint32_t bps, uint32_t total, uint32_t fat_count,
                           bool align, layout *l)
{
    uint32_t root_sectors = l->root_entries * 32u / bps;
    uint64_t fixed = (uint64_t)l->reserved + root_sectors;
    uint64_t fs = 0;
    for (int i = 0; i < 64; i++) {
        if (fixed + fat_count * fs >= total)
            return false;
        uint64_t clusters = (total - fixed - fat_count * fs) / l->spc;
        uint64_t need = (fat_bytes_for(l->type, clusters) + bps - 1) / bps;
        if (need <= fs)
            break;
        fs = need;
    }
    uint64_t first_data = fixed + fat_count * fs;
    if (align && first_data % l->spc != 0) {
        uint64_t pad = l->spc - first_data % l->spc;
        l->reserved += (uint32_t)pad;
        first_data += pad;
    }
    if (first_data >= total || l->reserved > 0xFFFFu || fs > 0xFFFFFFFFu || (l->type != 32 && fs > 0xFFFFu))
        return false;
    l->fat_sectors = (uint32_t)fs;
    l->cluster_count = (uint32_t)((total - first_data) / l->spc);
    return l->cluster_count > 0;
}

static bool count_fits(uint32_t type, uint32_t count)
{
    if (type == 12)
        return count <= FAT12_MAX_CLUSTERS;
    if (type == 16)
        return count > FAT12_MAX_CLUSTERS && count <= FAT16_MAX_CLUSTERS;
    return count > FAT16_MAX_CLUSTERS && count <= FAT32_MAX_CLUSTERS;
}

static uint32_t max_clusters(uint32_t type)
{
    return type == 12 ? FAT12_MAX_CLUSTERS : type == 16 ? FAT16_MAX_CLUSTERS : FAT32_MAX_CLUSTERS;
}

/* Lays out `type`; when the cluster size is ours to choose (and `search`), doubles or halves
 * it from the default until the cluster count fits the type. */
static bool layout_type(const fat_mkfs_options *opt, uint32_t bps, uint32_t total, uint64_t volume_bytes,
                        uint32_t fat_count, uint32_t type, bool search, layout *out)
{
    layout l;
    l.type = type;
    if (opt->sectors_per_cluster != 0) {
        l.spc = opt->sectors_per_cluster;
        search = false;
    } else {
        uint32_t bytes = default_cluster_bytes(type, volume_bytes);
        l.spc = bytes <= bps ? 1 : bytes / bps;
    }
    l.root_entries = 0;
    if (type != 32) {
        uint32_t per_sector = bps / 32u;
        uint32_t want = opt->root_entries ? opt->root_entries : volume_bytes <= 2880 * KIB ? 224 : 512;
        l.root_entries = (want + per_sector - 1) / per_sector * per_sector;
        if (l.root_entries > 0xFFFFu)
            return false;
    }
    uint32_t base_reserved = type == 32 ? 32 : 1;
    l.reserved = opt->reserved_sectors > base_reserved ? opt->reserved_sectors : base_reserved;
    uint32_t max_spc = 65536u / bps;
    for (int i = 0; i < 16; i++) {
        layout t = l;
        bool ok = compute_layout(bps, total, fat_count, !opt->no_align, &t);
        if (ok && count_fits(type, t.cluster_count)) {
            *out = t;
            return true;
        }
        if (!ok || !search)
            return false;
        if (t.cluster_count > max_clusters(type)) {
            if (l.spc >= max_spc)
                return false;
            l.spc *= 2;
        } else {
            if (l.spc == 1)
                return false;
            l.spc /= 2;
        }
    }
    return false;
}

static vfs_status plan_layout(const fat_mkfs_options *opt, uint32_t bps, uint32_t total, uint64_t volume_bytes,
                             uint32_t fat_count, layout *out)
{
    if (opt->fat_type != 0)
        return layout_type(opt, bps, total, volume_bytes, fat_count, opt->fat_type, true, out) ? VFS_OK
                                                                                              : VFS_NO_SPACE;
    /* Automatic, like mkfs.fat: FAT32 from 512 MiB; below, FAT12 if the default cluster
     * size gives few enough clusters, else FAT16 (then FAT32) with an adjusted size. */
    if (volume_bytes < 512 * MIB) {
        if (layout_type(opt, bps, total, volume_bytes, fat_count, 12, false, out) ||
            layout_type(opt, bps, total, volume_bytes, fat_count, 16, true, out))
            return VFS_OK;
    }
    return layout_type(opt, bps, total, volume_bytes, fat_count, 32, true, out) ? VFS_OK
                                                                                : VFS_NO_SPACE;
}

void fat_mkfs_boot_sector(const fat_mkfs_options *opt, const fat_geometry *g, uint8_t b[512])
{
    af_memset(b, 0, 512);
    bool fat32 = g->type == FAT_TYPE_32;
    b[0] = 0xEB;
    b[1] = fat32 ? 0x58 : 0x3C;
    b[2] = 0x90;
    af_memcpy(b + FAT_BS_OEM_NAME, "ASYNCFAT", 8);
    af_store_le16(b + FAT_BPB_BYTES_PER_SECTOR, (uint16_t)g->bytes_per_sector);
    b[FAT_BPB_SECTORS_PER_CLUSTER] = (uint8_t)g->sectors_per_cluster;
    af_store_le16(b + FAT_BPB_RESERVED_SECTORS, (uint16_t)g->reserved_sectors);
    b[FAT_BPB_FAT_COUNT] = (uint8_t)g->fat_count;
    af_store_le16(b + FAT_BPB_ROOT_ENTRIES, (uint16_t)g->root_entries);
    if (!fat32 && g->total_sectors <= 0xFFFFu)
        af_store_le16(b + FAT_BPB_TOTAL_SECTORS_16, (uint16_t)g->total_sectors);
    else
        af_store_le32(b + FAT_BPB_TOTAL_SECTORS_32, g->total_sectors);
    b[FAT_BPB_MEDIA] = g->media;
    af_store_le16(b + FAT_BPB_SECTORS_PER_TRACK, 32);
    af_store_le16(b + FAT_BPB_HEADS, 64);
    af_store_le32(b + FAT_BPB_HIDDEN_SECTORS, opt->hidden_sectors);
    size_t ext = FAT_BS16_DRIVE_NUMBER, code = FAT_BS16_BOOT_CODE;
    const char *fs_type = g->type == FAT_TYPE_12 ? "FAT12   " : "FAT16   ";
    if (fat32) {
        af_store_le32(b + FAT_BPB32_FAT_SIZE, g->fat_sectors);
        af_store_le32(b + FAT_BPB32_ROOT_CLUSTER, g->root_cluster);
        af_store_le16(b + FAT_BPB32_FSINFO_SECTOR, (uint16_t)g->fsinfo_sector);
        af_store_le16(b + FAT_BPB32_BACKUP_BOOT, (uint16_t)g->backup_boot_sector);
        ext = FAT_BS32_DRIVE_NUMBER;
        code = FAT_BS32_BOOT_CODE;
        fs_type = "FAT32   ";
    } else {
        af_store_le16(b + FAT_BPB_FAT_SIZE_16, (uint16_t)g->fat_sectors);
    }
    /* drive number, state, signature, id, label, type: the same shape in both layouts */
    b[ext] = 0x80;
    b[ext + 2] = FAT_EXTENDED_BOOT_SIGNATURE;
    af_store_le32(b + ext + 3, g->volume_id);
    af_memcpy(b + ext + 7, g->label, 11);
    af_memcpy(b + ext + 18, fs_type, 8);
    /* not bootable: the jump lands on "hlt; jmp $-1" */
    b[code] = 0xF4;
    b[code + 1] = 0xEB;
    b[code + 2] = 0xFD;
    af_store_le16(b + FAT_BS_SIGNATURE, FAT_BS_SIGNATURE_VALUE);
}

vfs_status fat_mkfs_plan(const fat_mkfs_options *opt, uint64_t device_bytes, fat_geometry *geo)
{
    uint32_t bps = opt->bytes_per_sector ? opt->bytes_per_sector : 512;
    if (!af_is_pow2(bps) || bps < 512 || bps > 4096)
        return VFS_INVALID_ARGUMENT;
    if (opt->fat_type != 0 && opt->fat_type != 12 && opt->fat_type != 16 && opt->fat_type != 32)
        return VFS_INVALID_ARGUMENT;
    if (opt->sectors_per_cluster != 0 &&
        (!af_is_pow2(opt->sectors_per_cluster) || (uint64_t)opt->sectors_per_cluster * bps > 65536u))
        return VFS_INVALID_ARGUMENT;
    uint32_t fat_count = opt->fat_count ? opt->fat_count : 2;
    uint8_t media = opt->media ? opt->media : 0xF8;
    if (fat_count > 2 || (media != 0xF0 && media < 0xF8) || opt->reserved_sectors > 0xFFFFu)
        return VFS_INVALID_ARGUMENT;
    if (opt->volume_offset % bps != 0 || opt->volume_offset > device_bytes)
        return VFS_INVALID_ARGUMENT;
    uint64_t volume_bytes = opt->volume_bytes ? opt->volume_bytes : device_bytes - opt->volume_offset;
    if (volume_bytes > device_bytes - opt->volume_offset)
        return VFS_INVALID_ARGUMENT;
    uint8_t label[11];
    bool has_label;
    if (!fat_label_make(opt->label, label, &has_label))
        return VFS_INVALID_ARGUMENT;
    uint64_t total64 = volume_bytes / bps;
    if (total64 > 0xFFFFFFFFu)
        total64 = 0xFFFFFFFFu;
    if (total64 < 16)
        return VFS_NO_SPACE;
    uint32_t total = (uint32_t)total64;
    volume_bytes = (uint64_t)total * bps;

    layout l;
    vfs_status st = plan_layout(opt, bps, total, volume_bytes, fat_count, &l);
    if (st != VFS_OK)
        return st;

    fat_geometry g;
    af_memset(&g, 0, sizeof g);
    g.type = (fat_type)l.type;
    g.bytes_per_sector = bps;
    g.sectors_per_cluster = l.spc;
    g.reserved_sectors = l.reserved;
    g.fat_count = fat_count;
    g.fat_sectors = l.fat_sectors;
    g.root_entries = l.root_entries;
    g.total_sectors = total;
    g.media = media;
    g.volume_id = opt->volume_id;
    af_memcpy(g.label, label, 11);
    if (l.type == 32) {
        g.root_cluster = FAT_FIRST_CLUSTER;
        g.fsinfo_sector = 1;
        g.backup_boot_sector = 6;
    }
    uint8_t boot[512];
    fat_mkfs_boot_sector(opt, &g, boot);
    fat_bpb_error why;
    /* The planned sector must pass our own validation: one source of truth for geometry. */
    if (fat_bpb_parse(boot, sizeof boot, opt->volume_offset, device_bytes, geo, &why) != VFS_OK ||
        geo->type != g.type)
        return VFS_NO_SPACE;
    return VFS_OK;
}

/* ---- writing ------------------------------------------------------------------------------------- */

static const uint8_t zero_block[BLK_TRANSFER_SIZE];

static vfs_status io_status(blk_status s)
{
    return s == BLK_OK ? VFS_OK : s == BLK_ERR_READ_ONLY ? VFS_READ_ONLY_FS : VFS_IO_ERROR;
}

/* Blocks: zeroes [offset, offset + len); whole blocks are overwritten without reading. */
static vfs_status zero_range(blk_cache *cache, uint64_t offset, uint64_t len)
{
    while (len > 0) {
        uint64_t in_block = offset % BLK_TRANSFER_SIZE;
        uint64_t chunk = af_min_u64(len, BLK_TRANSFER_SIZE - in_block);
        blk_status s;
        if (chunk == BLK_TRANSFER_SIZE) {
            blk_buf *buf;
            s = blk_cache_get(cache, offset / BLK_TRANSFER_SIZE, BLK_GET_OVERWRITE, &buf);
            if (s == BLK_OK) {
                s = blk_cache_prepare_write(cache, buf);
                if (s == BLK_OK) {
                    af_memset(blk_buf_data(buf), 0, BLK_TRANSFER_SIZE);
                    blk_cache_mark_dirty(cache, buf);
                }
                blk_cache_release(cache, buf);
            }
        } else {
            s = blk_cache_write_bytes(cache, offset, zero_block, (size_t)chunk);
        }
        if (s != BLK_OK)
            return io_status(s);
        offset += chunk;
        len -= chunk;
    }
    return VFS_OK;
}

static vfs_status write_sector(blk_cache *cache, const fat_geometry *g, uint32_t sector, const uint8_t *data,
                              size_t len)
{
    uint64_t at = g->volume_offset + (uint64_t)sector * g->bytes_per_sector;
    return io_status(blk_cache_write_bytes(cache, at, data, len));
}

/* The FAT's first entries: 0 holds the media byte under end-of-chain bits, 1 an
 * end-of-chain (clean-shutdown bits set), and on FAT32 the root directory's one cluster
 * ends its chain. */
static void fat_head(const fat_geometry *g, uint8_t head[12], size_t *len)
{
    af_memset(head, 0, 12);
    uint32_t eoc = fat_eoc_value(g->type);
    uint32_t entries = g->root_cluster ? g->root_cluster + 1u : FAT_FIRST_CLUSTER;
    AF_ASSERT(fat_entry_table_bytes(g->type, entries) <= 12);
    for (uint32_t c = 0; c < entries; c++) {
        uint32_t v = c == 0 ? (eoc & ~0xFFu) | g->media : c == 1 || c == g->root_cluster ? eoc : FAT_ENTRY_FREE;
        fat_entry_put(g->type, c, head + fat_entry_byte(g->type, c), v);
    }
    *len = (size_t)fat_entry_table_bytes(g->type, entries);
}

vfs_status fat_mkfs_format(blk_cache *cache, uint64_t device_bytes, const fat_mkfs_options *opt, fat_geometry *geo)
{
    fat_geometry g;
    vfs_status st = fat_mkfs_plan(opt, device_bytes, &g);
    if (st != VFS_OK)
        return st;
    uint8_t label[11];
    bool has_label;
    fat_label_make(opt->label, label, &has_label);

    /* Clear reserved area, FATs and root directory (FAT12/16 region, FAT32 root cluster). */
    uint64_t meta_end = g.type == FAT_TYPE_32 ? fat_cluster_offset(&g, g.root_cluster) + g.bytes_per_cluster
                                              : g.data_offset;
    st = zero_range(cache, g.volume_offset, meta_end - g.volume_offset);
    if (st != VFS_OK)
        return st;

    uint8_t boot[512];
    fat_mkfs_boot_sector(opt, &g, boot);
    st = write_sector(cache, &g, 0, boot, sizeof boot);
    if (st == VFS_OK && g.type == FAT_TYPE_32) {
        uint8_t info[512];
        af_memset(info, 0, sizeof info);
        af_store_le32(info + FAT_FSINFO_LEAD_SIG, FAT_FSINFO_LEAD_VALUE);
        af_store_le32(info + FAT_FSINFO_STRUCT_SIG, FAT_FSINFO_STRUCT_VALUE);
        af_store_le32(info + FAT_FSINFO_FREE_COUNT, g.cluster_count - 1);
        af_store_le32(info + FAT_FSINFO_NEXT_FREE, g.root_cluster + 1);
        af_store_le32(info + FAT_FSINFO_TRAIL_SIG, FAT_FSINFO_TRAIL_VALUE);
        st = write_sector(cache, &g, g.fsinfo_sector, info, sizeof info);
        if (st == VFS_OK)
            st = write_sector(cache, &g, g.backup_boot_sector, boot, sizeof boot);
        if (st == VFS_OK)
            st = write_sector(cache, &g, g.backup_boot_sector + 1, info, sizeof info);
    }
    uint8_t head[12];
    size_t head_len;
    fat_head(&g, head, &head_len);
    for (uint32_t i = 0; st == VFS_OK && i < g.fat_count; i++)
        st = io_status(blk_cache_write_bytes(cache, g.fat_offset + i * g.fat_bytes, head, head_len));
    if (st == VFS_OK && has_label) {
        uint8_t entry[FAT_DIRENT_SIZE];
        af_memset(entry, 0, sizeof entry);
        af_memcpy(entry + FAT_DIRENT_NAME, label, 11);
        entry[FAT_DIRENT_ATTR] = FAT_ATTR_VOLUME_ID;
        uint64_t root = g.type == FAT_TYPE_32 ? fat_cluster_offset(&g, g.root_cluster) : g.root_dir_offset;
        st = io_status(blk_cache_write_bytes(cache, root, entry, sizeof entry));
    }
    if (st == VFS_OK)
        st = io_status(blk_cache_flush(cache));
    if (st == VFS_OK && geo != NULL)
        *geo = g;
    return st;
}
