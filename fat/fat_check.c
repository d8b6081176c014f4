/* fat_check: the run (phases in order), messages, device access. See fat_check_internal.h
 * for how the checker is split into files. */
#include "fat/fat_check_internal.h"

/* ---- messages --------------------------------------------------------------------------- */

void fat_check_text(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap)
        buf[(*len)++] = *s++;
    buf[*len] = '\0';
}

void fat_check_text_u64(char *buf, size_t cap, size_t *len, uint64_t v)
{
    char digits[21];
    size_t n = sizeof digits - 1;
    digits[n] = '\0';
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    fat_check_text(buf, cap, len, digits + n);
}

void fat_check_msg_str(fat_checker *c, const char *s)
{
    fat_check_text(c->msg, sizeof c->msg, &c->msg_len, s);
}

void fat_check_msg_u64(fat_checker *c, uint64_t v)
{
    fat_check_text_u64(c->msg, sizeof c->msg, &c->msg_len, v);
}

void fat_check_msg_name(fat_checker *c, const uint8_t name[11])
{
    uint16_t u[FAT_SHORT_DISPLAY_MAX];
    size_t n = fat_short_to_utf16(name, 0, u);
    for (size_t i = 0; i < n && c->msg_len + 1 < sizeof c->msg; i++)
        c->msg[c->msg_len++] = u[i] >= 0x20 && u[i] < 0x7F ? (char)u[i] : '?';
}

void fat_check_finding(fat_checker *c, uint32_t *counter, const uint8_t *name, uint32_t dir)
{
    (*counter)++;
    c->r->problems++;
    c->msg_len = 0;
    if (name) {
        fat_check_msg_name(c, name);
        fat_check_msg_str(c, " (directory at cluster ");
        fat_check_msg_u64(c, dir);
        fat_check_msg_str(c, "): ");
    }
}

void fat_check_finish(fat_checker *c, bool fixed, const char *what)
{
    if (fixed) {
        if (what) {
            fat_check_msg_str(c, "; ");
            fat_check_msg_str(c, what);
        }
        c->r->repaired++;
    } else {
        if (c->opt->repairs != 0)
            fat_check_msg_str(c, "; not repaired");
        c->r->left++;
    }
    c->msg[c->msg_len] = '\0';
    if (c->opt->log)
        c->opt->log(c->opt->log_ctx, c->msg);
}

/* ---- bitmaps and device access ---------------------------------------------------------- */

static size_t bitmap_bytes(const fat_geometry *g)
{
    return ((size_t)g->max_cluster + 8) / 8;
}

size_t fat_check_memory_needed(const fat_geometry *geo)
{
    return 3 * bitmap_bytes(geo) + FAT_CHECK_NAME_SLOTS * 8u;
}

bool fat_check_read(fat_checker *c, uint64_t off, void *dst, size_t len)
{
    if (c->io != VFS_OK)
        return false;
    if (blk_cache_read_bytes(c->cache, off, dst, len) != BLK_OK) {
        c->io = VFS_IO_ERROR;
        return false;
    }
    return true;
}

void fat_check_write(fat_checker *c, uint64_t off, const void *src, size_t len)
{
    if (c->io != VFS_OK)
        return;
    blk_status s = blk_cache_write_bytes(c->cache, off, src, len);
    if (s != BLK_OK)
        c->io = s == BLK_ERR_READ_ONLY ? VFS_READ_ONLY_FS : VFS_IO_ERROR;
}

/* ---- the run ------------------------------------------------------------------------------ */

void fat_check_order_point(fat_checker *c)
{
    if (c->repairs != 0)
        blk_cache_order_point(c->cache);
}

vfs_status fat_check_run(blk_cache *cache, const fat_check_volume *vol, const fat_check_options *options,
                        fat_check_result *result)
{
    const fat_geometry *geo = &vol->geo;
    af_memset(result, 0, sizeof *result);
    if (options->work == NULL || options->work_size < fat_check_memory_needed(geo) ||
        (options->repairs & ~(uint32_t)FAT_CHECK_REPAIR_ALL) != 0)
        return VFS_INVALID_ARGUMENT;
    /* The checker state is large (LFN buffer, directory stack) but lives on the fiber stack
     * only through this frame; keep it static-free so several checks can run at once. */
    fat_checker c;
    af_memset(&c, 0, sizeof c);
    c.cache = cache;
    c.g = geo;
    c.opt = options;
    c.r = result;
    c.repairs = options->repairs;
    /* a layout the volume does not confirm is not written through; nor is the backup's
     * while the boot sector, which other systems read, still contradicts it */
    if (c.repairs != 0 && (vol->source == FAT_CHECK_BOOT_UNSURE ||
                           (vol->source == FAT_CHECK_BOOT_BACKUP && !(c.repairs & FAT_CHECK_REPAIR_BOOT)))) {
        c.repairs = 0;
        result->refused = true;
    }
    c.used = options->work;
    c.current = c.used + bitmap_bytes(geo);
    c.deferred = c.current + bitmap_bytes(geo);
    c.names = c.deferred + bitmap_bytes(geo);
    af_memset(options->work, 0, fat_check_memory_needed(geo));
    c.io = VFS_OK;
    fat_check_reader_init(&c.fat, cache, geo, geo->active_fat);
    c.eoc_min = fat_eoc_min(geo->type);
    c.eoc = fat_eoc_value(geo->type);
    c.bad = fat_bad_value(geo->type);

    /* Repairs reach the device in six epochs, so that a power cut leaves at worst what a
     * new repair finishes: (1) a boot sector the volume contradicts, rewritten from the
     * backup (its own order point); (2) interrupted renames finished, each record's old
     * name gone before the record (an order point each); (3) directory entries, chain
     * ends, FAT entries 0 and 1, the boot label; (4) lost clusters freed (nothing on the
     * device points at them any more) and the other FAT copies; (5) FSInfo and the backup
     * boot sector, which sum up the above; (6) the dirty flags cleared, the copies nobody
     * reads first. */
    fat_check_boot_choice(&c, vol);
    fat_check_fat_copies(&c);
    fat_check_reserved_entries(&c);
    fat_check_renames(&c);
    fat_check_walk_tree(&c);
    fat_check_boot_label(&c);
    fat_check_order_point(&c);
    uint32_t first_free = fat_check_scan_fat(&c);
    fat_check_mirror_fats(&c);
    fat_check_order_point(&c);
    fat_check_fsinfo(&c, first_free);
    fat_check_backup_boot(&c);
    fat_check_order_point(&c);
    fat_check_clear_dirty(&c);
    if (c.io == VFS_OK && c.repairs != 0 && blk_cache_flush(cache) != BLK_OK)
        c.io = VFS_IO_ERROR;
    return c.io;
}
