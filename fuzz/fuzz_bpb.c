/* libFuzzer target: the boot sector / BPB parser and mount.
 *
 * Input: selector byte (template; flag bit 0: mount read-only) and the reserved area's
 * first sectors (boot sector, FSInfo, backup boot sector) of the template. The boot
 * window goes through fat_bpb_parse and fat_bpb_locate directly (oracle: a geometry they
 * accept lies inside the device and its FAT covers its clusters), then the image is
 * mounted and walked through the engine; no crash, no sanitizer report, no deadlock. */
#include "fat/fat_layout.h"
#include "fuzz/fz_target.h"

#include <stdio.h>
#include <string.h>

static uint64_t fat_bytes_needed(const fat_geometry *g)
{
    uint64_t entries = (uint64_t)g->cluster_count + 2;
    return g->type == FAT_TYPE_12 ? (entries * 3 + 1) / 2 : g->type == FAT_TYPE_16 ? entries * 2 : entries * 4;
}

static void check_geometry(const fat_geometry *g, uint64_t device_bytes)
{
    uint64_t end = g->volume_offset + g->volume_bytes;
    if (end > device_bytes)
        fz_oracle_failed("bpb", "volume ends at %llu, past the device (%llu)", (unsigned long long)end,
                         (unsigned long long)device_bytes);
    if (g->bytes_per_cluster == 0 || g->bytes_per_cluster > 65536)
        fz_oracle_failed("bpb", "cluster size %u", g->bytes_per_cluster);
    if (g->fat_offset + (uint64_t)g->fat_count * g->fat_bytes > g->data_offset)
        fz_oracle_failed("bpb", "FATs overlap the data area");
    if (g->data_offset + (uint64_t)g->cluster_count * g->bytes_per_cluster > end)
        fz_oracle_failed("bpb", "clusters run past the volume end");
    if (g->fat_bytes < fat_bytes_needed(g))
        fz_oracle_failed("bpb", "FAT of %llu bytes cannot hold %u clusters", (unsigned long long)g->fat_bytes,
                         g->cluster_count);
    if (g->type == FAT_TYPE_32 && (g->root_cluster < 2 || g->root_cluster > g->max_cluster))
        fz_oracle_failed("bpb", "root cluster %u out of range", g->root_cluster);
    if (g->max_cluster != g->cluster_count + 1)
        fz_oracle_failed("bpb", "max_cluster %u for %u clusters", g->max_cluster, g->cluster_count);
}

typedef struct job {
    fz_image_input in;
    fat_volume vol;
} job;

static void *mount_task(void *arg)
{
    job *j = arg;
    fat_config cfg = fz_target_fat_config(j->in.rig);
    cfg.read_only = j->in.rig->read_only;
    fat_bpb_error why;
    if (fat_mount(&j->vol, &j->in.rig->cache, &cfg, &why) != VFS_OK)
        return NULL;
    check_geometry(fat_get_geometry(&j->vol), j->in.rig->image_bytes);
    fat_statfs_info info;
    fat_statfs(&j->vol, &info);
    fz_walk_stats ws;
    fz_walk_tree(&j->vol, 64, 3, &ws);
    if (!cfg.read_only) {
        fat_node *f;
        if (fat_open(&j->vol, "/NEW.TXT", 8, VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &f) == VFS_OK) {
            static const uint8_t data[1500] = {1, 2, 3};
            size_t done;
            fat_write(f, 0, data, sizeof data, &done);
            fat_close(f);
        }
    }
    fat_unmount(&j->vol);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job j;
    memset(&j, 0, sizeof j);
    bool read_only = size > 0 && ((data[0] >> 2) & 1);
    if (!fz_target_load(data, size, FZ_WIN_BOOT, read_only, &j.in))
        return 0;
    /* The parser and locator alone, on the boot sector as the input has it. */
    uint8_t sector[4096];
    memcpy(sector, j.in.rig->image, sizeof sector);
    uint64_t device = j.in.rig->image_bytes;
    fat_geometry g;
    fat_bpb_error why;
    for (uint64_t dev = device; dev; dev = dev == device ? device / 3 : 0)
        if (fat_bpb_parse(sector, sizeof sector, 0, dev, &g, &why) == VFS_OK)
            check_geometry(&g, dev);
    for (int partition = -1; partition < 4; partition++) {
        uint64_t offset, bytes;
        if (fat_bpb_locate(sector, 512, device, j.in.tmpl->spec->sector_size, partition, &offset, &bytes, &why) ==
                VFS_OK &&
            (offset > device || bytes > device - offset))
            fz_oracle_failed("bpb", "partition %d at %llu+%llu outside the device", partition,
                             (unsigned long long)offset, (unsigned long long)bytes);
    }
    if (!fz_rig_run(j.in.rig, mount_task, &j))
        fz_oracle_failed("bpb", "mount or walk deadlocked");
    return 0;
}
