/* fat_check: the boot sector and the volume-wide fields: which boot sector describes the
 * volume (and the evidence for it), FAT entries 0 and 1, the dirty flags, the boot sector
 * label, FSInfo, the FAT32 backup boot sector. */
#include "fat/fat_check_internal.h"

static size_t state_offset(const fat_checker *c)
{
    return c->g->type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE;
}

/* Byte offset of a sector of the volume (the boot sector is sector 0). */
static uint64_t sector_at(const fat_checker *c, uint32_t sector)
{
    return c->g->volume_offset + (uint64_t)sector * c->g->bytes_per_sector;
}

static bool fsinfo_signed(const uint8_t *info)
{
    return af_load_le32(info + FAT_FSINFO_LEAD_SIG) == FAT_FSINFO_LEAD_VALUE &&
           af_load_le32(info + FAT_FSINFO_STRUCT_SIG) == FAT_FSINFO_STRUCT_VALUE &&
           af_load_le32(info + FAT_FSINFO_TRAIL_SIG) == FAT_FSINFO_TRAIL_VALUE;
}

static uint32_t clean_bits(fat_type t)
{
    return t == FAT_TYPE_16 ? FAT16_CLEAN_SHUTDOWN | FAT16_NO_HARD_ERROR
           : t == FAT_TYPE_32 ? FAT32_CLEAN_SHUTDOWN | FAT32_NO_HARD_ERROR : 0;
}

/* Entry 0 is the media byte with all other bits set; entry 1 is an end-of-chain value whose
 * two top bits (FAT16/32) are the clean-shutdown and no-hard-error flags. The dirty flags
 * are reported here and cleared last (fat_check_clear_dirty). */
void fat_check_reserved_entries(fat_checker *c)
{
    uint32_t e0 = fat_check_fat_get(c, 0), e1 = fat_check_fat_get(c, 1);
    uint32_t want0 = (c->eoc & ~0xFFu) | c->g->media;
    if (e0 != want0) {
        fat_check_finding(c, &c->r->boot_errors, NULL, 0);
        fat_check_msg_str(c, "FAT entry 0 is not the media byte with the other bits set");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
        if (fix)
            fat_check_fat_set(c, 0, want0);
        fat_check_finish(c, fix, "fixed");
    }
    uint32_t clean = clean_bits(c->g->type);
    if ((e1 | clean) < c->eoc_min) {
        fat_check_finding(c, &c->r->boot_errors, NULL, 0);
        fat_check_msg_str(c, "FAT entry 1 is not an end-of-chain value");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
        if (fix) {
            e1 = (e1 & clean) | (c->eoc & ~clean);
            fat_check_fat_set(c, 1, e1);
        }
        fat_check_finish(c, fix, "fixed");
    }
    if ((e1 & clean) != clean) {
        fat_check_finding(c, &c->r->dirty, NULL, 0);
        fat_check_msg_str(c, "FAT entry 1 says the volume was not cleanly unmounted");
        c->clear_fat_dirty = fat_check_fixing(c, FAT_CHECK_REPAIR_DIRTY);
        fat_check_finish(c, c->clear_fat_dirty, "flag cleared");
    }
    uint8_t state;
    if (!fat_check_read(c, c->g->volume_offset + state_offset(c), &state, 1))
        return;
    if (state & FAT_STATE_DIRTY) {
        fat_check_finding(c, &c->r->dirty, NULL, 0);
        fat_check_msg_str(c, "boot sector dirty flag is set");
        c->clear_state_dirty = fat_check_fixing(c, FAT_CHECK_REPAIR_DIRTY);
        fat_check_finish(c, c->clear_state_dirty, "flag cleared");
    }
}

/* Last of all, when everything else is on the device, the volume is marked clean: first
 * in the copies nobody reads (the other FATs' entry 1, the backup boot sector), then in
 * the active FAT and the boot sector, so a cut between leaves it marked dirty. */
void fat_check_clear_dirty(fat_checker *c)
{
    if (!c->clear_fat_dirty && !c->clear_state_dirty)
        return;
    uint32_t e1 = fat_check_fat_get(c, 1) | clean_bits(c->g->type);
    uint8_t state;
    if (!fat_check_read(c, sector_at(c, 0) + state_offset(c), &state, 1))
        return;
    state &= (uint8_t)~FAT_STATE_DIRTY;
    for (uint32_t copy = 0; copy < c->g->fat_count && c->clear_fat_dirty; copy++) {
        if (copy != c->g->active_fat && fat_check_fat_mirrored(c, copy))
            fat_check_fat_set_copy(c, copy, 1, e1);
    }
    if (c->clear_state_dirty && c->g->backup_boot_sector != 0)
        fat_check_write(c, sector_at(c, c->g->backup_boot_sector) + state_offset(c), &state, 1);
    fat_check_order_point(c);
    if (c->clear_fat_dirty)
        fat_check_fat_set_copy(c, c->g->active_fat, 1, e1);
    if (c->clear_state_dirty)
        fat_check_write(c, sector_at(c, 0) + state_offset(c), &state, 1);
}

/* The boot sector's label must match the root's label entry (fsck.fat compares them). */
void fat_check_boot_label(fat_checker *c)
{
    if (!c->g->has_serial)
        return;
    static const uint8_t no_name[11] = {'N', 'O', ' ', 'N', 'A', 'M', 'E', ' ', ' ', ' ', ' '};
    const uint8_t *want = c->root_label_seen ? c->root_label : no_name;
    if (af_memcmp(c->g->label, want, 11) == 0)
        return;
    fat_check_finding(c, &c->r->boot_errors, NULL, 0);
    fat_check_msg_str(c, c->root_label_seen ? "boot sector label differs from the root directory's label"
                                  : "boot sector has a label but the root directory has none");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
    if (fix) {
        size_t label_at = c->g->type == FAT_TYPE_32 ? FAT_BS32_VOLUME_LABEL : FAT_BS16_VOLUME_LABEL;
        fat_check_write(c, sector_at(c, 0) + label_at, want, 11);
        if (c->g->backup_boot_sector != 0)
            fat_check_write(c, sector_at(c, c->g->backup_boot_sector) + label_at, want, 11);
    }
    fat_check_finish(c, fix, "boot sector label rewritten");
}

void fat_check_fsinfo(fat_checker *c, uint32_t first_free)
{
    if (c->g->type != FAT_TYPE_32 || c->g->fsinfo_sector == 0)
        return;
    uint64_t at = sector_at(c, c->g->fsinfo_sector);
    uint8_t info[512];
    if (!fat_check_read(c, at, info, sizeof info))
        return;
    bool sig_ok = fsinfo_signed(info);
    uint32_t free_count = af_load_le32(info + FAT_FSINFO_FREE_COUNT);
    uint32_t next = af_load_le32(info + FAT_FSINFO_NEXT_FREE);
    /* "unknown" is legal, but fsck.fat reports it and a repair knows the count */
    bool free_ok = free_count == c->r->free_clusters;
    bool next_ok = next == FAT_FSINFO_UNKNOWN || fat_check_cluster_valid(c, next);
    if (sig_ok && free_ok && next_ok)
        return;
    fat_check_finding(c, &c->r->fsinfo_errors, NULL, 0);
    if (!sig_ok) {
        fat_check_msg_str(c, "FSInfo signatures are wrong");
    } else if (!free_ok) {
        fat_check_msg_str(c, "FSInfo free count is ");
        if (free_count == FAT_FSINFO_UNKNOWN)
            fat_check_msg_str(c, "unknown");
        else
            fat_check_msg_u64(c, free_count);
        fat_check_msg_str(c, " instead of ");
        fat_check_msg_u64(c, c->r->free_clusters);
    } else {
        fat_check_msg_str(c, "FSInfo next-free hint is out of range");
    }
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_FSINFO);
    if (fix) {
        if (!sig_ok) {
            af_memset(info, 0, sizeof info);
            af_store_le32(info + FAT_FSINFO_LEAD_SIG, FAT_FSINFO_LEAD_VALUE);
            af_store_le32(info + FAT_FSINFO_STRUCT_SIG, FAT_FSINFO_STRUCT_VALUE);
            af_store_le32(info + FAT_FSINFO_TRAIL_SIG, FAT_FSINFO_TRAIL_VALUE);
        }
        af_store_le32(info + FAT_FSINFO_FREE_COUNT, c->r->free_clusters);
        if (!sig_ok || !next_ok)
            af_store_le32(info + FAT_FSINFO_NEXT_FREE, first_free ? first_free : FAT_FSINFO_UNKNOWN);
        fat_check_write(c, at, info, sizeof info);
    }
    fat_check_finish(c, fix, "rewritten");
}

/* Where a missing backup boot sector goes: sector 6 as the specification suggests, else
 * the last reserved sector (fsck.fat chooses the same); 0 if there is no room. */
static uint32_t backup_place(const fat_checker *c)
{
    if (c->g->reserved_sectors >= 7 && c->g->fsinfo_sector != 6)
        return 6;
    uint32_t last = c->g->reserved_sectors - 1;
    return c->g->reserved_sectors >= 3 && last != c->g->fsinfo_sector ? last : 0;
}

static void backup_missing(fat_checker *c, uint8_t *main)
{
    uint32_t field = af_load_le16(main + FAT_BPB32_BACKUP_BOOT);
    fat_check_finding(c, &c->r->boot_errors, NULL, 0);
    if (field == 0 || field == 0xFFFFu) {
        fat_check_msg_str(c, "no backup boot sector");
    } else {
        fat_check_msg_str(c, "backup boot sector field points ");
        fat_check_msg_str(c, field >= c->g->reserved_sectors ? "outside the reserved area" : "at the FSInfo sector");
        fat_check_msg_str(c, ": sector ");
        fat_check_msg_u64(c, field);
    }
    uint32_t place = backup_place(c);
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT) && place != 0;
    if (fix) {
        af_store_le16(main + FAT_BPB32_BACKUP_BOOT, (uint16_t)place);
        fat_check_write(c, c->g->volume_offset + FAT_BPB32_BACKUP_BOOT, main + FAT_BPB32_BACKUP_BOOT, 2);
        fat_check_write(c, sector_at(c, place), main, FAT_BS_MIN_SIZE);
        fat_check_msg_str(c, "; backup written at sector ");
        fat_check_msg_u64(c, place);
    } else if (place == 0) {
        fat_check_msg_str(c, " (no reserved sector is free for one)");
    }
    fat_check_finish(c, fix, NULL);
}

void fat_check_backup_boot(fat_checker *c)
{
    if (c->g->type != FAT_TYPE_32)
        return;
    uint8_t main[FAT_BS_MIN_SIZE], backup[FAT_BS_MIN_SIZE];
    if (!fat_check_read(c, c->g->volume_offset, main, sizeof main))
        return;
    if (c->g->backup_boot_sector == 0) {
        backup_missing(c, main);
        return;
    }
    uint64_t backup_at = sector_at(c, c->g->backup_boot_sector);
    if (!fat_check_read(c, backup_at, backup, sizeof backup))
        return;
    /* a difference in the dirty flag alone goes when both copies are marked clean */
    if (c->clear_state_dirty)
        backup[state_offset(c)] = (uint8_t)((backup[state_offset(c)] & ~FAT_STATE_DIRTY) |
                                            (main[state_offset(c)] & FAT_STATE_DIRTY));
    if (af_memcmp(main, backup, sizeof main) == 0 || c->boot_reported)
        return;
    fat_check_finding(c, &c->r->boot_errors, NULL, 0);
    fat_check_msg_str(c, "backup boot sector differs from the boot sector");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
    if (fix)
        fat_check_write(c, backup_at, main, sizeof main);
    fat_check_finish(c, fix, "backup rewritten");
}

/* The layout choice, reported first: a boot sector the volume contradicts is rewritten
 * from the backup before anything else is written, so that a power cut after it leaves a
 * volume every system reads through the right layout. */
void fat_check_boot_choice(fat_checker *c, const fat_check_volume *vol)
{
    if (vol->source == FAT_CHECK_BOOT_PRIMARY)
        return;
    c->boot_reported = true;
    fat_check_finding(c, &c->r->boot_errors, NULL, 0);
    fat_check_msg_str(c, vol->reason);
    if (vol->source == FAT_CHECK_BOOT_UNSURE) {
        if (c->opt->repairs != 0)
            fat_check_msg_str(c, "; nothing is repaired through a layout the volume does not confirm");
        fat_check_finish(c, false, NULL);
        return;
    }
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
    if (fix) {
        uint8_t piece[FAT_BS_MIN_SIZE];
        for (uint32_t off = 0; off < c->g->bytes_per_sector; off += sizeof piece) {
            if (fat_check_read(c, sector_at(c, vol->backup_sector) + off, piece, sizeof piece))
                fat_check_write(c, sector_at(c, 0) + off, piece, sizeof piece);
        }
        fat_check_order_point(c);
    }
    fat_check_finish(c, fix, "boot sector rewritten from the backup");
}

/* ---- which boot sector describes the volume ---------------------------------------------- */

/* What the volume says about a layout: the pieces of evidence against it. */
typedef struct evidence {
    uint32_t against;
    char why[120];           /* the first piece, for the log */
    size_t why_len;
    vfs_status io;
} evidence;

static void why_str(evidence *ev, const char *s)
{
    fat_check_text(ev->why, sizeof ev->why, &ev->why_len, s);
}

static void why_u64(evidence *ev, uint64_t v)
{
    fat_check_text_u64(ev->why, sizeof ev->why, &ev->why_len, v);
}

/* Counts one piece of evidence against the layout; the first one is described. */
static bool against(evidence *ev)
{
    return ev->against++ == 0;
}

static bool read_bytes(blk_cache *cache, uint64_t off, void *dst, size_t len, evidence *ev)
{
    if (ev->io != VFS_OK)
        return false;
    if (blk_cache_read_bytes(cache, off, dst, len) != BLK_OK) {
        ev->io = VFS_IO_ERROR;
        return false;
    }
    return true;
}

/* The start of a FAT: entry 0 is a media byte (0xF0, 0xF8..0xFF; the boot sector's, unless
 * one of them is damaged) with the other bits set. (Entry 1, an end-of-chain value, is not
 * required: a damaged one is a repairable finding, not a misplaced FAT.) */
static bool fat_signature(const fat_geometry *g, const uint8_t *b)
{
    uint32_t e0 = fat_entry_get(g->type, 0, b + fat_entry_byte(g->type, 0));
    uint32_t media = e0 & 0xFFu;
    return (e0 | 0xFFu) == fat_eoc_value(g->type) && (media == 0xF0u || media >= 0xF8u);
}

/* Whole entries in `bytes` bytes of a FAT. */
static uint64_t entries_in(fat_type t, uint64_t bytes)
{
    return bytes * 2u / (t == FAT_TYPE_12 ? 3u : t == FAT_TYPE_16 ? 4u : 8u);
}

/* A FAT32 directory entry's first cluster. */
static uint32_t first_cluster(const uint8_t *e)
{
    return af_load_le16(e + FAT_DIRENT_CLUSTER_LO) | ((uint32_t)af_load_le16(e + FAT_DIRENT_CLUSTER_HI) << 16);
}

/* Two FAT starts agree on at least half of the entries in use in `sure` (and on two). */
static bool fat_similar(const fat_geometry *g, const uint8_t *sure, const uint8_t *other)
{
    uint32_t entries = (uint32_t)entries_in(g->type, FAT_BS_MIN_SIZE);
    uint32_t used = 0, same = 0;
    for (uint32_t cl = 0; cl + 1 < entries; cl++) {
        uint32_t v = fat_entry_get(g->type, cl, sure + fat_entry_byte(g->type, cl));
        if (v == 0)
            continue;
        used++;
        same += fat_entry_get(g->type, cl, other + fat_entry_byte(g->type, cl)) == v;
    }
    return used >= 2 && same * 2 >= used;
}

/* The FATs lie where the layout puts them: every copy starts with a FAT signature or
 * agrees with one that does, and the sectors after the last copy do not hold another. */
static void fat_evidence(blk_cache *cache, const fat_geometry *g, evidence *ev)
{
    uint8_t start[5][FAT_BS_MIN_SIZE];
    bool sig[5];
    int sure = -1;
    for (uint32_t k = 0; k <= g->fat_count; k++) {
        uint64_t at = g->fat_offset + k * g->fat_bytes;
        sig[k] = false;
        if (at + FAT_BS_MIN_SIZE > g->volume_offset + g->volume_bytes ||
            !read_bytes(cache, at, start[k], FAT_BS_MIN_SIZE, ev))
            continue;
        sig[k] = fat_signature(g, start[k]);
        if (sig[k] && sure < 0 && k < g->fat_count)
            sure = (int)k;
    }
    if (ev->io != VFS_OK)
        return;
    if (sure < 0) {
        if (against(ev))
            why_str(ev, "no FAT starts where it puts the FATs");
        return;
    }
    for (uint32_t k = 0; k < g->fat_count; k++) {
        if (!sig[k] && !fat_similar(g, start[sure], start[k]) && against(ev)) {
            why_str(ev, "FAT ");
            why_u64(ev, k + 1);
            why_str(ev, " would be at sector ");
            why_u64(ev, (g->fat_offset + k * g->fat_bytes - g->volume_offset) / g->bytes_per_sector);
            why_str(ev, ", which holds no FAT");
        }
    }
    if (sig[g->fat_count] && fat_similar(g, start[sure], start[g->fat_count]) && against(ev)) {
        why_str(ev, "another FAT follows its last one, at sector ");
        why_u64(ev, (g->fat_offset + g->fat_count * g->fat_bytes - g->volume_offset) / g->bytes_per_sector);
    }
}

/* FAT32: the root cluster is in use, is not a subdirectory, and its subdirectories'
 * "." entries are where the layout puts their clusters. */
static void root_evidence(blk_cache *cache, const fat_geometry *g, fat_check_reader *fat, evidence *ev)
{
    uint32_t link = fat_check_reader_get(fat, g->root_cluster);
    bool linked = link >= fat_eoc_min(g->type) || (link >= FAT_FIRST_CLUSTER && link <= g->max_cluster);
    if (!linked) {
        if (against(ev))
            why_str(ev, "its root cluster is not in use");
        return;
    }
    uint8_t e[FAT_DIRENT_SIZE], dot[FAT_DIRENT_SIZE];
    uint64_t root = fat_cluster_offset(g, g->root_cluster);
    uint32_t entries = g->bytes_per_cluster / FAT_DIRENT_SIZE, right = 0, wrong = 0;
    for (uint32_t i = 0; i < entries && right + wrong < 16; i++) {
        if (!read_bytes(cache, root + i * FAT_DIRENT_SIZE, e, sizeof e, ev))
            return;
        if (e[0] == FAT_DIRENT_END)
            break;
        if (i == 0 && fat_check_is_dot_name(e, 1)) {
            if (against(ev))
                why_str(ev, "its root cluster holds a subdirectory");
            return;
        }
        uint32_t cl = first_cluster(e);
        if (e[0] == FAT_DIRENT_DELETED || e[FAT_DIRENT_ATTR] == FAT_ATTR_LONG_NAME ||
            (e[FAT_DIRENT_ATTR] & (FAT_ATTR_DIRECTORY | FAT_ATTR_VOLUME_ID)) != FAT_ATTR_DIRECTORY ||
            cl < FAT_FIRST_CLUSTER || cl > g->max_cluster)
            continue;
        if (!read_bytes(cache, fat_cluster_offset(g, cl), dot, sizeof dot, ev))
            return;
        bool found = fat_check_is_dot_name(dot, 1) && first_cluster(dot) == cl;
        right += found;
        wrong += !found;
    }
    if (wrong > right && against(ev))
        why_str(ev, "the root's subdirectories are not where it puts their clusters");
}

/* Free entries, and entries in use past the last cluster the layout has. */
static void count_entries(fat_check_reader *fat, uint32_t *free_count, uint32_t *past_end)
{
    const fat_geometry *g = fat->g;
    uint64_t capacity = entries_in(g->type, g->fat_bytes);
    *free_count = *past_end = 0;
    for (uint64_t cl = FAT_FIRST_CLUSTER; cl < capacity && fat->io == VFS_OK; cl++) {
        uint32_t v = fat_check_reader_get(fat, (uint32_t)cl);
        if (cl <= g->max_cluster)
            *free_count += v == FAT_ENTRY_FREE;
        else
            *past_end += v != FAT_ENTRY_FREE;
    }
}

/* Everything the volume says about a FAT32 layout; *free_matches: the FSInfo free count
 * equals the free clusters the layout sees. */
static void full_evidence(blk_cache *cache, const fat_geometry *g, evidence *ev, bool *free_matches)
{
    *free_matches = false;
    fat_evidence(cache, g, ev);
    if (ev->io != VFS_OK || g->type != FAT_TYPE_32)
        return;
    uint8_t info[FAT_BS_MIN_SIZE];
    if (g->fsinfo_sector != 0 &&
        read_bytes(cache, g->volume_offset + (uint64_t)g->fsinfo_sector * g->bytes_per_sector, info, sizeof info, ev) &&
        !fsinfo_signed(info) && against(ev))
        why_str(ev, "no FSInfo where it puts FSInfo");
    fat_check_reader fat;
    fat_check_reader_init(&fat, cache, g, g->active_fat);
    root_evidence(cache, g, &fat, ev);
    uint32_t free_count, past_end;
    count_entries(&fat, &free_count, &past_end);
    if (fat.io != VFS_OK)
        ev->io = fat.io;
    if (past_end > 0 && against(ev)) {
        why_u64(ev, past_end);
        why_str(ev, " FAT entries past its last cluster are in use");
    }
    *free_matches = g->fsinfo_sector != 0 && fsinfo_signed(info) &&
                    af_load_le32(info + FAT_FSINFO_FREE_COUNT) == free_count;
}

/* The boot sector fields that place the FATs, the root, FSInfo and the clusters. */
static void layout_differences(const fat_geometry *a, const fat_geometry *b, char *out, size_t cap)
{
    static const char *const names[] = {"bytes per sector", "sectors per cluster", "reserved sectors", "number of FATs",
                                        "FAT size", "root entries", "total sectors", "root cluster", "FSInfo sector",
                                        "media", "active FAT"};
    const bool differ[] = {
        a->bytes_per_sector != b->bytes_per_sector, a->sectors_per_cluster != b->sectors_per_cluster,
        a->reserved_sectors != b->reserved_sectors, a->fat_count != b->fat_count, a->fat_sectors != b->fat_sectors,
        a->root_entries != b->root_entries, a->total_sectors != b->total_sectors, a->root_cluster != b->root_cluster,
        a->fsinfo_sector != b->fsinfo_sector, a->media != b->media,
        a->active_fat != b->active_fat || a->ext_flags != b->ext_flags,
    };
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < AF_ARRAY_LEN(names); i++) {
        if (!differ[i])
            continue;
        for (const char *s = n ? ", " : ""; *s && n + 1 < cap; s++)
            out[n++] = *s;
        for (const char *s = names[i]; *s && n + 1 < cap; s++)
            out[n++] = *s;
        out[n] = '\0';
    }
}

static void reason(fat_check_volume *vol, const char *s)
{
    size_t len = af_strnlen(vol->reason, sizeof vol->reason);
    fat_check_text(vol->reason, sizeof vol->reason, &len, s);
}

/* The sector that holds the backup: where the boot sector says, else sector 6. */
static uint32_t backup_sector_of(const uint8_t *primary, bool primary_ok, const fat_geometry *p)
{
    if (primary_ok)
        return p->type == FAT_TYPE_32 && p->backup_boot_sector != 0 ? p->backup_boot_sector : 6;
    return 6;
}

vfs_status fat_check_volume_find(blk_cache *cache, uint64_t volume_offset, fat_check_volume *vol)
{
    af_memset(vol, 0, sizeof *vol);
    uint64_t device_bytes = blk_client_capacity_blocks(blk_cache_client(cache)) * BLK_TRANSFER_SIZE;
    uint8_t primary[FAT_BS_MIN_SIZE], backup[FAT_BS_MIN_SIZE];
    if (blk_cache_read_bytes(cache, volume_offset, primary, sizeof primary) != BLK_OK)
        return VFS_IO_ERROR;
    fat_geometry p, b;
    af_memset(&p, 0, sizeof p);
    af_memset(&b, 0, sizeof b);
    fat_bpb_error backup_error;
    bool p_ok = fat_bpb_parse(primary, sizeof primary, volume_offset, device_bytes, &p, &vol->primary_error) == VFS_OK;
    uint32_t bytes_per_sector = af_load_le16(primary + FAT_BPB_BYTES_PER_SECTOR);
    if (!af_is_pow2(bytes_per_sector) || bytes_per_sector < 512 || bytes_per_sector > 4096)
        bytes_per_sector = 512;
    uint32_t at = backup_sector_of(primary, p_ok, &p);
    bool b_ok = false;
    if (!p_ok || p.type == FAT_TYPE_32) {
        uint64_t backup_at = volume_offset + (uint64_t)at * bytes_per_sector;
        if (backup_at + sizeof backup > device_bytes ||
            blk_cache_read_bytes(cache, backup_at, backup, sizeof backup) != BLK_OK) {
            if (!p_ok)
                return backup_at + sizeof backup > device_bytes ? VFS_CORRUPT : VFS_IO_ERROR;
        } else {
            b_ok = fat_bpb_parse(backup, sizeof backup, volume_offset, device_bytes, &b, &backup_error) == VFS_OK &&
                   b.type == FAT_TYPE_32;
            vol->backups_differ = af_memcmp(primary, backup, sizeof primary) != 0;
            vol->backup_sector = b_ok ? at : 0;
        }
    }
    vol->geo = p_ok ? p : b;
    vol->source = FAT_CHECK_BOOT_PRIMARY;
    char fields[160];
    if (p_ok && b_ok && vol->backups_differ)
        layout_differences(&p, &b, fields, sizeof fields);
    if (p_ok && (!b_ok || !vol->backups_differ || fields[0] == '\0')) {
        /* one layout: it must at least put the FATs where they are */
        evidence ev = {.io = VFS_OK};
        fat_evidence(cache, &p, &ev);
        if (ev.io != VFS_OK)
            return ev.io;
        if (ev.against > 0) {
            vol->source = FAT_CHECK_BOOT_UNSURE;
            reason(vol, "the boot sector does not match the volume: ");
            reason(vol, ev.why);
        }
        return VFS_OK;
    }
    if (!b_ok)
        return VFS_CORRUPT;
    evidence ep = {.io = VFS_OK}, eb = {.io = VFS_OK};
    bool p_free = false, b_free;
    if (p_ok)
        full_evidence(cache, &p, &ep, &p_free);
    full_evidence(cache, &b, &eb, &b_free);
    if (ep.io != VFS_OK || eb.io != VFS_OK)
        return ep.io != VFS_OK ? ep.io : eb.io;
    if (!p_ok) {
        if (eb.against > 0)
            return VFS_CORRUPT;
        vol->source = FAT_CHECK_BOOT_BACKUP;
        reason(vol, "the boot sector is unusable (");
        reason(vol, fat_bpb_error_text(vol->primary_error));
        reason(vol, ") and the backup matches the volume");
        return VFS_OK;
    }
    bool primary_wins = ep.against == 0 && (eb.against > 0 || (p_free && !b_free));
    bool backup_wins = eb.against == 0 && (ep.against > 0 || (b_free && !p_free));
    reason(vol, "the boot sector and its backup disagree (");
    reason(vol, fields);
    if (primary_wins) {
        reason(vol, "); the backup does not match the volume: ");
        reason(vol, eb.against ? eb.why : "the free clusters it sees differ from FSInfo's count");
    } else if (backup_wins) {
        vol->geo = b;
        vol->source = FAT_CHECK_BOOT_BACKUP;
        reason(vol, "); the boot sector does not match the volume: ");
        reason(vol, ep.against ? ep.why : "the free clusters it sees differ from FSInfo's count");
    } else {
        vol->source = FAT_CHECK_BOOT_UNSURE;
        reason(vol, ep.against ? "); the volume matches neither" : "); the volume matches both");
    }
    return VFS_OK;
}
