/* libFuzzer target: directory and long-name parsing (readdir, lookup) through the engine.
 *
 * Input: selector byte (template; flag bit 0: mount read-only, bit 1: also change the
 * tree) and the template's FAT 0 start, FAT12/16 root directory and first data clusters
 * (the directories). The volume is mounted on the RAM device and walked: every name
 * readdir returns is looked up with stat (oracle: a listed name is found), files are read
 * from the start; with bit 1 files and directories are then created, renamed and removed
 * in the damaged directories. No crash, no sanitizer report, no deadlock. */
#include "fuzz/fz_target.h"

#include <stdio.h>
#include <string.h>

typedef struct job {
    fz_image_input in;
    fat_volume vol;
} job;

#define PATH(s) s, sizeof(s) - 1

static void change_tree(fat_volume *vol)
{
    fat_node *f;
    static const uint8_t data[3000] = {7};
    size_t done;
    if (fat_open(vol, PATH("/sub/A new file with a long name.txt"), VFS_OPEN_READ_WRITE | VFS_OPEN_CREATE, &f) ==
        VFS_OK) {
        fat_write(f, 0, data, sizeof data, &done);
        fat_close(f);
    }
    fat_mkdir(vol, PATH("/sub/deeper/NEWDIR"));
    fat_rename(vol, PATH("/readme.txt"), PATH("/sub/deeper/renamed with a long name.txt"));
    fat_rename(vol, PATH("/sub/f3"), PATH("/F3.TXT"));
    fat_unlink(vol, PATH("/sub/a.txt"));
    fat_unlink(vol, PATH("/sub/Mixed Case.Text"));
    fat_rmdir(vol, PATH("/sub/deeper/d3"));
    fat_rename(vol, PATH("/Long Directory Name"), PATH("/sub/moved"));
    if (fat_open(vol, PATH("/sub/deeper/x.bin"), VFS_OPEN_READ_WRITE, &f) == VFS_OK) {
        fat_truncate(f, 100);
        fat_write(f, 5000, data, 10, &done);
        fat_close(f);
    }
}

static void *walk_task(void *arg)
{
    job *j = arg;
    fat_config cfg = fz_target_fat_config(j->in.rig);
    cfg.read_only = j->in.rig->read_only;
    if (fat_mount(&j->vol, &j->in.rig->cache, &cfg, NULL) != VFS_OK)
        return NULL;
    fz_walk_stats ws;
    fz_walk_tree(&j->vol, 400, 8, &ws);
    if (ws.lookup_misses)
        fz_oracle_failed("dir", "readdir listed %s but stat cannot find it (%u such names)", ws.first_miss,
                         ws.lookup_misses);
    if (!cfg.read_only && (j->in.flags & 2)) {
        change_tree(&j->vol);
        fz_walk_tree(&j->vol, 400, 8, &ws);
    }
    fat_unmount(&j->vol);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job j;
    memset(&j, 0, sizeof j);
    bool read_only = size > 0 && ((data[0] >> 2) & 1);
    if (!fz_target_load(data, size, FZ_WIN_FAT0 | FZ_WIN_ROOT | FZ_WIN_DATA, read_only, &j.in))
        return 0;
    if (!fz_rig_run(j.in.rig, walk_task, &j))
        fz_oracle_failed("dir", "walk deadlocked");
    return 0;
}
