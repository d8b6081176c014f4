/* Benchmarks of the FAT format-level code (variants compared in the same run).
 *
 *   alias_probes_hashed / alias_probes_numeric_only
 *                        candidates tried per name when 5,000 names share one 8.3 basis,
 *                        with the engine's O(1) used-name set: the hashed tails after ~4
 *                        against numeric tails only (~1, ~2, ... ~999999)
 *   alias_us_per_name_hashed / alias_us_per_name_numeric_only, alias_numeric_to_hashed_ratio
 *   mkfs_fat32_256mib_ms format a 256 MiB RAM device as FAT32
 *   check_entries_per_s  checker over one directory of 20,000 files of 4 clusters each
 *   check_clusters_per_s the same run in clusters walked (chains + the lost-cluster scan)
 *   repair_clean_clusters_per_s
 *                        check --repair (FAT_CHECK_REPAIR_ALL) of that clean volume
 *   repair_dirty_ms      the same on it made dirty: dirty flags, FSInfo count unknown, 1% of
 *                        its clusters lost, every 10th file's chain longer than its size
 *   check_1m_clusters_ms / repair_1m_dirty_ms
 *                        the same on a volume with the cluster count of a 32 GB SD card
 *                        (1 M clusters; here 512 MiB of 512-byte clusters in RAM, 40,000
 *                        files of 24 clusters)
 */
#include "fat/fat_check.h"
#include "fat/fat_layout.h"
#include "fat/fat_mkfs.h"
#include "fat/fat_name.h"
#include "tests/support/blk_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ---- aliases ------------------------------------------------------------------------------ */

#define SET_BITS 16
static uint8_t set_names[1u << SET_BITS][11];
static bool set_used[1u << SET_BITS];

static bool set_has(const uint8_t sn[11])
{
    uint32_t i = fat_short_name_hash(sn) & ((1u << SET_BITS) - 1);
    while (set_used[i]) {
        if (memcmp(set_names[i], sn, 11) == 0)
            return true;
        i = (i + 1) & ((1u << SET_BITS) - 1);
    }
    return false;
}

static void set_add(const uint8_t sn[11])
{
    uint32_t i = fat_short_name_hash(sn) & ((1u << SET_BITS) - 1);
    while (set_used[i])
        i = (i + 1) & ((1u << SET_BITS) - 1);
    set_used[i] = true;
    memcpy(set_names[i], sn, 11);
}

/* Candidate k of the numeric-only scheme: the basis with ~k. */
static bool numeric_candidate(const fat_alias_basis *b, uint32_t k, uint8_t sn[11])
{
    if (k == 0)
        return fat_alias_candidate(b, 0, sn);
    if (k <= FAT_ALIAS_NUMERIC_FIRST)
        return fat_alias_candidate(b, k, sn);
    return fat_alias_candidate(b, k + FAT_ALIAS_HASHED, sn);
}

static double alias_run(bool hashed, uint32_t names, double *probes_per_name)
{
    memset(set_used, 0, sizeof set_used);
    uint64_t probes = 0;
    double t0 = now_ns();
    for (uint32_t i = 0; i < names; i++) {
        char utf8[64];
        int len = snprintf(utf8, sizeof utf8, "Camera recording %06u.mp4", i);
        fat_name n;
        if (fat_name_prepare(utf8, (size_t)len, &n) != VFS_OK)
            abort();
        fat_alias_basis b;
        fat_alias_basis_make(n.units, n.len, &b);
        uint8_t sn[11];
        for (uint32_t k = 0;; k++) {
            probes++;
            bool ok = hashed ? fat_alias_candidate(&b, k, sn) : numeric_candidate(&b, k, sn);
            if (ok && !set_has(sn))
                break;
        }
        set_add(sn);
    }
    double t = now_ns() - t0;
    *probes_per_name = (double)probes / names;
    return t / names / 1000.0;
}

/* ---- mkfs and check ------------------------------------------------------------------------ */

typedef struct job {
    fat_mkfs_options o;
    uint64_t device;
    fat_geometry g;
    vfs_status st;
    fat_check_result r;
    uint32_t repairs;
    double ns;
} job;

static blk_fixture fx;
static job the_job;

static void *mkfs_entry(void *arg)
{
    job *j = arg;
    double t0 = now_ns();
    j->st = fat_mkfs_format(&fx.stack.cache, j->device, &j->o, &j->g);
    j->ns = now_ns() - t0;
    return NULL;
}

static bool quiet;

static void print_finding(void *ctx, const char *msg)
{
    (void)ctx;
    if (!quiet)
        fprintf(stderr, "check: %s\n", msg);
}

static void *check_entry(void *arg)
{
    job *j = arg;
    fat_check_volume vol;
    double t0 = now_ns();
    j->st = fat_check_volume_find(&fx.stack.cache, j->g.volume_offset, &vol);
    if (j->st != VFS_OK)
        return NULL;
    size_t need = fat_check_memory_needed(&vol.geo);
    void *work = malloc(need);
    fat_check_options o = {.repairs = j->repairs, .work = work, .work_size = need, .log = print_finding};
    j->st = fat_check_run(&fx.stack.cache, &vol, &o, &j->r);
    j->ns = now_ns() - t0;
    free(work);
    return NULL;
}

static void fat_put(const fat_geometry *g, uint32_t cl, uint32_t v)
{
    for (uint32_t c = 0; c < g->fat_count; c++)
        memcpy(fx.image + fat_entry_offset(g, c, cl), &(uint32_t){v}, 4);
}

static void dirent(uint8_t *e, const char *name11, uint8_t attr, uint32_t cl, uint32_t size)
{
    memset(e, 0, 32);
    memcpy(e, name11, 11);
    e[FAT_DIRENT_ATTR] = attr;
    af_store_le16(e + FAT_DIRENT_CLUSTER_HI, (uint16_t)(cl >> 16));
    af_store_le16(e + FAT_DIRENT_CLUSTER_LO, (uint16_t)cl);
    af_store_le32(e + FAT_DIRENT_SIZE_BYTES, size);
}

/* Writes BIGDIR with `files` files of `per_file` clusters straight into the image. */
static uint64_t populate(const fat_geometry *g, uint32_t files, uint32_t per_file)
{
    uint32_t per_cluster = g->bytes_per_cluster / 32;
    uint32_t dir_clusters = (files + 2 + per_cluster - 1) / per_cluster;
    uint32_t next = 3;
    uint32_t dir_first = next;
    for (uint32_t i = 0; i < dir_clusters; i++, next++)
        fat_put(g, next, i + 1 == dir_clusters ? FAT32_EOC : next + 1);
    dirent(fx.image + fat_cluster_offset(g, g->root_cluster), "BIGDIR     ", FAT_ATTR_DIRECTORY, dir_first, 0);
    uint8_t *dir = fx.image + fat_cluster_offset(g, dir_first);
    dirent(dir, ".          ", FAT_ATTR_DIRECTORY, dir_first, 0);
    dirent(dir + 32, "..         ", FAT_ATTR_DIRECTORY, 0, 0);
    for (uint32_t i = 0; i < files; i++) {
        char name[12];
        snprintf(name, sizeof name, "F%07uBIN", i);
        dirent(dir + 32 * (i + 2), name, FAT_ATTR_ARCHIVE, next, per_file * g->bytes_per_cluster);
        for (uint32_t k = 0; k < per_file; k++, next++)
            fat_put(g, next, k + 1 == per_file ? FAT32_EOC : next + 1);
    }
    af_store_le32(fx.image + g->volume_offset + g->fsinfo_sector * g->bytes_per_sector + FAT_FSINFO_FREE_COUNT,
                  g->cluster_count - (next - 2));
    blk_cache_invalidate(&fx.stack.cache);
    return (uint64_t)next - 2;
}

static bool run_check(uint32_t repairs, double *seconds)
{
    the_job.repairs = repairs;
    blk_fixture_spawn(&fx, check_entry, &the_job);
    if (!blk_fixture_run(&fx) || the_job.st != VFS_OK) {
        fprintf(stderr, "check failed: status %d\n", the_job.st);
        return false;
    }
    *seconds = the_job.ns / 1e9;
    return true;
}

/* A dirty volume as a power cut leaves it: dirty flags, FSInfo count unknown, 1% of the
 * clusters allocated in no chain, every 10th file's size down to one cluster. */
static void make_dirty(const fat_geometry *g, uint64_t used, uint32_t files)
{
    uint8_t *boot = fx.image + g->volume_offset;
    boot[FAT_BS32_STATE] |= FAT_STATE_DIRTY;
    uint32_t e1;
    memcpy(&e1, fx.image + fat_entry_offset(g, 0, 1), 4);
    fat_put(g, 1, e1 & ~FAT32_CLEAN_SHUTDOWN);
    af_store_le32(boot + g->fsinfo_sector * g->bytes_per_sector + FAT_FSINFO_FREE_COUNT, FAT_FSINFO_UNKNOWN);
    uint32_t lost = g->cluster_count / 100;
    for (uint32_t i = 0; i < lost; i++)
        fat_put(g, (uint32_t)(used + 2 + i), FAT32_EOC);
    uint32_t dir_first = 3;
    uint8_t *dir = fx.image + fat_cluster_offset(g, dir_first);
    for (uint32_t i = 0; i < files; i += 10)
        af_store_le32(dir + 32 * (i + 2) + FAT_DIRENT_SIZE_BYTES, g->bytes_per_cluster);
    blk_cache_invalidate(&fx.stack.cache);
}

/* mkfs, populate, then time a check, a repair of the clean volume and one of it made
 * dirty (which must leave it clean). */
static bool bench_volume(uint64_t bytes, uint32_t sectors_per_cluster, uint32_t files, uint32_t per_file,
                         uint64_t *used, double *check_s, double *repair_s, double *dirty_s)
{
    blk_fixture_options fo = blk_fixture_defaults();
    fo.image_bytes = bytes;
    fo.cache_buffers = 1024;
    if (blk_fixture_init(&fx, &fo) != 0)
        return false;
    memset(&the_job, 0, sizeof the_job);
    the_job.o.fat_type = 32;
    the_job.o.volume_id = 1;
    the_job.o.sectors_per_cluster = sectors_per_cluster;
    the_job.device = blk_client_capacity_blocks(&fx.stack.client) * BLK_TRANSFER_SIZE;
    blk_fixture_spawn(&fx, mkfs_entry, &the_job);
    bool ok = blk_fixture_run(&fx) && the_job.st == VFS_OK;
    if (ok && bytes == 256ull << 20)
        printf("bench mkfs_fat32_256mib_ms %.2f ms\n", the_job.ns / 1e6);
    if (ok) {
        *used = populate(&the_job.g, files, per_file);
        ok = run_check(0, check_s) && the_job.r.problems == 0 && run_check(FAT_CHECK_REPAIR_ALL, repair_s) &&
             the_job.r.problems == 0;
    }
    if (ok) {
        make_dirty(&the_job.g, *used, files);
        quiet = true;
        ok = run_check(FAT_CHECK_REPAIR_ALL, dirty_s) && the_job.r.left == 0 &&
             the_job.r.lost_clusters == the_job.g.cluster_count / 100 + (files + 9) / 10 * (per_file - 1);
        quiet = false;
        double again;
        ok = ok && run_check(0, &again) && the_job.r.problems == 0;
    }
    blk_fixture_fini(&fx);
    if (!ok)
        fprintf(stderr, "bench_volume %llu: failed\n", (unsigned long long)bytes);
    return ok;
}

int main(void)
{
    double hashed_probes, numeric_probes;
    double hashed_us = alias_run(true, 5000, &hashed_probes);
    double numeric_us = alias_run(false, 5000, &numeric_probes);
    printf("bench alias_probes_hashed %.2f probes/name\n", hashed_probes);
    printf("bench alias_probes_numeric_only %.2f probes/name\n", numeric_probes);
    printf("bench alias_us_per_name_hashed %.3f us\n", hashed_us);
    printf("bench alias_us_per_name_numeric_only %.3f us\n", numeric_us);
    printf("bench alias_numeric_to_hashed_ratio %.1f x\n", numeric_us / hashed_us);

    double check_s, repair_s, dirty_s;
    uint64_t used;
    if (!bench_volume(256ull << 20, 0, 20000, 4, &used, &check_s, &repair_s, &dirty_s))
        return 1;
    printf("bench check_entries_per_s %.0f entries/s\n", (20000 + 2) / check_s);
    printf("bench check_clusters_per_s %.0f clusters/s\n", (double)the_job.g.cluster_count / check_s);
    printf("bench repair_clean_clusters_per_s %.0f clusters/s\n", (double)the_job.g.cluster_count / repair_s);
    printf("bench repair_dirty_ms %.2f ms\n", dirty_s * 1e3);
    if (!bench_volume(512ull << 20, 1, 40000, 24, &used, &check_s, &repair_s, &dirty_s))
        return 1;
    printf("bench check_1m_clusters_ms %.1f ms (%u clusters, %llu used)\n", check_s * 1e3, the_job.g.cluster_count,
           (unsigned long long)used);
    printf("bench repair_1m_dirty_ms %.1f ms\n", dirty_s * 1e3);
    return 0;
}
