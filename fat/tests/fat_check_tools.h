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

/* Print the checker's log lines (off by default). */
extern bool check_echo;

/* Runs the checker on the image file in a RAM device: fat_check_volume_find at byte 0,
 * then fat_check_run with `repairs` (saving the image back when it is not 0). Returns
 * false (a test failure) if the harness failed; run->status tells what the checker said. */
bool check_image(const char *img, uint32_t repairs, check_run *run);
/* check_image that must return VFS_OK. */
bool check_image_ok(const char *img, uint32_t repairs, check_run *run);

/* fsck.fat -n printed nothing but its version and summary lines and exited 0: it has
 * nothing to report. Otherwise prints its report (when `echo`) and returns false. */
bool fsck_silent(const char *img, bool echo);

/* The test tree, written by mtools into a fresh mkfs.fat volume (`mkfs_args`, `kib`):
 *   BIG.BIN 40000, MED.BIN 9000, SMALL.TXT 100, EMPTY.TXT 0, "A long name file.txt" 3000,
 *   SUB/ (INNER.TXT 5000, DEEP1/DEEP2/DEEP3/LEAF.DAT 70000, "Another long name.data" 1),
 *   MANY/ (200 files "file number NNN.txt", several directory clusters), EMPTYDIR/,
 *   "A long dir name"/ (inside.txt 2000).
 * 209 files, 7 directories. Built once per kind and copied to `img`. */
#define TREE_FILES 209u
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
