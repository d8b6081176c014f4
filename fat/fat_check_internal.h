/* fat_check internals: the checker's state and what its files share (not an API).
 *
 *   fat_check.c        the run: its epochs, messages, device access, bitmaps
 *   fat_check_chain.c  the FAT: the window reader, entries, chains, lost clusters, copies
 *   fat_check_entry.c  one directory entry: files, subdirectories, names, long names, labels
 *   fat_check_dir.c    directories: iteration, "." and "..", duplicates, the tree walk
 *   fat_check_rename.c rename records, finished before the walk (as mount recovery does)
 *   fat_check_boot.c   which boot sector describes the volume (fat_check_volume_find), the
 *                      backup, FSInfo, FAT entries 0 and 1, the labels, the dirty flags
 *
 * Three bitmaps over cluster numbers: `used` (reached by some chain), `current` (in the
 * chain being walked, to tell a loop from a cross-link) and `deferred` (first clusters of
 * directories found below the open ones, to be entered later).
 */
#ifndef ASYNCFAT_FAT_CHECK_INTERNAL_H
#define ASYNCFAT_FAT_CHECK_INTERNAL_H

#include "fat/fat_check.h"
#include "fat/fat_layout.h"
#include "fat/fat_name.h"

#define FAT_CHECK_WINDOW 512u

/* Reads entries of one FAT copy through a window of FAT_CHECK_WINDOW bytes. */
typedef struct fat_check_reader {
    blk_cache *cache;
    const fat_geometry *g;
    uint32_t copy;
    uint8_t window[FAT_CHECK_WINDOW];
    uint64_t window_offset;
    bool window_valid;
    vfs_status io;           /* VFS_OK until a read fails */
} fat_check_reader;

void fat_check_reader_init(fat_check_reader *r, blk_cache *cache, const fat_geometry *g, uint32_t copy);
/* Entry `cl` (0 .. max_cluster); an I/O error reads as end-of-chain and sets r->io. */
uint32_t fat_check_reader_get(fat_check_reader *r, uint32_t cl);

typedef struct fat_check_dir {
    uint32_t first;          /* first cluster; 0 for the FAT12/16 fixed root */
    uint32_t cluster;        /* cluster being read */
    uint32_t clusters_left;  /* clusters of the walked chain not yet left behind */
    uint32_t index;          /* entry index in the cluster (or in the fixed root) */
    uint32_t total;          /* entries seen in this directory */
    uint32_t parent;         /* parent's first cluster (0 = root; FAT_CHECK_PARENT_CHECKED) */
    bool fixed_root;
    bool ended;              /* an end-of-directory entry has been seen */
    bool partial;            /* its chain runs on into another's: only a part is walked */
} fat_check_dir;

/* The parent of a deferred directory is not known when it is entered: its ".." was
 * checked when it was found. */
#define FAT_CHECK_PARENT_CHECKED UINT32_MAX

typedef struct fat_checker {
    blk_cache *cache;
    const fat_geometry *g;
    const fat_check_options *opt;
    fat_check_result *r;
    uint32_t repairs;        /* the repairs to make: options.repairs, or 0 when refused */
    uint8_t *used;
    uint8_t *current;
    uint8_t *deferred;
    uint32_t deferred_count;
    uint32_t unwalked;       /* first cluster of a directory not walked to its end (0: none) */
    uint8_t *names;          /* FAT_CHECK_NAME_SLOTS le64 device offsets (+1) of short entries */
    vfs_status io;
    bool fats_differ;        /* a FAT copy differs from the active one */
    uint32_t eoc_min, eoc, bad;
    fat_check_reader fat;    /* the active FAT */
    char msg[400];
    size_t msg_len;
    fat_lfn_state lfn;
    uint64_t lfn_at[FAT_LFN_MAX_ENTRIES + 1]; /* device offsets of the open LFN entries */
    uint32_t lfn_count;
    uint64_t name_at;        /* the short entry whose long name is in name_lfn_at (+1; 0: none) */
    uint64_t name_lfn_at[FAT_LFN_MAX_ENTRIES];
    uint32_t name_lfn_count;
    fat_check_dir open[FAT_CHECK_OPEN_DIRS];
    bool boot_reported;      /* the boot sector and its backup were reported as differing */
    bool clear_fat_dirty, clear_state_dirty; /* dirty flags to clear at the end */
    bool root_label_seen;
    uint8_t root_label[11];
} fat_checker;

/* ---- messages and findings (fat_check.c) ---- */
/* Appends to the NUL-terminated text in buf[cap] whose length is *len (cut at cap - 1). */
void fat_check_text(char *buf, size_t cap, size_t *len, const char *s);
void fat_check_text_u64(char *buf, size_t cap, size_t *len, uint64_t v);
void fat_check_msg_str(fat_checker *c, const char *s);
void fat_check_msg_u64(fat_checker *c, uint64_t v);
void fat_check_msg_name(fat_checker *c, const uint8_t name[11]);
/* Starts a finding: counts it in *counter and begins its message with the entry's name
 * (NULL for volume-level findings). */
void fat_check_finding(fat_checker *c, uint32_t *counter, const uint8_t *name, uint32_t dir);
/* Ends the finding's message with what was done (`what` if not NULL, when `fixed`) or "not repaired",
 * counts it as repaired or left, and logs it. */
void fat_check_finish(fat_checker *c, bool fixed, const char *what);
/* Whether this repair (a FAT_CHECK_REPAIR_* bit) is to be made. */
static inline bool fat_check_fixing(const fat_checker *c, uint32_t repair)
{
    return (c->repairs & repair) != 0;
}

/* ---- device access (fat_check.c); after an error they do nothing and c->io says why ---- */
bool fat_check_read(fat_checker *c, uint64_t off, void *dst, size_t len);
void fat_check_write(fat_checker *c, uint64_t off, const void *src, size_t len);

static inline bool fat_check_bit(const uint8_t *map, uint32_t i) { return map[i >> 3] & (1u << (i & 7)); }
static inline void fat_check_bit_set(uint8_t *map, uint32_t i) { map[i >> 3] |= (uint8_t)(1u << (i & 7)); }
static inline void fat_check_bit_clear(uint8_t *map, uint32_t i) { map[i >> 3] &= (uint8_t)~(1u << (i & 7)); }

/* ---- the FAT (fat_check_chain.c) ---- */
/* Entry `cl` of the active FAT; an I/O error reads as end-of-chain. */
uint32_t fat_check_fat_get(fat_checker *c, uint32_t cl);
/* Writes entry `cl` of the active FAT and of every mirrored copy. */
void fat_check_fat_set(fat_checker *c, uint32_t cl, uint32_t v);
/* Writes entry `cl` of one FAT copy. */
void fat_check_fat_set_copy(fat_checker *c, uint32_t copy, uint32_t cl, uint32_t v);
/* The copy is the active FAT or a mirror of it (written with it). */
bool fat_check_fat_mirrored(const fat_checker *c, uint32_t copy);
/* Closes the current write epoch when repairing (blk_cache_order_point). */
void fat_check_order_point(fat_checker *c);
bool fat_check_cluster_valid(const fat_checker *c, uint32_t cl);

typedef struct fat_check_chain {
    uint32_t length;         /* clusters kept in the chain */
    bool shared_start;       /* the first cluster already belongs to another chain */
    bool runs_on;            /* it runs into another chain and was not cut there */
} fat_check_chain;

/* Walks the chain from `first` (valid), marking its clusters used; reports and (repair
 * mode) ends it at a loop, cross-link or bad link. `name` NULL: a directory known by its
 * first cluster only. */
fat_check_chain fat_check_walk_chain(fat_checker *c, uint32_t first, const uint8_t *name, uint32_t dir);
/* Forgets `count` clusters of a chain from `cl`: the lost-cluster scan frees them unless
 * another chain claims them first. */
void fat_check_chain_forget(fat_checker *c, uint32_t cl, uint32_t count);
/* Keeps the first `keep` (>= 1) clusters of a walked chain of `length`. */
void fat_check_chain_cut(fat_checker *c, uint32_t first, uint32_t keep, uint32_t length);
void fat_check_fat_copies(fat_checker *c);
void fat_check_mirror_fats(fat_checker *c);
/* Lost clusters and the statistics; returns the first free cluster (0 if none). */
uint32_t fat_check_scan_fat(fat_checker *c);

/* ---- entries (fat_check_entry.c) ---- */
uint32_t fat_check_entry_cluster(const fat_checker *c, const uint8_t *e);
void fat_check_set_entry_cluster(const fat_checker *c, uint8_t *e, uint32_t cl);
/* Deletes the entry at `at`, and its long-name entries when it is the short entry
 * fat_check_lfn_close last matched. */
void fat_check_delete_entry(fat_checker *c, uint64_t at, uint8_t *e);
/* The short entry at `at` was renamed to `e`'s name: its long-name entries (those of `n`
 * at lfn_at whose checksum is `old_checksum`) get the new checksum, so the long name
 * stays. */
void fat_check_keep_long_name(fat_checker *c, const uint64_t *lfn_at, uint32_t n, uint8_t old_checksum,
                              const uint8_t *e);
bool fat_check_is_dot_name(const uint8_t *e, int dots);
void fat_check_lfn_feed(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir);
/* Ends the open LFN sequence at the short entry at `at` (or at a free one: short_entry
 * NULL); true if a long name belongs to the short entry. */
bool fat_check_lfn_close(fat_checker *c, const uint8_t *short_entry, uint64_t at, uint32_t dir);
/* Drops the open LFN sequence without a finding (its short entry may be where the walk
 * cannot go). */
void fat_check_lfn_forget(fat_checker *c);
/* The name a short name has after its repair: itself when valid, else with each byte a
 * short name may not hold replaced (out may be name). */
void fat_check_short_name_repaired(const uint8_t *name, uint8_t out[11]);
void fat_check_short_name(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, bool has_long_name);
void fat_check_file(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir);
/* A subdirectory entry: its size, its first cluster and its chain, which is walked, or
 * with `claim_only` only claimed (its first cluster marked used; walked when the directory
 * is entered). Returns the first cluster to enter (0: none) and in *chain the walk of its
 * chain (length 0 when only claimed). */
uint32_t fat_check_subdir(fat_checker *c, uint8_t *e, uint64_t at, uint32_t dir, bool claim_only,
                          fat_check_chain *chain);
/* The directory at `first` cannot be walked to its end: lost clusters may be its. */
void fat_check_unwalked(fat_checker *c, uint32_t first);
bool fat_check_in_subdir(const fat_checker *c, const fat_check_dir *it);
void fat_check_label_entry(fat_checker *c, fat_check_dir *it, uint8_t *e, uint64_t at);

/* ---- directories (fat_check_dir.c) ---- */
void fat_check_walk_tree(fat_checker *c);

/* ---- rename records (fat_check_rename.c) ---- */
/* Before the walk: every rename record on the volume resolved as mount recovery does. */
void fat_check_renames(fat_checker *c);

/* ---- boot sector and volume (fat_check_boot.c) ---- */
void fat_check_boot_choice(fat_checker *c, const fat_check_volume *vol);
void fat_check_reserved_entries(fat_checker *c);
void fat_check_clear_dirty(fat_checker *c);
void fat_check_boot_label(fat_checker *c);
void fat_check_fsinfo(fat_checker *c, uint32_t first_free);
void fat_check_backup_boot(fat_checker *c);

#endif
