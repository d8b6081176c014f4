/* The offline subcommands, mkfs and check: like mkfs.fat and fsck.fat they work on an
 * unmounted image, in-process over the block layer (offline_volume), not through the
 * server. */
#include "tools/cli.h"
#include "tools/offline_volume.h"

#include "fat/fat_check.h"
#include "fat/fat_mkfs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char mkfs_usage[] = "IMAGE [--size N] [--fat 12|16|32] [--cluster BYTES] [--sector BYTES] [--label L]";

static void mkfs_help(void)
{
    printf("usage: asyncfat mkfs %s\n\n"
           "Create an empty FAT volume on IMAGE (a file, created if it does not exist, or a\n"
           "block device). Works offline, like mkfs.fat; the volume must not be mounted.\n"
           "IMAGE@N (or --partition N) formats partition N of the image's MBR or GPT, and\n"
           "--offset BYTES puts the volume at that offset, up to the image's end.\n\n"
           "  --size N        image size in bytes, or with a K, M or G suffix (needed to\n"
           "                  create the file; resizes an existing file)\n"
           "  --fat T         FAT type 12, 16 or 32 (default: from the size, as mkfs.fat)\n"
           "  --cluster B     cluster size in bytes (a power of two, at most 64 KiB)\n"
           "  --sector B      sector size: 512, 1024, 2048 or 4096 (default: the\n"
           "                  device's logical sector size; 512 for a file)\n"
           "  --label L       volume label (up to 11 characters)\n",
           mkfs_usage);
}

typedef struct mkfs_job {
    offline_volume *vol;
    const fs_component_volume *where;
    fat_mkfs_options opt;
    fat_geometry geo;
    vfs_status status;
    fat_bpb_error why;            /* when the partition could not be found */
} mkfs_job;

/* A partition (or an offset) of the image: where its volume goes. */
static void *mkfs_task(void *arg)
{
    mkfs_job *job = arg;
    offline_volume *v = job->vol;
    if (job->where->partition || job->where->at_offset) {
        uint64_t offset, bytes;
        job->status = offline_volume_locate(v, job->where, &offset, &bytes, &job->why);
        if (job->status != VFS_OK)
            return NULL;
        job->opt.volume_offset = offset;
        job->opt.volume_bytes = bytes;
        job->opt.hidden_sectors = (uint32_t)(offset / job->opt.bytes_per_sector);
    }
    job->status = fat_mkfs_format(&v->stack.cache, v->device_bytes, &job->opt, &job->geo);
    return NULL;
}

static int prepare_image_file(const char *image, uint64_t size)
{
    struct stat st;
    bool exists = stat(image, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        cli_error(image, "is a directory");
        return -1;
    }
    if (!exists && size == 0) {
        cli_error(image, "does not exist (give --size to create it)");
        return -1;
    }
    if (size == 0 || (exists && !S_ISREG(st.st_mode)))
        return 0;
    int fd = open(image, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        cli_error(image, "%s", cli_errno_text(errno));
        return -1;
    }
    int rc = ftruncate(fd, (off_t)size);
    int err = errno;
    close(fd);
    if (rc != 0) {
        cli_error(image, "cannot set the size: %s", cli_errno_text(err));
        return -1;
    }
    return 0;
}

int cmd_mkfs(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        mkfs_help();
        return EXIT_OK;
    }
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'},   {"fat", required_argument, NULL, 'F'},
        {"cluster", required_argument, NULL, 'c'}, {"sector", required_argument, NULL, 'S'},
        {"label", required_argument, NULL, 'L'},  {NULL, 0, NULL, 0},
    };
    uint64_t size = 0, cluster = 0, sector = 0;
    fat_mkfs_options opt;
    memset(&opt, 0, sizeof opt);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (!cli_parse_size(optarg, false, &size) || size == 0) {
                cli_error("mkfs", "--size '%s' is not a size (a number of bytes, or with a K, M or G suffix)",
                          optarg);
                return EXIT_USAGE;
            }
            break;
        case 'F':
            opt.fat_type = (uint32_t)atoi(optarg);
            if (opt.fat_type != 12 && opt.fat_type != 16 && opt.fat_type != 32) {
                cli_error("mkfs", "--fat '%s' is not a FAT type (12, 16 or 32)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            if (!cli_parse_size(optarg, false, &cluster) || !af_is_pow2(cluster) || cluster > 65536) {
                cli_error("mkfs", "--cluster '%s' is not a cluster size (a power of two, at most 64 KiB)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'S':
            if (!cli_parse_size(optarg, false, &sector) ||
                (sector != 512 && sector != 1024 && sector != 2048 && sector != 4096)) {
                cli_error("mkfs", "--sector '%s' is not a sector size (512, 1024, 2048 or 4096)", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'L':
            opt.label = optarg;
            if (strlen(optarg) > 11) {
                cli_error("mkfs", "the label '%s' is longer than 11 characters", optarg);
                return EXIT_USAGE;
            }
            break;
        default:
            return cli_bad_option("mkfs", mkfs_usage, ch, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage("mkfs", mkfs_usage);
    const char *image = argv[optind];
    cli_image where;
    if (!cli_image_resolve(image, &where)) {
        /* a new image file: only its own name, no partition of it */
        memset(&where, 0, sizeof where);
        snprintf(where.file, sizeof where.file, "%s", image);
        where.volume.at_offset = cli_global.at_offset;
        where.volume.offset = cli_global.offset;
        if (cli_global.partition || strchr(image, '@')) {
            cli_error(image, "no such image");
            return EXIT_FAILED;
        }
    }
    if (cluster && sector && cluster < sector) {
        cli_error("mkfs", "cluster size %llu is smaller than the sector size %llu", (unsigned long long)cluster,
                  (unsigned long long)sector);
        return EXIT_USAGE;
    }
    opt.volume_id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);

    if (offline_volume_in_use(where.file, true) || prepare_image_file(where.file, size) != 0)
        return EXIT_FAILED;
    offline_volume vol;
    if (offline_volume_open(&vol, where.file, (uint16_t)sector, false) != 0) {
        cli_error(image, "cannot open: %s", cli_errno_text(errno));
        return EXIT_FAILED;
    }
    /* Without --sector, the device's logical sector size (as mkfs.fat): a FAT sector
     * smaller than the device's cannot be mounted by Linux. */
    sector = blk_client_sector_size(&vol.stack.client);
    if (cluster && cluster < sector) {
        offline_volume_close(&vol);
        cli_error("mkfs", "cluster size %llu is smaller than the device's sector size %llu",
                  (unsigned long long)cluster, (unsigned long long)sector);
        return EXIT_USAGE;
    }
    opt.bytes_per_sector = (uint32_t)sector;
    opt.sectors_per_cluster = cluster ? (uint32_t)(cluster / sector) : 0;
    mkfs_job job = {.vol = &vol, .where = &where.volume, .opt = opt, .status = VFS_ERROR};
    uint64_t device_bytes = vol.device_bytes;
    bool ran = offline_volume_run(&vol, mkfs_task, &job);
    offline_volume_close(&vol);
    if (!ran || job.status != VFS_OK) {
        if (job.why != FAT_BPB_OK) {
            char why[512];
            if (!cli_diagnose_volume(&where, why, sizeof why) || job.why == FAT_BPB_NO_SUCH_PARTITION ||
                job.why == FAT_BPB_BAD_PARTITION || job.why == FAT_BPB_BAD_GPT)
                snprintf(why, sizeof why, "%s", fat_bpb_error_text(job.why));
            if (job.why == FAT_BPB_NO_SUCH_PARTITION)
                snprintf(why, sizeof why, "no partition %u in its partition table", (unsigned)where.volume.partition);
            cli_error(image, "%s", why);
        } else if (job.status == VFS_NO_SPACE) {
            char size_text[16];
            cli_human_size(job.opt.volume_bytes ? job.opt.volume_bytes : device_bytes - job.opt.volume_offset,
                           size_text, sizeof size_text);
            cli_error(image, "%s is too small for a FAT%s volume with these options", size_text,
                      opt.fat_type ? (opt.fat_type == 12 ? "12" : opt.fat_type == 16 ? "16" : "32") : "");
        } else if (job.status == VFS_INVALID_ARGUMENT) {
            cli_error(image, "cannot format: the label holds characters FAT labels cannot, or the options do not "
                             "fit together");
        } else {
            cli_error(image, "cannot format: %s", vfs_status_text(job.status));
        }
        return EXIT_FAILED;
    }
    printf("%s: FAT%u, %u clusters of %u bytes, %llu bytes\n", image, (unsigned)job.geo.type,
           job.geo.cluster_count, job.geo.bytes_per_cluster, (unsigned long long)job.geo.volume_bytes);
    return EXIT_OK;
}

/* ---- check ---- */

enum {
    CHECK_CLEAN = 0,
    CHECK_REPAIRED = 1,
    CHECK_LEFT = 4,
    CHECK_ERROR = 8,
};

static const char check_usage[] = "[--repair] IMAGE";

static void check_help(void)
{
    printf("usage: asyncfat check %s\n\n"
           "Check the consistency of the FAT volume on IMAGE (offline, like fsck.fat; the\n"
           "volume must not be mounted) and print what it finds and a summary.\n\n"
           "  --repair, -r    fix what is found (lost clusters are freed), in one pass;\n"
           "                  nothing is written when the volume does not confirm the\n"
           "                  boot sector's layout (the output says why)\n\n"
           "A FAT32 boot sector that the volume contradicts is checked and repaired from\n"
           "its backup.\n\n"
           "Exit status (as fsck): 0 clean, 1 problems found and all repaired, 4 problems\n"
           "left unrepaired, 8 operational error (unreadable image, not a FAT volume).\n",
           check_usage);
}

typedef struct check_job {
    offline_volume *vol;
    fat_check_options opt;
    fat_check_result result;
    fat_check_volume volume;
    vfs_status status;
    const char *image;
    const fs_component_volume *where;
    bool bpb_failed, locate_failed;
    fat_bpb_error why;
} check_job;

static void check_log(void *ctx, const char *message)
{
    AF_UNUSED(ctx);
    printf("  %s\n", message);
}

static void *check_task(void *arg)
{
    check_job *job = arg;
    offline_volume *v = job->vol;
    uint64_t offset = 0, bytes = 0;
    job->status = offline_volume_locate(v, job->where, &offset, &bytes, &job->why);
    /* a broken boot sector at sector 0 may have a usable backup */
    if (job->status == VFS_CORRUPT && job->why != FAT_BPB_NO_PARTITION && job->why != FAT_BPB_BAD_PARTITION &&
        job->why != FAT_BPB_BAD_GPT && !job->where->partition && !job->where->at_offset) {
        offset = 0;
        job->status = VFS_OK;
    }
    if (job->status != VFS_OK) {
        job->locate_failed = true;
        return NULL;
    }
    job->status = fat_check_volume_find(&v->stack.cache, offset, &job->volume);
    job->why = job->volume.primary_error;
    if (job->status != VFS_OK) {
        job->bpb_failed = job->status == VFS_CORRUPT;
        return NULL;
    }
    size_t need = fat_check_memory_needed(&job->volume.geo);
    job->opt.work = malloc(need ? need : 1);
    job->opt.work_size = need;
    if (!job->opt.work) {
        job->status = VFS_ALLOCATION_ERROR;
        return NULL;
    }
    job->status = fat_check_run(&v->stack.cache, &job->volume, &job->opt, &job->result);
    free(job->opt.work);
    return NULL;
}

int cmd_check(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        check_help();
        return EXIT_OK;
    }
    static const struct option longopts[] = {{"repair", no_argument, NULL, 'r'}, {NULL, 0, NULL, 0}};
    bool repair = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":r", longopts, NULL)) != -1) {
        if (ch != 'r') {
            cli_bad_option("check", check_usage, ch, argv);
            return CHECK_ERROR;
        }
        repair = true;
    }
    if (optind != argc - 1) {
        cli_usage("check", check_usage);
        return CHECK_ERROR;
    }
    const char *image = argv[optind];
    cli_image where;
    if (!cli_image_resolve(image, &where)) {
        cli_location none = {0};
        cli_fail_not_image(image, &none);
        return CHECK_ERROR;
    }
    offline_volume vol;
    if (offline_volume_open(&vol, where.file, 0, !repair) != 0) {
        cli_error(image, "cannot open: %s", cli_errno_text(errno));
        return CHECK_ERROR;
    }
    check_job job = {.vol = &vol, .image = image, .where = &where.volume, .status = VFS_ERROR};
    job.opt.repairs = repair ? FAT_CHECK_REPAIR_ALL : 0;
    job.opt.log = check_log;
    printf("%s:\n", image);
    fflush(stdout);
    bool ran = offline_volume_run(&vol, check_task, &job);
    offline_volume_close(&vol);
    if (!ran || job.status != VFS_OK) {
        char why[512];
        if (job.locate_failed && cli_diagnose_volume(&where, why, sizeof why))
            cli_error(image, "%s", why);
        else if (job.bpb_failed || job.locate_failed)
            cli_error(image, "not a FAT volume: %s", fat_bpb_error_text(job.why));
        else
            cli_error(image, "cannot check: %s", vfs_status_text(job.status));
        return CHECK_ERROR;
    }
    const fat_check_result *r = &job.result;
    printf("FAT%u: %u files, %u directories, %u/%u clusters used, %u bad\n", (unsigned)job.volume.geo.type, r->files,
           r->directories, r->used_clusters, job.volume.geo.cluster_count, r->bad_clusters);
    if (r->problems == 0) {
        printf("clean\n");
        return CHECK_CLEAN;
    }
    printf("%u problem%s found", r->problems, r->problems == 1 ? "" : "s");
    if (repair)
        printf(", %u repaired, %u left\n", r->repaired, r->left);
    else
        printf(" (run with --repair to fix)\n");
    return r->left > 0 ? CHECK_LEFT : CHECK_REPAIRED;
}
