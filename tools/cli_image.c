/* Naming images and the files in them (FILE, FILE@N, FILE@@OFFSET, IMAGE:PATH, -i IMAGE
 * ::PATH), and why a volume does not mount (see cli.h). */
#include "tools/cli.h"

#include "fat/fat_partition.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_image_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

static void apply_globals(cli_image *out)
{
    out->volume.time_offset_minutes = cli_global.time_offset_minutes;
    out->volume.discard = cli_global.discard;
    if (out->volume.partition || out->volume.at_offset)
        return;
    out->volume.partition = cli_global.partition;
    out->volume.at_offset = cli_global.at_offset;
    out->volume.offset = cli_global.offset;
}

bool cli_image_resolve(const char *name, cli_image *out)
{
    memset(out, 0, sizeof *out);
    if (strlen(name) >= sizeof out->file)
        return false;
    snprintf(out->file, sizeof out->file, "%s", name);
    if (!is_image_file(out->file)) {
        /* FILE@@OFFSET (mtools), FILE@N */
        char *at = strrchr(out->file, '@');
        if (!at || at == out->file)
            return false;
        bool offset = at > out->file + 1 && at[-1] == '@';
        const char *value = at + 1;
        at[offset ? -1 : 0] = '\0';
        if (!is_image_file(out->file))
            return false;
        if (offset) {
            if (!cli_parse_size(value, true, &out->volume.offset))
                return false;
            out->volume.at_offset = true;
        } else {
            char *end;
            errno = 0;
            unsigned long n = strtoul(value, &end, 10);
            if (errno || end == value || *end || n < 1 || n > 4096 || value[0] == '-')
                return false;
            out->volume.partition = (uint32_t)n;
        }
    }
    apply_globals(out);
    return true;
}

static void set_image_path(cli_location *out, const char *path)
{
    int n = snprintf(out->path, sizeof out->path, path[0] == '/' ? "%s" : "/%s", path);
    out->too_long = n < 0 || (size_t)n >= sizeof out->path;
}

/* The fields, not the 40 KiB of buffers behind them: each is a string, and clearing them
 * whole would fault in ten pages for every operand. */
static void clear_location(cli_location *out)
{
    out->in_image = false;
    out->too_long = false;
    out->image[0] = out->path[0] = out->missing[0] = '\0';
}

void cli_parse_location(const char *arg, cli_location *out)
{
    clear_location(out);
    if (cli_global.image && strncmp(arg, "::", 2) == 0) {
        out->in_image = true;
        snprintf(out->image, sizeof out->image, "%s", cli_global.image);
        set_image_path(out, arg + 2);
        return;
    }
    cli_image img;
    for (const char *colon = strchr(arg, ':'); colon; colon = strchr(colon + 1, ':')) {
        size_t n = (size_t)(colon - arg);
        if (n == 0 || n >= sizeof out->image)
            continue;
        memcpy(out->image, arg, n);
        out->image[n] = '\0';
        if (cli_image_resolve(out->image, &img)) {
            out->in_image = true;
            set_image_path(out, colon + 1);
            return;
        }
        if (!out->missing[0])
            snprintf(out->missing, sizeof out->missing, "%s", out->image);
    }
    out->image[0] = '\0';
    int len = snprintf(out->path, sizeof out->path, "%s", arg);
    out->too_long = len < 0 || (size_t)len >= sizeof out->path;
}

bool cli_parse_image_arg(const char *arg, cli_location *out)
{
    cli_parse_location(arg, out);
    if (out->in_image)
        return true;
    cli_image img;
    if (cli_image_resolve(arg, &img) || !strchr(arg, ':')) {
        clear_location(out);
        snprintf(out->image, sizeof out->image, "%s", arg);
        snprintf(out->path, sizeof out->path, "/");
        out->in_image = true;
        return true;
    }
    return false;
}

/* Why `name` is not an image: a sentence for "asyncfat: NAME: ...". */
static const char *not_an_image(const char *name)
{
    struct stat st;
    if (stat(name, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? "no such image" : cli_errno_text(errno);
    if (S_ISDIR(st.st_mode))
        return "not an image: a directory";
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return "not an image: neither a regular file nor a block device";
    return "no such image";
}

int cli_fail_not_image(const char *arg, const cli_location *loc)
{
    const char *name = loc->missing[0] ? loc->missing : arg;
    cli_error(name, "%s", not_an_image(name));
    return EXIT_FAILED;
}

const char *cli_in_image(const char *image, const char *path)
{
    static __thread char where[4096 + CLI_PATH_MAX + 8]; /* a message: a longer path is cut */
    snprintf(where, sizeof where, "%s:%s", image, path);
    return where;
}

const char *cli_where(const cli_location *loc) { return loc->in_image ? cli_in_image(loc->image, loc->path) : loc->path; }

/* ---- why a volume does not mount ---- */

typedef struct image_reader {
    int fd;
} image_reader;

static vfs_status read_image(void *ctx, uint64_t offset, void *dst, size_t len)
{
    image_reader *r = ctx;
    size_t done = 0;
    while (done < len) {
        ssize_t got = pread(r->fd, (uint8_t *)dst + done, len - done, (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return VFS_IO_ERROR;
        done += (size_t)got;
    }
    return VFS_OK;
}

bool cli_diagnose_volume(const cli_image *img, char *why, size_t why_size)
{
    uint64_t device_bytes;
    uint16_t sector_size;
    int err = blk_device_geometry_path(img->file, &device_bytes, &sector_size);
    if (err) {
        snprintf(why, why_size, "%s", cli_errno_text(err));
        return true;
    }
    /* The server sees whole 4096-byte blocks only. */
    device_bytes -= device_bytes % BLK_TRANSFER_SIZE;
    if (device_bytes == 0) {
        snprintf(why, why_size, "not a FAT volume: smaller than 4096 bytes");
        return true;
    }
    image_reader r = {open(img->file, O_RDONLY | O_CLOEXEC)};
    if (r.fd < 0) {
        snprintf(why, why_size, "%s", cli_errno_text(errno));
        return true;
    }
    const fs_component_volume *v = &img->volume;
    int partition = v->at_offset ? FAT_PARTITION_AT_OFFSET : (int)v->partition - 1;
    uint64_t offset, bytes;
    fat_bpb_error bpb_why = FAT_BPB_OK;
    vfs_status st = fat_partition_locate(read_image, &r, device_bytes, sector_size, partition, v->offset, &offset,
                                         &bytes, &bpb_why);
    uint8_t sector[512];
    fat_geometry g;
    if (st == VFS_OK && read_image(&r, offset, sector, sizeof sector) == VFS_OK)
        st = fat_bpb_parse(sector, sizeof sector, offset, offset + bytes, &g, &bpb_why);
    close(r.fd);
    if (st == VFS_OK)
        return false;
    if (bpb_why == FAT_BPB_NO_SUCH_PARTITION)
        snprintf(why, why_size, "no partition %u in its partition table", (unsigned)v->partition);
    else if (bpb_why == FAT_BPB_BAD_PARTITION && v->at_offset)
        snprintf(why, why_size, "offset %llu is past the end of the image (%llu bytes)",
                 (unsigned long long)v->offset, (unsigned long long)device_bytes);
    else if (bpb_why == FAT_BPB_BAD_PARTITION || bpb_why == FAT_BPB_BAD_GPT)
        snprintf(why, why_size, "%s", fat_bpb_error_text(bpb_why));
    else if (v->partition)
        snprintf(why, why_size, "partition %u is not a FAT volume: %s", (unsigned)v->partition,
                 fat_bpb_error_text(bpb_why));
    else if (v->at_offset)
        snprintf(why, why_size, "no FAT volume at offset %llu: %s", (unsigned long long)v->offset,
                 fat_bpb_error_text(bpb_why));
    else
        snprintf(why, why_size, "not a FAT volume: %s", fat_bpb_error_text(bpb_why));
    return true;
}
