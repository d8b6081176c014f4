/* fat_check: the boot sector and the volume-wide fields: FAT entries 0 and 1, the dirty
 * flags, the boot sector label, FSInfo, the FAT32 backup boot sector. */
#include "fat/fat_check_internal.h"

/* Entry 0 is the media byte with all other bits set; entry 1 is an end-of-chain value whose
 * two top bits (FAT16/32) are the clean-shutdown and no-hard-error flags. */
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
    uint32_t clean = c->g->type == FAT_TYPE_16 ? FAT16_CLEAN_SHUTDOWN | FAT16_NO_HARD_ERROR
                     : c->g->type == FAT_TYPE_32 ? FAT32_CLEAN_SHUTDOWN | FAT32_NO_HARD_ERROR : 0;
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
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_DIRTY);
        if (fix)
            fat_check_fat_set(c, 1, e1 | clean);
        fat_check_finish(c, fix, "flag cleared");
    }
    size_t state_at = c->g->type == FAT_TYPE_32 ? FAT_BS32_STATE : FAT_BS16_STATE;
    uint8_t state;
    if (!fat_check_read(c, c->g->volume_offset + state_at, &state, 1))
        return;
    if (state & FAT_STATE_DIRTY) {
        fat_check_finding(c, &c->r->dirty, NULL, 0);
        fat_check_msg_str(c, "boot sector dirty flag is set");
        bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_DIRTY);
        if (fix) {
            state &= (uint8_t)~FAT_STATE_DIRTY;
            fat_check_write(c, c->g->volume_offset + state_at, &state, 1);
            if (c->g->backup_boot_sector != 0)
                fat_check_write(c, c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector +
                                state_at, &state, 1);
        }
        fat_check_finish(c, fix, "flag cleared");
    }
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
        fat_check_write(c, c->g->volume_offset + label_at, want, 11);
        if (c->g->backup_boot_sector != 0)
            fat_check_write(c, c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector + label_at,
                     want, 11);
    }
    fat_check_finish(c, fix, "boot sector label rewritten");
}

void fat_check_fsinfo(fat_checker *c, uint32_t first_free)
{
    if (c->g->type != FAT_TYPE_32 || c->g->fsinfo_sector == 0)
        return;
    uint64_t at = c->g->volume_offset + (uint64_t)c->g->fsinfo_sector * c->g->bytes_per_sector;
    uint8_t info[512];
    if (!fat_check_read(c, at, info, sizeof info))
        return;
    bool sig_ok = af_load_le32(info + FAT_FSINFO_LEAD_SIG) == FAT_FSINFO_LEAD_VALUE &&
                  af_load_le32(info + FAT_FSINFO_STRUCT_SIG) == FAT_FSINFO_STRUCT_VALUE &&
                  af_load_le32(info + FAT_FSINFO_TRAIL_SIG) == FAT_FSINFO_TRAIL_VALUE;
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
        fat_check_msg_str(c, "backup boot sector field points outside the reserved area: sector ");
        fat_check_msg_u64(c, field);
    }
    uint32_t place = backup_place(c);
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT) && place != 0;
    if (fix) {
        af_store_le16(main + FAT_BPB32_BACKUP_BOOT, (uint16_t)place);
        fat_check_write(c, c->g->volume_offset + FAT_BPB32_BACKUP_BOOT, main + FAT_BPB32_BACKUP_BOOT, 2);
        fat_check_write(c, c->g->volume_offset + (uint64_t)place * c->g->bytes_per_sector, main, FAT_BS_MIN_SIZE);
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
    uint64_t backup_at = c->g->volume_offset + (uint64_t)c->g->backup_boot_sector * c->g->bytes_per_sector;
    if (!fat_check_read(c, backup_at, backup, sizeof backup))
        return;
    if (af_memcmp(main, backup, sizeof main) == 0)
        return;
    fat_check_finding(c, &c->r->boot_errors, NULL, 0);
    fat_check_msg_str(c, "backup boot sector differs from the boot sector");
    bool fix = fat_check_fixing(c, FAT_CHECK_REPAIR_BOOT);
    if (fix)
        fat_check_write(c, backup_at, main, sizeof main);
    fat_check_finish(c, fix, "backup rewritten");
}
