/* fat_check: the consistency checker and repairer (an fsck), independent of the engine.
 *
 *   fat_check_volume vol;
 *   fat_check_volume_find(cache, volume_offset, &vol);   which boot sector describes it
 *   work = <fat_check_memory_needed(&vol.geo) bytes from the caller's arena>;
 *   fat_check_run(cache, &vol, &options, &result);
 *
 * Contract: blocks (runs in a task of the cache's fiber pool); reads and writes the volume
 * only through the cache; uses no memory but the caller's work area (three bitmaps of one
 * bit per cluster and a 64 KiB table of the short names in one directory) and its own
 * stack (about 4 KiB for fat_check_run, 6 KiB for fat_check_volume_find: gcc -O2
 * -fstack-usage on x86_64). Nobody else may use the volume while it runs. It has its own FAT
 * reader and directory walker (only the pure codecs fat_entry.h, fat_bpb.h and fat_name.h
 * are shared): it must not trust the engine it checks.
 *
 * Bounded, at any depth: a chain by the cluster count, a directory by its chain, the tree
 * by the directories' chains. The walk keeps FAT_CHECK_OPEN_DIRS directories open; a
 * directory found below them is claimed (its first cluster), its ".." checked while its
 * parent is known, and it is deferred in a bitmap and entered once the walk above is done,
 * so memory does not grow with depth and nothing recurses on the C stack. A hostile image
 * gives findings, never a crash, hang or stray access.
 *
 * Checked: the boot sector against its FAT32 backup and against the volume; FAT entries in
 * chains (range, free or bad entries inside a chain, loops, cross-links); lost clusters
 * (allocated, reached by no chain); file sizes against chain lengths; directory entries
 * (bad or duplicate short names, first clusters out of range or shared, directories with a
 * size or no cluster, "." and ".." in the first two slots of every subdirectory and nowhere
 * else, ".." of a child of the root 0 also on FAT32, orphaned or broken long-name entries
 * and their reserved fields, the Linux "no short name" flag without a long name, used
 * entries after the end marker, volume labels and the boot sector's label); rename records
 * (fat_intent.h: a rename a cut interrupted, a record left after its rename); all FAT copies
 * equal; FAT entries 0 and 1; the dirty flags; FSInfo (signatures, a known and right free
 * count, the next-free hint); the FAT32 backup boot sector (present, inside the reserved
 * area, equal to the boot sector). The rules follow the FAT specification and, where
 * systems read the format differently, what fsck.fat (dosfstools 4.2) accepts, so that a
 * repaired volume is clean for both (fsck.fat -n has nothing to say).
 *
 * Repair (options.repairs: FAT_CHECK_REPAIR_* bits, 0 only checks and writes nothing).
 * The rules it keeps:
 *  - Nothing is written through a layout the volume does not confirm: each FAT copy must
 *    carry a FAT's signature (entry 0: a media byte with the other bits set) where the boot
 *    sector puts it, or agree with a copy that does, and no further FAT may follow the
 *    last. When the FAT32 boot sector and its backup disagree on the layout, the one the
 *    volume agrees with (those signatures, FSInfo's signatures, the root cluster in use and
 *    not a subdirectory, the root's subdirectories' "." entries where the layout puts
 *    their clusters, no FAT entries in use past its last cluster; as a tie-break, FSInfo's
 *    free count against the free clusters each layout sees) is used, and the other copy is
 *    rewritten from it. When the volume does not tell, nothing at all is written and the
 *    log says why (result.refused).
 *  - A cluster is freed only when no chain reaches it and every directory was walked to
 *    its end. When one could not be (its chain starts in or runs into another's, or used
 *    entries follow its end marker, and that repair is not selected), lost clusters are
 *    reported and kept (result.lost_kept), never freed.
 *  - A rename a power cut interrupted is finished first, by mount recovery's rule
 *    (fat_intent.h): it looks like a cross-link (two names, one chain), which the generic
 *    repair would settle by emptying one name; instead the name the rename record calls
 *    old is removed, so the file keeps its new name, its size and every cluster.
 *  - Writes reach the device in six epochs (order points): (1) a boot sector the volume
 *    contradicts, rewritten from its backup; (2) interrupted renames finished (old names
 *    removed, moved directories' ".." set; one order point per record, then the record is
 *    cleared with the next epoch); (3) directory entries, chain ends, FAT entries 0 and 1,
 *    the boot label; (4) freed clusters and the other FAT copies; (5) FSInfo and the
 *    backup boot sector; (6) the dirty flags cleared, in the copies nobody reads before
 *    the active FAT and the boot sector. A power cut during a repair leaves at worst what
 *    one more repair settles: never a chain into a freed cluster, never a clean flag over
 *    damage (fat/tests/test_fat_check_cut.c cuts after every write).
 *  - One repair leaves nothing for a second check to find, for every finding whose repair
 *    was selected; a clean volume is not written at all.
 * What each repair does: a rename record heading a live entry set finishes its rename (the
 * old name removed if it is still the record's, with the same first cluster; a moved
 * directory's ".." set to its new parent) and is cleared, as is a record with nothing
 * after it; a chain is ended before a loop, a cross-link, or a bad or
 * out-of-range link (the file keeps what came before; a file whose first cluster another
 * chain owns becomes empty); a size larger than its chain is set to the chain; a chain
 * longer than its size is cut to the size (the rest becomes lost, and is freed unless a
 * chain walked later owns it); an out-of-range first cluster is cleared (the file becomes
 * empty); a subdirectory entry that cannot be saved (no valid first cluster, or one another
 * chain owns) is deleted with its long name (what it held becomes lost clusters); "." and
 * ".." are rewritten (created over whatever held their slots); bad short-name characters
 * become '_' and duplicate short names DUPnnnnn, keeping their long names (the checksums
 * are rewritten); orphaned long-name entries are deleted; used entries after the end
 * marker are cleared; lost clusters are FREED (not saved as FSCKnnnn.REC files); the active
 * FAT is copied to the others (a change to the active FAT always goes to every mirrored
 * copy); FSInfo, the boot sector label and the FAT32 backup boot sector are rewritten (a
 * missing or misplaced backup is written at sector 6, or the last reserved sector, as
 * fsck.fat would); the dirty flags are cleared. Each finding is counted in
 * fat_check_result and told through the log callback, with what was done or "not
 * repaired".
 *
 * Mount-time recovery is not this module's: the engine recovers a dirty volume itself
 * (fat_recover.c), and this checker, which shares no walking or freeing code with it (only
 * the pure codecs and fat_intent.h's rename rule), is the independent judge of what
 * recovery leaves (the power-cut tests check every recovered image with it and fsck.fat).
 * Any subset of the repair bits may be chosen; a subset never frees a cluster a reachable
 * entry uses (lost clusters are kept when a directory could not be walked to its end).
 * Cost: one read of the active FAT (in 512-byte windows through the cache), two of every
 * directory cluster (the rename records' pass and the walk), and for a repair the blocks
 * it changes plus an order point per epoch; memory 3 bits per cluster + 64 KiB (a 32 GB SD
 * card with 32 KiB clusters has about 1 M clusters: 448 KiB). `make bench-fat_format`
 * measures it (check_1m_clusters_ms, repair_dirty_ms, repair_1m_dirty_ms).
 */
#ifndef ASYNCFAT_FAT_CHECK_H
#define ASYNCFAT_FAT_CHECK_H

#include "base/base.h"
#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "vfs/vfs.h"

/* Directories the walk keeps open at once; deeper ones wait in a bitmap (any depth works). */
#define FAT_CHECK_OPEN_DIRS 32u
/* Short names remembered per directory for the duplicate check (8 bytes each in the work
 * area); names past half of this in one directory are not checked for duplicates. */
#define FAT_CHECK_NAME_SLOTS 8192u

/* Repairs, by what they touch. */
enum {
    FAT_CHECK_REPAIR_LOST = 1u << 0,        /* free allocated clusters no chain reaches */
    FAT_CHECK_REPAIR_LONG_CHAINS = 1u << 1, /* cut chains longer than their file sizes */
    FAT_CHECK_REPAIR_FAT_COPIES = 1u << 2,  /* copy the active FAT over the others */
    FAT_CHECK_REPAIR_FSINFO = 1u << 3,      /* FSInfo signatures, free count, next-free hint */
    FAT_CHECK_REPAIR_ORPHAN_LFNS = 1u << 4, /* delete long-name entries that name nothing */
    FAT_CHECK_REPAIR_DIRTY = 1u << 5,       /* clear the dirty flags (boot sector, FAT entry 1) */
    FAT_CHECK_REPAIR_CHAINS = 1u << 6,      /* loops, cross-links, bad links, first clusters out
                                               of range or shared, sizes beyond their chains */
    FAT_CHECK_REPAIR_ENTRIES = 1u << 7,     /* names, duplicates, dot entries, labels, reserved
                                               fields, entries after the end, directory sizes */
    FAT_CHECK_REPAIR_BOOT = 1u << 8,        /* boot sector from a confirmed backup, backup boot
                                               sector, boot label, FAT entries 0 and 1 */
    FAT_CHECK_REPAIR_RENAMES = 1u << 9,     /* finish renames a cut interrupted, clear rename
                                               records (fat_intent.h) */
    FAT_CHECK_REPAIR_ALL = (1u << 10) - 1,
};

typedef enum fat_check_boot_source {
    FAT_CHECK_BOOT_PRIMARY,       /* the boot sector; the volume confirms its layout (the
                                     backup agrees, or is absent, or the volume does not
                                     confirm the backup's) */
    FAT_CHECK_BOOT_BACKUP,        /* the FAT32 backup: the boot sector is unusable or the
                                     volume contradicts it, and the volume confirms the backup */
    FAT_CHECK_BOOT_UNSURE,        /* the boot sector, whose layout the volume does not
                                     confirm: checked, but nothing will be repaired */
} fat_check_boot_source;

/* The layout to check with, and how it was chosen. */
typedef struct fat_check_volume {
    fat_geometry geo;
    fat_check_boot_source source;
    fat_bpb_error primary_error;  /* FAT_BPB_OK, or why the boot sector itself is unusable */
    uint32_t backup_sector;       /* FAT32: where a usable backup was read (0: none) */
    bool backups_differ;          /* the backup's bytes differ from the boot sector's */
    char reason[240];             /* BACKUP and UNSURE: what the volume showed, for the log */
} fat_check_volume;

typedef void (*fat_check_log_fn)(void *ctx, const char *message);

typedef struct fat_check_options {
    uint32_t repairs;             /* FAT_CHECK_REPAIR_* bits; 0: check only, write nothing */
    void *work;                   /* fat_check_memory_needed(geo) bytes, any alignment */
    size_t work_size;
    fat_check_log_fn log;         /* NULL: silent */
    void *log_ctx;
} fat_check_options;

/* Findings. Every finding is either repaired or left. */
typedef struct fat_check_result {
    uint32_t problems;            /* findings; all lost clusters together count as one */
    uint32_t repaired;            /* findings repaired */
    uint32_t left;                /* findings not repaired (that repair was not selected) */
    uint32_t bad_links;           /* chain link out of range, free or bad */
    uint32_t loops;               /* chains that come back onto themselves */
    uint32_t cross_links;         /* chains that run into another's cluster */
    uint32_t lost_clusters;       /* allocated clusters no chain reaches */
    uint32_t lost_kept;           /* of those, kept: a directory could not be walked to its end */
    uint32_t size_mismatches;     /* file sizes that disagree with the chain length */
    uint32_t bad_entries;         /* malformed directory entries (names, clusters, dot entries) */
    uint32_t orphan_lfns;         /* LFN entries not followed by their short entry */
    uint32_t fat_mismatches;      /* FAT copies that differ from the active one */
    uint32_t fsinfo_errors;       /* FSInfo signatures, unknown or wrong free count, bad hint */
    uint32_t boot_errors;         /* backup boot sector missing or different, FAT entries 0/1,
                                     labels */
    uint32_t dirty;               /* dirty flag set (boot sector or FAT entry 1) */
    uint32_t renames;             /* rename records (fat_intent.h): renames a cut interrupted,
                                     or records left after the rename was done */
    bool refused;                 /* repairs were asked for, but the layout is not confirmed
                                     (fat_check_volume.source UNSURE): nothing was written */
    /* statistics of the (repaired) volume */
    uint32_t files;
    uint32_t directories;
    uint32_t used_clusters;
    uint32_t free_clusters;
    uint32_t bad_clusters;
} fat_check_result;

/* Blocks: reads the boot sector at byte `volume_offset` and, on FAT32, its backup (where
 * the boot sector says, else sector 6), and decides which describes the volume (see
 * "Repair" above); nothing is written. VFS_OK with *vol filled; VFS_CORRUPT when neither
 * is a usable boot sector that the volume confirms (vol->primary_error says why the boot
 * sector is not); VFS_IO_ERROR if the device fails. */
vfs_status fat_check_volume_find(blk_cache *cache, uint64_t volume_offset, fat_check_volume *vol);

/* Bytes of work memory the checker needs for this layout. */
size_t fat_check_memory_needed(const fat_geometry *geo);

/* Blocks: checks the volume (and with options->repairs, repairs it and flushes).
 * VFS_OK when the check ran (findings in *result; clean means
 * result->problems == 0); VFS_INVALID_ARGUMENT for too little work memory or
 * unknown repair bits; VFS_IO_ERROR if the device fails; VFS_READ_ONLY_FS if a
 * repair meets a read-only device. */
vfs_status fat_check_run(blk_cache *cache, const fat_check_volume *vol, const fat_check_options *options,
                        fat_check_result *result);

#endif
