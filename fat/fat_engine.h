/* fat_engine: the engine's private structures and the functions its files share.
 *
 * Files: fat_volume.c (mount, sync, FSInfo, dirty marks), fat_table.c (FAT entries, free
 * map, chains, recovery's reach map), fat_node.c (node table, refcounts, directory-entry
 * write-back), fat_file.c (cluster runs, data I/O, read/write/truncate), fat_dir.c (slots,
 * iteration, name index, lookup, entry sets placed and changed a block at a time),
 * fat_path.c (path walking), fat_ops.c (the public operations), fat_recover.c (mount-time
 * recovery); fat_intent.c (the rename record) is format-level. Lock order: fat.h; write
 * ordering: docs/ORDERING.md.
 */
#ifndef ASYNCFAT_FAT_ENGINE_H
#define ASYNCFAT_FAT_ENGINE_H

#include "fat/fat.h"
#include "fat/fat_layout.h"
#include "fat/fat_name.h"
#include "fat/fat_time.h"

#define FAT_NONE UINT32_MAX

/* A run of clusters contiguous both in the file and on disk. */
struct fat_run {
    uint32_t file_cluster;
    uint32_t disk_cluster;
    uint32_t length;
};

/* One name in a directory's index: chained in a long-name bucket and a short-name bucket
 * and in its directory's list. */
struct fat_index_entry {
    uint32_t next_long;
    uint32_t next_short;
    uint32_t dir_prev;
    uint32_t dir_next;
    uint32_t hash_long;         /* fat_name_hash of the long name (or short display name) */
    uint32_t slot;              /* short entry */
    uint32_t dir;               /* node index of the directory */
    uint8_t short_name[FAT_SHORT_NAME_LEN];
    uint8_t lfn_count;
};

enum fat_index_state { FAT_INDEX_NONE, FAT_INDEX_BUILDING, FAT_INDEX_READY };

struct fat_node {
    fat_volume *vol;
    uint32_t index;             /* in the node table */
    uint32_t refs;
    uint32_t hash_next;
    bool in_use;
    bool is_dir;
    bool is_root;
    bool hashed;                /* findable by its directory-entry key */
    bool unlinked;              /* removed while open: free its clusters at the last close */
    bool dirent_dirty;          /* size/cluster/times differ from the directory entry */
    /* identity: where the short entry is */
    uint32_t parent_cluster;    /* first cluster of the directory holding it (0: fixed root) */
    uint32_t slot;              /* short-entry slot in that directory */
    uint32_t lfn_count;         /* LFN slots before it */
    uint64_t dirent_offset;     /* absolute byte offset of the short entry */
    /* contents (authoritative while the node exists) */
    uint32_t first_cluster;
    uint32_t size;
    uint8_t attr;
    uint8_t create_10ms;
    uint16_t create_time, create_date, access_date, write_time, write_date;
    /* cluster runs */
    fat_run *runs;
    uint32_t run_count;
    uint32_t chain_length;      /* clusters in the chain, FAT_NONE until walked to its end */
    uint32_t last_cluster;      /* valid when chain_length is known and > 0 */
    bool chain_checked;         /* files: the chain covers the size and has no loop there */
    bool preallocated;          /* files: the chain may run past the size (see fat_file.c) */
    uint32_t detached;          /* files: the chain a truncation to 0 cut loose while the
                                   entry still names it (0: none); queued for freeing when
                                   the entry is next written (fat_node_write_dirent) or
                                   removed, so a truncate-and-rewrite writes the entry once */
    bool commit_pending;        /* files: closed, on the volume's commit list, which holds a ref */
    uint32_t commit_next;
    blk_order_mark data_written; /* files: taken after the last write's chain and data */
    blk_write_batch *write_batch; /* files, while a fat_write holds the lock: its writes
                                     straight from the caller's buffer, waited for after */
    fp_rwlock lock;             /* directories: entries; files: read side to read, write side to change */
    /* directories */
    uint8_t index_state;        /* enum fat_index_state */
    uint32_t index_head;        /* this directory's index entries */
    uint32_t free_hint;         /* no free slot below this one */
    bool index_failed;          /* the last build ran out of index memory ... */
    uint64_t index_fail_epoch;  /* ... while vol->index_epoch had this value */
    uint64_t lru;
};

/* The short entry found by a lookup or an iteration. */
typedef struct fat_dirent {
    uint32_t slot;              /* short entry */
    uint32_t lfn_count;
    uint8_t raw[32];
    uint64_t offset;            /* absolute byte offset of the short entry */
    const uint16_t *name;       /* long name, or the short display name */
    size_t name_len;
} fat_dirent;

/* Directory iteration state (holds the read-ahead chunk and the LFN assembler). */
typedef struct fat_dir_iter {
    fat_node *dir;
    uint32_t slot;              /* next slot to look at */
    uint32_t chunk_first;
    uint32_t chunk_count;
    uint64_t chunk_offset;      /* absolute byte offset of chunk_first */
    uint8_t chunk[512];
    uint32_t lfn_first;         /* slot where the open LFN sequence started */
    fat_lfn_state lfn;
    uint16_t short_units[FAT_SHORT_DISPLAY_MAX];
} fat_dir_iter;

/* ---- fat_table.c ---------------------------------------------------------------------- */
bool fat_cluster_valid(const fat_volume *vol, uint32_t c);
bool fat_is_eoc(const fat_volume *vol, uint32_t value);
vfs_status fat_table_get(fat_volume *vol, uint32_t cluster, uint32_t *value);  /* blocks */
vfs_status fat_table_set(fat_volume *vol, uint32_t cluster, uint32_t value);   /* blocks; every FAT */
/* Blocks; every FAT: chain clusters [first, first + count) one to the next, the last
 * holding `last_value`. One cache access per FAT block rather than per entry. */
vfs_status fat_table_link_run(fat_volume *vol, uint32_t first, uint32_t count, uint32_t last_value);
/* The entries of clusters lo..hi lie in one device block in each FAT copy written. */
bool fat_table_one_block(const fat_volume *vol, uint32_t lo, uint32_t hi);
/* Blocks: the free map from every mirrored FAT copy: a cluster any copy uses is in use
 * (vol->report.fat_disagreements counts those the copies disagree on). */
vfs_status fat_free_map_build(fat_volume *vol);
/* Recovery's reach map, kept in the free map's memory while recovery walks (the free map
 * is not ready meanwhile): reset to nothing reached; mark (false if already marked). */
void fat_reach_reset(fat_volume *vol);
bool fat_reach_mark(fat_volume *vol, uint32_t c);
/* Blocks: free every allocated, not bad cluster the walk did not reach (every copy); the
 * map becomes the free map again, the free count exact. */
vfs_status fat_table_release_unreached(fat_volume *vol, uint32_t *freed);
/* Blocks: make every mirrored FAT copy equal to the active one (*chunks: 512-byte pieces
 * rewritten). */
vfs_status fat_table_sync_copies(fat_volume *vol, uint32_t *chunks);
/* Blocks: mount-time recovery of a dirty volume (fat_recover.c); fills vol->report. */
vfs_status fat_recover(fat_volume *vol);

/* Promise `count` clusters to the caller (never blocks): NO_SPACE if not available. */
vfs_status fat_alloc_reserve(fat_volume *vol, uint32_t count);
void fat_alloc_unreserve(fat_volume *vol, uint32_t count);
/* Claim up to `max` free clusters contiguous from one found at or after `hint` (FAT_NONE:
 * the next-fit position, vol->next_free) out of a reservation (never blocks); returns the
 * first, *count how many (>= 1). The position moves on past the run unless it lies behind. */
uint32_t fat_alloc_claim_run(fat_volume *vol, uint32_t hint, uint32_t max, uint32_t *count);
/* Give back claimed clusters whose FAT entries were never written (never blocks). */
void fat_alloc_unclaim(fat_volume *vol, uint32_t first, uint32_t count);
/* Blocks: zero the FAT entries of a chain and release its clusters (bounded walk). Only
 * for chains nothing on disk points to; others go through fat_chain_free_later. */
vfs_status fat_chain_free(fat_volume *vol, uint32_t first);
/* Blocks (only when the queue is full): free this chain once the removal of whatever
 * pointed to it (already written to the cache) is durable. */
vfs_status fat_chain_free_later(fat_volume *vol, uint32_t first);
/* Blocks: flush, then free every waiting chain. */
vfs_status fat_deferred_release(fat_volume *vol);
/* Blocks: fat_alloc_reserve, releasing waiting chains first if that makes room. */
vfs_status fat_alloc_reserve_wait(fat_volume *vol, uint32_t count);

/* ---- fat_volume.c --------------------------------------------------------------------- */
/* Blocks (reads FSInfo): rewrite FSInfo's next-free hint when enough clusters were claimed
 * since it was last written; for fsync and sync, before their flush. */
vfs_status fat_fsinfo_checkpoint(fat_volume *vol);

/* ---- fat_node.c ----------------------------------------------------------------------- */
vfs_status fat_node_table_init(fat_volume *vol);
/* The node for the short entry at `d` in directory `dir` (created from d->raw if there is
 * none; the caller holds dir's lock so the entry cannot change). Never blocks. */
vfs_status fat_node_get(fat_volume *vol, fat_node *dir, const fat_dirent *d, fat_node **out);
fat_node *fat_node_make_root(fat_volume *vol);
fat_node *fat_node_find(fat_volume *vol, uint32_t parent_cluster, uint32_t slot);
void fat_node_ref(fat_node *node);
/* Blocks: drop a reference. The last one frees an unlinked file, or gives back a file's
 * clusters claimed ahead, or puts a file whose entry changed on the commit list. */
vfs_status fat_node_put(fat_node *node);
/* Blocks: write the entries of the files on the commit list (and drop the list's refs). */
vfs_status fat_node_commit(fat_volume *vol);
/* A file removed while on the commit list leaves it (its entry is gone); the caller holds
 * a reference of its own, so the last put frees its clusters as for any unlinked file. */
void fat_node_uncommit(fat_node *node);
void fat_node_unhash(fat_node *node);
void fat_node_rehash(fat_node *node, uint32_t parent_cluster, uint32_t slot, uint32_t lfn_count,
                     uint64_t offset);
/* Blocks: write the node's directory entry fields (size, cluster, times, attr). */
vfs_status fat_node_write_dirent(fat_node *node);
void fat_node_fill_stat(const fat_node *node, vfs_stat *out);
void fat_stat_from_raw(fat_volume *vol, const uint8_t raw[32], uint64_t offset, vfs_stat *out);
uint32_t fat_dir_cluster_key(const fat_node *dir);
uint32_t fat_raw_cluster(const fat_volume *vol, const uint8_t raw[32]);
void fat_raw_set_cluster(const fat_volume *vol, uint8_t raw[32], uint32_t c);
fat_datetime fat_now(fat_volume *vol);

/* ---- fat_file.c ----------------------------------------------------------------------- */
/* Blocks: disk cluster of file cluster fc and how many clusters from there are contiguous
 * (up to want). NO_FILE past the end of the chain, CORRUPT for a broken chain. */
vfs_status fat_file_map(fat_node *node, uint32_t fc, uint32_t want, uint32_t *disk, uint32_t *count);
vfs_status fat_file_chain_length(fat_node *node, uint32_t *length); /* blocks */
void fat_runs_reset(fat_node *node);
void fat_runs_add(fat_node *node, uint32_t fc, uint32_t disk, uint32_t length);
/* Blocks: append `count` zeroed clusters to the node's chain (directories grow so). */
vfs_status fat_file_grow_chain(fat_node *node, uint32_t count);
vfs_status fat_file_read_locked(fat_node *node, uint64_t offset, void *dst, size_t len, size_t *done);
vfs_status fat_file_write_locked(fat_node *node, uint64_t offset, const void *src, size_t len, size_t *done);
vfs_status fat_file_truncate_locked(fat_node *node, uint64_t length);
/* Give back the clusters a growing file claimed past its size (at its last close). Holds
 * the node's write lock. */
vfs_status fat_file_trim_locked(fat_node *node);
vfs_status fat_io_write_zeros(fat_volume *vol, uint64_t offset, uint64_t len);

/* ---- fat_dir.c ------------------------------------------------------------------------ */
void fat_dir_iter_init(fat_dir_iter *it, fat_node *dir, uint32_t slot);
/* Blocks: the next used entry (LFN assembled); END_OF_DIRECTORY at the end. */
vfs_status fat_dir_iter_next(fat_dir_iter *it, fat_dirent *out);
/* Blocks; caller holds dir's lock (read). NO_FILE when absent. */
vfs_status fat_dir_lookup(fat_node *dir, const fat_name *name, fat_dirent *out);
/* Blocks; caller holds dir's lock (write). Creates the entries for `name` with the short
 * entry template `raw` (name bytes filled in here); out describes the new short entry.
 * The set lies in one device block whenever the directory can hold it so. */
vfs_status fat_dir_insert(fat_node *dir, const fat_name *name, const uint8_t raw[32], fat_dirent *out);
/* Blocks; caller holds dir's lock (write). Marks the entry's slots deleted: one change of
 * one block, or (a set across blocks) the short entry's block first. */
vfs_status fat_dir_remove(fat_node *dir, uint32_t slot, uint32_t lfn_count);

/* The pieces insert and remove are made of, for changes that span entries (rename). */
typedef struct fat_slot_range {
    uint32_t first, end;        /* slots [first, end) */
} fat_slot_range;

typedef struct fat_place_opts {
    const fat_slot_range *reuse; /* slots the same change frees: usable for the new set */
    uint32_t nreuse;
    uint32_t near_slot;         /* FAT_NONE; else only the device block holding this slot */
    bool grow;                  /* the directory may grow */
} fat_place_opts;

/* One change to one slot: `len` bytes (32, or 1 to mark it deleted) at an absolute offset. */
typedef struct fat_dir_edit {
    uint64_t offset;
    const uint8_t *bytes;
    uint32_t len;
} fat_dir_edit;
#define FAT_DIR_MAX_EDITS 192u  /* a record, a set, the gap before it, two sets removed */

/* A new entry set: [record] LFN entries, short entry, from slot `start`. */
typedef struct fat_dir_set {
    const fat_name *name;
    uint8_t entry[32];          /* the short entry (name bytes by fat_dir_short_entry) */
    uint32_t lfn;               /* LFN entries */
    uint32_t start;
    uint32_t gap;               /* first end marker before start (FAT_NONE: none) */
    const uint8_t *record;      /* NULL, or a rename record for the slot before the set */
} fat_dir_set;

/* Blocks: the short name (an alias if need be: never one the directory uses) into
 * entry[0..10] and its case bits; *lfn gets the LFN entry count. */
vfs_status fat_dir_short_entry(fat_node *dir, const fat_name *name, uint8_t entry[32], uint32_t *lfn);
/* Blocks: `need` consecutive slots for a set (see fat_place_opts), in one device block
 * when the directory can give them so. *gap: the first end-of-directory marker before
 * *start, FAT_NONE if none. NO_FILE: none in near_slot's block. DIRECTORY_IS_FULL. */
vfs_status fat_dir_find_place(fat_node *dir, uint32_t need, const fat_place_opts *o, uint32_t *start, uint32_t *gap);
/* Blocks: write the set, and `also` (edits in the set's block, made in the same change);
 * index it; out describes the short entry. */
vfs_status fat_dir_place_set(fat_node *dir, const fat_dir_set *set, const fat_dir_edit *also, uint32_t nalso,
                            fat_dirent *out);
/* Blocks: edits that delete the set of the short entry at `slot` (lfn_count + 1 of them). */
vfs_status fat_dir_remove_edits(fat_node *dir, uint32_t slot, uint32_t lfn_count, fat_dir_edit *out);
/* Blocks: apply edits, each device block's in one change (no order among blocks). */
vfs_status fat_dir_apply(fat_volume *vol, const fat_dir_edit *edits, uint32_t n);
bool fat_dir_edits_one_block(const fat_dir_edit *edits, uint32_t n);
/* Blocks: apply a set's deletion (the short entry's edit last in `edits`). */
vfs_status fat_dir_remove_set(fat_volume *vol, const fat_dir_edit *edits, uint32_t n);
/* Drop a short entry from the name index and the free hint's way (before it is deleted). */
vfs_status fat_dir_forget(fat_node *dir, uint32_t slot, uint32_t lfn_count);
/* Blocks: the directory's own entry gets the current time (its mtime). */
vfs_status fat_dir_touch(fat_node *dir);
/* Blocks: is the directory empty but for "." and ".."? (lock held) */
vfs_status fat_dir_is_empty(fat_node *dir, bool *empty);
void fat_dir_index_drop(fat_node *dir);
vfs_status fat_dir_slot_offset(fat_node *dir, uint32_t slot, uint64_t *offset); /* blocks */
/* Blocks: write "." and ".." into a new directory cluster (already zeroed). */
vfs_status fat_dir_write_dots(fat_volume *vol, uint32_t cluster, uint32_t parent_key, const uint8_t tmpl[32]);

/* ---- fat_path.c ----------------------------------------------------------------------- */
/* Blocks: resolve every component but the last, from `base` (a directory node the caller
 * holds a reference to; NULL: the root); *parent gets a reference to the directory, *name
 * and *name_len the last component (len 0: the path is the base itself). */
vfs_status fat_path_parent(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **parent,
                          const char **name, size_t *name_len);
/* Blocks: resolve the whole path from `base` (as above) to a referenced node. */
vfs_status fat_path_node(fat_volume *vol, fat_node *base, const char *path, size_t len, fat_node **out);

#endif
