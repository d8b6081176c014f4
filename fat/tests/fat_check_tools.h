/* Helpers for the checker's tests: running fat_check on an image file, the strict fsck.fat
 * oracle, tree images made with mkfs.fat + mtools (built once per kind, then copied), file
 * trees extracted with mtools and compared, and raw edits of an image (directory lookup
 * by path, nested directories) that use none of the code under test. */
#ifndef ASYNCFAT_FAT_CHECK_TOOLS_H
#define ASYNCFAT_FAT_CHECK_TOOLS_H

#include "fat/fat_check.h"
#include "fat/tests/fat_test_tools.h"

#define SKIP_WITHOUT(tool)                                          \
    do {                                                            \
        if (!tool_available(tool)) {                                \
            printf("SKIP %s: %s not installed\n", __func__, tool);  \
            return;                                                 \
        }                                                           \
    } while (0)

typedef struct check_run {
    fat_check_volume vol;
    fat_check_result r;
    vfs_status status;         /* of fat_check_volume_find, then of fat_check_run */
    uint64_t writes;          /* write requests the device carried out */
} check_run;

/* The repairs the damage a power cut leaves needs (lost clusters, chains longer than their
 * files, FAT copies, FSInfo, orphaned long names): the tests repair with these alone to
 * show that a subset settles that damage and, on worse damage, frees nothing in use. */
#define CHECK_CUT_REPAIRS                                                                              \
    (FAT_CHECK_REPAIR_LOST | FAT_CHECK_REPAIR_LONG_CHAINS | FAT_CHECK_REPAIR_FAT_COPIES | FAT_CHECK_REPAIR_FSINFO | \
     FAT_CHECK_REPAIR_ORPHAN_LFNS)

/* Print the checker's log lines (off by default). */
extern bool check_echo;

/* Runs the checker on the image file in a RAM device: fat_check_volume_find at byte 0,
 * then fat_check_run with `repairs` (saving the image back when it is not 0). Returns
 * false (a test failure) if the harness failed; run->status tells what the checker said. */
bool check_image(const char *img, uint32_t repairs, check_run *run);
/* check_image that must return VFS_OK. */
bool check_image_ok(const char *img, uint32_t repairs, check_run *run);
/* The same on an image in memory (a repair leaves its result there). */
bool check_memory_ok(uint8_t *data, size_t len, uint32_t repairs, check_run *run);
/* Images are mostly zeros (free clusters): the helpers copy and write only the 4 KiB
 * blocks that are not, so a 36 MB FAT32 volume costs what its metadata and files do.
 * copy_sparse: into zeroed memory (dst's untouched pages stay unallocated). image_save:
 * the file gets data[len] with holes where it is zero. */
void copy_sparse(uint8_t *dst, const uint8_t *src, size_t len);
bool image_save(const char *path, const uint8_t *data, size_t len);

/* A RAM device that knows which of its blocks may not be zero (`live`, a bit per 4 KiB
 * block): those it was loaded with and those it wrote since. Loading, saving and
 * comparing touch only those blocks. */
typedef struct live_device {
    blk_fixture f;
    uint8_t *live;
    size_t blocks;
} live_device;

/* The blocks of data[len] that are not all zero (a malloc'd bitmap). */
uint8_t *live_blocks(const uint8_t *data, size_t len);
/* Loads `changed`, a copy of `base` (whose live blocks are `base_live`) with some bytes
 * changed, and makes `changed` equal to `base` again. The device is zeroed memory before
 * its first load; a later load reuses it (its image set back, its log and cache fresh). */
bool live_load_changed(live_device *d, const uint8_t *base, const uint8_t *base_live, uint8_t *changed, size_t len);
/* Saves the device's contents to a (sparse) file. */
bool live_save(live_device *d, const char *path);
/* The offset of the first byte where the device differs from data[len] (len: none),
 * where data's non-zero blocks are among the device's live ones. */
size_t live_first_difference(live_device *d, const uint8_t *data, size_t len);
void live_fini(live_device *d);

/* A RAM device holding a copy of data[len] (f->image is its contents), for several
 * checks in a row; blk_fixture_fini ends it. */
bool device_load(blk_fixture *f, const uint8_t *data, size_t len);
/* Runs the checker on such a device; must return VFS_OK. */
bool check_device_ok(blk_fixture *f, uint32_t repairs, check_run *run);

/* fsck.fat -n printed nothing but its version and summary lines and exited 0: it has
 * nothing to report. Otherwise prints its report (when `echo`) and returns false. */
bool fsck_silent(const char *img, bool echo);

/* The test tree, written by mtools into a fresh mkfs.fat volume (`mkfs_args`, `kib`):
 *   BIG.BIN 40000, MED.BIN 9000, SMALL.TXT 100, EMPTY.TXT 0, "A long name file.txt" 3000,
 *   SUB/ (INNER.TXT 5000, DEEP1/DEEP2/DEEP3/LEAF.DAT 70000, "Another long name.data" 1),
 *   MANY/ (TREE_MANY files "file number NNN.txt", each a long name of two entries and a
 *   short one: 260 entries with "." and "..", more than one cluster of up to 8 KiB holds),
 *   EMPTYDIR/, "A long dir name"/ (inside.txt 2000).
 * 95 files, 7 directories. Built once per kind and copied to `img`. */
#define TREE_MANY 86u
#define TREE_FILES (9u + TREE_MANY)
#define TREE_DIRS 7u
bool tree_image(const char *img, const char *mkfs_args, long kib);

/* Extracts every file of the image with mtools into `dir` (replaced). */
bool tree_extract(const char *img, const char *dir);
/* Paths (relative, '/'-separated) that differ between two extracted trees, one per line,
 * malloc'd; "" when they are the same; NULL if the comparison failed. */
char *tree_diff(const char *a, const char *b);

/* ---- raw image edits ---- */
/* The entry with this 11-byte short name in the directory at `dir_cluster` (0: the root),
 * or NULL. */
uint8_t *raw_dir_entry(raw_image *img, uint32_t dir_cluster, const char *name11);
/* The entry at a '/'-separated path of 11-byte short names ("SUB        /DEEP1      "). */
uint8_t *raw_path_entry(raw_image *img, const char *path);
/* The long-name entry just before a short entry (NULL if there is none in its cluster). */
uint8_t *raw_lfn_before(raw_image *img, uint8_t *entry);
uint32_t raw_nth_cluster(raw_image *img, uint32_t first, uint32_t n);
uint32_t raw_last_cluster(raw_image *img, uint32_t first);
void raw_fat_set_all(raw_image *img, uint32_t cl, uint32_t v);
/* A free cluster at or after `from` (0 if none). */
uint32_t raw_free_cluster(raw_image *img, uint32_t from);
/* Adds `depth` nested directories "D" under the root (each holding a file "F" of `file_bytes`
 * bytes when file_bytes > 0), allocating clusters from the end of the volume down, as a
 * correct writer would; returns the deepest directory's cluster (0 if out of room). */
uint32_t raw_nest(raw_image *img, uint32_t depth, uint32_t file_bytes);

#endif
