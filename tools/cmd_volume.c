/* The offline subcommands that look at and name a volume, as minfo/fsck.fat -v and
 * fatlabel do: info and label. Like mkfs and check they work in-process on an unmounted
 * image (offline_volume), not through the server. */
#include "tools/cli.h"
#include "tools/offline_volume.h"

#include "fat/fat_label.h"
#include "fat/fat_layout.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>

/* The volume's layout, found the way the server finds it. */
typedef struct volume_job {
    offline_volume *vol;
    fs_component_volume where;
    fat_geometry geo;
    uint8_t boot[512];
    uint8_t fsinfo[512];
    bool has_fsinfo;
    uint32_t fat_entry1;
    uint8_t label[11];
    bool has_label;
    const char *new_label;       /* label: what to write */
    bool write_label;
    int32_t zone;
    vfs_status status;
    fat_bpb_error why;
    bool not_fat;                /* the volume could not be found or its boot sector is bad */
} volume_job;

static vfs_status read_bytes(offline_volume *v, uint64_t at, void *dst, size_t len)
{
    return vfs_status_from_blk(blk_cache_read_bytes(&v->stack.cache, at, dst, len));
}

static vfs_status find_volume(volume_job *job)
{
    offline_volume *v = job->vol;
    uint64_t offset, bytes;
    vfs_status st = offline_volume_locate(v, &job->where, &offset, &bytes, &job->why);
    if (st == VFS_OK)
        st = read_bytes(v, offset, job->boot, sizeof job->boot);
    if (st == VFS_OK)
        st = fat_bpb_parse(job->boot, sizeof job->boot, offset, offset + bytes, &job->geo, &job->why);
    job->not_fat = st == VFS_CORRUPT || st == VFS_INVALID_ARGUMENT;
    return st;
}

static void *info_task(void *arg)
{
    volume_job *job = arg;
    const fat_geometry *g = &job->geo;
    job->status = find_volume(job);
    if (job->status == VFS_OK && g->type == FAT_TYPE_32 && g->fsinfo_sector) {
        job->status = read_bytes(job->vol, g->volume_offset + (uint64_t)g->fsinfo_sector * g->bytes_per_sector,
                                 job->fsinfo, sizeof job->fsinfo);
        job->has_fsinfo = job->status == VFS_OK &&
                          af_load_le32(job->fsinfo + FAT_FSINFO_LEAD_SIG) == FAT_FSINFO_LEAD_VALUE &&
                          af_load_le32(job->fsinfo + FAT_FSINFO_STRUCT_SIG) == FAT_FSINFO_STRUCT_VALUE;
    }
    uint8_t raw[4] = {0};
    if (job->status == VFS_OK)
        job->status = read_bytes(job->vol, fat_entry_offset(g, g->active_fat, 1), raw, fat_entry_size(g->type));
    job->fat_entry1 = fat_entry_get(g->type, 1, raw);
    if (job->status == VFS_OK)
        job->status = fat_label_read(&job->vol->stack.cache, g, job->label, &job->has_label);
    return NULL;
}

static void *label_task(void *arg)
{
    volume_job *job = arg;
    job->status = find_volume(job);
    if (job->status != VFS_OK)
        return NULL;
    if (job->write_label) {
        fat_datetime now = fat_time_from_unix_zoned((int64_t)time(NULL), 0, job->zone);
        job->status = fat_label_write(&job->vol->stack.cache, &job->geo, job->new_label, now);
    } else {
        job->status = fat_label_read(&job->vol->stack.cache, &job->geo, job->label, &job->has_label);
    }
    return NULL;
}

/* Open the image as named, run the task; on failure say why and return false. */
static bool run_on_volume(const char *image, bool read_only, fp_entry task, volume_job *job)
{
    cli_image where;
    if (!cli_image_resolve(image, &where)) {
        cli_location none = {0};
        cli_fail_not_image(image, &none);
        return false;
    }
    offline_volume vol;
    if (offline_volume_open(&vol, where.file, 0, read_only) != 0) {
        cli_error(image, "cannot open: %s", cli_errno_text(errno));
        return false;
    }
    job->vol = &vol;
    job->where = where.volume;
    job->zone = where.volume.time_offset_minutes;
    job->status = VFS_ERROR;
    bool ran = offline_volume_run(&vol, task, job);
    offline_volume_close(&vol);
    job->vol = NULL;
    if (ran && job->status == VFS_OK)
        return true;
    char why[512];
    if (job->not_fat && cli_diagnose_volume(&where, why, sizeof why))
        cli_error(image, "%s", why);
    else if (job->not_fat)
        cli_error(image, "not a FAT volume: %s", fat_bpb_error_text(job->why));
    else if (job->status == VFS_INVALID_ARGUMENT)
        cli_error(image, "'%s' cannot be a FAT label (up to 11 letters, digits, spaces and ! # $ %% & ' ( ) - @ ^ _ "
                         "` { } ~)", job->new_label);
    else if (job->status == VFS_DIRECTORY_IS_FULL)
        cli_error(image, "the root directory has no free entry for the label");
    else
        cli_error(image, "%s", vfs_status_text(job->status));
    return false;
}

/* The 11 stored bytes without their padding. */
static const char *label_text(const uint8_t label[11])
{
    static char text[12];
    memcpy(text, label, 11);
    int n = 11;
    while (n > 0 && text[n - 1] == ' ')
        n--;
    text[n] = '\0';
    return text;
}

/* ---- info ---- */

static const char info_usage[] = "IMAGE";

static void print_info(const char *image, const volume_job *job)
{
    const fat_geometry *g = &job->geo;
    const uint8_t *b = job->boot;
    const fs_component_volume *w = &job->where;
    char where[96];
    if (w->at_offset)
        snprintf(where, sizeof where, "at offset %llu", (unsigned long long)g->volume_offset);
    else if (g->volume_offset)
        snprintf(where, sizeof where, "partition at offset %llu", (unsigned long long)g->volume_offset);
    else
        snprintf(where, sizeof where, "the whole image");
    bool dirty_bit = fat_entry_clean_bit(g->type) && !(job->fat_entry1 & fat_entry_clean_bit(g->type));
    printf("%s:\n", image);
    printf("  FAT type:            FAT%u\n", (unsigned)g->type);
    printf("  location:            %s\n", where);
    printf("  OEM name:            \"%.8s\"\n", (const char *)b + 3);
    printf("  bytes per sector:    %u\n", g->bytes_per_sector);
    printf("  sectors per cluster: %u (%u-byte clusters)\n", g->sectors_per_cluster, g->bytes_per_cluster);
    printf("  reserved sectors:    %u\n", g->reserved_sectors);
    printf("  FATs:                %u of %u sectors each (%s)\n", g->fat_count, g->fat_sectors,
           g->ext_flags & FAT_EXT_FLAGS_NO_MIRROR ? "not mirrored" : "mirrored");
    if (g->type == FAT_TYPE_32)
        printf("  root directory:      cluster %u\n", g->root_cluster);
    else
        printf("  root directory:      %u entries (%u sectors)\n", g->root_entries, g->root_dir_sectors);
    printf("  total sectors:       %u (%llu bytes)\n", g->total_sectors, (unsigned long long)g->volume_bytes);
    printf("  hidden sectors:      %u\n", af_load_le32(b + FAT_BPB_HIDDEN_SECTORS));
    printf("  media descriptor:    0x%02x\n", g->media);
    printf("  first data sector:   %u\n", g->first_data_sector);
    printf("  data clusters:       %u\n", g->cluster_count);
    if (g->has_serial)
        printf("  serial number:       %04X-%04X\n", g->volume_id >> 16, g->volume_id & 0xFFFF);
    printf("  label:               %s%s%s\n", job->has_label ? "\"" : "", job->has_label ? label_text(job->label) : "none",
           job->has_label ? "\"" : "");
    if (g->type == FAT_TYPE_32) {
        if (job->has_fsinfo) {
            uint32_t free_count = af_load_le32(job->fsinfo + FAT_FSINFO_FREE_COUNT);
            uint32_t next = af_load_le32(job->fsinfo + FAT_FSINFO_NEXT_FREE);
            printf("  FSInfo:              sector %u, ", g->fsinfo_sector);
            if (free_count == FAT_FSINFO_UNKNOWN)
                printf("free clusters unknown, ");
            else
                printf("%u free clusters, ", free_count);
            if (next == FAT_FSINFO_UNKNOWN)
                printf("no next-free hint\n");
            else
                printf("next free cluster %u\n", next);
        } else {
            printf("  FSInfo:              none\n");
        }
        if (g->backup_boot_sector)
            printf("  backup boot sector:  %u\n", g->backup_boot_sector);
        else
            printf("  backup boot sector:  none\n");
    }
    printf("  state:               %s\n",
           dirty_bit || (g->has_serial && (g->state & FAT_STATE_DIRTY)) ? "dirty (not cleanly unmounted)" : "clean");
}

int cmd_info(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat info %s\n\n"
               "Show the FAT volume's boot sector, geometry and FSInfo, as minfo and fsck.fat -v\n"
               "do: FAT type, where the volume lies, sector and cluster sizes, FATs, root\n"
               "directory, sector and cluster counts, serial number, label, FSInfo's free\n"
               "count and hint, and whether it was cleanly unmounted. Works offline.\n",
               info_usage);
        return EXIT_OK;
    }
    int ch;
    optind = 1;
    while ((ch = getopt(argc, argv, ":")) != -1)
        return cli_bad_option("info", info_usage, ch, argv);
    const char *image = optind == argc - 1 ? argv[optind] : optind == argc && cli_global.image ? cli_global.image : NULL;
    if (!image)
        return cli_usage("info", info_usage);
    volume_job job = {0};
    if (!run_on_volume(image, true, info_task, &job))
        return EXIT_FAILED;
    print_info(image, &job);
    return EXIT_OK;
}

/* ---- label ---- */

static const char label_usage[] = "[-r] IMAGE [NEW-LABEL]";

int cmd_label(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("usage: asyncfat label %s\n\n"
               "Print the volume's label, or change it to NEW-LABEL (up to 11 characters,\n"
               "stored in upper case), as fatlabel and mlabel do: in the boot sector (and the\n"
               "FAT32 backup boot sector) and in the root directory's label entry. Works\n"
               "offline; the volume must not be mounted.\n\n"
               "  -r, --reset   remove the label\n",
               label_usage);
        return EXIT_OK;
    }
    static const struct option longopts[] = {{"reset", no_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
    bool reset = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":r", longopts, NULL)) != -1) {
        if (ch != 'r')
            return cli_bad_option("label", label_usage, ch, argv);
        reset = true;
    }
    int n = argc - optind;
    const char *image = cli_global.image, *new_label = NULL;
    if (image && n <= 1) {
        new_label = n == 1 ? argv[optind] : NULL; /* -i IMAGE [NEW-LABEL] */
    } else if (!image && n >= 1 && n <= 2) {
        image = argv[optind];
        new_label = n == 2 ? argv[optind + 1] : NULL;
    } else {
        return cli_usage("label", label_usage);
    }
    if (reset && new_label)
        return cli_usage("label", label_usage);
    volume_job job = {0};
    job.write_label = reset || new_label;
    job.new_label = new_label;
    if (job.new_label && job.new_label[0] == '\0') {
        cli_error("label", "an empty label: -r removes the label");
        return EXIT_USAGE;
    }
    if (!run_on_volume(image, !job.write_label, label_task, &job))
        return EXIT_FAILED;
    if (!job.write_label && job.has_label)
        printf("%s\n", label_text(job.label));
    return EXIT_OK;
}
