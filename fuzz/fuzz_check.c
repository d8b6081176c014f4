/* libFuzzer target: the checker and its repair (fat/fat_check.h).
 *
 * Input: selector byte (template) and the template's reserved-area start, FAT 0 and FAT 1
 * starts, FAT12/16 root directory and first data clusters. Oracles:
 *  - a check without repair writes nothing;
 *  - on a volume the check calls clean, repair writes nothing;
 *  - after one repair a second check finds nothing (the "one pass");
 *  - a volume the checker calls clean mounts in the engine and reads without
 *    VFS_CORRUPT (the engine and the checker agree on what is consistent).
 * (Whether fsck.fat accepts the repaired volume is the image mutator's oracle: running it
 * for every input would be too slow here.) */
#include "fat/fat_check.h"
#include "fuzz/fz_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    fz_image_input in;
    fat_check_volume cv;
    fat_volume fv;
} job;

/* The findings' text is formatted (and so fuzzed too), then dropped, or shown when
 * ASYNCFAT_FUZZ_VERBOSE is set (to look at a reproduction). */
static void discard(void *ctx, const char *message)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("ASYNCFAT_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "  %s: %s\n", (const char *)ctx, message);
}

/* Each run finds the layout afresh: a repair may have rewritten the boot sector. */
static bool find_volume(job *j)
{
    return fat_check_volume_find(&j->in.rig->cache, 0, &j->cv) == VFS_OK;
}

static vfs_status run_check(job *j, bool repair, fat_check_result *r)
{
    size_t need = fat_check_memory_needed(&j->cv.geo);
    fat_check_options o = {.repairs = repair ? FAT_CHECK_REPAIR_ALL : 0, .work = fz_target_work(need),
                           .work_size = need, .log = discard, .log_ctx = repair ? "repair" : "check"};
    memset(r, 0, sizeof *r);
    return fat_check_run(&j->in.rig->cache, &j->cv, &o, r);
}

static void *check_task(void *arg)
{
    job *j = arg;
    fz_rig *rig = j->in.rig;
    if (!find_volume(j))
        return NULL;
    fat_check_result first, repaired, second;
    uint64_t writes = fz_rig_writes(rig);
    if (run_check(j, false, &first) != VFS_OK)
        return NULL;
    if (fz_rig_writes(rig) != writes)
        fz_oracle_failed("check", "a check without repair wrote to the device");
    writes = fz_rig_writes(rig);
    if (run_check(j, true, &repaired) != VFS_OK)
        return NULL;
    if (first.problems == 0 && fz_rig_writes(rig) != writes)
        fz_oracle_failed("check", "repair wrote to a volume the check called clean");
    if (repaired.refused) {
        if (fz_rig_writes(rig) != writes)
            fz_oracle_failed("check", "a repair that refused (unconfirmed layout) wrote to the device");
        return NULL;
    }
    if (!find_volume(j))
        fz_oracle_failed("check", "after the repair the volume has no usable boot sector");
    if (run_check(j, false, &second) != VFS_OK)
        fz_oracle_failed("check", "the check after a repair failed to run");
    if (second.problems != 0)
        fz_oracle_failed("check",
                         "after one repair (%u problems, %u repairs) a second check finds %u: bad_links %u loops %u "
                         "cross_links %u lost %u sizes %u entries %u lfns %u fats %u fsinfo %u boot %u dirty %u",
                         first.problems, repaired.repaired, second.problems, second.bad_links, second.loops,
                         second.cross_links, second.lost_clusters, second.size_mismatches, second.bad_entries,
                         second.orphan_lfns, second.fat_mismatches, second.fsinfo_errors, second.boot_errors,
                         second.dirty);
    if (second.problems != 0)
        return NULL;
    /* The engine must read what the checker calls clean. */
    fat_config cfg = fz_target_fat_config(rig);
    cfg.read_only = true;
    fat_bpb_error why;
    vfs_status st = fat_mount(&j->fv, &rig->cache, &cfg, &why);
    if (st != VFS_OK)
        fz_oracle_failed("check", "the checker calls the volume clean but mount says %s (%s)", vfs_status_text(st),
                         fat_bpb_error_text(why));
    if (st != VFS_OK)
        return NULL;
    fz_walk_stats ws;
    fz_walk_tree(&j->fv, 400, 8, &ws);
    if (ws.corrupt)
        fz_oracle_failed("check", "the checker calls the volume clean but the engine finds %u corrupt items", ws.corrupt);
    fat_unmount(&j->fv);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job j;
    memset(&j, 0, sizeof j);
    if (!fz_target_load(data, size, FZ_WIN_BOOT | FZ_WIN_FAT0 | FZ_WIN_FAT1 | FZ_WIN_ROOT | FZ_WIN_DATA, false, &j.in))
        return 0;
    if (!fz_rig_run(j.in.rig, check_task, &j))
        fz_oracle_failed("check", "check or repair deadlocked");
    return 0;
}
