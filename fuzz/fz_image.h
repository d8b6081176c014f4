/* fz_image: a raw view of a FAT image in memory, for the fuzzers and the image mutator.
 *
 * It reads the layout from the boot sector, FAT entries in any copy, directories (long
 * names assembled, slot offsets kept), paths, and builds manifests (every file's path,
 * size and content hash) and data snapshots (the bytes of every cluster a file owns in any
 * FAT copy). It is written from the FAT specification independently of the engine and the
 * checker (it shares only the layout constants of fat/fat_layout.h) so that it can judge
 * them, and every walk is bounded, so a hostile image cannot hang or crash it.
 * Hosted (libc, malloc).
 */
#ifndef ASYNCFAT_FUZZ_FZ_IMAGE_H
#define ASYNCFAT_FUZZ_FZ_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fz_layout {
    int type;                   /* 12, 16, 32: by cluster count, but 32 whenever the 16-bit FAT size is 0 */
    uint32_t bytes_per_sector;
    uint32_t sectors_per_cluster;
    uint32_t cluster_bytes;
    uint32_t reserved_sectors;
    uint32_t fat_count;
    uint32_t fat_sectors;       /* per copy */
    uint32_t root_entries;      /* FAT12/16 */
    uint32_t total_sectors;
    uint32_t cluster_count;
    uint32_t root_cluster;      /* FAT32; 0 on FAT12/16 */
    uint32_t fsinfo_sector;     /* FAT32 */
    uint32_t backup_sector;     /* FAT32 */
    uint64_t fat_offset;        /* bytes: FAT 0 */
    uint64_t fat_bytes;         /* bytes per copy */
    uint64_t root_offset;       /* FAT12/16 fixed root */
    uint64_t root_bytes;
    uint64_t data_offset;       /* cluster 2 */
} fz_layout;

/* The layout of a plausible boot sector (sizes nonzero, powers of two where they must be,
 * regions inside the image); false otherwise. */
bool fz_layout_read(const uint8_t *img, size_t len, fz_layout *L);

typedef struct fz_view {
    uint8_t *img;
    size_t len;
    fz_layout L;
} fz_view;

/* fz_layout_read into v->L; false when the boot sector makes no sense. */
bool fz_view_init(fz_view *v, uint8_t *img, size_t len);

bool fz_cluster_valid(const fz_view *v, uint32_t c);
bool fz_is_eoc(const fz_view *v, uint32_t value);
uint32_t fz_eoc(const fz_view *v);
uint64_t fz_cluster_offset(const fz_view *v, uint32_t c);
/* Byte offset of entry c in FAT copy `copy` (for FAT12 the entry spans two bytes there). */
uint64_t fz_fat_entry_offset(const fz_view *v, uint32_t copy, uint32_t c);
/* UINT32_MAX when the entry lies outside the image. */
uint32_t fz_fat_get(const fz_view *v, uint32_t copy, uint32_t c);
void fz_fat_set(fz_view *v, uint32_t copy, uint32_t c, uint32_t value);

/* The clusters of the chain from `first` in FAT copy `copy`, at most `max`; *broken (may be
 * NULL) says the chain ran into a free, bad or out-of-range link, or a loop, before an
 * end-of-chain mark. Returns the count. */
size_t fz_chain(const fz_view *v, uint32_t copy, uint32_t first, uint32_t *out, size_t max, bool *broken);

#define FZ_NAME_MAX 1024

typedef struct fz_dirent {
    char name[FZ_NAME_MAX];     /* UTF-8: the long name, or the short display name */
    char short_name[13];        /* display form, "NAME.EXT" */
    uint8_t raw[32];
    uint64_t offset;            /* of the short entry */
    uint64_t lfn_offset;        /* of the first (stored) LFN slot; == offset when none */
    uint32_t lfn_count;
    uint32_t cluster;
    uint32_t size;
    bool is_dir;
    bool is_dot;                /* "." or ".." */
} fz_dirent;

typedef struct fz_dir {
    fz_dirent *entries;
    size_t count;
    uint64_t *slot_offsets;     /* every slot of the directory, in order */
    size_t slot_count;
} fz_dir;

/* The entries of the directory at `cluster` (0: the FAT12/16 fixed root), its chain read in
 * FAT copy 0, deleted slots and volume labels left out. Returns false only for a directory
 * that cannot be located (no cluster, out of range). */
bool fz_dir_read(const fz_view *v, uint32_t cluster, fz_dir *out);
void fz_dir_free(fz_dir *d);
/* The root directory's cluster for fz_dir_read (0 on FAT12/16). */
uint32_t fz_root_cluster(const fz_view *v);

/* Resolve an absolute path ('/'-separated, ASCII case-insensitive against long and short
 * names). "/" gives a pseudo-entry for the root (is_dir, cluster = root, offset 0). */
bool fz_lookup(const fz_view *v, const char *path, fz_dirent *out);

/* One line per file and directory reachable from the root (depth-first, sorted as stored):
 * path, kind, size and a hash of the contents read through FAT 0. */
typedef struct fz_manifest_entry {
    char *path;
    bool is_dir;
    bool readable;              /* the chain covers the size */
    uint32_t size;
    uint64_t hash;
} fz_manifest_entry;

typedef struct fz_manifest {
    fz_manifest_entry *entries;
    size_t count;
} fz_manifest;

void fz_manifest_build(const fz_view *v, fz_manifest *out);
void fz_manifest_free(fz_manifest *m);
const fz_manifest_entry *fz_manifest_find(const fz_manifest *m, const char *path);
/* Every file of `before` that was readable is in `after` with the same size and contents.
 * On a difference, writes what differs into why. `except` (may be NULL) names one path
 * left out of the comparison, with everything below it. */
bool fz_manifest_files_kept(const fz_manifest *before, const fz_manifest *after, const char *except,
                            char *why, size_t why_size);
/* Both list the same paths, kinds, sizes and contents. */
bool fz_manifest_equal(const fz_manifest *a, const fz_manifest *b, char *why, size_t why_size);

/* The bytes every file owns: for each file reachable from the root, each cluster of its
 * chain in every FAT copy that covers the file's size, and a hash of the file's bytes there.
 * Clusters of directories (their chains in FAT 0) are left out: a chain read through a
 * disagreeing copy may run into one, and writes legitimately change directories. */
typedef struct fz_owned {
    uint32_t cluster;
    uint32_t bytes;             /* the file's bytes in this cluster */
    uint64_t hash;
    char *path;
} fz_owned;

typedef struct fz_data_snapshot {
    fz_owned *items;
    size_t count;
} fz_data_snapshot;

void fz_data_snapshot_build(const fz_view *v, fz_data_snapshot *out);
void fz_data_snapshot_free(fz_data_snapshot *s);
/* True when every snapshot cluster still holds the same bytes in the image `now` (same
 * layout). `except` (may be NULL): a path whose clusters may change. */
bool fz_data_snapshot_kept(const fz_data_snapshot *s, const fz_view *now, const char *except, char *why,
                           size_t why_size);

uint64_t fz_hash(const void *data, size_t len, uint64_t seed);

#endif
