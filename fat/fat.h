/* fat: the FAT12/16/32 engine's public API (mount, files, directories, paths).
 *
 * Contract
 * - Every function that takes a volume or node "blocks": it must run in a task of the
 *   pool of the block cache the volume was mounted on; many tasks may be inside the engine
 *   at once. Statuses, stat records and open flags are vfs/vfs.h's.
 * - Paths are byte strings with a length (UTF-8, not NUL-terminated, at most 4095 bytes),
 *   '/'-separated and taken from the root; empty components and "." are skipped, ".." is
 *   resolved lexically (FAT has no links), a name component is at most 255 bytes.
 * - Nodes: everyone who opens the same file or directory shares one fat_node (refcount),
 *   so a write through one handle is seen by reads through any other. A file unlinked or
 *   replaced by rename while open stays readable and writable through its nodes; its
 *   clusters are freed at the last fat_close. The same holds for a directory removed (or
 *   replaced by rename) while open: readdir through it then reports the end. rmdir or
 *   rename of the root gives VFS_BUSY; moving a directory into itself or below
 *   itself gives VFS_INVALID_ARGUMENT. Access modes are the caller's (the server's)
 *   business: the engine checks only the read-only mount and the read-only attribute.
 * - Files whose chain is shorter than their size, loops inside the size, links out of
 *   range or to free clusters: VFS_CORRUPT for that file (its chain is walked once,
 *   with cycle detection, when a node first reads or writes it); nothing else is harmed.
 * - Memory: no allocation. The caller passes four arenas sized by fat_memory_needed():
 *   the node table, the directory name index, the cluster-run caches and the free-cluster
 *   bitmap. When the name index is full, the directory being indexed falls back to scanning
 *   (it is retried once another directory's index is evicted); when the node table is full
 *   of nodes in use, opens fail with VFS_TOO_MANY_OPEN_FILES.
 * - Limits: files up to 4 GiB - 1 (VFS_FILE_TOO_LARGE; a write crossing the limit
 *   is cut short), 65,536 entries per directory (VFS_DIRECTORY_IS_FULL, also for a
 *   full FAT12/16 root), volume full (VFS_NO_SPACE: the write or truncate changes
 *   nothing), read-only mount or device (VFS_READ_ONLY_FS), read-only attribute
 *   (VFS_ACCESS_DENIED for opening for write; as on vfat, the attribute is checked when a
 *   file is opened, so a file made read-only keeps taking writes through nodes opened for
 *   writing before).
 * - readdir does not return "." and ".." (the protocol's clients, like FatFs's, expect
 *   names only); positions are the slot after the entry's short entry, so they stay valid
 *   while other entries are added or removed. Volume labels are skipped.
 * - Times: create time and date, write time and date and access date are set from the
 *   config clock; reads update the access date at most once per day per open node, written
 *   back at close/fsync. Entries hold local time (cfg time_offset_minutes); stat records
 *   and set_times speak Unix time (UTC).
 *
 * Write ordering: docs/ORDERING.md states, operation by operation, which writes go in
 * which flush epoch and what a power cut at any point leaves; each blk_cache_order_point
 * in the engine names the rule it serves there. In short: what makes clusters reachable
 * (a directory entry, a FAT link) reaches the disk only after the clusters' data and FAT
 * entries, in a later epoch; a directory entry is removed before its clusters are freed,
 * and freed clusters are not reused before that removal is durable (their chains wait,
 * allocated, until the next flush: at sync, statfs, unmount, when 64 are waiting, or when
 * an allocation would otherwise fail); every new entry set (long-name entries and short
 * entry) lies in one 4096-byte device block and is written by one change of it; a rename
 * writes the new entry, with a rename record beside it, before it removes the old one
 * (fat_intent.h), so a cut leaves the file under one name or (before recovery) under
 * both with the record saying which is new; both FATs are written together. A FAT or
 * directory block changed again after an order point keeps its earlier version as a
 * shadow in the cache (blk_cache_prepare_write), so each version reaches the disk in its
 * own epoch.
 *
 * Wear (docs/ORDERING.md; issue 18): FAT's metadata sits at fixed places, so the engine
 * writes it as rarely as the ordering allows. New chains start at a next-fit position
 * that moves on through the whole data area (kept in FSInfo's next-free hint across
 * mounts; on FAT12/16 and after a cut, a hash of the clock and the FAT); a truncation to 0
 * writes no entry (the old chain waits, allocated, until the entry is next written), so
 * a truncate-and-rewrite writes its entry once; FSInfo is written at mount, at unmount and
 * when a quarter of the clusters was claimed since, never at every sync; a file's growth
 * writes no FAT block per write when the link shares the run's FAT block; and with
 * cfg.discard the device is told which blocks freed clusters held (Linux only: sDDF has
 * no discard request).
 *
 * Dirty state and recovery: while mounted read-write the volume is marked dirty (the boot
 * sector's state byte on FAT12/16/32, also FAT entry 1's clean bit on FAT16/32, FSInfo's
 * free count "unknown"); a clean unmount clears them last. Mounting a dirty volume
 * read-write recovers it before the mount returns (fat_recover.c): interrupted renames are
 * completed from their records, orphaned long-name entries removed, chains cut to their
 * files' sizes, lost clusters freed, the FAT copies made equal. Damage a power cut cannot
 * cause (a broken or cross-linked chain) is left alone and reported (needs_check). A
 * cluster the FAT copies disagree on is never allocated until they agree.
 *
 * Locks and their order (rename, directory, file node, deferred-chain): docs/DESIGN.md,
 * "Concurrency rules and lock order". Cluster allocation takes no lock.
 */
#ifndef ASYNCFAT_FAT_H
#define ASYNCFAT_FAT_H

#include "base/base.h"
#include "blk/blk.h"
#include "fat/fat_bpb.h"
#include "fat/fat_partition.h"
#include "fiberpool/fiberpool.h"
#include "vfs/vfs.h"

typedef struct fat_node fat_node;
typedef struct fat_volume fat_volume;

typedef struct fat_config {
    int partition;              /* as fat_partition_locate: FAT_PARTITION_AUTO (-1), an
                                   entry of the MBR or GPT (0, 1, ...), or
                                   FAT_PARTITION_AT_OFFSET (-2): at volume_offset */
    uint64_t volume_offset;     /* bytes, a multiple of 512; FAT_PARTITION_AT_OFFSET only */
    bool read_only;             /* mount read-only (also forced by a read-only device) */
    int64_t (*clock)(void *ctx); /* Unix seconds for timestamps; NULL: 1980-01-01 */
    int32_t time_offset_minutes; /* directory entries hold local time this far east of UTC
                                    (-1440..1440; vfat's time_offset); 0: UTC */
    void *clock_ctx;
    uint64_t dev;               /* reported in vfs_stat.dev */
    uint32_t max_nodes;         /* open files + cached directories, >= 4 */
    uint32_t runs_per_node;     /* cluster-run cache entries per node, >= 2 */
    uint32_t index_entries;     /* directory name-index entries shared by all directories */
    bool discard;               /* tell the device which blocks freed clusters held
                                   (BLK_REQ_DISCARD, an asyncfat extension of the block
                                   protocol: only for a driver that takes it, the Linux one;
                                   never on sDDF). Off by default. */
    void *node_memory;          /* fat_memory_sizes.nodes bytes, 16-byte aligned */
    size_t node_memory_size;
    void *index_memory;         /* .index bytes, 8-byte aligned */
    size_t index_memory_size;
    void *run_memory;           /* .runs bytes, 8-byte aligned */
    size_t run_memory_size;
    void *free_map_memory;      /* .free_map bytes, 8-byte aligned */
    size_t free_map_memory_size;
} fat_config;

typedef struct fat_memory_sizes {
    size_t nodes, index, runs, free_map;
} fat_memory_sizes;

/* Defaults for the limits (max_nodes 256, runs_per_node 16, index_entries 32768). */
fat_config fat_config_defaults(void);
/* Arena sizes for cfg's limits on a device of device_bytes (the free map is sized for the
 * largest cluster count such a device can hold: one bit per 512-byte sector). */
void fat_memory_needed(const fat_config *cfg, uint64_t device_bytes, fat_memory_sizes *out);
/* The four arenas in one block: fat_memory_total() bytes; fat_config_place_memory points
 * cfg's arenas into [memory, memory + size) (each 16-byte aligned), or returns false and
 * leaves cfg unchanged when they do not fit. */
size_t fat_memory_total(const fat_config *cfg, uint64_t device_bytes);
bool fat_config_place_memory(fat_config *cfg, uint64_t device_bytes, void *memory, size_t size);

typedef struct fat_statfs_info {
    uint64_t cluster_size;      /* bytes */
    uint64_t total_clusters;
    uint64_t free_clusters;
    uint32_t fat_type;          /* 12, 16, 32 */
    uint32_t name_max;          /* bytes of UTF-8 in a name component */
    bool read_only;
    bool was_dirty;             /* the volume was not cleanly unmounted before this mount */
    bool fat_copies_differ;     /* the FAT copies disagreed on some cluster's use at mount */
    bool needs_check;           /* damage recovery does not repair: run a checker */
} fat_statfs_info;

/* What mounting found and did (fat_get_mount_report), for the server and tools to print:
 * the interface's vfs_mount_report. On FAT: was_dirty is the
 * boot sector's state or FAT entry 1; needs_check means broken, looping or cross-linked
 * chains or bad entries, left alone; fat_disagreements counts clusters the FAT copies
 * disagreed on (held as in use until recovery or a checker makes them agree); chains_cut,
 * chains longer than their files' sizes; lost_freed, allocated clusters nothing reached;
 * fat_blocks_copied, FAT copy blocks rewritten from the active FAT. */
typedef vfs_mount_report fat_mount_report;

typedef struct fat_stats {
    uint64_t chain_steps;       /* FAT entries read to map file clusters */
    uint64_t run_hits;          /* cluster mappings served from a run cache */
    uint64_t index_lookups;     /* lookups answered by a directory name index */
    uint64_t scan_lookups;      /* lookups that scanned a directory */
    uint64_t index_builds;
    uint64_t index_drops;       /* indexes given up for lack of index memory */
    uint64_t slots_scanned;     /* directory slots read by scans */
} fat_stats;

typedef struct fat_index_entry fat_index_entry;
typedef struct fat_run fat_run;

#define FAT_DEFERRED_CHAINS 64u

/* Caller-allocated; the fields are private to the engine. */
struct fat_volume {
    blk_cache *cache;
    fp_pool *pool;
    fat_config cfg;
    fat_geometry geo;
    bool mounted;
    bool read_only;
    bool was_dirty;
    /* free map: bit set = cluster in use (or bad, or reserved 0/1) */
    uint64_t *free_map;
    uint32_t free_count;        /* clear bits among 2..max_cluster */
    bool free_map_ready;        /* built (a read-only volume builds it at its first statfs) */
    uint32_t reserved;          /* clusters promised to writes in progress */
    uint32_t next_free;         /* next-fit position: where the next new chain starts */
    uint32_t claimed;           /* clusters claimed since FSInfo's hint was last written */
    bool discard_refused;       /* the device answered a DISCARD with an error: send no more */
    /* nodes */
    fat_node *nodes;
    uint32_t *node_hash;
    uint32_t node_hash_mask;
    uint32_t node_free;         /* free list of node slots */
    fat_node *root;
    uint64_t lru_clock;
    /* directory name index */
    fat_index_entry *index;
    uint32_t *index_long_heads;
    uint32_t *index_short_heads;
    uint32_t index_mask;
    uint32_t index_free;        /* free list of entries used before */
    uint32_t index_unused;      /* entries from here on never used: no list to build at mount */
    uint64_t index_epoch;       /* bumped whenever a built index is dropped */
    fat_run *runs;
    /* chains whose directory entries are gone but not yet durably: freed after a flush */
    uint32_t deferred[FAT_DEFERRED_CHAINS];
    uint32_t deferred_count;
    fp_mutex deferred_lock;
    /* closed files whose entries wait to be written together (fat_node_commit) */
    uint32_t commit_head;
    uint32_t commit_count;
    fp_mutex rename_lock;
    fat_stats stats;
    fat_mount_report report;
};

/* Blocks: find the volume (cfg->partition), validate every boot-sector field, build the
 * free map from every FAT copy (read-only: at the first statfs, the only reader of it),
 * mark the volume dirty and, if it was dirty already, recover it (unless read-only; see
 * the contract above and fat_get_mount_report). Errors:
 * CORRUPT (bad boot sector, with the fat_bpb_error in *why if why != NULL), IO_ERROR,
 * ALLOCATION_ERROR (an arena too small), INVALID_ARGUMENT. */
vfs_status fat_mount(fat_volume *vol, blk_cache *cache, const fat_config *cfg, fat_bpb_error *why);
/* Blocks: write back every open node, FSInfo, set the clean bit, flush. Nodes must all be
 * closed (VFS_OUTSTANDING_OPERATIONS otherwise). */
vfs_status fat_unmount(fat_volume *vol);
/* Blocks: write back every open node's directory entry, flush, release waiting chains. */
vfs_status fat_sync(fat_volume *vol);
/* Blocks: releases waiting chains first (a flush), so the free count is exact. */
vfs_status fat_statfs(fat_volume *vol, fat_statfs_info *out);
static inline const fat_stats *fat_get_stats(const fat_volume *vol) { return &vol->stats; }
static inline const fat_mount_report *fat_get_mount_report(const fat_volume *vol) { return &vol->report; }
static inline const fat_geometry *fat_get_geometry(const fat_volume *vol) { return &vol->geo; }

/* Paths. */
vfs_status fat_stat(fat_volume *vol, const char *path, size_t len, vfs_stat *out);
/* flags: VFS_OPEN_* (access mode, CREATE, TRUNCATE, EXCLUSIVE; APPEND is the
 * caller's: use fat_append). A directory gives IS_DIRECTORY (use fat_opendir). */
vfs_status fat_open(fat_volume *vol, const char *path, size_t len, uint64_t flags, fat_node **out);
vfs_status fat_unlink(fat_volume *vol, const char *path, size_t len);
vfs_status fat_mkdir(fat_volume *vol, const char *path, size_t len);
vfs_status fat_rmdir(fat_volume *vol, const char *path, size_t len);
vfs_status fat_rename(fat_volume *vol, const char *old_path, size_t old_len, const char *new_path,
                     size_t new_len);
/* Sets access and modify times (Unix seconds; negative: leave unchanged). */
vfs_status fat_set_times(fat_volume *vol, const char *path, size_t len, int64_t atime, int64_t mtime);
/* FAT attributes (VFS_ATTR_*, which are FAT's bits; fat_attrib.c): set clears `clear`,
 * then sets `set`, both within VFS_ATTR_CHANGEABLE, and gives the result; the root has
 * none to change (INVALID_ARGUMENT). */
vfs_status fat_get_attributes(fat_volume *vol, const char *path, size_t len, uint32_t *out);
vfs_status fat_set_attributes(fat_volume *vol, const char *path, size_t len, uint32_t set, uint32_t clear,
                              uint32_t *out);

/* The same from a base directory: `base` is a directory node the caller holds open
 * (fat_opendir), the path relative to it; NULL is the root, as above. A ".." that would
 * climb above a base other than the root is INVALID_PATH; an empty path names the base
 * itself, of which unlink, mkdir, rmdir and rename say what they say of the root (the
 * base is in use). A base removed while open holds no names: lookups in it are NO_FILE
 * and nothing is created in it. Rename's two paths have a base each. */
vfs_status fat_stat_at(fat_volume *vol, fat_node *base, const char *path, size_t len, vfs_stat *out);
vfs_status fat_open_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint64_t flags,
                       fat_node **out);
vfs_status fat_unlink_at(fat_volume *vol, fat_node *base, const char *path, size_t len);
vfs_status fat_mkdir_at(fat_volume *vol, fat_node *base, const char *path, size_t len);
vfs_status fat_rmdir_at(fat_volume *vol, fat_node *base, const char *path, size_t len);
vfs_status fat_rename_at(fat_volume *vol, fat_node *old_base, const char *old_path, size_t old_len,
                         fat_node *new_base, const char *new_path, size_t new_len);
vfs_status fat_set_times_at(fat_volume *vol, fat_node *base, const char *path, size_t len, int64_t atime,
                            int64_t mtime);
vfs_status fat_get_attributes_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint32_t *out);
vfs_status fat_set_attributes_at(fat_volume *vol, fat_node *base, const char *path, size_t len, uint32_t set,
                                 uint32_t clear, uint32_t *out);
vfs_status fat_opendir_at(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **out);

/* Open nodes (files and directories). fat_close writes back a file's directory entry, and
 * frees an unlinked file's clusters at the last close. */
vfs_status fat_close(fat_node *node);
vfs_status fat_read(fat_node *node, uint64_t offset, void *dst, size_t len, size_t *done);
vfs_status fat_write(fat_node *node, uint64_t offset, const void *src, size_t len, size_t *done);
/* Write at the end of the file, atomically with respect to other writers; *offset gets
 * where the data went. */
vfs_status fat_append(fat_node *node, const void *src, size_t len, size_t *done, uint64_t *offset);
vfs_status fat_truncate(fat_node *node, uint64_t length);
uint64_t fat_size(fat_node *node);
vfs_status fat_fsync(fat_node *node);
vfs_status fat_fstat(fat_node *node, vfs_stat *out);
/* fat_set_times on an open node: no path to look up. */
vfs_status fat_set_times_node(fat_node *node, int64_t atime, int64_t mtime);

/* Directories. name_out receives the UTF-8 name (no NUL), at most FAT_READDIR_NAME_MAX
 * bytes. *pos: 0 = start; updated to the position after the entry returned.
 * VFS_END_OF_DIRECTORY at the end. st may be NULL. */
#define FAT_READDIR_NAME_MAX (255u * 3u)
vfs_status fat_opendir(fat_volume *vol, const char *path, size_t len, fat_node **out);
vfs_status fat_readdir(fat_node *dir, uint64_t *pos, char *name_out, size_t *name_len, vfs_stat *st);

/* The engine interface (vfs/vfs.h) over one FAT volume: the composition root keeps a
 * fat_vfs and hands the server the engine fat_vfs_engine returns. Never blocks; the
 * volume is mounted by the engine's mount, with cfg's limits and arenas, on `cache`. */
typedef struct fat_vfs {
    fat_volume volume;
    blk_cache *cache;
    fat_config config;
} fat_vfs;
vfs_engine fat_vfs_engine(fat_vfs *f, blk_cache *cache, const fat_config *cfg);

#endif
