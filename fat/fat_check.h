/* fat_check: the consistency checker and repairer (an fsck), independent of the engine.
 *
 * Contract: blocks (runs in a task of the cache's fiber pool); reads and writes the volume
 * only through blk_cache_read_bytes / blk_cache_write_bytes; uses no memory but the
 * caller's work area (fat_check_memory_needed bytes: two bitmaps of one bit per cluster
 * and a 64 KiB table of the names in one directory) and its own stack (a few KiB). The
 * volume must not be mounted while it runs.
 *
 * Every walk is bounded: a chain by the cluster count, a directory by its chain and by
 * FAT_DIR_MAX_ENTRIES, the tree by FAT_CHECK_MAX_DEPTH (deeper directories are reported,
 * not entered). A hostile image gives findings, never a crash, hang or stray access.
 *
 * Checked: FAT entries in chains (range, free or bad entries inside a chain, loops,
 * cross-links), lost clusters (allocated but unreachable), file sizes against chain
 * lengths, directory entries (bad or duplicate short names, first cluster out of range,
 * directories with nonzero size or no cluster, "." and ".." in the first two slots of every
 * subdirectory and nowhere else, orphaned or broken LFN entries and their reserved fields,
 * the Linux "no short name" flag without an LFN, used entries after the end marker,
 * volume-label entries and the boot sector's label), all FAT copies equal, FAT entries 0
 * and 1 and the dirty flags, FSInfo signatures, free count and next-free hint, FAT32
 * backup boot sector. The rules follow the FAT specification and, where systems read
 * the format differently, what fsck.fat (dosfstools 4.2) accepts, so that a repaired
 * volume is clean for both.
 *
 * Repair (options.repair): truncates a chain at a loop, cross-link, bad or out-of-range
 * link (the file keeps what came before; a file whose first cluster is already owned
 * becomes empty); sets a file size to its chain when the chain is too short, cuts the
 * chain to the size when it is too long (the cut-off clusters become lost, and are freed
 * unless a chain walked later owns them); clears out-of-range first clusters (the file
 * becomes empty); deletes subdirectory entries that cannot be saved (no valid first
 * cluster, or a first cluster owned by another chain); rewrites "." and ".." (creating
 * them over whatever held their slots); replaces bad short-name characters with '_';
 * renames duplicate short names to DUPnnnnn (their long names then no longer match and
 * are deleted as orphans); deletes orphaned LFN entries; clears used entries after the end
 * marker; FREES lost clusters (they are not saved as FSCKnnnn.REC files); copies the active
 * FAT to the other FATs; rewrites FSInfo, the boot sector label and the FAT32 backup boot
 * sector; clears the dirty flags. Directories deeper than FAT_CHECK_MAX_DEPTH are left
 * alone. Each action is counted in fat_check_result and described through the log
 * callback.
 */
#ifndef ASYNCFAT_FAT_CHECK_H
#define ASYNCFAT_FAT_CHECK_H

#include "base/base.h"
#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "vfs/vfs.h"

#define FAT_CHECK_MAX_DEPTH 64u
/* Short names remembered per directory for the duplicate check (8 bytes each in the work
 * area); names past half of this in one directory are not checked for duplicates. */
#define FAT_CHECK_NAME_SLOTS 8192u

typedef void (*fat_check_log_fn)(void *ctx, const char *message);

typedef struct fat_check_options {
    bool repair;
    void *work;                   /* fat_check_memory_needed(geo) bytes, any alignment */
    size_t work_size;
    fat_check_log_fn log;         /* NULL: silent */
    void *log_ctx;
} fat_check_options;

/* Findings; with repair, `repaired` counts the actions taken. */
typedef struct fat_check_result {
    uint32_t problems;            /* findings; all lost clusters together count as one */
    uint32_t repaired;            /* repair actions taken */
    uint32_t bad_links;           /* chain link out of range, free or bad */
    uint32_t loops;               /* chains that come back onto themselves */
    uint32_t cross_links;         /* chains that run into another's cluster */
    uint32_t lost_clusters;       /* allocated clusters no chain reaches */
    uint32_t size_mismatches;     /* file sizes that disagree with the chain length */
    uint32_t bad_entries;         /* malformed directory entries (names, clusters, dot entries) */
    uint32_t orphan_lfns;         /* LFN entries not followed by their short entry */
    uint32_t fat_mismatches;      /* FAT copies that differ from FAT 0 */
    uint32_t fsinfo_errors;       /* bad FSInfo signatures, free count or next-free hint */
    uint32_t boot_errors;         /* backup boot sector differs, bad FAT entries 0/1 */
    uint32_t dirty;               /* dirty flag set (boot sector or FAT entry 1) */
    uint32_t too_deep;            /* directories beyond FAT_CHECK_MAX_DEPTH */
    /* statistics of the (repaired) volume */
    uint32_t files;
    uint32_t directories;
    uint32_t used_clusters;
    uint32_t free_clusters;
    uint32_t bad_clusters;
} fat_check_result;

/* Bytes of work memory the checker needs for this volume. */
size_t fat_check_memory_needed(const fat_geometry *geo);

/* Blocks: checks (and with options->repair, repairs and flushes) the volume described by
 * geo. VFS_OK when the check ran (findings are in *result: clean means
 * result->problems == 0); VFS_INVALID_ARGUMENT for too little work memory;
 * VFS_IO_ERROR if the device fails. */
vfs_status fat_check_run(blk_cache *cache, const fat_geometry *geo, const fat_check_options *options,
                        fat_check_result *result);

#endif
